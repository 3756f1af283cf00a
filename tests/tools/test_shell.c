/* `sbx shell` and `sbx exec --tty` as a person uses them: a real terminal (a tmux pane) typing
 * commands, reading the screen, pressing ^C, resizing the window and leaving, after which the
 * terminal's settings must be what they were. Each test runs its own tmux server (-L) and its
 * own session state directory. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static char sock[64];
static char statedir[64];
static char screen[1 << 16];

static void fixture_init(void)
{
    snprintf(sock, sizeof(sock), "sbx-test-%d", (int)getpid());
    snprintf(statedir, sizeof(statedir), "/tmp/sbx-test-shell-XXXXXX");
    cr_assert_not_null(mkdtemp(statedir));
    setenv("SBX_STATE_DIR", statedir, 1);
    sbx_test_init();
}

static int run_sh(const char *fmt, ...);

static void fixture_fini(void)
{
    run_sh("tmux -L %s kill-server 2>/dev/null; true", sock);
    /* Sessions a test created: gone with their sandboxes. */
    run_sh("for d in %s/*/; do [ -d \"$d\" ] && %s rm -f \"$(basename \"$d\")\"; done; true",
           statedir, sbx_test_bin("sbx"));
    run_sh("rm -rf %s", statedir);
    sbx_test_fini();
}

TestSuite(tools_shell, .init = fixture_init, .fini = fixture_fini, .timeout = 90);

__attribute__((format(printf, 1, 2))) static int run_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char *const argv[] = {"/usr/bin/timeout", "-k", "5", "60", "/bin/sh", "-c", cmd, NULL};
    return sbx_test_run_host(argv, screen, sizeof(screen));
}

static char tmux_bin[4096];

static int have_tmux(void)
{
    if (run_sh("command -v tmux") != 0)
        return 0;
    /* The harness execs without a PATH search. */
    size_t n = strcspn(screen, "\n");
    if (n >= sizeof(tmux_bin))
        return 0;
    memcpy(tmux_bin, screen, n);
    tmux_bin[n] = '\0';
    return tmux_bin[0] == '/';
}

/* A pane running a plain shell at 100x30, its settings saved for the final comparison. */
static void start_pane(void)
{
    SBX_TEST_SKIP_UNLESS(have_tmux(), "tmux is not installed (scripts/deps.sh installs it)");
    cr_assert_eq(run_sh("tmux -L %s new-session -d -s t -x 100 -y 30 'env PS1=\"host$ \" "
                        "bash --norc --noprofile'",
                        sock),
                 0, "tmux: %s", screen);
    cr_assert_eq(run_sh("tmux -L %s set-option -g window-size manual", sock), 0);
}

/* Sends one key by its tmux name ("Enter", "C-c"). */
static void keys(const char *k)
{
    char *const argv[] = {tmux_bin, "-L", sock, "send-keys", "-t", "t", (char *)k, NULL};
    cr_assert_eq(sbx_test_run_host(argv, screen, sizeof(screen)), 0, "%s", screen);
}

/* Types a line as is (no shell quoting in between), then Enter. */
static void type_line(const char *line)
{
    char *const argv[] = {tmux_bin, "-L", sock, "send-keys", "-t", "t", "-l", (char *)line,
                          NULL};
    cr_assert_eq(sbx_test_run_host(argv, screen, sizeof(screen)), 0, "%s", screen);
    keys("Enter");
}

/* The whole pane, scrollback included. */
static const char *capture(void)
{
    run_sh("tmux -L %s capture-pane -t t -p -J -S -", sock);
    return screen;
}

/* Waits until the pane shows `text` (count times); fails after 15 s. */
static void wait_for(const char *text, int count)
{
    for (int i = 0; i < 300; i++) {
        const char *s = capture();
        int n = 0;
        for (const char *p = s; (p = strstr(p, text)); p += strlen(text))
            n++;
        if (n >= count)
            return;
        usleep(50000);
    }
    cr_assert_fail("the screen never showed '%s' x%d:\n%s", text, count, capture());
}

Test(tools_shell, a_person_types_interrupts_resizes_and_exits)
{
    start_pane();
    char cmd[4400];
    snprintf(cmd, sizeof(cmd),
             "stty -g > %s/before; %s shell -e PS1=in''ner: ; echo EXIT=$?; "
             "stty -g > %s/after; echo SAVED",
             statedir, sbx_test_bin("sbx"), statedir);
    type_line(cmd);
    /* The prompt of the shell inside (bash or sh), then a command and its output. */
    wait_for("inner:", 1);
    type_line("echo typed $((6 * 7))");
    wait_for("typed 42", 1);
    /* ^C interrupts the foreground command inside, not sbx. */
    type_line("sleep 30; echo not-interrupted");
    usleep(300000);
    keys("C-c");
    type_line("echo after-ctrl-c");
    wait_for("after-ctrl-c", 2);
    cr_expect_null(strstr(capture(), "\nnot-interrupted"), "sleep was not interrupted");
    /* The window size follows ours, at start and after a resize (SIGWINCH forwarded). */
    type_line("stty size");
    wait_for("30 100", 1);
    cr_assert_eq(run_sh("tmux -L %s resize-window -t t -x 120 -y 40", sock), 0, "%s", screen);
    usleep(300000);
    type_line("stty size");
    wait_for("40 120", 1);
    /* The shell inside has a terminal of the sandbox's own devpts. */
    type_line("tty");
    wait_for("/dev/pts/", 1);
    type_line("exit 7");
    wait_for("EXIT=7", 1);
    wait_for("SAVED", 1);
    char diff[4400];
    snprintf(diff, sizeof(diff), "cmp -s %s/before %s/after", statedir, statedir);
    cr_expect_eq(run_sh("%s", diff), 0, "the terminal's settings were not restored");
}

Test(tools_shell, a_signal_restores_the_terminal)
{
    start_pane();
    char cmd[4400];
    snprintf(cmd, sizeof(cmd),
             "stty -g > %s/before; sh -c 'echo $$ > %s/pid; exec %s shell -e PS1=in''ner:'; "
             "echo EXIT=$?; "
             "stty -g > %s/after; echo SAVED",
             statedir, statedir, sbx_test_bin("sbx"), statedir);
    type_line(cmd);
    wait_for("inner:", 1);
    cr_assert_eq(run_sh("kill -TERM $(cat %s/pid)", statedir), 0, "%s", screen);
    wait_for("EXIT=143", 1);
    wait_for("SAVED", 1);
    if (run_sh("cmp -s %s/before %s/after", statedir, statedir) != 0) {
        run_sh("echo before: $(cat %s/before); echo after: $(cat %s/after)", statedir,
               statedir);
        cr_expect_fail("the terminal's settings were not restored after SIGTERM:\n%s", screen);
    }
}

Test(tools_shell, exec_tty_runs_one_command_in_a_session)
{
    start_pane();
    const char *sbx = sbx_test_bin("sbx");
    cr_assert_eq(run_sh("%s create", sbx), 0, "create: %s", screen);
    char id[64];
    snprintf(id, sizeof(id), "%.36s", screen);
    char cmd[4400];
    snprintf(cmd, sizeof(cmd),
             "%s exec --tty %s -- sh -c 'tty; read -r x; echo got-$x; exit 3'; echo EXIT=$?", sbx,
             id);
    type_line(cmd);
    wait_for("/dev/pts/", 1);
    type_line("hello");
    wait_for("got-hello", 1);
    wait_for("EXIT=3", 1);
}
