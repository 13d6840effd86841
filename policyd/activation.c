/*
 * activation.c - the sockets systemd passed (see activation.h).
 *
 * libsystemd reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (sd_listen_fds_with_names) and
 * marks the descriptors close-on-exec; we check each is a listening stream socket, make it
 * non-blocking and note its address. The table is process-wide start-up state, read and
 * claimed from the loop thread only, before serving begins.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/activation.h"

#include "policyd/lib/endpoint.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <systemd/sd-daemon.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define ACTIVATION_MAX 64

static struct passed {
    int fd;
    int claimed;
    struct sockaddr_storage ss;
    socklen_t sslen;
    char name[sizeof(struct sockaddr_un) + 16];
} activation_fds[ACTIVATION_MAX];
static size_t activation_n;

int activation_take(char *err, size_t errlen)
{
    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0) {
        snprintf(err, errlen, "socket activation: LISTEN_FDS: %s", strerror(-n));
        return -1;
    }
    int rc = n;
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        const char *fdname = names && names[i] ? names[i] : "";
        if (rc >= 0 && (size_t)i >= ACTIVATION_MAX) {
            snprintf(err, errlen, "socket activation: %d sockets passed, at most %d", n,
                     ACTIVATION_MAX);
            rc = -1;
        }
        if (rc >= 0 && sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            snprintf(err, errlen,
                     "socket activation: descriptor %d (%s) is not a listening stream socket: "
                     "the socket unit must use ListenStream=",
                     fd, *fdname ? fdname : "unnamed");
            rc = -1;
        }
        if (rc < 0) {
            close(fd);
            continue;
        }
        struct passed *p = &activation_fds[activation_n++];
        p->fd = fd;
        p->sslen = sizeof(p->ss);
        if (getsockname(fd, (struct sockaddr *)&p->ss, &p->sslen) != 0)
            p->sslen = 0, p->ss.ss_family = AF_UNSPEC;
        endpoint_format((struct sockaddr *)&p->ss, p->sslen, p->name, sizeof(p->name));
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        log_info("socket activation: %s passed by systemd (descriptor %d%s%s)", p->name, fd,
                 *fdname ? ", " : "", fdname);
    }
    if (names) {
        for (int i = 0; i < n; i++)
            free(names[i]);
        free(names);
    }
    if (rc < 0) {
        for (size_t i = 0; i < activation_n; i++)
            close(activation_fds[i].fd);
        activation_n = 0;
    }
    return rc;
}

size_t activation_count(void)
{
    return activation_n;
}

int activation_claim(const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char err[256];
    if (endpoint_parse(spec, &ss, &sslen, err, sizeof(err)) != 0)
        return -1;
    for (size_t i = 0; i < activation_n; i++) {
        struct passed *p = &activation_fds[i];
        if (!p->claimed &&
            endpoint_equal((struct sockaddr *)&p->ss, p->sslen, (struct sockaddr *)&ss, sslen)) {
            p->claimed = 1;
            return p->fd;
        }
    }
    return -1;
}

int activation_next(char *name, size_t namelen)
{
    for (size_t i = 0; i < activation_n; i++) {
        struct passed *p = &activation_fds[i];
        if (!p->claimed) {
            p->claimed = 1;
            snprintf(name, namelen, "%s", p->name);
            return p->fd;
        }
    }
    return -1;
}
