/* sinks.c — where events go: a callback, a JSONL file, a human-readable fd, a chain.
 *
 * The JSONL sink's guarantee (several sessions, threads or processes append to one file and
 * every line stays whole) rests on O_APPEND plus a single write() per line: the kernel
 * positions and writes an O_APPEND write atomically with respect to other appends on a
 * regular file. The flock is for writers on filesystems where that does not hold (NFS) and
 * for readers that lock to see whole lines. A short write (disk full) is reported as a
 * failure rather than completed with a second write(), which could interleave. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error_internal.h"
#include "events_internal.h"
#include "util.h"

static int sink_new(enum sbx__sink_kind kind, const sbx_sink_opts *o, int mode, int on_error,
                    const char *name, sbx_event_sink **out, sbx_error **err)
{
    *out = NULL;
    if (o && o->size != sizeof(*o))
        return sbx_err(err, SBX_EINVAL, 0, "events",
                       "sbx_sink_opts.size is %zu, expected %zu: fill it with SBX_SINK_OPTS_INIT",
                       o->size, sizeof(*o));
    if (o && (o->mode < 0 || o->mode > SBX_SINK_BEST_EFFORT))
        return sbx_err(err, SBX_EINVAL, 0, "events", "unknown sink mode %d", o->mode);
    if (o && (o->on_error < 0 || o->on_error > SBX_SINK_IGNORE))
        return sbx_err(err, SBX_EINVAL, 0, "events", "unknown sink on_error %d", o->on_error);
    sbx_event_sink *k = calloc(1, sizeof(*k));
    if (!k)
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    k->kind = kind;
    k->fd = -1;
    k->mode = o && o->mode ? o->mode : mode;
    k->on_error = o && o->on_error ? o->on_error : on_error;
    k->name = strdup(o && o->name ? o->name : name);
    if (!k->name) {
        free(k);
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    }
    if (o && o->policy) {
        int r = sbx__policy_compile(o->policy, &k->policy, err);
        if (r < 0) {
            free(k->name);
            free(k);
            return r;
        }
        k->has_policy = 1;
    }
    *out = k;
    return 0;
}

int sbx_event_sink_callback(sbx_event_fn fn, void *userdata, const sbx_sink_opts *o,
                            sbx_event_sink **out, sbx_error **err)
{
    if (!out)
        return sbx_err(err, SBX_EINVAL, 0, "events", "out is NULL");
    if (!fn) {
        *out = NULL;
        return sbx_err(err, SBX_EINVAL, 0, "events", "callback sink needs a function");
    }
    int r = sink_new(SBX__SINK_CALLBACK, o, SBX_SINK_SYNC, SBX_SINK_RAISE, "CallbackSink", out,
                     err);
    if (r == 0) {
        (*out)->fn = fn;
        (*out)->userdata = userdata;
    }
    return r;
}

/* mkdir -p of path's parent directories (0700: event logs are audit data). */
static void make_parents(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        (void)mkdir(d, 0700);
        *p = '/';
    }
    free(d);
}

int sbx_event_sink_jsonl(const char *path, const sbx_sink_opts *o, sbx_event_sink **out,
                         sbx_error **err)
{
    if (!out)
        return sbx_err(err, SBX_EINVAL, 0, "events", "out is NULL");
    *out = NULL;
    if (!path || !path[0])
        return sbx_err(err, SBX_EINVAL, 0, "events", "JSONL sink needs a path");
    make_parents(path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        int e = errno;
        sbx_err(err, SBX_EIO, e, "events", "open event log '%s'", path);
        sbx_err_ctx(err, "path", "%s", path);
        return SBX_EIO;
    }
    int r = sink_new(SBX__SINK_JSONL, o, SBX_SINK_BEST_EFFORT, SBX_SINK_LOG, "JsonlOutboxSink",
                     out, err);
    if (r < 0) {
        close(fd);
        return r;
    }
    (*out)->fd = fd;
    return 0;
}

int sbx_event_sink_stderr(int fd, const sbx_sink_opts *o, sbx_event_sink **out, sbx_error **err)
{
    if (!out)
        return sbx_err(err, SBX_EINVAL, 0, "events", "out is NULL");
    *out = NULL;
    if (fd < 0)
        return sbx_err(err, SBX_EINVAL, 0, "events", "stderr sink needs an open fd");
    int r = sink_new(SBX__SINK_STDERR, o, SBX_SINK_BEST_EFFORT, SBX_SINK_IGNORE, "StderrSink",
                     out, err);
    if (r == 0) {
        (*out)->fd = fd;
        (*out)->color = isatty(fd) && !getenv("NO_COLOR");
    }
    return r;
}

