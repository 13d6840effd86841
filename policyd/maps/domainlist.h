/*
 * domainlist.h - Postfix domain lists (mydestination, relay_domains, virtual_*_domains).
 *
 * Entries: example.com, .example.com (its subdomains), !pattern, /file/name, type:table.
 * Matching follows Postfix's match_hostname: case-insensitive; "example.com" also matches
 * subdomains when the list is named in parent_domain_matches_subdomains; tables are looked up
 * with the name, then with each parent ("parent" or ".parent" by the same rule).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_DOMAINLIST_H
#define POLICYD_DOMAINLIST_H

#include <stddef.h>

struct domainlist;

/* domainlist_new - compile value for setting name; parent_style as above. NULL + reason in err.
 * An empty value gives an empty list (matches nothing). */
struct domainlist *domainlist_new(const char *name, const char *value, int parent_style, char *err,
                                  size_t errlen);

/* domainlist_free - accepts NULL. */
void domainlist_free(struct domainlist *dl);

/* domainlist_match - 1 if domain (any case, one trailing dot allowed) is in the list (*entry =
 * the entry that matched, owned by dl), 0 if not, -1 if a table lookup failed. */
int domainlist_match(const struct domainlist *dl, const char *domain, const char **entry);

/* domainlist_empty - 1 if the list has no entries. */
int domainlist_empty(const struct domainlist *dl);

/* domainlist_name / domainlist_text - the setting name and its value, for diagnoses. */
const char *domainlist_name(const struct domainlist *dl);
const char *domainlist_text(const struct domainlist *dl);

#endif
