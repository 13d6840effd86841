/*
 * doctor_queue.c - the doctor's queue section: the deferred mail (postqueue -j, run through
 * lib/runtool without a shell) grouped by reason, each kind matched to a diagnosis and a fix
 * by policyd/mail/deferral.c (the table the daemon's queue watcher uses too).
 * Reading the queue is bounded: QUEUE_MAX_BYTES of output (the rest drained and dropped, the
 * counts then marked partial), lines of at most QUEUE_MAX_LINE (a longer one is skipped),
 * QUEUE_MAX_REASONS distinct reasons, and QUEUE_TIMEOUT_MS for postqueue to finish.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/config.h"
#include "policyd/doctor/doctor_section.h"
#include "policyd/lib/runtool.h"
#include "policyd/mail/postqueue.h"
#include "policyd/lib/xalloc.h"
#include "policyd/mail/deferral.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX_BYTES (64L * 1024 * 1024) /* postqueue output read at most */
#define QUEUE_MAX_LINE (1024 * 1024)        /* a longer line (message) is skipped */
#define QUEUE_MAX_REASONS 5000              /* distinct delay reasons kept */
#define QUEUE_TIMEOUT_MS 120000             /* postqueue killed after this */
#define QUEUE_MAX_STDERR 4096               /* its complaints kept */

/* q_status - how the doctor rates a kind: something to fix here fails, the rest warns. */
static enum doctor_status q_status(enum deferral_kind kind)
{
    return deferral_diagnosis(kind)->ours ? DOCTOR_FAIL : DOCTOR_WARN;
}

struct q_reason {
    char *text;
    enum deferral_kind cat;
    size_t count;
};

struct q_state {
    size_t messages, deferred, active, hold, other_queue, recipients_deferred;
    size_t skipped_lines;
    long oldest; /* arrival_time of the oldest deferred message, 0: none */
    size_t cat_recipients[DEFERRAL_NKINDS], cat_messages[DEFERRAL_NKINDS];
    struct q_reason *reasons;
    size_t nreasons, capreasons, reasons_dropped;
};

static void q_add_reason(struct q_state *q, const char *text, enum deferral_kind cat)
{
    for (size_t i = 0; i < q->nreasons; i++)
        if (strcmp(q->reasons[i].text, text) == 0) {
            q->reasons[i].count++;
            return;
        }
    if (q->nreasons == QUEUE_MAX_REASONS) {
        q->reasons_dropped++;
        return;
    }
    q->reasons = xgrow(q->reasons, &q->capreasons, q->nreasons + 1, sizeof(*q->reasons));
    struct q_reason *r = &q->reasons[q->nreasons++];
    r->text = xstrdup(text);
    r->cat = cat;
    r->count = 1;
}

/* q_line - one postqueue -j object: its queue, arrival time and the recipients' delay reasons. */
static void q_line(struct q_state *q, const char *line)
{
    struct deferral_message m;
    deferral_parse_line(line, &m);
    q->messages++;
    if (strcmp(m.queue_name, "deferred") == 0) {
        q->deferred++;
        if (m.arrival_time > 0 && (!q->oldest || m.arrival_time < q->oldest))
            q->oldest = m.arrival_time;
        int seen[DEFERRAL_NKINDS] = {0};
        for (size_t i = 0; i < m.nrcpts; i++) {
            const char *reason = m.rcpts[i].reason;
            if (!reason[0])
                continue;
            enum deferral_kind c = deferral_classify(reason);
            q->recipients_deferred++;
            q->cat_recipients[c]++;
            if (!seen[c]++)
                q->cat_messages[c]++;
            q_add_reason(q, reason, c);
        }
    } else if (strcmp(m.queue_name, "active") == 0 || strcmp(m.queue_name, "incoming") == 0) {
        q->active++;
    } else if (strcmp(m.queue_name, "hold") == 0) {
        q->hold++;
    } else {
        q->other_queue++;
    }
    deferral_message_free(&m);
}

