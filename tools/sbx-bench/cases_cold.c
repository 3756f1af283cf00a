/* cases_cold.c — cold start: a one-shot command in a fresh sandbox each time, against the same
 * command started plainly. Each peer gets isolation comparable to what `sbx run` sets up (new
 * user, pid, mount and network namespaces at least) and nothing it does not need. */
#include <stddef.h>

#include "bench.h"

static const char *const unshare_args[] = {"-Urpfn", "--mount-proc", NULL};
static const struct bench_wrapper unshare_wrapper = {.program = "unshare", .args = unshare_args};

/* A root of read-only /usr with Debian's usr-merge links, private /proc, minimal /dev and a
 * tmpfs /tmp: close to the root sbx assembles. */
/* clang-format off: one option and its operands a line */
static const char *const bwrap_args[] = {"--unshare-all",
                                         "--die-with-parent",
                                         "--new-session",
                                         "--ro-bind",
                                         "/usr",
                                         "/usr",
                                         "--symlink",
                                         "usr/bin",
                                         "/bin",
                                         "--symlink",
                                         "usr/sbin",
                                         "/sbin",
                                         "--symlink",
                                         "usr/lib",
                                         "/lib",
                                         "--symlink",
                                         "usr/lib64",
                                         "/lib64",
                                         "--proc",
                                         "/proc",
                                         "--dev",
                                         "/dev",
                                         "--tmpfs",
                                         "/tmp",
                                         NULL};
/* clang-format on */
const struct bench_wrapper bench_bwrap_wrapper = {.program = "bwrap", .args = bwrap_args};

static const char *const firejail_args[] = {"--noprofile", "--net=none", "--quiet", NULL};
static const struct bench_wrapper firejail_wrapper = {.program = "firejail", .args = firejail_args};

/* The sbx built alongside sbx-bench, so a benchmark measures the tree it was built from. */
static const char *const sbx_run_args[] = {"run", "--", NULL};
const struct bench_wrapper bench_sbx_run_wrapper = {
    .program = "sbx", .beside_self = 1, .args = sbx_run_args};

static const struct bench_variant cold_variants[] = {
    {.name = "fork+exec", .ops = &bench_spawn_ops, .data = NULL},
    {.name = "unshare", .ops = &bench_spawn_ops, .data = &unshare_wrapper},
    {.name = "bwrap", .ops = &bench_spawn_ops, .data = &bench_bwrap_wrapper},
    {.name = "firejail", .ops = &bench_spawn_ops, .data = &firejail_wrapper},
    {.name = "sbx run", .ops = &bench_spawn_ops, .data = &bench_sbx_run_wrapper},
};
#define N_COLD (sizeof(cold_variants) / sizeof(cold_variants[0]))

static const char *const true_cmd[] = {"/bin/true", NULL};
static const char *const sh_echo_cmd[] = {"sh", "-c", "echo hi", NULL};

/* Every cold case compares the same variants; only the command differs. */
#define COLD_CASE(id, what, command)                                                               \
    {                                                                                              \
        .name = (id), .title = "cold start: " what, .cmd = (command), .variants = cold_variants,   \
        .n_variants = N_COLD                                                                       \
    }

const struct bench_case bench_case_cold_true = COLD_CASE("cold_true", "/bin/true", true_cmd);
const struct bench_case bench_case_cold_sh_echo =
    COLD_CASE("cold_sh_echo", "sh -c 'echo hi'", sh_echo_cmd);

/* What the layers cost: `sbx run -- /bin/true` as is (seccomp filter, no cgroup), with a
 * policy that denies nothing (so no filter is loaded), and with cgroup limits (a session
 * cgroup made, the agent placed in it, removed at the end). Run it with --gap-ms 300 too:
 * placing a process into a v1 cgroup after the machine idled is what costs. */
static const char *const sbx_run_noseccomp_args[] = {"run", "--seccomp", "/dev/null", "--",
                                                     NULL};
static const struct bench_wrapper sbx_run_noseccomp = {
    .program = "sbx", .beside_self = 1, .args = sbx_run_noseccomp_args};
static const char *const sbx_run_cgroup_args[] = {"run", "--pids", "1024", "--memory", "1G",
                                                  "--", NULL};
static const struct bench_wrapper sbx_run_cgroup = {
    .program = "sbx", .beside_self = 1, .args = sbx_run_cgroup_args};

static const struct bench_variant layer_variants[] = {
    {.name = "sbx run", .ops = &bench_spawn_ops, .data = &bench_sbx_run_wrapper},
    {.name = "no seccomp", .ops = &bench_spawn_ops, .data = &sbx_run_noseccomp},
    {.name = "+cgroup", .ops = &bench_spawn_ops, .data = &sbx_run_cgroup},
};

const struct bench_case bench_case_cold_layers = {
    .name = "cold_layers",
    .title = "cold start: sbx run -- /bin/true, without seccomp, with cgroup limits",
    .cmd = true_cmd,
    .variants = layer_variants,
    .n_variants = sizeof(layer_variants) / sizeof(layer_variants[0]),
};
