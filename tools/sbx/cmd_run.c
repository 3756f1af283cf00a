/* cmd_run.c — `sbx run`: one-shot create, exec, shutdown. */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "session_store.h"

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
            "      --bind SRC[:DST]   bind a host path read-write (repeatable)\n"
            "      --ro-bind SRC[:DST] bind a host path read-only (repeatable)\n"
            SBX_CLI_SANDBOX_HELP
            "      --json             print one JSON object {exit_code, timed_out, duration_ms,\n"
            "                         stdout, stderr} instead of passing output through\n"
            SBX_CLI_RAW_OUTPUT_HELP
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
    int json, keep, stdin_in, raw_output;
    json_object *opts;     /* the shared sandbox options (cli_sandbox_opts.c) */
    struct sbx_store_opts sto; /* ... made into session options */
    const char *events_path;
    int events_stderr;
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
    enum { O_KEEP = 256, O_ROOT, O_BIND, O_RO_BIND, O_JSON, O_EVENTS, O_EVENTS_STDERR,
           O_TRACEPARENT, O_RAW_OUTPUT };
    static const struct option longs[] = {
        {"workspace", required_argument, NULL, 'w'}, {"keep", no_argument, NULL, O_KEEP},
        {"root", required_argument, NULL, O_ROOT},   {"timeout", required_argument, NULL, 't'},
        {"env", required_argument, NULL, 'e'},       {"cwd", required_argument, NULL, 'C'},
        {"user", required_argument, NULL, 'u'},      {"bind", required_argument, NULL, O_BIND},
        {"ro-bind", required_argument, NULL, O_RO_BIND},
        {"json", no_argument, NULL, O_JSON},         {"help", no_argument, NULL, 'h'},
        {"stdin", no_argument, NULL, 'i'},
        {"events", required_argument, NULL, O_EVENTS},
        {"events-stderr", no_argument, NULL, O_EVENTS_STDERR},
        {"traceparent", required_argument, NULL, O_TRACEPARENT},
        {"raw-output", no_argument, NULL, O_RAW_OUTPUT},
        SBX_CLI_SANDBOX_LONGOPTS,
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
        case O_EVENTS:
            ro->events_path = optarg;
            break;
        case O_EVENTS_STDERR:
            ro->events_stderr = 1;
            break;
        case O_TRACEPARENT:
            ro->so.traceparent = optarg;
            break;
        case O_RAW_OUTPUT:
            ro->raw_output = 1;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default: {
            int r = sbx_cli_sandbox_option(c, optarg, ro->opts, msg, sizeof(msg));
            if (r < 0)
                return fail("%s", msg);
            if (r == 0)
                return fail("unknown or incomplete option '%s'", argv[optind - 1]);
        }
        }
    }
    if (optind >= argc)
        return fail("%s", "no command given: sbx run [options] -- CMD [ARGS...]");
    if (sbx_cli_sandbox_check(ro->opts, msg, sizeof(msg)) < 0)
        return fail("%s", msg);
    /* The shared options on top of run's own (workspace, root, ...). */
    ro->sto.so = ro->so;
    if (sbx_store_opts_apply(ro->opts, "sbx run", &ro->sto) < 0)
        return SBX_EXIT_SBX_FAILED;
    ro->so = ro->sto.so;
    if (ro->so.workspace_quota_bytes && (ro->so.workspace || ro->keep))
        return fail("%s", "--disk sizes a workspace sbx makes and removes: not with --workspace "
                          "or --keep");
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
    sbx_events *ev = NULL;
    if (sbx_cli_events_make(ro->events_path, ro->events_stderr, &ev) < 0)
        return SBX_EXIT_SBX_FAILED;
    ro->so.events = ev;
    struct sbx_cli_tty tout = {.active = 0}, terr = {.active = 0};
    if (!ro->json) {
        ro->xo.flags |= SBX_EXEC_STREAM_STDOUT | SBX_EXEC_STREAM_STDERR;
        ro->xo.stdout_fd = sbx_cli_tty_begin(&tout, 1, ro->raw_output);
        ro->xo.stderr_fd = sbx_cli_tty_begin(&terr, 2, ro->raw_output);
    }
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
    sbx_cli_tty_end(&tout);
    sbx_cli_tty_end(&terr);
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
    if (!(ro.opts = json_object_new_object()))
        return fail("%s", "out of memory");
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
    sbx_store_opts_free(&ro.sto);
    json_object_put(ro.opts);
    return r;
}
