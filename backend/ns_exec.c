/* ns_exec.c — the host side of exec.
 *
 * The host makes the stdout/stderr pipes and hands the write ends to the agent over a fresh
 * operation channel, so output flows from the command straight to the host: the agent never
 * copies a byte. One poll loop here reads both pipes, feeds stdin, and watches the channel,
 * which is what keeps 100 MiB of output on either stream from deadlocking, enforces the
 * per-stream capture cap (bytes past it are drained and counted), and enforces the timeout:
 * at the deadline it sends KILL and waits for the agent's confirmation that the command and
 * every process it started are gone.
 *
 * When the command exits while a background process it started still holds the pipes, the
 * call returns after SBX_EXEC_DRAIN_GRACE_MS instead of waiting for that process.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cgroup.h"
#include "exec_io.h"
#include "ns.h"
#include "wire_msgs.h"

#define SBX_EXEC_DRAIN_GRACE_MS 200
#define SBX_EXEC_KILL_WAIT_MS   10000
#define MS                      1000000ull

static int open_channel(struct sbx_sandbox *sb, uint32_t type)
{
    int ch[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch) < 0)
        return -errno;
    sbx__ns_sock_timeouts(ch[0]);
    pthread_mutex_lock(&sb->lock);
    int r = sb->sock < 0 ? -EPIPE : sbx__wire_send(sb->sock, type, NULL, 0, &ch[1], 1);
    pthread_mutex_unlock(&sb->lock);
    close(ch[1]);
    if (r < 0) {
        close(ch[0]);
        return r;
    }
    return ch[0];
}

int sbx__ns_open_channel(struct sbx_sandbox *sb)
{
    return open_channel(sb, SBX_MSG_OP_OPEN);
}

int sbx__ns_open_cmd_channel(struct sbx_sandbox *sb)
{
    return open_channel(sb, SBX_MSG_OP_OPEN_CMD);
}

static int send_exec(int chan, const struct sbx_backend_exec *x, int in_r, int out_w, int err_w)
{
    struct sbx_wire_exec w = {.uid = x->uid,
                              .gid = x->gid,
                              .cwd = (char *)x->cwd,
                              .argv = (char **)x->argv,
                              .env = (char **)x->env};
    int fds[3];
    size_t n = 0;
    if (in_r >= 0) {
        w.flags |= SBX_EXECF_STDIN;
        fds[n++] = in_r;
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
    int done, spawn_errno, timed_out;
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
    case SBX_MSG_EXEC_STARTED: /* nothing to do: output and DONE tell the rest */
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
        (void)sbx__rbuf_u32(&rb); /* killed: the host knows, it sent the KILL */
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
    uint64_t ms = (until - now + MS - 1) / MS;
    return ms > 60000 ? 60000 : (int)ms;
}

static int spawn_error(const struct sbx_backend_exec *x, struct exec_state *st, sbx_error **err)
{
    const char *stage = st->spawn_stage ? st->spawn_stage : "spawn";
    int chdir_failed = strcmp(stage, "chdir") == 0;
    const char *reason = chdir_failed                  ? "cwd_unusable"
                         : st->spawn_errno == ENOENT  ? "not_found"
                         : st->spawn_errno == EACCES  ? "permission_denied"
                         : st->spawn_errno == ENOEXEC ? "not_executable"
                                                      : "spawn_failed";
    if (chdir_failed)
        sbx_err(err, SBX_EEXEC_TRANSPORT, st->spawn_errno, "exec", "cannot enter directory '%s'",
                x->cwd);
    else
        sbx_err(err, SBX_EEXEC_TRANSPORT, st->spawn_errno, "exec", "cannot run '%s' (%s)",
                x->argv[0], stage);
    sbx_err_ctx(err, "reason", "%s", reason);
    sbx_err_ctx(err, "stage", "%s", stage);
    sbx_err_ctx(err, "workdir", "%s", x->cwd);
    return SBX_EEXEC_TRANSPORT;
}

struct loop {
    int chan;
    struct sbx_out_stream out[2];
    struct sbx_in_feed in;
};

