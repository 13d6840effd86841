/*
 * recipient.c - unknown users and full mailboxes in the domains this server hosts, refused at
 * RCPT time and explained.
 *
 * Recipients in mydestination, virtual_mailbox_domains or virtual_alias_domains are looked up
 * in recipient_maps in Postfix's order: user+ext@domain, user@domain, @domain (and the bare
 * local part for mydestination domains, as local_recipient_maps does); recipient_delimiter
 * honoured; case-insensitive. Unknown: recipient_unknown_action (550 5.1.1) with the tables
 * consulted, the keys tried and close matches, found by generating the addresses one edit away
 * and looking them up (cost bounded by the address length, not the table size). Known, with a
 * mailbox path: the Maildir++ maildirsize file under virtual_mailbox_base is read (at most
 * 8 KB, the reading cached for recipient_quota_cache), and usage plus the announced size is
 * compared with the quota: recipient_full_action (452 4.2.2). A missing file is no quota; a
 * garbled one gives no decision and a warning, never a reject. While the configuration is
 * active (start to stop), a timer of the check's state looks for changed tables:
 * table_refresh() checks every recipient_table_check_interval, reloads off the loop, and swaps
 * a finished reload in on a tick of the timer (at most a second later); lookups never wait.
 *
 * The quota file is never read on the event loop (a mailbox on a hung NFS mount would stall
 * every client): the read is a job of the offload threads (policyd/offload.h, a pool the
 * state takes over from the configuration it replaces), and the call pends until the result
 * comes back. Calls for a mailbox already being read wait for that read (one stuck mailbox
 * holds one thread). A call waits at most recipient_quota_timeout (and half the request
 * deadline); past it, or at once when the mailbox's read or every thread is already stuck that
 * long, it ends without a quota decision and one line a minute says the quota reads are
 * stalled, naming the file and its mount. A call that ends first leaves its read running; the
 * result still fills the cache. The state's unconfigure cancels its reads: a read that returns
 * later touches nothing.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/check.h"

#include "policyd/config.h"
#include "policyd/lib/file.h"
#include "policyd/lib/hash.h"
#include "policyd/maps/domainlist.h"
#include "policyd/lib/log.h"
#include "policyd/mail/maildirsize.h"
#include "policyd/maps/table.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/xalloc.h"
#include "policyd/offload.h"

#include <event2/event.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RCPT_MAX_TABLES 16
#define QUOTA_CACHE_SIZE 4096
/* Quota reads waiting for a thread; past it a call gets no quota decision at once. */
#define RCPT_QUEUE_MAX 256
/* The stalled-reads line: at most one per this many seconds. */
#define RCPT_STALL_LOG_INTERVAL 60

struct quota_entry {
    char *path;
    time_t expires;
    int ok; /* 1: m valid; 0: unreadable or garbled (reason in why) */
    struct maildirsize m;
    char why[160];
};

struct rcpt_wait;

/* One maildirsize read in flight: its job in the offload pool and the calls waiting for it. */
struct rcpt_read {
    TAILQ_ENTRY(rcpt_read) link; /* in the state's reads */
    struct recipient_state *st;
    char *path;              /* the mailbox directory */
    struct offload_job *job; /* until its result is in (or the state cancels it) */
    long long started_ms;    /* monotonic */
    TAILQ_HEAD(, rcpt_wait) waiters;
};

/* What a worker thread reads and fills: its own copies, nothing shared. */
struct rcpt_job {
    struct rcpt_read *read; /* valid whenever the result is delivered (else it was cancelled) */
    char *path;
    time_t now;
    int rc; /* maildirsize_read's */
    struct maildirsize m;
    char err[512];
};

/* A call waiting for a read: the call's data. */
struct rcpt_wait {
    TAILQ_ENTRY(rcpt_wait) link; /* in read->waiters while attached */
    struct check_call *call;
    struct rcpt_read *read; /* NULL once detached */
    struct event *timer;    /* recipient_quota_timeout */
    char *rcpt;
    char quota_field[64];
};

struct recipient_state {
    struct table *tables[RCPT_MAX_TABLES];
    size_t ntables;
    long check_interval_s;                      /* recipient_table_check_interval, at least 1 */
    long quota_cache_s;                         /* recipient_quota_cache, rounded up */
    struct event *refresh;                      /* the table refresh timer: from start to stop */
    struct quota_entry quota[QUOTA_CACHE_SIZE]; /* direct-mapped by path hash */
    struct offload *pool;                       /* the quota readers, from start on */
    TAILQ_HEAD(, rcpt_read) reads;              /* in flight */
    time_t stall_logged;                        /* the last stalled-reads line */
    unsigned long stall_unlogged;               /* stalls since, not logged */
};

