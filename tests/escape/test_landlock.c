/* Landlock, the second wall: a command writes only beneath the workspace, /tmp, /dev/shm,
 * /dev/pts, /dev/{null,zero,tty} and the session's read-write binds, whatever its ids allow
 * elsewhere. The mount table already makes /, /dev and the system dirs read-only, so each
 * test also writes where only Landlock stands in the way: files of the command's own process
 * under /proc and the world-writable device nodes bound into /dev. Without Landlock those
 * writes succeed, so every test here fails on an agent that does not apply it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"

TestSuite(escape_landlock, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 60);

/* The kernel's Landlock ABI as the agent will find it (0: none). */
static int landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : (int)abi;
}

#define NEED_LANDLOCK()                                                                        \
    SBX_TEST_SKIP_UNLESS(landlock_abi() > 0,                                                   \
                         "this kernel has no Landlock (not built in, or not in lsm=): sbx "    \
                         "runs commands without it there")

/* W(label, path) opens path for writing (creating it if missing) and writes "1\n"; D(label,
 * fn) runs fn. Each prints "label=ok" or "label=<errno name>". */
static const char PY_PRELUDE[] =
    "import errno, os\n"
    "def en(e):\n"
    "    return errno.errorcode.get(e.errno, str(e.errno))\n"
    "def D(label, fn):\n"
    "    try:\n"
    "        fn()\n"
    "        r = 'ok'\n"
    "    except OSError as e:\n"
    "        r = en(e)\n"
    "    print(label + '=' + r, flush=True)\n"
    "def write(p):\n"
    "    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_NOCTTY, 0o644)\n"
    "    try:\n"
    "        os.write(fd, b'1\\n')\n"
    "    finally:\n"
    "        os.close(fd)\n"
    "def W(label, p):\n"
    "    D(label, lambda: write(p))\n";

/* Runs the python3 program `body` in `s` as `user` and expects exactly `expected` on its
 * stdout and a clean exit. */
static void expect_py(sbx_session *s, const char *user, const char *body, const char *expected)
{
    char *script = NULL;
    cr_assert(asprintf(&script, "python3 - <<'EOF'\n%s%s\nEOF\n", PY_PRELUDE, body) > 0);
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    int rc = sbx_test_sh_as(s, user, script, &r, &err);
    free(script);
    cr_assert_eq(rc, 0, "exec: %s", sbx_error_message(err));
    cr_expect_eq(r->exit_code, 0, "python3 exited %d: %s", r->exit_code, (char *)r->err);
    cr_expect_str_eq((char *)r->out, expected, "got:\n%s\nexpected:\n%s\nstderr: %s",
                     (char *)r->out, expected, (char *)r->err);
    sbx_exec_result_free(r);
}

/* Writes the command's ids would allow, on read-write mounts, that Landlock refuses: its own
 * process's name, and the world-writable random and full devices. */
#define DENIED_BODY                                                                            \
    "W('comm', '/proc/self/comm')\n"                                                           \
    "W('urandom', '/dev/urandom')\n"                                                           \
    "W('full', '/dev/full')\n"
#define DENIED_OUT "comm=EACCES\nurandom=EACCES\nfull=EACCES\n"

