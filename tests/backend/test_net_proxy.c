/* The host-side HTTP proxy engine (backend/net_proxy.c), against real sockets: the
 * destination is a server in its own network namespace (tests/support/netns_peer.c), the
 * client a socket handed to sbx__proxy_serve(). Every wait is bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "net_proxy.h"
#include "netns_peer.h"
#include "util.h"

#define BODY "hello from the peer namespace\n"

static struct sbx_netns_peer peer;
static struct sbx_proxy *proxy;

/* ---- events ------------------------------------------------------------------------------ */

struct ev {
    char method[32], host[256], reason[64], message[1024], address[64];
    int has_method, allowed, status;
    unsigned port;
    uint64_t up, down;
};

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ev evs[256];
static int nevs;

static void on_log(void *arg, const struct sbx_proxy_event *e)
{
    (void)arg;
    pthread_mutex_lock(&ev_mu);
    if (nevs < 256) {
        struct ev *v = &evs[nevs++];
        memset(v, 0, sizeof(*v));
        v->has_method = e->method != NULL;
        snprintf(v->method, sizeof(v->method), "%s", e->method ? e->method : "");
        snprintf(v->host, sizeof(v->host), "%s", e->host ? e->host : "");
        snprintf(v->reason, sizeof(v->reason), "%s", e->reason ? e->reason : "");
        snprintf(v->message, sizeof(v->message), "%s", e->message ? e->message : "");
        snprintf(v->address, sizeof(v->address), "%s", e->address ? e->address : "");
        v->allowed = e->allowed;
        v->status = e->status;
        v->port = e->port;
        v->up = e->bytes_up;
        v->down = e->bytes_down;
        cr_expect(e->allowed ? e->reason == NULL : e->reason != NULL);
        cr_expect(e->duration_ms >= 0);
    }
    pthread_mutex_unlock(&ev_mu);
}

/* Waits for the n-th event (1-based) and returns a copy. */
static struct ev wait_event(int n)
{
    struct ev v;
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&ev_mu);
        int have = nevs;
        if (have >= n)
            v = evs[n - 1];
        pthread_mutex_unlock(&ev_mu);
        if (have >= n)
            return v;
        usleep(10000);
    }
    cr_assert_fail("no event #%d after 10 s", n);
    return v;
}

static int event_count(void)
{
    pthread_mutex_lock(&ev_mu);
    int n = nevs;
    pthread_mutex_unlock(&ev_mu);
    return n;
}

/* ---- fixture ------------------------------------------------------------------------------ */

static void setup(void)
{
    sbx_test_init();
    nevs = 0;
    char why[256];
    if (sbx_netns_peer_start(&peer, BODY, why, sizeof(why)) != 0)
        cr_skip_test("netns peer: %s", why);
}

static void teardown(void)
{
    sbx__proxy_free(proxy);
    proxy = NULL;
    sbx_netns_peer_stop(&peer);
    sbx_test_fini();
}

TestSuite(net_proxy, .init = setup, .fini = teardown, .timeout = 60);

static void start_proxy(const char *const *allow, const char *const *hosts,
                        struct sbx_proxy_config *tune)
{
    struct sbx_proxy_config c = {0};
    if (tune)
        c = *tune;
    c.allow = allow;
    c.hosts = hosts;
    c.log = on_log;
    sbx_error *err = NULL;
    int r = sbx__proxy_new(&c, &proxy, &err);
    cr_assert_eq(r, 0, "proxy_new: %s", sbx_error_message(err));
}

/* A client connection: one end of a socketpair served by the proxy. */
static int client(void)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(sbx__proxy_serve(proxy, sv[1]), 0);
    return sv[0];
}

static void send_str(int fd, const char *s)
{
    cr_assert_eq(sbx__write_full_nosig(fd, s, strlen(s)), 0, "send: %s", strerror(errno));
}

