/*
 * clientlist.h - a client list in postgrey's whitelist_clients format (Debian ships one as
 * /etc/postgrey/whitelist_clients), read the way postgrey 1.37 reads it.
 *
 * One entry a line; '#' starts a comment anywhere; blank lines are skipped. An entry is
 *   /REGEX/            a Perl regular expression, without case, matched on the client name
 *   a.b.c.d[/N]        an IPv4 address or network (host bits ignored, as NetAddr::IP does)
 *   a.b.c  or  a.b     the first three (/24) or two (/16) octets of an IPv4 address
 *   x:y::z[/N]         an IPv6 address or network (any entry with two colons)
 *   example.com        the name and every name under it (any other word), without case
 * Names and regexes are matched on the forward-confirmed client name only; addresses and
 * networks on the client address. A regex is compiled by POSIX regcomp (extended, no case),
 * with Perl's \d \w \s \h (and \D \W \S \H), \A \z, (?:...) and lazy quantifiers translated
 * to their POSIX forms; what POSIX cannot say (look-arounds, \p{...}, possessive quantifiers)
 * refuses the line. Unlike postgrey, which warns and goes on, a line that cannot be read
 * refuses the whole file, with PATH:LINE: reason, so a mistake never whitelists quietly.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_MAPS_CLIENTLIST_H
#define POLICYD_MAPS_CLIENTLIST_H

#include <stddef.h>

struct clientlist;

/* clientlist_load - read path (opened with file_open_regular, so a configuration load records
 * it for the readable-by-user check). NULL with "PATH:LINE: reason" (or "PATH: reason") in
 * err. An empty file gives an empty list. */
struct clientlist *clientlist_load(const char *path, char *err, size_t errlen);

/* clientlist_free - accepts NULL. */
void clientlist_free(struct clientlist *cl);

/* clientlist_match - 1 if the client is in the list, else 0. name is its forward-confirmed
 * name (NULL, "" or "unknown": none, so no name or regex entry can match), addr its address.
 * *entry (may be NULL) gets "PATH:LINE: ENTRY" of the first matching line, owned by cl. */
int clientlist_match(const struct clientlist *cl, const char *name, const char *addr,
                     const char **entry);

/* clientlist_count - the number of entries. */
size_t clientlist_count(const struct clientlist *cl);

#endif
