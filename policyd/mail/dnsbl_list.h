/*
 * dnsbl_list.h - one entry of dnsbl_sites / rhsbl_sites in Postfix postscreen's syntax,
 * "zone[=filter][*weight]" (zen.spamhaus.org=127.0.0.[2..11]*3), and what an answer from it
 * means. Shared by the dnsbl check and the doctor, so both judge a listing alike.
 */
/* SPDX-License-Identifier: MIT */
#ifndef CHECKS_DNSBL_LIST_H
#define CHECKS_DNSBL_LIST_H

#include <stddef.h>

struct dnsbl_list {
    char *zone;       /* lower case, no trailing dot */
    char *filter;     /* as written, "" for any 127.x answer */
    int lo[4], hi[4]; /* per octet ranges */
    int has_filter;
    int weight; /* 1 unless "*N" is given; negative for allow lists */
};

/* dnsbl_list_parse - text into l (dnsbl_list_free it, also after an error). 0, or -1 with
 * "dnsbl_sites: 'text': reason" in err. */
int dnsbl_list_parse(struct dnsbl_list *l, const char *text, char *err, size_t errlen);

/* dnsbl_list_free - the strings of l. */
void dnsbl_list_free(struct dnsbl_list *l);

/* dnsbl_list_answer - an A answer from the list: 1 a listing (inside the filter), 0 not a
 * listing, -1 an error answer (127.255.255.252 to .255: the list refuses the resolver). */
int dnsbl_list_answer(const struct dnsbl_list *l, const unsigned char a[4]);

/* dnsbl_list_delist - the page dnsbl_delist_urls ("zone=url, ...") names for zone, into out;
 * "" if none. Returns out. */
char *dnsbl_list_delist(const char *delist_urls, const char *zone, char *out, size_t outlen);

#endif
