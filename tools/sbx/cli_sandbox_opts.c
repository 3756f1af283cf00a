/* cli_sandbox_opts.c — the sandbox options `sbx run` and `sbx create` share: hostname, seccomp,
 * process and file limits, cgroup limits, the workspace quota and the network mode.
 *
 * Each is checked here once and recorded in the JSON form a session record keeps (its
 * "opts"); sbx_store_opts_apply() (session_store.c) turns that into sbx_session_opts, for a
 * one-shot run as for a session created, started or attached later. */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_LIST 64

/* A whole number in [lo, hi] into *v; -1 if malformed or out of range. */
static int parse_count(const char *arg, unsigned long lo, unsigned long hi, unsigned long *v)
{
    char *end = NULL;
    *v = strtoul(arg, &end, 10);
    return *arg && !*end && *v >= lo && *v <= hi ? 0 : -1;
}

static void put_int(json_object *opts, const char *key, uint64_t v)
{
    json_object_object_add(opts, key, json_object_new_int64((int64_t)v));
}

__attribute__((format(printf, 3, 4))) static int bad(char *msg, size_t cap, const char *fmt,
                                                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* Appends arg to the array opts[key] (made when missing); -1 past MAX_LIST. */
static int push(json_object *opts, const char *key, const char *arg)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(opts, key, &v)) {
        v = json_object_new_array();
        json_object_object_add(opts, key, v);
    }
    if (json_object_array_length(v) >= MAX_LIST)
        return -1;
    json_object_array_add(v, json_object_new_string(arg));
    return 0;
}

/* The options that are one number: a count in [lo, hi], or a size (K, M, G) of at least lo. */
static const struct number_opt {
    int c;
    int is_size;
    const char *key, *flag, *what; /* "--nproc '%s' is not WHAT" */
    uint64_t lo, hi;
} number_opts[] = {
    {SBX_CLI_O_NPROC, 0, "nproc", "--nproc", "a number of processes (1 to 4194304)", 1, 4194304},
    {SBX_CLI_O_PIDS, 0, "pids_max", "--pids", "a number of processes (1 to 4194304)", 1, 4194304},
    {SBX_CLI_O_NOFILE, 0, "nofile", "--nofile", "a number of open files (16 to 1048576)", 16,
     1048576},
    {SBX_CLI_O_IO_WEIGHT, 0, "io_weight", "--io-weight", "a weight from 1 to 10000", 1, 10000},
    {SBX_CLI_O_TMPFS, 1, "tmpfs_bytes", "--tmpfs-size", "a size (like 4096, 64K, 512M, 2G)", 0,
     INT64_MAX},
    {SBX_CLI_O_MEMORY, 1, "memory_bytes", "--memory", "a size (like 512M, 2G)", 0, INT64_MAX},
    {SBX_CLI_O_FSIZE, 1, "fsize_bytes", "--fsize", "a size (like 64M, 1G)", 0, INT64_MAX},
    {SBX_CLI_O_IO_READ, 1, "io_read_bps", "--io-read-bps",
     "a rate in bytes per second (like 10M)", 0, INT64_MAX},
    {SBX_CLI_O_IO_WRITE, 1, "io_write_bps", "--io-write-bps",
     "a rate in bytes per second (like 10M)", 0, INT64_MAX},
    {SBX_CLI_O_DISK, 1, "workspace_quota_bytes", "--disk", "a size of at least 8M (like 64M, 2G)",
     8u << 20, INT64_MAX},
};

int sbx_cli_sandbox_option(int c, const char *arg, json_object *opts, char *msg, size_t cap)
{
    for (size_t i = 0; i < sizeof(number_opts) / sizeof(number_opts[0]); i++) {
        const struct number_opt *o = &number_opts[i];
        if (o->c != c)
            continue;
        uint64_t v = 0;
        unsigned long n = 0;
        int r = o->is_size ? sbx_cli_parse_size(arg, &v) : parse_count(arg, o->lo, o->hi, &n);
        if (!o->is_size)
            v = n;
        if (r < 0 || v < o->lo || v > o->hi)
            return bad(msg, cap, "%s '%s' is not %s", o->flag, arg, o->what);
        put_int(opts, o->key, v);
        return 1;
    }
    switch (c) {
    case SBX_CLI_O_HOSTNAME:
        json_object_object_add(opts, "hostname", json_object_new_string(arg));
        return 1;
    case SBX_CLI_O_SECCOMP: {
        char *text = sbx_cli_read_file(arg, msg, cap);
        if (!text)
            return -1;
        json_object_object_add(opts, "seccomp_policy", json_object_new_string(text));
        free(text);
        return 1;
    }
    case SBX_CLI_O_PTRACE:
        json_object_object_add(opts, "allow_ptrace", json_object_new_boolean(1));
        return 1;
    case SBX_CLI_O_BEST_EFFORT:
        json_object_object_add(opts, "limits_best_effort", json_object_new_boolean(1));
        return 1;
    case SBX_CLI_O_CPUS: {
        char *end = NULL;
        double v = strtod(arg, &end);
        if (!*arg || *end || !(v > 0) || v > 4096)
            return bad(msg, cap, "--cpus '%s' is not a number of CPUs (like 0.5, 2)", arg);
        json_object_object_add(opts, "cpus", json_object_new_double(v));
        return 1;
    }
    case SBX_CLI_O_CPUSET: /* the library checks the list and the path */
    case SBX_CLI_O_CG_PARENT:
    case SBX_CLI_O_NET_RANGE:
        json_object_object_add(opts, c == SBX_CLI_O_CPUSET      ? "cpuset"
                                     : c == SBX_CLI_O_CG_PARENT ? "cgroup_parent"
                                                                : "net_range",
                               json_object_new_string(arg));
        return 1;
    case SBX_CLI_O_NET: {
        int mode;
        if (sbx_cli_parse_net(arg, &mode) < 0)
            return bad(msg, cap, "--net '%s' is not a network mode (none, proxy, veth)", arg);
        json_object_object_add(opts, "net", json_object_new_string(sbx_cli_net_name(mode)));
        return 1;
    }
    case SBX_CLI_O_ADD_HOST:
        if (!strchr(arg, '=') || arg[0] == '=')
            return bad(msg, cap, "--add-host '%s' is not of the form NAME=IP", arg);
        /* fall through */
    case SBX_CLI_O_ALLOW:
        if (push(opts, c == SBX_CLI_O_ALLOW ? "net_allow" : "net_hosts", arg) < 0)
            return bad(msg, cap, "too many --%s (at most 64)",
                       c == SBX_CLI_O_ALLOW ? "allow" : "add-host");
        return 1;
    default:
        return 0;
    }
}

int sbx_cli_sandbox_check(json_object *opts, char *msg, size_t cap)
{
    json_object *v = NULL;
    const char *net = json_object_object_get_ex(opts, "net", &v) ? json_object_get_string(v)
                                                                 : "none";
    if (strcmp(net, "proxy") != 0 && (json_object_object_get_ex(opts, "net_allow", NULL) ||
                                      json_object_object_get_ex(opts, "net_hosts", NULL)))
        return bad(msg, cap, "%s", "--allow and --add-host need --net proxy");
    if (strcmp(net, "veth") != 0 && json_object_object_get_ex(opts, "net_range", NULL))
        return bad(msg, cap, "%s", "--net-range needs --net veth");
    return 0;
}
