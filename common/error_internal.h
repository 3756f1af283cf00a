/* error_internal.h — how the library makes errors. Internal.
 *
 *   return sbx_err(err, SBX_EIO, errno, "exec", "open '%s'", path);
 *
 * sets *err (when err is not NULL) and returns the code in one step. Context entries are
 * added after with sbx_err_ctx(). */
#ifndef SBX_ERROR_INTERNAL_H
#define SBX_ERROR_INTERNAL_H

#include <sbx/error.h>

__attribute__((format(printf, 5, 6))) int sbx_err(sbx_error **err, int code, int errnum,
                                                  const char *op, const char *fmt, ...);
/* Adds a key/value to an error already set (no-op when err or *err is NULL). */
__attribute__((format(printf, 3, 4))) void sbx_err_ctx(sbx_error **err, const char *key,
                                                       const char *fmt, ...);
/* Prefixes the message of an error already set: "prefix: old message". */
__attribute__((format(printf, 2, 3))) void sbx_err_wrap(sbx_error **err, const char *fmt, ...);

#endif
