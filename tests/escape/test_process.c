/* Processes and per-user kernel resources: code inside, as the sandbox user and as root
 * inside, cannot signal a host process, dump a core, make privileged administrative calls,
 * change its supplementary groups, outlive its timeout by stopping itself, leave zombies or
 * daemons behind, share SysV IPC objects with the host, or exhaust the inotify instances of
 * other host users. Each test makes the attempt for real and checks the host afterwards.
 * (T-numbers: /work/shared/THREATS.md.) */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "escape_py.h"
#include "harness.h"

TestSuite(escape_process, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 90);

#define ROOT_IF_POSSIBLE (geteuid() == 0 ? "root" : NULL)

#if defined(__x86_64__)
#define X86_64_ONLY() ((void)0)
#else
#define X86_64_ONLY() cr_skip_test("system call numbers are those of x86_64")
#endif

/* Runs `script` with sh -c as `user` (NULL: the sandbox user) with `timeout` seconds. */
static int run_as(sbx_session *s, const char *user, const char *script, double timeout,
                  sbx_exec_result **r, sbx_error **err)
{
    const char *argv[] = {script, NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.user = user;
    o.timeout_s = timeout;
    return sbx_session_exec(s, &o, r, err);
}

/* Runs `script` as `user` and expects exactly `expected` on stdout. */
static void expect_sh(sbx_session *s, const char *user, const char *script, const char *expected)
{
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(run_as(s, user, script, 30, &r, &err), 0, "exec as %s: %s",
                 user ? user : "sandbox", sbx_error_message(err));
    cr_expect_str_eq((char *)r->out, expected, "as %s got:\n%s\nexpected:\n%s\nstderr: %s",
                     user ? user : "sandbox", (char *)r->out, expected, (char *)r->err);
    sbx_exec_result_free(r);
}

/* Runs the python3 program `body` (after ESCAPE_PY_SYSCALLS) as `user` and expects exactly
 * `expected` on its stdout and a clean exit. */
static void expect_py(sbx_session *s, const char *user, const char *body, const char *expected)
{
    X86_64_ONLY();
    sbx_test_expect_py(s, user, ESCAPE_PY_SYSCALLS, body, expected);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads a small host file into buf (NUL-terminated); returns its length or -1. */
static ssize_t read_host_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t k;
    while (len < cap - 1 && (k = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)k;
    buf[len] = '\0';
    close(fd);
    return (ssize_t)len;
}

/* The one-letter state of a host pid ('?' if gone). */
static char host_state(pid_t pid)
{
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    if (read_host_file(p, buf, sizeof(buf)) <= 0)
        return '?';
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : '?';
}

/* ---- T09 ------------------------------------------------------------------------------ */

/* T09: a host process running as the very host uid that root inside maps to (uid_base), so
 * that only the pid namespace stands between them, survives kill(-1, SIGKILL) and a
 * SIGKILL/SIGSTOP aimed at its host pid, from root inside and from the sandbox user. */
Test(escape_process, a_host_process_with_the_sandbox_uid_survives_kill_from_inside)
{
    pid_t sentinel = fork();
    cr_assert(sentinel >= 0);
    if (sentinel == 0) {
        if (geteuid() == 0) {
            uid_t u = SBX_DEFAULT_UID_BASE;
            if (setgroups(0, NULL) < 0 || setresgid(u, u, u) < 0 || setresuid(u, u, u) < 0)
                _exit(126);
        }
        execlp("sleep", "sleep", "60", (char *)NULL);
        _exit(127);
    }
    /* Wait until it is sleep, under its final uid. */
    char comm[64] = "", path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)sentinel);
    for (int i = 0; i < 200 && strcmp(comm, "sleep\n") != 0; i++) {
        usleep(10 * 1000);
        read_host_file(path, comm, sizeof(comm));
    }
    cr_assert_str_eq(comm, "sleep\n", "the sentinel did not start");

    sbx_session *s = sbx_test_start(NULL);
    char script[512];
    snprintf(script, sizeof(script),
             "kill -STOP %d 2>/dev/null && echo stopped-host-pid; "
             "kill -KILL %d 2>/dev/null && echo killed-host-pid; "
             "kill -9 -1 2>/dev/null; echo end",
             (int)sentinel, (int)sentinel);
    expect_sh(s, NULL, script, "end\n");
    if (geteuid() == 0)
        expect_sh(s, "root", script, "end\n");
    /* The session survived its own kill -1 (it only reaches the caller's processes). */
    expect_sh(s, NULL, "echo alive", "alive\n");
    sbx_session_free(s);

    usleep(100 * 1000);
    int st = 0;
    cr_expect_eq(waitpid(sentinel, &st, WNOHANG), 0, "the host sentinel died (status %d)", st);
    char state = host_state(sentinel);
    cr_expect(state == 'S' || state == 'R', "the host sentinel is in state %c", state);
    kill(sentinel, SIGKILL);
    while (waitpid(sentinel, &st, 0) < 0 && errno == EINTR)
        ;
}

