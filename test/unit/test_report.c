/*
 * test_report.c - the report's log line parser (time stamps of every kind, the year of syslog
 * stamps, policyd's diagnosis lines today and with cause codes and short repeats, Postfix's
 * reject lines, garbage), the grouping key, the top-K counter, the matching of Postfix's
 * rejects to policyd's refusals, and the search for rotated log files.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/report/logline.h"
#include "policyd/report/report.h"
#include "policyd/report/tally.h"
#include "policyd/report/topk.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

static char text[4096];

/* S - a span as a string (static buffer; one at a time). */
static const char *S(struct logline_span s)
{
    snprintf(text, sizeof(text), "%.*s", (int)s.n, s.p ? s.p : "");
    return text;
}

/* utc - seconds since the epoch of a UTC date (TZ is UTC in this test). */
static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return timegm(&tm);
}

static enum logline_kind parse(const char *line, time_t ref, struct logline *l)
{
    struct logline_clock c;
    logline_clock_init(&c, ref);
    return logline_parse(line, strlen(line), &c, l);
}

#define KEY                                                                                        \
    "NOQUEUE: client=unknown[203.0.113.7], from=<a@example.org>, to=<victim@foreign.example>, "    \
    "helo=<h.example.org>: "

static void test_stamps(void)
{
    struct logline l;
    time_t ref = utc(2026, 12, 7, 20, 0, 0);
    const char *tail = " mx policyd[1]: hello";
    char line[256];

    snprintf(line, sizeof(line), "Dec  7 16:38:58%s", tail);
    CHECK(parse(line, ref, &l) == LOGLINE_FOREIGN);
    CHECK(l.when == utc(2026, 12, 7, 16, 38, 58));
    CHECK_STR(S(l.host), "mx");
    CHECK_STR(S(l.program), "policyd");
    snprintf(line, sizeof(line), "Dec 07 16:38:58%s",
             tail); /* Postfix's maillog_file, journalctl */
    parse(line, ref, &l);
    CHECK(l.when == utc(2026, 12, 7, 16, 38, 58));
    snprintf(line, sizeof(line), "Dec 7 16:38:58.123456%s", tail);
    parse(line, ref, &l);
    CHECK(l.when == utc(2026, 12, 7, 16, 38, 58));
    snprintf(line, sizeof(line), "2026-12-07T16:38:58.123456+00:00%s", tail); /* rsyslog */
    parse(line, ref, &l);
    CHECK(l.when == utc(2026, 12, 7, 16, 38, 58));
    snprintf(line, sizeof(line), "2026-12-07T17:38:58+0100%s", tail); /* journalctl short-iso */
    parse(line, ref, &l);
    CHECK(l.when == utc(2026, 12, 7, 16, 38, 58));
    snprintf(line, sizeof(line), "2026-12-07T11:38:58-05:00%s", tail);
    parse(line, ref, &l);
    CHECK(l.when == utc(2026, 12, 7, 16, 38, 58));
    snprintf(line, sizeof(line), "2026-12-07T16:38:58Z%s", tail);
    parse(line, ref, &l);
    CHECK(l.when == utc(2026, 12, 7, 16, 38, 58));
    snprintf(line, sizeof(line), "2026-12-07T16:38:58%s", tail); /* local: UTC here */
    parse(line, ref, &l);
    CHECK(l.when == utc(2026, 12, 7, 16, 38, 58));
    CHECK_STR(S(l.program), "policyd");

    /* The year of a syslog stamp: the reference's, unless that is more than a week ahead. */
    time_t jan2 = utc(2027, 1, 2, 0, 0, 10);
    parse("Dec 31 23:59:59 mx policyd[1]: x", jan2, &l);
    CHECK(l.when == utc(2026, 12, 31, 23, 59, 59));
    parse("Jan  2 00:00:05 mx policyd[1]: x", jan2, &l);
    CHECK(l.when == utc(2027, 1, 2, 0, 0, 5));
    parse("Jan  5 00:00:05 mx policyd[1]: x", jan2, &l); /* a few days ahead: clock skew */
    CHECK(l.when == utc(2027, 1, 5, 0, 0, 5));
    parse("Feb 29 12:00:00 mx policyd[1]: x", utc(2028, 3, 1, 0, 0, 0), &l); /* leap year */
    CHECK(l.when == utc(2028, 2, 29, 12, 0, 0));

    /* Not stamps. */
    CHECK(parse("Dez  7 16:38:58 mx policyd[1]: x", ref, &l) == LOGLINE_FOREIGN && !l.when);
    CHECK(parse("Dec 32 16:38:58 mx policyd[1]: x", ref, &l) == LOGLINE_FOREIGN && !l.when);
    CHECK(parse("Dec  7 24:38:58 mx policyd[1]: x", ref, &l) == LOGLINE_FOREIGN && !l.when);
    CHECK(parse("2026-13-07T16:38:58Z mx p: x", ref, &l) == LOGLINE_FOREIGN && !l.when);
    CHECK(parse("2026-12-07T16:38:58+25:00 mx p: x", ref, &l) == LOGLINE_FOREIGN && !l.when);
    CHECK(parse("Dec  7 16:38", ref, &l) == LOGLINE_FOREIGN);
    CHECK(parse("", ref, &l) == LOGLINE_FOREIGN);
    CHECK(parse("-- Logs begin at Mon 2026-12-07 16:38:58 UTC. --", ref, &l) == LOGLINE_FOREIGN);
    /* a header without a "tag:" */
    CHECK(parse("Dec  7 16:38:58 mx last message repeated 3 times", ref, &l) == LOGLINE_FOREIGN);
}

