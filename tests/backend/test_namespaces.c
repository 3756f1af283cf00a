/* Isolation as seen from inside a session: namespaces, id maps, the assembled root. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

TestSuite(backend_namespaces, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 60);

static sbx_session *S;

static void start(void)
{
    sbx_test_init();
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.hostname = "sbx-test-host";
    S = sbx_test_start(&o);
}

static void stop(void)
{
    sbx_session_free(S);
    S = NULL;
    sbx_test_fini();
}

#define OUT(r) ((const char *)(r)->out)

Test(backend_namespaces, pid1_is_the_agent_and_host_processes_are_invisible, .init = start,
     .fini = stop)
{
    sbx_exec_result *r = sbx_test_sh(S, "cat /proc/1/comm; ls /proc | grep -c '^[0-9]'");
    char comm[64];
    int nprocs = 0;
    cr_assert_eq(sscanf(OUT(r), "%63s %d", comm, &nprocs), 2, "output: %s", OUT(r));
    cr_expect_str_eq(comm, "sbx-agent");
    /* agent, its worker, sh, and the pipeline: a handful, never the host's hundreds. */
    cr_expect_lt(nprocs, 10, "%d processes visible inside", nprocs);
    sbx_exec_result_free(r);

    /* The test process's own host pid must not exist inside under its name. */
    char script[128];
    snprintf(script, sizeof(script), "cat /proc/%d/comm 2>/dev/null || echo absent", getpid());
    r = sbx_test_sh(S, script);
    cr_expect(strstr(OUT(r), "test_") == NULL, "host process visible: %s", OUT(r));
    sbx_exec_result_free(r);
}

Test(backend_namespaces, hostname_is_the_sandbox_s, .init = start, .fini = stop)
{
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    sbx_exec_result *r = sbx_test_sh(S, "hostname; cat /etc/hostname");
    cr_expect_str_eq(OUT(r), "sbx-test-host\nsbx-test-host\n");
    cr_expect_str_neq(host, "sbx-test-host");
    sbx_exec_result_free(r);
}

Test(backend_namespaces, only_loopback_exists_and_is_up, .init = start, .fini = stop)
{
    sbx_exec_result *r = sbx_test_sh(S, "ls /sys/class/net 2>/dev/null | tr '\\n' ' ';"
                                        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    cr_expect_str_eq(OUT(r), "lo\n", "interfaces: %s", OUT(r));
    sbx_exec_result_free(r);
    /* lo is up: a TCP connection over 127.0.0.1 succeeds (a down lo gives ENETUNREACH). */
    r = sbx_test_sh(S, "python3 -c \"import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); "
                       "s.listen(); c=socket.create_connection(s.getsockname()); "
                       "print('connected')\"");
    cr_expect_str_eq(OUT(r), "connected\n", "stderr: %s", (const char *)r->err);
    sbx_exec_result_free(r);
}

Test(backend_namespaces, id_maps_are_as_configured, .init = start, .fini = stop)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "the range id map is used only when run as root");
    sbx_exec_result *r = sbx_test_sh(S, "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g;"
                                        "id -G");
    unsigned in1, out1, cnt1, in2, out2, cnt2, uid, gid, groups;
    cr_assert_eq(sscanf(OUT(r), "%u %u %u %u %u %u %u %u %u", &in1, &out1, &cnt1, &in2, &out2,
                        &cnt2, &uid, &gid, &groups),
                 9, "output: %s", OUT(r));
    cr_expect_eq(in1, 0);
    cr_expect_eq(out1, SBX_DEFAULT_UID_BASE);
    cr_expect_eq(cnt1, 65537, "65536 ids for the sandbox, one for the agent");
    cr_expect_eq(in2, 0);
    cr_expect_eq(out2, SBX_DEFAULT_UID_BASE);
    cr_expect_eq(uid, SBX_SANDBOX_UID);
    cr_expect_eq(gid, SBX_SANDBOX_UID);
    cr_expect_eq(groups, SBX_SANDBOX_UID, "supplementary groups: %s", OUT(r));
    sbx_exec_result_free(r);
}

Test(backend_namespaces, uid_base_is_configurable)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "the range id map is used only when run as root");
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.uid_base = 1700000000u;
    sbx_session *s = sbx_test_start(&o);
    sbx_exec_result *r = sbx_test_sh(s, "cat /proc/self/uid_map");
    unsigned in, out, cnt;
    cr_assert_eq(sscanf(OUT(r), "%u %u %u", &in, &out, &cnt), 3);
    cr_expect_eq(out, 1700000000u);
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

