/* seccomp_policy.c — seccomp policies as text: the built-in default, the parser, and the
 * printer. The format (docs/seccomp.md):
 *
 *   # comment
 *   default allow
 *   errno:EPERM keyctl
 *   errno:EPERM clone arg0 &0x10000000 == 0x10000000
 *   kill mount
 *
 * One rule per line: an action (allow, kill, log, errno:NAME or errno:NUMBER), a system call
 * name, and up to six conditions `argN OP VALUE` (OP one of == != < <= > >=) or
 * `argN &MASK == VALUE`. Conditions of one rule must all hold; rules for one system call are
 * alternatives. The backend turns it into BPF with libseccomp.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "error_internal.h"

static const struct {
    const char *name;
    int value;
} errnos[] = {{"EPERM", EPERM},   {"ENOSYS", ENOSYS}, {"EACCES", EACCES},
              {"EINVAL", EINVAL}, {"ENOTSUP", ENOTSUP}, {"EOPNOTSUPP", EOPNOTSUPP},
              {"EAFNOSUPPORT", EAFNOSUPPORT}, {"EPROTONOSUPPORT", EPROTONOSUPPORT}};

static const char *errno_name(int e)
{
    for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
        if (errnos[i].value == e)
            return errnos[i].name;
    return NULL;
}

static int parse_action(const char *w, int *action, int *errnum)
{
    *errnum = 0;
    if (strcmp(w, "allow") == 0)
        *action = SBX_SC_ALLOW;
    else if (strcmp(w, "kill") == 0)
        *action = SBX_SC_KILL;
    else if (strcmp(w, "log") == 0)
        *action = SBX_SC_LOG;
    else if (strncmp(w, "errno:", 6) == 0) {
        *action = SBX_SC_ERRNO;
        const char *e = w + 6;
        for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
            if (strcmp(e, errnos[i].name) == 0)
                *errnum = errnos[i].value;
        if (!*errnum) {
            char *end = NULL;
            long v = strtol(e, &end, 10);
            if (!*e || *end || v <= 0 || v > 4095)
                return -1;
            *errnum = (int)v;
        }
    } else
        return -1;
    return 0;
}

/* Decimal, or hexadecimal with 0x: never octal, whatever a leading 0 says to strtoull. */
static int parse_u64(const char *w, uint64_t *v)
{
    char *end = NULL;
    errno = 0;
    int hex = w[0] == '0' && (w[1] == 'x' || w[1] == 'X');
    unsigned long long x = strtoull(w, &end, hex ? 16 : 10);
    if (!*w || *end || errno || w[0] == '-')
        return -1;
    *v = x;
    return 0;
}

static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};

/* Parses conditions from words[0..n); returns the number of words used or -1. */
static int parse_cond(char **w, int n, struct sbx_sc_cond *c)
{
    if (n < 3 || strncmp(w[0], "arg", 3) != 0 || w[0][3] < '0' || w[0][3] > '5' || w[0][4])
        return -1;
    c->arg = (unsigned)(w[0][3] - '0');
    c->mask = ~0ull;
    if (w[1][0] == '&') {
        if (n < 4 || parse_u64(w[1] + 1, &c->mask) < 0 || strcmp(w[2], "==") != 0 ||
            parse_u64(w[3], &c->value) < 0)
            return -1;
        c->op = SBX_SC_MASKED_EQ;
        return 4;
    }
    for (int i = 0; i < 6; i++)
        if (strcmp(w[1], ops[i]) == 0) {
            c->op = i;
            return parse_u64(w[2], &c->value) < 0 ? -1 : 3;
        }
    return -1;
}

/* strtok_r: sessions are created from any thread (sbx_session_new is "any thread"). */
static int split(char *line, char **w, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
        w[n++] = t;
    return n;
}

static int bad(sbx_error **err, unsigned line, const char *what, const char *text)
{
    sbx_err(err, SBX_EINVAL, 0, "start", "seccomp policy line %u: %s: '%s'", line, what, text);
    sbx_err_ctx(err, "line", "%u", line);
    return SBX_EINVAL;
}

