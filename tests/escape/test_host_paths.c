/* Host paths and host state that sandboxed code must not turn to its advantage: setuid-root
 * binaries, device nodes, the cgroup filesystem, the host's environment, /proc magic links
 * handed to the file API, and the host's daemon sockets. Each test makes the attempt for real
 * from inside, as the sandbox user and (when the id map allows it) as root inside, checks
 * that it failed, and checks the host afterwards. (T-numbers: /work/shared/THREATS.md.) */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "escape_py.h"
#include "harness.h"

TestSuite(escape_host_paths, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 90);

#define ROOT_IF_POSSIBLE (geteuid() == 0 ? "root" : NULL)

/* The python3 program `body` after ESCAPE_PY_ATTEMPT, as `user`: exactly `expected` on its
 * stdout and a clean exit. Never fatal, so that the caller always frees its session. */
static void expect_py(sbx_session *s, const char *user, const char *body, const char *expected)
{
    sbx_test_expect_py(s, user, ESCAPE_PY_ATTEMPT, body, expected);
}

/* The same as the sandbox user and, when the id map allows it, as root inside. */
static void expect_py_both(sbx_session *s, const char *body, const char *expected)
{
    expect_py(s, NULL, body, expected);
    if (geteuid() == 0)
        expect_py(s, "root", body, expected);
}

/* Copies host file `src` to `dst` with mode `mode`; 0 on success. */
static int copy_file(const char *src, const char *dst, mode_t mode)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t k;
    int rc = 0;
    while ((k = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, (size_t)k) != k) {
            rc = -1;
            break;
        }
    }
    if (k < 0)
        rc = -1;
    close(in);
    if (close(out) < 0)
        rc = -1;
    return rc;
}

/* Starts a session on caller workspace `ws`, or NULL (with a failed expectation). */
static sbx_session *start_on(const char *ws)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = ws;
    return sbx_test_start(&o);
}

/* ---- T19 ------------------------------------------------------------------------------ */

/* T19: a setuid-root binary does not raise privileges. The host makes a copy of id in a
 * caller workspace owned by host root with mode 4755; inside, it reports the same euid as the
 * plain id, because every writable mount is nosuid and commands run with no_new_privs. The
 * host's own setuid binaries (su, passwd) give nobody root either. */
