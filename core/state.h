/* state.h — the session state object (spec SESSION.md §2): everything another process needs
 * to resume a session, as JSON (json-c). Field order in the output is pinned: type,
 * session_id, snapshot, manifest, exposed_ports, snapshot_fingerprint,
 * snapshot_fingerprint_version, workspace_root_ready, then the sbx extensions workspace,
 * workspace_root_owned.
 */
#ifndef SBX_CORE_STATE_H
#define SBX_CORE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <sbx/error.h>

#include "manifest.h"

#define SBX_STATE_TYPE "sbx_linux"

enum sbx_snap_kind { SBX_SNAP_NOOP, SBX_SNAP_LOCAL };

struct sbx_state {
    char session_id[37];   /* UUID v4, canonical lower-case form */
    int snap_kind;         /* enum sbx_snap_kind */
    char *snap_id;         /* default: session_id */
    char *snap_base;       /* local: directory of the store */
    struct sbx_manifest *manifest;
    uint16_t *ports;       /* exposed_ports, normalised (first-seen order, no duplicates) */
    size_t n_ports;
    char *fingerprint;     /* NULL when unknown */
    char *fingerprint_version;
    int root_ready;
    char *workspace;       /* host directory, NULL for an ephemeral (in-memory) workspace */
    int workspace_owned;   /* sbx created the workspace and removes it */
};

/* JSON text -> state. Unknown "type", a bad UUID, ports outside 1..65535, a non-integer port
 * or a string in place of the list -> SBX_ECONFIG with the spec's message
 * ("sandbox session state payload is invalid", "exposed_ports must contain integers", ...). */
int sbx__state_from_json(const char *json, struct sbx_state **out, sbx_error **err);
/* state -> JSON text (malloc'd, pretty = 0: compact). NULL on allocation failure. */
char *sbx__state_to_json(const struct sbx_state *st, int pretty);
void sbx__state_free(struct sbx_state *st);

/* Normalises an exposed_ports JSON value (null, an integer, or an array) as the spec says. */
int sbx__ports_from_jobj(struct json_object *v, uint16_t **out, size_t *n, sbx_error **err);

/* Strict UUID check (8-4-4-4-12 hex). */
int sbx__uuid_valid(const char *s);

#endif
