/* session_store.c — the session CLI's state directory: records, lookup, locking, removal.
 * See session_store.h for the layout. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"
#include "cli.h"
#include "session_store.h"

#define RECORD_FILE "session.json"
#define STATE_FILE  "state.json"
#define LOCK_FILE   "lock"
/* A session's lock is held by other commands only while they set up (exec) or for one file
 * operation; waiting longer than this means something is stuck, and saying so beats
 * hanging. */
#define LOCK_WAIT_MS 60000
/* state.json carries the manifest (file contents included); session.json a seccomp policy
 * of at most 1 MiB. */
#define MAX_JSON_BYTES (64u << 20)

int sbx_store_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sbx: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static int oom(void)
{
    return sbx_store_fail("out of memory");
}

/* "a/b", malloc'd; NULL when out of memory. */
static char *join(const char *a, const char *b)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

/* ---- the state directory ------------------------------------------------------------------ */

int sbx_store_dir(int create, char **out)
{
    *out = NULL;
    const char *env = getenv("SBX_STATE_DIR");
    char *dir = NULL;
    if (env && *env) {
        if (env[0] != '/')
            return sbx_store_fail("SBX_STATE_DIR must be an absolute path, not '%s'", env);
        dir = strdup(env);
    } else if (geteuid() == 0) {
        dir = strdup("/run/sbx");
    } else {
        const char *x = getenv("XDG_RUNTIME_DIR");
        if (!x || x[0] != '/')
            return sbx_store_fail("XDG_RUNTIME_DIR is not set, so sbx has nowhere private to "
                                  "keep sessions: set it, or SBX_STATE_DIR");
        dir = join(x, "sbx");
    }
    if (!dir)
        return oom();
    for (size_t n = strlen(dir); n > 1 && dir[n - 1] == '/'; n--)
        dir[n - 1] = '\0';
    if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
        sbx_store_fail("cannot create the state directory '%s': %s", dir, strerror(errno));
        free(dir);
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) < 0) {
        int e = errno;
        if (e == ENOENT && !create) {
            free(dir);
            return 0;
        }
        sbx_store_fail("cannot use the state directory '%s': %s", dir, strerror(e));
        free(dir);
        return -1;
    }
    /* Control sockets live in here: another user able to reach them could run commands in
     * every sandbox, so the directory must be ours and closed to everyone else. */
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        sbx_store_fail("the state directory '%s' is not a directory owned by uid %u", dir,
                       (unsigned)geteuid());
        free(dir);
        return -1;
    }
    if ((st.st_mode & 077) && chmod(dir, 0700) < 0) {
        sbx_store_fail("cannot make the state directory '%s' private (0700): %s", dir,
                       strerror(errno));
        free(dir);
        return -1;
    }
    *out = dir;
    return 0;
}

int sbx_store_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || !isalnum((unsigned char)name[0]))
        return 0;
    for (size_t i = 1; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-')
            return 0;
    }
    return 1;
}

static int uuid_ok(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* ---- records ---------------------------------------------------------------------------- */

struct sbx_store_rec *sbx_store_rec_new(const char *statedir, const char *id)
{
    struct sbx_store_rec *r = calloc(1, sizeof(*r));
    if (!r) {
        oom();
        return NULL;
    }
    snprintf(r->id, sizeof(r->id), "%s", id);
    if (!(r->dir = join(statedir, id)) || !(r->ctl = join(r->dir, "ctl.sock"))) {
        sbx_store_rec_free(r);
        oom();
        return NULL;
    }
    if (strlen(r->ctl) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        sbx_store_fail("the state directory '%s' is too long for a control socket path (at "
                       "most %d bytes): set SBX_STATE_DIR to a shorter path",
                       statedir, SBX_STORE_MAX_DIR_LEN);
        sbx_store_rec_free(r);
        return NULL;
    }
    return r;
}

void sbx_store_rec_free(struct sbx_store_rec *r)
{
    if (!r)
        return;
    free(r->name);
    free(r->snapshot_dir);
    free(r->workspace);
    json_object_put(r->opts);
    free(r->dir);
    free(r->ctl);
    free(r);
}

/* Reads a whole file (NUL-terminated); NULL with errno set. Symlinks are not followed: the
 * files are ours and nothing legitimate replaces them with links. */
static char *slurp(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 == cap) {
            char *nb = cap >= MAX_JSON_BYTES ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            buf = NULL;
            errno = e;
            break;
        }
        if (n == 0) {
            buf[len] = '\0';
            break;
        }
        len += (size_t)n;
    }
    int e = errno;
    close(fd);
    errno = e;
    return buf;
}

