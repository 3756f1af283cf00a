/* cgroup limits: a memory hog and a fork bomb stay inside the limits of their sandbox, CPU time
 * is capped, and the session's cgroups go away with it. Skipped, saying why, where this
 * machine cannot enforce a limit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "harness.h"

TestSuite(escape_cgroups, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 90);

/* Starts a session with o's limits, or skips the test saying why this machine cannot
 * enforce them (`what`). */
static sbx_session *start_or_skip(const sbx_session_opts *o, const char *what)
{
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_new(o, &s, &err), 0, "%s", sbx_error_message(err));
    int r = sbx_session_start(s, &err);
    if (r == SBX_ENOSYS || r == SBX_EPERM) {
        char why[512];
        snprintf(why, sizeof(why), "%s: %s", what, sbx_error_message(err));
        sbx_error_free(err);
        sbx_session_free(s);
        cr_skip_test("%s", why);
    }
    cr_assert_eq(r, 0, "%s", sbx_error_message(err));
    return s;
}

static sbx_session *start_limited(uint64_t mem, unsigned pids, double cpus)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.memory_bytes = mem;
    o.pids_max = pids;
    o.cpus = cpus;
    return start_or_skip(&o, "cgroup limit not enforceable here");
}

/* The agent's cgroup directory for `ctrl` ("" for the unified hierarchy), from /proc. */
static int cgroup_dir(pid_t pid, const char *ctrl, char *out, size_t cap)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int found = -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = '\0';
        int v2 = !*ctrl && !a[1];
        if ((v2 || (*ctrl && strstr(a + 1, ctrl))) && strstr(b + 1, "/sbx-")) {
            struct stat st;
            if (v2)
                snprintf(out, cap, "%s%s",
                         stat("/sys/fs/cgroup/unified", &st) == 0 ? "/sys/fs/cgroup/unified"
                                                                  : "/sys/fs/cgroup",
                         b + 1);
            else
                snprintf(out, cap, "/sys/fs/cgroup/%s%s", a + 1, b + 1);
            found = 0;
        }
    }
    fclose(f);
    return found;
}

