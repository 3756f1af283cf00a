/* The session CLI: sbx create/exec/ps/stop/start/rm/gc and ls/cp/extract/snapshot/restore,
 * against real detached sandboxes.
 *
 * Each test has its own state directory (SBX_STATE_DIR). A detached sandbox is not a child
 * of the test process (it is reparented when the CLI exits), so the harness's leak check
 * cannot see it: the fixture records every agent pid a test saw, removes every session left
 * in the state directory with `sbx rm -f`, and then checks that each of those agents is
 * gone. */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char statedir[64];
static char sbx_bin[4200];
static pid_t agents[64];
static size_t n_agents;
static char out[1 << 16];

/* Every command is bounded: a hang fails the test instead of stalling the run. */
#define SBX(...)                                                                               \
    ({                                                                                         \
        char *const _argv[] = {"/usr/bin/timeout", "-k", "5", "60", sbx_bin, __VA_ARGS__,     \
                               NULL};                                                          \
        sbx_test_run_host(_argv, out, sizeof(out));                                            \
    })

/* Runs a shell command line ($SBX is the sbx binary), output into `out`. */
__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char *const argv[] = {"/usr/bin/timeout", "-k", "5", "60", "/bin/sh", "-c", cmd, NULL};
    return sbx_test_run_host(argv, out, sizeof(out));
}

/* Gone, or a zombie waiting for a slow reaper: either way nothing of the sandbox runs. */
static int pid_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return !p || p[2] == 'Z' || p[2] == 'X';
}

static int wait_gone(pid_t pid)
{
    for (int i = 0; i < 500 && !pid_gone(pid); i++)
        usleep(10000);
    return pid_gone(pid);
}

static json_object *record_of(const char *id)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s/session.json", statedir, id);
    json_object *o = json_object_from_file(path);
    cr_assert_not_null(o, "no record at %s", path);
    return o;
}

static const char *field(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : NULL;
}

/* The agent pid of a running session, remembered for the final check. */
static pid_t agent_of(const char *id)
{
    json_object *o = record_of(id);
    pid_t pid = (pid_t)atoi(field(o, "agent_pid"));
    json_object_put(o);
    cr_assert_gt(pid, 0);
    if (n_agents < sizeof(agents) / sizeof(agents[0]))
        agents[n_agents++] = pid;
    return pid;
}

static char *workspace_of(const char *id)
{
    json_object *o = record_of(id);
    char *ws = strdup(field(o, "workspace"));
    json_object_put(o);
    return ws;
}

/* sbx create [ARGS...] (NULL-terminated); the printed id goes to id (37 bytes). */
static void create(char *id, ...)
{
    char *argv[32] = {"/usr/bin/timeout", "-k", "5", "60", sbx_bin, "create"};
    size_t n = 6;
    va_list ap;
    va_start(ap, id);
    for (char *a; (a = va_arg(ap, char *)) && n < 31;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    int st = sbx_test_run_host(argv, out, sizeof(out));
    cr_assert_eq(st, 0, "create failed (%d): %s", st, out);
    cr_assert_eq(strlen(out), 37, "create prints the id and nothing else: '%s'", out);
    memcpy(id, out, 36);
    id[36] = '\0';
    agent_of(id);
}

/* The status `sbx ps --json` gives the session, or NULL when it is not listed. */
static const char *ps_status(const char *id, char *buf, size_t len)
{
    int st = SBX("ps", "--json");
    cr_assert_eq(st, 0, "%s", out);
    json_object *a = json_tokener_parse(out);
    cr_assert_not_null(a, "ps --json: not JSON: %s", out);
    const char *r = NULL;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *o = json_object_array_get_idx(a, i);
        if (!strcmp(field(o, "id"), id)) {
            snprintf(buf, len, "%s", field(o, "status"));
            r = buf;
        }
    }
    json_object_put(a);
    return r;
}

static size_t ps_count(void)
{
    cr_assert_eq(SBX("ps", "--json"), 0, "%s", out);
    json_object *a = json_tokener_parse(out);
    cr_assert_not_null(a, "ps --json: not JSON: %s", out);
    size_t n = json_object_array_length(a);
    json_object_put(a);
    return n;
}

