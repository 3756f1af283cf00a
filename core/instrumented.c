/* instrumented.c — the public entry points of the instrumented operations (spec EVENTS.md §1).
 *
 * Each one wraps the operation's implementation (sbx__*_raw, in session.c, lifecycle.c,
 * files.c and archive.c) between a start and a finish event, with the op's `data` keys built
 * here from the arguments and the result (EVENTS.md §3), keys added in sorted order so that
 * events.c can serialise them as they are. A session without instrumentation takes the
 * direct path: one pointer test; one whose events have no sink, or a call nested in another
 * instrumented call, builds no data either.
 *
 * resolve_exposed_port is wrapped in ports.c, next to its implementation, and the proxy's
 * per-request events are emitted by net.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "error_internal.h"
#include "events_internal.h"
#include "state.h"

static struct sbx__ev_bind *bind_of(sbx_session *s)
{
    return s ? *sbx__session_ev(s) : NULL;
}

static int hand_out(int r, sbx_error *e, sbx_error **err)
{
    if (err)
        *err = r < 0 ? e : NULL;
    if (!err || r == 0)
        sbx_error_free(e);
    return r;
}

/* What session-bound sinks call: the implementations, never the instrumented entry points. */
static int inner_read(sbx_session *s, const char *path, int out_fd, sbx_error **err)
{
    return sbx__session_read_raw(s, path, NULL, out_fd, NULL, err);
}

static int inner_write(sbx_session *s, const char *path, int in_fd, sbx_error **err)
{
    return sbx__session_write_raw(s, path, NULL, in_fd, NULL, err);
}

static int inner_skip(sbx_session *s, const char *path, sbx_error **err)
{
    return sbx_session_register_persist_skip_path(s, path, NULL, err);
}

static const struct sbx__ev_session_ops inner_ops = {
    .running = sbx__session_running_raw,
    .read = inner_read,
    .write = inner_write,
    .skip_path = inner_skip,
};

int sbx__session_ev_init(sbx_session *s, const sbx_session_opts *o, sbx_error **err)
{
    if (!o->events) {
        if (o->traceparent)
            return sbx__ev_bind_set_traceparent(NULL, o->traceparent, err);
        return 0;
    }
    return sbx__ev_bind_new(o->events, s, sbx_session_id(s), o->traceparent, &inner_ops,
                            sbx__session_ev(s), err);
}

int sbx__session_ev_enabled(sbx_session *s)
{
    return bind_of(s) != NULL;
}

void sbx__session_ev_free(sbx_session *s)
{
    struct sbx__ev_bind **b = sbx__session_ev(s);
    sbx__ev_bind_free(*b);
    *b = NULL;
}

int sbx_session_set_traceparent(sbx_session *s, const char *traceparent, sbx_error **err)
{
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "events", "session is NULL");
    return sbx__ev_bind_set_traceparent(bind_of(s), traceparent, err);
}

int sbx_session_set_events(sbx_session *s, sbx_events *ev, sbx_error **err)
{
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "events", "session is NULL");
    struct sbx__ev_bind *nb = NULL;
    if (ev) {
        int r = sbx__ev_bind_new(ev, s, sbx_session_id(s), NULL, &inner_ops, &nb, err);
        if (r < 0)
            return r;
    }
    struct sbx__ev_bind **b = sbx__session_ev(s);
    sbx__ev_bind_free(*b);
    *b = nb;
    return 0;
}

/* Remaining bytes of a seekable input (position restored), or -1. */
static int64_t remaining_len(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return -1;
    off_t cur = lseek(fd, 0, SEEK_CUR);
    if (cur < 0)
        return -1;
    return st.st_size > cur ? (int64_t)(st.st_size - cur) : 0;
}

static int64_t position(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return -1;
    off_t cur = lseek(fd, 0, SEEK_CUR);
    return cur < 0 ? -1 : (int64_t)cur;
}

static json_object *str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

/* Operations with {} data that succeed unless they fail. */
static int plain_op(sbx_session *s, const char *op, int (*fn)(sbx_session *, sbx_error **),
                    sbx_error **err)
{
    struct sbx__ev_bind *b = bind_of(s);
    if (!sbx__ev_live(b))
        return fn(s, err);
    struct sbx__ev_call c;
    sbx_error *e = NULL;
    int r = sbx__ev_begin(b, &c, op, NULL, &e);
    if (r < 0) {
        sbx__ev_abort(&c);
        return hand_out(r, e, err);
    }
    r = fn(s, &e);
    r = sbx__ev_end(b, &c, r, &e, NULL, 0, 1, NULL);
    return hand_out(r, e, err);
}

