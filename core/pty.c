/* pty.c — the session's interactive processes (spec SESSION.md §5).
 *
 * The registry maps process ids to backend processes. Invariants:
 *   1. At most SBX_PTY_MAX_PROCESSES entries after an insert, unless every entry is among the
 *      SBX_PTY_PROTECTED_RECENT most recently used (then nothing is pruned, §5.5).
 *   2. An id is in the registry until the update reporting its exit was built, or until it
 *      was pruned or terminated; a lookup after that fails with SBX_EPTY_NOT_FOUND.
 *   3. An entry is referenced by the registry and by every call using it; the backend process
 *      is freed by the last reference, so terminate_all racing a write never frees what the
 *      write uses. Killing does not wait for references: it is asynchronous (pty_kill).
 * The registry lock is never held across a backend call that can block.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core.h"
#include "error_internal.h"
#include "util.h"

struct entry {
    int id;
    int tty;
    int in_registry;
    unsigned refs;
    uint64_t last_used;
    uint64_t dropped_seen; /* backend drops already reported */
    size_t cap;            /* buffer bytes: also bounds one call's collection */
    const struct sbx_backend_ops *ops;
    struct sbx_backend_pty *bp;
};

struct sbx_pty_reg {
    pthread_mutex_t lock;
    struct entry **e;
    size_t n, alloc;
};

struct sbx_pty_reg *sbx__pty_reg_new(void)
{
    struct sbx_pty_reg *r = calloc(1, sizeof(*r));
    if (r)
        pthread_mutex_init(&r->lock, NULL);
    return r;
}

static void unref(struct sbx_pty_reg *r, struct entry *e)
{
    pthread_mutex_lock(&r->lock);
    int last = --e->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (last) {
        e->ops->pty_free(e->bp);
        free(e);
    }
}

/* Takes e out of the registry (lock held). Returns whether it was there; the registry's
 * reference is then the caller's to drop. */
static int detach_locked(struct sbx_pty_reg *r, struct entry *e)
{
    if (!e->in_registry)
        return 0;
    for (size_t i = 0; i < r->n; i++) {
        if (r->e[i] == e) {
            r->e[i] = r->e[--r->n];
            break;
        }
    }
    e->in_registry = 0;
    return 1;
}

void sbx_pty_terminate_all(sbx_session *s)
{
    struct sbx_pty_reg *r = s ? sbx__session_pty(s) : NULL;
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    struct entry **all = r->e;
    size_t n = r->n;
    r->e = NULL;
    r->n = r->alloc = 0;
    for (size_t i = 0; i < n; i++)
        all[i]->in_registry = 0;
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < n; i++) {
        all[i]->ops->pty_kill(all[i]->bp);
        unref(r, all[i]);
    }
    free(all);
}

void sbx__pty_reg_free(struct sbx_pty_reg *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        unref(r, r->e[i]);
    free(r->e);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int sbx_session_supports_pty(const sbx_session *s)
{
    return s != NULL;
}

/* ---- the spec's rules ---------------------------------------------------------------- */

int sbx__pty_yield_ms(int has_yield, double yield_s, int default_ms, int empty_write)
{
    double ms = has_yield ? yield_s * 1000.0 : (double)default_ms;
    long v;
    if (!(ms == ms) || ms < SBX_PTY_YIELD_MIN_MS) /* NaN, negative, tiny */
        v = SBX_PTY_YIELD_MIN_MS;
    else if (ms > SBX_PTY_YIELD_MAX_MS)
        v = SBX_PTY_YIELD_MAX_MS;
    else
        v = (long)ms; /* int(): truncation */
    if (empty_write && v < SBX_PTY_POLL_MIN_MS)
        v = SBX_PTY_POLL_MIN_MS;
    return (int)v;
}

long sbx__pty_prune_pick(const struct sbx_pty_prune_view *v, size_t n)
{
    if (n <= SBX_PTY_PROTECTED_RECENT)
        return -1;
    /* Order indices by last_used (n is at most a few dozen: insertion sort). */
    size_t *ord = malloc(n * sizeof(*ord));
    if (!ord)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && v[ord[j - 1]].last_used > v[i].last_used) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = i;
    }
    size_t unprotected = n - SBX_PTY_PROTECTED_RECENT;
    long pick = (long)ord[0];
    for (size_t k = 0; k < unprotected; k++) {
        if (v[ord[k]].exited) {
            pick = (long)ord[k];
            break;
        }
    }
    free(ord);
    return pick;
}

