/*
 * dns_cache.h - the DNS engine's cache (private to policyd/dns/): one entry per (type, name),
 * found through a hash table that grows, answered entries kept in least-recently-used order.
 *
 * An entry is either answered (it holds a result reference, counts towards the bound and may
 * be evicted) or waiting for its first answer (the engine's flight hangs on it; it is never
 * evicted). The cache owns its entries and their result references; it knows nothing of
 * queries, servers or time: expiry instants are the engine's numbers, compared by the engine.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_DNS_CACHE_H
#define POLICYD_DNS_CACHE_H

#include <stddef.h>

struct dns_cache;
struct dns_flight;
struct dns_result;

/* What the engine sees of an entry; the cache's own links are behind it. */
struct dns_cache_entry {
    const struct dns_result *res; /* the answer (a reference), NULL while waiting for it */
    long long expires;            /* when the answer goes stale (the engine's clock, ms) */
    struct dns_flight *flight;    /* the engine's query in flight for it, NULL if none */
    int type;
    const char *name; /* the key: lower case, no trailing dot */
};

/* dns_cache_new - an empty cache. Never NULL. */
struct dns_cache *dns_cache_new(void);

/* dns_cache_free - every entry and its result reference; the engine has dealt with its
 * flights before. NULL ok. */
void dns_cache_free(struct dns_cache *c);

/* dns_cache_key - name as a key: lower case, no trailing dot, into key. Its length, or -1 if
 * it is not a name that may be asked (1 to 253 bytes, labels of 1 to 63). */
int dns_cache_key(const char *name, char key[256]);

/* dns_cache_find - the entry of (type, key), answered or not, or NULL. */
struct dns_cache_entry *dns_cache_find(struct dns_cache *c, int type, const char *key);

/* dns_cache_add - a new entry for (type, key), which must not have one, waiting for its
 * answer. Owned by the cache. */
struct dns_cache_entry *dns_cache_add(struct dns_cache *c, int type, const char *key);

/* dns_cache_answer - e (waiting) now holds res (the reference is taken over) until
 * expires; it becomes the most recently used. */
void dns_cache_answer(struct dns_cache *c, struct dns_cache_entry *e, const struct dns_result *res,
                      long long expires);

/* dns_cache_touch - answered e becomes the most recently used. */
void dns_cache_touch(struct dns_cache *c, struct dns_cache_entry *e);

/* dns_cache_reopen - answered e is asked again: its answer is dropped (references held
 * elsewhere live on) and it waits, out of the LRU order, until dns_cache_answer. */
void dns_cache_reopen(struct dns_cache *c, struct dns_cache_entry *e);

/* dns_cache_evict - forget least recently used answers until at most keep remain. Returns
 * how many went. */
size_t dns_cache_evict(struct dns_cache *c, size_t keep);

/* dns_cache_count - answered entries. */
size_t dns_cache_count(const struct dns_cache *c);

#endif
