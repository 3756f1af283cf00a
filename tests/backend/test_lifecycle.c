/* Lifecycle: start errors, shutdown leaves nothing behind, the sandbox dies with its creator. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

TestSuite(backend_lifecycle, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 60);

static int pid_gone_within(pid_t pid, int ms)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pfd < 0)
        return errno == ESRCH;
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    int r = poll(&p, 1, ms);
    close(pfd);
    return r == 1;
}

static int mount_ns_count(unsigned long ino)
{
    /* A mount namespace lives while a process is in it (or an fd/bind pins it); count the
     * processes whose mnt namespace is `ino`. */
    char cmd[128], out[64];
    snprintf(cmd, sizeof(cmd), "ls -L -i /proc/[0-9]*/ns/mnt 2>/dev/null | grep -c '^%lu '", ino);
    char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
    sbx_test_run_host(argv, out, sizeof(out));
    return atoi(out);
}

Test(backend_lifecycle, shutdown_leaves_no_process_mount_or_temp_dir)
{
    sbx_session *s = sbx_test_start(NULL);
    sbx_exec_result_free(sbx_test_sh(s, "sleep 1000 >/dev/null 2>&1 & (setsid sleep 1000 &)"));
    pid_t agent = sbx_session_agent_pid(s);
    char nspath[64];
    struct stat st;
    snprintf(nspath, sizeof(nspath), "/proc/%d/ns/mnt", (int)agent);
    cr_assert_eq(stat(nspath, &st), 0);
    unsigned long mnt_ino = (unsigned long)st.st_ino;
    unsigned long pid_ino = sbx_test_pidns_of(agent);
    cr_expect_geq(sbx_test_count_in_pidns(pid_ino), 3);
    char ws[4096];
    snprintf(ws, sizeof(ws), "%s", sbx_session_workspace(s));
    cr_expect_eq(stat(ws, &st), 0);

    cr_assert_eq(sbx_session_shutdown(s, NULL), 0);
    cr_expect_eq(sbx_session_running(s), 0);
    cr_expect_eq(sbx_test_count_in_pidns(pid_ino), 0, "processes left after shutdown");
    cr_expect_eq(mount_ns_count(mnt_ino), 0, "the sandbox's mount namespace is still in use");
    cr_expect_eq(stat(ws, &st), 0, "shutdown must not delete the workspace");
    cr_expect_eq(sbx_session_shutdown(s, NULL), 0, "shutdown is idempotent");
    sbx_session_free(s);
    cr_expect_neq(stat(ws, &st), 0, "the owned temporary workspace was not removed");
}

Test(backend_lifecycle, free_without_shutdown_cleans_up)
{
    sbx_session *s = sbx_test_start(NULL);
    sbx_exec_result_free(sbx_test_sh(s, "sleep 1000 >/dev/null 2>&1 &"));
    unsigned long pid_ino = sbx_test_pidns_of(sbx_session_agent_pid(s));
    sbx_session_free(s);
    cr_expect_eq(sbx_test_count_in_pidns(pid_ino), 0);
}

Test(backend_lifecycle, caller_workspace_is_kept_and_used)
{
    char dir[] = "/tmp/sbx-test-ws-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 0777), 0);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = dir;
    o.root = "/home/agent/work";
    sbx_session *s = sbx_test_start(&o);
    sbx_exec_result *r = sbx_test_sh(s, "pwd; echo hi > f");
    cr_expect_str_eq((char *)r->out, "/home/agent/work\n");
    sbx_exec_result_free(r);
    sbx_session_free(s);
    char f[256];
    snprintf(f, sizeof(f), "%s/f", dir);
    struct stat st;
    cr_expect_eq(stat(f, &st), 0, "caller's workspace must survive the session");
    unlink(f);
    cr_expect_eq(rmdir(dir), 0);
}

Test(backend_lifecycle, missing_workspace_is_a_start_error_naming_it)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = "/nonexistent/sbx-ws";
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_new(&o, &s, &err), 0);
    cr_expect_eq(sbx_session_start(s, &err), SBX_EWORKSPACE_START);
    cr_expect_str_eq(sbx_error_context_get(err, "path"), "/nonexistent/sbx-ws");
    cr_expect(strstr(sbx_error_message(err), "/nonexistent/sbx-ws") != NULL);
    cr_expect_str_eq(sbx_error_op(err), "start");
    sbx_error_free(err);
    sbx_session_free(s);
}

