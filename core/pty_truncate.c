/* pty_truncate.c — what PTY output looks like to the caller: valid UTF-8 (spec §5.4), cut to a
 * token budget with markers (§5.7, util/token_truncation.py).
 *
 * Decoding follows Python's "replace" error handler (common/utf8.h), which the spec's
 * byte-level results depend on. Each read is decoded on its own, so a character split across
 * two reads becomes two replacement characters, one per read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "error_internal.h"
#include "utf8.h"

char *sbx__utf8_sanitize(const unsigned char *in, size_t len, size_t *out_len)
{
    return sbx__utf8_replace(in, len, out_len);
}

/* Lines as Python's str.splitlines() counts them. */
static size_t count_lines(const unsigned char *s, size_t len)
{
    size_t lines = 0;
    int open_line = 0;
    for (size_t i = 0; i < len;) {
        size_t brk = 0;
        unsigned char c = s[i];
        if (c == '\r')
            brk = (i + 1 < len && s[i + 1] == '\n') ? 2 : 1;
        else if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e))
            brk = 1;
        else if (c == 0xc2 && i + 1 < len && s[i + 1] == 0x85)
            brk = 2;
        else if (c == 0xe2 && i + 2 < len && s[i + 1] == 0x80 &&
                 (s[i + 2] == 0xa8 || s[i + 2] == 0xa9))
            brk = 3;
        if (brk) {
            lines++;
            open_line = 0;
            i += brk;
        } else {
            open_line = 1;
            i++;
        }
    }
    return lines + (size_t)open_line;
}

static int is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* Bytes of the longest prefix of s (valid UTF-8) that is at most budget and ends on a
 * character boundary. */
static size_t head_cut(const unsigned char *s, size_t len, size_t budget)
{
    if (budget >= len)
        return len;
    size_t n = budget;
    while (n > 0 && is_cont(s[n]))
        n--;
    return n;
}

/* Start of the longest suffix of at most budget bytes that starts on a character boundary. */
static size_t tail_start(const unsigned char *s, size_t len, size_t budget)
{
    if (budget >= len)
        return 0;
    size_t st = len - budget;
    while (st < len && is_cont(s[st]))
        st++;
    return st;
}

void sbx__split_utf8(const char *s, size_t len, size_t head_budget, size_t tail_budget,
                     size_t *head_len, size_t *tail_off)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t h = head_cut(u, len, head_budget);
    size_t t = tail_start(u, len, tail_budget);
    if (t < h)
        t = h;
    *head_len = h;
    *tail_off = t;
}

int sbx_truncate_tokens(const char *text, size_t len, int64_t max_tokens, char **out,
                        size_t *out_len, int64_t *original_tokens)
{
    *out = NULL;
    *out_len = 0;
    *original_tokens = -1;
    /* A negative limit is a zero budget, as in the spec (its clamp). */
    uint64_t budget = max_tokens <= 0 ? 0 : (uint64_t)max_tokens;
    budget = budget > UINT64_MAX / 4 ? UINT64_MAX : budget * 4;
    return sbx__truncate_budget(text, len, budget, out, out_len, original_tokens);
}

int sbx__truncate_budget(const char *text, size_t len, uint64_t budget, char **out,
                         size_t *out_len, int64_t *original_tokens)
{
    *original_tokens = -1;
    if ((uint64_t)len <= budget) {
        *out = malloc(len + 1);
        if (!*out)
            return SBX_ENOMEM;
        memcpy(*out, text, len);
        (*out)[len] = '\0';
        *out_len = len;
        return 0;
    }
    int64_t total = (int64_t)((len + 3) / 4);
    *original_tokens = total;
    size_t b = (size_t)budget;
    char *res = malloc(b + 64);
    if (!res)
        return SBX_ENOMEM;
    if (b == 0) {
        res[0] = '\0';
        *out = res;
        *out_len = 0;
        return 0;
    }
    char prefix[64], marker[64];
    int pl = snprintf(prefix, sizeof(prefix), "Total output lines: %zu\n\n",
                      count_lines((const unsigned char *)text, len));
    int ml = snprintf(marker, sizeof(marker), "\xe2\x80\xa6%lld tokens truncated\xe2\x80\xa6",
                      (long long)total);
    if ((size_t)pl + (size_t)ml > b)
        pl = 0;
    if ((size_t)pl + (size_t)ml > b) {
        /* No room for any content: the marker alone, cut at a character boundary. */
        size_t n = head_cut((const unsigned char *)marker, (size_t)ml, b);
        memcpy(res, marker, n);
        res[n] = '\0';
        *out = res;
        *out_len = n;
        return 0;
    }
    size_t content = b - (size_t)pl - (size_t)ml;
    size_t head_len, tail_off;
    sbx__split_utf8(text, len, content / 2, content - content / 2, &head_len, &tail_off);
    size_t kept = head_len + (len - tail_off);
    size_t removed = len - kept;
    ml = snprintf(marker, sizeof(marker), "\xe2\x80\xa6%zu tokens truncated\xe2\x80\xa6",
                  (removed + 3) / 4);
    size_t o = 0;
    memcpy(res + o, prefix, (size_t)pl);
    o += (size_t)pl;
    memcpy(res + o, text, head_len);
    o += head_len;
    memcpy(res + o, marker, (size_t)ml);
    o += (size_t)ml;
    memcpy(res + o, text + tail_off, len - tail_off);
    o += len - tail_off;
    res[o] = '\0';
    *out = res;
    *out_len = o;
    return 0;
}
