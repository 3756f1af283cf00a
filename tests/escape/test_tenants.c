/* Tenants and the host around them: sbx fails closed where it cannot make a user namespace
 * (T75), two sandboxes on the same host ids cannot see, signal or starve each other (T46), and
 * a daemon that double-forks, calls setsid() and ignores SIGTERM/SIGHUP does not outlive its
 * sandbox (T63). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

TestSuite(escape_tenants, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 90);

/* ---------------------------------------------------------------------------------------- */
/* T75: no user namespace, no sandbox.
 *
 * The host is left alone: the test forks a child that unshares a user namespace of its own
 * (with a mount namespace, so nothing it might mount reaches the host), and the test, as root
 * of the parent namespace, maps every id 1:1 into it ("0 0 4294967295"), so the child is uid 0
 * with the same file access as the test. /proc/sys/user/max_user_namespaces is per user
 * namespace (kernel/ucount.c: the sysctl set is the reader's user namespace, writable by
 * whoever has CAP_SYS_RESOURCE over it), and the kernel checks a new namespace against the
 * limit of every ancestor. So the child writes 0 to its own copy, which makes every
 * clone(CLONE_NEWUSER) below it fail with ENOSPC, as on a host where the sysctl is 0, and the
 * host's value is untouched. Then the child runs sbx. The control is the same child without
 * lowering the limit: root in a 1:1 child namespace can run a sandbox, as long as the
 * workspace needs no idmapped mount (mount_setattr(MOUNT_ATTR_IDMAP) wants CAP_SYS_ADMIN over
 * the host file system's namespace), so it uses a root-owned workspace. */

/* What the child does once it is in its namespace: exec a program or call a function, with
 * stdout and stderr on the pipe to the test. */
struct in_ns {
    int lower;                  /* write 0 to max_user_namespaces first */
    char *const *argv;          /* execv this, or */
    void (*fn)(const void *);   /* call this and _exit(0) */
    const void *arg;
};

static int write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, strlen(data));
    close(fd);
    return n == (ssize_t)strlen(data) ? 0 : -1;
}

/* Runs `what` in a forked child in a 1:1-mapped user namespace; its output (up to cap) in
 * out. Returns the exit status (128+N for a signal). The child is bounded by alarm(). */
