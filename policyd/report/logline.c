/*
 * logline.c - parse one mail log line (see logline.h): the syslog or ISO 8601 header, then
 * policyd's diagnosis lines and Postfix's reject lines; everything else is foreign.
 *
 * Every field is found by bounded scanning of the caller's bytes; nothing is allocated or
 * copied. Peer data sits inside these lines (HELO names, sender addresses, SPF explanations),
 * so a line may pretend to be something it is not: the worst it can do is be counted under
 * the wrong heading. Fields are looked for in a fixed order, so a marker inside peer text
 * later in the line never moves an earlier field.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/report/logline.h"

#include <string.h>
#include <strings.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* find - first occurrence of needle in the n bytes at p, or NULL. */
static const char *find(const char *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    if (k > n)
        return NULL;
    return memmem(p, n, needle, k);
}

/* rfind - last occurrence of needle in the n bytes at p, or NULL. */
static const char *rfind(const char *p, size_t n, const char *needle)
{
    const char *last = NULL, *end = p + n;
    size_t k = strlen(needle);
    for (const char *q = find(p, n, needle); q; q = find(q + 1, (size_t)(end - q - 1), needle)) {
        last = q;
        if ((size_t)(end - q) <= k)
            break;
    }
    return last;
}

/* starts - 1 if the n bytes at p begin with prefix. */
static int starts(const char *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(p, prefix, k) == 0;
}

static struct logline_span span(const char *from, const char *to)
{
    struct logline_span s = {from, to > from ? (size_t)(to - from) : 0};
    return s;
}

