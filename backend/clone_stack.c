/* clone_stack.c — clone3(2) with the child on a stack of its own, calling fn(arg) there.
 *
 * clone3 lets the child start on a new stack, but it returns into the same code as the
 * parent, whose stack frame the child no longer has: the switch to fn must happen in the
 * same instructions as the system call. glibc has such a trampoline for clone(2) only, so
 * here is one for clone3 on x86_64; other architectures use clone(2) (no CLONE_INTO_CGROUP
 * there). With CLONE_VM the child must run nothing but raw system calls. */
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ns.h"

long sbx__clone3_on_stack(struct clone_args *ca, int (*fn)(void *), void *arg)
{
#if defined(__x86_64__)
    register long rax __asm__("rax") = SYS_clone3;
    register struct clone_args *rdi __asm__("rdi") = ca;
    register size_t rsi __asm__("rsi") = sizeof(*ca);
    register int (*r12)(void *) __asm__("r12") = fn;
    register void *r13 __asm__("r13") = arg;
    /* Child: rsp is the top of the new stack (16-byte aligned), so `call` leaves fn the
     * alignment the ABI promises; fn's return value is the exit status. */
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "xor %%ebp, %%ebp\n\t"
                     "mov %%r13, %%rdi\n\t"
                     "call *%%r12\n\t"
                     "mov %%eax, %%edi\n\t"
                     "mov $60, %%eax\n\t" /* SYS_exit */
                     "syscall\n\t"
                     "hlt\n"
                     "1:\n\t"
                     : "+r"(rax)
                     : "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
                     : "rcx", "r11", "memory");
    if (rax < 0) {
        errno = (int)-rax;
        return -1;
    }
    return rax;
#else
    int flags = (int)ca->flags | (int)ca->exit_signal;
    int *pidfd = (int *)(uintptr_t)ca->pidfd;
    return clone(fn, (char *)(uintptr_t)ca->stack + ca->stack_size, flags, arg, pidfd);
#endif
}
