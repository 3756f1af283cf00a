/* splice_pump.h — one direction of a byte relay between two stream sockets: src -> pipe ->
 * dst with splice(), so the bytes never enter user space.
 *
 * The pump reads from src only once its pipe is empty: a slow dst slows src down
 * (back-pressure) and a relay holds no more than its pipes. When src reaches EOF and the pipe
 * has drained, dst is shut for writing (half-close passes through) and the pump is done.
 * Both sockets must be non-blocking. Used by exposed ports (core/port_forward.c) and the
 * egress proxy (backend/net_proxy.c), which wait in epoll for what sbx__pump_wants() says. */
#ifndef SBX_COMMON_SPLICE_PUMP_H
#define SBX_COMMON_SPLICE_PUMP_H

#include <stddef.h>
#include <stdint.h>

struct sbx_pump {
    int pipe[2];    /* -1 when not open */
    size_t inpipe;  /* bytes in the pipe, on their way to dst */
    int eof;        /* src reached EOF */
    int done;       /* ... and all of it went to dst, which was shut for writing */
    uint64_t bytes; /* moved to dst */
};

/* What a pump waits for before it can move again. */
enum { SBX_PUMP_WANT_IN = 1, SBX_PUMP_WANT_OUT = 2 };

/* A pump with no pipe yet (sbx__pump_close is safe on it). */
void sbx__pump_init(struct sbx_pump *d);
/* Makes the pipe, sized pipe_bytes when the system allows (0: the default). 0 or -errno. */
int sbx__pump_open(struct sbx_pump *d, size_t pipe_bytes);
void sbx__pump_close(struct sbx_pump *d);
/* Moves bytes from src to dst for at most `rounds` pipe-fulls (so one busy connection cannot
 * hold a relay thread that serves many). 0, or -1 when a socket failed (reset, EPIPE). */
int sbx__pump_run(struct sbx_pump *d, int src, int dst, int rounds);
/* SBX_PUMP_WANT_IN (src readable), SBX_PUMP_WANT_OUT (dst writable), or 0 when done. */
int sbx__pump_wants(const struct sbx_pump *d);

#endif
