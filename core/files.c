/* files.c — ls, rm, mkdir, read, write and normalize_path over the backend's file ops.
 *
 * core checks paths lexically (paths.c) and maps the worker's errno to the spec's errors; the
 * backend runs the operation inside the sandbox, where the kernel confines every lookup to
 * the workspace root (backend/agent/file_ops.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "error_internal.h"
#include "files_internal.h"
#include "paths.h"

int sbx_session_normalize_path(sbx_session *s, const char *path, char **out, sbx_error **err)
{
    *out = NULL;
    if (!s || !path)
        return sbx_err(err, SBX_EINVAL, 0, "materialize", "session and path are required");
    return sbx__path_normalize(sbx_session_root(s), path, out, err);
}

/* The error for a path that resolved outside the root inside the sandbox (a symlink). */
static int escape_err(const char *path, sbx_error **err)
{
    int abs = path[0] == '/';
    int r = sbx_err(err, SBX_EINVALID_PATH, EXDEV, "materialize",
                    abs ? "manifest path must be relative: %s"
                        : "manifest path must not escape root: %s",
                    path);
    sbx_err_ctx(err, "rel", "%s", path);
    sbx_err_ctx(err, "reason", "%s", abs ? "absolute" : "escape_root");
    sbx_err_ctx(err, "detail", "a symlink on the path leads outside the workspace");
    return r;
}

int sbx__files_map_error(const sbx_session *s, const char *op, const char *path,
                         const char *abs, const struct sbx_backend_file_out *o, sbx_error **err)
{
    if (o->step == SBX_BFS_ROOT && o->err == ENOENT) {
        int r = sbx_err(err, SBX_EWORKSPACE_ROOT_NOT_FOUND, o->err, op,
                        "workspace root not found: %s (was it deleted?)", sbx_session_root(s));
        sbx_err_ctx(err, "path", "%s", sbx_session_root(s));
        return r;
    }
    if (o->err == EXDEV)
        return escape_err(path, err);
    const char *why = strerror(o->err);
    int r;
    if (!strcmp(op, "ls") || (!strcmp(op, "rm") && o->err == ENOENT)) {
        r = sbx_err(err, SBX_EEXEC_NONZERO, o->err, op, "%s: %s: %s", op, abs, why);
        sbx_err_ctx(err, "command", "%s", !strcmp(op, "ls") ? "ls -la --" : "rm --");
        sbx_err_ctx(err, "path", "%s", abs);
        sbx_err_ctx(err, "exit_code", "1");
        sbx_err_ctx(err, "stderr", "%s", why);
        return r;
    }
    if (!strcmp(op, "read")) {
        if (o->err == ENOENT) {
            r = sbx_err(err, SBX_EWORKSPACE_READ_NOT_FOUND, o->err, op, "file not found: %s",
                        path);
            sbx_err_ctx(err, "path", "%s", path);
            return r;
        }
        r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_READ, o->err, op,
                    "failed to read archive for path: %s (%s)", path, why);
    } else {
        r = sbx_err(err, SBX_EWORKSPACE_ARCHIVE_WRITE, o->err, op,
                    "failed to write archive for path: %s (%s)", path, why);
    }
    sbx_err_ctx(err, "path", "%s", path);
    sbx_err_ctx(err, "reason", "%s", why);
    return r;
}

/* Normalises path and runs one file op. */
static int file_op(sbx_session *s, const char *opname, int op, unsigned flags, const char *path,
                   const char *user, int stream_fd, struct sbx_backend_file_out *o,
                   char **abs_out, sbx_error **err)
{
    memset(o, 0, sizeof(*o));
    if (!s || !path)
        return sbx_err(err, SBX_EINVAL, 0, opname, "session and path are required");
    uint32_t uid, gid;
    int r = sbx__session_user(s, user, &uid, &gid, err);
    if (r < 0)
        return r;
    char *abs = NULL;
    if ((r = sbx__path_normalize(sbx_session_root(s), path, &abs, err)) < 0)
        return r;
    const struct sbx_backend_ops *ops;
    struct sbx_sandbox *sb = sbx__session_acquire(s, &ops, opname, err);
    if (!sb) {
        free(abs);
        return SBX_ESTATE;
    }
    struct sbx_backend_file_req q = {.op = op,
                                     .flags = flags,
                                     .uid = uid,
                                     .gid = gid,
                                     .root = sbx_session_root(s),
                                     .path = sbx__path_below(sbx_session_root(s), abs)};
    r = ops->file(sb, &q, stream_fd, o, err);
    sbx__session_release(s);
    if (r == 0 && o->err)
        r = sbx__files_map_error(s, opname, path, abs, o, err);
    if (abs_out && r == 0)
        *abs_out = abs;
    else
        free(abs);
    return r;
}

