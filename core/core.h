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
/* What exec would run for o (spec §4.2): argv, env, cwd and ids, all malloc'd. */
int sbx__session_exec_prep(sbx_session *s, const sbx_exec_opts *o, char ***argv, char ***env,
                           char **cwd, uint32_t *uid, uint32_t *gid, sbx_error **err);

/* pty.c: the session's registry of interactive processes (made with the session; free
 * terminates what is left), and the spec's rules as pure functions for the tests. */
struct sbx_pty_reg;
struct sbx_pty_reg *sbx__pty_reg_new(void);
void sbx__pty_reg_free(struct sbx_pty_reg *r);
struct sbx_pty_reg *sbx__session_pty(sbx_session *s);
/* Yield in ms (§5.1): given seconds truncated to ms, or the default; then clamped; then at
 * least SBX_PTY_POLL_MIN_MS for a write of no bytes. */
int sbx__pty_yield_ms(int has_yield, double yield_s, int default_ms, int empty_write);
/* §5.5: the index of the entry to prune among n, or -1 for none. */
struct sbx_pty_prune_view {
    uint64_t last_used;
    int exited;
};
long sbx__pty_prune_pick(const struct sbx_pty_prune_view *v, size_t n);
/* pty_truncate.c */
char *sbx__utf8_sanitize(const unsigned char *in, size_t len, size_t *out_len);
void sbx__split_utf8(const char *s, size_t len, size_t head_budget, size_t tail_budget,
                     size_t *head_len, size_t *tail_off);
int sbx__truncate_budget(const char *text, size_t len, uint64_t budget, char **out,
                         size_t *out_len, int64_t *original_tokens);

/* ports.c: the session's exposed-port forwarder (port_forward.c), made by the first resolve;
 * stop frees it (before the sandbox is destroyed or detached). */
struct sbx_pfwd;
struct sbx_session_ports {
    pthread_mutex_t lock;
    struct sbx_pfwd *fwd;
};
struct sbx_session_ports *sbx__session_ports(sbx_session *s);
void sbx__ports_stop(sbx_session *s);

/* net.c: the session's network mode; init at new (proxy variables into the base env),
 * start once the sandbox is up (the egress proxy), clear at free. */
struct sbx_session_net {
    int mode;     /* enum sbx_net_mode */
    char **allow; /* proxy: NULL-terminated */
    char **hosts;
    char *range;  /* veth: NULL for the default */
};
struct sbx_session_net *sbx__session_net(sbx_session *s);
int sbx__net_init(sbx_session *s, const sbx_session_opts *o, sbx_error **err);
int sbx__net_start(sbx_session *s, const struct sbx_backend_ops *ops, struct sbx_sandbox *sb,
                   int starting, sbx_error **err);
void sbx__net_clear(struct sbx_session_net *n);

/* The instrumented operations' implementations; their public names (instrumented.c) wrap them
 * in events. Everything else in core calls the public names, so that what the spec routes
 * through the wrapper (extract's writes, close's stop and shutdown) emits events. */
int sbx__session_start_raw(sbx_session *s, sbx_error **err);
int sbx__session_stop_raw(sbx_session *s, sbx_error **err);
int sbx__session_shutdown_raw(sbx_session *s, sbx_error **err);
int sbx__session_running_raw(sbx_session *s);
int sbx__session_exec_raw(sbx_session *s, const sbx_exec_opts *o, sbx_exec_result **out,
                          sbx_error **err);
int sbx__session_read_raw(sbx_session *s, const char *path, const char *user, int out_fd,
                          uint64_t *bytes, sbx_error **err);
int sbx__session_write_raw(sbx_session *s, const char *path, const char *user, int in_fd,
                           uint64_t *bytes, sbx_error **err);
int sbx__session_persist_raw(sbx_session *s, int out_fd, sbx_error **err);
int sbx__session_hydrate_raw(sbx_session *s, int in_fd, sbx_error **err);
int sbx__session_resolve_port_raw(sbx_session *s, unsigned port, sbx_endpoint *out,
                                  sbx_error **err);
/* instrumented.c: the session's events binding (session.c holds the pointer). */
struct sbx__ev_bind;
struct sbx__ev_bind **sbx__session_ev(sbx_session *s);
int sbx__session_ev_init(sbx_session *s, const sbx_session_opts *o, sbx_error **err);
int sbx__session_ev_enabled(sbx_session *s);
void sbx__session_ev_free(sbx_session *s);

#endif
