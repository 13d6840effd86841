/*
 * action.c - validate and classify access(5) actions the way Postfix's smtpd would accept them
 * from a policy server (smtpd_check.c, check_table_result): a known word, or a 4NN/5NN code
 * with an optional enhanced status code of the same class, then free text.
 */
/* SPDX-License-Identifier: MIT */
#include "protocol/action.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *word;
    enum action_kind kind;
    int needs_text; /* 1: text required, 0: optional, -1: none allowed */
} action_words[] = {
    {"OK", ACTION_OK, -1},
    {"DUNNO", ACTION_DUNNO, -1},
    {"REJECT", ACTION_REJECT, 0},
    {"DEFER", ACTION_DEFER, 0},
    {"DEFER_IF_PERMIT", ACTION_DEFER, 0},
    {"DEFER_IF_REJECT", ACTION_DEFER, 0},
    {"PREPEND", ACTION_PREPEND, 1},
    {"WARN", ACTION_WARN, 0},
    {"INFO", ACTION_WARN, 0},
    {"HOLD", ACTION_OTHER, 0},
    {"DISCARD", ACTION_OTHER, 0},
    {"FILTER", ACTION_OTHER, 1},
    {"REDIRECT", ACTION_OTHER, 1},
    {"BCC", ACTION_OTHER, 1},
};

/* action_header_ok - "Name: value" with a valid header field name (RFC 5322 ftext). */
static int action_header_ok(const char *text)
{
    const char *p = text;
    while (*p > 32 && *p < 127 && *p != ':')
        p++;
    return p > text && *p == ':';
}

int action_parse(const char *text, enum action_kind *kind, char *err, size_t errlen)
{
    if (!text || !*text) {
        snprintf(err, errlen, "empty action");
        return -1;
    }
    for (const char *p = text; *p; p++) {
        if (*p == '\r' || *p == '\n') {
            snprintf(err, errlen, "line breaks are not allowed in an action");
            return -1;
        }
    }
    if (isdigit((unsigned char)text[0])) {
        if (!(text[0] == '4' || text[0] == '5') || !isdigit((unsigned char)text[1]) ||
            !isdigit((unsigned char)text[2]) || (text[3] != 0 && text[3] != ' ')) {
            snprintf(err, errlen,
                     "'%s': a numeric action is a 4NN or 5NN reply code followed by text", text);
            return -1;
        }
        const char *p = text + 3;
        while (*p == ' ')
            p++;
        /* An enhanced status code X.Y.Z must have the reply code's class. */
        if (isdigit((unsigned char)p[0]) && p[1] == '.') {
            int a, b, c, n = 0;
            if (sscanf(p, "%1d.%3d.%3d%n", &a, &b, &c, &n) != 3 || (p[n] != 0 && p[n] != ' ')) {
                snprintf(err, errlen, "'%s': malformed enhanced status code", text);
                return -1;
            }
            if (p[0] != text[0]) {
                snprintf(err, errlen,
                         "'%s': enhanced status code %c.x.x does not match reply code %cNN", text,
                         p[0], text[0]);
                return -1;
            }
        }
        *kind = text[0] == '5' ? ACTION_REJECT : ACTION_DEFER;
        return 0;
    }
    size_t wlen = strcspn(text, " \t");
    const char *rest = text + wlen;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    for (size_t i = 0; i < sizeof(action_words) / sizeof(action_words[0]); i++) {
        if (strlen(action_words[i].word) != wlen || strncasecmp(action_words[i].word, text, wlen))
            continue;
        if (action_words[i].needs_text < 0 && *rest) {
            snprintf(err, errlen, "'%s': %s takes no text", text, action_words[i].word);
            return -1;
        }
        if (action_words[i].needs_text > 0 && !*rest) {
            snprintf(err, errlen, "'%s': %s needs an argument", text, action_words[i].word);
            return -1;
        }
        if (action_words[i].kind == ACTION_PREPEND && !action_header_ok(rest)) {
            snprintf(err, errlen, "'%s': PREPEND needs a header 'Name: value'", text);
            return -1;
        }
        *kind = action_words[i].kind;
        return 0;
    }
    snprintf(err, errlen,
             "'%.*s' is not an action (OK, DUNNO, REJECT, DEFER, DEFER_IF_PERMIT, "
             "DEFER_IF_REJECT, PREPEND, WARN, INFO, HOLD, DISCARD, FILTER, REDIRECT, BCC, 4NN "
             "text, 5NN text)",
             (int)wlen, text);
    return -1;
}

enum action_kind action_kind_of(const char *text)
{
    /* Called per request on actions validated at load time: classify, do not validate. */
    if (!text || !*text)
        return ACTION_DUNNO;
    if (text[0] == '4')
        return ACTION_DEFER;
    if (text[0] == '5')
        return ACTION_REJECT;
    size_t wlen = strcspn(text, " \t");
    for (size_t i = 0; i < sizeof(action_words) / sizeof(action_words[0]); i++)
        if (strlen(action_words[i].word) == wlen && !strncasecmp(action_words[i].word, text, wlen))
            return action_words[i].kind;
    return ACTION_OTHER;
}

int action_is_temporary_safe(const char *text)
{
    return action_kind_of(text) != ACTION_REJECT;
}

int action_is_bare_code(const char *a)
{
    if (!(isdigit((unsigned char)a[0]) && isdigit((unsigned char)a[1]) &&
          isdigit((unsigned char)a[2])))
        return 0;
    a += 3;
    while (*a == ' ')
        a++;
    while (isdigit((unsigned char)*a) || *a == '.')
        a++;
    while (*a == ' ')
        a++;
    return *a == 0;
}
