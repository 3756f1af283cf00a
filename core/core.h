/* core.h — internals of the session layer shared across core/ files. */
#ifndef SBX_CORE_H
#define SBX_CORE_H

#include <pthread.h>

#include <sbx/sbx.h>

#include "backend_ops.h"

/* command.c: POSIX shell quoting of one word (Python shlex.quote rules). malloc'd. */
char *sbx__shell_quote(const char *s);

/* workspace.c */
int sbx__workspace_make_temp(uint32_t owner_uid, uint32_t owner_gid, char **dir_out,
                             char **ws_out, sbx_error **err);
int sbx__workspace_check(const char *path, sbx_error **err);
/* Validates an absolute sandbox path (no "..", not "/" unless allowed). 0 or -EINVAL. */
int sbx__abs_path_ok(const char *p, int allow_root);

/* seccomp_policy.c: text <-> struct sbx_sc_policy. allow_ptrace drops the ptrace rules. */
int sbx__sc_parse(const char *text, int allow_ptrace, struct sbx_sc_policy *out,
                  sbx_error **err);
void sbx__sc_free(struct sbx_sc_policy *p);
char *sbx__sc_print(const struct sbx_sc_policy *p);

/* session.c: a fresh UUID v4 string into buf[37]. */
void sbx__uuid4(char buf[37]);

/* Per-session state of archive.c, guarded by its own lock. */
struct sbx_session_files {
    pthread_mutex_t lock;
    int has_limits;
    sbx_archive_limits limits;
    char **skip; /* runtime persist skip paths (NULL-terminated), normalised */
    size_t n_skip;
};
struct sbx_session_files *sbx__session_files(sbx_session *s);

/* archive.c: persist and hydrate with extra skip paths (manifest ephemeral entries) and, for
 * persist, a hook that sees every byte of the tar stream (for the fingerprint digest). */
struct sbx_persist_hooks {
    void (*on_bytes)(void *arg, const void *buf, size_t n);
    void *arg;
};
int sbx__persist(sbx_session *s, int out_fd, const char *const *extra_skip,
                 struct sbx_persist_hooks *hooks, sbx_error **err);
int sbx__hydrate(sbx_session *s, int in_fd, const char *const *extra_skip, sbx_error **err);

/* Per-session lifecycle state (lifecycle.c): the state object, pre-stop hooks, accounts. */
struct sbx_state;
struct sbx_life_hook {
    sbx_pre_stop_hook fn;
    void *arg;
};
struct sbx_life_account {
    char *name;
    uint32_t uid, gid;
};
struct sbx_session_life {
    pthread_mutex_t lock;       /* state, hooks */
    pthread_mutex_t close_lock; /* serialises sbx_session_close() */
    struct sbx_state *st;
    struct sbx_life_hook *hooks;
    size_t n_hooks;
    int hooks_ran, hooks_failed;
    int preserved;              /* resumed onto a workspace that still exists */
    struct sbx_life_account *accounts;
    size_t n_accounts;
    char **account_lines;       /* "name:uid:gid" for the backend */
    char **group_lines;         /* "name:gid:member,member" */
};
struct sbx_session_life *sbx__session_life(sbx_session *s);
int sbx__life_init(sbx_session *s, const sbx_session_opts *o, sbx_error **err);
void sbx__life_clear(struct sbx_session_life *l);
int sbx__life_needs_materialize(sbx_session *s);
/* A manifest account's ids by name; 0 or -1 when there is none. */
int sbx__life_user(sbx_session *s, const char *name, uint32_t *uid, uint32_t *gid);
/* materialize.c: start()'s workspace step (snapshot restore or manifest apply). */
int sbx__materialize(sbx_session *s, sbx_error **err);
/* lifecycle.c: the fingerprint of the live workspace (hex). */
int sbx__fingerprint(sbx_session *s, char hex[65], sbx_error **err);

/* session.c setters for lifecycle.c. */
const char *sbx__session_id_buf(sbx_session *s, const char *id);
int sbx__session_set_root(sbx_session *s, const char *root);
int sbx__session_set_workspace(sbx_session *s, const char *ws);
int sbx__session_set_owned_dir(sbx_session *s, const char *dir);
int sbx__session_prepend_env(sbx_session *s, char **env); /* takes env's strings */
int sbx__session_running_flag(sbx_session *s);

/* session.c, for the other core files: a reference on the running sandbox (NULL with
 * SBX_ESTATE when not running; release it with sbx__session_release), and user names to ids. */
struct sbx_sandbox *sbx__session_acquire(sbx_session *s, const struct sbx_backend_ops **ops,
                                         const char *op, sbx_error **err);
void sbx__session_release(sbx_session *s);
int sbx__session_user(const sbx_session *s, const char *user, uint32_t *uid, uint32_t *gid,
                      sbx_error **err);
uint32_t sbx__session_sandbox_uid(const sbx_session *s);

#endif
