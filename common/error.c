/* error.c — the sbx_error object: code, errno, message, operation and ordered context. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_internal.h"

struct sbx_ctx_entry {
    char *key;
    char *value;
};

struct sbx_error {
    int code;
    int errnum;
    char *op;
    char *message;
    struct sbx_ctx_entry *ctx;
    size_t n_ctx;
};

static char *vfmt(const char *fmt, va_list ap)
{
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        return NULL;
    return s;
}

int sbx_err(sbx_error **err, int code, int errnum, const char *op, const char *fmt, ...)
{
    if (!err)
        return code;
    sbx_error_free(*err);
    *err = NULL;
    sbx_error *e = calloc(1, sizeof(*e));
    if (!e)
        return code;
    e->code = code;
    e->errnum = errnum;
    e->op = strdup(op ? op : "");
    va_list ap;
    va_start(ap, fmt);
    char *msg = vfmt(fmt, ap);
    va_end(ap);
    if (msg && errnum > 0) {
        char *full = NULL;
        if (asprintf(&full, "%s: %s", msg, strerror(errnum)) >= 0) {
            free(msg);
            msg = full;
        }
    }
    e->message = msg;
    *err = e;
    return code;
}

void sbx_err_ctx(sbx_error **err, const char *key, const char *fmt, ...)
{
    if (!err || !*err)
        return;
    sbx_error *e = *err;
    struct sbx_ctx_entry *n = realloc(e->ctx, (e->n_ctx + 1) * sizeof(*n));
    if (!n)
        return;
    e->ctx = n;
    va_list ap;
    va_start(ap, fmt);
    char *v = vfmt(fmt, ap);
    va_end(ap);
    char *k = strdup(key);
    if (!v || !k) {
        free(v);
        free(k);
        return;
    }
    e->ctx[e->n_ctx].key = k;
    e->ctx[e->n_ctx].value = v;
    e->n_ctx++;
}

void sbx_err_wrap(sbx_error **err, const char *fmt, ...)
{
    if (!err || !*err)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *prefix = vfmt(fmt, ap);
    va_end(ap);
    char *full = NULL;
    if (prefix && asprintf(&full, "%s: %s", prefix, (*err)->message ? (*err)->message : "") >= 0) {
        free((*err)->message);
        (*err)->message = full;
    }
    free(prefix);
}

int sbx_error_code(const sbx_error *e)
{
    return e ? e->code : SBX_OK;
}

int sbx_error_errno(const sbx_error *e)
{
    return e ? e->errnum : 0;
}

const char *sbx_error_message(const sbx_error *e)
{
    if (!e)
        return "";
    return e->message ? e->message : sbx_strerror(e->code);
}

const char *sbx_error_op(const sbx_error *e)
{
    return (e && e->op) ? e->op : "";
}

size_t sbx_error_context_count(const sbx_error *e)
{
    return e ? e->n_ctx : 0;
}

const char *sbx_error_context_key(const sbx_error *e, size_t i)
{
    return (e && i < e->n_ctx) ? e->ctx[i].key : NULL;
}

const char *sbx_error_context_value(const sbx_error *e, size_t i)
{
    return (e && i < e->n_ctx) ? e->ctx[i].value : NULL;
}

const char *sbx_error_context_get(const sbx_error *e, const char *key)
{
    for (size_t i = 0; e && i < e->n_ctx; i++)
        if (strcmp(e->ctx[i].key, key) == 0)
            return e->ctx[i].value;
    return NULL;
}

void sbx_error_free(sbx_error *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_ctx; i++) {
        free(e->ctx[i].key);
        free(e->ctx[i].value);
    }
    free(e->ctx);
    free(e->op);
    free(e->message);
    free(e);
}
