/* events.c — the instrumentation: event records, seq and span ids, fan-out to sinks.
 *
 * Invariants:
 *  1. seq is per session binding, starts at 1 and counts every emitted event; it is taken and
 *     the event delivered under the binding's lock, so every sink sees one session's events
 *     in seq order and a start event always precedes its finish.
 *  2. The start and finish events of one call share span_id, parent_span_id and trace_id.
 *  3. A call made while this thread is already inside an instrumented call (the workspace
 *     writes of start(), anything a sink's handler does) emits nothing: that is how nested
 *     operations stay silent and a sink can never recurse into itself.
 *  4. Sinks are frozen once a session binds: bindings read the sink list without a lock.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "error_internal.h"
#include "events_internal.h"
#include "trace.h"
#include "util.h"

struct sbx_events {
    atomic_uint refs;
    atomic_int frozen;
    atomic_ullong failures;
    sbx_event_sink **sinks;
    size_t n_sinks;
    struct sbx__policy base;
    char **op_names;
    struct sbx__policy *op_policies;
    size_t n_ops;
    sbx_events_log_fn log_fn;
    void *log_userdata;
};

struct sbx__ev_bind {
    sbx_events *ev;
    sbx_session *s;
    char session_id[37];
    pthread_mutex_t lock; /* seq, trace, delivery (invariant 1) */
    uint64_t seq;
    int has_trace;
    char trace_id[33];
    char parent_span_id[17];
};

/* Depth of instrumented calls on this thread (invariant 3). */
static _Thread_local unsigned tl_depth;
/* The thread's trace context (sbx_trace_set_current). */
static _Thread_local int tl_has_trace;
static _Thread_local char tl_trace_id[33];
static _Thread_local char tl_parent_span_id[17];

/* ---- public: sbx_events ----------------------------------------------------------------- */

int sbx_events_new(const sbx_events_opts *o, sbx_events **out, sbx_error **err)
{
    if (!out)
        return sbx_err(err, SBX_EINVAL, 0, "events", "out is NULL");
    *out = NULL;
    if (o && o->size != sizeof(*o))
        return sbx_err(err, SBX_EINVAL, 0, "events",
                       "sbx_events_opts.size is %zu, expected %zu: fill it with "
                       "SBX_EVENTS_OPTS_INIT",
                       o->size, sizeof(*o));
    if (o && o->n_policy_ops && (!o->policy_ops || !o->policy_by_op))
        return sbx_err(err, SBX_EINVAL, 0, "events", "n_policy_ops is set without policies");
    sbx_events *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    atomic_init(&ev->refs, 1);
    int r = sbx__policy_compile(o ? o->policy : NULL, &ev->base, err);
    if (r < 0) {
        free(ev);
        return r;
    }
    if (o) {
        ev->log_fn = o->log_fn;
        ev->log_userdata = o->log_userdata;
    }
    size_t n = o ? o->n_policy_ops : 0;
    if (n) {
        ev->op_names = calloc(n, sizeof(*ev->op_names));
        ev->op_policies = calloc(n, sizeof(*ev->op_policies));
        if (!ev->op_names || !ev->op_policies) {
            sbx_events_free(ev);
            return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
        }
    }
    /* Copied now: a later change to the caller's map has no effect (spec EVENTS.md §5). */
    for (size_t i = 0; i < n; i++) {
        if (!o->policy_ops[i]) {
            sbx_events_free(ev);
            return sbx_err(err, SBX_EINVAL, 0, "events", "policy_ops[%zu] is NULL", i);
        }
        if (!(ev->op_names[i] = strdup(o->policy_ops[i]))) {
            sbx_events_free(ev);
            return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
        }
        ev->n_ops = i + 1;
        if ((r = sbx__policy_compile(&o->policy_by_op[i], &ev->op_policies[i], err)) < 0) {
            sbx_events_free(ev);
            return r;
        }
    }
    *out = ev;
    return 0;
}

int sbx_events_add_sink(sbx_events *ev, sbx_event_sink *k, sbx_error **err)
{
    if (!ev || !k) {
        sbx_event_sink_free(k);
        return sbx_err(err, SBX_EINVAL, 0, "events", "events or sink is NULL");
    }
    if (atomic_load(&ev->frozen)) {
        sbx_event_sink_free(k);
        return sbx_err(err, SBX_ESTATE, 0, "events",
                       "sinks cannot be added once a session uses the instrumentation");
    }
    sbx_event_sink **v = realloc(ev->sinks, (ev->n_sinks + 1) * sizeof(*v));
    if (!v) {
        sbx_event_sink_free(k);
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    }
    ev->sinks = v;
    ev->sinks[ev->n_sinks++] = k;
    return 0;
}

