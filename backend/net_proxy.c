/* net_proxy.c — the host-side HTTP forward proxy engine (see net_proxy.h and
 * docs/network-proxy.md).
 *
 * One engine thread runs an epoll loop over every connection. A connection goes through:
 *
 *   HEAD     reading the request head (bounded size, deadline)
 *   RESOLVE  a resolver thread runs getaddrinfo (deadline)
 *   CONNECT  non-blocking connect to each acceptable address in turn (deadline)
 *   RELAY    bytes both ways with splice() through one pipe per direction; a direction
 *            first sends its prefix (the rewritten request head, or "200 Connection
 *            established"); EOF on one side becomes shutdown(SHUT_WR) on the other
 *   REPLY    a refusal is being written to the client
 *   LINGER   after the refusal, the client's leftovers are read and dropped for a moment so
 *            that closing does not reset the connection before the client read the answer
 *
 * Epoll is level-triggered; an fd is registered only while the engine wants something from
 * it (an fd that hung up would otherwise be reported forever). Connections that end while a
 * batch of events is being handled are freed after the batch. */
#include "net_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "error_internal.h"
#include "splice_pump.h"
#include "util.h"

#define HEAD_MAX      16384
#define MAX_ADDRS     8
#define MAX_RESOLVERS 8
#define BUSY_EXTRA    64 /* connections answered 503 at once, beyond max_conns */
#define REPLY_MS      5000
#define LINGER_MS     2000
#define PUMP_ROUNDS   16

/* ---- addresses ---------------------------------------------------------------------- */

/* An IP address in canonical form: IPv4-mapped IPv6 is IPv4. */
struct ip {
    int v4;
    unsigned char b[16];
};

static void ip_from_v4(const struct in_addr *a, struct ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    ip->v4 = 1;
    memcpy(ip->b, a, 4);
}

/* An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 address. */
static void ip_from_v6(const struct in6_addr *a6, struct ip *ip)
{
    memset(ip, 0, sizeof(*ip));
    const unsigned char *a = a6->s6_addr;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0) {
        ip->v4 = 1;
        memcpy(ip->b, a + 12, 4);
        return;
    }
    memcpy(ip->b, a, 16);
}

static void ip_from_sa(const struct sockaddr *sa, struct ip *ip)
{
    if (sa->sa_family == AF_INET)
        ip_from_v4(&((const struct sockaddr_in *)sa)->sin_addr, ip);
    else
        ip_from_v6(&((const struct sockaddr_in6 *)sa)->sin6_addr, ip);
}

static int ip_eq(const struct ip *a, const struct ip *b)
{
    return a->v4 == b->v4 && memcmp(a->b, b->b, a->v4 ? 4 : 16) == 0;
}

/* Parses an IP literal ("1.2.3.4", "::1", "[::1]"); strict dotted quads only. */
static int ip_parse(const char *s, struct ip *ip)
{
    char tmp[64];
    size_t n = strlen(s);
    if (n >= sizeof(tmp))
        return -1;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        memcpy(tmp, s + 1, n - 2);
        tmp[n - 2] = '\0';
    } else {
        memcpy(tmp, s, n + 1);
    }
    struct in6_addr a6;
    struct in_addr a4;
    if (tmp[0] != '\0' && s[0] != '[' && inet_pton(AF_INET, tmp, &a4) == 1) {
        ip_from_v4(&a4, ip);
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, &a6) == 1) {
        ip_from_v6(&a6, ip);
        return 0;
    }
    return -1;
}

static void ip_str(const struct ip *ip, char *out, size_t cap)
{
    if (!inet_ntop(ip->v4 ? AF_INET : AF_INET6, ip->b, out, (socklen_t)cap))
        snprintf(out, cap, "?");
}

/* Why an address must not be reached from a sandbox, or NULL. */
static const char *ip_forbidden_kind(const struct ip *ip)
{
    const unsigned char *b = ip->b;
    unsigned char v4[4];
    if (!ip->v4) {
        static const unsigned char zero12[16] = {0};
        static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
        int all0 = 1;
        for (int i = 0; i < 16; i++)
            all0 &= b[i] == 0;
        if (all0)
            return "unspecified";
        if (memcmp(b, zero12, 15) == 0 && b[15] == 1)
            return "loopback";
        if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
            return "link-local";
        if (b[0] == 0xff)
            return "multicast";
        /* IPv4-compatible (deprecated) and NAT64 addresses carry an IPv4 address. */
        if (memcmp(b, zero12, 12) != 0 && memcmp(b, nat64, 12) != 0)
            return NULL;
        memcpy(v4, b + 12, 4);
    } else {
        memcpy(v4, b, 4);
    }
    if (v4[0] == 0)
        return "unspecified";
    if (v4[0] == 127)
        return "loopback";
    if (v4[0] == 169 && v4[1] == 254)
        return "link-local";
    if (v4[0] >= 224 && v4[0] <= 239)
        return "multicast";
    if (v4[0] == 255 && v4[1] == 255 && v4[2] == 255 && v4[3] == 255)
        return "broadcast";
    if (v4[0] >= 240)
        return "reserved";
    return NULL;
}

/* Is the address configured on one of the host's interfaces? */
static int ip_is_local(const struct ip *ip)
{
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0)
        return 0;
    int found = 0;
    for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr ||
            (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        struct ip a;
        ip_from_sa(i->ifa_addr, &a);
        found = ip_eq(&a, ip);
    }
    freeifaddrs(ifa);
    return found;
}

/* ---- host names ---------------------------------------------------------------------- */

/* Normalizes a host name in place (lower case, one trailing dot removed) and checks it is a
 * plausible DNS name. A name whose last label is numeric is refused: getaddrinfo would read
 * "127.1" or "2130706433" as an address. 0, or -1. */
