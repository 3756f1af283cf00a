/* rootfs.c — assembles the sandbox's root filesystem and pivots into it.
 *
 * Order matters:
 *  1. Make every mount private, so nothing we do propagates back to the host (and nothing of
 *     the host's later mounts leaks in).
 *  2. Build the new root on a fresh tmpfs: read-only binds of the host's /usr and lib/bin
 *     dirs (or the same usr-merged symlinks the host has), a generated /etc, /dev, /proc,
 *     /tmp, the workspace and the caller's binds.
 *  3. pivot_root(".", ".") and detach the old root: no path to the host's tree remains.
 *  4. Remount the root tmpfs read-only.
 * Host files are read (resolv.conf) before the tmpfs hides anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"

#define NEWROOT "/tmp"

static int fail_at(struct sbx_agent_fail *f, const char *stage, const char *what)
{
    f->stage = stage;
    f->errnum = errno;
    snprintf(f->detail, sizeof(f->detail), "%s", what ? what : "");
    return -1;
}

static int set_attr(int dfd, const char *path, unsigned flags, uint64_t set)
{
    struct mount_attr a = {.attr_set = set};
    return mount_setattr(dfd, path, flags, &a, sizeof(a));
}

/* Read-only, nosuid, nodev bind of a host path that exists at the same place inside. */
static int ro_bind(const char *host, const char *dst)
{
    if (mount(host, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -1;
    return set_attr(AT_FDCWD, dst, AT_RECURSIVE,
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
}

/* /usr, and /bin /sbin /lib* either as the host's usr-merge symlinks or as read-only binds. */
static int bind_system(struct sbx_agent_fail *f)
{
    static const char *const dirs[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                       "/libx32"};
    char dst[512], target[512];
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        struct stat st;
        if (lstat(dirs[i], &st) < 0)
            continue; /* the host does not have it */
        snprintf(dst, sizeof(dst), NEWROOT "%s", dirs[i]);
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(dirs[i], target, sizeof(target) - 1);
            if (n < 0)
                return fail_at(f, "readlink", dirs[i]);
            target[n] = '\0';
            if (symlink(target, dst) < 0)
                return fail_at(f, "symlink", dst);
        } else if (S_ISDIR(st.st_mode)) {
            if (mkdir(dst, 0755) < 0 || ro_bind(dirs[i], dst) < 0)
                return fail_at(f, "bind_system", dirs[i]);
        }
    }
    return 0;
}

/* A detached tmpfs owned by the sandbox user: an ephemeral workspace, nothing on the host. */
static int tmpfs_tree(const struct sbx_wire_config *c)
{
    char id[16];
    int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0)
        return -1;
    int r = fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0);
    snprintf(id, sizeof(id), "%u", c->sandbox_uid);
    if (r == 0)
        r = fsconfig(fs, FSCONFIG_SET_STRING, "uid", id, 0);
    snprintf(id, sizeof(id), "%u", c->sandbox_gid);
    if (r == 0)
        r = fsconfig(fs, FSCONFIG_SET_STRING, "gid", id, 0);
    if (r == 0 && c->tmpfs_bytes) {
        char size[32];
        snprintf(size, sizeof(size), "%llu", (unsigned long long)c->tmpfs_bytes);
        r = fsconfig(fs, FSCONFIG_SET_STRING, "size", size, 0);
    }
    if (r == 0)
        r = fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
    int m = r == 0 ? fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV) : -1;
    int e = errno;
    close(fs);
    errno = e;
    return m;
}

/* Path mounts (unprivileged callers) become detached trees too, taken before the root tmpfs
 * is mounted over NEWROOT: a source below /tmp would be hidden by it afterwards. */