static void test_diagnosis(void)
{
    struct logline l;
    time_t ref = utc(2026, 12, 7, 20, 0, 0);

    /* Today's full line (evaluate.c). */
    CHECK(parse("Dec  7 16:38:58 mx policyd[812]: " KEY "relay: reject: 554 5.7.1 Relay access "
                "denied; cause=relay denied: client 203.0.113.7 (unknown) is not in mynetworks "
                "(127.0.0.0/8); recipient domain foreign.example is in none of ...; fix=if "
                "203.0.113.7 is your client, add it to mynetworks",
                ref, &l) == LOGLINE_DIAGNOSIS);
    CHECK_STR(S(l.queue_id), "NOQUEUE");
    CHECK_STR(S(l.client_name), "unknown");
    CHECK_STR(S(l.client_addr), "203.0.113.7");
    CHECK_STR(S(l.sender), "a@example.org");
    CHECK_STR(S(l.recipient), "victim@foreign.example");
    CHECK_STR(S(l.helo), "h.example.org");
    CHECK_STR(S(l.check), "relay");
    CHECK(l.verdict == LOGV_REJECT);
    CHECK_STR(S(l.action), "554 5.7.1 Relay access denied");
    CHECK(l.cause_code.n == 0);
    CHECK_STR(S(l.cause), "relay denied: client 203.0.113.7 (unknown) is not in mynetworks "
                          "(127.0.0.0/8); recipient domain foreign.example is in none of ...");
    CHECK_STR(S(l.fix), "if 203.0.113.7 is your client, add it to mynetworks");
    CHECK(!l.is_short);

    /* The coming full line: a cause code before the cause. */
    CHECK(parse("Dec  7 16:38:58 mx policyd[812]: 4XyZ12: client=mail.example.net[2001:db8::1], "
                "from=<>, to=<u@example.com>, helo=<mail.example.net>: spf: reject: 550 5.7.23 "
                "SPF fail; cause_code=spf.fail; cause=SPF fail: sender domain x does not permit "
                "client 2001:db8::1 (the term '-all' decided; record of x: \"v=spf1 -all\"); "
                "fix=the owner of x must add it",
                ref, &l) == LOGLINE_DIAGNOSIS);
    CHECK_STR(S(l.queue_id), "4XyZ12");
    CHECK_STR(S(l.client_addr), "2001:db8::1");
    CHECK_STR(S(l.sender), "");
    CHECK_STR(S(l.check), "spf");
    CHECK_STR(S(l.action), "550 5.7.23 SPF fail");
    CHECK_STR(S(l.cause_code), "spf.fail");
    CHECK_STR(S(l.cause), "SPF fail: sender domain x does not permit client 2001:db8::1 (the "
                          "term '-all' decided; record of x: \"v=spf1 -all\")");
    CHECK_STR(S(l.fix), "the owner of x must add it");

    /* A cause code after the fix, and one that is not a code (no dot) inside the reply. */
    parse("Dec  7 16:38:58 mx policyd[812]: " KEY "rdns: defer: 450 4.7.1 x; cause_code=nodot; "
          "cause=client has no PTR; fix=ask the ISP; cause_code=rdns.no_ptr",
          ref, &l);
    CHECK(l.verdict == LOGV_DEFER);
    CHECK_STR(S(l.action), "450 4.7.1 x; cause_code=nodot");
    CHECK_STR(S(l.cause_code), "rdns.no_ptr");
    CHECK_STR(S(l.cause), "client has no PTR");
    CHECK_STR(S(l.fix), "ask the ISP");

    /* A short repeat (issue 13). */
    CHECK(parse("Dec  7 16:40:00 mx policyd[812]: " KEY "spf: reject 550 5.7.23; "
                "cause_code=spf.fail; as explained at 16:38:58 for client 203.0.113.51, 57 times "
                "since",
                ref, &l) == LOGLINE_DIAGNOSIS);
    CHECK(l.verdict == LOGV_REJECT);
    CHECK(l.is_short);
    CHECK_STR(S(l.action), "550 5.7.23");
    CHECK_STR(S(l.cause_code), "spf.fail");
    CHECK(l.cause.n == 0 && l.fix.n == 0);
    CHECK_STR(S(l.repeat), "as explained at 16:38:58 for client 203.0.113.51, 57 times since");

    /* Warn mode, warn actions, SPF's explanation without a verdict. */
    parse("Dec  7 16:38:58 mx policyd[1]: " KEY "relay: would reject (warn mode): 554 5.7.1 "
          "Relay access denied; cause=c; fix=f",
          ref, &l);
    CHECK(l.verdict == LOGV_WOULD_REJECT);
    CHECK_STR(S(l.action), "554 5.7.1 Relay access denied");
    parse("Dec  7 16:38:58 mx policyd[1]: " KEY "rdns: would defer (warn mode): 450 4.7.1 x; "
          "cause=c; fix=f",
          ref, &l);
    CHECK(l.verdict == LOGV_WOULD_DEFER);
    parse("Dec  7 16:38:58 mx policyd[1]: " KEY "dkim: warn: WARN outbound mail from x will fail "
          "DKIM; cause=client 10.0.0.1 sends from x; fix=publish the key",
          ref, &l);
    CHECK(l.verdict == LOGV_WARN);
    CHECK_STR(S(l.check), "dkim");
    CHECK_STR(S(l.action), "WARN outbound mail from x will fail DKIM");
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: " KEY "spf: SPF softfail: sender domain x does "
                "not permit client 203.0.113.7 (the term '~all' decided); fix=list it",
                ref, &l) == LOGLINE_DIAGNOSIS);
    CHECK(l.verdict == LOGV_NOTE);
    CHECK_STR(S(l.cause), "SPF softfail: sender domain x does not permit client 203.0.113.7 (the "
                          "term '~all' decided)");
    CHECK_STR(S(l.fix), "list it");
    CHECK(l.action.n == 0);

    /* The deadline line (a warning). */
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: warning: " KEY "deadline: no answer after 10000 "
                "ms, answered DUNNO; late: rdns (PTR 7.113.0.203.in-addr.arpa), dnsbl; fix=check "
                "the DNS servers",
                ref, &l) == LOGLINE_DEADLINE);
    CHECK_STR(S(l.check), "deadline");
    CHECK_STR(S(l.action), "DUNNO");
    CHECK_STR(S(l.cause), "late: rdns (PTR 7.113.0.203.in-addr.arpa), dnsbl");
    CHECK_STR(S(l.fix), "check the DNS servers");

    /* The dnsbl score line. */
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: dnsbl: client 192.0.2.9 scores 2 (warn at 1, "
                "reject at 3): zen.example=127.0.0.2",
                ref, &l) == LOGLINE_DNSBL_SCORE);
    CHECK_STR(S(l.client_addr), "192.0.2.9");
    CHECK_STR(S(l.check), "dnsbl");

    /* The HELO name is the client's: "x>: relay: reject: " inside it does not end it. */
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: NOQUEUE: client=unknown[203.0.113.7], "
                "from=<a@b>, to=<c@d>, helo=<x>: NOT A CHECK: y>: rdns: reject: 450 4.7.1 no; "
                "cause=c; fix=f",
                ref, &l) == LOGLINE_DIAGNOSIS);
    CHECK_STR(S(l.helo), "x>: NOT A CHECK: y");
    CHECK_STR(S(l.check), "rdns");

    /* Cut short, or not ours. */
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: NOQUEUE: client=unknown[203.0.113.7], from=<a@ex",
                ref, &l) == LOGLINE_MALFORMED);
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: " KEY "relay:", ref, &l) == LOGLINE_MALFORMED);
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: " KEY "relay: something else entirely", ref, &l) ==
          LOGLINE_MALFORMED);
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: NOQUEUE: client=unknown[203.0.113.7]", ref, &l) ==
          LOGLINE_FOREIGN);
    CHECK(parse("Dec 07 18:04:18 mx postfix/smtpd[1]: E73E2A72042: client=unknown[203.0.113.8], "
                "sasl_method=XCLIENT, sasl_username=sasluser",
                ref, &l) == LOGLINE_FOREIGN);
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: starting: configuration x", ref, &l) ==
          LOGLINE_FOREIGN);
    CHECK(parse("Dec  7 16:38:58 mx policyd[1]: NOQUEUE: client=unknown[203.0.113.7], f", ref,
                &l) == LOGLINE_FOREIGN);
}

