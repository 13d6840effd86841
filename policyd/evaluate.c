/*
 * evaluate.c - start every configured check on a request, decide, log the diagnosis.
 *
 * One evaluation owns its request, a configuration reference, one check_call per configured
 * check (allocated with the evaluation) and, only if some check pends, a deadline timer. The
 * decision walks the calls in configured order and stops at the first one still running, so
 * the answer never depends on which check happened to finish first. Calls not needed for the
 * decision are cancelled. A call owns the data its check hands it and frees it when the call
 * ends, whichever way. Nothing here blocks; checks that pend finish from event callbacks.
 * A check with an `after` list (check.h) waits, unstarted, until the configured checks it
 * names have finished, then runs with their findings (check_call_publish, kept by the
 * evaluation, freed with it); it is not started once an earlier check in configured order has
 * refused, as its answer could no longer count. Config refuses chains of `after`, so a
 * waiting call waits only for calls that were started at once: no cycle, no deadlock.
 * Every diagnosis line carries the check's cause code and is counted by it (stats_cause); a
 * cause explained lately about the same subject is written short, pointing at its full line
 * (policyd/repeat.c decides, by diagnosis_repeat_interval and Postfix's instance).
 * Also here: starting and stopping the checks' configuration-long work (evaluate_*_checks), and
 * telling them when a policy connection closes (evaluate_connection_closed).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/evaluate.h"

#include "checks/check.h"
#include "policyd/config.h"
#include "policyd/lib/addr.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/repeat.h"
#include "policyd/stats.h"
#include "protocol/action.h"
#include "protocol/request.h"

#include <event2/event.h>
#include <event2/event_struct.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CALL_WAITING: not started yet (its check's `after` checks are still running). */
enum call_state { CALL_WAITING, CALL_RUNNING, CALL_PENDING, CALL_DONE, CALL_CANCELLED };
enum verdict { VERDICT_NONE, VERDICT_REJECT, VERDICT_DEFER, VERDICT_PREPEND };

struct check_call {
    struct evaluation *ev;
    size_t slot;
    enum call_state state;
    enum verdict verdict;
    char *action;     /* reply text of the verdict */
    const char *code; /* its cause code (a static string), NULL for a header */
    char *cause;
    char *fix;
    const char *subject_what; /* check_call_subject: "sender domain" (NULL: the client) */
    char *subject;
    char *note; /* last note, for -v and for deadline messages */
    void *data;
    check_free_fn *free_data; /* frees data when the call ends */
    check_sent_fn *sent;      /* check_call_prepend_once: told when the header is answered */
    char *sent_key;
};

/* One finding of check_call_publish. */
struct finding {
    char *name;
    char *value;
};

struct evaluation {
    struct event_base *base;
    struct dns *dns;
    struct config *cfg;
    struct request *req;
    evaluate_done_fn done;
    void *arg;
    struct event deadline; /* armed only if some check pends (deadline_armed) */
    int deadline_armed;
    int finished;
    int in_start; /* inside evaluate_start: completions are handled on return */
    const char *action;
    struct timespec started; /* for the latency histogram (stats_observe_latency) */
    struct finding *findings;
    size_t nfindings, capfindings;
    size_t ncalls;
    struct check_call calls[];
};

/* evaluate_release_data - the call has ended: free the data its check handed over, once. */
static void evaluate_release_data(struct check_call *c)
{
    void *data = c->data;
    check_free_fn *free_data = c->free_data;
    c->data = NULL;
    c->free_data = NULL;
    if (data && free_data)
        free_data(data);
}

/* evaluate_brief_action - the start of an action for a short line: "554 5.7.1" of "554 5.7.1
 * Relay access denied", "REJECT" of "REJECT text". */
