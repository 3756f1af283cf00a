/* cases_files.c — files and snapshots through a running session, against the host doing the
 * same directly:
 *
 *   files_write_1k / files_write_1m   sbx_session_write   vs write() of a host file
 *   files_read_1k / files_read_1m     sbx_session_read    vs read() of a host file
 *   ws_persist    persist_workspace of 10,000 x 1 KiB + 10 x 10 MiB   vs tar -cf - -C DIR .
 *   ws_hydrate    hydrate_workspace of that archive                   vs tar -xf into a fresh
 *                                                                       directory
 *
 * Both sides of a case use the same bytes: the tree lives in the session's workspace, which is
 * a host directory, and GNU tar reads it there. Outputs go to a memfd (not /dev/null, which
 * GNU tar recognises and then skips reading the files).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sbx/sbx.h>

#include "bench.h"
#include "util.h"

extern char **environ;

/* The session every sbx variant shares, started on first use, with the tree in its workspace
 * once a tree case asks for it. Freed at exit. */
static sbx_session *shared;
static int tree_ready;
static int tar_fd = -1; /* the tree as a tar archive (for the hydrate cases) */

static void shared_free(void)
{
    sbx_session_free(shared);
    shared = NULL;
    if (tar_fd >= 0)
        close(tar_fd);
}

static int why_sbx(char *why, const char *what, sbx_error *err)
{
    bench_why(why, "%s: %s (%s)", what, err ? sbx_error_message(err) : "unknown error",
              sbx_code_name(err ? sbx_error_code(err) : 0));
    sbx_error_free(err);
    return -1;
}

static sbx_session *session(char *why)
{
    if (shared)
        return shared;
    sbx_session_opts so = SBX_SESSION_OPTS_INIT;
    sbx_error *err = NULL;
    sbx_session *s = NULL;
    if (sbx_session_new(&so, &s, &err) < 0 || sbx_session_start(s, &err) < 0) {
        sbx_session_free(s);
        why_sbx(why, "starting the session", err);
        return NULL;
    }
    shared = s;
    atexit(shared_free);
    return s;
}

static int write_file(const char *path, const unsigned char *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int r = sbx__write_full(fd, p, n);
    close(fd);
    return r;
}

/* 10,000 files of 1 KiB in 100 directories, and 10 files of 10 MiB, owned like the files of
 * the sandbox user (the workspace's owner). */
static int make_tree(char *why)
{
    sbx_session *s = session(why);
    if (!s)
        return -1;
    if (tree_ready)
        return 0;
    const char *ws = sbx_session_workspace(s);
    struct stat st;
    if (!ws || stat(ws, &st) < 0)
        return bench_why(why, "the session has no host workspace");
    unsigned char *big = malloc(10u << 20);
    if (!big)
        return bench_why(why, "out of memory");
    for (size_t i = 0; i < (10u << 20); i++)
        big[i] = (unsigned char)(i * 2654435761u >> 24);
    char path[4200];
    int r = 0;
    for (int d = 0; d < 100 && !r; d++) {
        snprintf(path, sizeof(path), "%s/tree/d%02d", ws, d);
        snprintf(path, sizeof(path), "%s/tree", ws);
        mkdir(path, 0755);
        chown(path, st.st_uid, st.st_gid);
        snprintf(path, sizeof(path), "%s/tree/d%02d", ws, d);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            r = -1;
        chown(path, st.st_uid, st.st_gid);
        for (int f = 0; f < 100 && !r; f++) {
            snprintf(path, sizeof(path), "%s/tree/d%02d/f%03d.txt", ws, d, f);
            r = write_file(path, big + (d * 100 + f) * 7, 1024);
            chown(path, st.st_uid, st.st_gid);
        }
    }
    for (int b = 0; b < 10 && !r; b++) {
        snprintf(path, sizeof(path), "%s/tree/big%d.bin", ws, b);
        r = write_file(path, big, 10u << 20);
        chown(path, st.st_uid, st.st_gid);
    }
    free(big);
    if (r < 0)
        return bench_why(why, "making the test tree: %s", strerror(errno));
    /* The archive the hydrate cases restore (made once, by sbx). */
    tar_fd = memfd_create("sbx-bench-tree", MFD_CLOEXEC);
    sbx_error *err = NULL;
    if (tar_fd < 0 || sbx_session_persist_workspace(s, tar_fd, &err) < 0)
        return why_sbx(why, "persisting the tree", err);
    tree_ready = 1;
    return 0;
}

/* ---- file read/write ---- */

