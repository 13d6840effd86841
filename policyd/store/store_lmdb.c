/*
 * store_lmdb.c - the LMDB back end: one environment file (MDB_NOSUBDIR), one unnamed
 * database, keys of 17 bytes (kind + 16 bytes of SHA-256), values carrying their expiry.
 *
 * The loop never waits for the disk. The environment runs with MDB_NOSYNC (not WRITEMAP): a
 * commit writes its dirty pages into the page cache and returns; a thread calls
 * mdb_env_sync() every lmdb_sync_interval_ms when something was committed, so the disk is
 * waited for off the loop. LMDB's documentation: with MDB_NOSYNC and without MDB_WRITEMAP,
 * on a file system that keeps write order, integrity holds and a system crash loses at most
 * the transactions since the last sync (a daemon crash loses nothing: the pages are in the
 * kernel). Operations queue up and one zero-delay event runs them all in one write
 * transaction, in order, then answers each: 100 operations in flight cost one commit.
 * Expiry: every value starts with its expiry time; readers treat an expired value as absent,
 * and a timer sweeps the file in slices (sweep_batch records per tick, resuming where the last
 * tick stopped), deleting what expired. A full map is doubled (logged) and the batch run again.
 * Writers in other processes (the `policyd ratelimit` command: store_lmdb_admin_*) take LMDB's
 * writer lock in turn; their transactions are short. LMDB forbids opening one environment
 * twice in one process: the admin side is for other processes.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/store/store_admin.h"
#include "policyd/store/store_int.h"

#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <errno.h>
#include <event2/event.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_LEN (1 + STORE_HASH_LEN)
#define HDR 10 /* kind, version, expiry */
#define REC_VERSION 1
#define BATCH_MAX 1024 /* operations per write transaction */
#define REC_MAX                                                                                    \
    (HDR + 8 + 2 + STORE_NAME_MAX + 1 +                                                            \
     WINDOW_MAX_SET * (8 + 8 + 1 + WINDOW_ENTRIES * 24)) /* the largest rate-limit record */

struct lmdb {
    struct store *s;
    MDB_env *env;
    MDB_dbi dbi;
    size_t map_size;
    struct store_op_queue queue; /* waiting for the next run */
    struct store_op_queue batch; /* being run / answered */
    struct event *run_ev, *sweep_ev;
    unsigned char sweep_pos[KEY_LEN]; /* where the next sweep tick starts */
    int sweep_from_start;
    unsigned long long swept, map_grows;
    int64_t last_error_log;
    unsigned char rec[REC_MAX];
    /* the sync thread */
    pthread_t syncer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, thread_started;
    long sync_ms;
    atomic_uint dirty;   /* commits since the last sync */
    atomic_int sync_err; /* last mdb_env_sync error, for the loop to log */
};

static int64_t get_i64(const unsigned char *p)
{
    int64_t v;
    memcpy(&v, p, 8);
    return v;
}

static unsigned char *put_i64(unsigned char *p, int64_t v)
{
    memcpy(p, &v, 8);
    return p + 8;
}

static void make_key(unsigned char out[KEY_LEN], enum store_kind kind,
                     const unsigned char hash[STORE_HASH_LEN])
{
    out[0] = (unsigned char)kind;
    memcpy(out + 1, hash, STORE_HASH_LEN);
}

/* value_live - 1 if v is a record of kind that has not expired at now. */
static int value_live(const MDB_val *v, enum store_kind kind, int64_t now)
{
    const unsigned char *p = v->mv_data;
    return v->mv_size >= HDR && p[0] == (unsigned char)kind && p[1] == REC_VERSION &&
           get_i64(p + 2) > now;
}