static void evaluate_brief_action(const char *action, char *out, size_t outlen)
{
    size_t n = strcspn(action, " ");
    if (n == 3 && action[0] >= '2' && action[0] <= '5' && action[3] == ' ') {
        const char *dsn = action + 4;
        size_t d = strcspn(dsn, " ");
        if (d >= 5 && d <= 11 && dsn[0] == action[0] && dsn[1] == '.')
            n = 4 + d; /* "554 5.7.1" */
    }
    snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), action);
}

/* evaluate_subject - what a call's diagnosis is about: "client 203.0.113.7" by default. */
static void evaluate_subject(const struct evaluation *ev, const struct check_call *c, char *out,
                             size_t outlen)
{
    if (c->subject)
        snprintf(out, outlen, "%s %s", c->subject_what, c->subject);
    else
        snprintf(out, outlen, "client %s", request_get(ev->req, ATTR_CLIENT_ADDRESS));
}

/* evaluate_now_ms - the monotonic clock in milliseconds. */
static long long evaluate_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * evaluate_repeat - count a diagnosis of check under code about subject and decide whether it
 * is written in full (1) or short (0, *ref says where the full one is). Without a code: always
 * in full, uncounted.
 */
static int evaluate_repeat(const struct evaluation *ev, const char *check, const char *code,
                           const char *subject, int composed, struct repeat_ref *ref)
{
    if (!code)
        return 1;
    stats_cause(code);
    int full =
        repeat_decide(check, code, subject, request_get(ev->req, ATTR_INSTANCE), composed,
                      ev->cfg->diagnosis_repeat_interval, evaluate_now_ms(), time(NULL), ref);
    if (full)
        stats.diagnoses_full++;
    else
        stats.diagnoses_short++;
    return full;
}

/*
 * evaluate_diagnose - one diagnosis line of c's check, keyed like Postfix's lines:
 *   KEY: CHECK: WHAT: ACTION; cause_code=CODE; cause=CAUSE; fix=FIX
 * (what NULL: a note, "KEY: CHECK: note; cause_code=..."), or, for a cause explained lately,
 *   KEY: CHECK: WHAT: 554 5.7.1; cause_code=CODE; as explained at 16:38:58 for SUBJECT, N times
 * since
 */
static void evaluate_diagnose(const struct evaluation *ev, const struct check_call *c,
                              const char *what, const char *action, const char *code,
                              const char *cause, const char *fix)
{
    char key[2048], head[256], brief[64] = "", subject[640];
    struct repeat_ref ref;
    const char *name = ev->cfg->check_defs[c->slot]->name;
    evaluate_subject(ev, c, subject, sizeof(subject));
    int full = evaluate_repeat(ev, name, code, subject, cause != NULL, &ref);
    if (!full)
        evaluate_brief_action(action ? action : "", brief, sizeof(brief));
    request_log_key(ev->req, key, sizeof(key));
    if (!what)
        snprintf(head, sizeof(head), "note");
    else
        snprintf(head, sizeof(head), "%s: ", what);
    const char *act = what ? (full ? action : brief) : "";
    if (!code)
        log_info("%s: %s: %s%s; cause=%s; fix=%s", key, name, head, act, cause ? cause : "",
                 fix && *fix ? fix : "none needed");
    else if (full) /* without composed text only when a check passed NULL unasked */
        log_info("%s: %s: %s%s; cause_code=%s; cause=%s; fix=%s", key, name, head, act, code,
                 cause ? cause : "see the cause code", fix && *fix ? fix : "none needed");
    else
        log_info("%s: %s: %s%s; cause_code=%s; as explained at %s for %s, %lu time%s since", key,
                 name, head, act, code, ref.at[0] ? ref.at : "an earlier time", subject, ref.times,
                 ref.times == 1 ? "" : "s");
}

/* evaluate_log_verdict - the diagnosis line of one check's verdict. */
static void evaluate_log_verdict(const struct evaluation *ev, const struct check_call *c,
                                 const char *what)
{
    evaluate_diagnose(ev, c, what, c->action, c->code, c->cause, c->fix);
}

