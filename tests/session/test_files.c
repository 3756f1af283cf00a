/* File operations against real sessions: ls, rm, mkdir, read, write, normalize_path, and
 * confinement (spec TESTS.md sections on files and paths). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "session_util.h"

TestSuite(session_files, .init = sbx_test_setup, .fini = sbx_test_teardown, .timeout = 60);

Test(session_files, write_then_read_round_trip)
{
    sbx_error *err = NULL;
    cr_assert_eq(st_write_str(sbx_test_S, "dir/sub/hello.txt", "hello world\n", &err), 0, "%s",
                 sbx_error_message(err));
    char *got = st_read_str(sbx_test_S, "dir/sub/hello.txt", &err);
    cr_assert_not_null(got, "%s", sbx_error_message(err));
    cr_expect_str_eq(got, "hello world\n");
    free(got);
    /* Visible to commands, owned by the sandbox user, mode 0644. */
    sbx_exec_result *r = sbx_test_sh(sbx_test_S, "stat -c '%U %a' dir/sub/hello.txt");
    cr_expect_str_eq((const char *)r->out, "sandbox 644\n");
    sbx_exec_result_free(r);
    /* An existing file is replaced. */
    cr_assert_eq(st_write_str(sbx_test_S, "dir/sub/hello.txt", "x", &err), 0);
    got = st_read_str(sbx_test_S, "/workspace/dir/sub/hello.txt", &err);
    cr_expect_str_eq(got, "x");
    free(got);
}

Test(session_files, read_errors_are_classified)
{
    sbx_error *err = NULL;
    cr_expect_null(st_read_str(sbx_test_S, "missing.txt", &err));
    cr_expect_eq(sbx_error_code(err), SBX_EWORKSPACE_READ_NOT_FOUND);
    cr_expect_str_eq(sbx_error_context_get(err, "path"), "missing.txt");
    sbx_error_free(err);
    err = NULL;
    sbx_exec_result_free(sbx_test_sh(sbx_test_S, "mkdir d && echo s > secret && chmod 000 secret"));
    cr_expect_null(st_read_str(sbx_test_S, "d", &err));
    cr_expect_eq(sbx_error_code(err), SBX_EWORKSPACE_ARCHIVE_READ, "%s", sbx_error_message(err));
    sbx_error_free(err);
    err = NULL;
    /* Mode 000: the sandbox user may not read it, so the API may not either. */
    cr_expect_null(st_read_str(sbx_test_S, "secret", &err));
    cr_expect_eq(sbx_error_code(err), SBX_EWORKSPACE_ARCHIVE_READ);
    sbx_error_free(err);
}

Test(session_files, paths_outside_the_root_are_refused)
{
    sbx_error *err = NULL;
    char *out = NULL;
    cr_expect_eq(sbx_session_normalize_path(sbx_test_S, "pkg/../secret.txt", &out, &err), 0);
    cr_expect_str_eq(out, "/workspace/secret.txt");
    free(out);
    const char *bad[] = {"../secret.txt", "pkg/../../x", "/etc/passwd", "C:\\tmp\\x"};
    const char *reason[] = {"escape_root", "escape_root", "absolute", "absolute"};
    for (size_t i = 0; i < 4; i++) {
        cr_expect_null(st_read_str(sbx_test_S, bad[i], &err), "%s", bad[i]);
        cr_expect_eq(sbx_error_code(err), SBX_EINVALID_PATH, "%s", bad[i]);
        cr_expect_str_eq(sbx_error_context_get(err, "reason"), reason[i], "%s", bad[i]);
        sbx_error_free(err);
        err = NULL;
        cr_expect_eq(st_write_str(sbx_test_S, bad[i], "x", &err), SBX_EINVALID_PATH);
        sbx_error_free(err);
        err = NULL;
    }
}