int sbx_event_sink_chain(sbx_event_sink **sinks, size_t n, sbx_event_sink **out, sbx_error **err)
{
    int r = 0;
    if (!out)
        r = sbx_err(err, SBX_EINVAL, 0, "events", "out is NULL");
    else if (n && !sinks)
        r = sbx_err(err, SBX_EINVAL, 0, "events", "chain of %zu sinks with no array", n);
    for (size_t i = 0; r == 0 && i < n; i++)
        if (!sinks[i])
            r = sbx_err(err, SBX_EINVAL, 0, "events", "chained sink %zu is NULL", i);
    if (r == 0)
        r = sink_new(SBX__SINK_CHAIN, NULL, SBX_SINK_SYNC, SBX_SINK_RAISE, "ChainedSink", out,
                     err);
    if (r == 0 && n && !((*out)->kids = calloc(n, sizeof(*sinks)))) {
        sbx_event_sink_free(*out);
        *out = NULL;
        r = sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    }
    if (r < 0) {
        for (size_t i = 0; sinks && i < n; i++)
            sbx_event_sink_free(sinks[i]);
        return r;
    }
    memcpy((*out)->kids, sinks, n * sizeof(*sinks));
    (*out)->n_kids = n;
    return 0;
}

/* ---- workspace sink ----------------------------------------------------------------------- */

struct sbx__ws_state {
    sbx_session *s;
    char *path;
    char *buf;
    size_t len;
    unsigned long count;
    struct sbx__ws_state *next;
};

int sbx_event_sink_workspace(const char *relpath, int ephemeral, unsigned flush_every,
                             const sbx_sink_opts *o, sbx_event_sink **out, sbx_error **err)
{
    if (!out)
        return sbx_err(err, SBX_EINVAL, 0, "events", "out is NULL");
    int r = sink_new(SBX__SINK_WORKSPACE, o, SBX_SINK_BEST_EFFORT, SBX_SINK_LOG,
                     "WorkspaceJsonlSink", out, err);
    if (r < 0)
        return r;
    sbx_event_sink *k = *out;
    pthread_mutex_init(&k->ws_lock, NULL);
    k->ephemeral = ephemeral != 0;
    k->flush_every = flush_every ? flush_every : 1;
    if (!(k->tmpl = strdup(relpath ? relpath : "logs/events-{session_id}.jsonl"))) {
        sbx_event_sink_free(k);
        *out = NULL;
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    }
    return 0;
}

/* tmpl with every occurrence of key replaced by val (malloc'd). */
static char *replace_all(const char *tmpl, const char *key, const char *val)
{
    size_t kl = strlen(key), vl = strlen(val), n = 0;
    for (const char *p = strstr(tmpl, key); p; p = strstr(p + kl, key))
        n++;
    char *out = malloc(strlen(tmpl) + n * vl + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = tmpl;;) {
        const char *m = strstr(p, key);
        size_t l = m ? (size_t)(m - p) : strlen(p);
        memcpy(o, p, l);
        o += l;
        if (!m)
            break;
        memcpy(o, val, vl);
        o += vl;
        p = m + kl;
    }
    *o = '\0';
    return out;
}

int sbx__sink_bind(sbx_event_sink *k, sbx_session *s, const char *session_id,
                   const struct sbx__ev_session_ops *ops, sbx_error **err)
{
    for (size_t i = 0; i < k->n_kids; i++) {
        int r = sbx__sink_bind(k->kids[i], s, session_id, ops, err);
        if (r < 0)
            return r;
    }
    if (k->kind != SBX__SINK_WORKSPACE || !ops)
        return 0;
    char hex[33];
    size_t h = 0;
    for (const char *p = session_id; *p && h < 32; p++)
        if (*p != '-')
            hex[h++] = *p;
    hex[h] = '\0';
    struct sbx__ws_state *st = calloc(1, sizeof(*st));
    char *tmp = replace_all(k->tmpl, "{session_id_hex}", hex);
    if (st && tmp)
        st->path = replace_all(tmp, "{session_id}", session_id);
    free(tmp);
    if (!st || !st->path) {
        free(st);
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    }
    if (k->ephemeral) {
        int r = ops->skip_path(s, st->path, err);
        if (r < 0) {
            free(st->path);
            free(st);
            return r;
        }
    }
    st->s = s;
    pthread_mutex_lock(&k->ws_lock);
    k->ops = ops;
    st->next = k->ws;
    k->ws = st;
    pthread_mutex_unlock(&k->ws_lock);
    return 0;
}

