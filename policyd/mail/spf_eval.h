/*
 * spf_eval.h - RFC 7208 check_host(): record selection, strict syntax, mechanisms, modifiers,
 * macros, and the processing limits, evaluated over DNS answers the caller supplies.
 *
 * The evaluator never resolves anything and never waits. It asks the caller's get() for each
 * answer it needs; an answer that is not there yet is reported to want() and the evaluation
 * stops with pending set. The caller fetches what was wanted (asynchronously, through the
 * shared DNS engine) and runs the evaluation again from the start: each pass goes further,
 * and a pass that needs nothing new gives the result. Besides the misses that stop a pass,
 * want() also hears of names the record makes likely (include and redirect targets), so that
 * most evaluations finish in two or three passes.
 *
 * Hostile data is expected: records are parsed strictly (any syntax error anywhere is a
 * permerror, as the RFC says), expansions are bounded, expanded names are cut to 253 bytes,
 * and the limits count across includes and redirects: max_lookups DNS-querying terms,
 * max_void lookups that find nothing, 10 MX names per mx term, 10 PTR names per ptr term.
 */
/* SPDX-License-Identifier: MIT */
#ifndef CHECKS_SPF_EVAL_H
#define CHECKS_SPF_EVAL_H

#include "policyd/dns/dns.h"

#include <stddef.h>

enum spf_result {
    SPF_NONE,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR
};

struct spf_dns {
    /* The answer for (type, name), or NULL if the caller has none yet. The evaluator does not
     * keep it past the evaluation. */
    const struct dns_result *(*get)(void *arg, int type, const char *name);
    /* An answer the evaluation needs (or will likely need): fetch it, then evaluate again. */
    void (*want)(void *arg, int type, const char *name);
    void *arg;
};

struct spf_input {
    const char *ip;       /* the client address (IPv4-mapped IPv6 is taken as IPv4) */
    const char *sender;   /* the identity: "local@domain", or "postmaster@helo" for HELO */
    const char *helo;     /* the HELO/EHLO name (for %{h}) */
    const char *receiver; /* this host's name (for %{r}) */
    int max_lookups;      /* DNS-querying terms across the evaluation (RFC: 10) */
    int max_void;         /* lookups that found nothing (RFC: 2) */
};

struct spf_outcome {
    enum spf_result result;
    int pending;             /* 1: answers were wanted; evaluate again once they are in */
    char domain[256];        /* the identity's domain */
    char mechanism[256];     /* the term that decided ("ip4:192.0.2.0/24", "default") */
    char problem[256];       /* why permerror / temperror */
    char record[256];        /* the record that decided (shortened) */
    char record_domain[256]; /* whose record that is */
    char explanation[512];   /* fail: the exp= text, expanded; "" when there is none */
    int lookups, voids;      /* what the evaluation used */
};

/* spf_check_host - evaluate the identity's domain for the client. Returns out->result
 * (meaningless while out->pending). */
enum spf_result spf_check_host(const struct spf_input *in, const struct spf_dns *dns,
                               struct spf_outcome *out);

/* spf_record_is_spf1 - text is an SPF record ("v=spf1" then a space or the end, any case),
 * which record selection (RFC 7208 4.5) counts. */
int spf_record_is_spf1(const char *text, size_t len);

/* spf_record_check - the strict syntax check alone, for tests and fuzzing: 0 if text is a
 * valid "v=spf1" record, else -1 with the reason in err. */
int spf_record_check(const char *text, size_t len, char *err, size_t errlen);

/* spf_result_name - "pass", "fail", "softfail", "neutral", "none", "temperror", "permerror". */
const char *spf_result_name(enum spf_result r);

#endif