Test(session_files, symlinks_leading_outside_are_refused)
{
    sbx_exec_result_free(sbx_test_sh(sbx_test_S, "ln -s / root && ln -s /etc etc && "
                                                 "ln -s ../.. up && mkdir in && ln -s in inlink"));
    sbx_error *err = NULL;
    const char *reads[] = {"root/etc/passwd", "etc/passwd", "up/etc/hostname"};
    for (size_t i = 0; i < 3; i++) {
        cr_expect_null(st_read_str(sbx_test_S, reads[i], &err), "%s", reads[i]);
        cr_expect_eq(sbx_error_code(err), SBX_EINVALID_PATH, "%s: %s", reads[i],
                     sbx_error_message(err));
        sbx_error_free(err);
        err = NULL;
    }
    cr_expect_eq(st_write_str(sbx_test_S, "etc/evil", "x", &err), SBX_EINVALID_PATH);
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_session_mkdir(sbx_test_S, "root/tmp/evil", 1, NULL, &err), SBX_EINVALID_PATH);
    sbx_error_free(err);
    err = NULL;
    sbx_file_entry *v = NULL;
    size_t n = 0;
    cr_expect_eq(sbx_session_ls(sbx_test_S, "etc", NULL, &v, &n, &err), SBX_EINVALID_PATH);
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_session_rm(sbx_test_S, "root/tmp", 1, NULL, &err), SBX_EINVALID_PATH);
    sbx_error_free(err);
    err = NULL;
    /* A symlink that stays inside works, and rm of a leaf symlink removes the link only. */
    cr_expect_eq(st_write_str(sbx_test_S, "inlink/f.txt", "ok", &err), 0);
    char *got = st_read_str(sbx_test_S, "in/f.txt", &err);
    cr_expect_str_eq(got, "ok");
    free(got);
    cr_expect_eq(sbx_session_rm(sbx_test_S, "etc", 0, NULL, &err), 0);
    struct stat st;
    cr_expect_eq(stat("/etc/passwd", &st), 0, "rm followed a symlink");
}

Test(session_files, ls_lists_sorted_entries_with_kinds)
{
    sbx_exec_result_free(sbx_test_sh(sbx_test_S, "mkdir -p d/sub && printf abc > d/b.txt && "
                                                 "ln -s b.txt d/a-link && mkfifo d/fifo"));
    sbx_file_entry *v = NULL;
    size_t n = 0;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_ls(sbx_test_S, "d", NULL, &v, &n, &err), 0, "%s",
                 sbx_error_message(err));
    cr_assert_eq(n, 4);
    cr_expect_str_eq(v[0].name, "a-link");
    cr_expect_eq(v[0].kind, SBX_FILE_SYMLINK);
    cr_expect_str_eq(v[1].name, "b.txt");
    cr_expect_eq(v[1].kind, SBX_FILE_REGULAR);
    cr_expect_eq(v[1].size, 3);
    cr_expect_str_eq(v[1].path, "/workspace/d/b.txt");
    cr_expect_str_eq(v[1].owner, "sandbox");
    cr_expect_eq(v[1].mode, 0644);
    cr_expect_str_eq(v[2].name, "fifo");
    cr_expect_eq(v[2].kind, SBX_FILE_OTHER);
    cr_expect_str_eq(v[3].name, "sub");
    cr_expect_eq(v[3].kind, SBX_FILE_DIRECTORY);
    sbx_file_entries_free(v, n);
    /* A single file lists as itself. */
    cr_assert_eq(sbx_session_ls(sbx_test_S, "d/b.txt", NULL, &v, &n, &err), 0);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(v[0].path, "/workspace/d/b.txt");
    sbx_file_entries_free(v, n);
    /* Missing: ls's own failure. */
    cr_expect_eq(sbx_session_ls(sbx_test_S, "nope", NULL, &v, &n, &err), SBX_EEXEC_NONZERO);
    cr_expect_str_eq(sbx_error_context_get(err, "exit_code"), "1");
    sbx_error_free(err);
}

Test(session_files, fifo_in_workspace_does_not_block_read_or_write)
{
    sbx_exec_result_free(sbx_test_sh(sbx_test_S, "mkfifo p"));
    sbx_error *err = NULL;
    cr_expect_null(st_read_str(sbx_test_S, "p", &err));
    cr_expect_eq(sbx_error_code(err), SBX_EWORKSPACE_ARCHIVE_READ);
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(st_write_str(sbx_test_S, "p", "x", &err), SBX_EWORKSPACE_ARCHIVE_WRITE);
    sbx_error_free(err);
}