/* evaluate_cancel_call - stop a call that is still running; its callback must not come. The
 * state change first, so cancel() runs exactly once whatever it calls. */
static void evaluate_cancel_call(struct check_call *c)
{
    if (c->state == CALL_WAITING) {
        c->state = CALL_CANCELLED; /* never started: nothing to stop, no data */
        return;
    }
    if (c->state != CALL_PENDING)
        return;
    c->state = CALL_CANCELLED;
    const struct check_def *def = c->ev->cfg->check_defs[c->slot];
    if (def->cancel)
        def->cancel(c);
    evaluate_release_data(c);
}

/* evaluate_finish - record the answer and count it. */
static void evaluate_finish(struct evaluation *ev, const char *action)
{
    ev->finished = 1;
    ev->action = action && *action ? action : "DUNNO";
    stats.requests++;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    stats_observe_latency((long long)(now.tv_sec - ev->started.tv_sec) * 1000000 +
                          (now.tv_nsec - ev->started.tv_nsec) / 1000);
    switch (action_kind_of(ev->action)) {
    case ACTION_DUNNO:
        stats.replies_dunno++;
        break;
    case ACTION_REJECT:
        stats.replies_reject++;
        break;
    case ACTION_DEFER:
        stats.replies_defer++;
        break;
    case ACTION_PREPEND:
        stats.replies_prepend++;
        break;
    default:
        stats.replies_other++;
        break;
    }
    for (size_t i = 0; i < ev->ncalls; i++)
        evaluate_cancel_call(&ev->calls[i]);
    if (ev->deadline_armed) {
        event_del(&ev->deadline);
        ev->deadline_armed = 0;
    }
}

/*
 * evaluate_try_decide - decide if the calls finished so far allow it: every call before the
 * first enforcing reject/defer must be done. Logs and counts only once the answer is final.
 * Returns 1 if decided.
 */
static int evaluate_try_decide(struct evaluation *ev)
{
    const struct check_call *prepend = NULL;
    size_t decider = ev->ncalls;

    if (ev->finished)
        return 1;
    for (size_t i = 0; i < ev->ncalls; i++) {
        const struct check_call *c = &ev->calls[i];
        if (c->state != CALL_DONE)
            return 0;
        if ((c->verdict == VERDICT_REJECT || c->verdict == VERDICT_DEFER) &&
            ev->cfg->check_modes[i] == MODE_ENFORCE) {
            decider = i;
            break;
        }
    }
    int eom = request_state(ev->req) == STATE_END_OF_MESSAGE;
    for (size_t i = 0; i < decider; i++) {
        const struct check_call *c = &ev->calls[i];
        struct stats_check *sc = stats_check(ev->cfg->check_defs[i]->name);
        if (c->verdict == VERDICT_REJECT || c->verdict == VERDICT_DEFER) {
            sc->warn_only++;
            evaluate_log_verdict(ev, c,
                                 c->verdict == VERDICT_REJECT ? "would reject (warn mode)"
                                                              : "would defer (warn mode)");
        } else if (c->verdict == VERDICT_PREPEND && !eom) {
            /* Postfix ignores PREPEND at END-OF-MESSAGE: never answer it there. */
            if (ev->cfg->check_modes[i] == MODE_WARN) {
                sc->warn_only++;
                if (log_verbose())
                    evaluate_log_verdict(ev, c, "would prepend (warn mode)");
            } else if (!prepend) {
                sc->prepend++;
                prepend = c;
            }
        }
    }
    if (decider < ev->ncalls) {
        const struct check_call *c = &ev->calls[decider];
        struct stats_check *sc = stats_check(ev->cfg->check_defs[decider]->name);
        if (c->verdict == VERDICT_REJECT)
            sc->reject++;
        else
            sc->defer++;
        evaluate_log_verdict(ev, c, c->verdict == VERDICT_REJECT ? "reject" : "defer");
        evaluate_finish(ev, c->action);
        return 1;
    }
    if (log_verbose()) {
        char key[2048];
        request_log_key(ev->req, key, sizeof(key));
        if (prepend)
            evaluate_log_verdict(ev, prepend, "prepend");
        for (size_t i = 0; i < ev->ncalls; i++)
            log_debug("%s: %s: %s%s%s", key, ev->cfg->check_defs[i]->name,
                      ev->calls[i].verdict == VERDICT_NONE ? "dunno" : "no decision",
                      ev->calls[i].note ? ": " : "", ev->calls[i].note ? ev->calls[i].note : "");
    } else if (prepend && prepend->code) {
        stats_cause(prepend->code); /* a header answered for a cause: counted, logged with -v */
    }
    if (prepend && prepend->sent)
        prepend->sent(ev->cfg->check_states[prepend->slot], prepend->sent_key);
    evaluate_finish(ev, prepend ? prepend->action : "DUNNO");
    return 1;
}

