/* idmap.c — user namespace id maps, written by the parent (user_namespaces(7)).
 *
 * As root: sandbox ids 0..65535 map to uid_base..uid_base+65535 on the host, a range no host
 * account uses, so even sandbox "root" is nobody on the host. One more id, 65536, is the
 * agent's own: no command can ever run as it, so not even a command running as root inside
 * can signal, ptrace or prlimit the agent or the workers that supervise commands. setgroups stays allowed so the
 * agent can clear the supplementary groups inherited from the caller (otherwise a host gid
 * such as 0 would keep granting group access inside).
 * Unprivileged: only the caller's own uid/gid can be mapped, to the sandbox user; setgroups
 * must be denied first (the kernel requires it: CVE-2014-8989).
 *
 * A caller's workspace (as root) is an idmapped mount (mount_setattr(2), MOUNT_ATTR_IDMAP):
 * files of the directory's host owner appear as the sandbox user's, and files the sandbox
 * user creates land on disk owned by that host owner, so `sbx run -w ./project` works on a
 * directory a regular user owns without any chown. Other host ids show as nobody inside.
 * Only regular ids (1000 and up) are mapped this way (see sbx__ns_idmap_workspace).
 */
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ns.h"
#include "wire_msgs.h"
#include <sbx/session.h>

void sbx__ns_ids(struct sbx_backend_ids *out)
{
    out->range_mapped = geteuid() == 0;
    out->sandbox_uid = SBX_SANDBOX_UID;
    out->sandbox_gid = SBX_SANDBOX_UID;
}

static int write_proc(pid_t pid, const char *file, const char *data, sbx_error **err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "open %s", path);
    int r = sbx__write_full(fd, data, strlen(data));
    int e = errno;
    close(fd);
    if (r < 0)
        return sbx_err(err, e == EPERM ? SBX_EPERM : SBX_EBACKEND, e, "start",
                       "write '%.40s' to %s", data, path);
    return 0;
}

int sbx__ns_write_idmaps(pid_t pid, int range_mapped, uint32_t uid_base, sbx_error **err)
{
    char map[64];
    int r;
    if (range_mapped) {
        /* 0..65535 for the sandbox's users, and 65536 for the agent alone. */
        snprintf(map, sizeof(map), "0 %u %u\n", uid_base, SBX_AGENT_UID + 1);
        r = write_proc(pid, "uid_map", map, err);
        if (r == 0)
            r = write_proc(pid, "gid_map", map, err);
        return r;
    }
    r = write_proc(pid, "setgroups", "deny", err);
    if (r == 0) {
        snprintf(map, sizeof(map), "%u %u 1\n", SBX_SANDBOX_UID, (unsigned)geteuid());
        r = write_proc(pid, "uid_map", map, err);
    }
    if (r == 0) {
        snprintf(map, sizeof(map), "%u %u 1\n", SBX_SANDBOX_UID, (unsigned)getegid());
        r = write_proc(pid, "gid_map", map, err);
    }
    return r;
}

/* Child of idmap_userns: waits, with every signal still blocked, to be SIGKILLed. It shares
 * the parent's memory (CLONE_VM, own small stack) and runs no library code. */
static int idmap_child(void *arg)
{
    (void)arg;
    for (;;)
        syscall(SYS_pause);
    return 0;
}

/* A user namespace that exists only to describe an idmapped mount: its maps say "host owner
 * X appears as Y". Its owner process is released by SIGKILL through a pidfd, never by a pipe
 * EOF (any fork elsewhere in the embedder could hold a pipe end open forever), and signals
 * stay blocked in it, so none of the embedder's handlers ever run there. */
static int idmap_userns(uint32_t from_uid, uint32_t from_gid, uint32_t to_id, sbx_error **err)
{
    size_t stack_len = 16 * 1024;
    void *stack = mmap(NULL, stack_len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return sbx_err(err, SBX_ENOMEM, errno, "start", "stack for the workspace id map");
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int pidfd = -1;
    long pid = clone(idmap_child, (char *)stack + stack_len,
                     CLONE_VM | CLONE_NEWUSER | CLONE_PIDFD, NULL, &pidfd);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        munmap(stack, stack_len);
        return sbx__ns_userns_error(e, "clone for the workspace id map", err);
    }
    char map[64], path[64];
    int r;
    snprintf(map, sizeof(map), "%u %u 1\n", from_uid, to_id);
    r = write_proc((pid_t)pid, "uid_map", map, err);
    if (r == 0) {
        snprintf(map, sizeof(map), "%u %u 1\n", from_gid, to_id);
        r = write_proc((pid_t)pid, "gid_map", map, err);
    }
    int fd = -1;
    if (r == 0) {
        snprintf(path, sizeof(path), "/proc/%ld/ns/user", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            r = sbx_err(err, SBX_EBACKEND, errno, "start", "open %s", path);
    }
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL) < 0 && errno == EINTR)
        ;
    close(pidfd);
    munmap(stack, stack_len); /* only once the child is gone: it ran on this stack */
    return r < 0 ? r : fd;
}

int sbx__ns_idmap_workspace(int tree_fd, uint32_t uid_base, sbx_error **err)
{
    struct stat st;
    uint32_t sandbox_id = uid_base + SBX_SANDBOX_UID;
    if (fstat(tree_fd, &st) < 0)
        return sbx_err(err, SBX_EBACKEND, errno, "start", "stat the workspace");
    if (st.st_uid == sandbox_id && st.st_gid == sandbox_id)
        return 0; /* already the sandbox user's (a workspace sbx made) */
    /* Only a regular user's own directory is handed over, never one owned by a system id
     * (below 1000: root, daemons, groups like disk or shadow): a set-id program left there
     * would run with that id on the host. Such a workspace is bound as it is: readable, not
     * writable, by the sandbox user. (The seccomp policy refuses set-id bits as well.) */
    if (st.st_uid < 1000 || st.st_gid < 1000)
        return 1;
    int ns = idmap_userns((uint32_t)st.st_uid, (uint32_t)st.st_gid, sandbox_id, err);
    if (ns < 0)
        return ns;
    struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)ns};
    int r = mount_setattr(tree_fd, "", AT_EMPTY_PATH, &a, sizeof(a));
    int e = errno;
    close(ns);
    if (r < 0 && e != EINVAL && e != EOPNOTSUPP && e != ENOSYS)
        return sbx_err(err, SBX_EBACKEND, e, "start", "idmap the workspace");
    /* EINVAL/EOPNOTSUPP: the filesystem cannot be idmapped (NFS, tmpfs before 6.3); the
     * workspace is then bound with its host ownership, as a plain bind. */
    return r < 0 ? 1 : 0;
}