static void test_postfix(void)
{
    struct logline l;
    time_t ref = utc(2026, 12, 7, 20, 0, 0);

    CHECK(parse("Dec 07 18:04:18 mx postfix/smtpd[14612]: NOQUEUE: reject: RCPT from "
                "unknown[203.0.113.7]: 554 5.7.1 <victim@foreign.example>: Recipient address "
                "rejected: Relay access denied by policyd; from=<a@example.org> "
                "to=<victim@foreign.example> proto=ESMTP helo=<h.example.org>",
                ref, &l) == LOGLINE_POSTFIX_REJECT);
    CHECK_STR(S(l.program), "postfix/smtpd");
    CHECK_STR(S(l.stage), "RCPT");
    CHECK_STR(S(l.client_name), "unknown");
    CHECK_STR(S(l.client_addr), "203.0.113.7");
    CHECK_STR(S(l.code), "554");
    CHECK_STR(S(l.dsn), "5.7.1");
    CHECK_STR(S(l.reason),
              "<victim@foreign.example>: Recipient address rejected: Relay access denied by "
              "policyd");
    CHECK_STR(S(l.sender), "a@example.org");
    CHECK_STR(S(l.recipient), "victim@foreign.example");
    CHECK_STR(S(l.helo), "h.example.org");
    CHECK(!l.warning_only);

    /* postscreen: "[addr]:port", commas in the trailer. */
    CHECK(parse("Dec 07 18:04:18 mx postfix/postscreen[9]: NOQUEUE: reject: RCPT from "
                "[198.51.100.9]:4711: 550 5.7.1 Service unavailable; client [198.51.100.9] "
                "blocked using zen.spamhaus.org; from=<x@spam.example>, to=<y@example.com>, "
                "proto=ESMTP, helo=<spam>",
                ref, &l) == LOGLINE_POSTFIX_REJECT);
    CHECK_STR(S(l.client_addr), "198.51.100.9");
    CHECK_STR(S(l.client_name), "");
    CHECK_STR(S(l.reason),
              "Service unavailable; client [198.51.100.9] blocked using zen.spamhaus.org");
    CHECK_STR(S(l.sender), "x@spam.example");
    CHECK_STR(S(l.recipient), "y@example.com");

    /* CONNECT stage: no sender or recipient; reject_warning. */
    CHECK(parse("Dec 07 18:04:18 mx postfix/smtpd[9]: NOQUEUE: reject_warning: CONNECT from "
                "x.example[192.0.2.1]: 554 5.7.1 <x.example[192.0.2.1]>: Client host rejected: "
                "Access denied; proto=SMTP",
                ref, &l) == LOGLINE_POSTFIX_REJECT);
    CHECK(l.warning_only);
    CHECK_STR(S(l.stage), "CONNECT");
    CHECK_STR(S(l.reason), "<x.example[192.0.2.1]>: Client host rejected: Access denied");
    CHECK(l.sender.p == NULL && l.recipient.p == NULL);

    /* cleanup's header_checks reject. */
    CHECK(parse("Dec 07 18:04:18 mx postfix/cleanup[9]: 4ABC: reject: header Subject: buy from "
                "me from mx.example[192.0.2.2]; from=<s@x.example> to=<r@example.com> "
                "proto=ESMTP helo=<mx.example>: 5.7.1 message content rejected",
                ref, &l) == LOGLINE_POSTFIX_REJECT);
    CHECK_STR(S(l.stage), "header");
    CHECK_STR(S(l.client_addr), "192.0.2.2");
    CHECK_STR(S(l.client_name), "mx.example");
    CHECK_STR(S(l.dsn), "5.7.1");
    CHECK(l.code.n == 0);
    CHECK_STR(S(l.reason), "message content rejected");
    CHECK_STR(S(l.recipient), "r@example.com");

    /* Postfix lines that are not rejects, and broken ones. */
    CHECK(parse("Dec 07 18:04:18 mx postfix/smtpd[9]: connect from localhost[127.0.0.1]", ref,
                &l) == LOGLINE_FOREIGN);
    CHECK(parse("Dec 07 18:04:18 mx postfix/smtp[9]: AF1: to=<f@x>, relay=none, status=sent", ref,
                &l) == LOGLINE_FOREIGN);
    CHECK(parse("Dec 07 18:04:18 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT", ref, &l) ==
          LOGLINE_MALFORMED);
    CHECK(parse("Dec 07 18:04:18 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from unknown[1.2", ref,
                &l) == LOGLINE_MALFORMED);
}

