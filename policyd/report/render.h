/*
 * render.h - the report as people read it (80 columns) or as scripts read it (JSON).
 *
 * Both forms say the same things: the totals, policyd's groups (refusals first, then what it
 * only logged), Postfix's own refusals, and how many Postfix rejects carry policyd's answer.
 * Rendering sorts the top lists of the groups in place; nothing else in the tally changes.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_REPORT_RENDER_H
#define POLICYD_REPORT_RENDER_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

struct tally;

struct render_options {
    const char *const *files; /* the inputs, as named ("-": standard input) */
    size_t nfiles;
    time_t since; /* 0: all lines */
    size_t top;   /* values shown per top list in the table (JSON: up to twice as many) */
};

/* render_text - the table, at most 80 columns wide. */
void render_text(FILE *f, struct tally *t, const struct render_options *o);

/* render_json - one JSON object (documented in README.md, "policyd report"). */
void render_json(FILE *f, struct tally *t, const struct render_options *o);

#endif
