/* The default seccomp filter every command runs under: the kernel interfaces with a history
 * of escapes are refused (EPERM; ENOSYS for clone3, so libc falls back to clone, whose
 * namespace flags the filter can see), terminal injection is refused whatever the high bits
 * of the ioctl request, personalities that weaken the address space are refused, the kernel
 * log is out of reach, a command's own filter may not bring a listener, sockets are limited
 * to AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK (without DCCP and SCTP), and a system call
 * through a foreign ABI (i386, x32) kills the command. Each test makes the call for real, as
 * root inside where possible, with arguments under which it would otherwise succeed or fail
 * differently, and checks it failed the filter's way; ordinary programs (threads, fork,
 * posix_spawn, a shell, TCP and UDP) keep working. That the refusal is the filter's, and not
 * a capability check's or Landlock's that would also say EPERM, is proved once for all by
 * running the same programs under the same policy with other errnos
 * (refusals_come_from_the_filter_not_from_missing_capabilities). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sbx/seccomp.h>

#include "escape_py.h"
#include "harness.h"

TestSuite(escape_seccomp, .init = sbx_test_setup, .fini = sbx_test_teardown, .timeout = 60);

#define S                sbx_test_S
#define ROOT_IF_POSSIBLE (geteuid() == 0 ? "root" : NULL)

#if defined(__x86_64__)
#define X86_64_ONLY() ((void)0)
#else
#define X86_64_ONLY() cr_skip_test("system call numbers and ABIs are those of x86_64")
#endif

/* Runs `script` in `s` as `user` and asserts the call succeeded. */
static sbx_exec_result *run_in(sbx_session *s, const char *user, const char *script)
{
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_test_sh_as(s, user, script, &r, &err), 0, "exec: %s",
                 sbx_error_message(err));
    return r;
}

/* Runs `script` as root inside (when the id map allows it) and asserts the call succeeded. */
static sbx_exec_result *run(const char *script)
{
    return run_in(S, ROOT_IF_POSSIBLE, script);
}

/* Python helpers every program below starts with: ESCAPE_PY_SYSCALLS (escape_py.h: sc, and
 * T(label, nr, args...), which prints "label=ok" or "label=<errno name>"), then: F does the same in a forked child (for
 * calls that would change the caller, such as unshare); CL makes a fork-like clone whose
 * child leaves at once. Integers go as longs, so a request keeps its high bits. NS lists the
 * namespace flags. Whatever prints before a fork flushes, so nothing is printed twice.
 *
 * in_userns(fn) runs fn in a child that first tries to make a user and mount namespace of
 * its own, where, without the filter, it would have every capability: the calls are made as
 * they could succeed. Under the filter that unshare fails too, so fn runs without those
 * capabilities all the same; that an EPERM is then the filter's, not a capability check's,
 * is what refusals_come_from_the_filter_not_from_missing_capabilities proves. (No id map:
 * root inside may not map itself, so further user namespaces are tried from the top level.) */
static const char PY_PRELUDE[] =
    ESCAPE_PY_SYSCALLS
    "AT = -100\n"
    "NS = (('user', 0x10000000), ('mnt', 0x20000), ('pid', 0x20000000), ('net', 0x40000000),\n"
    "      ('uts', 0x4000000), ('ipc', 0x8000000), ('cgroup', 0x2000000), ('time', 0x80))\n"
    "def F(label, nr, *a):\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        try:\n"
    "            r, e = sc(nr, *a)\n"
    "            os._exit(0 if r >= 0 else e)\n"
    "        except BaseException:\n"
    "            os._exit(255)\n"
    "    c = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])\n"
    "    say(label, -c, c)\n"
    "def CL(label, nr, *a):\n"
    "    r, e = sc(nr, *a)\n"
    "    if r == 0:\n"
    "        os._exit(0)\n"
    "    if r > 0:\n"
    "        os.waitpid(r, 0x40000000)\n" /* __WALL: whatever its exit signal */
    "    say(label, r, e)\n"
    "def in_userns(fn):\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        try:\n"
    "            sc(272, 0x10000000 | 0x20000)\n"
    "            fn()\n"
    "            sys.stdout.flush()\n"
    "            os._exit(0)\n"
    "        except BaseException:\n"
    "            traceback.print_exc()\n"
    "            os._exit(1)\n"
    "    if os.waitpid(pid, 0)[1]:\n"
    "        print('in_userns: the child failed')\n";

/* Runs the python3 program `body` (after PY_PRELUDE) in `s` as `user` and expects exactly
 * `expected` on its stdout and a clean exit. `what` names the program in a failure. */
static void expect_py_in(sbx_session *s, const char *user, const char *what, const char *body,
                         const char *expected)
{
    X86_64_ONLY();
    sbx_exec_result *r = sbx_test_py(s, user, PY_PRELUDE, body);
    if (!r)
        return;
    cr_expect_eq(r->exit_code, 0, "%s: python3 exited %d: %s", what, r->exit_code,
                 (char *)r->err);
    cr_expect_str_eq((char *)r->out, expected, "%s: got:\n%s\nexpected:\n%s\nstderr: %s", what,
                     (char *)r->out, expected, (char *)r->err);
    sbx_exec_result_free(r);
}

/* The same in the shared session, as root inside where possible. */
static void expect_py(const char *body, const char *expected)
{
    expect_py_in(S, ROOT_IF_POSSIBLE, "python3", body, expected);
}

Test(escape_seccomp, commands_run_under_a_filter_as_any_user)
{
    static const char script[] = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status";
    sbx_exec_result *r = sbx_test_sh(S, script);
    cr_expect_str_eq((char *)r->out, "NoNewPrivs:\t1\nSeccomp:\t2\n");
    sbx_exec_result_free(r);
    r = run(script);
    cr_expect_str_eq((char *)r->out, "NoNewPrivs:\t1\nSeccomp:\t2\n");
    sbx_exec_result_free(r);
}

/* A policy that denies nothing loads no filter at all; no_new_privs stays. (Not a setting
 * for untrusted code: it is what sbx-bench compares the default against.) */