/* Reads until EOF (or cap-1 bytes), failing after ms. NUL-terminates. */
static size_t read_all(int fd, char *buf, size_t cap, int ms)
{
    size_t len = 0;
    uint64_t end = sbx__now_ns() + (uint64_t)ms * 1000000ull;
    for (;;) {
        uint64_t now = sbx__now_ns();
        cr_assert(now < end, "no EOF within %d ms (got %zu bytes: %.200s)", ms, len, buf);
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, (int)((end - now) / 1000000ull) + 1);
        if (r <= 0)
            continue;
        ssize_t k = read(fd, buf + len, cap - 1 - len);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        buf[len] = '\0';
        if (len + 1 >= cap)
            break;
    }
    buf[len] = '\0';
    return len;
}

/* One request through a fresh connection; the whole answer in out. */
static void request(const char *req, char *out, size_t cap)
{
    int fd = client();
    send_str(fd, req);
    read_all(fd, out, cap, 10000);
    close(fd);
}

static void expect_status(const char *resp, int status)
{
    char want[32];
    snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
    cr_expect(strncmp(resp, want, strlen(want)) == 0, "expected %d, got: %.300s", status, resp);
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* ---- security --------------------------------------------------------------------------- */

Test(net_proxy, not_allowed_host_gets_403_with_a_clear_message_and_an_event)
{
    const char *allow[] = {"allowed.test", "*.example.com", NULL};
    char hostmap[64];
    snprintf(hostmap, sizeof(hostmap), "allowed.test=%s", peer.peer_ip);
    const char *hosts[] = {hostmap, NULL};
    start_proxy(allow, hosts, NULL);
    char resp[4096];
    request("GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n", resp, sizeof(resp));
    expect_status(resp, 403);
    cr_expect(strstr(resp, "Content-Type: text/plain") != NULL);
    cr_expect(strstr(body_of(resp), "sbx proxy: example.org is not in this session's allow list "
                                    "(allowed: allowed.test, *.example.com)") != NULL,
              "%s", resp);
    struct ev e = wait_event(1);
    cr_expect_eq(e.allowed, 0);
    cr_expect_str_eq(e.reason, "not_allowed");
    cr_expect_str_eq(e.method, "GET");
    cr_expect_str_eq(e.host, "example.org");
    cr_expect_eq(e.port, 80);
    cr_expect_eq(e.status, 403);
    cr_expect_eq(e.up + e.down, 0);

    /* CONNECT is checked the same way, and nothing is connected */
    request("CONNECT evil.test:443 HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    expect_status(resp, 403);
    e = wait_event(2);
    cr_expect_str_eq(e.reason, "not_allowed");
    cr_expect_str_eq(e.address, "");
}

Test(net_proxy, wildcard_matches_subdomains_only)
{
    const char *allow[] = {"*.suffix.test", NULL};
    const char *names[] = {"a.suffix.test", "x.y.suffix.test", "A.Suffix.TEST.", "suffix.test",
                           "badsuffix.test", "suffix.test.evil", "a.suffix.test.evil", NULL};
    const int ok[] = {1, 1, 1, 0, 0, 0, 0};
    char maps[8][64];
    const char *hosts[9];
    for (int i = 0; names[i]; i++) {
        snprintf(maps[i], sizeof(maps[i]), "%s=%s", names[i], peer.peer_ip);
        hosts[i] = maps[i];
        hosts[i + 1] = NULL;
    }
    start_proxy(allow, hosts, NULL);
    for (int i = 0; names[i]; i++) {
        char req[256], resp[4096];
        snprintf(req, sizeof(req), "GET http://%s:%u/body HTTP/1.1\r\n\r\n", names[i],
                 peer.http_port);
        request(req, resp, sizeof(resp));
        expect_status(resp, ok[i] ? 200 : 403);
        if (ok[i])
            cr_expect_str_eq(body_of(resp), BODY, "%s", names[i]);
        struct ev e = wait_event(i + 1);
        cr_expect_eq(e.allowed, ok[i], "%s", names[i]);
    }
}

Test(net_proxy, names_resolving_to_loopback_or_metadata_are_forbidden)
{
    /* a host service on loopback that the proxy must never reach */
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(ls, 16), 0);
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    unsigned lport = ntohs(a.sin_port);

    char hostside[64];
    snprintf(hostside, sizeof(hostside), "own.test=%s", peer.host_ip);
    const char *allow[] = {"rebind.test", "meta.test", "mapped.test", "localhost", "zero.test",
                           "mcast.test", "own.test", "v6lo.test", NULL};
    const char *hosts[] = {"rebind.test=127.0.0.1", "meta.test=169.254.169.254",
                           "mapped.test=::ffff:127.0.0.1", "zero.test=0.0.0.0",
                           "mcast.test=224.0.0.1", hostside, "v6lo.test=::1", NULL};
    struct sbx_proxy_config tune = {.resolve_timeout_ms = 5000};
    start_proxy(allow, hosts, &tune);
    const char *names[] = {"rebind.test", "meta.test", "mapped.test", "localhost", "zero.test",
                           "mcast.test", "own.test", "v6lo.test", NULL};
    for (int i = 0; names[i]; i++) {
        char req[256], resp[4096];
        snprintf(req, sizeof(req), "CONNECT %s:%u HTTP/1.1\r\n\r\n", names[i], lport);
        request(req, resp, sizeof(resp));
        expect_status(resp, 403);
        cr_expect(strstr(resp, "which sandboxes may not reach") != NULL, "%s: %s", names[i],
                  resp);
        struct ev e = wait_event(i + 1);
        cr_expect_eq(e.allowed, 0);
        cr_expect_str_eq(e.reason, "forbidden_address", "%s: %s", names[i], e.reason);
    }
    /* IP literals are checked against the allow list as addresses */
    char req[256], resp[4096];
    snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", lport);
    request(req, resp, sizeof(resp));
    expect_status(resp, 403);
    cr_expect_str_eq(wait_event(9).reason, "not_allowed");
    snprintf(req, sizeof(req), "CONNECT [::ffff:127.0.0.1]:%u HTTP/1.1\r\n\r\n", lport);
    request(req, resp, sizeof(resp));
    expect_status(resp, 403);
    cr_expect_str_eq(wait_event(10).reason, "not_allowed");

    int c = accept(ls, NULL, NULL);
    cr_expect_lt(c, 0, "the proxy connected to a loopback service");
    if (c >= 0)
        close(c);
    close(ls);
}

Test(net_proxy, an_exact_ip_literal_in_the_allow_list_permits_a_forbidden_address)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(ls, 16), 0);
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    const char *allow[] = {"127.0.0.1", "dev.test", NULL};
    const char *hosts[] = {"dev.test=127.0.0.1", NULL};
    start_proxy(allow, hosts, NULL);
    const char *targets[] = {"127.0.0.1", "dev.test"};
    for (int i = 0; i < 2; i++) {
        int fd = client();
        char req[128], resp[256];
        snprintf(req, sizeof(req), "CONNECT %s:%u HTTP/1.1\r\n\r\n", targets[i],
                 ntohs(a.sin_port));
        send_str(fd, req);
        int srv = accept(ls, NULL, NULL);
        cr_assert_geq(srv, 0);
        send_str(srv, "pong");
        close(srv);
        read_all(fd, resp, sizeof(resp), 5000);
        cr_expect_str_eq(resp, "HTTP/1.1 200 Connection established\r\n\r\npong");
        close(fd);
        struct ev e = wait_event(i + 1);
        cr_expect_eq(e.allowed, 1);
        cr_expect_str_eq(e.address, "127.0.0.1");
    }
    close(ls);
}

