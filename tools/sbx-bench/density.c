/* density.c — session density: start idle sessions one after the other (100, or 20 with
 * --quick), keep them all, and measure what each costs.
 *
 * Memory comes from cgroup accounting: sbx-bench moves itself into a fresh memory cgroup below
 * its own (v1 memory controller or v2), so every sandbox it starts is charged there, kernel
 * objects included (namespaces, page tables, the root's tmpfs, mounts), which no per-process
 * figure shows; the growth of its usage divided by the number of sessions is the cost of one.
 * Without a usable memory cgroup it falls back to MemAvailable (machine-wide, so anything else
 * running shows up too) and says so. The agent's own proportional set size is reported
 * beside it. Start time is sbx_session_new + sbx_session_start of each session, with
 * the earlier ones still running.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sbx/sbx.h>

#include "bench.h"
#include "util.h"

static long meminfo_kib(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, k) && line[k] == ':') {
            v = atol(line + k + 1);
            break;
        }
    fclose(f);
    return v;
}

static long pss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "Pss:", 4)) {
            v = atol(line + 4);
            break;
        }
    fclose(f);
    return v;
}

/* A memory cgroup of our own, below the one we are in; its usage file in *usage. */
static int cgroup_enter(char *dir, size_t cap, char *usage, size_t ucap, char *parent_procs,
                        size_t pcap)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return -1;
    char line[1024], v1[512] = "", v2[512] = "";
    int have_v1 = 0, have_v2 = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b)
            continue;
        *b = '\0';
        if (!strcmp(a + 1, "memory")) {
            snprintf(v1, sizeof(v1), "%s", b + 1);
            have_v1 = 1;
        } else if (!strcmp(a + 1, "")) {
            snprintf(v2, sizeof(v2), "%s", b + 1);
            have_v2 = 1;
        }
    }
    fclose(f);
    const char *base = have_v1 ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup";
    const char *rel = have_v1 ? v1 : v2;
    if (!have_v1 && (!have_v2 || access("/sys/fs/cgroup/cgroup.controllers", F_OK) != 0))
        return -1;
    snprintf(parent_procs, pcap, "%s%s/cgroup.procs", base, rel);
    snprintf(dir, cap, "%s%s/sbx-bench-density-%d", base, strcmp(rel, "/") ? rel : "",
             (int)getpid());
    snprintf(usage, ucap, "%s/%s", dir, have_v1 ? "memory.usage_in_bytes" : "memory.current");
    if (mkdir(dir, 0755) < 0)
        return -1;
    char procs[1300];
    snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
    FILE *p = fopen(procs, "w");
    if (!p || fprintf(p, "%d\n", (int)getpid()) < 0 || fclose(p) != 0 ||
        access(usage, R_OK) != 0) {
        rmdir(dir);
        return -1;
    }
    return 0;
}

static long long read_ll(const char *path)
{
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (f && fscanf(f, "%lld", &v) != 1)
        v = -1;
    if (f)
        fclose(f);
    return v;
}

