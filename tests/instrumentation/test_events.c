/* The event hooks without a sandbox: records, seq, span ids, trace context, nesting, sink
 * failure handling (spec EVENTS.md §2, §4, §6; TESTS.md M.119, M.121-123). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_internal.h"
#include "events_internal.h"

#define MAXEV 16
static char *seen[MAXEV];
static size_t n_seen;
static int fail_phase_finish;

static int record(const sbx_event *ev, sbx_session *s, void *ud)
{
    (void)s;
    (void)ud;
    if (n_seen < MAXEV)
        seen[n_seen++] = strdup(sbx_event_json(ev));
    if (fail_phase_finish && strcmp(sbx_event_phase(ev), "finish") == 0)
        return SBX_EIO;
    return 0;
}

static void reset(void)
{
    for (size_t i = 0; i < n_seen; i++)
        free(seen[i]);
    n_seen = 0;
    fail_phase_finish = 0;
}

TestSuite(instr_events, .fini = reset);

static struct sbx__ev_bind *bind_with(sbx_sink_opts *so, const char *tp)
{
    sbx_events *ev = NULL;
    cr_assert_eq(sbx_events_new(NULL, &ev, NULL), 0);
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_callback(record, NULL, so, &k, NULL), 0);
    cr_assert_eq(sbx_events_add_sink(ev, k, NULL), 0);
    struct sbx__ev_bind *b = NULL;
    cr_assert_eq(sbx__ev_bind_new(ev, NULL, "00000000-0000-4000-8000-000000000001", tp, NULL,
                                  &b, NULL),
                 0);
    sbx_events_free(ev); /* the binding keeps its reference */
    return b;
}

static json_object *parsed(size_t i)
{
    cr_assert_lt(i, n_seen);
    json_object *o = json_tokener_parse(seen[i]);
    cr_assert_not_null(o, "%s", seen[i]);
    return o;
}

static const char *get_s(json_object *o, const char *k)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v ? json_object_get_string(v) : NULL;
}

Test(instr_events, start_and_finish_share_span_and_count_seq)
{
    struct sbx__ev_bind *b = bind_with(NULL, NULL);
    for (int i = 0; i < 2; i++) {
        struct sbx__ev_call c;
        cr_assert_eq(sbx__ev_begin(b, &c, "read", NULL, NULL), 0);
        cr_expect_eq(sbx__ev_end(b, &c, 0, NULL, NULL, 0, 1, NULL), 0);
    }
    cr_assert_eq(n_seen, 4);
    for (size_t i = 0; i < 4; i++) {
        json_object *o = parsed(i);
        json_object *v = NULL;
        json_object_object_get_ex(o, "seq", &v);
        cr_expect_eq(json_object_get_int(v), (int)i + 1);
        cr_expect_str_eq(get_s(o, "phase"), i % 2 ? "finish" : "start");
        cr_expect_eq(strncmp(get_s(o, "span_id"), "sandbox_op_", 11), 0);
        cr_expect_eq(strlen(get_s(o, "span_id")), 11 + 32);
        cr_expect_null(get_s(o, "trace_id"));
        cr_expect_null(get_s(o, "parent_span_id"));
        cr_expect_str_eq(get_s(o, "session_id"), "00000000-0000-4000-8000-000000000001");
        json_object_put(o);
    }
    json_object *a = parsed(0), *f = parsed(1), *a2 = parsed(2);
    cr_expect_str_eq(get_s(a, "span_id"), get_s(f, "span_id"));
    cr_expect_str_neq(get_s(a, "span_id"), get_s(a2, "span_id"));
    /* One line, keys sorted, no raw byte fields; the finish has the finish-only fields. */
    cr_expect_null(strchr(seen[1], '\n'));
    cr_expect_eq(strncmp(seen[1], "{\"data\":{},\"duration_ms\":", 25), 0, "%s", seen[1]);
    cr_expect_null(strstr(seen[1], "stdout_bytes"));
    cr_expect_not_null(strstr(seen[1], "\"ok\":true"));
    cr_expect_not_null(strstr(seen[1], "\"error_code\":null"));
    json_object_put(a);
    json_object_put(f);
    json_object_put(a2);
    sbx__ev_bind_free(b);
}