Test(escape_host_paths, setuid_root_binaries_do_not_raise_privileges)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "needs root to make a setuid-root file");
    char ws[] = "/tmp/sbx-test-ws-XXXXXX", bin[256];
    sbx_test_mkdtemp_ws(ws);
    snprintf(bin, sizeof(bin), "%s/suid-id", ws);
    cr_assert_eq(copy_file("/usr/bin/id", bin, 0755), 0, "copy id: %s", strerror(errno));
    cr_assert_eq(chown(bin, 0, 0), 0);
    cr_assert_eq(chmod(bin, 04755), 0);
    struct stat st;
    cr_assert_eq(stat(bin, &st), 0);
    cr_assert(st.st_uid == 0 && (st.st_mode & 07777) == 04755, "mode %o", st.st_mode);

    sbx_session *s = start_on(ws);
    expect_py(s, NULL,
              "def run(*a):\n"
              "    p = subprocess.run(a, capture_output=True, text=True, stdin=subprocess.DEVNULL,\n"
              "                       timeout=20)\n"
              "    return p.returncode, p.stdout.strip()\n"
              "plain = run('id', '-u')\n"
              "suid = run('/workspace/suid-id', '-u')\n"
              "print('plain=%s' % (plain == (0, str(os.getuid()))))\n"
              "print('suid_same=%s' % (suid == plain))\n"
              "st = os.stat('/workspace/suid-id')\n"
              "print('suid_bit_visible=%s' % bool(st.st_mode & 0o4000))\n"
              "opts = {}\n"
              "for l in open('/proc/self/mountinfo'):\n"
              "    f = l.split()\n"
              "    opts[f[4]] = f[5].split(',')\n"
              "for m in ('/workspace', '/tmp', '/dev/shm'):\n"
              "    print('%s nosuid=%s' % (m, 'nosuid' in opts.get(m, [])))\n"
              "nnp = [l.split()[1] for l in open('/proc/self/status') if l.startswith('NoNewPrivs')]\n"
              "print('no_new_privs=%s' % nnp)\n"
              "for p in ('/usr/bin/su', '/bin/su'):\n"
              "    if os.path.exists(p):\n"
              "        rc, out = run(p, '-c', 'id -u', 'root')\n"
              "        print('su=%s' % ('refused' if rc != 0 and out != '0' else 'ROOT %d %s' %\n"
              "                                                                 (rc, out)))\n"
              "        break\n"
              "else:\n"
              "    print('su=refused')\n"
              "if os.path.exists('/usr/bin/passwd'):\n"
              "    rc, out = run('/usr/bin/passwd', '-S', 'root')\n"
              "    print('passwd=%s' % ('refused' if rc != 0 else 'RAN %s' % out))\n"
              "else:\n"
              "    print('passwd=refused')\n",
              "plain=True\nsuid_same=True\nsuid_bit_visible=True\n/workspace nosuid=True\n"
              "/tmp nosuid=True\n/dev/shm nosuid=True\nno_new_privs=['1']\nsu=refused\n"
              "passwd=refused\n");
    sbx_session_free(s);

    cr_expect_eq(stat(bin, &st), 0);
    cr_expect(st.st_uid == 0 && (st.st_mode & 07777) == 04755, "the host file changed: %o",
              st.st_mode);
    cr_expect_eq(unlink(bin), 0);
    cr_expect_eq(rmdir(ws), 0, "%s: %s", ws, strerror(errno));
}

/* ---- T20 ------------------------------------------------------------------------------ */

/* T20: no device node can be made inside, not even by root inside, in /tmp, /dev/shm or the
 * workspace (a FIFO, the control, can); /dev holds only the minimal nodes sbx binds, on a
 * read-only mount; and a device node the host put in a caller workspace cannot be opened
 * inside (the workspace mount is nodev). */
