/*
 * state.c - the shared state store (see state.h): a short list of open stores with their
 * options' signature and a holder count. LMDB forbids opening one environment twice in a
 * process, so a configuration naming the same spec with other options shares the open store
 * and says that the other options take effect at restart.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/state.h"

#include "policyd/config.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct state_entry {
    struct state_entry *next;
    struct store *store;
    char *spec, *signature;
    unsigned refs;
};

static struct state_entry *state_list;

void state_options(const struct config *cfg, struct store_options *o)
{
    store_options_default(o);
    o->spec = cfg->state_store;
    o->redis_db = (int)cfg->state_redis_db;
    o->redis_password_file = cfg->state_redis_password_file;
    o->key_prefix = cfg->state_key_prefix;
    o->timeout_ms = cfg->state_timeout;
    o->failure_threshold = (int)cfg->state_failure_threshold;
    o->retry_interval_ms = cfg->state_retry_interval;
    o->lmdb_map_size = cfg->state_lmdb_map_size;
}

static char *state_signature(const struct config *cfg)
{
    return xasprintf("%s|%ld|%s|%s|%ld|%ld|%ld|%zu", cfg->state_store, cfg->state_redis_db,
                     cfg->state_redis_password_file, cfg->state_key_prefix, cfg->state_timeout,
                     cfg->state_failure_threshold, cfg->state_retry_interval,
                     cfg->state_lmdb_map_size);
}

struct store *state_acquire(const struct config *cfg, struct event_base *base, char *err,
                            size_t errlen)
{
    char *sig = state_signature(cfg);
    struct state_entry *same_spec = NULL;
    for (struct state_entry *e = state_list; e; e = e->next) {
        if (strcmp(e->signature, sig) == 0) {
            free(sig);
            e->refs++;
            return e->store;
        }
        if (strcmp(e->spec, cfg->state_store) == 0)
            same_spec = e;
    }
    if (same_spec) {
        log_warn("state store %s: changed state_* settings take effect at the next restart "
                 "(the open store is kept)",
                 same_spec->spec);
        free(sig);
        same_spec->refs++;
        return same_spec->store;
    }
    struct store_options o;
    state_options(cfg, &o);
    struct store *s = store_open(base, &o, err, errlen);
    if (!s) {
        free(sig);
        return NULL;
    }
    struct state_entry *e = xcalloc(1, sizeof(*e));
    e->store = s;
    e->spec = xstrdup(cfg->state_store);
    e->signature = sig;
    e->refs = 1;
    e->next = state_list;
    state_list = e;
    log_info("state store %s open", e->spec);
    return s;
}

void state_log_stats(void)
{
    for (const struct state_entry *e = state_list; e; e = e->next) {
        struct store_stats st;
        store_stats(e->store, &st);
        log_info("state store statistics: store=%s backend=%s up=%d breaker=%s ops=%llu ok=%llu "
                 "failed=%llu timeouts=%llu fast_fails=%llu late_replies=%llu connects=%llu "
                 "connect_failures=%llu state_changes=%llu swept=%llu map_size=%llu "
                 "inflight=%zu",
                 e->spec, st.backend, st.up, st.breaker, st.ops, st.ok, st.failed, st.timeouts,
                 st.fast_fails, st.late_replies, st.connects, st.connect_failures, st.state_changes,
                 st.swept, st.map_size, st.inflight);
    }
}

void state_release(struct store *s)
{
    if (!s)
        return;
    for (struct state_entry **p = &state_list; *p; p = &(*p)->next) {
        struct state_entry *e = *p;
        if (e->store != s)
            continue;
        if (--e->refs)
            return;
        *p = e->next;
        store_close(e->store);
        free(e->spec);
        free(e->signature);
        free(e);
        return;
    }
    log_panic("state_release: a store not acquired");
}

int state_check_spec(const struct config *cfg, char *err, size_t errlen)
{
    char why[512];
    if (store_spec_check(cfg->state_store, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, errlen, "%s:%d: state_store: %s", cfg->path ? cfg->path : "(defaults)",
             config_source_line(cfg, "state_store"), why);
    return -1;
}
