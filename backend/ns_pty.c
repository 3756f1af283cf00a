/* ns_pty.c — the host side of interactive processes.
 *
 * pty_start opens an operation channel and asks the agent for either a terminal (PTY: the
 * agent opens /dev/ptmx of the sandbox's own devpts and sends the master back) or two pipes
 * we make here (tty off: stdout and stderr, merged in arrival order). From then on one reader
 * thread per process owns every fd but the write side: it drains the output as it comes into
 * a bounded ring (the oldest bytes are dropped and counted), so a command printing without
 * pause never blocks on a full terminal whether or not anyone polls, and it reads the
 * channel for the exit status.
 *
 * "Exited" means DONE arrived and the output is closed: EOF on every pipe, EIO on the master
 * once the last slave fd is gone, or SBX_PTY_DRAIN_GRACE_MS after DONE when a background
 * process the command started still holds the terminal (as exec does).
 *
 * pty_free never waits for the command: it sends KILL (the agent kills the whole tree), wakes
 * the reader through a pipe, joins it (it never blocks in read: every fd is non-blocking) and
 * closes the channel, which the agent also takes as a kill.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "exec_io.h"
#include "ns.h"
#include "wire_msgs.h"

#define SBX_PTY_DEFAULT_BUFFER  (1u << 20)
#define SBX_PTY_CHUNK           16384
#define SBX_PTY_DRAIN_GRACE_MS  200
#define SBX_PTY_WRITE_STALL_MS  5000

struct sbx_backend_pty {
    int chan;
    int tty;
    int out[2];    /* master (tty) or stdout/stderr read ends; -1 once at EOF */
    int master;    /* tty: the master (== out[0] until EOF), for writes and resizes */
    int wake[2];   /* pty_free -> reader */
    pthread_t reader;
    int reader_started;
    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cond;
    unsigned char *ring;
    size_t cap, head, len;
    uint64_t dropped;
    int done, closed, exit_code, kill_sent;
};

/* Appends to the ring, dropping the oldest bytes when full. Called with mu held. */
static void ring_put(struct sbx_backend_pty *p, const unsigned char *b, size_t n)
{
    if (n >= p->cap) {
        p->dropped += p->len + (n - p->cap);
        memcpy(p->ring, b + (n - p->cap), p->cap);
        p->head = 0;
        p->len = p->cap;
        return;
    }
    if (p->len + n > p->cap) {
        size_t k = p->len + n - p->cap;
        p->head = (p->head + k) % p->cap;
        p->len -= k;
        p->dropped += k;
    }
    size_t tail = (p->head + p->len) % p->cap;
    size_t first = p->cap - tail < n ? p->cap - tail : n;
    memcpy(p->ring + tail, b, first);
    memcpy(p->ring, b + first, n - first);
    p->len += n;
}

/* Reads what is ready on out[i]; marks it closed at EOF (EIO: no slave left). */
static void drain_one(struct sbx_backend_pty *p, int i)
{
    unsigned char buf[SBX_PTY_CHUNK];
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = read(p->out[i], buf, sizeof(buf));
        if (n > 0) {
            pthread_mutex_lock(&p->mu);
            ring_put(p, buf, (size_t)n);
            pthread_cond_broadcast(&p->cond);
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        if (n < 0 && (errno == EINTR))
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        /* EOF, EIO (every slave fd closed) or a real error: this stream is over. The master
         * itself stays open for pty_free, so resizes and writes fail cleanly meanwhile. */
        if (p->out[i] != p->master)
            close(p->out[i]);
        p->out[i] = -1;
        return;
    }
}