Test(escape_host_paths, device_nodes_cannot_be_made_or_used)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "needs root to make a device node on the host");
    char ws[] = "/tmp/sbx-test-ws-XXXXXX", node[256];
    sbx_test_mkdtemp_ws(ws);
    snprintf(node, sizeof(node), "%s/hostnull", ws);
    cr_assert_eq(mknod(node, S_IFCHR | 0666, makedev(1, 3)), 0, "mknod: %s", strerror(errno));
    cr_assert_eq(chmod(node, 0666), 0);

    /* A session of its own workspace: making nodes, as both users. */
    sbx_session *s = sbx_test_start(NULL);
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    int rc = sbx_test_sh_as(s, NULL, "mkdir -m 777 /workspace/open && echo ok", &r, &err);
    cr_expect_eq(rc, 0, "%s", sbx_error_message(err));
    sbx_error_free(err);
    if (rc == 0) {
        cr_expect_str_eq((char *)r->out, "ok\n", "%s", (char *)r->err);
        sbx_exec_result_free(r);
    }
    static const char body[] =
        "MK = (errno.EPERM, errno.EACCES)\n"
        "for d in ('/tmp', '/dev/shm', '/workspace/open'):\n"
        "    for label, mode, dev in (('fifo', 0o10666, 0), ('chr', 0o20666, os.makedev(1, 3)),\n"
        "                             ('blk', 0o60600, os.makedev(8, 0))):\n"
        "        p = '%s/sbx-node-%s-%d' % (d, label, os.getuid())\n"
        "        if label == 'fifo':\n"
        "            os.mknod(p, mode, dev)\n"
        "            print('fifo %s=ok' % d)\n"
        "        else:\n"
        "            attempt('mknod %s %s' % (d, label), lambda: os.mknod(p, mode, dev), MK)\n"
        "        if os.path.lexists(p):\n"
        "            os.unlink(p)\n"
        "ok = {'fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin',\n"
        "      'stdout', 'tty', 'urandom', 'zero', 'console', 'mqueue'}\n"
        "print('dev_extra=%s' % sorted(set(os.listdir('/dev')) - ok))\n"
        "for p in ('/dev/mem', '/dev/kmsg', '/dev/sda', '/dev/vda', '/dev/nvme0n1', '/dev/kvm',\n"
        "          '/dev/port'):\n"
        "    attempt(p, lambda: os.close(os.open(p, os.O_RDONLY)), DENIED)\n"
        "opts = {}\n"
        "for l in open('/proc/self/mountinfo'):\n"
        "    f = l.split()\n"
        "    opts[f[4]] = f[5].split(',')\n"
        "for m in ('/workspace', '/tmp', '/dev/shm'):\n"
        "    print('%s nodev=%s' % (m, 'nodev' in opts.get(m, [])))\n"
        "print('dev_ro=%s' % ('ro' in opts.get('/dev', [])))\n";
    static const char expected[] =
        "fifo /tmp=ok\nmknod /tmp chr=refused\nmknod /tmp blk=refused\n"
        "fifo /dev/shm=ok\nmknod /dev/shm chr=refused\nmknod /dev/shm blk=refused\n"
        "fifo /workspace/open=ok\nmknod /workspace/open chr=refused\n"
        "mknod /workspace/open blk=refused\ndev_extra=[]\n/dev/mem=refused\n/dev/kmsg=refused\n"
        "/dev/sda=refused\n/dev/vda=refused\n/dev/nvme0n1=refused\n/dev/kvm=refused\n"
        "/dev/port=refused\n/workspace nodev=True\n/tmp nodev=True\n/dev/shm nodev=True\n"
        "dev_ro=True\n";
    expect_py_both(s, body, expected);
    sbx_session_free(s);

    /* The caller workspace with the host's node in it (the sandbox user's: root inside has
     * no access to a caller workspace). */
    s = start_on(ws);
    expect_py(s, NULL,
              "opts = {}\n"
              "for l in open('/proc/self/mountinfo'):\n"
              "    f = l.split()\n"
              "    opts[f[4]] = f[5].split(',')\n"
              "print('nodev=%s' % ('nodev' in opts.get('/workspace', [])))\n"
              "print('hostnull_is_chr=%s' % (os.stat('/workspace/hostnull').st_mode >> 12 == 2))\n"
              "for label, fl in (('read', os.O_RDONLY), ('write', os.O_WRONLY)):\n"
              "    attempt('hostnull ' + label,\n"
              "            lambda: os.close(os.open('/workspace/hostnull', fl)),\n"
              "            (errno.EACCES, errno.EPERM))\n",
              "nodev=True\nhostnull_is_chr=True\nhostnull read=refused\nhostnull write=refused\n");
    sbx_session_free(s);

    struct stat st;
    cr_expect_eq(stat(node, &st), 0);
    cr_expect(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3), "the host's node changed");
    cr_expect_eq(unlink(node), 0);
    cr_expect_eq(rmdir(ws), 0, "%s: %s", ws, strerror(errno));
}

/* ---- T24 ------------------------------------------------------------------------------ */

/* T24: the cgroup filesystem cannot be mounted inside, /sys/fs/cgroup is absent or
 * read-only, no cgroup file visible inside can be written, and the session's memory limit
 * still holds after the attempts (an allocation past it is OOM-killed). */
