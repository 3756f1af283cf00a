/* sbx/events.h — audit events for session operations: sinks, payload policies, trace context.
 *
 * Every call of an instrumented operation on a session (start, stop, shutdown, exec, read,
 * write, running, persist_workspace, hydrate_workspace; resolve_exposed_port once it exists)
 * emits a "start" event before the operation runs and a "finish" event after it returns. The
 * events of one call share a span id; a per-session `seq` counts every event. Operations run
 * inside another instrumented call on the same thread (the workspace writes of start(), say)
 * emit nothing, and neither do calls a sink makes from inside its handler. The record format
 * is in docs/events.md.
 *
 * Lifecycle of the handles:
 *
 *   sbx_event_sink_jsonl() / _stderr() / _callback() / _chain()   make sinks
 *   sbx_events_new()            the instrumentation: sinks plus payload policies
 *   sbx_events_add_sink()       takes a sink
 *   sbx_session_opts.events     sessions created with it emit to its sinks (each session takes
 *                               a reference: free the sbx_events whenever convenient)
 *   sbx_session_close()/free()  every event of the session is delivered before they return
 *
 * Delivery happens on the thread that runs the operation, in sink order, while the session's
 * event lock is held: a file sink therefore holds the events of one session in seq order, and
 * an event is never lost on a normal close. A crash loses at most the event in flight.
 *
 * Payload policies decide what of an event leaves the process, per operation and per sink:
 * exec output (stripped by default), its length, regular-expression redaction, and a SHA-256
 * digest in place of stripped output.
 */
#ifndef SBX_EVENTS_H
#define SBX_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sbx_session sbx_session;
typedef struct sbx_events sbx_events;
typedef struct sbx_event_sink sbx_event_sink;
typedef struct sbx_event sbx_event;

/* ---- payload policy --------------------------------------------------------------------- */

/* Presence bits: a policy overlays another only in the fields whose bit is set, so a per-op
 * or per-sink policy can change one field and inherit the rest. */
enum sbx_policy_fields {
    SBX_POLICY_EXEC_OUTPUT = 1u << 0, /* include_exec_output */
    SBX_POLICY_MAX_STDOUT = 1u << 1,  /* max_stdout_chars */
    SBX_POLICY_MAX_STDERR = 1u << 2,  /* max_stderr_chars */
    SBX_POLICY_WRITE_LEN = 1u << 3,   /* include_write_len */
    SBX_POLICY_REDACT = 1u << 4,      /* redact (replaces the inherited list as a whole) */
    SBX_POLICY_HASH = 1u << 5,        /* hash_dropped_output */
};

#define SBX_POLICY_DEFAULT_MAX_CHARS 8000

typedef struct sbx_payload_policy {
    unsigned set;              /* enum sbx_policy_fields: which fields below are given */
    int include_exec_output;   /* default 0: exec finish events carry no stdout/stderr */
    size_t max_stdout_chars;   /* default 8000: longer output is cut to this many characters
                                  (code points) and suffixed with "…" */
    size_t max_stderr_chars;   /* default 8000 */
    int include_write_len;     /* default 1: keep data.bytes of write/persist/hydrate events */
    const char *const *redact; /* NULL-terminated POSIX extended regular expressions. Every
                                  match in stdout, stderr, error_message and each string in
                                  data is replaced with "[REDACTED]" before the event is
                                  serialised. Default: none */
    int hash_dropped_output;   /* default 0: when output is stripped, stdout_sha256 and
                                  stderr_sha256 carry the hex SHA-256 of the (redacted) bytes */
} sbx_payload_policy;

/* ---- events ----------------------------------------------------------------------------- */

/* The event as a sink sees it, after that sink's policy. All strings borrowed for the duration
 * of the handler. json: the record as one compact line with sorted keys, no trailing newline. */
SBX_API const char *sbx_event_json(const sbx_event *ev);
SBX_API const char *sbx_event_op(const sbx_event *ev);
SBX_API const char *sbx_event_phase(const sbx_event *ev); /* "start" or "finish" */
SBX_API uint64_t sbx_event_seq(const sbx_event *ev);
SBX_API const char *sbx_event_session_id(const sbx_event *ev);

