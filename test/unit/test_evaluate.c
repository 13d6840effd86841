/*
 * test_evaluate.c - the evaluator's promise, shown with stub checks whose answers arrive in an
 * order the test chooses: the same answer for every completion order, warn mode logs "would
 * reject" and answers DUNNO, the deadline answers fallback_action and names the late check, a
 * once-per-message header is marked sent only when the reply carries it, cancel() and the data's
 * free function run exactly once, the checks' start/stop hooks hand a reload over, and the
 * diagnosis lines carry the cause code and are written short when the cause was explained
 * lately (per subject and message; diagnosis_repeat_interval = 0 writes every line in full).
 * A check with an `after` list (stubW, after stubA and stubC) runs once those have finished,
 * in every completion order, and sees their findings; at once when neither is configured;
 * never once an earlier check has refused; cancelled cleanly at the deadline while it waits;
 * chains of `after` are refused by the configuration.
 *
 * The stubs are registered through config_use_checks() and configured by config_load() from a
 * policyd.conf in a temporary directory; each pending stub is completed from a zero-delay timer
 * run by one turn of the libevent loop (EVLOOP_ONCE), never from inside run(). The log goes to
 * a file in the same directory and is read back.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/check.h"
#include "policyd/config.h"
#include "policyd/evaluate.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/repeat.h"
#include "protocol/request.h"
#include "unit.h"

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NSTUBS 4

enum stub_verdict { SV_NONE, SV_REJECT, SV_DEFER, SV_PREPEND, SV_ONCE, SV_WARN, SV_DUNNO };

/* What stub i does: answer inside run() or pend until the test completes it, with what. */
struct stub_plan {
    int pend;
    enum stub_verdict verdict;
    int log_line;        /* also write a keyed line with check_call_log */
    int reset_data;      /* hand over data twice: the first must be freed at once */
    int fail_start;      /* start() refuses */
    const char *subject; /* the sender domain the verdict is about (NULL: the client) */
};

struct stub_state {
    int id;
};

/* What happened, per stub. */
static struct stub_plan plan[NSTUBS];
static struct check_call *pending[NSTUBS];
static int cancels[NSTUBS], frees[NSTUBS], completed[NSTUBS], sent[NSTUBS];
static int starts[NSTUBS], stops[NSTUBS];
static int answered[NSTUBS]; /* stub_answer ran: the stub has finished (or is finishing) */
/* What stubW (id 3, after stubA and stubC) saw when it ran. */
static int w_runs, w_deps_done;
static char w_saw[64];
static void *start_previous[NSTUBS];
static int cancel_saw_data; /* cancel() ran while the call's data was still there */
static int done_calls, done_inside_start, in_start;
static struct event_base *base;
static int ids[NSTUBS] = {0, 1, 2, 3};

static void reset_counters(void)
{
    memset(pending, 0, sizeof(pending));
    memset(cancels, 0, sizeof(cancels));
    memset(frees, 0, sizeof(frees));
    memset(completed, 0, sizeof(completed));
    memset(sent, 0, sizeof(sent));
    memset(answered, 0, sizeof(answered));
    w_runs = w_deps_done = 0;
    w_saw[0] = 0;
    cancel_saw_data = 0;
    done_calls = done_inside_start = 0;
}

static void *stub_configure(int id)
{
    struct stub_state *st = xcalloc(1, sizeof(*st));
    st->id = id;
    return st;
}

static void *stub_configure_a(const struct config *cfg, char *err, size_t errlen)
{
    (void)cfg, (void)err, (void)errlen;
    return stub_configure(0);
}
static void *stub_configure_b(const struct config *cfg, char *err, size_t errlen)
{
    (void)cfg, (void)err, (void)errlen;
    return stub_configure(1);
}
static void *stub_configure_c(const struct config *cfg, char *err, size_t errlen)
{
    (void)cfg, (void)err, (void)errlen;
    return stub_configure(2);
}
static void *stub_configure_d(const struct config *cfg, char *err, size_t errlen)
{
    (void)cfg, (void)err, (void)errlen;
    return stub_configure(3);
}

static void stub_unconfigure(void *state)
{
    free(state);
}

static int stub_start(void *state, void *previous, struct event_base *b, struct dns *dns,
                      const struct config *cfg, char *err, size_t errlen)
{
    struct stub_state *st = state;
    (void)b, (void)dns, (void)cfg;
    if (plan[st->id].fail_start) {
        snprintf(err, errlen, "stub%c cannot start", 'A' + st->id);
        return -1;
    }
    starts[st->id]++;
    start_previous[st->id] = previous;
    return 0;
}

static void stub_stop(void *state)
{
    struct stub_state *st = state;
    stops[st->id]++;
}

/* The data a stub hands to its call: counts its own freeing. */
struct stub_data {
    int id;
};

static void stub_data_free(void *data)
{
    struct stub_data *d = data;
    frees[d->id]++;
    free(d);
}

static void stub_sent(void *state, const char *key)
{
    struct stub_state *st = state;
    char want[8];
    snprintf(want, sizeof(want), "msg-%c", 'A' + st->id);
    CHECK_STR(key, want);
    sent[st->id]++;
}

/* stub_answer - give stub id's planned verdict on call. */
static void stub_answer(struct check_call *call, int id)
{
    char action[64], header[64], cause[64];
    char c = (char)('A' + id);
    snprintf(cause, sizeof(cause), "stub%c found something", c);
    /* A finding, published whatever the verdict and mode; published twice, the last counts. */
    snprintf(header, sizeof(header), "stub%c.found", c);
    check_call_publish(call, header, "not yet");
    snprintf(action, sizeof(action), "%c", c);
    check_call_publish(call, header, action);
    answered[id] = 1;
    if (plan[id].subject)
        check_call_subject(call, "sender domain", plan[id].subject);
    switch (plan[id].verdict) {
    case SV_NONE:
        break;
    case SV_REJECT:
        snprintf(action, sizeof(action), "554 5.7.1 stub%c rejects", c);
        check_call_action(call, "stub.reject", action, cause, "fix the stub");
        break;
    case SV_DEFER:
        snprintf(action, sizeof(action), "450 4.7.1 stub%c defers", c);
        check_call_action(call, "stub.defer", action, cause, "wait");
        break;
    case SV_PREPEND:
        snprintf(header, sizeof(header), "X-Stub: %c", c);
        check_call_prepend(call, header);
        break;
    case SV_ONCE:
        snprintf(header, sizeof(header), "X-Once: %c", c);
        snprintf(action, sizeof(action), "msg-%c", c);
        check_call_prepend_once(call, header, stub_sent, action);
        break;
    case SV_WARN:
        snprintf(action, sizeof(action), "WARN stub%c warns", c);
        check_call_action(call, "stub.warn", action, cause, "look");
        break;
    case SV_DUNNO:
        check_call_action(call, "stub.dunno", "DUNNO", cause, "");
        break;
    }
    if (plan[id].log_line) {
        snprintf(cause, sizeof(cause), "stub%c says %d", c, 42);
        check_call_log(call, "stub.says", cause, "");
    }
}

