/*
 * dns.h - the one asynchronous DNS engine every check uses: c-ares driven by the libevent
 * loop, a shared cache keyed by (type, name), identical in-flight queries merged.
 *
 * Nothing here blocks. A callback never runs before dns_lookup() returns: cache hits and
 * immediate errors are delivered through a zero-delay event. A cancelled lookup's callback
 * never runs; the query itself goes on if others wait for it, and its answer still fills the
 * cache. Results are immutable and owned by the cache: a callback may keep one with
 * dns_result_ref() beyond its return. Each server has its own c-ares channel, so a dead or
 * slow server is set aside for a while instead of delaying every query.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_DNS_H
#define POLICYD_DNS_H

#include <stddef.h>

struct event_base;
struct dns;
struct dns_query;

/* Record types with decoded items; any other type number may be passed as (enum dns_type)n:
 * its items are then the RDATA of each record as received. */
enum dns_type {
    DNS_A = 1,
    DNS_NS = 2,
    DNS_CNAME = 5,
    DNS_PTR = 12,
    DNS_MX = 15,
    DNS_TXT = 16,
    DNS_AAAA = 28,
    DNS_TYPE_MAX = 65535
};

enum dns_status {
    DNS_OK,       /* records in items[] */
    DNS_NXDOMAIN, /* the name does not exist (also: not a valid domain name) */
    DNS_NODATA,   /* the name exists, without records of this type */
    DNS_TEMPFAIL, /* timeout, SERVFAIL, REFUSED, no server reachable: try again later */
    DNS_BADRESP   /* an answer that does not parse: treat as temporary */
};

struct dns_result {
    enum dns_status status;
    int type;
    const char *name;           /* as asked, lower case, no trailing dot */
    long ttl_ms;                /* how long the cache keeps it: the TTL clamped, or dns_error_ttl */
    const char *detail;         /* for diagnoses: "NXDOMAIN", "SERVFAIL from 127.0.0.1:5353",
                                 * "timeout after 2 tries of 1000 ms (127.0.0.1:5353)" */
    size_t count;               /* records */
    const char **items;         /* A/AAAA: address text; PTR, MX, NS, CNAME: host name (no trailing
                                 * dot); TXT: the strings of one record joined; other types: RDATA.
                                 * Each is NUL-terminated (TXT and RDATA may also hold NUL bytes). */
    const size_t *lens;         /* byte length of each item */
    const int *prefs;           /* MX preference of each item, else NULL */
    const unsigned char *addrs; /* A: 4 bytes per item, AAAA: 16, in order; else NULL */
    const unsigned char *raw;   /* the last answer as received (NULL if none: timeouts...) */
    size_t rawlen;
};

struct dns_options {
    const char *servers; /* "127.0.0.1:5353, [::1]:53, 127.0.0.1"; NULL or "": resolv.conf */
    long timeout_ms;     /* one try of one query against one server */
    int tries;           /* rounds over the servers: a query ends within tries * servers *
                          * timeout_ms (a truncated answer's TCP retry restarts its try) */
    size_t cache_size;   /* answers kept (0: none); least recently used evicted */
    long ttl_min_ms, ttl_max_ms; /* answer and negative TTLs clamped to this range */
    long error_ttl_ms;           /* how long a temporary failure or bad answer is kept */
};

struct dns_stats {
    unsigned long long lookups, sent, cache_hits, merged, timeouts, servfail, nxdomain, nodata,
        other_errors, evicted, retries, cancelled;
    size_t cached, inflight, servers, servers_down;
};

/* One server of the current list, as the metrics show it. Counters are per try: a query
 * that times out twice on a server counts two queries and two timeouts there. They survive a
 * reload for a server still listed. */
struct dns_server_stats {
    char server[64]; /* "127.0.0.1", "127.0.0.1:5353", "[::1]:5353" */
    unsigned long long queries, timeouts, servfails, refused;
    int set_aside; /* 1 while it is tried last after timing out */
};

typedef void (*dns_callback)(const struct dns_result *result, void *arg);

/* dns_new - an engine on base (opts copied). NULL with a reason in err (bad server list,
 * c-ares trouble). */
