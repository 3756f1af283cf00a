/* W3C Trace Context ids. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "trace.h"

static int is_lower_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", s[i]))
            return 0;
    return 1;
}

Test(instr_trace, new_ids_are_lower_hex_of_the_right_length_and_distinct)
{
    char a[33], b[33], s[17];
    sbx__trace_id_new(a);
    sbx__trace_id_new(b);
    sbx__span_id_new(s);
    cr_expect(is_lower_hex(a, 32), "%s", a);
    cr_expect(is_lower_hex(s, 16), "%s", s);
    cr_expect_str_neq(a, b);
}

Test(instr_trace, traceparent_parsing)
{
    char t[33], s[17];
    cr_assert_eq(sbx__traceparent_parse(
                     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, s),
                 0);
    cr_expect_str_eq(t, "4bf92f3577b34da6a3ce929d0e0e4736");
    cr_expect_str_eq(s, "00f067aa0ba902b7");
    cr_expect_eq(sbx__traceparent_parse(
                     "00-00000000000000000000000000000000-00f067aa0ba902b7-01", t, s),
                 -1, "all-zero trace id");
    cr_expect_eq(sbx__traceparent_parse(
                     "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", t, s),
                 -1, "upper case");
    cr_expect_eq(sbx__traceparent_parse(
                     "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, s),
                 -1, "version ff");
    cr_expect_eq(sbx__traceparent_parse("00-abc-def-01", t, s), -1);
    cr_expect_eq(sbx__traceparent_parse(NULL, t, s), -1);
}

Test(instr_trace, a_forked_child_never_repeats_the_parents_ids)
{
    /* Ids come from a per-thread pool of getrandom() bytes: a child must not reuse the rest of
     * the parent's pool. */
    char a[33], p_next[33], c_next[33] = "";
    sbx__trace_id_new(a);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char id[33];
        sbx__trace_id_new(id);
        _exit(write(fds[1], id, sizeof(id)) == (ssize_t)sizeof(id) ? 0 : 1);
    }
    close(fds[1]);
    sbx__trace_id_new(p_next);
    cr_assert_eq(read(fds[0], c_next, sizeof(c_next)), (ssize_t)sizeof(c_next));
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    cr_expect(is_lower_hex(c_next, 32), "%s", c_next);
    cr_expect_str_neq(p_next, c_next);
    cr_expect_str_neq(a, c_next);
}
