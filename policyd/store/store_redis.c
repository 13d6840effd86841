/*
 * store_redis.c - the Redis back end: hiredis (0.14 and later) with its libevent adapter on
 * our loop; every call one EVALSHA of a store_lua.c script (NOSCRIPT: sent again as EVAL,
 * which also caches it), the clock Redis's own TIME, every key with a TTL. Rate-limit
 * operations are batched: those asked during one turn of the loop wait in a queue for a
 * zero-delay event, then go as one script call per BATCH_MAX (each decision still atomic and
 * in order; a record is read and written once per batch), written to the socket at once;
 * Redis pays its per-call cost once per batch and both sides parse one reply. Greylisting and
 * notify-once go one call each.
 *
 * Failure handling, since hiredis 0.14 has no timeouts: each call arms its own timer (one
 * libevent common timeout: a queue, not a heap); when it fires its operations get a failure
 * at once and are detached from the pending reply, which is dropped when (if) it comes. A lost
 * connection fails what was in flight; the next operation reconnects, with a backoff (50 ms
 * doubling up to retry_interval_ms) during which operations fail at once. After failure_threshold
 * consecutive failures the circuit breaker opens: the connection is dropped, every operation fails
 * at once for retry_interval_ms, then one trial (connect, AUTH, SELECT, PING under the same
 * timeout) closes it or opens it again. Opening and closing are logged once each way and reported
 * through options.on_state; counters feed the metrics (per operation: a batch that fails counts
 * each of its operations). Every answer goes through the store's zero-delay delivery event, never
 * inside the caller's call nor inside hiredis's. The synchronous admin side (the `policyd
 * ratelimit` command) is at the end: a blocking connection, the same scripts.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/store/store_admin.h"
#include "policyd/store/store_int.h"

#include "policyd/lib/log.h"
#include "policyd/lib/units.h"
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
#define BATCH_MAX 64 /* rate-limit operations in one script call */

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
    struct store_op_queue queue; /* rate-limit operations for the next batch */
    size_t queued;
    struct event *flush_ev; /* zero-delay: sends the queue */
    char *buf;              /* a batch's command, built here */
    size_t bufcap;
};

/* One script call in flight: a batch of rate-limit operations, one greylist or notify-once
 * operation, or the breaker's trial PING (no operation). */
