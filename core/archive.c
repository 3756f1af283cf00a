/* archive.c — extract, persist_workspace, hydrate_workspace (libarchive) over the backend's
 * walk and put.
 *
 * libarchive parses and writes archives here on the host; the bytes of the workspace only
 * ever move through the backend's walk (out) and put (in), which run inside the sandbox with
 * the kernel confining every lookup to the workspace. Members are checked by archive_rules.c
 * before they are sent:
 *   - hydrate streams in one pass into a staging directory that is swapped in only when the
 *     whole archive was accepted and written (a refusal, full disk or broken stream leaves the
 *     workspace as it was);
 *   - extract writes the archive file itself first, then reads it twice from a host spool:
 *     once to check every member and the limits, once to unpack, so a refused archive leaves
 *     nothing but the archive file behind.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_rules.h"
#include "core.h"
#include "error_internal.h"
#include "files_internal.h"
#include "paths.h"
#include "util.h"

#define BLOCK (256u << 10)

/* ---- limits and skip paths ---------------------------------------------------------------- */

int sbx_session_set_archive_limits(sbx_session *s, const sbx_archive_limits *l, sbx_error **err)
{
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "write", "session is NULL");
    struct sbx_session_files *f = sbx__session_files(s);
    pthread_mutex_lock(&f->lock);
    f->has_limits = l != NULL;
    if (l)
        f->limits = *l;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

int sbx_session_register_persist_skip_path(sbx_session *s, const char *path, char **out,
                                           sbx_error **err)
{
    if (out)
        *out = NULL;
    if (!s || !path)
        return sbx_err(err, SBX_EINVAL, 0, "persist_workspace", "session and path are required");
    char *rel = NULL;
    int r = sbx__path_rel_strict(path, &rel, err);
    if (r < 0)
        return r;
    if (!*rel) {
        free(rel);
        return sbx_err(err, SBX_EINVAL, 0, "persist_workspace",
                       "Persist workspace skip paths must target a concrete relative path.");
    }
    struct sbx_session_files *f = sbx__session_files(s);
    pthread_mutex_lock(&f->lock);
    int dup = 0;
    for (size_t i = 0; i < f->n_skip; i++)
        dup |= !strcmp(f->skip[i], rel);
    char **nv = dup ? f->skip : realloc(f->skip, (f->n_skip + 2) * sizeof(*nv));
    if (nv && !dup) {
        f->skip = nv;
        f->skip[f->n_skip] = strdup(rel);
        if (f->skip[f->n_skip])
            f->skip[++f->n_skip] = NULL;
        else
            nv = NULL;
    }
    pthread_mutex_unlock(&f->lock);
    if (!nv) {
        free(rel);
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "persist_workspace", "out of memory");
    }
    if (out)
        *out = rel;
    else
        free(rel);
    return 0;
}

/* A copy of the skip set (runtime paths plus the extra ones given). */
static char **skip_set(sbx_session *s, const char *const *extra)
{
    struct sbx_session_files *f = sbx__session_files(s);
    size_t n_extra = 0;
    while (extra && extra[n_extra])
        n_extra++;
    pthread_mutex_lock(&f->lock);
    char **v = calloc(f->n_skip + n_extra + 1, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; v && i < f->n_skip; i++)
        if (!(v[n++] = strdup(f->skip[i])))
            goto oom;
    for (size_t i = 0; v && i < n_extra; i++)
        if (!(v[n++] = strdup(extra[i])))
            goto oom;
    pthread_mutex_unlock(&f->lock);
    return v;
oom:
    pthread_mutex_unlock(&f->lock);
    sbx__strv_free(v);
    return NULL;
}

/* ---- persist ------------------------------------------------------------------------------ */

struct persist_ctx {
    struct archive *a;
    struct archive_entry *e;
    unsigned char *buf;
    int out_fd;
    int write_errno;
    uint64_t bytes_out;
    struct sbx_persist_hooks *hooks;
};

static la_ssize_t out_write(struct archive *a, void *arg, const void *buf, size_t n)
{
    struct persist_ctx *c = arg;
    if (sbx__write_full_nosig(c->out_fd, buf, n) < 0) {
        c->write_errno = errno;
        archive_set_error(a, errno, "cannot write the archive: %s", strerror(errno));
        return -1;
    }
    if (c->hooks && c->hooks->on_bytes)
        c->hooks->on_bytes(c->hooks->arg, buf, n);
    c->bytes_out += n;
    return (la_ssize_t)n;
}

