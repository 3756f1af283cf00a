/* Disk fills: a sandbox writing without end stops at its tmpfs size (an ephemeral workspace,
 * /tmp) or at its workspace quota (an ext4 image on a loop device), stays usable, and the
 * host's disk loses no more than the image; the quota's mount, loop device and image go with
 * the session, also when its start fails midway. Every fill is bounded (head -c of at most a
 * few times the limit, under timeout), so a broken limit fails the test instead of filling
 * the host. Skipped, saying why, without root or loop devices. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(escape_disk, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 120);

#define MiB (1ull << 20)

/* Writes up to `max_mib` MiB of zeros to `path` inside and returns the bytes that landed;
 * *enospc says whether the writer saw "No space left on device". */
static unsigned long long fill(sbx_session *s, const char *path, unsigned max_mib, int *enospc)
{
    char script[512];
    snprintf(script, sizeof(script),
             "timeout 30 head -c %uM /dev/zero > %s; wc -c < %s", max_mib, path, path);
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_test_sh_as(s, NULL, script, &r, &err), 0, "%s", sbx_error_message(err));
    unsigned long long n = strtoull((const char *)r->out, NULL, 10);
    *enospc = strstr((const char *)r->err, "No space left on device") != NULL;
    sbx_exec_result_free(r);
    return n;
}

static void still_usable(sbx_session *s, const char *dir)
{
    char script[256];
    snprintf(script, sizeof(script), "rm -f %s/fill && echo ok > %s/after && cat %s/after", dir,
             dir, dir);
    sbx_exec_result *r = sbx_test_sh(s, script);
    cr_expect_str_eq((const char *)r->out, "ok\n", "the session after the fill: %s", r->err);
    sbx_exec_result_free(r);
}

Test(escape_disk, a_fill_of_an_ephemeral_workspace_stops_at_the_tmpfs_size)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    o.tmpfs_bytes = 16 * MiB;
    sbx_session *s = sbx_test_start(&o);
    int enospc = 0;
    unsigned long long n = fill(s, "/workspace/fill", 64, &enospc);
    cr_expect(enospc, "the writer must see ENOSPC");
    cr_expect_leq(n, 16 * MiB, "%llu bytes written past a 16 MiB tmpfs", n);
    cr_expect_geq(n, 15 * MiB, "%llu bytes: the fill should get near 16 MiB", n);
    still_usable(s, "/workspace");
    sbx_session_free(s);
}

Test(escape_disk, a_fill_of_tmp_stops_at_the_tmpfs_size)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    o.tmpfs_bytes = 16 * MiB;
    sbx_session *s = sbx_test_start(&o);
    int enospc = 0;
    unsigned long long n = fill(s, "/tmp/fill", 64, &enospc);
    cr_expect(enospc, "the writer must see ENOSPC");
    cr_expect_leq(n, 16 * MiB, "%llu bytes written past a 16 MiB /tmp", n);
    cr_expect_geq(n, 15 * MiB, "%llu bytes: the fill should get near 16 MiB", n);
    still_usable(s, "/tmp");
    sbx_session_free(s);
}

/* ---- the workspace quota ------------------------------------------------------------------ */

static void need_quota_support(void)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "workspace_quota_bytes needs root (loop devices)");
    SBX_TEST_SKIP_UNLESS(access("/dev/loop-control", R_OK | W_OK) == 0,
                         "no loop support here: /dev/loop-control is missing (modprobe loop)");
    SBX_TEST_SKIP_UNLESS(access("/sbin/mkfs.ext4", X_OK) == 0 ||
                             access("/usr/sbin/mkfs.ext4", X_OK) == 0,
                         "mkfs.ext4 (e2fsprogs) is not installed");
}

/* Starts a quota session; skips, saying why, when the machine lacks something it needs. */
static sbx_session *start_quota(sbx_session_opts *o)
{
    need_quota_support();
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_new(o, &s, &err), 0, "%s", sbx_error_message(err));
    int r = sbx_session_start(s, &err);
    if (r == SBX_ENOSYS) {
        char why[512];
        snprintf(why, sizeof(why), "workspace quota not supported here: %s",
                 sbx_error_message(err));
        sbx_error_free(err);
        sbx_session_free(s);
        cr_skip_test("%s", why);
    }
    cr_assert_eq(r, 0, "%s [%s]", sbx_error_message(err), sbx_code_name(sbx_error_code(err)));
    return s;
}

