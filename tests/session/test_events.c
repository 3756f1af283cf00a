/* Audit events against real sessions (spec TESTS.md section M): seq order, start/finish pairs,
 * exec output policy, per-sink truncation and redaction, error events, failing sinks, one
 * JSONL file shared by 8 concurrent sessions, trace ids under a caller's traceparent. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "harness.h"
#include "session_util.h"

TestSuite(session_events, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 120);

/* ---- a collecting callback sink ---- */

struct collect {
    pthread_mutex_t lock;
    char **lines;
    size_t n;
    int fail_op_finish; /* fail the finish event of fail_op */
    const char *fail_op;
    const char *fail_phase;
    sbx_session *session; /* the session the last event came with */
};

static int collect_fn(const sbx_event *ev, sbx_session *s, void *ud)
{
    struct collect *c = ud;
    pthread_mutex_lock(&c->lock);
    c->session = s;
    char **v = realloc(c->lines, (c->n + 1) * sizeof(*v));
    if (v) {
        c->lines = v;
        c->lines[c->n++] = strdup(sbx_event_json(ev));
    }
    pthread_mutex_unlock(&c->lock);
    if (c->fail_op && strcmp(sbx_event_op(ev), c->fail_op) == 0 &&
        strcmp(sbx_event_phase(ev), c->fail_phase) == 0)
        return SBX_EIO;
    return 0;
}

static void collect_free(struct collect *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->lines[i]);
    free(c->lines);
    c->lines = NULL;
    c->n = 0;
}

static json_object *jget(json_object *o, const char *k)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v;
}

static const char *jstr(json_object *o, const char *k)
{
    json_object *v = jget(o, k);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static sbx_events *events_with(sbx_event_sink **sinks, size_t n, const sbx_events_opts *eo)
{
    sbx_events *ev = NULL;
    cr_assert_eq(sbx_events_new(eo, &ev, NULL), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(sbx_events_add_sink(ev, sinks[i], NULL), 0);
    return ev;
}

static sbx_session *start_with(sbx_events *ev, const char *traceparent)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.events = ev;
    o.traceparent = traceparent;
    return sbx_test_start(&o);
}

static char *slurp_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "%s", path);
    size_t n = 0;
    char *s = st_slurp(fd, &n);
    close(fd);
    return s;
}

/* ---- tests ---- */

