/* cgroup.c — a session's cgroup: limits on memory, processes, CPU and an I/O weight, on
 * cgroup v2 or v1.
 *
 * Layout (detected at every start, from /proc/self/cgroup and the mounts):
 *   - pure v2: the unified hierarchy at /sys/fs/cgroup holds every controller;
 *   - hybrid: v1 hierarchies per controller under /sys/fs/cgroup/<controller>, and a unified
 *     hierarchy at /sys/fs/cgroup/unified with few (often no) controllers;
 *   - pure v1: v1 hierarchies only.
 * A controller is taken from v2 when the unified hierarchy can hand it to the session
 * cgroup, else from its v1 hierarchy. Every session cgroup is "sbx-<session id>" below the
 * cgroup sbx itself runs in, in each hierarchy used; when that is a hierarchy's root, below a
 * "sbx" group there instead, so sessions never sit at the root itself. A configured parent
 * (the session's cgroup_parent, else $SBX_CGROUP_PARENT: a path from each hierarchy's root,
 * delegated to sbx) takes the place of sbx's own cgroup in every hierarchy. cgroup v2 hands controllers down only
 * from a cgroup without processes: when sbx is alone in its cgroup it moves itself into a
 * leaf "sbx-host" below it (see v2_session_parent). No process is moved out of its subtree.
 * The agent starts inside the v2 cgroup directly (CLONE_INTO_CGROUP) and is put into the v1
 * ones before it is given anything to run, so every process of the sandbox is charged from
 * its first command.
 *
 * A limit that cannot be enforced fails the start with an error naming the controller and
 * the layout found, unless the caller asked for best effort.
 *
 * The I/O weight is the v2 "io" controller (io.weight, 1..10000, default 100; io.bfq.weight
 * when only BFQ offers weights) or the v1 "blkio" hierarchy: blkio.weight (10..1000, default
 * 500) or, where the kernel has BFQ and no CFQ, blkio.bfq.weight (1..1000, default 100). The
 * v1 and BFQ values are scaled so that the defaults match (N * 500/100, N * 100/100) and
 * clamped to their range, as systemd maps IOWeight= to BlockIOWeight=. A weight only acts on
 * devices whose scheduler honours it (iocost or BFQ).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "error_internal.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

enum { CG_MEMORY, CG_PIDS, CG_CPU, CG_IO, CG_CPUSET, CG_N };
/* The controller's name in the unified hierarchy, and its v1 hierarchy's. */
static const char *const cg_name[CG_N] = {"memory", "pids", "cpu", "io", "cpuset"};
static const char *const cg_v1[CG_N] = {"memory", "pids", "cpu", "blkio", "cpuset"};

struct sbx_cgroup {
    char *v2;           /* session cgroup in the unified hierarchy, or NULL */
    int v2_fd;          /* O_PATH|O_DIRECTORY of v2, for CLONE_INTO_CGROUP */
    char *v1[CG_N];     /* session cgroups in v1 hierarchies used, or NULL */
    int from_v2[CG_N];  /* the controller is served by the unified hierarchy */
};

static int is_cgroup2(const char *path)
{
    struct statfs s;
    return statfs(path, &s) == 0 && (unsigned long)s.f_type == (unsigned long)CGROUP2_SUPER_MAGIC;
}

int sbx__cg_self_path(const char *ctrl, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return -1;
    char line[4096];
    int found = -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = '\0';
        int match = 0;
        if (!*ctrl) {
            match = a[1] == '\0';
        } else {
            /* "cpu,cpuacct" lists several controllers */
            for (char *tok = a + 1; *tok;) {
                size_t n = strcspn(tok, ",");
                if (n == strlen(ctrl) && !strncmp(tok, ctrl, n))
                    match = 1;
                tok += n + (tok[n] == ',');
            }
        }
        if (match && (size_t)snprintf(out, cap, "%s", strcmp(b + 1, "/") ? b + 1 : "") < cap)
            found = 0;
    }
    fclose(f);
    return found;
}

static int write_str(const char *dir, const char *file, const char *val)
{
    char path[4400];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = write(fd, val, strlen(val));
    int e = n < 0 ? errno : 0;
    close(fd);
    return n < 0 ? -e : 0;
}

