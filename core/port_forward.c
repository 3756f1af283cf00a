/* port_forward.c — exposed ports on the host: listeners and the relay thread.
 *
 * One thread per forwarder waits in epoll on the listeners and on both sockets of every
 * relayed connection. An accepted client is paired with a socket the sandbox's agent
 * connected inside (ops->connect: one round trip, no process started); then each direction
 * is a splice pump (common/splice_pump.h): socket -> pipe -> socket, the bytes never in user
 * space, back-pressure, half-close passed through. The connection is closed once both
 * directions ended (or at the first error). Each wake-up moves a bounded amount per
 * connection, and epoll is level-triggered on what each pump waits for, so one busy
 * connection does not starve the others.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "error_internal.h"
#include "port_forward.h"
#include "splice_pump.h"

#define OP "resolve_exposed_port"
#define MAX_CONNS 1024      /* relayed at once per session; more are reset */
#define PIPE_BYTES (256 << 10)
#define PUMP_ROUNDS 16      /* pipe-fulls per connection and wake-up */

enum item_kind { IT_WAKE, IT_LISTENER, IT_SIDE };

struct item {
    int kind;
};

struct listener {
    struct item it;
    int fd;
    unsigned port, host_port;
};

struct conn;
struct side {
    struct item it;
    int fd;
    struct conn *c;
};

struct conn {
    struct side s[2];      /* 0: the host client, 1: the socket inside the sandbox */
    struct sbx_pump d[2];  /* d[i]: from s[i] to s[1 - i] */
    uint32_t reg[2];       /* epoll events registered for s[i] */
    int dead;
    struct conn *prev, *next;
};

struct sbx_pfwd {
    const struct sbx_backend_ops *ops;
    struct sbx_sandbox *sb;
    int ep, wake;
    struct item wake_it;
    pthread_t thread;
    pthread_mutex_t lock; /* listeners */
    struct listener **ls;
    size_t n_ls;
    struct conn *conns, *dead; /* the thread's own */
    size_t active; /* connections relayed now (at most MAX_CONNS); the thread's own */
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Closes a client with a reset, so it sees the failure at once instead of an empty reply. */
static void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static void conn_close(struct sbx_pfwd *f, struct conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    for (int i = 0; i < 2; i++) {
        /* Out of the epoll set first: close() alone leaves it there while another copy of
         * the socket lives on (a child the embedder forks has one until its execve), and
         * its events would then name this connection after it is freed. */
        if (c->s[i].fd >= 0)
            epoll_ctl(f->ep, EPOLL_CTL_DEL, c->s[i].fd, NULL);
        close_fd(&c->s[i].fd);
        sbx__pump_close(&c->d[i]);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        f->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    /* Freed after the current batch of events, which may still name it. */
    c->next = f->dead;
    f->dead = c;
    f->active--;
}

/* Waits (level-triggered) for what the two pumps wait for. -1 when epoll refused. */
static int conn_interest(struct sbx_pfwd *f, struct conn *c)
{
    uint32_t ev[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        int w = sbx__pump_wants(&c->d[i]);
        if (w == SBX_PUMP_WANT_IN)
            ev[i] |= EPOLLIN;
        else if (w == SBX_PUMP_WANT_OUT)
            ev[1 - i] |= EPOLLOUT;
    }
    for (int i = 0; i < 2; i++) {
        if (ev[i] == c->reg[i])
            continue;
        struct epoll_event e = {.events = ev[i], .data.ptr = &c->s[i]};
        if (epoll_ctl(f->ep, EPOLL_CTL_MOD, c->s[i].fd, &e) < 0)
            return -1;
        c->reg[i] = ev[i];
    }
    return 0;
}

static void conn_pump(struct sbx_pfwd *f, struct conn *c)
{
    if (c->dead)
        return;
    for (int i = 0; i < 2; i++)
        if (sbx__pump_run(&c->d[i], c->s[i].fd, c->s[1 - i].fd, PUMP_ROUNDS) < 0) {
            conn_close(f, c);
            return;
        }
    if ((c->d[0].done && c->d[1].done) || conn_interest(f, c) < 0)
        conn_close(f, c);
}

static void conn_start(struct sbx_pfwd *f, int client, int inside)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        reset_close(client);
        close(inside);
        return;
    }
    int one = 1;
    int fds[2] = {client, inside};
    for (int i = 0; i < 2; i++) {
        c->s[i] = (struct side){.it = {IT_SIDE}, .fd = fds[i], .c = c};
        sbx__pump_init(&c->d[i]);
        /* The relay adds no batching of its own: the senders did theirs. */
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->next = f->conns;
    if (f->conns)
        f->conns->prev = c;
    f->conns = c;
    f->active++;
    int ok = sbx__pump_open(&c->d[0], PIPE_BYTES) == 0 &&
             sbx__pump_open(&c->d[1], PIPE_BYTES) == 0;
    for (int i = 0; ok && i < 2; i++) {
        struct epoll_event ev = {.events = 0, .data.ptr = &c->s[i]};
        ok = epoll_ctl(f->ep, EPOLL_CTL_ADD, fds[i], &ev) == 0;
    }
    if (!ok) {
        conn_close(f, c);
        return;
    }
    conn_pump(f, c);
}

static void accept_all(struct sbx_pfwd *f, struct listener *l)
{
    for (;;) {
        int client = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: the client waits in the backlog; do not spin. */
                nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
            }
            return;
        }
        int inside = -1, e = 0;
        sbx_error *err = NULL;
        if (f->active >= MAX_CONNS ||
            f->ops->connect(f->sb, l->port, &inside, &e, &err) < 0 || inside < 0) {
            sbx_error_free(err);
            reset_close(client);
            continue;
        }
        conn_start(f, client, inside);
    }
}