static int persist_err(struct persist_ctx *c, const char *what, sbx_error **err)
{
    int r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_READ, c->write_errno, "persist_workspace",
                    "failed to read archive for path: workspace (%s: %s)", what,
                    archive_error_string(c->a) ? archive_error_string(c->a) : "error");
    return r;
}

static int read_exact(int fd, void *buf, size_t n)
{
    return sbx__read_full(fd, buf, n);
}

static int persist_member(void *arg, const struct sbx_backend_member *m, sbx_error **err)
{
    struct persist_ctx *c = arg;
    struct archive_entry *e = c->e;
    archive_entry_clear(e);
    char name[4200];
    snprintf(name, sizeof(name), "%s%s", *m->path ? "./" : ".", m->path);

    archive_entry_copy_pathname(e, name);
    archive_entry_set_perm(e, m->mode & 07777);
    archive_entry_set_mtime(e, m->mtime_sec, m->mtime_nsec);
    if (m->kind == SBX_BK_DIR) {
        archive_entry_set_filetype(e, AE_IFDIR);
    } else if (m->kind == SBX_BK_SYMLINK) {
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_copy_symlink(e, m->target);
    } else {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, (la_int64_t)m->size);
        int sparse = !(m->n_extents == 1 && m->extents[0].offset == 0 &&
                       m->extents[0].len == m->size) &&
                     m->size > 0;
        for (size_t i = 0; sparse && i < m->n_extents; i++)
            archive_entry_sparse_add_entry(e, (la_int64_t)m->extents[i].offset,
                                           (la_int64_t)m->extents[i].len);
    }
    /* ARCHIVE_WARN: a name that is not UTF-8 (names are bytes on Linux) is stored as its raw
     * bytes, marked hdrcharset=BINARY in that member's pax header only. */
    if (archive_write_header(c->a, e) < ARCHIVE_WARN)
        return persist_err(c, m->path, err);
    if (m->kind != SBX_BK_FILE)
        return 0;
    /* The writer takes the logical contents: holes as zeros, which it skips for sparse
     * entries without copying them. */
    static const unsigned char zeros[BLOCK];
    uint64_t pos = 0;
    for (size_t i = 0; i <= m->n_extents; i++) {
        uint64_t until = i < m->n_extents ? m->extents[i].offset : m->size;
        while (pos < until) {
            size_t n = until - pos > BLOCK ? BLOCK : (size_t)(until - pos);
            if (archive_write_data(c->a, zeros, n) < 0)
                return persist_err(c, m->path, err);
            pos += n;
        }
        if (i == m->n_extents)
            break;
        uint64_t left = m->extents[i].len;
        while (left) {
            size_t n = left > BLOCK ? BLOCK : (size_t)left;
            if (read_exact(m->data_fd, c->buf, n) < 0)
                return sbx_err(err, SBX_EWORKSPACE_ARCHIVE_READ, EPIPE, "persist_workspace",
                               "failed to read archive for path: %s (the sandbox stopped "
                               "sending)",
                               m->path);
            if (archive_write_data(c->a, c->buf, n) < 0)
                return persist_err(c, m->path, err);
            left -= n;
        }
        pos = m->extents[i].offset + m->extents[i].len;
    }
    return 0;
}

