/* manifest.h — the declarative workspace description (spec MANIFEST.md), parsed from and
 * written to JSON with json-c. Supported entry kinds: "file" and "dir"; environment values
 * as plain strings or {"type":"str","value":...}; users and groups. Anything else in the
 * JSON is refused with a message naming it (SBX_ECONFIG, op "materialize").
 */
#ifndef SBX_CORE_MANIFEST_H
#define SBX_CORE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include <sbx/error.h>

enum sbx_mf_kind { SBX_MF_FILE, SBX_MF_DIR };

struct sbx_mf_entry {
    char *key;             /* relative path as normalised by sbx__path_rel_strict */
    int kind;              /* enum sbx_mf_kind */
    unsigned char *content; /* file: bytes (JSON: "content" as a UTF-8 string, or
                               "content_b64" as base64 for arbitrary bytes) */
    size_t content_len;
    unsigned mode;         /* permission bits (JSON "permissions": "0644" octal string or an
                              integer); default 0755 as the spec says */
    int ephemeral;
    char *description;     /* may be NULL */
    struct sbx_mf_entry *children; /* dir only, in declaration order */
    size_t n_children;
};

struct sbx_mf_env {
    char *name, *value;
};

struct sbx_mf_group {
    char *name;
    char **users; /* member user names */
    size_t n_users;
};

struct sbx_manifest {
    char *root; /* absolute, cleaned; default "/workspace" */
    struct sbx_mf_entry *entries; /* declaration order */
    size_t n_entries;
    struct sbx_mf_env *env;
    size_t n_env;
    char **users;
    size_t n_users;
    struct sbx_mf_group *groups;
    size_t n_groups;
};

/* A default manifest (root "/workspace", nothing else). NULL on allocation failure. */
struct sbx_manifest *sbx__manifest_new_default(void);
/* Parses and validates (every key with sbx__path_rel_strict, recursively; user and group
 * names [a-z_][a-z0-9_-]{0,31}; env names [A-Za-z_][A-Za-z0-9_]*; version 1 only). */
int sbx__manifest_from_json(const char *json, struct sbx_manifest **out, sbx_error **err);
/* Canonical JSON: sorted keys, compact separators (the digest input, and what the session
 * state embeds). malloc'd; NULL on allocation failure. */
char *sbx__manifest_to_json(const struct sbx_manifest *m);
/* The same as a json-c object (caller puts it). */
struct json_object *sbx__manifest_to_jobj(const struct sbx_manifest *m);
int sbx__manifest_from_jobj(struct json_object *o, struct sbx_manifest **out, sbx_error **err);
/* SHA-256 hex (65 bytes with NUL) of the canonical JSON. */
int sbx__manifest_digest(const struct sbx_manifest *m, char hex[65]);
void sbx__manifest_free(struct sbx_manifest *m);

/* Every ephemeral entry's path (relative; nested dir children included, an ephemeral dir
 * listed once, not its children), for the persist skip set. malloc'd vector, NULL-terminated. */
char **sbx__manifest_ephemeral_paths(const struct sbx_manifest *m);

#endif
