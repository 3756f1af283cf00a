/* Exposed ports: a server inside a session reached from the host through the endpoint that
 * resolve_exposed_port returns (spec SESSION.md §14, TESTS.md L). Real traffic on the host's
 * loopback and the sandbox's own. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "session_util.h"
#include "util.h"

TestSuite(session_ports, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 120);

static sbx_session *start_with_ports(const int *ports, size_t n)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.exposed_ports = ports;
    o.n_exposed_ports = n;
    return sbx_test_start(&o);
}

/* Copies the static port_server into the workspace. */
static void install_server(sbx_session *s)
{
    int in = open(sbx_test_bin("port_server"), O_RDONLY | O_CLOEXEC);
    cr_assert(in >= 0, "%s not built: %s", sbx_test_bin("port_server"), strerror(errno));
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_write(s, "port_server", NULL, in, NULL, &err), 0, "%s", sbx_error_message(err));
    close(in);
    sbx_exec_result *r = sbx_test_sh(s, "chmod 755 port_server");
    cr_assert_eq(r->exit_code, 0);
    sbx_exec_result_free(r);
}

/* Starts `port_server ARGS` in the background (an interactive process of the session, killed
 * at shutdown) and waits until it listens. */
static void start_server(sbx_session *s, const char *const *args)
{
    const char *argv[8] = {"./port_server"};
    for (size_t i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i];
    sbx_pty_opts po = SBX_PTY_OPTS_INIT;
    po.argv = argv;
    po.shell = SBX_SHELL_NONE;
    po.flags = SBX_PTY_YIELD;
    po.yield_time_s = 0.25;
    sbx_pty_update *u = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_pty_exec_start(s, &po, &u, &err), 0, "%s", sbx_error_message(err));
    char seen[256] = "";
    snprintf(seen, sizeof(seen), "%.*s", (int)u->output_len, (const char *)u->output);
    int id = u->process_id;
    int exited = u->exited;
    sbx_pty_update_free(u);
    cr_assert(!exited, "port_server exited at once: %s", seen);
    for (int i = 0; i < 100 && !strstr(seen, "listening"); i++) {
        char buf[128];
        size_t n = 0;
        int ex = 0, code = 0;
        cr_assert_eq(sbx_pty_read(s, id, buf, sizeof(buf) - 1, 100, &n, &ex, &code, &err), 0,
                     "%s", sbx_error_message(err));
        cr_assert(!ex, "port_server exited with %d: %s", code, seen);
        buf[n] = '\0';
        strncat(seen, buf, sizeof(seen) - strlen(seen) - 1);
    }
    cr_assert(strstr(seen, "listening"), "port_server did not start: %s", seen);
}

static int dial(const sbx_endpoint *e)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->port)};
    cr_assert_eq(inet_pton(AF_INET, e->host, &a.sin_addr), 1, "host %s", e->host);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
    cr_assert_eq(sbx__write_full(fd, p, n), 0, "write: %s", strerror(errno));
}

/* Reads to EOF (bounded by cap) into a malloc'd buffer. */
static char *read_all(int fd, size_t cap, size_t *len)
{
    char *buf = malloc(cap + 1);
    size_t n = 0;
    ssize_t k;
    while (n < cap && (k = read(fd, buf + n, cap - n)) > 0)
        n += (size_t)k;
    buf[n] = '\0';
    *len = n;
    return buf;
}

static sbx_endpoint resolve(sbx_session *s, unsigned port)
{
    sbx_endpoint e;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_resolve_exposed_port(s, port, &e, &err), 0, "%s",
                 sbx_error_message(err));
    return e;
}

Test(session_ports, resolve_gives_a_stable_loopback_endpoint_and_refuses_unlisted_ports)
{
    int ports[] = {8765, 8765};
    sbx_session *s = start_with_ports(ports, 2);
    char *state = NULL;
    cr_assert_eq(sbx_session_state_json(s, &state, NULL), 0);
    const char *at = strstr(state, "\"exposed_ports\"");
    cr_assert_not_null(at);
    const char *first = strstr(at, "8765");
    cr_expect(first && !strstr(first + 4, "8765") && first < strchr(at, ']'),
              "one 8765, duplicates dropped: %s", state);
    free(state);
    sbx_endpoint a = resolve(s, 8765), b = resolve(s, 8765);
    cr_expect_str_eq(a.host, "127.0.0.1");
    cr_expect_eq(a.tls, 0);
    cr_expect_neq(a.port, 0u);
    cr_expect_eq(a.port, b.port, "one listener per port");

    sbx_endpoint c;
    sbx_error *err = NULL;
    cr_assert_lt(sbx_session_resolve_exposed_port(s, 9000, &c, &err), 0);
    cr_expect_eq(sbx_error_code(err), SBX_EEXPOSED_PORT_UNAVAILABLE);
    cr_expect_str_eq(sbx_error_message(err), "port 9000 is not configured for host exposure");
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "not_configured");
    cr_expect_str_eq(sbx_error_context_get(err, "exposed_ports"), "[8765]");
    cr_expect_str_eq(sbx_error_context_get(err, "retryable"), "false");
    sbx_error_free(err);
    sbx_session_free(s);
}

