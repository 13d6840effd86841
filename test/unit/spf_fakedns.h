/*
 * spf_fakedns.h - a zone in memory for the SPF evaluator's tests and fuzz target: answers
 * built as the DNS engine would hand them over, and a replay driver that "fetches" what each
 * pass wanted (names not in the zone are NXDOMAIN) until the evaluation finishes.
 * Header-only on purpose (one test executable, one fuzz target).
 */
/* SPDX-License-Identifier: MIT */
#ifndef SPF_FAKEDNS_H
#define SPF_FAKEDNS_H

#include "policyd/mail/spf_eval.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAKE_MAX 512

struct fake_rr {
    struct dns_result r;
    int answered; /* 0: in the zone but not fetched yet */
    char name[300];
    const char *items[16];
    size_t lens[16];
    unsigned char addrs[16 * 16];
};

struct fake_zone {
    struct fake_rr rr[FAKE_MAX];
    size_t n;
    int wants, passes;
    int fetch_all; /* 1: answers are available at once (no passes needed) */
};

static struct fake_rr *fake_find(struct fake_zone *z, int type, const char *name)
{
    for (size_t i = 0; i < z->n; i++)
        if (z->rr[i].r.type == type && strcasecmp(z->rr[i].name, name) == 0)
            return &z->rr[i];
    return NULL;
}

static struct fake_rr *fake_add(struct fake_zone *z, int type, const char *name,
                                enum dns_status status)
{
    struct fake_rr *f = fake_find(z, type, name);
    if (f)
        return f;
    if (z->n >= FAKE_MAX)
        abort();
    f = &z->rr[z->n++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->r.type = type;
    f->r.name = f->name;
    f->r.status = status;
    f->r.detail = status == DNS_TEMPFAIL ? "timeout (fake)" : "fake";
    f->r.items = f->items;
    f->r.lens = f->lens;
    return f;
}

/* fake_item - one more record (text for TXT/MX/PTR, an address for A/AAAA). */
static void fake_item(struct fake_zone *z, int type, const char *name, const char *data, size_t len)
{
    struct fake_rr *f = fake_add(z, type, name, DNS_OK);
    if (f->r.count >= 16)
        return;
    if (type == DNS_A || type == DNS_AAAA) {
        size_t bytes = type == DNS_A ? 4 : 16;
        if (inet_pton(type == DNS_A ? AF_INET : AF_INET6, data, f->addrs + f->r.count * bytes) != 1)
            abort();
        f->r.addrs = f->addrs;
    }
    f->items[f->r.count] = data;
    f->lens[f->r.count] = len;
    f->r.count++;
}

static inline void fake_txt(struct fake_zone *z, const char *name, const char *text)
{
    fake_item(z, DNS_TXT, name, text, strlen(text));
}

static const struct dns_result *fake_get(void *arg, int type, const char *name)
{
    struct fake_zone *z = arg;
    struct fake_rr *f = fake_find(z, type, name);
    return f && (f->answered || z->fetch_all) ? &f->r : NULL;
}

static void fake_want(void *arg, int type, const char *name)
{
    struct fake_zone *z = arg;
    z->wants++;
    struct fake_rr *f = fake_find(z, type, name);
    if (!f && z->n < FAKE_MAX)
        f = fake_add(z, type, name, DNS_NXDOMAIN);
    if (f)
        f->answered = 1; /* the next pass sees it */
}

/* fake_eval - evaluate with replay passes (at most max_passes). */
static enum spf_result fake_eval(struct fake_zone *z, const char *ip, const char *sender,
                                 const char *helo, struct spf_outcome *out, int max_passes)
{
    struct spf_input in = {ip, sender, helo, "receiver.example", 10, 2};
    struct spf_dns dns = {fake_get, fake_want, z};
    z->passes = 0;
    do {
        z->passes++;
        spf_check_host(&in, &dns, out);
    } while (out->pending && z->passes < max_passes);
    return out->result;
}

#endif