static void cgroup_leave(const char *dir, const char *parent_procs)
{
    FILE *p = fopen(parent_procs, "w");
    if (p) {
        fprintf(p, "%d\n", (int)getpid());
        fclose(p);
    }
    /* The sessions are gone; their last pages may take a moment to be uncharged. */
    for (int i = 0; i < 100 && rmdir(dir) < 0; i++)
        usleep(20000);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_density_run(const struct bench_settings *s, struct bench_density *d)
{
    memset(d, 0, sizeof(*d));
    int n = s->quick ? 20 : 100;
    char cg[1200], usage[1300], parent[1200];
    int in_cg = 0;
    sbx_session **v = calloc((size_t)n, sizeof(*v));
    double *ms = calloc((size_t)n, sizeof(*ms));
    if (!v || !ms) {
        bench_why(d->why, "out of memory");
        goto out;
    }
    sync();
    in_cg = cgroup_enter(cg, sizeof(cg), usage, sizeof(usage), parent, sizeof(parent)) == 0;
    long long cg_before = in_cg ? read_ll(usage) : -1;
    long before = meminfo_kib("MemAvailable");
    double pss = 0;
    int started = 0;
    for (int i = 0; i < n; i++) {
        if (s->progress)
            fprintf(stderr, "\r\033[Kdensity  starting session %d/%d", i + 1, n);
        sbx_session_opts o = SBX_SESSION_OPTS_INIT;
        o.flags = SBX_SESSION_EPHEMERAL_WORKSPACE;
        sbx_error *err = NULL;
        uint64_t t0 = sbx__now_ns();
        if (sbx_session_new(&o, &v[i], &err) < 0 || sbx_session_start(v[i], &err) < 0) {
            bench_why(d->why, "session %d: %s", i + 1, sbx_error_message(err));
            sbx_error_free(err);
            break;
        }
        ms[i] = sbx__ms_since(t0);
        started++;
    }
    if (s->progress)
        fprintf(stderr, "\r\033[K");
    if (started == n) {
        usleep(200 * 1000); /* let the sessions settle (helpers exit, pages get touched) */
        long after = meminfo_kib("MemAvailable");
        long long cg_after = in_cg ? read_ll(usage) : -1;
        for (int i = 0; i < n; i++) {
            long p = pss_kib(sbx_session_agent_pid(v[i]));
            pss += p > 0 ? (double)p : 0;
        }
        d->measured = before > 0 && after > 0;
        if (!d->measured)
            bench_why(d->why, "/proc/meminfo has no MemAvailable");
        d->sessions = n;
        d->kib_per_session = (double)(before - after) / n;
        d->method = "MemAvailable";
        if (cg_before >= 0 && cg_after >= 0) {
            d->kib_per_session = (double)(cg_after - cg_before) / 1024.0 / n;
            d->method = "cgroup";
            d->measured = 1;
        }
        d->agent_pss_kib = pss / n;
        d->sessions_per_gib = d->kib_per_session > 0 ? 1048576.0 / d->kib_per_session : 0;
        d->first_start_ms = ms[0];
        d->last_start_ms = ms[n - 1];
        qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
        d->median_start_ms = ms[n / 2];
    }
out:
    for (int i = 0; v && i < n; i++)
        sbx_session_free(v[i]);
    if (in_cg)
        cgroup_leave(cg, parent);
    free(v);
    free(ms);
}

void bench_density_table(const struct bench_density *d)
{
    printf("\nsession density  [density]\n");
    if (!d->measured) {
        printf("  FAILED: %s\n", d->why);
        return;
    }
    printf("  %d idle sessions: %.0f KiB each (%s), agent PSS %.0f KiB; %.0f fit in 1 GiB\n",
           d->sessions, d->kib_per_session, d->method, d->agent_pss_kib, d->sessions_per_gib);
    printf("  start time: first %.3f ms, median %.3f ms, %dth %.3f ms\n", d->first_start_ms,
           d->median_start_ms, d->sessions, d->last_start_ms);
}

static json_object *num(double v)
{
    char s[64];
    snprintf(s, sizeof(s), "%.3f", v);
    return json_object_new_double_s(v, s);
}

struct json_object *bench_density_json(const struct bench_density *d)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "measured", json_object_new_boolean(d->measured));
    if (!d->measured) {
        json_object_object_add(o, "reason", json_object_new_string(d->why));
        return o;
    }
    json_object_object_add(o, "sessions", json_object_new_int(d->sessions));
    json_object_object_add(o, "kib_per_session", num(d->kib_per_session));
    json_object_object_add(o, "memory_method", json_object_new_string(d->method));
    json_object_object_add(o, "agent_pss_kib", num(d->agent_pss_kib));
    json_object_object_add(o, "sessions_per_gib", num(d->sessions_per_gib));
    json_object_object_add(o, "first_start_ms", num(d->first_start_ms));
    json_object_object_add(o, "median_start_ms", num(d->median_start_ms));
    json_object_object_add(o, "last_start_ms", num(d->last_start_ms));
    return o;
}
