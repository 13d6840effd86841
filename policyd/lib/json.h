/*
 * json.h - JSON string literals for the commands' --json output (the doctor, the report).
 *
 * Text is written as UTF-8 where it is valid UTF-8; control bytes are escaped and bytes that
 * are not valid UTF-8 (log files hold anything) become U+FFFD, so the output always parses.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_LIB_JSON_H
#define POLICYD_LIB_JSON_H

#include <stddef.h>
#include <stdio.h>

/* json_str - write s (NULL: "") to f as a JSON string literal, quotes included. */
void json_str(FILE *f, const char *s);

/* json_strn - the same for the n bytes at s, which may hold NUL bytes (escaped). */
void json_strn(FILE *f, const char *s, size_t n);

#endif
