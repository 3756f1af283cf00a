/* ns_connect.c — a connection to a TCP port inside the sandbox (for exposed ports).
 *
 * The agent makes the socket in the sandbox's network namespace and passes it back on a
 * one-shot reply socket (wire.h: CONNECT / CONNECTED); the host finishes a connect the agent
 * handed over still in progress. The socket is the caller's, non-blocking.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ns.h"
#include "wire.h"

#define OP "resolve_exposed_port"

/* How long the agent has to answer, and a connect in progress to complete. */
#define CONNECT_TIMEOUT_MS 5000

static int wait_fd(int fd, short ev, int ms)
{
    struct pollfd pf = {.fd = fd, .events = ev};
    int r;
    do {
        r = poll(&pf, 1, ms);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
}

int sbx__ns_connect(struct sbx_sandbox *sb, unsigned port, int *fd_out, int *errnum,
                    sbx_error **err)
{
    *fd_out = -1;
    *errnum = 0;
    int ch[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch) < 0)
        return sbx_err(err, SBX_EBACKEND, errno, OP, "socketpair");
    struct sbx_wbuf b = {0};
    sbx__wbuf_u32(&b, port);
    int r = -ENOMEM;
    if (!b.failed) {
        pthread_mutex_lock(&sb->lock);
        r = sb->sock < 0 ? -EPIPE
                         : sbx__wire_send(sb->sock, SBX_MSG_CONNECT, b.data, b.len, &ch[1], 1);
        pthread_mutex_unlock(&sb->lock);
    }
    sbx__wbuf_free(&b);
    close(ch[1]);
    if (r < 0) {
        close(ch[0]);
        return sbx_err(err, SBX_EBACKEND, -r, OP, "sandbox is not reachable");
    }
    r = wait_fd(ch[0], POLLIN, CONNECT_TIMEOUT_MS);
    struct sbx_wire_hdr h = {0};
    unsigned char *p = NULL;
    int fd = -1;
    size_t n_fds = 0;
    if (r == 0)
        r = sbx__wire_recv(ch[0], &h, &p, &fd, 1, &n_fds);
    close(ch[0]);
    if (r < 0) {
        free(p);
        return sbx_err(err, SBX_EBACKEND, -r, OP, "the sandbox did not answer a connect to port %u",
                       port);
    }
    struct sbx_rbuf rb = {.data = p, .len = h.len};
    int e = (int)sbx__rbuf_u32(&rb);
    free(p);
    if (h.type != SBX_MSG_CONNECTED || rb.bad || (e != 0 && e != EINPROGRESS) != (n_fds == 0)) {
        if (n_fds)
            close(fd);
        return sbx_err(err, SBX_EBACKEND, EBADMSG, OP, "malformed answer to a connect");
    }
    if (n_fds == 0) {
        *errnum = e; /* nothing listens there, say: the sandbox is fine */
        return 0;
    }
    if (e == EINPROGRESS) {
        r = wait_fd(fd, POLLOUT, CONNECT_TIMEOUT_MS);
        e = -r;
        if (r == 0) {
            socklen_t el = sizeof(e);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
                e = errno;
        }
        if (e != 0) {
            close(fd);
            *errnum = e;
            return 0;
        }
    }
    /* A socket from the sandbox: make sure of what the rest of the host relies on. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        e = errno;
        close(fd);
        return sbx_err(err, SBX_EBACKEND, e, OP, "fcntl");
    }
    *fd_out = fd;
    return 0;
}
