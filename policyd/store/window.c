/*
 * window.c - the grouped sliding log of window.h: one window's entries and the all-or-nothing
 * decision over a key's windows. Pure and allocation-free; the LMDB back end runs it inside a
 * write transaction, and store_lua.c carries the same steps for Redis, line for line.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/store/window.h"

#include <stdio.h>
#include <string.h>

int64_t window_grain(int64_t period)
{
    int64_t g = (period + WINDOW_GROUPS - 1) / WINDOW_GROUPS;
    return g < 1 ? 1 : g;
}

void window_prune(struct window *w, int64_t now)
{
    int k = 0;
    while (k < w->n && w->e[k].last + w->period <= now)
        k++;
    if (k > 0) {
        memmove(w->e, w->e + k, (size_t)(w->n - k) * sizeof(w->e[0]));
        w->n -= k;
    }
}

int64_t window_used(const struct window *w)
{
    int64_t used = 0;
    for (int k = 0; k < w->n; k++)
        used += w->e[k].units;
    return used;
}

int64_t window_fit(const struct window *w, int64_t now, int64_t units)
{
    if (units > w->limit)
        return WINDOW_NEVER;
    int64_t excess = window_used(w) + units - w->limit;
    if (excess <= 0)
        return now;
    /* Entries stop counting oldest first: the request fits once `excess` units are gone. */
    int64_t gone = 0;
    for (int k = 0; k < w->n; k++) {
        gone += w->e[k].units;
        if (gone >= excess)
            return w->e[k].last + w->period;
    }
    return WINDOW_NEVER; /* not reached: used >= excess when units <= limit */
}

int64_t window_first(const struct window *w)
{
    return w->n > 0 ? w->e[0].first : 0;
}

void window_add(struct window *w, int64_t now, int64_t units)
{
    if (units <= 0)
        return;
    struct window_entry *z = w->n > 0 ? &w->e[w->n - 1] : NULL;
    /* Join the newest entry while within its grain (also when the clock went back). */
    if (z && now < z->first + window_grain(w->period)) {
        if (now > z->last)
            z->last = now;
        z->units += units;
        if (z->units > WINDOW_MAX_VALUE)
            z->units = WINDOW_MAX_VALUE;
        return;
    }
    if (w->n == WINDOW_ENTRIES) {
        /* Not reached after window_prune (entries open >= grain apart). Fold the two oldest
         * into the later one: later counting, never earlier, keeps the guarantee. */
        w->e[1].units += w->e[0].units;
        w->e[1].first = w->e[0].first;
        memmove(w->e, w->e + 1, (size_t)(w->n - 1) * sizeof(w->e[0]));
        w->n--;
    }
    w->e[w->n++] =
        (struct window_entry){now, now, units > WINDOW_MAX_VALUE ? WINDOW_MAX_VALUE : units};
}

void window_release(struct window *w, int64_t at, int64_t units)
{
    if (w->n == 0 || units <= 0)
        return;
    int k = w->n - 1;
    while (k > 0 && w->e[k].first > at)
        k--;
    if (w->e[k].first > at)
        return; /* its entry left the window: the newer ones hold others' units */
    struct window_entry *z = &w->e[k];
    z->units -= units < z->units ? units : z->units;
    if (z->units == 0) {
        memmove(z, z + 1, (size_t)(w->n - k - 1) * sizeof(*z));
        w->n--;
    }
}

int64_t window_expires(const struct window *w)
{
    return w->n > 0 ? w->e[w->n - 1].last + w->period : 0;
}

