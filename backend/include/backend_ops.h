/* backend_ops.h — the only backend header core sees: an ops table over an opaque sandbox.
 *
 * core validates arguments and builds the final argv, env, cwd and ids; the backend creates
 * the sandbox and runs what it is told. The backend never calls back into core.
 */
#ifndef SBX_BACKEND_OPS_H
#define SBX_BACKEND_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sbx/error.h>

struct sbx_sandbox; /* backend-private */

struct sbx_backend_bind {
    const char *src; /* host path */
    const char *dst; /* absolute path inside */
    int readonly;
};

/* A seccomp policy as data (parsed by core from its text form, compiled by the backend). */
enum sbx_sc_action { SBX_SC_ALLOW, SBX_SC_ERRNO, SBX_SC_KILL, SBX_SC_LOG };
enum sbx_sc_op { SBX_SC_EQ, SBX_SC_NE, SBX_SC_LT, SBX_SC_LE, SBX_SC_GT, SBX_SC_GE, SBX_SC_MASKED_EQ };
#define SBX_SC_MAX_CONDS 6

struct sbx_sc_cond {
    unsigned arg; /* 0..5 */
    int op;       /* enum sbx_sc_op */
    uint64_t mask, value;
};

struct sbx_sc_rule {
    unsigned line; /* in the policy text, for messages */
    char syscall[48];
    int action;    /* enum sbx_sc_action */
    int errnum;    /* with SBX_SC_ERRNO */
    unsigned n_conds;
    struct sbx_sc_cond conds[SBX_SC_MAX_CONDS];
};

struct sbx_sc_policy {
    int default_action, default_errnum;
    size_t n_rules;
    struct sbx_sc_rule *rules;
};

struct sbx_backend_config {
    const char *workspace; /* host directory (exists); NULL: an ephemeral tmpfs inside */
    const char *root;      /* mount point inside, absolute */
    const char *hostname;
    const struct sbx_backend_bind *binds;
    size_t n_binds;
    uint32_t uid_base;
    int detached;
    const char *agent_path; /* NULL = locate */
    const char *id;         /* session id, for names and messages */
    unsigned nproc;                     /* RLIMIT_NPROC of commands */
    unsigned nofile;                    /* RLIMIT_NOFILE of commands; 0: inherited */
    uint64_t fsize;                     /* RLIMIT_FSIZE of commands; 0: unlimited */
    uint64_t tmpfs_bytes;               /* size of /tmp, /dev/shm, ephemeral workspace */
    const unsigned char *seccomp_bpf;   /* compiled filter applied to every command */
    size_t seccomp_bpf_len;             /* 0: none */
    int seccomp_builtin;                /* the filter is a built-in policy (as is, or without
                                           its ptrace rules): the agent may load it once for
                                           all commands (agent/zygote.c) */
    const char *const *accounts; /* extra users, "name:uid:gid" (range-mapped sessions) */
    const char *const *groups;   /* extra groups, "name:gid:member,member" */
    const char *control_socket;  /* where the sandbox listens for other processes to attach
                                    (a Unix socket path, made 0600); NULL: nowhere */
    uint64_t memory_bytes;       /* cgroup limits (0: none): memory, swap excluded */
    unsigned pids_max;           /* processes and threads of the whole sandbox */
    double cpus;                 /* CPU time, in CPUs */
    unsigned io_weight;          /* relative block I/O weight, 1..10000 (0: none) */
    const char *cpuset;          /* CPU list ("0-1,3"); NULL: all */
    uint64_t io_read_bps, io_write_bps; /* on the workspace's block device (0: none) */
    const char *cgroup_parent;   /* below which session cgroups go; NULL: the default */
    int cgroup_best_effort;      /* skip a limit that cannot be enforced instead of failing */
};

/* Ids the backend will use for the sandbox user and root, and whether a range is mapped
 * (root callers) or a single id (everyone else). */
struct sbx_backend_ids {
    int range_mapped;
    uint32_t sandbox_uid, sandbox_gid;
};

struct sbx_backend_exec {
    char *const *argv; /* final argv */
    char *const *env;  /* final environment */
    const char *cwd;   /* absolute, inside */
    uint32_t uid, gid;
    double timeout_s;  /* 0: none */
    size_t max_output_bytes;
    int stdin_fd;      /* -1: EOF */
    int stdout_fd;     /* >= 0: stream there instead of capturing */
    int stderr_fd;
};

