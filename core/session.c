/* session.c — the session object and its lifecycle.
 *
 * States and the calls that move between them:
 *
 *      sbx_session_new()        start()              shutdown() / agent died
 *   ------------------> NEW ------------> RUNNING ---------------------------> DOWN
 *                        |                                                      ^
 *                        +------------------------ shutdown() ------------------+
 *
 * Invariants (checked by assert_state() in debug builds):
 *   1. sb (the backend sandbox) is non-NULL exactly in RUNNING.
 *   2. workspace is set in RUNNING and DOWN (to "" when ephemeral); in NEW only when the
 *      caller gave one.
 *   3. DOWN is terminal: start() on DOWN fails with SBX_ESTATE; shutdown() on DOWN is a no-op.
 *   4. exec() is valid only in RUNNING. Each exec holds a reference (`inflight`, under
 *      `lock`) for its whole duration; shutdown() first moves to DOWN (no new exec can
 *      start), kills the sandbox (in-flight execs fail fast), waits for `inflight` to drop
 *      to 0, and only then frees the backend's state. So a shutdown racing execs on other
 *      threads never frees what they use.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "error_internal.h"
#include "util.h"
#include "workspace_quota.h"

enum state { ST_NEW, ST_RUNNING, ST_DOWN };

/* The default policy compiled at build time (generated/seccomp_default_bpf.c, made by
 * tools/gen-seccomp, which does not link this file). */
extern const unsigned char sbx__default_bpf[];
extern const size_t sbx__default_bpf_len;

struct sbx_session {
    enum state state;
    char id[37];
    char *workspace;
    char *owned_dir; /* a temporary directory holding the workspace, removed at free */
    char *root;
    char *hostname;
    struct sbx_backend_bind *binds;
    size_t n_binds;
    char **env;
    uint32_t uid_base;
    unsigned nproc;
    unsigned nofile;
    uint64_t fsize;
    uint64_t tmpfs_bytes;
    uint64_t memory_bytes;
    unsigned pids_max;
    double cpus;
    unsigned io_weight;
    char *cpuset;
    char *cgroup_parent;
    uint64_t io_read_bps, io_write_bps;
    uint64_t workspace_quota; /* an ext4 image for the owned workspace (workspace_quota.c) */
    int quota_mounted;        /* this handle mounted it at `workspace` */
    unsigned flags;
    char *agent_path;
    struct sbx_backend_ids ids;
    struct sbx_sc_policy seccomp;
    int seccomp_is_default;   /* the built-in policy, as is: the precompiled filter fits */
    int seccomp_builtin;      /* the built-in policy, with or without its ptrace rules */
    int one_shot;             /* sbx_run(): one command, so no zygote (agent/zygote.c) */
    unsigned char *seccomp_bpf; /* compiled at start() when it does not */
    size_t seccomp_bpf_len;
    const struct sbx_backend_ops *ops;
    struct sbx_sandbox *sb;
    pthread_mutex_t lock; /* guards state, sb and inflight against concurrent execs */
    pthread_cond_t idle;  /* signalled when inflight drops to 0 */
    unsigned inflight;
    struct sbx_session_files files; /* archive limits, skip paths (archive.c) */
    struct sbx_session_life life;   /* state object, hooks, close (lifecycle.c) */
    char *control_socket;           /* where other processes attach; NULL: nowhere */
    int attached;                   /* sb is another process's sandbox (sbx_session_attach) */
    int started;                    /* this handle started a sandbox: the workspace is its to
                                       remove (when owned) */
    struct sbx_pty_reg *pty;        /* interactive processes (pty.c) */
    struct sbx__ev_bind *ev;        /* events binding (instrumented.c); NULL: none */
    struct sbx_session_ports ports; /* exposed-port forwarder (ports.c) */
    struct sbx_session_net net;     /* network mode (net.c) */
};

static void assert_state(const sbx_session *s)
{
    assert((s->sb != NULL) == (s->state == ST_RUNNING));
    assert(s->state == ST_NEW || s->workspace != NULL);
    (void)s;
}