Test(session_ports, exposed_ports_are_validated_at_create)
{
    int bad[] = {8080, 0};
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.exposed_ports = bad;
    o.n_exposed_ports = 2;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    cr_assert_lt(sbx_session_new(&o, &s, &err), 0);
    cr_expect_str_eq(sbx_error_message(err), "exposed_ports entries must be between 1 and 65535");
    sbx_error_free(err);
    int big[] = {65536};
    o.exposed_ports = big;
    o.n_exposed_ports = 1;
    err = NULL;
    cr_assert_lt(sbx_session_new(&o, &s, &err), 0);
    sbx_error_free(err);
}

Test(session_ports, a_get_through_the_endpoint_returns_the_file)
{
    int ports[] = {8000};
    sbx_session *s = start_with_ports(ports, 1);
    install_server(s);
    cr_assert_eq(st_write_str(s, "index.html", "<h1>hello from the sandbox</h1>\n", NULL), 0);
    start_server(s, (const char *const[]){"http", "8000", NULL});
    sbx_endpoint e = resolve(s, 8000);
    char *url = NULL;
    cr_assert_eq(sbx_endpoint_url(&e, "http", &url, NULL), 0);
    char want[64];
    snprintf(want, sizeof(want), "http://127.0.0.1:%u/", e.port);
    cr_expect_str_eq(url, want);
    free(url);
    int fd = dial(&e);
    cr_assert(fd >= 0, "connect: %s", strerror(errno));
    const char *req = "GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n";
    write_all(fd, req, strlen(req));
    size_t n;
    char *resp = read_all(fd, 1 << 16, &n);
    close(fd);
    cr_expect(strncmp(resp, "HTTP/1.0 200 OK", 15) == 0, "response: %s", resp);
    cr_expect(strstr(resp, "\r\n\r\n<h1>hello from the sandbox</h1>\n"), "response: %s", resp);
    free(resp);
    sbx_session_free(s);
}

Test(session_ports, python_http_server_is_reached)
{
    int ports[] = {8081};
    sbx_session *s = start_with_ports(ports, 1);
    sbx_exec_result *r = sbx_test_sh(s, "command -v python3 || echo missing");
    int missing = strstr((const char *)r->out, "missing") != NULL;
    sbx_exec_result_free(r);
    if (missing) {
        sbx_session_free(s);
        cr_skip_test("python3 is not installed in the sandbox's /usr");
    }
    cr_assert_eq(st_write_str(s, "hello.txt", "served by python\n", NULL), 0);
    const char *argv[] = {"python3", "-u", "-m", "http.server", "--bind", "127.0.0.1", "8081",
                          NULL};
    sbx_pty_opts po = SBX_PTY_OPTS_INIT;
    po.argv = argv;
    po.shell = SBX_SHELL_NONE;
    sbx_pty_update *u = NULL;
    cr_assert_eq(sbx_pty_exec_start(s, &po, &u, NULL), 0);
    sbx_pty_update_free(u);
    sbx_endpoint e = resolve(s, 8081);
    /* Until python listens, the forwarder resets the connection. */
    char *resp = NULL;
    for (int i = 0; i < 100 && !resp; i++) {
        int fd = dial(&e);
        cr_assert(fd >= 0);
        const char *req = "GET /hello.txt HTTP/1.0\r\n\r\n";
        write_all(fd, req, strlen(req));
        size_t n;
        char *got = read_all(fd, 1 << 16, &n);
        close(fd);
        if (n > 0)
            resp = got;
        else
            free(got), usleep(100 * 1000);
    }
    cr_assert_not_null(resp, "python's server never answered");
    cr_expect(strstr(resp, " 200 "), "%s", resp);
    cr_expect(strstr(resp, "served by python\n"), "%s", resp);
    free(resp);
    sbx_session_free(s);
}