/* One message on the channel; -1 when the channel is gone. */
static int chan_msg(struct sbx_backend_pty *p)
{
    struct sbx_wire_hdr h;
    unsigned char *b = NULL;
    if (sbx__wire_recv(p->chan, &h, &b, NULL, 0, NULL) < 0)
        return -1;
    if (h.type == SBX_MSG_EXEC_DONE) {
        struct sbx_rbuf rb = {.data = b, .len = h.len};
        uint32_t kind = sbx__rbuf_u32(&rb), code = sbx__rbuf_u32(&rb);
        pthread_mutex_lock(&p->mu);
        p->exit_code = kind == 1 ? -(int)code : (int)code;
        p->done = 1;
        pthread_mutex_unlock(&p->mu);
    }
    free(b);
    return 0;
}

static void *reader_main(void *arg)
{
    struct sbx_backend_pty *p = arg;
    uint64_t drain_until = 0;
    int chan_open = 1;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int done = p->done;
        pthread_mutex_unlock(&p->mu);
        if (!done && !chan_open) {
            /* The agent is gone (the sandbox was shut down): nothing will report an exit. */
            pthread_mutex_lock(&p->mu);
            p->done = 1;
            p->exit_code = -9;
            pthread_mutex_unlock(&p->mu);
            done = 1;
        }
        if (done && p->out[0] < 0 && p->out[1] < 0)
            break;
        uint64_t now = sbx__now_ns();
        if (done && !drain_until)
            drain_until = now + SBX_PTY_DRAIN_GRACE_MS * 1000000ull;
        if (drain_until && now >= drain_until)
            break;
        struct pollfd pf[4] = {
            {.fd = p->out[0], .events = POLLIN},
            {.fd = p->out[1], .events = POLLIN},
            {.fd = done || !chan_open ? -1 : p->chan, .events = POLLIN},
            {.fd = p->wake[0], .events = POLLIN},
        };
        int ms = drain_until ? (int)((drain_until - now) / 1000000ull) + 1 : -1;
        if (poll(pf, 4, ms) < 0 && errno != EINTR)
            break;
        if (pf[3].revents)
            break;
        for (int i = 0; i < 2; i++)
            if (pf[i].revents)
                drain_one(p, i);
        if (pf[2].revents && chan_msg(p) < 0)
            chan_open = 0;
    }
    pthread_mutex_lock(&p->mu);
    p->closed = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int send_start(int chan, const struct sbx_backend_pty_req *q, const int *fds, size_t n)
{
    struct sbx_wire_exec w = {.uid = q->uid,
                              .gid = q->gid,
                              .cwd = (char *)q->cwd,
                              .argv = (char **)q->argv,
                              .env = (char **)q->env};
    struct sbx_wbuf b = {0};
    if (q->tty) {
        sbx__wbuf_u32(&b, q->rows);
        sbx__wbuf_u32(&b, q->cols);
    }
    int r = sbx__wire_exec_encode(&w, &b);
    if (r == 0 && b.failed)
        r = -ENOMEM;
    if (r == 0)
        r = sbx__wire_send(chan, q->tty ? SBX_MSG_PTY : SBX_MSG_EXEC, b.data, b.len, fds, n);
    sbx__wbuf_free(&b);
    return r;
}

static int spawn_error(const struct sbx_backend_pty_req *q, int e, const char *stage,
                       sbx_error **err)
{
    stage = stage ? stage : "spawn";
    int chdir_failed = strcmp(stage, "chdir") == 0;
    const char *reason = chdir_failed    ? "cwd_unusable"
                         : e == ENOENT  ? "not_found"
                         : e == EACCES  ? "permission_denied"
                         : e == ENOEXEC ? "not_executable"
                                        : "spawn_failed";
    sbx_err(err, SBX_EEXEC_TRANSPORT, e, "pty_exec_start", "cannot run '%s' (%s)", q->argv[0],
            stage);
    sbx_err_ctx(err, "reason", "%s", reason);
    sbx_err_ctx(err, "stage", "%s", stage);
    sbx_err_ctx(err, "workdir", "%s", q->cwd);
    return SBX_EEXEC_TRANSPORT;
}

/* Waits for the agent's answer to the start: the master (tty), then STARTED or SPAWN_ERROR.
 * The channel's receive timeout bounds a stuck agent. */
