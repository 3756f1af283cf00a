/* cmd_session.c — sessions that outlive one command: create, exec, ps, stop, start, rm, gc.
 *
 * create starts a DETACHED sandbox with a control socket in the session's state directory,
 * records it (session_store.c) and disowns it; every later command attaches through that
 * socket. The sandbox's lifetime is the record's: stop persists and shuts down (the record
 * stays, with the state object that a start resumes from), rm ends everything.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "session_store.h"

#define MAX_LIST 64

static const char create_usage[] =
    "usage: sbx create [options]\n"
    "\n"
    "Starts a sandbox that stays up after this command exits and prints its id. Address it\n"
    "later by id, a unique prefix of it (4+ characters) or its name.\n"
    "\n"
    "options:\n"
    "      --name NAME        a name for the session ([A-Za-z0-9][A-Za-z0-9_.-]{0,63}),\n"
    "                         unique among the sessions\n"
    "  -w, --workspace DIR    host dir bound read-write at the workspace root (default: a\n"
    "                         fresh temporary dir, removed by sbx rm)\n"
    "      --root PATH        workspace path inside the sandbox (default /workspace)\n"
    "      --snapshot-dir DIR sbx stop saves the workspace there, sbx start restores it\n"
    "      --manifest FILE    the workspace's declared contents, environment and users\n"
    "      --bind SRC[:DST]   bind a host path read-write (repeatable)\n"
    "      --ro-bind SRC[:DST] bind a host path read-only (repeatable)\n"
    "  -e, --env K=V          set an environment variable for every command (repeatable)\n"
    "  -p, --publish PORT     let the host reach TCP PORT inside (repeatable): a listener\n"
    "                         on 127.0.0.1 carries connections in; sbx port shows where\n"
    SBX_CLI_SANDBOX_HELP
    "  -h, --help             show this help\n";

static const char exec_usage[] =
    "usage: sbx exec [options] SESSION [--] CMD [ARGS...]\n"
    "\n"
    "Runs CMD (as is, no shell) in a running session, passing its output through.\n"
    "\n"
    "options:\n"
    "  -u, --user USER        sandbox (default), root, a manifest user, or a uid\n"
    "  -C, --cwd DIR          working directory inside (default: the workspace)\n"
    "  -e, --env K=V          set an environment variable (repeatable)\n"
    "  -t, --timeout SECONDS  kill the command and all it started after SECONDS\n"
    "  -i, --stdin            pass this process's stdin to CMD (never a terminal)\n"
    "      --tty              run CMD on a new terminal attached to this one (as sbx shell)\n"
    "      --events FILE      append the exec's audit events to FILE (JSONL)\n"
    "      --events-stderr    print one line per operation event on stderr\n"
    "      --traceparent TP   W3C traceparent: the events' spans nest under it\n"
    SBX_CLI_RAW_OUTPUT_HELP
    "  -h, --help             show this help\n"
    "\n"
    "exit status: the command's own; 128+N if killed by signal N; 124 on timeout;\n"
    "125 if sbx itself failed; 126 if CMD is not executable; 127 if it is not found.\n";

static const char ps_usage[] =
    "usage: sbx ps [--json]\n"
    "\n"
    "Lists the sessions: id, name, status (running; stopped; gone: its sandbox died without\n"
    "sbx stop, see sbx gc), age and workspace. --json prints one array with full ids.\n";

static const char stop_usage[] =
    "usage: sbx stop SESSION\n"
    "\n"
    "Saves the workspace to the snapshot dir (when the session has one) and shuts the sandbox\n"
    "down. The session stays listed as stopped; sbx start resumes it.\n";

static const char start_usage[] =
    "usage: sbx start SESSION\n"
    "\n"
    "Resumes a stopped (or gone) session with the options it was created with. The workspace\n"
    "is restored from the snapshot when it changed or is gone.\n";

static const char rm_usage[] =
    "usage: sbx rm [-f] SESSION...\n"
    "\n"
    "Removes sessions and the workspaces sbx created for them (never a -w directory, nor\n"
    "snapshots). A running session is refused unless -f (--force) is given, which ends it.\n";

static const char gc_usage[] =
    "usage: sbx gc\n"
    "\n"
    "Removes every session whose sandbox is gone (ps shows them as gone), with the\n"
    "workspaces sbx created for them. Stopped sessions are kept.\n";

int sbx_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sbx: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see sbx %s --help)\n", cmd);
    va_end(ap);
    return SBX_EXIT_USAGE;
}

/* For commands that take no options but --help: 1 when help was printed, -1 for an unknown
 * option (message printed), 0 otherwise; *first is the index of the first operand. */