struct file_state {
    int host;           /* the host variant (else sbx) */
    int reading;
    size_t size;
    int src;            /* memfd with `size` bytes */
    int sink;           /* /dev/null */
    char path[4200];
};

static void file_close(void *state)
{
    struct file_state *st = state;
    if (!st)
        return;
    if (st->src >= 0)
        close(st->src);
    if (st->sink >= 0)
        close(st->sink);
    if (st->host)
        unlink(st->path);
    free(st);
}

/* data: "host-write-1024", "sbx-read-1048576", ... */
static int file_open(const struct bench_variant *v, const char *const *cmd, void **state,
                     char *why)
{
    (void)cmd;
    struct file_state *st = calloc(1, sizeof(*st));
    if (!st)
        return bench_why(why, "out of memory");
    st->src = st->sink = -1;
    const char *d = v->data;
    st->host = !strncmp(d, "host", 4);
    st->reading = strstr(d, "read") != NULL;
    st->size = (size_t)strtoul(strrchr(d, '-') + 1, NULL, 10);
    sbx_session *s = session(why);
    if (!s) {
        file_close(st);
        return -1;
    }
    unsigned char *buf = calloc(1, st->size);
    st->src = memfd_create("sbx-bench-file", MFD_CLOEXEC);
    st->sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (!buf || st->src < 0 || st->sink < 0 || sbx__write_full(st->src, buf, st->size) < 0) {
        free(buf);
        file_close(st);
        return bench_why(why, "preparing the file: %s", strerror(errno));
    }
    free(buf);
    snprintf(st->path, sizeof(st->path), "%s/bench-%s.bin", sbx_session_workspace(s), d);
    /* The file to read exists before the first run. */
    if (st->reading) {
        sbx_error *err = NULL;
        lseek(st->src, 0, SEEK_SET);
        if (sbx_session_write(s, strrchr(st->path, '/') + 1, NULL, st->src, NULL, &err) < 0) {
            file_close(st);
            return why_sbx(why, "writing the file to read", err);
        }
    }
    *state = st;
    return 0;
}

static int file_run(void *state, char *why)
{
    struct file_state *st = state;
    lseek(st->src, 0, SEEK_SET);
    const char *rel = strrchr(st->path, '/') + 1;
    if (st->host) {
        unsigned char buf[65536];
        int fd = st->reading ? open(st->path, O_RDONLY | O_CLOEXEC)
                             : open(st->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            return bench_why(why, "open: %s", strerror(errno));
        int from = st->reading ? fd : st->src, to = st->reading ? st->sink : fd;
        ssize_t n;
        while ((n = read(from, buf, sizeof(buf))) > 0)
            if (sbx__write_full(to, buf, (size_t)n) < 0)
                break;
        close(fd);
        return n < 0 ? bench_why(why, "copy: %s", strerror(errno)) : 0;
    }
    sbx_error *err = NULL;
    int r = st->reading ? sbx_session_read(shared, rel, NULL, st->sink, NULL, &err)
                        : sbx_session_write(shared, rel, NULL, st->src, NULL, &err);
    return r < 0 ? why_sbx(why, st->reading ? "sbx_session_read" : "sbx_session_write", err) : 0;
}

static const struct bench_ops file_ops = {.open = file_open, .run = file_run, .close = file_close};

#define FILE_CASE(id, ttl, host, sbx)                                                          \
    static const struct bench_variant id##_variants[] = {                                       \
        {.name = "host", .ops = &file_ops, .data = host},                                       \
        {.name = "sbx", .ops = &file_ops, .data = sbx},                                         \
    };                                                                                          \
    const struct bench_case bench_case_##id = {.name = #id,                                     \
                                               .title = ttl,                                    \
                                               .variants = id##_variants,                       \
                                               .n_variants = 2}

FILE_CASE(files_write_1k, "write a 1 KiB file", "host-write-1024", "sbx-write-1024");
FILE_CASE(files_read_1k, "read a 1 KiB file", "host-read-1024", "sbx-read-1024");
FILE_CASE(files_write_1m, "write a 1 MiB file", "host-write-1048576", "sbx-write-1048576");
FILE_CASE(files_read_1m, "read a 1 MiB file", "host-read-1048576", "sbx-read-1048576");

/* ---- persist and hydrate ---- */

struct tree_state {
    int tar;       /* GNU tar (else sbx) */
    int hydrate;
    int out;       /* memfd the archive is written to */
    char fresh[4200]; /* tar -x target of the last run */
};

static void tree_close(void *state)
{
    struct tree_state *st = state;
    if (!st)
        return;
    if (st->out >= 0)
        close(st->out);
    if (st->fresh[0])
        sbx__rm_rf(st->fresh);
    free(st);
}

