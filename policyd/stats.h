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

/* Buckets of the request latency histogram (their bounds: stats_latency_bounds), +Inf after. */
#define STATS_LATENCY_NBUCKETS 16

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
    unsigned long long reloads;
    unsigned long long reload_failures;
    long long last_reload_ok; /* when the configuration in use was loaded (Unix seconds) */
    int last_reload_failed;   /* the last reload was refused */
    long long started;        /* when the daemon started (Unix seconds) */
    /* request latency, from the request read to its answer known: requests per bucket (not
     * cumulative; the last one is +Inf) and the sum */
    unsigned long long latency_buckets[STATS_LATENCY_NBUCKETS + 1];
    unsigned long long latency_sum_us;
    /* per check, by name: verdicts given (reject/defer/prepend) and "would" verdicts in warn */
    struct stats_check checks[32];
    unsigned ncheck;
};

extern struct stats stats;

/* stats_check - the per-check counter block for name (static storage). */
struct stats_check *stats_check(const char *name);

/* stats_observe_latency - count one answered request that took usec microseconds. */
void stats_observe_latency(long long usec);

/* stats_latency_bounds - the buckets' upper bounds in microseconds (STATS_LATENCY_NBUCKETS). */
const long long *stats_latency_bounds(void);

/* stats_log - log every counter in one line. */
void stats_log(void);

#endif