Test(escape_seccomp, a_policy_that_denies_nothing_loads_no_filter)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.seccomp_policy = "default allow\n";
    sbx_session *s = sbx_test_start(&o);
    sbx_exec_result *r = sbx_test_sh(s, "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status");
    cr_expect_str_eq((char *)r->out, "NoNewPrivs:\t1\nSeccomp:\t0\n");
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

/* Each attack below is a python program and what it prints under the built-in policy, in
 * static strings: its own test runs it so, and
 * refusals_come_from_the_filter_not_from_missing_capabilities runs it again under the same
 * policy with other errnos. */

/* Keyrings are shared with the host kernel; each call here works for any user. */
static const char keyring_py[] =
    "T('keyctl', 250, 0, -3, 1)\n" /* KEYCTL_GET_KEYRING_ID, session, create */
    "T('add_key', 248, b'user', b'sbx-escape', b'secret', 6, -2)\n" /* process */
    "T('request_key', 249, b'user', b'sbx-escape', None, -2)\n";
static const char keyring_out[] = "keyctl=EPERM\nadd_key=EPERM\nrequest_key=EPERM\n";

Test(escape_seccomp, the_kernel_keyring_is_refused)
{
    expect_py(keyring_py, keyring_out);
}

static const char bpf_py[] =
    "a = C.create_string_buffer(128)\n"
    "struct.pack_into('IIII', a, 0, 2, 4, 4, 1)\n" /* an array map */
    "T('bpf', 321, 0, a, 128)\n"                   /* BPF_MAP_CREATE */
    /* Counting the task clock of this process, user space only: what perf_event_paranoid 2
     * lets anyone do. */
    "p = C.create_string_buffer(128)\n"
    "struct.pack_into('IIQ', p, 0, 1, 128, 1)\n"
    "struct.pack_into('Q', p, 40, 1 | 1 << 5 | 1 << 6)\n"
    "T('perf_event_open', 298, p, 0, -1, -1, 8)\n"
    "T('userfaultfd', 323, os.O_CLOEXEC | 1)\n"; /* UFFD_USER_MODE_ONLY */
static const char bpf_out[] = "bpf=EPERM\nperf_event_open=EPERM\nuserfaultfd=EPERM\n";

Test(escape_seccomp, bpf_perf_events_and_userfaultfd_are_refused)
{
    expect_py(bpf_py, bpf_out);
}

static const char machine_py[] =
    "T('kexec_load', 246, 0, 0, None, 0)\n"
    "T('kexec_file_load', 320, -1, -1, 0, None, 0)\n"
    "T('init_module', 175, b'\\x7fELF', 4, b'')\n"
    "T('finit_module', 313, os.open('/dev/null', os.O_RDONLY), b'', 0)\n"
    "T('delete_module', 176, b'ext4', os.O_NONBLOCK)\n"
    /* LINUX_REBOOT_CMD_CAD_OFF: harmless even where it would be allowed */
    "T('reboot', 169, 0xfee1dead, 672274793, 0)\n"
    "T('swapon', 167, b'/workspace/swap', 0)\n"
    "T('swapoff', 168, b'/workspace/swap')\n"
    "T('acct', 163, b'/workspace/acct')\n";
static const char machine_out[] =
    "kexec_load=EPERM\nkexec_file_load=EPERM\ninit_module=EPERM\nfinit_module=EPERM\n"
    "delete_module=EPERM\nreboot=EPERM\nswapon=EPERM\nswapoff=EPERM\nacct=EPERM\n";

Test(escape_seccomp, modules_kexec_reboot_swap_and_accounting_are_refused)
{
    expect_py(machine_py, machine_out);
}

/* In an order where no call changes what the next one sees, were it allowed: chroot in a
 * child of its own, pivot_root last. */
static const char mount_py[] =
    "def attack():\n"
    "    T('mount', 165, b'none', b'/tmp', b'tmpfs', 0, None)\n"
    "    T('umount2', 166, b'/proc', 2)\n" /* MNT_DETACH */
    "    F('chroot', 161, b'/tmp')\n"
    "    fs = T('fsopen', 430, b'tmpfs', 1)\n"
    "    T('fsconfig', 431, fs, 6, None, None, 0)\n" /* FSCONFIG_CMD_CREATE */
    "    T('fsmount', 432, fs, 1, 0)\n"
    "    T('fspick', 433, AT, b'/workspace', 1)\n"
    "    ma = C.create_string_buffer(32)\n"
    "    struct.pack_into('Q', ma, 8, 2 | 4)\n" /* attr_clr = NOSUID | NODEV */
    "    T('mount_setattr', 442, AT, b'/tmp', 0, ma, 32)\n"
    /* A detached copy of /usr (OPEN_TREE_CLONE | CLOEXEC | AT_RECURSIVE), moved onto /tmp;
     * and a plain O_PATH handle, which needs no privilege at all. */
    "    t = T('open_tree', 428, AT, b'/usr', 1 | 0x80000 | 0x8000)\n"
    "    T('open_tree_handle', 428, AT, b'/workspace', 0x80000)\n"
    "    T('move_mount', 429, t, b'', AT, b'/tmp', 4)\n" /* MOVE_MOUNT_F_EMPTY_PATH */
    "    T('pivot_root', 155, b'/tmp', b'/tmp')\n"
    "in_userns(attack)\n";
static const char mount_out[] =
    "mount=EPERM\numount2=EPERM\nchroot=EPERM\nfsopen=EPERM\nfsconfig=EPERM\n"
    "fsmount=EPERM\nfspick=EPERM\nmount_setattr=EPERM\nopen_tree=EPERM\n"
    "open_tree_handle=EPERM\nmove_mount=EPERM\npivot_root=EPERM\n";

Test(escape_seccomp, the_mount_table_cannot_be_changed)
{
    expect_py(mount_py, mount_out);
}

/* Each other flag alone from a user namespace of its own, where it would be allowed. The
 * unshare command's exit code is its own, whatever the errno. */
static const char unshare_py[] =
    "def attack():\n"
    "    for n, f in NS[1:]:\n"
    "        F('unshare_' + n, 272, f)\n"
    "    T('setns_own', 308, os.open('/proc/self/ns/mnt', os.O_RDONLY), 0x20000)\n"
    "    T('setns_pid1', 308, os.pidfd_open(1), 0x20000 | 0x40000000)\n"
    "in_userns(attack)\n"
    "F('unshare_user', 272, 0x10000000)\n"
    "print('unshare_cmd=%d' % os.waitstatus_to_exitcode(\n"
    "      os.system('unshare -U true 2>/dev/null')))\n";