static void recipient_stop(void *state)
{
    struct recipient_state *st = state;
    if (st->refresh)
        event_free(st->refresh);
    st->refresh = NULL;
}

static void recipient_unconfigure(void *state)
{
    struct recipient_state *st = state;
    recipient_stop(st);
    /* No request uses the state any more, so no call waits; a read still running finds its
     * job cancelled when it returns. */
    struct rcpt_read *rd;
    while ((rd = TAILQ_FIRST(&st->reads))) {
        TAILQ_REMOVE(&st->reads, rd, link);
        if (rd->job)
            offload_cancel(rd->job);
        struct rcpt_wait *w;
        while ((w = TAILQ_FIRST(&rd->waiters))) {
            TAILQ_REMOVE(&rd->waiters, w, link);
            w->read = NULL;
        }
        free(rd->path);
        free(rd);
    }
    offload_unref(st->pool);
    for (size_t i = 0; i < st->ntables; i++)
        table_free(st->tables[i]);
    for (size_t i = 0; i < QUOTA_CACHE_SIZE; i++)
        free(st->quota[i].path);
    free(st);
}

static void *recipient_configure(const struct config *cfg, char *err, size_t errlen)
{
    struct recipient_state *st = xcalloc(1, sizeof(*st));
    TAILQ_INIT(&st->reads);
    st->quota_cache_s = (cfg->recipient_quota_cache + 999) / 1000;
    st->check_interval_s = cfg->recipient_table_check_interval / 1000;
    if (st->check_interval_s < 1)
        st->check_interval_s = 1;
    char **v = plist_split(cfg->recipient_maps);
    for (size_t i = 0; v[i]; i++) {
        char reason[512];
        if (st->ntables == RCPT_MAX_TABLES) {
            snprintf(err, errlen, "recipient_maps: more than %d tables", RCPT_MAX_TABLES);
            goto fail;
        }
        if (!(st->tables[st->ntables] = table_open(v[i], reason, sizeof(reason)))) {
            snprintf(err, errlen, "recipient_maps: %s", reason);
            goto fail;
        }
        st->ntables++;
    }
    plist_free(v);
    if (st->ntables == 0) {
        snprintf(err, errlen,
                 "the recipient check is listed in checks but recipient_maps is "
                 "empty");
        recipient_unconfigure(st);
        return NULL;
    }
    return st;
fail:
    plist_free(v);
    recipient_unconfigure(st);
    return NULL;
}

/* rcpt_lookup - key in the tables, in order. 1 found (*value, *table), 0 not, -1 error. */
static int rcpt_lookup(struct recipient_state *st, const char *key, const char **value,
                       const struct table **table)
{
    for (size_t i = 0; i < st->ntables; i++) {
        int rc = table_lookup(st->tables[i], key, value);
        if (rc != 0) {
            *table = st->tables[i];
            return rc;
        }
    }
    return 0;
}

/* rcpt_refresh_cb - a tick of the refresh timer: pick up changed tables (table_refresh looks
 * at the files every check interval; the reloads run off the loop and are swapped in here). */
static void rcpt_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    struct recipient_state *st = arg;
    (void)fd;
    (void)what;
    for (size_t i = 0; i < st->ntables; i++) {
        char msg[700];
        int rc = table_refresh(st->tables[i], st->check_interval_s, msg, sizeof(msg));
        if (rc > 0)
            log_info("recipient: %s", msg);
        else if (rc < 0)
            log_warn("recipient: %s", msg);
    }
}

/* recipient_start - the quota readers: the previous configuration's pool when it has as many
 * threads (its reads, even stuck ones, go on serving both), else a new one; and the refresh
 * timer: a tick a second (the check interval itself is kept by table_refresh), so a finished
 * reload is in use within a second. */
