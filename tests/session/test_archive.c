/* extract, persist_workspace and hydrate_workspace against real sessions (spec TESTS.md
 * sections G, H, I). Archives are built with libarchive in memory. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "session_util.h"

TestSuite(session_archive, .init = sbx_test_setup, .fini = sbx_test_teardown, .timeout = 120);

/* A member: type 'f' file, 'd' dir, 'l' symlink, 'h' hardlink, 'p' fifo. */
struct mem {
    char type;
    const char *name;
    const char *data; /* file content, or link target */
    unsigned mode;
};

#define MODE_ZERO 0100000 /* an explicit mode 0000 (0 means the default) */

/* Builds an archive (format "tar" or "zip", filter "" / "gzip" / "zstd" / "xz") in a memfd. */
static int build(const char *format, const char *filter, const struct mem *m, size_t n)
{
    int fd = memfd_create("archive", MFD_CLOEXEC);
    struct archive *a = archive_write_new();
    if (!strcmp(format, "zip"))
        archive_write_set_format_zip(a);
    else
        archive_write_set_format_pax_restricted(a);
    if (!strcmp(filter, "gzip"))
        archive_write_add_filter_gzip(a);
    else if (!strcmp(filter, "zstd"))
        archive_write_add_filter_zstd(a);
    else if (!strcmp(filter, "xz"))
        archive_write_add_filter_xz(a);
    cr_assert_eq(archive_write_open_fd(a, fd), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        unsigned mode = m[i].mode ? m[i].mode & 07777 : (m[i].type == 'd' ? 0755 : 0644);
        archive_entry_set_perm(e, mode);
        archive_entry_set_mtime(e, 1700000000, 0);
        size_t len = 0;
        switch (m[i].type) {
        case 'd': archive_entry_set_filetype(e, AE_IFDIR); break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, m[i].data);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, m[i].data);
            break;
        case 'p': archive_entry_set_filetype(e, AE_IFIFO); break;
        default:
            archive_entry_set_filetype(e, AE_IFREG);
            len = m[i].data ? strlen(m[i].data) : 0;
            archive_entry_set_size(e, (la_int64_t)len);
        }
        cr_assert_eq(archive_write_header(a, e), ARCHIVE_OK, "%s", archive_error_string(a));
        if (len)
            archive_write_data(a, m[i].data, len);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static int extract(const char *path, const char *fmt, const char *filter, const struct mem *m,
                   size_t n, const sbx_archive_limits *lim, sbx_error **err)
{
    int fd = build(fmt, filter, m, n);
    int r = sbx_session_extract(sbx_test_S, path, fd, NULL, lim, NULL, err);
    close(fd);
    return r;
}

static int exists(const char *rel)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "test -e '%s' || test -L '%s'", rel, rel);
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, cmd);
    int ok = r->exit_code == 0;
    sbx_exec_result_free(r);
    return ok;
}

Test(session_archive, extract_tar_in_every_compression_and_zip)
{
    const struct mem m[] = {{'d', "pkg/", NULL, 0}, {'f', "pkg/a.txt", "alpha", 0},
                            {'f', "b.txt", "beta", 0755}};
    const char *filters[] = {"", "gzip", "zstd", "xz"};
    for (size_t i = 0; i < 4; i++) {
        char path[64];
        snprintf(path, sizeof(path), "out%zu/bundle.tar", i);
        sbx_error *err = NULL;
        cr_assert_eq(extract(path, "tar", filters[i], m, 3, NULL, &err), 0, "%s: %s", filters[i],
                     sbx_error_message(err));
        snprintf(path, sizeof(path), "out%zu/pkg/a.txt", i);
        char *got = st_read_str(sbx_test_S, path, &err);
        cr_expect_str_eq(got, "alpha");
        free(got);
    }
    sbx_error *err = NULL;
    cr_assert_eq(extract("z/bundle.zip", "zip", "", m, 3, NULL, &err), 0, "%s",
                 sbx_error_message(err));
    char *got = st_read_str(sbx_test_S, "z/b.txt", &err);
    cr_expect_str_eq(got, "beta");
    free(got);
    cr_expect(exists("z/bundle.zip"), "the archive file stays in the workspace");
    /* Archived permissions are not applied by extract. */
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, "stat -c %a z/b.txt");
    cr_expect_str_eq((const char *)r->out, "644\n");
    sbx_exec_result_free(r);
}

