/* Symlink races against the file API. Code in the sandbox flips a workspace symlink between a
 * directory of its own and a directory outside the workspace (the sandbox's "/", the host's
 * /usr) as fast as it can, while the test reads, writes, lists, makes directories, extracts
 * and removes through that symlink in a loop. Every call must either go through the inside
 * directory or be refused as an escape (EXDEV from openat2's RESOLVE_BENEATH): no file outside
 * the workspace may be read, written, created or removed, whatever the timing. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "session_util.h"

TestSuite(session_races, .init = sbx_test_setup, .fini = sbx_test_teardown, .timeout = 180);

#define RACE_SECONDS 3.0
#define RACE_MAX_ITER 2000
#define MARKER "race-marker-5f3a9c" /* a name only the inside directory has */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the flipper: a command in the sandbox swapping `link` between two targets ---- */

struct flipper {
    sbx_session *s;
    char script[1024];
    pthread_t th;
    int rc;
    sbx_exec_result *res;
    sbx_error *err;
};

static void *flip_main(void *arg)
{
    struct flipper *f = arg;
    const char *argv[] = {f->script, NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    /* The loop stops at the "stop" file or after 60 s; the timeout is the backstop that keeps
     * a broken loop from hanging the suite. */
    o.timeout_s = 90;
    f->rc = sbx_session_exec(f->s, &o, &f->res, &f->err);
    return NULL;
}

/* symlink() + rename() replaces the link atomically, so `link` always exists and always
 * points at one of the two targets. perl (essential on Debian) does it without forking,
 * thousands of round trips a second; the shell loop is the slower fallback. */
static void flipper_start(struct flipper *f, sbx_session *s, const char *link,
                          const char *outside)
{
    f->s = s;
    snprintf(f->script, sizeof(f->script),
             "if command -v perl >/dev/null 2>&1; then exec perl -e '"
             "$end = time + 60; $n = 0;"
             "while (!-e \"stop\" && time < $end) {"
             "  for $t (\"%2$s\", \"real\") {"
             "    symlink($t, \"%1$s.tmp\") or die \"symlink: $!\";"
             "    rename(\"%1$s.tmp\", \"%1$s\") or die \"rename: $!\";"
             "  }"
             "  $n++;"
             "}"
             "print \"$n\\n\";'; fi; "
             "n=0; end=$(($(date +%%s) + 60)); "
             "while [ ! -e stop ] && [ $(date +%%s) -lt $end ]; do "
             "ln -sfn '%2$s' %1$s.tmp && mv -T %1$s.tmp %1$s && "
             "ln -sfn real %1$s.tmp && mv -T %1$s.tmp %1$s || exit 1; n=$((n+1)); done; "
             "echo $n",
             link, outside);
    cr_assert_eq(pthread_create(&f->th, NULL, flip_main, f), 0);
}

/* Stops the loop and waits for it; returns the round trips (outside and back) it made. */
static long flipper_stop(struct flipper *f)
{
    sbx_error *err = NULL;
    cr_expect_eq(st_write_str(f->s, "stop", "", &err), 0, "%s", sbx_error_message(err));
    sbx_error_free(err);
    pthread_join(f->th, NULL);
    long flips = -1;
    cr_expect_eq(f->rc, 0, "flipper exec: %s", sbx_error_message(f->err));
    if (f->res) {
        cr_expect_eq(f->res->exit_code, 0, "flipper failed: %s", f->res->err);
        flips = strtol((const char *)f->res->out, NULL, 10);
    }
    sbx_exec_result_free(f->res);
    sbx_error_free(f->err);
    return flips;
}

/* ---- outcomes ---- */

struct tally {
    const char *op;
    unsigned ok, refused, wrong;
    char first_wrong[512];
};

/* Counts a call that reached outside; the first one's description is kept for the report. */
__attribute__((format(printf, 2, 3))) static void bad(struct tally *t, const char *fmt, ...)
{
    if (t->wrong++)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->first_wrong, sizeof(t->first_wrong), fmt, ap);
    va_end(ap);
}

/* Counts one call's outcome. The only acceptable refusal is the kernel's: EXDEV, reported as
 * SBX_EINVALID_PATH (or, for the unpacking half of extract, SBX_EWORKSPACE_ARCHIVE_WRITE).
 * Any other error means the lookup reached something: EROFS or EACCES from the sandbox's
 * read-only root or the host's /usr, ENOENT for a name that exists only outside. Returns 1 on
 * success, so the caller can check what it got. */
