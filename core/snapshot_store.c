/* snapshot_store.c — the local snapshot store (spec SESSION.md §8.1 "local"): <id>.tar plus
 * <id>.tar.sha256 ("<hex>  <id>.tar\n", the sha256sum format) in one directory.
 *
 * Commit order, and why:
 *   1. fsync the temporary tar, so its blocks are on disk before any name points at them
 *      (ext4 and xfs may otherwise persist the rename before the data: a zero-filled tar).
 *   2. Hash the temporary file by reading it back from offset 0. Hashing what the caller
 *      wrote as it streamed by would miss a short write or a caller that seeked; the digest
 *      must describe the bytes that are actually in the file.
 *   3. Write and fsync a temporary digest.
 *   4. Rename the tar into place, then the digest, then fsync the directory so both renames
 *      are durable. Each rename is atomic, so <id>.tar is always either the old or the new
 *      file; a crash between the two renames leaves a new tar beside the old digest, which
 *      restore refuses as corrupt rather than handing out unverified bytes.
 * Any failure before step 4 removes both temporaries and leaves the previous snapshot as it
 * was. Every step works relative to an fd on the directory, so a concurrent rename of a
 * parent cannot redirect the second half of a commit somewhere else.
 *
 * Reading opens the tar with O_NOFOLLOW and requires a regular file: the store directory
 * is 0700, but a symlink planted there must not make restore read (and then extract) an
 * arbitrary host file.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error_internal.h"
#include "snapshot_store.h"
#include "util.h"

#define OP_PERSIST "snapshot_persist"
#define OP_RESTORE "snapshot_restore"

struct sbx_snap_writer {
    int dfd; /* the store directory; every name below is relative to it */
    int fd;  /* the temporary tar */
    char *id;
    char *path; /* <base>/<id>.tar, for messages */
    char *tmp;  /* temporary tar name */
};

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 0xf];
    }
    out[2 * n] = '\0';
}

void sbx__sha256_buf(const void *p, size_t n, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32) {
        /* Only an allocation failure inside libcrypto gets here; an empty string never
         * matches a digest, so a caller comparing hashes fails closed. */
        hex[0] = '\0';
        return;
    }
    to_hex(md, 32, hex);
}

int sbx__sha256_fd(int fd, char hex[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return SBX_ENOMEM;
    int rc = 0;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = SBX_ENOMEM;
        goto out;
    }
    unsigned char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = SBX_EIO;
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
            rc = SBX_ENOMEM;
            goto out;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32) {
        rc = SBX_ENOMEM;
        goto out;
    }
    to_hex(md, 32, hex);
out:;
    int saved = errno;
    EVP_MD_CTX_free(ctx);
    errno = saved;
    return rc;
}

int sbx__snap_id_check(const char *id, sbx_error **err)
{
    /* The id becomes a file name inside the store: "..", "a/b" or "a\b" (which a Windows
     * client means as a path) would put the snapshot, or read one, somewhere else. */
    if (!id || !*id || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strchr(id, '/') ||
        strchr(id, '\\')) {
        int rc = sbx_err(err, SBX_EINVAL, 0, OP_PERSIST,
                         "LocalSnapshot id must be a single path segment");
        sbx_err_ctx(err, "snapshot_id", "%s", id ? id : "");
        return rc;
    }
    return 0;
}

static char *tar_path(const char *base, const char *id)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s.tar", base, id) < 0)
        return NULL;
    return p;
}

int sbx__snap_local_restorable(const char *base, const char *id)
{
    if (!base || !*base || sbx__snap_id_check(id, NULL) < 0)
        return 0;
    char *p = tar_path(base, id);
    if (!p)
        return 0;
    struct stat st;
    /* lstat: open refuses a symlink, so one is not restorable either. */
    int ok = lstat(p, &st) == 0 && S_ISREG(st.st_mode);
    free(p);
    return ok;
}

static int persist_err(sbx_error **err, int errnum, const char *id, const char *path,
                       const char *step)
{
    int rc = sbx_err(err, SBX_ESNAPSHOT_PERSIST, errnum, OP_PERSIST,
                     "failed to persist snapshot '%s' to %s (%s)", id, path, step);
    sbx_err_ctx(err, "snapshot_id", "%s", id);
    sbx_err_ctx(err, "path", "%s", path);
    return rc;
}

/* mkdir -p with 0700 for what it creates; existing directories keep their mode. */
static int mkdir_parents(const char *base)
{
    char *p = strdup(base);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            int saved = errno;
            free(p);
            errno = saved;
            return -1;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    free(p);
    return 0;
}

/* ".<id>.tar<suffix>.<32 random hex>.tmp": the leading dot keeps it out of "*.tar" globs (the
 * runner's 30-day cleanup among them), the random part lets concurrent writers coexist. */
