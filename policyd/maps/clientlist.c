/*
 * clientlist.c - postgrey's whitelist_clients format (see clientlist.h): the line is classified
 * in postgrey's order (regex, IPv4, partial IPv4, IPv6, name, else refused), regexes go from
 * Perl to POSIX by a small translator that refuses what it cannot say the same way, networks
 * become struct cidr (policyd/lib/addr.h). Matching walks the entries in file order; the first
 * match is reported. The list owns its entries and compiled regexes; it is read once per
 * configuration load and never changes after, so matching needs no lock.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/maps/clientlist.h"

#include "policyd/lib/addr.h"
#include "policyd/lib/file.h"
#include "policyd/lib/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CL_MAX_LINE 4096 /* longer lines are refused: no hostname or address is that long */

enum cl_kind { CL_NAME, CL_REGEX, CL_NET };

struct cl_entry {
    enum cl_kind kind;
    char *where; /* "PATH:LINE: ENTRY", for diagnoses */
    char *name;  /* CL_NAME: lower case */
    regex_t re;  /* CL_REGEX */
    struct cidr net;
};

struct clientlist {
    struct cl_entry *v;
    size_t n, cap;
};

/* A bounded output buffer for the translator. */
struct cl_out {
    char *buf;
    size_t len, cap;
    int overflow;
};

static void cl_put(struct cl_out *o, const char *s)
{
    size_t n = strlen(s);
    if (o->len + n + 1 > o->cap) {
        o->overflow = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n + 1);
    o->len += n;
}

static void cl_putc(struct cl_out *o, char c)
{
    char s[2] = {c, 0};
    cl_put(o, s);
}

/* cl_control - the character of Perl's \t \n \r \f \e \a, or 0. */
static char cl_control(char c)
{
    switch (c) {
    case 't':
        return '\t';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 'f':
        return '\f';
    case 'e':
        return 27;
    case 'a':
        return 7;
    default:
        return 0;
    }
}

/* cl_bracket - translate the Perl bracket expression at *pp (at its '['), advancing *pp past
 * its ']'. POSIX brackets take no escapes, so a literal ']' goes first, '^' and '-' last. */
static int cl_bracket(const char **pp, struct cl_out *o, char *why, size_t whylen)
{
    const char *p = *pp + 1;
    char body[CL_MAX_LINE];
    struct cl_out b = {body, 0, sizeof(body), 0};
    int neg = 0, rbracket = 0, caret = 0, hyphen = 0;
    body[0] = 0;
    if (*p == '^')
        neg = 1, p++;
    if (*p == ']')
        rbracket = 1, p++;
    while (*p != ']') {
        if (!*p) {
            snprintf(why, whylen, "'[' without its ']'");
            return -1;
        }
        if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            char close[3] = {p[1], ']', 0};
            const char *end = strstr(p + 2, close);
            if (!end) {
                snprintf(why, whylen, "'[%c' without its '%s'", p[1], close);
                return -1;
            }
            char cls[256];
            snprintf(cls, sizeof(cls), "%.*s", (int)(end + 2 - p), p);
            cl_put(&b, cls);
            p = end + 2;
            continue;
        }
        if (*p != '\\') {
            cl_putc(&b, *p++);
            continue;
        }
        char c = p[1];
        p += 2;
        if (c == 'd')
            cl_put(&b, "0-9");
        else if (c == 'w')
            cl_put(&b, "[:alnum:]_");
        else if (c == 's')
            cl_put(&b, "[:space:]");
        else if (c == 'h')
            cl_put(&b, "[:blank:]");
        else if (c == ']')
            rbracket = 1;
        else if (c == '^')
            caret = 1;
        else if (c == '-')
            hyphen = 1;
        else if (cl_control(c))
            cl_putc(&b, cl_control(c));
        else if (c == 'D' || c == 'W' || c == 'S' || c == 'H') {
            snprintf(why, whylen, "\\%c inside [...] has no POSIX form: write the class out", c);
            return -1;
        } else if (!c || isalnum((unsigned char)c)) {
            snprintf(why, whylen, "Perl's \\%c has no POSIX form", c ? c : ' ');
            return -1;
        } else {
            cl_putc(&b, c); /* \. \\ \/ ...: the character itself */
        }
    }
    *pp = p + 1;
    cl_put(o, neg ? "[^" : "[");
    if (rbracket)
        cl_put(o, "]");
    cl_put(o, body);
    if (caret)
        cl_put(o, "^");
    if (hyphen)
        cl_put(o, "-");
    cl_put(o, "]");
    if (b.overflow)
        o->overflow = 1;
    return 0;
}