/* number - the value of exactly k digits at p, or -1. */
static int number(const char *p, size_t k)
{
    int v = 0;
    for (size_t i = 0; i < k; i++) {
        if (!is_digit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* --- time --- */

static const int month_start[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static long days_from_civil(long y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void logline_clock_init(struct logline_clock *clock, time_t ref)
{
    struct tm tm;
    memset(clock, 0, sizeof(*clock));
    clock->ref = ref;
    localtime_r(&ref, &tm);
    clock->ref_year = tm.tm_year + 1900;
    clock->ref_yday = tm.tm_yday;
}

/* local_time - seconds since the epoch of a local date and time. mktime is slow (time zone
 * rules), and log lines come in order: the start of the last hour converted is kept. */
static time_t local_time(struct logline_clock *c, int year, int mon, int mday, int hour, int min,
                         int sec)
{
    if (!c->c_valid || c->c_year != year || c->c_mon != mon || c->c_mday != mday ||
        c->c_hour != hour) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = year - 1900;
        tm.tm_mon = mon;
        tm.tm_mday = mday;
        tm.tm_hour = hour;
        tm.tm_isdst = -1;
        c->c_base = mktime(&tm);
        c->c_valid = 1;
        c->c_year = year;
        c->c_mon = mon;
        c->c_mday = mday;
        c->c_hour = hour;
    }
    return c->c_base + min * 60 + sec;
}

/* clock_hms - "HH:MM:SS" at p (8 bytes) into h, m, s; 0, or -1 if it is not one. */
static int clock_hms(const char *p, int *h, int *m, int *s)
{
    if (p[2] != ':' || p[5] != ':')
        return -1;
    *h = number(p, 2);
    *m = number(p + 3, 2);
    *s = number(p + 6, 2);
    return *h < 0 || *h > 23 || *m < 0 || *m > 59 || *s < 0 || *s > 60 ? -1 : 0;
}

/* skip_fraction - past ".123456" at *i, if there. */
static void skip_fraction(const char *line, size_t len, size_t *i)
{
    if (*i < len && line[*i] == '.') {
        size_t j = *i + 1;
        while (j < len && j - *i <= 9 && is_digit(line[j]))
            j++;
        if (j > *i + 1)
            *i = j;
    }
}

/* parse_bsd - "Mmm dd HH:MM:SS[.frac] " (day space- or zero-padded, or one digit). Returns the
 * offset after the stamp and its space, 0 if the line does not start so. */
static size_t parse_bsd(const char *line, size_t len, struct logline_clock *c, time_t *when)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (len < 15 || line[3] != ' ')
        return 0;
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (memcmp(line, months + 3 * i, 3) == 0)
            mon = i;
    if (mon < 0)
        return 0;
    size_t i = 4;
    if (line[i] == ' ')
        i++;
    int mday = 0;
    size_t d = i;
    while (i < len && i - d < 2 && is_digit(line[i]))
        mday = mday * 10 + (line[i++] - '0');
    if (i == d || i >= len || line[i] != ' ' || mday < 1 || mday > 31)
        return 0;
    i++;
    int h, m, s;
    if (len < i + 8 || clock_hms(line + i, &h, &m, &s) < 0)
        return 0;
    i += 8;
    skip_fraction(line, len, &i);
    if (i >= len || line[i] != ' ')
        return 0;
    /* The year: ref's, unless that puts the line more than a week after ref (a December line
     * read in January). Day-of-year arithmetic, so no extra mktime per line. */
    int year = c->ref_year;
    if (month_start[mon] + mday - 1 > c->ref_yday + 7)
        year--;
    *when = local_time(c, year, mon, mday, h, m, s);
    return i + 1;
}

/* parse_iso - "YYYY-MM-DDTHH:MM:SS[.frac][Z|+HH:MM|+HHMM] ". Returns the offset after it, 0 if
 * the line does not start so. Without an offset the time is local. */
static size_t parse_iso(const char *line, size_t len, struct logline_clock *c, time_t *when)
{
    if (len < 20 || line[4] != '-' || line[7] != '-' || line[10] != 'T')
        return 0;
    int year = number(line, 4), mon = number(line + 5, 2), mday = number(line + 8, 2), h, m, s;
    if (year < 1970 || mon < 1 || mon > 12 || mday < 1 || mday > 31 ||
        clock_hms(line + 11, &h, &m, &s) < 0)
        return 0;
    size_t i = 19;
    skip_fraction(line, len, &i);
    long offset = 0;
    int has_offset = 0;
    if (i < len && line[i] == 'Z') {
        has_offset = 1;
        i++;
    } else if (i < len && (line[i] == '+' || line[i] == '-')) {
        int sign = line[i] == '-' ? -1 : 1;
        int oh = len >= i + 3 ? number(line + i + 1, 2) : -1, om = -1;
        if (oh >= 0 && len >= i + 6 && line[i + 3] == ':') {
            om = number(line + i + 4, 2);
            i += 6;
        } else if (oh >= 0 && len >= i + 5) {
            om = number(line + i + 3, 2);
            i += 5;
        }
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return 0;
        offset = sign * (oh * 3600L + om * 60L);
        has_offset = 1;
    }
    if (i >= len || line[i] != ' ')
        return 0;
    if (has_offset)
        *when =
            (time_t)(days_from_civil(year, mon, mday) * 86400L + h * 3600L + m * 60L + s - offset);
    else
        *when = local_time(c, year, mon - 1, mday, h, m, s);
    return i + 1;
}

/* --- policyd's lines --- */

static const char *const verdict_names[LOGV_COUNT] = {
    "",
    "reject",
    "defer",
    "would reject (warn mode)",
    "would defer (warn mode)",
    "would prepend (warn mode)",
    "prepend",
    "warn",
    "note",
};

const char *logline_verdict_name(enum logline_verdict v)
{
    return v < LOGV_COUNT ? verdict_names[v] : "";
}

/* cause_code_len - length of a valid cause code at p ("relay.not_mynetworks"): lower-case
 * letters, digits, '_' and '-', with at least one '.' inside, ending at ';', ' ' or the end. */
static size_t cause_code_len(const char *p, size_t n)
{
    size_t i = 0, dots = 0;
    while (i < n && i < 64) {
        char c = p[i];
        if (c == '.' && i > 0 && p[i - 1] != '.')
            dots++;
        else if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '-'))
            break;
        i++;
    }
    if (i == 0 || dots == 0 || p[i - 1] == '.' || (i < n && p[i] != ';' && p[i] != ' '))
        return 0;
    return i;
}

enum marker { M_CODE, M_CAUSE, M_FIX, M_REPEAT, M_LATE, M_COUNT };

/* field_end - where the field whose marker is at q ends: at the nearest marker after it. */
static const char *field_end(const char *const m[M_COUNT], const char *q, const char *end)
{
    const char *lim = end;
    for (int i = 0; i < M_COUNT; i++)
        if (m[i] && m[i] > q && m[i] < lim)
            lim = m[i];
    return lim;
}

/* diagnosis_body - the part after "CHECK: ": verdict, reply, cause_code, cause, fix. */
static void diagnosis_body(const char *p, const char *end, struct logline *out)
{
    static const struct {
        const char *word;
        enum logline_verdict v;
    } words[] = {
        {"would reject (warn mode)", LOGV_WOULD_REJECT},
        {"would defer (warn mode)", LOGV_WOULD_DEFER},
        {"would prepend (warn mode)", LOGV_WOULD_PREPEND},
        {"reject", LOGV_REJECT},
        {"defer", LOGV_DEFER},
        {"prepend", LOGV_PREPEND},
        {"warn", LOGV_WARN},
    };
    size_t n = (size_t)(end - p);
    int deadline = out->kind == LOGLINE_DEADLINE;

    out->verdict = deadline ? LOGV_NONE : LOGV_NOTE;
    for (size_t i = 0; !deadline && i < sizeof(words) / sizeof(words[0]); i++) {
        size_t k = strlen(words[i].word);
        if (!starts(p, n, words[i].word) || (n > k && p[k] != ':' && p[k] != ' ' && p[k] != ';'))
            continue;
        out->verdict = words[i].v;
        p += k;
        if (p < end && *p == ':')
            p++;
        if (p < end && *p == ' ')
            p++;
        break;
    }
    n = (size_t)(end - p);

    /* The markers, each found once: the first of most, the last "; fix=" (the fix ends the
     * line, and the cause before it may quote anything). */
    const char *m[M_COUNT] = {NULL};
    size_t mlen[M_COUNT] = {13, 8, 6, 18, 8};
    for (const char *q = find(p, n, "; cause_code="); q;
         q = find(q + 1, (size_t)(end - q - 1), "; cause_code=")) {
        if (cause_code_len(q + 13, (size_t)(end - q - 13))) {
            m[M_CODE] = q;
            break;
        }
    }
    m[M_CAUSE] = find(p, n, "; cause=");
    m[M_FIX] = rfind(p, n, "; fix=");
    m[M_REPEAT] = find(p, n, "; as explained at ");
    if (deadline)
        m[M_LATE] = find(p, n, "; late: ");
    if (m[M_FIX] && m[M_CAUSE] && m[M_FIX] < m[M_CAUSE])
        m[M_FIX] = NULL; /* a fix= before cause= is text, not the field */

    const char *first = end;
    for (int i = 0; i < M_COUNT; i++)
        if (m[i] && m[i] < first)
            first = m[i];
    if (out->verdict == LOGV_NOTE) {
        out->cause = span(p, first); /* "SPF softfail: ...; fix=..." */
    } else if (deadline) {
        /* "no answer after N ms, answered ACTION; late: LIST; fix=..." */
        const char *a = find(p, (size_t)(first - p), "answered ");
        out->action = a ? span(a + 9, first) : span(p, first);
    } else {
        out->action = span(p, first);
    }
    if (m[M_CODE]) {
        const char *c = m[M_CODE] + mlen[M_CODE];
        out->cause_code = span(c, c + cause_code_len(c, (size_t)(end - c)));
    }
    if (m[M_CAUSE])
        out->cause = span(m[M_CAUSE] + mlen[M_CAUSE], field_end(m, m[M_CAUSE], end));
    if (m[M_LATE]) /* "late: rdns (...), dnsbl" */
        out->cause = span(m[M_LATE] + 2, field_end(m, m[M_LATE], end));
    if (m[M_FIX])
        out->fix = span(m[M_FIX] + mlen[M_FIX], field_end(m, m[M_FIX], end));
    if (m[M_REPEAT]) {
        out->repeat = span(m[M_REPEAT] + 2, field_end(m, m[M_REPEAT], end));
        out->is_short = !m[M_CAUSE];
    }
}

/* parse_key_diagnosis - "client=NAME[ADDR], from=<S>, to=<R>, helo=<H>: CHECK: ..." at p
 * (after "QID: "). FOREIGN if it is not our key (Postfix's own "QID: client=..." lines). */
static enum logline_kind parse_key_diagnosis(const char *p, const char *end, struct logline *out)
{
    const char *name = p + 7; /* after "client=" */
    const char *q = name;
    while (q < end && *q != '[' && *q != ' ' && *q != ',')
        q++;
    if (q >= end || *q != '[')
        return LOGLINE_FOREIGN;
    const char *addr = q + 1, *close = memchr(addr, ']', (size_t)(end - addr));
    if (!close || (size_t)(close - addr) > 64)
        return LOGLINE_FOREIGN;
    if (!starts(close, (size_t)(end - close), "], from=<"))
        return LOGLINE_FOREIGN; /* Postfix's "QID: client=NAME[ADDR]" (or ours cut right here) */
    out->client_name = span(name, q);
    out->client_addr = span(addr, close);
    const char *s = close + 9;
    const char *t = find(s, (size_t)(end - s), ">, to=<");
    if (!t)
        return LOGLINE_MALFORMED;
    out->sender = span(s, t);
    const char *r = t + 7;
    const char *h = find(r, (size_t)(end - r), ">, helo=<");
    if (!h)
        return LOGLINE_MALFORMED;
    out->recipient = span(r, h);
    const char *helo = h + 9;
    /* The HELO name is the client's text: its end is the first ">: " followed by a check name
     * and ':'. */
    for (const char *e = find(helo, (size_t)(end - helo), ">: "); e;
         e = find(e + 1, (size_t)(end - e - 1), ">: ")) {
        const char *c = e + 3, *ce = c;
        while (ce < end && ce - c < 32 &&
               ((*ce >= 'a' && *ce <= 'z') || is_digit(*ce) || *ce == '_' || *ce == '-'))
            ce++;
        if (ce == c || ce >= end || *ce != ':' || (ce + 1 < end && ce[1] != ' '))
            continue;
        out->helo = span(helo, e);
        out->check = span(c, ce);
        if (out->check.n == 8 && memcmp(c, "deadline", 8) == 0)
            out->kind = LOGLINE_DEADLINE;
        else
            out->kind = LOGLINE_DIAGNOSIS;
        const char *body = ce + 1 < end ? ce + 2 : end;
        if (body >= end)
            return LOGLINE_MALFORMED; /* cut after the check name */
        diagnosis_body(body, end, out);
        if (out->kind == LOGLINE_DIAGNOSIS && out->verdict == LOGV_NOTE && !out->fix.n &&
            !out->cause_code.n)
            return LOGLINE_MALFORMED; /* neither a verdict nor a diagnosis */
        return out->kind;
    }
    return LOGLINE_MALFORMED;
}

/* parse_dnsbl_score - "dnsbl: client ADDR scores N (warn at W, reject at R): detail". */
static enum logline_kind parse_dnsbl_score(const char *p, const char *end, struct logline *out)
{
    const char *a = p + 14; /* after "dnsbl: client " */
    const char *sp = memchr(a, ' ', (size_t)(end - a));
    if (!sp || sp == a || (size_t)(sp - a) > 64 || !starts(sp, (size_t)(end - sp), " scores "))
        return LOGLINE_FOREIGN;
    out->client_addr = span(a, sp);
    out->check = span(p, p + 5);
    out->verdict = LOGV_WARN;
    out->cause = span(p + 7, end);
    return out->kind = LOGLINE_DNSBL_SCORE;
}

/* --- Postfix's reject lines --- */

/* angle_value - the value of "NAME=<...>" at or after p, up to the '>' that is followed by
 * ' ', ',' or ';' or ends the line (addresses may hold '>' in quoted parts). */
static struct logline_span angle_value(const char *p, const char *end, const char *name)
{
    struct logline_span none = {NULL, 0};
    const char *v = find(p, (size_t)(end - p), name);
    if (!v)
        return none;
    v += strlen(name);
    for (const char *q = v; q < end; q++)
        if (*q == '>' && (q + 1 == end || q[1] == ' ' || q[1] == ',' || q[1] == ';' || q[1] == ':'))
            return span(v, q);
    return none;
}

/* postfix_reply - "554 5.7.1 text" into code, dsn, reason. */
static void postfix_reply(const char *p, const char *end, struct logline *out)
{
    if (end - p >= 4 && (p[0] == '4' || p[0] == '5' || p[0] == '2') && is_digit(p[1]) &&
        is_digit(p[2]) && p[3] == ' ') {
        out->code = span(p, p + 3);
        p += 4;
    }
    /* the enhanced status code: class.subject.detail, e.g. 5.7.1 */
    const char *q = p;
    int dots = 0, digits = 0;
    if (q < end && (*q == '4' || *q == '5' || *q == '2')) {
        for (; q < end && q - p < 12; q++) {
            if (*q == '.' && digits) {
                dots++;
                digits = 0;
            } else if (is_digit(*q)) {
                digits++;
            } else {
                break;
            }
        }
        if (dots == 2 && digits && (q == end || *q == ' ')) {
            out->dsn = span(p, q);
            p = q < end ? q + 1 : q;
        }
    }
    out->reason = span(p, end);
}

/* parse_postfix_reject - "QID: reject: STAGE from CLIENT: REPLY; from=<S> to=<R> proto=P
 * helo=<H>" (smtpd, postscreen with "[ADDR]:PORT" and commas) or cleanup's "QID: reject:
 * header TEXT from CLIENT; from=<S> to=<R> proto=P helo=<H>: REPLY". p is after "reject: ". */
static enum logline_kind parse_postfix_reject(const char *p, const char *end, struct logline *out)
{
    const char *st = p;
    while (p < end && (is_alnum(*p) || *p == '-'))
        p++;
    if (p == st || p - st > 32 || p >= end || *p != ' ')
        return LOGLINE_MALFORMED;
    out->stage = span(st, p);
    out->kind = LOGLINE_POSTFIX_REJECT;
    const char *trailer = rfind(p, (size_t)(end - p), "; from=<");
    int content = (out->stage.n == 6 && memcmp(st, "header", 6) == 0) ||
                  (out->stage.n == 4 && memcmp(st, "body", 4) == 0) ||
                  (out->stage.n == 11 && memcmp(st, "mime-header", 11) == 0) ||
                  (out->stage.n == 13 && memcmp(st, "nested-header", 13) == 0);
    if (content) {
        /* cleanup: the header or body text comes first and may hold anything. */
        if (!trailer)
            return LOGLINE_MALFORMED;
        const char *f = rfind(p, (size_t)(trailer - p), " from ");
        if (f) {
            const char *c = f + 6, *b = memchr(c, '[', (size_t)(trailer - c));
            if (b && trailer[-1] == ']') {
                out->client_name = span(c, b);
                out->client_addr = span(b + 1, trailer - 1);
            }
        }
        out->sender = angle_value(trailer, end, "from=<");
        out->recipient = angle_value(trailer, end, "to=<");
        out->helo = angle_value(trailer, end, "helo=<");
        const char *tail = out->helo.p        ? out->helo.p + out->helo.n
                           : out->recipient.p ? out->recipient.p + out->recipient.n
                                              : trailer;
        const char *r = find(tail, (size_t)(end - tail), ": ");
        if (!r)
            return LOGLINE_MALFORMED;
        postfix_reply(r + 2, end, out);
        return out->kind;
    }
    if (!starts(p, (size_t)(end - p), " from "))
        return LOGLINE_MALFORMED;
    const char *c = p + 6, *b = c;
    while (b < end && *b != '[' && *b != ' ')
        b++;
    if (b >= end || *b != '[')
        return LOGLINE_MALFORMED;
    const char *close = memchr(b, ']', (size_t)(end - b));
    if (!close || close - b > 66)
        return LOGLINE_MALFORMED;
    out->client_name = span(c, b);
    out->client_addr = span(b + 1, close);
    const char *q = close + 1;
    if (q < end && *q == ':' && q + 1 < end && is_digit(q[1])) /* postscreen's ":port" */
        for (q++; q < end && is_digit(*q); q++)
            ;
    if (!starts(q, (size_t)(end - q), ": "))
        return LOGLINE_MALFORMED;
    q += 2;
    const char *reply_end = trailer;
    if (!reply_end)
        reply_end = rfind(q, (size_t)(end - q), "; proto=");
    if (!reply_end)
        reply_end = end;
    postfix_reply(q, reply_end, out);
    if (trailer) {
        out->sender = angle_value(trailer, end, "from=<");
        out->recipient = angle_value(trailer, end, "to=<");
        out->helo = angle_value(trailer, end, "helo=<");
    }
    return out->kind;
}

/* --- the line --- */

enum logline_kind logline_parse(const char *line, size_t len, struct logline_clock *clock,
                                struct logline *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = LOGLINE_FOREIGN;
    if (len && line[len - 1] == '\r')
        len--;
    size_t i = parse_bsd(line, len, clock, &out->when);
    if (!i)
        i = parse_iso(line, len, clock, &out->when);
    if (!i)
        return LOGLINE_FOREIGN;
    const char *p = line + i, *end = line + len;
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p || sp - p > 255)
        return LOGLINE_FOREIGN;
    out->host = span(p, sp);
    p = sp + 1;
    const char *tag = p;
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p || sp[-1] != ':' || sp - p > 255)
        return LOGLINE_FOREIGN;
    const char *pe = memchr(tag, '[', (size_t)(sp - tag));
    out->program = span(tag, pe ? pe : sp - 1);
    const char *msg = sp + 1;
    size_t n = (size_t)(end - msg);

    if (starts(msg, n, "warning: ")) {
        msg += 9;
        n -= 9;
    }
    if (starts(msg, n, "dnsbl: client "))
        return parse_dnsbl_score(msg, end, out);
    /* QUEUEID: or NOQUEUE: */
    const char *q = msg;
    while (q < end && q - msg <= 32 && is_alnum(*q))
        q++;
    if (q == msg || q - msg > 32 || !starts(q, (size_t)(end - q), ": "))
        return LOGLINE_FOREIGN;
    out->queue_id = span(msg, q);
    q += 2;
    size_t rest = (size_t)(end - q);
    if (starts(q, rest, "client="))
        return out->kind = parse_key_diagnosis(q, end, out);
    if (starts(q, rest, "reject: "))
        return out->kind = parse_postfix_reject(q + 8, end, out);
    if (starts(q, rest, "reject_warning: ")) {
        out->warning_only = 1;
        return out->kind = parse_postfix_reject(q + 16, end, out);
    }
    out->queue_id.p = NULL;
    out->queue_id.n = 0;
    return LOGLINE_FOREIGN;
}

