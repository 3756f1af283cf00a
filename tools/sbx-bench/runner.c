/* runner.c — measures one case: opens every variant, runs warm-up then measured iterations
 * interleaved across the variants (A B C A B C ...), so a drift of the machine (frequency,
 * caches, another tenant) lands on all of them alike instead of on whichever ran last.
 *
 * Only run() is timed, with CLOCK_MONOTONIC; opening a variant (finding programs, starting a
 * session) and the --gap-ms sleep are not. A variant whose run fails is closed and reported
 * with the reason; the others go on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "util.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
        ;
}

static void progress(const struct bench_case *c, const struct bench_variant *v, int it,
                     const struct bench_settings *s)
{
    int measured = it >= s->warmup;
    fprintf(stderr, "\r\033[K%s  %-10s %s %d/%d", c->name, v->name, measured ? "run" : "warm-up",
            measured ? it - s->warmup + 1 : it + 1, measured ? s->runs : s->warmup);
}

static void open_variant(const struct bench_case *c, size_t i, const struct bench_settings *s,
                         struct bench_result *r, void **state)
{
    const struct bench_variant *v = &c->variants[i];
    memset(r, 0, sizeof(*r));
    r->bcase = c;
    r->variant = v;
    r->status = BENCH_FAILED;
    *state = NULL;
    r->samples_ms = calloc((size_t)s->runs, sizeof(*r->samples_ms));
    if (!r->samples_ms) {
        bench_why(r->why, "out of memory");
        return;
    }
    int rc = v->ops->open(v, c->cmd, state, r->why);
    if (rc == 0)
        r->status = BENCH_MEASURED;
    else if (rc == BENCH_ABSENT)
        r->status = BENCH_NOT_INSTALLED;
    if (rc != 0)
        *state = NULL;
}

/* One run of one variant; on failure the variant is closed and the reason kept. */
static void run_once(const struct bench_settings *s, int it, struct bench_result *r, void **state)
{
    char why[BENCH_WHY_LEN] = "";
    int measured = it >= s->warmup;
    if (r->variant->ops->reset)
        r->variant->ops->reset(*state);
    if (measured && s->gap_ms > 0)
        sleep_ms(s->gap_ms);
    uint64_t t0 = sbx__now_ns();
    int rc = r->variant->ops->run(*state, why);
    double ms = sbx__ms_since(t0);
    if (rc < 0) {
        bench_why(r->why, "%s %d: %s", measured ? "run" : "warm-up run",
                  measured ? it - s->warmup + 1 : it + 1, why);
        r->status = BENCH_FAILED;
        r->variant->ops->close(*state);
        *state = NULL;
        return;
    }
    if (measured)
        r->samples_ms[r->runs++] = ms;
}

static void summarize(size_t n, struct bench_result *out)
{
    for (size_t i = 0; i < n; i++) {
        struct bench_result *r = &out[i];
        if (r->status == BENCH_MEASURED && r->runs > 0)
            bench_stats(r->samples_ms, (size_t)r->runs, &r->median_ms, &r->min_ms, &r->max_ms);
    }
    const struct bench_result *base = &out[0];
    for (size_t i = 0; i < n; i++) {
        if (out[i].status == BENCH_MEASURED && base->status == BENCH_MEASURED &&
            base->median_ms > 0)
            out[i].ratio = out[i].median_ms / base->median_ms;
    }
}

int bench_run_case(const struct bench_case *c, const struct bench_settings *settings,
                   struct bench_result *out)
{
    struct bench_settings capped = *settings;
    if (c->max_runs > 0 && capped.runs > c->max_runs)
        capped.runs = settings->quick ? 2 : c->max_runs;
    if (c->max_runs > 0 && capped.warmup > 1)
        capped.warmup = settings->quick ? 0 : 1;
    const struct bench_settings *s = &capped;
    void **state = calloc(c->n_variants, sizeof(*state));
    if (!state)
        return -1;
    for (size_t i = 0; i < c->n_variants; i++)
        open_variant(c, i, s, &out[i], &state[i]);
    for (int it = 0; it < s->warmup + s->runs; it++) {
        for (size_t i = 0; i < c->n_variants; i++) {
            if (!state[i])
                continue;
            if (s->progress)
                progress(c, &c->variants[i], it, s);
            run_once(s, it, &out[i], &state[i]);
        }
    }
    if (s->progress)
        fprintf(stderr, "\r\033[K");
    for (size_t i = 0; i < c->n_variants; i++) {
        if (state[i])
            c->variants[i].ops->close(state[i]);
    }
    free(state);
    summarize(c->n_variants, out);
    return 0;
}

void bench_result_release(struct bench_result *r)
{
    free(r->samples_ms);
    r->samples_ms = NULL;
}
