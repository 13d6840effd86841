/*
 * spf_eval.c - RFC 7208 check_host() over answers supplied by the caller (see spf_eval.h).
 *
 * Why not libspf2's evaluator: libspf2 1.2.10 (Debian) passes 111 of the 203 RFC 7208 suite
 * tests, counts the 10-lookup limit per record, has no void-lookup limit, and its macro
 * expansion is where CVE-2023-42118 lives. Its DNS layer is synchronous, so using it means a
 * replay over our cache anyway; the replay, the strict parser and the limits are most of an
 * evaluator. So evaluation is done here, in the same replay model, and nothing hostile from
 * DNS reaches any code that has not bounded it.
 *
 * Each pass evaluates from the start. Record text is checked whole before any term of it is
 * evaluated (a syntax error anywhere is a permerror); terms are then walked in order. Errors
 * travel as negative codes (EV_PENDING, EV_TEMP, EV_PERM) with out->problem set once, by the
 * innermost failure.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/spf_eval.h"

#include "policyd/maps/netlist.h"
#include "policyd/lib/addr.h"
#include "policyd/lib/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define EV_MATCH 1
#define EV_NOMATCH 0
#define EV_PENDING (-1)
#define EV_TEMP (-2)
#define EV_PERM (-3)

#define SPF_MAX_RECORD 8192 /* longer records are refused (permerror) */
#define SPF_MAX_EXPAND 2048 /* a name's expansion keeps its last 1024 bytes, then is cut to 253 */
#define SPF_EXPAND_BUDGET (1 << 20) /* macro value bytes one evaluation may process */
#define SPF_MAX_DEPTH 24            /* nesting of include/redirect, besides the lookup limit */
#define SPF_MAX_NAMES 10            /* MX and PTR names per term (RFC 7208 4.6.4) */
#define SPF_MAX_TERMS 20000         /* terms walked in one evaluation: a CPU budget */

enum term_kind {
    T_ALL,
    T_INCLUDE,
    T_A,
    T_MX,
    T_PTR,
    T_IP4,
    T_IP6,
    T_EXISTS,
    T_REDIRECT,
    T_EXP,
    T_UNKNOWN_MOD
};

struct term {
    enum term_kind kind;
    char qualifier;  /* '+', '-', '~', '?' */
    const char *arg; /* domain-spec, network or modifier value; NULL if none */
    size_t arglen;
    int cidr4, cidr6; /* prefix lengths (a, mx, ip4, ip6) */
    unsigned char net[16];
    const char *text; /* the whole term, for diagnoses */
    size_t textlen;
};

struct ev {
    const struct spf_input *in;
    const struct spf_dns *dns;
    struct spf_outcome *out;
    int family; /* AF_INET / AF_INET6 */
    unsigned char ip[16];
    char ipstr[64];
    const char *local; /* of the sender */
    size_t local_len;
    const char *sdomain; /* of the sender */
    int terms_walked;
    int depth;
    size_t expanded; /* macro value bytes processed (SPF_EXPAND_BUDGET) */
};

static void ev_problem(struct ev *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ev_problem - record why the evaluation failed; the innermost (first) reason wins. */
static void ev_problem(struct ev *ev, const char *fmt, ...)
{
    if (ev->out->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->out->problem, sizeof(ev->out->problem), fmt, ap);
    va_end(ap);
}

/* short_copy - text (not NUL-terminated) into out, cut with "..." when too long, control
 * bytes and quotes replaced, so it can go into logs and headers. */
static void short_copy(char *out, size_t outlen, const char *text, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < outlen; i++) {
        unsigned char c = (unsigned char)text[i];
        if (n + 4 >= outlen && i + 1 < len) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        out[n++] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
    }
    out[n] = '\0';
}

/* ---- syntax ---------------------------------------------------------------------------- */

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}
static int is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

/* macro_letter_ok - a macro letter; c, r and t only in explanation text. */
static int macro_letter_ok(int c, int in_exp)
{
    c = tolower(c);
    if (strchr("slodiphv", c))
        return 1;
    return in_exp && (c == 'c' || c == 'r' || c == 't');
}

static int is_delim(int c)
{
    return c && strchr(".-+,/_=", c) != NULL;
}

/*
 * macro_string_check - s[0..len) is a macro-string (RFC 7208 7.1). *ends_macro tells whether
 * it ends with a macro-expand. 0 / -1 with the reason.
 */
static int macro_string_check(const char *s, size_t len, int in_exp, int *ends_macro, char *err,
                              size_t errlen)
{
    int last_macro = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 1 >= len) {
                snprintf(err, errlen, "'%%' at the end of '%.*s'", (int)(len > 60 ? 60 : len), s);
                return -1;
            }
            char n = s[i + 1];
            if (n == '%' || n == '_' || n == '-') {
                i += 2;
                last_macro = 1;
                continue;
            }
            if (n != '{') {
                snprintf(err, errlen, "'%%%c' is not a macro", isprint((unsigned char)n) ? n : '?');
                return -1;
            }
            size_t j = i + 2;
            if (j >= len || !macro_letter_ok((unsigned char)s[j], in_exp)) {
                snprintf(err, errlen, "bad macro letter '%c'",
                         j < len && isprint((unsigned char)s[j]) ? s[j] : '?');
                return -1;
            }
            j++;
            size_t d0 = j;
            while (j < len && is_digit((unsigned char)s[j]))
                j++;
            if (j > d0) {
                /* "If a DIGIT is specified, the value MUST be nonzero." */
                int all_zero = 1;
                for (size_t k = d0; k < j; k++)
                    if (s[k] != '0')
                        all_zero = 0;
                if (all_zero) {
                    snprintf(err, errlen, "macro transformer 0");
                    return -1;
                }
            }
            if (j < len && (s[j] == 'r' || s[j] == 'R'))
                j++;
            while (j < len && is_delim((unsigned char)s[j]))
                j++;
            if (j >= len || s[j] != '}') {
                snprintf(err, errlen, "unterminated or malformed macro");
                return -1;
            }
            i = j + 1;
            last_macro = 1;
            continue;
        }
        /* macro-literal: visible ASCII except '%'; explanation text also allows spaces */
        if (!(c >= 0x21 && c <= 0x7e) && !(in_exp && c == ' ')) {
            snprintf(err, errlen, "invalid character 0x%02x", c);
            return -1;
        }
        last_macro = 0;
        i++;
    }
    if (ends_macro)
        *ends_macro = last_macro;
    return 0;
}

