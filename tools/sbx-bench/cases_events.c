/* cases_events.c — what audit events cost: exec of /bin/true in a running session without
 * events (the baseline), with a callback sink that only looks at each line (building the
 * events, no I/O), with a JSONL file sink, and with a JSONL sink that includes the output and
 * redacts it by regular expression.
 *
 * All variants run in one session: sessions differ among themselves by a few percent (where
 * their processes landed, their caches), more than what is measured here. Before each run
 * (untimed) the variant binds its own events to the shared session, or none. The JSONL
 * file lives in a temporary directory removed at close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sbx/sbx.h>

#include "bench.h"

enum { EV_NONE, EV_CALLBACK, EV_JSONL, EV_REDACT };

/* The session every variant runs in: made by the first open, freed by the last close. */
static sbx_session *shared;
static int shared_refs;

struct ev_state {
    sbx_session *s;
    sbx_events *ev;
    sbx_exec_opts xo;
    char dir[64], path[128];
    size_t seen; /* bytes the callback sink saw */
};

static void ev_close(void *state)
{
    struct ev_state *st = state;
    if (!st)
        return;
    if (st->s) {
        sbx_session_set_events(st->s, NULL, NULL);
        if (--shared_refs == 0) {
            sbx_session_free(shared);
            shared = NULL;
        }
    }
    sbx_events_free(st->ev);
    if (st->path[0])
        unlink(st->path);
    if (st->dir[0])
        rmdir(st->dir);
    free(st);
}

/* Touches the line, as a sink that forwards it would. */
static int ev_callback(const sbx_event *ev, sbx_session *s, void *userdata)
{
    (void)s;
    *(volatile size_t *)userdata += strlen(sbx_event_json(ev));
    return 0;
}

static int ev_open(const struct bench_variant *v, const char *const *cmd, void **state,
                   char *why)
{
    int kind = *(const int *)v->data;
    struct ev_state *st = calloc(1, sizeof(*st));
    if (!st)
        return bench_why(why, "out of memory");
    sbx_error *err = NULL;
    sbx_session_opts so = SBX_SESSION_OPTS_INIT;
    so.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    if (kind == EV_CALLBACK) {
        sbx_event_sink *k = NULL;
        if (sbx_events_new(NULL, &st->ev, &err) < 0 ||
            sbx_event_sink_callback(ev_callback, &st->seen, NULL, &k, &err) < 0 ||
            sbx_events_add_sink(st->ev, k, &err) < 0)
            goto fail;
    } else if (kind != EV_NONE) {
        snprintf(st->dir, sizeof(st->dir), "/tmp/sbx-bench-events-XXXXXX");
        if (!mkdtemp(st->dir)) {
            st->dir[0] = '\0';
            ev_close(st);
            return bench_why(why, "mkdtemp failed");
        }
        snprintf(st->path, sizeof(st->path), "%s/events.jsonl", st->dir);
        static const char *const redact[] = {"sk-[A-Za-z0-9]{20,}", "AKIA[0-9A-Z]{16}", NULL};
        sbx_payload_policy pol = {.set = SBX_POLICY_EXEC_OUTPUT | SBX_POLICY_REDACT,
                                  .include_exec_output = 1,
                                  .redact = redact};
        sbx_sink_opts ko = SBX_SINK_OPTS_INIT;
        if (kind == EV_REDACT)
            ko.policy = &pol;
        sbx_event_sink *k = NULL;
        if (sbx_events_new(NULL, &st->ev, &err) < 0 ||
            sbx_event_sink_jsonl(st->path, &ko, &k, &err) < 0 ||
            sbx_events_add_sink(st->ev, k, &err) < 0)
            goto fail;
    }
    if (!shared && (sbx_session_new(&so, &shared, &err) < 0 ||
                    sbx_session_start(shared, &err) < 0)) {
        sbx_session_free(shared);
        shared = NULL;
        goto fail;
    }
    st->s = shared;
    shared_refs++;
    st->xo = (sbx_exec_opts)SBX_EXEC_OPTS_INIT;
    st->xo.argv = cmd;
    st->xo.shell = SBX_SHELL_NONE;
    *state = st;
    return 0;
fail:
    bench_why(why, "%s", sbx_error_message(err));
    sbx_error_free(err);
    ev_close(st);
    return -1;
}

/* Untimed, before every run: this variant's events (or none) on the shared session. */
static void ev_reset(void *state)
{
    struct ev_state *st = state;
    sbx_session_set_events(st->s, st->ev, NULL);
}

static int ev_run(void *state, char *why)
{
    struct ev_state *st = state;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    if (sbx_session_exec(st->s, &st->xo, &r, &err) < 0) {
        bench_why(why, "%s", sbx_error_message(err));
        sbx_error_free(err);
        return -1;
    }
    int rc = r->exit_code ? bench_why_exit(why, r->exit_code, r->term_signal,
                                           (const char *)r->err, r->err_len)
                          : 0;
    sbx_exec_result_free(r);
    return rc;
}

static const struct bench_ops ev_ops = {
    .open = ev_open, .run = ev_run, .reset = ev_reset, .close = ev_close};
static const int k_none = EV_NONE, k_callback = EV_CALLBACK, k_jsonl = EV_JSONL,
                 k_redact = EV_REDACT;

static const struct bench_variant ev_variants[] = {
    {.name = "no events", .ops = &ev_ops, .data = &k_none},
    {.name = "callback", .ops = &ev_ops, .data = &k_callback},
    {.name = "jsonl", .ops = &ev_ops, .data = &k_jsonl},
    {.name = "jsonl+redact", .ops = &ev_ops, .data = &k_redact},
};

static const char *const true_cmd[] = {"/bin/true", NULL};

const struct bench_case bench_case_events_exec = {
    .name = "events_exec",
    .title = "warm exec of /bin/true with audit events",
    .cmd = true_cmd,
    .variants = ev_variants,
    .n_variants = 4,
};