Test(escape_cgroups, a_memory_hog_is_killed_at_the_limit_and_the_session_survives)
{
    sbx_session *s = start_limited(64u << 20, 0, 0);
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    /* 256 MiB, touched page by page. */
    cr_assert_eq(sbx_test_sh_as(s, NULL, "exec python3 -c 'b = bytearray(256 << 20)'", &r, &err), 0,
                 "%s", sbx_error_message(err));
    cr_expect_eq(r->exit_code, -9, "the hog must be OOM-killed (exit %d, stderr %s)",
                 r->exit_code, r->err);
    cr_expect(r->oom_killed, "the result must say the OOM killer acted");
    cr_expect_gt(r->memory_peak, 32u << 20, "peak memory %llu",
                 (unsigned long long)r->memory_peak);
    cr_expect_leq(r->memory_peak, 64u << 20, "peak memory %llu above the limit",
                  (unsigned long long)r->memory_peak);
    sbx_exec_result_free(r);
    r = sbx_test_sh(s, "echo still here");
    cr_expect_str_eq((const char *)r->out, "still here\n");
    cr_expect(!r->oom_killed, "no OOM kill in a command that needed little");
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

/* Runs script as the sandbox user; on a failed exec (a timeout, say) the result is an empty
 * one with exit code 1000, so a test still reaches sbx_session_free. */
static sbx_exec_result *sh_or_fail(sbx_session *s, const char *script)
{
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    if (sbx_test_sh_as(s, NULL, script, &r, &err) < 0) {
        cr_expect_fail("exec '%s': %s", script, sbx_error_message(err));
        sbx_error_free(err);
        r = calloc(1, sizeof(*r));
        cr_assert_not_null(r);
        r->out = calloc(1, 1);
        r->err = calloc(1, 1);
        r->exit_code = 1000;
    }
    return r;
}

/* THREATS T56: memory a command makes the kernel hold rather than allocating it itself counts
 * too: files in a tmpfs (/dev/shm here, sized far above the limit) and the buffers of full
 * pipes. Beside 40 MiB of either, a 40 MiB allocation does not fit in 64 MiB and is killed;
 * alone it fits. (Filling the tmpfs or the pipes up to the limit itself is not what is
 * tested: tmpfs pages cannot be reclaimed without swap, and a v2 kernel then reclaims the
 * commands' own code pages, thrashing for a long time before it kills; tmpfs_bytes bounds
 * the tmpfs, RLIMIT_NOFILE the pipes.) */
Test(escape_cgroups, tmpfs_files_and_pipe_buffers_count_against_the_memory_limit)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.memory_bytes = 64u << 20;
    o.tmpfs_bytes = 1ull << 30;
    sbx_session *s = start_or_skip(&o, "cgroup memory limit not enforceable here");
#define ALLOC40 "b = bytearray(40 << 20); b[::4096] = b\"x\" * (40 << 8); print(\"fits\")"
    sbx_exec_result *r = sh_or_fail(s, "exec python3 -c '" ALLOC40 "'");
    cr_expect_str_eq((const char *)r->out, "fits\n", "alone it fits: exit %d, stderr %s",
                     r->exit_code, r->err);
    sbx_exec_result_free(r);

    r = sh_or_fail(s, "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null && stat -c %s "
                      "/dev/shm/fill");
    cr_expect_str_eq((const char *)r->out, "41943040\n", "%s", r->err);
    sbx_exec_result_free(r);
    r = sh_or_fail(s, "exec python3 -c '" ALLOC40 "'");
    cr_expect_eq(r->exit_code, -9, "40 MiB beside a 40 MiB tmpfs file must be OOM-killed (exit "
                                   "%d, out %s, stderr %s)",
                 r->exit_code, r->out, r->err);
    cr_expect(r->oom_killed, "the result must say the OOM killer acted");
    cr_expect_leq(r->memory_peak, 64u << 20, "peak %llu", (unsigned long long)r->memory_peak);
    sbx_exec_result_free(r);
    r = sh_or_fail(s, "rm /dev/shm/fill && echo freed");
    cr_expect_str_eq((const char *)r->out, "freed\n", "%s", r->err);
    sbx_exec_result_free(r);

    /* 640 full pipes of 64 KiB (under fs.pipe-user-pages-soft): 40 MiB of pipe buffers. */
    r = sh_or_fail(s, "exec python3 -c 'import os\n"
                      "ps = []\n"
                      "for i in range(640):\n"
                      "    r, w = os.pipe()\n"
                      "    os.set_blocking(w, False)\n"
                      "    try:\n"
                      "        while True: os.write(w, bytes(65536))\n"
                      "    except BlockingIOError: pass\n"
                      "    ps.append((r, w))\n"
                      "print(\"pipes\", len(ps), flush=True)\n"
                      ALLOC40 "'");
    cr_expect_str_eq((const char *)r->out, "pipes 640\n", "stderr %s", r->err);
    cr_expect_eq(r->exit_code, -9, "40 MiB beside 40 MiB of pipe buffers must be OOM-killed "
                                   "(exit %d)",
                 r->exit_code);
    cr_expect_leq(r->memory_peak, 64u << 20, "peak %llu", (unsigned long long)r->memory_peak);
    sbx_exec_result_free(r);
    r = sh_or_fail(s, "echo still here");
    cr_expect_str_eq((const char *)r->out, "still here\n");
    sbx_exec_result_free(r);
#undef ALLOC40
    sbx_session_free(s);
}