static int run_in_userns(const struct in_ns *what, char *out, size_t cap)
{
    int to_child[2], from_child[2], outp[2];
    cr_assert_eq(pipe2(to_child, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(from_child, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(outp, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        alarm(30); /* survives execve: a hang fails the test instead of lingering */
        int dn = open("/dev/null", O_RDONLY);
        dup2(dn, 0);
        dup2(outp[1], 1);
        dup2(outp[1], 2);
        char c = 'u';
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
            dprintf(1, "setup: unshare: %s\n", strerror(errno));
            _exit(99);
        }
        if (write(from_child[1], &c, 1) != 1 || read(to_child[0], &c, 1) != 1 || c != 'm') {
            dprintf(1, "setup: the parent did not map the namespace\n");
            _exit(99);
        }
        if (what->lower && write_file("/proc/sys/user/max_user_namespaces", "0") < 0) {
            dprintf(1, "setup: lower max_user_namespaces: %s\n", strerror(errno));
            _exit(99);
        }
        if (what->argv) {
            execv(what->argv[0], what->argv);
            dprintf(1, "setup: exec %s: %s\n", what->argv[0], strerror(errno));
            _exit(99);
        }
        what->fn(what->arg);
        fflush(stdout);
        _exit(0);
    }
    close(to_child[0]);
    close(from_child[1]);
    close(outp[1]);
    char c = 0;
    int mapped = 0;
    if (read(from_child[0], &c, 1) == 1) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
        mapped = write_file(path, "0 0 4294967295") == 0;
        snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
        mapped = mapped && write_file(path, "0 0 4294967295") == 0;
    }
    c = mapped ? 'm' : 'x';
    (void)!write(to_child[1], &c, 1);
    close(to_child[1]);
    close(from_child[0]);
    sbx_test_read_all(outp[0], out, cap);
    close(outp[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    cr_assert(mapped, "could not map the child's user namespace: %s", out);
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static int exists(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void remove_in(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    unlink(p);
}

Test(escape_tenants, the_cli_fails_closed_without_user_namespaces)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "mapping a child user namespace 1:1 needs root");
    char ws[] = "/tmp/sbx-test-t75-XXXXXX";
    cr_assert_not_null(mkdtemp(ws));
    cr_assert_eq(chmod(ws, 0777), 0); /* root-owned: no idmapped mount (see above) */
    char sbx[4200], out[8192];
    snprintf(sbx, sizeof(sbx), "%s", sbx_test_bin("sbx"));
    char *run_ws[] = {sbx, "run", "-w", ws, "--", "sh", "-c", "touch /workspace/canary", NULL};

    /* Control: the same setup runs a sandbox. */
    struct in_ns w = {.lower = 0, .argv = run_ws};
    int st = run_in_userns(&w, out, sizeof(out));
    cr_assert_eq(st, 0, "control run failed (status %d): %s", st, out);
    cr_assert(exists(ws, "canary"), "the control run left no canary: %s", out);
    remove_in(ws, "canary");

    /* No user namespaces: sbx itself fails (125), says why, and the payload never runs. */
    w.lower = 1;
    st = run_in_userns(&w, out, sizeof(out));
    cr_expect_eq(st, 125, "exit %d: %s", st, out);
    cr_expect_neq(strstr(out, "user namespaces"), NULL, "the message names no cause: %s", out);
    cr_expect_neq(strstr(out, "max_user_namespaces"), NULL, "nothing to act on: %s", out);
    cr_expect(!exists(ws, "canary"), "the payload ran without a sandbox: %s", out);

    /* With the default tmpfs workspace: the payload's output never shows. */
    char *run_eph[] = {sbx, "run", "--", "sh", "-c", "echo payload-ran", NULL};
    w.argv = run_eph;
    st = run_in_userns(&w, out, sizeof(out));
    cr_expect_eq(st, 125, "exit %d: %s", st, out);
    cr_expect_eq(strstr(out, "payload-ran"), NULL, "the payload ran without a sandbox");
    cr_expect_neq(strstr(out, "max_user_namespaces"), NULL, "%s", out);

    /* A workspace owned by a regular user (the usual project directory) goes through the
     * idmapped-mount path first, which makes a user namespace of its own: still closed. */
    cr_assert_eq(chown(ws, 4242, 4242), 0);
    cr_assert_eq(chmod(ws, 0700), 0);
    w.argv = run_ws;
    st = run_in_userns(&w, out, sizeof(out));
    cr_expect_eq(st, 125, "exit %d: %s", st, out);
    cr_expect(!exists(ws, "canary"), "the payload ran without a sandbox: %s", out);
    cr_expect_neq(strstr(out, "max_user_namespaces"), NULL, "the message names no cause: %s",
                  out);
    remove_in(ws, "canary");
    cr_expect_eq(rmdir(ws), 0, "%s: %s", ws, strerror(errno));
}

/* In the child: sbx_run of a canary-writing command in the workspace `arg`; prints the code,
 * its name, whether a result came back, and the message. */
static void library_run(const void *arg)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = arg;
    const char *argv[] = {"touch /workspace/canary", NULL};
    sbx_exec_opts x = SBX_EXEC_OPTS_INIT;
    x.argv = argv;
    x.timeout_s = 20;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    int rc = sbx_run(&o, &x, &r, &err);
    printf("rc=%d code=%s result=%s exit=%d\n%s\n", rc, rc < 0 ? sbx_code_name(rc) : "ok",
           r ? "yes" : "no", r ? r->exit_code : -1, err ? sbx_error_message(err) : "");
    sbx_exec_result_free(r);
    sbx_error_free(err);
}

Test(escape_tenants, the_library_fails_closed_with_a_stable_code_without_user_namespaces)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "mapping a child user namespace 1:1 needs root");
    char ws[] = "/tmp/sbx-test-t75-XXXXXX";
    cr_assert_not_null(mkdtemp(ws));
    cr_assert_eq(chmod(ws, 0777), 0);
    char out[8192];
    struct in_ns w = {.lower = 0, .fn = library_run, .arg = ws};
    int st = run_in_userns(&w, out, sizeof(out));
    cr_assert_eq(st, 0, "%s", out);
    cr_assert_eq(strncmp(out, "rc=0 code=ok result=yes exit=0\n", 31), 0, "control: %s", out);
    cr_assert(exists(ws, "canary"), "the control run left no canary: %s", out);
    remove_in(ws, "canary");

    w.lower = 1;
    st = run_in_userns(&w, out, sizeof(out));
    cr_expect_eq(st, 0, "%s", out);
    char want[128];
    snprintf(want, sizeof(want), "rc=%d code=%s result=no exit=-1\n", SBX_ENOSYS,
             sbx_code_name(SBX_ENOSYS));
    cr_expect_eq(strncmp(out, want, strlen(want)), 0, "expected %s got %s", want, out);
    cr_expect_neq(strstr(out, "max_user_namespaces"), NULL, "%s", out);
    cr_expect(!exists(ws, "canary"), "the payload ran without a sandbox: %s", out);
    remove_in(ws, "canary");
    cr_expect_eq(rmdir(ws), 0, "%s: %s", ws, strerror(errno));
}

