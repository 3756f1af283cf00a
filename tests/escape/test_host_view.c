/* What sandboxed code sees of the host, and what it can change there through the kernel's
 * own interfaces: global sysctls and trigger files, kernel addresses and the kernel log,
 * hard links into the host's files, the routing and netfilter tables, the host's Unix
 * sockets, and the binaries of sbx's own helpers through /proc/N/exe. Each test makes the
 * attempt for real from inside, as the sandbox user and (when the id map allows it) as root
 * inside, checks that it failed, and where the target is the host's, reads it on the host
 * before and after to check nothing changed. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "escape_py.h"
#include "harness.h"

TestSuite(escape_host_view, .init = sbx_test_setup, .fini = sbx_test_teardown, .timeout = 90);

#define S sbx_test_S

/* Runs the python3 program `body` (after ESCAPE_PY_ATTEMPT) as `user` and returns the result,
 * which must be a clean exit. */
static sbx_exec_result *py_as(const char *user, const char *body)
{
    sbx_exec_result *r = sbx_test_py(S, user, ESCAPE_PY_ATTEMPT, body);
    cr_assert_not_null(r);
    cr_expect_eq(r->exit_code, 0, "python3 as %s exited %d: %s", user ? user : "sandbox",
                 r->exit_code, (char *)r->err);
    return r;
}

/* Runs `body` as the sandbox user and, when the id map allows it, as root inside, and expects
 * exactly `expected` on stdout each time. */
static void expect_py(const char *body, const char *expected)
{
    const char *users[] = {NULL, "root"};
    for (int i = 0; i < (geteuid() == 0 ? 2 : 1); i++) {
        sbx_exec_result *r = py_as(users[i], body);
        cr_expect_str_eq((char *)r->out, expected, "as %s, got:\n%s\nexpected:\n%s\nstderr: %s",
                         users[i] ? users[i] : "sandbox", (char *)r->out, expected,
                         (char *)r->err);
        sbx_exec_result_free(r);
    }
}

/* The whole content of a host file (NUL-terminated, malloc'd); *len gets its size. */
static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        ssize_t k = read(fd, buf + n, cap - n - 1);
        if (k < 0 && errno == EINTR)
            continue;
        cr_assert(k >= 0, "read %s: %s", path, strerror(errno));
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* T25: the global sysctls and trigger files that hand a host root helper to whoever writes
 * them (core_pattern, modprobe, uevent_helper) or act on the whole machine (drop_caches,
 * sysrq-trigger) cannot be opened for writing. A file that opens anyway gets its own current
 * content back, so a failure of this test does not damage the host. The hostname is the
 * sandbox's own (UTS namespace): whatever root inside may do with it, the host's stays. */
Test(escape_host_view, host_sysctls_and_trigger_files_cannot_be_written)
{
    size_t n;
    char *core_before = slurp("/proc/sys/kernel/core_pattern", &n);
    char host_before[256] = {0}, host_after[256] = {0};
    cr_assert_eq(gethostname(host_before, sizeof(host_before) - 1), 0);

    expect_py("def write(p):\n"
              "    try:\n"
              "        cur = open(p, 'rb').read()\n"
              "    except OSError:\n"
              "        cur = b''\n"
              "    fd = os.open(p, os.O_WRONLY)\n"
              "    try:\n"
              "        if cur:\n"
              "            os.write(fd, cur)\n"
              "    finally:\n"
              "        os.close(fd)\n"
              "for p in ('/proc/sys/kernel/core_pattern', '/proc/sys/kernel/modprobe',\n"
              "          '/proc/sys/vm/drop_caches', '/proc/sysrq-trigger',\n"
              "          '/sys/kernel/uevent_helper'):\n"
              "    attempt(p, lambda: write(p), DENIED)\n"
              "for f in (lambda: open('/proc/sys/kernel/hostname', 'w').write('sbx-probe'),\n"
              "          lambda: socket.sethostname('sbx-probe')):\n"
              "    try:\n"
              "        f()\n"
              "    except OSError:\n"
              "        pass\n",
              "/proc/sys/kernel/core_pattern=refused\n/proc/sys/kernel/modprobe=refused\n"
              "/proc/sys/vm/drop_caches=refused\n/proc/sysrq-trigger=refused\n"
              "/sys/kernel/uevent_helper=refused\n");

    char *core_after = slurp("/proc/sys/kernel/core_pattern", &n);
    cr_expect_str_eq(core_after, core_before, "the host's core_pattern changed");
    cr_assert_eq(gethostname(host_after, sizeof(host_after) - 1), 0);
    cr_expect_str_eq(host_after, host_before, "the host's hostname changed");
    free(core_before);
    free(core_after);
}

