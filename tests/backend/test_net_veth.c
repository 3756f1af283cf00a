/* net_veth: the veth network mode (backend/net_veth.c) against real sessions and the real
 * kernel: addresses and routes inside, TCP both ways across the pair, two sessions at once,
 * teardown, the namespace's end, and the errors (range, pid, permissions).
 *
 * Every interface a test makes is recorded in g_v[] and every session in g_s[]; the .fini
 * removes them even when an assertion failed (host ends are named "sbx...", so a leak shows in
 * `ip link`). Each test uses its own range, so tests running in parallel (--jobs) never
 * compete for the same /30s. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "net_veth.h"

#define MAXS 4
static sbx_session *g_s[MAXS];
static struct sbx_veth g_v[MAXS];

static void init(void)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "veth networking needs root");
    sbx_test_init();
}

static void fini(void)
{
    for (int i = 0; i < MAXS; i++) {
        sbx__veth_teardown(&g_v[i]);
        memset(&g_v[i], 0, sizeof(g_v[i]));
    }
    for (int i = 0; i < MAXS; i++) {
        sbx_session_free(g_s[i]);
        g_s[i] = NULL;
    }
    sbx_test_fini();
}

TestSuite(net_veth, .init = init, .fini = fini, .timeout = 120);

static int if_exists(const char *name)
{
    char p[64];
    snprintf(p, sizeof(p), "/sys/class/net/%s", name);
    return access(p, F_OK) == 0;
}

/* The interface the host end of a session with this id would have. */
static void host_if_of(const char *id, char out[16])
{
    char hex[9];
    size_t n = 0;
    for (const char *p = id; *p && n < 8; p++)
        if (*p != '-')
            hex[n++] = *p;
    hex[n] = '\0';
    snprintf(out, 16, "sbx%sh", hex);
}

static uint32_t ip_of(const char *dotted)
{
    struct in_addr a;
    cr_assert_eq(inet_pton(AF_INET, dotted, &a), 1, "not an address: '%s'", dotted);
    return ntohl(a.s_addr);
}

/* Output of `script` (sh -c, 30 s timeout) in s; asserts it exited 0. Caller frees. */
static char *sh(sbx_session *s, const char *script)
{
    sbx_exec_result *r = sbx_test_sh(s, script);
    char *out = strndup((const char *)r->out, r->out_len);
    cr_assert(out);
    int code = r->exit_code;
    char errbuf[512];
    snprintf(errbuf, sizeof(errbuf), "%.*s", (int)r->err_len, (const char *)r->err);
    sbx_exec_result_free(r);
    cr_assert_eq(code, 0, "`%s` exited %d: %s%s", script, code, out, errbuf);
    return out;
}

static void sh_expect(sbx_session *s, const char *script, const char *want)
{
    char *out = sh(s, script);
    cr_expect_str_eq(out, want, "`%s`", script);
    free(out);
}

/* The sandbox has no /sys: interfaces from /proc/net/dev, eth0's flags with an ioctl. */
#define LIST_IFS "sed -n 's/^ *\\([^:]*\\):.*/\\1/p' /proc/net/dev | sort"
#define ETH0_STATE                                                                             \
    "python3 -c 'import fcntl, socket, struct\n"                                                \
    "f = struct.unpack(\"H\", fcntl.ioctl(socket.socket(), 0x8913, "                           \
    "struct.pack(\"40s\", b\"eth0\"))[16:18])[0]\n"                                             \
    "print(\"up\" if f & 0x1 and f & 0x40 else \"down %#x\" % f)'"

static sbx_session *start(int i)
{
    g_s[i] = sbx_test_start(NULL);
    return g_s[i];
}

static struct sbx_veth *veth(int i, const char *range)
{
    sbx_error *err = NULL;
    int r = sbx__veth_setup(sbx_session_agent_pid(g_s[i]), sbx_session_id(g_s[i]), range,
                            &g_v[i], &err);
    cr_assert_eq(r, 0, "veth setup: %s [%s] stage %s", sbx_error_message(err),
                 sbx_code_name(r), sbx_error_context_get(err, "stage"));
    return &g_v[i];
}