static const char unshare_out[] =
    "unshare_mnt=EPERM\nunshare_pid=EPERM\nunshare_net=EPERM\nunshare_uts=EPERM\n"
    "unshare_ipc=EPERM\nunshare_cgroup=EPERM\nunshare_time=EPERM\nsetns_own=EPERM\n"
    "setns_pid1=EPERM\nunshare_user=EPERM\nunshare_cmd=1\n";

Test(escape_seccomp, no_namespace_can_be_entered_or_made_with_unshare_or_setns)
{
    expect_py(unshare_py, unshare_out);
}

/* Each other flag alone from a user namespace of its own, where it would be allowed. Clone's
 * exit signal shares a bit with CLONE_NEWTIME, which the policy refuses there too. clone3
 * hides its flags in memory: ENOSYS, with namespace flags or without (sbx needs Linux 5.12,
 * which has clone3: the ENOSYS is the filter's). */
static const char clone_py[] =
    "def attack():\n"
    "    for n, f in NS[1:]:\n"
    "        CL('clone_' + n, 56, f | 17, 0, None, None, 0)\n"
    "in_userns(attack)\n"
    "CL('clone_user', 56, 0x10000000 | 17, 0, None, None, 0)\n"
    "a = C.create_string_buffer(64)\n"
    "struct.pack_into('Q', a, 32, 17)\n" /* exit_signal = SIGCHLD */
    "CL('clone3', 435, a, 64)\n"
    "struct.pack_into('Q', a, 0, 0x10000000)\n"
    "CL('clone3_user', 435, a, 64)\n";
static const char clone_out[] =
    "clone_mnt=EPERM\nclone_pid=EPERM\nclone_net=EPERM\nclone_uts=EPERM\n"
    "clone_ipc=EPERM\nclone_cgroup=EPERM\nclone_time=EPERM\nclone_user=EPERM\n"
    "clone3=ENOSYS\nclone3_user=ENOSYS\n";

Test(escape_seccomp, clone_with_namespace_flags_is_refused_and_clone3_is_not_there)
{
    expect_py(clone_py, clone_out);
}

/* "Shocker": the handle of inode 2 (the root of an ext4 filesystem), opened through the
 * workspace's mount, is the host filesystem's root directory. */
static const char handle_py[] =
    "h = C.create_string_buffer(8 + 128)\n"
    "struct.pack_into('I', h, 0, 128)\n"
    "mid = C.c_int()\n"
    "T('name_to_handle_at', 303, AT, b'/workspace', h, C.byref(mid), 0)\n"
    "root = C.create_string_buffer(16)\n"
    "struct.pack_into('IiII', root, 0, 8, 1, 2, 0)\n" /* FILEID_INO32_GEN {2, 0} */
    "T('open_by_handle_at', 304, os.open('/workspace', os.O_RDONLY), root,\n"
    "  os.O_RDONLY | os.O_DIRECTORY)\n";
static const char handle_out[] = "name_to_handle_at=EPERM\nopen_by_handle_at=EPERM\n";

Test(escape_seccomp, file_handles_cannot_reach_past_the_mount_tree)
{
    expect_py(handle_py, handle_out);
}

/* A child of the caller, same credentials: what ptrace's own checks let through. */
static const char ptrace_py[] =
    "secret = C.create_string_buffer(b'secret', 16)\n"
    "rd, wr = os.pipe()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.read(rd, 1)\n"
    "    os._exit(0)\n"
    "class IOV(C.Structure):\n"
    "    _fields_ = [('base', C.c_void_p), ('len', C.c_size_t)]\n"
    "mine = C.create_string_buffer(16)\n"
    "loc, rem = IOV(C.addressof(mine), 16), IOV(C.addressof(secret), 16)\n"
    "T('process_vm_readv', 310, pid, C.byref(loc), 1, C.byref(rem), 1, 0)\n"
    "T('process_vm_writev', 311, pid, C.byref(loc), 1, C.byref(rem), 1, 0)\n"
    "T('ptrace', 101, 0x4206, pid, None, None)\n" /* PTRACE_SEIZE */
    "os.kill(pid, 9)\n"
    "os.waitpid(pid, 0)\n"
    "print('read=%r' % mine.value)\n";
static const char ptrace_out[] =
    "process_vm_readv=EPERM\nprocess_vm_writev=EPERM\nptrace=EPERM\nread=b''\n";

Test(escape_seccomp, other_processes_cannot_be_traced_or_read)
{
    expect_py(ptrace_py, ptrace_out);
}

/* ptrace by other means, on a child with the caller's credentials: taking one of its files
 * (pidfd_getfd), comparing its files with the caller's (kcmp), advising on its memory
 * (process_madvise, MADV_COLD on a page both share); and reading the caller's own local
 * descriptor table (modify_ldt 0), which any process may do without the filter. */
static const char pidfd_py[] =
    "import mmap\n"
    "m = mmap.mmap(-1, 4096)\n"
    "page = C.addressof(C.c_char.from_buffer(m))\n"
    "rd, wr = os.pipe()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.read(rd, 1)\n"
    "    os._exit(0)\n"
    "pfd = os.pidfd_open(pid)\n"
    "T('pidfd_getfd', 438, pfd, rd, 0)\n"
    "T('kcmp', 312, os.getpid(), pid, 0, rd, rd)\n" /* KCMP_FILE */
    "iov = (C.c_ulong * 2)(page, 4096)\n"
    "T('process_madvise', 440, pfd, iov, 1, 20, 0)\n"
    "T('modify_ldt', 154, 0, C.create_string_buffer(64), 64)\n"
    "os.kill(pid, 9)\n"
    "os.waitpid(pid, 0)\n";
static const char pidfd_out[] =
    "pidfd_getfd=EPERM\nkcmp=EPERM\nprocess_madvise=EPERM\nmodify_ldt=EPERM\n";

