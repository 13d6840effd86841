/*
 * dnsbl.c - DNS blocklists and allow lists with Postfix postscreen's syntax and meaning.
 *
 * dnsbl_sites = zen.spamhaus.org=127.0.0.[2..11]*3, list.dnswl.org=127.0.[0..255].[1..3]*-5
 * Every list is queried at once (A record of the reversed address under the list's zone,
 * IPv6 in nibbles); an answer inside the list's filter adds its weight (negative for allow
 * lists); at dnsbl_threshold the client is refused, naming the lists and the TXT reason of the
 * first one. An answer outside the filter is not a listing. 127.255.255.252/254/255 are the
 * Spamhaus error answers (public or open resolver, typo, over the limit): never a listing,
 * logged loudly once per dnsbl_error_log_interval. A list that keeps timing out is reported
 * and skipped for dnsbl_skip_time. The per-list health counters live in the check's state,
 * which belongs to one configuration and is touched only from the event loop. The score, the
 * threshold and the listing zones are published as findings (dnsbl.*; check.h) for the checks
 * that run after this one (greylist: a score under the threshold is suspicious).
 */
/* SPDX-License-Identifier: MIT */
#include "checks/check.h"
#include "policyd/mail/dnsbl_list.h"

#include "policyd/config.h"
#include "policyd/dns/dns.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/maps/netlist.h"
#include "policyd/lib/plist.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DNSBL_MAX 32

struct dnsbl_site {
    struct dnsbl_list list; /* zone, filter, weight */
    char *delist;           /* delisting page, or NULL */
    int timeouts;           /* consecutive */
    time_t skip_until;
    time_t last_error_log;
    int rhs; /* a domain list (rhsbl_sites): asked about the sender domain and the HELO name */
};

struct dnsbl_state {
    struct dnsbl_site sites[DNSBL_MAX];
    size_t n;
};

struct dnsbl_call;

/* The callback argument of one list's query. */
struct dnsbl_arg {
    struct dnsbl_call *dc;
    size_t index;
};

/* What one query is about: the client address, or a domain for a domain list. */
enum dnsbl_subject { SUBJECT_CLIENT, SUBJECT_SENDER, SUBJECT_HELO };

#define DNSBL_SLOTS (2 * DNSBL_MAX)

struct dnsbl_call {
    struct check_call *call;
    struct dns_query *a_q[DNSBL_SLOTS];
    struct dns_query *txt_q;
    int listed[DNSBL_SLOTS]; /* 1 listed, 0 not, -1 unknown (error, timeout, skipped) */
    size_t nslots;
    size_t outstanding;
    int score;
    size_t first_listed; /* for the TXT reason */
    char reason[256];
    /* Below: written before being read; not cleared per request. */
    char addr[64];
    size_t slot_site[DNSBL_SLOTS];
    enum dnsbl_subject slot_subject[DNSBL_SLOTS];
    const char *slot_domain[DNSBL_SLOTS]; /* SENDER/HELO: points into the request */
    char answer[DNSBL_SLOTS][64];
    struct dnsbl_arg arg[DNSBL_SLOTS];
};

