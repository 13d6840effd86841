/*
 * endpoint.c - listen endpoints as policyd.conf writes them: unix:/absolute/path and
 * inet:ADDRESS:PORT (inet:[::1]:10031). Addresses are literal: a host name is not resolved
 * here, so a configuration check never waits on DNS.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/endpoint.h"

#include "policyd/lib/plist.h"

#include <event2/util.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

int endpoint_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
                   size_t errlen)
{
    memset(ss, 0, sizeof(*ss));
    if (strncmp(spec, "unix:", 5) == 0) {
        const char *path = spec + 5;
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        if (path[0] != '/') {
            snprintf(err, errlen, "'%s': the unix socket path must be absolute", spec);
            return -1;
        }
        if (strlen(path) >= sizeof(sun->sun_path)) {
            snprintf(err, errlen, "'%s': path longer than %zu bytes", spec,
                     sizeof(sun->sun_path) - 1);
            return -1;
        }
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, path);
        *sslen = (socklen_t)sizeof(*sun);
        return 0;
    }
    if (strncmp(spec, "inet:", 5) == 0) {
        int len = (int)sizeof(*ss);
        const char *hp = spec + 5;
        const char *colon = strrchr(hp, ':');
        if (!colon || colon == hp || !colon[1] ||
            evutil_parse_sockaddr_port(hp, (struct sockaddr *)ss, &len) != 0) {
            snprintf(err, errlen,
                     "'%s' is not inet:ADDRESS:PORT (e.g. inet:127.0.0.1:10031, "
                     "inet:[::1]:10031; host names are not resolved)",
                     spec);
            return -1;
        }
        unsigned port = ss->ss_family == AF_INET ? ntohs(((struct sockaddr_in *)ss)->sin_port)
                                                 : ntohs(((struct sockaddr_in6 *)ss)->sin6_port);
        if (port == 0) {
            snprintf(err, errlen, "'%s': port 0 is not a port to listen on", spec);
            return -1;
        }
        *sslen = (socklen_t)len;
        return 0;
    }
    snprintf(err, errlen, "'%s': expected unix:/path or inet:ADDRESS:PORT", spec);
    return -1;
}

int endpoint_check_list(const char *listen, char *err, size_t errlen)
{
    char **v = plist_split(listen);
    int rc = 0;
    if (!v[0]) {
        snprintf(err, errlen, "no endpoint to listen on");
        rc = -1;
    }
    for (size_t i = 0; v[i] && rc == 0; i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        rc = endpoint_parse(v[i], &ss, &len, err, errlen);
    }
    plist_free(v);
    return rc;
}

char *endpoint_format(const struct sockaddr *sa, socklen_t salen, char *out, size_t outlen)
{
    char a[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)(const void *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        int named = salen > (socklen_t)off && sun->sun_path[0];
        snprintf(out, outlen, "unix:%.*s", named ? (int)(salen - off) : 0,
                 named ? sun->sun_path : "");
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
        snprintf(out, outlen, "inet:%s:%u", a, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
        snprintf(out, outlen, "inet:[%s]:%u", a, ntohs(sin6->sin6_port));
    } else {
        snprintf(out, outlen, "family %d", sa->sa_family);
    }
    out[strcspn(out, "\n")] = '\0'; /* a path is ours to show, not to break a log line */
    return out;
}

int endpoint_equal(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
                   socklen_t blen)
{
    if (a->sa_family != b->sa_family)
        return 0;
    if (a->sa_family == AF_UNIX) {
        char x[sizeof(struct sockaddr_un) + 8], y[sizeof(struct sockaddr_un) + 8];
        endpoint_format(a, alen, x, sizeof(x));
        endpoint_format(b, blen, y, sizeof(y));
        return strcmp(x, y) == 0 && strcmp(x, "unix:") != 0;
    }
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *p = (const struct sockaddr_in *)(const void *)a;
        const struct sockaddr_in *q = (const struct sockaddr_in *)(const void *)b;
        return p->sin_port == q->sin_port && p->sin_addr.s_addr == q->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *p = (const struct sockaddr_in6 *)(const void *)a;
        const struct sockaddr_in6 *q = (const struct sockaddr_in6 *)(const void *)b;
        return p->sin6_port == q->sin6_port &&
               memcmp(&p->sin6_addr, &q->sin6_addr, sizeof(p->sin6_addr)) == 0;
    }
    return 0;
}
