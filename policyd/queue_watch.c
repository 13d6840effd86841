/*
 * queue_watch.c - postqueue -j in a thread, its groups logged from the loop (queue_watch.h).
 *
 * Each round is a job: the loop starts a detached thread with its own pipe; the thread runs
 * postqueue, reads and groups the listing (the costly part, off the loop too) and writes one
 * byte; the loop's event on the pipe takes the result, logs and counts. The job is shared by
 * reference count (the thread's and the loop's), so stopping the watcher while postqueue runs
 * only drops the loop's reference: nothing waits, and whoever lets go last frees the job.
 * Bounds: QW_MAX_BYTES of output (the rest dropped, counts then partial), QW_TIMEOUT_MS for
 * postqueue, QW_MAX_GROUPS groups per round, QW_MAX_LOGGED lines per round, QW_MAX_SEEN
 * groups remembered for queue_watch_repeat.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/queue_watch.h"

#include "policyd/config.h"
#include "policyd/lib/hash.h"
#include "policyd/lib/log.h"
#include "policyd/lib/runtool.h"
#include "policyd/mail/postqueue.h"
#include "policyd/lib/xalloc.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QW_MAX_BYTES (16L * 1024 * 1024) /* postqueue output read at most */
#define QW_MAX_LINE (1024 * 1024)        /* a longer line (message) is skipped */
#define QW_TIMEOUT_MS 60000              /* postqueue killed after this */
#define QW_MAX_STDERR 4096
#define QW_MAX_GROUPS 1000 /* distinct (kind, domain) per round */
#define QW_INDEX 2048      /* hash index of the groups: a power of two, > 2 * QW_MAX_GROUPS */
#define QW_MAX_LOGGED 20   /* diagnosis lines per round; the rest next time */
#define QW_MAX_SEEN 4096   /* groups remembered with the time they were logged */
#define QW_MAX_REASON 400  /* bytes of the remote reply shown */

/* The deferred recipients of one kind of reason for one destination domain. */
struct qw_group {
    uint64_t key; /* hash of "kind domain" */
    enum deferral_kind kind;
    char domain[256];
    size_t messages, recipients;
    size_t last_msg;                /* the message that last counted here (counted once each) */
    long oldest;                    /* arrival time of the example message */
    char queue_id[32];              /* the example: the oldest message of the group ... */
    char rcpt[256];                 /* ... one of its recipients here ... */
    char reason[QW_MAX_REASON + 1]; /* ... and the reply it got */
};

enum qw_outcome { QW_OK, QW_NOT_FOUND, QW_FAILED };

struct qw_job {
    int refs; /* the thread's and the loop's; atomic */
    int pipe[2];
    char *config_dir;
    /* the result, written by the thread before the pipe's byte */
    enum qw_outcome outcome;
    char problem[512]; /* QW_FAILED: what went wrong */
    int partial;       /* output cut short, lines skipped, groups dropped */
    size_t deferred;   /* deferred messages */
    size_t messages[DEFERRAL_NKINDS], recipients[DEFERRAL_NKINDS];
    struct qw_group *groups;
    size_t ngroups, capgroups;
    int index[QW_INDEX]; /* group index + 1; 0: free */
};

struct qw_seen {
    uint64_t key;
    long long logged_ms; /* monotonic */
};

struct queue_watch {
    struct event_base *base;
    struct event *timer;
    long interval_ms, repeat_ms;
    char *config_dir;
    struct qw_job *job;   /* the round running, or NULL */
    struct event *job_ev; /* its pipe */
    int off;              /* postqueue not found: no more rounds until reconfigured */
    char last_problem[512];
    struct qw_seen *seen;
    size_t nseen, capseen;
    struct queue_watch_counts counts;
};

