/* file_worker.c — serves one FILE request inside the sandbox: ls, rm, mkdir, read, write
 * (walk and put live in file_bulk.c).
 *
 * The worker first becomes the requesting user (groups, gid, uid, no capabilities, not
 * dumpable so code of the same uid cannot trace it), then opens the workspace root and
 * resolves everything beneath it (file_ops.h). It answers with FILE_DONE, always last; read
 * sends FILE_OPENED first and the bytes on the data socket, ls sends FILE_ENTRIES batches.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"
#include "file_ops.h"

#define IO_BUF (256u << 10)

int sbx_fop_open(int dirfd, const char *rel, int oflags, mode_t mode, uint64_t resolve)
{
    struct open_how how = {.flags = (uint64_t)(oflags | O_CLOEXEC),
                           .mode = (oflags & O_CREAT) ? mode : 0,
                           .resolve = resolve};
    /* EAGAIN: a concurrent rename raced a ".." lookup; the kernel asks us to retry. */
    for (int i = 0; i < 16; i++) {
        long fd = syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof(how));
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN)
            break;
    }
    return -errno;
}

int sbx_fop_parent(int dirfd, const char *rel, uint64_t resolve, const char **leaf)
{
    const char *slash = strrchr(rel, '/');
    if (!*rel)
        return -EINVAL;
    if (!slash) {
        *leaf = rel;
        return sbx_fop_open(dirfd, "", O_PATH | O_DIRECTORY, 0, resolve);
    }
    char dir[SBX_BULK_PATH_BUF];
    size_t n = (size_t)(slash - rel);
    if (n >= sizeof(dir))
        return -ENAMETOOLONG;
    memcpy(dir, rel, n);
    dir[n] = '\0';
    *leaf = slash + 1;
    return sbx_fop_open(dirfd, dir, O_PATH | O_DIRECTORY, 0, resolve);
}

int sbx_fop_mkdir_p(int dirfd, const char *rel, mode_t mode, uint64_t resolve)
{
    char buf[SBX_BULK_PATH_BUF];
    size_t len = strlen(rel);
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, rel, len + 1);
    for (size_t i = 0; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        if (i == 0)
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        int fd = sbx_fop_open(dirfd, buf, O_PATH | O_DIRECTORY, 0, resolve);
        if (fd >= 0) {
            close(fd);
        } else if (fd == -ENOENT) {
            const char *leaf;
            int pfd = sbx_fop_parent(dirfd, buf, resolve, &leaf);
            if (pfd < 0)
                return pfd;
            int r = mkdirat(pfd, leaf, mode) < 0 && errno != EEXIST ? -errno : 0;
            close(pfd);
            if (r < 0)
                return r;
            /* What now exists there must be a directory we can resolve. */
            fd = sbx_fop_open(dirfd, buf, O_PATH | O_DIRECTORY, 0, resolve);
            if (fd < 0)
                return fd;
            close(fd);
        } else {
            return fd;
        }
        buf[i] = saved;
    }
    return 0;
}

int sbx_fop_rmtree(int parent, const char *name)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    int r = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* gone meanwhile */
        int rr = S_ISDIR(st.st_mode) ? sbx_fop_rmtree(fd, e->d_name)
                                     : (unlinkat(fd, e->d_name, 0) < 0 ? -errno : 0);
        if (rr < 0 && rr != -ENOENT && r == 0)
            r = rr;
    }
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
        r = -errno;
    return r;
}

