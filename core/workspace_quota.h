/* workspace_quota.h — a size-limited workspace (workspace_quota.c): an ext4 image on a loop
 * device, mounted at the workspace directory sbx made. */
#ifndef SBX_CORE_WORKSPACE_QUOTA_H
#define SBX_CORE_WORKSPACE_QUOTA_H

#include <stdint.h>

#include <sbx/error.h>

#define SBX_WSQ_IMAGE    "sbx-quota.img" /* in the workspace's sbx-ws-XXXXXX directory */
#define SBX_WSQ_MIN      (8ull << 20)
#define SBX_WSQ_MAX      (16ull << 40)

/* Mounts the image <dir>/sbx-quota.img at ws (nosuid, nodev). `fresh`: dir and ws were just
 * made, and the image is made too (`bytes` long, its root owned by uid:gid). Otherwise
 * (a resumed workspace) an existing image is mounted as it is, and `bytes`, when not 0, must
 * be its size. *mounted is 1 when something was mounted (sbx__wsq_unmount then undoes it).
 * Nothing is left behind on failure. Errors: SBX_EINVAL (size differs; a resumed workspace
 * without an image), SBX_ESTATE (the image is attached to a loop device already: another
 * session uses it, or a crashed one left it mounted), SBX_ENOSYS (no loop devices, no
 * mkfs.ext4, no ext4 in the kernel), SBX_EPERM (not root), SBX_EWORKSPACE_START. */
int sbx__wsq_mount(const char *dir, const char *ws, uint64_t bytes, int fresh, uint32_t uid,
                   uint32_t gid, int *mounted, sbx_error **err);

/* Whether dir holds a workspace image. */
int sbx__wsq_has_image(const char *dir);

/* Unmounts the image from ws; the loop device frees itself when the last mount of the
 * filesystem (the sandbox's own, if it still runs) goes (LO_FLAGS_AUTOCLEAR). */
void sbx__wsq_unmount(const char *ws);

#endif
