/*
 * plist.h - Postfix list syntax (the lists of main.cf and policyd.conf).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_LIB_PLIST_H
#define POLICYD_LIB_PLIST_H

#include <stddef.h>

/* plist_split - split a Postfix list (commas and/or whitespace, {braces} kept whole) into a
 * NULL-terminated vector (value NULL: empty); free with plist_free. Never NULL. */
char **plist_split(const char *value);

/* plist_free - free a vector from plist_split or plist_read_file. NULL ok. */
void plist_free(char **v);

/* plist_contains - 1 if word is an element of the list value (case-insensitive), else 0. */
int plist_contains(const char *value, const char *word);

/* plist_read_file - the entries of a "/file/name" list entry (Postfix pattern files:
 * whitespace and commas separate, '#' starts a comment). NULL with "path: reason" in err. */
char **plist_read_file(const char *path, char *err, size_t errlen);

#endif