Test(session_events, every_op_emits_a_start_finish_pair_in_seq_order)
{
    struct collect c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_callback(collect_fn, &c, NULL, &k, NULL), 0);
    sbx_events *ev = events_with(&k, 1, NULL);
    sbx_session *s = start_with(ev, NULL);
    sbx_events_free(ev);
    sbx_error *err = NULL;
    cr_assert(sbx_session_running(s));
    cr_expect_eq(c.session, s, "the callback gets the session");
    cr_assert_eq(st_write_str(s, "a.txt", "hello", &err), 0);
    char *got = st_read_str(s, "a.txt", &err);
    cr_expect_str_eq(got, "hello");
    free(got);
    sbx_exec_result_free(sbx_test_sh(s, "echo hi"));
    int fd = memfd_create("ws", MFD_CLOEXEC);
    cr_assert_eq(sbx_session_persist_workspace(s, fd, &err), 0);
    lseek(fd, 0, SEEK_SET);
    cr_assert_eq(sbx_session_hydrate_workspace(s, fd, &err), 0);
    close(fd);
    /* Not instrumented: ls, mkdir. */
    cr_assert_eq(sbx_session_mkdir(s, "d", 0, NULL, &err), 0);
    cr_assert_eq(sbx_session_close(s, &err), 0, "%s", sbx_error_message(err));
    sbx_session_free(s);

    const char *ops[] = {"start", "running", "write", "read", "exec",
                         "persist_workspace", "hydrate_workspace", "stop", "shutdown"};
    size_t nops = sizeof(ops) / sizeof(ops[0]);
    cr_assert_eq(c.n, 2 * nops);
    for (size_t i = 0; i < c.n; i++) {
        json_object *o = json_tokener_parse(c.lines[i]);
        cr_assert_not_null(o, "%s", c.lines[i]);
        cr_expect_eq(json_object_get_int(jget(o, "seq")), (int)i + 1, "%s", c.lines[i]);
        cr_expect_str_eq(jstr(o, "op"), ops[i / 2]);
        cr_expect_str_eq(jstr(o, "phase"), i % 2 ? "finish" : "start");
        if (i % 2) {
            json_object *prev = json_tokener_parse(c.lines[i - 1]);
            cr_expect_str_eq(jstr(o, "span_id"), jstr(prev, "span_id"));
            json_object_put(prev);
            cr_expect(json_object_get_boolean(jget(o, "ok")), "%s", c.lines[i]);
            cr_expect_geq(json_object_get_double(jget(o, "duration_ms")), 0.0);
        }
        cr_expect_eq(strncmp(jstr(o, "span_id"), "sandbox_op_", 11), 0);
        cr_expect_null(jget(o, "trace_id"));
        cr_expect_eq(json_object_get_int(jget(o, "version")), 1);
        json_object_put(o);
    }
    /* Per-op data (EVENTS.md §3). */
    cr_expect_not_null(strstr(c.lines[3], "\"data\":{\"alive\":true}"), "%s", c.lines[3]);
    cr_expect_not_null(strstr(c.lines[4], "\"data\":{\"bytes\":5,\"path\":\"a.txt\",\"user\":null}"),
                       "%s", c.lines[4]);
    cr_expect_not_null(strstr(c.lines[9], "\"command\":[\"echo hi\"]"), "%s", c.lines[9]);
    cr_expect_not_null(strstr(c.lines[9], "\"exit_code\":0,\"process.exit.code\":0"), "%s",
                       c.lines[9]);
    cr_expect_not_null(strstr(c.lines[9], "\"stdout\":null"), "stripped by default: %s",
                       c.lines[9]);
    cr_expect_not_null(strstr(c.lines[10], "\"workspace_root\":\"/workspace\""), "%s",
                       c.lines[10]);
    cr_expect_not_null(strstr(c.lines[11], "\"bytes\":"), "%s", c.lines[11]);
    cr_expect_not_null(strstr(c.lines[12], "\"untar_dir\":\"/workspace\""), "%s", c.lines[12]);
    collect_free(&c);
}

Test(session_events, exec_output_policy_per_op_and_per_sink)
{
    struct collect plain = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct collect with = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sbx_payload_policy sink_pol = {.set = SBX_POLICY_EXEC_OUTPUT, .include_exec_output = 1};
    sbx_sink_opts so = SBX_SINK_OPTS_INIT;
    so.policy = &sink_pol;
    sbx_event_sink *k[2];
    cr_assert_eq(sbx_event_sink_callback(collect_fn, &plain, NULL, &k[0], NULL), 0);
    cr_assert_eq(sbx_event_sink_callback(collect_fn, &with, &so, &k[1], NULL), 0);
    /* Per-op: write events without `bytes`. */
    const char *op_names[] = {"write"};
    sbx_payload_policy op_pol[] = {{.set = SBX_POLICY_WRITE_LEN, .include_write_len = 0}};
    sbx_events_opts eo = SBX_EVENTS_OPTS_INIT;
    eo.policy_ops = op_names;
    eo.policy_by_op = op_pol;
    eo.n_policy_ops = 1;
    sbx_events *ev = events_with(k, 2, &eo);
    sbx_session *s = start_with(ev, NULL);
    sbx_events_free(ev);
    sbx_exec_result_free(sbx_test_sh(s, "echo hi; echo oops >&2; exit 7"));
    sbx_error *err = NULL;
    cr_assert_eq(st_write_str(s, "f", "12345", &err), 0);
    sbx_session_free(s);
    /* start(2), exec(2), write(2), shutdown(2) */
    cr_assert_eq(plain.n, 8);
    cr_assert_eq(with.n, 8);
    json_object *a = json_tokener_parse(plain.lines[3]);
    json_object *b = json_tokener_parse(with.lines[3]);
    cr_expect_null(jget(a, "stdout"));
    cr_expect_null(jget(a, "stderr"));
    cr_expect_str_eq(jstr(b, "stdout"), "hi\n");
    cr_expect_str_eq(jstr(b, "stderr"), "oops\n");
    /* A non-zero exit is not an error event. */
    cr_expect_not(json_object_get_boolean(jget(b, "ok")));
    cr_expect_null(jget(b, "error_code"));
    cr_expect_eq(json_object_get_int(jget(jget(b, "data"), "exit_code")), 7);
    json_object_put(a);
    json_object_put(b);
    cr_expect_null(strstr(plain.lines[4], "bytes"), "%s", plain.lines[4]);
    cr_expect_null(strstr(with.lines[4], "bytes"), "%s", with.lines[4]);
    collect_free(&plain);
    collect_free(&with);
}

