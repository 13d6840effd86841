/*
 * ratelimit_track.c - messages in progress and the policy connections they came on (see
 * ratelimit_track.h for the ground and the rules).
 *
 * Messages are kept by the hash of their instance in a chained table and on a list in order of
 * use (sys/queue.h TAILQ, least recent first: the one forgotten when the table is full);
 * connections by their number in another chained table. A message is open while its
 * connection may still send requests for it, waiting once it ended before the connection
 * proved END-OF-MESSAGE wiring (on that connection's list), released once given back at a close
 * (kept in case it comes back). Ownership: the memory owns every record; the check holds
 * pointers to a message only within one call into it.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/ratelimit_track.h"

#include "policyd/lib/hash.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define TRACK_MSG_BUCKETS 4096
#define TRACK_CONN_BUCKETS 1024
#define TRACK_RESV 1024   /* reservations remembered per message; more stay counted */
#define TRACK_INSTANCE 64 /* instance text kept for log lines */
#define TRACK_ENDED 4     /* instances a connection ended lately: one coming back means mixing */

struct resv {
    struct resv *next;
    int rule;
    int nlimits;
    struct store_limit limits[STORE_MAX_LIMITS];
    int64_t units;
    int64_t at_ms; /* store time of the first of them: the window entry they are taken from */
    uint64_t key_hash;
    char key[];
};

enum msg_state { MSG_OPEN, MSG_WAITING, MSG_RELEASED };

struct conn;

struct msg {
    struct ratelimit_msg pub; /* first: the check's view */
    uint64_t hash;
    char instance[TRACK_INSTANCE];
    struct msg *hnext;
    TAILQ_ENTRY(msg) lru;
    TAILQ_ENTRY(msg) wait; /* on waiting_on's list while MSG_WAITING */
    struct conn *waiting_on;
    unsigned long long conn; /* the connection that started it (or brought it back) */
    enum msg_state state;
    struct resv *resv, **resv_tail;
    int nresv;
};
TAILQ_HEAD(msg_list, msg);

struct conn {
    unsigned long long id;
    struct conn *hnext;
    uint64_t current; /* hash of the instance of its last request; 0: none */
    int wired;        /* evidence that Postfix asks us at END-OF-MESSAGE for its messages */
    int mixed;        /* requests of several messages interleave: not one smtpd, never trusted */
    uint64_t ended[TRACK_ENDED];
    unsigned nended;
    struct msg_list waiting;
    int nwaiting;
};

struct ratelimit_track {
    unsigned refs;
    ratelimit_track_give_fn *give;
    void *arg;
    struct msg *msgs[TRACK_MSG_BUCKETS];
    struct conn *conns[TRACK_CONN_BUCKETS];
    struct msg_list lru;
    unsigned long nmsgs;
};

/* track_hash - the key of an instance; 0 for none. */
static uint64_t track_hash(const char *instance)
{
    return *instance ? hash_str(instance) | 1 : 0;
}

static struct msg *track_msg(const struct ratelimit_track *t, uint64_t h)
{
    struct msg *m = t->msgs[h % TRACK_MSG_BUCKETS];
    while (m && m->hash != h)
        m = m->hnext;
    return m;
}

static void track_unwait(struct msg *m)
{
    if (m->waiting_on) {
        TAILQ_REMOVE(&m->waiting_on->waiting, m, wait);
        m->waiting_on->nwaiting--;
        m->waiting_on = NULL;
    }
}