struct sbx_backend_exec_out {
    int exit_code; /* -N on signal N */
    int term_signal;
    unsigned char *out, *err;
    size_t out_len, err_len;
    uint64_t out_dropped, err_dropped;
    double duration_ms;
    /* From the session's cgroups, when it has any (else 0): an OOM kill in the sandbox while
     * the command ran, the sandbox's peak memory so far, and its CPU time so far. */
    int oom_killed;
    uint64_t memory_peak;
    double cpu_ms;
};

/* File operations (ns_files.c). Paths are relative to `root` (the workspace mount point
 * inside), "" naming the root; core has normalised them. The operation runs inside the
 * sandbox as uid/gid. */
enum sbx_backend_fop {
    SBX_BFOP_LS = 1,
    SBX_BFOP_RM = 2,
    SBX_BFOP_MKDIR = 3,
    SBX_BFOP_READ = 4,  /* file -> stream_fd */
    SBX_BFOP_WRITE = 5, /* stream_fd (to EOF) -> file */
    SBX_BFOP_CHMOD = 8, /* mode -> path */
};
enum {
    SBX_BFOPF_RECURSIVE = 1u << 0,
    SBX_BFOPF_PARENTS = 1u << 1,
    SBX_BFOPF_STAGE = 1u << 2, /* put: into staging, swapped in at commit */
    SBX_BFOPF_MODES = 1u << 3, /* put: apply modes and mtimes */
};

struct sbx_backend_file_req {
    int op; /* enum sbx_backend_fop (ignored by walk and put) */
    unsigned flags;
    uint32_t uid, gid;
    uint32_t mode; /* chmod */
    const char *root;
    const char *path;
    const char *const *skip; /* walk and staged put: relative paths left alone */
};

enum sbx_backend_kind { SBX_BK_FILE = 0, SBX_BK_DIR = 1, SBX_BK_SYMLINK = 2, SBX_BK_OTHER = 3 };

struct sbx_backend_file_entry {
    char *name;
    int kind; /* enum sbx_backend_kind */
    uint32_t mode;
    uint64_t size;
    int64_t mtime;
    uint32_t uid, gid;
};

/* Where a failed operation stopped (the worker's errno and step). */
enum sbx_backend_fstep {
    SBX_BFS_ROOT = 0,     /* the workspace root is missing (err ENOENT) */
    SBX_BFS_RESOLVE = 1,  /* resolving the path: EXDEV = it leads outside the root */
    SBX_BFS_OPEN = 2,
    SBX_BFS_IO = 3,
    SBX_BFS_IDENTITY = 4,
    SBX_BFS_SYMLINK_PARENT = 5, /* put: detail is "member\nsymlink prefix" */
    SBX_BFS_STREAM = 6,
};

struct sbx_backend_file_out {
    int err;       /* errno of the operation inside; 0 when it succeeded */
    int step;      /* enum sbx_backend_fstep */
    char *detail;  /* malloc'd: the path or member concerned */
    uint64_t bytes;
    uint64_t size; /* read: the file's size when opened */
    struct sbx_backend_file_entry *entries; /* ls, malloc'd */
    size_t n_entries;
};
void sbx__backend_file_out_clear(struct sbx_backend_file_out *o);

/* One member of a tree in transit. For walk, a file's bytes (the sum of its extents' lengths)
 * are read by the callback from data_fd, exactly, before it returns. */
struct sbx_backend_extent {
    uint64_t offset, len;
};
struct sbx_backend_member {
    int kind; /* SBX_BK_FILE, SBX_BK_DIR, SBX_BK_SYMLINK */
    const char *path; /* relative; "" is the root */
    uint32_t mode;
    int64_t mtime_sec;
    uint32_t mtime_nsec;
    uint64_t size;
    const char *target;
    size_t n_extents;
    const struct sbx_backend_extent *extents;
    int data_fd;
};
typedef int (*sbx_backend_walk_cb)(void *arg, const struct sbx_backend_member *m,
                                   sbx_error **err);
struct sbx_backend_put;

/* An interactive process (ns_pty.c): a command on a new terminal of the sandbox's own devpts,
 * or with its stdout and stderr merged in arrival order (tty = 0; stdin is then EOF). Its
 * output is drained on the host by a background thread into a ring of buffer_bytes (oldest
 * bytes dropped and counted), so the command never blocks on a full terminal. */
