/*
 * test_spf.c - the SPF evaluator (policyd/mail/spf_eval.c) on a zone in memory: results, the
 * defects measured in libspf2 1.2.10 (macro truncation, IPv4-mapped clients, 127/8, /0 prefixes,
 * syntax errors), the RFC 7208 limits across includes, and hostile records (the
 * CVE-2023-42118 shapes, include bombs, huge local parts, 4 KB records). Run under ASan and
 * UBSan by make check. The conformance suites run through the daemon (test_spf_suite.sh).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/spf_eval.h"
#include "spf_fakedns.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fake_zone z;

static enum spf_result eval(const char *ip, const char *sender, struct spf_outcome *o)
{
    return fake_eval(&z, ip, sender, "mail.example.net", o, 50);
}

static void reset(void)
{
    memset(&z, 0, sizeof(z));
}

static void test_basics(void)
{
    struct spf_outcome o;
    reset();
    fake_txt(&z, "example.com", "v=spf1 ip4:192.0.2.0/24 a:mail.example.com ~all");
    fake_txt(&z, "example.com", "some other text");
    fake_item(&z, DNS_A, "mail.example.com", "198.51.100.7", 0);
    CHECK(eval("192.0.2.10", "a@example.com", &o) == SPF_PASS);
    CHECK_STR(o.mechanism, "ip4:192.0.2.0/24");
    CHECK(eval("198.51.100.7", "a@example.com", &o) == SPF_PASS);
    CHECK_STR(o.mechanism, "a:mail.example.com");
    CHECK(o.lookups == 1 && !o.pending && z.passes >= 2);
    CHECK(eval("203.0.113.1", "a@example.com", &o) == SPF_SOFTFAIL);
    CHECK(eval("203.0.113.1", "a@nothing.example", &o) == SPF_NONE);
    CHECK(eval("203.0.113.1", "a@single", &o) == SPF_NONE); /* not a multi-label domain */

    /* libspf2 passes 127.0.0.0/8 whatever the record says; the RFC does not. */
    CHECK(eval("127.0.0.1", "a@example.com", &o) == SPF_SOFTFAIL);
    /* IPv4-mapped IPv6 is IPv4 (libspf2 does not match it against ip4:). */
    CHECK(eval("::ffff:192.0.2.10", "a@example.com", &o) == SPF_PASS);

    /* Temporary DNS trouble is temperror, never fail. */
    fake_add(&z, DNS_TXT, "broken.example", DNS_TEMPFAIL);
    CHECK(eval("192.0.2.1", "x@broken.example", &o) == SPF_TEMPERROR);
    CHECK(strstr(o.problem, "broken.example") != NULL);

    /* /0 prefixes are valid (libspf2 refuses them). */
    reset();
    fake_txt(&z, "zero.example", "v=spf1 ip4:0.0.0.0/0 ip6:::/0 -all");
    CHECK(eval("203.0.113.9", "a@zero.example", &o) == SPF_PASS);
    CHECK(eval("2001:db8::1", "a@zero.example", &o) == SPF_PASS);
}