static int tally(struct tally *t, int r, sbx_error *err, int archive_write_ok)
{
    int ok = 0;
    if (r == 0) {
        t->ok++;
        ok = 1;
    } else if (sbx_error_errno(err) == EXDEV &&
               (r == SBX_EINVALID_PATH ||
                (archive_write_ok && r == SBX_EWORKSPACE_ARCHIVE_WRITE))) {
        t->refused++;
    } else {
        bad(t, "unexpected error (%s, errno %d): %s", sbx_code_name(r), sbx_error_errno(err),
            sbx_error_message(err));
    }
    sbx_error_free(err);
    return ok;
}

static void report(struct tally *v, size_t n, unsigned *ok, unsigned *refused)
{
    *ok = *refused = 0;
    for (size_t i = 0; i < n; i++) {
        cr_log_info("%-8s ok %u, refused %u, wrong %u", v[i].op, v[i].ok, v[i].refused,
                    v[i].wrong);
        cr_expect_eq(v[i].wrong, 0, "%s: %u calls reached outside the workspace; first: %s",
                     v[i].op, v[i].wrong, v[i].first_wrong);
        if (!v[i].ok || !v[i].refused)
            cr_log_warn("%s: the race was one-sided (ok %u, refused %u)", v[i].op, v[i].ok,
                        v[i].refused);
        *ok += v[i].ok;
        *refused += v[i].refused;
    }
}

/* A one-member tar in a memfd. */
static int small_tar(const char *name, const char *data)
{
    int fd = memfd_create("race-tar", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    cr_assert_eq(archive_write_open_fd(a, fd), ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)strlen(data));
    cr_assert_eq(archive_write_header(a, e), ARCHIVE_OK);
    archive_write_data(a, data, strlen(data));
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    return fd;
}

static int has_entry(const sbx_file_entry *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].name, name))
            return 1;
    return 0;
}

static void sh_ok(const char *script)
{
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, script);
    cr_assert_eq(r->exit_code, 0, "%s: %s", script, r->err);
    sbx_exec_result_free(r);
}

/* Host-side view of a directory: its entry count, to show nothing was added or removed. */
static int host_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n++;
    closedir(d);
    return n;
}

