/*
 * netlist.c - compile and match Postfix network lists.
 *
 * Entries are kept in configured order as (family, 16-byte address, prefix, negated) or a table;
 * matching is a linear walk, which is what Postfix does too and is cheap for the handful of
 * networks a mynetworks holds. IPv4 is stored as IPv4 (mapped entries are converted), so
 * "::ffff:192.0.2.1" from a dual-stack socket matches "192.0.2.0/24".
 */
#include "policyd/maps/netlist.h"

#include "policyd/config.h"
#include "policyd/maps/table.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct net_entry {
    char *text;  /* as written, for diagnoses */
    int negated; /* "!pattern" */
    int family;  /* AF_INET, AF_INET6, or 0 for a table */
    unsigned char addr[16];
    unsigned prefix;     /* bits */
    struct table *table; /* type:table entries */
};

struct netlist {
    char *text;
    struct net_entry *v;
    size_t n, cap;
};

int netlist_parse_address(const char *text, int *family, unsigned char out[16])
{
    unsigned char a6[16];

    if (inet_pton(AF_INET, text, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, a6) != 1)
        return -1;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a6, mapped, 12) == 0) {
        memcpy(out, a6 + 12, 4);
        *family = AF_INET;
    } else {
        memcpy(out, a6, 16);
        *family = AF_INET6;
    }
    return 0;
}

/* net_prefix_match - 1 if the first bits of a and b agree. */
static int net_prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

static void net_push(struct netlist *nl, struct net_entry *e)
{
    if (nl->n == nl->cap) {
        nl->cap = nl->cap ? nl->cap * 2 : 8;
        nl->v = realloc(nl->v, nl->cap * sizeof(*nl->v));
        if (!nl->v)
            abort();
    }
    nl->v[nl->n++] = *e;
}

static int net_add_token(struct netlist *nl, const char *name, const char *tok, int depth,
                         char *err, size_t errlen);

/* net_add_file - add the patterns in a /file entry (whitespace, commas, # comments). */
static int net_add_file(struct netlist *nl, const char *name, const char *path, int negated,
                        int depth, char *err, size_t errlen)
{
    if (negated) {
        snprintf(err, errlen, "%s: '!%s': a file cannot be negated", name, path);
        return -1;
    }
    if (depth > 4) {
        snprintf(err, errlen, "%s: %s: files nested too deeply", name, path);
        return -1;
    }
    char reason[512];
    char **v = config_list_read_file(path, reason, sizeof(reason));
    if (!v) {
        snprintf(err, errlen, "%s: %s", name, reason);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; v[i] && rc == 0; i++)
        rc = net_add_token(nl, name, v[i], depth + 1, err, errlen);
    config_list_free(v);
    return rc;
}

/* net_add_token - compile one list entry. */
static int net_add_token(struct netlist *nl, const char *name, const char *tok, int depth,
                         char *err, size_t errlen)
{
    struct net_entry e;
    const char *p = tok;
    char buf[256];

    memset(&e, 0, sizeof(e));
    if (*p == '!') {
        e.negated = 1;
        p++;
    }
    if (*p == '/')
        return net_add_file(nl, name, p, e.negated, depth, err, errlen);
    /* type:table - a name of letters followed by ':' and not an IPv6 address. */
    const char *colon = strchr(p, ':');
    if (colon && colon > p && p[0] != '[') {
        int is_type = 1;
        for (const char *q = p; q < colon; q++)
            if (!isalpha((unsigned char)*q))
                is_type = 0;
        if (is_type) {
            char terr[512];
            e.table = table_open(p, terr, sizeof(terr));
            if (!e.table) {
                snprintf(err, errlen, "%s: %s", name, terr);
                return -1;
            }
            e.text = strdup(tok);
            net_push(nl, &e);
            return 0;
        }
    }
    /* [addr]/len, addr/len, [addr], addr */
    const char *slash = NULL;
    size_t alen;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close) {
            snprintf(err, errlen, "%s: '%s': missing ']'", name, tok);
            return -1;
        }
        alen = (size_t)(close - p - 1);
        if (alen >= sizeof(buf))
            goto bad;
        memcpy(buf, p + 1, alen);
        buf[alen] = 0;
        if (close[1] == '/')
            slash = close + 1;
        else if (close[1] != 0)
            goto bad;
    } else {
        slash = strchr(p, '/');
        alen = slash ? (size_t)(slash - p) : strlen(p);
        if (alen >= sizeof(buf))
            goto bad;
        memcpy(buf, p, alen);
        buf[alen] = 0;
    }
    unsigned char raw6[16];
    int is_v6_text = strchr(buf, ':') != NULL;
    if (is_v6_text) {
        if (inet_pton(AF_INET6, buf, raw6) != 1)
            goto bad;
        memcpy(e.addr, raw6, 16);
        e.family = AF_INET6;
    } else if (inet_pton(AF_INET, buf, e.addr) == 1) {
        e.family = AF_INET;
    } else {
        goto bad;
    }
    unsigned maxbits = e.family == AF_INET ? 32 : 128;
    e.prefix = maxbits;
    if (slash) {
        char *end;
        errno = 0;
        long bits = strtol(slash + 1, &end, 10);
        if (slash[1] == 0 || *end || errno || bits < 0 || bits > (long)maxbits) {
            snprintf(err, errlen, "%s: '%s': bad prefix length (0..%u)", name, tok, maxbits);
            return -1;
        }
        e.prefix = (unsigned)bits;
        unsigned char masked[16];
        memcpy(masked, e.addr, 16);
        for (unsigned b = e.prefix; b < maxbits; b++)
            masked[b / 8] &= (unsigned char)~(0x80 >> (b % 8));
        if (memcmp(masked, e.addr, maxbits / 8) != 0) {
            char fix[INET6_ADDRSTRLEN];
            inet_ntop(e.family, masked, fix, sizeof(fix));
            snprintf(err, errlen, "%s: '%s' has host bits set: use %s%s%s/%u", name, tok,
                     e.family == AF_INET6 ? "[" : "", fix, e.family == AF_INET6 ? "]" : "",
                     e.prefix);
            return -1;
        }
    }
    /* ::ffff:a.b.c.d/96+ is an IPv4 network. */
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (e.family == AF_INET6 && e.prefix >= 96 && memcmp(e.addr, mapped, 12) == 0) {
        memmove(e.addr, e.addr + 12, 4);
        memset(e.addr + 4, 0, 12);
        e.family = AF_INET;
        e.prefix -= 96;
    }
    e.text = strdup(tok);
    net_push(nl, &e);
    return 0;