static long long qw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* qw_job_release - drop one reference; the last frees. Either thread. */
static void qw_job_release(struct qw_job *job)
{
    if (__atomic_sub_fetch(&job->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    close(job->pipe[0]);
    close(job->pipe[1]);
    free(job->config_dir);
    free(job->groups);
    free(job);
}

/* qw_group_of - the group of (kind, domain), made on first use; NULL past QW_MAX_GROUPS. */
static struct qw_group *qw_group_of(struct qw_job *job, enum deferral_kind kind, const char *domain)
{
    char keytext[300];
    snprintf(keytext, sizeof(keytext), "%d %s", (int)kind, domain);
    uint64_t key = hash_str(keytext);
    size_t slot = (size_t)key & (QW_INDEX - 1);
    while (job->index[slot]) {
        struct qw_group *g = &job->groups[job->index[slot] - 1];
        if (g->key == key)
            return g;
        slot = (slot + 1) & (QW_INDEX - 1);
    }
    if (job->ngroups == QW_MAX_GROUPS) {
        job->partial = 1;
        return NULL;
    }
    job->groups = xgrow(job->groups, &job->capgroups, job->ngroups + 1, sizeof(*job->groups));
    struct qw_group *g = &job->groups[job->ngroups++];
    memset(g, 0, sizeof(*g));
    g->key = key;
    g->kind = kind;
    g->last_msg = (size_t)-1;
    snprintf(g->domain, sizeof(g->domain), "%s", domain);
    job->index[slot] = (int)job->ngroups;
    return g;
}

/* qw_message - one message of the listing into the job's groups and counts. */
static void qw_message(struct qw_job *job, const struct deferral_message *m, size_t msgno)
{
    if (strcmp(m->queue_name, "deferred") != 0)
        return;
    job->deferred++;
    int seen[DEFERRAL_NKINDS] = {0};
    for (size_t i = 0; i < m->nrcpts; i++) {
        const struct deferral_recipient *r = &m->rcpts[i];
        if (!r->reason[0])
            continue;
        enum deferral_kind kind = deferral_classify(r->reason);
        char domain[256];
        deferral_domain(r->address, domain, sizeof(domain));
        job->recipients[kind]++;
        if (!seen[kind]++)
            job->messages[kind]++;
        struct qw_group *g = qw_group_of(job, kind, domain[0] ? domain : "(no domain)");
        if (!g)
            continue;
        g->recipients++;
        if (g->last_msg != msgno) {
            g->last_msg = msgno;
            g->messages++;
        }
        if (!g->queue_id[0] || (m->arrival_time > 0 && m->arrival_time < g->oldest)) {
            g->oldest = m->arrival_time;
            snprintf(g->queue_id, sizeof(g->queue_id), "%s", m->queue_id[0] ? m->queue_id : "?");
            snprintf(g->rcpt, sizeof(g->rcpt), "%s", r->address);
            snprintf(g->reason, sizeof(g->reason), "%s", r->reason);
        }
    }
}

/* qw_run - the thread: run postqueue, read its listing, tell the loop. */
static void *qw_run(void *arg)
{
    struct qw_job *job = arg;
    struct runtool_result res;
    postqueue_list(job->config_dir, QW_MAX_BYTES, QW_MAX_STDERR, QW_TIMEOUT_MS, &res);

    size_t messages = 0, msgno = 0;
    char complaint[300] = "";
    for (char *p = res.out, *end = res.out + res.outlen; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n > QW_MAX_LINE || (!nl && res.out_truncated)) {
            job->partial = 1;
        } else {
            p[n] = '\0';
            struct deferral_message m;
            if (deferral_parse_line(p, &m) == 0) {
                messages++;
                qw_message(job, &m, msgno++);
            } else if (n && !complaint[0]) {
                snprintf(complaint, sizeof(complaint), "%s", p);
            }
            deferral_message_free(&m);
        }
        p += n + 1;
    }
    if (res.errlen)
        snprintf(complaint, sizeof(complaint), "%.*s", (int)strcspn(res.err, "\n"), res.err);
    char how[160];
    runtool_describe(&res, how, sizeof(how));
    int exited = res.end == RUNTOOL_EXITED;
    job->partial |= res.out_truncated || res.end == RUNTOOL_TIMEOUT;
    if (res.end == RUNTOOL_NOT_FOUND || (!res.out_truncated && exited && res.code == 127)) {
        job->outcome = QW_NOT_FOUND;
    } else if (res.end == RUNTOOL_FAILED) {
        job->outcome = QW_FAILED;
        snprintf(job->problem, sizeof(job->problem), "cannot run postqueue (%s)", how);
    } else if (!messages && (!exited || res.code != 0)) {
        job->outcome = QW_FAILED;
        snprintf(job->problem, sizeof(job->problem), "postqueue -j failed: %s%s",
                 complaint[0] ? complaint : how, complaint[0] ? "" : ", no output");
    } else {
        job->outcome = QW_OK;
    }
    runtool_result_free(&res);
    if (write(job->pipe[1], "x", 1) != 1) {
        /* the loop let go of the job already: nobody to tell */
    }
    qw_job_release(job);
    return NULL;
}

/* qw_seen_slot - the remembered group of key, or NULL. */
static struct qw_seen *qw_seen_slot(struct queue_watch *qw, uint64_t key)
{
    for (size_t i = 0; i < qw->nseen; i++)
        if (qw->seen[i].key == key)
            return &qw->seen[i];
    return NULL;
}

/* qw_forget_old - drop the groups logged longer than queue_watch_repeat ago. */
static void qw_forget_old(struct queue_watch *qw, long long now)
{
    size_t k = 0;
    for (size_t i = 0; i < qw->nseen; i++)
        if (now - qw->seen[i].logged_ms < qw->repeat_ms)
            qw->seen[k++] = qw->seen[i];
    qw->nseen = k;
}

/* qw_by_messages - most messages first, then by kind and domain (a stable order). */
static int qw_by_messages(const void *a, const void *b)
{
    const struct qw_group *x = a, *y = b;
    if (x->messages != y->messages)
        return x->messages < y->messages ? 1 : -1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->domain, y->domain);
}