int sbx_session_start(sbx_session *s, sbx_error **err)
{
    return plain_op(s, "start", sbx__session_start_raw, err);
}

int sbx_session_stop(sbx_session *s, sbx_error **err)
{
    return plain_op(s, "stop", sbx__session_stop_raw, err);
}

int sbx_session_shutdown(sbx_session *s, sbx_error **err)
{
    return plain_op(s, "shutdown", sbx__session_shutdown_raw, err);
}

int sbx_session_running(sbx_session *s)
{
    struct sbx__ev_bind *b = bind_of(s);
    if (!sbx__ev_live(b))
        return sbx__session_running_raw(s);
    struct sbx__ev_call c;
    int r = sbx__ev_begin(b, &c, "running", NULL, NULL);
    if (r < 0) {
        /* A raising sink refused the call; running() has no error to report it with. */
        sbx__ev_abort(&c);
        return 0;
    }
    int alive = sbx__session_running_raw(s);
    json_object *fin = json_object_new_object();
    json_object_object_add(fin, "alive", json_object_new_boolean(alive));
    r = sbx__ev_end(b, &c, 0, NULL, fin, 0, 1, NULL);
    return r < 0 ? 0 : alive;
}

static json_object *strv_json(const char *const *v)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; v && v[i]; i++)
        json_object_array_add(a, json_object_new_string(v[i]));
    return a;
}

/* The caller's command before shell wrapping, and how it will be wrapped. */
static json_object *exec_data(const sbx_exec_opts *o)
{
    json_object *d = json_object_new_object();
    if (!o || o->size != sizeof(*o))
        return d;
    json_object_object_add(d, "command", strv_json(o->argv));
    json_object *shell;
    if (o->shell == SBX_SHELL_CUSTOM)
        shell = strv_json(o->shell_argv);
    else
        shell = json_object_new_boolean(o->shell != SBX_SHELL_NONE);
    json_object_object_add(d, "shell", shell);
    json_object_object_add(d, "timeout_s",
                           o->timeout_s > 0 ? json_object_new_double(o->timeout_s) : NULL);
    json_object_object_add(d, "user", str_or_null(o->user));
    return d;
}

int sbx_session_exec(sbx_session *s, const sbx_exec_opts *o, sbx_exec_result **out,
                     sbx_error **err)
{
    struct sbx__ev_bind *b = bind_of(s);
    if (!sbx__ev_live(b))
        return sbx__session_exec_raw(s, o, out, err);
    struct sbx__ev_call c;
    sbx_error *e = NULL;
    *out = NULL;
    int r = sbx__ev_begin(b, &c, "exec", exec_data(o), &e);
    if (r < 0) {
        sbx__ev_abort(&c);
        return hand_out(r, e, err);
    }
    r = sbx__session_exec_raw(s, o, out, &e);
    json_object *fin = NULL;
    struct sbx__ev_raw raw = {0};
    int ok = 0;
    if (r == 0) {
        const sbx_exec_result *x = *out;
        fin = json_object_new_object();
        json_object_object_add(fin, "exit_code", json_object_new_int(x->exit_code));
        json_object_object_add(fin, "process.exit.code", json_object_new_int(x->exit_code));
        raw = (struct sbx__ev_raw){.out = x->out, .out_len = x->out_len, .err = x->err,
                                   .err_len = x->err_len, .has_output = 1};
        ok = x->exit_code == 0;
    }
    r = sbx__ev_end(b, &c, r, &e, fin, 1, ok, &raw);
    if (r < 0) {
        sbx_exec_result_free(*out);
        *out = NULL;
    }
    return hand_out(r, e, err);
}

static json_object *file_data(const char *path, const char *user, int in_fd)
{
    json_object *d = json_object_new_object();
    int64_t n = remaining_len(in_fd);
    if (n >= 0)
        json_object_object_add(d, "bytes", json_object_new_int64(n));
    json_object_object_add(d, "path", str_or_null(path));
    json_object_object_add(d, "user", str_or_null(user));
    return d;
}

