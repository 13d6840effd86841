/*
 * dns.h - the one asynchronous DNS engine every check uses: c-ares driven by the libevent
 * loop, a shared cache keyed by (type, name), identical in-flight queries merged.
 *
 * Nothing here blocks. A callback never runs before dns_lookup() returns: cache hits and
 * immediate errors are delivered through a zero-delay event. A cancelled lookup's callback
 * never runs; the query itself goes on if others wait for it, and its answer still fills the
 * cache. Results are immutable and owned by the cache: a callback may keep one with
 * dns_result_ref() beyond its return.
 */
#ifndef POLICYD_DNS_H
#define POLICYD_DNS_H

#include <stddef.h>

struct event_base;
struct dns;
struct dns_query;

enum dns_type { DNS_A = 1, DNS_PTR = 12, DNS_MX = 15, DNS_TXT = 16, DNS_AAAA = 28 };

enum dns_status {
    DNS_OK,       /* records in items[] */
    DNS_NXDOMAIN, /* the name does not exist */
    DNS_NODATA,   /* the name exists, without records of this type */
    DNS_TEMPFAIL, /* timeout, SERVFAIL, REFUSED, no server reachable: try again later */
    DNS_BADRESP   /* an answer that does not parse: treated as temporary by checks */
};

struct dns_result {
    enum dns_status status;
    int type;
    const char *name;         /* as asked, lower case, no trailing dot */
    long ttl_ms;              /* how long the cache keeps it */
    const char *detail;       /* for diagnoses: "NXDOMAIN", "SERVFAIL", "timeout after 2 tries" */
    size_t count;             /* records */
    const char **items;       /* A/AAAA: address text; PTR, MX: host names; TXT: strings joined */
    const size_t *lens;       /* byte length of each item (TXT may hold NUL bytes) */
    const int *prefs;         /* MX preference of each item, else NULL */
    const unsigned char *raw; /* the answer as received (NULL for errors without one) */
    size_t rawlen;
};

struct dns_options {
    const char *servers; /* "127.0.0.1:5353, [::1]:53" or "" for /etc/resolv.conf */
    long timeout_ms;     /* one try against one server */
    int tries;
    size_t cache_size; /* answers kept; least recently used evicted */
    long ttl_min_ms, ttl_max_ms, error_ttl_ms;
};

struct dns_stats {
    unsigned long long lookups, sent, cache_hits, merged, timeouts, servfail, nxdomain, nodata,
        other_errors, evicted;
    size_t cached;
};

typedef void (*dns_callback)(const struct dns_result *result, void *arg);

/* dns_new - an engine on base. NULL with a reason in err (bad server list, c-ares init). */
struct dns *dns_new(struct event_base *base, const struct dns_options *opts, char *err,
                    size_t errlen);

/* dns_free - cancel everything (no callback runs) and free. NULL ok. */
void dns_free(struct dns *dns);

/* dns_set_servers - change the server list on reload (queries in flight are not disturbed).
 * 0 / -1 with a reason. */
int dns_set_servers(struct dns *dns, const char *servers, char *err, size_t errlen);

/*
 * dns_lookup - look name up (type A, AAAA, PTR, MX or TXT). cb runs exactly once, later, from
 * the event loop, unless dns_cancel() comes first. Never NULL. A name longer than 253 bytes or
 * with empty labels gets DNS_NXDOMAIN without a query.
 */
struct dns_query *dns_lookup(struct dns *dns, enum dns_type type, const char *name, dns_callback cb,
                             void *arg);

/*
 * dns_peek - a fresh cached answer for (type, name), referenced (dns_result_unref it), or NULL
 * when there is none yet. No callback, no query: lets a check decide at once when everything
 * it needs is cached, without breaking the rule that callbacks never run inside a call.
 */
const struct dns_result *dns_peek(struct dns *dns, enum dns_type type, const char *name);

/* dns_cancel - the callback will not run; the handle is freed. NULL ok. Not from inside the
 * callback of the same query (the handle is gone by then). */
void dns_cancel(struct dns_query *q);

/* dns_result_ref / dns_result_unref - keep a result past its callback. */
const struct dns_result *dns_result_ref(const struct dns_result *r);
void dns_result_unref(const struct dns_result *r);

/* dns_get_stats - the counters. */
void dns_get_stats(const struct dns *dns, struct dns_stats *out);

/* dns_reverse_name - "7.113.0.203.in-addr.arpa" / nibble ".ip6.arpa" name of an address
 * (IPv4-mapped IPv6 as IPv4), with zone appended instead of the arpa suffix when zone is not
 * NULL (DNSBL queries: "7.113.0.203.zen.example"). 0, or -1 if addr is not an address. */
int dns_reverse_name(const char *addr, const char *zone, char *out, size_t outlen);

/* dns_type_name - "A", "AAAA", "PTR", "MX", "TXT". */
const char *dns_type_name(int type);

#endif
