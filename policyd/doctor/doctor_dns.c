/*
 * doctor_dns.c - the doctor's DNS sections, seen as a receiver sees this server: reverse DNS
 * and HELO name of each outbound address, SPF of each domain (evaluated by the daemon's own
 * evaluator for each address), DMARC, MX, and the outbound addresses against dnsbl_sites.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/dnsbl_list.h"
#include "policyd/mail/spf_eval.h"
#include "policyd/config.h"
#include "policyd/dns/dns.h"
#include "policyd/doctor/doctor_section.h"
#include "policyd/lib/xalloc.h"
#include "policyd/maps/netlist.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DOCTOR_MAX_NAMES 10

static int is_v6(const char *ip)
{
    return strchr(ip, ':') != NULL;
}

/* addr_bin - the address in binary (IPv4-mapped as IPv4); its length, 0 if not an address. */
static size_t addr_bin(const char *ip, unsigned char out[16])
{
    int family;
    if (addr_parse(ip, &family, out) != 0)
        return 0;
    return family == AF_INET ? 4 : 16;
}

/* resolves_to - 1 if name has ip among its addresses, 0 if not, -1 on DNS trouble; what it
 * resolves to goes into seen. */
static int resolves_to(struct doctor *d, const char *name, const char *ip, char *seen,
                       size_t seenlen)
{
    unsigned char bin[16];
    size_t blen = addr_bin(ip, bin);
    const struct dns_result *r = doctor_resolve(d, blen == 16 ? DNS_AAAA : DNS_A, name);
    int found = 0;
    seen[0] = '\0';
    if (r->status == DNS_TEMPFAIL || r->status == DNS_BADRESP) {
        snprintf(seen, seenlen, "%s", r->detail ? r->detail : "temporary failure");
        dns_result_unref(r);
        return -1;
    }
    if (r->status != DNS_OK || !r->addrs) {
        snprintf(seen, seenlen, "%s", r->status == DNS_NXDOMAIN ? "NXDOMAIN" : "no address");
    } else {
        size_t n = 0;
        for (size_t i = 0; i < r->count; i++) {
            if (memcmp(r->addrs + i * blen, bin, blen) == 0)
                found = 1;
            n += (size_t)snprintf(seen + n, n < seenlen ? seenlen - n : 0, "%s%s", i ? ", " : "",
                                  r->items[i]);
            if (n >= seenlen)
                break;
        }
    }
    dns_result_unref(r);
    return found;
}

