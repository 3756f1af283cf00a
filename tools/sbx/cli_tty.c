/* cli_tty.c — what a command prints reaches a person's terminal as text, not as commands.
 *
 * A terminal obeys escape sequences in the bytes it is given: OSC 52 writes the clipboard,
 * OSC 0 sets the window title, a bracketed-paste end marker can smuggle keystrokes, cursor
 * movement can redraw what the person already read. When `sbx run` or `sbx exec` passes a
 * command's output through to a terminal (and the sandbox has no terminal of its own), the
 * stream goes through a pipe and a relay thread here, which shows control characters instead
 * of sending them: C0 and DEL in caret notation as `cat -v` does (ESC as ^[, BEL as ^G),
 * the C1 controls U+0080..U+009F as <U+009B>, and bytes that are not UTF-8 as \x9b (an 8-bit
 * terminal would take 0x9b as CSI). Newline, tab and carriage return pass, and so does all
 * other UTF-8 text. Output to a pipe or a file is never touched (the library always hands
 * over raw bytes), and --raw-output turns the relay off.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"
#include "utf8.h"

/* Escapes in[0..n) into out (room for 10 bytes per input byte), and returns the output
 * length. *used says how much of the input was taken: at the end of a read, an incomplete
 * UTF-8 sequence is left for the next one unless at_eof. */
size_t sbx_cli_tty_escape(const unsigned char *in, size_t n, int at_eof, char *out,
                          size_t *used)
{
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned char c = in[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') || c == 0x7f) {
                out[o++] = '^';
                out[o++] = (char)(c ^ 0x40);
            } else {
                out[o++] = (char)c;
            }
            i++;
            continue;
        }
        int k = sbx__utf8_seq(in + i, n - i);
        if (k < 0 && !at_eof && i + (size_t)-k == n && n - i < 4)
            break; /* maybe the start of a sequence the next read completes */
        if (k == 2 && c == 0xc2 && in[i + 1] < 0xa0) {
            o += (size_t)snprintf(out + o, 10, "<U+%04X>", (unsigned)in[i + 1]);
            i += 2;
        } else if (k > 0) {
            memcpy(out + o, in + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        } else {
            for (int j = 0; j < -k; j++)
                o += (size_t)snprintf(out + o, 10, "\\x%02x", in[i + (size_t)j]);
            i += (size_t)-k;
        }
    }
    *used = i;
    return o;
}

static void *relay(void *arg)
{
    struct sbx_cli_tty *t = arg;
    unsigned char in[4096];
    char out[sizeof(in) * 10];
    size_t held = 0;
    int failed = 0;
    for (;;) {
        ssize_t r = read(t->pipe_rd, in + held, sizeof(in) - held);
        if (r < 0 && errno == EINTR)
            continue;
        int eof = r <= 0;
        size_t n = held + (eof ? 0 : (size_t)r), used = 0;
        size_t len = sbx_cli_tty_escape(in, n, eof, out, &used);
        /* After a failed write (the terminal went away), keep reading so the command's
         * stream never blocks on a full pipe. */
        if (!failed && len && sbx__write_full_nosig(t->fd, out, len) < 0)
            failed = 1;
        held = n - used;
        memmove(in, in + used, held);
        if (eof)
            break;
    }
    close(t->pipe_rd);
    return NULL;
}

int sbx_cli_tty_begin(struct sbx_cli_tty *t, int fd, int raw)
{
    t->fd = fd;
    t->pipe_rd = t->pipe_wr = -1;
    t->active = 0;
    if (raw || !isatty(fd))
        return fd;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return fd; /* cannot guard: fall back to passing through, as with --raw-output */
    t->pipe_rd = p[0];
    t->pipe_wr = p[1];
    if (pthread_create(&t->thread, NULL, relay, t) != 0) {
        close(p[0]);
        close(p[1]);
        t->pipe_rd = t->pipe_wr = -1;
        return fd;
    }
    t->active = 1;
    return t->pipe_wr;
}

void sbx_cli_tty_end(struct sbx_cli_tty *t)
{
    if (!t->active)
        return;
    close(t->pipe_wr); /* the library has written all it will: the relay sees EOF */
    pthread_join(t->thread, NULL);
    t->active = 0;
}
