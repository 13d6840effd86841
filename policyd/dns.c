/*
 * dns.c - c-ares on the libevent loop, with a shared cache and merged in-flight queries.
 *
 * c-ares tells us which sockets to watch (ARES_OPT_SOCK_STATE_CB); we keep one persistent
 * libevent event per socket and one timer re-armed from ares_timeout(), and hand readiness to
 * ares_process_fd(). Every (type, name) has one cache entry: while its query is in flight the
 * entry collects waiters, so identical lookups cost one query; when the answer comes it is
 * parsed once into an immutable, reference-counted result, kept for its TTL (answer TTL, or
 * the SOA minimum for negative answers, clamped to [ttl_min, ttl_max]; errors error_ttl), and
 * delivered to every waiter. Cache hits go to a ready list flushed by a zero-delay event, so
 * no callback ever runs inside dns_lookup(). c-ares parses A/AAAA TTLs itself; for the other
 * types and for the SOA we walk the raw answer.
 */
#include "policyd/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct result {
    struct dns_result pub; /* first: the public view */
    int refs;
    char *name;
    char *detail;
    char **items;
    size_t *lens;
    int *prefs;
    unsigned char *raw;
};

struct entry {
    struct dns *dns;
    int type;
    char *name;
    unsigned hash;
    struct entry *hnext;         /* hash chain */
    struct entry *lprev, *lnext; /* LRU list, most recent first */
    struct result *res;          /* NULL while the first query is in flight */
    double expires;
    int inflight;
    struct dns_query *waiters;
};

struct dns_query {
    struct dns *dns;
    struct entry *entry; /* waiting for this entry's query */
    struct result *res;  /* ready: delivered at the next turn */
    dns_callback cb;
    void *arg;
    struct dns_query *prev, *next;
};

struct sockev {
    ares_socket_t fd;
    struct event *ev;
};

struct dns {
    struct event_base *base;
    ares_channel ch;
    struct dns_options opts;
    struct event *timer;
    struct event *deliver;
    struct sockev *socks;
    size_t nsocks;
    struct entry **buckets;
    size_t nbuckets;
    size_t nentries;
    struct entry *lru_first, *lru_last;
    struct dns_query *ready; /* cache hits and immediate answers to deliver */
    int destroying;
    struct dns_stats st;
};

static double dns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *dns_type_name(int type)
{
    switch (type) {
    case DNS_A:
        return "A";
    case DNS_AAAA:
        return "AAAA";
    case DNS_PTR:
        return "PTR";
    case DNS_MX:
        return "MX";
    case DNS_TXT:
        return "TXT";
    }
    return "?";
}

/* --- results --- */

static struct result *result_new(int type, const char *name, enum dns_status status,
                                 const char *detail)
{
    struct result *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->refs = 1;
    r->name = strdup(name);
    r->detail = strdup(detail);
    r->pub.status = status;
    r->pub.type = type;
    r->pub.name = r->name;
    r->pub.detail = r->detail;
    return r;
}

/* result_add - append one record (copied). */
static void result_add(struct result *r, const char *item, size_t len, int pref)
{
    size_t n = r->pub.count;
    r->items = realloc(r->items, (n + 1) * sizeof(*r->items));
    r->lens = realloc(r->lens, (n + 1) * sizeof(*r->lens));
    r->prefs = realloc(r->prefs, (n + 1) * sizeof(*r->prefs));
    if (!r->items || !r->lens || !r->prefs)
        abort();
    r->items[n] = malloc(len + 1);
    if (!r->items[n])
        abort();
    memcpy(r->items[n], item, len);
    r->items[n][len] = 0;
    r->lens[n] = len;
    r->prefs[n] = pref;
    r->pub.count = n + 1;
    r->pub.items = (const char **)r->items;
    r->pub.lens = r->lens;
    r->pub.prefs = r->pub.type == DNS_MX ? r->prefs : NULL;
}

