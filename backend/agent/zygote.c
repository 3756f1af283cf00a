/* zygote.c — the parent of command workers, which carries the commands' restrictions once.
 *
 * Every command loads the same Landlock domain and seccomp filter before execve, and on this
 * kind of machine attaching a filter costs 0.1-0.2 ms (the kernel converts and JIT-compiles
 * it and builds its per-syscall cache) and Landlock more on top: paid by every command.
 * Both are inherited across fork. So at the end of setup the agent forks the zygote, which
 * sets no_new_privs, restricts itself with the session's Landlock ruleset and loads the
 * filter once, then says it is ready; from then on the agent hands it the channels of EXEC
 * and PTY operations (OP_OPEN_CMD), and it forks their workers, whose commands inherit both
 * and skip them. The agent makes it after the first command, once nothing is queued: that
 * command never waits for it, and a session that runs no command (an idle one) never pays
 * its memory (about 90 KiB: a process with its page tables, filter and Landlock domain).
 *
 * Only with the built-in policies (SBX_CFG_ZYGOTE): the worker and the command's set-up
 * (fork, set*id, capset, prctl, setrlimit, chdir, close_range, execve) then run under the
 * filter, which allows all of them; a user's policy might not. File workers never come from
 * here: they need calls the filter refuses (openat2) and write outside Landlock's list.
 *
 * If the zygote is gone (an unprivileged session's commands share its uid and may kill it),
 * the agent forks workers itself again, and their commands load both as before.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

int sbx_agent_prefiltered;

__attribute__((noreturn)) static void zygote_main(int sock)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sbx_agent_landlock() < 0)
        _exit(1);
    struct sock_fprog prog = {.len = (unsigned short)(sbx_agent_filter_len / 8),
                              .filter = (struct sock_filter *)sbx_agent_filter};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        _exit(1);
    if (write(sock, "R", 1) != 1) /* ready: the agent may hand over channels */
        _exit(1);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK); /* SIGCHLD is blocked */
    for (;;) {
        struct pollfd pf[2] = {{.fd = sock, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        if (pf[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == sizeof(si))
                ;
            while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        }
        if (!pf[0].revents)
            continue;
        struct sbx_wire_hdr h;
        unsigned char *p = NULL;
        int chan = -1;
        size_t n = 0;
        int r = sbx__wire_recv(sock, &h, &p, &chan, 1, &n);
        free(p);
        if (r < 0)
            _exit(0); /* the agent is gone */
        if (n != 1)
            continue;
        if (fork() == 0) {
            close(sock);
            close(sfd);
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            sbx_agent_prefiltered = 1;
            sbx_agent_serve_op(chan);
        }
        close(chan);
    }
}

int sbx_agent_zygote_start(const int *close_fds, size_t n_close, pid_t *pid_out)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(sp[0]);
        close(sp[1]);
        return -1;
    }
    if (pid == 0) {
        close(sp[0]);
        for (size_t i = 0; i < n_close; i++)
            if (close_fds[i] >= 0)
                close(close_fds[i]);
        zygote_main(sp[1]);
    }
    close(sp[1]);
    /* The agent never waits on it: a zygote that stops reading makes sends fail, and the
     * agent then forks the worker itself. */
    fcntl(sp[0], F_SETFL, O_NONBLOCK);
    *pid_out = pid;
    return sp[0];
}
