/* trace.h — W3C Trace Context ids for the spans sbx emits around each operation. Internal. */
#ifndef SBX_TRACE_H
#define SBX_TRACE_H

/* A random 32-hex trace id / 16-hex span id, never all zeros (W3C Trace Context §3.2.2). */
void sbx__trace_id_new(char out[33]);
void sbx__span_id_new(char out[17]);

/* Parses a `traceparent` header "00-<32 hex>-<16 hex>-<2 hex>". Returns 0 and fills the
 * ids, or -1 if it is malformed (wrong lengths, upper-case or non-hex digits, all-zero ids,
 * version ff). */
int sbx__traceparent_parse(const char *tp, char trace_id[33], char span_id[17]);

#endif
