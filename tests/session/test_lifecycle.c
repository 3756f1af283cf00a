/* Lifecycle: state object, stop/close/hooks ordering, snapshots on stop and restore on resume,
 * the manifest (spec TESTS.md sections J, K, O). */
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "session_util.h"

TestSuite(session_lifecycle, .init = sbx_test_init, .fini = sbx_test_fini, .timeout = 90);

static char snapdir[64];

static void make_snapdir(void)
{
    snprintf(snapdir, sizeof(snapdir), "/tmp/sbx-test-snap-XXXXXX");
    cr_assert_not_null(mkdtemp(snapdir));
}

static void remove_snapdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", snapdir);
    cr_expect_eq(system(cmd), 0);
}

static sbx_session *start_with(const char *manifest, const char *state, unsigned flags)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.snapshot_dir = snapdir;
    o.manifest_json = manifest;
    o.state_json = state;
    o.flags = flags;
    return sbx_test_start(&o);
}

static char *state_of(sbx_session *s)
{
    char *json = NULL;
    cr_assert_eq(sbx_session_state_json(s, &json, NULL), 0);
    return json;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

Test(session_lifecycle, state_json_has_the_pinned_fields_in_order)
{
    make_snapdir();
    sbx_session *s = start_with(NULL, NULL, 0);
    char *json = state_of(s);
    const char *keys[] = {"\"type\"", "\"session_id\"", "\"snapshot\"", "\"manifest\"",
                          "\"exposed_ports\"", "\"snapshot_fingerprint\"",
                          "\"snapshot_fingerprint_version\"", "\"workspace_root_ready\""};
    const char *prev = json;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *at = strstr(json, keys[i]);
        cr_assert_not_null(at, "%s missing", keys[i]);
        cr_expect_gt(at, prev - (i == 0), "%s out of order", keys[i]);
        prev = at;
    }
    struct json_object *o = json_tokener_parse(json);
    cr_assert_not_null(o);
    cr_expect_str_eq(jstr(o, "session_id"), sbx_session_id(s));
    struct json_object *ready = NULL;
    cr_expect(json_object_object_get_ex(o, "workspace_root_ready", &ready) &&
              json_object_get_boolean(ready));
    json_object_put(o);
    free(json);
    sbx_session_free(s);
    remove_snapdir();
}

Test(session_lifecycle, stop_persists_and_a_resumed_session_restores)
{
    make_snapdir();
    sbx_session *s = start_with(NULL, NULL, 0);
    cr_assert_eq(st_write_str(s, "notes/a.txt", "persist me", NULL), 0);
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_stop(s, &err), 0, "%s", sbx_error_message(err));
    cr_expect(sbx_session_running(s), "stop() must not tear the sandbox down");
    char *json = state_of(s);
    struct json_object *o = json_tokener_parse(json);
    cr_expect_str_eq(jstr(o, "snapshot_fingerprint_version"), "sbx_workspace_tar_sha256_v1");
    cr_expect_not_null(jstr(o, "snapshot_fingerprint"));
    json_object_put(o);
    char tar[128];
    snprintf(tar, sizeof(tar), "%s/%s.tar", snapdir, sbx_session_id(s));
    struct stat st;
    cr_expect_eq(stat(tar, &st), 0, "snapshot file %s", tar);
    char id[37];
    snprintf(id, sizeof(id), "%s", sbx_session_id(s));
    /* close = hooks, stop, shutdown; free removes the owned workspace. */
    cr_assert_eq(sbx_session_close(s, &err), 0, "%s", sbx_error_message(err));
    cr_expect(!sbx_session_running(s));
    sbx_session_free(s);

    sbx_session *r = start_with(NULL, json, 0);
    cr_expect_str_eq(sbx_session_id(r), id, "the resumed session keeps its id");
    char *got = st_read_str(r, "notes/a.txt", &err);
    cr_expect_str_eq(got, "persist me", "%s", sbx_error_message(err));
    free(got);
    free(json);
    sbx_session_free(r);
    remove_snapdir();
}

