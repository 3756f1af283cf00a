/* The CLI's terminal guard (tools/sbx/cli_tty.c): a command's output reaches a person's
 * terminal with control characters shown, not obeyed (THREATS T04: OSC 52 clipboard writes,
 * title changes, bracketed-paste and cursor games), while text, UTF-8 included, passes as
 * is. The filter itself here; `sbx run` and `sbx exec` on a real terminal in test_cli.c and
 * test_cli_session.c. */
#include <string.h>

#include "cli.h"
#include "harness.h"

TestSuite(tools_cli_tty);

/* Escapes all of `in` (as at the end of the stream) and checks the text. */
static void expect_escaped(const char *in, size_t n, const char *want)
{
    char out[1024];
    size_t used = 0;
    size_t len = sbx_cli_tty_escape((const unsigned char *)in, n, 1, out, &used);
    cr_assert_eq(used, n);
    out[len] = '\0';
    cr_expect_str_eq(out, want);
}

Test(tools_cli_tty, control_characters_are_shown_not_sent)
{
    static const char osc[] = "\033]52;c;ZXZpbA==\a\033]0;pwn\a";
    expect_escaped(osc, sizeof(osc) - 1, "^[]52;c;ZXZpbA==^G^[]0;pwn^G");
    static const char paste[] = "\033[201~rm -rf ~\r\n";
    expect_escaped(paste, sizeof(paste) - 1, "^[[201~rm -rf ~\r\n");
    static const char c0[] = "a\b\x7f\x01\x1f\x00z";
    expect_escaped(c0, sizeof(c0) - 1, "a^H^?^A^_^@z");
}

Test(tools_cli_tty, text_and_utf8_pass_as_they_are)
{
    static const char text[] = "tab\there\r\nh\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\n";
    expect_escaped(text, sizeof(text) - 1, text);
}

Test(tools_cli_tty, c1_controls_and_bytes_that_are_not_utf8_are_shown)
{
    /* U+009B is CSI to a terminal that reads C1 controls; a lone 0x9b is CSI to an 8-bit one. */
    static const char c1[] = "\xc2\x9b" "2J \x9b" "2J \xc2\xa0";
    expect_escaped(c1, sizeof(c1) - 1, "<U+009B>2J \\x9b2J \xc2\xa0");
    static const char bad[] = "\xed\xa0\x80|\xff";
    expect_escaped(bad, sizeof(bad) - 1, "\\xed\\xa0\\x80|\\xff");
}

Test(tools_cli_tty, a_sequence_split_between_reads_is_kept_whole)
{
    /* The relay reads in chunks: the start of a UTF-8 sequence at the end of one read waits
     * for the rest instead of being shown as bytes that are not UTF-8. */
    static const char s[] = "ok \xe2\x9c\x93";
    char out[64];
    size_t used = 0;
    size_t len = sbx_cli_tty_escape((const unsigned char *)s, 4, 0, out, &used);
    cr_expect_eq(used, 3);
    cr_expect_eq(len, 3);
    len = sbx_cli_tty_escape((const unsigned char *)s + 3, 3, 0, out, &used);
    cr_expect_eq(used, 3);
    out[len] = '\0';
    cr_expect_str_eq(out, "\xe2\x9c\x93");
    /* ...but not past the end of the stream. */
    len = sbx_cli_tty_escape((const unsigned char *)s + 3, 2, 1, out, &used);
    cr_expect_eq(used, 2);
    out[len] = '\0';
    cr_expect_str_eq(out, "\\xe2\\x9c");
}