Test(session_archive, extract_scheme_errors)
{
    sbx_error *err = NULL;
    int fd = st_memfd("x");
    cr_expect_eq(sbx_session_extract(sbx_test_S, "bundle.tar.gz", fd, NULL, NULL, NULL, &err),
                 SBX_EINVALID_COMPRESSION);
    cr_expect_str_eq(sbx_error_context_get(err, "scheme"), "gz");
    cr_expect_str_eq(sbx_error_message(err), "compression scheme must be one of 'zip' 'tar'");
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_session_extract(sbx_test_S, "bundle", fd, NULL, NULL, NULL, &err),
                 SBX_EINVALID_COMPRESSION);
    cr_expect_str_eq(sbx_error_message(err), "could not determine compression scheme");
    sbx_error_free(err);
    err = NULL;
    /* Scheme is checked before the path. */
    cr_expect_eq(sbx_session_extract(sbx_test_S, "../x.rar", fd, NULL, NULL, NULL, &err),
                 SBX_EINVALID_COMPRESSION);
    sbx_error_free(err);
    close(fd);
}

static void expect_refused(const struct mem *m, size_t n, const char *fmt, const char *reason,
                           const char *member)
{
    sbx_error *err = NULL;
    char path[64];
    snprintf(path, sizeof(path), "bad/x.%s", fmt);
    cr_expect_eq(extract(path, fmt, "", m, n, NULL, &err), SBX_EWORKSPACE_ARCHIVE_WRITE, "%s",
                 reason);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), reason);
    if (member)
        cr_expect_str_eq(sbx_error_context_get(err, "member"), member);
    sbx_error_free(err);
}

Test(session_archive, extract_refuses_unsafe_members_and_writes_nothing)
{
    struct mem abs[] = {{'f', "ok.txt", "x", 0}, {'f', "/etc/evil", "x", 0}};
    expect_refused(abs, 2, "tar", "absolute path", "/etc/evil");
    struct mem up[] = {{'f', "ok.txt", "x", 0}, {'f', "../evil.txt", "x", 0}};
    expect_refused(up, 2, "tar", "parent traversal", "../evil.txt");
    struct mem sl[] = {{'l', "link", "target", 0}};
    expect_refused(sl, 1, "tar", "symlink member not allowed", "link");
    struct mem hl[] = {{'f', "a", "x", 0}, {'h', "b", "a", 0}};
    expect_refused(hl, 2, "tar", "hardlink member not allowed", "b");
    struct mem fifo[] = {{'p', "fifo", NULL, 0}};
    expect_refused(fifo, 1, "tar", "unsupported member type", "fifo");
    struct mem nested[] = {{'f', "nested/hello.txt", "x", 0}, {'f', "nested", "y", 0}};
    expect_refused(nested, 2, "tar", "archive path descends through non-directory: nested",
                   "nested/hello.txt");
    struct mem zl[] = {{'l', "zlink", "/etc/passwd", 0}};
    expect_refused(zl, 1, "zip", "link member not allowed", "zlink");
    /* Validation came before any member was written. */
    cr_expect(!exists("bad/ok.txt"));
    cr_expect(!exists("bad/nested"));
    cr_expect(!exists("bad/a"));
}

