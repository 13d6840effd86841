/*
 * action.h - the access(5) actions a policy server may answer, classified and validated.
 *
 * Used to refuse bad actions in the configuration (FILE:LINE: reason) and to know what an
 * action means: permanent reject, temporary defer, a header to prepend, or no decision.
 */
/* SPDX-License-Identifier: MIT */
#ifndef PROTOCOL_ACTION_H
#define PROTOCOL_ACTION_H

#include <stddef.h>

enum action_kind {
    ACTION_DUNNO,   /* DUNNO: no decision */
    ACTION_OK,      /* OK: accept (never used for relay: makes an open relay) */
    ACTION_REJECT,  /* REJECT [text], 5NN [text] */
    ACTION_DEFER,   /* DEFER, DEFER_IF_PERMIT, DEFER_IF_REJECT, 4NN [text] */
    ACTION_PREPEND, /* PREPEND header: value */
    ACTION_WARN,    /* WARN text, INFO text: log only */
    ACTION_OTHER    /* HOLD, DISCARD, FILTER, REDIRECT, BCC: accepted as written */
};

/*
 * action_parse - classify an action. Returns 0 and sets *kind, or -1 with a reason in err:
 * unknown word, numeric code not 4NN/5NN, enhanced status code whose class differs from the
 * reply code ("550 4.7.1"), PREPEND without "name: value", CR/LF/NUL in the text.
 */
int action_parse(const char *text, enum action_kind *kind, char *err, size_t errlen);

/* action_kind_of - the kind of an action known to be valid (ACTION_DUNNO for NULL). */
enum action_kind action_kind_of(const char *text);

/* action_is_temporary_safe - 1 unless the action rejects permanently (5NN, REJECT). Used to
 * keep temporary trouble from ever giving a 5xx. */
int action_is_temporary_safe(const char *text);

/* action_is_bare_code - 1 for an action that is only a reply code with an optional enhanced
 * status code ("450", "450 4.7.1"): the check then appends its own text. */
int action_is_bare_code(const char *text);

#endif
