/* cmd_port.c — exposed ports of CLI sessions: `sbx port SESSION [PORT]`, and the forwarder
 * process that holds their host listeners and their egress proxy.
 *
 * A listener belongs to the process that resolved it (sbx/net.h), the proxy to the process
 * that serves it, and `sbx create` exits at once: so each session with exposed ports or
 * --net proxy gets a small forwarder process, `sbx port --serve ID`, started by create and
 * start (or by the first `sbx port` when none runs). It attaches to the sandbox, resolves
 * every exposed port, takes the proxy over, writes the endpoints to <session
 * dir>/ports.json, tells its starter it is ready, and serves until the sandbox is gone (stop,
 * rm, or its death), then exits. Its command name is "sbx-ports".
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "session_store.h"

static const char port_usage[] =
    "usage: sbx port SESSION [PORT]\n"
    "\n"
    "Prints the host address (127.0.0.1:PORT) that reaches PORT inside the session, or every\n"
    "exposed port as 'PORT HOST:PORT' lines. Ports are listed at create (sbx create -p PORT).\n"
    "A connection to a port where nothing listens inside is reset.\n";

/* The configured ports, from the session's state object. */
static int exposed_ports(const struct sbx_store_rec *r, int *ports, size_t cap, size_t *n)
{
    *n = 0;
    char *state = sbx_store_load_state(r);
    if (!state)
        return -1;
    json_object *o = json_tokener_parse(state), *a = NULL;
    free(state);
    if (o && json_object_object_get_ex(o, "exposed_ports", &a) &&
        json_object_is_type(a, json_type_array))
        for (size_t i = 0; i < json_object_array_length(a) && *n < cap; i++)
            ports[(*n)++] = json_object_get_int(json_object_array_get_idx(a, i));
    json_object_put(o);
    return 0;
}

static char *ports_path(const struct sbx_store_rec *r)
{
    char *p = NULL;
    return asprintf(&p, "%s/ports.json", r->dir) < 0 ? NULL : p;
}

/* The forwarder's endpoints when it is alive: {"pid", "start", "ports": {"8000": 41234}}. */
static json_object *load_ports(const struct sbx_store_rec *r)
{
    char *path = ports_path(r);
    json_object *o = path ? json_object_from_file(path) : NULL, *v;
    free(path);
    if (!o)
        return NULL;
    pid_t pid = json_object_object_get_ex(o, "pid", &v) ? json_object_get_int(v) : 0;
    unsigned long long start =
        json_object_object_get_ex(o, "start", &v) ? (unsigned long long)json_object_get_int64(v)
                                                  : 0;
    if (pid <= 0 || sbx_store_proc_start(pid) != start) {
        json_object_put(o);
        return NULL; /* a forwarder of an earlier run of the session */
    }
    return o;
}

/* Whether the session's egress proxy needs a host process (--net proxy). */
static int wants_proxy(const struct sbx_store_rec *r)
{
    json_object *v = NULL;
    return json_object_object_get_ex(r->opts, "net", &v) &&
           !strcmp(json_object_get_string(v), "proxy");
}

/* ---- the forwarder ------------------------------------------------------------------------ */

static void tell(int fd, const char *msg)
{
    if (fd >= 0) {
        (void)!write(fd, msg, strlen(msg));
        close(fd);
    }
}

static int save_ports(const struct sbx_store_rec *r, json_object *map)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pid", json_object_new_int(getpid()));
    json_object_object_add(o, "start", json_object_new_int64((int64_t)sbx_store_proc_start(getpid())));
    json_object_object_add(o, "ports", json_object_get(map));
    char *path = ports_path(r), *tmp = NULL;
    int rc = -1;
    if (path && asprintf(&tmp, "%s.tmp", path) >= 0 &&
        json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PLAIN) == 0 && rename(tmp, path) == 0)
        rc = 0;
    free(path);
    free(tmp);
    json_object_put(o);
    return rc;
}

/* Runs until the sandbox is gone. `ready` gets "ok" or one line saying what failed. */
static int serve(const char *key, int ready)
{
    prctl(PR_SET_NAME, "sbx-ports", 0, 0, 0);
    struct sbx_store_rec *r = NULL;
    sbx_session *s = NULL;
    int lock = -1, ports[64];
    size_t n = 0;
    char msg[512];
    if (sbx_store_open(key, 0, &r, &lock) < 0 || exposed_ports(r, ports, 64, &n) < 0 ||
        sbx_store_attach(r, 0, &s) < 0) {
        tell(ready, "could not attach to the session\n");
        sbx_store_unlock(lock);
        sbx_store_rec_free(r);
        return SBX_EXIT_SBX_FAILED;
    }
    json_object *map = json_object_new_object();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sbx_endpoint e;
        sbx_error *err = NULL;
        if ((rc = sbx_session_resolve_exposed_port(s, (unsigned)ports[i], &e, &err)) < 0) {
            snprintf(msg, sizeof(msg), "port %d: %s\n", ports[i], sbx_error_message(err));
            sbx_error_free(err);
            break;
        }
        char k[16], v[300];
        snprintf(k, sizeof(k), "%d", ports[i]);
        snprintf(v, sizeof(v), "%s:%u", e.host, e.port);
        json_object_object_add(map, k, json_object_new_string(v));
    }
    if (rc == 0 && wants_proxy(r)) {
        /* The creator's proxy went with its handle: this process serves it from now on. */
        sbx_error *err = NULL;
        if ((rc = sbx_session_serve_network(s, &err)) < 0)
            snprintf(msg, sizeof(msg), "the egress proxy: %s\n", sbx_error_message(err));
        sbx_error_free(err);
    }
    if (rc == 0 && save_ports(r, map) < 0) {
        snprintf(msg, sizeof(msg), "cannot write %s/ports.json: %s\n", r->dir, strerror(errno));
        rc = -1;
    }
    json_object_put(map);
    pid_t agent = r->agent_pid;
    sbx_store_unlock(lock);
    sbx_store_rec_free(r);
    if (rc < 0) {
        tell(ready, msg);
        sbx_session_free(s);
        return SBX_EXIT_SBX_FAILED;
    }
    tell(ready, "ok\n");
    /* Relaying happens on the library's thread; this one waits for the sandbox to end, or
     * to be told to stop. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct pollfd pf[2] = {{.fd = (int)syscall(SYS_pidfd_open, agent, 0), .events = POLLIN},
                           {.fd = signalfd(-1, &set, SFD_CLOEXEC), .events = POLLIN}};
    while (pf[0].fd >= 0 && pf[1].fd >= 0 && poll(pf, 2, -1) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < 2; i++)
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    sbx_session_free(s); /* attached: disconnects and closes the listeners */
    return 0;
}

