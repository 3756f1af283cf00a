/* net_veth.c — the "veth" network mode: a veth pair from the host into a sandbox's network
 * namespace, with libnl-route-3. The layout, the /30 claim and the threading are described
 * in net_veth.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include "error_internal.h"
#include "net_veth.h"

#define OP "start"

/* ---- range ------------------------------------------------------------------------------ */

struct range {
    uint32_t net; /* host order */
    unsigned len;
};

static int parse_range(const char *s, struct range *r, sbx_error **err)
{
    if (!s)
        s = SBX_VETH_DEFAULT_RANGE;
    char buf[32];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : 0;
    if (!slash || alen == 0 || alen >= sizeof(buf))
        goto bad;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        goto bad;
    const char *p = slash + 1;
    if (*p < '0' || *p > '9' || strlen(p) > 2 || (p[1] && (p[1] < '0' || p[1] > '9')))
        goto bad;
    unsigned len = (unsigned)atoi(p);
    if (len > 32)
        goto bad;
    uint32_t net = ntohl(a.s_addr);
    uint32_t mask = len ? ~0u << (32 - len) : 0;
    if (net & ~mask) {
        struct in_addr fix = {.s_addr = htonl(net & mask)};
        char fb[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &fix, fb, sizeof(fb));
        return sbx_err(err, SBX_EINVAL, 0, OP,
                       "veth range '%s' has host bits set (did you mean %s/%u?)", s, fb, len);
    }
    if (len > 30)
        return sbx_err(err, SBX_EINVAL, 0, OP,
                       "veth range '%s' is smaller than one /30 (each session takes a /30; "
                       "use a /30 or larger, e.g. %s)",
                       s, SBX_VETH_DEFAULT_RANGE);
    static const struct {
        uint32_t net;
        unsigned len;
    } priv[] = {{0x0A000000u, 8}, {0xAC100000u, 12}, {0xC0A80000u, 16}, {0x64400000u, 10}};
    int ok = 0;
    for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
        uint32_t m = ~0u << (32 - priv[i].len);
        if (len >= priv[i].len && (net & m) == priv[i].net)
            ok = 1;
    }
    if (!ok)
        return sbx_err(err, SBX_EINVAL, 0, OP,
                       "veth range '%s' is not inside a private IPv4 range (10.0.0.0/8, "
                       "172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10)",
                       s);
    r->net = net;
    r->len = len;
    return 0;
bad:
    return sbx_err(err, SBX_EINVAL, 0, OP,
                   "veth range '%s' is not an IPv4 CIDR like %s", s, SBX_VETH_DEFAULT_RANGE);
}

int sbx__veth_check_range(const char *range, sbx_error **err)
{
    struct range r;
    int rc = parse_range(range, &r, err);
    if (rc < 0)
        sbx_err_ctx(err, "stage", "veth_range");
    return rc;
}

/* [a, a+2^(32-alen)) and [b, ...) intersect iff they agree on the shorter prefix. */
static int overlaps(uint32_t a, unsigned alen, uint32_t b, unsigned blen)
{
    unsigned l = alen < blen ? alen : blen;
    uint32_t m = l ? ~0u << (32 - l) : 0;
    return (a & m) == (b & m);
}

static void ntoa(uint32_t host_order, char out[16])
{
    struct in_addr a = {.s_addr = htonl(host_order)};
    inet_ntop(AF_INET, &a, out, 16);
}

/* ---- errors ----------------------------------------------------------------------------- */

static int nle_errno(int nle)
{
    switch (nle < 0 ? -nle : nle) {
    case NLE_PERM: return EPERM;
    case NLE_NOACCESS: return EACCES;
    case NLE_EXIST: return EEXIST;
    case NLE_OBJ_NOTFOUND: return ENODEV;
    case NLE_NODEV: return ENODEV;
    case NLE_NOMEM: return ENOMEM;
    case NLE_OPNOTSUPP: return EOPNOTSUPP;
    case NLE_BUSY: return EBUSY;
    case NLE_INVAL: return EINVAL;
    case NLE_RANGE: return ERANGE;
    case NLE_AGAIN: return EAGAIN;
    case NLE_NOADDR: return EADDRNOTAVAIL;
    case NLE_AF_NOSUPPORT: return EAFNOSUPPORT;
    default: return 0;
    }
}

