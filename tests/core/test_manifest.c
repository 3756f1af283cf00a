/* Manifest parsing, canonical JSON and ephemeral paths (spec MANIFEST.md §1-5, TESTS.md
 * O131-O133). Pure: no sandbox needed. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

static struct sbx_manifest *parse_ok(const char *json)
{
    struct sbx_manifest *m = NULL;
    sbx_error *err = NULL;
    int rc = sbx__manifest_from_json(json, &m, &err);
    cr_assert_eq(rc, 0, "%s: %s", json, sbx_error_message(err));
    cr_assert_not_null(m);
    return m;
}

/* Parses json expecting `code` with `msg` in the message; returns the error for more checks. */
static sbx_error *parse_fail(const char *json, int code, const char *msg)
{
    struct sbx_manifest *m = NULL;
    sbx_error *err = NULL;
    int rc = sbx__manifest_from_json(json, &m, &err);
    cr_assert_eq(rc, code, "%s: got %d (%s)", json, rc, sbx_error_message(err));
    cr_assert_null(m);
    cr_assert_not_null(err);
    cr_expect(strstr(sbx_error_message(err), msg) != NULL, "'%s' lacks '%s'",
              sbx_error_message(err), msg);
    return err;
}

static char *canon(const char *json)
{
    struct sbx_manifest *m = parse_ok(json);
    char *s = sbx__manifest_to_json(m);
    cr_assert_not_null(s);
    sbx__manifest_free(m);
    return s;
}

static void digest_of(const char *json, char hex[65])
{
    struct sbx_manifest *m = parse_ok(json);
    cr_assert_eq(sbx__manifest_digest(m, hex), 0);
    cr_expect_eq(strlen(hex), 64);
    sbx__manifest_free(m);
}

#define FULL_MANIFEST                                                                          \
    "{\"version\":1,\"root\":\"/workspace\",\"entries\":{"                                   \
    "\"a.txt\":{\"type\":\"file\",\"content\":\"hi\",\"permissions\":\"0644\","              \
    "\"ephemeral\":false},"                                                                    \
    "\"d\":{\"type\":\"dir\",\"description\":\"data\",\"children\":{"                        \
    "\"x.txt\":{\"type\":\"file\",\"content\":\"x\"}}}},"                                    \
    "\"environment\":{\"value\":{\"K\":\"v\"}},\"users\":[{\"name\":\"alice\"}],"            \
    "\"groups\":[{\"name\":\"dev\",\"users\":[{\"name\":\"alice\"}]}]}"

Test(core_manifest, canonical_json_is_sorted_compact_and_stable)
{
    char *a = canon(FULL_MANIFEST);
    cr_expect_str_eq(
        a, "{\"entries\":{"
           "\"a.txt\":{\"content\":\"hi\",\"description\":null,\"ephemeral\":false,"
           "\"permissions\":\"0644\",\"type\":\"file\"},"
           "\"d\":{\"children\":{\"x.txt\":{\"content\":\"x\",\"description\":null,"
           "\"ephemeral\":false,\"permissions\":\"0755\",\"type\":\"file\"}},"
           "\"description\":\"data\",\"ephemeral\":false,\"permissions\":\"0755\","
           "\"type\":\"dir\"}},"
           "\"environment\":{\"value\":{\"K\":\"v\"}},"
           "\"groups\":[{\"name\":\"dev\",\"users\":[{\"name\":\"alice\"}]}],"
           "\"root\":\"/workspace\",\"users\":[{\"name\":\"alice\"}],\"version\":1}");
    /* Reading the canonical form back gives the canonical form again. */
    char *b = canon(a);
    cr_expect_str_eq(a, b);
    free(a);
    free(b);
}