static enum check_status stub_run(struct check_call *call)
{
    const struct stub_state *st = check_call_state(call);
    int id = st->id;
    struct stub_data *d = xcalloc(1, sizeof(*d));
    d->id = id;
    if (plan[id].reset_data) {
        struct stub_data *first = xcalloc(1, sizeof(*first));
        first->id = id;
        check_call_set_data(call, first, stub_data_free);
        CHECK(frees[id] == 0);
        check_call_set_data(call, d, stub_data_free);
        CHECK(frees[id] == 1); /* the first one, at once */
        frees[id] = 0;         /* count the one that lives with the call */
    } else {
        check_call_set_data(call, d, stub_data_free);
    }
    if (plan[id].pend) {
        pending[id] = call;
        return CHECK_PENDING;
    }
    stub_answer(call, id);
    return CHECK_DONE;
}

static void stub_cancel(struct check_call *call)
{
    const struct stub_state *st = check_call_state(call);
    struct stub_data *d = check_call_data(call);
    if (d && d->id == st->id && frees[st->id] == 0)
        cancel_saw_data++;
    cancels[st->id]++;
    pending[st->id] = NULL;
}

static void stub_describe(const struct check_call *call, char *buf, size_t buflen)
{
    const struct stub_state *st = check_call_state(call);
    snprintf(buf, buflen, "the answer of stub %c", 'A' + st->id);
}

#define STUB(letter, idx)                                                                          \
    {                                                                                              \
        .name = "stub" #letter, .configure = stub_configure_##idx,                                 \
        .unconfigure = stub_unconfigure, .start = stub_start, .stop = stub_stop, .run = stub_run,  \
        .cancel = stub_cancel, .describe = stub_describe,                                          \
    }

static const struct check_def stubs[NSTUBS] = {STUB(A, a), STUB(B, b), STUB(C, c), STUB(D, d)};

/* stubW_run - stubD's behaviour (id 3) under another name that waits for stubA and stubC (and
 * stubX, which no configuration names): note what had finished and what it can read. */
static enum check_status stubw_run(struct check_call *call)
{
    const char *a = check_call_finding(call, "stubA.found");
    const char *c = check_call_finding(call, "stubC.found");
    w_runs++;
    w_deps_done = answered[0] && answered[2];
    snprintf(w_saw, sizeof(w_saw), "A=%s C=%s", a ? a : "(none)", c ? c : "(none)");
    return stub_run(call);
}

static const char *const w_after[] = {"stubA", "stubC", "stubX", NULL};
static const char *const v_after[] = {"stubW", NULL};
static const char *const s_after[] = {"stubS", NULL};
static const struct check_def waiters[] = {
    {.name = "stubW",
     .configure = stub_configure_d,
     .unconfigure = stub_unconfigure,
     .after = w_after,
     .run = stubw_run,
     .cancel = stub_cancel,
     .describe = stub_describe},
    /* stubV waits for stubW, which waits itself: refused together. stubS waits for itself. */
    {.name = "stubV",
     .configure = stub_configure_c,
     .unconfigure = stub_unconfigure,
     .after = v_after,
     .run = stub_run},
    {.name = "stubS",
     .configure = stub_configure_c,
     .unconfigure = stub_unconfigure,
     .after = s_after,
     .run = stub_run},
};

static const struct check_def *stub_find(const char *name)
{
    for (size_t i = 0; i < NSTUBS; i++)
        if (strcmp(stubs[i].name, name) == 0)
            return &stubs[i];
    for (size_t i = 0; i < sizeof(waiters) / sizeof(waiters[0]); i++)
        if (strcmp(waiters[i].name, name) == 0)
            return &waiters[i];
    return NULL;
}

static const char *stub_names(void)
{
    return "stubA, stubB, stubC, stubD";
}

/* --- driving an evaluation --- */

static void on_done(struct evaluation *ev, void *arg)
{
    (void)ev;
    (void)arg;
    done_calls++;
    if (in_start)
        done_inside_start++;
}

/* complete_cb - the test's choice of the next answer, from the loop. */
static void complete_cb(evutil_socket_t fd, short what, void *arg)
{
    int id = *(int *)arg;
    struct check_call *call = pending[id];
    (void)fd;
    (void)what;
    if (!call)
        return; /* cancelled meanwhile */
    pending[id] = NULL;
    completed[id]++;
    stub_answer(call, id);
    check_call_done(call);
}

static const char *req_instance = "1234.5678"; /* Postfix's instance: the message */

static struct request *make_request(const char *state)
{
    const char *pairs[] = {"request",
                           "smtpd_access_policy",
                           "protocol_state",
                           state,
                           "client_address",
                           "192.0.2.7",
                           "client_name",
                           "mx.example.net",
                           "helo_name",
                           "mx.example.net",
                           "sender",
                           "alice@example.net",
                           "recipient",
                           "bob@example.org",
                           "instance",
                           req_instance,
                           NULL,
                           NULL};
    return request_new_from_pairs(pairs);
}

/* slot_id - the stub id configured in slot i of cfg (stubW has stubD's id). */
static int slot_id(const struct config *cfg, size_t i)
{
    return ((const struct stub_state *)cfg->check_states[i])->id;
}