void sbx__uuid4(char buf[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        /* getrandom cannot fail for 16 bytes once the pool is ready; fall back anyway. */
        uint64_t t = sbx__now_ns() ^ (uint64_t)getpid() << 32;
        memcpy(b, &t, 8);
        memcpy(b + 8, &t, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

static int hostname_ok(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 64 || h[0] == '-' || h[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int env_ok(const char *const *env)
{
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (!eq || eq == env[i])
            return 0;
    }
    return 1;
}

/* A CPU list as the kernel writes them: "3", "0-1", "0-1,4,6-7". */
static int cpu_list_ok(const char *v)
{
    const char *p = v;
    do {
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
        if (*p == '-') {
            p++;
            if (*p < '0' || *p > '9')
                return 0;
            while (*p >= '0' && *p <= '9')
                p++;
        }
    } while (*p == ',' && *++p);
    return *p == '\0' && p - v < 256;
}

static int validate(const sbx_session_opts *o, sbx_error **err)
{
    if (o->size != sizeof(*o))
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "sbx_session_opts.size is %zu, expected %zu: fill it with "
                       "SBX_SESSION_OPTS_INIT",
                       o->size, sizeof(*o));
    if (o->flags & ~(unsigned)SBX_SESSION_FLAGS_ALL)
        return sbx_err(err, SBX_EINVAL, 0, "create", "unknown session flags 0x%x",
                       o->flags & ~(unsigned)SBX_SESSION_FLAGS_ALL);
    if (o->root && sbx__abs_path_ok(o->root, 0) < 0)
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "sandbox workspace root must be absolute, normal and not '/': '%s'",
                       o->root);
    if (o->hostname && !hostname_ok(o->hostname))
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "hostname '%s' is not valid (1-64 of a-z A-Z 0-9 - .)", o->hostname);
    if (o->workspace && o->workspace[0] == '\0')
        return sbx_err(err, SBX_EINVAL, 0, "create", "workspace path is empty");
    if (!env_ok(o->env))
        return sbx_err(err, SBX_EINVAL, 0, "create", "environment entries must be K=V");
    if (o->nofile && (o->nofile < 16 || o->nofile > 1048576))
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "nofile %u is out of range (16 to 1048576 open files)", o->nofile);
    if (o->cpus < 0 || o->cpus > 4096)
        return sbx_err(err, SBX_EINVAL, 0, "create", "cpus must be between 0 and 4096, not %g",
                       o->cpus);
    if (o->memory_bytes && o->memory_bytes < (4u << 20))
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "memory limit %llu is too small to start a sandbox (at least 4 MiB)",
                       (unsigned long long)o->memory_bytes);
    if (o->io_weight > 10000)
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "io_weight %u is out of range (1 to 10000; 0: none)", o->io_weight);
    if (o->cgroup_parent && (o->cgroup_parent[0] != '/' || strstr(o->cgroup_parent, "..") ||
                             strlen(o->cgroup_parent) > 1024))
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "cgroup_parent '%s' must be an absolute path from a hierarchy's root, "
                       "without '..'",
                       o->cgroup_parent);
    if (o->cpuset && !cpu_list_ok(o->cpuset))
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "cpuset '%s' is not a CPU list (like 0-1,3)", o->cpuset);
    if ((o->io_read_bps || o->io_write_bps) && (o->flags & SBX_SESSION_EPHEMERAL_WORKSPACE))
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "io_read_bps and io_write_bps limit the workspace's block device, and "
                       "an ephemeral workspace (tmpfs) has none");
    if (o->workspace_quota_bytes) {
        if (o->workspace)
            return sbx_err(err, SBX_EINVAL, 0, "create",
                           "workspace_quota_bytes needs a workspace sbx creates, not the "
                           "caller's '%s'",
                           o->workspace);
        if (o->flags & SBX_SESSION_EPHEMERAL_WORKSPACE)
            return sbx_err(err, SBX_EINVAL, 0, "create",
                           "workspace_quota_bytes is for a host workspace; an ephemeral one is "
                           "a tmpfs of tmpfs_bytes");
        if (o->workspace_quota_bytes < SBX_WSQ_MIN || o->workspace_quota_bytes > SBX_WSQ_MAX)
            return sbx_err(err, SBX_EINVAL, 0, "create",
                           "workspace_quota_bytes %llu is out of range (8 MiB to 16 TiB)",
                           (unsigned long long)o->workspace_quota_bytes);
        if (geteuid() != 0)
            return sbx_err(err, SBX_EPERM, EPERM, "create",
                           "workspace_quota_bytes needs root (loop devices and mounts)");
    }
    if (o->n_binds && !o->binds)
        return sbx_err(err, SBX_EINVAL, 0, "create", "n_binds is %zu but binds is NULL",
                       o->n_binds);
    if (o->uid_base && (uint64_t)o->uid_base + 65537 > 0xffffffffull)
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "uid_base %u leaves no room for the 65537 ids a sandbox maps", o->uid_base);
    for (size_t i = 0; i < o->n_binds; i++) {
        const sbx_bind *b = &o->binds[i];
        const char *dst = b->dst ? b->dst : b->src;
        if (!b->src || b->src[0] == '\0')
            return sbx_err(err, SBX_EINVAL, 0, "create", "bind %zu has no source", i);
        if (sbx__abs_path_ok(dst, 0) < 0)
            return sbx_err(err, SBX_EINVAL, 0, "create",
                           "bind destination '%s' must be absolute, normal and not '/'", dst);
    }
    return 0;
}

static int copy_opts(sbx_session *s, const sbx_session_opts *o)
{
    s->root = strdup(o->root ? o->root : "/workspace");
    s->hostname = strdup(o->hostname ? o->hostname : "sbx");
    s->env = sbx__strv_dup(o->env);
    if (!s->root || !s->hostname || !s->env)
        return -1;
    if (o->workspace && !(s->workspace = strdup(o->workspace)))
        return -1;
    if (o->agent_path && !(s->agent_path = strdup(o->agent_path)))
        return -1;
    if (o->control_socket && !(s->control_socket = strdup(o->control_socket)))
        return -1;
    if (o->cpuset && !(s->cpuset = strdup(o->cpuset)))
        return -1;
    if (o->cgroup_parent && !(s->cgroup_parent = strdup(o->cgroup_parent)))
        return -1;
    if (o->n_binds && !(s->binds = calloc(o->n_binds, sizeof(*s->binds))))
        return -1;
    for (size_t i = 0; i < o->n_binds; i++) {
        const sbx_bind *b = &o->binds[i];
        s->binds[i].src = strdup(b->src);
        s->binds[i].dst = strdup(b->dst ? b->dst : b->src);
        s->binds[i].readonly = b->readonly;
        s->n_binds = i + 1;
        if (!s->binds[i].src || !s->binds[i].dst)
            return -1;
    }
    return 0;
}

