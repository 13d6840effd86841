/*
 * doctor.c - the "doctor" command: options, what to check (addresses, domains), the DNS engine
 * on a loop of its own, and the report (a table, coloured only on a terminal, or JSON).
 */
#include "policyd/doctor/doctor.h"

#include "policyd/config.h"
#include "policyd/dns/dns.h"
#include "policyd/lib/json.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static char *doctor_strdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

void doctor_report(struct doctor *d, enum doctor_status status, const char *check,
                   const char *subject, const char *observed, const char *why, const char *fix)
{
    if (d->nitems == d->capitems) {
        d->capitems = d->capitems ? d->capitems * 2 : 32;
        d->items = realloc(d->items, d->capitems * sizeof(*d->items));
        if (!d->items)
            abort();
    }
    struct doctor_item *it = &d->items[d->nitems++];
    it->status = status;
    it->check = doctor_strdup(check);
    it->subject = doctor_strdup(subject);
    it->observed = doctor_strdup(observed);
    it->why = doctor_strdup(why);
    it->fix = doctor_strdup(fix);
}

struct doctor_wait {
    const struct dns_result *r;
    int done;
};

static void doctor_resolved(const struct dns_result *r, void *arg)
{
    struct doctor_wait *w = arg;
    w->r = dns_result_ref(r);
    w->done = 1;
}

const struct dns_result *doctor_resolve(struct doctor *d, int type, const char *name)
{
    struct doctor_wait w = {NULL, 0};
    dns_lookup(d->dns, (enum dns_type)type, name, doctor_resolved, &w);
    while (!w.done)
        event_base_loop(d->base, EVLOOP_ONCE);
    return w.r;
}

/* add_word - append a copy of s to a list. */
static void add_word(char ***list, size_t *n, const char *s, size_t len)
{
    for (size_t i = 0; i < *n; i++)
        if (strlen((*list)[i]) == len && strncasecmp((*list)[i], s, len) == 0)
            return;
    *list = realloc(*list, (*n + 1) * sizeof(**list));
    if (!*list)
        abort();
    char *w = malloc(len + 1);
    if (!w)
        abort();
    memcpy(w, s, len);
    w[len] = '\0';
    (*list)[(*n)++] = w;
}

/* add_list - the words of a Postfix-style list (commas and/or whitespace); with domains_only,
 * table references (type:name), files (/...) and localhost names are left out. */
static void add_list(char ***list, size_t *n, const char *value, int domains_only)
{
    char **v = config_list_split(value);
    for (size_t i = 0; v[i]; i++) {
        const char *w = v[i];
        if (domains_only && (strchr(w, ':') || *w == '/' || *w == '!' || *w == '$' ||
                             strncasecmp(w, "localhost", 9) == 0 || !strchr(w, '.')))
            continue;
        add_word(list, n, w, strlen(w));
    }
    config_list_free(v);
}

static void doctor_usage(void)
{
    fprintf(stderr,
            "usage: policyd [-c FILE] doctor [--ip ADDR]... [--domain DOMAIN]... [--json]\n");
}

static const char *const status_names[] = {"ok", "warn", "fail", "error"};

static void print_json(const struct doctor *d, const size_t counts[4], FILE *f)
{
    fprintf(f, "{\"summary\": {\"ok\": %zu, \"warn\": %zu, \"fail\": %zu, \"error\": %zu},\n",
            counts[0], counts[1], counts[2], counts[3]);
    fprintf(f, " \"results\": [");
    for (size_t i = 0; i < d->nitems; i++) {
        const struct doctor_item *it = &d->items[i];
        fprintf(f, "%s\n  {\"status\": \"%s\", \"check\": ", i ? "," : "",
                status_names[it->status]);
        json_str(f, it->check);
        fprintf(f, ", \"subject\": ");
        json_str(f, it->subject);
        fprintf(f, ", \"observed\": ");
        json_str(f, it->observed);
        fprintf(f, ", \"why\": ");
        json_str(f, it->why);
        fprintf(f, ", \"fix\": ");
        json_str(f, it->fix);
        fprintf(f, "}");
    }
    fprintf(f, "\n ]}\n");
}

static void print_table(const struct doctor *d, const size_t counts[4], FILE *f, int color)
{
    static const char *const colors[] = {"\033[32m", "\033[33m", "\033[31m", "\033[35m"};
    static const char *const labels[] = {"OK", "WARN", "FAIL", "ERROR"};
    for (size_t i = 0; i < d->nitems; i++) {
        const struct doctor_item *it = &d->items[i];
        fprintf(f, "%s%-5s%s %-8s %-28s %s\n", color ? colors[it->status] : "", labels[it->status],
                color ? "\033[0m" : "", it->check, it->subject, it->observed);
        if (it->status != DOCTOR_OK && it->why[0])
            fprintf(f, "      why: %s\n", it->why);
        if (it->status != DOCTOR_OK && it->fix[0])
            fprintf(f, "      fix: %s\n", it->fix);
    }
    fprintf(f, "\n%zu ok, %zu warn, %zu fail, %zu could not be checked\n", counts[0], counts[1],
            counts[2], counts[3]);
}

