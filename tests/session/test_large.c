/* Large and resource-bound file operations against real sessions: a 2 GiB file through write
 * and read with the test process's memory staying small, and a hydrate that runs out of disk
 * half-way, which must leave the previous workspace exactly as it was. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "session_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define GIB (1ull << 30)
#define MIB (1ull << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- 2 GiB through write and read ---- */

TestSuite(session_large, .init = sbx_test_setup, .fini = sbx_test_teardown, .timeout = 600);

#define BIG_BYTES (2 * GIB)
#define BLOCK     (64u << 10)
#define WORDS     (BLOCK / sizeof(uint64_t))

/* The stream is the sequence of 64-bit words 0, 1, 2, ...: every offset has its own value, so
 * a lost, repeated, reordered or zeroed block shows. */
static void fill_block(uint64_t *w, uint64_t first)
{
    for (size_t i = 0; i < WORDS; i++)
        w[i] = first + i;
}

struct producer {
    int fd;
    uint64_t sent;
    int err;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    static uint64_t w[WORDS];
    while (p->sent < BIG_BYTES) {
        fill_block(w, p->sent / sizeof(uint64_t));
        size_t off = 0;
        while (off < BLOCK) {
            ssize_t n = write(p->fd, (char *)w + off, BLOCK - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                p->err = errno; /* the reader closed early: the write call failed */
                close(p->fd);
                return NULL;
            }
            off += (size_t)n;
        }
        p->sent += BLOCK;
    }
    close(p->fd);
    return NULL;
}

struct consumer {
    int fd;
    uint64_t got;
    uint64_t bad_at; /* first offset that did not match, or UINT64_MAX */
};

static void *consume(void *arg)
{
    struct consumer *c = arg;
    static uint64_t w[WORDS], want[WORDS];
    c->bad_at = UINT64_MAX;
    for (;;) {
        size_t have = 0;
        while (have < BLOCK) {
            ssize_t n = read(c->fd, (char *)w + have, BLOCK - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        if (have == 0)
            break;
        if (c->bad_at == UINT64_MAX) {
            fill_block(want, c->got / sizeof(uint64_t));
            if (memcmp(w, want, have) != 0) {
                size_t i = 0;
                while (((char *)w)[i] == ((char *)want)[i])
                    i++;
                c->bad_at = c->got + i;
            }
        }
        c->got += have;
        if (have < BLOCK)
            break;
    }
    close(c->fd);
    return NULL;
}

/* A field of /proc/self/status in KiB. */
static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* Resets VmHWM to the current RSS (proc(5), clear_refs "5"), so the peak measured afterwards
 * is this test's alone. */
static void reset_peak_rss(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "5", 1) != 1)
            cr_log_warn("clear_refs: %s; the peak includes earlier use", strerror(errno));
        close(fd);
    }
}

