/* sbx/files.h — file operations on a running session's workspace.
 *
 * Paths are workspace-relative ("src/main.c", where ".." is allowed while the result stays
 * inside) or absolute inside the sandbox under the workspace root ("/workspace/src"). A path
 * outside the root is refused with SBX_EINVALID_PATH (context reason "absolute" or
 * "escape_root"), and so is one that reaches outside through a symlink: the operation runs
 * inside the sandbox and the kernel resolves every path beneath the workspace root, so code
 * in the sandbox racing symlinks cannot make these calls touch a host file. Each operation
 * runs as `user` (NULL: the sandbox user; "root"; or a numeric uid), with that user's
 * permissions, and files it creates belong to that user.
 *
 * Thread safety: any number of calls may run concurrently on one running session.
 */
#ifndef SBX_FILES_H
#define SBX_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sbx_session sbx_session;

typedef enum sbx_file_kind {
    SBX_FILE_REGULAR = 0,
    SBX_FILE_DIRECTORY = 1,
    SBX_FILE_SYMLINK = 2, /* never followed when listing */
    SBX_FILE_OTHER = 3,   /* FIFO, socket, device */
} sbx_file_kind;

typedef struct sbx_file_entry {
    char *name;      /* entry name */
    char *path;      /* absolute path inside the sandbox */
    sbx_file_kind kind;
    uint64_t size;
    unsigned mode;   /* permission bits (07777) */
    int64_t mtime;   /* seconds since the epoch */
    unsigned uid, gid; /* ids inside the sandbox */
    char *owner;     /* "sandbox", "root", or the uid as text */
    char *group;
} sbx_file_entry;

/* Lists a directory (entries sorted by name, "." and ".." left out), or a single entry for a
 * path that is not a directory. A missing or unreadable path gives SBX_EEXEC_NONZERO with
 * context exit_code 1 and stderr (the system's message), as `ls` would. *out is freed with
 * sbx_file_entries_free(). */
SBX_API int sbx_session_ls(sbx_session *s, const char *path, const char *user,
                           sbx_file_entry **out, size_t *n, sbx_error **err);
SBX_API void sbx_file_entries_free(sbx_file_entry *v, size_t n);

/* Removes a file, a symlink (not its target) or an empty directory; with recursive, a whole
 * tree, and a missing path is not an error. Missing without recursive: SBX_EEXEC_NONZERO.
 * Other failures: SBX_EWORKSPACE_ARCHIVE_WRITE. The workspace root itself cannot be removed. */
SBX_API int sbx_session_rm(sbx_session *s, const char *path, int recursive, const char *user,
                           sbx_error **err);

/* Creates a directory; with parents, also its missing parents, and an existing directory is
 * not an error. Failures: SBX_EWORKSPACE_ARCHIVE_WRITE (context path, errno). */
SBX_API int sbx_session_mkdir(sbx_session *s, const char *path, int parents, const char *user,
                              sbx_error **err);

/* Copies the file at path to out_fd, streaming (memory use does not grow with the file).
 * *bytes (may be NULL) receives the count. Errors: SBX_EWORKSPACE_READ_NOT_FOUND (missing),
 * SBX_EWORKSPACE_ARCHIVE_READ (a directory, unreadable, not a regular file). */
SBX_API int sbx_session_read(sbx_session *s, const char *path, const char *user, int out_fd,
                             uint64_t *bytes, sbx_error **err);

/* Writes everything read from in_fd (to EOF) to the file at path, creating missing parent
 * directories and replacing an existing file's contents. New files get mode 0644. Errors:
 * SBX_EWORKSPACE_ARCHIVE_WRITE (context path, reason). */
SBX_API int sbx_session_write(sbx_session *s, const char *path, const char *user, int in_fd,
                              uint64_t *bytes, sbx_error **err);

/* The absolute path inside the sandbox that `path` names, checked lexically against the
 * workspace root (no I/O; symlinks are checked when an operation runs). *out is malloc'd. */
SBX_API int sbx_session_normalize_path(sbx_session *s, const char *path, char **out,
                                       sbx_error **err);

#ifdef __cplusplus
}
#endif
#endif