/* The mountinfo line whose mount point is `path` (copied to line), 1 when there is one. */
static int mounted_at(const char *path, char *line, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    cr_assert_not_null(f);
    char buf[4096], mp[4096];
    int found = 0;
    while (!found && fgets(buf, sizeof(buf), f)) {
        /* fields: id parent major:minor root mountpoint options ... */
        if (sscanf(buf, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, path)) {
            snprintf(line, cap, "%s", buf);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Loop devices whose backing file path contains `needle`. */
static int loops_backed_by(const char *needle)
{
    DIR *d = opendir("/sys/block");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "loop", 4) != 0)
            continue;
        char p[512], buf[4096];
        snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", de->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        buf[k > 0 ? k : 0] = '\0';
        n += strstr(buf, needle) != NULL;
    }
    closedir(d);
    return n;
}

/* The loop device lets go once the last mount of its filesystem is gone: give that up to
 * 2 s. */
static int loops_backed_by_settled(const char *needle)
{
    int n = 0;
    for (int i = 0; i < 200 && (n = loops_backed_by(needle)) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return n;
}

/* The sbx-ws-XXXXXX directory that holds the workspace and its image. */
static void parent_of(const char *ws, char *out, size_t cap)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", ws);
    snprintf(out, cap, "%s", dirname(tmp));
}

static unsigned long long host_free(const char *path)
{
    struct statvfs v;
    cr_assert_eq(statvfs(path, &v), 0, "%s", path);
    return (unsigned long long)v.f_bavail * v.f_frsize;
}

Test(escape_disk, a_fill_of_a_quota_workspace_stops_at_the_quota_and_spares_the_host)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace_quota_bytes = 32 * MiB;
    sbx_session *s = start_quota(&o);
    const char *ws = sbx_session_workspace(s);
    cr_assert_not_null(ws);
    char dir[4096], img[4200], line[4096];
    snprintf(dir, sizeof(dir), "%s", ws);
    snprintf(img, sizeof(img), "%s/sbx-quota.img", dirname(dir));
    struct stat st;
    cr_assert_eq(stat(img, &st), 0, "no image at %s", img);
    cr_expect_eq((unsigned long long)st.st_size, 32 * MiB);
    cr_assert(mounted_at(ws, line, sizeof(line)), "%s is not a mount point", ws);
    cr_expect_neq(strstr(line, " ext4 "), NULL, "%s", line);
    cr_expect_neq(strstr(line, "nosuid"), NULL, "%s", line);
    cr_expect_neq(strstr(line, "nodev"), NULL, "%s", line);
    cr_expect_eq(loops_backed_by(img), 1, "one loop device behind %s", img);

    unsigned long long before = host_free(dir);
    int enospc = 0;
    /* Four times the quota: a quota that did not hold would show as 128 MiB written. */
    unsigned long long n = fill(s, "/workspace/fill", 128, &enospc);
    unsigned long long after = host_free(dir);
    cr_expect(enospc, "the writer must see ENOSPC");
    cr_expect_leq(n, 32 * MiB, "%llu bytes written past a 32 MiB quota", n);
    cr_expect_geq(n, 24 * MiB, "%llu bytes: the fill should get near 32 MiB", n);
    cr_assert_eq(stat(img, &st), 0);
    cr_expect_leq((unsigned long long)st.st_blocks * 512, 32 * MiB,
                  "the image takes %llu bytes of the host's disk",
                  (unsigned long long)st.st_blocks * 512);
    /* Other writers share the host's disk: allow them 32 MiB besides the image. */
    cr_expect_leq(before > after ? before - after : 0, 64 * MiB,
                  "the host lost %llu bytes to a fill bounded by a 32 MiB quota",
                  before > after ? before - after : 0);
    still_usable(s, "/workspace");

    /* Files written inside are the sandbox user's, on the host view too. */
    char f[4200];
    snprintf(f, sizeof(f), "%s/after", ws);
    cr_expect_eq(stat(f, &st), 0, "%s", f);
    sbx_session_free(s);
}

