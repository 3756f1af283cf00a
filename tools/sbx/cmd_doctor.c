/* cmd_doctor.c — `sbx doctor [--json]`: checks whether this host can run sandboxes, and how
 * well, and says what to change for anything that is missing (docs/doctor.md).
 *
 * Each check is OK, WARN (sandboxes run, but a layer or a host-wide hardening is missing) or
 * FAIL (sessions cannot start, or would start with less than sbx promises, so it refuses).
 * The exit status is 1 when anything FAILs, else 0.
 *
 * The checks read the host the way the library does, with the backend's own functions where
 * it has them (backend/cgroup.h: the layout, and where session cgroups would go and what
 * they would get; backend/agent_path.c: the sbx-agent search). The one check that settles it is the probe, a real session started
 * and shut down through the library; the others explain a failing probe, or what the probe
 * cannot see (cgroup controllers, which only limits need, and host-wide sysctls).
 */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/landlock.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "cli.h"
#include "ns.h"

/* The installed agent's path comes from CMake (the same definition the library gets). */
#ifndef SBX_AGENT_INSTALL_PATH
#error "SBX_AGENT_INSTALL_PATH must be defined by the build"
#endif

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

static const char usage_text[] =
    "usage: sbx doctor [--json]\n"
    "\n"
    "Checks whether this host can run sandboxes: kernel version, user namespaces, a real\n"
    "session start, cgroup layout and controllers, seccomp, Landlock, the sbx-agent binary\n"
    "and host-wide sysctls that matter to untrusted code. One line per check: OK, WARN or\n"
    "FAIL, what was found, and for anything not OK what to change (docs/doctor.md).\n"
    "\n"
    "options:\n"
    "      --json     print {\"checks\":[{\"name\",\"status\",\"found\",\"fix\"}...],\"ok\"}\n"
    "  -h, --help     show this help\n"
    "\n"
    "exit status: 0 when no check FAILs (WARNs included), 1 when one does.\n";

enum status { ST_OK, ST_WARN, ST_FAIL };
static const char *const status_name[] = {"OK", "WARN", "FAIL"};

struct check {
    const char *name;
    enum status status;
    char found[768];
    char fix[512]; /* "" when there is nothing to change */
};

#define MAX_CHECKS 24
static struct check checks[MAX_CHECKS];
static size_t n_checks;

__attribute__((format(printf, 3, 4))) static struct check *add(const char *name,
                                                               enum status st,
                                                               const char *fmt, ...)
{
    /* More checks than slots is a bug here; the last slot is reused rather than overflowed. */
    struct check *c = &checks[n_checks < MAX_CHECKS ? n_checks++ : MAX_CHECKS - 1];
    c->name = name;
    c->status = st;
    c->fix[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->found, sizeof(c->found), fmt, ap);
    va_end(ap);
    return c;
}

__attribute__((format(printf, 2, 3))) static void set_fix(struct check *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fix, sizeof(c->fix), fmt, ap);
    va_end(ap);
}

/* Reads a small file into buf, without the trailing newline; -1 with errno on failure. */
static int read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        errno = EIO;
        return -1;
    }
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* A numeric sysctl ("kernel.unprivileged_bpf_disabled"): 0, -1 when the kernel has no such
 * file (an older kernel, or the feature compiled out), -2 when it cannot be read. */
static int sysctl_get(const char *name, long *out)
{
    char path[256] = "/proc/sys/", buf[64];
    size_t o = strlen(path);
    for (const char *p = name; *p && o + 1 < sizeof(path); p++)
        path[o++] = *p == '.' ? '/' : *p;
    path[o] = '\0';
    if (read_small(path, buf, sizeof(buf)) < 0)
        return errno == ENOENT ? -1 : -2;
    char *end;
    errno = 0;
    *out = strtol(buf, &end, 10);
    return errno || end == buf ? -2 : 0;
}

/* ---- kernel ---------------------------------------------------------------------------- */

