/* archive_rules.c — which archive members may be written (spec SESSION.md §8.6, §10, §11.2).
 *
 * The checker sees the members of one archive in order, once, and has to refuse an unsafe
 * archive before the caller writes anything. The rules that need memory are about the tree
 * the members describe:
 *
 *   - the same path twice (unless both are directories) is refused, because the second
 *     member would silently replace the first, possibly with a symlink;
 *   - a member below a symlink member is refused, because writing it would follow the link
 *     (the classic "escape -> /etc, escape/passwd" archive);
 *   - a member below a non-directory is refused, whichever comes first: with
 *     "nested/hello.txt" then file "nested", the extractor would have to replace the
 *     directory it just made, and what it does then differs between tools.
 *
 * One hash table keyed by the normalised relative path holds every member seen and every
 * ancestor directory a member implied. An implied entry remembers the first member found
 * below it, so a later non-directory at that path is reported against that descendant, as
 * the spec's worked case wants. Work and memory are O(total name length): a 100,000-member
 * archive is a 100,000-entry table, never a quadratic scan.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_rules.h"

enum entry_kind {
    K_IMPLIED = 1, /* only seen as the parent of another member: a directory so far */
    K_DIR,
    K_FILE,
    K_SYMLINK,
};

struct entry {
    char *path; /* NULL: empty slot */
    size_t len;
    uint64_t hash;
    int kind;
    char *first_desc; /* K_IMPLIED: the first member seen below this path, as stored */
};

struct sbx_arc_check {
    int mode;
    int has_limits;
    sbx_archive_limits limits;
    uint64_t members; /* non-root members so far */
    uint64_t bytes;   /* declared bytes so far, saturating */
    struct entry *tab;
    size_t cap, used; /* cap is a power of two, used <= cap / 2 */
    char *rel;        /* normalised path of the current member */
    size_t rel_cap;
    char *reason;
    char *member;
    int failed;
    struct sbx_arc_violation last;
};

#define TABLE_MIN_CAP 64

/* FNV-1a: short keys, no adversarial worry beyond slow probing, which the load bound keeps
 * short anyway. */
static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The slot holding (s, n), or the empty slot where it would go. */
static struct entry *table_slot(struct entry *tab, size_t cap, const char *s, size_t n,
                                uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    for (;;) {
        struct entry *e = &tab[i];
        if (!e->path)
            return e;
        if (e->hash == h && e->len == n && memcmp(e->path, s, n) == 0)
            return e;
        i = (i + 1) & (cap - 1);
    }
}

static struct entry *table_find(struct sbx_arc_check *c, const char *s, size_t n)
{
    struct entry *e = table_slot(c->tab, c->cap, s, n, hash_bytes(s, n));
    return e->path ? e : NULL;
}

static int table_grow(struct sbx_arc_check *c)
{
    size_t ncap = c->cap * 2;
    struct entry *ntab = calloc(ncap, sizeof(*ntab));
    if (!ntab)
        return -1;
    for (size_t i = 0; i < c->cap; i++) {
        struct entry *e = &c->tab[i];
        if (e->path)
            *table_slot(ntab, ncap, e->path, e->len, e->hash) = *e;
    }
    free(c->tab);
    c->tab = ntab;
    c->cap = ncap;
    return 0;
}

/* Adds (s, n), known to be absent. desc is copied when not NULL. -1 on allocation failure. */
static int table_add(struct sbx_arc_check *c, const char *s, size_t n, int kind,
                     const char *desc)
{
    if ((c->used + 1) * 2 > c->cap && table_grow(c) < 0)
        return -1;
    char *path = strndup(s, n);
    char *d = desc ? strdup(desc) : NULL;
    if (!path || (desc && !d)) {
        free(path);
        free(d);
        return -1;
    }
    uint64_t h = hash_bytes(s, n);
    struct entry *e = table_slot(c->tab, c->cap, s, n, h);
    e->path = path;
    e->len = n;
    e->hash = h;
    e->kind = kind;
    e->first_desc = d;
    c->used++;
    return 0;
}

