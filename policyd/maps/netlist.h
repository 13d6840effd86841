/*
 * netlist.h - Postfix network lists (mynetworks): match a client address against them.
 *
 * Entries as Postfix reads them: 192.0.2.0/24, 192.0.2.1, [2001:db8::]/32, [::1], !pattern
 * (an early "no"), /file/name (more patterns), type:table (cidr:/path; any match counts).
 * The first matching entry decides. IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) and
 * ::ffff:a.b.c.d/96+ entries are treated as IPv4, as Postfix does.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_NETLIST_H
#define POLICYD_NETLIST_H

#include <stddef.h>

struct netlist;

/* netlist_new - compile value (the text of setting name, for messages). NULL + reason in err on
 * a bad entry ("mynetworks: '192.0.2.1/24' has host bits set: use 192.0.2.0/24"). */
struct netlist *netlist_new(const char *name, const char *value, char *err, size_t errlen);

/* netlist_add_address - add one exact address (used for this host's own addresses). 0 / -1. */
int netlist_add_address(struct netlist *nl, const char *addr);

/* netlist_free - accepts NULL. */
void netlist_free(struct netlist *nl);

/* netlist_match - 1 if addr is in the list (*entry = the entry that matched, owned by nl),
 * 0 if not (a "!" entry that matched is reported in *entry), -1 if addr is not an address. */
int netlist_match(const struct netlist *nl, const char *addr, const char **entry);

/* netlist_text - the list as configured, for diagnoses ("127.0.0.0/8 [::1]/128"). */
const char *netlist_text(const struct netlist *nl);

#endif