/* ---------------------------------------------------------------------------------------- */
/* T46: every sandbox maps its users to the same host ids (uid_base), so isolation between
 * tenants rests on the namespaces, not on distinct host uids. */

static sbx_session *start_tenant(unsigned nproc, unsigned pids)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.nproc = nproc;
    o.pids_max = pids;
    o.flags = SBX_SESSION_CGROUP_BEST_EFFORT; /* nproc bounds the bomb where no cgroup can */
    return sbx_test_start(&o);
}

/* Host pids of the processes in `s`'s pid namespace, space-separated, in out. */
static void host_pids_of(sbx_session *s, char *out, size_t cap)
{
    unsigned long ns = sbx_test_pidns_of(sbx_session_agent_pid(s));
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "for p in /proc/[0-9]*; do [ \"$(stat -L -c %%i $p/ns/pid 2>/dev/null)\" = %lu ] "
             "&& printf '%%s ' ${p#/proc/}; done; true",
             ns);
    char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(sbx_test_run_host(argv, out, cap), 0);
}

Test(escape_tenants, a_tenant_cannot_see_the_workspace_or_processes_of_another)
{
    sbx_session *a = start_tenant(0, 0);
    sbx_session *b = start_tenant(0, 0);
    const char *wsb = sbx_session_workspace(b);
    cr_assert_not_null(wsb);
    /* On the host, other users cannot get into B's workspace either: it or its parent is
     * closed to them. */
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", wsb);
    *strrchr(parent, '/') = '\0';
    struct stat st1, st2;
    cr_assert_eq(stat(wsb, &st1), 0);
    cr_assert_eq(stat(parent, &st2), 0);
    cr_expect((st1.st_mode & 07) == 0 || (st2.st_mode & 07) == 0,
              "%s (%o) and %s (%o) are open to other host users", wsb, st1.st_mode & 0777,
              parent, st2.st_mode & 0777);
    /* B leaves a file and a long-lived marked process behind. */
    sbx_exec_result_free(sbx_test_sh(b, "echo secret > b-file; sleep 4321 >/dev/null 2>&1 &"));
    char bpids[4096];
    host_pids_of(b, bpids, sizeof(bpids));
    cr_assert_neq(bpids[0], '\0');

    char script[32768];
    snprintf(script, sizeof(script),
             "ls -d '%s' '%s/b-file' 2>/dev/null && echo sees-b-workspace; "
             "for p in %s; do ls /proc/$p/root/ >/dev/null 2>&1 && echo enters-$p; done; "
             "python3 -c \"import os\n"
             "def procs():\n    return {int(d) for d in os.listdir('/proc') if d.isdigit()}\n"
             "mark = [b'sleep', str(4000 + 321).encode()]\n"
             "seen = []\n"
             "for p in procs():\n"
             "    try:\n        c = open('/proc/%%d/cmdline' %% p, 'rb').read().split(b'\\\\0')\n"
             "    except OSError:\n        continue\n"
             "    if c[:2] == mark:\n        seen.append(p)\n"
             "before = procs()\nfound = set()\n"
             "for p in list(range(1, 4097)) + [int(x) for x in '%s'.split()]:\n"
             "    try:\n        os.kill(p, 0)\n        found.add(p)\n"
             "    except ProcessLookupError:\n        pass\n"
             "    except PermissionError:\n        found.add(p)\n"
             "after = procs()\n"
             "print('marked', seen)\n"
             "print('foreign', sorted(found - (before | after)))\n"
             "print('missed', sorted((before & after) - found))\n"
             "print('own', len(found) > 1)\"",
             wsb, wsb, bpids, bpids);
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    /* As root inside too: uid 0 of A is the same host uid as uid 0 of B. */
    const char *users[] = {NULL, "root"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(sbx_test_sh_as(a, users[i], script, &r, &err), 0, "%s",
                     sbx_error_message(err));
        cr_expect_str_eq((char *)r->out, "marked []\nforeign []\nmissed []\nown True\n",
                         "as %s: %s (stderr %s)", users[i] ? users[i] : "sandbox", r->out,
                         r->err);
        sbx_exec_result_free(r);
    }
    /* B's marked process is still there: A touched nothing. */
    r = sbx_test_sh(b, "cat b-file; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; "
                       "echo; done | grep -c '^sleep 4321 $'");
    cr_expect_str_eq((char *)r->out, "secret\n1\n");
    sbx_exec_result_free(r);
    sbx_session_free(a);
    sbx_session_free(b);
}