static void setup(void)
{
    sbx_test_init();
    snprintf(statedir, sizeof(statedir), "/tmp/sbx-cs-XXXXXX");
    cr_assert_not_null(mkdtemp(statedir));
    setenv("SBX_STATE_DIR", statedir, 1);
    snprintf(sbx_bin, sizeof(sbx_bin), "%s", sbx_test_bin("sbx"));
    setenv("SBX", sbx_bin, 1);
    n_agents = 0;
}

/* Whatever the test left (also after a failed assertion): removed through the CLI, then
 * every agent seen must be gone and the state directory empty. */
static void teardown(void)
{
    if (SBX("ps", "--json") == 0) {
        json_object *a = json_tokener_parse(out);
        for (size_t i = 0; a && i < json_object_array_length(a); i++) {
            char id[64];
            snprintf(id, sizeof(id), "%s", field(json_object_array_get_idx(a, i), "id"));
            cr_expect_eq(SBX("rm", "-f", id), 0, "cleanup rm -f %s: %s", id, out);
        }
        json_object_put(a);
    }
    for (size_t i = 0; i < n_agents; i++)
        cr_expect(wait_gone(agents[i]), "agent %d is still running", (int)agents[i]);
    char lock[128];
    snprintf(lock, sizeof(lock), "%s/lock", statedir);
    unlink(lock);
    cr_expect_eq(rmdir(statedir), 0, "state directory %s not empty", statedir);
    sbx_test_fini();
}

TestSuite(tools_cli_session, .init = setup, .fini = teardown, .timeout = 240);

