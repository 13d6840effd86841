/*
 * dkim.c - the "dkim" check: warns that outbound mail will fail DKIM. Never decides.
 *
 * The check's state watches this server's DKIM signing keys for as long as its configuration
 * is active. configure() reads the key list and the key files (dkim_keys, OpenDKIM's
 * KeyTable): at start-up as root, before privileges are dropped (key files are often
 * root-only), and on reload in the loader thread, off the event loop. start() asks DNS for
 * each key's record at once and every dkim_check_interval, tests each answer with
 * policyd/mail/dkim_keys.c and logs the broken keys; a failed lookup keeps the last result.
 * stop() cancels the timer and the lookups. On reload the new state takes over from the old
 * one the text of a key it could no longer read and the latest result of each unchanged key.
 * For a RCPT from a client that sends outbound mail through us (in mynetworks, or
 * authenticated), the sender's domain is looked up in the latest results: when a key of that
 * domain has no record, a revoked one or one that does not match, the diagnosis line says so
 * and how to fix it. No DNS on the request's path, no waiting, no verdict.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/check.h"

#include "policyd/config.h"
#include "policyd/dns/dns.h"
#include "policyd/lib/hash.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/mail/dkim_keys.h"
#include "policyd/maps/netlist.h"

#include <event2/event.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The latest check of one key. */
struct dkim_slot {
    struct dkim_state *st;
    struct dns_query *q; /* the lookup in flight, or NULL */
    int checked;
    struct dkim_keys_result r;
    char problem[640], fix[1024];
};

/* The messages warned about lately (Postfix's instance): one warning per message, not one per
 * recipient. */
#define DKIM_SEEN 256
struct dkim_state {
    uint64_t seen[DKIM_SEEN];
    size_t next;
    struct dkim_keys_list *list; /* read by configure() */
    struct dkim_slot *slots;     /* one per key */
    long interval_ms;            /* dkim_check_interval (0: at start only) */
    struct dns *dns;             /* from start() */
    struct event *timer;         /* from start() to stop() */
};

static void *dkim_configure(const struct config *cfg, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct dkim_state *st = xcalloc(1, sizeof(*st));
    st->list = dkim_keys_list_load(cfg->dkim_keys, cfg->opendkim_config);
    st->slots = xcalloc(st->list->nkeys ? st->list->nkeys : 1, sizeof(*st->slots));
    for (size_t i = 0; i < st->list->nkeys; i++)
        st->slots[i].st = st;
    st->interval_ms = cfg->dkim_check_interval;
    return st;
}

/* dkim_stop - cancel the timer and the lookups; the results stay for run(). */
static void dkim_stop(void *state)
{
    struct dkim_state *st = state;
    for (size_t i = 0; i < st->list->nkeys; i++) {
        dns_cancel(st->slots[i].q);
        st->slots[i].q = NULL;
    }
    if (st->timer)
        event_free(st->timer);
    st->timer = NULL;
}

static void dkim_unconfigure(void *state)
{
    struct dkim_state *st = state;
    dkim_stop(st);
    free(st->slots);
    dkim_keys_list_free(st->list);
    free(st);
}

/* dkim_is_problem - outcomes that make signed mail fail DKIM at receivers. */
static int dkim_is_problem(enum dkim_keys_outcome o)
{
    return o == DKIM_KEYS_NO_RECORD || o == DKIM_KEYS_REVOKED || o == DKIM_KEYS_MISMATCH ||
           o == DKIM_KEYS_BAD_RECORD;
}

/* dkim_answered - a key's TXT answer is in: test, keep, log. */
static void dkim_answered(const struct dns_result *r, void *arg)
{
    struct dkim_slot *s = arg;
    struct dkim_state *st = s->st;
    const struct dkim_key *key = &st->list->keys[s - st->slots];
    char name[300];
    struct dkim_keys_result now;
    s->q = NULL;
    dkim_keys_test(key, r, &now);
    dkim_keys_name(key, name, sizeof(name));
    if (now.outcome == DKIM_KEYS_DNS_TROUBLE && s->checked &&
        s->r.outcome != DKIM_KEYS_DNS_TROUBLE) {
        /* A lookup that failed says nothing new about the record: keep what the last answer
         * showed (a known broken key stays reported), say so, ask again next round. */
        log_warn("dkim: key %s (%s): %s (%s); keeping the last result: %s", name, key->path,
                 dkim_keys_outcome_text(now.outcome), now.detail,
                 dkim_keys_outcome_text(s->r.outcome));
        return;
    }
    s->r = now;
    s->checked = 1;
    dkim_keys_fix(key, &s->r, s->fix, sizeof(s->fix));
    snprintf(s->problem, sizeof(s->problem), "key %s (%s): %s%s%s%s", name, key->path,
             dkim_keys_outcome_text(s->r.outcome), s->r.detail[0] ? " (" : "", s->r.detail,
             s->r.detail[0] ? ")" : "");
    if (s->r.outcome == DKIM_KEYS_MATCH)
        log_info("dkim: key %s (%s): %s (%d-bit key)%s", name, key->path,
                 dkim_keys_outcome_text(s->r.outcome), s->r.bits,
                 s->r.bits && s->r.bits < 1024 ? "; receivers ignore keys under 1024 bits" : "");
    else
        log_warn("dkim: %s; fix: %s", s->problem, s->fix);
}

