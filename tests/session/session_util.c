#include "session_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int st_memfd_bytes(const void *p, size_t n)
{
    int fd = memfd_create("sbx-test", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (n && write(fd, p, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

int st_memfd(const char *s)
{
    return st_memfd_bytes(s, strlen(s));
}

char *st_slurp(int fd, size_t *n)
{
    off_t len = lseek(fd, 0, SEEK_END);
    lseek(fd, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (!buf)
        return NULL;
    ssize_t got = len ? read(fd, buf, (size_t)len) : 0;
    if (got != len) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (n)
        *n = (size_t)len;
    return buf;
}

int st_write_str(sbx_session *s, const char *path, const char *text, sbx_error **err)
{
    int fd = st_memfd(text);
    int r = sbx_session_write(s, path, NULL, fd, NULL, err);
    close(fd);
    return r;
}

char *st_read_str(sbx_session *s, const char *path, sbx_error **err)
{
    int fd = memfd_create("sbx-test-out", MFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *out = NULL;
    if (sbx_session_read(s, path, NULL, fd, NULL, err) == 0)
        out = st_slurp(fd, NULL);
    close(fd);
    return out;
}
