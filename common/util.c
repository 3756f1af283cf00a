/* util.c — helpers shared by every layer. */
#include "util.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int sbx__write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int sbx__write_full_nosig(int fd, const void *buf, size_t len)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int r = 0;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, -1);
            continue;
        }
        if (n < 0) {
            r = -1;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    int e = errno;
    if (r < 0 && e == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
}

int sbx__read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EPIPE;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

size_t sbx__strv_len(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

char **sbx__strv_dup(const char *const *v)
{
    size_t n = sbx__strv_len(v);
    char **r = calloc(n + 1, sizeof(*r));
    if (!r)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        r[i] = strdup(v[i]);
        if (!r[i]) {
            sbx__strv_free(r);
            return NULL;
        }
    }
    return r;
}

void sbx__strv_free(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

/* The way down: each directory's name in its parent and its identity, so that going back
 * up through ".." can be checked to land where we came from. */
struct name_stack {
    struct level {
        char *name;
        dev_t dev;  /* of the parent */
        ino_t ino;
    } *v;
    size_t n, cap;
};

static int push(struct name_stack *st, const char *name, int parent_fd)
{
    struct stat ps;
    if (fstat(parent_fd, &ps) < 0)
        return -1;
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        struct level *v = realloc(st->v, cap * sizeof(*v));
        if (!v)
            return -1;
        st->v = v;
        st->cap = cap;
    }
    if (!(st->v[st->n].name = strdup(name)))
        return -1;
    st->v[st->n].dev = ps.st_dev;
    st->v[st->n].ino = ps.st_ino;
    st->n++;
    return 0;
}

/* Empties the directory open as `cur`: unlinks what it can, and returns (malloc'd) the name of
 * one subdirectory to descend into, or NULL when nothing but failures is left. */
static char *empty_dir(int cur, int *failed)
{
    int fd = dup(cur);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        *failed = 1;
        return NULL;
    }
    char *sub = NULL;
    struct dirent *de;
    while (!sub && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(cur, de->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno == EISDIR)
            sub = strdup(de->d_name);
        else
            *failed = 1;
    }
    closedir(d);
    return sub;
}

int sbx__rm_rf(const char *path)
{
    /* With directory fds only, never a path below the root, and O_NOFOLLOW at every step: a
     * directory swapped for a symlink mid-way is unlinked, never followed. Iterative, with
     * one fd open at a time, so any depth (past PATH_MAX too) is removed. The first failure
     * stops it (the caller may try again once nothing else is writing there). */
    int cur = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (cur < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ENOTDIR || errno == ELOOP)
            return unlink(path) < 0 ? -errno : 0;
        return -errno;
    }
    struct name_stack st = {0};
    int failed = 0;
    while (!failed) {
        char *sub = empty_dir(cur, &failed);
        if (sub) {
            int fd = openat(cur, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                if (unlinkat(cur, sub, 0) < 0 && errno != ENOENT)
                    failed = 1; /* neither a directory we can open nor a file */
            } else if (push(&st, sub, cur) < 0) {
                close(fd);
                failed = 1;
            } else {
                close(cur);
                cur = fd;
            }
            free(sub);
            continue;
        }
        if (failed || st.n == 0)
            break;
        int parent = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(cur);
        cur = parent;
        struct level lv = st.v[--st.n];
        struct stat ps;
        /* ".." must be the directory we came down from: if something moved the tree, stop
         * rather than work on whatever ".." now is (it could be outside the tree). */
        if (cur < 0 || fstat(cur, &ps) < 0 || ps.st_dev != lv.dev || ps.st_ino != lv.ino ||
            unlinkat(cur, lv.name, AT_REMOVEDIR) < 0)
            failed = 1;
        free(lv.name);
    }
    int e = errno;
    if (cur >= 0)
        close(cur);
    while (st.n)
        free(st.v[--st.n].name);
    free(st.v);
    if (failed)
        return -(e ? e : EIO);
    return rmdir(path) < 0 && errno != ENOENT ? -errno : 0;
}
