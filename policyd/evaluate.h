/*
 * evaluate.h - run the configured checks on one request and decide the answer.
 *
 * All checks start together, except one that waits for others it names (check_def.after; it
 * starts once they have finished, and reads their findings); the answer is the first decisive
 * verdict in configured order, as soon as every check before it has finished. A per-request
 * deadline guarantees an answer: when it passes, late checks are cancelled and fallback_action is
 * answered. Every decision that is not DUNNO is logged as one diagnosis line keyed like Postfix's
 * own (queue id or NOQUEUE), with a cause code (checks/causes.c); repeats of a cause explained
 * lately are logged short. The checks' work that lasts as long as a configuration (timers, periodic
 * lookups) is started and stopped here too, by whoever makes a configuration active (main.c, the
 * reload).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_EVALUATE_H
#define POLICYD_EVALUATE_H

#include <stddef.h>

struct event_base;
struct config;
struct request;
struct evaluation;
struct dns;

/* Called once when an evaluation that did not finish inside evaluate_start() finishes. */
typedef void (*evaluate_done_fn)(struct evaluation *ev, void *arg);

/*
 * evaluate_start - evaluate req (ownership passes to the evaluation) under cfg (a reference is
 * taken), with dns as the checks' DNS engine (may be NULL when no configured check uses DNS). If
 * every check decided synchronously the evaluation is finished on return (evaluate_finished() == 1)
 * and done is never called; otherwise done is called later from the event loop, never before this
 * returns. Never NULL.
 */
struct evaluation *evaluate_start(struct event_base *base, struct dns *dns, struct config *cfg,
                                  struct request *req, evaluate_done_fn done, void *arg);

/* evaluate_finished - 1 once the answer is known. */
int evaluate_finished(const struct evaluation *ev);

/* evaluate_action - the answer ("DUNNO", "554 5.7.1 ..."); valid until evaluate_free. */
const char *evaluate_action(const struct evaluation *ev);

/* evaluate_free - cancel whatever is pending (no callback runs afterwards) and free. NULL ok. */
void evaluate_free(struct evaluation *ev);

/*
 * evaluate_start_checks - cfg is about to take requests on base (dns: the checks' DNS engine,
 * may be NULL): start each configured check's configuration-long work (check_def.start), each
 * given its own state in previous, the configuration cfg replaces (NULL at start-up), to take
 * over from. Call it on the loop, before making cfg active; then evaluate_stop_checks(previous).
 * Returns 0, or -1 with "NAME check: reason" in err and nothing left started. No check's
 * callback runs before this returns. Never for a configuration that is only tested (-t, doctor).
 */
int evaluate_start_checks(const struct config *cfg, const struct config *previous,
                          struct event_base *base, struct dns *dns, char *err, size_t errlen);

/* evaluate_stop_checks - cfg takes no new requests (replaced, or the daemon stops): stop its
 * checks' timers and lookups; requests still using cfg are answered from what the checks know.
 * Before the DNS engine is freed. Harmless on a configuration never started. NULL ok. */
void evaluate_stop_checks(const struct config *cfg);

/* evaluate_connection_closed - the policy connection numbered connection (request_connection)
 * has closed: the active configuration's checks hear it (check_def.closed). On the loop. */
void evaluate_connection_closed(unsigned long long connection);

#endif
