/*
 * units.c - durations and sizes as policyd.conf writes them: "10s 5m 1h 1d 2w 250ms" (a bare
 * number is seconds) and "4096 64k 10m 1g" (optionally with a trailing b).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/units.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int units_parse_time(const char *text, long *ms)
{
    char *end;
    errno = 0;
    double n = strtod(text, &end);
    if (end == text || errno || n < 0 || !isdigit((unsigned char)text[0]))
        return -1;
    double mult;
    if (*end == 0 || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60e3;
    else if (strcmp(end, "h") == 0)
        mult = 3600e3;
    else if (strcmp(end, "d") == 0)
        mult = 86400e3;
    else if (strcmp(end, "w") == 0)
        mult = 7 * 86400e3;
    else
        return -1;
    double v = n * mult;
    if (v > (double)LONG_MAX / 2)
        return -1;
    *ms = (long)(v + 0.5);
    return 0;
}

int units_parse_size(const char *text, size_t *bytes)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)text[0]))
        return -1;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno)
        return -1;
    unsigned long long mult = 1;
    switch (tolower((unsigned char)*end)) {
    case 0:
        break;
    case 'k':
        mult = 1024ULL;
        break;
    case 'm':
        mult = 1024ULL * 1024;
        break;
    case 'g':
        mult = 1024ULL * 1024 * 1024;
        break;
    default:
        return -1;
    }
    if (*end && end[1] && !(tolower((unsigned char)end[1]) == 'b' && end[2] == 0))
        return -1;
    if (n > SIZE_MAX / mult)
        return -1;
    *bytes = (size_t)(n * mult);
    return 0;
}

const char *units_format_time(int64_t ms, char *buf, size_t len)
{
    if (ms != 0 && ms % 86400000 == 0)
        snprintf(buf, len, "%lldd", (long long)(ms / 86400000));
    else if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, len, "%lldh", (long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, len, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, len, "%lldms", (long long)ms);
    return buf;
}

char *units_put_uint(char *p, unsigned long long n)
{
    char d[20];
    int k = 0;
    do
        d[k++] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    while (k)
        *p++ = d[--k];
    return p;
}

const char *units_format_clock(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, len, "?");
    return buf;
}