static int host_normalize(char *h)
{
    size_t n = strlen(h);
    if (n > 0 && h[n - 1] == '.')
        h[--n] = '\0';
    if (n == 0 || n > 253)
        return -1;
    size_t label = 0;
    int numeric = 1;
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (ch >= 'A' && ch <= 'Z')
            h[i] = ch = (char)(ch - 'A' + 'a');
        if (ch == '.') {
            if (label == 0)
                return -1;
            label = 0;
            numeric = 1;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return -1;
        if (++label > 63)
            return -1;
        if (!(ch >= '0' && ch <= '9') && !(label == 2 && ch == 'x' && h[i - 1] == '0'))
            numeric = 0;
    }
    return numeric ? -1 : 0;
}

/* ---- resolver ------------------------------------------------------------------------- */

enum { J_QUEUED, J_RUNNING, J_DONE };

struct conn;

struct job {
    struct job *next;
    struct conn *c; /* engine-thread side */
    int state, cancelled;
    char host[256];
    int gai;
    int naddr;
    struct ip addr[MAX_ADDRS];
};

/* Shared by the engine and the resolver threads; outlives the proxy while a lookup that
 * could not be waited for is still running. */
struct hub {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs, closed, nthreads;
    struct job *queue, *queue_tail, *done;
    int wakefd;
};

static void hub_unref_locked(struct hub *h)
{
    int last = --h->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (last) {
        close(h->wakefd);
        pthread_cond_destroy(&h->cv);
        pthread_mutex_destroy(&h->mu);
        free(h);
    }
}

static void wake(int fd)
{
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof(one));
    (void)r;
}

static void do_lookup(struct job *j)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    j->gai = getaddrinfo(j->host, NULL, &hints, &res);
    j->naddr = 0;
    for (struct addrinfo *a = res; a && j->naddr < MAX_ADDRS; a = a->ai_next) {
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        struct ip ip;
        ip_from_sa(a->ai_addr, &ip);
        int dup = 0;
        for (int i = 0; i < j->naddr; i++)
            dup |= ip_eq(&j->addr[i], &ip);
        if (!dup)
            j->addr[j->naddr++] = ip;
    }
    if (res)
        freeaddrinfo(res);
    if (j->gai == 0 && j->naddr == 0)
        j->gai = EAI_NONAME;
}

static void *resolver_main(void *arg)
{
    struct hub *h = arg;
    pthread_mutex_lock(&h->mu);
    while (h->queue && !h->closed) {
        struct job *j = h->queue;
        h->queue = j->next;
        if (!h->queue)
            h->queue_tail = NULL;
        j->state = J_RUNNING;
        pthread_mutex_unlock(&h->mu);
        do_lookup(j);
        pthread_mutex_lock(&h->mu);
        if (j->cancelled) {
            free(j);
        } else {
            j->state = J_DONE;
            j->next = h->done;
            h->done = j;
            wake(h->wakefd);
        }
    }
    h->nthreads--;
    pthread_cond_broadcast(&h->cv);
    hub_unref_locked(h);
    return NULL;
}

/* Queues a lookup (engine thread, whose signals are all blocked: threads inherit that). */
static void hub_submit(struct hub *h, struct job *j)
{
    pthread_mutex_lock(&h->mu);
    j->state = J_QUEUED;
    j->next = NULL;
    if (h->queue_tail)
        h->queue_tail->next = j;
    else
        h->queue = j;
    h->queue_tail = j;
    if (h->nthreads < MAX_RESOLVERS) {
        pthread_attr_t at;
        pthread_t t;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        h->refs++;
        h->nthreads++;
        if (pthread_create(&t, &at, resolver_main, h) != 0) {
            h->refs--;
            h->nthreads--;
            if (h->nthreads == 0) { /* nobody will run it: fail it now */
                h->queue = h->queue_tail = NULL;
                j->gai = EAI_AGAIN;
                j->state = J_DONE;
                j->next = h->done;
                h->done = j;
                wake(h->wakefd);
            }
        }
        pthread_attr_destroy(&at);
    }
    pthread_mutex_unlock(&h->mu);
}

/* Forgets a lookup whose connection ended (engine thread). */
static void hub_cancel(struct hub *h, struct job *j)
{
    pthread_mutex_lock(&h->mu);
    if (j->state == J_QUEUED) {
        struct job **pp = &h->queue, *prev = NULL;
        while (*pp && *pp != j) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp) {
            *pp = j->next;
            if (h->queue_tail == j)
                h->queue_tail = prev;
        }
        free(j);
    } else {
        j->cancelled = 1; /* RUNNING: its thread frees it; DONE: the engine, in the batch */
    }
    pthread_mutex_unlock(&h->mu);
}

/* ---- connections ---------------------------------------------------------------------- */

enum { S_HEAD, S_RESOLVE, S_CONNECT, S_RELAY, S_REPLY, S_LINGER, S_DEAD };

struct dir {
    int *src, *dst;
    struct sbx_pump p;   /* the spliced bytes (common/splice_pump.h) */
    char *pre;           /* bytes sent ahead of them: a 200 for CONNECT, a rewritten head */
    size_t prelen, preoff;
    int pre_counts;
    uint64_t pre_bytes;  /* of pre, counted when pre_counts */
};

struct conn;
struct ep {
    struct conn *c;
    int side; /* 0 client, 1 upstream */
};

struct conn {
    struct conn *prev, *next;
    int state;
    int fd[2];            /* client, upstream */
    uint32_t reg[2];      /* events registered; 0: not registered */
    struct ep ep[2];
    char *buf;
    size_t blen;
    uint64_t t0, deadline, attempt_deadline;
    int busy, counted, logged;
    /* the request */
    char method[32];
    char host[256];
    unsigned port;
    int is_connect, host_is_ip, parsed;
    char address[INET6_ADDRSTRLEN];
    struct job *job;
    struct ip addrs[MAX_ADDRS];
    int naddr, ai, last_errno;
    struct dir d[2]; /* 0: client to upstream, 1: back */
    /* a refusal */
    int status;
    const char *reason;
    char *msg;
    char *out;
    size_t outlen, outoff;
};

struct rule {
    int kind; /* 0 exact name, 1 suffix ("*.x" stored as ".x"), 2 IP */
    char *name;
    struct ip ip;
};

struct host_entry {
    char *name;
    struct ip ip;
};

