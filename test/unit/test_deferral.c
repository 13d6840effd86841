/*
 * test_deferral.c - policyd/mail/deferral.c: the kinds of delay reasons (table order: a
 * greylisting answer that says "listed" is greylisting), and the postqueue -j line reader
 * (recipients paired with their reasons, escapes, hostile and cut-short lines).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/deferral.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

static void test_classify(void)
{
    CHECK(deferral_classify("host x[192.0.2.1] said: 554 5.7.1 Relay access denied") ==
          DEFERRAL_RELAY);
    CHECK(deferral_classify("450 4.2.0 Recipient address rejected: Greylisted, see "
                            "http://postgrey.schweikert.ch/ (listed for 300 seconds)") ==
          DEFERRAL_GREYLIST);
    CHECK(deferral_classify("450 4.7.1 Client host rejected: cannot find your reverse "
                            "hostname, [203.0.113.5]") == DEFERRAL_PTR);
    CHECK(deferral_classify("554 5.7.1 client [203.0.113.5] blocked using zen.spamhaus.org") ==
          DEFERRAL_DNSBL);
    CHECK(deferral_classify("550 5.7.23 SPF validation failed") == DEFERRAL_SPF);
    CHECK(deferral_classify("550 5.7.26 Unauthenticated email from example.com is not accepted "
                            "due to domain's DMARC policy") == DEFERRAL_DMARC);
    CHECK(deferral_classify("TLS is required, but was not offered by host mx.example[192.0.2.1]") ==
          DEFERRAL_TLS);
    CHECK(deferral_classify("452 4.2.2 The email account that you tried to reach is over quota") ==
          DEFERRAL_MAILBOX_FULL);
    CHECK(deferral_classify("Host or domain name not found. Name service error for "
                            "name=example.invalid type=MX: Host not found, try again") ==
          DEFERRAL_DNS);
    CHECK(deferral_classify("connect to mx.example[192.0.2.1]:25: Connection timed out") ==
          DEFERRAL_CONNECT);
    CHECK(deferral_classify("421 4.3.0 something else") == DEFERRAL_OTHER);
    CHECK(deferral_classify("") == DEFERRAL_OTHER);
    /* every kind has its words, a label for metrics ([a-z_]) and a cause and fix */
    for (int k = 0; k < DEFERRAL_NKINDS; k++) {
        const struct deferral_diagnosis *d = deferral_diagnosis((enum deferral_kind)k);
        CHECK(d->name && d->why && d->fix && d->label && d->label[0]);
        CHECK(strspn(d->label, "abcdefghijklmnopqrstuvwxyz_") == strlen(d->label));
    }
    CHECK(deferral_diagnosis(DEFERRAL_PTR)->ours && !deferral_diagnosis(DEFERRAL_GREYLIST)->ours);
    CHECK(deferral_diagnosis((enum deferral_kind)99) == deferral_diagnosis(DEFERRAL_OTHER));
}

static void test_parse(void)
{
    struct deferral_message m;
    const char *line =
        "{\"queue_name\": \"deferred\", \"queue_id\": \"4F3A12\", \"arrival_time\": 1700000000, "
        "\"message_size\": 1234, \"forced_expire\": false, \"sender\": \"a@example.test\", "
        "\"recipients\": [{\"address\": \"r0@Dest.Example\", \"delay_reason\": \"450 4.7.1 "
        "no \\\"PTR\\\" {here}\"}, {\"address\": \"r1@dest.example\"}, {\"address\": "
        "\"r2@other.example\", \"delay_reason\": \"421 caf\\u00e9\\ttab\\u0001\"}]}";
    CHECK(deferral_parse_line(line, &m) == 0);
    CHECK_STR(m.queue_name, "deferred");
    CHECK_STR(m.queue_id, "4F3A12");
    CHECK(m.arrival_time == 1700000000);
    CHECK(m.nrcpts == 3);
    if (m.nrcpts == 3) {
        CHECK_STR(m.rcpts[0].address, "r0@Dest.Example");
        CHECK_STR(m.rcpts[0].reason, "450 4.7.1 no \"PTR\" {here}");
        CHECK_STR(m.rcpts[1].address, "r1@dest.example");
        CHECK_STR(m.rcpts[1].reason, "");
        CHECK_STR(m.rcpts[2].address, "r2@other.example");
        CHECK_STR(m.rcpts[2].reason, "421 caf\xc3\xa9 tab ");
    }
    deferral_message_free(&m);
    CHECK(m.nrcpts == 0 && m.rcpts == NULL);

    /* a sender or queue name that is not the message's own does not mislead */
    CHECK(deferral_parse_line("{\"queue_name\": \"active\", \"queue_id\": \"B\", \"recipients\": "
                              "[]}",
                              &m) == 0);
    CHECK_STR(m.queue_name, "active");
    CHECK(m.nrcpts == 0);
    deferral_message_free(&m);

    /* not an object, empty, a complaint of postqueue */
    CHECK(deferral_parse_line("postqueue: fatal: Queue report unavailable", &m) == -1);
    CHECK(m.nrcpts == 0 && !m.queue_id[0]);
    deferral_message_free(&m);
    CHECK(deferral_parse_line("", &m) == -1);
    deferral_message_free(&m);

    /* cut short anywhere: no crash, what was read is kept */
    char cut[600];
    size_t len = strlen(line) < sizeof(cut) ? strlen(line) : sizeof(cut) - 1;
    for (size_t n = 1; n < len; n++) {
        memcpy(cut, line, n);
        cut[n] = '\0';
        deferral_parse_line(cut, &m);
        CHECK(m.nrcpts <= 3);
        deferral_message_free(&m);
    }

    /* a long string is cut to DEFERRAL_MAX_STRING bytes, an overlong queue id to its field */
    size_t big = DEFERRAL_MAX_STRING * 2;
    char *huge = malloc(big + 200);
    int k = snprintf(huge, 200, "{\"queue_id\": \"%s\", \"recipients\": [{\"delay_reason\": \"",
                     "0123456789012345678901234567890123456789");
    memset(huge + k, 'x', big);
    strcpy(huge + k + big, "\"}]}");
    CHECK(deferral_parse_line(huge, &m) == 0);
    CHECK(strlen(m.queue_id) == sizeof(m.queue_id) - 1);
    CHECK(m.nrcpts == 1 && strlen(m.rcpts[0].reason) == DEFERRAL_MAX_STRING - 1);
    deferral_message_free(&m);
    free(huge);
}

static void test_domain(void)
{
    char d[64];
    CHECK_STR(deferral_domain("User@Example.ORG", d, sizeof(d)), "example.org");
    CHECK_STR(deferral_domain("a@b@c.example", d, sizeof(d)), "c.example");
    CHECK_STR(deferral_domain("postmaster", d, sizeof(d)), "");
    CHECK_STR(deferral_domain("x@verylongdomain.example", d, 8), "verylon");
}

int main(void)
{
    test_classify();
    test_parse();
    test_domain();
    return UNIT_END();
}
