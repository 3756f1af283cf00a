/* Sandboxed code, even running as root inside, cannot signal, limit or trace the agent (PID
 * 1), its zygote, or the worker supervising it, and so cannot escape its timeout or wedge the
 * session. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(escape_agent, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 60);

static int run_root(sbx_session *s, const char *script, double timeout, sbx_exec_result **r,
                    sbx_error **err)
{
    const char *argv[] = {script, NULL};
    sbx_exec_opts o = SBX_EXEC_OPTS_INIT;
    o.argv = argv;
    o.user = "root";
    o.timeout_s = timeout;
    return sbx_session_exec(s, &o, r, err);
}

Test(escape_agent, root_inside_cannot_kill_or_limit_pid1_or_its_supervisor)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "uid 0 inside needs the range id map (run as root)");
    sbx_session *s = sbx_test_start(NULL);
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    cr_assert_eq(run_root(s,
                          "kill -9 1 2>/dev/null && echo killed-1; "
                          "kill -STOP $PPID 2>/dev/null && echo stopped-parent; "
                          "kill -9 $PPID 2>/dev/null && echo killed-parent; "
                          "prlimit --pid 1 --nofile=3:3 2>/dev/null && echo limited-1; "
                          "cat /proc/1/environ >/dev/null 2>&1 && echo read-environ; "
                          "readlink /proc/1/fd/3 >/dev/null 2>&1 && echo followed-fd; "
                          "cat /proc/1/fd/3 >/dev/null 2>&1 && echo opened-fd; "
                          "ls /proc/1/root/ >/dev/null 2>&1 && echo entered-root; "
                          "echo 1000 > /proc/1/oom_score_adj 2>/dev/null && echo oom-adj; "
                          "echo 19 > /proc/1/autogroup 2>/dev/null && echo autogroup; "
                          "echo 1000 > /proc/$PPID/oom_score_adj 2>/dev/null && echo oom-adj-parent; "
                          "echo 19 > /proc/$PPID/autogroup 2>/dev/null && echo autogroup-parent; "
                          "echo end",
                          30, &r, &err),
                 0, "%s", sbx_error_message(err));
    cr_expect_str_eq((char *)r->out, "end\n");
    sbx_exec_result_free(r);
    /* The session still works, and a timeout still kills everything. */
    cr_assert_eq(run_root(s, "kill -9 $PPID 2>/dev/null; sleep 100", 0.5, &r, &err),
                 SBX_EEXEC_TIMEOUT, "%s", sbx_error_message(err));
    sbx_error_free(err);
    err = NULL;
    r = sbx_test_sh(s, "ps -eo comm= 2>/dev/null | grep -c sleep || true");
    cr_expect_str_eq((char *)r->out, "0\n", "a sleep survived its timeout");
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

/* The zygote (agent/zygote.c) holds the agent's capabilities in the sandbox's user namespace
 * and forks every command's supervisor: root inside must not be able to touch it either. It
 * is the parent of the command's supervisor once a first command has run. */
