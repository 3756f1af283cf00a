/* exec_worker.c — serves one operation channel inside the sandbox.
 *
 * For EXEC, this worker process becomes a child subreaper, forks the command, reports
 * STARTED, then waits for either the command's exit (DONE) or a KILL / the channel closing
 * (the host's timeout or cancellation), in which case it kills the command and everything it
 * started before answering DONE with killed=1.
 *
 * The command's child side follows the hazard order of bubblewrap and crun: new session,
 * stdio, groups/gid/uid, capability drop (bounding set first: it needs CAP_SETPCAP),
 * no_new_privs, cwd, every other fd marked close-on-exec, Landlock, the seccomp filter last,
 * execve. A failure before execve is written as {errno, stage} to a close-on-exec pipe, so
 * the worker can tell "could not start" from "started and exited 127".
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "file_ops.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

struct spawn_fail {
    int32_t errnum;
    char stage[28];
};

/* Empties every capability set. Called while still uid 0 in the namespace. */
static int drop_caps(int cap_max)
{
    for (int c = 0; c <= cap_max; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return -1;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -1;
    return 0;
}

static int clear_caps_now(void)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    return (int)syscall(SYS_capset, &h, d);
}

static const char *env_get(char **env, const char *key)
{
    size_t k = strlen(key);
    for (size_t i = 0; env && env[i]; i++)
        if (strncmp(env[i], key, k) == 0 && env[i][k] == '=')
            return env[i] + k + 1;
    return NULL;
}

/* execvpe() with the PATH of the command's own environment (glibc's uses the caller's). */
static void exec_search(char **argv, char **env)
{
    if (strchr(argv[0], '/')) {
        execve(argv[0], argv, env);
        return;
    }
    const char *path = env_get(env, "PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int saw_eacces = 0;
    char buf[4096];
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        int n = snprintf(buf, sizeof(buf), "%.*s%s%s", (int)dl, p, dl ? "/" : "", argv[0]);
        if (n > 0 && (size_t)n < sizeof(buf)) {
            execve(buf, argv, env);
            if (errno == EACCES)
                saw_eacces = 1;
            else if (errno != ENOENT && errno != ENOTDIR)
                return;
        }
        if (!end)
            break;
        p = end;
    }
    errno = saw_eacces ? EACCES : ENOENT;
}

/* What the command's child shares with the worker (CLONE_VM): its inputs, and the reason
 * it could not exec. The worker is suspended until the child has exec'd or died
 * (CLONE_VFORK), so there is no race on `fail`. */
struct spawn_ctx {
    const struct sbx_wire_exec *x;
    const int *stdio;
    int cap_max;
    const sigset_t *mask;
    int ctty; /* stdio[0] is a terminal to make the controlling one (pty_worker.c) */
    int failed;
    struct spawn_fail fail;
};

__attribute__((noreturn)) static void child_fail(struct spawn_ctx *ctx, const char *stage)
{
    ctx->fail.errnum = errno;
    snprintf(ctx->fail.stage, sizeof(ctx->fail.stage), "%s", stage);
    ctx->failed = 1;
    _exit(127);
}

