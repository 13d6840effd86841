/*
 * reply.h - write a policy reply: "action=TEXT" LF, then an empty line.
 *
 * The text ends up in an SMTP reply or a message header, so it must be printable 7-bit ASCII,
 * and Postfix reads one line per attribute: whatever the caller passes (a TXT reason from DNS,
 * an 8-bit domain from a sender address), CR, LF and TAB become spaces and every other byte
 * outside 0x20..0x7e becomes '?'. The detail belongs in the log line, which keeps UTF-8.
 */
/* SPDX-License-Identifier: MIT */
#ifndef PROTOCOL_REPLY_H
#define PROTOCOL_REPLY_H

#include <event2/buffer.h>

/* reply_write - append the reply for action (NULL or "" means DUNNO) to out. Never fails: a
 * buffer that cannot grow is a memory shortage, logged and aborted (see xalloc.h). */
void reply_write(struct evbuffer *out, const char *action);

#endif
