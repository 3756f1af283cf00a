/* json_util.h — the json-c patterns manifest.c and state.c share. */
#ifndef SBX_CORE_JSON_UTIL_H
#define SBX_CORE_JSON_UTIL_H

#include <json-c/json.h>

/* Parses a whole document strictly (UTF-8 checked, nothing but whitespace after it). Returns
 * 0 with *out set, -1 with *why set (a static description), or -2 when out of memory. */
int sbx__json_parse_strict(const char *json, struct json_object **out, const char **why);

/* json_object_object_add / json_object_array_add that take ownership of v even when they
 * fail, so builders can chain without leaking; -1 when v is NULL or could not be added. */
int sbx__json_put(struct json_object *o, const char *k, struct json_object *v);
int sbx__json_append(struct json_object *a, struct json_object *v);

#endif
