/*
 * logline.h - one mail log line understood: its time, and what it says if it is policyd's
 * diagnosis or Postfix's record of a refusal.
 *
 * The parser allocates nothing and never reads past the length it is given (lines may hold
 * NUL bytes, be cut short or be another program's binary output). What it finds are spans of
 * the caller's line, valid until the line changes. Syslog time stamps carry no year: a clock
 * holds the reference time (a file's modification time, or now) that decides it.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_REPORT_LOGLINE_H
#define POLICYD_REPORT_LOGLINE_H

#include <stddef.h>
#include <time.h>

/* logline_span - n bytes of the line at p (not NUL-terminated; n == 0: absent or empty). */
struct logline_span {
    const char *p;
    size_t n;
};

enum logline_kind {
    LOGLINE_FOREIGN,        /* no log header, or a line we do not summarise */
    LOGLINE_MALFORMED,      /* begins like policyd's diagnosis or a Postfix reject, but garbled */
    LOGLINE_DIAGNOSIS,      /* policyd: a check's verdict on a request (full or short repeat) */
    LOGLINE_DEADLINE,       /* policyd: the request deadline passed; fallback answered */
    LOGLINE_DNSBL_SCORE,    /* policyd: a client scored at dnsbl_warn_threshold or more */
    LOGLINE_POSTFIX_REJECT, /* Postfix (smtpd, postscreen, cleanup) refused something */
};

/* What the diagnosis line says the check did ("reject", "would reject (warn mode)", ...). */
enum logline_verdict {
    LOGV_NONE,
    LOGV_REJECT,
    LOGV_DEFER,
    LOGV_WOULD_REJECT,
    LOGV_WOULD_DEFER,
    LOGV_WOULD_PREPEND,
    LOGV_PREPEND,
    LOGV_WARN,
    LOGV_NOTE, /* a diagnosis without a verdict word (spf's softfail/neutral explanation) */
    LOGV_COUNT
};

struct logline {
    enum logline_kind kind;
    time_t when; /* seconds since the epoch */
    struct logline_span host, program;
    /* The request's key (policyd), or Postfix's client and trailer (reject). */
    struct logline_span queue_id, client_name, client_addr, sender, recipient, helo;
    /* policyd: check name, the reply it gave (action), cause_code=, cause=, fix=, and for a
     * short repeat the "as explained at ..." reference. */
    struct logline_span check, action, cause_code, cause, fix, repeat;
    enum logline_verdict verdict;
    int is_short; /* a short repeat: no cause= or fix= of its own */
    /* Postfix: the SMTP stage (RCPT, CONNECT, header, ...), reply code, enhanced status code,
     * the reply text; reject_warning (warn_if_reject) lines refused nothing. */
    struct logline_span stage, code, dsn, reason;
    int warning_only;
};

/* logline_clock - what decides the year of syslog time stamps (see logline_clock_init). */
struct logline_clock {
    time_t ref;
    int ref_year, ref_yday;
    int c_valid, c_year, c_mon, c_mday, c_hour; /* last local hour converted */
    time_t c_base;
};

/*
 * logline_clock_init - stamps without a year ("Dec  7 16:38:58") are taken to be in the year
 * of ref (local time) unless that puts them more than 7 days after ref; then in the year
 * before. ref is the newest a line can be: the file's modification time, or now.
 */
void logline_clock_init(struct logline_clock *clock, time_t ref);

/*
 * logline_parse - parse the len bytes at line (without its newline) into out. Understands
 * syslog stamps ("Dec  7 16:38:58", "Dec 07 16:38:58.123456"), ISO 8601 ones as rsyslog and
 * journalctl -o short-iso write them ("2026-12-07T16:38:58.123456+00:00", "...+0000", "Z" or
 * local), then "host program[pid]: message". Returns out->kind.
 */
enum logline_kind logline_parse(const char *line, size_t len, struct logline_clock *clock,
                                struct logline *out);

/* logline_verdict_name - "reject", "would reject (warn mode)", ... ("" for LOGV_NONE). */
const char *logline_verdict_name(enum logline_verdict v);

/* logline_refuses - 1 if the reply text is a refusal Postfix logs as a reject (4xx or 5xx,
 * REJECT, DEFER, DEFER_IF_PERMIT, ...), 0 if not (DUNNO, OK, PREPEND, ...). */
int logline_refuses(struct logline_span action);

/*
 * logline_normalise - a grouping key for free text: what varies between instances of one
 * cause is replaced by "*" (words holding digits, '@', '/', '=' and, unless keep_domains,
 * dotted names), bracketed parts by "(*)", "[*]", "<*>", quoted ones by "'*'"; runs of "*"
 * merge; with first_clause, the text ends at the first ';' outside brackets. Writes at most
 * outlen - 1 bytes and a NUL to out; returns the length written.
 */
size_t logline_normalise(const char *text, size_t len, int keep_domains, int first_clause,
                         char *out, size_t outlen);

#endif