static int tree_open(const struct bench_variant *v, const char *const *cmd, void **state,
                     char *why)
{
    (void)cmd;
    if (make_tree(why) < 0)
        return -1;
    struct tree_state *st = calloc(1, sizeof(*st));
    if (!st)
        return bench_why(why, "out of memory");
    const char *d = v->data;
    st->tar = !strncmp(d, "tar", 3);
    st->hydrate = strstr(d, "hydrate") != NULL;
    st->out = memfd_create("sbx-bench-out", MFD_CLOEXEC);
    if (st->tar && access("/bin/tar", X_OK) != 0) {
        tree_close(st);
        return bench_why(why, "GNU tar is not installed"), BENCH_ABSENT;
    }
    *state = st;
    return 0;
}

/* True while a previous hydrate's old tree is still being removed (in the background, after
 * hydrate returned). */
static int trash_left(const char *ws)
{
    DIR *d = opendir(ws);
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL)
        found = !strncmp(e->d_name, ".sbx-trash-", 11);
    closedir(d);
    return found;
}

/* Every run starts from a quiet disk: the previous run's output removed, and written back,
 * so one run's deletes and writeback do not land in the next one's time. */
static void tree_reset(void *state)
{
    struct tree_state *st = state;
    if (ftruncate(st->out, 0) == 0)
        lseek(st->out, 0, SEEK_SET);
    if (st->fresh[0])
        sbx__rm_rf(st->fresh);
    st->fresh[0] = '\0';
    lseek(tar_fd, 0, SEEK_SET);
    const char *ws = sbx_session_workspace(shared);
    for (int i = 0; i < 3000 && trash_left(ws); i++)
        usleep(10000);
    int fd = open(ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

static int run_tar(const char *const *argv, int in, int out, char *why)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in >= 0)
        posix_spawn_file_actions_adddup2(&fa, in, 0);
    if (out >= 0)
        posix_spawn_file_actions_adddup2(&fa, out, 1);
    pid_t pid;
    int e = posix_spawn(&pid, "/bin/tar", &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e)
        return bench_why(why, "spawning tar: %s", strerror(e));
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : bench_why(why, "tar failed");
}

static int tree_run(void *state, char *why)
{
    struct tree_state *st = state;
    sbx_error *err = NULL;
    if (!st->hydrate) {
        if (!st->tar)
            return sbx_session_persist_workspace(shared, st->out, &err) < 0
                       ? why_sbx(why, "persist_workspace", err)
                       : 0;
        const char *argv[] = {"tar", "-cf", "-", "-C", sbx_session_workspace(shared), ".", NULL};
        return run_tar(argv, -1, st->out, why);
    }
    if (!st->tar)
        return sbx_session_hydrate_workspace(shared, tar_fd, &err) < 0
                   ? why_sbx(why, "hydrate_workspace", err)
                   : 0;
    /* Next to the workspace: the same filesystem as the one sbx restores into. */
    snprintf(st->fresh, sizeof(st->fresh), "%s/../untar-XXXXXX", sbx_session_workspace(shared));
    if (!mkdtemp(st->fresh)) {
        st->fresh[0] = '\0';
        return bench_why(why, "mkdtemp: %s", strerror(errno));
    }
    const char *argv[] = {"tar", "-xf", "-", "-C", st->fresh, NULL};
    return run_tar(argv, tar_fd, -1, why);
}

static const struct bench_ops tree_ops = {
    .open = tree_open, .reset = tree_reset, .run = tree_run, .close = tree_close};

static const struct bench_variant persist_variants[] = {
    {.name = "tar -c", .ops = &tree_ops, .data = "tar-persist"},
    {.name = "sbx persist", .ops = &tree_ops, .data = "sbx-persist"},
};
static const struct bench_variant hydrate_variants[] = {
    {.name = "tar -x", .ops = &tree_ops, .data = "tar-hydrate"},
    {.name = "sbx hydrate", .ops = &tree_ops, .data = "sbx-hydrate"},
};

const struct bench_case bench_case_ws_persist = {
    .name = "ws_persist",
    .title = "persist 10,000 x 1 KiB + 10 x 10 MiB",
    .variants = persist_variants,
    .n_variants = 2,
    .max_runs = 7,
};
const struct bench_case bench_case_ws_hydrate = {
    .name = "ws_hydrate",
    .title = "hydrate 10,000 x 1 KiB + 10 x 10 MiB",
    .variants = hydrate_variants,
    .n_variants = 2,
    .max_runs = 7,
};
