/* Local snapshot store: atomic persist, digest-checked restore (spec SESSION.md §8.1,
 * TESTS.md J95-J96). Works in a private directory under /tmp. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot_store.h"
#include "util.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/sbx-snap-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    cr_expect_eq(sbx__rm_rf(dir), 0);
}

TestSuite(core_snapshot_store, .init = setup, .fini = teardown);

static char *path_in(const char *name)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, name) >= 0);
    return p;
}

static void persist(const char *id, const char *data, size_t len)
{
    struct sbx_snap_writer *w = NULL;
    int fd = -1;
    sbx_error *err = NULL;
    cr_assert_eq(sbx__snap_local_begin(dir, id, &w, &fd, &err), 0, "%s",
                 sbx_error_message(err));
    cr_assert_geq(fd, 0);
    cr_assert_eq(sbx__write_full(fd, data, len), 0);
    cr_assert_eq(sbx__snap_local_commit(w, 1, &err), 0, "%s", sbx_error_message(err));
}

/* Opens <id> and checks the bytes handed out are `data`. */
static void expect_restores(const char *id, const char *data)
{
    int fd = -1;
    sbx_error *err = NULL;
    cr_assert_eq(sbx__snap_local_open(dir, id, &fd, &err), 0, "%s", sbx_error_message(err));
    char buf[256];
    size_t len = strlen(data);
    cr_assert_lt(len, sizeof(buf));
    cr_assert_eq(sbx__read_full(fd, buf, len), 0);
    cr_expect_eq(memcmp(buf, data, len), 0);
    cr_expect_eq(read(fd, buf, 1), 0, "nothing after the snapshot's bytes");
    close(fd);
}

/* Opening must fail with SBX_ESNAPSHOT_RESTORE and the given reason. */
static void expect_refused(const char *id, const char *reason, const char *msg)
{
    int fd = 1234;
    sbx_error *err = NULL;
    cr_assert_eq(sbx__snap_local_open(dir, id, &fd, &err), SBX_ESNAPSHOT_RESTORE);
    cr_expect_eq(fd, -1);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), reason);
    cr_expect_str_eq(sbx_error_context_get(err, "snapshot_id"), id);
    cr_expect_str_eq(sbx_error_op(err), "snapshot_restore");
    cr_expect(strstr(sbx_error_message(err), msg) != NULL, "'%s' lacks '%s'",
              sbx_error_message(err), msg);
    sbx_error_free(err);
}

/* The names in the store directory, sorted, joined with ",". */
static char *listing(void)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    cr_assert_geq(n, 0);
    char *r = calloc(1, 1);
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
            char *next = NULL;
            cr_assert(asprintf(&next, "%s%s%s", r, *r ? "," : "", names[i]->d_name) >= 0);
            free(r);
            r = next;
        }
        free(names[i]);
    }
    free(names);
    return r;
}

static void expect_listing(const char *want)
{
    char *l = listing();
    cr_expect_str_eq(l, want);
    free(l);
}

static void write_file(const char *name, const char *data, size_t len)
{
    char *p = path_in(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(sbx__write_full(fd, data, len), 0);
    close(fd);
    free(p);
}

Test(core_snapshot_store, sha256_known_values)
{
    char hex[65];
    sbx__sha256_buf("abc", 3, hex);
    cr_expect_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sbx__sha256_buf("", 0, hex);
    cr_expect_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    write_file("f", "xxabc", 5);
    char *p = path_in("f");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(lseek(fd, 2, SEEK_SET), 2);
    cr_assert_eq(sbx__sha256_fd(fd, hex), 0);
    cr_expect_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                     "hashes from the current offset");
    close(fd);
    free(p);
}