/* A's bomb: forks children that sleep until fork fails (at most 5000, each living at most
 * 15 s), says so in /workspace/full, holds them until /workspace/stop appears (at most 15 s),
 * then kills and reaps them and prints the errno and the count. */
static const char BOMB[] =
    "python3 -c \"import os, time\n"
    "pids = []\nerr = 'capped'\n"
    "try:\n"
    "    while len(pids) < 5000:\n"
    "        p = os.fork()\n"
    "        if p == 0:\n            time.sleep(15)\n            os._exit(0)\n"
    "        pids.append(p)\n"
    "except OSError as e:\n    err = e.errno\n"
    "with open('/workspace/full.tmp', 'w') as f:\n    f.write('%s %d' % (err, len(pids)))\n"
    "os.rename('/workspace/full.tmp', '/workspace/full')\n"
    "end = time.time() + 15\n"
    "while not os.path.exists('/workspace/stop') and time.time() < end:\n    time.sleep(0.05)\n"
    "for p in pids:\n    os.kill(p, 9)\n"
    "for p in pids:\n    os.waitpid(p, 0)\n"
    "print(err, len(pids) < 64)\"";

struct bomb {
    sbx_session *s;
    int rc;
    sbx_exec_result *r;
    sbx_error *err;
};

static void *bomb_thread(void *arg)
{
    struct bomb *b = arg;
    b->rc = sbx_test_sh_as(b->s, NULL, BOMB, &b->r, &b->err);
    return NULL;
}

