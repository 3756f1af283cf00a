/* state.c — the session state object (spec SESSION.md §2) to and from JSON.
 *
 * The state is what another process reads to resume a session, so parsing trusts nothing:
 * every field is type-checked, unknown fields are refused (a typo in "workspace_root_owned"
 * must not quietly turn into "false" and leak a directory, or into a delete of one the caller
 * owns), and the snapshot id goes through the same single-segment rule as the store itself.
 *
 * Output order is pinned by the spec's compatibility test; json-c keeps insertion order, so
 * state_to_jobj adds the fields in exactly that order.
 */
#include <ctype.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "error_internal.h"
#include "snapshot_store.h"
#include "json_util.h"
#include "state.h"

#define OP "start"

#define INVALID "sandbox session state payload is invalid"

void sbx__state_free(struct sbx_state *st)
{
    if (!st)
        return;
    free(st->snap_id);
    free(st->snap_base);
    sbx__manifest_free(st->manifest);
    free(st->ports);
    free(st->fingerprint);
    free(st->fingerprint_version);
    free(st->workspace);
    free(st);
}

int sbx__uuid_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static int oom(sbx_error **err)
{
    return sbx_err(err, SBX_ENOMEM, 0, OP, "out of memory reading the session state");
}

static int invalid(sbx_error **err, const char *detail)
{
    return sbx_err(err, SBX_ECONFIG, 0, OP, INVALID ": %s", detail);
}

/* A JSON string usable as a C string (json-c accepts "\u0000"). */
static const char *cstr(struct json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return NULL;
    return s;
}

static int dup_opt_str(struct json_object *v, char **out, const char *field, sbx_error **err)
{
    free(*out);
    *out = NULL;
    if (json_object_is_type(v, json_type_null))
        return 0;
    const char *s = cstr(v);
    if (!s) {
        int rc = sbx_err(err, SBX_ECONFIG, 0, OP, INVALID ": %s must be a string or null",
                         field);
        sbx_err_ctx(err, "field", "%s", field);
        return rc;
    }
    *out = strdup(s);
    return *out ? 0 : oom(err);
}

int sbx__ports_from_jobj(struct json_object *v, uint16_t **out, size_t *n, sbx_error **err)
{
    if (!out || !n)
        return sbx_err(err, SBX_EINVAL, 0, OP, "exposed_ports normalisation needs out and n");
    *out = NULL;
    *n = 0;
    if (!v || json_object_is_type(v, json_type_null))
        return 0;
    int single = json_object_is_type(v, json_type_int);
    if (!single && !json_object_is_type(v, json_type_array))
        return sbx_err(err, SBX_ECONFIG, 0, OP,
                       "exposed_ports must be an iterable of TCP port integers");
    size_t len = single ? 1 : json_object_array_length(v);
    if (len == 0)
        return 0;
    uint16_t *p = calloc(len, sizeof(*p));
    if (!p)
        return oom(err);
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        struct json_object *e = single ? v : json_object_array_get_idx(v, i);
        /* Booleans are integers to Python but never a port; 8080.0 is refused there too. */
        if (!json_object_is_type(e, json_type_int)) {
            free(p);
            return sbx_err(err, SBX_ECONFIG, 0, OP, "exposed_ports must contain integers");
        }
        int64_t port = json_object_get_int64(e);
        if (port < 1 || port > 65535) {
            free(p);
            return sbx_err(err, SBX_ECONFIG, 0, OP,
                           "exposed_ports entries must be between 1 and 65535");
        }
        int seen = 0;
        for (size_t j = 0; j < k && !seen; j++)
            seen = p[j] == (uint16_t)port;
        if (!seen)
            p[k++] = (uint16_t)port;
    }
    *out = p;
    *n = k;
    return 0;
}

