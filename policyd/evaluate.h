/*
 * evaluate.h - run the configured checks on one request and decide the answer.
 *
 * All checks start together; the answer is the first decisive verdict in configured order, as
 * soon as every check before it has finished. A per-request deadline guarantees an answer:
 * when it passes, late checks are cancelled and fallback_action is answered. Every decision that
 * is not DUNNO is logged as one diagnosis line keyed like Postfix's own (queue id or NOQUEUE).
 */
#ifndef POLICYD_EVALUATE_H
#define POLICYD_EVALUATE_H

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

#endif
