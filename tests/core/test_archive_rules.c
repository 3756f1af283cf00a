/* Archive member rules (spec SESSION.md §8.6, §10, §11.2; TESTS.md G57-G69, H71-H77, I85). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_rules.h"

static struct sbx_arc_member dir(const char *name)
{
    return (struct sbx_arc_member){.name = name, .type = SBX_ARC_DIR};
}

static struct sbx_arc_member file(const char *name, uint64_t size)
{
    return (struct sbx_arc_member){.name = name, .type = SBX_ARC_FILE, .size = size};
}

static struct sbx_arc_member symlink_to(const char *name, const char *target)
{
    return (struct sbx_arc_member){.name = name, .type = SBX_ARC_SYMLINK, .link_target = target};
}

static struct sbx_arc_member typed(const char *name, int type)
{
    return (struct sbx_arc_member){.name = name, .type = type, .link_target = "x"};
}

static struct sbx_arc_member zipped(struct sbx_arc_member m)
{
    m.from_zip = 1;
    return m;
}

/* What feeding a whole archive produced; the strings are copied out of the checker. */
struct outcome {
    int refused;
    size_t at; /* index of the refused member */
    char reason[256];
    char member[256];
    int has_limit;
    uint64_t limit, actual;
};

static struct outcome run(int mode, const sbx_archive_limits *limits,
                          const struct sbx_arc_member *ms, size_t n)
{
    struct outcome o = {0};
    struct sbx_arc_check *c = sbx__arc_check_new(mode, limits);
    cr_assert_not_null(c);
    for (size_t i = 0; i < n; i++) {
        const char *rel = NULL;
        struct sbx_arc_violation v;
        int rc = sbx__arc_check_member(c, &ms[i], &rel, &v);
        if (rc < 0) {
            o.refused = 1;
            o.at = i;
            snprintf(o.reason, sizeof(o.reason), "%s", v.reason);
            snprintf(o.member, sizeof(o.member), "%s", v.member);
            o.has_limit = v.has_limit;
            o.limit = v.limit;
            o.actual = v.actual;
            cr_expect_null(rel);
            break;
        }
        if (rc == 1)
            cr_expect_not_null(rel, "%s", ms[i].name);
        else
            cr_expect_eq(rc, 0, "%s", ms[i].name);
    }
    sbx__arc_check_free(c);
    return o;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define EXPECT_REFUSED(mode, limits, ms, want_member, want_reason)                           \
    do {                                                                                      \
        struct outcome o_ = run((mode), (limits), (ms), N(ms));                               \
        cr_expect(o_.refused, "expected refusal: %s", (want_reason));                         \
        cr_expect_str_eq(o_.member, (want_member));                                           \
        cr_expect_str_eq(o_.reason, (want_reason));                                           \
    } while (0)

#define EXPECT_ACCEPTED(mode, limits, ms)                                                     \
    do {                                                                                      \
        struct outcome o_ = run((mode), (limits), (ms), N(ms));                               \
        cr_expect_not(o_.refused, "refused %s: %s", o_.member, o_.reason);                    \
    } while (0)

static void expect_one(int mode, struct sbx_arc_member m, const char *reason)
{
    struct outcome o = run(mode, NULL, &m, 1);
    cr_expect(o.refused, "%s accepted, wanted %s", m.name, reason);
    cr_expect_str_eq(o.reason, reason, "%s", m.name);
    cr_expect_str_eq(o.member, m.name);
    cr_expect_not(o.has_limit);
}

static void expect_name_both_modes(const char *name, const char *reason)
{
    expect_one(SBX_ARC_HYDRATE, file(name, 1), reason);
    expect_one(SBX_ARC_EXTRACT, file(name, 1), reason);
    expect_one(SBX_ARC_EXTRACT, zipped(file(name, 1)), reason);
}

Test(core_archive_rules, windows_names)
{
    expect_name_both_modes("C:/tmp/evil.txt", "windows drive path");
    expect_name_both_modes("C:\\tmp\\evil.txt", "windows drive path");
    expect_name_both_modes("c:", "windows drive path");
    expect_name_both_modes("..\\evil.txt", "windows path separator");
    expect_name_both_modes("\\evil.txt", "windows path separator");
    expect_name_both_modes("nested\\evil.txt", "windows path separator");
}

Test(core_archive_rules, absolute_and_parent_traversal)
{
    expect_name_both_modes("/etc/passwd", "absolute path");
    expect_name_both_modes("/", "absolute path");
    expect_name_both_modes("../escape.txt", "parent traversal");
    expect_name_both_modes("a/../b", "parent traversal");
    expect_name_both_modes("a/..", "parent traversal");
    expect_name_both_modes("./..", "parent traversal");
    /* Names that only look like traversal are fine. */
    struct sbx_arc_member ok[] = {file("..a", 1), file("a..", 1), file("a/.../b", 1)};
    EXPECT_ACCEPTED(SBX_ARC_EXTRACT, NULL, ok);
}

Test(core_archive_rules, member_types)
{
    for (int mode = SBX_ARC_HYDRATE; mode <= SBX_ARC_EXTRACT; mode++) {
        expect_one(mode, typed("hard", SBX_ARC_HARDLINK), "hardlink member not allowed");
        expect_one(mode, typed("fifo", SBX_ARC_OTHER), "unsupported member type");
        expect_one(mode, typed("odd", 42), "unsupported member type");
    }
    expect_one(SBX_ARC_EXTRACT, symlink_to("link", "target.txt"), "symlink member not allowed");
    expect_one(SBX_ARC_EXTRACT, zipped(symlink_to("link", "target.txt")),
               "link member not allowed");
}

Test(core_archive_rules, hydrate_symlink_targets)
{
    expect_one(SBX_ARC_HYDRATE, symlink_to("leak", "/etc/passwd"),
               "absolute symlink target not allowed: /etc/passwd");
    expect_one(SBX_ARC_HYDRATE, symlink_to("nested/leak", "../../etc/passwd"),
               "symlink target escapes archive root: ../../etc/passwd");
    expect_one(SBX_ARC_HYDRATE, symlink_to("up", ".."), "symlink target escapes archive root: ..");
    /* Leaving the root and coming back still passes through what lies above it. */
    expect_one(SBX_ARC_HYDRATE, symlink_to("a/l", "../../a/x"),
               "symlink target escapes archive root: ../../a/x");
    struct sbx_arc_member ok[] = {
        dir("."),
        dir("bin/"),
        file("bin/python3", 10),
        dir("lib"),
        file("main.py", 3),
        symlink_to("lib64", "lib"),
        symlink_to("bin/python", "python3"),
        symlink_to("nested/python", "../bin/python3"),
        symlink_to("self", "."),
        symlink_to("deep/a/b", "../../x/./y//z"),
    };
    EXPECT_ACCEPTED(SBX_ARC_HYDRATE, NULL, ok);
}

Test(core_archive_rules, root_members)
{
    const char *roots[] = {"", ".", "./"};
    for (size_t i = 0; i < N(roots); i++) {
        for (int mode = SBX_ARC_HYDRATE; mode <= SBX_ARC_EXTRACT; mode++) {
            expect_one(mode, symlink_to(roots[i], "/"), "archive root symlink");
            expect_one(mode, typed(roots[i], SBX_ARC_HARDLINK), "archive root hardlink");
            expect_one(mode, file(roots[i], 0), "archive root member must be directory");
            expect_one(mode, typed(roots[i], SBX_ARC_OTHER),
                       "archive root member must be directory");
        }
    }
    /* A directory root is skipped (0, no rel), and a zip root entry is skipped whatever its
     * mode says. */
    struct sbx_arc_check *c = sbx__arc_check_new(SBX_ARC_EXTRACT, NULL);
    struct sbx_arc_violation v;
    const char *rel = "unset";
    struct sbx_arc_member m = dir("./");
    cr_expect_eq(sbx__arc_check_member(c, &m, &rel, &v), 0);
    cr_expect_null(rel);
    m = zipped(file("./", 0));
    cr_expect_eq(sbx__arc_check_member(c, &m, &rel, &v), 0);
    m = dir(".");
    cr_expect_eq(sbx__arc_check_member(c, &m, &rel, &v), 0, "root twice is fine");
    sbx__arc_check_free(c);
}

Test(core_archive_rules, names_are_normalised)
{
    struct sbx_arc_check *c = sbx__arc_check_new(SBX_ARC_EXTRACT, NULL);
    struct sbx_arc_violation v;
    const char *rel = NULL;
    struct {
        struct sbx_arc_member m;
        const char *rel;
    } cases[] = {
        {dir("./a/"), "a"},
        {file("./a//./b.txt", 1), "a/b.txt"},
        {dir("c/d/"), "c/d"},
        {file("c/./d/e", 1), "c/d/e"},
        {zipped(dir("z/")), "z"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        cr_assert_eq(sbx__arc_check_member(c, &cases[i].m, &rel, &v), 1, "%s: %s",
                     cases[i].m.name, v.reason);
        cr_expect_str_eq(rel, cases[i].rel);
    }
    sbx__arc_check_free(c);
}

Test(core_archive_rules, duplicates)
{
    struct sbx_arc_member two_files[] = {file("a.txt", 1), file("./a.txt", 1)};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, NULL, two_files, "./a.txt", "duplicate archive path: a.txt");
    struct sbx_arc_member dir_then_file[] = {dir("d/"), file("d", 1)};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, NULL, dir_then_file, "d", "duplicate archive path: d");
    struct sbx_arc_member file_then_dir[] = {file("d", 1), dir("d/")};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, NULL, file_then_dir, "d/", "duplicate archive path: d");
    struct sbx_arc_member link_then_file[] = {symlink_to("l", "x"), file("l", 1)};
    EXPECT_REFUSED(SBX_ARC_HYDRATE, NULL, link_then_file, "l", "duplicate archive path: l");
    struct sbx_arc_member file_then_link[] = {file("l", 1), symlink_to("l", "x")};
    EXPECT_REFUSED(SBX_ARC_HYDRATE, NULL, file_then_link, "l", "duplicate archive path: l");
    struct sbx_arc_member zip_twice[] = {zipped(file("a", 1)), zipped(file("a", 1))};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, NULL, zip_twice, "a", "duplicate archive path: a");
    /* The same directory twice, and a directory after a member that implied it, are fine. */
    struct sbx_arc_member dirs[] = {dir("d/"), dir("./d"), file("e/f", 1), dir("e/"),
                                    dir("e"),  file("e/g", 1)};
    EXPECT_ACCEPTED(SBX_ARC_EXTRACT, NULL, dirs);
}