static int parse_snapshot(struct json_object *v, struct sbx_state *st, sbx_error **err)
{
    if (!json_object_is_type(v, json_type_object))
        return invalid(err, "snapshot must be an object");
    struct json_object *t = NULL;
    const char *type = json_object_object_get_ex(v, "type", &t) ? cstr(t) : NULL;
    if (!type)
        return invalid(err, "snapshot needs a string type");
    if (strcmp(type, "local") == 0) {
        st->snap_kind = SBX_SNAP_LOCAL;
    } else if (strcmp(type, "noop") == 0) {
        st->snap_kind = SBX_SNAP_NOOP;
    } else {
        int rc = sbx_err(err, SBX_ECONFIG, 0, OP,
                         INVALID ": unsupported snapshot type '%s' (sbx supports local and "
                                 "noop)",
                         type);
        sbx_err_ctx(err, "type", "%s", type);
        return rc;
    }
    json_object_object_foreach(v, k, val)
    {
        int rc = 0;
        if (strcmp(k, "type") == 0)
            continue;
        if (strcmp(k, "id") == 0) {
            rc = dup_opt_str(val, &st->snap_id, "snapshot.id", err);
        } else if (strcmp(k, "base_path") == 0 && st->snap_kind == SBX_SNAP_LOCAL) {
            rc = dup_opt_str(val, &st->snap_base, "snapshot.base_path", err);
        } else {
            rc = sbx_err(err, SBX_ECONFIG, 0, OP, INVALID ": unknown snapshot field '%s'", k);
        }
        if (rc < 0)
            return rc;
    }
    if (st->snap_kind != SBX_SNAP_LOCAL)
        return 0;
    /* A relative store would be resolved against whatever cwd the resuming process has. */
    if (!st->snap_base || st->snap_base[0] != '/')
        return invalid(err, "a local snapshot needs an absolute base_path");
    if (st->snap_id)
        return sbx__snap_id_check(st->snap_id, err);
    return 0;
}

static int parse_bool(struct json_object *v, int *out, const char *field, sbx_error **err)
{
    if (!json_object_is_type(v, json_type_boolean)) {
        int rc = sbx_err(err, SBX_ECONFIG, 0, OP, INVALID ": %s must be true or false", field);
        sbx_err_ctx(err, "field", "%s", field);
        return rc;
    }
    *out = json_object_get_boolean(v);
    return 0;
}

static int parse_session_id(struct json_object *v, struct sbx_state *st, sbx_error **err)
{
    const char *s = cstr(v);
    if (!s || !sbx__uuid_valid(s))
        return invalid(err, "session_id must be a UUID (8-4-4-4-12 hex digits)");
    for (int i = 0; i < 36; i++)
        st->session_id[i] = (char)tolower((unsigned char)s[i]);
    st->session_id[36] = '\0';
    return 0;
}

static int parse_field(const char *k, struct json_object *v, struct sbx_state *st,
                       sbx_error **err)
{
    if (strcmp(k, "type") == 0)
        return 0;
    if (strcmp(k, "session_id") == 0)
        return parse_session_id(v, st, err);
    if (strcmp(k, "snapshot") == 0)
        return parse_snapshot(v, st, err);
    if (strcmp(k, "manifest") == 0) {
        sbx__manifest_free(st->manifest);
        st->manifest = NULL;
        return sbx__manifest_from_jobj(v, &st->manifest, err);
    }
    if (strcmp(k, "exposed_ports") == 0) {
        free(st->ports);
        st->ports = NULL;
        return sbx__ports_from_jobj(v, &st->ports, &st->n_ports, err);
    }
    if (strcmp(k, "snapshot_fingerprint") == 0)
        return dup_opt_str(v, &st->fingerprint, k, err);
    if (strcmp(k, "snapshot_fingerprint_version") == 0)
        return dup_opt_str(v, &st->fingerprint_version, k, err);
    if (strcmp(k, "workspace_root_ready") == 0)
        return parse_bool(v, &st->root_ready, k, err);
    if (strcmp(k, "workspace_root_owned") == 0)
        return parse_bool(v, &st->workspace_owned, k, err);
    if (strcmp(k, "workspace") == 0) {
        int rc = dup_opt_str(v, &st->workspace, k, err);
        if (rc == 0 && st->workspace && st->workspace[0] != '/')
            return invalid(err, "workspace must be an absolute host path or null");
        return rc;
    }
    int rc = sbx_err(err, SBX_ECONFIG, 0, OP, INVALID ": unknown field '%s'", k);
    sbx_err_ctx(err, "field", "%s", k);
    return rc;
}

