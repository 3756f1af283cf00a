/* cmd_run.c — `sbx run`: one-shot create, exec, shutdown. */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_LIST 64

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sbx run [options] [--] CMD [ARGS...]\n"
            "\n"
            "Runs CMD in a fresh sandbox (new user, pid, mount, network, uts, ipc and cgroup\n"
            "namespaces; read-only system dirs; only loopback) and removes it afterwards.\n"
            "CMD runs as is (no shell); use `sbx run -- sh -c '...'` for shell syntax.\n"
            "\n"
            "options:\n"
            "  -w, --workspace DIR    host dir bound read-write at /workspace (default: a fresh\n"
            "                         tmpfs inside the sandbox, gone afterwards)\n"
            "      --keep             use a temporary host dir instead, keep it, print its path\n"
            "      --root PATH        workspace path inside the sandbox (default /workspace)\n"
            "  -t, --timeout SECONDS  kill the command and all it started after SECONDS\n"
            "  -e, --env K=V          set an environment variable (repeatable)\n"
            "  -C, --cwd DIR          working directory inside (default: the workspace)\n"
            "  -u, --user USER        sandbox (default), root, or a uid below 65536\n"
            "  -i, --stdin            pass this process's stdin to CMD (never a terminal);\n"
            "                         without it CMD's stdin is empty\n"
            "      --hostname NAME    hostname inside (default sbx)\n"
            "      --bind SRC[:DST]   bind a host path read-write (repeatable)\n"
            "      --ro-bind SRC[:DST] bind a host path read-only (repeatable)\n"
            "      --seccomp FILE     seccomp policy for the command (default: the built-in one,\n"
            "                         see sbx seccomp dump)\n"
            "      --allow-ptrace     let commands trace each other (debuggers)\n"
            "      --nproc N          at most N processes of the sandbox user (default 4096)\n"
            "      --tmpfs-size SIZE  size of /tmp, /dev/shm and a tmpfs workspace, e.g. 512M\n"
            "      --memory SIZE      memory of the whole sandbox (cgroup), e.g. 512M\n"
            "      --pids N           processes and threads of the whole sandbox (cgroup)\n"
            "      --cpus N           CPU time, in CPUs, e.g. 1.5 (cgroup)\n"
            "      --io-weight N      relative block I/O weight of the whole sandbox, 1 to 10000\n"
            "                         (default of other cgroups: 100; cgroup io or blkio)\n"
            "      --disk SIZE        (root) a host workspace of at most SIZE, e.g. 1G: an ext4\n"
            "                         image sbx makes and removes (not with -w or --keep); by\n"
            "                         default the workspace is a tmpfs of --tmpfs-size\n"
            "      --cpuset LIST      the CPUs the sandbox may run on, e.g. 0-1,3 (cgroup)\n"
            "      --io-read-bps R, --io-write-bps W  bytes per second to and from the\n"
            "                         workspace's disk, e.g. 10M (cgroup; needs -w, --keep or\n"
            "                         --disk: a tmpfs workspace has no disk)\n"
            "      --cgroup-parent P  make the sandbox's cgroups below P (a delegated cgroup, as a\n"
            "                         path from the hierarchy's root) instead of below sbx's own\n"
            "      --limits-best-effort  skip a limit this machine cannot enforce instead of\n"
            "                         failing\n"
            "      --nofile N         open files per command (default 4096)\n"
            "      --fsize SIZE       largest file a command may write, e.g. 1G\n"
            SBX_CLI_NET_HELP
            "      --json             print one JSON object {exit_code, timed_out, duration_ms,\n"
            "                         stdout, stderr} instead of passing output through\n"
            "      --events FILE      append an audit event per operation to FILE (JSONL; see\n"
            "                         sbx events tail)\n"
            "      --events-stderr    print one line per operation event on stderr\n"
            "      --traceparent TP   W3C traceparent: the events' spans nest under it\n"
            "  -h, --help             show this help\n"
            "\n"
            "exit status: the command's own; 128+N if killed by signal N; 124 on timeout;\n"
            "125 if sbx itself failed; 126 if CMD is not executable; 127 if it is not found.\n");
}

struct run_opts {
    sbx_session_opts so;
    sbx_exec_opts xo;
    const char *env[MAX_LIST + 1];
    size_t n_env;
    sbx_bind binds[MAX_LIST];
    size_t n_binds;
    int json, keep, stdin_in;
    char *seccomp; /* policy text read from --seccomp FILE */
    const char *events_path;
    int events_stderr;
    const char *allow[MAX_LIST + 1], *hosts[MAX_LIST + 1];
    size_t n_allow, n_hosts;
};

/* cmd_events.c */

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sbx run: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see sbx run --help)\n");
    va_end(ap);
    return SBX_EXIT_SBX_FAILED;
}

