/*
 * check.h - the interface every check implements, and what a check may ask of the daemon.
 *
 * The evaluator (policyd/evaluate.c) starts the configured checks of one request together and
 * answers from the first decisive verdict in configured order. A check that uses what others
 * found (check_def.after, check_call_finding) starts once they have finished. A check either
 * decides inside
 * run() (CHECK_DONE) or returns CHECK_PENDING and later calls check_call_done() from an event
 * callback - never from inside run(). If the request's deadline passes or its connection goes
 * away first, the evaluator cancels the call: cancel() runs (once) and the call's data is freed
 * with the function handed over with it, so pending DNS queries or timers kept in that data
 * are dropped by that function. A check never answers 5xx for a temporary problem: it asks for
 * a deferral (check_call_defer) or gives no verdict.
 *
 * Lifetimes: configure() builds the check's state when a configuration loads (at start-up as
 * root, on reload in the loader thread, and for `policyd -t` and the doctor); start() and
 * stop() bracket the time that configuration takes new requests on the event loop (never for
 * -t or the doctor); unconfigure() frees the state when the last request using it is gone.
 *
 * Adding a check:
 *   1. checks/NAME.c defines `const struct check_def NAME_check` (name "NAME"); everything else
 *      in it is static. It includes this header and the layers below the core (policyd/lib,
 *      maps, dns, mail, protocol) it needs, and reads its settings from struct config.
 *   2. Its settings go into policyd/settings.def under a "-- NAME check (checks/NAME.c) --"
 *      heading, named NAME_...; a setting NAME_mode (S_MODE) gives it warn mode.
 *   3. One line `X(NAME)` in REGISTRY_CHECKS in checks/registry.c, the only list of checks.
 *   4. Its cause codes (NAME.CAUSE, one per distinct explanation it gives) with their meaning
 *      and fix in checks/causes.c, the manual's table.
 *   5. What it finds that another check could use: check_call_publish under a CHECK_FINDING_*
 *      name documented below; a check that reads another's findings lists it in `after`.
 *   The Makefile finds the file by its folder; `checks = ..., NAME` turns it on.
 */
/* SPDX-License-Identifier: MIT */
#ifndef CHECKS_CHECK_H
#define CHECKS_CHECK_H

#include "protocol/request.h"

#include <stddef.h>

struct config;
struct check_call;
struct dns;
struct event_base;

enum check_status { CHECK_DONE, CHECK_PENDING };

/* What a check's report() calls once per sample of its gauges (see check_def.report): name
 * ("dkim_keys", shown as policyd_dkim_keys), help (one line), one label and its value, the
 * number. Samples of one name come together. */
typedef void check_report_fn(void *arg, const char *name, const char *help, const char *label,
                             const char *value, double number);

struct check_def {
    const char *name; /* as written in `checks = ...`; also the log tag */
    /* Build the check's state from a freshly loaded configuration. Return NULL and write
     * "FILE:LINE: reason" (or "reason") into err to refuse the configuration. May run off the
     * event loop (the reload thread): no events, no DNS here. May be NULL. */
    void *(*configure)(const struct config *cfg, char *err, size_t errlen);
    /* Free the state (stopping it first if it was started and not stopped). */
    void (*unconfigure)(void *state);
    /* Optional, on the event loop: cfg starts taking requests. Start the work that lives as
     * long as the configuration (timers, periodic lookups) on base and dns (dns may be NULL
     * when no DNS engine runs). previous is this check's state in the configuration cfg
     * replaces (NULL at start-up, or when that one did not run this check): take over what
     * should survive a reload from it; it keeps serving the requests still using it, and is
     * stopped right after. Returns 0, or -1 with a reason in err (the reload is refused). No
     * callback runs before this returns. */
    int (*start)(void *state, void *previous, struct event_base *base, struct dns *dns,
                 const struct config *cfg, char *err, size_t errlen);
    /* Optional: the configuration takes no new requests (replaced, or the daemon stops): cancel
     * every timer and lookup start() began. The state must stay usable by run() for requests
     * still in flight. Must be harmless on a state never started or already stopped. */
    void (*stop)(void *state);
    /* Optional: names of checks (NULL-terminated) whose findings (check_call_finding) this
     * check reads. Of these, the ones configured in the same `checks` list run first: this
     * check's run() is called once each of them has finished (with or without a verdict), at
     * once when none is configured. It never waits for a check that is not configured, and
     * its verdict still counts in its own place in `checks`. No chains: a check named in an
     * `after` list must have no `after` list itself (the configuration is refused), so there
     * is no cycle. While it waits, the deadline's log line says "waiting for spf, dnsbl"; if an
     * earlier check in `checks` has already refused the request, it is not run at all. */
    const char *const *after;
    enum check_status (*run)(struct check_call *call);
    /* Optional: the call was cancelled while pending (runs once, before its data is freed).
     * Only for checks whose pending work is not released by their data's free function. */
    void (*cancel)(struct check_call *call);
    /* What a pending call waits for ("PTR lookup of 7.113.0.203.in-addr.arpa"), for the
     * deadline's log line; asked only then. May be NULL. */
    void (*describe)(const struct check_call *call, char *buf, size_t buflen);
    /* Optional, on the event loop: the state's gauges for the metrics page, through emit(arg,
     * ...) (check_report_fn). Cheap (a scrape runs on the loop); no I/O. May be NULL. */
    void (*report)(void *state, check_report_fn *emit, void *arg);
    /* Optional, on the event loop: the policy connection numbered connection (see
     * check_call_connection) has closed, its requests answered or cancelled. Postfix's smtpd
     * keeps its policy connection across SMTP sessions and asks over it one request at a time,
     * so a check that follows messages by connection learns here that the last one is over.
     * Called on the state of the active configuration only (not on one a reload replaced), and
     * not when the daemon stops. Cheap; no callback into the core from inside it. May be NULL. */
    void (*closed)(void *state, unsigned long long connection);
};

