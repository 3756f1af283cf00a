/* agent_main.c — sbx-agent: PID 1 of the sandbox.
 *
 * Started by the host right after clone3() in fresh user, pid, mount, uts, ipc and cgroup
 * namespaces (the network namespace it makes itself, in parallel: see netns.c), with its main socket on fd 3 and /dev/null on 0-2 (the host's terminal
 * is never handed in: CVE-2017-5226). It receives CONFIG, assembles the root, reports READY
 * and then serves: each OP_OPEN carries an operation channel that a forked worker serves, so
 * operations run concurrently and a crash in one cannot take the agent down.
 *
 * As PID 1 it reaps every orphan. When it exits, the kernel kills every process in the
 * sandbox's pid namespace: that is how shutdown and "the embedder died" are enforced. The
 * main socket closing (the embedding process died or shut the session) makes it exit unless
 * the session is detached.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

unsigned char *sbx_agent_filter;
uint32_t sbx_agent_filter_len;
int sbx_agent_dumpable;
int sbx_agent_cap_last;
uint32_t sbx_agent_nproc;
uint32_t sbx_agent_nofile;
uint64_t sbx_agent_fsize;


static void send_setup_error(int sock, const struct sbx_agent_fail *f)
{
    struct sbx_wbuf b = {0};
    sbx__wbuf_u32(&b, (uint32_t)f->errnum);
    sbx__wbuf_str(&b, f->stage ? f->stage : "setup");
    sbx__wbuf_str(&b, f->detail);
    if (!b.failed)
        sbx__wire_send(sock, SBX_MSG_SETUP_ERROR, b.data, b.len, NULL, 0);
    sbx__wbuf_free(&b);
}

/* The control socket others attach through (-1: none), and its accepted connections. */
static int listen_fd = -1;
static int main_sock = SBX_AGENT_SOCK_FD; /* -1 once the creator hung up */
#define MAX_CONNS 64
static int conns[MAX_CONNS];
static size_t n_conns;
/* The parent of command workers (zygote.c): CONFIG allows one (may_zygote), the first
 * command asks for it (want_zygote), and the main loop makes it once idle; -1: none (any
 * more). A session that never runs a command never has one: idle sessions stay small. */
static int may_zygote, want_zygote;
static int zygote_fd = -1;
static int zygote_ready;
static pid_t zygote_pid;

static void zygote_gone(void)
{
    if (zygote_fd >= 0)
        close(zygote_fd);
    zygote_fd = -1;
    zygote_ready = 0;
}

static void reap_all(void)
{
    pid_t p;
    while ((p = waitpid(-1, NULL, WNOHANG | __WALL)) > 0)
        if (p == zygote_pid)
            zygote_gone();
}

/* The host wrote our id maps before sending CONFIG. Until now we ran with the capabilities
 * carried over as ambient ones under an unmapped uid; as root, take the agent's own id (one
 * no command can have, so none can signal us) keeping those capabilities, and drop the
 * caller's supplementary groups, which would otherwise keep granting group access (a host
 * gid 0, say) inside. Unprivileged, the caller's uid is already mapped to the sandbox user
 * and setgroups is denied. */
static int take_identity(const struct sbx_wire_config *c, struct sbx_agent_fail *f)
{
    if (!(c->flags & SBX_CFG_RANGE_MAP))
        return 0;
    if (setgroups(0, NULL) < 0 || setresgid(SBX_AGENT_UID, SBX_AGENT_UID, SBX_AGENT_UID) < 0 ||
        setresuid(SBX_AGENT_UID, SBX_AGENT_UID, SBX_AGENT_UID) < 0) {
        f->stage = "identity";
        f->errnum = errno;
        snprintf(f->detail, sizeof(f->detail), "uid %u", SBX_AGENT_UID);
        return -1;
    }
    return 0;
}