int sbx__persist(sbx_session *s, int out_fd, const char *const *extra_skip,
                 struct sbx_persist_hooks *hooks, sbx_error **err)
{
    if (!s || out_fd < 0)
        return sbx_err(err, SBX_EINVAL, 0, "persist_workspace", "session and out_fd are required");
    char **skip = skip_set(s, extra_skip);
    int r;
    struct persist_ctx c = {.out_fd = out_fd, .hooks = hooks};
    c.a = archive_write_new();
    c.e = archive_entry_new();
    c.buf = malloc(BLOCK);
    if (!skip || !c.a || !c.e || !c.buf) {
        r = sbx_err(err, SBX_ENOMEM, ENOMEM, "persist_workspace", "out of memory");
        goto out_free;
    }
    archive_write_set_format_pax_restricted(c.a);
    archive_write_set_bytes_per_block(c.a, 10240);
    archive_write_set_bytes_in_last_block(c.a, 1);
    if (archive_write_open2(c.a, &c, NULL, out_write, NULL, NULL) != ARCHIVE_OK) {
        r = persist_err(&c, "open", err);
        goto out_free;
    }
    uint32_t uid, gid;
    sbx__session_user(s, NULL, &uid, &gid, NULL);
    const struct sbx_backend_ops *ops;
    struct sbx_sandbox *sb = sbx__session_acquire(s, &ops, "persist_workspace", err);
    if (!sb) {
        r = SBX_ESTATE;
        goto out_free;
    }
    /* As the sandbox user, with the capability to read what it cannot (a 0000 file, root's
     * files): the backend keeps CAP_DAC_READ_SEARCH for walks. */
    struct sbx_backend_file_req q = {.uid = uid, .gid = gid, .root = sbx_session_root(s),
                                     .path = "", .skip = (const char *const *)skip};
    struct sbx_backend_file_out o;
    r = ops->walk(sb, &q, persist_member, &c, &o, err);
    sbx__session_release(s);
    if (r == 0 && o.err) {
        if (o.step == SBX_BFS_ROOT && o.err == ENOENT) {
            r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_READ, o.err, "persist_workspace",
                        "failed to read archive for path: %s (workspace root not found)",
                        sbx_session_root(s));
            sbx_err_ctx(err, "reason", "workspace_root_not_found");
        } else {
            r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_READ, o.err, "persist_workspace",
                        "failed to read archive for path: %s (%s)",
                        o.detail && *o.detail ? o.detail : sbx_session_root(s),
                        strerror(o.err));
        }
        sbx_err_ctx(err, "path", "%s", sbx_session_root(s));
    }
    sbx__backend_file_out_clear(&o);
    if (r == 0 && archive_write_close(c.a) != ARCHIVE_OK)
        r = persist_err(&c, "close", err);
out_free:
    if (c.a)
        archive_write_free(c.a);
    if (c.e)
        archive_entry_free(c.e);
    free(c.buf);
    sbx__strv_free(skip);
    return r;
}

int sbx__session_persist_raw(sbx_session *s, int out_fd, sbx_error **err)
{
    return sbx__persist(s, out_fd, NULL, NULL, err);
}

/* ---- reading archives -------------------------------------------------------------------- */

static int member_of(struct archive_entry *e, int from_zip, struct sbx_arc_member *m)
{
    memset(m, 0, sizeof(*m));
    m->name = archive_entry_pathname(e);
    if (!m->name)
        m->name = "";
    m->from_zip = from_zip;
    m->size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
    if (archive_entry_hardlink(e)) {
        m->type = SBX_ARC_HARDLINK;
        m->link_target = archive_entry_hardlink(e);
        return 0;
    }
    switch (archive_entry_filetype(e)) {
    case AE_IFDIR: m->type = SBX_ARC_DIR; break;
    case AE_IFREG: m->type = SBX_ARC_FILE; break;
    case AE_IFLNK:
        m->type = SBX_ARC_SYMLINK;
        m->link_target = archive_entry_symlink(e) ? archive_entry_symlink(e) : "";
        break;
    default: m->type = SBX_ARC_OTHER; break;
    }
    return 0;
}

static int violation_err(const char *op, const char *path, const struct sbx_arc_violation *v,
                         sbx_error **err)
{
    int r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_WRITE, 0, op,
                    "failed to write archive for path: %s (member %s: %s)", path, v->member,
                    v->reason);
    sbx_err_ctx(err, "path", "%s", path);
    sbx_err_ctx(err, "reason", "%s", v->reason);
    if (v->has_limit) {
        sbx_err_ctx(err, "limit", "%llu", (unsigned long long)v->limit);
        sbx_err_ctx(err, "actual", "%llu", (unsigned long long)v->actual);
    }
    sbx_err_ctx(err, "member", "%s", v->member);
    return r;
}

static int archive_err(const char *op, const char *path, struct archive *a, sbx_error **err)
{
    int r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_WRITE, archive_errno(a) > 0 ? archive_errno(a) : 0,
                    op, "failed to write archive for path: %s (the archive is malformed: %s)",
                    path, archive_error_string(a) ? archive_error_string(a) : "unknown error");
    sbx_err_ctx(err, "path", "%s", path);
    sbx_err_ctx(err, "reason", "malformed archive");
    return r;
}

