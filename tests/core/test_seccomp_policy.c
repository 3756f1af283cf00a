/* The seccomp policy format: parsing, errors that name the line, the default's contents. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int check(const char *policy, char **out, sbx_error **err)
{
    *out = NULL;
    *err = NULL;
    return sbx_seccomp_check(policy, 0, out, err);
}

Test(core_seccomp_policy, a_valid_policy_is_normalised)
{
    char *out;
    sbx_error *err;
    cr_assert_eq(check("# c\ndefault allow\nerrno:EPERM keyctl  # why\n"
                       "errno:1 ioctl arg1 &0xffffffff == 21522\nkill reboot\n"
                       "errno:EPERM clone arg0 > 5\n",
                       &out, &err),
                 0, "%s", sbx_error_message(err));
    cr_expect_str_eq(out, "default allow\nerrno:EPERM keyctl\n"
                          "errno:EPERM ioctl arg1 &0xffffffff == 0x5412\nkill reboot\n"
                          "errno:EPERM clone arg0 > 0x5\n");
    free(out);
}

Test(core_seccomp_policy, errors_name_the_line)
{
    static const char *const bad[][2] = {
        {"default allow\nfrobnicate keyctl\n", "line 2"},
        {"errno:EPERM no_such_syscall_xyz\n", "line 1"},
        {"\n\nerrno:EPERM ioctl arg9 == 1\n", "line 3"},
        {"errno:EPERM ioctl arg1 ~ 1\n", "line 1"},
        {"errno:EBOGUS ioctl\n", "line 1"},
        {"default\n", "line 1"},
        {"errno:EPERM Open\n", "line 1"},
        {"default allow\nerrno:EPERM kill\nallow kill arg1 == 0\n", "line 3"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out;
        sbx_error *err;
        cr_expect_eq(check(bad[i][0], &out, &err), SBX_EINVAL, "accepted: %s", bad[i][0]);
        cr_expect(strstr(sbx_error_message(err), bad[i][1]) != NULL, "%s -> %s", bad[i][0],
                  sbx_error_message(err));
        cr_expect_null(out);
        sbx_error_free(err);
    }
}

Test(core_seccomp_policy, the_default_refuses_what_the_docs_say_and_ptrace_can_be_allowed)
{
    char *out;
    sbx_error *err;
    cr_assert_eq(check(NULL, &out, &err), 0, "%s", sbx_error_message(err));
    static const char *const want[] = {"errno:EPERM keyctl\n", "errno:ENOSYS clone3\n",
                                       "errno:EPERM ptrace\n", "errno:EPERM unshare\n",
                                       "errno:EPERM ioctl arg1 &0xffffffff == 0x5412\n"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect(strstr(out, want[i]) != NULL, "missing %s", want[i]);
    free(out);
    cr_assert_eq(sbx_seccomp_check(NULL, 1, &out, &err), 0);
    cr_expect(strstr(out, " ptrace") == NULL && strstr(out, "process_vm_readv") == NULL);
    free(out);
}

Test(core_seccomp_policy, numbers_are_decimal_or_hex_never_octal)
{
    char *out;
    sbx_error *err;
    cr_assert_eq(check("errno:EPERM kill arg1 == 010\nerrno:EPERM tkill arg1 == 0x10\n", &out,
                       &err),
                 0, "%s", sbx_error_message(err));
    cr_expect(strstr(out, "kill arg1 == 0xa\n") != NULL, "%s", out);
    cr_expect(strstr(out, "tkill arg1 == 0x10\n") != NULL, "%s", out);
    free(out);
}
