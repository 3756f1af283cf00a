/* trace_id.c — trace and span ids in the W3C Trace Context format. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "trace.h"
#include "util.h"

/* The pool: one getrandom() per 256 bytes instead of one per id (an exec's two events take
 * 48 bytes). The bytes still come from the kernel's CSPRNG, and each is handed out once. A
 * forked child must not repeat its parent's ids: the atfork handler bumps the generation,
 * which empties every pool of the child (only the forking thread survives there). */
#define POOL 256
static _Thread_local unsigned char tl_pool[POOL];
static _Thread_local size_t tl_used = POOL;
static _Thread_local unsigned tl_gen;
static atomic_uint fork_gen = 1;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add(&fork_gen, 1);
}

static void atfork_init(void)
{
    (void)pthread_atfork(NULL, NULL, on_fork_child);
}

static void refill(void)
{
    size_t got = 0;
    while (got < POOL) {
        ssize_t r = getrandom(tl_pool + got, POOL - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got < POOL) {
        /* No entropy source (seccomp, very old kernel): unique-ish, not unpredictable. */
        static atomic_ullong ctr;
        uint64_t t = (sbx__now_ns() ^ (atomic_fetch_add(&ctr, 1) * 0x9e3779b97f4a7c15ull)) | 1;
        for (size_t i = got; i < POOL; i++) {
            t ^= t << 13;
            t ^= t >> 7;
            t ^= t << 17;
            tl_pool[i] = (unsigned char)(t >> 24);
        }
    }
    tl_used = 0;
}

void sbx__random_bytes(void *out, size_t n)
{
    pthread_once(&atfork_once, atfork_init);
    unsigned gen = atomic_load_explicit(&fork_gen, memory_order_relaxed);
    if (tl_gen != gen) {
        tl_gen = gen;
        tl_used = POOL;
    }
    unsigned char *o = out;
    while (n) {
        if (tl_used == POOL)
            refill();
        size_t take = POOL - tl_used < n ? POOL - tl_used : n;
        memcpy(o, tl_pool + tl_used, take);
        memset(tl_pool + tl_used, 0, take); /* handed out: not kept around */
        tl_used += take;
        o += take;
        n -= take;
    }
}

void sbx__hex(char *out, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char b[16];
    int all_zero;
    do {
        sbx__random_bytes(b, nbytes);
        all_zero = 1;
        for (size_t i = 0; i < nbytes; i++)
            all_zero &= b[i] == 0;
    } while (all_zero);
    sbx__hex(out, b, nbytes);
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
