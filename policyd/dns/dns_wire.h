/*
 * dns_wire.h - the DNS engine's reader of answers as received, and the results it makes
 * (private to policyd/dns/; test/fuzz/fuzz_dns.c drives dns_wire_parse directly).
 *
 * A result is immutable once made, one allocation, reference-counted: each function that
 * makes one returns one reference; the last dns_wire_unref frees it. The only field a maker
 * may still set before handing a result on is ttl_ms. Nothing here blocks or keeps state.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_DNS_WIRE_H
#define POLICYD_DNS_WIRE_H

#include "policyd/dns/dns.h"

#include <stddef.h>

#define DNS_WIRE_HEADER 12 /* bytes of the message header */
#define DNS_WIRE_CLASS_IN 1

enum dns_wire_rcode {
    DNS_WIRE_NOERROR,
    DNS_WIRE_FORMERR,
    DNS_WIRE_SERVFAIL,
    DNS_WIRE_NXDOMAIN,
    DNS_WIRE_NOTIMP,
    DNS_WIRE_REFUSED
};

/*
 * dns_wire_parse - the result of the answer m (len bytes, not trusted) to (type, name), from
 * server (a label for details: "127.0.0.1:5353"). Always a result, one reference: a broken
 * answer gives DNS_BADRESP, rcodes other than NOERROR and NXDOMAIN DNS_TEMPFAIL. ttl_ms is
 * left 0; *ttl_s gets the smallest TTL of the records used (the CNAME chain and the answers),
 * for negative answers also min(SOA TTL, SOA MINIMUM) of the authority section (RFC 2308),
 * or -1 if the answer gives none.
 */
struct dns_result *dns_wire_parse(int type, const char *name, const unsigned char *m, size_t len,
                                  const char *server, long *ttl_s);

/* dns_wire_result - a result without records (a failure: timeout, bad name...), with the
 * last answer raw (NULL, 0: none). One reference. */
struct dns_result *dns_wire_result(int type, const char *name, enum dns_status status,
                                   const char *detail, const unsigned char *raw, size_t rawlen);

/* dns_wire_ref - one more reference to r; returns r. dns_wire_unref - drop one; NULL ok. */
const struct dns_result *dns_wire_ref(const struct dns_result *r);
void dns_wire_unref(const struct dns_result *r);

/* dns_wire_rcode - the response code in the header of m, or -1 if m is shorter than one. */
int dns_wire_rcode(const unsigned char *m, size_t len);

/* dns_wire_rcode_name - "SERVFAIL", "REFUSED", ... for rcodes 0 to 5, else NULL. */
const char *dns_wire_rcode_name(int rcode);

/* dns_wire_type_name - "A", "AAAA", "PTR", "MX", "TXT", ... or "TYPE65280" (a thread's own
 * buffer, overwritten by its next call). */
const char *dns_wire_type_name(int type);

#endif