int doctor_main(const struct config *cfg, int argc, char **argv)
{
    struct doctor d;
    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    int json = 0;
    char **cli_ips = NULL, **cli_domains = NULL;
    size_t ncli_ips = 0, ncli_domains = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--ip") == 0 && i + 1 < argc) {
            unsigned char buf[16];
            const char *a = argv[++i];
            if (inet_pton(AF_INET, a, buf) != 1 && inet_pton(AF_INET6, a, buf) != 1) {
                fprintf(stderr, "policyd doctor: --ip %s: not an IP address\n", a);
                return 2;
            }
            add_word(&cli_ips, &ncli_ips, a, strlen(a));
        } else if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc) {
            add_word(&cli_domains, &ncli_domains, argv[i + 1], strlen(argv[i + 1]));
            i++;
        } else {
            doctor_usage();
            return 2;
        }
    }
    /* What to check: the command line, else the configuration, else Postfix's settings. */
    if (ncli_ips) {
        d.ips = cli_ips;
        d.nips = ncli_ips;
    } else {
        add_list(&d.ips, &d.nips, cfg->doctor_addresses, 0);
        if (!d.nips) {
            add_list(&d.ips, &d.nips, cfg->smtp_bind_address, 0);
            add_list(&d.ips, &d.nips, cfg->smtp_bind_address6, 0);
        }
    }
    if (ncli_domains) {
        d.domains = cli_domains;
        d.ndomains = ncli_domains;
    } else {
        add_list(&d.domains, &d.ndomains, cfg->doctor_domains, 1);
        if (!d.ndomains) {
            add_list(&d.domains, &d.ndomains, cfg->mydomain, 1);
            add_list(&d.domains, &d.ndomains, cfg->mydestination, 1);
            add_list(&d.domains, &d.ndomains, cfg->virtual_mailbox_domains, 1);
            add_list(&d.domains, &d.ndomains, cfg->virtual_alias_domains, 1);
        }
    }

    d.base = event_base_new();
    struct dns_options opts = {.servers = cfg->dns_servers,
                               .timeout_ms = cfg->dns_timeout,
                               .tries = (int)cfg->dns_tries,
                               .cache_size = 10000,
                               .ttl_min_ms = 0,
                               .ttl_max_ms = 3600000,
                               .error_ttl_ms = 60000};
    char err[512];
    d.dns = d.base ? dns_new(d.base, &opts, err, sizeof(err)) : NULL;
    if (!d.dns) {
        fprintf(stderr, "policyd doctor: cannot start the DNS engine: %s\n",
                d.base ? err : "no event base");
        return 2;
    }

    if (!d.nips)
        doctor_report(&d, DOCTOR_WARN, "address", "(none)", "no outbound address to check",
                      "the PTR, SPF and blocklist checks need the address this server sends from",
                      "pass --ip ADDR, or set doctor_addresses (or Postfix's smtp_bind_address)");
    if (!d.ndomains)
        doctor_report(&d, DOCTOR_WARN, "domain", "(none)", "no domain to check",
                      "the SPF, DKIM, DMARC and MX checks need the domains this server sends for",
                      "pass --domain DOMAIN, or set doctor_domains (or Postfix's mydomain)");
    doctor_addresses(&d);
    doctor_spf(&d);
    doctor_dkim(&d);
    doctor_dmarc(&d);
    doctor_mx(&d);
    doctor_dnsbl(&d);
    doctor_tls(&d);
    doctor_postfix(&d);
    doctor_queue(&d);

    size_t counts[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < d.nitems; i++)
        counts[d.items[i].status]++;
    if (json)
        print_json(&d, counts, stdout);
    else
        print_table(&d, counts, stdout, isatty(1));
    fflush(stdout);
    int rc = counts[DOCTOR_ERROR] ? 2 : counts[DOCTOR_FAIL] ? 1 : 0;

    for (size_t i = 0; i < d.nitems; i++) {
        free(d.items[i].check);
        free(d.items[i].subject);
        free(d.items[i].observed);
        free(d.items[i].why);
        free(d.items[i].fix);
    }
    free(d.items);
    for (size_t i = 0; i < d.nips; i++)
        free(d.ips[i]);
    for (size_t i = 0; i < d.ndomains; i++)
        free(d.domains[i]);
    free(d.ips);
    free(d.domains);
    dns_free(d.dns);
    event_base_free(d.base);
    return rc;
}
