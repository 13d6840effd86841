/*
 * hash.h - FNV-1a over a NUL-terminated string or a run of bytes: the one string hash of the
 * in-memory indexes and caches (tables, the quota cache, the SPF message cache, the dkim
 * check's memory, the report's groups and counters).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_HASH_H
#define POLICYD_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_SEED 14695981039346656037ULL

/* hash_mem_from - continue the hash h over n bytes at p (start with HASH_SEED). */
static inline uint64_t hash_mem_from(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* hash_mem - the hash of n bytes at p. */
static inline uint64_t hash_mem(const void *p, size_t n)
{
    return hash_mem_from(HASH_SEED, p, n);
}

/* hash_str - the hash of the string s (without its NUL). */
static inline uint64_t hash_str(const char *s)
{
    uint64_t h = HASH_SEED;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

#endif