/* ---- sinks ------------------------------------------------------------------------------ */

/* What a failing sink does to the operation.
 * RAISE: with SBX_SINK_SYNC the operation fails with SBX_EIO "sandbox event sink failed:
 *        <sink> while handling event <event_id>" (on a start event before the operation runs;
 *        on a finish event the error replaces the operation's result). With SBX_SINK_ASYNC the
 *        sink's own error is returned unwrapped.
 * LOG:   the failure goes to the events' log_fn ("Sandbox event sink failed (ignored)").
 * IGNORE: nothing. Failures are counted either way (sbx_events_failures()). */
enum sbx_sink_on_error { SBX_SINK_RAISE = 1, SBX_SINK_LOG = 2, SBX_SINK_IGNORE = 3 };
/* SYNC and ASYNC differ only in how RAISE reports (above). BEST_EFFORT never raises. Every
 * mode delivers before the operation continues, so nothing is pending at close. */
enum sbx_sink_mode { SBX_SINK_SYNC = 1, SBX_SINK_ASYNC = 2, SBX_SINK_BEST_EFFORT = 3 };

typedef struct sbx_sink_opts {
    size_t size;                       /* set by SBX_SINK_OPTS_INIT */
    int mode;                          /* enum sbx_sink_mode; 0 = the sink kind's default */
    int on_error;                      /* enum sbx_sink_on_error; 0 = the sink kind's default */
    const sbx_payload_policy *policy;  /* this sink's overlay; copied. NULL: none */
    const char *name;                  /* for messages; default the sink kind */
} sbx_sink_opts;
#define SBX_SINK_OPTS_INIT {.size = sizeof(sbx_sink_opts)}

/* Called for each event with the session it belongs to. Return 0, or a negative SBX_E* code
 * to report a failure (handled per on_error). The handler may call operations on `s`; they
 * emit no events. When several sessions share the sbx_events, it runs on their threads
 * concurrently. Default mode SYNC, on_error RAISE. */
typedef int (*sbx_event_fn)(const sbx_event *ev, sbx_session *s, void *userdata);
SBX_API int sbx_event_sink_callback(sbx_event_fn fn, void *userdata, const sbx_sink_opts *o,
                                    sbx_event_sink **out, sbx_error **err);

/* Appends one JSON line per event to the host file `path` (created 0600 with its parent
 * directories). Each line goes out in a single write() on an O_APPEND descriptor under an
 * exclusive flock, so any number of sessions and processes can share one file without
 * interleaving; nothing is buffered in the process. Default mode BEST_EFFORT, on_error LOG.
 * Errors: SBX_EIO (cannot open; context path). */
SBX_API int sbx_event_sink_jsonl(const char *path, const sbx_sink_opts *o, sbx_event_sink **out,
                                 sbx_error **err);

/* One human-readable line per event on `fd` (borrowed; 2 for stderr), for the CLI. Finish
 * events show duration, ok and error code. Default mode BEST_EFFORT, on_error IGNORE. */
SBX_API int sbx_event_sink_stderr(int fd, const sbx_sink_opts *o, sbx_event_sink **out,
                                  sbx_error **err);

/* Keeps the session's events in a JSONL file inside its workspace, written through the session
 * itself (as the sandbox user; writes made this way emit no events). `relpath` is a
 * workspace-relative template where "{session_id}" and "{session_id_hex}" are replaced (NULL:
 * "logs/events-{session_id}.jsonl"). Lines are buffered in memory and the file is rewritten
 * (existing content + buffer) every `flush_every` events (0 = 1), at the start of
 * persist_workspace, at both stop events and at the start of shutdown, so a snapshot taken by
 * stop() includes the log; only while the session runs (otherwise the buffer waits). With
 * `ephemeral`, the file is registered as a persistence skip path: readable during the
 * session, never in a snapshot. Lines still buffered when the session is freed are lost.
 * Default mode BEST_EFFORT, on_error LOG. */
