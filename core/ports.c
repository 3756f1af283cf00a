/* ports.c — exposed ports (spec SESSION.md §14): resolve_exposed_port and url_for.
 *
 * The session's forwarder (port_forward.c) is made by the first resolve and lives until
 * shutdown, or until this process lets go of the sandbox (free of an attached handle,
 * disown): the listeners belong to the process that resolved them.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"
#include "error_internal.h"
#include "events_internal.h"
#include "port_forward.h"
#include "state.h"

#define OP "resolve_exposed_port"

void sbx__ports_stop(sbx_session *s)
{
    struct sbx_session_ports *p = sbx__session_ports(s);
    pthread_mutex_lock(&p->lock);
    struct sbx_pfwd *f = p->fwd;
    p->fwd = NULL;
    pthread_mutex_unlock(&p->lock);
    sbx__pfwd_free(f);
}

/* "[8765, 9000]", the configured ports for an error's context. */
static void ports_text(const uint16_t *ports, size_t n, char *buf, size_t cap)
{
    size_t off = (size_t)snprintf(buf, cap, "[");
    for (size_t i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%u", i ? ", " : "", ports[i]);
    if (off < cap)
        snprintf(buf + off, cap - off, "]");
}

static int unavailable(sbx_error **err, unsigned port, const char *reason, const char *detail,
                       const char *configured)
{
    int r;
    if (strcmp(reason, "not_configured") == 0)
        r = sbx_err(err, SBX_EEXPOSED_PORT_UNAVAILABLE, 0, OP,
                    "port %u is not configured for host exposure", port);
    else
        r = sbx_err(err, SBX_EEXPOSED_PORT_UNAVAILABLE, 0, OP,
                    "port %u could not be resolved for host exposure", port);
    sbx_err_ctx(err, "port", "%u", port);
    sbx_err_ctx(err, "exposed_ports", "%s", configured);
    sbx_err_ctx(err, "reason", "%s", reason);
    if (strcmp(reason, "not_configured") == 0)
        sbx_err_ctx(err, "retryable", "false");
    else
        sbx_err_ctx(err, "backend", "namespaces");
    if (detail)
        sbx_err_ctx(err, "detail", "%s", detail);
    return r;
}

int sbx__session_resolve_port_raw(sbx_session *s, unsigned port, sbx_endpoint *out,
                                  sbx_error **err)
{
    if (!s || !out)
        return sbx_err(err, SBX_EINVAL, 0, OP, "session and endpoint are required");
    memset(out, 0, sizeof(*out));
    struct sbx_session_life *l = sbx__session_life(s);
    char configured[512];
    int listed = 0;
    pthread_mutex_lock(&l->lock);
    ports_text(l->st->ports, l->st->n_ports, configured, sizeof(configured));
    for (size_t i = 0; i < l->st->n_ports; i++)
        listed |= l->st->ports[i] == port;
    pthread_mutex_unlock(&l->lock);
    if (!listed)
        return unavailable(err, port, "not_configured", NULL, configured);

    const struct sbx_backend_ops *ops;
    sbx_error *e = NULL;
    struct sbx_sandbox *sb = sbx__session_acquire(s, &ops, OP, &e);
    if (!sb) {
        sbx_error_free(e);
        return unavailable(err, port, "backend_unavailable", "not_running", configured);
    }
    struct sbx_session_ports *p = sbx__session_ports(s);
    unsigned host_port = 0;
    int r = 0;
    pthread_mutex_lock(&p->lock);
    if (!ops->connect)
        r = -1;
    else if (!p->fwd)
        r = sbx__pfwd_new(ops, sb, &p->fwd, &e);
    if (r == 0)
        r = sbx__pfwd_listen(p->fwd, port, &host_port, &e);
    pthread_mutex_unlock(&p->lock);
    sbx__session_release(s);
    if (r < 0) {
        char detail[300];
        snprintf(detail, sizeof(detail), "%s", e ? sbx_error_message(e) : "no port forwarding");
        sbx_error_free(e);
        return unavailable(err, port, "backend_unavailable", detail, configured);
    }
    snprintf(out->host, sizeof(out->host), "127.0.0.1");
    out->port = host_port;
    return 0;
}

/* EVENTS.md §3: server.address only for a loopback host. */
static int loopback_host(const char *h)
{
    while (isspace((unsigned char)*h))
        h++;
    size_t n = strlen(h);
    while (n > 0 && isspace((unsigned char)h[n - 1]))
        n--;
    char buf[256];
    if (n >= sizeof(buf))
        return 0;
    memcpy(buf, h, n);
    buf[n] = '\0';
    if (strcasecmp(buf, "localhost") == 0)
        return 1;
    unsigned char a[16];
    if (inet_pton(AF_INET, buf, a) == 1)
        return a[0] == 127;
    return inet_pton(AF_INET6, buf, a) == 1 &&
           memcmp(a, (unsigned char[16]){[15] = 1}, 16) == 0;
}

int sbx_session_resolve_exposed_port(sbx_session *s, unsigned port, sbx_endpoint *out,
                                     sbx_error **err)
{
    struct sbx__ev_bind *b = s ? *sbx__session_ev(s) : NULL;
    if (!sbx__ev_live(b))
        return sbx__session_resolve_port_raw(s, port, out, err);
    struct sbx__ev_call c;
    sbx_error *e = NULL;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "port", json_object_new_int((int)port));
    int r = sbx__ev_begin(b, &c, OP, d, &e);
    if (r < 0) {
        sbx__ev_abort(&c);
    } else {
        r = sbx__session_resolve_port_raw(s, port, out, &e);
        json_object *fin = NULL;
        if (r == 0) {
            /* Replaces the start data. */
            fin = json_object_new_object();
            if (loopback_host(out->host))
                json_object_object_add(fin, "server.address",
                                       json_object_new_string(out->host));
            json_object_object_add(fin, "server.port", json_object_new_int((int)out->port));
        }
        r = sbx__ev_end(b, &c, r, &e, fin, 0, 1, NULL);
    }
    if (err)
        *err = r < 0 ? e : NULL;
    if (!err || r == 0)
        sbx_error_free(e);
    return r;
}

int sbx_endpoint_url(const sbx_endpoint *e, const char *scheme, char **out, sbx_error **err)
{
    if (!e || !scheme || !out)
        return sbx_err(err, SBX_EINVAL, 0, "url_for", "endpoint, scheme and out are required");
    *out = NULL;
    int ws;
    if (strcasecmp(scheme, "http") == 0)
        ws = 0;
    else if (strcasecmp(scheme, "ws") == 0)
        ws = 1;
    else
        return sbx_err(err, SBX_EINVAL, 0, "url_for", "scheme must be either 'http' or 'ws'");
    const char *sch = e->tls ? (ws ? "wss" : "https") : (ws ? "ws" : "http");
    int bracket = strchr(e->host, ':') && e->host[0] != '[';
    char port[16] = "";
    if (e->port != (e->tls ? 443u : 80u))
        snprintf(port, sizeof(port), ":%u", e->port);
    const char *q = e->query[0] == '?' ? e->query + 1 : e->query;
    int n = asprintf(out, "%s://%s%s%s%s/%s%s", sch, bracket ? "[" : "", e->host,
                     bracket ? "]" : "", port, q[0] ? "?" : "", q);
    if (n < 0) {
        *out = NULL;
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "url_for", "out of memory");
    }
    return 0;
}
