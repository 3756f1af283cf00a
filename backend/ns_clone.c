/* ns_clone.c — creating a sandbox: clone into fresh namespaces, id maps, the agent.
 *
 * The embedder may be multi-threaded and have a large heap, so the child is made the way
 * posix_spawn makes one: clone3(CLONE_VM | CLONE_VFORK) on a small stack of its own, so no
 * page table is copied and the parent is suspended until the child has exec'd. The child
 * runs only raw system calls. Everything that allocates happens in the parent before the
 * clone or in the agent after exec.
 *
 * clone3(2) needs a small trampoline to start the child on its own stack (clone_stack.c);
 * with it the agent can later be started straight into its cgroup (CLONE_INTO_CGROUP).
 *
 * Sequence (parent | child):
 *   open agent, /dev/null, socketpair, detached mount trees (open_tree)
 *   clone3(VM|VFORK|NEWUSER|NEWPID|NEWNS|NEWUTS|NEWIPC|NEWCGROUP|PIDFD, exit signal 0)
 *     (suspended)                  | signals to default, setsid, ambient caps, fds 0-2 =
 *                                  | /dev/null, 3 = socket, rest close-on-exec; execveat
 *   write uid_map/gid_map          | agent: forks the network namespace helper, waits
 *   send CONFIG + mount fds        | agent: takes its mapped ids, builds the root while the
 *                                  | helper makes the netns; pivot_root; setns(netns)
 *   wait READY or SETUP_ERROR      | READY
 *
 * Exit signal 0 makes the agent a "clone child" that waitpid(-1) in the embedder (a SIGCHLD
 * handler in a Python host, say) cannot reap from under us; we wait on the pidfd with __WALL.
 * The sandbox dies with the embedder because the agent exits when the main socket closes;
 * PR_SET_PDEATHSIG is deliberately not used: it fires when the *thread* that created the
 * child exits, which would kill sandboxes of a multi-threaded embedder at random.
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/securebits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cgroup.h"
#include "ns.h"
#include "wire_msgs.h"
#include <sbx/session.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define SBX_START_TIMEOUT_MS 30000

struct prep {
    int agent_fd, devnull, sv[2];
    int mount_fds[SBX_WIRE_MAX_MOUNTS];
    size_t n_mount_fds;
    int last_cap;
    int unprivileged;
    /* Pre-built SETUP_ERROR frame the child writes if execveat fails; errno patched in. */
    unsigned char fail_frame[64];
    size_t fail_len, fail_errno_off;
};

static void prep_close(struct prep *p)
{
    int *fds[] = {&p->agent_fd, &p->devnull, &p->sv[0], &p->sv[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    for (size_t i = 0; i < p->n_mount_fds; i++)
        close(p->mount_fds[i]);
    p->n_mount_fds = 0;
}

static void build_fail_frame(struct prep *p)
{
    static const char stage[] = "exec_agent";
    struct sbx_wire_hdr h = {.type = SBX_MSG_SETUP_ERROR,
                             .len = 4 + 4 + (uint32_t)(sizeof(stage) - 1) + 4};
    unsigned char *q = p->fail_frame;
    uint32_t zero = 0, sl = sizeof(stage) - 1;
    memcpy(q, &h, sizeof(h));
    q += sizeof(h);
    p->fail_errno_off = (size_t)(q - p->fail_frame);
    memcpy(q, &zero, 4);
    q += 4;
    memcpy(q, &sl, 4);
    q += 4;
    memcpy(q, stage, sl);
    q += sl;
    memcpy(q, &zero, 4); /* empty detail */
    q += 4;
    p->fail_len = (size_t)(q - p->fail_frame);
}

/* execve() would drop the capabilities the agent needs to build the root, because the
 * child's uid is not (yet) mapped in its new user namespace: carry them across as ambient
 * capabilities. The agent switches to its real identity once the maps are written. */
static void raise_ambient(int last_cap)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0)
        return;
    d[0].inheritable = d[0].permitted;
    d[1].inheritable = d[1].permitted;
    if (syscall(SYS_capset, &h, d) < 0)
        return;
    for (int c = 0; c <= last_cap; c++)
        syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
}