Test(core_snapshot_store, persist_and_open_round_trip)
{
    cr_expect(!sbx__snap_local_restorable(dir, "s1"));
    persist("s1", "tar bytes", 9);
    cr_expect(sbx__snap_local_restorable(dir, "s1"));
    expect_listing("s1.tar,s1.tar.sha256");
    expect_restores("s1", "tar bytes");

    /* The digest is in sha256sum's format, so `sha256sum -c` can check a store by hand. */
    char *dp = path_in("s1.tar.sha256");
    FILE *f = fopen(dp, "re");
    cr_assert_not_null(f);
    char line[160] = {0};
    cr_assert_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    free(dp);
    char hex[65], want[160];
    sbx__sha256_buf("tar bytes", 9, hex);
    snprintf(want, sizeof(want), "%s  s1.tar\n", hex);
    cr_expect_str_eq(line, want);

    /* A second persist replaces the first. */
    persist("s1", "newer", 5);
    expect_restores("s1", "newer");
    expect_listing("s1.tar,s1.tar.sha256");

    struct stat st;
    char *tp = path_in("s1.tar");
    cr_assert_eq(stat(tp, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "a workspace archive is private");
    free(tp);
}

Test(core_snapshot_store, creates_missing_parents_private)
{
    char *base = path_in("a/b");
    struct sbx_snap_writer *w = NULL;
    int fd = -1;
    cr_assert_eq(sbx__snap_local_begin(base, "s", &w, &fd, NULL), 0);
    cr_assert_eq(sbx__write_full(fd, "x", 1), 0);
    cr_assert_eq(sbx__snap_local_commit(w, 1, NULL), 0);
    struct stat st;
    cr_assert_eq(stat(base, &st), 0);
    cr_expect(S_ISDIR(st.st_mode));
    cr_expect_eq(st.st_mode & 0777, 0700);
    cr_expect(sbx__snap_local_restorable(base, "s"));
    free(base);
}

Test(core_snapshot_store, ids_must_be_one_segment)
{
    const char *bad[] = {"../escape", "..\\escape", "nested/escape", "../", "..//", "..\\",
                         "nested/",   "nested//",   "nested\\",      "",    ".",    ".."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *id = bad[i];
        sbx_error *err = NULL;
        cr_expect_eq(sbx__snap_id_check(id, &err), SBX_EINVAL, "'%s'", id);
        cr_expect_str_eq(sbx_error_message(err), "LocalSnapshot id must be a single path segment");
        sbx_error_free(err);
        err = NULL;

        struct sbx_snap_writer *w = NULL;
        int fd = -1;
        cr_expect_eq(sbx__snap_local_begin(dir, id, &w, &fd, &err), SBX_EINVAL, "'%s'", id);
        cr_expect_null(w);
        cr_expect_eq(fd, -1);
        cr_expect(strstr(sbx_error_message(err), "single path segment") != NULL);
        sbx_error_free(err);
        err = NULL;

        cr_expect_eq(sbx__snap_local_open(dir, id, &fd, &err), SBX_EINVAL, "'%s'", id);
        cr_expect_eq(fd, -1);
        sbx_error_free(err);
        cr_expect(!sbx__snap_local_restorable(dir, id));
    }
    cr_expect_eq(sbx__snap_id_check(NULL, NULL), SBX_EINVAL);
    /* Nothing was created, here or next to it. */
    expect_listing("");
    char *parent = NULL;
    cr_assert(asprintf(&parent, "%s/../escape.tar", dir) >= 0);
    cr_expect_neq(access(parent, F_OK), 0);
    free(parent);
    cr_expect_eq(sbx__snap_id_check("ok.id-1", NULL), 0);
    cr_expect_eq(sbx__snap_id_check("..ok", NULL), 0);
}

Test(core_snapshot_store, corrupted_byte_is_refused)
{
    persist("s", "0123456789", 10);
    char *p = path_in("s.tar");
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "X", 1, 4), 1);
    close(fd);
    free(p);
    expect_refused("s", "digest_mismatch", "corrupt or truncated");
}

Test(core_snapshot_store, truncated_file_is_refused)
{
    persist("s", "0123456789", 10);
    char *p = path_in("s.tar");
    cr_assert_eq(truncate(p, 6), 0);
    free(p);
    expect_refused("s", "digest_mismatch", "corrupt or truncated");
}