struct pending {
    struct redis *r;
    struct event *timer;
    int trial, eval;
    enum script sc;
    int nops, live;                  /* operations sent; of them still waiting for this reply */
    int late;                        /* of them answered already (timeout) or cancelled */
    struct store_op *ops[BATCH_MAX]; /* NULL once answered or cancelled */
    unsigned char nlims[BATCH_MAX];  /* limits of each: its part of the answer */
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

/* key_name - prefix + tag + ":" + 32 hex digits into out (cap >= 200: the prefix has 64
 * characters at most); its length. */
static size_t key_name(char *out, size_t cap, const char *prefix, const char *tag,
                       const unsigned char h[STORE_HASH_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t np = strlen(prefix), nt = strlen(tag), n;
    if (np + nt + 2 + 2 * STORE_HASH_LEN > cap)
        log_panic("store: key prefix of %zu characters", np);
    memcpy(out, prefix, np);
    memcpy(out + np, tag, nt);
    n = np + nt;
    out[n++] = ':';
    for (int i = 0; i < STORE_HASH_LEN; i++) {
        out[n++] = hex[h[i] >> 4];
        out[n++] = hex[h[i] & 15];
    }
    out[n] = '\0';
    return n;
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

/* send_one - write a greylist or notify-once call (EVALSHA, or EVAL once NOSCRIPT was seen)
 * for p's one operation. */
static int send_one(struct redis *r, struct pending *p)
{
    struct store *s = r->s;
    struct store_op *op = p->ops[0];
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    char num[MAX_ARGS][24], key[2][200], now[24] = "";
    int argc = 0, n = 0;

    if (s->opt.clock_ms)
        snprintf(now, sizeof(now), "%lld", (long long)store_now(s));
#define ARG(str) (argv[argc] = (str), lens[argc] = strlen(argv[argc]), argc++)
#define NUM(v) (snprintf(num[n], sizeof(num[n]), "%lld", (long long)(v)), ARG(num[n++]))
    ARG(p->eval ? "EVAL" : "EVALSHA");
    ARG(p->eval ? scripts[p->sc] : r->sha[p->sc]);
    if (op->type == OP_GREY) {
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
    } else {
        key_name(key[0], sizeof(key[0]), s->prefix, "once", op->key);
        ARG("1");
        ARG(key[0]);
        NUM(op->interval);
        ARG(now);
    }
#undef ARG
#undef NUM
    if (!r->ac || redisAsyncCommandArgv(r->ac, reply_cb, p, argc, argv, lens) != REDIS_OK) {
        snprintf(r->last_error, sizeof(r->last_error), "cannot send: connection closing");
        return -1;
    }
    return 0;
}

/* put_double - v as a little-endian IEEE double (exact: |v| <= WINDOW_MAX_VALUE or a time). */
static void put_double(unsigned char *out, int64_t v)
{
    double d = (double)v;
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(u >> (8 * i));
}

/* get_double - the little-endian double at in, as an integer; -1 in *bad if it is not one
 * a script could have sent (beyond 2^53, or not a number). */
static int64_t get_double(const unsigned char *in, int *bad)
{
    uint64_t u = 0;
    double d;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)in[i] << (8 * i);
    memcpy(&d, &u, sizeof(d));
    if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0)) {
        *bad = -1;
        return 0;
    }
    return (int64_t)d;
}

/* pack_op - a rate-limit operation's numbers for store_lua_rl into out (at least
 * 8 * (4 + 2 * WINDOW_MAX_LIMITS) bytes); their length. */
static size_t pack_op(unsigned char *out, int mode, int64_t units, int64_t at,
                      const struct window_limit *lims, int n)
{
    size_t k = 0;
    put_double(out + 8 * k++, mode);
    put_double(out + 8 * k++, units);
    put_double(out + 8 * k++, at);
    put_double(out + 8 * k++, n);
    for (int i = 0; i < n; i++) {
        put_double(out + 8 * k++, lims[i].limit);
        put_double(out + 8 * k++, lims[i].period);
    }
    return 8 * k;
}

/* buf_put - append a bulk string ("$N\r\n" data "\r\n", or "*N\r\n" when star) to r->buf at
 * *len. */
static void buf_put(struct redis *r, size_t *len, int star, const void *data, size_t n)
{
    char head[32];
    head[0] = star ? '*' : '$';
    size_t h = (size_t)(units_put_uint(head + 1, n) - head);
    head[h++] = '\r';
    head[h++] = '\n';
    r->buf = xgrow(r->buf, &r->bufcap, *len + h + (star ? 0 : n + 2), 1);
    memcpy(r->buf + *len, head, h);
    *len += h;
    if (star)
        return;
    memcpy(r->buf + *len, data, n);
    memcpy(r->buf + *len + n, "\r\n", 2);
    *len += n + 2;
}

/* send_batch - write p's rate-limit operations as one call of store_lua_rl (EVALSHA, or EVAL
 * once NOSCRIPT was seen), formatted here in Redis's protocol. */