static int read_str(const char *dir, const char *file, char *buf, size_t cap)
{
    char path[4400];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

const char *sbx__cg_v2_mount(void)
{
    if (is_cgroup2("/sys/fs/cgroup"))
        return "/sys/fs/cgroup";
    if (is_cgroup2("/sys/fs/cgroup/unified"))
        return "/sys/fs/cgroup/unified";
    return "";
}

const char *sbx__cg_layout(void)
{
    const char *m = sbx__cg_v2_mount();
    if (!strcmp(m, "/sys/fs/cgroup"))
        return "cgroup v2";
    return *m ? "hybrid (v1 controllers, v2 unified hierarchy)" : "cgroup v1";
}

/* The directory session cgroups go in: sbx's own cgroup, or "<root>/sbx" at a root. */
static int session_parent(const char *hier, const char *self, char *out, size_t cap)
{
    if (*self)
        return (size_t)snprintf(out, cap, "%s%s", hier, self) < cap ? 0 : -1;
    if ((size_t)snprintf(out, cap, "%s/sbx", hier) >= cap)
        return -1;
    return mkdir(out, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static int mkdir_cg(const char *path, sbx_error **err)
{
    if (mkdir(path, 0755) == 0)
        return 0;
    if (errno == ENOENT) {
        /* The "sbx" group was just removed by a session going away: make it again. */
        char parent[4600];
        snprintf(parent, sizeof(parent), "%s", path);
        char *slash = strrchr(parent, '/');
        if (slash) {
            *slash = '\0';
            mkdir(parent, 0755);
        }
        if (mkdir(path, 0755) == 0)
            return 0;
    }
    return sbx_err(err, errno == EACCES || errno == EPERM || errno == EROFS ? SBX_EPERM
                                                                          : SBX_EBACKEND,
                   errno, "start", "cannot create the session cgroup %s", path);
}

static int limit_err(sbx_error **err, const char *ctrl, int e, const char *what)
{
    int r = sbx_err(err, SBX_ENOSYS, e, "start",
                    "the %s limit cannot be enforced: %s (layout: %s); ask for best effort to "
                    "run without it",
                    ctrl, what, sbx__cg_layout());
    sbx_err_ctx(err, "controller", "%s", ctrl);
    sbx_err_ctx(err, "layout", "%s", sbx__cg_layout());
    return r;
}

void sbx__cg_free(struct sbx_cgroup *cg)
{
    if (!cg)
        return;
    if (cg->v2_fd >= 0)
        close(cg->v2_fd);
    free(cg->v2);
    for (int i = 0; i < CG_N; i++)
        free(cg->v1[i]);
    free(cg);
}

static int wanted(const struct sbx_cg_limits *l, int c)
{
    return (c == CG_MEMORY && l->memory_bytes) || (c == CG_PIDS && l->pids_max) ||
           (c == CG_CPU && l->cpus > 0) ||
           (c == CG_IO && (l->io_weight || l->io_read_bps || l->io_write_bps)) ||
           (c == CG_CPUSET && l->cpuset);
}

/* The controllers the unified cgroup `dir` lists in `file`, as a mask of 1 << CG_*
 * (cgroup.controllers: what its parent lets it hand down; cgroup.subtree_control: what it
 * hands down now). */
static unsigned v2_mask(const char *dir, const char *file)
{
    char buf[512];
    unsigned m = 0;
    if (read_str(dir, file, buf, sizeof(buf)) < 0)
        return 0;
    for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
        for (int c = 0; c < CG_N; c++)
            if (!strcmp(t, cg_name[c]))
                m |= 1u << c;
    return m;
}

/* The processes in a unified cgroup: 0 none, 1 only this process, 2 others too. */
static int v2_occupants(const char *dir)
{
    char buf[256];
    if (read_str(dir, "cgroup.procs", buf, sizeof(buf)) < 0)
        return 2;
    char *end = NULL;
    long first = strtol(buf, &end, 10);
    if (end == buf)
        return 0;
    while (*end == '\n')
        end++;
    return first == (long)getpid() && *end == '\0' && strlen(buf) < sizeof(buf) - 1 ? 1 : 2;
}

#define HOST_LEAF "sbx-host"

/* The unified cgroup that session cgroups go below, in `where`: $SBX_CGROUP_PARENT (a
 * delegated cgroup, relative to the hierarchy's root) when set; "<root>/sbx" when sbx runs at
 * the root; else sbx's own cgroup. Sets from_v2[c] for the wanted controllers it can hand
 * down, and enables them there.
 *
 * cgroup v2 hands a domain controller (memory, io) to children only from a cgroup that holds
 * no process, and enabling a threaded one (pids, cpu) in a cgroup with processes turns it
 * into a thread root whose children cannot take a process. So nothing is enabled in a cgroup
 * with processes. When sbx is alone in its own cgroup (a service or scope of its own), it
 * moves itself into a leaf "sbx-host" below it, which keeps it in its subtree, as systemd's
 * delegation rules ask of a supervisor; when other processes share it, the limit fails with
 * an error that names the fix. Returns 0 (also when v2 offers none of them) or an error. */
/* Where v2 session cgroups go (see v2_session_parent), creating and moving nothing: 1 with
 * `where` (and *own: it is sbx's own cgroup; *at_root: "<root>/sbx", made on demand), 0 when
 * the unified hierarchy has no place for them (sbx is in none of its cgroups, or a configured
 * parent is missing there on a hybrid host), or -1 with errno (ENAMETOOLONG; ENOENT: the
 * configured parent is missing on pure v2). */
static int v2_target(const char *mnt, const char *conf, char *where, size_t cap, int *own,
                     int *at_root)
{
    *own = *at_root = 0;
    if (conf && *conf) {
        const char *rel = strncmp(conf, mnt, strlen(mnt)) == 0 ? conf + strlen(mnt) : conf;
        if ((size_t)snprintf(where, cap, "%s%s%s", mnt, *rel == '/' ? "" : "/", rel) >= cap)
            return errno = ENAMETOOLONG, -1;
        if (is_cgroup2(where))
            return 1;
        /* On a hybrid host the parent need only exist where a controller comes from: the
         * v1 hierarchies say so. On pure v2 there is nowhere else. */
        return strcmp(mnt, "/sys/fs/cgroup") != 0 ? 0 : (errno = ENOENT, -1);
    }
    char self[4096];
    if (sbx__cg_self_path("", self, sizeof(self)) < 0)
        return 0;
    size_t n = strlen(self), k = strlen("/" HOST_LEAF);
    if (n >= k && !strcmp(self + n - k, "/" HOST_LEAF))
        self[n - k] = '\0'; /* moved there by an earlier session of this process */
    *own = *self != '\0';
    *at_root = !*own;
    if ((size_t)snprintf(where, cap, "%s%s", mnt, *own ? self : "/sbx") >= cap)
        return errno = ENAMETOOLONG, -1;
    return 1;
}

/* What the target offers: "<root>/sbx" is offered what the root hands down. */
static unsigned v2_offered(const char *mnt, const char *where, int at_root)
{
    return at_root ? v2_mask(mnt, "cgroup.subtree_control") : v2_mask(where, "cgroup.controllers");
}

int sbx__cg_v2_check(const char *ctrl, const char *parent, char *where, size_t cap)
{
    const char *mnt = sbx__cg_v2_mount();
    int own, at_root, c = 0;
    while (c < CG_N && strcmp(cg_name[c], ctrl) != 0)
        c++;
    if (!*mnt || c == CG_N)
        return 0;
    const char *conf = parent ? parent : getenv("SBX_CGROUP_PARENT");
    if (v2_target(mnt, conf, where, cap, &own, &at_root) <= 0)
        return 0;
    if (!(v2_offered(mnt, where, at_root) & (1u << c)))
        return 0;
    if (!at_root && (v2_mask(where, "cgroup.subtree_control") & (1u << c)))
        return 2;
    int occ = at_root ? 0 : v2_occupants(where);
    return occ == 0 || (occ == 1 && own) ? 1 : -1;
}

static int v2_session_parent(const char *mnt, const struct sbx_cg_limits *l, int *from_v2,
                             char *where, size_t cap, sbx_error **err)
{
    const char *conf = l->parent ? l->parent : getenv("SBX_CGROUP_PARENT");
    int own, at_root;
    int t = v2_target(mnt, conf, where, cap, &own, &at_root);
    if (t < 0 && errno == ENOENT)
        return sbx_err(err, SBX_ECONFIG, ENOENT, "start",
                       "the cgroup parent %s (cgroup_parent or SBX_CGROUP_PARENT) is not a "
                       "cgroup of the unified hierarchy at %s",
                       conf, mnt);
    if (t < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "cgroup path too long");
    if (t == 0)
        return 0;
    int need = 0;
    unsigned offered = v2_offered(mnt, where, at_root);
    for (int c = 0; c < CG_N; c++)
        if (wanted(l, c) && (offered & (1u << c)))
            from_v2[c] = need = 1;
    if (!need)
        return 0;
    if (at_root && session_parent(mnt, "", where, cap) < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "cannot create %s/sbx", mnt);
    unsigned enabled = v2_mask(where, "cgroup.subtree_control"), enable = 0;
    for (int c = 0; c < CG_N; c++)
        if (from_v2[c] && !(enabled & (1u << c)))
            enable |= 1u << c;
    if (!enable)
        return 0;
    int occ = v2_occupants(where);
    if (occ == 1 && own) {
        char leaf[4600], pid[32];
        if ((size_t)snprintf(leaf, sizeof(leaf), "%s/" HOST_LEAF, where) >= sizeof(leaf))
            return sbx_err(err, SBX_EBACKEND, ENAMETOOLONG, "start", "cgroup path too long");
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        if ((mkdir(leaf, 0755) == 0 || errno == EEXIST) && write_str(leaf, "cgroup.procs", pid) == 0)
            occ = v2_occupants(where);
    }
    for (int c = 0; c < CG_N && occ == 0; c++) {
        char val[64];
        snprintf(val, sizeof(val), "+%s", cg_name[c]);
        int e = enable & (1u << c) ? write_str(where, "cgroup.subtree_control", val) : 0;
        if (e < 0)
            return limit_err(err, cg_name[c], -e, "it cannot be enabled for session cgroups");
    }
    if (occ == 0)
        return 0;
    memset(from_v2, 0, sizeof(int) * CG_N);
    if (l->best_effort)
        return 0;
    for (int c = 0; c < CG_N; c++)
        if (wanted(l, c) && (offered & (1u << c))) {
            char what[4800];
            snprintf(what, sizeof(what),
                     "cgroup v2 hands controllers down only from a cgroup without processes, "
                     "and other processes share sbx's (%s): run sbx in a cgroup of its own "
                     "(e.g. systemd-run --scope -p Delegate=yes), or set SBX_CGROUP_PARENT to "
                     "a delegated cgroup that holds no processes",
                     where);
            int r = limit_err(err, cg_name[c], EBUSY, what);
            sbx_err_ctx(err, "cgroup", "%s", where);
            return r;
        }
    return 0;
}

static unsigned clamp_u(unsigned long v, unsigned lo, unsigned hi)
{
    return v < lo ? lo : v > hi ? hi : (unsigned)v;
}

/* Writes the I/O weight into the first weight file the session cgroup has: 0, -ENOENT when
 * it has none, or another -errno. */
static int apply_io(const char *dir, int v2, unsigned w)
{
    char v[64];
    const char *file[2] = {v2 ? "io.weight" : "blkio.weight",
                           v2 ? "io.bfq.weight" : "blkio.bfq.weight"};
    for (int i = 0; i < 2; i++) {
        char path[4400];
        snprintf(path, sizeof(path), "%s/%s", dir, file[i]);
        if (access(path, F_OK) != 0)
            continue;
        if (v2 && i == 0)
            snprintf(v, sizeof(v), "default %u", clamp_u(w, 1, 10000));
        else if (!v2 && i == 0) /* CFQ: 10..1000, default 500 */
            snprintf(v, sizeof(v), "%u", clamp_u((unsigned long)w * 5, 10, 1000));
        else /* BFQ: 1..1000, default 100 */
            snprintf(v, sizeof(v), "%u", clamp_u(w, 1, 1000));
        return write_str(dir, file[i], v);
    }
    return -ENOENT;
}

/* "MAJ:MIN" of the whole disk that holds `path`, for io.max and blkio.throttle: -1 when it
 * is on no block device (tmpfs, say). A partition's limits are set on its disk. */
static int block_device_of(const char *path, char *out, size_t cap)
{
    struct stat st;
    if (!path || stat(path, &st) < 0 || major(st.st_dev) == 0)
        return -1;
    char sys[128], dev[32];
    snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
    if (access(sys, F_OK) != 0)
        return -1;
    char part[160];
    snprintf(part, sizeof(part), "%s/partition", sys);
    if (access(part, F_OK) == 0) {
        snprintf(part, sizeof(part), "%s/..", sys);
        if (read_str(part, "dev", dev, sizeof(dev)) < 0)
            return -1;
    } else if (read_str(sys, "dev", dev, sizeof(dev)) < 0) {
        return -1;
    }
    dev[strcspn(dev, "\n")] = '\0';
    return (size_t)snprintf(out, cap, "%s", dev) < cap ? 0 : -1;
}

/* Bandwidth on the workspace's device: 0, -ENODEV when it has none, or another -errno. */
static int apply_io_bps(const char *dir, int v2, const struct sbx_cg_limits *l)
{
    char dev[32], v[128];
    if (block_device_of(l->io_path, dev, sizeof(dev)) < 0)
        return -ENODEV;
    if (v2) {
        char r[32] = "max", w[32] = "max";
        if (l->io_read_bps)
            snprintf(r, sizeof(r), "%llu", (unsigned long long)l->io_read_bps);
        if (l->io_write_bps)
            snprintf(w, sizeof(w), "%llu", (unsigned long long)l->io_write_bps);
        snprintf(v, sizeof(v), "%s rbps=%s wbps=%s", dev, r, w);
        return write_str(dir, "io.max", v);
    }
    int e = 0;
    if (l->io_read_bps) {
        snprintf(v, sizeof(v), "%s %llu", dev, (unsigned long long)l->io_read_bps);
        e = write_str(dir, "blkio.throttle.read_bps_device", v);
    }
    if (!e && l->io_write_bps) {
        snprintf(v, sizeof(v), "%s %llu", dev, (unsigned long long)l->io_write_bps);
        e = write_str(dir, "blkio.throttle.write_bps_device", v);
    }
    return e;
}

/* v1 cpuset: a new cgroup starts with no CPUs and no memory nodes, and a task can join it
 * only once both are set; its parent (the "sbx" group sbx may have made) likewise. Both are
 * filled from above. */
static int v1_cpuset_fill(const char *dir)
{
    char parent[4600], buf[512];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *slash = strrchr(parent, '/');
    if (!slash)
        return -EINVAL;
    *slash = '\0';
    static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        if (read_str(dir, files[i], buf, sizeof(buf)) == 0 && buf[0] != '\n' && buf[0])
            continue;
        if (read_str(parent, files[i], buf, sizeof(buf)) < 0)
            return -errno;
        if (buf[0] == '\n' || !buf[0]) {
            int e = v1_cpuset_fill(parent);
            if (e < 0 || read_str(parent, files[i], buf, sizeof(buf)) < 0)
                return e < 0 ? e : -errno;
        }
        int e = write_str(dir, files[i], buf);
        if (e < 0)
            return e;
    }
    return 0;
}

static int apply(struct sbx_cgroup *cg, int c, const struct sbx_cg_limits *l, sbx_error **err)
{
    char v[64];
    int e = 0;
    const char *dir = cg->from_v2[c] ? cg->v2 : cg->v1[c];
    if (c == CG_MEMORY) {
        snprintf(v, sizeof(v), "%llu", (unsigned long long)l->memory_bytes);
        if (cg->from_v2[c]) {
            e = write_str(dir, "memory.max", v);
            if (!e) /* no swap: the limit is the limit (where swap accounting exists) */
                write_str(dir, "memory.swap.max", "0");
        } else {
            e = write_str(dir, "memory.limit_in_bytes", v);
            if (!e)
                write_str(dir, "memory.memsw.limit_in_bytes", v);
        }
    } else if (c == CG_PIDS) {
        snprintf(v, sizeof(v), "%u", l->pids_max);
        e = write_str(dir, "pids.max", v);
    } else if (c == CG_CPUSET) {
        if (!cg->from_v2[c] && (e = v1_cpuset_fill(dir)) < 0)
            return limit_err(err, "cpuset", -e, "the v1 cpuset group cannot be set up");
        e = write_str(dir, "cpuset.cpus", l->cpuset);
        if (e == -EINVAL || e == -ERANGE)
            return limit_err(err, "cpuset", -e,
                             "the CPU list is not a subset of the CPUs sbx's cgroup may use");
    } else if (c == CG_IO && !l->io_weight) {
        e = apply_io_bps(dir, cg->from_v2[c], l);
        if (e == -ENODEV)
            return limit_err(err, cg->from_v2[c] ? cg_name[c] : cg_v1[c], ENODEV,
                             "the workspace is on no block device (an ephemeral or tmpfs "
                             "workspace), so there is no device to limit");
    } else if (c == CG_IO) {
        e = apply_io(dir, cg->from_v2[c], l->io_weight);
        if (e == 0 && (l->io_read_bps || l->io_write_bps)) {
            e = apply_io_bps(dir, cg->from_v2[c], l);
            if (e == -ENODEV)
                return limit_err(err, cg->from_v2[c] ? cg_name[c] : cg_v1[c], ENODEV,
                                 "the workspace is on no block device (an ephemeral or tmpfs "
                                 "workspace), so there is no device to limit");
        }
        if (e == -ENOENT)
            return limit_err(err, cg->from_v2[c] ? cg_name[c] : cg_v1[c], ENOENT,
                             cg->from_v2[c]
                                 ? "the session cgroup has neither io.weight nor io.bfq.weight "
                                   "(no I/O controller policy with weights: iocost or BFQ)"
                                 : "the session cgroup has neither blkio.weight (CFQ) nor "
                                   "blkio.bfq.weight (BFQ)");
    } else {
        long period = 100000, quota = (long)(l->cpus * period);
        if (quota < 1000)
            quota = 1000;
        if (cg->from_v2[c]) {
            snprintf(v, sizeof(v), "%ld %ld", quota, period);
            e = write_str(dir, "cpu.max", v);
        } else {
            snprintf(v, sizeof(v), "%ld", period);
            e = write_str(dir, "cpu.cfs_period_us", v);
            snprintf(v, sizeof(v), "%ld", quota);
            if (!e)
                e = write_str(dir, "cpu.cfs_quota_us", v);
        }
    }
    return e ? limit_err(err, cg->from_v2[c] ? cg_name[c] : cg_v1[c], -e,
                         "writing the limit failed")
             : 0;
}

int sbx__cg_create(const char *id, const struct sbx_cg_limits *l, struct sbx_cgroup **out,
                   sbx_error **err)
{
    *out = NULL;
    int any = 0;
    for (int c = 0; c < CG_N; c++)
        any |= wanted(l, c);
    if (!any)
        return 0;
    struct sbx_cgroup *cg = calloc(1, sizeof(*cg));
    if (!cg)
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "start", "out of memory");
    cg->v2_fd = -1;
    char self[4096], path[4600];
    const char *mnt = sbx__cg_v2_mount();
    int r = 0;
    /* The unified hierarchy first. */
    if (*mnt) {
        char where[4400];
        if ((r = v2_session_parent(mnt, l, cg->from_v2, where, sizeof(where), err)) < 0)
            goto fail;
        int need_v2 = 0;
        for (int c = 0; c < CG_N; c++)
            need_v2 |= cg->from_v2[c];
        if (need_v2) {
            snprintf(path, sizeof(path), "%s/sbx-%s", where, id);
            if ((r = mkdir_cg(path, err)) < 0)
                goto fail;
            cg->v2 = strdup(path);
            cg->v2_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (!cg->v2 || cg->v2_fd < 0) {
                r = sbx_err(err, SBX_EBACKEND, errno, "start", "opening %s", path);
                goto fail;
            }
        }
    }
    /* Then v1 for what v2 cannot give. */
    for (int c = 0; c < CG_N; c++) {
        if (!wanted(l, c) || cg->from_v2[c])
            continue;
        char hier[64];
        snprintf(hier, sizeof(hier), "/sys/fs/cgroup/%s", cg_v1[c]);
        if (sbx__cg_self_path(cg_v1[c], self, sizeof(self)) < 0 || access(hier, W_OK) != 0) {
            if (l->best_effort)
                continue;
            r = limit_err(err, cg_v1[c], ENOENT, "no cgroup hierarchy offers this controller");
            goto fail;
        }
        char where[4400];
        const char *conf = l->parent ? l->parent : getenv("SBX_CGROUP_PARENT");
        if (conf && *conf) {
            snprintf(where, sizeof(where), "%s%s%s", hier, *conf == '/' ? "" : "/", conf);
            struct stat st;
            if (stat(where, &st) < 0 || !S_ISDIR(st.st_mode)) {
                r = sbx_err(err, SBX_ECONFIG, errno, "start",
                            "the cgroup parent %s (cgroup_parent or SBX_CGROUP_PARENT) does not "
                            "exist in the %s hierarchy: make it, or leave the parent unset",
                            conf, cg_v1[c]);
                goto fail;
            }
        } else if (session_parent(hier, self, where, sizeof(where)) < 0) {
            snprintf(where, sizeof(where), "%s%s", hier, self); /* mkdir below reports it */
        }
        snprintf(path, sizeof(path), "%s/sbx-%s", where, id);
        if ((r = mkdir_cg(path, err)) < 0) {
            if (l->best_effort) {
                sbx_error_free(err ? *err : NULL);
                if (err)
                    *err = NULL;
                r = 0;
                continue;
            }
            goto fail;
        }
        if (!(cg->v1[c] = strdup(path))) {
            rmdir(path);
            r = sbx_err(err, SBX_ENOMEM, ENOMEM, "start", "out of memory");
            goto fail;
        }
    }
    for (int c = 0; c < CG_N; c++) {
        if (!wanted(l, c) || (!cg->from_v2[c] && !cg->v1[c]))
            continue;
        if ((r = apply(cg, c, l, err)) < 0) {
            if (!l->best_effort)
                goto fail;
            sbx_error_free(err ? *err : NULL);
            if (err)
                *err = NULL;
            r = 0;
        }
    }
    *out = cg;
    return 0;
fail:
    sbx__cg_remove(cg);
    return r;
}

int sbx__cg_fd(const struct sbx_cgroup *cg)
{
    return cg ? cg->v2_fd : -1;
}

int sbx__cg_attach_v1(const struct sbx_cgroup *cg, pid_t pid, sbx_error **err)
{
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    for (int c = 0; cg && c < CG_N; c++) {
        if (!cg->v1[c])
            continue;
        int e = write_str(cg->v1[c], "cgroup.procs", v);
        if (e)
            return sbx_err(err, SBX_EBACKEND, -e, "start",
                           "cannot put the sandbox into its cgroup %s", cg->v1[c]);
    }
    return 0;
}

/* rmdir fails with EBUSY while the last processes are still exiting. Bounded: 2 s. The "sbx"
 * group made at a hierarchy's root goes too once it is empty (it fails harmlessly while other
 * sessions are in it). */
static void rmdir_wait(const char *path)
{
    for (int i = 0; i < 200; i++) {
        if (rmdir(path) == 0 || errno == ENOENT)
            break;
        if (errno != EBUSY)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char parent[4600];
    snprintf(parent, sizeof(parent), "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash && slash - parent >= 4 && !strncmp(slash - 4, "/sbx", 4)) {
        *slash = '\0';
        rmdir(parent);
    }
}

void sbx__cg_remove(struct sbx_cgroup *cg)
{
    if (!cg)
        return;
    /* Whatever is left is killed first (cgroup.kill, Linux 5.14+; the pid namespace is gone
     * already when the agent was killed, so this is a second line). */
    if (cg->v2)
        write_str(cg->v2, "cgroup.kill", "1");
    if (cg->v2)
        rmdir_wait(cg->v2);
    for (int c = 0; c < CG_N; c++)
        if (cg->v1[c])
            rmdir_wait(cg->v1[c]);
    sbx__cg_free(cg);
}

int sbx__cg_stats(const struct sbx_cgroup *cg, struct sbx_cg_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!cg)
        return -1;
    char buf[4096];
    const char *cpu = cg->from_v2[CG_CPU] ? cg->v2 : cg->v1[CG_CPU];
    if (cpu && cg->from_v2[CG_CPU]) {
        if (read_str(cpu, "cpu.stat", buf, sizeof(buf)) == 0) {
            char *p = strstr(buf, "usage_usec ");
            st->cpu_ns = p ? strtoull(p + 11, NULL, 10) * 1000 : 0;
        }
    } else if (cpu && read_str(cpu, "cpuacct.usage", buf, sizeof(buf)) == 0) {
        st->cpu_ns = strtoull(buf, NULL, 10); /* v1: cpu is co-mounted with cpuacct */
    } else if (cg->v2 && read_str(cg->v2, "cpu.stat", buf, sizeof(buf)) == 0) {
        char *p = strstr(buf, "usage_usec "); /* v2 reports CPU time without the controller */
        st->cpu_ns = p ? strtoull(p + 11, NULL, 10) * 1000 : 0;
    }
    const char *mem = cg->from_v2[CG_MEMORY] ? cg->v2 : cg->v1[CG_MEMORY];
    if (mem) {
        if (cg->from_v2[CG_MEMORY]) {
            if (read_str(mem, "memory.peak", buf, sizeof(buf)) == 0)
                st->memory_peak = strtoull(buf, NULL, 10);
            if (read_str(mem, "memory.events", buf, sizeof(buf)) == 0) {
                char *p = strstr(buf, "oom_kill ");
                st->oom_kills = p ? strtoull(p + 9, NULL, 10) : 0;
            }
        } else {
            if (read_str(mem, "memory.max_usage_in_bytes", buf, sizeof(buf)) == 0)
                st->memory_peak = strtoull(buf, NULL, 10);
            if (read_str(mem, "memory.oom_control", buf, sizeof(buf)) == 0) {
                char *p = strstr(buf, "oom_kill ");
                st->oom_kills = p ? strtoull(p + 9, NULL, 10) : 0;
            }
        }
    }
    return 0;
}

struct sbx_cgroup *sbx__cg_of_pid(pid_t pid, const char *id)
{
    char path[64], line[4096], want[128];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    snprintf(want, sizeof(want), "/sbx-%s", id);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    struct sbx_cgroup *cg = calloc(1, sizeof(*cg));
    int any = 0;
    while (cg && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = '\0';
        const char *rel = b + 1;
        size_t rl = strlen(rel), wl = strlen(want);
        if (rl < wl || strcmp(rel + rl - wl, want) != 0)
            continue; /* only the session's own cgroups, never anything else it is in */
        char dir[4600];
        if (!a[1]) {
            snprintf(dir, sizeof(dir), "%s%s", sbx__cg_v2_mount(), rel);
            if (!cg->v2 && (cg->v2 = strdup(dir)) != NULL)
                any = 1;
            continue;
        }
        for (int c = 0; c < CG_N; c++) {
            for (char *tok = a + 1; *tok;) {
                size_t n = strcspn(tok, ",");
                if (n == strlen(cg_v1[c]) && !strncmp(tok, cg_v1[c], n) && !cg->v1[c]) {
                    snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s%s", cg_v1[c], rel);
                    if ((cg->v1[c] = strdup(dir)) != NULL)
                        any = 1;
                }
                tok += n + (tok[n] == ',');
            }
        }
    }
    fclose(f);
    if (cg)
        cg->v2_fd = -1;
    if (!any) {
        sbx__cg_free(cg);
        return NULL;
    }
    return cg;
}