static int recipient_start(void *state, void *previous, struct event_base *base, struct dns *dns,
                           const struct config *cfg, char *err, size_t errlen)
{
    struct recipient_state *st = state;
    struct recipient_state *prev = previous; /* its tables are not taken: opened afresh */
    struct timeval tick = {1, 0};
    (void)dns;
    if (!st->pool) {
        if (prev && prev->pool && offload_threads(prev->pool) == (int)cfg->offload_threads) {
            st->pool = offload_ref(prev->pool);
        } else {
            char why[256];
            st->pool =
                offload_new(base, (int)cfg->offload_threads, RCPT_QUEUE_MAX, why, sizeof(why));
            if (!st->pool) {
                snprintf(err, errlen, "recipient check: quota readers: %s", why);
                return -1;
            }
        }
        if (prev) {
            st->stall_logged = prev->stall_logged;
            st->stall_unlogged = prev->stall_unlogged;
        }
    }
    recipient_stop(st);
    st->refresh = event_new(base, -1, EV_PERSIST, rcpt_refresh_cb, st);
    if (!st->refresh)
        xalloc_fail(0); /* libevent's allocation */
    event_add(st->refresh, &tick);
    return 0;
}

/* rcpt_suggest - known addresses one edit away from local@domain (also other case, no
 * extension); appended to out. Bounded: about 80 lookups per character of the local part. */
static void rcpt_suggest(struct recipient_state *st, const char *local, const char *domain,
                         char *out, size_t outlen)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789.-_";
    size_t len = strlen(local), n = strlen(out), found = 0;
    char cand[300];
    const char *value;
    const struct table *t;
    if (len == 0 || len > 64)
        return;
    for (int op = 0; op < 4 && found < 5; op++) {
        size_t positions = op == 3 ? len + 1 : len;
        for (size_t i = 0; i < positions && found < 5; i++) {
            size_t nalpha = op == 0 || op == 1 ? 1 : sizeof(alphabet) - 1;
            for (size_t a = 0; a < nalpha && found < 5; a++) {
                char buf[80];
                if (op == 0) { /* deletion */
                    snprintf(buf, sizeof(buf), "%.*s%s", (int)i, local, local + i + 1);
                } else if (op == 1) { /* transposition */
                    if (i + 1 >= len)
                        continue;
                    snprintf(buf, sizeof(buf), "%s", local);
                    char c = buf[i];
                    buf[i] = buf[i + 1];
                    buf[i + 1] = c;
                } else if (op == 2) { /* substitution */
                    if (alphabet[a] == local[i])
                        continue;
                    snprintf(buf, sizeof(buf), "%s", local);
                    buf[i] = alphabet[a];
                } else { /* insertion */
                    snprintf(buf, sizeof(buf), "%.*s%c%s", (int)i, local, alphabet[a], local + i);
                }
                snprintf(cand, sizeof(cand), "%s@%s", buf, domain);
                if (rcpt_lookup(st, cand, &value, &t) == 1 && !strstr(out, cand)) {
                    n += (size_t)snprintf(out + n, n < outlen ? outlen - n : 0, "%s%s",
                                          found ? ", " : "", cand);
                    found++;
                }
            }
        }
    }
}

/* rcpt_cached - the fresh cached quota reading of a mailbox directory, or NULL. */
static const struct quota_entry *rcpt_cached(struct recipient_state *st, const char *maildir)
{
    struct quota_entry *q = &st->quota[hash_str(maildir) % QUOTA_CACHE_SIZE];
    if (q->path && strcmp(q->path, maildir) == 0 && q->expires > time(NULL))
        return q;
    return NULL;
}

/* rcpt_store - cache what maildirsize_read said (rc, *m, err) of maildir at now; returns the
 * entry (ok 0: no decision, the reason in why). */
static const struct quota_entry *rcpt_store(struct recipient_state *st, const char *maildir,
                                            time_t now, int rc, const struct maildirsize *m,
                                            const char *err)
{
    struct quota_entry *q = &st->quota[hash_str(maildir) % QUOTA_CACHE_SIZE];
    free(q->path);
    q->path = xstrdup(maildir);
    q->expires = now + st->quota_cache_s;
    q->ok = 0;
    q->m = *m;
    if (rc < 0) {
        snprintf(q->why, sizeof(q->why), "%s", err);
        return q;
    }
    if (rc == 0) {
        /* No maildirsize: no quota, so not full (Postfix's virtual(8) writes none). */
        memset(&q->m, 0, sizeof(q->m));
        q->ok = 1;
        return q;
    }
    if (q->m.stale) {
        snprintf(q->why, sizeof(q->why),
                 "%s/maildirsize is due for recalculation (Maildir++ rules)", maildir);
        return q;
    }
    q->ok = 1;
    return q;
}