/* Returns 0 when the command is done (or could not start), or -errno. */
static int run_loop(struct loop *l, const struct sbx_backend_exec *x, struct exec_state *st,
                    uint64_t t0)
{
    uint64_t deadline = x->timeout_s > 0 ? t0 + (uint64_t)(x->timeout_s * 1e9) : 0;
    uint64_t kill_until = 0, drain_until = 0;
    for (;;) {
        uint64_t now = sbx__now_ns();
        if (st->done && l->out[0].fd < 0 && l->out[1].fd < 0)
            return 0;
        if (st->done && !drain_until) {
            sbx__in_close(&l->in);
            drain_until = now + SBX_EXEC_DRAIN_GRACE_MS * MS;
        }
        if (drain_until && now >= drain_until)
            return 0;
        if (deadline && !st->done && !st->timed_out && now >= deadline) {
            st->timed_out = 1;
            if (sbx__wire_send(l->chan, SBX_MSG_KILL, NULL, 0, NULL, 0) < 0)
                return -EPIPE;
            kill_until = now + SBX_EXEC_KILL_WAIT_MS * MS;
        }
        if (kill_until && now >= kill_until)
            return -ETIMEDOUT;
        uint64_t next = drain_until;
        if (!next)
            next = kill_until ? kill_until : (st->timed_out || st->done ? 0 : deadline);
        struct pollfd pf[5] = {
            {.fd = l->out[0].fd, .events = POLLIN},
            {.fd = l->out[1].fd, .events = POLLIN},
            {.fd = st->done ? -1 : l->chan, .events = POLLIN},
            {.fd = sbx__in_src_events(&l->in) ? l->in.src : -1, .events = POLLIN},
            {.fd = sbx__in_pipe_events(&l->in) ? l->in.pipe : -1, .events = POLLOUT},
        };
        if (poll(pf, 5, poll_ms(now, next)) < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < 2; i++)
            if (pf[i].revents)
                sbx__out_read(&l->out[i]);
        sbx__in_on_src(&l->in, pf[3].revents);
        sbx__in_on_pipe(&l->in, pf[4].revents);
        if (pf[2].revents) {
            if (chan_msg(l->chan, st) < 0 && !st->done)
                return -EPIPE; /* the agent died under us */
            if (st->spawn_errno)
                return 0;
        }
    }
}

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Creates the pipes: p[0..1] stdout, p[2..3] stderr, p[4..5] stdin (when wanted). */
static int make_pipes(int p[6], int want_stdin)
{
    for (int i = 0; i < 6; i++)
        p[i] = -1;
    if (pipe2(p, O_CLOEXEC) < 0 || pipe2(p + 2, O_CLOEXEC) < 0 ||
        (want_stdin && pipe2(p + 4, O_CLOEXEC) < 0)) {
        int e = errno;
        close_fds(p, 6);
        return -e;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    fcntl(p[2], F_SETFL, O_NONBLOCK);
    if (want_stdin)
        fcntl(p[5], F_SETFL, O_NONBLOCK);
    return 0;
}

static int finish(struct loop *l, struct exec_state *st, struct sbx_backend_exec_out *out,
                  uint64_t t0, sbx_error **err)
{
    out->exit_code = st->kind == 1 ? -(int)st->code : (int)st->code;
    out->term_signal = st->kind == 1 ? (int)st->code : 0;
    for (int i = 0; i < 2; i++) {
        if (!l->out[i].buf && !(l->out[i].buf = malloc(1)))
            return sbx_err(err, SBX_ENOMEM, 0, "exec", "out of memory");
        l->out[i].buf[l->out[i].len] = '\0';
    }
    out->out = l->out[0].buf;
    out->out_len = l->out[0].len;
    out->out_dropped = l->out[0].dropped;
    out->err = l->out[1].buf;
    out->err_len = l->out[1].len;
    out->err_dropped = l->out[1].dropped;
    out->duration_ms = sbx__ms_since(t0);
    l->out[0].buf = l->out[1].buf = NULL;
    return 0;
}

int sbx__ns_exec(struct sbx_sandbox *sb, const struct sbx_backend_exec *x,
                 struct sbx_backend_exec_out *out, sbx_error **err)
{
    uint64_t t0 = sbx__now_ns();
    struct sbx_cg_stats before = {0}, after = {0};
    if (sb->cg)
        sbx__cg_stats(sb->cg, &before);
    int p[6];
    int chan = sbx__ns_open_cmd_channel(sb);
    if (chan < 0)
        return sbx_err(err, SBX_EEXEC_TRANSPORT, -chan, "exec", "sandbox is not reachable");
    int r = make_pipes(p, x->stdin_fd >= 0);
    if (r < 0) {
        close(chan);
        return sbx_err(err, SBX_EEXEC_TRANSPORT, -r, "exec", "pipe");
    }
    r = send_exec(chan, x, p[4], p[1], p[3]);
    close_fds((int[]){p[1], p[3], p[4]}, 3);
    /* A cap of SIZE_MAX must not overflow the +1 for the trailing NUL. */
    size_t max = x->max_output_bytes < SIZE_MAX / 2 ? x->max_output_bytes : SIZE_MAX / 2;
    struct loop l = {
        .chan = chan,
        .out = {{.fd = p[0], .sink_fd = x->stdout_fd, .max = max},
                {.fd = p[2], .sink_fd = x->stderr_fd, .max = max}},
        .in = {.src = p[5] >= 0 ? x->stdin_fd : -1, .pipe = p[5]},
    };
    struct exec_state st = {0};
    if (r < 0) {
        r = sbx_err(err, SBX_EEXEC_TRANSPORT, -r, "exec", "send the command to the sandbox");
    } else {
        int lr = run_loop(&l, x, &st, t0);
        if (st.spawn_errno) {
            r = spawn_error(x, &st, err);
        } else if (st.timed_out) {
            r = sbx_err(err, SBX_EEXEC_TIMEOUT, 0, "exec", "command timed out after %g s",
                        x->timeout_s);
            sbx_err_ctx(err, "timeout_s", "%g", x->timeout_s);
            if (lr < 0)
                sbx_err_ctx(err, "kill_confirmed", "false");
        } else if (lr < 0) {
            r = sbx_err(err, SBX_EEXEC_TRANSPORT, -lr, "exec",
                        "lost the sandbox while the command ran");
        }
    }
    sbx__in_close(&l.in);
    close_fds((int[]){l.out[0].fd, l.out[1].fd, chan}, 3);
    free(st.spawn_stage);
    if (r == 0)
        r = finish(&l, &st, out, t0, err);
    if (r == 0 && sb->cg && sbx__cg_stats(sb->cg, &after) == 0) {
        /* Sandbox-wide counters: an OOM kill by a concurrent exec is attributed here too. */
        out->oom_killed = after.oom_kills > before.oom_kills;
        out->memory_peak = after.memory_peak;
        out->cpu_ms = (double)after.cpu_ns / 1e6;
    }
    free(l.out[0].buf);
    free(l.out[1].buf);
    return r;
}
