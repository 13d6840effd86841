/*
 * plist.c - Postfix list syntax: values split on commas and white space with {braces} kept
 * whole, and "/file/name" pattern files read the same way ('#' starts a comment).
 *
 * The vectors returned are NULL-terminated and owned by the caller (plist_free).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/plist.h"

#include "policyd/lib/file.h"
#include "policyd/lib/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char **plist_split(const char *value)
{
    size_t cap = 0, n = 0;
    char **v = NULL;
    const char *p = value ? value : "";
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ','))
            p++;
        if (!*p)
            break;
        const char *start = p;
        int depth = 0;
        while (*p && (depth > 0 || !(isspace((unsigned char)*p) || *p == ','))) {
            if (*p == '{')
                depth++;
            else if (*p == '}' && depth > 0)
                depth--;
            p++;
        }
        v = xgrow(v, &cap, n + 2, sizeof(*v));
        v[n++] = xstrndup(start, (size_t)(p - start));
    }
    v = xgrow(v, &cap, n + 1, sizeof(*v));
    v[n] = NULL;
    return v;
}

void plist_free(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

char **plist_read_file(const char *path, char *err, size_t errlen)
{
    FILE *fp = file_open_regular(path, err, errlen);
    if (!fp)
        return NULL;
    size_t n = 0, cap = 0;
    char **all = NULL;
    char line[4096];
    while (fgets(line, sizeof(line), fp)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char **v = plist_split(line);
        for (size_t i = 0; v[i]; i++) {
            all = xgrow(all, &cap, n + 2, sizeof(*all));
            all[n++] = v[i];
        }
        free(v); /* the strings moved to all */
    }
    fclose(fp);
    all = xgrow(all, &cap, n + 1, sizeof(*all));
    all[n] = NULL;
    return all;
}

int plist_contains(const char *value, const char *word)
{
    char **v = plist_split(value);
    int hit = 0;
    for (size_t i = 0; v[i] && !hit; i++)
        hit = strcasecmp(v[i], word) == 0;
    plist_free(v);
    return hit;
}