struct sbx_arc_check *sbx__arc_check_new(int mode, const sbx_archive_limits *limits)
{
    struct sbx_arc_check *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->mode = mode;
    if (limits) {
        c->has_limits = 1;
        c->limits = *limits;
    }
    c->cap = TABLE_MIN_CAP;
    c->tab = calloc(c->cap, sizeof(*c->tab));
    if (!c->tab) {
        free(c);
        return NULL;
    }
    return c;
}

void sbx__arc_check_free(struct sbx_arc_check *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++) {
        free(c->tab[i].path);
        free(c->tab[i].first_desc);
    }
    free(c->tab);
    free(c->rel);
    free(c->reason);
    free(c->member);
    free(c);
}

/* Records a refusal. The checker is spent afterwards: the caller drops the whole archive. */
__attribute__((format(printf, 4, 5))) static int refuse(struct sbx_arc_check *c,
                                                        struct sbx_arc_violation *v,
                                                        const char *member, const char *fmt,
                                                        ...)
{
    free(c->reason);
    free(c->member);
    c->reason = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&c->reason, fmt, ap) < 0)
        c->reason = NULL;
    va_end(ap);
    c->member = strdup(member);
    memset(&c->last, 0, sizeof(c->last));
    /* Without memory for the text the archive is still refused; only the wording suffers. */
    c->last.reason = c->reason ? c->reason : "out of memory";
    c->last.member = c->member ? c->member : "";
    c->failed = 1;
    *v = c->last;
    return -1;
}

static int refuse_limit(struct sbx_arc_check *c, struct sbx_arc_violation *v,
                        const char *member, const char *reason, uint64_t limit,
                        uint64_t actual)
{
    refuse(c, v, member, "%s", reason);
    c->last.has_limit = 1;
    c->last.limit = limit;
    c->last.actual = actual;
    *v = c->last;
    return -1;
}

static int is_drive_name(const char *s)
{
    char l = s[0];
    int letter = (l >= 'a' && l <= 'z') || (l >= 'A' && l <= 'Z');
    return letter && s[1] == ':' && (s[2] == '\0' || s[2] == '/' || s[2] == '\\');
}

static int has_dotdot(const char *s)
{
    const char *p = s;
    while (*p) {
        const char *c = p;
        while (*p && *p != '/')
            p++;
        if (p - c == 2 && c[0] == '.' && c[1] == '.')
            return 1;
        while (*p == '/')
            p++;
    }
    return 0;
}

/* Name rules that need no memory, in the spec's order: a name that breaks several gets the
 * first reason ("..\x" is a separator problem, not a traversal one). */
static const char *name_reason(const char *name)
{
    if (is_drive_name(name))
        return "windows drive path";
    if (strchr(name, '\\'))
        return "windows path separator";
    if (name[0] == '/')
        return "absolute path";
    if (has_dotdot(name))
        return "parent traversal";
    return NULL;
}

/* Writes the normalised form of name into c->rel: empty and "." components dropped (which
 * also drops a leading "./" and a trailing "/"). -1 on allocation failure. */
static int normalise(struct sbx_arc_check *c, const char *name)
{
    size_t n = strlen(name);
    if (n + 1 > c->rel_cap) {
        char *r = realloc(c->rel, n + 1);
        if (!r)
            return -1;
        c->rel = r;
        c->rel_cap = n + 1;
    }
    size_t len = 0;
    const char *p = name;
    while (*p) {
        while (*p == '/')
            p++;
        const char *comp = p;
        while (*p && *p != '/')
            p++;
        size_t cn = (size_t)(p - comp);
        if (cn == 0 || (cn == 1 && comp[0] == '.'))
            continue;
        if (len > 0)
            c->rel[len++] = '/';
        memcpy(c->rel + len, comp, cn);
        len += cn;
    }
    c->rel[len] = '\0';
    return 0;
}