int logline_refuses(struct logline_span a)
{
    static const char *const words[] = {"REJECT", "DEFER", "DEFER_IF_PERMIT", "DEFER_IF_REJECT",
                                        "BCC_REJECT"};
    if (a.n >= 3 && (a.p[0] == '4' || a.p[0] == '5') && is_digit(a.p[1]) && is_digit(a.p[2]) &&
        (a.n == 3 || a.p[3] == ' '))
        return 1;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t k = strlen(words[i]);
        if (a.n >= k && strncasecmp(a.p, words[i], k) == 0 && (a.n == k || a.p[k] == ' '))
            return 1;
    }
    return 0;
}

/* --- grouping keys --- */

/* norm_put - append c to out unless full. */
static void norm_put(char *out, size_t outlen, size_t *o, char c)
{
    if (*o + 1 < outlen)
        out[(*o)++] = c;
}

/* norm_star - append "*", unless the text so far already ends with "*" and separators. */
static void norm_star(char *out, size_t outlen, size_t *o)
{
    size_t k = *o;
    while (k > 0 && (out[k - 1] == ' ' || out[k - 1] == ','))
        k--;
    if (k > 0 && out[k - 1] == '*' && (k < 2 || out[k - 2] == ' ' || out[k - 2] == ',')) {
        *o = k; /* "*, *" and "* *" become "*" */
        return;
    }
    norm_put(out, outlen, o, '*');
}