Test(core_manifest, default_manifest)
{
    struct sbx_manifest *m = sbx__manifest_new_default();
    cr_assert_not_null(m);
    char *s = sbx__manifest_to_json(m);
    cr_expect_str_eq(s, "{\"entries\":{},\"environment\":{\"value\":{}},\"groups\":[],"
                        "\"root\":\"/workspace\",\"users\":[],\"version\":1}");
    free(s);
    sbx__manifest_free(m);
    /* Every field is optional in the JSON. */
    m = parse_ok("{}");
    cr_expect_str_eq(m->root, "/workspace");
    cr_expect_eq(m->n_entries, 0);
    sbx__manifest_free(m);
}

Test(core_manifest, digest_does_not_depend_on_key_order)
{
    char d1[65], d2[65], d3[65], d4[65];
    digest_of(FULL_MANIFEST, d1);
    digest_of("{\"groups\":[{\"users\":[{\"name\":\"alice\"}],\"name\":\"dev\"}],"
              "\"users\":[{\"name\":\"alice\"}],\"environment\":{\"value\":{\"K\":\"v\"}},"
              "\"entries\":{\"d\":{\"children\":{\"x.txt\":{\"content\":\"x\",\"type\":\"file\"}},"
              "\"description\":\"data\",\"type\":\"dir\"},"
              "\"a.txt\":{\"ephemeral\":false,\"permissions\":\"0644\",\"content\":\"hi\","
              "\"type\":\"file\"}},\"root\":\"/workspace\",\"version\":1}",
              d2);
    cr_expect_str_eq(d1, d2);
    /* Spelling the same value differently does not change it either. */
    digest_of("{\"root\":\"/workspace/\",\"entries\":{\"./a.txt\":{\"type\":\"file\","
              "\"content\":\"hi\",\"permissions\":420},\"d\":{\"type\":\"dir\","
              "\"description\":\"data\",\"children\":{\"x.txt\":{\"type\":\"file\","
              "\"content_b64\":\"eA==\"}}}},\"environment\":{\"value\":{\"K\":{\"type\":\"str\","
              "\"value\":\"v\"}}},\"users\":[{\"name\":\"alice\"}],"
              "\"groups\":[{\"name\":\"dev\",\"users\":[{\"name\":\"alice\"}]}]}",
              d3);
    cr_expect_str_eq(d1, d3);
    digest_of("{\"entries\":{\"a.txt\":{\"type\":\"file\",\"content\":\"hi!\"}}}", d4);
    cr_expect_str_neq(d1, d4);
}

Test(core_manifest, entries_keep_declaration_order)
{
    struct sbx_manifest *m = parse_ok("{\"entries\":{\"z\":{\"type\":\"file\",\"content\":\"\"},"
                                      "\"a\":{\"type\":\"file\",\"content\":\"\"},"
                                      "\"m\":{\"type\":\"dir\",\"children\":{"
                                      "\"y\":{\"type\":\"file\",\"content\":\"\"},"
                                      "\"b\":{\"type\":\"file\",\"content\":\"\"}}}},"
                                      "\"environment\":{\"value\":{\"Z\":\"1\",\"A\":\"2\"}}}");
    cr_assert_eq(m->n_entries, 3);
    cr_expect_str_eq(m->entries[0].key, "z");
    cr_expect_str_eq(m->entries[1].key, "a");
    cr_expect_str_eq(m->entries[2].key, "m");
    cr_expect_str_eq(m->entries[2].children[0].key, "y");
    cr_expect_str_eq(m->entries[2].children[1].key, "b");
    cr_expect_str_eq(m->env[0].name, "Z");
    /* The object form (what the session state embeds) keeps that order... */
    struct json_object *o = sbx__manifest_to_jobj(m);
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    cr_expect(strstr(s, "\"z\"") < strstr(s, "\"a\""), "%s", s);
    cr_expect(strstr(s, "\"y\"") < strstr(s, "\"b\""), "%s", s);
    cr_expect(strstr(s, "\"Z\"") < strstr(s, "\"A\""), "%s", s);
    /* ...and reading it back restores it. */
    struct sbx_manifest *back = NULL;
    cr_assert_eq(sbx__manifest_from_jobj(o, &back, NULL), 0);
    cr_expect_str_eq(back->entries[0].key, "z");
    cr_expect_str_eq(back->entries[2].children[1].key, "b");
    json_object_put(o);
    sbx__manifest_free(back);
    /* The canonical text sorts them. */
    char *c = sbx__manifest_to_json(m);
    cr_expect(strstr(c, "\"a\"") < strstr(c, "\"z\""), "%s", c);
    free(c);
    sbx__manifest_free(m);
}