/*
 * run_order - evaluate a request under cfg with the current plan, completing the pending
 * stubs in order (n of them; a stub cancelled by then is skipped), then any stub still
 * pending (one that waited and started late), in id order. The answer goes to answer.
 * Then the evaluation is freed. Returns the number of invariant violations: each stub's data
 * freed exactly once (by the time of the answer), each pending stub either completed or
 * cancelled exactly once, done called once (never inside evaluate_start) unless the answer
 * was known on return.
 */
static int run_order(struct config *cfg, const char *state, const int *order, size_t n,
                     char *answer, size_t len)
{
    int bad = 0;
    reset_counters();
    in_start = 1;
    struct evaluation *ev = evaluate_start(base, NULL, cfg, make_request(state), on_done, NULL);
    in_start = 0;
    int sync = evaluate_finished(ev);
    for (size_t k = 0; k < n; k++) {
        if (!pending[order[k]])
            continue;
        struct timeval zero = {0, 0};
        event_base_once(base, -1, EV_TIMEOUT, complete_cb, &ids[order[k]], &zero);
        event_base_loop(base, EVLOOP_ONCE);
    }
    for (size_t k = 0; k < NSTUBS; k++) {
        if (!pending[k])
            continue;
        struct timeval zero = {0, 0};
        event_base_once(base, -1, EV_TIMEOUT, complete_cb, &ids[k], &zero);
        event_base_loop(base, EVLOOP_ONCE);
    }
    snprintf(answer, len, "%s", evaluate_finished(ev) ? evaluate_action(ev) : "(no answer)");
    int finished = evaluate_finished(ev);
    /* Answered: every call has ended, so every call's data is already gone (a cancelled
     * check's pending work is dropped at once, not when the connection goes). */
    /* A stub that waited and was never started (stubW) has no data, no answer, no cancel. */
    int started[NSTUBS] = {0};
    for (size_t i = 0; i < cfg->check_count; i++) {
        int id = slot_id(cfg, i);
        started[id] = cfg->check_defs[i]->after == NULL || w_runs > 0;
    }
    for (size_t i = 0; finished && i < cfg->check_count; i++) {
        int id = slot_id(cfg, i);
        if (frees[id] != started[id])
            bad++, fprintf(stderr, "  stub%c: data freed %d times before evaluate_free\n",
                           (char)('A' + id), frees[id]);
    }
    evaluate_free(ev);
    for (size_t i = 0; i < cfg->check_count; i++) {
        int id = slot_id(cfg, i);
        if (frees[id] != started[id])
            bad++, fprintf(stderr, "  stub%c: data freed %d times\n", (char)('A' + id), frees[id]);
        if (plan[id].pend && started[id] && completed[id] + cancels[id] != 1)
            bad++, fprintf(stderr, "  stub%c: completed %d, cancelled %d\n", (char)('A' + id),
                           completed[id], cancels[id]);
        if ((!plan[id].pend || !started[id]) && cancels[id] != 0)
            bad++, fprintf(stderr, "  stub%c: cancelled without pending\n", (char)('A' + id));
    }
    if (!finished || done_inside_start || done_calls != (sync ? 0 : 1))
        bad++, fprintf(stderr, "  finished %d, done %d times (%d inside start), sync %d\n",
                       finished, done_calls, done_inside_start, sync);
    return bad;
}

/* next_permutation - the next order in lexicographic order; 0 after the last. */
static int next_permutation(int *a, size_t n)
{
    size_t i = n - 1;
    while (i > 0 && a[i - 1] >= a[i])
        i--;
    if (i == 0)
        return 0;
    size_t j = n - 1;
    while (a[j] <= a[i - 1])
        j--;
    int t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
    for (size_t l = i, r = n - 1; l < r; l++, r--)
        t = a[l], a[l] = a[r], a[r] = t;
    return 1;
}

/* set_plan - the four stubs' verdicts; all pend. */
static void set_plan(enum stub_verdict a, enum stub_verdict b, enum stub_verdict c,
                     enum stub_verdict d)
{
    enum stub_verdict v[NSTUBS] = {a, b, c, d};
    memset(plan, 0, sizeof(plan));
    for (size_t i = 0; i < NSTUBS; i++) {
        plan[i].pend = 1;
        plan[i].verdict = v[i];
    }
}

/* every_order - the same answer, want, for all 24 completion orders; both the path where every
 * stub answers and the one where the decision cancels the rest are taken when expect_cancel. */
static void every_order(struct config *cfg, const char *name, const char *want, int expect_cancel)
{
    int order[NSTUBS] = {0, 1, 2, 3};
    int orders = 0, wrong = 0, bad = 0, with_cancel = 0, without_cancel = 0;
    int cancelled = 0, saw_data = 0;
    do {
        char got[256];
        bad += run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got));
        int c = cancels[0] + cancels[1] + cancels[2] + cancels[3];
        cancelled += c;
        saw_data += cancel_saw_data;
        with_cancel += c > 0;
        without_cancel += c == 0;
        if (strcmp(got, want) != 0) {
            if (!wrong)
                fprintf(stderr, "%s: order %d%d%d%d answered '%s', want '%s'\n", name, order[0],
                        order[1], order[2], order[3], got, want);
            wrong++;
        }
        orders++;
    } while (next_permutation(order, NSTUBS));
    CHECK(orders == 24);
    CHECK(wrong == 0);
    CHECK(bad == 0);
    CHECK(saw_data == cancelled); /* every cancel() ran before its call's data was freed */
    if (expect_cancel)
        CHECK(with_cancel > 0 && without_cancel > 0);
    else
        CHECK(with_cancel == 0);
    if (wrong || bad)
        fprintf(stderr, "  in scenario %s\n", name);
}

/* --- the log --- */

static char log_path[512];

static long log_size(void)
{
    struct stat sb;
    return stat(log_path, &sb) == 0 ? (long)sb.st_size : 0;
}

/* log_since - the log written after offset (static storage). */
static const char *log_since(long offset)
{
    static char text[65536];
    FILE *fp = fopen(log_path, "r");
    size_t n = 0;
    if (fp) {
        fseek(fp, offset, SEEK_SET);
        n = fread(text, 1, sizeof(text) - 1, fp);
        fclose(fp);
    }
    text[n] = 0;
    return text;
}

