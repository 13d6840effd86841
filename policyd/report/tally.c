/*
 * tally.c - count parsed log lines into groups (see tally.h).
 *
 * Groups live in a fixed open-addressing index per side. Matching a Postfix reject to
 * policyd's refusal does not depend on the order of the files or of lines written by two
 * programs: every refusal and every reject goes to a slot keyed by (client address, sender,
 * recipient, minute), where a refusal and a reject pair at once and free the slot;
 * tally_finish pairs what is left with the neighbouring minutes. The slot table and the set of
 * refused clients grow to a fixed cap, then take no new keys (counted, never unbounded).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/report/tally.h"

#include "policyd/lib/hash.h"
#include "policyd/lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROUP_INDEX 1024 /* > 2 * TALLY_MAX_GROUPS: open addressing stays short */
#define MATCH_MIN_SLOTS (1u << 12)
#define MATCH_MAX_SLOTS (1u << 20) /* 24 MB at most */
#define CLIENTS_MIN_SLOTS (1u << 10)
#define CLIENTS_MAX_SLOTS (1u << 20) /* 8 MB at most */

struct match_slot {
    uint64_t key; /* 0: empty */
    uint32_t minute;
    uint32_t ours;   /* policyd refusals */
    uint32_t theirs; /* Postfix rejects */
    uint32_t group;  /* the Postfix group of the last reject counted here */
};

struct group_set {
    struct tally_group *groups[TALLY_MAX_GROUPS + 1]; /* the last: "other" */
    size_t n;
    int index[GROUP_INDEX]; /* group number + 1; 0: free */
};

struct tally {
    time_t since;
    struct tally_totals totals;
    struct group_set side[2];
    struct match_slot *match;
    size_t match_cap, match_used;
    uint64_t *clients; /* hashes of refused client addresses; 0: free */
    size_t clients_cap, clients_used;
    int clients_full;
    int finished;
};

struct tally *tally_new(time_t since)
{
    struct tally *t = xcalloc(1, sizeof(*t));
    t->since = since;
    return t;
}

void tally_too_long(struct tally *t)
{
    t->totals.lines++;
    t->totals.too_long++;
}

/* copy - a NUL-terminated copy of a span, at most max bytes of it. */
static char *copy(struct logline_span s, size_t max)
{
    return xstrndup(s.p ? s.p : "", s.n < max ? s.n : max);
}

/* --- groups --- */

static struct tally_group *group_new(enum tally_side side, const char *key, size_t keylen,
                                     uint64_t h)
{
    struct tally_group *g = xcalloc(1, sizeof(*g));
    g->side = side;
    g->hash = h;
    g->key = xstrndup(key, keylen);
    topk_init(&g->clients, TALLY_TOP);
    topk_init(&g->senders, TALLY_TOP);
    topk_init(&g->recipients, TALLY_TOP);
    return g;
}

/* group_find - the group for key, created if new (*fresh = 1); the "other" group once the
 * set is full. */
static struct tally_group *group_find(struct tally *t, enum tally_side side, const char *key,
                                      size_t keylen, int *fresh, size_t *number)
{
    struct group_set *s = &t->side[side];
    uint64_t h = hash_mem(key, keylen);
    size_t i = (size_t)h & (GROUP_INDEX - 1);
    *fresh = 0;
    for (;;) {
        int gi = s->index[i];
        if (gi == 0)
            break;
        struct tally_group *g = s->groups[gi - 1];
        if (g->hash == h && strlen(g->key) == keylen && memcmp(g->key, key, keylen) == 0) {
            *number = (size_t)gi - 1;
            return g;
        }
        i = (i + 1) & (GROUP_INDEX - 1);
    }
    if (s->n < TALLY_MAX_GROUPS) {
        struct tally_group *g = group_new(side, key, keylen, h);
        s->groups[s->n++] = g;
        s->index[i] = (int)s->n;
        *fresh = 1;
        *number = s->n - 1;
        return g;
    }
    if (!s->groups[TALLY_MAX_GROUPS]) {
        struct tally_group *g = group_new(side, "", 0, 0);
        g->other = 1;
        g->label = xstrdup(side == TALLY_POLICYD ? "(other causes: too many groups to list)"
                                                 : "(other replies: too many groups to list)");
        s->groups[TALLY_MAX_GROUPS] = g;
    }
    *number = TALLY_MAX_GROUPS;
    return s->groups[TALLY_MAX_GROUPS];
}

