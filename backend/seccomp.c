/* seccomp.c — compiles a policy (struct sbx_sc_policy) to classic BPF with libseccomp, for
 * the agent to load into each command just before execve (after no_new_privs).
 *
 * Only the native architecture is in the filter, and a system call made through any other
 * ABI (i386 via int $0x80, x32 on x86_64) kills the process: a filter written for one ABI's
 * numbers says nothing about another's, which is how filters have been bypassed.
 * The program is compiled once per session on the host, so the agent stays libc-only and a
 * command pays only for loading it.
 */
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ns.h"

static uint32_t sc_action(int action, int errnum)
{
    switch (action) {
    case SBX_SC_ERRNO:
        return SCMP_ACT_ERRNO((uint32_t)errnum);
    case SBX_SC_KILL:
        return SCMP_ACT_KILL_PROCESS;
    case SBX_SC_LOG:
        return SCMP_ACT_LOG;
    default:
        return SCMP_ACT_ALLOW;
    }
}

static const enum scmp_compare sc_ops[] = {SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT,       SCMP_CMP_LE,
                                           SCMP_CMP_GT, SCMP_CMP_GE, SCMP_CMP_MASKED_EQ};

static int add_rule(scmp_filter_ctx ctx, const struct sbx_sc_rule *r, sbx_error **err)
{
    int nr = seccomp_syscall_resolve_name(r->syscall);
    if (nr == __NR_SCMP_ERROR) {
        sbx_err(err, SBX_EINVAL, 0, "start", "seccomp policy line %u: unknown system call '%s'",
                r->line, r->syscall);
        sbx_err_ctx(err, "line", "%u", r->line);
        return SBX_EINVAL;
    }
    uint32_t act = sc_action(r->action, r->errnum);
    struct scmp_arg_cmp cmp[SBX_SC_MAX_CONDS];
    for (unsigned i = 0; i < r->n_conds; i++) {
        const struct sbx_sc_cond *c = &r->conds[i];
        cmp[i] = (struct scmp_arg_cmp){.arg = c->arg,
                                       .op = sc_ops[c->op],
                                       .datum_a = c->op == SBX_SC_MASKED_EQ ? c->mask : c->value,
                                       .datum_b = c->op == SBX_SC_MASKED_EQ ? c->value : 0};
    }
    /* _exact: a rule must mean what it says on this architecture, not a rewritten variant. */
    int rc = seccomp_rule_add_exact_array(ctx, act, nr, r->n_conds, cmp);
    if (rc < 0) {
        sbx_err(err, SBX_EINVAL, -rc, "start", "seccomp policy line %u: rule for '%s' rejected",
                r->line, r->syscall);
        sbx_err_ctx(err, "line", "%u", r->line);
        return SBX_EINVAL;
    }
    return 0;
}

static int export_bpf(scmp_filter_ctx ctx, unsigned char **out, size_t *len, sbx_error **err)
{
    int fd = memfd_create("sbx-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "memfd for the seccomp filter");
    int rc = seccomp_export_bpf(ctx, fd);
    off_t size = rc == 0 ? lseek(fd, 0, SEEK_END) : -1;
    unsigned char *buf = size > 0 ? malloc((size_t)size) : NULL;
    if (!buf || pread(fd, buf, (size_t)size, 0) != size) {
        free(buf);
        close(fd);
        return sbx_err(err, SBX_EBACKEND, rc < 0 ? -rc : EIO, "start",
                       "export the seccomp filter");
    }
    close(fd);
    *out = buf;
    *len = (size_t)size;
    return 0;
}

int sbx__seccomp_compile(const struct sbx_sc_policy *p, unsigned char **out, size_t *len,
                         sbx_error **err)
{
    if (p->default_action == SBX_SC_ALLOW && p->n_rules == 0) {
        /* A policy that denies nothing loads no filter: the foreign-ABI kill only guards rules,
         * and there are none. */
        *out = NULL;
        *len = 0;
        return 0;
    }
    scmp_filter_ctx ctx = seccomp_init(sc_action(p->default_action, p->default_errnum));
    if (!ctx)
        return sbx_err(err, SBX_ENOMEM, 0, "start", "seccomp_init");
    int r = 0;
    /* A binary tree of system call numbers instead of a list: the kernel emulates the
     * filter for every syscall number when it is loaded (to cache "always allowed" ones),
     * and a command's every call walks it, so depth matters more than size. */
    if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0 ||
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0 ||
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
        r = sbx_err(err, SBX_EBACKEND, 0, "start", "configure the seccomp filter");
    for (size_t i = 0; r == 0 && i < p->n_rules; i++)
        r = add_rule(ctx, &p->rules[i], err);
    if (r == 0)
        r = export_bpf(ctx, out, len, err);
    seccomp_release(ctx);
    /* The kernel loads at most BPF_MAXINSNS (4096) instructions: fail here, naming the
     * cause, rather than at every command. */
    if (r == 0 && *len / 8 > 4096) {
        free(*out);
        *out = NULL;
        return sbx_err(err, SBX_EINVAL, 0, "start",
                       "seccomp policy compiles to %zu instructions, more than the kernel's 4096",
                       *len / 8);
    }
    return r;
}