/* dkim_round - ask for every key's record (a key still waiting is left to its query), and
 * come back after the interval. */
static void dkim_round(evutil_socket_t fd, short what, void *arg)
{
    struct dkim_state *st = arg;
    (void)fd;
    (void)what;
    for (size_t i = 0; st->dns && i < st->list->nkeys; i++) {
        char name[300];
        if (!st->slots[i].q)
            st->slots[i].q =
                dns_lookup(st->dns, DNS_TXT, dkim_keys_name(&st->list->keys[i], name, sizeof(name)),
                           dkim_answered, &st->slots[i]);
    }
    if (st->interval_ms > 0) {
        struct timeval tv = {st->interval_ms / 1000, (st->interval_ms % 1000) * 1000};
        evtimer_add(st->timer, &tv);
    }
}

/* dkim_same_key - the same key at the same place. */
static int dkim_same_key(const struct dkim_key *a, const struct dkim_key *b)
{
    return strcmp(a->path, b->path) == 0 && strcmp(a->selector, b->selector) == 0 &&
           strcasecmp(a->domain, b->domain) == 0;
}

/* dkim_take_over - from the state this one replaces: the text of a key file that can no longer
 * be read (privileges are gone by a reload), and the latest result of an unchanged key. */
static void dkim_take_over(struct dkim_state *st, struct dkim_state *prev)
{
    for (size_t i = 0; i < st->list->nkeys; i++) {
        struct dkim_key *k = &st->list->keys[i];
        for (size_t j = 0; j < prev->list->nkeys; j++) {
            struct dkim_key *old = &prev->list->keys[j];
            if (!k->pem && old->pem && strcmp(old->path, k->path) == 0) {
                k->pem = old->pem;
                k->pemlen = old->pemlen;
                old->pem = NULL; /* one owner: wiped once, when the new list is freed */
                old->pemlen = 0;
                free(k->read_error);
                k->read_error = NULL;
                k->read_errno = 0;
            }
        }
        for (size_t j = 0; j < prev->list->nkeys; j++) {
            const struct dkim_slot *was = &prev->slots[j];
            if (was->checked && !st->slots[i].checked && dkim_same_key(k, &prev->list->keys[j])) {
                struct dkim_slot *s = &st->slots[i];
                s->checked = 1;
                s->r = was->r;
                memcpy(s->problem, was->problem, sizeof(s->problem));
                memcpy(s->fix, was->fix, sizeof(s->fix));
            }
        }
    }
}

/* dkim_start - log what is wrong with the key list, then check every key at once (from the
 * loop, never inside this call) and every dkim_check_interval. */
static int dkim_start(void *state, void *previous, struct event_base *base, struct dns *dns,
                      const struct config *cfg, char *err, size_t errlen)
{
    struct dkim_state *st = state;
    const struct dkim_keys_list *list = st->list;
    (void)cfg;
    (void)err;
    (void)errlen;
    dkim_stop(st);
    if (previous)
        dkim_take_over(st, previous);
    for (size_t i = 0; i < list->nerrors; i++)
        log_warn("dkim: %s", list->errors[i]);
    for (size_t i = 0; i < list->nkeys; i++)
        if (!list->keys[i].pem)
            log_warn("dkim: key %s (%s): cannot read: %s", list->keys[i].path, list->keys[i].origin,
                     list->keys[i].read_error);
    st->dns = dns;
    st->timer = evtimer_new(base, dkim_round, st);
    if (!st->timer)
        xalloc_fail(0); /* libevent's allocation */
    if (list->nkeys && dns) {
        struct timeval now = {0, 0};
        evtimer_add(st->timer, &now);
    }
    return 0;
}

/* dkim_problem - the first checked key of domain that makes its mail fail DKIM, or NULL. */
static const struct dkim_slot *dkim_problem(const struct dkim_state *st, const char *domain)
{
    for (size_t i = 0; i < st->list->nkeys; i++) {
        const struct dkim_slot *s = &st->slots[i];
        if (s->checked && dkim_is_problem(s->r.outcome) &&
            strcasecmp(st->list->keys[i].domain, domain) == 0)
            return s;
    }
    return NULL;
}