/* evaluate_slot - the slot of the configured check called name, or ev->ncalls. */
static size_t evaluate_slot(const struct evaluation *ev, const char *name)
{
    for (size_t j = 0; j < ev->ncalls; j++)
        if (strcmp(ev->cfg->check_defs[j]->name, name) == 0)
            return j;
    return ev->ncalls;
}

/* evaluate_waits_for - the configured checks c still waits for, as "spf, dnsbl" into buf
 * (may be NULL); their number (0: c may start). */
static size_t evaluate_waits_for(const struct evaluation *ev, const struct check_call *c, char *buf,
                                 size_t buflen)
{
    const char *const *after = ev->cfg->check_defs[c->slot]->after;
    size_t n = 0, used = 0;
    if (buf && buflen)
        buf[0] = 0;
    for (size_t k = 0; after && after[k]; k++) {
        size_t j = evaluate_slot(ev, after[k]);
        if (j == ev->ncalls || j == c->slot)
            continue;
        enum call_state st = ev->calls[j].state;
        if (st == CALL_DONE || st == CALL_CANCELLED)
            continue;
        if (buf && used < buflen)
            used += (size_t)snprintf(buf + used, buflen - used, "%s%s", n ? ", " : "", after[k]);
        n++;
    }
    return n;
}

/* evaluate_late - 1 if c has not finished: waiting, or pending. */
static int evaluate_late(const struct check_call *c)
{
    return c->state == CALL_WAITING || c->state == CALL_PENDING;
}

/* evaluate_deadline_cb - the deadline passed: answer the fallback, name the late checks. */
static void evaluate_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct evaluation *ev = arg;
    char key[2048], late[1024] = "";
    size_t n = 0;
    (void)fd;
    (void)what;

    if (ev->finished)
        return;
    for (size_t i = 0; i < ev->ncalls && n < sizeof(late); i++) {
        const struct check_call *c = &ev->calls[i];
        const struct check_def *def = ev->cfg->check_defs[i];
        char waits[512] = "";
        if (!evaluate_late(c))
            continue;
        if (c->state == CALL_WAITING) {
            snprintf(waits, sizeof(waits), "waiting for ");
            if (!evaluate_waits_for(ev, c, waits + 12, sizeof(waits) - 12))
                snprintf(waits, sizeof(waits), "not started: an earlier check refused");
        } else if (def->describe) {
            def->describe(c, waits, sizeof(waits));
        }
        n += (size_t)snprintf(late + n, sizeof(late) - n, "%s%s%s%s%s", n ? ", " : "", def->name,
                              *waits ? " (" : "", waits, *waits ? ")" : "");
    }
    stats.deadline_hits++;
    /* The late checks' names alone for a short line; what they waited for in the full one. */
    char subject[640], names[512] = "";
    struct repeat_ref ref;
    for (size_t i = 0, m = 0; i < ev->ncalls && m < sizeof(names); i++)
        if (evaluate_late(&ev->calls[i]))
            m += (size_t)snprintf(names + m, sizeof(names) - m, "%s%s", m ? ", " : "",
                                  ev->cfg->check_defs[i]->name);
    snprintf(subject, sizeof(subject), "client %s", request_get(ev->req, ATTR_CLIENT_ADDRESS));
    request_log_key(ev->req, key, sizeof(key));
    if (evaluate_repeat(ev, "deadline", "deadline.fallback", subject, 1, &ref))
        log_warn("%s: deadline: no answer after %ld ms, answered %s; cause_code=%s; late: %s; "
                 "fix=if this repeats, check the DNS servers (dns_servers) or raise "
                 "request_deadline (keep it well below Postfix's smtpd_policy_service_timeout)",
                 key, ev->cfg->request_deadline, ev->cfg->fallback_action, "deadline.fallback",
                 late);
    else
        log_warn("%s: deadline: no answer after %ld ms, answered %s; cause_code=%s; late: %s; "
                 "as explained at %s for %s, %lu time%s since",
                 key, ev->cfg->request_deadline, ev->cfg->fallback_action, "deadline.fallback",
                 names, ref.at, subject, ref.times, ref.times == 1 ? "" : "s");
    evaluate_finish(ev, ev->cfg->fallback_action);
    ev->done(ev, ev->arg);
}