void doctor_addresses(struct doctor *d)
{
    const char *helo = d->cfg->smtp_helo_name && *d->cfg->smtp_helo_name ? d->cfg->smtp_helo_name
                                                                         : d->cfg->myhostname;
    for (size_t i = 0; i < d->nips; i++) {
        const char *ip = d->ips[i];
        char rname[128], obs[1024], why[512], fix[768], seen[512];
        if (dns_reverse_name(ip, NULL, rname, sizeof(rname)) != 0)
            continue;
        const struct dns_result *ptr = doctor_resolve(d, DNS_PTR, rname);
        if (ptr->status == DNS_TEMPFAIL || ptr->status == DNS_BADRESP) {
            snprintf(obs, sizeof(obs), "PTR lookup of %s failed: %s", rname, ptr->detail);
            doctor_report_add(d->report, DOCTOR_ERROR, "ptr", ip, obs, NULL,
                              "check the DNS servers policyd uses (dns_servers) and try again");
            dns_result_unref(ptr);
            continue;
        }
        if (ptr->status != DNS_OK || ptr->count == 0) {
            snprintf(obs, sizeof(obs), "no PTR record (%s for %s)",
                     ptr->status == DNS_NXDOMAIN ? "NXDOMAIN" : "no data", rname);
            snprintf(fix, sizeof(fix),
                     "ask the owner of %s (your ISP or hosting provider: only they can) to set its "
                     "PTR record to %s, and make %s resolve to %s",
                     ip, helo, helo, ip);
            doctor_report_add(
                d->report, DOCTOR_FAIL, "ptr", ip, obs,
                "large receivers reject or junk mail from addresses without reverse DNS "
                "(Postfix's own reject_unknown_reverse_client_hostname does too)",
                fix);
            dns_result_unref(ptr);
            continue;
        }
        const char *confirmed = NULL;
        char first_seen[512] = "";
        int trouble = 0;
        for (size_t k = 0; k < ptr->count && k < DOCTOR_MAX_NAMES && !confirmed; k++) {
            int rc = resolves_to(d, ptr->items[k], ip, seen, sizeof(seen));
            if (rc == 1)
                confirmed = ptr->items[k];
            else if (rc < 0)
                trouble = 1;
            if (k == 0)
                snprintf(first_seen, sizeof(first_seen), "%s", seen);
        }
        if (!confirmed) {
            snprintf(obs, sizeof(obs), "PTR %s does not resolve back to %s (it resolves to: %s)",
                     ptr->items[0], ip, first_seen);
            snprintf(fix, sizeof(fix),
                     "publish %s record %s -> %s, or have the address owner point the PTR at a "
                     "name that resolves to %s",
                     is_v6(ip) ? "an AAAA" : "an A", ptr->items[0], ip, ip);
            doctor_report_add(d->report, trouble ? DOCTOR_ERROR : DOCTOR_FAIL, "ptr", ip, obs,
                              "receivers check that the PTR name resolves back (forward-confirmed "
                              "reverse DNS); many reject when it does not",
                              fix);
            dns_result_unref(ptr);
            continue;
        }
        snprintf(obs, sizeof(obs), "PTR %s, forward-confirmed", confirmed);
        doctor_report_add(d->report, DOCTOR_OK, "ptr", ip, obs, NULL, NULL);

        /* The HELO name: equal to the PTR name, or at least resolving to the address. */
        if (strcasecmp(confirmed, helo) == 0) {
            snprintf(obs, sizeof(obs), "HELO name %s is the PTR name", helo);
            doctor_report_add(d->report, DOCTOR_OK, "helo", ip, obs, NULL, NULL);
        } else {
            int rc = resolves_to(d, helo, ip, seen, sizeof(seen));
            if (rc == 1) {
                snprintf(obs, sizeof(obs), "HELO name %s resolves to %s but the PTR is %s", helo,
                         ip, confirmed);
                snprintf(fix, sizeof(fix),
                         "set smtp_helo_name = %s in main.cf, or the PTR of %s to %s", confirmed,
                         ip, helo);
                doctor_report_add(d->report, DOCTOR_WARN, "helo", ip, obs,
                                  "some receivers expect the HELO name to be the PTR name", fix);
            } else {
                snprintf(obs, sizeof(obs), "HELO name %s does not resolve to %s (%s)", helo, ip,
                         seen);
                snprintf(why, sizeof(why),
                         "receivers check the HELO name (Postfix's reject_unknown_helo_hostname, "
                         "SPF of the HELO identity); a name that does not lead back to the "
                         "sending address looks forged");
                snprintf(fix, sizeof(fix),
                         "set smtp_helo_name = %s in main.cf (the forward-confirmed PTR name), or "
                         "publish %s %s -> %s",
                         confirmed, is_v6(ip) ? "AAAA" : "A", helo, ip);
                doctor_report_add(d->report, rc < 0 ? DOCTOR_ERROR : DOCTOR_FAIL, "helo", ip, obs,
                                  why, fix);
            }
        }
        dns_result_unref(ptr);
    }
}

/* ---- SPF: the daemon's evaluator, fed by waiting for each answer it wants ---- */

struct doc_spf {
    struct doctor *d;
    struct {
        int type;
        char *name;
        const struct dns_result *r;
    } got[512];
    size_t n;
};

