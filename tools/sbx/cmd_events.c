/* cmd_events.c — `sbx events tail FILE`: a JSONL event log (sbx run --events) for people.
 *
 * One line per operation: start events are folded into their finish event (matched by span
 * id), so a line shows when the op started, its duration, ok and error code. A start with no
 * finish (the process died mid-operation) is shown at the end as "unfinished". Lines that do
 * not parse are reported, not skipped silently: a log is audit data. Colours only when stdout
 * is a terminal and NO_COLOR is unset. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The instrumentation behind --events FILE / --events-stderr (NULL when neither is given).
 * A file sink raises nothing: an unwritable log must not change what the command does; its
 * failures are reported once at the end by the caller through sbx_events_failures(). Prints
 * the error and returns -1 when the file cannot be opened. */
int sbx_cli_events_make(const char *path, int to_stderr, sbx_events **out)
{
    *out = NULL;
    if (!path && !to_stderr)
        return 0;
    sbx_error *err = NULL;
    sbx_events *ev = NULL;
    sbx_event_sink *k = NULL;
    if (sbx_events_new(NULL, &ev, &err) < 0)
        goto fail;
    if (path && (sbx_event_sink_jsonl(path, NULL, &k, &err) < 0 ||
                 sbx_events_add_sink(ev, k, &err) < 0))
        goto fail;
    if (to_stderr && (sbx_event_sink_stderr(2, NULL, &k, &err) < 0 ||
                      sbx_events_add_sink(ev, k, &err) < 0))
        goto fail;
    *out = ev;
    return 0;
fail:
    sbx_cli_print_error("events", err);
    sbx_error_free(err);
    sbx_events_free(ev);
    return -1;
}

struct pending {
    char *span;
    char *line; /* the start event's JSON */
};

static const char *str_of(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void print_finish(json_object *o, int color)
{
    json_object *v = NULL, *data = NULL;
    const char *ts = str_of(o, "ts");
    const char *t = ts ? strchr(ts, 'T') : NULL;
    int ok = json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v);
    double ms = json_object_object_get_ex(o, "duration_ms", &v) ? json_object_get_double(v) : 0;
    const char *code = str_of(o, "error_code");
    const char *sid = str_of(o, "session_id");
    char extra[160] = "";
    json_object_object_get_ex(o, "data", &data);
    if (code) {
        snprintf(extra, sizeof(extra), " %s", code);
    } else if (data && json_object_object_get_ex(data, "exit_code", &v)) {
        snprintf(extra, sizeof(extra), " exit=%d", json_object_get_int(v));
    } else if (data && json_object_object_get_ex(data, "alive", &v)) {
        snprintf(extra, sizeof(extra), " alive=%s", json_object_get_boolean(v) ? "true" : "false");
    }
    const char *path = data ? str_of(data, "path") : NULL;
    printf("%.15s  %.8s  %-18s %10.3f ms  %s%-6s%s%s%s%s\n", t ? t + 1 : (ts ? ts : "?"),
           sid ? sid : "????????", str_of(o, "op") ? str_of(o, "op") : "?", ms,
           color ? (ok ? "\033[32m" : "\033[31m") : "", ok ? "ok" : "FAILED",
           color ? "\033[0m" : "", extra, path ? "  " : "", path ? path : "");
}

static int tail(const char *file)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
    if (!f) {
        fprintf(stderr, "sbx: cannot open %s: %m\n", file);
        return 1;
    }
    int color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    struct pending *pend = NULL;
    size_t n_pend = 0, lineno = 0, bad = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        json_object *o = json_tokener_parse(line);
        const char *phase = o ? str_of(o, "phase") : NULL;
        const char *span = o ? str_of(o, "span_id") : NULL;
        if (!phase || !span) {
            fprintf(stderr, "sbx: %s:%zu: not an event\n", file, lineno);
            bad++;
        } else if (strcmp(phase, "start") == 0) {
            struct pending *p = realloc(pend, (n_pend + 1) * sizeof(*p));
            if (p) {
                pend = p;
                pend[n_pend].span = strdup(span);
                pend[n_pend].line = strdup(line);
                n_pend++;
            }
        } else {
            for (size_t i = 0; i < n_pend; i++) {
                if (pend[i].span && strcmp(pend[i].span, span) == 0) {
                    free(pend[i].span);
                    free(pend[i].line);
                    pend[i] = pend[--n_pend];
                    break;
                }
            }
            print_finish(o, color);
        }
        json_object_put(o);
    }
    for (size_t i = 0; i < n_pend; i++) {
        json_object *o = json_tokener_parse(pend[i].line);
        const char *ts = o ? str_of(o, "ts") : NULL;
        printf("%.15s  %-18s unfinished (no finish event)\n",
               ts && strchr(ts, 'T') ? strchr(ts, 'T') + 1 : "?",
               o && str_of(o, "op") ? str_of(o, "op") : "?");
        json_object_put(o);
        free(pend[i].span);
        free(pend[i].line);
    }
    free(pend);
    free(line);
    if (f != stdin)
        fclose(f);
    return bad ? 1 : 0;
}

int sbx_cmd_events(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: sbx events tail FILE\n\n"
               "Prints a JSONL event log (sbx run/exec --events FILE) one operation per line:\n"
               "time, session, op, duration, ok or FAILED, and the error code or exit code.\n"
               "FILE '-' reads standard input. Exit status 1 if a line is not an event.\n");
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "tail") != 0)
        return sbx_cli_usage_error("events", "expected: sbx events tail FILE");
    return tail(argv[2]);
}
