/*
 * topk.h - the most frequent values of a stream in bounded memory (the Space-Saving algorithm
 * of Metwally, Agrawal and El Abbadi, 2005).
 *
 * At most cap values are tracked. A new value when all slots are taken replaces the least
 * counted one and inherits its count as its possible error, so any value seen more than
 * total / cap times is always present and counts are never under-stated. While no value has
 * been replaced, the counts are exact. Values are cut to TOPK_VALUE_MAX - 1 bytes.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_REPORT_TOPK_H
#define POLICYD_REPORT_TOPK_H

#include <stddef.h>
#include <stdint.h>

#define TOPK_VALUE_MAX 80

struct topk_item {
    uint64_t hash;
    unsigned long count; /* an upper bound of the true count */
    unsigned long error; /* count - error is a lower bound; 0 when exact */
    char value[TOPK_VALUE_MAX];
};

struct topk {
    size_t cap, n;
    unsigned long total;    /* values added */
    unsigned long replaced; /* 0: every count is exact and n is the number of distinct values */
    size_t last;            /* the slot of the last value added, tried first */
    struct topk_item *items;
};

/* topk_init - an empty counter of at most cap values (allocated on first use). */
void topk_init(struct topk *t, size_t cap);

/* topk_add - count the n bytes at value (compared whole, stored cut). */
void topk_add(struct topk *t, const char *value, size_t n);

/* topk_sorted - the tracked items, most counted first (ties by value); the array belongs to
 * t and is reordered in place. *count gets the number of items. */
const struct topk_item *topk_sorted(struct topk *t, size_t *count);

/* topk_free - release the slots (t itself is the caller's). */
void topk_free(struct topk *t);

#endif
