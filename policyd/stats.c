/*
 * stats.c - the process-wide counters, the request latency histogram and their log line.
 *
 * The counters by cause code sit in a small open-addressing table keyed by the code's text
 * (pointer compared first: the codes are literals), so counting a diagnosis costs one hash of a
 * short string; the codes are also kept in order of first use for the iterator.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/stats.h"

#include "policyd/lib/hash.h"
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

#define STATS_SLOTS 512 /* a power of two, twice STATS_MAX_CAUSES */

struct stats_cause_slot {
    const char *code;
    unsigned long long count;
};

static struct stats_cause_slot stats_cause_slots[STATS_SLOTS];
static unsigned stats_cause_order[STATS_MAX_CAUSES + 1]; /* slot indexes, in order of first use */
static unsigned stats_ncauses;

void stats_cause(const char *code)
{
    uint64_t h = hash_str(code);
    for (unsigned k = 0; k < STATS_SLOTS; k++) {
        unsigned i = (unsigned)(h + k) & (STATS_SLOTS - 1);
        struct stats_cause_slot *s = &stats_cause_slots[i];
        if (s->code == code || (s->code && strcmp(s->code, code) == 0)) {
            s->count++;
            return;
        }
        if (!s->code) {
            if (stats_ncauses >= STATS_MAX_CAUSES && strcmp(code, "other") != 0) {
                stats_cause("other");
                return;
            }
            s->code = code;
            s->count = 1;
            stats_cause_order[stats_ncauses++] = i;
            return;
        }
    }
}

int stats_cause_next(unsigned *pos, const char **code, unsigned long long *count)
{
    if (*pos >= stats_ncauses)
        return 0;
    const struct stats_cause_slot *s = &stats_cause_slots[stats_cause_order[(*pos)++]];
    *code = s->code;
    *count = s->count;
    return 1;
}

void stats_log(void)
{
    char line[2048];
    int n = snprintf(line, sizeof(line),
                     "statistics: requests=%llu dunno=%llu reject=%llu defer=%llu prepend=%llu "
                     "other=%llu deadline_hits=%llu protocol_errors=%llu limit_errors=%llu "
                     "connections=%llu connections_now=%llu connections_peak=%llu "
                     "connections_evicted=%llu connections_refused=%llu idle_closes=%llu "
                     "read_timeouts=%llu write_timeouts=%llu reloads=%llu reload_failures=%llu "
                     "diagnoses_full=%llu diagnoses_short=%llu",
                     stats.requests, stats.replies_dunno, stats.replies_reject, stats.replies_defer,
                     stats.replies_prepend, stats.replies_other, stats.deadline_hits,
                     stats.protocol_errors, stats.limit_errors, stats.connections_total,
                     stats.connections_now, stats.connections_peak, stats.connections_evicted,
                     stats.connections_refused, stats.idle_closes, stats.read_timeouts,
                     stats.write_timeouts, stats.reloads, stats.reload_failures,
                     stats.diagnoses_full, stats.diagnoses_short);
    for (unsigned i = 0; i < stats.ncheck && n > 0 && (size_t)n < sizeof(line); i++) {
        const struct stats_check *c = &stats.checks[i];
        n += snprintf(line + n, sizeof(line) - (size_t)n,
                      " %s.reject=%llu %s.defer=%llu %s.prepend=%llu %s.warn_only=%llu", c->name,
                      c->reject, c->name, c->defer, c->name, c->prepend, c->name, c->warn_only);
    }
    log_info("%s", line);
    if (!stats_ncauses)
        return;
    const char *code;
    unsigned long long count;
    unsigned pos = 0;
    n = snprintf(line, sizeof(line), "statistics: causes:");
    while (stats_cause_next(&pos, &code, &count) && n > 0 && (size_t)n < sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, " %s=%llu", code, count);
    log_info("%s", line);
}