Test(escape_host_paths, cgroupfs_cannot_be_mounted_or_written)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.memory_bytes = 64u << 20;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_new(&o, &s, &err), 0, "%s", sbx_error_message(err));
    int rc = sbx_session_start(s, &err);
    if (rc == SBX_ENOSYS || rc == SBX_EPERM) {
        char why[512];
        snprintf(why, sizeof(why), "cgroup memory limit not enforceable here: %s",
                 sbx_error_message(err));
        sbx_error_free(err);
        sbx_session_free(s);
        cr_skip_test("%s", why);
    }
    cr_expect_eq(rc, 0, "%s", sbx_error_message(err));
    sbx_error_free(err);
    if (rc != 0) {
        sbx_session_free(s);
        return;
    }

    static const char body[] =
        "import ctypes as C\n"
        "L = C.CDLL(None, use_errno=True)\n"
        "d = '/tmp/cg-%d' % os.getuid()\n"
        "os.makedirs(d, exist_ok=True)\n"
        "for fs in ('cgroup2', 'cgroup'):\n"
        "    C.set_errno(0)\n"
        "    r = L.mount(b'none', d.encode(), fs.encode(), 0,\n"
        "                b'memory' if fs == 'cgroup' else None)\n"
        "    print('mount %s=%s' % (fs, 'SUCCEEDED' if r == 0 else 'refused'))\n"
        "    if r == 0:\n"
        "        L.umount2(d.encode(), 2)\n"
        "p = subprocess.run(['mount', '-t', 'cgroup2', 'none', d], capture_output=True,\n"
        "                   stdin=subprocess.DEVNULL, timeout=20)\n"
        "print('mount_tool=%s' % ('refused' if p.returncode != 0 else 'SUCCEEDED'))\n"
        "os.rmdir(d)\n"
        "cg = '/sys/fs/cgroup'\n"
        "if os.path.exists(cg):\n"
        "    ro = any(l.split()[4] == cg and 'ro' in l.split()[5].split(',')\n"
        "             for l in open('/proc/self/mountinfo'))\n"
        "    print('sys_fs_cgroup=%s' % ('read-only' if ro else 'WRITABLE'))\n"
        "else:\n"
        "    print('sys_fs_cgroup=read-only')\n"
        "written = []\n"
        "for root in (cg, '/sys', '/proc/self/root/sys/fs/cgroup'):\n"
        "    for dp, dn, fn in os.walk(root):\n"
        "        for f in fn:\n"
        "            p = os.path.join(dp, f)\n"
        "            try:\n"
        "                fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)\n"
        "                written.append(p)\n"
        "                os.close(fd)\n"
        "            except OSError:\n"
        "                pass\n"
        "attempt('mkdir', lambda: os.mkdir(cg + '/sbx-escape'), DENIED + (errno.EEXIST,))\n"
        "print('writable_cgroup_files=%s' % written[:5])\n";
    expect_py_both(s, body,
                   "mount cgroup2=refused\nmount cgroup=refused\nmount_tool=refused\n"
                   "sys_fs_cgroup=read-only\nmkdir=refused\nwritable_cgroup_files=[]\n");

    /* The limit still applies: 40 MiB fits, 128 MiB does not. */
    sbx_exec_result *r = NULL;
    err = NULL;
    rc = sbx_test_sh_as(s, ROOT_IF_POSSIBLE,
                        "exec python3 -c 'b = bytearray(40 << 20); b[::4096] = b\"x\" * (40 << 8); "
                        "print(\"fits\")'",
                        &r, &err);
    cr_expect_eq(rc, 0, "%s", sbx_error_message(err));
    sbx_error_free(err);
    if (rc == 0) {
        cr_expect_str_eq((char *)r->out, "fits\n", "exit %d: %s", r->exit_code, (char *)r->err);
        sbx_exec_result_free(r);
    }
    r = NULL;
    err = NULL;
    rc = sbx_test_sh_as(s, ROOT_IF_POSSIBLE,
                        "exec python3 -c 'b = bytearray(128 << 20); b[::4096] = b\"x\" * (128 << "
                        "8); print(\"FITS\")'",
                        &r, &err);
    cr_expect_eq(rc, 0, "%s", sbx_error_message(err));
    sbx_error_free(err);
    if (rc == 0) {
        cr_expect_eq(r->exit_code, -9, "128 MiB under a 64 MiB limit: exit %d, out %s",
                     r->exit_code, (char *)r->out);
        cr_expect(r->oom_killed, "the OOM killer must have acted");
        sbx_exec_result_free(r);
    }
    sbx_session_free(s);
}