struct sbx_proxy {
    struct rule *rules;
    size_t nrules;
    struct host_entry *hosts;
    size_t nhosts;
    void (*log)(void *, const struct sbx_proxy_event *);
    void *log_arg;
    unsigned max_conns, head_ms, resolve_ms, connect_ms;

    int epfd;
    struct hub *hub;
    pthread_t thread;

    pthread_mutex_t mu; /* incoming, stopping */
    struct conn *incoming;
    int stopping;

    /* engine thread only */
    int stopped;
    struct conn *conns, *graveyard;
    unsigned nactive, nbusy;
};

static uint64_t ms_to_ns(unsigned ms)
{
    return (uint64_t)ms * 1000000ull;
}

static void set_interest(struct sbx_proxy *p, struct conn *c, int side, uint32_t ev)
{
    int fd = c->fd[side];
    if (fd < 0 || c->reg[side] == ev)
        return;
    if (ev == 0) {
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
    } else {
        struct epoll_event e = {.events = ev, .data.ptr = &c->ep[side]};
        epoll_ctl(p->epfd, c->reg[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e);
    }
    c->reg[side] = ev;
}

static void close_side(struct sbx_proxy *p, struct conn *c, int side)
{
    set_interest(p, c, side, 0);
    if (c->fd[side] >= 0)
        close(c->fd[side]);
    c->fd[side] = -1;
}

static void release_slot(struct sbx_proxy *p, struct conn *c)
{
    if (c->counted)
        p->nactive--;
    if (c->busy)
        p->nbusy--;
    c->counted = c->busy = 0;
}

static void log_event(struct sbx_proxy *p, struct conn *c)
{
    if (c->logged)
        return;
    c->logged = 1;
    if (!p->log)
        return;
    struct sbx_proxy_event ev = {
        .method = c->parsed ? c->method : NULL,
        .host = c->host[0] ? c->host : NULL,
        .port = c->port,
        .address = c->address[0] ? c->address : NULL,
        .allowed = c->reason == NULL,
        .status = c->status,
        .reason = c->reason,
        .message = c->reason ? c->msg : NULL,
        .bytes_up = c->d[0].pre_bytes + c->d[0].p.bytes,
        .bytes_down = c->d[1].pre_bytes + c->d[1].p.bytes,
        .duration_ms = sbx__ms_since(c->t0),
    };
    p->log(p->log_arg, &ev);
}

/* Ends a connection: logs it (if it carried a request), closes everything, and moves it to
 * the graveyard, freed after the current batch of events. */
static void finish(struct sbx_proxy *p, struct conn *c)
{
    if (c->state == S_DEAD)
        return;
    /* ended before it was decided or connected: not a relayed request */
    if (!c->reason && (c->state == S_HEAD || c->state == S_RESOLVE || c->state == S_CONNECT))
        c->reason = p->stopped ? "proxy_closed" : "client_closed";
    if (c->blen > 0 || c->parsed)
        log_event(p, c);
    if (c->job) {
        hub_cancel(p->hub, c->job);
        c->job = NULL;
    }
    close_side(p, c, 0);
    close_side(p, c, 1);
    for (int i = 0; i < 2; i++)
        sbx__pump_close(&c->d[i].p);
    release_slot(p, c);
    c->state = S_DEAD;
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = NULL;
    c->next = p->graveyard;
    p->graveyard = c;
}

static void conn_free(struct conn *c)
{
    free(c->buf);
    free(c->msg);
    free(c->out);
    free(c->d[0].pre);
    free(c->d[1].pre);
    free(c);
}

static void reply_write(struct sbx_proxy *p, struct conn *c);

static const char *status_text(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
    }
}

/* Refuses the request: logs it, answers `status` with a plain-text explanation, closes. */
__attribute__((format(printf, 5, 6))) static void refuse(struct sbx_proxy *p, struct conn *c,
                                                        int status, const char *reason,
                                                        const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof(body) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(body) - 2)
        n = (int)sizeof(body) - 2;
    free(c->msg);
    c->msg = strdup(body);
    body[n++] = '\n';
    body[n] = '\0';
    c->status = status;
    c->reason = reason;
    for (int i = 0; i < 2; i++)
        c->d[i].pre_bytes = c->d[i].p.bytes = 0;
    if (c->job) {
        hub_cancel(p->hub, c->job);
        c->job = NULL;
    }
    close_side(p, c, 1);
    log_event(p, c);
    release_slot(p, c);
    free(c->out);
    c->out = NULL;
    size_t cap = (size_t)n + 512;
    c->out = malloc(cap);
    if (!c->out || !c->msg) {
        finish(p, c);
        return;
    }
    int hl = snprintf(c->out, cap,
                      "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: %d\r\nConnection: close\r\nProxy-Connection: close\r\n"
                      "X-Sbx-Proxy-Reason: %s\r\n\r\n%s",
                      status, status_text(status), n, reason, body);
    c->outlen = (size_t)hl;
    c->outoff = 0;
    c->state = S_REPLY;
    c->deadline = sbx__now_ns() + ms_to_ns(REPLY_MS);
    reply_write(p, c);
}

static void reply_write(struct sbx_proxy *p, struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t k = send(c->fd[0], c->out + c->outoff, c->outlen - c->outoff,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_interest(p, c, 0, EPOLLOUT);
            return;
        }
        if (k <= 0) {
            finish(p, c);
            return;
        }
        c->outoff += (size_t)k;
    }
    shutdown(c->fd[0], SHUT_WR);
    c->state = S_LINGER;
    c->deadline = sbx__now_ns() + ms_to_ns(LINGER_MS);
    set_interest(p, c, 0, EPOLLIN);
}

static void linger_read(struct sbx_proxy *p, struct conn *c)
{
    char sink[4096];
    for (int i = 0; i < 64; i++) {
        ssize_t k = recv(c->fd[0], sink, sizeof(sink), MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k <= 0)
            break;
    }
    finish(p, c);
}

/* ---- the allow list -------------------------------------------------------------------- */

