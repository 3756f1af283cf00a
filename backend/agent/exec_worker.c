/* exec_worker.c — serves one operation channel inside the sandbox.
 *
 * For EXEC, this worker process becomes a child subreaper, forks the command, reports
 * STARTED, then waits for either the command's exit (DONE) or a KILL / the channel closing
 * (the host's timeout or cancellation), in which case it kills the command and everything it
 * started before answering DONE with killed=1.
 *
 * The command's child side follows the hazard order of bubblewrap and crun: new session,
 * stdio, groups/gid/uid, capability drop (bounding set first: it needs CAP_SETPCAP),
 * no_new_privs, cwd, every other fd marked close-on-exec, the seccomp filter last, execve. A failure before execve is
 * written as {errno, stage} to a close-on-exec pipe, so the worker can tell "could not
 * start" from "started and exited 127".
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
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

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

__attribute__((noreturn)) static void child_fail(int pipe_fd, const char *stage)
{
    struct spawn_fail f = {.errnum = errno};
    snprintf(f.stage, sizeof(f.stage), "%s", stage);
    (void)!write(pipe_fd, &f, sizeof(f));
    _exit(127);
}

__attribute__((noreturn)) static void run_child(const struct sbx_wire_exec *x, const int *stdio,
                                                int pipe_fd, int cap_max)
{
    if (setsid() < 0)
        child_fail(pipe_fd, "setsid");
    for (int i = 0; i < 3; i++)
        if (dup2(stdio[i], i) < 0)
            child_fail(pipe_fd, "stdio");
    /* setgroups is "deny" in an unprivileged session's namespace: nothing to drop then. */
    if (setgroups(0, NULL) < 0 && errno != EPERM)
        child_fail(pipe_fd, "setgroups");
    if (drop_caps(cap_max) < 0)
        child_fail(pipe_fd, "capbset");
    if (setresgid(x->gid, x->gid, x->gid) < 0)
        child_fail(pipe_fd, "setgid");
    if (setresuid(x->uid, x->uid, x->uid) < 0)
        child_fail(pipe_fd, "setuid");
    if (clear_caps_now() < 0)
        child_fail(pipe_fd, "capset");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail(pipe_fd, "no_new_privs");
    if (chdir(x->cwd) < 0)
        child_fail(pipe_fd, "chdir");
    /* Every fd but 0-2 goes at execve, the error pipe included (it is O_CLOEXEC). */
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
        child_fail(pipe_fd, "close_range");
    /* Last, right before execve: nothing after this may need a call the filter refuses. */
    if (sbx_agent_filter_len) {
        struct sock_fprog prog = {.len = (unsigned short)(sbx_agent_filter_len / 8),
                                  .filter = (struct sock_filter *)sbx_agent_filter};
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
            child_fail(pipe_fd, "seccomp");
    }
    exec_search(x->argv, x->env);
    child_fail(pipe_fd, "execve");
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

    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    int cap_max = sbx__cap_last();
    int pfd[2];
    if (sfd < 0 || pipe2(pfd, O_CLOEXEC) < 0) {
        uint32_t v[1] = {(uint32_t)errno};
        send_u32s(chan, SBX_MSG_EXEC_SPAWN_ERROR, v, 1);
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(pfd[0]);
        run_child(&x, stdio, pfd[1], cap_max);
    }
    close(pfd[1]);
    for (size_t i = 0; i < n_fds; i++)
        close(fds[i]);
    if (devnull >= 0)
        close(devnull);
    if (pid < 0) {
        uint32_t v[1] = {(uint32_t)errno};
        send_u32s(chan, SBX_MSG_EXEC_SPAWN_ERROR, v, 1);
        return;
    }
    struct spawn_fail f;
    ssize_t n;
    do {
        n = read(pfd[0], &f, sizeof(f));
    } while (n < 0 && errno == EINTR);
    close(pfd[0]);
    if (n == (ssize_t)sizeof(f)) {
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
        else if (h.type == SBX_MSG_PING)
            sbx__wire_send(chan, SBX_MSG_PONG, NULL, 0, NULL, 0);
    }
    _exit(0);
}