/* rl_decode - a rate-limit record into set and name; 0, or -1 (absent or damaged: empty). */
static int rl_decode(const MDB_val *v, struct window_set *set, char *name, size_t namecap)
{
    const unsigned char *p = v->mv_data, *end = p + v->mv_size;
    set->n = 0;
    set->blocked_until = 0;
    name[0] = '\0';
    if (v->mv_size < HDR + 8 + 2 || p[0] != KIND_RL || p[1] != REC_VERSION)
        return -1;
    int64_t blocked = get_i64(p + HDR);
    size_t nlen = (size_t)p[HDR + 8] | (size_t)p[HDR + 9] << 8;
    p += HDR + 10;
    if (nlen >= namecap || (size_t)(end - p) < nlen + 1)
        return -1;
    memcpy(name, p, nlen);
    name[nlen] = '\0';
    p += nlen;
    int nwin = *p++;
    if (nwin > WINDOW_MAX_SET)
        return -1;
    for (int i = 0; i < nwin; i++) {
        if (end - p < 17)
            return -1;
        struct window *w = &set->w[i];
        w->period = get_i64(p);
        w->limit = get_i64(p + 8);
        w->n = p[16];
        p += 17;
        if (w->n > WINDOW_ENTRIES || w->period < 1 || (size_t)(end - p) < (size_t)w->n * 24)
            return -1;
        for (int k = 0; k < w->n; k++, p += 24)
            w->e[k] = (struct window_entry){get_i64(p), get_i64(p + 8), get_i64(p + 16)};
    }
    set->n = nwin;
    set->blocked_until = blocked;
    return 0;
}

