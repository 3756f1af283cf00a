/* exec_io.h — moving a command's bytes on the host: capturing or streaming its output, and
 * feeding its stdin through a pipe. Internal to the namespace backend. */
#ifndef SBX_EXEC_IO_H
#define SBX_EXEC_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One output stream: a pipe read end drained into a capped buffer or copied to sink_fd. */
struct sbx_out_stream {
    int fd;      /* read end (non-blocking), -1 at EOF */
    int sink_fd; /* >= 0: copy here instead of capturing */
    unsigned char *buf;
    size_t len, cap, max;
    uint64_t dropped;
};

/* Reads what is available. Bytes past `max` are drained and counted in `dropped`; so are
 * bytes a sink refuses. Closes fd at EOF. */
void sbx__out_read(struct sbx_out_stream *s);

/* stdin: bytes are copied from the caller's fd into a pipe the sandbox reads. The caller's
 * fd itself never enters the sandbox: a directory fd there would be a path to the host's
 * filesystem (/proc/self/fd/0/...), and a file could be reopened for writing. */
struct sbx_in_feed {
    int src;  /* caller's fd (borrowed; its flags are left alone), -1 when done */
    int pipe; /* write end (non-blocking, ours), -1 when closed */
    unsigned char buf[65536];
    size_t off, len;
};

/* poll() events wanted on src and pipe. */
short sbx__in_src_events(const struct sbx_in_feed *f);
short sbx__in_pipe_events(const struct sbx_in_feed *f);
/* Called when src is readable / pipe writable (or either reported an error/hang-up). */
void sbx__in_on_src(struct sbx_in_feed *f, short revents);
void sbx__in_on_pipe(struct sbx_in_feed *f, short revents);
void sbx__in_close(struct sbx_in_feed *f);

/* write() that returns EPIPE instead of raising SIGPIPE (which would kill the embedder). */
ssize_t sbx__write_nosigpipe(int fd, const void *buf, size_t len);

#endif
