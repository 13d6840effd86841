/*
 * store_redis.c - the Redis back end: hiredis (0.14 and later) with its libevent adapter on
 * our loop; every decision one EVALSHA of a store_lua.c script (NOSCRIPT: sent again as EVAL,
 * which also caches it), the clock Redis's own TIME, every key with a TTL.
 *
 * Failure handling, since hiredis 0.14 has no timeouts: each operation arms its own timer
 * (one libevent common timeout: a queue, not a heap); when it fires the caller gets a failure
 * at once and the operation is detached from its pending reply, which is dropped when (if)
 * it comes. A lost connection fails what was in flight; the next operation reconnects, with a
 * backoff (50 ms doubling up to retry_interval_ms) during which operations fail at once.
 * After failure_threshold consecutive failures the circuit breaker opens: the connection is
 * dropped, every operation fails at once for retry_interval_ms, then one trial (connect,
 * AUTH, SELECT, PING under the same timeout) closes it or opens it again. Opening and closing
 * are logged once each way and reported through options.on_state; counters feed the metrics.
 * Failures found inside a call, and those of a connection torn down, are answered from the
 * zero-delay event, never inside the caller's call. The synchronous admin side (the
 * `policyd ratelimit` command) is at the end: a blocking connection, the same scripts.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/store/store_admin.h"
#include "policyd/store/store_int.h"

#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <netdb.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BACKOFF_MIN_MS 50
#define MAX_ARGS (10 + 3 * WINDOW_MAX_LIMITS)

enum breaker { BR_CLOSED, BR_OPEN, BR_TRIAL };
enum script { SC_RL, SC_GREY, SC_ONCE, SC_COUNT };

struct target {
    char *path; /* unix socket, or NULL */
    char host[NI_MAXHOST];
    int port;
};

struct redis {
    struct store *s;
    struct target t;
    redisAsyncContext *ac;
    enum breaker breaker;
    int up, closing, consecutive;
    int64_t backoff_ms, next_connect, down_since;
    struct event *probe_ev;      /* cool-down, then the trial's deadline */
    struct pending *trial;       /* the trial PING in flight */
    const struct timeval *op_tv; /* the common timeout of every operation */
    char sha[SC_COUNT][41];
    char last_error[200];
    unsigned long long timeouts, fast_fails, late, connects, connect_failures, state_changes;
};

struct pending {
    struct redis *r;
    struct store_op *op; /* NULL once answered (timeout) or cancelled */
    struct event *timer;
    int trial, eval;
};

static const char *const scripts[SC_COUNT] = {store_lua_rl, store_lua_grey, store_lua_once};

static void sha1_hex(const char *text, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(text, strlen(text), md, &n, EVP_sha1(), NULL) || n != 20)
        log_panic("store: SHA-1 unavailable from OpenSSL");
    for (unsigned i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* key_name - prefix + tag + ":" + 32 hex digits. */
static void key_name(char *out, size_t cap, const char *prefix, const char *tag,
                     const unsigned char h[STORE_HASH_LEN])
{
    int n = snprintf(out, cap, "%s%s:", prefix, tag);
    for (int i = 0; i < STORE_HASH_LEN && n > 0 && (size_t)n + 3 <= cap; i++)
        n += snprintf(out + n, cap - (size_t)n, "%02x", h[i]);
}

/* target_parse - "unix:PATH" or "inet:HOST[:PORT]" (HOST resolved now: a name is looked up
 * once, at start-up, never on the loop). */
static int target_parse(const char *rest, struct target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (strncmp(rest, "unix:", 5) == 0) {
        t->path = xstrdup(rest + 5);
        return 0;
    }
    char host[NI_MAXHOST];
    const char *hp = rest + 5, *colon;
    t->port = 6379;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        if (!close || (size_t)(close - hp - 1) >= sizeof(host)) {
            snprintf(err, errlen, "bad Redis address '%s'", rest);
            return -1;
        }
        memcpy(host, hp + 1, (size_t)(close - hp - 1));
        host[close - hp - 1] = '\0';
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strrchr(hp, ':');
        size_t n = colon ? (size_t)(colon - hp) : strlen(hp);
        if (n >= sizeof(host)) {
            snprintf(err, errlen, "bad Redis address '%s'", rest);
            return -1;
        }
        memcpy(host, hp, n);
        host[n] = '\0';
    }
    if (colon)
        t->port = atoi(colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, NULL, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve Redis host %s: %s", host, gai_strerror(rc));
        return -1;
    }
    rc =
        getnameinfo(ai->ai_addr, ai->ai_addrlen, t->host, sizeof(t->host), NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve Redis host %s: %s", host, gai_strerror(rc));
        return -1;
    }
    return 0;
}

