/* manifest.c — the workspace manifest (spec MANIFEST.md §1-5) to and from JSON.
 *
 * Parsing is eager and strict where Python is lazy: every key in the tree goes through
 * sbx__path_rel_strict while the JSON is read, so a manifest that parsed can be materialised
 * without a path check failing half-way through (MANIFEST.md §5.1 step 3 asks for exactly
 * that ordering). Anything sbx does not implement (local_file, local_dir, git_repo, mounts,
 * entry groups, extra path grants) is refused by name rather than ignored: dropping an entry
 * silently would hand the caller a workspace that is not the one they described.
 *
 * Two JSON forms come out of one object tree:
 *   - sbx__manifest_to_jobj keeps the declaration order of entries, children and
 *     environment variables. The session state embeds this form, because materialisation
 *     order decides which of two overlapping entries ("d/x.txt" and a dir "d" holding
 *     "x.txt") wins, and a resumed session must apply them as they were declared.
 *   - sbx__manifest_to_json sorts every key, maps included, with compact separators: the
 *     digest input (SESSION.md §8.3), so two spellings of one manifest hash alike.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_internal.h"
#include "json_util.h"
#include "manifest.h"
#include "paths.h"
#include "snapshot_store.h"

#define OP "materialize"

/* Kinds the spec defines but sbx does not materialise: refused as unsupported, which tells
 * the caller the manifest is fine but this backend cannot honour it. */
static const char *const unsupported_kinds[] = {
    "local_file", "local_dir",        "git_repo",  "s3_mount",       "r2_mount",
    "gcs_mount",  "azure_blob_mount", "box_mount", "s3_files_mount", NULL,
};

static void entry_fini(struct sbx_mf_entry *e)
{
    free(e->key);
    free(e->content);
    free(e->description);
    for (size_t i = 0; i < e->n_children; i++)
        entry_fini(&e->children[i]);
    free(e->children);
}

void sbx__manifest_free(struct sbx_manifest *m)
{
    if (!m)
        return;
    free(m->root);
    for (size_t i = 0; i < m->n_entries; i++)
        entry_fini(&m->entries[i]);
    free(m->entries);
    for (size_t i = 0; i < m->n_env; i++) {
        free(m->env[i].name);
        free(m->env[i].value);
    }
    free(m->env);
    for (size_t i = 0; i < m->n_users; i++)
        free(m->users[i]);
    free(m->users);
    for (size_t i = 0; i < m->n_groups; i++) {
        free(m->groups[i].name);
        for (size_t j = 0; j < m->groups[i].n_users; j++)
            free(m->groups[i].users[j]);
        free(m->groups[i].users);
    }
    free(m->groups);
    free(m);
}

struct sbx_manifest *sbx__manifest_new_default(void)
{
    struct sbx_manifest *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->root = strdup("/workspace");
    if (!m->root) {
        free(m);
        return NULL;
    }
    return m;
}

static int oom(sbx_error **err)
{
    return sbx_err(err, SBX_ENOMEM, 0, OP, "out of memory reading the manifest");
}

/* A JSON string usable as a C string: json-c accepts "\u0000", which would silently cut a
 * name or value short. */
static const char *cstr(struct json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return NULL;
    return s;
}

