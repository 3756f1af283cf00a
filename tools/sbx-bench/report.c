/* report.c — the results, as a table for people or as one JSON object (json-c). */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static void print_settings(const struct bench_machine *m, const struct bench_settings *s)
{
    printf("sbx-bench %s: %ld CPUs, Linux %s, %s\n", SBX_VERSION, m->nproc,
           m->kernel[0] ? m->kernel : "(unknown)",
           m->cpu_model[0] ? m->cpu_model : "(CPU model not in /proc/cpuinfo)");
    printf("%d measured runs per variant after %d warm-up, interleaved; %d ms idle before each "
           "measured run\n",
           s->runs, s->warmup, s->gap_ms);
}

static void print_row(const struct bench_result *r)
{
    const char *name = r->variant->name;
    if (r->status == BENCH_NOT_INSTALLED) {
        printf("  %-12s absent: %s\n", name, r->why);
    } else if (r->status == BENCH_FAILED) {
        printf("  %-12s FAILED: %s\n", name, r->why);
    } else if (bench_ops_per_run(r->bcase) > 0 && r->median_ms > 0) {
        printf("  %-12s %10.3f %10.3f %10.3f %11.2fx %9.0f/s\n", name, r->median_ms, r->min_ms,
               r->max_ms, r->ratio, bench_ops_per_run(r->bcase) * 1000.0 / r->median_ms);
    } else if (r->ratio > 0) {
        printf("  %-12s %10.3f %10.3f %10.3f %11.2fx\n", name, r->median_ms, r->min_ms, r->max_ms,
               r->ratio);
    } else {
        printf("  %-12s %10.3f %10.3f %10.3f %12s\n", name, r->median_ms, r->min_ms, r->max_ms,
               "-");
    }
}

void bench_report_table(const struct bench_machine *m, const struct bench_settings *s,
                        const struct bench_result *r, size_t n, const struct bench_density *d)
{
    print_settings(m, s);
    const struct bench_case *current = NULL;
    for (size_t i = 0; i < n; i++) {
        if (r[i].bcase != current) {
            current = r[i].bcase;
            printf("\n%s  [%s; baseline %s]\n", current->title, current->name,
                   current->variants[0].name);
            printf("  %-12s %10s %10s %10s %12s\n", "variant", "median ms", "min ms", "max ms",
                   "vs baseline");
        }
        print_row(&r[i]);
    }
    if (d)
        bench_density_table(d);
}

/* Milliseconds with three decimals (microseconds): what CLOCK_MONOTONIC over a process start
 * can honestly resolve, without json-c's 17 digits of noise. */
static json_object *jms(double v)
{
    char s[64];
    snprintf(s, sizeof(s), "%.3f", v);
    return json_object_new_double_s(v, s);
}

static json_object *jcase(const struct bench_result *r)
{
    json_object *o = json_object_new_object();
    int measured = r->status == BENCH_MEASURED;
    json_object_object_add(o, "name", json_object_new_string(r->bcase->name));
    json_object_object_add(o, "variant", json_object_new_string(r->variant->name));
    json_object_object_add(o, "present", json_object_new_boolean(r->status != BENCH_NOT_INSTALLED));
    json_object_object_add(o, "runs", json_object_new_int(r->runs));
    json_object_object_add(o, "median_ms", measured ? jms(r->median_ms) : NULL);
    json_object_object_add(o, "min_ms", measured ? jms(r->min_ms) : NULL);
    json_object_object_add(o, "max_ms", measured ? jms(r->max_ms) : NULL);
    json_object_object_add(o, "ratio_to_baseline", r->ratio > 0 ? jms(r->ratio) : NULL);
    if (bench_ops_per_run(r->bcase) > 0)
        json_object_object_add(o, "commands_per_s",
                               measured && r->median_ms > 0
                                   ? jms(bench_ops_per_run(r->bcase) * 1000.0 / r->median_ms)
                                   : NULL);
    if (!measured)
        json_object_object_add(o, "reason", json_object_new_string(r->why));
    return o;
}

int bench_report_json(const struct bench_machine *m, const struct bench_settings *s,
                      const struct bench_result *r, size_t n, const struct bench_density *d)
{
    json_object *root = json_object_new_object();
    json_object *jm = json_object_new_object();
    json_object_object_add(jm, "nproc", json_object_new_int64(m->nproc));
    json_object_object_add(jm, "kernel", json_object_new_string(m->kernel));
    json_object_object_add(jm, "cpu_model",
                           m->cpu_model[0] ? json_object_new_string(m->cpu_model) : NULL);
    json_object_object_add(root, "machine", jm);
    json_object *js = json_object_new_object();
    json_object_object_add(js, "runs", json_object_new_int(s->runs));
    json_object_object_add(js, "warmup", json_object_new_int(s->warmup));
    json_object_object_add(js, "gap_ms", json_object_new_int(s->gap_ms));
    json_object_object_add(root, "settings", js);
    json_object *jc = json_object_new_array();
    for (size_t i = 0; i < n; i++)
        json_object_array_add(jc, jcase(&r[i]));
    json_object_object_add(root, "cases", jc);
    if (d)
        json_object_object_add(root, "density", bench_density_json(d));
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = printf("%s\n", text) < 0 ? -1 : 0;
    json_object_put(root);
    return rc;
}