SBX_API int sbx_event_sink_workspace(const char *relpath, int ephemeral, unsigned flush_every,
                                     const sbx_sink_opts *o, sbx_event_sink **out,
                                     sbx_error **err);

/* Groups sinks for strict in-order delivery; takes the n sinks (also on failure). Each inner
 * sink applies its own policy, mode and on_error. Mode SYNC, on_error RAISE. */
SBX_API int sbx_event_sink_chain(sbx_event_sink **sinks, size_t n, sbx_event_sink **out,
                                 sbx_error **err);

/* Frees a sink not handed to sbx_events_add_sink()/_chain(). NULL is a no-op. */
SBX_API void sbx_event_sink_free(sbx_event_sink *k);

/* ---- instrumentation -------------------------------------------------------------------- */

typedef void (*sbx_events_log_fn)(const char *message, const char *sink_name, int code,
                                  void *userdata);

typedef struct sbx_events_opts {
    size_t size;                       /* set by SBX_EVENTS_OPTS_INIT */
    const sbx_payload_policy *policy;  /* default policy overlay; NULL: the defaults */
    const char *const *policy_ops;     /* n_policy_ops op names ... */
    const sbx_payload_policy *policy_by_op; /* ... and their overlays (copied) */
    size_t n_policy_ops;
    sbx_events_log_fn log_fn;          /* for on_error LOG; NULL: failures are only counted */
    void *log_userdata;
} sbx_events_opts;
#define SBX_EVENTS_OPTS_INIT {.size = sizeof(sbx_events_opts)}

/* Makes an instrumentation with no sinks. `o` may be NULL; everything in it is copied, and
 * the regular expressions are compiled here (SBX_EINVAL naming a bad one). *out is freed with
 * sbx_events_free(). Thread safety: any thread. */
SBX_API int sbx_events_new(const sbx_events_opts *o, sbx_events **out, sbx_error **err);
/* Appends a sink; takes it (also on failure). Only before the first session uses `ev`:
 * SBX_ESTATE afterwards. Thread safety: owner thread only. */
SBX_API int sbx_events_add_sink(sbx_events *ev, sbx_event_sink *k, sbx_error **err);
/* Sink failures seen so far (all modes). Thread safety: any thread. */
SBX_API uint64_t sbx_events_failures(const sbx_events *ev);
/* Waits for deliveries in flight (none outlive the operation today; kept for sinks that
 * buffer). Thread safety: any thread. */
SBX_API void sbx_events_flush(sbx_events *ev);
/* Drops the caller's reference; sessions using ev keep theirs. NULL is a no-op. */
SBX_API void sbx_events_free(sbx_events *ev);

/* Binds a session made without sbx_session_opts.events (an attached one, say) to `ev`, or
 * unbinds it (NULL). The session takes a reference; seq restarts at 1 and the session's
 * traceparent is cleared (set it again after). Thread safety: owner thread only, no call in
 * flight. */
SBX_API int sbx_session_set_events(sbx_session *s, sbx_events *ev, sbx_error **err);

/* ---- trace context ---------------------------------------------------------------------- */

/* The caller's trace for spans of this thread: a W3C `traceparent` ("00-<32 hex trace id>-
 * <16 hex parent span id>-<2 hex flags>"). Events of operations this thread runs then carry
 * that trace id, the caller's span as parent_span_id, and a fresh 16-hex span id. NULL
 * clears it. It takes precedence over the session's traceparent. Errors: SBX_EINVAL
 * (malformed; the current value is kept). Thread safety: any thread (per-thread value). */
SBX_API int sbx_trace_set_current(const char *traceparent, sbx_error **err);

/* The session's default trace (same format), used by threads with no current trace; also
 * settable at creation with sbx_session_opts.traceparent. NULL clears it. Without any trace,
 * span ids are "sandbox_op_" + 32 hex and trace and parent ids are null. Errors: SBX_EINVAL.
 * Thread safety: concurrent on one session. */
SBX_API int sbx_session_set_traceparent(sbx_session *s, const char *traceparent,
                                        sbx_error **err);

#ifdef __cplusplus
}
#endif
#endif