/* The error for a put that the sandbox refused or could not finish. */
static int put_err(const char *op, const char *path, const struct sbx_backend_file_out *o,
                   sbx_error **err)
{
    if (o->step == SBX_BFS_SYMLINK_PARENT && o->detail) {
        const char *nl = strchr(o->detail, '\n');
        int r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_WRITE, o->err, op,
                        "failed to write archive for path: %s (symlink in parent path: %s)", path,
                        nl ? nl + 1 : o->detail);
        sbx_err_ctx(err, "path", "%s", path);
        sbx_err_ctx(err, "member", "%.*s", nl ? (int)(nl - o->detail) : 0, o->detail);
        sbx_err_ctx(err, "reason", "symlink in parent path: %s", nl ? nl + 1 : o->detail);
        return r;
    }
    const char *why = o->err == EISDIR ? "destination directory already exists"
                      : o->err == EXDEV ? "path escapes root after resolution"
                                        : strerror(o->err);
    int r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_WRITE, o->err, op,
                    "failed to write archive for path: %s (%s%s%s)", path,
                    o->detail && *o->detail ? o->detail : "", o->detail && *o->detail ? ": " : "",
                    why);
    sbx_err_ctx(err, "path", "%s", path);
    if (o->err == EISDIR)
        sbx_err_ctx(err, "reason", "destination directory already exists: %s", o->detail);
    else
        sbx_err_ctx(err, "reason", "%s", why);
    if (o->detail && *o->detail && o->step != SBX_BFS_STREAM)
        sbx_err_ctx(err, "member", "%s", o->detail);
    return r;
}

/* Sends one accepted member (and its data) to the put. Returns 0, or -1 when the sandbox
 * stopped reading (put_end tells why), or an sbx error code for a read error. */
static int send_member(const struct sbx_backend_ops *ops, struct sbx_backend_put *p,
                       struct archive *a, struct archive_entry *e, const char *rel,
                       const struct sbx_arc_member *am, int hydrate, const char *op,
                       const char *path, sbx_error **err)
{
    struct sbx_backend_member m = {.path = rel,
                                   .mtime_sec = archive_entry_mtime(e),
                                   .mtime_nsec = (uint32_t)archive_entry_mtime_nsec(e)};
    unsigned perm = archive_entry_perm(e);
    if (am->type == SBX_ARC_DIR) {
        m.kind = SBX_BK_DIR;
        m.mode = (perm & 0755) | 0700;
    } else if (am->type == SBX_ARC_SYMLINK) {
        m.kind = SBX_BK_SYMLINK;
        m.target = am->link_target;
    } else {
        m.kind = SBX_BK_FILE;
        m.mode = hydrate ? sbx__arc_sanitize_mode(perm) : 0644;
        m.size = am->size;
    }
    if (ops->put_member(p, &m) < 0)
        return -1;
    if (m.kind != SBX_BK_FILE)
        return 0;
    for (;;) {
        const void *buf;
        size_t n;
        la_int64_t off;
        int ar = archive_read_data_block(a, &buf, &n, &off);
        if (ar == ARCHIVE_EOF)
            break;
        if (ar < ARCHIVE_WARN)
            return archive_err(op, path, a, err);
        if (n && ops->put_data(p, (uint64_t)off, buf, n) < 0)
            return -1;
    }
    return ops->put_file_end(p) < 0 ? -1 : 0;
}

static struct archive *reader_new(int zip)
{
    struct archive *a = archive_read_new();
    if (!a)
        return NULL;
    if (zip) {
        archive_read_support_format_zip(a);
    } else {
        archive_read_support_filter_all(a);
        archive_read_support_format_tar(a);
        archive_read_support_format_gnutar(a);
    }
    return a;
}

/* Checks every member of an open archive and, with p, sends each accepted one. Returns 0 at
 * the end of the archive, an error code (refused member, malformed archive), or 0 with
 * *stopped set when the sandbox stopped reading (put_end says why). */
static int unpack_members(struct archive *a, int zip, struct sbx_arc_check *chk, int hydrate,
                          const struct sbx_backend_ops *ops, struct sbx_backend_put *p,
                          const char *op, const char *path, int *stopped, sbx_error **err)
{
    for (;;) {
        struct archive_entry *e;
        int ar = archive_read_next_header(a, &e);
        if (ar == ARCHIVE_EOF)
            return 0;
        if (ar < ARCHIVE_WARN)
            return archive_err(op, path, a, err);
        struct sbx_arc_member am;
        member_of(e, zip, &am);
        const char *rel;
        struct sbx_arc_violation v;
        int c = sbx__arc_check_member(chk, &am, &rel, &v);
        if (c < 0)
            return violation_err(op, path, &v, err);
        if (c == 0 || !p)
            continue;
        int sr = send_member(ops, p, a, e, rel, &am, hydrate, op, path, err);
        if (sr == -1) {
            *stopped = 1;
            return 0;
        }
        if (sr < 0)
            return sr;
    }
}

/* ---- hydrate ------------------------------------------------------------------------------ */