static void check_kernel(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    int ur = uname(&u);
    if (ur < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2) {
        struct check *c = add("kernel", ST_WARN, "cannot tell the kernel version (uname: %s)",
                              ur < 0 ? strerror(errno) : u.release);
        set_fix(c, "sbx needs Linux 5.12 or later; the probe below shows whether this one works");
        return;
    }
    int v = major * 1000 + minor;
    if (v >= 5012) {
        add("kernel", ST_OK,
            "Linux %s: clone3, CLONE_INTO_CGROUP, open_tree/move_mount, mount_setattr and "
            "idmapped mounts are all there",
            u.release);
        return;
    }
    /* Name what is missing, oldest first: that is what the start would trip over. */
    char miss[256] = "";
    size_t o = 0;
    static const struct {
        int since;
        const char *what;
    } feats[] = {
        {5002, "open_tree/move_mount (5.2)"},
        {5003, "clone3 (5.3)"},
        {5007, "CLONE_INTO_CGROUP (5.7)"},
        {5012, "mount_setattr and idmapped mounts (5.12)"},
    };
    for (size_t i = 0; i < sizeof(feats) / sizeof(feats[0]); i++)
        if (v < feats[i].since && o < sizeof(miss))
            o += (size_t)snprintf(miss + o, sizeof(miss) - o, "%s%s", o ? ", " : "",
                                  feats[i].what);
    struct check *c = add("kernel", ST_FAIL, "Linux %s lacks %s", u.release, miss);
    set_fix(c, "upgrade to Linux 5.12 or later");
}

/* ---- user namespaces ------------------------------------------------------------------- */

static void check_userns(void)
{
    int root = geteuid() == 0;
    long max = 0, uclone = 0, aa = 0;
    int rmax = sysctl_get("user.max_user_namespaces", &max);
    int rclone = sysctl_get("kernel.unprivileged_userns_clone", &uclone);
    int raa = sysctl_get("kernel.apparmor_restrict_unprivileged_userns", &aa);
    char who[64];
    snprintf(who, sizeof(who), "sbx runs as %s (uid %u)", root ? "root" : "a regular user",
             (unsigned)geteuid());
    if (rmax == -1) {
        struct check *c = add("userns", ST_FAIL, "the kernel has no user namespaces; %s", who);
        set_fix(c, "a kernel built with CONFIG_USER_NS=y");
        return;
    }
    if (rmax == 0 && max == 0) {
        struct check *c = add("userns", ST_FAIL, "user.max_user_namespaces = 0; %s", who);
        set_fix(c, "sysctl -w user.max_user_namespaces=15000");
        return;
    }
    char extra[256] = "";
    if (rclone == 0)
        snprintf(extra, sizeof(extra), "; kernel.unprivileged_userns_clone = %ld", uclone);
    if (raa == 0)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
                 "; kernel.apparmor_restrict_unprivileged_userns = %ld", aa);
    /* Both switches leave root alone: they restrict user namespaces made without
     * CAP_SYS_ADMIN in the initial namespace. */
    if (!root && rclone == 0 && uclone == 0) {
        struct check *c = add("userns", ST_FAIL,
                              "user.max_user_namespaces = %ld%s; %s: unprivileged user "
                              "namespaces are disabled",
                              max, extra, who);
        set_fix(c, "sysctl -w kernel.unprivileged_userns_clone=1, or run sbx as root");
        return;
    }
    if (!root && raa == 0 && aa != 0) {
        struct check *c = add("userns", ST_FAIL,
                              "user.max_user_namespaces = %ld%s; %s: AppArmor denies "
                              "capabilities in its user namespaces",
                              max, extra, who);
        set_fix(c, "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor "
                   "profile for sbx with the 'userns,' rule, or run sbx as root");
        return;
    }
    if (rmax == 0 && max < 64) {
        struct check *c = add("userns", ST_WARN,
                              "user.max_user_namespaces = %ld%s; %s: each session uses one, so "
                              "few sessions can run at once",
                              max, extra, who);
        set_fix(c, "sysctl -w user.max_user_namespaces=15000");
        return;
    }
    if (rmax == 0)
        add("userns", ST_OK, "user.max_user_namespaces = %ld%s; %s", max, extra, who);
    else
        add("userns", ST_OK, "user.max_user_namespaces unreadable%s; %s", extra, who);
}

/* ---- sbx-agent: found the way the library finds it (backend/agent_path.c) --------------- */

static void check_agent(void)
{
    char *path = NULL;
    sbx_error *err = NULL;
    if (sbx__agent_path(NULL, &path, &err) < 0) {
        const char *env = getenv("SBX_AGENT_PATH");
        struct check *c = add("agent", ST_FAIL, "%s", sbx_error_message(err));
        set_fix(c, env && *env ? "point SBX_AGENT_PATH at the sbx-agent binary, or unset it"
                               : "install sbx-agent (make install puts it at "
                                 SBX_AGENT_INSTALL_PATH "), or set SBX_AGENT_PATH to it");
        sbx_error_free(err);
        return;
    }
    const char *env = getenv("SBX_AGENT_PATH");
    const char *from = env && *env                             ? "$SBX_AGENT_PATH"
                       : !strcmp(path, SBX_AGENT_INSTALL_PATH) ? "the installed path"
                                                               : "next to the sbx binary";
    add("agent", ST_OK, "%s (%s), executable", path, from);
    free(path);
}