Test(core_archive_rules, descends_through_symlink)
{
    struct sbx_arc_member ms[] = {dir("."), symlink_to("escape", "inside"),
                                  file("escape/pwned.txt", 1)};
    EXPECT_REFUSED(SBX_ARC_HYDRATE, NULL, ms, "escape/pwned.txt",
                   "archive path descends through symlink: escape");
    struct sbx_arc_member deep[] = {symlink_to("a/b", "c"), file("a/b/c/d.txt", 1)};
    EXPECT_REFUSED(SBX_ARC_HYDRATE, NULL, deep, "a/b/c/d.txt",
                   "archive path descends through symlink: a/b");
    /* Symlink after its descendant: the descendant is reported. */
    struct sbx_arc_member late[] = {file("x/y", 1), symlink_to("x", "z")};
    EXPECT_REFUSED(SBX_ARC_HYDRATE, NULL, late, "x/y", "archive path descends through symlink: x");
}

Test(core_archive_rules, descends_through_non_directory)
{
    struct sbx_arc_member first[] = {file("nested", 1), file("nested/hello.txt", 1)};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, NULL, first, "nested/hello.txt",
                   "archive path descends through non-directory: nested");
    /* TESTS.md G67: the file comes after its descendant, the descendant is reported. */
    struct sbx_arc_member after[] = {file("nested/hello.txt", 5), file("nested", 1)};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, NULL, after, "nested/hello.txt",
                   "archive path descends through non-directory: nested");
    struct sbx_arc_member zip_after[] = {zipped(file("nested/hello.txt", 5)),
                                         zipped(file("nested", 1))};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, NULL, zip_after, "nested/hello.txt",
                   "archive path descends through non-directory: nested");
    struct sbx_arc_member deeper[] = {file("a/b/c.txt", 1), file("a/b/d.txt", 1), file("a/b", 1)};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, NULL, deeper, "a/b/c.txt",
                   "archive path descends through non-directory: a/b");
    struct sbx_arc_member top[] = {file("a/b/c.txt", 1), file("a", 1)};
    EXPECT_REFUSED(SBX_ARC_HYDRATE, NULL, top, "a/b/c.txt",
                   "archive path descends through non-directory: a");
}

