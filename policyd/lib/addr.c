/*
 * addr.c - parse and match IP addresses and CIDR networks (see addr.h).
 *
 * Pure functions over fixed 16-byte buffers: no allocation, nothing to free. The one
 * shared piece of the network lists (maps/netlist.c), the cidr: table (maps/table.c), the
 * checks and the doctor, as Postfix's util/cidr_match.c serves dict_cidr and match lists.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/addr.h"

#include "policyd/lib/units.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char addr_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int addr_parse(const char *text, int *family, unsigned char out[16])
{
    unsigned char a6[16];

    if (inet_pton(AF_INET, text, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, a6) != 1)
        return -1;
    if (memcmp(a6, addr_mapped, 12) == 0) {
        memcpy(out, a6 + 12, 4);
        *family = AF_INET;
    } else {
        memcpy(out, a6, 16);
        *family = AF_INET6;
    }
    return 0;
}

/* addr_prefix_match - 1 if the first bits of a and b agree. */
static int addr_prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

void addr_mask(unsigned char addr[16], unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        if (bits >= 8 * (i + 1))
            continue;
        if (bits <= 8 * i)
            addr[i] = 0;
        else
            addr[i] &= (unsigned char)(0xff << (8 - (bits - 8 * i)));
    }
}

int addr_network(const char *text, unsigned v4bits, unsigned v6bits, char *buf, size_t len)
{
    int family;
    unsigned char bin[16];
    if (addr_parse(text, &family, bin) != 0)
        return -1;
    unsigned bits = family == AF_INET ? v4bits : v6bits;
    addr_mask(bin, bits);
    /* Written out by hand for IPv4 (every rate-limit and greylist decision on a client network
     * formats one, and glibc's inet_ntop goes through sprintf); inet_ntop for IPv6. */
    char a[INET6_ADDRSTRLEN + 4], *p = a;
    if (family == AF_INET) {
        for (int i = 0; i < 4; i++) {
            p = units_put_uint(p, bin[i]);
            *p++ = i < 3 ? '.' : '/';
        }
    } else {
        inet_ntop(family, bin, a, INET6_ADDRSTRLEN);
        p = a + strlen(a);
        *p++ = '/';
    }
    p = units_put_uint(p, bits);
    size_t n = (size_t)(p - a);
    if (len == 0)
        return 0;
    if (n >= len)
        n = len - 1;
    memcpy(buf, a, n);
    buf[n] = 0;
    return 0;
}

int cidr_match(const struct cidr *c, int family, const unsigned char addr[16])
{
    return c->family == family && addr_prefix_match(addr, c->addr, c->prefix);
}

int cidr_parse(const char *text, struct cidr *out, char *err, size_t errlen)
{
    char buf[256];
    const char *slash = NULL;
    size_t alen;

    memset(out, 0, sizeof(*out));
    if (*text == '[') {
        const char *close = strchr(text, ']');
        if (!close) {
            snprintf(err, errlen, "missing ']'");
            return -2;
        }
        alen = (size_t)(close - text - 1);
        if (alen >= sizeof(buf))
            return -1;
        memcpy(buf, text + 1, alen);
        buf[alen] = 0;
        if (close[1] == '/')
            slash = close + 1;
        else if (close[1] != 0)
            return -1;
    } else {
        slash = strchr(text, '/');
        alen = slash ? (size_t)(slash - text) : strlen(text);
        if (alen >= sizeof(buf))
            return -1;
        memcpy(buf, text, alen);
        buf[alen] = 0;
    }
    if (strchr(buf, ':')) {
        if (inet_pton(AF_INET6, buf, out->addr) != 1)
            return -1;
        out->family = AF_INET6;
    } else if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
    } else {
        return -1;
    }
    unsigned maxbits = out->family == AF_INET ? 32 : 128;
    out->prefix = maxbits;
    if (slash) {
        char *end;
        errno = 0;
        long bits = strtol(slash + 1, &end, 10);
        if (slash[1] == 0 || *end || errno || bits < 0 || bits > (long)maxbits) {
            snprintf(err, errlen, "bad prefix length (0..%u)", maxbits);
            return -2;
        }
        out->prefix = (unsigned)bits;
        unsigned char masked[16];
        memcpy(masked, out->addr, 16);
        for (unsigned b = out->prefix; b < maxbits; b++)
            masked[b / 8] &= (unsigned char)~(0x80 >> (b % 8));
        if (memcmp(masked, out->addr, maxbits / 8) != 0) {
            char fix[INET6_ADDRSTRLEN];
            inet_ntop(out->family, masked, fix, sizeof(fix));
            snprintf(err, errlen, "has host bits set: use %s%s%s/%u",
                     out->family == AF_INET6 ? "[" : "", fix, out->family == AF_INET6 ? "]" : "",
                     out->prefix);
            return -2;
        }
    }
    /* ::ffff:a.b.c.d/96+ is an IPv4 network. */
    if (out->family == AF_INET6 && out->prefix >= 96 && memcmp(out->addr, addr_mapped, 12) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
        out->prefix -= 96;
    }
    return 0;
}

const char *addr_private_kind(const char *addr)
{
    /* The networks as bytes, so a refusal's diagnosis parses one address, not eleven. */
    static const struct {
        int family;
        unsigned char net[16];
        unsigned bits;
        const char *kind;
    } ranges[] = {
        {AF_INET, {172, 17}, 16, "Docker bridge gateway (172.17.0.0/16)"},
        {AF_INET, {10}, 8, "RFC 1918 private (10.0.0.0/8)"},
        {AF_INET, {172, 16}, 12, "RFC 1918 private (172.16.0.0/12)"},
        {AF_INET, {192, 168}, 16, "RFC 1918 private (192.168.0.0/16)"},
        {AF_INET, {100, 64}, 10, "carrier-grade NAT (100.64.0.0/10)"},
        {AF_INET, {127}, 8, "loopback (127.0.0.0/8)"},
        {AF_INET, {169, 254}, 16, "link-local (169.254.0.0/16)"},
        {AF_INET6, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback (::1)"},
        {AF_INET6, {0xfc}, 7, "IPv6 unique-local (fc00::/7)"},
        {AF_INET6, {0xfe, 0x80}, 10, "IPv6 link-local (fe80::/10)"},
    };
    int family;
    unsigned char a[16];

    if (addr_parse(addr, &family, a) != 0)
        return NULL;
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        if (ranges[i].family == family && addr_prefix_match(a, ranges[i].net, ranges[i].bits))
            return ranges[i].kind;
    }
    return NULL;
}