/* rcpt_join - a + b + c into out (300 bytes). Runs per request, so no printf. */
static void rcpt_join(char *out, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    if (la + lb + lc >= 300) {
        out[0] = 0; /* cannot happen (the address is at most 256 bytes); matches nothing */
        return;
    }
    memcpy(out, a, la);
    memcpy(out + la, b, lb);
    memcpy(out + la + lb, c, lc);
    out[la + lb + lc] = 0;
}

/* rcpt_hosted - the domain list that hosts domain, or NULL. */
static const char *rcpt_hosted(const struct config *cfg, const char *domain, int *local)
{
    *local = 0;
    if (domainlist_match(cfg->dom_mydestination, domain, NULL) == 1) {
        *local = 1;
        return "mydestination";
    }
    if (domainlist_match(cfg->dom_virtual_mailbox_domains, domain, NULL) == 1)
        return "virtual_mailbox_domains";
    if (domainlist_match(cfg->dom_virtual_alias_domains, domain, NULL) == 1)
        return "virtual_alias_domains";
    return NULL;
}

/* rcpt_decide - the quota verdict for rcpt on the reading q of its mailbox (and the request's
 * size): recipient_full_action when one more message does not fit; nothing otherwise. */
static void rcpt_decide(struct check_call *call, const char *rcpt, const char *mailbox,
                        const char *quota_field, const struct quota_entry *q)
{
    const struct config *cfg = check_call_config(call);
    const struct request *req = check_call_request(call);
    if (!q->ok) {
        if (*quota_field == 0 || strstr(q->why, "due for"))
            log_warn("recipient: no quota decision for %s: %s", rcpt, q->why);
        return;
    }
    struct maildirsize m = q->m;
    if (*quota_field) {
        char *end;
        long long qb = strtoll(quota_field, &end, 10);
        if (*end == 0 && qb > 0)
            m.quota_bytes = qb;
    }
    long long size = atoll(request_get(req, ATTR_SIZE));
    if (!maildirsize_over(&m, size))
        return;
    char cause[1024], fix[512], limit[128];
    if (m.quota_bytes > 0 && m.quota_messages > 0)
        snprintf(limit, sizeof(limit), "%lld bytes / %lld messages", m.quota_bytes,
                 m.quota_messages);
    else if (m.quota_bytes > 0)
        snprintf(limit, sizeof(limit), "%lld bytes", m.quota_bytes);
    else
        snprintf(limit, sizeof(limit), "%lld messages", m.quota_messages);
    snprintf(cause, sizeof(cause),
             "mailbox of %s (%s) is full: %lld bytes in %lld messages used, quota %s%s; this "
             "message announces %lld bytes",
             rcpt, mailbox, m.used_bytes, m.used_messages, limit,
             *quota_field ? " (from the table)" : "", size);
    snprintf(fix, sizeof(fix),
             "the user must delete or archive mail (or the quota be raised); the sender retries "
             "the temporary refusal for days, so nothing is lost if room appears in time");
    check_call_subject(call, "recipient", rcpt);
    check_call_action(call, "recipient.full", cfg->recipient_full_action, cause, fix);
}

/* rcpt_wait_limit - how long a call waits for a quota read: recipient_quota_timeout, and at
 * most half the request deadline, so the other checks' answers still count. */
static long rcpt_wait_limit(const struct config *cfg)
{
    long limit = cfg->recipient_quota_timeout;
    return limit > cfg->request_deadline / 2 ? cfg->request_deadline / 2 : limit;
}

/* rcpt_now_ms - the monotonic clock in milliseconds. */
static long long rcpt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * rcpt_stalled - call gets no quota decision: file has not answered for age_ms (how: what else
 * is known, "" or "; all 4 reader threads ..."). Counted and noted for every call; logged at
 * most once per RCPT_STALL_LOG_INTERVAL, with the mount that holds the file (found without
 * touching the file, whose storage may be the one hanging).
 */