int sbx__hydrate(sbx_session *s, int in_fd, const char *const *extra_skip, sbx_error **err)
{
    const char *op = "hydrate_workspace";
    if (!s || in_fd < 0)
        return sbx_err(err, SBX_EINVAL, 0, op, "session and in_fd are required");
    const char *root = sbx_session_root(s);
    uint32_t uid, gid;
    int r = sbx__session_user(s, NULL, &uid, &gid, err);
    if (r < 0)
        return r;
    char **skip = skip_set(s, extra_skip);
    struct archive *a = reader_new(0);
    struct sbx_arc_check *chk = sbx__arc_check_new(SBX_ARC_HYDRATE, NULL);
    if (!skip || !a || !chk) {
        r = sbx_err(err, SBX_ENOMEM, ENOMEM, op, "out of memory");
        goto out;
    }
    if (archive_read_open_fd(a, in_fd, BLOCK) != ARCHIVE_OK) {
        r = archive_err(op, root, a, err);
        goto out;
    }
    const struct sbx_backend_ops *ops;
    struct sbx_sandbox *sb = sbx__session_acquire(s, &ops, op, err);
    if (!sb) {
        r = SBX_ESTATE;
        goto out;
    }
    struct sbx_backend_file_req q = {.flags = SBX_BFOPF_STAGE | SBX_BFOPF_MODES,
                                     .uid = uid,
                                     .gid = gid,
                                     .root = root,
                                     .path = "",
                                     .skip = (const char *const *)skip};
    struct sbx_backend_put *p = NULL;
    if ((r = ops->put_begin(sb, &q, &p, err)) < 0) {
        sbx__session_release(s);
        goto out;
    }
    int stopped = 0;
    r = unpack_members(a, 0, chk, 1, ops, p, op, root, &stopped, err);
    struct sbx_backend_file_out o;
    sbx_error *tmp = NULL;
    int er = ops->put_end(p, r == 0 && !stopped, &o, r ? &tmp : err);
    sbx_error_free(tmp);
    sbx__session_release(s);
    if (r == 0 && er < 0)
        r = er;
    else if (r == 0 && o.err)
        r = put_err(op, root, &o, err);
    else if (r == 0 && stopped)
        r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_WRITE, EPIPE, op,
                    "failed to write archive for path: %s (the sandbox stopped reading)", root);
    sbx__backend_file_out_clear(&o);
out:
    if (a)
        archive_read_free(a);
    sbx__arc_check_free(chk);
    sbx__strv_free(skip);
    return r;
}

int sbx__session_hydrate_raw(sbx_session *s, int in_fd, sbx_error **err)
{
    return sbx__hydrate(s, in_fd, NULL, err);
}

/* ---- extract ------------------------------------------------------------------------------ */

/* Copies in_fd into an unlinked host temporary file, enforcing max_input_bytes. */
static int spool(int in_fd, uint64_t max_in, const char *path, int *out, sbx_error **err)
{
    const char *dir = getenv("TMPDIR");
    int fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return sbx_err(err, SBX_EIO, errno, "write", "cannot create a spool file for the archive");
    unsigned char *buf = malloc(BLOCK);
    uint64_t total = 0;
    int r = buf ? 0 : sbx_err(err, SBX_ENOMEM, ENOMEM, "write", "out of memory");
    while (r == 0) {
        ssize_t n = read(in_fd, buf, BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = sbx_err(err, SBX_EIO, errno, "write", "cannot read the archive input");
            break;
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
        if (max_in && total > max_in) {
            r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_WRITE, 0, "write",
                        "failed to write archive for path: %s (archive input size exceeds "
                        "limit)",
                        path);
            sbx_err_ctx(err, "path", "%s", path);
            sbx_err_ctx(err, "reason", "archive input size exceeds limit");
            sbx_err_ctx(err, "limit", "%llu", (unsigned long long)max_in);
            sbx_err_ctx(err, "actual", "%llu", (unsigned long long)total);
            break;
        }
        if (sbx__write_full(fd, buf, (size_t)n) < 0)
            r = sbx_err(err, SBX_EIO, errno, "write", "cannot write the archive spool");
    }
    free(buf);
    if (r < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        close(fd);
        return r < 0 ? r : sbx_err(err, SBX_EIO, errno, "write", "lseek");
    }
    *out = fd;
    return 0;
}