/* --- the tests --- */

static struct config *load(const char *dir, const char *name, const char *lines)
{
    char path[600], err[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp)
        return NULL;
    fprintf(fp, "postfix_config_directory =\n%s", lines);
    fclose(fp);
    struct config *cfg = config_load(path, err, sizeof(err));
    if (!cfg)
        fprintf(stderr, "config_load: %s\n", err);
    return cfg;
}

static void test_orders(struct config *cfg)
{
    /* The first decisive verdict in configured order wins, whoever answers first. */
    set_plan(SV_NONE, SV_REJECT, SV_DEFER, SV_PREPEND);
    every_order(cfg, "none, reject, defer, prepend", "554 5.7.1 stubB rejects", 1);
    set_plan(SV_PREPEND, SV_NONE, SV_DEFER, SV_REJECT);
    every_order(cfg, "prepend, none, defer, reject", "450 4.7.1 stubC defers", 1);
    set_plan(SV_WARN, SV_DUNNO, SV_REJECT, SV_PREPEND);
    every_order(cfg, "warn, dunno, reject, prepend", "554 5.7.1 stubC rejects", 1);
    /* No refusal: the first header in configured order, after everyone has answered. */
    set_plan(SV_NONE, SV_PREPEND, SV_NONE, SV_PREPEND);
    every_order(cfg, "none, prepend, none, prepend", "PREPEND X-Stub: B", 0);
    set_plan(SV_NONE, SV_DUNNO, SV_WARN, SV_NONE);
    every_order(cfg, "nothing decisive", "DUNNO", 0);
    /* A refusal from the first check: nobody after it matters. */
    set_plan(SV_REJECT, SV_DEFER, SV_REJECT, SV_DEFER);
    every_order(cfg, "reject first", "554 5.7.1 stubA rejects", 1);

    /* Mixed: some answer inside run(). A synchronous first refusal answers on return. */
    set_plan(SV_REJECT, SV_NONE, SV_DEFER, SV_NONE);
    plan[0].pend = 0;
    int order[NSTUBS] = {0, 1, 2, 3};
    char got[256];
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "554 5.7.1 stubA rejects");
    CHECK(done_calls == 0);                                       /* known on return */
    CHECK(cancels[1] == 1 && cancels[2] == 1 && cancels[3] == 1); /* the rest cancelled */
    CHECK(cancel_saw_data == 3); /* cancel() ran before the data was freed */
    /* A synchronous refusal behind pending checks waits for them. */
    set_plan(SV_NONE, SV_NONE, SV_REJECT, SV_PREPEND);
    plan[2].pend = 0;
    plan[3].pend = 0;
    order[0] = 1, order[1] = 0;
    CHECK(run_order(cfg, "RCPT", order, 2, got, sizeof(got)) == 0);
    CHECK_STR(got, "554 5.7.1 stubC rejects");
    CHECK(done_calls == 1 && completed[0] == 1 && completed[1] == 1);
}

static void test_warn_mode(struct config *cfg)
{
    long off = log_size();
    int order[NSTUBS] = {2, 1, 0, 3};
    char got[256];
    set_plan(SV_NONE, SV_REJECT, SV_NONE, SV_NONE);
    cfg->check_modes[1] = MODE_WARN; /* what stubB_mode = warn would set */
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "DUNNO");
    const char *log = log_since(off);
    CHECK(strstr(log, "NOQUEUE: client=mx.example.net[192.0.2.7], from=<alice@example.net>, "
                      "to=<bob@example.org>, helo=<mx.example.net>: stubB: would reject (warn "
                      "mode): 554 5.7.1 stubB rejects; cause_code=stub.reject; cause=stubB found "
                      "something; fix=fix the stub") != NULL);
    CHECK(strstr(log, ": stubB: reject:") == NULL);

    /* Warn mode does not hide a later enforcing check's refusal; both are logged. */
    off = log_size();
    set_plan(SV_NONE, SV_REJECT, SV_NONE, SV_DEFER);
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "450 4.7.1 stubD defers");
    log = log_since(off);
    CHECK(strstr(log, ": stubB: would reject (warn mode): ") != NULL);
    CHECK(strstr(log, ": stubD: defer: 450 4.7.1 stubD defers; cause_code=stub.defer; "
                      "cause=stubD found") != NULL);
    cfg->check_modes[1] = MODE_ENFORCE;

    /* In enforce mode the same verdict refuses and is logged as such. */
    off = log_size();
    set_plan(SV_NONE, SV_REJECT, SV_NONE, SV_NONE);
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "554 5.7.1 stubB rejects");
    CHECK(strstr(log_since(off), ": stubB: reject: 554 5.7.1 stubB rejects") != NULL);
}

static void test_log_lines(struct config *cfg)
{
    /* check_call_log and WARN actions: keyed lines, whatever the answer. */
    long off = log_size();
    int order[NSTUBS] = {0, 1, 2, 3};
    char got[256];
    set_plan(SV_NONE, SV_WARN, SV_NONE, SV_NONE);
    plan[0].log_line = 1;
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "DUNNO");
    const char *log = log_since(off);
    CHECK(strstr(log, "]: NOQUEUE: client=mx.example.net[192.0.2.7], from=<alice@example.net>, "
                      "to=<bob@example.org>, helo=<mx.example.net>: stubA: note; "
                      "cause_code=stub.says; cause=stubA says 42; fix=none needed\n") != NULL);
    CHECK(strstr(log,
                 "to=<bob@example.org>, helo=<mx.example.net>: stubB: warn: WARN stubB "
                 "warns; cause_code=stub.warn; cause=stubB found something; fix=look") != NULL);
}

