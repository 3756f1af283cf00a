/* cli_opts.c — option parsing and error reporting shared by subcommands. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

double sbx_cli_parse_seconds(const char *s)
{
    char *end = NULL;
    if (!s || !*s)
        return -1;
    double v = strtod(s, &end);
    if (!end || *end != '\0' || !isfinite(v) || v < 0)
        return -1;
    return v;
}

int sbx_cli_parse_size(const char *s, uint64_t *out)
{
    char *end = NULL;
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    int shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (errno || *end || v == 0 || v > (~0ull >> shift))
        return -1;
    *out = (uint64_t)(v << shift);
    return 0;
}

int sbx_cli_parse_bind(const char *arg, int readonly, sbx_bind *out, char *msg, size_t msg_len)
{
    const char *colon = strchr(arg, ':');
    size_t sl = colon ? (size_t)(colon - arg) : strlen(arg);
    if (sl == 0) {
        snprintf(msg, msg_len, "bind '%s' has no source path", arg);
        return -1;
    }
    char *src = strndup(arg, sl);
    char *dst = colon ? strdup(colon + 1) : NULL;
    if (!src || (colon && !dst)) {
        free(src);
        free(dst);
        snprintf(msg, msg_len, "out of memory");
        return -1;
    }
    if (!dst && src[0] != '/') {
        snprintf(msg, msg_len, "bind '%s' needs an absolute path or SRC:DST", arg);
        free(src);
        return -1;
    }
    if (dst && dst[0] != '/') {
        snprintf(msg, msg_len, "bind destination '%s' must be an absolute path", dst);
        free(src);
        free(dst);
        return -1;
    }
    out->src = src;
    out->dst = dst;
    out->readonly = readonly;
    return 0;
}

void sbx_cli_print_error(const char *what, const sbx_error *e)
{
    fprintf(stderr, "sbx: %s%s%s [%s]\n", what ? what : "", what ? ": " : "",
            sbx_error_message(e), sbx_code_name(sbx_error_code(e)));
}

int sbx_cli_exit_for_error(const sbx_error *e)
{
    switch (sbx_error_code(e)) {
    case SBX_EEXEC_TIMEOUT:
        return SBX_EXIT_TIMEOUT;
    case SBX_EEXEC_TRANSPORT: {
        const char *reason = sbx_error_context_get(e, "reason");
        if (reason && strcmp(reason, "not_found") == 0)
            return SBX_EXIT_NOT_FOUND;
        if (reason && (strcmp(reason, "permission_denied") == 0 ||
                       strcmp(reason, "not_executable") == 0))
            return SBX_EXIT_NOT_EXECUTABLE;
        return SBX_EXIT_SBX_FAILED;
    }
    default:
        return SBX_EXIT_SBX_FAILED;
    }
}

char *sbx_cli_read_file(const char *path, char *msg, size_t msg_len)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(msg, msg_len, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1u << 20;
    char *buf = malloc(cap + 1);
    size_t n = buf ? fread(buf, 1, cap + 1, f) : 0;
    int bad = !buf || ferror(f) || n > cap;
    fclose(f);
    if (bad) {
        snprintf(msg, msg_len, "cannot read '%s' (larger than 1 MiB, or unreadable)", path);
        free(buf);
        return NULL;
    }
    if (memchr(buf, '\0', n)) {
        snprintf(msg, msg_len, "'%s' holds a NUL byte: not a text file", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

int sbx_cli_parse_net(const char *arg, int *mode)
{
    if (!strcmp(arg, "none"))
        *mode = SBX_NET_NONE;
    else if (!strcmp(arg, "proxy"))
        *mode = SBX_NET_PROXY;
    else if (!strcmp(arg, "veth"))
        *mode = SBX_NET_VETH;
    else
        return -1;
    return 0;
}

const char *sbx_cli_net_name(int mode)
{
    return mode == SBX_NET_PROXY ? "proxy" : mode == SBX_NET_VETH ? "veth" : "none";
}
