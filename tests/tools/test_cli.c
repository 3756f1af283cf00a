/* The sbx CLI: `sbx run` exit statuses, --json, options, and error messages. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

TestSuite(tools_cli, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 60);

static char out[1 << 16];

#define SBX(...)                                                                               \
    ({                                                                                         \
        char *const _argv[] = {(char *)sbx_test_bin("sbx"), __VA_ARGS__, NULL};                \
        sbx_test_run_host(_argv, out, sizeof(out));                                            \
    })

Test(tools_cli, run_prints_identity_from_inside)
{
    int st = SBX("run", "--hostname", "box", "--", "sh", "-c", "id -un; hostname; ls /");
    cr_expect_eq(st, 0, "%s", out);
    cr_expect(strncmp(out, geteuid() == 0 ? "sandbox\nbox\n" : "sandbox\nbox\n", 12) == 0, "%s",
              out);
    cr_expect(strstr(out, "workspace") != NULL, "%s", out);
    cr_expect(strstr(out, "home") == NULL, "%s", out);
}

Test(tools_cli, exit_statuses)
{
    cr_expect_eq(SBX("run", "--", "sh", "-c", "exit 7"), 7);
    cr_expect_eq(SBX("run", "--", "sh", "-c", "kill -TERM $$"), 128 + 15);
    cr_expect_eq(SBX("run", "--timeout", "0.3", "--", "sleep", "100"), 124);
    cr_expect_eq(SBX("run", "--", "no-such-binary"), 127, "%s", out);
    cr_expect(strstr(out, "no-such-binary") != NULL, "%s", out);
    cr_expect_eq(SBX("run", "--", "/etc/passwd"), 126, "%s", out);
    cr_expect_eq(SBX("run", "--workspace", "/nonexistent/x", "--", "true"), 125);
    cr_expect(strstr(out, "/nonexistent/x") != NULL, "%s", out);
    cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
}

Test(tools_cli, json_output)
{
    int st = SBX("run", "--json", "--env", "A=1", "--", "sh", "-c", "echo $A; echo e >&2; exit 3");
    cr_expect_eq(st, 3);
    json_object *o = json_tokener_parse(out);
    cr_assert_not_null(o, "not JSON: %s", out);
    json_object *v;
    cr_assert(json_object_object_get_ex(o, "exit_code", &v));
    cr_expect_eq(json_object_get_int(v), 3);
    cr_assert(json_object_object_get_ex(o, "stdout", &v));
    cr_expect_str_eq(json_object_get_string(v), "1\n");
    cr_assert(json_object_object_get_ex(o, "stderr", &v));
    cr_expect_str_eq(json_object_get_string(v), "e\n");
    cr_assert(json_object_object_get_ex(o, "timed_out", &v));
    cr_expect_eq(json_object_get_boolean(v), 0);
    cr_assert(json_object_object_get_ex(o, "duration_ms", &v));
    cr_expect_gt(json_object_get_double(v), 0.0);
    json_object_put(o);

    st = SBX("run", "--json", "--timeout", "0.2", "--", "sleep", "100");
    cr_expect_eq(st, 124);
    o = json_tokener_parse(out);
    cr_assert_not_null(o, "not JSON: %s", out);
    cr_assert(json_object_object_get_ex(o, "timed_out", &v));
    cr_expect_eq(json_object_get_boolean(v), 1);
    json_object_put(o);
}

Test(tools_cli, workspace_keep_cwd_and_binds)
{
    char ws[] = "/tmp/sbx-test-cli-XXXXXX";
    cr_assert_not_null(mkdtemp(ws));
    chmod(ws, 0777);
    char bind[512];
    snprintf(bind, sizeof(bind), "%s:/mnt/data", ws);
    int st = SBX("run", "--workspace", ws, "--ro-bind", bind, "--cwd", "/mnt/data", "--", "sh",
                 "-c", "pwd; touch x 2>/dev/null || echo ro; touch /workspace/y && echo rw");
    cr_expect_eq(st, 0, "%s", out);
    cr_expect_str_eq(out, "/mnt/data\nro\nrw\n");
    char y[600];
    snprintf(y, sizeof(y), "%s/y", ws);
    cr_expect_eq(unlink(y), 0);
    cr_expect_eq(rmdir(ws), 0);
}

Test(tools_cli, bad_input_is_one_clear_line)
{
    static const char *const cases[][3] = {
        {"--timeout", "abc", "--timeout"},
        {"--env", "NOEQUALS", "--env"},
        {"--bind", "relative", "relative"},
        {"--user", "mallory", "mallory"},
        {"--hostname", "bad host", "hostname"},
        {"--nproc", "0", "--nproc"},
        {"--tmpfs-size", "5Q", "--tmpfs-size"},
        {"--seccomp", "/nonexistent/policy", "/nonexistent/policy"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = SBX("run", (char *)cases[i][0], (char *)cases[i][1], "--", "true");
        cr_expect_eq(st, 125, "%s %s -> %d", cases[i][0], cases[i][1], st);
        cr_expect(strstr(out, cases[i][2]) != NULL, "message does not name %s: %s",
                  cases[i][2], out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
    }
    cr_expect_eq(SBX("run"), 125);
    cr_expect_eq(SBX("frobnicate"), 2);
}

Test(tools_cli, help_and_version)
{
    cr_expect_eq(SBX("--help"), 0);
    cr_expect(strstr(out, "run") != NULL);
    cr_expect_eq(SBX("run", "--help"), 0);
    cr_expect(strstr(out, "--workspace") != NULL);
    cr_expect_eq(SBX("--version"), 0);
    cr_expect(strncmp(out, "sbx ", 4) == 0, "%s", out);
}

Test(tools_cli, stdin_from_a_pipe_passes_through)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "echo piped | %s run -i -- cat", sbx_test_bin("sbx"));
    char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_expect_eq(sbx_test_run_host(argv, out, sizeof(out)), 0);
    cr_expect_str_eq(out, "piped\n");
    /* Without -i the command's stdin is empty and the caller's input is left alone. */
    snprintf(cmd, sizeof(cmd), "printf 'a\\nb\\n' | (%s run -- cat; cat)", sbx_test_bin("sbx"));
    char *const argv2[] = {"/bin/sh", "-c", cmd, NULL};
    cr_expect_eq(sbx_test_run_host(argv2, out, sizeof(out)), 0);
    cr_expect_str_eq(out, "a\nb\n");
    /* A command that closes its stdin early does not take sbx down with SIGPIPE. */
    snprintf(cmd, sizeof(cmd), "yes | %s run -i -- sh -c 'exec 0<&-; sleep 0.3'",
             sbx_test_bin("sbx"));
    char *const argv3[] = {"/bin/sh", "-c", cmd, NULL};
    cr_expect_eq(sbx_test_run_host(argv3, out, sizeof(out)), 0, "%s", out);
}

