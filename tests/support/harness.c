/* harness.c — see harness.h. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int fds_at_init;

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n - 1; /* the DIR's own fd */
}

void sbx_test_init(void)
{
    fds_at_init = count_fds();
}

void sbx_test_fini(void)
{
    cr_expect_eq(count_fds(), fds_at_init, "the test leaked fds: %d open, %d at start",
                 count_fds(), fds_at_init);
    errno = 0;
    pid_t p = waitpid(-1, NULL, WNOHANG | __WALL);
    cr_expect(p == -1 && errno == ECHILD, "the test left a child process (waitpid -> %d)",
              (int)p);
}

sbx_session *sbx_test_S;

void sbx_test_setup(void)
{
    sbx_test_init();
    sbx_test_S = sbx_test_start(NULL);
}

void sbx_test_teardown(void)
{
    sbx_session_free(sbx_test_S);
    sbx_test_S = NULL;
    sbx_test_fini();
}

int sbx_test_sh_as(sbx_session *s, const char *user, const char *script, sbx_exec_result **res,
                   sbx_error **err)
{
    const char *argv[] = {script, NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.user = user;
    o.timeout_s = 30;
    return sbx_session_exec(s, &o, res, err);
}

sbx_session *sbx_test_start(const sbx_session_opts *opts)
{
    sbx_session_opts def = SBX_SESSION_OPTS_INIT;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    int r = sbx_session_new(opts ? opts : &def, &s, &err);
    cr_assert_eq(r, 0, "session_new: %s", sbx_error_message(err));
    r = sbx_session_start(s, &err);
    if (r == SBX_ENOSYS)
        cr_skip_test("kernel feature missing: %s", sbx_error_message(err));
    cr_assert_eq(r, 0, "session_start: %s [%s]", sbx_error_message(err),
                 sbx_code_name(sbx_error_code(err)));
    return s;
}

int sbx_test_exec(sbx_session *s, const sbx_exec_opts *o, sbx_exec_result **res,
                  sbx_error **err)
{
    return sbx_session_exec(s, o, res, err);
}

sbx_exec_result *sbx_test_sh(sbx_session *s, const char *script)
{
    const char *argv[] = {script, NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.timeout_s = 60;
    sbx_exec_result *res = NULL;
    sbx_error *err = NULL;
    int r = sbx_session_exec(s, &o, &res, &err);
    cr_assert_eq(r, 0, "exec '%s': %s", script, sbx_error_message(err));
    return res;
}

unsigned long sbx_test_pidns_of(pid_t pid)
{
    char p[64];
    struct stat st;
    snprintf(p, sizeof(p), "/proc/%d/ns/pid", (int)pid);
    if (stat(p, &st) < 0)
        return 0;
    return (unsigned long)st.st_ino;
}

int sbx_test_count_in_pidns(unsigned long ino)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        if (sbx_test_pidns_of(atoi(de->d_name)) == ino)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

const char *sbx_test_bin(const char *name)
{
    static char buf[PATH_MAX + 64];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    cr_assert(n > 0);
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    snprintf(buf, sizeof(buf), "%s/%s", self, name);
    return buf;
}

sbx_exec_result *sbx_test_py(sbx_session *s, const char *user, const char *prelude,
                             const char *body)
{
    char *script = NULL;
    if (asprintf(&script, "python3 - <<'EOF'\n%s%s\nEOF\n", prelude, body) < 0) {
        cr_expect_fail("out of memory");
        return NULL;
    }
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    int rc = sbx_test_sh_as(s, user, script, &r, &err);
    free(script);
    if (rc < 0) {
        cr_expect_fail("python3 as %s: %s", user ? user : "sandbox", sbx_error_message(err));
        sbx_error_free(err);
        return NULL;
    }
    return r;
}

void sbx_test_expect_py(sbx_session *s, const char *user, const char *prelude, const char *body,
                        const char *expected)
{
    sbx_exec_result *r = sbx_test_py(s, user, prelude, body);
    if (!r)
        return;
    const char *who = user ? user : "sandbox";
    cr_expect_eq(r->exit_code, 0, "python3 as %s exited %d: %s", who, r->exit_code,
                 (char *)r->err);
    cr_expect_str_eq((char *)r->out, expected, "as %s got:\n%s\nexpected:\n%s\nstderr: %s", who,
                     (char *)r->out, expected, (char *)r->err);
    sbx_exec_result_free(r);
}

size_t sbx_test_read_all(int fd, char *out, size_t cap)
{
    size_t len = 0;
    for (;;) {
        char tmp[4096];
        ssize_t k = read(fd, tmp, sizeof(tmp));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        size_t take = (size_t)k;
        if (len + take > cap - 1)
            take = cap - 1 - len;
        memcpy(out + len, tmp, take);
        len += take;
    }
    out[len] = '\0';
    return len;
}

int sbx_test_run_host(char *const argv[], char *out, size_t cap)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int dn = open("/dev/null", O_RDONLY);
        dup2(dn, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    sbx_test_read_all(p[0], out, cap);
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

void sbx_test_mkdtemp_ws(char *tmpl)
{
    cr_assert_not_null(mkdtemp(tmpl), "mkdtemp %s", tmpl);
    if (geteuid() == 0)
        cr_assert_eq(chown(tmpl, 4242, 4242), 0);
}

int sbx_test_run_with_bind(const char *ws, const char *src, const char *dst, sbx_error **err)
{
    sbx_bind b = {.src = src, .dst = dst, .readonly = 1};
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.workspace = ws;
    o.binds = &b;
    o.n_binds = 1;
    const char *argv[] = {"true", NULL};
    sbx_exec_opts x = SBX_EXEC_OPTS_INIT;
    x.argv = argv;
    sbx_exec_result *r = NULL;
    int rc = sbx_run(&o, &x, &r, err);
    if (rc < 0)
        cr_expect_null(r);
    sbx_exec_result_free(r);
    return rc;
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* Criterion's runner process keeps one allocation of its own until exit, which
 * LeakSanitizer's at-exit check would report. Tests never run in the runner: each runs in a
 * worker process (BoxFort sets BXFI_MAP there), and those keep the full leak check. So the
 * runner's main thread alone is exempted. (A suppression matching libcriterion would hide
 * every leak: every test's stack passes through it.) */
__attribute__((constructor)) static void runner_without_leak_check(void)
{
    if (!getenv("BXFI_MAP"))
        __lsan_disable();
}
#endif