/* ---- the probe: a real session --------------------------------------------------------- */

static void check_probe(void)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    /* In memory: nothing of the probe is left on the host's disk, whatever happens. */
    o.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    sbx_session *s = NULL;
    sbx_error *e = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = sbx_session_new(&o, &s, &e);
    if (r == 0)
        r = sbx_session_start(s, &e);
    if (r == 0)
        r = sbx_session_shutdown(s, &e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sbx_session_free(s);
    if (r < 0) {
        struct check *c = add("probe", ST_FAIL, "starting a session failed: %s (%s)",
                              e ? sbx_error_message(e) : sbx_strerror(r), sbx_code_name(r));
        set_fix(c, "the message names the cause; the kernel, userns and agent checks say what "
                   "to change");
        sbx_error_free(e);
        return;
    }
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    add("probe", ST_OK, "a session started and shut down in %.0f ms", ms);
}

/* ---- cgroups (the layout detection of backend/cgroup.c) -------------------------------- */

static long fs_type(const char *path)
{
    struct statfs s;
    return statfs(path, &s) == 0 ? (long)s.f_type : 0;
}

static void check_cgroup_layout(const char *mnt)
{
    int v1 = 0;
    static const char *const hier[] = {"memory", "pids", "cpu", "cpuacct", "freezer", "cpuset"};
    char p[64];
    for (size_t i = 0; i < sizeof(hier) / sizeof(hier[0]); i++) {
        snprintf(p, sizeof(p), "/sys/fs/cgroup/%s", hier[i]);
        v1 |= fs_type(p) == (long)CGROUP_SUPER_MAGIC;
    }
    if (!strcmp(mnt, "/sys/fs/cgroup")) {
        add("cgroup", ST_OK, "layout: cgroup v2 (pure, unified hierarchy at /sys/fs/cgroup)");
    } else if (*mnt) {
        add("cgroup", ST_OK,
            "layout: hybrid (v1 controllers, v2 unified hierarchy at %s); controllers come from "
            "v1 unless v2 offers them",
            mnt);
    } else if (v1) {
        add("cgroup", ST_OK, "layout: cgroup v1 (no unified hierarchy)");
    } else {
        struct check *c = add("cgroup", ST_WARN,
                              "layout: none (no cgroup filesystem at /sys/fs/cgroup): memory, "
                              "pids and cpu limits cannot be enforced");
        set_fix(c, "mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)");
    }
}

/* The option a controller's limits come from, for messages. */
static const char *ctrl_flag(const char *ctrl)
{
    return !strcmp(ctrl, "cpu") ? "cpus" : !strcmp(ctrl, "io") ? "io-weight" : ctrl;
}

/* Whether the v1 blkio cgroup `dir` can take an I/O weight: CFQ's blkio.weight, or BFQ's
 * blkio.bfq.weight (only in non-root cgroups: its statistics files say BFQ is there). */
static int blkio_has_weight(const char *dir, char *which, size_t cap)
{
    static const char *const files[] = {"blkio.weight", "blkio.bfq.weight",
                                        "blkio.bfq.io_service_bytes"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[1300];
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        if (access(p, F_OK) == 0) {
            snprintf(which, cap, "%s", i == 0 ? "blkio.weight (CFQ)" : "blkio.bfq.weight (BFQ)");
            return 1;
        }
    }
    return 0;
}

/* Where `ctrl` would come from for a session's limits, as backend/cgroup.c decides: from
 * v2 when the unified cgroup sessions go below ($SBX_CGROUP_PARENT, else sbx's own, else
 * "<root>/sbx") is offered it and can hand it down (it already does, or holds no process but
 * sbx, which then moves itself into a leaf), else from its v1 hierarchy (`v1`, which is
 * "blkio" for "io"); WARN when neither. */