static int handshake(struct sbx_backend_pty *p, const struct sbx_backend_pty_req *q,
                     sbx_error **err)
{
    for (;;) {
        struct sbx_wire_hdr h;
        unsigned char *b = NULL;
        int fd = -1;
        size_t n_fds = 0;
        int r = sbx__wire_recv(p->chan, &h, &b, &fd, 1, &n_fds);
        if (r < 0)
            return sbx_err(err, SBX_EEXEC_TRANSPORT, -r, "pty_exec_start",
                           "lost the sandbox while starting the command");
        struct sbx_rbuf rb = {.data = b, .len = h.len};
        if (h.type == SBX_MSG_PTY_MASTER && n_fds == 1 && p->master < 0) {
            p->master = p->out[0] = fd;
            fcntl(fd, F_SETFL, O_NONBLOCK);
            free(b);
            continue;
        }
        if (n_fds)
            close(fd);
        if (h.type == SBX_MSG_EXEC_STARTED && (!p->tty || p->master >= 0)) {
            free(b);
            return 0;
        }
        if (h.type == SBX_MSG_EXEC_SPAWN_ERROR) {
            int e = (int)sbx__rbuf_u32(&rb);
            char *stage = rb.len > 4 ? sbx__rbuf_str(&rb) : NULL;
            r = spawn_error(q, e ? e : EIO, stage, err);
            free(stage);
            free(b);
            return r;
        }
        free(b);
        return sbx_err(err, SBX_EEXEC_TRANSPORT, EBADMSG, "pty_exec_start",
                       "unexpected message %u from the sandbox", h.type);
    }
}

static void close_pipe_pair(int *fds)
{
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

int sbx__ns_pty_start(struct sbx_sandbox *sb, const struct sbx_backend_pty_req *q,
                      struct sbx_backend_pty **out, sbx_error **err)
{
    *out = NULL;
    struct sbx_backend_pty *p = calloc(1, sizeof(*p));
    size_t cap = q->buffer_bytes ? q->buffer_bytes : SBX_PTY_DEFAULT_BUFFER;
    if (!p || !(p->ring = malloc(cap))) {
        free(p);
        return sbx_err(err, SBX_ENOMEM, 0, "pty_exec_start", "out of memory");
    }
    p->cap = cap;
    p->tty = q->tty;
    p->out[0] = p->out[1] = p->master = p->wake[0] = p->wake[1] = p->chan = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cond, NULL);
    int r;
    if (pipe2(p->wake, O_CLOEXEC) < 0) {
        r = sbx_err(err, SBX_EEXEC_TRANSPORT, errno, "pty_exec_start", "pipe");
        goto fail;
    }
    p->chan = sbx__ns_open_cmd_channel(sb);
    if (p->chan < 0) {
        r = sbx_err(err, SBX_EEXEC_TRANSPORT, -p->chan, "pty_exec_start",
                    "sandbox is not reachable");
        goto fail;
    }
    int o[2] = {-1, -1}, e[2] = {-1, -1};
    if (!q->tty) {
        if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
            r = sbx_err(err, SBX_EEXEC_TRANSPORT, errno, "pty_exec_start", "pipe");
            close_pipe_pair(o);
            close_pipe_pair(e);
            goto fail;
        }
        p->out[0] = o[0];
        p->out[1] = e[0];
        fcntl(o[0], F_SETFL, O_NONBLOCK);
        fcntl(e[0], F_SETFL, O_NONBLOCK);
    }
    int rs = send_start(p->chan, q, (int[]){o[1], e[1]}, q->tty ? 0 : 2);
    if (!q->tty) {
        close(o[1]);
        close(e[1]);
    }
    if (rs < 0) {
        r = sbx_err(err, SBX_EEXEC_TRANSPORT, -rs, "pty_exec_start",
                    "send the command to the sandbox");
        goto fail;
    }
    if ((r = handshake(p, q, err)) < 0)
        goto fail;
    if ((errno = pthread_create(&p->reader, NULL, reader_main, p)) != 0) {
        r = sbx_err(err, SBX_EEXEC_TRANSPORT, errno, "pty_exec_start", "start a reader thread");
        goto fail;
    }
    p->reader_started = 1;
    *out = p;
    return 0;
