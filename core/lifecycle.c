/* lifecycle.c — the state object, stop(), pre-stop hooks, close(), manifest accounts.
 *
 * The ordering rules (spec SESSION.md §3): stop() persists only (the sandbox keeps running);
 * shutdown() tears down only (the workspace stays); close() = hooks, then stop() unless a hook
 * has ever failed in this session, then shutdown() unless stop() failed.
 */
#include <errno.h>
#include <json-c/json.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "error_internal.h"
#include "manifest.h"
#include "paths.h"
#include "snapshot_store.h"
#include "state.h"
#include "util.h"

#define FINGERPRINT_VERSION "sbx_workspace_tar_sha256_v1"
#define FIRST_ACCOUNT_UID   1001u
#define FIRST_GROUP_GID     3000u

void sbx__life_clear(struct sbx_session_life *l)
{
    sbx__state_free(l->st);
    l->st = NULL;
    free(l->hooks);
    l->hooks = NULL;
    for (size_t i = 0; i < l->n_accounts; i++)
        free(l->accounts[i].name);
    free(l->accounts);
    l->accounts = NULL;
    sbx__strv_free(l->account_lines);
    sbx__strv_free(l->group_lines);
    l->account_lines = l->group_lines = NULL;
}

static int oom(sbx_error **err)
{
    return sbx_err(err, SBX_ENOMEM, ENOMEM, "create", "out of memory");
}

/* A workspace sbx created is <tmp>/sbx-ws-XXXXXX/workspace: only such a path from a state
 * object may be treated as owned (and so removed), never an arbitrary directory. */
static int looks_owned(const char *ws)
{
    size_t n = strlen(ws);
    const char *leaf = "/workspace";
    if (n <= strlen(leaf) || strcmp(ws + n - strlen(leaf), leaf) != 0)
        return 0;
    const char *end = ws + n - strlen(leaf);
    const char *start = end;
    while (start > ws && start[-1] != '/')
        start--;
    return end - start == 13 && !strncmp(start, "sbx-ws-", 7);
}

static int reserved_name(const char *n)
{
    return !strcmp(n, "root") || !strcmp(n, SBX_SANDBOX_USER) || !strcmp(n, "nobody") ||
           !strcmp(n, "nogroup") || !strcmp(n, "sbx-agent");
}