static void write_host(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static char *read_host(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

Test(tools_cli_session, full_lifecycle)
{
    char id[64], st[32], spec[128];
    create(id, "-e", "GREETING=hi", NULL);
    pid_t agent = agent_of(id);
    char *ws = workspace_of(id);
    struct stat sb;
    cr_assert_eq(stat(ws, &sb), 0, "owned workspace %s", ws);

    /* exec: output, environment from create, exit status and signals passed through */
    cr_expect_eq(SBX("exec", id, "--", "sh", "-c", "echo $GREETING; echo oops >&2"), 0, "%s",
                 out);
    cr_expect(strstr(out, "hi\n") && strstr(out, "oops\n"), "%s", out);
    cr_expect_eq(SBX("exec", id, "--", "sh", "-c", "exit 7"), 7);
    cr_expect_eq(SBX("exec", id, "--", "sh", "-c", "kill -TERM $$"), 128 + 15);
    cr_expect_eq(SBX("exec", "-t", "0.3", id, "--", "sleep", "100"), 124);
    cr_expect_eq(sh("echo piped | \"$SBX\" exec -i %s -- cat", id), 0);
    cr_expect_str_eq(out, "piped\n");

    /* cp in and out, host files and - both ways */
    char hin[128], hout[128];
    snprintf(hin, sizeof(hin), "%s/in.txt", statedir);
    snprintf(hout, sizeof(hout), "%s/out.txt", statedir);
    write_host(hin, "file content\n");
    snprintf(spec, sizeof(spec), "%s:dir/hello.txt", id);
    cr_assert_eq(SBX("cp", hin, spec), 0, "%s", out);
    cr_assert_eq(SBX("cp", spec, hout), 0, "%s", out);
    cr_expect_str_eq(read_host(hout), "file content\n");
    cr_expect_eq(stat(hout, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0644);
    unlink(hin);
    unlink(hout);
    cr_expect_eq(sh("printf 'via stdin' | \"$SBX\" cp - %s:s.txt && \"$SBX\" cp %s:s.txt -", id,
                    id),
                 0, "%s", out);
    cr_expect_str_eq(out, "via stdin");

    /* ls */
    cr_expect_eq(SBX("ls", id, "dir"), 0, "%s", out);
    cr_expect(strncmp(out, "-rw-r--r-- sandbox sandbox 13 ", 30) == 0, "%s", out);
    cr_expect(strstr(out, " hello.txt\n") != NULL, "%s", out);
    cr_expect_eq(SBX("ls", "--json", id), 0, "%s", out);
    json_object *a = json_tokener_parse(out);
    cr_assert_not_null(a, "%s", out);
    int saw_dir = 0;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *e = json_object_array_get_idx(a, i);
        if (!strcmp(field(e, "name"), "dir"))
            saw_dir = !strcmp(field(e, "kind"), "directory");
    }
    json_object_put(a);
    cr_expect(saw_dir, "ls --json lists dir as a directory");

    /* extract a tar made on the host */
    cr_assert_eq(sh("cd %s && mkdir -p t/d && echo inside > t/d/x.txt && tar -C t -cf t.tar d "
                    "&& \"$SBX\" extract %s sub/t.tar < t.tar && rm -rf t t.tar",
                    statedir, id),
                 0, "%s", out);
    cr_expect_eq(SBX("exec", id, "--", "cat", "sub/d/x.txt"), 0, "%s", out);
    cr_expect_str_eq(out, "inside\n");

    /* snapshot to a file, change the workspace, restore: the contents come back */
    char tar[128];
    snprintf(tar, sizeof(tar), "%s/ws.tar", statedir);
    cr_assert_eq(sh("\"$SBX\" snapshot %s > %s", id, tar), 0, "%s", out);
    cr_expect_str_eq(out, "", "no progress without a terminal: %s", out);
    cr_expect_eq(SBX("exec", id, "--", "sh", "-c", "rm -rf dir sub; echo new > new.txt"), 0);
    cr_assert_eq(sh("\"$SBX\" restore %s < %s", id, tar), 0, "%s", out);
    unlink(tar);
    cr_expect_eq(SBX("exec", id, "--", "sh", "-c", "cat dir/hello.txt sub/d/x.txt; ls"), 0);
    cr_expect_str_eq(out, "file content\ninside\ndir\ns.txt\nsub\n");

    /* ps, stop, start */
    cr_expect_str_eq(ps_status(id, st, sizeof(st)), "running");
    cr_expect_eq(SBX("start", id), 125, "starting a running session");
    cr_expect(strstr(out, "already running") != NULL, "%s", out);
    cr_assert_eq(SBX("stop", id), 0, "%s", out);
    cr_expect(wait_gone(agent), "stop ends the sandbox");
    cr_expect_eq(SBX("stop", id), 0, "stopping a stopped session is a no-op: %s", out);
    cr_expect_str_eq(ps_status(id, st, sizeof(st)), "stopped");
    cr_expect_eq(SBX("exec", id, "--", "true"), 125);
    cr_expect(strstr(out, "stopped") != NULL, "%s", out);
    cr_assert_eq(SBX("start", id), 0, "%s", out);
    pid_t agent2 = agent_of(id);
    cr_expect_neq(agent2, agent);
    cr_expect_str_eq(ps_status(id, st, sizeof(st)), "running");
    cr_expect_eq(SBX("exec", id, "--", "cat", "dir/hello.txt"), 0, "%s", out);
    cr_expect_str_eq(out, "file content\n");

    /* rm: refused while running, then forced */
    cr_expect_eq(SBX("rm", id), 125);
    cr_expect(strstr(out, "is running: sbx stop it first or use -f") != NULL, "%s", out);
    cr_expect(!pid_gone(agent2), "a refused rm leaves the session running");
    cr_assert_eq(SBX("rm", "-f", id), 0, "%s", out);
    cr_expect(wait_gone(agent2), "rm -f ends the sandbox");
    cr_expect_eq(ps_count(), 0);
    cr_expect_neq(stat(ws, &sb), 0, "the owned workspace %s is removed", ws);
    free(ws);
}

Test(tools_cli_session, names_prefixes_and_unknown_sessions)
{
    char id[64], prefix[16];
    create(id, "--name", "web-1", NULL);
    cr_expect_eq(SBX("exec", "web-1", "--", "sh", "-c", "echo by-name"), 0, "%s", out);
    cr_expect_str_eq(out, "by-name\n");
    snprintf(prefix, sizeof(prefix), "%.6s", id);
    cr_expect_eq(SBX("exec", prefix, "--", "true"), 0, "a unique prefix: %s", out);
    cr_expect_eq(SBX("exec", "zzz", "--", "true"), 125, "too short for a prefix");

    /* A taken name is refused, and nothing is left of the refused create. */
    cr_expect_eq(SBX("create", "--name", "web-1"), 125);
    cr_expect(strstr(out, "'web-1' is taken") != NULL, "%s", out);
    cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
    cr_expect_eq(ps_count(), 1);
    cr_expect_eq(SBX("create", "--name", "-bad"), 2, "%s", out);
    cr_expect_eq(SBX("create", "--name", "a/b"), 2, "%s", out);

    static const char *const cmds[][2] = {{"exec", "nosuch"}, {"ls", "nosuch"},
                                          {"stop", "nosuch"}, {"start", "nosuch"},
                                          {"rm", "nosuch"},   {"snapshot", "nosuch"}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        int st = !strcmp(cmds[i][0], "exec") ? SBX("exec", "nosuch", "--", "true")
                                             : SBX((char *)cmds[i][0], "nosuch");
        cr_expect_eq(st, 125, "%s: %d", cmds[i][0], st);
        cr_expect_str_eq(out, "sbx: no session 'nosuch' (see sbx ps)\n", "%s", cmds[i][0]);
    }
    cr_expect_eq(SBX("cp", "nosuch:x", "-"), 125);
    cr_expect_str_eq(out, "sbx: no session 'nosuch' (see sbx ps)\n");

    cr_assert_eq(SBX("rm", "-f", "web-1"), 0, "%s", out);
    cr_expect_eq(ps_count(), 0);
    /* The name is free again. */
    char again[64];
    create(again, "--name", "web-1", NULL);
    cr_expect_str_neq(again, id);
}

Test(tools_cli_session, gc_removes_gone_sessions_and_keeps_stopped_ones)
{
    char gone[64], stopped[64];
    create(gone, NULL);
    create(stopped, "--name", "kept", NULL);
    pid_t victim = agent_of(gone);
    char *ws = workspace_of(gone);
    cr_assert_eq(SBX("stop", "kept"), 0, "%s", out);
    cr_assert_eq(kill(victim, SIGKILL), 0);
    cr_assert(wait_gone(victim));
    char st[32];
    cr_expect_str_eq(ps_status(gone, st, sizeof(st)), "gone");
    cr_expect_str_eq(ps_status(stopped, st, sizeof(st)), "stopped");
    cr_expect_eq(SBX("exec", gone, "--", "true"), 125);
    cr_expect(strstr(out, "is not running (its sandbox is gone)") != NULL, "%s", out);

    cr_assert_eq(SBX("gc"), 0, "%s", out);
    char want[128];
    snprintf(want, sizeof(want), "removed %s\n", gone);
    cr_expect_str_eq(out, want);
    cr_expect_null(ps_status(gone, st, sizeof(st)));
    cr_expect_str_eq(ps_status(stopped, st, sizeof(st)), "stopped");
    struct stat sb;
    cr_expect_neq(stat(ws, &sb), 0, "gc removes the owned workspace %s", ws);
    free(ws);
    cr_expect_eq(SBX("gc"), 0);
    cr_expect_str_eq(out, "", "nothing more to collect");
    cr_expect_eq(SBX("rm", "kept"), 0, "a stopped session needs no -f: %s", out);
    cr_expect_eq(ps_count(), 0);
}

Test(tools_cli_session, failed_copies_leave_no_host_file)
{
    char id[64], dir[128], dst[160], spec[128];
    create(id, NULL);
    snprintf(dir, sizeof(dir), "%s/out", statedir);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(dst, sizeof(dst), "%s/copy.txt", dir);
    snprintf(spec, sizeof(spec), "%s:missing.txt", id);
    cr_expect_eq(SBX("cp", spec, dst), 125);
    cr_expect(strstr(out, "missing.txt") != NULL, "%s", out);
    cr_expect_eq(strchr(out, '\n'), out + strlen(out) - 1, "one line: %s", out);
    struct stat sb;
    cr_expect_neq(stat(dst, &sb), 0, "no partial file");
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."));
    closedir(d);
    cr_expect_eq(n, 0, "no temporary file left in %s", dir);

    /* Directories are refused with a pointer to the tree commands. */
    cr_expect_eq(SBX("exec", id, "--", "mkdir", "sub"), 0);
    snprintf(spec, sizeof(spec), "%s:sub", id);
    cr_expect_eq(SBX("cp", spec, dst), 125);
    cr_expect(strstr(out, "directory") && strstr(out, "snapshot"), "%s", out);
    cr_expect_neq(stat(dst, &sb), 0);
    snprintf(spec, sizeof(spec), "%s:x", id);
    cr_expect_eq(SBX("cp", dir, spec), 125);
    cr_expect(strstr(out, "directory") && strstr(out, "extract"), "%s", out);
    cr_expect_eq(rmdir(dir), 0);

    /* Usage: exactly one side in the session. */
    cr_expect_eq(SBX("cp", "a", "b"), 2);
    cr_expect_eq(SBX("cp", spec, spec), 2);
}

Test(tools_cli_session, snapshot_dir_survives_a_lost_workspace)
{
    char snaps[128];
    snprintf(snaps, sizeof(snaps), "%s/snaps", statedir);
    char id[64];
    create(id, "--snapshot-dir", snaps, "--name", "s", NULL);
    cr_assert_eq(SBX("exec", "s", "--", "sh", "-c", "echo kept > k.txt"), 0, "%s", out);
    cr_assert_eq(SBX("stop", "s"), 0, "%s", out);
    char *ws = workspace_of(id);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf \"$(dirname '%s')\"", ws); /* sbx-ws-XXXXXX */
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(SBX("start", "s"), 0, "%s", out);
    agent_of(id);
    cr_expect_eq(SBX("exec", "s", "--", "cat", "k.txt"), 0, "%s", out);
    cr_expect_str_eq(out, "kept\n", "restored from the snapshot");
    char *ws2 = workspace_of(id);
    cr_expect_str_neq(ws2, ws, "a new owned workspace");
    cr_assert_eq(SBX("rm", "-f", "s"), 0, "%s", out);
    struct stat sb;
    cr_expect_neq(stat(ws2, &sb), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snaps);
    cr_expect_eq(system(cmd), 0);
    free(ws);
    free(ws2);
}

Test(tools_cli_session, a_workspace_given_with_w_is_never_removed)
{
    char ws[128];
    snprintf(ws, sizeof(ws), "%s/ws", statedir);
    cr_assert_eq(mkdir(ws, 0755), 0);
    if (geteuid() == 0)
        cr_assert_eq(chown(ws, 4242, 4242), 0);
    char id[64];
    create(id, "-w", ws, "--name", "mine", NULL);
    cr_expect_eq(SBX("exec", "mine", "--", "sh", "-c", "echo x > f"), 0, "%s", out);
    cr_assert_eq(SBX("rm", "-f", "mine"), 0, "%s", out);
    char f[160];
    snprintf(f, sizeof(f), "%s/f", ws);
    cr_expect_str_eq(read_host(f), "x\n");
    unlink(f);
    cr_expect_eq(rmdir(ws), 0);
}

Test(tools_cli_session, help_usage_and_limits)
{
    cr_expect_eq(SBX("--help"), 0);
    cr_expect(strstr(out, "create") && strstr(out, "snapshot") && strstr(out, "gc"), "%s", out);
    static const char *const cmds[] = {"create", "exec",     "ps",      "stop", "start", "rm",
                                       "gc",     "ls",       "cp",      "extract",
                                       "snapshot", "restore"};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        cr_expect_eq(SBX((char *)cmds[i], "--help"), 0, "%s --help", cmds[i]);
        char want[64];
        snprintf(want, sizeof(want), "usage: sbx %s", cmds[i]);
        cr_expect(strncmp(out, want, strlen(want)) == 0, "%s", out);
    }
    cr_expect_eq(SBX("exec"), 2);
    cr_expect(strstr(out, "sbx exec --help") != NULL, "%s", out);
    cr_expect_eq(SBX("create", "--frobnicate"), 2);
    cr_expect_eq(SBX("create", "--nproc", "0"), 2);
    cr_expect_eq(SBX("ps", "extra"), 2);
    cr_expect_eq(SBX("rm"), 2);
    cr_expect_eq(SBX("extract", "--scheme", "rar", "x", "y"), 2);
    cr_expect_eq(ps_count(), 0);

    /* The control socket path must fit sun_path: a long state directory is refused up
     * front, before any sandbox starts. */
    char longdir[200];
    snprintf(longdir, sizeof(longdir), "%s/%s", statedir,
             "a-rather-long-directory-name-that-pushes-the-socket-past-the-limit");
    setenv("SBX_STATE_DIR", longdir, 1);
    cr_expect_eq(SBX("create"), 125);
    cr_expect(strstr(out, "too long") != NULL, "%s", out);
    setenv("SBX_STATE_DIR", statedir, 1);
    rmdir(longdir);
}

