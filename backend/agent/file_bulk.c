/* file_bulk.c — whole trees in and out of the sandbox as bulk records (wire_bulk.h).
 *
 * walk: depth first, names sorted (so the same tree always gives the same stream), never
 * following a symlink, staying on the root's filesystem (mount points inside are left out),
 * hardlinked files sent as plain files, sparse files as their data extents. FIFOs, sockets
 * and devices are left out: no archive sbx accepts could restore them.
 *
 * put: writes records below `path`. Every lookup uses RESOLVE_NO_SYMLINKS as well, so a
 * symlink anywhere in a member's parent chain (planted by the sandbox, or an earlier member)
 * stops the operation instead of being followed. With SBX_FOPF_STAGE the records go to a
 * fresh staging directory and only a complete stream (END) is swapped in: the old entries
 * move to a trash directory, the new ones move up, skip paths move back, and the trash is
 * removed. Renames within one directory are cheap and cannot fail for lack of space, so a
 * full disk or a broken stream leaves the old tree in place.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "file_ops.h"

#define STAGE_PREFIX ".sbx-stage-"
#define TRASH_PREFIX ".sbx-trash-"
#define BUF_SIZE     (256u << 10)

static void fail(struct sbx_fop_result *r, int err, uint32_t step, const char *detail)
{
    if (r->err)
        return; /* the first failure is the one reported */
    r->err = err < 0 ? -err : err;
    r->step = step;
    snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
}

static int skipped(const struct sbx_wire_file *f, const char *rel)
{
    for (size_t i = 0; f->skip && f->skip[i]; i++) {
        size_t n = strlen(f->skip[i]);
        if (n && !strncmp(rel, f->skip[i], n) && (rel[n] == '\0' || rel[n] == '/'))
            return 1;
    }
    return 0;
}

static int internal_name(const char *name)
{
    return !strncmp(name, STAGE_PREFIX, sizeof(STAGE_PREFIX) - 1) ||
           !strncmp(name, TRASH_PREFIX, sizeof(TRASH_PREFIX) - 1);
}

/* ---- walk ---- */

struct walker {
    int data;
    dev_t dev;
    const struct sbx_wire_file *f;
    struct sbx_fop_result *r;
    char *buf;
    size_t len;
};

static int w_flush(struct walker *w)
{
    int e = sbx_fop_send_all(w->data, w->buf, w->len);
    w->len = 0;
    return e;
}

static int w_put(struct walker *w, const void *p, size_t n)
{
    if (w->len + n > BUF_SIZE) {
        int e = w_flush(w);
        if (e < 0)
            return e;
    }
    if (n > BUF_SIZE)
        return sbx_fop_send_all(w->data, p, n);
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

static int w_header(struct walker *w, uint32_t kind, const struct stat *st, const char *rel,
                    const char *target, uint32_t n_ext, uint64_t size)
{
    struct sbx_bulk_hdr h = {.kind = kind,
                             .mode = st ? st->st_mode & 07777 : 0,
                             .mtime_sec = st ? st->st_mtim.tv_sec : 0,
                             .mtime_nsec = st ? (uint32_t)st->st_mtim.tv_nsec : 0,
                             .path_len = (uint32_t)strlen(rel),
                             .target_len = target ? (uint32_t)strlen(target) : 0,
                             .n_extents = n_ext,
                             .size = size};
    int e = w_put(w, &h, sizeof(h));
    if (!e)
        e = w_put(w, rel, h.path_len);
    if (!e && target)
        e = w_put(w, target, h.target_len);
    return e;
}

/* The data extents of fd: the whole file unless it has holes (fewer blocks than bytes). */
static size_t extents_of(int fd, const struct stat *st, struct sbx_bulk_extent **out)
{
    uint64_t size = (uint64_t)st->st_size;
    *out = NULL;
    if (size == 0)
        return 0;
    if ((uint64_t)st->st_blocks * 512u < size) {
        size_t n = 0, cap = 0;
        struct sbx_bulk_extent *v = NULL;
        off_t off = 0;
        for (;;) {
            off_t d = lseek(fd, off, SEEK_DATA);
            if (d < 0 || (uint64_t)d >= size)
                break;
            off_t h = lseek(fd, d, SEEK_HOLE);
            if (h < 0 || (uint64_t)h > size)
                h = (off_t)size;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                if (cap > SBX_BULK_MAX_EXTENTS)
                    goto whole;
                struct sbx_bulk_extent *nv = realloc(v, cap * sizeof(*v));
                if (!nv)
                    goto whole;
                v = nv;
            }
            v[n].offset = (uint64_t)d;
            v[n].len = (uint64_t)(h - d);
            n++;
            off = h;
        }
        *out = v;
        return n;
    whole:
        free(v);
    }
    *out = malloc(sizeof(**out));
    if (!*out)
        return 0;
    (*out)[0].offset = 0;
    (*out)[0].len = size;
    return 1;
}