static void rcpt_stalled(struct check_call *call, struct recipient_state *st, const char *rcpt,
                         const char *file, long age_ms, const char *how)
{
    const char *code = "recipient.quota_stalled";
    const struct config *cfg = check_call_config(call);
    check_call_count(call, code);
    check_call_note(call, "no quota decision for %s: %s has not answered for %ld ms%s", rcpt, file,
                    age_ms, how);
    time_t now = time(NULL);
    if (st->stall_logged && now - st->stall_logged < RCPT_STALL_LOG_INTERVAL) {
        st->stall_unlogged++;
        return;
    }
    char mount[1024], more[96] = "";
    if (file_mount_of(file, mount, sizeof(mount)) != 0)
        snprintf(mount, sizeof(mount), "not found");
    if (st->stall_unlogged)
        snprintf(more, sizeof(more), "; %lu more stalled reads since the last such line",
                 st->stall_unlogged);
    long limit = rcpt_wait_limit(cfg);
    log_warn("recipient: quota reads are stalled: %s has not answered for %ld ms (mount %s)%s; "
             "the recipient check gives no quota decision (DUNNO) while a read takes over %ld "
             "ms (recipient_quota_timeout), the other checks still decide%s; cause_code=%s; "
             "fix=check the storage behind that mount (e.g. an NFS server that does not "
             "answer); nothing is refused meanwhile, and the reads recover by themselves",
             file, age_ms, mount, how, limit, more, code);
    st->stall_logged = now;
    st->stall_unlogged = 0;
}

/* rcpt_read_work - in a worker thread: the read itself (maildirsize_read touches nothing
 * shared). */
static void rcpt_read_work(void *arg)
{
    struct rcpt_job *job = arg;
    job->now = time(NULL);
    job->rc = maildirsize_read(job->path, job->now, &job->m, job->err, sizeof(job->err));
}

static void rcpt_job_free(void *arg)
{
    struct rcpt_job *job = arg;
    free(job->path);
    free(job);
}

/* rcpt_read_done - on the loop, a read's result: cached, then every waiting call decided and
 * done. The read is taken out of the state first: the last call done may be the last request
 * of an old configuration, and free the state. */
static void rcpt_read_done(void *arg)
{
    struct rcpt_job *job = arg;
    struct rcpt_read *rd = job->read;
    struct recipient_state *st = rd->st;
    rd->job = NULL;
    TAILQ_REMOVE(&st->reads, rd, link);
    struct quota_entry q = *rcpt_store(st, rd->path, job->now, job->rc, &job->m, job->err);
    q.path = NULL; /* a copy of the reading, not of the cache slot */
    struct rcpt_wait *w;
    while ((w = TAILQ_FIRST(&rd->waiters))) {
        TAILQ_REMOVE(&rd->waiters, w, link);
        w->read = NULL;
        rcpt_decide(w->call, w->rcpt, rd->path, w->quota_field, &q);
        check_call_done(w->call); /* frees w */
    }
    free(rd->path);
    free(rd);
}

/* rcpt_wait_free - a waiting call ended (done, deadline, connection gone): it leaves its read,
 * which goes on for the cache. */
static void rcpt_wait_free(void *data)
{
    struct rcpt_wait *w = data;
    if (w->read)
        TAILQ_REMOVE(&w->read->waiters, w, link);
    if (w->timer)
        event_free(w->timer);
    free(w->rcpt);
    free(w);
}

/* rcpt_wait_timeout - a call waited recipient_quota_timeout: no quota decision. */
static void rcpt_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct rcpt_wait *w = arg;
    (void)fd;
    (void)what;
    if (w->read) {
        char file[4200];
        snprintf(file, sizeof(file), "%smaildirsize", w->read->path);
        rcpt_stalled(w->call, w->read->st, w->rcpt, file,
                     (long)(rcpt_now_ms() - w->read->started_ms), "");
    }
    check_call_done(w->call); /* frees w */
}

/*
 * rcpt_quota_wait - no fresh reading of mailbox (which ends in '/'): wait for its read, started
 * here unless one is in flight. CHECK_PENDING, or CHECK_DONE without a quota decision when the
 * read in flight, or every reader thread, has been busy longer than the wait allowed, or the
 * queue of reads is full.
 */