static int add_account(struct sbx_session_life *l, const char *name)
{
    for (size_t i = 0; i < l->n_accounts; i++)
        if (!strcmp(l->accounts[i].name, name))
            return 0;
    struct sbx_life_account *nv = realloc(l->accounts, (l->n_accounts + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    l->accounts = nv;
    struct sbx_life_account *a = &l->accounts[l->n_accounts];
    if (!(a->name = strdup(name)))
        return -1;
    a->uid = a->gid = FIRST_ACCOUNT_UID + (uint32_t)l->n_accounts;
    l->n_accounts++;
    return 0;
}

/* Manifest users and groups become lines of the sandbox's own /etc/passwd and /etc/group,
 * written by the agent at every start (so they are re-applied on resume). */
static int plan_accounts(sbx_session *s, struct sbx_manifest *m, int range_mapped,
                         sbx_error **err)
{
    struct sbx_session_life *l = sbx__session_life(s);
    if (!m->n_users && !m->n_groups)
        return 0;
    if (!range_mapped)
        return sbx_err(err, SBX_ECONFIG, 0, "create",
                       "manifest users and groups need sbx to run as root: an unprivileged "
                       "sandbox maps a single id");
    for (size_t i = 0; i < m->n_users; i++)
        if (add_account(l, m->users[i]) < 0)
            return oom(err);
    for (size_t g = 0; g < m->n_groups; g++)
        for (size_t i = 0; i < m->groups[g].n_users; i++)
            if (add_account(l, m->groups[g].users[i]) < 0)
                return oom(err);
    for (size_t i = 0; i < l->n_accounts; i++)
        if (reserved_name(l->accounts[i].name))
            return sbx_err(err, SBX_ECONFIG, 0, "create",
                           "manifest user '%s' clashes with a built-in account",
                           l->accounts[i].name);
    for (size_t g = 0; g < m->n_groups; g++)
        if (reserved_name(m->groups[g].name))
            return sbx_err(err, SBX_ECONFIG, 0, "create",
                           "manifest group '%s' clashes with a built-in group", m->groups[g].name);
    l->account_lines = calloc(l->n_accounts + 1, sizeof(char *));
    l->group_lines = calloc(m->n_groups + 1, sizeof(char *));
    if (!l->account_lines || !l->group_lines)
        return oom(err);
    for (size_t i = 0; i < l->n_accounts; i++)
        if (asprintf(&l->account_lines[i], "%s:%u:%u", l->accounts[i].name, l->accounts[i].uid,
                     l->accounts[i].gid) < 0) {
            l->account_lines[i] = NULL;
            return oom(err);
        }
    for (size_t g = 0; g < m->n_groups; g++) {
        size_t len = strlen(m->groups[g].name) + 32;
        for (size_t i = 0; i < m->groups[g].n_users; i++)
            len += strlen(m->groups[g].users[i]) + 1;
        char *line = malloc(len);
        if (!line)
            return oom(err);
        int n = snprintf(line, len, "%s:%u:", m->groups[g].name, FIRST_GROUP_GID + (unsigned)g);
        for (size_t i = 0; i < m->groups[g].n_users; i++)
            n += snprintf(line + n, len - (size_t)n, "%s%s", i ? "," : "", m->groups[g].users[i]);
        l->group_lines[g] = line;
    }
    return 0;
}

int sbx__life_user(sbx_session *s, const char *name, uint32_t *uid, uint32_t *gid)
{
    struct sbx_session_life *l = sbx__session_life(s);
    for (size_t i = 0; i < l->n_accounts; i++)
        if (!strcmp(l->accounts[i].name, name)) {
            *uid = l->accounts[i].uid;
            *gid = l->accounts[i].gid;
            return 0;
        }
    return -1;
}

static int env_from_manifest(sbx_session *s, const struct sbx_manifest *m, sbx_error **err)
{
    if (!m->n_env)
        return 0;
    char **env = calloc(m->n_env + 1, sizeof(*env));
    if (!env)
        return oom(err);
    for (size_t i = 0; i < m->n_env; i++)
        if (asprintf(&env[i], "%s=%s", m->env[i].name, m->env[i].value) < 0) {
            env[i] = NULL;
            sbx__strv_free(env);
            return oom(err);
        }
    if (sbx__session_prepend_env(s, env) < 0) {
        sbx__strv_free(env);
        return oom(err);
    }
    return 0;
}

static int new_state(sbx_session *s, const sbx_session_opts *o, struct sbx_state **out,
                     sbx_error **err)
{
    struct sbx_state *st = calloc(1, sizeof(*st));
    if (!st)
        return oom(err);
    *out = st;
    snprintf(st->session_id, sizeof(st->session_id), "%s", sbx_session_id(s));
    int r = o->manifest_json ? sbx__manifest_from_json(o->manifest_json, &st->manifest, err) : 0;
    if (r < 0)
        return r;
    if (!st->manifest && !(st->manifest = sbx__manifest_new_default()))
        return oom(err);
    if (!o->manifest_json && o->root) {
        char *root = strdup(o->root);
        if (!root)
            return oom(err);
        free(st->manifest->root);
        st->manifest->root = root;
    }
    if (o->snapshot_dir) {
        if (o->snapshot_dir[0] != '/')
            return sbx_err(err, SBX_EINVAL, 0, "create",
                           "snapshot_dir must be an absolute path: '%s'", o->snapshot_dir);
        st->snap_kind = SBX_SNAP_LOCAL;
        if (!(st->snap_base = strdup(o->snapshot_dir)))
            return oom(err);
    }
    if (!(st->snap_id = strdup(o->snapshot_id ? o->snapshot_id : st->session_id)))
        return oom(err);
    if (st->snap_kind == SBX_SNAP_LOCAL && (r = sbx__snap_id_check(st->snap_id, err)) < 0)
        return r;
    if (o->workspace && !(st->workspace = strdup(o->workspace)))
        return oom(err);
    st->workspace_owned = !o->workspace;
    if (o->n_exposed_ports > 0) {
        /* Through the state's own normalisation, so both paths give the same rules. */
        if (!o->exposed_ports)
            return sbx_err(err, SBX_EINVAL, 0, "create", "n_exposed_ports without exposed_ports");
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < o->n_exposed_ports; i++)
            json_object_array_add(a, json_object_new_int64(o->exposed_ports[i]));
        r = a ? sbx__ports_from_jobj(a, &st->ports, &st->n_ports, err) : oom(err);
        json_object_put(a);
        if (r < 0)
            return r;
    }
    return 0;
}

int sbx__life_init(sbx_session *s, const sbx_session_opts *o, sbx_error **err)
{
    struct sbx_session_life *l = sbx__session_life(s);
    struct sbx_state *st = NULL;
    int r;
    if (o->state_json) {
        if ((r = sbx__state_from_json(o->state_json, &st, err)) < 0)
            return r;
        l->st = st;
        sbx__session_id_buf(s, st->session_id);
        if (st->snap_kind == SBX_SNAP_LOCAL && (r = sbx__snap_id_check(st->snap_id, err)) < 0)
            return r;
        struct stat sb;
        if (!o->workspace && st->workspace && stat(st->workspace, &sb) == 0 &&
            S_ISDIR(sb.st_mode)) {
            /* The workspace is still there: this start reuses it (spec "preserved"). */
            if (sbx__session_set_workspace(s, st->workspace) < 0)
                return oom(err);
            if (st->workspace_owned && looks_owned(st->workspace)) {
                char *copy = strdup(st->workspace);
                if (!copy || sbx__session_set_owned_dir(s, dirname(copy)) < 0) {
                    free(copy);
                    return oom(err);
                }
                free(copy);
            }
            l->preserved = 1;
        } else {
            free(st->workspace);
            st->workspace = o->workspace ? strdup(o->workspace) : NULL;
            st->workspace_owned = !o->workspace;
            st->root_ready = 0;
        }
    } else {
        r = new_state(s, o, &st, err);
        l->st = st;
        if (r < 0)
            return r;
    }
    const char *root = st->manifest->root;
    if (sbx__abs_path_ok(root, 0) < 0)
        return sbx_err(err, SBX_EINVAL, 0, "create",
                       "sandbox workspace root must be absolute, normal and not '/': '%s'", root);
    if (sbx__session_set_root(s, root) < 0)
        return oom(err);
    struct sbx_backend_ids ids;
    sbx__ns_backend_ops.ids(&ids);
    if ((r = plan_accounts(s, st->manifest, ids.range_mapped, err)) < 0)
        return r;
    return env_from_manifest(s, st->manifest, err);
}

int sbx__life_needs_materialize(sbx_session *s)
{
    struct sbx_state *st = sbx__session_life(s)->st;
    return st->snap_kind != SBX_SNAP_NOOP || st->manifest->n_entries > 0 ||
           sbx__session_life(s)->preserved;
}

/* ---- fingerprint ---------------------------------------------------------------------- */

static void hash_bytes(void *arg, const void *buf, size_t n)
{
    EVP_DigestUpdate(arg, buf, n);
}

static void hex_of(const unsigned char *d, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* sha256("<tar sha256>\n<manifest digest>\n") from a finished tar digest. */
static int combine(EVP_MD_CTX *tar, const struct sbx_manifest *m, char hex[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    char tar_hex[65], man_hex[65], line[140];
    if (EVP_DigestFinal_ex(tar, d, &n) != 1 || sbx__manifest_digest(m, man_hex) < 0)
        return -1;
    hex_of(d, n, tar_hex);
    int len = snprintf(line, sizeof(line), "%s\n%s\n", tar_hex, man_hex);
    sbx__sha256_buf(line, (size_t)len, hex);
    return 0;
}

/* Persists to out_fd (or nowhere, out_fd < 0) and computes the fingerprint on the way. */
static int persist_hashed(sbx_session *s, int out_fd, char hex[65], sbx_error **err)
{
    struct sbx_state *st = sbx__session_life(s)->st;
    char **eph = sbx__manifest_ephemeral_paths(st->manifest);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int null_fd = -1;
    int r;
    if (!eph || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        r = oom(err);
        goto out;
    }
    if (out_fd < 0 && (out_fd = null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
        r = sbx_err(err, SBX_EIO, errno, "stop", "cannot open /dev/null");
        goto out;
    }
    struct sbx_persist_hooks hooks = {.on_bytes = hash_bytes, .arg = ctx};
    r = sbx__persist(s, out_fd, (const char *const *)eph, &hooks, err);
    if (r == 0 && combine(ctx, st->manifest, hex) < 0)
        r = oom(err);
out:
    if (null_fd >= 0)
        close(null_fd);
    EVP_MD_CTX_free(ctx);
    sbx__strv_free(eph);
    return r;
}

int sbx__fingerprint(sbx_session *s, char hex[65], sbx_error **err)
{
    return persist_hashed(s, -1, hex, err);
}

/* ---- stop, hooks, close ------------------------------------------------------------------- */

static int stop_err(sbx_session *s, sbx_error **err, sbx_error *cause)
{
    int r = sbx_err(err, SBX_EWORKSPACE_STOP, sbx_error_errno(cause), "stop",
                    "failed to stop session: %s", sbx_error_message(cause));
    sbx_err_ctx(err, "path", "%s", sbx_session_root(s));
    sbx_err_ctx(err, "cause_code", "%s", sbx_code_name(sbx_error_code(cause)));
    for (size_t i = 0; i < sbx_error_context_count(cause); i++)
        sbx_err_ctx(err, sbx_error_context_key(cause, i), "%s",
                    sbx_error_context_value(cause, i));
    sbx_error_free(cause);
    return r;
}

int sbx__session_stop_raw(sbx_session *s, sbx_error **err)
{
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "stop", "session is NULL");
    if (!sbx__session_running_flag(s))
        return sbx_err(err, SBX_ESTATE, 0, "stop", "session %s is not running",
                       sbx_session_id(s));
    /* Spec §3.4: interactive processes end before the workspace is persisted. */
    sbx_pty_terminate_all(s);
    struct sbx_session_life *l = sbx__session_life(s);
    struct sbx_state *st = l->st;
    if (st->snap_kind == SBX_SNAP_NOOP)
        return 0;
    struct sbx_snap_writer *w = NULL;
    int fd = -1;
    char hex[65];
    sbx_error *cause = NULL;
    int r = sbx__snap_local_begin(st->snap_base, st->snap_id, &w, &fd, &cause);
    if (r == 0) {
        r = persist_hashed(s, fd, hex, &cause);
        int c = sbx__snap_local_commit(w, r == 0, r == 0 ? &cause : NULL);
        if (r == 0)
            r = c;
    }
    pthread_mutex_lock(&l->lock);
    free(st->fingerprint);
    free(st->fingerprint_version);
    st->fingerprint = r == 0 ? strdup(hex) : NULL;
    st->fingerprint_version = r == 0 ? strdup(FINGERPRINT_VERSION) : NULL;
    pthread_mutex_unlock(&l->lock);
    return r < 0 ? stop_err(s, err, cause) : 0;
}

int sbx_session_register_pre_stop_hook(sbx_session *s, sbx_pre_stop_hook fn, void *arg,
                                       sbx_error **err)
{
    if (!s || !fn)
        return sbx_err(err, SBX_EINVAL, 0, "stop", "session and hook are required");
    struct sbx_session_life *l = sbx__session_life(s);
    pthread_mutex_lock(&l->lock);
    struct sbx_life_hook *nv = realloc(l->hooks, (l->n_hooks + 1) * sizeof(*nv));
    if (nv) {
        l->hooks = nv;
        l->hooks[l->n_hooks++] = (struct sbx_life_hook){fn, arg};
        l->hooks_ran = 0;
    }
    pthread_mutex_unlock(&l->lock);
    return nv ? 0 : sbx_err(err, SBX_ENOMEM, ENOMEM, "stop", "out of memory");
}

int sbx_session_run_pre_stop_hooks(sbx_session *s, sbx_error **err)
{
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "stop", "session is NULL");
    struct sbx_session_life *l = sbx__session_life(s);
    pthread_mutex_lock(&l->lock);
    if (l->hooks_ran || !l->n_hooks) {
        pthread_mutex_unlock(&l->lock);
        return 0;
    }
    l->hooks_ran = 1;
    size_t n = l->n_hooks;
    struct sbx_life_hook *hooks = malloc(n * sizeof(*hooks));
    if (hooks)
        memcpy(hooks, l->hooks, n * sizeof(*hooks));
    pthread_mutex_unlock(&l->lock);
    if (!hooks)
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "stop", "out of memory");
    int first = 0;
    sbx_error *first_err = NULL;
    for (size_t i = 0; i < n; i++) {
        sbx_error *e = NULL;
        int r = hooks[i].fn(s, hooks[i].arg, &e);
        if (r < 0 && !first) {
            first = r;
            first_err = e;
        } else {
            sbx_error_free(e);
        }
    }
    free(hooks);
    if (!first)
        return 0;
    pthread_mutex_lock(&l->lock);
    l->hooks_failed = 1;
    pthread_mutex_unlock(&l->lock);
    if (!first_err)
        sbx_err(&first_err, first, 0, "stop", "a pre-stop hook failed");
    if (err)
        *err = first_err;
    else
        sbx_error_free(first_err);
    return first;
}

int sbx_session_close(sbx_session *s, sbx_error **err)
{
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "close", "session is NULL");
    struct sbx_session_life *l = sbx__session_life(s);
    pthread_mutex_lock(&l->close_lock);
    sbx_error *first = NULL;
    int r = sbx_session_run_pre_stop_hooks(s, &first);
    pthread_mutex_lock(&l->lock);
    int failed = l->hooks_failed;
    pthread_mutex_unlock(&l->lock);
    int stop_failed = 0;
    if (r == 0 && !failed && sbx__session_running_flag(s)) {
        r = sbx_session_stop(s, &first);
        stop_failed = r < 0;
    }
    if (!stop_failed) {
        int rs = sbx_session_shutdown(s, r < 0 ? NULL : &first);
        if (r == 0)
            r = rs;
    }
    pthread_mutex_unlock(&l->close_lock);
    if (err)
        *err = first;
    else
        sbx_error_free(first);
    return r;
}

int sbx_session_state_json(sbx_session *s, char **out, sbx_error **err)
{
    *out = NULL;
    if (!s)
        return sbx_err(err, SBX_EINVAL, 0, "create", "session is NULL");
    struct sbx_session_life *l = sbx__session_life(s);
    pthread_mutex_lock(&l->lock);
    struct sbx_state *st = l->st;
    const char *ws = sbx_session_workspace(s);
    if (ws && (!st->workspace || strcmp(st->workspace, ws) != 0)) {
        free(st->workspace);
        st->workspace = strdup(ws);
    }
    *out = sbx__state_to_json(st, 1);
    pthread_mutex_unlock(&l->lock);
    return *out ? 0 : oom(err);
}