/* The request being checked; valid until done or cancel. */
const struct request *check_call_request(const struct check_call *call);
/* The configuration the request started with (a reload does not change it under a check). */
const struct config *check_call_config(const struct check_call *call);
/* This check's state from configure(). */
void *check_call_state(const struct check_call *call);
/*
 * Private data of the check for this call (e.g. its pending DNS work). Ownership passes to the
 * call: the evaluator calls free_fn(data) exactly once when the call ends - done (after
 * run() returned CHECK_DONE, or inside check_call_done()), cancelled, or its evaluation freed.
 * free_fn must also drop whatever the data still has pending (dns_cancel, event_free). Setting
 * data again frees the earlier data first (unless it is the same pointer). free_fn may be NULL
 * for data the check frees itself.
 */
typedef void check_free_fn(void *data);
void check_call_set_data(struct check_call *call, void *data, check_free_fn *free_fn);
void *check_call_data(const struct check_call *call);
/* The policy connection the request came on: a number >= 1 that no other connection gets while
 * the daemon runs (0: the request came by none, e.g. in a unit test). One Postfix smtpd process
 * sends its requests one at a time over each connection it keeps (check_def.closed). */
unsigned long long check_call_connection(const struct check_call *call);
/* The event base, for checks that start asynchronous work. */
struct event_base *check_call_base(const struct check_call *call);
/* The shared DNS engine (policyd/dns/dns.h): every check's DNS goes through it and its cache. */
struct dns *check_call_dns(const struct check_call *call);

/*
 * Verdicts. code is the cause code, a static string literal "CHECK.CAUSE" (relay.not_mynetworks)
 * naming one distinct explanation; every code is documented once, with its meaning and fix, in
 * checks/causes.c (the manual's policyd-causes(7) is made from it, and test_causes.sh fails on a
 * code used here but missing there, or documented but unused). cause and fix are plain
 * sentences for the diagnosis log line ("client 203.0.113.7 is not in mynetworks
 * (127.0.0.0/8)"; "add the network to mynetworks"). Calling one of these again replaces the
 * earlier verdict.
 *
 * The line: "KEY: CHECK: reject: ACTION; cause_code=CODE; cause=CAUSE; fix=FIX". A cause that was
 * explained lately (diagnosis_repeat_interval) for the same subject - the client, unless
 * check_call_subject says otherwise - is logged short, pointing at the full line: "KEY: CHECK:
 * reject: 554 5.7.1; cause_code=CODE; as explained at 16:38:58 for client 192.0.2.1, 7 times
 * since"; the first line of a cause in each message (Postfix's instance) is always in full.
 *
 * check_call_action - act as the configured action says: a 5xx/REJECT is a refusal, a 4xx/DEFER
 * a deferral (answered when this check is the first decisive one in enforce mode; in warn mode
 * the evaluator logs "would reject" and answers DUNNO); PREPEND adds a header; WARN/INFO logs
 * the diagnosis and leaves the decision to the other checks; DUNNO gives no verdict (a note).
 */
void check_call_action(struct check_call *call, const char *code, const char *action,
                       const char *cause, const char *fix);
/* A temporary problem: the configured temporary action (4xx / DEFER / DUNNO), never 5xx. */
void check_call_defer(struct check_call *call, const char *code, const char *action,
                      const char *cause, const char *fix);
/* What this call's diagnoses are about, for telling repeats apart: what is "sender domain",
 * "HELO name", "recipient", ..., name its value. The default is the client address ("client
 * 192.0.2.1"). Set it before the verdict; copied. */