int sbx_session_new(const sbx_session_opts *o, sbx_session **out, sbx_error **err)
{
    *out = NULL;
    if (!o)
        return sbx_err(err, SBX_EINVAL, 0, "create", "session options are NULL");
    int r = validate(o, err);
    if (r < 0)
        return r;
    sbx_session *s = calloc(1, sizeof(*s));
    if (!s)
        return sbx_err(err, SBX_ENOMEM, 0, "create", "out of memory");
    s->state = ST_NEW;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->files.lock, NULL);
    pthread_mutex_init(&s->life.lock, NULL);
    pthread_mutex_init(&s->life.close_lock, NULL);
    pthread_mutex_init(&s->ports.lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->ops = &sbx__ns_backend_ops;
    s->uid_base = o->uid_base ? o->uid_base : SBX_DEFAULT_UID_BASE;
    s->nproc = o->nproc ? o->nproc : SBX_DEFAULT_NPROC;
    s->nofile = o->nofile ? o->nofile : SBX_DEFAULT_NOFILE;
    s->fsize = o->fsize_bytes;
    s->tmpfs_bytes = o->tmpfs_bytes;
    s->memory_bytes = o->memory_bytes;
    s->pids_max = o->pids_max;
    s->cpus = o->cpus;
    s->io_weight = o->io_weight;
    s->io_read_bps = o->io_read_bps;
    s->io_write_bps = o->io_write_bps;
    s->workspace_quota = o->workspace_quota_bytes;
    s->flags = o->flags;
    s->ops->ids(&s->ids);
    sbx__uuid4(s->id);
    if (copy_opts(s, o) < 0 || !(s->pty = sbx__pty_reg_new())) {
        sbx_session_free(s);
        return sbx_err(err, SBX_ENOMEM, 0, "create", "out of memory");
    }
    /* The state object: session id, manifest (whose root and environment the session takes),
     * snapshot, and, when resuming, the workspace. */
    if ((r = sbx__life_init(s, o, err)) < 0) {
        sbx_session_free(s);
        return r;
    }
    if ((r = sbx__session_ev_init(s, o, err)) < 0 || (r = sbx__net_init(s, o, err)) < 0) {
        sbx_session_free(s);
        return r;
    }
    s->seccomp_is_default = !o->seccomp_policy && !(o->flags & SBX_SESSION_ALLOW_PTRACE);
    s->seccomp_builtin = !o->seccomp_policy;
    /* The built-in policy as is was parsed and compiled when sbx was built (its filter is
     * sbx__default_bpf): parsing it again would cost every session 20-60 us for nothing. */
    r = s->seccomp_is_default
            ? 0
            : sbx__sc_parse(o->seccomp_policy ? o->seccomp_policy : sbx_seccomp_default_policy(),
                            (o->flags & SBX_SESSION_ALLOW_PTRACE) != 0, &s->seccomp, err);
    if (r < 0) {
        sbx_session_free(s);
        return r;
    }
    *out = s;
    return 0;
}

/* Creates the workspace if needed and the sandbox: fully (start), or only up to the point
 * where it is being built (begin, for the one-shot path). */