static char *temp_name(const char *id, const char *suffix)
{
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return NULL;
    char hex[33];
    to_hex(r, sizeof(r), hex);
    char *n = NULL;
    if (asprintf(&n, ".%s.tar%s.%s.tmp", id, suffix, hex) < 0)
        return NULL;
    return n;
}

static void writer_free(struct sbx_snap_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->dfd >= 0)
        close(w->dfd);
    free(w->id);
    free(w->path);
    free(w->tmp);
    free(w);
}

int sbx__snap_local_begin(const char *base, const char *id, struct sbx_snap_writer **wp,
                          int *fd, sbx_error **err)
{
    if (!base || !*base || !wp || !fd)
        return sbx_err(err, SBX_EINVAL, 0, OP_PERSIST, "snapshot persist needs base, w and fd");
    *wp = NULL;
    *fd = -1;
    int rc = sbx__snap_id_check(id, err);
    if (rc < 0)
        return rc;
    struct sbx_snap_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return sbx_err(err, SBX_ENOMEM, 0, OP_PERSIST, "out of memory");
    w->dfd = -1;
    w->fd = -1;
    w->id = strdup(id);
    w->path = tar_path(base, id);
    if (!w->id || !w->path) {
        writer_free(w);
        return sbx_err(err, SBX_ENOMEM, 0, OP_PERSIST, "out of memory");
    }
    if (mkdir_parents(base) < 0) {
        rc = persist_err(err, errno, id, w->path, "create the snapshot directory");
        writer_free(w);
        return rc;
    }
    w->dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dfd < 0) {
        rc = persist_err(err, errno, id, w->path, "open the snapshot directory");
        writer_free(w);
        return rc;
    }
    w->tmp = temp_name(id, "");
    if (!w->tmp) {
        rc = persist_err(err, errno, id, w->path, "name a temporary file");
        writer_free(w);
        return rc;
    }
    /* O_RDWR: commit reads the file back to hash it. 0600: a workspace may hold secrets. */
    w->fd = openat(w->dfd, w->tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        rc = persist_err(err, errno, id, w->path, "create a temporary file");
        writer_free(w);
        return rc;
    }
    *fd = w->fd;
    *wp = w;
    return 0;
}

static int write_digest(int dfd, const char *name, const char *hex, const char *id)
{
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char *line = NULL;
    int n = asprintf(&line, "%s  %s.tar\n", hex, id);
    if (n < 0) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    int r = sbx__write_full(fd, line, (size_t)n);
    if (r == 0)
        r = fsync(fd);
    free(line);
    int saved = errno;
    /* close can report a deferred write error (NFS): it counts as a failed write. */
    if (close(fd) < 0 && r == 0)
        return -1;
    errno = saved;
    return r;
}

int sbx__snap_local_commit(struct sbx_snap_writer *w, int ok, sbx_error **err)
{
    if (!w)
        return sbx_err(err, SBX_EINVAL, 0, OP_PERSIST, "snapshot commit needs a writer");
    char *dtmp = NULL, *dname = NULL, *tname = NULL;
    int tar_placed = 0, digest_placed = 0, rc = 0;
    char hex[65];
    if (!ok)
        goto out;
    if (fsync(w->fd) < 0) {
        rc = persist_err(err, errno, w->id, w->path, "fsync the archive");
        goto out;
    }
    if (lseek(w->fd, 0, SEEK_SET) < 0 || sbx__sha256_fd(w->fd, hex) < 0) {
        rc = persist_err(err, errno, w->id, w->path, "read the archive back to hash it");
        goto out;
    }
    dtmp = temp_name(w->id, ".sha256");
    if (!dtmp || asprintf(&dname, "%s.tar.sha256", w->id) < 0 ||
        asprintf(&tname, "%s.tar", w->id) < 0) {
        rc = persist_err(err, errno, w->id, w->path, "name the digest file");
        goto out;
    }
    if (write_digest(w->dfd, dtmp, hex, w->id) < 0) {
        rc = persist_err(err, errno, w->id, w->path, "write the digest file");
        goto out;
    }
    if (renameat(w->dfd, w->tmp, w->dfd, tname) < 0) {
        rc = persist_err(err, errno, w->id, w->path, "rename the archive into place");
        goto out;
    }
    tar_placed = 1;
    if (renameat(w->dfd, dtmp, w->dfd, dname) < 0) {
        /* The new tar is in place beside the old digest: restore will refuse it as corrupt,
         * which is the honest outcome once the old bytes are gone. */
        rc = persist_err(err, errno, w->id, w->path, "rename the digest into place");
        goto out;
    }
    digest_placed = 1;
    if (fsync(w->dfd) < 0)
        rc = persist_err(err, errno, w->id, w->path, "fsync the snapshot directory");
out:
    if (!tar_placed && w->tmp)
        unlinkat(w->dfd, w->tmp, 0);
    if (!digest_placed && dtmp)
        unlinkat(w->dfd, dtmp, 0);
    free(dtmp);
    free(dname);
    free(tname);
    writer_free(w);
    return rc;
}