/* track_forget - drop m and its reservations (what is still counted stays counted). */
static void track_forget(struct ratelimit_track *t, struct msg *m)
{
    struct msg **p = &t->msgs[m->hash % TRACK_MSG_BUCKETS];
    while (*p != m)
        p = &(*p)->hnext;
    *p = m->hnext;
    TAILQ_REMOVE(&t->lru, m, lru);
    t->nmsgs--;
    track_unwait(m);
    for (struct resv *r = m->resv, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    free(m);
}

static struct msg *track_msg_new(struct ratelimit_track *t, uint64_t h, const char *instance,
                                 unsigned long long connection)
{
    if (t->nmsgs >= RATELIMIT_TRACK_MESSAGES)
        track_forget(t, TAILQ_FIRST(&t->lru));
    struct msg *m = xcalloc(1, sizeof(*m));
    m->hash = h;
    snprintf(m->instance, sizeof(m->instance), "%s", instance);
    m->conn = connection;
    m->resv_tail = &m->resv;
    m->hnext = t->msgs[h % TRACK_MSG_BUCKETS];
    t->msgs[h % TRACK_MSG_BUCKETS] = m;
    TAILQ_INSERT_TAIL(&t->lru, m, lru);
    t->nmsgs++;
    return m;
}

static struct conn *track_conn(struct ratelimit_track *t, unsigned long long id, int create)
{
    if (!id)
        return NULL;
    struct conn **head = &t->conns[id % TRACK_CONN_BUCKETS], *c = *head;
    while (c && c->id != id)
        c = c->hnext;
    if (!c && create) {
        c = xcalloc(1, sizeof(*c));
        c->id = id;
        TAILQ_INIT(&c->waiting);
        c->hnext = *head;
        *head = c;
    }
    return c;
}

/* track_give_back - m ended without END-OF-MESSAGE: every reservation goes back. */
static void track_give_back(struct ratelimit_track *t, struct msg *m, const char *why)
{
    for (struct resv *r = m->resv; r; r = r->next)
        t->give(t->arg, r->rule, r->key, r->limits, r->nlimits, r->units, r->at_ms);
    log_debug("ratelimit: message %s ended without END-OF-MESSAGE (%s): %d reservation%s given "
              "back",
              m->instance, why, m->nresv, m->nresv == 1 ? "" : "s");
}

/* track_wired - 1 if Postfix is known to ask us at END-OF-MESSAGE for m's messages. */
static int track_wired(struct ratelimit_track *t, const struct conn *c, const struct msg *m)
{
    const struct conn *started = track_conn(t, m->conn, 0);
    if ((c && c->mixed) || (started && started->mixed))
        return 0;
    return (c && c->wired) || (started && started->wired);
}

/* track_end - the message h of connection c is over without END-OF-MESSAGE (at_close: the
 * connection closed). */
static void track_end(struct ratelimit_track *t, struct conn *c, uint64_t h, int at_close)
{
    struct msg *m = track_msg(t, h);
    if (!m || m->state != MSG_OPEN)
        return;
    if (at_close) {
        /* Kept either way: it may go on over another connection of the same smtpd. */
        if (m->resv && track_wired(t, c, m)) {
            track_give_back(t, m, "its policy connection closed");
            m->state = MSG_RELEASED;
        }
        return;
    }
    if (!m->resv) {
        track_forget(t, m);
    } else if (track_wired(t, c, m)) {
        track_give_back(t, m, "the next request of its connection is about another");
        track_forget(t, m);
    } else {
        if (c->nwaiting >= RATELIMIT_TRACK_PENDING)
            track_forget(t, TAILQ_FIRST(&c->waiting)); /* stays counted */
        m->state = MSG_WAITING;
        m->waiting_on = c;
        TAILQ_INSERT_TAIL(&c->waiting, m, wait);
        c->nwaiting++;
    }
}

/* track_evidence - Postfix asks us at END-OF-MESSAGE for c's messages: the ones that ended
 * without it were not sent. */
static void track_evidence(struct ratelimit_track *t, struct conn *c)
{
    if (!c || c->wired)
        return;
    c->wired = 1;
    struct msg *m;
    while ((m = TAILQ_FIRST(&c->waiting))) {
        if (!c->mixed)
            track_give_back(t, m, "learnt later: END-OF-MESSAGE is asked for its connection");
        track_forget(t, m);
    }
}

struct ratelimit_track *ratelimit_track_new(ratelimit_track_give_fn *give, void *arg)
{
    struct ratelimit_track *t = xcalloc(1, sizeof(*t));
    t->refs = 1;
    t->give = give;
    t->arg = arg;
    TAILQ_INIT(&t->lru);
    return t;
}

void ratelimit_track_hold(struct ratelimit_track *t)
{
    t->refs++;
}

void ratelimit_track_free(struct ratelimit_track *t)
{
    if (!t || --t->refs > 0)
        return;
    while (!TAILQ_EMPTY(&t->lru))
        track_forget(t, TAILQ_FIRST(&t->lru));
    for (size_t i = 0; i < TRACK_CONN_BUCKETS; i++)
        for (struct conn *c = t->conns[i], *next; c; c = next) {
            next = c->hnext;
            free(c);
        }
    free(t);
}

struct ratelimit_msg *ratelimit_track_request(struct ratelimit_track *t,
                                              unsigned long long connection, const char *instance,
                                              int eom, int create)
{
    uint64_t h = track_hash(instance);
    struct conn *c = track_conn(t, connection, 1);
    struct msg *m = h ? track_msg(t, h) : NULL;
    if (eom) {
        track_evidence(t, c);
        if (m && m->conn != connection)
            track_evidence(t, track_conn(t, m->conn, 0));
        m = h ? track_msg(t, h) : NULL; /* in case it was one of those */
    }
    if (c && c->current != h) {
        for (unsigned k = 0; h && !c->mixed && k < TRACK_ENDED; k++)
            if (c->ended[k] == h) {
                /* Not Postfix's smtpd, which never goes back to a transaction it ended: a
                 * proxy or a test tool mixing several. */
                c->mixed = 1;
                log_warn("ratelimit: one policy connection carries the requests of several "
                         "messages at once (instance %s came back; a proxy between Postfix and "
                         "policyd?): on it, messages that end without END-OF-MESSAGE keep "
                         "their reservations",
                         instance);
            }
        if (c->current) {
            track_end(t, c, c->current, 0);
            c->ended[c->nended++ % TRACK_ENDED] = c->current;
        }
        c->current = h;
        m = h ? track_msg(t, h) : NULL; /* ending may have forgotten an older one */
    }
    if (!m) {
        if (!create || !h)
            return NULL;
        m = track_msg_new(t, h, instance, connection);
    }
    if (m->state != MSG_OPEN) {
        /* Back after a close (a new connection of the same smtpd), or after an end taken too
         * early: open again; what was given back is recorded again by the check. */
        if (m->state == MSG_RELEASED)
            m->pub.released = 1;
        track_unwait(m);
        m->state = MSG_OPEN;
        m->conn = connection;
    }
    TAILQ_REMOVE(&t->lru, m, lru);
    TAILQ_INSERT_TAIL(&t->lru, m, lru);
    return &m->pub;
}

struct ratelimit_msg *ratelimit_track_find(struct ratelimit_track *t, const char *instance)
{
    uint64_t h = track_hash(instance);
    struct msg *m = h ? track_msg(t, h) : NULL;
    return m ? &m->pub : NULL;
}

/* track_resv - m's reservation of rule and key, or NULL. */
static struct resv *track_resv(struct msg *m, int rule, const char *key, uint64_t kh)
{
    for (struct resv *r = m->resv; r; r = r->next)
        if (r->rule == rule && r->key_hash == kh && strcmp(r->key, key) == 0)
            return r;
    return NULL;
}

void ratelimit_track_reserved(struct ratelimit_track *t, struct ratelimit_msg *pub, int rule,
                              const char *key, const struct store_limit *limits, int nlimits,
                              int64_t units, int64_t at_ms)
{
    (void)t;
    struct msg *m = (struct msg *)pub;
    uint64_t kh = hash_str(key);
    struct resv *r = track_resv(m, rule, key, kh);
    if (r) {
        r->units += units;
        return;
    }
    if (m->nresv >= TRACK_RESV || nlimits > STORE_MAX_LIMITS)
        return; /* not remembered: stays counted until its window passes */
    size_t len = strlen(key);
    r = xcalloc(1, sizeof(*r) + len + 1);
    r->rule = rule;
    r->nlimits = nlimits;
    memcpy(r->limits, limits, (size_t)nlimits * sizeof(*limits));
    r->units = units;
    r->at_ms = at_ms;
    r->key_hash = kh;
    memcpy(r->key, key, len + 1);
    *m->resv_tail = r;
    m->resv_tail = &r->next;
    m->nresv++;
}

void ratelimit_track_foreach(const struct ratelimit_msg *pub, ratelimit_track_give_fn *fn,
                             void *arg)
{
    const struct msg *m = (const struct msg *)pub;
    for (const struct resv *r = m->resv; r; r = r->next)
        fn(arg, r->rule, r->key, r->limits, r->nlimits, r->units, r->at_ms);
}

void ratelimit_track_restored(struct ratelimit_track *t, struct ratelimit_msg *pub, int rule,
                              const char *key, int64_t at_ms)
{
    (void)t;
    struct msg *m = (struct msg *)pub;
    struct resv *r = track_resv(m, rule, key, hash_str(key));
    if (r && at_ms)
        r->at_ms = at_ms;
}

void ratelimit_track_finish(struct ratelimit_track *t, struct ratelimit_msg *pub)
{
    track_forget(t, (struct msg *)pub);
}

int ratelimit_track_wired(struct ratelimit_track *t, unsigned long long connection)
{
    const struct conn *c = track_conn(t, connection, 0);
    return c && c->wired;
}

void ratelimit_track_closed(struct ratelimit_track *t, unsigned long long connection)
{
    struct conn **p = &t->conns[connection % TRACK_CONN_BUCKETS];
    while (*p && (*p)->id != connection)
        p = &(*p)->hnext;
    struct conn *c = *p;
    if (!c)
        return;
    if (c->current)
        track_end(t, c, c->current, 1);
    struct msg *m;
    while ((m = TAILQ_FIRST(&c->waiting)))
        track_forget(t, m); /* no evidence came: they stay counted */
    *p = c->hnext;
    free(c);
}
