/* Interactive processes (spec SESSION.md §5, TESTS.md B and C) against real sessions, plus
 * what the spec leaves to the implementation: a chatty process nobody polls, resize, TIOCSTI,
 * and the streaming layer's round trip. */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core.h"
#include "harness.h"

TestSuite(session_pty, .init = sbx_test_setup, .fini = sbx_test_teardown, .timeout = 90);
TestSuite(core_pty, .timeout = 10);

static sbx_session *cur; /* NULL: the fixture's session */
#define S (cur ? cur : sbx_test_S)

static double median(double *t, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return t[n / 2];
}

static double us_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e6 + (double)(b.tv_nsec - a->tv_nsec) / 1e3;
}

static sbx_pty_update *start(const char *const *argv, int shell, unsigned flags, double yield)
{
    sbx_pty_opts o = SBX_PTY_OPTS_INIT;
    o.argv = argv;
    o.shell = shell;
    o.flags = flags | SBX_PTY_YIELD;
    o.yield_time_s = yield;
    sbx_pty_update *u = NULL;
    sbx_error *err = NULL;
    int r = sbx_pty_exec_start(S, &o, &u, &err);
    cr_assert_eq(r, 0, "pty_exec_start: %s", sbx_error_message(err));
    return u;
}

static sbx_pty_update *write_in(int id, const char *chars, double yield)
{
    sbx_pty_write_opts o = SBX_PTY_WRITE_OPTS_INIT;
    o.flags = SBX_PTY_YIELD;
    o.yield_time_s = yield;
    sbx_pty_update *u = NULL;
    sbx_error *err = NULL;
    int r = sbx_pty_write_stdin(S, id, chars, strlen(chars), &o, &u, &err);
    cr_assert_eq(r, 0, "pty_write_stdin: %s", sbx_error_message(err));
    return u;
}

static int write_fails(int id, const char *chars, sbx_error **err)
{
    sbx_pty_update *u = NULL;
    int r = sbx_pty_write_stdin(S, id, chars, strlen(chars), NULL, &u, err);
    cr_assert_null(u);
    return r;
}

/* Polls (empty writes) until the process reports its exit; returns the last update. */
static sbx_pty_update *until_exit(int id, char *acc, size_t cap)
{
    for (int i = 0; i < 20; i++) {
        sbx_pty_update *u = write_in(id, "", 5.5);
        if (acc)
            strncat(acc, (const char *)u->output, cap - strlen(acc) - 1);
        if (u->exited)
            return u;
        sbx_pty_update_free(u);
    }
    cr_assert_fail("the process never exited");
    return NULL;
}

/* TESTS.md 11 */
Test(session_pty, sessions_support_pty)
{
    cr_expect(sbx_session_supports_pty(sbx_test_S));
}

/* TESTS.md 12 */
Test(session_pty, read_line_round_trip)
{
    const char *argv[] = {"sh", "-c", "IFS= read -r line; printf '%s\\n' \"$line\"", NULL};
    sbx_pty_update *u = start(argv, SBX_SHELL_NONE, SBX_PTY_TTY, 0.05);
    cr_assert(u->process_id >= 1000 && u->process_id < 100000, "id %d", u->process_id);
    cr_expect_eq(u->exited, 0);
    int id = u->process_id;
    sbx_pty_update_free(u);
    u = write_in(id, "hello from pty\n", 0.25);
    if (!u->exited) { /* a loaded machine: the spec allows the exit on a later poll */
        char acc[4096] = "";
        snprintf(acc, sizeof(acc), "%s", (const char *)u->output);
        sbx_pty_update_free(u);
        u = until_exit(id, acc, sizeof(acc));
        cr_expect(strstr(acc, "hello from pty"), "output: %s", acc);
    } else {
        cr_expect(strstr((const char *)u->output, "hello from pty"), "output: %s", u->output);
    }
    cr_expect_eq(u->process_id, 0);
    cr_expect_eq(u->exit_code, 0);
    sbx_pty_update_free(u);

    /* TESTS.md 13: reported once, then gone; never-issued ids too. */
    sbx_error *err = NULL;
    cr_expect_eq(write_fails(id, "", &err), SBX_EPTY_NOT_FOUND);
    char want[64];
    snprintf(want, sizeof(want), "PTY session not found: %d", id);
    cr_expect_str_eq(sbx_error_message(err), want);
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(write_fails(999999, "", &err), SBX_EPTY_NOT_FOUND);
    cr_expect_str_eq(sbx_error_context_get(err, "session_id"), "999999");
    cr_expect_str_eq(sbx_code_name(sbx_error_code(err)), "pty_session_not_found");
    sbx_error_free(err);
}

