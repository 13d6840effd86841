/*
 * stats.h - process-wide counters, logged on SIGUSR1 and at exit.
 *
 * The counters are the only process-wide state besides the active configuration (and the
 * memory of recent diagnoses, policyd/repeat.c). They are plain integers touched only from the
 * event loop thread. Diagnoses are also counted by cause code (stats_cause), for the metrics.
 */
/* SPDX-License-Identifier: MIT */
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
    unsigned long long connections_evicted; /* idle ones closed at max_connections */
    unsigned long long connections_refused; /* over max_connections_per_client */
    unsigned long long idle_closes;         /* idle_timeout */
    unsigned long long read_timeouts;       /* request_read_timeout */
    unsigned long long write_timeouts;      /* write_timeout */
    unsigned long long reloads;
    unsigned long long reload_failures;
    /* diagnosis lines written in full, and short (a cause explained lately) */
    unsigned long long diagnoses_full, diagnoses_short;
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

/* stats_cause - count one diagnosis (or event) of cause code, a static string
 * ("relay.not_mynetworks"): the pointer is kept. Past STATS_MAX_CAUSES distinct codes, counted
 * under "other". */
#define STATS_MAX_CAUSES 256
void stats_cause(const char *code);

/* stats_cause_next - iterate over the cause counters: start with *pos = 0; returns 1 with the
 * next code and its count (in order of first use), 0 at the end. */
int stats_cause_next(unsigned *pos, const char **code, unsigned long long *count);

/* stats_observe_latency - count one answered request that took usec microseconds. */
void stats_observe_latency(long long usec);

/* stats_latency_bounds - the buckets' upper bounds in microseconds (STATS_LATENCY_NBUCKETS). */
const long long *stats_latency_bounds(void);

/* stats_log - log every counter: one line, and one line of the counts by cause code. */
void stats_log(void);

#endif
