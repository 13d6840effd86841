/*
 * tally.h - the report's counts: policyd's diagnoses grouped by check and cause, Postfix's
 * rejects grouped by reply, and which Postfix rejects carry policyd's answer.
 *
 * Memory is bounded whatever the input: at most TALLY_MAX_GROUPS groups of each side (more
 * fall into one "other" group), TALLY_TOP values per top list (topk.h), and a capped table
 * for matching Postfix's rejects to policyd's refusals. The tally owns everything in it;
 * lines handed to tally_add are not kept. Groups are readable by the output (render.c).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_REPORT_TALLY_H
#define POLICYD_REPORT_TALLY_H

#include "policyd/report/logline.h"
#include "policyd/report/topk.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TALLY_MAX_GROUPS 400
#define TALLY_TOP 48
#define TALLY_TEXT_MAX 2048 /* longest cause, fix or example kept */

/* The matching window: a Postfix reject carries policyd's answer if policyd refused the same
 * client address, sender and recipient in the same minute or the one before or after. */
#define TALLY_MATCH_SECONDS 60

enum tally_side { TALLY_POLICYD, TALLY_POSTFIX };

struct tally_group {
    enum tally_side side;
    int other; /* the catch-all once TALLY_MAX_GROUPS are taken */
    uint64_t hash;
    char *key;
    /* policyd: check, cause code (or NULL) and the normalised cause (grouping without a code).
     * Postfix: check is NULL; code, dsn, the normalised reply text as label, the first stage. */
    char *check, *cause_code, *label, *code, *dsn, *stage;
    int warning_only;
    unsigned long count;
    unsigned long verdicts[LOGV_COUNT];
    unsigned long full, repeats; /* policyd: lines with their own explanation, short repeats */
    unsigned long refusals;      /* policyd: enforced rejects and defers (and refusing deadlines) */
    unsigned long by_policyd;    /* Postfix: rejects matched to a policyd refusal */
    time_t first, last;
    char *reply; /* policyd: the first reply text seen (of a full line, if any) */
    int reply_full;
    char *cause; /* policyd: cause of the first full line; Postfix: a whole example reply */
    char *fix;   /* policyd: fix of the first full line */
    struct topk clients, senders, recipients; /* addresses; sender and recipient domains */
};

struct tally_totals {
    unsigned long lines, bytes, foreign, malformed, too_long, before_since;
    unsigned long diagnoses, deadlines, dnsbl_scores, postfix_rejects;
    unsigned long policyd_refusals;   /* enforced: what should have a Postfix reject line */
    unsigned long matched;            /* Postfix rejects matched to a policyd refusal */
    unsigned long unmatched_refusals; /* policyd refusals with no Postfix reject found */
    unsigned long match_untracked;    /* lines left out of matching: its table was full */
    time_t first, last;
};

struct tally;

/* tally_new - an empty tally; since > 0 skips lines older than it. */
struct tally *tally_new(time_t since);

/* tally_add - count one parsed line of bytes length (foreign lines too, for the totals). */
void tally_add(struct tally *t, const struct logline *line, size_t bytes);

/* tally_too_long - count a line that was cut or dropped for its length. */
void tally_too_long(struct tally *t);

/* tally_finish - match Postfix's rejects to policyd's refusals and sort the groups, most
 * counted first. Call once, after the last tally_add. */
void tally_finish(struct tally *t);

/* tally_groups - the groups of one side (after tally_finish); *n gets their number. */
struct tally_group *const *tally_groups(const struct tally *t, enum tally_side side, size_t *n);

/* tally_totals - the line counts. */
const struct tally_totals *tally_totals(const struct tally *t);

/* tally_client_refused - 1 if policyd refused (or would have refused) a request from this
 * client address in the lines read, 0 if not (or if too many clients were seen to tell). */
int tally_client_refused(const struct tally *t, const char *addr);

/* tally_free - everything, NULL accepted. */
void tally_free(struct tally *t);

#endif