static int open_path_mounts(const struct sbx_wire_config *c, int *tree_fds,
                            struct sbx_agent_fail *f)
{
    for (uint32_t i = 0; i < c->n_mounts; i++) {
        tree_fds[i] = -1;
        if (c->mounts[i].kind == SBX_MOUNT_TMPFS) {
            if ((tree_fds[i] = tmpfs_tree(c)) < 0)
                return fail_at(f, "workspace_tmpfs", c->mounts[i].dst);
            continue;
        }
        if (c->mounts[i].kind != SBX_MOUNT_PATH)
            continue;
        tree_fds[i] = open_tree(AT_FDCWD, c->mounts[i].src,
                                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree_fds[i] < 0)
            return fail_at(f, "bind_source", c->mounts[i].src);
        struct mount_attr a = {.propagation = MS_PRIVATE};
        if (mount_setattr(tree_fds[i], "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0)
            return fail_at(f, "bind_private", c->mounts[i].src);
    }
    return 0;
}

static int openat2_nofollow(int dfd, const char *name, int flags, mode_t mode)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .mode = (flags & O_CREAT) ? mode : 0,
                           .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH};
    return (int)syscall(SYS_openat2, dfd, name, &how, sizeof(how));
}

/* On an idmapped workspace only the sandbox user's ids are mapped: the agent's own cannot be
 * written there (EOVERFLOW), so a mount point below it is created as the sandbox user. */
struct as_user {
    uid_t uid;
    gid_t gid;
};

static int mkdirat_as(int dfd, const char *name, const struct as_user *u)
{
    int r = mkdirat(dfd, name, 0755);
    if (r < 0 && errno == EOVERFLOW) {
        /* setfsuid returns the previous value: restore exactly that. */
        uid_t ou = (uid_t)setfsuid(u->uid);
        gid_t og = (gid_t)setfsgid(u->gid);
        r = mkdirat(dfd, name, 0755);
        int e = errno;
        setfsuid(ou);
        setfsgid(og);
        errno = e;
    }
    return r;
}

/* Creates an empty file to bind a file onto. O_EXCL|O_NONBLOCK: an existing entry (a FIFO
 * planted by sandboxed code, say) is never opened for writing here, which could block. */
static int create_as(int dfd, const char *name, const struct as_user *u)
{
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_NOCTTY;
    int fd = openat2_nofollow(dfd, name, flags, 0644);
    if (fd < 0 && errno == EOVERFLOW) {
        uid_t ou = (uid_t)setfsuid(u->uid);
        gid_t og = (gid_t)setfsgid(u->gid);
        fd = openat2_nofollow(dfd, name, flags, 0644);
        int e = errno;
        setfsuid(ou);
        setfsgid(og);
        errno = e;
    }
    if (fd >= 0)
        close(fd);
    return (fd < 0 && errno != EEXIST) ? -1 : 0;
}

/* O_PATH open of a file mount point, which must be a regular file. */
static int open_file_point(int dfd, const char *name)
{
    int fd = openat2_nofollow(dfd, name, O_PATH, 0);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
        close(fd);
        errno = ENOTSUP;
        return -1;
    }
    return fd;
}

/* Opens the mount point `path` below `root_fd` as O_PATH, creating missing components,
 * without ever following a symlink: binds can land below the workspace, whose content a
 * previous session's code controlled, and this runs before pivot_root, when a symlink there
 * could still point into the host's tree. */
static int open_mount_point(int root_fd, const char *path, int is_dir, const struct as_user *u)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int dfd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    char *save = NULL;
    char *comp = strtok_r(buf, "/", &save);
    while (dfd >= 0 && comp) {
        char *next = strtok_r(NULL, "/", &save);
        int last = next == NULL;
        int fd;
        if (!last || is_dir) {
            if (mkdirat_as(dfd, comp, u) < 0 && errno != EEXIST)
                fd = -1;
            else
                fd = openat2_nofollow(dfd, comp, O_PATH | O_DIRECTORY, 0);
        } else {
            fd = create_as(dfd, comp, u) < 0 ? -1 : open_file_point(dfd, comp);
        }
        int e = errno;
        close(dfd);
        errno = e;
        dfd = fd;
        comp = next;
    }
    return dfd;
}

/* The workspace (mounts[0]) and the caller's binds, all detached mount trees by now: the
 * host made FD mounts with open_tree(), so the agent needs no access to their host path. */