/* Checks what a set-up veth looks like from both sides. */
static void check_layout(sbx_session *s, const struct sbx_veth *v, const char *range)
{
    char want_if[16];
    host_if_of(sbx_session_id(s), want_if);
    cr_expect_str_eq(v->host_if, want_if);
    cr_expect_eq(v->prefix, 30u);
    /* the /30 is inside the range, aligned, host = .1, inside = .2 of it */
    char rbuf[32];
    snprintf(rbuf, sizeof(rbuf), "%s", range);
    char *slash = strchr(rbuf, '/');
    cr_assert(slash);
    *slash = '\0';
    unsigned rlen = (unsigned)atoi(slash + 1);
    uint32_t rnet = ip_of(rbuf), rmask = ~0u << (32 - rlen);
    uint32_t net = ip_of(v->subnet);
    cr_expect_eq(net & 3u, 0u, "subnet %s not /30-aligned", v->subnet);
    cr_expect_eq(net & rmask, rnet, "subnet %s outside %s", v->subnet, range);
    cr_expect_eq(ip_of(v->host_addr), net + 1);
    cr_expect_eq(ip_of(v->inside_addr), net + 2);

    /* host: the interface is up, with the /30 route through it */
    cr_expect(if_exists(v->host_if), "%s missing on the host", v->host_if);
    char p[96], buf[64] = "";
    snprintf(p, sizeof(p), "/sys/class/net/%s/operstate", v->host_if);
    FILE *f = fopen(p, "re");
    cr_assert(f, "%s: %s", p, strerror(errno));
    cr_expect(fgets(buf, sizeof(buf), f) != NULL);
    fclose(f);
    cr_expect_str_eq(buf, "up\n", "host end operstate");
    f = fopen("/proc/net/route", "re");
    cr_assert(f);
    char line[512], want[128];
    snprintf(want, sizeof(want), "%s\t%08X\t00000000\t", v->host_if, (unsigned)htonl(net));
    int found = 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, want, strlen(want)) == 0 && strstr(line, "\tFCFFFFFF\t"))
            found = 1;
    fclose(f);
    cr_expect(found, "no host route %s/30 dev %s", v->subnet, v->host_if);

    /* inside: eth0 and lo only, eth0 up, its address local, the default route via the host */
    sh_expect(s, LIST_IFS, "eth0\nlo\n");
    sh_expect(s, ETH0_STATE, "up\n");
    char *rt = sh(s, "cat /proc/net/route");
    snprintf(want, sizeof(want), "eth0\t00000000\t%08X\t0003\t",
             (unsigned)htonl(ip_of(v->host_addr)));
    cr_expect(strstr(rt, want), "no default route via %s in:\n%s", v->host_addr, rt);
    snprintf(want, sizeof(want), "eth0\t%08X\t00000000\t0001\t", (unsigned)htonl(net));
    cr_expect(strstr(rt, want), "no %s/30 route on eth0 in:\n%s", v->subnet, rt);
    free(rt);
    char *trie = sh(s, "cat /proc/net/fib_trie");
    snprintf(want, sizeof(want), "|-- %s\n", v->inside_addr);
    const char *at = strstr(trie, want);
    const char *nx = at ? at + strlen(want) : "";
    while (*nx == ' ')
        nx++;
    cr_expect(at && strncmp(nx, "/32 host LOCAL", 14) == 0,
              "%s is not a local address inside:\n%s", v->inside_addr, trie);
    free(trie);
}

Test(net_veth, inside_has_eth0_its_address_and_a_default_route)
{
    sbx_session *s = start(0);
    struct sbx_veth *v = veth(0, NULL);
    check_layout(s, v, SBX_VETH_DEFAULT_RANGE);
}

