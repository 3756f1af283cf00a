/* policy.c — payload policies: what of an event a sink may see.
 *
 * Order matters for confidentiality: output is decoded, then redacted, then truncated, so a
 * secret that straddles the truncation point cannot survive as an unmatched prefix; and the
 * digest of stripped output is taken after redaction, so a short secret cannot be confirmed by
 * hashing guesses. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_internal.h"
#include "events_internal.h"
#include "utf8.h"

#define REDACTED "[REDACTED]"
#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */

int sbx__policy_compile(const sbx_payload_policy *in, struct sbx__policy *out, sbx_error **err)
{
    memset(out, 0, sizeof(*out));
    if (!in)
        return 0;
    out->set = in->set;
    out->include_exec_output = in->include_exec_output != 0;
    out->max_stdout_chars = in->max_stdout_chars;
    out->max_stderr_chars = in->max_stderr_chars;
    out->include_write_len = in->include_write_len != 0;
    out->hash_dropped_output = in->hash_dropped_output != 0;
    if (!(in->set & SBX_POLICY_REDACT) || !in->redact)
        return 0;
    size_t n = 0;
    while (in->redact[n])
        n++;
    if (n == 0)
        return 0;
    out->re = calloc(n, sizeof(*out->re));
    if (!out->re)
        return sbx_err(err, SBX_ENOMEM, 0, "events", "out of memory");
    for (size_t i = 0; i < n; i++) {
        int rc = regcomp(&out->re[i], in->redact[i], REG_EXTENDED);
        if (rc != 0) {
            char msg[128];
            regerror(rc, &out->re[i], msg, sizeof(msg));
            sbx__policy_clear(out);
            return sbx_err(err, SBX_EINVAL, 0, "events", "redaction pattern '%s': %s",
                           in->redact[i], msg);
        }
        out->n_re = i + 1;
    }
    return 0;
}

void sbx__policy_clear(struct sbx__policy *p)
{
    for (size_t i = 0; i < p->n_re; i++)
        regfree(&p->re[i]);
    free(p->re);
    memset(p, 0, sizeof(*p));
}

void sbx__policy_resolve(const struct sbx__policy *const *overlays, size_t n,
                         struct sbx__policy_eff *out)
{
    *out = (struct sbx__policy_eff){
        .include_exec_output = 0,
        .max_stdout_chars = SBX_POLICY_DEFAULT_MAX_CHARS,
        .max_stderr_chars = SBX_POLICY_DEFAULT_MAX_CHARS,
        .include_write_len = 1,
    };
    for (size_t i = 0; i < n; i++) {
        const struct sbx__policy *p = overlays[i];
        if (!p)
            continue;
        if (p->set & SBX_POLICY_EXEC_OUTPUT)
            out->include_exec_output = p->include_exec_output;
        if (p->set & SBX_POLICY_MAX_STDOUT)
            out->max_stdout_chars = p->max_stdout_chars;
        if (p->set & SBX_POLICY_MAX_STDERR)
            out->max_stderr_chars = p->max_stderr_chars;
        if (p->set & SBX_POLICY_WRITE_LEN)
            out->include_write_len = p->include_write_len;
        if (p->set & SBX_POLICY_HASH)
            out->hash_dropped_output = p->hash_dropped_output;
        if (p->set & SBX_POLICY_REDACT) {
            out->re = p->re;
            out->n_re = p->n_re;
        }
    }
}

char *sbx__utf8_decode(const void *src, size_t n, size_t *out_len)
{
    return sbx__utf8_replace(src, n, out_len);
}

struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 64) + n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* One pattern over the whole string. REG_STARTEND makes the match see past NUL bytes, which
 * exec output may contain: text after a NUL must not escape redaction. */
