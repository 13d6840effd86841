/*
 * repeat.c - remember the causes explained lately, so that repeats are logged short.
 *
 * Two tables of the same kind: the causes (check, code, subject) with the time of their last
 * full line and the short lines since, and the message marks (instance, check, code) saying a
 * message has had its full line for that cause. Each is a chained hash table with its entries
 * on a list in order of use (sys/queue.h TAILQ, most recent first): the tail is both the one
 * evicted at REPEAT_MAX and where the sweep of entries unused for an interval starts, so a
 * lookup does O(1) work on average and memory never passes the cap (about 2 x 10,000 keys of a
 * few dozen bytes). Event loop only.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/repeat.h"

#include "policyd/lib/hash.h"
#include "policyd/lib/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define REPEAT_BUCKETS 16384 /* a power of two above REPEAT_MAX */

struct repeat_entry {
    TAILQ_ENTRY(repeat_entry) lru;
    struct repeat_entry *next; /* bucket chain */
    uint64_t hash;
    long long used_ms, full_ms;
    unsigned long times;
    char at[16];
    char key[];
};

TAILQ_HEAD(repeat_list, repeat_entry);

struct repeat_table {
    struct repeat_entry **buckets; /* allocated on first use */
    struct repeat_list lru;
    size_t count;
};

static struct repeat_table repeat_causes = {NULL, TAILQ_HEAD_INITIALIZER(repeat_causes.lru), 0};
static struct repeat_table repeat_messages = {NULL, TAILQ_HEAD_INITIALIZER(repeat_messages.lru), 0};