Test(core_snapshot_store, missing_or_malformed_digest_is_refused)
{
    persist("s", "0123456789", 10);
    char *p = path_in("s.tar.sha256");
    cr_assert_eq(unlink(p), 0);
    free(p);
    expect_refused("s", "digest_missing", "digest");
    write_file("s.tar.sha256", "not a digest\n", 13);
    expect_refused("s", "digest_invalid", "corrupt or truncated");
    /* A valid digest of the right bytes, but recorded for another file name. */
    char hex[65], line[128];
    sbx__sha256_buf("0123456789", 10, hex);
    int n = snprintf(line, sizeof(line), "%s  other.tar\n", hex);
    write_file("s.tar.sha256", line, (size_t)n);
    expect_refused("s", "digest_invalid", "digest");
    n = snprintf(line, sizeof(line), "%s  s.tar\n", hex);
    write_file("s.tar.sha256", line, (size_t)n);
    expect_restores("s", "0123456789");
}

Test(core_snapshot_store, discarded_persist_keeps_previous_snapshot)
{
    persist("atomic", "old", 3);
    struct sbx_snap_writer *w = NULL;
    int fd = -1;
    cr_assert_eq(sbx__snap_local_begin(dir, "atomic", &w, &fd, NULL), 0);
    cr_assert_eq(sbx__write_full(fd, "half of the ne", 14), 0);
    /* Mid-copy, the temporary is there beside the old snapshot... */
    char *l = listing();
    cr_expect(strncmp(l, ".atomic.tar.", 12) == 0, "%s", l);
    cr_expect(strstr(l, ".tmp,atomic.tar,atomic.tar.sha256") != NULL, "%s", l);
    free(l);
    /* ...and a failed copy removes it and leaves the old snapshot usable. */
    cr_assert_eq(sbx__snap_local_commit(w, 0, NULL), 0);
    expect_listing("atomic.tar,atomic.tar.sha256");
    expect_restores("atomic", "old");
}

Test(core_snapshot_store, persist_error_names_the_snapshot)
{
    /* The base is a regular file: the directory cannot be made. */
    write_file("file", "", 0);
    char *base = path_in("file/sub");
    struct sbx_snap_writer *w = NULL;
    int fd = -1;
    sbx_error *err = NULL;
    cr_assert_eq(sbx__snap_local_begin(base, "s", &w, &fd, &err), SBX_ESNAPSHOT_PERSIST);
    cr_expect_null(w);
    cr_expect_eq(fd, -1);
    cr_expect_str_eq(sbx_error_op(err), "snapshot_persist");
    cr_expect_str_eq(sbx_error_context_get(err, "snapshot_id"), "s");
    char *want = NULL;
    cr_assert(asprintf(&want, "%s/s.tar", base) >= 0);
    cr_expect_str_eq(sbx_error_context_get(err, "path"), want);
    cr_expect_eq(sbx_error_errno(err), ENOTDIR);
    free(want);
    sbx_error_free(err);
    free(base);
    expect_listing("file");
}

Test(core_snapshot_store, restorable_needs_a_regular_file)
{
    cr_expect(!sbx__snap_local_restorable(dir, "missing"));
    expect_refused("missing", "not_found", "not found");

    char *d = path_in("isdir.tar");
    cr_assert_eq(mkdir(d, 0700), 0);
    free(d);
    cr_expect(!sbx__snap_local_restorable(dir, "isdir"));
    expect_refused("isdir", "not_regular_file", "not a regular file");

    /* A symlink planted in the store is not followed, even to a valid-looking file. */
    persist("real", "data", 4);
    char *target = path_in("real.tar");
    char *link = path_in("link.tar");
    cr_assert_eq(symlink(target, link), 0);
    free(target);
    free(link);
    cr_expect(!sbx__snap_local_restorable(dir, "link"));
    expect_refused("link", "not_regular_file", "not a regular file");

    cr_expect(sbx__snap_local_restorable(dir, "real"));
}
