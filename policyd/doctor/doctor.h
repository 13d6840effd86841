/*
 * doctor.h - "policyd -c FILE doctor": this server's deliverability seen from a receiver,
 * each finding ok / warn / fail with what was observed, why it matters and the fix.
 *
 * The doctor is a one-shot command, not the daemon: it may wait. It resolves through the same
 * DNS engine as the daemon (dns_servers, the same parser), one question at a time, on its own
 * event loop. Each section (doctor_*.c) appends findings with doctor_report().
 */
#ifndef POLICYD_DOCTOR_H
#define POLICYD_DOCTOR_H

#include <stddef.h>

struct config;
struct dns;
struct dns_result;
struct event_base;

enum doctor_status { DOCTOR_OK, DOCTOR_WARN, DOCTOR_FAIL, DOCTOR_ERROR /* could not check */ };

struct doctor_item {
    enum doctor_status status;
    char *check, *subject, *observed, *why, *fix;
};

struct doctor {
    const struct config *cfg;
    struct event_base *base;
    struct dns *dns;
    char **ips; /* outbound addresses */
    size_t nips;
    char **domains; /* domains to check */
    size_t ndomains;
    struct doctor_item *items;
    size_t nitems, capitems;
};

/* doctor_main - run the command: argv[0] is "doctor". Prints the report; returns the exit
 * status (0 nothing fails, 1 something fails, 2 a check could not run). */
int doctor_main(const struct config *cfg, int argc, char **argv);

/* doctor_report - one finding. why and fix may be NULL (nothing to say / nothing to do). */
void doctor_report(struct doctor *d, enum doctor_status status, const char *check,
                   const char *subject, const char *observed, const char *why, const char *fix);

/* doctor_resolve - ask (type, name) and wait for the answer (a reference: dns_result_unref). */
const struct dns_result *doctor_resolve(struct doctor *d, int type, const char *name);

/* The sections, in report order. */
void doctor_addresses(struct doctor *d); /* PTR, forward confirmation, HELO name */
void doctor_spf(struct doctor *d);       /* one valid record that permits each address */
void doctor_dkim(struct doctor *d);      /* signing keys against DNS (libopendkim) */
void doctor_dmarc(struct doctor *d);     /* _dmarc record, alignment */
void doctor_mx(struct doctor *d);        /* MX hosts with addresses */
void doctor_dnsbl(struct doctor *d);     /* outbound addresses against dnsbl_sites */
void doctor_tls(struct doctor *d);       /* Postfix's server certificate (OpenSSL) */
void doctor_postfix(struct doctor *d);   /* check_policy_service wiring, open relay, timeouts */
void doctor_queue(struct doctor *d);     /* deferred mail grouped by reason (postqueue -j) */

#endif