static char *redact_one(const regex_t *re, const char *s, size_t len, size_t *out_len)
{
    struct buf b = {0};
    buf_add(&b, "", 0);
    size_t pos = 0;
    while (pos <= len) {
        regmatch_t m[1] = {{.rm_so = (regoff_t)pos, .rm_eo = (regoff_t)len}};
        int flags = REG_STARTEND | (pos > 0 ? REG_NOTBOL : 0);
        if (regexec(re, s, 1, m, flags) != 0)
            break;
        size_t so = (size_t)m[0].rm_so, eo = (size_t)m[0].rm_eo;
        buf_add(&b, s + pos, so - pos);
        if (eo == so) {
            /* An empty match redacts nothing; step over one byte to make progress. */
            if (so < len)
                buf_add(&b, s + so, 1);
            pos = so + 1;
            continue;
        }
        buf_add(&b, REDACTED, strlen(REDACTED));
        pos = eo;
    }
    if (pos < len)
        buf_add(&b, s + pos, len - pos);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *out_len = b.len;
    return b.p;
}

char *sbx__redact(const regex_t *re, size_t n_re, const char *s, size_t len, size_t *out_len)
{
    char *cur = malloc(len + 1);
    if (!cur)
        return NULL;
    memcpy(cur, s, len);
    cur[len] = '\0';
    size_t cur_len = len;
    /* An empty string stays empty (an empty match redacts nothing): no regexec needed. */
    for (size_t i = 0; len && i < n_re; i++) {
        size_t nl = 0;
        char *next = redact_one(&re[i], cur, cur_len, &nl);
        free(cur);
        if (!next)
            return NULL;
        cur = next;
        cur_len = nl;
    }
    *out_len = cur_len;
    return cur;
}

char *sbx__truncate_chars(const char *s, size_t len, size_t max, size_t *out_len)
{
    size_t chars = 0, cut = len;
    for (size_t i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xc0) == 0x80)
            continue; /* a continuation byte: not the start of a character */
        if (chars == max) {
            cut = i;
            break;
        }
        chars++;
    }
    int cutting = cut < len;
    char *out = malloc(cut + (cutting ? strlen(ELLIPSIS) : 0) + 1);
    if (!out)
        return NULL;
    memcpy(out, s, cut);
    size_t n = cut;
    if (cutting) {
        memcpy(out + n, ELLIPSIS, strlen(ELLIPSIS));
        n += strlen(ELLIPSIS);
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_object *sbx__json_sorted(json_object *o)
{
    if (json_object_is_type(o, json_type_array)) {
        size_t n = json_object_array_length(o);
        json_object *a = json_object_new_array_ext((int)n);
        for (size_t i = 0; a && i < n; i++)
            json_object_array_add(a, sbx__json_sorted(json_object_array_get_idx(o, i)));
        return a;
    }
    if (!json_object_is_type(o, json_type_object))
        return json_object_get(o);
    size_t n = (size_t)json_object_object_length(o), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof(*keys));
    json_object *r = json_object_new_object();
    if (!keys || !r) {
        free(keys);
        json_object_put(r);
        return NULL;
    }
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        keys[i++] = k;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    for (i = 0; i < n; i++)
        json_object_object_add(r, keys[i], sbx__json_sorted(json_object_object_get(o, keys[i])));
    free(keys);
    return r;
}

/* Replaces every string in a data tree by its redacted form (values are replaced, never
 * mutated: primitives are shared with the original record). */
static void redact_tree(const struct sbx__policy_eff *p, json_object *o)
{
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            json_object *v = json_object_array_get_idx(o, i);
            if (json_object_is_type(v, json_type_string)) {
                size_t nl = 0;
                char *r = sbx__redact(p->re, p->n_re, json_object_get_string(v),
                                      (size_t)json_object_get_string_len(v), &nl);
                json_object_array_put_idx(o, i, json_object_new_string_len(r ? r : "",
                                                                           (int)(r ? nl : 0)));
                free(r);
            } else {
                redact_tree(p, v);
            }
        }
        return;
    }
    if (!json_object_is_type(o, json_type_object))
        return;
    json_object_object_foreach(o, k, v)
    {
        if (json_object_is_type(v, json_type_string)) {
            size_t nl = 0;
            char *r = sbx__redact(p->re, p->n_re, json_object_get_string(v),
                                  (size_t)json_object_get_string_len(v), &nl);
            json_object_object_add(o, k,
                                   json_object_new_string_len(r ? r : "", (int)(r ? nl : 0)));
            free(r);
        } else {
            redact_tree(p, v);
        }
    }
}