Test(session_archive, extract_limits)
{
    struct mem two[] = {{'f', "one.txt", "1", 0}, {'f', "two.txt", "2", 0}};
    sbx_archive_limits one = {.max_members = 1};
    sbx_error *err = NULL;
    cr_expect_eq(extract("l/a.tar", "tar", "", two, 2, &one, &err), SBX_EWORKSPACE_ARCHIVE_WRITE);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "archive member count exceeds limit");
    cr_expect_str_eq(sbx_error_context_get(err, "member"), "two.txt");
    cr_expect_str_eq(sbx_error_context_get(err, "limit"), "1");
    cr_expect_str_eq(sbx_error_context_get(err, "actual"), "2");
    sbx_error_free(err);
    err = NULL;
    cr_expect(!exists("l/one.txt"));
    /* Session default applies without a per-call value; an all-zero per-call value disables. */
    cr_assert_eq(sbx_session_set_archive_limits(sbx_test_S, &one, &err), 0);
    cr_expect_eq(extract("l/b.tar", "tar", "", two, 2, NULL, &err), SBX_EWORKSPACE_ARCHIVE_WRITE);
    sbx_error_free(err);
    err = NULL;
    sbx_archive_limits none = {0};
    cr_expect_eq(extract("l/c.tar", "tar", "", two, 2, &none, &err), 0);
    sbx_archive_limits in = {.max_input_bytes = 100};
    cr_expect_eq(extract("l/d.tar", "tar", "", two, 2, &in, &err), SBX_EWORKSPACE_ARCHIVE_WRITE);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "archive input size exceeds limit");
    sbx_error_free(err);
    err = NULL;
    cr_expect(!exists("l/d.tar"), "nothing is written when the input is too large");
    sbx_archive_limits bytes = {.max_extracted_bytes = 1};
    cr_expect_eq(extract("l/e.tar", "tar", "", two, 2, &bytes, &err), SBX_EWORKSPACE_ARCHIVE_WRITE);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "archive extracted size exceeds limit");
    sbx_error_free(err);
}

Test(session_archive, extract_stops_at_a_symlinked_parent)
{
    sbx_exec_result_free(sbx_test_sh(sbx_test_S, "mkdir -p dest outside && ln -s ../outside dest/link"));
    struct mem m[] = {{'f', "link/hello.txt", "x", 0}};
    sbx_error *err = NULL;
    cr_expect_eq(extract("dest/x.tar", "tar", "", m, 1, NULL, &err), SBX_EWORKSPACE_ARCHIVE_WRITE);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "symlink in parent path: link", "%s",
                     sbx_error_message(err));
    cr_expect_str_eq(sbx_error_context_get(err, "member"), "link/hello.txt");
    sbx_error_free(err);
    cr_expect(!exists("outside/hello.txt"));
}

Test(session_archive, persist_hydrate_round_trip_keeps_everything)
{
    const char *setup =
        "mkdir -p src/empty 'with space' && printf 'print(1)' > src/main.py && "
        "chmod 755 src/main.py && printf ro > src/ro.txt && chmod 600 src/ro.txt && "
        "ln -s main.py src/link && ln -s ../src 'with space/up' && "
        "n=$(printf 'x%.0s' $(seq 1 150)) && echo long > \"src/$n\" && "
        "printf 'raw' > \"$(printf 'bin\\377name')\" && "
        "truncate -s 9G sparse && printf tail >> sparse && touch -d @1600000000 src/main.py";
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, setup);
    cr_assert_eq(r->exit_code, 0, "%s", r->err);
    sbx_exec_result_free(r);
    const char *listing = "find . -name '.sbx-trash-*' -prune -o -printf '%y %m %s %P %l\\n' | sort; "
                          "stat -c %Y src/main.py; tail -c 4 sparse; du -k sparse | cut -f1";
    r = sbx_test_sh(sbx_test_S, listing);
    char *before = strdup((const char *)r->out);
    sbx_exec_result_free(r);

    int snap = memfd_create("snap", MFD_CLOEXEC);
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_persist_workspace(sbx_test_S, snap, &err), 0, "%s",
                 sbx_error_message(err));
    off_t size = lseek(snap, 0, SEEK_END);
    cr_expect_lt(size, 1 << 20, "the 9 GiB sparse file must be stored sparse (%lld)",
                 (long long)size);
    /* Member names are relative: never the root's own name. */
    lseek(snap, 0, SEEK_SET);
    struct archive *a = archive_read_new();
    archive_read_support_format_all(a);
    cr_assert_eq(archive_read_open_fd(a, snap, 65536), ARCHIVE_OK);
    struct archive_entry *e;
    int saw_root = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        cr_expect(name[0] != '/' && strncmp(name, "workspace", 9) != 0, "%s", name);
        saw_root |= !strcmp(name, ".") || !strcmp(name, "./");
        cr_expect_null(archive_entry_hardlink(e));
    }
    archive_read_free(a);
    cr_expect(saw_root);

    r = sbx_test_sh(sbx_test_S, "rm -rf ./* && echo new > extra.txt");
    sbx_exec_result_free(r);
    lseek(snap, 0, SEEK_SET);
    cr_assert_eq(sbx_session_hydrate_workspace(sbx_test_S, snap, &err), 0, "%s",
                 sbx_error_message(err));
    close(snap);
    r = sbx_test_sh(sbx_test_S, listing);
    cr_expect_str_eq((const char *)r->out, before);
    sbx_exec_result_free(r);
    free(before);
    cr_expect(!exists("extra.txt"), "hydrate replaces the workspace's contents");
}