static int simple_opts(const char *cmd, const char *usage, int argc, char **argv, int *first)
{
    *first = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 1;
        }
        if (!strcmp(argv[i], "--")) {
            if (i == *first)
                (*first)++;
            break;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            sbx_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
            return -1;
        }
    }
    return 0;
}

/* ---- create ---------------------------------------------------------------------------- */

struct create_args {
    const char *name, *root;
    char *workspace;    /* absolute */
    char *snapshot_dir; /* absolute */
    char *manifest;     /* text */
    json_object *opts;  /* recorded: what start and attach need again */
    json_object *binds, *env;
    size_t n_binds, n_env;
    int ports[MAX_LIST];
    size_t n_ports;
};

/* An absolute form of a host path: resolved when it exists, else joined to the cwd, so the
 * session works the same from any later working directory. */
static char *absolute(const char *p, int must_exist)
{
    char buf[PATH_MAX];
    if (realpath(p, buf))
        return strdup(buf);
    if (must_exist)
        return NULL;
    if (p[0] == '/')
        return strdup(p);
    if (!getcwd(buf, sizeof(buf)))
        return NULL;
    char *r = NULL;
    return asprintf(&r, "%s/%s", buf, p) < 0 ? NULL : r;
}

enum { O_NAME = 256, O_ROOT, O_SNAP, O_MANIFEST, O_BIND, O_RO_BIND };

static int create_option(struct create_args *a, int c, const char *arg)
{
    char msg[512];
    switch (c) {
    case O_NAME:
        if (!sbx_store_name_ok(arg))
            return sbx_cli_usage_error("create", "--name '%s' is not a valid name: a letter or "
                                                 "digit, then up to 63 of [A-Za-z0-9_.-]",
                                       arg);
        a->name = arg;
        return 0;
    case 'w':
        free(a->workspace);
        if (!(a->workspace = absolute(arg, 1)))
            return sbx_store_fail("workspace '%s' is not usable: %s", arg, strerror(errno));
        return 0;
    case O_ROOT:
        a->root = arg;
        return 0;
    case O_SNAP:
        free(a->snapshot_dir);
        if (!(a->snapshot_dir = absolute(arg, 0)))
            return sbx_store_fail("snapshot dir '%s': %s", arg, strerror(errno));
        return 0;
    case O_MANIFEST:
        free(a->manifest);
        if (!(a->manifest = sbx_cli_read_file(arg, msg, sizeof(msg))))
            return sbx_store_fail("%s", msg);
        return 0;
    case O_BIND:
    case O_RO_BIND: {
        sbx_bind b;
        if (a->n_binds == MAX_LIST)
            return sbx_cli_usage_error("create", "too many binds (at most %d)", MAX_LIST);
        if (sbx_cli_parse_bind(arg, c == O_RO_BIND, &b, msg, sizeof(msg)) < 0)
            return sbx_cli_usage_error("create", "%s", msg);
        char *src = absolute(b.src, 0);
        json_object *j = json_object_new_object();
        json_object_object_add(j, "src", json_object_new_string(src ? src : b.src));
        json_object_object_add(j, "dst", json_object_new_string(b.dst ? b.dst : b.src));
        json_object_object_add(j, "readonly", json_object_new_boolean(b.readonly));
        json_object_array_add(a->binds, j);
        a->n_binds++;
        free(src);
        free((char *)b.src);
        free((char *)b.dst);
        return 0;
    }
    case 'e':
        if (!strchr(arg, '=') || arg[0] == '=')
            return sbx_cli_usage_error("create", "--env '%s' is not of the form K=V", arg);
        if (a->n_env++ == MAX_LIST)
            return sbx_cli_usage_error("create", "too many --env (at most %d)", MAX_LIST);
        json_object_array_add(a->env, json_object_new_string(arg));
        return 0;
    case 'p': {
        char *end = NULL;
        long v = strtol(arg, &end, 10);
        if (!*arg || *end || v < 1 || v > 65535)
            return sbx_cli_usage_error("create", "--publish '%s' is not a TCP port (1 to 65535)",
                                       arg);
        if (a->n_ports == MAX_LIST)
            return sbx_cli_usage_error("create", "too many ports (at most %d)", MAX_LIST);
        a->ports[a->n_ports++] = (int)v;
        return 0;
    }
    default: {
        int r = sbx_cli_sandbox_option(c, arg, a->opts, msg, sizeof(msg));
        if (r < 0)
            return sbx_cli_usage_error("create", "%s", msg);
        if (r == 0)
            return sbx_cli_usage_error("create", "unknown or incomplete option '%s'", arg);
        return 0;
    }
    }
}