struct sbx_backend_pty_req {
    char *const *argv;
    char *const *env;
    const char *cwd;
    uint32_t uid, gid;
    int tty;
    unsigned rows, cols;  /* initial window size (tty); 0: 24 x 80 */
    size_t buffer_bytes;  /* 0: 1 MiB */
};
struct sbx_backend_pty;
struct sbx_backend_pty_status {
    int exited;       /* the command exited and its output is closed (all of it buffered) */
    int exit_code;    /* -N on signal N */
    uint64_t dropped; /* bytes dropped from the ring so far */
};

/* One per request, given to the log callback when the request ends (refusals: when the
 * refusal is sent). Everything is borrowed for the duration of the call only. */
struct sbx_proxy_event {
    const char *method;  /* "CONNECT", "GET", ...; NULL if the request was unparsable */
    const char *host;    /* as requested, lower-cased, trailing dot removed; NULL if unknown */
    unsigned port;       /* 0 if unknown */
    const char *address; /* the IP connected to ("10.0.0.2", "2001:db8::1"); NULL if none */
    int allowed;         /* 1 relayed, 0 refused */
    int status;          /* HTTP status sent by the proxy: 200 (CONNECT), 403, ...; 0 when
                          * the origin's own response was relayed (absolute-form requests) */
    /* NULL when allowed; else one of: "not_allowed", "forbidden_address", "bad_request",
     * "head_timeout", "resolve_failed", "connect_failed", "too_many_connections",
     * "resource_exhausted"; or, for a request that ended before it was decided or connected,
     * "client_closed" (the client went away) or "proxy_closed" (sbx__proxy_free). */
    const char *reason;
    const char *message;  /* the plain-text explanation sent to the client; NULL if allowed
                           * or when nothing was sent (client_closed, proxy_closed, 503
                           * beyond the 64 connections that are answered) */
    uint64_t bytes_up;    /* bytes sent to the destination (rewritten head included) */
    uint64_t bytes_down;  /* bytes received from the destination; both 0 when refused */
    double duration_ms;   /* from sbx__proxy_serve() to the end of the request */
};

/* The host side of a sandbox's network (net_serve): the egress proxy of the "proxy" mode, or
 * the veth pair of the "veth" mode. */
struct sbx_backend_net {
    int mode;                  /* enum sbx_net_mode */
    const char *range;         /* veth: IPv4 CIDR (NULL: the default) */
    unsigned proxy_port;       /* where the proxy listens inside, on 127.0.0.1 */
    const char *const *allow;  /* allowed destinations (docs/network-proxy.md) */
    const char *const *hosts;  /* "name=ip" overrides, NULL-terminated; may be NULL */
    void (*log)(void *arg, const struct sbx_proxy_event *ev); /* per request, any thread */
    void *log_arg;
};

struct sbx_backend_ops {
    const char *name;
    /* Which ids the sandbox will have for this caller (no side effects). */
    void (*ids)(struct sbx_backend_ids *out);
    int (*start)(const struct sbx_backend_config *c, struct sbx_sandbox **out, sbx_error **err);
    /* start in two halves: begin returns once the sandbox is being built; exec may be called
     * before wait (it runs once the sandbox is ready); wait reports the outcome of the build
     * and frees sb when it failed. */
    int (*start_begin)(const struct sbx_backend_config *c, struct sbx_sandbox **out,
                       sbx_error **err);
    int (*start_wait)(struct sbx_sandbox *sb, sbx_error **err);
    /* Compiles a seccomp policy as start() would (for checking and dumping one). */
    int (*seccomp_compile)(const struct sbx_sc_policy *p, unsigned char **out, size_t *len,
                           sbx_error **err);
    int (*exec)(struct sbx_sandbox *sb, const struct sbx_backend_exec *x,
                struct sbx_backend_exec_out *out, sbx_error **err);
    int (*alive)(struct sbx_sandbox *sb);
    pid_t (*agent_pid)(const struct sbx_sandbox *sb);
    /* Starts killing every process of the sandbox and returns without waiting. Safe while
     * execs are in flight on other threads: they fail fast. Idempotent. */
    void (*kill)(struct sbx_sandbox *sb);
    /* Kills (if needed), waits until no process of the sandbox is left, and frees; no call
     * may be in flight. sb is gone afterwards. */
    int (*destroy)(struct sbx_sandbox *sb, sbx_error **err);
    /* Connects to a running sandbox's control socket (made with control_socket by another
     * process). The peer must be agent_pid. destroy() of an attached sandbox kills it only
     * if kill() was called; detach() just disconnects and frees. */
    int (*attach)(const char *control_socket, pid_t agent_pid, const char *id,
                  struct sbx_sandbox **out, sbx_error **err);
    void (*detach)(struct sbx_sandbox *sb);

