/* net_proxy.h — the host side of the "proxy" network mode: an HTTP forward proxy engine.
 *
 * Each connection handed to sbx__proxy_serve() is a stream socket whose peer (a program in
 * the sandbox) speaks HTTP proxy protocol. The engine reads one request head, checks the
 * host against the session's allow list, resolves it on the host, refuses destinations that
 * would reach the host itself (loopback, link-local incl. cloud metadata, ...), connects,
 * and then moves bytes both ways with splice(): CONNECT tunnels are opaque, absolute-form
 * requests (GET http://host/...) are forwarded once in origin-form with Connection: close.
 * Every request ends in exactly one event given to the log callback. See
 * docs/network-proxy.md.
 *
 * Threads: one engine thread (epoll) serves all connections; host name lookups run on a small
 * pool of short-lived resolver threads (at most 8), each lookup bounded by a deadline. All
 * threads block every signal. sbx__proxy_serve() may be called from any thread, concurrently
 * with itself; sbx__proxy_free() from one thread, once, after the last serve() returned.
 *
 * Resources: a relayed connection holds 6 fds (2 sockets, 2 pipes). */
#ifndef SBX_BACKEND_NET_PROXY_H
#define SBX_BACKEND_NET_PROXY_H

#include <stdint.h>

#include <sbx/error.h>

#include "backend_ops.h"

/* struct sbx_proxy_event (one per request, to the log callback) is in backend_ops.h: core
 * turns it into an audit event. */

struct sbx_proxy_config {
    /* NULL-terminated patterns: "example.com" (exact, case-insensitive, trailing dot
     * ignored), "*.example.com" (any subdomain at any depth, not the apex), or an IP literal
     * ("10.0.0.5", "2001:db8::1" or "[2001:db8::1]"), which allows requests naming that
     * address and also lets a host name resolve to it even if it is a forbidden address.
     * NULL or empty: nothing is allowed. */
    const char *const *allow;
    /* NULL-terminated "name=ip" overrides consulted before DNS (like /etc/hosts for this
     * session); may be NULL. The allow list is still checked on the name. */
    const char *const *hosts;
    /* Called on the engine thread when a request ends; may be NULL. Must not call back into
     * the proxy (serve is fine, free is not). */
    void (*log)(void *arg, const struct sbx_proxy_event *ev);
    void *log_arg;
    unsigned max_conns;          /* connections served at once; 0: 256. Beyond it: 503 */
    unsigned head_timeout_ms;    /* to receive the whole request head; 0: 10000 */
    unsigned resolve_timeout_ms; /* host name lookup; 0: 10000 */
    unsigned connect_timeout_ms; /* to connect to the destination; 0: 10000 */
};

struct sbx_proxy;

/* Copies the configuration (the caller's strings may go away) and starts the engine thread.
 * Errors: SBX_EINVAL naming the bad allow-list or hosts entry (context "entry"), SBX_ENOMEM,
 * SBX_EBACKEND when a thread or an fd cannot be created. */
int sbx__proxy_new(const struct sbx_proxy_config *c, struct sbx_proxy **out, sbx_error **err);

/* Takes ownership of fd, a connected stream socket (TCP or AF_UNIX) whose peer speaks HTTP
 * proxy protocol; it is made non-blocking and close-on-exec. Never blocks for long (queues
 * the fd for the engine thread). 0, or SBX_ESTATE after free began, SBX_EINVAL for fd < 0,
 * SBX_ENOMEM; on error fd is closed. Any thread. */
int sbx__proxy_serve(struct sbx_proxy *p, int fd);

/* Closes every connection (each open request is logged as it ends), stops and joins the
 * engine thread, waits (bounded) for lookups in flight, frees. NULL is a no-op. */
void sbx__proxy_free(struct sbx_proxy *p);

#endif