/* evaluate_run_call - start c's check; a call that finishes inside run() is done on return
 * (its data released). Returns 1 if it pends. */
static int evaluate_run_call(struct evaluation *ev, struct check_call *c)
{
    c->state = CALL_RUNNING;
    enum check_status st = ev->cfg->check_defs[c->slot]->run(c);
    if (c->state == CALL_RUNNING)
        c->state = st == CHECK_PENDING ? CALL_PENDING : CALL_DONE;
    if (c->state == CALL_PENDING)
        return 1;
    evaluate_release_data(c);
    return 0;
}

/* evaluate_refused_before - 1 if a call before slot has given an enforced reject or defer:
 * the answer is that one or an earlier one, never slot's. */
static int evaluate_refused_before(const struct evaluation *ev, size_t slot)
{
    for (size_t i = 0; i < slot; i++) {
        const struct check_call *c = &ev->calls[i];
        if (c->state == CALL_DONE &&
            (c->verdict == VERDICT_REJECT || c->verdict == VERDICT_DEFER) &&
            ev->cfg->check_modes[i] == MODE_ENFORCE)
            return 1;
    }
    return 0;
}

/* evaluate_progress - decide if the calls allow it, else start the waiting calls whose checks
 * have finished what they wait for (and may now be needed), and try again. 1 if decided. */
static int evaluate_progress(struct evaluation *ev)
{
    for (;;) {
        if (evaluate_try_decide(ev))
            return 1;
        int started = 0;
        for (size_t i = 0; i < ev->ncalls; i++) {
            struct check_call *c = &ev->calls[i];
            if (c->state != CALL_WAITING || evaluate_waits_for(ev, c, NULL, 0) > 0 ||
                evaluate_refused_before(ev, i))
                continue;
            evaluate_run_call(ev, c);
            started = 1;
        }
        if (!started)
            return 0;
    }
}

/* evaluate_deadline_arm - the deadline timer, as one of libevent's common timeouts: every
 * pending request's deadline has the same length, so they wait in one queue in order instead of
 * each going into the timer heap (an insert and a removal per request). Looked up on each use
 * (a scan of the base's few common lengths): the length may change at a reload. */
static void evaluate_deadline_arm(struct evaluation *ev, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    const struct timeval *common = event_base_init_common_timeout(ev->base, &tv);
    evtimer_assign(&ev->deadline, ev->base, evaluate_deadline_cb, ev);
    evtimer_add(&ev->deadline, common ? common : &tv); /* NULL: libevent's 256 lengths used */
    ev->deadline_armed = 1;
}

