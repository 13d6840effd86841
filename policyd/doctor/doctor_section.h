/*
 * doctor_section.h - what a section of the doctor gets (private to policyd/doctor/): the
 * configuration, what to check (outbound addresses, domains), a DNS engine it may wait on,
 * and the report to add its findings to; and the sections themselves, one file each (the DNS
 * family shares doctor_dns.c). The driver (doctor.c) owns all of it; a section owns nothing
 * past its return.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_DOCTOR_SECTION_H
#define POLICYD_DOCTOR_SECTION_H

#include "policyd/doctor/doctor_report.h"

#include <stddef.h>

struct config;
struct dns;
struct dns_result;
struct event_base;

struct doctor {
    const struct config *cfg;
    struct event_base *base;
    struct dns *dns; /* NULL unless a chosen section needs DNS */
    char **ips;      /* outbound addresses */
    size_t nips;
    char **domains; /* domains to check */
    size_t ndomains;
    struct doctor_report *report;
};

/* doctor_resolve - ask (type, name) and wait for the answer (a reference: dns_result_unref).
 * Only for sections that declare they need DNS. */
const struct dns_result *doctor_resolve(struct doctor *d, int type, const char *name);

/* The sections (each adds its findings to d->report). */
void doctor_addresses(struct doctor *d); /* PTR, forward confirmation, HELO name */
void doctor_spf(struct doctor *d);       /* one valid record that permits each address */
void doctor_dkim(struct doctor *d);      /* signing keys against DNS (libopendkim) */
void doctor_dmarc(struct doctor *d);     /* _dmarc record, alignment */
void doctor_mx(struct doctor *d);        /* MX hosts with addresses */
void doctor_dnsbl(struct doctor *d);     /* outbound addresses against dnsbl_sites */
void doctor_tls(struct doctor *d);       /* Postfix's server certificate (OpenSSL) */
void doctor_wiring(struct doctor *d);    /* check_policy_service wiring, open relay, timeouts */
void doctor_queue(struct doctor *d);     /* deferred mail grouped by reason (postqueue -j) */

#endif
