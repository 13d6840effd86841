/*
 * stats.h - process-wide counters, logged on SIGUSR1 and at exit.
 *
 * The counters are the only process-wide state besides the active configuration. They are
 * plain integers touched only from the event loop thread.
 */
#ifndef POLICYD_STATS_H
#define POLICYD_STATS_H

#include "policyd/config.h"

struct stats_check {
    const char *name;
    unsigned long long reject, defer, prepend, warn_only;
};

struct stats {
    unsigned long long requests;
    unsigned long long replies_dunno;
    unsigned long long replies_reject;
    unsigned long long replies_defer;
    unsigned long long replies_prepend;
    unsigned long long replies_other;
    unsigned long long deadline_hits;
    unsigned long long protocol_errors;
    unsigned long long limit_errors;
    unsigned long long connections_total;
    unsigned long long connections_now;
    unsigned long long connections_peak;
    unsigned long long connections_evicted; /* idle ones closed at max_connections */
    unsigned long long connections_refused; /* over max_connections_per_client */
    unsigned long long idle_closes;         /* idle_timeout */
    unsigned long long read_timeouts;       /* request_read_timeout */
    unsigned long long write_timeouts;      /* write_timeout */
    unsigned long long reloads;
    unsigned long long reload_failures;
    /* per check, by name: verdicts given (reject/defer/prepend) and "would" verdicts in warn */
    struct stats_check checks[32];
    unsigned ncheck;
};

extern struct stats stats;

/* stats_check - the per-check counter block for name (static storage). */
struct stats_check *stats_check(const char *name);

/* stats_log - log every counter in one line. */
void stats_log(void);

#endif