/* cl_quantifier_end - after a quantifier: Perl's lazy '?' says nothing about whether a name
 * matches (it is dropped); a possessive '+' changes it (refused). */
static int cl_quantifier_end(const char **pp, char *why, size_t whylen)
{
    if (**pp == '?')
        (*pp)++;
    else if (**pp == '+') {
        snprintf(why, whylen, "possessive quantifiers (*+ ++ ?+) have no POSIX form");
        return -1;
    }
    return 0;
}

/* cl_translate - the POSIX extended regex for Perl regex in, into out. 0, or -1 with a reason. */
static int cl_translate(const char *in, char *out, size_t outlen, char *why, size_t whylen)
{
    struct cl_out o = {out, 0, outlen, 0};
    const char *p = in;
    out[0] = 0;
    while (*p) {
        char c = *p;
        if (c == '\\') {
            char e = p[1];
            p += 2;
            switch (e) {
            case 'd':
                cl_put(&o, "[0-9]");
                break;
            case 'D':
                cl_put(&o, "[^0-9]");
                break;
            case 'w':
                cl_put(&o, "[[:alnum:]_]");
                break;
            case 'W':
                cl_put(&o, "[^[:alnum:]_]");
                break;
            case 's':
                cl_put(&o, "[[:space:]]");
                break;
            case 'S':
                cl_put(&o, "[^[:space:]]");
                break;
            case 'h':
                cl_put(&o, "[[:blank:]]");
                break;
            case 'H':
                cl_put(&o, "[^[:blank:]]");
                break;
            case 'A':
                cl_put(&o, "^");
                break;
            case 'z':
            case 'Z':
                cl_put(&o, "$");
                break;
            case 'b':
                cl_put(&o, "\\b"); /* glibc's regcomp knows word boundaries */
                break;
            case 'B':
                cl_put(&o, "\\B");
                break;
            case 0:
                snprintf(why, whylen, "ends with a lone backslash");
                return -1;
            default:
                if (e >= '1' && e <= '9') {
                    char ref[3] = {'\\', e, 0}; /* a back-reference, as in POSIX */
                    cl_put(&o, ref);
                } else if (cl_control(e)) {
                    cl_putc(&o, cl_control(e));
                } else if (isalnum((unsigned char)e)) {
                    snprintf(why, whylen, "Perl's \\%c has no POSIX form", e);
                    return -1;
                } else if (strchr(".[]()*+?{}|^$\\", e)) {
                    char esc[3] = {'\\', e, 0};
                    cl_put(&o, esc);
                } else {
                    cl_putc(&o, e); /* \/ \- \@ ...: the character itself */
                }
            }
            continue;
        }
        if (c == '[') {
            if (cl_bracket(&p, &o, why, whylen) != 0)
                return -1;
            continue;
        }
        if (c == '(' && p[1] == '?') {
            if (p[2] != ':') {
                snprintf(why, whylen,
                         "Perl's (?%c...) has no POSIX form (only (?:...) is translated)",
                         p[2] ? p[2] : ' ');
                return -1;
            }
            cl_put(&o, "(");
            p += 3;
            continue;
        }
        if (c == '*' || c == '+' || c == '?') {
            cl_putc(&o, c);
            p++;
            if (cl_quantifier_end(&p, why, whylen) != 0)
                return -1;
            continue;
        }
        if (c == '{') {
            /* {n}, {n,}, {n,m} is a quantifier; any other '{' is a literal, as in Perl. */
            const char *q = p + 1;
            while (isdigit((unsigned char)*q))
                q++;
            int digits = q > p + 1;
            if (*q == ',') {
                q++;
                while (isdigit((unsigned char)*q))
                    q++;
            }
            if (digits && *q == '}') {
                char quant[64];
                snprintf(quant, sizeof(quant), "%.*s", (int)(q + 1 - p), p);
                cl_put(&o, quant);
                p = q + 1;
                if (cl_quantifier_end(&p, why, whylen) != 0)
                    return -1;
            } else {
                cl_put(&o, "\\{");
                p++;
            }
            continue;
        }
        if (c == '}') {
            cl_put(&o, "\\}");
            p++;
            continue;
        }
        cl_putc(&o, c);
        p++;
    }
    if (o.overflow) {
        snprintf(why, whylen, "regex too long");
        return -1;
    }
    return 0;
}