uint64_t sbx_events_failures(const sbx_events *ev)
{
    return ev ? atomic_load(&((sbx_events *)ev)->failures) : 0;
}

void sbx_events_flush(sbx_events *ev)
{
    /* Deliveries complete before the operation returns (invariant 1): nothing is pending. */
    (void)ev;
}

void sbx_events_free(sbx_events *ev)
{
    if (!ev || atomic_fetch_sub(&ev->refs, 1) != 1)
        return;
    for (size_t i = 0; i < ev->n_sinks; i++)
        sbx_event_sink_free(ev->sinks[i]);
    free(ev->sinks);
    sbx__policy_clear(&ev->base);
    for (size_t i = 0; i < ev->n_ops; i++) {
        free(ev->op_names[i]);
        sbx__policy_clear(&ev->op_policies[i]);
    }
    free(ev->op_names);
    free(ev->op_policies);
    free(ev);
}

/* ---- public: events as sinks see them ---------------------------------------------------- */

const char *sbx_event_json(const sbx_event *ev)
{
    return ev ? ev->json : NULL;
}

const char *sbx_event_op(const sbx_event *ev)
{
    return ev ? ev->op : NULL;
}

const char *sbx_event_phase(const sbx_event *ev)
{
    return ev ? ev->phase : NULL;
}

uint64_t sbx_event_seq(const sbx_event *ev)
{
    return ev ? ev->seq : 0;
}

const char *sbx_event_session_id(const sbx_event *ev)
{
    return ev ? ev->session_id : NULL;
}

/* ---- trace context ---------------------------------------------------------------------- */

int sbx_trace_set_current(const char *traceparent, sbx_error **err)
{
    if (!traceparent) {
        tl_has_trace = 0;
        return 0;
    }
    char t[33], p[17];
    if (sbx__traceparent_parse(traceparent, t, p) < 0)
        return sbx_err(err, SBX_EINVAL, 0, "events", "malformed traceparent '%.80s'",
                       traceparent);
    memcpy(tl_trace_id, t, sizeof(t));
    memcpy(tl_parent_span_id, p, sizeof(p));
    tl_has_trace = 1;
    return 0;
}

int sbx__ev_bind_set_traceparent(struct sbx__ev_bind *b, const char *tp, sbx_error **err)
{
    char t[33], p[17];
    if (tp && sbx__traceparent_parse(tp, t, p) < 0)
        return sbx_err(err, SBX_EINVAL, 0, "events", "malformed traceparent '%.80s'", tp);
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    b->has_trace = tp != NULL;
    if (tp) {
        memcpy(b->trace_id, t, sizeof(t));
        memcpy(b->parent_span_id, p, sizeof(p));
    }
    pthread_mutex_unlock(&b->lock);
    return 0;
}

/* ---- bindings --------------------------------------------------------------------------- */

int sbx__ev_bind_new(sbx_events *ev, sbx_session *s, const char *session_id,
                     const char *traceparent, const struct sbx__ev_session_ops *ops,
                     struct sbx__ev_bind **out, sbx_error **err)
{
    *out = NULL;
    struct sbx__ev_bind *b = calloc(1, sizeof(*b));
    if (!b)
        return sbx_err(err, SBX_ENOMEM, 0, "create", "out of memory");
    pthread_mutex_init(&b->lock, NULL);
    int r = sbx__ev_bind_set_traceparent(b, traceparent, err);
    if (r < 0) {
        pthread_mutex_destroy(&b->lock);
        free(b);
        return r;
    }
    b->s = s;
    snprintf(b->session_id, sizeof(b->session_id), "%s", session_id);
    if (ev) {
        atomic_fetch_add(&ev->refs, 1);
        atomic_store(&ev->frozen, 1);
        b->ev = ev;
        for (size_t i = 0; s && i < ev->n_sinks; i++) {
            if ((r = sbx__sink_bind(ev->sinks[i], s, session_id, ops, err)) < 0) {
                sbx__ev_bind_free(b);
                return r;
            }
        }
    }
    *out = b;
    return 0;
}