/* ---- T45 / T76 ------------------------------------------------------------------------ */

#define CANARY_A "sbx-canary-"
#define CANARY_B "3f9d1c7a5e2b"
#define CANARY CANARY_A CANARY_B

/* T45/T76: a secret in the host process's environment never reaches the sandbox: not the
 * command's environment, not PID 1's (unreadable or without it), not any /proc/N/environ or
 * /proc/N/cmdline readable inside. */
Test(escape_host_paths, host_environment_does_not_leak_inside)
{
    cr_assert_eq(setenv("SBX_TEST_CANARY_SECRET", CANARY, 1), 0);
    sbx_session *s = sbx_test_start(NULL);
    static const char body[] =
        /* The canary is split so that this script's own text, visible in the cmdline of
         * the shell running it, does not contain it. */
        "c = b'" CANARY_A "' + b'" CANARY_B "'\n"
        "print('own_env=%s' % any(c in (k + b'=' + v) for k, v in os.environb.items()))\n"
        "print('env_name=%s' % ('SBX_TEST_CANARY_SECRET' in os.environ))\n"
        "p = subprocess.run(['sh', '-c', 'env; cat /proc/self/environ'], capture_output=True,\n"
        "                   stdin=subprocess.DEVNULL, timeout=20)\n"
        "print('child_env=%s' % (c in p.stdout))\n"
        "try:\n"
        "    e = open('/proc/1/environ', 'rb').read()\n"
        "    print('pid1=%s' % ('LEAK' if c in e else 'clean'))\n"
        "except OSError:\n"
        "    print('pid1=clean')\n"
        "seen, leaks = 0, []\n"
        "for n in [d for d in os.listdir('/proc') if d.isdigit()] + ['self']:\n"
        "    for f in ('environ', 'cmdline'):\n"
        "        try:\n"
        "            data = open('/proc/%s/%s' % (n, f), 'rb').read()\n"
        "        except OSError:\n"
        "            continue\n"
        "        seen += 1\n"
        "        if c in data:\n"
        "            leaks.append('%s/%s' % (n, f))\n"
        "print('proc_leaks=%s' % leaks)\n"
        "print('some_read=%s' % (seen >= 2))\n";
    expect_py_both(s, body,
                   "own_env=False\nenv_name=False\nchild_env=False\npid1=clean\nproc_leaks=[]\n"
                   "some_read=True\n");
    sbx_session_free(s);
    cr_expect_eq(unsetenv("SBX_TEST_CANARY_SECRET"), 0);
}

/* ---- T74 ------------------------------------------------------------------------------ */

/* Reads `path` through the file API as `user`; returns the code and puts up to cap-1 bytes of
 * what came back in buf. */
static int api_read(sbx_session *s, const char *path, const char *user, char *buf, size_t cap,
                    sbx_error **err)
{
    char tmpl[] = "/tmp/sbx-test-read-XXXXXX";
    int fd = mkstemp(tmpl);
    buf[0] = '\0';
    if (fd < 0)
        return -1;
    unlink(tmpl);
    int rc = sbx_session_read(s, path, user, fd, NULL, err);
    ssize_t k = pread(fd, buf, cap - 1, 0);
    buf[k > 0 ? k : 0] = '\0';
    close(fd);
    return rc;
}

/* T74: the file API resolves paths beneath the workspace root, so symlinks made inside to
 * /proc magic links (/proc/self/root, /proc/1/cwd, /proc/1/root) do not reach the sandbox's
 * root or the host: reading or listing through them fails and returns nothing. */
