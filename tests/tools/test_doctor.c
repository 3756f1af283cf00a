/* `sbx doctor`: on these machines (root, sessions work) nothing FAILs, the JSON report has
 * every check with a known status, the probe really started a session, and the text report
 * names the cgroup layout. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

TestSuite(tools_doctor, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 60);

static char out[1 << 16];

#define SBX(...)                                                                               \
    ({                                                                                         \
        char *const _argv[] = {(char *)sbx_test_bin("sbx"), __VA_ARGS__, NULL};                \
        sbx_test_run_host(_argv, out, sizeof(out));                                            \
    })

/* Every check the command defines, in its order (docs/doctor.md lists the same). */
static const char *const names[] = {
    "kernel",
    "userns",
    "agent",
    "probe",
    "cgroup",
    "cgroup.memory",
    "cgroup.pids",
    "cgroup.cpu", "cgroup.io",
    "seccomp",
    "landlock",
    "dev.tty.legacy_tiocsti",
    "kernel.unprivileged_bpf_disabled",
    "vm.unprivileged_userfaultfd",
    "kernel.io_uring_disabled",
    "kernel.kptr_restrict",
    "fs.protected_symlinks",
    "fs.protected_hardlinks",
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

Test(tools_doctor, json_report_is_complete_and_passes_here)
{
    int st = SBX("doctor", "--json");
    cr_expect_eq(st, 0, "%s", out);
    json_object *o = json_tokener_parse(out);
    cr_assert_not_null(o, "not JSON: %s", out);
    json_object *checks, *ok, *v;
    cr_assert(json_object_object_get_ex(o, "checks", &checks), "%s", out);
    cr_assert(json_object_is_type(checks, json_type_array));
    cr_assert(json_object_object_get_ex(o, "ok", &ok), "%s", out);
    cr_expect(json_object_is_type(ok, json_type_boolean));
    cr_expect(json_object_get_boolean(ok), "%s", out);

    int seen[N_NAMES] = {0};
    size_t n = json_object_array_length(checks);
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(checks, i);
        cr_assert(json_object_object_get_ex(c, "name", &v));
        const char *name = json_object_get_string(v);
        cr_assert(json_object_object_get_ex(c, "status", &v), "%s", name);
        const char *status = json_object_get_string(v);
        cr_expect(!strcmp(status, "OK") || !strcmp(status, "WARN") || !strcmp(status, "FAIL"),
                  "%s: status %s", name, status);
        cr_expect_str_neq(status, "FAIL", "%s fails: %s", name, out);
        cr_assert(json_object_object_get_ex(c, "found", &v), "%s", name);
        cr_expect(json_object_is_type(v, json_type_string) && *json_object_get_string(v),
                  "%s: empty found", name);
        cr_assert(json_object_object_get_ex(c, "fix", &v), "%s", name);
        /* What to change is given for everything not OK, and only then. */
        if (!strcmp(status, "OK"))
            cr_expect(json_object_is_type(v, json_type_null), "%s: OK with a fix", name);
        else
            cr_expect(json_object_is_type(v, json_type_string) && *json_object_get_string(v),
                      "%s: %s without a fix", name, status);
        size_t k = 0;
        while (k < N_NAMES && strcmp(names[k], name))
            k++;
        cr_expect_lt(k, N_NAMES, "unknown check %s", name);
        if (k < N_NAMES) {
            seen[k]++;
            if (!strcmp(name, "probe"))
                cr_expect_str_eq(status, "OK", "%s", out);
        }
    }
    for (size_t k = 0; k < N_NAMES; k++)
        cr_expect_eq(seen[k], 1, "check %s appears %d times", names[k], seen[k]);
    json_object_put(o);
}

Test(tools_doctor, text_report_names_the_cgroup_layout)
{
    int st = SBX("doctor");
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strstr(out, "layout: ") != NULL, "%s", out);
    cr_expect(strstr(out, "hybrid") || strstr(out, "cgroup v2") || strstr(out, "cgroup v1"),
              "%s", out);
    /* One line per check, each starting with its status, then the summary. */
    size_t lines = 0;
    for (const char *p = out; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        if (!strncmp(p, "OK  ", 4) || !strncmp(p, "WARN", 4) || !strncmp(p, "FAIL", 4))
            lines++;
    }
    cr_expect_eq(lines, N_NAMES, "%s", out);
    cr_expect(strstr(out, "0 FAIL\n") != NULL, "%s", out);
}

Test(tools_doctor, bad_option_is_a_usage_error)
{
    cr_expect_eq(SBX("doctor", "--bogus"), 2, "%s", out);
    cr_expect(strstr(out, "--bogus") != NULL, "%s", out);
    cr_expect_eq(SBX("doctor", "--help"), 0, "%s", out);
    cr_expect(strstr(out, "--json") != NULL, "%s", out);
}