static int setup(int sock)
{
    struct sbx_agent_net net;
    int net_r = sbx_agent_net_begin(&net);
    struct sbx_wire_hdr h;
    unsigned char *p = NULL;
    int fds[SBX_WIRE_MAX_FDS];
    size_t n_fds = 0;
    struct sbx_agent_fail fail = {.stage = "config"};
    int r = sbx__wire_recv(sock, &h, &p, fds, SBX_WIRE_MAX_FDS, &n_fds);
    if (r < 0)
        return -1; /* host gone */
    if (net_r < 0) {
        fail.stage = "network_namespace";
        fail.errnum = -net_r;
        send_setup_error(sock, &fail);
        return -1;
    }
    struct sbx_wire_config c;
    if (h.type != SBX_MSG_CONFIG || sbx__wire_config_decode(p, h.len, &c) < 0) {
        fail.errnum = EBADMSG;
        snprintf(fail.detail, sizeof(fail.detail), "malformed CONFIG message");
        send_setup_error(sock, &fail);
        return -1;
    }
    free(p);
    r = take_identity(&c, &fail);
    /* The root is built as sandbox root (fsuid 0): /, /etc, /dev and /tmp belong to uid 0
     * inside, as tools expect, not to the agent's own id. */
    uid_t fsu = (uid_t)setfsuid(0);
    gid_t fsg = (gid_t)setfsgid(0);
    if (r == 0)
        r = sbx_agent_rootfs(&c, fds, n_fds, &fail);
    setfsuid(fsu);
    setfsgid(fsg);
    if (r == 0)
        r = sbx_agent_net_join(&net, &fail);
    else
        sbx_agent_net_end(&net);
    /* The Landlock ruleset for commands, from the finished mount table: built once here. */
    if (r == 0 && sbx_agent_landlock_prepare() < 0) {
        fail.stage = "landlock";
        fail.errnum = errno;
        snprintf(fail.detail, sizeof(fail.detail), "building the Landlock ruleset");
        r = -1;
    }
    for (size_t i = 0; i < n_fds; i++) {
        if (i == c.listen_fd_index && r == 0) {
            listen_fd = fds[i]; /* kept: other processes attach through it */
            if (listen(listen_fd, 64) < 0) {
                close(listen_fd);
                listen_fd = -1;
            }
            continue;
        }
        close(fds[i]);
    }
    sbx_agent_nproc = c.nproc;
    sbx_agent_nofile = c.nofile;
    sbx_agent_fsize = c.fsize;
    sbx_agent_filter = c.filter; /* kept for the life of the agent */
    sbx_agent_filter_len = c.filter_len;
    c.filter = NULL;
    int detached = (c.flags & SBX_CFG_DETACHED) != 0;
    may_zygote = (c.flags & SBX_CFG_ZYGOTE) && sbx_agent_filter_len;
    int range_mapped = (c.flags & SBX_CFG_RANGE_MAP) != 0;
    sbx__wire_config_clear(&c);
    if (r < 0) {
        send_setup_error(sock, &fail);
        return -1;
    }
    /* Unprivileged, commands share our uid: not dumpable, so they cannot ptrace the agent or
     * open /proc/1/fd, /proc/1/mem or /proc/1/exe. As root, our own id already stops that,
     * and staying dumpable keeps the files under /proc/1 ours: not dumpable hands them to uid 0
     * inside, letting a root command set PID 1's oom_score_adj or autogroup nice. */
    sbx_agent_dumpable = range_mapped;
    prctl(PR_SET_DUMPABLE, sbx_agent_dumpable, 0, 0, 0); /* uid changes reset it */
    /* READY says which Landlock ABI commands get (0: none), for the host to report. */
    struct sbx_wbuf rb = {0};
    sbx__wbuf_u32(&rb, sbx_agent_landlock_abi > 0 ? (uint32_t)sbx_agent_landlock_abi : 0);
    r = rb.failed ? -1 : sbx__wire_send(sock, SBX_MSG_READY, rb.data, rb.len, NULL, 0);
    sbx__wbuf_free(&rb);
    if (r < 0)
        return -1;
    return detached;
}