Test(escape_seccomp, files_and_memory_of_other_processes_and_the_ldt_are_out_of_reach)
{
    expect_py(pidfd_py, pidfd_out);
}

/* The clock is set to what it already reads; adjtimex/clock_adjtime only query (modes 0),
 * which any user may do without the filter. */
static const char clock_py[] =
    "ts = (C.c_long * 2)()\n"
    "sc(228, 0, ts)\n" /* clock_gettime(CLOCK_REALTIME) */
    "T('clock_settime', 227, 0, ts)\n"
    "tv = (C.c_long * 2)(ts[0], ts[1] // 1000)\n"
    "T('settimeofday', 164, tv, None)\n"
    "tx = C.create_string_buffer(512)\n"
    "T('adjtimex', 159, tx)\n"
    "T('clock_adjtime', 305, 0, tx)\n";
static const char clock_out[] =
    "clock_settime=EPERM\nsettimeofday=EPERM\nadjtimex=EPERM\nclock_adjtime=EPERM\n";

Test(escape_seccomp, the_host_clock_cannot_be_set_or_adjusted)
{
    expect_py(clock_py, clock_out);
}

static const char io_uring_py[] =
    "fd = T('io_uring_setup', 425, 4, C.create_string_buffer(120))\n"
    "T('io_uring_enter', 426, fd, 0, 0, 0, None, 0)\n"
    "T('io_uring_register', 427, fd, 8, C.create_string_buffer(16 + 256 * 8), 256)\n";
static const char io_uring_out[] =
    "io_uring_setup=EPERM\nio_uring_enter=EPERM\nio_uring_register=EPERM\n";

Test(escape_seccomp, io_uring_is_refused)
{
    expect_py(io_uring_py, io_uring_out);
}

/* A pty made the controlling terminal of a new session, as TIOCSTI requires; the kernel reads
 * the request as 32 bits, so 1 << 32 on top is still TIOCSTI (CVE-2019-10063). TIOCLINUX asks
 * only for the shift state (subcode 6). */
static const char tty_py[] =
    "m, s = os.openpty()\n"
    "rd, wr = os.pipe()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.setsid()\n"
    "    t = os.open(os.ttyname(s), os.O_RDWR)\n"
    "    out = ''\n"
    "    for label, req, ch in (('TIOCSTI', 0x5412, b'x'),\n"
    "                           ('TIOCSTI_high', 0x5412 | 1 << 32, b'x'),\n"
    "                           ('TIOCLINUX', 0x541c, b'\\x06'),\n"
    "                           ('TIOCLINUX_high', 0x541c | 1 << 32, b'\\x06')):\n"
    "        c = C.c_char(ch)\n"
    "        out += label + '=' + en(*sc(16, t, req, C.byref(c))) + '\\n'\n"
    "    os.write(wr, out.encode())\n"
    "    os._exit(0)\n"
    "os.close(wr)\n"
    "print(os.read(rd, 4096).decode(), end='')\n"
    "os.waitpid(pid, 0)\n";
static const char tty_out[] =
    "TIOCSTI=EPERM\nTIOCSTI_high=EPERM\nTIOCLINUX=EPERM\nTIOCLINUX_high=EPERM\n";

Test(escape_seccomp, no_input_can_be_pushed_into_a_terminal_whatever_the_high_bits)
{
    expect_py(tty_py, tty_out);
}

/* After each attempt, the personality now in force (queried with 0xffffffff), then back to
 * PER_LINUX. Bit 31 and bit 32 on top must not let a flag through: the kernel takes 32 bits
 * and treats only 0xffffffff as a query. setarch -R is the everyday attempt. */
static const char personality_py[] =
    "for label, v in (('ADDR_NO_RANDOMIZE', 0x0040000),\n"
    "                 ('READ_IMPLIES_EXEC', 0x0400000),\n"
    "                 ('ADDR_COMPAT_LAYOUT', 0x0200000),\n"
    "                 ('MMAP_PAGE_ZERO', 0x0100000),\n"
    "                 ('ADDR_LIMIT_32BIT', 0x0800000),\n"
    "                 ('PER_LINUX32|ADDR_NO_RANDOMIZE', 0x0008 | 0x0040000),\n"
    "                 ('bit31|ADDR_NO_RANDOMIZE', 0x80000000 | 0x0040000),\n"
    "                 ('bit32|ADDR_NO_RANDOMIZE', 1 << 32 | 0x0040000)):\n"
    "    r, e = sc(135, v)\n"
    "    now = sc(135, 0xffffffff)[0]\n"
    "    sc(135, 0)\n"
    "    print('%s=%s now=%#x' % (label, en(r, e), now), flush=True)\n"
    "print('setarch_R=%d' % os.waitstatus_to_exitcode(\n"
    "      os.system('setarch -R true 2>/dev/null')))\n"
    "T('query', 135, 0xffffffff)\n"
    "T('PER_LINUX', 135, 0)\n"
    "T('PER_LINUX32', 135, 0x0008)\n"
    "T('back_to_PER_LINUX', 135, 0)\n";
static const char personality_out[] =
    "ADDR_NO_RANDOMIZE=EPERM now=0x0\nREAD_IMPLIES_EXEC=EPERM now=0x0\n"
    "ADDR_COMPAT_LAYOUT=EPERM now=0x0\nMMAP_PAGE_ZERO=EPERM now=0x0\n"
    "ADDR_LIMIT_32BIT=EPERM now=0x0\nPER_LINUX32|ADDR_NO_RANDOMIZE=EPERM now=0x0\n"
    "bit31|ADDR_NO_RANDOMIZE=EPERM now=0x0\nbit32|ADDR_NO_RANDOMIZE=EPERM now=0x0\n"
    "setarch_R=1\nquery=ok\nPER_LINUX=ok\nPER_LINUX32=ok\nback_to_PER_LINUX=ok\n";

Test(escape_seccomp, personality_cannot_weaken_the_address_space)
{
    expect_py(personality_py, personality_out);
}

/* The kernel log is the host's: its size and its whole ring buffer, which any user may read
 * where kernel.dmesg_restrict is 0 (and where it is 1, the capability check would say EPERM
 * too: the proof below tells them apart). Only actions that change nothing. */