void sbx__ev_bind_free(struct sbx__ev_bind *b)
{
    if (!b)
        return;
    sbx_events_flush(b->ev);
    for (size_t i = 0; b->ev && b->s && i < b->ev->n_sinks; i++)
        sbx__sink_unbind(b->ev->sinks[i], b->s);
    sbx_events_free(b->ev);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* ---- records ---------------------------------------------------------------------------- */

static void uuid4(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        uint64_t t = sbx__now_ns();
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)(i * 37);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void iso_now(char out[40])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char date[24];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%.19s.%06uZ", date, (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}

/* The spec's class name (ERRORS.md) and fixed `retryable` of a code: -1 unknown. Codes with
 * no class there get the nearest language-level type it lists for such conditions. */
static const char *error_type(int code, int *retryable)
{
    *retryable = -1;
    switch (code) {
    case SBX_EINVALID_PATH:
        *retryable = 0;
        return "InvalidManifestPathError";
    case SBX_EINVALID_COMPRESSION:
        *retryable = 0;
        return "InvalidCompressionSchemeError";
    case SBX_EWORKSPACE_READ_NOT_FOUND:
        *retryable = 0;
        return "WorkspaceReadNotFoundError";
    case SBX_EWORKSPACE_ARCHIVE_READ:
        return "WorkspaceArchiveReadError";
    case SBX_EWORKSPACE_ARCHIVE_WRITE:
        return "WorkspaceArchiveWriteError";
    case SBX_EWORKSPACE_WRITE_TYPE:
        *retryable = 0;
        return "WorkspaceWriteTypeError";
    case SBX_EWORKSPACE_START:
        return "WorkspaceStartError";
    case SBX_EWORKSPACE_STOP:
        return "WorkspaceStopError";
    case SBX_EWORKSPACE_ROOT_NOT_FOUND:
        *retryable = 0;
        return "WorkspaceRootNotFoundError";
    case SBX_EEXEC_NONZERO:
        *retryable = 0;
        return "ExecNonZeroError";
    case SBX_EEXEC_TIMEOUT:
        *retryable = 0;
        return "ExecTimeoutError";
    case SBX_EEXEC_TRANSPORT:
        return "ExecTransportError";
    case SBX_EPTY_NOT_FOUND:
        *retryable = 0;
        return "PtySessionNotFoundError";
    case SBX_EEXPOSED_PORT_UNAVAILABLE:
        return "ExposedPortUnavailableError";
    case SBX_ESNAPSHOT_PERSIST:
        return "SnapshotPersistError";
    case SBX_ESNAPSHOT_RESTORE:
        return "SnapshotRestoreError";
    case SBX_ESNAPSHOT_NOT_RESTORABLE:
        *retryable = 0;
        return "SnapshotNotRestorableError";
    case SBX_EINVAL:
        return "ValueError";
    case SBX_ENOMEM:
        return "MemoryError";
    case SBX_ENOSYS:
        return "NotImplementedError";
    case SBX_EPERM:
        return "PermissionError";
    case SBX_EIO:
        return "OSError";
    case SBX_ESTATE:
        return "RuntimeError";
    case SBX_EBACKEND:
        return "SandboxRuntimeError";
    default:
        return "SandboxError";
    }
}

static json_object *record_new(struct sbx__ev_bind *b, const struct sbx__ev_call *c,
                               const char *phase, uint64_t seq, json_object *data)
{
    char id[37], ts[40];
    uuid4(id);
    iso_now(ts);
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "version", json_object_new_int(1));
    json_object_object_add(o, "event_id", json_object_new_string(id));
    json_object_object_add(o, "ts", json_object_new_string(ts));
    json_object_object_add(o, "session_id", json_object_new_string(b->session_id));
    json_object_object_add(o, "seq", json_object_new_int64((int64_t)seq));
    json_object_object_add(o, "op", json_object_new_string(c->op));
    json_object_object_add(o, "phase", json_object_new_string(phase));
    json_object_object_add(o, "span_id", json_object_new_string(c->span_id));
    json_object_object_add(o, "parent_span_id", c->parent_span_id[0]
                                                    ? json_object_new_string(c->parent_span_id)
                                                    : NULL);
    json_object_object_add(o, "trace_id",
                           c->trace_id[0] ? json_object_new_string(c->trace_id) : NULL);
    json_object_object_add(o, "data", data ? data : json_object_new_object());
    return o;
}

