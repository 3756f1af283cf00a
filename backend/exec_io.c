/* exec_io.c — see exec_io.h. */
#include "exec_io.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

#define CHUNK 65536

/* Grows the capture buffer toward max (+1 for the trailing NUL) before a read. */
static void out_grow(struct sbx_out_stream *s)
{
    if (s->cap - s->len >= CHUNK + 1 || s->cap > s->max)
        return;
    size_t ncap = s->cap ? s->cap * 2 : CHUNK * 2;
    if (ncap > s->max + 1)
        ncap = s->max + 1;
    if (ncap <= s->cap)
        return;
    unsigned char *nb = realloc(s->buf, ncap);
    if (nb) {
        s->buf = nb;
        s->cap = ncap;
    }
}

void sbx__out_read(struct sbx_out_stream *s)
{
    unsigned char scratch[CHUNK];
    while (s->fd >= 0) {
        unsigned char *dst = scratch;
        size_t room = sizeof(scratch);
        if (s->sink_fd < 0 && s->len < s->max) {
            out_grow(s);
            if (s->buf && s->cap - 1 > s->len) {
                dst = s->buf + s->len;
                room = s->cap - 1 - s->len;
                if (room > s->max - s->len)
                    room = s->max - s->len;
            }
        }
        ssize_t n = read(s->fd, dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            close(s->fd);
            s->fd = -1;
            return;
        }
        if (dst != scratch)
            s->len += (size_t)n;
        else if (s->sink_fd < 0 || sbx__write_full(s->sink_fd, scratch, (size_t)n) < 0)
            s->dropped += (uint64_t)n;
        if ((size_t)n < room)
            return;
    }
}

short sbx__in_src_events(const struct sbx_in_feed *f)
{
    return (f->src >= 0 && f->pipe >= 0 && f->off == f->len) ? POLLIN : 0;
}

short sbx__in_pipe_events(const struct sbx_in_feed *f)
{
    return (f->pipe >= 0 && f->off < f->len) ? POLLOUT : 0;
}

void sbx__in_close(struct sbx_in_feed *f)
{
    if (f->pipe >= 0)
        close(f->pipe);
    f->pipe = -1;
    f->src = -1;
}

void sbx__in_on_src(struct sbx_in_feed *f, short revents)
{
    if (!revents || f->src < 0)
        return;
    ssize_t n;
    do {
        n = read(f->src, f->buf, sizeof(f->buf));
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) { /* EOF, or unreadable (a directory, say): the command sees EOF */
        sbx__in_close(f);
        return;
    }
    f->off = 0;
    f->len = (size_t)n;
}

/* write() to a pipe whose reader is gone raises SIGPIPE, which would kill the embedder: a
 * sandboxed command closing its stdin must only end the feed. The signal is blocked in this
 * thread for the write, and one it raised is consumed before the mask is restored. */
ssize_t sbx__write_nosigpipe(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t n = write(fd, buf, len);
    int e = errno;
    if (n < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return n;
}

void sbx__in_on_pipe(struct sbx_in_feed *f, short revents)
{
    if (!revents || f->pipe < 0)
        return;
    while (f->off < f->len) {
        ssize_t n = sbx__write_nosigpipe(f->pipe, f->buf + f->off, f->len - f->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) { /* EPIPE: the command closed its stdin */
            sbx__in_close(f);
            return;
        }
        f->off += (size_t)n;
    }
}