Test(tools_cli, unprivileged_caller_gets_a_single_mapped_uid)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "needs root to switch to an unprivileged user");
    SBX_TEST_SKIP_UNLESS(access("/usr/bin/setpriv", X_OK) == 0, "setpriv (util-linux) missing");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "cd / && exec /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups "
             "env TMPDIR=/tmp %s run -- sh -c 'id -u; cat /proc/self/uid_map; touch "
             "/workspace/f && echo ok'",
             sbx_test_bin("sbx"));
    char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
    int st = sbx_test_run_host(argv, out, sizeof(out));
    if (st == 125 && strstr(out, "user namespaces"))
        cr_skip_test("unprivileged user namespaces are disabled here: %s", out);
    cr_expect_eq(st, 0, "%s", out);
    unsigned uid, in, outer, cnt;
    cr_assert_eq(sscanf(out, "%u %u %u %u", &uid, &in, &outer, &cnt), 4, "%s", out);
    cr_expect_eq(uid, 1000);
    cr_expect_eq(in, 1000);
    cr_expect_eq(outer, 65534);
    cr_expect_eq(cnt, 1);
    cr_expect(strstr(out, "ok\n") != NULL, "%s", out);
}

Test(tools_cli, io_weight_is_an_option_and_bad_weights_are_usage_errors)
{
    int st = SBX("run", "--io-weight", "500", "--", "true");
    if (st != 0) {
        /* A machine without weights: the message names the controller and the layout. */
        cr_expect_eq(st, 125, "%s", out);
        cr_expect(strstr(out, "io") && strstr(out, "layout"), "%s", out);
        cr_skip_test("no io/blkio controller with weights here: %s", out);
    }
    static const char *const bad[] = {"0", "10001", "-5", "abc", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st = SBX("run", "--io-weight", (char *)bad[i], "--", "true");
        cr_expect_eq(st, 125, "--io-weight '%s' -> %d", bad[i], st);
        cr_expect(strstr(out, "--io-weight") != NULL, "message does not name the option: %s",
                  out);
        cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
    }
    cr_expect_eq(SBX("create", "--io-weight", "0"), 2, "%s", out);
    cr_expect(strstr(out, "--io-weight") != NULL, "%s", out);
}