int sbx_fop_send_all(int sock, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(sock, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int sbx_fop_recv_all(int sock, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(sock, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EPIPE;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void fail(struct sbx_fop_result *r, int err, uint32_t step, const char *detail)
{
    r->err = err < 0 ? -err : err;
    r->step = step;
    snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
}

/* ---- ls ---- */

static uint32_t kind_of(mode_t m)
{
    if (S_ISREG(m))
        return SBX_KIND_FILE;
    if (S_ISDIR(m))
        return SBX_KIND_DIR;
    if (S_ISLNK(m))
        return SBX_KIND_SYMLINK;
    return SBX_KIND_OTHER;
}

static void put_entry(struct sbx_wbuf *b, const char *name, const struct stat *st)
{
    sbx__wbuf_str(b, name);
    sbx__wbuf_u32(b, kind_of(st->st_mode));
    sbx__wbuf_u32(b, st->st_mode & 07777);
    sbx__wbuf_u64(b, (uint64_t)st->st_size);
    sbx__wbuf_u64(b, (uint64_t)(int64_t)st->st_mtim.tv_sec);
    sbx__wbuf_u32(b, st->st_uid);
    sbx__wbuf_u32(b, st->st_gid);
}

/* Entries travel in batches so a directory of any size fits the message limit. */
struct batch {
    struct sbx_wbuf b;
    uint32_t n;
    int chan;
};

static int batch_flush(struct batch *bt)
{
    if (!bt->n)
        return 0;
    struct sbx_wbuf out = {0};
    sbx__wbuf_u32(&out, bt->n);
    sbx__wbuf_bytes(&out, bt->b.data, (uint32_t)bt->b.len);
    int r = out.failed || bt->b.failed
                ? -ENOMEM
                : sbx__wire_send(bt->chan, SBX_MSG_FILE_ENTRIES, out.data, out.len, NULL, 0);
    sbx__wbuf_free(&out);
    sbx__wbuf_free(&bt->b);
    memset(&bt->b, 0, sizeof(bt->b));
    bt->n = 0;
    return r;
}

static void do_ls(int rootfd, const struct sbx_wire_file *f, int chan, struct sbx_fop_result *r)
{
    int fd = sbx_fop_open(rootfd, f->path, O_PATH, 0, SBX_RESOLVE_WS);
    if (fd < 0)
        return fail(r, fd, SBX_FSTEP_RESOLVE, f->path);
    struct stat st;
    struct batch bt = {.chan = chan};
    if (fstat(fd, &st) < 0) {
        fail(r, errno, SBX_FSTEP_OPEN, f->path);
    } else if (!S_ISDIR(st.st_mode)) {
        const char *slash = strrchr(f->path, '/');
        put_entry(&bt.b, slash ? slash + 1 : f->path, &st);
        bt.n = 1;
    } else {
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
        if (!d) {
            fail(r, errno, SBX_FSTEP_OPEN, f->path);
            if (dfd >= 0)
                close(dfd);
        } else {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                    continue;
                put_entry(&bt.b, e->d_name, &st);
                if (++bt.n >= 4096 && batch_flush(&bt) < 0)
                    break;
            }
            closedir(d);
        }
    }
    close(fd);
    int fr = batch_flush(&bt);
    if (fr < 0 && !r->err)
        fail(r, fr, SBX_FSTEP_IO, f->path);
}

/* ---- rm, mkdir ---- */

static void do_rm(int rootfd, const struct sbx_wire_file *f, struct sbx_fop_result *r)
{
    if (!*f->path)
        return fail(r, EBUSY, SBX_FSTEP_OPEN, "the workspace root itself cannot be removed");
    const char *leaf;
    int pfd = sbx_fop_parent(rootfd, f->path, SBX_RESOLVE_WS, &leaf);
    if (pfd < 0) {
        if (pfd == -ENOENT && (f->flags & SBX_FOPF_RECURSIVE))
            return;
        return fail(r, pfd, pfd == -ENOENT ? SBX_FSTEP_OPEN : SBX_FSTEP_RESOLVE, f->path);
    }
    struct stat st;
    int e = 0;
    if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        e = errno;
        if (e == ENOENT && (f->flags & SBX_FOPF_RECURSIVE))
            e = 0;
    } else if (S_ISDIR(st.st_mode)) {
        if (f->flags & SBX_FOPF_RECURSIVE) {
            int rr = sbx_fop_rmtree(pfd, leaf);
            e = rr < 0 ? -rr : 0;
        } else if (unlinkat(pfd, leaf, AT_REMOVEDIR) < 0) {
            e = errno;
        }
    } else if (unlinkat(pfd, leaf, 0) < 0) {
        e = errno;
    }
    close(pfd);
    if (e)
        fail(r, e, SBX_FSTEP_OPEN, f->path);
}

static void do_mkdir(int rootfd, const struct sbx_wire_file *f, struct sbx_fop_result *r)
{
    if (f->flags & SBX_FOPF_PARENTS) {
        int rr = sbx_fop_mkdir_p(rootfd, f->path, 0777, SBX_RESOLVE_WS);
        if (rr < 0)
            fail(r, rr, rr == -EXDEV || rr == -ELOOP ? SBX_FSTEP_RESOLVE : SBX_FSTEP_OPEN,
                 f->path);
        return;
    }
    const char *leaf;
    int pfd = sbx_fop_parent(rootfd, f->path, SBX_RESOLVE_WS, &leaf);
    if (pfd < 0)
        return fail(r, pfd, pfd == -EINVAL ? SBX_FSTEP_OPEN : SBX_FSTEP_RESOLVE,
                    pfd == -EINVAL ? "the workspace root already exists" : f->path);
    if (mkdirat(pfd, leaf, 0777) < 0)
        fail(r, errno, SBX_FSTEP_OPEN, f->path);
    close(pfd);
}

static void do_chmod(int rootfd, const struct sbx_wire_file *f, struct sbx_fop_result *r)
{
    int fd = sbx_fop_open(rootfd, f->path, O_RDONLY | O_NONBLOCK, 0, SBX_RESOLVE_WS);
    if (fd < 0)
        return fail(r, fd, fd == -EXDEV ? SBX_FSTEP_RESOLVE : SBX_FSTEP_OPEN, f->path);
    if (fchmod(fd, f->mode & 07777) < 0)
        fail(r, errno, SBX_FSTEP_IO, f->path);
    close(fd);
}

/* ---- read, write ---- */

/* Opens a regular file; O_NONBLOCK first so that a FIFO planted in the workspace cannot
 * block the worker, then refuses anything that is not a regular file. */
static int open_regular(int rootfd, const char *rel, int oflags, struct stat *st)
{
    int fd = sbx_fop_open(rootfd, rel, oflags | O_NONBLOCK, 0666, SBX_RESOLVE_WS);
    if (fd < 0)
        return fd;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        int e = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
        close(fd);
        return -e;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static void do_read(int rootfd, const struct sbx_wire_file *f, int chan, int data,
                    struct sbx_fop_result *r)
{
    struct stat st;
    int fd = open_regular(rootfd, f->path, O_RDONLY, &st);
    if (fd < 0)
        return fail(r, fd, fd == -EXDEV || fd == -ELOOP ? SBX_FSTEP_RESOLVE : SBX_FSTEP_OPEN,
                    f->path);
    struct sbx_wbuf b = {0};
    sbx__wbuf_u64(&b, (uint64_t)st.st_size);
    int sr = b.failed ? -ENOMEM
                      : sbx__wire_send(chan, SBX_MSG_FILE_OPENED, b.data, b.len, NULL, 0);
    sbx__wbuf_free(&b);
    if (sr < 0) {
        close(fd);
        return fail(r, sr, SBX_FSTEP_STREAM, f->path);
    }
    for (;;) {
        ssize_t n = sendfile(data, fd, NULL, 1u << 30);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail(r, errno, errno == EPIPE || errno == ECONNRESET ? SBX_FSTEP_STREAM : SBX_FSTEP_IO,
                 f->path);
            break;
        }
        if (n == 0)
            break;
        r->bytes += (uint64_t)n;
    }
    close(fd);
}

static void do_write(int rootfd, const struct sbx_wire_file *f, int data, struct sbx_fop_result *r)
{
    const char *slash = strrchr(f->path, '/');
    if (slash) {
        char dir[SBX_BULK_PATH_BUF];
        size_t n = (size_t)(slash - f->path);
        if (n >= sizeof(dir))
            return fail(r, ENAMETOOLONG, SBX_FSTEP_OPEN, f->path);
        memcpy(dir, f->path, n);
        dir[n] = '\0';
        int rr = sbx_fop_mkdir_p(rootfd, dir, 0777, SBX_RESOLVE_WS);
        if (rr < 0)
            return fail(r, rr,
                        rr == -EXDEV || rr == -ELOOP ? SBX_FSTEP_RESOLVE : SBX_FSTEP_OPEN,
                        f->path);
    }
    struct stat st;
    int fd = open_regular(rootfd, f->path, O_WRONLY | O_CREAT | O_TRUNC, &st);
    if (fd < 0)
        return fail(r, fd, fd == -EXDEV || fd == -ELOOP ? SBX_FSTEP_RESOLVE : SBX_FSTEP_OPEN,
                    f->path);
    char *buf = malloc(IO_BUF);
    if (!buf) {
        close(fd);
        return fail(r, ENOMEM, SBX_FSTEP_IO, f->path);
    }
    for (;;) {
        ssize_t n = read(data, buf, IO_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail(r, errno, SBX_FSTEP_STREAM, f->path);
            break;
        }
        if (n == 0)
            break;
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                break;
            off += w;
        }
        if (off < n) {
            fail(r, errno, SBX_FSTEP_IO, f->path);
            break;
        }
        r->bytes += (uint64_t)n;
    }
    free(buf);
    if (close(fd) < 0 && !r->err)
        fail(r, errno, SBX_FSTEP_IO, f->path);
}

/* ---- identity and dispatch ---- */

/* keep: capabilities kept effective, for the whole-tree operations only (walk reads every
 * file of the workspace whoever owns it; a staged put replaces the whole tree). They act only
 * inside the sandbox's own user namespace, and every lookup stays confined (file_ops.h). */
static int become(uint32_t uid, uint32_t gid, uint64_t keep)
{
    gid_t g = gid;
    /* setgroups is denied in an unprivileged caller's namespace, where there are none. */
    if (setgroups(1, &g) < 0 && errno != EPERM)
        return -errno;
    if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
        return -errno;
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    d[0].effective = d[0].permitted = (uint32_t)keep;
    if (keep && syscall(SYS_capset, &h, d) == 0) {
        umask(022);
        return 0;
    }
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capset, &h, d) < 0)
        return -errno;
    umask(022);
    return 0;
}

