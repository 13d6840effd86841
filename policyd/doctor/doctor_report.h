/*
 * doctor_report.h - the doctor's findings: each ok / warn / fail (or could not be checked)
 * with what was observed, why it matters and the fix, printed as a table or as JSON.
 *
 * The store copies every string it is given and owns its copies; it prints findings in the
 * order they were added. It knows nothing of the sections that fill it.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_DOCTOR_REPORT_H
#define POLICYD_DOCTOR_REPORT_H

#include <stdio.h>

enum doctor_status { DOCTOR_OK, DOCTOR_WARN, DOCTOR_FAIL, DOCTOR_ERROR /* could not check */ };

enum doctor_format {
    DOCTOR_TABLE,        /* one line per finding, then why and fix for the others */
    DOCTOR_TABLE_COLOUR, /* the same, statuses coloured (for a terminal) */
    DOCTOR_JSON          /* {"summary": {...}, "results": [...]} */
};

struct doctor_report;

/* doctor_report_new - an empty report. Never NULL. doctor_report_free - NULL ok. */
struct doctor_report *doctor_report_new(void);
void doctor_report_free(struct doctor_report *r);

/* doctor_report_add - one finding; strings are copied. why and fix may be NULL (nothing to
 * say, nothing to do). */
void doctor_report_add(struct doctor_report *r, enum doctor_status status, const char *check,
                       const char *subject, const char *observed, const char *why, const char *fix);

/* doctor_report_print - every finding and the counts, to f. */
void doctor_report_print(const struct doctor_report *r, enum doctor_format format, FILE *f);

/* doctor_report_exit_status - 2 if something could not be checked, else 1 if something
 * fails, else 0. */
int doctor_report_exit_status(const struct doctor_report *r);

#endif