static void pending_free(struct pending *p)
{
    if (p->timer)
        event_free(p->timer);
    free(p);
}

/* teardown - drop the connection; hiredis answers what was in flight with NULL replies. */
static void teardown(struct redis *r)
{
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    if (ac)
        redisAsyncFree(ac); /* deferred by hiredis when inside one of its callbacks */
}

static void probe_arm(struct redis *r)
{
    long ms = r->s->opt.retry_interval_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(r->probe_ev, &tv);
}

static void state_change(struct redis *r, int up, const char *detail)
{
    struct store *s = r->s;
    r->up = up;
    r->state_changes++;
    if (up)
        log_info("state store %s is up again after %.1f s down", s->spec,
                 (double)(store_mono_ms() - r->down_since) / 1000.0);
    else
        log_warn("state store %s is down: %s; rate limits and greylisting apply their "
                 "store-failure policy; next trial in %ld ms",
                 s->spec, detail, s->opt.retry_interval_ms);
    if (s->opt.on_state)
        s->opt.on_state(s->opt.state_arg, up, detail);
}

static void breaker_open(struct redis *r)
{
    int was_up = r->breaker == BR_CLOSED;
    r->breaker = BR_OPEN;
    teardown(r);
    probe_arm(r);
    if (was_up && r->up) {
        char why[300];
        r->down_since = store_mono_ms();
        snprintf(why, sizeof(why), "%d consecutive failures (last: %s)", r->consecutive,
                 r->last_error);
        state_change(r, 0, why);
    }
}

static void note_failure(struct redis *r, const char *detail)
{
    if (detail != r->last_error)
        snprintf(r->last_error, sizeof(r->last_error), "%s", detail);
    r->consecutive++;
    if (r->breaker == BR_CLOSED && r->consecutive >= r->s->opt.failure_threshold)
        breaker_open(r);
}

static void note_success(struct redis *r)
{
    r->consecutive = 0;
    r->backoff_ms = 0;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv);

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (status == REDIS_OK)
        return;
    r->connect_failures++;
    if (r->ac == ac)
        r->ac = NULL; /* hiredis frees it after this callback */
    snprintf(r->last_error, sizeof(r->last_error), "cannot connect: %s", ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    (void)status;
    if (r->ac == ac)
        r->ac = NULL;
}

/* handshake_cb - AUTH and SELECT: an error drops the connection (what follows fails). */
static void handshake_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = ac->data;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_ERROR || r->ac != ac)
        return;
    snprintf(r->last_error, sizeof(r->last_error), "%s refused: %.120s", (const char *)priv,
             rep->str);
    teardown(r);
}

/* connect_now - a new connection with AUTH and SELECT queued; 0, or -1 (last_error set). */
static int connect_now(struct redis *r)
{
    struct store *s = r->s;
    int64_t now = store_mono_ms();
    r->next_connect = now + r->backoff_ms;
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > s->opt.retry_interval_ms)
        r->backoff_ms = s->opt.retry_interval_ms;
    r->connects++;
    redisAsyncContext *ac =
        r->t.path ? redisAsyncConnectUnix(r->t.path) : redisAsyncConnect(r->t.host, r->t.port);
    if (!ac)
        xalloc_fail(sizeof(redisAsyncContext));
    if (ac->err) {
        snprintf(r->last_error, sizeof(r->last_error), "cannot connect: %s", ac->errstr);
        r->connect_failures++;
        redisAsyncFree(ac);
        return -1;
    }
    ac->data = r;
    if (redisLibeventAttach(ac, s->base) != REDIS_OK) {
        redisAsyncFree(ac);
        snprintf(r->last_error, sizeof(r->last_error), "cannot attach to the event loop");
        return -1;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    if (s->password)
        redisAsyncCommand(ac, handshake_cb, (void *)"AUTH", "AUTH %s", s->password);
    if (s->opt.redis_db != 0)
        redisAsyncCommand(ac, handshake_cb, (void *)"SELECT", "SELECT %d", s->opt.redis_db);
    return 0;
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg);