static int send_batch(struct redis *r, struct pending *p)
{
    struct store *s = r->s;
    char key[200], now[24] = "", nkeys[16];
    unsigned char nums[8 * (4 + 2 * WINDOW_MAX_LIMITS)];
    size_t len = 0;

    if (s->opt.clock_ms)
        snprintf(now, sizeof(now), "%lld", (long long)store_now(s));
    snprintf(nkeys, sizeof(nkeys), "%d", p->nops);
    buf_put(r, &len, 1, NULL, (size_t)(4 + 3 * p->nops));
    buf_put(r, &len, 0, p->eval ? "EVAL" : "EVALSHA", p->eval ? 4 : 7);
    const char *body = p->eval ? scripts[SC_RL] : r->sha[SC_RL];
    buf_put(r, &len, 0, body, strlen(body));
    buf_put(r, &len, 0, nkeys, strlen(nkeys));
    for (int i = 0; i < p->nops; i++)
        buf_put(r, &len, 0, key, key_name(key, sizeof(key), s->prefix, "rl", p->ops[i]->key));
    buf_put(r, &len, 0, now, strlen(now));
    for (int i = 0; i < p->nops; i++) {
        const struct store_op *op = p->ops[i];
        buf_put(r, &len, 0, op->name, strlen(op->name));
        buf_put(
            r, &len, 0, nums,
            pack_op(nums, op->type == OP_RESERVE ? 1 : 2, op->units, op->at, op->lims, op->nlims));
    }
    if (!r->ac || redisAsyncFormattedCommand(r->ac, reply_cb, p, r->buf, len) != REDIS_OK) {
        snprintf(r->last_error, sizeof(r->last_error), "cannot send: connection closing");
        return -1;
    }
    return 0;
}

static int send_pending(struct redis *r, struct pending *p)
{
    return p->sc == SC_RL ? send_batch(r, p) : send_one(r, p);
}

/* fail_soon - answer op with a failure from the zero-delay event. */
static void fail_soon(struct store_op *op, const char *fmt, const char *detail)
{
    op->pending = NULL;
    store_op_fail(op, fmt, detail);
    store_op_later(op);
}

/* gate - 0 if an operation can be sent now (connecting first if there is no connection and
 * the backoff allows), else -1 with the failure in why, counted for one operation. */
static int gate(struct redis *r, char *why, size_t cap)
{
    if (r->breaker != BR_CLOSED) {
        r->fast_fails++;
        snprintf(why, cap, "redis: circuit open, down since %.1f s ago (last: %s)",
                 (double)(store_mono_ms() - r->down_since) / 1000.0, r->last_error);
        return -1;
    }
    if (!r->ac) {
        if (store_mono_ms() < r->next_connect) {
            r->fast_fails++;
            snprintf(why, cap, "redis: not connected (%s)", r->last_error);
            note_failure(r, r->last_error);
            return -1;
        }
        if (connect_now(r) < 0) {
            r->fast_fails++;
            snprintf(why, cap, "redis: %s", r->last_error);
            note_failure(r, r->last_error);
            return -1;
        }
    }
    return 0;
}

/* sent - p's call is written: its operations in flight under its timer. */
static void sent(struct redis *r, struct pending *p)
{
    p->timer = event_new(r->s->base, -1, 0, timeout_cb, p);
    if (!p->timer)
        xalloc_fail(sizeof(struct event *));
    event_add(p->timer, r->op_tv);
    p->live = p->nops;
    for (int i = 0; i < p->nops; i++) {
        p->ops[i]->pending = p;
        p->ops[i]->where = OP_INFLIGHT;
    }
}

/* unsent - p's call could not be written: each operation fails (counted one by one). */
static void unsent(struct redis *r, struct pending *p)
{
    char why[sizeof(r->last_error)];
    snprintf(why, sizeof(why), "%s", r->last_error);
    for (int i = 0; i < p->nops; i++) {
        r->fast_fails++;
        fail_soon(p->ops[i], "redis: %s", why);
    }
    for (int i = 0; i < p->nops; i++)
        note_failure(r, why);
    free(p);
}

static void redis_submit(struct store *s, struct store_op *op)
{
    struct redis *r = s->impl;
    char why[400];

    if (op->type == OP_RESERVE || op->type == OP_ADJUST) {
        op->where = OP_QUEUED;
        TAILQ_INSERT_TAIL(&r->queue, op, link);
        if (r->queued++ == 0)
            event_active(r->flush_ev, 0, 0);
        return;
    }
    if (gate(r, why, sizeof(why)) < 0) {
        fail_soon(op, "%s", why);
        return;
    }
    struct pending *p = xcalloc(1, sizeof(*p));
    p->r = r;
    p->sc = op->type == OP_GREY ? SC_GREY : SC_ONCE;
    p->ops[p->nops++] = op;
    if (send_one(r, p) < 0) {
        unsent(r, p);
        return;
    }
    sent(r, p);
}

