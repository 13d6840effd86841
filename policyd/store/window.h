/*
 * window.h - the sliding-window arithmetic of rate limits, pure (no clock, no I/O): "at most
 * `limit` units in any period of `period` ms", for one window and for a set of windows per key.
 *
 * Scheme: a grouped sliding log. Each window keeps its admitted units as entries
 * {first, last, units}, sorted and disjoint: an arrival at `now` joins the newest entry when
 * now < newest.first + grain (grain = ceil(period / WINDOW_GROUPS)), moving that entry's `last`
 * to now; otherwise it opens a new entry. An entry counts until last + period; units are
 * admitted when the units still counted plus the new ones stay <= limit.
 *
 * Exactness: each unit is counted from its arrival until at least arrival + period (its
 * entry's `last` is never earlier than the arrival), so no interval of length `period` ever
 * holds more than `limit` admitted units: the guarantee holds at every window position, not
 * only at slot edges. Where each entry holds one arrival time (arrivals at least `grain` after
 * the previous entry opened, or in the same ms) the decisions are those of a per-arrival
 * sliding log, to the ms; otherwise a unit may be counted up to `grain` (period / 32: ~19 s
 * of 10 min, ~45 min of a day) longer than strictly needed, never shorter.
 * Entries start at least `grain` apart, so a window never holds more than WINDOW_ENTRIES.
 * The retry time is exact for this state: with nothing else happening, the same request is
 * admitted at the returned ms and refused one ms earlier (test/unit/test_window.c checks
 * both). Over-limit requests change nothing. The Redis back end runs the same arithmetic in
 * Lua (store_lua.c); a change here must be made there too.
 * Values are bounded by WINDOW_MAX_VALUE so sums stay exact in Lua's doubles.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_STORE_WINDOW_H
#define POLICYD_STORE_WINDOW_H

#include <stdint.h>

#define WINDOW_GROUPS 32
#define WINDOW_ENTRIES (WINDOW_GROUPS + 2)  /* entries alive in one window, at most */
#define WINDOW_MAX_LIMITS 8                 /* limits in one request */
#define WINDOW_MAX_SET 16                   /* windows kept per key (requested + older ones) */
#define WINDOW_NEVER INT64_C(-1)            /* retry time of a request larger than its limit */
#define WINDOW_MAX_VALUE (INT64_C(1) << 47) /* limits, units, periods: sums exact in doubles */

struct window_entry {
    int64_t first, last, units;
};

struct window {
    int64_t period; /* ms */
    int64_t limit;  /* as last requested (for show and top) */
    int n;
    struct window_entry e[WINDOW_ENTRIES];
};

struct window_limit {
    int64_t limit;  /* 0 .. WINDOW_MAX_VALUE */
    int64_t period; /* ms, 1 .. WINDOW_MAX_VALUE */
};

/* window_grain - the grouping step of a window of period ms: ceil(period / WINDOW_GROUPS). */
int64_t window_grain(int64_t period);

/* window_prune - drop the entries no longer counted at now (last + period <= now). */
void window_prune(struct window *w, int64_t now);

/* window_used - units counted (call window_prune first). */
int64_t window_used(const struct window *w);

/* window_fit - the earliest time >= now at which units more fit under the limit (now if they
 * fit at once), WINDOW_NEVER if units > limit. Call window_prune(now) first. */
int64_t window_fit(const struct window *w, int64_t now, int64_t units);

/* window_first - the first arrival still counted, 0 if none (after window_prune). */
int64_t window_first(const struct window *w);

/* window_add - record units arriving at now (no check: see window_set_reserve). */
void window_add(struct window *w, int64_t now, int64_t units);

/* window_release - take back up to units of the reservation recorded at `at` (from the
 * entry holding it; nothing if that entry is gone). */
void window_release(struct window *w, int64_t at, int64_t units);

/* window_expires - when the newest entry stops counting, 0 if empty. */
int64_t window_expires(const struct window *w);

/* The state of one key: its windows (one per period) and a manual block. */
struct window_set {
    int64_t blocked_until; /* ms; 0 = not blocked */
    int n;
    struct window w[WINDOW_MAX_SET];
};

struct window_usage {
    int64_t limit, period;
    int64_t used;  /* units counted after the operation */
    int64_t first; /* first arrival still counted, 0 if none */
    int64_t fit;   /* when the request fits under this limit (now if it does), WINDOW_NEVER */
    int over;      /* this limit refused the request (reserve) / is exceeded (adjust) */
};

struct window_decision {
    int allowed;   /* reserve: admitted and recorded; adjust: every limit within bounds */
    int blocked;   /* refused because of a block (until set->blocked_until) */
    int64_t retry; /* reserve refused: earliest time the whole request fits (blocked_until
                    * when blocked), WINDOW_NEVER if never; else now */
    int n;
    struct window_usage lim[WINDOW_MAX_LIMITS];
};

/*
 * window_check - 0 if the request is well formed (1..WINDOW_MAX_LIMITS limits, distinct
 * periods, values in bounds), else -1 with the reason in err.
 */
int window_check(const struct window_limit *lims, int n, int64_t units, char *err,
                 unsigned long errlen);

/*
 * window_set_reserve - all or nothing: units are recorded at now in every window of lims
 * (created as needed) if each has room and the key is not blocked; else nothing changes.
 * Fills d. Returns 1 if the set changed (and must be written back), 0 if not.
 */
int window_set_reserve(struct window_set *s, int64_t now, const struct window_limit *lims, int n,
                       int64_t units, struct window_decision *d);

/*
 * window_set_adjust - true-up: delta < 0 releases -delta units of the reservation made at
 * `at`; delta > 0 records delta more units at now, unconditionally (the message was already
 * accepted; use window_set_reserve for a checked addition). d->allowed is 0 if a limit is
 * exceeded afterwards. Returns 1 if the set changed.
 */
int window_set_adjust(struct window_set *s, int64_t now, const struct window_limit *lims, int n,
                      int64_t delta, int64_t at, struct window_decision *d);

/* window_set_prune - prune every window at now and drop the empty ones; a block that ended is
 * cleared. */
void window_set_prune(struct window_set *s, int64_t now);

/* window_set_expires - when the whole state can be forgotten: the later of the block's end
 * and every window's expiry; 0 if nothing is left. */
int64_t window_set_expires(const struct window_set *s);

#endif