Test(session_ports, nothing_listening_resets_the_client_and_the_listener_survives)
{
    int ports[] = {8001};
    sbx_session *s = start_with_ports(ports, 1);
    sbx_endpoint e = resolve(s, 8001);
    int fd = dial(&e);
    cr_assert(fd >= 0, "the host listener accepts: %s", strerror(errno));
    char c;
    errno = 0;
    ssize_t k = read(fd, &c, 1);
    cr_expect(k == 0 || (k < 0 && errno == ECONNRESET), "read gave %zd (%s)", k,
              strerror(errno));
    close(fd);

    install_server(s);
    start_server(s, (const char *const[]){"echo", "8001", NULL});
    fd = dial(&e);
    cr_assert(fd >= 0);
    write_all(fd, "ping", 4);
    char buf[8] = {0};
    cr_assert_eq(read(fd, buf, 4), 4);
    cr_expect_str_eq(buf, "ping");
    close(fd);
    sbx_session_free(s);
}

Test(session_ports, an_ipv6_only_server_is_reached)
{
    int ports[] = {8002};
    sbx_session *s = start_with_ports(ports, 1);
    install_server(s);
    start_server(s, (const char *const[]){"-6", "echo", "8002", NULL});
    sbx_endpoint e = resolve(s, 8002);
    int fd = dial(&e);
    cr_assert(fd >= 0);
    write_all(fd, "six", 3);
    char buf[8] = {0};
    cr_assert_eq(read(fd, buf, 3), 3, "%s", strerror(errno));
    cr_expect_str_eq(buf, "six");
    close(fd);
    sbx_session_free(s);
}

Test(session_ports, a_hundred_concurrent_connections)
{
    int ports[] = {8003};
    sbx_session *s = start_with_ports(ports, 1);
    install_server(s);
    start_server(s, (const char *const[]){"echo", "8003", NULL});
    sbx_endpoint e = resolve(s, 8003);
    enum { N = 100 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = dial(&e);
        cr_assert(fds[i] >= 0, "connection %d: %s", i, strerror(errno));
    }
    /* All open at once; each gets its own answer back. */
    for (int i = 0; i < N; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "connection %03d\n", i);
        write_all(fds[i], msg, (size_t)n);
    }
    for (int i = N; i-- > 0;) {
        char want[32], got[32] = {0};
        int n = snprintf(want, sizeof(want), "connection %03d\n", i);
        size_t off = 0;
        while (off < (size_t)n) {
            ssize_t k = read(fds[i], got + off, (size_t)n - off);
            cr_assert(k > 0, "connection %d: %s", i, strerror(errno));
            off += (size_t)k;
        }
        cr_expect_str_eq(got, want);
        close(fds[i]);
    }
    sbx_session_free(s);
}

static unsigned char pattern(unsigned long long i)
{
    return (unsigned char)((i * 2654435761ULL) >> 13);
}

Test(session_ports, one_gib_arrives_intact)
{
    int ports[] = {8004};
    sbx_session *s = start_with_ports(ports, 1);
    install_server(s);
    const unsigned long long total = 1ULL << 30;
    start_server(s, (const char *const[]){"source", "8004", "1073741824", NULL});
    sbx_endpoint e = resolve(s, 8004);
    int fd = dial(&e);
    cr_assert(fd >= 0);
    static unsigned char buf[1 << 16];
    unsigned long long off = 0, bad = 0;
    ssize_t k;
    while ((k = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < k; i++)
            bad += buf[i] != pattern(off + (unsigned long long)i);
        off += (unsigned long long)k;
    }
    cr_expect_eq(k, 0, "read: %s", strerror(errno));
    close(fd);
    cr_expect_eq(off, total, "received %llu of %llu bytes", off, total);
    cr_expect_eq(bad, 0ULL, "%llu bytes differ", bad);
    sbx_session_free(s);
}