Test(session_archive, hydrate_refuses_unsafe_archives_and_keeps_the_workspace)
{
    cr_assert_eq(st_write_str(sbx_test_S, "keep.txt", "precious", NULL), 0);
    struct {
        struct mem m[2];
        size_t n;
        const char *reason;
        const char *member;
    } cases[] = {
        {{{'f', "a.txt", "x", 0}, {'l', "leak", "/etc/passwd", 0}},
         2,
         "absolute symlink target not allowed: /etc/passwd",
         "leak"},
        {{{'d', "nested/", NULL, 0}, {'l', "nested/leak", "../../etc/passwd", 0}},
         2,
         "symlink target escapes archive root: ../../etc/passwd",
         "nested/leak"},
        {{{'f', "a.txt", "x", 0}, {'f', "/etc/passwd", "x", 0}}, 2, "absolute path", "/etc/passwd"},
        {{{'f', "a.txt", "x", 0}, {'f', "../escape.txt", "x", 0}}, 2, "parent traversal", NULL},
        {{{'l', ".", "/", 0}}, 1, "archive root symlink", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = build("tar", "", cases[i].m, cases[i].n);
        sbx_error *err = NULL;
        cr_expect_eq(sbx_session_hydrate_workspace(sbx_test_S, fd, &err),
                     SBX_EWORKSPACE_ARCHIVE_WRITE, "%s", cases[i].reason);
        cr_expect_str_eq(sbx_error_context_get(err, "reason"), cases[i].reason);
        cr_expect_str_eq(sbx_error_context_get(err, "path"), "/workspace");
        if (cases[i].member)
            cr_expect_str_eq(sbx_error_context_get(err, "member"), cases[i].member);
        sbx_error_free(err);
        close(fd);
    }
    char *got = st_read_str(sbx_test_S, "keep.txt", NULL);
    cr_expect_str_eq(got, "precious");
    free(got);
    cr_expect(!exists("a.txt"));
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, "ls -A");
    cr_expect_str_eq((const char *)r->out, "keep.txt\n", "no staging directory left behind");
    sbx_exec_result_free(r);
    /* Garbage is refused as malformed. */
    int fd = st_memfd("this is not a tar archive at all, not even close................");
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_hydrate_workspace(sbx_test_S, fd, &err), SBX_EWORKSPACE_ARCHIVE_WRITE);
    sbx_error_free(err);
    close(fd);
}

Test(session_archive, hydrate_sanitises_modes)
{
    const unsigned in[] = {0755, 0644, 0600, 0700, 0444, MODE_ZERO, 0777, 0655, 04755, 02755, 01755};
    const char *want = "755 644 600 700 644 600 755 644 755 755 755 ";
    struct mem m[11];
    char names[11][8];
    for (int i = 0; i < 11; i++) {
        snprintf(names[i], sizeof(names[i]), "f%02d", i);
        m[i] = (struct mem){'f', names[i], "x", in[i]};
    }
    int fd = build("tar", "", m, 11);
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_hydrate_workspace(sbx_test_S, fd, &err), 0, "%s",
                 sbx_error_message(err));
    close(fd);
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, "for f in f*; do printf '%s ' $(stat -c %a $f); done");
    cr_expect_str_eq((const char *)r->out, want);
    sbx_exec_result_free(r);
}