Test(session_events, redaction_and_truncation_per_sink_file)
{
    char dir[] = "/tmp/sbx-test-events-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char red_path[128], raw_path[128];
    snprintf(red_path, sizeof(red_path), "%s/redacted.jsonl", dir);
    snprintf(raw_path, sizeof(raw_path), "%s/raw.jsonl", dir);
    const char *pats[] = {"ghp_[A-Za-z0-9]+", NULL};
    sbx_payload_policy red = {.set = SBX_POLICY_EXEC_OUTPUT | SBX_POLICY_REDACT |
                                     SBX_POLICY_MAX_STDOUT,
                              .include_exec_output = 1, .redact = pats,
                              .max_stdout_chars = 33};
    sbx_payload_policy raw = {.set = SBX_POLICY_EXEC_OUTPUT, .include_exec_output = 1};
    sbx_sink_opts so_red = SBX_SINK_OPTS_INIT, so_raw = SBX_SINK_OPTS_INIT;
    so_red.policy = &red;
    so_raw.policy = &raw;
    sbx_event_sink *k[2];
    cr_assert_eq(sbx_event_sink_jsonl(red_path, &so_red, &k[0], NULL), 0);
    cr_assert_eq(sbx_event_sink_jsonl(raw_path, &so_raw, &k[1], NULL), 0);
    sbx_events *ev = events_with(k, 2, NULL);
    sbx_session *s = start_with(ev, NULL);
    sbx_events_free(ev);
    /* The secret is in the command, in stdout (past a NUL byte) and in stderr. */
    sbx_exec_result_free(sbx_test_sh(
        s, "printf 'key ghp_SeCrEt42 \\000 then ghp_SeCrEt42 and a long tail of text\\n'; "
           "echo ghp_SeCrEt42 >&2"));
    sbx_session_free(s);
    char *r = slurp_path(red_path);
    char *w = slurp_path(raw_path);
    cr_expect_null(strstr(r, "SeCrEt42"), "%s", r);
    cr_expect_not_null(strstr(r, "\"stdout\":\"key [REDACTED] \\u0000 then [REDACTED] \xe2\x80\xa6\""),
                       "%s", r);
    cr_expect_not_null(strstr(r, "\"stderr\":\"[REDACTED]\\n\""), "%s", r);
    cr_expect_not_null(strstr(w, "ghp_SeCrEt42 and a long tail of text\\n"), "%s", w);
    free(r);
    free(w);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(session_events, error_events_carry_the_code)
{
    struct collect c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_callback(collect_fn, &c, NULL, &k, NULL), 0);
    sbx_events *ev = events_with(&k, 1, NULL);
    sbx_session *s = start_with(ev, NULL);
    sbx_events_free(ev);
    sbx_error *err = NULL;
    cr_expect_null(st_read_str(s, "missing.txt", &err));
    /* The caller still gets the operation's own error. */
    cr_expect_eq(sbx_error_code(err), SBX_EWORKSPACE_READ_NOT_FOUND);
    sbx_error_free(err);
    sbx_session_free(s);
    cr_assert_eq(c.n, 6);
    json_object *f = json_tokener_parse(c.lines[3]);
    cr_expect_str_eq(jstr(f, "op"), "read");
    cr_expect_not(json_object_get_boolean(jget(f, "ok")));
    cr_expect_str_eq(jstr(f, "error_code"), "workspace_read_not_found");
    cr_expect_str_eq(jstr(f, "error_type"), "WorkspaceReadNotFoundError");
    cr_expect_not_null(jstr(f, "error_message"));
    cr_expect(json_object_is_type(jget(f, "error_retryable"), json_type_boolean));
    cr_expect_not(json_object_get_boolean(jget(f, "error_retryable")));
    cr_expect_str_eq(jstr(jget(f, "data"), "path"), "missing.txt");
    json_object_put(f);
    collect_free(&c);
}