/* cl_ipv4_shape - postgrey's IPv4 shapes: the number of dotted numbers of 1-3 digits (2, 3 or
 * 4) with *slash at a "/N" (1-2 digits) after four of them, or 0. */
static int cl_ipv4_shape(const char *s, const char **slash)
{
    int parts = 0;
    *slash = NULL;
    for (;;) {
        int d = 0;
        while (isdigit((unsigned char)s[d]))
            d++;
        if (d < 1 || d > 3)
            return 0;
        parts++;
        s += d;
        if (*s == '.' && parts < 4) {
            s++;
            continue;
        }
        break;
    }
    if (*s == '/' && parts == 4) {
        *slash = s;
        size_t d = strspn(s + 1, "0123456789");
        return d >= 1 && d <= 2 && !s[1 + d] ? 4 : 0;
    }
    return *s || parts < 2 ? 0 : parts;
}

/* cl_network - addr (text up to slash, or all) with prefix bits into c. 0, or -1 + reason. */
static int cl_network(const char *text, const char *slash, int bits, struct cl_entry *e, char *why,
                      size_t whylen)
{
    char a[128];
    snprintf(a, sizeof(a), "%.*s", (int)(slash ? (size_t)(slash - text) : strlen(text)), text);
    if (addr_parse(a, &e->net.family, e->net.addr) != 0) {
        snprintf(why, whylen, "'%s' is not an IP address", a);
        return -1;
    }
    int v6 = strchr(a, ':') != NULL, max = v6 ? 128 : 32;
    if (slash) {
        char *end;
        long n = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || n < 0 || n > max) {
            snprintf(why, whylen, "bad prefix length '%s' (0..%d)", slash + 1, max);
            return -1;
        }
        bits = (int)n;
    }
    if (bits < 0)
        bits = max;
    if (e->net.family == AF_INET && v6) { /* ::ffff:a.b.c.d[/N], folded to IPv4 */
        if (bits < 96) {
            snprintf(why, whylen, "an IPv4-mapped network needs a prefix of 96 or more");
            return -1;
        }
        bits -= 96;
    }
    e->net.prefix = (unsigned)bits;
    addr_mask(e->net.addr, (unsigned)bits);
    return 0;
}

/* cl_parse - one entry (comment and spaces gone) into e. 0, or -1 with a reason. */
static int cl_parse(const char *s, struct cl_entry *e, char *why, size_t whylen)
{
    size_t len = strlen(s);
    const char *slash;
    int shape;
    memset(e, 0, sizeof(*e));
    if (len >= 3 && s[0] == '/' && s[len - 1] == '/' && !strpbrk(s, " \t\f\v\r\n")) {
        char perl[CL_MAX_LINE], posix[CL_MAX_LINE * 4];
        snprintf(perl, sizeof(perl), "%.*s", (int)(len - 2), s + 1);
        if (cl_translate(perl, posix, sizeof(posix), why, whylen) != 0)
            return -1;
        int rc = regcomp(&e->re, posix, REG_EXTENDED | REG_ICASE | REG_NOSUB);
        if (rc != 0) {
            char msg[256];
            regerror(rc, &e->re, msg, sizeof(msg));
            snprintf(why, whylen, "bad regular expression: %s (as POSIX: %s)", msg, posix);
            return -1;
        }
        e->kind = CL_REGEX;
        return 0;
    }
    e->kind = CL_NET;
    if ((shape = cl_ipv4_shape(s, &slash)) != 0) {
        char full[64];
        if (shape < 4) { /* a.b.c is a.b.c.0/24, a.b is a.b.0.0/16 */
            snprintf(full, sizeof(full), "%s%s", s, shape == 3 ? ".0" : ".0.0");
            return cl_network(full, NULL, shape * 8, e, why, whylen);
        }
        return cl_network(s, slash, -1, e, why, whylen);
    }
    const char *colon = strchr(s, ':');
    if (colon && strchr(colon + 1, ':')) {
        const char *sl = strrchr(s, '/');
        return cl_network(s, sl, -1, e, why, whylen);
    }
    /* postgrey takes any other word as a name; one that no host name can end with (a stray
     * '/', a network written a.b.c/N, an address with five numbers) would whitelist nothing. */
    if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != len ||
        strspn(s, "0123456789.") == len) {
        snprintf(why, whylen, "does not look like a hostname, an address, a network or a /regex/");
        return -1;
    }
    e->kind = CL_NAME;
    e->name = xstrdup(s);
    for (char *p = e->name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return 0;
}

