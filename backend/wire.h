/* wire.h — the host <-> agent protocol. Shared by the host backend and sbx-agent (libc only).
 *
 * Transport: AF_UNIX SOCK_STREAM. A message is a header {u32 type, u32 len} followed by len
 * payload bytes; fds travel as SCM_RIGHTS on the header's first byte. The payload is a
 * sequence of fields in an order fixed per type (u32, u64, string = u32 len + bytes,
 * string vector = u32 count + strings), decoded with bounds checks: a short or malformed
 * payload is rejected, never read past.
 *
 * Channels: the main socket (made at clone) carries CONFIG, READY/SETUP_ERROR, OP_OPEN and
 * CONNECT.
 * Each operation gets its own socketpair: the host sends one end in OP_OPEN, and the agent
 * serves it in a forked worker, so concurrent operations need no demultiplexing. Closing an
 * operation channel cancels the operation.
 */
#ifndef SBX_WIRE_H
#define SBX_WIRE_H

#include <stddef.h>
#include <stdint.h>

enum sbx_wire_type {
    SBX_MSG_CONFIG = 1,      /* host -> agent, main: sandbox layout; fds: bind sources */
    SBX_MSG_READY = 2,       /* agent -> host, main: root assembled, serving: {u32 Landlock
                                ABI of commands, 0 for none} */
    SBX_MSG_SETUP_ERROR = 3, /* agent -> host, main: {u32 errno, str stage, str detail} */
    SBX_MSG_OP_OPEN = 4,     /* host -> agent, main: fds: [channel] */
    SBX_MSG_CONNECT = 5,     /* host -> agent, main: {u32 port}; fds: [reply socket]. The
                                agent connects to the port on the sandbox's loopback itself,
                                without a worker, and answers CONNECTED on the reply socket */
    SBX_MSG_OP_OPEN_CMD = 6, /* host -> agent, main: as OP_OPEN, for an EXEC or PTY channel,
                                which the agent may hand to its zygote (agent/zygote.c) */
    SBX_MSG_EXEC = 10,       /* host -> agent, op: see exec layout; fds: [stdin?,out,err] */
    SBX_MSG_EXEC_STARTED = 11, /* agent -> host, op: {u32 pid (inside)} */
    SBX_MSG_EXEC_DONE = 12,  /* agent -> host, op: {u32 kind, i32 code, u32 killed} */
    SBX_MSG_EXEC_SPAWN_ERROR = 13, /* agent -> host, op: {u32 errno, str stage} */
    SBX_MSG_KILL = 14,       /* host -> agent, op: kill the command and all it started */
    SBX_MSG_PTY = 15,        /* host -> agent, op: {u32 rows, u32 cols} + exec layout; the
                                command gets a new terminal (replies: PTY_MASTER, then as
                                for EXEC) */
    SBX_MSG_PTY_MASTER = 16, /* agent -> host, op: fds: [pty master] */
    SBX_MSG_FILE = 20,       /* host -> agent, op: a file operation (wire_msgs.h); fds:
                                [data socket] for read, write, walk and put */
    SBX_MSG_FILE_OPENED = 21, /* agent -> host, op: read: {u64 size}, bytes follow on data */
    SBX_MSG_FILE_ENTRIES = 22, /* agent -> host, op: ls: {u32 n, n x entry} (wire_msgs.h) */
    SBX_MSG_FILE_DONE = 23,  /* agent -> host, op: {i32 errno, u32 step, str detail,
                                u64 bytes}: the operation's outcome, always last */
    SBX_MSG_PROXY_LISTEN = 24, /* host -> agent, op: {u32 port}: listen on the sandbox's
                                  127.0.0.1:port (the egress proxy's address inside) */
    SBX_MSG_PROXY_READY = 25,  /* agent -> host, op: {i32 errno}: listening (0) or not */
    SBX_MSG_PROXY_CONN = 26,   /* agent -> host, op: fds: [an accepted connection] */
    SBX_MSG_CONNECTED = 30,  /* agent -> host, reply: {i32 errno}; fds: [socket] when errno
                                is 0 (connected) or EINPROGRESS (the host finishes it) */
};

#define SBX_WIRE_MAX_PAYLOAD (16u << 20)
#define SBX_WIRE_MAX_FDS     64 /* >= SBX_WIRE_MAX_MOUNTS: every bind may travel as an fd */

struct sbx_wire_hdr {
    uint32_t type;
    uint32_t len;
};

/* Growable payload builder. On allocation failure `failed` is set and later puts no-op. */
struct sbx_wbuf {
    unsigned char *data;
    size_t len, cap;
    int failed;
};

void sbx__wbuf_u32(struct sbx_wbuf *b, uint32_t v);
void sbx__wbuf_u64(struct sbx_wbuf *b, uint64_t v);
void sbx__wbuf_str(struct sbx_wbuf *b, const char *s); /* NULL is sent as empty */
void sbx__wbuf_strv(struct sbx_wbuf *b, const char *const *v);
void sbx__wbuf_bytes(struct sbx_wbuf *b, const void *p, uint32_t len);
void sbx__wbuf_free(struct sbx_wbuf *b);

/* Bounds-checked reader over a received payload. Any overrun sets `bad`. */
struct sbx_rbuf {
    const unsigned char *data;
    size_t len, off;
    int bad;
};

uint32_t sbx__rbuf_u32(struct sbx_rbuf *r);
uint64_t sbx__rbuf_u64(struct sbx_rbuf *r);
/* Returns a malloc'd NUL-terminated copy (NULL and `bad` set on error). Strings with an
 * embedded NUL are rejected. */
char *sbx__rbuf_str(struct sbx_rbuf *r);
/* Returns a malloc'd copy of a length-prefixed byte string (NULL for length 0) and its
 * length in *len. */
unsigned char *sbx__rbuf_bytes(struct sbx_rbuf *r, uint32_t *len);
/* Returns a malloc'd NULL-terminated vector; at most `max` entries. */
char **sbx__rbuf_strv(struct sbx_rbuf *r, uint32_t max);

/* Sends one message with optional fds. Returns 0 or -errno. */
int sbx__wire_send(int sock, uint32_t type, const void *payload, size_t len, const int *fds,
                   size_t n_fds);
/* Receives one message: *payload is malloc'd (may be NULL for len 0), received fds are
 * stored in fds[] (CLOEXEC) and counted in *n_fds (excess fds are closed). Returns 0, -EPIPE
 * on clean EOF before a header, or -errno. */
int sbx__wire_recv(int sock, struct sbx_wire_hdr *hdr, unsigned char **payload, int *fds,
                   size_t max_fds, size_t *n_fds);

/* caps.c: the highest capability number the running kernel knows. */
int sbx__cap_last(void);

/* read() until len bytes arrived; -1 on error or EOF. */
int sbx__read_full_sock(int fd, void *buf, size_t len);

#endif