static int allowed_name(const struct sbx_proxy *p, const char *host)
{
    size_t hl = strlen(host);
    for (size_t i = 0; i < p->nrules; i++) {
        const struct rule *r = &p->rules[i];
        if (r->kind == 0 && strcmp(r->name, host) == 0)
            return 1;
        if (r->kind == 1) {
            size_t sl = strlen(r->name); /* ".example.com" */
            if (hl > sl && strcmp(host + hl - sl, r->name) == 0)
                return 1;
        }
    }
    return 0;
}

static int allowed_ip(const struct sbx_proxy *p, const struct ip *ip)
{
    for (size_t i = 0; i < p->nrules; i++)
        if (p->rules[i].kind == 2 && ip_eq(&p->rules[i].ip, ip))
            return 1;
    return 0;
}

/* "a, *.b, 10.0.0.1" for messages, shortened to fit. */
static void allow_summary(const struct sbx_proxy *p, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    if (p->nrules == 0) {
        snprintf(out, cap, "nothing: the allow list is empty");
        return;
    }
    for (size_t i = 0; i < p->nrules; i++) {
        char one[300];
        const struct rule *r = &p->rules[i];
        if (r->kind == 2)
            ip_str(&r->ip, one, sizeof(one));
        else
            snprintf(one, sizeof(one), "%s%s", r->kind == 1 ? "*" : "", r->name);
        size_t need = strlen(one) + (i ? 2 : 0);
        if (len + need + 8 >= cap) {
            snprintf(out + len, cap - len, "%s...", i ? ", " : "");
            return;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? ", " : "", one);
    }
}

/* ---- parsing ------------------------------------------------------------------------------ */

static int is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int parse_port(const char *s, size_t n, unsigned *port)
{
    if (n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

/* host[:port] (host may be [v6]) into c->host/port/host_is_ip. */
static const char *parse_authority(struct conn *c, const char *a, size_t n, unsigned defport)
{
    const char *hs = a, *colon = NULL;
    size_t hn;
    if (n == 0)
        return "the request names no host";
    if (memchr(a, '@', n))
        return "user-info (user@host) is not accepted in the request target";
    if (a[0] == '[') {
        const char *end = memchr(a, ']', n);
        if (!end)
            return "malformed IPv6 address in the request target";
        hn = (size_t)(end - a) + 1;
        if (hn < n) {
            if (a[hn] != ':')
                return "malformed authority in the request target";
            colon = a + hn;
        }
    } else {
        colon = memchr(a, ':', n);
        hn = colon ? (size_t)(colon - a) : n;
    }
    if (colon) {
        if (parse_port(colon + 1, n - (size_t)(colon + 1 - a), &c->port) != 0)
            return "invalid port in the request target";
    } else if (defport) {
        c->port = defport;
    } else {
        return "CONNECT needs host:port";
    }
    if (hn == 0 || hn >= sizeof(c->host))
        return "invalid host in the request target";
    memcpy(c->host, hs, hn);
    c->host[hn] = '\0';
    struct ip ip;
    if (ip_parse(c->host, &ip) == 0) {
        c->host_is_ip = 1;
        c->addrs[0] = ip;
        ip_str(&ip, c->host, sizeof(c->host));
        if (!ip.v4) { /* keep the brackets in the host as requested */
            char t[INET6_ADDRSTRLEN];
            ip_str(&ip, t, sizeof(t));
            snprintf(c->host, sizeof(c->host), "[%s]", t);
        }
        return NULL;
    }
    if (c->host[0] == '[') {
        c->host[0] = '\0';
        return "invalid IPv6 address in the request target";
    }
    if (host_normalize(c->host) != 0) {
        c->host[0] = '\0';
        return "invalid host name in the request target";
    }
    return NULL;
}

static int is_hop_header(const char *name, size_t n, const char *conn_tokens)
{
    static const char *const hop[] = {"connection", "keep-alive", "te", "trailer",
                                      "upgrade", "host", NULL};
    if (n >= 6 && strncasecmp(name, "proxy-", 6) == 0)
        return 1;
    for (int i = 0; hop[i]; i++)
        if (strlen(hop[i]) == n && strncasecmp(name, hop[i], n) == 0)
            return 1;
    /* headers the client listed in Connection: are hop-by-hop too */
    for (const char *t = conn_tokens; t && *t;) {
        while (*t == ' ' || *t == '\t' || *t == ',')
            t++;
        const char *e = t;
        while (*e && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - t) == n && n && strncasecmp(t, name, n) == 0)
            return 1;
        t = e;
    }
    return 0;
}

/* Parses the head buf[0..hlen) (ending in CRLFCRLF). Fills method/host/port; for
 * absolute-form, builds the origin-form head to send into c->d[0].pre. Returns NULL or the
 * message of a 400. */
static const char *parse_head(struct conn *c, size_t hlen)
{
    char *b = c->buf;
    for (size_t i = 0; i < hlen; i++) {
        if (b[i] == '\0')
            return "NUL byte in the request head";
        if (b[i] == '\r' && (i + 1 >= hlen || b[i + 1] != '\n'))
            return "bare CR in the request head";
        if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r'))
            return "bare LF in the request head";
    }
    char *eol = strstr(b, "\r\n"); /* the head has no NUL: strstr stays inside it */
    size_t rl = (size_t)(eol - b);
    char *sp1 = memchr(b, ' ', rl);
    if (!sp1)
        return "malformed request line";
    char *sp2 = memchr(sp1 + 1, ' ', rl - (size_t)(sp1 + 1 - b));
    if (!sp2)
        return "malformed request line";
    size_t ml = (size_t)(sp1 - b), tl = (size_t)(sp2 - sp1 - 1), vl = (size_t)(eol - sp2 - 1);
    const char *target = sp1 + 1, *ver = sp2 + 1;
    if (ml == 0 || ml >= sizeof(c->method))
        return "malformed request method";
    for (size_t i = 0; i < ml; i++)
        if (!is_tchar(b[i]))
            return "malformed request method";
    if (!(vl == 8 && (memcmp(ver, "HTTP/1.1", 8) == 0 || memcmp(ver, "HTTP/1.0", 8) == 0)))
        return "unsupported HTTP version (HTTP/1.0 or HTTP/1.1 expected)";
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] == 0x7f)
            return "control character or space in the request target";
    if (tl == 0)
        return "empty request target";
    memcpy(c->method, b, ml);
    c->method[ml] = '\0';
    c->parsed = 1;

    if (strcmp(c->method, "CONNECT") == 0) {
        c->is_connect = 1;
        return parse_authority(c, target, tl, 0);
    }
    if (target[0] == '/' || target[0] == '*')
        return "this is an HTTP proxy: send absolute-form requests (GET http://host/path) "
               "or CONNECT host:port";
    if (tl >= 8 && strncasecmp(target, "https://", 8) == 0)
        return "https:// targets must use CONNECT host:443 (the proxy does not originate TLS)";
    if (!(tl > 7 && strncasecmp(target, "http://", 7) == 0))
        return "unsupported request target (http://host/path or CONNECT host:port expected)";
    const char *auth = target + 7;
    size_t al = 0;
    while (7 + al < tl && auth[al] != '/' && auth[al] != '?' && auth[al] != '#')
        al++;
    const char *e = parse_authority(c, auth, al, 80);
    if (e)
        return e;
    const char *path = auth + al;
    size_t pl = tl - 7 - al;
    if (pl && path[0] == '#')
        pl = 0;

    /* headers */
    char *hdrs = eol + 2;
    const char *conn_tokens = NULL;
    char conn_buf[512] = "";
    for (char *l = hdrs; l < b + hlen - 2;) {
        char *le = strstr(l, "\r\n");
        if (l[0] == ' ' || l[0] == '\t')
            return "obsolete header line folding";
        char *colon = memchr(l, ':', (size_t)(le - l));
        if (!colon || colon == l)
            return "malformed header line";
        for (char *q = l; q < colon; q++)
            if (!is_tchar(*q))
                return "malformed header name";
        if (colon - l == 10 && strncasecmp(l, "connection", 10) == 0) {
            size_t vlen = (size_t)(le - colon - 1);
            if (vlen >= sizeof(conn_buf))
                vlen = sizeof(conn_buf) - 1;
            memcpy(conn_buf, colon + 1, vlen);
            conn_buf[vlen] = '\0';
            conn_tokens = conn_buf;
        }
        l = le + 2;
    }

    size_t cap = hlen + 512 + sizeof(c->host) + (c->blen - hlen);
    char *out = malloc(cap);
    if (!out)
        return "out of memory";
    size_t o = 0;
    o += (size_t)snprintf(out + o, cap - o, "%s %s%.*s %.*s\r\nHost: %s", c->method,
                          (pl == 0 || path[0] == '?') ? "/" : "", (int)pl, path, (int)vl, ver,
                          c->host);
    if (c->port != 80)
        o += (size_t)snprintf(out + o, cap - o, ":%u", c->port);
    o += (size_t)snprintf(out + o, cap - o, "\r\n");
    for (char *l = hdrs; l < b + hlen - 2;) {
        char *le = strstr(l, "\r\n");
        char *colon = memchr(l, ':', (size_t)(le - l));
        if (!is_hop_header(l, (size_t)(colon - l), conn_tokens)) {
            memcpy(out + o, l, (size_t)(le - l) + 2);
            o += (size_t)(le - l) + 2;
        }
        l = le + 2;
    }
    o += (size_t)snprintf(out + o, cap - o, "Connection: close\r\n\r\n");
    memcpy(out + o, b + hlen, c->blen - hlen); /* body bytes already read */
    o += c->blen - hlen;
    c->d[0].pre = out;
    c->d[0].prelen = o;
    c->d[0].pre_counts = 1;
    return NULL;
}

