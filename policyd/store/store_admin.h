/*
 * store_admin.h - the rate-limit counters without the daemon, for `policyd ratelimit show |
 * top | reset | block | unblock`: synchronous (a command-line tool may wait), reading and
 * writing the store directly. LMDB: the daemon's environment, opened beside it (writers take
 * LMDB's lock in turn; each command is one short transaction, synced). Redis: a blocking
 * connection with options.timeout_ms (at least 1 s) per command, running the daemon's own
 * scripts, so the arithmetic and the clock (TIME) are the daemon's.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_STORE_STORE_ADMIN_H
#define POLICYD_STORE_STORE_ADMIN_H

#include "policyd/store/store.h"

#define STORE_ADMIN_WINDOWS 16

struct store_admin;

struct store_rl_window {
    int64_t period_ms, limit; /* the limit as last requested by the daemon */
    int64_t used, first_ms;   /* units counted now; first arrival still counted */
    int64_t expires_ms;       /* when the newest units stop counting */
};

struct store_rl_info {
    char key[512];         /* the readable key ("" if the record predates it) */
    int64_t now_ms;        /* the store's clock */
    int64_t blocked_until; /* 0: not blocked */
    double ratio;          /* the highest used / limit of its windows (top's order) */
    int nwindows;
    struct store_rl_window w[STORE_ADMIN_WINDOWS];
};

/* store_admin_open - the store of o->spec, synchronously. NULL with the reason in err. */
struct store_admin *store_admin_open(const struct store_options *o, char *err, size_t errlen);

/* store_admin_close - NULL ok. */
void store_admin_close(struct store_admin *a);

/* store_admin_show - the counters of key: 1 found, 0 none, -1 error (err). */
int store_admin_show(struct store_admin *a, const char *key, struct store_rl_info *info, char *err,
                     size_t errlen);

/* store_admin_reset - forget key's counters and block: 1 removed, 0 none, -1 error. */
int store_admin_reset(struct store_admin *a, const char *key, char *err, size_t errlen);

/* store_admin_block - refuse every reservation of key for duration_ms (>= 1): 0, or -1. */
int store_admin_block(struct store_admin *a, const char *key, int64_t duration_ms, char *err,
                      size_t errlen);

/* store_admin_unblock - lift a block: 1 was blocked, 0 was not, -1 error. */
int store_admin_unblock(struct store_admin *a, const char *key, char *err, size_t errlen);

/*
 * store_admin_top - the n keys nearest their limits (highest used / limit first) into out[]
 * (room for n), their number in *count. 0, or -1 with err. Reads every rate-limit record:
 * LMDB in one read transaction, Redis by SCAN over the prefix.
 */
int store_admin_top(struct store_admin *a, size_t n, struct store_rl_info *out, size_t *count,
                    char *err, size_t errlen);

#endif