/* rl_put - write set (pruned) under key, or delete the record when nothing is left. */
static int rl_put(struct lmdb *l, MDB_txn *txn, MDB_val *key, const struct window_set *set,
                  const char *name, int64_t now)
{
    int64_t expires = window_set_expires(set);
    if (expires <= now) {
        int rc = mdb_del(txn, l->dbi, key, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    size_t nlen = strlen(name);
    if (nlen >= STORE_NAME_MAX)
        nlen = STORE_NAME_MAX - 1;
    unsigned char *p = l->rec;
    *p++ = KIND_RL;
    *p++ = REC_VERSION;
    p = put_i64(p, expires);
    p = put_i64(p, set->blocked_until);
    *p++ = (unsigned char)(nlen & 0xff);
    *p++ = (unsigned char)(nlen >> 8);
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = (unsigned char)set->n;
    for (int i = 0; i < set->n; i++) {
        const struct window *w = &set->w[i];
        p = put_i64(p, w->period);
        p = put_i64(p, w->limit);
        *p++ = (unsigned char)w->n;
        for (int k = 0; k < w->n; k++) {
            p = put_i64(p, w->e[k].first);
            p = put_i64(p, w->e[k].last);
            p = put_i64(p, w->e[k].units);
        }
    }
    MDB_val v = {(size_t)(p - l->rec), l->rec};
    return mdb_put(txn, l->dbi, key, &v, 0);
}

/* small_put - a record of kind with up to three numbers after its header. */
static int small_put(struct lmdb *l, MDB_txn *txn, MDB_val *key, enum store_kind kind,
                     int64_t expires, int64_t a, int64_t b)
{
    unsigned char buf[HDR + 16], *p = buf;
    *p++ = (unsigned char)kind;
    *p++ = REC_VERSION;
    p = put_i64(p, expires);
    p = put_i64(p, a);
    p = put_i64(p, b);
    MDB_val v = {sizeof(buf), buf};
    (void)l;
    return mdb_put(txn, l->dbi, key, &v, 0);
}

static int run_rl(struct lmdb *l, MDB_txn *txn, struct store_op *op, int64_t now)
{
    unsigned char kb[KEY_LEN];
    MDB_val key = {KEY_LEN, kb}, v;
    struct window_set set;
    struct window_decision d;
    char name[STORE_NAME_MAX];

    make_key(kb, KIND_RL, op->key);
    int rc = mdb_get(txn, l->dbi, &key, &v);
    if (rc == 0)
        rl_decode(&v, &set, name, sizeof(name));
    else if (rc == MDB_NOTFOUND)
        set.n = 0, set.blocked_until = 0;
    else
        return rc;
    int changed = op->type == OP_RESERVE
                      ? window_set_reserve(&set, now, op->lims, op->nlims, op->units, &d)
                      : window_set_adjust(&set, now, op->lims, op->nlims, op->units, op->at, &d);
    store_rl_fill(op, &d, now);
    return changed ? rl_put(l, txn, &key, &set, op->name, now) : 0;
}

/* run_grey - the greylist step; store_lua.c's grey script is the same, line for line. */
static int run_grey(struct lmdb *l, MDB_txn *txn, struct store_op *op, int64_t now)
{
    const struct store_grey_params *p = &op->grey;
    struct store_grey_result *r = &op->res.grey;
    unsigned char kb[KEY_LEN], ab[KEY_LEN];
    MDB_val key = {KEY_LEN, kb}, akey = {KEY_LEN, ab}, v;
    int64_t count = 0, last = 0, first = 0, passed = 0;
    int found = 0, rc;

    r->status = STORE_OK;
    r->now_ms = now;
    if (op->has_awl) {
        make_key(ab, KIND_AWL, op->awl);
        rc = mdb_get(txn, l->dbi, &akey, &v);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
        if (rc == 0 && value_live(&v, KIND_AWL, now) && v.mv_size >= HDR + 16) {
            count = get_i64((unsigned char *)v.mv_data + HDR);
            last = get_i64((unsigned char *)v.mv_data + HDR + 8);
        }
        if (count >= p->awl_passes) {
            r->state = STORE_GREY_AWL;
            r->awl_count = count;
            return small_put(l, txn, &akey, KIND_AWL, now + p->awl_ttl_ms, count, last);
        }
    }
    make_key(kb, KIND_GREY, op->key);
    rc = mdb_get(txn, l->dbi, &key, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0 && value_live(&v, KIND_GREY, now) && v.mv_size >= HDR + 16) {
        found = 1;
        first = get_i64((unsigned char *)v.mv_data + HDR);
        passed = get_i64((unsigned char *)v.mv_data + HDR + 8);
    }
    int64_t pending_life = p->delay_ms + 2 * p->retry_window_ms;
    int pass = 0;
    if (!found || (passed == 0 && now > first + p->delay_ms + p->retry_window_ms)) {
        r->state = found ? STORE_GREY_RESTART : STORE_GREY_NEW;
        r->first_ms = now;
        r->retry_ms = now + p->delay_ms;
        rc = small_put(l, txn, &key, KIND_GREY, now + pending_life, now, 0);
    } else if (passed == 0 && now < first + p->delay_ms) {
        r->state = STORE_GREY_EARLY;
        r->first_ms = first;
        r->retry_ms = first + p->delay_ms;
        rc = 0;
    } else {
        r->state = STORE_GREY_PASS;
        r->first_ms = first;
        r->passed_ms = passed ? passed : now;
        rc = small_put(l, txn, &key, KIND_GREY, now + p->pass_ttl_ms, first, r->passed_ms);
        pass = 1;
    }
    if (rc == 0 && pass && op->has_awl) {
        if (now - last >= p->awl_interval_ms) {
            count++;
            last = now;
        }
        rc = small_put(l, txn, &akey, KIND_AWL, now + p->awl_ttl_ms, count, last);
    }
    r->awl_count = count;
    return rc;
}

static int run_once(struct lmdb *l, MDB_txn *txn, struct store_op *op, int64_t now)
{
    unsigned char kb[KEY_LEN];
    MDB_val key = {KEY_LEN, kb}, v;
    make_key(kb, KIND_ONCE, op->key);
    int rc = mdb_get(txn, l->dbi, &key, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    op->res.once.status = STORE_OK;
    op->res.once.now_ms = now;
    op->res.once.first = !(rc == 0 && value_live(&v, KIND_ONCE, now));
    return op->res.once.first ? small_put(l, txn, &key, KIND_ONCE, now + op->interval, 0, 0) : 0;
}

/* txn_begin - a transaction, adopting a map grown by another process. */
static int txn_begin(struct lmdb *l, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(l->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(l->env, 0);
        rc = mdb_txn_begin(l->env, NULL, flags, txn);
    }
    return rc;
}

/* grow - double the map after MDB_MAP_FULL (no transaction of ours is open). */
static int grow(struct lmdb *l)
{
    size_t size = l->map_size * 2;
    int rc = mdb_env_set_mapsize(l->env, size);
    if (rc != 0)
        return rc;
    l->map_size = size;
    l->map_grows++;
    log_warn("state store %s: the LMDB map was full; grown to %.1f MiB (raise "
             "state_lmdb_map_size to start with more)",
             store_name(l->s), (double)size / 1048576.0);
    return 0;
}

/* run_batch - every operation of the batch in one write transaction (the map doubled up to
 * four times if it is full). */
static int run_batch(struct lmdb *l, int64_t now)
{
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn;
        struct store_op *op;
        int rc = txn_begin(l, 0, &txn);
        if (rc != 0)
            return rc;
        TAILQ_FOREACH(op, &l->batch, link)
        {
            if (op->type == OP_GREY)
                rc = run_grey(l, txn, op, now);
            else if (op->type == OP_ONCE)
                rc = run_once(l, txn, op, now);
            else
                rc = run_rl(l, txn, op, now);
            if (rc != 0)
                break;
        }
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (rc == 0)
            atomic_fetch_add(&l->dirty, 1);
        if (rc != MDB_MAP_FULL || attempt >= 4 || grow(l) != 0)
            return rc;
    }
}

/* lmdb_complain - one line per 10 s at most for failing batches (each caller gets its answer). */
static void lmdb_complain(struct lmdb *l, const char *what, int rc)
{
    int64_t t = store_mono_ms();
    if (t - l->last_error_log < 10000)
        return;
    l->last_error_log = t;
    log_warn("state store %s: %s: %s; rate limits and greylisting use their store-failure policy",
             store_name(l->s), what, mdb_strerror(rc));
}

static void run_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lmdb *l = arg;
    struct store_op *op;
    int n = 0;
    (void)fd;
    (void)what;
    while (n < BATCH_MAX && (op = TAILQ_FIRST(&l->queue)) != NULL) {
        TAILQ_REMOVE(&l->queue, op, link);
        TAILQ_INSERT_TAIL(&l->batch, op, link);
        op->where = OP_INFLIGHT;
        n++;
    }
    if (!TAILQ_EMPTY(&l->queue))
        event_active(l->run_ev, 0, 0);
    int rc = run_batch(l, store_now(l->s));
    if (rc != 0) {
        lmdb_complain(l, "write transaction failed", rc);
        TAILQ_FOREACH(op, &l->batch, link)
        store_op_fail(op, "lmdb: %s", mdb_strerror(rc));
    }
    /* Answer one at a time from the head: a callback may cancel another of the batch. */
    while ((op = TAILQ_FIRST(&l->batch)) != NULL) {
        TAILQ_REMOVE(&l->batch, op, link);
        op->where = OP_NEW;
        store_op_done(op);
    }
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lmdb *l = arg;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int64_t now = store_now(l->s);
    unsigned visited = 0;
    unsigned long long swept = l->swept;
    (void)fd;
    (void)what;

    int err = atomic_exchange(&l->sync_err, 0);
    if (err != 0)
        lmdb_complain(l, "background sync failed", err);
    int rc = txn_begin(l, 0, &txn);
    if (rc != 0) {
        lmdb_complain(l, "sweep", rc);
        return;
    }
    rc = mdb_cursor_open(txn, l->dbi, &cur);
    if (rc == 0) {
        if (l->sweep_from_start) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        } else {
            k = (MDB_val){KEY_LEN, l->sweep_pos};
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
        while (rc == 0 && visited < l->s->opt.sweep_batch) {
            visited++;
            const unsigned char *p = v.mv_data;
            if (v.mv_size >= HDR && get_i64(p + 2) <= now) {
                if ((rc = mdb_cursor_del(cur, 0)) != 0)
                    break;
                l->swept++;
            }
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (rc == 0 && k.mv_size == KEY_LEN) {
            memcpy(l->sweep_pos, k.mv_data, KEY_LEN);
            l->sweep_from_start = 0;
        } else {
            l->sweep_from_start = 1; /* the end (or an odd key): start over next tick */
        }
        if (rc == MDB_NOTFOUND || rc == 0)
            rc = 0;
        mdb_cursor_close(cur);
    }
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc != 0)
        lmdb_complain(l, "sweep", rc);
    else if (l->swept != swept)
        atomic_fetch_add(&l->dirty, 1);
}

static void *sync_main(void *arg)
{
    struct lmdb *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += l->sync_ms / 1000;
        ts.tv_nsec += (l->sync_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->mu);
        if (atomic_exchange(&l->dirty, 0) != 0) {
            int rc = mdb_env_sync(l->env, 1);
            if (rc != 0)
                atomic_store(&l->sync_err, rc);
        }
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void lmdb_submit(struct store *s, struct store_op *op)
{
    struct lmdb *l = s->impl;
    op->where = OP_QUEUED;
    TAILQ_INSERT_TAIL(&l->queue, op, link);
    event_active(l->run_ev, 0, 0);
}

static void lmdb_cancel(struct store *s, struct store_op *op)
{
    struct lmdb *l = s->impl;
    if (op->where == OP_QUEUED)
        TAILQ_REMOVE(&l->queue, op, link);
    else
        TAILQ_REMOVE(&l->batch, op, link);
}

static void lmdb_close(struct store *s)
{
    struct lmdb *l = s->impl;
    struct store_op *op;
    if (!l)
        return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->syncer, NULL);
    }
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    while ((op = TAILQ_FIRST(&l->queue)) != NULL) {
        TAILQ_REMOVE(&l->queue, op, link);
        free(op->name);
        free(op);
    }
    if (l->run_ev)
        event_free(l->run_ev);
    if (l->sweep_ev)
        event_free(l->sweep_ev);
    if (l->env) {
        mdb_env_sync(l->env, 1); /* at shutdown the loop may wait */
        mdb_env_close(l->env);
    }
    free(l);
    s->impl = NULL;
}