Test(session_events, failing_sinks_never_corrupt_the_session)
{
    struct collect c = {.lock = PTHREAD_MUTEX_INITIALIZER, .fail_op = "read",
                        .fail_phase = "finish"};
    sbx_event_sink *k[2];
    cr_assert_eq(sbx_event_sink_callback(collect_fn, &c, NULL, &k[0], NULL), 0);
    /* A best-effort file sink that cannot write: counted, never raised. */
    cr_assert_eq(sbx_event_sink_jsonl("/dev/full", NULL, &k[1], NULL), 0);
    sbx_events *ev = events_with(k, 2, NULL);
    sbx_session *s = start_with(ev, NULL);
    sbx_error *err = NULL;
    cr_assert_eq(st_write_str(s, "a", "x", &err), 0);
    char *got = st_read_str(s, "a", &err);
    cr_expect_null(got);
    cr_expect_eq(sbx_error_code(err), SBX_EIO);
    cr_expect_eq(strncmp(sbx_error_message(err), "sandbox event sink failed: CallbackSink", 39), 0,
                 "%s", sbx_error_message(err));
    sbx_error_free(err);
    err = NULL;
    /* A raising sink on a start event stops the operation before it runs. */
    c.fail_op = "write";
    c.fail_phase = "start";
    cr_expect_eq(st_write_str(s, "b", "y", &err), SBX_EIO);
    sbx_error_free(err);
    err = NULL;
    c.fail_op = NULL;
    sbx_exec_result *r = sbx_test_sh(s, "test -e b && echo yes || echo no; cat a");
    cr_expect_str_eq((const char *)r->out, "no\nx");
    sbx_exec_result_free(r);
    cr_expect(sbx_session_running(s));
    cr_expect_gt(sbx_events_failures(ev), 0);
    sbx_events_free(ev);
    sbx_session_free(s);
    collect_free(&c);
}

/* ---- 8 sessions, one file ---- */

#define N_SESSIONS 8
#define N_EXECS    6

struct worker {
    sbx_events *ev;
    char id[37];
    int ok;
};

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.events = w->ev;
    sbx_session *s = NULL;
    if (sbx_session_new(&o, &s, NULL) < 0 || sbx_session_start(s, NULL) < 0) {
        sbx_session_free(s);
        return NULL;
    }
    snprintf(w->id, sizeof(w->id), "%s", sbx_session_id(s));
    w->ok = 1;
    for (int i = 0; i < N_EXECS; i++) {
        /* 20 KiB of output per event: far above PIPE_BUF, so a torn write would show. */
        const char *argv[] = {"head -c 20000 /dev/zero | tr '\\0' x", NULL};
        sbx_exec_opts xo = SBX_EXEC_OPTS_INIT;
        xo.argv = argv;
        sbx_exec_result *r = NULL;
        if (sbx_session_exec(s, &xo, &r, NULL) < 0 || r->out_len != 20000)
            w->ok = 0;
        sbx_exec_result_free(r);
    }
    if (sbx_session_close(s, NULL) < 0)
        w->ok = 0;
    sbx_session_free(s);
    return NULL;
}