/* ---- registry -------------------------------------------------------------------------- */

static int random_id(void)
{
    uint32_t x;
    if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
        x = (uint32_t)sbx__now_ns();
    return SBX_PTY_ID_MIN + (int)(x % (SBX_PTY_ID_END - SBX_PTY_ID_MIN));
}

static int id_used(const struct sbx_pty_reg *r, int id)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->e[i]->id == id)
            return 1;
    return 0;
}

/* Inserts e, first pruning one entry when full; *pruned is then the caller's to kill. */
static int insert(struct sbx_pty_reg *r, struct entry *e, struct entry **pruned)
{
    *pruned = NULL;
    pthread_mutex_lock(&r->lock);
    if (r->n >= SBX_PTY_MAX_PROCESSES) {
        struct sbx_pty_prune_view *v = malloc(r->n * sizeof(*v));
        if (v) {
            for (size_t i = 0; i < r->n; i++) {
                struct sbx_backend_pty_status st;
                r->e[i]->ops->pty_status(r->e[i]->bp, &st);
                v[i] = (struct sbx_pty_prune_view){r->e[i]->last_used, st.exited};
            }
            long k = sbx__pty_prune_pick(v, r->n);
            free(v);
            if (k >= 0) {
                *pruned = r->e[k];
                detach_locked(r, *pruned);
            }
        }
    }
    if (r->n == r->alloc) {
        size_t na = r->alloc ? r->alloc * 2 : 8;
        struct entry **ne = realloc(r->e, na * sizeof(*ne));
        if (!ne) {
            pthread_mutex_unlock(&r->lock);
            return -1;
        }
        r->e = ne;
        r->alloc = na;
    }
    do
        e->id = random_id();
    while (id_used(r, e->id));
    e->in_registry = 1;
    e->refs++; /* the registry's */
    r->e[r->n++] = e;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static struct entry *lookup(sbx_session *s, int id, const char *op, sbx_error **err)
{
    struct sbx_pty_reg *r = s ? sbx__session_pty(s) : NULL;
    struct entry *found = NULL;
    if (r) {
        pthread_mutex_lock(&r->lock);
        for (size_t i = 0; i < r->n && !found; i++)
            if (r->e[i]->id == id)
                found = r->e[i];
        if (found)
            found->refs++;
        pthread_mutex_unlock(&r->lock);
    }
    if (!found) {
        sbx_err(err, SBX_EPTY_NOT_FOUND, 0, op, "PTY session not found: %d", id);
        sbx_err_ctx(err, "session_id", "%d", id);
    }
    return found;
}

/* ---- output ------------------------------------------------------------------------------ */

struct collect {
    unsigned char *buf;
    size_t len, alloc, cap;
    uint64_t dropped; /* cut from the front of this call's output to stay within cap */
};

/* Moves everything buffered into c. Past cap, the oldest bytes of this call go, as the
 * backend's ring would drop them: memory stays bounded however long the yield. */
static int drain(struct entry *e, struct collect *c)
{
    for (;;) {
        if (c->alloc - c->len < 65536) {
            size_t na = c->alloc ? c->alloc * 2 : 65536;
            if (na > c->cap + 65536)
                na = c->cap + 65536;
            if (na > c->alloc) {
                unsigned char *nb = realloc(c->buf, na + 1);
                if (!nb)
                    return -1;
                c->buf = nb;
                c->alloc = na;
            }
        }
        size_t n = e->ops->pty_read(e->bp, c->buf + c->len, c->alloc - c->len);
        c->len += n;
        if (c->len > c->cap) {
            size_t cut = c->len - c->cap;
            memmove(c->buf, c->buf + cut, c->cap);
            c->len = c->cap;
            c->dropped += cut;
        }
        if (n == 0)
            return 0;
    }
}

/* §5.4: waits the whole yield unless the process finished and its output was drained. */
static int collect_for(struct entry *e, int yield_ms, struct collect *c)
{
    uint64_t deadline = sbx__now_ns() + (uint64_t)yield_ms * 1000000ull;
    for (;;) {
        if (drain(e, c) < 0)
            return -1;
        if (sbx__now_ns() >= deadline)
            return 0;
        struct sbx_backend_pty_status st;
        e->ops->pty_status(e->bp, &st);
        if (st.exited)
            return drain(e, c);
        e->ops->pty_wait(e->bp, deadline);
    }
}

/* §5.3: builds the update; reports the exit once and forgets the id. */
static int finalise(sbx_session *s, struct entry *e, struct collect *c, int has_tokens,
                    int64_t max_tokens, const char *op, sbx_pty_update **out, sbx_error **err)
{
    struct sbx_pty_reg *r = sbx__session_pty(s);
    struct sbx_backend_pty_status st;
    e->ops->pty_status(e->bp, &st);
    /* The exit may have been seen after the last drain: its output is all buffered now. */
    if (st.exited && drain(e, c) < 0)
        return sbx_err(err, SBX_ENOMEM, 0, op, "out of memory");
    sbx_pty_update *u = calloc(1, sizeof(*u));
    size_t clean_len = 0;
    char *clean = sbx__utf8_sanitize(c->buf ? c->buf : (const unsigned char *)"", c->len,
                                     &clean_len);
    if (!u || !clean) {
        free(u);
        free(clean);
        return sbx_err(err, SBX_ENOMEM, 0, op, "out of memory");
    }
    u->original_token_count = -1;
    if (has_tokens) {
        char *cut = NULL;
        size_t cut_len = 0;
        uint64_t budget = max_tokens <= 0 ? 0 : (uint64_t)max_tokens;
        budget = budget > UINT64_MAX / 4 ? UINT64_MAX : budget * 4;
        if (sbx__truncate_budget(clean, clean_len, budget, &cut, &cut_len,
                                 &u->original_token_count) < 0) {
            free(u);
            free(clean);
            return sbx_err(err, SBX_ENOMEM, 0, op, "out of memory");
        }
        free(clean);
        clean = cut;
        clean_len = cut_len;
    }
    u->output = (unsigned char *)clean;
    u->output_len = clean_len;
    u->dropped_bytes = st.dropped - e->dropped_seen + c->dropped;
    e->dropped_seen = st.dropped;
    if (st.exited) {
        u->exited = 1;
        u->exit_code = st.exit_code;
        pthread_mutex_lock(&r->lock);
        int was = detach_locked(r, e);
        pthread_mutex_unlock(&r->lock);
        if (was)
            unref(r, e); /* the registry's reference */
    } else {
        u->process_id = e->id;
    }
    *out = u;
    return 0;
}

void sbx_pty_update_free(sbx_pty_update *u)
{
    if (!u)
        return;
    free(u->output);
    free(u);
}

/* ---- calls --------------------------------------------------------------------------------- */

static int check_start_opts(const sbx_pty_opts *o, sbx_error **err)
{
    if (!o)
        return sbx_err(err, SBX_EINVAL, 0, "pty_exec_start", "options are NULL");
    if (o->size != sizeof(*o))
        return sbx_err(err, SBX_EINVAL, 0, "pty_exec_start",
                       "sbx_pty_opts.size is %zu, expected %zu: fill it with SBX_PTY_OPTS_INIT",
                       o->size, sizeof(*o));
    if (o->flags & ~(unsigned)SBX_PTY_FLAGS_ALL)
        return sbx_err(err, SBX_EINVAL, 0, "pty_exec_start", "unknown flags 0x%x", o->flags);
    if (o->rows > 0xffff || o->cols > 0xffff)
        return sbx_err(err, SBX_EINVAL, 0, "pty_exec_start", "window size %ux%u is too large",
                       o->rows, o->cols);
    return 0;
}

int sbx_pty_exec_start(sbx_session *s, const sbx_pty_opts *o, sbx_pty_update **out,
                       sbx_error **err)
{
    *out = NULL;
    int r = check_start_opts(o, err);
    if (r < 0)
        return r;
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "pty_exec_start", "session is NULL");
    sbx_exec_opts xo = SBX_EXEC_OPTS_INIT;
    xo.argv = o->argv;
    xo.shell = o->shell;
    xo.shell_argv = o->shell_argv;
    xo.env = o->env;
    xo.cwd = o->cwd;
    xo.user = o->user;
    char **argv = NULL, **env = NULL, *cwd = NULL;
    struct sbx_backend_pty_req q = {.tty = (o->flags & SBX_PTY_TTY) != 0,
                                    .rows = o->rows,
                                    .cols = o->cols,
                                    .buffer_bytes = o->buffer_bytes};
    if ((r = sbx__session_exec_prep(s, &xo, &argv, &env, &cwd, &q.uid, &q.gid, err)) < 0)
        return r;
    q.argv = argv;
    q.env = env;
    q.cwd = cwd;
    struct entry *e = calloc(1, sizeof(*e));
    const struct sbx_backend_ops *ops = NULL;
    struct sbx_sandbox *sb = e ? sbx__session_acquire(s, &ops, "pty_exec_start", err) : NULL;
    if (!e) {
        r = sbx_err(err, SBX_ENOMEM, 0, "pty_exec_start", "out of memory");
    } else if (!sb) {
        r = SBX_ESTATE;
    } else {
        r = ops->pty_start(sb, &q, &e->bp, err);
        sbx__session_release(s);
    }
    sbx__strv_free(argv);
    sbx__strv_free(env);
    free(cwd);
    if (r < 0) {
        free(e);
        return r;
    }
    e->ops = ops;
    e->tty = q.tty;
    e->cap = o->buffer_bytes ? o->buffer_bytes : SBX_PTY_DEFAULT_BUFFER;
    e->last_used = sbx__now_ns();
    e->refs = 1; /* this call's */
    struct sbx_pty_reg *reg = sbx__session_pty(s);
    struct entry *pruned = NULL;
    int ir = insert(reg, e, &pruned);
    /* Killed outside the lock (§5.2 step 4), whether or not the insert then succeeded. */
    if (pruned) {
        pruned->ops->pty_kill(pruned->bp);
        unref(reg, pruned);
    }
    if (ir < 0) {
        unref(reg, e);
        return sbx_err(err, SBX_ENOMEM, 0, "pty_exec_start", "out of memory");
    }
    int yield = sbx__pty_yield_ms(o->flags & SBX_PTY_YIELD, o->yield_time_s,
                                  SBX_PTY_START_YIELD_MS, 0);
    struct collect c = {.cap = e->cap};
    if (collect_for(e, yield, &c) < 0)
        r = sbx_err(err, SBX_ENOMEM, 0, "pty_exec_start", "out of memory");
    else
        r = finalise(s, e, &c, (o->flags & SBX_PTY_MAX_TOKENS) != 0, o->max_output_tokens,
                     "pty_exec_start", out, err);
    free(c.buf);
    unref(reg, e);
    return r;
}

