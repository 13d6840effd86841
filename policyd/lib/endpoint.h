/*
 * endpoint.h - parse listen endpoints (unix:/path, inet:ADDR:PORT) into socket addresses.
 */
/* SPDX-License-Identifier: MIT */
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

/* endpoint_format - the endpoint syntax of a socket address ("unix:/path", "inet:1.2.3.4:25",
 * "inet:[::1]:25"); "unix:" for an unnamed or abstract unix socket. Returns out. */
char *endpoint_format(const struct sockaddr *sa, socklen_t salen, char *out, size_t outlen);

/* endpoint_equal - 1 if the two socket addresses are the same endpoint (family, address and
 * port, or unix path), else 0. */
int endpoint_equal(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
                   socklen_t blen);

#endif