Test(net_veth, a_given_range_is_used)
{
    sbx_session *s = start(0);
    struct sbx_veth *v = veth(0, "192.168.231.0/24");
    check_layout(s, v, "192.168.231.0/24");
}

Test(net_veth, commands_inside_cannot_reconfigure_eth0)
{
    sbx_session *s = start(0);
    veth(0, "10.238.0.0/16");
    const char *down = "python3 -c 'import fcntl, socket, struct\n"
                       "try:\n"
                       "    fcntl.ioctl(socket.socket(), 0x8914,\n"
                       "                struct.pack(\"16sH22x\", b\"eth0\", 0))\n"
                       "    print(\"changed\")\n"
                       "except PermissionError:\n"
                       "    print(\"refused\")'";
    sh_expect(s, down, "refused\n");
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_test_sh_as(s, "root", down, &r, &err), 0, "%s", sbx_error_message(err));
    cr_expect_eq(r->out_len, 8);
    cr_expect(r->out_len == 8 && memcmp(r->out, "refused\n", 8) == 0, "as root: %.*s%.*s",
              (int)r->out_len, (const char *)r->out, (int)r->err_len, (const char *)r->err);
    sbx_exec_result_free(r);
    sh_expect(s, ETH0_STATE, "up\n");
}

/* ---- TCP both ways ---------------------------------------------------------------------- */

struct host_server {
    int lfd;
    char peer[INET_ADDRSTRLEN];
    char got[64];
    int ok;
};