Test(core_archive_rules, member_count_limit)
{
    sbx_archive_limits l = {.max_members = 1};
    struct sbx_arc_member ms[] = {dir("."), file("one.txt", 1), file("two.txt", 1)};
    struct outcome o = run(SBX_ARC_EXTRACT, &l, ms, N(ms));
    cr_expect(o.refused);
    cr_expect_eq(o.at, 2);
    cr_expect_str_eq(o.member, "two.txt");
    cr_expect_str_eq(o.reason, "archive member count exceeds limit");
    cr_expect(o.has_limit);
    cr_expect_eq(o.limit, 1);
    cr_expect_eq(o.actual, 2);
    /* TESTS.md G58: max_members=1 with one 5-byte member (and the root) succeeds. */
    struct sbx_arc_member one[] = {dir("./"), file("hello.txt", 5)};
    EXPECT_ACCEPTED(SBX_ARC_EXTRACT, &l, one);
    struct sbx_arc_member zip_two[] = {zipped(file("one.txt", 1)), zipped(file("two.txt", 1))};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, &l, zip_two, "two.txt", "archive member count exceeds limit");
    /* No limits, or all fields zero: everything goes. */
    sbx_archive_limits none = {0};
    EXPECT_ACCEPTED(SBX_ARC_EXTRACT, NULL, ms);
    EXPECT_ACCEPTED(SBX_ARC_EXTRACT, &none, ms);
}

