/* Sinks: JSONL file lines, chained order, the stderr form, argument checks (spec EVENTS.md
 * §7; TESTS.md M.110, M.123). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events_internal.h"

static char dir[] = "/tmp/sbx-test-sinks-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(instr_sinks, .init = setup, .fini = teardown);

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static const char *jsonl_path;
static size_t lines_when_called[4];
static size_t n_calls;

static int after_file(const sbx_event *ev, sbx_session *s, void *ud)
{
    (void)ev;
    (void)s;
    (void)ud;
    if (n_calls < 4)
        lines_when_called[n_calls++] = count_lines(jsonl_path);
    return 0;
}

static void one_call(struct sbx__ev_bind *b, const char *op)
{
    struct sbx__ev_call c;
    cr_assert_eq(sbx__ev_begin(b, &c, op, NULL, NULL), 0);
    cr_assert_eq(sbx__ev_end(b, &c, 0, NULL, NULL, 0, 1, NULL), 0);
}

Test(instr_sinks, jsonl_then_callback_in_a_chain)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/logs/deep/events.jsonl", dir);
    jsonl_path = path;
    n_calls = 0;
    sbx_event_sink *kids[2];
    cr_assert_eq(sbx_event_sink_jsonl(path, NULL, &kids[0], NULL), 0);
    cr_assert_eq(sbx_event_sink_callback(after_file, NULL, NULL, &kids[1], NULL), 0);
    sbx_event_sink *chain = NULL;
    cr_assert_eq(sbx_event_sink_chain(kids, 2, &chain, NULL), 0);
    sbx_events *ev = NULL;
    cr_assert_eq(sbx_events_new(NULL, &ev, NULL), 0);
    cr_assert_eq(sbx_events_add_sink(ev, chain, NULL), 0);
    struct sbx__ev_bind *b = NULL;
    cr_assert_eq(sbx__ev_bind_new(ev, NULL, "s", NULL, NULL, &b, NULL), 0);
    one_call(b, "write");
    sbx__ev_bind_free(b);
    sbx_events_free(ev);
    /* The callback ran after the file sink had written each event. */
    cr_expect_eq(n_calls, 2);
    cr_expect_eq(lines_when_called[0], 1);
    cr_expect_eq(lines_when_called[1], 2);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f);
    char line[2048];
    const char *phases[] = {"start", "finish"};
    for (int i = 0; i < 2; i++) {
        cr_assert_not_null(fgets(line, sizeof(line), f));
        size_t n = strlen(line);
        cr_expect_eq(line[n - 1], '\n');
        line[n - 1] = '\0';
        json_object *o = json_tokener_parse(line);
        cr_assert_not_null(o, "%s", line);
        json_object *v = NULL;
        json_object_object_get_ex(o, "phase", &v);
        cr_expect_str_eq(json_object_get_string(v), phases[i]);
        json_object_put(o);
    }
    cr_expect_null(fgets(line, sizeof(line), f));
    fclose(f);
}

Test(instr_sinks, stderr_form_one_line_per_event)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_stderr(p[1], NULL, &k, NULL), 0);
    sbx_events *ev = NULL;
    cr_assert_eq(sbx_events_new(NULL, &ev, NULL), 0);
    cr_assert_eq(sbx_events_add_sink(ev, k, NULL), 0);
    struct sbx__ev_bind *b = NULL;
    cr_assert_eq(sbx__ev_bind_new(ev, NULL, "s", NULL, NULL, &b, NULL), 0);
    one_call(b, "stop");
    sbx__ev_bind_free(b);
    sbx_events_free(ev);
    close(p[1]);
    char buf[1024] = "";
    ssize_t n = read(p[0], buf, sizeof(buf) - 1);
    close(p[0]);
    cr_assert_gt(n, 0);
    buf[n] = '\0';
    cr_expect_not_null(strstr(buf, "stop"), "%s", buf);
    cr_expect_not_null(strstr(buf, "start  seq=1\n"), "%s", buf);
    cr_expect_not_null(strstr(buf, "finish seq=2 "), "%s", buf);
    cr_expect_not_null(strstr(buf, "ms ok\n"), "%s", buf);
    cr_expect_null(strchr(buf, '\033'), "no colours on a pipe");
}

Test(instr_sinks, bad_arguments)
{
    sbx_event_sink *k = NULL;
    sbx_error *err = NULL;
    cr_expect_eq(sbx_event_sink_jsonl(dir, NULL, &k, &err), SBX_EIO); /* a directory */
    cr_expect_str_eq(sbx_error_context_get(err, "path"), dir);
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_event_sink_callback(NULL, NULL, NULL, &k, &err), SBX_EINVAL);
    sbx_error_free(err);
    err = NULL;
    sbx_sink_opts so = SBX_SINK_OPTS_INIT;
    so.mode = 9;
    cr_expect_eq(sbx_event_sink_stderr(2, &so, &k, &err), SBX_EINVAL);
    sbx_error_free(err);
    err = NULL;
    sbx_event_sink *kids[1] = {NULL};
    cr_expect_eq(sbx_event_sink_chain(kids, 1, &k, &err), SBX_EINVAL);
    sbx_error_free(err);
    sbx_event_sink_free(NULL);
}