/* Accepts one connection (20 s at most), reads a line, answers "pong <peer>\n". */
static void *host_server_main(void *p)
{
    struct host_server *hs = p;
    struct pollfd pfd = {.fd = hs->lfd, .events = POLLIN};
    if (poll(&pfd, 1, 20000) != 1)
        return NULL;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int c = accept4(hs->lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
    if (c < 0)
        return NULL;
    inet_ntop(AF_INET, &sa.sin_addr, hs->peer, sizeof(hs->peer));
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t n = 0;
    while (n < sizeof(hs->got) - 1) {
        ssize_t k = read(c, hs->got + n, 1);
        if (k <= 0)
            break;
        n += (size_t)k;
        if (hs->got[n - 1] == '\n')
            break;
    }
    hs->got[n] = '\0';
    char reply[64];
    int len = snprintf(reply, sizeof(reply), "pong %s\n", hs->peer);
    hs->ok = write(c, reply, (size_t)len) == len;
    close(c);
    return NULL;
}

Test(net_veth, tcp_flows_both_ways_without_nat)
{
    sbx_session *s = start(0);
    struct sbx_veth *v = veth(0, "10.233.0.0/16");

    /* inside -> host: a server on the host end's address only */
    struct host_server hs = {.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    cr_assert(hs.lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, v->host_addr, &sa.sin_addr);
    cr_assert_eq(bind(hs.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s",
                 v->host_addr, strerror(errno));
    cr_assert_eq(listen(hs.lfd, 4), 0);
    socklen_t sl = sizeof(sa);
    getsockname(hs.lfd, (struct sockaddr *)&sa, &sl);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, host_server_main, &hs), 0);
    char script[512];
    snprintf(script, sizeof(script),
             "timeout 15 bash -c 'exec 3<>/dev/tcp/%s/%u && echo ping >&3 && "
             "read -r line <&3 && echo \"$line\"'",
             v->host_addr, (unsigned)ntohs(sa.sin_port));
    sbx_exec_result *r = sbx_test_sh(s, script);
    pthread_join(t, NULL);
    close(hs.lfd);
    char want[64];
    snprintf(want, sizeof(want), "pong %s\n", v->inside_addr);
    cr_expect_eq(r->exit_code, 0, "client: %.*s", (int)r->err_len, (const char *)r->err);
    cr_expect_eq(r->out_len, strlen(want));
    cr_expect(r->out_len == strlen(want) && memcmp(r->out, want, r->out_len) == 0,
              "inside got '%.*s', want '%s'", (int)r->out_len, (const char *)r->out, want);
    sbx_exec_result_free(r);
    cr_expect_str_eq(hs.got, "ping\n");
    cr_expect_str_eq(hs.peer, v->inside_addr, "the host saw the inside address");

    /* host -> inside: a python server on all addresses inside, reached at eth0's address */
    const char *server =
        "cd /tmp && rm -f port port.tmp && "
        "(timeout 30 python3 -c '\n"
        "import os, socket\n"
        "s = socket.socket()\n"
        "s.bind((\"0.0.0.0\", 0))\n"
        "s.listen(1)\n"
        "open(\"port.tmp\", \"w\").write(str(s.getsockname()[1]))\n"
        "os.rename(\"port.tmp\", \"port\")\n"
        "s.settimeout(20)\n"
        "c, a = s.accept()\n"
        "c.settimeout(10)\n"
        "d = c.recv(100)\n"
        "c.sendall(b\"pong \" + a[0].encode() + b\" \" + d)\n"
        "c.close()\n"
        "' >/tmp/server.log 2>&1 &) && "
        "i=0; while [ ! -s port ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; cat port";
    char *port = sh(s, server);
    int pn = atoi(port);
    cr_assert(pn > 0 && pn < 65536, "no port from the server inside: '%s'", port);
    free(port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)pn)};
    inet_pton(AF_INET, v->inside_addr, &in.sin_addr);
    int cr = connect(fd, (struct sockaddr *)&in, sizeof(in));
    if (cr < 0 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int soe = 0;
        socklen_t ol = sizeof(soe);
        cr = poll(&pfd, 1, 10000) == 1 &&
                     getsockopt(fd, SOL_SOCKET, SO_ERROR, &soe, &ol) == 0 && soe == 0
                 ? 0
                 : -1;
        errno = soe ? soe : ETIMEDOUT;
    }
    if (cr < 0) {
        int e = errno;
        close(fd);
        cr_assert_fail("connect %s:%d: %s", v->inside_addr, pn, strerror(e));
    }
    cr_assert_eq(write(fd, "ping\n", 5), 5);
    char got[128];
    size_t n = 0;
    while (n < sizeof(got) - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 10000) != 1)
            break;
        ssize_t k = read(fd, got + n, sizeof(got) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    got[n] = '\0';
    close(fd);
    snprintf(want, sizeof(want), "pong %s ping\n", v->host_addr);
    cr_expect_str_eq(got, want, "the inside server saw the host end's address");
}

/* ---- several sessions ------------------------------------------------------------------- */

struct setup_job {
    int i;
    const char *range;
    int rc;
    sbx_error *err;
};

static void *setup_main(void *p)
{
    struct setup_job *j = p;
    j->rc = sbx__veth_setup(sbx_session_agent_pid(g_s[j->i]), sbx_session_id(g_s[j->i]),
                            j->range, &g_v[j->i], &j->err);
    return NULL;
}

