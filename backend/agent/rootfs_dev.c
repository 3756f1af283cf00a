/* rootfs_dev.c — the sandbox's /dev and /etc.
 *
 * /dev: a small tmpfs with the harmless host device nodes bind-mounted in (a user namespace
 * cannot mknod), a private devpts instance (so a pty opened inside is never one of the
 * host's), and /dev/shm. /etc: generated passwd/group/hosts/nsswitch.conf, the host's
 * resolv.conf and the loader's ld.so.conf(.d) copied, and read-only binds of the loader's
 * cache and Debian's alternatives symlinks. Nothing else of the host's /etc is visible.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

static int fail_at(struct sbx_agent_fail *f, const char *stage, const char *what)
{
    f->stage = stage;
    f->errnum = errno;
    snprintf(f->detail, sizeof(f->detail), "%s", what);
    return -1;
}

static int write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    return close(fd);
}

static int write_str(const char *path, const char *s)
{
    return write_file(path, s, strlen(s), 0644);
}

int sbx_agent_make_dev(const char *newroot, const struct sbx_wire_config *c,
                       struct sbx_agent_fail *f)
{
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    char dev[256], p[320];
    snprintf(dev, sizeof(dev), "%s/dev", newroot);
    if (mkdir(dev, 0755) < 0 ||
        mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
        return fail_at(f, "dev", "/dev");
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
        char host[64];
        snprintf(host, sizeof(host), "/dev/%s", nodes[i]);
        snprintf(p, sizeof(p), "%s/%s", dev, nodes[i]);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            return fail_at(f, "dev_node", host);
        close(fd);
        if (mount(host, p, NULL, MS_BIND, NULL) < 0)
            return fail_at(f, "dev_node", host);
    }
    snprintf(p, sizeof(p), "%s/pts", dev);
    if (mkdir(p, 0755) < 0 || mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC,
                                     "newinstance,ptmxmode=0666,mode=0620") < 0)
        return fail_at(f, "devpts", "/dev/pts");
    snprintf(p, sizeof(p), "%s/ptmx", dev);
    if (symlink("pts/ptmx", p) < 0)
        return fail_at(f, "dev_link", "/dev/ptmx");
    snprintf(p, sizeof(p), "%s/shm", dev);
    if (mkdir(p, 01777) < 0 ||
        mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, sbx_agent_tmpfs_opts(c, "mode=1777")) <
            0)
        return fail_at(f, "dev_shm", "/dev/shm");
    static const char *const links[][2] = {{"/proc/self/fd", "fd"},
                                           {"/proc/self/fd/0", "stdin"},
                                           {"/proc/self/fd/1", "stdout"},
                                           {"/proc/self/fd/2", "stderr"}};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dev, links[i][1]);
        if (symlink(links[i][0], p) < 0)
            return fail_at(f, "dev_link", links[i][1]);
    }
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount_setattr(AT_FDCWD, dev, 0, &a, sizeof(a)) < 0)
        return fail_at(f, "dev_readonly", "/dev");
    return 0;
}

/* Copies a small host file into the new /etc; a missing host file is not an error. */
static int copy_small(const char *host, const char *dst)
{
    char buf[16384];
    int fd = open(host, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < 0)
        return 0;
    return write_file(dst, buf, (size_t)n, 0644);
}

/* /etc/ld.so.conf.d/ *.conf, copied; a host without the directory has nothing to copy. */
static int copy_dir_conf(const char *etc)
{
    DIR *d = opendir("/etc/ld.so.conf.d");
    if (!d)
        return 0;
    char dir[320], src[600], dst[600];
    snprintf(dir, sizeof(dir), "%s/ld.so.conf.d", etc);
    int r = mkdir(dir, 0755);
    struct dirent *de;
    while (r == 0 && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".conf") != 0)
            continue;
        snprintf(src, sizeof(src), "/etc/ld.so.conf.d/%s", de->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", dir, de->d_name);
        r = copy_small(src, dst);
    }
    closedir(d);
    return r;
}

/* Appends a line to a file the agent just wrote. */
static int append_line(const char *path, const char *line)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = strlen(line);
    int r = write(fd, line, n) == (ssize_t)n && write(fd, "\n", 1) == 1 ? 0 : -1;
    close(fd);
    return r;
}

/* Manifest users ("name:uid:gid", checked by the host): a passwd line each, and a home
 * directory under /home on the root's tmpfs, owned by the user. */
static int add_accounts(const char *newroot, const char *passwd, const struct sbx_wire_config *c)
{
    char home[320], line[512];
    for (size_t i = 0; c->accounts && c->accounts[i]; i++) {
        char name[64];
        unsigned uid, gid;
        if (sscanf(c->accounts[i], "%63[a-z0-9_-]:%u:%u", name, &uid, &gid) != 3)
            return -1;
        snprintf(home, sizeof(home), "%s/home", newroot);
        if (mkdir(home, 0755) < 0 && errno != EEXIST)
            return -1;
        snprintf(home, sizeof(home), "%s/home/%s", newroot, name);
        if ((mkdir(home, 0755) < 0 && errno != EEXIST) || chown(home, uid, gid) < 0)
            return -1;
        snprintf(line, sizeof(line), "%s:x:%u:%u:%s:/home/%s:/bin/sh", name, uid, gid, name,
                 name);
        if (append_line(passwd, line) < 0)
            return -1;
    }
    return 0;
}

