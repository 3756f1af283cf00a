/* abi_probe.c — a static helper for test_seccomp.c: makes mkdir(DIR, 0755) then getpid()
 * through one system call ABI of x86_64 and prints "mkdir=R getpid=P" (raw kernel returns,
 * -errno on failure).
 *
 *   abi_probe native DIR   the normal `syscall` instruction
 *   abi_probe i386 DIR     `int $0x80` with i386 numbers (mkdir 39, getpid 20)
 *   abi_probe x32 DIR      `syscall` with __X32_SYSCALL_BIT (0x40000000) in the number
 *
 * A filter written for x86_64 numbers says nothing about the other two: i386's 39 is mkdir
 * where x86_64's is getpid. Built static and non-PIE (tests/static_program.cmake) so the
 * path handed to int $0x80, which sees only the low 32 bits of each register, lies below
 * 4 GiB. Exit status: 0 after printing, 2 on bad usage, 77 on other architectures. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)

#define X32_BIT 0x40000000L

static char path[4096]; /* .bss of a non-PIE binary: a 32-bit address */

static long via_syscall(long nr, long a, long b)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return r;
}

static long via_int80(long nr, long a, long b)
{
    long r;
    /* The compat entry zeroes r8-r11 on the way back. */
    __asm__ volatile("int $0x80"
                     : "=a"(r)
                     : "a"(nr), "b"(a), "c"(b)
                     : "r8", "r9", "r10", "r11", "memory");
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 3 || strlen(argv[2]) >= sizeof(path)) {
        fprintf(stderr, "usage: abi_probe native|i386|x32 DIR\n");
        return 2;
    }
    strcpy(path, argv[2]);
    if ((uintptr_t)path > 0xffffffffu) {
        fprintf(stderr, "abi_probe: built as PIE, %p is out of int $0x80's reach\n",
                (void *)path);
        return 2;
    }
    long made, pid;
    if (strcmp(argv[1], "native") == 0) {
        made = via_syscall(83, (long)path, 0755);
        pid = via_syscall(39, 0, 0);
    } else if (strcmp(argv[1], "i386") == 0) {
        made = via_int80(39, (long)path, 0755);
        pid = via_int80(20, 0, 0);
    } else if (strcmp(argv[1], "x32") == 0) {
        made = via_syscall(X32_BIT | 83, (long)path, 0755);
        pid = via_syscall(X32_BIT | 39, 0, 0);
    } else {
        fprintf(stderr, "abi_probe: unknown ABI '%s'\n", argv[1]);
        return 2;
    }
    printf("mkdir=%ld getpid=%ld\n", made, pid);
    return 0;
}

#else

int main(void)
{
    fprintf(stderr, "abi_probe: x86_64 only\n");
    return 77;
}

#endif