Test(instr_events, nested_calls_emit_nothing)
{
    struct sbx__ev_bind *b = bind_with(NULL, NULL);
    struct sbx__ev_call outer, inner;
    cr_assert_eq(sbx__ev_begin(b, &outer, "start", NULL, NULL), 0);
    cr_assert_eq(sbx__ev_begin(b, &inner, "write", NULL, NULL), 0);
    cr_expect_eq(inner.active, 0);
    sbx__ev_end(b, &inner, 0, NULL, NULL, 0, 1, NULL);
    sbx__ev_end(b, &outer, 0, NULL, NULL, 0, 1, NULL);
    cr_expect_eq(n_seen, 2);
    sbx__ev_bind_free(b);
}

Test(instr_events, trace_ids_nest_under_the_caller)
{
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    struct sbx__ev_bind *b = bind_with(NULL, tp);
    struct sbx__ev_call c;
    cr_assert_eq(sbx__ev_begin(b, &c, "running", NULL, NULL), 0);
    sbx__ev_end(b, &c, 0, NULL, NULL, 0, 1, NULL);
    /* The thread's context wins over the session's. */
    cr_assert_eq(sbx_trace_set_current("00-11111111111111111111111111111111-2222222222222222-01",
                                       NULL),
                 0);
    cr_assert_eq(sbx__ev_begin(b, &c, "running", NULL, NULL), 0);
    sbx__ev_end(b, &c, 0, NULL, NULL, 0, 1, NULL);
    sbx_trace_set_current(NULL, NULL);
    json_object *s = parsed(0), *f = parsed(1), *t = parsed(2);
    cr_expect_str_eq(get_s(s, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    cr_expect_str_eq(get_s(s, "parent_span_id"), "00f067aa0ba902b7");
    cr_expect_eq(strlen(get_s(s, "span_id")), 16);
    cr_expect_str_eq(get_s(s, "span_id"), get_s(f, "span_id"));
    cr_expect_str_eq(get_s(t, "trace_id"), "11111111111111111111111111111111");
    cr_expect_str_eq(get_s(t, "parent_span_id"), "2222222222222222");
    json_object_put(s);
    json_object_put(f);
    json_object_put(t);
    sbx_error *err = NULL;
    cr_expect_eq(sbx_trace_set_current("00-xyz", &err), SBX_EINVAL);
    sbx_error_free(err);
    sbx__ev_bind_free(b);
}

Test(instr_events, error_fields_and_finish_data_on_failure)
{
    struct sbx__ev_bind *b = bind_with(NULL, NULL);
    struct sbx__ev_call c;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "path", json_object_new_string("missing.txt"));
    cr_assert_eq(sbx__ev_begin(b, &c, "read", d, NULL), 0);
    sbx_error *e = NULL;
    sbx_err(&e, SBX_EWORKSPACE_READ_NOT_FOUND, 0, "read", "file not found: missing.txt");
    cr_expect_eq(sbx__ev_end(b, &c, SBX_EWORKSPACE_READ_NOT_FOUND, &e, NULL, 0, 1, NULL),
                 SBX_EWORKSPACE_READ_NOT_FOUND);
    cr_expect_eq(sbx_error_code(e), SBX_EWORKSPACE_READ_NOT_FOUND);
    sbx_error_free(e);
    cr_assert_eq(n_seen, 2);
    json_object *f = parsed(1);
    cr_expect_str_eq(get_s(f, "error_code"), "workspace_read_not_found");
    cr_expect_str_eq(get_s(f, "error_type"), "WorkspaceReadNotFoundError");
    cr_expect_str_eq(get_s(f, "error_message"), "file not found: missing.txt");
    cr_expect_not_null(strstr(seen[1], "\"error_retryable\":false"));
    cr_expect_not_null(strstr(seen[1], "\"ok\":false"));
    cr_expect_not_null(strstr(seen[1], "\"data\":{\"path\":\"missing.txt\"}"));
    json_object_put(f);
    sbx__ev_bind_free(b);
}

Test(instr_events, sync_raise_wraps_and_replaces_the_result)
{
    struct sbx__ev_bind *b = bind_with(NULL, NULL);
    fail_phase_finish = 1;
    struct sbx__ev_call c;
    cr_assert_eq(sbx__ev_begin(b, &c, "read", NULL, NULL), 0);
    sbx_error *e = NULL;
    cr_expect_eq(sbx__ev_end(b, &c, 0, &e, NULL, 0, 1, NULL), SBX_EIO);
    cr_assert_not_null(e);
    cr_expect_eq(strncmp(sbx_error_message(e),
                         "sandbox event sink failed: CallbackSink while handling event ", 61),
                 0, "%s", sbx_error_message(e));
    sbx_error_free(e);
    sbx__ev_bind_free(b);
}

Test(instr_events, async_raise_propagates_the_sinks_own_error)
{
    sbx_sink_opts so = SBX_SINK_OPTS_INIT;
    so.mode = SBX_SINK_ASYNC;
    so.name = "audit";
    struct sbx__ev_bind *b = bind_with(&so, NULL);
    fail_phase_finish = 1;
    struct sbx__ev_call c;
    cr_assert_eq(sbx__ev_begin(b, &c, "read", NULL, NULL), 0);
    sbx_error *e = NULL;
    cr_expect_eq(sbx__ev_end(b, &c, 0, &e, NULL, 0, 1, NULL), SBX_EIO);
    cr_expect_str_eq(sbx_error_message(e), "audit failed: input/output error");
    sbx_error_free(e);
    sbx__ev_bind_free(b);
}

static char logged[128];
static void log_fn(const char *msg, const char *sink, int code, void *ud)
{
    (void)code;
    (void)ud;
    snprintf(logged, sizeof(logged), "%s [%s]", msg, sink);
}

Test(instr_events, log_and_ignore_never_raise)
{
    sbx_events_opts eo = SBX_EVENTS_OPTS_INIT;
    eo.log_fn = log_fn;
    sbx_events *ev = NULL;
    cr_assert_eq(sbx_events_new(&eo, &ev, NULL), 0);
    sbx_sink_opts so = SBX_SINK_OPTS_INIT;
    so.on_error = SBX_SINK_LOG;
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_callback(record, NULL, &so, &k, NULL), 0);
    cr_assert_eq(sbx_events_add_sink(ev, k, NULL), 0);
    so.on_error = SBX_SINK_IGNORE;
    cr_assert_eq(sbx_event_sink_callback(record, NULL, &so, &k, NULL), 0);
    cr_assert_eq(sbx_events_add_sink(ev, k, NULL), 0);
    struct sbx__ev_bind *b = NULL;
    cr_assert_eq(sbx__ev_bind_new(ev, NULL, "x", NULL, NULL, &b, NULL), 0);
    /* Bound: the sink list is frozen. */
    cr_assert_eq(sbx_event_sink_callback(record, NULL, NULL, &k, NULL), 0);
    sbx_error *err = NULL;
    cr_expect_eq(sbx_events_add_sink(ev, k, &err), SBX_ESTATE);
    sbx_error_free(err);
    fail_phase_finish = 1;
    struct sbx__ev_call c;
    cr_assert_eq(sbx__ev_begin(b, &c, "stop", NULL, NULL), 0);
    cr_expect_eq(sbx__ev_end(b, &c, 0, NULL, NULL, 0, 1, NULL), 0);
    cr_expect_str_eq(logged, "Sandbox event sink failed (ignored) [CallbackSink]");
    cr_expect_eq(sbx_events_failures(ev), 2);
    cr_expect_eq(n_seen, 4);
    sbx_events_free(ev);
    sbx__ev_bind_free(b);
}

