/*
 * reply.c - format a policy reply. Clean text (the common case) is added without a copy;
 * text with CR, LF or other control characters that would break Postfix's line protocol is
 * copied with them replaced by spaces.
 */
#include "protocol/reply.h"

#include "policyd/lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

void reply_write(struct evbuffer *out, const char *action)
{
    if (!action || !*action)
        action = "DUNNO";
    size_t len = strlen(action);
    char *clean = NULL;
    if (strpbrk(action, "\r\n") != NULL) {
        clean = xmalloc(len);
        for (size_t i = 0; i < len; i++)
            clean[i] = (action[i] == '\r' || action[i] == '\n') ? ' ' : action[i];
    }
    /* An evbuffer we own, never frozen, refuses to grow only for want of memory. */
    if (evbuffer_add(out, "action=", 7) || evbuffer_add(out, clean ? clean : action, len) ||
        evbuffer_add(out, "\n\n", 2))
        xalloc_fail(len + 9);
    free(clean);
}
