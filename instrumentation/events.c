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
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    char *session_id_json; /* session_id as a JSON string, escaped by json-c once */
    pthread_mutex_t lock; /* seq, trace, delivery (invariant 1), scratch */
    json_object *scratch; /* a json-c string reused to escape the line's dynamic strings */
    uint64_t seq;
    int has_trace;
    char trace_id[33];
    char parent_span_id[17];
};

#define LINE_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

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
    json_object *sid = json_object_new_string(b->session_id);
    const char *sid_json = sid ? json_object_to_json_string_ext(sid, LINE_FLAGS) : NULL;
    b->session_id_json = sid_json ? strdup(sid_json) : NULL;
    json_object_put(sid);
    b->scratch = json_object_new_string("");
    if (!b->session_id_json || !b->scratch) {
        sbx__ev_bind_free(b);
        return sbx_err(err, SBX_ENOMEM, 0, "create", "out of memory");
    }
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
    json_object_put(b->scratch);
    free(b->session_id_json);
    free(b);
}

/* ---- records ---------------------------------------------------------------------------- */

static void uuid4(char out[37])
{
    unsigned char b[16];
    sbx__random_bytes(b, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    char hex[33];
    sbx__hex(hex, b, sizeof(b));
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
}

/* "2026-11-26T03:30:12.221299Z". The date and time of day change once a second: each thread
 * keeps the last one formatted. */
static _Thread_local time_t tl_ts_sec = (time_t)-1;
static _Thread_local char tl_ts_date[24];

static void iso_now(char out[40])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != tl_ts_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        if (strftime(tl_ts_date, sizeof(tl_ts_date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            tl_ts_date[0] = '\0';
        tl_ts_sec = ts.tv_sec;
    }
    unsigned us = (unsigned)(ts.tv_nsec / 1000) % 1000000u;
    size_t n = strnlen(tl_ts_date, 19);
    memcpy(out, tl_ts_date, n);
    out[n++] = '.';
    for (int i = 5; i >= 0; i--, us /= 10)
        out[n + (size_t)i] = (char)('0' + us % 10);
    n += 6;
    out[n++] = 'Z';
    out[n] = '\0';
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

/* ---- the line ---------------------------------------------------------------------------- */

/* One event's fields, shared by the lines of all its sinks. */
struct rec {
    const char *op, *phase;
    uint64_t seq;
    char event_id[37];
    char ts[40];
    json_object *data; /* keys sorted */
    int finish;
    /* finish only */
    int ok, retryable; /* retryable: -1 null */
    char duration[32];
    const char *error_code, *error_type, *error_message;
    const struct sbx__ev_raw *raw; /* exec output, or NULL */
};

struct line {
    char *p;
    size_t len, cap;
    int oom;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (l->oom)
        return;
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap : 1024;
        while (l->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(l->p, cap);
        if (!p) {
            l->oom = 1;
            return;
        }
        l->p = p;
        l->cap = cap;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
    l->p[l->len] = '\0';
}

static void put_s(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A value json-c serialised. */
static void put_json(struct line *l, json_object *o)
{
    size_t n = 0;
    const char *j = o ? json_object_to_json_string_length(o, LINE_FLAGS, &n) : NULL;
    if (!j)
        l->oom = 1;
    else
        put(l, j, n);
}

/* s[0..n) as a JSON string: escaped by json-c, through the binding's scratch string. */
static void put_json_str(struct line *l, json_object *scratch, const char *s, size_t n)
{
    /* json-c 0.16 leaks the buffer of a string set to "" after a longer value: the empty
     * string, which has nothing to escape, does not go through it. */
    if (n == 0)
        put_s(l, "\"\"");
    else if (n > INT_MAX || !json_object_set_string_len(scratch, s, (int)n))
        l->oom = 1;
    else
        put_json(l, scratch);
}

static void put_str_or_null(struct line *l, json_object *scratch, const char *s)
{
    if (s)
        put_json_str(l, scratch, s, strlen(s));
    else
        put_s(l, "null");
}

/* sbx's own ids and timestamps: hex digits, '-', digits, 'T', ':', '.', 'Z', "sandbox_op_":
 * nothing json-c would escape, so they go in between quotes as they are. */
static void put_id(struct line *l, const char *id)
{
    put_s(l, "\"");
    put_s(l, id);
    put_s(l, "\"");
}

static void put_id_or_null(struct line *l, const char *id)
{
    if (id[0])
        put_id(l, id);
    else
        put_s(l, "null");
}

static void put_u64(struct line *l, uint64_t v)
{
    char d[24];
    size_t i = sizeof(d);
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(l, d + i, sizeof(d) - i);
}

/* "stderr" or "stdout" of an exec finish event, with its digest when the policy hashes. */
static void put_stream(struct line *l, json_object *scratch, const struct sbx__policy_eff *p,
                       const char *key, const unsigned char *raw, size_t raw_len, size_t max)
{
    char *text = NULL, hash[65];
    size_t tl = 0;
    int hashed = sbx__policy_stream(p, raw, raw_len, max, &text, &tl, hash);
    put_s(l, ",\"");
    put_s(l, key);
    put_s(l, "\":");
    if (text)
        put_json_str(l, scratch, text, tl);
    else
        put_s(l, "null");
    free(text);
    if (hashed) {
        put_s(l, ",\"");
        put_s(l, key);
        put_s(l, "_sha256\":");
        put_id(l, hash);
    }
}

/* The record as one sink's policy lets it out: the JSON line form (keys sorted, compact), the
 * same bytes json-c gives for the policy-applied record tree (sbx__policy_apply). */
static void build_line(struct sbx__ev_bind *b, const struct sbx__ev_call *c,
                       const struct rec *r, const struct sbx__policy_eff *p, struct line *l)
{
    json_object *scratch = b->scratch;
    put_s(l, "{\"data\":");
    json_object *d = sbx__policy_data(p, r->data);
    put_json(l, d);
    json_object_put(d);
    if (r->finish) {
        put_s(l, ",\"duration_ms\":");
        put_s(l, r->duration);
        put_s(l, ",\"error_code\":");
        put_str_or_null(l, scratch, r->error_code);
        put_s(l, ",\"error_message\":");
        if (r->error_message && p->n_re) {
            size_t n = 0;
            char *red = sbx__redact(p->re, p->n_re, r->error_message, strlen(r->error_message),
                                    &n);
            /* Out of memory: an empty message, never the unredacted one. */
            put_json_str(l, scratch, red ? red : "", red ? n : 0);
            free(red);
        } else {
            put_str_or_null(l, scratch, r->error_message);
        }
        put_s(l, ",\"error_retryable\":");
        put_s(l, r->retryable < 0 ? "null" : r->retryable ? "true" : "false");
        put_s(l, ",\"error_type\":");
        put_str_or_null(l, scratch, r->error_type);
    }
    put_s(l, ",\"event_id\":");
    put_id(l, r->event_id);
    if (r->finish)
        put_s(l, r->ok ? ",\"ok\":true" : ",\"ok\":false");
    put_s(l, ",\"op\":");
    put_str_or_null(l, scratch, r->op);
    put_s(l, ",\"parent_span_id\":");
    put_id_or_null(l, c->parent_span_id);
    put_s(l, ",\"phase\":");
    put_id(l, r->phase);
    put_s(l, ",\"seq\":");
    put_u64(l, r->seq);
    put_s(l, ",\"session_id\":");
    put_s(l, b->session_id_json);
    put_s(l, ",\"span_id\":");
    put_id(l, c->span_id);
    if (r->finish) {
        if (r->raw && r->raw->has_output) {
            put_stream(l, scratch, p, "stderr", r->raw->err, r->raw->err_len,
                       p->max_stderr_chars);
            put_stream(l, scratch, p, "stdout", r->raw->out, r->raw->out_len,
                       p->max_stdout_chars);
        } else {
            put_s(l, ",\"stderr\":null,\"stdout\":null");
        }
    }
    put_s(l, ",\"trace_id\":");
    put_id_or_null(l, c->trace_id);
    put_s(l, ",\"ts\":");
    put_id(l, r->ts);
    put_s(l, ",\"version\":1}");
}

/* Whether every object in o has its keys in sorted order already. */
static int is_sorted(json_object *o)
{
    if (json_object_is_type(o, json_type_array)) {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++)
            if (!is_sorted(json_object_array_get_idx(o, i)))
                return 0;
        return 1;
    }
    if (!json_object_is_type(o, json_type_object))
        return 1;
    const char *prev = NULL;
    json_object_object_foreach(o, k, v)
    {
        if ((prev && strcmp(prev, k) >= 0) || !is_sorted(v))
            return 0;
        prev = k;
    }
    return 1;
}

/* A new reference to o with sorted keys: o itself when it is sorted already (core builds its
 * data that way), else a sorted copy. NULL on OOM. */
static json_object *sorted_ref(json_object *o)
{
    return is_sorted(o) ? json_object_get(o) : sbx__json_sorted(o);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The start data with the finish data's keys added (replacing equal keys), sorted. */
static json_object *merge_sorted(json_object *start, json_object *fin)
{
    size_t n = (size_t)json_object_object_length(start) + (size_t)json_object_object_length(fin);
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    json_object *m = json_object_new_object();
    if (!keys || !m) {
        free(keys);
        json_object_put(m);
        return NULL;
    }
    size_t i = 0;
    json_object_object_foreach(start, ks, vs)
    {
        (void)vs;
        if (!json_object_object_get_ex(fin, ks, NULL))
            keys[i++] = ks;
    }
    json_object_object_foreach(fin, kf, vf)
    {
        (void)vf;
        keys[i++] = kf;
    }
    qsort(keys, i, sizeof(*keys), cmp_key);
    for (size_t j = 0; j < i; j++) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(fin, keys[j], &v))
            json_object_object_get_ex(start, keys[j], &v);
        json_object *sv = v ? sorted_ref(v) : NULL;
        if ((v && !sv) || json_object_object_add(m, keys[j], sv) < 0) {
            json_object_put(sv);
            json_object_put(m);
            m = NULL;
            break;
        }
    }
    free(keys);
    return m;
}

/* ---- delivery ---------------------------------------------------------------------------- */

static const struct sbx__policy *op_policy(const sbx_events *ev, const char *op)
{
    for (size_t i = 0; i < ev->n_ops; i++)
        if (strcmp(ev->op_names[i], op) == 0)
            return &ev->op_policies[i];
    return NULL;
}

static int eff_equal(const struct sbx__policy_eff *a, const struct sbx__policy_eff *b)
{
    return a->include_exec_output == b->include_exec_output &&
           a->max_stdout_chars == b->max_stdout_chars &&
           a->max_stderr_chars == b->max_stderr_chars &&
           a->include_write_len == b->include_write_len &&
           a->hash_dropped_output == b->hash_dropped_output && a->re == b->re &&
           a->n_re == b->n_re;
}

/* The lines of one event, one per distinct effective policy: sinks with equal policies (the
 * same overlays, or none) get the same bytes, so the line is built once. */
#define MAX_LINES 4
struct emit_ctx {
    const struct rec *r;
    struct {
        struct sbx__policy_eff eff;
        char *line;
        size_t len;
    } lines[MAX_LINES];
    size_t n_lines;
};

/* One leaf sink: its policy, its line, its delivery, its failure handling. Returns 0 or the
 * error the operation must report. */
static int deliver(struct sbx__ev_bind *b, const struct sbx__ev_call *c, sbx_event_sink *k,
                   struct emit_ctx *x, sbx_error **err)
{
    const struct rec *rec = x->r;
    if (k->kind == SBX__SINK_CHAIN) {
        /* In order, each inner sink done before the next starts; the first raising inner
         * sink's error ends the chain's delivery of this event. */
        for (size_t i = 0; i < k->n_kids; i++) {
            int r = deliver(b, c, k->kids[i], x, err);
            if (r < 0)
                return r;
        }
        return 0;
    }
    const struct sbx__policy *layers[3] = {&b->ev->base, op_policy(b->ev, rec->op),
                                           k->has_policy ? &k->policy : NULL};
    struct sbx__policy_eff eff;
    sbx__policy_resolve(layers, 3, &eff);
    sbx_error *kerr = NULL;
    int r;
    const char *line = NULL;
    size_t len = 0;
    char *own = NULL;
    for (size_t i = 0; i < x->n_lines && !line; i++) {
        if (eff_equal(&x->lines[i].eff, &eff)) {
            line = x->lines[i].line;
            len = x->lines[i].len;
        }
    }
    if (!line) {
        struct line l = {0};
        build_line(b, c, rec, &eff, &l);
        if (l.oom) {
            free(l.p);
        } else if (x->n_lines < MAX_LINES) {
            x->lines[x->n_lines].eff = eff;
            x->lines[x->n_lines].line = l.p;
            x->lines[x->n_lines++].len = l.len;
            line = l.p;
            len = l.len;
        } else {
            line = own = l.p;
            len = l.len;
        }
    }
    if (!line) {
        r = sbx_err(&kerr, SBX_ENOMEM, 0, "events", "out of memory");
    } else {
        sbx_event e = {.json = line, .json_len = len, .op = rec->op, .phase = rec->phase,
                       .seq = rec->seq, .session_id = b->session_id};
        r = sbx__sink_handle(k, &e, b->s, &kerr);
    }
    free(own);
    if (r == 0)
        return 0;
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
            sbx_err(err, SBX_EIO, 0, rec->op,
                    "sandbox event sink failed: %s while handling event %s", k->name,
                    rec->event_id);
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
    return r;
}

/* Delivers to every sink; the first raised error wins, later sinks still see the event. */
static int emit(struct sbx__ev_bind *b, const struct sbx__ev_call *c, const struct rec *rec,
                sbx_error **err)
{
    struct emit_ctx x = {.r = rec};
    int first = 0;
    for (size_t i = 0; i < b->ev->n_sinks; i++) {
        int r = deliver(b, c, b->ev->sinks[i], &x, first ? NULL : err);
        if (r < 0 && !first)
            first = r;
    }
    for (size_t i = 0; i < x.n_lines; i++)
        free(x.lines[i].line);
    return first;
}

/* ---- the hooks -------------------------------------------------------------------------- */

int sbx__ev_live(const struct sbx__ev_bind *b)
{
    return b && b->ev && b->ev->n_sinks > 0 && tl_depth == 0;
}

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
    struct rec rec = {.op = op, .phase = "start"};
    uuid4(rec.event_id);
    rec.data = c->start_data ? sorted_ref(c->start_data) : NULL;
    pthread_mutex_lock(&b->lock);
    if (tl_has_trace || b->has_trace) {
        memcpy(c->trace_id, tl_has_trace ? tl_trace_id : b->trace_id, sizeof(c->trace_id));
        memcpy(c->parent_span_id, tl_has_trace ? tl_parent_span_id : b->parent_span_id,
               sizeof(c->parent_span_id));
        sbx__span_id_new(c->span_id);
    } else {
        /* No tracing system: the spec's local form (EVENTS.md §4). */
        memcpy(c->span_id, "sandbox_op_", 11);
        sbx__trace_id_new(c->span_id + 11);
    }
    rec.seq = ++b->seq;
    iso_now(rec.ts);
    int r = rec.data ? emit(b, c, &rec, err) : sbx_err(err, SBX_ENOMEM, 0, op, "out of memory");
    pthread_mutex_unlock(&b->lock);
    json_object_put(rec.data);
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
    uint64_t ns = c->t0_ns ? sbx__now_ns() - c->t0_ns : 0;
    if (!c->active) {
        json_object_put(finish_data);
        sbx__ev_abort(c);
        return r;
    }
    struct rec rec = {.op = c->op, .phase = "finish", .finish = 1, .ok = r == 0 && ok,
                      .retryable = -1, .raw = r == 0 ? raw : NULL};
    if (r < 0 || !finish_data) {
        /* On failure the finish data is the start data (EVENTS.md §3). */
        rec.data = sorted_ref(c->start_data);
    } else if (merge_start) {
        rec.data = merge_sorted(c->start_data, finish_data);
    } else {
        rec.data = sorted_ref(finish_data);
    }
    json_object_put(finish_data);
    uuid4(rec.event_id);
    /* Milliseconds with 3 decimals: microseconds are the clock's useful resolution here, and
     * the shortest form of a double would print 17 digits of noise. Integer arithmetic: this
     * is what "%.3f" of ns / 1e6 prints (up to ties), without printf's floating point. */
    uint64_t us = (ns + 500) / 1000, whole = us / 1000;
    char d[24];
    size_t i = sizeof(d);
    for (int k = 0; k < 3; k++, us /= 10)
        d[--i] = (char)('0' + us % 10);
    d[--i] = '.';
    do {
        d[--i] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    memcpy(rec.duration, d + i, sizeof(d) - i);
    rec.duration[sizeof(d) - i] = '\0';
    sbx_error *e = r < 0 && op_err ? *op_err : NULL;
    if (r < 0) {
        rec.error_code = sbx_code_name(r);
        rec.error_type = error_type(r, &rec.retryable);
        rec.error_message = e ? sbx_error_message(e) : sbx_strerror(r);
    }
    sbx_error *serr = NULL;
    pthread_mutex_lock(&b->lock);
    rec.seq = ++b->seq;
    iso_now(rec.ts);
    int rs = rec.data ? emit(b, c, &rec, &serr)
                      : sbx_err(&serr, SBX_ENOMEM, 0, c->op, "out of memory");
    pthread_mutex_unlock(&b->lock);
    json_object_put(rec.data);
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
