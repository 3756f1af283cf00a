/* wire.c — encoding, decoding and fd passing for the host <-> agent protocol. */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void wbuf_put(struct sbx_wbuf *b, const void *p, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void sbx__wbuf_u32(struct sbx_wbuf *b, uint32_t v)
{
    wbuf_put(b, &v, sizeof(v));
}

void sbx__wbuf_u64(struct sbx_wbuf *b, uint64_t v)
{
    wbuf_put(b, &v, sizeof(v));
}

void sbx__wbuf_str(struct sbx_wbuf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > SBX_WIRE_MAX_PAYLOAD) {
        b->failed = 1;
        return;
    }
    sbx__wbuf_u32(b, (uint32_t)n);
    if (n)
        wbuf_put(b, s, n);
}

void sbx__wbuf_bytes(struct sbx_wbuf *b, const void *p, uint32_t len)
{
    sbx__wbuf_u32(b, len);
    if (len)
        wbuf_put(b, p, len);
}

void sbx__wbuf_strv(struct sbx_wbuf *b, const char *const *v)
{
    uint32_t n = 0;
    while (v && v[n])
        n++;
    sbx__wbuf_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        sbx__wbuf_str(b, v[i]);
}

void sbx__wbuf_free(struct sbx_wbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int rbuf_take(struct sbx_rbuf *r, void *out, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = 1;
        return -1;
    }
    memcpy(out, r->data + r->off, n);
    r->off += n;
    return 0;
}

uint32_t sbx__rbuf_u32(struct sbx_rbuf *r)
{
    uint32_t v = 0;
    rbuf_take(r, &v, sizeof(v));
    return v;
}

uint64_t sbx__rbuf_u64(struct sbx_rbuf *r)
{
    uint64_t v = 0;
    rbuf_take(r, &v, sizeof(v));
    return v;
}

char *sbx__rbuf_str(struct sbx_rbuf *r)
{
    uint32_t n = sbx__rbuf_u32(r);
    if (r->bad || r->len - r->off < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->data + r->off;
    if (memchr(p, 0, n)) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = 1;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    r->off += n;
    return s;
}

unsigned char *sbx__rbuf_bytes(struct sbx_rbuf *r, uint32_t *len)
{
    uint32_t n = sbx__rbuf_u32(r);
    *len = 0;
    if (r->bad || r->len - r->off < n) {
        r->bad = 1;
        return NULL;
    }
    if (n == 0)
        return NULL;
    unsigned char *p = malloc(n);
    if (!p) {
        r->bad = 1;
        return NULL;
    }
    memcpy(p, r->data + r->off, n);
    r->off += n;
    *len = n;
    return p;
}

char **sbx__rbuf_strv(struct sbx_rbuf *r, uint32_t max)
{
    uint32_t n = sbx__rbuf_u32(r);
    if (r->bad || n > max) {
        r->bad = 1;
        return NULL;
    }
    char **v = calloc((size_t)n + 1, sizeof(*v));
    if (!v) {
        r->bad = 1;
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        v[i] = sbx__rbuf_str(r);
        if (!v[i]) {
            for (uint32_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return NULL;
        }
    }
    return v;
}

int sbx__wire_send(int sock, uint32_t type, const void *payload, size_t len, const int *fds,
                   size_t n_fds)
{
    if (len > SBX_WIRE_MAX_PAYLOAD || n_fds > SBX_WIRE_MAX_FDS)
        return -EMSGSIZE;
    struct sbx_wire_hdr hdr = {.type = type, .len = (uint32_t)len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * SBX_WIRE_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct iovec iov[2] = {{.iov_base = &hdr, .iov_len = sizeof(hdr)},
                           {.iov_base = (void *)payload, .iov_len = len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    if (n_fds) {
        memset(&u, 0, sizeof(u));
        msg.msg_control = u.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
    }
    size_t total = sizeof(hdr) + len;
    ssize_t n;
    do {
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if ((size_t)n == total)
        return 0;
    /* Short send on a stream socket: the fds went with the first byte; send the rest plain. */
    size_t sent = (size_t)n;
    if (sent < sizeof(hdr)) {
        while (sent < sizeof(hdr)) {
            ssize_t k = send(sock, (char *)&hdr + sent, sizeof(hdr) - sent, MSG_NOSIGNAL);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return -errno;
            sent += (size_t)k;
        }
    }
    size_t off = sent - sizeof(hdr);
    while (off < len) {
        ssize_t k = send(sock, (const char *)payload + off, len - off, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        off += (size_t)k;
    }
    return 0;
}

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

int sbx__wire_recv(int sock, struct sbx_wire_hdr *hdr, unsigned char **payload, int *fds,
                   size_t max_fds, size_t *n_fds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * SBX_WIRE_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = hdr, .iov_len = sizeof(*hdr)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                         .msg_controllen = sizeof(u.buf)};
    *payload = NULL;
    if (n_fds)
        *n_fds = 0;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -EPIPE;
    int got[SBX_WIRE_MAX_FDS];
    size_t n_got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && n_got < SBX_WIRE_MAX_FDS; i++)
            memcpy(&got[n_got++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    int rc = 0;
    if ((size_t)n < sizeof(*hdr) &&
        sbx__read_full_sock(sock, (char *)hdr + n, sizeof(*hdr) - (size_t)n) < 0)
        rc = -EPIPE;
    if (rc == 0 && hdr->len > SBX_WIRE_MAX_PAYLOAD)
        rc = -EMSGSIZE;
    if (rc == 0 && hdr->len) {
        *payload = malloc(hdr->len);
        if (!*payload)
            rc = -ENOMEM;
        else if (sbx__read_full_sock(sock, *payload, hdr->len) < 0)
            rc = -EPIPE;
    }
    if (rc < 0 || (msg.msg_flags & MSG_CTRUNC)) {
        free(*payload);
        *payload = NULL;
        close_fds(got, n_got);
        return rc < 0 ? rc : -EMSGSIZE;
    }
    size_t keep = n_got < max_fds ? n_got : max_fds;
    if (fds)
        memcpy(fds, got, keep * sizeof(int));
    else
        keep = 0;
    close_fds(got + keep, n_got - keep);
    if (n_fds)
        *n_fds = keep;
    return 0;
}

int sbx__read_full_sock(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
