/*
 * dns.c - c-ares on the libevent loop, with a shared cache and merged in-flight queries.
 *
 * Each server gets its own c-ares channel (one server, one try), its sockets watched by
 * persistent libevent events (ARES_OPT_SOCK_STATE_CB) and a timer re-armed from ares_timeout(),
 * readiness handed to ares_process_fd(). We walk the servers ourselves: `tries` rounds, live
 * servers first, a server that keeps timing out set aside for a while, the SERVFAIL or REFUSED
 * of each server seen (c-ares 1.18 hides the rcode behind "could not contact") and the time
 * bound exact (c-ares 1.18 doubles the timeout every round); tries go out at most 256 per turn
 * of the loop, so a burst never outruns the socket buffers. Every (type, name) has one cache
 * entry; while its query is in flight the entry collects waiters, so identical lookups cost
 * one query. The answer is parsed once by our own record walker (records, CNAME chain, TTLs,
 * the SOA minimum of negative answers) into an immutable, reference-counted result in one
 * allocation, kept for its TTL, and handed to every waiter through the ready list, which a
 * zero-delay timer flushes: no callback ever runs inside a call. The engine owns entries,
 * flights and server sets; a result belongs to whoever holds a reference to it.
 */
#include "policyd/dns/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DNS_MAX_SERVERS 16    /* bits of flight.skip */
#define DNS_EDNS_SIZE 1232    /* DNS flag day 2020 */
#define DNS_RCVBUF (1 << 20)  /* a burst of answers must not overflow the UDP socket */
#define DNS_DOWN_MIN_MS 1000  /* a server that timed out twice in a row is set aside ... */
#define DNS_DOWN_MAX_MS 60000 /* ... for 1 s, doubling while it stays silent, up to 60 s */
#define DNS_CNAME_HOPS 16
#define DNS_SEND_BATCH 256 /* queries sent per turn of the loop: answers are read in between */

enum { RR_A = 1, RR_NS = 2, RR_CNAME = 5, RR_SOA = 6, RR_PTR = 12, RR_MX = 15, RR_TXT = 16 };
enum { RR_AAAA = 28, CLASS_IN = 1 };
enum { RC_NOERROR, RC_FORMERR, RC_SERVFAIL, RC_NXDOMAIN, RC_NOTIMP, RC_REFUSED };
static const char *const dns_rcode_name[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                             "NXDOMAIN", "NOTIMP",  "REFUSED"};

struct result {
    struct dns_result pub; /* first: the public view; the arrays and bytes follow */
    int refs;
};

struct qlist {
    struct dns_query *first, *last;
    size_t n;
};

struct dns_query {
    struct dns *dns;
    struct entry *entry; /* waiting for this entry's flight; NULL once ready */
    struct result *res;  /* ready: the result to deliver (a reference) */
    dns_callback cb;
    void *arg;
    struct dns_query *prev, *next;
};

struct sockev {
    ares_socket_t fd;
    struct event *ev;
};

struct server {
    struct dns_set *set;
    ares_channel ch;
    struct event *timer;
    struct sockev *socks;
    size_t nsocks;
    char label[64];       /* "127.0.0.1", "127.0.0.1:5353", "[::1]:5353" */
    int streak;           /* timeouts in a row */
    long long down_until; /* set aside until then (monotonic ms) */
    long long answered;   /* when it last answered anything (monotonic ms) */
    long down_for;
};

/* A server list with its channels; flights started on it keep it alive (refs). */
struct dns_set {
    struct dns *dns;
    int refs;
    long timeout_ms;
    int tries;
    struct dns_set *prev, *next;
    size_t n;
    struct server srv[DNS_MAX_SERVERS];
};

/* One query on its way through the servers, for one cache entry. */
struct flight {
    struct entry *entry;
    struct dns_set *set;
    unsigned char *qbuf;
    int qlen;
    int attempt, nattempts, sends, cur;
    unsigned skip; /* servers not to ask again: they answered SERVFAIL, REFUSED... */
    unsigned char order[DNS_MAX_SERVERS];
    struct {
        unsigned short timeouts;
        unsigned char rcode, refused;
        int error;
    } out[DNS_MAX_SERVERS];
    unsigned char *raw; /* the last SERVFAIL/REFUSED answer, for the result */
    size_t rawlen;
    struct flight *qnext; /* in the send queue */
};

struct entry {
    struct entry *hnext;
    struct entry *lprev, *lnext; /* LRU, most recent first: answered entries only */
    struct result *res;          /* NULL while the first query is in flight */
    long long expires;
    struct flight *flight;
    struct qlist waiters;
    unsigned hash;
    int type;
    char name[]; /* the key: lower case, no trailing dot */
};

struct dns {
    struct event_base *base;
    struct dns_options opts;
    char *servers; /* opts.servers, owned */
    struct dns_set *set;
    struct dns_set *sets; /* all sets: the current one and those still draining */
    struct event *deliver, *reap, *sender;
    struct flight *sendq, *sendq_last; /* flights waiting for their next try to be sent */
    struct entry **buckets;
    size_t nbuckets, nentries, ninflight;
    struct entry *lru_first, *lru_last;
    struct qlist ready;
    struct dns_stats st;
};

static long long dns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *dns_alloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        abort();
    return p;
}

const char *dns_type_name(int type)
{
    static _Thread_local char other[16];
    switch (type) {
    case RR_A:
        return "A";
    case RR_NS:
        return "NS";
    case RR_CNAME:
        return "CNAME";
    case RR_SOA:
        return "SOA";
    case RR_PTR:
        return "PTR";
    case RR_MX:
        return "MX";
    case RR_TXT:
        return "TXT";
    case RR_AAAA:
        return "AAAA";
    case 33:
        return "SRV";
    case 99:
        return "SPF";
    }
    snprintf(other, sizeof(other), "TYPE%d", type);
    return other;
}

/* --- results: built in a scratch builder, then frozen into one allocation --- */

struct brec {
    size_t off, len;
    int pref;
    unsigned char addr[16];
};

struct builder {
    struct brec *recs;
    size_t n, ncap;
    unsigned char *data; /* item bytes, each followed by a NUL */
    size_t used, cap;
    size_t start; /* of the item being built */
};

