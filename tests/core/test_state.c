/* Session state object (spec SESSION.md §2, TESTS.md L107). Pure: no sandbox needed. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

#define UUID "0f8fad5b-d9cb-469f-a165-70867728950e"

/* Every field set, in the pinned order and the exact form the writer produces, so
 * parse -> write must give the same text back. The manifest lists "b.txt" before "a": the
 * state keeps declaration order. */
#define FULL_STATE                                                                             \
    "{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\","                                   \
    "\"snapshot\":{\"type\":\"local\",\"id\":\"snap-1\",\"base_path\":\"/var/lib/sbx/snaps\"}," \
    "\"manifest\":{\"entries\":{"                                                              \
    "\"b.txt\":{\"content\":\"hi\",\"description\":\"note\",\"ephemeral\":true,"             \
    "\"permissions\":\"0644\",\"type\":\"file\"},"                                             \
    "\"a\":{\"children\":{},\"description\":null,\"ephemeral\":false,"                        \
    "\"permissions\":\"0755\",\"type\":\"dir\"}},"                                             \
    "\"environment\":{\"value\":{\"K\":\"v\"}},"                                               \
    "\"groups\":[{\"name\":\"dev\",\"users\":[{\"name\":\"alice\"}]}],"                        \
    "\"root\":\"/workspace\",\"users\":[{\"name\":\"alice\"}],\"version\":1},"                \
    "\"exposed_ports\":[8080,9000],"                                                           \
    "\"snapshot_fingerprint\":\"abc123\","                                                     \
    "\"snapshot_fingerprint_version\":\"workspace_tar_sha256_v1\","                            \
    "\"workspace_root_ready\":true,\"workspace\":\"/home/u/ws\",\"workspace_root_owned\":true}"

static struct sbx_state *parse_ok(const char *json)
{
    struct sbx_state *st = NULL;
    sbx_error *err = NULL;
    int rc = sbx__state_from_json(json, &st, &err);
    cr_assert_eq(rc, 0, "%s: %s", json, sbx_error_message(err));
    cr_assert_not_null(st);
    return st;
}

static sbx_error *parse_fail(const char *json, int code, const char *msg)
{
    struct sbx_state *st = NULL;
    sbx_error *err = NULL;
    int rc = sbx__state_from_json(json, &st, &err);
    cr_assert_eq(rc, code, "%s: got %d (%s)", json, rc, sbx_error_message(err));
    cr_assert_null(st);
    cr_expect(strstr(sbx_error_message(err), msg) != NULL, "'%s' lacks '%s'",
              sbx_error_message(err), msg);
    return err;
}

/* A minimal valid state with one field's text replaced. */
static char *state_with(const char *field_json)
{
    char *s = NULL;
    cr_assert(asprintf(&s,
                       "{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\","
                       "\"snapshot\":{\"type\":\"noop\",\"id\":\"x\"},\"manifest\":{}%s%s}",
                       field_json[0] ? "," : "", field_json) >= 0);
    return s;
}

Test(core_state, round_trip_every_field)
{
    struct sbx_state *st = parse_ok(FULL_STATE);
    cr_expect_str_eq(st->session_id, UUID);
    cr_expect_eq(st->snap_kind, SBX_SNAP_LOCAL);
    cr_expect_str_eq(st->snap_id, "snap-1");
    cr_expect_str_eq(st->snap_base, "/var/lib/sbx/snaps");
    cr_assert_not_null(st->manifest);
    cr_expect_str_eq(st->manifest->entries[0].key, "b.txt");
    cr_assert_eq(st->n_ports, 2);
    cr_expect_eq(st->ports[0], 8080);
    cr_expect_eq(st->ports[1], 9000);
    cr_expect_str_eq(st->fingerprint, "abc123");
    cr_expect_str_eq(st->fingerprint_version, "workspace_tar_sha256_v1");
    cr_expect_eq(st->root_ready, 1);
    cr_expect_str_eq(st->workspace, "/home/u/ws");
    cr_expect_eq(st->workspace_owned, 1);
    char *out = sbx__state_to_json(st, 0);
    cr_expect_str_eq(out, FULL_STATE);
    free(out);
    /* The pretty form is the same data. */
    char *pretty = sbx__state_to_json(st, 1);
    cr_expect(strchr(pretty, '\n') != NULL);
    struct sbx_state *again = parse_ok(pretty);
    out = sbx__state_to_json(again, 0);
    cr_expect_str_eq(out, FULL_STATE);
    free(out);
    free(pretty);
    sbx__state_free(again);
    sbx__state_free(st);
}