Test(core_manifest, nested_children)
{
    struct sbx_manifest *m =
        parse_ok("{\"root\":\"/srv//work/\",\"entries\":{\"d\":{\"type\":\"dir\",\"children\":{"
                 "\"sub/x.txt\":{\"type\":\"file\",\"content\":\"x\",\"ephemeral\":true},"
                 "\"e\":{\"type\":\"dir\",\"permissions\":\"0o700\",\"children\":{"
                 "\"deep\\\\y.txt\":{\"type\":\"file\",\"content\":\"y\"}}}}}}}");
    cr_expect_str_eq(m->root, "/srv/work");
    cr_assert_eq(m->n_entries, 1);
    const struct sbx_mf_entry *d = &m->entries[0];
    cr_expect_eq(d->kind, SBX_MF_DIR);
    cr_expect_eq(d->mode, 0755);
    cr_assert_eq(d->n_children, 2);
    cr_expect_str_eq(d->children[0].key, "sub/x.txt");
    cr_expect_eq(d->children[0].kind, SBX_MF_FILE);
    cr_expect_eq(d->children[0].ephemeral, 1);
    cr_expect_eq(d->children[0].content_len, 1);
    cr_expect_eq(d->children[0].content[0], 'x');
    cr_expect_eq(d->children[0].mode, 0755, "files default to 0755 too");
    cr_expect_eq(d->children[1].mode, 0700);
    cr_assert_eq(d->children[1].n_children, 1);
    cr_expect_str_eq(d->children[1].children[0].key, "deep/y.txt");
    sbx__manifest_free(m);
}

Test(core_manifest, child_escaping_root_is_refused)
{
    sbx_error *e = parse_fail("{\"entries\":{\"d\":{\"type\":\"dir\",\"children\":{"
                              "\"../outside.txt\":{\"type\":\"file\",\"content\":\"x\"}}}}}",
                              SBX_EINVALID_PATH, "must not escape root");
    cr_expect_str_eq(sbx_error_context_get(e, "reason"), "escape_root");
    cr_expect_str_eq(sbx_error_context_get(e, "rel"), "../outside.txt");
    cr_expect_str_eq(sbx_error_op(e), "materialize");
    sbx_error_free(e);
    e = parse_fail("{\"entries\":{\"d\":{\"type\":\"dir\",\"children\":{"
                   "\"/tmp/outside.txt\":{\"type\":\"file\",\"content\":\"x\"}}}}}",
                   SBX_EINVALID_PATH, "must be relative");
    cr_expect_str_eq(sbx_error_context_get(e, "reason"), "absolute");
    sbx_error_free(e);
    /* Even a ".." that would stay inside is refused in a key. */
    e = parse_fail("{\"entries\":{\"a/../b\":{\"type\":\"file\",\"content\":\"x\"}}}",
                   SBX_EINVALID_PATH, "must not escape root");
    sbx_error_free(e);
}

Test(core_manifest, windows_drive_key_is_absolute)
{
    sbx_error *e = parse_fail("{\"entries\":{\"C:\\\\tmp\\\\outside.txt\":{\"type\":\"file\","
                              "\"content\":\"x\"}}}",
                              SBX_EINVALID_PATH, "must be relative");
    cr_expect_str_eq(sbx_error_context_get(e, "rel"), "C:/tmp/outside.txt");
    cr_expect_str_eq(sbx_error_context_get(e, "reason"), "absolute");
    sbx_error_free(e);
}