/* Temporary file in the same directory, then rename: readers see the old or the new file. */
static int write_atomic(const char *dir, const char *name, const char *text)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name);
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return sbx_store_fail("cannot write in '%s': %s", dir, strerror(errno));
    if (sbx__write_full(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return sbx_store_fail("cannot write '%s': %s", dst, strerror(e));
    }
    close(fd);
    if (rename(tmp, dst) < 0) {
        int e = errno;
        unlink(tmp);
        return sbx_store_fail("cannot write '%s': %s", dst, strerror(e));
    }
    return 0;
}

static json_object *opt_str(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

int sbx_store_save(const struct sbx_store_rec *r)
{
    json_object *o = json_object_new_object();
    if (!o)
        return oom();
    json_object_object_add(o, "id", json_object_new_string(r->id));
    json_object_object_add(o, "name", opt_str(r->name));
    json_object_object_add(o, "status", json_object_new_string(r->stopped ? "stopped" : "running"));
    json_object_object_add(o, "agent_pid", json_object_new_int(r->agent_pid));
    json_object_object_add(o, "agent_start", json_object_new_int64((int64_t)r->agent_start));
    json_object_object_add(o, "control_socket", json_object_new_string(r->ctl));
    json_object_object_add(o, "created", json_object_new_int64(r->created));
    json_object_object_add(o, "snapshot_dir", opt_str(r->snapshot_dir));
    json_object_object_add(o, "workspace", opt_str(r->workspace));
    json_object_object_add(o, "workspace_owned", json_object_new_boolean(r->workspace_owned));
    json_object_object_add(o, "options", r->opts ? json_object_get(r->opts) : NULL);
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = text ? write_atomic(r->dir, RECORD_FILE, text) : oom();
    json_object_put(o);
    return rc;
}

int sbx_store_save_state(const struct sbx_store_rec *r, const char *state_json)
{
    return write_atomic(r->dir, STATE_FILE, state_json);
}

char *sbx_store_load_state(const struct sbx_store_rec *r)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", r->dir, STATE_FILE);
    char *s = slurp(path);
    if (!s)
        sbx_store_fail("cannot read the state of session %s ('%s'): %s", r->id, path,
                       strerror(errno));
    return s;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int64_t jint(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return 0;
    return json_object_get_int64(v);
}

static int dup_or_null(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return s && !*out ? -1 : 0;
}

/* Loads <statedir>/<id>/session.json; NULL (quietly, errno set) when it is missing or not a
 * record of this id: a directory being created has none yet. */
static struct sbx_store_rec *rec_load(const char *statedir, const char *id)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s/%s", statedir, id, RECORD_FILE);
    char *text = slurp(path);
    if (!text)
        return NULL;
    json_object *o = json_tokener_parse(text);
    free(text);
    const char *rid = o ? jstr(o, "id") : NULL;
    const char *status = o ? jstr(o, "status") : NULL;
    json_object *opts = NULL;
    if (!rid || strcmp(rid, id) != 0 || !status ||
        !json_object_object_get_ex(o, "options", &opts) ||
        !json_object_is_type(opts, json_type_object)) {
        json_object_put(o);
        errno = EINVAL;
        return NULL;
    }
    struct sbx_store_rec *r = calloc(1, sizeof(*r));
    if (!r || !(r->dir = join(statedir, id)) || !(r->ctl = join(r->dir, "ctl.sock")) ||
        dup_or_null(jstr(o, "name"), &r->name) ||
        dup_or_null(jstr(o, "snapshot_dir"), &r->snapshot_dir) ||
        dup_or_null(jstr(o, "workspace"), &r->workspace)) {
        sbx_store_rec_free(r);
        json_object_put(o);
        errno = ENOMEM;
        return NULL;
    }
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->stopped = strcmp(status, "stopped") == 0;
    r->agent_pid = (pid_t)jint(o, "agent_pid");
    r->agent_start = (unsigned long long)jint(o, "agent_start");
    r->created = jint(o, "created");
    json_object *v;
    r->workspace_owned = json_object_object_get_ex(o, "workspace_owned", &v) &&
                         json_object_get_boolean(v);
    r->opts = json_object_get(opts);
    json_object_put(o);
    return r;
}