/* send_op - write op's script call (EVALSHA, or EVAL once NOSCRIPT was seen) under p. */
static int send_op(struct redis *r, struct pending *p)
{
    struct store *s = r->s;
    struct store_op *op = p->op;
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    char num[MAX_ARGS][24], key[2][200], now[24] = "";
    int argc = 0, sc, n = 0;

    if (s->opt.clock_ms)
        snprintf(now, sizeof(now), "%lld", (long long)store_now(s));
#define ARG(str) (argv[argc] = (str), lens[argc] = strlen(argv[argc]), argc++)
#define NUM(v) (snprintf(num[n], sizeof(num[n]), "%lld", (long long)(v)), ARG(num[n++]))
    sc = op->type == OP_GREY ? SC_GREY : op->type == OP_ONCE ? SC_ONCE : SC_RL;
    ARG(p->eval ? "EVAL" : "EVALSHA");
    ARG(p->eval ? scripts[sc] : r->sha[sc]);
    switch (op->type) {
    case OP_RESERVE:
    case OP_ADJUST:
        key_name(key[0], sizeof(key[0]), s->prefix, "rl", op->key);
        ARG("1");
        ARG(key[0]);
        ARG(op->type == OP_RESERVE ? "r" : "a");
        ARG(op->name);
        NUM(op->units);
        NUM(op->at);
        ARG(now);
        NUM(op->nlims);
        for (int i = 0; i < op->nlims; i++) {
            NUM(op->lims[i].limit);
            NUM(op->lims[i].period);
            NUM(window_grain(op->lims[i].period));
        }
        break;
    case OP_GREY:
        key_name(key[0], sizeof(key[0]), s->prefix, "gl", op->key);
        key_name(key[1], sizeof(key[1]), s->prefix, "awl", op->has_awl ? op->awl : op->key);
        ARG(op->has_awl ? "2" : "1");
        ARG(key[0]);
        if (op->has_awl)
            ARG(key[1]);
        ARG(now);
        NUM(op->grey.delay_ms);
        NUM(op->grey.retry_window_ms);
        NUM(op->grey.pass_ttl_ms);
        NUM(op->grey.awl_passes);
        NUM(op->grey.awl_ttl_ms);
        NUM(op->grey.awl_interval_ms);
        break;
    case OP_ONCE:
        key_name(key[0], sizeof(key[0]), s->prefix, "once", op->key);
        ARG("1");
        ARG(key[0]);
        NUM(op->interval);
        ARG(now);
        break;
    }
#undef ARG
#undef NUM
    if (!r->ac || redisAsyncCommandArgv(r->ac, reply_cb, p, argc, argv, lens) != REDIS_OK) {
        snprintf(r->last_error, sizeof(r->last_error), "cannot send: connection closing");
        return -1;
    }
    return 0;
}

/* fail_soon - answer op with a failure from the zero-delay event. */
static void fail_soon(struct store_op *op, const char *fmt, const char *detail)
{
    op->pending = NULL;
    store_op_fail(op, fmt, detail);
    store_op_later(op);
}

static void redis_submit(struct store *s, struct store_op *op)
{
    struct redis *r = s->impl;
    char why[300];

    if (r->breaker != BR_CLOSED) {
        r->fast_fails++;
        snprintf(why, sizeof(why), "%.1f s ago (last: %s)",
                 (double)(store_mono_ms() - r->down_since) / 1000.0, r->last_error);
        fail_soon(op, "redis: circuit open, down since %s", why);
        return;
    }
    if (!r->ac) {
        if (store_mono_ms() < r->next_connect) {
            r->fast_fails++;
            fail_soon(op, "redis: not connected (%s)", r->last_error);
            note_failure(r, r->last_error);
            return;
        }
        if (connect_now(r) < 0) {
            r->fast_fails++;
            fail_soon(op, "redis: %s", r->last_error);
            note_failure(r, r->last_error);
            return;
        }
    }
    struct pending *p = xcalloc(1, sizeof(*p));
    p->r = r;
    p->op = op;
    if (send_op(r, p) < 0) {
        free(p);
        r->fast_fails++;
        fail_soon(op, "redis: %s", r->last_error);
        note_failure(r, r->last_error);
        return;
    }
    p->timer = event_new(s->base, -1, 0, timeout_cb, p);
    if (!p->timer)
        xalloc_fail(sizeof(struct event *));
    event_add(p->timer, r->op_tv);
    op->pending = p;
    op->where = OP_INFLIGHT;
}