/* TESTS.md 14 */
Test(session_pty, ctrl_c_ends_sleep)
{
    const char *argv[] = {"sleep", "30", NULL};
    sbx_pty_update *u = start(argv, SBX_SHELL_NONE, SBX_PTY_TTY, 0.3);
    int id = u->process_id;
    cr_assert_neq(id, 0);
    sbx_pty_update_free(u);
    u = write_in(id, "\x03", 0.25);
    if (!u->exited) {
        sbx_pty_update_free(u);
        u = until_exit(id, NULL, 0);
    }
    cr_expect_eq(u->exit_code, -SIGINT);
    sbx_pty_update_free(u);
    cr_expect_eq(write_fails(id, "x", NULL), SBX_EPTY_NOT_FOUND);
}

/* TESTS.md 15: the parent ignores SIGINT and SIGQUIT; the terminal still interrupts. */
Test(session_pty, ctrl_c_and_ctrl_backslash_signal_the_child)
{
    /* Ignored dispositions survive clone and execve: a session started by a process that
     * ignores both has an agent (and workers) that ignore them too. */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    sbx_session *saved = cur;
    cur = sbx_test_start(NULL);
    const char *argv[] = {"sleep", "30", NULL};
    const char *bytes[] = {"\x03", "\x1c"};
    int sigs[] = {SIGINT, SIGQUIT};
    for (int i = 0; i < 2; i++) {
        sbx_pty_update *u = start(argv, SBX_SHELL_NONE, SBX_PTY_TTY, 0.3);
        int id = u->process_id;
        cr_assert_neq(id, 0);
        sbx_pty_update_free(u);
        u = write_in(id, bytes[i], 0.25);
        if (!u->exited) {
            sbx_pty_update_free(u);
            u = until_exit(id, NULL, 0);
        }
        cr_expect_eq(u->exit_code, -sigs[i], "byte %d: exit %d", i, u->exit_code);
        sbx_pty_update_free(u);
    }
    sbx_session_free(cur);
    cur = saved;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
}

/* TESTS.md 16 */
Test(session_pty, without_tty_output_is_merged_and_stdin_refused)
{
    const char *argv[] = {"sh", "-c", "printf 'stdout\\n'; printf 'stderr\\n' >&2; sleep 1", NULL};
    sbx_pty_update *u = start(argv, SBX_SHELL_NONE, 0, 0.5);
    cr_assert_eq(u->exited, 0);
    cr_expect(strstr((const char *)u->output, "stdout\n"), "%s", u->output);
    cr_expect(strstr((const char *)u->output, "stderr\n"), "%s", u->output);
    int id = u->process_id;
    sbx_pty_update_free(u);
    sbx_error *err = NULL;
    cr_expect_lt(write_fails(id, "hello", &err), 0);
    cr_expect_str_eq(sbx_error_message(err), "stdin is not available for this process");
    sbx_error_free(err);
    u = write_in(id, "", 5.5);
    cr_expect_eq(u->exited, 1);
    cr_expect_eq(u->exit_code, 0);
    cr_expect_eq(u->process_id, 0);
    cr_expect_eq(u->output_len, 0, "already consumed: %s", u->output);
    sbx_pty_update_free(u);
}

/* TESTS.md 17 (through shutdown's terminate_all: see docs/pty.md for stop) */
Test(session_pty, terminate_all_forgets_every_id)
{
    const char *argv[] = {"echo ready; sleep 30", NULL};
    sbx_pty_update *u = start(argv, SBX_SHELL_SH, SBX_PTY_TTY, 0.5);
    int id = u->process_id;
    cr_assert_neq(id, 0);
    cr_expect(strstr((const char *)u->output, "ready"), "%s", u->output);
    sbx_pty_update_free(u);
    /* TESTS.md 25: termination never waits for the process. */
    struct timespec a;
    clock_gettime(CLOCK_MONOTONIC, &a);
    sbx_pty_terminate_all(sbx_test_S);
    cr_expect_lt(us_since(&a), 500000.0);
    cr_expect_eq(write_fails(id, "", NULL), SBX_EPTY_NOT_FOUND);
    /* The process is gone inside too. */
    sbx_exec_result *r = sbx_test_sh(
        sbx_test_S, "sleep 0.5; cat /proc/[0-9]*/comm 2>/dev/null | grep -x sleep || echo none");
    cr_expect(strstr((const char *)r->out, "none"), "%s", r->out);
    sbx_exec_result_free(r);
}

