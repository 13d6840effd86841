/*
 * repeat.h - which diagnosis lines are written in full and which as short references to an
 * earlier full one (diagnosis_repeat_interval).
 *
 * A (check, cause code, subject) explained in full is remembered; the same cause about the same
 * subject within the interval gets a short line ("as explained at 16:38:58 for client
 * 203.0.113.51, 57 times since"), except in a message (Postfix's instance) that has not had
 * this cause yet: the first line of a cause in each message is full. Memory is bounded: at most
 * REPEAT_MAX causes and REPEAT_MAX message marks, the least recently used evicted at the cap
 * (its next line is simply full again), entries unused for an interval dropped as the tables
 * are used. Process-wide state beside the counters, touched only from the event loop (no
 * locking), kept across reloads; the times are passed in, so tests choose the clock.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_REPEAT_H
#define POLICYD_REPEAT_H

#include <stddef.h>
#include <time.h>

#define REPEAT_MAX 10000 /* causes, and message marks, remembered at most */

/* Where the full text of a short line is. */
struct repeat_ref {
    char at[16];         /* "16:38:58": local time of the full line */
    unsigned long times; /* short lines since the full one, this one included */
};

/*
 * repeat_decide - is this diagnosis written in full? check and code name the cause, subject
 * what it is about ("client 203.0.113.51"), instance the message ("" when unknown). now_ms is
 * a monotonic clock in milliseconds, now the wall clock. Returns 1 for a full line (remembered
 * as explained now), 0 for a short one, with *ref filled. interval_ms <= 0: always 1, nothing
 * remembered. composed 0: the check wrote no full text (repeat_peek said short): always 0,
 * referring to the last full line (ref->at "" when it is forgotten).
 */
int repeat_decide(const char *check, const char *code, const char *subject, const char *instance,
                  int composed, long interval_ms, long long now_ms, time_t now,
                  struct repeat_ref *ref);

/* repeat_peek - 1 if repeat_decide would now answer 0 (short) for these arguments; nothing is
 * counted, but the cause and the message mark are kept as recently used, so that a decision
 * made soon after finds them. */
int repeat_peek(const char *check, const char *code, const char *subject, const char *instance,
                long interval_ms, long long now_ms);

/* repeat_count - causes (what = 0) or message marks (what = 1) remembered now. */
size_t repeat_count(int what);

/* repeat_clear - forget everything (tests, and before exit for leak checkers). */
void repeat_clear(void);

#endif
