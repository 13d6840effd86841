/*
 * config_read.c - the first stages of loading: policyd.conf read as Postfix reads main.cf
 * (logical lines: an indented line continues the one before, '#' lines are comments) and
 * $name / ${name} / $(name) expansion of the values, bounded against recursion.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/config_stage.h"

#include "policyd/lib/file.h"
#include "policyd/lib/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* config_store_line - one logical "name = value" line into raw. */
static int config_store_line(const char *path, int lineno, char *text, struct raw *raw, char *err,
                             size_t errlen);

int config_read_file(const char *path, struct raw *raw, char *err, size_t errlen)
{
    /* Plain fopen: the file named with -c may be a pipe on purpose (policyd -c <(...) -t). */
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, start_line = 0;
    char *logical = NULL;
    size_t llen = 0;
    int rc = 0;

    /* flush the pending logical line into raw */
#define FLUSH()                                                                                    \
    do {                                                                                           \
        if (logical && rc == 0)                                                                    \
            rc = config_store_line(path, start_line, logical, raw, err, errlen);                   \
        free(logical);                                                                             \
        logical = NULL;                                                                            \
        llen = 0;                                                                                  \
    } while (0)

    while (rc == 0 && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if (memchr(line, 0, (size_t)len)) {
            snprintf(err, errlen, "%s:%d: NUL byte in line", path, lineno);
            rc = -1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == 0 || *p == '#')
            continue;
        if (p != line) {
            if (!logical) {
                snprintf(err, errlen,
                         "%s:%d: indented line without a setting before it (continuation lines "
                         "start with whitespace)",
                         path, lineno);
                rc = -1;
                break;
            }
            /* As Postfix's readllines: the newline goes, the indentation stays. */
            logical = xrealloc(logical, llen + (size_t)len + 1);
            memcpy(logical + llen, line, (size_t)len + 1);
            llen += (size_t)len;
            continue;
        }
        FLUSH();
        logical = xstrdup(line);
        llen = strlen(logical);
        start_line = lineno;
    }
    FLUSH();
#undef FLUSH
    free(line);
    fclose(fp);
    return rc;
}

static int config_store_line(const char *path, int lineno, char *text, struct raw *raw, char *err,
                             size_t errlen)
{
    char *eq = strchr(text, '=');
    if (!eq) {
        snprintf(err, errlen, "%s:%d: missing '=' after setting name (expected 'name = value')",
                 path, lineno);
        return -1;
    }
    char *name_end = eq;
    while (name_end > text && isspace((unsigned char)name_end[-1]))
        name_end--;
    size_t nlen = (size_t)(name_end - text);
    for (size_t i = 0; i < nlen; i++) {
        if (!(islower((unsigned char)text[i]) || isdigit((unsigned char)text[i]) ||
              text[i] == '_')) {
            snprintf(err, errlen, "%s:%d: bad setting name '%.*s'", path, lineno, (int)nlen, text);
            return -1;
        }
    }
    if (nlen == 0) {
        snprintf(err, errlen, "%s:%d: missing setting name before '='", path, lineno);
        return -1;
    }
    int idx = config_settings_index(text, nlen);
    if (idx < 0) {
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)nlen, text);
        const char *hint = config_settings_suggest(name);
        snprintf(err, errlen, "%s:%d: unknown setting '%s'%s%s%s", path, lineno, name,
                 hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        return -1;
    }
    char *v = eq + 1;
    while (isspace((unsigned char)*v))
        v++;
    size_t vlen = strlen(v);
    while (vlen > 0 && isspace((unsigned char)v[vlen - 1]))
        v[--vlen] = 0;
    free(raw->value[idx]);
    raw->value[idx] = xstrdup(v);
    raw->source[idx] = SRC_FILE;
    raw->line[idx] = lineno;
    return 0;
}

int config_read_expand(struct raw *raw, size_t idx, const char *text, int depth, char **out,
                       char *err, size_t errlen)
{
    size_t cap = strlen(text) + 64, n = 0;
    char *buf = xmalloc(cap);
    char where[PATH_MAX + 64];
    for (const char *p = text; *p;) {
        if (*p != '$') {
            if (n + 2 > cap)
                buf = xrealloc(buf, cap *= 2);
            buf[n++] = *p++;
            continue;
        }
        p++;
        const char *name;
        size_t nlen;
        if (*p == '{' || *p == '(') {
            char close = *p == '{' ? '}' : ')';
            const char *end = strchr(p + 1, close);
            if (!end) {
                config_settings_where(raw, idx, where, sizeof(where));
                snprintf(err, errlen, "%s: %s: missing '%c' after '$%c'", where,
                         config_settings[idx].name, close, *p);
                free(buf);
                return -1;
            }
            name = p + 1;
            nlen = (size_t)(end - name);
            p = end + 1;
        } else {
            name = p;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            nlen = (size_t)(p - name);
        }
        int ref = config_settings_index(name, nlen);
        if (ref < 0 || depth > 10) {
            config_settings_where(raw, idx, where, sizeof(where));
            if (depth > 10)
                snprintf(err, errlen, "%s: %s: $%.*s expands recursively", where,
                         config_settings[idx].name, (int)nlen, name);
            else
                snprintf(err, errlen, "%s: %s: unknown setting $%.*s in value", where,
                         config_settings[idx].name, (int)nlen, name);
            free(buf);
            return -1;
        }
        char *sub;
        if (config_read_expand(raw, (size_t)ref, raw->value[ref] ? raw->value[ref] : "", depth + 1,
                               &sub, err, errlen) != 0) {
            free(buf);
            return -1;
        }
        size_t slen = strlen(sub);
        while (n + slen + 2 > cap)
            buf = xrealloc(buf, cap *= 2);
        memcpy(buf + n, sub, slen);
        n += slen;
        free(sub);
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}
