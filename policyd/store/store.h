/*
 * store.h - the state store of rate limits, greylisting and notify-once: one asynchronous
 * interface on the event loop, two back ends chosen by a spec string.
 *
 *   lmdb:/var/lib/policyd/state.lmdb    one host (default); survives restarts
 *   redis:unix:/run/redis/redis.sock     several MX share one Redis (one clock: Redis TIME)
 *   redis:inet:HOST:PORT                 HOST a name (resolved once, at open), v4 or [v6]
 *
 * Every operation answers through its callback exactly once, later, from the event loop, never
 * before the call returns (LMDB answers ride a zero-delay event), unless store_cancel() comes
 * first. A failure is an answer too (status STORE_FAIL with a reason), within
 * options.timeout_ms on Redis: the caller applies its failure policy; the store never blocks
 * the loop and never hides a failure. A timed-out Redis operation has an unknown outcome
 * (Redis may still run it: a reservation may have been recorded); its late reply is dropped. Keys
 * are hashed (SHA-256, 128 bits) before they reach the store: no address appears in Redis KEYS or
 * an LMDB dump; a rate-limit record keeps its readable key inside its value, for `show` and `top`
 * (store_admin.h), with the same lifetime. Every record expires (Redis TTL; LMDB: swept). The
 * rate-limit arithmetic is window.h's.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_STORE_STORE_H
#define POLICYD_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct store;
struct store_op;

#define STORE_NEVER INT64_C(-1) /* a retry time that never comes (request > limit) */
#define STORE_MAX_LIMITS 8      /* limits in one rate-limit request */

struct store_options {
    const char *spec;                /* as above */
    int redis_db;                    /* SELECT (0: none) */
    const char *redis_password_file; /* AUTH with its first line; NULL or "": none */
    const char *key_prefix;          /* Redis key names start with it ("pd:"; 64 at most) */
    long timeout_ms;                 /* per Redis operation, armed by us */
    int failure_threshold;           /* consecutive failures that open the circuit breaker */
    long retry_interval_ms;          /* breaker cool-down before one trial; reconnect backoff cap */
    size_t lmdb_map_size;            /* bytes; doubled (with a warning) when full */
    long lmdb_sync_interval_ms;      /* the sync thread's period */
    long sweep_interval_ms;          /* LMDB expiry sweep tick */
    unsigned sweep_batch;            /* records visited per tick */
    /* on_state - the store went down (up = 0: breaker opened) or came back (up = 1); once each
     * way, from the loop; detail says why. The store also logs one line each way. NULL ok. */
    void (*on_state)(void *arg, int up, const char *detail);
    void *state_arg;
    /* clock_ms - tests only: the clock every decision uses, in ms (Redis scripts then take it
     * as an argument instead of TIME). NULL: the real clock. */
    int64_t (*clock_ms)(void *arg);
    void *clock_arg;
};

/* store_options_default - the defaults: lmdb:/var/lib/policyd/state.lmdb, prefix "pd:",
 * timeout 50 ms, breaker after 3 failures, 5 s cool-down, 256 MiB map, sync every 1 s, sweep
 * 1,000 records every 1 s. */
void store_options_default(struct store_options *o);

/* store_spec_check - 0 if spec is a well-formed store spec, else -1 with the reason in err
 * (for the configuration parser; opens nothing). */
int store_spec_check(const char *spec, char *err, size_t errlen);

/*
 * store_open - a store on base (options copied; the password file read now). LMDB: opens or
 * creates the environment, starts the sync thread and the sweep timer. Redis: resolves HOST,
 * starts connecting (an unreachable Redis is not an error here: operations fail until it
 * answers). NULL with the reason in err (bad spec, unreadable password file, LMDB cannot open).
 */
struct store *store_open(struct event_base *base, const struct store_options *o, char *err,
                         size_t errlen);

/* store_close - cancel every pending operation (no callback runs), flush LMDB to disk, stop
 * the thread, close. NULL ok. Not from inside a store callback. */
void store_close(struct store *s);

/* store_name - the spec, for log lines. */
const char *store_name(const struct store *s);

/* store_cancel - the callback of op will not run; the handle is freed. NULL ok. Not after the
 * callback ran (the handle is gone by then). */
void store_cancel(struct store_op *op);

enum store_status { STORE_OK, STORE_FAIL };

/* ---- rate limits ---- */

struct store_limit {
    int64_t limit;     /* units (0 .. 2^47) */
    int64_t period_ms; /* distinct within a request */
};

struct store_usage {
    int64_t limit, period_ms;
    int64_t used;     /* units counted in the window after the operation */
    int64_t first_ms; /* first arrival still counted ("since when"), 0 if none */
    int64_t fit_ms; /* when the request fits under this limit: now_ms if it does, or STORE_NEVER */
    int over;       /* reserve: this limit refused; adjust: this limit is exceeded */
};