/* q_report - the summary and one finding per kind of reason, most recipients first. */
static void q_report(struct doctor *d, struct q_state *q, int truncated)
{
    char obs[1500];
    if (!q->deferred) {
        snprintf(obs, sizeof(obs), "no deferred mail (%zu messages in the queue, %zu on hold)%s",
                 q->messages, q->hold, truncated ? "; the listing was cut short" : "");
        doctor_report_add(d->report, DOCTOR_OK, "queue", "deferred", obs, NULL, NULL);
        return;
    }
    long days = q->oldest ? (long)(time(NULL) - q->oldest) / 86400 : 0;
    snprintf(obs, sizeof(obs),
             "%zu deferred messages (%zu recipients), the oldest %ld days old; %zu active, "
             "%zu on hold%s",
             q->deferred, q->recipients_deferred, days, q->active, q->hold,
             truncated ? "; the listing was cut short, counts are partial" : "");
    doctor_report_add(
        d->report, DOCTOR_WARN, "queue", "deferred", obs,
        "deferred mail is retried until maximal_queue_lifetime (5 days), then bounced",
        "the reasons below say why; after fixing, postqueue -f retries at once");

    /* Categories by recipients, most first; "other" shows its top texts on their own. */
    int order[DEFERRAL_NKINDS];
    for (int c = 0; c < DEFERRAL_NKINDS; c++)
        order[c] = c;
    for (int i = 1; i < DEFERRAL_NKINDS; i++)
        for (int j = i; j > 0 && q->cat_recipients[order[j]] > q->cat_recipients[order[j - 1]];
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < DEFERRAL_NKINDS; i++) {
        int c = order[i];
        if (!q->cat_recipients[c])
            continue;
        const struct deferral_diagnosis *dg = deferral_diagnosis((enum deferral_kind)c);
        int shown = 0;
        for (;;) { /* the most frequent texts of the category: one, or three for "other" */
            struct q_reason *best = NULL;
            size_t variants = 0;
            for (size_t r = 0; r < q->nreasons; r++) {
                if ((int)q->reasons[r].cat != c || !q->reasons[r].count)
                    continue;
                variants++;
                if (!best || q->reasons[r].count > best->count)
                    best = &q->reasons[r];
            }
            if (!best)
                break;
            if (c != DEFERRAL_OTHER)
                snprintf(obs, sizeof(obs),
                         "%zu recipients in %zu messages; most common (%zu of %zu different "
                         "texts): %.400s",
                         q->cat_recipients[c], q->cat_messages[c], best->count, variants,
                         best->text);
            else
                snprintf(obs, sizeof(obs), "%zu recipients: %.400s", best->count, best->text);
            doctor_report_add(d->report, q_status((enum deferral_kind)c), "queue", dg->name, obs,
                              dg->why, dg->fix);
            best->count = 0; /* shown */
            if (c != DEFERRAL_OTHER || ++shown == 3)
                break;
        }
    }
}

/* q_parse - the lines of postqueue's output: JSON objects counted, the first other line kept
 * in msg (its complaint, when it has one). A last line cut short by the bound is skipped. */
static void q_parse(struct q_state *q, char *out, size_t len, int truncated, char *msg,
                    size_t msglen)
{
    char *p = out, *end = out + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n > QUEUE_MAX_LINE || (!nl && truncated)) {
            q->skipped_lines++;
        } else {
            p[n] = '\0';
            if (p[0] == '{')
                q_line(q, p);
            else if (n && !msg[0])
                snprintf(msg, msglen, "%s", p);
        }
        p += n + 1;
    }
}

void doctor_queue(struct doctor *d)
{
    struct runtool_result res;
    postqueue_list(d->cfg->postfix_config_directory, QUEUE_MAX_BYTES, QUEUE_MAX_STDERR,
                   QUEUE_TIMEOUT_MS, &res);

    struct q_state q;
    memset(&q, 0, sizeof(q));
    char msg[300] = "", how[120];
    if (res.errlen)
        snprintf(msg, sizeof(msg), "%.*s", (int)strcspn(res.err, "\n"), res.err);
    q_parse(&q, res.out, res.outlen, res.out_truncated, msg, sizeof(msg));
    int exited = res.end == RUNTOOL_EXITED, truncated = res.out_truncated;
    runtool_describe(&res, how, sizeof(how));

    if (res.end == RUNTOOL_NOT_FOUND || (!truncated && exited && res.code == 127)) {
        doctor_report_add(d->report, DOCTOR_OK, "queue", "postqueue",
                          "postqueue not found: Postfix is not installed here, queue not checked",
                          NULL, NULL);
    } else if (res.end == RUNTOOL_FAILED) {
        char obs[300];
        snprintf(obs, sizeof(obs), "cannot run postqueue (%s): queue not checked", how);
        doctor_report_add(d->report, DOCTOR_WARN, "queue", "postqueue", obs, NULL, NULL);
    } else if (!truncated && !q.messages && (!exited || res.code != 0)) {
        char obs[500];
        snprintf(obs, sizeof(obs), "postqueue -j failed: %s%s; queue not checked",
                 msg[0] ? msg : how, msg[0] ? "" : ", no output");
        doctor_report_add(d->report, DOCTOR_WARN, "queue", "postqueue", obs,
                          "postqueue cannot list the queue: Postfix is not running or not "
                          "configured here, or this user may not read its queue",
                          "postfix status; postfix start (or run the doctor as root)");
    } else {
        q_report(d, &q,
                 truncated || res.end == RUNTOOL_TIMEOUT || q.skipped_lines || q.reasons_dropped);
    }
    for (size_t i = 0; i < q.nreasons; i++)
        free(q.reasons[i].text);
    free(q.reasons);
    runtool_result_free(&res);
}
