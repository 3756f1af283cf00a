/* wire_msgs.c — encode/decode of CONFIG and EXEC payloads (layout: fields in struct order). */
#include "wire_msgs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int sbx__wire_config_encode(const struct sbx_wire_config *c, struct sbx_wbuf *b)
{
    sbx__wbuf_u32(b, c->flags);
    sbx__wbuf_u32(b, c->sandbox_uid);
    sbx__wbuf_u32(b, c->sandbox_gid);
    sbx__wbuf_str(b, c->hostname);
    sbx__wbuf_str(b, c->root);
    sbx__wbuf_str(b, c->user_name);
    sbx__wbuf_u32(b, c->n_mounts);
    for (uint32_t i = 0; i < c->n_mounts; i++) {
        sbx__wbuf_u32(b, c->mounts[i].kind);
        sbx__wbuf_u32(b, c->mounts[i].flags);
        sbx__wbuf_u32(b, c->mounts[i].fd_index);
        sbx__wbuf_str(b, c->mounts[i].src);
        sbx__wbuf_str(b, c->mounts[i].dst);
    }
    sbx__wbuf_u32(b, c->nproc);
    sbx__wbuf_u64(b, c->tmpfs_bytes);
    sbx__wbuf_bytes(b, c->filter, c->filter_len);
    sbx__wbuf_strv(b, (const char *const *)c->accounts);
    sbx__wbuf_strv(b, (const char *const *)c->groups);
    sbx__wbuf_u32(b, c->listen_fd_index);
    sbx__wbuf_u32(b, c->nofile);
    sbx__wbuf_u64(b, c->fsize);
    return b->failed ? -ENOMEM : 0;
}

int sbx__wire_config_decode(const unsigned char *p, size_t len, struct sbx_wire_config *c)
{
    struct sbx_rbuf r = {.data = p, .len = len};
    memset(c, 0, sizeof(*c));
    c->flags = sbx__rbuf_u32(&r);
    c->sandbox_uid = sbx__rbuf_u32(&r);
    c->sandbox_gid = sbx__rbuf_u32(&r);
    c->hostname = sbx__rbuf_str(&r);
    c->root = sbx__rbuf_str(&r);
    c->user_name = sbx__rbuf_str(&r);
    c->n_mounts = sbx__rbuf_u32(&r);
    if (!r.bad && c->n_mounts > SBX_WIRE_MAX_MOUNTS)
        r.bad = 1;
    if (!r.bad && c->n_mounts) {
        c->mounts = calloc(c->n_mounts, sizeof(*c->mounts));
        if (!c->mounts)
            r.bad = 1;
    }
    for (uint32_t i = 0; !r.bad && i < c->n_mounts; i++) {
        c->mounts[i].kind = sbx__rbuf_u32(&r);
        c->mounts[i].flags = sbx__rbuf_u32(&r);
        c->mounts[i].fd_index = sbx__rbuf_u32(&r);
        c->mounts[i].src = sbx__rbuf_str(&r);
        c->mounts[i].dst = sbx__rbuf_str(&r);
    }
    c->nproc = sbx__rbuf_u32(&r);
    c->tmpfs_bytes = sbx__rbuf_u64(&r);
    if (!r.bad)
        c->filter = sbx__rbuf_bytes(&r, &c->filter_len);
    c->accounts = sbx__rbuf_strv(&r, 4096);
    c->groups = sbx__rbuf_strv(&r, 4096);
    c->listen_fd_index = sbx__rbuf_u32(&r);
    c->nofile = sbx__rbuf_u32(&r);
    c->fsize = sbx__rbuf_u64(&r);
    if (r.bad || r.off != r.len || c->n_mounts == 0) {
        sbx__wire_config_clear(c);
        return -EBADMSG;
    }
    return 0;
}

void sbx__wire_config_clear(struct sbx_wire_config *c)
{
    free(c->hostname);
    free(c->root);
    free(c->user_name);
    for (uint32_t i = 0; c->mounts && i < c->n_mounts; i++) {
        free(c->mounts[i].src);
        free(c->mounts[i].dst);
    }
    free(c->mounts);
    free(c->filter);
    strv_free(c->accounts);
    strv_free(c->groups);
    memset(c, 0, sizeof(*c));
}

int sbx__wire_exec_encode(const struct sbx_wire_exec *x, struct sbx_wbuf *b)
{
    sbx__wbuf_u32(b, x->flags);
    sbx__wbuf_u32(b, x->uid);
    sbx__wbuf_u32(b, x->gid);
    sbx__wbuf_str(b, x->cwd);
    sbx__wbuf_strv(b, (const char *const *)x->argv);
    sbx__wbuf_strv(b, (const char *const *)x->env);
    return b->failed ? -ENOMEM : 0;
}

int sbx__wire_exec_decode(const unsigned char *p, size_t len, struct sbx_wire_exec *x)
{
    struct sbx_rbuf r = {.data = p, .len = len};
    memset(x, 0, sizeof(*x));
    x->flags = sbx__rbuf_u32(&r);
    x->uid = sbx__rbuf_u32(&r);
    x->gid = sbx__rbuf_u32(&r);
    x->cwd = sbx__rbuf_str(&r);
    x->argv = sbx__rbuf_strv(&r, 1u << 20);
    x->env = sbx__rbuf_strv(&r, 1u << 20);
    if (r.bad || r.off != r.len || !x->argv || !x->argv[0]) {
        sbx__wire_exec_clear(x);
        return -EBADMSG;
    }
    return 0;
}

void sbx__wire_exec_clear(struct sbx_wire_exec *x)
{
    free(x->cwd);
    strv_free(x->argv);
    strv_free(x->env);
    memset(x, 0, sizeof(*x));
}

int sbx__wire_file_encode(const struct sbx_wire_file *f, struct sbx_wbuf *b)
{
    sbx__wbuf_u32(b, f->op);
    sbx__wbuf_u32(b, f->flags);
    sbx__wbuf_u32(b, f->uid);
    sbx__wbuf_u32(b, f->gid);
    sbx__wbuf_u32(b, f->mode);
    sbx__wbuf_str(b, f->root);
    sbx__wbuf_str(b, f->path);
    sbx__wbuf_strv(b, (const char *const *)f->skip);
    return b->failed ? -ENOMEM : 0;
}

int sbx__wire_file_decode(const unsigned char *p, size_t len, struct sbx_wire_file *f)
{
    struct sbx_rbuf r = {.data = p, .len = len};
    memset(f, 0, sizeof(*f));
    f->op = sbx__rbuf_u32(&r);
    f->flags = sbx__rbuf_u32(&r);
    f->uid = sbx__rbuf_u32(&r);
    f->gid = sbx__rbuf_u32(&r);
    f->mode = sbx__rbuf_u32(&r);
    f->root = sbx__rbuf_str(&r);
    f->path = sbx__rbuf_str(&r);
    f->skip = sbx__rbuf_strv(&r, 1u << 16);
    if (r.bad || r.off != r.len || !f->root || !f->path) {
        sbx__wire_file_clear(f);
        return -EBADMSG;
    }
    return 0;
}

void sbx__wire_file_clear(struct sbx_wire_file *f)
{
    free(f->root);
    free(f->path);
    strv_free(f->skip);
    memset(f, 0, sizeof(*f));
}