struct store_rl_result {
    enum store_status status;
    const char *detail; /* STORE_FAIL: why ("timeout after 50 ms", "circuit open", ...) */
    int allowed;        /* reserve: recorded in every window; adjust: every limit within bounds */
    int blocked;        /* refused by a block (store_admin_block) */
    int64_t now_ms;     /* the store's clock at the decision (Redis: TIME) */
    int64_t at_ms;      /* when the units were recorded: pass to store_rl_adjust to release */
    int64_t retry_ms;   /* refused: earliest time the same request is admitted (exact: refused one
                         * ms earlier), STORE_NEVER if it never fits; else now_ms */
    int64_t retry_after_ms; /* retry_ms - now_ms, or STORE_NEVER */
    int nlimits;
    struct store_usage limits[STORE_MAX_LIMITS]; /* in request order */
};

typedef void (*store_rl_cb)(const struct store_rl_result *r, void *arg);

/*
 * store_rl_reserve - record `units` for key in every window of limits (at most limit in any
 * period_ms), all or nothing: a refused request records nothing. units 0 only looks. key is
 * the readable key ("user-rcpt:sasl_username:alice@example.com"); it is hashed for the key
 * name and kept inside the value. Never NULL; cb runs exactly once, later (see above).
 */
struct store_op *store_rl_reserve(struct store *s, const char *key,
                                  const struct store_limit *limits, int nlimits, int64_t units,
                                  store_rl_cb cb, void *arg);

/*
 * store_rl_adjust - true-up a reservation: delta < 0 releases -delta units of the reservation
 * recorded at at_ms (result at_ms of store_rl_reserve; nothing if it already left the window),
 * delta > 0 records delta more units now, unconditionally (for a checked addition, reserve).
 * result.allowed is 0 when a limit is exceeded afterwards. Never NULL; cb later, once.
 */
struct store_op *store_rl_adjust(struct store *s, const char *key, const struct store_limit *limits,
                                 int nlimits, int64_t delta, int64_t at_ms, store_rl_cb cb,
                                 void *arg);

/* ---- greylisting ---- */

enum store_grey_state {
    STORE_GREY_NEW,     /* first seen now: retry_ms is the earliest retry */
    STORE_GREY_EARLY,   /* seen at first_ms, retried before retry_ms */
    STORE_GREY_PASS,    /* retried in time (passed_ms: first pass); the pass TTL is refreshed */
    STORE_GREY_RESTART, /* came back after the retry window: restarted as new (first_ms = now) */
    STORE_GREY_AWL      /* the client has awl_passes passes: triplet not looked at */
};

struct store_grey_params {
    int64_t delay_ms;        /* earliest retry after first seen */
    int64_t retry_window_ms; /* how long after the delay a retry passes */
    int64_t pass_ttl_ms;     /* a passed triplet is kept this long after its last use */
    const char *awl_key;     /* the client's auto-whitelist key (NULL: no AWL) */
    int awl_passes;          /* passes that whitelist the client (0: no AWL) */
    int64_t awl_ttl_ms;      /* the counter is kept this long after the last pass */
    int64_t awl_interval_ms; /* at most one pass counted per interval (postgrey: 1 h) */
};

struct store_grey_result {
    enum store_status status;
    const char *detail;
    enum store_grey_state state;
    int64_t now_ms, first_ms, retry_ms, passed_ms;
    int64_t awl_count; /* the client's passes after this one */
};

typedef void (*store_grey_cb)(const struct store_grey_result *r, void *arg);

/* store_grey_check - one atomic step for the triplet key (and the client's AWL counter) under
 * p (copied). Never NULL; cb later, once. */
struct store_op *store_grey_check(struct store *s, const char *triplet,
                                  const struct store_grey_params *p, store_grey_cb cb, void *arg);

/* ---- notify once ---- */

struct store_once_result {
    enum store_status status;
    const char *detail;
    int first; /* 1: this caller is the first within the interval, across every server sharing
                * the store; 0: someone was */
    int64_t now_ms;
};

typedef void (*store_once_cb)(const struct store_once_result *r, void *arg);

/* store_once - claim key for interval_ms (>= 1). Never NULL; cb later, once. */
struct store_op *store_once(struct store *s, const char *key, int64_t interval_ms, store_once_cb cb,
                            void *arg);

/* ---- counters for the metrics ---- */

struct store_stats {
    const char *backend;                /* "lmdb" | "redis" */
    int up;                             /* 1 unless the breaker is open */
    const char *breaker;                /* "closed" | "open" | "trial" */
    unsigned long long ops, ok, failed; /* operations asked, answered, failed (all causes) */
    unsigned long long timeouts;        /* failed by our per-operation timer */
    unsigned long long fast_fails;      /* failed at once: breaker open or not connected */
    unsigned long long late_replies;    /* replies after their timeout (or cancel), dropped */
    unsigned long long connects, connect_failures, state_changes;
    unsigned long long swept;    /* LMDB: expired records removed */
    unsigned long long map_size; /* LMDB: bytes */
    size_t inflight;             /* operations waiting for an answer */
};

/* store_stats - the counters now (s's own figures, copied). */
void store_stats(const struct store *s, struct store_stats *st);

#endif