struct dns *dns_new(struct event_base *base, const struct dns_options *opts, char *err,
                    size_t errlen);

/* dns_free - drop everything: no callback runs, every dns_query handle becomes invalid.
 * NULL ok. Not from inside a callback. */
void dns_free(struct dns *dns);

/*
 * dns_reconfigure - new options on reload, safe with queries in flight: they finish on the
 * servers they started with; new queries use the new servers, timeout and tries at once.
 * Cache bounds apply at once; a changed server list empties the cache. The engine (and every
 * pointer to it) stays. 0, or -1 with a reason and the engine unchanged.
 */
int dns_reconfigure(struct dns *dns, const struct dns_options *opts, char *err, size_t errlen);

/* dns_set_servers - dns_reconfigure() with only the server list changed. 0 / -1. */
int dns_set_servers(struct dns *dns, const char *servers, char *err, size_t errlen);

/*
 * dns_lookup - look name up (a type above, or any type number). cb runs exactly once, later,
 * from the event loop, unless dns_cancel() comes first; never before this returns. Never
 * NULL. A name longer than 253 bytes or with an empty or too long label gets DNS_NXDOMAIN
 * without a query.
 */
struct dns_query *dns_lookup(struct dns *dns, enum dns_type type, const char *name, dns_callback cb,
                             void *arg);

/*
 * dns_peek - a fresh cached answer for (type, name), referenced (dns_result_unref it), or NULL
 * when there is none yet. No callback, no query: lets a check decide at once when everything
 * it needs is cached, without breaking the rule that callbacks never run inside a call.
 */
const struct dns_result *dns_peek(struct dns *dns, enum dns_type type, const char *name);

/* dns_name_ok - 1 if name may be asked (1 to 253 bytes, labels of 1 to 63, one trailing dot
 * allowed), 0 if dns_lookup() would answer NXDOMAIN without a query. */
int dns_name_ok(const char *name);

/* dns_cancel - the callback will not run; the handle is freed. NULL ok. Not after the
 * callback ran (the handle is gone by then), nor from inside it. */
void dns_cancel(struct dns_query *q);

/* dns_parse_answer - what dns_lookup() makes of this answer to (type, name), for tests and
 * fuzzing: status, detail, records; ttl_ms is the answer's own TTL (-1: none), unclamped.
 * SERVFAIL, REFUSED and NOTIMP give DNS_TEMPFAIL. A reference: dns_result_unref() it. */
const struct dns_result *dns_parse_answer(int type, const char *name, const unsigned char *answer,
                                          size_t len);

/* dns_result_ref / dns_result_unref - keep a result past its callback; unref NULL ok. */
const struct dns_result *dns_result_ref(const struct dns_result *r);
void dns_result_unref(const struct dns_result *r);

/* dns_get_stats - the counters. */
void dns_get_stats(const struct dns *dns, struct dns_stats *out);

/* dns_get_server_stats - each server of the current list (at most max of them) into out;
 * returns how many servers the list has. */
size_t dns_get_server_stats(const struct dns *dns, struct dns_server_stats *out, size_t max);

/* dns_stats_format - the counters as one "key=value ..." line for the SIGUSR1 log. Returns
 * out. */
char *dns_stats_format(const struct dns *dns, char *out, size_t outlen);

/* dns_reverse_name - "7.113.0.203.in-addr.arpa" / nibble ".ip6.arpa" name of an address
 * (IPv4-mapped IPv6 as IPv4), with zone appended instead of the arpa suffix when zone is not
 * NULL. 0, or -1 if addr is not an address or out is too small. */
int dns_reverse_name(const char *addr, const char *zone, char *out, size_t outlen);

/* dns_list_name - the name to ask a DNS list zone about addr: "7.113.0.203.zen.example",
 * nibbles + zone for IPv6. 0 / -1 as dns_reverse_name(). */
int dns_list_name(const char *addr, const char *zone, char *out, size_t outlen);

/* dns_type_name - "A", "AAAA", "PTR", "MX", "TXT", ... or "TYPE65280". */
const char *dns_type_name(int type);

#endif
