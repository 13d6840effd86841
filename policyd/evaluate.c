/*
 * evaluate.c - start every configured check on a request, decide, log the diagnosis.
 *
 * One evaluation owns its request, a configuration reference, one check_call per configured
 * check (allocated with the evaluation) and, only if some check pends, a deadline timer. The
 * decision walks the calls in configured order and stops at the first one still running, so
 * the answer never depends on which check happened to finish first. Calls not needed for the
 * decision are cancelled. A call owns the data its check hands it and frees it when the call
 * ends, whichever way. Nothing here blocks; checks that pend finish from event callbacks.
 * Also here: starting and stopping the checks' configuration-long work (evaluate_*_checks).
 */
#include "policyd/evaluate.h"

#include "checks/check.h"
#include "policyd/config.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/stats.h"
#include "protocol/action.h"
#include "protocol/request.h"

#include <event2/event.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum call_state { CALL_RUNNING, CALL_PENDING, CALL_DONE, CALL_CANCELLED };
enum verdict { VERDICT_NONE, VERDICT_REJECT, VERDICT_DEFER, VERDICT_PREPEND };

struct check_call {
    struct evaluation *ev;
    size_t slot;
    enum call_state state;
    enum verdict verdict;
    char *action; /* reply text of the verdict */
    char *cause;
    char *fix;
    char *note; /* last note, for -v and for deadline messages */
    void *data;
    check_free_fn *free_data; /* frees data when the call ends */
    check_sent_fn *sent;      /* check_call_prepend_once: told when the header is answered */
    char *sent_key;
};

struct evaluation {
    struct event_base *base;
    struct dns *dns;
    struct config *cfg;
    struct request *req;
    evaluate_done_fn done;
    void *arg;
    struct event *deadline;
    int finished;
    int in_start; /* inside evaluate_start: completions are handled on return */
    const char *action;
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

/* evaluate_log_verdict - the diagnosis line of one check's verdict. */
static void evaluate_log_verdict(const struct evaluation *ev, const struct check_call *c,
                                 const char *what)
{
    char key[2048];
    request_log_key(ev->req, key, sizeof(key));
    log_info("%s: %s: %s: %s; cause=%s; fix=%s", key, ev->cfg->check_defs[c->slot]->name, what,
             c->action, c->cause, c->fix && *c->fix ? c->fix : "none needed");
}

/* evaluate_cancel_call - stop a call that is still running; its callback must not come. The
 * state change first, so cancel() runs exactly once whatever it calls. */
static void evaluate_cancel_call(struct check_call *c)
{
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
    if (ev->deadline)
        event_del(ev->deadline);
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
    }
    if (prepend && prepend->sent)
        prepend->sent(ev->cfg->check_states[prepend->slot], prepend->sent_key);
    evaluate_finish(ev, prepend ? prepend->action : "DUNNO");
    return 1;
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
        if (c->state != CALL_PENDING)
            continue;
        if (def->describe)
            def->describe(c, waits, sizeof(waits));
        n += (size_t)snprintf(late + n, sizeof(late) - n, "%s%s%s%s%s", n ? ", " : "", def->name,
                              *waits ? " (" : "", waits, *waits ? ")" : "");
    }
    stats.deadline_hits++;
    request_log_key(ev->req, key, sizeof(key));
    log_warn("%s: deadline: no answer after %ld ms, answered %s; late: %s; fix=if this repeats, "
             "check the DNS servers (dns_servers) or raise request_deadline (keep it well below "
             "Postfix's smtpd_policy_service_timeout)",
             key, ev->cfg->request_deadline, ev->cfg->fallback_action, late);
    evaluate_finish(ev, ev->cfg->fallback_action);
    ev->done(ev, ev->arg);
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
    int pending = 0;
    for (size_t i = 0; i < n; i++) {
        struct check_call *c = &ev->calls[i];
        c->ev = ev;
        c->slot = i;
        c->state = CALL_RUNNING;
        enum check_status st = cfg->check_defs[i]->run(c);
        if (c->state == CALL_RUNNING)
            c->state = st == CHECK_PENDING ? CALL_PENDING : CALL_DONE;
        if (c->state == CALL_PENDING)
            pending = 1;
        else
            evaluate_release_data(c);
    }
    ev->in_start = 0;
    if (!evaluate_try_decide(ev) && pending) {
        struct timeval tv = {cfg->request_deadline / 1000, (cfg->request_deadline % 1000) * 1000};
        ev->deadline = evtimer_new(base, evaluate_deadline_cb, ev);
        if (!ev->deadline)
            xalloc_fail(0); /* libevent's allocation: nothing else makes it fail */
        evtimer_add(ev->deadline, &tv);
    }
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
    }
    if (ev->deadline)
        event_free(ev->deadline);
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