/* 0 to go on, 1 after --help, else an exit status. */
static int create_parse(int argc, char **argv, struct create_args *a)
{
    static const struct option longs[] = {
        {"name", required_argument, NULL, O_NAME},
        {"workspace", required_argument, NULL, 'w'},
        {"root", required_argument, NULL, O_ROOT},
        {"snapshot-dir", required_argument, NULL, O_SNAP},
        {"manifest", required_argument, NULL, O_MANIFEST},
        {"bind", required_argument, NULL, O_BIND},
        {"ro-bind", required_argument, NULL, O_RO_BIND},
        {"env", required_argument, NULL, 'e'},
        {"publish", required_argument, NULL, 'p'},
        SBX_CLI_SANDBOX_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+w:e:p:h", longs, NULL)) != -1) {
        if (c == 'h') {
            fputs(create_usage, stdout);
            return 1;
        }
        int r = create_option(a, c, c == '?' || c == ':' ? argv[optind - 1] : optarg);
        if (r == -1)
            return SBX_EXIT_SBX_FAILED;
        if (r)
            return r;
    }
    if (optind < argc)
        return sbx_cli_usage_error("create", "unexpected argument '%s'", argv[optind]);
    char msg[512];
    if (sbx_cli_sandbox_check(a->opts, msg, sizeof(msg)) < 0)
        return sbx_cli_usage_error("create", "%s", msg);
    if (a->workspace && json_object_object_get_ex(a->opts, "workspace_quota_bytes", NULL))
        return sbx_cli_usage_error("create", "--disk sizes a workspace sbx makes: not with "
                                             "--workspace");
    return 0;
}

static void print_err(const char *what, sbx_error *e)
{
    sbx_cli_print_error(what, e);
    sbx_error_free(e);
}

/* Undoes a create that failed after the sandbox started: nothing of it may be left. */
static void create_abort(sbx_session *s, struct sbx_store_rec *r, int owned)
{
    char *ws = sbx_session_workspace(s) ? strdup(sbx_session_workspace(s)) : NULL;
    sbx_session_shutdown(s, NULL);
    sbx_session_free(s);
    sbx_store_remove_owned_workspace(ws, owned);
    free(ws);
    if (r)
        sbx_store_remove(r);
}

static int name_taken(const char *statedir, const char *name)
{
    struct sbx_store_rec **v = NULL;
    size_t n = 0;
    if (sbx_store_list(statedir, &v, &n) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++)
        if (v[i]->name && !strcmp(v[i]->name, name))
            rc = sbx_store_fail("the name '%s' is taken by session %.8s: pick another, or sbx "
                                "rm %s first",
                                name, v[i]->id, name);
    sbx_store_list_free(v, n);
    return rc;
}

/* The library makes the session id, and the control socket path has to contain it before
 * the session exists: a first handle yields the id and the state object, and the real
 * session is made from that state, so it keeps the id. */
static int probe_state(sbx_session_opts *so, char **state, char id[37])
{
    sbx_session *p = NULL;
    sbx_error *err = NULL;
    int r = sbx_session_new(so, &p, &err);
    if (r == 0)
        r = sbx_session_state_json(p, state, &err);
    if (r == 0)
        snprintf(id, 37, "%s", sbx_session_id(p));
    sbx_session_free(p);
    if (r < 0)
        print_err(NULL, err);
    return r < 0 ? -1 : 0;
}

/* Starts the sandbox of record r (its directory made and locked), writes the records and
 * disowns it. Anything that fails takes the sandbox and its state down again. */
static int launch(struct create_args *a, struct sbx_store_rec *r, sbx_session_opts *so)
{
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    so->control_socket = r->ctl;
    so->flags |= SBX_SESSION_DETACHED | SBX_SESSION_KEEP_WORKSPACE;
    if (sbx_session_new(so, &s, &err) < 0 || sbx_session_start(s, &err) < 0) {
        print_err(NULL, err);
        create_abort(s, r, !a->workspace);
        return -1;
    }
    r->name = a->name ? strdup(a->name) : NULL;
    r->agent_pid = sbx_session_agent_pid(s);
    r->agent_start = sbx_store_proc_start(r->agent_pid);
    r->created = (int64_t)time(NULL);
    r->snapshot_dir = a->snapshot_dir ? strdup(a->snapshot_dir) : NULL;
    r->workspace = sbx_session_workspace(s) ? strdup(sbx_session_workspace(s)) : NULL;
    r->workspace_owned = !a->workspace;
    r->opts = json_object_get(a->opts);
    /* Records first, disown last: until the sandbox is disowned, a failure can still take
     * it down with this process. */
    char *state = NULL;
    int rc = sbx_session_state_json(s, &state, &err);
    if (rc < 0)
        print_err(NULL, err);
    else if (sbx_store_save_state(r, state) < 0 || sbx_store_save(r) < 0)
        rc = -1;
    else if (sbx_session_landlock_abi(s) == 0)
        fprintf(stderr, "sbx: note: this kernel has no Landlock: commands run behind the "
                        "mount table and the seccomp filter only (see sbx doctor)\n");
    if (rc == 0 && (rc = sbx_session_disown(s, &err)) < 0)
        print_err(NULL, err);
    free(state);
    if (rc < 0) {
        create_abort(s, r, r->workspace_owned);
        return -1;
    }
    printf("%s\n", r->id);
    fflush(stdout); /* out before an interrupt held back meanwhile takes effect */
    return 0;
}