const struct dns_result *dns_result_ref(const struct dns_result *pub)
{
    struct result *r = (struct result *)(void *)pub;
    r->refs++;
    return pub;
}

void dns_result_unref(const struct dns_result *pub)
{
    struct result *r = (struct result *)(void *)pub;
    if (!r || --r->refs > 0)
        return;
    for (size_t i = 0; i < r->pub.count; i++)
        free(r->items[i]);
    free(r->items);
    free(r->lens);
    free(r->prefs);
    free(r->raw);
    free(r->name);
    free(r->detail);
    free(r);
}

/* --- raw answer walking (TTLs for non-address types, SOA minimum) --- */

static unsigned dns_get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static unsigned long dns_get32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* dns_skip_name - length of the (possibly compressed) name at p, or -1. */
static long dns_skip_name(const unsigned char *abuf, int alen, const unsigned char *p)
{
    char *name;
    long len;
    if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
        return -1;
    ares_free_string(name);
    return len;
}

/*
 * dns_walk_ttl - the smallest TTL of the answer section (answers != 0) or, for negative
 * answers, min(SOA TTL, SOA MINIMUM) from the authority section. -1 if none found.
 */
static long dns_walk_ttl(const unsigned char *abuf, int alen, int answers)
{
    if (!abuf || alen < HFIXEDSZ)
        return -1;
    unsigned qd = dns_get16(abuf + 4), an = dns_get16(abuf + 6), ns = dns_get16(abuf + 8);
    const unsigned char *p = abuf + HFIXEDSZ, *end = abuf + alen;
    for (unsigned i = 0; i < qd; i++) {
        long n = dns_skip_name(abuf, alen, p);
        if (n < 0 || p + n + QFIXEDSZ > end)
            return -1;
        p += n + QFIXEDSZ;
    }
    long best = -1;
    for (unsigned i = 0; i < an + ns; i++) {
        long n = dns_skip_name(abuf, alen, p);
        if (n < 0 || p + n + RRFIXEDSZ > end)
            return best;
        p += n;
        unsigned type = dns_get16(p), rdlen = dns_get16(p + 8);
        long ttl = (long)(dns_get32(p + 4) & 0x7fffffffUL);
        const unsigned char *rd = p + RRFIXEDSZ;
        if (rd + rdlen > end)
            return best;
        if (answers && i < an) {
            if (best < 0 || ttl < best)
                best = ttl;
        } else if (!answers && i >= an && type == T_SOA) {
            /* mname, rname, then serial refresh retry expire minimum */
            long m1 = dns_skip_name(abuf, alen, rd);
            long m2 = m1 < 0 ? -1 : dns_skip_name(abuf, alen, rd + m1);
            if (m2 >= 0 && rd + m1 + m2 + 20 <= end) {
                long minimum = (long)(dns_get32(rd + m1 + m2 + 16) & 0x7fffffffUL);
                return ttl < minimum ? ttl : minimum;
            }
        }
        p = rd + rdlen;
    }
    return best;
}

/* dns_parse - the result of a query that c-ares reports successful. */
static struct result *dns_parse(int type, const char *name, const unsigned char *abuf, int alen)
{
    struct result *r = result_new(type, name, DNS_OK, "answer");
    char text[INET6_ADDRSTRLEN];
    int rc = ARES_SUCCESS;