Test(core_manifest, duplicate_keys_after_normalisation_are_refused)
{
    sbx_error *e = parse_fail("{\"entries\":{\"a\":{\"type\":\"file\",\"content\":\"1\"},"
                              "\"./a\":{\"type\":\"file\",\"content\":\"2\"}}}",
                              SBX_ECONFIG, "declared twice");
    sbx_error_free(e);
}

Test(core_manifest, unknown_and_unsupported_entry_types)
{
    sbx_error *e = parse_fail("{\"entries\":{\"x\":{\"type\":\"symlink\"}}}", SBX_ECONFIG,
                              "Unknown artifact type `symlink`");
    sbx_error_free(e);
    const char *kinds[] = {"local_file", "local_dir", "git_repo", "s3_mount"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"entries\":{\"x\":{\"type\":\"%s\"}}}", kinds[i]);
        e = parse_fail(json, SBX_ECONFIG, "unsupported entry type");
        cr_expect_str_eq(sbx_error_context_get(e, "type"), kinds[i]);
        cr_expect_str_eq(sbx_error_context_get(e, "entry"), "x");
        sbx_error_free(e);
    }
    e = parse_fail("{\"entries\":{\"x\":{\"content\":\"a\"}}}", SBX_ECONFIG, "'type'");
    sbx_error_free(e);
    e = parse_fail("{\"entries\":{\"x\":{\"type\":\"file\",\"content\":\"a\",\"src\":\"b\"}}}",
                   SBX_ECONFIG, "unknown field 'src'");
    sbx_error_free(e);
    e = parse_fail("{\"entries\":{\"x\":{\"type\":\"file\",\"content\":\"a\","
                   "\"group\":{\"name\":\"dev\"}}}}",
                   SBX_ECONFIG, "'group'");
    sbx_error_free(e);
}

Test(core_manifest, file_content_and_permissions)
{
    /* Bytes that are not UTF-8 text go out as base64 and come back unchanged. */
    struct sbx_manifest *m =
        parse_ok("{\"entries\":{\"bin\":{\"type\":\"file\",\"content_b64\":\"AP/+YQ==\","
                 "\"permissions\":\"0600\"},\"t\":{\"type\":\"file\",\"content\":\"h\\u00e9\","
                 "\"permissions\":33188}}}");
    cr_assert_eq(m->entries[0].content_len, 4);
    cr_expect_eq(memcmp(m->entries[0].content, "\x00\xff\xfe" "a", 4), 0);
    cr_expect_eq(m->entries[0].mode, 0600);
    cr_expect_eq(m->entries[1].mode, 0644, "file-type bits of 0100644 are stripped");
    char *s = sbx__manifest_to_json(m);
    cr_expect(strstr(s, "\"content_b64\":\"AP/+YQ==\"") != NULL, "%s", s);
    cr_expect(strstr(s, "\"content\":\"h\xc3\xa9\"") != NULL, "%s", s);
    char *again = canon(s);
    cr_expect_str_eq(s, again);
    free(again);
    free(s);
    sbx__manifest_free(m);
    sbx_error_free(parse_fail("{\"entries\":{\"x\":{\"type\":\"file\",\"content_b64\":\"A\"}}}",
                              SBX_ECONFIG, "base64"));
    sbx_error_free(parse_fail("{\"entries\":{\"x\":{\"type\":\"file\"}}}", SBX_ECONFIG,
                              "needs content"));
    sbx_error_free(parse_fail("{\"entries\":{\"x\":{\"type\":\"file\",\"content\":\"a\","
                              "\"permissions\":\"0998\"}}}",
                              SBX_ECONFIG, "permissions"));
    sbx_error_free(parse_fail("{\"entries\":{\"x\":{\"type\":\"file\",\"content\":\"a\","
                              "\"permissions\":-1}}}",
                              SBX_ECONFIG, "permissions"));
}

