/*
 * topk.c - bounded most-frequent counter (see topk.h). Slots are found by a linear pass over
 * at most cap 64-bit hashes, after trying the slot of the previous value: a flood from one
 * client costs one comparison a line, and cap stays small (tens) so the pass is cheap anyway.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/report/topk.h"

#include "policyd/lib/hash.h"
#include "policyd/lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

void topk_init(struct topk *t, size_t cap)
{
    memset(t, 0, sizeof(*t));
    t->cap = cap ? cap : 1;
}

/* topk_same - slot i holds the value (n bytes at value, hash h). */
static int topk_same(const struct topk *t, size_t i, uint64_t h, const char *value, size_t n)
{
    const struct topk_item *it = &t->items[i];
    size_t k = n < TOPK_VALUE_MAX - 1 ? n : TOPK_VALUE_MAX - 1;
    return it->hash == h && strlen(it->value) == k && memcmp(it->value, value, k) == 0;
}

void topk_add(struct topk *t, const char *value, size_t n)
{
    uint64_t h = hash_mem(value, n);
    size_t slot = t->n;

    t->total++;
    if (t->n && topk_same(t, t->last, h, value, n)) {
        slot = t->last;
    } else {
        for (size_t i = 0; i < t->n; i++)
            if (topk_same(t, i, h, value, n)) {
                slot = i;
                break;
            }
    }
    if (slot == t->n) {
        unsigned long inherited = 0;
        if (!t->items)
            t->items = xcalloc(t->cap, sizeof(*t->items));
        if (t->n < t->cap) {
            t->n++;
        } else {
            slot = 0; /* replace the least counted */
            for (size_t i = 1; i < t->n; i++)
                if (t->items[i].count < t->items[slot].count)
                    slot = i;
            inherited = t->items[slot].count;
            t->replaced++;
        }
        struct topk_item *it = &t->items[slot];
        size_t k = n < TOPK_VALUE_MAX - 1 ? n : TOPK_VALUE_MAX - 1;
        memcpy(it->value, value, k);
        it->value[k] = 0;
        it->hash = h;
        it->count = inherited;
        it->error = inherited;
    }
    t->items[slot].count++;
    t->last = slot;
}

static int topk_cmp(const void *a, const void *b)
{
    const struct topk_item *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->value, y->value);
}

const struct topk_item *topk_sorted(struct topk *t, size_t *count)
{
    if (t->n)
        qsort(t->items, t->n, sizeof(*t->items), topk_cmp);
    t->last = 0;
    *count = t->n;
    return t->items;
}

void topk_free(struct topk *t)
{
    free(t->items);
    t->items = NULL;
    t->n = 0;
}