#define NEEDS_ROOT "veth networking needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"

/* An error for libnl code `nle` at `stage`: "<what>: <reason>". */
__attribute__((format(printf, 4, 5))) static int nl_fail(sbx_error **err, int nle,
                                                         const char *stage, const char *fmt,
                                                         ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    int e = nle_errno(nle);
    int rc;
    if (e == EPERM || e == EACCES)
        rc = sbx_err(err, SBX_EPERM, e, OP, "%s: " NEEDS_ROOT, what);
    else if (e == ENOMEM)
        rc = sbx_err(err, SBX_ENOMEM, e, OP, "%s", what);
    else if (e)
        rc = sbx_err(err, SBX_EBACKEND, e, OP, "%s", what);
    else
        rc = sbx_err(err, SBX_EBACKEND, 0, OP, "%s: %s", what, nl_geterror(nle));
    sbx_err_ctx(err, "stage", "%s", stage);
    return rc;
}

static int has_caps(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
    memset(d, 0, sizeof(d));
    if (syscall(SYS_capget, &h, d) < 0)
        return 1; /* unknown: let the kernel decide */
    uint32_t eff = d[0].effective;
    return (eff & (1u << CAP_NET_ADMIN)) && (eff & (1u << CAP_SYS_ADMIN));
}

/* ---- netlink helpers -------------------------------------------------------------------- */

static struct nl_addr *ip4(uint32_t host_order, unsigned prefix)
{
    uint32_t be = htonl(host_order);
    struct nl_addr *a = nl_addr_build(AF_INET, &be, 4);
    if (a)
        nl_addr_set_prefixlen(a, (int)prefix);
    return a;
}

static int open_host_sock(struct nl_sock **out)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return -NLE_NOMEM;
    int r = nl_connect(sk, NETLINK_ROUTE);
    if (r < 0) {
        nl_socket_free(sk);
        return r;
    }
    *out = sk;
    return 0;
}

struct ns_sock_arg {
    int nsfd;
    struct nl_sock *sk;
    int nle;   /* nl_connect's result */
    int errnum; /* setns's errno */
};

static void *ns_sock_thread(void *p)
{
    struct ns_sock_arg *a = p;
    if (setns(a->nsfd, CLONE_NEWNET) < 0) {
        a->errnum = errno;
        return NULL;
    }
    a->nle = nl_connect(a->sk, NETLINK_ROUTE);
    return NULL;
}

/* A rtnetlink socket in the network namespace `nsfd`: opened by a thread that joins it and
 * exits (a socket stays in the namespace it was made in). */
static int open_ns_sock(int nsfd, struct nl_sock **out, sbx_error **err)
{
    struct ns_sock_arg a = {.nsfd = nsfd, .sk = nl_socket_alloc()};
    if (!a.sk)
        return sbx_err(err, SBX_ENOMEM, ENOMEM, OP, "netlink socket");
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int e = pthread_create(&t, NULL, ns_sock_thread, &a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        nl_socket_free(a.sk);
        sbx_err(err, SBX_EBACKEND, e, OP, "thread for the sandbox's network namespace");
        sbx_err_ctx(err, "stage", "veth_inside_socket");
        return SBX_EBACKEND;
    }
    pthread_join(t, NULL);
    if (a.errnum || a.nle < 0) {
        nl_socket_free(a.sk);
        if (a.errnum == EPERM) {
            sbx_err(err, SBX_EPERM, a.errnum, OP,
                    "joining the sandbox's network namespace: " NEEDS_ROOT);
            sbx_err_ctx(err, "stage", "veth_inside_socket");
            return SBX_EPERM;
        }
        if (a.errnum) {
            sbx_err(err, SBX_EBACKEND, a.errnum, OP, "joining the sandbox's network namespace");
            sbx_err_ctx(err, "stage", "veth_inside_socket");
            return SBX_EBACKEND;
        }
        return nl_fail(err, a.nle, "veth_inside_socket",
                       "netlink socket in the sandbox's network namespace");
    }
    *out = a.sk;
    return 0;
}

/* ifindex, flags and operstate of `name` (0 on success). */
static int link_info(struct nl_sock *sk, const char *name, int *ifindex, unsigned *flags,
                     uint8_t *oper)
{
    struct rtnl_link *l = NULL;
    int r = rtnl_link_get_kernel(sk, 0, name, &l);
    if (r < 0)
        return r;
    if (ifindex)
        *ifindex = rtnl_link_get_ifindex(l);
    if (flags)
        *flags = rtnl_link_get_flags(l);
    if (oper)
        *oper = rtnl_link_get_operstate(l);
    rtnl_link_put(l);
    return 0;
}