    /* A file operation. Returns 0 when the sandbox answered (out->err says whether the
     * operation itself worked) or an error when it could not be asked. */
    int (*file)(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q, int stream_fd,
                struct sbx_backend_file_out *out, sbx_error **err);
    /* Streams the tree at q->path to cb, member by member. A callback error stops the walk
     * and is returned. */
    int (*walk)(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q,
                sbx_backend_walk_cb cb, void *arg, struct sbx_backend_file_out *out,
                sbx_error **err);
    /* Writes a tree below q->path: begin, then per member put_member (files: put_data any
     * number of times, then put_file_end), then put_end. put_* return -errno once the sandbox
     * stopped reading (it failed: put_end says why). put_end commits when commit != 0 and
     * always frees p. */
    int (*put_begin)(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q,
                     struct sbx_backend_put **p, sbx_error **err);
    int (*put_member)(struct sbx_backend_put *p, const struct sbx_backend_member *m);
    int (*put_data)(struct sbx_backend_put *p, uint64_t offset, const void *buf, size_t n);
    int (*put_file_end)(struct sbx_backend_put *p);
    int (*put_end)(struct sbx_backend_put *p, int commit, struct sbx_backend_file_out *out,
                   sbx_error **err);

    /* Interactive processes. pty_start returns once the command runs (or could not start:
     * SBX_EEXEC_TRANSPORT). pty_write writes all of buf to the terminal (-errno; -ENOTTY
     * without one). pty_read moves up to cap buffered bytes out; pty_wait blocks until some
     * output is buffered, the output closed, or deadline_ns (monotonic) passed, and returns 1
     * for the first two, 0 on the deadline. pty_free kills the command's whole tree (if it
     * still runs), stops the reader and frees; it never blocks on the command. A pty may be
     * used from several threads; pty_free must be the last call. */
    int (*pty_start)(struct sbx_sandbox *sb, const struct sbx_backend_pty_req *q,
                     struct sbx_backend_pty **out, sbx_error **err);
    int (*pty_write)(struct sbx_backend_pty *p, const void *buf, size_t n);
    size_t (*pty_read)(struct sbx_backend_pty *p, void *buf, size_t cap);
    int (*pty_wait)(struct sbx_backend_pty *p, uint64_t deadline_ns);
    void (*pty_status)(struct sbx_backend_pty *p, struct sbx_backend_pty_status *st);
    int (*pty_resize)(struct sbx_backend_pty *p, unsigned rows, unsigned cols);
    void (*pty_free)(struct sbx_backend_pty *p);
    /* Starts killing the command's tree and returns; calls in flight end soon after (the
     * exit arrives). Any thread. */
    void (*pty_kill)(struct sbx_backend_pty *p);

    /* A TCP connection to `port` on the sandbox's loopback (127.0.0.1, then ::1), for
     * exposed ports: a connected non-blocking socket in *fd (the caller's), or *fd = -1 and
     * the connect's errno in *errnum (ECONNREFUSED: nothing listens). Returns an error only
     * when the sandbox could not be asked. Any thread. */
    int (*connect)(struct sbx_sandbox *sb, unsigned port, int *fd, int *errnum,
                   sbx_error **err);
    /* Starts this process's host side of the sandbox's network: proxy: a listener on the
     * sandbox's 127.0.0.1:proxy_port whose connections the host's proxy engine serves
     * (stops with kill, destroy and detach); veth: the pair (removed at kill, else with the
     * sandbox). Errors: SBX_EBUSY-like SBX_ESTATE when another process
     * serves it (the port is taken inside), SBX_EINVAL for a bad allow or hosts entry. */
    int (*net_serve)(struct sbx_sandbox *sb, const struct sbx_backend_net *n, sbx_error **err);
    /* Checks a network configuration without touching the kernel (a veth range, say). */
    int (*net_check)(const struct sbx_backend_net *n, sbx_error **err);
    /* The Landlock ABI the sandbox's commands are restricted with (0: the kernel has none);
     * -1 when unknown (an attached sandbox). */
    int (*landlock_abi)(const struct sbx_sandbox *sb);
};

/* Compiles a policy to a BPF program for this machine's architecture (foreign ABIs are
 * killed). *out is malloc'd, *len in bytes. Errors name the policy line. */
int sbx__seccomp_compile(const struct sbx_sc_policy *p, unsigned char **out, size_t *len,
                         sbx_error **err);

extern const struct sbx_backend_ops sbx__ns_backend_ops;

#endif
