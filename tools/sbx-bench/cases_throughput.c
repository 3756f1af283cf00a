/* cases_throughput.c — sandboxed commands per second: a batch of /bin/true, one after the
 * other (thru_seq) or from as many threads as there are CPUs at once (thru_par), for plain
 * fork+exec, bubblewrap, `sbx run`, and exec in one running session. A run is one batch; the
 * report turns its median into commands per second.
 *
 * Each variant wraps an existing one (spawn.c, cases_warm.c): it is opened once and its run()
 * called per command, from several threads for thru_par (posix_spawn and sbx_session_exec are
 * both safe to call concurrently on one state).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define PER_THREAD 8

struct batch {
    const struct bench_ops *inner;
    const void *inner_data;
    int parallel;
};

struct batch_state {
    const struct batch *b;
    void *inner;
    int threads;
};

struct worker {
    struct batch_state *st;
    int count, failed;
    char why[BENCH_WHY_LEN];
};

static int threads_for(int parallel)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return parallel ? (n > 0 ? (int)n : 1) : 1;
}

static int batch_open(const struct bench_variant *v, const char *const *cmd, void **state,
                      char *why)
{
    const struct batch *b = v->data;
    struct batch_state *st = calloc(1, sizeof(*st));
    if (!st)
        return bench_why(why, "out of memory");
    struct bench_variant inner = {.name = v->name, .ops = b->inner, .data = b->inner_data};
    int r = b->inner->open(&inner, cmd, &st->inner, why);
    if (r != 0) {
        free(st);
        return r;
    }
    st->b = b;
    st->threads = threads_for(b->parallel);
    *state = st;
    return 0;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->count && !w->failed; i++)
        if (w->st->b->inner->run(w->st->inner, w->why) < 0)
            w->failed = 1;
    return NULL;
}

static int batch_run(void *state, char *why)
{
    struct batch_state *st = state;
    struct worker w[64];
    pthread_t t[64];
    int n = st->threads > 64 ? 64 : st->threads;
    int started = 0;
    for (int i = 0; i < n; i++) {
        w[i] = (struct worker){.st = st, .count = PER_THREAD};
        if (n == 1) {
            work(&w[i]);
            started = 1;
        } else if (pthread_create(&t[i], NULL, work, &w[i]) == 0) {
            started++;
        } else {
            w[i].failed = 1;
            strcpy(w[i].why, "cannot start a thread");
        }
    }
    for (int i = 0; n > 1 && i < started; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < n; i++)
        if (w[i].failed)
            return bench_why(why, "%s", w[i].why);
    return 0;
}

static void batch_close(void *state)
{
    struct batch_state *st = state;
    if (!st)
        return;
    st->b->inner->close(st->inner);
    free(st);
}

static const struct bench_ops batch_ops = {.open = batch_open, .run = batch_run, .close = batch_close};

#define BATCHES(par)                                                                           \
    static const struct batch plain_##par = {.inner = &bench_spawn_ops, .parallel = par};      \
    static const struct batch bwrap_##par = {                                                  \
        .inner = &bench_spawn_ops, .inner_data = &bench_bwrap_wrapper, .parallel = par};       \
    static const struct batch sbx_run_##par = {                                                \
        .inner = &bench_spawn_ops, .inner_data = &bench_sbx_run_wrapper, .parallel = par};     \
    static const struct batch sbx_exec_##par = {.inner = &bench_session_exec_ops,              \
                                                .parallel = par};                              \
    static const struct bench_variant variants_##par[] = {                                     \
        {.name = "fork+exec", .ops = &batch_ops, .data = &plain_##par},                        \
        {.name = "bwrap", .ops = &batch_ops, .data = &bwrap_##par},                            \
        {.name = "sbx run", .ops = &batch_ops, .data = &sbx_run_##par},                        \
        {.name = "sbx exec", .ops = &batch_ops, .data = &sbx_exec_##par},                      \
    }

BATCHES(0);
BATCHES(1);

static const char *const true_cmd[] = {"/bin/true", NULL};

const struct bench_case bench_case_thru_seq = {
    .name = "thru_seq",
    .title = "throughput: 8 x /bin/true, one after the other",
    .cmd = true_cmd,
    .variants = variants_0,
    .n_variants = 4,
    .max_runs = 15,
    .ops_per_run = PER_THREAD,
};

/* ops_per_run is set for a 2-CPU machine in the title; the JSON's commands_per_s uses the
 * real thread count (bench_case_thru_par_ops). */
const struct bench_case bench_case_thru_par = {
    .name = "thru_par",
    .title = "throughput: 8 x /bin/true from each of N threads (N = CPUs)",
    .cmd = true_cmd,
    .variants = variants_1,
    .n_variants = 4,
    .max_runs = 15,
    .ops_per_run = -1, /* PER_THREAD x CPUs, resolved at run time (runner.c) */
};

int bench_ops_per_run(const struct bench_case *c)
{
    return c->ops_per_run < 0 ? PER_THREAD * threads_for(1) : c->ops_per_run;
}