fail:
    sbx__ns_pty_free(p);
    return r;
}

int sbx__ns_pty_write(struct sbx_backend_pty *p, const void *buf, size_t n)
{
    if (!p->tty || p->master < 0)
        return -ENOTTY;
    const unsigned char *b = buf;
    uint64_t stall_until = sbx__now_ns() + SBX_PTY_WRITE_STALL_MS * 1000000ull;
    while (n > 0) {
        ssize_t w = write(p->master, b, n);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return -errno;
        /* The command is not reading and the terminal's input queue is full. */
        uint64_t now = sbx__now_ns();
        if (now >= stall_until)
            return -EAGAIN;
        struct pollfd pf = {.fd = p->master, .events = POLLOUT};
        poll(&pf, 1, (int)((stall_until - now) / 1000000ull) + 1);
    }
    return 0;
}

size_t sbx__ns_pty_read(struct sbx_backend_pty *p, void *buf, size_t cap)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->len < cap ? p->len : cap;
    size_t first = p->cap - p->head < n ? p->cap - p->head : n;
    memcpy(buf, p->ring + p->head, first);
    memcpy((unsigned char *)buf + first, p->ring, n - first);
    p->head = (p->head + n) % p->cap;
    p->len -= n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int sbx__ns_pty_wait(struct sbx_backend_pty *p, uint64_t deadline_ns)
{
    /* The condition variable runs on CLOCK_REALTIME; convert the remaining time. */
    pthread_mutex_lock(&p->mu);
    while (p->len == 0 && !p->closed) {
        uint64_t now = sbx__now_ns();
        if (now >= deadline_ns)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t left = deadline_ns - now;
        ts.tv_sec += (time_t)(left / 1000000000ull);
        ts.tv_nsec += (long)(left % 1000000000ull);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cond, &p->mu, &ts);
    }
    int r = p->len > 0 || p->closed;
    pthread_mutex_unlock(&p->mu);
    return r;
}

void sbx__ns_pty_status(struct sbx_backend_pty *p, struct sbx_backend_pty_status *st)
{
    pthread_mutex_lock(&p->mu);
    st->exited = p->done && p->closed;
    st->exit_code = p->exit_code;
    st->dropped = p->dropped;
    pthread_mutex_unlock(&p->mu);
}

int sbx__ns_pty_resize(struct sbx_backend_pty *p, unsigned rows, unsigned cols)
{
    if (!p->tty || p->master < 0)
        return -ENOTTY;
    if (!rows || !cols || rows > 0xffff || cols > 0xffff)
        return -EINVAL;
    /* On the master, TIOCSWINSZ also sends SIGWINCH to the terminal's foreground group. */
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    return ioctl(p->master, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

void sbx__ns_pty_kill(struct sbx_backend_pty *p)
{
    /* mu also serialises the writers of the channel (KILL is the only message we send). */
    pthread_mutex_lock(&p->mu);
    if (p->chan >= 0 && !p->done && !p->kill_sent) {
        p->kill_sent = 1;
        sbx__wire_send(p->chan, SBX_MSG_KILL, NULL, 0, NULL, 0);
    }
    pthread_mutex_unlock(&p->mu);
}

void sbx__ns_pty_free(struct sbx_backend_pty *p)
{
    if (!p)
        return;
    sbx__ns_pty_kill(p);
    if (p->reader_started) {
        sbx__write_nosigpipe(p->wake[1], "x", 1);
        pthread_join(p->reader, NULL);
    }
    for (int i = 0; i < 2; i++)
        if (p->out[i] >= 0 && p->out[i] != p->master)
            close(p->out[i]);
    int fds[] = {p->master, p->wake[0], p->wake[1], p->chan};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
    free(p->ring);
    free(p);
}
