/*
 * reply.c - format a policy reply. Clean text (the common case) is added without a copy;
 * text with CR, LF or other control characters that would break Postfix's line protocol is
 * copied with them replaced by spaces.
 */
#include "protocol/reply.h"

#include <stdlib.h>
#include <string.h>

int reply_write(struct evbuffer *out, const char *action)
{
    if (!action || !*action)
        action = "DUNNO";
    size_t len = strlen(action);
    if (strpbrk(action, "\r\n") == NULL)
        return evbuffer_add(out, "action=", 7) || evbuffer_add(out, action, len) ||
                       evbuffer_add(out, "\n\n", 2)
                   ? -1
                   : 0;
    char *clean = malloc(len);
    if (!clean)
        return -1;
    for (size_t i = 0; i < len; i++)
        clean[i] = (action[i] == '\r' || action[i] == '\n') ? ' ' : action[i];
    int rc = evbuffer_add(out, "action=", 7) || evbuffer_add(out, clean, len) ||
             evbuffer_add(out, "\n\n", 2);
    free(clean);
    return rc ? -1 : 0;
}
