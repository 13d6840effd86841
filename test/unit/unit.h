/*
 * unit.h - the smallest test harness that reads well: CHECK(expr) records a result,
 * UNIT_END() prints "N passed, N failed" and returns the exit status.
 * Header-only on purpose: each test/unit/test_*.c is one executable.
 */
/* SPDX-License-Identifier: MIT */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (expr) {                                                                                \
            unit_passed++;                                                                         \
        } else {                                                                                   \
            unit_failed++;                                                                         \
            fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #expr);                     \
        }                                                                                          \
    } while (0)

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (g_ && w_ && strcmp(g_, w_) == 0) {                                                     \
            unit_passed++;                                                                         \
        } else {                                                                                   \
            unit_failed++;                                                                         \
            fprintf(stderr, "%s:%d: FAILED: %s\n  got:  %s\n  want: %s\n", __FILE__, __LINE__,     \
                    #got, g_ ? g_ : "(null)", w_ ? w_ : "(null)");                                 \
        }                                                                                          \
    } while (0)

#define UNIT_END()                                                                                 \
    (printf("%s: %d passed, %d failed\n", __FILE__, unit_passed, unit_failed), unit_failed != 0)

#endif
