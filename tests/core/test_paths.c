/* Lexical path rules (spec SESSION.md §6, §9, MANIFEST.md §2; TESTS.md D31-D34, I84). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"

static void expect_ok(const char *root, const char *path, const char *want)
{
    char *out = NULL;
    sbx_error *err = NULL;
    int rc = sbx__path_normalize(root, path, &out, &err);
    cr_assert_eq(rc, 0, "%s: %s", path, err ? sbx_error_message(err) : "");
    cr_expect_str_eq(out, want, "%s", path);
    free(out);
}

/* The error of a refused path: code, message, op and the context the spec lists. */
static void expect_refused(sbx_error *err, int rc, const char *rel, const char *reason)
{
    cr_assert_eq(rc, SBX_EINVALID_PATH, "%s: rc %d", rel, rc);
    cr_assert_not_null(err);
    cr_expect_eq(sbx_error_code(err), SBX_EINVALID_PATH);
    cr_expect_str_eq(sbx_error_op(err), "materialize");
    cr_expect_str_eq(sbx_error_context_get(err, "rel"), rel);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), reason);
    cr_expect_eq(sbx_error_context_count(err), 2, "context is exactly {rel, reason}");
    char want[512];
    snprintf(want, sizeof(want), "manifest path must %s: %s",
             strcmp(reason, "absolute") == 0 ? "be relative" : "not escape root", rel);
    cr_expect_str_eq(sbx_error_message(err), want);
    sbx_error_free(err);
}

static void expect_norm_err(const char *root, const char *path, const char *rel,
                            const char *reason)
{
    char *out = NULL;
    sbx_error *err = NULL;
    int rc = sbx__path_normalize(root, path, &out, &err);
    cr_expect_null(out, "%s", path);
    expect_refused(err, rc, rel, reason);
}

static void expect_strict(const char *rel, const char *want)
{
    char *out = NULL;
    sbx_error *err = NULL;
    int rc = sbx__path_rel_strict(rel, &out, &err);
    cr_assert_eq(rc, 0, "%s: %s", rel, err ? sbx_error_message(err) : "");
    cr_expect_str_eq(out, want, "%s", rel);
    free(out);
}

static void expect_strict_err(const char *rel, const char *shown, const char *reason)
{
    char *out = NULL;
    sbx_error *err = NULL;
    int rc = sbx__path_rel_strict(rel, &out, &err);
    cr_expect_null(out, "%s", rel);
    expect_refused(err, rc, shown, reason);
}