static void redis_cancel(struct store *s, struct store_op *op)
{
    struct pending *p = op->pending;
    (void)s;
    if (p) {
        p->op = NULL; /* the reply, if any, is dropped */
        event_del(p->timer);
    }
    op->pending = NULL;
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct redis *r = p->r;
    struct store_op *op = p->op;
    char why[64];
    (void)fd;
    (void)what;
    if (!op)
        return;
    p->op = NULL;
    op->pending = NULL;
    r->timeouts++;
    snprintf(why, sizeof(why), "timeout after %ld ms", r->s->opt.timeout_ms);
    store_op_fail(op, "redis: %s", why);
    note_failure(r, why); /* may tear the connection down, freeing p */
    op->where = OP_NEW;
    store_op_done(op);
}

/* parse - fill op's answer from the script's reply; 0, or -1 (unexpected reply). */
static int parse(struct store_op *op, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type != REDIS_REPLY_INTEGER)
            return -1;
#define I(i) (rep->element[i]->integer)
    if (op->type == OP_RESERVE || op->type == OP_ADJUST) {
        struct store_rl_result *r = &op->res.rl;
        if (rep->elements < 5 || I(4) != op->nlims || rep->elements != 5 + 4 * (size_t)op->nlims)
            return -1;
        r->status = STORE_OK;
        r->allowed = (int)I(0);
        r->blocked = (int)I(1);
        r->now_ms = r->at_ms = I(2);
        r->retry_ms = I(3);
        r->retry_after_ms = r->retry_ms == STORE_NEVER ? STORE_NEVER : r->retry_ms - r->now_ms;
        r->nlimits = op->nlims;
        for (int i = 0; i < op->nlims; i++) {
            struct store_usage *u = &r->limits[i];
            u->limit = op->lims[i].limit;
            u->period_ms = op->lims[i].period;
            u->used = I(5 + 4 * i);
            u->first_ms = I(6 + 4 * i);
            u->fit_ms = I(7 + 4 * i);
            u->over = (int)I(8 + 4 * i);
        }
    } else if (op->type == OP_GREY) {
        struct store_grey_result *r = &op->res.grey;
        if (rep->elements != 6 || I(0) < STORE_GREY_NEW || I(0) > STORE_GREY_AWL)
            return -1;
        r->status = STORE_OK;
        r->state = (enum store_grey_state)I(0);
        r->now_ms = I(1);
        r->first_ms = I(2);
        r->retry_ms = I(3);
        r->passed_ms = I(4);
        r->awl_count = I(5);
    } else {
        if (rep->elements != 2)
            return -1;
        op->res.once.status = STORE_OK;
        op->res.once.first = (int)I(0);
        op->res.once.now_ms = I(1);
    }
#undef I
    return 0;
}

