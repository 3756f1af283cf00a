/* archive_rules.h — safety rules for archive members (SESSION.md §8.6 hydrate, §10 extract).
 *
 * A checker is fed every member of one archive in order and says, member by member, whether
 * it is allowed; it also enforces the archive limits. Nothing here touches the filesystem: the
 * caller decides what to do with an accepted member (the backend writes it inside the
 * sandbox). Memory is proportional to the number of distinct member paths (for duplicate and
 * ancestor checks), never to the archive's bytes.
 */
#ifndef SBX_CORE_ARCHIVE_RULES_H
#define SBX_CORE_ARCHIVE_RULES_H

#include <stddef.h>
#include <stdint.h>

#include <sbx/archive.h>

enum sbx_arc_mode {
    SBX_ARC_HYDRATE, /* strict: relative symlinks inside the archive root allowed */
    SBX_ARC_EXTRACT, /* no symlink members at all */
};

enum sbx_arc_type {
    SBX_ARC_DIR,
    SBX_ARC_FILE,
    SBX_ARC_SYMLINK,
    SBX_ARC_HARDLINK,
    SBX_ARC_OTHER, /* device, FIFO, socket, unknown */
};

struct sbx_arc_member {
    const char *name;        /* as stored in the archive */
    int type;                /* enum sbx_arc_type */
    const char *link_target; /* symlink or hardlink target; NULL otherwise */
    uint64_t size;           /* declared size (zip: uncompressed) */
    int from_zip;            /* zip: symlink reason is "link member not allowed" */
};

/* Why a member or the archive was refused. Strings are owned by the checker and live until
 * the next call or sbx__arc_check_free. `limit`/`actual` are set for limit reasons only
 * (has_limit = 1). */
struct sbx_arc_violation {
    const char *reason; /* exact spec text, e.g. "parent traversal",
                           "symlink target escapes archive root: ../../x" */
    const char *member; /* member name as stored */
    int has_limit;
    uint64_t limit, actual;
};

struct sbx_arc_check;

/* limits may be NULL (no limits); a zero field disables that limit. */
struct sbx_arc_check *sbx__arc_check_new(int mode, const sbx_archive_limits *limits);
void sbx__arc_check_free(struct sbx_arc_check *c);

/* Checks one member. Returns 1 when it is to be written, with *rel set to its normalised
 * relative path (owned by the checker; valid until the next call); 0 when it is a root member
 * ("", ".", "./" directory) to skip; -1 when refused, with *v filled. After a refusal the
 * checker must not be used again except to free it. */
int sbx__arc_check_member(struct sbx_arc_check *c, const struct sbx_arc_member *m,
                          const char **rel, struct sbx_arc_violation *v);

/* Mode sanitising of hydrated files (SESSION.md §8.6 step 4): (m & 0755), exec bits cleared
 * when the owner's is clear, then | 0600. */
unsigned sbx__arc_sanitize_mode(unsigned archived_mode);

/* The compression scheme from an explicit value or the last suffix of path (SESSION.md §10
 * step 2). Returns "tar", "zip", or NULL; *given is the scheme text considered (NULL when
 * none), for the error message. */
const char *sbx__arc_scheme(const char *path, const char *explicit_scheme, const char **given);

#endif
