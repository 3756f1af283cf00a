/* why.c — the one-line reasons sbx-bench gives when a variant is absent or fails. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

int bench_why(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, BENCH_WHY_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

/* The first line of `s` that is not blank, without its newline, as a pointer and a length. */
static const char *first_line(const char *s, size_t len, size_t *line_len)
{
    size_t i = 0;
    while (i < len && (s[i] == '\n' || s[i] == '\r' || s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t end = i;
    while (end < len && s[end] != '\n' && s[end] != '\r')
        end++;
    *line_len = end - i;
    return s + i;
}

int bench_why_exit(char *why, int exit_code, int term_signal, const char *err, size_t err_len)
{
    char status[64];
    if (term_signal) {
        const char *name = sigabbrev_np(term_signal);
        snprintf(status, sizeof(status), "killed by signal %d (SIG%s)", term_signal,
                 name ? name : "?");
    } else {
        snprintf(status, sizeof(status), "exited with status %d", exit_code);
    }
    size_t line_len = 0;
    const char *line = err ? first_line(err, err_len, &line_len) : NULL;
    if (line_len == 0)
        return bench_why(why, "%s", status);
    return bench_why(why, "%s: %.*s", status, (int)(line_len > 300 ? 300 : line_len), line);
}
