/*
 * test_window.c - the sliding-window arithmetic under a controlled clock: random arrivals
 * against sets of limits, then for every window position at most `limit` admitted units in
 * any `period`; the retry time exact (the same request admitted at it, refused one ms earlier);
 * never more permissive than a per-arrival sliding log with the same history, and equal to it
 * where arrivals are sparse; all-or-nothing across limits; release, forced adds and blocks.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/store/window.h"
#include "unit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int64_t rnd_range(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

struct arrival {
    int64_t t, units;
};

/* log_used - units of the admitted log counted at now in a window of period ms (exact). */
static int64_t log_used(const struct arrival *log, int n, int64_t now, int64_t period)
{
    int64_t used = 0;
    for (int i = 0; i < n; i++)
        if (log[i].t <= now && log[i].t + period > now)
            used += log[i].units;
    return used;
}

/* log_fit - the exact sliding log's earliest time >= now at which units fit. */
static int64_t log_fit(const struct arrival *log, int n, int64_t now, struct window_limit l,
                       int64_t units)
{
    if (units > l.limit)
        return WINDOW_NEVER;
    int64_t excess = log_used(log, n, now, l.period) + units - l.limit;
    if (excess <= 0)
        return now;
    for (int i = 0; i < n; i++) { /* the log is in time order */
        if (log[i].t + l.period <= now)
            continue;
        excess -= log[i].units;
        if (excess <= 0)
            return log[i].t + l.period;
    }
    return WINDOW_NEVER;
}

static int set_sane(const struct window_set *s)
{
    for (int i = 0; i < s->n; i++) {
        const struct window *w = &s->w[i];
        if (w->n < 1 || w->n > WINDOW_ENTRIES)
            return 0;
        for (int k = 0; k < w->n; k++) {
            if (w->e[k].first > w->e[k].last || w->e[k].units <= 0)
                return 0;
            if (k > 0 && w->e[k].first < w->e[k - 1].first + window_grain(w->period))
                return 0;
        }
    }
    return 1;
}

static int set_equal(const struct window_set *a, const struct window_set *b)
{
    if (a->n != b->n || a->blocked_until != b->blocked_until)
        return 0;
    for (int i = 0; i < a->n; i++) {
        if (a->w[i].period != b->w[i].period || a->w[i].n != b->w[i].n)
            return 0;
        for (int k = 0; k < a->w[i].n; k++)
            if (a->w[i].e[k].first != b->w[i].e[k].first ||
                a->w[i].e[k].last != b->w[i].e[k].last || a->w[i].e[k].units != b->w[i].e[k].units)
                return 0;
    }
    return 1;
}

struct scenario {
    const char *name;
    struct window_limit lims[3];
    int n;
    int64_t max_units, gap_lo, gap_hi;
    int same_ms_pct; /* percentage of arrivals in the same ms as the previous one */
};

