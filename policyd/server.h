/*
 * server.h - the listening sockets and the set of open sessions.
 *
 * Sockets are bound (and unix sockets given their owner, group and mode) before privileges are
 * dropped; accepting starts afterwards. Beyond max_connections the listeners are paused, so new
 * connections wait in the kernel's listen queue instead of failing. The server tracks its
 * sessions so that SIGTERM can stop accepting and let in-flight requests finish.
 */
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

/* server_shutdown - stop accepting; finish what the sessions have read; then call done (from
 * the event loop, never from inside this call). */
void server_shutdown(struct server *srv, void (*done)(void *arg), void *arg);

/* server_free - close listeners and remove the unix socket files we created. NULL ok. */
void server_free(struct server *srv);

/* server_stdio - serve one connection on standard input/output (-S); done is called when it
 * ends (from the event loop, never from inside this call). */
void server_stdio(struct event_base *base, struct dns *dns, void (*done)(void *arg), void *arg);

#endif