Test(session_ports, both_directions_and_half_close_through_echo)
{
    int ports[] = {8005};
    sbx_session *s = start_with_ports(ports, 1);
    install_server(s);
    start_server(s, (const char *const[]){"echo", "8005", NULL});
    sbx_endpoint e = resolve(s, 8005);
    int fd = dial(&e);
    cr_assert(fd >= 0);
    /* 32 MiB up while reading back, then shut our side: the echo ends and so does the
     * stream back, exactly. */
    enum { TOTAL = 32 << 20 };
    size_t sent = 0, got = 0;
    unsigned long long bad = 0;
    static unsigned char out[1 << 16], in[1 << 16];
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (got < TOTAL) {
        struct pollfd pf = {.fd = fd, .events = POLLIN | (sent < TOTAL ? POLLOUT : 0)};
        cr_assert_eq(poll(&pf, 1, 20000), 1, "stalled at %zu sent, %zu received", sent, got);
        if (pf.revents & POLLOUT) {
            size_t n = TOTAL - sent < sizeof(out) ? TOTAL - sent : sizeof(out);
            for (size_t i = 0; i < n; i++)
                out[i] = pattern(sent + i);
            ssize_t w = write(fd, out, n);
            if (w > 0)
                sent += (size_t)w;
            if (sent == TOTAL)
                shutdown(fd, SHUT_WR);
        }
        if (pf.revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(fd, in, sizeof(in));
            cr_assert(r > 0 || (r < 0 && errno == EAGAIN), "read %zd: %s", r, strerror(errno));
            for (ssize_t i = 0; i < r; i++)
                bad += in[i] != pattern(got + (size_t)i);
            if (r > 0)
                got += (size_t)r;
        }
    }
    fcntl(fd, F_SETFL, 0);
    char c;
    cr_expect_eq(read(fd, &c, 1), 0, "EOF after the echo of everything");
    close(fd);
    cr_expect_eq(bad, 0ULL);
    sbx_session_free(s);
}

/* The host listener is on 127.0.0.1 only: another machine, or anything reaching this one's
 * other addresses, finds nothing at that port. */
Test(session_ports, the_listener_is_on_loopback_only)
{
    int ports[] = {8008};
    sbx_session *s = start_with_ports(ports, 1);
    sbx_endpoint e = resolve(s, 8008);
    struct ifaddrs *ifs = NULL;
    cr_assert_eq(getifaddrs(&ifs), 0);
    int tried = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        struct sockaddr_in a = *(struct sockaddr_in *)i->ifa_addr;
        if ((ntohl(a.sin_addr.s_addr) >> 24) == 127)
            continue;
        a.sin_port = htons((uint16_t)e.port);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        errno = 0;
        int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
        int err = errno;
        close(fd);
        cr_expect(r < 0 && err == ECONNREFUSED, "port %u answers on %s (%s)", e.port,
                  inet_ntoa(a.sin_addr), strerror(err));
        tried++;
    }
    freeifaddrs(ifs);
    sbx_session_free(s);
    if (!tried)
        cr_skip_test("this host has no IPv4 address but loopback to try");
}

Test(session_ports, listeners_close_at_shutdown_and_a_stopped_session_cannot_resolve)
{
    int ports[] = {8006};
    sbx_session *s = start_with_ports(ports, 1);
    sbx_endpoint e = resolve(s, 8006);
    cr_assert_eq(sbx_session_shutdown(s, NULL), 0);
    cr_expect_lt(dial(&e), 0, "the listener is gone");
    cr_expect_eq(errno, ECONNREFUSED);
    sbx_endpoint x;
    sbx_error *err = NULL;
    cr_assert_lt(sbx_session_resolve_exposed_port(s, 8006, &x, &err), 0);
    cr_expect_eq(sbx_error_code(err), SBX_EEXPOSED_PORT_UNAVAILABLE);
    cr_expect_str_eq(sbx_error_message(err), "port 8006 could not be resolved for host exposure");
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "backend_unavailable");
    sbx_error_free(err);
    sbx_session_free(s);
}

Test(session_ports, url_for_follows_the_spec)
{
    sbx_endpoint e = {.host = "127.0.0.1", .port = 8765};
    const char *cases[][2] = {{"http", "http://127.0.0.1:8765/"}, {"WS", "ws://127.0.0.1:8765/"}};
    for (size_t i = 0; i < 2; i++) {
        char *u = NULL;
        cr_assert_eq(sbx_endpoint_url(&e, cases[i][0], &u, NULL), 0);
        cr_expect_str_eq(u, cases[i][1]);
        free(u);
    }
    sbx_endpoint t = {.host = "sandbox.example.test", .port = 443, .tls = 1};
    char *u = NULL;
    cr_assert_eq(sbx_endpoint_url(&t, "http", &u, NULL), 0);
    cr_expect_str_eq(u, "https://sandbox.example.test/");
    free(u);
    cr_assert_eq(sbx_endpoint_url(&t, "ws", &u, NULL), 0);
    cr_expect_str_eq(u, "wss://sandbox.example.test/");
    free(u);
    snprintf(e.query, sizeof(e.query), "?x=1");
    cr_assert_eq(sbx_endpoint_url(&e, "http", &u, NULL), 0);
    cr_expect_str_eq(u, "http://127.0.0.1:8765/?x=1");
    free(u);
    snprintf(e.query, sizeof(e.query), "x=1");
    cr_assert_eq(sbx_endpoint_url(&e, "http", &u, NULL), 0);
    cr_expect_str_eq(u, "http://127.0.0.1:8765/?x=1");
    free(u);
    sbx_endpoint v6 = {.host = "::1", .port = 80};
    cr_assert_eq(sbx_endpoint_url(&v6, "http", &u, NULL), 0);
    cr_expect_str_eq(u, "http://[::1]/");
    free(u);
    sbx_error *err = NULL;
    cr_expect_lt(sbx_endpoint_url(&e, "ftp", &u, &err), 0);
    cr_expect_str_eq(sbx_error_message(err), "scheme must be either 'http' or 'ws'");
    sbx_error_free(err);
}

