/* ns_attach.c — sandboxes that outlive the process that made them.
 *
 * The creator binds a Unix socket (the control socket) and hands the listening end to the
 * agent with CONFIG; the agent accepts connections on it and serves each one exactly like its
 * main socket (OP_OPEN per operation). Another process attaches by connecting: it must be
 * able to reach the socket, which sits in a 0700 state directory and is itself 0600, and it
 * checks that the peer really is the agent it was told about (SO_PEERCRED pid), so a stale
 * state file whose pid was reused cannot point it at a stranger.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "ns.h"

static int fill_addr(const char *path, struct sockaddr_un *a, sbx_error **err)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path))
        return sbx_err(err, SBX_EINVAL, ENAMETOOLONG, "start",
                       "control socket path is too long (max %zu bytes): %s",
                       sizeof(a->sun_path) - 1, path);
    memcpy(a->sun_path, path, strlen(path) + 1);
    return 0;
}

int sbx__ns_listen(const char *path, sbx_error **err)
{
    struct sockaddr_un a;
    int r = fill_addr(path, &a, err);
    if (r < 0)
        return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "socket");
    unlink(path); /* a stale socket of a sandbox that is gone */
    /* Bound here, listened on by the agent: a connection's SO_PEERCRED is whoever called
     * listen(), and attaching processes check that it is the agent. */
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || chmod(path, 0600) < 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return sbx_err(err, SBX_EBACKEND, e, "start", "cannot listen on the control socket %s",
                       path);
    }
    return fd;
}

int sbx__ns_attach(const char *path, pid_t agent_pid, const char *id, struct sbx_sandbox **out,
                   sbx_error **err)
{
    *out = NULL;
    struct sockaddr_un a;
    int r = fill_addr(path, &a, err);
    if (r < 0)
        return r;
    int pidfd = (int)syscall(SYS_pidfd_open, agent_pid, 0);
    if (pidfd < 0)
        return sbx_err(err, SBX_ESTATE, errno, "attach",
                       "the sandbox's agent (pid %d) is gone", (int)agent_pid);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        close(pidfd);
        return sbx_err(err, SBX_ESTATE, e, "attach", "cannot connect to the sandbox at %s",
                       path);
    }
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid != agent_pid) {
        close(fd);
        close(pidfd);
        return sbx_err(err, SBX_ESTATE, 0, "attach",
                       "the process behind %s is not the sandbox's agent (pid %d)", path,
                       (int)agent_pid);
    }
    struct sbx_sandbox *sb = calloc(1, sizeof(*sb));
    if (!sb || !(sb->id = strdup(id ? id : ""))) {
        free(sb);
        close(fd);
        close(pidfd);
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "attach", "out of memory");
    }
    struct sbx_backend_ids ids;
    sbx__ns_ids(&ids);
    sb->pid = agent_pid;
    sb->pidfd = pidfd;
    sb->sock = fd;
    sb->attached = 1;
    sb->range_mapped = ids.range_mapped;
    /* Its cgroups, found from the agent itself: whoever ends the sandbox removes them. */
    sb->cg = id ? sbx__cg_of_pid(agent_pid, id) : NULL;
    sb->landlock_abi = -1; /* not ours to know: READY went to the creator */
    pthread_mutex_init(&sb->lock, NULL);
    sbx__ns_sock_timeouts(fd);
    *out = sb;
    return 0;
}

void sbx__ns_detach(struct sbx_sandbox *sb)
{
    if (!sb)
        return;
    sbx__ns_net_stop(sb); /* the proxy listener inside goes with this process's channel */
    sbx__cg_free(sb->cg); /* the sandbox lives on, and so do its cgroups */
    close(sb->sock);
    close(sb->pidfd);
    pthread_mutex_destroy(&sb->lock);
    free(sb->id);
    free(sb);
}

void sbx__ns_wait_gone(struct sbx_sandbox *sb)
{
    /* The pidfd polls readable once the agent has exited. PID 1 of a pid namespace exits
     * only after every other process in it is gone (the kernel kills and waits for them
     * first), and its namespaces are released before it becomes a zombie: nothing of the
     * sandbox is left then, whenever its parent gets around to reaping it. Bounded: 10 s. */
    struct pollfd pf = {.fd = sb->pidfd, .events = POLLIN};
    poll(&pf, 1, 10000);
    /* If it is our own child after all (this process made it, disowned it and attached
     * again), reap it here; otherwise waitid fails with ECHILD. */
    siginfo_t si;
    waitid(P_PIDFD, (id_t)sb->pidfd, &si, WEXITED | WNOHANG | __WALL);
}
