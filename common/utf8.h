/* utf8.h — UTF-8 validation and repair shared by every layer. Internal.
 *
 * Valid means RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF. Repair follows Python's bytes.decode('utf-8', 'replace'), because the spec's
 * byte-level results are defined by it: each "maximal subpart" of an ill-formed sequence (the
 * longest prefix of it that some valid sequence starts with) becomes one U+FFFD, and so does
 * each byte that cannot start a sequence. So "\xe3\x81" at the end of input is one U+FFFD,
 * "\xed\xa0\x80" (a surrogate) is three, and "\xf0\x9f\x98" followed by "z" is one then "z".
 */
#ifndef SBX_UTF8_H
#define SBX_UTF8_H

#include <stddef.h>

/* Length (1..4) of the valid sequence at p, which has avail >= 1 bytes; otherwise minus the
 * length (1..3) of its maximal subpart, the bytes one U+FFFD stands for. */
int sbx__utf8_seq(const unsigned char *p, size_t avail);

/* A malloc'd, NUL-terminated copy of the len bytes at src with every maximal subpart replaced
 * by U+FFFD; its length (without the NUL) goes to *out_len. NULL when out of memory. */
char *sbx__utf8_replace(const void *src, size_t len, size_t *out_len);

#endif
