/*
 * store_op.c - what the store's front and both back ends share: the clock, key hashing and an
 * operation's end (its result filled, its callback run once, its memory freed). Apart from
 * store.c, which opens the back ends, so the back ends never call back into their opener.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/store/store_int.h"

#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <event2/event.h>
#include <openssl/evp.h>
#include <pthread.h>
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

/* SHA-256 fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up at every use, which
 * cost more than the hash itself (a third of a Redis rate-limit operation's own CPU). */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void store_hash(enum store_kind kind, const char *key, unsigned char out[STORE_HASH_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* One context per thread, kept: a digest context made and freed per key cost more than
     * the hash (OpenSSL 3 sets up its provider context each time; reinitialising a context
     * for the same digest reuses it). The loop's thread keeps one for the process's life. */
    static _Thread_local EVP_MD_CTX *ctx;
    pthread_once(&sha256_once, sha256_fetch);
    if (!ctx)
        ctx = EVP_MD_CTX_new();
    unsigned char k = (unsigned char)kind;
    if (!sha256 || !ctx || !EVP_DigestInit_ex(ctx, sha256, NULL) || !EVP_DigestUpdate(ctx, &k, 1) ||
        !EVP_DigestUpdate(ctx, key, strlen(key)) || !EVP_DigestFinal_ex(ctx, md, &mdlen))
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