Test(session_events, eight_sessions_share_one_jsonl_file)
{
    char dir[] = "/tmp/sbx-test-events-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/all.jsonl", dir);
    sbx_payload_policy pol = {.set = SBX_POLICY_EXEC_OUTPUT | SBX_POLICY_MAX_STDOUT,
                              .include_exec_output = 1, .max_stdout_chars = 100000};
    sbx_sink_opts so = SBX_SINK_OPTS_INIT;
    so.policy = &pol;
    struct worker w[N_SESSIONS] = {{0}};
    pthread_t t[N_SESSIONS];
    for (int i = 0; i < N_SESSIONS; i++) {
        /* Half share one sbx_events (and its fd), half have their own sink on the file. */
        sbx_event_sink *k = NULL;
        if (i < N_SESSIONS / 2 || i == N_SESSIONS / 2) {
            if (i == 0 || i == N_SESSIONS / 2) {
                cr_assert_eq(sbx_event_sink_jsonl(path, &so, &k, NULL), 0);
                w[i].ev = events_with(&k, 1, NULL);
            } else {
                w[i].ev = w[0].ev;
            }
        } else {
            cr_assert_eq(sbx_event_sink_jsonl(path, &so, &k, NULL), 0);
            w[i].ev = events_with(&k, 1, NULL);
        }
    }
    for (int i = 0; i < N_SESSIONS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, run_worker, &w[i]), 0);
    for (int i = 0; i < N_SESSIONS; i++)
        pthread_join(t[i], NULL);
    sbx_events_free(w[0].ev);
    for (int i = N_SESSIONS / 2; i < N_SESSIONS; i++)
        sbx_events_free(w[i].ev);
    for (int i = 0; i < N_SESSIONS; i++)
        cr_assert(w[i].ok, "session %d failed", i);

    FILE *f = fopen(path, "re");
    cr_assert_not_null(f);
    char *line = NULL;
    size_t cap = 0, lines = 0;
    ssize_t len;
    int last_seq[N_SESSIONS] = {0};
    while ((len = getline(&line, &cap, f)) > 0) {
        lines++;
        cr_assert_eq(line[len - 1], '\n');
        json_object *o = json_tokener_parse(line);
        cr_assert_not_null(o, "line %zu does not parse (%zd bytes)", lines, len);
        int idx = -1;
        for (int i = 0; i < N_SESSIONS; i++)
            if (strcmp(jstr(o, "session_id"), w[i].id) == 0)
                idx = i;
        cr_assert_geq(idx, 0);
        int seq = json_object_get_int(jget(o, "seq"));
        cr_expect_eq(seq, last_seq[idx] + 1, "session %d: seq %d after %d", idx, seq,
                     last_seq[idx]);
        last_seq[idx] = seq;
        json_object_put(o);
    }
    free(line);
    fclose(f);
    /* start, N execs, stop, shutdown: 2 events each. */
    cr_expect_eq(lines, (size_t)N_SESSIONS * 2 * (N_EXECS + 3));
    for (int i = 0; i < N_SESSIONS; i++)
        cr_expect_eq(last_seq[i], 2 * (N_EXECS + 3));
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