int sbx_session_read(sbx_session *s, const char *path, const char *user, int out_fd,
                     uint64_t *bytes, sbx_error **err)
{
    struct sbx__ev_bind *b = bind_of(s);
    if (!sbx__ev_live(b))
        return sbx__session_read_raw(s, path, user, out_fd, bytes, err);
    struct sbx__ev_call c;
    sbx_error *e = NULL;
    int r = sbx__ev_begin(b, &c, "read", file_data(path, user, -1), &e);
    if (r < 0) {
        sbx__ev_abort(&c);
        return hand_out(r, e, err);
    }
    r = sbx__session_read_raw(s, path, user, out_fd, bytes, &e);
    r = sbx__ev_end(b, &c, r, &e, NULL, 0, 1, NULL);
    return hand_out(r, e, err);
}

int sbx_session_write(sbx_session *s, const char *path, const char *user, int in_fd,
                      uint64_t *bytes, sbx_error **err)
{
    struct sbx__ev_bind *b = bind_of(s);
    if (!sbx__ev_live(b))
        return sbx__session_write_raw(s, path, user, in_fd, bytes, err);
    struct sbx__ev_call c;
    sbx_error *e = NULL;
    int r = sbx__ev_begin(b, &c, "write", file_data(path, user, in_fd), &e);
    if (r < 0) {
        sbx__ev_abort(&c);
        return hand_out(r, e, err);
    }
    r = sbx__session_write_raw(s, path, user, in_fd, bytes, &e);
    r = sbx__ev_end(b, &c, r, &e, NULL, 0, 1, NULL);
    return hand_out(r, e, err);
}

int sbx_session_persist_workspace(sbx_session *s, int out_fd, sbx_error **err)
{
    struct sbx__ev_bind *b = bind_of(s);
    if (!sbx__ev_live(b))
        return sbx__session_persist_raw(s, out_fd, err);
    json_object *d = json_object_new_object();
    struct sbx_session_life *l = sbx__session_life(s);
    pthread_mutex_lock(&l->lock);
    if (l->st && l->st->snap_kind == SBX_SNAP_LOCAL && l->st->snap_base && l->st->snap_id) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s.tar", l->st->snap_base, l->st->snap_id) >= 0) {
            json_object_object_add(d, "tar_path", json_object_new_string(p));
            free(p);
        }
    }
    pthread_mutex_unlock(&l->lock);
    json_object_object_add(d, "workspace_root", str_or_null(sbx_session_root(s)));
    struct sbx__ev_call c;
    sbx_error *e = NULL;
    int r = sbx__ev_begin(b, &c, "persist_workspace", d, &e);
    if (r < 0) {
        sbx__ev_abort(&c);
        return hand_out(r, e, err);
    }
    int64_t before = position(out_fd);
    r = sbx__session_persist_raw(s, out_fd, &e);
    json_object *fin = NULL;
    int64_t after = r == 0 && before >= 0 ? position(out_fd) : -1;
    if (after >= before && before >= 0) {
        fin = json_object_new_object();
        json_object_object_add(fin, "bytes", json_object_new_int64(after - before));
    }
    r = sbx__ev_end(b, &c, r, &e, fin, 1, 1, NULL);
    return hand_out(r, e, err);
}

int sbx_session_hydrate_workspace(sbx_session *s, int in_fd, sbx_error **err)
{
    struct sbx__ev_bind *b = bind_of(s);
    if (!sbx__ev_live(b))
        return sbx__session_hydrate_raw(s, in_fd, err);
    json_object *d = json_object_new_object();
    int64_t n = remaining_len(in_fd);
    if (n >= 0)
        json_object_object_add(d, "bytes", json_object_new_int64(n));
    json_object_object_add(d, "untar_dir", str_or_null(sbx_session_root(s)));
    struct sbx__ev_call c;
    sbx_error *e = NULL;
    int r = sbx__ev_begin(b, &c, "hydrate_workspace", d, &e);
    if (r < 0) {
        sbx__ev_abort(&c);
        return hand_out(r, e, err);
    }
    r = sbx__session_hydrate_raw(s, in_fd, &e);
    r = sbx__ev_end(b, &c, r, &e, NULL, 0, 1, NULL);
    return hand_out(r, e, err);
}
