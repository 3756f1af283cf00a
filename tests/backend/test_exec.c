/* exec: results, streams, limits, timeouts, spawn errors, fds, concurrency. */
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(backend_exec, .timeout = 120);

#define S     sbx_test_S
#define start sbx_test_setup
#define stop  sbx_test_teardown

#define OUT(r) ((const char *)(r)->out)
#define ERR(r) ((const char *)(r)->err)

static int run(const char *const *argv, int shell, double timeout, sbx_exec_result **r,
               sbx_error **err)
{
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.shell = shell;
    o.timeout_s = timeout;
    return sbx_session_exec(S, &o, r, err);
}

Test(backend_exec, nonzero_exit_is_a_result_not_an_error, .init = start, .fini = stop)
{
    sbx_exec_result *r = sbx_test_sh(S, "echo failing >&2; exit 7");
    cr_expect_eq(r->exit_code, 7);
    cr_expect_eq(r->out_len, 0);
    cr_expect_str_eq(ERR(r), "failing\n");
    cr_expect_gt(r->duration_ms, 0.0);
    sbx_exec_result_free(r);
}

Test(backend_exec, signal_death_reports_minus_signum, .init = start, .fini = stop)
{
    sbx_exec_result *r = sbx_test_sh(S, "kill -9 $$");
    cr_expect_eq(r->exit_code, -SIGKILL);
    cr_expect_eq(r->term_signal, SIGKILL);
    sbx_exec_result_free(r);
    r = sbx_test_sh(S, "kill -INT $$");
    cr_expect_eq(r->exit_code, -SIGINT);
    sbx_exec_result_free(r);
}

Test(backend_exec, stdout_and_stderr_are_separate_and_binary_safe, .init = start, .fini = stop)
{
    sbx_exec_result *r = sbx_test_sh(S, "printf 'a\\000b'; printf 'E\\377' >&2; printf 'c'");
    cr_assert_eq(r->out_len, 4);
    cr_expect_eq(memcmp(r->out, "a\0bc", 4), 0);
    cr_assert_eq(r->err_len, 2);
    cr_expect_eq(memcmp(r->err, "E\377", 2), 0);
    sbx_exec_result_free(r);
}

Test(backend_exec, hundred_mib_on_both_streams_is_captured_whole, .init = start, .fini = stop)
{
    const char *argv[] = {"head -c 104857600 /dev/zero; head -c 104857600 /dev/zero >&2", NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.max_output_bytes = 128u << 20;
    o.timeout_s = 60;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_exec(S, &o, &r, &err), 0, "%s", sbx_error_message(err));
    cr_expect_eq(r->exit_code, 0);
    cr_expect_eq(r->out_len, 104857600u);
    cr_expect_eq(r->err_len, 104857600u);
    cr_expect_eq(r->out_dropped, 0);
    sbx_exec_result_free(r);
}

Test(backend_exec, output_past_the_cap_is_drained_and_counted, .init = start, .fini = stop)
{
    const char *argv[] = {"head -c 10485760 /dev/zero; echo done >&2", NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.max_output_bytes = 1u << 20;
    o.timeout_s = 60;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_exec(S, &o, &r, &err), 0, "%s", sbx_error_message(err));
    cr_expect_eq(r->exit_code, 0, "the command must run to the end");
    cr_expect_eq(r->out_len, 1u << 20);
    cr_expect_eq(r->out_dropped, 10485760u - (1u << 20));
    cr_expect_str_eq(ERR(r), "done\n");
    sbx_exec_result_free(r);
}

Test(backend_exec, files_written_by_one_exec_are_seen_by_the_next, .init = start, .fini = stop)
{
    sbx_exec_result_free(sbx_test_sh(S, "echo persisted > note.txt; mkdir -p d/e"));
    sbx_exec_result *r = sbx_test_sh(S, "cat /workspace/note.txt; test -d d/e && echo dir");
    cr_expect_str_eq(OUT(r), "persisted\ndir\n");
    sbx_exec_result_free(r);
    char path[4096];
    snprintf(path, sizeof(path), "%s/note.txt", sbx_session_workspace(S));
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "the file is in the host workspace");
    fclose(f);
}