    if (type == DNS_A) {
        struct ares_addrttl at[64];
        int n = 64;
        rc = ares_parse_a_reply(abuf, alen, NULL, at, &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n; i++) {
            inet_ntop(AF_INET, &at[i].ipaddr, text, sizeof(text));
            result_add(r, text, strlen(text), 0);
        }
    } else if (type == DNS_AAAA) {
        struct ares_addr6ttl at[64];
        int n = 64;
        rc = ares_parse_aaaa_reply(abuf, alen, NULL, at, &n);
        for (int i = 0; rc == ARES_SUCCESS && i < n; i++) {
            inet_ntop(AF_INET6, &at[i].ip6addr, text, sizeof(text));
            result_add(r, text, strlen(text), 0);
        }
    } else if (type == DNS_PTR) {
        struct hostent *he = NULL;
        unsigned char dummy[16] = {0};
        rc = ares_parse_ptr_reply(abuf, alen, dummy, 4, AF_INET, &he);
        if (rc == ARES_SUCCESS && he) {
            /* c-ares lists the first PTR name again among the aliases: keep each once. */
            result_add(r, he->h_name, strlen(he->h_name), 0);
            for (char **a = he->h_aliases; a && *a; a++) {
                int seen = 0;
                for (size_t k = 0; k < r->pub.count && !seen; k++)
                    seen = strcasecmp(r->items[k], *a) == 0;
                if (!seen)
                    result_add(r, *a, strlen(*a), 0);
            }
        }
        if (he)
            ares_free_hostent(he);
    } else if (type == DNS_MX) {
        struct ares_mx_reply *mx = NULL;
        rc = ares_parse_mx_reply(abuf, alen, &mx);
        for (struct ares_mx_reply *m = mx; rc == ARES_SUCCESS && m; m = m->next)
            result_add(r, m->host, strlen(m->host), m->priority);
        if (mx)
            ares_free_data(mx);
    } else if (type == DNS_TXT) {
        struct ares_txt_ext *txt = NULL;
        rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
        /* Strings of one record are joined (RFC 7208 3.3); record_start opens a record. */
        char *joined = NULL;
        size_t jlen = 0;
        for (struct ares_txt_ext *t = txt; rc == ARES_SUCCESS && t; t = t->next) {
            if (t->record_start && joined) {
                result_add(r, joined, jlen, 0);
                jlen = 0;
            }
            joined = realloc(joined, jlen + t->length + 1);
            if (!joined)
                abort();
            memcpy(joined + jlen, t->txt, t->length);
            jlen += t->length;
        }
        if (joined && rc == ARES_SUCCESS)
            result_add(r, joined, jlen, 0);
        free(joined);
        if (txt)
            ares_free_data(txt);
    }
    if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && r->pub.count == 0)) {
        r->pub.status = DNS_NODATA;
        free(r->detail);
        r->pub.detail = r->detail = strdup("no records of that type (only a CNAME?)");
    } else if (rc != ARES_SUCCESS) {
        r->pub.status = DNS_BADRESP;
        free(r->detail);
        char d[128];
        snprintf(d, sizeof(d), "unparseable answer: %s", ares_strerror(rc));
        r->pub.detail = r->detail = strdup(d);
    }
    return r;
}

/* --- the cache --- */