Test(backend_namespaces, namespaces_differ_from_the_host, .init = start, .fini = stop)
{
    static const char *const kinds[] = {"user", "pid", "mnt", "net", "uts", "ipc", "cgroup"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        char script[128], host[128], inside[128] = {0};
        snprintf(script, sizeof(script), "readlink /proc/self/ns/%s", kinds[i]);
        snprintf(host, sizeof(host), "/proc/self/ns/%s", kinds[i]);
        char hostlink[128] = {0};
        cr_assert(readlink(host, hostlink, sizeof(hostlink) - 1) > 0);
        sbx_exec_result *r = sbx_test_sh(S, script);
        snprintf(inside, sizeof(inside), "%.*s", (int)strcspn(OUT(r), "\n"), OUT(r));
        cr_expect_str_neq(inside, hostlink, "%s namespace is the host's", kinds[i]);
        cr_expect(strncmp(inside, kinds[i], strlen(kinds[i])) == 0, "%s", inside);
        sbx_exec_result_free(r);
    }
}

Test(backend_namespaces, host_private_paths_are_invisible, .init = start, .fini = stop)
{
    sbx_exec_result *r = sbx_test_sh(
        S, "for p in /home /root /var /run /mnt /opt /srv /boot /etc/shadow /etc/ssh "
           "/etc/os-release /sys; do [ -e $p ] && echo \"visible $p\"; done; ls /etc | sort | "
           "tr '\\n' ' '");
    cr_expect(strstr(OUT(r), "visible") == NULL, "%s", OUT(r));
    cr_expect(strstr(OUT(r), "passwd") != NULL, "%s", OUT(r));
    sbx_exec_result_free(r);
}

#define ROOT_IF_POSSIBLE (geteuid() == 0 ? "root" : NULL)

Test(backend_namespaces, system_dirs_are_read_only_even_for_root, .init = start, .fini = stop)
{
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_test_sh_as(S, ROOT_IF_POSSIBLE,
                                "for p in /usr/sbx-probe /bin/sbx-probe /etc/sbx-probe "
                                "/sbx-probe /dev/sbx-probe; do touch $p 2>/dev/null && "
                                "echo \"wrote $p\"; done; touch /tmp/ok && echo writable",
                                &r, &err),
                 0, "%s", sbx_error_message(err));
    cr_expect_str_eq(OUT(r), "writable\n");
    sbx_exec_result_free(r);
    struct stat st;
    cr_expect_neq(stat("/usr/sbx-probe", &st), 0, "a file appeared on the host's /usr");
}

Test(backend_namespaces, commands_have_no_capabilities_even_as_root, .init = start,
     .fini = stop)
{
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_test_sh_as(S, ROOT_IF_POSSIBLE,
                                "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' "
                                "/proc/self/status | tr -s '\\t ' ' '",
                                &r, &err),
                 0, "%s", sbx_error_message(err));
    cr_expect_str_eq(OUT(r), "CapInh: 0000000000000000\nCapPrm: 0000000000000000\n"
                             "CapEff: 0000000000000000\nCapBnd: 0000000000000000\n"
                             "CapAmb: 0000000000000000\nNoNewPrivs: 1\n");
    sbx_exec_result_free(r);
}

Test(backend_namespaces, root_user_on_request, .init = start, .fini = stop)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "uid 0 inside needs the range id map (run as root)");
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    const char *argv[] = {"id", "-un", NULL};
    o.argv = argv;
    o.shell = SBX_SHELL_NONE;
    o.user = "root";
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_exec(S, &o, &r, &err), 0, "%s", sbx_error_message(err));
    cr_expect_str_eq(OUT(r), "root\n");
    sbx_exec_result_free(r);
}

Test(backend_namespaces, unknown_user_is_a_clear_error, .init = start, .fini = stop)
{
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    const char *argv[] = {"true", NULL};
    o.argv = argv;
    o.user = "mallory";
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_exec(S, &o, &r, &err), SBX_EINVAL);
    cr_expect_null(r);
    cr_expect(strstr(sbx_error_message(err), "mallory") != NULL, "%s", sbx_error_message(err));
    sbx_error_free(err);
}

Test(backend_namespaces, dev_has_only_the_minimal_nodes, .init = start, .fini = stop)
{
    sbx_exec_result *r = sbx_test_sh(S, "ls /dev | sort | tr '\\n' ' '; echo; "
                                        "head -c 4 /dev/urandom | wc -c; echo x > /dev/null && "
                                        "echo null-ok; test -c /dev/pts/ptmx && echo devpts");
    cr_expect_str_eq(OUT(r), "fd full null ptmx pts random shm stderr stdin stdout tty urandom "
                             "zero \n4\nnull-ok\ndevpts\n");
    sbx_exec_result_free(r);
}