static void test_prepend_once(struct config *cfg)
{
    int order[NSTUBS] = {0, 1, 2, 3}, reverse[NSTUBS] = {3, 2, 1, 0};
    char got[256];
    /* The header is answered: marked sent, once. */
    set_plan(SV_ONCE, SV_NONE, SV_NONE, SV_NONE);
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "PREPEND X-Once: A");
    CHECK(sent[0] == 1);
    /* Another check's refusal wins, in either order of answers: not marked. */
    set_plan(SV_ONCE, SV_NONE, SV_REJECT, SV_NONE);
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "554 5.7.1 stubC rejects");
    CHECK(sent[0] == 0);
    CHECK(run_order(cfg, "RCPT", reverse, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "554 5.7.1 stubC rejects");
    CHECK(sent[0] == 0);
    /* A deferral wins too. */
    set_plan(SV_DEFER, SV_ONCE, SV_NONE, SV_NONE);
    CHECK(run_order(cfg, "RCPT", reverse, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "450 4.7.1 stubA defers");
    CHECK(sent[1] == 0);
    /* An earlier check's header is the one answered: the later one is not marked. */
    set_plan(SV_PREPEND, SV_ONCE, SV_NONE, SV_NONE);
    CHECK(run_order(cfg, "RCPT", reverse, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "PREPEND X-Stub: A");
    CHECK(sent[1] == 0);
    set_plan(SV_NONE, SV_ONCE, SV_PREPEND, SV_NONE);
    CHECK(run_order(cfg, "RCPT", reverse, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "PREPEND X-Once: B");
    CHECK(sent[1] == 1 && sent[2] == 0);
    /* Warn mode: not answered, not marked. */
    set_plan(SV_ONCE, SV_NONE, SV_NONE, SV_NONE);
    cfg->check_modes[0] = MODE_WARN;
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "DUNNO");
    CHECK(sent[0] == 0);
    cfg->check_modes[0] = MODE_ENFORCE;
    /* At END-OF-MESSAGE Postfix would drop a header: never answered there, not marked. */
    set_plan(SV_ONCE, SV_NONE, SV_NONE, SV_NONE);
    CHECK(run_order(cfg, "END-OF-MESSAGE", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "DUNNO");
    CHECK(sent[0] == 0);
}

/* stop_loop_cb - a bound on how long the deadline test may run. */
static void stop_loop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(int *)arg = 1;
    event_base_loopbreak(base);
}

static void break_on_done(struct evaluation *ev, void *arg)
{
    on_done(ev, arg);
    event_base_loopbreak(base);
}

static void test_deadline(struct config *cfg)
{
    long off = log_size();
    int timed_out = 0;
    set_plan(SV_NONE, SV_NONE, SV_REJECT, SV_NONE);
    plan[0].pend = 0; /* stubA answers at once, stubB never, stubC and stubD right away */
    reset_counters();
    struct evaluation *ev =
        evaluate_start(base, NULL, cfg, make_request("RCPT"), break_on_done, NULL);
    CHECK(!evaluate_finished(ev));
    struct timeval zero = {0, 0}, bound = {5, 0};
    event_base_once(base, -1, EV_TIMEOUT, complete_cb, &ids[2], &zero);
    event_base_once(base, -1, EV_TIMEOUT, complete_cb, &ids[3], &zero);
    struct event *guard = evtimer_new(base, stop_loop_cb, &timed_out);
    evtimer_add(guard, &bound);
    event_base_dispatch(base); /* until the evaluation is done, or 5 s */
    event_free(guard);
    CHECK(!timed_out);
    CHECK(evaluate_finished(ev));
    CHECK_STR(evaluate_action(ev), "451 4.3.5 stub fallback");
    CHECK(done_calls == 1);
    CHECK(completed[2] == 1 && completed[3] == 1);
    CHECK(cancels[1] == 1 && cancels[0] == 0 && cancels[2] == 0);
    CHECK(frees[0] == 1 && frees[1] == 1 && frees[2] == 1 && frees[3] == 1);
    evaluate_free(ev);
    CHECK(cancels[1] == 1 && frees[1] == 1); /* not again when freed */
    const char *log = log_since(off);
    CHECK(strstr(log,
                 "warning: NOQUEUE: client=mx.example.net[192.0.2.7], "
                 "from=<alice@example.net>, to=<bob@example.org>, helo=<mx.example.net>: "
                 "deadline: no answer after 100 ms, answered 451 4.3.5 stub fallback; "
                 "cause_code=deadline.fallback; late: stubB (the answer of stub B); fix=") != NULL);
    CHECK(strstr(log, "late: stubB (the answer of stub B), ") == NULL); /* stubB alone */
}

static void test_freed_while_pending(struct config *cfg)
{
    /* The connection goes away: every pending call cancelled once, every data freed once. */
    set_plan(SV_REJECT, SV_NONE, SV_NONE, SV_NONE);
    plan[1].pend = 0;
    plan[2].reset_data = 1;
    reset_counters();
    struct evaluation *ev = evaluate_start(base, NULL, cfg, make_request("RCPT"), on_done, NULL);
    CHECK(!evaluate_finished(ev));
    CHECK(frees[1] == 1); /* stubB answered inside run(): its data went on return */
    CHECK(frees[0] == 0 && frees[2] == 0 && frees[3] == 0);
    evaluate_free(ev);
    CHECK(cancels[0] == 1 && cancels[1] == 0 && cancels[2] == 1 && cancels[3] == 1);
    CHECK(frees[0] == 1 && frees[1] == 1 && frees[2] == 1 && frees[3] == 1);
    CHECK(cancel_saw_data == 3);
    CHECK(done_calls == 0);
    /* Nothing comes back from the loop afterwards. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    CHECK(done_calls == 0 && cancels[0] == 1);
}

/* count_lines - lines of text containing needle. */
static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* one_verdict - run one evaluation with stub plan (all answer inside run()), return the log
 * lines it wrote. */
static const char *one_verdict(struct config *cfg, enum stub_verdict a, enum stub_verdict b,
                               const char *subject)
{
    long off = log_size();
    int order[NSTUBS] = {0, 1, 2, 3};
    char got[256];
    set_plan(a, b, SV_NONE, SV_NONE);
    for (size_t i = 0; i < NSTUBS; i++)
        plan[i].pend = 0;
    plan[1].subject = subject;
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    return log_since(off);
}

static void test_repeats(struct config *on, struct config *off)
{
    const char *full = "stubB: reject: 554 5.7.1 stubB rejects; cause_code=stub.reject; "
                       "cause=stubB found something; fix=fix the stub\n";
    const char *brief = "stubB: reject: 554 5.7.1; cause_code=stub.reject; as explained at ";
    repeat_clear();
    req_instance = "msg-1";
    /* The first time: in full; again in the same message: short, counted. */
    CHECK(strstr(one_verdict(on, SV_NONE, SV_REJECT, NULL), full) != NULL);
    const char *log = one_verdict(on, SV_NONE, SV_REJECT, NULL);
    CHECK(strstr(log, brief) != NULL && strstr(log, " for client 192.0.2.7, 1 time since\n"));
    CHECK(strstr(log, "cause=") == NULL);
    log = one_verdict(on, SV_NONE, SV_REJECT, NULL);
    CHECK(strstr(log, " for client 192.0.2.7, 2 times since\n") != NULL);
    /* A subject of its own (a sender domain): explained on its own, then short. */
    CHECK(strstr(one_verdict(on, SV_NONE, SV_REJECT, "a.example"), full) != NULL);
    log = one_verdict(on, SV_NONE, SV_REJECT, "a.example");
    CHECK(strstr(log, " for sender domain a.example, 1 time since\n") != NULL);
    CHECK(strstr(one_verdict(on, SV_NONE, SV_REJECT, "b.example"), full) != NULL);
    /* The first line of a cause in a new message is full; its next one short. */
    req_instance = "msg-2";
    CHECK(strstr(one_verdict(on, SV_NONE, SV_REJECT, NULL), full) != NULL);
    log = one_verdict(on, SV_NONE, SV_REJECT, NULL);
    CHECK(strstr(log, brief) != NULL && strstr(log, " for client 192.0.2.7, 1 time since\n"));
    /* Warn actions and lines without a verdict repeat the same way. */
    plan[0].log_line = 0;
    log = one_verdict(on, SV_WARN, SV_NONE, NULL);
    CHECK(strstr(log, "stubA: warn: WARN stubA warns; cause_code=stub.warn; cause=") != NULL);
    log = one_verdict(on, SV_WARN, SV_NONE, NULL);
    CHECK(strstr(log, "stubA: warn: WARN; cause_code=stub.warn; as explained at ") != NULL);
    set_plan(SV_NONE, SV_NONE, SV_NONE, SV_NONE);
    plan[0].log_line = 1;
    for (size_t i = 0; i < NSTUBS; i++)
        plan[i].pend = 0;
    int order[NSTUBS] = {0, 1, 2, 3};
    char got[256];
    long at = log_size();
    CHECK(run_order(on, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK(run_order(on, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    log = log_since(at);
    CHECK(count_lines(log, "stubA: note; cause_code=stub.says; cause=stubA says 42; fix=") == 1);
    CHECK(count_lines(log, "stubA: note; cause_code=stub.says; as explained at ") == 1);
    /* Interval 0: today's behaviour, every line in full, nothing remembered. */
    size_t remembered = repeat_count(0);
    at = log_size();
    for (int i = 0; i < 3; i++)
        one_verdict(off, SV_NONE, SV_REJECT, NULL);
    log = log_since(at);
    CHECK(count_lines(log, full) == 3);
    CHECK(strstr(log, "as explained") == NULL);
    CHECK(repeat_count(0) == remembered);
    repeat_clear();
    CHECK(repeat_count(0) == 0 && repeat_count(1) == 0);
    req_instance = "1234.5678";
}

static void test_deadline_repeats(struct config *quick)
{
    /* A deadline line repeats short too, naming the late checks without the details. */
    long off = log_size();
    repeat_clear();
    for (int k = 0; k < 2; k++) {
        int timed_out = 0;
        set_plan(SV_NONE, SV_NONE, SV_NONE, SV_NONE);
        for (size_t i = 0; i < NSTUBS; i++)
            plan[i].pend = i == 1;
        reset_counters();
        struct evaluation *ev =
            evaluate_start(base, NULL, quick, make_request("RCPT"), break_on_done, NULL);
        struct timeval bound = {5, 0};
        struct event *guard = evtimer_new(base, stop_loop_cb, &timed_out);
        evtimer_add(guard, &bound);
        event_base_dispatch(base);
        event_free(guard);
        CHECK(!timed_out && evaluate_finished(ev));
        evaluate_free(ev);
    }
    const char *log = log_since(off);
    CHECK(strstr(log, "deadline: no answer after 100 ms, answered 451 4.3.5 stub fallback; "
                      "cause_code=deadline.fallback; late: stubB; as explained at ") != NULL);
    repeat_clear();
}

/* position - where id comes in order. */
static int position(const int *order, int id)
{
    for (int k = 0; k < NSTUBS; k++)
        if (order[k] == id)
            return k;
    return NSTUBS;
}

/* test_after - stubW waits for stubA and stubC (checks = stubA, stubB, stubW, stubC: one of
 * them after it in the list). */
static void test_after(struct config *cfg)
{
    int order[NSTUBS] = {0, 1, 2, 3}, orders = 0, wrong = 0, bad = 0, early = 0, blind = 0;
    char got[256];
    CHECK(cfg->check_count == 4 && slot_id(cfg, 2) == 3 && slot_id(cfg, 3) == 2);
    /* Every completion order (stubW's place in it only matters once it runs), stubW pending
     * or answering inside run(): it runs once, after stubA and stubC, and reads their
     * findings; its deferral is the answer. */
    for (int w_sync = 0; w_sync < 2; w_sync++) {
        for (int k = 0; k < NSTUBS; k++)
            order[k] = k;
        do {
            set_plan(SV_NONE, SV_NONE, SV_NONE, SV_DEFER);
            plan[3].pend = !w_sync;
            bad += run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got));
            wrong += strcmp(got, "450 4.7.1 stubD defers") != 0;
            early += w_runs != 1 || !w_deps_done;
            blind += strcmp(w_saw, "A=A C=C") != 0;
            orders++;
        } while (next_permutation(order, NSTUBS));
    }
    CHECK(orders == 48);
    CHECK(wrong == 0 && bad == 0 && early == 0 && blind == 0);
    if (wrong || bad || early || blind)
        fprintf(stderr, "  after: %d wrong, %d bad, %d early, %d blind (last saw %s)\n", wrong, bad,
                early, blind, w_saw);

    /* stubA and stubC answer inside run(): stubW starts inside evaluate_start too, even though
     * stubB still pends; a warn-mode refusal still publishes. */
    set_plan(SV_REJECT, SV_NONE, SV_NONE, SV_NONE);
    plan[0].pend = plan[2].pend = 0;
    cfg->check_modes[0] = MODE_WARN;
    reset_counters();
    struct evaluation *ev = evaluate_start(base, NULL, cfg, make_request("RCPT"), on_done, NULL);
    CHECK(w_runs == 1 && w_deps_done && strcmp(w_saw, "A=A C=C") == 0);
    CHECK(!evaluate_finished(ev) && pending[1] && pending[3]);
    evaluate_free(ev);
    CHECK(cancels[1] == 1 && cancels[3] == 1 && frees[3] == 1);
    cfg->check_modes[0] = MODE_ENFORCE;

    /* stubB (before stubW) refuses: stubW is started only if stubA and stubC finished before
     * the refusal came; the answer is stubB's in every order. */
    int ran = 0, ran_right = 0;
    orders = wrong = bad = 0;
    for (int k = 0; k < NSTUBS; k++)
        order[k] = k;
    do {
        set_plan(SV_NONE, SV_REJECT, SV_NONE, SV_DEFER);
        bad += run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got));
        wrong += strcmp(got, "554 5.7.1 stubB rejects") != 0;
        int may =
            position(order, 0) < position(order, 1) && position(order, 2) < position(order, 1);
        ran += w_runs;
        ran_right += w_runs == may;
        orders++;
    } while (next_permutation(order, NSTUBS));
    CHECK(orders == 24 && wrong == 0 && bad == 0);
    CHECK(ran_right == 24 && ran > 0 && ran < 24);
    /* stubA refuses: nothing after it is needed, stubW never runs. */
    set_plan(SV_REJECT, SV_NONE, SV_NONE, SV_DEFER);
    int reverse[NSTUBS] = {3, 2, 1, 0};
    CHECK(run_order(cfg, "RCPT", reverse, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "554 5.7.1 stubA rejects");
    CHECK(w_runs == 0 && frees[3] == 0 && cancels[3] == 0);
}

/* test_after_refused - checks = stubB, stubA, stubW, stubC: stubA refuses, so stubW, behind
 * it, is never started, not even when stubA and stubC have finished while stubB (first) still
 * pends and the answer is not known yet. */
static void test_after_refused(struct config *cfg)
{
    int order[NSTUBS] = {0, 1, 2, 3}, orders = 0, wrong = 0, bad = 0, ran = 0;
    char got[256];
    do {
        set_plan(SV_REJECT, SV_NONE, SV_NONE, SV_DEFER);
        bad += run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got));
        wrong += strcmp(got, "554 5.7.1 stubA rejects") != 0;
        ran += w_runs;
        orders++;
    } while (next_permutation(order, NSTUBS));
    CHECK(orders == 24 && wrong == 0 && bad == 0);
    CHECK(ran == 0);
}

/* test_after_alone - none of the checks stubW waits for is configured: it starts at once. */
static void test_after_alone(struct config *cfg)
{
    char got[256];
    int order[NSTUBS] = {0, 1, 2, 3};
    set_plan(SV_NONE, SV_NONE, SV_NONE, SV_DEFER);
    plan[3].pend = 0;
    reset_counters();
    struct evaluation *ev = evaluate_start(base, NULL, cfg, make_request("RCPT"), on_done, NULL);
    CHECK(w_runs == 1 && !answered[1] && strcmp(w_saw, "A=(none) C=(none)") == 0);
    CHECK(!evaluate_finished(ev)); /* stubB, before it, still pends */
    evaluate_free(ev);
    CHECK(run_order(cfg, "RCPT", order, NSTUBS, got, sizeof(got)) == 0);
    CHECK_STR(got, "450 4.7.1 stubD defers");
}

/* test_after_deadline - the deadline passes while stubW waits for stubA: the fallback is
 * answered, stubW named as waiting, never started (no run, no cancel, no data). */
static void test_after_deadline(struct config *quick)
{
    long off = log_size();
    int timed_out = 0;
    set_plan(SV_NONE, SV_NONE, SV_NONE, SV_DEFER);
    reset_counters();
    struct evaluation *ev =
        evaluate_start(base, NULL, quick, make_request("RCPT"), break_on_done, NULL);
    CHECK(!evaluate_finished(ev) && pending[0] && w_runs == 0);
    struct timeval bound = {5, 0};
    struct event *guard = evtimer_new(base, stop_loop_cb, &timed_out);
    evtimer_add(guard, &bound);
    event_base_dispatch(base);
    event_free(guard);
    CHECK(!timed_out && evaluate_finished(ev));
    CHECK_STR(evaluate_action(ev), "451 4.3.5 stub fallback");
    CHECK(cancels[0] == 1 && frees[0] == 1);
    CHECK(w_runs == 0 && cancels[3] == 0 && frees[3] == 0);
    evaluate_free(ev);
    CHECK(w_runs == 0 && cancels[3] == 0 && frees[3] == 0 && done_calls == 1);
    event_base_loop(base, EVLOOP_NONBLOCK);
    CHECK(w_runs == 0 && done_calls == 1);
    CHECK(strstr(log_since(off), "late: stubA (the answer of stub A), stubW (waiting for stubA); "
                                 "fix=") != NULL);
}

/* load_refused - the reason config_load refuses lines for. */
static const char *load_refused(const char *dir, const char *lines)
{
    static char err[1024];
    char path[600];
    snprintf(path, sizeof(path), "%s/refused.conf", dir);
    FILE *fp = fopen(path, "w");
    if (!fp)
        return "cannot write";
    fprintf(fp, "postfix_config_directory =\n%s", lines);
    fclose(fp);
    struct config *cfg = config_load(path, err, sizeof(err));
    if (cfg) {
        config_unref(cfg);
        return "(loaded)";
    }
    return err;
}

static void test_after_chains(const char *dir)
{
    /* A check others wait for may not wait itself; a check may not wait for itself. */
    const char *err = load_refused(dir, "checks = stubA, stubW, stubV\n");
    CHECK(strstr(err, "/refused.conf:2: checks: 'stubV' runs after 'stubW', which waits for other "
                      "checks too") != NULL);
    if (!strstr(err, "stubV"))
        fprintf(stderr, "  got: %s\n", err);
    err = load_refused(dir, "checks = stubS\n");
    CHECK(strstr(err, "refused.conf:2: checks: 'stubS' runs after 'stubS', which is itself") !=
          NULL);
    /* Without stubW configured, stubV waits for nothing: fine. */
    CHECK_STR(load_refused(dir, "checks = stubA, stubV\n"), "(loaded)");
}

static void test_start_stop(const char *dir)
{
    memset(plan, 0, sizeof(plan));
    memset(starts, 0, sizeof(starts));
    memset(stops, 0, sizeof(stops));
    struct config *one = load(dir, "one.conf", "checks = stubA, stubB\n");
    struct config *two = load(dir, "two.conf", "checks = stubB, stubC, stubD\n");
    CHECK(one && two);
    if (!one || !two)
        return;
    char err[256] = "";
    /* Loading alone starts nothing (policyd -t, the doctor). */
    CHECK(starts[0] + starts[1] + starts[2] + starts[3] == 0);
    CHECK(evaluate_start_checks(one, NULL, base, NULL, err, sizeof(err)) == 0);
    CHECK(starts[0] == 1 && starts[1] == 1 && !start_previous[0] && !start_previous[1]);
    /* A reload: the new configuration starts, each check handed its predecessor's state. */
    CHECK(evaluate_start_checks(two, one, base, NULL, err, sizeof(err)) == 0);
    CHECK(starts[1] == 2 && start_previous[1] == one->check_states[1]);
    CHECK(starts[2] == 1 && start_previous[2] == NULL);
    evaluate_stop_checks(one);
    CHECK(stops[0] == 1 && stops[1] == 1 && stops[2] == 0);
    /* A check that cannot start refuses the configuration; what had started is stopped. */
    plan[3].fail_start = 1;
    struct config *three = load(dir, "three.conf", "checks = stubA, stubB, stubD, stubC\n");
    CHECK(three != NULL);
    if (three) {
        CHECK(evaluate_start_checks(three, two, base, NULL, err, sizeof(err)) == -1);
        CHECK_STR(err, "stubD check: stubD cannot start");
        CHECK(starts[0] == 2 && starts[1] == 3 && starts[2] == 1);
        CHECK(stops[0] == 2 && stops[1] == 2 && stops[2] == 0);
        config_unref(three);
    }
    evaluate_stop_checks(two);
    evaluate_stop_checks(NULL);
    CHECK(stops[1] == 3 && stops[2] == 1 && stops[3] == 1);
    config_unref(one);
    config_unref(two);
}

int main(void)
{
    char dir[] = "/tmp/test_evaluate.XXXXXX", err[512];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(log_path, sizeof(log_path), "%s/policyd.log", dir);
    CHECK(log_open("policyd", "mail", log_path, 0, err, sizeof(err)) == 0);
    config_use_checks(stub_find, stub_names);
    base = event_base_new();
    CHECK(base != NULL);

    /* Every line in full for the tests that look at the lines of the same causes again. */
    struct config *cfg = load(dir, "policyd.conf",
                              "checks = stubA, stubB, stubC, stubD\n"
                              "diagnosis_repeat_interval = 0\n");
    struct config *quick = load(dir, "quick.conf",
                                "checks = stubA, stubB, stubC, stubD\n"
                                "diagnosis_repeat_interval = 0\n"
                                "request_deadline = 100ms\n"
                                "fallback_action = 451 4.3.5 stub fallback\n");
    CHECK(cfg && quick);
    if (base && cfg && quick) {
        CHECK(cfg->check_count == NSTUBS);
        test_orders(cfg);
        test_warn_mode(cfg);
        test_log_lines(cfg);
        test_prepend_once(cfg);
        test_deadline(quick);
        test_freed_while_pending(cfg);
        test_start_stop(dir);
        test_after_chains(dir);
    }
    struct config *wcfg = load(dir, "after.conf",
                               "checks = stubA, stubB, stubW, stubC\n"
                               "diagnosis_repeat_interval = 0\n");
    struct config *walone = load(dir, "alone.conf",
                                 "checks = stubB, stubW\n"
                                 "diagnosis_repeat_interval = 0\n");
    struct config *wquick = load(dir, "afterquick.conf",
                                 "checks = stubA, stubW\n"
                                 "diagnosis_repeat_interval = 0\n"
                                 "request_deadline = 100ms\n"
                                 "fallback_action = 451 4.3.5 stub fallback\n");
    struct config *wrefused = load(dir, "afterrefused.conf",
                                   "checks = stubB, stubA, stubW, stubC\n"
                                   "diagnosis_repeat_interval = 0\n");
    CHECK(wcfg && walone && wquick && wrefused);
    if (base && wcfg && walone && wquick && wrefused) {
        test_after(wcfg);
        test_after_refused(wrefused);
        test_after_alone(walone);
        test_after_deadline(wquick);
    }
    config_unref(wcfg);
    config_unref(walone);
    config_unref(wquick);
    config_unref(wrefused);
    struct config *on = load(dir, "repeat.conf",
                             "checks = stubA, stubB, stubC, stubD\n"
                             "diagnosis_repeat_interval = 1h\n");
    struct config *quick_on = load(dir, "quickrepeat.conf",
                                   "checks = stubA, stubB, stubC, stubD\n"
                                   "request_deadline = 100ms\n"
                                   "fallback_action = 451 4.3.5 stub fallback\n");
    CHECK(on && quick_on);
    if (base && cfg && on && quick_on) {
        test_repeats(on, cfg);
        test_deadline_repeats(quick_on);
    }
    config_unref(on);
    config_unref(quick_on);
    config_unref(cfg);
    config_unref(quick);
    if (base)
        event_base_free(base);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return UNIT_END();
}