static enum check_status rcpt_quota_wait(struct check_call *call, struct recipient_state *st,
                                         const struct config *cfg, const char *mailbox,
                                         const char *rcpt, const char *quota_field)
{
    long limit = rcpt_wait_limit(cfg);
    long long now = rcpt_now_ms();
    char file[4200], label[4200], how[160];
    long age;
    snprintf(file, sizeof(file), "%smaildirsize", mailbox);
    if (!st->pool)
        return CHECK_DONE; /* never started: cannot be on the loop */
    struct rcpt_read *rd;
    TAILQ_FOREACH(rd, &st->reads, link)
    if (strcmp(rd->path, mailbox) == 0)
        break;
    if (rd && now - rd->started_ms >= limit) {
        rcpt_stalled(call, st, rcpt, file, (long)(now - rd->started_ms), "");
        return CHECK_DONE;
    }
    if (!rd) {
        if (offload_stuck(st->pool, limit, label, sizeof(label), &age)) {
            snprintf(how, sizeof(how),
                     "; all %d reader threads (offload_threads) are stuck that long, so %s is "
                     "not even tried",
                     offload_threads(st->pool), rcpt);
            rcpt_stalled(call, st, rcpt, label, age, how);
            return CHECK_DONE;
        }
        struct rcpt_job *job = xcalloc(1, sizeof(*job));
        rd = xcalloc(1, sizeof(*rd));
        job->read = rd;
        job->path = xstrdup(mailbox);
        rd->st = st;
        rd->path = xstrdup(mailbox);
        rd->started_ms = now;
        TAILQ_INIT(&rd->waiters);
        rd->job =
            offload_submit(st->pool, file, rcpt_read_work, rcpt_read_done, rcpt_job_free, job);
        if (!rd->job) {
            rcpt_job_free(job);
            free(rd->path);
            free(rd);
            if (!offload_stuck(st->pool, 0, label, sizeof(label), &age)) {
                snprintf(label, sizeof(label), "%s", file);
                age = 0;
            }
            snprintf(how, sizeof(how), "; %d reads wait for a reader thread already",
                     RCPT_QUEUE_MAX);
            rcpt_stalled(call, st, rcpt, label, age, how);
            return CHECK_DONE;
        }
        TAILQ_INSERT_TAIL(&st->reads, rd, link);
    }
    struct rcpt_wait *w = xcalloc(1, sizeof(*w));
    w->call = call;
    w->read = rd;
    w->rcpt = xstrdup(rcpt);
    snprintf(w->quota_field, sizeof(w->quota_field), "%s", quota_field);
    TAILQ_INSERT_TAIL(&rd->waiters, w, link);
    if (!(w->timer = evtimer_new(check_call_base(call), rcpt_wait_timeout, w)))
        xalloc_fail(0); /* libevent's allocation */
    long left = limit - (long)(now - rd->started_ms);
    struct timeval tv = {left / 1000, (left % 1000) * 1000};
    evtimer_add(w->timer, &tv);
    check_call_set_data(call, w, rcpt_wait_free);
    return CHECK_PENDING;
}

static enum check_status recipient_run(struct check_call *call)
{
    const struct request *req = check_call_request(call);
    const struct config *cfg = check_call_config(call);
    struct recipient_state *st = check_call_state(call);

    if (request_state(req) != STATE_RCPT)
        return CHECK_DONE;
    const char *rcpt = request_get(req, ATTR_RECIPIENT);
    const char *at = strrchr(rcpt, '@');
    if (!at || at == rcpt || strlen(rcpt) > 256)
        return CHECK_DONE;
    char addr[300], local[260], domain[260], base_local[260];
    size_t i;
    for (i = 0; rcpt[i]; i++)
        addr[i] = (char)tolower((unsigned char)rcpt[i]);
    addr[i] = 0;
    snprintf(local, sizeof(local), "%.*s", (int)(at - rcpt), addr);
    snprintf(domain, sizeof(domain), "%s", addr + (at - rcpt) + 1);
    size_t dl = strlen(domain);
    if (dl > 0 && domain[dl - 1] == '.')
        domain[--dl] = 0;
    int is_local;
    const char *hosted_by = rcpt_hosted(cfg, domain, &is_local);
    if (!hosted_by)
        return CHECK_DONE;

    /* The keys, in Postfix's order. */
    snprintf(base_local, sizeof(base_local), "%s", local);
    const char *delim = cfg->recipient_delimiter;
    size_t cut = *delim ? strcspn(local, delim) : strlen(local);
    int has_ext = cut < strlen(local) && cut > 0;
    if (has_ext)
        base_local[cut] = 0;
    char keys[6][300];
    size_t nkeys = 0;
    rcpt_join(keys[nkeys++], local, "@", domain);
    if (has_ext)
        rcpt_join(keys[nkeys++], base_local, "@", domain);
    if (is_local) {
        rcpt_join(keys[nkeys++], local, "", "");
        if (has_ext)
            rcpt_join(keys[nkeys++], base_local, "", "");
    }
    rcpt_join(keys[nkeys++], "", "@", domain);