Test(core_manifest, environment_forms)
{
    struct sbx_manifest *m = parse_ok("{\"environment\":{\"value\":{"
                                      "\"PLAIN\":\"a\","
                                      "\"TYPED\":{\"type\":\"str\",\"value\":\"b\"},"
                                      "\"LEGACY\":{\"value\":\"c\"},"
                                      "\"ENTRY\":{\"description\":\"d\",\"ephemeral\":true,"
                                      "\"value\":{\"type\":\"str\",\"value\":\"e\"}}}}}");
    cr_assert_eq(m->n_env, 4);
    const char *names[] = {"PLAIN", "TYPED", "LEGACY", "ENTRY"};
    const char *values[] = {"a", "b", "c", "e"};
    for (size_t i = 0; i < 4; i++) {
        cr_expect_str_eq(m->env[i].name, names[i]);
        cr_expect_str_eq(m->env[i].value, values[i]);
    }
    char *s = sbx__manifest_to_json(m);
    cr_expect(strstr(s, "\"environment\":{\"value\":{\"ENTRY\":\"e\",\"LEGACY\":\"c\","
                        "\"PLAIN\":\"a\",\"TYPED\":\"b\"}}") != NULL,
              "%s", s);
    char *again = canon(s);
    cr_expect_str_eq(s, again);
    free(again);
    free(s);
    sbx__manifest_free(m);

    sbx_error_free(parse_fail("{\"environment\":{\"value\":{\"K\":{\"type\":\"vault\","
                              "\"ref\":\"x\"}}}}",
                              SBX_ECONFIG, "Unknown env value type `vault`"));
    sbx_error_free(parse_fail("{\"environment\":{\"value\":{\"K\":{\"value\":\"x\","
                              "\"description\":\"d\"}}}}",
                              SBX_ECONFIG, "must include a string `type` field"));
    sbx_error_free(parse_fail("{\"environment\":{\"value\":{\"K\":{\"description\":\"d\"}}}}",
                              SBX_ECONFIG, "must include a string `type` field"));
    sbx_error_free(parse_fail("{\"environment\":{\"value\":{\"K\":7}}}", SBX_ECONFIG,
                              "must be a string"));
    sbx_error_free(parse_fail("{\"environment\":{\"value\":{\"1BAD\":\"x\"}}}", SBX_ECONFIG,
                              "variable name"));
    sbx_error_free(parse_fail("{\"environment\":{\"value\":{\"K\":\"a\\u0000b\"}}}",
                              SBX_ECONFIG, "must be a string"));
    sbx_error_free(parse_fail("{\"environment\":{\"K\":\"v\"}}", SBX_ECONFIG,
                              "unknown field 'K'"));
}

Test(core_manifest, users_and_groups)
{
    struct sbx_manifest *m =
        parse_ok("{\"users\":[{\"name\":\"alice\"},{\"name\":\"_svc-1\"}],"
                 "\"groups\":[{\"name\":\"dev\",\"users\":[{\"name\":\"bob\"}]},"
                 "{\"name\":\"ops\"}]}");
    cr_assert_eq(m->n_users, 2);
    cr_expect_str_eq(m->users[1], "_svc-1");
    cr_assert_eq(m->n_groups, 2);
    cr_expect_str_eq(m->groups[0].name, "dev");
    cr_assert_eq(m->groups[0].n_users, 1);
    cr_expect_str_eq(m->groups[0].users[0], "bob");
    cr_expect_eq(m->groups[1].n_users, 0);
    sbx__manifest_free(m);
    const char *bad[] = {"Alice", "1abc", "a b", "-x", "", "abcdefghijklmnopqrstuvwxyz0123456",
                         "a;rm"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char json[160];
        snprintf(json, sizeof(json), "{\"users\":[{\"name\":\"%s\"}]}", bad[i]);
        sbx_error_free(parse_fail(json, SBX_ECONFIG, "must match"));
        snprintf(json, sizeof(json), "{\"groups\":[{\"name\":\"%s\"}]}", bad[i]);
        sbx_error_free(parse_fail(json, SBX_ECONFIG, "must match"));
        snprintf(json, sizeof(json),
                 "{\"groups\":[{\"name\":\"g\",\"users\":[{\"name\":\"%s\"}]}]}", bad[i]);
        sbx_error_free(parse_fail(json, SBX_ECONFIG, "must match"));
    }
    sbx_error_free(parse_fail("{\"users\":[\"alice\"]}", SBX_ECONFIG, "\"name\""));
    sbx_error_free(parse_fail("{\"users\":{\"name\":\"alice\"}}", SBX_ECONFIG, "list"));
}

