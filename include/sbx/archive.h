/* sbx/archive.h — archives in and out of a session's workspace.
 *
 *   sbx_session_extract()           writes an archive into the workspace and unpacks it next
 *                                   to itself (tar: plain, gzip, bzip2, xz, zstd; zip)
 *   sbx_session_persist_workspace() writes the workspace as an uncompressed tar stream
 *   sbx_session_hydrate_workspace() replaces the workspace with the contents of a tar stream
 *
 * Every archive is checked member by member before anything becomes visible in the
 * workspace: absolute names, "..", hardlinks, device nodes and (for extract) symlinks are
 * refused with SBX_EWORKSPACE_ARCHIVE_WRITE and context {path, member, reason}; a refused
 * archive leaves the workspace as it was. The reasons are listed in docs/archives.md.
 */
#ifndef SBX_ARCHIVE_H
#define SBX_ARCHIVE_H

#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sbx_session sbx_session;

/* Limits on one extracted archive. 0 in a field disables that limit. */
typedef struct sbx_archive_limits {
    uint64_t max_input_bytes;     /* bytes read from the input stream */
    uint64_t max_extracted_bytes; /* declared bytes of all members */
    uint64_t max_members;         /* members, the root "." excluded */
} sbx_archive_limits;

/* The limits a caller opting in usually wants: 1 GiB in, 4 GiB out, 100000 members. */
#define SBX_ARCHIVE_LIMITS_DEFAULT                                                            \
    {.max_input_bytes = 1073741824ull, .max_extracted_bytes = 4294967296ull,                  \
     .max_members = 100000}

/* Sets the session's default limits for sbx_session_extract() (NULL: none, the default).
 * Copied. Thread safety: owner thread. */
SBX_API int sbx_session_set_archive_limits(sbx_session *s, const sbx_archive_limits *l,
                                           sbx_error **err);

/* Reads an archive from in_fd to EOF, writes it to `path` in the workspace, and unpacks its
 * members into path's directory. `scheme` is "tar" or "zip", or NULL to take it from the last
 * suffix of path ("x.tar.gz" has suffix "gz": pass "tar"). `limits` overrides the session's
 * (NULL: use the session's). Runs as `user` (NULL: the sandbox user). Errors:
 * SBX_EINVALID_COMPRESSION, SBX_EINVALID_PATH, SBX_EWORKSPACE_ARCHIVE_WRITE. */
SBX_API int sbx_session_extract(sbx_session *s, const char *path, int in_fd, const char *scheme,
                                const sbx_archive_limits *limits, const char *user,
                                sbx_error **err);

/* Writes the workspace to out_fd as an uncompressed tar stream: member names relative ("."
 * and "./a/b"), modes, mtimes and symlinks kept, hardlinked files stored as regular files,
 * sparse files stored sparse, skip paths (below) left out. Errors:
 * SBX_EWORKSPACE_ARCHIVE_READ. */
SBX_API int sbx_session_persist_workspace(sbx_session *s, int out_fd, sbx_error **err);

/* Replaces the workspace's contents with the tar stream read from in_fd (compression is
 * detected). The archive is unpacked into a staging directory inside the workspace and
 * swapped in only once every member was checked and written, so a refused archive, a full
 * disk or a broken stream leave the previous contents in place. Skip paths are kept as they
 * are. File modes are sanitised (docs/archives.md). Errors: SBX_EWORKSPACE_ARCHIVE_WRITE. */
SBX_API int sbx_session_hydrate_workspace(sbx_session *s, int in_fd, sbx_error **err);

/* Marks a workspace-relative path as not durable: persist and fingerprint leave it out.
 * Returns its normalised form in *out (malloc'd, may be NULL if not wanted). Errors:
 * SBX_EINVALID_PATH (absolute, ".."), SBX_EINVAL ("" or "."). Runtime only: not part of the
 * session state. */
SBX_API int sbx_session_register_persist_skip_path(sbx_session *s, const char *path, char **out,
                                                   sbx_error **err);

#ifdef __cplusplus
}
#endif
#endif