Test(tools_cli_session, progress_only_on_a_terminal)
{
    SBX_TEST_SKIP_UNLESS(access("/usr/bin/script", X_OK) == 0, "script (util-linux) missing");
    char id[64], tar[128];
    create(id, NULL);
    snprintf(tar, sizeof(tar), "%s/ws.tar", statedir);
    /* script gives the command a terminal: stderr shows progress, cleared at the end. */
    cr_assert_eq(sh("script -qec '\"$SBX\" snapshot %s > %s' /dev/null", id, tar), 0, "%s",
                 out);
    cr_expect(strstr(out, "sbx: snapshot: ") && strstr(out, "MB/s"), "%s", out);
    size_t n = strlen(out);
    cr_expect(n >= 4 && !strcmp(out + n - 4, "\r\033[K"), "the line is cleared: %s", out);
    cr_assert_eq(sh("script -qec '\"$SBX\" restore %s < %s' /dev/null", id, tar), 0, "%s",
                 out);
    cr_expect(strstr(out, "sbx: restore: ") != NULL, "%s", out);
    /* ...and a terminal never receives the tar. */
    cr_expect_eq(sh("script -qec '\"$SBX\" snapshot %s' /dev/null", id), 125, "%s", out);
    cr_expect(strstr(out, "refusing to write a tar to a terminal") != NULL, "%s", out);
    unlink(tar);
}