struct child_arg {
    struct prep *p;
    const sigset_t *old_mask;
};

/* Runs on its own small stack, sharing the parent's memory (CLONE_VM|CLONE_VFORK: the parent
 * is suspended until execve, and no page table is copied, which matters for embedders with
 * large heaps). Only raw system calls: no locks, no allocation, no glibc state. */
static int child_main(void *arg)
{
    struct prep *p = ((struct child_arg *)arg)->p;
    /* The embedder's signal handlers must not run here (they would act on the parent's
     * state), and its terminal's signals (Ctrl-C to its process group) must not reach the
     * sandbox: default dispositions and a new session. Signals stay blocked until exec. */
    struct kernel_sigaction {
        void *handler; /* SIG_DFL is 0 */
        unsigned long flags;
        void *restorer;
        uint64_t mask;
    } dfl = {0};
    for (int sig = 1; sig < _NSIG; sig++)
        syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
    syscall(SYS_setsid);
    /* The owner switch (owner_enter) left SECBIT_NO_SETUID_FIXUP set in these credentials:
     * the agent starts with none (it has every capability in its new user namespace). */
    syscall(SYS_prctl, PR_SET_SECUREBITS, 0UL, 0UL, 0UL, 0UL);
    raise_ambient(p->last_cap);
    if (syscall(SYS_dup2, p->sv[1], SBX_AGENT_SOCK_FD) < 0 ||
        syscall(SYS_dup2, p->devnull, 0) < 0 || syscall(SYS_dup2, p->devnull, 1) < 0 ||
        syscall(SYS_dup2, p->devnull, 2) < 0)
        syscall(SYS_exit, 126);
    /* The embedder's own fds (even ones it forgot to mark CLOEXEC) never reach the agent. */
    syscall(SYS_close_range, SBX_AGENT_SOCK_FD + 1, ~0u, CLOSE_RANGE_CLOEXEC);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, ((struct child_arg *)arg)->old_mask, NULL,
            _NSIG / 8);
    char *const argv[] = {"sbx-agent", NULL};
    char *const envp[] = {NULL};
    long e = syscall(SYS_execveat, p->agent_fd, "", argv, envp, AT_EMPTY_PATH);
    /* syscall() stored the error in errno, i.e. in the suspended parent's thread: read it
     * back before the parent runs again. */
    int32_t en = e < 0 ? errno : EIO;
    memcpy(p->fail_frame + p->fail_errno_off, &en, 4);
    syscall(SYS_write, SBX_AGENT_SOCK_FD, p->fail_frame, p->fail_len);
    syscall(SYS_exit, 127);
    return 127;
}

/* Root callers: the sandbox's user namespace is owned by a host uid of its own, not by root.
 * The kernel charges what processes inside hold under per-user limits (inotify instances and
 * watches, fanotify groups, ...) to the namespace's owner in the parent namespace as well:
 * owned by root, one sandbox could take all of host root's inotify instances, and systemd's
 * and udev's with them. The owner is one of 65535 ids just above the mapped range (uid_base
 * + 65537 on), picked from the session id, so sandboxes rarely share a budget either; no
 * host process runs as one of them. */
static uint32_t userns_owner(uint32_t uid_base, const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *q = id; q && *q; q++)
        h = (h ^ (unsigned char)*q) * 16777619u;
    return uid_base + SBX_AGENT_UID + 1 + h % 65535u;
}

/* The cloning thread takes the owner's uid for the clone alone (raw system calls: this thread
 * only, not the embedder's others), keeping its capabilities (SECBIT_NO_SETUID_FIXUP) for
 * CLONE_INTO_CGROUP's permission checks. Without CAP_SETPCAP or CAP_SETUID it stays as it is,
 * and the namespace is owned by the caller as before. */
struct owner_swap {
    long secbits;
    uid_t ruid, euid, suid;
    int active;
};

