/* cases_warm.c — warm exec: a command in a session that is already running (libsbx, started
 * once before anything is timed), against the same command started plainly. */
#include <stdlib.h>

#include <sbx/sbx.h>

#include "bench.h"

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

static const struct bench_variant warm_variants[] = {
    {.name = "fork+exec", .ops = &bench_spawn_ops, .data = NULL},
    {.name = "sbx exec", .ops = &bench_session_exec_ops, .data = NULL},
};

static const char *const true_cmd[] = {"/bin/true", NULL};

const struct bench_case bench_case_warm_true = {
    .name = "warm_true",
    .title = "warm exec in a running session: /bin/true",
    .cmd = true_cmd,
    .variants = warm_variants,
    .n_variants = sizeof(warm_variants) / sizeof(warm_variants[0]),
};
