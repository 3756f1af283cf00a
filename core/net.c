/* net.c — a session's network mode (sbx/net.h): the options, the proxy variables commands
 * see, starting the host side with the sandbox, and one audit event per proxy request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "error_internal.h"
#include "events_internal.h"
#include "util.h"

int sbx__net_init(sbx_session *s, const sbx_session_opts *o, sbx_error **err)
{
    struct sbx_session_net *n = sbx__session_net(s);
    if (o->net_mode != SBX_NET_NONE && o->net_mode != SBX_NET_PROXY &&
        o->net_mode != SBX_NET_VETH)
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "net_mode %d is not a network mode (none 0, proxy 1, veth 2)",
                       o->net_mode);
    n->mode = o->net_mode;
    if (n->mode != SBX_NET_PROXY && (o->net_allow || o->net_hosts))
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "net_allow and net_hosts need net_mode SBX_NET_PROXY");
    if (n->mode != SBX_NET_VETH && o->net_range)
        return sbx_err(err, SBX_EINVAL, 0, "create", "net_range needs net_mode SBX_NET_VETH");
    if (n->mode == SBX_NET_VETH) {
        struct sbx_backend_net bn = {.mode = n->mode, .range = o->net_range};
        int r = sbx__ns_backend_ops.net_check(&bn, err);
        if (r < 0)
            return r;
        if (o->net_range && !(n->range = strdup(o->net_range)))
            return sbx_err(err, SBX_ENOMEM, ENOMEM, "create", "out of memory");
        return 0;
    }
    if (n->mode != SBX_NET_PROXY)
        return 0;
    static const char *const empty[] = {NULL};
    n->allow = sbx__strv_dup(o->net_allow ? o->net_allow : empty);
    n->hosts = sbx__strv_dup(o->net_hosts ? o->net_hosts : empty);
    char **env = calloc(6, sizeof(*env));
    if (!n->allow || !n->hosts || !env) {
        free(env);
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "create", "out of memory");
    }
    const char *names[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"};
    int bad = 0;
    for (size_t i = 0; i < 4; i++)
        bad |= asprintf(&env[i], "%s=http://127.0.0.1:%u", names[i], SBX_NET_PROXY_PORT) < 0;
    bad |= !(env[4] = strdup("NO_PROXY=localhost,127.0.0.1,::1"));
    if (bad || sbx__session_prepend_env(s, env) < 0) {
        sbx__strv_free(env);
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "create", "out of memory");
    }
    return 0;
}

void sbx__net_clear(struct sbx_session_net *n)
{
    sbx__strv_free(n->allow);
    sbx__strv_free(n->hosts);
    free(n->range);
    n->allow = n->hosts = NULL;
    n->range = NULL;
}

/* One proxy request as a pair of events: start with what was asked, finish with what
 * happened (ok = relayed). Runs on the proxy engine's thread. */
static void log_request(void *arg, const struct sbx_proxy_event *pe)
{
    sbx_session *s = arg;
    struct sbx__ev_bind *b = *sbx__session_ev(s);
    if (!sbx__ev_live(b))
        return;
    json_object *d = json_object_new_object();
    json_object_object_add(d, "method", pe->method ? json_object_new_string(pe->method) : NULL);
    json_object_object_add(d, "host", pe->host ? json_object_new_string(pe->host) : NULL);
    json_object_object_add(d, "port", json_object_new_int((int)pe->port));
    struct sbx__ev_call c;
    if (sbx__ev_begin(b, &c, "proxy_request", d, NULL) < 0) {
        sbx__ev_abort(&c);
        return;
    }
    json_object *f = json_object_new_object();
    json_object_object_add(f, "allowed", json_object_new_boolean(pe->allowed));
    json_object_object_add(f, "address",
                           pe->address ? json_object_new_string(pe->address) : NULL);
    if (pe->reason)
        json_object_object_add(f, "reason", json_object_new_string(pe->reason));
    if (pe->message)
        json_object_object_add(f, "message", json_object_new_string(pe->message));
    if (pe->status)
        json_object_object_add(f, "status", json_object_new_int(pe->status));
    json_object_object_add(f, "bytes_up", json_object_new_int64((int64_t)pe->bytes_up));
    json_object_object_add(f, "bytes_down", json_object_new_int64((int64_t)pe->bytes_down));
    json_object_object_add(f, "request_ms", json_object_new_double(pe->duration_ms));
    sbx__ev_end(b, &c, 0, NULL, f, 1, pe->allowed, NULL);
}

int sbx__net_start(sbx_session *s, const struct sbx_backend_ops *ops, struct sbx_sandbox *sb,
                   int starting, sbx_error **err)
{
    struct sbx_session_net *n = sbx__session_net(s);
    /* A veth pair is made once, with the sandbox, and goes with it. */
    if (n->mode == SBX_NET_NONE || (n->mode == SBX_NET_VETH && !starting))
        return 0;
    if (!ops->net_serve)
        return sbx_err(err, SBX_ENOSYS, 0, "start", "this backend has no network modes");
    struct sbx_backend_net bn = {.mode = n->mode,
                                 .range = n->range,
                                 .proxy_port = SBX_NET_PROXY_PORT,
                                 .allow = (const char *const *)n->allow,
                                 .hosts = (const char *const *)n->hosts,
                                 .log = log_request,
                                 .log_arg = s};
    return ops->net_serve(sb, &bn, err);
}

int sbx_session_serve_network(sbx_session *s, sbx_error **err)
{
    const struct sbx_backend_ops *ops;
    struct sbx_sandbox *sb = sbx__session_acquire(s, &ops, "serve_network", err);
    if (!sb)
        return err && *err ? sbx_error_code(*err) : SBX_ESTATE;
    int r = sbx__net_start(s, ops, sb, 0, err);
    sbx__session_release(s);
    return r;
}
