/* cmd_files.c — a session's workspace from the host: ls, cp, extract, snapshot, restore.
 *
 * Each command looks the session up with a shared lock (session_store.c), attaches, runs one
 * file or archive call and detaches; the lock is held throughout, so rm and stop wait for
 * the call to finish instead of pulling the sandbox out from under it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "cli.h"
#include "session_store.h"

static const char ls_usage[] =
    "usage: sbx ls [--json] SESSION [PATH]\n"
    "\n"
    "Lists a directory of the workspace (default: its root), or one entry for a file:\n"
    "kind and mode, owner, group, size, modification time and name. PATH is relative to the\n"
    "workspace root or absolute under it. --json prints one array of objects.\n";

static const char cp_usage[] =
    "usage: sbx cp SRC DST\n"
    "\n"
    "Copies one file between the host and a session. Exactly one of SRC and DST is\n"
    "SESSION:PATH (PATH inside the workspace); the other is a host path, or - for stdin or\n"
    "stdout. A DST that is a directory (or a SESSION:PATH ending in /) receives the file\n"
    "under its own name. A failed copy leaves no partial host file.\n"
    "Directories: use sbx snapshot or sbx extract.\n";

static const char extract_usage[] =
    "usage: sbx extract [--scheme tar|zip] SESSION PATH < ARCHIVE\n"
    "\n"
    "Writes the archive read from stdin to PATH in the workspace and unpacks it into PATH's\n"
    "directory (tar, also gzip, bzip2, xz or zstd compressed; or zip). The scheme comes from\n"
    "PATH's last suffix unless --scheme is given (x.tar.gz needs --scheme tar). Unsafe members\n"
    "(absolute, .., links, devices) refuse the whole archive.\n";

static const char snapshot_usage[] =
    "usage: sbx snapshot SESSION > WORKSPACE.tar\n"
    "\n"
    "Writes the whole workspace to stdout as an uncompressed tar (never to a terminal).\n"
    "Progress goes to stderr when it is a terminal.\n";

static const char restore_usage[] =
    "usage: sbx restore SESSION < WORKSPACE.tar\n"
    "\n"
    "Replaces the workspace's contents with the tar read from stdin (as written by sbx\n"
    "snapshot; compression is detected). A broken or refused archive leaves the workspace as\n"
    "it was. Progress goes to stderr when it is a terminal.\n";

/* 1 when the argument list asks for help (printed), else 0. */
static int wants_help(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 1;
        }
    return 0;
}

/* A session looked up, locked (shared) and attached; closed with session_close(). */
struct open_session {
    struct sbx_store_rec *rec;
    int lock;
    sbx_session *s;
};

static int session_open(const char *key, struct open_session *o)
{
    memset(o, 0, sizeof(*o));
    o->lock = -1;
    if (sbx_store_open(key, 0, &o->rec, &o->lock) < 0)
        return -1;
    if (sbx_store_attach(o->rec, 0, &o->s) < 0) {
        sbx_store_unlock(o->lock);
        sbx_store_rec_free(o->rec);
        return -1;
    }
    return 0;
}

static void session_close(struct open_session *o)
{
    sbx_session_free(o->s); /* disconnects; the sandbox stays up */
    sbx_store_unlock(o->lock);
    sbx_store_rec_free(o->rec);
}

static int report(const char *what, sbx_error *err)
{
    sbx_cli_print_error(what, err);
    sbx_error_free(err);
    return SBX_EXIT_SBX_FAILED;
}

/* ---- ls -------------------------------------------------------------------------------- */

static const char *kind_name(sbx_file_kind k)
{
    switch (k) {
    case SBX_FILE_REGULAR:
        return "file";
    case SBX_FILE_DIRECTORY:
        return "directory";
    case SBX_FILE_SYMLINK:
        return "symlink";
    case SBX_FILE_OTHER:
        return "other";
    }
    return "other";
}

/* "drwxr-xr-x", with s/S and t/T as ls(1) shows the special bits. */
static void mode_string(const sbx_file_entry *e, char out[11])
{
    static const char kinds[] = "-dl?";
    out[0] = kinds[e->kind <= SBX_FILE_OTHER ? e->kind : SBX_FILE_OTHER];
    for (int i = 0; i < 3; i++) {
        unsigned bits = (e->mode >> (6 - 3 * i)) & 7;
        out[1 + 3 * i] = (bits & 4) ? 'r' : '-';
        out[2 + 3 * i] = (bits & 2) ? 'w' : '-';
        out[3 + 3 * i] = (bits & 1) ? 'x' : '-';
    }
    if (e->mode & 04000)
        out[3] = out[3] == 'x' ? 's' : 'S';
    if (e->mode & 02000)
        out[6] = out[6] == 'x' ? 's' : 'S';
    if (e->mode & 01000)
        out[9] = out[9] == 'x' ? 't' : 'T';
    out[10] = '\0';
}