__attribute__((noreturn)) static void run_child(struct spawn_ctx *ctx)
{
    const struct sbx_wire_exec *x = ctx->x;
    const int *stdio = ctx->stdio;
    int cap_max = ctx->cap_max;
    sigprocmask(SIG_SETMASK, ctx->mask, NULL);
    if (setsid() < 0)
        child_fail(ctx, "setsid");
    for (int i = 0; i < 3; i++)
        if (dup2(stdio[i], i) < 0)
            child_fail(ctx, "stdio");
    /* A PTY child: the slave becomes the controlling terminal of its new session, and ^C/^\
     * must interrupt it even when the agent ignores those signals (ignored dispositions
     * survive execve). */
    if (ctx->ctty) {
        if (ioctl(0, TIOCSCTTY, 0) < 0)
            child_fail(ctx, "ctty");
        signal(SIGINT, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
    }
    /* setgroups is "deny" in an unprivileged session's namespace: nothing to drop then. */
    if (setgroups(0, NULL) < 0 && errno != EPERM)
        child_fail(ctx, "setgroups");
    if (drop_caps(cap_max) < 0)
        child_fail(ctx, "capbset");
    /* No core dumps (they would land in the workspace, and can hold secrets), and a cap on
     * the sandbox user's processes: RLIMIT_NPROC is counted per user namespace, so it bounds
     * a fork bomb across all commands of the session while the agent (its own id) can still
     * fork. A second line behind a pids cgroup. */
    struct rlimit no_core = {0, 0};
    struct rlimit nproc = {sbx_agent_nproc, sbx_agent_nproc};
    struct rlimit nofile = {sbx_agent_nofile, sbx_agent_nofile};
    struct rlimit fsize = {sbx_agent_fsize, sbx_agent_fsize};
    if (setrlimit(RLIMIT_CORE, &no_core) < 0 ||
        (sbx_agent_nproc && setrlimit(RLIMIT_NPROC, &nproc) < 0) ||
        (sbx_agent_nofile && setrlimit(RLIMIT_NOFILE, &nofile) < 0) ||
        (sbx_agent_fsize && setrlimit(RLIMIT_FSIZE, &fsize) < 0))
        child_fail(ctx, "rlimit");
    if (setresgid(x->gid, x->gid, x->gid) < 0)
        child_fail(ctx, "setgid");
    if (setresuid(x->uid, x->uid, x->uid) < 0)
        child_fail(ctx, "setuid");
    /* The uid change made the memory we share with the worker dumpable as fs.suid_dumpable
     * says; keep it closed to other commands until execve gives us our own. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (clear_caps_now() < 0)
        child_fail(ctx, "capset");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail(ctx, "no_new_privs");
    if (chdir(x->cwd) < 0)
        child_fail(ctx, "chdir");
    /* Every fd but 0-2 goes at execve. */
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
        child_fail(ctx, "close_range");
    /* Landlock before the filter, which need not allow its calls. A worker of the zygote
     * (zygote.c) has both already, inherited by this child. */
    if (!sbx_agent_prefiltered && sbx_agent_landlock() < 0)
        child_fail(ctx, "landlock");
    /* Last, right before execve: nothing after this may need a call the filter refuses. */
    if (sbx_agent_filter_len && !sbx_agent_prefiltered) {
        if (sbx_agent_filter_len % 8 || sbx_agent_filter_len / 8 > 4096) {
            errno = EINVAL;
            child_fail(ctx, "seccomp");
        }
        struct sock_fprog prog = {.len = (unsigned short)(sbx_agent_filter_len / 8),
                                  .filter = (struct sock_filter *)sbx_agent_filter};
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
            child_fail(ctx, "seccomp");
    }
    exec_search(x->argv, x->env);
    child_fail(ctx, "execve");
}

static void send_u32s(int chan, uint32_t type, const uint32_t *v, size_t n)
{
    struct sbx_wbuf b = {0};
    for (size_t i = 0; i < n; i++)
        sbx__wbuf_u32(&b, v[i]);
    if (!b.failed)
        sbx__wire_send(chan, type, b.data, b.len, NULL, 0);
    sbx__wbuf_free(&b);
}

static void send_done(int chan, int status, int killed)
{
    uint32_t v[3];
    if (WIFSIGNALED(status)) {
        v[0] = 1;
        v[1] = (uint32_t)WTERMSIG(status);
    } else {
        v[0] = 0;
        v[1] = (uint32_t)WEXITSTATUS(status);
    }
    v[2] = (uint32_t)killed;
    send_u32s(chan, SBX_MSG_EXEC_DONE, v, 3);
}

/* Waits for the command while watching the channel for KILL or hang-up. */
static void supervise(int chan, pid_t pid, int sfd)
{
    int status = 0, reaped = 0, killed = 0;
    while (!reaped) {
        struct pollfd pf[2] = {{.fd = chan, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            /* Cannot wait any more: do not report a live command as exited. */
            sbx_agent_kill_tree(pid, &status, &reaped);
            killed = 1;
            if (!reaped && waitpid(pid, &status, __WALL) == pid)
                reaped = 1;
            break;
        }
        if (pf[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si))
                ;
            int st;
            pid_t p;
            while ((p = waitpid(-1, &st, WNOHANG | __WALL)) > 0)
                if (p == pid) {
                    status = st;
                    reaped = 1;
                }
        }
        if (!reaped && pf[0].revents) {
            struct sbx_wire_hdr h;
            unsigned char *p = NULL;
            int r = sbx__wire_recv(chan, &h, &p, NULL, 0, NULL);
            free(p);
            if (r < 0 || h.type == SBX_MSG_KILL) {
                sbx_agent_kill_tree(pid, &status, &reaped);
                killed = 1;
                if (!reaped && waitpid(pid, &status, __WALL) == pid)
                    reaped = 1;
            }
        }
    }
    send_done(chan, status, killed);
}

static int child_entry(void *arg)
{
    run_child(arg);
}

/* Starts the command like posix_spawn: its own small stack, the worker's memory shared and
 * the worker suspended until execve (no page-table copy, no error pipe). */
static pid_t spawn(struct spawn_ctx *ctx)
{
    size_t len = 256 * 1024;
    void *stack = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    pid_t pid = clone(child_entry, (char *)stack + len, CLONE_VM | CLONE_VFORK | SIGCHLD, ctx);
    int e = errno;
    munmap(stack, len);
    errno = e;
    return pid;
}

static void close_all(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

void sbx_agent_exec_run(int chan, const struct sbx_wire_exec *x, const int stdio[3], int ctty,
                        const int *owned, size_t n_owned)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        uint32_t v[1] = {(uint32_t)errno};
        close_all(owned, n_owned);
        send_u32s(chan, SBX_MSG_EXEC_SPAWN_ERROR, v, 1);
        return;
    }
    struct spawn_ctx ctx = {
        .x = x, .stdio = stdio, .cap_max = sbx_agent_cap_last, .mask = &old, .ctty = ctty};
    pid_t pid = spawn(&ctx);
    int spawn_errno = errno;
    /* The child's uid change reset the dumpable flag of the memory it shared with us; as the
     * agent's own id, we stay dumpable so /proc/<worker> stays ours, not uid 0's inside. */
    prctl(PR_SET_DUMPABLE, sbx_agent_dumpable, 0, 0, 0);
    /* The host sees EOF (or EIO on a PTY master) only once the last copy of the command's
     * stdio outside the command is gone. */
    close_all(owned, n_owned);
    if (pid < 0) {
        uint32_t v[1] = {(uint32_t)spawn_errno};
        send_u32s(chan, SBX_MSG_EXEC_SPAWN_ERROR, v, 1);
        return;
    }
    if (ctx.failed) {
        struct spawn_fail f = ctx.fail;
        waitpid(pid, NULL, __WALL);
        struct sbx_wbuf b = {0};
        sbx__wbuf_u32(&b, (uint32_t)f.errnum);
        f.stage[sizeof(f.stage) - 1] = '\0';
        sbx__wbuf_str(&b, f.stage);
        if (!b.failed)
            sbx__wire_send(chan, SBX_MSG_EXEC_SPAWN_ERROR, b.data, b.len, NULL, 0);
        sbx__wbuf_free(&b);
        return;
    }
    uint32_t v[1] = {(uint32_t)pid};
    send_u32s(chan, SBX_MSG_EXEC_STARTED, v, 1);
    supervise(chan, pid, sfd);
}