/* Sends exactly len bytes of fd from off: zeros where the file ended early. */
static int w_data(struct walker *w, int fd, uint64_t off, uint64_t len)
{
    int e = w_flush(w);
    while (!e && len) {
        size_t want = len > BUF_SIZE ? BUF_SIZE : (size_t)len;
        ssize_t n = pread(fd, w->buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            memset(w->buf, 0, want);
            n = (ssize_t)want;
        }
        e = sbx_fop_send_all(w->data, w->buf, (size_t)n);
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return e;
}

static int walk_file(struct walker *w, int dirfd, const char *name, const char *rel)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP || errno == ENXIO ? 0 : -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0; /* replaced meanwhile */
    }
    struct sbx_bulk_extent *ext;
    size_t n = extents_of(fd, &st, &ext);
    if (st.st_size && !ext) {
        close(fd);
        return -ENOMEM;
    }
    int e = w_header(w, SBX_BULK_FILE, &st, rel, NULL, (uint32_t)n, (uint64_t)st.st_size);
    if (!e && n)
        e = w_put(w, ext, n * sizeof(*ext));
    for (size_t i = 0; !e && i < n; i++)
        e = w_data(w, fd, ext[i].offset, ext[i].len);
    free(ext);
    close(fd);
    return e;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int walk_dir(struct walker *w, int fd, const char *prefix, int depth)
{
    if (depth > 512)
        return -ELOOP;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return -e;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int e = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (!*prefix && internal_name(de->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(names, cap * sizeof(*nv));
            if (!nv) {
                e = -ENOMEM;
                break;
            }
            names = nv;
        }
        if (!(names[n] = strdup(de->d_name))) {
            e = -ENOMEM;
            break;
        }
        n++;
    }
    if (!e)
        qsort(names, n, sizeof(*names), cmp_names);
    char rel[SBX_BULK_PATH_BUF];
    for (size_t i = 0; !e && i < n; i++) {
        int len = snprintf(rel, sizeof(rel), "%s%s%s", prefix, *prefix ? "/" : "", names[i]);
        if (len < 0 || (size_t)len >= SBX_BULK_MAX_PATH) {
            e = -ENAMETOOLONG;
            fail(w->r, e, SBX_FSTEP_IO, rel);
            break;
        }
        if (skipped(w->f, rel))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (st.st_dev != w->dev)
            continue; /* a mount point: not part of the workspace's own contents */
        if (S_ISDIR(st.st_mode)) {
            int cfd = openat(dirfd(d), names[i],
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (cfd < 0)
                continue;
            e = w_header(w, SBX_BULK_DIR, &st, rel, NULL, 0, 0);
            if (!e)
                e = walk_dir(w, cfd, rel, depth + 1);
            else
                close(cfd);
        } else if (S_ISREG(st.st_mode)) {
            e = walk_file(w, dirfd(d), names[i], rel);
            if (e < 0 && e != -EPIPE && e != -ECONNRESET)
                fail(w->r, e, SBX_FSTEP_IO, rel);
        } else if (S_ISLNK(st.st_mode)) {
            char target[SBX_BULK_PATH_BUF];
            ssize_t tl = readlinkat(dirfd(d), names[i], target, SBX_BULK_MAX_PATH);
            if (tl < 0 || (size_t)tl >= SBX_BULK_MAX_PATH)
                continue;
            target[tl] = '\0';
            e = w_header(w, SBX_BULK_SYMLINK, &st, rel, target, 0, 0);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return e;
}

void sbx_fop_walk(int rootfd, const struct sbx_wire_file *f, int data, struct sbx_fop_result *r)
{
    struct walker w = {.data = data, .f = f, .r = r, .buf = malloc(BUF_SIZE)};
    if (!w.buf)
        return fail(r, ENOMEM, SBX_FSTEP_IO, "");
    int fd = sbx_fop_open(rootfd, f->path, O_RDONLY | O_DIRECTORY, 0, SBX_RESOLVE_WS);
    struct stat st;
    int e;
    if (fd < 0) {
        e = fd;
        fail(r, e, SBX_FSTEP_RESOLVE, f->path);
    } else if (fstat(fd, &st) < 0) {
        e = -errno;
        close(fd);
        fail(r, e, SBX_FSTEP_IO, f->path);
    } else {
        w.dev = st.st_dev;
        e = w_header(&w, SBX_BULK_DIR, &st, "", NULL, 0, 0);
        if (!e)
            e = walk_dir(&w, fd, "", 0);
        else
            close(fd);
        if (e < 0)
            fail(r, e, e == -EPIPE || e == -ECONNRESET ? SBX_FSTEP_STREAM : SBX_FSTEP_IO, "");
    }
    if (!r->err) {
        struct sbx_bulk_hdr end = {.kind = SBX_BULK_END};
        if (w_put(&w, &end, sizeof(end)) < 0 || w_flush(&w) < 0)
            fail(r, EPIPE, SBX_FSTEP_STREAM, "");
    } else {
        struct sbx_bulk_hdr ab = {.kind = SBX_BULK_ABORT};
        w.len = 0;
        if (w_put(&w, &ab, sizeof(ab)) == 0)
            w_flush(&w);
    }
    free(w.buf);
}

/* ---- put ---- */

struct dirtime {
    char *rel;
    uint32_t mode;
    struct timespec mtime;
};

struct putter {
    int data, work; /* work: where members go (the staging dir, or the destination) */
    const struct sbx_wire_file *f;
    struct sbx_fop_result *r;
    char *buf;
    struct dirtime *dirs;
    size_t n_dirs, cap_dirs;
};

/* Finds the first symlink in rel's parent chain (for the error's detail). */
static void symlink_prefix(int work, const char *rel, char *out, size_t cap)
{
    char buf[SBX_BULK_PATH_BUF];
    snprintf(buf, sizeof(buf), "%s", rel);
    out[0] = '\0';
    for (char *p = buf; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        struct stat st;
        int fd = sbx_fop_open(work, buf, O_PATH | O_NOFOLLOW, 0, SBX_RESOLVE_WS);
        int is_link = fd >= 0 && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode);
        if (fd >= 0)
            close(fd);
        if (is_link) {
            snprintf(out, cap, "%s", buf);
            return;
        }
        *p = '/';
    }
}

static int p_err(struct putter *p, int e, const char *rel)
{
    if (e == -ELOOP) {
        char prefix[SBX_BULK_PATH_BUF];
        symlink_prefix(p->work, rel, prefix, sizeof(prefix));
        if (prefix[0]) {
            fail(p->r, e, SBX_FSTEP_SYMLINK_PARENT, prefix);
            snprintf(p->r->detail, sizeof(p->r->detail), "%s", rel);
            size_t used = strlen(p->r->detail);
            snprintf(p->r->detail + used, sizeof(p->r->detail) - used, "%c%s", '\n', prefix);
            return e;
        }
    }
    fail(p->r, e, e == -EXDEV ? SBX_FSTEP_RESOLVE : SBX_FSTEP_IO, rel);
    return e;
}

/* Makes room for a member at rel: a directory there is an error (a file cannot replace it),
 * anything else is unlinked. */
static int clear_leaf(struct putter *p, const char *rel, int *pfd_out, const char **leaf)
{
    char dir[SBX_BULK_PATH_BUF];
    const char *slash = strrchr(rel, '/');
    if (slash) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rel), rel);
        int e = sbx_fop_mkdir_p(p->work, dir, 0755, SBX_RESOLVE_OWN);
        if (e < 0)
            return e;
    }
    int pfd = sbx_fop_parent(p->work, rel, SBX_RESOLVE_OWN, leaf);
    if (pfd < 0)
        return pfd;
    struct stat st;
    if (fstatat(pfd, *leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) {
            close(pfd);
            return -EISDIR;
        }
        if (unlinkat(pfd, *leaf, 0) < 0 && errno != ENOENT) {
            int e = -errno;
            close(pfd);
            return e;
        }
    }
    *pfd_out = pfd;
    return 0;
}

