/*
 * netlist.c - compile and match Postfix network lists.
 *
 * Entries are kept in configured order as (family, 16-byte address, prefix, negated) or a table;
 * matching is a linear walk, which is what Postfix does too and is cheap for the handful of
 * networks a mynetworks holds. IPv4 is stored as IPv4 (mapped entries are converted), so
 * "::ffff:192.0.2.1" from a dual-stack socket matches "192.0.2.0/24".
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/maps/netlist.h"

#include "policyd/maps/table.h"
#include "policyd/lib/addr.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct net_entry {
    char *text;          /* as written, for diagnoses */
    int negated;         /* "!pattern" */
    struct cidr net;     /* family 0 for a table */
    struct table *table; /* type:table entries */
};

struct netlist {
    char *text;
    struct net_entry *v;
    size_t n, cap;
};

static void net_push(struct netlist *nl, struct net_entry *e)
{
    nl->v = xgrow(nl->v, &nl->cap, nl->n + 1, sizeof(*nl->v));
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
    char **v = plist_read_file(path, reason, sizeof(reason));
    if (!v) {
        snprintf(err, errlen, "%s: %s", name, reason);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; v[i] && rc == 0; i++)
        rc = net_add_token(nl, name, v[i], depth + 1, err, errlen);
    plist_free(v);
    return rc;
}

/* net_add_token - compile one list entry. */
static int net_add_token(struct netlist *nl, const char *name, const char *tok, int depth,
                         char *err, size_t errlen)
{
    struct net_entry e;
    const char *p = tok;

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
            e.text = xstrdup(tok);
            net_push(nl, &e);
            return 0;
        }
    }
    /* [addr]/len, addr/len, [addr], addr */
    char why[128];
    int rc = cidr_parse(p, &e.net, why, sizeof(why));
    if (rc == -2) {
        snprintf(err, errlen, "%s: '%s'%s%s", name, tok, why[0] == 'h' ? " " : ": ", why);
        return -1;
    }
    if (rc != 0)
        goto bad;
    e.text = xstrdup(tok);
    net_push(nl, &e);
    return 0;
bad:
    snprintf(err, errlen, "%s: '%s' is not an address, network/prefix, /file or type:table", name,
             tok);
    return -1;
}

struct netlist *netlist_new(const char *name, const char *value, char *err, size_t errlen)
{
    struct netlist *nl = xcalloc(1, sizeof(*nl));
    nl->text = xstrdup(value ? value : "");
    char **v = plist_split(nl->text);
    for (size_t i = 0; v[i]; i++) {
        if (net_add_token(nl, name, v[i], 0, err, errlen) != 0) {
            plist_free(v);
            netlist_free(nl);
            return NULL;
        }
    }
    plist_free(v);
    return nl;
}

int netlist_add_address(struct netlist *nl, const char *addr)
{
    struct net_entry e;
    memset(&e, 0, sizeof(e));
    if (addr_parse(addr, &e.net.family, e.net.addr) != 0)
        return -1;
    e.net.prefix = e.net.family == AF_INET ? 32 : 128;
    e.text = xstrdup(addr);
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
    if (addr_parse(addr, &family, a) != 0)
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
            hit = cidr_match(&e->net, family, a);
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