static void test_garbage(void)
{
    struct logline l;
    struct logline_clock c;
    logline_clock_init(&c, utc(2026, 12, 7, 20, 0, 0));
    /* NUL bytes and high bytes: no reads past the length, foreign or malformed. */
    const char bin[] = "Dec  7 16:38:58 mx policyd[1]: NOQUEUE: client=a[1\0]\xff, from=<";
    CHECK(logline_parse(bin, sizeof(bin) - 1, &c, &l) != LOGLINE_DIAGNOSIS);
    char junk[512];
    unsigned seed = 7;
    int bad = 0;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof(junk));
        for (size_t i = 0; i < n; i++)
            junk[i] = (char)(rand_r(&seed) & 0xff);
        enum logline_kind k = logline_parse(junk, n, &c, &l);
        bad += k != LOGLINE_FOREIGN;
    }
    CHECK(bad == 0);
    /* Every prefix of a real line parses without reading beyond it (ASan would tell). */
    const char *full = "Dec  7 16:38:58 mx policyd[812]: " KEY "relay: reject: 554 5.7.1 Relay "
                       "access denied; cause_code=relay.not_mynetworks; cause=c; fix=f";
    size_t len = strlen(full);
    int diag = 0;
    for (size_t n = 0; n <= len; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, full, n);
        diag += logline_parse(copy, n, &c, &l) == LOGLINE_DIAGNOSIS;
        free(copy);
    }
    CHECK(diag > 0 && logline_parse(full, len, &c, &l) == LOGLINE_DIAGNOSIS);
    CHECK_STR(S(l.cause_code), "relay.not_mynetworks");
    CHECK_STR(S(l.fix), "f");
}