/* A user group per account, then the manifest's groups ("name:gid:members"). */
static int add_groups(const char *group, const struct sbx_wire_config *c)
{
    char line[8192];
    for (size_t i = 0; c->accounts && c->accounts[i]; i++) {
        char name[64];
        unsigned uid, gid;
        if (sscanf(c->accounts[i], "%63[a-z0-9_-]:%u:%u", name, &uid, &gid) != 3)
            return -1;
        snprintf(line, sizeof(line), "%s:x:%u:", name, gid);
        if (append_line(group, line) < 0)
            return -1;
    }
    for (size_t i = 0; c->groups && c->groups[i]; i++) {
        const char *colon = strchr(c->groups[i], ':');
        if (!colon)
            return -1;
        snprintf(line, sizeof(line), "%.*s:x:%s", (int)(colon - c->groups[i]), c->groups[i],
                 colon + 1);
        if (append_line(group, line) < 0)
            return -1;
    }
    return 0;
}

int sbx_agent_make_etc(const char *newroot, const struct sbx_wire_config *c,
                       struct sbx_agent_fail *f)
{
    char etc[256], p[320], buf[2048];
    snprintf(etc, sizeof(etc), "%s/etc", newroot);
    if (mkdir(etc, 0755) < 0)
        return fail_at(f, "etc", "/etc");

    int n;
    if (c->flags & SBX_CFG_RANGE_MAP)
        n = snprintf(buf, sizeof(buf),
                     "root:x:0:0:root:%s:/bin/sh\n"
                     "%s:x:%u:%u:%s:%s:/bin/sh\n"
                     "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                     "sbx-agent:x:%u:%u:sbx agent:/:/usr/sbin/nologin\n",
                     c->root, c->user_name, c->sandbox_uid, c->sandbox_gid, c->user_name,
                     c->root, SBX_AGENT_UID, SBX_AGENT_UID);
    else /* unprivileged: only the caller's id is mapped, to the sandbox user */
        n = snprintf(buf, sizeof(buf), "%s:x:%u:%u:%s:%s:/bin/sh\n", c->user_name,
                     c->sandbox_uid, c->sandbox_gid, c->user_name, c->root);
    snprintf(p, sizeof(p), "%s/passwd", etc);
    if (write_file(p, buf, (size_t)n, 0644) < 0 || add_accounts(newroot, p, c) < 0)
        return fail_at(f, "etc_passwd", "/etc/passwd");
    if (c->flags & SBX_CFG_RANGE_MAP)
        n = snprintf(buf, sizeof(buf), "root:x:0:\n%s:x:%u:\nnogroup:x:65534:\nsbx-agent:x:%u:\n",
                     c->user_name, c->sandbox_gid, SBX_AGENT_UID);
    else
        n = snprintf(buf, sizeof(buf), "%s:x:%u:\n", c->user_name, c->sandbox_gid);
    snprintf(p, sizeof(p), "%s/group", etc);
    if (write_file(p, buf, (size_t)n, 0644) < 0 || add_groups(p, c) < 0)
        return fail_at(f, "etc_group", "/etc/group");

    n = snprintf(buf, sizeof(buf),
                 "127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost "
                 "ip6-loopback\n",
                 c->hostname);
    snprintf(p, sizeof(p), "%s/hosts", etc);
    if (write_file(p, buf, (size_t)n, 0644) < 0)
        return fail_at(f, "etc_hosts", "/etc/hosts");
    snprintf(p, sizeof(p), "%s/hostname", etc);
    n = snprintf(buf, sizeof(buf), "%s\n", c->hostname);
    if (write_file(p, buf, (size_t)n, 0644) < 0)
        return fail_at(f, "etc_hostname", "/etc/hostname");
    snprintf(p, sizeof(p), "%s/nsswitch.conf", etc);
    if (write_str(p, "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
                     "networks: files\nprotocols: files\nservices: files\n") < 0)
        return fail_at(f, "etc_nsswitch", "/etc/nsswitch.conf");
    snprintf(p, sizeof(p), "%s/resolv.conf", etc);
    if (copy_small("/etc/resolv.conf", p) < 0)
        return fail_at(f, "etc_resolv", "/etc/resolv.conf");

    /* The loader's configuration (copies: a few short files) ... */
    snprintf(p, sizeof(p), "%s/ld.so.conf", etc);
    if (copy_small("/etc/ld.so.conf", p) < 0)
        return fail_at(f, "etc_ldconf", "/etc/ld.so.conf");
    if (copy_dir_conf(etc) < 0)
        return fail_at(f, "etc_ldconf", "/etc/ld.so.conf.d");
    /* ... and what it and Debian's alternatives symlinks (awk, editor, ...) need, bound
     * read-only when the host has them. */
    static const char *const binds[] = {"ld.so.cache", "alternatives"};
    for (size_t i = 0; i < sizeof(binds) / sizeof(binds[0]); i++) {
        char host[128];
        struct stat st;
        snprintf(host, sizeof(host), "/etc/%s", binds[i]);
        if (stat(host, &st) < 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", etc, binds[i]);
        int r = S_ISDIR(st.st_mode) ? mkdir(p, 0755) : write_file(p, "", 0, 0644);
        if (r < 0 || mount(host, p, NULL, MS_BIND | MS_REC, NULL) < 0)
            return fail_at(f, "etc_bind", host);
        struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                           MOUNT_ATTR_NODEV};
        if (mount_setattr(AT_FDCWD, p, AT_RECURSIVE, &a, sizeof(a)) < 0)
            return fail_at(f, "etc_bind", host);
    }
    char target[256];
    ssize_t k = readlink("/etc/localtime", target, sizeof(target) - 1);
    if (k > 0) {
        target[k] = '\0';
        snprintf(p, sizeof(p), "%s/localtime", etc);
        if (symlink(target, p) < 0)
            return fail_at(f, "etc_localtime", "/etc/localtime");
    }
    return 0;
}