struct sbx_store_rec *sbx_store_reload(const struct sbx_store_rec *r)
{
    char *statedir = strndup(r->dir, strlen(r->dir) - strlen(r->id) - 1);
    struct sbx_store_rec *n = statedir ? rec_load(statedir, r->id) : NULL;
    free(statedir);
    return n;
}

static int cmp_created(const void *a, const void *b)
{
    const struct sbx_store_rec *x = *(struct sbx_store_rec *const *)a;
    const struct sbx_store_rec *y = *(struct sbx_store_rec *const *)b;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

int sbx_store_list(const char *statedir, struct sbx_store_rec ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!statedir)
        return 0;
    DIR *d = opendir(statedir);
    if (!d)
        return sbx_store_fail("cannot read the state directory '%s': %s", statedir,
                              strerror(errno));
    struct sbx_store_rec **v = NULL;
    size_t len = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!uuid_ok(de->d_name))
            continue;
        struct sbx_store_rec *r = rec_load(statedir, de->d_name);
        if (!r)
            continue;
        struct sbx_store_rec **nv = realloc(v, (len + 1) * sizeof(*nv));
        if (!nv) {
            sbx_store_rec_free(r);
            sbx_store_list_free(v, len);
            closedir(d);
            return oom();
        }
        v = nv;
        v[len++] = r;
    }
    closedir(d);
    if (len)
        qsort(v, len, sizeof(*v), cmp_created);
    *out = v;
    *n = len;
    return 0;
}

void sbx_store_list_free(struct sbx_store_rec **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sbx_store_rec_free(v[i]);
    free(v);
}

/* Exact id, then exact name, then a unique id prefix (4+ characters): a name never shadows
 * a full id, and a prefix never shadows a name. */
static int find(const char *statedir, const char *key, char id[37])
{
    struct sbx_store_rec **v = NULL;
    size_t n = 0;
    if (sbx_store_list(statedir, &v, &n) < 0)
        return -1;
    const struct sbx_store_rec *hit = NULL;
    for (size_t i = 0; i < n && !hit; i++)
        if (!strcmp(v[i]->id, key))
            hit = v[i];
    for (size_t i = 0; i < n && !hit; i++)
        if (v[i]->name && !strcmp(v[i]->name, key))
            hit = v[i];
    size_t matches = 0;
    const struct sbx_store_rec *second = NULL;
    if (!hit && strlen(key) >= 4) {
        for (size_t i = 0; i < n; i++) {
            if (strncmp(v[i]->id, key, strlen(key)) != 0)
                continue;
            if (matches++ == 0)
                hit = v[i];
            else if (!second)
                second = v[i];
        }
    }
    int rc = 0;
    if (matches > 1) {
        rc = sbx_store_fail("'%s' matches %zu sessions (%.13s..., %.13s...): give more of the id",
                            key, matches, hit->id, second->id);
    } else if (!hit) {
        rc = sbx_store_fail("no session '%s' (see sbx ps)", key);
    } else {
        memcpy(id, hit->id, 37);
    }
    sbx_store_list_free(v, n);
    return rc;
}