/* THREATS T04: `sbx exec` on a terminal shows escape sequences instead of obeying them. */
Test(tools_cli_session, exec_shows_escape_sequences_on_a_terminal)
{
    SBX_TEST_SKIP_UNLESS(access("/usr/bin/script", X_OK) == 0, "script (util-linux) missing");
    char id[64];
    create(id, NULL);
    cr_assert_eq(sh("script -qec '\"$SBX\" exec %s -- printf \"\\033]0;pwn\\aok\"' /dev/null",
                    id),
                 0, "%s", out);
    cr_expect(strstr(out, "^[]0;pwn^Gok") != NULL, "%s", out);
    cr_expect(strchr(out, '\033') == NULL, "raw ESC: %s", out);
    cr_assert_eq(sh("script -qec '\"$SBX\" exec --raw-output %s -- printf \"\\033]0;pwn\\aok\"' "
                    "/dev/null",
                    id),
                 0, "%s", out);
    cr_expect(strstr(out, "\033]0;pwn\aok") != NULL, "%s", out);
}

Test(tools_cli_session, rm_force_ends_a_running_command)
{
    char id[64];
    create(id, "--name", "busy", NULL);
    /* The exec holds the session's lock only while it attaches: rm -f does not wait for the
     * command, it ends it, and the exec reports the lost sandbox. */
    cr_expect_eq(sh("cd %s && \"$SBX\" exec busy -- sh -c 'echo started; sleep 30' > exec.out "
                    "2>&1 & until grep -q started %s/exec.out 2>/dev/null; do sleep 0.05; done; "
                    "\"$SBX\" rm -f busy; r=$?; wait $!; e=$?; echo \"rm=$r exec=$e\"",
                    statedir, statedir),
                 0, "%s", out);
    cr_expect_str_eq(out, "rm=0 exec=125\n");
    char path[128];
    snprintf(path, sizeof(path), "%s/exec.out", statedir);
    char *log = read_host(path);
    cr_expect(log && strstr(log, "started\n") && strstr(log, "sbx: "), "%s", log);
    unlink(path);
    cr_expect_eq(ps_count(), 0);
}

