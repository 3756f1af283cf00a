/* sbx/session.h — a sandbox session: created once, started once, runs many commands.
 *
 * Lifecycle of one opaque handle:
 *
 *   sbx_session_new()      records the configuration; touches nothing in the kernel
 *   sbx_session_start()    creates the sandbox (namespaces, root filesystem, agent as PID 1)
 *   sbx_session_exec() ... runs commands (see sbx/exec.h); any number, also concurrently
 *   sbx_session_shutdown() kills every process of the sandbox and releases its resources
 *   sbx_session_free()     shuts down if still running, removes an owned workspace, frees
 *
 * Thread safety: sbx_session_exec() and the read-only accessors may be called concurrently on
 * one session; new/start/shutdown/free are owner-thread only.
 */
#ifndef SBX_SESSION_H
#define SBX_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sbx_session sbx_session;

/* One extra bind mount. `src` is a host path, `dst` an absolute path inside the sandbox
 * (NULL = same as src). Both borrowed for the duration of sbx_session_new(). */
typedef struct sbx_bind {
    const char *src;
    const char *dst;
    int readonly;
} sbx_bind;

enum sbx_session_flags {
    /* The sandbox outlives the process that started it (for the daemon and session CLI). By
     * default the sandbox dies as soon as its creator does. With a control_socket, other
     * processes attach to it (sbx_session_attach); sbx_session_disown() lets the creator
     * free its handle and leave the sandbox running. */
    SBX_SESSION_DETACHED = 1u << 0,
    /* Keep a workspace that sbx created itself when the session is freed. */
    SBX_SESSION_KEEP_WORKSPACE = 1u << 1,
    /* Let commands trace each other (ptrace, process_vm_readv/writev), for debuggers. */
    SBX_SESSION_ALLOW_PTRACE = 1u << 2,
    /* With no `workspace`: make it a tmpfs inside the sandbox instead of a host directory.
     * Nothing touches the host's disk and nothing is left to remove; the files live in
     * memory and are gone at shutdown. sbx_session_workspace() is then NULL. */
    SBX_SESSION_EPHEMERAL_WORKSPACE = 1u << 3,
    /* A cgroup limit (memory_bytes, pids_max, cpus, io_weight, cpuset, io_*_bps) that this machine cannot
     * enforce is skipped instead of failing start(). */
    SBX_SESSION_CGROUP_BEST_EFFORT = 1u << 4,
};
#define SBX_SESSION_FLAGS_ALL                                                                 \
    (SBX_SESSION_DETACHED | SBX_SESSION_KEEP_WORKSPACE | SBX_SESSION_ALLOW_PTRACE |          \
     SBX_SESSION_EPHEMERAL_WORKSPACE | SBX_SESSION_CGROUP_BEST_EFFORT)