bad:
    snprintf(err, errlen, "%s: '%s' is not an address, network/prefix, /file or type:table", name,
             tok);
    return -1;
}

struct netlist *netlist_new(const char *name, const char *value, char *err, size_t errlen)
{
    struct netlist *nl = calloc(1, sizeof(*nl));
    if (!nl)
        abort();
    nl->text = strdup(value ? value : "");
    char **v = config_list_split(nl->text);
    for (size_t i = 0; v[i]; i++) {
        if (net_add_token(nl, name, v[i], 0, err, errlen) != 0) {
            config_list_free(v);
            netlist_free(nl);
            return NULL;
        }
    }
    config_list_free(v);
    return nl;
}

int netlist_add_address(struct netlist *nl, const char *addr)
{
    struct net_entry e;
    memset(&e, 0, sizeof(e));
    if (netlist_parse_address(addr, &e.family, e.addr) != 0)
        return -1;
    e.prefix = e.family == AF_INET ? 32 : 128;
    e.text = strdup(addr);
    net_push(nl, &e);
    return 0;
}

void netlist_free(struct netlist *nl)
{
    if (!nl)
        return;
    for (size_t i = 0; i < nl->n; i++) {
        free(nl->v[i].text);
        table_free(nl->v[i].table);
    }
    free(nl->v);
    free(nl->text);
    free(nl);
}

int netlist_match(const struct netlist *nl, const char *addr, const char **entry)
{
    int family;
    unsigned char a[16];

    if (entry)
        *entry = NULL;
    if (netlist_parse_address(addr, &family, a) != 0)
        return -1;
    for (size_t i = 0; i < nl->n; i++) {
        const struct net_entry *e = &nl->v[i];
        int hit;
        if (e->table) {
            const char *value;
            char text[INET6_ADDRSTRLEN];
            inet_ntop(family, a, text, sizeof(text));
            hit = table_lookup(e->table, text, &value) == 1;
        } else {
            hit = e->family == family && net_prefix_match(e->addr, a, e->prefix);
        }
        if (hit) {
            if (entry)
                *entry = e->text;
            return e->negated ? 0 : 1;
        }
    }
    return 0;
}

const char *netlist_text(const struct netlist *nl)
{
    return nl->text;
}

const char *netlist_private_kind(const char *addr)
{
    static const struct {
        const char *net;
        unsigned bits;
        const char *kind;
    } ranges[] = {
        {"172.17.0.0", 16, "Docker bridge gateway (172.17.0.0/16)"},
        {"10.0.0.0", 8, "RFC 1918 private (10.0.0.0/8)"},
        {"172.16.0.0", 12, "RFC 1918 private (172.16.0.0/12)"},
        {"192.168.0.0", 16, "RFC 1918 private (192.168.0.0/16)"},
        {"100.64.0.0", 10, "carrier-grade NAT (100.64.0.0/10)"},
        {"127.0.0.0", 8, "loopback (127.0.0.0/8)"},
        {"169.254.0.0", 16, "link-local (169.254.0.0/16)"},
        {"::1", 128, "loopback (::1)"},
        {"fc00::", 7, "IPv6 unique-local (fc00::/7)"},
        {"fe80::", 10, "IPv6 link-local (fe80::/10)"},
    };
    int family, rf;
    unsigned char a[16], r[16];

    if (netlist_parse_address(addr, &family, a) != 0)
        return NULL;
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        if (netlist_parse_address(ranges[i].net, &rf, r) == 0 && rf == family &&
            net_prefix_match(a, r, ranges[i].bits))
            return ranges[i].kind;
    }
    return NULL;
}
