/*
 * mkconfman.c - print the policyd.conf(5) manual page from the one settings table.
 *
 *   mkconfman TEMPLATE SETTINGS.DEF >policyd.conf.5
 *
 * The prose comes from TEMPLATE (etc/man/policyd.conf.5.in); its line `.\" @SETTINGS@` is
 * replaced by every setting of policyd/settings.def with its type, default and meaning. The list
 * is not parsed from text: settings.def is included here with this program's own X-macros, so
 * the page has exactly the settings the daemon has, and a new kind of entry fails this build
 * instead of going missing. Only the subsection titles come from the text of SETTINGS.DEF: its
 * `/ * -- title -- * /` comments, matched to the entries by line (__LINE__ of each entry).
 * Built and run at build time by the Makefile (a host tool: nothing of the daemon is linked).
 */
/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One entry of settings.def as the page shows it. */
struct entry {
    const char *type;    /* the value type, as the page's VALUE TYPES section names it */
    int from_postfix;    /* P_ entries: imported from Postfix's main.cf */
    const char *name;    /* the setting's name */
    const char *def;     /* its default, as written in policyd.conf */
    const char *doc;     /* one line of documentation */
    const char *lo, *hi; /* bounds of numeric settings (NULL for others) */
    int reload;          /* R_LIVE, R_DNS or R_RESTART */
    int line;            /* where settings.def lists it */
};

enum { R_LIVE, R_DNS, R_RESTART }; /* as policyd/config.h */

/* Entries are (name, default, reload class, doc); numeric ones (name, default, min, max, reload
 * class, doc), as settings.def's header comment says. */
#define ENTRY(type, pf, n, d, r, doc) {type, pf, #n, d, doc, NULL, NULL, r, __LINE__},
#define NENTRY(type, pf, n, d, lo, hi, r, doc) {type, pf, #n, d, doc, lo, hi, r, __LINE__},
#define S_STR(n, d, r, doc) ENTRY("text", 0, n, d, r, doc)
#define S_LIST(n, d, r, doc) ENTRY("list", 0, n, d, r, doc)
#define S_ACT(n, d, r, doc) ENTRY("action", 0, n, d, r, doc)
#define S_BOOL(n, d, r, doc) ENTRY("boolean", 0, n, d, r, doc)
#define S_INT(n, d, lo, hi, r, doc) NENTRY("integer", 0, n, d, lo, hi, r, doc)
#define S_TIME(n, d, lo, hi, r, doc) NENTRY("time", 0, n, d, lo, hi, r, doc)
#define S_SIZE(n, d, lo, hi, r, doc) NENTRY("size", 0, n, d, lo, hi, r, doc)
#define S_RATIO(n, d, lo, hi, r, doc) NENTRY("ratio", 0, n, d, lo, hi, r, doc)
#define S_OCT(n, d, r, doc) ENTRY("mode", 0, n, d, r, doc)
#define S_MODE(n, d, r, doc) ENTRY("enforce | warn", 0, n, d, r, doc)
#define P_STR(n, d, r, doc) ENTRY("text", 1, n, d, r, doc)
#define P_LIST(n, d, r, doc) ENTRY("list", 1, n, d, r, doc)
static const struct entry entries[] = {
#include "policyd/settings.def"
};
#define NENTRIES (sizeof(entries) / sizeof(entries[0]))

/* A subsection title of settings.def and the line it is on. */
struct heading {
    int line;
    char title[128];
};

/* mkconfman_headings - the `/ * -- title -- * /` lines of settings.def; returns how many. */
static size_t mkconfman_headings(const char *path, struct heading *h, size_t max)
{
    FILE *fp = fopen(path, "r");
    char buf[1024];
    size_t n = 0;
    int line = 0;
    if (!fp) {
        perror(path);
        exit(1);
    }
    while (fgets(buf, sizeof(buf), fp) && n < max) {
        char title[128];
        line++;
        if (sscanf(buf, "/* -- %127[^\n]", title) != 1)
            continue;
        char *end = strstr(title, " --");
        if (!end)
            continue;
        *end = 0;
        /* "rdns check (checks/rdns.c)": the source files mean nothing to the reader. */
        char *paren = strstr(title, " (");
        if (paren)
            *paren = 0;
        h[n].line = line;
        snprintf(h[n].title, sizeof(h[n].title), "%s", title);
        n++;
    }
    fclose(fp);
    return n;
}

/* mkconfman_quoted - a macro argument: in double quotes (never a macro call), " doubled. */
static void mkconfman_quoted(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            fputs("\"\"", stdout);
        else if (*s == '\\')
            fputs("\\e", stdout);
        else
            putchar(*s);
        /* a value ending in punctuation ("pd:") must not read as a trailing delimiter */
        if (!s[1] && strchr(".,:;)]?!", *s))
            fputs("\\&", stdout);
    }
    putchar('"');
}

