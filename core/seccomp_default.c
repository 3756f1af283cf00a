/* seccomp_default.c — the built-in policy for untrusted code. Everything not listed is
 * allowed; what is listed is refused with an errno (not killed), so a program that probes a
 * feature degrades instead of dying. Foreign ABIs (i386, x32) are killed by the compiler,
 * whatever the policy says, since a filter for one ABI is no filter for another. */
#include <pthread.h>
#include <stdio.h>

#include "core.h"

static const char *base_policy(void)
{
    return "# sbx default seccomp policy for untrusted code\n"
           "default allow\n"
           "# the kernel keyring is not namespaced\n"
           "errno:EPERM keyctl\nerrno:EPERM add_key\nerrno:EPERM request_key\n"
           "# kernel attack surface with a history of escapes\n"
           "errno:EPERM bpf\nerrno:EPERM perf_event_open\nerrno:EPERM userfaultfd\n"
           "errno:EPERM io_uring_setup\nerrno:EPERM io_uring_enter\nerrno:EPERM io_uring_register\n"
           "# the machine itself\n"
           "errno:EPERM kexec_load\nerrno:EPERM kexec_file_load\nerrno:EPERM init_module\n"
           "errno:EPERM finit_module\nerrno:EPERM delete_module\nerrno:EPERM reboot\n"
           "errno:EPERM swapon\nerrno:EPERM swapoff\nerrno:EPERM acct\n"
           "errno:EPERM clock_settime\nerrno:EPERM clock_adjtime\nerrno:EPERM settimeofday\n"
           "errno:EPERM adjtimex\n"
           "# mounts and namespaces: the sandbox's layout is fixed\n"
           "errno:EPERM mount\nerrno:EPERM umount2\nerrno:EPERM pivot_root\nerrno:EPERM chroot\n"
           "errno:EPERM fsopen\nerrno:EPERM fsmount\nerrno:EPERM fsconfig\nerrno:EPERM fspick\n"
           "errno:EPERM move_mount\nerrno:EPERM open_tree\nerrno:EPERM mount_setattr\n"
           "errno:EPERM unshare\nerrno:EPERM setns\n"
           "# clone3 passes its flags in memory, out of a filter's reach: libc falls back to\n"
           "# clone, whose namespace flags are refused here\n"
           "errno:ENOSYS clone3\n"
           "errno:EPERM clone arg0 &0x10000000 == 0x10000000\n"  /* CLONE_NEWUSER */
           "errno:EPERM clone arg0 &0x00020000 == 0x00020000\n"  /* CLONE_NEWNS */
           "errno:EPERM clone arg0 &0x20000000 == 0x20000000\n"  /* CLONE_NEWPID */
           "errno:EPERM clone arg0 &0x40000000 == 0x40000000\n"  /* CLONE_NEWNET */
           "errno:EPERM clone arg0 &0x04000000 == 0x04000000\n"  /* CLONE_NEWUTS */
           "errno:EPERM clone arg0 &0x08000000 == 0x08000000\n"  /* CLONE_NEWIPC */
           "errno:EPERM clone arg0 &0x02000000 == 0x02000000\n"  /* CLONE_NEWCGROUP */
           "errno:EPERM clone arg0 &0x00000080 == 0x00000080\n"  /* CLONE_NEWTIME */
           "# file handles bypass the mount tree\n"
           "errno:EPERM open_by_handle_at\nerrno:EPERM name_to_handle_at\n"
           "# tracing other processes (allowed with the ptrace switch, for debuggers)\n"
           "errno:EPERM ptrace\nerrno:EPERM process_vm_readv\nerrno:EPERM process_vm_writev\n"
           "errno:EPERM pidfd_getfd\nerrno:EPERM kcmp\nerrno:EPERM process_madvise\n"
           "# segment descriptors: old kernel bugs, no use in a sandbox\n"
           "errno:EPERM modify_ldt\n"
           "# the kernel log is the host's\n"
           "errno:EPERM syslog\n"
           "# a filter of its own may add rules, but not a listener that would answer for its\n"
           "# children's system calls (SECCOMP_FILTER_FLAG_NEW_LISTENER)\n"
           "errno:EPERM seccomp arg1 &0x8 == 0x8\n"
           "# sockets: only AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK. Every other family is\n"
           "# refused, so none makes the kernel load a module (DCCP, RDS, X.25...) and vsock\n"
           "# does not reach the hypervisor; nor do the DCCP and SCTP protocols of AF_INET.\n"
           "# A value with high bits set is refused whatever its low bits (fails closed).\n"
           "errno:EAFNOSUPPORT socket arg0 > 16\n"
           "errno:EAFNOSUPPORT socket arg0 == 3\n"
           "errno:EAFNOSUPPORT socket arg0 &0xfffffffffffffffc == 4\n" /* 4-7 */
           "errno:EAFNOSUPPORT socket arg0 &0xfffffffffffffffe == 8\n" /* 8-9 */
           "errno:EAFNOSUPPORT socket arg0 == 11\n"
           "errno:EAFNOSUPPORT socket arg0 &0xfffffffffffffffc == 12\n" /* 12-15 */
           "errno:EAFNOSUPPORT socketpair arg0 != 1\n"
           "errno:EPROTONOSUPPORT socket arg1 &0xf == 6\n"             /* SOCK_DCCP */
           "errno:EPROTONOSUPPORT socket arg2 &0xffffffff == 33\n"     /* IPPROTO_DCCP */
           "errno:EPROTONOSUPPORT socket arg2 &0xffffffff == 132\n"    /* IPPROTO_SCTP */
           "# pushing input into a terminal: only the low 32 bits of the request count\n"
           "# (CVE-2019-10063)\n"
           "errno:EPERM ioctl arg1 &0xffffffff == 0x5412\n" /* TIOCSTI */
           "errno:EPERM ioctl arg1 &0xffffffff == 0x541c\n" /* TIOCLINUX */
           "errno:EPERM ioctl arg1 &0xffffffff == 0x5423\n" /* TIOCSETD: line disciplines */
           "# setuid/setgid bits: a workspace may be a host user's directory, idmapped to the\n"
           "# sandbox user, and a set-id program left there would run as that user on the host.\n"
           "# openat2 hides its mode in memory, out of a filter's reach: libc falls back\n"
           "errno:EPERM chmod arg1 &0x800 == 0x800\nerrno:EPERM chmod arg1 &0x400 == 0x400\n"
           "errno:EPERM fchmod arg1 &0x800 == 0x800\nerrno:EPERM fchmod arg1 &0x400 == 0x400\n"
           "errno:EPERM fchmodat arg2 &0x800 == 0x800\nerrno:EPERM fchmodat arg2 &0x400 == 0x400\n"
           "errno:EPERM creat arg1 &0x800 == 0x800\nerrno:EPERM creat arg1 &0x400 == 0x400\n"
           "errno:EPERM fchmodat2 arg2 &0x800 == 0x800\nerrno:EPERM fchmodat2 arg2 &0x400 == 0x400\n"
           "errno:EPERM mknod arg1 &0x800 == 0x800\nerrno:EPERM mknod arg1 &0x400 == 0x400\n"
           "errno:EPERM mknodat arg2 &0x800 == 0x800\nerrno:EPERM mknodat arg2 &0x400 == 0x400\n"
           "errno:EPERM open arg2 &0x800 == 0x800\nerrno:EPERM open arg2 &0x400 == 0x400\n"
           "errno:EPERM openat arg3 &0x800 == 0x800\nerrno:EPERM openat arg3 &0x400 == 0x400\n"
           "errno:ENOSYS openat2\n"
           "# personalities that weaken the address space: see personality_rules()\n";
}

