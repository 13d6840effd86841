/*
 * server.h - the listening sockets and the set of open sessions.
 *
 * Sockets are bound (and unix sockets given their owner, group and mode) before privileges are
 * dropped; accepting starts afterwards. At max_connections a new connection is admitted by
 * closing the connection idle the longest; only while every connection is busy do new ones
 * wait in the kernel's listen queue. The server tracks its sessions so that SIGTERM can stop
 * accepting and answer every request already sent, including those of connections still
 * waiting in a listen queue.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_SERVER_H
#define POLICYD_SERVER_H

#include <stddef.h>

struct event_base;
struct config;
struct server;
struct dns;

/* server_new - bind every endpoint of cfg->listen. NULL with a reason in err (nothing is left
 * bound). A stale unix socket file (nobody accepting) is replaced; a live one is an error. */
struct server *server_new(struct event_base *base, struct dns *dns, const struct config *cfg,
                          char *err, size_t errlen);

/* server_start - begin accepting connections. */
void server_start(struct server *srv);

/* server_shutdown - stop: take the connections waiting in the listen queues, close the
 * listeners (removing our unix socket files where we may), let every session answer what its
 * peer has sent already, then call done (from the event loop, never from inside this call). */
void server_shutdown(struct server *srv, void (*done)(void *arg), void *arg);

/* server_socket_files - the paths of the unix sockets we created (at most max), into paths
 * (owned by srv). Returns how many. */
size_t server_socket_files(const struct server *srv, const char **paths, size_t max);

/* server_free - close listeners and remove the unix socket files we created. NULL ok. */
void server_free(struct server *srv);

/* server_stdio - serve one connection on standard input/output (-S); done is called when it
 * ends (from the event loop, never from inside this call). */
void server_stdio(struct event_base *base, struct dns *dns, void (*done)(void *arg), void *arg);

#endif