static int create_run(struct create_args *a, const char *statedir)
{
    struct sbx_store_rec *r = NULL;
    struct sbx_store_opts o;
    memset(&o, 0, sizeof(o));
    char *state = NULL, id[37];
    int lock = -1, rc = -1;
    int dlock = sbx_store_lock_dir(statedir);
    if (dlock < 0 || (a->name && name_taken(statedir, a->name) < 0))
        goto out;
    struct sbx_store_rec tmp = {.opts = a->opts};
    if (sbx_store_opts_from_rec(&tmp, &o) < 0)
        goto out;
    o.so.workspace = a->workspace;
    o.so.root = a->root;
    o.so.snapshot_dir = a->snapshot_dir;
    o.so.manifest_json = a->manifest;
    o.so.exposed_ports = a->ports;
    o.so.n_exposed_ports = a->n_ports;
    if (probe_state(&o.so, &state, id) < 0 || !(r = sbx_store_rec_new(statedir, id)) ||
        (lock = sbx_store_make_dir(r)) < 0)
        goto out;
    o.so.state_json = state;
    /* From start to disown, an interrupt would leave a detached sandbox that no record
     * names: the signal waits until the records are written (or everything is undone). */
    sigset_t stop_sigs, old_mask;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop_sigs, &old_mask);
    rc = launch(a, r, &o.so);
    sbx_store_unlock(lock);
    lock = -1;
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (rc == 0 && sbx_cli_ports_start(r) < 0)
        rc = sbx_store_fail("session %s is up, but its ports and proxy are not served: sbx port "
                            "%.8s tries again",
                            r->id, r->id);
out:
    sbx_store_unlock(lock);
    sbx_store_unlock(dlock);
    sbx_store_opts_free(&o);
    sbx_store_rec_free(r);
    free(state);
    return rc;
}

int sbx_cmd_create(int argc, char **argv)
{
    struct create_args a;
    memset(&a, 0, sizeof(a));
    a.opts = json_object_new_object();
    a.binds = json_object_new_array();
    a.env = json_object_new_array();
    if (!a.opts || !a.binds || !a.env) {
        json_object_put(a.opts);
        json_object_put(a.binds);
        json_object_put(a.env);
        sbx_store_fail("out of memory");
        return SBX_EXIT_SBX_FAILED;
    }
    json_object_object_add(a.opts, "binds", a.binds);
    json_object_object_add(a.opts, "env", a.env);
    int st = create_parse(argc, argv, &a);
    char *statedir = NULL;
    if (st == 0) {
        st = SBX_EXIT_SBX_FAILED;
        int ok = sbx_store_dir(1, &statedir) == 0;
        if (ok && strlen(statedir) > SBX_STORE_MAX_DIR_LEN)
            ok = sbx_store_fail("the state directory '%s' is too long for control socket paths "
                                "(at most %d bytes): set SBX_STATE_DIR to a shorter path",
                                statedir, SBX_STORE_MAX_DIR_LEN) == 0;
        if (ok && create_run(&a, statedir) == 0)
            st = 0;
    } else if (st == 1) {
        st = 0;
    }
    free(statedir);
    free(a.workspace);
    free(a.snapshot_dir);
    free(a.manifest);
    json_object_put(a.opts);
    return st;
}

/* ---- exec ------------------------------------------------------------------------------ */

struct exec_args {
    sbx_exec_opts xo;
    const char *env[MAX_LIST + 1];
    size_t n_env;
    int stdin_in;
    int tty;
    int raw_output;
    const char *events_path;
    int events_stderr;
    const char *traceparent;
};

/* cmd_events.c */