static void owner_enter(struct owner_swap *o, uint32_t owner)
{
    o->active = 0;
    if (syscall(SYS_getresuid, &o->ruid, &o->euid, &o->suid) < 0)
        return;
    o->secbits = syscall(SYS_prctl, PR_GET_SECUREBITS, 0UL, 0UL, 0UL, 0UL);
    if (o->secbits < 0 ||
        syscall(SYS_prctl, PR_SET_SECUREBITS,
                (unsigned long)o->secbits | SECBIT_NO_SETUID_FIXUP, 0UL, 0UL, 0UL) < 0)
        return;
    if (syscall(SYS_setresuid, owner, owner, (uid_t)-1) < 0) {
        syscall(SYS_prctl, PR_SET_SECUREBITS, (unsigned long)o->secbits, 0UL, 0UL, 0UL);
        return;
    }
    o->active = 1;
}

static void owner_leave(struct owner_swap *o)
{
    if (!o->active)
        return;
    syscall(SYS_setresuid, o->ruid, o->euid, o->suid);
    syscall(SYS_prctl, PR_SET_SECUREBITS, (unsigned long)o->secbits, 0UL, 0UL, 0UL);
    o->active = 0;
}

/* A detached copy of a host directory tree, made here where the caller's privileges apply,
 * then moved into place by the agent (which, as a mapped uid, may not even be able to look
 * the path up). */
static int tree_fd(const char *src, int readonly, sbx_error **err)
{
    int fd = open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0)
        return sbx_err(err, errno == ENOENT ? SBX_EINVAL : SBX_EBACKEND, errno, "start",
                       "cannot bind '%s'", src);
    /* A clone keeps the source's peer group: without MS_PRIVATE, a mount made inside would
     * appear on the host (and the host's later mounts inside, without nosuid/nodev). */
    struct mount_attr a = {.propagation = MS_PRIVATE};
    if (readonly)
        a.attr_set = MOUNT_ATTR_RDONLY;
    if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0) {
        int e = errno;
        close(fd);
        return sbx_err(err, SBX_EBACKEND, e, "start", "make the bind of '%s' private%s", src,
                       readonly ? " and read-only" : "");
    }
    return fd;
}

static int add_mount(struct prep *p, struct sbx_wire_config *cfg, const char *src,
                     const char *dst, int readonly, sbx_error **err)
{
    struct sbx_wire_mount *m = &cfg->mounts[cfg->n_mounts];
    m->dst = (char *)dst;
    m->flags = readonly ? SBX_MOUNT_RO : 0;
    if (p->unprivileged) {
        m->kind = SBX_MOUNT_PATH;
        m->src = (char *)src;
    } else {
        int fd = tree_fd(src, readonly, err);
        if (fd < 0)
            return fd;
        m->kind = SBX_MOUNT_FD;
        m->fd_index = (uint32_t)p->n_mount_fds;
        p->mount_fds[p->n_mount_fds++] = fd;
    }
    cfg->n_mounts++;
    return 0;
}

/* Moves an fd to 10 or above, so that the child's dup2() onto 0-3 cannot clobber it. */
static int high_fd(int fd)
{
    if (fd < 0 || fd >= 10)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    int e = errno;
    close(fd);
    errno = e;
    return h;
}

