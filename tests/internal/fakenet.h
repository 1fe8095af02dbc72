/*
 * tests/internal/fakenet.h — what the C tests with a scripted fake server
 * share: a counting CHECK() (the test goes on and main() reports the total
 * in `failures`), and the loopback listener and blocking socket helpers of
 * the fake.  Header-only: each test is one program.
 */
#ifndef TRIB_FAKENET_H
#define TRIB_FAKENET_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int failures;
#define CHECK(c)                                                                   \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                            \
        }                                                                          \
    } while (0)

/* A listening socket on 127.0.0.1 and a free port (*port); exits on failure. */
static inline int fake_listen(int *port)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        perror("fake server");
        exit(2);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Read exactly n bytes: 0, or -1 at EOF / error. */
static inline int fake_read(int fd, uint8_t *b, size_t n)
{
    while (n) {
        ssize_t r = recv(fd, b, n, 0);
        if (r <= 0) return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static inline void fake_write(int fd, const void *b, size_t n)
{
    if (send(fd, b, n, MSG_NOSIGNAL) != (ssize_t)n) fprintf(stderr, "fake: short send\n");
}

#endif
