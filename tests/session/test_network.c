/* Network modes against real sessions: "none" reaches nothing outside, and "proxy" reaches an
 * HTTP server in a network namespace the test makes (tests/support/netns_peer.h) only through
 * the host-side proxy, only for allowed names, with names resolved by the proxy, and one
 * audit event per request. Commands inside talk with bash's /dev/tcp. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"
#include "netns_peer.h"
#include "session_util.h"

TestSuite(session_network, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 120);

static struct sbx_netns_peer peer;

static void peer_up(void)
{
    char why[256];
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "network namespaces and veth pairs need root");
    cr_assert_eq(sbx_netns_peer_start(&peer, "hello from the peer\n", why, sizeof(why)), 0,
                 "test peer: %s", why);
}

/* Runs a bash script inside; stdout (NUL-terminated) in *out, malloc'd. */
static int bash_in(sbx_session *s, const char *script, char **out)
{
    const char *argv[] = {"bash", "-c", script, NULL};
    sbx_exec_opts xo = SBX_EXEC_OPTS_INIT;
    xo.argv = argv;
    xo.shell = SBX_SHELL_NONE;
    xo.timeout_s = 30;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_exec(s, &xo, &r, &err), 0, "%s", sbx_error_message(err));
    int code = r->exit_code;
    *out = strdup(r->out ? (const char *)r->out : "");
    if (code != 0 && r->err_len)
        fprintf(stderr, "inside (exit %d): %s\n", code, (const char *)r->err);
    sbx_exec_result_free(r);
    return code;
}

/* One HTTP request through the proxy inside, the whole answer back. */
static char *via_proxy(sbx_session *s, const char *request)
{
    char script[1024];
    snprintf(script, sizeof(script),
             "exec 3<>/dev/tcp/127.0.0.1/3128 || exit 9; printf '%s' >&3; cat <&3", request);
    char *out = NULL;
    bash_in(s, script, &out);
    return out;
}

struct collect {
    pthread_mutex_t lock;
    char buf[1 << 16];
};

static int collect_fn(const sbx_event *ev, sbx_session *s, void *ud)
{
    (void)s;
    struct collect *c = ud;
    if (strcmp(sbx_event_op(ev), "proxy_request") != 0)
        return 0;
    pthread_mutex_lock(&c->lock);
    strncat(c->buf, sbx_event_json(ev), sizeof(c->buf) - strlen(c->buf) - 2);
    strcat(c->buf, "\n");
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static sbx_session *proxy_session(struct collect *c)
{
    char h1[64], h2[64];
    snprintf(h1, sizeof(h1), "allowed.test=%s", peer.peer_ip);
    snprintf(h2, sizeof(h2), "denied.test=%s", peer.peer_ip);
    const char *allow[] = {"allowed.test", NULL};
    const char *hosts[] = {h1, h2, NULL};
    sbx_event_sink *k = NULL;
    cr_assert_eq(sbx_event_sink_callback(collect_fn, c, NULL, &k, NULL), 0);
    sbx_events *ev = NULL;
    cr_assert_eq(sbx_events_new(NULL, &ev, NULL), 0);
    cr_assert_eq(sbx_events_add_sink(ev, k, NULL), 0);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.net_mode = SBX_NET_PROXY;
    o.net_allow = allow;
    o.net_hosts = hosts;
    o.events = ev;
    sbx_session *s = sbx_test_start(&o);
    sbx_events_free(ev);
    return s;
}

Test(session_network, proxy_mode_lets_allowed_names_through_and_refuses_the_rest)
{
    peer_up();
    struct collect c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sbx_session *s = proxy_session(&c);
    char *out = NULL;
    cr_expect_eq(bash_in(s, "echo \"$HTTP_PROXY $https_proxy\"", &out), 0);
    cr_expect_str_eq(out, "http://127.0.0.1:3128 http://127.0.0.1:3128\n");
    free(out);

    char req[256];
    snprintf(req, sizeof(req), "GET http://allowed.test:%u/body HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
             peer.http_port);
    out = via_proxy(s, req);
    cr_expect(strstr(out, "hello from the peer\n"), "allowed GET answered: %s", out);
    free(out);

    snprintf(req, sizeof(req), "GET http://denied.test:%u/body HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
             peer.http_port);
    out = via_proxy(s, req);
    cr_expect(strncmp(out, "HTTP/1.1 403", 12) == 0, "denied: %s", out);
    cr_expect(strstr(out, "denied.test") && strstr(out, "allow list"),
              "the refusal says why, for a program to read: %s", out);
    cr_expect(!strstr(out, "hello from the peer"), "%s", out);
    free(out);

    /* HTTPS-style CONNECT: an opaque tunnel to the echo port. */
    char script[512];
    snprintf(script, sizeof(script),
             "exec 3<>/dev/tcp/127.0.0.1/3128; printf 'CONNECT allowed.test:%u HTTP/1.1\\r\\n\\r\\n' "
             ">&3; IFS= read -r status <&3; read -r blank <&3; printf 'tunnelled' >&3; "
             "head -c 9 <&3; echo; echo \"$status\"",
             peer.echo_port);
    cr_expect_eq(bash_in(s, script, &out), 0);
    cr_expect(strstr(out, "tunnelled\nHTTP/1.1 200"), "CONNECT: %s", out);
    free(out);
    sbx_session_free(s); /* the proxy logs every request before it goes */

    cr_expect(strstr(c.buf, "\"op\":\"proxy_request\"") || strstr(c.buf, "\"op\": \"proxy_request\""),
              "proxy events: %s", c.buf);
    cr_expect(strstr(c.buf, "allowed.test"), "%s", c.buf);
    cr_expect(strstr(c.buf, "not_allowed"), "the refusal is an event with its reason: %s", c.buf);
    sbx_netns_peer_stop(&peer);
}

Test(session_network, proxy_mode_is_enforced_not_advisory)
{
    peer_up();
    struct collect c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    sbx_session *s = proxy_session(&c);
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_serve_network(s, &err), 0, "the starter serves it already: %s",
                 sbx_error_message(err));
    char script[512], *out = NULL;
    /* A program that ignores HTTP_PROXY: no route to the peer, even by address. */
    snprintf(script, sizeof(script),
             "exec 3<>/dev/tcp/%s/%u && echo CONNECTED; ip route 2>/dev/null; "
             "cat /proc/net/route",
             peer.peer_ip, peer.http_port);
    bash_in(s, script, &out);
    cr_expect(!strstr(out, "CONNECTED"), "reached the peer without the proxy: %s", out);
    free(out);
    /* Names are resolved by the proxy on the host, never inside. */
    cr_expect_neq(bash_in(s, "getent hosts allowed.test", &out), 0,
                  "resolved inside: %s", out);
    free(out);
    cr_expect_eq(bash_in(s, "awk -F: 'NR > 2 { gsub(/ /, \"\", $1); print $1 }' /proc/net/dev", &out), 0);
    cr_expect_str_eq(out, "lo\n", "only loopback inside");
    free(out);
    sbx_session_free(s);
    sbx_netns_peer_stop(&peer);
}