static void check_controller(const char *name, const char *ctrl, const char *v1,
                             const char *mnt)
{
    char self[1024], parent[1100], why_v2[2400] = "";
    int v2 = sbx__cg_v2_check(ctrl, NULL, parent, sizeof(parent));
    if (v2 == 2) {
        add(name, ST_OK, "%s: cgroup v2, enabled in %s/cgroup.subtree_control", ctrl, parent);
        return;
    }
    if (v2 == 1) {
        add(name, ST_OK, "%s: cgroup v2, below %s (enabled at the first session)", ctrl,
            parent);
        return;
    }
    int v2_fix = v2 == -1;
    if (!*mnt)
        snprintf(why_v2, sizeof(why_v2), "v2: no unified hierarchy");
    else
        snprintf(why_v2, sizeof(why_v2), "v2: %s", v2_fix ? "the cgroup sessions would go below "
                                                            "holds other processes, so it cannot "
                                                            "hand controllers down"
                                                          : "not offered to sbx's cgroup");
    char hier[64], dir[1200], which[64];
    snprintf(hier, sizeof(hier), "/sys/fs/cgroup/%s", v1);
    if (fs_type(hier) == (long)CGROUP_SUPER_MAGIC &&
        sbx__cg_self_path(v1, self, sizeof(self)) == 0) {
        snprintf(dir, sizeof(dir), "%s%s", hier, self);
        if (access(dir, W_OK) == 0 && strcmp(v1, "blkio") != 0) {
            add(name, ST_OK, "%s: cgroup v1, %s (writable)", v1, dir);
            return;
        }
        if (access(dir, W_OK) == 0 && blkio_has_weight(dir, which, sizeof(which))) {
            add(name, ST_OK, "%s: cgroup v1, %s (writable), weights through %s", v1, dir,
                which);
            return;
        }
        if (access(dir, W_OK) == 0) {
            struct check *c = add(name, ST_WARN,
                                  "%s: %s; v1: %s has neither blkio.weight (CFQ) nor BFQ's "
                                  "files; --io-weight fails unless best effort",
                                  v1, why_v2, dir);
            set_fix(c, "use a kernel with BFQ (CONFIG_IOSCHED_BFQ, CONFIG_BFQ_GROUP_IOSCHED) "
                       "or cgroup v2 with the io controller");
            return;
        }
        struct check *c = add(name, ST_WARN, "%s: %s; v1: %s is not writable (%s); --%s limits "
                                             "fail unless best effort",
                              v1, why_v2, dir, strerror(errno), ctrl_flag(ctrl));
        set_fix(c, "run sbx as root, or mount the %s hierarchy read-write", v1);
        return;
    }
    struct check *c = add(name, ST_WARN,
                          "%s: %s; v1: no %s hierarchy mounted; --%s limits fail unless best "
                          "effort",
                          ctrl, why_v2, v1, ctrl_flag(ctrl));
    if (v2_fix)
        set_fix(c, "run sbx in a cgroup of its own (systemd-run --scope -p Delegate=yes ...), "
                   "or set SBX_CGROUP_PARENT to a delegated cgroup that holds no processes");
    else if (!strcmp(mnt, "/sys/fs/cgroup"))
        set_fix(c, "delegate %s to sbx's cgroup: it must be in %s/cgroup.controllers (see "
                   "docs/doctor.md)",
                ctrl, parent);
    else
        set_fix(c, "mkdir -p %s && mount -t cgroup -o %s cgroup %s", hier, v1, hier);
}

/* ---- seccomp, Landlock ----------------------------------------------------------------- */

static void check_seccomp(void)
{
    char line[256];
    int field = 0;
    long mode_field = -1;
    FILE *f = fopen("/proc/self/status", "re");
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "Seccomp:", 8)) {
            field = 1;
            mode_field = strtol(line + 8, NULL, 10);
        }
    if (f)
        fclose(f);
    int mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    if (!field || mode < 0) {
        struct check *c = add("seccomp", ST_FAIL, "the kernel has no seccomp (%s)",
                              !field ? "no Seccomp field in /proc/self/status"
                                     : "prctl(PR_GET_SECCOMP) fails");
        set_fix(c, "a kernel built with CONFIG_SECCOMP=y and CONFIG_SECCOMP_FILTER=y");
        return;
    }
    /* Filters, and the EPERM answer the default policy gives, not just strict mode. */
    unsigned action = SECCOMP_RET_ERRNO;
    if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0) {
        struct check *c = add("seccomp", ST_FAIL,
                              "seccomp filters returning errors are unavailable (%s)",
                              strerror(errno));
        set_fix(c, "a kernel built with CONFIG_SECCOMP_FILTER=y (Linux 4.14 or later)");
        return;
    }
    add("seccomp", ST_OK, "filter mode available; sbx itself runs %s",
        mode_field == 2 || mode == 2 ? "under a filter (sandboxes stack theirs on it)"
                                     : "unfiltered");
}