Test(escape_disk, nothing_of_a_quota_workspace_is_left_after_free)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace_quota_bytes = 16 * MiB;
    sbx_session *s = start_quota(&o);
    char ws[4096], dir[4096], img[4200], line[4096];
    snprintf(ws, sizeof(ws), "%s", sbx_session_workspace(s));
    parent_of(ws, dir, sizeof(dir));
    snprintf(img, sizeof(img), "%s/sbx-quota.img", dir);
    sbx_exec_result *r = sbx_test_sh(s, "echo data > /workspace/f && cat /workspace/f");
    cr_expect_str_eq((const char *)r->out, "data\n");
    sbx_exec_result_free(r);
    cr_expect_eq(loops_backed_by(img), 1);
    sbx_session_free(s);
    cr_expect(!mounted_at(ws, line, sizeof(line)), "still mounted: %s", line);
    cr_expect_eq(loops_backed_by_settled(img), 0, "a loop device still holds %s", img);
    struct stat st;
    cr_expect_neq(stat(img, &st), 0, "%s was not removed", img);
    cr_expect_neq(stat(dir, &st), 0, "%s was not removed", dir);
}

/* A start that fails after the image is mounted (here: the agent binary is missing) leaves
 * no mount, loop device, image or directory behind. */
Test(escape_disk, a_failed_start_leaves_no_quota_behind)
{
    need_quota_support();
    char tmpl[] = "/tmp/sbx-test-wsq-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    setenv("TMPDIR", tmpl, 1);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace_quota_bytes = 16 * MiB;
    o.agent_path = "/nonexistent/sbx-agent";
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_new(&o, &s, &err), 0, "%s", sbx_error_message(err));
    int rc = sbx_session_start(s, &err);
    unsetenv("TMPDIR");
    cr_expect_neq(rc, 0, "a start without an agent must fail");
    sbx_error_free(err);
    cr_expect_null(sbx_session_workspace(s), "the failed start's workspace is gone");
    sbx_session_free(s);
    char line[4096];
    FILE *f = fopen("/proc/self/mountinfo", "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f))
        cr_expect_eq(strstr(line, tmpl), NULL, "a mount is left: %s", line);
    fclose(f);
    cr_expect_eq(loops_backed_by_settled(tmpl), 0, "a loop device is left on %s", tmpl);
    DIR *d = opendir(tmpl);
    cr_assert_not_null(d);
    struct dirent *de;
    while ((de = readdir(d)))
        cr_expect(de->d_name[0] == '.', "left in %s: %s", tmpl, de->d_name);
    closedir(d);
    rmdir(tmpl);
}

/* The handle's host mount goes at disown; the detached sandbox keeps its own and the quota;
 * a resumed session mounts the same image again, with the files; the quota is fixed. */
