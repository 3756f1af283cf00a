/* sbx/exec.h — running a command in a started session.
 *
 * The command runs inside every namespace of the session, in its own session and process
 * group, as the requested user with no capabilities and no_new_privs, with every fd but 0-2
 * closed. stdout and stderr are captured separately (binary-safe) or streamed to caller fds;
 * stdin is EOF unless a non-terminal fd is given.
 */
#ifndef SBX_EXEC_H
#define SBX_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "session.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the command parts become the argv (spec SESSION.md §4.2). */
enum sbx_shell_mode {
    SBX_SHELL_SH = 0,   /* default: ["sh", "-c", joined]; one part verbatim, several parts
                           POSIX-quoted and joined with spaces */
    SBX_SHELL_NONE = 1, /* the parts are the argv, as is */
    SBX_SHELL_CUSTOM = 2 /* shell_argv + [joined] */
};

enum sbx_exec_flags {
    SBX_EXEC_STDIN_FD = 1u << 0,      /* use stdin_fd (must not be a terminal) */
    SBX_EXEC_STREAM_STDOUT = 1u << 1, /* copy stdout to stdout_fd as it arrives */
    SBX_EXEC_STREAM_STDERR = 1u << 2, /* copy stderr to stderr_fd as it arrives */
};
#define SBX_EXEC_FLAGS_ALL (SBX_EXEC_STDIN_FD | SBX_EXEC_STREAM_STDOUT | SBX_EXEC_STREAM_STDERR)

typedef struct sbx_exec_opts {
    size_t size;                    /* set by SBX_EXEC_OPTS_INIT */
    const char *const *argv;        /* NULL-terminated command parts (required, non-empty) */
    int shell;                      /* enum sbx_shell_mode */
    const char *const *shell_argv;  /* with SBX_SHELL_CUSTOM: NULL-terminated prefix */
    const char *const *env;         /* NULL-terminated "K=V", layered over the session's */
    const char *cwd;                /* absolute, or relative to the workspace root; default
                                       the root */
    const char *user;               /* "sandbox" (default), "root", or a numeric uid */
    double timeout_s;               /* 0 = no limit */
    size_t max_output_bytes;        /* cap per captured stream; default 64 MiB */
    unsigned flags;                 /* enum sbx_exec_flags */
    int stdin_fd, stdout_fd, stderr_fd; /* borrowed; see flags */
} sbx_exec_opts;

#define SBX_EXEC_OPTS_INIT {.size = sizeof(sbx_exec_opts)}
#define SBX_EXEC_DEFAULT_MAX_OUTPUT (64u << 20)

typedef struct sbx_exec_result {
    int exit_code;            /* the exit status, or -N when killed by signal N */
    int term_signal;          /* N when killed by a signal, else 0 */
    unsigned char *out;       /* captured stdout (NUL-terminated for convenience, not counted) */
    size_t out_len;
    uint64_t out_dropped;     /* bytes past max_output_bytes: drained and counted, not kept */
    unsigned char *err;       /* captured stderr */
    size_t err_len;
    uint64_t err_dropped;
    double duration_ms;       /* from spawn request to exit, monotonic */
    int oom_killed;           /* the kernel OOM-killed a process of the sandbox while this
                                 command ran (needs a memory limit: memory_bytes) */
    uint64_t memory_peak;     /* the sandbox's peak memory so far, bytes (0: no memory cgroup) */
    double cpu_ms;            /* the sandbox's CPU time so far (0: no cpu accounting) */
} sbx_exec_result;

/* Runs a command and waits for it.
 * A non-zero exit is not an error: it is in (*out)->exit_code.
 * Errors: SBX_EINVAL (bad options, unknown user), SBX_ESTATE (session not running),
 * SBX_EEXEC_TIMEOUT (the command and every process it started were killed; context
 * "timeout_s"), SBX_EEXEC_TRANSPORT (the command could not be started, e.g. a missing binary
 * with SBX_SHELL_NONE: context "reason" is "not_found", "permission_denied" or
 * "spawn_failed", and errno is set), SBX_EWORKSPACE_ROOT_NOT_FOUND.
 * On error *out is NULL. *out belongs to the caller: sbx_exec_result_free().
 * Thread safety: concurrent on one session. */
SBX_API int sbx_session_exec(sbx_session *s, const sbx_exec_opts *o, sbx_exec_result **out,
                             sbx_error **err);

/* NULL is a no-op. Thread safety: any thread. */
SBX_API void sbx_exec_result_free(sbx_exec_result *r);

/* One-shot: creates a session from `so`, runs `xo` in it, and shuts it down (what `sbx run`
 * does). Faster than the four calls in a row: the command is sent while the sandbox is still
 * being built and starts the moment it is ready. Errors are those of sbx_session_start() and
 * sbx_session_exec(); *out as for sbx_session_exec(). Thread safety: any thread. */
SBX_API int sbx_run(const sbx_session_opts *so, const sbx_exec_opts *xo, sbx_exec_result **out,
                    sbx_error **err);

/* The argv a command becomes under the shell rules (spec SESSION.md §4.2), NULL-terminated,
 * freed with sbx_strv_free(). Thread safety: any thread. */
SBX_API int sbx_exec_build_argv(const sbx_exec_opts *o, char ***out, sbx_error **err);
SBX_API void sbx_strv_free(char **v);

#ifdef __cplusplus
}
#endif
#endif