static void lmdb_stats(const struct store *s, struct store_stats *st)
{
    const struct lmdb *l = s->impl;
    st->backend = "lmdb";
    st->swept = l->swept;
    st->map_size = l->map_size;
}

static const struct store_backend lmdb_backend = {"lmdb", lmdb_submit, lmdb_cancel, lmdb_close,
                                                  lmdb_stats};

/* env_open - the environment at path with flags; 0, or -1 with a reason. */
static int env_open(const char *path, size_t map_size, unsigned flags, MDB_env **envp, MDB_dbi *dbi,
                    char *err, size_t errlen)
{
    MDB_env *env;
    MDB_txn *txn;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(env, map_size);
    if (rc == 0)
        rc = mdb_env_open(env, path, flags | MDB_NOSUBDIR, 0600);
    if (rc != 0) {
        snprintf(err, errlen, "cannot open LMDB state store %s: %s%s", path, mdb_strerror(rc),
                 rc == ENOENT || rc == EACCES ? " (does its directory exist, writable by the "
                                                "daemon's user?)"
                                              : "");
        mdb_env_close(env);
        return -1;
    }
    int dead = 0;
    mdb_reader_check(env, &dead);
    rc = mdb_txn_begin(env, NULL, flags & MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, dbi);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    if (rc != 0) {
        snprintf(err, errlen, "cannot open LMDB state store %s: %s", path, mdb_strerror(rc));
        mdb_env_close(env);
        return -1;
    }
    *envp = env;
    return 0;
}