static int bind_user(const struct sbx_wire_config *c, const int *fds, size_t n_fds,
                     const int *tree_fds, struct sbx_agent_fail *f)
{
    struct as_user u = {.uid = c->sandbox_uid, .gid = c->sandbox_gid};
    int root_fd = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        return fail_at(f, "bind_user", NEWROOT);
    int r = 0;
    for (uint32_t i = 0; r == 0 && i < c->n_mounts; i++) {
        const struct sbx_wire_mount *m = &c->mounts[i];
        int fd = m->kind == SBX_MOUNT_FD ? (m->fd_index < n_fds ? fds[m->fd_index] : -1)
                                          : tree_fds[i];
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            errno = EBADF;
            r = fail_at(f, "bind_user", m->dst);
            break;
        }
        uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        if (m->flags & SBX_MOUNT_RO)
            attrs |= MOUNT_ATTR_RDONLY;
        if (set_attr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, attrs) < 0) {
            r = fail_at(f, "bind_user_attrs", m->dst);
            break;
        }
        int target = open_mount_point(root_fd, m->dst, S_ISDIR(st.st_mode), &u);
        if (target < 0) {
            r = fail_at(f, errno == ELOOP ? "mount_point_symlink" : "mount_point", m->dst);
            break;
        }
        if (move_mount(fd, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            r = fail_at(f, "bind_user", m->dst);
        close(target);
    }
    close(root_fd);
    return r;
}

const char *sbx_agent_tmpfs_opts(const struct sbx_wire_config *c, const char *base)
{
    static char opts[96];
    if (!c->tmpfs_bytes)
        return base;
    snprintf(opts, sizeof(opts), "%s,size=%llu", base, (unsigned long long)c->tmpfs_bytes);
    return opts;
}

static int mount_tmpfs(const char *dst, const char *opts, unsigned long flags)
{
    return mount("tmpfs", dst, "tmpfs", flags, opts);
}

int sbx_agent_rootfs(const struct sbx_wire_config *c, const int *fds, size_t n_fds,
                     struct sbx_agent_fail *f)
{
    int tree_fds[SBX_WIRE_MAX_MOUNTS];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return fail_at(f, "make_private", "/");
    if (open_path_mounts(c, tree_fds, f) < 0)
        return -1;
    /* /etc files are generated into the tmpfs, but the host's resolv.conf is read first. */
    if (mount_tmpfs(NEWROOT, "mode=0755,size=4m,nr_inodes=4096", MS_NOSUID | MS_NODEV) < 0)
        return fail_at(f, "root_tmpfs", NEWROOT);
    if (bind_system(f) < 0)
        return -1;
    if (sbx_agent_make_etc(NEWROOT, c, f) < 0 || sbx_agent_make_dev(NEWROOT, c, f) < 0)
        return -1;
    if (mkdir(NEWROOT "/proc", 0555) < 0 ||
        mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return fail_at(f, "proc", "/proc");
    if (mkdir(NEWROOT "/tmp", 01777) < 0 ||
        mount_tmpfs(NEWROOT "/tmp", sbx_agent_tmpfs_opts(c, "mode=1777"),
                    MS_NOSUID | MS_NODEV) < 0)
        return fail_at(f, "tmp", "/tmp");
    int r = bind_user(c, fds, n_fds, tree_fds, f);
    for (uint32_t i = 0; i < c->n_mounts; i++)
        if (tree_fds[i] >= 0)
            close(tree_fds[i]);
    if (r < 0)
        return -1;
    if (sethostname(c->hostname, strlen(c->hostname)) < 0)
        return fail_at(f, "hostname", c->hostname);
    /* pivot_root(".", "."): the old root ends up stacked under the new one and is detached
     * right away, so no path back to the host's tree is left (pivot_root(2), NOTES). */
    if (chdir(NEWROOT) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
        return fail_at(f, "pivot_root", NEWROOT);
    if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        return fail_at(f, "detach_old_root", "/");
    if (set_attr(AT_FDCWD, "/", 0, MOUNT_ATTR_RDONLY) < 0)
        return fail_at(f, "root_readonly", "/");
    return 0;
}