static int start_sandbox(sbx_session *s, int begin_only, sbx_error **err)
{
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "start", "session is NULL");
    assert_state(s);
    if (s->state == ST_RUNNING)
        return sbx_err(err, SBX_ESTATE, 0, "start", "session %s is already running", s->id);
    if (s->state == ST_DOWN)
        return sbx_err(err, SBX_ESTATE, 0, "start",
                       "session %s was shut down; create a new session", s->id);
    int r;
    int ephemeral = !s->workspace && (s->flags & SBX_SESSION_EPHEMERAL_WORKSPACE);
    int made_ws = 0; /* made here: undone here when the start fails */
    uint32_t host_uid = s->ids.range_mapped ? s->uid_base + s->ids.sandbox_uid : getuid();
    uint32_t host_gid = s->ids.range_mapped ? s->uid_base + s->ids.sandbox_gid : getgid();
    if (ephemeral) {
        /* nothing on the host */
    } else if (!s->workspace) {
        r = sbx__workspace_make_temp(host_uid, host_gid, &s->owned_dir, &s->workspace, err);
        if (r < 0)
            return r;
        made_ws = 1;
    } else if ((r = sbx__workspace_check(s->workspace, err)) < 0) {
        return r;
    }
    /* A quota workspace: its image is mounted on the workspace directory (made now, or kept
     * from the session this one resumes, which is mounted again even without the option). */
    if (!ephemeral && (s->workspace_quota || sbx__wsq_has_image(s->owned_dir))) {
        if (!s->owned_dir)
            r = sbx_err(err, SBX_EINVAL, 0, "start",
                        "workspace_quota_bytes needs a workspace sbx creates, not '%s'",
                        s->workspace);
        else
            r = sbx__wsq_mount(s->owned_dir, s->workspace, s->workspace_quota, made_ws,
                               host_uid, host_gid, &s->quota_mounted, err);
        if (r < 0)
            goto undo;
    }
    const unsigned char *bpf = s->seccomp_bpf;
    size_t bpf_len = s->seccomp_bpf_len;
    if (s->seccomp_is_default) {
        bpf = sbx__default_bpf;
        bpf_len = sbx__default_bpf_len;
    } else if (!bpf) {
        r = s->ops->seccomp_compile(&s->seccomp, &s->seccomp_bpf, &s->seccomp_bpf_len, err);
        if (r < 0)
            goto undo;
        bpf = s->seccomp_bpf;
        bpf_len = s->seccomp_bpf_len;
    }
    if (ephemeral && !(s->workspace = strdup("")))
        return sbx_err(err, SBX_ENOMEM, 0, "start", "out of memory");
    struct sbx_backend_config c = {
        .nproc = s->nproc,
        .nofile = s->nofile,
        .fsize = s->fsize,
        .tmpfs_bytes = s->tmpfs_bytes,
        .seccomp_bpf = bpf,
        .seccomp_bpf_len = bpf_len,
        .workspace = ephemeral ? NULL : s->workspace,
        .root = s->root,
        .hostname = s->hostname,
        .binds = s->binds,
        .n_binds = s->n_binds,
        .uid_base = s->uid_base,
        .detached = (s->flags & SBX_SESSION_DETACHED) != 0,
        .agent_path = s->agent_path,
        .id = s->id,
        .accounts = (const char *const *)s->life.account_lines,
        .groups = (const char *const *)s->life.group_lines,
        .control_socket = s->control_socket,
        .memory_bytes = s->memory_bytes,
        .pids_max = s->pids_max,
        .cpus = s->cpus,
        .io_weight = s->io_weight,
        .seccomp_builtin = s->seccomp_builtin && !s->one_shot,
        .cpuset = s->cpuset,
        .io_read_bps = s->io_read_bps,
        .io_write_bps = s->io_write_bps,
        .cgroup_parent = s->cgroup_parent,
        .cgroup_best_effort = (s->flags & SBX_SESSION_CGROUP_BEST_EFFORT) != 0,
    };
    struct sbx_sandbox *sb = NULL;
    r = begin_only ? s->ops->start_begin(&c, &sb, err) : s->ops->start(&c, &sb, err);
    if (r < 0) {
        sbx_err_ctx(err, "session_id", "%s", s->id);
        goto undo;
    }
    pthread_mutex_lock(&s->lock);
    s->sb = sb;
    s->state = ST_RUNNING;
    s->started = 1;
    assert_state(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
undo:
    /* Nothing of a failed start is left: the quota mount (its loop device frees itself),
     * and a workspace made for it, with its image. */
    if (s->quota_mounted)
        sbx__wsq_unmount(s->workspace);
    s->quota_mounted = 0;
    if (made_ws) {
        sbx__rm_rf(s->owned_dir);
        free(s->owned_dir);
        free(s->workspace);
        s->owned_dir = s->workspace = NULL;
    }
    return r;
}

int sbx__session_start_raw(sbx_session *s, sbx_error **err)
{
    int r = start_sandbox(s, 0, err);
    if (r < 0)
        return r;
    /* The host side of the network before anything runs inside (start and shutdown are
     * owner-thread calls: sb stays). */
    pthread_mutex_lock(&s->lock);
    struct sbx_sandbox *sb = s->sb;
    pthread_mutex_unlock(&s->lock);
    r = sb ? sbx__net_start(s, s->ops, sb, 1, err) : 0;
    if (r < 0) {
        sbx_session_shutdown(s, NULL);
        return r;
    }
    /* Make the workspace match the snapshot or the manifest. A failure here leaves nothing
     * running: the session goes down, and a new one resumed from its state can try again. */
    if ((r = sbx__materialize(s, err)) < 0) {
        sbx_err_ctx(err, "session_id", "%s", s->id);
        sbx_session_shutdown(s, NULL);
    }
    return r;
}

int sbx__session_shutdown_raw(sbx_session *s, sbx_error **err)
{
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "shutdown", "session is NULL");
    /* Before anything else (spec §5.8): no interactive process outlives the session. */
    sbx_pty_terminate_all(s);
    pthread_mutex_lock(&s->lock);
    assert_state(s);
    struct sbx_sandbox *sb = s->sb;
    s->state = ST_DOWN;
    s->sb = NULL;
    if (!s->workspace) {
        /* Never started: nothing to tear down, but DOWN still needs invariant 2. */
        s->workspace = strdup("");
    }
    assert_state(s);
    pthread_mutex_unlock(&s->lock);
    if (!sb)
        return 0;
    s->ops->kill(sb); /* in-flight execs fail fast */
    pthread_mutex_lock(&s->lock);
    while (s->inflight > 0)
        pthread_cond_wait(&s->idle, &s->lock);
    pthread_mutex_unlock(&s->lock);
    sbx__ports_stop(s); /* the listeners close with the sandbox */
    return s->ops->destroy(sb, err);
}

/* Takes a reference on the running sandbox for one call; NULL when not running. */
static struct sbx_sandbox *sb_acquire(sbx_session *s)
{
    pthread_mutex_lock(&s->lock);
    struct sbx_sandbox *sb = s->state == ST_RUNNING ? s->sb : NULL;
    if (sb)
        s->inflight++;
    pthread_mutex_unlock(&s->lock);
    return sb;
}