Test(core_manifest, top_level_refusals)
{
    sbx_error_free(parse_fail("{\"version\":2}", SBX_ECONFIG, "version must be 1"));
    sbx_error_free(parse_fail("{\"root\":\"workspace\"}", SBX_ECONFIG, "absolute"));
    sbx_error_free(parse_fail("{\"mounts\":[]}", SBX_ECONFIG, "unknown field 'mounts'"));
    sbx_error_free(parse_fail("{\"extra_path_grants\":[{\"path\":\"/data\"}]}", SBX_ECONFIG,
                              "trusted Manifest instance"));
    sbx_error_free(parse_fail("{\"entries\":{}", SBX_ECONFIG, "not valid JSON"));
    sbx_error_free(parse_fail("{} {}", SBX_ECONFIG, "not valid JSON"));
    sbx_error_free(parse_fail("[]", SBX_ECONFIG, "must be a JSON object"));
    /* What the reference implementation always writes is accepted. */
    struct sbx_manifest *m =
        parse_ok("{\"extra_path_grants\":[],\"remote_mount_command_allowlist\":[\"ls\"]}");
    sbx__manifest_free(m);
}

Test(core_manifest, ephemeral_paths)
{
    struct sbx_manifest *m = parse_ok(
        "{\"entries\":{"
        "\"keep.txt\":{\"type\":\"file\",\"content\":\"\"},"
        "\"tmp.txt\":{\"type\":\"file\",\"content\":\"\",\"ephemeral\":true},"
        "\"dir\":{\"type\":\"dir\",\"children\":{"
        "\"tmp.txt\":{\"type\":\"file\",\"content\":\"\",\"ephemeral\":true},"
        "\"durable.txt\":{\"type\":\"file\",\"content\":\"\"},"
        "\"sub\":{\"type\":\"dir\",\"ephemeral\":true,\"children\":{"
        "\"x\":{\"type\":\"file\",\"content\":\"\",\"ephemeral\":true}}}}},"
        "\"edir\":{\"type\":\"dir\",\"ephemeral\":true,\"children\":{"
        "\"y\":{\"type\":\"file\",\"content\":\"\"}}}}}");
    char **p = sbx__manifest_ephemeral_paths(m);
    cr_assert_not_null(p);
    const char *want[] = {"tmp.txt", "dir/tmp.txt", "dir/sub", "edir", NULL};
    for (size_t i = 0; want[i]; i++) {
        cr_assert_not_null(p[i], "missing %s", want[i]);
        cr_expect_str_eq(p[i], want[i]);
    }
    cr_expect_null(p[4]);
    for (size_t i = 0; p[i]; i++)
        free(p[i]);
    free(p);
    sbx__manifest_free(m);
    /* None: an empty vector, not NULL. */
    m = sbx__manifest_new_default();
    p = sbx__manifest_ephemeral_paths(m);
    cr_assert_not_null(p);
    cr_expect_null(p[0]);
    free(p);
    sbx__manifest_free(m);
}
