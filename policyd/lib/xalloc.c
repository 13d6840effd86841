/*
 * xalloc.c - allocation that succeeds or logs and aborts (see xalloc.h).
 *
 * The out-of-memory line is formatted into a stack buffer by log.c, which allocates nothing,
 * so the report itself cannot fail for want of memory.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/xalloc.h"

#include "policyd/lib/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xalloc_fail(size_t size)
{
    log_panic("out of memory allocating %zu bytes", size);
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        xalloc_fail(size);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        xalloc_fail(SIZE_MAX);
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        xalloc_fail(n * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        xalloc_fail(size);
    return p;
}

void *xreallocarray(void *ptr, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        xalloc_fail(SIZE_MAX);
    return xrealloc(ptr, n * size);
}

char *xstrdup(const char *s)
{
    size_t len = strlen(s);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len + 1);
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        log_panic("xasprintf: bad format '%s'", fmt);
    char *p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void *xgrow(void *ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return ptr;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            xalloc_fail(SIZE_MAX);
        ncap *= 2;
    }
    ptr = xreallocarray(ptr, ncap, elem);
    *cap = ncap;
    return ptr;
}
