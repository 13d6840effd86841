/*
 * doctor.c - the "doctor" command's driver: options, what to check (addresses, domains), the
 * table of sections, the DNS engine on a loop of its own, and the report's output.
 *
 * Each section is a row {name, description, needs, run}: --section NAME picks rows (all of
 * them by default) and they run in table order, which is the report's order. What a section
 * needs (outbound addresses, domains, DNS) decides which preliminary warnings are given and
 * whether the DNS engine is started at all. The driver owns the context and the report.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/doctor/doctor.h"

#include "policyd/config.h"
#include "policyd/dns/dns.h"
#include "policyd/lib/plist.h"
#include "policyd/doctor/doctor_report.h"
#include "policyd/doctor/doctor_section.h"
#include "policyd/lib/xalloc.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum {
    NEEDS_IPS = 1,     /* the outbound addresses */
    NEEDS_DOMAINS = 2, /* the domains mail is sent for */
    NEEDS_DNS = 4
};

static const struct doctor_section {
    const char *name;
    const char *description;
    unsigned needs;
    void (*run)(struct doctor *d);
} doctor_sections[] = {
    {"address", "reverse DNS (PTR, forward-confirmed) and HELO name of each outbound address",
     NEEDS_IPS | NEEDS_DNS, doctor_addresses},
    {"spf", "one valid SPF record per domain, permitting each outbound address",
     NEEDS_IPS | NEEDS_DOMAINS | NEEDS_DNS, doctor_spf},
    {"dkim", "each DKIM signing key against its published record", NEEDS_DNS, doctor_dkim},
    {"dmarc", "the DMARC record of each domain", NEEDS_DOMAINS | NEEDS_DNS, doctor_dmarc},
    {"mx", "the MX hosts of each domain, each with an address", NEEDS_DOMAINS | NEEDS_DNS,
     doctor_mx},
    {"dnsbl", "each outbound address against dnsbl_sites", NEEDS_IPS | NEEDS_DNS, doctor_dnsbl},
    {"tls", "Postfix's server certificate and key (smtpd_tls_*)", 0, doctor_tls},
    {"postfix",
     "Postfix's wiring in main.cf: check_policy_service, open relay, default action, timeout", 0,
     doctor_wiring},
    {"queue", "deferred mail grouped by reason (postqueue -j)", 0, doctor_queue},
};
#define NSECTIONS (sizeof(doctor_sections) / sizeof(doctor_sections[0]))

