/* trace_id.c — trace and span ids in the W3C Trace Context format. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "trace.h"
#include "util.h"

static void random_hex(char *out, size_t nbytes)
{
    unsigned char b[16];
    int all_zero;
    do {
        if (getrandom(b, nbytes, 0) != (ssize_t)nbytes) {
            uint64_t t = sbx__now_ns();
            for (size_t i = 0; i < nbytes; i++)
                b[i] = (unsigned char)(t >> ((i % 8) * 8)) ^ (unsigned char)i;
        }
        all_zero = 1;
        for (size_t i = 0; i < nbytes; i++)
            all_zero &= b[i] == 0;
    } while (all_zero);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

void sbx__trace_id_new(char out[33])
{
    random_hex(out, 16);
}

void sbx__span_id_new(char out[17])
{
    random_hex(out, 8);
}

static int lower_hex(const char *s, size_t n)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        nonzero |= c != '0';
    }
    return nonzero ? 0 : -1;
}

int sbx__traceparent_parse(const char *tp, char trace_id[33], char span_id[17])
{
    if (!tp || strlen(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
        return -1;
    char ver[3] = {tp[0], tp[1], 0};
    if (strcmp(ver, "ff") == 0 || (lower_hex(ver, 2) < 0 && strcmp(ver, "00") != 0))
        return -1;
    if (strcmp(ver, "00") == 0 && strlen(tp) != 55)
        return -1;
    if (lower_hex(tp + 3, 32) < 0 || lower_hex(tp + 36, 16) < 0)
        return -1;
    char flags[2] = {tp[53], tp[54]};
    for (int i = 0; i < 2; i++)
        if (!((flags[i] >= '0' && flags[i] <= '9') || (flags[i] >= 'a' && flags[i] <= 'f')))
            return -1;
    memcpy(trace_id, tp + 3, 32);
    trace_id[32] = '\0';
    memcpy(span_id, tp + 36, 16);
    span_id[16] = '\0';
    return 0;
}
