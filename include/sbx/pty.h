/* sbx/pty.h — interactive processes in a started session (spec SESSION.md §5).
 *
 * Lifecycle of one process: sbx_pty_exec_start() starts it and returns a process id in
 * [1000, 100000) while it runs; sbx_pty_write_stdin() sends bytes and collects what it printed
 * since the previous call; the update that reports its exit code is the last one (the id is
 * gone afterwards: SBX_EPTY_NOT_FOUND). sbx_pty_terminate_all() kills every process of the
 * session; stop and shutdown call it first.
 *
 * With a terminal (SBX_PTY_TTY) the command runs on a new pseudo-terminal from the sandbox's
 * own devpts instance, as the leader of a new session with the terminal as its controlling
 * tty and stdio, SIGINT and SIGQUIT at their defaults: "\x03" and "\x1c" written as bytes
 * interrupt the foreground process group. The caller's terminal never enters the sandbox
 * (CVE-2017-5226). Without one, stdout and stderr are merged in arrival order and stdin is
 * EOF.
 *
 * Output is drained on the host as it comes, into a bounded buffer per process (default
 * 1 MiB; the oldest bytes are dropped and counted), so a command never blocks because nobody
 * polls. The SDK-shaped calls wait their yield time by design (§5.4); sbx_pty_write() and
 * sbx_pty_read() are the streaming layer beneath them.
 */
#ifndef SBX_PTY_H
#define SBX_PTY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "session.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Spec §5.1 constants. */
#define SBX_PTY_YIELD_MIN_MS        250
#define SBX_PTY_YIELD_MAX_MS        30000
#define SBX_PTY_POLL_MIN_MS         5000  /* pty_write_stdin with no bytes */
#define SBX_PTY_START_YIELD_MS      10000
#define SBX_PTY_WRITE_YIELD_MS      250
#define SBX_PTY_WRITE_PAUSE_MS      100
#define SBX_PTY_MAX_PROCESSES       64
#define SBX_PTY_WARN_PROCESSES      60
#define SBX_PTY_PROTECTED_RECENT    8
#define SBX_PTY_ID_MIN              1000
#define SBX_PTY_ID_END              100000 /* exclusive */
#define SBX_PTY_DEFAULT_BUFFER      (1u << 20)

enum sbx_pty_flags {
    SBX_PTY_TTY = 1u << 0,        /* run on a new terminal (spec tty=true) */
    SBX_PTY_YIELD = 1u << 1,      /* yield_time_s is set (else the default) */
    SBX_PTY_MAX_TOKENS = 1u << 2, /* max_output_tokens is set (else no truncation) */
};
#define SBX_PTY_FLAGS_ALL (SBX_PTY_TTY | SBX_PTY_YIELD | SBX_PTY_MAX_TOKENS)

typedef struct sbx_pty_opts {
    size_t size;                   /* set by SBX_PTY_OPTS_INIT */
    const char *const *argv;       /* command parts, as sbx_exec_opts.argv (required) */
    int shell;                     /* enum sbx_shell_mode, as for exec */
    const char *const *shell_argv; /* with SBX_SHELL_CUSTOM */
    const char *const *env;        /* NULL-terminated "K=V", layered over the session's */
    const char *cwd;               /* as for exec; default the workspace root */
    const char *user;              /* as for exec */
    unsigned flags;                /* enum sbx_pty_flags */
    double yield_time_s;           /* with SBX_PTY_YIELD: truncated to ms, clamped to
                                      [250, 30000]; default 10 s */
    int64_t max_output_tokens;     /* with SBX_PTY_MAX_TOKENS (negative counts as 0) */
    unsigned rows, cols;           /* initial window size with a terminal; 0: 24 x 80 */
    size_t buffer_bytes;           /* output buffer; 0: 1 MiB */
} sbx_pty_opts;
#define SBX_PTY_OPTS_INIT {.size = sizeof(sbx_pty_opts)}

typedef struct sbx_pty_write_opts {
    size_t size;               /* set by SBX_PTY_WRITE_OPTS_INIT */
    unsigned flags;            /* SBX_PTY_YIELD, SBX_PTY_MAX_TOKENS */
    double yield_time_s;       /* default 0.25 s; clamped; >= 5 s when no bytes are written */
    int64_t max_output_tokens;
} sbx_pty_write_opts;
#define SBX_PTY_WRITE_OPTS_INIT {.size = sizeof(sbx_pty_write_opts)}