static const char syslog_py[] =
    "T('SIZE_BUFFER', 103, 10, None, 0)\n"
    "T('SIZE_UNREAD', 103, 9, None, 0)\n"
    "T('READ_ALL', 103, 3, C.create_string_buffer(1 << 16), 1 << 16)\n";
static const char syslog_out[] = "SIZE_BUFFER=EPERM\nSIZE_UNREAD=EPERM\nREAD_ALL=EPERM\n";

Test(escape_seccomp, the_kernel_log_cannot_be_read)
{
    expect_py(syslog_py, syslog_out);
}

/* A command may stack a filter of its own (here one that allows everything, installed by a
 * child with no_new_privs, as a command would), but not one with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER: the listener would answer for the system calls of the
 * command's children. With other flags, and with bit 32 on top, the flag is still refused;
 * the number of filters in force tells whether one was stacked. */
static const char listener_py[] =
    "ins = C.create_string_buffer(struct.pack('HBBI', 6, 0, 0, 0x7fff0000))\n" /* RET ALLOW */
    "prog = C.create_string_buffer(16)\n"
    "struct.pack_into('HxxxxxxQ', prog, 0, 1, C.addressof(ins))\n"
    "def filters():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('Seccomp_filters:'):\n"
    "            return int(line.split()[1])\n"
    "for label, flags in (('plain', 0), ('LOG', 2), ('NEW_LISTENER', 8),\n"
    "                     ('NEW_LISTENER|LOG', 8 | 2), ('NEW_LISTENER|TSYNC', 8 | 1),\n"
    "                     ('NEW_LISTENER|bit32', 1 << 32 | 8)):\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        sc(157, 38, 1, 0, 0, 0)\n" /* PR_SET_NO_NEW_PRIVS */
    "        before = filters()\n"
    "        T(label, 317, 1, flags, prog)\n" /* SECCOMP_SET_MODE_FILTER */
    "        print('  stacked=%d' % (filters() - before), flush=True)\n"
    "        os._exit(0)\n"
    "    os.waitpid(pid, 0)\n";
static const char listener_out[] =
    "plain=ok\n  stacked=1\nLOG=ok\n  stacked=1\n"
    "NEW_LISTENER=EPERM\n  stacked=0\n"
    "NEW_LISTENER|LOG=EPERM\n  stacked=0\n"
    "NEW_LISTENER|TSYNC=EPERM\n  stacked=0\n"
    "NEW_LISTENER|bit32=EPERM\n  stacked=0\n";

Test(escape_seccomp, a_filter_of_its_own_may_be_stacked_but_not_with_a_listener)
{
    expect_py(listener_py, listener_out);
}

/* Every family up to 45 (AF_MCTP, the last there is) and values past them, with high bits
 * set, or with high bits set over an allowed family (the kernel reads an int): only AF_UNIX,
 * AF_INET, AF_INET6 and AF_NETLINK open. AF_UNSPEC (0) apart: the policy has no rule for it,
 * no family 0 exists, so the kernel refuses it itself. A packet socket is refused by the
 * filter; a raw IP socket, which the policy allows, by the missing CAP_NET_RAW (these EPERM
 * are not the filter's). DCCP and SCTP are refused however they are asked for, with high
 * bits or SOCK_CLOEXEC on top; TCP, UDP, AF_UNIX and netlink sockets open. socketpair only
 * for AF_UNIX, with nothing in the high bits. */
static const char socket_py[] =
    "out = {}\n"
    "for f in list(range(1, 46)) + [46, 64, 255, 0x7fffffff, 0xffffffff, 1 << 32 | 1,\n"
    "                               1 << 32 | 2, 1 << 32 | 10, 1 << 32 | 16, -1]:\n"
    "    r, e = sc(41, f, 3 if f == 16 else 2, 0)\n" /* SOCK_RAW for netlink, else DGRAM */
    "    if r >= 0:\n"
    "        os.close(r)\n"
    "    out.setdefault(en(r, e), []).append(str(f) if 0 <= f < 256 else '%#x' % (f % 2**64))\n"
    "for k, v in out.items():\n"
    "    print(k + '=' + ' '.join(v))\n"
    "def S(label, *a):\n"
    "    r = T(label, 41, *a)\n"
    "    if r >= 0:\n"
    "        os.close(r)\n"
    "S('AF_UNSPEC', 0, 2, 0)\n"
    "S('packet', 17, 3, 0x300)\n" /* SOCK_RAW, htons(ETH_P_ALL) */
    "S('raw_icmp', 2, 3, 1)\n"
    "S('raw_icmpv6', 10, 3, 58)\n"
    "S('SOCK_DCCP', 2, 6, 0)\n"
    "S('SOCK_DCCP6|CLOEXEC', 10, 6 | 0x80000, 0)\n"
    "S('SOCK_DCCP|bit32', 2, 1 << 32 | 6, 0)\n"
    "S('IPPROTO_DCCP', 2, 1, 33)\n"
    "S('IPPROTO_SCTP', 2, 5, 132)\n"
    "S('IPPROTO_SCTP6', 10, 1, 132)\n"
    "S('IPPROTO_SCTP|bit32', 2, 5, 1 << 32 | 132)\n"
    "S('tcp', 2, 1, 0)\n"
    "S('udp', 2, 2, 17)\n"
    "S('tcp6', 10, 1, 6)\n"
    "S('udp6', 10, 2, 0)\n"
    "S('unix', 1, 1, 0)\n"
    "S('netlink_route', 16, 3, 0)\n"
    "sv = (C.c_int * 2)(-1, -1)\n"
    "for label, f, t in (('socketpair_unix', 1, 1), ('socketpair_inet', 2, 1),\n"
    "                    ('socketpair_netlink', 16, 3), ('socketpair_tipc', 30, 5),\n"
    "                    ('socketpair_unix|bit32', 1 << 32 | 1, 1)):\n"
    "    if T(label, 53, f, t, 0, sv) >= 0:\n"
    "        os.close(sv[0])\n"
    "        os.close(sv[1])\n";