static int put_file(struct putter *p, const struct sbx_bulk_hdr *h, const char *rel)
{
    int pfd;
    const char *leaf;
    int e = clear_leaf(p, rel, &pfd, &leaf);
    if (e < 0)
        return e;
    int fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    e = fd < 0 ? -errno : 0;
    close(pfd);
    if (e < 0)
        return e;
    int stream_err = 0;
    for (;;) {
        struct sbx_bulk_chunk c;
        if ((e = sbx_fop_recv_all(p->data, &c, sizeof(c))) < 0) {
            stream_err = 1;
            break;
        }
        uint64_t left = c.len;
        uint64_t off = c.offset;
        while (left) {
            size_t want = left > BUF_SIZE ? BUF_SIZE : (size_t)left;
            if ((e = sbx_fop_recv_all(p->data, p->buf, want)) < 0) {
                stream_err = 1;
                break;
            }
            size_t done = 0;
            while (done < want) {
                ssize_t n = pwrite(fd, p->buf + done, want - done, (off_t)(off + done));
                if (n < 0 && errno == EINTR)
                    continue;
                if (n < 0) {
                    e = -errno;
                    break;
                }
                done += (size_t)n;
            }
            if (e < 0)
                break;
            off += want;
            left -= want;
        }
        if (e < 0 || c.last)
            break;
    }
    if (!e && ftruncate(fd, (off_t)h->size) < 0)
        e = -errno;
    if (!e && (p->f->flags & SBX_FOPF_MODES)) {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                                 {.tv_sec = h->mtime_sec, .tv_nsec = h->mtime_nsec}};
        if (fchmod(fd, h->mode & 0777) < 0 || futimens(fd, ts) < 0)
            e = -errno;
    } else if (!e && fchmod(fd, 0666 & ~(mode_t)022) < 0) {
        e = -errno; /* created 0600 while partial; an extracted file ends as a new file would */
    }
    if (close(fd) < 0 && !e)
        e = -errno;
    if (e < 0 && stream_err) {
        fail(p->r, e, SBX_FSTEP_STREAM, rel);
        return e;
    }
    return e;
}