Test(escape_host_paths, file_api_does_not_follow_proc_magic_links_out)
{
    sbx_session *s = sbx_test_start(NULL);
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    int rc = sbx_test_sh_as(s, NULL,
                            "ln -s /proc/self/root/etc x && ln -s /proc/1/cwd y && "
                            "ln -s /proc/1/root z && ln -s /proc/self/root w && "
                            "echo mine > own && echo ok",
                            &r, &err);
    cr_expect_eq(rc, 0, "%s", sbx_error_message(err));
    sbx_error_free(err);
    if (rc == 0) {
        cr_expect_str_eq((char *)r->out, "ok\n", "%s", (char *)r->err);
        sbx_exec_result_free(r);
    }

    const char *users[] = {NULL, "root"};
    for (int u = 0; u < (geteuid() == 0 ? 2 : 1); u++) {
        const char *who = users[u] ? users[u] : "sandbox";
        char buf[4096];
        /* The control: a plain file of the workspace reads. */
        err = NULL;
        rc = api_read(s, "own", users[u], buf, sizeof(buf), &err);
        cr_expect_eq(rc, 0, "as %s: %s", who, sbx_error_message(err));
        cr_expect_str_eq(buf, "mine\n");
        sbx_error_free(err);

        const char *reads[] = {"x/passwd", "/workspace/x/passwd", "z/etc/passwd", "w/etc/passwd",
                               "y/own", "w/proc/self/environ"};
        for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
            err = NULL;
            rc = api_read(s, reads[i], users[u], buf, sizeof(buf), &err);
            cr_expect_lt(rc, 0, "as %s, reading %s through a /proc link succeeded: %s", who,
                         reads[i], buf);
            cr_expect(rc == SBX_EINVALID_PATH || rc == SBX_EWORKSPACE_READ_NOT_FOUND ||
                          rc == SBX_EWORKSPACE_ARCHIVE_READ,
                      "as %s, %s: %d %s", who, reads[i], rc, sbx_error_message(err));
            cr_expect_str_eq(buf, "", "as %s, %s returned content", who, reads[i]);
            sbx_error_free(err);
        }

        const char *lists[] = {"y/", "y/.", "x/", "z/", "w/", "w/etc"};
        for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
            sbx_file_entry *v = NULL;
            size_t n = 0;
            err = NULL;
            rc = sbx_session_ls(s, lists[i], users[u], &v, &n, &err);
            cr_expect_lt(rc, 0, "as %s, listing %s through a /proc link gave %zu entries%s%s",
                         who, lists[i], n, n ? ", the first " : "", n ? v[0].path : "");
            sbx_file_entries_free(v, n);
            sbx_error_free(err);
        }

        /* Listing the link itself shows the link, not what it points at. */
        sbx_file_entry *v = NULL;
        size_t n = 0;
        err = NULL;
        rc = sbx_session_ls(s, "y", users[u], &v, &n, &err);
        if (rc == 0) {
            cr_expect_eq(n, 1, "as %s, listing the link y gave %zu entries", who, n);
            if (n == 1)
                cr_expect_eq(v[0].kind, SBX_FILE_SYMLINK);
        }
        sbx_file_entries_free(v, n);
        sbx_error_free(err);
    }
    sbx_session_free(s);
}

/* ---- T77 / T78 ------------------------------------------------------------------------ */

/* A listening Unix stream socket of the test process, non-blocking; -1 on failure. */
static int listen_unix(const struct sockaddr_un *a, socklen_t len)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -1;
    if (bind(s, (const struct sockaddr *)a, len) < 0 || listen(s, 8) < 0) {
        close(s);
        return -1;
    }
    return s;
}

/* T77/T78: the host's daemon sockets are not there inside: docker, containerd, the D-Bus
 * system bus, the caller's session bus, and a canary socket the test makes in /run all give
 * ENOENT; an abstract D-Bus-style name the test listens on is refused (ECONNREFUSED: another
 * network namespace). The canaries accept nothing. */