/* personality(2) takes the new persona in the low 32 bits and treats exactly 0xffffffff as a
 * query. With masked equality alone (one comparison per argument and rule), refusing "a
 * weakening flag, unless this is the query" is done in two parts: a flag with bit 31 clear
 * (no real persona sets bit 31), and any value with bit 31 set that clears some other bit
 * (all of them but the query). Short rules matter: the filter is compiled per command. */
static size_t personality_rules(char *buf, size_t cap)
{
    static const unsigned long flags[] = {0x0020000,  /* UNAME26 */
                                          0x0040000,  /* ADDR_NO_RANDOMIZE */
                                          0x0400000,  /* READ_IMPLIES_EXEC */
                                          0x0200000,  /* ADDR_COMPAT_LAYOUT */
                                          0x0100000,  /* MMAP_PAGE_ZERO */
                                          0x0800000}; /* ADDR_LIMIT_32BIT */
    const unsigned long bit31 = 0x80000000ul;
    size_t n = 0;
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]) + 31; i++) {
        unsigned long mask, value;
        if (i < sizeof(flags) / sizeof(flags[0])) {
            mask = flags[i] | bit31;
            value = flags[i];
        } else {
            mask = bit31 | (1ul << (i - sizeof(flags) / sizeof(flags[0])));
            value = bit31;
        }
        int k = snprintf(buf + n, cap - n, "errno:EPERM personality arg0 &0x%lx == 0x%lx\n",
                         mask, value);
        if (k < 0 || (size_t)k >= cap - n) {
            buf[n] = '\0'; /* never leave half a rule */
            return n;
        }
        n += (size_t)k;
    }
    return n;
}

static char policy[16384];

static void build_policy(void)
{
    size_t n = (size_t)snprintf(policy, sizeof(policy), "%s", base_policy());
    personality_rules(policy + n, sizeof(policy) - n);
}

const char *sbx_seccomp_default_policy(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_policy);
    return policy;
}
