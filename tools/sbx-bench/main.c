/* main.c — sbx-bench: how long sbx takes to start a command, against plain fork+exec and
 * other sandboxes on the same machine in the same run. Options, the table of cases, and the
 * order in which they run. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Every case, in the order they run. A new case is a new entry here (see bench.h). */
static const struct bench_case *const cases[] = {
    &bench_case_cold_true,
    &bench_case_cold_sh_echo,
    &bench_case_cold_layers,
    &bench_case_seccomp_attach,
    &bench_case_warm_true,
    &bench_case_files_write_1k,
    &bench_case_files_read_1k,
    &bench_case_files_write_1m,
    &bench_case_files_read_1m,
    &bench_case_ws_persist,
    &bench_case_ws_hydrate,
    &bench_case_thru_seq,
    &bench_case_thru_par,
    &bench_case_pty_line,
    &bench_case_events_exec,
    &bench_case_net_connect,
    &bench_case_net_1g,
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

#define DEFAULT_RUNS   50
#define QUICK_RUNS     15
#define DEFAULT_WARMUP 5
#define QUICK_WARMUP   3

struct cli {
    struct bench_settings s;
    int json;
    const char *only_case;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sbx-bench [options]\n"
            "\n"
            "Measures how long a command takes to start under sbx, against plain fork+exec and\n"
            "the other sandboxes installed here (unshare, bwrap, firejail), interleaving the\n"
            "variants of each case. A peer that is not installed is reported as absent.\n"
            "\n"
            "options:\n"
            "      --runs N      measured runs per variant (default %d)\n"
            "      --warmup N    untimed runs before them (default %d)\n"
            "      --gap-ms M    sleep M ms before each measured run (default 0)\n"
            "      --quick       %d runs after %d warm-up, unless --runs/--warmup say otherwise\n"
            "      --case NAME   only this case (see --list)\n"
            "      --list        list the cases and exit\n"
            "      --json        print one JSON object instead of the table\n"
            "  -h, --help        show this help\n"
            "\n"
            "exit status: 0 when every variant present was measured, 1 when one failed, 2 on a\n"
            "usage error.\n",
            DEFAULT_RUNS, DEFAULT_WARMUP, QUICK_RUNS, QUICK_WARMUP);
}

/* A whole number in [min, max], or -1. */
static long parse_count(const char *s, long min, long max)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return -1;
    return v;
}

static int find_case(const char *name)
{
    if (strcmp(name, "density") == 0)
        return 0;
    for (size_t i = 0; i < N_CASES; i++) {
        if (strcmp(cases[i]->name, name) == 0)
            return 0;
    }
    fprintf(stderr, "sbx-bench: no case named '%s' (see --list)\n", name);
    return -1;
}

/* 0 to run, 1 when done (--help, --list), 2 on a usage error. */
static int parse(int argc, char **argv, struct cli *c)
{
    enum { O_RUNS = 256, O_WARMUP, O_GAP, O_QUICK, O_CASE, O_LIST, O_JSON };
    static const struct option longs[] = {{"runs", required_argument, NULL, O_RUNS},
                                          {"warmup", required_argument, NULL, O_WARMUP},
                                          {"gap-ms", required_argument, NULL, O_GAP},
                                          {"quick", no_argument, NULL, O_QUICK},
                                          {"case", required_argument, NULL, O_CASE},
                                          {"list", no_argument, NULL, O_LIST},
                                          {"json", no_argument, NULL, O_JSON},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    int runs = -1, warmup = -1, quick = 0, ch, idx = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "h", longs, &idx)) != -1) {
        switch (ch) {
        case O_RUNS:
            runs = (int)parse_count(optarg, 1, 100000);
            if (runs < 0)
                goto bad_value;
            break;
        case O_WARMUP:
            warmup = (int)parse_count(optarg, 0, 100000);
            if (warmup < 0)
                goto bad_value;
            break;
        case O_GAP:
            c->s.gap_ms = (int)parse_count(optarg, 0, 600000);
            if (c->s.gap_ms < 0)
                goto bad_value;
            break;
        case O_QUICK:
            quick = 1;
            break;
        case O_CASE:
            if (find_case(optarg) < 0)
                return 2;
            c->only_case = optarg;
            break;
        case O_LIST:
            for (size_t i = 0; i < N_CASES; i++)
                printf("%-14s %s\n", cases[i]->name, cases[i]->title);
            printf("%-14s %s\n", "density", "idle sessions per GiB, start time of the last");
            return 1;
        case O_JSON:
            c->json = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            fprintf(stderr, "sbx-bench: unknown or incomplete option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sbx-bench: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    c->s.runs = runs >= 0 ? runs : quick ? QUICK_RUNS : DEFAULT_RUNS;
    c->s.warmup = warmup >= 0 ? warmup : quick ? QUICK_WARMUP : DEFAULT_WARMUP;
    c->s.quick = quick;
    c->s.progress = isatty(STDERR_FILENO);
    return 0;
bad_value:
    fprintf(stderr, "sbx-bench: --%s '%s' is not a whole number in range (see --help)\n",
            longs[idx].name, optarg);
    return 2;
}

static int selected_name(const struct cli *c, const char *name)
{
    return !c->only_case || strcmp(c->only_case, name) == 0;
}

static int selected(const struct cli *c, const struct bench_case *bc)
{
    return !c->only_case || strcmp(c->only_case, bc->name) == 0;
}

int main(int argc, char **argv)
{
    /* The TCP server of the net cases, run on the host and inside a session (cases_net.c). */
    if (argc > 1 && strcmp(argv[1], "--net-server") == 0)
        return bench_net_server(argc - 2, argv + 2);
    struct cli c;
    memset(&c, 0, sizeof(c));
    int r = parse(argc, argv, &c);
    if (r != 0)
        return r == 1 ? 0 : r;

    size_t n = 0;
    for (size_t i = 0; i < N_CASES; i++)
        n += selected(&c, cases[i]) ? cases[i]->n_variants : 0;
    struct bench_result *res = calloc(n, sizeof(*res));
    if (!res) {
        fprintf(stderr, "sbx-bench: out of memory\n");
        return 1;
    }
    struct bench_machine m;
    bench_machine_read(&m);

    int status = 0;
    size_t k = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        if (!selected(&c, cases[i]))
            continue;
        if (bench_run_case(cases[i], &c.s, &res[k]) < 0) {
            fprintf(stderr, "sbx-bench: out of memory\n");
            status = 1;
            break;
        }
        k += cases[i]->n_variants;
    }
    struct bench_density dens;
    int with_density = status == 0 && selected_name(&c, "density");
    if (with_density) {
        bench_density_run(&c.s, &dens);
        if (!dens.measured)
            status = 1;
    }
    if (status == 0 || with_density) {
        for (size_t i = 0; i < n; i++) {
            if (res[i].status == BENCH_FAILED)
                status = 1;
        }
        if (c.json)
            bench_report_json(&m, &c.s, res, n, with_density ? &dens : NULL);
        else
            bench_report_table(&m, &c.s, res, n, with_density ? &dens : NULL);
    }
    for (size_t i = 0; i < n; i++)
        bench_result_release(&res[i]);
    free(res);
    return status;
}