static const struct dns_result *doc_spf_get(void *arg, int type, const char *name)
{
    struct doc_spf *s = arg;
    for (size_t i = 0; i < s->n; i++)
        if (s->got[i].type == type && strcasecmp(s->got[i].name, name) == 0)
            return s->got[i].r;
    return NULL;
}

static void doc_spf_want(void *arg, int type, const char *name)
{
    struct doc_spf *s = arg;
    if (doc_spf_get(s, type, name) || s->n >= sizeof(s->got) / sizeof(s->got[0]))
        return;
    s->got[s->n].type = type;
    s->got[s->n].name = xstrdup(name);
    s->got[s->n].r = doctor_resolve(s->d, type, name);
    s->n++;
}

static void doc_spf_free(struct doc_spf *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->got[i].name);
        dns_result_unref(s->got[i].r);
    }
    free(s);
}

/* spf_terms - "ip4:192.0.2.1 ip6:2001:db8::1" for the outbound addresses. */
static void spf_terms(const struct doctor *d, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < d->nips && n < outlen; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%sip%c:%s", i ? " " : "",
                              is_v6(d->ips[i]) ? '6' : '4', d->ips[i]);
    if (!d->nips)
        snprintf(out, outlen, "ip4:YOUR-ADDRESS");
}

void doctor_spf(struct doctor *d)
{
    for (size_t i = 0; i < d->ndomains; i++) {
        const char *dom = d->domains[i];
        char obs[1200], fix[1024], terms[512], err[256];
        spf_terms(d, terms, sizeof(terms));
        const struct dns_result *r = doctor_resolve(d, DNS_TXT, dom);
        if (r->status == DNS_TEMPFAIL || r->status == DNS_BADRESP) {
            snprintf(obs, sizeof(obs), "TXT lookup failed: %s", r->detail);
            doctor_report_add(d->report, DOCTOR_ERROR, "spf", dom, obs, NULL,
                              "check the DNS servers policyd uses (dns_servers) and try again");
            dns_result_unref(r);
            continue;
        }
        const char *rec = NULL;
        size_t nrec = 0, reclen = 0;
        for (size_t k = 0; r->status == DNS_OK && k < r->count; k++)
            if (spf_record_is_spf1(r->items[k], r->lens[k])) {
                rec = r->items[k];
                reclen = r->lens[k];
                nrec++;
            }
        if (nrec == 0) {
            snprintf(fix, sizeof(fix),
                     "publish a TXT record at %s: \"v=spf1 %s -all\" (add include: "
                     "terms for any provider that sends for you)",
                     dom, terms);
            doctor_report_add(
                d->report, DOCTOR_FAIL, "spf", dom, "no SPF record",
                "receivers give mail from a domain without SPF a worse score; Gmail and "
                "Yahoo require SPF or DKIM from every sender, and DMARC needs one of them",
                fix);
            dns_result_unref(r);
            continue;
        }
        if (nrec > 1) {
            snprintf(obs, sizeof(obs), "%zu SPF records", nrec);
            doctor_report_add(
                d->report, DOCTOR_FAIL, "spf", dom, obs,
                "RFC 7208 4.5: more than one v=spf1 record is a permerror: every receiver "
                "treats the domain as broken",
                "merge them into one TXT record");
            dns_result_unref(r);
            continue;
        }
        char shown[300];
        snprintf(shown, sizeof(shown), "%.*s%s", (int)(reclen > 200 ? 200 : reclen), rec,
                 reclen > 200 ? "..." : "");
        if (spf_record_check(rec, reclen, err, sizeof(err)) != 0) {
            snprintf(obs, sizeof(obs), "invalid record \"%s\": %s", shown, err);
            doctor_report_add(
                d->report, DOCTOR_FAIL, "spf", dom, obs,
                "a syntax error anywhere makes the whole record a permerror (RFC 7208 "
                "4.6)",
                "correct the record (RFC 7208 section 5 and 6 give the syntax)");
            dns_result_unref(r);
            continue;
        }
        dns_result_unref(r);
        if (!d->nips) {
            snprintf(obs, sizeof(obs), "one valid record \"%s\" (no address to evaluate it for)",
                     shown);
            doctor_report_add(d->report, DOCTOR_OK, "spf", dom, obs, NULL, NULL);
            continue;
        }
        for (size_t k = 0; k < d->nips; k++) {
            struct doc_spf *s = xcalloc(1, sizeof(*s));
            s->d = d;
            struct spf_dns dns = {doc_spf_get, doc_spf_want, s};
            char sender[300];
            snprintf(sender, sizeof(sender), "postmaster@%s", dom);
            struct spf_input in = {d->ips[k],          sender, d->cfg->myhostname,
                                   d->cfg->myhostname, 10,     2};
            struct spf_outcome o;
            int passes = 0;
            do
                spf_check_host(&in, &dns, &o);
            while (o.pending && ++passes < 400);
            char subject[400];
            snprintf(subject, sizeof(subject), "%s for %s", dom, d->ips[k]);
            if (o.result == SPF_PASS) {
                snprintf(obs, sizeof(obs), "pass (%s; %d of 10 DNS-querying terms)", o.mechanism,
                         o.lookups);
                if (o.lookups >= 9)
                    doctor_report_add(
                        d->report, DOCTOR_WARN, "spf", subject, obs,
                        "one more include or a provider adding one to its record makes "
                        "every receiver answer permerror",
                        "flatten includes or replace a: and mx: terms by ip4:/ip6:");
                else
                    doctor_report_add(d->report, DOCTOR_OK, "spf", subject, obs, NULL, NULL);
            } else if (o.result == SPF_TEMPERROR) {
                snprintf(obs, sizeof(obs), "temperror: %s", o.problem);
                doctor_report_add(d->report, DOCTOR_ERROR, "spf", subject, obs, NULL,
                                  "check the DNS servers policyd uses and the domain's DNS");
            } else if (o.result == SPF_PERMERROR) {
                snprintf(obs, sizeof(obs), "permerror: %s", o.problem);
                doctor_report_add(
                    d->report, DOCTOR_FAIL, "spf", subject, obs,
                    "receivers treat a permerror as a broken SPF setup (DMARC fails for "
                    "SPF)",
                    "correct the record; keep within 10 DNS-querying terms across "
                    "includes and 2 lookups that find nothing");
            } else {
                snprintf(obs, sizeof(obs), "%s: the record \"%s\" does not permit %s (%s decided)",
                         spf_result_name(o.result), shown, d->ips[k],
                         o.mechanism[0] ? o.mechanism : "no term");
                snprintf(fix, sizeof(fix),
                         "add ip%c:%s to the SPF record of %s, before its all term",
                         is_v6(d->ips[k]) ? '6' : '4', d->ips[k], dom);
                doctor_report_add(
                    d->report, DOCTOR_FAIL, "spf", subject, obs,
                    "receivers refuse (fail) or junk (softfail) mail from addresses the "
                    "domain's SPF record does not list",
                    fix);
            }
            doc_spf_free(s);
        }
    }
}