Test(backend_exec, a_background_process_outlives_its_exec_until_shutdown, .init = start,
     .fini = stop)
{
    sbx_exec_result *r = sbx_test_sh(S, "sleep 1000 >/dev/null 2>&1 & echo $! > bg.pid");
    cr_expect_eq(r->exit_code, 0);
    sbx_exec_result_free(r);
    r = sbx_test_sh(S, "kill -0 $(cat bg.pid) && echo alive");
    cr_expect_str_eq(OUT(r), "alive\n");
    sbx_exec_result_free(r);
    unsigned long ns = sbx_test_pidns_of(sbx_session_agent_pid(S));
    cr_assert_neq(ns, 0);
    cr_expect_geq(sbx_test_count_in_pidns(ns), 2, "agent and sleep");
    cr_assert_eq(sbx_session_shutdown(S, NULL), 0);
    cr_expect_eq(sbx_test_count_in_pidns(ns), 0, "processes survived shutdown");
}

Test(backend_exec, timeout_kills_the_whole_tree_including_daemons, .init = start, .fini = stop)
{
    /* A grandchild that double-forks and calls setsid() escapes any process group kill. */
    const char *argv[] = {"(setsid sh -c 'sleep 1000 & echo $! > daemon.pid' &); "
                          "while [ ! -s daemon.pid ]; do sleep 0.01; done; sleep 1000",
                          NULL};
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(run(argv, SBX_SHELL_SH, 1.0, &r, &err), SBX_EEXEC_TIMEOUT, "%s",
                 sbx_error_message(err));
    cr_expect_null(r);
    cr_expect_str_eq(sbx_error_context_get(err, "timeout_s"), "1");
    cr_expect_str_eq(sbx_code_name(sbx_error_code(err)), "exec_timeout");
    sbx_error_free(err);
    r = sbx_test_sh(S, "test -s daemon.pid && (kill -0 $(cat daemon.pid) 2>/dev/null && echo "
                       "alive || echo gone)");
    cr_expect_str_eq(OUT(r), "gone\n");
    sbx_exec_result_free(r);
}

Test(backend_exec, a_missing_binary_is_a_transport_error_without_shell, .init = start,
     .fini = stop)
{
    const char *argv[] = {"no-such-binary", "x", NULL};
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(run(argv, SBX_SHELL_NONE, 10, &r, &err), SBX_EEXEC_TRANSPORT);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "not_found");
    cr_expect_eq(sbx_error_errno(err), ENOENT);
    cr_expect(strstr(sbx_error_message(err), "no-such-binary") != NULL);
    sbx_error_free(err);
    /* With a shell it is the shell's exit code 127. */
    r = sbx_test_sh(S, "no-such-binary");
    cr_expect_eq(r->exit_code, 127);
    sbx_exec_result_free(r);
}

Test(backend_exec, a_non_executable_file_is_permission_denied, .init = start, .fini = stop)
{
    sbx_exec_result_free(sbx_test_sh(S, "echo data > plain; chmod 644 plain"));
    const char *argv[] = {"./plain", NULL};
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(run(argv, SBX_SHELL_NONE, 10, &r, &err), SBX_EEXEC_TRANSPORT);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "permission_denied");
    sbx_error_free(err);
}

Test(backend_exec, only_stdio_fds_reach_the_command, .init = start, .fini = stop)
{
    /* ls opens the directory itself as fd 3; anything else is a leak. */
    const char *argv[] = {"ls", "/proc/self/fd", NULL};
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(run(argv, SBX_SHELL_NONE, 10, &r, &err), 0, "%s", sbx_error_message(err));
    cr_expect_str_eq(OUT(r), "0\n1\n2\n3\n");
    sbx_exec_result_free(r);
}

Test(backend_exec, stdin_is_eof_by_default, .init = start, .fini = stop)
{
    sbx_exec_result *r = sbx_test_sh(S, "cat; echo end");
    cr_expect_str_eq(OUT(r), "end\n");
    sbx_exec_result_free(r);
}