/* ---- T27 ------------------------------------------------------------------------------ */

/* T27: the core limit is 0 and stays 0; a real SIGSEGV (a NULL read) and a SIGSEGV sent to
 * oneself dump nothing, in the workspace, /tmp or /dev/shm; root inside cannot rewrite the
 * host's core_pattern (the pipe helper would run as host root). */
Test(escape_process, a_crash_dumps_no_core_and_the_limit_cannot_be_raised)
{
    char before[4096], after[4096];
    cr_assert(read_host_file("/proc/sys/kernel/core_pattern", before, sizeof(before)) > 0);
    sbx_session *s = sbx_test_start(NULL);
    static const char script[] =
        "ulimit -c unlimited 2>/dev/null && echo raised-soft; "
        "ulimit -H -c unlimited 2>/dev/null && echo raised-hard; "
        "echo core=$(ulimit -c)/$(ulimit -H -c); "
        "python3 -c 'import resource as R\n"
        "try:\n    R.setrlimit(R.RLIMIT_CORE, (R.RLIM_INFINITY, R.RLIM_INFINITY)); print(\"raised\")\n"
        "except ValueError as e:\n    print(\"setrlimit:\", e)' ; "
        "python3 -c 'import resource as R\n"
        "try:\n    R.setrlimit(R.RLIMIT_CORE, (4096, 4096)); print(\"raised\")\n"
        "except ValueError as e:\n    print(\"setrlimit-small:\", e)' ; "
        "echo '|/bin/sh -c \"touch /tmp/pwned\"' > /proc/sys/kernel/core_pattern 2>/dev/null "
        "&& echo wrote-core-pattern; "
        "for d in /workspace /tmp /dev/shm; do (cd $d && python3 -c 'import ctypes; "
        "ctypes.string_at(0)' 2>/dev/null; echo $d=$?; cd $d && sh -c 'kill -SEGV $$'; echo $?); "
        "done; "
        "find /workspace /tmp /dev/shm -name '*core*' 2>/dev/null; echo end";
    static const char expected[] = "core=0/0\n"
                                   "setrlimit: not allowed to raise maximum limit\n"
                                   "setrlimit-small: not allowed to raise maximum limit\n"
                                   "/workspace=139\n139\n/tmp=139\n139\n/dev/shm=139\n139\n"
                                   "end\n";
    expect_sh(s, NULL, script, expected);
    if (geteuid() == 0)
        expect_sh(s, "root", script, expected);
    /* The host side of the workspace holds no core either. */
    const char *ws = sbx_session_workspace(s);
    if (ws) {
        char *argv[] = {"/usr/bin/find", (char *)ws, "-name", "*core*", NULL};
        char out[4096];
        cr_expect_eq(sbx_test_run_host(argv, out, sizeof(out)), 0, "%s", out);
        cr_expect_str_eq(out, "", "a core file reached the host workspace: %s", out);
    }
    sbx_session_free(s);
    cr_assert(read_host_file("/proc/sys/kernel/core_pattern", after, sizeof(after)) > 0);
    cr_expect_str_eq(after, before, "the host core_pattern changed");
    cr_expect_neq(access("/tmp/pwned", F_OK), 0, "a core_pattern helper ran on the host");
}

/* ---- T37 ------------------------------------------------------------------------------ */

