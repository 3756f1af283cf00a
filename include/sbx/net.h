/* sbx/net.h — reaching a session's network: exposed ports.
 *
 * A session lists TCP ports (sbx_session_opts.exposed_ports) that the host may reach. The
 * first sbx_session_resolve_exposed_port() of a port opens a listener on the host's loopback
 * (127.0.0.1, an ephemeral port) and returns it: each connection to it is carried to the
 * port on the sandbox's own loopback (127.0.0.1, else ::1) by the sandbox's agent, which
 * hands the connected socket to the host; the bytes move by splice(), without copies through
 * user space. No veth, route or privilege is needed, and the sandbox keeps no way out.
 *
 * A connection to a listed port where nothing listens inside is reset (the client sees
 * ECONNRESET or an immediate EOF); the listener stays. Listeners close at shutdown, and when
 * the process that resolved them frees or disowns its handle.
 */
#ifndef SBX_NET_H
#define SBX_NET_H

#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sbx_session sbx_session;

/* What a session's network reaches (sbx_session_opts.net_mode). */
enum sbx_net_mode {
    /* Default: a network namespace with only lo, up. Nothing outside is reachable. */
    SBX_NET_NONE = 0,
    /* Still only lo, plus an HTTP/HTTPS forward proxy at 127.0.0.1:SBX_NET_PROXY_PORT inside
     * (HTTP_PROXY, HTTPS_PROXY, http_proxy, https_proxy and NO_PROXY are set for commands).
     * Its connections are carried to the host, where the session's allow list (net_allow)
     * decides, host names are resolved, and each request is an audit event
     * ("proxy_request"). A program that ignores the variables still has no route anywhere.
     * docs/network.md. */
    SBX_NET_PROXY = 1,
    /* Root only: a veth pair, "eth0" inside with an address from net_range and a default
     * route via the host end ("sbx<id8>h"). Real routing; sbx adds no NAT or firewall rule
     * (docs/network-veth.md gives the two a user would add). The pair goes with the sandbox. */
    SBX_NET_VETH = 2,
};
#define SBX_NET_PROXY_PORT 3128u

/* Starts this process's host side of a running session's network: the egress proxy of
 * SBX_NET_PROXY (a no-op for the other modes: a veth pair is made by start() and stays with
 * the sandbox). start() does it for the process that starts the session; a process that
 * attached to a session whose starter has gone away (sbx_session_disown) calls it to take
 * the proxy over. Errors: SBX_ESTATE (not running, or another process serves the proxy),
 * SBX_EINVAL (a bad net_allow or net_hosts entry, context "entry"). A no-op for
 * SBX_NET_NONE. Thread safety: owner thread. */
SBX_API int sbx_session_serve_network(sbx_session *s, sbx_error **err);

/* Where a host client connects (spec ExposedPortEndpoint). */
typedef struct sbx_endpoint {
    char host[256]; /* "127.0.0.1" for sbx's own listeners */
    unsigned port;
    int tls;
    char query[256]; /* appended to URLs ("" for none; one leading '?' is dropped) */
} sbx_endpoint;

/* The host endpoint that reaches `port` inside. Errors: SBX_EEXPOSED_PORT_UNAVAILABLE with
 * context port, exposed_ports and reason: "not_configured" (the port is not in the session's
 * exposed_ports; message "port <p> is not configured for host exposure", not retryable) or
 * "backend_unavailable" (the session is not running, or no listener could be made; message
 * "port <p> could not be resolved for host exposure", context detail). Emits the
 * resolve_exposed_port events. Thread safety: concurrent on one session. */
SBX_API int sbx_session_resolve_exposed_port(sbx_session *s, unsigned port, sbx_endpoint *out,
                                             sbx_error **err);

/* The endpoint's URL for `scheme` "http" or "ws" (case-insensitive; "https"/"wss" when tls),
 * malloc'd in *out: the port left out when it is the scheme's default (443 with TLS, 80
 * without), an IPv6 host bracketed, always ending in '/', then "?query" when there is one.
 * Errors: SBX_EINVAL "scheme must be either 'http' or 'ws'". */
SBX_API int sbx_endpoint_url(const sbx_endpoint *e, const char *scheme, char **out,
                             sbx_error **err);

#ifdef __cplusplus
}
#endif

#endif