Test(core_state, field_order_is_pinned)
{
    /* Input in reverse order; output in the spec's order regardless. */
    struct sbx_state *st = parse_ok(
        "{\"workspace_root_owned\":false,\"workspace\":null,\"workspace_root_ready\":false,"
        "\"snapshot_fingerprint_version\":null,\"snapshot_fingerprint\":null,"
        "\"exposed_ports\":null,\"manifest\":{},\"snapshot\":{\"id\":\"s\",\"type\":\"noop\"},"
        "\"session_id\":\"" UUID "\",\"type\":\"sbx_linux\"}");
    char *out = sbx__state_to_json(st, 0);
    const char *order[] = {"\"type\"",
                           "\"session_id\"",
                           "\"snapshot\"",
                           "\"manifest\"",
                           "\"exposed_ports\"",
                           "\"snapshot_fingerprint\"",
                           "\"snapshot_fingerprint_version\"",
                           "\"workspace_root_ready\"",
                           "\"workspace\"",
                           "\"workspace_root_owned\""};
    const char *prev = out;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *p = strstr(prev, order[i]);
        cr_assert_not_null(p, "%s missing after position %zu in %s", order[i],
                           (size_t)(prev - out), out);
        prev = p + strlen(order[i]);
    }
    cr_expect_str_eq(out, "{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\","
                          "\"snapshot\":{\"type\":\"noop\",\"id\":\"s\"},"
                          "\"manifest\":{\"entries\":{},\"environment\":{\"value\":{}},"
                          "\"groups\":[],\"root\":\"/workspace\",\"users\":[],\"version\":1},"
                          "\"exposed_ports\":[],\"snapshot_fingerprint\":null,"
                          "\"snapshot_fingerprint_version\":null,\"workspace_root_ready\":false,"
                          "\"workspace\":null,\"workspace_root_owned\":false}");
    free(out);
    sbx__state_free(st);
}

static int ports(const char *json, uint16_t **p, size_t *n, sbx_error **err)
{
    struct json_object *v = json_tokener_parse(json);
    int rc = sbx__ports_from_jobj(v, p, n, err);
    json_object_put(v);
    return rc;
}