Test(tools_cli, disk_bounds_the_workspace_of_a_run)
{
    cr_expect_eq(SBX("run", "--disk", "1M", "--", "true"), 125, "%s", out);
    cr_expect(strstr(out, "--disk") != NULL, "%s", out);
    cr_expect_eq(SBX("run", "--disk", "16M", "--workspace", "/tmp", "--", "true"), 125, "%s", out);
    cr_expect(strstr(out, "--disk") != NULL, "%s", out);
    cr_expect_eq(SBX("run", "--disk", "16M", "--keep", "--", "true"), 125, "%s", out);
    cr_expect_eq(SBX("create", "--disk", "16M", "--workspace", "/tmp"), 2, "%s", out);
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "--disk needs root");
    SBX_TEST_SKIP_UNLESS(access("/dev/loop-control", R_OK | W_OK) == 0,
                         "no loop support here: /dev/loop-control is missing");
    /* Bounded: at most 64 MiB is written even if the quota did not hold. */
    int st = SBX("run", "--disk", "16M", "--", "sh", "-c",
                 "timeout 30 head -c 64M /dev/zero > /workspace/f 2>/dev/null; "
                 "wc -c < /workspace/f; df -k /workspace | tail -1");
    if (st == 125 && strstr(out, "mkfs.ext4"))
        cr_skip_test("%s", out);
    cr_expect_eq(st, 0, "%s", out);
    unsigned long long n = strtoull(out, NULL, 10);
    cr_expect(n > (8ull << 20) && n <= (16ull << 20), "%llu bytes with --disk 16M: %s", n, out);
    cr_expect(strstr(out, "/dev/loop") != NULL, "the workspace is not the quota image: %s", out);
}

/* THREATS T04: on a terminal, `sbx run` shows the command's escape sequences instead of
 * passing them to the terminal (OSC 52 would write the clipboard, OSC 0 the title); text and
 * UTF-8 pass; --raw-output and output that is no terminal get the bytes as they are. */
Test(tools_cli, escape_sequences_reach_a_terminal_as_text)
{
    SBX_TEST_SKIP_UNLESS(access("/usr/bin/script", X_OK) == 0, "script (util-linux) missing");
    char cmd[4400];
    static const char printf_args[] =
        "printf '\\033]52;c;ZXZpbA==\\a\\033]0;pwn\\a h\\303\\251llo\\n'; "
        "printf '\\033]0;err\\a\\n' >&2";
    snprintf(cmd, sizeof(cmd), "%s run -- sh -c \"%s\"", sbx_test_bin("sbx"), printf_args);
    char *const term[] = {"/usr/bin/script", "-qec", cmd, "/dev/null", NULL};
    cr_assert_eq(sbx_test_run_host(term, out, sizeof(out)), 0, "%s", out);
    cr_expect(strstr(out, "^[]52;c;ZXZpbA==^G^[]0;pwn^G h\xc3\xa9llo") != NULL, "%s", out);
    cr_expect(strstr(out, "^[]0;err^G") != NULL, "stderr too: %s", out);
    cr_expect(strchr(out, '\033') == NULL && strchr(out, '\a') == NULL, "raw control bytes: %s",
              out);

    snprintf(cmd, sizeof(cmd), "%s run --raw-output -- sh -c \"%s\"", sbx_test_bin("sbx"),
             printf_args);
    cr_assert_eq(sbx_test_run_host(term, out, sizeof(out)), 0, "%s", out);
    cr_expect(strstr(out, "\033]52;c;ZXZpbA==\a") != NULL, "%s", out);

    /* Into a pipe (what sbx_test_run_host gives): the bytes as they are. */
    cr_assert_eq(SBX("run", "--", "printf", "\\033]0;pwn\\a"), 0, "%s", out);
    cr_expect_str_eq(out, "\033]0;pwn\a");
}
