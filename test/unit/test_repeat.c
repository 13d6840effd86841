/*
 * test_repeat.c - the memory of recent diagnoses (policyd/repeat.c) on a clock the test
 * chooses: a cause is explained in full once per interval and subject, repeats inside the
 * interval are short and counted, the interval's end brings the full text back, each message's
 * first line of a cause is full, interval 0 remembers nothing, and the tables stay at the cap
 * (least recently used evicted) and are swept by age.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/repeat.h"
#include "unit.h"

#include <stdio.h>
#include <string.h>

#define MIN (60 * 1000LL)

static struct repeat_ref ref;

/* decide - repeat_decide at now_ms with a 10-minute interval. */
static int decide(const char *code, const char *subject, const char *instance, long long now_ms)
{
    memset(&ref, 0, sizeof(ref));
    return repeat_decide("relay", code, subject, instance, 1, 10 * MIN, now_ms,
                         (time_t)(1700000000 + now_ms / 1000), &ref);
}

static void test_interval(void)
{
    repeat_clear();
    const char *c = "relay.not_mynetworks", *s = "client 192.0.2.1";
    CHECK(decide(c, s, "", 1000) == 1); /* first time: full */
    CHECK(decide(c, s, "", 2000) == 0); /* repeat: short, pointing at the full one */
    CHECK(ref.times == 1);
    char want[16];
    time_t t = 1700000001;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(want, sizeof(want), "%H:%M:%S", &tm);
    CHECK_STR(ref.at, want);
    CHECK(decide(c, s, "", 5 * MIN) == 0 && ref.times == 2);
    CHECK(decide(c, s, "", 10 * MIN) == 0 && ref.times == 3); /* just inside */
    CHECK(decide(c, s, "", 10 * MIN + 1000) == 1);            /* the interval has passed */
    CHECK(decide(c, s, "", 10 * MIN + 2000) == 0 && ref.times == 1);
    /* Other subjects and other codes are explained on their own. */
    CHECK(decide(c, "client 192.0.2.2", "", 11 * MIN) == 1);
    CHECK(decide("relay.local_sender", s, "", 11 * MIN) == 1);
    CHECK(decide(c, "client 192.0.2.2", "", 11 * MIN + 1) == 0);
    CHECK(repeat_count(0) == 3);
    /* A different check with the same code text is another cause. */
    CHECK(repeat_decide("rdns", c, s, "", 1, 10 * MIN, 11 * MIN, 0, &ref) == 1);
}

static void test_messages(void)
{
    repeat_clear();
    const char *c = "dnsbl.listed", *s = "client 198.51.100.9";
    CHECK(decide(c, s, "m1", 0) == 1);    /* first recipient of m1 */
    CHECK(decide(c, s, "m1", 1000) == 0); /* its other recipients */
    CHECK(decide(c, s, "m1", 2000) == 0 && ref.times == 2);
    CHECK(decide(c, s, "m2", 3000) == 1);                   /* a new message: full again */
    CHECK(decide(c, s, "m1", 4000) == 0 && ref.times == 1); /* interleaved: m1 stays short */
    CHECK(decide(c, s, "m2", 5000) == 0 && ref.times == 2);
    /* Another cause in m1: its first line there is full. */
    CHECK(decide("dnsbl.domain_listed", "sender domain x.example", "m1", 6000) == 1);
    CHECK(repeat_count(1) == 3); /* (m1, listed), (m2, listed), (m1, domain_listed) */
}

static void test_off(void)
{
    repeat_clear();
    for (int i = 0; i < 5; i++)
        CHECK(repeat_decide("relay", "relay.not_mynetworks", "client 192.0.2.1", "m", 1, 0,
                            i * 1000, 0, &ref) == 1);
    CHECK(repeat_peek("relay", "relay.not_mynetworks", "client 192.0.2.1", "m", 0, 9000) == 0);
    CHECK(repeat_count(0) == 0 && repeat_count(1) == 0);
}

/* peek - repeat_peek with a 10-minute interval. */
static int peek(const char *code, const char *subject, const char *instance, long long now_ms)
{
    return repeat_peek("relay", code, subject, instance, 10 * MIN, now_ms);
}

static void test_peek(void)
{
    /* A check may ask first and skip composing the full text when the line will be short. */
    repeat_clear();
    const char *c = "relay.not_mynetworks", *s = "client 192.0.2.9";
    CHECK(peek(c, s, "m1", 0) == 0); /* never explained: compose */
    CHECK(decide(c, s, "m1", 0) == 1);
    CHECK(peek(c, s, "m1", 1000) == 1);     /* explained, and this message had it */
    CHECK(peek(c, s, "m2", 1000) == 0);     /* a new message: compose */
    CHECK(peek(c, s, "", 1000) == 1);       /* no message known */
    CHECK(peek(c, s, "m1", 10 * MIN) == 0); /* the interval is over */
    CHECK(repeat_count(1) == 1);            /* peeking marks nothing */
    /* Without composed text the line is short, referring to the last full one, and counted;
     * even when the interval ended between the question and the line. */
    CHECK(peek(c, s, "m1", 2000) == 1);
    CHECK(repeat_decide("relay", c, s, "m1", 0, 10 * MIN, 2000, 0, &ref) == 0 && ref.times == 1);
    CHECK(repeat_decide("relay", c, s, "m1", 0, 10 * MIN, 10 * MIN + 5, 0, &ref) == 0);
    CHECK(ref.times == 2 && ref.at[0] != 0);
    CHECK(decide(c, s, "m1", 10 * MIN + 10) == 1); /* composed: explained again */
    /* Forgotten altogether (swept): still short, with no time to refer to. */
    CHECK(repeat_decide("relay", c, "client 192.0.2.10", "", 0, 10 * MIN, 60 * MIN, 0, &ref) == 0);
    CHECK(ref.at[0] == 0 && ref.times == 0);
    CHECK(repeat_count(0) == 0); /* nothing remembered without a full line */
}

static void test_cap_and_sweep(void)
{
    repeat_clear();
    char subject[64], inst[64];
    int full = 0;
    for (int i = 0; i < REPEAT_MAX + 500; i++) {
        snprintf(subject, sizeof(subject), "client 10.0.%d.%d", i / 256, i % 256);
        snprintf(inst, sizeof(inst), "msg-%d", i);
        full += decide("relay.not_mynetworks", subject, inst, i);
    }
    CHECK(full == REPEAT_MAX + 500);
    CHECK(repeat_count(0) == REPEAT_MAX); /* capped */
    CHECK(repeat_count(1) == REPEAT_MAX);
    /* The least recently used went: the first subject is explained again; a recent one not. */
    CHECK(decide("relay.not_mynetworks", "client 10.0.0.0", "", REPEAT_MAX + 600) == 1);
    snprintf(subject, sizeof(subject), "client 10.0.%d.%d", (REPEAT_MAX + 499) / 256,
             (REPEAT_MAX + 499) % 256);
    CHECK(decide("relay.not_mynetworks", subject, "", REPEAT_MAX + 601) == 0);
    /* Entries unused for an interval are dropped as the table is used. */
    CHECK(decide("relay.not_mynetworks", "client 192.0.2.200", "", 30 * MIN) == 1);
    CHECK(repeat_count(0) == 1);
    CHECK(repeat_count(1) == 0);
    repeat_clear();
    CHECK(repeat_count(0) == 0);
}

int main(void)
{
    test_interval();
    test_messages();
    test_off();
    test_peek();
    test_cap_and_sweep();
    repeat_clear();
    return UNIT_END();
}