/* trial_result - the trial's outcome (once: a late PING reply is dropped). */
static void trial_result(struct redis *r, int ok)
{
    if (r->trial)
        r->trial->trial = 0;
    r->trial = NULL;
    event_del(r->probe_ev);
    if (ok) {
        r->breaker = BR_CLOSED;
        note_success(r);
        state_change(r, 1, "trial PING answered");
    } else {
        r->breaker = BR_OPEN;
        teardown(r);
        probe_arm(r);
    }
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct pending *p = priv;
    struct redis *r = p->r;
    redisReply *rep = reply;
    struct store_op *op = p->op;
    char why[200];

    if (!rep) { /* the connection is gone: hiredis frees ac after the callbacks */
        if (r->ac == ac) {
            r->ac = NULL;
            snprintf(r->last_error, sizeof(r->last_error), "connection lost: %s",
                     ac->errstr[0] ? ac->errstr : "closed");
        }
        if (r->closing) {
            if (op) {
                free(op->name);
                free(op);
            }
        } else if (p->trial) {
            trial_result(r, 0);
        } else if (op) {
            snprintf(why, sizeof(why), "%s", r->last_error);
            event_del(p->timer);
            fail_soon(op, "redis: %s", why);
            note_failure(r, why);
        }
        pending_free(p);
        return;
    }
    if (p->trial) {
        p->trial = 0;
        trial_result(r, rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0);
        pending_free(p);
        return;
    }
    if (!op) { /* answered already (timeout) or cancelled */
        r->late++;
        pending_free(p);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 && !p->eval) {
        p->eval = 1; /* the script cache was flushed or this is a new server */
        if (send_op(r, p) == 0)
            return;
    }
    event_del(p->timer);
    p->op = NULL;
    op->pending = NULL;
    op->where = OP_NEW;
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%.150s", rep->str);
        store_op_fail(op, "redis: %s", why);
        note_failure(r, why);
    } else if (parse(op, rep) < 0) {
        store_op_fail(op, "redis: unexpected reply to a script");
        note_failure(r, "unexpected reply to a script");
    } else {
        note_success(r);
    }
    pending_free(p);
    store_op_done(op);
}

static void probe_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis *r = arg;
    (void)fd;
    (void)what;
    if (r->breaker == BR_TRIAL) { /* no answer to the trial in time */
        r->timeouts++;
        snprintf(r->last_error, sizeof(r->last_error), "no answer to the trial PING in %ld ms",
                 r->s->opt.timeout_ms);
        trial_result(r, 0);
        return;
    }
    r->breaker = BR_TRIAL;
    r->backoff_ms = 0;
    if (!r->ac && connect_now(r) < 0) {
        trial_result(r, 0);
        return;
    }
    struct pending *p = xcalloc(1, sizeof(*p));
    p->r = r;
    p->trial = 1;
    if (redisAsyncCommand(r->ac, reply_cb, p, "PING") != REDIS_OK) {
        free(p);
        trial_result(r, 0);
        return;
    }
    r->trial = p;
    /* The trial's deadline is the probe event itself. */
    long ms = r->s->opt.timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(r->probe_ev, &tv);
}

static void redis_close(struct store *s)
{
    struct redis *r = s->impl;
    if (!r)
        return;
    r->closing = 1;
    teardown(r); /* in-flight operations are freed without an answer */
    if (r->probe_ev)
        event_free(r->probe_ev);
    free(r->t.path);
    free(r);
    s->impl = NULL;
}

static void redis_stats(const struct store *s, struct store_stats *st)
{
    const struct redis *r = s->impl;
    static const char *const names[] = {"closed", "open", "trial"};
    st->backend = "redis";
    st->up = r->breaker == BR_CLOSED;
    st->breaker = names[r->breaker];
    st->timeouts = r->timeouts;
    st->fast_fails = r->fast_fails;
    st->late_replies = r->late;
    st->connects = r->connects;
    st->connect_failures = r->connect_failures;
    st->state_changes = r->state_changes;
}

static const struct store_backend redis_backend = {"redis", redis_submit, redis_cancel, redis_close,
                                                   redis_stats};

int store_redis_open(struct store *s, const char *target, char *err, size_t errlen)
{
    struct redis *r = xcalloc(1, sizeof(*r));
    r->s = s;
    r->up = 1;
    s->impl = r;
    s->be = &redis_backend;
    if (target_parse(target, &r->t, err, errlen) < 0)
        return -1;
    for (int i = 0; i < SC_COUNT; i++)
        sha1_hex(scripts[i], r->sha[i]);
    struct timeval tv = {s->opt.timeout_ms / 1000, (s->opt.timeout_ms % 1000) * 1000};
    r->op_tv = event_base_init_common_timeout(s->base, &tv);
    r->probe_ev = event_new(s->base, -1, 0, probe_cb, r);
    if (!r->op_tv || !r->probe_ev)
        xalloc_fail(sizeof(struct event *));
    snprintf(r->last_error, sizeof(r->last_error), "not connected yet");
    if (connect_now(r) < 0)
        log_debug("state store %s: %s", s->spec, r->last_error);
    return 0;
}

