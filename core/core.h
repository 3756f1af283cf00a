/* core.h — internals of the session layer shared across core/ files. */
#ifndef SBX_CORE_H
#define SBX_CORE_H

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

#endif
