/* events_internal.h — the instrumentation layer's pieces, shared by events.c, sinks.c and
 * policy.c, and the hooks core/instrumented.c calls around each public operation. Internal.
 *
 * Data flow of one event: core builds `data` for the op (keys inserted in sorted order where it
 * can); events.c keeps the common fields of the record as plain values (raw exec output kept
 * aside), then for each sink resolves the effective policy (defaults < instrumentation < op <
 * sink, presence bits only), applies it to what the policy touches (policy.c: a copy of
 * `data`, the output streams, the error message) and writes the line with sorted keys, json-c
 * serialising every value that is not one of sbx's own ids, numbers or timestamps. Sinks whose
 * effective policies are equal share one line. Nothing but the policy-applied line ever
 * reaches a sink, so redaction happens before any byte leaves the process. */
#ifndef SBX_EVENTS_INTERNAL_H
#define SBX_EVENTS_INTERNAL_H

#include <json-c/json.h>
#include <pthread.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include <sbx/events.h>

/* ---- policy.c --------------------------------------------------------------------------- */

/* A copied, compiled policy overlay. */
struct sbx__policy {
    unsigned set; /* enum sbx_policy_fields */
    int include_exec_output;
    size_t max_stdout_chars, max_stderr_chars;
    int include_write_len;
    int hash_dropped_output;
    regex_t *re;
    size_t n_re;
};

/* The resolved view for one (op, sink); borrows the regexes of the policy that set them. */
struct sbx__policy_eff {
    int include_exec_output;
    size_t max_stdout_chars, max_stderr_chars;
    int include_write_len;
    int hash_dropped_output;
    const regex_t *re;
    size_t n_re;
};

int sbx__policy_compile(const sbx_payload_policy *in, struct sbx__policy *out, sbx_error **err);
void sbx__policy_clear(struct sbx__policy *p);
/* Hard defaults, then each non-NULL overlay in order (explicitly set fields only). */
void sbx__policy_resolve(const struct sbx__policy *const *overlays, size_t n,
                         struct sbx__policy_eff *out);

/* The raw exec output of a finish event: kept out of the record, never serialised. */
struct sbx__ev_raw {
    const unsigned char *out;
    size_t out_len;
    const unsigned char *err;
    size_t err_len;
    int has_output; /* an exec finish event that returned a result */
};

/* A copy of the record tree `ev` with the policy applied and keys sorted (the JSON line form).
 * NULL on OOM. The unit tests' view of what sbx__policy_data/_stream do to a line. */
json_object *sbx__policy_apply(const struct sbx__policy_eff *p, json_object *ev,
                               const struct sbx__ev_raw *raw);
/* `data` (keys sorted) as the policy lets it out: a new reference to data itself when the
 * policy changes nothing, else a sorted copy without `bytes` and/or with redacted strings.
 * NULL on OOM. */
json_object *sbx__policy_data(const struct sbx__policy_eff *p, json_object *data);
/* One output stream under the policy: *text (malloc'd, decoded, redacted, truncated) when the
 * policy includes output, else NULL; returns 1 when the digest of the stripped (redacted)
 * stream is to be shown, in hash ("" if it failed), else 0. Out of memory: NULL and 0. */
int sbx__policy_stream(const struct sbx__policy_eff *p, const unsigned char *raw,
                       size_t raw_len, size_t max_chars, char **text, size_t *text_len,
                       char hash[65]);

/* Helpers, exposed for the unit tests. All return malloc'd strings (NULL on OOM). */
char *sbx__utf8_decode(const void *p, size_t n, size_t *out_len); /* invalid -> U+FFFD */
char *sbx__redact(const regex_t *re, size_t n_re, const char *s, size_t len, size_t *out_len);
/* At most max code points of valid UTF-8 s, plus "…" when cut. */
char *sbx__truncate_chars(const char *s, size_t len, size_t max, size_t *out_len);
/* Recursive copy with object keys sorted (primitives shared by reference). */
json_object *sbx__json_sorted(json_object *o);

/* ---- sinks.c ---------------------------------------------------------------------------- */

/* The session operations a session-bound sink uses, supplied by core: the uninstrumented
 * implementations, so sink I/O never produces events (EVENTS.md §1, "sinks are bound to the
 * inner session"). */
