/* netns_peer.c — see netns_peer.h. */
#include "netns_peer.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXC 300

const char *sbx_netns_peer_ip_bin(void)
{
    static const char *const cands[] = {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"};
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

/* Runs `ip args...`; output into out (may be NULL). Returns the exit status or -1. */
static int run_ip(char *out, size_t cap, ...)
{
    const char *ip = sbx_netns_peer_ip_bin();
    if (!ip)
        return -1;
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)ip;
    va_list ap;
    va_start(ap, cap);
    for (char *a; n < 15 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char scratch[512];
    if (!out || !cap) {
        out = scratch;
        cap = sizeof(scratch);
    }
    return sbx_test_run_host(argv, out, cap);
}

/* ---- the server (in the child) ----------------------------------------------------------- */

struct sconn {
    int fd, kind; /* kind 0 http, 1 echo */
    char in[16384];
    size_t inlen;
    char *out;
    size_t outlen, outoff;
    int eof, done_reading;
};

static int listen_on(const char *ip, unsigned short port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 256) != 0)
        return -1;
    return fd;
}

static void http_answer(struct sconn *c, const char *body, size_t hlen)
{
    const char *b = body;
    size_t bl = strlen(body);
    if (!(c->inlen >= 10 && memcmp(c->in, "GET /body ", 10) == 0)) {
        b = c->in;
        bl = hlen;
    }
    c->out = malloc(bl + 128);
    if (!c->out)
        _exit(3);
    int n = snprintf(c->out, 128, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     bl);
    memcpy(c->out + n, b, bl);
    c->outlen = (size_t)n + bl;
    c->outoff = 0;
    c->done_reading = 1;
}

static void serve(int lh, int le, const char *body)
{
    static struct sconn conns[MAXC];
    int n = 0;
    for (;;) {
        struct pollfd pf[MAXC + 2];
        pf[0] = (struct pollfd){.fd = lh, .events = POLLIN};
        pf[1] = (struct pollfd){.fd = le, .events = POLLIN};
        for (int i = 0; i < n; i++) {
            struct sconn *c = &conns[i];
            short ev = 0;
            if (c->outoff < c->outlen)
                ev |= POLLOUT;
            else if (!c->eof && !c->done_reading)
                ev |= POLLIN;
            pf[2 + i] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        if (poll(pf, (nfds_t)(n + 2), -1) < 0)
            continue;
        int npf = n; /* connections accepted below have no poll entry yet */
        for (int l = 0; l < 2; l++) {
            if (!(pf[l].revents & POLLIN))
                continue;
            for (;;) {
                int fd = accept4(pf[l].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    break;
                if (n >= MAXC) {
                    close(fd);
                    continue;
                }
                memset(&conns[n], 0, sizeof(conns[n]));
                conns[n].fd = fd;
                conns[n].kind = l;
                n++;
            }
        }
        for (int i = 0; i < n && i < npf; i++) {
            struct sconn *c = &conns[i];
            short re = pf[2 + i].revents;
            if (pf[2 + i].fd != c->fd || !re)
                continue;
            if (c->outoff < c->outlen) {
                ssize_t k = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
                if (k > 0)
                    c->outoff += (size_t)k;
                else if (k < 0 && errno != EAGAIN)
                    c->eof = c->done_reading = 1, c->outoff = c->outlen;
            } else if (re & (POLLIN | POLLHUP | POLLERR)) {
                if (c->kind == 1) {
                    char tmp[65536];
                    ssize_t k = recv(c->fd, tmp, sizeof(tmp), 0);
                    if (k > 0) {
                        free(c->out);
                        c->out = malloc((size_t)k);
                        if (!c->out)
                            _exit(3);
                        memcpy(c->out, tmp, (size_t)k);
                        c->outlen = (size_t)k;
                        c->outoff = 0;
                    } else if (k == 0 || errno != EAGAIN) {
                        c->eof = 1;
                    }
                } else {
                    ssize_t k = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
                    if (k > 0) {
                        c->inlen += (size_t)k;
                        c->in[c->inlen] = '\0';
                        char *e = strstr(c->in, "\r\n\r\n");
                        if (e)
                            http_answer(c, body, (size_t)(e + 4 - c->in));
                        else if (c->inlen + 1 >= sizeof(c->in))
                            c->eof = 1;
                    } else if (k == 0 || errno != EAGAIN) {
                        c->eof = 1;
                    }
                }
            }
            /* finished: everything written and nothing more to read */
            if (c->outoff >= c->outlen && (c->eof || c->done_reading)) {
                shutdown(c->fd, SHUT_WR);
                close(c->fd);
                free(c->out);
                conns[i] = conns[--n];
                i--;
            }
        }
    }
}

static void child_main(struct sbx_netns_peer *p, int ready, int go, const char *body)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char st = 'u';
    if (unshare(CLONE_NEWNET) != 0) {
        st = 'E';
        if (write(ready, &st, 1) < 0)
            _exit(1);
        _exit(1);
    }
    if (write(ready, &st, 1) != 1)
        _exit(1);
    if (read(go, &st, 1) != 1)
        _exit(0);
    char addr[32];
    snprintf(addr, sizeof(addr), "%s/30", p->peer_ip);
    if (run_ip(NULL, 0, "link", "set", "lo", "up", (char *)NULL) != 0 ||
        run_ip(NULL, 0, "addr", "add", addr, "dev", p->peer_if, (char *)NULL) != 0 ||
        run_ip(NULL, 0, "link", "set", p->peer_if, "up", (char *)NULL) != 0) {
        st = 'I';
        if (write(ready, &st, 1) < 0)
            _exit(1);
        _exit(1);
    }
    int lh = listen_on(p->peer_ip, p->http_port);
    int le = listen_on(p->peer_ip, p->echo_port);
    st = (lh >= 0 && le >= 0) ? 'k' : 'L';
    if (write(ready, &st, 1) != 1 || st != 'k')
        _exit(1);
    close(ready);
    close(go);
    serve(lh, le, body);
    _exit(0);
}

static int wait_byte(int fd, int ms, char *b)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, ms) != 1)
        return -1;
    return read(fd, b, 1) == 1 ? 0 : -1;
}