Test(net_veth, two_sessions_at_once_get_disjoint_subnets_and_a_full_range_is_an_error)
{
    /* A /29 holds two /30s: both concurrent setups must get one each, whatever /30 their
     * session ids point at first. */
    const char *range = "10.234.7.0/29";
    start(0);
    start(1);
    struct setup_job j[2] = {{.i = 0, .range = range}, {.i = 1, .range = range}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, setup_main, &j[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(j[i].rc, 0, "session %d: %s", i, sbx_error_message(j[i].err));
        sbx_error_free(j[i].err);
    }
    cr_assert(j[0].rc == 0 && j[1].rc == 0);
    cr_expect_str_neq(g_v[0].host_if, g_v[1].host_if);
    uint32_t a = ip_of(g_v[0].subnet), b = ip_of(g_v[1].subnet);
    cr_expect_neq(a, b, "both sessions got %s", g_v[0].subnet);
    cr_expect(a + 4 <= b || b + 4 <= a, "%s/30 and %s/30 overlap", g_v[0].subnet,
              g_v[1].subnet);
    for (int i = 0; i < 2; i++)
        check_layout(g_s[i], &g_v[i], range);

    /* a third session finds the range full: a clear error and nothing left behind */
    sbx_session *s3 = start(2);
    sbx_error *err = NULL;
    int r = sbx__veth_setup(sbx_session_agent_pid(s3), sbx_session_id(s3), range, &g_v[2],
                            &err);
    cr_expect_eq(r, SBX_ECONFIG, "%s", sbx_error_message(err));
    cr_expect(err && strstr(sbx_error_message(err), "no free /30"), "%s",
              sbx_error_message(err));
    cr_expect(err && strstr(sbx_error_message(err), range), "%s", sbx_error_message(err));
    sbx_error_free(err);
    char name[16];
    host_if_of(sbx_session_id(s3), name);
    cr_expect(!if_exists(name), "%s left behind after a failed setup", name);
    sh_expect(s3, LIST_IFS, "lo\n");
}

Test(net_veth, four_sessions_in_the_default_range_are_disjoint)
{
    pthread_t t[MAXS];
    struct setup_job j[MAXS];
    for (int i = 0; i < MAXS; i++) {
        start(i);
        j[i] = (struct setup_job){.i = i, .range = "10.235.0.0/24"};
    }
    for (int i = 0; i < MAXS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, setup_main, &j[i]), 0);
    for (int i = 0; i < MAXS; i++)
        pthread_join(t[i], NULL);
    int ok = 1;
    for (int i = 0; i < MAXS; i++) {
        cr_expect_eq(j[i].rc, 0, "session %d: %s", i, sbx_error_message(j[i].err));
        ok &= j[i].rc == 0;
        sbx_error_free(j[i].err);
    }
    cr_assert(ok);
    for (int i = 0; i < MAXS; i++)
        for (int k = i + 1; k < MAXS; k++)
            cr_expect_neq(ip_of(g_v[i].subnet), ip_of(g_v[k].subnet), "%d and %d share %s", i,
                          k, g_v[i].subnet);
    for (int i = 0; i < MAXS; i++)
        sh_expect(g_s[i], ETH0_STATE, "up\n");
}

/* ---- teardown --------------------------------------------------------------------------- */

Test(net_veth, teardown_removes_the_pair_and_is_idempotent)
{
    sbx_session *s = start(0);
    struct sbx_veth *v = veth(0, "10.236.0.0/16");
    struct sbx_veth copy = *v;
    cr_assert(if_exists(v->host_if));
    sbx__veth_teardown(v);
    cr_expect(!if_exists(copy.host_if), "%s still on the host", copy.host_if);
    sh_expect(s, LIST_IFS, "lo\n");
    sbx__veth_teardown(&copy); /* again: nothing to do */
    struct sbx_veth zero;
    memset(&zero, 0, sizeof(zero));
    sbx__veth_teardown(&zero);
    sbx__veth_teardown(NULL);
    struct sbx_veth other = zero;
    snprintf(other.host_if, sizeof(other.host_if), "lo");
    sbx__veth_teardown(&other); /* not an sbx interface: left alone */
    cr_expect(if_exists("lo"));
    /* the session is still usable, and can get a pair again */
    v = veth(0, "10.236.0.0/16");
    sh_expect(s, ETH0_STATE, "up\n");
}

Test(net_veth, the_pair_goes_with_the_sandbox)
{
    start(0);
    struct sbx_veth *v = veth(0, "10.237.0.0/16");
    char name[16];
    snprintf(name, sizeof(name), "%s", v->host_if);
    sbx_session_free(g_s[0]);
    g_s[0] = NULL;
    /* the namespace is cleaned up asynchronously by the kernel */
    for (int i = 0; i < 1000 && if_exists(name); i++)
        usleep(10000);
    cr_expect(!if_exists(name), "%s outlived its sandbox", name);
    sbx__veth_teardown(v); /* safe after the namespace died */
}