/* domain_of - the lower-cased domain of an address into buf: "<>" for the null sender,
 * "(none)" for an address without '@'. */
static size_t domain_of(struct logline_span a, char *buf, size_t buflen)
{
    const char *v;
    size_t n;
    if (a.n == 0) {
        v = "<>";
        n = 2;
    } else {
        const char *at = NULL;
        for (size_t i = a.n; i > 0; i--)
            if (a.p[i - 1] == '@') {
                at = a.p + i;
                break;
            }
        if (!at || at == a.p + a.n) {
            v = "(none)";
            n = 6;
        } else {
            v = at;
            n = (size_t)(a.p + a.n - at);
        }
    }
    if (n >= buflen)
        n = buflen - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = v[i] >= 'A' && v[i] <= 'Z' ? (char)(v[i] + 32) : v[i];
    buf[n] = 0;
    return n;
}

/* group_count - what every group counts: time, clients, domains. */
static void group_count(struct tally_group *g, const struct logline *l, int count_sender,
                        int count_recipient)
{
    char dom[256];
    g->count++;
    if (!g->first || l->when < g->first)
        g->first = l->when;
    if (l->when > g->last)
        g->last = l->when;
    if (l->client_addr.n)
        topk_add(&g->clients, l->client_addr.p, l->client_addr.n);
    if (count_sender)
        topk_add(&g->senders, dom, domain_of(l->sender, dom, sizeof(dom)));
    if (count_recipient)
        topk_add(&g->recipients, dom, domain_of(l->recipient, dom, sizeof(dom)));
}

/* --- matching and the refused clients --- */

/* match_key - the hash of (client address, sender, recipient), case-insensitive; never 0. */
static uint64_t match_key(const struct logline *l)
{
    const struct logline_span parts[3] = {l->client_addr, l->sender, l->recipient};
    uint64_t h = HASH_SEED;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < parts[k].n; i++) {
            char c = parts[k].p[i];
            c = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
            h = hash_mem_from(h, &c, 1);
        }
        h = hash_mem_from(h, "\n", 1);
    }
    return h ? h : 1;
}

static size_t match_probe(uint64_t key, uint32_t minute, size_t mask)
{
    return (size_t)((key ^ (minute * 0x9E3779B97F4A7C15ULL)) & mask);
}

/* match_lookup - the slot of (key, minute); create: make it (NULL if the table is full). */
static struct match_slot *match_lookup(struct tally *t, uint64_t key, uint32_t minute, int create)
{
    if (create && (t->match_used + 1) * 2 > t->match_cap && t->match_cap < MATCH_MAX_SLOTS) {
        size_t cap = t->match_cap ? t->match_cap * 2 : MATCH_MIN_SLOTS;
        struct match_slot *old = t->match, *m = xcalloc(cap, sizeof(*m));
        for (size_t i = 0; i < t->match_cap; i++) {
            if (!old[i].key)
                continue;
            size_t j = match_probe(old[i].key, old[i].minute, cap - 1);
            while (m[j].key)
                j = (j + 1) & (cap - 1);
            m[j] = old[i];
        }
        free(old);
        t->match = m;
        t->match_cap = cap;
    }
    if (!t->match_cap)
        return NULL;
    size_t mask = t->match_cap - 1, j = match_probe(key, minute, mask);
    while (t->match[j].key) {
        if (t->match[j].key == key && t->match[j].minute == minute)
            return &t->match[j];
        j = (j + 1) & mask;
    }
    if (!create || (t->match_used + 1) * 4 > t->match_cap * 3)
        return NULL;
    t->match_used++;
    t->match[j].key = key;
    t->match[j].minute = minute;
    return &t->match[j];
}

/* match_delete - empty slot i, moving later slots of its probe run back (linear probing
 * without tombstones, so the table stays as full as the unpaired events only). */