static int collect_fn(const sbx_event *ev, sbx_session *s, void *ud)
{
    (void)s;
    if (strcmp(sbx_event_op(ev), "resolve_exposed_port") == 0) {
        char *buf = ud;
        strncat(buf, sbx_event_json(ev), 4000 - strlen(buf));
        strcat(buf, "\n");
    }
    return 0;
}

/* EVENTS.md §3: start data {"port"}, finish data replaced by server.port and, for a loopback
 * host, server.address. */
Test(session_ports, resolve_emits_its_events)
{
    static char lines[4100];
    lines[0] = '\0';
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_callback(collect_fn, lines, NULL, &k, NULL), 0);
    sbx_events *ev = NULL;
    cr_assert_eq(sbx_events_new(NULL, &ev, NULL), 0);
    cr_assert_eq(sbx_events_add_sink(ev, k, NULL), 0);
    int ports[] = {8765};
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.exposed_ports = ports;
    o.n_exposed_ports = 1;
    o.events = ev;
    sbx_session *s = sbx_test_start(&o);
    sbx_events_free(ev);
    sbx_endpoint e = resolve(s, 8765);
    char *nl = strchr(lines, '\n');
    cr_assert_not_null(nl, "no events: %s", lines);
    *nl = '\0';
    json_object *start = json_tokener_parse(lines), *fin = json_tokener_parse(nl + 1), *d, *v;
    cr_assert(start && fin, "%s", lines);
    cr_assert(json_object_object_get_ex(start, "data", &d));
    cr_expect(json_object_object_get_ex(d, "port", &v) && json_object_get_int(v) == 8765);
    cr_assert(json_object_object_get_ex(fin, "data", &d));
    cr_expect(!json_object_object_get_ex(d, "port", NULL), "finish data replaces start data");
    cr_expect(json_object_object_get_ex(d, "server.port", &v) &&
              json_object_get_int(v) == (int)e.port);
    cr_expect(json_object_object_get_ex(d, "server.address", &v) &&
              !strcmp(json_object_get_string(v), "127.0.0.1"));
    json_object_put(start);
    json_object_put(fin);
    sbx_session_free(s);
}

/* A child the embedder forks holds copies of every socket the relay has until it execs or
 * exits. Connections that end meanwhile must leave the relay's epoll set for real (closing
 * its own descriptor is not enough then), or the relay would hear of them after freeing
 * them: under ASan that aborts this test. */
Test(session_ports, a_forked_child_holding_the_relays_sockets_does_not_confuse_it)
{
    int ports[] = {8007};
    sbx_session *s = start_with_ports(ports, 1);
    install_server(s);
    start_server(s, (const char *const[]){"echo", "8007", NULL});
    sbx_endpoint e = resolve(s, 8007);
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = dial(&e);
        cr_assert(fds[i] >= 0);
        write_all(fds[i], "x", 1);
        char c;
        cr_assert_eq(read(fds[i], &c, 1), 1);
    }
    pid_t child = fork();
    if (child == 0) {
        usleep(500 * 1000);
        _exit(0);
    }
    /* End each connection for real (shutdown acts on the socket, whoever holds copies): the
     * relay closes its sockets while the child still holds copies of them. */
    for (int i = 0; i < 8; i++) {
        shutdown(fds[i], SHUT_WR);
        char c;
        cr_expect_eq(read(fds[i], &c, 1), 0, "EOF once the echo ended");
        close(fds[i]);
    }
    usleep(200 * 1000);
    int fd = dial(&e);
    cr_assert(fd >= 0);
    write_all(fd, "after", 5);
    char buf[8] = {0};
    cr_expect_eq(read(fd, buf, 5), 5);
    cr_expect_str_eq(buf, "after");
    close(fd);
    waitpid(child, NULL, 0);
    sbx_session_free(s);
}