static int parse(int argc, char **argv, struct run_opts *ro, int *cmd_index)
{
    enum { O_KEEP = 256, O_ROOT, O_HOSTNAME, O_BIND, O_RO_BIND, O_JSON, O_SECCOMP, O_PTRACE,
           O_NPROC, O_TMPFS, O_EVENTS, O_EVENTS_STDERR, O_TRACEPARENT, O_MEMORY, O_PIDS, O_CPUS,
           O_BEST_EFFORT, O_NOFILE, O_FSIZE, O_NET, O_ALLOW, O_ADD_HOST, O_NET_RANGE,
           O_IO_WEIGHT, O_DISK, O_CPUSET, O_IO_READ, O_IO_WRITE, O_CG_PARENT };
    static const struct option longs[] = {
        {"workspace", required_argument, NULL, 'w'}, {"keep", no_argument, NULL, O_KEEP},
        {"root", required_argument, NULL, O_ROOT},   {"timeout", required_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},       {"cwd", required_argument, NULL, 'C'},
        {"user", required_argument, NULL, 'u'},      {"hostname", required_argument, NULL, O_HOSTNAME},
        {"bind", required_argument, NULL, O_BIND},   {"ro-bind", required_argument, NULL, O_RO_BIND},
        {"json", no_argument, NULL, O_JSON},         {"help", no_argument, NULL, 'h'},
        {"stdin", no_argument, NULL, 'i'},           {"seccomp", required_argument, NULL, O_SECCOMP},
        {"allow-ptrace", no_argument, NULL, O_PTRACE},
        {"nproc", required_argument, NULL, O_NPROC},
        {"tmpfs-size", required_argument, NULL, O_TMPFS},
        {"events", required_argument, NULL, O_EVENTS},
        {"events-stderr", no_argument, NULL, O_EVENTS_STDERR},
        {"traceparent", required_argument, NULL, O_TRACEPARENT},
        {"memory", required_argument, NULL, O_MEMORY},
        {"pids", required_argument, NULL, O_PIDS},
        {"cpus", required_argument, NULL, O_CPUS},
        {"limits-best-effort", no_argument, NULL, O_BEST_EFFORT},
        {"nofile", required_argument, NULL, O_NOFILE},
        {"fsize", required_argument, NULL, O_FSIZE},
        {"net", required_argument, NULL, O_NET},
        {"net-range", required_argument, NULL, O_NET_RANGE},
        {"allow", required_argument, NULL, O_ALLOW},
        {"add-host", required_argument, NULL, O_ADD_HOST},
        {"io-weight", required_argument, NULL, O_IO_WEIGHT},
        {"disk", required_argument, NULL, O_DISK},
        {"cpuset", required_argument, NULL, O_CPUSET},
        {"cgroup-parent", required_argument, NULL, O_CG_PARENT},
        {"io-read-bps", required_argument, NULL, O_IO_READ},
        {"io-write-bps", required_argument, NULL, O_IO_WRITE},
        {NULL, 0, NULL, 0}};
    char msg[512];
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+w:t:e:C:u:ih", longs, NULL)) != -1) {
        switch (c) {
        case 'w':
            ro->so.workspace = optarg;
            break;
        case O_KEEP:
            ro->keep = 1;
            break;
        case O_ROOT:
            ro->so.root = optarg;
            break;
        case 't':
            ro->xo.timeout_s = sbx_cli_parse_seconds(optarg);
            if (ro->xo.timeout_s < 0)
                return fail("--timeout '%s' is not a number of seconds >= 0", optarg);
            break;
        case 'e':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return fail("--env '%s' is not of the form K=V", optarg);
            if (ro->n_env == MAX_LIST)
                return fail("too many --env (at most %d)", MAX_LIST);
            ro->env[ro->n_env++] = optarg;
            break;
        case 'C':
            ro->xo.cwd = optarg;
            break;
        case 'u':
            ro->xo.user = optarg;
            break;
        case O_HOSTNAME:
            ro->so.hostname = optarg;
            break;
        case O_BIND:
        case O_RO_BIND:
            if (ro->n_binds == MAX_LIST)
                return fail("too many binds (at most %d)", MAX_LIST);
            if (sbx_cli_parse_bind(optarg, c == O_RO_BIND, &ro->binds[ro->n_binds], msg,
                                   sizeof(msg)) < 0)
                return fail("%s", msg);
            ro->n_binds++;
            break;
        case O_JSON:
            ro->json = 1;
            break;
        case 'i':
            ro->stdin_in = 1;
            break;
        case O_SECCOMP:
            free(ro->seccomp);
            if (!(ro->seccomp = sbx_cli_read_file(optarg, msg, sizeof(msg))))
                return fail("%s", msg);
            ro->so.seccomp_policy = ro->seccomp;
            break;
        case O_PTRACE:
            ro->so.flags |= SBX_SESSION_ALLOW_PTRACE;
            break;
        case O_NPROC: {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || v == 0 || v > 4194304)
                return fail("--nproc '%s' is not a number of processes (1 to 4194304)", optarg);
            ro->so.nproc = (unsigned)v;
            break;
        }
        case O_TMPFS:
            if (sbx_cli_parse_size(optarg, &ro->so.tmpfs_bytes) < 0)
                return fail("--tmpfs-size '%s' is not a size (like 4096, 64K, 512M, 2G)", optarg);
            break;
        case O_MEMORY:
            if (sbx_cli_parse_size(optarg, &ro->so.memory_bytes) < 0 || !ro->so.memory_bytes)
                return fail("--memory '%s' is not a size (like 512M, 2G)", optarg);
            break;
        case O_PIDS: {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || v == 0 || v > 4194304)
                return fail("--pids '%s' is not a number of processes (1 to 4194304)", optarg);
            ro->so.pids_max = (unsigned)v;
            break;
        }
        case O_CPUS: {
            char *end = NULL;
            double v = strtod(optarg, &end);
            if (!*optarg || *end || !(v > 0) || v > 4096)
                return fail("--cpus '%s' is not a number of CPUs (like 0.5, 2)", optarg);
            ro->so.cpus = v;
            break;
        }
        case O_IO_WEIGHT: {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 10000)
                return fail("--io-weight '%s' is not a weight from 1 to 10000", optarg);
            ro->so.io_weight = (unsigned)v;
            break;
        }
        case O_CPUSET:
            ro->so.cpuset = optarg; /* the library checks the list */
            break;
        case O_CG_PARENT:
            ro->so.cgroup_parent = optarg; /* the library checks the path */
            break;
        case O_IO_READ:
        case O_IO_WRITE: {
            uint64_t *v = c == O_IO_READ ? &ro->so.io_read_bps : &ro->so.io_write_bps;
            if (sbx_cli_parse_size(optarg, v) < 0 || !*v)
                return fail("--io-%s-bps '%s' is not a rate in bytes per second (like 10M)",
                            c == O_IO_READ ? "read" : "write", optarg);
            break;
        }
        case O_DISK:
            if (sbx_cli_parse_size(optarg, &ro->so.workspace_quota_bytes) < 0 ||
                ro->so.workspace_quota_bytes < (8u << 20))
                return fail("--disk '%s' is not a size of at least 8M (like 64M, 2G)", optarg);
            break;
        case O_BEST_EFFORT:
            ro->so.flags |= SBX_SESSION_CGROUP_BEST_EFFORT;
            break;
        case O_NOFILE: {
            char *end = NULL;
            unsigned long v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || v < 16 || v > 1048576)
                return fail("--nofile '%s' is not a number of open files (16 to 1048576)", optarg);
            ro->so.nofile = (unsigned)v;
            break;
        }
        case O_FSIZE:
            if (sbx_cli_parse_size(optarg, &ro->so.fsize_bytes) < 0 || !ro->so.fsize_bytes)
                return fail("--fsize '%s' is not a size (like 64M, 1G)", optarg);
            break;
        case O_NET:
            if (sbx_cli_parse_net(optarg, &ro->so.net_mode) < 0)
                return fail("--net '%s' is not a network mode (none, proxy, veth)", optarg);
            break;
        case O_NET_RANGE:
            ro->so.net_range = optarg;
            break;
        case O_ALLOW:
        case O_ADD_HOST: {
            size_t *n = c == O_ALLOW ? &ro->n_allow : &ro->n_hosts;
            if (*n == MAX_LIST)
                return fail("too many --%s (at most %d)", c == O_ALLOW ? "allow" : "add-host",
                            MAX_LIST);
            if (c == O_ADD_HOST && (!strchr(optarg, '=') || optarg[0] == '='))
                return fail("--add-host '%s' is not of the form NAME=IP", optarg);
            (c == O_ALLOW ? ro->allow : ro->hosts)[(*n)++] = optarg;
            break;
        }
        case O_EVENTS:
            ro->events_path = optarg;
            break;
        case O_EVENTS_STDERR:
            ro->events_stderr = 1;
            break;
        case O_TRACEPARENT:
            ro->so.traceparent = optarg;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            return fail("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return fail("%s", "no command given: sbx run [options] -- CMD [ARGS...]");
    if ((ro->n_allow || ro->n_hosts) && ro->so.net_mode != SBX_NET_PROXY)
        return fail("%s", "--allow and --add-host need --net proxy");
    if (ro->so.net_range && ro->so.net_mode != SBX_NET_VETH)
        return fail("%s", "--net-range needs --net veth");
    if (ro->so.workspace_quota_bytes && (ro->so.workspace || ro->keep))
        return fail("%s", "--disk sizes a workspace sbx makes and removes: not with --workspace "
                          "or --keep");
    if (ro->so.net_mode == SBX_NET_PROXY) {
        ro->so.net_allow = ro->allow;
        ro->so.net_hosts = ro->hosts;
    }
    *cmd_index = optind;
    return 0;
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static int run(struct run_opts *ro, char **cmd)
{
    sbx_error *err = NULL;
    sbx_session *s = NULL;
    sbx_exec_result *res = NULL;
    int status = SBX_EXIT_SBX_FAILED;
    ro->env[ro->n_env] = NULL;
    ro->so.env = ro->env;
    ro->so.binds = ro->binds;
    ro->so.n_binds = ro->n_binds;
    if (ro->keep)
        ro->so.flags |= SBX_SESSION_KEEP_WORKSPACE;
    else if (!ro->so.workspace && !ro->so.workspace_quota_bytes)
        ro->so.flags |= SBX_SESSION_EPHEMERAL_WORKSPACE; /* throwaway: keep it off the disk */
    ro->xo.argv = (const char *const *)cmd;
    ro->xo.shell = SBX_SHELL_NONE;
    /* stdin passes through only when asked (so `while read l; do sbx run ...; done` keeps
     * its input), and never from a terminal: the bytes are copied, the fd never enters. */
    if (ro->stdin_in && isatty(0)) {
        fprintf(stderr, "sbx run: --stdin needs a pipe or a file, not a terminal (a terminal "
                        "is never handed to sandboxed code)\n");
        return SBX_EXIT_SBX_FAILED;
    }
    if (ro->stdin_in && fd_open(0)) {
        ro->xo.flags |= SBX_EXEC_STDIN_FD;
        ro->xo.stdin_fd = 0;
    }
    if (!ro->json) {
        ro->xo.flags |= SBX_EXEC_STREAM_STDOUT | SBX_EXEC_STREAM_STDERR;
        ro->xo.stdout_fd = 1;
        ro->xo.stderr_fd = 2;
    }
    sbx_events *ev = NULL;
    if (sbx_cli_events_make(ro->events_path, ro->events_stderr, &ev) < 0)
        return SBX_EXIT_SBX_FAILED;
    ro->so.events = ev;
    int r;
    if (ro->keep) {
        /* The kept workspace's path is only known to a session that outlives the run. */
        r = sbx_session_new(&ro->so, &s, &err);
        if (r == 0)
            r = sbx_session_start(s, &err);
        if (r == 0)
            r = sbx_session_exec(s, &ro->xo, &res, &err);
    } else {
        r = sbx_run(&ro->so, &ro->xo, &res, &err);
    }
    if (r < 0 && r != SBX_EEXEC_TIMEOUT && r != SBX_EEXEC_TRANSPORT) {
        sbx_cli_print_error(NULL, err);
        goto out;
    }
    int timed_out = r == SBX_EEXEC_TIMEOUT;
    if (ro->json) {
        sbx_cli_print_json(res, timed_out, res ? res->duration_ms : 0, err);
        if (r < 0 && !timed_out)
            sbx_cli_print_error(NULL, err);
    } else if (r < 0) {
        sbx_cli_print_error(NULL, err);
    }
    if (r < 0)
        status = sbx_cli_exit_for_error(err);
    else
        status = res->term_signal ? 128 + res->term_signal : res->exit_code;
    if (s && !ro->so.workspace)
        fprintf(stderr, "sbx: workspace kept at %s\n", sbx_session_workspace(s));
out:
    sbx_exec_result_free(res);
    sbx_error_free(err);
    sbx_session_free(s);
    if (ev && sbx_events_failures(ev))
        fprintf(stderr, "sbx: %llu event(s) could not be written\n",
                (unsigned long long)sbx_events_failures(ev));
    sbx_events_free(ev);
    return status;
}

int sbx_cmd_run(int argc, char **argv)
{
    struct run_opts ro;
    memset(&ro, 0, sizeof(ro));
    ro.so = (sbx_session_opts)SBX_SESSION_OPTS_INIT;
    ro.xo = (sbx_exec_opts)SBX_EXEC_OPTS_INIT;
    int cmd_index = 0;
    int r = parse(argc, argv, &ro, &cmd_index);
    if (r == 0)
        r = run(&ro, argv + cmd_index);
    else if (r < 0)
        r = 0; /* --help */
    for (size_t i = 0; i < ro.n_binds; i++) {
        free((char *)ro.binds[i].src);
        free((char *)ro.binds[i].dst);
    }
    free(ro.seccomp);
    return r;
}