/* ---- locking ---------------------------------------------------------------------------- */

static int lock_fd(int fd, int exclusive)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (int waited = 0; waited < LOCK_WAIT_MS; waited += 20) {
        if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        nanosleep(&ts, NULL);
    }
    errno = EWOULDBLOCK;
    return -1;
}

int sbx_store_lock(const struct sbx_store_rec *r, int exclusive)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", r->dir, LOCK_FILE);
    /* Never created here: a lock file made between rm's unlink and rmdir would keep an
     * empty directory alive. create makes it (sbx_store_make_dir). */
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return sbx_store_fail("no session '%s' (see sbx ps)", r->id);
    if (fd < 0)
        return sbx_store_fail("cannot open '%s': %s", path, strerror(errno));
    if (lock_fd(fd, exclusive) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return sbx_store_fail("session %s is busy: another sbx command has held it for %d "
                                  "s; try again",
                                  r->id, LOCK_WAIT_MS / 1000);
        return sbx_store_fail("cannot lock '%s': %s", path, strerror(e));
    }
    /* rm unlinks the lock while holding it: whoever waited behind it holds a lock on a
     * removed session. */
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
        close(fd);
        return sbx_store_fail("no session '%s' (see sbx ps)", r->id);
    }
    return fd;
}

int sbx_store_make_dir(const struct sbx_store_rec *r)
{
    if (mkdir(r->dir, 0700) < 0)
        return sbx_store_fail("cannot create '%s': %s", r->dir, strerror(errno));
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", r->dir, LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        rmdir(r->dir);
        return sbx_store_fail("cannot create '%s': %s", path, strerror(e));
    }
    close(fd);
    int lock = sbx_store_lock(r, 1);
    if (lock < 0)
        sbx_store_remove(r);
    return lock;
}

void sbx_store_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

int sbx_store_lock_dir(const char *statedir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", statedir, LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return sbx_store_fail("cannot open '%s': %s", path, strerror(errno));
    if (lock_fd(fd, 1) < 0) {
        int e = errno;
        close(fd);
        return sbx_store_fail("cannot lock the state directory '%s': %s", statedir,
                              e == EWOULDBLOCK ? "another sbx create is stuck" : strerror(e));
    }
    return fd;
}

int sbx_store_open(const char *key, int exclusive, struct sbx_store_rec **out, int *lock)
{
    *out = NULL;
    *lock = -1;
    char *statedir = NULL;
    char id[37];
    if (sbx_store_dir(0, &statedir) < 0)
        return -1;
    if (!statedir)
        return sbx_store_fail("no session '%s' (see sbx ps)", key);
    int rc = find(statedir, key, id);
    struct sbx_store_rec *r = rc == 0 ? sbx_store_rec_new(statedir, id) : NULL;
    int fd = r ? sbx_store_lock(r, exclusive) : -1;
    sbx_store_rec_free(r);
    r = NULL;
    if (fd >= 0 && !(r = rec_load(statedir, id))) {
        sbx_store_unlock(fd);
        fd = -1;
        sbx_store_fail("no session '%s' (see sbx ps)", key);
    }
    free(statedir);
    if (fd < 0)
        return -1;
    *out = r;
    *lock = fd;
    return 0;
}

/* ---- liveness ----------------------------------------------------------------------------- */

unsigned long long sbx_store_proc_start(pid_t pid)
{
    if (pid <= 0)
        return 0;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    char *text = slurp(path);
    if (!text)
        return 0;
    /* Fields after the command name (which may hold spaces and parentheses): state is field
     * 3, starttime field 22. A zombie is dead for our purposes: its sandbox is gone, only
     * the reaping is left (to a parent that may be slow at it). */
    const char *p = strrchr(text, ')');
    unsigned long long start = 0;
    char state = 0;
    if (p && sscanf(p + 1, " %c", &state) == 1 && state != 'Z' && state != 'X') {
        p += 2;
        for (int field = 3; field < 22 && p; field++) {
            p = strchr(p, ' ');
            if (p)
                p++;
        }
        if (p)
            start = strtoull(p, NULL, 10);
    }
    free(text);
    return start;
}

