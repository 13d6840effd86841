/*
 * xalloc.h - the one allocation path: each function either succeeds or does not return.
 *
 * On failure one log line ("out of memory allocating N bytes") is written through log.c and
 * the process aborts, as Postfix's mymalloc and Redis's zmalloc do: a daemon that explains
 * itself never dies silently, and no caller checks for NULL. Sizes are checked for overflow.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_LIB_XALLOC_H
#define POLICYD_LIB_XALLOC_H

#include <stddef.h>

/* xmalloc / xcalloc / xrealloc - as malloc, calloc, realloc; never NULL (a size of 0 gives a
 * unique pointer to free). xreallocarray - realloc of n * size with an overflow check. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t n, size_t size);

/* xstrdup / xstrndup - copies of s (at most n bytes of it, plus a NUL); never NULL. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* xasprintf - a newly allocated formatted string; never NULL. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * xgrow - make room for at least need elements of elem bytes in the array at ptr, whose
 * capacity in elements is *cap (doubling, at least 8). Returns the (possibly moved) array and
 * updates *cap. Use: v = xgrow(v, &cap, n + 1, sizeof(*v)); v[n++] = x;
 */
void *xgrow(void *ptr, size_t *cap, size_t need, size_t elem);

/* xalloc_fail - log "out of memory allocating N bytes" and abort; for allocations made by a
 * library on our behalf (evbuffer_new, event_new) whose NULL means the same. */
void xalloc_fail(size_t size) __attribute__((noreturn));

#endif