Test(escape_cgroups, a_fork_bomb_stops_at_the_process_limit)
{
    sbx_session *s = start_limited(0, 40, 0);
    /* Try for 100 background processes (in a subshell: dash gives up at the first fork that
     * fails), then count what exists in the sandbox. */
    sbx_exec_result *r = sbx_test_sh(
        s, "(i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; "
           "set -- /proc/[0-9]*; echo $#"); /* builtins only: no fork is left at the limit */
    int n = atoi((const char *)r->out);
    cr_expect_leq(n, 40, "processes in the sandbox: %d", n);
    cr_expect_geq(n, 20, "the bomb should have got close to the limit: %d", n);
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

Test(escape_cgroups, cgroups_exist_during_the_session_and_go_with_it)
{
    sbx_session *s = start_limited(256u << 20, 128, 1);
    pid_t agent = sbx_session_agent_pid(s);
    char mem[1024] = "", pids[1024] = "";
    int have_mem = cgroup_dir(agent, "memory", mem, sizeof(mem)) == 0 ||
                   cgroup_dir(agent, "", mem, sizeof(mem)) == 0;
    int have_pids = cgroup_dir(agent, "pids", pids, sizeof(pids)) == 0 ||
                    cgroup_dir(agent, "", pids, sizeof(pids)) == 0;
    cr_assert(have_mem && have_pids, "the agent is not in an sbx- cgroup");
    cr_expect_neq(strstr(mem, sbx_session_id(s)), NULL, "%s", mem);
    struct stat st;
    cr_expect_eq(stat(mem, &st), 0, "%s", mem);
    sbx_session_free(s);
    cr_expect_neq(stat(mem, &st), 0, "%s was not removed", mem);
    cr_expect_neq(stat(pids, &st), 0, "%s was not removed", pids);
}

Test(escape_cgroups, cpu_time_is_capped)
{
    sbx_session *s = start_limited(0, 0, 0.25);
    /* Two busy loops for one second of wall time: without the cap they would use up to two
     * seconds of CPU; with it, about a quarter. */
    sbx_exec_result *r = sbx_test_sh(
        s, "for i in 1 2; do timeout 1 sh -c 'while :; do :; done' & done; wait; "
           "cat /proc/self/stat >/dev/null; times | tail -1");
    /* `times` line 2: children's user and system time, e.g. "0m0.240s 0m0.010s". */
    double um = 0, us = 0, sm = 0, ss = 0;
    cr_assert_eq(sscanf((const char *)r->out, "%lfm%lfs %lfm%lfs", &um, &us, &sm, &ss), 4, "%s",
                 r->out);
    double cpu = um * 60 + us + sm * 60 + ss;
    cr_expect_lt(cpu, 0.6, "CPU time %.2fs with a quarter of a CPU for 1 s", cpu);
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

Test(escape_cgroups, bad_limits_are_refused)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    o.cpus = -1;
    cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
    sbx_error_free(err);
    err = NULL;
    o.cpus = 0;
    o.memory_bytes = 1024;
    cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
    sbx_error_free(err);
    cr_expect_null(s);
}

Test(escape_cgroups, a_detached_sessions_cgroups_go_with_whoever_ends_it)
{
    char dir[] = "/tmp/sbx-test-cgctl-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char ctl[64];
    snprintf(ctl, sizeof(ctl), "%s/ctl.sock", dir);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.flags = SBX_SESSION_DETACHED;
    o.control_socket = ctl;
    o.pids_max = 64;
    o.flags |= SBX_SESSION_EPHEMERAL_WORKSPACE;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_new(&o, &s, &err), 0);
    int r = sbx_session_start(s, &err);
    if (r == SBX_ENOSYS || r == SBX_EPERM) {
        sbx_error_free(err);
        sbx_session_free(s);
        rmdir(dir);
        cr_skip_test("pids limit not enforceable here");
    }
    cr_assert_eq(r, 0, "%s", sbx_error_message(err));
    pid_t agent = sbx_session_agent_pid(s);
    char pids[1024];
    cr_assert_eq(cgroup_dir(agent, "pids", pids, sizeof(pids)) == 0 ||
                     cgroup_dir(agent, "", pids, sizeof(pids)) == 0,
                 1);
    char *state = NULL;
    cr_assert_eq(sbx_session_state_json(s, &state, NULL), 0);
    cr_assert_eq(sbx_session_disown(s, &err), 0);
    struct stat st;
    cr_expect_eq(stat(pids, &st), 0, "the cgroup outlives the creator's handle");
    sbx_session_opts ao = SBX_SESSION_OPTS_INIT;
    ao.state_json = state;
    sbx_session *a = NULL;
    cr_assert_eq(sbx_session_new(&ao, &a, NULL), 0);
    cr_assert_eq(sbx_session_attach(a, ctl, agent, &err), 0, "%s", sbx_error_message(err));
    cr_assert_eq(sbx_session_shutdown(a, NULL), 0);
    sbx_session_free(a);
    cr_expect_neq(stat(pids, &st), 0, "%s was not removed by the attached shutdown", pids);
    free(state);
    unlink(ctl);
    rmdir(dir);
}