/* T37: port I/O, tty hangup and quota administration are refused to root inside. iopl and
 * ioperm are refused by the capability check (EPERM), or do not exist at all on kernels
 * built without CONFIG_X86_IOPL_IOPERM (ENOSYS): both count as refused. Quota changes need
 * CAP_SYS_ADMIN in the host's namespace, but no quota-capable filesystem is writable inside,
 * so the kernel refuses earlier (ENOSYS: no quota support, EROFS, ENOTBLK): any failure
 * counts. (Q_SYNC itself is unprivileged in the kernel and harmless, so it is not asserted.)
 * settimeofday and the other clock setters: escape_seccomp::the_host_clock_cannot_be_set_or_adjusted. */
Test(escape_process, privileged_administrative_calls_are_refused_to_root_inside)
{
    sbx_session *s = sbx_test_start(NULL);
    static const char body[] =
        "def R(label, nr, *a):\n"
        "    r, e = sc(nr, *a)\n"
        "    print(label + '=' + ('refused' if r < 0 and e in (errno.EPERM, errno.ENOSYS) "
        "else en(r, e)), flush=True)\n"
        "def Q(label, nr, *a):\n"
        "    r, e = sc(nr, *a)\n"
        "    print(label + '=' + ('failed' if r < 0 else 'ok'), flush=True)\n"
        "def QCMD(c, t=0): return (c << 8) | t\n"
        "R('iopl', 172, 3)\n"
        "R('ioperm', 173, 0x80, 1, 1)\n"
        "T('vhangup', 153)\n"
        "for p in ('/', '/workspace', '/tmp'):\n"
        "    fd = os.open(p, os.O_RDONLY)\n"
        "    Q('quotaon' + p, 443, fd, QCMD(0x800002), 2, None)\n"  /* quotactl_fd */
        "    Q('quotaoff' + p, 443, fd, QCMD(0x800003), 0, None)\n"
        "    Q('setquota' + p, 443, fd, QCMD(0x800008), 0, C.create_string_buffer(72))\n"
        "    os.close(fd)\n"
        "Q('quotactl-path', 179, QCMD(0x800002), C.c_char_p(b'/'), 2, C.c_char_p(b'/x'))\n";
    static const char expected[] = "iopl=refused\nioperm=refused\nvhangup=EPERM\n"
                                   "quotaon/=failed\nquotaoff/=failed\nsetquota/=failed\n"
                                   "quotaon/workspace=failed\nquotaoff/workspace=failed\n"
                                   "setquota/workspace=failed\n"
                                   "quotaon/tmp=failed\nquotaoff/tmp=failed\nsetquota/tmp=failed\n"
                                   "quotactl-path=failed\n";
    expect_py(s, ROOT_IF_POSSIBLE, body, expected);
    sbx_session_free(s);
}

/* ---- T43 ------------------------------------------------------------------------------ */

/* T43: neither the sandbox user nor root inside can change its supplementary groups: drop
 * them all, add root's, or even set its own. /proc/self/setgroups reads "allow": the gid map
 * is a range written by a privileged host process, so the kernel has no reason to deny
 * setgroups in the namespace (CVE-2014-8989 concerns unprivileged single-id maps); the
 * refusal comes from the commands having no CAP_SETGID (all capabilities dropped,
 * no_new_privs). The groups are unchanged afterwards. */
Test(escape_process, setgroups_is_refused_to_the_sandbox_user_and_root_inside)
{
    sbx_session *s = sbx_test_start(NULL);
    static const char body[] =
        "sg = open('/proc/self/setgroups').read().strip()\n"
        "print('setgroups-file', sg in ('allow', 'deny'))\n"
        "g0 = os.getgroups()\n"
        "T('setgroups-empty', 116, 0, None)\n"
        "T('setgroups-root', 116, 2, (C.c_uint * 2)(0, os.getgid()))\n"
        "T('setgroups-own', 116, 1, (C.c_uint * 1)(os.getgid()))\n"
        "print('unchanged', os.getgroups() == g0)\n";
    static const char expected[] = "setgroups-file True\nsetgroups-empty=EPERM\n"
                                   "setgroups-root=EPERM\nsetgroups-own=EPERM\n"
                                   "unchanged True\n";
    expect_py(s, NULL, body, expected);
    if (geteuid() == 0)
        expect_py(s, "root", body, expected);
    sbx_session_free(s);
}

/* ---- T57 ------------------------------------------------------------------------------ */

/* T57: a command that stops itself (or leaves a stopped child behind) still ends at its
 * 1 s deadline with SBX_EEXEC_TIMEOUT, and nothing of it is left: no stopped process, no
 * sleep, and the session runs the next command. */
