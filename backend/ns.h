/* ns.h — the namespace backend's private state. */
#ifndef SBX_NS_H
#define SBX_NS_H

#include <pthread.h>
#include <sys/types.h>

#include "backend_ops.h"
#include "error_internal.h"
#include "util.h"

struct sbx_sandbox {
    pid_t pid;   /* agent, host pid */
    int pidfd;   /* agent, from CLONE_PIDFD */
    int sock;    /* main control socket */
    int range_mapped;
    int dead;    /* agent reaped */
    int attached; /* connected to another process's sandbox: not our child */
    struct sbx_cgroup *cg; /* the session's cgroups (limits), or NULL */
    struct sbx_ns_net *net; /* this process's egress proxy for the sandbox (ns_net.c), or NULL */
    struct sbx_veth *veth;  /* the veth pair this process made (ns_net.c), or NULL */
    int landlock_abi;       /* what READY said commands get (0: none); -1: unknown */
    pthread_mutex_t lock; /* serialises writes on sock and reaping */
    char *id;
};

/* ns_clone.c: start = start_begin (clone, maps, CONFIG sent) + start_wait (READY). On a
 * start_wait failure the sandbox is freed. */
int sbx__ns_start(const struct sbx_backend_config *c, struct sbx_sandbox **out,
                  sbx_error **err);
int sbx__ns_start_begin(const struct sbx_backend_config *c, struct sbx_sandbox **out,
                        sbx_error **err);
int sbx__ns_start_wait(struct sbx_sandbox *sb, sbx_error **err);

/* clone_stack.c: clone3 with the child running fn(arg) on ca->stack. Returns the pid, or -1
 * with errno. */
struct clone_args;
long sbx__clone3_on_stack(struct clone_args *ca, int (*fn)(void *), void *arg);

/* Kills the agent (and with it the whole pid namespace) and reaps it. */
void sbx__ns_kill_and_reap(struct sbx_sandbox *sb);

/* fd number of the main socket in the agent. */
#define SBX_AGENT_SOCK_FD 3

/* ns_exec.c */
int sbx__ns_exec(struct sbx_sandbox *sb, const struct sbx_backend_exec *x,
                 struct sbx_backend_exec_out *out, sbx_error **err);
/* Bounds blocking reads and writes on a socket whose peer is the agent: the agent runs inside
 * the sandbox, and a stuck (or subverted) one must not hang the host forever. */
void sbx__ns_sock_timeouts(int fd);
/* Opens a new operation channel to the agent; returns the host end or -errno. The _cmd form
 * is for EXEC and PTY operations, which the agent may serve from its zygote. */
int sbx__ns_open_channel(struct sbx_sandbox *sb);
int sbx__ns_open_cmd_channel(struct sbx_sandbox *sb);

/* ns_connect.c: a connected, non-blocking TCP socket to `port` on the sandbox's loopback in
 * *fd, or *fd = -1 and the connect's errno in *errnum (ECONNREFUSED: nothing listens). An
 * error when the sandbox could not be asked. */
int sbx__ns_connect(struct sbx_sandbox *sb, unsigned port, int *fd, int *errnum,
                    sbx_error **err);

/* ns_net.c: the egress proxy (net_serve); stop ends it (kill, destroy, detach call it). */
int sbx__ns_net_serve(struct sbx_sandbox *sb, const struct sbx_backend_net *n, sbx_error **err);
int sbx__ns_net_check(const struct sbx_backend_net *n, sbx_error **err);
void sbx__ns_net_stop(struct sbx_sandbox *sb);
/* Removes the veth pair now (kill); the kernel would with the sandbox's namespace. */
void sbx__ns_veth_stop(struct sbx_sandbox *sb);

/* ns_pty.c: the interactive-process ops of the ops table. */
int sbx__ns_pty_start(struct sbx_sandbox *sb, const struct sbx_backend_pty_req *q,
                      struct sbx_backend_pty **out, sbx_error **err);
int sbx__ns_pty_write(struct sbx_backend_pty *p, const void *buf, size_t n);
size_t sbx__ns_pty_read(struct sbx_backend_pty *p, void *buf, size_t cap);
int sbx__ns_pty_wait(struct sbx_backend_pty *p, uint64_t deadline_ns);
void sbx__ns_pty_status(struct sbx_backend_pty *p, struct sbx_backend_pty_status *st);
int sbx__ns_pty_resize(struct sbx_backend_pty *p, unsigned rows, unsigned cols);
void sbx__ns_pty_free(struct sbx_backend_pty *p);
void sbx__ns_pty_kill(struct sbx_backend_pty *p);

/* ns_attach.c: the control socket of a sandbox others attach to. */
int sbx__ns_listen(const char *path, sbx_error **err);
int sbx__ns_attach(const char *path, pid_t agent_pid, const char *id, struct sbx_sandbox **out,
                   sbx_error **err);
void sbx__ns_detach(struct sbx_sandbox *sb);
/* Waits (bounded) until an attached sandbox's agent is gone. */
void sbx__ns_wait_gone(struct sbx_sandbox *sb);

/* ns_files.c: the file ops of the ops table. */
int sbx__ns_file(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q, int stream_fd,
                 struct sbx_backend_file_out *out, sbx_error **err);
int sbx__ns_walk(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q,
                 sbx_backend_walk_cb cb, void *arg, struct sbx_backend_file_out *out,
                 sbx_error **err);
int sbx__ns_put_begin(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q,
                      struct sbx_backend_put **out, sbx_error **err);
int sbx__ns_put_member(struct sbx_backend_put *p, const struct sbx_backend_member *m);
int sbx__ns_put_data(struct sbx_backend_put *p, uint64_t offset, const void *buf, size_t n);
int sbx__ns_put_file_end(struct sbx_backend_put *p);
int sbx__ns_put_end(struct sbx_backend_put *p, int commit, struct sbx_backend_file_out *out,
                    sbx_error **err);

/* idmap.c: writes uid_map, setgroups and gid_map of `pid`. */
int sbx__ns_write_idmaps(pid_t pid, int range_mapped, uint32_t uid_base, sbx_error **err);
/* The error for a clone with CLONE_NEWUSER that failed with errno e: SBX_ENOSYS naming the
 * sysctls to check when the host does not allow user namespaces here, else SBX_EBACKEND
 * naming `what`. */
int sbx__ns_userns_error(int e, const char *what, sbx_error **err);
void sbx__ns_ids(struct sbx_backend_ids *out);
/* Idmaps a detached workspace tree so that its owner appears as the sandbox user. Returns 0
 * (done or not needed), 1 (the filesystem cannot be idmapped: left as is) or an error. */
int sbx__ns_idmap_workspace(int tree_fd, uint32_t uid_base, sbx_error **err);

/* agent_path.c: resolves the sbx-agent binary. Returns a malloc'd path. */
int sbx__agent_path(const char *configured, char **out, sbx_error **err);

#endif
