/* ns_files.c — the host side of file operations, walks and puts.
 *
 * Each request gets its own operation channel plus, for anything that moves bytes, a data
 * socket whose other end goes to the worker. The caller's own fd never enters the sandbox:
 * bytes are copied between it and the data socket here, in bounded chunks, so a 2 GiB file
 * never sits in memory. The worker's FILE_DONE is always the last message of a channel.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exec_io.h"
#include "ns.h"
#include "wire_bulk.h"
#include "wire_msgs.h"

#define COPY_BUF (256u << 10)

void sbx__backend_file_out_clear(struct sbx_backend_file_out *o)
{
    free(o->detail);
    for (size_t i = 0; i < o->n_entries; i++)
        free(o->entries[i].name);
    free(o->entries);
    memset(o, 0, sizeof(*o));
}

static int transport_err(sbx_error **err, int e, const char *what)
{
    return sbx_err(err, SBX_EBACKEND, e < 0 ? -e : e, "file",
                   "the sandbox did not answer a file operation (%s)", what);
}

/* Opens a channel and sends the request, with the worker's end of a data socket when
 * *data is wanted (data != NULL). */
static int send_request(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q,
                        uint32_t op, int *data, int *chan_out, sbx_error **err)
{
    int sv[2] = {-1, -1};
    if (data && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return transport_err(err, errno, "socketpair");
    int chan = sbx__ns_open_channel(sb);
    if (chan < 0) {
        if (data) {
            close(sv[0]);
            close(sv[1]);
        }
        return transport_err(err, chan, "open channel");
    }
    struct sbx_wire_file w = {.op = op,
                              .flags = q->flags,
                              .uid = q->uid,
                              .gid = q->gid,
                              .mode = q->mode,
                              .root = (char *)q->root,
                              .path = (char *)q->path,
                              .skip = (char **)q->skip};
    struct sbx_wbuf b = {0};
    int r = sbx__wire_file_encode(&w, &b);
    if (r == 0)
        r = sbx__wire_send(chan, SBX_MSG_FILE, b.data, b.len, data ? &sv[1] : NULL, data ? 1 : 0);
    sbx__wbuf_free(&b);
    if (data)
        close(sv[1]);
    if (r < 0) {
        close(chan);
        if (data)
            close(sv[0]);
        return transport_err(err, r, "send");
    }
    if (data) {
        sbx__ns_sock_timeouts(sv[0]);
        *data = sv[0];
    }
    *chan_out = chan;
    return 0;
}

static int parse_entries(const unsigned char *p, size_t len, struct sbx_backend_file_out *o)
{
    struct sbx_rbuf outer = {.data = p, .len = len};
    uint32_t n = sbx__rbuf_u32(&outer);
    uint32_t blen = 0;
    unsigned char *blob = sbx__rbuf_bytes(&outer, &blen);
    if (outer.bad || n > (1u << 20)) {
        free(blob);
        return -EBADMSG;
    }
    struct sbx_backend_file_entry *nv =
        realloc(o->entries, (o->n_entries + n) * sizeof(*nv) + sizeof(*nv));
    if (!nv) {
        free(blob);
        return -ENOMEM;
    }
    o->entries = nv;
    struct sbx_rbuf r = {.data = blob, .len = blen};
    for (uint32_t i = 0; i < n && !r.bad; i++) {
        struct sbx_backend_file_entry *e = &o->entries[o->n_entries];
        e->name = sbx__rbuf_str(&r);
        e->kind = (int)sbx__rbuf_u32(&r);
        e->mode = sbx__rbuf_u32(&r);
        e->size = sbx__rbuf_u64(&r);
        e->mtime = (int64_t)sbx__rbuf_u64(&r);
        e->uid = sbx__rbuf_u32(&r);
        e->gid = sbx__rbuf_u32(&r);
        if (r.bad) {
            free(e->name);
            break;
        }
        o->n_entries++;
    }
    free(blob);
    return r.bad ? -EBADMSG : 0;
}

/* Reads replies until FILE_DONE; OPENED and ENTRIES are folded into o. With copy_to >= 0, the
 * bytes of an OPENED read are copied from data to copy_to first. */
static int wait_done(int chan, int data, int copy_to, struct sbx_backend_file_out *o,
                     sbx_error **err)
{
    for (;;) {
        struct sbx_wire_hdr h;
        unsigned char *p = NULL;
        int r = sbx__wire_recv(chan, &h, &p, NULL, 0, NULL);
        if (r < 0)
            return transport_err(err, r, "reply");
        if (h.type == SBX_MSG_FILE_DONE) {
            struct sbx_rbuf rb = {.data = p, .len = h.len};
            o->err = (int)sbx__rbuf_u32(&rb);
            o->step = (int)sbx__rbuf_u32(&rb);
            o->detail = sbx__rbuf_str(&rb);
            o->bytes = sbx__rbuf_u64(&rb);
            free(p);
            if (rb.bad)
                return transport_err(err, EBADMSG, "malformed reply");
            return 0;
        }
        if (h.type == SBX_MSG_FILE_ENTRIES) {
            r = parse_entries(p, h.len, o);
        } else if (h.type == SBX_MSG_FILE_OPENED) {
            struct sbx_rbuf rb = {.data = p, .len = h.len};
            o->size = sbx__rbuf_u64(&rb);
            r = 0;
            if (copy_to >= 0 && data >= 0) {
                unsigned char *buf = malloc(COPY_BUF);
                if (!buf)
                    r = -ENOMEM;
                for (;;) {
                    ssize_t n = buf ? read(data, buf, COPY_BUF) : 0;
                    if (n < 0 && errno == EINTR)
                        continue;
                    if (n <= 0) {
                        if (n < 0)
                            r = -errno;
                        break;
                    }
                    for (ssize_t off = 0; off < n;) {
                        ssize_t w = sbx__write_nosigpipe(copy_to, buf + off, (size_t)(n - off));
                        if (w < 0 && errno == EINTR)
                            continue;
                        if (w < 0 && errno == EAGAIN) {
                            struct pollfd pf = {.fd = copy_to, .events = POLLOUT};
                            poll(&pf, 1, -1);
                            continue;
                        }
                        if (w < 0) {
                            free(buf);
                            free(p);
                            return sbx_err(err, SBX_EIO, errno, "read",
                                           "cannot write the file's bytes to the output");
                        }
                        off += w;
                    }
                }
                free(buf);
            }
        } else {
            r = -EBADMSG;
        }
        free(p);
        if (r < 0)
            return transport_err(err, r, "reply");
    }
}

/* WRITE: copies src to data until EOF or until the worker answers early (it failed). */
static int feed(int src, int data, int chan, sbx_error **err)
{
    unsigned char *buf = malloc(COPY_BUF);
    if (!buf)
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "write", "out of memory");
    int r = 0;
    for (;;) {
        struct pollfd pf[2] = {{.fd = src, .events = POLLIN}, {.fd = chan, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            r = sbx_err(err, SBX_EIO, errno, "write", "poll");
            break;
        }
        if (pf[1].revents)
            break; /* the worker has answered: it stopped reading */
        if (!pf[0].revents)
            continue;
        ssize_t n = read(src, buf, COPY_BUF);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            r = sbx_err(err, SBX_EIO, errno, "write", "cannot read the input stream");
            break;
        }
        if (n == 0)
            break;
        int e = 0;
        for (ssize_t off = 0; off < n && !e;) {
            ssize_t w = send(data, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                e = errno;
            else
                off += w;
        }
        if (e)
            break; /* the worker stopped reading: its answer says why */
    }
    free(buf);
    shutdown(data, SHUT_WR);
    return r;
}

static int ns_file_op(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q, int stream_fd,
                   struct sbx_backend_file_out *out, sbx_error **err)
{
    memset(out, 0, sizeof(*out));
    int moves = q->op == SBX_BFOP_READ || q->op == SBX_BFOP_WRITE;
    int chan = -1, data = -1;
    int r = send_request(sb, q, (uint32_t)q->op, moves ? &data : NULL, &chan, err);
    if (r < 0)
        return r;
    if (q->op == SBX_BFOP_WRITE)
        r = feed(stream_fd, data, chan, err);
    if (r == 0)
        r = wait_done(chan, data, q->op == SBX_BFOP_READ ? stream_fd : -1, out, err);
    if (data >= 0)
        close(data);
    close(chan);
    if (r < 0)
        sbx__backend_file_out_clear(out);
    return r;
}

int sbx__ns_file(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q, int stream_fd,
                 struct sbx_backend_file_out *out, sbx_error **err)
{
    return ns_file_op(sb, q, stream_fd, out, err);
}

/* ---- walk ---- */

static int recv_exact(int fd, void *buf, size_t n)
{
    return sbx__read_full_sock(fd, buf, n) < 0 ? -EPIPE : 0;
}

int sbx__ns_walk(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q,
                 sbx_backend_walk_cb cb, void *arg, struct sbx_backend_file_out *out,
                 sbx_error **err)
{
    memset(out, 0, sizeof(*out));
    int chan = -1, data = -1;
    int r = send_request(sb, q, SBX_FOP_WALK, &data, &chan, err);
    if (r < 0)
        return r;
    char *path = malloc(SBX_BULK_MAX_PATH + 1), *target = malloc(SBX_BULK_MAX_PATH + 1);
    struct sbx_backend_extent *ext = NULL;
    int cb_err = 0, stream_broke = 0;
    if (!path || !target)
        cb_err = sbx_err(err, SBX_ENOMEM, ENOMEM, "persist_workspace", "out of memory");
    while (!cb_err) {
        struct sbx_bulk_hdr h;
        if (recv_exact(data, &h, sizeof(h)) < 0) {
            stream_broke = 1;
            break;
        }
        if (h.kind == SBX_BULK_END || h.kind == SBX_BULK_ABORT)
            break;
        if (h.path_len > SBX_BULK_MAX_PATH || h.target_len > SBX_BULK_MAX_PATH ||
            h.n_extents > SBX_BULK_MAX_EXTENTS || h.kind < SBX_BULK_DIR ||
            h.kind > SBX_BULK_SYMLINK || recv_exact(data, path, h.path_len) < 0 ||
            recv_exact(data, target, h.target_len) < 0) {
            stream_broke = 1;
            break;
        }
        path[h.path_len] = '\0';
        target[h.target_len] = '\0';
        free(ext);
        ext = NULL;
        uint64_t total = 0;
        if (h.n_extents) {
            ext = malloc(h.n_extents * sizeof(*ext));
            if (!ext || recv_exact(data, ext, h.n_extents * sizeof(*ext)) < 0) {
                stream_broke = 1;
                break;
            }
            for (uint32_t i = 0; i < h.n_extents; i++) {
                if (ext[i].offset + ext[i].len > h.size || ext[i].offset + ext[i].len < ext[i].offset)
                    stream_broke = 1;
                total += ext[i].len;
            }
            if (stream_broke)
                break;
        }
        (void)total;
        struct sbx_backend_member m = {
            .kind = h.kind == SBX_BULK_DIR    ? SBX_BK_DIR
                    : h.kind == SBX_BULK_FILE ? SBX_BK_FILE
                                              : SBX_BK_SYMLINK,
            .path = path,
            .mode = h.mode,
            .mtime_sec = h.mtime_sec,
            .mtime_nsec = h.mtime_nsec,
            .size = h.kind == SBX_BULK_FILE ? h.size : 0,
            .target = h.kind == SBX_BULK_SYMLINK ? target : NULL,
            .n_extents = h.n_extents,
            .extents = ext,
            .data_fd = data};
        cb_err = cb(arg, &m, err);
    }
    free(ext);
    free(path);
    free(target);
    /* Closing our end makes a worker still sending stop; its answer follows. */
    shutdown(data, SHUT_RDWR);
    close(data);
    sbx_error *tmp = NULL;
    r = wait_done(chan, -1, -1, out, cb_err ? &tmp : err);
    sbx_error_free(tmp);
    close(chan);
    if (cb_err)
        return cb_err;
    if (r < 0)
        return r;
    if (stream_broke && !out->err)
        return transport_err(err, EPIPE, "the tree stream broke");
    return 0;
}

/* ---- put ---- */

struct sbx_backend_put {
    int chan, data;
    int broken;
    uint64_t file_size;
    unsigned char *buf;
    size_t len;
};

static int put_flush(struct sbx_backend_put *p)
{
    size_t off = 0;
    while (off < p->len && !p->broken) {
        ssize_t w = send(p->data, p->buf + off, p->len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            p->broken = errno;
        else
            off += (size_t)w;
    }
    p->len = 0;
    return p->broken ? -p->broken : 0;
}

static int put_bytes(struct sbx_backend_put *p, const void *b, size_t n)
{
    if (p->broken)
        return -p->broken;
    if (p->len + n > COPY_BUF && put_flush(p) < 0)
        return -p->broken;
    if (n > COPY_BUF) {
        size_t off = 0;
        while (off < n) {
            ssize_t w = send(p->data, (const char *)b + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                p->broken = errno;
                return -errno;
            }
            off += (size_t)w;
        }
        return 0;
    }
    memcpy(p->buf + p->len, b, n);
    p->len += n;
    return 0;
}

int sbx__ns_put_begin(struct sbx_sandbox *sb, const struct sbx_backend_file_req *q,
                      struct sbx_backend_put **out, sbx_error **err)
{
    struct sbx_backend_put *p = calloc(1, sizeof(*p));
    if (!p || !(p->buf = malloc(COPY_BUF))) {
        free(p);
        return sbx_err(err, SBX_ENOMEM, ENOMEM, "hydrate_workspace", "out of memory");
    }
    int r = send_request(sb, q, SBX_FOP_PUT, &p->data, &p->chan, err);
    if (r < 0) {
        free(p->buf);
        free(p);
        return r;
    }
    *out = p;
    return 0;
}

int sbx__ns_put_member(struct sbx_backend_put *p, const struct sbx_backend_member *m)
{
    size_t plen = strlen(m->path), tlen = m->target ? strlen(m->target) : 0;
    if (plen >= SBX_BULK_MAX_PATH || tlen >= SBX_BULK_MAX_PATH)
        return -ENAMETOOLONG;
    struct sbx_bulk_hdr h = {.kind = m->kind == SBX_BK_DIR    ? SBX_BULK_DIR
                                     : m->kind == SBX_BK_FILE ? SBX_BULK_FILE
                                                              : SBX_BULK_SYMLINK,
                             .mode = m->mode,
                             .mtime_sec = m->mtime_sec,
                             .mtime_nsec = m->mtime_nsec,
                             .path_len = (uint32_t)plen,
                             .target_len = (uint32_t)tlen,
                             .size = m->size};
    p->file_size = m->size;
    int r = put_bytes(p, &h, sizeof(h));
    if (!r)
        r = put_bytes(p, m->path, plen);
    if (!r && tlen)
        r = put_bytes(p, m->target, tlen);
    return r;
}

int sbx__ns_put_data(struct sbx_backend_put *p, uint64_t offset, const void *buf, size_t n)
{
    while (n) {
        uint32_t part = n > (1u << 30) ? (1u << 30) : (uint32_t)n;
        struct sbx_bulk_chunk c = {.offset = offset, .len = part, .last = 0};
        int r = put_bytes(p, &c, sizeof(c));
        if (!r)
            r = put_bytes(p, buf, part);
        if (r)
            return r;
        buf = (const char *)buf + part;
        offset += part;
        n -= part;
    }
    return 0;
}

int sbx__ns_put_file_end(struct sbx_backend_put *p)
{
    struct sbx_bulk_chunk c = {.offset = p->file_size, .len = 0, .last = 1};
    return put_bytes(p, &c, sizeof(c));
}

int sbx__ns_put_end(struct sbx_backend_put *p, int commit, struct sbx_backend_file_out *out,
                    sbx_error **err)
{
    memset(out, 0, sizeof(*out));
    struct sbx_bulk_hdr h = {.kind = commit ? SBX_BULK_END : SBX_BULK_ABORT};
    if (put_bytes(p, &h, sizeof(h)) == 0)
        put_flush(p);
    shutdown(p->data, SHUT_WR);
    int r = wait_done(p->chan, -1, -1, out, err);
    close(p->data);
    close(p->chan);
    free(p->buf);
    free(p);
    return r;
}