static int exec_parse(int argc, char **argv, struct exec_args *x, int *first)
{
    static const struct option longs[] = {
        {"user", required_argument, NULL, 'u'},    {"cwd", required_argument, NULL, 'C'},
        {"env", required_argument, NULL, 'e'},     {"timeout", required_argument, NULL, 't'},
        {"stdin", no_argument, NULL, 'i'},         {"help", no_argument, NULL, 'h'},
        {"tty", no_argument, NULL, 'Y'},
        {"events", required_argument, NULL, 'E'},  {"events-stderr", no_argument, NULL, 'S'},
        {"traceparent", required_argument, NULL, 'T'},
        {"raw-output", no_argument, NULL, 'R'},
        {NULL, 0, NULL, 0}};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+u:C:e:t:ih", longs, NULL)) != -1) {
        switch (c) {
        case 'u':
            x->xo.user = optarg;
            break;
        case 'C':
            x->xo.cwd = optarg;
            break;
        case 'e':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                return sbx_cli_usage_error("exec", "--env '%s' is not of the form K=V", optarg);
            if (x->n_env == MAX_LIST)
                return sbx_cli_usage_error("exec", "too many --env (at most %d)", MAX_LIST);
            x->env[x->n_env++] = optarg;
            break;
        case 't':
            x->xo.timeout_s = sbx_cli_parse_seconds(optarg);
            if (x->xo.timeout_s < 0)
                return sbx_cli_usage_error("exec", "--timeout '%s' is not a number of seconds",
                                           optarg);
            break;
        case 'i':
            x->stdin_in = 1;
            break;
        case 'Y': /* --tty: long only (-t is --timeout) */
            x->tty = 1;
            break;
        case 'E': /* long options only: not in the short option string */
            x->events_path = optarg;
            break;
        case 'S':
            x->events_stderr = 1;
            break;
        case 'T':
            x->traceparent = optarg;
            break;
        case 'R':
            x->raw_output = 1;
            break;
        case 'h':
            fputs(exec_usage, stdout);
            return 1;
        default:
            return sbx_cli_usage_error("exec", "unknown or incomplete option '%s'",
                                       argv[optind - 1]);
        }
    }
    if (optind >= argc)
        return sbx_cli_usage_error("exec", "no session given: sbx exec SESSION -- CMD [ARGS...]");
    *first = optind;
    if (optind + 1 < argc && !strcmp(argv[optind + 1], "--"))
        optind++;
    if (optind + 1 >= argc)
        return sbx_cli_usage_error("exec", "no command given: sbx exec SESSION -- CMD [ARGS...]");
    x->xo.argv = (const char *const *)argv + optind + 1;
    return 0;
}