/* mkconfman_line - one text line: a leading dot or quote escaped, backslashes escaped. */
static void mkconfman_line(const char *s, size_t len)
{
    if (len && (*s == '.' || *s == '\''))
        fputs("\\&", stdout);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\')
            fputs("\\e", stdout);
        else
            putchar(s[i]);
    }
    putchar('\n');
}

/* mkconfman_text - documentation as text lines: capitalised, a full stop at the end, one
 * sentence per line and no line over 78 bytes (mdoc's rules, checked by mandoc -Tlint). */
static void mkconfman_text(const char *doc)
{
    char buf[4096];
    size_t len = strlen(doc);
    snprintf(buf, sizeof(buf) - 1, "%s", doc);
    if (len >= sizeof(buf) - 1)
        len = sizeof(buf) - 2;
    if (len && buf[len - 1] != '.')
        buf[len++] = '.';
    buf[len] = 0;
    buf[0] = (char)toupper((unsigned char)buf[0]);
    const char *line = buf, *space = NULL;
    for (const char *p = buf; *p; p++) {
        if (*p != ' ')
            continue;
        /* A sentence ends at ". " (not after "e.g" or "i.e"): the next one on a new line. */
        int sentence = p > buf + 3 && p[-1] == '.' && strncmp(p - 4, "e.g.", 4) != 0 &&
                       strncmp(p - 4, "i.e.", 4) != 0;
        if (p - line > 78 && space) {
            mkconfman_line(line, (size_t)(space - line));
            line = space + 1;
        }
        if (sentence) {
            mkconfman_line(line, (size_t)(p - line));
            line = p + 1;
            space = NULL;
        } else {
            space = p;
        }
    }
    if (strlen(line) > 78 && space && space > line) {
        mkconfman_line(line, (size_t)(space - line));
        line = space + 1;
    }
    mkconfman_line(line, strlen(line));
}

/* mkconfman_entry - one setting as an item of a tagged list. */
static void mkconfman_entry(const struct entry *e)
{
    if (!e->doc || !*e->doc) {
        fprintf(stderr,
                "mkconfman: settings.def: %s has no documentation string: entries changed shape; "
                "update the macros of etc/man/mkconfman.c\n",
                e->name);
        exit(1);
    }
    printf(".It Cm %s Pq %s\n", e->name, e->type);
    mkconfman_text(e->doc);
    if (*e->def) {
        printf("Default:\n.Ql ");
        mkconfman_quoted(e->def);
        printf(" .\n");
    } else {
        printf("Default: empty.\n");
    }
    if (e->lo)
        printf("Range:\n.Ql %s\nto\n.Ql %s .\n", e->lo, e->hi);
    if (e->reload == R_RESTART)
        printf("A change takes effect only after a restart.\n");
    else if (e->reload == R_DNS)
        printf("A change on reload reconfigures the DNS engine.\n");
    if (e->from_postfix)
        printf("Imported from Postfix's\n.Pa main.cf\nunless set in\n.Nm .\n");
}

/* mkconfman_settings - every entry, in settings.def's order, under its subsection title. */
static void mkconfman_settings(const struct heading *h, size_t nh)
{
    size_t next = 0;
    int open = 0;
    for (size_t i = 0; i < NENTRIES; i++) {
        const struct entry *e = &entries[i];
        const char *title = NULL;
        while (next < nh && h[next].line < e->line)
            title = h[next++].title;
        if (title || !open) {
            if (open)
                printf(".El\n");
            printf(".Ss %s\n.Bl -tag -width Ds\n", title ? title : "Settings");
            open = 1;
        }
        mkconfman_entry(e);
    }
    if (open)
        printf(".El\n");
}

int main(int argc, char **argv)
{
    struct heading h[64];
    char buf[4096];
    int done = 0;
    if (argc != 3) {
        fprintf(stderr, "usage: mkconfman TEMPLATE SETTINGS.DEF\n");
        return 2;
    }
    size_t nh = mkconfman_headings(argv[2], h, sizeof(h) / sizeof(h[0]));
    FILE *tp = fopen(argv[1], "r");
    if (!tp) {
        perror(argv[1]);
        return 1;
    }
    while (fgets(buf, sizeof(buf), tp)) {
        if (strcmp(buf, ".\\\" @SETTINGS@\n") == 0) {
            mkconfman_settings(h, nh);
            done = 1;
        } else {
            fputs(buf, stdout);
        }
    }
    fclose(tp);
    if (!done) {
        fprintf(stderr, "mkconfman: %s: no line '.\\\" @SETTINGS@'\n", argv[1]);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