/* The line is written field by field (events.c), not through a record tree: it must be the
 * very bytes json-c gives for the parsed record with its keys sorted, for every policy shape
 * (data copied or shared, streams included, hashed or redacted, error strings to escape). */
static void expect_canonical(const char *line)
{
    json_object *o = json_tokener_parse(line);
    cr_assert_not_null(o, "%s", line);
    json_object *s = sbx__json_sorted(o);
    cr_expect_str_eq(json_object_to_json_string_ext(
                         s, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                     line);
    json_object_put(s);
    json_object_put(o);
}

Test(instr_events, lines_are_json_c_canonical_for_every_policy)
{
    sbx_events *ev = NULL;
    cr_assert_eq(sbx_events_new(NULL, &ev, NULL), 0);
    const char *pats[] = {"ghp_[A-Za-z0-9]+", NULL};
    sbx_payload_policy pols[] = {
        {.set = 0},
        {.set = SBX_POLICY_EXEC_OUTPUT | SBX_POLICY_REDACT | SBX_POLICY_MAX_STDOUT,
         .include_exec_output = 1, .redact = pats, .max_stdout_chars = 9},
        {.set = SBX_POLICY_HASH | SBX_POLICY_WRITE_LEN, .hash_dropped_output = 1,
         .include_write_len = 0},
        {.set = SBX_POLICY_EXEC_OUTPUT, .include_exec_output = 1},
    };
    for (size_t i = 0; i < 4; i++) {
        sbx_sink_opts so = SBX_SINK_OPTS_INIT;
        so.policy = &pols[i];
        sbx_event_sink *k = NULL;
        cr_assert_eq(sbx_event_sink_callback(record, NULL, &so, &k, NULL), 0);
        cr_assert_eq(sbx_events_add_sink(ev, k, NULL), 0);
    }
    struct sbx__ev_bind *b = NULL;
    cr_assert_eq(sbx__ev_bind_new(ev, NULL, "id \"with\" quotes/\\", NULL, NULL, &b, NULL), 0);
    sbx_events_free(ev);
    cr_assert_eq(sbx_trace_set_current("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                       NULL),
                 0);
    /* Unsorted data with nested values, merged with finish data. */
    json_object *d = json_object_new_object();
    json_object_object_add(d, "user", NULL);
    json_object_object_add(d, "command", json_object_new_array());
    json_object_array_add(json_object_object_get(d, "command"),
                          json_object_new_string("echo ghp_x1 \"\xc3\xa9\" \t/"));
    json_object *nested = json_object_new_object();
    json_object_object_add(nested, "z", json_object_new_double(0.5));
    json_object_object_add(nested, "a", json_object_new_int64(-3));
    json_object_object_add(d, "nested", nested);
    json_object_object_add(d, "bytes", json_object_new_int(12));
    struct sbx__ev_call c;
    cr_assert_eq(sbx__ev_begin(b, &c, "exec", d, NULL), 0);
    json_object *fin = json_object_new_object();
    json_object_object_add(fin, "process.exit.code", json_object_new_int(1));
    json_object_object_add(fin, "exit_code", json_object_new_int(1));
    const char out[] = "out ghp_secret\0\x01\xff\"\\ tail";
    struct sbx__ev_raw raw = {.out = (const unsigned char *)out, .out_len = sizeof(out) - 1,
                              .err = (const unsigned char *)"e\n", .err_len = 2,
                              .has_output = 1};
    cr_expect_eq(sbx__ev_end(b, &c, 0, NULL, fin, 1, 0, &raw), 0);
    sbx_trace_set_current(NULL, NULL);
    /* A failure with a message that needs escaping. */
    cr_assert_eq(sbx__ev_begin(b, &c, "write", NULL, NULL), 0);
    sbx_error *e = NULL;
    sbx_err(&e, SBX_EWORKSPACE_WRITE_TYPE, 0, "write", "bad \"type\" ghp_zz\n\x01");
    cr_expect_eq(sbx__ev_end(b, &c, SBX_EWORKSPACE_WRITE_TYPE, &e, NULL, 0, 1, NULL),
                 SBX_EWORKSPACE_WRITE_TYPE);
    sbx_error_free(e);
    sbx__ev_bind_free(b);
    cr_assert_eq(n_seen, 16);
    for (size_t i = 0; i < n_seen; i++)
        expect_canonical(seen[i]);
    /* Per sink: sink 1 redacts and truncates, sink 2 hashes and drops bytes. */
    cr_expect_not_null(strstr(seen[5], "\"stdout\":\"out [REDA\xe2\x80\xa6\""), "%s", seen[5]);
    cr_expect_null(strstr(seen[5], "ghp_"), "%s", seen[5]);
    cr_expect_not_null(strstr(seen[6], "\"stdout\":null,\"stdout_sha256\":\""), "%s", seen[6]);
    cr_expect_null(strstr(seen[6], "\"bytes\""), "%s", seen[6]);
    cr_expect_not_null(strstr(seen[7], "\"stdout\":\"out ghp_secret\\u0000"), "%s", seen[7]);
    cr_expect_not_null(strstr(seen[4], "\"session_id\":\"id \\\"with\\\" quotes/\\\\\""), "%s",
                       seen[4]);
    cr_expect_not_null(strstr(seen[13], "\"error_message\":\"bad \\\"type\\\" [REDACTED]\\n"),
                       "%s", seen[13]);
    /* Policies that differ only in what a write event does not have give the same bytes. */
    cr_expect_str_eq(seen[8], seen[11]);
}
