/*
 * doctor_report.c - the doctor's findings and their two outputs (see doctor_report.h).
 *
 * Findings are kept in one growing array, in order. The table is for people (coloured only
 * when asked, i.e. on a terminal); the JSON is for programs: UTF-8 passes through, control
 * bytes are escaped and invalid bytes become U+FFFD, so any text a receiver or a file gave
 * us still makes valid JSON.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/doctor/doctor_report.h"

#include "policyd/lib/xalloc.h"
#include "policyd/lib/json.h"

#include <stdlib.h>

struct finding {
    enum doctor_status status;
    char *check, *subject, *observed, *why, *fix;
};

struct doctor_report {
    struct finding *v;
    size_t n, cap;
};

static const char *const status_names[] = {"ok", "warn", "fail", "error"};

struct doctor_report *doctor_report_new(void)
{
    return xcalloc(1, sizeof(struct doctor_report));
}

void doctor_report_free(struct doctor_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].check);
        free(r->v[i].subject);
        free(r->v[i].observed);
        free(r->v[i].why);
        free(r->v[i].fix);
    }
    free(r->v);
    free(r);
}

void doctor_report_add(struct doctor_report *r, enum doctor_status status, const char *check,
                       const char *subject, const char *observed, const char *why, const char *fix)
{
    r->v = xgrow(r->v, &r->cap, r->n + 1, sizeof(*r->v));
    struct finding *it = &r->v[r->n++];
    it->status = status;
    it->check = xstrdup(check ? check : "");
    it->subject = xstrdup(subject ? subject : "");
    it->observed = xstrdup(observed ? observed : "");
    it->why = xstrdup(why ? why : "");
    it->fix = xstrdup(fix ? fix : "");
}

static void report_counts(const struct doctor_report *r, size_t counts[4])
{
    counts[0] = counts[1] = counts[2] = counts[3] = 0;
    for (size_t i = 0; i < r->n; i++)
        counts[r->v[i].status]++;
}

int doctor_report_exit_status(const struct doctor_report *r)
{
    size_t counts[4];
    report_counts(r, counts);
    return counts[DOCTOR_ERROR] ? 2 : counts[DOCTOR_FAIL] ? 1 : 0;
}

static void print_json(const struct doctor_report *r, const size_t counts[4], FILE *f)
{
    fprintf(f, "{\"summary\": {\"ok\": %zu, \"warn\": %zu, \"fail\": %zu, \"error\": %zu},\n",
            counts[0], counts[1], counts[2], counts[3]);
    fprintf(f, " \"results\": [");
    for (size_t i = 0; i < r->n; i++) {
        const struct finding *it = &r->v[i];
        fprintf(f, "%s\n  {\"status\": \"%s\", \"check\": ", i ? "," : "",
                status_names[it->status]);
        json_str(f, it->check);
        fprintf(f, ", \"subject\": ");
        json_str(f, it->subject);
        fprintf(f, ", \"observed\": ");
        json_str(f, it->observed);
        fprintf(f, ", \"why\": ");
        json_str(f, it->why);
        fprintf(f, ", \"fix\": ");
        json_str(f, it->fix);
        fprintf(f, "}");
    }
    fprintf(f, "\n ]}\n");
}

static void print_table(const struct doctor_report *r, const size_t counts[4], FILE *f, int color)
{
    static const char *const colors[] = {"\033[32m", "\033[33m", "\033[31m", "\033[35m"};
    static const char *const labels[] = {"OK", "WARN", "FAIL", "ERROR"};
    for (size_t i = 0; i < r->n; i++) {
        const struct finding *it = &r->v[i];
        fprintf(f, "%s%-5s%s %-8s %-28s %s\n", color ? colors[it->status] : "", labels[it->status],
                color ? "\033[0m" : "", it->check, it->subject, it->observed);
        if (it->status != DOCTOR_OK && it->why[0])
            fprintf(f, "      why: %s\n", it->why);
        if (it->status != DOCTOR_OK && it->fix[0])
            fprintf(f, "      fix: %s\n", it->fix);
    }
    fprintf(f, "\n%zu ok, %zu warn, %zu fail, %zu could not be checked\n", counts[0], counts[1],
            counts[2], counts[3]);
}

void doctor_report_print(const struct doctor_report *r, enum doctor_format format, FILE *f)
{
    size_t counts[4];
    report_counts(r, counts);
    if (format == DOCTOR_JSON)
        print_json(r, counts, f);
    else
        print_table(r, counts, f, format == DOCTOR_TABLE_COLOUR);
}
