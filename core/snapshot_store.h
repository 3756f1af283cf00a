/* snapshot_store.h — the local snapshot store: a directory of <id>.tar files, each with a
 * <id>.tar.sha256 digest beside it (spec SESSION.md §8.1 "local", plus integrity).
 *
 * Writing is crash-safe: the tar goes to a temporary file in the same directory
 * (".<id>.tar.<random hex>.tmp"), is fsynced, its SHA-256 recorded in a temporary digest
 * file (fsynced), then both are renamed into place (digest first, then the tar... see
 * snapshot_store.c for the exact order) and the directory fsynced. A failure at any step
 * removes the temporaries and leaves the previous snapshot intact. Reading verifies the
 * digest before handing out a single byte: a corrupt, truncated or digest-less snapshot is
 * refused with SBX_ESNAPSHOT_RESTORE and a message saying which.
 */
#ifndef SBX_CORE_SNAPSHOT_STORE_H
#define SBX_CORE_SNAPSHOT_STORE_H

#include <sbx/error.h>

/* An id must be one path segment: not "", ".", "..", no "/" or "\" ->
 * SBX_EINVAL "LocalSnapshot id must be a single path segment". */
int sbx__snap_id_check(const char *id, sbx_error **err);

/* True when <base>/<id>.tar exists and is a regular file. */
int sbx__snap_local_restorable(const char *base, const char *id);

struct sbx_snap_writer;
/* Creates the base directory (0700, parents) if needed and a temporary file; *fd is where
 * the caller writes the tar (do not close it). */
int sbx__snap_local_begin(const char *base, const char *id, struct sbx_snap_writer **w,
                          int *fd, sbx_error **err);
/* ok != 0: digest, fsync, rename into place. ok == 0: discard. Frees w either way. Errors:
 * SBX_ESNAPSHOT_PERSIST with context snapshot_id, path. */
int sbx__snap_local_commit(struct sbx_snap_writer *w, int ok, sbx_error **err);

/* Opens <base>/<id>.tar, verifies its digest, and returns an fd positioned at 0. Errors:
 * SBX_ESNAPSHOT_RESTORE (missing, unreadable, digest missing or not matching; context
 * snapshot_id, path, reason). */
int sbx__snap_local_open(const char *base, const char *id, int *fd, sbx_error **err);

/* SHA-256 of everything readable from fd from its current offset (hex, 65 bytes). */
int sbx__sha256_fd(int fd, char hex[65]);
/* SHA-256 of a buffer. */
void sbx__sha256_buf(const void *p, size_t n, char hex[65]);

#endif
