/* cli_json.c — `sbx run --json`: one JSON object with the command's result (json-c). */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* JSON strings must be valid UTF-8: invalid sequences become U+FFFD. */
static char *utf8_clean(const unsigned char *s, size_t n, size_t *out_len)
{
    char *r = malloc(n * 3 + 1);
    if (!r)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (s[i + k] & 0xc0) == 0x80;
        if (ok && len == 2 && c < 0xc2)
            ok = 0; /* overlong */
        if (ok && len == 3 && ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0)))
            ok = 0; /* overlong, surrogate */
        if (ok && len == 4 && ((c == 0xf0 && s[i + 1] < 0x90) || c > 0xf4 ||
                               (c == 0xf4 && s[i + 1] >= 0x90)))
            ok = 0;
        if (ok) {
            memcpy(r + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(r + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    r[o] = '\0';
    *out_len = o;
    return r;
}

static json_object *jstr(const unsigned char *s, size_t n)
{
    size_t len = 0;
    char *c = utf8_clean(s ? s : (const unsigned char *)"", s ? n : 0, &len);
    json_object *o = c ? json_object_new_string_len(c, (int)len) : NULL;
    free(c);
    return o;
}

int sbx_cli_print_json(const sbx_exec_result *r, int timed_out, double duration_ms,
                       const sbx_error *e)
{
    json_object *o = json_object_new_object();
    if (!o)
        return -1;
    json_object_object_add(o, "exit_code", r ? json_object_new_int(r->exit_code) : NULL);
    json_object_object_add(o, "timed_out", json_object_new_boolean(timed_out));
    json_object_object_add(o, "duration_ms", json_object_new_double(duration_ms));
    json_object_object_add(o, "stdout", jstr(r ? r->out : NULL, r ? r->out_len : 0));
    json_object_object_add(o, "stderr", jstr(r ? r->err : NULL, r ? r->err_len : 0));
    if (r && (r->out_dropped || r->err_dropped)) {
        json_object_object_add(o, "stdout_dropped_bytes", json_object_new_int64((int64_t)r->out_dropped));
        json_object_object_add(o, "stderr_dropped_bytes", json_object_new_int64((int64_t)r->err_dropped));
    }
    if (r && (r->memory_peak || r->oom_killed)) {
        json_object_object_add(o, "oom_killed", json_object_new_boolean(r->oom_killed));
        json_object_object_add(o, "memory_peak_bytes", json_object_new_int64((int64_t)r->memory_peak));
    }
    if (r && r->cpu_ms > 0)
        json_object_object_add(o, "cpu_ms", json_object_new_double(r->cpu_ms));
    if (e && !timed_out) {
        json_object *je = json_object_new_object();
        json_object_object_add(je, "code", json_object_new_string(sbx_code_name(sbx_error_code(e))));
        json_object_object_add(je, "message", json_object_new_string(sbx_error_message(e)));
        json_object_object_add(o, "error", je);
    }
    const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = printf("%s\n", s) < 0 ? -1 : 0;
    json_object_put(o);
    return rc;
}