/* Session options. Zero in any field means its default. Fill with SBX_SESSION_OPTS_INIT. */
typedef struct sbx_session_opts {
    size_t size;               /* sizeof(sbx_session_opts): set by SBX_SESSION_OPTS_INIT */
    const char *workspace;     /* host directory bound read-write at `root`; NULL = a fresh
                                  temporary directory owned (and removed) by the session */
    const char *root;          /* workspace path inside the sandbox; default "/workspace" */
    const char *hostname;      /* default "sbx" */
    const sbx_bind *binds;     /* extra bind mounts, n_binds of them */
    size_t n_binds;
    const char *const *env;    /* NULL-terminated "K=V" list layered over the base env of
                                  every command */
    uint32_t uid_base;         /* as root: host uid/gid that sandbox id 0 maps to (65536 ids
                                  from there, plus one for the agent; the next 65535 own
                                  sessions' user namespaces); default SBX_DEFAULT_UID_BASE */
    unsigned flags;            /* enum sbx_session_flags */
    const char *agent_path;    /* sbx-agent binary; default: $SBX_AGENT_PATH, next to the
                                  running program, then the installed libexec path */
    const char *seccomp_policy; /* seccomp policy text for every command (sbx/seccomp.h);
                                  NULL: sbx_seccomp_default_policy() */
    uint64_t tmpfs_bytes;      /* size of each memory-backed filesystem the sandbox can write:
                                  /tmp, /dev/shm and an ephemeral workspace; default the
                                  kernel's (half of RAM) */
    unsigned nproc;            /* RLIMIT_NPROC of commands: processes the sandbox user may
                                  have at once, all commands together (the count is per user
                                  namespace); default SBX_DEFAULT_NPROC */
    const char *manifest_json; /* the workspace's declared contents, environment, users and
                                  groups (docs/manifest.md); applied by start(). Its "root"
                                  replaces `root`. NULL: an empty manifest */
    const char *snapshot_dir;  /* a local snapshot store: stop() persists the workspace to
                                  <snapshot_dir>/<snapshot id>.tar and a later start() of the
                                  resumed session restores it. NULL: no snapshots (stop()
                                  persists nothing) */
    const char *snapshot_id;   /* default: the session id */
    const char *state_json;    /* resume: a state object from sbx_session_state_json() (its
                                  session id, manifest, snapshot and workspace replace the
                                  fields above) */
    const char *control_socket; /* a Unix socket path where the started sandbox accepts
                                  other processes (sbx_session_attach); its directory should
                                  be private (0700). NULL: none */
    struct sbx_events *events; /* audit events of this session's operations (sbx/events.h);
                                  the session takes a reference. NULL: none */
    const char *traceparent;   /* the caller's W3C traceparent for this session's spans
                                  (sbx_session_set_traceparent). NULL: none */
    uint64_t memory_bytes;     /* cgroup limits for the whole sandbox (0: none): memory,
                                  swap excluded; a process past it is OOM-killed */
    unsigned pids_max;         /* processes and threads, all commands together */
    double cpus;               /* CPU time, in CPUs (1.5 = one and a half) */
    unsigned nofile;           /* RLIMIT_NOFILE of commands (open files each); default
                                  SBX_DEFAULT_NOFILE */
    uint64_t fsize_bytes;      /* RLIMIT_FSIZE of commands: the largest file a command may
                                  write (SIGXFSZ / EFBIG past it); 0: unlimited */
    const int *exposed_ports;  /* TCP ports inside that the host may reach through
                                  sbx_session_resolve_exposed_port() (sbx/net.h), each in
                                  1..65535, duplicates dropped; n_exposed_ports of them.
                                  A resumed state_json brings its own */
    size_t n_exposed_ports;
    int net_mode;              /* enum sbx_net_mode (sbx/net.h); default SBX_NET_NONE */
    const char *const *net_allow; /* SBX_NET_PROXY: NULL-terminated destinations the proxy
                                  allows: "example.com" (exact), "*.example.com" (any
                                  subdomain, not the apex), or an IP literal. NULL: none */
    const char *const *net_hosts; /* SBX_NET_PROXY: NULL-terminated "name=ip" the proxy
                                  resolves before DNS (like /etc/hosts). NULL: none */
    const char *net_range;     /* SBX_NET_VETH: private IPv4 range (CIDR) each session takes
                                  a /30 of; NULL: "10.231.0.0/16" */
    unsigned io_weight;        /* cgroup: the sandbox's relative share of block I/O, 1..10000
                                  (100 is every other cgroup's default); 0: none. cgroup v2
                                  io.weight, else v1 blkio (scaled, see docs/limits.md) */
    uint64_t workspace_quota_bytes; /* root only: the workspace sbx creates (no `workspace`,
                                  not ephemeral) is an ext4 image of this size, loop-mounted
                                  at it, so writes past it fail with ENOSPC; at least 8 MiB.
                                  0: none (docs/limits.md) */
    const char *cpuset;        /* cgroup: the CPUs the sandbox may run on, as the kernel
                                  writes lists ("0-1,3"); NULL: all. cgroup v2 cpuset.cpus,
                                  else the v1 cpuset hierarchy */
    uint64_t io_read_bps;      /* cgroup: bytes per second the sandbox may read from, and */
    uint64_t io_write_bps;     /* write to, the block device of its workspace (v2 io.max,
                                  v1 blkio.throttle); 0: no limit. Needs a workspace on a
                                  block device: an ephemeral (tmpfs) one has none */
    const char *cgroup_parent; /* where the session's cgroups go (sbx-<id> below it): a path
                                  from each hierarchy's root, e.g. "/system.slice/agents.slice
                                  /sessions", that exists in every hierarchy used and is
                                  delegated to sbx (on v2: holding no processes). NULL:
                                  $SBX_CGROUP_PARENT, else below sbx's own cgroup */
} sbx_session_opts;

#define SBX_SESSION_OPTS_INIT {.size = sizeof(sbx_session_opts)}
#define SBX_DEFAULT_UID_BASE  1610612736u /* 0x60000000: inside the range systemd reserves
                                              for containers, unused by host accounts */
#define SBX_SANDBOX_UID       1000u
#define SBX_DEFAULT_NPROC     4096u
#define SBX_DEFAULT_NOFILE    4096u
#define SBX_SANDBOX_USER      "sandbox"

/* Records the configuration and validates it (EINVAL with a message naming the bad field).
 * `o` is borrowed; strings are copied. *out is the caller's, freed with sbx_session_free().
 * Thread safety: any thread. */
SBX_API int sbx_session_new(const sbx_session_opts *o, sbx_session **out, sbx_error **err);

