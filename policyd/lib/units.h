/*
 * units.h - parse durations (to milliseconds) and sizes (to bytes).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_LIB_UNITS_H
#define POLICYD_LIB_UNITS_H

#include <stddef.h>

/* units_parse_time - "10s", "5m", "250ms", "1h", "1d", "1w", bare seconds -> ms. 0 / -1. */
int units_parse_time(const char *text, long *ms);

/* units_parse_size - "4096", "64k", "10m", "1g" (optionally "kb" ...) -> bytes. 0 / -1. */
int units_parse_size(const char *text, size_t *bytes);

#endif