/* Whether /proc/kallsyms shows a non-zero address to a host process of `uid` (-1: the test
 * process as it is): 1 yes, 0 no, -1 unreadable. */
static int host_kallsyms_shows_addresses(uid_t uid)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (uid != (uid_t)-1 && (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
                                 setresuid(uid, uid, uid) < 0))
            _exit(3);
        FILE *f = fopen("/proc/kallsyms", "re");
        if (!f)
            _exit(2);
        char line[512];
        int shown = 0;
        while (!shown && fgets(line, sizeof(line), f))
            shown = strtoull(line, NULL, 16) != 0;
        fclose(f);
        _exit(shown);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) <= 2, "status %d", st);
    return WEXITSTATUS(st) == 2 ? -1 : WEXITSTATUS(st);
}

/* T26: the kernel's memory, its symbol addresses and its log stay hidden. Kernel addresses
 * are shown only to holders of CAP_SYSLOG in the host's user namespace (with kptr_restrict 0
 * and perf_event_paranoid 2 or more, or kptr_restrict 1): root inside must see zeros however
 * the host's root sees them. sbx does not mask /proc/kallsyms itself, so a host that shows
 * addresses to every user (kptr_restrict 0 and perf_event_paranoid 1 or less) fails here,
 * on purpose: T26 asks the host to restrict them. syslog(2) is refused by the filter. */
Test(escape_host_view, kernel_memory_addresses_and_log_stay_hidden)
{
    int unprivileged = geteuid() == 0 ? host_kallsyms_shows_addresses(65534)
                                      : host_kallsyms_shows_addresses((uid_t)-1);
    char *kptr = slurp("/proc/sys/kernel/kptr_restrict", NULL);
    char *paranoid = slurp("/proc/sys/kernel/perf_event_paranoid", NULL);
    char why[256];
    snprintf(why, sizeof(why),
             "the host shows kernel addresses to unprivileged users: %s (kptr_restrict %.8s, "
             "perf_event_paranoid %.8s)",
             unprivileged == 1 ? "yes" : "no", kptr, paranoid);
    free(kptr);
    free(paranoid);

    static const char body[] =
        "attempt('kcore', lambda: open('/proc/kcore', 'rb').read(64), DENIED)\n"
        "attempt('kmsg', lambda: os.close(os.open('/proc/kmsg', os.O_RDONLY | os.O_NONBLOCK)),\n"
        "        DENIED)\n"
        "try:\n"
        "    lines = open('/proc/kallsyms').read().splitlines()\n"
        "    shown = sum(1 for l in lines if int(l.split()[0], 16) != 0)\n"
        "    print('kallsyms=' + ('hidden' if shown == 0 else '%d addresses' % shown))\n"
        "except OSError:\n"
        "    print('kallsyms=hidden')\n"
        "L = C.CDLL(None, use_errno=True)\n"
        "buf = C.create_string_buffer(4096)\n"
        "for label, action in (('syslog_read_all', 3), ('syslog_size_buffer', 10)):\n"
        "    C.set_errno(0)\n"
        "    r = L.klogctl(action, buf, 4096)\n"
        "    print(label + '=' + ('ok' if r >= 0 else en(C.get_errno())))\n";
    static const char expected[] = "kcore=refused\nkmsg=refused\nkallsyms=hidden\n"
                                   "syslog_read_all=EPERM\nsyslog_size_buffer=EPERM\n";
    const char *users[] = {NULL, "root"};
    for (int i = 0; i < (geteuid() == 0 ? 2 : 1); i++) {
        sbx_exec_result *r = py_as(users[i], body);
        cr_expect_str_eq((char *)r->out, expected, "as %s, got:\n%s\n%s\nstderr: %s",
                         users[i] ? users[i] : "sandbox", (char *)r->out, why, (char *)r->err);
        sbx_exec_result_free(r);
    }
}

