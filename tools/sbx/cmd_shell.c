/* cmd_shell.c — the user's terminal attached to a new PTY in a sandbox: `sbx shell` and
 * `sbx exec --tty`.
 *
 * The user's terminal fd never enters the sandbox (CVE-2017-5226: a sandboxed process holding
 * it could push input with TIOCSTI and have the user's shell run it after we exit). The
 * sandbox gets a terminal of its own devpts; we copy bytes both ways, so its TIOCSTI, termios
 * and foreground-group games stay on its own terminal.
 *
 * Our terminal goes raw (^C, ^\ and ^Z travel as bytes to the sandbox's line discipline) and
 * is restored on every way out: the normal end, errors, and SIGTERM/SIGHUP/SIGINT/SIGQUIT,
 * whose handlers only write to a self-pipe that the main loop reads. An atexit hook covers
 * any path that exits directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "session_store.h"

static struct termios saved_tio;
static int tio_saved;
static int sig_pipe[2] = {-1, -1};

static void restore_terminal(void)
{
    if (tio_saved) {
        tcsetattr(0, TCSAFLUSH, &saved_tio);
        tio_saved = 0;
    }
}

static void on_signal(int sig)
{
    int e = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* full: a signal of the same kind is already pending */
    }
    errno = e;
}

static const int forwarded[] = {SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT};

static void set_handlers(void (*fn)(int))
{
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        struct sigaction sa = {.sa_handler = fn};
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(forwarded[i], &sa, NULL);
    }
}

static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

struct pump {
    sbx_session *s;
    int id;
    int done_w;
    int exited, exit_code;
};

/* Output: the sandbox's terminal -> our stdout, until the process exits or is killed. */
static void *output_main(void *arg)
{
    struct pump *p = arg;
    static char buf[65536];
    for (;;) {
        size_t n = 0;
        int exited = 0, code = 0;
        if (sbx_pty_read(p->s, p->id, buf, sizeof(buf), 500, &n, &exited, &code, NULL) < 0)
            break;
        if (n)
            write_all(1, buf, n);
        if (exited) {
            p->exited = 1;
            p->exit_code = code;
            break;
        }
    }
    write_all(p->done_w, "x", 1);
    return NULL;
}

static void apply_winsize(sbx_session *s, int id)
{
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col)
        sbx_pty_resize(s, id, ws.ws_row, ws.ws_col, NULL);
}

/* Input and signals until the process is done. Returns the signal that ended us, or 0. */
static int input_loop(sbx_session *s, int id, int done_r)
{
    int in_open = 1;
    for (;;) {
        struct pollfd pf[3] = {{.fd = in_open ? 0 : -1, .events = POLLIN},
                               {.fd = sig_pipe[0], .events = POLLIN},
                               {.fd = done_r, .events = POLLIN}};
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        if (pf[2].revents)
            return 0;
        if (pf[1].revents) {
            unsigned char sig;
            while (read(sig_pipe[0], &sig, 1) == 1) {
                if (sig == SIGWINCH)
                    apply_winsize(s, id);
                else
                    return sig;
            }
        }
        if (pf[0].revents) {
            char buf[4096];
            ssize_t n = read(0, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                /* Our input ended (a pipe): the sandbox's terminal sees ^D, as a person
                 * would send it. */
                sbx_pty_write(s, id, "\x04", 1, NULL);
                in_open = 0;
                continue;
            }
            if (sbx_pty_write(s, id, buf, (size_t)n, NULL) < 0)
                in_open = 0;
        }
    }
}

/* base's environment plus TERM when it has none: the sandbox's terminal is a real one, and
 * programs need TERM to drive it as ours is driven. Returns a malloc'd vector (strings
 * borrowed). */
static const char **env_with_term(const char *const *env)
{
    static char term[256];
    const char *t = getenv("TERM");
    snprintf(term, sizeof(term), "TERM=%s", t && *t ? t : "xterm-256color");
    size_t n = 0;
    int has = 0;
    for (; env && env[n]; n++)
        has |= strncmp(env[n], "TERM=", 5) == 0;
    const char **v = calloc(n + 2, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++)
        v[i] = env[i];
    if (!has)
        v[n] = term;
    return v;
}

