/* session_util.h — small helpers for the session suites: files through memfds. */
#ifndef SBX_TEST_SESSION_UTIL_H
#define SBX_TEST_SESSION_UTIL_H

#include <sbx/sbx.h>
#include <stddef.h>

/* A memfd holding s, positioned at 0. */
int st_memfd(const char *s);
/* A memfd holding n bytes of p. */
int st_memfd_bytes(const void *p, size_t n);
/* Reads all of fd from offset 0 into a malloc'd NUL-terminated buffer (*n: length). */
char *st_slurp(int fd, size_t *n);
int st_write_str(sbx_session *s, const char *path, const char *text, sbx_error **err);
/* The file's contents, or NULL with *err set. */
char *st_read_str(sbx_session *s, const char *path, sbx_error **err);

#endif