static void test_normalise(void)
{
    char out[200];
    const char *c = "relay denied: client 203.0.113.7 (unknown) is not in mynetworks (127.0.0.0/8 "
                    "[::1]/128) and did not authenticate; recipient domain foreign.example";
    logline_normalise(c, strlen(c), 0, 1, out, sizeof(out));
    CHECK_STR(out, "relay denied: client * (*) is not in mynetworks (*) and did not authenticate");
    const char *d = "relay denied: client 198.51.100.3 (mail.example.net) is not in mynetworks "
                    "(10.0.0.0/8) and did not authenticate; other";
    char out2[200];
    logline_normalise(d, strlen(d), 0, 1, out2, sizeof(out2));
    CHECK_STR(out, out2); /* two clients, one group */
    const char *u = "example.com is in virtual_mailbox_domains (a domain this server hosts), but "
                    "no table knows x@example.com: looked up x+y@example.com, x@example.com, "
                    "@example.com in hash:/etc/postfix/vmailbox";
    logline_normalise(u, strlen(u), 0, 1, out, sizeof(out));
    CHECK_STR(out, "* is in virtual_mailbox_domains (*), but no table knows *: looked up * in *");
    const char *p = "<x@y.example>: Recipient address rejected: User unknown in virtual mailbox "
                    "table";
    logline_normalise(p, strlen(p), 1, 0, out, sizeof(out));
    CHECK_STR(out, "<*>: Recipient address rejected: User unknown in virtual mailbox table");
    const char *r = "Service unavailable; client [192.0.2.1] blocked using zen.spamhaus.org; "
                    "https://www.spamhaus.org/query/ip/192.0.2.1";
    logline_normalise(r, strlen(r), 1, 0, out, sizeof(out));
    CHECK_STR(out, "Service unavailable; client [*] blocked using zen.spamhaus.org; *");
    const char *q = "SPF fail: sender domain x.example does not permit client 192.0.2.1 (the term "
                    "'-all' decided; record of x: \"v=spf1 -all\")";
    logline_normalise(q, strlen(q), 0, 1, out, sizeof(out));
    CHECK_STR(out, "SPF fail: sender domain * does not permit client * (*)");
    logline_normalise("the domain's owner 'quoted' (open", 33, 0, 1, out, sizeof(out));
    CHECK_STR(out, "the domain's owner '*' (open");
    char tiny[8];
    CHECK(logline_normalise(c, strlen(c), 0, 1, tiny, sizeof(tiny)) == 7);
    CHECK_STR(tiny, "relay d");
}

