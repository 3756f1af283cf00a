/* json_util.c — see json_util.h. */
#include "json_util.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

int sbx__json_parse_strict(const char *json, struct json_object **out, const char **why)
{
    *out = NULL;
    size_t len = strlen(json);
    if (len > INT32_MAX) {
        *why = "larger than 2 GiB";
        return -1;
    }
    struct json_tokener *tok = json_tokener_new();
    if (!tok)
        return -2;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    while (end < len && strchr(" \t\r\n", json[end]))
        end++;
    if (o && jerr == json_tokener_success && end == len) {
        *out = o;
        return 0;
    }
    json_object_put(o);
    /* json_tokener_success with data left means trailing garbage; json_tokener_continue at
     * the end of the text means it stopped mid-value. */
    *why = jerr == json_tokener_success    ? "trailing data after the document"
           : jerr == json_tokener_continue ? "unexpected end of input"
                                           : json_tokener_error_desc(jerr);
    return -1;
}

int sbx__json_put(struct json_object *o, const char *k, struct json_object *v)
{
    if (!v)
        return -1;
    if (json_object_object_add(o, k, v) != 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}

int sbx__json_append(struct json_object *a, struct json_object *v)
{
    if (!v)
        return -1;
    if (json_object_array_add(a, v) != 0) {
        json_object_put(v);
        return -1;
    }
    return 0;
}