/* True when target, read from the directory holding rel, climbs above the archive root at
 * any point ("a/l -> ../../a/x" leaves the root before coming back, and the extractor has no
 * business resolving through whatever lies above it). */
static int target_escapes(const char *rel, const char *target)
{
    long depth = 0;
    for (const char *p = rel; *p; p++) {
        if (*p == '/')
            depth++;
    }
    const char *p = target;
    while (*p) {
        while (*p == '/')
            p++;
        const char *comp = p;
        while (*p && *p != '/')
            p++;
        size_t cn = (size_t)(p - comp);
        if (cn == 0 || (cn == 1 && comp[0] == '.'))
            continue;
        if (cn == 2 && comp[0] == '.' && comp[1] == '.') {
            if (--depth < 0)
                return 1;
        } else {
            depth++;
        }
    }
    return 0;
}

static int check_root(struct sbx_arc_check *c, const struct sbx_arc_member *m,
                      struct sbx_arc_violation *v)
{
    /* A zip has no root entry type to speak of; its "./" is simply skipped (§10). */
    if (m->type == SBX_ARC_DIR || m->from_zip)
        return 0;
    if (m->type == SBX_ARC_SYMLINK)
        return refuse(c, v, m->name, "archive root symlink");
    if (m->type == SBX_ARC_HARDLINK)
        return refuse(c, v, m->name, "archive root hardlink");
    return refuse(c, v, m->name, "archive root member must be directory");
}

static int check_type(struct sbx_arc_check *c, const struct sbx_arc_member *m,
                      struct sbx_arc_violation *v)
{
    switch (m->type) {
    case SBX_ARC_DIR:
    case SBX_ARC_FILE:
        return 0;
    case SBX_ARC_HARDLINK:
        /* A hardlink target names an existing file anywhere on the filesystem the extractor
         * can see; there is no lexical way to keep it inside. */
        return refuse(c, v, m->name, "hardlink member not allowed");
    case SBX_ARC_SYMLINK:
        break;
    default:
        return refuse(c, v, m->name, "unsupported member type");
    }
    if (c->mode != SBX_ARC_HYDRATE) {
        if (m->from_zip)
            return refuse(c, v, m->name, "link member not allowed");
        return refuse(c, v, m->name, "symlink member not allowed");
    }
    const char *t = m->link_target ? m->link_target : "";
    if (t[0] == '/')
        return refuse(c, v, m->name, "absolute symlink target not allowed: %s", t);
    if (target_escapes(c->rel, t))
        return refuse(c, v, m->name, "symlink target escapes archive root: %s", t);
    return 0;
}

static int check_limits(struct sbx_arc_check *c, const struct sbx_arc_member *m,
                        struct sbx_arc_violation *v)
{
    c->members++;
    /* Tar counts what it will write as file data; zip counts every entry's declared
     * uncompressed size (§10), directories included (they declare 0). */
    uint64_t add = (m->from_zip || m->type == SBX_ARC_FILE) ? m->size : 0;
    c->bytes = (c->bytes > UINT64_MAX - add) ? UINT64_MAX : c->bytes + add;
    if (!c->has_limits)
        return 0;
    if (c->limits.max_members && c->members > c->limits.max_members)
        return refuse_limit(c, v, m->name, "archive member count exceeds limit",
                            c->limits.max_members, c->members);
    if (c->limits.max_extracted_bytes && c->bytes > c->limits.max_extracted_bytes)
        return refuse_limit(c, v, m->name, "archive extracted size exceeds limit",
                            c->limits.max_extracted_bytes, c->bytes);
    return 0;
}

static int kind_of(int type)
{
    if (type == SBX_ARC_DIR)
        return K_DIR;
    if (type == SBX_ARC_SYMLINK)
        return K_SYMLINK;
    return K_FILE;
}