struct event_base *check_call_base(const struct check_call *call)
{
    return call->ev->base;
}

struct dns *check_call_dns(const struct check_call *call)
{
    return call->ev->dns;
}

/* call_set - replace a call's verdict. */
static void call_set(struct check_call *call, enum verdict v, const char *action, const char *cause,
                     const char *fix)
{
    free(call->action);
    free(call->cause);
    free(call->fix);
    call->verdict = v;
    call->sent = NULL; /* a new verdict: check_call_prepend_once sets it again after this */
    call->action = xstrdup(action ? action : "");
    call->cause = xstrdup(cause ? cause : "");
    call->fix = xstrdup(fix ? fix : "");
}

void check_call_action(struct check_call *call, const char *action, const char *cause,
                       const char *fix)
{
    enum action_kind kind = action_kind_of(action);
    if (kind == ACTION_DUNNO) {
        /* Configured to let it pass (e.g. rdns_mismatch_action = DUNNO): no verdict. */
        check_call_note(call, "%s (answered DUNNO by configuration)", cause);
        return;
    }
    if (kind == ACTION_WARN) {
        /* WARN/INFO: the diagnosis is logged, the decision left to the other checks. */
        char key[2048];
        request_log_key(call->ev->req, key, sizeof(key));
        log_info("%s: %s: warn: %s; cause=%s; fix=%s", key,
                 call->ev->cfg->check_defs[call->slot]->name, action, cause, fix);
        return;
    }
    if (kind == ACTION_PREPEND) {
        call_set(call, VERDICT_PREPEND, action, cause, fix); /* a header, not a refusal */
        return;
    }
    enum verdict v = kind == ACTION_DEFER ? VERDICT_DEFER : VERDICT_REJECT;
    call_set(call, v, action, cause, fix);
}

void check_call_defer(struct check_call *call, const char *action, const char *cause,
                      const char *fix)
{
    const char *fallback = call->ev->cfg->fallback_action;
    if (!action || !action_is_temporary_safe(action)) {
        /* No mail is lost through us: a temporary problem never becomes a 5xx. */
        action = fallback;
    }
    if (action_kind_of(action) == ACTION_WARN || action_kind_of(action) == ACTION_PREPEND) {
        check_call_action(call, action, cause, fix); /* logged or prepended, not decisive */
        return;
    }
    if (action_kind_of(action) == ACTION_DUNNO) {
        /* DEFER answered as DUNNO by configuration: keep the note, give no verdict. */
        check_call_note(call, "temporary problem, answered DUNNO by configuration: %s", cause);
        return;
    }
    call_set(call, VERDICT_DEFER, action, cause, fix);
}

void check_call_prepend(struct check_call *call, const char *header)
{
    char action[2048];
    snprintf(action, sizeof(action), "PREPEND %s", header);
    call_set(call, VERDICT_PREPEND, action, header, "");
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

void check_call_log(struct check_call *call, const char *fmt, ...)
{
    char key[2048], text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    request_log_key(call->ev->req, key, sizeof(key));
    log_info("%s: %s: %s", key, call->ev->cfg->check_defs[call->slot]->name, text);
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
    if (!ev->in_start && !ev->finished && evaluate_try_decide(ev))
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
