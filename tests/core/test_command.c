/* Command construction (spec SESSION.md §4.2, TESTS.md A1-A3). Pure: no sandbox needed. */
#include <string.h>

#include "harness.h"

static char **build(const char *const *argv, int shell, const char *const *shell_argv)
{
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.shell = shell;
    o.shell_argv = shell_argv;
    char **v = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_exec_build_argv(&o, &v, &err), 0, "%s", sbx_error_message(err));
    return v;
}

Test(core_command, one_part_goes_verbatim_to_sh)
{
    const char *argv[] = {"echo hello && echo goodbye", NULL};
    char **v = build(argv, SBX_SHELL_SH, NULL);
    cr_expect_str_eq(v[0], "sh");
    cr_expect_str_eq(v[1], "-c");
    cr_expect_str_eq(v[2], "echo hello && echo goodbye");
    cr_expect_null(v[3]);
    sbx_strv_free(v);
}

Test(core_command, several_parts_are_posix_quoted)
{
    const char *argv[] = {"printf", "%s\n", "hello world", "$(whoami)", "semi;colon", NULL};
    char **v = build(argv, SBX_SHELL_SH, NULL);
    cr_expect_str_eq(v[2], "printf '%s\n' 'hello world' '$(whoami)' 'semi;colon'");
    sbx_strv_free(v);
    const char *argv2[] = {"a", "", "it's", NULL};
    v = build(argv2, SBX_SHELL_SH, NULL);
    cr_expect_str_eq(v[2], "a '' 'it'\"'\"'s'");
    sbx_strv_free(v);
    const char *argv3[] = {"ls", "-la", "a_b@c%d+e=f:g,h./i-j", NULL};
    v = build(argv3, SBX_SHELL_SH, NULL);
    cr_expect_str_eq(v[2], "ls -la a_b@c%d+e=f:g,h./i-j");
    sbx_strv_free(v);
}

Test(core_command, no_shell_and_custom_shell)
{
    const char *argv[] = {"ls", "-la", NULL};
    char **v = build(argv, SBX_SHELL_NONE, NULL);
    cr_expect_str_eq(v[0], "ls");
    cr_expect_str_eq(v[1], "-la");
    cr_expect_null(v[2]);
    sbx_strv_free(v);
    const char *one[] = {"echo hi", NULL};
    const char *bash[] = {"bash", "-c", NULL};
    v = build(one, SBX_SHELL_CUSTOM, bash);
    cr_expect_str_eq(v[0], "bash");
    cr_expect_str_eq(v[1], "-c");
    cr_expect_str_eq(v[2], "echo hi");
    cr_expect_null(v[3]);
    sbx_strv_free(v);
}

Test(core_command, bad_input_is_rejected)
{
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    char **v = NULL;
    sbx_error *err = NULL;
    cr_expect_eq(sbx_exec_build_argv(&o, &v, &err), SBX_EINVAL);
    cr_expect_null(v);
    sbx_error_free(err);
    err = NULL;
    const char *argv[] = {"x", NULL};
    o.argv = argv;
    o.shell = SBX_SHELL_CUSTOM;
    cr_expect_eq(sbx_exec_build_argv(&o, &v, &err), SBX_EINVAL, "custom shell without argv");
    sbx_error_free(err);
    err = NULL;
    o.shell = 42;
    cr_expect_eq(sbx_exec_build_argv(&o, &v, &err), SBX_EINVAL);
    sbx_error_free(err);
}