Test(session_pty, shutdown_kills_pty_processes)
{
    sbx_session *s = sbx_test_start(NULL);
    const char *argv[] = {"sleep", "300", NULL};
    sbx_pty_opts o = SBX_PTY_OPTS_INIT;
    o.argv = argv;
    o.shell = SBX_SHELL_NONE;
    o.flags = SBX_PTY_TTY | SBX_PTY_YIELD;
    o.yield_time_s = 0.25;
    sbx_pty_update *u = NULL;
    cr_assert_eq(sbx_pty_exec_start(s, &o, &u, NULL), 0);
    int id = u->process_id;
    sbx_pty_update_free(u);
    unsigned long ns = sbx_test_pidns_of(sbx_session_agent_pid(s));
    cr_assert_eq(sbx_session_shutdown(s, NULL), 0);
    cr_expect_eq(sbx_test_count_in_pidns(ns), 0);
    cr_expect_eq(sbx_pty_write_stdin(s, id, "", 0, NULL, &u, NULL), SBX_EPTY_NOT_FOUND);
    sbx_session_free(s);
}

/* TESTS.md 18 */
Test(session_pty, fast_command_reported_by_start)
{
    const char *argv[] = {"printf done\\\\n", NULL};
    sbx_pty_update *u = start(argv, SBX_SHELL_SH, 0, 0.25);
    cr_expect_eq(u->process_id, 0);
    cr_expect_eq(u->exited, 1);
    cr_expect_eq(u->exit_code, 0);
    cr_expect_str_eq((const char *)u->output, "done\n");
    sbx_pty_update_free(u);
}

Test(session_pty, missing_binary_is_a_transport_error)
{
    const char *argv[] = {"no-such-binary", NULL};
    sbx_pty_opts o = SBX_PTY_OPTS_INIT;
    o.argv = argv;
    o.shell = SBX_SHELL_NONE;
    o.flags = SBX_PTY_TTY;
    sbx_pty_update *u = NULL;
    sbx_error *err = NULL;
    cr_expect_eq(sbx_pty_exec_start(sbx_test_S, &o, &u, &err), SBX_EEXEC_TRANSPORT);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "not_found");
    sbx_error_free(err);
    cr_expect_null(u);
}

/* TESTS.md 24 */
Test(session_pty, invalid_utf8_becomes_replacement)
{
    const char *argv[] = {"printf 'a\\377b'", NULL};
    sbx_pty_update *u = start(argv, SBX_SHELL_SH, 0, 0.25);
    cr_assert_eq(u->exited, 1);
    cr_expect_str_eq((const char *)u->output, "a\xef\xbf\xbd" "b");
    sbx_pty_update_free(u);
}

Test(session_pty, max_output_tokens_truncates)
{
    const char *argv[] = {"seq 1 1000", NULL};
    sbx_pty_opts o = SBX_PTY_OPTS_INIT;
    o.argv = argv;
    o.flags = SBX_PTY_YIELD | SBX_PTY_MAX_TOKENS;
    o.yield_time_s = 0.5;
    o.max_output_tokens = 16;
    sbx_pty_update *u = NULL;
    cr_assert_eq(sbx_pty_exec_start(sbx_test_S, &o, &u, NULL), 0);
    cr_assert_eq(u->exited, 1);
    cr_expect_eq(u->original_token_count, (3893 + 3) / 4); /* bytes of seq 1 1000 */
    cr_expect(strstr((const char *)u->output, "tokens truncated"), "%s", u->output);
    cr_expect_leq(u->output_len, 64);
    sbx_pty_update_free(u);
}

