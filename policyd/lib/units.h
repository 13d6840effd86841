/*
 * units.h - parse durations (to milliseconds) and sizes (to bytes); write durations and clock
 * times for people.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_LIB_UNITS_H
#define POLICYD_LIB_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* units_parse_time - "10s", "5m", "250ms", "1h", "1d", "1w", bare seconds -> ms. 0 / -1. */
int units_parse_time(const char *text, long *ms);

/* units_parse_size - "4096", "64k", "10m", "1g" (optionally "kb" ...) -> bytes. 0 / -1. */
int units_parse_size(const char *text, size_t *bytes);

/* units_format_time - ms in the largest unit that divides it: "1d", "10m", "30s", "250ms"
 * (what units_parse_time reads back). Returns buf. */
const char *units_format_time(int64_t ms, char *buf, size_t len);

/* units_format_clock - the local time of ms since the epoch, "2026-12-07 16:38:58". Returns
 * buf. */
const char *units_format_clock(int64_t ms, char *buf, size_t len);

/* units_put_uint - n in decimal at p (at most 20 characters, no NUL); returns the end. For the
 * hot paths that write numbers into names and protocol lines without printf. */
char *units_put_uint(char *p, unsigned long long n);

#endif
