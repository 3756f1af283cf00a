/* ns_exec.c — the host side of exec.
 *
 * The host makes the stdout/stderr pipes and hands the write ends to the agent over a fresh
 * operation channel, so output flows from the command straight to the host: the agent never
 * copies a byte. This function reads both pipes and the channel in one poll loop, which is
 * what keeps 100 MiB of output on either stream from deadlocking, enforces the per-stream
 * capture cap (bytes past it are drained and counted), and enforces the timeout: at the
 * deadline it sends KILL and waits for the agent's confirmation that the command and every
 * process it started are gone.
 *
 * When the command exits while a background process it started still holds the pipes, the
 * call returns after SBX_EXEC_DRAIN_GRACE_MS instead of waiting for that process.
 */
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ns.h"
#include "wire_msgs.h"

#define SBX_EXEC_DRAIN_GRACE_MS 200
#define SBX_EXEC_KILL_WAIT_MS   10000

struct stream {
    int fd;          /* read end, -1 at EOF */
    int sink_fd;     /* >= 0: copy here instead of capturing */
    unsigned char *buf;
    size_t len, cap, max;
    uint64_t dropped;
};

int sbx__ns_open_channel(struct sbx_sandbox *sb)
{
    int ch[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch) < 0)
        return -errno;
    pthread_mutex_lock(&sb->lock);
    int r = sb->sock < 0 ? -EPIPE : sbx__wire_send(sb->sock, SBX_MSG_OP_OPEN, NULL, 0, &ch[1], 1);
    pthread_mutex_unlock(&sb->lock);
    close(ch[1]);
    if (r < 0) {
        close(ch[0]);
        return r;
    }
    return ch[0];
}

/* Reads what is available; returns 0, or -1 at EOF/error (the stream is then closed). */
static int stream_read(struct stream *s)
{
    unsigned char scratch[65536];
    for (;;) {
        unsigned char *dst = scratch;
        size_t room = sizeof(scratch);
        if (s->sink_fd < 0 && s->len < s->max) {
            if (s->cap - s->len < 65536 && s->cap < s->max + 1) {
                size_t ncap = s->cap ? s->cap * 2 : 65536;
                if (ncap > s->max + 1)
                    ncap = s->max + 1;
                unsigned char *nb = realloc(s->buf, ncap);
                if (nb) {
                    s->buf = nb;
                    s->cap = ncap;
                }
            }
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
            return 0;
        if (n <= 0) {
            close(s->fd);
            s->fd = -1;
            return -1;
        }
        if (dst != scratch)
            s->len += (size_t)n;
        else if (s->sink_fd >= 0 && sbx__write_full(s->sink_fd, scratch, (size_t)n) == 0)
            ;
        else
            s->dropped += (uint64_t)n;
        if ((size_t)n < room)
            return 0;
    }
}

static int send_exec(int chan, const struct sbx_backend_exec *x, int out_w, int err_w)
{
    struct sbx_wire_exec w = {.uid = x->uid,
                              .gid = x->gid,
                              .cwd = (char *)x->cwd,
                              .argv = (char **)x->argv,
                              .env = (char **)x->env};
    int fds[3];
    size_t n = 0;
    if (x->stdin_fd >= 0) {
        w.flags |= SBX_EXECF_STDIN;
        fds[n++] = x->stdin_fd;
    }
    fds[n++] = out_w;
    fds[n++] = err_w;
    struct sbx_wbuf b = {0};
    int r = sbx__wire_exec_encode(&w, &b);
    if (r == 0)
        r = sbx__wire_send(chan, SBX_MSG_EXEC, b.data, b.len, fds, n);
    sbx__wbuf_free(&b);
    return r;
}

struct exec_state {
    int started, done, killed, spawn_errno;
    char *spawn_stage;
    uint32_t kind, code;
};

/* Handles one message on the channel; -1 when the channel is gone. */
static int chan_msg(int chan, struct exec_state *st)
{
    struct sbx_wire_hdr h;
    unsigned char *p = NULL;
    if (sbx__wire_recv(chan, &h, &p, NULL, 0, NULL) < 0)
        return -1;
    struct sbx_rbuf rb = {.data = p, .len = h.len};
    switch (h.type) {
    case SBX_MSG_EXEC_STARTED:
        st->started = 1;
        break;
    case SBX_MSG_EXEC_SPAWN_ERROR:
        st->spawn_errno = (int)sbx__rbuf_u32(&rb);
        if (rb.len > 4)
            st->spawn_stage = sbx__rbuf_str(&rb);
        if (!st->spawn_errno)
            st->spawn_errno = EIO;
        break;
    case SBX_MSG_EXEC_DONE:
        st->kind = sbx__rbuf_u32(&rb);
        st->code = sbx__rbuf_u32(&rb);
        st->killed = (int)sbx__rbuf_u32(&rb);
        st->done = !rb.bad;
        break;
    default:
        break;
    }
    free(p);
    return 0;
}

static int poll_ms(uint64_t now, uint64_t until)
{
    if (!until)
        return -1;
    if (now >= until)
        return 0;
    uint64_t ms = (until - now + 999999) / 1000000;
    return ms > 60000 ? 60000 : (int)ms;
}

static int spawn_error(const struct sbx_backend_exec *x, struct exec_state *st, sbx_error **err)
{
    const char *reason = st->spawn_errno == ENOENT    ? "not_found"
                         : st->spawn_errno == EACCES  ? "permission_denied"
                         : st->spawn_errno == ENOEXEC ? "not_executable"
                                                      : "spawn_failed";
    const char *stage = st->spawn_stage ? st->spawn_stage : "spawn";
    if (strcmp(stage, "chdir") == 0)
        sbx_err(err, SBX_EEXEC_TRANSPORT, st->spawn_errno, "exec", "cannot enter directory '%s'",
                x->cwd);
    else
        sbx_err(err, SBX_EEXEC_TRANSPORT, st->spawn_errno, "exec", "cannot run '%s' (%s)",
                x->argv[0], stage);
    sbx_err_ctx(err, "reason", "%s", strcmp(stage, "chdir") == 0 ? "cwd_unusable" : reason);
    sbx_err_ctx(err, "stage", "%s", stage);
    sbx_err_ctx(err, "workdir", "%s", x->cwd);
    return SBX_EEXEC_TRANSPORT;
}

static int run_loop(int chan, const struct sbx_backend_exec *x, struct stream *s,
                    struct exec_state *st, uint64_t t0, int *timed_out)
{
    uint64_t deadline = x->timeout_s > 0 ? t0 + (uint64_t)(x->timeout_s * 1e9) : 0;
    uint64_t kill_until = 0, drain_until = 0;
    int chan_open = 1;
    for (;;) {
        uint64_t now = sbx__now_ns();
        if (st->done && (s[0].fd < 0 && s[1].fd < 0))
            return 0;
        if (st->done && !drain_until)
            drain_until = now + (uint64_t)SBX_EXEC_DRAIN_GRACE_MS * 1000000;
        if (drain_until && now >= drain_until)
            return 0;
        if (deadline && !st->done && !*timed_out && now >= deadline) {
            *timed_out = 1;
            if (sbx__wire_send(chan, SBX_MSG_KILL, NULL, 0, NULL, 0) < 0)
                return -EPIPE;
            kill_until = now + (uint64_t)SBX_EXEC_KILL_WAIT_MS * 1000000;
        }
        if (kill_until && now >= kill_until)
            return -ETIMEDOUT;
        uint64_t next = drain_until;
        if (!next)
            next = kill_until ? kill_until : (*timed_out || st->done ? 0 : deadline);
        int wait = poll_ms(now, next);
        struct pollfd pf[3] = {{.fd = s[0].fd, .events = POLLIN},
                               {.fd = s[1].fd, .events = POLLIN},
                               {.fd = chan_open ? chan : -1, .events = POLLIN}};
        int n = poll(pf, 3, wait);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < 2; i++)
            if (pf[i].revents)
                stream_read(&s[i]);
        if (pf[2].revents) {
            if (chan_msg(chan, st) < 0) {
                chan_open = 0;
                if (!st->done)
                    return -EPIPE; /* the agent died under us */
            }
            if (st->spawn_errno)
                return 0;
        }
    }
}