/* The issue: an interactive sh driven through several rounds. */
Test(session_pty, interactive_sh_rounds)
{
    const char *argv[] = {"sh", "-i", NULL};
    sbx_pty_update *u = start(argv, SBX_SHELL_NONE, SBX_PTY_TTY, 0.3);
    int id = u->process_id;
    cr_assert_neq(id, 0);
    sbx_pty_update_free(u);
    const char *cmds[] = {"x=41\n", "echo $((x + 1))\n", "cd /tmp && pwd\n", "tty\n"};
    const char *want[] = {NULL, "42", "/tmp", "/dev/pts/"};
    for (int i = 0; i < 4; i++) {
        u = write_in(id, cmds[i], 0.4);
        cr_expect_eq(u->exited, 0);
        if (want[i])
            cr_expect(strstr((const char *)u->output, want[i]), "round %d: %s", i, u->output);
        sbx_pty_update_free(u);
    }
    u = write_in(id, "exit 3\n", 0.5);
    if (!u->exited) {
        sbx_pty_update_free(u);
        u = until_exit(id, NULL, 0);
    }
    cr_expect_eq(u->exit_code, 3);
    sbx_pty_update_free(u);
}

Test(session_pty, python_repl_answers)
{
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, "command -v python3 || echo missing");
    int missing = strstr((const char *)r->out, "missing") != NULL;
    sbx_exec_result_free(r);
    SBX_TEST_SKIP_UNLESS(!missing, "python3 is not installed on this machine");
    const char *argv[] = {"python3", "-i", "-q", NULL};
    sbx_pty_update *u = start(argv, SBX_SHELL_NONE, SBX_PTY_TTY, 1.0);
    int id = u->process_id;
    cr_assert_neq(id, 0);
    sbx_pty_update_free(u);
    char acc[4096] = "";
    u = write_in(id, "6 * 7\n", 1.0);
    snprintf(acc, sizeof(acc), "%s", (const char *)u->output);
    sbx_pty_update_free(u);
    cr_expect(strstr(acc, "42"), "python said: %s", acc);
    u = write_in(id, "exit()\n", 1.0);
    if (!u->exited) {
        sbx_pty_update_free(u);
        u = until_exit(id, NULL, 0);
    }
    cr_expect_eq(u->exit_code, 0);
    sbx_pty_update_free(u);
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* The issue: 50 MiB printed while nobody polls: no deadlock, bounded memory, drops counted. */
Test(session_pty, chatty_process_never_blocks)
{
    const char *argv[] = {"head -c 52428800 /dev/zero | tr '\\0' x; echo; echo END", NULL};
    long before = rss_kib();
    sbx_pty_update *u = start(argv, SBX_SHELL_SH, SBX_PTY_TTY, 0.25);
    int id = u->process_id;
    uint64_t dropped = u->dropped_bytes;
    size_t got = u->output_len;
    sbx_pty_update_free(u);
    if (id) {
        /* Nobody polls while it prints. */
        sleep(4);
        u = until_exit(id, NULL, 0);
        dropped += u->dropped_bytes;
        got += u->output_len;
        cr_expect(strstr((const char *)u->output, "END"), "the tail is kept");
        cr_expect_eq(u->exit_code, 0);
        sbx_pty_update_free(u);
    }
    cr_expect_gt(dropped, 40u << 20, "dropped %llu", (unsigned long long)dropped);
    cr_expect_leq(got, 3u << 20, "returned %zu", got);
    long after = rss_kib();
    cr_expect_lt(after - before, 32 * 1024, "rss grew by %ld KiB", after - before);
}