/* ---- connecting and relaying -------------------------------------------------------------- */

static void relay_update(struct sbx_proxy *p, struct conn *c)
{
    uint32_t ev[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        struct dir *d = &c->d[i];
        int wants = sbx__pump_wants(&d->p);
        int src = i, dst = 1 - i; /* d[0]: client -> upstream */
        if (d->preoff < d->prelen || wants == SBX_PUMP_WANT_OUT)
            ev[dst] |= EPOLLOUT;
        else if (wants == SBX_PUMP_WANT_IN)
            ev[src] |= EPOLLIN;
    }
    set_interest(p, c, 0, ev[0]);
    set_interest(p, c, 1, ev[1]);
    if (c->d[0].p.done && c->d[1].p.done)
        finish(p, c);
}

/* Moves what can be moved in one direction: the bytes ahead first, then the splice pump. 0,
 * or -1 on a fatal error. */
static int pump(struct dir *d)
{
    while (d->preoff < d->prelen) {
        ssize_t k = send(*d->dst, d->pre + d->preoff, d->prelen - d->preoff,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (k <= 0)
            return -1;
        d->preoff += (size_t)k;
        if (d->pre_counts)
            d->pre_bytes += (uint64_t)k;
    }
    return sbx__pump_run(&d->p, *d->src, *d->dst, PUMP_ROUNDS);
}

static void relay(struct sbx_proxy *p, struct conn *c)
{
    if (pump(&c->d[0]) != 0 || pump(&c->d[1]) != 0) {
        finish(p, c);
        return;
    }
    relay_update(p, c);
}

static void connected(struct sbx_proxy *p, struct conn *c)
{
    for (int i = 0; i < 2; i++) {
        int e = sbx__pump_open(&c->d[i].p, 0);
        if (e < 0) {
            refuse(p, c, 503, "resource_exhausted",
                   "sbx proxy: cannot relay to %s:%u now: %s (try again later)", c->host,
                   c->port, strerror(-e));
            return;
        }
    }
    c->d[0].src = &c->fd[0];
    c->d[0].dst = &c->fd[1];
    c->d[1].src = &c->fd[1];
    c->d[1].dst = &c->fd[0];
    if (c->is_connect) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        c->d[1].pre = strdup(ok);
        if (!c->d[1].pre) {
            finish(p, c);
            return;
        }
        c->d[1].prelen = sizeof(ok) - 1;
        c->status = 200;
    }
    c->state = S_RELAY;
    c->deadline = 0;
    set_interest(p, c, 1, 0);
    relay(p, c);
}

