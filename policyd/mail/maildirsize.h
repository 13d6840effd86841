/*
 * maildirsize.h - parse a Maildir++ quota file ("maildirsize", kept by Dovecot, Courier and
 * others). maildirsize_parse is pure code over bytes; maildirsize_read reads a mailbox's file
 * (bounded, no shared state: meant to run off the event loop, in a worker thread).
 *
 * Line 1 is the quota ("1000000S,1000C": bytes and/or messages; 0 or absent = no limit), each
 * further line "bytes count" (may be negative) adds to the usage. A last line without LF is
 * being written: ignored. By the Maildir++ rules a file over 5120 bytes, or an over-quota file
 * older than 15 minutes, is due for recalculation: its figures are not to be trusted.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_MAILDIRSIZE_H
#define POLICYD_MAILDIRSIZE_H

#include <stddef.h>
#include <time.h>

/* The most of a maildirsize file read: a longer one is due for recalculation anyway (5120). */
#define MAILDIRSIZE_READ_MAX 8192

struct maildirsize {
    long long quota_bytes; /* 0: no limit */
    long long quota_messages;
    long long used_bytes;
    long long used_messages;
    int stale; /* due for recalculation: no decision on it */
};

/* maildirsize_parse - 0 and *out filled, or -1 with the reason in err (garbled). age_s is the
 * file's age, used for the staleness rule. */
int maildirsize_parse(const char *data, size_t len, long age_s, struct maildirsize *out, char *err,
                      size_t errlen);

/*
 * maildirsize_read - read and parse MAILDIR/maildirsize at time now.
 *   1: *out is filled (check out->stale before deciding on it);
 *   0: the mailbox has no maildirsize file (or no directory yet): no quota, never full, and
 *      nothing to log (Postfix's virtual(8) writes none; a new mailbox has none);
 *  -1: "PATH: reason" in err (unreadable, not a regular file, garbled).
 * At most MAILDIRSIZE_READ_MAX bytes are read with one open and one fstat; the call touches no
 * shared state, so a worker thread can make it while the loop goes on (a read on a slow NFS
 * mount blocks only that thread).
 */
int maildirsize_read(const char *maildir, time_t now, struct maildirsize *out, char *err,
                     size_t errlen);

/* maildirsize_over - 1 if one more message of size bytes does not fit, 0 if it does. */
int maildirsize_over(const struct maildirsize *m, long long size);

#endif