/* ---- the admin side: a blocking connection ---- */

struct redis_admin {
    redisContext *c;
    char *prefix;
    struct store_options opt;
};

static redisReply *admin_cmd(struct redis_admin *a, int argc, const char **argv, char *err,
                             size_t errlen)
{
    redisReply *rep = redisCommandArgv(a->c, argc, argv, NULL);
    if (!rep) {
        snprintf(err, errlen, "redis: %s", a->c->errstr[0] ? a->c->errstr : "no reply");
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %.200s", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* admin_rl - run the rate-limit script in mode m on key name kname (readable key name). */
static redisReply *admin_rl(struct redis_admin *a, const char *kname, const char *m,
                            const char *name, int64_t units, char *err, size_t errlen)
{
    char u[24], now[24] = "";
    snprintf(u, sizeof(u), "%lld", (long long)units);
    if (a->opt.clock_ms)
        snprintf(now, sizeof(now), "%lld", (long long)a->opt.clock_ms(a->opt.clock_arg));
    const char *argv[] = {"EVAL", store_lua_rl, "1", kname, m, name, u, "0", now, "0"};
    return admin_cmd(a, 10, argv, err, errlen);
}

/* show_parse - a show-mode reply into info; 1 found, 0 none, -1 unexpected. */
static int show_parse(const redisReply *rep, struct store_rl_info *info)
{
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 5 ||
        rep->element[3]->type != REDIS_REPLY_STRING)
        return -1;
    for (size_t i = 0; i < rep->elements; i++)
        if (i != 3 && rep->element[i]->type != REDIS_REPLY_INTEGER)
            return -1;
#define I(i) (rep->element[i]->integer)
    size_t nwin = (size_t)I(4);
    if (rep->elements != 5 + 5 * nwin)
        return -1;
    memset(info, 0, sizeof(*info));
    snprintf(info->key, sizeof(info->key), "%s", rep->element[3]->str);
    info->now_ms = I(1);
    info->blocked_until = I(2);
    info->ratio = info->blocked_until > info->now_ms ? 1e300 : 0;
    for (size_t i = 0; i < nwin && i < STORE_ADMIN_WINDOWS; i++) {
        struct store_rl_window *w = &info->w[info->nwindows++];
        w->period_ms = I(5 + 5 * i);
        w->limit = I(6 + 5 * i);
        w->used = I(7 + 5 * i);
        w->first_ms = I(8 + 5 * i);
        w->expires_ms = I(9 + 5 * i);
        double ratio = w->limit > 0 ? (double)w->used / (double)w->limit : w->used > 0 ? 1e300 : 0;
        if (ratio > info->ratio)
            info->ratio = ratio;
    }
#undef I
    return (int)rep->element[0]->integer != 0;
}

static int redis_admin_show(void *impl, const char *key, struct store_rl_info *info, char *err,
                            size_t errlen)
{
    struct redis_admin *a = impl;
    unsigned char h[STORE_HASH_LEN];
    char kname[200];
    store_hash(KIND_RL, key, h);
    key_name(kname, sizeof(kname), a->prefix, "rl", h);
    redisReply *rep = admin_rl(a, kname, "s", key, 0, err, errlen);
    if (!rep)
        return -1;
    int rc = show_parse(rep, info);
    freeReplyObject(rep);
    if (rc < 0)
        snprintf(err, errlen, "redis: unexpected reply to a script");
    if (rc > 0 && !info->key[0])
        snprintf(info->key, sizeof(info->key), "%s", key);
    return rc;
}

static int redis_admin_reset(void *impl, const char *key, char *err, size_t errlen)
{
    struct redis_admin *a = impl;
    unsigned char h[STORE_HASH_LEN];
    char kname[200];
    store_hash(KIND_RL, key, h);
    key_name(kname, sizeof(kname), a->prefix, "rl", h);
    const char *argv[] = {"DEL", kname};
    redisReply *rep = admin_cmd(a, 2, argv, err, errlen);
    if (!rep)
        return -1;
    int rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);
    return rc;
}

