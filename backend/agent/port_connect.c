/* port_connect.c — a TCP connection to a port on the sandbox's own loopback, for an exposed
 * port: the host accepted a client on its listener and asks for the other end.
 *
 * The agent makes the socket itself, in the sandbox's network namespace, and hands it to the
 * host, which moves the bytes. No worker is forked: a non-blocking connect to loopback does
 * the whole handshake inside connect() (the peer's SYN-ACK is processed before it returns),
 * so one poll() with no timeout tells the outcome, and the main loop never waits on the
 * sandbox. A connect still in progress (the listener's backlog is full, say) is handed over
 * as it is, for the host to finish. 127.0.0.1 is tried first, then ::1 for servers bound to
 * IPv6 loopback only.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

/* Returns the socket (connected, or EINPROGRESS in *errnum) or -1 with *errnum. */
static int try_connect(int family, uint16_t port, int *errnum)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *errnum = errno;
        return -1;
    }
    int e = 0;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
        e = errno;
    if (e == 0) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, 0) == 0) {
            e = EINPROGRESS;
        } else {
            socklen_t el = sizeof(e);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
                e = errno;
        }
    }
    *errnum = e;
    if (e != 0 && e != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

void sbx_agent_port_connect(int reply, uint32_t port)
{
    int e = EINVAL, fd = -1;
    if (port >= 1 && port <= 65535) {
        fd = try_connect(AF_INET, (uint16_t)port, &e);
        if (fd < 0 && e == ECONNREFUSED) {
            int e6;
            int fd6 = try_connect(AF_INET6, (uint16_t)port, &e6);
            if (fd6 >= 0) {
                fd = fd6;
                e = e6;
            }
        }
    }
    struct sbx_wbuf b = {0};
    sbx__wbuf_u32(&b, (uint32_t)e);
    /* The reply socket is fresh and empty: this send cannot block. */
    if (!b.failed)
        sbx__wire_send(reply, SBX_MSG_CONNECTED, b.data, b.len, fd >= 0 ? &fd : NULL,
                       fd >= 0 ? 1 : 0);
    sbx__wbuf_free(&b);
    if (fd >= 0)
        close(fd);
}