static void match_delete(struct tally *t, size_t i)
{
    size_t mask = t->match_cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->match[j].key)
            break;
        size_t home = match_probe(t->match[j].key, t->match[j].minute, mask);
        /* slot j may move to i if its home is not in the cyclic range (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            t->match[i] = t->match[j];
            i = j;
        }
    }
    memset(&t->match[i], 0, sizeof(t->match[i]));
    t->match_used--;
}

/* match_add - one policyd refusal (ours) or one Postfix reject of group (theirs) for the line's
 * (client, sender, recipient, minute). A pair in the same minute is made at once and its slot
 * freed: logs that hold both programs' lines keep the table nearly empty. */
static void match_add(struct tally *t, const struct logline *l, int ours, size_t group)
{
    struct match_slot *s = match_lookup(t, match_key(l), (uint32_t)(l->when / 60), 1);
    if (!s) {
        t->totals.match_untracked++;
        return;
    }
    if (ours && s->theirs) {
        s->theirs--;
        t->side[TALLY_POSTFIX].groups[s->group]->by_policyd++;
    } else if (!ours && s->ours) {
        s->ours--;
        t->side[TALLY_POSTFIX].groups[group]->by_policyd++;
    } else if (ours) {
        s->ours++;
    } else {
        s->theirs++;
        s->group = (uint32_t)group;
    }
    if (!s->ours && !s->theirs)
        match_delete(t, (size_t)(s - t->match));
}

/* clients_add - remember a refused client address. */
static void clients_add(struct tally *t, struct logline_span addr)
{
    uint64_t h = hash_mem(addr.p, addr.n);
    h = h ? h : 1;
    if ((t->clients_used + 1) * 2 > t->clients_cap) {
        if (t->clients_cap >= CLIENTS_MAX_SLOTS) {
            t->clients_full = 1;
            return;
        }
        size_t cap = t->clients_cap ? t->clients_cap * 2 : CLIENTS_MIN_SLOTS;
        uint64_t *c = xcalloc(cap, sizeof(*c));
        for (size_t i = 0; i < t->clients_cap; i++) {
            if (!t->clients[i])
                continue;
            size_t j = (size_t)t->clients[i] & (cap - 1);
            while (c[j])
                j = (j + 1) & (cap - 1);
            c[j] = t->clients[i];
        }
        free(t->clients);
        t->clients = c;
        t->clients_cap = cap;
    }
    size_t j = (size_t)h & (t->clients_cap - 1);
    while (t->clients[j]) {
        if (t->clients[j] == h)
            return;
        j = (j + 1) & (t->clients_cap - 1);
    }
    t->clients[j] = h;
    t->clients_used++;
}

int tally_client_refused(const struct tally *t, const char *addr)
{
    uint64_t h = hash_str(addr);
    h = h ? h : 1;
    if (!t->clients_cap)
        return 0;
    size_t j = (size_t)h & (t->clients_cap - 1);
    while (t->clients[j]) {
        if (t->clients[j] == h)
            return 1;
        j = (j + 1) & (t->clients_cap - 1);
    }
    return 0;
}

/* --- lines --- */

