/*
 * dnsbl_list.c - parse a dnsbl_sites entry (postscreen syntax) and judge an answer from it;
 * see dnsbl_list.h. Pure code without I/O.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/dnsbl_list.h"

#include "policyd/lib/plist.h"
#include "policyd/lib/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* dnsbl_list_octet - "7", "[2..11]" or "[2;4;6]" (lists become their min..max range, which is
 * exact for the usual single ranges; a ';' list with gaps is refused). */
static int dnsbl_list_octet(const char *text, size_t len, int *lo, int *hi)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = 0;
    if (buf[0] != '[') {
        char *end;
        long v = strtol(buf, &end, 10);
        if (*end || v < 0 || v > 255)
            return -1;
        *lo = *hi = (int)v;
        return 0;
    }
    int a, b, n = 0;
    if (sscanf(buf, "[%d..%d]%n", &a, &b, &n) == 2 && buf[n] == 0 && a >= 0 && b <= 255 && a <= b) {
        *lo = a;
        *hi = b;
        return 0;
    }
    if (sscanf(buf, "[%d]%n", &a, &n) == 1 && buf[n] == 0 && a >= 0 && a <= 255) {
        *lo = *hi = a;
        return 0;
    }
    return -1;
}

int dnsbl_list_parse(struct dnsbl_list *s, const char *text, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", text);
    s->weight = 1;
    char *star = strrchr(buf, '*');
    if (star) {
        char *end;
        long w = strtol(star + 1, &end, 10);
        if (star[1] == 0 || *end || w < -1000 || w > 1000) {
            snprintf(err, errlen, "dnsbl_sites: '%s': the weight after '*' must be an integer",
                     text);
            return -1;
        }
        s->weight = (int)w;
        *star = 0;
    }
    char *eq = strchr(buf, '=');
    if (eq) {
        *eq = 0;
        s->filter = xstrdup(eq + 1);
        const char *p = eq + 1;
        for (int i = 0; i < 4; i++) {
            const char *dot = p;
            /* an octet ends at '.' outside brackets */
            int depth = 0;
            while (*dot && (depth || *dot != '.')) {
                depth += *dot == '[' ? 1 : *dot == ']' ? -1 : 0;
                dot++;
            }
            if (dnsbl_list_octet(p, (size_t)(dot - p), &s->lo[i], &s->hi[i]) != 0 ||
                (i < 3 && *dot != '.') || (i == 3 && *dot)) {
                snprintf(err, errlen,
                         "dnsbl_sites: '%s': the filter must be four octets, each a number, "
                         "[n..m] or [n] (e.g. 127.0.0.[2..11])",
                         text);
                return -1;
            }
            p = *dot ? dot + 1 : dot;
        }
        s->has_filter = 1;
    } else {
        s->filter = xstrdup("");
    }
    for (char *p = buf; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    size_t zl = strlen(buf);
    if (zl > 0 && buf[zl - 1] == '.')
        buf[--zl] = 0;
    if (zl == 0 || !strchr(buf, '.')) {
        snprintf(err, errlen, "dnsbl_sites: '%s': not a DNS list zone", text);
        return -1;
    }
    s->zone = xstrdup(buf);
    return 0;
}

void dnsbl_list_free(struct dnsbl_list *l)
{
    free(l->zone);
    free(l->filter);
    l->zone = l->filter = NULL;
}

int dnsbl_list_answer(const struct dnsbl_list *l, const unsigned char a[4])
{
    if (a[0] == 127 && a[1] == 255 && a[2] == 255 && a[3] >= 252)
        return -1; /* Spamhaus-style error codes: the list refuses us, not the client */
    if (!l->has_filter)
        return a[0] == 127;
    for (int i = 0; i < 4; i++)
        if (a[i] < l->lo[i] || a[i] > l->hi[i])
            return 0;
    return 1;
}

char *dnsbl_list_delist(const char *delist_urls, const char *zone, char *out, size_t outlen)
{
    out[0] = '\0';
    char **v = plist_split(delist_urls);
    for (size_t i = 0; v[i]; i++) {
        char *eq = strchr(v[i], '=');
        if (eq && (size_t)(eq - v[i]) == strlen(zone) && strncasecmp(v[i], zone, strlen(zone)) == 0)
            snprintf(out, outlen, "%s", eq + 1);
    }
    plist_free(v);
    return out;
}