size_t logline_normalise(const char *text, size_t len, int keep_domains, int first_clause,
                         char *out, size_t outlen)
{
    size_t o = 0;
    if (!outlen)
        return 0;
    if (!text || !len) { /* a line with neither cause nor reply (fuzzing found it) */
        out[0] = '\0';
        return 0;
    }
    const char *p = text, *end = text + len;
    while (p < end && o + 1 < outlen) {
        unsigned char c = (unsigned char)*p;
        if (c == ';' && first_clause)
            break;
        if (c == ' ' || c == '\t') {
            if (o && out[o - 1] != ' ')
                norm_put(out, outlen, &o, ' ');
            p++;
            continue;
        }
        const char *closer = NULL;
        char open = (char)c, shut = 0;
        if (c == '(' || c == '[' || c == '<' || c == '"' || c == '\'') {
            shut = c == '(' ? ')' : c == '[' ? ']' : c == '<' ? '>' : (char)c;
            int depth = 0;
            for (const char *q = p + 1; q < end; q++) {
                if (*q == shut && depth == 0) {
                    closer = q;
                    break;
                }
                if (shut == ')' && *q == '(')
                    depth++;
                else if (shut == ')' && *q == ')')
                    depth--;
            }
            /* an apostrophe inside a word ("domain's") is not a quote */
            if (c == '\'' && o && out[o - 1] != ' ' && out[o - 1] != '(')
                closer = NULL;
        }
        if (closer) {
            norm_put(out, outlen, &o, open);
            norm_put(out, outlen, &o, '*');
            norm_put(out, outlen, &o, shut);
            p = closer + 1;
            continue;
        }
        if (shut || c == ',' || c == ';' || c == ')' || c == ']' || c == '>') {
            /* punctuation, or an opening bracket or quote that is never closed */
            norm_put(out, outlen, &o, (char)c);
            p++;
            continue;
        }
        /* A word: kept, or "*" if it varies from instance to instance. */
        const char *w = p;
        int varies = 0, dot = 0;
        while (p < end && *p != ' ' && *p != '\t' && *p != ',' && *p != ';' && *p != '(' &&
               *p != ')' && *p != '[' && *p != ']' && *p != '<' && *p != '>' && *p != '"') {
            unsigned char d = (unsigned char)*p;
            if (is_digit((char)d) || d == '@' || d == '/' || d == '=' || d < 0x20 || d >= 0x7f)
                varies = 1;
            if (d == '.' && p + 1 < end && p[1] != ' ' && p > w)
                dot = 1;
            p++;
        }
        size_t wl = (size_t)(p - w);
        /* a word ending in ':' keeps it ("denied:"), even when the word itself varies */
        int colon = w[wl - 1] == ':';
        if (varies || (dot && !keep_domains)) {
            norm_star(out, outlen, &o);
            if (colon)
                norm_put(out, outlen, &o, ':');
        } else {
            for (size_t k = 0; k < wl; k++)
                norm_put(out, outlen, &o, w[k]);
        }
    }
    while (o && (out[o - 1] == ' ' || out[o - 1] == ','))
        o--;
    out[o] = 0;
    return o;
}