int sbx_cmd_exec(int argc, char **argv)
{
    struct exec_args x;
    memset(&x, 0, sizeof(x));
    x.xo = (sbx_exec_opts)SBX_EXEC_OPTS_INIT;
    int first = 0;
    int st = exec_parse(argc, argv, &x, &first);
    if (st)
        return st == 1 ? 0 : st;
    /* Bytes are copied, never the fd: a terminal would let sandboxed code inject input. */
    if (x.stdin_in && isatty(0)) {
        sbx_store_fail("--stdin needs a pipe or a file, not a terminal (a terminal is never "
                       "handed to sandboxed code)");
        return SBX_EXIT_SBX_FAILED;
    }
    x.env[x.n_env] = NULL;
    x.xo.env = x.env;
    x.xo.shell = SBX_SHELL_NONE;
    x.xo.flags = SBX_EXEC_STREAM_STDOUT | SBX_EXEC_STREAM_STDERR;
    x.xo.stdout_fd = 1;
    x.xo.stderr_fd = 2;
    if (x.stdin_in) {
        x.xo.flags |= SBX_EXEC_STDIN_FD;
        x.xo.stdin_fd = 0;
    }
    struct sbx_store_rec *r = NULL;
    sbx_session *s = NULL;
    int lock = -1;
    if (sbx_store_open(argv[first], 0, &r, &lock) < 0)
        return SBX_EXIT_SBX_FAILED;
    int rc = sbx_store_attach(r, 0, &s);
    /* The lock covers setting up only: a command may run for days, and stop or rm must be
     * able to end it (it then fails with "the sandbox is gone"). */
    sbx_store_unlock(lock);
    sbx_store_rec_free(r);
    if (rc < 0)
        return SBX_EXIT_SBX_FAILED;
    if (x.tty) {
        sbx_pty_opts po = SBX_PTY_OPTS_INIT;
        po.argv = x.xo.argv;
        po.shell = SBX_SHELL_NONE;
        po.env = x.xo.env;
        po.cwd = x.xo.cwd;
        po.user = x.xo.user;
        st = sbx_cli_pty_run(s, &po);
        sbx_session_free(s);
        return st;
    }
    signal(SIGPIPE, SIG_IGN); /* a reader of our output going away is reported, not fatal */
    sbx_exec_result *res = NULL;
    sbx_error *err = NULL;
    sbx_events *ev = NULL;
    if (sbx_cli_events_make(x.events_path, x.events_stderr, &ev) < 0) {
        sbx_session_free(s);
        return SBX_EXIT_SBX_FAILED;
    }
    int r2 = 0;
    if (ev && (r2 = sbx_session_set_events(s, ev, &err)) == 0 && x.traceparent)
        r2 = sbx_session_set_traceparent(s, x.traceparent, &err);
    else if (!ev && x.traceparent)
        r2 = sbx_trace_set_current(x.traceparent, &err); /* validates it */
    if (r2 == 0) {
        struct sbx_cli_tty tout, terr;
        x.xo.stdout_fd = sbx_cli_tty_begin(&tout, 1, x.raw_output);
        x.xo.stderr_fd = sbx_cli_tty_begin(&terr, 2, x.raw_output);
        r2 = sbx_session_exec(s, &x.xo, &res, &err);
        sbx_cli_tty_end(&tout);
        sbx_cli_tty_end(&terr);
    }
    if (r2 < 0) {
        sbx_cli_print_error(NULL, err);
        st = sbx_cli_exit_for_error(err);
    } else {
        st = res->term_signal ? 128 + res->term_signal : res->exit_code;
    }
    sbx_error_free(err);
    sbx_exec_result_free(res);
    sbx_session_free(s);
    if (ev && sbx_events_failures(ev))
        fprintf(stderr, "sbx: %llu event(s) could not be written\n",
                (unsigned long long)sbx_events_failures(ev));
    sbx_events_free(ev);
    return st;
}

/* ---- ps -------------------------------------------------------------------------------- */

static json_object *rec_json(const struct sbx_store_rec *r, enum sbx_store_status st)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(r->id));
    json_object_object_add(o, "name", r->name ? json_object_new_string(r->name) : NULL);
    json_object_object_add(o, "status", json_object_new_string(sbx_store_status_name(st)));
    json_object_object_add(o, "created", json_object_new_int64(r->created));
    json_object_object_add(o, "agent_pid", st == SBX_STORE_RUNNING
                                               ? json_object_new_int(r->agent_pid)
                                               : NULL);
    json_object_object_add(o, "workspace",
                           r->workspace ? json_object_new_string(r->workspace) : NULL);
    json_object_object_add(o, "workspace_owned", json_object_new_boolean(r->workspace_owned));
    json_object_object_add(o, "snapshot_dir",
                           r->snapshot_dir ? json_object_new_string(r->snapshot_dir) : NULL);
    return o;
}

int sbx_cmd_ps(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(ps_usage, stdout);
            return 0;
        } else {
            return sbx_cli_usage_error("ps", "unexpected argument '%s'", argv[i]);
        }
    }
    char *statedir = NULL;
    struct sbx_store_rec **v = NULL;
    size_t n = 0;
    if (sbx_store_dir(0, &statedir) < 0 || sbx_store_list(statedir, &v, &n) < 0) {
        free(statedir);
        return SBX_EXIT_SBX_FAILED;
    }
    free(statedir);
    if (json) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
            json_object_array_add(a, rec_json(v[i], sbx_store_status(v[i])));
        printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(a);
    } else {
        int w = 4;
        for (size_t i = 0; i < n; i++)
            if (v[i]->name && (int)strlen(v[i]->name) > w)
                w = (int)strlen(v[i]->name);
        printf("%-8s  %-*s  %-7s  %4s  %s\n", "ID", w, "NAME", "STATUS", "AGE", "WORKSPACE");
        for (size_t i = 0; i < n; i++) {
            char age[32];
            sbx_store_age(v[i]->created, age, sizeof(age));
            printf("%.8s  %-*s  %-7s  %4s  %s\n", v[i]->id, w, v[i]->name ? v[i]->name : "-",
                   sbx_store_status_name(sbx_store_status(v[i])), age,
                   v[i]->workspace ? v[i]->workspace : "-");
        }
    }
    sbx_store_list_free(v, n);
    return fflush(stdout) == 0 ? 0 : SBX_EXIT_SBX_FAILED;
}

/* ---- stop, start ------------------------------------------------------------------------ */