static void sb_release(sbx_session *s)
{
    pthread_mutex_lock(&s->lock);
    if (--s->inflight == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->lock);
}

int sbx__session_running_raw(sbx_session *s)
{
    if (!s)
        return 0;
    struct sbx_sandbox *sb = sb_acquire(s);
    if (!sb)
        return 0;
    int alive = s->ops->alive(sb);
    sb_release(s);
    return alive;
}

const char *sbx_session_workspace(const sbx_session *s)
{
    return (s && s->workspace && s->workspace[0]) ? s->workspace : NULL;
}

const char *sbx_session_root(const sbx_session *s)
{
    return s ? s->root : NULL;
}

const char *sbx_session_id(const sbx_session *s)
{
    return s ? s->id : NULL;
}

pid_t sbx_session_agent_pid(const sbx_session *s)
{
    if (!s)
        return 0;
    sbx_session *m = (sbx_session *)s; /* the lock is not part of the logical state */
    pthread_mutex_lock(&m->lock);
    pid_t pid = m->state == ST_RUNNING ? m->ops->agent_pid(m->sb) : 0;
    pthread_mutex_unlock(&m->lock);
    return pid;
}

int sbx_session_landlock_abi(const sbx_session *s)
{
    if (!s)
        return -1;
    sbx_session *m = (sbx_session *)s; /* the lock is not part of the logical state */
    pthread_mutex_lock(&m->lock);
    int abi = m->state == ST_RUNNING && m->ops->landlock_abi ? m->ops->landlock_abi(m->sb) : -1;
    pthread_mutex_unlock(&m->lock);
    return abi;
}

/* The quota workspace's host mount goes with the handle (the sandbox, if it runs on,
 * keeps its own). */
static void quota_release(sbx_session *s)
{
    if (s->quota_mounted)
        sbx__wsq_unmount(s->workspace);
    s->quota_mounted = 0;
}

static void remove_owned_workspace(sbx_session *s)
{
    if (s->owned_dir && !(s->flags & SBX_SESSION_KEEP_WORKSPACE))
        sbx__rm_rf(s->owned_dir);
}

void sbx_session_free(sbx_session *s)
{
    if (!s)
        return;
    /* The workspace is removed only once nothing of the sandbox is left: a process still
     * alive could move directories under the removal and steer it out of the tree. */
    if (s->attached) {
        /* Someone else's sandbox: leave it running, and its workspace in place. */
        sbx__ports_stop(s);
        if (s->state == ST_RUNNING)
            s->ops->detach(s->sb);
        s->sb = NULL;
        s->state = ST_DOWN;
        quota_release(s);
    } else {
        if (s->state == ST_RUNNING)
            sbx_session_shutdown(s, NULL);
        quota_release(s);
        /* A handle that never started anything (a resumed state, say) removes nothing. */
        if (s->started)
            remove_owned_workspace(s);
    }
    sbx__pty_reg_free(s->pty);
    sbx__net_clear(&s->net);
    free(s->control_socket);
    free(s->cpuset);
    free(s->cgroup_parent);
    free(s->owned_dir);
    free(s->workspace);
    free(s->root);
    free(s->hostname);
    for (size_t i = 0; i < s->n_binds; i++) {
        free((char *)s->binds[i].src);
        free((char *)s->binds[i].dst);
    }
    free(s->binds);
    sbx__strv_free(s->env);
    free(s->agent_path);
    sbx__sc_free(&s->seccomp);
    free(s->seccomp_bpf);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->lock);
    sbx__strv_free(s->files.skip);
    pthread_mutex_destroy(&s->files.lock);
    sbx__life_clear(&s->life);
    pthread_mutex_destroy(&s->life.lock);
    pthread_mutex_destroy(&s->life.close_lock);
    pthread_mutex_destroy(&s->ports.lock);
    sbx__session_ev_free(s); /* after shutdown(): its events are delivered */
    free(s);
}

/* ---- exec ------------------------------------------------------------------------------ */

static int resolve_user(const sbx_session *s, const char *user, uint32_t *uid, uint32_t *gid,
                        const char **name, sbx_error **err)
{
    if (!user || !*user || strcmp(user, SBX_SANDBOX_USER) == 0) {
        *uid = s->ids.sandbox_uid;
        *gid = s->ids.sandbox_gid;
        *name = SBX_SANDBOX_USER;
        return 0;
    }
    char *end = NULL;
    unsigned long v = strtoul(user, &end, 10);
    int numeric = user[0] >= '0' && user[0] <= '9' && end && *end == '\0';
    if (strcmp(user, "root") == 0 || (numeric && v == 0)) {
        if (!s->ids.range_mapped)
            return sbx_err(err, SBX_EINVAL, 0, "exec",
                           "user 'root' is not available: sbx runs unprivileged, so only the "
                           "sandbox user (uid %u) is mapped",
                           s->ids.sandbox_uid);
        *uid = *gid = 0;
        *name = "root";
        return 0;
    }
    if (numeric && s->ids.range_mapped && v < 65536) {
        *uid = *gid = (uint32_t)v;
        *name = user;
        return 0;
    }
    if (numeric && v == s->ids.sandbox_uid) {
        *uid = s->ids.sandbox_uid;
        *gid = s->ids.sandbox_gid;
        *name = SBX_SANDBOX_USER;
        return 0;
    }
    if (sbx__life_user((sbx_session *)s, user, uid, gid) == 0) {
        *name = user;
        return 0;
    }
    return sbx_err(err, SBX_EINVAL, 0, "exec",
                   "unknown user '%s': use 'sandbox', 'root', a manifest user or a uid below "
                   "65536",
                   user);
}