Test(escape_process, a_stopped_command_still_ends_at_its_timeout)
{
    sbx_session *s = sbx_test_start(NULL);
    static const char *const scripts[] = {
        "kill -STOP $$; echo resumed",
        "sh -c 'kill -STOP $$' & sleep 100; echo resumed",
        "trap '' TERM HUP INT; sleep 100 & kill -STOP $!; kill -STOP $$; echo resumed",
    };
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        for (int as_root = 0; as_root <= (geteuid() == 0); as_root++) {
            sbx_exec_result *r = NULL;
            sbx_error *err = NULL;
            double t0 = now_s();
            int rc = run_as(s, as_root ? "root" : NULL, scripts[i], 1, &r, &err);
            double took = now_s() - t0;
            cr_expect_eq(rc, SBX_EEXEC_TIMEOUT, "'%s' as %s: %d %s", scripts[i],
                         as_root ? "root" : "sandbox", rc, sbx_error_message(err));
            cr_expect_null(r, "a result came back from a timed-out command");
            cr_expect(took < 5.0, "'%s' took %.1f s to time out", scripts[i], took);
            sbx_exec_result_free(r);
            sbx_error_free(err);
            expect_sh(s, NULL,
                      "ps -eo stat=,comm= | awk '$1 ~ /^T/ || $2 == \"sleep\"' | wc -l", "0\n");
        }
    }
    sbx_session_free(s);
}

/* ---- T64 ------------------------------------------------------------------------------ */

/* T64: 200 children that exit unwaited and a setsid double-forked daemon that ignores
 * SIGTERM and SIGHUP: once the command has returned, the next command finds no zombie (the
 * per-exec subreaper reaped them). The daemon itself may still run: background processes
 * live until shutdown by design (docs/architecture.md); once the session is freed nothing
 * of its pid namespace is left on the host, the daemon included. */
Test(escape_process, unwaited_children_and_daemons_do_not_outlive_the_command)
{
    sbx_session *s = sbx_test_start(NULL);
    static const char payload[] =
        "python3 - <<'EOF'\n"
        "import os, signal, time\n"
        "for i in range(200):\n"
        "    if os.fork() == 0:\n"
        "        os._exit(0)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "        signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "        os.closerange(0, 3)\n"
        "        os.execlp('sleep', 'sbx-t64-daemon', '30')\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n"
        "def zombies():\n"
        "    n = 0\n"
        "    for p in os.listdir('/proc'):\n"
        "        try:\n"
        "            if p.isdigit() and open('/proc/%s/stat' % p).read().rsplit(')', 1)[1].split()[0] == 'Z':\n"
        "                n += 1\n"
        "        except OSError:\n"
        "            pass\n"
        "    return n\n"
        "print('zombies-while-running', zombies() >= 200)\n"
        "EOF\n";
    expect_sh(s, NULL, payload, "zombies-while-running True\n");
    static const char count[] =
        "z=0; for f in /proc/[0-9]*/stat; do s=$(cut -d')' -f2 $f 2>/dev/null | cut -d' ' -f2); "
        "[ \"$s\" = Z ] && z=$((z+1)); done; echo zombies=$z; "
        "[ $(ps -eo args= | grep -c '^sbx-t64-daemon') -le 1 ] && echo daemons-bounded; "
        "readlink /proc/self/ns/pid";
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    usleep(200 * 1000);
    cr_assert_eq(run_as(s, NULL, count, 30, &r, &err), 0, "%s", sbx_error_message(err));
    unsigned long ino = 0;
    char *nl = strstr((char *)r->out, "pid:[");
    cr_assert_not_null(nl, "%s", (char *)r->out);
    ino = strtoul(nl + 5, NULL, 10);
    *nl = '\0';
    cr_expect_str_eq((char *)r->out, "zombies=0\ndaemons-bounded\n");
    sbx_exec_result_free(r);
    cr_assert_gt(sbx_test_count_in_pidns(ino), 0, "the sandbox's pid namespace not found");
    sbx_session_free(s);
    usleep(100 * 1000);
    cr_expect_eq(sbx_test_count_in_pidns(ino), 0, "processes of the sandbox outlived it");
}

/* ---- T65 ------------------------------------------------------------------------------ */