int sbx_netns_peer_start(struct sbx_netns_peer *p, const char *body, char *why, size_t cap)
{
    memset(p, 0, sizeof(*p));
    if (geteuid() != 0) {
        snprintf(why, cap, "needs root (network namespaces and veth)");
        return -1;
    }
    if (!sbx_netns_peer_ip_bin()) {
        snprintf(why, cap, "needs iproute2's ip");
        return -1;
    }
    char addrs[16384];
    if (run_ip(addrs, sizeof(addrs), "-4", "-o", "addr", "show", (char *)NULL) != 0) {
        snprintf(why, cap, "ip addr show failed");
        return -1;
    }
    unsigned x = 0;
    for (unsigned k = 0; k < 256; k++) {
        unsigned cand = ((unsigned)getpid() + k) % 256;
        char pat[32];
        snprintf(pat, sizeof(pat), " 10.213.%u.", cand);
        if (!strstr(addrs, pat)) {
            x = cand;
            break;
        }
    }
    unsigned id = (unsigned)getpid() % 1000000u;
    snprintf(p->host_if, sizeof(p->host_if), "sbxt%ua", id);
    snprintf(p->peer_if, sizeof(p->peer_if), "sbxt%ub", id);
    snprintf(p->host_ip, sizeof(p->host_ip), "10.213.%u.1", x);
    snprintf(p->peer_ip, sizeof(p->peer_ip), "10.213.%u.2", x);
    p->http_port = 8080;
    p->echo_port = 8081;

    int rp[2], gp[2];
    if (pipe2(rp, O_CLOEXEC) != 0)
        return snprintf(why, cap, "pipe: %s", strerror(errno)), -1;
    if (pipe2(gp, O_CLOEXEC) != 0) {
        close(rp[0]);
        close(rp[1]);
        return snprintf(why, cap, "pipe: %s", strerror(errno)), -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(rp[0]);
        close(gp[1]);
        child_main(p, rp[1], gp[0], body);
    }
    close(rp[1]);
    close(gp[0]);
    if (pid < 0) {
        close(rp[0]);
        close(gp[1]);
        return snprintf(why, cap, "fork: %s", strerror(errno)), -1;
    }
    p->pid = pid;
    char b = 0, pidstr[16], hostaddr[32];
    snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
    snprintf(hostaddr, sizeof(hostaddr), "%s/30", p->host_ip);
    const char *fail = NULL;
    if (wait_byte(rp[0], 5000, &b) != 0 || b != 'u')
        fail = "the child could not unshare a network namespace";
    else if (run_ip(NULL, 0, "link", "add", p->host_if, "type", "veth", "peer", "name",
                    p->peer_if, "netns", pidstr, (char *)NULL) != 0)
        fail = "ip link add (veth) failed";
    else if (run_ip(NULL, 0, "addr", "add", hostaddr, "dev", p->host_if, (char *)NULL) != 0 ||
             run_ip(NULL, 0, "link", "set", p->host_if, "up", (char *)NULL) != 0)
        fail = "configuring the host side of the veth failed";
    else if (write(gp[1], "g", 1) != 1 || wait_byte(rp[0], 5000, &b) != 0 || b != 'k')
        fail = "the child could not configure its side or listen";
    close(rp[0]);
    close(gp[1]);
    if (fail) {
        snprintf(why, cap, "%s", fail);
        sbx_netns_peer_stop(p);
        return -1;
    }
    return 0;
}

void sbx_netns_peer_stop(struct sbx_netns_peer *p)
{
    if (p->host_if[0]) {
        /* deleting one end deletes both; it may already be gone */
        run_ip(NULL, 0, "link", "del", p->host_if, (char *)NULL);
        p->host_if[0] = '\0';
    }
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        p->pid = 0;
    }
}