Test(session_large, two_gib_write_and_read_in_small_memory)
{
    const char *ws = sbx_session_workspace(sbx_test_S);
    cr_assert_not_null(ws);
    struct statvfs vfs;
    cr_assert_eq(statvfs(ws, &vfs), 0);
    uint64_t free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (free_bytes < 5 * GIB)
        cr_skip_test("needs 5 GiB free at %s for a 2 GiB file, has %llu MiB", ws,
                     (unsigned long long)(free_bytes / MIB));
    /* A pipe whose other end is closed early must fail the write, not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    reset_peak_rss();
    long rss_before = status_kib("VmRSS");

    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    struct producer prod = {.fd = p[1]};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, produce, &prod), 0);
    sbx_error *err = NULL;
    uint64_t bytes = 0;
    double t0 = now_s();
    int r = sbx_session_write(sbx_test_S, "big.bin", NULL, p[0], &bytes, &err);
    close(p[0]); /* unblocks the producer if the write stopped reading */
    pthread_join(th, NULL);
    double t_write = now_s() - t0;
    cr_assert_eq(r, 0, "write: %s", sbx_error_message(err));
    cr_expect_eq(prod.err, 0, "producer: %s", strerror(prod.err));
    cr_assert_eq(bytes, BIG_BYTES, "write reported %llu bytes", (unsigned long long)bytes);
    struct stat st;
    char host_path[4200];
    snprintf(host_path, sizeof(host_path), "%s/big.bin", ws);
    cr_assert_eq(stat(host_path, &st), 0, "%s", host_path);
    cr_expect_eq((uint64_t)st.st_size, BIG_BYTES);

    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    struct consumer cons = {.fd = p[0]};
    cr_assert_eq(pthread_create(&th, NULL, consume, &cons), 0);
    bytes = 0;
    t0 = now_s();
    r = sbx_session_read(sbx_test_S, "big.bin", NULL, p[1], &bytes, &err);
    close(p[1]); /* the consumer's EOF */
    pthread_join(th, NULL);
    double t_read = now_s() - t0;
    cr_assert_eq(r, 0, "read: %s", sbx_error_message(err));
    cr_expect_eq(bytes, BIG_BYTES, "read reported %llu bytes", (unsigned long long)bytes);
    cr_expect_eq(cons.got, BIG_BYTES, "the reader got %llu bytes", (unsigned long long)cons.got);
    cr_expect_eq(cons.bad_at, UINT64_MAX, "content differs at offset %llu",
                 (unsigned long long)cons.bad_at);

    long hwm = status_kib("VmHWM");
    long growth_kib = hwm - rss_before;
    cr_log_info("2 GiB: write %.1f s, read %.1f s; RSS %ld KiB before, peak %ld KiB", t_write,
                t_read, rss_before, hwm);
    cr_expect_lt(growth_kib, 64 * 1024, "peak RSS grew by %ld KiB moving 2 GiB", growth_kib);
    if (!UNDER_ASAN)
        cr_expect_lt(hwm, 64 * 1024, "peak RSS %ld KiB", hwm);

    cr_expect_eq(sbx_session_rm(sbx_test_S, "big.bin", 0, NULL, &err), 0, "%s",
                 sbx_error_message(err));
    cr_expect_neq(stat(host_path, &st), 0, "big.bin is still on the host");
}

/* ---- hydrate on a filesystem that fills up ---- */

static char fs_dir[64];
static int fs_mounted;
static sbx_session *fs_S;

static void fullfs_init(void)
{
    sbx_test_init();
}

/* Runs however the test ended: Criterion calls .fini after a failed assertion too. */
static void fullfs_fini(void)
{
    sbx_session_free(fs_S);
    fs_S = NULL;
    if (fs_mounted && umount2(fs_dir, 0) < 0)
        cr_expect_eq(umount2(fs_dir, MNT_DETACH), 0, "umount %s: %s", fs_dir, strerror(errno));
    fs_mounted = 0;
    if (fs_dir[0])
        cr_expect_eq(rmdir(fs_dir), 0, "rmdir %s: %s", fs_dir, strerror(errno));
    fs_dir[0] = '\0';
    sbx_test_fini();
}

TestSuite(session_fullfs, .init = fullfs_init, .fini = fullfs_fini, .timeout = 120);

#define FS_SIZE    "16m"
#define BIG_MEMBER (8 * MIB)

/* A tar with three 8 MiB files (24 MiB: more than the 16 MiB filesystem), in a memfd. The
 * data is not zeros, so that no filesystem can store it as holes. */