#define SOCKET_FAMILIES_OUT(refused)                                                           \
    "ok=1 2 10 16\n" refused "=3 4 5 6 7 8 9 11 12 13 14 15 17 18 19 20 21 22 23 24 25 26 27 " \
                             "28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 64 255 "  \
                             "0x7fffffff 0xffffffff 0x100000001 0x100000002 0x10000000a "        \
                             "0x100000010 0xffffffffffffffff\n"
#define SOCKET_OUT(af, proto)                                                                  \
    SOCKET_FAMILIES_OUT(af)                                                                    \
    "AF_UNSPEC=EAFNOSUPPORT\npacket=" af "\nraw_icmp=EPERM\nraw_icmpv6=EPERM\n"                 \
    "SOCK_DCCP=" proto "\nSOCK_DCCP6|CLOEXEC=" proto "\nSOCK_DCCP|bit32=" proto "\n"            \
    "IPPROTO_DCCP=" proto "\nIPPROTO_SCTP=" proto "\nIPPROTO_SCTP6=" proto "\n"                 \
    "IPPROTO_SCTP|bit32=" proto "\n"                                                           \
    "tcp=ok\nudp=ok\ntcp6=ok\nudp6=ok\nunix=ok\nnetlink_route=ok\n"                            \
    "socketpair_unix=ok\nsocketpair_inet=" af "\nsocketpair_netlink=" af "\n"                   \
    "socketpair_tipc=" af "\nsocketpair_unix|bit32=" af "\n"
static const char socket_out[] = SOCKET_OUT("EAFNOSUPPORT", "EPROTONOSUPPORT");

Test(escape_seccomp, only_unix_inet_inet6_and_netlink_sockets_open)
{
    expect_py(socket_py, socket_out);
}

/* The workspace of a session, a host user's directory idmapped to the sandbox user: where a
 * set-id file would matter. `ws` is a "/tmp/sbx-test-ws-XXXXXX" template; remove_ws removes
 * it afterwards. `policy` as sbx_session_opts.seccomp_policy. */
static sbx_session *start_in_user_ws(const char *policy, char *ws)
{
    sbx_test_mkdtemp_ws(ws);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = ws;
    o.seccomp_policy = policy;
    return sbx_test_start(&o);
}

static void remove_ws(const char *ws)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", ws);
    char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
    char out[256];
    cr_expect_eq(sbx_test_run_host(argv, out, sizeof(out)), 0);
}

/* In a workspace idmapped from a regular host user, a setuid file made here would be a
 * setuid-that-user program on the host. The sandbox user owns the file, so each call would
 * otherwise succeed: chmod(1) first, as anyone would try, then every call that takes a mode,
 * with each bit. openat2 hides its mode in memory: ENOSYS (Linux 5.6 brought openat2: the
 * ENOSYS is the filter's). The file keeps its mode and nothing else is made. */
static const char setid_py[] =
    "import shutil, stat\n"
    "shutil.copy('/bin/true', 't')\n"
    "os.chmod('t', 0o755)\n"
    "fd = os.open('t', os.O_RDONLY)\n"
    "how = C.create_string_buffer(24)\n"
    "for b, bit in (('u', 0o4000), ('g', 0o2000)):\n"
    "    m = 0o755 | bit\n"
    "    print('chmod_cmd_%s=%d' % (b, os.waitstatus_to_exitcode(\n"
    "          os.system('chmod %s+s t 2>/dev/null' % b))), flush=True)\n"
    "    T('chmod_' + b, 90, b't', m)\n"
    "    T('fchmod_' + b, 91, fd, m)\n"
    "    T('fchmodat_' + b, 268, AT, b't', m)\n"
    "    T('fchmodat2_' + b, 452, AT, b't', m, 0)\n"
    "    T('creat_' + b, 85, b'c', m)\n"
    "    T('open_' + b, 2, b'o', os.O_CREAT | os.O_WRONLY, m)\n"
    "    T('openat_' + b, 257, AT, b'o', os.O_CREAT | os.O_WRONLY, m)\n"
    "    struct.pack_into('QQQ', how, 0, os.O_CREAT | os.O_WRONLY, m, 0)\n"
    "    T('openat2_' + b, 437, AT, b'o', how, 24)\n"
    "    T('mknod_' + b, 133, b'n', stat.S_IFREG | m, 0)\n"
    "    T('mknodat_' + b, 259, AT, b'n', stat.S_IFREG | m, 0)\n"
    "print('mode=%o' % stat.S_IMODE(os.stat('t').st_mode))\n"
    "print('files=' + ' '.join(sorted(os.listdir('.'))))\n";
#define SETID_OUT(b)                                                                           \
    "chmod_cmd_" b "=1\nchmod_" b "=EPERM\nfchmod_" b "=EPERM\nfchmodat_" b "=EPERM\n"           \
    "fchmodat2_" b "=EPERM\ncreat_" b "=EPERM\nopen_" b "=EPERM\nopenat_" b "=EPERM\n"           \
    "openat2_" b "=ENOSYS\nmknod_" b "=EPERM\nmknodat_" b "=EPERM\n"
static const char setid_out[] = SETID_OUT("u") SETID_OUT("g") "mode=755\nfiles=t\n";

Test(escape_seccomp, setid_bits_cannot_be_set)
{
    char ws[] = "/tmp/sbx-test-ws-XXXXXX";
    sbx_session *s = start_in_user_ws(NULL, ws);
    expect_py_in(s, NULL, "setid", setid_py, setid_out);
    sbx_session_free(s);
    remove_ws(ws);
}

/* `s` with every `from` replaced by `to` (malloc'd). */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to), n = 0;
    for (const char *p = s; (p = strstr(p, from)); p += lf)
        n++;
    char *out = malloc(strlen(s) + n * lt + 1);
    cr_assert_not_null(out);
    char *o = out;
    for (const char *p; (p = strstr(s, from)); s = p + lf) {
        memcpy(o, s, (size_t)(p - s));
        o += p - s;
        memcpy(o, to, lt);
        o += lt;
    }
    strcpy(o, s);
    return out;
}

/* Each errno the built-in policy answers with, and a marker in its place: an errno that none
 * of the calls above returns of itself (EDOM...), so that seeing it means the filter
 * answered, and not a capability check, Landlock or the kernel's own "no such family".
 * ENOSYS keeps its place: libc falls back from clone3 (posix_spawn, system) on ENOSYS only,
 * and with any other errno no command could start another. */
