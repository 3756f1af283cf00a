/* The caller's fds never enter the sandbox: a directory or file handed as stdin must not
 * become a path to the host (/proc/self/fd/0/...) or a way to rewrite the caller's file. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

TestSuite(escape_host_fds, .timeout = 60);

#define S     sbx_test_S
#define start sbx_test_setup
#define stop  sbx_test_teardown

static sbx_exec_result *run_with_stdin(const char *script, int fd)
{
    const char *argv[] = {script, NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.user = geteuid() == 0 ? "root" : NULL;
    o.flags = SBX_EXEC_STDIN_FD;
    o.stdin_fd = fd;
    o.timeout_s = 30;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_exec(S, &o, &r, &err), 0, "%s", sbx_error_message(err));
    return r;
}

Test(escape_host_fds, a_directory_on_stdin_is_no_path_to_the_host, .init = start, .fini = stop)
{
    int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert(dir >= 0);
    sbx_exec_result *r = run_with_stdin(
        "cat /proc/self/fd/0/etc/hostname 2>/dev/null && echo READ; "
        "echo x > /proc/self/fd/0/tmp/sbx-escape-probe 2>/dev/null && echo WROTE; "
        "ls /proc/self/fd/0/ 2>/dev/null | grep -q . && echo LISTED; echo end",
        dir);
    close(dir);
    cr_expect_str_eq((char *)r->out, "end\n");
    sbx_exec_result_free(r);
    struct stat st;
    cr_expect_neq(stat("/tmp/sbx-escape-probe", &st), 0, "a file appeared on the host");
    unlink("/tmp/sbx-escape-probe");
}

Test(escape_host_fds, a_file_on_stdin_cannot_be_reopened_for_writing, .init = start, .fini = stop)
{
    char path[] = "/tmp/sbx-test-stdin-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "original\n", 9), 9);
    fchmod(fd, 0666);
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    sbx_exec_result *r = run_with_stdin("cat; echo OVERWRITTEN > /proc/self/fd/0 2>/dev/null; "
                                        "echo end",
                                        fd);
    cr_expect_str_eq((char *)r->out, "original\nend\n", "stdin content still reaches the command");
    sbx_exec_result_free(r);
    char buf[64] = {0};
    cr_assert_eq(pread(fd, buf, sizeof(buf) - 1, 0), 9);
    cr_expect_str_eq(buf, "original\n");
    close(fd);
    unlink(path);
}

Test(escape_host_fds, a_terminal_is_refused_as_stdin)
{
    sbx_test_init();
    int ptm = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    cr_assert(ptm >= 0);
    grantpt(ptm);
    unlockpt(ptm);
    int pts = open(ptsname(ptm), O_RDWR | O_NOCTTY | O_CLOEXEC);
    cr_assert(pts >= 0);
    sbx_session *s = sbx_test_start(NULL);
    const char *argv[] = {"true", NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.flags = SBX_EXEC_STDIN_FD;
    o.stdin_fd = pts;
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_exec(s, &o, &r, &err), SBX_EINVAL);
    cr_expect(strstr(sbx_error_message(err), "terminal") != NULL, "%s", sbx_error_message(err));
    sbx_error_free(err);
    sbx_session_free(s);
    close(pts);
    close(ptm);
    sbx_test_fini();
}