/* Sets or replaces KEY=... in a NULL-terminated vector being built (v has room). */
static int env_put(char **v, size_t *n, const char *kv)
{
    size_t k = (size_t)(strchr(kv, '=') - kv);
    char *copy = strdup(kv);
    if (!copy)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (strncmp(v[i], kv, k + 1) == 0) {
            free(v[i]);
            v[i] = copy;
            return 0;
        }
    }
    v[(*n)++] = copy;
    return 0;
}

static char **build_env(const sbx_session *s, const char *const *extra, const char *user)
{
    size_t cap = 8 + sbx__strv_len((const char *const *)s->env) + sbx__strv_len(extra) + 1;
    char **v = calloc(cap, sizeof(*v));
    if (!v)
        return NULL;
    size_t n = 0;
    char home[4200], usr[300], lognm[300];
    snprintf(home, sizeof(home), "HOME=%s", s->root);
    snprintf(usr, sizeof(usr), "USER=%s", user);
    snprintf(lognm, sizeof(lognm), "LOGNAME=%s", user);
    const char *base[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          home, usr, lognm, "SHELL=/bin/sh", "LANG=C.UTF-8", NULL};
    int fail = 0;
    for (size_t i = 0; base[i]; i++)
        fail |= env_put(v, &n, base[i]);
    for (size_t i = 0; s->env && s->env[i]; i++)
        fail |= env_put(v, &n, s->env[i]);
    for (size_t i = 0; extra && extra[i]; i++)
        fail |= env_put(v, &n, extra[i]);
    if (fail) {
        sbx__strv_free(v);
        return NULL;
    }
    return v;
}

static char *build_cwd(const sbx_session *s, const char *cwd)
{
    char *r = NULL;
    if (!cwd || !*cwd)
        return strdup(s->root);
    if (cwd[0] == '/')
        return strdup(cwd);
    if (asprintf(&r, "%s/%s", s->root, cwd) < 0)
        return NULL;
    return r;
}

static int check_exec_opts(const sbx_exec_opts *o, sbx_error **err)
{
    if (!o)
        return sbx_err(err, SBX_EINVAL, 0, "exec", "exec options are NULL");
    if (o->size != sizeof(*o))
        return sbx_err(err, SBX_EINVAL, 0, "exec",
                       "sbx_exec_opts.size is %zu, expected %zu: fill it with SBX_EXEC_OPTS_INIT",
                       o->size, sizeof(*o));
    if (o->flags & ~(unsigned)SBX_EXEC_FLAGS_ALL)
        return sbx_err(err, SBX_EINVAL, 0, "exec", "unknown exec flags 0x%x", o->flags);
    if (!(o->timeout_s >= 0) || o->timeout_s > 1e9)
        return sbx_err(err, SBX_EINVAL, 0, "exec", "timeout_s must be >= 0 (0 = none), got %g",
                       o->timeout_s);
    if (!env_ok(o->env))
        return sbx_err(err, SBX_EINVAL, 0, "exec", "environment entries must be K=V");
    if ((o->flags & SBX_EXEC_STDIN_FD) && isatty(o->stdin_fd))
        return sbx_err(err, SBX_EINVAL, 0, "exec",
                       "stdin_fd is a terminal: sbx never hands a host terminal to sandboxed "
                       "code (it could inject input with TIOCSTI); use a PTY session");
    return 0;
}

