/*
 * metrics.h - Prometheus metrics and a health check over HTTP (libevent's evhttp), on the
 * daemon's own event loop.
 *
 *   GET /metrics   the counters in Prometheus' text exposition format (version 0.0.4)
 *   GET /health    200 "ok ..." when a configuration is loaded and the DNS engine has a server
 *                  that is not set aside; else 503 with the reason (also while stopping)
 *
 * A scrape builds the page from the counters into one evbuffer (microseconds, no I/O but the
 * socket) and evhttp writes it without blocking, so scrapes and policy requests never wait for
 * each other. What is shown and why: README.md, "Monitoring".
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_METRICS_H
#define POLICYD_METRICS_H

#include <stddef.h>

struct dns;
struct evbuffer;
struct event_base;
struct metrics;
struct queue_watch;

/* metrics_new - serve on spec (metrics_listen: "inet:ADDR:PORT" or "unix:/path") on base. fd:
 * a listening socket systemd passed for spec (taken over), or -1 to bind one (before privileges
 * are dropped). dns and qw are read at each scrape (qw may be NULL). NULL with a reason in err,
 * nothing left bound. */
struct metrics *metrics_new(struct event_base *base, const char *spec, int fd, struct dns *dns,
                            struct queue_watch *qw, char *err, size_t errlen);

/* metrics_stopping - the daemon is stopping: /health answers 503 from now on, so a load
 * balancer stops sending before the listeners close. */
void metrics_stopping(struct metrics *m);

/* metrics_render - the /metrics page into out. */
void metrics_render(const struct metrics *m, struct evbuffer *out);

/* metrics_free - stop serving (a unix socket we created is removed). NULL ok. */
void metrics_free(struct metrics *m);

#endif