/* Limits given at create hold for every exec, survive stop/start, and their cgroups go at rm. */
Test(tools_cli_session, limits_given_at_create)
{
    char id[64];
    create(id, "--pids", "30", "--nofile", "77", "--memory", "64M", NULL);
    cr_expect_eq(SBX("exec", id, "--", "sh", "-c", "ulimit -n"), 0, "%s", out);
    cr_expect_str_eq(out, "77\n");
    cr_expect_eq(SBX("exec", id, "--", "sh", "-c", "exec python3 -c 'b = bytearray(256 << 20)'"),
                 137, "the hog is OOM-killed: %s", out);
    char cg[128];
    snprintf(cg, sizeof(cg), "/proc/%d/cgroup", (int)agent_of(id));
    char *text = read_host(cg);
    cr_assert_not_null(text);
    cr_expect_neq(strstr(text, id), NULL, "the agent is in its session cgroup: %s", text);
    cr_expect_eq(SBX("stop", id), 0, "%s", out);
    cr_expect_eq(SBX("start", id), 0, "%s", out);
    cr_expect_eq(SBX("exec", id, "--", "sh", "-c", "ulimit -n"), 0, "%s", out);
    cr_expect_str_eq(out, "77\n", "limits come back with start");
    pid_t agent = agent_of(id);
    cr_expect_eq(SBX("rm", "-f", id), 0, "%s", out);
    cr_expect(wait_gone(agent));
    cr_expect_eq(sh("find /sys/fs/cgroup -maxdepth 6 -name 'sbx-%s' | wc -l", id), 0);
    cr_expect_str_eq(out, "0\n", "the session's cgroups are gone");
}