    const char *value = NULL;
    const struct table *found_in = NULL;
    size_t k;
    int rc = 0;
    for (k = 0; k < nkeys && rc == 0; k++)
        rc = rcpt_lookup(st, keys[k], &value, &found_in);
    if (rc < 0) {
        char cause[512];
        snprintf(cause, sizeof(cause), "the table %s could not be read while looking up %s",
                 table_spec(found_in), rcpt);
        check_call_subject(call, "table", table_spec(found_in));
        check_call_defer(call, "recipient.table_error", NULL, cause,
                         "see the table's error above; rebuild it with postmap");
        return CHECK_DONE;
    }
    if (rc == 0) {
        char tables[1024] = "";
        for (size_t t = 0, n = 0; t < st->ntables && n < sizeof(tables); t++)
            n += (size_t)snprintf(tables + n, sizeof(tables) - n, "%s%s", t ? ", " : "",
                                  table_spec(st->tables[t]));
        char tried[1400] = "", similar[1024] = "";
        for (size_t t = 0, n = 0; t < nkeys && n < sizeof(tried); t++)
            n += (size_t)snprintf(tried + n, sizeof(tried) - n, "%s%s", t ? ", " : "", keys[t]);
        rcpt_suggest(st, base_local, domain, similar, sizeof(similar));
        char cause[3072], fix[1024];
        snprintf(
            cause, sizeof(cause), "%s is in %s (%s), but no table knows %s: looked up %s in %s%s%s",
            domain, hosted_by, "a domain this server hosts", rcpt, tried, tables,
            *similar ? "; close matches: " : "; no close match among that domain's users", similar);
        snprintf(fix, sizeof(fix),
                 "if %s should receive mail, add it to %s (for a hash: or lmdb: table, then run "
                 "postmap on it; policyd picks the change up within %lds); if the sender "
                 "mistyped, nothing to fix here",
                 rcpt, table_spec(st->tables[0]), cfg->recipient_table_check_interval / 1000);
        check_call_subject(call, "recipient", rcpt);
        check_call_action(call, "recipient.unknown", cfg->recipient_unknown_action, cause, fix);
        return CHECK_DONE;
    }
    check_call_note(call, "%s found as %s in %s", rcpt, keys[k - 1], table_spec(found_in));

    /* Mailbox full? The table value is the mailbox path (virtual(8) style), relative to
     * virtual_mailbox_base; a quota may also sit in a field of the value. */
    if (!*cfg->virtual_mailbox_base || !value || !*value || value[0] == '@')
        return CHECK_DONE;
    char mailbox[4096], quota_field[64] = "";
    size_t vl = strcspn(value, " \t");
    snprintf(mailbox, sizeof(mailbox), "%s/%.*s", cfg->virtual_mailbox_base, (int)vl, value);
    if (cfg->recipient_quota_field > 0) {
        const char *p = value;
        for (long f = 1; *p && f < cfg->recipient_quota_field; f++) {
            p += strcspn(p, " \t");
            p += strspn(p, " \t");
        }
        snprintf(quota_field, sizeof(quota_field), "%.*s", (int)strcspn(p, " \t"), p);
    }
    if (vl == 0 || value[vl - 1] != '/')
        return CHECK_DONE; /* an mbox file, not a Maildir: no maildirsize */
    const struct quota_entry *q = rcpt_cached(st, mailbox);
    if (q) {
        rcpt_decide(call, rcpt, mailbox, quota_field, q);
        return CHECK_DONE;
    }
    return rcpt_quota_wait(call, st, cfg, mailbox, rcpt, quota_field);
}

/* recipient_describe - what a pending call waits for, for the deadline's line. */
static void recipient_describe(const struct check_call *call, char *buf, size_t buflen)
{
    const struct rcpt_wait *w = check_call_data(call);
    if (w && w->read)
        snprintf(buf, buflen, "read of %smaildirsize, %lld ms", w->read->path,
                 rcpt_now_ms() - w->read->started_ms);
}

const struct check_def recipient_check = {
    .name = "recipient",
    .configure = recipient_configure,
    .unconfigure = recipient_unconfigure,
    .start = recipient_start,
    .stop = recipient_stop,
    .run = recipient_run,
    .describe = recipient_describe,
};
