/* UTF-8 validation and repair: RFC 3629 validity, and replacement that matches Python's
 * bytes.decode('utf-8', 'replace') byte for byte (expected values were taken from CPython). */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "utf8.h"

#define FFFD "\xef\xbf\xbd"

/* Repairs the n bytes at s and checks the result against want, including its length (a NUL
 * inside the input must survive, so strlen alone would not do). */
static void expect_replaced(const char *s, size_t n, const char *want)
{
    size_t out_len = 12345;
    char *out = sbx__utf8_replace(s, n, &out_len);
    cr_assert_not_null(out);
    cr_expect_eq(out_len, strlen(want), "length for input of %zu bytes", n);
    cr_expect_eq(memcmp(out, want, out_len < strlen(want) ? out_len : strlen(want)), 0);
    cr_expect_eq(out[out_len], '\0', "result is NUL-terminated");
    free(out);
}

#define REPLACED(lit, want) expect_replaced(lit, sizeof(lit) - 1, want)

static int seq(const char *s, size_t n)
{
    return sbx__utf8_seq((const unsigned char *)s, n);
}

Test(common_utf8, valid_sequences_of_one_to_four_bytes)
{
    /* The bounds of each length, and the edges next to the ranges that are excluded. */
    static const char *const valid[] = {
        "\x00", "A", "\x7f",                       /* 1 byte */
        "\xc2\x80", "\xc3\xa9", "\xdf\xbf",        /* 2 bytes: U+0080..U+07FF */
        "\xe0\xa0\x80", "\xe2\x80\xa6", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
        "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf3\xbf\xbf\xbf", "\xf4\x8f\xbf\xbf",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        /* NUL is a valid 1-byte sequence; its copy is checked in nul_and_empty_input. */
        size_t n = valid[i][0] ? strlen(valid[i]) : 1;
        cr_expect_eq(seq(valid[i], n), (int)n, "case %zu", i);
        if (valid[i][0])
            expect_replaced(valid[i], n, valid[i]);
    }
    /* Only the sequence at p counts: what follows it does not matter. */
    cr_expect_eq(seq("\xc3\xa9\xff", 3), 2);
    REPLACED("ok \xc3\xa9 \xe2\x80\xa6 \xf0\x9f\x98\x80",
             "ok \xc3\xa9 \xe2\x80\xa6 \xf0\x9f\x98\x80");
}

Test(common_utf8, nul_and_empty_input)
{
    size_t n = 1;
    char *out = sbx__utf8_replace("", 0, &n);
    cr_assert_not_null(out);
    cr_expect_eq(n, 0);
    cr_expect_str_eq(out, "");
    free(out);
    out = sbx__utf8_replace("a\0\xff", 3, &n);
    cr_assert_not_null(out);
    cr_expect_eq(n, 5);
    cr_expect_eq(memcmp(out, "a\0" FFFD, 5), 0);
    free(out);
}

Test(common_utf8, overlongs_are_one_replacement_per_byte)
{
    /* C0 and C1 can never start a sequence; after E0 and F0 the second byte is out of range,
     * so no byte of an overlong is a prefix of a valid sequence. */
    cr_expect_eq(seq("\xc0\xaf", 2), -1);
    cr_expect_eq(seq("\xc1\xbf", 2), -1);
    cr_expect_eq(seq("\xe0\x80\xaf", 3), -1);
    cr_expect_eq(seq("\xe0\x9f\xbf", 3), -1);
    cr_expect_eq(seq("\xf0\x80\x80\xaf", 4), -1);
    cr_expect_eq(seq("\xf0\x8f\xbf\xbf", 4), -1);
    REPLACED("\xc0\xaf", FFFD FFFD);
    REPLACED("\xe0\x80\xaf", FFFD FFFD FFFD);
    REPLACED("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD);
}

Test(common_utf8, surrogates_are_invalid)
{
    cr_expect_eq(seq("\xed\xa0\x80", 3), -1);
    cr_expect_eq(seq("\xed\xbf\xbf", 3), -1);
    REPLACED("\xed\xa0\x80", FFFD FFFD FFFD);
    /* A surrogate pair, as CESU-8 writes it, is not UTF-8 either. */
    REPLACED("\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD);
}

Test(common_utf8, code_points_above_10ffff_are_invalid)
{
    cr_expect_eq(seq("\xf4\x90\x80\x80", 4), -1);
    REPLACED("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);
    /* F5..FF never start a sequence. */
    for (int c = 0xf5; c <= 0xff; c++) {
        char b[4] = {(char)c, '\x80', '\x80', '\x80'};
        cr_expect_eq(seq(b, 4), -1, "lead byte %#x", c);
    }
    REPLACED("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD);
    REPLACED("\xff\xfe", FFFD FFFD);
}

Test(common_utf8, lone_continuation_bytes)
{
    cr_expect_eq(seq("\x80", 1), -1);
    cr_expect_eq(seq("\xbf", 1), -1);
    REPLACED("\x80\xbf", FFFD FFFD);
    REPLACED("\x82z", FFFD "z");
}

Test(common_utf8, truncated_at_the_end_is_one_replacement)
{
    /* Every proper prefix of a valid sequence, cut off by the end of input. */
    cr_expect_eq(seq("\xc3", 1), -1);
    cr_expect_eq(seq("\xe3\x81", 2), -2);
    cr_expect_eq(seq("\xe3", 1), -1);
    cr_expect_eq(seq("\xf0\x9f\x98", 3), -3);
    cr_expect_eq(seq("\xf0\x9f", 2), -2);
    cr_expect_eq(seq("\xf0", 1), -1);
    /* avail bounds the look: the bytes beyond it are not read even if they would complete it. */
    cr_expect_eq(seq("\xe2\x80\xa6", 2), -2);
    REPLACED("\xc3", FFFD);
    REPLACED("\xe3\x81", FFFD);
    REPLACED("\xf0\x9f\x98", FFFD);
    REPLACED("b\xc3", "b" FFFD);
    REPLACED("\xf1\x80\x80", FFFD);
}

Test(common_utf8, maximal_subpart_counts)
{
    /* A prefix interrupted by a byte that cannot continue it is one U+FFFD, and that byte is
     * then looked at afresh. */
    cr_expect_eq(seq("\xe3\x81z", 3), -2);
    cr_expect_eq(seq("\xf0\x9f\x98z", 4), -3);
    REPLACED("\xe3\x81z", FFFD "z");
    REPLACED("\xf0\x9f\x98z", FFFD "z");
    REPLACED("\xc3\xc3\xa9", FFFD "\xc3\xa9");
    REPLACED("\xe2\x82\xe2\x82\xac", FFFD "\xe2\x82\xac");
    /* The Unicode standard's example (Table 3-8), which Python decodes to four U+FFFD. */
    REPLACED("\xe1\x80\xe2\xf0\x91\x92\xf1\xbf\x41", FFFD FFFD FFFD FFFD "A");
    REPLACED("a\xff" "b\xc3", "a" FFFD "b" FFFD);
    REPLACED("\xc0\xaf\xed\xa0\x80", FFFD FFFD FFFD FFFD FFFD);
}