int sbx__ns_exec(struct sbx_sandbox *sb, const struct sbx_backend_exec *x,
                 struct sbx_backend_exec_out *out, sbx_error **err)
{
    uint64_t t0 = sbx__now_ns();
    int op[2] = {-1, -1}, ep[2] = {-1, -1};
    sbx_autoclose int chan = sbx__ns_open_channel(sb);
    if (chan < 0)
        return sbx_err(err, SBX_EEXEC_TRANSPORT, -chan, "exec", "sandbox is not reachable");
    if (pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (op[i] >= 0)
                close(op[i]);
            if (ep[i] >= 0)
                close(ep[i]);
        }
        return sbx_err(err, SBX_EEXEC_TRANSPORT, e, "exec", "pipe");
    }
    int r = send_exec(chan, x, op[1], ep[1]);
    close(op[1]);
    close(ep[1]);
    fcntl(op[0], F_SETFL, O_NONBLOCK);
    fcntl(ep[0], F_SETFL, O_NONBLOCK);
    size_t max = x->max_output_bytes;
    struct stream s[2] = {{.fd = op[0], .sink_fd = x->stdout_fd, .max = max},
                          {.fd = ep[0], .sink_fd = x->stderr_fd, .max = max}};
    struct exec_state st = {0};
    int timed_out = 0;
    if (r < 0)
        r = sbx_err(err, SBX_EEXEC_TRANSPORT, -r, "exec", "send the command to the sandbox");
    else {
        int lr = run_loop(chan, x, s, &st, t0, &timed_out);
        if (st.spawn_errno)
            r = spawn_error(x, &st, err);
        else if (timed_out) {
            r = sbx_err(err, SBX_EEXEC_TIMEOUT, 0, "exec", "command timed out after %g s",
                        x->timeout_s);
            sbx_err_ctx(err, "timeout_s", "%g", x->timeout_s);
            if (lr < 0)
                sbx_err_ctx(err, "kill_confirmed", "false");
        } else if (lr < 0)
            r = sbx_err(err, SBX_EEXEC_TRANSPORT, -lr, "exec",
                        "lost the sandbox while the command ran");
    }
    for (int i = 0; i < 2; i++)
        if (s[i].fd >= 0)
            close(s[i].fd);
    free(st.spawn_stage);
    if (r < 0) {
        free(s[0].buf);
        free(s[1].buf);
        return r;
    }
    out->exit_code = st.kind == 1 ? -(int)st.code : (int)st.code;
    out->term_signal = st.kind == 1 ? (int)st.code : 0;
    for (int i = 0; i < 2; i++) {
        if (!s[i].buf)
            s[i].buf = malloc(1);
        if (!s[i].buf)
            return sbx_err(err, SBX_ENOMEM, 0, "exec", "out of memory");
        s[i].buf[s[i].len] = '\0';
    }
    out->out = s[0].buf;
    out->out_len = s[0].len;
    out->out_dropped = s[0].dropped;
    out->err = s[1].buf;
    out->err_len = s[1].len;
    out->err_dropped = s[1].dropped;
    out->duration_ms = sbx__ms_since(t0);
    return 0;
}