Test(escape_tenants, a_fork_bomb_in_one_tenant_does_not_stop_another_from_forking)
{
    /* Both tenants get the same small RLIMIT_NPROC and their users are the same host uid: if
     * the kernel counted per host uid, A's bomb would leave B no process to fork. */
    sbx_session *a = start_tenant(64, 128);
    sbx_session *b = start_tenant(64, 128);
    const char *wsa = sbx_session_workspace(a);
    cr_assert_not_null(wsa);
    struct bomb bomb = {.s = a};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, bomb_thread, &bomb), 0);
    int full = 0;
    for (int i = 0; i < 400 && !(full = exists(wsa, "full")); i++)
        usleep(50 * 1000);
    char stop[512];
    snprintf(stop, sizeof(stop), "%s/stop", wsa);

    /* While A is at its limit, B forks freely. */
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    int rc = sbx_test_sh_as(b, NULL, "for i in 1 2 3 4 5; do /bin/true & done; wait; echo ok",
                            &r, &err);
    /* Let A's bomb go before asserting anything. */
    int fd = open(stop, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    pthread_join(t, NULL);
    cr_expect(full, "A's bomb never reached its limit");
    cr_expect_eq(rc, 0, "%s", sbx_error_message(err));
    sbx_error_free(err);
    if (r)
        cr_expect_str_eq((char *)r->out, "ok\n", "B could not fork: %s %s", r->out, r->err);
    sbx_exec_result_free(r);
    cr_expect_eq(bomb.rc, 0, "%s", sbx_error_message(bomb.err));
    sbx_error_free(bomb.err);
    if (bomb.r)
        cr_expect_str_eq((char *)bomb.r->out, "11 True\n", "A's bomb: %s %s", bomb.r->out,
                         bomb.r->err);
    sbx_exec_result_free(bomb.r);

    /* A is usable again, and B's count is its own. */
    r = sbx_test_sh(a, "echo still-usable");
    cr_expect_str_eq((char *)r->out, "still-usable\n");
    sbx_exec_result_free(r);
    r = sbx_test_sh(b, "echo still-usable");
    cr_expect_str_eq((char *)r->out, "still-usable\n");
    sbx_exec_result_free(r);
    unsigned long nsa = sbx_test_pidns_of(sbx_session_agent_pid(a));
    unsigned long nsb = sbx_test_pidns_of(sbx_session_agent_pid(b));
    sbx_session_free(a);
    sbx_session_free(b);
    cr_expect_eq(sbx_test_count_in_pidns(nsa), 0, "processes of A survived");
    cr_expect_eq(sbx_test_count_in_pidns(nsb), 0, "processes of B survived");
}

/* ---------------------------------------------------------------------------------------- */
/* T63: a daemon that ignores SIGTERM and SIGHUP, double-forks and calls setsid() writes a
 * heartbeat (a counter) into the caller's workspace every 20 ms; it bounds itself to 30 s so a
 * broken teardown fails the test without leaving a process for long. backend_lifecycle covers
 * a plain `(setsid sleep &)`; this one fights back and is watched from the host through the
 * workspace, not through the pid namespace alone. (It runs as the sandbox user: root inside
 * cannot enter an idmapped caller workspace of mode 0700.) */
static const char DAEMON[] =
    "python3 -c \"import os, signal, time\n"
    "for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):\n"
    "    signal.signal(s, signal.SIG_IGN)\n"
    "if os.fork():\n    os._exit(0)\n"
    "os.setsid()\n"
    "if os.fork():\n    os._exit(0)\n"
    "os.chdir('/')\n"
    "for fd in (0, 1, 2):\n    os.close(fd)\n"
    "n = 0\nend = time.time() + 30\n"
    "while time.time() < end:\n"
    "    n += 1\n"
    "    with open('/workspace/hb.tmp', 'w') as f:\n        f.write(str(n))\n"
    "    os.rename('/workspace/hb.tmp', '/workspace/hb')\n"
    "    time.sleep(0.02)\" &";