/* The first number in a cgroup weight file ("500", or "default 500" on v2). */
static long read_weight(const char *dir, const char *file)
{
    char path[1200], buf[256];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strncmp(buf, "default ", 8) == 0 ? buf + 8 : buf;
    return strtol(p, NULL, 10);
}

static int exists_in(const char *dir, const char *file)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return access(path, F_OK) == 0;
}

Test(escape_cgroups, an_io_weight_is_written_in_the_session_cgroup)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.io_weight = 500;
    sbx_session *s = start_or_skip(&o, "no io/blkio controller with weights here");
    pid_t agent = sbx_session_agent_pid(s);
    char dir[1024] = "";
    long got = -1, want = -1;
    const char *file = NULL;
    if (cgroup_dir(agent, "blkio", dir, sizeof(dir)) == 0) {
        /* v1: CFQ's 10..1000 (default 500), or BFQ's 1..1000 (default 100), scaled so the
         * defaults match. */
        file = exists_in(dir, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
        want = !strcmp(file, "blkio.weight") ? 1000 : 500;
    } else {
        cr_assert_eq(cgroup_dir(agent, "", dir, sizeof(dir)), 0,
                     "the agent is in no sbx- io or blkio cgroup");
        file = exists_in(dir, "io.weight") ? "io.weight" : "io.bfq.weight";
        want = 500;
    }
    cr_expect_neq(strstr(dir, sbx_session_id(s)), NULL, "%s is not the session's", dir);
    got = read_weight(dir, file);
    cr_expect_eq(got, want, "%s/%s is %ld, expected %ld", dir, file, got, want);
    sbx_session_free(s);
    struct stat st;
    cr_expect_neq(stat(dir, &st), 0, "%s was not removed", dir);
}

Test(escape_cgroups, a_bad_io_weight_is_refused)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    o.io_weight = 10001;
    cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
    cr_expect_neq(strstr(sbx_error_message(err), "io_weight"), NULL, "%s",
                  sbx_error_message(err));
    sbx_error_free(err);
    cr_expect_null(s);
}

Test(escape_cgroups, a_cpuset_pins_every_command)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.cpuset = "0";
    sbx_session *s = start_or_skip(&o, "no cpuset controller here");
    sbx_exec_result *r = sbx_test_sh(s, "grep Cpus_allowed_list /proc/self/status; "
                                        "sh -c 'grep Cpus_allowed_list /proc/self/status'");
    cr_expect_str_eq((const char *)r->out, "Cpus_allowed_list:\t0\nCpus_allowed_list:\t0\n");
    sbx_exec_result_free(r);
    sbx_session_free(s);

    sbx_session *bad = NULL;
    sbx_error *err = NULL;
    o.cpuset = "0-";
    cr_expect_lt(sbx_session_new(&o, &bad, &err), 0);
    cr_expect_eq(sbx_error_code(err), SBX_EINVAL);
    sbx_error_free(err);
}

/* 2 MiB written with O_DIRECT at 1 MiB/s takes about 2 s; without the limit, milliseconds. */
Test(escape_cgroups, disk_bandwidth_is_capped_on_the_workspace_device)
{
    char ws[] = "/var/tmp/sbx-test-io-XXXXXX";
    sbx_test_mkdtemp_ws(ws);
    struct stat st;
    cr_assert_eq(stat(ws, &st), 0);
    if (major(st.st_dev) == 0) {
        rmdir(ws);
        cr_skip_test("%s is on no block device here (tmpfs): nothing to throttle", ws);
    }
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = ws;
    o.io_write_bps = 1u << 20;
    sbx_session *s = start_or_skip(&o, "no io/blkio throttling here");
    sbx_exec_result *r = sbx_test_sh(
        s, "dd if=/dev/zero of=f bs=256k count=8 oflag=direct 2>&1 >/dev/null | tail -1");
    double ms = r->duration_ms;
    int direct_refused = strstr((const char *)r->out, "Invalid argument") != NULL;
    sbx_exec_result_free(r);
    sbx_session_free(s);
    char f[64];
    snprintf(f, sizeof(f), "%s/f", ws);
    unlink(f);
    cr_expect_eq(rmdir(ws), 0, "%s: %s", ws, strerror(errno));
    if (direct_refused)
        cr_skip_test("the workspace's file system refuses O_DIRECT: nothing to measure");
    cr_expect_geq(ms, 1200.0, "2 MiB at 1 MiB/s took %.0f ms", ms);
    cr_expect_leq(ms, 10000.0, "%.0f ms", ms);

    o.workspace = NULL;
    o.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    sbx_session *e = NULL;
    sbx_error *err = NULL;
    cr_expect_lt(sbx_session_new(&o, &e, &err), 0, "an ephemeral workspace has no device");
    cr_expect_eq(sbx_error_code(err), SBX_EINVAL);
    sbx_error_free(err);
}