static void send_done(int chan, const struct sbx_fop_result *r)
{
    struct sbx_wbuf b = {0};
    sbx__wbuf_u32(&b, (uint32_t)r->err);
    sbx__wbuf_u32(&b, r->step);
    sbx__wbuf_str(&b, r->detail);
    sbx__wbuf_u64(&b, r->bytes);
    if (!b.failed)
        sbx__wire_send(chan, SBX_MSG_FILE_DONE, b.data, b.len, NULL, 0);
    sbx__wbuf_free(&b);
}

void sbx_agent_serve_file(int chan, const unsigned char *p, size_t len, const int *fds,
                          size_t n_fds)
{
    static struct sbx_fop_result r;
    struct sbx_wire_file f;
    memset(&r, 0, sizeof(r));
    if (sbx__wire_file_decode(p, len, &f) < 0) {
        fail(&r, EBADMSG, SBX_FSTEP_STREAM, "malformed request");
        send_done(chan, &r);
        return;
    }
    int data = n_fds ? fds[0] : -1;
    int needs_data = f.op == SBX_FOP_READ || f.op == SBX_FOP_WRITE || f.op == SBX_FOP_WALK ||
                     f.op == SBX_FOP_PUT;
    uint64_t keep = 0;
    if (f.op == SBX_FOP_WALK)
        keep = 1u << CAP_DAC_READ_SEARCH;
    else if (f.op == SBX_FOP_PUT && (f.flags & SBX_FOPF_STAGE))
        keep = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_FOWNER);
    int br = become(f.uid, f.gid, keep);
    int rootfd = br < 0 ? -1 : open(f.root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat rst;
    if (rootfd >= 0 && fstat(rootfd, &rst) == 0 && rst.st_nlink == 0) {
        /* The workspace directory was deleted on the host: the mount still shows the dead
         * directory, where nothing can be created. */
        close(rootfd);
        rootfd = -1;
        errno = ENOENT;
    }
    if (br < 0) {
        fail(&r, br, SBX_FSTEP_IDENTITY, "switching to the requested user");
    } else if (rootfd < 0) {
        fail(&r, errno, SBX_FSTEP_RESOLVE, f.root);
        r.step = SBX_FSTEP_NONE; /* the root itself is missing */
    } else if (needs_data && data < 0) {
        fail(&r, EBADMSG, SBX_FSTEP_STREAM, "no data socket");
    } else {
        switch (f.op) {
        case SBX_FOP_LS: do_ls(rootfd, &f, chan, &r); break;
        case SBX_FOP_RM: do_rm(rootfd, &f, &r); break;
        case SBX_FOP_MKDIR: do_mkdir(rootfd, &f, &r); break;
        case SBX_FOP_CHMOD: do_chmod(rootfd, &f, &r); break;
        case SBX_FOP_READ: do_read(rootfd, &f, chan, data, &r); break;
        case SBX_FOP_WRITE: do_write(rootfd, &f, data, &r); break;
        case SBX_FOP_WALK: sbx_fop_walk(rootfd, &f, data, &r); break;
        case SBX_FOP_PUT: sbx_fop_put(rootfd, &f, data, &r); break;
        default: fail(&r, EOPNOTSUPP, SBX_FSTEP_STREAM, "unknown file operation"); break;
        }
    }
    /* The data socket ends before DONE, so the host sees the stream's end first. */
    if (data >= 0)
        close(data);
    if (rootfd >= 0)
        close(rootfd);
    send_done(chan, &r);
    close(chan);
    sbx_fop_cleanup();
    sbx__wire_file_clear(&f);
}