Test(backend_lifecycle, bad_session_options_are_rejected)
{
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.root = "relative";
    cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
    cr_expect_null(s);
    sbx_error_free(err);
    err = NULL;
    o.root = "/a/../b";
    cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
    sbx_error_free(err);
    err = NULL;
    o.root = NULL;
    o.hostname = "bad host!";
    cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
    sbx_error_free(err);
    err = NULL;
    o.hostname = NULL;
    o.flags = 1u << 30;
    cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
    sbx_error_free(err);
}

Test(backend_lifecycle, bind_mounts_ro_and_rw)
{
    char ro[] = "/tmp/sbx-test-ro-XXXXXX", rw[] = "/tmp/sbx-test-rw-XXXXXX";
    cr_assert_not_null(mkdtemp(ro));
    cr_assert_not_null(mkdtemp(rw));
    chmod(rw, 0777);
    sbx_bind b[2] = {{.src = ro, .dst = "/data/ro", .readonly = 1}, {.src = rw, .dst = "/data/rw"}};
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.binds = b;
    o.n_binds = 2;
    sbx_session *s = sbx_test_start(&o);
    sbx_exec_result *r = sbx_test_sh(s, "touch /data/ro/x 2>/dev/null && echo ro-writable; "
                                        "touch /data/rw/y && echo rw-ok");
    cr_expect_str_eq((char *)r->out, "rw-ok\n");
    sbx_exec_result_free(r);
    sbx_session_free(s);
    char y[128];
    snprintf(y, sizeof(y), "%s/y", rw);
    cr_expect_eq(unlink(y), 0, "file written through the rw bind is on the host");
    rmdir(ro);
    rmdir(rw);
}

/* Forks a creator process that starts a session on `ws` (a killed creator cannot remove a
 * temporary workspace), leaves a background process in it, reports the agent's pid and
 * waits to be killed without any cleanup. Returns the creator's pid. */
static pid_t spawn_creator(char *ws, unsigned flags, pid_t *agent)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        close(p[0]);
        sbx_session_opts o = SBX_SESSION_OPTS_INIT;
        o.workspace = ws;
        o.flags = flags;
        sbx_session *s = NULL;
        sbx_error *e = NULL;
        sbx_exec_result *r = NULL;
        if (sbx_session_new(&o, &s, &e) < 0 || sbx_session_start(s, &e) < 0 ||
            sbx_test_sh_as(s, NULL, "sleep 1000 >/dev/null 2>&1 &", &r, &e) < 0) {
            fprintf(stderr, "creator: %s\n", sbx_error_message(e));
            _exit(1);
        }
        pid_t a = sbx_session_agent_pid(s);
        (void)!write(p[1], &a, sizeof(a));
        pause();
        _exit(0);
    }
    close(p[1]);
    *agent = 0;
    cr_assert_eq(read(p[0], agent, sizeof(*agent)), (ssize_t)sizeof(*agent));
    close(p[0]);
    return child;
}

Test(backend_lifecycle, the_sandbox_dies_with_its_creator)
{
    char ws[] = "/tmp/sbx-test-ws-XXXXXX";
    sbx_test_mkdtemp_ws(ws);
    pid_t agent, child = spawn_creator(ws, 0, &agent);
    unsigned long ns = sbx_test_pidns_of(agent);
    cr_assert_neq(ns, 0);
    cr_assert_geq(sbx_test_count_in_pidns(ns), 2);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    cr_expect(pid_gone_within(agent, 5000), "the agent outlived its creator");
    for (int i = 0; i < 500 && sbx_test_count_in_pidns(ns) > 0; i++)
        usleep(10000);
    cr_expect_eq(sbx_test_count_in_pidns(ns), 0, "sandbox processes outlived their creator");
    cr_expect_eq(rmdir(ws), 0);
}