/* What one call saw (spec PtyExecUpdate). */
typedef struct sbx_pty_update {
    int process_id;         /* while it runs; 0 (the spec's null) once it exited */
    int exited;             /* 1 in the one update that reports the exit */
    int exit_code;          /* with exited: the status, or -N when killed by signal N */
    unsigned char *output;  /* output since the previous call: valid UTF-8 (invalid bytes
                               became U+FFFD), truncated as max_output_tokens says;
                               NUL-terminated, not counted */
    size_t output_len;
    int64_t original_token_count; /* -1 (null) unless the output was truncated */
    uint64_t dropped_bytes; /* output lost to the full buffer since the previous call */
} sbx_pty_update;

/* Whether this session can run interactive processes (always, with the namespace backend).
 * Thread safety: any thread. */
SBX_API int sbx_session_supports_pty(const sbx_session *s);

/* Starts a process and collects its output for the yield time; a command that exits within
 * it is reported as exited here. *out belongs to the caller (sbx_pty_update_free).
 * Errors: SBX_EINVAL, SBX_ESTATE (not running), SBX_EEXEC_TRANSPORT (could not start; context
 * "reason" as for exec), SBX_ENOMEM. Thread safety: concurrent on one session. */
SBX_API int sbx_pty_exec_start(sbx_session *s, const sbx_pty_opts *o, sbx_pty_update **out,
                               sbx_error **err);

/* Writes `len` bytes of `chars` (may be 0: a pure poll) to the process's terminal, pauses
 * 100 ms, and collects output for the yield time. o may be NULL (defaults).
 * Errors: SBX_EPTY_NOT_FOUND (unknown or already reported id; context "session_id"),
 * SBX_EINVAL with the message "stdin is not available for this process" (bytes for a process
 * without a terminal). Writes to a process that is already gone are ignored.
 * Thread safety: concurrent on one session. */
SBX_API int sbx_pty_write_stdin(sbx_session *s, int process_id, const void *chars, size_t len,
                                const sbx_pty_write_opts *o, sbx_pty_update **out,
                                sbx_error **err);

/* NULL is a no-op. Thread safety: any thread. */
SBX_API void sbx_pty_update_free(sbx_pty_update *u);

/* Kills every interactive process of the session and forgets their ids; returns without
 * waiting for them. NULL is a no-op. Thread safety: concurrent on one session. */
SBX_API void sbx_pty_terminate_all(sbx_session *s);

/* Changes the window size of a process's terminal (its foreground group gets SIGWINCH).
 * Errors: SBX_EPTY_NOT_FOUND, SBX_EINVAL (no terminal, or a zero size).
 * Thread safety: concurrent on one session. */
SBX_API int sbx_pty_resize(sbx_session *s, int process_id, unsigned rows, unsigned cols,
                           sbx_error **err);

/* Streaming layer. sbx_pty_write() writes bytes without pausing or collecting.
 * sbx_pty_read() waits until output is buffered, the process exited, or timeout_ms passed
 * (-1: no limit), then moves up to cap raw bytes (no re-encoding) into buf: *n is their count.
 * When the process exited and every byte was read, it sets *exited and *exit_code and the id
 * is gone, as after a final update; exited and exit_code may be NULL.
 * Errors: SBX_EPTY_NOT_FOUND, SBX_EIO (write: no terminal, or the write failed).
 * Thread safety: concurrent on one session; one reader per process. */
SBX_API int sbx_pty_write(sbx_session *s, int process_id, const void *buf, size_t len,
                          sbx_error **err);
SBX_API int sbx_pty_read(sbx_session *s, int process_id, void *buf, size_t cap, int timeout_ms,
                         size_t *n, int *exited, int *exit_code, sbx_error **err);

/* Token truncation of spec §5.7 on UTF-8 text (4 bytes per token): the result is malloc'd
 * (*out_len bytes, NUL-terminated); *original_tokens is -1 when nothing was cut.
 * A negative max_tokens counts as 0. Thread safety: any thread. */
SBX_API int sbx_truncate_tokens(const char *text, size_t len, int64_t max_tokens, char **out,
                                size_t *out_len, int64_t *original_tokens);

#ifdef __cplusplus
}
#endif
#endif