/* repeat_find - the entry of key, or NULL. */
static struct repeat_entry *repeat_find(struct repeat_table *t, const char *key, uint64_t h)
{
    if (!t->buckets)
        return NULL;
    for (struct repeat_entry *e = t->buckets[h & (REPEAT_BUCKETS - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* repeat_remove - unlink e from its bucket and the use list, and free it. */
static void repeat_remove(struct repeat_table *t, struct repeat_entry *e)
{
    struct repeat_entry **pp = &t->buckets[e->hash & (REPEAT_BUCKETS - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    TAILQ_REMOVE(&t->lru, e, lru);
    t->count--;
    free(e);
}

/* repeat_sweep - drop the entries unused since before cutoff_ms (from the least recent). */
static void repeat_sweep(struct repeat_table *t, long long cutoff_ms)
{
    struct repeat_entry *e;
    while ((e = TAILQ_LAST(&t->lru, repeat_list)) && e->used_ms <= cutoff_ms)
        repeat_remove(t, e);
}

/* repeat_add - a new entry for key, most recently used; the least recent goes at the cap. */
static struct repeat_entry *repeat_add(struct repeat_table *t, const char *key, uint64_t h,
                                       long long now_ms)
{
    if (!t->buckets)
        t->buckets = xcalloc(REPEAT_BUCKETS, sizeof(*t->buckets));
    if (t->count >= REPEAT_MAX)
        repeat_remove(t, TAILQ_LAST(&t->lru, repeat_list));
    size_t len = strlen(key);
    struct repeat_entry *e = xmalloc(sizeof(*e) + len + 1);
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, len + 1);
    e->hash = h;
    e->used_ms = now_ms;
    struct repeat_entry **b = &t->buckets[h & (REPEAT_BUCKETS - 1)];
    e->next = *b;
    *b = e;
    TAILQ_INSERT_HEAD(&t->lru, e, lru);
    t->count++;
    return e;
}

/* repeat_touch - e was used now: to the front of the use list. */
static void repeat_touch(struct repeat_table *t, struct repeat_entry *e, long long now_ms)
{
    e->used_ms = now_ms;
    if (TAILQ_FIRST(&t->lru) != e) {
        TAILQ_REMOVE(&t->lru, e, lru);
        TAILQ_INSERT_HEAD(&t->lru, e, lru);
    }
}

/* repeat_key - "a\x1fb\x1fc" into key (cut to its size): cheaper than snprintf on this path. */
static void repeat_key(char *key, size_t size, const char *a, const char *b, const char *c)
{
    const char *parts[3] = {a, b, c};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(parts[i]);
        if (i && n + 1 < size)
            key[n++] = '\x1f';
        if (len > size - 1 - n)
            len = size - 1 - n;
        memcpy(key + n, parts[i], len);
        n += len;
    }
    key[n] = 0;
}

/* repeat_first_in_message - 1 the first time (instance, check, code) is asked (and marks it). */
static int repeat_first_in_message(const char *check, const char *code, const char *instance,
                                   long long now_ms)
{
    char key[512];
    if (!*instance)
        return 0; /* no message known: only the interval counts */
    repeat_key(key, sizeof(key), instance, check, code);
    uint64_t h = hash_str(key);
    struct repeat_entry *m = repeat_find(&repeat_messages, key, h);
    if (m) {
        repeat_touch(&repeat_messages, m, now_ms);
        return 0;
    }
    repeat_add(&repeat_messages, key, h, now_ms);
    return 1;
}

/* repeat_clock - "HH:MM:SS" of now, converted once a second. */
static const char *repeat_clock(time_t now)
{
    static time_t last = (time_t)-1;
    static char text[16];
    if (now != last) {
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(text, sizeof(text), "%H:%M:%S", &tm);
        last = now;
    }
    return text;
}

int repeat_peek(const char *check, const char *code, const char *subject, const char *instance,
                long interval_ms, long long now_ms)
{
    char key[1024];
    if (interval_ms <= 0)
        return 0;
    if (*instance) {
        repeat_key(key, sizeof(key), instance, check, code);
        uint64_t h = hash_str(key);
        struct repeat_entry *m = repeat_find(&repeat_messages, key, h);
        if (!m || m->used_ms <= now_ms - interval_ms)
            return 0; /* the message's first line of this cause: full */
        repeat_touch(&repeat_messages, m, now_ms);
    }
    repeat_key(key, sizeof(key), check, code, subject);
    uint64_t h = hash_str(key);
    struct repeat_entry *e = repeat_find(&repeat_causes, key, h);
    if (!e || e->at[0] == 0 || now_ms - e->full_ms >= interval_ms)
        return 0;
    repeat_touch(&repeat_causes, e, now_ms); /* kept until the line is written */
    return 1;
}

int repeat_decide(const char *check, const char *code, const char *subject, const char *instance,
                  int composed, long interval_ms, long long now_ms, time_t now,
                  struct repeat_ref *ref)
{
    if (interval_ms <= 0)
        return 1;
    repeat_sweep(&repeat_causes, now_ms - interval_ms);
    repeat_sweep(&repeat_messages, now_ms - interval_ms);
    int first_in_message = repeat_first_in_message(check, code, instance, now_ms);

    char key[1024];
    repeat_key(key, sizeof(key), check, code, subject);
    uint64_t h = hash_str(key);
    struct repeat_entry *e = repeat_find(&repeat_causes, key, h);
    if (!composed) {
        /* No full text to write (repeat_peek said short): refer to the last full line, even if
         * the interval ended meanwhile; "" when it is forgotten altogether. */
        memset(ref, 0, sizeof(*ref));
        if (e) {
            repeat_touch(&repeat_causes, e, now_ms);
            ref->times = ++e->times;
            memcpy(ref->at, e->at, sizeof(ref->at));
        }
        return 0;
    }
    if (e)
        repeat_touch(&repeat_causes, e, now_ms);
    else
        e = repeat_add(&repeat_causes, key, h, now_ms);
    if (e->times == 0 && e->at[0] == 0) /* new: explain */
        first_in_message = 1;
    if (first_in_message || now_ms - e->full_ms >= interval_ms) {
        e->full_ms = now_ms;
        e->times = 0;
        snprintf(e->at, sizeof(e->at), "%s", repeat_clock(now));
        return 1;
    }
    e->times++;
    memcpy(ref->at, e->at, sizeof(ref->at));
    ref->times = e->times;
    return 0;
}

size_t repeat_count(int what)
{
    return what ? repeat_messages.count : repeat_causes.count;
}

/* repeat_clear_table - free every entry and the buckets of t. */
static void repeat_clear_table(struct repeat_table *t)
{
    struct repeat_entry *e;
    while ((e = TAILQ_FIRST(&t->lru))) {
        TAILQ_REMOVE(&t->lru, e, lru);
        free(e);
    }
    free(t->buckets);
    t->buckets = NULL;
    t->count = 0;
}

void repeat_clear(void)
{
    repeat_clear_table(&repeat_causes);
    repeat_clear_table(&repeat_messages);
}
