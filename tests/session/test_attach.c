/* Sessions that outlive their creator: control socket, attach from another process, disown,
 * shutdown through an attached handle. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "session_util.h"

TestSuite(session_attach, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 60);

static int alive(pid_t pid)
{
    return kill(pid, 0) == 0;
}

Test(session_attach, a_second_process_attaches_and_the_sandbox_survives_both)
{
    char dir[] = "/tmp/sbx-test-ctl-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char ctl[64];
    snprintf(ctl, sizeof(ctl), "%s/ctl.sock", dir);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.flags = SBX_SESSION_DETACHED;
    o.control_socket = ctl;
    sbx_session *s = sbx_test_start(&o);
    cr_assert_eq(st_write_str(s, "hello.txt", "from the creator", NULL), 0);
    char *state = NULL;
    cr_assert_eq(sbx_session_state_json(s, &state, NULL), 0);
    pid_t agent = sbx_session_agent_pid(s);
    char ws[4096];
    snprintf(ws, sizeof(ws), "%s", sbx_session_workspace(s));
    struct stat st;
    cr_expect_eq(stat(ctl, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "the control socket is private");
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_disown(s, &err), 0, "%s", sbx_error_message(err));
    cr_expect(alive(agent), "disown leaves the sandbox running");

    /* Another process attaches, runs a command and reads the file. */
    pid_t child = fork();
    if (child == 0) {
        sbx_session_opts ao = SBX_SESSION_OPTS_INIT;
        ao.state_json = state;
        sbx_session *a = NULL;
        if (sbx_session_new(&ao, &a, NULL) < 0 || sbx_session_attach(a, ctl, agent, NULL) < 0)
            _exit(10);
        char *got = st_read_str(a, "hello.txt", NULL);
        if (!got || strcmp(got, "from the creator") != 0)
            _exit(11);
        free(got);
        sbx_exec_result *r = NULL;
        const char *argv[] = {"echo attached > attached.txt", NULL};
        sbx_exec_opts xo = SBX_EXEC_OPTS_INIT;
        xo.argv = argv;
        if (sbx_session_exec(a, &xo, &r, NULL) < 0 || r->exit_code != 0)
            _exit(12);
        sbx_exec_result_free(r);
        sbx_session_free(a); /* disconnects only */
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_expect(alive(agent), "an attached process leaving does not end the sandbox");

    /* A wrong pid is refused: the socket's peer is checked. */
    sbx_session_opts ao = SBX_SESSION_OPTS_INIT;
    ao.state_json = state;
    sbx_session *bad = NULL;
    cr_assert_eq(sbx_session_new(&ao, &bad, NULL), 0);
    cr_expect_eq(sbx_session_attach(bad, ctl, getpid(), &err), SBX_ESTATE);
    sbx_error_free(err);
    err = NULL;
    sbx_session_free(bad);
    cr_expect_eq(stat(ws, &st), 0, "freeing a handle that never started must not remove the "
                                   "workspace");

    /* Attach again and shut it down. */
    sbx_session *a = NULL;
    cr_assert_eq(sbx_session_new(&ao, &a, NULL), 0);
    cr_assert_eq(sbx_session_attach(a, ctl, agent, &err), 0, "%s", sbx_error_message(err));
    char *got = st_read_str(a, "attached.txt", &err);
    cr_expect_str_eq(got, "attached\n", "%s", sbx_error_message(err));
    sbx_error_free(err);
    err = NULL;
    free(got);
    unsigned long ns = sbx_test_pidns_of(agent);
    cr_assert_eq(sbx_session_shutdown(a, &err), 0);
    cr_expect(!alive(agent) || sbx_test_pidns_of(agent) != ns, "shutdown ends the sandbox");
    cr_expect_eq(sbx_test_count_in_pidns(ns), 0);
    sbx_session_free(a);
    free(state);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' \"$(dirname '%s')\"", dir, ws);
    cr_expect_eq(system(cmd), 0);
}