int store_lmdb_open(struct store *s, const char *path, char *err, size_t errlen)
{
    struct lmdb *l = xcalloc(1, sizeof(*l));
    pthread_condattr_t ca;

    l->s = s;
    l->map_size = s->opt.lmdb_map_size ? s->opt.lmdb_map_size : (size_t)256 << 20;
    l->sync_ms = s->opt.lmdb_sync_interval_ms > 0 ? s->opt.lmdb_sync_interval_ms : 1000;
    l->sweep_from_start = 1;
    TAILQ_INIT(&l->queue);
    TAILQ_INIT(&l->batch);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->impl = l;
    s->be = &lmdb_backend;
    if (env_open(path, l->map_size, MDB_NOSYNC, &l->env, &l->dbi, err, errlen) < 0)
        return -1;
    MDB_envinfo info;
    if (mdb_env_info(l->env, &info) == 0 && info.me_mapsize > l->map_size)
        l->map_size = info.me_mapsize;
    if (s->opt.sweep_batch == 0)
        s->opt.sweep_batch = 1000;
    long sweep = s->opt.sweep_interval_ms > 0 ? s->opt.sweep_interval_ms : 1000;
    struct timeval tv = {sweep / 1000, (sweep % 1000) * 1000};
    l->run_ev = event_new(s->base, -1, 0, run_cb, l);
    l->sweep_ev = event_new(s->base, -1, EV_PERSIST, sweep_cb, l);
    if (!l->run_ev || !l->sweep_ev)
        xalloc_fail(sizeof(struct event *));
    event_add(l->sweep_ev, &tv);
    if (pthread_create(&l->syncer, NULL, sync_main, l) != 0) {
        snprintf(err, errlen, "cannot start the LMDB sync thread: %s", strerror(errno));
        return -1;
    }
    l->thread_started = 1;
    return 0;
}