Test(net_proxy, malformed_requests_get_400)
{
    const char *allow[] = {"allowed.test", NULL};
    char hostmap[64];
    snprintf(hostmap, sizeof(hostmap), "allowed.test=%s", peer.peer_ip);
    const char *hosts[] = {hostmap, NULL};
    start_proxy(allow, hosts, NULL);
    static const struct {
        const char *req;
        size_t len; /* 0: strlen */
        const char *why;
    } bad[] = {
        {"GARBAGE\r\n\r\n", 0, "malformed request line"},
        {"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 0, "this is an HTTP proxy"},
        {"GET http://user@allowed.test/ HTTP/1.1\r\n\r\n", 0, "user-info"},
        {"GET http://user:pw@allowed.test:8080/ HTTP/1.1\r\n\r\n", 0, "user-info"},
        {"GET http://allowed.test/\x01 HTTP/1.1\r\n\r\n", 0, "control character"},
        {"GET http://allowed.test/a\rb HTTP/1.1\r\n\r\n", 0, "bare CR"},
        {"GET http://allowed.test/a\nb HTTP/1.1\r\n\r\n", 0, "bare LF"},
        {"GET http://allowed.test/\0 HTTP/1.1\r\n\r\n", 38, "NUL"},
        {"CONNECT allowed.test HTTP/1.1\r\n\r\n", 0, "host:port"},
        {"CONNECT allowed.test:99999 HTTP/1.1\r\n\r\n", 0, "invalid port"},
        {"CONNECT allowed.test:0 HTTP/1.1\r\n\r\n", 0, "invalid port"},
        {"CONNECT allowed.test:+80 HTTP/1.1\r\n\r\n", 0, "invalid port"},
        {"GET http://allowed.test/ HTTP/2.0\r\n\r\n", 0, "HTTP version"},
        {"GET http://127.1/ HTTP/1.1\r\n\r\n", 0, "invalid host"},
        {"GET http://2130706433/ HTTP/1.1\r\n\r\n", 0, "invalid host"},
        {"GET http://allowed%2etest/ HTTP/1.1\r\n\r\n", 0, "invalid host"},
        {"GET http://a..test/ HTTP/1.1\r\n\r\n", 0, "invalid host"},
        {"GET http://[::1/ HTTP/1.1\r\n\r\n", 0, "IPv6"},
        {"GET https://allowed.test/ HTTP/1.1\r\n\r\n", 0, "must use CONNECT"},
        {"GET ftp://allowed.test/ HTTP/1.1\r\n\r\n", 0, "unsupported request target"},
        {"GET http://allowed.test/ HTTP/1.1\r\n folded\r\n\r\n", 0, "folding"},
        {"GET http://allowed.test/ HTTP/1.1\r\nNo colon\r\n\r\n", 0, "header"},
        {"GET http://allowed.test/ HTTP/1.1\r\n", 0, "connection ended"}, /* then EOF */
    };
    int n = (int)(sizeof(bad) / sizeof(bad[0]));
    for (int i = 0; i < n; i++) {
        int fd = client();
        size_t len = bad[i].len ? bad[i].len : strlen(bad[i].req);
        cr_assert_eq(sbx__write_full_nosig(fd, bad[i].req, len), 0);
        shutdown(fd, SHUT_WR);
        char resp[4096];
        read_all(fd, resp, sizeof(resp), 5000);
        close(fd);
        expect_status(resp, 400);
        cr_expect(strstr(body_of(resp), bad[i].why) != NULL, "#%d: want '%s' in: %s", i,
                  bad[i].why, resp);
        struct ev e = wait_event(i + 1);
        cr_expect_str_eq(e.reason, "bad_request", "#%d", i);
        cr_expect_eq(e.allowed, 0);
    }
    /* a head larger than the limit */
    int fd = client();
    char *big = malloc(20000);
    memcpy(big, "GET http://allowed.test/ HTTP/1.1\r\nX-Big: ", 42);
    memset(big + 42, 'a', 20000 - 42);
    sbx__write_full_nosig(fd, big, 20000);
    free(big);
    char resp[4096];
    read_all(fd, resp, sizeof(resp), 5000);
    close(fd);
    expect_status(resp, 431);
    cr_expect_str_eq(wait_event(n + 1).reason, "bad_request");
    /* a connection that says nothing and goes away is not an event */
    close(client());
    usleep(100000);
    cr_expect_eq(event_count(), n + 1);
}

/* ---- relaying ---------------------------------------------------------------------------- */

Test(net_proxy, allowed_get_returns_the_body)
{
    const char *allow[] = {peer.peer_ip, NULL};
    start_proxy(allow, NULL, NULL);
    char req[256], resp[4096];
    snprintf(req, sizeof(req), "GET http://%s:%u/body HTTP/1.1\r\nHost: x\r\n\r\n", peer.peer_ip,
             peer.http_port);
    request(req, resp, sizeof(resp));
    expect_status(resp, 200);
    cr_expect_str_eq(body_of(resp), BODY);
    struct ev e = wait_event(1);
    cr_expect_eq(e.allowed, 1);
    cr_expect_str_eq(e.method, "GET");
    cr_expect_str_eq(e.host, peer.peer_ip);
    cr_expect_str_eq(e.address, peer.peer_ip);
    cr_expect_eq(e.down, strlen(resp));
    cr_expect_gt(e.up, 0);
}

Test(net_proxy, hosts_override_and_request_rewriting)
{
    const char *allow[] = {"allowed.test", NULL};
    char hostmap[64];
    snprintf(hostmap, sizeof(hostmap), "allowed.test=%s", peer.peer_ip);
    const char *hosts[] = {hostmap, NULL};
    start_proxy(allow, hosts, NULL);
    char req[512], resp[8192];
    snprintf(req, sizeof(req),
             "GET http://Allowed.Test.:%u/head?q=1 HTTP/1.1\r\nHost: evil.example\r\n"
             "Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\n"
             "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-Custom: yes\r\n"
             "User-Agent: test\r\n\r\n",
             peer.http_port);
    int fd = client();
    send_str(fd, req);
    shutdown(fd, SHUT_WR); /* half-close: the answer must still come back */
    read_all(fd, resp, sizeof(resp), 10000);
    close(fd);
    expect_status(resp, 200);
    const char *fwd = body_of(resp);
    char want[128];
    snprintf(want, sizeof(want), "GET /head?q=1 HTTP/1.1\r\nHost: allowed.test:%u\r\n",
             peer.http_port);
    cr_expect(strncmp(fwd, want, strlen(want)) == 0, "forwarded head: %s", fwd);
    cr_expect(strstr(fwd, "X-Custom: yes\r\n") && strstr(fwd, "User-Agent: test\r\n"), "%s",
              fwd);
    cr_expect(strstr(fwd, "Connection: close\r\n") != NULL, "%s", fwd);
    cr_expect(!strstr(fwd, "Proxy-") && !strstr(fwd, "keep-alive") && !strstr(fwd, "X-Hop") &&
                  !strstr(fwd, "evil") && !strstr(fwd, "Keep-Alive"),
              "hop-by-hop headers were forwarded: %s", fwd);
    struct ev e = wait_event(1);
    cr_expect_eq(e.allowed, 1);
    cr_expect_str_eq(e.host, "allowed.test");
    cr_expect_eq(e.port, peer.http_port);
}

/* Sends len bytes and reads them back at the same time; returns bytes read back. */
static size_t echo_through(int fd, const unsigned char *data, size_t len, unsigned char *back)
{
    size_t sent = 0, got = 0;
    uint64_t end = sbx__now_ns() + 20000000000ull;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    while (got < len) {
        cr_assert(sbx__now_ns() < end, "echo stalled: sent %zu, got %zu", sent, got);
        struct pollfd pf = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        if (poll(&pf, 1, 1000) <= 0)
            continue;
        if (sent < len && (pf.revents & POLLOUT)) {
            ssize_t k = send(fd, data + sent, len - sent > 65536 ? 65536 : len - sent,
                             MSG_NOSIGNAL);
            if (k > 0)
                sent += (size_t)k;
        }
        if (pf.revents & (POLLIN | POLLHUP)) {
            ssize_t k = recv(fd, back + got, len - got, 0);
            if (k == 0)
                break;
            if (k > 0)
                got += (size_t)k;
        }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return got;
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

Test(net_proxy, connect_tunnel_echoes_one_mib_exactly)
{
    const char *allow[] = {"allowed.test", NULL};
    char hostmap[64];
    snprintf(hostmap, sizeof(hostmap), "allowed.test=%s", peer.peer_ip);
    const char *hosts[] = {hostmap, NULL};
    start_proxy(allow, hosts, NULL);
    int fd = client();
    char req[128];
    snprintf(req, sizeof(req), "CONNECT allowed.test:%u HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
             peer.echo_port);
    send_str(fd, req);
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    char head[sizeof(ok)] = "";
    cr_assert_eq(sbx__read_full(fd, head, sizeof(ok) - 1), 0);
    cr_assert_str_eq(head, ok);

    size_t len = 1 << 20;
    unsigned char *data = malloc(len), *back = calloc(1, len);
    srand(42);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)rand();
    size_t got = echo_through(fd, data, len, back);
    cr_expect_eq(got, len);
    cr_expect_eq(fnv1a(back, len), fnv1a(data, len), "checksum differs");
    cr_expect_eq(memcmp(back, data, len), 0);
    free(data);
    free(back);
    /* half-close: our EOF reaches the echo server, whose EOF comes back */
    shutdown(fd, SHUT_WR);
    char rest[16];
    cr_expect_eq(read_all(fd, rest, sizeof(rest), 5000), 0);
    close(fd);
    struct ev e = wait_event(1);
    cr_expect_eq(e.allowed, 1);
    cr_expect_str_eq(e.method, "CONNECT");
    cr_expect_eq(e.status, 200);
    cr_expect_eq(e.up, len);
    cr_expect_eq(e.down, len);
}

Test(net_proxy, bytes_sent_ahead_of_the_200_are_tunnelled)
{
    const char *allow[] = {peer.peer_ip, NULL};
    start_proxy(allow, NULL, NULL);
    int fd = client();
    char req[128], resp[256];
    snprintf(req, sizeof(req), "CONNECT %s:%u HTTP/1.1\r\n\r\nearly-bytes", peer.peer_ip,
             peer.echo_port);
    send_str(fd, req);
    shutdown(fd, SHUT_WR);
    read_all(fd, resp, sizeof(resp), 5000);
    close(fd);
    cr_expect_str_eq(resp, "HTTP/1.1 200 Connection established\r\n\r\nearly-bytes");
}

Test(net_proxy, tcp_client_socket)
{
    const char *allow[] = {"allowed.test", NULL};
    char hostmap[64];
    snprintf(hostmap, sizeof(hostmap), "allowed.test=%s", peer.peer_ip);
    const char *hosts[] = {hostmap, NULL};
    start_proxy(allow, hosts, NULL);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(ls, 4), 0);
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);
    for (int i = 0; i < 2; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
        int s = accept(ls, NULL, NULL);
        cr_assert_eq(sbx__proxy_serve(proxy, s), 0);
        char req[256], resp[4096];
        if (i == 0)
            snprintf(req, sizeof(req), "GET http://allowed.test:%u/body HTTP/1.1\r\n\r\n",
                     peer.http_port);
        else
            snprintf(req, sizeof(req),
                     "POST http://nope.test:%u/ HTTP/1.1\r\nContent-Length: 100000\r\n\r\n",
                     peer.http_port);
        send_str(c, req);
        if (i == 1) { /* body the proxy never reads */
            char *junk = calloc(1, 100000);
            sbx__write_full_nosig(c, junk, 100000);
            free(junk);
        }
        read_all(c, resp, sizeof(resp), 10000);
        close(c);
        expect_status(resp, i == 0 ? 200 : 403);
        if (i == 0)
            cr_expect_str_eq(body_of(resp), BODY);
        else
            cr_expect(strstr(resp, "nope.test is not in this session's allow list") != NULL);
    }
    close(ls);
}