/* One pass over the spooled archive: check only (p == NULL) or check and send. */
static int extract_pass(int fd, int zip, const sbx_archive_limits *lim,
                        const struct sbx_backend_ops *ops, struct sbx_backend_put *p,
                        const char *path, int *stopped, sbx_error **err)
{
    if (lseek(fd, 0, SEEK_SET) < 0)
        return sbx_err(err, SBX_EIO, errno, "write", "lseek");
    struct archive *a = reader_new(zip);
    struct sbx_arc_check *chk = sbx__arc_check_new(SBX_ARC_EXTRACT, lim);
    int r = 0;
    if (!a || !chk) {
        r = sbx_err(err, SBX_ENOMEM, ENOMEM, "write", "out of memory");
        goto out;
    }
    if (archive_read_open_fd(a, fd, BLOCK) != ARCHIVE_OK) {
        r = archive_err("write", path, a, err);
        goto out;
    }
    r = unpack_members(a, zip, chk, 0, ops, p, "write", path, stopped, err);
out:
    if (a)
        archive_read_free(a);
    sbx__arc_check_free(chk);
    return r;
}

int sbx_session_extract(sbx_session *s, const char *path, int in_fd, const char *scheme,
                        const sbx_archive_limits *limits, const char *user, sbx_error **err)
{
    if (!s || !path || in_fd < 0)
        return sbx_err(err, SBX_EINVAL, 0, "write", "session, path and in_fd are required");
    const char *given = NULL;
    const char *sch = sbx__arc_scheme(path, scheme, &given);
    if (!sch) {
        int r = sbx_err(err, SBX_EINVALID_COMPRESSION, 0, "write",
                        given && *given ? "compression scheme must be one of 'zip' 'tar'"
                                        : "could not determine compression scheme");
        sbx_err_ctx(err, "path", "%s", path);
        sbx_err_ctx(err, "scheme", "%s", given ? given : "");
        return r;
    }
    int zip = !strcmp(sch, "zip");
    char *abs = NULL;
    int r = sbx__path_normalize(sbx_session_root(s), path, &abs, err);
    if (r < 0)
        return r;
    if (!strcmp(abs, sbx_session_root(s))) {
        free(abs);
        return sbx_err(err, SBX_EINVAL, 0, "write", "the archive path must name a file: %s", path);
    }
    sbx_archive_limits lim = {0};
    struct sbx_session_files *f = sbx__session_files(s);
    pthread_mutex_lock(&f->lock);
    if (limits)
        lim = *limits;
    else if (f->has_limits)
        lim = f->limits;
    pthread_mutex_unlock(&f->lock);
    uint32_t uid, gid;
    int fd = -1;
    if ((r = sbx__session_user(s, user, &uid, &gid, err)) < 0 ||
        (r = spool(in_fd, lim.max_input_bytes, abs, &fd, err)) < 0) {
        free(abs);
        return r;
    }
    /* The archive file itself stays in the workspace. */
    if ((r = sbx_session_write(s, path, user, fd, NULL, err)) < 0)
        goto out;
    int stopped = 0;
    if ((r = extract_pass(fd, zip, &lim, NULL, NULL, abs, &stopped, err)) < 0)
        goto out;
    const struct sbx_backend_ops *ops;
    struct sbx_sandbox *sb = sbx__session_acquire(s, &ops, "write", err);
    if (!sb) {
        r = SBX_ESTATE;
        goto out;
    }
    const char *rel = sbx__path_below(sbx_session_root(s), abs);
    char *dest = strdup(rel);
    char *slash = dest ? strrchr(dest, '/') : NULL;
    if (dest)
        *(slash ? slash : dest) = '\0';
    struct sbx_backend_file_req q = {.uid = uid, .gid = gid, .root = sbx_session_root(s),
                                     .path = dest ? dest : ""};
    struct sbx_backend_put *p = NULL;
    if (!dest)
        r = sbx_err(err, SBX_ENOMEM, ENOMEM, "write", "out of memory");
    else
        r = ops->put_begin(sb, &q, &p, err);
    if (r == 0) {
        r = extract_pass(fd, zip, &lim, ops, p, abs, &stopped, err);
        struct sbx_backend_file_out o;
        sbx_error *tmp = NULL;
        int er = ops->put_end(p, r == 0 && !stopped, &o, r ? &tmp : err);
        sbx_error_free(tmp);
        if (r == 0 && er < 0)
            r = er;
        else if (r == 0 && o.err)
            r = put_err("write", abs, &o, err);
        sbx__backend_file_out_clear(&o);
    }
    sbx__session_release(s);
    free(dest);
out:
    close(fd);
    free(abs);
    return r;
}