/* ---- DMARC ---- */

void doctor_dmarc(struct doctor *d)
{
    for (size_t i = 0; i < d->ndomains; i++) {
        const char *dom = d->domains[i];
        char name[300], obs[1024], fix[512];
        snprintf(name, sizeof(name), "_dmarc.%s", dom);
        const struct dns_result *r = doctor_resolve(d, DNS_TXT, name);
        if (r->status == DNS_TEMPFAIL || r->status == DNS_BADRESP) {
            snprintf(obs, sizeof(obs), "TXT lookup of %s failed: %s", name, r->detail);
            doctor_report_add(d->report, DOCTOR_ERROR, "dmarc", dom, obs, NULL, NULL);
            dns_result_unref(r);
            continue;
        }
        const char *rec = NULL;
        size_t nrec = 0;
        for (size_t k = 0; r->status == DNS_OK && k < r->count; k++)
            if (strncasecmp(r->items[k], "v=DMARC1", 8) == 0) {
                rec = r->items[k];
                nrec++;
            }
        if (nrec == 0) {
            snprintf(fix, sizeof(fix),
                     "publish a TXT record at %s: \"v=DMARC1; p=none; rua=mailto:postmaster@%s\", "
                     "read the reports, then raise p to quarantine or reject",
                     name, dom);
            doctor_report_add(
                d->report, DOCTOR_FAIL, "dmarc", dom, "no DMARC record",
                "Gmail and Yahoo require a DMARC record from bulk senders, and without "
                "one anyone can send mail with your domain in From:",
                fix);
            dns_result_unref(r);
            continue;
        }
        if (nrec > 1) {
            doctor_report_add(
                d->report, DOCTOR_FAIL, "dmarc", dom, "more than one DMARC record",
                "RFC 7489 6.6.3: receivers ignore DMARC when there are several records",
                "keep exactly one v=DMARC1 TXT record");
            dns_result_unref(r);
            continue;
        }
        /* Tags: v first, then p (none | quarantine | reject); adkim / aspf r or s. */
        char p[32] = "", adkim[8] = "r", aspf[8] = "r";
        int bad = 0;
        char copy[1024];
        snprintf(copy, sizeof(copy), "%s", rec);
        int first = 1;
        for (char *save = NULL, *tag = strtok_r(copy, ";", &save); tag;
             tag = strtok_r(NULL, ";", &save)) {
            while (isspace((unsigned char)*tag))
                tag++;
            char *end = tag + strlen(tag);
            while (end > tag && isspace((unsigned char)end[-1]))
                *--end = '\0';
            if (!*tag)
                continue;
            char *eq = strchr(tag, '=');
            if (!eq) {
                bad = 1;
                continue;
            }
            *eq = '\0';
            const char *val = eq + 1;
            while (isspace((unsigned char)*val))
                val++;
            if (first && strcasecmp(tag, "v") != 0)
                bad = 1;
            first = 0;
            if (strcasecmp(tag, "p") == 0)
                snprintf(p, sizeof(p), "%s", val);
            else if (strcasecmp(tag, "adkim") == 0)
                snprintf(adkim, sizeof(adkim), "%s", val);
            else if (strcasecmp(tag, "aspf") == 0)
                snprintf(aspf, sizeof(aspf), "%s", val);
        }
        int p_ok = strcasecmp(p, "none") == 0 || strcasecmp(p, "quarantine") == 0 ||
                   strcasecmp(p, "reject") == 0;
        if (bad || !p_ok) {
            snprintf(obs, sizeof(obs), "invalid record \"%.200s\"%s", rec,
                     !p_ok ? ": no valid p= (none, quarantine or reject)" : "");
            doctor_report_add(d->report, DOCTOR_FAIL, "dmarc", dom, obs,
                              "receivers ignore a DMARC record they cannot parse",
                              "write it as v=DMARC1; p=none|quarantine|reject; rua=mailto:...");
            dns_result_unref(r);
            continue;
        }
        char why[768];
        snprintf(
            why, sizeof(why),
            "mail with From: @%s passes DMARC when SPF passes for a MAIL FROM domain that "
            "aligns with it (aspf=%s: %s) or a DKIM signature with an aligned d= verifies "
            "(adkim=%s: %s)",
            dom, aspf,
            tolower((unsigned char)aspf[0]) == 's' ? "exactly that domain" : "it or a subdomain",
            adkim,
            tolower((unsigned char)adkim[0]) == 's' ? "exactly that domain" : "it or a subdomain");
        snprintf(obs, sizeof(obs), "p=%s, adkim=%s, aspf=%s", p, adkim, aspf);
        if (strcasecmp(p, "none") == 0)
            doctor_report_add(
                d->report, DOCTOR_WARN, "dmarc", dom, obs, why,
                "p=none only collects reports: once they show your mail aligned, raise "
                "p to quarantine or reject");
        else
            doctor_report_add(d->report, DOCTOR_OK, "dmarc", dom, obs, why, NULL);
        dns_result_unref(r);
    }
}