Test(net_proxy, resolve_and_connect_failures_get_502)
{
    const char *allow[] = {"allowed.test", "nonexistent.invalid", NULL};
    char hostmap[64];
    snprintf(hostmap, sizeof(hostmap), "allowed.test=%s", peer.peer_ip);
    const char *hosts[] = {hostmap, NULL};
    struct sbx_proxy_config tune = {.resolve_timeout_ms = 3000, .connect_timeout_ms = 3000};
    start_proxy(allow, hosts, &tune);
    char resp[4096];
    request("CONNECT allowed.test:9 HTTP/1.1\r\n\r\n", resp, sizeof(resp)); /* nothing there */
    expect_status(resp, 502);
    cr_expect(strstr(resp, "cannot connect to allowed.test:9") != NULL, "%s", resp);
    cr_expect_str_eq(wait_event(1).reason, "connect_failed");
    request("GET http://nonexistent.invalid/ HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    expect_status(resp, 502);
    cr_expect(strstr(resp, "cannot resolve nonexistent.invalid") != NULL, "%s", resp);
    cr_expect_str_eq(wait_event(2).reason, "resolve_failed");
}

Test(net_proxy, slow_client_is_dropped_at_the_head_deadline)
{
    const char *allow[] = {"allowed.test", NULL};
    struct sbx_proxy_config tune = {.head_timeout_ms = 300};
    start_proxy(allow, NULL, &tune);
    int fd = client();
    int idle = client(); /* says nothing at all */
    send_str(fd, "GET http://allowed.test/ HTTP/1.1\r\nX-Slow: ");
    uint64_t t0 = sbx__now_ns();
    char resp[4096];
    for (int i = 0; i < 3; i++) { /* keeps trickling: does not extend the deadline */
        usleep(50000);
        send_str(fd, "a");
    }
    read_all(fd, resp, sizeof(resp), 5000);
    double ms = sbx__ms_since(t0);
    expect_status(resp, 408);
    cr_expect_lt(ms, 3000);
    read_all(idle, resp, sizeof(resp), 5000);
    expect_status(resp, 408);
    close(fd);
    close(idle);
    struct ev a = wait_event(1), b = wait_event(2);
    cr_expect_str_eq(a.reason, "head_timeout");
    cr_expect_str_eq(b.reason, "head_timeout");
}

Test(net_proxy, sixty_four_concurrent_connections)
{
    const char *allow[] = {"allowed.test", NULL};
    char hostmap[64];
    snprintf(hostmap, sizeof(hostmap), "allowed.test=%s", peer.peer_ip);
    const char *hosts[] = {hostmap, NULL};
    start_proxy(allow, hosts, NULL);
    enum { N = 64 };
    int fds[N];
    char req[128];
    snprintf(req, sizeof(req), "GET http://allowed.test:%u/body HTTP/1.1\r\n\r\n",
             peer.http_port);
    for (int i = 0; i < N; i++)
        fds[i] = client();
    for (int i = 0; i < N; i++)
        send_str(fds[i], req);
    for (int i = 0; i < N; i++) {
        char resp[4096];
        read_all(fds[i], resp, sizeof(resp), 15000);
        expect_status(resp, 200);
        cr_expect_str_eq(body_of(resp), BODY, "#%d", i);
        close(fds[i]);
    }
    wait_event(N);
    for (int i = 0; i < N; i++)
        cr_expect_eq(evs[i].allowed, 1);
}

Test(net_proxy, connections_beyond_max_conns_get_503)
{
    const char *allow[] = {peer.peer_ip, NULL};
    struct sbx_proxy_config tune = {.max_conns = 2};
    start_proxy(allow, NULL, &tune);
    char req[128], resp[4096];
    snprintf(req, sizeof(req), "CONNECT %s:%u HTTP/1.1\r\n\r\n", peer.peer_ip, peer.echo_port);
    int t[2];
    for (int i = 0; i < 2; i++) {
        t[i] = client();
        send_str(t[i], req);
        char head[40] = "";
        cr_assert_eq(sbx__read_full(t[i], head, 39), 0);
        cr_assert(strncmp(head, "HTTP/1.1 200", 12) == 0);
    }
    request(req, resp, sizeof(resp));
    expect_status(resp, 503);
    cr_expect(strstr(resp, "too many connections") != NULL, "%s", resp);
    cr_expect_str_eq(wait_event(1).reason, "too_many_connections");
    close(t[0]);
    close(t[1]);
    wait_event(3); /* both tunnels ended: room again */
    int fd = client();
    send_str(fd, req);
    char head[40] = "";
    cr_expect_eq(sbx__read_full(fd, head, 39), 0);
    cr_expect(strncmp(head, "HTTP/1.1 200", 12) == 0, "%s", head);
    close(fd);
}

Test(net_proxy, free_with_connections_open_leaks_nothing)
{
    const char *allow[] = {peer.peer_ip, "slow.invalid", NULL};
    start_proxy(allow, NULL, NULL);
    char req[128];
    snprintf(req, sizeof(req), "CONNECT %s:%u HTTP/1.1\r\n\r\n", peer.peer_ip, peer.echo_port);
    int tunnel = client();
    send_str(tunnel, req);
    char head[40] = "";
    cr_assert_eq(sbx__read_full(tunnel, head, 39), 0);
    send_str(tunnel, "ping");
    char pong[5] = "";
    cr_assert_eq(sbx__read_full(tunnel, pong, 4), 0);
    int partial = client();
    send_str(partial, "GET http://x/ HTT");
    int resolving = client();
    send_str(resolving, "GET http://slow.invalid/ HTTP/1.1\r\n\r\n");
    usleep(50000);
    sbx__proxy_free(proxy);
    proxy = NULL;
    int fds[] = {tunnel, partial, resolving};
    for (int i = 0; i < 3; i++) {
        char buf[4096];
        read_all(fds[i], buf, sizeof(buf), 5000); /* EOF: the proxy closed its end */
        close(fds[i]);
    }
    int n = event_count(), tunnel_ok = 0, partial_closed = 0;
    cr_expect_geq(n, 2); /* the tunnel and the partial head (and maybe the lookup) */
    for (int i = 0; i < n; i++) {
        tunnel_ok |= strcmp(evs[i].method, "CONNECT") == 0 && evs[i].allowed && evs[i].up == 4;
        partial_closed |= !evs[i].has_method && strcmp(evs[i].reason, "proxy_closed") == 0;
    }
    cr_expect(tunnel_ok, "no event for the open tunnel");
    cr_expect(partial_closed, "no proxy_closed event for the partial head");
}

/* ---- configuration ---------------------------------------------------------------------- */

Test(net_proxy, invalid_configuration_is_refused)
{
    const char *bad_allow[][2] = {{"*.", NULL}, {"exa mple.com", NULL}, {"*", NULL},
                                  {"a..b", NULL}, {"", NULL}};
    for (size_t i = 0; i < sizeof(bad_allow) / sizeof(bad_allow[0]); i++) {
        struct sbx_proxy_config c = {.allow = bad_allow[i]};
        sbx_error *err = NULL;
        struct sbx_proxy *p = NULL;
        cr_expect_eq(sbx__proxy_new(&c, &p, &err), SBX_EINVAL, "%s", bad_allow[i][0]);
        cr_expect_null(p);
        cr_expect_str_eq(sbx_error_context_get(err, "entry"), bad_allow[i][0]);
        sbx_error_free(err);
    }
    const char *bad_hosts[][2] = {{"x.test", NULL}, {"x.test=nope", NULL}, {"=1.2.3.4", NULL}};
    for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
        struct sbx_proxy_config c = {.hosts = bad_hosts[i]};
        sbx_error *err = NULL;
        struct sbx_proxy *p = NULL;
        cr_expect_eq(sbx__proxy_new(&c, &p, &err), SBX_EINVAL, "%s", bad_hosts[i][0]);
        sbx_error_free(err);
    }
    /* an empty allow list refuses everything, saying so */
    start_proxy(NULL, NULL, NULL);
    char resp[4096];
    request("CONNECT example.com:443 HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    expect_status(resp, 403);
    cr_expect(strstr(resp, "the allow list is empty") != NULL, "%s", resp);
}
