/* workspace_quota.c — a size-limited workspace: an ext4 image on a loop device.
 *
 * A host workspace is a directory on the host's disk: without a quota, one session can fill
 * that disk. With workspace_quota_bytes, the workspace sbx makes (TMPDIR/sbx-ws-XXXXXX/
 * workspace) is the root of an ext4 filesystem in a sparse image next to it,
 * TMPDIR/sbx-ws-XXXXXX/sbx-quota.img (mode 0600 in the caller's 0700 directory, so only the
 * kernel's ext4 driver ever writes it for the sandbox). It is made with mkfs.ext4 (e2fsprogs:
 * -m 0, so the sandbox user gets all of it but ext4's own metadata, about 12% at 32 MiB and
 * a few % from 1 GiB; the root directory owned by the workspace's owner; no lost+found),
 * attached to a free loop device (LOOP_CTL_GET_FREE, LOOP_CONFIGURE)
 * with LO_FLAGS_AUTOCLEAR, and mounted nosuid,nodev on the workspace directory. The backend
 * then clones that mount into the sandbox as it does any workspace. A write past the size
 * fails with ENOSPC inside; the host loses at most the image's size.
 *
 * Lifetime: the host mount is the handle's (sbx_session_free, or disown, unmounts it); the
 * sandbox holds its own clone of the mount for as long as it runs; the loop device frees
 * itself when the last mount goes (autoclear); the image goes with the workspace directory.
 * A resumed session whose workspace was kept mounts the same image again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error_internal.h"
#include "workspace_quota.h"

static int img_path(const char *dir, char *out, size_t cap)
{
    return (size_t)snprintf(out, cap, "%s/" SBX_WSQ_IMAGE, dir) < cap ? 0 : -1;
}

int sbx__wsq_has_image(const char *dir)
{
    char img[4200];
    struct stat st;
    return dir && img_path(dir, img, sizeof(img)) == 0 && lstat(img, &st) == 0 &&
           S_ISREG(st.st_mode);
}

/* The loop device the image is attached to ("loopN"), from sysfs: 1 when there is one. */
static int attached_to(const char *img, char *dev, size_t cap)
{
    char real[4200];
    if (!realpath(img, real))
        return 0;
    DIR *d = opendir("/sys/block");
    if (!d)
        return 0;
    int found = 0;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        if (strncmp(de->d_name, "loop", 4) != 0)
            continue;
        char p[512], buf[4200];
        snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", de->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        size_t dn = strlen(de->d_name);
        if (!strcmp(buf, real) && dn < cap) {
            memcpy(dev, de->d_name, dn + 1);
            found = 1;
        }
    }
    closedir(d);
    return found;
}

static const char *find_mkfs(void)
{
    static const char *const where[] = {"/sbin/mkfs.ext4", "/usr/sbin/mkfs.ext4"};
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++)
        if (access(where[i], X_OK) == 0)
            return where[i];
    return NULL;
}

/* mkfs.ext4 on the image, with posix_spawn (the embedder may be multi-threaded: no code of
 * ours runs between fork and exec). Its stderr becomes the message on failure. */
static int mkfs(const char *img, uint64_t bytes, uint32_t uid, uint32_t gid, sbx_error **err)
{
    const char *bin = find_mkfs();
    if (!bin)
        return sbx_err(err, SBX_ENOSYS, ENOENT, "start",
                       "workspace_quota_bytes needs mkfs.ext4 (e2fsprogs), found in neither "
                       "/sbin nor /usr/sbin");
    char ext[96];
    snprintf(ext, sizeof(ext), "root_owner=%u:%u,nodiscard", uid, gid);
    /* A small image (1 KiB blocks) gets the smallest journal, 1 MiB instead of the 4 MiB
     * mke2fs would take from 32 MiB; larger ones keep mke2fs's choice. */
    int small = bytes < (256ull << 20);
    char *const argv[] = {(char *)"mkfs.ext4", (char *)"-q", (char *)"-F", (char *)"-m",
                          (char *)"0", (char *)"-L", (char *)"sbx-workspace", (char *)"-E",
                          ext, (char *)(small ? "-J" : img), small ? (char *)"size=1" : NULL,
                          small ? (char *)img : NULL, NULL};
    char *const envp[] = {(char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", (char *)"LC_ALL=C",
                          NULL};
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return sbx_err(err, SBX_EWORKSPACE_START, errno, "start", "pipe for mkfs.ext4");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    pid_t pid = -1;
    int e = posix_spawn(&pid, bin, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (e != 0) {
        close(pfd[0]);
        return sbx_err(err, SBX_EWORKSPACE_START, e, "start", "cannot run %s", bin);
    }
    char msg[512];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(pfd[0], msg + len, sizeof(msg) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof(msg) - 1) {
            char sink[256]; /* keep reading so mkfs never blocks on a full pipe */
            while (read(pfd[0], sink, sizeof(sink)) > 0)
                ;
            break;
        }
    }
    msg[len] = '\0';
    close(pfd[0]);
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    /* ECHILD: the embedder reaps children itself (SIGCHLD ignored); the mount below tells. */
    if (w == pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        msg[strcspn(msg, "\n")] = '\0';
        int r = sbx_err(err, SBX_EWORKSPACE_START, 0, "start",
                        "mkfs.ext4 of the workspace image %s failed (status %d): %s", img,
                        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), msg);
        sbx_err_ctx(err, "path", "%s", img);
        return r;
    }
    return 0;
}

/* Attaches the image to a free loop device that frees itself at its last close: the fd of
 * the device, and its path in dev. */