struct sbx__ev_session_ops {
    int (*running)(sbx_session *s);
    int (*read)(sbx_session *s, const char *path, int out_fd, sbx_error **err);
    int (*write)(sbx_session *s, const char *path, int in_fd, sbx_error **err);
    int (*skip_path)(sbx_session *s, const char *path, sbx_error **err);
};

enum sbx__sink_kind {
    SBX__SINK_CALLBACK,
    SBX__SINK_JSONL,
    SBX__SINK_STDERR,
    SBX__SINK_CHAIN,
    SBX__SINK_WORKSPACE,
};

struct sbx__ws_state; /* a workspace sink's per-session buffer */

struct sbx_event {
    const char *json;
    const char *op;
    const char *phase;
    const char *session_id;
    uint64_t seq;
    size_t json_len; /* strlen(json) */
};

struct sbx_event_sink {
    enum sbx__sink_kind kind;
    int mode;     /* enum sbx_sink_mode */
    int on_error; /* enum sbx_sink_on_error */
    char *name;
    int has_policy;
    struct sbx__policy policy;
    sbx_event_fn fn; /* callback */
    void *userdata;
    int fd;          /* jsonl (owned), stderr (borrowed) */
    int color;       /* stderr: a terminal */
    sbx_event_sink **kids; /* chain */
    size_t n_kids;
    char *tmpl;            /* workspace: path template, */
    int ephemeral;         /* left out of snapshots, */
    unsigned flush_every;  /* flush cadence, */
    pthread_mutex_t ws_lock; /* guarding the per-session states */
    struct sbx__ws_state *ws;
    const struct sbx__ev_session_ops *ops;
};

/* Binds session-bound sinks (recursing into chains) to s; unbind drops s's state. */
int sbx__sink_bind(sbx_event_sink *k, sbx_session *s, const char *session_id,
                   const struct sbx__ev_session_ops *ops, sbx_error **err);
void sbx__sink_unbind(sbx_event_sink *k, sbx_session *s);

/* Delivers one prepared event to a leaf sink. 0, or a negative code with *err set. */
int sbx__sink_handle(sbx_event_sink *k, const sbx_event *ev, sbx_session *s, sbx_error **err);

/* ---- events.c: the hooks core calls ----------------------------------------------------- */

/* A session's binding to an sbx_events: its seq counter and default trace. */
struct sbx__ev_bind;

int sbx__ev_bind_new(sbx_events *ev, sbx_session *s, const char *session_id,
                     const char *traceparent, const struct sbx__ev_session_ops *ops,
                     struct sbx__ev_bind **out, sbx_error **err);
/* Delivers nothing further and drops the reference. NULL is a no-op. */
void sbx__ev_bind_free(struct sbx__ev_bind *b);
int sbx__ev_bind_set_traceparent(struct sbx__ev_bind *b, const char *tp, sbx_error **err);

/* Whether a call on b now would emit: b has sinks and this thread is not inside another
 * instrumented call. Core skips building event data when it would not. */
int sbx__ev_live(const struct sbx__ev_bind *b);

/* One instrumented call, on the caller's stack. */
struct sbx__ev_call {
    int active; /* 0: nothing to emit (no sinks, or nested in another instrumented call) */
    const char *op;
    char span_id[44];
    char parent_span_id[17];
    char trace_id[33];
    uint64_t t0_ns;
    json_object *start_data;
};

/* Emits the start event. `data` is taken (NULL: {}). Returns 0, or the error of a raising sink
 * (the operation must then not run; sbx__ev_abort() releases the call). */
int sbx__ev_begin(struct sbx__ev_bind *b, struct sbx__ev_call *c, const char *op,
                  json_object *data, sbx_error **err);
void sbx__ev_abort(struct sbx__ev_call *c);

/* Emits the finish event of a call whose operation returned r (with *op_err its error when
 * r < 0). finish_data is taken; NULL: the start data; merge_start: finish data is added to a
 * copy of the start data. Returns r, or a raising sink's code, in which case *op_err is
 * replaced by the sink's error. */
int sbx__ev_end(struct sbx__ev_bind *b, struct sbx__ev_call *c, int r, sbx_error **op_err,
                json_object *finish_data, int merge_start, int ok, const struct sbx__ev_raw *raw);

#endif
