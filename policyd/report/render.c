/*
 * render.c - print a finished tally (see render.h): an 80-column text report, or JSON.
 *
 * Text is wrapped at word boundaries under a label column; long causes are cut after a few
 * lines in the table (JSON has them whole, up to TALLY_TEXT_MAX bytes). Counts that the
 * bounded top lists can only estimate are marked "~" (JSON: "exact": false).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/report/render.h"

#include "policyd/lib/json.h"
#include "policyd/lib/xalloc.h"
#include "policyd/report/tally.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 80
#define LABEL 13 /* "  " + label padded to 11 */

/* fmt_count - n with thousands separators. */
static const char *fmt_count(unsigned long n, char *buf, size_t len)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof(tmp), "%lu", n);
    size_t o = 0;
    for (int i = 0; i < k && o + 1 < len; i++) {
        if (i && (k - i) % 3 == 0 && o + 1 < len)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

/* fmt_time - local "YYYY-MM-DD HH:MM:SS" ("-" for none). */
static const char *fmt_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (!t || !localtime_r(&t, &tm)) {
        snprintf(buf, len, "-");
        return buf;
    }
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

/* iso_time - "2026-12-07T16:38:58+01:00" in local time. */
static const char *iso_time(time_t t, char *buf, size_t len)
{
    struct tm tm;
    char z[8];
    if (!localtime_r(&t, &tm) || len < 26) {
        snprintf(buf, len, "-");
        return buf;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(z, sizeof(z), "%z", &tm); /* +0100 */
    size_t n = strlen(buf);
    snprintf(buf + n, len - n, "%.3s:%.2s", z, z + 3);
    return buf;
}

/* wrap - "  label      text" wrapped at WIDTH; at most maxlines lines (0: all), "..." when
 * cut. Bytes outside printable ASCII are shown as '?' (log files hold anything). */
static void wrap(FILE *f, const char *label, const char *text, size_t maxlines)
{
    size_t width = WIDTH - LABEL, len = strlen(text), pos = 0, lines = 0;
    while (pos < len || lines == 0) {
        while (pos < len && text[pos] == ' ')
            pos++;
        size_t take = len - pos;
        if (take > width) {
            take = width;
            while (take > width / 2 && text[pos + take] != ' ')
                take--;
            if (text[pos + take] != ' ')
                take = width; /* one long word: cut it */
        }
        int last = maxlines && lines + 1 == maxlines && pos + take < len;
        if (last && take > width - 4)
            take = width - 4;
        fprintf(f, "%*s%-*s", 2, "", LABEL - 2, lines ? "" : label);
        for (size_t i = 0; i < take; i++) {
            unsigned char c = (unsigned char)text[pos + i];
            fputc(c >= 0x20 && c < 0x7f ? c : '?', f);
        }
        fputs(last ? " ...\n" : "\n", f);
        pos += take;
        lines++;
        if (last)
            break;
    }
}

/* say - a formatted line wrapped at WIDTH, continued with 4 spaces of indent; at most
 * maxlines lines (0: all), "..." when cut. */
static void say(FILE *f, size_t maxlines, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(FILE *f, size_t maxlines, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    size_t len = strlen(text), pos = 0;
    for (size_t line = 0; pos < len; line++) {
        size_t indent = line ? 4 : 0, width = WIDTH - indent, take = len - pos;
        int last = maxlines && line + 1 == maxlines;
        if (take > width) {
            size_t room = last ? width - 4 : width;
            take = room;
            while (take > room / 2 && text[pos + take] != ' ')
                take--;
            if (text[pos + take] != ' ')
                take = room;
        }
        fprintf(f, "%*s%.*s%s\n", (int)indent, "", (int)take, text + pos,
                last && pos + take < len ? " ..." : "");
        if (last)
            break;
        pos += take;
        while (pos < len && text[pos] == ' ')
            pos++;
    }
}

/* top_text - "203.0.113.7 600, 198.51.100.3 ~20, +4 more" for the table; with mark_refused,
 * clients policyd refused too get a '*'. Estimates more than half uncertain are left out
 * (with many values of even frequency, the bounded counter cannot rank them). */
static void top_text(struct topk *k, size_t top, const struct tally *t, int mark_refused, char *buf,
                     size_t len)
{
    size_t n, o = 0, shown = 0;
    const struct topk_item *it = topk_sorted(k, &n);
    buf[0] = 0;
    for (size_t i = 0; i < n && shown < top && o < len; i++) {
        char c[32];
        if (it[i].error * 2 > it[i].count)
            continue;
        int star = mark_refused && tally_client_refused(t, it[i].value);
        o += (size_t)snprintf(buf + o, len - o, "%s%s%s %s%s", shown ? ", " : "", it[i].value,
                              star ? "*" : "", it[i].error ? "~" : "",
                              fmt_count(it[i].count, c, sizeof(c)));
        shown++;
    }
    if (o >= len)
        return;
    if (!shown && n)
        snprintf(buf, len, "over %zu distinct values, none frequent enough to rank", k->cap);
    else if (k->replaced)
        snprintf(buf + o, len - o, ", and more");
    else if (n > shown)
        snprintf(buf + o, len - o, ", +%zu more", n - shown);
}

/* header - a group's first line: title left, count right, after an empty line (compact: not). */
static void header_line(FILE *f, const char *title, unsigned long count, int compact)
{
    char c[32], t[WIDTH];
    fmt_count(count, c, sizeof(c));
    int room = WIDTH - 2 - (int)strlen(c);
    if ((int)strlen(title) > room)
        snprintf(t, sizeof(t), "%.*s...", room - 3, title);
    else
        snprintf(t, sizeof(t), "%s", title);
    fprintf(f, "%s%-*s %*s\n", compact ? "" : "\n", room, t, (int)strlen(c) + 1, c);
}

static void header(FILE *f, const char *title, unsigned long count)
{
    header_line(f, title, count, 0);
}

static void seen_line(FILE *f, const struct tally_group *g, const char *extra)
{
    char a[32], b[32], line[160];
    if (g->first == g->last)
        snprintf(line, sizeof(line), "%s%s", fmt_time(g->first, a, sizeof(a)), extra);
    else
        snprintf(line, sizeof(line), "%s to %s%s", fmt_time(g->first, a, sizeof(a)),
                 fmt_time(g->last, b, sizeof(b)), extra);
    wrap(f, "seen", line, 0);
}

static void tops(FILE *f, struct tally_group *g, const struct tally *t, size_t top, int mark)
{
    char buf[2048];
    top_text(&g->clients, top, t, mark, buf, sizeof(buf));
    if (*buf)
        wrap(f, "clients", buf, 0);
    top_text(&g->senders, top, t, 0, buf, sizeof(buf));
    if (*buf)
        wrap(f, "senders", buf, 0);
    top_text(&g->recipients, top, t, 0, buf, sizeof(buf));
    if (*buf)
        wrap(f, "recipients", buf, 0);
}

/* policyd_group - one of policyd's groups in the table. */
static void policyd_group(FILE *f, struct tally_group *g, const struct tally *t, size_t top)
{
    char title[512], buf[1024], c[32];
    size_t o = 0;
    int one_verdict = 0;
    for (int v = 0; v < LOGV_COUNT; v++)
        one_verdict += g->verdicts[v] > 0;
    if (g->other) {
        snprintf(title, sizeof(title), "%s", g->label);
    } else if (g->cause_code) {
        snprintf(title, sizeof(title), "%s", g->cause_code);
    } else {
        /* Without a code the group is one check and one verdict. */
        const char *verdict = "";
        for (int v = 1; v < LOGV_COUNT && !*verdict; v++)
            if (g->verdicts[v])
                verdict = logline_verdict_name((enum logline_verdict)v);
        snprintf(title, sizeof(title), "%s%s%s (no cause code)", g->check, *verdict ? ": " : "",
                 verdict);
    }
    header(f, title, g->count);
    if (!g->other && (one_verdict > 1 || g->cause_code)) {
        for (int v = 1; v < LOGV_COUNT && o < sizeof(buf); v++)
            if (g->verdicts[v])
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s %s", o ? ", " : "",
                                      logline_verdict_name((enum logline_verdict)v),
                                      fmt_count(g->verdicts[v], c, sizeof(c)));
        if (o)
            wrap(f, "verdicts", buf, 0);
    }
    if (g->reply)
        wrap(f, strcmp(g->check ? g->check : "", "deadline") == 0 ? "answered" : "reply", g->reply,
             2);
    char extra[64] = "";
    if (g->repeats)
        snprintf(extra, sizeof(extra), " (%lu with the explanation, %lu short)", g->full,
                 g->repeats);
    seen_line(f, g, extra);
    tops(f, g, t, top, 0);
    if (g->label && !g->other && !g->cause_code)
        wrap(f, "grouped as", g->label, 3);
    if (g->cause)
        wrap(f, g->cause_code || g->label ? "e.g. cause" : "cause", g->cause, 4);
    if (g->fix)
        wrap(f, "fix", g->fix, 0);
}

/* postfix_title - "554 5.7.1 Relay access denied (RCPT)". */
static void postfix_title(const struct tally_group *g, char *buf, size_t len)
{
    if (g->other)
        snprintf(buf, len, "%s", g->label);
    else
        snprintf(buf, len, "%s%s%s%s%s (%s%s)", g->code, *g->code ? " " : "", g->dsn,
                 *g->dsn ? " " : "", g->label, g->stage, g->warning_only ? ", warning only" : "");
}

static int own_cmp(const void *a, const void *b)
{
    const struct tally_group *x = *(const struct tally_group *const *)a;
    const struct tally_group *y = *(const struct tally_group *const *)b;
    unsigned long ox = x->count - x->by_policyd, oy = y->count - y->by_policyd;
    if (ox != oy)
        return ox > oy ? -1 : 1;
    return strcmp(x->key, y->key);
}

static void section(FILE *f, const char *title)
{
    fprintf(f, "\n== %s ==\n", title);
}

void render_text(FILE *f, struct tally *t, const struct render_options *o)
{
    const struct tally_totals *tt = tally_totals(t);
    char a[32], b[32], c[32], d[32], e[32];
    size_t np, nx;
    struct tally_group *const *pg = tally_groups(t, TALLY_POLICYD, &np);
    struct tally_group *const *xg = tally_groups(t, TALLY_POSTFIX, &nx);

    if (tt->first)
        say(f, 1, "policyd report: %s to %s", fmt_time(tt->first, b, sizeof(b)),
            fmt_time(tt->last, c, sizeof(c)));
    else
        say(f, 1, "policyd report: no dated lines");
    char list[1024] = "";
    for (size_t i = 0, n = 0; i < o->nfiles && n < sizeof(list); i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
                              strcmp(o->files[i], "-") ? o->files[i] : "standard input");
    say(f, 2, "  read: %s lines from %s", fmt_count(tt->lines, a, sizeof(a)), list);
    if (o->since)
        say(f, 0, "  since %s: %s earlier lines skipped", fmt_time(o->since, a, sizeof(a)),
            fmt_count(tt->before_since, b, sizeof(b)));
    say(f, 0, "  policyd: %s diagnoses (%s refusals), %s deadline lines, %s dnsbl scores",
        fmt_count(tt->diagnoses, a, sizeof(a)), fmt_count(tt->policyd_refusals, b, sizeof(b)),
        fmt_count(tt->deadlines, c, sizeof(c)), fmt_count(tt->dnsbl_scores, d, sizeof(d)));
    say(f, 0, "  Postfix: %s rejects, %s of them carrying policyd's answer",
        fmt_count(tt->postfix_rejects, a, sizeof(a)), fmt_count(tt->matched, b, sizeof(b)));
    say(f, 0, "  other lines: %s of other programs or kinds, %s not understood, %s too long",
        fmt_count(tt->foreign, c, sizeof(c)), fmt_count(tt->malformed, d, sizeof(d)),
        fmt_count(tt->too_long, e, sizeof(e)));

    size_t shown = 0;
    for (size_t i = 0; i < np; i++)
        if (pg[i]->refusals) {
            if (!shown++)
                section(f, "Refused by policyd, by check and cause");
            policyd_group(f, pg[i], t, o->top);
        }
    shown = 0;
    for (size_t i = 0; i < np; i++)
        if (!pg[i]->refusals) {
            if (!shown++)
                section(f, "Logged by policyd without refusing (warn mode, notes, deadlines)");
            policyd_group(f, pg[i], t, o->top);
        }

    struct tally_group **own = xcalloc(nx ? nx : 1, sizeof(*own));
    size_t nown = 0;
    for (size_t i = 0; i < nx; i++)
        if (xg[i]->count > xg[i]->by_policyd)
            own[nown++] = xg[i];
    if (nown) {
        qsort(own, nown, sizeof(*own), own_cmp);
        section(f, "Refused by Postfix itself (not policyd's answer)");
        for (size_t i = 0; i < nown; i++) {
            struct tally_group *g = own[i];
            char title[512], extra[96] = "";
            postfix_title(g, title, sizeof(title));
            header(f, title, g->count - g->by_policyd);
            if (g->by_policyd)
                snprintf(extra, sizeof(extra), " (and %lu more carrying policyd's answer)",
                         g->by_policyd);
            seen_line(f, g, extra);
            tops(f, g, t, o->top, 1);
            if (!g->other)
                wrap(f, "e.g.", g->cause, 2);
        }
        fprintf(f, "\n  * also refused by policyd in these lines\n");
    }
    free(own);

    if (tt->matched || tt->policyd_refusals) {
        section(f, "Postfix rejects carrying policyd's answer");
        fprintf(f, "  (matched by client address, sender and recipient within a minute)\n");
        if (tt->matched)
            fputc('\n', f);
        for (size_t i = 0; i < nx; i++) {
            struct tally_group *g = xg[i];
            char title[512];
            if (!g->by_policyd)
                continue;
            postfix_title(g, title, sizeof(title));
            header_line(f, title, g->by_policyd, 1);
        }
        if (tt->matched)
            fputc('\n', f);
        say(f, 0, "  policyd refusals with no Postfix reject line found: %s%s",
            fmt_count(tt->unmatched_refusals, a, sizeof(a)),
            tt->unmatched_refusals && !tt->postfix_rejects
                ? " (no Postfix lines read: give the maillog too)"
                : "");
    }
    if (tt->match_untracked)
        say(f, 0, "  %s lines left out of matching (its table was full)",
            fmt_count(tt->match_untracked, a, sizeof(a)));
    if (!np && !nx)
        fprintf(f, "\nno policyd diagnosis and no Postfix reject in these lines\n");
}

/* --- JSON --- */

static void json_time(FILE *f, time_t t)
{
    char buf[40];
    if (!t) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    fputs(iso_time(t, buf, sizeof(buf)), f);
    fputc('"', f);
}

static void json_opt(FILE *f, const char *s)
{
    if (s)
        json_str(f, s);
    else
        fputs("null", f);
}

static void json_top(FILE *f, const char *name, struct topk *k, size_t top, const struct tally *t,
                     int mark)
{
    size_t n;
    const struct topk_item *it = topk_sorted(k, &n);
    fprintf(f, ", \"%s\": [", name);
    for (size_t i = 0; i < n && i < top; i++) {
        fprintf(f, "%s{\"value\": ", i ? ", " : "");
        json_str(f, it[i].value);
        fprintf(f, ", \"count\": %lu, \"min_count\": %lu, \"exact\": %s", it[i].count,
                it[i].count - it[i].error, it[i].error ? "false" : "true");
        if (mark)
            fprintf(f, ", \"refused_by_policyd\": %s",
                    tally_client_refused(t, it[i].value) ? "true" : "false");
        fputc('}', f);
    }
    fputc(']', f);
    if (k->replaced)
        fprintf(f, ", \"%s_distinct\": null", name);
    else
        fprintf(f, ", \"%s_distinct\": %zu", name, n);
}

static void json_common(FILE *f, struct tally_group *g, const struct tally *t, size_t top, int mark)
{
    fprintf(f, ", \"count\": %lu, \"first\": ", g->count);
    json_time(f, g->first);
    fprintf(f, ", \"last\": ");
    json_time(f, g->last);
    json_top(f, "clients", &g->clients, top, t, mark);
    json_top(f, "sender_domains", &g->senders, top, t, 0);
    json_top(f, "recipient_domains", &g->recipients, top, t, 0);
}

void render_json(FILE *f, struct tally *t, const struct render_options *o)
{
    const struct tally_totals *tt = tally_totals(t);
    size_t np, nx, top = o->top * 2;
    struct tally_group *const *pg = tally_groups(t, TALLY_POLICYD, &np);
    struct tally_group *const *xg = tally_groups(t, TALLY_POSTFIX, &nx);

    fprintf(f, "{\"summary\": {\"inputs\": [");
    for (size_t i = 0; i < o->nfiles; i++) {
        fputs(i ? ", " : "", f);
        json_str(f, o->files[i]);
    }
    fprintf(f, "], \"since\": ");
    json_time(f, o->since);
    fprintf(f,
            ", \"lines\": %lu, \"bytes\": %lu, \"before_since\": %lu, \"foreign\": %lu, "
            "\"malformed\": %lu, \"too_long\": %lu,\n  \"diagnoses\": %lu, \"deadlines\": %lu, "
            "\"dnsbl_scores\": %lu, \"policyd_refusals\": %lu, \"postfix_rejects\": %lu, "
            "\"postfix_rejects_by_policyd\": %lu, \"policyd_refusals_unmatched\": %lu, "
            "\"match_untracked\": %lu, \"first\": ",
            tt->lines, tt->bytes, tt->before_since, tt->foreign, tt->malformed, tt->too_long,
            tt->diagnoses, tt->deadlines, tt->dnsbl_scores, tt->policyd_refusals,
            tt->postfix_rejects, tt->matched, tt->unmatched_refusals, tt->match_untracked);
    json_time(f, tt->first);
    fprintf(f, ", \"last\": ");
    json_time(f, tt->last);
    fprintf(f, "},\n \"policyd\": [");
    for (size_t i = 0; i < np; i++) {
        struct tally_group *g = pg[i];
        fprintf(f, "%s\n  {\"check\": ", i ? "," : "");
        json_opt(f, g->other ? NULL : g->check);
        fprintf(f, ", \"cause_code\": ");
        json_opt(f, g->cause_code);
        fprintf(f, ", \"grouped_as\": ");
        json_opt(f, g->cause_code ? NULL : g->label);
        fprintf(f, ", \"other\": %s, \"refusals\": %lu, \"verdicts\": {",
                g->other ? "true" : "false", g->refusals);
        int first = 1;
        for (int v = 1; v < LOGV_COUNT; v++) {
            if (!g->verdicts[v])
                continue;
            fprintf(f, "%s", first ? "" : ", ");
            json_str(f, logline_verdict_name((enum logline_verdict)v));
            fprintf(f, ": %lu", g->verdicts[v]);
            first = 0;
        }
        fprintf(f, "}, \"full\": %lu, \"short\": %lu", g->full, g->repeats);
        json_common(f, g, t, top, 0);
        fprintf(f, ",\n   \"reply\": ");
        json_opt(f, g->reply);
        fprintf(f, ", \"cause\": ");
        json_opt(f, g->cause);
        fprintf(f, ", \"fix\": ");
        json_opt(f, g->fix);
        fputc('}', f);
    }
    fprintf(f, "\n ],\n \"postfix\": [");
    for (size_t i = 0; i < nx; i++) {
        struct tally_group *g = xg[i];
        fprintf(f, "%s\n  {\"code\": ", i ? "," : "");
        json_opt(f, g->other ? NULL : g->code);
        fprintf(f, ", \"dsn\": ");
        json_opt(f, g->other ? NULL : g->dsn);
        fprintf(f, ", \"reason\": ");
        json_str(f, g->label);
        fprintf(f, ", \"stage\": ");
        json_opt(f, g->other ? NULL : g->stage);
        fprintf(f, ", \"other\": %s, \"warning_only\": %s, \"by_policyd\": %lu, \"own\": %lu",
                g->other ? "true" : "false", g->warning_only ? "true" : "false", g->by_policyd,
                g->count - g->by_policyd);
        json_common(f, g, t, top, 1);
        fprintf(f, ",\n   \"example\": ");
        json_opt(f, g->cause);
        fputc('}', f);
    }
    fprintf(f, "\n ]}\n");
}
