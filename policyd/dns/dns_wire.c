/*
 * dns_wire.c - DNS answers as received, read into immutable results; and those results.
 *
 * Every length is checked against the message, never trusted: names are expanded without
 * compression into a bounded buffer (loops and forward jumps bounded too), records are walked
 * once, the CNAME chain is followed from the question's name whatever the records' order, and
 * records of another name or class are ignored (RFC 5452). The records kept are gathered in a
 * scratch builder and frozen with the name, the detail and the raw answer into one allocation,
 * reference-counted: whoever holds a reference owns it, the last unref frees it. No state, no
 * I/O: the engine (dns.c) feeds it, and so does the fuzz target (test/fuzz/fuzz_dns.c).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/dns/dns_wire.h"

#include "policyd/lib/xalloc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_CNAME_HOPS 16

enum { RR_A = 1, RR_NS = 2, RR_CNAME = 5, RR_SOA = 6, RR_PTR = 12, RR_MX = 15, RR_TXT = 16 };
enum { RR_AAAA = 28 };
static const char *const wire_rcode_names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                               "NXDOMAIN", "NOTIMP",  "REFUSED"};

struct result {
    struct dns_result pub; /* first: the public view; the arrays and bytes follow */
    int refs;
};

const char *dns_wire_type_name(int type)
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
        b->data = xrealloc(b->data, b->cap);
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
    b->recs = xgrow(b->recs, &b->ncap, b->n + 1, sizeof(*b->recs));
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
    unsigned char *mem = xcalloc(1, total);
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

const struct dns_result *dns_wire_ref(const struct dns_result *pub)
{
    struct result *r = (struct result *)(void *)pub;
    r->refs++;
    return pub;
}

void dns_wire_unref(const struct dns_result *pub)
{
    struct result *r = (struct result *)(void *)pub;
    if (r && --r->refs == 0)
        free(r);
}

struct dns_result *dns_wire_result(int type, const char *name, enum dns_status status,
                                   const char *detail, const unsigned char *raw, size_t rawlen)
{
    return &result_make(type, name, status, detail, NULL, raw, rawlen)->pub;
}

int dns_wire_rcode(const unsigned char *m, size_t len)
{
    return len < DNS_WIRE_HEADER ? -1 : m[3] & 15;
}

const char *dns_wire_rcode_name(int rcode)
{
    return rcode >= 0 && rcode <= DNS_WIRE_REFUSED ? wire_rcode_names[rcode] : NULL;
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

struct dns_result *dns_wire_parse(int type, const char *name, const unsigned char *m, size_t len,
                                  const char *server, long *ttl_s)
{
    struct builder b = {0};
    struct rr *rrs = NULL;
    unsigned char cur[255];
    size_t curlen, off = DNS_WIRE_HEADER;
    char detail[160];
    enum dns_status status = DNS_OK;
    long ttl = -1, neg = -1;
    const char *broken = NULL;

    *ttl_s = -1;
    if (len < DNS_WIRE_HEADER) {
        snprintf(detail, sizeof(detail), "bad answer from %s: %zu bytes", server, len);
        return &result_make(type, name, DNS_BADRESP, detail, NULL, m, len)->pub;
    }
    unsigned rcode = m[3] & 15, qd = dns_get16(m + 4), an = dns_get16(m + 6), ns = dns_get16(m + 8);
    if (rcode != DNS_WIRE_NOERROR && rcode != DNS_WIRE_NXDOMAIN) {
        if (rcode <= DNS_WIRE_REFUSED)
            snprintf(detail, sizeof(detail), "%s from %s", wire_rcode_names[rcode], server);
        else
            snprintf(detail, sizeof(detail), "rcode %u from %s", rcode, server);
        return &result_make(type, name, DNS_TEMPFAIL, detail, NULL, m, len)->pub;
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
    rrs = xcalloc(an < room ? an : room, sizeof(*rrs));
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
        if (rr.type == RR_SOA && rr.cls == DNS_WIRE_CLASS_IN) {
            unsigned char w[255];
            size_t wl, p = rr.rd;
            if (msg_name(m, len, &p, w, &wl, 0) == 0 && msg_name(m, len, &p, w, &wl, 0) == 0 &&
                p + 20 <= rr.rd + rr.rdlen) {
                neg = dns_min_ttl(rr.ttl, dns_get_ttl(m + p + 16));
                break;
            }
        }
    }
    /* Follow the CNAME chain from the question's name, whatever the order of the records. A
     * chain that is still going after DNS_CNAME_HOPS is a loop (or as good as one): a broken
     * answer, so a temporary failure, never "no such record" (NODATA would read as the name's
     * owner's choice and could earn a permanent answer). */
    for (int hop = 0; type != RR_CNAME; hop++) {
        size_t i;
        for (i = 0; i < nrr; i++)
            if (rrs[i].type == RR_CNAME && rrs[i].cls == DNS_WIRE_CLASS_IN &&
                msg_owner_is(m, len, &rrs[i], cur, curlen))
                break;
        if (i == nrr)
            break;
        if (hop == DNS_CNAME_HOPS) {
            broken = "CNAME loop (or a chain of more than 16)";
            goto bad;
        }
        size_t p = rrs[i].rd;
        if (msg_name(m, len, &p, cur, &curlen, 1) != 0 || p > rrs[i].rd + rrs[i].rdlen) {
            broken = "bad CNAME record";
            goto bad;
        }
        ttl = dns_min_ttl(ttl, rrs[i].ttl);
    }
    /* Records of another name or class are no answer (RFC 5452: do not trust them). */
    for (size_t i = 0; rcode == DNS_WIRE_NOERROR && i < nrr; i++) {
        if (rrs[i].type != (unsigned)type || rrs[i].cls != DNS_WIRE_CLASS_IN ||
            !msg_owner_is(m, len, &rrs[i], cur, curlen))
            continue;
        if (msg_record(m, len, &rrs[i], &b) != 0) {
            snprintf(detail, sizeof(detail), "bad %s record", dns_wire_type_name(type));
            broken = detail;
            goto bad;
        }
        ttl = dns_min_ttl(ttl, rrs[i].ttl);
    }
    if (rcode == DNS_WIRE_NXDOMAIN) {
        status = DNS_NXDOMAIN;
        snprintf(detail, sizeof(detail), "NXDOMAIN");
        ttl = dns_min_ttl(ttl, neg);
    } else if (b.n == 0) {
        status = DNS_NODATA;
        snprintf(detail, sizeof(detail), "NODATA (the name exists, without %s records)",
                 dns_wire_type_name(type));
        ttl = dns_min_ttl(ttl, neg);
    } else {
        snprintf(detail, sizeof(detail), "%zu %s record%s", b.n, dns_wire_type_name(type),
                 b.n == 1 ? "" : "s");
    }
    *ttl_s = ttl;
    struct result *r = result_make(type, name, status, detail, &b, m, len);
    free(rrs);
    builder_free(&b);
    return &r->pub;
bad:;
    char why[200];
    snprintf(why, sizeof(why), "bad answer from %s: %s", server, broken);
    free(rrs);
    builder_free(&b);
    return &result_make(type, name, DNS_BADRESP, why, NULL, m, len)->pub;
}