/* ---- the admin side: synchronous, another process ---- */

struct lmdb_admin {
    struct lmdb l; /* env, dbi and the record buffer; no queue, no thread */
    int64_t (*clock_ms)(void *arg);
    void *clock_arg;
};

static int64_t admin_now(const struct lmdb_admin *a)
{
    if (a->clock_ms)
        return a->clock_ms(a->clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void info_fill(struct store_rl_info *info, const struct window_set *set, const char *name,
                      int64_t now)
{
    memset(info, 0, sizeof(*info));
    snprintf(info->key, sizeof(info->key), "%s", name);
    info->now_ms = now;
    info->blocked_until = set->blocked_until;
    info->ratio = set->blocked_until > now ? 1e300 : 0;
    for (int i = 0; i < set->n && i < STORE_ADMIN_WINDOWS; i++) {
        const struct window *w = &set->w[i];
        struct store_rl_window *o = &info->w[info->nwindows++];
        o->period_ms = w->period;
        o->limit = w->limit;
        o->used = window_used(w);
        o->first_ms = window_first(w);
        o->expires_ms = window_expires(w);
        double r = w->limit > 0 ? (double)o->used / (double)w->limit : (o->used > 0 ? 1e300 : 0);
        if (r > info->ratio)
            info->ratio = r;
    }
}

static int admin_fail(char *err, size_t errlen, const char *what, int rc)
{
    snprintf(err, errlen, "LMDB %s: %s", what, mdb_strerror(rc));
    return -1;
}

static int lmdb_admin_show(void *impl, const char *key, struct store_rl_info *info, char *err,
                           size_t errlen)
{
    struct lmdb_admin *a = impl;
    unsigned char kb[KEY_LEN], h[STORE_HASH_LEN];
    MDB_val k = {KEY_LEN, kb}, v;
    MDB_txn *txn;
    struct window_set set;
    char name[STORE_NAME_MAX];
    int64_t now = admin_now(a);

    store_hash(KIND_RL, key, h);
    make_key(kb, KIND_RL, h);
    int rc = txn_begin(&a->l, MDB_RDONLY, &txn);
    if (rc != 0)
        return admin_fail(err, errlen, "read", rc);
    rc = mdb_get(txn, a->l.dbi, &k, &v);
    int found = rc == 0 && rl_decode(&v, &set, name, sizeof(name)) == 0;
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return admin_fail(err, errlen, "read", rc);
    if (!found)
        return 0;
    window_set_prune(&set, now);
    if (set.n == 0 && set.blocked_until == 0)
        return 0;
    info_fill(info, &set, name[0] ? name : key, now);
    return 1;
}

/* admin_update - read key's record, apply block (until; 0 lifts), write it back. 1 if a block
 * was in force before, 0 if not, -1. */
static int admin_update(struct lmdb_admin *a, const char *key, int64_t until, char *err,
                        size_t errlen)
{
    unsigned char kb[KEY_LEN], h[STORE_HASH_LEN];
    MDB_val k = {KEY_LEN, kb}, v;
    MDB_txn *txn;
    struct window_set set;
    char name[STORE_NAME_MAX];
    int64_t now = admin_now(a);

    store_hash(KIND_RL, key, h);
    make_key(kb, KIND_RL, h);
    int rc = txn_begin(&a->l, 0, &txn);
    if (rc != 0)
        return admin_fail(err, errlen, "write", rc);
    rc = mdb_get(txn, a->l.dbi, &k, &v);
    if (rc == 0)
        rl_decode(&v, &set, name, sizeof(name));
    else
        set.n = 0, set.blocked_until = 0;
    window_set_prune(&set, now);
    int was = set.blocked_until > now;
    set.blocked_until = until;
    rc = rc == 0 || rc == MDB_NOTFOUND ? rl_put(&a->l, txn, &k, &set, key, now) : rc;
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    return rc == 0 ? was : admin_fail(err, errlen, "write", rc);
}

static int lmdb_admin_block(void *impl, const char *key, int64_t duration_ms, char *err,
                            size_t errlen)
{
    struct lmdb_admin *a = impl;
    return admin_update(a, key, admin_now(a) + duration_ms, err, errlen) < 0 ? -1 : 0;
}

static int lmdb_admin_unblock(void *impl, const char *key, char *err, size_t errlen)
{
    return admin_update(impl, key, 0, err, errlen);
}

static int lmdb_admin_reset(void *impl, const char *key, char *err, size_t errlen)
{
    struct lmdb_admin *a = impl;
    unsigned char kb[KEY_LEN], h[STORE_HASH_LEN];
    MDB_val k = {KEY_LEN, kb};
    MDB_txn *txn;

    store_hash(KIND_RL, key, h);
    make_key(kb, KIND_RL, h);
    int rc = txn_begin(&a->l, 0, &txn);
    if (rc != 0)
        return admin_fail(err, errlen, "write", rc);
    rc = mdb_del(txn, a->l.dbi, &k, NULL);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? 0 : admin_fail(err, errlen, "delete", rc);
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? 1 : admin_fail(err, errlen, "commit", rc);
}

static int lmdb_admin_each(void *impl, int (*fn)(const struct store_rl_info *info, void *arg),
                           void *arg, char *err, size_t errlen)
{
    struct lmdb_admin *a = impl;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    unsigned char start = KIND_RL;
    MDB_val k = {1, &start}, v;
    struct window_set set;
    struct store_rl_info info;
    char name[STORE_NAME_MAX];
    int64_t now = admin_now(a);

    int rc = txn_begin(&a->l, MDB_RDONLY, &txn);
    if (rc != 0)
        return admin_fail(err, errlen, "read", rc);
    rc = mdb_cursor_open(txn, a->l.dbi, &cur);
    if (rc == 0)
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == KEY_LEN && *(unsigned char *)k.mv_data == KIND_RL) {
        if (rl_decode(&v, &set, name, sizeof(name)) == 0) {
            window_set_prune(&set, now);
            if (set.n > 0 || set.blocked_until != 0) {
                info_fill(&info, &set, name, now);
                if (fn(&info, arg) < 0)
                    break;
            }
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    if (cur)
        mdb_cursor_close(cur); /* a read-only transaction does not close its cursors */
    mdb_txn_abort(txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : admin_fail(err, errlen, "read", rc);
}

static void lmdb_admin_close(void *impl)
{
    struct lmdb_admin *a = impl;
    mdb_env_close(a->l.env);
    free(a);
}

static const struct store_admin_ops lmdb_admin_ops = {lmdb_admin_show,  lmdb_admin_reset,
                                                      lmdb_admin_block, lmdb_admin_unblock,
                                                      lmdb_admin_each,  lmdb_admin_close};

void *store_lmdb_admin_open(const struct store_options *o, const char *path,
                            const struct store_admin_ops **ops, char *err, size_t errlen)
{
    struct lmdb_admin *a = xcalloc(1, sizeof(*a));
    a->clock_ms = o->clock_ms;
    a->clock_arg = o->clock_arg;
    a->l.map_size = o->lmdb_map_size ? o->lmdb_map_size : (size_t)256 << 20;
    if (env_open(path, a->l.map_size, 0, &a->l.env, &a->l.dbi, err, errlen) < 0) {
        free(a);
        return NULL;
    }
    *ops = &lmdb_admin_ops;
    return a;
}