static int is_lower_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int is_env_name(const char *s)
{
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (const char *p = s + 1; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* "0644", "644", "0o644" or an integer mode; file-type bits of an integer (0100644) are
 * stripped as the spec says. */
static int parse_mode(struct json_object *v, unsigned *out)
{
    if (json_object_is_type(v, json_type_int)) {
        int64_t n = json_object_get_int64(v);
        if (n < 0 || n > 0177777)
            return -1;
        *out = (unsigned)n & 07777;
        return 0;
    }
    const char *s = cstr(v);
    if (!s)
        return -1;
    if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
        s += 2;
    size_t n = strlen(s);
    if (n == 0 || n > 4)
        return -1;
    unsigned m = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7')
            return -1;
        m = m * 8 + (unsigned)(s[i] - '0');
    }
    *out = m;
    return 0;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard alphabet, padded. -1 on anything malformed: a half-decoded file is worse than a
 * refused manifest. */
static int b64_decode(const char *s, size_t n, unsigned char **out, size_t *out_len)
{
    if (n % 4 != 0)
        return -1;
    unsigned char *r = malloc(n / 4 * 3 + 1);
    if (!r)
        return -2;
    size_t len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = (s[i + 2] == '=') + (s[i + 3] == '=');
        int last = i + 4 == n;
        if ((pad && !last) || (s[i + 2] == '=' && s[i + 3] != '='))
            goto bad;
        int v[4];
        for (int k = 0; k < 4 - pad; k++) {
            v[k] = b64_val(s[i + (size_t)k]);
            if (v[k] < 0)
                goto bad;
        }
        r[len++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            r[len++] = (unsigned char)((v[1] & 0xf) << 4 | v[2] >> 2);
        if (pad < 1)
            r[len++] = (unsigned char)((v[2] & 0x3) << 6 | v[3]);
    }
    *out = r;
    *out_len = len;
    return 0;
bad:
    free(r);
    return -1;
}

static char *b64_encode(const unsigned char *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *r = malloc((n + 2) / 3 * 4 + 1);
    if (!r)
        return NULL;
    char *o = r;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *o = '\0';
    return r;
}

/* Strict UTF-8 without NUL (no overlongs, no surrogates): only such content can be written
 * as a JSON string and read back byte for byte; anything else goes out as content_b64. */
static int utf8_text(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        unsigned min;
        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            c = c << 6 | (p[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static char *join_rel(const char *parent, const char *key)
{
    char *r = NULL;
    if (!parent || !*parent)
        return strdup(key);
    if (!*key)
        return strdup(parent);
    if (asprintf(&r, "%s/%s", parent, key) < 0)
        return NULL;
    return r;
}

static int entry_err(sbx_error **err, const char *path, const char *what, const char *field)
{
    int rc = sbx_err(err, SBX_ECONFIG, 0, OP, "manifest entry '%s': %s%s", path, what, field);
    sbx_err_ctx(err, "entry", "%s", path);
    return rc;
}

static int parse_entries(struct json_object *obj, const char *parent, struct sbx_mf_entry **out,
                         size_t *n_out, sbx_error **err);

static int parse_file_content(struct json_object *content, struct json_object *b64,
                              const char *path, struct sbx_mf_entry *e, sbx_error **err)
{
    if (content && b64)
        return entry_err(err, path, "give either content or content_b64, not both", "");
    if (!content && !b64)
        return entry_err(err, path, "a file entry needs content or content_b64", "");
    if (content) {
        if (!json_object_is_type(content, json_type_string))
            return entry_err(err, path, "content must be a string", "");
        size_t len = (size_t)json_object_get_string_len(content);
        e->content = malloc(len + 1);
        if (!e->content)
            return oom(err);
        memcpy(e->content, json_object_get_string(content), len);
        e->content_len = len;
        return 0;
    }
    const char *s = cstr(b64);
    int r = s ? b64_decode(s, strlen(s), &e->content, &e->content_len) : -1;
    if (r == -2)
        return oom(err);
    if (r < 0)
        return entry_err(err, path, "content_b64 is not valid base64", "");
    return 0;
}

static int is_unsupported_kind(const char *t)
{
    for (size_t i = 0; unsupported_kinds[i]; i++) {
        if (strcmp(t, unsupported_kinds[i]) == 0)
            return 1;
    }
    return 0;
}

/* One entry: e->key is already set; path is its full relative path, for messages. */
static int parse_entry(struct json_object *v, const char *path, struct sbx_mf_entry *e,
                       sbx_error **err)
{
    if (!json_object_is_type(v, json_type_object))
        return entry_err(err, path, "an entry must be a JSON object", "");
    struct json_object *t = NULL;
    const char *type = json_object_object_get_ex(v, "type", &t) ? cstr(t) : NULL;
    if (!type)
        return entry_err(err, path, "missing string field ", "'type'");
    if (strcmp(type, "file") == 0) {
        e->kind = SBX_MF_FILE;
    } else if (strcmp(type, "dir") == 0) {
        e->kind = SBX_MF_DIR;
    } else if (is_unsupported_kind(type)) {
        int rc = sbx_err(err, SBX_ECONFIG, 0, OP,
                         "manifest entry '%s': unsupported entry type '%s' (sbx materialises "
                         "only 'file' and 'dir' entries)",
                         path, type);
        sbx_err_ctx(err, "entry", "%s", path);
        sbx_err_ctx(err, "type", "%s", type);
        return rc;
    } else {
        int rc = sbx_err(err, SBX_ECONFIG, 0, OP,
                         "Unknown artifact type `%s`. Registered types: dir, file", type);
        sbx_err_ctx(err, "entry", "%s", path);
        sbx_err_ctx(err, "type", "%s", type);
        return rc;
    }
    e->mode = 0755;
    struct json_object *content = NULL, *b64 = NULL, *children = NULL;
    json_object_object_foreach(v, k, val)
    {
        if (strcmp(k, "type") == 0) {
            continue;
        } else if (strcmp(k, "description") == 0) {
            if (json_object_is_type(val, json_type_null))
                continue;
            const char *d = cstr(val);
            if (!d)
                return entry_err(err, path, "description must be a string or null", "");
            free(e->description);
            e->description = strdup(d);
            if (!e->description)
                return oom(err);
        } else if (strcmp(k, "ephemeral") == 0) {
            if (!json_object_is_type(val, json_type_boolean))
                return entry_err(err, path, "ephemeral must be true or false", "");
            e->ephemeral = json_object_get_boolean(val);
        } else if (strcmp(k, "permissions") == 0) {
            if (parse_mode(val, &e->mode) < 0)
                return entry_err(err, path,
                                 "permissions must be an octal string such as \"0644\" or an "
                                 "integer mode",
                                 "");
        } else if (strcmp(k, "is_dir") == 0) {
            /* Informational in the spec: the kind already says it. */
            if (!json_object_is_type(val, json_type_boolean))
                return entry_err(err, path, "is_dir must be true or false", "");
        } else if (strcmp(k, "group") == 0) {
            if (!json_object_is_type(val, json_type_null))
                return entry_err(err, path, "unsupported field ", "'group' (entry chgrp)");
        } else if (e->kind == SBX_MF_FILE && strcmp(k, "content") == 0) {
            content = val;
        } else if (e->kind == SBX_MF_FILE && strcmp(k, "content_b64") == 0) {
            b64 = val;
        } else if (e->kind == SBX_MF_DIR && strcmp(k, "children") == 0) {
            children = val;
        } else {
            int rc = sbx_err(err, SBX_ECONFIG, 0, OP,
                             "manifest entry '%s': unknown field '%s' for a %s entry", path, k,
                             type);
            sbx_err_ctx(err, "entry", "%s", path);
            return rc;
        }
    }
    if (e->kind == SBX_MF_FILE)
        return parse_file_content(content, b64, path, e, err);
    if (!children || json_object_is_type(children, json_type_null))
        return 0;
    if (!json_object_is_type(children, json_type_object))
        return entry_err(err, path, "children must be a JSON object", "");
    return parse_entries(children, path, &e->children, &e->n_children, err);
}

static int parse_entries(struct json_object *obj, const char *parent, struct sbx_mf_entry **out,
                         size_t *n_out, sbx_error **err)
{
    size_t cap = (size_t)json_object_object_length(obj);
    if (cap == 0)
        return 0;
    struct sbx_mf_entry *v = calloc(cap, sizeof(*v));
    if (!v)
        return oom(err);
    *out = v;
    json_object_object_foreach(obj, k, val)
    {
        struct sbx_mf_entry *e = &v[*n_out];
        (*n_out)++;
        int rc = sbx__path_rel_strict(k, &e->key, err);
        if (rc < 0) {
            if (parent && *parent)
                sbx_err_ctx(err, "entry", "%s", parent);
            return rc;
        }
        char *path = join_rel(parent, e->key);
        if (!path)
            return oom(err);
        /* "a" and "./a" name one destination; keeping both would make the canonical form
         * (and so the digest) depend on which one json-c kept. */
        for (size_t i = 0; i + 1 < *n_out; i++) {
            if (strcmp(v[i].key, e->key) == 0) {
                rc = entry_err(err, path, "declared twice", "");
                free(path);
                return rc;
            }
        }
        rc = parse_entry(val, path, e, err);
        free(path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Typed value {type: "str", value} or the legacy {value: "x"}. */
static int parse_env_typed(const char *name, struct json_object *v, char **out, sbx_error **err)
{
    struct json_object *t = NULL, *val = NULL;
    int has_type = json_object_object_get_ex(v, "type", &t);
    int has_value = json_object_object_get_ex(v, "value", &val);
    const char *type = has_type ? cstr(t) : NULL;
    int legacy = !has_type && has_value && json_object_is_type(val, json_type_string) &&
                 json_object_object_length(v) == 1;
    if (!legacy && !type)
        return sbx_err(err, SBX_ECONFIG, 0, OP,
                       "environment value %s must include a string `type` field", name);
    if (type && strcmp(type, "str") != 0)
        return sbx_err(err, SBX_ECONFIG, 0, OP,
                       "Unknown env value type `%s` for %s. Registered types: str", type, name);
    json_object_object_foreach(v, k, unused)
    {
        (void)unused;
        if (strcmp(k, "type") != 0 && strcmp(k, "value") != 0)
            return sbx_err(err, SBX_ECONFIG, 0, OP,
                           "environment value %s: unknown field '%s' for type `str`", name, k);
    }
    const char *s = has_value ? cstr(val) : NULL;
    if (!s)
        return sbx_err(err, SBX_ECONFIG, 0, OP,
                       "environment value %s: `value` must be a string without NUL bytes", name);
    *out = strdup(s);
    return *out ? 0 : oom(err);
}

/* A plain string, a typed value, or an entry {description?, ephemeral?, value: typed}. The
 * entry's description and ephemeral flag are accepted and dropped: no backend consults them
 * (MANIFEST.md §4). */
static int parse_env_value(const char *name, struct json_object *v, char **out, sbx_error **err)
{
    const char *s = cstr(v);
    if (s) {
        *out = strdup(s);
        return *out ? 0 : oom(err);
    }
    if (!json_object_is_type(v, json_type_object))
        return sbx_err(err, SBX_ECONFIG, 0, OP,
                       "environment value %s must be a string or {\"type\": \"str\", \"value\": "
                       "...}",
                       name);
    struct json_object *t = NULL, *val = NULL;
    if (json_object_object_get_ex(v, "type", &t) || !json_object_object_get_ex(v, "value", &val) ||
        !json_object_is_type(val, json_type_object))
        return parse_env_typed(name, v, out, err);
    json_object_object_foreach(v, k, kv)
    {
        if (strcmp(k, "value") == 0)
            continue;
        int ok = (strcmp(k, "description") == 0 &&
                  (json_object_is_type(kv, json_type_null) || cstr(kv))) ||
                 (strcmp(k, "ephemeral") == 0 && json_object_is_type(kv, json_type_boolean));
        if (!ok)
            return sbx_err(err, SBX_ECONFIG, 0, OP,
                           "environment entry %s: unexpected field '%s'", name, k);
    }
    return parse_env_typed(name, val, out, err);
}

static int parse_env(struct json_object *v, struct sbx_manifest *m, sbx_error **err)
{
    if (json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_object))
        return sbx_err(err, SBX_ECONFIG, 0, OP,
                       "environment must be an object {\"value\": {NAME: value}}");
    struct json_object *vars = NULL;
    json_object_object_foreach(v, k, unused)
    {
        (void)unused;
        if (strcmp(k, "value") != 0)
            return sbx_err(err, SBX_ECONFIG, 0, OP,
                           "environment: unknown field '%s' (expected {\"value\": {NAME: "
                           "value}})",
                           k);
    }
    if (!json_object_object_get_ex(v, "value", &vars) ||
        json_object_is_type(vars, json_type_null))
        return 0;
    if (!json_object_is_type(vars, json_type_object))
        return sbx_err(err, SBX_ECONFIG, 0, OP, "environment.value must be an object");
    size_t cap = (size_t)json_object_object_length(vars);
    if (cap == 0)
        return 0;
    m->env = calloc(cap, sizeof(*m->env));
    if (!m->env)
        return oom(err);
    json_object_object_foreach(vars, name, val)
    {
        if (!is_env_name(name))
            return sbx_err(err, SBX_ECONFIG, 0, OP,
                           "environment variable name '%s' must match [A-Za-z_][A-Za-z0-9_]*",
                           name);
        struct sbx_mf_env *e = &m->env[m->n_env];
        e->name = strdup(name);
        if (!e->name)
            return oom(err);
        m->n_env++;
        int rc = parse_env_value(name, val, &e->value, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* {"name": "alice"} -> "alice", checked against the account name rule. */
static int parse_account(struct json_object *v, const char *what, char **out, sbx_error **err)
{
    struct json_object *n = NULL;
    const char *name = NULL;
    if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "name", &n))
        name = cstr(n);
    if (!name)
        return sbx_err(err, SBX_ECONFIG, 0, OP, "%s must be an object {\"name\": ...}", what);
    if (!is_lower_name(name))
        return sbx_err(err, SBX_ECONFIG, 0, OP,
                       "%s name '%s' must match [a-z_][a-z0-9_-]{0,31}", what, name);
    *out = strdup(name);
    return *out ? 0 : oom(err);
}

static int parse_users(struct json_object *v, struct sbx_manifest *m, sbx_error **err)
{
    if (json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_array))
        return sbx_err(err, SBX_ECONFIG, 0, OP, "users must be a list");
    size_t n = json_object_array_length(v);
    if (n == 0)
        return 0;
    m->users = calloc(n, sizeof(*m->users));
    if (!m->users)
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        struct json_object *u = json_object_array_get_idx(v, i);
        if (json_object_is_type(u, json_type_object) && json_object_object_length(u) != 1)
            return sbx_err(err, SBX_ECONFIG, 0, OP, "a user object has one field, name");
        int rc = parse_account(u, "user", &m->users[i], err);
        if (rc < 0)
            return rc;
        m->n_users++;
    }
    return 0;
}

static int parse_group(struct json_object *v, struct sbx_mf_group *g, sbx_error **err)
{
    int rc = parse_account(v, "group", &g->name, err);
    if (rc < 0)
        return rc;
    struct json_object *users = NULL;
    json_object_object_foreach(v, k, val)
    {
        if (strcmp(k, "users") == 0)
            users = val;
        else if (strcmp(k, "name") != 0)
            return sbx_err(err, SBX_ECONFIG, 0, OP, "group %s: unknown field '%s'", g->name, k);
    }
    if (!users || json_object_is_type(users, json_type_null))
        return 0;
    if (!json_object_is_type(users, json_type_array))
        return sbx_err(err, SBX_ECONFIG, 0, OP, "group %s: users must be a list", g->name);
    size_t n = json_object_array_length(users);
    if (n == 0)
        return 0;
    g->users = calloc(n, sizeof(*g->users));
    if (!g->users)
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        rc = parse_account(json_object_array_get_idx(users, i), "group member", &g->users[i],
                           err);
        if (rc < 0)
            return rc;
        g->n_users++;
    }
    return 0;
}

static int parse_groups(struct json_object *v, struct sbx_manifest *m, sbx_error **err)
{
    if (json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_array))
        return sbx_err(err, SBX_ECONFIG, 0, OP, "groups must be a list");
    size_t n = json_object_array_length(v);
    if (n == 0)
        return 0;
    m->groups = calloc(n, sizeof(*m->groups));
    if (!m->groups)
        return oom(err);
    for (size_t i = 0; i < n; i++) {
        m->n_groups++;
        int rc = parse_group(json_object_array_get_idx(v, i), &m->groups[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_root(struct json_object *v, struct sbx_manifest *m, sbx_error **err)
{
    const char *r = cstr(v);
    if (!r || r[0] != '/')
        return sbx_err(err, SBX_ECONFIG, 0, OP, "manifest root must be an absolute path");
    free(m->root);
    m->root = sbx__path_clean_abs(r);
    return m->root ? 0 : oom(err);
}

static int parse_top(struct json_object *o, struct sbx_manifest *m, sbx_error **err)
{
    json_object_object_foreach(o, k, v)
    {
        int rc = 0;
        if (strcmp(k, "version") == 0) {
            if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) != 1)
                return sbx_err(err, SBX_ECONFIG, 0, OP, "manifest version must be 1");
        } else if (strcmp(k, "root") == 0) {
            rc = parse_root(v, m, err);
        } else if (strcmp(k, "entries") == 0) {
            if (json_object_is_type(v, json_type_null))
                continue;
            if (!json_object_is_type(v, json_type_object))
                return sbx_err(err, SBX_ECONFIG, 0, OP, "manifest entries must be an object");
            rc = parse_entries(v, NULL, &m->entries, &m->n_entries, err);
        } else if (strcmp(k, "environment") == 0) {
            rc = parse_env(v, m, err);
        } else if (strcmp(k, "users") == 0) {
            rc = parse_users(v, m, err);
        } else if (strcmp(k, "groups") == 0) {
            rc = parse_groups(v, m, err);
        } else if (strcmp(k, "extra_path_grants") == 0) {
            /* Host path grants widen what file ops may touch: only trusted code that builds
             * the manifest itself may set them, never a JSON document (MANIFEST.md §1). */
            int empty = json_object_is_type(v, json_type_null) ||
                        (json_object_is_type(v, json_type_array) &&
                         json_object_array_length(v) == 0);
            if (!empty)
                return sbx_err(err, SBX_ECONFIG, 0, OP,
                               "Manifest extra_path_grants must be configured on a trusted "
                               "Manifest instance, not in a dictionary");
        } else if (strcmp(k, "remote_mount_command_allowlist") == 0) {
            /* Informational for remote mounts, which sbx refuses anyway; accepted so that a
             * manifest written by the reference implementation still reads. */
            int ok = json_object_is_type(v, json_type_null) ||
                     json_object_is_type(v, json_type_array);
            for (size_t i = 0; ok && json_object_is_type(v, json_type_array) &&
                               i < json_object_array_length(v);
                 i++)
                ok = cstr(json_object_array_get_idx(v, i)) != NULL;
            if (!ok)
                return sbx_err(err, SBX_ECONFIG, 0, OP,
                               "remote_mount_command_allowlist must be a list of strings");
        } else {
            return sbx_err(err, SBX_ECONFIG, 0, OP, "manifest: unknown field '%s'", k);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

int sbx__manifest_from_jobj(struct json_object *o, struct sbx_manifest **out, sbx_error **err)
{
    if (!out)
        return sbx_err(err, SBX_EINVAL, 0, OP, "manifest parsing needs out");
    *out = NULL;
    if (!json_object_is_type(o, json_type_object))
        return sbx_err(err, SBX_ECONFIG, 0, OP, "manifest must be a JSON object");
    struct sbx_manifest *m = sbx__manifest_new_default();
    if (!m)
        return oom(err);
    int rc = parse_top(o, m, err);
    if (rc < 0) {
        sbx__manifest_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int sbx__manifest_from_json(const char *json, struct sbx_manifest **out, sbx_error **err)
{
    if (!json || !out)
        return sbx_err(err, SBX_EINVAL, 0, OP, "manifest parsing needs json and out");
    *out = NULL;
    struct json_object *o = NULL;
    const char *why = NULL;
    int pr = sbx__json_parse_strict(json, &o, &why);
    if (pr == -2)
        return oom(err);
    if (pr < 0)
        return sbx_err(err, SBX_ECONFIG, 0, OP, "manifest is not valid JSON: %s", why);
    int rc = sbx__manifest_from_jobj(o, out, err);
    json_object_put(o);
    return rc;
}


static struct json_object *entries_to_jobj(const struct sbx_mf_entry *v, size_t n);

/* Fields in sorted order, so the declaration-order form differs from the canonical one only
 * in the order of map keys. */
static struct json_object *entry_to_jobj(const struct sbx_mf_entry *e)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    int bad = 0;
    if (e->kind == SBX_MF_DIR) {
        bad |= sbx__json_put(o, "children", entries_to_jobj(e->children, e->n_children));
    } else if (e->content_len > INT32_MAX) {
        bad = 1;
    } else if (utf8_text(e->content, e->content_len)) {
        const char *c = e->content ? (const char *)e->content : "";
        bad |= sbx__json_put(o, "content", json_object_new_string_len(c, (int)e->content_len));
    } else {
        char *b = b64_encode(e->content, e->content_len);
        bad |= sbx__json_put(o, "content_b64", b ? json_object_new_string(b) : NULL);
        free(b);
    }
    if (e->description)
        bad |= sbx__json_put(o, "description", json_object_new_string(e->description));
    else
        bad |= json_object_object_add(o, "description", NULL) != 0;
    bad |= sbx__json_put(o, "ephemeral", json_object_new_boolean(e->ephemeral != 0));
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", e->mode & 07777);
    bad |= sbx__json_put(o, "permissions", json_object_new_string(mode));
    bad |= sbx__json_put(o, "type", json_object_new_string(e->kind == SBX_MF_DIR ? "dir" : "file"));
    if (bad) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static struct json_object *entries_to_jobj(const struct sbx_mf_entry *v, size_t n)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (sbx__json_put(o, v[i].key, entry_to_jobj(&v[i])) < 0) {
            json_object_put(o);
            return NULL;
        }
    }
    return o;
}

static struct json_object *account_to_jobj(const char *name)
{
    struct json_object *o = json_object_new_object();
    if (o && sbx__json_put(o, "name", json_object_new_string(name)) < 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static struct json_object *accounts_to_jarr(char *const *names, size_t n)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; a && i < n; i++) {
        if (sbx__json_append(a, account_to_jobj(names[i])) < 0) {
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

static struct json_object *env_to_jobj(const struct sbx_manifest *m)
{
    struct json_object *vars = json_object_new_object();
    struct json_object *o = json_object_new_object();
    if (!vars || !o) {
        json_object_put(vars);
        json_object_put(o);
        return NULL;
    }
    for (size_t i = 0; i < m->n_env; i++) {
        if (sbx__json_put(vars, m->env[i].name, json_object_new_string(m->env[i].value)) < 0) {
            json_object_put(vars);
            json_object_put(o);
            return NULL;
        }
    }
    if (sbx__json_put(o, "value", vars) < 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static struct json_object *groups_to_jarr(const struct sbx_manifest *m)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; a && i < m->n_groups; i++) {
        const struct sbx_mf_group *g = &m->groups[i];
        struct json_object *o = json_object_new_object();
        int bad = !o;
        if (o) {
            bad |= sbx__json_put(o, "name", json_object_new_string(g->name));
            bad |= sbx__json_put(o, "users", accounts_to_jarr(g->users, g->n_users));
        }
        if (bad || sbx__json_append(a, o) < 0) {
            if (bad)
                json_object_put(o);
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

struct json_object *sbx__manifest_to_jobj(const struct sbx_manifest *m)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= sbx__json_put(o, "entries", entries_to_jobj(m->entries, m->n_entries));
    bad |= sbx__json_put(o, "environment", env_to_jobj(m));
    bad |= sbx__json_put(o, "groups", groups_to_jarr(m));
    bad |= sbx__json_put(o, "root", json_object_new_string(m->root ? m->root : "/workspace"));
    bad |= sbx__json_put(o, "users", accounts_to_jarr(m->users, m->n_users));
    bad |= sbx__json_put(o, "version", json_object_new_int(1));
    if (bad) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Deep copy with every object's keys inserted in byte order (= code point order for UTF-8,
 * which is what Python's sort_keys gives). Scalars are shared by reference. */
static struct json_object *sorted_copy(struct json_object *v, int *fail)
{
    if (json_object_is_type(v, json_type_array)) {
        struct json_object *a = json_object_new_array();
        size_t n = json_object_array_length(v);
        for (size_t i = 0; a && i < n; i++) {
            struct json_object *c = sorted_copy(json_object_array_get_idx(v, i), fail);
            if (*fail || json_object_array_add(a, c) != 0) {
                json_object_put(c);
                *fail = 1;
                break;
            }
        }
        if (!a)
            *fail = 1;
        return a;
    }
    if (!json_object_is_type(v, json_type_object))
        return json_object_get(v);
    size_t n = (size_t)json_object_object_length(v);
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    struct json_object *o = json_object_new_object();
    if (!keys || !o) {
        free(keys);
        *fail = 1;
        return o;
    }
    size_t i = 0;
    json_object_object_foreach(v, k, unused)
    {
        (void)unused;
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), cmp_key);
    for (i = 0; i < n && !*fail; i++) {
        struct json_object *c = sorted_copy(json_object_object_get(v, keys[i]), fail);
        if (*fail || json_object_object_add(o, keys[i], c) != 0) {
            json_object_put(c);
            *fail = 1;
        }
    }
    free(keys);
    return o;
}

char *sbx__manifest_to_json(const struct sbx_manifest *m)
{
    struct json_object *o = sbx__manifest_to_jobj(m);
    if (!o)
        return NULL;
    int fail = 0;
    struct json_object *s = sorted_copy(o, &fail);
    json_object_put(o);
    char *r = NULL;
    if (!fail) {
        /* NOSLASHESCAPE: json-c writes "\/" by default, which is valid JSON but would make
         * the digest input differ from every other serialiser's. */
        const char *t =
            json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN |
                                                  JSON_C_TO_STRING_NOSLASHESCAPE);
        r = t ? strdup(t) : NULL;
    }
    json_object_put(s);
    return r;
}

int sbx__manifest_digest(const struct sbx_manifest *m, char hex[65])
{
    char *s = sbx__manifest_to_json(m);
    if (!s)
        return SBX_ENOMEM;
    sbx__sha256_buf(s, strlen(s), hex);
    free(s);
    return 0;
}

struct pathvec {
    char **v;
    size_t n, cap;
    int fail;
};

static void pv_add(struct pathvec *pv, char *p)
{
    if (!p) {
        pv->fail = 1;
        return;
    }
    if (pv->n + 2 > pv->cap) {
        size_t cap = pv->cap ? pv->cap * 2 : 8;
        char **v = realloc(pv->v, cap * sizeof(*v));
        if (!v) {
            free(p);
            pv->fail = 1;
            return;
        }
        pv->v = v;
        pv->cap = cap;
    }
    pv->v[pv->n++] = p;
    pv->v[pv->n] = NULL;
}

/* MANIFEST.md §5.2: an ephemeral entry is taken whole; only durable dirs are descended. */
static void collect_ephemeral(const struct sbx_mf_entry *v, size_t n, const char *parent,
                              struct pathvec *pv)
{
    for (size_t i = 0; i < n && !pv->fail; i++) {
        char *path = join_rel(parent, v[i].key);
        if (!path) {
            pv->fail = 1;
            return;
        }
        if (v[i].ephemeral) {
            pv_add(pv, path);
            continue;
        }
        if (v[i].kind == SBX_MF_DIR)
            collect_ephemeral(v[i].children, v[i].n_children, path, pv);
        free(path);
    }
}

char **sbx__manifest_ephemeral_paths(const struct sbx_manifest *m)
{
    struct pathvec pv = {0};
    collect_ephemeral(m->entries, m->n_entries, NULL, &pv);
    if (!pv.fail && !pv.v) {
        pv.v = calloc(1, sizeof(*pv.v));
        pv.fail = !pv.v;
    }
    if (pv.fail) {
        for (size_t i = 0; i < pv.n; i++)
            free(pv.v[i]);
        free(pv.v);
        return NULL;
    }
    return pv.v;
}
