/*
 * store.c - the store's front: spec parsing, options, key hashing, the operation record and
 * its one delivery path, cancellation and counters; the back ends (store_lmdb.c,
 * store_redis.c) do the work. Requests are checked here, so a malformed one fails the same way
 * on both back ends. Answers found inside a call wait for a zero-delay event: no callback ever
 * runs before store_*() returns. The store owns its operations until their callback has run.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/store/store_int.h"

#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void store_options_default(struct store_options *o)
{
    memset(o, 0, sizeof(*o));
    o->spec = "lmdb:/var/lib/policyd/state.lmdb";
    o->key_prefix = "pd:";
    o->timeout_ms = 50;
    o->failure_threshold = 3;
    o->retry_interval_ms = 5000;
    o->lmdb_map_size = (size_t)256 << 20;
    o->lmdb_sync_interval_ms = 1000;
    o->sweep_interval_ms = 1000;
    o->sweep_batch = 1000;
}

int store_spec_parse(const char *spec, const char **rest, char *err, size_t errlen)
{
    static const char usage[] = "expected lmdb:PATH, redis:unix:PATH or redis:inet:HOST:PORT";
    if (spec && strncmp(spec, "lmdb:", 5) == 0 && spec[5] != '\0') {
        *rest = spec + 5;
        return 'L';
    }
    if (spec && strncmp(spec, "redis:", 6) == 0) {
        const char *t = spec + 6;
        if ((strncmp(t, "unix:", 5) == 0 && t[5] != '\0') ||
            (strncmp(t, "inet:", 5) == 0 && t[5] != '\0')) {
            *rest = t;
            return 'R';
        }
        snprintf(err, errlen, "bad Redis address in '%s' (%s)", spec, usage);
        return 0;
    }
    snprintf(err, errlen, "unknown state store '%s' (%s)", spec ? spec : "", usage);
    return 0;
}

int store_spec_check(const char *spec, char *err, size_t errlen)
{
    const char *rest;
    int kind = store_spec_parse(spec, &rest, err, errlen);
    if (kind == 'R' && strncmp(rest, "inet:", 5) == 0) {
        const char *hp = rest + 5, *colon = strrchr(hp, ':');
        char *end;
        if (hp[0] == '[' && (!strchr(hp, ']') || (colon && colon < strchr(hp, ']'))))
            colon = NULL;
        if (colon) {
            long port = strtol(colon + 1, &end, 10);
            if (*end != '\0' || port < 1 || port > 65535 || colon == hp) {
                snprintf(err, errlen, "bad port in '%s' (expected redis:inet:HOST:PORT)", spec);
                return -1;
            }
        }
    }
    return kind ? 0 : -1;
}

char *store_read_password(const char *file, char *err, size_t errlen)
{
    FILE *f = fopen(file, "r");
    char line[1024];
    if (!f) {
        snprintf(err, errlen, "cannot read Redis password file %s: %s", file, strerror(errno));
        return NULL;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = '\0';
    fclose(f);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
        line[--n] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "Redis password file %s is empty", file);
        return NULL;
    }
    char *p = xstrdup(line);
    memset(line, 0, sizeof(line));
    return p;
}

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;
    struct store_op *op;
    (void)fd;
    (void)what;
    /* One at a time from the head: a callback may cancel or add operations. */
    while ((op = TAILQ_FIRST(&s->deliver)) != NULL) {
        TAILQ_REMOVE(&s->deliver, op, link);
        op->where = OP_NEW;
        store_op_done(op);
    }
}

struct store *store_open(struct event_base *base, const struct store_options *o, char *err,
                         size_t errlen)
{
    const char *rest;
    if (store_spec_check(o->spec, err, errlen) < 0)
        return NULL;
    int kind = store_spec_parse(o->spec, &rest, err, errlen);

    if (o->key_prefix && strlen(o->key_prefix) > 64) {
        snprintf(err, errlen, "state key prefix longer than 64 characters");
        return NULL;
    }
    struct store *s = xcalloc(1, sizeof(*s));
    s->base = base;
    s->opt = *o;
    s->spec = xstrdup(o->spec);
    s->prefix = xstrdup(o->key_prefix ? o->key_prefix : "");
    s->opt.spec = s->spec;
    s->opt.key_prefix = s->prefix;
    s->opt.redis_password_file = NULL;
    if (s->opt.timeout_ms < 1)
        s->opt.timeout_ms = 1;
    if (s->opt.failure_threshold < 1)
        s->opt.failure_threshold = 1;
    if (s->opt.retry_interval_ms < 1)
        s->opt.retry_interval_ms = 1;
    TAILQ_INIT(&s->deliver);
    s->deliver_ev = event_new(base, -1, 0, deliver_cb, s);
    if (!s->deliver_ev)
        xalloc_fail(sizeof(struct event *));
    if (kind == 'R' && o->redis_password_file && o->redis_password_file[0]) {
        s->password = store_read_password(o->redis_password_file, err, errlen);
        if (!s->password) {
            store_close(s);
            return NULL;
        }
    }
    int rc = kind == 'L' ? store_lmdb_open(s, rest, err, errlen)
                         : store_redis_open(s, rest, err, errlen);
    if (rc < 0) {
        store_close(s);
        return NULL;
    }
    return s;
}

