/* bench.h — sbx-bench: the table of cases, the variants each case compares, and the pieces the
 * runner and the report share.
 *
 * A case is one thing to measure (a command, started a certain way); its variants are the ways
 * of doing it that are compared. The first variant of every case is its baseline: each
 * variant's median is reported as a ratio to the baseline's. A variant is a small ops table
 * (open once, run many times, close) plus data of its own, so a new peer or a new kind of
 * measurement is a new ops table or a new row, and the runner does not change.
 */
#ifndef SBX_BENCH_H
#define SBX_BENCH_H

#include <stddef.h>

/* A reason a variant was not measured or failed: one line, shown to people and in JSON. */
#define BENCH_WHY_LEN 512

/* What open() returns besides 0 (ready) and -1 (failed, reason in `why`). */
#define BENCH_ABSENT 1 /* the peer is not installed: reported as absent, never timed */

struct bench_variant;

struct bench_ops {
    /* Prepares the variant for `cmd` (NULL-terminated, borrowed for the whole case): finds
     * the programs, starts a session, ... Untimed. Returns 0 with *state set, BENCH_ABSENT or
     * -1, with the reason in `why` for both. */
    int (*open)(const struct bench_variant *v, const char *const *cmd, void **state, char *why);
    /* One run, the thing that is timed. 0, or -1 with the reason in `why` (a non-zero exit
     * is a failure, not a timing). */
    int (*run)(void *state, char *why);
    /* Optional, untimed, before every run: puts things back (truncates an output, removes
     * what the previous run made). */
    void (*reset)(void *state);
    /* Releases what open() made; called once for every state open() returned. */
    void (*close)(void *state);
};

struct bench_variant {
    const char *name; /* "fork+exec", "bwrap", "sbx run", ... */
    const struct bench_ops *ops;
    const void *data; /* the ops' own description of the variant */
};

struct bench_case {
    const char *name;                     /* stable id, used in JSON and by --case: "cold_true" */
    const char *title;                    /* for people: "cold start: /bin/true" */
    const char *const *cmd;               /* the command every variant runs */
    const struct bench_variant *variants; /* the first is the baseline */
    size_t n_variants;
    int max_runs;                         /* cap on measured runs (slow cases); 0: none */
    int ops_per_run;                      /* throughput cases: commands per run (then the
                                             report adds commands per second) */
};

/* cases_cold.c and cases_warm.c; the table itself is in main.c. */
extern const struct bench_case bench_case_cold_true;
extern const struct bench_case bench_case_cold_sh_echo;
extern const struct bench_case bench_case_cold_layers;
extern const struct bench_case bench_case_seccomp_attach; /* cases_seccomp.c */
extern const struct bench_case bench_case_warm_true;
extern const struct bench_case bench_case_files_write_1k;
extern const struct bench_case bench_case_files_read_1k;
extern const struct bench_case bench_case_files_write_1m;
extern const struct bench_case bench_case_files_read_1m;
extern const struct bench_case bench_case_ws_persist;
extern const struct bench_case bench_case_ws_hydrate;
extern const struct bench_case bench_case_thru_seq;
extern const struct bench_case bench_case_thru_par;
extern const struct bench_case bench_case_pty_line;
extern const struct bench_case bench_case_events_exec;
/* cases_net.c: exposed ports, and the server they measure (sbx-bench --net-server MODE PORT). */
extern const struct bench_case bench_case_net_connect;
extern const struct bench_case bench_case_net_1g;
int bench_net_server(int argc, char **argv);

/* cases_throughput.c: commands per run of a throughput case (0 for the others). */
int bench_ops_per_run(const struct bench_case *c);

struct json_object;
struct bench_settings;

/* density.c: how many idle sessions fit in memory, and how long the last of many takes to
 * start. Not a timed case: sessions are started one after the other and kept. */
struct bench_density {
    int measured;
    char why[BENCH_WHY_LEN];
    int sessions;
    double kib_per_session;   /* memory per idle session, kernel and user */
    const char *method;       /* "cgroup" (usage of a memory cgroup of sbx-bench's own) or
                                 "MemAvailable" (machine-wide, when no cgroup was usable) */
    double agent_pss_kib;     /* of which the agent process's own proportional set size */
    double sessions_per_gib;
    double first_start_ms, last_start_ms, median_start_ms;
};
void bench_density_run(const struct bench_settings *s, struct bench_density *d);
void bench_density_table(const struct bench_density *d);
struct json_object *bench_density_json(const struct bench_density *d);

/* spawn.c: runs the case's command as a child process with stdin, stdout and stderr on
 * /dev/null, and waits for it. With data NULL the command runs as is (the plain fork+exec
 * baseline); with a struct bench_wrapper it runs under that program. */
extern const struct bench_ops bench_spawn_ops;

struct bench_wrapper {
    const char *program;     /* looked up in PATH; absent when not found */
    int beside_self;         /* look in sbx-bench's own directory first */
    const char *const *args; /* NULL-terminated: between the program and the command */
};
/* cases_cold.c: bwrap with isolation comparable to sbx's, and the sbx built alongside. */
extern const struct bench_wrapper bench_bwrap_wrapper;
extern const struct bench_wrapper bench_sbx_run_wrapper;
/* cases_warm.c: the case's command in a session started once (libsbx); thread-safe run(). */
extern const struct bench_ops bench_session_exec_ops;

struct bench_settings {
    int runs;     /* measured iterations per variant */
    int warmup;   /* untimed iterations before them */
    int gap_ms;   /* idle sleep before each measured run */
    int progress; /* a progress line on stderr */
    int quick;    /* --quick: slow cases (max_runs) run twice, without warm-up */
};

enum bench_status { BENCH_MEASURED, BENCH_NOT_INSTALLED, BENCH_FAILED };

/* What one variant of one case came to. */
struct bench_result {
    const struct bench_case *bcase;
    const struct bench_variant *variant;
    enum bench_status status;
    char why[BENCH_WHY_LEN]; /* absent or failed: the reason */
    double *samples_ms;      /* `runs` of them when measured */
    int runs;
    double median_ms, min_ms, max_ms;
    double ratio; /* median / baseline median; 0 when there is none */
};

/* runner.c: measures every variant of `c`, interleaved (A B C A B C ...). `out` has
 * c->n_variants entries. Returns 0, or -1 when out of memory. */
int bench_run_case(const struct bench_case *c, const struct bench_settings *s,
                   struct bench_result *out);
void bench_result_release(struct bench_result *r);

/* stats.c: median, min and max of n > 0 samples (the array is sorted in place). */
void bench_stats(double *samples, size_t n, double *median, double *min, double *max);

/* machine.c */
struct bench_machine {
    long nproc;
    char kernel[128];
    char cpu_model[256]; /* "" when /proc/cpuinfo does not name one */
};
void bench_machine_read(struct bench_machine *m);

/* report.c */
void bench_report_table(const struct bench_machine *m, const struct bench_settings *s,
                        const struct bench_result *r, size_t n, const struct bench_density *d);
int bench_report_json(const struct bench_machine *m, const struct bench_settings *s,
                      const struct bench_result *r, size_t n, const struct bench_density *d);

/* why.c */
/* Formats into a reason buffer of BENCH_WHY_LEN bytes; returns -1, for `return bench_why(...)`. */
__attribute__((format(printf, 2, 3))) int bench_why(char *why, const char *fmt, ...);
/* "exited with status N" or "killed by signal N (NAME)", then ": " and the first non-empty
 * line of `err` (what the command printed on stderr) when there is one. Returns -1. */
int bench_why_exit(char *why, int exit_code, int term_signal, const char *err, size_t err_len);

#endif
