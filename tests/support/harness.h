/* harness.h — shared helpers for the Criterion suites.
 *
 * Every test that starts sandboxes uses sbx_test_init/sbx_test_fini (as .init/.fini): init
 * records the fds of the test process, fini asserts none leaked and that the test process has
 * no child left. A sandbox's agent is a child of the process that started it, and its exit
 * takes every other process of the sandbox with it (PID 1 of its pid namespace), so that also
 * means no process of a sandbox the test made is left; detached sandboxes, reparented away,
 * are the exception, and their tests check for them themselves. */
#ifndef SBX_TEST_HARNESS_H
#define SBX_TEST_HARNESS_H

#include <criterion/criterion.h>
#include <sbx/sbx.h>

void sbx_test_init(void);
void sbx_test_fini(void);

/* The fixture most suites use: sbx_test_S is a started default session between
 * sbx_test_setup (as .init) and sbx_test_teardown (as .fini), with the leak checks. */
extern sbx_session *sbx_test_S;
void sbx_test_setup(void);
void sbx_test_teardown(void);

/* Runs `script` with sh -c as `user` (NULL: the sandbox user) with a 30 s timeout. */
int sbx_test_sh_as(sbx_session *s, const char *user, const char *script, sbx_exec_result **res,
                   sbx_error **err);

/* Starts a session with a fresh owned workspace (opts may be NULL for defaults). Asserts. */
sbx_session *sbx_test_start(const sbx_session_opts *opts);

/* Runs `script` with sh -c as the sandbox user; asserts the call succeeded. */
sbx_exec_result *sbx_test_sh(sbx_session *s, const char *script);
/* Same, with full options; returns the code and leaves *res / *err to the caller. */
int sbx_test_exec(sbx_session *s, const sbx_exec_opts *o, sbx_exec_result **res,
                  sbx_error **err);

/* The pid-namespace inode of a host pid (0 if gone), and the number of host processes in
 * that pid namespace. */
unsigned long sbx_test_pidns_of(pid_t pid);
int sbx_test_count_in_pidns(unsigned long ino);

/* mkdtemp(tmpl) for a caller workspace: as root it is given to a regular user (uid 4242), as
 * a user's project directory would be, so the sandbox user gets it idmapped. */
void sbx_test_mkdtemp_ws(char *tmpl);

/* sbx_run("true") in workspace `ws` with one read-only bind src -> dst. Returns the code;
 * asserts no result came back when it failed. *err is the caller's. */
int sbx_test_run_with_bind(const char *ws, const char *src, const char *dst, sbx_error **err);

/* Absolute path of a binary built next to the tests (e.g. "sbx"). Static buffer. */
const char *sbx_test_bin(const char *name);

/* Runs the python3 program prelude + body in s as user (NULL: the sandbox user) with sh's
 * 30 s timeout. Returns the result, or NULL after a (non-fatal) failure when the exec itself
 * failed, so a test still reaches its sbx_session_free. */
sbx_exec_result *sbx_test_py(sbx_session *s, const char *user, const char *prelude,
                             const char *body);
/* The same, expecting a clean exit and exactly `expected` on stdout (non-fatal). */
void sbx_test_expect_py(sbx_session *s, const char *user, const char *prelude, const char *body,
                        const char *expected);

/* Reads fd to its end, keeping the first cap-1 bytes in out (NUL-terminated; cap >= 1), and
 * returns how many it kept. */
size_t sbx_test_read_all(int fd, char *out, size_t cap);

/* Runs argv on the host, capturing stdout+stderr into out (NUL-terminated, up to cap) and
 * returning the exit status (128+N for a signal). stdin is /dev/null. */
int sbx_test_run_host(char *const argv[], char *out, size_t cap);

#define SBX_TEST_SKIP_UNLESS(cond, ...)                                                        \
    do {                                                                                       \
        if (!(cond))                                                                           \
            cr_skip_test(__VA_ARGS__);                                                         \
    } while (0)

#endif