static const struct {
    const char *name;
    int marker;
    const char *marker_name;
} markers[] = {{"EPERM", EDOM, "EDOM"},
               {"EAFNOSUPPORT", ECHRNG, "ECHRNG"},
               {"EPROTONOSUPPORT", EL2NSYNC, "EL2NSYNC"}};

/* `text` (a policy when `rules`, else a program's output) with each errno of the filter
 * replaced by its marker. */
static char *mark(const char *text, int rules)
{
    char *s = strdup(text);
    cr_assert_not_null(s);
    for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
        char from[64], to[64];
        if (rules) {
            snprintf(from, sizeof(from), "errno:%s ", markers[i].name);
            snprintf(to, sizeof(to), "errno:%d ", markers[i].marker);
        } else {
            snprintf(from, sizeof(from), "%s", markers[i].name);
            snprintf(to, sizeof(to), "%s", markers[i].marker_name);
        }
        char *t = replace_all(s, from, to);
        free(s);
        s = t;
    }
    return s;
}

/* The attacks above; `marked`, when not NULL, is what one prints under the marker policy where
 * that is not simply its output marked: the lines where the refusal is not the filter's.
 * `as_user`: as the sandbox user in a host user's workspace, else as root inside. */
static const struct {
    const char *name, *body, *expected, *marked;
    int as_user;
} attacks[] = {
    {"keyring", keyring_py, keyring_out, NULL, 0},
    {"bpf/perf/userfaultfd", bpf_py, bpf_out, NULL, 0},
    {"modules/kexec/reboot/swap/acct", machine_py, machine_out, NULL, 0},
    {"mount table", mount_py, mount_out, NULL, 0},
    {"unshare/setns", unshare_py, unshare_out, NULL, 0},
    {"clone flags/clone3", clone_py, clone_out, NULL, 0},
    {"file handles", handle_py, handle_out, NULL, 0},
    {"ptrace/process_vm", ptrace_py, ptrace_out, NULL, 0},
    {"pidfd_getfd/kcmp/process_madvise/modify_ldt", pidfd_py, pidfd_out, NULL, 0},
    {"clock", clock_py, clock_out, NULL, 0},
    {"io_uring", io_uring_py, io_uring_out, NULL, 0},
    {"TIOCSTI/TIOCLINUX", tty_py, tty_out, NULL, 0},
    {"personality", personality_py, personality_out, NULL, 0},
    {"syslog", syslog_py, syslog_out, NULL, 0},
    {"NEW_LISTENER", listener_py, listener_out, NULL, 0},
    /* AF_UNSPEC and the raw IP sockets are refused by the kernel (no such family, no
     * CAP_NET_RAW), not by the filter: their lines stay. */
    {"socket families", socket_py, socket_out, SOCKET_OUT("ECHRNG", "EL2NSYNC"), 0},
    {"setid bits", setid_py, setid_out, NULL, 1},
};

/* An EPERM may come from the filter, or from a capability check (commands have none, not
 * even root inside, and in_userns cannot get them under the filter), or from Landlock; an
 * EAFNOSUPPORT from the filter or from a kernel without that family. Under the built-in
 * policy with a marker errno for each errno of its rules (a user policy: compiled at start,
 * no zygote), every attack above must print the marker wherever its test expects the errno:
 * then the filter is what refuses each of those calls, whatever else would also refuse it. */
Test(escape_seccomp, refusals_come_from_the_filter_not_from_missing_capabilities)
{
    X86_64_ONLY();
    char *policy = mark(sbx_seccomp_default_policy(), 1);
    char *unmarked = replace_all(policy, "errno:ENOSYS ", "");
    cr_assert_null(strstr(unmarked, "errno:E"), "an errno of the policy has no marker:\n%s",
                   unmarked);
    free(unmarked);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.seccomp_policy = policy;
    sbx_session *s = sbx_test_start(&o);
    char ws[] = "/tmp/sbx-test-ws-XXXXXX";
    sbx_session *u = start_in_user_ws(policy, ws);
    for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
        char *want = attacks[i].marked ? strdup(attacks[i].marked) : mark(attacks[i].expected, 0);
        expect_py_in(attacks[i].as_user ? u : s, attacks[i].as_user ? NULL : ROOT_IF_POSSIBLE,
                     attacks[i].name, attacks[i].body, want);
        free(want);
    }
    sbx_session_free(u);
    remove_ws(ws);
    sbx_session_free(s);
    free(policy);
}

/* Copies the abi_probe built next to the tests into the workspace, owned as the workspace
 * is, and runs it (as the command itself, not under sh) with `mode`: it is to mkdir
 * /tmp/made-by-<mode>. `*made` tells whether that directory appeared. */