/* add_policyd - a diagnosis, deadline or dnsbl score line. */
static void add_policyd(struct tally *t, const struct logline *l)
{
    char key[512], label[200] = "";
    size_t k;
    int has_code = l->cause_code.n > 0;
    const char *check = l->kind == LOGLINE_DEADLINE ? "deadline" : NULL;

    if (l->kind == LOGLINE_DNSBL_SCORE) {
        snprintf(label, sizeof(label), "client scores at dnsbl_warn_threshold or more");
    } else if (!has_code) {
        const struct logline_span *text = l->cause.n ? &l->cause : &l->action;
        logline_normalise(text->p, text->n, 0, 1, label, sizeof(label));
    }
    /* Warn mode ("would reject") is kept apart from what was refused, code or not. */
    int would = l->verdict == LOGV_WOULD_REJECT || l->verdict == LOGV_WOULD_DEFER ||
                l->verdict == LOGV_WOULD_PREPEND;
    if (has_code)
        k = (size_t)snprintf(key, sizeof(key), "%.*s\037code%s\037%.*s", (int)l->check.n,
                             l->check.p, would ? "-warn" : "", (int)l->cause_code.n,
                             l->cause_code.p);
    else
        k = (size_t)snprintf(
            key, sizeof(key), "%.*s\037%s\037%s", (int)l->check.n, l->check.p,
            l->kind == LOGLINE_DNSBL_SCORE ? "score" : logline_verdict_name(l->verdict), label);
    if (k >= sizeof(key))
        k = sizeof(key) - 1;
    int fresh;
    size_t gi;
    struct tally_group *g = group_find(t, TALLY_POLICYD, key, k, &fresh, &gi);
    (void)gi;
    if (fresh) {
        g->check = check ? xstrdup(check) : copy(l->check, 64);
        g->cause_code = has_code ? copy(l->cause_code, 64) : NULL;
        g->label = has_code ? NULL : xstrdup(label);
    }
    group_count(g, l, l->kind != LOGLINE_DNSBL_SCORE, l->kind != LOGLINE_DNSBL_SCORE);
    g->verdicts[l->verdict]++;
    if (l->is_short)
        g->repeats++;
    else
        g->full++;
    if (l->action.n && (!g->reply || (!g->reply_full && !l->is_short))) {
        /* a short repeat's reply may be the code alone: a full line's replaces it */
        free(g->reply);
        g->reply = copy(l->action, 300);
        g->reply_full = !l->is_short;
    }
    if (!g->cause && !l->is_short && l->cause.n) {
        g->cause = copy(l->cause, TALLY_TEXT_MAX);
        if (l->fix.n) { /* the full line's fix replaces one seen without a cause */
            free(g->fix);
            g->fix = copy(l->fix, TALLY_TEXT_MAX);
        }
    }
    if (!g->fix && l->fix.n)
        g->fix = copy(l->fix, TALLY_TEXT_MAX);

    int refusal = l->kind == LOGLINE_DEADLINE
                      ? logline_refuses(l->action)
                      : l->verdict == LOGV_REJECT || l->verdict == LOGV_DEFER;
    if (refusal || l->verdict == LOGV_WOULD_REJECT || l->verdict == LOGV_WOULD_DEFER)
        if (l->client_addr.n)
            clients_add(t, l->client_addr);
    if (!refusal)
        return;
    g->refusals++;
    t->totals.policyd_refusals++;
    match_add(t, l, 1, 0);
}

/* add_postfix - one of Postfix's reject lines. */
static void add_postfix(struct tally *t, const struct logline *l)
{
    char key[400], label[200];
    logline_normalise(l->reason.p, l->reason.n, 1, 0, label, sizeof(label));
    /* "<x@y>: Relay access denied": the address Postfix puts first is not part of the reason */
    const char *lab = label;
    if (strncmp(lab, "<*>: ", 5) == 0 || strncmp(lab, "[*]: ", 5) == 0)
        lab += 5;
    size_t k = (size_t)snprintf(key, sizeof(key), "%.*s\037%.*s\037%s\037%d", (int)l->code.n,
                                l->code.p, (int)l->dsn.n, l->dsn.p, lab, l->warning_only);
    if (k >= sizeof(key))
        k = sizeof(key) - 1;
    int fresh;
    size_t gi;
    struct tally_group *g = group_find(t, TALLY_POSTFIX, key, k, &fresh, &gi);
    if (fresh) {
        g->code = copy(l->code, 8);
        g->dsn = copy(l->dsn, 16);
        g->label = xstrdup(lab);
        g->stage = copy(l->stage, 32);
        g->warning_only = l->warning_only;
        g->cause = xasprintf("%.*s%s%.*s%s%.*s", (int)l->code.n, l->code.p, l->code.n ? " " : "",
                             (int)l->dsn.n, l->dsn.p, l->dsn.n ? " " : "",
                             (int)(l->reason.n < 600 ? l->reason.n : 600), l->reason.p);
    }
    group_count(g, l, l->sender.p != NULL, l->recipient.p != NULL);
    if (l->warning_only)
        return; /* refused nothing: never paired with a refusal */
    match_add(t, l, 0, gi);
}

