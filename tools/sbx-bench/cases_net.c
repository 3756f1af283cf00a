/* cases_net.c — exposed ports: a TCP server reached directly on the host's loopback (the
 * baseline) against the same server inside a session, reached through the endpoint that
 * sbx_session_resolve_exposed_port returns (host listener, connect by the agent, splice).
 *
 * The server is sbx-bench itself (`sbx-bench --net-server MODE PORT`), run on the host for the
 * baseline and, inside the session, from a read-only bind of the directory it lives in. It
 * serves one connection at a time: `echo` sends back one byte, `source` sends NET_BYTES.
 *
 *   net_connect  connect, one byte there and back, close: connection set-up latency
 *   net_1g       read 1 GiB to EOF: throughput
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/sbx.h>

#include "bench.h"
#include "util.h"

#define NET_BYTES   (1ULL << 30)
#define INSIDE_PORT 7000
#define BENCH_DIR   "/opt/sbx-bench"

/* ---- the server ------------------------------------------------------------------------- */

int bench_net_server(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int source = strcmp(argv[0], "source") == 0;
    signal(SIGPIPE, SIG_IGN);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 64) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) < 0) {
        perror("net-server");
        return 1;
    }
    printf("%u\n", ntohs(a.sin_port)); /* the port, once listening */
    fflush(stdout);
    static char buf[1 << 16];
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0)
            continue;
        if (source) {
            for (unsigned long long off = 0; off < NET_BYTES; off += sizeof(buf))
                if (sbx__write_full(c, buf, sizeof(buf)) < 0)
                    break;
        } else {
            char b;
            if (read(c, &b, 1) == 1)
                (void)!write(c, &b, 1);
        }
        close(c);
    }
}

/* ---- the client ------------------------------------------------------------------------- */

struct net_state {
    int source;
    unsigned port; /* where the client connects (host loopback) */
    pid_t server;  /* the host server (baseline) */
    sbx_session *s;
};

static int dial(unsigned port, char *why)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        bench_why(why, "connect to 127.0.0.1:%u: %s", port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int net_run(void *state, char *why)
{
    struct net_state *st = state;
    int fd = dial(st->port, why);
    if (fd < 0)
        return -1;
    int rc = 0;
    if (st->source) {
        static char buf[1 << 17];
        unsigned long long got = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            got += (unsigned long long)n;
        if (got != NET_BYTES)
            rc = bench_why(why, "received %llu of %llu bytes (%s)", got, NET_BYTES,
                           n < 0 ? strerror(errno) : "EOF");
    } else {
        char b = 'x';
        if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1)
            rc = bench_why(why, "no echo: %s", strerror(errno));
    }
    close(fd);
    return rc;
}

static void net_close(void *state)
{
    struct net_state *st = state;
    if (!st)
        return;
    if (st->server > 0) {
        kill(st->server, SIGKILL);
        waitpid(st->server, NULL, 0);
    }
    sbx_session_free(st->s); /* kills the server inside too */
    free(st);
}

static int self_path(char *buf, size_t cap, char *why)
{
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    if (n <= 0)
        return bench_why(why, "readlink /proc/self/exe: %s", strerror(errno));
    buf[n] = '\0';
    return 0;
}

static int direct_open(const struct bench_variant *v, const char *const *cmd, void **state,
                       char *why)
{
    (void)cmd;
    char self[PATH_MAX];
    int p[2];
    struct net_state *st = calloc(1, sizeof(*st));
    if (!st || self_path(self, sizeof(self), why) < 0 || pipe(p) < 0) {
        free(st);
        return why[0] ? -1 : bench_why(why, "out of resources");
    }
    st->source = v->data != NULL;
    st->server = fork();
    if (st->server == 0) {
        dup2(p[1], 1);
        close(p[0]);
        execl(self, self, "--net-server", st->source ? "source" : "echo", "0", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[32] = "";
    ssize_t n = read(p[0], line, sizeof(line) - 1);
    close(p[0]);
    st->port = n > 0 ? (unsigned)atoi(line) : 0;
    *state = st;
    return st->port ? 0 : bench_why(why, "the host server did not start");
}

static int sbx_open(const struct bench_variant *v, const char *const *cmd, void **state,
                    char *why)
{
    (void)cmd;
    char self[PATH_MAX];
    struct net_state *st = calloc(1, sizeof(*st));
    if (!st || self_path(self, sizeof(self), why) < 0) {
        free(st);
        return why[0] ? -1 : bench_why(why, "out of memory");
    }
    st->source = v->data != NULL;
    *state = st;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", self);
    *strrchr(dir, '/') = '\0';
    sbx_bind bind = {.src = dir, .dst = BENCH_DIR, .readonly = 1};
    int port = INSIDE_PORT;
    sbx_session_opts so = SBX_SESSION_OPTS_INIT;
    so.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    so.binds = &bind;
    so.n_binds = 1;
    so.exposed_ports = &port;
    so.n_exposed_ports = 1;
    char exe[PATH_MAX + 32], portstr[16];
    snprintf(exe, sizeof(exe), BENCH_DIR "/%s", strrchr(self, '/') + 1);
    snprintf(portstr, sizeof(portstr), "%d", port);
    const char *argv[] = {exe, "--net-server", st->source ? "source" : "echo", portstr, NULL};
    sbx_pty_opts po = SBX_PTY_OPTS_INIT;
    po.argv = argv;
    po.shell = SBX_SHELL_NONE;
    po.flags = SBX_PTY_YIELD;
    po.yield_time_s = 0.25;
    sbx_pty_update *u = NULL;
    sbx_endpoint e;
    sbx_error *err = NULL;
    if (sbx_session_new(&so, &st->s, &err) < 0 || sbx_session_start(st->s, &err) < 0 ||
        sbx_pty_exec_start(st->s, &po, &u, &err) < 0 ||
        sbx_session_resolve_exposed_port(st->s, INSIDE_PORT, &e, &err) < 0) {
        bench_why(why, "starting the server in a session: %s", sbx_error_message(err));
        sbx_error_free(err);
        return -1;
    }
    int up = u->output_len > 0 && !u->exited;
    sbx_pty_update_free(u);
    if (!up)
        return bench_why(why, "the server inside did not start");
    st->port = e.port;
    return 0;
}

static const struct bench_ops direct_ops = {.open = direct_open, .run = net_run, .close = net_close};
static const struct bench_ops sbx_ops = {.open = sbx_open, .run = net_run, .close = net_close};

static const int source_flag = 1;

static const struct bench_variant connect_variants[] = {
    {.name = "loopback", .ops = &direct_ops},
    {.name = "sbx port", .ops = &sbx_ops},
};

static const struct bench_variant bulk_variants[] = {
    {.name = "loopback", .ops = &direct_ops, .data = &source_flag},
    {.name = "sbx port", .ops = &sbx_ops, .data = &source_flag},
};

const struct bench_case bench_case_net_connect = {
    .name = "net_connect",
    .title = "exposed port: connect, 1 byte there and back, close",
    .variants = connect_variants,
    .n_variants = 2,
};

const struct bench_case bench_case_net_1g = {
    .name = "net_1g",
    .title = "exposed port: 1 GiB from a server to the host",
    .variants = bulk_variants,
    .n_variants = 2,
    .max_runs = 7,
};