/* dkim_first_time - 1 the first time this message (instance) is seen lately. */
static int dkim_first_time(struct dkim_state *st, const char *instance)
{
    if (!*instance)
        return 1;
    uint64_t h = hash_str(instance);
    for (size_t i = 0; i < DKIM_SEEN; i++)
        if (st->seen[i] == h)
            return 0;
    st->seen[st->next] = h;
    st->next = (st->next + 1) % DKIM_SEEN;
    return 1;
}

static enum check_status dkim_check_run(struct check_call *call)
{
    const struct request *req = check_call_request(call);
    const struct config *cfg = check_call_config(call);
    struct dkim_state *st = check_call_state(call);
    if (request_state(req) != STATE_RCPT)
        return CHECK_DONE;
    const char *sasl = request_get(req, ATTR_SASL_USERNAME);
    const char *addr = request_get(req, ATTR_CLIENT_ADDRESS);
    const char *entry = NULL;
    int trusted = netlist_match(cfg->net_mynetworks, addr, &entry) == 1;
    if (!*sasl && !trusted)
        return CHECK_DONE; /* inbound mail: someone else's DKIM */
    const char *sender = request_get(req, ATTR_SENDER);
    const char *at = strrchr(sender, '@');
    if (!at || !at[1])
        return CHECK_DONE;
    const char *domain = at + 1;
    const struct dkim_slot *problem = dkim_problem(st, domain);
    if (!problem) {
        check_call_note(call, "no known DKIM key problem for %s", domain);
        return CHECK_DONE;
    }
    if (!dkim_first_time(st, request_get(req, ATTR_INSTANCE))) {
        check_call_note(call, "DKIM key problem of %s already reported for this message", domain);
        return CHECK_DONE;
    }
    char action[512], cause[1536];
    snprintf(action, sizeof(action), "WARN outbound mail from %s will fail DKIM", domain);
    if (*sasl)
        snprintf(cause, sizeof(cause),
                 "client authenticated as %s sends from %s, whose signing %s; receivers will "
                 "find the signature invalid",
                 sasl, domain, problem->problem);
    else
        snprintf(cause, sizeof(cause),
                 "client %s (mynetworks %s) sends from %s, whose signing %s; receivers will find "
                 "the signature invalid",
                 addr, entry ? entry : "", domain, problem->problem);
    const char *code = problem->r.outcome == DKIM_KEYS_NO_RECORD  ? "dkim.key_missing"
                       : problem->r.outcome == DKIM_KEYS_REVOKED  ? "dkim.key_revoked"
                       : problem->r.outcome == DKIM_KEYS_MISMATCH ? "dkim.key_mismatch"
                                                                  : "dkim.key_bad_record";
    check_call_subject(call, "sender domain", domain);
    check_call_action(call, code, action, cause, problem->fix);
    return CHECK_DONE;
}

/* dkim_report - the keys by the state of their latest check, for the metrics page. */
static void dkim_report(void *state, check_report_fn *emit, void *arg)
{
    static const char *const names[] = {[DKIM_KEYS_MATCH] = "ok",
                                        [DKIM_KEYS_NO_RECORD] = "no_record",
                                        [DKIM_KEYS_REVOKED] = "revoked",
                                        [DKIM_KEYS_MISMATCH] = "mismatch",
                                        [DKIM_KEYS_BAD_RECORD] = "bad_record",
                                        [DKIM_KEYS_DNS_TROUBLE] = "dns_trouble",
                                        [DKIM_KEYS_UNREADABLE] = "unreadable"};
    const size_t nstates = sizeof(names) / sizeof(names[0]);
    const struct dkim_state *st = state;
    size_t count[sizeof(names) / sizeof(names[0]) + 1] = {0}; /* the last: not checked yet */
    for (size_t i = 0; i < st->list->nkeys; i++) {
        const struct dkim_slot *s = &st->slots[i];
        count[s->checked && (size_t)s->r.outcome < nstates ? (size_t)s->r.outcome : nstates]++;
    }
    const char *help = "DKIM signing keys by the state of their DNS record at the last check";
    for (size_t k = 0; k <= nstates; k++)
        emit(arg, "dkim_keys", help, "state", k < nstates ? names[k] : "unchecked",
             (double)count[k]);
}

const struct check_def dkim_check = {
    .name = "dkim",
    .configure = dkim_configure,
    .unconfigure = dkim_unconfigure,
    .start = dkim_start,
    .stop = dkim_stop,
    .run = dkim_check_run,
    .report = dkim_report,
};