static void connect_next(struct sbx_proxy *p, struct conn *c)
{
    close_side(p, c, 1);
    while (c->ai < c->naddr) {
        const struct ip *ip = &c->addrs[c->ai++];
        struct sockaddr_storage ss;
        socklen_t sl;
        memset(&ss, 0, sizeof(ss));
        if (ip->v4) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)c->port);
            memcpy(&s4->sin_addr, ip->b, 4);
            sl = sizeof(*s4);
        } else {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)c->port);
            memcpy(&s6->sin6_addr, ip->b, 16);
            sl = sizeof(*s6);
        }
        ip_str(ip, c->address, sizeof(c->address));
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            c->last_errno = errno;
            continue;
        }
        c->fd[1] = fd;
        if (connect(fd, (struct sockaddr *)&ss, sl) == 0) {
            connected(p, c);
            return;
        }
        if (errno == EINPROGRESS) {
            /* each remaining address gets a share of what is left, at least 1 s */
            uint64_t now = sbx__now_ns();
            uint64_t left = c->deadline > now ? c->deadline - now : 0;
            uint64_t per = left / (uint64_t)(c->naddr - c->ai + 1);
            if (per < ms_to_ns(1000))
                per = left < ms_to_ns(1000) ? left : ms_to_ns(1000);
            c->state = S_CONNECT;
            c->attempt_deadline = now + per;
            set_interest(p, c, 1, EPOLLOUT);
            return;
        }
        c->last_errno = errno;
        close_side(p, c, 1);
    }
    c->address[0] = '\0';
    refuse(p, c, 502, "connect_failed", "sbx proxy: cannot connect to %s:%u: %s", c->host,
           c->port, c->last_errno == ETIMEDOUT ? "connection timed out"
                                               : strerror(c->last_errno ? c->last_errno : EIO));
}

/* Keeps the addresses a sandbox may reach and starts connecting, or refuses. */
static void addresses_ready(struct sbx_proxy *p, struct conn *c)
{
    int kept = 0;
    char first_bad[INET6_ADDRSTRLEN] = "";
    const char *first_kind = NULL;
    for (int i = 0; i < c->naddr; i++) {
        const struct ip *ip = &c->addrs[i];
        const char *kind = NULL;
        if (!allowed_ip(p, ip)) {
            kind = ip_forbidden_kind(ip);
            if (!kind && ip_is_local(ip))
                kind = "an address of the host itself";
        }
        if (kind) {
            if (!first_kind) {
                first_kind = kind;
                ip_str(ip, first_bad, sizeof(first_bad));
            }
            continue;
        }
        c->addrs[kept++] = *ip;
    }
    c->naddr = kept;
    if (kept == 0) {
        refuse(p, c, 403, "forbidden_address",
               "sbx proxy: %s resolves to %s (%s), which sandboxes may not reach; only an "
               "allow-list entry naming that exact IP allows it",
               c->host, first_bad, first_kind ? first_kind : "?");
        return;
    }
    c->ai = 0;
    c->last_errno = 0;
    c->deadline = sbx__now_ns() + ms_to_ns(p->connect_ms);
    connect_next(p, c);
}

static const struct host_entry *hosts_lookup(const struct sbx_proxy *p, const char *name)
{
    for (size_t i = 0; i < p->nhosts; i++)
        if (strcmp(p->hosts[i].name, name) == 0)
            return &p->hosts[i];
    return NULL;
}

static void handle_request(struct sbx_proxy *p, struct conn *c, size_t hlen)
{
    const char *e = parse_head(c, hlen);
    if (e) {
        refuse(p, c, 400, "bad_request", "sbx proxy: bad request: %s", e);
        return;
    }
    if (c->busy) {
        refuse(p, c, 503, "too_many_connections",
               "sbx proxy: too many connections open through the proxy (limit %u); try again "
               "when some have finished", p->max_conns);
        return;
    }
    int ok = c->host_is_ip ? allowed_ip(p, &c->addrs[0]) : allowed_name(p, c->host);
    if (!ok) {
        char sum[600];
        allow_summary(p, sum, sizeof(sum));
        refuse(p, c, 403, "not_allowed",
               "sbx proxy: %s is not in this session's allow list (allowed: %s)", c->host, sum);
        return;
    }
    if (c->is_connect && c->blen > hlen) { /* bytes sent ahead of the 200 (a TLS hello) */
        c->d[0].prelen = c->blen - hlen;
        c->d[0].pre = malloc(c->d[0].prelen);
        if (!c->d[0].pre) {
            finish(p, c);
            return;
        }
        memcpy(c->d[0].pre, c->buf + hlen, c->d[0].prelen);
        c->d[0].pre_counts = 1;
    }
    free(c->buf);
    c->buf = NULL;
    set_interest(p, c, 0, 0);
    if (c->host_is_ip) {
        c->naddr = 1;
        addresses_ready(p, c);
        return;
    }
    const struct host_entry *h = hosts_lookup(p, c->host);
    if (h) {
        c->addrs[0] = h->ip;
        c->naddr = 1;
        addresses_ready(p, c);
        return;
    }
    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        finish(p, c);
        return;
    }
    snprintf(j->host, sizeof(j->host), "%s", c->host);
    j->c = c;
    c->job = j;
    c->state = S_RESOLVE;
    c->deadline = sbx__now_ns() + ms_to_ns(p->resolve_ms);
    hub_submit(p->hub, j);
}

static void lookup_done(struct sbx_proxy *p, struct job *j)
{
    struct conn *c = j->c;
    c->job = NULL;
    if (j->gai != 0) {
        refuse(p, c, 502, "resolve_failed", "sbx proxy: cannot resolve %s: %s", c->host,
               gai_strerror(j->gai));
    } else {
        c->naddr = j->naddr;
        memcpy(c->addrs, j->addr, sizeof(c->addrs));
        addresses_ready(p, c);
    }
    free(j);
}