Test(session_events, spans_nest_under_the_callers_traceparent)
{
    struct collect c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_callback(collect_fn, &c, NULL, &k, NULL), 0);
    sbx_events *ev = events_with(&k, 1, NULL);
    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    sbx_session *s = start_with(ev, tp);
    sbx_events_free(ev);
    sbx_exec_result_free(sbx_test_sh(s, "true"));
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_set_traceparent(s, "not-a-traceparent", &err), SBX_EINVAL);
    sbx_error_free(err);
    sbx_session_free(s);
    cr_assert_eq(c.n, 6);
    for (size_t i = 0; i < c.n; i++) {
        json_object *o = json_tokener_parse(c.lines[i]);
        cr_expect_str_eq(jstr(o, "trace_id"), "0af7651916cd43dd8448eb211c80319c");
        cr_expect_str_eq(jstr(o, "parent_span_id"), "b7ad6b7169203331");
        const char *span = jstr(o, "span_id");
        cr_expect_eq(strlen(span), 16);
        cr_expect_eq(strspn(span, "0123456789abcdef"), 16);
        json_object_put(o);
    }
    json_object *a = json_tokener_parse(c.lines[0]), *b = json_tokener_parse(c.lines[2]);
    cr_expect_str_neq(jstr(a, "span_id"), jstr(b, "span_id"), "each call has its own span");
    json_object_put(a);
    json_object_put(b);
    collect_free(&c);
}

Test(session_events, cli_run_events_file_and_tail)
{
    char dir[] = "/tmp/sbx-test-events-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/run.jsonl", dir);
    char sbx[512];
    snprintf(sbx, sizeof(sbx), "%s", sbx_test_bin("sbx"));
    char out[8192];
    char *run[] = {sbx, "run", "--events", path, "--traceparent",
                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "--", "sh", "-c",
                   "echo hi; exit 3", NULL};
    cr_expect_eq(sbx_test_run_host(run, out, sizeof(out)), 3, "%s", out);
    char *log = slurp_path(path);
    size_t lines = 0;
    for (char *p = log; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, 6, "%s", log); /* start, exec, shutdown */
    cr_expect_not_null(strstr(log, "\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\""));
    cr_expect_null(strstr(log, "hi\\n"), "exec output is stripped by default: %s", log);
    free(log);
    char *tail[] = {sbx, "events", "tail", path, NULL};
    cr_expect_eq(sbx_test_run_host(tail, out, sizeof(out)), 0, "%s", out);
    cr_expect_not_null(strstr(out, "exec"), "%s", out);
    cr_expect_not_null(strstr(out, "FAILED exit=3"), "%s", out);
    cr_expect_null(strchr(out, '\033'), "no colours off a terminal: %s", out);
    char *bad[] = {sbx, "run", "--traceparent", "00-zz", "--", "true", NULL};
    cr_expect_eq(sbx_test_run_host(bad, out, sizeof(out)), 125, "%s", out);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* ---- the workspace sink ---- */

static int tar_has(const char *tar, const char *member)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "tar -tf '%s' | grep -qx './%s'", tar, member);
    return system(cmd) == 0;
}

Test(session_events, workspace_sink_log_is_in_the_snapshot)
{
    char snaps[] = "/tmp/sbx-test-events-XXXXXX";
    cr_assert_not_null(mkdtemp(snaps));
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_workspace(NULL, 0, 0, NULL, &k, NULL), 0);
    sbx_events *ev = events_with(&k, 1, NULL);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.events = ev;
    o.snapshot_dir = snaps;
    sbx_session *s = sbx_test_start(&o);
    sbx_events_free(ev);
    char rel[128], tar[256];
    snprintf(rel, sizeof(rel), "logs/events-%s.jsonl", sbx_session_id(s));
    snprintf(tar, sizeof(tar), "%s/%s.tar", snaps, sbx_session_id(s));
    sbx_exec_result_free(sbx_test_sh(s, "echo hi"));
    sbx_error *err = NULL;
    char *log = st_read_str(s, rel, &err);
    cr_assert_not_null(log, "%s", sbx_error_message(err));
    cr_expect_not_null(strstr(log, "\"op\":\"exec\""), "%s", log);
    free(log);
    cr_assert_eq(sbx_session_close(s, &err), 0, "%s", sbx_error_message(err));
    cr_expect(tar_has(tar, rel), "%s not in %s", rel, tar);
    /* The file on the host workspace: each seq once, in order, up to the stop events. */
    char host[512];
    snprintf(host, sizeof(host), "%s/%s", sbx_session_workspace(s), rel);
    log = slurp_path(host);
    int seq = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        json_object *j = json_tokener_parse(line);
        cr_assert_not_null(j, "%s", line);
        cr_expect_eq(json_object_get_int(jget(j, "seq")), ++seq);
        json_object_put(j);
    }
    /* start, exec, read, stop and shutdown's start: the last flush. */
    cr_expect_eq(seq, 9);
    free(log);
    sbx_session_free(s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snaps);
    cr_expect_eq(system(cmd), 0);
}