static long read_heartbeat(const char *ws)
{
    char p[512], buf[64] = "";
    snprintf(p, sizeof(p), "%s/hb", ws);
    FILE *f = fopen(p, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strtol(buf, NULL, 10);
}

/* Waits up to 5 s for the heartbeat to beat twice; returns the last value read. */
static long wait_for_beats(const char *ws)
{
    long first = -1, now = -1;
    for (int i = 0; i < 250; i++) {
        now = read_heartbeat(ws);
        if (first < 0)
            first = now;
        else if (now > first + 1)
            break;
        usleep(20 * 1000);
    }
    return now;
}

/* True when the heartbeat stays still for 300 ms. */
static int heartbeat_stopped(const char *ws)
{
    long before = read_heartbeat(ws);
    usleep(300 * 1000);
    return read_heartbeat(ws) == before;
}

/* Kills whatever is left in pid namespace `ns` (a failed test must not leave it running). */
static void kill_pidns(unsigned long ns)
{
    char out[65536], cmd[256];
    snprintf(cmd, sizeof(cmd),
             "for p in /proc/[0-9]*; do [ \"$(stat -L -c %%i $p/ns/pid 2>/dev/null)\" = %lu ] "
             "&& kill -9 ${p#/proc/}; done; true",
             ns);
    char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
    sbx_test_run_host(argv, out, sizeof(out));
}

static void cleanup_ws(char *ws)
{
    char cmd[600], out[4096];
    snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", ws);
    char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
    sbx_test_run_host(argv, out, sizeof(out));
}

Test(escape_tenants, a_setsid_daemon_ignoring_sigterm_dies_with_the_session)
{
    char ws[] = "/tmp/sbx-test-t63-XXXXXX";
    sbx_test_mkdtemp_ws(ws);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = ws;
    sbx_session *s = sbx_test_start(&o);
    unsigned long ns = sbx_test_pidns_of(sbx_session_agent_pid(s));
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_test_sh_as(s, NULL, DAEMON, &r, &err), 0, "%s", sbx_error_message(err));
    sbx_exec_result_free(r);
    long beat = wait_for_beats(ws);
    cr_expect_gt(beat, 1, "the daemon never beat (%ld)", beat);
    /* It outlived the command that started it, and the watch can see it beat. */
    cr_expect_geq(sbx_test_count_in_pidns(ns), 2, "agent and daemon");
    cr_expect(!heartbeat_stopped(ws), "the daemon is not beating before the session ends");
    sbx_session_free(s);
    cr_expect_eq(sbx_test_count_in_pidns(ns), 0, "sandbox processes survived the session");
    cr_expect(heartbeat_stopped(ws), "the daemon still beats after sbx_session_free");
    kill_pidns(ns);
    cleanup_ws(ws);
}

Test(escape_tenants, a_setsid_daemon_ignoring_sigterm_dies_with_a_killed_creator)
{
    char ws[] = "/tmp/sbx-test-t63-XXXXXX";
    sbx_test_mkdtemp_ws(ws);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t creator = fork();
    cr_assert(creator >= 0);
    if (creator == 0) {
        alarm(60); /* bounded if the test dies first */
        sbx_session_opts o = SBX_SESSION_OPTS_INIT;
        o.workspace = ws;
        sbx_session *s = NULL;
        sbx_error *e = NULL;
        sbx_exec_result *r = NULL;
        pid_t agent = 0;
        if (sbx_session_new(&o, &s, &e) == 0 && sbx_session_start(s, &e) == 0 &&
            sbx_test_sh_as(s, NULL, DAEMON, &r, &e) == 0)
            agent = sbx_session_agent_pid(s);
        (void)!write(p[1], &agent, sizeof(agent));
        pause(); /* killed by the test: no cleanup of any kind */
        _exit(0);
    }
    close(p[1]);
    pid_t agent = 0;
    cr_expect_eq(read(p[0], &agent, sizeof(agent)), (ssize_t)sizeof(agent));
    close(p[0]);
    unsigned long ns = agent > 0 ? sbx_test_pidns_of(agent) : 0;
    long beat = agent > 0 ? wait_for_beats(ws) : -1;
    int alive = agent > 0 && !heartbeat_stopped(ws);
    kill(creator, SIGKILL);
    waitpid(creator, NULL, 0);
    cr_assert_gt(agent, 0, "the creator could not start the session");
    cr_expect_gt(beat, 1, "the daemon never beat (%ld)", beat);
    cr_expect(alive, "the daemon is not beating before its creator is killed");
    for (int i = 0; i < 500 && sbx_test_count_in_pidns(ns) > 0; i++)
        usleep(10 * 1000);
    cr_expect_eq(sbx_test_count_in_pidns(ns), 0, "sandbox processes outlived their creator");
    cr_expect(heartbeat_stopped(ws), "the daemon still beats after its creator was killed");
    kill_pidns(ns);
    cleanup_ws(ws);
}