/* toplabel_ok - RFC 7208 toplabel: alphanumerics with at least one letter, or alphanumerics
 * and inner hyphens. */
static int toplabel_ok(const char *s, size_t len)
{
    if (len == 0 || len > 63)
        return 0;
    int alpha = 0, hyphen = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_alpha((unsigned char)s[i]))
            alpha = 1;
        else if (s[i] == '-')
            hyphen = 1;
        else if (!is_digit((unsigned char)s[i]))
            return 0;
    }
    if (hyphen)
        return s[0] != '-' && s[len - 1] != '-';
    return alpha;
}

/* domain_spec_check - macro-string domain-end (RFC 7208 7.1). 0 / -1. */
static int domain_spec_check(const char *s, size_t len, char *err, size_t errlen)
{
    int ends_macro = 0;
    if (len == 0) {
        snprintf(err, errlen, "empty domain-spec");
        return -1;
    }
    if (macro_string_check(s, len, 0, &ends_macro, err, errlen) != 0)
        return -1;
    if (ends_macro)
        return 0;
    size_t end = len;
    if (s[end - 1] == '.')
        end--;
    size_t dot = end;
    while (dot > 0 && s[dot - 1] != '.')
        dot--;
    if (dot == 0 || !toplabel_ok(s + dot, end - dot)) {
        snprintf(err, errlen, "'%.*s' does not end with a valid top label",
                 (int)(len > 80 ? 80 : len), s);
        return -1;
    }
    return 0;
}

/* cidr_num - digits (no leading zero unless "0") at s[0..len) not above max. -1 if bad. */
static int cidr_num(const char *s, size_t len, int max)
{
    if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= max ? v : -1;
}

/* ip4_strict - dotted quad without leading zeros. */
static int ip4_strict(const char *s, size_t len, unsigned char out[4])
{
    char buf[16];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    int parts = 0;
    for (const char *p = buf; *p;) {
        const char *q = p;
        while (is_digit((unsigned char)*q))
            q++;
        if (q == p || q - p > 3 || (q - p > 1 && *p == '0'))
            return -1;
        parts++;
        if (*q == '.' && parts < 4)
            p = q + 1;
        else if (*q == '\0')
            p = q;
        else
            return -1;
    }
    return parts == 4 && inet_pton(AF_INET, buf, out) == 1 ? 0 : -1;
}

/* split_dual_cidr - strip "/n", "//n" or "/n//n" from the end of s[0..*len); sets the
 * prefixes (defaults 32 / 128). 0 / -1 for a malformed prefix. */
static int split_dual_cidr(const char *s, size_t *len, int *c4, int *c6, char *err, size_t errlen)
{
    *c4 = 32;
    *c6 = 128;
    size_t n = *len;
    /* "//digits" at the end */
    size_t d = n;
    while (d > 0 && is_digit((unsigned char)s[d - 1]))
        d--;
    if (d >= 2 && d < n && s[d - 1] == '/' && s[d - 2] == '/') {
        int v = cidr_num(s + d, n - d, 128);
        if (v < 0) {
            snprintf(err, errlen, "bad IPv6 prefix length '%.*s'", (int)(n - d), s + d);
            return -1;
        }
        *c6 = v;
        n = d - 2;
        d = n;
        while (d > 0 && is_digit((unsigned char)s[d - 1]))
            d--;
    }
    if (d >= 1 && d < n && s[d - 1] == '/' && !(d >= 2 && s[d - 2] == '/')) {
        int v = cidr_num(s + d, n - d, 32);
        if (v < 0) {
            snprintf(err, errlen, "bad IPv4 prefix length '%.*s'", (int)(n - d), s + d);
            return -1;
        }
        *c4 = v;
        n = d - 1;
    }
    /* Anything else ending in '/' or containing "//" at the end is malformed. */
    if (n > 0 && s[n - 1] == '/') {
        snprintf(err, errlen, "malformed prefix length");
        return -1;
    }
    *len = n;
    return 0;
}

static const struct {
    const char *name;
    enum term_kind kind;
} mech_names[] = {{"all", T_ALL}, {"include", T_INCLUDE}, {"a", T_A},     {"mx", T_MX},
                  {"ptr", T_PTR}, {"ip4", T_IP4},         {"ip6", T_IP6}, {"exists", T_EXISTS}};

/* ip_term - the ":network[/prefix]" of an ip4 or ip6 term (t->kind says which) into t. */
static int ip_term(struct term *t, const char *s, size_t len, const char *rest, size_t rlen,
                   char *err, size_t errlen)
{
    const int v4 = t->kind == T_IP4;
    const char *name = v4 ? "ip4" : "ip6";
    int shown = (int)(len > 60 ? 60 : len);
    if (rlen < 2 || rest[0] != ':') {
        snprintf(err, errlen, "'%s' needs ':address'", name);
        return -1;
    }
    const char *a = rest + 1;
    size_t alen = rlen - 1;
    const char *slash = memchr(a, '/', alen);
    int prefix = v4 ? 32 : 128;
    if (slash) {
        prefix = cidr_num(slash + 1, alen - (size_t)(slash + 1 - a), v4 ? 32 : 128);
        if (prefix < 0) {
            snprintf(err, errlen, "bad %s prefix length in '%.*s'", name, shown, s);
            return -1;
        }
        alen = (size_t)(slash - a);
    }
    if (v4) {
        t->cidr4 = prefix;
        if (ip4_strict(a, alen, t->net) != 0) {
            snprintf(err, errlen, "bad ip4 address in '%.*s'", shown, s);
            return -1;
        }
        return 0;
    }
    t->cidr6 = prefix;
    char buf[64];
    if (alen == 0 || alen >= sizeof(buf)) {
        snprintf(err, errlen, "bad ip6 address in '%.*s'", shown, s);
        return -1;
    }
    memcpy(buf, a, alen);
    buf[alen] = '\0';
    if (inet_pton(AF_INET6, buf, t->net) != 1) {
        snprintf(err, errlen, "bad ip6 address '%s'", buf);
        return -1;
    }
    return 0;
}