static void ws_state_free(struct sbx__ws_state *st)
{
    free(st->path);
    free(st->buf);
    free(st);
}

void sbx__sink_unbind(sbx_event_sink *k, sbx_session *s)
{
    for (size_t i = 0; i < k->n_kids; i++)
        sbx__sink_unbind(k->kids[i], s);
    if (k->kind != SBX__SINK_WORKSPACE)
        return;
    pthread_mutex_lock(&k->ws_lock);
    for (struct sbx__ws_state **pp = &k->ws; *pp; pp = &(*pp)->next) {
        if ((*pp)->s == s) {
            struct sbx__ws_state *st = *pp;
            *pp = st->next;
            ws_state_free(st);
            break;
        }
    }
    pthread_mutex_unlock(&k->ws_lock);
}

/* Rewrites the log as existing content + buffer, through the session. */
static int ws_flush(sbx_event_sink *k, struct sbx__ws_state *st, sbx_error **err)
{
    if (!st->len || !k->ops->running(st->s))
        return 0; /* kept for a later flush */
    int fd = memfd_create("sbx-events", MFD_CLOEXEC);
    if (fd < 0)
        return sbx_err(err, SBX_EIO, errno, "events", "memfd for the workspace event log");
    sbx_error *rerr = NULL;
    int r = k->ops->read(st->s, st->path, fd, &rerr);
    if (r == SBX_EWORKSPACE_READ_NOT_FOUND)
        r = 0; /* a first flush */
    if (r < 0) {
        close(fd);
        if (err)
            *err = rerr;
        else
            sbx_error_free(rerr);
        return r;
    }
    sbx_error_free(rerr);
    if (sbx__write_full(fd, st->buf, st->len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        return sbx_err(err, SBX_EIO, e, "events", "workspace event log buffer");
    }
    r = k->ops->write(st->s, st->path, fd, err);
    close(fd);
    if (r == 0)
        st->len = 0;
    return r;
}

static int ws_handle(sbx_event_sink *k, const sbx_event *ev, sbx_session *s, sbx_error **err)
{
    pthread_mutex_lock(&k->ws_lock);
    struct sbx__ws_state *st = k->ws;
    while (st && st->s != s)
        st = st->next;
    if (!st) {
        pthread_mutex_unlock(&k->ws_lock);
        return 0; /* not bound to this session: nothing to write through */
    }
    size_t n = ev->json_len;
    char *b = realloc(st->buf, st->len + n + 2);
    if (!b) {
        pthread_mutex_unlock(&k->ws_lock);
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    }
    st->buf = b;
    memcpy(st->buf + st->len, ev->json, n);
    st->len += n;
    st->buf[st->len++] = '\n';
    st->count++;
    int start = strcmp(ev->phase, "start") == 0;
    /* The stop start event flushes before persistence runs, so stop()'s snapshot holds the
     * log; shutdown's finish comes when nothing can be written any more. */
    int flush = st->count % k->flush_every == 0 || strcmp(ev->op, "stop") == 0 ||
                (start && strcmp(ev->op, "persist_workspace") == 0) ||
                (start && strcmp(ev->op, "shutdown") == 0);
    int r = flush ? ws_flush(k, st, err) : 0;
    pthread_mutex_unlock(&k->ws_lock);
    return r;
}

void sbx_event_sink_free(sbx_event_sink *k)
{
    if (!k)
        return;
    if (k->kind == SBX__SINK_WORKSPACE) {
        while (k->ws) {
            struct sbx__ws_state *st = k->ws;
            k->ws = st->next;
            ws_state_free(st);
        }
        free(k->tmpl);
        pthread_mutex_destroy(&k->ws_lock);
    }
    for (size_t i = 0; i < k->n_kids; i++)
        sbx_event_sink_free(k->kids[i]);
    free(k->kids);
    if (k->kind == SBX__SINK_JSONL && k->fd >= 0)
        close(k->fd);
    sbx__policy_clear(&k->policy);
    free(k->name);
    free(k);
}

static int jsonl_handle(sbx_event_sink *k, const sbx_event *ev, sbx_error **err)
{
    size_t n = ev->json_len;
    char small[4096];
    char *line = n + 1 <= sizeof(small) ? small : malloc(n + 1);
    if (!line)
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    memcpy(line, ev->json, n);
    line[n] = '\n';
    /* The spec's advisory lock around the append (EVENTS.md §7); the O_APPEND write is what
     * keeps lines whole on a local filesystem, the lock is for NFS and for lock-taking
     * readers. */
    int locked = flock(k->fd, LOCK_EX) == 0;
    ssize_t w;
    do {
        w = write(k->fd, line, n + 1);
    } while (w < 0 && errno == EINTR);
    int e = errno;
    if (locked)
        flock(k->fd, LOCK_UN);
    if (line != small)
        free(line);
    if (w == (ssize_t)(n + 1))
        return 0;
    if (w >= 0)
        e = ENOSPC;
    return sbx_err(err, SBX_EIO, e, "events", "event log write");
}

/* "12:03:04.123 exec finish 1.9ms ok exit=0 [seq 2, span …]" — for people reading a terminal. */
static int stderr_handle(sbx_event_sink *k, const sbx_event *ev, sbx_error **err)
{
    /* For people at a terminal, not a hot path: the line is parsed back. */
    json_object *o = json_tokener_parse(ev->json), *v = NULL, *data = NULL;
    if (!o)
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    const char *ts = json_object_object_get_ex(o, "ts", &v) ? json_object_get_string(v) : "";
    const char *t = strchr(ts, 'T');
    json_object_object_get_ex(o, "data", &data);
    char line[1024];
    int n;
    if (strcmp(ev->phase, "start") == 0) {
        n = snprintf(line, sizeof(line), "sbx: %.15s %-18s start  seq=%llu\n", t ? t + 1 : ts,
                     ev->op, (unsigned long long)ev->seq);
    } else {
        json_object *okv = NULL, *dur = NULL, *code = NULL, *exitc = NULL;
        json_object_object_get_ex(o, "ok", &okv);
        json_object_object_get_ex(o, "duration_ms", &dur);
        json_object_object_get_ex(o, "error_code", &code);
        int ok = json_object_get_boolean(okv);
        char extra[128] = "";
        if (code && json_object_is_type(code, json_type_string))
            snprintf(extra, sizeof(extra), " error=%s", json_object_get_string(code));
        else if (data && json_object_object_get_ex(data, "exit_code", &exitc))
            snprintf(extra, sizeof(extra), " exit=%d", json_object_get_int(exitc));
        const char *on = k->color ? (ok ? "\033[32m" : "\033[31m") : "";
        const char *off = k->color ? "\033[0m" : "";
        n = snprintf(line, sizeof(line), "sbx: %.15s %-18s finish seq=%llu %.3fms %s%s%s%s\n",
                     t ? t + 1 : ts, ev->op, (unsigned long long)ev->seq,
                     json_object_get_double(dur), on, ok ? "ok" : "FAILED", off, extra);
    }
    json_object_put(o);
    if (n < 0)
        return 0;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    if (sbx__write_full_nosig(k->fd, line, (size_t)n) < 0)
        return sbx_err(err, SBX_EIO, errno, "events", "event output");
    return 0;
}

int sbx__sink_handle(sbx_event_sink *k, const sbx_event *ev, sbx_session *s, sbx_error **err)
{
    switch (k->kind) {
    case SBX__SINK_CALLBACK: {
        int r = k->fn(ev, s, k->userdata);
        if (r >= 0)
            return 0;
        return sbx_err(err, r, 0, "events", "%s failed: %s", k->name, sbx_strerror(r));
    }
    case SBX__SINK_JSONL:
        return jsonl_handle(k, ev, err);
    case SBX__SINK_STDERR:
        return stderr_handle(k, ev, err);
    case SBX__SINK_WORKSPACE:
        return ws_handle(k, ev, s, err);
    case SBX__SINK_CHAIN:
        break;
    }
    return sbx_err(err, SBX_EINVAL, 0, "events", "a chain is not a leaf sink");
}
