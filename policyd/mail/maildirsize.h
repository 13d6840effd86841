/*
 * maildirsize.h - parse a Maildir++ quota file ("maildirsize", kept by Dovecot, Courier and
 * others). Pure code over bytes: the caller reads the file (bounded) and says how old it is.
 *
 * Line 1 is the quota ("1000000S,1000C": bytes and/or messages; 0 or absent = no limit), each
 * further line "bytes count" (may be negative) adds to the usage. A last line without LF is
 * being written: ignored. By the Maildir++ rules a file over 5120 bytes, or an over-quota file
 * older than 15 minutes, is due for recalculation: its figures are not to be trusted.
 */
#ifndef POLICYD_MAILDIRSIZE_H
#define POLICYD_MAILDIRSIZE_H

#include <stddef.h>

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

/* maildirsize_over - 1 if one more message of size bytes does not fit, 0 if it does. */
int maildirsize_over(const struct maildirsize *m, long long size);

#endif