/* T13: the workspace is a mount of its own, so no file of the host's read-only system dirs
 * (nor of the sandbox's /tmp) can be hard-linked into it, where a later host chown or restore
 * of the workspace would act on the host's inode. Links within the workspace still work. */
Test(escape_host_view, host_files_cannot_be_hard_linked_into_the_workspace)
{
    const char *victim = access("/usr/bin/passwd", F_OK) == 0 ? "/usr/bin/passwd" : "/usr/bin/env";
    struct stat before, after;
    cr_assert_eq(stat(victim, &before), 0);

    char *body = NULL;
    cr_assert(asprintf(&body,
                       "def L(label, src, dst):\n"
                       "    try:\n"
                       "        os.link(src, dst)\n"
                       "        print(label + '=SUCCEEDED')\n"
                       "    except OSError as e:\n"
                       "        print(label + '=' + en(e.errno))\n"
                       "L('system', '%s', '/workspace/p')\n"
                       "L('ld_cache', '/etc/ld.so.cache', '/workspace/c')\n"
                       "t = '/tmp/hl-%%d' %% os.getuid()\n"
                       "open(t, 'w').write('x')\n"
                       "L('tmp', t, '/workspace/t')\n"
                       "p = subprocess.run(['ln', t, '/workspace/y'], capture_output=True, "
                       "text=True)\n"
                       "print('ln=%%s' %% (p.returncode != 0 and 'cross-device' in p.stderr))\n"
                       "os.unlink(t)\n",
                       victim) > 0);
    expect_py(body, "system=EXDEV\nld_cache=EXDEV\ntmp=EXDEV\nln=True\n");
    free(body);

    /* The control: a hard link between two files of the workspace. */
    sbx_exec_result *r = py_as(NULL, "open('/workspace/own', 'w').write('x')\n"
                                     "os.link('/workspace/own', '/workspace/own2')\n"
                                     "print(os.stat('/workspace/own').st_nlink)\n"
                                     "os.unlink('/workspace/own2')\n"
                                     "os.unlink('/workspace/own')\n");
    cr_expect_str_eq((char *)r->out, "2\n", "stderr: %s", (char *)r->err);
    sbx_exec_result_free(r);

    cr_assert_eq(stat(victim, &after), 0);
    cr_expect_eq(after.st_nlink, before.st_nlink, "%s has a new link", victim);
    const char *names[] = {"p", "c", "t", "y"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", sbx_session_workspace(S), names[i]);
        cr_expect_neq(access(path, F_OK), 0, "%s appeared in the host's workspace", path);
    }
}

/* Whether the host's loopback interface is up. */
static int host_lo_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(s >= 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    cr_assert_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    close(s);
    return (ifr.ifr_flags & IFF_UP) != 0;
}

/* T53: with no CAP_NET_ADMIN, not even in the sandbox's own network namespace, the routing
 * and netfilter tables cannot be changed through netlink: the kernel answers each request
 * with -EPERM in an NLMSG_ERROR, lo stays up, and nothing appears on the host. */
