/*
 * endpoint.h - parse listen endpoints (unix:/path, inet:ADDR:PORT) into socket addresses.
 */
#ifndef POLICYD_LIB_ENDPOINT_H
#define POLICYD_LIB_ENDPOINT_H

#include <stddef.h>
#include <sys/socket.h>

/* endpoint_parse - "unix:/path" or "inet:ADDR:PORT" into a sockaddr and its length. 0, or -1
 * with "'SPEC': reason" in err. */
int endpoint_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sslen, char *err,
                   size_t errlen);

/* endpoint_check_list - every endpoint of a `listen` value (a Postfix list) parses, and there
 * is at least one. 0, or -1 with a reason in err. */
int endpoint_check_list(const char *listen, char *err, size_t errlen);

#endif