static char *id_name(const sbx_session *s, unsigned id)
{
    char buf[16];
    if (id == 0)
        return strdup("root");
    if (id == sbx__session_sandbox_uid(s))
        return strdup(SBX_SANDBOX_USER);
    snprintf(buf, sizeof(buf), "%u", id);
    return strdup(buf);
}

static int cmp_entries(const void *a, const void *b)
{
    return strcmp(((const sbx_file_entry *)a)->name, ((const sbx_file_entry *)b)->name);
}

void sbx_file_entries_free(sbx_file_entry *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        free(v[i].path);
        free(v[i].owner);
        free(v[i].group);
    }
    free(v);
}

int sbx_session_ls(sbx_session *s, const char *path, const char *user, sbx_file_entry **out,
                   size_t *n, sbx_error **err)
{
    *out = NULL;
    *n = 0;
    struct sbx_backend_file_out o;
    char *abs = NULL;
    int r = file_op(s, "ls", SBX_BFOP_LS, 0, path, user, -1, &o, &abs, err);
    if (r < 0) {
        sbx__backend_file_out_clear(&o);
        return r;
    }
    sbx_file_entry *v = calloc(o.n_entries + 1, sizeof(*v));
    /* A single non-directory entry names the path itself. */
    int single = o.n_entries == 1 && o.entries[0].kind != SBX_BK_DIR &&
                 strcmp(abs, sbx_session_root(s)) != 0 &&
                 !strcmp(strrchr(abs, '/') + 1, o.entries[0].name);
    for (size_t i = 0; v && i < o.n_entries; i++) {
        const struct sbx_backend_file_entry *e = &o.entries[i];
        sbx_file_entry *f = &v[i];
        f->name = strdup(e->name);
        if (single)
            f->path = strdup(abs);
        else if (asprintf(&f->path, "%s/%s", strcmp(abs, "/") ? abs : "", e->name) < 0)
            f->path = NULL;
        f->kind = (sbx_file_kind)e->kind;
        f->size = e->size;
        f->mode = e->mode;
        f->mtime = e->mtime;
        f->uid = e->uid;
        f->gid = e->gid;
        f->owner = id_name(s, e->uid);
        f->group = id_name(s, e->gid);
        if (!f->name || !f->path || !f->owner || !f->group) {
            sbx_file_entries_free(v, o.n_entries);
            v = NULL;
        }
    }
    size_t count = o.n_entries;
    sbx__backend_file_out_clear(&o);
    free(abs);
    if (!v)
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "ls", "out of memory");
    qsort(v, count, sizeof(*v), cmp_entries);
    *out = v;
    *n = count;
    return 0;
}

int sbx_session_rm(sbx_session *s, const char *path, int recursive, const char *user,
                   sbx_error **err)
{
    struct sbx_backend_file_out o;
    int r = file_op(s, "rm", SBX_BFOP_RM, recursive ? SBX_BFOPF_RECURSIVE : 0, path, user, -1, &o,
                    NULL, err);
    sbx__backend_file_out_clear(&o);
    return r;
}

int sbx_session_mkdir(sbx_session *s, const char *path, int parents, const char *user,
                      sbx_error **err)
{
    struct sbx_backend_file_out o;
    int r = file_op(s, "mkdir", SBX_BFOP_MKDIR, parents ? SBX_BFOPF_PARENTS : 0, path, user, -1,
                    &o, NULL, err);
    sbx__backend_file_out_clear(&o);
    return r;
}

int sbx__session_read_raw(sbx_session *s, const char *path, const char *user, int out_fd,
                          uint64_t *bytes, sbx_error **err)
{
    if (out_fd < 0)
        return sbx_err(err, SBX_EINVAL, 0, "read", "out_fd must be an open file descriptor");
    struct sbx_backend_file_out o;
    int r = file_op(s, "read", SBX_BFOP_READ, 0, path, user, out_fd, &o, NULL, err);
    if (r == 0 && bytes)
        *bytes = o.bytes;
    sbx__backend_file_out_clear(&o);
    return r;
}

int sbx__session_write_raw(sbx_session *s, const char *path, const char *user, int in_fd,
                           uint64_t *bytes, sbx_error **err)
{
    if (in_fd < 0)
        return sbx_err(err, SBX_EINVAL, 0, "write", "in_fd must be an open file descriptor");
    struct sbx_backend_file_out o;
    int r = file_op(s, "write", SBX_BFOP_WRITE, 0, path, user, in_fd, &o, NULL, err);
    if (r == 0 && bytes)
        *bytes = o.bytes;
    sbx__backend_file_out_clear(&o);
    return r;
}