static int loop_attach(int img_fd, const char *img, char *dev, size_t cap, sbx_error **err)
{
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        return sbx_err(err, errno == ENOENT ? SBX_ENOSYS : SBX_EWORKSPACE_START, errno, "start",
                       "workspace_quota_bytes needs loop devices: cannot open /dev/loop-control "
                       "(modprobe loop)");
    int e = 0;
    for (int tries = 0; tries < 16; tries++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0) {
            e = errno;
            break;
        }
        snprintf(dev, cap, "/dev/loop%d", n);
        int fd = open(dev, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            e = errno;
            if (e == ENOENT) { /* no devtmpfs/udev node yet: give it a moment */
                usleep(20000);
                continue;
            }
            break;
        }
        struct loop_config lc;
        memset(&lc, 0, sizeof(lc));
        lc.fd = (uint32_t)img_fd;
        lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        size_t il = strlen(img); /* a label only (sysfs backing_file has the real path) */
        memcpy(lc.info.lo_file_name, img, il < LO_NAME_SIZE ? il : LO_NAME_SIZE - 1);
        if (ioctl(fd, LOOP_CONFIGURE, &lc) == 0) {
            close(ctl);
            return fd;
        }
        e = errno;
        close(fd);
        if (e != EBUSY) /* EBUSY: another process took this device first */
            break;
    }
    close(ctl);
    return sbx_err(err, e == ENOTTY || e == EINVAL ? SBX_ENOSYS : SBX_EWORKSPACE_START, e,
                   "start", "cannot attach the workspace image %s to a loop device", img);
}

int sbx__wsq_mount(const char *dir, const char *ws, uint64_t bytes, int fresh, uint32_t uid,
                   uint32_t gid, int *mounted, sbx_error **err)
{
    *mounted = 0;
    char img[4200], dev[64];
    if (img_path(dir, img, sizeof(img)) < 0)
        return sbx_err(err, SBX_EWORKSPACE_START, ENAMETOOLONG, "start", "path too long");
    if (geteuid() != 0)
        return sbx_err(err, SBX_EPERM, EPERM, "start",
                       "workspace_quota_bytes needs root (loop devices and mounts)");
    struct stat st;
    int have = lstat(img, &st) == 0;
    if (have && !S_ISREG(st.st_mode))
        return sbx_err(err, SBX_EWORKSPACE_START, EINVAL, "start",
                       "%s is not a workspace image", img);
    if (!have && !fresh)
        return sbx_err(err, SBX_EINVAL, 0, "start",
                       "workspace_quota_bytes: the resumed workspace %s was made without a "
                       "quota; a quota is set when sbx makes the workspace",
                       ws);
    if (have && bytes && (uint64_t)st.st_size != bytes)
        return sbx_err(err, SBX_EINVAL, 0, "start",
                       "workspace_quota_bytes %llu differs from the workspace image's size "
                       "%llu (%s): the quota is fixed when sbx makes the workspace",
                       (unsigned long long)bytes, (unsigned long long)st.st_size, img);
    if (have && attached_to(img, dev, sizeof(dev))) {
        int r = sbx_err(err, SBX_ESTATE, EBUSY, "start",
                        "the workspace image %s is in use (/dev/%s): another session runs on "
                        "it, or one that crashed left it mounted (umount %s)",
                        img, dev, ws);
        sbx_err_ctx(err, "path", "%s", img);
        return r;
    }
    int made = 0, r = 0;
    int fd = -1;
    if (!have) {
        fd = open(img, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)bytes) < 0) {
            r = sbx_err(err, SBX_EWORKSPACE_START, errno, "start",
                        "cannot make the workspace image %s", img);
            goto out;
        }
        made = 1;
        close(fd);
        fd = -1;
        if ((r = mkfs(img, bytes, uid, gid, err)) < 0)
            goto out;
    }
    fd = open(img, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        r = sbx_err(err, SBX_EWORKSPACE_START, errno, "start", "cannot open %s", img);
        goto out;
    }
    int lfd = loop_attach(fd, img, dev, sizeof(dev), err);
    if (lfd < 0) {
        r = lfd;
        goto out;
    }
    if (mount(dev, ws, "ext4", MS_NOSUID | MS_NODEV, NULL) < 0) {
        int e = errno;
        close(lfd); /* autoclear: the loop device is free again */
        r = sbx_err(err, e == ENODEV ? SBX_ENOSYS : SBX_EWORKSPACE_START, e, "start",
                    "cannot mount the workspace image %s (%s) at %s%s", img, dev, ws,
                    e == ENODEV ? ": the kernel has no ext4" : "");
        sbx_err_ctx(err, "path", "%s", ws);
        goto out;
    }
    close(lfd); /* the mount holds the device now; it frees itself when the last one goes */
    *mounted = 1;
    if (made) {
        /* The sandbox user's, as a directory sbx makes (root_owner did it; this is for an
         * mkfs that ignored it), and nothing of mkfs's in it. */
        char lf[4200];
        snprintf(lf, sizeof(lf), "%s/lost+found", ws);
        rmdir(lf);
        if (chown(ws, uid, gid) < 0 || chmod(ws, 0755) < 0) {
            r = sbx_err(err, SBX_EWORKSPACE_START, errno, "start",
                        "prepare the workspace '%s' for uid %u", ws, uid);
            sbx__wsq_unmount(ws);
            *mounted = 0;
            goto out;
        }
    }
out:
    if (fd >= 0)
        close(fd);
    if (r < 0 && made)
        unlink(img);
    return r;
}

void sbx__wsq_unmount(const char *ws)
{
    if (umount2(ws, UMOUNT_NOFOLLOW) < 0 && errno == EBUSY)
        umount2(ws, UMOUNT_NOFOLLOW | MNT_DETACH); /* a host process still has a file open */
}