Test(escape_agent, root_inside_cannot_kill_limit_or_read_the_zygote)
{
    SBX_TEST_SKIP_UNLESS(geteuid() == 0, "uid 0 inside needs the range id map (run as root)");
    sbx_session *s = sbx_test_start(NULL);
    sbx_exec_result *r = NULL;
    sbx_error *err = NULL;
    sbx_exec_result_free(sbx_test_sh(s, "true")); /* the zygote comes after a command */
    usleep(200 * 1000);
    cr_assert_eq(run_root(s,
                          "z=$(awk '/^PPid:/ { print $2 }' /proc/$PPID/status); "
                          "[ \"$z\" -gt 1 ] || echo no-zygote; "
                          "kill -9 $z 2>/dev/null && echo killed; "
                          "kill -STOP $z 2>/dev/null && echo stopped; "
                          "prlimit --pid $z --nproc=1:1 2>/dev/null && echo limited; "
                          "cat /proc/$z/environ >/dev/null 2>&1 && echo read-environ; "
                          "cat /proc/$z/fd/0 >/dev/null 2>&1 && echo opened-fd; "
                          "ls /proc/$z/root/ >/dev/null 2>&1 && echo entered-root; "
                          "echo 1000 > /proc/$z/oom_score_adj 2>/dev/null && echo oom-adj; "
                          "echo end",
                          30, &r, &err),
                 0, "%s", sbx_error_message(err));
    cr_expect_str_eq((char *)r->out, "end\n");
    sbx_exec_result_free(r);
    /* It still serves: the next command's supervisor is still its child. */
    r = sbx_test_sh(s, "awk '/^PPid:/ { print ($2 > 1) }' /proc/$PPID/status");
    cr_expect_str_eq((char *)r->out, "1\n", "the zygote is gone");
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

Test(escape_agent, a_fork_bomb_is_bounded_by_the_process_limit)
{
    /* Bounded twice: the sandbox's RLIMIT_NPROC (under test) and the script's own 1000
     * attempts, so a broken limit fails the test instead of filling the host's pid table. */
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.nproc = 64;
    sbx_session *s = sbx_test_start(&o);
    sbx_exec_result *r = sbx_test_sh(
        s, "python3 -c \"import os, time\npids = []\ntry:\n"
           "    while len(pids) < 1000:\n        p = os.fork()\n"
           "        if p == 0:\n            time.sleep(30)\n            os._exit(0)\n"
           "        pids.append(p)\n    print('unbounded')\nexcept BlockingIOError:\n"
           "    print('limited', len(pids) < 64)\nfor p in pids:\n    os.kill(p, 9)\n"
           "for p in pids:\n    os.waitpid(p, 0)\"");
    cr_expect_str_eq((char *)r->out, "limited True\n", "stderr: %s", (char *)r->err);
    sbx_exec_result_free(r);
    r = sbx_test_sh(s, "echo still-usable");
    cr_expect_str_eq((char *)r->out, "still-usable\n");
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

Test(escape_agent, commands_dump_no_core)
{
    sbx_session *s = sbx_test_start(NULL);
    sbx_exec_result *r =
        sbx_test_sh(s, "grep 'Max core' /proc/self/limits | tr -s ' ' | sed 's/ $//'");
    cr_expect_str_eq((char *)r->out, "Max core file size 0 0 bytes\n");
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

Test(escape_agent, memory_backed_filesystems_are_size_limited)
{
    /* /tmp, /dev/shm and an ephemeral workspace live in RAM: a size cap keeps a disk-fill
     * attempt from eating the host's memory. Writes are bounded (2 MiB each). */
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.tmpfs_bytes = 1u << 20;
    o.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
    sbx_session *s = sbx_test_start(&o);
    sbx_exec_result *r = sbx_test_sh(
        s, "for d in /tmp /dev/shm /workspace; do head -c 2097152 /dev/zero > $d/fill 2>/dev/null"
           " && echo \"$d unbounded\" || echo \"$d full\"; rm -f $d/fill; done");
    cr_expect_str_eq((char *)r->out, "/tmp full\n/dev/shm full\n/workspace full\n");
    sbx_exec_result_free(r);
    sbx_session_free(s);
}

Test(escape_agent, open_files_and_file_size_are_limited)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.nofile = 64;
    o.fsize_bytes = 1u << 20;
    sbx_session *s = sbx_test_start(&o);
    sbx_exec_result *r = sbx_test_sh(s, "ulimit -n; ulimit -f");
    cr_expect_str_eq((const char *)r->out, "64\n2048\n", "1 MiB is 2048 blocks of 512 bytes");
    sbx_exec_result_free(r);
    /* Writing past the limit: the writer gets SIGXFSZ and the file stops at 1 MiB. */
    r = sbx_test_sh(s, "head -c 4M /dev/zero > big; echo $?; stat -c %s big");
    cr_expect_str_eq((const char *)r->out, "153\n1048576\n", "%s", r->out);
    sbx_exec_result_free(r);
    /* Opening more files than allowed fails. */
    r = sbx_test_sh(s, "python3 -c 'import os\nfs=[]\ntry:\n  for i in range(200): "
                       "fs.append(os.open(\"/dev/null\", 0))\nexcept OSError as e: "
                       "print(e.errno)'");
    cr_expect_str_eq((const char *)r->out, "24\n", "EMFILE expected: %s %s", r->out, r->err);
    sbx_exec_result_free(r);
    sbx_session_free(s);
}