Test(net_veth, a_session_without_veth_has_only_lo)
{
    sbx_session *s = start(0);
    sh_expect(s, LIST_IFS, "lo\n");
    char name[16];
    host_if_of(sbx_session_id(s), name);
    cr_expect(!if_exists(name));
}

/* ---- errors ----------------------------------------------------------------------------- */

#define FAKE_ID "deadbeef-0000-4000-8000-000000000000"

static void expect_error(pid_t pid, const char *id, const char *range, int code,
                         const char *msg_part, const char *stage)
{
    struct sbx_veth v;
    memset(&v, 0x5a, sizeof(v));
    sbx_error *err = NULL;
    int r = sbx__veth_setup(pid, id, range, &v, &err);
    cr_expect_eq(r, code, "range %s: got %s (%s), want %s", range ? range : "(null)",
                 sbx_code_name(r), sbx_error_message(err), sbx_code_name(code));
    cr_expect(err && strstr(sbx_error_message(err), msg_part),
              "range %s: message '%s' lacks '%s'", range ? range : "(null)",
              sbx_error_message(err), msg_part);
    if (stage)
        cr_expect(err && sbx_error_context_get(err, "stage") &&
                      strcmp(sbx_error_context_get(err, "stage"), stage) == 0,
                  "stage %s, want %s", err ? sbx_error_context_get(err, "stage") : "-", stage);
    cr_expect(err && strcmp(sbx_error_op(err), "start") == 0);
    cr_expect_eq(v.host_if[0], '\0', "out not zeroed on failure");
    sbx_error_free(err);
    cr_expect(!if_exists("sbxdeadbeefh"), "an interface was left behind");
}

Test(net_veth, an_invalid_range_is_a_clear_error)
{
    pid_t p = getpid();
    expect_error(p, FAKE_ID, "banana", SBX_EINVAL, "not an IPv4 CIDR like 10.231.0.0/16",
                 "veth_range");
    expect_error(p, FAKE_ID, "10.231.0.0", SBX_EINVAL, "not an IPv4 CIDR", "veth_range");
    expect_error(p, FAKE_ID, "10.231.0.0/", SBX_EINVAL, "not an IPv4 CIDR", "veth_range");
    expect_error(p, FAKE_ID, "10.231.0.0/33", SBX_EINVAL, "not an IPv4 CIDR", "veth_range");
    expect_error(p, FAKE_ID, "10.231.0.0/-1", SBX_EINVAL, "not an IPv4 CIDR", "veth_range");
    expect_error(p, FAKE_ID, "10.231.0.0/16x", SBX_EINVAL, "not an IPv4 CIDR", "veth_range");
    expect_error(p, FAKE_ID, "300.1.0.0/16", SBX_EINVAL, "not an IPv4 CIDR", "veth_range");
    expect_error(p, FAKE_ID, "fd00::/64", SBX_EINVAL, "not an IPv4 CIDR", "veth_range");
    expect_error(p, FAKE_ID, "", SBX_EINVAL, "not an IPv4 CIDR", "veth_range");
    expect_error(p, FAKE_ID, "10.231.0.1/16", SBX_EINVAL, "did you mean 10.231.0.0/16?",
                 "veth_range");
    expect_error(p, FAKE_ID, "10.231.0.0/31", SBX_EINVAL, "smaller than one /30", "veth_range");
    expect_error(p, FAKE_ID, "8.8.8.0/24", SBX_EINVAL, "not inside a private IPv4 range",
                 "veth_range");
    expect_error(p, FAKE_ID, "10.0.0.0/7", SBX_EINVAL, "not inside a private", "veth_range");
    expect_error(p, FAKE_ID, "0.0.0.0/0", SBX_EINVAL, "not inside a private", "veth_range");
    cr_expect_eq(sbx__veth_check_range(NULL, NULL), 0);
    cr_expect_eq(sbx__veth_check_range("172.20.0.0/14", NULL), 0);
    cr_expect_eq(sbx__veth_check_range("100.64.0.0/10", NULL), 0);
    cr_expect_eq(sbx__veth_check_range("192.168.1.4/30", NULL), 0);
    cr_expect_eq(sbx__veth_check_range("172.15.0.0/16", NULL), SBX_EINVAL);
    sbx_error *err = NULL;
    cr_expect_eq(sbx__veth_check_range("10.1.2.3/8", &err), SBX_EINVAL);
    cr_expect(err && strstr(sbx_error_message(err), "did you mean 10.0.0.0/8?"));
    sbx_error_free(err);
}

