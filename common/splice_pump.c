/* splice_pump.c — see splice_pump.h. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "splice_pump.h"

#define CHUNK (1 << 20) /* asked of each splice in; the pipe's size caps it */

void sbx__pump_init(struct sbx_pump *d)
{
    *d = (struct sbx_pump){.pipe = {-1, -1}};
}

int sbx__pump_open(struct sbx_pump *d, size_t pipe_bytes)
{
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        d->pipe[0] = d->pipe[1] = -1;
        return -errno;
    }
    if (pipe_bytes)
        fcntl(d->pipe[0], F_SETPIPE_SZ, (int)pipe_bytes); /* best effort */
    return 0;
}

void sbx__pump_close(struct sbx_pump *d)
{
    for (int i = 0; i < 2; i++) {
        if (d->pipe[i] >= 0)
            close(d->pipe[i]);
        d->pipe[i] = -1;
    }
}

int sbx__pump_run(struct sbx_pump *d, int src, int dst, int rounds)
{
    for (int round = 0; !d->done && round < rounds; round++) {
        if (!d->eof && d->inpipe == 0) {
            ssize_t k = splice(src, NULL, d->pipe[1], NULL, CHUNK,
                               SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (k > 0)
                d->inpipe = (size_t)k;
            else if (k == 0)
                d->eof = 1;
            else if (errno == EINTR)
                continue;
            else if (errno == EAGAIN)
                return 0;
            else
                return -1;
        }
        while (d->inpipe > 0) {
            ssize_t k = splice(d->pipe[0], NULL, dst, NULL, d->inpipe,
                               SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (k > 0) {
                d->inpipe -= (size_t)k;
                d->bytes += (uint64_t)k;
            } else if (k < 0 && errno == EINTR) {
                continue;
            } else if (k < 0 && errno == EAGAIN) {
                return 0;
            } else {
                return -1;
            }
        }
        if (d->eof) {
            shutdown(dst, SHUT_WR);
            d->done = 1;
        }
    }
    return 0;
}

int sbx__pump_wants(const struct sbx_pump *d)
{
    if (d->done)
        return 0;
    return d->inpipe > 0 ? SBX_PUMP_WANT_OUT : SBX_PUMP_WANT_IN;
}
