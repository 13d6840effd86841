/*
 * store_admin.c - the synchronous rate-limit commands: picks the back end from the spec and
 * passes each command on; `top` keeps the n highest ratios while the back end walks every
 * record. The back ends (store_lmdb.c, store_redis.c) own their connection or environment.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/store/store_admin.h"
#include "policyd/store/store_int.h"

#include "policyd/lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_admin {
    const struct store_admin_ops *ops;
    void *impl;
};

struct store_admin *store_admin_open(const struct store_options *o, char *err, size_t errlen)
{
    const char *rest;
    char *password = NULL;
    const struct store_admin_ops *ops = NULL;
    void *impl;

    if (store_spec_check(o->spec, err, errlen) < 0)
        return NULL;
    if (o->key_prefix && strlen(o->key_prefix) > 64) {
        snprintf(err, errlen, "state key prefix longer than 64 characters");
        return NULL;
    }
    if (store_spec_parse(o->spec, &rest, err, errlen) == 'L') {
        impl = store_lmdb_admin_open(o, rest, &ops, err, errlen);
    } else {
        if (o->redis_password_file && o->redis_password_file[0] &&
            !(password = store_read_password(o->redis_password_file, err, errlen)))
            return NULL;
        impl = store_redis_admin_open(o, rest, password, &ops, err, errlen);
        if (password) {
            memset(password, 0, strlen(password));
            free(password);
        }
    }
    if (!impl)
        return NULL;
    struct store_admin *a = xcalloc(1, sizeof(*a));
    a->ops = ops;
    a->impl = impl;
    return a;
}

void store_admin_close(struct store_admin *a)
{
    if (!a)
        return;
    a->ops->close(a->impl);
    free(a);
}

int store_admin_show(struct store_admin *a, const char *key, struct store_rl_info *info, char *err,
                     size_t errlen)
{
    return a->ops->show(a->impl, key, info, err, errlen);
}

int store_admin_reset(struct store_admin *a, const char *key, char *err, size_t errlen)
{
    return a->ops->reset(a->impl, key, err, errlen);
}

int store_admin_block(struct store_admin *a, const char *key, int64_t duration_ms, char *err,
                      size_t errlen)
{
    if (duration_ms < 1 || duration_ms > WINDOW_MAX_VALUE) {
        snprintf(err, errlen, "block duration out of range");
        return -1;
    }
    return a->ops->block(a->impl, key, duration_ms, err, errlen);
}

int store_admin_unblock(struct store_admin *a, const char *key, char *err, size_t errlen)
{
    return a->ops->unblock(a->impl, key, err, errlen);
}

struct top {
    struct store_rl_info *out;
    size_t n, count;
};

/* top_add - keep info if it is among the n highest ratios (out[] sorted, highest first). */
static int top_add(const struct store_rl_info *info, void *arg)
{
    struct top *t = arg;
    size_t i = t->count;
    if (t->n == 0)
        return -1;
    if (i == t->n) {
        if (info->ratio <= t->out[i - 1].ratio)
            return 0;
        i--;
    } else {
        t->count++;
    }
    while (i > 0 && t->out[i - 1].ratio < info->ratio) {
        t->out[i] = t->out[i - 1];
        i--;
    }
    t->out[i] = *info;
    return 0;
}

int store_admin_top(struct store_admin *a, size_t n, struct store_rl_info *out, size_t *count,
                    char *err, size_t errlen)
{
    struct top t = {out, n, 0};
    int rc = a->ops->each(a->impl, top_add, &t, err, errlen);
    *count = t.count;
    return rc;
}
