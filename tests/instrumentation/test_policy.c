/* Payload policies: overlay by presence bits, output stripping, truncation, redaction, hashing
 * (spec EVENTS.md §5, TESTS.md M.118, M.123). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "events_internal.h"

static json_object *exec_finish(void)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "phase", json_object_new_string("finish"));
    json_object *d = json_object_new_object();
    json_object_object_add(d, "bytes", json_object_new_int(5));
    json_object *cmd = json_object_new_array();
    json_object_array_add(cmd, json_object_new_string("echo"));
    json_object_array_add(cmd, json_object_new_string("token=ghp_abc123"));
    json_object_object_add(d, "command", cmd);
    json_object_object_add(o, "data", d);
    json_object_object_add(o, "stdout", NULL);
    json_object_object_add(o, "stderr", NULL);
    json_object_object_add(o, "error_message", json_object_new_string("failed with ghp_abc123"));
    return o;
}

static const char *line(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

Test(instr_policy, truncates_by_characters_with_marker)
{
    size_t n = 0;
    char *s = sbx__truncate_chars("abcdef", 6, 3, &n);
    cr_expect_str_eq(s, "abc\xe2\x80\xa6");
    free(s);
    s = sbx__truncate_chars("abc", 3, 3, &n);
    cr_expect_str_eq(s, "abc");
    free(s);
    /* Code points, not bytes: "é" is one character. */
    s = sbx__truncate_chars("\xc3\xa9\xc3\xa9\xc3\xa9", 6, 2, &n);
    cr_expect_str_eq(s, "\xc3\xa9\xc3\xa9\xe2\x80\xa6");
    free(s);
    s = sbx__truncate_chars("abc", 3, 0, &n);
    cr_expect_str_eq(s, "\xe2\x80\xa6");
    free(s);
}

Test(instr_policy, decodes_invalid_utf8_with_replacement)
{
    size_t n = 0;
    char *s = sbx__utf8_decode("a\xff" "b\xc3", 4, &n);
    cr_expect_str_eq(s, "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    free(s);
    /* Overlong and surrogate encodings are invalid too. */
    s = sbx__utf8_decode("\xc0\xaf\xed\xa0\x80", 5, &n);
    cr_expect_eq(n, 5 * 3);
    free(s);
}

Test(instr_policy, redacts_every_match_even_after_nul)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, "ghp_[A-Za-z0-9]+", REG_EXTENDED), 0);
    size_t n = 0;
    const char in[] = "a ghp_x1 b\0c ghp_y2";
    char *s = sbx__redact(&re, 1, in, sizeof(in) - 1, &n);
    cr_expect_eq(n, strlen("a [REDACTED] b") + 1 + strlen("c [REDACTED]"));
    cr_expect_eq(memcmp(s, "a [REDACTED] b\0c [REDACTED]", n), 0);
    cr_expect_null(memmem(s, n, "ghp_", 4));
    free(s);
    regfree(&re);
}

Test(instr_policy, overlay_uses_only_explicit_fields)
{
    struct sbx__policy base, op, sink;
    sbx_payload_policy pb = {.set = SBX_POLICY_MAX_STDOUT, .max_stdout_chars = 10};
    sbx_payload_policy po = {.set = SBX_POLICY_EXEC_OUTPUT, .include_exec_output = 1,
                             .max_stdout_chars = 99 /* not set: ignored */};
    sbx_payload_policy ps = {.set = SBX_POLICY_EXEC_OUTPUT | SBX_POLICY_WRITE_LEN,
                             .include_exec_output = 0, .include_write_len = 0};
    cr_assert_eq(sbx__policy_compile(&pb, &base, NULL), 0);
    cr_assert_eq(sbx__policy_compile(&po, &op, NULL), 0);
    cr_assert_eq(sbx__policy_compile(&ps, &sink, NULL), 0);
    struct sbx__policy_eff e;
    const struct sbx__policy *none[1] = {NULL};
    sbx__policy_resolve(none, 1, &e);
    cr_expect_eq(e.include_exec_output, 0);
    cr_expect_eq(e.max_stdout_chars, 8000);
    cr_expect_eq(e.max_stderr_chars, 8000);
    cr_expect_eq(e.include_write_len, 1);
    const struct sbx__policy *two[2] = {&base, &op};
    sbx__policy_resolve(two, 2, &e);
    cr_expect_eq(e.include_exec_output, 1);
    cr_expect_eq(e.max_stdout_chars, 10);
    const struct sbx__policy *three[3] = {&base, &op, &sink};
    sbx__policy_resolve(three, 3, &e);
    cr_expect_eq(e.include_exec_output, 0);
    cr_expect_eq(e.include_write_len, 0);
    cr_expect_eq(e.max_stdout_chars, 10);
    sbx__policy_clear(&base);
    sbx__policy_clear(&op);
    sbx__policy_clear(&sink);
}