static void check_landlock(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi >= 1) {
        add("landlock", ST_OK, "ABI version %ld", abi);
        return;
    }
    /* Landlock is a second wall: its absence is worth knowing, never a reason to refuse. */
    if (errno == EOPNOTSUPP) {
        struct check *c = add("landlock", ST_WARN, "built into the kernel but not enabled");
        set_fix(c, "add landlock to the lsm= kernel parameter (e.g. "
                   "lsm=landlock,lockdown,yama,apparmor,bpf) and reboot");
    } else {
        struct check *c = add("landlock", ST_WARN, "not in this kernel (%s)", strerror(errno));
        set_fix(c, "a kernel with CONFIG_SECURITY_LANDLOCK=y (Linux 5.13 or later)");
    }
}

/* ---- host-wide sysctls ----------------------------------------------------------------- */

static void check_tiocsti(void)
{
    const char *n = "dev.tty.legacy_tiocsti";
    long v = 0;
    int r = sysctl_get(n, &v);
    if (r == 0 && v == 0) {
        add(n, ST_OK, "0: no process may push input into a terminal with TIOCSTI");
        return;
    }
    struct check *c;
    if (r == -1)
        c = add(n, ST_WARN, "absent: this kernel (before 6.2) always allows TIOCSTI; sbx's "
                            "seccomp filter blocks it in sandboxes anyway");
    else
        c = add(n, ST_WARN, "%s: TIOCSTI input injection is allowed on the host; sbx's seccomp "
                            "filter blocks it in sandboxes anyway",
                r == 0 ? "1" : "unreadable");
    set_fix(c, r == -1 ? "Linux 6.2 or later with dev.tty.legacy_tiocsti=0"
                       : "sysctl -w dev.tty.legacy_tiocsti=0");
}

/* A sysctl that hardens the host when set to `good`: WARN at `bad`, and when absent. */
static void check_hardening(const char *n, long bad, const char *good, const char *safe,
                            const char *risk, const char *absent)
{
    long v = 0;
    int r = sysctl_get(n, &v);
    if (r == 0 && v != bad) {
        add(n, ST_OK, "%ld: %s", v, safe);
        return;
    }
    struct check *c;
    if (r == -1)
        c = add(n, ST_WARN, "absent: %s", absent);
    else if (r == -2)
        c = add(n, ST_WARN, "unreadable");
    else
        c = add(n, ST_WARN, "%ld: %s", v, risk);
    set_fix(c, "sysctl -w %s=%s", n, good);
}

/* Kernel addresses in /proc/kallsyms (and %pK output) are shown to every process, sandboxed
 * ones included, when kptr_restrict is 0 and perf_event_paranoid lets any user use perf
 * (1 or below): sbx does not mask them. */
static void check_kptr(void)
{
    const char *n = "kernel.kptr_restrict";
    long v = 0, perf = 2;
    int r = sysctl_get(n, &v);
    if (r == -2) {
        add(n, ST_WARN, "unreadable");
        return;
    }
    if (r == -1) {
        add(n, ST_OK, "absent: this kernel prints no pointers to hide");
        return;
    }
    int pr = sysctl_get("kernel.perf_event_paranoid", &perf);
    if (v == 0 && pr == 0 && perf <= 1) {
        struct check *c = add(n, ST_WARN,
                              "0 with kernel.perf_event_paranoid %ld: kernel addresses in "
                              "/proc/kallsyms are readable by every process, sandboxed ones "
                              "included, which helps kernel exploits",
                              perf);
        set_fix(c, "sysctl -w %s=1", n);
        return;
    }
    add(n, ST_OK, "%ld: kernel addresses are hidden from unprivileged processes%s", v,
        v == 0 ? " (by kernel.perf_event_paranoid >= 2)" : "");
}