Test(escape_landlock, commands_write_only_beneath_the_writable_places)
{
    NEED_LANDLOCK();
    sbx_session *s = sbx_test_start(NULL);
    /* Everyday work keeps working: files, directories, links, FIFOs, truncation and renames
     * across directories (ABI 1 cannot allow those: its kernels refuse them with EXDEV). */
    char expected[512];
    snprintf(expected, sizeof(expected),
             "workspace=ok\ntmp=ok\nshm=ok\nnull=ok\nzero=ok\nmkdir=ok\nrename=%s\nlink=ok\n"
             "symlink=ok\nfifo=ok\ntruncate=ok\nrmdir=ok\nunlink=ok\n" DENIED_OUT,
             landlock_abi() >= 2 ? "ok" : "EXDEV");
    expect_py(s, NULL,
              "W('workspace', 'f')\n" /* the command starts in the workspace */
              "W('tmp', '/tmp/f')\n"
              "W('shm', '/dev/shm/f')\n"
              "W('null', '/dev/null')\n"
              "W('zero', '/dev/zero')\n"
              "D('mkdir', lambda: (os.mkdir('/tmp/a'), os.mkdir('/tmp/b')))\n"
              "D('rename', lambda: os.rename('/tmp/f', '/tmp/a/f'))\n"
              "D('link', lambda: os.link('f', 'g'))\n"
              "D('symlink', lambda: os.symlink('/etc/passwd', '/dev/shm/l'))\n"
              "D('fifo', lambda: os.mkfifo('/tmp/b/p'))\n"
              "D('truncate', lambda: os.truncate('g', 0))\n"
              "D('rmdir', lambda: (os.unlink('/tmp/b/p'), os.rmdir('/tmp/b')))\n"
              "D('unlink', lambda: (os.unlink('f'), os.unlink('g')))\n" DENIED_BODY,
              expected);
    sbx_session_free(s);
}

Test(escape_landlock, root_inside_cannot_write_what_its_ids_allow)
{
    NEED_LANDLOCK();
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "root inside needs a mapped id range (root callers)");
    sbx_session *s = sbx_test_start(NULL);
    /* Uid 0 inside owns its /proc entries: its ids let it raise its own OOM score. */
    expect_py(s, "root",
              "W('tmp', '/tmp/r')\n"
              "W('oom_score_adj', '/proc/self/oom_score_adj')\n" DENIED_BODY,
              "tmp=ok\noom_score_adj=EACCES\n" DENIED_OUT);
    sbx_session_free(s);
}

static char *slurp(const char *path)
{
    static char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
    if (fd >= 0)
        close(fd);
    buf[n < 0 ? 0 : n] = '\0';
    return buf;
}

Test(escape_landlock, read_write_binds_stay_writable)
{
    NEED_LANDLOCK();
    char ws[] = "/tmp/sbx-test-ws-XXXXXX", dir[] = "/tmp/sbx-test-rw-XXXXXX";
    char file[] = "/tmp/sbx-test-rwfile-XXXXXX";
    sbx_test_mkdtemp_ws(ws);
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 0777), 0);
    int fd = mkstemp(file);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(chmod(file, 0666), 0);
    /* A directory, one whose mount point mountinfo escapes, and a single file. */
    sbx_bind b[] = {{.src = dir, .dst = "/data"},
                    {.src = dir, .dst = "/with space"},
                    {.src = file, .dst = "/opt/rw.txt"}};
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = ws;
    o.binds = b;
    o.n_binds = 3;
    sbx_session *s = sbx_test_start(&o);
    expect_py(s, NULL,
              "W('data', '/data/f')\n"
              "W('space', '/with space/g')\n"
              "W('file', '/opt/rw.txt')\n" DENIED_BODY,
              "data=ok\nspace=ok\nfile=ok\n" DENIED_OUT);
    sbx_session_free(s);
    char p[128];
    snprintf(p, sizeof(p), "%s/f", dir);
    cr_expect_str_eq(slurp(p), "1\n");
    cr_expect_eq(unlink(p), 0);
    snprintf(p, sizeof(p), "%s/g", dir);
    cr_expect_str_eq(slurp(p), "1\n");
    cr_expect_eq(unlink(p), 0);
    cr_expect_str_eq(slurp(file), "1\n");
    cr_expect_eq(unlink(file), 0);
    cr_expect_eq(rmdir(dir), 0);
    cr_expect_eq(rmdir(ws), 0);
}

/* The session says which Landlock ABI its commands got: the kernel's, or 0 without one (run
 * anyway), and -1 once it is down. */
Test(escape_landlock, the_session_reports_the_abi_its_commands_get)
{
    sbx_session *s = sbx_test_start(NULL);
    int abi = landlock_abi();
    cr_expect_eq(sbx_session_landlock_abi(s), abi, "host kernel ABI %d", abi);
    cr_assert_eq(sbx_session_shutdown(s, NULL), 0);
    cr_expect_eq(sbx_session_landlock_abi(s), -1);
    sbx_session_free(s);
}