static sbx_exec_result *run_abi_probe(const char *mode, int *made)
{
    X86_64_ONLY();
    const char *ws = sbx_session_workspace(S);
    struct stat st;
    cr_assert_eq(stat(ws, &st), 0);
    char dst[4096], script[256];
    snprintf(dst, sizeof(dst), "%s/abi_probe", ws);
    int in = open(sbx_test_bin("abi_probe"), O_RDONLY | O_CLOEXEC);
    cr_assert(in >= 0, "%s not built: %s", sbx_test_bin("abi_probe"), strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
    cr_assert(out >= 0, "%s: %s", dst, strerror(errno));
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    cr_assert_eq(n, 0);
    cr_assert_eq(fchmod(out, 0755), 0);
    if (geteuid() == 0)
        cr_assert_eq(fchown(out, st.st_uid, st.st_gid), 0);
    close(out);
    close(in);
    snprintf(script, sizeof(script), "exec /workspace/abi_probe %s /tmp/made-by-%s", mode,
             mode);
    sbx_exec_result *r = run(script);
    snprintf(script, sizeof(script), "test -d /tmp/made-by-%s && echo made", mode);
    sbx_exec_result *check = run(script);
    *made = strcmp((char *)check->out, "made\n") == 0;
    sbx_exec_result_free(check);
    return r;
}

/* A foreign-ABI system call must kill the command before it has any effect. */
static void expect_killed(const char *mode)
{
    int made;
    sbx_exec_result *r = run_abi_probe(mode, &made);
    cr_expect_lt(r->exit_code, 0, "a %s system call did not kill the command: exit %d, '%s'",
                 mode, r->exit_code, (char *)r->out);
    if (r->exit_code < 0)
        cr_expect(r->exit_code == -SIGSYS || r->exit_code == -SIGKILL,
                  "killed by signal %d, not by the filter", -r->exit_code);
    cr_expect_not(made, "the %s mkdir was made", mode);
    cr_expect_str_empty((char *)r->out);
    sbx_exec_result_free(r);
}

Test(escape_seccomp, native_system_calls_of_a_static_binary_work)
{
    int made;
    sbx_exec_result *r = run_abi_probe("native", &made);
    long pid = 0;
    cr_expect_eq(r->exit_code, 0, "stderr: %s", (char *)r->err);
    cr_expect_eq(sscanf((char *)r->out, "mkdir=0 getpid=%ld", &pid), 1, "%s", (char *)r->out);
    cr_expect_gt(pid, 1);
    cr_expect(made, "the native mkdir was not made");
    sbx_exec_result_free(r);
}

Test(escape_seccomp, an_i386_system_call_kills_the_command)
{
    expect_killed("i386");
}

Test(escape_seccomp, an_x32_system_call_kills_the_command)
{
    expect_killed("x32");
}

Test(escape_seccomp, ordinary_programs_still_work)
{
    /* glibc makes threads and posix_spawn with clone3 first, falling back to clone on ENOSYS;
     * fork and subprocess use clone and vfork without namespace flags. */
    sbx_exec_result *r = run("python3 - <<'EOF'\n"
                             "import os, subprocess, threading\n"
                             "seen = []\n"
                             "t = threading.Thread(target=lambda: seen.append(os.getpid()))\n"
                             "t.start(); t.join()\n"
                             "print('thread', seen == [os.getpid()])\n"
                             "pid = os.fork()\n"
                             "if pid == 0:\n"
                             "    os._exit(7)\n"
                             "print('fork', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
                             "pid = os.posix_spawn('/bin/sh', ['sh', '-c', 'exit 3'], os.environ)\n"
                             "print('spawn', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
                             "print('subprocess', subprocess.run(['sh', '-c', 'echo $((1+1))'],\n"
                             "      capture_output=True, text=True).stdout.strip())\n"
                             "EOF\n"
                             "ls / | grep -qx workspace && echo ls; sh -c 'echo $((1+1))'; "
                             "(sleep 0.1 & wait) && echo job; "
                             "printf 'b\\na\\n' | sort | tr '\\n' ' '; echo");
    cr_expect_eq(r->exit_code, 0, "stderr: %s", (char *)r->err);
    cr_expect_str_eq((char *)r->out,
                     "thread True\nfork 7\nspawn 3\nsubprocess 2\nls\n2\njob\na b \n",
                     "stderr: %s", (char *)r->err);
    sbx_exec_result_free(r);
}

Test(escape_seccomp, vsock_and_fd_stealing_are_refused)
{
    sbx_session *s = sbx_test_start(NULL);
    /* vsock reaches the hypervisor whatever the network namespace says; pidfd_getfd and kcmp
     * are ptrace by other means. */
    sbx_exec_result *r = sbx_test_sh(
        s, "python3 -c \"import ctypes, os\nl=ctypes.CDLL(None, use_errno=True)\n"
           "print('vsock', l.socket(40, 1, 0), ctypes.get_errno())\n"
           "print('vsock-high', l.syscall(41, 0x100000028, 1, 0), ctypes.get_errno())\n"
           "print('pidfd_getfd', l.syscall(438, 0, 0, 0), ctypes.get_errno())\n"
           "print('kcmp', l.syscall(312, os.getpid(), os.getpid(), 0, 0, 0), ctypes.get_errno())\"");
    cr_expect_str_eq((char *)r->out, "vsock -1 97\nvsock-high -1 97\npidfd_getfd -1 1\nkcmp -1 1\n",
                     "stderr: %s", (char *)r->err);
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

/* The agent's children, as host pids (the zygote is the one that stays). */
static size_t agent_children(pid_t agent, pid_t *out, size_t cap)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)agent, (int)agent);
    FILE *f = fopen(path, "re");
    cr_assert_not_null(f, "%s", path);
    size_t n = 0;
    if (fgets(buf, sizeof(buf), f))
        for (char *t = strtok(buf, " \n"); t && n < cap; t = strtok(NULL, " \n"))
            out[n++] = (pid_t)atoi(t);
    fclose(f);
    return n;
}

/* Commands of a session with the built-in policy come from the agent's zygote, which holds
 * the filter and Landlock once: each command has exactly one filter, and its parent's parent
 * is not PID 1. If the zygote dies, the agent forks workers itself and the commands load both
 * again: still one filter, still no_new_privs. */
Test(escape_seccomp, commands_have_one_filter_with_or_without_the_zygote)
{
    static const char script[] =
        "grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status; "
        "awk '/^PPid:/ { print \"grandparent is pid 1:\", $2 == 1 }' /proc/$PPID/status";
    sbx_exec_result_free(sbx_test_sh(S, "true")); /* the zygote comes once the agent idles */
    pid_t kids[16];
    size_t n = 0;
    for (int i = 0; i < 200 && n == 0; i++) {
        usleep(10 * 1000);
        n = agent_children(sbx_session_agent_pid(S), kids, 16);
    }
    cr_assert_eq(n, 1, "the agent should have one child left, its zygote (%zu)", n);
    sbx_exec_result *r = sbx_test_sh(S, script);
    cr_expect_str_eq((const char *)r->out, "NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n"
                                           "grandparent is pid 1: 0\n");
    sbx_exec_result_free(r);

    cr_assert_eq(kill(kids[0], SIGKILL), 0);
    for (int i = 0; i < 200 && agent_children(sbx_session_agent_pid(S), kids, 16) > 0; i++)
        usleep(10 * 1000);
    r = sbx_test_sh(S, script);
    cr_expect_str_eq((const char *)r->out, "NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n"
                                           "grandparent is pid 1: 1\n");
    sbx_exec_result_free(r);
}