int sbx_store_agent_alive(const struct sbx_store_rec *r)
{
    unsigned long long st = sbx_store_proc_start(r->agent_pid);
    return st != 0 && (r->agent_start == 0 || st == r->agent_start);
}

/* The socket accepts and its peer is the recorded agent (a connection the agent just drops
 * when nothing is asked on it). */
static int socket_answers(const struct sbx_store_rec *r)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(r->ctl) >= sizeof(a.sun_path))
        return 0;
    memcpy(a.sun_path, r->ctl, strlen(r->ctl) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
             getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
             cred.pid == r->agent_pid;
    close(fd);
    return ok;
}

enum sbx_store_status sbx_store_status(const struct sbx_store_rec *r)
{
    if (r->stopped)
        return SBX_STORE_STOPPED;
    if (!sbx_store_agent_alive(r) || !socket_answers(r))
        return SBX_STORE_GONE;
    return SBX_STORE_RUNNING;
}

const char *sbx_store_status_name(enum sbx_store_status st)
{
    switch (st) {
    case SBX_STORE_RUNNING:
        return "running";
    case SBX_STORE_STOPPED:
        return "stopped";
    case SBX_STORE_GONE:
        return "gone";
    }
    return "?";
}

/* ---- options and attaching ---------------------------------------------------------------- */

/* A NULL-terminated vector of the strings of array `key` (borrowed from o); an empty one when
 * absent. NULL when out of memory. */
static const char **strv_of(json_object *o, const char *key, const char ***out)
{
    json_object *a = NULL;
    size_t n = json_object_object_get_ex(o, key, &a) && json_object_is_type(a, json_type_array)
                   ? json_object_array_length(a)
                   : 0;
    const char **v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0, k = 0; v && i < n; i++) {
        json_object *e = json_object_array_get_idx(a, i);
        if (json_object_is_type(e, json_type_string))
            v[k++] = json_object_get_string(e);
    }
    *out = v;
    return v;
}

/* The array opts[key], or NULL when absent or not an array. */
static json_object *jarr(json_object *opts, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(opts, key, &v) && json_object_is_type(v, json_type_array)
               ? v
               : NULL;
}