/* ---- MX ---- */

void doctor_mx(struct doctor *d)
{
    for (size_t i = 0; i < d->ndomains; i++) {
        const char *dom = d->domains[i];
        char obs[1024];
        const struct dns_result *r = doctor_resolve(d, DNS_MX, dom);
        if (r->status == DNS_TEMPFAIL || r->status == DNS_BADRESP) {
            snprintf(obs, sizeof(obs), "MX lookup failed: %s", r->detail);
            doctor_report_add(d->report, DOCTOR_ERROR, "mx", dom, obs, NULL, NULL);
        } else if (r->status == DNS_NXDOMAIN) {
            doctor_report_add(d->report, DOCTOR_FAIL, "mx", dom,
                              "the domain does not exist (NXDOMAIN)",
                              "receivers refuse mail from senders whose domain does not exist, and "
                              "replies cannot reach it",
                              "register the domain or correct the domain list");
        } else if (r->status != DNS_OK || r->count == 0) {
            doctor_report_add(d->report, DOCTOR_WARN, "mx", dom, "no MX record",
                              "mail for the domain then goes to its A record (RFC 5321 5.1); many "
                              "receivers also distrust senders whose domain cannot receive replies",
                              "publish an MX record naming this server's host name");
        } else if (r->count == 1 && r->items[0][0] == '\0') {
            doctor_report_add(d->report, DOCTOR_OK, "mx", dom,
                              "null MX (RFC 7505): the domain receives no mail", NULL, NULL);
        } else {
            size_t bad = 0, n = 0;
            char badlist[512] = "", all[512] = "";
            for (size_t k = 0; k < r->count && k < DOCTOR_MAX_NAMES; k++) {
                const char *host = r->items[k];
                const struct dns_result *a = doctor_resolve(d, DNS_A, host);
                const struct dns_result *aaaa = doctor_resolve(d, DNS_AAAA, host);
                int has =
                    (a->status == DNS_OK && a->count) || (aaaa->status == DNS_OK && aaaa->count);
                n += (size_t)snprintf(all + n, n < sizeof(all) ? sizeof(all) - n : 0, "%s%d %s",
                                      k ? ", " : "", r->prefs ? r->prefs[k] : 0, host);
                if (!has) {
                    size_t bl = strlen(badlist);
                    snprintf(badlist + bl, sizeof(badlist) - bl, "%s%s", bad ? ", " : "", host);
                    bad++;
                }
                dns_result_unref(a);
                dns_result_unref(aaaa);
            }
            if (bad) {
                char fix[768];
                snprintf(obs, sizeof(obs), "MX %s; without an address: %s", all, badlist);
                snprintf(fix, sizeof(fix),
                         "publish A (and AAAA) records for %s, or remove it from "
                         "the MX records",
                         badlist);
                doctor_report_add(
                    d->report, bad == r->count ? DOCTOR_FAIL : DOCTOR_WARN, "mx", dom, obs,
                    "an MX host without an address cannot receive mail: senders retry "
                    "and bounce",
                    fix);
            } else {
                snprintf(obs, sizeof(obs), "MX %s, all with addresses", all);
                doctor_report_add(d->report, DOCTOR_OK, "mx", dom, obs, NULL, NULL);
            }
        }
        dns_result_unref(r);
    }
}