static void test_refuses(void)
{
    struct logline_span a = {"554 5.7.1 no", 12}, b = {"DUNNO", 5}, c = {"REJECT text", 11},
                        d = {"DEFER_IF_PERMIT x", 17}, e = {"PREPEND X: y", 12}, f = {"250", 3},
                        g = {"450", 3};
    CHECK(logline_refuses(a) && logline_refuses(c) && logline_refuses(d) && logline_refuses(g));
    CHECK(!logline_refuses(b) && !logline_refuses(e) && !logline_refuses(f));
}

static void test_topk(void)
{
    struct topk t;
    topk_init(&t, 4);
    for (int i = 0; i < 100; i++)
        topk_add(&t, "heavy", 5);
    for (int i = 0; i < 30; i++)
        topk_add(&t, "medium", 6);
    for (int i = 0; i < 3; i++)
        topk_add(&t, "light", 5);
    size_t n;
    const struct topk_item *it = topk_sorted(&t, &n);
    CHECK(n == 3 && t.replaced == 0);
    CHECK_STR(it[0].value, "heavy");
    CHECK(it[0].count == 100 && it[0].error == 0);
    CHECK(it[2].count == 3);
    /* 1,000 distinct values in 4 slots: the heavy ones stay, counts never under-stated. */
    char v[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(v, sizeof(v), "v%d", i);
        topk_add(&t, v, strlen(v));
    }
    for (int i = 0; i < 200; i++)
        topk_add(&t, "heavy", 5);
    it = topk_sorted(&t, &n);
    CHECK(n == 4 && t.replaced > 0 && t.total == 1333);
    CHECK_STR(it[0].value, "heavy");
    CHECK(it[0].count >= 300 && it[0].count - it[0].error <= 300);
    /* long values are cut, and still counted as themselves */
    char longv[200];
    memset(longv, 'x', sizeof(longv));
    topk_free(&t);
    topk_init(&t, 2);
    topk_add(&t, longv, sizeof(longv));
    topk_add(&t, longv, sizeof(longv));
    it = topk_sorted(&t, &n);
    CHECK(n == 1 && it[0].count == 2 && strlen(it[0].value) == TOPK_VALUE_MAX - 1);
    topk_free(&t);
}

/* add - parse a line and count it. */
static void add(struct tally *t, const char *line, time_t ref)
{
    struct logline l;
    struct logline_clock c;
    logline_clock_init(&c, ref);
    logline_parse(line, strlen(line), &c, &l);
    tally_add(t, &l, strlen(line) + 1);
}