Test(core_archive_rules, extracted_size_limit)
{
    sbx_archive_limits l = {.max_extracted_bytes = 4};
    struct sbx_arc_member large[] = {file("large.txt", 5)};
    struct outcome o = run(SBX_ARC_EXTRACT, &l, large, 1);
    cr_expect(o.refused);
    cr_expect_str_eq(o.member, "large.txt");
    cr_expect_str_eq(o.reason, "archive extracted size exceeds limit");
    cr_expect(o.has_limit);
    cr_expect_eq(o.limit, 4);
    cr_expect_eq(o.actual, 5);
    struct sbx_arc_member zlarge[] = {zipped(file("large.txt", 5))};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, &l, zlarge, "large.txt",
                   "archive extracted size exceeds limit");
    /* A running sum: 3 + 3 crosses 5 at the second member. */
    sbx_archive_limits five = {.max_extracted_bytes = 5};
    struct sbx_arc_member sum[] = {file("a", 3), file("b", 3)};
    o = run(SBX_ARC_EXTRACT, &five, sum, N(sum));
    cr_expect_str_eq(o.member, "b");
    cr_expect_eq(o.actual, 6);
    /* Exactly at the limit is fine. */
    struct sbx_arc_member exact[] = {file("a", 3), file("b", 2)};
    EXPECT_ACCEPTED(SBX_ARC_EXTRACT, &five, exact);
    /* Tar counts regular files only; zip counts every entry's declared size. */
    struct sbx_arc_member tar_dir[] = {{.name = "d/", .type = SBX_ARC_DIR, .size = 100}};
    EXPECT_ACCEPTED(SBX_ARC_EXTRACT, &l, tar_dir);
    struct sbx_arc_member zip_dir[] = {
        {.name = "d/", .type = SBX_ARC_DIR, .size = 100, .from_zip = 1}};
    EXPECT_REFUSED(SBX_ARC_EXTRACT, &l, zip_dir, "d/", "archive extracted size exceeds limit");
    /* No overflow on absurd declared sizes. */
    sbx_archive_limits big = {.max_extracted_bytes = UINT64_MAX - 1};
    struct sbx_arc_member huge[] = {file("a", UINT64_MAX - 1), file("b", UINT64_MAX - 1)};
    o = run(SBX_ARC_EXTRACT, &big, huge, N(huge));
    cr_expect_str_eq(o.member, "b");
    cr_expect_eq(o.actual, UINT64_MAX);
}

Test(core_archive_rules, refused_checker_stays_refused)
{
    struct sbx_arc_check *c = sbx__arc_check_new(SBX_ARC_EXTRACT, NULL);
    struct sbx_arc_violation v;
    const char *rel = NULL;
    struct sbx_arc_member bad = file("../x", 1), good = file("ok", 1);
    cr_expect_eq(sbx__arc_check_member(c, &bad, &rel, &v), -1);
    cr_expect_eq(sbx__arc_check_member(c, &good, &rel, &v), -1);
    cr_expect_str_eq(v.reason, "parent traversal");
    cr_expect_str_eq(v.member, "../x");
    cr_expect_null(rel);
    sbx__arc_check_free(c);
    sbx__arc_check_free(NULL);
}