static int oversized_tar(void)
{
    int fd = memfd_create("big-tar", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    cr_assert_eq(archive_write_open_fd(a, fd), ARCHIVE_OK);
    static char chunk[64 << 10];
    memset(chunk, 'z', sizeof(chunk));
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof(name), "big%d.bin", i);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)BIG_MEMBER);
        cr_assert_eq(archive_write_header(a, e), ARCHIVE_OK, "%s", archive_error_string(a));
        for (uint64_t off = 0; off < BIG_MEMBER; off += sizeof(chunk))
            cr_assert_eq(archive_write_data(a, chunk, sizeof(chunk)), (la_ssize_t)sizeof(chunk));
        archive_entry_free(e);
    }
    cr_assert_eq(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* Every entry's type, mode, size and name, and every file's checksum. */
static char *workspace_listing(sbx_session *s)
{
    sbx_exec_result *r =
        sbx_test_sh(s, "find . -printf '%y %m %s %P %l\\n' | sort && "
                       "find . -type f | sort | xargs -r md5sum && echo -- && ls -A");
    cr_assert_eq(r->exit_code, 0, "%s", r->err);
    char *out = strdup((const char *)r->out);
    sbx_exec_result_free(r);
    return out;
}

static uint64_t fs_free(void)
{
    struct statvfs v;
    cr_assert_eq(statvfs(fs_dir, &v), 0);
    return (uint64_t)v.f_bavail * v.f_frsize;
}

Test(session_fullfs, hydrate_that_fills_the_disk_keeps_the_workspace)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "mounting a small tmpfs needs root");
    char dir[] = "/tmp/sbx-fullfs-XXXXXX";
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    snprintf(fs_dir, sizeof(fs_dir), "%s", dir); /* from here on, .fini removes it */
    cr_assert_eq(mount("tmpfs", fs_dir, "tmpfs", MS_NOSUID | MS_NODEV,
                       "size=" FS_SIZE ",mode=0755"),
                 0, "mount tmpfs on %s: %s", fs_dir, strerror(errno));
    fs_mounted = 1;
    /* Owned by a regular user, as a caller's project directory would be (harness.h). */
    cr_assert_eq(chown(fs_dir, 4242, 4242), 0);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = fs_dir;
    fs_S = sbx_test_start(&o);

    sbx_exec_result *r = sbx_test_sh(fs_S, "mkdir -p dir/sub && printf alpha > a.txt && "
                                           "printf beta > dir/b.txt && chmod 600 dir/b.txt && "
                                           "head -c 100000 /dev/urandom > dir/sub/c.bin && "
                                           "ln -s ../a.txt dir/link");
    cr_assert_eq(r->exit_code, 0, "%s", r->err);
    sbx_exec_result_free(r);
    char *before = workspace_listing(fs_S);
    sbx_error *err = NULL;
    int snap = memfd_create("snapshot-a", MFD_CLOEXEC);
    cr_assert_eq(sbx_session_persist_workspace(fs_S, snap, &err), 0, "%s",
                 sbx_error_message(err));
    uint64_t free_before = fs_free();

    int big = oversized_tar();
    double t0 = now_s();
    int rc = sbx_session_hydrate_workspace(fs_S, big, &err);
    double secs = now_s() - t0;
    close(big);
    cr_log_info("hydrate of 24 MiB into a %s tmpfs failed after %.2f s: %s", FS_SIZE, secs,
                sbx_error_message(err));
    cr_expect_eq(rc, SBX_EWORKSPACE_ARCHIVE_WRITE, "hydrate: %s (%s)", sbx_code_name(rc),
                 sbx_error_message(err));
    cr_expect_eq(sbx_error_errno(err), ENOSPC, "errno %d: %s", sbx_error_errno(err),
                 sbx_error_message(err));
    sbx_error_free(err);
    err = NULL;

    /* The previous tree, byte for byte, and nothing else: no staging or trash directory. */
    char *after = workspace_listing(fs_S);
    cr_expect_str_eq(after, before, "the workspace changed after a failed hydrate");
    free(after);
    uint64_t free_after = fs_free();
    cr_expect_geq(free_after + 256 * 1024, free_before,
                  "the partial tree still takes space: %llu KiB free, %llu before",
                  (unsigned long long)(free_after >> 10), (unsigned long long)(free_before >> 10));

    /* The filesystem is usable again: snapshot A goes back in. */
    lseek(snap, 0, SEEK_SET);
    cr_expect_eq(sbx_session_hydrate_workspace(fs_S, snap, &err), 0, "%s",
                 sbx_error_message(err));
    sbx_error_free(err);
    close(snap);
    after = workspace_listing(fs_S);
    cr_expect_str_eq(after, before, "hydrating snapshot A did not give the same tree");
    free(after);
    free(before);
}