/* Reads one message from a control connection; returns -1 when the peer is gone. */
static int serve_main(int sock, int sfd)
{
    struct sbx_wire_hdr h;
    unsigned char *p = NULL;
    int fds[1];
    size_t n_fds = 0;
    int r = sbx__wire_recv(sock, &h, &p, fds, 1, &n_fds);
    if (r < 0)
        return -1;
    if (h.type == SBX_MSG_CONNECT && n_fds == 1) {
        struct sbx_rbuf rb = {.data = p, .len = h.len};
        uint32_t port = sbx__rbuf_u32(&rb);
        sbx_agent_port_connect(fds[0], rb.bad ? 0 : port);
        close(fds[0]);
        free(p);
        return 0;
    }
    free(p);
    if (h.type == SBX_MSG_OP_OPEN_CMD && n_fds == 1 && zygote_ready) {
        if (sbx__wire_send(zygote_fd, SBX_MSG_OP_OPEN, NULL, 0, fds, 1) == 0) {
            close(fds[0]);
            return 0;
        }
        zygote_gone(); /* gone or stuck: workers are forked here from now on */
    }
    if (h.type == SBX_MSG_OP_OPEN_CMD && may_zygote) {
        may_zygote = 0;
        want_zygote = 1; /* this command's worker is forked here; the next ones need not */
    }
    if ((h.type != SBX_MSG_OP_OPEN && h.type != SBX_MSG_OP_OPEN_CMD) || n_fds != 1) {
        for (size_t i = 0; i < n_fds; i++)
            close(fds[i]);
        return 0; /* ignore what we do not understand; the host times out */
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(sock);
        close(sfd);
        if (listen_fd >= 0)
            close(listen_fd);
        if (main_sock >= 0 && main_sock != sock)
            close(main_sock);
        if (zygote_fd >= 0)
            close(zygote_fd);
        for (size_t i = 0; i < n_conns; i++)
            if (conns[i] != sock)
                close(conns[i]);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        sbx_agent_serve_op(fds[0]);
    }
    close(fds[0]);
    return 0;
}

int main(void)
{
    int sock = SBX_AGENT_SOCK_FD;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

    sbx_agent_cap_last = sbx__cap_last();
    int detached = setup(sock);
    if (detached < 0)
        return 1;
    for (;;) {
        struct pollfd pf[4 + MAX_CONNS] = {{.fd = sock, .events = POLLIN},
                                           {.fd = sfd, .events = POLLIN},
                                           {.fd = listen_fd, .events = POLLIN},
                                           {.fd = zygote_ready ? -1 : zygote_fd,
                                            .events = POLLIN}};
        for (size_t i = 0; i < n_conns; i++)
            pf[4 + i] = (struct pollfd){.fd = conns[i], .events = POLLIN};
        /* The zygote is made once nothing else waits: the operations already queued (the one
         * command of `sbx run`) do not wait for it, and are served by workers forked here. */
        int n = poll(pf, 4 + n_conns, want_zygote ? 0 : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (n == 0 && want_zygote) {
            int keep_out[] = {sock, listen_fd, sfd};
            want_zygote = 0;
            zygote_fd = sbx_agent_zygote_start(keep_out, 3, &zygote_pid);
            continue;
        }
        if (pf[3].revents) {
            /* One byte once the zygote holds its restrictions; EOF if it died first. */
            char c;
            if (read(zygote_fd, &c, 1) == 1)
                zygote_ready = 1;
            else
                zygote_gone();
        }
        if (pf[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si))
                ;
            reap_all();
        }
        if (pf[0].revents && sock >= 0 && serve_main(sock, sfd) < 0) {
            close(sock);
            sock = main_sock = -1;
            if (!detached)
                return 0; /* PID 1 exits: the kernel kills the whole sandbox */
            /* Detached: keep reaping (poll ignores fd -1) until the host kills us. */
        }
        /* Connections of attached processes: served like the main socket; a closed one is
         * just dropped (the sandbox lives on). */
        for (size_t i = n_conns; i-- > 0;)
            if (pf[4 + i].revents && serve_main(conns[i], sfd) < 0) {
                close(conns[i]);
                conns[i] = conns[--n_conns];
            }
        if (pf[2].revents) {
            int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (c >= 0 && n_conns < MAX_CONNS)
                conns[n_conns++] = c;
            else if (c >= 0)
                close(c); /* full: the attaching process sees EOF and reports it */
        }
    }
}
