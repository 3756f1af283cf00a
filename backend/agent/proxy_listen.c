/* proxy_listen.c — the sandbox end of the "proxy" network mode.
 *
 * A worker listens on the sandbox's loopback (127.0.0.1:<port>, the address HTTP_PROXY names
 * inside) and passes every accepted connection to the host over its operation channel
 * (PROXY_CONN, the socket as SCM_RIGHTS); the host's proxy engine speaks HTTP with it and
 * decides where, if anywhere, it may go. The sandbox itself still has no interface but lo:
 * the proxy is its only way out. The worker ends when the host closes the channel (the
 * process that served the proxy went away), so another process can take the port over.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

static void reply(int chan, int e)
{
    struct sbx_wbuf b = {0};
    sbx__wbuf_u32(&b, (uint32_t)e);
    if (!b.failed)
        sbx__wire_send(chan, SBX_MSG_PROXY_READY, b.data, b.len, NULL, 0);
    sbx__wbuf_free(&b);
}

void sbx_agent_serve_proxy(int chan, const unsigned char *p, size_t len)
{
    struct sbx_rbuf rb = {.data = p, .len = len};
    uint32_t port = sbx__rbuf_u32(&rb);
    if (rb.bad || port < 1 || port > 65535) {
        reply(chan, EINVAL);
        return;
    }
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (l >= 0)
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 128) < 0) {
        reply(chan, errno);
        return;
    }
    reply(chan, 0);
    for (;;) {
        struct pollfd pf[2] = {{.fd = l, .events = POLLIN}, {.fd = chan, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (pf[1].revents)
            return; /* the host closed the channel (it sends nothing on it) */
        int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        int r = sbx__wire_send(chan, SBX_MSG_PROXY_CONN, NULL, 0, &c, 1);
        close(c);
        if (r < 0)
            return;
    }
}