Test(escape_host_view, netlink_cannot_reconfigure_the_network)
{
    int lo_before = host_lo_up();
    expect_py("def rta(t, data):\n"
              "    n = 4 + len(data)\n"
              "    return struct.pack('=HH', n, t) + data + b'\\0' * (-n % 4)\n"
              /* Sends one request (or a batch of them) and returns the first error answer. */
              "def ask(proto, msgs):\n"
              "    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)\n"
              "    s.settimeout(5)\n"
              "    s.bind((0, 0))\n"
              "    out = b''\n"
              "    for seq, (ty, flags, body) in enumerate(msgs, 1):\n"
              "        out += struct.pack('=IHHII', 16 + len(body), ty, flags | 1 | 4, seq, 0)\n"
              "        out += body + b'\\0' * (-len(body) % 4)\n"
              "    s.send(out)\n"
              "    d = s.recv(65536)\n"
              "    s.close()\n"
              "    n, ty = struct.unpack_from('=IH', d, 0)\n"
              "    if ty != 2:\n"
              "        return 'type %d' % ty\n"
              "    e = struct.unpack_from('=i', d, 16)[0]\n"
              "    return 'ok' if e == 0 else en(-e)\n"
              "lo = socket.if_nametoindex('lo')\n"
              "ifi = lambda index, flags, change: struct.pack('=BxHiII', 0, 0, index, flags, "
              "change)\n"
              /* RTM_NEWLINK of a dummy link (NLM_F_CREATE | NLM_F_EXCL) */
              "dummy = ifi(0, 0, 0) + rta(3, b'sbxdummy0\\0') + rta(18 | 0x8000, rta(1, "
              "b'dummy\\0'))\n"
              "print('newlink=' + ask(socket.NETLINK_ROUTE, [(16, 0x600, dummy)]))\n"
              /* RTM_SETLINK: lo down (IFF_UP cleared in the change mask) */
              "print('setlink=' + ask(socket.NETLINK_ROUTE, [(19, 0, ifi(lo, 0, 1))]))\n"
              /* RTM_NEWADDR: 10.9.9.9/32 on lo */
              "a = socket.inet_aton('10.9.9.9')\n"
              "ifa = struct.pack('=BBBBi', socket.AF_INET, 32, 0, 0, lo) + rta(1, a) + rta(2, a)\n"
              "print('newaddr=' + ask(socket.NETLINK_ROUTE, [(20, 0x600, ifa)]))\n"
              /* NFT_MSG_NEWTABLE in a batch, as nft sends it */
              "nfg = struct.pack('=BBH', socket.AF_INET, 0, socket.htons(10))\n"
              "print('nftables=' + ask(12, [(0x10, 0, nfg), (0xa00, 0x600, nfg + rta(1, "
              "b'sbxt\\0')), (0x11, 0, nfg)]))\n"
              /* The tools, where this system has them (exit 127: absent), after the raw
               * requests so that lo is checked last. */
              "bad = []\n"
              "for cmd in ('ip link add sbxdummy1 type dummy', 'ip link set lo down',\n"
              "            'nft add table ip sbxt'):\n"
              "    p = subprocess.run(cmd.split(), stdin=subprocess.DEVNULL,\n"
              "                       capture_output=True, text=True, timeout=10)\n"
              "    if p.returncode != 127 and (p.returncode == 0 or\n"
              "                                'Operation not permitted' not in p.stderr):\n"
              "        bad.append('%s: %d %s' % (cmd, p.returncode, p.stderr.strip()))\n"
              "print('tools=' + ('refused' if not bad else '; '.join(bad)))\n"
              "import fcntl\n"
              "f = fcntl.ioctl(socket.socket(), 0x8913, struct.pack('16sH14x', b'lo', 0))\n"
              "print('lo_up=%s' % bool(struct.unpack_from('H', f, 16)[0] & 1))\n",
              "newlink=EPERM\nsetlink=EPERM\nnewaddr=EPERM\nnftables=EPERM\ntools=refused\n"
              "lo_up=True\n");
    cr_expect_eq(if_nametoindex("sbxdummy0"), 0, "a dummy link appeared on the host");
    cr_expect_eq(if_nametoindex("sbxdummy1"), 0, "a dummy link appeared on the host");
    cr_expect_eq(host_lo_up(), lo_before, "the host's lo changed state");
}

/* A listening Unix stream socket of the test process, non-blocking. */
static int canary(const struct sockaddr_un *a, socklen_t len)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    cr_assert(s >= 0);
    cr_assert_eq(bind(s, (const struct sockaddr *)a, len), 0, "bind: %s", strerror(errno));
    cr_assert_eq(listen(s, 8), 0);
    return s;
}

