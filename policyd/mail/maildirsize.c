/*
 * maildirsize.c - the Maildir++ quota file format (see maildirsize.h for the rules), and the
 * bounded read of a mailbox's file (a missing file is no quota, not an error).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/maildirsize.h"

#include "policyd/lib/file.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* md_number - a decimal (optionally negative) number at p; end set past it. 0 / -1. */
static int md_number(const char *p, const char *limit, long long *v, const char **end)
{
    int neg = 0;
    if (p < limit && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= limit || !isdigit((unsigned char)*p))
        return -1;
    long long n = 0;
    while (p < limit && isdigit((unsigned char)*p)) {
        if (n > (long long)9e17)
            return -1;
        n = n * 10 + (*p++ - '0');
    }
    *v = neg ? -n : n;
    *end = p;
    return 0;
}

/* md_add - a + b, saturated: a hostile file of huge lines must not overflow the sums. */
static long long md_add(long long a, long long b)
{
    long long r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? LLONG_MAX : LLONG_MIN;
    return r;
}

int maildirsize_parse(const char *data, size_t len, long age_s, struct maildirsize *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *nl = memchr(data, '\n', len);
    if (!nl) {
        snprintf(err, errlen, "no complete quota line");
        return -1;
    }
    /* Quota line: comma-separated items, each a number followed by S or C. */
    const char *p = data;
    while (p < nl) {
        long long v;
        const char *end;
        if (md_number(p, nl, &v, &end) != 0 || v < 0 || end >= nl + 1 ||
            (*end != 'S' && *end != 'C')) {
            snprintf(err, errlen, "quota line is not like 1000000S,1000C");
            return -1;
        }
        if (*end == 'S')
            out->quota_bytes = v;
        else
            out->quota_messages = v;
        p = end + 1;
        if (p < nl && *p == ',')
            p++;
        else if (p < nl) {
            snprintf(err, errlen, "quota line is not like 1000000S,1000C");
            return -1;
        }
    }
    /* Usage lines; a last line without LF is still being written. */
    int lineno = 1;
    for (p = nl + 1; p < data + len;) {
        const char *eol = memchr(p, '\n', (size_t)(data + len - p));
        if (!eol)
            break;
        lineno++;
        long long bytes, count;
        const char *end;
        const char *q = p;
        while (q < eol && *q == ' ')
            q++;
        if (md_number(q, eol, &bytes, &end) != 0 || end >= eol || *end != ' ') {
            snprintf(err, errlen, "line %d is not 'bytes count'", lineno);
            return -1;
        }
        while (end < eol && *end == ' ')
            end++;
        if (md_number(end, eol, &count, &end) != 0) {
            snprintf(err, errlen, "line %d is not 'bytes count'", lineno);
            return -1;
        }
        while (end < eol && (*end == ' ' || *end == '\r'))
            end++;
        if (end != eol) {
            snprintf(err, errlen, "line %d is not 'bytes count'", lineno);
            return -1;
        }
        out->used_bytes = md_add(out->used_bytes, bytes);
        out->used_messages = md_add(out->used_messages, count);
        p = eol + 1;
    }
    int over = (out->quota_bytes > 0 && out->used_bytes > out->quota_bytes) ||
               (out->quota_messages > 0 && out->used_messages > out->quota_messages);
    out->stale = len > 5120 || (over && age_s > 15 * 60);
    return 0;
}

int maildirsize_over(const struct maildirsize *m, long long size)
{
    if (m->quota_bytes > 0 && md_add(m->used_bytes, size > 0 ? size : 0) > m->quota_bytes)
        return 1;
    if (m->quota_messages > 0 && md_add(m->used_messages, 1) > m->quota_messages)
        return 1;
    return 0;
}

int maildirsize_read(const char *maildir, time_t now, struct maildirsize *out, char *err,
                     size_t errlen)
{
    char path[4200], buf[MAILDIRSIZE_READ_MAX];
    size_t ml = strlen(maildir);
    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "%.*s/maildirsize",
             (int)(ml > 1 && maildir[ml - 1] == '/' ? ml - 1 : ml), maildir);
    struct stat st;
    ssize_t n = file_read_bounded(path, buf, sizeof(buf), &st);
    if (n < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        snprintf(err, errlen, "%s: %s", path,
                 errno == EINVAL ? "not a regular file" : strerror(errno));
        return -1;
    }
    char why[128];
    long age = now > st.st_mtime ? (long)(now - st.st_mtime) : 0;
    if (maildirsize_parse(buf, (size_t)n, age, out, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    /* A file longer than the read is past the 5120-byte rule: due for recalculation. */
    if ((size_t)n == sizeof(buf))
        out->stale = 1;
    return 1;
}
