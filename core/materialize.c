/* materialize.c — the workspace step of start() (spec SESSION.md §3.3, MANIFEST.md §5).
 *
 *   R  the snapshot is restorable (a local snapshot file exists)
 *   P  this start reuses a workspace that is still there (a resumed session whose directory
 *      survived); Reuse = P and the state says the root was ready
 *
 *   A  R, Reuse, and the live fingerprint equals the stored one  -> ephemeral entries only
 *   B  R otherwise          -> restore the snapshot (verified, swapped in), ephemeral entries
 *   C  not R, Reuse         -> ephemeral entries only
 *   D  not R, not Reuse     -> the whole manifest
 *
 * Accounts are not a step here: the agent writes the manifest's users and groups into the
 * sandbox's own /etc at every start, so they are always (re)provisioned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core.h"
#include "error_internal.h"
#include "files_internal.h"
#include "manifest.h"
#include "snapshot_store.h"
#include "state.h"
#include "util.h"

static int chmod_entry(sbx_session *s, const char *rel, unsigned mode, sbx_error **err)
{
    const struct sbx_backend_ops *ops;
    struct sbx_sandbox *sb = sbx__session_acquire(s, &ops, "materialize", err);
    if (!sb)
        return SBX_ESTATE;
    uint32_t uid, gid;
    sbx__session_user(s, NULL, &uid, &gid, NULL);
    struct sbx_backend_file_req q = {.op = SBX_BFOP_CHMOD, .uid = uid, .gid = gid, .mode = mode,
                                     .root = sbx_session_root(s), .path = rel};
    struct sbx_backend_file_out o;
    int r = ops->file(sb, &q, -1, &o, err);
    sbx__session_release(s);
    if (r == 0 && o.err)
        r = sbx__files_map_error(s, "write", rel, rel, &o, err);
    sbx__backend_file_out_clear(&o);
    return r;
}

static int apply_entry(sbx_session *s, const struct sbx_mf_entry *e, const char *dest,
                       sbx_error **err);

static int apply_children(sbx_session *s, const struct sbx_mf_entry *e, const char *dest,
                          int only_ephemeral, sbx_error **err)
{
    for (size_t i = 0; i < e->n_children; i++) {
        const struct sbx_mf_entry *c = &e->children[i];
        char *path = NULL;
        if (asprintf(&path, "%s%s%s", dest, *dest ? "/" : "", c->key) < 0)
            return sbx_err(err, SBX_ENOMEM, ENOMEM, "materialize", "out of memory");
        int r = 0;
        if (!only_ephemeral || c->ephemeral)
            r = apply_entry(s, c, path, err);
        else if (c->kind == SBX_MF_DIR)
            r = apply_children(s, c, path, 1, err);
        free(path);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Creates one entry (a dir with all its children) at dest, relative to the root. */
static int apply_entry(sbx_session *s, const struct sbx_mf_entry *e, const char *dest,
                       sbx_error **err)
{
    int r;
    if (e->kind == SBX_MF_FILE) {
        int fd = memfd_create("sbx-manifest", MFD_CLOEXEC);
        if (fd < 0)
            return sbx_err(err, SBX_EIO, errno, "materialize", "memfd_create");
        if ((e->content_len && sbx__write_full(fd, e->content, e->content_len) < 0) ||
            lseek(fd, 0, SEEK_SET) < 0) {
            close(fd);
            return sbx_err(err, SBX_EIO, errno, "materialize", "staging manifest content");
        }
        r = sbx_session_write(s, dest, NULL, fd, NULL, err);
        close(fd);
    } else {
        r = sbx_session_mkdir(s, dest, 1, NULL, err);
    }
    if (r == 0)
        r = chmod_entry(s, dest, e->mode, err);
    if (r == 0 && e->kind == SBX_MF_DIR)
        r = apply_children(s, e, dest, 0, err);
    return r;
}

/* Full apply (only_ephemeral = 0) or the ephemeral entries only. */
static int apply_manifest(sbx_session *s, const struct sbx_manifest *m, int only_ephemeral,
                          sbx_error **err)
{
    struct sbx_mf_entry top = {.kind = SBX_MF_DIR,
                               .children = m->entries,
                               .n_children = m->n_entries};
    return apply_children(s, &top, "", only_ephemeral, err);
}

static int restore(sbx_session *s, const struct sbx_state *st, sbx_error **err)
{
    int fd = -1;
    int r = sbx__snap_local_open(st->snap_base, st->snap_id, &fd, err);
    if (r < 0)
        return r;
    r = sbx__hydrate(s, fd, NULL, err);
    close(fd);
    return r;
}

int sbx__materialize(sbx_session *s, sbx_error **err)
{
    struct sbx_session_life *l = sbx__session_life(s);
    struct sbx_state *st = l->st;
    int R = st->snap_kind == SBX_SNAP_LOCAL && sbx__snap_local_restorable(st->snap_base, st->snap_id);
    int reuse = l->preserved && st->root_ready;
    int r;
    if (R && reuse && st->fingerprint && st->fingerprint_version) {
        char live[65];
        sbx_error *ferr = NULL;
        int same = sbx__fingerprint(s, live, &ferr) == 0 && !strcmp(live, st->fingerprint);
        sbx_error_free(ferr);
        if (same) {
            r = apply_manifest(s, st->manifest, 1, err);
            goto done;
        }
    }
    if (R) {
        if ((r = restore(s, st, err)) == 0)
            r = apply_manifest(s, st->manifest, 1, err);
    } else {
        r = apply_manifest(s, st->manifest, reuse, err);
    }
done:
    if (r == 0) {
        pthread_mutex_lock(&l->lock);
        st->root_ready = 1;
        pthread_mutex_unlock(&l->lock);
    }
    return r;
}
