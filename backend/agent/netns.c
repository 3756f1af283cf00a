/* netns.c — the sandbox's network namespace, made in parallel with the root filesystem.
 *
 * Creating a network namespace is the most expensive part of starting a sandbox (about
 * 0.7 ms here, mostly per-namespace protocol setup), about as long as assembling the whole
 * root. So the host's clone3() leaves CLONE_NEWNET out and the agent, first thing, forks a
 * helper that unshares a new network namespace (owned by the sandbox's user namespace,
 * exactly as if clone3 had made it) and brings loopback up, while the agent builds the root
 * on the other CPU. Before reporting READY the agent joins that namespace with setns(pidfd), so the agent
 * and every command run in it, and the helper exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"

/* A plain SIOCSIFFLAGS ioctl: the static agent carries no netlink library for one flag. */
static int lo_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        r = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(fd);
    return r < 0 ? -e : 0;
}

int sbx_agent_net_begin(struct sbx_agent_net *n)
{
    int st[2], rel[2];
    n->pidfd = n->status_fd = n->release_fd = -1;
    if (pipe2(st, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(rel, O_CLOEXEC) < 0) {
        int e = errno;
        close(st[0]);
        close(st[1]);
        return -e;
    }
    int pidfd = -1;
    /* The namespace is made by unshare() in the child, not by clone3(CLONE_NEWNET): clone3
     * would build it in our own context and we would wait for it after all. */
    struct clone_args ca = {.flags = CLONE_PIDFD,
                            .pidfd = (uint64_t)(uintptr_t)&pidfd,
                            .exit_signal = SIGCHLD};
    long pid = syscall(SYS_clone3, &ca, sizeof(ca));
    if (pid == 0) {
        close(st[0]);
        close(rel[1]);
        int32_t r = unshare(CLONE_NEWNET) < 0 ? -errno : lo_up();
        (void)!write(st[1], &r, sizeof(r));
        char c;
        (void)!read(rel[0], &c, 1); /* stay until the agent has joined */
        _exit(0);
    }
    int e = errno;
    close(st[1]);
    close(rel[0]);
    if (pid < 0) {
        close(st[0]);
        close(rel[1]);
        return -e;
    }
    n->pidfd = pidfd;
    n->status_fd = st[0];
    n->release_fd = rel[1];
    return 0;
}

int sbx_agent_net_join(struct sbx_agent_net *n, struct sbx_agent_fail *f)
{
    int32_t r = -EPIPE;
    ssize_t k;
    do {
        k = read(n->status_fd, &r, sizeof(r));
    } while (k < 0 && errno == EINTR);
    if (k != (ssize_t)sizeof(r))
        r = -EPIPE;
    if (r == 0 && setns(n->pidfd, CLONE_NEWNET) < 0)
        r = -errno;
    sbx_agent_net_end(n);
    if (r < 0) {
        f->stage = "network_namespace";
        f->errnum = -r;
        snprintf(f->detail, sizeof(f->detail), "lo");
        return -1;
    }
    return 0;
}

void sbx_agent_net_end(struct sbx_agent_net *n)
{
    int *fds[] = {&n->status_fd, &n->release_fd, &n->pidfd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}
