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

/* session.c, for the other core files: a reference on the running sandbox (NULL with
 * SBX_ESTATE when not running; release it with sbx__session_release), and user names to ids. */
struct sbx_sandbox *sbx__session_acquire(sbx_session *s, const struct sbx_backend_ops **ops,
                                         const char *op, sbx_error **err);
void sbx__session_release(sbx_session *s);
int sbx__session_user(const sbx_session *s, const char *user, uint32_t *uid, uint32_t *gid,
                      sbx_error **err);
uint32_t sbx__session_sandbox_uid(const sbx_session *s);

#endif