Test(backend_lifecycle, a_detached_sandbox_outlives_its_creator)
{
    char ws[] = "/tmp/sbx-test-ws-XXXXXX";
    sbx_test_mkdtemp_ws(ws);
    pid_t agent, child = spawn_creator(ws, SBX_SESSION_DETACHED, &agent);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    cr_expect(!pid_gone_within(agent, 300), "a detached sandbox died with its creator");
    /* Clean up what this test made: the agent is ours to kill. */
    kill(agent, SIGKILL);
    cr_expect(pid_gone_within(agent, 5000));
    cr_expect_eq(rmdir(ws), 0);
}

Test(backend_lifecycle, a_caller_workspace_is_idmapped_to_the_sandbox_user)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "idmapped workspaces are made when sbx runs as root");
    /* A regular user's project directory, mode 0700. */
    const uid_t owner = 4242;
    char dir[] = "/tmp/sbx-test-ws-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char in[128], out[128];
    snprintf(in, sizeof(in), "%s/in.txt", dir);
    snprintf(out, sizeof(out), "%s/out.txt", dir);
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    fputs("secret\n", f);
    fclose(f);
    cr_assert_eq(chmod(in, 0600), 0);
    cr_assert_eq(chown(in, owner, owner), 0);
    cr_assert_eq(chown(dir, owner, owner), 0);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = dir;
    sbx_session *s = sbx_test_start(&o);
    sbx_exec_result *r = sbx_test_sh(s, "stat -c %u:%g . in.txt; cat in.txt; echo new > out.txt");
    cr_expect_str_eq((char *)r->out, "1000:1000\n1000:1000\nsecret\n", "stderr: %s",
                     (char *)r->err);
    sbx_exec_result_free(r);
    sbx_session_free(s);
    struct stat st;
    cr_assert_eq(stat(out, &st), 0, "the file written inside is not in the workspace");
    cr_expect_eq(st.st_uid, owner, "files the sandbox user makes belong to the dir's owner");
    cr_expect_eq(st.st_gid, owner);
    unlink(in);
    unlink(out);
    cr_expect_eq(rmdir(dir), 0);
}

Test(backend_lifecycle, a_root_owned_workspace_cannot_receive_setuid_root_programs)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "needs root to own the workspace");
    /* If root's ids were mapped to the sandbox user, it could leave a setuid-root shell in
     * the workspace for any host user to run. */
    char dir[] = "/tmp/sbx-test-ws-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 0755), 0);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = dir;
    sbx_session *s = sbx_test_start(&o);
    sbx_exec_result *r = sbx_test_sh(s, "cp /bin/sh x 2>/dev/null && chmod 4755 x 2>/dev/null "
                                        "&& echo planted; stat -c %u . ; echo end");
    cr_expect(strstr((char *)r->out, "planted") == NULL, "%s", (char *)r->out);
    cr_expect(strstr((char *)r->out, "1000\n") == NULL, "root's dir appears as the sandbox's");
    sbx_exec_result_free(r);
    sbx_session_free(s);
    char x[128];
    snprintf(x, sizeof(x), "%s/x", dir);
    struct stat st;
    cr_expect(stat(x, &st) != 0 || !(st.st_mode & S_ISUID), "a setuid file landed on the host");
    unlink(x);
    cr_expect_eq(rmdir(dir), 0);
}

Test(backend_lifecycle, one_shot_run_returns_the_command_s_result)
{
    const char *argv[] = {"echo one-shot; exit 3", NULL};
    sbx_exec_opts x = SBX_EXEC_OPTS_INIT;
    x.argv = argv;
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_run(&o, &x, &r, &err), 0, "%s", sbx_error_message(err));
    cr_expect_eq(r->exit_code, 3);
    cr_expect_str_eq((char *)r->out, "one-shot\n");
    sbx_exec_result_free(r);
}