static void builder_bytes(struct builder *b, const void *p, size_t n)
{
    if (b->used + n + 1 > b->cap) {
        while (b->used + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 256;
        b->data = realloc(b->data, b->cap);
        if (!b->data)
            abort();
    }
    memcpy(b->data + b->used, p, n);
    b->used += n;
}

static void builder_begin(struct builder *b)
{
    b->start = b->used;
}

/* builder_end - close the item begun last: its bytes are what builder_bytes added since. */
static void builder_end(struct builder *b, int pref, const unsigned char *addr, size_t alen)
{
    if (b->n == b->ncap) {
        b->ncap = b->ncap ? b->ncap * 2 : 8;
        b->recs = realloc(b->recs, b->ncap * sizeof(*b->recs));
        if (!b->recs)
            abort();
    }
    struct brec *r = &b->recs[b->n++];
    r->off = b->start;
    r->len = b->used - b->start;
    r->pref = pref;
    if (alen)
        memcpy(r->addr, addr, alen);
    builder_bytes(b, "", 1);
}

static void builder_free(struct builder *b)
{
    free(b->recs);
    free(b->data);
}

static size_t dns_align(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

/* result_make - a frozen result (one reference) from b's records (b may be NULL). */
static struct result *result_make(int type, const char *name, enum dns_status status,
                                  const char *detail, const struct builder *b,
                                  const unsigned char *raw, size_t rawlen)
{
    size_t n = b ? b->n : 0;
    size_t alen = type == RR_A ? 4 : type == RR_AAAA ? 16 : 0;
    size_t o_items = dns_align(sizeof(struct result), alignof(char *));
    size_t o_lens = dns_align(o_items + n * sizeof(char *), alignof(size_t));
    size_t o_prefs = dns_align(o_lens + n * sizeof(size_t), alignof(int));
    size_t o_bytes = o_prefs + n * sizeof(int);
    size_t nlen = strlen(name) + 1, dlen = strlen(detail) + 1;
    size_t total = o_bytes + n * alen + rawlen + (b ? b->used : 0) + nlen + dlen;
    unsigned char *mem = dns_alloc(total);
    struct result *r = (struct result *)(void *)mem;
    const char **items = (const char **)(void *)(mem + o_items);
    size_t *lens = (size_t *)(void *)(mem + o_lens);
    int *prefs = (int *)(void *)(mem + o_prefs);
    unsigned char *p = mem + o_bytes, *addrs = p;

    p += n * alen;
    if (rawlen) {
        memcpy(p, raw, rawlen);
        r->pub.raw = p;
        r->pub.rawlen = rawlen;
        p += rawlen;
    }
    if (b && b->used) {
        memcpy(p, b->data, b->used);
        for (size_t i = 0; i < n; i++) {
            items[i] = (const char *)p + b->recs[i].off;
            lens[i] = b->recs[i].len;
            prefs[i] = b->recs[i].pref;
            if (alen)
                memcpy(addrs + i * alen, b->recs[i].addr, alen);
        }
        p += b->used;
    }
    memcpy(p, name, nlen);
    r->pub.name = (const char *)p;
    p += nlen;
    memcpy(p, detail, dlen);
    r->pub.detail = (const char *)p;
    r->pub.status = status;
    r->pub.type = type;
    r->pub.count = n;
    if (n) {
        r->pub.items = items;
        r->pub.lens = lens;
        r->pub.prefs = type == RR_MX ? prefs : NULL;
        r->pub.addrs = alen ? addrs : NULL;
    }
    r->refs = 1;
    return r;
}

static void result_unref(struct result *r)
{
    if (r && --r->refs == 0)
        free(r);
}

const struct dns_result *dns_result_ref(const struct dns_result *pub)
{
    struct result *r = (struct result *)(void *)pub;
    r->refs++;
    return pub;
}

void dns_result_unref(const struct dns_result *pub)
{
    result_unref((struct result *)(void *)pub);
}

/* --- the answer walker: every length checked against the message, never trusted --- */

static unsigned dns_get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* dns_get_ttl - a TTL; values with the top bit set count as 0 (RFC 2181 section 8). */
static long dns_get_ttl(const unsigned char *p)
{
    unsigned long v =
        (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
    return v & 0x80000000UL ? 0 : (long)v;
}

/*
 * msg_name - the name at *off into wire form without compression (length-prefixed labels,
 * the root's 0 last; lower case when lower), at most 255 bytes; *off moves past the name as
 * stored there. 0, or -1 for a broken name (out of bounds, loop, too long, unknown label type).
 */
static int msg_name(const unsigned char *m, size_t len, size_t *off, unsigned char out[255],
                    size_t *outlen, int lower)
{
    size_t pos = *off, n = 0;
    int jumped = 0, hops = 0;
    for (;;) {
        if (pos >= len)
            return -1;
        unsigned c = m[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= len || ++hops > 64)
                return -1;
            if (!jumped)
                *off = pos + 2;
            jumped = 1;
            pos = (c & 0x3f) << 8 | m[pos + 1];
            continue;
        }
        if (c & 0xc0)
            return -1;
        if (c == 0) {
            out[n++] = 0;
            if (!jumped)
                *off = pos + 1;
            *outlen = n;
            return 0;
        }
        if (pos + 1 + c > len || n + 1 + c + 1 > 255)
            return -1;
        out[n++] = (unsigned char)c;
        for (unsigned i = 0; i < c; i++) {
            unsigned char ch = m[pos + 1 + i];
            out[n++] = lower && ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
        }
        pos += 1 + c;
    }
}

/* wire_text - a wire-form name as text, no trailing dot; '.', '\' and unprintable bytes
 * escaped as in zone files ("\.", "\\", "\DDD"). The root is "". Returns the length. */
static size_t wire_text(const unsigned char *w, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; w[i]; i += 1u + w[i]) {
        if (i && n + 1 < outlen)
            out[n++] = '.';
        for (size_t k = 1; k <= w[i]; k++) {
            unsigned char c = w[i + k];
            if (n + 5 >= outlen)
                break;
            if (c == '.' || c == '\\') {
                out[n++] = '\\';
                out[n++] = (char)c;
            } else if (c <= ' ' || c >= 0x7f) {
                n += (size_t)snprintf(out + n, outlen - n, "\\%03u", c);
            } else {
                out[n++] = (char)c;
            }
        }
    }
    out[n] = 0;
    return n;
}

struct rr {
    size_t owner; /* offset of the owner name */
    unsigned type, cls;
    long ttl;
    size_t rd, rdlen;
};

/* msg_rr - the record at *off (moved past it). 0 / -1. */
static int msg_rr(const unsigned char *m, size_t len, size_t *off, struct rr *rr)
{
    unsigned char w[255];
    size_t wl;
    rr->owner = *off;
    if (msg_name(m, len, off, w, &wl, 0) != 0 || *off + 10 > len)
        return -1;
    const unsigned char *p = m + *off;
    rr->type = dns_get16(p);
    rr->cls = dns_get16(p + 2);
    rr->ttl = dns_get_ttl(p + 4);
    rr->rdlen = dns_get16(p + 8);
    rr->rd = *off + 10;
    if (rr->rd + rr->rdlen > len)
        return -1;
    *off = rr->rd + rr->rdlen;
    return 0;
}

/* msg_owner_is - 1 if the owner of rr is the wire-form name w (case ignored). */
static int msg_owner_is(const unsigned char *m, size_t len, const struct rr *rr,
                        const unsigned char *w, size_t wl)
{
    unsigned char o[255];
    size_t ol, off = rr->owner;
    return msg_name(m, len, &off, o, &ol, 1) == 0 && ol == wl && memcmp(o, w, wl) == 0;
}

static long dns_min_ttl(long a, long b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* msg_record_name - add the name at off, inside the RDATA ending at end, to b. 0 / -1. */
static int msg_record_name(const unsigned char *m, size_t len, size_t off, size_t end, int pref,
                           struct builder *b)
{
    unsigned char w[255];
    char text[1024];
    size_t wl;
    if (msg_name(m, len, &off, w, &wl, 0) != 0 || off > end)
        return -1;
    builder_bytes(b, text, wire_text(w, text, sizeof(text)));
    builder_end(b, pref, NULL, 0);
    return 0;
}

/* msg_record - add the record rr of the asked type to b. 0, or -1 if its RDATA is broken. */
static int msg_record(const unsigned char *m, size_t len, const struct rr *rr, struct builder *b)
{
    const unsigned char *rd = m + rr->rd;
    size_t end = rr->rd + rr->rdlen;
    char text[INET6_ADDRSTRLEN];

    builder_begin(b);
    switch (rr->type) {
    case RR_A:
    case RR_AAAA:
        if (rr->rdlen != (rr->type == RR_A ? 4u : 16u))
            return -1;
        inet_ntop(rr->type == RR_A ? AF_INET : AF_INET6, rd, text, sizeof(text));
        builder_bytes(b, text, strlen(text));
        builder_end(b, 0, rd, rr->rdlen);
        return 0;
    case RR_MX:
        if (rr->rdlen < 3)
            return -1;
        return msg_record_name(m, len, rr->rd + 2, end, (int)dns_get16(rd), b);
    case RR_PTR:
    case RR_NS:
    case RR_CNAME:
        return msg_record_name(m, len, rr->rd, end, 0, b);
    case RR_TXT:
        /* The strings of one record are joined (RFC 7208 section 3.3). */
        for (size_t off = rr->rd; off < end; off += 1u + m[off]) {
            if (off + 1 + m[off] > end)
                return -1;
            builder_bytes(b, m + off + 1, m[off]);
        }
        builder_end(b, 0, NULL, 0);
        return 0;
    default:
        builder_bytes(b, rd, rr->rdlen);
        builder_end(b, 0, NULL, 0);
        return 0;
    }
}

/*
 * dns_parse - the result of an answer to (type, name) from server. *ttl_s: the smallest TTL
 * of the records used (the CNAME chain and the answers), or for negative answers also
 * min(SOA TTL, SOA MINIMUM) from the authority section (RFC 2308); -1 if the answer gives
 * none. Rcodes other than NOERROR and NXDOMAIN give DNS_TEMPFAIL.
 */
static struct result *dns_parse(int type, const char *name, const unsigned char *m, size_t len,
                                const char *server, long *ttl_s)
{
    struct builder b = {0};
    struct rr *rrs = NULL;
    unsigned char cur[255];
    size_t curlen, off = 12;
    char detail[160];
    enum dns_status status = DNS_OK;
    long ttl = -1, neg = -1;
    const char *broken = NULL;

    *ttl_s = -1;
    if (len < 12) {
        snprintf(detail, sizeof(detail), "bad answer from %s: %zu bytes", server, len);
        return result_make(type, name, DNS_BADRESP, detail, NULL, m, len);
    }
    unsigned rcode = m[3] & 15, qd = dns_get16(m + 4), an = dns_get16(m + 6), ns = dns_get16(m + 8);
    if (rcode != RC_NOERROR && rcode != RC_NXDOMAIN) {
        if (rcode <= RC_REFUSED)
            snprintf(detail, sizeof(detail), "%s from %s", dns_rcode_name[rcode], server);
        else
            snprintf(detail, sizeof(detail), "rcode %u from %s", rcode, server);
        return result_make(type, name, DNS_TEMPFAIL, detail, NULL, m, len);
    }
    /* The chain starts at the question's name; c-ares checked it is ours. */
    if (qd < 1 || msg_name(m, len, &off, cur, &curlen, 1) != 0 || off + 4 > len) {
        broken = "no question";
        goto bad;
    }
    off += 4;
    for (unsigned i = 1; i < qd; i++) {
        unsigned char w[255];
        size_t wl;
        if (msg_name(m, len, &off, w, &wl, 0) != 0 || off + 4 > len) {
            broken = "bad question";
            goto bad;
        }
        off += 4;
    }
    size_t nrr = 0, room = (len - off) / 11 + 1;
    rrs = dns_alloc((an < room ? an : room) * sizeof(*rrs));
    for (unsigned i = 0; i < an; i++) {
        if (nrr >= room || msg_rr(m, len, &off, &rrs[nrr]) != 0) {
            broken = "answer record out of bounds";
            goto bad;
        }
        nrr++;
    }
    /* The authority section only matters for the SOA of negative answers: read leniently. */
    for (unsigned i = 0; i < ns; i++) {
        struct rr rr;
        if (msg_rr(m, len, &off, &rr) != 0)
            break;
        if (rr.type == RR_SOA && rr.cls == CLASS_IN) {
            unsigned char w[255];
            size_t wl, p = rr.rd;
            if (msg_name(m, len, &p, w, &wl, 0) == 0 && msg_name(m, len, &p, w, &wl, 0) == 0 &&
                p + 20 <= rr.rd + rr.rdlen) {
                neg = dns_min_ttl(rr.ttl, dns_get_ttl(m + p + 16));
                break;
            }
        }
    }
    /* Follow the CNAME chain from the question's name, whatever the order of the records. */
    for (int hop = 0; type != RR_CNAME && hop < DNS_CNAME_HOPS; hop++) {
        size_t i;
        for (i = 0; i < nrr; i++)
            if (rrs[i].type == RR_CNAME && rrs[i].cls == CLASS_IN &&
                msg_owner_is(m, len, &rrs[i], cur, curlen))
                break;
        if (i == nrr)
            break;
        size_t p = rrs[i].rd;
        if (msg_name(m, len, &p, cur, &curlen, 1) != 0 || p > rrs[i].rd + rrs[i].rdlen) {
            broken = "bad CNAME record";
            goto bad;
        }
        ttl = dns_min_ttl(ttl, rrs[i].ttl);
    }
    /* Records of another name or class are no answer (RFC 5452: do not trust them). */
    for (size_t i = 0; rcode == RC_NOERROR && i < nrr; i++) {
        if (rrs[i].type != (unsigned)type || rrs[i].cls != CLASS_IN ||
            !msg_owner_is(m, len, &rrs[i], cur, curlen))
            continue;
        if (msg_record(m, len, &rrs[i], &b) != 0) {
            snprintf(detail, sizeof(detail), "bad %s record", dns_type_name(type));
            broken = detail;
            goto bad;
        }
        ttl = dns_min_ttl(ttl, rrs[i].ttl);
    }
    if (rcode == RC_NXDOMAIN) {
        status = DNS_NXDOMAIN;
        snprintf(detail, sizeof(detail), "NXDOMAIN");
        ttl = dns_min_ttl(ttl, neg);
    } else if (b.n == 0) {
        status = DNS_NODATA;
        snprintf(detail, sizeof(detail), "NODATA (the name exists, without %s records)",
                 dns_type_name(type));
        ttl = dns_min_ttl(ttl, neg);
    } else {
        snprintf(detail, sizeof(detail), "%zu %s record%s", b.n, dns_type_name(type),
                 b.n == 1 ? "" : "s");
    }
    *ttl_s = ttl;
    struct result *r = result_make(type, name, status, detail, &b, m, len);
    free(rrs);
    builder_free(&b);
    return r;
bad:;
    char why[200];
    snprintf(why, sizeof(why), "bad answer from %s: %s", server, broken);
    free(rrs);
    builder_free(&b);
    return result_make(type, name, DNS_BADRESP, why, NULL, m, len);
}

const struct dns_result *dns_parse_answer(int type, const char *name, const unsigned char *answer,
                                          size_t len)
{
    long ttl_s;
    struct result *r = dns_parse(type, name, answer, len, "the server", &ttl_s);
    r->pub.ttl_ms = ttl_s < 0 ? -1 : ttl_s * 1000;
    return &r->pub;
}

/* --- lists of lookups --- */

static void qlist_append(struct qlist *l, struct dns_query *q)
{
    q->next = NULL;
    q->prev = l->last;
    if (l->last)
        l->last->next = q;
    else
        l->first = q;
    l->last = q;
    l->n++;
}

static void qlist_remove(struct qlist *l, struct dns_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        l->first = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        l->last = q->prev;
    q->prev = q->next = NULL;
    l->n--;
}

/* --- delivery: never inside a call, always from the loop --- */

static void dns_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    (void)fd;
    (void)what;
    /* Only those ready now; lookups made by these callbacks wait for the next turn. */
    for (size_t n = dns->ready.n; n > 0 && dns->ready.first; n--) {
        struct dns_query *q = dns->ready.first;
        qlist_remove(&dns->ready, q);
        struct result *r = q->res;
        dns_callback cb = q->cb;
        void *cbarg = q->arg;
        free(q);
        cb(&r->pub, cbarg);
        result_unref(r);
    }
    if (dns->ready.first) {
        struct timeval zero = {0, 0};
        evtimer_add(dns->deliver, &zero);
    }
}

/* dns_make_ready - hand q a reference to r, for delivery at the next turn of the loop. */
static void dns_make_ready(struct dns *dns, struct dns_query *q, struct result *r)
{
    r->refs++;
    q->res = r;
    q->entry = NULL;
    qlist_append(&dns->ready, q);
    if (!evtimer_pending(dns->deliver, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(dns->deliver, &zero);
    }
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
    else
        dns->lru_first = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        dns->lru_last = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push(struct dns *dns, struct entry *e)
{
    e->lprev = NULL;
    e->lnext = dns->lru_first;
    if (dns->lru_first)
        dns->lru_first->lprev = e;
    else
        dns->lru_last = e;
    dns->lru_first = e;
}

static struct entry *cache_find(const struct dns *dns, int type, const char *name, unsigned h)
{
    for (struct entry *e = dns->buckets[h & (dns->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->type == type && strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

/* cache_grow - keep chains short: double the buckets when entries outnumber them twice. */
static void cache_grow(struct dns *dns)
{
    if (dns->nentries + dns->ninflight < dns->nbuckets * 2 || dns->nbuckets >= (1u << 22))
        return;
    size_t nb = dns->nbuckets * 2;
    struct entry **b = dns_alloc(nb * sizeof(*b));
    for (size_t i = 0; i < dns->nbuckets; i++) {
        for (struct entry *e = dns->buckets[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    }
    free(dns->buckets);
    dns->buckets = b;
    dns->nbuckets = nb;
}

/* cache_remove - forget an answered entry (its result lives on in references). */
static void cache_remove(struct dns *dns, struct entry *e)
{
    struct entry **pp = &dns->buckets[e->hash & (dns->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(dns, e);
    result_unref(e->res);
    free(e);
    dns->nentries--;
}

static void cache_evict(struct dns *dns)
{
    while (dns->nentries > dns->opts.cache_size && dns->lru_last) {
        cache_remove(dns, dns->lru_last);
        dns->st.evicted++;
    }
}

/* dns_key - name as a cache key: lower case, no trailing dot. Its length, or -1 if it is not
 * a name we may ask for (1..253 bytes, labels 1..63). */
static int dns_key(const char *name, char key[256])
{
    size_t len = strlen(name), label = 0;
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        key[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
        } else if (++label > 63) {
            return -1;
        }
    }
    if (label == 0)
        return -1; /* "a..": an empty last label */
    key[len] = 0;
    return (int)len;
}

int dns_name_ok(const char *name)
{
    char key[256];
    return dns_key(name, key) >= 0;
}

/* --- servers: one c-ares channel each, driven by the loop --- */

static void server_reschedule(struct server *srv)
{
    struct timeval tv, *t = ares_timeout(srv->ch, NULL, &tv);
    if (t)
        evtimer_add(srv->timer, t);
    else
        evtimer_del(srv->timer);
}

static void server_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    ares_process_fd(srv->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    server_reschedule(srv);
}

static void server_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    ares_process_fd(srv->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    server_reschedule(srv);
}

/* server_sock_state - c-ares opened, changed or closed a socket: watch it accordingly. */
static void server_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct server *srv = data;
    size_t i;
    for (i = 0; i < srv->nsocks && srv->socks[i].fd != fd; i++)
        ;
    if (!readable && !writable) {
        if (i < srv->nsocks) {
            event_free(srv->socks[i].ev);
            srv->socks[i] = srv->socks[--srv->nsocks];
        }
        return;
    }
    short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    if (i == srv->nsocks) {
        srv->socks = realloc(srv->socks, (srv->nsocks + 1) * sizeof(*srv->socks));
        if (!srv->socks)
            abort();
        srv->socks[i].fd = fd;
        srv->socks[i].ev = NULL;
        srv->nsocks++;
    } else if (event_get_events(srv->socks[i].ev) == what) {
        return;
    }
    if (srv->socks[i].ev)
        event_free(srv->socks[i].ev);
    srv->socks[i].ev = event_new(srv->set->dns->base, fd, what, server_io_cb, srv);
    if (!srv->socks[i].ev || event_add(srv->socks[i].ev, NULL) != 0)
        abort();
}

static void server_alive(struct server *srv)
{
    srv->answered = dns_now();
    srv->streak = 0;
    srv->down_until = 0;
    srv->down_for = 0;
}

/* server_silent - srv timed out (or refused us, at_once): set it aside for a while. */
static void server_silent(struct server *srv, long long now, int at_once)
{
    srv->streak++;
    if ((srv->streak >= 2 || at_once) && now >= srv->down_until) {
        srv->down_for = srv->down_for ? srv->down_for * 2 : DNS_DOWN_MIN_MS;
        if (srv->down_for > DNS_DOWN_MAX_MS)
            srv->down_for = DNS_DOWN_MAX_MS;
        srv->down_until = now + srv->down_for;
    }
}

static void set_destroy(struct dns_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        struct server *srv = &set->srv[i];
        if (srv->ch)
            ares_destroy(srv->ch); /* closes its sockets through server_sock_state */
        for (size_t k = 0; k < srv->nsocks; k++)
            event_free(srv->socks[k].ev);
        free(srv->socks);
        if (srv->timer)
            event_free(srv->timer);
    }
    free(set);
}

/* dns_servers_csv - our list ("a, b c") as c-ares wants it ("a,b,c"). 0, or -1 if too long. */
static int dns_servers_csv(const char *servers, char *csv, size_t csvlen)
{
    size_t n = 0;
    for (const char *p = servers; *p; p++) {
        if (n + 2 >= csvlen)
            return -1;
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
    return 0;
}

/* set_new - a channel per server of servers (empty: /etc/resolv.conf's). NULL with err. */
static struct dns_set *set_new(struct dns *dns, const char *servers, long timeout_ms, int tries,
                               char *err, size_t errlen)
{
    ares_channel probe;
    struct ares_addr_port_node *nodes = NULL;
    char csv[2048];
    int rc;

    if (dns_servers_csv(servers, csv, sizeof(csv)) != 0) {
        snprintf(err, errlen, "dns_servers: list too long");
        return NULL;
    }
    /* The probe reads resolv.conf, or parses our list: c-ares knows the syntax. */
    if ((rc = ares_init(&probe)) != ARES_SUCCESS) {
        snprintf(err, errlen, "DNS: %s", ares_strerror(rc));
        return NULL;
    }
    if (*csv && (rc = ares_set_servers_ports_csv(probe, csv)) != ARES_SUCCESS) {
        snprintf(err, errlen, "dns_servers: '%s': %s", servers, ares_strerror(rc));
        ares_destroy(probe);
        return NULL;
    }
    rc = ares_get_servers_ports(probe, &nodes);
    ares_destroy(probe);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "DNS: %s", ares_strerror(rc));
        return NULL;
    }
    size_t n = 0;
    for (struct ares_addr_port_node *p = nodes; p; p = p->next)
        n++;
    if (n == 0 || n > DNS_MAX_SERVERS) {
        snprintf(err, errlen, "dns_servers: %zu servers (1 to %d)", n, DNS_MAX_SERVERS);
        ares_free_data(nodes);
        return NULL;
    }
    struct dns_set *set = dns_alloc(sizeof(*set));
    set->dns = dns;
    set->refs = 1;
    set->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    set->tries = tries > 0 ? tries : 1;
    for (struct ares_addr_port_node *p = nodes; p; p = p->next) {
        struct server *srv = &set->srv[set->n++];
        struct ares_addr_port_node one = *p;
        struct ares_options ao;
        char a[INET6_ADDRSTRLEN];
        int port = p->udp_port ? p->udp_port : 53;

        srv->set = set;
        one.next = NULL;
        inet_ntop(p->family, &p->addr, a, sizeof(a));
        if (port == 53)
            snprintf(srv->label, sizeof(srv->label), "%s", a);
        else
            snprintf(srv->label, sizeof(srv->label), p->family == AF_INET6 ? "[%s]:%d" : "%s:%d", a,
                     port);
        memset(&ao, 0, sizeof(ao));
        ao.sock_state_cb = server_sock_state;
        ao.sock_state_cb_data = srv;
        ao.timeout = (int)set->timeout_ms;
        ao.tries = 1; /* our rounds, not c-ares', which double the timeout each time */
        /* NOCHECKRESP: SERVFAIL and REFUSED come to us (we try the next server ourselves). */
        ao.flags = ARES_FLAG_EDNS | ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH;
        ao.ednspsz = DNS_EDNS_SIZE;
        ao.socket_receive_buffer_size = DNS_RCVBUF;
        int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
                   ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_RCVBUF;
        srv->timer = evtimer_new(dns->base, server_timer_cb, srv);
        if (!srv->timer)
            abort();
        if ((rc = ares_init_options(&srv->ch, &ao, mask)) != ARES_SUCCESS ||
            (rc = ares_set_servers_ports(srv->ch, &one)) != ARES_SUCCESS) {
            snprintf(err, errlen, "DNS: server %s: %s", srv->label, ares_strerror(rc));
            ares_free_data(nodes);
            set_destroy(set);
            return NULL;
        }
    }
    ares_free_data(nodes);
    return set;
}

static void dns_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    (void)fd;
    (void)what;
    for (struct dns_set *s = dns->sets, *next; s; s = next) {
        next = s->next;
        if (s->refs == 0) {
            if (s->prev)
                s->prev->next = s->next;
            else
                dns->sets = s->next;
            if (s->next)
                s->next->prev = s->prev;
            set_destroy(s);
        }
    }
}

/* set_unref - a set nobody uses is destroyed at the next turn, never inside c-ares. */
static void set_unref(struct dns_set *set)
{
    if (--set->refs == 0)
        event_active(set->dns->reap, EV_TIMEOUT, 0);
}

/* --- flights: one query through the servers --- */

static void flight_next(struct flight *f);

/*
 * flight_queue - send f's next try at the next turn of the loop. Sends go out in batches with
 * the loop turning in between, so a burst of thousands of lookups (or of retries after a mass
 * timeout) never has more answers coming back at once than a socket buffer holds.
 */
static void flight_queue(struct flight *f)
{
    struct dns *dns = f->set->dns;
    f->qnext = NULL;
    if (dns->sendq_last)
        dns->sendq_last->qnext = f;
    else
        dns->sendq = f;
    dns->sendq_last = f;
    if (!evtimer_pending(dns->sender, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(dns->sender, &zero);
    }
}

static void dns_sender_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    (void)fd;
    (void)what;
    for (int n = 0; n < DNS_SEND_BATCH && dns->sendq; n++) {
        struct flight *f = dns->sendq;
        dns->sendq = f->qnext;
        if (!dns->sendq)
            dns->sendq_last = NULL;
        flight_next(f);
    }
    if (dns->sendq) {
        struct timeval zero = {0, 0};
        evtimer_add(dns->sender, &zero);
    }
}

/* flight_finish - the entry's answer is r (reference taken over): cache it, wake waiters. */
static void flight_finish(struct flight *f, struct result *r)
{
    struct entry *e = f->entry;
    struct dns *dns = f->set->dns;

    e->flight = NULL;
    dns->ninflight--;
    set_unref(f->set);
    if (f->qbuf)
        ares_free_string(f->qbuf);
    free(f->raw);
    free(f);

    if (r->pub.status == DNS_NXDOMAIN)
        dns->st.nxdomain++;
    else if (r->pub.status == DNS_NODATA)
        dns->st.nodata++;
    else if (r->pub.status == DNS_BADRESP)
        dns->st.other_errors++;
    e->res = r;
    e->expires = dns_now() + r->pub.ttl_ms;
    lru_push(dns, e);
    dns->nentries++;
    while (e->waiters.first) {
        struct dns_query *q = e->waiters.first;
        qlist_remove(&e->waiters, q);
        dns_make_ready(dns, q, r);
    }
    cache_evict(dns);
}

static long dns_clamp(const struct dns *dns, long ttl_s)
{
    long long ms = ttl_s < 0 ? dns->opts.ttl_min_ms : (long long)ttl_s * 1000;
    if (ms < dns->opts.ttl_min_ms)
        ms = dns->opts.ttl_min_ms;
    if (ms > dns->opts.ttl_max_ms)
        ms = dns->opts.ttl_max_ms;
    return (long)ms;
}

/* flight_fail - every try failed: a temporary failure saying what each server did. */
static void flight_fail(struct flight *f)
{
    struct dns_set *set = f->set;
    struct dns *dns = set->dns;
    char detail[512];
    size_t n = 0;
    int servfail = 0, timeouts = 0;

    detail[0] = 0;
    for (size_t i = 0; i < set->n && n < sizeof(detail); i++) {
        const char *label = set->srv[i].label, *sep = n ? "; " : "";
        size_t room = sizeof(detail) - n;
        if (f->out[i].rcode) {
            servfail |= f->out[i].rcode == RC_SERVFAIL;
            n += (size_t)snprintf(detail + n, room, "%s%s from %s", sep,
                                  dns_rcode_name[f->out[i].rcode], label);
        } else if (f->out[i].timeouts) {
            timeouts = 1;
            n += (size_t)snprintf(detail + n, room, "%stimeout after %d tr%s of %ld ms (%s)", sep,
                                  f->out[i].timeouts, f->out[i].timeouts == 1 ? "y" : "ies",
                                  set->timeout_ms, label);
        } else if (f->out[i].refused) {
            n += (size_t)snprintf(detail + n, room, "%sconnection refused by %s", sep, label);
        } else if (f->out[i].error) {
            n += (size_t)snprintf(detail + n, room, "%s%s: %s", sep, label,
                                  ares_strerror(f->out[i].error));
        }
    }
    if (!detail[0])
        snprintf(detail, sizeof(detail), "no DNS server could be asked");
    if (servfail)
        dns->st.servfail++;
    else if (timeouts)
        dns->st.timeouts++;
    else
        dns->st.other_errors++;
    struct entry *e = f->entry;
    struct result *r = result_make(e->type, e->name, DNS_TEMPFAIL, detail, NULL, f->raw, f->rawlen);
    r->pub.ttl_ms = dns->opts.error_ttl_ms;
    flight_finish(f, r);
}

/* flight_cb - c-ares finished one try of f against server f->cur. */
static void flight_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct flight *f = arg;
    (void)timeouts;
    if (status == ARES_EDESTRUCTION)
        return; /* dns_free: it frees the flight itself */
    struct dns *dns = f->set->dns;
    struct server *srv = &f->set->srv[f->cur];
    unsigned bit = 1u << f->cur;

    if (status == ARES_SUCCESS && abuf && alen >= 12) {
        int rcode = abuf[3] & 15;
        server_alive(srv);
        if (rcode == RC_SERVFAIL || rcode == RC_REFUSED || rcode == RC_NOTIMP) {
            /* Asking it again will not help; another server may know. */
            f->out[f->cur].rcode = (unsigned char)rcode;
            f->skip |= bit;
            free(f->raw);
            f->raw = dns_alloc((size_t)alen);
            memcpy(f->raw, abuf, (size_t)alen);
            f->rawlen = (size_t)alen;
            flight_queue(f);
            return;
        }
        struct entry *e = f->entry;
        long ttl_s;
        struct result *r = dns_parse(e->type, e->name, abuf, (size_t)alen, srv->label, &ttl_s);
        if (r->pub.status == DNS_TEMPFAIL) {
            dns->st.other_errors++; /* FORMERR, or an rcode from the future */
            r->pub.ttl_ms = dns->opts.error_ttl_ms;
        } else if (r->pub.status == DNS_BADRESP) {
            r->pub.ttl_ms = dns->opts.error_ttl_ms;
        } else {
            r->pub.ttl_ms = dns_clamp(dns, ttl_s);
        }
        flight_finish(f, r);
        return;
    }
    if (status == ARES_ETIMEOUT) {
        f->out[f->cur].timeouts++;
        /* A server that answers other questions meanwhile is alive: this name is what is dead
         * (its own servers unreachable), and must not get the resolver set aside. */
        long long now = dns_now();
        if (now - srv->answered > srv->set->timeout_ms)
            server_silent(srv, now, 0);
    } else if (status == ARES_ECONNREFUSED) {
        f->out[f->cur].refused = 1;
        f->skip |= bit;
        server_silent(srv, dns_now(), 1);
    } else {
        f->out[f->cur].error = status == ARES_SUCCESS ? ARES_EBADRESP : status;
        f->skip |= bit;
    }
    flight_queue(f);
}

/* flight_next - send the next try, or end when none is left. f may be gone on return. */
static void flight_next(struct flight *f)
{
    struct dns_set *set = f->set;
    while (f->attempt < f->nattempts) {
        int i = f->order[(size_t)f->attempt % set->n];
        f->attempt++;
        if (f->skip & (1u << i))
            continue;
        struct server *srv = &set->srv[i];
        f->cur = i;
        set->dns->st.sent++;
        if (f->sends++ > 0)
            set->dns->st.retries++;
        ares_send(srv->ch, f->qbuf, f->qlen, flight_cb, f); /* may call flight_cb at once */
        server_reschedule(srv); /* srv outlives f: sets are destroyed at the next turn */
        return;
    }
    flight_fail(f);
}

/* flight_start - send the query of entry e (its waiters are already queued). */
static void flight_start(struct dns *dns, struct entry *e)
{
    struct flight *f = dns_alloc(sizeof(*f));
    struct dns_set *set = dns->set;
    long long now = dns_now();
    size_t k = 0;

    f->entry = e;
    f->set = set;
    set->refs++;
    e->flight = f;
    dns->ninflight++;
    if (ares_create_query(e->name, CLASS_IN, e->type, 0, 1, &f->qbuf, &f->qlen, DNS_EDNS_SIZE) !=
        ARES_SUCCESS) {
        f->qbuf = NULL;
        struct result *r =
            result_make(e->type, e->name, DNS_NXDOMAIN, "not a valid domain name", NULL, NULL, 0);
        r->pub.ttl_ms = dns->opts.error_ttl_ms;
        flight_finish(f, r);
        return;
    }
    /* Live servers first, in their order; those set aside last, as a last resort. */
    for (size_t i = 0; i < set->n; i++)
        if (set->srv[i].down_until <= now)
            f->order[k++] = (unsigned char)i;
    for (size_t i = 0; i < set->n; i++)
        if (set->srv[i].down_until > now)
            f->order[k++] = (unsigned char)i;
    f->nattempts = set->tries * (int)set->n;
    flight_queue(f);
}

/* --- the interface --- */

struct dns_query *dns_lookup(struct dns *dns, enum dns_type type, const char *name, dns_callback cb,
                             void *arg)
{
    char key[256];
    struct dns_query *q = dns_alloc(sizeof(*q));
    q->dns = dns;
    q->cb = cb;
    q->arg = arg;
    dns->st.lookups++;
    if (dns_key(name, key) < 0) {
        char shown[80];
        snprintf(shown, sizeof(shown), "%.64s", name);
        struct result *r =
            result_make((int)type, shown, DNS_NXDOMAIN, "not a valid domain name", NULL, NULL, 0);
        dns_make_ready(dns, q, r);
        result_unref(r);
        return q;
    }
    unsigned h = dns_hash((int)type, key);
    struct entry *e = cache_find(dns, (int)type, key, h);
    if (e && e->flight) {
        dns->st.merged++;
        q->entry = e;
        qlist_append(&e->waiters, q);
        return q;
    }
    if (e && e->expires > dns_now()) {
        dns->st.cache_hits++;
        lru_unlink(dns, e);
        lru_push(dns, e);
        dns_make_ready(dns, q, e->res);
        return q;
    }
    if (e) {
        /* Expired: asked again; it leaves the LRU while in flight. */
        lru_unlink(dns, e);
        dns->nentries--;
        result_unref(e->res);
        e->res = NULL;
    } else {
        size_t len = strlen(key);
        e = dns_alloc(sizeof(*e) + len + 1);
        memcpy(e->name, key, len + 1);
        e->type = (int)type;
        e->hash = h;
        e->hnext = dns->buckets[h & (dns->nbuckets - 1)];
        dns->buckets[h & (dns->nbuckets - 1)] = e;
    }
    q->entry = e;
    qlist_append(&e->waiters, q);
    flight_start(dns, e); /* may finish at once (e then maybe evicted): e is not used after */
    cache_grow(dns);
    return q;
}

const struct dns_result *dns_peek(struct dns *dns, enum dns_type type, const char *name)
{
    char key[256];
    if (dns_key(name, key) < 0)
        return NULL;
    struct entry *e = cache_find(dns, (int)type, key, dns_hash((int)type, key));
    if (!e || e->flight || !e->res || e->expires <= dns_now())
        return NULL;
    dns->st.lookups++;
    dns->st.cache_hits++;
    lru_unlink(dns, e);
    lru_push(dns, e);
    return dns_result_ref(&e->res->pub);
}

void dns_cancel(struct dns_query *q)
{
    if (!q)
        return;
    q->dns->st.cancelled++;
    if (q->entry) {
        qlist_remove(&q->entry->waiters, q); /* the flight goes on and fills the cache */
    } else {
        qlist_remove(&q->dns->ready, q);
        result_unref(q->res);
    }
    free(q);
}

/* dns_flush - forget every answered entry (those in flight stay). */
static void dns_flush(struct dns *dns)
{
    while (dns->lru_last)
        cache_remove(dns, dns->lru_last);
}

int dns_reconfigure(struct dns *dns, const struct dns_options *opts, char *err, size_t errlen)
{
    const char *servers = opts->servers ? opts->servers : "";
    struct dns_set *set = set_new(dns, servers, opts->timeout_ms, opts->tries, err, errlen);
    if (!set)
        return -1;
    int changed = strcmp(servers, dns->servers) != 0;
    char *copy = strdup(servers);
    if (!copy)
        abort();
    free(dns->servers);
    dns->servers = copy;
    dns->opts = *opts;
    dns->opts.servers = dns->servers;
    /* The old set lives on while flights use it; the reaper destroys it. */
    set->next = dns->sets;
    if (dns->sets)
        dns->sets->prev = set;
    dns->sets = set;
    set_unref(dns->set);
    dns->set = set;
    if (changed)
        dns_flush(dns);
    cache_evict(dns);
    return 0;
}

int dns_set_servers(struct dns *dns, const char *servers, char *err, size_t errlen)
{
    struct dns_options o = dns->opts;
    o.servers = servers;
    return dns_reconfigure(dns, &o, err, errlen);
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
    struct dns *dns = dns_alloc(sizeof(*dns));
    const char *servers = opts->servers ? opts->servers : "";
    dns->base = base;
    dns->nbuckets = 256;
    dns->buckets = dns_alloc(dns->nbuckets * sizeof(*dns->buckets));
    dns->deliver = evtimer_new(base, dns_deliver_cb, dns);
    dns->reap = event_new(base, -1, 0, dns_reap_cb, dns);
    dns->sender = evtimer_new(base, dns_sender_cb, dns);
    dns->servers = strdup(servers);
    if (!dns->deliver || !dns->reap || !dns->sender || !dns->servers)
        abort();
    dns->opts = *opts;
    dns->opts.servers = dns->servers;
    dns->set = set_new(dns, servers, opts->timeout_ms, opts->tries, err, errlen);
    if (!dns->set) {
        dns_free(dns);
        return NULL;
    }
    dns->sets = dns->set;
    return dns;
}

void dns_free(struct dns *dns)
{
    if (!dns)
        return;
    /* Channels first: their pending queries end with ARES_EDESTRUCTION, which we ignore. */
    while (dns->sets) {
        struct dns_set *s = dns->sets;
        dns->sets = s->next;
        set_destroy(s);
    }
    while (dns->ready.first) {
        struct dns_query *q = dns->ready.first;
        qlist_remove(&dns->ready, q);
        result_unref(q->res);
        free(q);
    }
    for (size_t b = 0; b < dns->nbuckets; b++) {
        for (struct entry *e = dns->buckets[b], *next; e; e = next) {
            next = e->hnext;
            while (e->waiters.first) {
                struct dns_query *q = e->waiters.first;
                qlist_remove(&e->waiters, q);
                free(q);
            }
            if (e->flight) {
                if (e->flight->qbuf)
                    ares_free_string(e->flight->qbuf);
                free(e->flight->raw);
                free(e->flight);
            }
            result_unref(e->res);
            free(e);
        }
    }
    free(dns->buckets);
    event_free(dns->deliver);
    event_free(dns->reap);
    event_free(dns->sender);
    free(dns->servers);
    free(dns);
}

void dns_get_stats(const struct dns *dns, struct dns_stats *out)
{
    long long now = dns_now();
    *out = dns->st;
    out->cached = dns->nentries;
    out->inflight = dns->ninflight;
    out->servers = dns->set->n;
    out->servers_down = 0;
    for (size_t i = 0; i < dns->set->n; i++)
        out->servers_down += dns->set->srv[i].down_until > now;
}

char *dns_stats_format(const struct dns *dns, char *out, size_t outlen)
{
    struct dns_stats s;
    dns_get_stats(dns, &s);
    snprintf(out, outlen,
             "lookups=%llu sent=%llu cache_hits=%llu merged=%llu timeouts=%llu servfail=%llu "
             "nxdomain=%llu nodata=%llu other_errors=%llu retries=%llu evicted=%llu "
             "cancelled=%llu cached=%zu inflight=%zu servers=%zu servers_down=%zu",
             s.lookups, s.sent, s.cache_hits, s.merged, s.timeouts, s.servfail, s.nxdomain,
             s.nodata, s.other_errors, s.retries, s.evicted, s.cancelled, s.cached, s.inflight,
             s.servers, s.servers_down);
    return out;
}

int dns_reverse_name(const char *addr, const char *zone, char *out, size_t outlen)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const char hex[] = "0123456789abcdef";
    unsigned char a[16];
    size_t n = 0;
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
    const char *suffix = zone ? zone : v4 ? "in-addr.arpa" : "ip6.arpa";
    size_t slen = strlen(suffix);
    if (outlen < (v4 ? 16 : 64) + slen + 1)
        return -1;
    if (v4) {
        /* Hand-made: this runs for every request of the rdns and dnsbl checks. */
        for (int i = 3; i >= 0; i--) {
            unsigned v = a[i];
            if (v >= 100)
                out[n++] = (char)('0' + v / 100);
            if (v >= 10)
                out[n++] = (char)('0' + v / 10 % 10);
            out[n++] = (char)('0' + v % 10);
            out[n++] = '.';
        }
    } else {
        for (int i = 15; i >= 0; i--) {
            out[n++] = hex[a[i] & 15];
            out[n++] = '.';
            out[n++] = hex[a[i] >> 4];
            out[n++] = '.';
        }
    }
    memcpy(out + n, suffix, slen + 1);
    return 0;
}

int dns_list_name(const char *addr, const char *zone, char *out, size_t outlen)
{
    return zone ? dns_reverse_name(addr, zone, out, outlen) : -1;
}
