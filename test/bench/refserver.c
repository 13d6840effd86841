/*
 * refserver.c - the benchmark's yardstick: a minimal, honest policy server that answers
 * action=DUNNO to every complete request. Single-threaded epoll like the daemon's one libevent
 * loop; it really finds the end of each request ("\n\n", also across reads) and answers each.
 *
 *   refserver -s unix:/path|inet:127.0.0.1:PORT
 */
/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAXFD 65536

static char last[MAXFD]; /* the last byte read on each connection */

static int listen_on(const char *spec)
{
    int fd;
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", spec + 5);
        unlink(sun.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
            return -1;
    } else {
        const char *colon = strrchr(spec + 5, ':');
        char host[64];
        if (!colon)
            return -1;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - spec - 5), spec + 5);
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)atoi(colon + 1))};
        inet_pton(AF_INET, host, &sin.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
        if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
            return -1;
    }
    if (listen(fd, SOMAXCONN) != 0)
        return -1;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "-s") != 0) {
        fprintf(stderr, "usage: refserver -s unix:/path|inet:ADDR:PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max < MAXFD ? rl.rlim_max : MAXFD;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = listen_on(argv[2]);
    if (lfd < 0) {
        perror("refserver: listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    static const char reply[] = "action=DUNNO\n\n";
    static char out[65536];
    char buf[65536];
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int k = 0; k < n; k++) {
            int fd = evs[k].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (cfd >= MAXFD) {
                        close(cfd);
                        continue;
                    }
                    last[cfd] = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            ssize_t got = read(fd, buf, sizeof(buf));
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN)
                    continue;
                close(fd);
                continue;
            }
            size_t nout = 0;
            char prev = last[fd];
            for (ssize_t j = 0; j < got; j++) {
                if (prev == '\n' && buf[j] == '\n' && nout + sizeof(reply) < sizeof(out)) {
                    memcpy(out + nout, reply, sizeof(reply) - 1);
                    nout += sizeof(reply) - 1;
                    prev = 0;
                    continue;
                }
                prev = buf[j];
            }
            last[fd] = prev;
            if (nout && write(fd, out, nout) < 0)
                close(fd);
        }
    }
}