Test(session_network, mode_none_reaches_no_host_port)
{
    /* A listener on the host's loopback and on every address: inside, 127.0.0.1 is the
     * sandbox's own loopback, and no other address has a route. */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(l, 8), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    unsigned port = ntohs(a.sin_port);
    /* Every IPv4 address of the host, and a few usual gateway and metadata addresses. */
    char hosts[1024] = "127.0.0.1 localhost 169.254.169.254 10.0.2.2 172.17.0.1";
    struct ifaddrs *ifs = NULL;
    cr_assert_eq(getifaddrs(&ifs), 0);
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, ip, sizeof(ip));
        if (strlen(hosts) + strlen(ip) + 2 < sizeof(hosts)) {
            strcat(hosts, " ");
            strcat(hosts, ip);
        }
    }
    freeifaddrs(ifs);
    sbx_session *s = sbx_test_start(NULL);
    char script[2048], *out = NULL;
    snprintf(script, sizeof(script),
             "for h in %s; do "
             "  timeout 3 bash -c \"exec 3<>/dev/tcp/$h/%u\" 2>/dev/null && echo \"REACHED $h\"; "
             "done; echo done",
             hosts, port);
    cr_expect_eq(bash_in(s, script, &out), 0);
    cr_expect_str_eq(out, "done\n", "a host port was reached from inside: %s", out);
    free(out);
    sbx_session_free(s);
    close(l);
}

Test(session_network, veth_mode_gives_eth0_a_route_to_the_host_end_and_goes_with_the_session)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "veth pairs need root");
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.net_mode = SBX_NET_VETH;
    o.net_range = "10.236.0.0/24";
    sbx_session *s = sbx_test_start(&o);
    char *out = NULL;
    /* eth0's gateway is the host end: .1 of the session's /30; the sandbox is .2. */
    cr_assert_eq(bash_in(s, "awk '$2 == \"00000000\" { print $1, $3 }' /proc/net/route", &out), 0);
    unsigned gw = 0;
    char ifname[16] = "";
    cr_assert_eq(sscanf(out, "%15s %x", ifname, &gw), 2, "no default route: %s", out);
    free(out);
    cr_expect_str_eq(ifname, "eth0");
    struct in_addr ga = {.s_addr = gw}; /* /proc/net/route is in network byte order */
    char host_end[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &ga, host_end, sizeof(host_end));
    cr_expect(strncmp(host_end, "10.236.0.", 9) == 0, "gateway %s outside the range", host_end);

    /* Real traffic: a server on the host end's address answers a client inside. */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr = ga};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", host_end,
                 strerror(errno));
    cr_assert_eq(listen(l, 4), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    char script[256];
    snprintf(script, sizeof(script), "exec 3<>/dev/tcp/%s/%u && printf 'over veth' >&3",
             host_end, ntohs(a.sin_port));
    cr_expect_eq(bash_in(s, script, &out), 0);
    free(out);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    cr_assert(c >= 0, "no connection from inside: %s", strerror(errno));
    char buf[16] = {0};
    cr_expect_eq(read(c, buf, 9), 9);
    cr_expect_str_eq(buf, "over veth");
    close(c);
    close(l);

    char host_if[16];
    snprintf(host_if, sizeof(host_if), "sbx%.8sh", sbx_session_id(s));
    char path[64];
    snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s", host_if);
    cr_expect_eq(access(path, F_OK), 0, "host end %s exists", host_if);
    sbx_session_free(s);
    cr_expect_neq(access(path, F_OK), 0, "host end %s left after the session", host_if);
}
