/*
 * stats.c - the process-wide counters, the request latency histogram and their log line.
 */
#include "policyd/stats.h"

#include "policyd/lib/log.h"

#include <stdio.h>
#include <string.h>

struct stats stats;

/* 100 us to 10 s: a cached decision takes tens of microseconds, a DNS wait milliseconds, and
 * request_deadline (10 s by default) ends the rest. */
static const long long stats_bounds[STATS_LATENCY_NBUCKETS] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

const long long *stats_latency_bounds(void)
{
    return stats_bounds;
}

void stats_observe_latency(long long usec)
{
    size_t i = 0;
    while (i < STATS_LATENCY_NBUCKETS && usec > stats_bounds[i])
        i++;
    stats.latency_buckets[i]++;
    stats.latency_sum_us += usec > 0 ? (unsigned long long)usec : 0;
}

struct stats_check *stats_check(const char *name)
{
    for (unsigned i = 0; i < stats.ncheck; i++)
        if (strcmp(stats.checks[i].name, name) == 0)
            return &stats.checks[i];
    if (stats.ncheck == sizeof(stats.checks) / sizeof(stats.checks[0]))
        return &stats.checks[stats.ncheck - 1];
    stats.checks[stats.ncheck].name = name; /* names are static strings of check_defs */
    return &stats.checks[stats.ncheck++];
}

void stats_log(void)
{
    char line[2048];
    int n = snprintf(line, sizeof(line),
                     "statistics: requests=%llu dunno=%llu reject=%llu defer=%llu prepend=%llu "
                     "other=%llu deadline_hits=%llu protocol_errors=%llu limit_errors=%llu "
                     "connections=%llu connections_now=%llu connections_peak=%llu reloads=%llu "
                     "reload_failures=%llu",
                     stats.requests, stats.replies_dunno, stats.replies_reject, stats.replies_defer,
                     stats.replies_prepend, stats.replies_other, stats.deadline_hits,
                     stats.protocol_errors, stats.limit_errors, stats.connections_total,
                     stats.connections_now, stats.connections_peak, stats.reloads,
                     stats.reload_failures);
    for (unsigned i = 0; i < stats.ncheck && n > 0 && (size_t)n < sizeof(line); i++) {
        const struct stats_check *c = &stats.checks[i];
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      " %s.reject=%llu %s.defer=%llu %s.prepend=%llu %s.warn_only=%llu", c->name,
                      c->reject, c->name, c->defer, c->name, c->prepend, c->name, c->warn_only);
    }
    log_info("%s", line);
}
