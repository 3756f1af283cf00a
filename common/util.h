/* util.h — small helpers shared by every layer: scoped cleanup, full reads/writes, string
 * vectors, the monotonic clock. Internal: not part of the public API. */
#ifndef SBX_UTIL_H
#define SBX_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

static inline void sbx__freep(void *p)
{
    free(*(void **)p);
}
static inline void sbx__closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
#define sbx_autofree  __attribute__((cleanup(sbx__freep)))
#define sbx_autoclose __attribute__((cleanup(sbx__closep)))

/* Hands an owned fd or pointer out of a scoped variable. */
static inline int sbx_steal_fd(int *fd)
{
    int r = *fd;
    *fd = -1;
    return r;
}
static inline void *sbx__steal_ptr(void **p)
{
    void *r = *p;
    *p = NULL;
    return r;
}
#define sbx_steal_ptr(pp) sbx__steal_ptr((void **)(pp))

/* Retry on EINTR and short counts. Return 0 or -1 with errno (read_full: EPIPE on early EOF). */
int sbx__write_full(int fd, const void *buf, size_t len);
int sbx__read_full(int fd, void *buf, size_t len);
/* write_full for the caller's fds: EPIPE instead of SIGPIPE (which would kill the embedder),
 * and waits out EAGAIN on a non-blocking fd. */
int sbx__write_full_nosig(int fd, const void *buf, size_t len);

/* NULL-terminated string vectors. */
size_t sbx__strv_len(const char *const *v);
char **sbx__strv_dup(const char *const *v);
void sbx__strv_free(char **v);

/* Monotonic clock in nanoseconds and milliseconds. */
uint64_t sbx__now_ns(void);
double sbx__ms_since(uint64_t start_ns);

/* Removes a directory tree without ever following a symlink, at any depth. 0 or -errno. */
int sbx__rm_rf(const char *path);

#endif
