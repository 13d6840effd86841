/*
 * causes.h - the one table of cause codes: every distinct explanation a diagnosis line can give
 * ("relay.not_mynetworks"), with its meaning and its fix, documented once.
 *
 * A diagnosis line carries `cause_code=CODE`; the checks pass the code literal to the verdict
 * calls of checks/check.h. This table is the manual's source: etc/man/mkcauses.c turns it into
 * policyd-causes(7), and test/daemon/test_causes.sh fails when a code the sources use is missing
 * here (or in the generated page) and when a code here is used by no source. Pure data: no
 * dependencies, so the generator links this file alone.
 */
/* SPDX-License-Identifier: MIT */
#ifndef CHECKS_CAUSES_H
#define CHECKS_CAUSES_H

#include <stddef.h>

struct cause {
    const char *code;    /* CHECK.CAUSE: lower case, digits and '_' */
    const char *verdict; /* what policyd answers by default ("554 5.7.1 (relay_action)") */
    const char *meaning; /* what happened, in one or two sentences */
    const char *fix;     /* what to do about it */
};

/* causes_table - the documented causes, grouped by check in the order of the manual. */
extern const struct cause causes_table[];
extern const size_t causes_count;

/* causes_find - the entry of code, or NULL. */
const struct cause *causes_find(const char *code);

#endif