int sbx_cli_pty_run(sbx_session *s, const sbx_pty_opts *base)
{
    sbx_pty_opts o = *base;
    const char **env = env_with_term(base->env);
    if (!env) {
        sbx_store_fail("out of memory");
        return SBX_EXIT_SBX_FAILED;
    }
    o.env = env;
    int tty_in = isatty(0);
    struct winsize ws;
    if (tty_in && ioctl(0, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
        o.rows = ws.ws_row;
        o.cols = ws.ws_col;
    }
    o.flags |= SBX_PTY_TTY | SBX_PTY_YIELD;
    o.yield_time_s = 0; /* the minimum: the rest streams */
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        sbx_store_fail("pipe: %s", strerror(errno));
        free(env);
        return SBX_EXIT_SBX_FAILED;
    }
    set_handlers(on_signal);
    if (tty_in && tcgetattr(0, &saved_tio) == 0) {
        tio_saved = 1;
        atexit(restore_terminal);
        struct termios raw = saved_tio;
        cfmakeraw(&raw);
        /* TCSANOW, not TCSAFLUSH: what the person typed ahead belongs to the shell inside. */
        tcsetattr(0, TCSANOW, &raw);
    }
    sbx_pty_update *u = NULL;
    sbx_error *err = NULL;
    int st = 0;
    if (sbx_pty_exec_start(s, &o, &u, &err) < 0) {
        restore_terminal();
        sbx_cli_print_error(NULL, err);
        st = sbx_cli_exit_for_error(err);
        sbx_error_free(err);
        goto out;
    }
    write_all(1, u->output, u->output_len);
    if (u->exited) {
        st = u->exit_code < 0 ? 128 - u->exit_code : u->exit_code;
        sbx_pty_update_free(u);
        goto out;
    }
    int done[2];
    if (pipe2(done, O_CLOEXEC) < 0) {
        sbx_pty_terminate_all(s);
        st = SBX_EXIT_SBX_FAILED;
        sbx_pty_update_free(u);
        goto out;
    }
    struct pump p = {.s = s, .id = u->process_id, .done_w = done[1]};
    sbx_pty_update_free(u);
    /* The output thread takes no signals: they all reach the loop below. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t t;
    int tr = pthread_create(&t, NULL, output_main, &p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int sig = 0;
    if (tr == 0) {
        sig = input_loop(s, p.id, done[0]);
        if (sig)
            sbx_pty_terminate_all(s);
        pthread_join(t, NULL);
    } else {
        sbx_pty_terminate_all(s);
    }
    close(done[0]);
    close(done[1]);
    restore_terminal();
    if (sig)
        st = 128 + sig;
    else if (p.exited)
        st = p.exit_code < 0 ? 128 - p.exit_code : p.exit_code;
    else
        st = SBX_EXIT_SBX_FAILED;
out:
    restore_terminal();
    set_handlers(SIG_DFL);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    sig_pipe[0] = sig_pipe[1] = -1;
    free(env);
    return st;
}

static const char shell_usage[] =
    "usage: sbx shell [options] [SESSION] [-- CMD [ARGS...]]\n"
    "\n"
    "Attaches this terminal to an interactive shell (or CMD) on a new terminal inside SESSION,\n"
    "or inside a new throwaway sandbox when no SESSION is given. The terminal is raw while\n"
    "attached (^C reaches the sandbox) and restored afterwards; window resizes are forwarded.\n"
    "\n"
    "options:\n"
    "  -u, --user USER        sandbox (default), root, a manifest user, or a uid\n"
    "  -C, --cwd DIR          working directory inside (default: the workspace)\n"
    "  -e, --env K=V          set an environment variable (repeatable)\n"
    "  -h, --help             show this help\n"
    "\n"
    "exit status: the shell's own; 128+N if it was killed by signal N; 125 if sbx failed.\n";

#define SHELL_MAX_ENV 64

int sbx_cmd_shell(int argc, char **argv)
{
    static const struct option longs[] = {
        {"user", required_argument, NULL, 'u'}, {"cwd", required_argument, NULL, 'C'},
        {"env", required_argument, NULL, 'e'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    sbx_pty_opts o = SBX_PTY_OPTS_INIT;
    const char *env[SHELL_MAX_ENV + 2];
    size_t n_env = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+u:C:e:h", longs, NULL)) != -1) {
        switch (c) {
        case 'u':
            o.user = optarg;
            break;
        case 'C':
            o.cwd = optarg;
            break;
        case 'e':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return sbx_cli_usage_error("shell", "--env '%s' is not of the form K=V", optarg);
            if (n_env == SHELL_MAX_ENV)
                return sbx_cli_usage_error("shell", "too many --env (at most %d)",
                                           SHELL_MAX_ENV);
            env[n_env++] = optarg;
            break;
        case 'h':
            fputs(shell_usage, stdout);
            return 0;
        default:
            return sbx_cli_usage_error("shell", "unknown or incomplete option '%s'",
                                       argv[optind - 1]);
        }
    }
    env[n_env] = NULL;
    o.env = env;
    const char *session = NULL;
    if (optind < argc && strcmp(argv[optind], "--") != 0)
        session = argv[optind++];
    if (optind < argc && strcmp(argv[optind], "--") == 0)
        optind++;
    static const char *const default_shell[] = {
        "if command -v bash >/dev/null 2>&1; then exec bash -i; else exec sh -i; fi", NULL};
    if (optind < argc) {
        o.argv = (const char *const *)argv + optind;
        o.shell = SBX_SHELL_NONE;
    } else {
        o.argv = default_shell;
        o.shell = SBX_SHELL_SH;
    }
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    if (session) {
        struct sbx_store_rec *r = NULL;
        int lock = -1;
        if (sbx_store_open(session, 0, &r, &lock) < 0)
            return SBX_EXIT_SBX_FAILED;
        int rc = sbx_store_attach(r, 0, &s);
        sbx_store_unlock(lock);
        sbx_store_rec_free(r);
        if (rc < 0)
            return SBX_EXIT_SBX_FAILED;
    } else {
        sbx_session_opts so = SBX_SESSION_OPTS_INIT;
        so.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
        if (sbx_session_new(&so, &s, &err) < 0 || sbx_session_start(s, &err) < 0) {
            sbx_cli_print_error(NULL, err);
            sbx_error_free(err);
            sbx_session_free(s);
            return SBX_EXIT_SBX_FAILED;
        }
    }
    int st = sbx_cli_pty_run(s, &o);
    if (!session)
        sbx_session_shutdown(s, NULL);
    sbx_session_free(s);
    return st;
}