static void sha256_hex(const void *p, size_t n, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    hex[0] = '\0';
    if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int sbx__policy_stream(const struct sbx__policy_eff *p, const unsigned char *raw,
                       size_t raw_len, size_t max_chars, char **text, size_t *text_len,
                       char hash[65])
{
    *text = NULL;
    *text_len = 0;
    hash[0] = '\0';
    if (!p->include_exec_output && !p->hash_dropped_output)
        return 0; /* stripped, nothing shown of it */
    size_t dl = 0, rl = 0;
    char *dec = sbx__utf8_decode(raw ? raw : (const unsigned char *)"", raw ? raw_len : 0, &dl);
    char *red = dec && p->n_re ? sbx__redact(p->re, p->n_re, dec, dl, &rl) : NULL;
    const char *t = red ? red : dec;
    size_t tl = red ? rl : dl;
    if (!t || (p->n_re && !red)) {
        /* Out of memory: fail closed, nothing of the stream leaves. */
    } else if (p->include_exec_output) {
        *text = sbx__truncate_chars(t, tl, max_chars, text_len);
    } else if (p->hash_dropped_output) {
        sha256_hex(t, tl, hash); /* "" if the digest failed */
        free(dec);
        free(red);
        return 1;
    }
    free(dec);
    free(red);
    return 0;
}

/* stdout or stderr of an exec finish event under the policy, into a record tree. */
static void apply_stream(const struct sbx__policy_eff *p, json_object *ev, const char *key,
                         const char *hash_key, const unsigned char *raw, size_t raw_len,
                         size_t max_chars)
{
    char *text = NULL, hash[65];
    size_t tl = 0;
    int hashed = sbx__policy_stream(p, raw, raw_len, max_chars, &text, &tl, hash);
    json_object_object_add(ev, key, text ? json_object_new_string_len(text, (int)tl) : NULL);
    if (hashed)
        json_object_object_add(ev, hash_key, json_object_new_string(hash));
    free(text);
}

json_object *sbx__policy_data(const struct sbx__policy_eff *p, json_object *data)
{
    json_object *bytes = NULL;
    int drop = !p->include_write_len && json_object_object_get_ex(data, "bytes", &bytes);
    if (!drop && !p->n_re)
        return json_object_get(data);
    /* A copy: the record's data is shared with the other sinks. */
    json_object *c = sbx__json_sorted(data);
    if (!c)
        return NULL;
    if (drop)
        json_object_object_del(c, "bytes");
    if (p->n_re)
        redact_tree(p, c);
    return c;
}

json_object *sbx__policy_apply(const struct sbx__policy_eff *p, json_object *ev,
                               const struct sbx__ev_raw *raw)
{
    json_object *c = sbx__json_sorted(ev);
    if (!c)
        return NULL;
    json_object *data = NULL;
    if (json_object_object_get_ex(c, "data", &data)) {
        if (!p->include_write_len)
            json_object_object_del(data, "bytes");
        if (p->n_re)
            redact_tree(p, data);
    }
    json_object *msg = NULL;
    if (p->n_re && json_object_object_get_ex(c, "error_message", &msg) &&
        json_object_is_type(msg, json_type_string)) {
        size_t nl = 0;
        char *r = sbx__redact(p->re, p->n_re, json_object_get_string(msg),
                              (size_t)json_object_get_string_len(msg), &nl);
        json_object_object_add(c, "error_message",
                               json_object_new_string_len(r ? r : "", (int)(r ? nl : 0)));
        free(r);
    }
    if (raw && raw->has_output) {
        apply_stream(p, c, "stdout", "stdout_sha256", raw->out, raw->out_len,
                     p->max_stdout_chars);
        apply_stream(p, c, "stderr", "stderr_sha256", raw->err, raw->err_len,
                     p->max_stderr_chars);
        if (p->hash_dropped_output && !p->include_exec_output) {
            /* New keys went to the end: restore the sorted order of the line form. */
            json_object *s = sbx__json_sorted(c);
            json_object_put(c);
            c = s;
        }
    }
    return c;
}