static void read_head(struct sbx_proxy *p, struct conn *c)
{
    if (!c->buf) {
        c->buf = malloc(HEAD_MAX + 1);
        if (!c->buf) {
            finish(p, c);
            return;
        }
    }
    for (;;) {
        if (c->blen >= HEAD_MAX) {
            refuse(p, c, 431, "bad_request",
                   "sbx proxy: bad request: the request head exceeds %d bytes", HEAD_MAX);
            return;
        }
        ssize_t k = recv(c->fd[0], c->buf + c->blen, HEAD_MAX - c->blen, MSG_DONTWAIT);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k < 0) {
            finish(p, c);
            return;
        }
        if (k == 0) {
            if (c->blen == 0)
                finish(p, c);
            else
                refuse(p, c, 400, "bad_request",
                       "sbx proxy: bad request: the connection ended inside the request head");
            return;
        }
        size_t from = c->blen > 3 ? c->blen - 3 : 0;
        c->blen += (size_t)k;
        c->buf[c->blen] = '\0';
        for (size_t i = from; i + 4 <= c->blen; i++)
            if (memcmp(c->buf + i, "\r\n\r\n", 4) == 0) {
                handle_request(p, c, i + 4);
                return;
            }
    }
}

/* ---- the engine thread ---------------------------------------------------------------------- */

static void on_event(struct sbx_proxy *p, struct conn *c, int side, uint32_t ev)
{
    switch (c->state) {
    case S_HEAD:
        read_head(p, c);
        break;
    case S_CONNECT:
        if (side == 1) {
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                soerr = errno;
            if (soerr == 0 && !(ev & EPOLLERR)) {
                connected(p, c);
            } else {
                c->last_errno = soerr ? soerr : ECONNREFUSED;
                connect_next(p, c);
            }
        }
        break;
    case S_RELAY:
        relay(p, c);
        break;
    case S_REPLY:
        reply_write(p, c);
        break;
    case S_LINGER:
        linger_read(p, c);
        break;
    default:
        break;
    }
}

static void on_deadline(struct sbx_proxy *p, struct conn *c)
{
    switch (c->state) {
    case S_HEAD:
        refuse(p, c, 408, "head_timeout",
               "sbx proxy: the request head did not arrive within %u ms", p->head_ms);
        break;
    case S_RESOLVE:
        refuse(p, c, 502, "resolve_failed", "sbx proxy: cannot resolve %s: timed out after %u ms",
               c->host, p->resolve_ms);
        break;
    case S_CONNECT:
        c->last_errno = ETIMEDOUT;
        connect_next(p, c);
        break;
    case S_REPLY:
    case S_LINGER:
        finish(p, c);
        break;
    default:
        break;
    }
}

static uint64_t conn_deadline(const struct conn *c)
{
    if (c->state == S_CONNECT)
        return c->attempt_deadline;
    return c->state == S_RELAY ? 0 : c->deadline;
}

static void admit(struct sbx_proxy *p, struct conn *c)
{
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    if (p->nactive < p->max_conns) {
        c->counted = 1;
        p->nactive++;
    } else if (p->nbusy < BUSY_EXTRA) {
        c->busy = 1; /* read its head, then answer 503 */
        p->nbusy++;
    } else {
        c->reason = "too_many_connections";
        c->parsed = 0;
        c->logged = 0;
        log_event(p, c);
        finish(p, c);
        return;
    }
    c->state = S_HEAD;
    c->deadline = c->t0 + ms_to_ns(p->head_ms);
    set_interest(p, c, 0, EPOLLIN);
}

static void *engine_main(void *arg)
{
    struct sbx_proxy *p = arg;
    struct epoll_event evs[64];
    int stop = 0;
    while (!stop) {
        uint64_t now = sbx__now_ns(), next = 0;
        for (struct conn *c = p->conns; c; c = c->next) {
            uint64_t d = conn_deadline(c);
            if (d && (!next || d < next))
                next = d;
        }
        int timeout = -1;
        if (next)
            timeout = next <= now ? 0 : (int)((next - now) / 1000000ull) + 1;
        int n = epoll_wait(p->epfd, evs, 64, timeout);
        for (int i = 0; i < n; i++) {
            struct ep *e = evs[i].data.ptr;
            if (!e) {
                uint64_t v;
                ssize_t r = read(p->hub->wakefd, &v, sizeof(v));
                (void)r;
                pthread_mutex_lock(&p->mu);
                struct conn *in = p->incoming;
                p->incoming = NULL;
                stop = p->stopping;
                pthread_mutex_unlock(&p->mu);
                while (in) {
                    struct conn *nx = in->next;
                    in->next = in->prev = NULL;
                    admit(p, in);
                    in = nx;
                }
                pthread_mutex_lock(&p->hub->mu);
                struct job *done = p->hub->done;
                p->hub->done = NULL;
                pthread_mutex_unlock(&p->hub->mu);
                while (done) {
                    struct job *nx = done->next;
                    if (done->cancelled)
                        free(done);
                    else
                        lookup_done(p, done);
                    done = nx;
                }
                continue;
            }
            if (e->c->state != S_DEAD)
                on_event(p, e->c, e->side, evs[i].events);
        }
        now = sbx__now_ns();
        for (struct conn *c = p->conns, *nx; c; c = nx) {
            nx = c->next;
            uint64_t d = conn_deadline(c);
            if (d && d <= now)
                on_deadline(p, c);
        }
        while (p->graveyard) {
            struct conn *c = p->graveyard;
            p->graveyard = c->next;
            conn_free(c);
        }
    }
    p->stopped = 1;
    while (p->conns)
        finish(p, p->conns);
    while (p->graveyard) {
        struct conn *c = p->graveyard;
        p->graveyard = c->next;
        conn_free(c);
    }
    return NULL;
}

/* ---- the API ------------------------------------------------------------------------------- */

static void config_free(struct sbx_proxy *p)
{
    for (size_t i = 0; i < p->nrules; i++)
        free(p->rules[i].name);
    free(p->rules);
    for (size_t i = 0; i < p->nhosts; i++)
        free(p->hosts[i].name);
    free(p->hosts);
}

static int bad_entry(sbx_error **err, const char *what, const char *entry, const char *why)
{
    int r = sbx_err(err, SBX_EINVAL, 0, "proxy", "invalid %s entry '%s': %s", what, entry, why);
    sbx_err_ctx(err, "entry", "%s", entry);
    return r;
}