/* qw_log_group - the diagnosis line of one group. */
static void qw_log_group(const struct qw_group *g)
{
    const struct deferral_diagnosis *d = deferral_diagnosis(g->kind);
    void (*say)(const char *, ...) = d->ours ? log_warn : log_info;
    say("%s: to=<%s>: queue watch: %zu deferred message%s (%zu recipient%s) to %s: %s: "
        "reply=%s; cause=%s; fix=%s",
        g->queue_id, g->rcpt, g->messages, g->messages == 1 ? "" : "s", g->recipients,
        g->recipients == 1 ? "" : "s", g->domain, d->name, g->reason, d->why, d->fix);
}

/* qw_take - the round's result, on the loop: log what is new, keep the counts. */
static void qw_take(struct queue_watch *qw, struct qw_job *job)
{
    if (job->outcome == QW_NOT_FOUND) {
        log_info("queue watch: postqueue not found: Postfix is not installed here; the queue "
                 "watch is off (queue_watch_interval = 0 says so without this line)");
        qw->off = 1;
        return;
    }
    if (job->outcome == QW_FAILED) {
        qw->counts.runs_failed++;
        if (strcmp(qw->last_problem, job->problem) != 0)
            log_warn("queue watch: %s; trying again every %ld s (logged again only if this "
                     "changes); fix=is Postfix running (postfix status), and may user %s read "
                     "its queue (member of group postdrop)?",
                     job->problem, qw->interval_ms / 1000, config_active()->user);
        snprintf(qw->last_problem, sizeof(qw->last_problem), "%s", job->problem);
        return;
    }
    if (qw->last_problem[0])
        log_info("queue watch: postqueue works again");
    qw->last_problem[0] = '\0';
    qw->counts.runs_ok++;
    qw->counts.scanned = 1;
    qw->counts.last_ok = (long long)time(NULL);
    memcpy(qw->counts.messages, job->messages, sizeof(job->messages));
    memcpy(qw->counts.recipients, job->recipients, sizeof(job->recipients));

    long long now = qw_now_ms();
    qw_forget_old(qw, now);
    if (job->ngroups)
        qsort(job->groups, job->ngroups, sizeof(*job->groups), qw_by_messages);
    size_t logged = 0, held = 0;
    for (size_t i = 0; i < job->ngroups; i++) {
        const struct qw_group *g = &job->groups[i];
        struct qw_seen *s = qw_seen_slot(qw, g->key);
        if (s)
            continue; /* logged within queue_watch_repeat */
        if (logged == QW_MAX_LOGGED || qw->nseen == QW_MAX_SEEN) {
            held++;
            continue;
        }
        qw_log_group(g);
        logged++;
        qw->seen = xgrow(qw->seen, &qw->capseen, qw->nseen + 1, sizeof(*qw->seen));
        qw->seen[qw->nseen].key = g->key;
        qw->seen[qw->nseen].logged_ms = now;
        qw->nseen++;
    }
    if (held)
        log_info("queue watch: %zu more reasons for deferred mail, logged at the next rounds "
                 "(all of them at once: policyd doctor --section queue)",
                 held);
    if (job->partial && logged)
        log_info("queue watch: the queue listing was cut short (%ld MB of postqueue output, %d "
                 "destinations and kinds at most): the counts are partial",
                 QW_MAX_BYTES / (1024 * 1024), QW_MAX_GROUPS);
}