int window_check(const struct window_limit *lims, int n, int64_t units, char *err,
                 unsigned long errlen)
{
    if (n < 1 || n > WINDOW_MAX_LIMITS) {
        snprintf(err, errlen, "%d limits (1 to %d allowed)", n, WINDOW_MAX_LIMITS);
        return -1;
    }
    if (units < -WINDOW_MAX_VALUE || units > WINDOW_MAX_VALUE) {
        snprintf(err, errlen, "%lld units out of range", (long long)units);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (lims[i].limit < 0 || lims[i].limit > WINDOW_MAX_VALUE || lims[i].period < 1 ||
            lims[i].period > WINDOW_MAX_VALUE) {
            snprintf(err, errlen, "limit %lld per %lld ms out of range", (long long)lims[i].limit,
                     (long long)lims[i].period);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (lims[j].period == lims[i].period) {
                snprintf(err, errlen, "two limits for one period (%lld ms)",
                         (long long)lims[i].period);
                return -1;
            }
    }
    return 0;
}

/* set_find - the window of this period, created (empty) if missing: room is made by dropping
 * a window no limit of the request names, the one that expires first. */
static struct window *set_find(struct window_set *s, const struct window_limit *lims, int n,
                               const struct window_limit *l)
{
    for (int i = 0; i < s->n; i++)
        if (s->w[i].period == l->period) {
            s->w[i].limit = l->limit;
            return &s->w[i];
        }
    if (s->n == WINDOW_MAX_SET) {
        int drop = -1;
        for (int i = 0; i < s->n; i++) {
            int named = 0;
            for (int j = 0; j < n; j++)
                named |= lims[j].period == s->w[i].period;
            if (!named && (drop < 0 || window_expires(&s->w[i]) < window_expires(&s->w[drop])))
                drop = i;
        }
        /* drop >= 0: at most WINDOW_MAX_LIMITS < WINDOW_MAX_SET windows are named */
        memmove(&s->w[drop], &s->w[drop + 1], (size_t)(s->n - drop - 1) * sizeof(s->w[0]));
        s->n--;
    }
    struct window *w = &s->w[s->n++];
    w->period = l->period;
    w->limit = l->limit;
    w->n = 0;
    return w;
}

void window_set_prune(struct window_set *s, int64_t now)
{
    if (s->blocked_until != 0 && s->blocked_until <= now)
        s->blocked_until = 0;
    int k = 0;
    for (int i = 0; i < s->n; i++) {
        window_prune(&s->w[i], now);
        if (s->w[i].n > 0) {
            if (k != i)
                s->w[k] = s->w[i];
            k++;
        }
    }
    s->n = k;
}

static void usage_fill(struct window_usage *u, const struct window *w, int64_t now, int64_t units)
{
    u->limit = w->limit;
    u->period = w->period;
    u->used = window_used(w);
    u->first = window_first(w);
    u->fit = window_fit(w, now, units);
    u->over = u->fit != now;
}

/* later - the later of two retry times, WINDOW_NEVER being the latest. */
static int64_t later(int64_t a, int64_t b)
{
    if (a == WINDOW_NEVER || b == WINDOW_NEVER)
        return WINDOW_NEVER;
    return a > b ? a : b;
}

/* set_windows - the window of every limit, created as needed (after all creations, so no
 * pointer is taken before a window is moved). */
static void set_windows(struct window_set *s, const struct window_limit *lims, int n,
                        struct window **ws)
{
    for (int i = 0; i < n; i++)
        set_find(s, lims, n, &lims[i]);
    for (int i = 0; i < n; i++)
        ws[i] = set_find(s, lims, n, &lims[i]);
}

int window_set_reserve(struct window_set *s, int64_t now, const struct window_limit *lims, int n,
                       int64_t units, struct window_decision *d)
{
    struct window *ws[WINDOW_MAX_LIMITS];
    int changed = 0;

    window_set_prune(s, now);
    set_windows(s, lims, n, ws);
    memset(d, 0, sizeof(*d));
    d->n = n;
    d->allowed = 1;
    d->retry = now;
    for (int i = 0; i < n; i++) {
        usage_fill(&d->lim[i], ws[i], now, units);
        if (d->lim[i].over) {
            d->allowed = 0;
            d->retry = later(d->retry, d->lim[i].fit);
        }
    }
    if (s->blocked_until > now) {
        d->allowed = 0;
        d->blocked = 1;
        d->retry = later(d->retry, s->blocked_until);
    }
    if (d->allowed && units > 0) {
        for (int i = 0; i < n; i++) {
            window_add(ws[i], now, units);
            d->lim[i].used = window_used(ws[i]);
            d->lim[i].first = window_first(ws[i]);
        }
        changed = 1;
    }
    /* Windows created for the check but left empty are not kept. */
    window_set_prune(s, now);
    return changed;
}

int window_set_adjust(struct window_set *s, int64_t now, const struct window_limit *lims, int n,
                      int64_t delta, int64_t at, struct window_decision *d)
{
    struct window *ws[WINDOW_MAX_LIMITS];

    window_set_prune(s, now);
    set_windows(s, lims, n, ws);
    memset(d, 0, sizeof(*d));
    d->n = n;
    d->allowed = 1;
    d->retry = now;
    for (int i = 0; i < n; i++) {
        if (delta < 0)
            window_release(ws[i], at, -delta);
        else
            window_add(ws[i], now, delta);
        usage_fill(&d->lim[i], ws[i], now, 0);
        if (d->lim[i].over) {
            d->allowed = 0;
            d->retry = later(d->retry, d->lim[i].fit);
        }
    }
    d->blocked = s->blocked_until > now;
    window_set_prune(s, now);
    return delta != 0;
}

int64_t window_set_expires(const struct window_set *s)
{
    int64_t t = s->blocked_until;
    for (int i = 0; i < s->n; i++)
        if (window_expires(&s->w[i]) > t)
            t = window_expires(&s->w[i]);
    return t;
}