static int prepare(const struct sbx_backend_config *c, const char *agent, struct prep *p,
                   struct sbx_wire_config *cfg, sbx_error **err)
{
    p->agent_fd = high_fd(open(agent, O_PATH | O_CLOEXEC));
    if (p->agent_fd < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "open sbx-agent '%s'", agent);
    p->devnull = high_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (p->devnull < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "open /dev/null");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p->sv) < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "socketpair");
    p->sv[1] = high_fd(p->sv[1]);
    if (p->sv[1] < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "dup");
    p->last_cap = sbx__cap_last();
    build_fail_frame(p);
    if (c->n_binds + 1 > SBX_WIRE_MAX_MOUNTS)
        return sbx_err(err, SBX_EINVAL, 0, "start", "too many binds (%zu, at most %d)",
                       c->n_binds, SBX_WIRE_MAX_MOUNTS - 1);
    int r;
    if (!c->workspace) { /* ephemeral: a tmpfs the agent makes, nothing on the host */
        cfg->mounts[0] = (struct sbx_wire_mount){.kind = SBX_MOUNT_TMPFS, .dst = (char *)c->root};
        cfg->n_mounts = 1;
        r = 0;
    } else {
        r = add_mount(p, cfg, c->workspace, c->root, 0, err);
    }
    if (r == 0 && c->workspace && !p->unprivileged) {
        r = sbx__ns_idmap_workspace(p->mount_fds[0], c->uid_base, err);
        r = r > 0 ? 0 : r;
    }
    for (size_t i = 0; r == 0 && i < c->n_binds; i++)
        r = add_mount(p, cfg, c->binds[i].src, c->binds[i].dst, c->binds[i].readonly, err);
    return r;
}

static int recv_ready(struct sbx_sandbox *sb, sbx_error **err)
{
    struct pollfd pf = {.fd = sb->sock, .events = POLLIN};
    uint64_t until = sbx__now_ns() + (uint64_t)SBX_START_TIMEOUT_MS * 1000000;
    int n;
    do {
        uint64_t now = sbx__now_ns();
        n = now >= until ? 0 : poll(&pf, 1, (int)((until - now) / 1000000) + 1);
    } while (n < 0 && errno == EINTR);
    if (n == 0)
        return sbx_err(err, SBX_EBACKEND, ETIMEDOUT, "start",
                       "sandbox agent did not become ready within %d s",
                       SBX_START_TIMEOUT_MS / 1000);
    struct sbx_wire_hdr h;
    unsigned char *p = NULL;
    int r = sbx__wire_recv(sb->sock, &h, &p, NULL, 0, NULL);
    if (r < 0)
        return sbx_err(err, SBX_EBACKEND, -r, "start",
                       "sandbox agent exited while starting");
    if (h.type == SBX_MSG_READY) {
        struct sbx_rbuf rb = {.data = p, .len = h.len};
        uint32_t abi = sbx__rbuf_u32(&rb);
        sb->landlock_abi = rb.bad ? -1 : (int)abi;
        free(p);
        return 0;
    }
    struct sbx_rbuf rb = {.data = p, .len = h.len};
    uint32_t e = sbx__rbuf_u32(&rb);
    char *stage = sbx__rbuf_str(&rb);
    char *detail = sbx__rbuf_str(&rb);
    int code = SBX_EBACKEND;
    if (e == ENOENT && stage && strcmp(stage, "exec_agent") == 0)
        code = SBX_EINVAL;
    sbx_err(err, code, (int)e, "start", "sandbox setup failed at %s%s%s",
            stage ? stage : "?", detail && *detail ? " for " : "", detail ? detail : "");
    sbx_err_ctx(err, "stage", "%s", stage ? stage : "?");
    if (detail && *detail)
        sbx_err_ctx(err, "path", "%s", detail);
    free(stage);
    free(detail);
    free(p);
    return code;
}