static int put_symlink(struct putter *p, const struct sbx_bulk_hdr *h, const char *rel,
                       const char *target)
{
    int pfd;
    const char *leaf;
    int e = clear_leaf(p, rel, &pfd, &leaf);
    if (e < 0)
        return e;
    if (symlinkat(target, pfd, leaf) < 0)
        e = -errno;
    if (!e && (p->f->flags & SBX_FOPF_MODES)) {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                                 {.tv_sec = h->mtime_sec, .tv_nsec = h->mtime_nsec}};
        utimensat(pfd, leaf, ts, AT_SYMLINK_NOFOLLOW);
    }
    close(pfd);
    return e;
}

static int put_dir(struct putter *p, const struct sbx_bulk_hdr *h, const char *rel)
{
    if (!*rel)
        return 0; /* the root: exists */
    /* An existing non-directory leaf is replaced by the directory. */
    const char *leaf;
    int pfd = -1;
    const char *slash = strrchr(rel, '/');
    if (slash) {
        char dir[SBX_BULK_PATH_BUF];
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rel), rel);
        int e = sbx_fop_mkdir_p(p->work, dir, 0755, SBX_RESOLVE_OWN);
        if (e < 0)
            return e;
    }
    pfd = sbx_fop_parent(p->work, rel, SBX_RESOLVE_OWN, &leaf);
    if (pfd < 0)
        return pfd;
    struct stat st;
    int e = 0;
    if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
        unlinkat(pfd, leaf, 0) < 0)
        e = -errno;
    if (!e && mkdirat(pfd, leaf, 0755) < 0 && errno != EEXIST)
        e = -errno;
    close(pfd);
    if (!e && (p->f->flags & SBX_FOPF_MODES)) {
        if (p->n_dirs == p->cap_dirs) {
            size_t cap = p->cap_dirs ? p->cap_dirs * 2 : 64;
            struct dirtime *nv = realloc(p->dirs, cap * sizeof(*nv));
            if (!nv)
                return -ENOMEM;
            p->dirs = nv;
            p->cap_dirs = cap;
        }
        struct dirtime *d = &p->dirs[p->n_dirs];
        if (!(d->rel = strdup(rel)))
            return -ENOMEM;
        d->mode = h->mode & 0777;
        d->mtime.tv_sec = h->mtime_sec;
        d->mtime.tv_nsec = h->mtime_nsec;
        p->n_dirs++;
    }
    return e;
}