Test(core_state, exposed_ports_normalisation)
{
    uint16_t *p = NULL;
    size_t n = 99;
    cr_assert_eq(ports("null", &p, &n, NULL), 0);
    cr_expect_eq(n, 0);
    cr_assert_eq(sbx__ports_from_jobj(NULL, &p, &n, NULL), 0);
    cr_expect_eq(n, 0);
    cr_assert_eq(ports("8080", &p, &n, NULL), 0);
    cr_assert_eq(n, 1);
    cr_expect_eq(p[0], 8080);
    free(p);
    cr_assert_eq(ports("[8080, 9000, 8080]", &p, &n, NULL), 0);
    cr_assert_eq(n, 2);
    cr_expect_eq(p[0], 8080);
    cr_expect_eq(p[1], 9000);
    free(p);
    cr_assert_eq(ports("[]", &p, &n, NULL), 0);
    cr_expect_eq(n, 0);

    struct {
        const char *json, *msg;
    } bad[] = {
        {"\"8080\"", "exposed_ports must be an iterable of TCP port integers"},
        {"[8080, \"9000\"]", "exposed_ports must contain integers"},
        {"[8080.0]", "exposed_ports must contain integers"},
        {"[true]", "exposed_ports must contain integers"},
        {"[0]", "exposed_ports entries must be between 1 and 65535"},
        {"[65536]", "exposed_ports entries must be between 1 and 65535"},
        {"-1", "exposed_ports entries must be between 1 and 65535"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sbx_error *err = NULL;
        p = NULL;
        cr_expect_eq(ports(bad[i].json, &p, &n, &err), SBX_ECONFIG, "%s", bad[i].json);
        cr_expect_null(p);
        cr_expect_str_eq(sbx_error_message(err), bad[i].msg, "%s", bad[i].json);
        sbx_error_free(err);
    }
    /* The same rules apply inside a state payload. */
    char *s = state_with("\"exposed_ports\":8080");
    struct sbx_state *st = parse_ok(s);
    cr_expect_eq(st->n_ports, 1);
    free(s);
    sbx__state_free(st);
    s = state_with("\"exposed_ports\":[65536]");
    sbx_error_free(parse_fail(s, SBX_ECONFIG, "between 1 and 65535"));
    free(s);
}

Test(core_state, unknown_type_is_invalid)
{
    sbx_error *e = parse_fail("{\"type\":\"docker\",\"session_id\":\"" UUID "\","
                              "\"snapshot\":{\"type\":\"noop\",\"id\":\"x\"},\"manifest\":{}}",
                              SBX_ECONFIG, "");
    cr_expect_str_eq(sbx_error_message(e), "sandbox session state payload is invalid");
    sbx_error_free(e);
    e = parse_fail("{\"session_id\":\"" UUID "\"}", SBX_ECONFIG, "");
    cr_expect_str_eq(sbx_error_message(e), "sandbox session state payload is invalid");
    sbx_error_free(e);
    sbx_error_free(parse_fail("[1]", SBX_ECONFIG, "payload is invalid"));
    sbx_error_free(parse_fail("{\"type\":", SBX_ECONFIG, "not valid JSON"));
}

Test(core_state, session_id_must_be_a_uuid)
{
    cr_expect(sbx__uuid_valid(UUID));
    cr_expect(sbx__uuid_valid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
    const char *bad[] = {"",
                         "not-a-uuid",
                         "0f8fad5b-d9cb-469f-a165-70867728950",
                         "0f8fad5b-d9cb-469f-a165-70867728950e0",
                         "0f8fad5bd9cb-469f-a165-70867728950e0",
                         "0f8fad5b-d9cb-469f-a165-70867728950g",
                         "{0f8fad5b-d9cb-469f-a165-70867728950}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect(!sbx__uuid_valid(bad[i]), "%s", bad[i]);
        char *s = NULL;
        cr_assert(asprintf(&s,
                           "{\"type\":\"sbx_linux\",\"session_id\":\"%s\",\"snapshot\":"
                           "{\"type\":\"noop\"},\"manifest\":{}}",
                           bad[i]) >= 0);
        sbx_error_free(parse_fail(s, SBX_ECONFIG, "session_id must be a UUID"));
        free(s);
    }
    cr_expect(!sbx__uuid_valid(NULL));
    /* Upper case is read and stored in canonical lower case. */
    struct sbx_state *st = parse_ok("{\"type\":\"sbx_linux\",\"session_id\":"
                                    "\"0F8FAD5B-D9CB-469F-A165-70867728950E\","
                                    "\"snapshot\":{\"type\":\"noop\"},\"manifest\":{}}");
    cr_expect_str_eq(st->session_id, UUID);
    cr_expect_str_eq(st->snap_id, UUID, "the snapshot id defaults to the session id");
    sbx__state_free(st);
    /* Absent: a fresh one, as the spec's default says. */
    st = parse_ok("{\"type\":\"sbx_linux\",\"snapshot\":{\"type\":\"noop\"},\"manifest\":{}}");
    cr_expect(sbx__uuid_valid(st->session_id));
    sbx__state_free(st);
}

Test(core_state, snapshot_kinds)
{
    char *s = state_with("");
    struct sbx_state *st = parse_ok(s);
    cr_expect_eq(st->snap_kind, SBX_SNAP_NOOP);
    cr_expect_str_eq(st->snap_id, "x");
    cr_expect_null(st->snap_base);
    char *out = sbx__state_to_json(st, 0);
    cr_expect(strstr(out, "\"snapshot\":{\"type\":\"noop\",\"id\":\"x\"}") != NULL, "%s", out);
    free(out);
    free(s);
    sbx__state_free(st);

    st = parse_ok("{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\",\"snapshot\":"
                  "{\"type\":\"local\",\"id\":\"snap\",\"base_path\":\"/srv/snaps\"},"
                  "\"manifest\":{}}");
    cr_expect_eq(st->snap_kind, SBX_SNAP_LOCAL);
    cr_expect_str_eq(st->snap_id, "snap");
    cr_expect_str_eq(st->snap_base, "/srv/snaps");
    out = sbx__state_to_json(st, 0);
    cr_expect(strstr(out, "\"snapshot\":{\"type\":\"local\",\"id\":\"snap\","
                          "\"base_path\":\"/srv/snaps\"}") != NULL,
              "%s", out);
    free(out);
    sbx__state_free(st);

    sbx_error_free(parse_fail("{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\",\"snapshot\":"
                              "{\"type\":\"local\",\"id\":\"../x\",\"base_path\":\"/srv\"},"
                              "\"manifest\":{}}",
                              SBX_EINVAL, "LocalSnapshot id must be a single path segment"));
    sbx_error_free(parse_fail("{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\",\"snapshot\":"
                              "{\"type\":\"local\",\"id\":\"x\"},\"manifest\":{}}",
                              SBX_ECONFIG, "absolute base_path"));
    sbx_error_free(parse_fail("{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\",\"snapshot\":"
                              "{\"type\":\"remote\",\"id\":\"x\",\"client_dependency_key\":\"k\"},"
                              "\"manifest\":{}}",
                              SBX_ECONFIG, "unsupported snapshot type 'remote'"));
    sbx_error_free(parse_fail("{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\",\"snapshot\":"
                              "{\"type\":\"noop\",\"base_path\":\"/x\"},\"manifest\":{}}",
                              SBX_ECONFIG, "unknown snapshot field 'base_path'"));
    sbx_error_free(parse_fail("{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\","
                              "\"manifest\":{}}",
                              SBX_ECONFIG, "snapshot is required"));
}

Test(core_state, field_types_are_checked)
{
    struct {
        const char *field, *msg;
    } bad[] = {
        {"\"workspace_root_ready\":1", "workspace_root_ready must be true or false"},
        {"\"workspace_root_owned\":\"yes\"", "workspace_root_owned must be true or false"},
        {"\"snapshot_fingerprint\":5", "snapshot_fingerprint must be a string or null"},
        {"\"workspace\":\"relative/dir\"", "absolute"},
        {"\"workspace_owned\":true", "unknown field 'workspace_owned'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *s = state_with(bad[i].field);
        sbx_error_free(parse_fail(s, SBX_ECONFIG, bad[i].msg));
        free(s);
    }
    /* Manifest errors come through unchanged. */
    char *s = NULL;
    cr_assert(asprintf(&s,
                       "{\"type\":\"sbx_linux\",\"session_id\":\"" UUID "\",\"snapshot\":"
                       "{\"type\":\"noop\"},\"manifest\":{\"entries\":{\"../x\":"
                       "{\"type\":\"file\",\"content\":\"\"}}}}") >= 0);
    sbx_error_free(parse_fail(s, SBX_EINVALID_PATH, "must not escape root"));
    free(s);
}