static void test_tally(void)
{
    time_t ref = utc(2026, 12, 7, 20, 0, 0);
    struct tally *t = tally_new(utc(2026, 12, 7, 0, 0, 0));
    const char *ours = "Dec  7 %s mx policyd[1]: NOQUEUE: client=unknown[%s], from=<a@x.example>, "
                       "to=<%s>, helo=<h>: relay: reject: 554 5.7.1 Relay access denied; "
                       "cause_code=relay.not_mynetworks; cause=relay denied: client %s; fix=f";
    const char *theirs = "Dec 07 %s mx postfix/smtpd[2]: NOQUEUE: reject: RCPT from unknown[%s]: "
                         "554 5.7.1 <%s>: Recipient address rejected: Relay access denied; "
                         "from=<A@X.example> to=<%s> proto=ESMTP helo=<h>";
    char line[1024];
    /* 1: both lines, same second. 2: Postfix's line a minute boundary later. 3: Postfix's line
     * ten minutes later (not ours). 4: ours with no Postfix line. */
    snprintf(line, sizeof(line), ours, "10:00:01", "192.0.2.1", "r1@y", "192.0.2.1");
    add(t, line, ref);
    snprintf(line, sizeof(line), theirs, "10:00:01", "192.0.2.1", "r1@y", "r1@y");
    add(t, line, ref);
    snprintf(line, sizeof(line), theirs, "10:01:00", "192.0.2.2", "r2@y", "r2@y");
    add(t, line, ref); /* order of lines does not matter */
    snprintf(line, sizeof(line), ours, "10:00:59", "192.0.2.2", "r2@y", "192.0.2.2");
    add(t, line, ref);
    snprintf(line, sizeof(line), ours, "10:00:30", "192.0.2.3", "r3@y", "192.0.2.3");
    add(t, line, ref);
    snprintf(line, sizeof(line), theirs, "10:10:30", "192.0.2.3", "r3@y", "r3@y");
    add(t, line, ref);
    snprintf(line, sizeof(line), ours, "10:20:00", "192.0.2.4", "r4@y", "192.0.2.4");
    add(t, line, ref);
    /* before --since, foreign, malformed */
    snprintf(line, sizeof(line), ours, "10:20:00", "192.0.2.4", "r4@y", "192.0.2.4");
    add(t, line, utc(2026, 12, 10, 0, 0, 0) + 365 * 86400); /* lands in 2027: after since */
    add(t,
        "Dec  6 23:59:59 mx policyd[1]: NOQUEUE: client=unknown[192.0.2.9], from=<>, to=<>, "
        "helo=<>: relay: reject: 554 5.7.1 x; cause=c; fix=f",
        ref);
    add(t, "garbage", ref);
    add(t, "Dec  7 10:00:00 mx policyd[1]: NOQUEUE: client=unknown[192.0.2.9], from=<", ref);
    tally_too_long(t);
    tally_finish(t);

    const struct tally_totals *tt = tally_totals(t);
    CHECK(tt->lines == 12);
    CHECK(tt->before_since == 1);
    CHECK(tt->foreign == 1 && tt->malformed == 1 && tt->too_long == 1);
    CHECK(tt->diagnoses == 5 && tt->policyd_refusals == 5);
    CHECK(tt->postfix_rejects == 3);
    CHECK(tt->matched == 2);
    CHECK(tt->unmatched_refusals == 3);
    size_t np, nx;
    struct tally_group *const *pg = tally_groups(t, TALLY_POLICYD, &np);
    struct tally_group *const *xg = tally_groups(t, TALLY_POSTFIX, &nx);
    CHECK(np == 1 && nx == 1);
    CHECK(np == 1 && pg[0]->count == 5 && pg[0]->refusals == 5);
    CHECK_STR(np ? pg[0]->cause_code : NULL, "relay.not_mynetworks");
    CHECK_STR(np ? pg[0]->fix : NULL, "f");
    CHECK(nx == 1 && xg[0]->count == 3 && xg[0]->by_policyd == 2);
    CHECK_STR(nx ? xg[0]->label : NULL, "Recipient address rejected: Relay access denied");
    CHECK(tally_client_refused(t, "192.0.2.3") && !tally_client_refused(t, "192.0.2.99"));
    size_t n;
    const struct topk_item *it = topk_sorted(&pg[0]->senders, &n);
    CHECK(n == 1 && it[0].count == 5);
    CHECK_STR(n ? it[0].value : NULL, "x.example");
    tally_free(t);
    tally_free(NULL);

    /* Groups are bounded: 1,000 distinct causes without a code make 400 groups and "other". */
    t = tally_new(0);
    for (int i = 0; i < 1000; i++) {
        snprintf(line, sizeof(line),
                 "Dec  7 10:00:00 mx policyd[1]: NOQUEUE: client=unknown[192.0.2.1], from=<>, "
                 "to=<r@y>, helo=<h>: relay: reject: x; cause=cause%c%c%c; fix=f",
                 'a' + i % 26, 'a' + i / 26 % 26, 'a' + i / 676);
        add(t, line, ref);
    }
    tally_finish(t);
    pg = tally_groups(t, TALLY_POLICYD, &np);
    CHECK(np == TALLY_MAX_GROUPS + 1 && pg[np - 1]->other && pg[np - 1]->count == 600);
    tally_free(t);
}

/* test_match_stress - 50,000 refusals and their Postfix lines in shuffled order, in minutes
 * that differ for one in three, plus 5,000 rejects of Postfix's own: the slot table, which
 * frees paired slots as it goes, must lose nothing. */