static int config_copy(struct sbx_proxy *p, const struct sbx_proxy_config *cfg, sbx_error **err)
{
    size_t na = cfg->allow ? sbx__strv_len(cfg->allow) : 0;
    size_t nh = cfg->hosts ? sbx__strv_len(cfg->hosts) : 0;
    p->rules = calloc(na + 1, sizeof(*p->rules));
    p->hosts = calloc(nh + 1, sizeof(*p->hosts));
    if (!p->rules || !p->hosts)
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "proxy", "out of memory");
    for (size_t i = 0; i < na; i++) {
        const char *s = cfg->allow[i];
        struct rule *r = &p->rules[p->nrules];
        if (ip_parse(s, &r->ip) == 0) {
            r->kind = 2;
            p->nrules++;
            continue;
        }
        int wild = strncmp(s, "*.", 2) == 0;
        char *name = strdup(wild ? s + 1 : s); /* "*.x" is kept as ".x" */
        if (!name)
            return sbx_err(err, SBX_ENOMEM, ENOMEM, "proxy", "out of memory");
        r->name = name;
        r->kind = wild;
        p->nrules++;
        if (host_normalize(name + wild) != 0)
            return bad_entry(err, "allow-list", s,
                             "expected a host name, *.domain or an IP address");
    }
    for (size_t i = 0; i < nh; i++) {
        const char *s = cfg->hosts[i];
        const char *eq = strchr(s, '=');
        struct host_entry *h = &p->hosts[p->nhosts];
        if (!eq)
            return bad_entry(err, "hosts", s, "expected name=ip");
        h->name = strndup(s, (size_t)(eq - s));
        if (!h->name)
            return sbx_err(err, SBX_ENOMEM, ENOMEM, "proxy", "out of memory");
        p->nhosts++;
        if (host_normalize(h->name) != 0)
            return bad_entry(err, "hosts", s, "invalid host name");
        if (ip_parse(eq + 1, &h->ip) != 0)
            return bad_entry(err, "hosts", s, "invalid IP address");
    }
    p->log = cfg->log;
    p->log_arg = cfg->log_arg;
    p->max_conns = cfg->max_conns ? cfg->max_conns : 256;
    p->head_ms = cfg->head_timeout_ms ? cfg->head_timeout_ms : 10000;
    p->resolve_ms = cfg->resolve_timeout_ms ? cfg->resolve_timeout_ms : 10000;
    p->connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 10000;
    return 0;
}

int sbx__proxy_new(const struct sbx_proxy_config *cfg, struct sbx_proxy **out, sbx_error **err)
{
    *out = NULL;
    if (!cfg)
        return sbx_err(err, SBX_EINVAL, 0, "proxy", "no proxy configuration");
    struct sbx_proxy *p = calloc(1, sizeof(*p));
    struct hub *h = calloc(1, sizeof(*h));
    if (!p || !h) {
        free(p);
        free(h);
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "proxy", "out of memory");
    }
    p->epfd = -1;
    h->wakefd = -1;
    int r = config_copy(p, cfg, err);
    if (r != 0)
        goto fail;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    h->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->epfd < 0 || h->wakefd < 0) {
        r = sbx_err(err, SBX_EBACKEND, errno, "proxy", "cannot create the proxy's epoll/eventfd");
        goto fail;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, h->wakefd, &e) != 0) {
        r = sbx_err(err, SBX_EBACKEND, errno, "proxy", "epoll_ctl");
        goto fail;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->refs = 1;
    p->hub = h;
    pthread_mutex_init(&p->mu, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int pr = pthread_create(&p->thread, NULL, engine_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pr != 0) {
        r = sbx_err(err, SBX_EBACKEND, pr, "proxy", "cannot start the proxy thread");
        pthread_mutex_destroy(&p->mu);
        pthread_mutex_lock(&h->mu);
        hub_unref_locked(h);
        h = NULL;
        goto fail;
    }
    *out = p;
    return 0;
fail:
    if (h) {
        if (h->wakefd >= 0)
            close(h->wakefd);
        free(h);
    }
    if (p->epfd >= 0)
        close(p->epfd);
    config_free(p);
    free(p);
    return r;
}

int sbx__proxy_serve(struct sbx_proxy *p, int fd)
{
    if (fd < 0)
        return SBX_EINVAL;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return SBX_ENOMEM;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    c->t0 = sbx__now_ns();
    c->fd[0] = fd;
    c->fd[1] = -1;
    for (int i = 0; i < 2; i++) {
        c->ep[i].c = c;
        c->ep[i].side = i;
        sbx__pump_init(&c->d[i].p);
    }
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        close(fd);
        free(c);
        return SBX_ESTATE;
    }
    c->next = p->incoming;
    p->incoming = c;
    pthread_mutex_unlock(&p->mu);
    wake(p->hub->wakefd);
    return 0;
}

void sbx__proxy_free(struct sbx_proxy *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_mutex_unlock(&p->mu);
    wake(p->hub->wakefd);
    pthread_join(p->thread, NULL);
    /* connections that arrived after the engine's last look */
    while (p->incoming) {
        struct conn *c = p->incoming;
        p->incoming = c->next;
        close(c->fd[0]);
        free(c);
    }
    struct hub *h = p->hub;
    pthread_mutex_lock(&h->mu);
    h->closed = 1;
    while (h->queue) {
        struct job *j = h->queue;
        h->queue = j->next;
        free(j);
    }
    h->queue_tail = NULL;
    while (h->done) {
        struct job *j = h->done;
        h->done = j->next;
        free(j);
    }
    /* Lookups in flight were cancelled with their connections; give them a moment to end so
     * no thread outlives us, then leave the stragglers the hub (they free it). */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (h->nthreads > 0)
        if (pthread_cond_timedwait(&h->cv, &h->mu, &until) == ETIMEDOUT)
            break;
    hub_unref_locked(h);
    close(p->epfd);
    pthread_mutex_destroy(&p->mu);
    config_free(p);
    free(p);
}