static int set_up(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *orig = NULL;
    int r = rtnl_link_get_kernel(sk, 0, name, &orig);
    if (r < 0)
        return r;
    if (rtnl_link_get_flags(orig) & IFF_UP) {
        rtnl_link_put(orig);
        return 0;
    }
    struct rtnl_link *chg = rtnl_link_alloc();
    if (!chg) {
        rtnl_link_put(orig);
        return -NLE_NOMEM;
    }
    rtnl_link_set_flags(chg, IFF_UP);
    r = rtnl_link_change(sk, orig, chg, 0);
    rtnl_link_put(orig);
    rtnl_link_put(chg);
    return r;
}

static int add_addr(struct nl_sock *sk, int ifindex, uint32_t ip, unsigned prefix, int del)
{
    struct rtnl_addr *a = rtnl_addr_alloc();
    struct nl_addr *local = ip4(ip, prefix);
    int r = -NLE_NOMEM;
    if (a && local) {
        rtnl_addr_set_ifindex(a, ifindex);
        rtnl_addr_set_family(a, AF_INET);
        r = rtnl_addr_set_local(a, local);
        if (r == 0)
            r = del ? rtnl_addr_delete(sk, a, 0) : rtnl_addr_add(sk, a, NLM_F_EXCL);
    }
    nl_addr_put(local);
    rtnl_addr_put(a);
    return r;
}

/* dst/dlen via gw (0: none) dev ifindex, in the main table; NLM_F_EXCL. */
static int add_route(struct nl_sock *sk, uint32_t dst, unsigned dlen, uint32_t gw,
                     uint32_t src, int ifindex)
{
    struct rtnl_route *rt = rtnl_route_alloc();
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    struct nl_addr *d = ip4(dst, dlen);
    struct nl_addr *g = gw ? ip4(gw, 32) : NULL;
    struct nl_addr *s = src ? ip4(src, 32) : NULL;
    int r = -NLE_NOMEM;
    if (!rt || !nh || !d || (gw && !g) || (src && !s))
        goto out;
    rtnl_route_set_family(rt, AF_INET);
    rtnl_route_set_table(rt, RT_TABLE_MAIN);
    rtnl_route_set_type(rt, RTN_UNICAST);
    rtnl_route_set_protocol(rt, gw ? RTPROT_STATIC : RTPROT_KERNEL);
    rtnl_route_set_scope(rt, gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
    if ((r = rtnl_route_set_dst(rt, d)) < 0)
        goto out;
    if (s && (r = rtnl_route_set_pref_src(rt, s)) < 0)
        goto out;
    rtnl_route_nh_set_ifindex(nh, ifindex);
    if (g)
        rtnl_route_nh_set_gateway(nh, g);
    rtnl_route_add_nexthop(rt, nh);
    nh = NULL; /* the route owns it */
    r = rtnl_route_add(sk, rt, NLM_F_EXCL);
out:
    if (nh)
        rtnl_route_nh_free(nh);
    nl_addr_put(d);
    nl_addr_put(g);
    nl_addr_put(s);
    rtnl_route_put(rt);
    return r;
}

/* ---- picking a /30 ---------------------------------------------------------------------- */

struct taken {
    uint32_t *net;
    unsigned *len;
    size_t n, cap;
};

static int taken_add(struct taken *t, uint32_t net, unsigned len)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        uint32_t *n2 = realloc(t->net, cap * sizeof(*n2));
        if (!n2)
            return -1;
        t->net = n2;
        unsigned *l2 = realloc(t->len, cap * sizeof(*l2));
        if (!l2)
            return -1;
        t->len = l2;
        t->cap = cap;
    }
    t->net[t->n] = net;
    t->len[t->n] = len;
    t->n++;
    return 0;
}

static void taken_free(struct taken *t)
{
    free(t->net);
    free(t->len);
    memset(t, 0, sizeof(*t));
}

static int addr4(struct nl_addr *a, uint32_t *out)
{
    if (!a || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4)
        return -1;
    uint32_t be;
    memcpy(&be, nl_addr_get_binary_addr(a), 4);
    *out = ntohl(be);
    return 0;
}