static void free_dead(struct sbx_pfwd *f)
{
    while (f->dead) {
        struct conn *c = f->dead;
        f->dead = c->next;
        free(c);
    }
}

static void *loop(void *arg)
{
    struct sbx_pfwd *f = arg;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(f->ep, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        for (int i = 0; i < n; i++) {
            struct item *it = evs[i].data.ptr;
            if (it->kind == IT_WAKE)
                return NULL;
            if (it->kind == IT_LISTENER)
                accept_all(f, (struct listener *)it);
            else
                conn_pump(f, ((struct side *)it)->c);
        }
        free_dead(f);
    }
}

int sbx__pfwd_new(const struct sbx_backend_ops *ops, struct sbx_sandbox *sb,
                  struct sbx_pfwd **out, sbx_error **err)
{
    struct sbx_pfwd *f = calloc(1, sizeof(*f));
    if (!f)
        return sbx_err(err, SBX_ENOMEM, ENOMEM, OP, "out of memory");
    f->ops = ops;
    f->sb = sb;
    f->wake_it.kind = IT_WAKE;
    f->ep = epoll_create1(EPOLL_CLOEXEC);
    f->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &f->wake_it};
    if (f->ep < 0 || f->wake < 0 || epoll_ctl(f->ep, EPOLL_CTL_ADD, f->wake, &ev) < 0) {
        int e = errno;
        close_fd(&f->ep);
        close_fd(&f->wake);
        free(f);
        return sbx_err(err, SBX_EBACKEND, e, OP, "epoll");
    }
    pthread_mutex_init(&f->lock, NULL);
    /* The relay thread takes no signals: the embedder's handlers never run on it, and a
     * splice() to a socket whose peer went away fails with EPIPE instead of killing the
     * process with SIGPIPE (it is left pending on this thread, which never unblocks it). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&f->thread, NULL, loop, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        close_fd(&f->ep);
        close_fd(&f->wake);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return sbx_err(err, SBX_EBACKEND, r, OP, "pthread_create");
    }
    *out = f;
    return 0;
}

static int open_listener(struct listener *l, sbx_error **err)
{
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(l->fd, SOMAXCONN) < 0 || getsockname(l->fd, (struct sockaddr *)&a, &len) < 0) {
        int e = errno;
        close_fd(&l->fd);
        return sbx_err(err, SBX_EBACKEND, e, OP, "cannot listen on 127.0.0.1 for port %u",
                       l->port);
    }
    l->host_port = ntohs(a.sin_port);
    return 0;
}

int sbx__pfwd_listen(struct sbx_pfwd *f, unsigned port, unsigned *host_port, sbx_error **err)
{
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->n_ls; i++)
        if (f->ls[i]->port == port) {
            *host_port = f->ls[i]->host_port;
            pthread_mutex_unlock(&f->lock);
            return 0;
        }
    int r;
    struct listener *l = calloc(1, sizeof(*l));
    struct listener **ls = l ? realloc(f->ls, (f->n_ls + 1) * sizeof(*ls)) : NULL;
    if (!ls) {
        free(l);
        r = sbx_err(err, SBX_ENOMEM, ENOMEM, OP, "out of memory");
        goto out;
    }
    f->ls = ls;
    l->it.kind = IT_LISTENER;
    l->port = port;
    if ((r = open_listener(l, err)) < 0) {
        free(l);
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    if (epoll_ctl(f->ep, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
        r = sbx_err(err, SBX_EBACKEND, errno, OP, "epoll_ctl");
        close(l->fd);
        free(l);
        goto out;
    }
    f->ls[f->n_ls++] = l;
    *host_port = l->host_port;
out:
    pthread_mutex_unlock(&f->lock);
    return r;
}

void sbx__pfwd_free(struct sbx_pfwd *f)
{
    if (!f)
        return;
    uint64_t one = 1;
    (void)!write(f->wake, &one, sizeof(one));
    pthread_join(f->thread, NULL);
    while (f->conns)
        conn_close(f, f->conns);
    free_dead(f);
    for (size_t i = 0; i < f->n_ls; i++) {
        close(f->ls[i]->fd);
        free(f->ls[i]);
    }
    free(f->ls);
    close(f->ep);
    close(f->wake);
    pthread_mutex_destroy(&f->lock);
    free(f);
}