/* A configured parent takes the place of sbx's own cgroup: the session's memory cgroup is
 * sbx-<id> right below it. On v1 the test makes the parent below its own memory cgroup; on
 * pure v2, below $SBX_CGROUP_PARENT (a delegated, empty cgroup), with memory handed down. */
Test(escape_cgroups, cgroups_go_below_a_configured_parent)
{
    char rel[512], dir[1024], self[512] = "";
    struct stat st;
    int v1 = stat("/sys/fs/cgroup/memory/memory.limit_in_bytes", &st) == 0;
    FILE *f = fopen("/proc/self/cgroup", "re");
    cr_assert_not_null(f);
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (b && v1 && !strncmp(a + 1, "memory:", 7))
            snprintf(self, sizeof(self), "%s", strcmp(b + 1, "/") ? b + 1 : "");
    }
    fclose(f);
    const char *env = getenv("SBX_CGROUP_PARENT");
    if (v1) {
        snprintf(rel, sizeof(rel), "%s/sbx-test-parent-%d", self, (int)getpid());
        snprintf(dir, sizeof(dir), "/sys/fs/cgroup/memory%s", rel);
    } else {
        SBX_TEST_SKIP_UNLESS(env && *env, "pure cgroup v2 and no SBX_CGROUP_PARENT: no delegated "
                                          "empty cgroup to make a parent in");
        char top[1024];
        snprintf(top, sizeof(top), "/sys/fs/cgroup%s/cgroup.subtree_control", env);
        FILE *sc = fopen(top, "we");
        cr_assert_not_null(sc, "%s", top);
        fputs("+memory", sc);
        fclose(sc);
        snprintf(rel, sizeof(rel), "%s/sbx-test-parent-%d", env, (int)getpid());
        snprintf(dir, sizeof(dir), "/sys/fs/cgroup%s", rel);
    }
    cr_assert_eq(mkdir(dir, 0755), 0, "%s: %s", dir, strerror(errno));
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.memory_bytes = 64u << 20;
    o.cgroup_parent = rel;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_new(&o, &s, &err), 0, "%s", sbx_error_message(err));
    int r = sbx_session_start(s, &err);
    char want[1024], cg[1100] = "";
    snprintf(want, sizeof(want), "%s/sbx-%s", rel, sbx_session_id(s));
    if (r == 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)sbx_session_agent_pid(s));
        f = fopen(path, "re");
        while (f && fgets(line, sizeof(line), f))
            if ((v1 && strstr(line, ":memory:")) || (!v1 && !strncmp(line, "0::", 3)))
                snprintf(cg, sizeof(cg), "%s", strrchr(line, ':') + 1);
        if (f)
            fclose(f);
        cg[strcspn(cg, "\n")] = '\0';
    }
    sbx_session_free(s);
    int gone = rmdir(dir) == 0;
    cr_assert_eq(r, 0, "%s", sbx_error_message(err));
    cr_expect_str_eq(cg, want);
    cr_expect(gone, "%s is left (the session cgroup below it must be gone)", dir);

    /* A parent that does not exist is named in the error. */
    o.cgroup_parent = "/sbx-no-such-parent";
    err = NULL;
    cr_assert_eq(sbx_session_new(&o, &s, &err), 0);
    cr_expect_lt(sbx_session_start(s, &err), 0);
    cr_expect(err && strstr(sbx_error_message(err), "/sbx-no-such-parent"), "%s",
              sbx_error_message(err));
    sbx_error_free(err);
    sbx_session_free(s);
}
