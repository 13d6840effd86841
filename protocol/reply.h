/*
 * reply.h - write a policy reply: "action=TEXT" LF, then an empty line.
 *
 * Postfix reads one line per attribute, so the action text must never carry CR, LF or NUL:
 * they are replaced by spaces here, whatever the caller passes (a TXT reason from DNS, say).
 */
#ifndef PROTOCOL_REPLY_H
#define PROTOCOL_REPLY_H

#include <event2/buffer.h>

/* reply_write - append the reply for action (NULL or "" means DUNNO) to out. Never fails: a
 * buffer that cannot grow is a memory shortage, logged and aborted (see xalloc.h). */
void reply_write(struct evbuffer *out, const char *action);

#endif