struct evaluation *evaluate_start(struct event_base *base, struct dns *dns, struct config *cfg,
                                  struct request *req, evaluate_done_fn done, void *arg)
{
    size_t n = cfg->check_count;
    struct evaluation *ev = xcalloc(1, sizeof(*ev) + n * sizeof(struct check_call));
    ev->base = base;
    ev->dns = dns;
    ev->cfg = config_ref(cfg);
    ev->req = req;
    ev->done = done;
    ev->arg = arg;
    ev->ncalls = n;
    ev->in_start = 1;
    clock_gettime(CLOCK_MONOTONIC, &ev->started);
    for (size_t i = 0; i < n; i++) {
        ev->calls[i].ev = ev;
        ev->calls[i].slot = i;
        ev->calls[i].state = CALL_WAITING;
    }
    /* Every check that waits for nothing configured starts now, in configured order. */
    for (size_t i = 0; i < n; i++) {
        struct check_call *c = &ev->calls[i];
        const char *const *after = cfg->check_defs[i]->after;
        int waits = 0;
        for (size_t k = 0; after && after[k] && !waits; k++)
            waits = evaluate_slot(ev, after[k]) < n;
        if (!waits)
            evaluate_run_call(ev, c);
    }
    int decided = evaluate_progress(ev);
    ev->in_start = 0;
    if (!decided)
        evaluate_deadline_arm(ev, cfg->request_deadline);
    return ev;
}

int evaluate_finished(const struct evaluation *ev)
{
    return ev->finished;
}

const char *evaluate_action(const struct evaluation *ev)
{
    return ev->action;
}

void evaluate_free(struct evaluation *ev)
{
    if (!ev)
        return;
    for (size_t i = 0; i < ev->ncalls; i++) {
        struct check_call *c = &ev->calls[i];
        evaluate_cancel_call(c);
        evaluate_release_data(c);
        free(c->action);
        free(c->cause);
        free(c->fix);
        free(c->note);
        free(c->sent_key);
        free(c->subject);
    }
    for (size_t i = 0; i < ev->nfindings; i++) {
        free(ev->findings[i].name);
        free(ev->findings[i].value);
    }
    free(ev->findings);
    if (ev->deadline_armed)
        event_del(&ev->deadline);
    request_free(ev->req);
    config_unref(ev->cfg);
    free(ev);
}

/* --- the check_call interface (checks/check.h) --- */

const struct request *check_call_request(const struct check_call *call)
{
    return call->ev->req;
}

const struct config *check_call_config(const struct check_call *call)
{
    return call->ev->cfg;
}

void *check_call_state(const struct check_call *call)
{
    return call->ev->cfg->check_states[call->slot];
}

void check_call_set_data(struct check_call *call, void *data, check_free_fn *free_fn)
{
    if (call->data && call->data != data)
        evaluate_release_data(call);
    call->data = data;
    call->free_data = free_fn;
}

void *check_call_data(const struct check_call *call)
{
    return call->data;
}

unsigned long long check_call_connection(const struct check_call *call)
{
    return request_connection(call->ev->req);
}

struct event_base *check_call_base(const struct check_call *call)
{
    return call->ev->base;
}

struct dns *check_call_dns(const struct check_call *call)
{
    return call->ev->dns;
}

/* call_set - replace a call's verdict. */
static void call_set(struct check_call *call, enum verdict v, const char *code, const char *action,
                     const char *cause, const char *fix)
{
    free(call->action);
    free(call->cause);
    free(call->fix);
    call->verdict = v;
    call->sent = NULL; /* a new verdict: check_call_prepend_once sets it again after this */
    call->code = code;
    call->action = xstrdup(action ? action : "");
    call->cause = cause ? xstrdup(cause) : NULL; /* NULL: not composed (check_call_explained) */
    call->fix = xstrdup(fix ? fix : "");
}