static void ls_print_json(const sbx_file_entry *v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(v[i].name));
        json_object_object_add(o, "path", json_object_new_string(v[i].path));
        json_object_object_add(o, "kind", json_object_new_string(kind_name(v[i].kind)));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)v[i].size));
        json_object_object_add(o, "mode", json_object_new_int((int)v[i].mode));
        json_object_object_add(o, "mtime", json_object_new_int64(v[i].mtime));
        json_object_object_add(o, "uid", json_object_new_int64(v[i].uid));
        json_object_object_add(o, "gid", json_object_new_int64(v[i].gid));
        json_object_object_add(o, "owner", json_object_new_string(v[i].owner));
        json_object_object_add(o, "group", json_object_new_string(v[i].group));
        json_object_array_add(a, o);
    }
    printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(a);
}

static void ls_print(const sbx_file_entry *v, size_t n)
{
    int wo = 1, wg = 1, ws = 1;
    for (size_t i = 0; i < n; i++) {
        char size[32];
        int l = snprintf(size, sizeof(size), "%llu", (unsigned long long)v[i].size);
        wo = (int)strlen(v[i].owner) > wo ? (int)strlen(v[i].owner) : wo;
        wg = (int)strlen(v[i].group) > wg ? (int)strlen(v[i].group) : wg;
        ws = l > ws ? l : ws;
    }
    for (size_t i = 0; i < n; i++) {
        char mode[11], when[32] = "?";
        mode_string(&v[i], mode);
        time_t t = (time_t)v[i].mtime;
        struct tm tm;
        if (localtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
        /* A symlink is listed by its name only: its target is the sandbox's to say, and
         * following it is what listing must never do. */
        printf("%s %-*s %-*s %*llu %s %s\n", mode, wo, v[i].owner, wg, v[i].group, ws,
               (unsigned long long)v[i].size, when, v[i].name);
    }
}

int sbx_cmd_ls(int argc, char **argv)
{
    if (wants_help(argc, argv, ls_usage))
        return 0;
    int json = 0;
    const char *ops[2] = {NULL, NULL};
    int nops = 0, dashdash = 0;
    for (int i = 1; i < argc; i++) {
        if (!dashdash && !strcmp(argv[i], "--"))
            dashdash = 1;
        else if (!dashdash && !strcmp(argv[i], "--json"))
            json = 1;
        else if (!dashdash && argv[i][0] == '-' && argv[i][1])
            return sbx_cli_usage_error("ls", "unknown option '%s'", argv[i]);
        else if (nops == 2)
            return sbx_cli_usage_error("ls", "unexpected argument '%s'", argv[i]);
        else
            ops[nops++] = argv[i];
    }
    if (nops == 0)
        return sbx_cli_usage_error("ls", "no session given: sbx ls SESSION [PATH]");
    struct open_session o;
    if (session_open(ops[0], &o) < 0)
        return SBX_EXIT_SBX_FAILED;
    sbx_file_entry *v = NULL;
    size_t n = 0;
    sbx_error *err = NULL;
    const char *path = ops[1] ? ops[1] : sbx_session_root(o.s);
    int st = 0;
    if (sbx_session_ls(o.s, path, NULL, &v, &n, &err) < 0) {
        st = report(path, err);
    } else {
        if (json)
            ls_print_json(v, n);
        else
            ls_print(v, n);
        sbx_file_entries_free(v, n);
        if (fflush(stdout) != 0)
            st = SBX_EXIT_SBX_FAILED;
    }
    session_close(&o);
    return st;
}

/* ---- cp -------------------------------------------------------------------------------- */

/* "SESSION:PATH": a colon with a non-empty session before it and no '/' before the colon
 * (so "./a:b" and "/tmp/a:b" stay host paths). */
static int split_remote(const char *arg, char **key, const char **path)
{
    const char *colon = strchr(arg, ':');
    if (!colon || colon == arg || memchr(arg, '/', (size_t)(colon - arg)))
        return 0;
    *key = strndup(arg, (size_t)(colon - arg));
    *path = colon + 1;
    return *key ? 1 : -1;
}

static const char *base_name(const char *p)
{
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        n--;
    const char *b = p + n;
    while (b > p && b[-1] != '/')
        b--;
    return b;
}

/* Host -> sandbox. */
static int cp_in(const char *src, const char *spec, const char *key, const char *rpath)
{
    int fd = 0;
    char *target = NULL;
    if (strcmp(src, "-") != 0) {
        fd = open(src, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            sbx_store_fail("cannot open '%s': %s", src, strerror(errno));
            if (fd >= 0)
                close(fd);
            return SBX_EXIT_SBX_FAILED;
        }
        if (S_ISDIR(st.st_mode)) {
            close(fd);
            sbx_store_fail("'%s' is a directory: sbx cp copies single files (to copy a tree, "
                           "pipe a tar into sbx extract, or use sbx restore)",
                           src);
            return SBX_EXIT_SBX_FAILED;
        }
    }
    size_t rl = strlen(rpath);
    if (rl && rpath[rl - 1] == '/') {
        if (fd == 0)
            return sbx_cli_usage_error("cp", "stdin has no name: give the file's name after "
                                             "'%s'",
                                       rpath);
        if (asprintf(&target, "%s%s", rpath, base_name(src)) < 0)
            target = NULL;
    } else {
        target = strdup(rpath);
    }
    struct open_session o;
    int st = SBX_EXIT_SBX_FAILED;
    if (!target) {
        sbx_store_fail("out of memory");
    } else if (session_open(key, &o) == 0) {
        sbx_error *err = NULL;
        int r = sbx_session_write(o.s, target, NULL, fd, NULL, &err);
        /* An existing directory receives the file under its own name, as with cp(1); a
         * named file can be read again from the start. */
        if (r == SBX_EWORKSPACE_ARCHIVE_WRITE && sbx_error_errno(err) == EISDIR && fd > 0 &&
            lseek(fd, 0, SEEK_SET) == 0) {
            char *inside = NULL;
            if (asprintf(&inside, "%s/%s", target, base_name(src)) >= 0) {
                sbx_error_free(err);
                err = NULL;
                r = sbx_session_write(o.s, inside, NULL, fd, NULL, &err);
                free(inside);
            }
        }
        if (r < 0)
            report(spec, err);
        else
            st = 0;
        session_close(&o);
    }
    if (fd > 0)
        close(fd);
    free(target);
    return st;
}

/* A read that failed; a directory gets a pointer to the commands that copy trees. */
static int read_failed(const char *spec, sbx_error *err)
{
    if (sbx_error_code(err) == SBX_EWORKSPACE_ARCHIVE_READ && sbx_error_errno(err) == EISDIR) {
        sbx_error_free(err);
        sbx_store_fail("%s is a directory: sbx cp copies single files (sbx snapshot writes the "
                       "whole workspace as a tar)",
                       spec);
        return SBX_EXIT_SBX_FAILED;
    }
    return report(spec, err);
}

/* Sandbox -> host file: through a temporary file beside the target, renamed into place on
 * success, so a failed or interrupted copy never leaves a partial file. */
static int cp_out_file(struct open_session *o, const char *spec, const char *rpath,
                       const char *dst)
{
    char target[PATH_MAX], tmp[PATH_MAX + 32];
    struct stat st;
    int have = stat(dst, &st) == 0;
    if (have && S_ISDIR(st.st_mode))
        snprintf(target, sizeof(target), "%s/%s", dst, base_name(rpath));
    else
        snprintf(target, sizeof(target), "%s", dst);
    have = stat(target, &st) == 0 && S_ISREG(st.st_mode);
    char *dcopy = strdup(target);
    if (!dcopy) {
        sbx_store_fail("out of memory");
        return SBX_EXIT_SBX_FAILED;
    }
    snprintf(tmp, sizeof(tmp), "%s/.%s.sbx-cp-XXXXXX", dirname(dcopy), base_name(target));
    free(dcopy);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        sbx_store_fail("cannot create a file beside '%s': %s", target, strerror(errno));
        return SBX_EXIT_SBX_FAILED;
    }
    /* An existing file keeps its mode, as cp(1) does; a new one is 0644. */
    fchmod(fd, have ? (st.st_mode & 07777) : 0644);
    sbx_error *err = NULL;
    int st_code = 0;
    if (sbx_session_read(o->s, rpath, NULL, fd, NULL, &err) < 0) {
        st_code = read_failed(spec, err);
    } else if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        st_code = sbx_store_fail("cannot write '%s': %s", target, strerror(errno));
    } else {
        fd = -1;
        if (rename(tmp, target) < 0)
            st_code = sbx_store_fail("cannot write '%s': %s", target, strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    if (st_code) {
        unlink(tmp);
        return SBX_EXIT_SBX_FAILED;
    }
    return 0;
}

/* Sandbox -> host. */
static int cp_out(const char *spec, const char *key, const char *rpath, const char *dst)
{
    struct open_session o;
    if (session_open(key, &o) < 0)
        return SBX_EXIT_SBX_FAILED;
    int st = 0;
    if (!strcmp(dst, "-")) {
        sbx_error *err = NULL;
        if (sbx_session_read(o.s, rpath, NULL, 1, NULL, &err) < 0)
            st = read_failed(spec, err);
    } else {
        st = cp_out_file(&o, spec, rpath, dst);
    }
    session_close(&o);
    return st;
}

int sbx_cmd_cp(int argc, char **argv)
{
    if (wants_help(argc, argv, cp_usage))
        return 0;
    int first = argc > 1 && !strcmp(argv[1], "--") ? 2 : 1;
    if (argc - first != 2)
        return sbx_cli_usage_error("cp", "give a source and a destination: sbx cp SRC DST");
    const char *src = argv[first], *dst = argv[first + 1];
    char *skey = NULL, *dkey = NULL;
    const char *spath = NULL, *dpath = NULL;
    int rs = split_remote(src, &skey, &spath), rd = split_remote(dst, &dkey, &dpath);
    int st;
    if (rs < 0 || rd < 0) {
        sbx_store_fail("out of memory");
        st = SBX_EXIT_SBX_FAILED;
    } else if (rs == rd) {
        st = sbx_cli_usage_error("cp", "exactly one of '%s' and '%s' must be SESSION:PATH", src,
                                 dst);
    } else if ((rs && !*spath) || (rd && !*dpath)) {
        st = sbx_cli_usage_error("cp", "give a path after the session's ':'");
    } else if (rs) {
        signal(SIGPIPE, SIG_IGN); /* a closed stdout is an error to report, not a death */
        st = cp_out(src, skey, spath, dst);
    } else {
        st = cp_in(src, dst, dkey, dpath);
    }
    free(skey);
    free(dkey);
    return st;
}

/* ---- extract --------------------------------------------------------------------------- */

int sbx_cmd_extract(int argc, char **argv)
{
    static const struct option longs[] = {{"scheme", required_argument, NULL, 's'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *scheme = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (c == 'h') {
            fputs(extract_usage, stdout);
            return 0;
        }
        if (c != 's')
            return sbx_cli_usage_error("extract", "unknown or incomplete option '%s'",
                                       argv[optind - 1]);
        if (strcmp(optarg, "tar") != 0 && strcmp(optarg, "zip") != 0)
            return sbx_cli_usage_error("extract", "--scheme is tar or zip, not '%s'", optarg);
        scheme = optarg;
    }
    if (argc - optind != 2)
        return sbx_cli_usage_error("extract", "give a session and a path: sbx extract SESSION "
                                              "PATH < ARCHIVE");
    if (isatty(0)) {
        sbx_store_fail("extract reads the archive from stdin, which is a terminal: redirect it "
                       "(sbx extract %s %s < archive)",
                       argv[optind], argv[optind + 1]);
        return SBX_EXIT_SBX_FAILED;
    }
    struct open_session o;
    if (session_open(argv[optind], &o) < 0)
        return SBX_EXIT_SBX_FAILED;
    sbx_error *err = NULL;
    int st = 0;
    if (sbx_session_extract(o.s, argv[optind + 1], 0, scheme, NULL, NULL, &err) < 0)
        st = report(argv[optind + 1], err);
    session_close(&o);
    return st;
}

/* ---- snapshot, restore ------------------------------------------------------------------- */

/* With a terminal on stderr, the archive goes through a pipe: a thread runs persist or
 * hydrate on one end, this thread copies between the pipe and stdout/stdin and counts. */
struct pump {
    sbx_session *s;
    int fd;      /* the thread's end of the pipe; it closes it when done */
    int hydrate; /* 1: restore (read fd), 0: snapshot (write fd) */
    int rc;
    sbx_error *err;
};

static void *pump_thread(void *arg)
{
    struct pump *p = arg;
    if (p->hydrate)
        p->rc = sbx_session_hydrate_workspace(p->s, p->fd, &p->err);
    else
        p->rc = sbx_session_persist_workspace(p->s, p->fd, &p->err);
    /* Closing wakes the copying side: EOF for a snapshot, EPIPE for a restore that stopped
     * reading early. */
    close(p->fd);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(const char *what, uint64_t bytes, double t0)
{
    double dt = now_s() - t0;
    double mb = (double)bytes / 1e6;
    double rate = dt > 0 ? mb / dt : 0.0;
    if (bytes < 1000000)
        fprintf(stderr, "\r\033[Ksbx: %s: %llu bytes, %.1f MB/s", what,
                (unsigned long long)bytes, rate);
    else
        fprintf(stderr, "\r\033[Ksbx: %s: %.1f MB, %.1f MB/s", what, mb, rate);
}

/* Copies in_fd to out_fd until EOF; -1 with errno (and *which: 0 reading, 1 writing). */
static int copy_counting(int in_fd, int out_fd, const char *what, int *which)
{
    static char buf[1 << 16];
    uint64_t total = 0;
    double t0 = now_s(), last = 0;
    for (;;) {
        ssize_t n = read(in_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *which = 0;
            return -1;
        }
        if (n == 0)
            break;
        if (sbx__write_full(out_fd, buf, (size_t)n) < 0) {
            *which = 1;
            return -1;
        }
        total += (uint64_t)n;
        if (now_s() - last >= 0.2) {
            last = now_s();
            progress(what, total, t0);
        }
    }
    progress(what, total, t0);
    return 0;
}

static int pumped(sbx_session *s, int hydrate)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        sbx_store_fail("pipe: %s", strerror(errno));
        return SBX_EXIT_SBX_FAILED;
    }
    struct pump pu = {.s = s, .fd = hydrate ? p[0] : p[1], .hydrate = hydrate};
    int mine = hydrate ? p[1] : p[0];
    pthread_t t;
    if (pthread_create(&t, NULL, pump_thread, &pu) != 0) {
        close(p[0]);
        close(p[1]);
        sbx_store_fail("cannot start a thread");
        return SBX_EXIT_SBX_FAILED;
    }
    int which = 0;
    const char *what = hydrate ? "restore" : "snapshot";
    int crc = hydrate ? copy_counting(0, mine, what, &which)
                      : copy_counting(mine, 1, what, &which);
    int cerr = errno;
    close(mine); /* EOF for hydrate; for persist, a write error stops the thread */
    pthread_join(t, NULL);
    fputs("\r\033[K", stderr);
    if (pu.rc < 0)
        return report(what, pu.err);
    if (crc < 0) {
        sbx_store_fail("%s: cannot %s: %s", what, which ? "write" : "read", strerror(cerr));
        return SBX_EXIT_SBX_FAILED;
    }
    return 0;
}

static int archive_cmd(int argc, char **argv, int hydrate)
{
    const char *cmd = hydrate ? "restore" : "snapshot";
    if (wants_help(argc, argv, hydrate ? restore_usage : snapshot_usage))
        return 0;
    int first = argc > 1 && !strcmp(argv[1], "--") ? 2 : 1;
    if (argc - first != 1)
        return sbx_cli_usage_error(cmd, "give exactly one session");
    if (first == 1 && argv[1][0] == '-')
        return sbx_cli_usage_error(cmd, "unknown option '%s'", argv[1]);
    if (hydrate && isatty(0)) {
        sbx_store_fail("restore reads a tar from stdin, which is a terminal: redirect it (sbx "
                       "restore %s < ws.tar)",
                       argv[first]);
        return SBX_EXIT_SBX_FAILED;
    }
    if (!hydrate && isatty(1)) {
        sbx_store_fail("refusing to write a tar to a terminal: redirect stdout (sbx snapshot %s "
                       "> ws.tar)",
                       argv[first]);
        return SBX_EXIT_SBX_FAILED;
    }
    struct open_session o;
    if (session_open(argv[first], &o) < 0)
        return SBX_EXIT_SBX_FAILED;
    signal(SIGPIPE, SIG_IGN); /* a closed pipe is an error to report, not a death */
    int st = 0;
    if (isatty(2)) {
        st = pumped(o.s, hydrate);
    } else {
        sbx_error *err = NULL;
        int r = hydrate ? sbx_session_hydrate_workspace(o.s, 0, &err)
                        : sbx_session_persist_workspace(o.s, 1, &err);
        if (r < 0)
            st = report(cmd, err);
    }
    session_close(&o);
    return st;
}

int sbx_cmd_snapshot(int argc, char **argv)
{
    return archive_cmd(argc, argv, 0);
}

int sbx_cmd_restore(int argc, char **argv)
{
    return archive_cmd(argc, argv, 1);
}