Test(session_files, rm_and_mkdir_contract)
{
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_mkdir(sbx_test_S, "a/b/c", 0, NULL, &err),
                 SBX_EWORKSPACE_ARCHIVE_WRITE, "parents are needed");
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_session_mkdir(sbx_test_S, "a/b/c", 1, NULL, &err), 0);
    cr_expect_eq(sbx_session_mkdir(sbx_test_S, "a/b/c", 1, NULL, &err), 0, "exists: fine");
    cr_expect_eq(st_write_str(sbx_test_S, "a/b/c/f", "x", &err), 0);
    cr_expect_eq(sbx_session_rm(sbx_test_S, "a", 0, NULL, &err), SBX_EWORKSPACE_ARCHIVE_WRITE,
                 "a non-empty directory needs recursive");
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_session_rm(sbx_test_S, "a", 1, NULL, &err), 0);
    cr_expect_eq(sbx_session_rm(sbx_test_S, "a", 1, NULL, &err), 0, "missing + recursive: ok");
    cr_expect_eq(sbx_session_rm(sbx_test_S, "a", 0, NULL, &err), SBX_EEXEC_NONZERO);
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_session_rm(sbx_test_S, ".", 1, NULL, &err), SBX_EWORKSPACE_ARCHIVE_WRITE);
    sbx_error_free(err);
}

Test(session_files, operations_run_as_the_requested_user)
{
    sbx_error *err = NULL;
    sbx_exec_result *r = NULL;
    /* root has no capabilities inside: it can write only where its ids allow, like anyone. */
    sbx_exec_result_free(sbx_test_sh(sbx_test_S, "mkdir shared && chmod 777 shared"));
    cr_assert_eq(sbx_test_sh_as(sbx_test_S, "root", "mkdir shared/rootonly && "
                                                    "chmod 700 shared/rootonly",
                                &r, &err),
                 0);
    cr_assert_eq(r->exit_code, 0, "%s", r->err);
    sbx_exec_result_free(r);
    cr_expect_eq(st_write_str(sbx_test_S, "shared/rootonly/f", "x", &err),
                 SBX_EWORKSPACE_ARCHIVE_WRITE, "the sandbox user cannot write there");
    sbx_error_free(err);
    err = NULL;
    int fd = st_memfd("as root");
    cr_expect_eq(sbx_session_write(sbx_test_S, "shared/rootonly/f", "root", fd, NULL, &err), 0, "%s",
                 sbx_error_message(err));
    close(fd);
    cr_assert_eq(sbx_test_sh_as(sbx_test_S, "root", "stat -c %U /workspace/shared/rootonly/f",
                                &r, &err),
                 0);
    cr_expect_str_eq((const char *)r->out, "root\n");
    sbx_exec_result_free(r);
}

Test(session_files, calls_on_a_stopped_session_fail_cleanly)
{
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_shutdown(sbx_test_S, NULL), 0);
    cr_expect_eq(st_write_str(sbx_test_S, "x", "y", &err), SBX_ESTATE);
    sbx_error_free(err);
}

Test(session_files, workspace_deleted_behind_the_session)
{
    char ws[4096];
    snprintf(ws, sizeof(ws), "%s", sbx_session_workspace(sbx_test_S));
    cr_assert_eq(st_write_str(sbx_test_S, "a.txt", "x", NULL), 0);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ws);
    cr_assert_eq(system(cmd), 0);
    sbx_error *err = NULL;
    cr_expect_eq(st_write_str(sbx_test_S, "b.txt", "y", &err), SBX_EWORKSPACE_ROOT_NOT_FOUND,
                 "%s", sbx_error_message(err));
    cr_expect_str_eq(sbx_error_context_get(err, "path"), "/workspace");
    sbx_error_free(err);
    err = NULL;
    cr_expect_null(st_read_str(sbx_test_S, "a.txt", &err));
    cr_expect_eq(sbx_error_code(err), SBX_EWORKSPACE_ROOT_NOT_FOUND);
    sbx_error_free(err);
    err = NULL;
    int fd = memfd_create("snap", MFD_CLOEXEC);
    cr_expect_eq(sbx_session_persist_workspace(sbx_test_S, fd, &err), SBX_EWORKSPACE_ARCHIVE_READ);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "workspace_root_not_found");
    sbx_error_free(err);
    close(fd);
}