static void cl_entry_free(struct cl_entry *e)
{
    if (e->kind == CL_REGEX)
        regfree(&e->re);
    free(e->name);
    free(e->where);
}

void clientlist_free(struct clientlist *cl)
{
    if (!cl)
        return;
    for (size_t i = 0; i < cl->n; i++)
        cl_entry_free(&cl->v[i]);
    free(cl->v);
    free(cl);
}

struct clientlist *clientlist_load(const char *path, char *err, size_t errlen)
{
    FILE *fp = file_open_regular(path, err, errlen);
    if (!fp)
        return NULL;
    struct clientlist *cl = xcalloc(1, sizeof(*cl));
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned lineno = 0;
    while ((got = getline(&line, &cap, fp)) >= 0) {
        char why[512];
        lineno++;
        if (got > CL_MAX_LINE) {
            snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, lineno, CL_MAX_LINE);
            goto fail;
        }
        if (memchr(line, 0, (size_t)got)) {
            snprintf(err, errlen, "%s:%u: a NUL byte: not a text file", path, lineno);
            goto fail;
        }
        /* As postgrey: s/#.*$//; s/^\s+//; s/\s+$//; skip what is empty. */
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = line;
        while (*s && isspace((unsigned char)*s))
            s++;
        size_t len = strlen(s);
        while (len && isspace((unsigned char)s[len - 1]))
            s[--len] = 0;
        if (!len)
            continue;
        struct cl_entry e;
        if (cl_parse(s, &e, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s:%u: '%.200s': %s", path, lineno, s, why);
            free(e.name);
            goto fail;
        }
        e.where = xasprintf("%s:%u: %s", path, lineno, s);
        cl->v = xgrow(cl->v, &cl->cap, cl->n + 1, sizeof(*cl->v));
        cl->v[cl->n++] = e;
    }
    if (ferror(fp)) {
        snprintf(err, errlen, "%s: read error", path);
        goto fail;
    }
    free(line);
    fclose(fp);
    return cl;
fail:
    free(line);
    fclose(fp);
    clientlist_free(cl);
    return NULL;
}

int clientlist_match(const struct clientlist *cl, const char *name, const char *addr,
                     const char **entry)
{
    int family = 0;
    unsigned char bytes[16];
    int have_addr = addr && addr_parse(addr, &family, bytes) == 0;
    int have_name = name && *name && strcasecmp(name, "unknown") != 0;
    size_t nlen = have_name ? strlen(name) : 0;
    for (size_t i = 0; cl && i < cl->n; i++) {
        const struct cl_entry *e = &cl->v[i];
        int hit = 0;
        if (e->kind == CL_NET)
            hit = have_addr && cidr_match(&e->net, family, bytes);
        else if (e->kind == CL_REGEX)
            hit = have_name && regexec(&e->re, name, 0, NULL, 0) == 0;
        else if (have_name) {
            size_t elen = strlen(e->name);
            /* postgrey: qr{(?:^|\.)\Qentry\E$}i - the name or a name under it */
            hit = nlen >= elen && strcasecmp(name + nlen - elen, e->name) == 0 &&
                  (nlen == elen || name[nlen - elen - 1] == '.');
        }
        if (hit) {
            if (entry)
                *entry = e->where;
            return 1;
        }
    }
    return 0;
}

size_t clientlist_count(const struct clientlist *cl)
{
    return cl ? cl->n : 0;
}