Test(session_pty, resize_seen_by_stty)
{
    const char *argv[] = {"sh", "-i", NULL};
    sbx_pty_opts o = SBX_PTY_OPTS_INIT;
    o.argv = argv;
    o.shell = SBX_SHELL_NONE;
    o.flags = SBX_PTY_TTY | SBX_PTY_YIELD;
    o.yield_time_s = 0.3;
    o.rows = 33;
    o.cols = 101;
    sbx_pty_update *u = NULL;
    cr_assert_eq(sbx_pty_exec_start(sbx_test_S, &o, &u, NULL), 0);
    int id = u->process_id;
    sbx_pty_update_free(u);
    u = write_in(id, "stty size\n", 0.4);
    cr_expect(strstr((const char *)u->output, "33 101"), "%s", u->output);
    sbx_pty_update_free(u);
    cr_assert_eq(sbx_pty_resize(sbx_test_S, id, 50, 132, NULL), 0);
    u = write_in(id, "trap 'echo WINCH' WINCH; stty size\n", 0.4);
    cr_expect(strstr((const char *)u->output, "50 132"), "%s", u->output);
    sbx_pty_update_free(u);
    cr_assert_eq(sbx_pty_resize(sbx_test_S, id, 40, 90, NULL), 0);
    u = write_in(id, "\n", 0.4);
    cr_expect(strstr((const char *)u->output, "WINCH"), "SIGWINCH delivered: %s", u->output);
    sbx_pty_update_free(u);
    cr_expect_eq(sbx_pty_resize(sbx_test_S, 123, 1, 1, NULL), SBX_EPTY_NOT_FOUND);
    sbx_pty_terminate_all(sbx_test_S);
}

/* THREATS T01: TIOCSTI from inside reaches neither the host's terminal nor, with the
 * default policy, even the sandbox's own. The test process sits on a pty of its own whose
 * input we check afterwards. */
Test(session_pty, tiocsti_cannot_reach_the_host_terminal)
{
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, "command -v python3 || echo missing");
    int missing = strstr((const char *)r->out, "missing") != NULL;
    sbx_exec_result_free(r);
    SBX_TEST_SKIP_UNLESS(!missing, "python3 is not installed on this machine");
    int m = -1, sl = -1;
    cr_assert_eq(openpty(&m, &sl, NULL, NULL, NULL), 0);
    fcntl(m, F_SETFD, FD_CLOEXEC);
    fcntl(sl, F_SETFD, FD_CLOEXEC);
    pid_t child = fork();
    if (child == 0) {
        setsid();
        ioctl(sl, TIOCSCTTY, 0);
        dup2(sl, 0);
        const char *argv[] = {
            "python3", "-c",
            "import fcntl,termios,sys\n"
            "ok=0\n"
            "for c in b'id>/tmp/pwned\\n':\n"
            "  for fd in (0,1,2):\n"
            "    try:\n"
            "      fcntl.ioctl(fd, termios.TIOCSTI, bytes([c])); ok+=1\n"
            "    except OSError as e: pass\n"
            "print('injected', ok)\n",
            NULL};
        sbx_pty_opts o = SBX_PTY_OPTS_INIT;
        o.argv = argv;
        o.shell = SBX_SHELL_NONE;
        o.flags = SBX_PTY_TTY | SBX_PTY_YIELD;
        o.yield_time_s = 3;
        sbx_pty_update *u = NULL;
        if (sbx_pty_exec_start(sbx_test_S, &o, &u, NULL) < 0 || !u->exited)
            _exit(10);
        _exit(strstr((const char *)u->output, "injected 0") ? 0 : 11);
    }
    close(sl);
    int st = 0;
    waitpid(child, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    /* Nothing arrived on our terminal's input queue. */
    int queued = -1;
    ioctl(m, FIONREAD, &queued);
    char buf[256];
    fcntl(m, F_SETFL, O_NONBLOCK);
    ssize_t n = read(m, buf, sizeof(buf));
    cr_expect(n <= 0 || !memmem(buf, (size_t)n, "pwned", 5), "host pty saw injected bytes");
    close(m);
    cr_expect_neq(access("/tmp/pwned", F_OK), 0);
}

enum { ROUNDS = 201 };

/* The baseline: a raw openpty + cat on the host, one line written and read back. */
static double raw_round_trip_us(void)
{
    int m = -1, sl = -1;
    cr_assert_eq(openpty(&m, &sl, NULL, NULL, NULL), 0);
    pid_t c = fork();
    if (c == 0) {
        setsid();
        ioctl(sl, TIOCSCTTY, 0);
        dup2(sl, 0);
        dup2(sl, 1);
        dup2(sl, 2);
        close(m);
        execl("/bin/cat", "cat", (char *)NULL);
        _exit(127);
    }
    close(sl);
    static double t[ROUNDS];
    char buf[256];
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec a;
        clock_gettime(CLOCK_MONOTONIC, &a);
        cr_assert_eq(write(m, "ping\n", 5), 5);
        size_t got = 0;
        while (got < 12) {
            ssize_t n = read(m, buf + got, sizeof(buf) - got);
            cr_assert_gt(n, 0);
            got += (size_t)n;
        }
        t[i] = us_since(&a);
    }
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    close(m);
    return median(t, ROUNDS);
}

