/* sbx/error.h — error codes and the error object every fallible call can return.
 *
 * Every fallible function returns 0 on success or one of the negative SBX_E* codes below,
 * and, when its `err` argument is not NULL, stores a newly allocated sbx_error in *err that
 * the caller frees with sbx_error_free(). Codes are explicit, stable, and never reused: a
 * retired code keeps its number. Each code has a stable snake_case name (the spec's
 * `error_code` string where one exists) and a default message.
 */
#ifndef SBX_ERROR_H
#define SBX_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SBX_BUILDING) || defined(__GNUC__)
#define SBX_API __attribute__((visibility("default")))
#else
#define SBX_API
#endif

/* X(ENUM, value, "name", "default message") — one list produces the enum, the names and the
 * messages, so a code cannot exist without both. */
#define SBX_ERROR_MAP(X)                                                                      \
    X(SBX_EINVAL, -1, "invalid_argument", "invalid argument")                                 \
    X(SBX_ENOMEM, -2, "out_of_memory", "out of memory")                                       \
    X(SBX_ESTATE, -3, "invalid_state", "operation not valid in the session's current state") \
    X(SBX_ENOSYS, -4, "unsupported", "a kernel feature sbx needs is not available")          \
    X(SBX_EPERM, -5, "permission_denied", "permission denied")                                \
    X(SBX_EBACKEND, -6, "backend_error", "the sandbox backend failed")                        \
    X(SBX_EIO, -7, "io_error", "input/output error")                                          \
    X(SBX_ECONFIG, -8, "sandbox_config_invalid", "sandbox configuration is invalid")          \
    X(SBX_EEXEC_NONZERO, -20, "exec_nonzero", "command exited with a non-zero code")          \
    X(SBX_EEXEC_TIMEOUT, -21, "exec_timeout", "command timed out")                            \
    X(SBX_EEXEC_TRANSPORT, -22, "exec_transport_error", "exec transport error")               \
    X(SBX_EPTY_NOT_FOUND, -23, "pty_session_not_found", "PTY session not found")              \
    X(SBX_EINVALID_PATH, -30, "invalid_manifest_path", "path escapes the workspace root")     \
    X(SBX_EINVALID_COMPRESSION, -31, "invalid_compression_scheme",                            \
      "compression scheme must be one of 'zip' 'tar'")                                        \
    X(SBX_EWORKSPACE_READ_NOT_FOUND, -32, "workspace_read_not_found", "file not found")       \
    X(SBX_EWORKSPACE_ARCHIVE_READ, -33, "workspace_archive_read_error",                       \
      "failed to read archive for path")                                                      \
    X(SBX_EWORKSPACE_ARCHIVE_WRITE, -34, "workspace_archive_write_error",                     \
      "failed to write archive for path")                                                     \
    X(SBX_EWORKSPACE_WRITE_TYPE, -35, "workspace_write_type_error",                           \
      "write() expects a binary stream")                                                      \
    X(SBX_EWORKSPACE_START, -36, "workspace_start_error", "failed to start session")          \
    X(SBX_EWORKSPACE_STOP, -37, "workspace_stop_error", "failed to stop session")             \
    X(SBX_EWORKSPACE_ROOT_NOT_FOUND, -38, "workspace_root_not_found",                         \
      "workspace root not found")                                                             \
    X(SBX_EEXPOSED_PORT_UNAVAILABLE, -40, "exposed_port_unavailable",                         \
      "port is not configured for host exposure")                                             \
    X(SBX_ESNAPSHOT_PERSIST, -50, "snapshot_persist_error", "failed to persist snapshot")     \
    X(SBX_ESNAPSHOT_RESTORE, -51, "snapshot_restore_error", "failed to restore snapshot")     \
    X(SBX_ESNAPSHOT_NOT_RESTORABLE, -52, "snapshot_not_restorable",                           \
      "snapshot is not restorable")

enum sbx_error_code {
    SBX_OK = 0,
#define SBX__ERR_ENUM(e, v, n, m) e = v,
    SBX_ERROR_MAP(SBX__ERR_ENUM)
#undef SBX__ERR_ENUM
};

typedef struct sbx_error sbx_error;

/* Stable snake_case name of a code ("exec_timeout"); "unknown" for a value that is not a code.
 * Thread safety: any thread. */
SBX_API const char *sbx_code_name(int code);

/* Default one-line message of a code. Thread safety: any thread. */
SBX_API const char *sbx_strerror(int code);

/* Accessors. The strings are borrowed from the error and live until sbx_error_free(). */
SBX_API int sbx_error_code(const sbx_error *e);
/* errno of the failing system call, or 0. */
SBX_API int sbx_error_errno(const sbx_error *e);
/* The one-line message a person can act on. */
SBX_API const char *sbx_error_message(const sbx_error *e);
/* The operation ("start", "exec", ...). */
SBX_API const char *sbx_error_op(const sbx_error *e);
/* Context: key/value pairs (path, command, reason, stage, ...), in the order they were added. */
SBX_API size_t sbx_error_context_count(const sbx_error *e);
SBX_API const char *sbx_error_context_key(const sbx_error *e, size_t i);
SBX_API const char *sbx_error_context_value(const sbx_error *e, size_t i);
/* Value of the first entry named `key`, or NULL. */
SBX_API const char *sbx_error_context_get(const sbx_error *e, const char *key);

/* Frees an error; NULL is a no-op. Thread safety: any thread. */
SBX_API void sbx_error_free(sbx_error *e);

#ifdef __cplusplus
}
#endif
#endif