static unsigned dns_hash(int type, const char *name)
{
    unsigned h = (unsigned)type * 2654435761u;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

static void lru_unlink(struct dns *dns, struct entry *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else if (dns->lru_first == e)
        dns->lru_first = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else if (dns->lru_last == e)
        dns->lru_last = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_front(struct dns *dns, struct entry *e)
{
    lru_unlink(dns, e);
    e->lnext = dns->lru_first;
    if (dns->lru_first)
        dns->lru_first->lprev = e;
    dns->lru_first = e;
    if (!dns->lru_last)
        dns->lru_last = e;
}

static struct entry *cache_find(struct dns *dns, int type, const char *name, unsigned h)
{
    for (struct entry *e = dns->buckets[h & (dns->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->type == type && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

static void cache_remove(struct dns *dns, struct entry *e)
{
    struct entry **pp = &dns->buckets[e->hash & (dns->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(dns, e);
    dns_result_unref(&e->res->pub);
    free(e->name);
    free(e);
    dns->nentries--;
}

/* cache_evict - drop least recently used answers beyond the size bound (never in-flight). */
static void cache_evict(struct dns *dns)
{
    struct entry *e = dns->lru_last;
    while (dns->nentries > dns->opts.cache_size && e) {
        struct entry *prev = e->lprev;
        if (!e->inflight) {
            cache_remove(dns, e);
            dns->st.evicted++;
        }
        e = prev;
    }
}

/* --- delivery --- */

static void query_unlink(struct dns_query **list, struct dns_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        *list = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void query_push(struct dns_query **list, struct dns_query *q)
{
    q->prev = NULL;
    q->next = *list;
    if (*list)
        (*list)->prev = q;
    *list = q;
}

/* dns_deliver_cb - run the callbacks of ready lookups (zero-delay, from the loop). */
static void dns_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    (void)fd;
    (void)what;
    while (dns->ready) {
        struct dns_query *q = dns->ready;
        query_unlink(&dns->ready, q);
        struct result *r = q->res;
        dns_callback cb = q->cb;
        void *cbarg = q->arg;
        free(q);
        cb(&r->pub, cbarg);
        dns_result_unref(&r->pub);
    }
}

/* dns_make_ready - hand q its result for delivery at the next turn of the loop. */
static void dns_make_ready(struct dns *dns, struct dns_query *q, struct result *r)
{
    r->refs++;
    q->res = r;
    q->entry = NULL;
    query_push(&dns->ready, q);
    event_active(dns->deliver, EV_TIMEOUT, 0);
}

/* --- c-ares glue --- */

static void dns_reschedule(struct dns *dns)
{
    struct timeval tv, *t = ares_timeout(dns->ch, NULL, &tv);
    if (t)
        evtimer_add(dns->timer, t);
    else
        evtimer_del(dns->timer);
}

static void dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    (void)fd;
    (void)what;
    ares_process_fd(dns->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_reschedule(dns);
}

static void dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    ares_process_fd(dns->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    dns_reschedule(dns);
}

/* dns_sock_state - c-ares opened, changed or closed a socket. */
static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *dns = data;
    size_t i;
    for (i = 0; i < dns->nsocks && dns->socks[i].fd != fd; i++)
        ;
    if (!readable && !writable) {
        if (i < dns->nsocks) {
            event_free(dns->socks[i].ev);
            dns->socks[i] = dns->socks[--dns->nsocks];
        }
        return;
    }
    if (i == dns->nsocks) {
        dns->socks = realloc(dns->socks, (dns->nsocks + 1) * sizeof(*dns->socks));
        if (!dns->socks)
            abort();
        dns->socks[i].fd = fd;
        dns->socks[i].ev = NULL;
        dns->nsocks++;
    }
    if (dns->socks[i].ev)
        event_free(dns->socks[i].ev);
    short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    dns->socks[i].ev = event_new(dns->base, fd, what, dns_sock_cb, dns);
    event_add(dns->socks[i].ev, NULL);
}

/* dns_answer - c-ares finished the query of entry e. */
static void dns_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct entry *e = arg;
    struct dns *dns = e->dns;
    struct result *r;
    long ttl_s = -1;
    char detail[160];

    if (dns->destroying)
        return;
    switch (status) {
    case ARES_SUCCESS:
        r = dns_parse(e->type, e->name, abuf, alen);
        ttl_s = r->pub.status == DNS_OK ? dns_walk_ttl(abuf, alen, 1) : dns_walk_ttl(abuf, alen, 0);
        if (r->pub.status == DNS_NODATA)
            dns->st.nodata++;
        break;
    case ARES_ENOTFOUND:
        r = result_new(e->type, e->name, DNS_NXDOMAIN, "NXDOMAIN");
        ttl_s = dns_walk_ttl(abuf, alen, 0);
        dns->st.nxdomain++;
        break;
    case ARES_ENODATA:
        r = result_new(e->type, e->name, DNS_NODATA, "no records of that type");
        ttl_s = dns_walk_ttl(abuf, alen, 0);
        dns->st.nodata++;
        break;
    case ARES_ETIMEOUT:
        snprintf(detail, sizeof(detail), "timeout (no answer after %d tries of %ld ms)", timeouts,
                 dns->opts.timeout_ms);
        r = result_new(e->type, e->name, DNS_TEMPFAIL, detail);
        dns->st.timeouts++;
        break;
    case ARES_ESERVFAIL:
        r = result_new(e->type, e->name, DNS_TEMPFAIL, "SERVFAIL");
        dns->st.servfail++;
        break;
    case ARES_EBADRESP:
    case ARES_EFORMERR:
        snprintf(detail, sizeof(detail), "bad answer (%s)", ares_strerror(status));
        r = result_new(e->type, e->name, DNS_BADRESP, detail);
        dns->st.other_errors++;
        break;
    default:
        /* c-ares 1.18 reports "could not contact" when every server answered SERVFAIL or
         * REFUSED; the answer's rcode says which, when there is one. */
        if (abuf && alen >= HFIXEDSZ && (abuf[3] & 15) == SERVFAIL) {
            r = result_new(e->type, e->name, DNS_TEMPFAIL, "SERVFAIL");
            dns->st.servfail++;
            break;
        }
        if (abuf && alen >= HFIXEDSZ && (abuf[3] & 15) == REFUSED)
            snprintf(detail, sizeof(detail), "REFUSED");
        else if (status == ARES_ECONNREFUSED)
            snprintf(detail, sizeof(detail),
                     "no usable answer from any DNS server (SERVFAIL, REFUSED or unreachable)");
        else
            snprintf(detail, sizeof(detail), "%s", ares_strerror(status));
        r = result_new(e->type, e->name, DNS_TEMPFAIL, detail);
        dns->st.other_errors++;
        break;
    }
    if (abuf && alen > 0) {
        r->raw = malloc((size_t)alen);
        if (!r->raw)
            abort();
        memcpy(r->raw, abuf, (size_t)alen);
        r->pub.raw = r->raw;
        r->pub.rawlen = (size_t)alen;
    }
    long ttl_ms = r->pub.status == DNS_TEMPFAIL || r->pub.status == DNS_BADRESP
                      ? dns->opts.error_ttl_ms
                  : ttl_s < 0 ? dns->opts.ttl_min_ms
                              : ttl_s * 1000;
    if (r->pub.status != DNS_TEMPFAIL && r->pub.status != DNS_BADRESP) {
        if (ttl_ms < dns->opts.ttl_min_ms)
            ttl_ms = dns->opts.ttl_min_ms;
        if (ttl_ms > dns->opts.ttl_max_ms)
            ttl_ms = dns->opts.ttl_max_ms;
    }
    r->pub.ttl_ms = ttl_ms;
    if (e->res)
        dns_result_unref(&e->res->pub);
    e->res = r;
    e->expires = dns_now() + (double)ttl_ms / 1000.0;
    e->inflight = 0;
    while (e->waiters) {
        struct dns_query *q = e->waiters;
        query_unlink(&e->waiters, q);
        dns_make_ready(dns, q, r);
    }
    cache_evict(dns);
}

/* dns_name_ok - a name we may ask for: 1..253 bytes, labels 1..63. */
static int dns_name_ok(const char *name)
{
    size_t len = strlen(name), label = 0;
    if (len == 0 || len > 253)
        return 0;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (++label > 63) {
            return 0;
        }
    }
    return label > 0;
}

struct dns_query *dns_lookup(struct dns *dns, enum dns_type type, const char *name, dns_callback cb,
                             void *arg)
{
    char key[256];
    size_t len = strlen(name);
    struct dns_query *q = calloc(1, sizeof(*q));
    if (!q)
        abort();
    q->dns = dns;
    q->cb = cb;
    q->arg = arg;
    dns->st.lookups++;
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len >= sizeof(key) || len == 0) {
        struct result *r = result_new((int)type, "", DNS_NXDOMAIN, "not a valid domain name");
        dns_make_ready(dns, q, r);
        dns_result_unref(&r->pub);
        return q;
    }
    for (size_t i = 0; i < len; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[len] = 0;
    if (!dns_name_ok(key)) {
        struct result *r = result_new((int)type, key, DNS_NXDOMAIN, "not a valid domain name");
        dns_make_ready(dns, q, r);
        dns_result_unref(&r->pub);
        return q;
    }
    unsigned h = dns_hash((int)type, key);
    struct entry *e = cache_find(dns, (int)type, key, h);
    if (e && e->inflight) {
        dns->st.merged++;
        q->entry = e;
        query_push(&e->waiters, q);
        return q;
    }
    if (e && e->res && e->expires > dns_now()) {
        dns->st.cache_hits++;
        lru_front(dns, e);
        dns_make_ready(dns, q, e->res);
        return q;
    }
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e)
            abort();
        e->dns = dns;
        e->type = (int)type;
        e->name = strdup(key);
        e->hash = h;
        e->hnext = dns->buckets[h & (dns->nbuckets - 1)];
        dns->buckets[h & (dns->nbuckets - 1)] = e;
        dns->nentries++;
    }
    lru_front(dns, e);
    e->inflight = 1;
    q->entry = e;
    query_push(&e->waiters, q);
    dns->st.sent++;
    ares_query(dns->ch, key, C_IN, (int)type, dns_answer, e);
    dns_reschedule(dns);
    return q;
}

const struct dns_result *dns_peek(struct dns *dns, enum dns_type type, const char *name)
{
    char key[256];
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len >= sizeof(key))
        return NULL;
    for (size_t i = 0; i < len; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[len] = 0;
    struct entry *e = cache_find(dns, (int)type, key, dns_hash((int)type, key));
    if (!e || e->inflight || !e->res || e->expires <= dns_now())
        return NULL;
    dns->st.lookups++;
    dns->st.cache_hits++;
    lru_front(dns, e);
    return dns_result_ref(&e->res->pub);
}

void dns_cancel(struct dns_query *q)
{
    if (!q)
        return;
    if (q->entry) {
        query_unlink(&q->entry->waiters, q);
    } else {
        query_unlink(&q->dns->ready, q);
        dns_result_unref(&q->res->pub);
    }
    free(q);
}

int dns_set_servers(struct dns *dns, const char *servers, char *err, size_t errlen)
{
    char csv[1024];
    size_t n = 0;
    /* Our lists separate with commas and/or spaces; c-ares wants commas. */
    for (const char *p = servers; *p && n + 2 < sizeof(csv); p++) {
        if (*p == ' ' || *p == '\t' || *p == ',') {
            if (n > 0 && csv[n - 1] != ',')
                csv[n++] = ',';
        } else {
            csv[n++] = *p;
        }
    }
    while (n > 0 && csv[n - 1] == ',')
        n--;
    csv[n] = 0;
    if (n == 0)
        return 0; /* keep /etc/resolv.conf's servers */
    int rc = ares_set_servers_ports_csv(dns->ch, csv);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "dns_servers: '%s': %s", servers, ares_strerror(rc));
        return -1;
    }
    return 0;
}

struct dns *dns_new(struct event_base *base, const struct dns_options *opts, char *err,
                    size_t errlen)
{
    static int library_ready;
    if (!library_ready) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
            snprintf(err, errlen, "c-ares library initialisation failed");
            return NULL;
        }
        library_ready = 1;
    }
    struct dns *dns = calloc(1, sizeof(*dns));
    if (!dns)
        abort();
    dns->base = base;
    dns->opts = *opts;
    if (dns->opts.cache_size < 16)
        dns->opts.cache_size = 16;
    dns->nbuckets = 1024;
    while (dns->nbuckets < dns->opts.cache_size && dns->nbuckets < (1u << 22))
        dns->nbuckets <<= 1;
    dns->buckets = calloc(dns->nbuckets, sizeof(*dns->buckets));
    dns->timer = evtimer_new(base, dns_timer_cb, dns);
    dns->deliver = event_new(base, -1, 0, dns_deliver_cb, dns);
    if (!dns->buckets || !dns->timer || !dns->deliver)
        abort();

    struct ares_options ao;
    memset(&ao, 0, sizeof(ao));
    ao.sock_state_cb = dns_sock_state;
    ao.sock_state_cb_data = dns;
    ao.timeout = (int)opts->timeout_ms;
    ao.tries = opts->tries > 0 ? opts->tries : 1;
    ao.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    ao.ednspsz = 1232;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
               ARES_OPT_EDNSPSZ;
    int rc = ares_init_options(&dns->ch, &ao, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "DNS: %s", ares_strerror(rc));
        dns->ch = NULL;
        dns_free(dns);
        return NULL;
    }
    if (opts->servers && dns_set_servers(dns, opts->servers, err, errlen) != 0) {
        dns_free(dns);
        return NULL;
    }
    return dns;
}