void check_call_subject(struct check_call *call, const char *what, const char *name);
/* 1 when a diagnosis of code about this call's subject would be logged short now (explained
 * lately, and not the first line of this cause in this message): the check may then skip
 * composing its cause and fix and pass NULL for both to the verdict call, which is then always
 * logged short. Ask right before the verdict (after check_call_subject). 0: compose as usual. */
int check_call_explained(struct check_call *call, const char *code);
/* Count one occurrence of code that is no diagnosis line of this request (a DNS list that
 * refuses our resolver, logged once an hour): the counters by cause code see it. */
void check_call_count(struct check_call *call, const char *code);
/* PREPEND a header (ignored at END-OF-MESSAGE, where Postfix would drop it). */
void check_call_prepend(struct check_call *call, const char *header);
/* PREPEND a header that belongs once to a message (e.g. Received-SPF): sent(state, key), with
 * this check's configure() state, is called when, and only when, the reply to this request
 * carries the header (another check's reject or defer wins over it). */
typedef void check_sent_fn(void *state, const char *key);
void check_call_prepend_once(struct check_call *call, const char *header, check_sent_fn *sent,
                             const char *key);
/* A note for the verbose log (-v): formatted only when verbose logging is on. */
void check_call_note(struct check_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A diagnosis line outside a verdict (an SPF softfail answered with a header), keyed like the
 * verdict lines so that a grep for the message finds it, logged at once at info level, in full
 * or short as above: "KEY: CHECK: note; cause_code=CODE; cause=CAUSE; fix=FIX". */
void check_call_log(struct check_call *call, const char *code, const char *cause, const char *fix);
/* check_call_client_address - 1 if the request's client_address is an IP address; else 0, and
 * the request.bad_client_address diagnosis is logged: a check that needs the address then
 * gives no verdict (a garbled address is nobody's DNS record to blame). */
int check_call_client_address(struct check_call *call);
/*
 * Findings: what a check found about this request, for the checks that run after it
 * (check_def.after), so that they need no DNS lookups of their own. A finding is published
 * whatever the check's mode (warn too) and whether or not it gives a verdict; a check that
 * skips the request (mynetworks, an exempted client, ...) publishes nothing.
 *
 * check_call_publish - record value under name for the rest of this request's evaluation
 * (both copied; publishing a name again replaces its value). Names are "CHECK.WHAT", one of
 * the CHECK_FINDING_* below; a check publishes only its own.
 * check_call_finding - the value of name, or NULL: the check that publishes it is not
 * configured, skipped this request, found nothing of that kind, or (asked by a check that
 * does not wait for it) has not got that far yet. Valid
 * until the evaluation ends (do not keep it past check_call_done) or the name is published
 * again.
 */
void check_call_publish(struct check_call *call, const char *name, const char *value);
const char *check_call_finding(const struct check_call *call, const char *name);

/*
 * The findings the checks publish (use the names through these macros):
 *   spf.result       pass, fail, softfail, neutral, none, temperror or permerror, for the
 *                    identity the spf check answered on: the MAIL FROM domain (the HELO name
 *                    for the null sender, or when a HELO fail is answered by
 *                    spf_helo_fail_action)
 *   spf.domain       the domain that was evaluated
 *   spf.identity     mailfrom or helo
 *   dnsbl.score      the weighted score of dnsbl_sites and rhsbl_sites, decimal ("0" when not
 *                    listed; lists that failed or were skipped count nothing), once every list
 *                    has answered
 *   dnsbl.threshold  dnsbl_threshold, decimal
 *   dnsbl.listed     the zones that listed the client or its domains with a positive weight,
 *                    separated by spaces ("" when none)
 *   rdns.ptr         confirmed, unconfirmed (PTR names, none resolving back), none (no PTR)
 *                    or tempfail
 *   rdns.name        the forward-confirmed name (with rdns.ptr = confirmed)
 *   rdns.generic     why that name looks generic ("it contains 'dsl'"); absent when it does
 *                    not
 */
#define CHECK_FINDING_SPF_RESULT "spf.result"
#define CHECK_FINDING_SPF_DOMAIN "spf.domain"
#define CHECK_FINDING_SPF_IDENTITY "spf.identity"
#define CHECK_FINDING_DNSBL_SCORE "dnsbl.score"
#define CHECK_FINDING_DNSBL_THRESHOLD "dnsbl.threshold"
#define CHECK_FINDING_DNSBL_LISTED "dnsbl.listed"
#define CHECK_FINDING_RDNS_PTR "rdns.ptr"
#define CHECK_FINDING_RDNS_NAME "rdns.name"
#define CHECK_FINDING_RDNS_GENERIC "rdns.generic"

/* An asynchronous check has finished (with or without a verdict). Never from inside run().
 * The call's data is freed, and the call may be, before this returns: touch neither after. */
void check_call_done(struct check_call *call);

#endif