/* Starts a forwarder for the session and waits until it is ready. */
static int spawn(const struct sbx_store_rec *r)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return sbx_store_fail("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return sbx_store_fail("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* A daemon of its own: its own session, stdio on /dev/null, and a grandchild, so it
         * is no child of the caller's shell. */
        close(p[0]);
        setsid();
        if (fork() != 0)
            _exit(0);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        _exit(serve(r->id, p[1]));
    }
    close(p[1]);
    waitpid(pid, NULL, 0);
    char buf[600] = "";
    size_t off = 0;
    ssize_t k;
    while (off < sizeof(buf) - 1 && (k = read(p[0], buf + off, sizeof(buf) - 1 - off)) > 0)
        off += (size_t)k;
    close(p[0]);
    buf[off] = '\0';
    if (strcmp(buf, "ok\n") != 0)
        return sbx_store_fail("forwarding the ports of session %.8s failed: %s", r->id,
                              buf[0] ? strtok(buf, "\n") : "the forwarder died");
    return 0;
}

int sbx_cli_ports_start(const struct sbx_store_rec *r)
{
    int ports[1];
    size_t n = 0;
    if (exposed_ports(r, ports, 1, &n) < 0 || (n == 0 && !wants_proxy(r)))
        return 0;
    json_object *o = load_ports(r);
    if (o) {
        json_object_put(o);
        return 0;
    }
    return spawn(r);
}

void sbx_cli_ports_stop(const struct sbx_store_rec *r)
{
    json_object *o = load_ports(r), *v;
    if (!o)
        return;
    pid_t pid = json_object_object_get_ex(o, "pid", &v) ? json_object_get_int(v) : 0;
    unsigned long long start = sbx_store_proc_start(pid);
    json_object_put(o);
    /* load_ports checked the start time: pid is the forwarder, not a reused pid. */
    kill(pid, SIGTERM);
    struct timespec ts = {0, 10 * 1000 * 1000};
    for (int i = 0; i < 500 && sbx_store_proc_start(pid) == start; i++)
        nanosleep(&ts, NULL);
}

/* ---- sbx port ----------------------------------------------------------------------------- */

int sbx_cmd_port(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--serve") == 0)
        return serve(argv[2], -1);
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(port_usage, stdout);
        return 0;
    }
    if (argc < 2 || argc > 3)
        return sbx_cli_usage_error("port", "expected SESSION [PORT]");
    long want = 0;
    if (argc == 3) {
        char *end = NULL;
        want = strtol(argv[2], &end, 10);
        if (!*argv[2] || *end || want < 1 || want > 65535)
            return sbx_cli_usage_error("port", "'%s' is not a TCP port (1 to 65535)", argv[2]);
    }
    struct sbx_store_rec *r = NULL;
    int lock = -1, ports[64];
    size_t n = 0;
    if (sbx_store_open(argv[1], 0, &r, &lock) < 0)
        return SBX_EXIT_SBX_FAILED;
    int rc = exposed_ports(r, ports, 64, &n);
    int listed = want == 0;
    for (size_t i = 0; i < n; i++)
        listed |= ports[i] == want;
    if (rc == 0 && n == 0)
        rc = sbx_store_fail("session %.8s exposes no ports: create it with -p PORT", r->id);
    else if (rc == 0 && !listed)
        rc = sbx_store_fail("port %ld is not configured for host exposure in session %.8s "
                            "(see sbx port %.8s)",
                            want, r->id, r->id);
    else if (rc == 0 && r->stopped)
        rc = sbx_store_fail("session %.8s is stopped: sbx start %.8s", r->id, r->id);
    sbx_store_unlock(lock); /* the forwarder takes it itself */
    if (rc == 0)
        rc = sbx_cli_ports_start(r);
    json_object *o = rc == 0 ? load_ports(r) : NULL, *map = NULL;
    if (rc == 0 && !(o && json_object_object_get_ex(o, "ports", &map)))
        rc = sbx_store_fail("session %.8s has no port forwarder running", r->id);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char k[16];
        snprintf(k, sizeof(k), "%d", ports[i]);
        json_object *v = NULL;
        if (!json_object_object_get_ex(map, k, &v))
            continue;
        if (want == 0)
            printf("%d %s\n", ports[i], json_object_get_string(v));
        else if (ports[i] == want)
            printf("%s\n", json_object_get_string(v));
    }
    json_object_put(o);
    sbx_store_rec_free(r);
    return rc < 0 ? SBX_EXIT_SBX_FAILED : 0;
}