/* run - random arrivals; every property checked on the way and at the end. */
static void run(const struct scenario *sc, int arrivals, int sparse)
{
    struct window_set s = {0};
    struct arrival *log = calloc((size_t)arrivals, sizeof(*log));
    int nlog = 0, admitted = 0, refused = 0, bad_retry = 0, bad_cons = 0, bad_exact = 0;
    int bad_sane = 0, bad_window = 0;
    int64_t now = 1700000000000LL, maxp = 0;
    int start = 0; /* log entries before it no longer count in any window */

    for (int i = 0; i < sc->n; i++)
        maxp = sc->lims[i].period > maxp ? sc->lims[i].period : maxp;
    for (int a = 0; a < arrivals; a++) {
        if ((int)(rnd() % 100) >= sc->same_ms_pct)
            now += rnd_range(sc->gap_lo, sc->gap_hi);
        int64_t units = rnd_range(1, sc->max_units);
        while (start < nlog && log[start].t + maxp <= now)
            start++;
        struct window_set before = s;
        struct window_decision d;
        window_set_reserve(&s, now, sc->lims, sc->n, units, &d);
        bad_sane += !set_sane(&s);

        /* Never more permissive than the exact log with the same history; equal if sparse. */
        int64_t ref_retry = now;
        for (int i = 0; i < sc->n; i++) {
            int64_t f = log_fit(log + start, nlog - start, now, sc->lims[i], units);
            if (f != now)
                ref_retry = (ref_retry == WINDOW_NEVER || f == WINDOW_NEVER) ? WINDOW_NEVER
                            : f > ref_retry                                  ? f
                                                                             : ref_retry;
            if (d.lim[i].used != log_used(log + start, nlog - start, now, sc->lims[i].period) +
                                     (d.allowed ? units : 0) &&
                sparse)
                bad_exact++;
        }
        if (ref_retry != now && d.allowed)
            bad_cons++;
        if (sparse && (d.allowed != (ref_retry == now) || (!d.allowed && d.retry != ref_retry)))
            bad_exact++;

        if (d.allowed) {
            log[nlog++] = (struct arrival){now, units};
            admitted++;
            continue;
        }
        refused++;
        struct window_set pruned = before;
        window_set_prune(&pruned, now);
        if (!set_equal(&pruned, &s))
            bad_retry++; /* a refused request must not change what is counted */
        if (d.retry == WINDOW_NEVER)
            continue;
        /* Exact retry: admitted at d.retry, refused one ms earlier (nothing else happening). */
        struct window_set at = before, early = before;
        struct window_decision d1, d2;
        window_set_reserve(&at, d.retry, sc->lims, sc->n, units, &d1);
        window_set_reserve(&early, d.retry - 1, sc->lims, sc->n, units, &d2);
        if (!d1.allowed || d2.allowed || d.retry <= now)
            bad_retry++;
    }
    /* At most `limit` in any window: the worst window ends at an admitted arrival, so slide
     * (t - period, t] over every admitted t. */
    for (int i = 0; i < sc->n; i++) {
        int64_t sum = 0;
        int lo = 0;
        for (int k = 0; k < nlog; k++) {
            sum += log[k].units;
            while (log[lo].t + sc->lims[i].period <= log[k].t)
                sum -= log[lo++].units;
            if (k + 1 < nlog && log[k + 1].t == log[k].t)
                continue; /* the window ends after every arrival of this ms */
            bad_window += sum > sc->lims[i].limit;
        }
    }
    printf("# %s: %d arrivals, %d admitted, %d refused\n", sc->name, arrivals, admitted, refused);
    CHECK(admitted > 0 && refused > 0); /* the scenario exercises both sides */
    CHECK(bad_window == 0);
    CHECK(bad_retry == 0);
    CHECK(bad_cons == 0);
    CHECK(bad_exact == 0);
    CHECK(bad_sane == 0);
    free(log);
}

static void test_properties(void)
{
    static const struct scenario dense[] = {
        {"5/1m, 1 unit, bursts", {{5, 60000}}, 1, 1, 0, 30000, 30},
        {"3/1s + 10/10s", {{3, 1000}, {10, 10000}}, 2, 1, 0, 900, 20},
        {"100/10m + 500/1h + 2000/1d, units 1-5",
         {{100, 600000}, {500, 3600000}, {2000, 86400000}},
         3,
         5,
         0,
         20000,
         10},
        {"7/100ms, units 1-3, ms gaps", {{7, 100}}, 1, 3, 0, 40, 0},
        {"1/1s", {{1, 1000}}, 1, 1, 0, 1500, 0},
    };
    for (size_t i = 0; i < sizeof(dense) / sizeof(dense[0]); i++)
        run(&dense[i], 20000, 0);

    /* Sparse: every arrival opens its own entry, or shares the previous one's ms: decisions
     * and retry times equal those of the exact per-arrival log. */
    static const struct scenario sparse[] = {
        {"sparse 5/1m", {{5, 60000}}, 1, 1, 1875, 20000, 30},
        {"sparse 10/10s + 20/1m", {{10, 10000}, {20, 60000}}, 2, 2, 1875, 3000, 25},
    };
    for (size_t i = 0; i < sizeof(sparse) / sizeof(sparse[0]); i++)
        run(&sparse[i], 20000, 1);
}

