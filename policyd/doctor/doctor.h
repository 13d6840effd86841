/*
 * doctor.h - "policyd -c FILE doctor": this server's deliverability seen from a receiver,
 * each finding ok / warn / fail with what was observed, why it matters and the fix.
 *
 * The doctor is a one-shot command, not the daemon: it may wait. It resolves through the same
 * DNS engine as the daemon (dns_servers, the same parser), one question at a time, on its own
 * event loop. It is made of sections (address, spf, dkim, dmarc, mx, dnsbl, tls, postfix,
 * queue), all run by default, or those chosen with --section NAME.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_DOCTOR_H
#define POLICYD_DOCTOR_H

struct config;

/* doctor_main - run the command: argv[0] is "doctor", then its options ([--ip ADDR]...
 * [--domain DOMAIN]... [--section NAME]... [--json]). Prints the report on standard output,
 * usage errors on standard error; returns the exit status (0 nothing fails, 1 something
 * fails, 2 a check could not run or the command line is wrong). */
int doctor_main(const struct config *cfg, int argc, char **argv);

#endif
