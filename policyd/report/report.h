/*
 * report.h - "policyd report": what policyd refused and why, and what Postfix refused by
 * itself, summarised from mail logs (plain or gzip; syslog, rsyslog ISO 8601 or journalctl
 * output). A one-shot command: it reads files, prints, exits; it needs no configuration.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_REPORT_H
#define POLICYD_REPORT_H

#include <stddef.h>

/* report_main - run the command; argv[0] is "report". Prints the report on standard output
 * and problems on standard error. Returns the exit status: 0, 1 if an input could not be read
 * (the report covers the rest), 2 for a usage error. */
int report_main(int argc, char **argv);

/* report_rotations - base (e.g. /var/log/mail.log) and its rotations that exist: base.N,
 * base.N.gz, base-DATE, base-DATE.gz, oldest first. Returns a NULL-terminated array of
 * allocated names (free each and the array); *n gets their number (0: none exist). */
char **report_rotations(const char *base, size_t *n);

#endif
