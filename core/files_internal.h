/* files_internal.h — shared by files.c and archive.c. */
#ifndef SBX_CORE_FILES_INTERNAL_H
#define SBX_CORE_FILES_INTERNAL_H

#include "core.h"

/* Maps a failed file op (o->err != 0) to the spec's error for `op` ("ls", "rm", "mkdir",
 * "read", "write"); `path` is the caller's, `abs` the normalised one. Returns the code. */
int sbx__files_map_error(const sbx_session *s, const char *op, const char *path,
                         const char *abs, const struct sbx_backend_file_out *o,
                         sbx_error **err);

#endif