Test(backend_lifecycle, one_shot_run_reports_the_sandbox_build_failure)
{
    /* The command is sent before the build finishes; when the build fails, the error is the
     * build's, not a vague transport error. */
    char ws[] = "/tmp/sbx-test-ws-XXXXXX";
    sbx_test_mkdtemp_ws(ws);
    char link[128];
    snprintf(link, sizeof(link), "%s/d", ws);
    cr_assert_eq(symlink("/etc", link), 0);
    sbx_error *err = NULL;
    cr_expect_eq(sbx_test_run_with_bind(ws, "/usr/share", "/workspace/d/x", &err), SBX_EBACKEND);
    cr_expect_str_eq(sbx_error_context_get(err, "stage"), "mount_point_symlink", "%s",
                     sbx_error_message(err));
    sbx_error_free(err);
    unlink(link);
    cr_expect_eq(rmdir(ws), 0);
}

Test(backend_lifecycle, a_temporary_workspace_is_removed_whatever_the_sandbox_left_in_it)
{
    /* Deeper than PATH_MAX, and a symlink to a host directory that must not be followed. */
    char victim[] = "/tmp/sbx-test-victim-XXXXXX";
    cr_assert_not_null(mkdtemp(victim));
    char keep[128];
    snprintf(keep, sizeof(keep), "%s/keep", victim);
    FILE *f = fopen(keep, "w");
    cr_assert_not_null(f);
    fclose(f);
    sbx_session *s = sbx_test_start(NULL);
    char ws[4096];
    snprintf(ws, sizeof(ws), "%s", sbx_session_workspace(s));
    sbx_exec_result *r = sbx_test_sh(
        s, "mkdir a; i=0; while [ $i -lt 1200 ]; do mkdir t && mv a t/a && mv t a; "
           "i=$((i+1)); done; touch f; echo done");
    cr_expect_str_eq((char *)r->out, "done\n");
    sbx_exec_result_free(r);
    /* Host-side symlink planted where sandboxed code could have made one. */
    char link[4200];
    snprintf(link, sizeof(link), "%s/escape", ws);
    cr_assert_eq(symlink(victim, link), 0);
    sbx_session_free(s);
    struct stat st;
    *strrchr(ws, '/') = '\0';
    cr_expect_neq(stat(ws, &st), 0, "the temporary workspace %s is still there", ws);
    cr_expect_eq(stat(keep, &st), 0, "removal followed a symlink out of the workspace");
    unlink(keep);
    cr_expect_eq(rmdir(victim), 0);
}

static void *start_idmapped(void *arg)
{
    char *ws = arg;
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = ws;
    for (int i = 0; i < 5; i++) {
        sbx_session *s = NULL;
        sbx_error *e = NULL;
        if (sbx_session_new(&o, &s, &e) < 0 || sbx_session_start(s, &e) < 0) {
            fprintf(stderr, "concurrent start: %s [stage %s]\n", sbx_error_message(e),
                    sbx_error_context_get(e, "stage") ? sbx_error_context_get(e, "stage") : "-");
            sbx_error_free(e);
            sbx_session_free(s);
            return (void *)1;
        }
        sbx_session_free(s);
    }
    return NULL;
}

Test(backend_lifecycle, concurrent_starts_with_idmapped_workspaces_do_not_deadlock)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "idmapped workspaces are made when sbx runs as root");
    char ws[2][32] = {"/tmp/sbx-test-ws-XXXXXX", "/tmp/sbx-test-ws-XXXXXX"};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        sbx_test_mkdtemp_ws(ws[i]);
        cr_assert_eq(pthread_create(&t[i], NULL, start_idmapped, ws[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        cr_expect_null(rc, "a start failed");
        cr_expect_eq(rmdir(ws[i]), 0);
    }
}

Test(backend_lifecycle, an_ephemeral_workspace_lives_in_the_sandbox_only)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    sbx_session *s = sbx_test_start(&o);
    cr_expect_null(sbx_session_workspace(s), "an ephemeral workspace has no host path");
    sbx_exec_result_free(sbx_test_sh(s, "echo kept > f"));
    sbx_exec_result *r = sbx_test_sh(s, "cat f; stat -c '%U %a' .; "
                                        "grep ' /workspace ' /proc/self/mountinfo | "
                                        "grep -c tmpfs");
    cr_expect_str_eq((char *)r->out, "kept\nsandbox 755\n1\n");
    sbx_exec_result_free(r);
    sbx_session_free(s);
}
