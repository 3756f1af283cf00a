/* util.c — helpers shared by every layer. */
#include "util.h"

#include <fcntl.h>
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

struct name_stack {
    char **v;
    size_t n, cap;
};

static int push(struct name_stack *st, const char *name)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 64;
        char **v = realloc(st->v, cap * sizeof(*v));
        if (!v)
            return -1;
        st->v = v;
        st->cap = cap;
    }
    if (!(st->v[st->n] = strdup(name)))
        return -1;
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
            } else if (push(&st, sub) < 0) {
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
        char *name = st.v[--st.n];
        if (cur < 0 || unlinkat(cur, name, AT_REMOVEDIR) < 0)
            failed = 1;
        free(name);
    }
    int e = errno;
    if (cur >= 0)
        close(cur);
    while (st.n)
        free(st.v[--st.n]);
    free(st.v);
    if (failed)
        return -(e ? e : EIO);
    return rmdir(path) < 0 && errno != ENOENT ? -errno : 0;
}
