/*
 * store_op.c - what the store's front and both back ends share: the clock, key hashing and an
 * operation's end (its result filled, its callback run once, its memory freed). Apart from
 * store.c, which opens the back ends, so the back ends never call back into their opener.
 */
/* SPDX-License-Identifier: MIT */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init and co.: see store_hash */
#include "policyd/store/store_int.h"

#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <event2/event.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t store_now(const struct store *s)
{
    if (s->opt.clock_ms)
        return s->opt.clock_ms(s->opt.clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t store_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_hash(enum store_kind kind, const char *key, unsigned char out[STORE_HASH_LEN])
{
    /* OpenSSL's SHA-256 functions, not its EVP interface: for a key of a few dozen bytes the
     * EVP dispatch (provider context, init, final) costs as much again as the hash itself, on
     * every rate-limit and greylist decision. Deprecated in OpenSSL 3, not removed; the digest
     * is the same. */
    unsigned char md[SHA256_DIGEST_LENGTH];
    unsigned char k = (unsigned char)kind;
    SHA256_CTX ctx;
    if (!SHA256_Init(&ctx) || !SHA256_Update(&ctx, &k, 1) ||
        !SHA256_Update(&ctx, key, strlen(key)) || !SHA256_Final(md, &ctx))
        log_panic("store: SHA-256 unavailable from OpenSSL");
    memcpy(out, md, STORE_HASH_LEN);
}

const char *store_name(const struct store *s)
{
    return s->spec;
}

void store_op_fail(struct store_op *op, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->detail, sizeof(op->detail), fmt, ap);
    va_end(ap);
    /* status and detail sit at the start of every result type */
    switch (op->type) {
    case OP_RESERVE:
    case OP_ADJUST:
        op->res.rl.status = STORE_FAIL;
        op->res.rl.detail = op->detail;
        break;
    case OP_GREY:
        op->res.grey.status = STORE_FAIL;
        op->res.grey.detail = op->detail;
        break;
    case OP_ONCE:
        op->res.once.status = STORE_FAIL;
        op->res.once.detail = op->detail;
        break;
    }
}

void store_op_done(struct store_op *op)
{
    struct store *s = op->s;
    int failed = 0;
    s->inflight--;
    switch (op->type) {
    case OP_RESERVE:
    case OP_ADJUST:
        failed = op->res.rl.status != STORE_OK;
        op->cb.rl(&op->res.rl, op->arg);
        break;
    case OP_GREY:
        failed = op->res.grey.status != STORE_OK;
        op->cb.grey(&op->res.grey, op->arg);
        break;
    case OP_ONCE:
        failed = op->res.once.status != STORE_OK;
        op->cb.once(&op->res.once, op->arg);
        break;
    }
    if (failed)
        s->failed++;
    else
        s->ok++;
    free(op->name);
    free(op);
}

void store_op_later(struct store_op *op)
{
    op->where = OP_DELIVER;
    TAILQ_INSERT_TAIL(&op->s->deliver, op, link);
    event_active(op->s->deliver_ev, 0, 0);
}

void store_rl_fill(struct store_op *op, const struct window_decision *d, int64_t now)
{
    struct store_rl_result *r = &op->res.rl;
    r->status = STORE_OK;
    r->detail = NULL;
    r->allowed = d->allowed;
    r->blocked = d->blocked;
    r->now_ms = now;
    r->at_ms = now;
    r->retry_ms = d->retry;
    r->retry_after_ms = d->retry == WINDOW_NEVER ? STORE_NEVER : d->retry - now;
    r->nlimits = d->n;
    for (int i = 0; i < d->n; i++) {
        r->limits[i].limit = d->lim[i].limit;
        r->limits[i].period_ms = d->lim[i].period;
        r->limits[i].used = d->lim[i].used;
        r->limits[i].first_ms = d->lim[i].first;
        r->limits[i].fit_ms = d->lim[i].fit;
        r->limits[i].over = d->lim[i].over;
    }
}