void store_close(struct store *s)
{
    struct store_op *op;
    if (!s)
        return;
    if (s->be)
        s->be->close(s); /* frees its queued and in-flight operations */
    while ((op = TAILQ_FIRST(&s->deliver)) != NULL) {
        TAILQ_REMOVE(&s->deliver, op, link);
        free(op->name);
        free(op);
    }
    if (s->deliver_ev)
        event_free(s->deliver_ev);
    if (s->password) {
        memset(s->password, 0, strlen(s->password));
        free(s->password);
    }
    free(s->spec);
    free(s->prefix);
    free(s);
}

void store_stats(const struct store *s, struct store_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->ops = s->ops;
    st->ok = s->ok;
    st->failed = s->failed;
    st->inflight = s->inflight;
    st->up = 1;
    st->breaker = "closed";
    s->be->stats(s, st);
}

void store_cancel(struct store_op *op)
{
    if (!op)
        return;
    struct store *s = op->s;
    if (op->where == OP_DELIVER)
        TAILQ_REMOVE(&s->deliver, op, link);
    else if (op->where == OP_QUEUED || op->where == OP_INFLIGHT)
        s->be->cancel(s, op);
    s->inflight--;
    free(op->name);
    free(op);
}

/* op_new - a fresh operation; counted in flight from here until its callback. */
static struct store_op *op_new(struct store *s, enum store_op_type type, void *arg)
{
    struct store_op *op = xcalloc(1, sizeof(*op));
    op->s = s;
    op->type = type;
    op->where = OP_NEW;
    op->arg = arg;
    s->ops++;
    s->inflight++;
    return op;
}

/* op_submit - to the back end, or to the delivery queue when the request failed its checks. */
static struct store_op *op_submit(struct store_op *op, int bad)
{
    if (bad)
        store_op_later(op);
    else
        op->s->be->submit(op->s, op);
    return op;
}

static struct store_op *rl_op(struct store *s, enum store_op_type type, const char *key,
                              const struct store_limit *limits, int nlimits, int64_t units,
                              int64_t at, store_rl_cb cb, void *arg)
{
    struct store_op *op = op_new(s, type, arg);
    char why[160];
    op->cb.rl = cb;
    op->units = units;
    op->at = at;
    op->nlims = nlimits;
    for (int i = 0; i < nlimits && i < WINDOW_MAX_LIMITS; i++) {
        op->lims[i].limit = limits[i].limit;
        op->lims[i].period = limits[i].period_ms;
    }
    int bad = window_check(op->lims, nlimits, units, why, sizeof(why)) < 0;
    if (!bad && type == OP_RESERVE && units < 0) {
        snprintf(why, sizeof(why), "negative units");
        bad = 1;
    }
    if (bad)
        store_op_fail(op, "bad request for %s: %s", key, why);
    store_hash(KIND_RL, key, op->key);
    op->name = xstrndup(key, STORE_NAME_MAX - 1);
    return op_submit(op, bad);
}

struct store_op *store_rl_reserve(struct store *s, const char *key,
                                  const struct store_limit *limits, int nlimits, int64_t units,
                                  store_rl_cb cb, void *arg)
{
    return rl_op(s, OP_RESERVE, key, limits, nlimits, units, 0, cb, arg);
}

struct store_op *store_rl_adjust(struct store *s, const char *key, const struct store_limit *limits,
                                 int nlimits, int64_t delta, int64_t at_ms, store_rl_cb cb,
                                 void *arg)
{
    return rl_op(s, OP_ADJUST, key, limits, nlimits, delta, at_ms, cb, arg);
}

struct store_op *store_grey_check(struct store *s, const char *triplet,
                                  const struct store_grey_params *p, store_grey_cb cb, void *arg)
{
    struct store_op *op = op_new(s, OP_GREY, arg);
    op->cb.grey = cb;
    op->grey = *p;
    op->grey.awl_key = NULL;
    store_hash(KIND_GREY, triplet, op->key);
    if (p->awl_key && p->awl_passes > 0) {
        store_hash(KIND_AWL, p->awl_key, op->awl);
        op->has_awl = 1;
    } else {
        op->grey.awl_passes = 0;
    }
    int bad = p->delay_ms < 0 || p->retry_window_ms < 1 || p->pass_ttl_ms < 1 ||
              p->delay_ms > WINDOW_MAX_VALUE || p->retry_window_ms > WINDOW_MAX_VALUE ||
              p->pass_ttl_ms > WINDOW_MAX_VALUE ||
              (op->has_awl &&
               (p->awl_ttl_ms < 1 || p->awl_ttl_ms > WINDOW_MAX_VALUE || p->awl_interval_ms < 0));
    if (bad)
        store_op_fail(op, "bad greylist request (delays out of range)");
    return op_submit(op, bad);
}

struct store_op *store_once(struct store *s, const char *key, int64_t interval_ms, store_once_cb cb,
                            void *arg)
{
    struct store_op *op = op_new(s, OP_ONCE, arg);
    op->cb.once = cb;
    op->interval = interval_ms;
    store_hash(KIND_ONCE, key, op->key);
    int bad = interval_ms < 1 || interval_ms > WINDOW_MAX_VALUE;
    if (bad)
        store_op_fail(op, "bad notify-once interval %lld ms", (long long)interval_ms);
    return op_submit(op, bad);
}