/* Directory modes and mtimes go last, deepest first: creating children changes a
 * directory's mtime, and a read-only directory would refuse its own children. */
static void apply_dir_times(struct putter *p)
{
    for (size_t i = p->n_dirs; i-- > 0;) {
        struct dirtime *d = &p->dirs[i];
        int fd = sbx_fop_open(p->work, d->rel, O_RDONLY | O_DIRECTORY, 0, SBX_RESOLVE_OWN);
        if (fd >= 0) {
            struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, d->mtime};
            fchmod(fd, d->mode | 0700);
            futimens(fd, ts);
            close(fd);
        }
    }
}

static int valid_rel(const char *rel)
{
    if (rel[0] == '/')
        return 0;
    for (const char *c = rel; *c;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return 0;
        c += n;
        if (*c)
            c++;
    }
    return 1;
}

/* Reads records until END (returns 0), ABORT or a broken stream (-ECANCELED / -EPIPE), or a
 * failure writing a member (its -errno, with r filled). */
static int put_records(struct putter *p)
{
    char rel[SBX_BULK_PATH_BUF], target[SBX_BULK_PATH_BUF];
    for (;;) {
        struct sbx_bulk_hdr h;
        int e = sbx_fop_recv_all(p->data, &h, sizeof(h));
        if (e < 0) {
            fail(p->r, e, SBX_FSTEP_STREAM, "the archive stream ended early");
            return e;
        }
        if (h.kind == SBX_BULK_END)
            return 0;
        if (h.kind == SBX_BULK_ABORT) {
            fail(p->r, ECANCELED, SBX_FSTEP_STREAM, "cancelled");
            return -ECANCELED;
        }
        if (h.path_len >= SBX_BULK_MAX_PATH || h.target_len >= SBX_BULK_MAX_PATH ||
            h.kind < SBX_BULK_DIR || h.kind > SBX_BULK_SYMLINK) {
            fail(p->r, EBADMSG, SBX_FSTEP_STREAM, "malformed record");
            return -EBADMSG;
        }
        if ((e = sbx_fop_recv_all(p->data, rel, h.path_len)) < 0 ||
            (e = sbx_fop_recv_all(p->data, target, h.target_len)) < 0) {
            fail(p->r, e, SBX_FSTEP_STREAM, "the archive stream ended early");
            return e;
        }
        rel[h.path_len] = '\0';
        target[h.target_len] = '\0';
        if (*rel && !valid_rel(rel)) {
            fail(p->r, EINVAL, SBX_FSTEP_STREAM, rel);
            return -EINVAL;
        }
        if (h.kind == SBX_BULK_DIR)
            e = put_dir(p, &h, rel);
        else if (h.kind == SBX_BULK_FILE)
            e = put_file(p, &h, rel);
        else
            e = put_symlink(p, &h, rel, target);
        if (e < 0)
            return p_err(p, e, rel);
    }
}

static void random_name(char *out, size_t cap, const char *prefix)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(out, cap, "%s%d-%lx", prefix, (int)getpid(),
             (unsigned long)(ts.tv_nsec ^ (ts.tv_sec << 20)));
}

/* Moves skip path rel from the trash back into dest, unless the new tree has it too. */
static void restore_skip(int dest, int trash, const char *rel)
{
    struct stat st;
    int probe = sbx_fop_open(dest, rel, O_PATH | O_NOFOLLOW, 0, SBX_RESOLVE_OWN);
    if (probe >= 0) {
        close(probe);
        return;
    }
    const char *from_leaf, *to_leaf;
    int from = sbx_fop_parent(trash, rel, SBX_RESOLVE_OWN, &from_leaf);
    if (from < 0)
        return;
    if (fstatat(from, from_leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        const char *slash = strrchr(rel, '/');
        if (slash) {
            char dir[SBX_BULK_PATH_BUF];
            snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rel), rel);
            sbx_fop_mkdir_p(dest, dir, 0755, SBX_RESOLVE_OWN);
        }
        int to = sbx_fop_parent(dest, rel, SBX_RESOLVE_OWN, &to_leaf);
        if (to >= 0) {
            renameat(from, from_leaf, to, to_leaf);
            close(to);
        }
    }
    close(from);
}