Test(instr_policy, bad_pattern_is_einval)
{
    const char *pats[] = {"(unclosed", NULL};
    sbx_payload_policy p = {.set = SBX_POLICY_REDACT, .redact = pats};
    struct sbx__policy c;
    sbx_error *err = NULL;
    cr_expect_eq(sbx__policy_compile(&p, &c, &err), SBX_EINVAL);
    cr_expect_not_null(strstr(sbx_error_message(err), "(unclosed"));
    sbx_error_free(err);
}

Test(instr_policy, default_strips_output_and_keeps_bytes)
{
    json_object *ev = exec_finish();
    struct sbx__ev_raw raw = {.out = (const unsigned char *)"hi\n", .out_len = 3,
                              .err = (const unsigned char *)"e", .err_len = 1, .has_output = 1};
    struct sbx__policy_eff e;
    sbx__policy_resolve(NULL, 0, &e);
    json_object *c = sbx__policy_apply(&e, ev, &raw);
    cr_expect_str_eq(line(c), "{\"data\":{\"bytes\":5,\"command\":[\"echo\",\"token=ghp_abc123\"]},"
                              "\"error_message\":\"failed with ghp_abc123\",\"phase\":\"finish\","
                              "\"stderr\":null,\"stdout\":null}");
    json_object_put(c);
    json_object_put(ev);
}

Test(instr_policy, include_redact_truncate_and_hash_per_copy)
{
    json_object *ev = exec_finish();
    const char out[] = "secret ghp_abc123 and more text";
    struct sbx__ev_raw raw = {.out = (const unsigned char *)out, .out_len = sizeof(out) - 1,
                              .has_output = 1};
    const char *pats[] = {"ghp_[A-Za-z0-9]+", NULL};
    sbx_payload_policy pp = {.set = SBX_POLICY_EXEC_OUTPUT | SBX_POLICY_REDACT |
                                    SBX_POLICY_MAX_STDOUT | SBX_POLICY_WRITE_LEN,
                             .include_exec_output = 1, .redact = pats, .max_stdout_chars = 17,
                             .include_write_len = 0};
    struct sbx__policy p;
    cr_assert_eq(sbx__policy_compile(&pp, &p, NULL), 0);
    const struct sbx__policy *l[1] = {&p};
    struct sbx__policy_eff e;
    sbx__policy_resolve(l, 1, &e);
    json_object *c = sbx__policy_apply(&e, ev, &raw);
    const char *s = line(c);
    cr_expect_null(strstr(s, "ghp_"), "%s", s);
    cr_expect_null(strstr(s, "bytes"), "%s", s);
    cr_expect_not_null(strstr(s, "\"stdout\":\"secret [REDACTED]\xe2\x80\xa6\""), "%s", s);
    cr_expect_not_null(strstr(s, "\"error_message\":\"failed with [REDACTED]\""), "%s", s);
    json_object_put(c);
    /* The original record is untouched: another sink still sees everything. */
    cr_expect_not_null(strstr(line(ev), "ghp_abc123"));
    sbx__policy_clear(&p);

    sbx_payload_policy ph = {.set = SBX_POLICY_HASH, .hash_dropped_output = 1};
    cr_assert_eq(sbx__policy_compile(&ph, &p, NULL), 0);
    sbx__policy_resolve(l, 1, &e);
    c = sbx__policy_apply(&e, ev, &raw);
    s = line(c);
    cr_expect_not_null(strstr(s, "\"stdout\":null,\"stdout_sha256\":\""), "%s", s);
    /* sha256("") for the empty stderr. */
    cr_expect_not_null(strstr(s, "\"stderr_sha256\":\"e3b0c44298fc1c149afbf4c8996fb924"), "%s", s);
    json_object_put(c);
    sbx__policy_clear(&p);
    json_object_put(ev);
}