static int state_from_jobj(struct json_object *o, struct sbx_state *st, sbx_error **err)
{
    struct json_object *t = NULL, *snap = NULL, *mf = NULL;
    if (!json_object_is_type(o, json_type_object))
        return sbx_err(err, SBX_ECONFIG, 0, OP, INVALID);
    const char *type = json_object_object_get_ex(o, "type", &t) ? cstr(t) : NULL;
    if (!type || strcmp(type, SBX_STATE_TYPE) != 0) {
        int rc = sbx_err(err, SBX_ECONFIG, 0, OP, INVALID);
        sbx_err_ctx(err, "type", "%s", type ? type : "(missing)");
        return rc;
    }
    if (!json_object_object_get_ex(o, "snapshot", &snap))
        return invalid(err, "snapshot is required");
    if (!json_object_object_get_ex(o, "manifest", &mf))
        return invalid(err, "manifest is required");
    json_object_object_foreach(o, k, v)
    {
        int rc = parse_field(k, v, st, err);
        if (rc < 0)
            return rc;
    }
    /* SESSION.md §2: session_id defaults to a fresh v4, and the snapshot id to it. */
    if (!st->session_id[0])
        sbx__uuid4(st->session_id);
    if (!st->snap_id) {
        st->snap_id = strdup(st->session_id);
        if (!st->snap_id)
            return oom(err);
    }
    return 0;
}

int sbx__state_from_json(const char *json, struct sbx_state **out, sbx_error **err)
{
    if (!json || !out)
        return sbx_err(err, SBX_EINVAL, 0, OP, "state parsing needs json and out");
    *out = NULL;
    struct json_object *o = NULL;
    const char *why = NULL;
    int pr = sbx__json_parse_strict(json, &o, &why);
    if (pr == -2)
        return oom(err);
    if (pr < 0)
        return sbx_err(err, SBX_ECONFIG, 0, OP, INVALID ": not valid JSON (%s)", why);
    struct sbx_state *st = calloc(1, sizeof(*st));
    if (!st) {
        json_object_put(o);
        return oom(err);
    }
    int rc = state_from_jobj(o, st, err);
    json_object_put(o);
    if (rc < 0) {
        sbx__state_free(st);
        return rc;
    }
    *out = st;
    return 0;
}


/* NULL is written as a JSON null, as the spec's optional fields are. */
static int put_opt_str(struct json_object *o, const char *k, const char *s)
{
    if (!s)
        return json_object_object_add(o, k, NULL) != 0;
    return sbx__json_put(o, k, json_object_new_string(s));
}

static struct json_object *snapshot_to_jobj(const struct sbx_state *st)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    int local = st->snap_kind == SBX_SNAP_LOCAL;
    int bad = sbx__json_put(o, "type", json_object_new_string(local ? "local" : "noop"));
    bad |= sbx__json_put(o, "id", json_object_new_string(st->snap_id ? st->snap_id : st->session_id));
    if (local)
        bad |= put_opt_str(o, "base_path", st->snap_base);
    if (bad) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static struct json_object *ports_to_jarr(const struct sbx_state *st)
{
    struct json_object *a = json_object_new_array();
    for (size_t i = 0; a && i < st->n_ports; i++) {
        struct json_object *p = json_object_new_int(st->ports[i]);
        if (!p || json_object_array_add(a, p) != 0) {
            json_object_put(p);
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

static struct json_object *state_to_jobj(const struct sbx_state *st)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    struct sbx_manifest *dflt = NULL;
    const struct sbx_manifest *m = st->manifest;
    if (!m) {
        dflt = sbx__manifest_new_default();
        m = dflt;
    }
    int bad = !m;
    bad |= sbx__json_put(o, "type", json_object_new_string(SBX_STATE_TYPE));
    bad |= sbx__json_put(o, "session_id", json_object_new_string(st->session_id));
    bad |= sbx__json_put(o, "snapshot", snapshot_to_jobj(st));
    bad |= sbx__json_put(o, "manifest", m ? sbx__manifest_to_jobj(m) : NULL);
    bad |= sbx__json_put(o, "exposed_ports", ports_to_jarr(st));
    bad |= put_opt_str(o, "snapshot_fingerprint", st->fingerprint);
    bad |= put_opt_str(o, "snapshot_fingerprint_version", st->fingerprint_version);
    bad |= sbx__json_put(o, "workspace_root_ready", json_object_new_boolean(st->root_ready != 0));
    bad |= put_opt_str(o, "workspace", st->workspace);
    bad |= sbx__json_put(o, "workspace_root_owned", json_object_new_boolean(st->workspace_owned != 0));
    sbx__manifest_free(dflt);
    if (bad) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

char *sbx__state_to_json(const struct sbx_state *st, int pretty)
{
    struct json_object *o = state_to_jobj(st);
    if (!o)
        return NULL;
    int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
                (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                        : JSON_C_TO_STRING_PLAIN);
    const char *s = json_object_to_json_string_ext(o, flags);
    char *r = s ? strdup(s) : NULL;
    json_object_put(o);
    return r;
}