static int write_bytes(struct entry *e, const void *buf, size_t len, const char *op,
                       sbx_error **err)
{
    if (!e->tty)
        return sbx_err(err, SBX_EINVAL, 0, op, "stdin is not available for this process");
    int w = e->ops->pty_write(e->bp, buf, len);
    /* The process is already gone: its exit is what the caller will see. */
    if (w == -EIO || w == -EBADF || w == -EPIPE || w == -ECONNRESET)
        w = 0;
    if (w < 0)
        return sbx_err(err, SBX_EIO, -w, op, "write to the process's terminal");
    return 0;
}

int sbx_pty_write_stdin(sbx_session *s, int process_id, const void *chars, size_t len,
                        const sbx_pty_write_opts *o, sbx_pty_update **out, sbx_error **err)
{
    *out = NULL;
    const char *op = "pty_write_stdin";
    sbx_pty_write_opts def = SBX_PTY_WRITE_OPTS_INIT;
    if (!o)
        o = &def;
    if (o->size != sizeof(*o))
        return sbx_err(err, SBX_EINVAL, 0, op,
                       "sbx_pty_write_opts.size is %zu, expected %zu: use "
                       "SBX_PTY_WRITE_OPTS_INIT",
                       o->size, sizeof(*o));
    if (o->flags & ~(unsigned)(SBX_PTY_YIELD | SBX_PTY_MAX_TOKENS))
        return sbx_err(err, SBX_EINVAL, 0, op, "unknown flags 0x%x", o->flags);
    if (len && !chars)
        return sbx_err(err, SBX_EINVAL, 0, op, "chars is NULL");
    struct entry *e = lookup(s, process_id, op, err);
    if (!e)
        return SBX_EPTY_NOT_FOUND;
    struct sbx_pty_reg *reg = sbx__session_pty(s);
    int r = 0;
    if (len) {
        if ((r = write_bytes(e, chars, len, op, err)) < 0) {
            unref(reg, e);
            return r;
        }
        /* Let the command react before collecting (§5.6). */
        struct timespec pause = {0, SBX_PTY_WRITE_PAUSE_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    int yield = sbx__pty_yield_ms(o->flags & SBX_PTY_YIELD, o->yield_time_s,
                                  SBX_PTY_WRITE_YIELD_MS, len == 0);
    struct collect c = {.cap = e->cap};
    if (collect_for(e, yield, &c) < 0) {
        r = sbx_err(err, SBX_ENOMEM, 0, op, "out of memory");
    } else {
        pthread_mutex_lock(&reg->lock);
        e->last_used = sbx__now_ns();
        pthread_mutex_unlock(&reg->lock);
        r = finalise(s, e, &c, (o->flags & SBX_PTY_MAX_TOKENS) != 0, o->max_output_tokens, op,
                     out, err);
    }
    free(c.buf);
    unref(reg, e);
    return r;
}

int sbx_pty_resize(sbx_session *s, int process_id, unsigned rows, unsigned cols,
                   sbx_error **err)
{
    struct entry *e = lookup(s, process_id, "pty_resize", err);
    if (!e)
        return SBX_EPTY_NOT_FOUND;
    int r = e->ops->pty_resize(e->bp, rows, cols);
    unref(sbx__session_pty(s), e);
    if (r < 0)
        return sbx_err(err, SBX_EINVAL, -r, "pty_resize",
                       "cannot set the window size to %ux%u (%s)", rows, cols,
                       r == -ENOTTY ? "the process has no terminal" : "bad size");
    return 0;
}

int sbx_pty_write(sbx_session *s, int process_id, const void *buf, size_t len, sbx_error **err)
{
    if (len && !buf)
        return sbx_err(err, SBX_EINVAL, 0, "pty_write", "buf is NULL");
    struct entry *e = lookup(s, process_id, "pty_write", err);
    if (!e)
        return SBX_EPTY_NOT_FOUND;
    int r = len ? write_bytes(e, buf, len, "pty_write", err) : 0;
    unref(sbx__session_pty(s), e);
    return r;
}

int sbx_pty_read(sbx_session *s, int process_id, void *buf, size_t cap, int timeout_ms,
                 size_t *n, int *exited, int *exit_code, sbx_error **err)
{
    *n = 0;
    if (exited)
        *exited = 0;
    struct entry *e = lookup(s, process_id, "pty_read", err);
    if (!e)
        return SBX_EPTY_NOT_FOUND;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                       : sbx__now_ns() + (uint64_t)timeout_ms * 1000000ull;
    e->ops->pty_wait(e->bp, deadline);
    /* Status first: once it says exited, nothing more can arrive after the read below. */
    struct sbx_backend_pty_status st;
    e->ops->pty_status(e->bp, &st);
    *n = e->ops->pty_read(e->bp, buf, cap);
    struct sbx_pty_reg *reg = sbx__session_pty(s);
    if (*n == 0 && st.exited) {
        if (exited)
            *exited = 1;
        if (exit_code)
            *exit_code = st.exit_code;
        pthread_mutex_lock(&reg->lock);
        int was = detach_locked(reg, e);
        pthread_mutex_unlock(&reg->lock);
        if (was)
            unref(reg, e);
    }
    unref(reg, e);
    return 0;
}