void check_call_action(struct check_call *call, const char *code, const char *action,
                       const char *cause, const char *fix)
{
    enum action_kind kind = action_kind_of(action);
    if (kind == ACTION_DUNNO) {
        /* Configured to let it pass (e.g. rdns_mismatch_action = DUNNO): no verdict. */
        check_call_note(call, "%s: %s (answered DUNNO by configuration)", code,
                        cause ? cause : "explained earlier");
        return;
    }
    if (kind == ACTION_WARN) {
        /* WARN/INFO: the diagnosis is logged, the decision left to the other checks. */
        evaluate_diagnose(call->ev, call, "warn", action, code, cause, fix);
        return;
    }
    if (kind == ACTION_PREPEND) {
        call_set(call, VERDICT_PREPEND, code, action, cause, fix); /* a header, not a refusal */
        return;
    }
    enum verdict v = kind == ACTION_DEFER ? VERDICT_DEFER : VERDICT_REJECT;
    call_set(call, v, code, action, cause, fix);
}

void check_call_defer(struct check_call *call, const char *code, const char *action,
                      const char *cause, const char *fix)
{
    const char *fallback = call->ev->cfg->fallback_action;
    if (!action || !action_is_temporary_safe(action)) {
        /* No mail is lost through us: a temporary problem never becomes a 5xx. */
        action = fallback;
    }
    if (action_kind_of(action) == ACTION_WARN || action_kind_of(action) == ACTION_PREPEND) {
        check_call_action(call, code, action, cause, fix); /* logged or prepended, not decisive */
        return;
    }
    if (action_kind_of(action) == ACTION_DUNNO) {
        /* DEFER answered as DUNNO by configuration: keep the note, give no verdict. */
        check_call_note(call, "%s: temporary problem, answered DUNNO by configuration: %s", code,
                        cause ? cause : "explained earlier");
        return;
    }
    call_set(call, VERDICT_DEFER, code, action, cause, fix);
}

void check_call_subject(struct check_call *call, const char *what, const char *name)
{
    free(call->subject);
    call->subject = NULL;
    call->subject_what = NULL;
    if (what && name) {
        call->subject_what = what;
        call->subject = xstrdup(name);
    }
}

int check_call_explained(struct check_call *call, const char *code)
{
    const struct evaluation *ev = call->ev;
    char subject[640];
    if (ev->cfg->diagnosis_repeat_interval <= 0)
        return 0;
    evaluate_subject(ev, call, subject, sizeof(subject));
    return repeat_peek(ev->cfg->check_defs[call->slot]->name, code, subject,
                       request_get(ev->req, ATTR_INSTANCE), ev->cfg->diagnosis_repeat_interval,
                       evaluate_now_ms());
}

void check_call_count(struct check_call *call, const char *code)
{
    (void)call;
    stats_cause(code);
}

void check_call_prepend(struct check_call *call, const char *header)
{
    char action[2048];
    snprintf(action, sizeof(action), "PREPEND %s", header);
    call_set(call, VERDICT_PREPEND, NULL, action, header, "");
}

void check_call_prepend_once(struct check_call *call, const char *header, check_sent_fn *sent,
                             const char *key)
{
    check_call_prepend(call, header);
    free(call->sent_key);
    call->sent = sent;
    call->sent_key = xstrdup(key ? key : "");
}

void check_call_note(struct check_call *call, const char *fmt, ...)
{
    if (!log_verbose())
        return; /* notes serve -v only: no formatting on the hot path */
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    free(call->note);
    call->note = xstrdup(text);
}

void check_call_log(struct check_call *call, const char *code, const char *cause, const char *fix)
{
    evaluate_diagnose(call->ev, call, NULL, NULL, code, cause, fix);
}