static const char *label(const struct sbx_store_rec *r)
{
    return r->name ? r->name : r->id;
}

/* Saves the state object of s and the record with the given status. */
static int record(struct sbx_store_rec *r, sbx_session *s, int stopped)
{
    char *state = NULL;
    sbx_error *err = NULL;
    if (sbx_session_state_json(s, &state, &err) < 0) {
        print_err(NULL, err);
        return -1;
    }
    r->stopped = stopped;
    r->agent_pid = stopped ? 0 : sbx_session_agent_pid(s);
    r->agent_start = stopped ? 0 : sbx_store_proc_start(r->agent_pid);
    const char *ws = sbx_session_workspace(s);
    if (ws && (!r->workspace || strcmp(ws, r->workspace) != 0)) {
        free(r->workspace);
        r->workspace = strdup(ws);
    }
    int rc = sbx_store_save_state(r, state) < 0 || sbx_store_save(r) < 0 ? -1 : 0;
    free(state);
    return rc;
}

int sbx_cmd_stop(int argc, char **argv)
{
    int first;
    int h = simple_opts("stop", stop_usage, argc, argv, &first);
    if (h)
        return h > 0 ? 0 : SBX_EXIT_USAGE;
    if (argc - first != 1)
        return sbx_cli_usage_error("stop", "give exactly one session");
    struct sbx_store_rec *r = NULL;
    int lock = -1, st = SBX_EXIT_SBX_FAILED;
    if (sbx_store_open(argv[first], 1, &r, &lock) < 0)
        return st;
    sbx_session *s = NULL;
    if (r->stopped) {
        st = 0; /* already where the caller wants it */
    } else if (sbx_store_attach(r, 0, &s) == 0) {
        sbx_error *err = NULL;
        if (sbx_session_close(s, &err) < 0) {
            /* A failed persist leaves the sandbox up (and the record running) for a retry;
             * a sandbox that went down anyway is recorded as stopped. */
            sbx_cli_print_error(label(r), err);
            sbx_error_free(err);
            if (!sbx_session_running(s))
                record(r, s, 1);
        } else if (record(r, s, 1) == 0) {
            st = 0;
        }
    }
    sbx_session_free(s);
    if (st == 0)
        sbx_cli_ports_stop(r); /* its listeners go with the sandbox */
    sbx_store_unlock(lock);
    sbx_store_rec_free(r);
    return st;
}

static int start_locked(struct sbx_store_rec *r)
{
    enum sbx_store_status status = sbx_store_status(r);
    if (status == SBX_STORE_RUNNING)
        return sbx_store_fail("session %s is already running", label(r));
    struct stat sb;
    if (!r->workspace_owned && r->workspace && stat(r->workspace, &sb) < 0)
        return sbx_store_fail("the workspace '%s' of session %s is gone: it was given with -w, "
                              "so sbx cannot make a new one",
                              r->workspace, label(r));
    char *state = sbx_store_load_state(r);
    struct sbx_store_opts o;
    if (!state || sbx_store_opts_from_rec(r, &o) < 0) {
        free(state);
        return -1;
    }
    o.so.state_json = state;
    o.so.control_socket = r->ctl;
    o.so.flags |= SBX_SESSION_DETACHED | SBX_SESSION_KEEP_WORKSPACE;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    int rc = -1;
    if (sbx_session_new(&o.so, &s, &err) < 0 || sbx_session_start(s, &err) < 0) {
        sbx_cli_print_error(label(r), err);
        sbx_error_free(err);
    } else if (record(r, s, 0) < 0) {
        sbx_session_shutdown(s, NULL);
    } else if (sbx_session_disown(s, &err) < 0) {
        print_err(label(r), err);
        sbx_session_shutdown(s, NULL);
        r->stopped = 1;
        sbx_store_save(r);
    } else {
        s = NULL; /* disowned: gone */
        rc = 0;
    }
    sbx_session_free(s);
    sbx_store_opts_free(&o);
    free(state);
    return rc;
}

int sbx_cmd_start(int argc, char **argv)
{
    int first;
    int h = simple_opts("start", start_usage, argc, argv, &first);
    if (h)
        return h > 0 ? 0 : SBX_EXIT_USAGE;
    if (argc - first != 1)
        return sbx_cli_usage_error("start", "give exactly one session");
    struct sbx_store_rec *r = NULL;
    int lock = -1;
    if (sbx_store_open(argv[first], 1, &r, &lock) < 0)
        return SBX_EXIT_SBX_FAILED;
    int rc = start_locked(r);
    sbx_store_unlock(lock);
    if (rc == 0)
        rc = sbx_cli_ports_start(r); /* listeners again, on new host ports */
    sbx_store_rec_free(r);
    return rc < 0 ? SBX_EXIT_SBX_FAILED : 0;
}