/* The streaming layer: one line through cat and back, against the raw baseline (the issue's
 * target: within 3x). The medians are printed. */
Test(session_pty, streaming_round_trip)
{
    const char *argv[] = {"cat", NULL};
    sbx_pty_opts o = SBX_PTY_OPTS_INIT;
    o.argv = argv;
    o.shell = SBX_SHELL_NONE;
    o.flags = SBX_PTY_TTY | SBX_PTY_YIELD;
    o.yield_time_s = 0.25;
    sbx_pty_update *u = NULL;
    cr_assert_eq(sbx_pty_exec_start(sbx_test_S, &o, &u, NULL), 0);
    int id = u->process_id;
    sbx_pty_update_free(u);
    char buf[256];
    size_t n;
    static double t[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec a;
        clock_gettime(CLOCK_MONOTONIC, &a);
        cr_assert_eq(sbx_pty_write(sbx_test_S, id, "ping\n", 5, NULL), 0);
        /* Echo plus cat's copy: "ping\r\nping\r\n". */
        size_t got = 0;
        while (got < 12) {
            cr_assert_eq(sbx_pty_read(sbx_test_S, id, buf + got, sizeof(buf) - got, 2000, &n,
                                      NULL, NULL, NULL),
                         0);
            cr_assert_gt(n, 0, "timed out after %zu bytes", got);
            got += n;
        }
        t[i] = us_since(&a);
    }
    double ours = median(t, ROUNDS), raw = raw_round_trip_us();
    fprintf(stderr, "pty round trip, median of %d: sbx %.1f us, raw openpty+cat %.1f us (%.2fx)\n",
            ROUNDS, ours, raw, ours / raw);
    cr_expect_eq(sbx_pty_write(sbx_test_S, id, "\x04", 1, NULL), 0);
    int exited = 0, code = -1;
    for (int i = 0; i < 50 && !exited; i++)
        sbx_pty_read(sbx_test_S, id, buf, sizeof(buf), 100, &n, &exited, &code, NULL);
    cr_expect(exited && code == 0, "cat ends at EOF: exited %d code %d", exited, code);
}

Test(session_pty, registry_prunes_at_64)
{
    int ids[70];
    const char *argv[] = {"sleep", "60", NULL};
    for (int i = 0; i < 66; i++) {
        sbx_pty_update *u = start(argv, SBX_SHELL_NONE, 0, 0.001);
        ids[i] = u->process_id;
        cr_assert_neq(ids[i], 0);
        sbx_pty_update_free(u);
    }
    /* The two oldest went, the newest are all there. */
    cr_expect_eq(write_fails(ids[0], "", NULL), SBX_EPTY_NOT_FOUND);
    cr_expect_eq(write_fails(ids[1], "", NULL), SBX_EPTY_NOT_FOUND);
    sbx_pty_update *u = NULL;
    sbx_pty_write_opts wo = SBX_PTY_WRITE_OPTS_INIT;
    cr_expect_eq(sbx_pty_write_stdin(sbx_test_S, ids[65], "", 0, &wo, &u, NULL), 0);
    sbx_pty_update_free(u);
    sbx_pty_terminate_all(sbx_test_S);
}

/* ---- the rules as pure functions --------------------------------------------------------- */

/* TESTS.md 21 */
Test(core_pty, yield_clamps)
{
    cr_expect_eq(sbx__pty_yield_ms(1, 0, 10000, 0), 250);
    cr_expect_eq(sbx__pty_yield_ms(1, 1e9, 10000, 0), 30000);
    cr_expect_eq(sbx__pty_yield_ms(1, 0.25, 250, 1), 5000);
    cr_expect_eq(sbx__pty_yield_ms(1, 0.25, 250, 0), 250);
    cr_expect_eq(sbx__pty_yield_ms(0, 0, 10000, 0), 10000);
    cr_expect_eq(sbx__pty_yield_ms(0, 0, 250, 0), 250);
    cr_expect_eq(sbx__pty_yield_ms(1, 1.2345, 250, 0), 1234);
}

