/* sbx/seccomp.h — the system call filter every command runs under.
 *
 * A policy is text (format in docs/seccomp.md): `default allow`, then one rule a line, e.g.
 * `errno:EPERM keyctl` or `errno:EPERM ioctl arg1 &0xffffffff == 0x5412`. Sessions use the
 * built-in default unless sbx_session_opts.seccomp_policy gives another.
 */
#ifndef SBX_SECCOMP_H
#define SBX_SECCOMP_H

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The built-in policy's text (static). Thread safety: any thread. */
SBX_API const char *sbx_seccomp_default_policy(void);

/* Parses and compiles `policy` (NULL: the default) for this machine, as a session would, and
 * returns its normalised text in *out (malloc'd; free()). `allow_ptrace` as the session flag.
 * Errors: SBX_EINVAL naming the line. Thread safety: any thread. */
SBX_API int sbx_seccomp_check(const char *policy, int allow_ptrace, char **out, sbx_error **err);

#ifdef __cplusplus
}
#endif
#endif
