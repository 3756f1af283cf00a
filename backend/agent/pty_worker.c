/* pty_worker.c — a command on a new terminal, inside the sandbox.
 *
 * The terminal comes from the sandbox's own devpts instance (rootfs_dev.c mounts one with
 * newinstance), never from the host: a command holding one of the host's terminals as its
 * controlling tty could push input into it with TIOCSTI (CVE-2017-5226). The master travels
 * to the host over the operation channel (SCM_RIGHTS) before the command starts, so the host
 * reads the output straight from the master and the worker copies no byte; from there on the
 * exchange is exec's: STARTED or SPAWN_ERROR, then DONE, with KILL or a closed channel killing
 * the command's whole tree. The host resizes the terminal itself (TIOCSWINSZ on the master).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "agent.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static void send_errno(int chan, int e, const char *stage)
{
    struct sbx_wbuf b = {0};
    sbx__wbuf_u32(&b, (uint32_t)e);
    sbx__wbuf_str(&b, stage);
    if (!b.failed)
        sbx__wire_send(chan, SBX_MSG_EXEC_SPAWN_ERROR, b.data, b.len, NULL, 0);
    sbx__wbuf_free(&b);
}

/* Opens a master/slave pair. TIOCGPTPEER opens the slave through the master rather than by
 * its /dev/pts path, so nothing in the sandbox can swap the path under us. */
static int open_pair(int *master, int *slave, uint32_t uid, uint32_t gid)
{
    int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return -1;
    int unlock = 0;
    if (ioctl(m, TIOCSPTLCK, &unlock) < 0) {
        int e = errno;
        close(m);
        errno = e;
        return -1;
    }
    int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        int e = errno;
        close(m);
        errno = e;
        return -1;
    }
    /* The command's own terminal, as login(1) leaves it: programs that reopen their tty
     * (sudo, ssh, `tty`-based tools) need to be able to. Best effort: an unprivileged
     * session's agent already has the command's id. */
    if (fchown(s, uid, gid) < 0 || fchmod(s, 0620) < 0) {
        /* the terminal stays usable through the inherited fds */
    }
    *master = m;
    *slave = s;
    return 0;
}

void sbx_agent_serve_pty(int chan, const unsigned char *p, size_t len, int *fds, size_t n_fds)
{
    for (size_t i = 0; i < n_fds; i++)
        close(fds[i]);
    struct sbx_rbuf r = {.data = p, .len = len};
    uint32_t rows = sbx__rbuf_u32(&r), cols = sbx__rbuf_u32(&r);
    struct sbx_wire_exec x;
    if (r.bad || sbx__wire_exec_decode(p + 8, len - 8, &x) < 0) {
        send_errno(chan, EBADMSG, "decode");
        return;
    }
    int master = -1, slave = -1;
    if (open_pair(&master, &slave, x.uid, x.gid) < 0) {
        send_errno(chan, errno, "ptmx");
        sbx__wire_exec_clear(&x);
        return;
    }
    struct winsize ws = {.ws_row = (unsigned short)(rows ? rows : 24),
                         .ws_col = (unsigned short)(cols ? cols : 80)};
    ioctl(master, TIOCSWINSZ, &ws);
    /* The master goes first: the host must be reading before the command can fill the
     * terminal's buffer and block. */
    int sr = sbx__wire_send(chan, SBX_MSG_PTY_MASTER, NULL, 0, &master, 1);
    close(master);
    if (sr < 0) {
        close(slave);
        sbx__wire_exec_clear(&x);
        return;
    }
    int stdio[3] = {slave, slave, slave};
    sbx_agent_exec_run(chan, &x, stdio, 1, &slave, 1);
    sbx__wire_exec_clear(&x);
}