/* ---- rm, gc ----------------------------------------------------------------------------- */

/* Ends a running sandbox: through its control socket when it answers, else by killing the
 * agent (the documented way to end a detached sandbox), whose identity the recorded start
 * time confirms. */
static int end_sandbox(const struct sbx_store_rec *r)
{
    sbx_session *s = NULL;
    if (sbx_store_attach(r, 1, &s) == 0) {
        sbx_error *err = NULL;
        int rc = sbx_session_shutdown(s, &err);
        sbx_session_free(s);
        if (rc < 0) {
            print_err(label(r), err);
            return -1;
        }
        return 0;
    }
    if (!sbx_store_agent_alive(r))
        return 0;
    kill(r->agent_pid, SIGKILL);
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 1000 && sbx_store_agent_alive(r); i++)
        nanosleep(&ts, NULL);
    if (sbx_store_agent_alive(r))
        return sbx_store_fail("the agent (pid %d) of session %s does not die", (int)r->agent_pid,
                              label(r));
    return 0;
}

static int rm_one(const char *key, int force)
{
    struct sbx_store_rec *r = NULL;
    int lock = -1;
    if (sbx_store_open(key, 1, &r, &lock) < 0)
        return -1;
    int rc = 0;
    if (!r->stopped && sbx_store_agent_alive(r)) {
        if (!force)
            rc = sbx_store_fail("session %s is running: sbx stop it first or use -f", label(r));
        else
            rc = end_sandbox(r);
    }
    /* The workspace only once the sandbox is gone: a live process could move directories
     * under the removal. */
    if (rc == 0) {
        sbx_cli_ports_stop(r);
        rc = sbx_store_remove_owned_workspace(r->workspace, r->workspace_owned);
    }
    if (rc == 0)
        rc = sbx_store_remove(r);
    sbx_store_unlock(lock);
    sbx_store_rec_free(r);
    return rc;
}

int sbx_cmd_rm(int argc, char **argv)
{
    int force = 0, first = 1, n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--force")) {
            force = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(rm_usage, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--")) {
            first = i + 1;
            n += argc - first;
            break;
        } else if (argv[i][0] == '-') {
            return sbx_cli_usage_error("rm", "unknown option '%s'", argv[i]);
        } else {
            n++;
        }
    }
    if (n == 0)
        return sbx_cli_usage_error("rm", "give at least one session");
    int failed = 0, dashdash = 0;
    for (int i = 1; i < argc; i++) {
        if (!dashdash && !strcmp(argv[i], "--")) {
            dashdash = 1;
            continue;
        }
        if (!dashdash && argv[i][0] == '-')
            continue;
        failed |= rm_one(argv[i], force) < 0;
    }
    return failed ? SBX_EXIT_SBX_FAILED : 0;
}

int sbx_cmd_gc(int argc, char **argv)
{
    int first;
    int h = simple_opts("gc", gc_usage, argc, argv, &first);
    if (h)
        return h > 0 ? 0 : SBX_EXIT_USAGE;
    if (first < argc)
        return sbx_cli_usage_error("gc", "unexpected argument '%s'", argv[first]);
    char *statedir = NULL;
    struct sbx_store_rec **v = NULL;
    size_t n = 0;
    if (sbx_store_dir(0, &statedir) < 0 || sbx_store_list(statedir, &v, &n) < 0) {
        free(statedir);
        return SBX_EXIT_SBX_FAILED;
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i]->stopped)
            continue;
        struct sbx_store_rec *r = v[i];
        int lock = sbx_store_lock(r, 1);
        if (lock < 0) {
            failed = 1;
            continue;
        }
        /* Decided under the lock, on the record as it is now: a start may have just revived
         * it. Only a dead agent counts, never a socket that does not answer this once. */
        struct sbx_store_rec *now = sbx_store_reload(r);
        if (now && !now->stopped && !sbx_store_agent_alive(now)) {
            if (sbx_store_remove_owned_workspace(now->workspace, now->workspace_owned) == 0 &&
                sbx_store_remove(now) == 0)
                printf("removed %s%s%s%s\n", now->id, now->name ? " (" : "",
                       now->name ? now->name : "", now->name ? ")" : "");
            else
                failed = 1;
        }
        sbx_store_rec_free(now);
        sbx_store_unlock(lock);
    }
    sbx_store_list_free(v, n);
    free(statedir);
    return failed ? SBX_EXIT_SBX_FAILED : 0;
}
