/* agent.h — internals of sbx-agent, the static helper that is PID 1 of every sandbox.
 * libc only: it is linked statically and must start in well under a millisecond. */
#ifndef SBX_AGENT_H
#define SBX_AGENT_H

#include <sys/types.h>

#include "wire_msgs.h"

/* The host hands the agent its main socket as fd 3. */
#define SBX_AGENT_SOCK_FD 3

/* Where a failed setup step is reported: the step's name and errno go to the host. */
struct sbx_agent_fail {
    const char *stage;
    char detail[600];
    int errnum;
};

/* Assembles the sandbox root and pivots into it (rootfs.c). fds[] are the CONFIG fds.
 * Returns 0, or -1 with *fail filled. */
int sbx_agent_rootfs(const struct sbx_wire_config *c, const int *fds, size_t n_fds,
                     struct sbx_agent_fail *fail);

/* Pieces of the root (rootfs_dev.c): /dev, and the generated /etc files. `newroot` is the
 * new root's path before pivot_root. */
int sbx_agent_make_dev(const char *newroot, const struct sbx_wire_config *c,
                       struct sbx_agent_fail *fail);
/* Mount options for a sandbox-writable tmpfs: `base` plus the configured size (static). */
const char *sbx_agent_tmpfs_opts(const struct sbx_wire_config *c, const char *base);
int sbx_agent_make_etc(const char *newroot, const struct sbx_wire_config *c,
                       struct sbx_agent_fail *fail);

/* The network namespace (netns.c): begin clones a helper into a new one that brings lo up;
 * join waits for it and moves the agent in; end releases the helper (join calls it). */
struct sbx_agent_net {
    int pidfd, status_fd, release_fd;
};
int sbx_agent_net_begin(struct sbx_agent_net *n);
int sbx_agent_net_join(struct sbx_agent_net *n, struct sbx_agent_fail *fail);
void sbx_agent_net_end(struct sbx_agent_net *n);

/* The seccomp program every command loads before execve (from CONFIG; empty: none). */
extern unsigned char *sbx_agent_filter;
extern uint32_t sbx_agent_filter_len;
/* The kernel's highest capability number, read once at start (every exec drops them all). */
extern int sbx_agent_cap_last;
/* RLIMIT_NPROC for commands (from CONFIG). */
extern uint32_t sbx_agent_nproc;
/* RLIMIT_NOFILE (0: inherited) and RLIMIT_FSIZE (0: unlimited) for commands. */
extern uint32_t sbx_agent_nofile;
extern uint64_t sbx_agent_fsize;
/* Root callers: the agent has its own id and stays dumpable (see agent_main.c). */
extern int sbx_agent_dumpable;

/* Restricts the calling process with Landlock (landlock.c): read and execute anywhere, write
 * only beneath /tmp, /dev/shm, /dev/pts, /dev/{null,zero,tty} and the read-write mounts.
 * Needs no_new_privs. Returns 0 (also when the kernel has no Landlock), or -1 with errno.
 * sbx_agent_landlock_abi records what was found: the ABI, 0 for none, -1 not probed yet. */
int sbx_agent_landlock(void);
/* Builds the ruleset once, after the root is assembled, so each command only restricts
 * itself with it. 0 (also without Landlock) or -1. */
int sbx_agent_landlock_prepare(void);
extern int sbx_agent_landlock_abi;

/* Connects to `port` on the sandbox's loopback and answers CONNECTED on `reply` with the
 * socket (port_connect.c). Never blocks. */
void sbx_agent_port_connect(int reply, uint32_t port);

/* Serves PROXY_LISTEN: listens on the sandbox's loopback and passes each connection to the
 * host until the host closes the channel (proxy_listen.c). */
void sbx_agent_serve_proxy(int chan, const unsigned char *p, size_t len);

/* zygote.c: forks the parent of command workers, which holds no_new_privs, the Landlock
 * domain and the seccomp filter once for all commands; returns the socket to hand it
 * channels on (-1 with errno), its pid in *pid. close_fds are closed in it. Workers it forks
 * have sbx_agent_prefiltered set: their commands skip those three steps. */
int sbx_agent_zygote_start(const int *close_fds, size_t n_close, pid_t *pid);
extern int sbx_agent_prefiltered;

/* Serves one operation channel in a forked worker (exec_worker.c); never returns. */
__attribute__((noreturn)) void sbx_agent_serve_op(int chan);

/* Spawns x with stdio (a session leader; with ctty, stdio[0] becomes its controlling
 * terminal), reports STARTED or SPAWN_ERROR on chan, then supervises it until DONE
 * (exec_worker.c). `owned` fds are closed once the command holds its copies. */
void sbx_agent_exec_run(int chan, const struct sbx_wire_exec *x, const int stdio[3], int ctty,
                        const int *owned, size_t n_owned);
/* Serves a PTY message: a terminal from the sandbox's devpts, its master sent to the host
 * (pty_worker.c). */
void sbx_agent_serve_pty(int chan, const unsigned char *p, size_t len, int *fds, size_t n_fds);

/* Kills `root`'s whole subtree of descendants, which this process (a child subreaper)
 * contains, and reaps what it can (proctree.c). Records the exit status of `main_pid` in
 * *main_status if it is reaped here (and sets *main_reaped). */
void sbx_agent_kill_tree(pid_t main_pid, int *main_status, int *main_reaped);

#endif