static const struct sbx__policy *op_policy(const sbx_events *ev, const char *op)
{
    for (size_t i = 0; i < ev->n_ops; i++)
        if (strcmp(ev->op_names[i], op) == 0)
            return &ev->op_policies[i];
    return NULL;
}

/* One leaf sink: its policy, its copy, its delivery, its failure handling. Returns 0 or the
 * error the operation must report. */
static int deliver(struct sbx__ev_bind *b, sbx_event_sink *k, json_object *rec,
                   const struct sbx__ev_raw *raw, const char *op, const char *phase, uint64_t seq,
                   sbx_error **err)
{
    if (k->kind == SBX__SINK_CHAIN) {
        /* In order, each inner sink done before the next starts; the first raising inner
         * sink's error ends the chain's delivery of this event. */
        for (size_t i = 0; i < k->n_kids; i++) {
            int r = deliver(b, k->kids[i], rec, raw, op, phase, seq, err);
            if (r < 0)
                return r;
        }
        return 0;
    }
    const struct sbx__policy *layers[3] = {&b->ev->base, op_policy(b->ev, op),
                                           k->has_policy ? &k->policy : NULL};
    struct sbx__policy_eff eff;
    sbx__policy_resolve(layers, 3, &eff);
    sbx_error *kerr = NULL;
    int r;
    json_object *copy = sbx__policy_apply(&eff, rec, raw);
    const char *line = copy ? json_object_to_json_string_ext(
                                  copy, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                            : NULL;
    if (!line) {
        r = sbx_err(&kerr, SBX_ENOMEM, 0, "events", "out of memory");
    } else {
        sbx_event e = {.json = line, .op = op, .phase = phase, .seq = seq,
                       .session_id = b->session_id, .obj = copy};
        r = sbx__sink_handle(k, &e, b->s, &kerr);
    }
    if (r == 0) {
        json_object_put(copy);
        return 0;
    }
    atomic_fetch_add(&b->ev->failures, 1);
    int mode = k->mode, on_error = k->on_error;
    if (mode != SBX_SINK_BEST_EFFORT && on_error == SBX_SINK_RAISE) {
        if (mode == SBX_SINK_ASYNC) {
            /* The sink's own error, unwrapped (spec EVENTS.md §8.7). */
            if (err)
                *err = kerr;
            else
                sbx_error_free(kerr);
            kerr = NULL;
        } else {
            json_object *eid = NULL;
            json_object_object_get_ex(rec, "event_id", &eid);
            sbx_err(err, SBX_EIO, 0, op,
                    "sandbox event sink failed: %s while handling event %s", k->name,
                    json_object_get_string(eid));
            sbx_err_ctx(err, "sink", "%s", k->name);
            sbx_err_ctx(err, "cause", "%s", sbx_error_message(kerr));
            r = SBX_EIO;
        }
    } else {
        if (on_error == SBX_SINK_LOG && b->ev->log_fn)
            b->ev->log_fn("Sandbox event sink failed (ignored)", k->name, r,
                          b->ev->log_userdata);
        r = 0;
    }
    sbx_error_free(kerr);
    json_object_put(copy);
    return r;
}

/* Delivers to every sink; the first raised error wins, later sinks still see the event. */
static int emit(struct sbx__ev_bind *b, json_object *rec, const struct sbx__ev_raw *raw,
                const char *op, const char *phase, uint64_t seq, sbx_error **err)
{
    int first = 0;
    for (size_t i = 0; i < b->ev->n_sinks; i++) {
        int r = deliver(b, b->ev->sinks[i], rec, raw, op, phase, seq, first ? NULL : err);
        if (r < 0 && !first)
            first = r;
    }
    return first;
}

/* ---- the hooks -------------------------------------------------------------------------- */

int sbx__ev_begin(struct sbx__ev_bind *b, struct sbx__ev_call *c, const char *op,
                  json_object *data, sbx_error **err)
{
    memset(c, 0, sizeof(*c));
    c->op = op;
    tl_depth++;
    if (!b || !b->ev || b->ev->n_sinks == 0 || tl_depth > 1) {
        json_object_put(data);
        return 0;
    }
    c->active = 1;
    c->start_data = data ? data : json_object_new_object();
    pthread_mutex_lock(&b->lock);
    if (tl_has_trace || b->has_trace) {
        memcpy(c->trace_id, tl_has_trace ? tl_trace_id : b->trace_id, sizeof(c->trace_id));
        memcpy(c->parent_span_id, tl_has_trace ? tl_parent_span_id : b->parent_span_id,
               sizeof(c->parent_span_id));
        sbx__span_id_new(c->span_id);
    } else {
        /* No tracing system: the spec's local form (EVENTS.md §4). */
        char hex[33];
        sbx__trace_id_new(hex);
        snprintf(c->span_id, sizeof(c->span_id), "sandbox_op_%s", hex);
    }
    uint64_t seq = ++b->seq;
    json_object *rec = record_new(b, c, "start", seq, json_object_get(c->start_data));
    int r = rec ? emit(b, rec, NULL, op, "start", seq, err)
                : sbx_err(err, SBX_ENOMEM, 0, op, "out of memory");
    pthread_mutex_unlock(&b->lock);
    json_object_put(rec);
    c->t0_ns = sbx__now_ns();
    return r;
}

void sbx__ev_abort(struct sbx__ev_call *c)
{
    json_object_put(c->start_data);
    c->start_data = NULL;
    c->active = 0;
    tl_depth--;
}

int sbx__ev_end(struct sbx__ev_bind *b, struct sbx__ev_call *c, int r, sbx_error **op_err,
                json_object *finish_data, int merge_start, int ok, const struct sbx__ev_raw *raw)
{
    double ms = c->t0_ns ? sbx__ms_since(c->t0_ns) : 0.0;
    if (!c->active) {
        json_object_put(finish_data);
        sbx__ev_abort(c);
        return r;
    }
    json_object *data;
    if (r < 0 || !finish_data) {
        /* On failure the finish data is the start data (EVENTS.md §3). */
        json_object_put(finish_data);
        data = json_object_get(c->start_data);
    } else if (merge_start) {
        data = sbx__json_sorted(c->start_data);
        json_object_object_foreach(finish_data, k, v)
            json_object_object_add(data, k, json_object_get(v));
        json_object_put(finish_data);
    } else {
        data = finish_data;
    }
    pthread_mutex_lock(&b->lock);
    uint64_t seq = ++b->seq;
    json_object *rec = record_new(b, c, "finish", seq, data);
    sbx_error *e = r < 0 && op_err ? *op_err : NULL;
    if (rec) {
        json_object_object_add(rec, "ok", json_object_new_boolean(r == 0 && ok));
        /* Microseconds are the clock's useful resolution here; the shortest form of a
         * double would print 17 digits of noise. */
        char ms_s[32];
        snprintf(ms_s, sizeof(ms_s), "%.3f", ms);
        json_object_object_add(rec, "duration_ms", json_object_new_double_s(ms, ms_s));
        int retry = -1;
        const char *type = r < 0 ? error_type(r, &retry) : NULL;
        json_object_object_add(rec, "error_code",
                               r < 0 ? json_object_new_string(sbx_code_name(r)) : NULL);
        json_object_object_add(rec, "error_type", type ? json_object_new_string(type) : NULL);
        json_object_object_add(rec, "error_message",
                               r < 0 ? json_object_new_string(e ? sbx_error_message(e)
                                                                : sbx_strerror(r))
                                     : NULL);
        json_object_object_add(rec, "error_retryable",
                               retry >= 0 ? json_object_new_boolean(retry) : NULL);
        json_object_object_add(rec, "stdout", NULL);
        json_object_object_add(rec, "stderr", NULL);
    }
    sbx_error *serr = NULL;
    int rs = rec ? emit(b, rec, r == 0 ? raw : NULL, c->op, "finish", seq, &serr)
                 : sbx_err(&serr, SBX_ENOMEM, 0, c->op, "out of memory");
    pthread_mutex_unlock(&b->lock);
    json_object_put(rec);
    sbx__ev_abort(c);
    if (rs < 0) {
        /* A raising sink replaces the operation's own result or error (EVENTS.md §4). */
        if (op_err) {
            sbx_error_free(*op_err);
            *op_err = serr;
        } else {
            sbx_error_free(serr);
        }
        return rs;
    }
    return r;
}
