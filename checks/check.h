/*
 * check.h - the interface every check implements, and what a check may ask of the daemon.
 *
 * The evaluator (policyd/evaluate.c) starts the configured checks of one request together and
 * answers from the first decisive verdict in configured order. A check either decides inside
 * run() (CHECK_DONE) or returns CHECK_PENDING and later calls check_call_done() from an event
 * callback - never from inside run(). If the request's deadline passes or its connection goes
 * away first, the evaluator calls the check's cancel() and the call is gone: the check must then
 * drop every pending DNS query or timer it holds for it. A check never answers 5xx for a
 * temporary problem: it asks for a deferral (check_call_defer) or gives no verdict.
 */
#ifndef CHECKS_CHECK_H
#define CHECKS_CHECK_H

#include "protocol/request.h"

struct config;
struct check_call;
struct dns;

enum check_status { CHECK_DONE, CHECK_PENDING };

struct check_def {
    const char *name; /* as written in `checks = ...`; also the log tag */
    /* Build the check's state from a freshly loaded configuration. Return NULL and write
     * "FILE:LINE: reason" (or "reason") into err to refuse the configuration. May be NULL. */
    void *(*configure)(const struct config *cfg, char *err, size_t errlen);
    void (*unconfigure)(void *state);
    enum check_status (*run)(struct check_call *call);
    void (*cancel)(struct check_call *call); /* may be NULL for checks that never pend */
    /* What a pending call waits for ("PTR lookup of 7.113.0.203.in-addr.arpa"), for the
     * deadline's log line; asked only then. May be NULL. */
    void (*describe)(const struct check_call *call, char *buf, size_t buflen);
};

/* The request being checked; valid until done or cancel. */
const struct request *check_call_request(const struct check_call *call);
/* The configuration the request started with (a reload does not change it under a check). */
const struct config *check_call_config(const struct check_call *call);
/* This check's state from configure(). */
void *check_call_state(const struct check_call *call);
/* Private data of the check for this call (e.g. its pending DNS work). */
void check_call_set_data(struct check_call *call, void *data);
void *check_call_data(const struct check_call *call);
/* The event base, for checks that start asynchronous work. */
struct event_base *check_call_base(const struct check_call *call);
/* The shared DNS engine (policyd/dns/dns.h): every check's DNS goes through it and its cache. */
struct dns *check_call_dns(const struct check_call *call);

/*
 * Verdicts. cause and fix are plain sentences for the diagnosis log line ("client 203.0.113.7
 * is not in mynetworks (127.0.0.0/8)"; "add the network to mynetworks"). The action is what the
 * reply carries when the check is in enforce mode; in warn mode the evaluator logs "would
 * reject" and answers DUNNO. Calling one of these again replaces the earlier verdict.
 */
void check_call_reject(struct check_call *call, const char *action, const char *cause,
                       const char *fix);
/* A temporary problem: the configured temporary action (4xx / DEFER / DUNNO), never 5xx. */
void check_call_defer(struct check_call *call, const char *action, const char *cause,
                      const char *fix);
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
/* An asynchronous check has finished (with or without a verdict). Never from inside run().
 * The call may be freed before this returns: do not touch it afterwards. */
void check_call_done(struct check_call *call);

#endif