Test(session_lifecycle, unchanged_preserved_workspace_is_not_restored)
{
    make_snapdir();
    sbx_session *s = start_with(NULL, NULL, SBX_SESSION_KEEP_WORKSPACE);
    cr_assert_eq(st_write_str(s, "a.txt", "v1", NULL), 0);
    sbx_error *err = NULL;
    cr_assert_eq(sbx_session_close(s, &err), 0, "%s", sbx_error_message(err));
    char *json = state_of(s);
    char ws[4096];
    snprintf(ws, sizeof(ws), "%s", sbx_session_workspace(s));
    char tar[128];
    snprintf(tar, sizeof(tar), "%s/%s.tar", snapdir, sbx_session_id(s));
    sbx_session_free(s);

    /* Corrupt the snapshot: if start() tried to restore it, it would fail. */
    int fd = open(tar, O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, "XXXX", 4, 600), 4);
    close(fd);
    sbx_session *r = start_with(NULL, json, SBX_SESSION_KEEP_WORKSPACE);
    char *got = st_read_str(r, "a.txt", NULL);
    cr_expect_str_eq(got, "v1");
    free(got);
    /* Now change the workspace: the fingerprint differs, a restore is needed, and the corrupt
     * snapshot is refused with the workspace left as it was. */
    cr_assert_eq(st_write_str(r, "a.txt", "v2", NULL), 0);
    sbx_session_free(r);
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    o.state_json = json;
    o.flags = SBX_SESSION_KEEP_WORKSPACE;
    sbx_session *x = NULL;
    cr_assert_eq(sbx_session_new(&o, &x, NULL), 0);
    cr_expect_eq(sbx_session_start(x, &err), SBX_ESNAPSHOT_RESTORE);
    cr_expect_str_eq(sbx_error_context_get(err, "reason"), "digest_mismatch", "%s",
                     sbx_error_message(err));
    sbx_error_free(err);
    sbx_session_free(x);
    char path[4200];
    snprintf(path, sizeof(path), "%s/a.txt", ws);
    FILE *f = fopen(path, "r");
    char buf[8] = "";
    cr_assert_not_null(f);
    cr_expect_not_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    cr_expect_str_eq(buf, "v2", "a refused restore leaves the workspace alone");
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf \"$(dirname '%s')\"", ws); /* sbx-ws-XXXXXX */
    cr_expect_eq(system(cmd), 0);
    free(json);
    remove_snapdir();
}

struct hook_log {
    char order[16];
    int fail_at;
};

static int hook(sbx_session *s, void *arg, sbx_error **err)
{
    (void)s;
    struct hook_log *l = arg;
    size_t n = strlen(l->order);
    l->order[n] = (char)('0' + n);
    if ((int)n == l->fail_at) {
        *err = NULL;
        return SBX_EIO;
    }
    return 0;
}

Test(session_lifecycle, hooks_run_once_in_order_and_a_failure_skips_stop)
{
    make_snapdir();
    sbx_session *s = start_with(NULL, NULL, 0);
    struct hook_log log = {.fail_at = 1};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sbx_session_register_pre_stop_hook(s, hook, &log, NULL), 0);
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_close(s, &err), SBX_EIO, "the first hook failure is returned");
    sbx_error_free(err);
    cr_expect_str_eq(log.order, "012", "every hook ran, in order, even after a failure");
    cr_expect(!sbx_session_running(s), "shutdown still runs after a hook failure");
    char tar[128];
    struct stat st;
    snprintf(tar, sizeof(tar), "%s/%s.tar", snapdir, sbx_session_id(s));
    cr_expect_neq(stat(tar, &st), 0, "stop (persist) is skipped after a hook failure");
    cr_expect_eq(sbx_session_close(s, NULL), 0, "a second close is harmless");
    cr_expect_neq(stat(tar, &st), 0, "and still never persists");
    sbx_session_free(s);
    remove_snapdir();
}

Test(session_lifecycle, failed_stop_in_close_leaves_the_session_up)
{
    make_snapdir();
    sbx_session *s = start_with(NULL, NULL, 0);
    /* The store cannot be written: a file where the directory should be. */
    remove_snapdir();
    int fd = open(snapdir, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_close(s, &err), SBX_EWORKSPACE_STOP);
    cr_expect_str_eq(sbx_error_context_get(err, "cause_code"), "snapshot_persist_error", "%s",
                     sbx_error_message(err));
    sbx_error_free(err);
    cr_expect(sbx_session_running(s), "shutdown is skipped when stop fails");
    sbx_session_free(s);
    unlink(snapdir);
}