static void qw_schedule(struct queue_watch *qw);

/* qw_done_cb - the job's byte is in. */
static void qw_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct queue_watch *qw = arg;
    struct qw_job *job = qw->job;
    char byte;
    (void)what;
    if (read(fd, &byte, 1) != 1 || !job)
        return;
    event_free(qw->job_ev);
    qw->job_ev = NULL;
    qw->job = NULL;
    qw_take(qw, job);
    qw_job_release(job);
    qw_schedule(qw);
}

/* qw_start - a round: a job and its thread. A round still running is left alone. */
static void qw_start(struct queue_watch *qw)
{
    if (qw->job)
        return;
    struct qw_job *job = xcalloc(1, sizeof(*job));
    job->refs = 2;
    job->config_dir = xstrdup(qw->config_dir ? qw->config_dir : "");
    pthread_attr_t attr;
    pthread_t th;
    if (pipe2(job->pipe, O_CLOEXEC) != 0) {
        log_warn("queue watch: cannot make a pipe: %s; next try in %ld s", strerror(errno),
                 qw->interval_ms / 1000);
        free(job->config_dir);
        free(job);
        return;
    }
    if (!(qw->job_ev = event_new(qw->base, job->pipe[0], EV_READ, qw_done_cb, qw)))
        xalloc_fail(0);
    event_add(qw->job_ev, NULL);
    qw->job = job;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&th, &attr, qw_run, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_warn("queue watch: cannot start a thread: %s; next try in %ld s", strerror(rc),
                 qw->interval_ms / 1000);
        event_free(qw->job_ev);
        qw->job_ev = NULL;
        qw->job = NULL;
        job->refs = 1;
        qw_job_release(job);
    }
}

static void qw_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct queue_watch *qw = arg;
    (void)fd;
    (void)what;
    qw_start(qw);
    if (!qw->job)
        qw_schedule(qw); /* none started: the next one is a whole interval away */
}

/* qw_schedule - the next round one interval from now (none while a round runs: its end
 * schedules the next, so rounds never overlap). */
static void qw_schedule(struct queue_watch *qw)
{
    evtimer_del(qw->timer);
    qw->counts.enabled = qw->interval_ms > 0 && !qw->off;
    if (!qw->counts.enabled || qw->job)
        return;
    struct timeval tv = {qw->interval_ms / 1000, (qw->interval_ms % 1000) * 1000};
    evtimer_add(qw->timer, &tv);
}

struct queue_watch *queue_watch_new(struct event_base *base)
{
    struct queue_watch *qw = xcalloc(1, sizeof(*qw));
    qw->base = base;
    if (!(qw->timer = evtimer_new(base, qw_timer_cb, qw)))
        xalloc_fail(0);
    return qw;
}

void queue_watch_configure(struct queue_watch *qw, const struct config *cfg)
{
    int changed = qw->interval_ms != cfg->queue_watch_interval || qw->off ||
                  !evtimer_pending(qw->timer, NULL);
    qw->repeat_ms = cfg->queue_watch_repeat;
    free(qw->config_dir);
    qw->config_dir = xstrdup(cfg->postfix_config_directory);
    qw->off = 0;
    if (!changed)
        return; /* the round already due stays due */
    if (cfg->queue_watch_interval > 0 && qw->interval_ms != cfg->queue_watch_interval)
        log_info("queue watch: Postfix's queue read every %ld s", cfg->queue_watch_interval / 1000);
    qw->interval_ms = cfg->queue_watch_interval;
    qw_schedule(qw);
}

void queue_watch_get_counts(const struct queue_watch *qw, struct queue_watch_counts *out)
{
    *out = qw->counts;
}

void queue_watch_free(struct queue_watch *qw)
{
    if (!qw)
        return;
    if (qw->job) {
        event_free(qw->job_ev);
        qw_job_release(qw->job);
    }
    event_free(qw->timer);
    free(qw->config_dir);
    free(qw->seen);
    free(qw);
}