Test(escape_disk, a_quota_workspace_survives_disown_and_resume)
{
    need_quota_support();
    char sdir[] = "/tmp/sbx-test-wsqctl-XXXXXX";
    cr_assert_not_null(mkdtemp(sdir));
    char ctl[128];
    snprintf(ctl, sizeof(ctl), "%s/ctl.sock", sdir);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace_quota_bytes = 16 * MiB;
    o.flags = SBX_SESSION_DETACHED | SBX_SESSION_KEEP_WORKSPACE;
    o.control_socket = ctl;
    sbx_session *s = start_quota(&o);
    char ws[4096], dir[4096], img[4200], line[4096];
    snprintf(ws, sizeof(ws), "%s", sbx_session_workspace(s));
    parent_of(ws, dir, sizeof(dir));
    snprintf(img, sizeof(img), "%s/sbx-quota.img", dir);
    pid_t agent = sbx_session_agent_pid(s);
    char *state = NULL;
    cr_assert_eq(sbx_session_state_json(s, &state, NULL), 0);
    cr_assert_eq(sbx_session_disown(s, NULL), 0);
    cr_expect(!mounted_at(ws, line, sizeof(line)), "the host mount outlived the handle");
    cr_expect_eq(loops_backed_by(img), 1, "the running sandbox keeps the filesystem");

    /* Attached: the quota still holds inside. */
    sbx_session_opts ao = SBX_SESSION_OPTS_INIT;
    ao.state_json = state;
    sbx_session *a = NULL;
    cr_assert_eq(sbx_session_new(&ao, &a, NULL), 0);
    cr_assert_eq(sbx_session_attach(a, ctl, agent, NULL), 0);
    int enospc = 0;
    unsigned long long n = fill(a, "/workspace/fill", 64, &enospc);
    cr_expect(enospc && n <= 16 * MiB, "%llu bytes past a 16 MiB quota", n);
    sbx_exec_result *r = sbx_test_sh(a, "rm /workspace/fill; echo kept > /workspace/f");
    sbx_exec_result_free(r);
    cr_assert_eq(sbx_session_shutdown(a, NULL), 0);
    sbx_session_free(a);
    cr_expect_eq(loops_backed_by_settled(img), 0, "the loop device outlived the sandbox");
    struct stat st;
    cr_expect_eq(stat(img, &st), 0, "a kept workspace keeps its image");

    /* A different quota is refused, clearly; the same one (or none) mounts the image. */
    sbx_session_opts ro = SBX_SESSION_OPTS_INIT;
    ro.state_json = state;
    ro.workspace_quota_bytes = 32 * MiB;
    sbx_session *b = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_new(&ro, &b, &err), 0, "%s", sbx_error_message(err));
    cr_expect_eq(sbx_session_start(b, &err), SBX_EINVAL);
    cr_expect_neq(strstr(sbx_error_message(err), "workspace_quota_bytes"), NULL, "%s",
                  sbx_error_message(err));
    sbx_error_free(err);
    err = NULL;
    sbx_session_free(b);
    cr_expect(!mounted_at(ws, line, sizeof(line)), "a refused start left a mount");
    ro.workspace_quota_bytes = 0;
    cr_assert_eq(sbx_session_new(&ro, &b, &err), 0, "%s", sbx_error_message(err));
    cr_assert_eq(sbx_session_start(b, &err), 0, "%s", sbx_error_message(err));
    r = sbx_test_sh(b, "cat /workspace/f; df -k /workspace | tail -1");
    cr_expect_eq(strncmp((const char *)r->out, "kept\n", 5), 0, "%s", r->out);
    sbx_exec_result_free(r);
    cr_expect(mounted_at(ws, line, sizeof(line)), "the resumed session mounts the image");
    sbx_session_free(b); /* resumed, owned, not kept: removed */
    cr_expect(!mounted_at(ws, line, sizeof(line)), "still mounted: %s", line);
    cr_expect_eq(loops_backed_by_settled(img), 0);
    cr_expect_neq(stat(dir, &st), 0, "%s was not removed", dir);
    free(state);
    unlink(ctl);
    rmdir(sdir);
}

Test(escape_disk, bad_quotas_are_refused)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    o.workspace_quota_bytes = 64 * MiB;
    o.workspace = "/tmp";
    if (geteuid() == 0) {
        cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
        cr_expect_neq(strstr(sbx_error_message(err), "needs a workspace sbx creates"), NULL,
                      "%s", sbx_error_message(err));
        sbx_error_free(err);
        err = NULL;
        o.workspace = NULL;
        o.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
        cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
        sbx_error_free(err);
        err = NULL;
        o.flags = 0;
        o.workspace_quota_bytes = 1 * MiB;
        cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
        cr_expect_neq(strstr(sbx_error_message(err), "workspace_quota_bytes"), NULL, "%s",
                      sbx_error_message(err));
        sbx_error_free(err);
    } else {
        o.workspace = NULL;
        cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EPERM);
        sbx_error_free(err);
    }
    cr_expect_null(s);
}