/* admin_block - mode "b" (block for units ms) or "u" (unblock); 1 if blocked before. */
static int admin_block(struct redis_admin *a, const char *key, const char *m, int64_t units,
                       char *err, size_t errlen)
{
    struct store_rl_info before;
    unsigned char h[STORE_HASH_LEN];
    char kname[200];
    int found = redis_admin_show(a, key, &before, err, errlen);
    if (found < 0)
        return -1;
    store_hash(KIND_RL, key, h);
    key_name(kname, sizeof(kname), a->prefix, "rl", h);
    redisReply *rep = admin_rl(a, kname, m, key, units, err, errlen);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return found > 0 && before.blocked_until > before.now_ms;
}

static int redis_admin_block(void *impl, const char *key, int64_t duration_ms, char *err,
                             size_t errlen)
{
    return admin_block(impl, key, "b", duration_ms, err, errlen) < 0 ? -1 : 0;
}

static int redis_admin_unblock(void *impl, const char *key, char *err, size_t errlen)
{
    return admin_block(impl, key, "u", 0, err, errlen);
}

static int redis_admin_each(void *impl, int (*fn)(const struct store_rl_info *info, void *arg),
                            void *arg, char *err, size_t errlen)
{
    struct redis_admin *a = impl;
    char cursor[32] = "0", match[400];
    size_t n = 0;
    /* The prefix, glob characters escaped, then the rate-limit tag. */
    for (const char *p = a->prefix; *p && n + 8 < sizeof(match); p++) {
        if (strchr("*?[]\\", *p))
            match[n++] = '\\';
        match[n++] = *p;
    }
    snprintf(match + n, sizeof(match) - n, "rl:*");
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", match, "COUNT", "1000"};
        redisReply *rep = admin_cmd(a, 6, argv, err, errlen);
        if (!rep)
            return -1;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            snprintf(err, errlen, "redis: unexpected reply to SCAN");
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        for (size_t i = 0; i < rep->element[1]->elements; i++) {
            struct store_rl_info info;
            const redisReply *k = rep->element[1]->element[i];
            if (k->type != REDIS_REPLY_STRING)
                continue;
            redisReply *s = admin_rl(a, k->str, "s", "", 0, err, errlen);
            if (!s) {
                freeReplyObject(rep);
                return -1;
            }
            int found = show_parse(s, &info);
            freeReplyObject(s);
            if (found > 0 && fn(&info, arg) < 0) {
                freeReplyObject(rep);
                return 0;
            }
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static void redis_admin_close(void *impl)
{
    struct redis_admin *a = impl;
    redisFree(a->c);
    free(a->prefix);
    free(a);
}

static const struct store_admin_ops redis_admin_ops = {redis_admin_show,  redis_admin_reset,
                                                       redis_admin_block, redis_admin_unblock,
                                                       redis_admin_each,  redis_admin_close};

void *store_redis_admin_open(const struct store_options *o, const char *target,
                             const char *password, const struct store_admin_ops **ops, char *err,
                             size_t errlen)
{
    struct target t;
    if (target_parse(target, &t, err, errlen) < 0)
        return NULL;
    long ms = o->timeout_ms < 1000 ? 1000 : o->timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    redisContext *c = t.path ? redisConnectUnixWithTimeout(t.path, tv)
                             : redisConnectWithTimeout(t.host, t.port, tv);
    free(t.path);
    if (!c)
        xalloc_fail(sizeof(redisContext));
    if (c->err) {
        snprintf(err, errlen, "cannot connect to Redis (%s): %s", o->spec, c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    struct redis_admin *a = xcalloc(1, sizeof(*a));
    a->c = c;
    a->opt = *o;
    a->prefix = xstrdup(o->key_prefix ? o->key_prefix : "");
    char db[16];
    snprintf(db, sizeof(db), "%d", o->redis_db);
    const char *auth[] = {"AUTH", password}, *sel[] = {"SELECT", db};
    redisReply *rep;
    if (password) {
        if (!(rep = admin_cmd(a, 2, auth, err, errlen))) {
            redis_admin_close(a);
            return NULL;
        }
        freeReplyObject(rep);
    }
    if (o->redis_db != 0) {
        if (!(rep = admin_cmd(a, 2, sel, err, errlen))) {
            redis_admin_close(a);
            return NULL;
        }
        freeReplyObject(rep);
    }
    *ops = &redis_admin_ops;
    return a;
}