static int pending_dir = -1;
static char pending_trash[64];

static int swap_in(int dest, int stage, const char *stage_name, const struct sbx_wire_file *f)
{
    char trash_name[64];
    random_name(trash_name, sizeof(trash_name), TRASH_PREFIX);
    if (mkdirat(dest, trash_name, 0700) < 0)
        return -errno;
    int trash = openat(dest, trash_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (trash < 0)
        return -errno;
    int e = 0;
    int dfd = openat(dest, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
    if (!d) {
        e = -errno;
    } else {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
                !strcmp(de->d_name, stage_name) || !strcmp(de->d_name, trash_name))
                continue;
            if (renameat(dest, de->d_name, trash, de->d_name) < 0 && errno != ENOENT) {
                e = -errno;
                break;
            }
        }
        closedir(d);
    }
    if (!e) {
        int sfd = openat(stage, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *s = sfd < 0 ? NULL : fdopendir(sfd);
        if (!s) {
            e = -errno;
        } else {
            struct dirent *de;
            while ((de = readdir(s)) != NULL) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                    continue;
                if (renameat(stage, de->d_name, dest, de->d_name) < 0 && !e)
                    e = -errno;
            }
            closedir(s);
        }
    }
    for (size_t i = 0; f->skip && f->skip[i]; i++)
        if (*f->skip[i] && valid_rel(f->skip[i]))
            restore_skip(dest, trash, f->skip[i]);
    close(trash);
    /* The old tree is removed after the answer went out (sbx_fop_cleanup): the caller does not
     * wait for a large delete, and the tree is already out of the way. */
    if (pending_dir < 0 && (pending_dir = dup(dest)) >= 0)
        snprintf(pending_trash, sizeof(pending_trash), "%s", trash_name);
    else
        sbx_fop_rmtree(dest, trash_name);
    return e;
}

void sbx_fop_cleanup(void)
{
    if (pending_dir < 0)
        return;
    sbx_fop_rmtree(pending_dir, pending_trash);
    close(pending_dir);
    pending_dir = -1;
}

void sbx_fop_put(int rootfd, const struct sbx_wire_file *f, int data, struct sbx_fop_result *r)
{
    struct putter p = {.data = data, .work = -1, .f = f, .r = r, .buf = malloc(BUF_SIZE)};
    if (!p.buf)
        return fail(r, ENOMEM, SBX_FSTEP_IO, "");
    int e = *f->path ? sbx_fop_mkdir_p(rootfd, f->path, 0755, SBX_RESOLVE_WS) : 0;
    int dest = e < 0 ? e : sbx_fop_open(rootfd, f->path, O_RDONLY | O_DIRECTORY, 0, SBX_RESOLVE_WS);
    char stage_name[64] = "";
    if (dest < 0) {
        fail(r, dest, SBX_FSTEP_RESOLVE, f->path);
        free(p.buf);
        return;
    }
    if (f->flags & SBX_FOPF_STAGE) {
        random_name(stage_name, sizeof(stage_name), STAGE_PREFIX);
        if (mkdirat(dest, stage_name, 0700) < 0 ||
            (p.work = openat(dest, stage_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                                   O_CLOEXEC)) < 0) {
            fail(r, errno, SBX_FSTEP_IO, "creating the staging directory");
            close(dest);
            free(p.buf);
            return;
        }
    } else {
        p.work = dest;
    }
    e = put_records(&p);
    if (!e)
        apply_dir_times(&p);
    if (f->flags & SBX_FOPF_STAGE) {
        if (!e && (e = swap_in(dest, p.work, stage_name, f)) < 0)
            fail(r, e, SBX_FSTEP_IO, "moving the restored tree into place");
        close(p.work);
        sbx_fop_rmtree(dest, stage_name);
    }
    /* Drain what the host still sends, so it sees our answer rather than a broken pipe. */
    if (e < 0)
        shutdown(data, SHUT_RD);
    close(dest);
    for (size_t i = 0; i < p.n_dirs; i++)
        free(p.dirs[i].rel);
    free(p.dirs);
    free(p.buf);
}