/* term_parse - one term (between spaces) into t. 0 / -1 with the reason. */
static int term_parse(const char *s, size_t len, struct term *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->text = s;
    t->textlen = len;
    t->qualifier = '+';
    /* A modifier: name "=" ... */
    size_t i = 0;
    while (i < len && (is_alnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
        i++;
    if (i < len && s[i] == '=') {
        if (i == 0 || !is_alpha((unsigned char)s[0])) {
            snprintf(err, errlen, "bad modifier name in '%.*s'", (int)(len > 60 ? 60 : len), s);
            return -1;
        }
        t->arg = s + i + 1;
        t->arglen = len - i - 1;
        if (i == 8 && strncasecmp(s, "redirect", 8) == 0)
            t->kind = T_REDIRECT;
        else if (i == 3 && strncasecmp(s, "exp", 3) == 0)
            t->kind = T_EXP;
        else
            t->kind = T_UNKNOWN_MOD;
        if (t->kind == T_UNKNOWN_MOD)
            return macro_string_check(t->arg, t->arglen, 0, NULL, err, errlen);
        return domain_spec_check(t->arg, t->arglen, err, errlen);
    }
    /* A directive: [qualifier] mechanism */
    i = 0;
    if (len > 0 && strchr("+-~?", s[0])) {
        t->qualifier = s[0];
        i = 1;
    }
    size_t n0 = i;
    while (i < len && is_alnum((unsigned char)s[i]))
        i++;
    size_t nlen = i - n0;
    int found = 0;
    for (size_t k = 0; k < sizeof(mech_names) / sizeof(mech_names[0]); k++)
        if (strlen(mech_names[k].name) == nlen &&
            strncasecmp(s + n0, mech_names[k].name, nlen) == 0) {
            t->kind = mech_names[k].kind;
            found = 1;
        }
    if (!found) {
        snprintf(err, errlen, "unknown mechanism '%.*s'", (int)(len > 60 ? 60 : len), s);
        return -1;
    }
    const char *rest = s + i;
    size_t rlen = len - i;
    switch (t->kind) {
    case T_ALL:
        if (rlen) {
            snprintf(err, errlen, "'all' takes no argument");
            return -1;
        }
        return 0;
    case T_INCLUDE:
    case T_EXISTS:
        if (rlen < 1 || rest[0] != ':') {
            snprintf(err, errlen, "'%.*s' needs ':domain'", (int)nlen, s + n0);
            return -1;
        }
        t->arg = rest + 1;
        t->arglen = rlen - 1;
        return domain_spec_check(t->arg, t->arglen, err, errlen);
    case T_PTR:
        if (rlen == 0)
            return 0;
        if (rest[0] != ':') {
            snprintf(err, errlen, "malformed 'ptr' term");
            return -1;
        }
        t->arg = rest + 1;
        t->arglen = rlen - 1;
        return domain_spec_check(t->arg, t->arglen, err, errlen);
    case T_A:
    case T_MX: {
        size_t alen = rlen;
        if (split_dual_cidr(rest, &alen, &t->cidr4, &t->cidr6, err, errlen) != 0)
            return -1;
        if (alen == 0)
            return 0;
        if (rest[0] != ':') {
            snprintf(err, errlen, "malformed '%.*s' term", (int)nlen, s + n0);
            return -1;
        }
        t->arg = rest + 1;
        t->arglen = alen - 1;
        return domain_spec_check(t->arg, t->arglen, err, errlen);
    }
    case T_IP4:
    case T_IP6:
        return ip_term(t, s, len, rest, rlen, err, errlen);
    default:
        break;
    }
    return -1;
}

int spf_record_is_spf1(const char *s, size_t len)
{
    return len >= 6 && strncasecmp(s, "v=spf1", 6) == 0 && (len == 6 || s[6] == ' ');
}

/* next_term - the next space-separated term after *pos, or 0 at the end. */
static int next_term(const char *s, size_t len, size_t *pos, const char **t, size_t *tlen)
{
    size_t i = *pos;
    while (i < len && s[i] == ' ')
        i++;
    if (i >= len)
        return 0;
    size_t j = i;
    while (j < len && s[j] != ' ')
        j++;
    *t = s + i;
    *tlen = j - i;
    *pos = j;
    return 1;
}

/* A record's terms, parsed once: a few on the stack, more on the heap. */
#define TERMS_INLINE 12
struct terms {
    struct term *v;
    size_t n, cap;
    struct term inline_v[TERMS_INLINE];
    struct term redirect, exp; /* kind 0 (T_ALL) and arg NULL when absent */
    int has_all;
};

static void terms_free(struct terms *ts)
{
    if (ts->v != ts->inline_v)
        free(ts->v);
}

/* record_scan - parse and check every term of a record into ts (terms_free it, also after
 * an error); find its redirect, exp and whether it has an "all". 0 / -1 with the reason. */
static int record_scan(const char *s, size_t len, struct terms *ts, char *err, size_t errlen)
{
    memset(ts, 0, offsetof(struct terms, inline_v));
    ts->v = ts->inline_v;
    ts->cap = TERMS_INLINE;
    memset(&ts->redirect, 0, sizeof(ts->redirect));
    memset(&ts->exp, 0, sizeof(ts->exp));
    ts->has_all = 0;
    if (len > SPF_MAX_RECORD) {
        snprintf(err, errlen, "record of %zu bytes (more than %d)", len, SPF_MAX_RECORD);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0' || (unsigned char)s[i] > 0x7e || ((unsigned char)s[i] < 0x20)) {
            snprintf(err, errlen, "record holds a non-printable or non-ASCII byte (0x%02x)",
                     (unsigned char)s[i]);
            return -1;
        }
    size_t pos = 6;
    const char *tp;
    size_t tl;
    int nredirect = 0, nexp = 0;
    while (next_term(s, len, &pos, &tp, &tl)) {
        if (ts->n == ts->cap) {
            size_t cap = ts->cap * 4;
            struct term *v = xmalloc(cap * sizeof(*v));
            memcpy(v, ts->v, ts->n * sizeof(*v));
            if (ts->v != ts->inline_v)
                free(ts->v);
            ts->v = v;
            ts->cap = cap;
        }
        struct term *t = &ts->v[ts->n];
        if (term_parse(tp, tl, t, err, errlen) != 0)
            return -1;
        ts->n++;
        if (t->kind == T_REDIRECT) {
            ts->redirect = *t;
            nredirect++;
        } else if (t->kind == T_EXP) {
            ts->exp = *t;
            nexp++;
        } else if (t->kind == T_ALL) {
            ts->has_all = 1;
        }
    }
    if (nredirect > 1 || nexp > 1) {
        snprintf(err, errlen, "more than one %s= modifier", nredirect > 1 ? "redirect" : "exp");
        return -1;
    }
    return 0;
}

int spf_record_check(const char *text, size_t len, char *err, size_t errlen)
{
    if (!spf_record_is_spf1(text, len)) {
        snprintf(err, errlen, "not a v=spf1 record");
        return -1;
    }
    struct terms ts;
    int rc = record_scan(text, len, &ts, err, errlen);
    terms_free(&ts);
    return rc;
}

/* ---- DNS through the caller ---------------------------------------------------------------- */

/* ev_get - the answer for (type, name), or NULL after telling the caller it is wanted. */
static const struct dns_result *ev_get(struct ev *ev, int type, const char *name)
{
    const struct dns_result *r = ev->dns->get(ev->dns->arg, type, name);
    if (!r) {
        ev->dns->want(ev->dns->arg, type, name);
        ev->out->pending = 1;
    }
    return r;
}

static int is_void(const struct dns_result *r)
{
    return r->status == DNS_NXDOMAIN || r->status == DNS_NODATA ||
           (r->status == DNS_OK && r->count == 0);
}
static int is_temp(const struct dns_result *r)
{
    return r->status == DNS_TEMPFAIL || r->status == DNS_BADRESP;
}

/* ev_void - count a lookup that found nothing; EV_PERM past the limit, else 0. */
static int ev_void(struct ev *ev, const char *what)
{
    ev->out->voids++;
    if (ev->out->voids > ev->in->max_void) {
        ev_problem(ev, "more than %d void lookups (the last: %s)", ev->in->max_void, what);
        return EV_PERM;
    }
    return 0;
}

/* ev_count - count a DNS-querying term; EV_PERM past the limit, else 0. */
static int ev_count(struct ev *ev, const struct term *t)
{
    ev->out->lookups++;
    if (ev->out->lookups > ev->in->max_lookups) {
        ev_problem(ev, "more than %d DNS-querying terms (the %dth: %.*s)", ev->in->max_lookups,
                   ev->out->lookups, (int)(t->textlen > 80 ? 80 : t->textlen), t->text);
        return EV_PERM;
    }
    return 0;
}

/* ---- macros -------------------------------------------------------------------------------- */

/* An expansion buffer. A domain name keeps its tail when it overflows (names are cut on the
 * left to 253 bytes anyway); explanation text is cut on the right. */
struct buf {
    char *p;
    size_t len, cap;
    int tail;     /* keep the last cap/2 bytes instead of overflowing */
    int overflow; /* (text mode) something was cut */
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n >= b->cap && b->tail) {
        size_t keep = b->cap / 2;
        if (n >= keep) {
            memcpy(b->p, s + n - keep, keep);
            b->len = keep;
        } else {
            size_t old = keep - n; /* bytes of the existing tail kept */
            memmove(b->p, b->p + b->len - old, old);
            memcpy(b->p + old, s, n);
            b->len = keep;
        }
        b->p[b->len] = '\0';
        return;
    }
    if (b->len + n >= b->cap) {
        b->overflow = 1;
        n = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* in_domain - name is domain or one of its subdomains (any case). */
static int in_domain(const char *name, const char *domain)
{
    size_t nlen = strlen(name), dlen = strlen(domain);
    return nlen >= dlen && strcasecmp(name + nlen - dlen, domain) == 0 &&
           (nlen == dlen || name[nlen - dlen - 1] == '.');
}

/* resolves_back - 1 if name's A (AAAA) records hold the client address, 0 if not, EV_PENDING
 * while the answer is missing: a PTR name "validated" as RFC 7208 5.5 says. */
static int resolves_back(struct ev *ev, const char *name)
{
    const struct dns_result *a = ev_get(ev, ev->family == AF_INET ? DNS_A : DNS_AAAA, name);
    if (!a)
        return EV_PENDING;
    if (a->status != DNS_OK || !a->addrs)
        return 0;
    size_t bytes = ev->family == AF_INET ? 4 : 16;
    for (size_t k = 0; k < a->count; k++)
        if (memcmp(a->addrs + k * bytes, ev->ip, bytes) == 0)
            return 1;
    return 0;
}

/* p_value - the %{p} macro: a validated name of the client (preferring domain or one of its
 * subdomains), "unknown" if none. EV_PENDING while answers are missing. */
static int p_value(struct ev *ev, const char *domain, char *out, size_t outlen)
{
    char rname[128];
    snprintf(out, outlen, "unknown");
    if (dns_reverse_name(ev->ipstr, NULL, rname, sizeof(rname)) != 0)
        return 0;
    const struct dns_result *ptr = ev_get(ev, DNS_PTR, rname);
    if (!ptr)
        return EV_PENDING;
    if (ptr->status != DNS_OK)
        return 0;
    int missing = 0, found = 0;
    for (size_t i = 0; i < ptr->count && i < SPF_MAX_NAMES; i++) {
        const char *name = ptr->items[i];
        if (!dns_name_ok(name))
            continue;
        int rc = resolves_back(ev, name);
        if (rc == EV_PENDING)
            missing = 1;
        if (rc != 1)
            continue;
        int sub = in_domain(name, domain);
        if (!found || sub)
            snprintf(out, outlen, "%s", name);
        if (sub)
            break;
        found = 1;
    }
    return missing ? EV_PENDING : 0;
}

/*
 * expand - a macro-string (already checked by macro_string_check) into b, with domain as
 * %{d}. 0 / EV_PENDING (%{p} needs answers) / EV_PERM (too long).
 */
static int expand(struct ev *ev, const char *s, size_t len, const char *domain, struct buf *b)
{
    for (size_t i = 0; i < len;) {
        if (s[i] != '%') {
            size_t j = i;
            while (j < len && s[j] != '%')
                j++;
            buf_add(b, s + i, j - i);
            i = j;
            continue;
        }
        char n = s[i + 1];
        if (n == '%' || n == '_' || n == '-') {
            buf_add(b, n == '%' ? "%" : n == '_' ? " " : "%20", n == '-' ? 3 : 1);
            i += 2;
            continue;
        }
        /* %{letter digits r delims} */
        size_t j = i + 2;
        char letter = s[j++];
        int upper = isupper((unsigned char)letter);
        letter = (char)tolower((unsigned char)letter);
        long keep = 0;
        while (is_digit((unsigned char)s[j])) {
            if (keep < 1000)
                keep = keep * 10 + (s[j] - '0');
            j++;
        }
        int reverse = 0;
        if (s[j] == 'r' || s[j] == 'R') {
            reverse = 1;
            j++;
        }
        char delims[16];
        size_t nd = 0;
        while (s[j] != '}') {
            if (nd + 1 < sizeof(delims))
                delims[nd++] = s[j];
            j++;
        }
        delims[nd] = '\0';
        if (nd == 0)
            strcpy(delims, ".");
        i = j + 1;

        /* The value. */
        char small[256];
        const char *v = small;
        size_t vlen;
        switch (letter) {
        case 's':
            v = ev->in->sender;
            vlen = strlen(v);
            break;
        case 'l':
            v = ev->local;
            vlen = ev->local_len;
            break;
        case 'o':
            v = ev->sdomain;
            vlen = strlen(v);
            break;
        case 'd':
            v = domain;
            vlen = strlen(v);
            break;
        case 'h':
            v = ev->in->helo ? ev->in->helo : "";
            vlen = strlen(v);
            break;
        case 'r':
            v = ev->in->receiver && *ev->in->receiver ? ev->in->receiver : "unknown";
            vlen = strlen(v);
            break;
        case 'c':
            v = ev->ipstr;
            vlen = strlen(v);
            break;
        case 'v':
            v = ev->family == AF_INET ? "in-addr" : "ip6";
            vlen = strlen(v);
            break;
        case 't':
            snprintf(small, sizeof(small), "%lld", (long long)time(NULL));
            vlen = strlen(small);
            break;
        case 'i':
            if (ev->family == AF_INET) {
                v = ev->ipstr;
            } else {
                static const char hex[] =
                    "0123456789ABCDEF"; /* as pyspf and the suite write them */
                size_t k = 0;
                for (int q = 0; q < 16; q++) {
                    small[k++] = hex[ev->ip[q] >> 4];
                    small[k++] = '.';
                    small[k++] = hex[ev->ip[q] & 15];
                    small[k++] = q == 15 ? '\0' : '.';
                }
            }
            vlen = strlen(v);
            break;
        case 'p': {
            int rc = p_value(ev, domain, small, sizeof(small));
            if (rc != 0)
                return rc;
            vlen = strlen(small);
            break;
        }
        default:
            return EV_PERM;
        }

        /* Bounded work however large the values: a CPU budget per evaluation. */
        ev->expanded += vlen;
        if (ev->expanded > SPF_EXPAND_BUDGET) {
            ev_problem(ev, "macro expansion budget (%d bytes) exceeded", SPF_EXPAND_BUDGET);
            return EV_PERM;
        }
        /* Split on the delimiters, reverse, keep the rightmost parts, join with dots; then
         * URL-escape for an upper-case letter (RFC 3986 unreserved characters kept). */
        char *part = xmalloc(vlen * 3 + 1);
        size_t plen = 0;
        size_t nparts = 1;
        for (size_t k = 0; k < vlen; k++)
            if (v[k] && strchr(delims, v[k]))
                nparts++;
        size_t *starts = xmalloc((nparts + 1) * sizeof(size_t));
        size_t np = 0;
        starts[np++] = 0;
        for (size_t k = 0; k < vlen; k++)
            if (v[k] && strchr(delims, v[k]))
                starts[np++] = k + 1;
        starts[nparts] = vlen + 1; /* one past the end of the last part's delimiter */
        size_t first = 0, count = nparts;
        if (keep > 0 && (size_t)keep < nparts) {
            first = nparts - (size_t)keep;
            count = (size_t)keep;
        }
        for (size_t k = 0; k < count; k++) {
            size_t idx = first + k; /* in the (possibly reversed) order */
            size_t pi = reverse ? nparts - 1 - idx : idx;
            size_t ps = starts[pi], pe = starts[pi + 1] - 1;
            if (k)
                part[plen++] = '.';
            for (size_t q = ps; q < pe; q++) {
                unsigned char c = (unsigned char)v[q];
                if (upper && !(is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~')) {
                    static const char hexd[] = "0123456789ABCDEF";
                    part[plen++] = '%';
                    part[plen++] = hexd[c >> 4];
                    part[plen++] = hexd[c & 15];
                } else {
                    part[plen++] = (char)c;
                }
            }
        }
        free(starts);
        buf_add(b, part, plen);
        free(part);
        if (b->overflow)
            return EV_PERM;
    }
    return b->overflow ? EV_PERM : 0;
}

/*
 * target_name - the name a term asks about: its domain-spec expanded (or the current domain),
 * cut on the left to 253 bytes by whole labels (RFC 7208 7.3), no trailing dot.
 */
static int target_name(struct ev *ev, const struct term *t, const char *domain, char *out,
                       size_t outlen)
{
    if (!t->arg) {
        snprintf(out, outlen, "%s", domain);
        return 0;
    }
    char *tmp = xmalloc(SPF_MAX_EXPAND);
    struct buf b = {tmp, 0, SPF_MAX_EXPAND, 1, 0};
    tmp[0] = '\0';
    int rc = expand(ev, t->arg, t->arglen, domain, &b);
    if (rc == EV_PERM)
        ev_problem(ev, "macro expansion of '%.*s' too long or invalid",
                   (int)(t->arglen > 60 ? 60 : t->arglen), t->arg);
    if (rc != 0) {
        free(tmp);
        return rc;
    }
    size_t len = b.len;
    if (len && tmp[len - 1] == '.')
        tmp[--len] = '\0';
    const char *p = tmp;
    while (len > 253) {
        const char *dot = memchr(p, '.', len);
        if (!dot) {
            p += len;
            len = 0;
            break;
        }
        len -= (size_t)(dot + 1 - p);
        p = dot + 1;
    }
    snprintf(out, outlen, "%.*s", (int)len, p);
    free(tmp);
    return 0;
}

/* addr_match - ip within net/prefix (bytes 4 or 16). */
static int addr_match(const unsigned char *ip, const unsigned char *net, int prefix, size_t bytes)
{
    int full = prefix / 8, rest = prefix % 8;
    if ((size_t)full > bytes)
        return 0;
    if (memcmp(ip, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char m = (unsigned char)(0xff << (8 - rest));
    return (ip[full] & m) == (net[full] & m);
}

/* addrs_match - any address of an A/AAAA answer within the client's prefix. */
static int addrs_match(const struct ev *ev, const struct dns_result *r, const struct term *t)
{
    if (r->status != DNS_OK || !r->addrs)
        return 0;
    size_t bytes = ev->family == AF_INET ? 4 : 16;
    int prefix = ev->family == AF_INET ? t->cidr4 : t->cidr6;
    for (size_t k = 0; k < r->count; k++)
        if (addr_match(ev->ip, r->addrs + k * bytes, prefix, bytes))
            return 1;
    return 0;
}

/* ---- check_host ---------------------------------------------------------------------------- */

static int check_host(struct ev *ev, const char *domain, int want_exp, enum spf_result *res);

static int mech_a(struct ev *ev, const struct term *t, const char *name)
{
    const struct dns_result *r = ev_get(ev, ev->family == AF_INET ? DNS_A : DNS_AAAA, name);
    if (!r)
        return EV_PENDING;
    if (is_temp(r)) {
        ev_problem(ev, "%s lookup of %s for '%.*s': %s", dns_type_name(r->type), name,
                   (int)t->textlen, t->text, r->detail ? r->detail : "temporary failure");
        return EV_TEMP;
    }
    if (is_void(r))
        return ev_void(ev, name) ? EV_PERM : EV_NOMATCH;
    return addrs_match(ev, r, t) ? EV_MATCH : EV_NOMATCH;
}

static int mech_mx(struct ev *ev, const struct term *t, const char *name)
{
    const struct dns_result *r = ev_get(ev, DNS_MX, name);
    if (!r)
        return EV_PENDING;
    if (is_temp(r)) {
        ev_problem(ev, "MX lookup of %s: %s", name, r->detail ? r->detail : "temporary failure");
        return EV_TEMP;
    }
    if (is_void(r))
        return ev_void(ev, name) ? EV_PERM : EV_NOMATCH;
    if (r->count > SPF_MAX_NAMES) {
        ev_problem(ev, "%s has %zu MX records (more than %d)", name, r->count, SPF_MAX_NAMES);
        return EV_PERM;
    }
    int missing = 0, temp = 0;
    for (size_t i = 0; i < r->count; i++) {
        const char *host = r->items[i];
        if (!host[0] || !dns_name_ok(host)) /* null MX (RFC 7505) */
            continue;
        const struct dns_result *a = ev_get(ev, ev->family == AF_INET ? DNS_A : DNS_AAAA, host);
        if (!a) {
            missing = 1;
            continue;
        }
        if (is_temp(a)) {
            if (!temp)
                ev_problem(ev, "address lookup of MX host %s: %s", host,
                           a->detail ? a->detail : "temporary failure");
            temp = 1;
            continue;
        }
        if (!missing && !temp && addrs_match(ev, a, t))
            return EV_MATCH;
    }
    if (missing)
        return EV_PENDING;
    return temp ? EV_TEMP : EV_NOMATCH;
}

static int mech_ptr(struct ev *ev, const char *target)
{
    char rname[128];
    if (dns_reverse_name(ev->ipstr, NULL, rname, sizeof(rname)) != 0)
        return EV_NOMATCH;
    const struct dns_result *ptr = ev_get(ev, DNS_PTR, rname);
    if (!ptr)
        return EV_PENDING;
    if (is_temp(ptr))
        return EV_NOMATCH; /* RFC 7208 5.5: a DNS error: no match */
    if (is_void(ptr))
        return ev_void(ev, rname) ? EV_PERM : EV_NOMATCH;
    int missing = 0;
    for (size_t i = 0; i < ptr->count && i < SPF_MAX_NAMES; i++) {
        const char *name = ptr->items[i];
        /* Only names in the target domain matter; skip the others' lookups. */
        if (!dns_name_ok(name) || !in_domain(name, target))
            continue;
        int rc = resolves_back(ev, name);
        if (rc == EV_PENDING)
            missing = 1;
        else if (rc == 1 && !missing)
            return EV_MATCH;
    }
    return missing ? EV_PENDING : EV_NOMATCH;
}

static int mech_exists(struct ev *ev, const char *name)
{
    const struct dns_result *r = ev_get(ev, DNS_A, name);
    if (!r)
        return EV_PENDING;
    if (is_temp(r)) {
        ev_problem(ev, "A lookup of %s (exists): %s", name,
                   r->detail ? r->detail : "temporary failure");
        return EV_TEMP;
    }
    if (is_void(r))
        return ev_void(ev, name) ? EV_PERM : EV_NOMATCH;
    return EV_MATCH;
}

/* explanation - the exp= text of a record that failed, expanded; "" when there is none or it
 * is unusable (RFC 7208 6.2: then no explanation, and no error). */
static int explanation(struct ev *ev, const struct term *exp, const char *domain)
{
    ev->out->explanation[0] = '\0';
    if (!exp->arg)
        return 0;
    char name[256];
    char *saved = xstrdup(ev->out->problem);
    int rc = target_name(ev, exp, domain, name, sizeof(name));
    snprintf(ev->out->problem, sizeof(ev->out->problem), "%s", saved);
    free(saved);
    if (rc == EV_PENDING)
        return rc;
    if (rc != 0 || !dns_name_ok(name))
        return 0;
    const struct dns_result *r = ev_get(ev, DNS_TXT, name);
    if (!r)
        return EV_PENDING;
    if (r->status != DNS_OK || r->count != 1)
        return 0;
    const char *text = r->items[0];
    size_t len = r->lens[0];
    if (len > 2048 || memchr(text, '\0', len))
        return 0;
    char err[128];
    if (macro_string_check(text, len, 1, NULL, err, sizeof(err)) != 0)
        return 0;
    char tmp[1024];
    struct buf b = {tmp, 0, sizeof(tmp), 0, 0};
    tmp[0] = '\0';
    rc = expand(ev, text, len, domain, &b);
    if (rc == EV_PENDING)
        return rc;
    if (rc != 0 && !b.overflow)
        return 0; /* the budget: no explanation */
    short_copy(ev->out->explanation, sizeof(ev->out->explanation), tmp, b.len);
    return 0;
}

static enum spf_result qualifier_result(char q)
{
    return q == '-' ? SPF_FAIL : q == '~' ? SPF_SOFTFAIL : q == '?' ? SPF_NEUTRAL : SPF_PASS;
}

/* set_decider - note which record and term decided. */
static void set_decider(struct ev *ev, const char *domain, const char *rec, size_t reclen,
                        const char *term, size_t termlen)
{
    short_copy(ev->out->record_domain, sizeof(ev->out->record_domain), domain, strlen(domain));
    short_copy(ev->out->record, sizeof(ev->out->record), rec, reclen);
    short_copy(ev->out->mechanism, sizeof(ev->out->mechanism), term, termlen);
}

/* eval_terms - evaluate a parsed record of domain (see check_host). */
static int eval_terms(struct ev *ev, const char *domain, int want_exp, enum spf_result *res,
                      const char *rec, size_t reclen, const struct terms *ts)
{
    /* Prefetch the include and redirect targets that need no macro expansion. */
    for (size_t i = 0; i < ts->n; i++) {
        const struct term *pt = &ts->v[i];
        if ((pt->kind == T_INCLUDE || (pt->kind == T_REDIRECT && !ts->has_all)) &&
            pt->arglen < 254 && !memchr(pt->arg, '%', pt->arglen)) {
            char name[256];
            snprintf(name, sizeof(name), "%.*s", (int)pt->arglen, pt->arg);
            size_t n = strlen(name);
            if (n && name[n - 1] == '.')
                name[n - 1] = '\0';
            if (dns_name_ok(name) && !ev->dns->get(ev->dns->arg, DNS_TXT, name))
                ev->dns->want(ev->dns->arg, DNS_TXT, name);
        }
    }

    for (size_t i = 0; i < ts->n; i++) {
        if (++ev->terms_walked > SPF_MAX_TERMS) {
            ev_problem(ev, "evaluation too complex (more than %d terms)", SPF_MAX_TERMS);
            return EV_PERM;
        }
        const struct term t = ts->v[i];
        int rc = EV_NOMATCH;
        char name[256];
        switch (t.kind) {
        case T_REDIRECT:
        case T_EXP:
        case T_UNKNOWN_MOD:
            continue;
        case T_ALL:
            rc = EV_MATCH;
            break;
        case T_IP4:
            rc = ev->family == AF_INET && addr_match(ev->ip, t.net, t.cidr4, 4);
            break;
        case T_IP6:
            rc = ev->family == AF_INET6 && addr_match(ev->ip, t.net, t.cidr6, 16);
            break;
        case T_A:
        case T_MX:
        case T_PTR:
        case T_EXISTS:
        case T_INCLUDE:
            if ((rc = ev_count(ev, &t)) != 0)
                return rc;
            if ((rc = target_name(ev, &t, domain, name, sizeof(name))) != 0)
                return rc;
            if (t.kind == T_INCLUDE) {
                if (!dns_name_ok(name)) {
                    ev_problem(ev, "include of an invalid name '%s'", name);
                    return EV_PERM;
                }
                enum spf_result sub;
                int depth = ev->depth;
                rc = check_host(ev, name, 0, &sub);
                ev->depth = depth;
                if (rc != 0)
                    return rc;
                if (sub == SPF_NONE) {
                    ev_problem(ev, "include:%s: that domain has no SPF record", name);
                    return EV_PERM;
                }
                rc = sub == SPF_PASS ? EV_MATCH : EV_NOMATCH;
            } else if (!dns_name_ok(name)) {
                rc = ev_void(ev, name) ? EV_PERM : EV_NOMATCH;
            } else if (t.kind == T_A) {
                rc = mech_a(ev, &t, name);
            } else if (t.kind == T_MX) {
                rc = mech_mx(ev, &t, name);
            } else if (t.kind == T_PTR) {
                rc = mech_ptr(ev, name);
            } else {
                rc = mech_exists(ev, name);
            }
            break;
        }
        if (rc < 0)
            return rc;
        if (rc == EV_MATCH) {
            *res = qualifier_result(t.qualifier);
            set_decider(ev, domain, rec, reclen, t.text, t.textlen);
            if (*res == SPF_FAIL && want_exp)
                return explanation(ev, &ts->exp, domain);
            return 0;
        }
    }
    if (ts->redirect.arg && !ts->has_all) {
        char name[256];
        int rc;
        if ((rc = ev_count(ev, &ts->redirect)) != 0)
            return rc;
        if ((rc = target_name(ev, &ts->redirect, domain, name, sizeof(name))) != 0)
            return rc;
        if (!dns_name_ok(name)) {
            ev_problem(ev, "redirect to an invalid name '%s'", name);
            return EV_PERM;
        }
        int depth = ev->depth;
        rc = check_host(ev, name, want_exp, res);
        ev->depth = depth;
        if (rc != 0)
            return rc;
        if (*res == SPF_NONE) {
            ev_problem(ev, "redirect=%s: that domain has no SPF record", name);
            return EV_PERM;
        }
        return 0;
    }
    *res = SPF_NEUTRAL;
    set_decider(ev, domain, rec, reclen, "default", 7);
    return 0;
}

/*
 * check_host - RFC 7208 4: fetch and select the record of domain, evaluate it. Returns 0 with
 * *res, or EV_PENDING / EV_TEMP / EV_PERM. want_exp: compute the explanation of a fail here
 * (not inside include).
 */
static int check_host(struct ev *ev, const char *domain, int want_exp, enum spf_result *res)
{
    if (++ev->depth > SPF_MAX_DEPTH) {
        ev_problem(ev, "records nested more than %d deep", SPF_MAX_DEPTH);
        return EV_PERM;
    }
    const struct dns_result *r = ev_get(ev, DNS_TXT, domain);
    if (!r)
        return EV_PENDING;
    if (is_temp(r)) {
        ev_problem(ev, "TXT lookup of %s: %s", domain, r->detail ? r->detail : "temporary failure");
        return EV_TEMP;
    }
    const char *rec = NULL;
    size_t reclen = 0;
    int nrec = 0;
    if (r->status == DNS_OK)
        for (size_t i = 0; i < r->count; i++)
            if (spf_record_is_spf1(r->items[i], r->lens[i])) {
                rec = r->items[i];
                reclen = r->lens[i];
                nrec++;
            }
    if (nrec == 0) {
        *res = SPF_NONE;
        return 0;
    }
    if (nrec > 1) {
        ev_problem(ev, "%s has %d v=spf1 records (RFC 7208 4.5: exactly one)", domain, nrec);
        return EV_PERM;
    }
    struct terms ts;
    char err[200];
    if (record_scan(rec, reclen, &ts, err, sizeof(err)) != 0) {
        terms_free(&ts);
        ev_problem(ev, "syntax error in the record of %s: %s", domain, err);
        set_decider(ev, domain, rec, reclen, "", 0);
        return EV_PERM;
    }
    int rc = eval_terms(ev, domain, want_exp, res, rec, reclen, &ts);
    terms_free(&ts);
    return rc;
}

/* domain_valid - RFC 7208 4.3: a name DNS may be asked about, with more than one label, not
 * an address literal. */
static int domain_valid(const char *d)
{
    size_t len = strlen(d);
    if (len && d[len - 1] == '.')
        len--;
    return d[0] != '[' && memchr(d, '.', len) && dns_name_ok(d);
}

enum spf_result spf_check_host(const struct spf_input *in, const struct spf_dns *dns,
                               struct spf_outcome *out)
{
    memset(out, 0, sizeof(*out));
    struct ev ev = {.in = in, .dns = dns, .out = out};
    if (addr_parse(in->ip, &ev.family, ev.ip) != 0) {
        snprintf(out->problem, sizeof(out->problem), "client address '%.60s' is not an address",
                 in->ip);
        return out->result = SPF_PERMERROR;
    }
    inet_ntop(ev.family, ev.ip, ev.ipstr, sizeof(ev.ipstr));

    /* The sender's local part and domain ("postmaster" when there is no local part). */
    const char *at = strrchr(in->sender, '@');
    if (at && at > in->sender) {
        ev.local = in->sender;
        ev.local_len = (size_t)(at - in->sender);
    } else {
        ev.local = "postmaster";
        ev.local_len = 10;
    }
    ev.sdomain = at ? at + 1 : in->sender;
    short_copy(out->domain, sizeof(out->domain), ev.sdomain, strlen(ev.sdomain));
    if (!domain_valid(ev.sdomain) || strlen(ev.sdomain) >= sizeof(out->domain)) {
        snprintf(out->problem, sizeof(out->problem), "'%s' is not a valid domain name",
                 out->domain);
        return out->result = SPF_NONE;
    }
    char domain[256];
    snprintf(domain, sizeof(domain), "%s", ev.sdomain);
    size_t dl = strlen(domain);
    if (dl && domain[dl - 1] == '.')
        domain[dl - 1] = '\0';

    enum spf_result res = SPF_NONE;
    int rc = check_host(&ev, domain, 1, &res);
    if (out->pending || rc == EV_PENDING) {
        out->pending = 1;
        return out->result = SPF_NONE;
    }
    if (rc == EV_TEMP)
        res = SPF_TEMPERROR;
    else if (rc == EV_PERM)
        res = SPF_PERMERROR;
    if (res != SPF_TEMPERROR && res != SPF_PERMERROR)
        out->problem[0] = '\0';
    return out->result = res;
}

const char *spf_result_name(enum spf_result r)
{
    static const char *const names[] = {"none",     "neutral",   "pass",     "fail",
                                        "softfail", "temperror", "permerror"};
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}
