// floor-relay.c: the least an HTTP-aware proxy can do per request, as a yardstick for
// Benchmarks/proxy.sh (not a proxy: bodyless requests only, no response parsing, no timeouts).
//
// Usage: floor-relay LISTEN_PORT UPSTREAM_PORT [THREADS]
// Each thread has its own epoll loop and SO_REUSEPORT listener on 0.0.0.0:LISTEN_PORT; every
// accepted connection gets its own connection to 127.0.0.1:UPSTREAM_PORT. A request head is
// forwarded once its empty line has arrived, with `x-request-id` and `x-forwarded-proto`
// added, in one write; response bytes are relayed as they are read. One read and one write
// per direction and request, the floor any proxy that adds a header pays in syscalls, with
// next to no user time: what it keeps of direct requests/s is the most a proxy could keep on
// the machine it runs on, in the same minutes.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUF = 65536, HEAD_ROOM = 128 };

struct side {
    int fd;
    int downstream;        // 1: the client's side (request heads are parsed on it)
    int dead;              // closed in this epoll batch: freed after it
    struct side *peer;
    size_t len;            // bytes of an unfinished request head held in buf
    char buf[BUF];
};

static int listen_port, upstream_port;

// Closes both sides of a connection; they are freed after the epoll batch, which may still
// name them.
static void drop(int ep, struct side *s, struct side **graveyard, int *buried) {
    if (s->dead) return;
    struct side *p = s->peer;
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    epoll_ctl(ep, EPOLL_CTL_DEL, p->fd, NULL);
    close(s->fd);
    close(p->fd);
    s->dead = p->dead = 1;
    graveyard[(*buried)++] = s;
    graveyard[(*buried)++] = p;
}

// Writes all of buf (the sockets block on writes; reads use MSG_DONTWAIT).
static int send_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static void accept_one(int ep, int ls) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) return;
    int up = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(upstream_port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (up < 0 || connect(up, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("floor-relay: connect upstream");
        close(fd);
        if (up >= 0) close(up);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct side *d = calloc(1, sizeof *d), *u = calloc(1, sizeof *u);
    if (!d || !u) { close(fd); close(up); free(d); free(u); return; }
    d->fd = fd; d->downstream = 1; d->peer = u;
    u->fd = up; u->downstream = 0; u->peer = d;
    struct epoll_event ed = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = d};
    struct epoll_event eu = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = u};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ed);
    epoll_ctl(ep, EPOLL_CTL_ADD, up, &eu);
}

// Forwards every complete request head in s->buf; keeps an unfinished one.
static int forward_heads(struct side *s, char *out, unsigned long long *id) {
    size_t start = 0;
    for (;;) {
        char *end = memmem(s->buf + start, s->len - start, "\r\n\r\n", 4);
        if (!end) break;
        size_t fields = (size_t)(end - (s->buf + start)) + 2;   // through the last field's CRLF
        if (fields + HEAD_ROOM > BUF) return -1;
        memcpy(out, s->buf + start, fields);
        int n = snprintf(out + fields, HEAD_ROOM,
                         "x-request-id: %08llx-0000-4000-8000-%012llx\r\nx-forwarded-proto: http\r\n\r\n",
                         (*id >> 32) & 0xffffffffULL, *id & 0xffffffffffffULL);
        (*id)++;
        if (send_all(s->peer->fd, out, fields + (size_t)n) != 0) return -1;
        start += fields + 2;
    }
    if (start > 0) {
        memmove(s->buf, s->buf + start, s->len - start);
        s->len -= start;
    }
    return s->len == BUF ? -1 : 0;   // a head larger than the buffer: give up
}

static void *loop(void *arg) {
    (void)arg;
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(listen_port)};
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 1024) != 0) {
        perror("floor-relay: listen");
        exit(1);
    }
    int ep = epoll_create1(0);
    struct epoll_event el = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &el);
    struct epoll_event events[256];
    struct side *graveyard[512];
    char *out = malloc(BUF);
    unsigned long long id = ((unsigned long long)getpid() << 40) ^ (unsigned long long)(uintptr_t)&id;
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1), buried = 0;
        for (int i = 0; i < n; i++) {
            struct side *s = events[i].data.ptr;
            if (!s) { accept_one(ep, ls); continue; }
            if (s->dead) continue;
            ssize_t r = recv(s->fd, s->buf + s->len, BUF - s->len, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) { drop(ep, s, graveyard, &buried); continue; }
            if (!s->downstream) {
                if (send_all(s->peer->fd, s->buf, (size_t)r) != 0) drop(ep, s, graveyard, &buried);
                continue;
            }
            s->len += (size_t)r;
            if (forward_heads(s, out, &id) != 0) drop(ep, s, graveyard, &buried);
        }
        for (int i = 0; i < buried; i++) free(graveyard[i]);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: floor-relay LISTEN_PORT UPSTREAM_PORT [THREADS]\n");
        return 2;
    }
    listen_port = atoi(argv[1]);
    upstream_port = atoi(argv[2]);
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    for (int i = 1; i < threads; i++) {
        pthread_t t;
        pthread_create(&t, NULL, loop, NULL);
    }
    fprintf(stderr, "floor-relay: listening on %d, upstream 127.0.0.1:%d, %d threads\n", listen_port, upstream_port, threads);
    loop(NULL);
    return 0;
}
