/*
 * hash.h - FNV-1a over a NUL-terminated string: the one string hash of the in-memory indexes
 * and caches (tables, the quota cache, the SPF message cache, the dkim check's memory).
 */
#ifndef POLICYD_HASH_H
#define POLICYD_HASH_H

#include <stdint.h>

static inline uint64_t hash_str(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

#endif