/* dnsbl_query_name - the name asked for a slot: reversed address or domain, under the zone. */
static int dnsbl_query_name(const struct dnsbl_call *dc, const struct dnsbl_state *st, size_t slot,
                            char *out, size_t outlen)
{
    const char *zone = st->sites[dc->slot_site[slot]].list.zone;
    if (dc->slot_subject[slot] == SUBJECT_CLIENT)
        return dns_reverse_name(dc->addr, zone, out, outlen);
    int n = snprintf(out, outlen, "%s.%s", dc->slot_domain[slot], zone);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* dnsbl_subject_text - "client 192.0.2.1", "sender domain example.net", "HELO name x". */
static void dnsbl_subject_text(const struct dnsbl_call *dc, size_t slot, char *out, size_t len)
{
    if (dc->slot_subject[slot] == SUBJECT_CLIENT)
        snprintf(out, len, "client %s", dc->addr);
    else
        snprintf(out, len, "%s %s",
                 dc->slot_subject[slot] == SUBJECT_SENDER ? "sender domain" : "HELO name",
                 dc->slot_domain[slot]);
}

static void dnsbl_unconfigure(void *state)
{
    struct dnsbl_state *st = state;
    for (size_t i = 0; i < st->n; i++) {
        dnsbl_list_free(&st->sites[i].list);
        free(st->sites[i].delist);
    }
    free(st);
}

static void *dnsbl_configure(const struct config *cfg, char *err, size_t errlen)
{
    struct dnsbl_state *st = xcalloc(1, sizeof(*st));
    char **v = NULL;
    const char *lists[2] = {cfg->dnsbl_sites, cfg->rhsbl_sites};
    for (int rhs = 0; rhs < 2; rhs++) {
        v = plist_split(lists[rhs]);
        for (size_t i = 0; v[i]; i++) {
            if (st->n == DNSBL_MAX) {
                snprintf(err, errlen, "dnsbl_sites and rhsbl_sites: more than %d lists", DNSBL_MAX);
                goto fail;
            }
            st->sites[st->n].rhs = rhs;
            if (dnsbl_list_parse(&st->sites[st->n].list, v[i], err, errlen) != 0) {
                st->n++;
                goto fail;
            }
            st->n++;
        }
        plist_free(v);
    }
    if (st->n == 0) {
        snprintf(err, errlen,
                 "the dnsbl check is listed in checks but dnsbl_sites and rhsbl_sites are empty");
        dnsbl_unconfigure(st);
        return NULL;
    }
    v = plist_split(cfg->dnsbl_delist_urls);
    for (size_t i = 0; v[i]; i++)
        if (!strchr(v[i], '=')) {
            snprintf(err, errlen, "dnsbl_delist_urls: '%s' is not zone=url", v[i]);
            goto fail;
        }
    plist_free(v);
    for (size_t k = 0; k < st->n; k++) {
        char url[512];
        if (*dnsbl_list_delist(cfg->dnsbl_delist_urls, st->sites[k].list.zone, url, sizeof(url)))
            st->sites[k].delist = xstrdup(url);
    }
    return st;
fail:
    plist_free(v);
    dnsbl_unconfigure(st);
    return NULL;
}

/* dnsbl_free - a call's state, with its queries still pending (check_free_fn). */
static void dnsbl_free(void *data)
{
    struct dnsbl_call *dc = data;
    for (size_t i = 0; i < dc->nslots; i++)
        dns_cancel(dc->a_q[i]);
    dns_cancel(dc->txt_q);
    free(dc);
}

/* dnsbl_conclude - score and verdict (the evaluator frees the call's state afterwards). */
static void dnsbl_conclude(struct dnsbl_call *dc)
{
    struct check_call *call = dc->call;
    const struct config *cfg = check_call_config(call);
    const struct dnsbl_state *st = check_call_state(call);
    char lists[512] = "", detail[2048] = "", fix[1024] = "", action[1024];
    size_t nl = 0, nd = 0, nf = 0;
    int quiet = dc->score < cfg->dnsbl_threshold &&
                (cfg->dnsbl_warn_threshold <= 0 || dc->score < cfg->dnsbl_warn_threshold) &&
                !log_verbose();
    char number[32], zones[512] = "";
    size_t nz = 0;
    for (size_t i = 0; i < dc->nslots; i++) {
        size_t j = 0; /* a domain list that listed the sender domain and the HELO name: once */
        while (j < i && !(dc->slot_site[j] == dc->slot_site[i] && dc->listed[j] == 1))
            j++;
        if (dc->listed[i] == 1 && st->sites[dc->slot_site[i]].list.weight > 0 && j == i &&
            nz < sizeof(zones))
            nz += (size_t)snprintf(zones + nz, sizeof(zones) - nz, "%s%s", nz ? " " : "",
                                   st->sites[dc->slot_site[i]].list.zone);
    }
    snprintf(number, sizeof(number), "%d", dc->score);
    check_call_publish(call, CHECK_FINDING_DNSBL_SCORE, number);
    snprintf(number, sizeof(number), "%ld", cfg->dnsbl_threshold);
    check_call_publish(call, CHECK_FINDING_DNSBL_THRESHOLD, number);
    check_call_publish(call, CHECK_FINDING_DNSBL_LISTED, zones);

    for (size_t i = 0; i < dc->nslots && !quiet; i++) { /* texts only when someone reads them */
        const struct dnsbl_site *s = &st->sites[dc->slot_site[i]];
        char about[300] = "";
        if (dc->slot_subject[i] != SUBJECT_CLIENT) {
            char subject[280];
            dnsbl_subject_text(dc, i, subject, sizeof(subject));
            snprintf(about, sizeof(about), " (%s)", subject);
        }
        if (dc->listed[i] == 1 && s->list.weight > 0 && nl < sizeof(lists))
            nl += (size_t)snprintf(lists + nl, sizeof(lists) - nl, "%s%s", nl ? ", " : "",
                                   s->list.zone);
        if (nd < sizeof(detail))
            nd += (size_t)snprintf(detail + nd, sizeof(detail) - nd, "%s%s%s: %s", nd ? "; " : "",
                                   s->list.zone, about, dc->answer[i]);
        if (dc->listed[i] == 1 && nd < sizeof(detail))
            nd += (size_t)snprintf(detail + nd, sizeof(detail) - nd, " (listed, weight %d)",
                                   s->list.weight);
        if (dc->listed[i] == 1 && s->list.weight > 0 && nf < sizeof(fix))
            nf += (size_t)snprintf(fix + nf, sizeof(fix) - nf, "%s%s: %s", nf ? "; " : "",
                                   s->list.zone,
                                   s->delist ? s->delist : "see the list's web site for delisting");
    }
    if (dc->score >= cfg->dnsbl_threshold) {
        /* The action with %a %l %r filled in. */
        size_t n = 0;
        for (const char *p = cfg->dnsbl_action; *p && n + 1 < sizeof(action); p++) {
            const char *sub = NULL;
            char rbuf[300] = "";
            if (p[0] == '%' && (p[1] == 'a' || p[1] == 'l' || p[1] == 'r')) {
                if (p[1] == 'a')
                    sub = dc->addr;
                else if (p[1] == 'l')
                    sub = lists;
                else {
                    if (dc->reason[0])
                        snprintf(rbuf, sizeof(rbuf), "; %s", dc->reason);
                    sub = rbuf;
                }
                p++;
                n += (size_t)snprintf(action + n, sizeof(action) - n, "%s", sub);
                continue;
            }
            action[n++] = *p;
        }
        action[n < sizeof(action) ? n : sizeof(action) - 1] = 0;
        char cause[3072], subject[280] = "client";
        const char *code = "dnsbl.listed";
        if (dc->first_listed != (size_t)-1)
            dnsbl_subject_text(dc, dc->first_listed, subject, sizeof(subject));
        else
            snprintf(subject, sizeof(subject), "client %s", dc->addr);
        if (dc->first_listed != (size_t)-1 &&
            dc->slot_subject[dc->first_listed] != SUBJECT_CLIENT) {
            code = "dnsbl.domain_listed";
            check_call_subject(call,
                               dc->slot_subject[dc->first_listed] == SUBJECT_SENDER
                                   ? "sender domain"
                                   : "HELO name",
                               dc->slot_domain[dc->first_listed]);
        }
        snprintf(cause, sizeof(cause),
                 "%s is listed: score %d reaches dnsbl_threshold %ld (%s)%s%s", subject, dc->score,
                 cfg->dnsbl_threshold, detail, dc->reason[0] ? "; reason: " : "", dc->reason);
        char fixall[1400];
        snprintf(fixall, sizeof(fixall),
                 "the operator of the %s must find why it was listed (compromised host, open "
                 "proxy, spam from a customer, a spamvertised domain), stop it, then ask for "
                 "delisting: %s",
                 subject, fix);
        check_call_action(call, code, action, cause, fixall);
    } else if (cfg->dnsbl_warn_threshold > 0 && dc->score >= cfg->dnsbl_warn_threshold) {
        char key[1024];
        snprintf(key, sizeof(key), "client %s scores %d (warn at %ld, reject at %ld): %s", dc->addr,
                 dc->score, cfg->dnsbl_warn_threshold, cfg->dnsbl_threshold, detail);
        check_call_log(call, "dnsbl.warn_score", key,
                       "none needed: the score stays under dnsbl_threshold");
        if (*cfg->dnsbl_warn_header) {
            char header[1200];
            snprintf(header, sizeof(header), "%s: %s", cfg->dnsbl_warn_header, key);
            check_call_prepend(call, header);
        }
    } else {
        check_call_note(call, "client %s scores %d (%s)", dc->addr, dc->score, detail);
    }
}

/* dnsbl_finish - conclude a call that pended, and tell the evaluator. */
static void dnsbl_finish(struct dnsbl_call *dc)
{
    struct check_call *call = dc->call;
    dnsbl_conclude(dc);
    check_call_done(call);
}

/* dnsbl_record_reason - the listing's TXT reason, made safe for an SMTP reply. */
static void dnsbl_record_reason(struct dnsbl_call *dc, const struct dns_result *r)
{
    if (r->status == DNS_OK && r->count > 0) {
        /* Shown in the SMTP reply: printable ASCII only, bounded. */
        size_t n = 0;
        for (size_t i = 0; i < r->lens[0] && n + 1 < sizeof(dc->reason) && n < 200; i++) {
            unsigned char c = (unsigned char)r->items[0][i];
            dc->reason[n++] = (c >= 32 && c < 127) ? (char)c : ' ';
        }
        dc->reason[n] = 0;
    }
}

static void dnsbl_txt_cb(const struct dns_result *r, void *arg)
{
    struct dnsbl_call *dc = arg;
    dc->txt_q = NULL;
    dnsbl_record_reason(dc, r);
    dnsbl_finish(dc);
}

/* dnsbl_record - what list i answered: listed, not, or unknown; its health counters. */
static void dnsbl_record(struct dnsbl_call *dc, size_t i, const struct dns_result *r)
{
    struct dnsbl_state *st = check_call_state(dc->call);
    const struct config *cfg = check_call_config(dc->call);
    struct dnsbl_site *s = &st->sites[dc->slot_site[i]];
    time_t now = time(NULL);

    dc->listed[i] = 0;
    if (r->status == DNS_OK) {
        s->timeouts = 0;
        size_t n = 0;
        dc->answer[i][0] = 0;
        for (size_t k = 0; k < r->count; k++) {
            unsigned char a[4];
            if (inet_pton(AF_INET, r->items[k], a) != 1)
                continue;
            if (n < sizeof(dc->answer[i]))
                n += (size_t)snprintf(dc->answer[i] + n, sizeof(dc->answer[i]) - n, "%s%s",
                                      k ? " " : "", r->items[k]);
            int verdict = dnsbl_list_answer(&s->list, a);
            if (verdict < 0) {
                /* An error answer: the list refuses us, not the client. */
                dc->listed[i] = -1;
                const char *code = "dnsbl.error_answer";
                check_call_count(dc->call, code);
                if (now - s->last_error_log >= cfg->dnsbl_error_log_interval / 1000) {
                    s->last_error_log = now;
                    log_error("dnsbl: %s answered %s, an error code, not a listing: the list "
                              "refuses queries from this resolver (a public or open resolver, "
                              "a typo in the zone, or over the free-use limit); cause_code=%s; "
                              "fix: query it through your own recursive resolver (dns_servers) "
                              "or a registered data-feed zone; until then the list is useless",
                              s->list.zone, r->items[k], code);
                }
                break;
            }
            if (verdict == 1)
                dc->listed[i] = 1;
        }
        if (dc->listed[i] == 0)
            snprintf(dc->answer[i] + n, sizeof(dc->answer[i]) - n, " (outside the filter %s)",
                     s->list.filter);
    } else if (r->status == DNS_NXDOMAIN || r->status == DNS_NODATA) {
        s->timeouts = 0;
        memcpy(dc->answer[i], "not listed", sizeof("not listed"));
    } else {
        dc->listed[i] = -1;
        snprintf(dc->answer[i], sizeof(dc->answer[i]), "%s", r->detail);
        if (r->status == DNS_TEMPFAIL && strstr(r->detail, "timeout") &&
            ++s->timeouts >= cfg->dnsbl_timeout_limit) {
            const char *code = "dnsbl.list_timeout";
            s->skip_until = now + cfg->dnsbl_skip_time / 1000;
            check_call_count(dc->call, code);
            log_warn("dnsbl: %s timed out %d times in a row: skipped for %ld s; cause_code=%s; "
                     "fix: check that the list's zone is right and that your resolver can reach "
                     "it",
                     s->list.zone, s->timeouts, cfg->dnsbl_skip_time / 1000, code);
            s->timeouts = 0;
        }
    }
    if (dc->listed[i] == 1) {
        dc->score += s->list.weight;
        if (s->list.weight > 0 && dc->first_listed == (size_t)-1)
            dc->first_listed = i;
    }
}

/* dnsbl_after_lists - every list has answered: fetch the TXT reason of a rejecting listing
 * (from the cache if it is there). Returns 1 when nothing more is awaited. */
static int dnsbl_after_lists(struct dnsbl_call *dc)
{
    const struct dnsbl_state *st = check_call_state(dc->call);
    const struct config *cfg = check_call_config(dc->call);
    if (dc->score < cfg->dnsbl_threshold || dc->first_listed == (size_t)-1)
        return 1;
    char name[600];
    if (dnsbl_query_name(dc, st, dc->first_listed, name, sizeof(name)) != 0)
        return 1;
    const struct dns_result *cached = dns_peek(check_call_dns(dc->call), DNS_TXT, name);
    if (cached) {
        dnsbl_record_reason(dc, cached);
        dns_result_unref(cached);
        return 1;
    }
    dc->txt_q = dns_lookup(check_call_dns(dc->call), DNS_TXT, name, dnsbl_txt_cb, dc);
    return 0;
}

static void dnsbl_a_cb(const struct dns_result *r, void *arg)
{
    const struct dnsbl_arg *da = arg;
    struct dnsbl_call *dc = da->dc;
    dc->a_q[da->index] = NULL;
    dc->outstanding--;
    dnsbl_record(dc, da->index, r);
    if (dc->outstanding == 0 && dnsbl_after_lists(dc))
        dnsbl_finish(dc);
}

static enum check_status dnsbl_run(struct check_call *call)
{
    const struct request *req = check_call_request(call);
    const struct config *cfg = check_call_config(call);
    struct dnsbl_state *st = check_call_state(call);

    if (request_state(req) != STATE_RCPT || !check_call_dns(call))
        return CHECK_DONE;
    if (!check_call_client_address(call))
        return CHECK_DONE;
    const char *addr = request_get(req, ATTR_CLIENT_ADDRESS);
    if (cfg->dnsbl_skip_authenticated && *request_get(req, ATTR_SASL_USERNAME))
        return CHECK_DONE;
    if (cfg->dnsbl_skip_mynetworks && netlist_match(cfg->net_mynetworks, addr, NULL) == 1)
        return CHECK_DONE;
    char probe[300];
    int is_address = dns_reverse_name(addr, "x", probe, sizeof(probe)) == 0;
    const char *sender = request_get(req, ATTR_SENDER);
    const char *at = strrchr(sender, '@');
    const char *sdomain = at && at[1] ? at + 1 : NULL;
    const char *helo = request_get(req, ATTR_HELO_NAME);
    if (!strchr(helo, '.') || helo[0] == '[' || (sdomain && strcasecmp(helo, sdomain) == 0))
        helo = NULL; /* not a domain name, or already asked about as the sender domain */

    struct dnsbl_call *dc = xmalloc(sizeof(*dc));
    memset(dc, 0, offsetof(struct dnsbl_call, addr));
    dc->call = call;
    dc->first_listed = (size_t)-1;
    snprintf(dc->addr, sizeof(dc->addr), "%s", addr);
    /* The questions: each address list about the client, each domain list about the sender
     * domain and the HELO name. */
    for (size_t site = 0; site < st->n; site++) {
        const char *subjects[2] = {sdomain, helo};
        for (int k = 0; k < (st->sites[site].rhs ? 2 : 1); k++) {
            if (st->sites[site].rhs ? !subjects[k] : !is_address)
                continue;
            size_t i = dc->nslots++;
            dc->slot_site[i] = site;
            dc->slot_subject[i] = !st->sites[site].rhs ? SUBJECT_CLIENT
                                  : k == 0             ? SUBJECT_SENDER
                                                       : SUBJECT_HELO;
            dc->slot_domain[i] = st->sites[site].rhs ? subjects[k] : NULL;
        }
    }
    if (dc->nslots == 0) {
        free(dc);
        return CHECK_DONE;
    }
    check_call_set_data(call, dc, dnsbl_free);
    time_t now = time(NULL);
    for (size_t i = 0; i < dc->nslots; i++) {
        char name[600];
        dc->listed[i] = -1;
        if (st->sites[dc->slot_site[i]].skip_until > now) {
            snprintf(dc->answer[i], sizeof(dc->answer[i]), "skipped (kept timing out)");
            continue;
        }
        if (dnsbl_query_name(dc, st, i, name, sizeof(name)) != 0) {
            snprintf(dc->answer[i], sizeof(dc->answer[i]), "name too long to ask");
            continue;
        }
        const struct dns_result *cached = dns_peek(check_call_dns(call), DNS_A, name);
        if (cached) {
            dnsbl_record(dc, i, cached);
            dns_result_unref(cached);
            continue;
        }
        dc->arg[i].dc = dc;
        dc->arg[i].index = i;
        dc->outstanding++;
        dc->a_q[i] = dns_lookup(check_call_dns(call), DNS_A, name, dnsbl_a_cb, &dc->arg[i]);
    }
    if (dc->outstanding > 0 || !dnsbl_after_lists(dc))
        return CHECK_PENDING;
    /* Every answer was cached (or every list skipped): decide now. */
    dnsbl_conclude(dc);
    return CHECK_DONE;
}

static void dnsbl_describe(const struct check_call *call, char *buf, size_t buflen)
{
    const struct dnsbl_call *dc = check_call_data(call);
    if (!dc)
        return;
    if (dc->txt_q)
        snprintf(buf, buflen, "TXT lookup for the reason of the listing of %s", dc->addr);
    else
        snprintf(buf, buflen, "queries to %zu DNS lists", dc->outstanding);
}

const struct check_def dnsbl_check = {
    .name = "dnsbl",
    .configure = dnsbl_configure,
    .unconfigure = dnsbl_unconfigure,
    .run = dnsbl_run,
    .describe = dnsbl_describe,
};
