/* port_server — a small TCP server the exposed-port tests run inside a session.
 *
 *   port_server echo PORT          each connection: everything read is written back
 *   port_server source PORT BYTES  each connection: BYTES of a fixed pattern, then close
 *   port_server http PORT          HTTP/1.0 GET of a file below the current directory
 *
 * One process per connection (fork), so many clients are served at once. It prints
 * "listening" once bound, binds 127.0.0.1 (or ::1 with "-6"), and runs until killed.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void echo(int c)
{
    static char buf[1 << 16];
    ssize_t n;
    while ((n = read(c, buf, sizeof(buf))) > 0)
        if (write_all(c, buf, (size_t)n) < 0)
            return;
}

/* The pattern byte at offset i: what the tests check the received stream against. */
static unsigned char pattern(unsigned long long i)
{
    return (unsigned char)((i * 2654435761ULL) >> 13);
}

static void source(int c, unsigned long long total)
{
    static unsigned char buf[1 << 16];
    unsigned long long off = 0;
    while (off < total) {
        size_t n = total - off < sizeof(buf) ? (size_t)(total - off) : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(off + i);
        if (write_all(c, buf, n) < 0)
            return;
        off += n;
    }
}

static void http(int c)
{
    char req[4096];
    size_t len = 0;
    while (len < sizeof(req) - 1) {
        ssize_t n = read(c, req + len, sizeof(req) - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char path[1024];
    if (sscanf(req, "GET /%1000s", path) != 1 || strstr(path, "..")) {
        const char *bad = "HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        write_all(c, bad, strlen(bad));
        return;
    }
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        const char *nf = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        write_all(c, nf, strlen(nf));
        return;
    }
    char head[256];
    int h = snprintf(head, sizeof(head), "HTTP/1.0 200 OK\r\nContent-Length: %lld\r\n\r\n",
                     (long long)st.st_size);
    write_all(c, head, (size_t)h);
    char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        if (write_all(c, buf, (size_t)n) < 0)
            break;
    close(fd);
}

int main(int argc, char **argv)
{
    int v6 = argc > 1 && strcmp(argv[1], "-6") == 0;
    argv += v6;
    argc -= v6;
    if (argc < 3) {
        fprintf(stderr, "usage: port_server [-6] echo|source|http PORT [BYTES]\n");
        return 2;
    }
    signal(SIGCHLD, SIG_IGN); /* no zombies */
    int port = atoi(argv[2]);
    int l = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int r;
    if (v6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                                 .sin6_addr = in6addr_loopback};
        setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        r = bind(l, (struct sockaddr *)&a, sizeof(a));
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        r = bind(l, (struct sockaddr *)&a, sizeof(a));
    }
    if (r < 0 || listen(l, 256) < 0) {
        perror("bind/listen");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0)
            continue;
        if (fork() == 0) {
            close(l);
            if (strcmp(argv[1], "echo") == 0)
                echo(c);
            else if (strcmp(argv[1], "source") == 0)
                source(c, argc > 3 ? strtoull(argv[3], NULL, 10) : 0);
            else
                http(c);
            _exit(0);
        }
        close(c);
    }
}