/* TESTS.md 22 */
Test(core_pty, prune_prefers_old_exited)
{
    struct sbx_pty_prune_view v[10];
    for (int i = 0; i < 8; i++)
        v[i] = (struct sbx_pty_prune_view){(uint64_t)(100 - i), 0};
    v[8] = (struct sbx_pty_prune_view){1, 1};
    v[9] = (struct sbx_pty_prune_view){2, 0};
    cr_expect_eq(sbx__pty_prune_pick(v, 10), 8);
    v[8].exited = 0;
    cr_expect_eq(sbx__pty_prune_pick(v, 10), 8, "the least recently used");
    cr_expect_eq(sbx__pty_prune_pick(v, 8), -1);
}

static void trunc_is(const char *in, size_t in_len, int64_t tokens, const char *want,
                     int64_t want_orig)
{
    char *out = NULL;
    size_t out_len = 0;
    int64_t orig = 0;
    cr_assert_eq(sbx_truncate_tokens(in, in_len, tokens, &out, &out_len, &orig), 0);
    cr_expect_str_eq(out, want);
    cr_expect_eq(out_len, strlen(want));
    cr_expect_eq(orig, want_orig, "original %lld", (long long)orig);
    free(out);
}

/* TESTS.md 26, 27 */
Test(core_pty, truncation_examples)
{
    trunc_is("short", 5, 10, "short", -1);
    trunc_is("abcdefghi", 9, 1, "\xe2\x80\xa6" "3", 3);
    trunc_is("content", 7, 0, "", 2);
    trunc_is("content", 7, -5, "", 2);
    char x[101], a[42];
    memset(x, 'x', 100);
    x[100] = 0;
    trunc_is(x, 100, 10, "xxxxxxx\xe2\x80\xa6" "22 tokens truncated\xe2\x80\xa6xxxxxxxx", 25);
    memset(a, 'a', 41);
    a[41] = 0;
    trunc_is(a, 40, 10, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", -1);
    trunc_is(a, 41, 10, "aaaaaaa\xe2\x80\xa6" "7 tokens truncated\xe2\x80\xa6" "aaaaaaaa", 11);
}

/* TESTS.md 28 */
Test(core_pty, truncation_keeps_line_count_prefix)
{
    char text[2048] = "";
    for (int i = 0; i < 20; i++)
        strcat(text, "line of text that is about fifty bytes long......\n");
    size_t len = strlen(text);
    char *out = NULL;
    size_t out_len = 0;
    int64_t orig = 0;
    cr_assert_eq(sbx_truncate_tokens(text, len, 32, &out, &out_len, &orig), 0);
    cr_expect(strncmp(out, "Total output lines: 20\n\n", 24) == 0, "%s", out);
    cr_expect(strstr(out, "tokens truncated"));
    cr_expect_leq((out_len + 3) / 4, 32);
    cr_expect_eq(orig, (int64_t)((len + 3) / 4));
    free(out);
}

/* TESTS.md 29 */
Test(core_pty, utf8_safe_split)
{
    const char *s = "a\xe3\x81\x82" "b\xe3\x81\x84" "c"; /* aあbいc */
    size_t head = 0, tail = 0;
    sbx__split_utf8(s, strlen(s), 2, 4, &head, &tail);
    cr_expect_eq(head, 1);
    cr_expect_str_eq(s + tail, "\xe3\x81\x84" "c");
}

/* TESTS.md 24 and §5.4: a character split across reads is two replacement characters. */
Test(core_pty, utf8_sanitize_like_python)
{
    size_t n = 0;
    char *o = sbx__utf8_sanitize((const unsigned char *)"\xe3\x81", 2, &n);
    cr_expect_str_eq(o, "\xef\xbf\xbd");
    free(o);
    o = sbx__utf8_sanitize((const unsigned char *)"\x82z", 2, &n);
    cr_expect_str_eq(o, "\xef\xbf\xbdz");
    free(o);
    o = sbx__utf8_sanitize((const unsigned char *)"\xed\xa0\x80", 3, &n);
    cr_expect_str_eq(o, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "no surrogates");
    free(o);
    o = sbx__utf8_sanitize((const unsigned char *)"ok \xc3\xa9", 5, &n);
    cr_expect_str_eq(o, "ok \xc3\xa9");
    free(o);
}