/* T47 ★: abstract Unix sockets belong to the network namespace, so a host service listening
 * on one (X11, a container shim) is refused from inside; a socket file in the host's /tmp is
 * not there at all; and /proc/net/unix lists none of the host's sockets. The host canaries
 * accept nothing. */
Test(escape_host_view, host_unix_sockets_cannot_be_reached)
{
    char name[64], path[108];
    snprintf(name, sizeof(name), "sbx-canary-%d", (int)getpid());
    snprintf(path, sizeof(path), "/tmp/sbx-canary-%d.sock", (int)getpid());
    struct sockaddr_un abs = {.sun_family = AF_UNIX}, fs = {.sun_family = AF_UNIX};
    memcpy(abs.sun_path + 1, name, strlen(name));
    socklen_t abs_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    snprintf(fs.sun_path, sizeof(fs.sun_path), "%s", path);
    unlink(path);
    int a = canary(&abs, abs_len);
    int f = canary(&fs, sizeof(fs));

    /* The control: the canaries answer on the host. */
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&abs, abs_len), 0, "%s", strerror(errno));
    close(c);
    int got = accept4(a, NULL, NULL, SOCK_CLOEXEC);
    cr_assert(got >= 0, "the abstract canary does not answer: %s", strerror(errno));
    close(got);

    char *body = NULL;
    cr_assert(asprintf(&body,
                       "name, path = '%s', '%s'\n"
                       "for t, tn in ((socket.SOCK_STREAM, 'stream'), (socket.SOCK_DGRAM, "
                       "'dgram'),\n"
                       "              (socket.SOCK_SEQPACKET, 'seqpacket')):\n"
                       "    for label, addr in (('abstract', b'\\0' + name.encode()), "
                       "('file', path)):\n"
                       "        s = socket.socket(socket.AF_UNIX, t)\n"
                       "        s.settimeout(5)\n"
                       "        try:\n"
                       "            s.connect(addr)\n"
                       "            print(label + '_' + tn + '=SUCCEEDED')\n"
                       "        except OSError as e:\n"
                       "            print(label + '_' + tn + '=' + en(e.errno))\n"
                       "        s.close()\n"
                       "print('listed=%%s' %% (name in open('/proc/net/unix').read()))\n",
                       name, path) > 0);
    expect_py(body, "abstract_stream=ECONNREFUSED\nfile_stream=ENOENT\n"
                    "abstract_dgram=ECONNREFUSED\nfile_dgram=ENOENT\n"
                    "abstract_seqpacket=ECONNREFUSED\nfile_seqpacket=ENOENT\nlisted=False\n");
    free(body);

    errno = 0;
    cr_expect_eq(accept4(a, NULL, NULL, SOCK_CLOEXEC), -1, "the abstract canary was reached");
    cr_expect_eq(errno, EAGAIN);
    errno = 0;
    cr_expect_eq(accept4(f, NULL, NULL, SOCK_CLOEXEC), -1, "the socket file was reached");
    cr_expect_eq(errno, EAGAIN);
    close(a);
    close(f);
    unlink(path);
}

/* Runs short commands in a loop until told to stop, so that command supervisors come and go
 * while the probe looks at /proc. */
struct churn {
    atomic_int stop;
    int runs, failures;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    while (!atomic_load(&c->stop) && c->runs < 200) {
        sbx_exec_result *r = NULL;
        sbx_error *err = NULL;
        if (sbx_test_sh_as(S, NULL, "sleep 0.05", &r, &err) != 0)
            c->failures++;
        sbx_exec_result_free(r);
        sbx_error_free(err);
        c->runs++;
    }
    return NULL;
}

/* T07 ★ (CVE-2019-5736): every process visible inside, PID 1 (the agent), the zygote and the
 * supervisors of this and of concurrent commands included, has an exe that cannot be opened
 * for writing, directly or by reopening an O_PATH handle through /proc/self/fd. The probe
 * sweeps /proc for two seconds while another thread keeps starting commands; afterwards the
 * sbx-agent binary on the host is byte for byte what it was. */