/* The default limits allow exactly 100,000 members; the table must cope without a quadratic
 * scan (the suite would time out long before a check per pair finished). */
Test(core_archive_rules, hundred_thousand_members)
{
    sbx_archive_limits l = SBX_ARCHIVE_LIMITS_DEFAULT;
    struct sbx_arc_check *c = sbx__arc_check_new(SBX_ARC_EXTRACT, &l);
    cr_assert_not_null(c);
    struct sbx_arc_violation v;
    const char *rel = NULL;
    char name[64];
    struct sbx_arc_member m = dir(".");
    cr_assert_eq(sbx__arc_check_member(c, &m, &rel, &v), 0);
    size_t n = 0;
    for (int d = 0; d < 100; d++) {
        snprintf(name, sizeof(name), "dir%03d/", d);
        m = dir(name);
        cr_assert_eq(sbx__arc_check_member(c, &m, &rel, &v), 1, "%s: %s", name, v.reason);
        n++;
        for (int f = 0; f < 999; f++) {
            snprintf(name, sizeof(name), "dir%03d/sub/file%05d.txt", d, f);
            m = file(name, 7);
            cr_assert_eq(sbx__arc_check_member(c, &m, &rel, &v), 1, "%s: %s", name, v.reason);
            n++;
        }
    }
    cr_assert_eq(n, 100000);
    m = file("one-too-many", 1);
    cr_assert_eq(sbx__arc_check_member(c, &m, &rel, &v), -1);
    cr_expect_str_eq(v.reason, "archive member count exceeds limit");
    cr_expect_eq(v.actual, 100001);
    cr_expect_eq(v.limit, 100000);
    sbx__arc_check_free(c);

    /* And a duplicate at the very end is still found. */
    c = sbx__arc_check_new(SBX_ARC_EXTRACT, NULL);
    for (int i = 0; i < 100000; i++) {
        snprintf(name, sizeof(name), "f%06d", i);
        m = file(name, 0);
        cr_assert_eq(sbx__arc_check_member(c, &m, &rel, &v), 1);
    }
    m = file("f000000", 0);
    cr_expect_eq(sbx__arc_check_member(c, &m, &rel, &v), -1);
    cr_expect_str_eq(v.reason, "duplicate archive path: f000000");
    sbx__arc_check_free(c);
}

Test(core_archive_rules, sanitize_mode)
{
    struct {
        unsigned in, want;
    } cases[] = {
        {0755, 0755}, {0644, 0644}, {0600, 0600}, {0700, 0700},  {0444, 0644},  {0000, 0600},
        {0777, 0755}, {0655, 0644}, {04755, 0755}, {02755, 0755}, {01755, 0755}, {0100644, 0644},
    };
    for (size_t i = 0; i < N(cases); i++)
        cr_expect_eq(sbx__arc_sanitize_mode(cases[i].in), cases[i].want, "%o -> %o, wanted %o",
                     cases[i].in, sbx__arc_sanitize_mode(cases[i].in), cases[i].want);
}

static void expect_scheme(const char *path, const char *explicit_scheme, const char *want,
                          const char *want_given)
{
    const char *given = "unset";
    const char *s = sbx__arc_scheme(path, explicit_scheme, &given);
    if (want)
        cr_expect_str_eq(s, want, "%s", path);
    else
        cr_expect_null(s, "%s", path);
    if (want_given)
        cr_expect_str_eq(given, want_given, "%s", path);
    else
        cr_expect_null(given, "%s", path);
}

Test(core_archive_rules, compression_scheme)
{
    expect_scheme("bundle.tar", NULL, "tar", "tar");
    expect_scheme("bundle.zip", NULL, "zip", "zip");
    expect_scheme("sub/dir/bundle.zip", NULL, "zip", "zip");
    expect_scheme("bundle", NULL, NULL, NULL);
    expect_scheme("x.tar.gz", NULL, NULL, "gz");
    expect_scheme("x.tar.gz", "tar", "tar", "tar");
    expect_scheme("bundle", "zip", "zip", "zip");
    expect_scheme("bundle.tar", "rar", NULL, "rar");
    expect_scheme("dir.tar/bundle", NULL, NULL, NULL);
    expect_scheme(".tar", NULL, NULL, NULL);
    expect_scheme("x.", NULL, NULL, NULL);
    expect_scheme("bundle.TAR", NULL, NULL, "TAR");
}
