/*
 * domainlist.c - compile and match Postfix domain lists, as Postfix's match_hostname does.
 *
 * Entries are kept lower-cased in configured order; the first entry that matches decides
 * (a "!" entry decides "no"). Tables are opened once per configuration load and looked up
 * with the name and then each parent domain, so a relay_domains = hash:/etc/postfix/relay
 * gives the answer Postfix gives.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/maps/domainlist.h"

#include "policyd/maps/table.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dom_entry {
    char *text;          /* as written (lower case), for diagnoses */
    const char *pattern; /* text without "!" */
    int negated;
    struct table *table;
};

struct domainlist {
    char *name;
    char *text;
    int parent_style;
    struct dom_entry *v;
    size_t n, cap;
};

static void dom_push(struct domainlist *dl, struct dom_entry *e)
{
    dl->v = xgrow(dl->v, &dl->cap, dl->n + 1, sizeof(*dl->v));
    dl->v[dl->n++] = *e;
}

static int dom_add_token(struct domainlist *dl, const char *tok, int depth, char *err,
                         size_t errlen);

/* dom_add_file - the patterns of a /file entry. */
static int dom_add_file(struct domainlist *dl, const char *path, int depth, char *err,
                        size_t errlen)
{
    if (depth > 4) {
        snprintf(err, errlen, "%s: %s: files nested too deeply", dl->name, path);
        return -1;
    }
    char reason[512];
    char **v = plist_read_file(path, reason, sizeof(reason));
    if (!v) {
        snprintf(err, errlen, "%s: %s", dl->name, reason);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; v[i] && rc == 0; i++)
        rc = dom_add_token(dl, v[i], depth + 1, err, errlen);
    plist_free(v);
    return rc;
}

/* dom_is_table - "type:name" with a type made of letters. */
static int dom_is_table(const char *p)
{
    const char *colon = strchr(p, ':');
    if (!colon || colon == p)
        return 0;
    for (const char *q = p; q < colon; q++)
        if (!isalpha((unsigned char)*q))
            return 0;
    return 1;
}

static int dom_add_token(struct domainlist *dl, const char *tok, int depth, char *err,
                         size_t errlen)
{
    struct dom_entry e;
    memset(&e, 0, sizeof(e));
    const char *p = tok;
    if (*p == '!') {
        e.negated = 1;
        p++;
    }
    if (*p == '/') {
        if (e.negated) {
            snprintf(err, errlen, "%s: '%s': a file cannot be negated", dl->name, tok);
            return -1;
        }
        return dom_add_file(dl, p, depth, err, errlen);
    }
    if (dom_is_table(p)) {
        char terr[512];
        e.table = table_open(p, terr, sizeof(terr));
        if (!e.table) {
            snprintf(err, errlen, "%s: %s", dl->name, terr);
            return -1;
        }
        e.text = xstrdup(tok);
        e.pattern = e.text + e.negated;
        dom_push(dl, &e);
        return 0;
    }
    for (const char *q = p; *q; q++) {
        unsigned char c = (unsigned char)*q;
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == '[' || c == ']' || c == ':')) {
            snprintf(err, errlen, "%s: '%s' is not a domain name, /file or type:table", dl->name,
                     tok);
            return -1;
        }
    }
    if (*p == 0) {
        snprintf(err, errlen, "%s: empty pattern after '!'", dl->name);
        return -1;
    }
    e.text = xstrdup(tok);
    for (char *q = e.text; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    size_t len = strlen(e.text);
    if (len > 1 && e.text[len - 1] == '.')
        e.text[len - 1] = 0;
    e.pattern = e.text + e.negated;
    dom_push(dl, &e);
    return 0;
}

struct domainlist *domainlist_new(const char *name, const char *value, int parent_style, char *err,
                                  size_t errlen)
{
    struct domainlist *dl = xcalloc(1, sizeof(*dl));
    dl->name = xstrdup(name);
    dl->text = xstrdup(value ? value : "");
    dl->parent_style = parent_style;
    char **v = plist_split(dl->text);
    for (size_t i = 0; v[i]; i++) {
        if (dom_add_token(dl, v[i], 0, err, errlen) != 0) {
            plist_free(v);
            domainlist_free(dl);
            return NULL;
        }
    }
    plist_free(v);
    return dl;
}

void domainlist_free(struct domainlist *dl)
{
    if (!dl)
        return;
    for (size_t i = 0; i < dl->n; i++) {
        free(dl->v[i].text);
        table_free(dl->v[i].table);
    }
    free(dl->v);
    free(dl->name);
    free(dl->text);
    free(dl);
}

/* dom_match_pattern - one string pattern against a lower-case name. */
static int dom_match_pattern(const struct domainlist *dl, const char *pattern, const char *name)
{
    if (strcmp(pattern, name) == 0)
        return 1;
    size_t nlen = strlen(name), plen = strlen(pattern);
    if (pattern[0] == '.') {
        /* ".example.com" matches every subdomain of example.com */
        return nlen > plen && strcmp(name + nlen - plen, pattern) == 0;
    }
    if (dl->parent_style && nlen > plen + 1 && name[nlen - plen - 1] == '.' &&
        strcmp(name + nlen - plen, pattern) == 0)
        return 1;
    return 0;
}

/* dom_match_table - the name, then each parent ("parent" or ".parent"). 1 / 0 / -1. */
static int dom_match_table(const struct domainlist *dl, struct table *t, const char *name)
{
    const char *value;
    int rc = table_lookup(t, name, &value);
    if (rc != 0)
        return rc;
    for (const char *p = strchr(name, '.'); p && p[1]; p = strchr(p + 1, '.')) {
        rc = table_lookup(t, dl->parent_style ? p + 1 : p, &value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int domainlist_match(const struct domainlist *dl, const char *domain, const char **entry)
{
    char name[256];
    size_t len = strlen(domain);

    if (entry)
        *entry = NULL;
    if (len > 1 && domain[len - 1] == '.')
        len--;
    if (len == 0 || len >= sizeof(name))
        return 0;
    for (size_t i = 0; i < len; i++)
        name[i] = (char)tolower((unsigned char)domain[i]);
    name[len] = 0;
    for (size_t i = 0; i < dl->n; i++) {
        const struct dom_entry *e = &dl->v[i];
        int hit = e->table ? dom_match_table(dl, e->table, name)
                           : dom_match_pattern(dl, e->pattern, name);
        if (hit < 0)
            return -1;
        if (hit) {
            if (entry)
                *entry = e->text;
            return e->negated ? 0 : 1;
        }
    }
    return 0;
}

int domainlist_empty(const struct domainlist *dl)
{
    return dl->n == 0;
}

const char *domainlist_name(const struct domainlist *dl)
{
    return dl->name;
}

const char *domainlist_text(const struct domainlist *dl)
{
    return dl->text;
}