static void check_io_uring(void)
{
    const char *n = "kernel.io_uring_disabled";
    long v = 0;
    int r = sysctl_get(n, &v);
    /* Informational: sbx's seccomp filter denies io_uring in sandboxes whatever this says. */
    if (r == -1)
        add(n, ST_OK, "absent (before Linux 6.6): io_uring is available to every process on "
                      "the host; sbx's seccomp filter denies it in sandboxes");
    else if (r == -2)
        add(n, ST_OK, "unreadable; sbx's seccomp filter denies io_uring in sandboxes");
    else
        add(n, ST_OK, "%ld: io_uring %s on the host; sbx's seccomp filter denies it in sandboxes",
            v, v == 0 ? "is available to every process" : v == 1 ? "is limited to a group"
                                                              : "is off");
}

/* ---- output ---------------------------------------------------------------------------- */

static int print_json(int ok)
{
    json_object *o = json_object_new_object(), *a = json_object_new_array();
    if (!o || !a) {
        json_object_put(o);
        json_object_put(a);
        return -1;
    }
    for (size_t i = 0; i < n_checks; i++) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "name", json_object_new_string(checks[i].name));
        json_object_object_add(c, "status",
                               json_object_new_string(status_name[checks[i].status]));
        json_object_object_add(c, "found", json_object_new_string(checks[i].found));
        json_object_object_add(c, "fix", checks[i].fix[0]
                                             ? json_object_new_string(checks[i].fix)
                                             : NULL);
        json_object_array_add(a, c);
    }
    json_object_object_add(o, "checks", a);
    json_object_object_add(o, "ok", json_object_new_boolean(ok));
    int r = printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return r < 0 ? -1 : 0;
}

static void print_text(void)
{
    int w = 0, count[3] = {0, 0, 0};
    for (size_t i = 0; i < n_checks; i++)
        if ((int)strlen(checks[i].name) > w)
            w = (int)strlen(checks[i].name);
    for (size_t i = 0; i < n_checks; i++) {
        const struct check *c = &checks[i];
        count[c->status]++;
        printf("%-4s  %-*s  %s%s%s\n", status_name[c->status], w, c->name, c->found,
               c->fix[0] ? "; fix: " : "", c->fix);
    }
    printf("%d OK, %d WARN, %d FAIL\n", count[ST_OK], count[ST_WARN], count[ST_FAIL]);
}

int sbx_cmd_doctor(int argc, char **argv)
{
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else {
            return sbx_cli_usage_error("doctor", "unexpected argument '%s'", argv[i]);
        }
    }
    n_checks = 0;
    /* The ones that decide whether a session can start come first, then the probe that
     * settles it, then what only limits or the host's own hardening depend on. */
    check_kernel();
    check_userns();
    check_agent();
    check_probe();
    const char *mnt = sbx__cg_v2_mount();
    check_cgroup_layout(mnt);
    check_controller("cgroup.memory", "memory", "memory", mnt);
    check_controller("cgroup.pids", "pids", "pids", mnt);
    check_controller("cgroup.cpu", "cpu", "cpu", mnt);
    check_controller("cgroup.io", "io", "blkio", mnt);
    check_seccomp();
    check_landlock();
    check_tiocsti();
    check_hardening("kernel.unprivileged_bpf_disabled", 0, "2",
                    "only privileged processes may load BPF programs",
                    "any user may load BPF programs, a frequent kernel attack surface (sbx's "
                    "seccomp filter denies bpf in sandboxes)",
                    "this kernel predates the switch (Linux 4.4)");
    check_hardening("vm.unprivileged_userfaultfd", 1, "0",
                    "userfaultfd of user memory needs a privilege",
                    "any user may use userfaultfd, which widens kernel race exploits (sbx's "
                    "seccomp filter denies it in sandboxes)",
                    "this kernel (before 5.2) lets any user use userfaultfd");
    check_io_uring();
    check_kptr();
    check_hardening("fs.protected_symlinks", 0, "1",
                    "symlinks in sticky world-writable directories are followed only when safe",
                    "following a symlink in a world-writable sticky directory (/tmp) is not "
                    "restricted to its owner",
                    "this kernel has no symlink protection");
    check_hardening("fs.protected_hardlinks", 0, "1",
                    "users may hard-link only files they own or can write",
                    "any user may hard-link files they cannot write, e.g. setuid binaries",
                    "this kernel has no hardlink protection");

    int failed = 0;
    for (size_t i = 0; i < n_checks; i++)
        failed |= checks[i].status == ST_FAIL;
    if (json) {
        if (print_json(!failed) < 0) {
            fprintf(stderr, "sbx: doctor: cannot write the report\n");
            return SBX_EXIT_SBX_FAILED;
        }
    } else {
        print_text();
    }
    return failed ? 1 : 0;
}