/* doctor_section_find - the index of the section called name, or -1. */
static int doctor_section_find(const char *name)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcasecmp(doctor_sections[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* add_word - append a copy of s to a list, unless it is there already. */
static void add_word(char ***list, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcasecmp((*list)[i], s) == 0)
            return;
    *list = xreallocarray(*list, *n + 1, sizeof(**list));
    (*list)[(*n)++] = xstrdup(s);
}

/* add_list - the words of a Postfix-style list (commas and/or whitespace); with domains_only,
 * table references (type:name), files (/...) and localhost names are left out. */
static void add_list(char ***list, size_t *n, const char *value, int domains_only)
{
    char **v = plist_split(value);
    for (size_t i = 0; v[i]; i++) {
        const char *w = v[i];
        if (domains_only && (strchr(w, ':') || *w == '/' || *w == '!' || *w == '$' ||
                             strncasecmp(w, "localhost", 9) == 0 || !strchr(w, '.')))
            continue;
        add_word(list, n, w);
    }
    plist_free(v);
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void doctor_usage(void)
{
    fprintf(stderr, "usage: policyd [-c FILE] doctor [--ip ADDR]... [--domain DOMAIN]... "
                    "[--section NAME]... [--json]\n");
}

/* doctor_unknown_section - the error for --section NAME that is not one, with the list. */
static void doctor_unknown_section(const char *name)
{
    fprintf(stderr, "policyd doctor: --section %s: no such section; the sections are:\n", name);
    for (size_t i = 0; i < NSECTIONS; i++)
        fprintf(stderr, "  %-8s %s\n", doctor_sections[i].name, doctor_sections[i].description);
}

/* doctor_targets - what to check: the command line, else the configuration, else Postfix's
 * settings. Takes over the command line's lists. */
static void doctor_targets(struct doctor *d, char **cli_ips, size_t ncli_ips, char **cli_domains,
                           size_t ncli_domains)
{
    const struct config *cfg = d->cfg;
    if (ncli_ips) {
        d->ips = cli_ips;
        d->nips = ncli_ips;
    } else {
        add_list(&d->ips, &d->nips, cfg->doctor_addresses, 0);
        if (!d->nips) {
            add_list(&d->ips, &d->nips, cfg->smtp_bind_address, 0);
            add_list(&d->ips, &d->nips, cfg->smtp_bind_address6, 0);
        }
    }
    if (ncli_domains) {
        d->domains = cli_domains;
        d->ndomains = ncli_domains;
    } else {
        add_list(&d->domains, &d->ndomains, cfg->doctor_domains, 1);
        if (!d->ndomains) {
            add_list(&d->domains, &d->ndomains, cfg->mydomain, 1);
            add_list(&d->domains, &d->ndomains, cfg->mydestination, 1);
            add_list(&d->domains, &d->ndomains, cfg->virtual_mailbox_domains, 1);
            add_list(&d->domains, &d->ndomains, cfg->virtual_alias_domains, 1);
        }
    }
}

/* doctor_dns_start - the DNS engine, as the daemon configures it. 0, or -1 after a message. */
static int doctor_dns_start(struct doctor *d)
{
    const struct config *cfg = d->cfg;
    struct dns_options opts = {.servers = cfg->dns_servers,
                               .timeout_ms = cfg->dns_timeout,
                               .tries = (int)cfg->dns_tries,
                               .cache_size = 10000,
                               .ttl_min_ms = 0,
                               .ttl_max_ms = 3600000,
                               .error_ttl_ms = 60000};
    char err[512];
    d->base = event_base_new();
    d->dns = d->base ? dns_new(d->base, &opts, err, sizeof(err)) : NULL;
    if (!d->dns) {
        fprintf(stderr, "policyd doctor: cannot start the DNS engine: %s\n",
                d->base ? err : "no event base");
        return -1;
    }
    return 0;
}

int doctor_main(const struct config *cfg, int argc, char **argv)
{
    struct doctor d;
    int json = 0, rc = 2;
    char **cli_ips = NULL, **cli_domains = NULL;
    size_t ncli_ips = 0, ncli_domains = 0;
    int chosen[NSECTIONS] = {0}, any_chosen = 0;

    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--ip") == 0 && i + 1 < argc) {
            unsigned char buf[16];
            const char *a = argv[++i];
            if (inet_pton(AF_INET, a, buf) != 1 && inet_pton(AF_INET6, a, buf) != 1) {
                fprintf(stderr, "policyd doctor: --ip %s: not an IP address\n", a);
                goto out;
            }
            add_word(&cli_ips, &ncli_ips, a);
        } else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
            add_word(&cli_domains, &ncli_domains, argv[++i]);
        } else if (strcmp(argv[i], "--section") == 0 && i + 1 < argc) {
            int k = doctor_section_find(argv[++i]);
            if (k < 0) {
                doctor_unknown_section(argv[i]);
                goto out;
            }
            chosen[k] = any_chosen = 1;
        } else {
            doctor_usage();
            goto out;
        }
    }
    unsigned needs = 0;
    for (size_t k = 0; k < NSECTIONS; k++) {
        if (!any_chosen)
            chosen[k] = 1;
        if (chosen[k])
            needs |= doctor_sections[k].needs;
    }
    doctor_targets(&d, cli_ips, ncli_ips, cli_domains, ncli_domains);
    cli_ips = cli_domains = NULL;
    ncli_ips = ncli_domains = 0;
    if ((needs & NEEDS_DNS) && doctor_dns_start(&d) != 0)
        goto out;

    d.report = doctor_report_new();
    if ((needs & NEEDS_IPS) && !d.nips)
        doctor_report_add(
            d.report, DOCTOR_WARN, "address", "(none)", "no outbound address to check",
            "the PTR, SPF and blocklist checks need the address this server sends from",
            "pass --ip ADDR, or set doctor_addresses (or Postfix's smtp_bind_address)");
    if ((needs & NEEDS_DOMAINS) && !d.ndomains)
        doctor_report_add(d.report, DOCTOR_WARN, "domain", "(none)", "no domain to check",
                          "the SPF, DKIM, DMARC and MX checks need the domains this server "
                          "sends for",
                          "pass --domain DOMAIN, or set doctor_domains (or Postfix's mydomain)");
    for (size_t k = 0; k < NSECTIONS; k++)
        if (chosen[k])
            doctor_sections[k].run(&d);

    doctor_report_print(d.report,
                        json        ? DOCTOR_JSON
                        : isatty(1) ? DOCTOR_TABLE_COLOUR
                                    : DOCTOR_TABLE,
                        stdout);
    fflush(stdout);
    rc = doctor_report_exit_status(d.report);

out:
    doctor_report_free(d.report);
    free_list(cli_ips, ncli_ips);
    free_list(cli_domains, ncli_domains);
    free_list(d.ips, d.nips);
    free_list(d.domains, d.ndomains);
    dns_free(d.dns);
    if (d.base)
        event_base_free(d.base);
    return rc;
}