/* The forwarder's endpoint for PORT, from `sbx port ID PORT` ("127.0.0.1:N"). */
static unsigned cli_port(const char *id, const char *port)
{
    int st = SBX("port", (char *)id, (char *)port);
    cr_assert_eq(st, 0, "sbx port %s: %s", port, out);
    unsigned p = 0;
    cr_assert_eq(sscanf(out, "127.0.0.1:%u\n", &p), 1, "sbx port printed '%s'", out);
    return p;
}

/* Connects to 127.0.0.1:port and echoes `msg`; 0 when it came back. */
static int echo_through(unsigned port, const char *msg)
{
    char script[256];
    snprintf(script, sizeof(script),
             "exec 3<>/dev/tcp/127.0.0.1/%u && printf '%s' >&3 && head -c %zu <&3", port, msg,
             strlen(msg));
    char *const argv[] = {"/usr/bin/timeout", "10", "/bin/bash", "-c", script, NULL};
    return sbx_test_run_host(argv, out, sizeof(out)) == 0 && strcmp(out, msg) == 0 ? 0 : -1;
}

Test(tools_cli_session, create_publish_and_port_reach_a_server_inside)
{
    char id[37];
    create(id, "-p", "8000", "-p", "8001", NULL);
    /* Every exposed port, then one. */
    cr_assert_eq(SBX("port", id), 0, "%s", out);
    cr_expect(strstr(out, "8000 127.0.0.1:") && strstr(out, "8001 127.0.0.1:"), "%s", out);
    unsigned p = cli_port(id, "8000");
    cr_expect_eq(cli_port(id, "8000"), p, "the same forwarder answers again");
    cr_expect_eq(SBX("port", id, "9000"), 125);
    cr_expect(strstr(out, "port 9000 is not configured for host exposure"), "%s", out);

    char src[4200];
    snprintf(src, sizeof(src), "%s", sbx_test_bin("port_server"));
    char dst[64];
    snprintf(dst, sizeof(dst), "%s:port_server", id);
    cr_assert_eq(SBX("cp", src, dst), 0, "%s", out);
    cr_assert_eq(SBX("exec", id, "--", "chmod", "755", "port_server"), 0, "%s", out);
    /* The server runs as a detached exec that sbx rm ends. */
    cr_assert_eq(sh("$SBX exec %s -- ./port_server echo 8000 >/dev/null 2>&1 &", id), 0, "%s",
                 out);
    int ok = -1;
    for (int i = 0; i < 100 && ok < 0; i++)
        if ((ok = echo_through(p, "through the port")) < 0)
            usleep(50 * 1000);
    cr_expect_eq(ok, 0, "no echo through 127.0.0.1:%u: %s", p, out);

    /* rm ends the forwarder with the sandbox: the listener is gone. */
    cr_assert_eq(SBX("rm", "-f", id), 0, "%s", out);
    cr_expect_lt(echo_through(p, "x"), 0, "127.0.0.1:%u still answers after rm", p);
}

Test(tools_cli_session, net_proxy_is_served_after_create_exits)
{
    char id[37];
    cr_expect_eq(SBX("create", "--allow", "example.com"), 2, "--allow needs --net proxy: %s", out);
    create(id, "--net", "proxy", "--allow", "example.com", NULL);
    /* create has exited: the session's forwarder serves the proxy now. */
    cr_assert_eq(SBX("exec", id, "--", "bash", "-c",
                     "exec 3<>/dev/tcp/127.0.0.1/3128 && printf 'CONNECT evil.test:443 "
                     "HTTP/1.1\\r\\n\\r\\n' >&3 && cat <&3"),
                 0, "%s", out);
    cr_expect(strstr(out, "HTTP/1.1 403") && strstr(out, "evil.test is not in this session's "
                                                         "allow list (allowed: example.com)"),
              "%s", out);
    cr_assert_eq(SBX("rm", "-f", id), 0, "%s", out);
}