/* flush_cb - the rate-limit operations queued during this turn of the loop, as batches. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis *r = arg;
    struct store_op *op;
    char why[400];
    (void)fd;
    (void)what;
    /* Nothing here runs a caller's callback: the queue changes only under this loop. */
    while ((op = TAILQ_FIRST(&r->queue)) != NULL) {
        if (gate(r, why, sizeof(why)) < 0) {
            TAILQ_REMOVE(&r->queue, op, link);
            r->queued--;
            fail_soon(op, "%s", why);
            continue;
        }
        struct pending *p = xcalloc(1, sizeof(*p));
        p->r = r;
        p->sc = SC_RL;
        while (p->nops < BATCH_MAX && (op = TAILQ_FIRST(&r->queue)) != NULL) {
            TAILQ_REMOVE(&r->queue, op, link);
            r->queued--;
            p->nlims[p->nops] = (unsigned char)op->nlims;
            p->ops[p->nops++] = op;
        }
        if (send_batch(r, p) < 0)
            unsent(r, p);
        else
            sent(r, p);
    }
    /* Written now rather than at the next turn (hiredis then waits for the socket). */
    if (r->ac && (r->ac->c.flags & REDIS_CONNECTED) && !(r->ac->c.flags & REDIS_DISCONNECTING))
        redisAsyncHandleWrite(r->ac);
}

static void redis_cancel(struct store *s, struct store_op *op)
{
    struct redis *r = s->impl;
    struct pending *p = op->pending;
    if (op->where == OP_QUEUED) {
        TAILQ_REMOVE(&r->queue, op, link);
        r->queued--;
    } else if (p) {
        for (int i = 0; i < p->nops; i++)
            if (p->ops[i] == op) {
                p->ops[i] = NULL; /* the reply, if any, is dropped */
                p->live--;
                p->late++;
            }
        if (p->live == 0)
            event_del(p->timer);
    }
    op->pending = NULL;
}

/* detach - hand p's operations still waiting to the delivery event, each with its answer
 * filled (fail NULL) or failed for the reason fail; how many. */
static int detach(struct pending *p, const char *fail)
{
    int n = 0;
    for (int i = 0; i < p->nops; i++) {
        struct store_op *op = p->ops[i];
        if (!op)
            continue;
        p->ops[i] = NULL;
        op->pending = NULL;
        if (fail)
            store_op_fail(op, "redis: %s", fail);
        store_op_later(op);
        n++;
    }
    p->live = 0;
    return n;
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct redis *r = p->r;
    char why[64];
    (void)fd;
    (void)what;
    snprintf(why, sizeof(why), "timeout after %ld ms", r->s->opt.timeout_ms);
    int n = detach(p, why);
    p->late += n;
    r->timeouts += (unsigned long long)n;
    for (int i = 0; i < n; i++)
        note_failure(r, why); /* may tear the connection down, freeing p */
}

