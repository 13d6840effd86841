/*
 * dns_cache.c - the DNS engine's cache of answers (see dns_cache.h): a chained hash table of
 * entries keyed by (type, name), doubled when entries outnumber its buckets twice, and a
 * doubly linked LRU list of the answered ones, most recent first, evicted from its tail.
 *
 * An entry is one allocation (the key follows it); the public part comes first so the
 * engine's pointer and ours are the same. The cache owns entries and the result references
 * they hold; the engine owns the flights it hangs on waiting entries.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/dns/dns_cache.h"

#include "policyd/dns/dns_wire.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define CACHE_BUCKETS_MIN 256
#define CACHE_BUCKETS_MAX (1u << 22)

struct entry {
    struct dns_cache_entry pub; /* first: what the engine sees */
    struct entry *hnext;
    struct entry *lprev, *lnext; /* LRU, most recent first: answered entries only */
    unsigned hash;
    char name[];
};

struct dns_cache {
    struct entry **buckets;
    size_t nbuckets;
    size_t nall;      /* entries in the table, answered or waiting */
    size_t nanswered; /* entries in the LRU list */
    struct entry *lru_first, *lru_last;
};

static struct entry *cache_entry(struct dns_cache_entry *pub)
{
    return (struct entry *)(void *)pub;
}

static unsigned cache_hash(int type, const char *name)
{
    unsigned h = (unsigned)type * 2654435761u;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

static void lru_unlink(struct dns_cache *c, struct entry *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        c->lru_first = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        c->lru_last = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push(struct dns_cache *c, struct entry *e)
{
    e->lprev = NULL;
    e->lnext = c->lru_first;
    if (c->lru_first)
        c->lru_first->lprev = e;
    else
        c->lru_last = e;
    c->lru_first = e;
}

/* cache_grow - keep chains short: double the buckets when entries outnumber them twice. */
static void cache_grow(struct dns_cache *c)
{
    if (c->nall < c->nbuckets * 2 || c->nbuckets >= CACHE_BUCKETS_MAX)
        return;
    size_t nb = c->nbuckets * 2;
    struct entry **b = xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct entry *e = c->buckets[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

/* cache_remove - forget an answered entry (its result lives on in references). */
static void cache_remove(struct dns_cache *c, struct entry *e)
{
    struct entry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(c, e);
    dns_wire_unref(e->pub.res);
    free(e);
    c->nanswered--;
    c->nall--;
}

struct dns_cache *dns_cache_new(void)
{
    struct dns_cache *c = xcalloc(1, sizeof(*c));
    c->nbuckets = CACHE_BUCKETS_MIN;
    c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
    return c;
}

void dns_cache_free(struct dns_cache *c)
{
    if (!c)
        return;
    for (size_t b = 0; b < c->nbuckets; b++) {
        for (struct entry *e = c->buckets[b], *next; e; e = next) {
            next = e->hnext;
            dns_wire_unref(e->pub.res);
            free(e);
        }
    }
    free(c->buckets);
    free(c);
}

int dns_cache_key(const char *name, char key[256])
{
    size_t len = strlen(name), label = 0;
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        key[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        if (ch == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (++label > 63) {
            return -1;
        }
    }
    if (label == 0)
        return -1; /* "a..": an empty last label */
    key[len] = 0;
    return (int)len;
}

struct dns_cache_entry *dns_cache_find(struct dns_cache *c, int type, const char *key)
{
    unsigned h = cache_hash(type, key);
    for (struct entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->pub.type == type && strcmp(e->name, key) == 0)
            return &e->pub;
    return NULL;
}

struct dns_cache_entry *dns_cache_add(struct dns_cache *c, int type, const char *key)
{
    size_t len = strlen(key);
    struct entry *e = xcalloc(1, sizeof(*e) + len + 1);
    memcpy(e->name, key, len + 1);
    e->pub.name = e->name;
    e->pub.type = type;
    e->hash = cache_hash(type, key);
    c->nall++;
    cache_grow(c);
    e->hnext = c->buckets[e->hash & (c->nbuckets - 1)];
    c->buckets[e->hash & (c->nbuckets - 1)] = e;
    return &e->pub;
}

void dns_cache_answer(struct dns_cache *c, struct dns_cache_entry *pub,
                      const struct dns_result *res, long long expires)
{
    struct entry *e = cache_entry(pub);
    if (e->pub.res)
        log_panic("DNS cache: %s/%d answered twice", e->name, e->pub.type);
    e->pub.res = res;
    e->pub.expires = expires;
    lru_push(c, e);
    c->nanswered++;
}

void dns_cache_touch(struct dns_cache *c, struct dns_cache_entry *pub)
{
    struct entry *e = cache_entry(pub);
    lru_unlink(c, e);
    lru_push(c, e);
}

void dns_cache_reopen(struct dns_cache *c, struct dns_cache_entry *pub)
{
    struct entry *e = cache_entry(pub);
    if (!e->pub.res)
        log_panic("DNS cache: %s/%d reopened while waiting", e->name, e->pub.type);
    lru_unlink(c, e);
    c->nanswered--;
    dns_wire_unref(e->pub.res);
    e->pub.res = NULL;
}

size_t dns_cache_evict(struct dns_cache *c, size_t keep)
{
    size_t n = 0;
    while (c->nanswered > keep && c->lru_last) {
        cache_remove(c, c->lru_last);
        n++;
    }
    return n;
}

size_t dns_cache_count(const struct dns_cache *c)
{
    return c->nanswered;
}
