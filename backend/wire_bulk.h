/* wire_bulk.h — bulk records: how a whole tree crosses the data socket of a WALK (agent to
 * host: persist) or a PUT (host to agent: hydrate, extract). Shared (libc only); both ends
 * are the same machine, so integers are native-endian.
 *
 * A stream is a sequence of records, each a fixed header, then `path_len` bytes of path
 * (relative, no NUL), then `target_len` bytes of symlink target, then for files the data:
 *
 *   WALK (agent -> host): `n_extents` extents {u64 offset, u64 len}, then the bytes of every
 *        extent in order. A sparse file lists only its data; a file that shrank while it was
 *        read is padded with zeros, one that grew is cut, so the stream always has exactly the
 *        bytes the header announced and the host can write a tar header first.
 *   PUT (host -> agent): chunks {u64 offset, u32 len, u32 last} each followed by len bytes;
 *        the chunk with last = 1 ends the file, whose size is then truncated to hdr.size
 *        (so holes stay holes).
 *
 * The stream ends with an END record (commit) or an ABORT record; a stream that just stops
 * is an abort.
 */
#ifndef SBX_WIRE_BULK_H
#define SBX_WIRE_BULK_H

#include <stdint.h>

enum sbx_bulk_kind {
    SBX_BULK_DIR = 1,
    SBX_BULK_FILE = 2,
    SBX_BULK_SYMLINK = 3,
    SBX_BULK_END = 4,
    SBX_BULK_ABORT = 5,
};

#define SBX_BULK_MAX_PATH   4096u
#define SBX_BULK_MAX_EXTENTS 65536u

struct sbx_bulk_hdr {
    uint32_t kind;
    uint32_t mode;       /* permission bits */
    int64_t mtime_sec;
    uint32_t mtime_nsec;
    uint32_t path_len;
    uint32_t target_len;
    uint32_t n_extents;  /* WALK files only */
    uint64_t size;       /* files: logical size */
};

struct sbx_bulk_extent {
    uint64_t offset, len;
};

struct sbx_bulk_chunk {
    uint64_t offset;
    uint32_t len;
    uint32_t last;
};

#endif