/* parse_one - a greylist or notify-once answer into op; 0, or -1 (unexpected reply). */
static int parse_one(struct store_op *op, const redisReply *rep)
{
    if (rep->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type != REDIS_REPLY_INTEGER)
            return -1;
#define I(i) (rep->element[i]->integer)
    if (op->type == OP_GREY) {
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

/* parse_batch - a batch's packed answer into its operations still waiting; 0, or -1 (not
 * what store_lua_rl answers: nothing is filled then). */
static int parse_batch(struct pending *p, const redisReply *rep)
{
    size_t need = 1;
    int bad = 0;
    for (int i = 0; i < p->nops; i++)
        need += 3 + 4 * (size_t)p->nlims[i];
    if (rep->type != REDIS_REPLY_STRING || rep->len != 8 * need)
        return -1;
    const unsigned char *b = (const unsigned char *)rep->str;
    for (size_t k = 0; k < need; k++)
        get_double(b + 8 * k, &bad);
    if (bad)
        return -1;
#define D(k) get_double(b + 8 * (k), &bad)
    int64_t now = D(0);
    size_t at = 1;
    for (int i = 0; i < p->nops; at += 3 + 4 * (size_t)p->nlims[i], i++) {
        struct store_op *op = p->ops[i];
        if (!op)
            continue;
        struct store_rl_result *r = &op->res.rl;
        r->status = STORE_OK;
        r->allowed = (int)D(at);
        r->blocked = (int)D(at + 1);
        r->now_ms = r->at_ms = now;
        r->retry_ms = D(at + 2);
        r->retry_after_ms = r->retry_ms == STORE_NEVER ? STORE_NEVER : r->retry_ms - now;
        r->nlimits = op->nlims;
        for (int j = 0; j < op->nlims; j++) {
            struct store_usage *u = &r->limits[j];
            size_t e = at + 3 + 4 * (size_t)j;
            u->limit = op->lims[j].limit;
            u->period_ms = op->lims[j].period;
            u->used = D(e);
            u->first_ms = D(e + 1);
            u->fit_ms = D(e + 2);
            u->over = (int)D(e + 3);
        }
    }
#undef D
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

/* compact - drop the cancelled slots of p (before sending it again). */
static void compact(struct pending *p)
{
    int j = 0;
    for (int i = 0; i < p->nops; i++)
        if (p->ops[i]) {
            p->nlims[j] = p->nlims[i];
            p->ops[j++] = p->ops[i];
        }
    p->nops = j;
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct pending *p = priv;
    struct redis *r = p->r;
    redisReply *rep = reply;
    char why[200];
    int n;

    if (!rep) { /* the connection is gone: hiredis frees ac after the callbacks */
        if (r->ac == ac) {
            r->ac = NULL;
            snprintf(r->last_error, sizeof(r->last_error), "connection lost: %s",
                     ac->errstr[0] ? ac->errstr : "closed");
        }
        if (r->closing) {
            for (int i = 0; i < p->nops; i++)
                if (p->ops[i]) {
                    free(p->ops[i]->name);
                    free(p->ops[i]);
                }
        } else if (p->trial) {
            trial_result(r, 0);
        } else {
            snprintf(why, sizeof(why), "%s", r->last_error);
            if (p->timer)
                event_del(p->timer);
            n = detach(p, why);
            for (int i = 0; i < n; i++)
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
    r->late += (unsigned long long)p->late; /* answered already (timeout) or cancelled */
    p->late = 0;
    if (p->live == 0) {
        pending_free(p);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 && !p->eval) {
        p->eval = 1; /* the script cache was flushed or this is a new server */
        compact(p);
        if (send_pending(r, p) == 0)
            return;
    }
    event_del(p->timer);
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "%.150s", rep->str);
    } else if (p->sc == SC_RL ? parse_batch(p, rep) < 0 : parse_one(p->ops[0], rep) < 0) {
        snprintf(why, sizeof(why), "unexpected reply to a script");
    } else {
        note_success(r);
        detach(p, NULL);
        pending_free(p);
        return;
    }
    n = detach(p, why);
    pending_free(p);
    for (int i = 0; i < n; i++)
        note_failure(r, why);
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
    struct store_op *op;
    if (!r)
        return;
    r->closing = 1;
    while ((op = TAILQ_FIRST(&r->queue)) != NULL) {
        TAILQ_REMOVE(&r->queue, op, link);
        free(op->name);
        free(op);
    }
    teardown(r); /* in-flight operations are freed without an answer */
    if (r->probe_ev)
        event_free(r->probe_ev);
    if (r->flush_ev)
        event_free(r->flush_ev);
    free(r->buf);
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
    TAILQ_INIT(&r->queue);
    s->impl = r;
    s->be = &redis_backend;
    if (target_parse(target, &r->t, err, errlen) < 0)
        return -1;
    for (int i = 0; i < SC_COUNT; i++)
        sha1_hex(scripts[i], r->sha[i]);
    struct timeval tv = {s->opt.timeout_ms / 1000, (s->opt.timeout_ms % 1000) * 1000};
    r->op_tv = event_base_init_common_timeout(s->base, &tv);
    r->probe_ev = event_new(s->base, -1, 0, probe_cb, r);
    r->flush_ev = event_new(s->base, -1, 0, flush_cb, r);
    if (!r->op_tv || !r->probe_ev || !r->flush_ev)
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

/* admin_cmd - one command (lens NULL: every argument a C string); the reply, or NULL with
 * err (an error reply too). */
static redisReply *admin_cmd(struct redis_admin *a, int argc, const char **argv, const size_t *lens,
                             char *err, size_t errlen)
{
    redisReply *rep = redisCommandArgv(a->c, argc, argv, lens);
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

/* admin_rl - run the rate-limit script in mode m (3 show, 4 block, 5 unblock) on key name
 * kname (readable key name). */
static redisReply *admin_rl(struct redis_admin *a, const char *kname, int m, const char *name,
                            int64_t units, char *err, size_t errlen)
{
    char now[24] = "";
    unsigned char nums[8 * 4];
    if (a->opt.clock_ms)
        snprintf(now, sizeof(now), "%lld", (long long)a->opt.clock_ms(a->opt.clock_arg));
    const char *argv[] = {"EVAL", store_lua_rl, "1", kname, now, name, (const char *)nums};
    size_t lens[] = {4,
                     strlen(store_lua_rl),
                     1,
                     strlen(kname),
                     strlen(now),
                     strlen(name),
                     pack_op(nums, m, units, 0, NULL, 0)};
    return admin_cmd(a, 7, argv, lens, err, errlen);
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
    info->now_ms = I(0);
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
    return (int)rep->element[1]->integer != 0;
}

static int redis_admin_show(void *impl, const char *key, struct store_rl_info *info, char *err,
                            size_t errlen)
{
    struct redis_admin *a = impl;
    unsigned char h[STORE_HASH_LEN];
    char kname[200];
    store_hash(KIND_RL, key, h);
    key_name(kname, sizeof(kname), a->prefix, "rl", h);
    redisReply *rep = admin_rl(a, kname, 3, key, 0, err, errlen);
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
    redisReply *rep = admin_cmd(a, 2, argv, NULL, err, errlen);
    if (!rep)
        return -1;
    int rc = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    freeReplyObject(rep);
    return rc;
}

/* admin_block - mode 4 (block for units ms) or 5 (unblock); 1 if blocked before. */
static int admin_block(struct redis_admin *a, const char *key, int m, int64_t units, char *err,
                       size_t errlen)
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
    return admin_block(impl, key, 4, duration_ms, err, errlen) < 0 ? -1 : 0;
}

static int redis_admin_unblock(void *impl, const char *key, char *err, size_t errlen)
{
    return admin_block(impl, key, 5, 0, err, errlen);
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
        redisReply *rep = admin_cmd(a, 6, argv, NULL, err, errlen);
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
            redisReply *s = admin_rl(a, k->str, 3, "", 0, err, errlen);
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
        if (!(rep = admin_cmd(a, 2, auth, NULL, err, errlen))) {
            redis_admin_close(a);
            return NULL;
        }
        freeReplyObject(rep);
    }
    if (o->redis_db != 0) {
        if (!(rep = admin_cmd(a, 2, sel, NULL, err, errlen))) {
            redis_admin_close(a);
            return NULL;
        }
        freeReplyObject(rep);
    }
    *ops = &redis_admin_ops;
    return a;
}