#define T65_KEY_HOST 0x5b786500
#define T65_KEY_SHM  0x5b786501
#define T65_KEY_SEM  0x5b786502
#define T65_KEY_MSG  0x5b786503

/* Whether /proc/sysvipc/<kind> on the host lists an object with `key`. */
static int host_has_ipc_key(const char *kind, int key)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/sysvipc/%s", kind);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s", path);
    char line[512];
    int found = 0;
    if (!fgets(line, sizeof(line), f)) /* the header */
        line[0] = '\0';
    while (fgets(line, sizeof(line), f))
        if (strtol(line, NULL, 10) == key)
            found = 1;
    fclose(f);
    return found;
}

/* T65: SysV shared memory, semaphores and message queues made inside (as root inside and
 * the sandbox user) live in the sandbox's own IPC namespace: a second command still sees
 * them, the host never does, and a host segment is invisible inside. */
Test(escape_process, sysv_ipc_objects_are_not_shared_with_the_host)
{
    int host_shm = shmget(T65_KEY_HOST, 4096, IPC_CREAT | IPC_EXCL | 0666);
    cr_assert(host_shm >= 0, "host shmget: %s", strerror(errno));
    sbx_session *s = sbx_test_start(NULL);
    char script[2048];
    snprintf(script, sizeof(script),
             "python3 - <<'EOF'\n"
             "import ctypes as C, os\n"
             "L = C.CDLL(None, use_errno=True)\n"
             "def seen(kind, key):\n"
             "    return any(int(l.split()[0]) == key for l in "
             "open('/proc/sysvipc/' + kind).readlines()[1:])\n"
             "print('host-seen', seen('shm', %d), L.shmget(%d, 0, 0) >= 0)\n"
             "off = 0 if os.getuid() == 0 else 16\n"
             "print('shm', L.shmget(%d + off, 4096, 0o1666) >= 0)\n"
             "print('sem', L.semget(%d + off, 1, 0o1666) >= 0)\n"
             "print('msg', L.msgget(%d + off, 0o1666) >= 0)\n"
             "EOF\n",
             T65_KEY_HOST, T65_KEY_HOST, T65_KEY_SHM, T65_KEY_SEM, T65_KEY_MSG);
    static const char made[] = "host-seen False False\nshm True\nsem True\nmsg True\n";
    expect_sh(s, NULL, script, made);
    if (geteuid() == 0)
        expect_sh(s, "root", script, made);
    /* They outlive the command, inside the sandbox only. */
    char check[512];
    snprintf(check, sizeof(check),
             "for k in shm sem msg; do awk 'NR > 1 { print $1 }' /proc/sysvipc/$k; done | "
             "grep -c -E '^(%d|%d|%d|%d|%d|%d)$'",
             T65_KEY_SHM, T65_KEY_SEM, T65_KEY_MSG, T65_KEY_SHM + 16, T65_KEY_SEM + 16,
             T65_KEY_MSG + 16);
    expect_sh(s, NULL, check, geteuid() == 0 ? "6\n" : "3\n");
    for (int off = 0; off <= 16; off += 16) {
        cr_expect(!host_has_ipc_key("shm", T65_KEY_SHM + off), "shm reached the host");
        cr_expect(!host_has_ipc_key("sem", T65_KEY_SEM + off), "sem reached the host");
        cr_expect(!host_has_ipc_key("msg", T65_KEY_MSG + off), "msg reached the host");
    }
    sbx_session_free(s);
    for (int off = 0; off <= 16; off += 16) {
        cr_expect(!host_has_ipc_key("shm", T65_KEY_SHM + off), "shm outlived the sandbox");
        cr_expect(!host_has_ipc_key("sem", T65_KEY_SEM + off), "sem outlived the sandbox");
        cr_expect(!host_has_ipc_key("msg", T65_KEY_MSG + off), "msg outlived the sandbox");
    }
    cr_expect(host_has_ipc_key("shm", T65_KEY_HOST), "the host segment vanished");
    cr_expect_eq(shmctl(host_shm, IPC_RMID, NULL), 0, "%s", strerror(errno));
}

/* ---- T60 ------------------------------------------------------------------------------ */

struct held_exec {
    sbx_session *s;
    int in_r, out_w;
    int rc;
    sbx_exec_result *r;
    sbx_error *err;
};