Test(backend_exec, env_cwd_and_home, .init = start, .fini = stop)
{
    sbx_exec_result_free(sbx_test_sh(S, "mkdir -p sub"));
    const char *argv[] = {"echo \"$FOO|$HOME|$USER|$(pwd)\"", NULL};
    const char *env[] = {"FOO=bar baz", NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.env = env;
    o.cwd = "sub";
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_exec(S, &o, &r, &err), 0, "%s", sbx_error_message(err));
    cr_expect_str_eq(OUT(r), "bar baz|/workspace|sandbox|/workspace/sub\n");
    sbx_exec_result_free(r);
    o.cwd = "/no/such/dir";
    cr_expect_eq(sbx_session_exec(S, &o, &r, &err), SBX_EEXEC_TRANSPORT);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "cwd_unusable");
    sbx_error_free(err);
}

struct conc {
    int idx;
    int ok;
};

static void *conc_exec(void *arg)
{
    struct conc *c = arg;
    char script[128], want[64];
    snprintf(script, sizeof(script), "sleep 0.2; echo job-%d; echo err-%d >&2", c->idx, c->idx);
    snprintf(want, sizeof(want), "job-%d\n", c->idx);
    const char *argv[] = {script, NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.timeout_s = 30;
    sbx_exec_result *r = NULL;
    if (sbx_session_exec(S, &o, &r, NULL) == 0 && strcmp((char *)r->out, want) == 0 &&
        r->exit_code == 0)
        c->ok = 1;
    sbx_exec_result_free(r);
    return NULL;
}

Test(backend_exec, eight_concurrent_execs_on_one_session, .init = start, .fini = stop)
{
    pthread_t t[8];
    struct conc c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = (struct conc){.idx = i};
        cr_assert_eq(pthread_create(&t[i], NULL, conc_exec, &c[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        cr_expect(c[i].ok, "exec %d failed or mixed output", i);
    }
}

Test(backend_exec, exec_before_start_or_after_shutdown_is_a_state_error)
{
    sbx_test_init();
    sbx_session_opts so = SBX_SESSION_OPTS_INIT;
    sbx_session *s = NULL;
    cr_assert_eq(sbx_session_new(&so, &s, NULL), 0);
    const char *argv[] = {"true", NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_exec(s, &o, &r, &err), SBX_ESTATE);
    sbx_error_free(err);
    err = NULL;
    cr_assert_eq(sbx_session_start(s, &err), 0, "%s", sbx_error_message(err));
    cr_assert_eq(sbx_session_shutdown(s, NULL), 0);
    cr_expect_eq(sbx_session_exec(s, &o, &r, &err), SBX_ESTATE);
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_session_start(s, &err), SBX_ESTATE, "a shut-down session stays down");
    sbx_error_free(err);
    sbx_session_free(s);
    sbx_test_fini();
}

Test(backend_exec, bad_options_are_rejected, .init = start, .fini = stop)
{
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_exec(S, &o, &r, &err), SBX_EINVAL, "empty argv");
    sbx_error_free(err);
    err = NULL;
    const char *argv[] = {"true", NULL};
    o.argv = argv;
    o.timeout_s = -1;
    cr_expect_eq(sbx_session_exec(S, &o, &r, &err), SBX_EINVAL, "negative timeout");
    sbx_error_free(err);
    err = NULL;
    o.timeout_s = 0;
    o.size = sizeof(o) - 8;
    cr_expect_eq(sbx_session_exec(S, &o, &r, &err), SBX_EINVAL, "wrong size");
    sbx_error_free(err);
}

static void *exec_long(void *arg)
{
    (void)arg;
    const char *argv[] = {"sleep 30", NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    int rc = sbx_session_exec(S, &o, &r, &err);
    sbx_exec_result_free(r);
    sbx_error_free(err);
    return (void *)(intptr_t)rc;
}

Test(backend_exec, shutdown_while_execs_run_fails_them_fast, .init = start, .fini = stop)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, exec_long, NULL), 0);
    usleep(300000);
    cr_assert_eq(sbx_session_shutdown(S, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        cr_expect_neq((intptr_t)rc, 0, "an exec survived shutdown");
    }
}