void dns_free(struct dns *dns)
{
    if (!dns)
        return;
    dns->destroying = 1;
    if (dns->ch)
        ares_destroy(dns->ch); /* callbacks see destroying and return */
    while (dns->ready) {
        struct dns_query *q = dns->ready;
        query_unlink(&dns->ready, q);
        dns_result_unref(&q->res->pub);
        free(q);
    }
    for (size_t b = 0; b < dns->nbuckets; b++) {
        for (struct entry *e = dns->buckets[b], *next; e; e = next) {
            next = e->hnext;
            while (e->waiters) {
                struct dns_query *q = e->waiters;
                query_unlink(&e->waiters, q);
                free(q);
            }
            if (e->res)
                dns_result_unref(&e->res->pub);
            free(e->name);
            free(e);
        }
    }
    for (size_t i = 0; i < dns->nsocks; i++)
        event_free(dns->socks[i].ev);
    free(dns->socks);
    free(dns->buckets);
    if (dns->timer)
        event_free(dns->timer);
    if (dns->deliver)
        event_free(dns->deliver);
    free(dns);
}

void dns_get_stats(const struct dns *dns, struct dns_stats *out)
{
    *out = dns->st;
    out->cached = dns->nentries;
}

int dns_reverse_name(const char *addr, const char *zone, char *out, size_t outlen)
{
    unsigned char a[16];
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    int v4;
    if (inet_pton(AF_INET, addr, a) == 1) {
        v4 = 1;
    } else if (inet_pton(AF_INET6, addr, a) == 1) {
        v4 = memcmp(a, mapped, 12) == 0;
        if (v4)
            memmove(a, a + 12, 4);
    } else {
        return -1;
    }
    size_t n = 0;
    if (v4) {
        /* Hand-made: this runs for every request of the rdns and dnsbl checks. */
        const char *suffix = zone ? zone : "in-addr.arpa";
        size_t slen = strlen(suffix);
        if (outlen < 16 + slen + 1)
            return -1;
        for (int i = 3; i >= 0; i--) {
            unsigned v = a[i];
            if (v >= 100)
                out[n++] = (char)('0' + v / 100);
            if (v >= 10)
                out[n++] = (char)('0' + v / 10 % 10);
            out[n++] = (char)('0' + v % 10);
            out[n++] = '.';
        }
        memcpy(out + n, suffix, slen + 1);
        n += slen;
    } else {
        static const char hex[] = "0123456789abcdef";
        for (int i = 15; i >= 0 && n + 4 < outlen; i--) {
            out[n++] = hex[a[i] & 15];
            out[n++] = '.';
            out[n++] = hex[a[i] >> 4];
            out[n++] = '.';
        }
        n += (size_t)snprintf(out + n, outlen > n ? outlen - n : 0, "%s", zone ? zone : "ip6.arpa");
    }
    return n < outlen ? 0 : -1;
}