__attribute__((format(printf, 6, 7))) static int restore_err(sbx_error **err, int errnum,
                                                             const char *id, const char *path,
                                                             const char *reason,
                                                             const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    int rc = sbx_err(err, SBX_ESNAPSHOT_RESTORE, errnum, OP_RESTORE, "%s",
                     msg ? msg : "failed to restore snapshot");
    free(msg);
    sbx_err_ctx(err, "snapshot_id", "%s", id);
    sbx_err_ctx(err, "path", "%s", path);
    sbx_err_ctx(err, "reason", "%s", reason);
    return rc;
}

/* Reads "<64 hex>  <id>.tar\n" (also " *" for binary mode, as sha256sum writes it) into
 * hex. -1 with reason set when the file is absent, unreadable or malformed. */
static int read_digest(const char *path, const char *id, char hex[65], const char **reason)
{
    char *dpath = NULL;
    if (asprintf(&dpath, "%s.sha256", path) < 0) {
        *reason = "digest_unreadable";
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dpath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    free(dpath);
    if (fd < 0) {
        *reason = errno == ENOENT ? "digest_missing" : "digest_unreadable";
        return -1;
    }
    char buf[512];
    size_t len = 0;
    struct stat st;
    int r = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
    while (r == 0 && len < sizeof(buf) - 1) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r = n < 0 ? -1 : 0;
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    *reason = "digest_invalid";
    if (r < 0 || len < 66)
        return -1;
    for (int i = 0; i < 64; i++) {
        char c = buf[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return -1;
    }
    if (buf[64] != ' ' || (buf[65] != ' ' && buf[65] != '*'))
        return -1;
    char *name = buf + 66;
    size_t nl = strlen(name);
    if (nl > 0 && name[nl - 1] == '\n')
        name[--nl] = '\0';
    size_t idl = strlen(id);
    if (nl != idl + 4 || strncmp(name, id, idl) != 0 || strcmp(name + idl, ".tar") != 0)
        return -1;
    memcpy(hex, buf, 64);
    hex[64] = '\0';
    return 0;
}

int sbx__snap_local_open(const char *base, const char *id, int *fd, sbx_error **err)
{
    if (!base || !*base || !fd)
        return sbx_err(err, SBX_EINVAL, 0, OP_RESTORE, "snapshot restore needs base and fd");
    *fd = -1;
    int rc = sbx__snap_id_check(id, err);
    if (rc < 0)
        return rc;
    sbx_autofree char *path = tar_path(base, id);
    if (!path)
        return sbx_err(err, SBX_ENOMEM, 0, OP_RESTORE, "out of memory");
    /* O_NONBLOCK: a FIFO planted under the name must not hang the restore in open(). */
    sbx_autoclose int f = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (f < 0 && errno == ENOENT)
        return restore_err(err, 0, id, path, "not_found", "snapshot '%s' not found at %s", id,
                           path);
    if (f < 0 && errno != ELOOP)
        return restore_err(err, errno, id, path, "unreadable", "cannot open snapshot '%s' at %s",
                           id, path);
    struct stat st;
    if (f < 0 || fstat(f, &st) < 0 || !S_ISREG(st.st_mode))
        return restore_err(err, 0, id, path, "not_regular_file",
                           "snapshot '%s' at %s is not a regular file", id, path);
    int fl = fcntl(f, F_GETFL);
    if (fl >= 0)
        fcntl(f, F_SETFL, fl & ~O_NONBLOCK);
    char want[65], have[65];
    const char *reason = NULL;
    if (read_digest(path, id, want, &reason) < 0) {
        if (strcmp(reason, "digest_missing") == 0)
            return restore_err(err, 0, id, path, reason,
                               "snapshot '%s' cannot be verified: its digest %s.sha256 is "
                               "missing, so it may be corrupt or truncated",
                               id, path);
        return restore_err(err, 0, id, path, reason,
                           "snapshot '%s' cannot be verified: its digest %s.sha256 is "
                           "unreadable or malformed, so it may be corrupt or truncated",
                           id, path);
    }
    if (sbx__sha256_fd(f, have) < 0)
        return restore_err(err, errno, id, path, "unreadable", "cannot read snapshot '%s' at %s",
                           id, path);
    if (strcasecmp(want, have) != 0) {
        rc = restore_err(err, 0, id, path, "digest_mismatch",
                         "snapshot '%s' at %s is corrupt or truncated: its SHA-256 does not "
                         "match the recorded digest",
                         id, path);
        sbx_err_ctx(err, "expected_sha256", "%s", want);
        sbx_err_ctx(err, "actual_sha256", "%s", have);
        return rc;
    }
    if (lseek(f, 0, SEEK_SET) < 0)
        return restore_err(err, errno, id, path, "unreadable", "cannot rewind snapshot '%s'",
                           id);
    *fd = sbx_steal_fd(&f);
    return 0;
}