int sbx_store_opts_apply(json_object *opts, const char *label, struct sbx_store_opts *o)
{
    json_object *v;
    o->so.hostname = jstr(opts, "hostname");
    o->so.seccomp_policy = jstr(opts, "seccomp_policy");
    o->so.nproc = (unsigned)jint(opts, "nproc");
    o->so.tmpfs_bytes = (uint64_t)jint(opts, "tmpfs_bytes");
    o->so.memory_bytes = (uint64_t)jint(opts, "memory_bytes");
    o->so.pids_max = (unsigned)jint(opts, "pids_max");
    o->so.nofile = (unsigned)jint(opts, "nofile");
    o->so.fsize_bytes = (uint64_t)jint(opts, "fsize_bytes");
    o->so.io_weight = (unsigned)jint(opts, "io_weight");
    o->so.workspace_quota_bytes = (uint64_t)jint(opts, "workspace_quota_bytes");
    o->so.cpuset = jstr(opts, "cpuset");
    o->so.cgroup_parent = jstr(opts, "cgroup_parent");
    o->so.io_read_bps = (uint64_t)jint(opts, "io_read_bps");
    o->so.io_write_bps = (uint64_t)jint(opts, "io_write_bps");
    if (json_object_object_get_ex(opts, "cpus", &v))
        o->so.cpus = json_object_get_double(v);
    if (json_object_object_get_ex(opts, "allow_ptrace", &v) && json_object_get_boolean(v))
        o->so.flags |= SBX_SESSION_ALLOW_PTRACE;
    if (json_object_object_get_ex(opts, "limits_best_effort", &v) && json_object_get_boolean(v))
        o->so.flags |= SBX_SESSION_CGROUP_BEST_EFFORT;
    const char *net = jstr(opts, "net");
    if (net && sbx_cli_parse_net(net, &o->so.net_mode) < 0)
        return sbx_store_fail("%s: unknown network mode '%s'", label, net);
    if (!strv_of(opts, "net_allow", &o->allow) || !strv_of(opts, "net_hosts", &o->hosts))
        return oom();
    if (o->so.net_mode == SBX_NET_PROXY) {
        o->so.net_allow = o->allow;
        o->so.net_hosts = o->hosts;
    }
    if (o->so.net_mode == SBX_NET_VETH)
        o->so.net_range = jstr(opts, "net_range");
    /* Binds and environment: a record has both; a one-shot run keeps its own. */
    json_object *binds = jarr(opts, "binds"), *env = jarr(opts, "env");
    size_t nb = binds ? json_object_array_length(binds) : 0;
    size_t ne = env ? json_object_array_length(env) : 0;
    if (binds) {
        if (!(o->binds = calloc(nb + 1, sizeof(*o->binds))))
            return oom();
        for (size_t i = 0; i < nb; i++) {
            json_object *b = json_object_array_get_idx(binds, i);
            o->binds[i].src = jstr(b, "src");
            o->binds[i].dst = jstr(b, "dst");
            o->binds[i].readonly = json_object_object_get_ex(b, "readonly", &v) &&
                                   json_object_get_boolean(v);
            if (!o->binds[i].src)
                return sbx_store_fail("%s: bind %zu has no source", label, i);
        }
        o->so.binds = o->binds;
        o->so.n_binds = nb;
    }
    if (env) {
        if (!(o->env = calloc(ne + 1, sizeof(*o->env))))
            return oom();
        for (size_t i = 0; i < ne; i++) {
            json_object *e = json_object_array_get_idx(env, i);
            o->env[i] = json_object_is_type(e, json_type_string) ? json_object_get_string(e)
                                                                 : "";
        }
        o->so.env = o->env;
    }
    return 0;
}

int sbx_store_opts_from_rec(const struct sbx_store_rec *r, struct sbx_store_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->so = (sbx_session_opts)SBX_SESSION_OPTS_INIT;
    char label[64];
    snprintf(label, sizeof(label), "session %.36s (session.json)", r->id);
    int rc = sbx_store_opts_apply(r->opts, label, o);
    if (rc < 0)
        sbx_store_opts_free(o);
    return rc;
}

void sbx_store_opts_free(struct sbx_store_opts *o)
{
    free(o->binds);
    free(o->env);
    free(o->allow);
    free(o->hosts);
    o->binds = NULL;
    o->env = NULL;
    o->allow = o->hosts = NULL;
}

static const char *label(const struct sbx_store_rec *r)
{
    return r->name ? r->name : r->id;
}