int check_call_client_address(struct check_call *call)
{
    const char *addr = request_get(call->ev->req, ATTR_CLIENT_ADDRESS);
    int family;
    unsigned char bytes[16];
    if (addr_parse(addr, &family, bytes) == 0)
        return 1;
    char cause[400];
    /* The peer's text, shortened and quoted: the log keeps it printable (log.c). */
    snprintf(cause, sizeof(cause),
             "client_address '%.64s%s' is not an IP address: nothing to check about the client, "
             "so this check gives no verdict",
             addr, strlen(addr) > 64 ? "..." : "");
    check_call_log(
        call, "request.bad_client_address", cause,
        "the policy client is not Postfix's smtpd or sends a broken request: check "
        "what connects to the policy socket (Postfix always sends the client's address)");
    return 0;
}

void check_call_publish(struct check_call *call, const char *name, const char *value)
{
    struct evaluation *ev = call->ev;
    for (size_t i = 0; i < ev->nfindings; i++) {
        if (strcmp(ev->findings[i].name, name) == 0) {
            free(ev->findings[i].value);
            ev->findings[i].value = xstrdup(value ? value : "");
            return;
        }
    }
    ev->findings = xgrow(ev->findings, &ev->capfindings, ev->nfindings + 1, sizeof(*ev->findings));
    ev->findings[ev->nfindings].name = xstrdup(name);
    ev->findings[ev->nfindings].value = xstrdup(value ? value : "");
    ev->nfindings++;
}

const char *check_call_finding(const struct check_call *call, const char *name)
{
    const struct evaluation *ev = call->ev;
    for (size_t i = 0; i < ev->nfindings; i++)
        if (strcmp(ev->findings[i].name, name) == 0)
            return ev->findings[i].value;
    return NULL;
}

void check_call_done(struct check_call *call)
{
    struct evaluation *ev = call->ev;

    if (call->state == CALL_RUNNING) {
        /* Done from inside run(): treated as a synchronous answer by evaluate_start, which
         * frees the data once run() has returned. */
        call->state = CALL_DONE;
        return;
    }
    if (call->state != CALL_PENDING)
        return; /* cancelled: the evaluation no longer listens */
    call->state = CALL_DONE;
    evaluate_release_data(call);
    if (!ev->in_start && !ev->finished && evaluate_progress(ev))
        ev->done(ev, ev->arg);
}

/* --- the checks' configuration-long work (check_def.start / stop) --- */

/* evaluate_previous_state - the state of def in prev, or NULL. */
static void *evaluate_previous_state(const struct config *prev, const struct check_def *def)
{
    for (size_t j = 0; prev && j < prev->check_count; j++)
        if (prev->check_defs[j] == def)
            return prev->check_states[j];
    return NULL;
}

/* evaluate_stop_first - stop the first n checks of cfg. */
static void evaluate_stop_first(const struct config *cfg, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cfg->check_defs[i]->stop && cfg->check_states[i])
            cfg->check_defs[i]->stop(cfg->check_states[i]);
}

int evaluate_start_checks(const struct config *cfg, const struct config *previous,
                          struct event_base *base, struct dns *dns, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->check_count; i++) {
        const struct check_def *def = cfg->check_defs[i];
        char reason[1024] = "";
        if (!def->start || !cfg->check_states[i])
            continue;
        if (def->start(cfg->check_states[i], evaluate_previous_state(previous, def), base, dns, cfg,
                       reason, sizeof(reason)) != 0) {
            snprintf(err, errlen, "%s check: %s", def->name,
                     reason[0] ? reason : "cannot be started");
            evaluate_stop_first(cfg, i);
            return -1;
        }
    }
    return 0;
}

void evaluate_stop_checks(const struct config *cfg)
{
    if (cfg)
        evaluate_stop_first(cfg, cfg->check_count);
}

void evaluate_connection_closed(unsigned long long connection)
{
    const struct config *cfg = config_active();
    for (size_t i = 0; cfg && connection && i < cfg->check_count; i++)
        if (cfg->check_defs[i]->closed && cfg->check_states[i])
            cfg->check_defs[i]->closed(cfg->check_states[i], connection);
}