/* Every IPv4 address (with its prefix) and every non-default IPv4 route on the host. */
static int load_taken(struct nl_sock *sk, struct taken *t)
{
    t->n = 0;
    struct nl_cache *c = NULL;
    int r = rtnl_addr_alloc_cache(sk, &c);
    if (r < 0)
        return r;
    for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *)o;
        uint32_t ip;
        if (rtnl_addr_get_family(a) != AF_INET)
            continue;
        unsigned plen = (unsigned)rtnl_addr_get_prefixlen(a);
        if (addr4(rtnl_addr_get_peer(a), &ip) == 0 && taken_add(t, ip, plen) < 0)
            r = -NLE_NOMEM;
        if (addr4(rtnl_addr_get_local(a), &ip) == 0 && taken_add(t, ip, plen) < 0)
            r = -NLE_NOMEM;
    }
    nl_cache_free(c);
    if (r < 0)
        return r;
    c = NULL;
    r = rtnl_route_alloc_cache(sk, AF_INET, 0, &c);
    if (r < 0)
        return r;
    for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
        struct nl_addr *d = rtnl_route_get_dst((struct rtnl_route *)o);
        uint32_t ip;
        unsigned plen = d ? nl_addr_get_prefixlen(d) : 0;
        if (plen == 0 || addr4(d, &ip) < 0)
            continue; /* a default route overlaps everything; it is not a conflict */
        if (taken_add(t, ip, plen) < 0)
            r = -NLE_NOMEM;
    }
    nl_cache_free(c);
    return r;
}