static void kill_and_reap(struct sbx_sandbox *sb)
{
    syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0);
    if (sb->attached) {
        /* Not our child: its parent reaps it; wait until it is gone. */
        sbx__ns_wait_gone(sb);
        sb->dead = 1;
        return;
    }
    siginfo_t si;
    while (waitid(P_PIDFD, (id_t)sb->pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
        ;
    sb->dead = 1;
}

static void free_failed(struct sbx_sandbox *sb)
{
    kill_and_reap(sb);
    sbx__cg_remove(sb->cg);
    close(sb->sock);
    close(sb->pidfd);
    pthread_mutex_destroy(&sb->lock);
    free(sb->id);
    free(sb);
}

/* Everything up to sending CONFIG; the agent builds the root after this returns. An exec may
 * be sent before start_wait(): it queues behind CONFIG and runs as soon as the root is ready
 * (the one-shot path saves a round trip that way). */
int sbx__ns_userns_error(int e, const char *what, sbx_error **err)
{
    if (e == EPERM || e == ENOSPC || e == EUSERS || e == EINVAL)
        return sbx_err(err, SBX_ENOSYS, e, "start",
                       "cannot create user namespaces here (see "
                       "/proc/sys/user/max_user_namespaces and "
                       "kernel.unprivileged_userns_clone)");
    return sbx_err(err, SBX_EBACKEND, e, "start", "%s", what);
}

int sbx__ns_start_begin(const struct sbx_backend_config *c, struct sbx_sandbox **out,
                        sbx_error **err)
{
    struct prep p = {.agent_fd = -1, .devnull = -1, .sv = {-1, -1}};
    struct sbx_wire_mount mounts[SBX_WIRE_MAX_MOUNTS] = {{0}};
    struct sbx_wire_config cfg = {.hostname = (char *)c->hostname,
                                  .root = (char *)c->root,
                                  .user_name = SBX_SANDBOX_USER,
                                  .mounts = mounts};
    struct sbx_backend_ids ids;
    sbx__ns_ids(&ids);
    p.unprivileged = !ids.range_mapped;
    cfg.flags = (c->detached ? SBX_CFG_DETACHED : 0) | (ids.range_mapped ? SBX_CFG_RANGE_MAP : 0) |
                (c->seccomp_builtin ? SBX_CFG_ZYGOTE : 0);
    cfg.sandbox_uid = ids.sandbox_uid;
    cfg.sandbox_gid = ids.sandbox_gid;

    sbx_autofree char *agent = NULL;
    int r = sbx__agent_path(c->agent_path, &agent, err);
    cfg.nproc = c->nproc;
    cfg.nofile = c->nofile;
    cfg.fsize = c->fsize;
    cfg.tmpfs_bytes = c->tmpfs_bytes;
    cfg.filter = (unsigned char *)c->seccomp_bpf;
    cfg.filter_len = (uint32_t)c->seccomp_bpf_len;
    cfg.accounts = (char **)c->accounts;
    cfg.groups = (char **)c->groups;
    cfg.listen_fd_index = UINT32_MAX;
    if (r == 0)
        r = prepare(c, agent, &p, &cfg, err);
    if (r == 0 && c->control_socket) {
        int lfd = sbx__ns_listen(c->control_socket, err);
        if (lfd < 0) {
            r = lfd;
        } else if (p.n_mount_fds >= SBX_WIRE_MAX_MOUNTS) {
            close(lfd);
            r = sbx_err(err, SBX_EINVAL, 0, "start", "too many mounts");
        } else {
            cfg.listen_fd_index = (uint32_t)p.n_mount_fds;
            p.mount_fds[p.n_mount_fds++] = lfd;
        }
    }
    struct sbx_cgroup *cg = NULL;
    struct sbx_cg_limits lim = {.memory_bytes = c->memory_bytes,
                                .pids_max = c->pids_max,
                                .cpus = c->cpus,
                                .io_weight = c->io_weight,
                                .cpuset = c->cpuset,
                                .io_read_bps = c->io_read_bps,
                                .io_write_bps = c->io_write_bps,
                                .io_path = c->workspace,
                                .parent = c->cgroup_parent,
                                .best_effort = c->cgroup_best_effort};
    if (r == 0)
        r = sbx__cg_create(c->id ? c->id : "session", &lim, &cg, err);
    struct sbx_sandbox *sb = NULL;
    if (r == 0 && !(sb = calloc(1, sizeof(*sb))))
        r = sbx_err(err, SBX_ENOMEM, 0, "start", "out of memory");
    if (r < 0) {
        prep_close(&p);
        sbx__cg_remove(cg);
        return r;
    }
    sb->sock = sb->pidfd = -1;
    sb->cg = cg;
    sb->landlock_abi = -1; /* until READY says */
    pthread_mutex_init(&sb->lock, NULL);
    sb->range_mapped = ids.range_mapped;

    int pidfd = -1;
    /* No CLONE_NEWNET: the agent makes the network namespace itself, in parallel with the root
     * filesystem (backend/agent/netns.c), still owned by this user namespace. Exit signal 0:
     * see the top of this file. */
    uint64_t flags = CLONE_VM | CLONE_VFORK | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS |
                     CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | CLONE_PIDFD;
    size_t stack_len = 64 * 1024;
    void *stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    long pid = -1;
    int e = ENOMEM;
    if (stack != MAP_FAILED) {
        /* Block every signal across clone so no handler of the embedder runs in the child. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        struct child_arg arg = {.p = &p, .old_mask = &old};
        struct clone_args ca = {.flags = flags,
                                .pidfd = (uint64_t)(uintptr_t)&pidfd,
                                .exit_signal = 0,
                                .stack = (uint64_t)(uintptr_t)stack,
                                .stack_size = stack_len};
        /* Straight into the unified session cgroup: charged from its first instruction. */
        if (sbx__cg_fd(cg) >= 0) {
            ca.flags |= CLONE_INTO_CGROUP;
            ca.cgroup = (uint64_t)sbx__cg_fd(cg);
        }
        struct owner_swap os = {.active = 0};
        if (ids.range_mapped)
            owner_enter(&os, userns_owner(c->uid_base, c->id));
        pid = sbx__clone3_on_stack(&ca, child_main, &arg);
        e = errno;
        owner_leave(&os);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        munmap(stack, stack_len); /* CLONE_VFORK: the child has exec'd or exited */
    }
    if (pid < 0) {
        prep_close(&p);
        sbx__cg_remove(sb->cg);
        free(sb);
        if (e == ENOSYS)
            return sbx_err(err, SBX_ENOSYS, e, "start", "clone3() is not available (Linux < 5.3)");
        return sbx__ns_userns_error(e, "clone3", err);
    }
    sb->pid = (pid_t)pid;
    sb->pidfd = pidfd;
    sb->sock = sbx_steal_fd(&p.sv[0]);
    sbx__ns_sock_timeouts(sb->sock);
    /* The agent is already running (waiting for CONFIG): it takes on its mapped identity
     * once it has the CONFIG, which is sent only after the maps are written. */
    r = sbx__ns_write_idmaps(sb->pid, ids.range_mapped, c->uid_base, err);
    /* v1 cgroups: the agent joins them before CONFIG, so before it starts anything. */
    if (r == 0)
        r = sbx__cg_attach_v1(sb->cg, sb->pid, err);
    if (r == 0) {
        struct sbx_wbuf b = {0};
        r = sbx__wire_config_encode(&cfg, &b);
        if (r == 0)
            r = sbx__wire_send(sb->sock, SBX_MSG_CONFIG, b.data, b.len, p.mount_fds,
                               p.n_mount_fds);
        sbx__wbuf_free(&b);
        /* EPIPE: the agent is already gone; its SETUP_ERROR frame says why. */
        if (r < 0 && r != -EPIPE)
            r = sbx_err(err, SBX_EBACKEND, -r, "start", "send the sandbox configuration");
        else
            r = 0;
    }
    prep_close(&p);
    if (r < 0) {
        free_failed(sb);
        return r;
    }
    sb->id = c->id ? strdup(c->id) : NULL;
    *out = sb;
    return 0;
}

int sbx__ns_start_wait(struct sbx_sandbox *sb, sbx_error **err)
{
    int r = recv_ready(sb, err);
    if (r < 0)
        free_failed(sb);
    return r;
}

int sbx__ns_start(const struct sbx_backend_config *c, struct sbx_sandbox **out,
                  sbx_error **err)
{
    struct sbx_sandbox *sb = NULL;
    int r = sbx__ns_start_begin(c, &sb, err);
    if (r == 0)
        r = sbx__ns_start_wait(sb, err);
    if (r == 0)
        *out = sb;
    return r;
}

void sbx__ns_kill_and_reap(struct sbx_sandbox *sb)
{
    kill_and_reap(sb);
}