static int parse_line(char *line, unsigned no, struct sbx_sc_policy *p, size_t *cap,
                      sbx_error **err)
{
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", line);
    char *w[32];
    int n = split(line, w, 32);
    if (n == 0)
        return 0;
    if (strcmp(w[0], "default") == 0) {
        if (n != 2 || parse_action(w[1], &p->default_action, &p->default_errnum) < 0)
            return bad(err, no, "expected 'default ACTION'", copy);
        return 0;
    }
    struct sbx_sc_rule r = {.line = no};
    if (parse_action(w[0], &r.action, &r.errnum) < 0)
        return bad(err, no, "unknown action (allow, kill, log, errno:NAME)", copy);
    if (n < 2 || strlen(w[1]) >= sizeof(r.syscall))
        return bad(err, no, "expected a system call name", copy);
    for (const char *c = w[1]; *c; c++)
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '_')
            return bad(err, no, "not a system call name", copy);
    strcpy(r.syscall, w[1]);
    for (int i = 2; i < n;) {
        if (r.n_conds == SBX_SC_MAX_CONDS)
            return bad(err, no, "more than 6 conditions", copy);
        int used = parse_cond(w + i, n - i, &r.conds[r.n_conds++]);
        if (used < 0)
            return bad(err, no, "expected 'argN OP VALUE' or 'argN &MASK == VALUE'", copy);
        i += used;
    }
    if (p->n_rules == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct sbx_sc_rule *nr = realloc(p->rules, ncap * sizeof(*nr));
        if (!nr)
            return sbx_err(err, SBX_ENOMEM, 0, "start", "out of memory");
        p->rules = nr;
        *cap = ncap;
    }
    p->rules[p->n_rules++] = r;
    return 0;
}

/* A rule whose action is the default's would do nothing (libseccomp refuses it), and
 * cannot carve an exception out of another rule: say so instead of dropping it. */
static int check_rules(const struct sbx_sc_policy *p, sbx_error **err)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct sbx_sc_rule *r = &p->rules[i];
        if (r->action == p->default_action &&
            (r->action != SBX_SC_ERRNO || r->errnum == p->default_errnum))
            return bad(err, r->line, "the rule's action is the default's, so it would do nothing",
                       r->syscall);
    }
    return 0;
}

int sbx__sc_parse(const char *text, int allow_ptrace, struct sbx_sc_policy *out,
                  sbx_error **err)
{
    memset(out, 0, sizeof(*out));
    out->default_action = SBX_SC_ALLOW;
    size_t cap = 0;
    unsigned no = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        no++;
        char line[512];
        if (len >= sizeof(line)) {
            sbx__sc_free(out);
            return bad(err, no, "line too long", "");
        }
        memcpy(line, p, len);
        line[len] = '\0';
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        int r = parse_line(line, no, out, &cap, err);
        if (r < 0) {
            sbx__sc_free(out);
            return r;
        }
        p += len + (nl ? 1 : 0);
    }
    int rc = check_rules(out, err);
    if (rc < 0) {
        sbx__sc_free(out);
        return rc;
    }
    if (allow_ptrace) { /* the debugger switch: drop the rules that stop tracing */
        size_t k = 0;
        for (size_t i = 0; i < out->n_rules; i++) {
            const char *n = out->rules[i].syscall;
            if (strcmp(n, "ptrace") && strcmp(n, "process_vm_readv") &&
                strcmp(n, "process_vm_writev") && strcmp(n, "pidfd_getfd") &&
                strcmp(n, "kcmp") && strcmp(n, "process_madvise"))
                out->rules[k++] = out->rules[i];
        }
        out->n_rules = k;
    }
    return 0;
}

void sbx__sc_free(struct sbx_sc_policy *p)
{
    free(p->rules);
    p->rules = NULL;
    p->n_rules = 0;
}

static void put_action(FILE *f, int action, int errnum)
{
    static const char *const names[] = {"allow", "errno", "kill", "log"};
    if (action != SBX_SC_ERRNO) {
        fputs(names[action], f);
        return;
    }
    const char *n = errno_name(errnum);
    if (n)
        fprintf(f, "errno:%s", n);
    else
        fprintf(f, "errno:%d", errnum);
}

char *sbx__sc_print(const struct sbx_sc_policy *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fputs("default ", f);
    put_action(f, p->default_action, p->default_errnum);
    fputc('\n', f);
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct sbx_sc_rule *r = &p->rules[i];
        put_action(f, r->action, r->errnum);
        fprintf(f, " %s", r->syscall);
        for (unsigned c = 0; c < r->n_conds; c++) {
            const struct sbx_sc_cond *k = &r->conds[c];
            if (k->op == SBX_SC_MASKED_EQ)
                fprintf(f, " arg%u &0x%llx == 0x%llx", k->arg, (unsigned long long)k->mask,
                        (unsigned long long)k->value);
            else
                fprintf(f, " arg%u %s 0x%llx", k->arg, ops[k->op],
                        (unsigned long long)k->value);
        }
        fputc('\n', f);
    }
    fclose(f);
    return buf;
}