static int is_taken(const struct taken *t, uint32_t net30)
{
    for (size_t i = 0; i < t->n; i++)
        if (overlaps(net30, 30, t->net[i], t->len[i]))
            return 1;
    return 0;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Claims a /30 for the host end (ifindex): a /32 address, then the /30 route with
 * NLM_F_EXCL. Sets *net30. */
static int claim_subnet(struct nl_sock *sk, int ifindex, const struct range *rg,
                        const char *session_id, const char *range_str, uint32_t *net30,
                        sbx_error **err)
{
    uint64_t nslots = 1ull << (30 - rg->len);
    uint64_t first = fnv1a(session_id) % nslots;
    struct taken t = {0};
    int r = load_taken(sk, &t);
    if (r < 0) {
        taken_free(&t);
        return nl_fail(err, r, "veth_pick", "listing the host's addresses and routes");
    }
    for (uint64_t k = 0; k < nslots; k++) {
        uint32_t net = rg->net + (uint32_t)(((first + k) % nslots) << 2);
        if (is_taken(&t, net))
            continue;
        r = add_addr(sk, ifindex, net + 1, 32, 0);
        if (r == -NLE_EXIST)
            continue;
        if (r < 0) {
            taken_free(&t);
            char a[16];
            ntoa(net + 1, a);
            return nl_fail(err, r, "veth_host_address", "adding %s/32 to the host end", a);
        }
        r = add_route(sk, net, 30, 0, net + 1, ifindex);
        if (r == 0) {
            taken_free(&t);
            *net30 = net;
            return 0;
        }
        (void)add_addr(sk, ifindex, net + 1, 32, 1);
        if (r != -NLE_EXIST) {
            taken_free(&t);
            char a[16];
            ntoa(net, a);
            return nl_fail(err, r, "veth_host_route", "adding the route %s/30 on the host", a);
        }
        /* Another session claimed it since the listing: list again and go on. */
        r = load_taken(sk, &t);
        if (r < 0) {
            taken_free(&t);
            return nl_fail(err, r, "veth_pick", "listing the host's addresses and routes");
        }
    }
    taken_free(&t);
    sbx_err(err, SBX_ECONFIG, 0, OP,
            "no free /30 left in the veth range %s (every one overlaps an address or route on "
            "the host, or another session's); pass a larger or another private range",
            range_str);
    sbx_err_ctx(err, "stage", "veth_pick");
    return SBX_ECONFIG;
}

/* ---- setup / teardown ------------------------------------------------------------------- */

static int delete_link(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *l = rtnl_link_alloc();
    if (!l)
        return -NLE_NOMEM;
    rtnl_link_set_name(l, name);
    int r = rtnl_link_delete(sk, l);
    rtnl_link_put(l);
    return r;
}

static int create_pair(struct nl_sock *sk, const char *host_if, int nsfd)
{
    struct rtnl_link *link = rtnl_link_veth_alloc();
    if (!link)
        return -NLE_NOMEM;
    struct rtnl_link *peer = rtnl_link_veth_get_peer(link);
    if (!peer) {
        rtnl_link_put(link);
        return -NLE_NOMEM;
    }
    rtnl_link_set_name(link, host_if);
    rtnl_link_set_flags(link, IFF_UP);
    rtnl_link_set_name(peer, SBX_VETH_INSIDE_IF);
    rtnl_link_set_ns_fd(peer, nsfd);
    /* not IFF_UP on the peer here: the kernel opens it before the pair is linked (ENOTCONN) */
    int r = rtnl_link_add(sk, link, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(peer);
    rtnl_link_put(link);
    return r;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Opens the network namespace of pid, making sure the fd is that process's (not a recycled
 * pid's) and not the caller's own namespace. */
static int open_netns(pid_t pid, int *out, sbx_error **err)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        int e = errno;
        int code = e == ESRCH ? SBX_ESTATE : SBX_EBACKEND;
        if (e == ESRCH)
            sbx_err(err, code, e, OP, "the sandbox's process %d is gone", (int)pid);
        else
            sbx_err(err, code, e, OP, "pidfd_open(%d)", (int)pid);
        sbx_err_ctx(err, "stage", "veth_netns");
        return code;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int e = errno;
    int alive = syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
    close(pidfd);
    if (fd < 0 || !alive) {
        if (fd >= 0)
            close(fd);
        if (!alive || e == ENOENT || e == ESRCH) {
            sbx_err(err, SBX_ESTATE, 0, OP, "the sandbox's process %d is gone", (int)pid);
            sbx_err_ctx(err, "stage", "veth_netns");
            return SBX_ESTATE;
        }
        sbx_err(err, e == EACCES || e == EPERM ? SBX_EPERM : SBX_EBACKEND, e, OP, "open %s",
                path);
        sbx_err_ctx(err, "stage", "veth_netns");
        return e == EACCES || e == EPERM ? SBX_EPERM : SBX_EBACKEND;
    }
    struct stat a, b;
    if (fstat(fd, &a) == 0 && stat("/proc/self/ns/net", &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev) {
        close(fd);
        sbx_err(err, SBX_EINVAL, 0, OP,
                "process %d is in the host's own network namespace, not a sandbox's", (int)pid);
        sbx_err_ctx(err, "stage", "veth_netns");
        return SBX_EINVAL;
    }
    *out = fd;
    return 0;
}

int sbx__veth_setup(pid_t pid, const char *session_id, const char *range, struct sbx_veth *out,
                    sbx_error **err)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (!out || pid <= 0 || !session_id)
        return sbx_err(err, SBX_EINVAL, 0, OP, "sbx__veth_setup: bad argument");
    struct range rg;
    int rc = sbx__veth_check_range(range, err);
    if (rc < 0)
        return rc;
    (void)parse_range(range, &rg, NULL);
    const char *range_str = range ? range : SBX_VETH_DEFAULT_RANGE;

    char hex[9];
    size_t nh = 0;
    for (const char *p = session_id; *p && nh < 8; p++) {
        char c = *p;
        if (c == '-')
            continue;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            break;
        hex[nh++] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
    hex[nh] = '\0';
    if (nh < 8)
        return sbx_err(err, SBX_EINVAL, 0, OP,
                       "session id '%s' does not start with 8 hex digits (veth interface name)",
                       session_id);
    struct sbx_veth v;
    memset(&v, 0, sizeof(v));
    snprintf(v.host_if, sizeof(v.host_if), "sbx%sh", hex);
    v.prefix = 30;

    if (!has_caps()) {
        sbx_err(err, SBX_EPERM, EPERM, OP, NEEDS_ROOT);
        sbx_err_ctx(err, "stage", "veth_caps");
        return SBX_EPERM;
    }

    int nsfd = -1;
    struct nl_sock *hs = NULL, *is = NULL;
    int created = 0;
    if ((rc = open_netns(pid, &nsfd, err)) < 0)
        goto fail;
    int r = open_host_sock(&hs);
    if (r < 0) {
        rc = nl_fail(err, r, "veth_host_socket", "netlink socket");
        goto fail;
    }

    r = create_pair(hs, v.host_if, nsfd);
    if (r == -NLE_EXIST) {
        rc = sbx_err(err, SBX_ECONFIG, EEXIST, OP,
                     "creating the veth pair: %s already exists on the host, or eth0 in the "
                     "sandbox (a leaked pair is removed with: ip link del %s)",
                     v.host_if, v.host_if);
        sbx_err_ctx(err, "stage", "veth_create");
        goto fail;
    }
    if (r == -NLE_OPNOTSUPP || r == -NLE_NOATTR || r == -NLE_OBJ_NOTFOUND) {
        rc = sbx_err(err, SBX_ENOSYS, 0, OP,
                     "creating the veth pair: the kernel has no veth support (%s; load it "
                     "with: modprobe veth)",
                     nl_geterror(r));
        sbx_err_ctx(err, "stage", "veth_create");
        goto fail;
    }
    if (r < 0) {
        rc = nl_fail(err, r, "veth_create", "creating the veth pair %s", v.host_if);
        goto fail;
    }
    created = 1;
    if ((r = link_info(hs, v.host_if, &v.host_ifindex, NULL, NULL)) < 0) {
        rc = nl_fail(err, r, "veth_create", "looking up %s", v.host_if);
        goto fail;
    }
    if ((r = set_up(hs, v.host_if)) < 0) {
        rc = nl_fail(err, r, "veth_host_up", "bringing %s up", v.host_if);
        goto fail;
    }

    uint32_t net = 0;
    if ((rc = claim_subnet(hs, v.host_ifindex, &rg, session_id, range_str, &net, err)) < 0)
        goto fail;
    ntoa(net, v.subnet);
    ntoa(net + 1, v.host_addr);
    ntoa(net + 2, v.inside_addr);

    if ((rc = open_ns_sock(nsfd, &is, err)) < 0)
        goto fail;
    int in_index = 0;
    if ((r = link_info(is, SBX_VETH_INSIDE_IF, &in_index, NULL, NULL)) < 0) {
        rc = nl_fail(err, r, "veth_inside_up", "looking up eth0 in the sandbox");
        goto fail;
    }
    if ((r = set_up(is, SBX_VETH_INSIDE_IF)) < 0) {
        rc = nl_fail(err, r, "veth_inside_up", "bringing eth0 up in the sandbox");
        goto fail;
    }
    if ((r = add_addr(is, in_index, net + 2, 30, 0)) < 0) {
        rc = nl_fail(err, r, "veth_inside_address", "adding %s/30 to eth0 in the sandbox",
                     v.inside_addr);
        goto fail;
    }
    if ((r = add_route(is, 0, 0, net + 1, 0, in_index)) < 0) {
        rc = nl_fail(err, r, "veth_inside_route",
                     "adding the default route via %s in the sandbox", v.host_addr);
        goto fail;
    }
    /* Carrier and operstate follow asynchronously (linkwatch); until then the qdisc drops. */
    int64_t deadline = now_ms() + 2000;
    for (;;) {
        uint8_t ho = 0, io = 0;
        if (link_info(hs, v.host_if, NULL, NULL, &ho) < 0 ||
            link_info(is, SBX_VETH_INSIDE_IF, NULL, NULL, &io) < 0)
            break;
        if ((ho == IF_OPER_UP && io == IF_OPER_UP) || now_ms() > deadline)
            break;
        sleep_ms(2);
    }
    nl_socket_free(is);
    nl_socket_free(hs);
    close(nsfd);
    *out = v;
    return 0;

fail:
    sbx_err_ctx(err, "interface", "%s", v.host_if);
    if (created)
        (void)delete_link(hs, v.host_if);
    if (is)
        nl_socket_free(is);
    if (hs)
        nl_socket_free(hs);
    if (nsfd >= 0)
        close(nsfd);
    return rc;
}

void sbx__veth_teardown(const struct sbx_veth *v)
{
    if (!v || !memchr(v->host_if, '\0', sizeof(v->host_if)) || strncmp(v->host_if, "sbx", 3) != 0)
        return;
    struct nl_sock *sk = NULL;
    if (open_host_sock(&sk) < 0)
        return;
    (void)delete_link(sk, v->host_if);
    nl_socket_free(sk);
}
