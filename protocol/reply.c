/*
 * reply.c - format a policy reply. Clean text (the common case: printable ASCII) is added
 * without a copy; anything else is copied with line breaks and tabs turned into spaces and
 * other bytes (controls, DEL, 8-bit) into '?', so no raw byte reaches an SMTP client.
 */
/* SPDX-License-Identifier: MIT */
#include "protocol/reply.h"

#include "policyd/lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

/* reply_printable - 1 for a byte that may stand in an SMTP reply as it is. */
static int reply_printable(unsigned char c)
{
    return c >= 0x20 && c < 0x7f;
}

void reply_write(struct evbuffer *out, const char *action)
{
    if (!action || !*action)
        action = "DUNNO";
    size_t len = strlen(action), i = 0;
    char *clean = NULL;
    while (i < len && reply_printable((unsigned char)action[i]))
        i++;
    if (i < len) {
        clean = xmalloc(len);
        memcpy(clean, action, i);
        for (; i < len; i++) {
            unsigned char c = (unsigned char)action[i];
            clean[i] = reply_printable(c)                    ? (char)c
                       : c == '\r' || c == '\n' || c == '\t' ? ' '
                                                             : '?';
        }
    }
    /* An evbuffer we own, never frozen, refuses to grow only for want of memory. */
    if (evbuffer_add(out, "action=", 7) || evbuffer_add(out, clean ? clean : action, len) ||
        evbuffer_add(out, "\n\n", 2))
        xalloc_fail(len + 9);
    free(clean);
}