static void test_basics(void)
{
    struct window_set s = {0};
    struct window_decision d;
    const struct window_limit five[] = {{5, 60000}};
    int64_t t0 = 1000000;

    for (int i = 0; i < 5; i++) { /* 2 s apart: one entry each (the grain is 1875 ms) */
        window_set_reserve(&s, t0 + i * 2000, five, 1, 1, &d);
        CHECK(d.allowed);
    }
    CHECK(d.lim[0].used == 5 && d.lim[0].first == t0);
    window_set_reserve(&s, t0 + 10000, five, 1, 1, &d);
    CHECK(!d.allowed && d.lim[0].over && d.retry == t0 + 60000);
    CHECK(d.lim[0].used == 5); /* the refused attempt consumed nothing */
    window_set_reserve(&s, t0 + 59999, five, 1, 1, &d);
    CHECK(!d.allowed);
    window_set_reserve(&s, t0 + 60000, five, 1, 1, &d);
    CHECK(d.allowed && d.lim[0].used == 5);
    /* More than the limit at once: never. */
    window_set_reserve(&s, t0 + 60000, five, 1, 6, &d);
    CHECK(!d.allowed && d.retry == WINDOW_NEVER);
    /* Zero units: a look without recording. */
    window_set_reserve(&s, t0 + 60000, five, 1, 0, &d);
    CHECK(d.allowed && d.lim[0].used == 5);

    /* Release: the reservation made at t0 + 60000 is taken back. */
    window_set_adjust(&s, t0 + 61000, five, 1, -1, t0 + 60000, &d);
    CHECK(d.allowed && d.lim[0].used == 4);
    /* A release whose reservation already left the window takes nothing from a newer entry. */
    struct window_set gone = {0};
    const struct window_limit one[] = {{5, 1000}};
    window_set_reserve(&gone, 1000, one, 1, 1, &d);
    window_set_reserve(&gone, 2500, one, 1, 2, &d);
    window_set_adjust(&gone, 2600, one, 1, -1, 1000, &d);
    CHECK(d.allowed && d.lim[0].used == 2);
    /* Forced add at end of message, past the limit: recorded, reported as over. */
    window_set_adjust(&s, t0 + 61000, five, 1, 3, 0, &d);
    CHECK(!d.allowed && d.lim[0].used == 7 && d.lim[0].over);
    CHECK(d.retry == t0 + 4000 + 60000); /* 2 units must go: those of t0+2s and t0+4s */

    /* All or nothing across limits: the short limit refuses, the long one records nothing. */
    struct window_set m = {0};
    const struct window_limit two[] = {{3, 1000}, {10, 10000}};
    for (int i = 0; i < 3; i++)
        window_set_reserve(&m, 5000, two, 2, 1, &d);
    window_set_reserve(&m, 5500, two, 2, 1, &d);
    CHECK(!d.allowed && d.lim[0].over && !d.lim[1].over && d.lim[1].used == 3);
    CHECK(d.retry == 6000);

    /* Block: refused until its end, whatever the usage. */
    struct window_set b = {0};
    b.blocked_until = 9000;
    window_set_reserve(&b, 5000, five, 1, 1, &d);
    CHECK(!d.allowed && d.blocked && d.retry == 9000 && d.lim[0].used == 0);
    window_set_reserve(&b, 9000, five, 1, 1, &d);
    CHECK(d.allowed && !d.blocked && b.blocked_until == 0);

    /* Expiry: everything forgotten once the last entry stops counting. */
    CHECK(window_set_expires(&b) == 9000 + 60000);
    window_set_prune(&b, 9000 + 60000);
    CHECK(b.n == 0 && window_set_expires(&b) == 0);

    /* Grouping bound: a burst of one arrival per ms stays within WINDOW_ENTRIES entries. */
    struct window_set g = {0};
    const struct window_limit big[] = {{1000000, 3200}};
    for (int64_t t = 0; t < 100000; t++)
        window_set_reserve(&g, t, big, 1, 1, &d);
    CHECK(g.n == 1 && g.w[0].n <= WINDOW_ENTRIES && set_sane(&g));

    /* Request checks. */
    char err[128];
    const struct window_limit dup[] = {{5, 1000}, {6, 1000}};
    CHECK(window_check(dup, 2, 1, err, sizeof(err)) == -1 && strstr(err, "one period"));
    CHECK(window_check(five, 0, 1, err, sizeof(err)) == -1);
    CHECK(window_check(five, 1, WINDOW_MAX_VALUE + 1, err, sizeof(err)) == -1);
    CHECK(window_check(two, 2, 1, err, sizeof(err)) == 0);
}

int main(void)
{
    test_basics();
    test_properties();
    return UNIT_END();
}
