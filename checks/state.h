/*
 * state.h - the one state store the ratelimit and greylist checks share (policyd/store/).
 * Acquired by a check's start() (on the loop), released by its unconfigure(): a configuration
 * whose state_* settings equal a running one's shares its store, so a reload keeps the store
 * and nothing in flight is lost; a store is closed only when no configuration holds it, i.e.
 * when the last request using it is answered.
 */
/* SPDX-License-Identifier: MIT */
#ifndef CHECKS_STATE_H
#define CHECKS_STATE_H

#include <stddef.h>

struct config;
struct event_base;
struct store;

/* state_options - cfg's store options (strings point into cfg). */
struct store_options;
void state_options(const struct config *cfg, struct store_options *o);

/* state_check_spec - configure()'s check of state_store: 0, or -1 with "FILE:LINE: state_store:
 * reason" in err. */
int state_check_spec(const struct config *cfg, char *err, size_t errlen);

/* state_acquire - the store of cfg's state_* settings, opened now or shared; NULL with a reason
 * in err. Pair with state_release. On the loop. */
struct store *state_acquire(const struct config *cfg, struct event_base *base, char *err,
                            size_t errlen);

/* state_release - one holder less; the last closes the store. NULL ok. */
void state_release(struct store *s);

/* state_log_stats - one line of counters per open store ("state store statistics: ..."),
 * beside the daemon's own statistics. */
void state_log_stats(void);

#endif
