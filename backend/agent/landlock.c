/* landlock.c — a second wall around what a command may write.
 *
 * The mount table already makes the system dirs, / and /dev read-only. Landlock stands behind
 * it for whatever the mount flags leave open to the ids' permissions (/proc files, the device
 * nodes bound in /dev, a mount flag gone wrong): the command may read and execute anything
 * under / (the root only holds what sbx put there), and write, create, remove, rename into or
 * truncate only beneath the writable places: /tmp, /dev/shm, /dev/pts, /dev/{null,zero,tty},
 * and every read-write mount the session made (the workspace, the caller's read-write
 * binds). Those mounts are taken from /proc/self/mountinfo rather than from CONFIG: it is the
 * layout as built, so a bind made read-only or an ephemeral workspace needs no second
 * description here.
 *
 * Runs in the command's child (exec_worker.c), which shares the worker's memory until execve:
 * no malloc, only the stack. Landlock needs no_new_privs first, and its calls must come
 * before the seccomp filter (which does not know them). The ABI is probed each time: the
 * best one the kernel has decides which rights are handled; a right an older ABI does not
 * know cannot be refused, which is all such a kernel can do.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"

/* Debian 12's kernel headers stop at ABI 2. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif

int sbx_agent_landlock_abi = -1;

#define FS_READ                                                                                \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
/* Making device nodes is allowed nowhere (not in FS_WRITE, but handled): a user namespace
 * cannot make them anyway, and this makes it hold even on a kernel that would let it. */
#define FS_WRITE                                                                               \
    (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |                           \
     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | \
     LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM | \
     LANDLOCK_ACCESS_FS_REFER | LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)
#define FS_HANDLED                                                                             \
    (FS_READ | FS_WRITE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK)
/* The only rights a rule on a non-directory may carry (EINVAL otherwise). */
#define FS_FILE                                                                                \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* The rights each ABI added: a ruleset may only handle rights its kernel knows. */
static uint64_t handled_for(int abi)
{
    uint64_t h = FS_HANDLED;
    if (abi < 2)
        h &= ~(uint64_t)LANDLOCK_ACCESS_FS_REFER; /* ABI 1 refuses every rename across dirs */
    if (abi < 3)
        h &= ~(uint64_t)LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi < 5)
        h &= ~(uint64_t)LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return h;
}

static int add_rule(int ruleset, int fd, uint64_t access)
{
    struct landlock_path_beneath_attr pb = {.allowed_access = access, .parent_fd = fd};
    return (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
}

enum kind { KIND_DIR, KIND_FILE, KIND_PROBE };

/* Allows writing beneath `path`, a directory, a file, or either (KIND_PROBE: then a device
 * node gets no rule; the harmless ones are listed by name). Symlinks are never followed, so
 * a link planted by an earlier command cannot widen the rule. A place this user cannot reach
 * by that path gets no rule either: writing there stays refused. */
static int allow_write(int ruleset, uint64_t handled, const char *path, enum kind kind)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC,
                           .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
    if (fd < 0)
        return errno == ENOENT || errno == EACCES || errno == ENOTDIR || errno == ELOOP ? 0 : -1;
    int r = 0;
    if (kind == KIND_PROBE) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            r = -1;
        else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
            r = 1; /* no rule */
        else
            kind = S_ISDIR(st.st_mode) ? KIND_DIR : KIND_FILE;
    }
    if (r == 0) {
        uint64_t access = (FS_READ | FS_WRITE) & handled;
        r = add_rule(ruleset, fd, kind == KIND_DIR ? access : access & FS_FILE);
    }
    int e = errno;
    close(fd);
    errno = e;
    return r < 0 ? -1 : 0;
}

/* Always writable. /dev/ptmx is a symlink into /dev/pts, which covers it. */
static const struct {
    const char *path;
    enum kind kind;
} fixed[] = {{"/tmp", KIND_DIR},       {"/dev/shm", KIND_DIR},   {"/dev/pts", KIND_DIR},
             {"/dev/null", KIND_FILE}, {"/dev/zero", KIND_FILE}, {"/dev/tty", KIND_FILE}};