static int out_of_memory(struct sbx_arc_check *c, const struct sbx_arc_member *m,
                         struct sbx_arc_violation *v)
{
    return refuse(c, v, m->name, "out of memory checking archive members");
}

static int check_tree(struct sbx_arc_check *c, const struct sbx_arc_member *m,
                      struct sbx_arc_violation *v)
{
    const char *rel = c->rel;
    size_t n = strlen(rel);
    for (size_t i = 0; i < n; i++) {
        if (rel[i] != '/')
            continue;
        struct entry *e = table_find(c, rel, i);
        if (!e) {
            if (table_add(c, rel, i, K_IMPLIED, m->name) < 0)
                return out_of_memory(c, m, v);
        } else if (e->kind == K_SYMLINK) {
            return refuse(c, v, m->name, "archive path descends through symlink: %.*s", (int)i,
                          rel);
        } else if (e->kind == K_FILE) {
            return refuse(c, v, m->name, "archive path descends through non-directory: %.*s",
                          (int)i, rel);
        }
    }
    int kind = kind_of(m->type);
    struct entry *e = table_find(c, rel, n);
    if (!e) {
        if (table_add(c, rel, n, kind, NULL) < 0)
            return out_of_memory(c, m, v);
        return 0;
    }
    if (e->kind == K_IMPLIED) {
        if (kind == K_DIR) {
            e->kind = K_DIR;
            free(e->first_desc);
            e->first_desc = NULL;
            return 0;
        }
        /* The non-directory came after something below it: blame the descendant, which is
         * the member that would have been written through it. */
        if (kind == K_SYMLINK)
            return refuse(c, v, e->first_desc, "archive path descends through symlink: %s",
                          rel);
        return refuse(c, v, e->first_desc, "archive path descends through non-directory: %s",
                      rel);
    }
    if (e->kind == K_DIR && kind == K_DIR)
        return 0;
    return refuse(c, v, m->name, "duplicate archive path: %s", rel);
}

int sbx__arc_check_member(struct sbx_arc_check *c, const struct sbx_arc_member *m,
                          const char **rel, struct sbx_arc_violation *v)
{
    *rel = NULL;
    memset(v, 0, sizeof(*v));
    if (c->failed) {
        *v = c->last;
        return -1;
    }
    struct sbx_arc_member mm = *m;
    if (!mm.name)
        mm.name = "";
    const char *why = name_reason(mm.name);
    if (why)
        return refuse(c, v, mm.name, "%s", why);
    if (normalise(c, mm.name) < 0)
        return out_of_memory(c, &mm, v);
    if (c->rel[0] == '\0')
        return check_root(c, &mm, v);
    if (check_type(c, &mm, v) < 0 || check_limits(c, &mm, v) < 0 || check_tree(c, &mm, v) < 0)
        return -1;
    *rel = c->rel;
    return 1;
}

unsigned sbx__arc_sanitize_mode(unsigned archived_mode)
{
    /* No setuid/setgid/sticky and no group/other write from an archive; a file the owner
     * cannot execute is not executable by anyone; the owner can always read and write. */
    unsigned m = archived_mode & 0755;
    if (!(m & 0100))
        m &= ~0111u;
    return m | 0600;
}

const char *sbx__arc_scheme(const char *path, const char *explicit_scheme, const char **given)
{
    const char *s = NULL;
    if (explicit_scheme && explicit_scheme[0]) {
        s = explicit_scheme;
    } else if (path) {
        const char *base = path;
        for (const char *p = path; *p; p++) {
            if (*p == '/' || *p == '\\')
                base = p + 1;
        }
        /* Python's Path.suffix: ".bashrc" and "x." have none. */
        const char *dot = strrchr(base, '.');
        if (dot && dot != base && dot[1] != '\0')
            s = dot + 1;
    }
    if (given)
        *given = s;
    if (s && strcmp(s, "tar") == 0)
        return "tar";
    if (s && strcmp(s, "zip") == 0)
        return "zip";
    return NULL;
}
