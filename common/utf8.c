/* utf8.c — UTF-8 validation and Python-compatible repair (see utf8.h). */
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char REPLACEMENT[] = "\xef\xbf\xbd"; /* U+FFFD */

int sbx__utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    int need;
    /* The range of the second byte is what rules out overlongs (E0, F0), surrogates (ED) and
     * code points above U+10FFFF (F4); later bytes are plain continuation bytes. */
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        /* 80..C1 and F5..FF never start a sequence (C0/C1 could only be overlong). */
        return -1;
    }
    /* Stopping at the first byte out of range (or at the end of input) gives the maximal
     * subpart: the bytes so far are a prefix of some valid sequence, the next one is not. */
    for (int k = 1; k <= need; k++) {
        if ((size_t)k >= avail || p[k] < lo || p[k] > hi)
            return -k;
        lo = 0x80;
        hi = 0xbf;
    }
    return need + 1;
}

char *sbx__utf8_replace(const void *src, size_t len, size_t *out_len)
{
    const unsigned char *in = src;
    /* A lone invalid byte growing to 3 is the worst case. */
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        int n = sbx__utf8_seq(in + i, len - i);
        if (n > 0) {
            memcpy(out + o, in + i, (size_t)n);
            o += (size_t)n;
            i += (size_t)n;
        } else {
            memcpy(out + o, REPLACEMENT, 3);
            o += 3;
            i += (size_t)-n;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}