Test(net_veth, bad_arguments_are_refused)
{
    expect_error(getpid(), "zz", NULL, SBX_EINVAL, "8 hex digits", NULL);
    expect_error(0, FAKE_ID, NULL, SBX_EINVAL, "bad argument", NULL);
    sbx_error *err = NULL;
    cr_expect_eq(sbx__veth_setup(getpid(), FAKE_ID, NULL, NULL, &err), SBX_EINVAL);
    sbx_error_free(err);
}

Test(net_veth, a_process_in_the_host_namespace_is_refused)
{
    expect_error(getpid(), FAKE_ID, NULL, SBX_EINVAL, "host's own network namespace",
                 "veth_netns");
    pid_t c = fork();
    cr_assert(c >= 0);
    if (c == 0) {
        pause();
        _exit(0);
    }
    expect_error(c, FAKE_ID, NULL, SBX_EINVAL, "host's own network namespace", "veth_netns");
    kill(c, SIGKILL);
    cr_assert_eq(waitpid(c, NULL, 0), c);
}

Test(net_veth, a_gone_process_is_an_error)
{
    pid_t c = fork();
    cr_assert(c >= 0);
    if (c == 0)
        _exit(0);
    cr_assert_eq(waitpid(c, NULL, 0), c);
    expect_error(c, FAKE_ID, NULL, SBX_ESTATE, "is gone", "veth_netns");
}

Test(net_veth, without_cap_net_admin_it_says_root_is_needed)
{
    int pfd[2];
    cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
    pid_t c = fork();
    cr_assert(c >= 0);
    if (c == 0) {
        close(pfd[0]);
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
        memset(d, 0, sizeof(d));
        char msg[512] = "capget/capset failed";
        if (syscall(SYS_capget, &h, d) == 0) {
            d[0].effective &= ~(1u << CAP_NET_ADMIN);
            if (syscall(SYS_capset, &h, d) == 0) {
                struct sbx_veth v;
                sbx_error *err = NULL;
                int r = sbx__veth_setup(1, FAKE_ID, NULL, &v, &err);
                snprintf(msg, sizeof(msg), "%s|%s", sbx_code_name(r), sbx_error_message(err));
            }
        }
        (void)!write(pfd[1], msg, strlen(msg));
        _exit(0);
    }
    close(pfd[1]);
    char buf[512];
    ssize_t n = 0, k;
    struct pollfd p = {.fd = pfd[0], .events = POLLIN};
    while (n < (ssize_t)sizeof(buf) - 1 && poll(&p, 1, 10000) == 1 &&
           (k = read(pfd[0], buf + n, sizeof(buf) - 1 - (size_t)n)) > 0)
        n += k;
    buf[n < 0 ? 0 : n] = '\0';
    close(pfd[0]);
    cr_assert_eq(waitpid(c, NULL, 0), c);
    cr_expect_str_eq(buf, "permission_denied|veth networking needs root (CAP_NET_ADMIN and "
                          "CAP_SYS_ADMIN): Operation not permitted");
}