/* Creates the sandbox. Errors: SBX_EWORKSPACE_START (workspace missing or not a directory),
 * SBX_ENOSYS (a namespace kind is unavailable; the message names it), SBX_EBACKEND (the
 * agent failed while assembling the root; context "stage" names the step).
 * Then makes the workspace match the manifest or the snapshot (docs/lifecycle.md). A second
 * start() on a running session, and start() after shutdown, return SBX_ESTATE.
 * Thread safety: owner thread only. */
SBX_API int sbx_session_start(sbx_session *s, sbx_error **err);

/* Persists the workspace to the session's snapshot (nothing without a snapshot_dir) and
 * records its fingerprint in the state; the sandbox keeps running. Errors:
 * SBX_EWORKSPACE_STOP wrapping the cause (its code in context "cause_code"), SBX_ESTATE when
 * not running. Thread safety: owner thread only. */
SBX_API int sbx_session_stop(sbx_session *s, sbx_error **err);

/* A hook run before stop() by sbx_session_close() (or sbx_session_run_pre_stop_hooks()):
 * return 0, or an SBX_E* code with *err set to refuse. Hooks run once, in registration
 * order, all of them even when one fails; registering a hook makes the next run include all
 * of them again. */
typedef int (*sbx_pre_stop_hook)(sbx_session *s, void *arg, sbx_error **err);
SBX_API int sbx_session_register_pre_stop_hook(sbx_session *s, sbx_pre_stop_hook fn, void *arg,
                                               sbx_error **err);
/* Runs the hooks if they have not run since the last registration; returns the first
 * failure (after running all). */
SBX_API int sbx_session_run_pre_stop_hooks(sbx_session *s, sbx_error **err);

/* The full cleanup: pre-stop hooks, then stop() unless a hook ever failed in this session,
 * then shutdown() unless stop() failed (so a failed persist leaves the sandbox up for a
 * retry). Returns the first error. Concurrent calls are serialised. */
SBX_API int sbx_session_close(sbx_session *s, sbx_error **err);

/* The session's state object as JSON (malloc'd): session id, snapshot, manifest, exposed
 * ports, fingerprint, whether the workspace root is ready, and the workspace directory, so
 * another process can resume the session with sbx_session_opts.state_json. */
SBX_API int sbx_session_state_json(sbx_session *s, char **out, sbx_error **err);

/* Kills every process in the sandbox and releases the namespaces. Idempotent: a second call,
 * or a call on a session that never started, returns 0. Does not remove the workspace.
 * Thread safety: owner thread only. */
SBX_API int sbx_session_shutdown(sbx_session *s, sbx_error **err);

/* True while the sandbox is up (the agent is alive). Thread safety: concurrent on one
 * session. */
SBX_API int sbx_session_running(sbx_session *s);

/* Host path of the workspace directory (borrowed); NULL for an ephemeral workspace.
 * Thread safety: any thread. */
SBX_API const char *sbx_session_workspace(const sbx_session *s);

/* Workspace root inside the sandbox, e.g. "/workspace" (borrowed). */
SBX_API const char *sbx_session_root(const sbx_session *s);

/* Session id (a UUID v4 string, borrowed). */
SBX_API const char *sbx_session_id(const sbx_session *s);

/* Host pid of the agent (PID 1 inside), or 0 when not running. For diagnostics and tests. */
SBX_API pid_t sbx_session_agent_pid(const sbx_session *s);

/* The Landlock ABI version the kernel restricts this session's commands with (1 and up), 0
 * when the kernel has no Landlock (commands then run behind the mount table and the seccomp
 * filter only: sbx never fails for want of it, and says so here), or -1 when unknown (not
 * running, or attached to another process's sandbox). Thread safety: any thread. */
SBX_API int sbx_session_landlock_abi(const sbx_session *s);

/* Connects a session made with sbx_session_new() (usually from the state JSON of the
 * session that started the sandbox) to that running sandbox through its control_socket.
 * The session is then running: exec, file and archive calls, stop() and shutdown() work as
 * on the original. sbx_session_free() of an attached session disconnects and leaves the
 * sandbox running; sbx_session_shutdown() ends it. Errors: SBX_ESTATE (the sandbox is gone,
 * or the socket's peer is not agent_pid). */
SBX_API int sbx_session_attach(sbx_session *s, const char *control_socket, pid_t agent_pid,
                               sbx_error **err);

/* Frees the handle of a running DETACHED (or attached) session and leaves its sandbox and
 * workspace in place, for another process to attach to (sbx create does this). On success s
 * is gone. Errors: SBX_ESTATE (not detached, not running, or calls in flight). */
SBX_API int sbx_session_disown(sbx_session *s, sbx_error **err);

/* Shuts down if needed, removes a workspace the session created (unless KEEP_WORKSPACE), and
 * frees. NULL is a no-op. Thread safety: owner thread only, no call in flight. */
SBX_API void sbx_session_free(sbx_session *s);

#ifdef __cplusplus
}
#endif
#endif