Test(session_events, workspace_sink_keeps_content_and_never_duplicates)
{
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_workspace("ev-{session_id_hex}.jsonl", 0, 1, NULL, &k, NULL), 0);
    sbx_events *ev = events_with(&k, 1, NULL);
    sbx_session *s = start_with(ev, NULL);
    sbx_events_free(ev);
    char hex[33] = "", rel[64];
    size_t h = 0;
    for (const char *p = sbx_session_id(s); *p; p++)
        if (*p != '-')
            hex[h++] = *p;
    hex[h] = '\0';
    snprintf(rel, sizeof(rel), "ev-%s.jsonl", hex);
    /* The exec's start is flushed first, then the command replaces the file with "old"; the
     * log goes on from there without repeating a line. */
    char script[128];
    snprintf(script, sizeof(script), "echo old > %s", rel);
    sbx_exec_result_free(sbx_test_sh(s, script));
    cr_expect(sbx_session_running(s));
    sbx_error *err = NULL;
    char *log = st_read_str(s, rel, &err);
    cr_assert_not_null(log, "%s", sbx_error_message(err));
    cr_expect_eq(strncmp(log, "old\n", 4), 0, "%s", log);
    int seq = 4; /* start(1,2), exec start(3) was overwritten */
    for (char *line = strtok(log + 4, "\n"); line; line = strtok(NULL, "\n")) {
        json_object *j = json_tokener_parse(line);
        cr_assert_not_null(j, "%s", line);
        cr_expect_eq(json_object_get_int(jget(j, "seq")), seq++, "%s", line);
        json_object_put(j);
    }
    /* exec finish, running start and finish, and the start of the read that fetched it. */
    cr_expect_eq(seq, 8);
    free(log);
    sbx_session_free(s);
}

Test(session_events, ephemeral_workspace_sink_stays_out_of_snapshots)
{
    char snaps[] = "/tmp/sbx-test-events-XXXXXX";
    cr_assert_not_null(mkdtemp(snaps));
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_workspace("logs/ev.jsonl", 1, 10, NULL, &k, NULL), 0);
    sbx_events *ev = events_with(&k, 1, NULL);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.events = ev;
    o.snapshot_dir = snaps;
    sbx_session *s = sbx_test_start(&o);
    sbx_events_free(ev);
    sbx_error *err = NULL;
    cr_assert_eq(st_write_str(s, "logs/keep.txt", "k", &err), 0);
    cr_assert_eq(sbx_session_close(s, &err), 0, "%s", sbx_error_message(err));
    char tar[256], host[512];
    snprintf(tar, sizeof(tar), "%s/%s.tar", snaps, sbx_session_id(s));
    cr_expect(tar_has(tar, "logs/keep.txt"));
    cr_expect_not(tar_has(tar, "logs/ev.jsonl"));
    /* flush_every=10 still flushed at stop. */
    snprintf(host, sizeof(host), "%s/logs/ev.jsonl", sbx_session_workspace(s));
    char *log = slurp_path(host);
    cr_expect_not_null(strstr(log, "\"op\":\"stop\""), "%s", log);
    free(log);
    sbx_session_free(s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snaps);
    cr_expect_eq(system(cmd), 0);
}
