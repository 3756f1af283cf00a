/* sbx-bench --quick --json runs every case and reports honest, well-formed numbers. Timing is
 * not asserted: only that each present variant was measured and each absent one says why. */
#include <json-c/json.h>
#include <string.h>

#include "harness.h"

TestSuite(tools_bench, .timeout = 180);

static char out[1 << 20];

Test(tools_bench, quick_json_is_complete_and_well_formed)
{
    char *const argv[] = {(char *)sbx_test_bin("sbx-bench"), "--quick", "--json", NULL};
    int st = sbx_test_run_host(argv, out, sizeof(out));
    cr_assert_eq(st, 0, "sbx-bench failed (%d): %.2000s", st, out);
    /* run_host mixes stderr in (a progress line only on a terminal, so none here). */
    char *json = strchr(out, '{');
    cr_assert_not_null(json, "no JSON in: %.2000s", out);
    json_object *o = json_tokener_parse(json);
    cr_assert_not_null(o, "not JSON: %.2000s", json);
    json_object *cases, *machine;
    cr_assert(json_object_object_get_ex(o, "machine", &machine));
    cr_assert(json_object_object_get_ex(o, "cases", &cases));
    size_t n = json_object_array_length(cases);
    static const char *const want[][2] = {{"cold_true", "fork+exec"},   {"cold_true", "sbx run"},
                                          {"cold_true", "bwrap"},       {"cold_sh_echo", "sbx run"},
                                          {"warm_true", "fork+exec"},   {"warm_true", "sbx exec"},
                                          {"files_write_1k", "sbx"},    {"files_read_1k", "sbx"},
                                          {"files_write_1m", "sbx"},    {"files_read_1m", "sbx"},
                                          {"ws_persist", "tar -c"},     {"ws_persist", "sbx persist"},
                                          {"ws_hydrate", "tar -x"},     {"ws_hydrate", "sbx hydrate"},
                                          {"thru_seq", "sbx exec"},     {"thru_seq", "bwrap"},
                                          {"thru_par", "sbx exec"},     {"thru_par", "sbx run"},
                                          {"warm_true", "sbx exec CLI"},
                                          {"pty_line", "openpty"},      {"pty_line", "sbx pty"},
                                          {"events_exec", "jsonl"},     {"events_exec", "jsonl+redact"},
                                          {"net_connect", "loopback"},  {"net_connect", "sbx port"},
                                          {"net_1g", "loopback"},       {"net_1g", "sbx port"},
                                          {"cold_layers", "no seccomp"}, {"cold_layers", "+cgroup"},
                                          {"seccomp_attach", "1 instruction"},
                                          {"seccomp_attach", "sbx default"}};
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        int found = 0;
        for (size_t i = 0; i < n; i++) {
            json_object *c = json_object_array_get_idx(cases, i), *name, *variant;
            json_object_object_get_ex(c, "name", &name);
            json_object_object_get_ex(c, "variant", &variant);
            if (strcmp(json_object_get_string(name), want[w][0]) == 0 &&
                strcmp(json_object_get_string(variant), want[w][1]) == 0)
                found = 1;
        }
        cr_expect(found, "case %s/%s missing", want[w][0], want[w][1]);
    }
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(cases, i), *present, *v;
        cr_assert(json_object_object_get_ex(c, "present", &present));
        if (!json_object_get_boolean(present)) {
            cr_expect(json_object_object_get_ex(c, "reason", &v) && json_object_get_string(v)[0],
                      "an absent variant must say why");
            continue;
        }
        static const char *const nums[] = {"median_ms", "min_ms", "max_ms", "ratio_to_baseline"};
        for (size_t k = 0; k < 4; k++) {
            cr_assert(json_object_object_get_ex(c, nums[k], &v), "%s missing", nums[k]);
            cr_expect_gt(json_object_get_double(v), 0.0, "%s must be positive", nums[k]);
        }
        cr_assert(json_object_object_get_ex(c, "runs", &v));
        cr_expect_gt(json_object_get_int(v), 0);
        json_object *name = NULL;
        json_object_object_get_ex(c, "name", &name);
        if (!strncmp(json_object_get_string(name), "thru_", 5)) {
            cr_assert(json_object_object_get_ex(c, "commands_per_s", &v));
            cr_expect_gt(json_object_get_double(v), 0.0, "throughput must be positive");
        }
    }
    json_object *dens, *v;
    cr_assert(json_object_object_get_ex(o, "density", &dens), "density section missing");
    cr_assert(json_object_object_get_ex(dens, "measured", &v) && json_object_get_boolean(v),
              "density not measured");
    static const char *const dnums[] = {"sessions", "kib_per_session", "sessions_per_gib",
                                        "first_start_ms", "last_start_ms"};
    for (size_t k = 0; k < 5; k++) {
        cr_assert(json_object_object_get_ex(dens, dnums[k], &v), "density %s missing", dnums[k]);
        cr_expect_gt(json_object_get_double(v), 0.0, "density %s must be positive", dnums[k]);
    }
    json_object_put(o);
}
