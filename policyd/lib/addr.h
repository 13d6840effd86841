/*
 * addr.h - IP addresses and CIDR networks as text, parsed and matched.
 *
 * IPv4-mapped IPv6 (::ffff:192.0.2.1, and ::ffff:a.b.c.d/96+ networks) is folded to IPv4, as
 * Postfix does and as every check compares addresses. Networks are written as Postfix writes
 * them: 192.0.2.0/24, 192.0.2.1, [2001:db8::]/32, 2001:db8::/32, [::1].
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_LIB_ADDR_H
#define POLICYD_LIB_ADDR_H

#include <stddef.h>

struct cidr {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network bytes (IPv4 in the first 4) */
    unsigned prefix;        /* bits */
};

/* addr_parse - an address as text to (AF_INET or AF_INET6, bytes), IPv4-mapped folded. 0 / -1. */
int addr_parse(const char *text, int *family, unsigned char out[16]);

/*
 * cidr_parse - a network or single address as text. Returns 0; -1 when text is not an address
 * or network at all (the caller says what else it may be); -2 for a network that is wrong in a
 * way worth explaining, with the reason in err ("': bad prefix length (0..32)" is not used: err
 * holds "bad prefix length (0..32)", "missing ']'" or "has host bits set: use 10.0.0.0/8").
 */
int cidr_parse(const char *text, struct cidr *out, char *err, size_t errlen);

/* cidr_match - 1 if the address (family, bytes as from addr_parse) is inside c, else 0. */
int cidr_match(const struct cidr *c, int family, const unsigned char addr[16]);

/* addr_mask - clear every bit of addr (16 bytes, IPv4 in the first 4) after the first bits. */
void addr_mask(unsigned char addr[16], unsigned bits);

/* addr_network - the network of the address text at v4bits (IPv4) or v6bits (IPv6), as
 * "203.0.113.0/24" into buf. 0, or -1 when text is not an address. */
int addr_network(const char *text, unsigned v4bits, unsigned v6bits, char *buf, size_t len);

/* addr_private_kind - for diagnoses: "RFC 1918 private (10.0.0.0/8)", "Docker bridge gateway
 * (172.17.0.0/16)", "loopback (...)", "carrier-grade NAT (...)", ... or NULL for a public or
 * unparsable address. */
const char *addr_private_kind(const char *addr);

#endif