/* ---- blocklists ---- */

void doctor_dnsbl(struct doctor *d)
{
    int any = 0;
    char **sites = plist_split(d->cfg->dnsbl_sites);
    for (size_t si = 0; sites[si]; si++) {
        struct dnsbl_list list;
        char err[512];
        if (dnsbl_list_parse(&list, sites[si], err, sizeof(err)) != 0) {
            doctor_report_add(d->report, DOCTOR_ERROR, "dnsbl", sites[si], err, NULL,
                              "correct the entry (postscreen syntax: zone[=filter][*weight])");
            dnsbl_list_free(&list);
            continue;
        }
        const char *zone = list.zone;
        if (list.weight <= 0) {
            dnsbl_list_free(&list); /* an allow list: being on it is not a problem */
            continue;
        }
        any = 1;
        for (size_t i = 0; i < d->nips; i++) {
            char qname[300], obs[1024], subject[400], fix[768], url[300];
            if (dns_list_name(d->ips[i], zone, qname, sizeof(qname)) != 0)
                continue;
            snprintf(subject, sizeof(subject), "%s on %s", d->ips[i], zone);
            const struct dns_result *r = doctor_resolve(d, DNS_A, qname);
            if (r->status == DNS_TEMPFAIL || r->status == DNS_BADRESP) {
                snprintf(obs, sizeof(obs), "lookup of %s failed: %s", qname, r->detail);
                doctor_report_add(d->report, DOCTOR_ERROR, "dnsbl", subject, obs, NULL, NULL);
            } else if (r->status != DNS_OK || !r->addrs) {
                doctor_report_add(d->report, DOCTOR_OK, "dnsbl", subject, "not listed", NULL, NULL);
            } else {
                int listed = 0, refused = 0;
                char answers[256] = "";
                for (size_t k = 0; k < r->count; k++) {
                    size_t al = strlen(answers);
                    snprintf(answers + al, sizeof(answers) - al, "%s%s", k ? ", " : "",
                             r->items[k]);
                    int verdict = dnsbl_list_answer(&list, r->addrs + 4 * k);
                    refused |= verdict < 0;
                    listed |= verdict > 0;
                }
                if (refused) {
                    snprintf(obs, sizeof(obs),
                             "%s answered %s: your resolver is refused by the "
                             "list, this is not a listing",
                             zone, answers);
                    doctor_report_add(
                        d->report, DOCTOR_WARN, "dnsbl", subject, obs,
                        "lists such as Spamhaus refuse queries through public or shared "
                        "resolvers (and over the free use limit): the check says "
                        "nothing about your address, and the daemon's own checks of "
                        "that list do not work either",
                        "query the list through your own recursive resolver (not a "
                        "public one), or use the list's data query service key");
                } else if (listed) {
                    const struct dns_result *t = doctor_resolve(d, DNS_TXT, qname);
                    dnsbl_list_delist(d->cfg->dnsbl_delist_urls, zone, url, sizeof(url));
                    snprintf(obs, sizeof(obs), "listed (%s)%s%s", answers,
                             t->status == DNS_OK && t->count ? ": " : "",
                             t->status == DNS_OK && t->count ? t->items[0] : "");
                    snprintf(fix, sizeof(fix),
                             "find and stop the cause first (a compromised account or web form, an "
                             "open relay, a spam bot behind this address), then ask %s for "
                             "delisting%s%s",
                             zone, url[0] ? " at " : "", url);
                    doctor_report_add(d->report, DOCTOR_FAIL, "dnsbl", subject, obs,
                                      "receivers that use the list refuse mail from this address",
                                      fix);
                    dns_result_unref(t);
                } else {
                    snprintf(obs, sizeof(obs),
                             "answer %s is outside the list's filter %s: not a "
                             "listing",
                             answers, list.filter);
                    doctor_report_add(d->report, DOCTOR_OK, "dnsbl", subject, obs, NULL, NULL);
                }
            }
            dns_result_unref(r);
        }
        dnsbl_list_free(&list);
    }
    plist_free(sites);
    if (!any && d->nips)
        doctor_report_add(
            d->report, DOCTOR_WARN, "dnsbl", "(none)",
            "no blocklist in dnsbl_sites to check against",
            "receivers check the big lists (Spamhaus, Barracuda, ...) against your address",
            "list them in dnsbl_sites, e.g. zen.spamhaus.org=127.0.0.[2..11]");
}
