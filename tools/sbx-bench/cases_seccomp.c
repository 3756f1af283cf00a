/* cases_seccomp.c — what attaching a seccomp filter costs the kernel, without sbx around it.
 *
 * A command's filter is loaded in its own process before execve, once per command in a
 * one-shot `sbx run`. This case times a bare fork, no_new_privs, attach, exit and wait, with
 * no filter (the baseline), a one-instruction filter (the kernel's fixed cost: allocating,
 * converting and JIT-compiling a program, building its per-syscall cache) and sbx's built-in
 * policy as `sbx run` loads it, so the difference between the last two is what the policy's
 * size adds. `cold_layers` shows the same cost inside whole `sbx run`s.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern const unsigned char sbx__default_bpf[];
extern const size_t sbx__default_bpf_len;

enum filter_kind { NO_FILTER, ONE_INSN, DEFAULT_POLICY };

static const enum filter_kind kinds[] = {NO_FILTER, ONE_INSN, DEFAULT_POLICY};

struct attach_state {
    struct sock_fprog prog; /* .len 0: no filter */
};

static struct sock_filter allow_all[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};

static struct attach_state states[3];

static int attach_open(const struct bench_variant *v, const char *const *cmd, void **state,
                       char *why)
{
    (void)cmd;
    (void)why;
    enum filter_kind k = *(const enum filter_kind *)v->data;
    struct attach_state *st = &states[k];
    if (k == ONE_INSN)
        st->prog = (struct sock_fprog){.len = 1, .filter = allow_all};
    else if (k == DEFAULT_POLICY)
        st->prog = (struct sock_fprog){.len = (unsigned short)(sbx__default_bpf_len / 8),
                                       .filter = (struct sock_filter *)sbx__default_bpf};
    else
        st->prog = (struct sock_fprog){.len = 0};
    *state = st;
    return 0;
}

static int attach_run(void *state, char *why)
{
    const struct attach_state *st = state;
    pid_t pid = fork();
    if (pid < 0)
        return bench_why(why, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
            _exit(2);
        if (st->prog.len && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0u, &st->prog) < 0)
            _exit(3);
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return bench_why(why, "waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return bench_why(why, "the child could not %s",
                         WIFEXITED(status) && WEXITSTATUS(status) == 3 ? "attach the filter"
                                                                        : "set no_new_privs");
    return 0;
}

static void attach_close(void *state)
{
    (void)state;
}

static const struct bench_ops attach_ops = {
    .open = attach_open, .run = attach_run, .close = attach_close};

static const struct bench_variant attach_variants[] = {
    {.name = "no filter", .ops = &attach_ops, .data = &kinds[NO_FILTER]},
    {.name = "1 instruction", .ops = &attach_ops, .data = &kinds[ONE_INSN]},
    {.name = "sbx default", .ops = &attach_ops, .data = &kinds[DEFAULT_POLICY]},
};

static const char *const no_cmd[] = {NULL};

const struct bench_case bench_case_seccomp_attach = {
    .name = "seccomp_attach",
    .title = "seccomp: fork, attach a filter, exit (no sandbox)",
    .cmd = no_cmd,
    .variants = attach_variants,
    .n_variants = sizeof(attach_variants) / sizeof(attach_variants[0]),
};