Test(core_paths, clean_abs_collapses_dots_and_slashes)
{
    struct {
        const char *in, *want;
    } cases[] = {
        {"/", "/"},
        {"//", "/"},
        {"/a/b/", "/a/b"},
        {"/a//b/./c", "/a/b/c"},
        {"/a/b/../c", "/a/c"},
        {"/..", "/"},
        {"/../../x", "/x"},
        {"/a/..", "/"},
        {"/workspace/../workspace/a", "/workspace/a"},
        {"/a/.../b", "/a/.../b"},
        {"/a/..b/c", "/a/..b/c"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *r = sbx__path_clean_abs(cases[i].in);
        cr_assert_not_null(r);
        cr_expect_str_eq(r, cases[i].want, "%s", cases[i].in);
        free(r);
    }
}

Test(core_paths, normalize_relative_stays_under_root)
{
    expect_ok("/workspace", "pkg/file.py", "/workspace/pkg/file.py");
    expect_ok("/workspace", "pkg/../secret.txt", "/workspace/secret.txt");
    expect_ok("/workspace", "", "/workspace");
    expect_ok("/workspace", ".", "/workspace");
    expect_ok("/workspace", "a/b/../..", "/workspace");
    expect_ok("/workspace/", "./a//b/", "/workspace/a/b");
    expect_ok("/", "etc/x", "/etc/x");
}

Test(core_paths, normalize_backslash_is_separator)
{
    expect_ok("/workspace", "pkg\\file.py", "/workspace/pkg/file.py");
    expect_ok("/workspace", "a\\b", "/workspace/a/b");
}

Test(core_paths, normalize_relative_escape_is_escape_root)
{
    expect_norm_err("/workspace", "../secret.txt", "../secret.txt", "escape_root");
    expect_norm_err("/workspace", "pkg/../../x", "pkg/../../x", "escape_root");
    expect_norm_err("/workspace", "pkg/../../secret.txt", "pkg/../../secret.txt",
                    "escape_root");
    expect_norm_err("/workspace", "..", "..", "escape_root");
    /* Shown with forward slashes, as given otherwise. */
    expect_norm_err("/workspace", "..\\outside", "../outside", "escape_root");
}

Test(core_paths, normalize_absolute_must_be_under_root)
{
    expect_ok("/workspace", "/workspace", "/workspace");
    expect_ok("/workspace", "/workspace/pkg/../file.py", "/workspace/file.py");
    expect_ok("/workspace", "/workspace/../workspace/a", "/workspace/a");
    expect_norm_err("/workspace", "/etc/passwd", "/etc/passwd", "absolute");
    expect_norm_err("/workspace", "/tmp/secret.txt", "/tmp/secret.txt", "absolute");
    expect_norm_err("/workspace", "/workspace/../etc", "/workspace/../etc", "absolute");
    /* A sibling sharing the root's text as a prefix is outside. */
    expect_norm_err("/workspace", "/workspace2/a", "/workspace2/a", "absolute");
}

Test(core_paths, normalize_windows_drive_is_absolute)
{
    expect_norm_err("/workspace", "C:\\tmp\\secret.txt", "C:/tmp/secret.txt", "absolute");
    expect_norm_err("/workspace", "C:/tmp/secret.txt", "C:/tmp/secret.txt", "absolute");
    expect_norm_err("/", "d:\\x", "d:/x", "absolute");
    /* "C:foo" is an ordinary POSIX name, not a drive-absolute path. */
    expect_ok("/workspace", "C:foo", "/workspace/C:foo");
}

Test(core_paths, normalize_root_must_be_absolute)
{
    char *out = NULL;
    sbx_error *err = NULL;
    cr_expect_eq(sbx__path_normalize("workspace", "a", &out, &err), SBX_EINVAL);
    cr_expect_null(out);
    cr_expect_str_eq(sbx_error_message(err), "sandbox workspace root must be absolute");
    sbx_error_free(err);
    /* err may be NULL. */
    cr_expect_eq(sbx__path_normalize("/w", "../x", &out, NULL), SBX_EINVALID_PATH);
    cr_expect_null(out);
}

Test(core_paths, below_gives_the_relative_part)
{
    cr_expect_str_eq(sbx__path_below("/workspace", "/workspace"), "");
    cr_expect_str_eq(sbx__path_below("/workspace", "/workspace/a/b"), "a/b");
    cr_expect_str_eq(sbx__path_below("/workspace/", "/workspace/a"), "a");
    cr_expect_str_eq(sbx__path_below("/", "/"), "");
    cr_expect_str_eq(sbx__path_below("/", "/etc"), "etc");
    cr_expect_null(sbx__path_below("/workspace", "/workspace2"));
    cr_expect_null(sbx__path_below("/workspace", "/work"));
    cr_expect_null(sbx__path_below("/workspace", "/etc"));
}

Test(core_paths, strict_normalises_and_refuses_any_dotdot)
{
    expect_strict("./a//b/", "a/b");
    expect_strict("a/b", "a/b");
    expect_strict("a\\b", "a/b");
    expect_strict("", "");
    expect_strict(".", "");
    expect_strict("logs/events.jsonl", "logs/events.jsonl");
    expect_strict("a/...", "a/...");
    expect_strict_err("a/../b", "a/../b", "escape_root");
    expect_strict_err("../x", "../x", "escape_root");
    expect_strict_err("..", "..", "escape_root");
    expect_strict_err("a\\..\\b", "a/../b", "escape_root");
    expect_strict_err("/x", "/x", "absolute");
    expect_strict_err("\\x", "/x", "absolute");
    expect_strict_err("C:\\tmp\\secret.txt", "C:/tmp/secret.txt", "absolute");
    expect_strict_err("C:", "C:", "absolute");
}

Test(core_paths, skip_check_needs_a_concrete_path)
{
    char *out = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx__path_skip_check("logs/events.jsonl", &out, &err), 0);
    cr_expect_str_eq(out, "logs/events.jsonl");
    free(out);
    out = NULL;
    const char *empty[] = {"", ".", "./", ".//."};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        cr_expect_eq(sbx__path_skip_check(empty[i], &out, &err), SBX_EINVAL, "'%s'", empty[i]);
        cr_expect_null(out);
        cr_expect_str_eq(sbx_error_message(err),
                         "Persist workspace skip paths must target a concrete relative path.");
        sbx_error_free(err);
        err = NULL;
    }
    cr_expect_eq(sbx__path_skip_check("../x", &out, &err), SBX_EINVALID_PATH);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "escape_root");
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx__path_skip_check("/x", &out, &err), SBX_EINVALID_PATH);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "absolute");
    sbx_error_free(err);
}

Test(core_paths, within_matches_whole_components)
{
    cr_expect(sbx__path_within("a/b", "a"));
    cr_expect(sbx__path_within("a", "a"));
    cr_expect(sbx__path_within("x", ""));
    cr_expect(sbx__path_within("", ""));
    cr_expect_not(sbx__path_within("ab", "a"));
    cr_expect_not(sbx__path_within("a", "a/b"));
    cr_expect_not(sbx__path_within("", "a"));
}