Test(session_lifecycle, wrong_state_calls_return_estate)
{
    make_snapdir();
    sbx_session *s = start_with(NULL, NULL, 0);
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_start(s, &err), SBX_ESTATE, "second start");
    sbx_error_free(err);
    err = NULL;
    cr_assert_eq(sbx_session_shutdown(s, NULL), 0);
    cr_expect_eq(sbx_session_stop(s, &err), SBX_ESTATE);
    sbx_error_free(err);
    err = NULL;
    cr_expect_eq(sbx_session_start(s, &err), SBX_ESTATE);
    sbx_error_free(err);
    err = NULL;
    int fd = memfd_create("x", 0);
    cr_expect_eq(sbx_session_persist_workspace(s, fd, &err), SBX_ESTATE);
    sbx_error_free(err);
    close(fd);
    sbx_session_free(s);
    remove_snapdir();
}

Test(session_lifecycle, bad_state_and_snapshot_ids_are_refused)
{
    sbx_session_opts o = SBX_SESSION_OPTS_INIT;
    sbx_session *s = NULL;
    sbx_error *err = NULL;
    o.state_json = "{\"type\":\"docker\",\"session_id\":\"x\"}";
    cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_ECONFIG);
    sbx_error_free(err);
    err = NULL;
    o.state_json = NULL;
    o.snapshot_dir = "/tmp";
    o.snapshot_id = "../escape";
    cr_expect_eq(sbx_session_new(&o, &s, &err), SBX_EINVAL);
    cr_expect_null(s);
    sbx_error_free(err);
}

static const char *manifest =
    "{\"version\":1,\"root\":\"/work\",\"entries\":{"
    "\"README.md\":{\"type\":\"file\",\"content\":\"hello\",\"permissions\":\"0640\"},"
    "\"src\":{\"type\":\"dir\",\"children\":{\"main.sh\":{\"type\":\"file\","
    "\"content\":\"echo hi\",\"permissions\":\"0755\"}}},"
    "\"tmp.txt\":{\"type\":\"file\",\"content\":\"scratch\",\"ephemeral\":true}},"
    "\"environment\":{\"value\":{\"GREETING\":\"hi there\"}},"
    "\"users\":[{\"name\":\"alice\"}],"
    "\"groups\":[{\"name\":\"dev\",\"users\":[{\"name\":\"alice\"},{\"name\":\"bob\"}]}]}";

Test(session_lifecycle, manifest_is_applied_at_start)
{
    make_snapdir();
    sbx_session *s = start_with(manifest, NULL, 0);
    cr_expect_str_eq(sbx_session_root(s), "/work");
    sbx_exec_result *r = sbx_test_sh(s, "stat -c '%a %n' README.md src src/main.sh tmp.txt; "
                                        "sh src/main.sh; echo \"$GREETING\"");
    cr_expect_str_eq((const char *)r->out,
                     "640 README.md\n755 src\n755 src/main.sh\n755 tmp.txt\nhi\nhi there\n", "%s",
                     r->err);
    sbx_exec_result_free(r);
    if (sbx_session_agent_pid(s) && getuid() == 0) {
        sbx_exec_result *a = NULL;
        cr_assert_eq(sbx_test_sh_as(s, "alice", "id -un; id -gn; stat -c %U /home/alice && "
                                                "grep '^dev:' /etc/group",
                                    &a, NULL),
                     0);
        cr_expect_str_eq((const char *)a->out, "alice\nalice\nalice\ndev:x:3000:alice,bob\n",
                         "%s", a->err);
        sbx_exec_result_free(a);
    }
    /* Ephemeral entries are not part of the snapshot. */
    sbx_error *err = NULL;
    int fd = memfd_create("snap", MFD_CLOEXEC);
    cr_assert_eq(sbx_session_stop(s, &err), 0, "%s", sbx_error_message(err));
    close(fd);
    char *json = state_of(s);
    sbx_session_free(s);
    sbx_session *x = start_with(NULL, json, 0);
    r = sbx_test_sh(x, "ls; cat tmp.txt");
    cr_expect_str_eq((const char *)r->out, "README.md\nsrc\ntmp.txt\nscratch",
                     "restored files plus re-applied ephemeral ones");
    sbx_exec_result_free(r);
    free(json);
    sbx_session_free(x);
    remove_snapdir();
}

Test(session_lifecycle, noop_snapshot_stop_persists_nothing)
{
    sbx_session *s = sbx_test_start(NULL);
    sbx_error *err = NULL;
    cr_expect_eq(sbx_session_stop(s, &err), 0);
    char *json = state_of(s);
    cr_expect_not_null(strstr(json, "\"snapshot_fingerprint\": null"), "%s", json);
    free(json);
    sbx_session_free(s);
}