Test(session_races, flipping_symlink_never_reaches_outside)
{
    /* A host file with known content. The sandbox has its own /tmp, so this path is reachable
     * from inside only by a bug that leaves the sandbox altogether; the write below aims at
     * its name anyway, and an escape to the sandbox's own /tmp is checked from inside. */
    char canary[] = "/tmp/sbx-race-canary-XXXXXX";
    int cfd = mkstemp(canary);
    cr_assert_geq(cfd, 0);
    static const char canary_text[] = "canary: must never change\n";
    cr_assert_eq(write(cfd, canary_text, sizeof(canary_text) - 1),
                 (ssize_t)sizeof(canary_text) - 1);
    close(cfd);
    const char *cname = strrchr(canary, '/') + 1;
    struct stat st;
    int pwned_before = stat("/pwned", &st) == 0;

    sh_ok("mkdir -p real/etc real/tmp && printf decoy > real/etc/hostname && "
          "touch real/" MARKER " && ln -s real x");
    char wpath[128], sbx_check[1024];
    snprintf(wpath, sizeof(wpath), "x/tmp/%s", cname);
    int tar = small_tar("race-extracted.txt", "extracted");

    struct flipper fl = {0};
    flipper_start(&fl, sbx_test_S, "x", "/");
    struct tally t[] = {{.op = "read"},  {.op = "write"}, {.op = "create"},
                        {.op = "ls"},    {.op = "mkdir"}, {.op = "extract"}};
    double t0 = now_s();
    unsigned iter = 0;
    while (iter < RACE_MAX_ITER && now_s() - t0 < RACE_SECONDS) {
        iter++;
        sbx_error *err = NULL;
        int mfd = memfd_create("race-read", MFD_CLOEXEC);
        int r = sbx_session_read(sbx_test_S, "x/etc/hostname", NULL, mfd, NULL, &err);
        if (tally(&t[0], r, err, 0)) {
            /* The sandbox's own /etc/hostname says "sbx": anything but the decoy is a leak. */
            char *got = st_slurp(mfd, NULL);
            if (!got || strcmp(got, "decoy") != 0)
                bad(&t[0], "read returned '%s'", got ? got : "(nothing)");
            free(got);
        }
        close(mfd);
        err = NULL;

        char text[32];
        snprintf(text, sizeof(text), "race-%u", iter);
        r = st_write_str(sbx_test_S, wpath, text, &err);
        tally(&t[1], r, err, 0);
        err = NULL;
        r = st_write_str(sbx_test_S, "x/pwned", text, &err);
        tally(&t[2], r, err, 0);
        err = NULL;

        sbx_file_entry *v = NULL;
        size_t n = 0;
        r = sbx_session_ls(sbx_test_S, "x", NULL, &v, &n, &err);
        if (tally(&t[3], r, err, 0) && !has_entry(v, n, MARKER))
            bad(&t[3], "ls listed a directory without the marker (%s, ...)",
                n ? v[0].name : "empty");
        sbx_file_entries_free(v, n);
        err = NULL;

        r = sbx_session_mkdir(sbx_test_S, "x/tmp/race-dir", 1, NULL, &err);
        tally(&t[4], r, err, 0);
        err = NULL;

        lseek(tar, 0, SEEK_SET);
        r = sbx_session_extract(sbx_test_S, "x/tmp/race.tar", tar, NULL, NULL, NULL, &err);
        tally(&t[5], r, err, 1);
    }
    double secs = now_s() - t0;
    long flips = flipper_stop(&fl);
    close(tar);
    cr_log_info("%u iterations in %.2f s, %ld round trips of the link", iter, secs, flips);

    unsigned ok, refused;
    report(t, sizeof(t) / sizeof(t[0]), &ok, &refused);
    cr_expect_gt(ok, 0, "no call went through the inside directory: the race was not exercised");
    cr_expect_gt(refused, 0, "no call was refused: the race was not exercised");

    /* Nothing appeared outside the workspace inside the sandbox (its /tmp is writable, its
     * root read-only), and what succeeded landed in `real`. */
    snprintf(sbx_check, sizeof(sbx_check),
             "for f in /tmp/%s /tmp/race.tar /tmp/race-extracted.txt /tmp/race-dir /pwned; do "
             "  if [ -e $f ] || [ -L $f ]; then echo \"outside: $f\"; fi; "
             "done; "
             "[ %u -eq 0 ] || grep -q '^race-' real/tmp/%s || echo 'write: not in real'; "
             "[ %u -eq 0 ] || [ -f real/pwned ] || echo 'create: not in real'; "
             "[ %u -eq 0 ] || [ -d real/tmp/race-dir ] || echo 'mkdir: not in real'; "
             "[ %u -eq 0 ] || grep -qx extracted real/tmp/race-extracted.txt || "
             "echo 'extract: not in real'",
             cname, t[1].ok, cname, t[2].ok, t[4].ok, t[5].ok);
    sbx_exec_result *res = sbx_test_sh(sbx_test_S, sbx_check);
    cr_expect_eq(res->out_len, 0, "%s", res->out);
    sbx_exec_result_free(res);

    /* The host's canary is untouched and no /pwned appeared on the host. */
    int fd = open(canary, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    char *got = st_slurp(fd, NULL);
    close(fd);
    cr_expect_str_eq(got, canary_text, "the host canary changed");
    free(got);
    unlink(canary);
    if (!pwned_before)
        cr_expect_neq(stat("/pwned", &st), 0, "/pwned appeared on the host");
}

Test(session_races, rm_through_flipping_parent_never_touches_outside)
{
    /* u flips between `real` and /usr, which exists both inside (a read-only bind) and on the
     * host. A remove that resolved through /usr would fail with EROFS or EACCES rather than
     * remove anything, so the read-only bind alone cannot show an escape: the error must be
     * the kernel's refusal of the lookup (EXDEV), every time. */
    int usr_share = host_entries("/usr/share");
    cr_assert_gt(usr_share, 2, "the host has no /usr/share");
    struct stat doc_before, st;
    cr_assert_eq(stat("/usr/share/doc", &doc_before), 0, "the host has no /usr/share/doc");
    sh_ok("mkdir -p real && ln -s real u");

    struct flipper fl = {0};
    flipper_start(&fl, sbx_test_S, "u", "/usr");
    struct tally t[] = {{.op = "rm"}, {.op = "rm -r"}, {.op = "mkdir"}};
    unsigned setup_failed = 0;
    double t0 = now_s();
    unsigned iter = 0;
    while (iter < RACE_MAX_ITER && now_s() - t0 < RACE_SECONDS) {
        iter++;
        sbx_error *err = NULL;
        /* Recreated through the real name each time, so that a remove through u has
         * something to remove when u points inside. */
        if (st_write_str(sbx_test_S, "real/share/doc/f", "x", &err) < 0)
            setup_failed++;
        sbx_error_free(err);
        err = NULL;
        int r = sbx_session_rm(sbx_test_S, "u/share/doc/f", 0, NULL, &err);
        tally(&t[0], r, err, 0);
        err = NULL;
        r = sbx_session_mkdir(sbx_test_S, "u/share/race-dir", 1, NULL, &err);
        tally(&t[2], r, err, 0);
        err = NULL;
        r = sbx_session_rm(sbx_test_S, "u/share", 1, NULL, &err);
        tally(&t[1], r, err, 0);
    }
    double secs = now_s() - t0;
    long flips = flipper_stop(&fl);
    cr_log_info("%u iterations in %.2f s, %ld round trips of the link", iter, secs, flips);
    cr_expect_eq(setup_failed, 0, "writing real/share/doc/f failed %u times", setup_failed);

    unsigned ok, refused;
    report(t, sizeof(t) / sizeof(t[0]), &ok, &refused);
    cr_expect_gt(ok, 0, "no call went through the inside directory: the race was not exercised");
    cr_expect_gt(refused, 0, "no call was refused: the race was not exercised");

    /* The host's /usr/share lost and gained nothing. */
    cr_expect_eq(host_entries("/usr/share"), usr_share, "/usr/share changed on the host");
    cr_expect_eq(stat("/usr/share/doc", &st), 0, "/usr/share/doc is gone from the host");
    cr_expect_eq(st.st_ino, doc_before.st_ino);
    cr_expect_neq(stat("/usr/share/race-dir", &st), 0, "a directory appeared in /usr/share");
}

/* THREATS T71, racing: persisting the workspace (a walk that reads with CAP_DAC_READ_SEARCH
 * inside) while code in the sandbox flips a workspace symlink between a directory of its own
 * and the sandbox's "/". Every snapshot must hold the link as a link: never a directory of
 * that name, never anything beneath it. */
Test(session_races, persist_while_a_symlink_flips_never_captures_outside)
{
    sh_ok("mkdir -p real && echo " MARKER " > real/" MARKER);
    struct flipper f = {0};
    flipper_start(&f, sbx_test_S, "d", "/");
    unsigned snaps = 0, as_link = 0, wrong = 0;
    char first_wrong[512] = "";
    double end = now_s() + RACE_SECONDS;
    while (now_s() < end && snaps < RACE_MAX_ITER) {
        int fd = memfd_create("race-snap", MFD_CLOEXEC);
        cr_assert_geq(fd, 0);
        sbx_error *err = NULL;
        int r = sbx_session_persist_workspace(sbx_test_S, fd, &err);
        cr_assert_eq(r, 0, "persist: %s", sbx_error_message(err));
        lseek(fd, 0, SEEK_SET);
        struct archive *a = archive_read_new();
        archive_read_support_format_all(a);
        cr_assert_eq(archive_read_open_fd(a, fd, 65536), ARCHIVE_OK);
        struct archive_entry *e;
        while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
            const char *name = archive_entry_pathname(e);
            int is_d = !strcmp(name, "./d") || !strcmp(name, "d");
            int under_d = !strncmp(name, "./d/", 4) || !strncmp(name, "d/", 2);
            if (is_d && archive_entry_filetype(e) == AE_IFLNK)
                as_link++;
            else if ((is_d || under_d) && !wrong++)
                snprintf(first_wrong, sizeof(first_wrong), "%s (type %o)", name,
                         (unsigned)archive_entry_filetype(e));
        }
        archive_read_free(a);
        close(fd);
        snaps++;
    }
    long flips = flipper_stop(&f);
    cr_log_info("persist: %u snapshots, d a link in %u, %ld flips", snaps, as_link, flips);
    cr_expect_eq(wrong, 0, "%u snapshots went through the symlink; first: %s", wrong,
                 first_wrong);
    cr_expect_gt(snaps, 2, "too few snapshots to race");
    cr_expect_gt(flips, 0, "the symlink never flipped");
    sh_ok("rm -rf real d d.tmp stop");
}
