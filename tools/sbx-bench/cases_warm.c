/* cases_warm.c — warm exec: a command in a session that is already running (libsbx, started
 * once before anything is timed), against the same command started plainly. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/sbx.h>

#include "bench.h"

extern char **environ;

struct session_state {
    sbx_session *s;
    sbx_exec_opts xo;
};

static int why_sbx(char *why, const char *what, sbx_error *err)
{
    bench_why(why, "%s: %s (%s)", what, err ? sbx_error_message(err) : "unknown error",
              sbx_code_name(err ? sbx_error_code(err) : 0));
    sbx_error_free(err);
    return -1;
}

static void session_close(void *state)
{
    struct session_state *st = state;
    if (!st)
        return;
    sbx_session_free(st->s);
    free(st);
}

static int session_open(const struct bench_variant *v, const char *const *cmd, void **state,
                        char *why)
{
    (void)v;
    sbx_session_opts so = SBX_SESSION_OPTS_INIT;
    sbx_error *err = NULL;
    struct session_state *st = calloc(1, sizeof(*st));
    if (!st)
        return bench_why(why, "out of memory");
    if (sbx_session_new(&so, &st->s, &err) < 0 || sbx_session_start(st->s, &err) < 0) {
        session_close(st);
        return why_sbx(why, "starting the session", err);
    }
    st->xo = (sbx_exec_opts)SBX_EXEC_OPTS_INIT;
    st->xo.argv = cmd;
    st->xo.shell = SBX_SHELL_NONE;
    *state = st;
    return 0;
}

static int session_run(void *state, char *why)
{
    struct session_state *st = state;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    if (sbx_session_exec(st->s, &st->xo, &r, &err) < 0)
        return why_sbx(why, "sbx_session_exec", err);
    int rc = 0;
    if (r->exit_code != 0)
        rc = bench_why_exit(why, r->exit_code, r->term_signal, (const char *)r->err, r->err_len);
    sbx_exec_result_free(r);
    return rc;
}

const struct bench_ops bench_session_exec_ops = {
    .open = session_open,
    .run = session_run,
    .close = session_close,
};

/* `sbx exec ID -- CMD` from the CLI, against a session made with `sbx create` in a state
 * directory of sbx-bench's own (removed at close). */
struct cli_state {
    char statedir[64];
    char id[64];
    char *argv[16];
    void *spawn; /* bench_spawn_ops state running `sbx exec ID -- CMD` */
    struct bench_wrapper wrapper;
    const char *args[8];
};

static int run_sbx(const char *sbx, char *const argv[], char *out, size_t cap)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    pid_t pid;
    int r = posix_spawn(&pid, sbx, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (r == 0 && len + 1 < cap && (n = read(p[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int status = 0;
    if (r == 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    return r == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int sbx_path(char *path, size_t cap)
{
    char self[PATH_MAX + 8];
    ssize_t n = readlink("/proc/self/exe", self, PATH_MAX - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    memcpy(slash, "/sbx", 5);
    if (strlen(self) >= cap)
        return -1;
    memcpy(path, self, strlen(self) + 1);
    return access(path, X_OK);
}

static void cli_close(void *state)
{
    struct cli_state *st = state;
    if (!st)
        return;
    if (st->spawn)
        bench_spawn_ops.close(st->spawn);
    char sbx[PATH_MAX], out[256];
    if (st->id[0] && sbx_path(sbx, sizeof(sbx)) == 0) {
        char *argv[] = {sbx, "rm", "-f", st->id, NULL};
        run_sbx(sbx, argv, out, sizeof(out));
    }
    if (st->statedir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", st->statedir);
        if (system(cmd) != 0)
            fprintf(stderr, "sbx-bench: could not remove %s\n", st->statedir);
    }
    unsetenv("SBX_STATE_DIR");
    free(st);
}

static int cli_open(const struct bench_variant *v, const char *const *cmd, void **state,
                    char *why)
{
    (void)v;
    char sbx[PATH_MAX], out[256];
    if (sbx_path(sbx, sizeof(sbx)) < 0)
        return bench_why(why, "sbx not found next to sbx-bench"), BENCH_ABSENT;
    struct cli_state *st = calloc(1, sizeof(*st));
    if (!st)
        return bench_why(why, "out of memory");
    snprintf(st->statedir, sizeof(st->statedir), "/tmp/sbx-bench-state-XXXXXX");
    if (!mkdtemp(st->statedir)) {
        st->statedir[0] = '\0';
        cli_close(st);
        return bench_why(why, "mkdtemp: %s", strerror(errno));
    }
    setenv("SBX_STATE_DIR", st->statedir, 1);
    char *create[] = {sbx, "create", NULL};
    if (run_sbx(sbx, create, out, sizeof(out)) < 0) {
        cli_close(st);
        return bench_why(why, "sbx create failed");
    }
    snprintf(st->id, sizeof(st->id), "%.*s", (int)strcspn(out, "\n"), out);
    st->args[0] = "exec";
    st->args[1] = st->id;
    st->args[2] = "--";
    st->wrapper = (struct bench_wrapper){.program = "sbx", .beside_self = 1, .args = st->args};
    struct bench_variant inner = {.name = "sbx exec (CLI)", .ops = &bench_spawn_ops,
                                  .data = &st->wrapper};
    int r = bench_spawn_ops.open(&inner, cmd, &st->spawn, why);
    if (r != 0) {
        cli_close(st);
        return r;
    }
    *state = st;
    return 0;
}

static int cli_run(void *state, char *why)
{
    struct cli_state *st = state;
    return bench_spawn_ops.run(st->spawn, why);
}

static const struct bench_ops cli_exec_ops = {.open = cli_open, .run = cli_run, .close = cli_close};

static const struct bench_variant warm_variants[] = {
    {.name = "fork+exec", .ops = &bench_spawn_ops, .data = NULL},
    {.name = "sbx exec", .ops = &bench_session_exec_ops, .data = NULL},
    {.name = "sbx exec CLI", .ops = &cli_exec_ops, .data = NULL},
};

static const char *const true_cmd[] = {"/bin/true", NULL};

const struct bench_case bench_case_warm_true = {
    .name = "warm_true",
    .title = "warm exec in a running session: /bin/true",
    .cmd = true_cmd,
    .variants = warm_variants,
    .n_variants = sizeof(warm_variants) / sizeof(warm_variants[0]),
};