void tally_add(struct tally *t, const struct logline *l, size_t bytes)
{
    struct tally_totals *tt = &t->totals;
    tt->lines++;
    tt->bytes += bytes;
    if (l->when && t->since && l->when < t->since) {
        tt->before_since++;
        return;
    }
    if (l->when) {
        if (!tt->first || l->when < tt->first)
            tt->first = l->when;
        if (l->when > tt->last)
            tt->last = l->when;
    }
    switch (l->kind) {
    case LOGLINE_FOREIGN:
        tt->foreign++;
        break;
    case LOGLINE_MALFORMED:
        tt->malformed++;
        break;
    case LOGLINE_DIAGNOSIS:
        tt->diagnoses++;
        add_policyd(t, l);
        break;
    case LOGLINE_DEADLINE:
        tt->deadlines++;
        add_policyd(t, l);
        break;
    case LOGLINE_DNSBL_SCORE:
        tt->dnsbl_scores++;
        add_policyd(t, l);
        break;
    case LOGLINE_POSTFIX_REJECT:
        tt->postfix_rejects++;
        add_postfix(t, l);
        break;
    }
}

/* --- the end --- */

/* pair - match as many of slot a's Postfix rejects as b has policyd refusals left. */
static void pair(struct tally *t, struct match_slot *a, struct match_slot *b)
{
    uint32_t m = a->theirs < b->ours ? a->theirs : b->ours;
    if (!m)
        return;
    a->theirs -= m;
    b->ours -= m;
    struct tally_group *g = t->side[TALLY_POSTFIX].groups[a->group];
    if (g)
        g->by_policyd += m;
}

static int group_cmp(const void *a, const void *b)
{
    const struct tally_group *x = *(const struct tally_group *const *)a;
    const struct tally_group *y = *(const struct tally_group *const *)b;
    if (x->other != y->other)
        return x->other ? 1 : -1;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

void tally_finish(struct tally *t)
{
    if (t->finished)
        return;
    t->finished = 1;
    /* Same-minute pairs were made as the lines came; now the neighbouring minutes. */
    for (int d = -1; d <= 1; d += 2)
        for (size_t i = 0; i < t->match_cap; i++) {
            struct match_slot *a = &t->match[i];
            if (!a->key || !a->theirs)
                continue;
            struct match_slot *b = match_lookup(t, a->key, a->minute + (uint32_t)d, 0);
            if (b)
                pair(t, a, b);
        }
    for (size_t i = 0; i < t->match_cap; i++)
        t->totals.unmatched_refusals += t->match[i].ours;
    for (int side = 0; side < 2; side++) {
        struct group_set *s = &t->side[side];
        for (size_t i = 0; i <= TALLY_MAX_GROUPS; i++) {
            struct tally_group *g = s->groups[i];
            if (!g)
                continue;
            if (g->by_policyd > g->count)
                g->by_policyd = g->count;
            t->totals.matched += g->by_policyd;
        }
        if (s->groups[TALLY_MAX_GROUPS]) /* the "other" group joins the list, last */
            s->groups[s->n++] = s->groups[TALLY_MAX_GROUPS];
        qsort(s->groups, s->n, sizeof(s->groups[0]), group_cmp);
    }
}

struct tally_group *const *tally_groups(const struct tally *t, enum tally_side side, size_t *n)
{
    *n = t->side[side].n;
    return t->side[side].groups;
}

const struct tally_totals *tally_totals(const struct tally *t)
{
    return &t->totals;
}

void tally_free(struct tally *t)
{
    if (!t)
        return;
    for (int side = 0; side < 2; side++) {
        struct group_set *s = &t->side[side];
        size_t n = s->n;
        if (s->groups[TALLY_MAX_GROUPS] && !t->finished)
            s->groups[n++] = s->groups[TALLY_MAX_GROUPS];
        for (size_t i = 0; i < n; i++) {
            struct tally_group *g = s->groups[i];
            free(g->key);
            free(g->check);
            free(g->cause_code);
            free(g->label);
            free(g->code);
            free(g->dsn);
            free(g->stage);
            free(g->reply);
            free(g->cause);
            free(g->fix);
            topk_free(&g->clients);
            topk_free(&g->senders);
            topk_free(&g->recipients);
            free(g);
        }
    }
    free(t->match);
    free(t->clients);
    free(t);
}