static void *held_exec_run(void *arg)
{
    struct held_exec *h = arg;
    /* Makes inotify instances until the kernel refuses, reports, and holds them until its
     * stdin closes. Bounded by 100000 attempts and the 60 s timeout. */
    static const char script[] =
        "python3 -c 'import ctypes as C, errno, os, sys\n"
        "L = C.CDLL(None, use_errno=True)\n"
        "n = 0\n"
        "while n < 100000:\n"
        "    if L.inotify_init1(0) < 0:\n"
        "        break\n"
        "    n += 1\n"
        "print(\"held\", n, errno.errorcode.get(C.get_errno()), flush=True)\n"
        "sys.stdin.read()'";
    const char *argv[] = {script, NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.timeout_s = 60;
    o.flags = SBX_EXEC_STDIN_FD | SBX_EXEC_STREAM_STDOUT;
    o.stdin_fd = h->in_r;
    o.stdout_fd = h->out_w;
    h->rc = sbx_session_exec(h->s, &o, &h->r, &h->err);
    close(h->out_w);
    return NULL;
}

/* Whether a host process running as `uid` (-1: this process) can make an inotify instance. */
static int host_can_inotify(uid_t uid)
{
    if (uid == (uid_t)-1) {
        int fd = inotify_init1(IN_CLOEXEC);
        if (fd >= 0)
            close(fd);
        return fd >= 0;
    }
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
            _exit(2);
        _exit(inotify_init1(IN_CLOEXEC) >= 0 ? 0 : 1);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 2, "could not become uid %u", (unsigned)uid);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Runs the inotify exhaustion inside, checks the host while it holds its instances, and
 * returns what host_can_inotify(during_uid) said. */
static int inotify_exhaustion(uid_t during_uid)
{
    char max[64];
    cr_assert(read_host_file("/proc/sys/fs/inotify/max_user_instances", max, sizeof(max)) > 0);
    sbx_session *s = sbx_test_start(NULL);
    int in[2], out[2];
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    struct held_exec h = {.s = s, .in_r = in[0], .out_w = out[1]};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, held_exec_run, &h), 0);
    char line[256];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof(line) - 1 && (k = read(out[0], line + len, 1)) > 0 && line[len] != '\n')
        len++;
    line[len] = '\0';
    int held = 0;
    char why[32] = "";
    int ok = sscanf(line, "held %d %31s", &held, why) == 2;
    int during = ok ? host_can_inotify(during_uid) : -1;
    close(in[1]);
    pthread_join(t, NULL);
    close(in[0]);
    close(out[0]);
    cr_assert_eq(h.rc, 0, "exec: %s", sbx_error_message(h.err));
    sbx_exec_result_free(h.r);
    sbx_session_free(s);
    cr_assert(ok, "unexpected output: '%s'", line);
    cr_expect_str_eq(why, "EMFILE", "the attack stopped on %s", why);
    cr_expect(held > 0 && held <= atoi(max), "held %d instances, the per-user limit is %d", held,
              atoi(max));
    /* Afterwards, everything is back: this process (host root when run as root) can make an
     * instance. */
    cr_expect(host_can_inotify((uid_t)-1), "the host could not make an inotify instance after");
    return during;
}

/* T60: inotify instances inside stop at the per-user limit with EMFILE, and while the
 * sandbox holds all of them an unrelated host user (uid 4242) still gets one. */
Test(escape_process, inotify_exhaustion_is_bounded_and_spares_other_host_users)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "needs root to act as another host user");
    cr_expect(inotify_exhaustion(4242), "host uid 4242 could not make an inotify instance");
}

/* T60: the kernel charges inotify instances made in a user namespace to the namespace's
 * owner in the parent namespace too (ucounts). Were the sandbox's user namespace owned by
 * host root (the uid that creates it), a sandbox holding max_user_instances (128) instances
 * would leave host root with none: inotify_init1 would fail with EMFILE for every root
 * daemon (systemd, udev, ...) until the command ended. sbx makes the namespace owned by a
 * host uid of the session's own (backend/ns_clone.c, userns_owner). */
Test(escape_process, inotify_exhaustion_spares_host_root)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "the session owner is host root only as root");
    cr_expect(inotify_exhaustion((uid_t)-1),
              "host root could not make an inotify instance while the sandbox held its");
}
