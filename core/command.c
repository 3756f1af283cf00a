/* command.c — how exec's command parts become the argv (spec SESSION.md §4.2).
 *
 * shell=SH (default): one part is passed verbatim to `sh -c`; several parts are quoted the
 * way Python's shlex.join does (a part made only of [A-Za-z0-9_@%+=:,./-] stays bare, others
 * are single-quoted with each ' written as '"'"', the empty part becomes '') and joined with
 * spaces. shell=CUSTOM: shell_argv + [joined]. shell=NONE: the parts as they are.
 * The spec's Python reference uses `sh -lc`; sbx uses `sh -c` (unix_local's choice): a login
 * shell would read profile files the sandbox does not have.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "error_internal.h"
#include "util.h"

static int safe_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("_@%+=:,./-", c) != NULL;
}

char *sbx__shell_quote(const char *s)
{
    size_t n = strlen(s);
    int bare = n > 0;
    size_t quotes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!safe_char(s[i]))
            bare = 0;
        if (s[i] == '\'')
            quotes++;
    }
    if (bare)
        return strdup(s);
    char *r = malloc(n + quotes * 4 + 3);
    if (!r)
        return NULL;
    char *p = r;
    *p++ = '\'';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'') {
            memcpy(p, "'\"'\"'", 5);
            p += 5;
        } else {
            *p++ = s[i];
        }
    }
    *p++ = '\'';
    *p = '\0';
    return r;
}

static char *join_quoted(const char *const *parts, size_t n)
{
    if (n == 1)
        return strdup(parts[0]);
    size_t total = 1;
    char **q = calloc(n, sizeof(*q));
    if (!q)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        q[i] = sbx__shell_quote(parts[i]);
        if (!q[i])
            goto fail;
        total += strlen(q[i]) + 1;
    }
    char *r = malloc(total);
    if (!r)
        goto fail;
    char *p = r;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(q[i]);
        if (i)
            *p++ = ' ';
        memcpy(p, q[i], l);
        p += l;
    }
    *p = '\0';
    for (size_t i = 0; i < n; i++)
        free(q[i]);
    free(q);
    return r;
fail:
    for (size_t i = 0; i < n; i++)
        free(q[i]);
    free(q);
    return NULL;
}

int sbx_exec_build_argv(const sbx_exec_opts *o, char ***out, sbx_error **err)
{
    *out = NULL;
    size_t n = o ? sbx__strv_len(o->argv) : 0;
    if (n == 0)
        return sbx_err(err, SBX_EINVAL, 0, "exec", "exec needs a command (argv is empty)");
    if (o->shell == SBX_SHELL_NONE) {
        *out = sbx__strv_dup(o->argv);
        return *out ? 0 : sbx_err(err, SBX_ENOMEM, 0, "exec", "out of memory");
    }
    const char *const sh[] = {"sh", "-c", NULL};
    const char *const *prefix = sh;
    if (o->shell == SBX_SHELL_CUSTOM) {
        if (sbx__strv_len(o->shell_argv) == 0)
            return sbx_err(err, SBX_EINVAL, 0, "exec",
                           "shell=SBX_SHELL_CUSTOM needs a non-empty shell_argv");
        prefix = o->shell_argv;
    } else if (o->shell != SBX_SHELL_SH) {
        return sbx_err(err, SBX_EINVAL, 0, "exec", "unknown shell mode %d", o->shell);
    }
    size_t np = sbx__strv_len(prefix);
    char **v = calloc(np + 2, sizeof(*v));
    if (!v)
        return sbx_err(err, SBX_ENOMEM, 0, "exec", "out of memory");
    for (size_t i = 0; i < np; i++)
        if (!(v[i] = strdup(prefix[i])))
            goto oom;
    if (!(v[np] = join_quoted(o->argv, n)))
        goto oom;
    *out = v;
    return 0;
oom:
    sbx__strv_free(v);
    return sbx_err(err, SBX_ENOMEM, 0, "exec", "out of memory");
}

void sbx_strv_free(char **v)
{
    sbx__strv_free(v);
}