static void serve_exec(int chan, const unsigned char *p, size_t len, int *fds, size_t n_fds)
{
    struct sbx_wire_exec x;
    if (sbx__wire_exec_decode(p, len, &x) < 0 || n_fds < 2) {
        uint32_t v[1] = {EBADMSG};
        send_u32s(chan, SBX_MSG_EXEC_SPAWN_ERROR, v, 1);
        return;
    }
    int stdio[3];
    size_t k = 0;
    int devnull = -1;
    if ((x.flags & SBX_EXECF_STDIN) && n_fds >= 3) {
        stdio[0] = fds[k++];
    } else {
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        stdio[0] = devnull;
    }
    stdio[1] = fds[k++];
    stdio[2] = fds[k++];
    sbx_agent_exec_run(chan, &x, stdio, 0, fds, n_fds);
    if (devnull >= 0)
        close(devnull);
    sbx__wire_exec_clear(&x);
}

void sbx_agent_serve_op(int chan)
{
    struct sbx_wire_hdr h;
    unsigned char *p = NULL;
    int fds[4];
    size_t n_fds = 0;
    if (sbx__wire_recv(chan, &h, &p, fds, 4, &n_fds) == 0) {
        if (h.type == SBX_MSG_EXEC)
            serve_exec(chan, p, h.len, fds, n_fds);
        else if (h.type == SBX_MSG_PTY)
            sbx_agent_serve_pty(chan, p, h.len, fds, n_fds);
        else if (h.type == SBX_MSG_FILE)
            sbx_agent_serve_file(chan, p, h.len, fds, n_fds);
        else if (h.type == SBX_MSG_PROXY_LISTEN)
            sbx_agent_serve_proxy(chan, p, h.len);
    }
    _exit(0);
}
