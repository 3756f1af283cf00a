/* ns_net.c — this process's host side of a sandbox's network (net_serve): the egress proxy.
 *
 * An operation channel carries PROXY_LISTEN to a worker of the agent, which listens on the
 * sandbox's 127.0.0.1:<port> and sends back each connection it accepts (PROXY_CONN, as an
 * fd). A thread here hands them to the proxy engine (net_proxy.c). Closing the channel ends
 * the worker and frees the port inside, so another process attached to the sandbox can
 * serve it next (sbx create's forwarder does, once create has exited).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net_proxy.h"
#include "net_veth.h"
#include "ns.h"
#include <sbx/net.h>
#include "wire.h"

#define OP "start"

struct sbx_ns_net {
    struct sbx_proxy *proxy;
    int chan;
    pthread_t thread;
};

static void *pass_conns(void *arg)
{
    struct sbx_ns_net *n = arg;
    for (;;) {
        struct sbx_wire_hdr h;
        unsigned char *p = NULL;
        int fd = -1;
        size_t n_fds = 0;
        int r = sbx__wire_recv(n->chan, &h, &p, &fd, 1, &n_fds);
        free(p);
        if (r == -EAGAIN || r == -EINTR)
            continue;
        if (r < 0)
            return NULL; /* the channel was shut (stop) or the sandbox is gone */
        if (h.type == SBX_MSG_PROXY_CONN && n_fds == 1)
            sbx__proxy_serve(n->proxy, fd); /* owns fd, also on failure */
        else if (n_fds)
            close(fd);
    }
}

/* Opens a channel with a PROXY_LISTEN worker on it; the worker's errno (0: listening). */
static int listen_inside(struct sbx_sandbox *sb, unsigned port, int *chan)
{
    int r = *chan = sbx__ns_open_channel(sb);
    struct sbx_wbuf b = {0};
    sbx__wbuf_u32(&b, port);
    if (r >= 0)
        r = b.failed ? -ENOMEM : sbx__wire_send(*chan, SBX_MSG_PROXY_LISTEN, b.data, b.len, NULL, 0);
    sbx__wbuf_free(&b);
    struct sbx_wire_hdr h = {0};
    unsigned char *p = NULL;
    size_t n_fds = 0;
    if (r >= 0)
        r = sbx__wire_recv(*chan, &h, &p, NULL, 0, &n_fds);
    struct sbx_rbuf rb = {.data = p, .len = h.len};
    int e = r < 0 ? -r : h.type != SBX_MSG_PROXY_READY ? EBADMSG : (int)sbx__rbuf_u32(&rb);
    free(p);
    return e == 0 && rb.bad ? EBADMSG : e;
}

void sbx__ns_net_stop(struct sbx_sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    struct sbx_ns_net *n = sb->net;
    sb->net = NULL;
    pthread_mutex_unlock(&sb->lock);
    if (!n)
        return;
    shutdown(n->chan, SHUT_RDWR); /* wakes the thread; the worker inside sees EOF */
    pthread_join(n->thread, NULL);
    close(n->chan);
    sbx__proxy_free(n->proxy);
    free(n);
}

/* veth: the pair, made once by the process that starts the sandbox. */
static int serve_veth(struct sbx_sandbox *sb, const struct sbx_backend_net *c, sbx_error **err)
{
    if (sb->veth)
        return 0; /* made already */
    struct sbx_veth *v = calloc(1, sizeof(*v));
    if (!v)
        return sbx_err(err, SBX_ENOMEM, ENOMEM, OP, "out of memory");
    int r = sbx__veth_setup(sb->pid, sb->id, c->range, v, err);
    if (r < 0) {
        free(v);
        return r;
    }
    pthread_mutex_lock(&sb->lock);
    sb->veth = v;
    pthread_mutex_unlock(&sb->lock);
    return 0;
}

void sbx__ns_veth_stop(struct sbx_sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    struct sbx_veth *v = sb->veth;
    sb->veth = NULL;
    pthread_mutex_unlock(&sb->lock);
    if (v) {
        sbx__veth_teardown(v);
        free(v);
    }
}

int sbx__ns_net_check(const struct sbx_backend_net *c, sbx_error **err)
{
    return c->mode == SBX_NET_VETH && c->range ? sbx__veth_check_range(c->range, err) : 0;
}

int sbx__ns_net_serve(struct sbx_sandbox *sb, const struct sbx_backend_net *c, sbx_error **err)
{
    if (c->mode == SBX_NET_VETH)
        return serve_veth(sb, c, err);
    if (c->mode != SBX_NET_PROXY)
        return 0;
    pthread_mutex_lock(&sb->lock);
    int serving = sb->net != NULL;
    pthread_mutex_unlock(&sb->lock);
    if (serving)
        return 0; /* this process serves it already */
    struct sbx_proxy_config pc = {.allow = c->allow, .hosts = c->hosts, .log = c->log,
                                  .log_arg = c->log_arg};
    struct sbx_ns_net *n = calloc(1, sizeof(*n));
    if (!n)
        return sbx_err(err, SBX_ENOMEM, ENOMEM, OP, "out of memory");
    n->chan = -1;
    int r = sbx__proxy_new(&pc, &n->proxy, err);
    if (r < 0) {
        free(n);
        return r;
    }
    /* A process that served the proxy before (the creator of a session, say) lets go of the
     * port inside as its worker sees its channel close: a moment later. */
    int e = EADDRINUSE;
    for (int attempt = 0; attempt < 100 && e == EADDRINUSE; attempt++) {
        if (attempt) {
            close(n->chan);
            nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
        }
        e = listen_inside(sb, c->proxy_port, &n->chan);
    }
    if (e == 0) {
        /* The thread takes no signals (the embedder's handlers never run on it). */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        e = pthread_create(&n->thread, NULL, pass_conns, n);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (e != 0) {
        if (n->chan >= 0)
            close(n->chan);
        sbx__proxy_free(n->proxy);
        free(n);
        if (e == EADDRINUSE) {
            r = sbx_err(err, SBX_ESTATE, e, OP,
                        "the egress proxy of this sandbox is served by another process (its "
                        "port %u inside is taken)",
                        c->proxy_port);
        } else {
            r = sbx_err(err, SBX_EBACKEND, e, OP,
                        "cannot start the egress proxy on port %u inside", c->proxy_port);
        }
        sbx_err_ctx(err, "port", "%u", c->proxy_port);
        return r;
    }
    pthread_mutex_lock(&sb->lock);
    sb->net = n;
    pthread_mutex_unlock(&sb->lock);
    return 0;
}