/* `path` is `dir` or below it. */
static int beneath(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* One mountinfo line: "id parent maj:min root mountpoint opts [optional...] - fstype ...".
 * A read-write mount is writable, except the kernel's pseudo filesystems, / and what sbx
 * builds in /dev (never meant to be written, whatever their flags: the writable parts are in
 * `fixed`). Mounts beneath a writable directory already are: a rule covers the submounts
 * below it, and each rule costs system calls in every command's start. */
static int allow_mount(int ruleset, uint64_t handled, char *line)
{
    char *field[6], *save = NULL;
    for (int i = 0; i < 6; i++)
        if (!(field[i] = strtok_r(i ? NULL : line, " ", &save)))
            return 0;
    const char *fstype = NULL;
    for (char *t = strtok_r(NULL, " ", &save); t; t = strtok_r(NULL, " ", &save))
        if (strcmp(t, "-") == 0) {
            fstype = strtok_r(NULL, " ", &save);
            break;
        }
    char *mp = field[4];
    const char *opts = field[5];
    if (!fstype || strncmp(opts, "rw", 2) != 0 || (opts[2] != ',' && opts[2] != '\0'))
        return 0;
    if (strcmp(fstype, "proc") == 0 || strcmp(fstype, "sysfs") == 0)
        return 0;
    unescape(mp);
    if (strcmp(mp, "/") == 0 || beneath(mp, "/dev"))
        return 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (fixed[i].kind == KIND_DIR && beneath(mp, fixed[i].path))
            return 0;
    return allow_write(ruleset, handled, mp, KIND_PROBE);
}

static int allow_rw_mounts(int ruleset, uint64_t handled)
{
    char buf[16384];
    size_t have = 0;
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = 0;
    for (;;) {
        ssize_t k = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            r = -1;
            break;
        }
        have += (size_t)k;
        buf[have] = '\0';
        char *line = buf, *nl;
        while (r == 0 && (nl = strchr(line, '\n'))) {
            *nl = '\0';
            r = allow_mount(ruleset, handled, line);
            line = nl + 1;
        }
        if (r < 0)
            break;
        size_t rest = have - (size_t)(line - buf);
        if (k == 0) {
            if (rest)
                r = allow_mount(ruleset, handled, line);
            break;
        }
        if (rest == sizeof(buf) - 1) {
            errno = ENAMETOOLONG; /* one line larger than the buffer: refuse, not guess */
            r = -1;
            break;
        }
        memmove(buf, line, rest);
        have = rest;
    }
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* The ruleset built once by the agent after the root is assembled (close-on-exec, so no
 * command ever holds it), or -1. */
static int prepared = -1;

static int build(int *out);

int sbx_agent_landlock_prepare(void)
{
    int fd = -1;
    int r = build(&fd);
    if (r == 0)
        prepared = fd;
    return r;
}

int sbx_agent_landlock(void)
{
    if (prepared >= 0)
        return (int)syscall(SYS_landlock_restrict_self, prepared, 0);
    if (sbx_agent_landlock_abi == 0)
        return 0;
    int fd = -1;
    if (build(&fd) < 0)
        return -1;
    if (fd < 0)
        return 0;
    int r = (int)syscall(SYS_landlock_restrict_self, fd, 0);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* Builds the ruleset from the sandbox's mount table; *out stays -1 without Landlock. */
static int build(int *out)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0) {
        if (errno != ENOSYS && errno != EOPNOTSUPP)
            return -1;
        /* Not built into this kernel, or not enabled at boot: the mount table and the
         * seccomp filter are the walls then. Recorded, never fatal. */
        sbx_agent_landlock_abi = 0;
        return 0;
    }
    sbx_agent_landlock_abi = (int)abi;
    uint64_t handled = handled_for((int)abi);
    struct landlock_ruleset_attr attr = {.handled_access_fs = handled};
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset < 0)
        return -1;
    int r = 0;
    int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0 || add_rule(ruleset, root, FS_READ & handled) < 0)
        r = -1;
    if (root >= 0) {
        int e = errno;
        close(root);
        errno = e;
    }
    for (size_t i = 0; r == 0 && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        r = allow_write(ruleset, handled, fixed[i].path, fixed[i].kind);
    if (r == 0)
        r = allow_rw_mounts(ruleset, handled);
    if (r == 0) {
        *out = ruleset;
        return 0;
    }
    int e = errno;
    close(ruleset);
    errno = e;
    return r;
}
