/* cgroup.h — a session's cgroup (cgroup.c): limits, placement of the agent, stats, removal. */
#ifndef SBX_BACKEND_CGROUP_H
#define SBX_BACKEND_CGROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <sbx/error.h>

struct sbx_cg_limits {
    uint64_t memory_bytes; /* 0: none */
    unsigned pids_max;     /* 0: none */
    double cpus;           /* CPUs' worth of time per period; 0: none */
    unsigned io_weight;    /* 1..10000 (v2 io.weight; scaled for v1 blkio); 0: none */
    const char *cpuset;    /* CPU list for cpuset.cpus; NULL: none */
    uint64_t io_read_bps, io_write_bps; /* v2 io.max / v1 blkio.throttle; 0: none */
    const char *io_path;   /* a path on the block device the bandwidth limits are for */
    const char *parent;    /* session cgroups go below it in each hierarchy (a path from its
                              root); NULL: $SBX_CGROUP_PARENT, else below sbx's own cgroup */
    int best_effort;       /* a limit that cannot be enforced is skipped, not an error */
};

struct sbx_cg_stats {
    uint64_t memory_peak; /* bytes; 0 when unknown */
    uint64_t oom_kills;
    uint64_t cpu_ns;      /* CPU time of the whole sandbox; 0 when unknown */
};

struct sbx_cgroup;

/* Makes the session's cgroups ("sbx-<id>" below sbx's own) and writes the limits. *out stays
 * NULL when no limit was asked for. Errors: SBX_ENOSYS naming the controller and the layout
 * when a limit cannot be enforced (unless best effort), SBX_EPERM when sbx may not create
 * cgroups there. */
int sbx__cg_create(const char *id, const struct sbx_cg_limits *l, struct sbx_cgroup **out,
                   sbx_error **err);
/* The unified session cgroup's directory fd for CLONE_INTO_CGROUP, or -1. */
int sbx__cg_fd(const struct sbx_cgroup *cg);
/* Puts pid into the v1 session cgroups (before it runs anything). */
int sbx__cg_attach_v1(const struct sbx_cgroup *cg, pid_t pid, sbx_error **err);
int sbx__cg_stats(const struct sbx_cgroup *cg, struct sbx_cg_stats *st);
/* The session cgroups (named sbx-<id>) a running sandbox's agent is in, for a process that
 * attached to it and may end it; NULL when it is in none. */
struct sbx_cgroup *sbx__cg_of_pid(pid_t pid, const char *id);
/* Kills what is left, removes the cgroups, frees cg (NULL is fine). */
void sbx__cg_remove(struct sbx_cgroup *cg);
void sbx__cg_free(struct sbx_cgroup *cg);
/* sbx's own cgroup in the hierarchy of controller `ctrl` ("" for the unified one), "" at a
 * hierarchy's root. 0, or -1 when sbx is in none. */
int sbx__cg_self_path(const char *ctrl, char *out, size_t cap);
/* What cgroup v2 would do for controller `ctrl` at a session's start (for sbx doctor; it
 * creates, moves and enables nothing): 2 it is enabled already, 1 it will be (sbx alone in
 * the target, or the target empty), -1 it is offered but other processes share the target,
 * 0 v2 does not offer it. `where` gets the target cgroup; parent: as cgroup_parent (NULL:
 * $SBX_CGROUP_PARENT, else sbx's own cgroup). */
int sbx__cg_v2_check(const char *ctrl, const char *parent, char *where, size_t cap);
/* The unified hierarchy's mount point ("" when there is none). */
const char *sbx__cg_v2_mount(void);
/* "cgroup v2", "hybrid (...)" or "cgroup v1". */
const char *sbx__cg_layout(void);

#endif
