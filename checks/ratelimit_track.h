/*
 * ratelimit_track.h - the ratelimit check's memory of messages in progress: what each message
 * (Postfix's `instance`) reserved, which policy connection it came on, and when it ended
 * without END-OF-MESSAGE, so that its reservations can be given back.
 *
 * Ground (Postfix 3.x, smtpd.c and smtpd_check.c): smtpd sets `instance` to
 * "PID.SECONDS.MICROSECONDS.SEQNO" (hex) when it accepts MAIL FROM and clears it when the mail
 * transaction ends, however it ends (after DATA, RSET, a new MAIL refused, QUIT, a lost
 * client, a timeout). One smtpd process serves one SMTP session at a time and keeps one policy
 * connection per policy service text (smtpd_policy_service_max_idle, _max_ttl) across its
 * sessions, asking one request at a time and waiting for the answer. So on one policy
 * connection, a request that carries another instance (or none) means the message of the
 * previous one is over; and when the connection closes, so is its last message, unless it
 * goes on over a new connection (Postfix reconnects after a request limit or a failed
 * request; we close idle connections): then its next request brings it back and what was
 * given back is recorded again. The pid part of the instance is not used: pids repeat across
 * the Postfix hosts sharing one policyd, and on one host over time.
 *
 * A message that ended without END-OF-MESSAGE was not sent only if Postfix asks us at
 * END-OF-MESSAGE at all (smtpd_end_of_data_restrictions, which a master.cf listener may
 * override). That is learned per connection, from evidence: the connection carried an
 * END-OF-MESSAGE request, or one came (on any connection) for a message that connection
 * started. Until then ended messages wait on their connection (a few, bounded): the first
 * evidence gives their reservations back; a close without it keeps them counted until their
 * window passes, as without the wiring nothing can tell an aborted message from a sent one.
 * A connection on which an ended instance comes back is not one smtpd's (a proxy mixing
 * several): nothing ended on it is given back any more.
 *
 * Bounded: RATELIMIT_TRACK_MESSAGES messages (the oldest is forgotten first: its reservations
 * stay counted), RATELIMIT_TRACK_PENDING ended messages per connection, one record per open
 * connection. Pure bookkeeping on the event loop: no store, no events; reservations are given
 * back through the function handed to ratelimit_track_new. Shared by the configurations that
 * use one store (refcounted).
 */
/* SPDX-License-Identifier: MIT */
#ifndef CHECKS_RATELIMIT_TRACK_H
#define CHECKS_RATELIMIT_TRACK_H

#include "policyd/store/store.h"

#include <stdint.h>

#define RATELIMIT_TRACK_RULES 16      /* rules per configuration, at most */
#define RATELIMIT_TRACK_MESSAGES 4096 /* messages remembered */
#define RATELIMIT_TRACK_PENDING 16    /* ended messages waiting per connection for the evidence */

struct ratelimit_track;

/* One message in progress. The fields below are the check's; the rest is the module's. */
struct ratelimit_msg {
    unsigned counted;                     /* bit per rule: the message was counted (messages) */
    int units[RATELIMIT_TRACK_RULES];     /* recipients reserved per rule (END-OF-MESSAGE) */
    int64_t at_ms[RATELIMIT_TRACK_RULES]; /* the store time of the last of them */
    int released; /* its reservations were given back when its connection closed; it came back:
                   * record them again (ratelimit_track_foreach) and call _restored */
};

/* The function that gives back units of key, reserved under limits at at_ms (store time). */
typedef void ratelimit_track_give_fn(void *arg, int rule, const char *key,
                                     const struct store_limit *limits, int nlimits, int64_t units,
                                     int64_t at_ms);

/* ratelimit_track_new - an empty memory; give(arg, ...) gives reservations back. Never NULL. */
struct ratelimit_track *ratelimit_track_new(ratelimit_track_give_fn *give, void *arg);
/* ratelimit_track_hold - one more holder; ratelimit_track_free - one less (the last frees all,
 * giving nothing back). NULL ok. */
void ratelimit_track_hold(struct ratelimit_track *t);
void ratelimit_track_free(struct ratelimit_track *t);

/*
 * ratelimit_track_request - a request arrived on connection (0: none known) for instance (""
 * outside a mail transaction); eom: it is END-OF-MESSAGE. Ends the connection's previous
 * message if the instance changed, takes the evidence of END-OF-MESSAGE wiring. Returns the
 * message of instance, created when create is 1 (RCPT), else NULL when unknown; valid until
 * the next call into this module.
 */
struct ratelimit_msg *ratelimit_track_request(struct ratelimit_track *t,
                                              unsigned long long connection, const char *instance,
                                              int eom, int create);

/* ratelimit_track_find - the message of instance, or NULL (forgotten, finished, unknown). */
struct ratelimit_msg *ratelimit_track_find(struct ratelimit_track *t, const char *instance);

/* ratelimit_track_reserved - units of key were reserved for m under rule, at store time at_ms
 * (limits copied): given back if m ends without END-OF-MESSAGE. */
void ratelimit_track_reserved(struct ratelimit_track *t, struct ratelimit_msg *m, int rule,
                              const char *key, const struct store_limit *limits, int nlimits,
                              int64_t units, int64_t at_ms);

/* ratelimit_track_foreach - each reservation of m: fn(arg, rule, key, limits, nlimits, units,
 * at_ms). */
void ratelimit_track_foreach(const struct ratelimit_msg *m, ratelimit_track_give_fn *fn, void *arg);

/* ratelimit_track_restored - m's reservations are recorded again (a released message came
 * back); the one of rule and key at at_ms (store time; 0: unknown, it stays as it was). */
void ratelimit_track_restored(struct ratelimit_track *t, struct ratelimit_msg *m, int rule,
                              const char *key, int64_t at_ms);

/* ratelimit_track_finish - m reached END-OF-MESSAGE (trued up by the check): forget it. */
void ratelimit_track_finish(struct ratelimit_track *t, struct ratelimit_msg *m);

/* ratelimit_track_wired - 1 if connection has shown that Postfix asks at END-OF-MESSAGE. */
int ratelimit_track_wired(struct ratelimit_track *t, unsigned long long connection);

/* ratelimit_track_closed - connection closed: its last message ends (given back when the
 * wiring is known, remembered in case it comes back); what waited for evidence stays counted. */
void ratelimit_track_closed(struct ratelimit_track *t, unsigned long long connection);

#endif
