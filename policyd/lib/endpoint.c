/*
 * endpoint.c - listen endpoints as policyd.conf writes them: unix:/absolute/path and
 * inet:ADDRESS:PORT (inet:[::1]:10031). Addresses are literal: a host name is not resolved
 * here, so a configuration check never waits on DNS.
 */
#include "policyd/lib/endpoint.h"

#include "policyd/lib/plist.h"

#include <event2/util.h>

#include <arpa/inet.h>
#include <netinet/in.h>
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