int sbx_store_attach(const struct sbx_store_rec *r, int quiet, sbx_session **out)
{
    *out = NULL;
    if (r->stopped)
        return sbx_store_fail("session %s is stopped: sbx start %s", label(r), label(r));
    char *state = sbx_store_load_state(r);
    if (!state)
        return -1;
    struct sbx_store_opts o;
    if (sbx_store_opts_from_rec(r, &o) < 0) {
        free(state);
        return -1;
    }
    /* The same options as at create: the environment in particular is added by this
     * process to every command, not kept by the sandbox. */
    o.so.state_json = state;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    int rc = sbx_session_new(&o.so, &s, &err);
    if (rc == 0)
        rc = sbx_session_attach(s, r->ctl, r->agent_pid, &err);
    sbx_store_opts_free(&o);
    free(state);
    if (rc < 0 && !quiet && (rc == SBX_ESTATE || !sbx_store_agent_alive(r)))
        sbx_store_fail("session %s is not running (its sandbox is gone): sbx start %s or "
                       "sbx rm %s",
                       label(r), label(r), label(r));
    else if (rc < 0 && !quiet)
        fprintf(stderr, "sbx: session %s: %s [%s]\n", label(r), sbx_error_message(err),
                sbx_code_name(sbx_error_code(err)));
    sbx_error_free(err);
    if (rc < 0) {
        sbx_session_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---- removal ------------------------------------------------------------------------------ */

/* A workspace sbx made is <tmp>/sbx-ws-XXXXXX/workspace; only such a path is removed, so a
 * damaged or edited record cannot turn `sbx rm` into a delete of an arbitrary directory. */
static int looks_owned(const char *ws)
{
    static const char leaf[] = "/workspace";
    size_t n = strlen(ws), l = sizeof(leaf) - 1;
    if (ws[0] != '/' || n <= l || strcmp(ws + n - l, leaf) != 0)
        return 0;
    const char *end = ws + n - l, *start = end;
    while (start > ws && start[-1] != '/')
        start--;
    return end - start == 13 && !strncmp(start, "sbx-ws-", 7);
}

static int make_writable(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)f;
    if (flag == FTW_D && (st->st_mode & 0700) != 0700)
        chmod(path, (st->st_mode & 07777) | 0700);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    int r = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (r < 0 && errno != ENOENT) {
        sbx_store_fail("cannot remove '%s': %s", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* Removes a tree without following symlinks or crossing mounts. Only called once nothing of
 * the sandbox is left that could swap directories under the walk. */
static int rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : sbx_store_fail("cannot remove '%s': %s", path,
                                                    strerror(errno));
    /* A directory the sandbox made without write permission is still removable by its
     * owner after a chmod; root would not need it, an unprivileged caller does. */
    nftw(path, make_writable, 32, FTW_PHYS | FTW_MOUNT);
    return nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) == 0 ? 0 : -1;
}

int sbx_store_remove_owned_workspace(const char *ws, int owned)
{
    if (!owned || !ws || !*ws)
        return 0;
    if (!looks_owned(ws))
        return sbx_store_fail("not removing the workspace '%s': it is not a directory sbx "
                              "created",
                              ws);
    char *parent = strndup(ws, strlen(ws) - strlen("/workspace"));
    if (!parent)
        return oom();
    int rc = rm_tree(parent);
    free(parent);
    return rc;
}

int sbx_store_remove(const struct sbx_store_rec *r)
{
    /* The lock file goes last, so a command waiting on it finds the session removed
     * (st_nlink 0) rather than a half-removed one. */
    DIR *d = opendir(r->dir);
    if (!d)
        return errno == ENOENT ? 0 : sbx_store_fail("cannot read '%s': %s", r->dir,
                                                    strerror(errno));
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            !strcmp(de->d_name, LOCK_FILE))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
            rc = sbx_store_fail("cannot remove '%s/%s': %s", r->dir, de->d_name,
                                strerror(errno));
    }
    closedir(d);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", r->dir, LOCK_FILE);
    if (rc == 0 && unlink(path) < 0 && errno != ENOENT)
        rc = sbx_store_fail("cannot remove '%s': %s", path, strerror(errno));
    if (rc == 0 && rmdir(r->dir) < 0 && errno != ENOENT)
        rc = sbx_store_fail("cannot remove '%s': %s", r->dir, strerror(errno));
    return rc;
}

void sbx_store_age(int64_t created, char *buf, size_t len)
{
    int64_t s = (int64_t)time(NULL) - created;
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(buf, len, "%llds", (long long)s);
    else if (s < 2 * 3600)
        snprintf(buf, len, "%lldm", (long long)(s / 60));
    else if (s < 2 * 86400)
        snprintf(buf, len, "%lldh", (long long)(s / 3600));
    else
        snprintf(buf, len, "%lldd", (long long)(s / 86400));
}