static void test_syntax(void)
{
    struct spf_outcome o;
    char err[200];
    /* A syntax error anywhere is a permerror, even after a matching term. */
    reset();
    fake_txt(&z, "late.example", "v=spf1 +all foo:bar");
    CHECK(eval("192.0.2.1", "a@late.example", &o) == SPF_PERMERROR);
    CHECK(strstr(o.problem, "unknown mechanism") != NULL);
    const char *bad[] = {"v=spf1 ip4:192.0.2.01",
                         "v=spf1 ip4:192.0.2.1/33",
                         "v=spf1 a:museum",
                         "v=spf1 a//129",
                         "v=spf1 exists:%{x}.e.com",
                         "v=spf1 a:%{l0}.e.com",
                         "v=spf1 redirect=a.com redirect=b.com",
                         "v=spf1 mx:1.2.3.4",
                         "v=spf1 include",
                         "v=spf1 -all=x",
                         "v=spf1 a:e.com%"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(spf_record_check(bad[i], strlen(bad[i]), err, sizeof(err)) == -1);
    const char *good[] = {"v=spf1", "v=spf1 a/24//64 mx:e.com/0 ptr -all",
                          "v=spf1 exists:%{ir}.%{l1r-}.%{d2}.e.com ?all",
                          "v=spf1 include:_spf.e.com exp=x.%{d} foo=%{s} redirect=e.org.",
                          "v=spf1  ip6:2001:db8::/32   ~all  "};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(spf_record_check(good[i], strlen(good[i]), err, sizeof(err)) == 0);
}

static void test_macros(void)
{
    struct spf_outcome o;
    reset();
    /* libspf2 gets the truncation off by one: %{l1} is the last part, %{d5} five parts. */
    fake_txt(&z, "a.b.c.d.e.f", "v=spf1 -all exp=why.e.com");
    fake_txt(&z, "why.e.com", "%{l1} %{d5} %{l1r} %{d2r} %{ir} %{v} %{L} %{l-}");
    CHECK(eval("192.0.2.10", "x.y.z@a.b.c.d.e.f", &o) == SPF_FAIL);
    CHECK_STR(o.explanation, "z b.c.d.e.f x b.a 10.2.0.192 in-addr x.y.z x.y.z");
    /* URL escaping for upper-case letters; "-" as a delimiter. */
    reset();
    fake_txt(&z, "e.com", "v=spf1 -all exp=why.e.com");
    fake_txt(&z, "why.e.com", "%{L} %{l1-}");
    CHECK(eval("192.0.2.10", "jack&jill=up-a_b3@e.com", &o) == SPF_FAIL);
    CHECK_STR(o.explanation, "jack%26jill%3Dup-a_b3 a_b3");
}

static void test_limits(void)
{
    struct spf_outcome o;
    char name[64], rec[512];
    /* An include bomb: 9 includes per record, 6 levels deep. libspf2 made 597,871 lookups
     * for it; the limit counts across includes, so this stops after 10 terms. */
    reset();
    for (int level = 0; level < 6; level++)
        for (int i = 0; i < (level ? 9 : 1); i++) {
            snprintf(name, sizeof(name), level ? "l%d-%d.bomb.example" : "bomb.example", level, i);
            size_t n = (size_t)snprintf(rec, sizeof(rec), "v=spf1");
            for (int k = 0; k < 9 && level < 5; k++) /* level 5: leaves */
                n += (size_t)snprintf(rec + n, sizeof(rec) - n, " include:l%d-%d.bomb.example",
                                      level + 1, k);
            snprintf(rec + n, sizeof(rec) - n, level < 5 ? " -all" : " ?all");
            static char recs[64][512], names[64][64]; /* the zone holds pointers */
            static int used;
            snprintf(recs[used], sizeof(recs[used]), "%s", rec);
            snprintf(names[used], sizeof(names[used]), "%s", name);
            fake_txt(&z, names[used], recs[used]);
            used = (used + 1) % 64;
        }
    CHECK(eval("192.0.2.1", "a@bomb.example", &o) == SPF_PERMERROR);
    CHECK(strstr(o.problem, "DNS-querying terms") != NULL);
    CHECK(o.lookups == 11 && z.wants < 100);
    if (o.lookups != 11 || !strstr(o.problem, "DNS-querying terms"))
        fprintf(stderr, "bomb: %s lookups=%d wants=%d passes=%d problem=%s\n",
                spf_result_name(o.result), o.lookups, z.wants, z.passes, o.problem);

    /* Void lookups: two are allowed, the third is a permerror. */
    reset();
    fake_txt(&z, "void.example", "v=spf1 a:n1.void.example a:n2.void.example ?all");
    CHECK(eval("192.0.2.1", "a@void.example", &o) == SPF_NEUTRAL && o.voids == 2);
    fake_txt(&z, "void3.example", "v=spf1 a:n1.v.example mx:n2.v.example exists:n3.v.example ?all");
    CHECK(eval("192.0.2.1", "a@void3.example", &o) == SPF_PERMERROR);

    /* More than 10 MX names: permerror. */
    reset();
    fake_txt(&z, "mx.example", "v=spf1 mx -all");
    static char mxnames[11][32];
    for (int i = 0; i < 11; i++) {
        snprintf(mxnames[i], sizeof(mxnames[i]), "mx%d.mx.example", i);
        fake_item(&z, DNS_MX, "mx.example", mxnames[i], 0);
    }
    CHECK(eval("192.0.2.1", "a@mx.example", &o) == SPF_PERMERROR);
}

static void test_hostile(void)
{
    struct spf_outcome o;
    /* CVE-2023-42118: an exp= of 127 %{l} macros (509 bytes) smashes libspf2's stack on any
     * fail. Here: a bounded explanation. */
    static char exp[600];
    size_t n = 0;
    for (int i = 0; i < 127; i++)
        n += (size_t)snprintf(exp + n, sizeof(exp) - n, "%%{l}");
    reset();
    fake_txt(&z, "cve.example", "v=spf1 -all exp=x.cve.example");
    fake_txt(&z, "x.cve.example", exp);
    char sender[200];
    memset(sender, 'a', 64);
    snprintf(sender + 64, sizeof(sender) - 64, "@cve.example");
    CHECK(eval("192.0.2.1", sender, &o) == SPF_FAIL);
    CHECK(strlen(o.explanation) > 0 && strlen(o.explanation) < sizeof(o.explanation));

    /* The same macros in exists:, in a 4 KB record: names cut to 253 bytes, no crash. */
    static char big[4200];
    n = (size_t)snprintf(big, sizeof(big), "v=spf1 exists:");
    while (n < 4000)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "%%{l}.");
    snprintf(big + n, sizeof(big) - n, "x.example -all");
    reset();
    fake_txt(&z, "big.example", big);
    CHECK(eval("192.0.2.1", "abc@big.example", &o) == SPF_FAIL);

    /* A 20 KB local part: the expanded name keeps its right-hand labels (RFC 7208 7.3). */
    static char huge[20100];
    memset(huge, 'l', 20000);
    snprintf(huge + 20000, sizeof(huge) - 20000, "@huge.example");
    reset();
    fake_txt(&z, "huge.example", "v=spf1 exists:%{l}.ok.huge.example -all");
    fake_item(&z, DNS_A, "ok.huge.example", "127.0.0.2", 0);
    CHECK(eval("192.0.2.1", huge, &o) == SPF_PASS);

    /* Records with NUL bytes or 8-bit text are permerrors, not truncated records. */
    reset();
    fake_item(&z, DNS_TXT, "nul.example", "v=spf1 +all\0 -all", 18);
    CHECK(eval("192.0.2.1", "a@nul.example", &o) == SPF_PERMERROR);
    fake_txt(&z, "utf.example", "v=spf1 a:\xc3\xa9.example -all");
    CHECK(eval("192.0.2.1", "a@utf.example", &o) == SPF_PERMERROR);
}

int main(void)
{
    test_basics();
    test_syntax();
    test_macros();
    test_limits();
    test_hostile();
    return UNIT_END();
}
