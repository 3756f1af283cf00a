/* file_ops.h — file operations inside the sandbox (file_worker.c, file_bulk.c).
 *
 * Every path a request names is resolved by the kernel relative to the workspace root's fd
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): ".." or a symlink that would leave
 * the root fails with EXDEV however the tree changes underneath, so code in the sandbox
 * racing symlinks cannot make an operation touch anything outside the workspace. Trees that
 * sbx itself writes (put) are resolved with RESOLVE_NO_SYMLINKS as well. The worker runs as
 * the requesting user, so the kernel's permission checks are the user's.
 */
#ifndef SBX_AGENT_FILE_OPS_H
#define SBX_AGENT_FILE_OPS_H

#include <linux/openat2.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire_bulk.h"
#include "wire_msgs.h"

#define SBX_RESOLVE_WS  (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
#define SBX_RESOLVE_OWN (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS)

#define SBX_BULK_PATH_BUF 4200 /* paths are at most PATH_MAX; a little room for joins */

/* The outcome a worker reports in FILE_DONE. */
struct sbx_fop_result {
    int err;       /* errno, 0 on success */
    uint32_t step; /* enum sbx_wire_file_step */
    char detail[4200];
    uint64_t bytes;
};

/* openat2 relative to dirfd ("" means dirfd itself). Returns an fd or -errno. */
int sbx_fop_open(int dirfd, const char *rel, int oflags, mode_t mode, uint64_t resolve);
/* mkdir -p of rel below dirfd with the given resolve flags. 0 or -errno. */
int sbx_fop_mkdir_p(int dirfd, const char *rel, mode_t mode, uint64_t resolve);
/* Opens the parent directory of rel (O_PATH) and points *leaf into rel. -errno on error,
 * -EINVAL for "" (the root has no parent here). */
int sbx_fop_parent(int dirfd, const char *rel, uint64_t resolve, const char **leaf);
/* Removes name (in parent) and everything below it, never following a symlink. */
int sbx_fop_rmtree(int parent, const char *name);
/* send() all of buf (MSG_NOSIGNAL). 0 or -errno. */
int sbx_fop_send_all(int sock, const void *buf, size_t len);
/* read() exactly len bytes; -EPIPE on EOF first. */
int sbx_fop_recv_all(int sock, void *buf, size_t len);

/* Serves one FILE request (file_worker.c). */
void sbx_agent_serve_file(int chan, const unsigned char *p, size_t len, const int *fds,
                          size_t n_fds);

/* file_bulk.c */
void sbx_fop_walk(int rootfd, const struct sbx_wire_file *f, int data, struct sbx_fop_result *r);
void sbx_fop_put(int rootfd, const struct sbx_wire_file *f, int data, struct sbx_fop_result *r);
/* Work left for after the answer (removing a replaced tree). */
void sbx_fop_cleanup(void);

#endif
