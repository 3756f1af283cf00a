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
