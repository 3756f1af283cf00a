/* trace.h — W3C Trace Context ids for the spans sbx emits around each operation. Internal. */
#ifndef SBX_TRACE_H
#define SBX_TRACE_H

#include <stddef.h>

/* A random 32-hex trace id / 16-hex span id, never all zeros (W3C Trace Context §3.2.2). */
void sbx__trace_id_new(char out[33]);
void sbx__span_id_new(char out[17]);

/* n bytes from the kernel's CSPRNG (getrandom), served from a per-thread pool so that ids do
 * not cost a system call each; the pool is dropped in a forked child. */
void sbx__random_bytes(void *out, size_t n);
/* 2n lower-case hex digits of p[0..n) and a NUL into out. */
void sbx__hex(char *out, const unsigned char *p, size_t n);

/* Parses a `traceparent` header "00-<32 hex>-<16 hex>-<2 hex>". Returns 0 and fills the
 * ids, or -1 if it is malformed (wrong lengths, upper-case or non-hex digits, all-zero ids,
 * version ff). */
int sbx__traceparent_parse(const char *tp, char trace_id[33], char span_id[17]);

#endif