Test(session_archive, skip_paths_are_left_out_and_kept)
{
    sbx_error *err = NULL;
    char *norm = NULL;
    cr_assert_eq(sbx_session_register_persist_skip_path(sbx_test_S, "logs/events.jsonl", &norm,
                                                        &err),
                 0);
    cr_expect_str_eq(norm, "logs/events.jsonl");
    free(norm);
    cr_expect_eq(sbx_session_register_persist_skip_path(sbx_test_S, ".", NULL, &err), SBX_EINVAL);
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_session_register_persist_skip_path(sbx_test_S, "../x", NULL, &err),
                 SBX_EINVALID_PATH);
    sbx_error_free(err);
    err = NULL;
    sbx_exec_result_free(sbx_test_sh(sbx_test_S, "mkdir logs && echo a > logs/events.jsonl && "
                                                 "echo k > logs/keep.txt"));
    int snap = memfd_create("snap", MFD_CLOEXEC);
    cr_assert_eq(sbx_session_persist_workspace(sbx_test_S, snap, &err), 0);
    sbx_exec_result_free(sbx_test_sh(sbx_test_S, "echo later > logs/events.jsonl"));
    lseek(snap, 0, SEEK_SET);
    cr_assert_eq(sbx_session_hydrate_workspace(sbx_test_S, snap, &err), 0, "%s",
                 sbx_error_message(err));
    close(snap);
    char *got = st_read_str(sbx_test_S, "logs/events.jsonl", NULL);
    cr_expect_str_eq(got, "later\n", "a skip path survives hydrate untouched");
    free(got);
    got = st_read_str(sbx_test_S, "logs/keep.txt", NULL);
    cr_expect_str_eq(got, "k\n");
    free(got);
}

Test(session_archive, compression_bomb_is_refused_by_the_extracted_size_limit)
{
    /* 256 MiB of zeros compress to a few hundred KiB: the declared size trips the limit
     * before a byte is unpacked. */
    int fd = memfd_create("bomb", MFD_CLOEXEC);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    cr_assert_eq(archive_write_open_fd(a, fd), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "zeros.bin");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 256 << 20);
    cr_assert_eq(archive_write_header(a, e), ARCHIVE_OK);
    static const char zero[1 << 20];
    for (int i = 0; i < 256; i++)
        archive_write_data(a, zero, sizeof(zero));
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    cr_expect_lt(lseek(fd, 0, SEEK_END), 4 << 20, "the bomb is small");
    lseek(fd, 0, SEEK_SET);
    sbx_archive_limits lim = SBX_ARCHIVE_LIMITS_DEFAULT;
    lim.max_extracted_bytes = 16 << 20;
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_extract(sbx_test_S, "bomb.tar", fd, NULL, &lim, NULL, &err),
                 SBX_EWORKSPACE_ARCHIVE_WRITE);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "archive extracted size exceeds limit");
    cr_expect_str_eq(sbx_error_context_get(err, "member"), "zeros.bin");
    sbx_error_free(err);
    close(fd);
    cr_expect(!exists("zeros.bin"));
}

/* persist reads with CAP_DAC_READ_SEARCH inside the sandbox: it must store symlinks as
 * symlinks and never read through them, or a planted link would copy what the sandbox user
 * cannot read (PID 1's environment, say) into the caller's archive. */
Test(session_archive, persist_never_follows_planted_symlinks)
{
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, "ln -s /proc/1/environ env && ln -s / root && "
                                                 "ln -s /etc etcdir && cat env 2>/dev/null; "
                                                 "echo rc=$?");
    cr_expect_str_eq((const char *)r->out, "rc=1\n", "the sandbox user cannot read it itself");
    sbx_exec_result_free(r);
    int snap = memfd_create("snap", MFD_CLOEXEC);
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_persist_workspace(sbx_test_S, snap, &err), 0, "%s",
                 sbx_error_message(err));
    lseek(snap, 0, SEEK_SET);
    struct archive *a = archive_read_new();
    archive_read_support_format_all(a);
    cr_assert_eq(archive_read_open_fd(a, snap, 65536), ARCHIVE_OK);
    struct archive_entry *e;
    int links = 0;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (!strcmp(name, "./env") || !strcmp(name, "./root") || !strcmp(name, "./etcdir")) {
            cr_expect_eq(archive_entry_filetype(e), AE_IFLNK, "%s must stay a symlink", name);
            cr_expect_eq(archive_entry_size(e), 0, "%s must carry no content", name);
            links++;
        }
        cr_expect(strncmp(name, "./root/", 7) != 0 && strncmp(name, "./etcdir/", 9) != 0,
                  "the walk went through a symlink: %s", name);
    }
    archive_read_free(a);
    close(snap);
    cr_expect_eq(links, 3);
}