Test(escape_host_paths, host_daemon_sockets_cannot_be_reached)
{
    char path[108], name[80];
    snprintf(path, sizeof(path), "/run/sbx-test-%d.sock", (int)getpid());
    snprintf(name, sizeof(name), "/org/freedesktop/sbx-test-%d", (int)getpid());
    struct sockaddr_un fs = {.sun_family = AF_UNIX}, abs = {.sun_family = AF_UNIX};
    snprintf(fs.sun_path, sizeof(fs.sun_path), "%s", path);
    memcpy(abs.sun_path + 1, name, strlen(name));
    socklen_t abs_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    unlink(path);
    int f = listen_unix(&fs, sizeof(fs));
    if (f < 0)
        cr_skip_test("cannot make a socket in /run: %s", strerror(errno));
    int a = listen_unix(&abs, abs_len);
    if (a < 0) {
        close(f);
        unlink(path);
        cr_assert_fail("abstract canary: %s", strerror(errno));
    }

    /* Paths of the host's daemons that exist here, and the canary. */
    char list[4096] = "";
    size_t len = 0, checked = 0;
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char xdg_bus[4096] = "";
    if (xdg && *xdg)
        snprintf(xdg_bus, sizeof(xdg_bus), "%s/bus", xdg);
    const char *cands[] = {"/var/run/docker.sock", "/run/docker.sock",
                           "/run/containerd/containerd.sock", "/run/podman/podman.sock",
                           "/var/run/libvirt/libvirt-sock", "/run/dbus/system_bus_socket",
                           "/var/run/dbus/system_bus_socket", xdg_bus, path};
    char expected[8192] = "";
    size_t elen = 0;
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        struct stat st;
        if (!*cands[i] || stat(cands[i], &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        len += (size_t)snprintf(list + len, sizeof(list) - len, "'%s', ", cands[i]);
        elen += (size_t)snprintf(expected + elen, sizeof(expected) - elen, "%s=ENOENT\n",
                                 cands[i]);
        checked++;
    }
    cr_expect_geq(checked, 1);
    elen += (size_t)snprintf(expected + elen, sizeof(expected) - elen,
                             "@%s=ECONNREFUSED\n@/org/freedesktop/systemd1/notify=refused\n",
                             name);

    char *body = NULL;
    int ok = asprintf(&body,
                      "def conn(addr, t=socket.SOCK_STREAM):\n"
                      "    s = socket.socket(socket.AF_UNIX, t)\n"
                      "    s.settimeout(5)\n"
                      "    try:\n"
                      "        s.connect(addr)\n"
                      "        return 'SUCCEEDED'\n"
                      "    except OSError as e:\n"
                      "        return en(e.errno)\n"
                      "    finally:\n"
                      "        s.close()\n"
                      "for p in (%s):\n"
                      "    print('%%s=%%s' %% (p, conn(p)))\n"
                      "print('@%s=' + conn(b'\\0%s'))\n"
                      "r = conn(b'\\0/org/freedesktop/systemd1/notify', socket.SOCK_DGRAM)\n"
                      "print('@/org/freedesktop/systemd1/notify=' +\n"
                      "      ('refused' if r in ('ECONNREFUSED', 'ENOENT') else r))\n",
                      list, name, name);
    sbx_session *s = NULL;
    if (ok > 0) {
        s = sbx_test_start(NULL);
        expect_py_both(s, body, expected);
        sbx_session_free(s);
    } else {
        cr_expect_fail("asprintf");
    }
    free(body);

    errno = 0;
    cr_expect_eq(accept4(f, NULL, NULL, SOCK_CLOEXEC), -1, "the /run canary was reached");
    cr_expect_eq(errno, EAGAIN);
    errno = 0;
    cr_expect_eq(accept4(a, NULL, NULL, SOCK_CLOEXEC), -1, "the abstract canary was reached");
    cr_expect_eq(errno, EAGAIN);
    close(f);
    close(a);
    cr_expect_eq(unlink(path), 0);
}