static void test_match_stress(void)
{
    enum { PAIRS = 50000, OWN = 5000 };
    time_t ref = utc(2026, 12, 7, 20, 0, 0);
    struct tally *t = tally_new(0);
    int *order = malloc(sizeof(int) * (2 * PAIRS + OWN));
    for (int i = 0; i < 2 * PAIRS + OWN; i++)
        order[i] = i;
    unsigned seed = 42;
    for (int i = 2 * PAIRS + OWN - 1; i > 0; i--) {
        int j = (int)(rand_r(&seed) % (unsigned)(i + 1)), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    char line[600];
    for (int n = 0; n < 2 * PAIRS + OWN; n++) {
        int e = order[n], k = e % PAIRS, theirs = e >= PAIRS;
        /* the pair's minute: ours at k % 50, Postfix's one minute later for every third */
        int min = k % 50 + (theirs && e < 2 * PAIRS && k % 3 == 0), sec = k % 3 == 0 ? 59 : 10;
        if (e >= 2 * PAIRS) { /* Postfix's own: keys no refusal has */
            k = PAIRS + e;
            min = 5;
        }
        if (!theirs)
            snprintf(line, sizeof(line),
                     "Dec  7 10:%02d:%02d mx policyd[1]: NOQUEUE: client=unknown[10.%d.%d.1], "
                     "from=<s@x>, to=<r%d@y>, helo=<h>: relay: reject: 554 5.7.1 no; "
                     "cause_code=relay.x; cause=c; fix=f",
                     min, k % 3 == 0 ? 59 : 10, k / 256 % 256, k % 256, k);
        else
            snprintf(line, sizeof(line),
                     "Dec 07 10:%02d:%02d mx postfix/smtpd[2]: NOQUEUE: reject: RCPT from "
                     "unknown[10.%d.%d.1]: 554 5.7.1 <r%d@y>: Recipient address rejected: no; "
                     "from=<s@x> to=<r%d@y> proto=ESMTP helo=<h>",
                     min, k % 3 == 0 && e < 2 * PAIRS ? 0 : sec, k / 256 % 256, k % 256, k, k);
        add(t, line, ref);
    }
    tally_finish(t);
    const struct tally_totals *tt = tally_totals(t);
    CHECK(tt->policyd_refusals == PAIRS && tt->postfix_rejects == PAIRS + OWN);
    CHECK(tt->matched == PAIRS);
    CHECK(tt->unmatched_refusals == 0);
    CHECK(tt->match_untracked == 0);
    size_t nx;
    struct tally_group *const *xg = tally_groups(t, TALLY_POSTFIX, &nx);
    CHECK(nx == 1 && xg[0]->count == PAIRS + OWN && xg[0]->by_policyd == PAIRS);
    tally_free(t);
    free(order);
}

static void test_rotations(void)
{
    char dir[] = "/tmp/policyd-report-test.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *names[] = {"mail.log",      "mail.log.1",  "mail.log.2.gz", "mail.log-20261201.gz",
                           "mail.log.3.xz", "mail.logger", "mail.log.old",  "other.log"};
    char path[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        if (f)
            fclose(f);
        struct utimbuf tb = {(time_t)(1000000 - i * 1000), (time_t)(1000000 - i * 1000)};
        utime(path, &tb);
    }
    snprintf(path, sizeof(path), "%s/mail.log", dir);
    size_t n;
    char **r = report_rotations(path, &n);
    CHECK(n == 4);
    char want[512];
    snprintf(want, sizeof(want), "%s/mail.log-20261201.gz", dir); /* oldest first */
    CHECK_STR(n == 4 ? r[0] : NULL, want);
    snprintf(want, sizeof(want), "%s/mail.log", dir);
    CHECK_STR(n == 4 ? r[3] : NULL, want);
    CHECK(r[n] == NULL);
    for (size_t i = 0; i < n; i++)
        free(r[i]);
    free(r);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    snprintf(path, sizeof(path), "%s/none", dir);
    r = report_rotations(path, &n);
    CHECK(n == 0 && r[0] == NULL);
    free(r);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
    test_stamps();
    test_diagnosis();
    test_postfix();
    test_garbage();
    test_normalise();
    test_refuses();
    test_topk();
    test_tally();
    test_match_stress();
    test_rotations();
    return UNIT_END();
}
