/*
 * store_int.h - what store.c shares with its back ends (store_lmdb.c, store_redis.c) and the
 * admin entry points (store_admin.c): the operation record, the back-end table, key hashing,
 * the clock, the delivery queue. Not for callers outside policyd/store/.
 *
 * An operation is owned by the core from store_*() until its callback has run (or it was
 * cancelled); a back end holds it while queued or in flight and hands it back with
 * store_op_done(). A back end never runs a callback inside a store_*() call: a failure found
 * there goes through store_op_fail_later() (the zero-delay delivery event).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_STORE_STORE_INT_H
#define POLICYD_STORE_STORE_INT_H

#include "policyd/store/store.h"
#include "policyd/store/window.h"

#include <stdarg.h>
#include <sys/queue.h>

#define STORE_HASH_LEN 16  /* bytes of SHA-256 kept for a key name */
#define STORE_NAME_MAX 512 /* readable key kept in a rate-limit record (longer: cut) */

/* Record kinds: the first byte of an LMDB key, a tag in a Redis key name. */
enum store_kind { KIND_RL = 'R', KIND_GREY = 'G', KIND_AWL = 'A', KIND_ONCE = 'O' };

enum store_op_type { OP_RESERVE, OP_ADJUST, OP_GREY, OP_ONCE };
enum store_op_where { OP_NEW, OP_QUEUED, OP_INFLIGHT, OP_DELIVER };

struct store_op {
    struct store *s;
    enum store_op_type type;
    enum store_op_where where;
    TAILQ_ENTRY(store_op) link; /* in the back end's queue or the delivery queue */
    union {
        store_rl_cb rl;
        store_grey_cb grey;
        store_once_cb once;
    } cb;
    void *arg;
    void *pending; /* back end's in-flight record (Redis) */

    /* the request */
    unsigned char key[STORE_HASH_LEN];
    unsigned char awl[STORE_HASH_LEN];
    int has_awl;
    char *name; /* readable key (rate limits), owned */
    struct window_limit lims[WINDOW_MAX_LIMITS];
    int nlims;
    int64_t units; /* reserve: units; adjust: delta */
    int64_t at;
    struct store_grey_params grey; /* awl_key not kept (see awl) */
    int64_t interval;

    /* the answer */
    union {
        struct store_rl_result rl;
        struct store_grey_result grey;
        struct store_once_result once;
    } res;
    char detail[256];
};

TAILQ_HEAD(store_op_queue, store_op);

struct store_backend {
    const char *name;
    /* submit - take op (where = OP_NEW): queue or send it; never answer inside. */
    void (*submit)(struct store *s, struct store_op *op);
    /* cancel - forget op (OP_QUEUED or OP_INFLIGHT): no answer will come. */
    void (*cancel)(struct store *s, struct store_op *op);
    /* close - drop every queued and in-flight op without answering, free the back end. */
    void (*close)(struct store *s);
    void (*stats)(const struct store *s, struct store_stats *st);
};

struct store {
    struct event_base *base;
    struct store_options opt; /* strings below are our copies */
    char *spec, *prefix, *password;
    const struct store_backend *be;
    void *impl;
    struct store_op_queue deliver; /* answers waiting for the zero-delay event */
    struct event *deliver_ev;
    unsigned long long ops, ok, failed;
    size_t inflight;
};

/* store_now - the store's clock in ms (the test hook, else the real time). */
int64_t store_now(const struct store *s);

/* store_mono_ms - a monotonic clock in ms, for timers and the breaker. */
int64_t store_mono_ms(void);

/* store_hash - the 16-byte name of (kind, key). */
void store_hash(enum store_kind kind, const char *key, unsigned char out[STORE_HASH_LEN]);

/* store_op_done - deliver op's answer (res filled, status set) now: from the loop only,
 * never inside a store_*() call. Runs the callback, frees op. */
void store_op_done(struct store_op *op);

/* store_op_fail - mark op failed with a reason (printf style); the caller then hands it to
 * store_op_done() (from the loop) or store_op_fail_later() (inside a call). */
void store_op_fail(struct store_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* store_op_later - deliver op's (already filled) answer from the zero-delay event. */
void store_op_later(struct store_op *op);

/* store_rl_fill - a rate-limit answer from a window decision. */
void store_rl_fill(struct store_op *op, const struct window_decision *d, int64_t now);

/* Back ends: open fills s->be and s->impl, 0 or -1 with err. */
int store_lmdb_open(struct store *s, const char *path, char *err, size_t errlen);
int store_redis_open(struct store *s, const char *target, char *err, size_t errlen);

/* Spec parsing shared by store_open and store_admin_open: the part after "lmdb:" or
 * "redis:", in *rest; returns 'L' or 'R', or 0 with err. */
int store_spec_parse(const char *spec, const char **rest, char *err, size_t errlen);

/* store_read_password - the first line of file, trailing blanks cut; NULL with err. */
char *store_read_password(const char *file, char *err, size_t errlen);

/* ---- the admin side (synchronous; store_admin.c dispatches) ---- */

struct store_rl_info; /* store_admin.h */

struct store_admin_ops {
    int (*show)(void *impl, const char *key, struct store_rl_info *info, char *err, size_t errlen);
    int (*reset)(void *impl, const char *key, char *err, size_t errlen);
    int (*block)(void *impl, const char *key, int64_t duration_ms, char *err, size_t errlen);
    int (*unblock)(void *impl, const char *key, char *err, size_t errlen);
    /* each - call fn for every rate-limit record (info filled); stop if it returns -1. */
    int (*each)(void *impl, int (*fn)(const struct store_rl_info *info, void *arg), void *arg,
                char *err, size_t errlen);
    void (*close)(void *impl);
};

void *store_lmdb_admin_open(const struct store_options *o, const char *path,
                            const struct store_admin_ops **ops, char *err, size_t errlen);
void *store_redis_admin_open(const struct store_options *o, const char *target,
                             const char *password, const struct store_admin_ops **ops, char *err,
                             size_t errlen);

/* store_lua_* - the Redis scripts (store_lua.c) and their SHA-1 in hex. */
extern const char store_lua_rl[], store_lua_grey[], store_lua_once[];

#endif