Test(escape_host_view, helper_binaries_cannot_be_overwritten_through_proc_exe)
{
    const char *bin = sbx_test_bin("sbx-agent");
    char agent_bin[4096];
    snprintf(agent_bin, sizeof(agent_bin), "%s", bin);
    char link[64], target[4096] = {0};
    snprintf(link, sizeof(link), "/proc/%d/exe", (int)sbx_session_agent_pid(S));
    cr_assert(readlink(link, target, sizeof(target) - 1) > 0);
    cr_assert_str_eq(target, agent_bin, "the agent does not run the binary this test watches");
    size_t len_before, len_after;
    char *before = slurp(agent_bin, &len_before);
    struct stat st_before, st_after;
    cr_assert_eq(stat(agent_bin, &st_before), 0);

    sbx_exec_result_free(sbx_test_sh(S, "true")); /* the zygote comes after a first command */
    static const char body[] =
        "def tryopen(p, fl):\n"
        "    fd = os.open(p, fl)\n"
        "    os.close(fd)\n"
        "opened, seen = [], set()\n"
        "end = time.monotonic() + 2\n"
        "while time.monotonic() < end:\n"
        "    for n in [d for d in os.listdir('/proc') if d.isdigit()]:\n"
        "        p = '/proc/%s/exe' % n\n"
        "        try:\n"
        "            if open('/proc/%s/comm' % n).read().strip() == 'sbx-agent':\n"
        "                seen.add(n)\n"
        "        except OSError:\n"
        "            pass\n"
        "        for how, fl in (('wronly', os.O_WRONLY), ('rdwr', os.O_RDWR)):\n"
        "            try:\n"
        "                tryopen(p, fl)\n"
        "                opened.append((n, how))\n"
        "            except OSError:\n"
        "                pass\n"
        "        try:\n"
        "            h = os.open(p, os.O_PATH)\n"
        "        except OSError:\n"
        "            continue\n"
        "        for how, fl in (('path-wronly', os.O_WRONLY), ('path-rdwr', os.O_RDWR)):\n"
        "            try:\n"
        "                tryopen('/proc/self/fd/%d' % h, fl)\n"
        "                opened.append((n, how))\n"
        "            except OSError:\n"
        "                pass\n"
        "        os.close(h)\n"
        "print('opened=%s' % sorted(set(opened)))\n"
        "print('pid1_agent=%s' % ('1' in seen))\n"
        "print('other_helpers=%s' % (len(seen - {'1'}) >= 2))\n";

    struct churn c = {0};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, churn_main, &c), 0);
    const char *users[] = {NULL, "root"};
    for (int i = 0; i < (geteuid() == 0 ? 2 : 1); i++) {
        sbx_exec_result *r = py_as(users[i], body);
        cr_expect_str_eq((char *)r->out, "opened=[]\npid1_agent=True\nother_helpers=True\n",
                         "as %s: %s stderr: %s", users[i] ? users[i] : "sandbox", (char *)r->out,
                         (char *)r->err);
        sbx_exec_result_free(r);
    }
    atomic_store(&c.stop, 1);
    pthread_join(t, NULL);
    cr_expect_eq(c.failures, 0, "%d of %d concurrent commands failed", c.failures, c.runs);
    cr_expect_gt(c.runs, 1, "no command ran concurrently with the probe");

    char *after = slurp(agent_bin, &len_after);
    cr_assert_eq(stat(agent_bin, &st_after), 0);
    cr_expect_eq(len_after, len_before, "%s changed size", agent_bin);
    cr_expect(len_after == len_before && memcmp(after, before, len_before) == 0,
              "%s changed content", agent_bin);
    cr_expect_eq(st_after.st_mtim.tv_sec, st_before.st_mtim.tv_sec);
    cr_expect_eq(st_after.st_mtim.tv_nsec, st_before.st_mtim.tv_nsec);
    cr_expect_eq(st_after.st_ino, st_before.st_ino);
    free(before);
    free(after);
}