int sbx__session_exec_raw(sbx_session *s, const sbx_exec_opts *o, sbx_exec_result **out,
                          sbx_error **err)
{
    *out = NULL;
    int r = check_exec_opts(o, err);
    if (r < 0)
        return r;
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "exec", "session is NULL");
    uint32_t uid = 0, gid = 0;
    const char *uname = NULL;
    if ((r = resolve_user(s, o->user, &uid, &gid, &uname, err)) < 0)
        return r;
    char **argv = NULL;
    if ((r = sbx_exec_build_argv(o, &argv, err)) < 0)
        return r;
    char **env = build_env(s, o->env, uname);
    char *cwd = build_cwd(s, o->cwd);
    sbx_exec_result *res = calloc(1, sizeof(*res));
    if (!env || !cwd || !res) {
        r = sbx_err(err, SBX_ENOMEM, 0, "exec", "out of memory");
        goto out;
    }
    struct sbx_backend_exec x = {
        .argv = argv,
        .env = env,
        .cwd = cwd,
        .uid = uid,
        .gid = gid,
        .timeout_s = o->timeout_s,
        .max_output_bytes = o->max_output_bytes ? o->max_output_bytes : SBX_EXEC_DEFAULT_MAX_OUTPUT,
        .stdin_fd = (o->flags & SBX_EXEC_STDIN_FD) ? o->stdin_fd : -1,
        .stdout_fd = (o->flags & SBX_EXEC_STREAM_STDOUT) ? o->stdout_fd : -1,
        .stderr_fd = (o->flags & SBX_EXEC_STREAM_STDERR) ? o->stderr_fd : -1,
    };
    struct sbx_backend_exec_out bo = {0};
    struct sbx_sandbox *sb = sb_acquire(s);
    if (!sb) {
        r = sbx_err(err, SBX_ESTATE, 0, "exec", "session is not running: call start() first");
        goto out;
    }
    r = s->ops->exec(sb, &x, &bo, err);
    if (r == SBX_EEXEC_TRANSPORT && !s->ops->alive(sb))
        sbx_err_wrap(err, "the sandbox is gone");
    sb_release(s);
    if (r < 0) {
        char *joined = NULL;
        for (size_t i = 0; argv[i]; i++) {
            char *n = NULL;
            if (asprintf(&n, "%s%s%s", joined ? joined : "", joined ? " " : "", argv[i]) < 0)
                break;
            free(joined);
            joined = n;
        }
        sbx_err_ctx(err, "command_str", "%s", joined ? joined : argv[0]);
        free(joined);
        goto out;
    }
    res->exit_code = bo.exit_code;
    res->term_signal = bo.term_signal;
    res->out = bo.out;
    res->out_len = bo.out_len;
    res->out_dropped = bo.out_dropped;
    res->err = bo.err;
    res->err_len = bo.err_len;
    res->err_dropped = bo.err_dropped;
    res->duration_ms = bo.duration_ms;
    res->oom_killed = bo.oom_killed;
    res->memory_peak = bo.memory_peak;
    res->cpu_ms = bo.cpu_ms;
    *out = sbx_steal_ptr(&res);
out:
    free(res);
    sbx__strv_free(argv);
    sbx__strv_free(env);
    free(cwd);
    return r;
}

/* ---- one-shot ---------------------------------------------------------------------------- */

int sbx_run(const sbx_session_opts *so, const sbx_exec_opts *xo, sbx_exec_result **out,
            sbx_error **err)
{
    *out = NULL;
    int r = check_exec_opts(xo, err);
    if (r < 0)
        return r;
    sbx_session *s = NULL;
    if ((r = sbx_session_new(so, &s, err)) < 0)
        return r;
    s->one_shot = 1; /* a zygote would be work for a second command that never comes */
    if (sbx__life_needs_materialize(s) || sbx__session_ev_enabled(s) ||
        s->net.mode != SBX_NET_NONE) {
        /* A manifest or snapshot to apply first, events (whose start must finish before the
         * exec's start), or a network to serve before the command runs: no pipelining. */
        if ((r = sbx_session_start(s, err)) == 0)
            r = sbx_session_exec(s, xo, out, err);
        sbx_session_free(s);
        return r;
    }
    if ((r = start_sandbox(s, 1, err)) < 0) {
        sbx_session_free(s);
        return r;
    }
    /* The exec is queued behind the sandbox's CONFIG and starts as soon as the root is
     * ready: no round trip through READY. If the build failed, the exec fails too, and the
     * error worth reporting is the build's. */
    sbx_error *xerr = NULL;
    int rx = sbx_session_exec(s, xo, out, &xerr);
    sbx_error *werr = NULL;
    int rw = s->ops->start_wait(s->sb, &werr);
    if (rw < 0) {
        /* start_wait freed the sandbox on failure. */
        pthread_mutex_lock(&s->lock);
        s->sb = NULL;
        s->state = ST_DOWN;
        pthread_mutex_unlock(&s->lock);
        sbx_exec_result_free(*out);
        *out = NULL;
        sbx_error_free(xerr);
        sbx_err_ctx(&werr, "session_id", "%s", s->id);
        r = rw;
        if (err)
            *err = werr;
        else
            sbx_error_free(werr);
    } else {
        r = rx;
        if (err)
            *err = xerr;
        else
            sbx_error_free(xerr);
    }
    sbx_session_free(s);
    return r;
}

int sbx_seccomp_check(const char *policy, int allow_ptrace, char **out, sbx_error **err)
{
    *out = NULL;
    struct sbx_sc_policy p;
    int r = sbx__sc_parse(policy ? policy : sbx_seccomp_default_policy(), allow_ptrace, &p, err);
    if (r < 0)
        return r;
    unsigned char *bpf = NULL;
    size_t len = 0;
    r = sbx__ns_backend_ops.seccomp_compile(&p, &bpf, &len, err);
    free(bpf);
    if (r == 0 && !(*out = sbx__sc_print(&p)))
        r = sbx_err(err, SBX_ENOMEM, 0, "seccomp", "out of memory");
    sbx__sc_free(&p);
    return r;
}

/* ---- for the other core files (core.h) ------------------------------------------------- */

struct sbx_sandbox *sbx__session_acquire(sbx_session *s, const struct sbx_backend_ops **ops,
                                         const char *op, sbx_error **err)
{
    if (!s) {
        sbx_err(err, SBX_EINVAL, 0, op, "session is NULL");
        return NULL;
    }
    struct sbx_sandbox *sb = sb_acquire(s);
    if (!sb) {
        sbx_err(err, SBX_ESTATE, 0, op, "session is not running: call start() first");
        return NULL;
    }
    *ops = s->ops;
    return sb;
}

