/* ns_backend.c — the namespace backend's ops table: start, exec, liveness, teardown. */
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "cgroup.h"
#include "ns.h"

static int ns_alive(struct sbx_sandbox *sb)
{
    pthread_mutex_lock(&sb->lock);
    int alive = !sb->dead;
    if (alive) {
        /* A pidfd polls readable once the process has exited. */
        struct pollfd pf = {.fd = sb->pidfd, .events = POLLIN};
        alive = poll(&pf, 1, 0) == 0;
    }
    pthread_mutex_unlock(&sb->lock);
    return alive;
}

static pid_t ns_agent_pid(const struct sbx_sandbox *sb)
{
    return sb->pid;
}

static int ns_landlock_abi(const struct sbx_sandbox *sb)
{
    return sb->landlock_abi;
}

/* Sends the kill and returns at once: the teardown runs on while the caller does other
 * cleanup (removing a temporary workspace, say); destroy() waits for it. */
static void ns_kill(struct sbx_sandbox *sb)
{
    sbx__ns_net_stop(sb);
    sbx__ns_veth_stop(sb);
    pthread_mutex_lock(&sb->lock);
    if (sb->sock >= 0)
        close(sb->sock);
    sb->sock = -1;
    if (!sb->dead)
        syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0);
    pthread_mutex_unlock(&sb->lock);
}

static int ns_destroy(struct sbx_sandbox *sb, sbx_error **err)
{
    (void)err;
    ns_kill(sb);
    /* Killing PID 1 makes the kernel kill every other process of the pid namespace, and the
     * agent is only reaped once they are all gone; the mount namespace, and every mount in
     * it, goes with its last process. */
    pthread_mutex_lock(&sb->lock);
    if (!sb->dead)
        sbx__ns_kill_and_reap(sb);
    pthread_mutex_unlock(&sb->lock);
    /* After the agent: every process of the sandbox is gone, so the cgroups can go. */
    sbx__cg_remove(sb->cg);
    close(sb->pidfd);
    pthread_mutex_destroy(&sb->lock);
    free(sb->id);
    free(sb);
    return 0;
}

const struct sbx_backend_ops sbx__ns_backend_ops = {
    .name = "namespaces",
    .ids = sbx__ns_ids,
    .start = sbx__ns_start,
    .start_begin = sbx__ns_start_begin,
    .start_wait = sbx__ns_start_wait,
    .seccomp_compile = sbx__seccomp_compile,
    .exec = sbx__ns_exec,
    .alive = ns_alive,
    .kill = ns_kill,
    .agent_pid = ns_agent_pid,
    .destroy = ns_destroy,
    .attach = sbx__ns_attach,
    .detach = sbx__ns_detach,
    .file = sbx__ns_file,
    .walk = sbx__ns_walk,
    .put_begin = sbx__ns_put_begin,
    .put_member = sbx__ns_put_member,
    .put_data = sbx__ns_put_data,
    .put_file_end = sbx__ns_put_file_end,
    .put_end = sbx__ns_put_end,
    .pty_start = sbx__ns_pty_start,
    .pty_write = sbx__ns_pty_write,
    .pty_read = sbx__ns_pty_read,
    .pty_wait = sbx__ns_pty_wait,
    .pty_status = sbx__ns_pty_status,
    .pty_resize = sbx__ns_pty_resize,
    .pty_free = sbx__ns_pty_free,
    .pty_kill = sbx__ns_pty_kill,
    .connect = sbx__ns_connect,
    .net_serve = sbx__ns_net_serve,
    .net_check = sbx__ns_net_check,
    .landlock_abi = ns_landlock_abi,
};

void sbx__ns_sock_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}
