/* spawn.c — the variants that start the case's command as a child process: plain (the fork+exec
 * baseline) or under a wrapper program (unshare, bwrap, firejail, sbx run).
 *
 * Every one goes through the same posix_spawn + waitpid, so the difference between a wrapper and
 * the baseline is the wrapper's own cost. posix_spawn (CLONE_VFORK in glibc) also reports a
 * failed exec as its return value instead of an exit status of 127 that could pass for the
 * command's own.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

struct spawn_state {
    char path[PATH_MAX]; /* what is executed */
    const char **argv;   /* borrowed strings: the wrapper's args and the command */
    int devnull_fd;
    posix_spawn_file_actions_t quiet; /* stdin, stdout, stderr on /dev/null */
};

static int is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Finds `name` as execvp would; a name with a slash is taken as is. */
static int which(const char *name, char *path, size_t path_len)
{
    if (strchr(name, '/')) {
        snprintf(path, path_len, "%s", name);
        return is_executable(path) ? 0 : -1;
    }
    const char *dirs = getenv("PATH");
    if (!dirs || !*dirs)
        dirs = "/usr/local/bin:/usr/bin:/bin";
    for (const char *d = dirs;; d++) {
        size_t dir_len = strcspn(d, ":");
        int n = dir_len ? snprintf(path, path_len, "%.*s/%s", (int)dir_len, d, name)
                        : snprintf(path, path_len, "./%s", name);
        if (n > 0 && (size_t)n < path_len && is_executable(path))
            return 0;
        d += dir_len;
        if (!*d)
            return -1;
    }
}

/* The program next to /proc/self/exe: the sbx built alongside sbx-bench. */
static int beside_self(const char *name, char *path, size_t path_len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    int r = snprintf(path, path_len, "%s/%s", self, name);
    return r > 0 && (size_t)r < path_len && is_executable(path) ? 0 : -1;
}

static int locate(const struct bench_wrapper *w, const char *const *cmd, char *path, char *why)
{
    if (!w) {
        if (which(cmd[0], path, PATH_MAX) < 0)
            return bench_why(why, "'%s' not found or not executable", cmd[0]);
        return 0;
    }
    if (w->beside_self && beside_self(w->program, path, PATH_MAX) == 0)
        return 0;
    if (which(w->program, path, PATH_MAX) == 0)
        return 0;
    bench_why(why, "%s not found %sin PATH", w->program,
              w->beside_self ? "next to sbx-bench nor " : "");
    return BENCH_ABSENT;
}

static void spawn_close(void *state)
{
    struct spawn_state *st = state;
    if (!st)
        return;
    posix_spawn_file_actions_destroy(&st->quiet);
    if (st->devnull_fd >= 0)
        close(st->devnull_fd);
    free(st->argv);
    free(st);
}

static int spawn_open(const struct bench_variant *v, const char *const *cmd, void **state,
                      char *why)
{
    const struct bench_wrapper *w = v->data;
    struct spawn_state *st = calloc(1, sizeof(*st));
    if (!st)
        return bench_why(why, "out of memory");
    st->devnull_fd = -1;
    posix_spawn_file_actions_init(&st->quiet);
    int r = locate(w, cmd, st->path, why);
    if (r != 0) {
        spawn_close(st);
        return r;
    }
    size_t n_args = 0, n_cmd = 0;
    while (w && w->args[n_args])
        n_args++;
    while (cmd[n_cmd])
        n_cmd++;
    st->argv = calloc(1 + n_args + n_cmd + 1, sizeof(*st->argv));
    st->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (!st->argv || st->devnull_fd < 0) {
        r = bench_why(why, "%s", st->argv ? "open /dev/null failed" : "out of memory");
        spawn_close(st);
        return r;
    }
    size_t k = 0;
    if (w)
        st->argv[k++] = st->path;
    for (size_t i = 0; i < n_args; i++)
        st->argv[k++] = w->args[i];
    for (size_t i = 0; i < n_cmd; i++)
        st->argv[k++] = cmd[i];
    /* dup2 onto 0-2 clears close-on-exec there; the /dev/null fd itself still closes. */
    for (int fd = 0; fd <= 2; fd++)
        posix_spawn_file_actions_adddup2(&st->quiet, st->devnull_fd, fd);
    *state = st;
    return 0;
}

/* Spawns and reaps; 0 with the wait status, or -1 with the reason. */
static int spawn_wait(struct spawn_state *st, const posix_spawn_file_actions_t *fa, int *status,
                      char *why)
{
    pid_t pid;
    int r = posix_spawn(&pid, st->path, fa, NULL, (char *const *)st->argv, environ);
    if (r != 0) {
        errno = r;
        return bench_why(why, "cannot start %s: %m", st->path);
    }
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR)
            return bench_why(why, "waitpid: %m");
    }
    return 0;
}

static int exit_code_of(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int signal_of(int status)
{
    return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/* The timed runs throw stderr away; after a failure, one more untimed run keeps it in a memfd
 * so the report can say what the command complained about. */
static int explain_failure(struct spawn_state *st, int status, char *why)
{
    char err[1024];
    ssize_t n = 0;
    int again = 0;
    int fd = memfd_create("sbx-bench-stderr", MFD_CLOEXEC);
    if (fd >= 0) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, st->devnull_fd, 0);
        posix_spawn_file_actions_adddup2(&fa, st->devnull_fd, 1);
        posix_spawn_file_actions_adddup2(&fa, fd, 2);
        if (spawn_wait(st, &fa, &again, why) == 0 && again != 0)
            n = pread(fd, err, sizeof(err), 0);
        posix_spawn_file_actions_destroy(&fa);
        close(fd);
    }
    return bench_why_exit(why, exit_code_of(status), signal_of(status), err, n > 0 ? (size_t)n : 0);
}

static int spawn_run(void *state, char *why)
{
    struct spawn_state *st = state;
    int status = 0;
    if (spawn_wait(st, &st->quiet, &status, why) < 0)
        return -1;
    if (status != 0)
        return explain_failure(st, status, why);
    return 0;
}

const struct bench_ops bench_spawn_ops = {
    .open = spawn_open,
    .run = spawn_run,
    .close = spawn_close,
};