void sbx__session_release(sbx_session *s)
{
    sb_release(s);
}

int sbx__session_user(const sbx_session *s, const char *user, uint32_t *uid, uint32_t *gid,
                      sbx_error **err)
{
    const char *name;
    return resolve_user(s, user, uid, gid, &name, err);
}

uint32_t sbx__session_sandbox_uid(const sbx_session *s)
{
    return s->ids.sandbox_uid;
}

int sbx__session_exec_prep(sbx_session *s, const sbx_exec_opts *o, char ***argv, char ***env,
                           char **cwd, uint32_t *uid, uint32_t *gid, sbx_error **err)
{
    const char *uname = NULL;
    int r = resolve_user(s, o->user, uid, gid, &uname, err);
    if (r < 0 || (r = sbx_exec_build_argv(o, argv, err)) < 0)
        return r;
    *env = build_env(s, o->env, uname);
    *cwd = build_cwd(s, o->cwd);
    if (!*env || !*cwd) {
        sbx__strv_free(*argv);
        sbx__strv_free(*env);
        free(*cwd);
        *argv = *env = NULL;
        *cwd = NULL;
        return sbx_err(err, SBX_ENOMEM, 0, "exec", "out of memory");
    }
    return 0;
}

struct sbx_session_net *sbx__session_net(sbx_session *s)
{
    return &s->net;
}

struct sbx_session_ports *sbx__session_ports(sbx_session *s)
{
    return &s->ports;
}

struct sbx_pty_reg *sbx__session_pty(sbx_session *s)
{
    return s->pty;
}

struct sbx_session_files *sbx__session_files(sbx_session *s)
{
    return &s->files;
}

struct sbx__ev_bind **sbx__session_ev(sbx_session *s)
{
    return &s->ev;
}

struct sbx_session_life *sbx__session_life(sbx_session *s)
{
    return &s->life;
}

const char *sbx__session_id_buf(sbx_session *s, const char *id)
{
    if (id)
        snprintf(s->id, sizeof(s->id), "%s", id);
    return s->id;
}

int sbx__session_set_root(sbx_session *s, const char *root)
{
    char *r = strdup(root);
    if (!r)
        return -1;
    free(s->root);
    s->root = r;
    return 0;
}

int sbx__session_set_workspace(sbx_session *s, const char *ws)
{
    char *w = ws ? strdup(ws) : NULL;
    if (ws && !w)
        return -1;
    free(s->workspace);
    s->workspace = w;
    return 0;
}

int sbx__session_set_owned_dir(sbx_session *s, const char *dir)
{
    char *d = strdup(dir);
    if (!d)
        return -1;
    free(s->owned_dir);
    s->owned_dir = d;
    return 0;
}

int sbx__session_prepend_env(sbx_session *s, char **env)
{
    size_t a = sbx__strv_len((const char *const *)env), b = sbx__strv_len((const char *const *)s->env);
    char **v = calloc(a + b + 1, sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < a; i++)
        v[i] = env[i];
    for (size_t i = 0; i < b; i++)
        v[a + i] = s->env[i];
    free(env);
    free(s->env);
    s->env = v;
    return 0;
}

int sbx__session_running_flag(sbx_session *s)
{
    pthread_mutex_lock(&s->lock);
    int r = s->state == ST_RUNNING;
    pthread_mutex_unlock(&s->lock);
    return r;
}

int sbx_session_attach(sbx_session *s, const char *control_socket, pid_t agent_pid,
                       sbx_error **err)
{
    if (!s || !control_socket || agent_pid <= 0)
        return sbx_err(err, SBX_EINVAL, 0, "attach",
                       "session, control socket and agent pid are required");
    if (s->state != ST_NEW)
        return sbx_err(err, SBX_ESTATE, 0, "attach",
                       "attach needs a session that was not started");
    struct sbx_sandbox *sb = NULL;
    int r = s->ops->attach(control_socket, agent_pid, s->id, &sb, err);
    if (r < 0)
        return r;
    pthread_mutex_lock(&s->lock);
    if (!s->workspace && !(s->workspace = strdup(""))) {
        pthread_mutex_unlock(&s->lock);
        s->ops->detach(sb);
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "attach", "out of memory");
    }
    s->sb = sb;
    s->attached = 1;
    s->state = ST_RUNNING;
    assert_state(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int sbx_session_disown(sbx_session *s, sbx_error **err)
{
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "disown", "session is NULL");
    if (!(s->flags & SBX_SESSION_DETACHED) && !s->attached)
        return sbx_err(err, SBX_ESTATE, 0, "disown",
                       "only a DETACHED session's sandbox can outlive its handle");
    pthread_mutex_lock(&s->lock);
    int running = s->state == ST_RUNNING && s->inflight == 0;
    struct sbx_sandbox *sb = running ? s->sb : NULL;
    if (running) {
        s->sb = NULL;
        s->state = ST_DOWN;
        s->attached = 1; /* free() must not touch the workspace either */
    }
    pthread_mutex_unlock(&s->lock);
    if (!running)
        return sbx_err(err, SBX_ESTATE, 0, "disown", "session is not running, or calls are "
                                                     "in flight");
    sbx__ports_stop(s);
    s->ops->detach(sb);
    sbx_session_free(s);
    return 0;
}
