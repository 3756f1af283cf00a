/* cases_pty.c — one line through a terminal and back: `cat` on a raw openpty on the host (the
 * baseline) against `cat` on a PTY of a running session, through the library's streaming
 * calls (sbx_pty_write / sbx_pty_read). A run writes "ping\n" and reads until the echo and
 * cat's copy ("ping\r\nping\r\n") are back. */
#include <errno.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/sbx.h>

#include "bench.h"

#define LINE  "ping\n"
#define BACK  12 /* "ping\r\nping\r\n" */

struct raw_state {
    int master;
    pid_t child;
};

static void raw_close(void *state)
{
    struct raw_state *st = state;
    if (!st)
        return;
    kill(st->child, SIGKILL);
    waitpid(st->child, NULL, 0);
    close(st->master);
    free(st);
}

static int raw_open(const struct bench_variant *v, const char *const *cmd, void **state,
                    char *why)
{
    (void)v;
    (void)cmd;
    struct raw_state *st = calloc(1, sizeof(*st));
    int sl = -1;
    if (!st || openpty(&st->master, &sl, NULL, NULL, NULL) < 0) {
        free(st);
        return bench_why(why, "openpty: %s", strerror(errno));
    }
    st->child = fork();
    if (st->child == 0) {
        setsid();
        ioctl(sl, TIOCSCTTY, 0);
        dup2(sl, 0);
        dup2(sl, 1);
        dup2(sl, 2);
        close(st->master);
        execl("/bin/cat", "cat", (char *)NULL);
        _exit(127);
    }
    close(sl);
    *state = st;
    return 0;
}

static int raw_run(void *state, char *why)
{
    struct raw_state *st = state;
    char buf[256];
    if (write(st->master, LINE, strlen(LINE)) != (ssize_t)strlen(LINE))
        return bench_why(why, "write: %s", strerror(errno));
    for (size_t got = 0; got < BACK;) {
        ssize_t n = read(st->master, buf + got, sizeof(buf) - got);
        if (n <= 0)
            return bench_why(why, "read: %s", n < 0 ? strerror(errno) : "EOF");
        got += (size_t)n;
    }
    return 0;
}

struct pty_state {
    sbx_session *s;
    int id;
};

static void pty_sbx_close(void *state)
{
    struct pty_state *st = state;
    if (!st)
        return;
    sbx_session_free(st->s); /* kills the PTY process too */
    free(st);
}

static int pty_sbx_open(const struct bench_variant *v, const char *const *cmd, void **state,
                    char *why)
{
    (void)v;
    (void)cmd;
    struct pty_state *st = calloc(1, sizeof(*st));
    if (!st)
        return bench_why(why, "out of memory");
    sbx_session_opts so = SBX_SESSION_OPTS_INIT;
    so.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    sbx_error *err = NULL;
    const char *argv[] = {"cat", NULL};
    sbx_pty_opts o = SBX_PTY_OPTS_INIT;
    o.argv = argv;
    o.shell = SBX_SHELL_NONE;
    o.flags = SBX_PTY_TTY | SBX_PTY_YIELD;
    o.yield_time_s = 0.25;
    sbx_pty_update *u = NULL;
    if (sbx_session_new(&so, &st->s, &err) < 0 || sbx_session_start(st->s, &err) < 0 ||
        sbx_pty_exec_start(st->s, &o, &u, &err) < 0) {
        bench_why(why, "starting cat on a PTY: %s", sbx_error_message(err));
        sbx_error_free(err);
        pty_sbx_close(st);
        return -1;
    }
    st->id = u->process_id;
    sbx_pty_update_free(u);
    *state = st;
    return 0;
}

static int pty_sbx_run(void *state, char *why)
{
    struct pty_state *st = state;
    char buf[256];
    sbx_error *err = NULL;
    if (sbx_pty_write(st->s, st->id, LINE, strlen(LINE), &err) < 0)
        goto fail;
    for (size_t got = 0; got < BACK;) {
        size_t n = 0;
        if (sbx_pty_read(st->s, st->id, buf + got, sizeof(buf) - got, 5000, &n, NULL, NULL,
                         &err) < 0)
            goto fail;
        if (n == 0)
            return bench_why(why, "no output within 5 s");
        got += n;
    }
    return 0;
fail:
    bench_why(why, "%s", sbx_error_message(err));
    sbx_error_free(err);
    return -1;
}

static const struct bench_ops raw_ops = {.open = raw_open, .run = raw_run, .close = raw_close};
static const struct bench_ops pty_ops = {.open = pty_sbx_open, .run = pty_sbx_run, .close = pty_sbx_close};

static const struct bench_variant pty_variants[] = {
    {.name = "openpty", .ops = &raw_ops},
    {.name = "sbx pty", .ops = &pty_ops},
};

const struct bench_case bench_case_pty_line = {
    .name = "pty_line",
    .title = "PTY: one line through cat and back",
    .variants = pty_variants,
    .n_variants = 2,
};
