/*
 * spf.c - the SPF check: the MAIL FROM identity (and the HELO identity; the HELO identity
 * alone for the null sender) evaluated by spf_eval.c over the shared DNS engine, answered
 * with RFC 7372 codes, a Received-SPF header (RFC 7208 9.1) once per message, and a diagnosis.
 *
 * An evaluation runs in passes (see spf_eval.h): answers the evaluator wants are asked of the
 * DNS engine; each answer that arrives starts another pass, which is cheap (microseconds) and
 * either finishes or wants more. The answers an evaluation has seen are held by the call, so a
 * short TTL cannot make a pass forget what the previous one saw. Results are kept per message
 * (Postfix's instance attribute plus client, sender and HELO) so that the recipients of one
 * message are evaluated once, and the header is prepended for the first recipient only.
 * Every result, cached or not, is published as a finding (spf.result, spf.domain,
 * spf.identity; check.h) for the checks that run after this one (greylist).
 */
/* SPDX-License-Identifier: MIT */
#include "checks/check.h"
#include "policyd/mail/spf_eval.h"

#include "policyd/config.h"
#include "policyd/dns/dns.h"
#include "policyd/maps/domainlist.h"
#include "policyd/lib/hash.h"
#include "policyd/lib/xalloc.h"
#include "policyd/maps/netlist.h"
#include "protocol/action.h"

#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SPF_MAX_QUERIES 300 /* distinct DNS questions one evaluation may ask */
#define SPF_NRESULTS 7

/* What one SPF result is answered with. */
enum spf_act_kind { ACT_PREPEND, ACT_DUNNO, ACT_ACTION };

struct spf_act {
    enum spf_act_kind kind;
    const char *action; /* ACT_ACTION: as configured */
    int append;         /* the action has no text of its own: append the explanation */
};

/* A decision, as kept in the per-message cache. */
struct spf_verdict {
    enum { V_NONE, V_REJECT, V_DEFER, V_PREPEND, V_LOG } kind;
    const char *code;         /* the cause code (a literal) */
    const char *subject_what; /* "sender domain" or "HELO name" */
    char *action, *cause, *fix, *header, *subject;
    /* The finding, whatever the answer: the result, for which identity, of which domain. */
    int evaluated;
    enum spf_result result;
    int helo_identity;
    char *domain;
};

struct spf_entry {
    char *key; /* NULL: free slot */
    uint64_t hash;
    long long expires_ms;
    int header_sent; /* a reply carried the Received-SPF header */
    int logged;      /* the diagnosis was logged */
    struct spf_verdict v;
    int32_t next; /* bucket chain */
};

struct spf_state {
    struct netlist *skip;
    struct domainlist *skip_helo, *skip_sender;
    struct spf_act acts[SPF_NRESULTS];
    struct spf_act helo_fail; /* a HELO fail with a non-null sender */
    struct spf_entry *cache;
    int32_t *buckets;
    size_t cache_size, nbuckets, cursor;
};

struct spf_call;

struct spf_fetched {
    int type;
    char *name;
    const struct dns_result *r;
};

struct spf_inflight {
    struct spf_call *sc;
    struct dns_query *q;
    int type;
    char *name;
};

struct spf_call {
    struct check_call *call;
    struct spf_state *st;
    struct spf_fetched *f;
    size_t nf, capf;
    struct spf_inflight **q;
    size_t nq, capq;
    size_t asked;        /* distinct questions so far */
    int in_run;          /* inside run(): finishing must not call check_call_done */
    struct event *rerun; /* the next pass, once this loop turn's answers are all in */
    int rerun_armed;
    int helo_todo, mf_todo, null_sender;
    char helo_sender[320];
    struct spf_input in_helo, in_mf;
    struct spf_outcome o_helo, o_mf;
    char key[1024];
};

/* ---- per-message cache ---------------------------------------------------------------------- */

static long long spf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void verdict_free(struct spf_verdict *v)
{
    free(v->action);
    free(v->cause);
    free(v->fix);
    free(v->header);
    free(v->subject);
    free(v->domain);
    memset(v, 0, sizeof(*v));
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static struct spf_entry *cache_find(struct spf_state *st, const char *key)
{
    if (!st->cache_size || !key[0])
        return NULL;
    uint64_t h = hash_str(key);
    long long now = spf_now_ms();
    for (int32_t i = st->buckets[h & (st->nbuckets - 1)]; i >= 0; i = st->cache[i].next) {
        struct spf_entry *e = &st->cache[i];
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e->expires_ms > now ? e : NULL;
    }
    return NULL;
}

/* cache_unlink - take slot i out of its bucket chain. */
static void cache_unlink(struct spf_state *st, int32_t i)
{
    int32_t *pp = &st->buckets[st->cache[i].hash & (st->nbuckets - 1)];
    while (*pp >= 0 && *pp != i)
        pp = &st->cache[*pp].next;
    if (*pp == i)
        *pp = st->cache[i].next;
}

/* cache_put - remember a verdict (the oldest slot is reused: entries live minutes). */
static struct spf_entry *cache_put(struct spf_state *st, const char *key,
                                   const struct spf_verdict *v, long ttl_ms)
{
    if (!st->cache_size || !key[0])
        return NULL;
    int32_t i = (int32_t)st->cursor;
    st->cursor = (st->cursor + 1) % st->cache_size;
    struct spf_entry *e = &st->cache[i];
    if (e->key) {
        cache_unlink(st, i);
        free(e->key);
        verdict_free(&e->v);
    }
    e->key = dup_or_null(key);
    e->hash = hash_str(key);
    e->expires_ms = spf_now_ms() + ttl_ms;
    e->header_sent = 0;
    e->logged = 0;
    e->v.kind = v->kind;
    e->v.action = dup_or_null(v->action);
    e->v.cause = dup_or_null(v->cause);
    e->v.fix = dup_or_null(v->fix);
    e->v.header = dup_or_null(v->header);
    e->v.code = v->code;
    e->v.subject_what = v->subject_what;
    e->v.subject = dup_or_null(v->subject);
    e->v.evaluated = v->evaluated;
    e->v.result = v->result;
    e->v.helo_identity = v->helo_identity;
    e->v.domain = dup_or_null(v->domain);
    int32_t *b = &st->buckets[e->hash & (st->nbuckets - 1)];
    e->next = *b;
    *b = i;
    return e;
}

/* ---- configuration --------------------------------------------------------------------------- */

/* spf_act_parse - "PREPEND" (the Received-SPF header), "DUNNO", or an access(5) action. */
static int spf_act_parse(const char *name, const char *value, struct spf_act *a, char *err,
                         size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (strcasecmp(value, "PREPEND") == 0) {
        a->kind = ACT_PREPEND;
        return 0;
    }
    if (strcasecmp(value, "DUNNO") == 0) {
        a->kind = ACT_DUNNO;
        return 0;
    }
    enum action_kind kind;
    char e[256];
    /* A bare code ("550 5.7.23") or word ("REJECT") gets the explanation appended. */
    int bare = strchr(value, ' ') == NULL ||
               (strlen(value) > 4 && value[3] == ' ' && strchr(value + 4, ' ') == NULL &&
                value[4] >= '2' && value[4] <= '5' && value[5] == '.');
    char probe[512];
    snprintf(probe, sizeof(probe), "%s%s", value, bare ? " text" : "");
    if (action_parse(probe, &kind, e, sizeof(e)) != 0) {
        snprintf(err, errlen, "%s: %s (or PREPEND: add the Received-SPF header)", name, e);
        return -1;
    }
    a->kind = ACT_ACTION;
    a->action = value;
    a->append = bare && (kind == ACTION_REJECT || kind == ACTION_DEFER);
    return 0;
}

static void spf_unconfigure(void *arg)
{
    struct spf_state *st = arg;
    if (!st)
        return;
    netlist_free(st->skip);
    domainlist_free(st->skip_helo);
    domainlist_free(st->skip_sender);
    for (size_t i = 0; i < st->cache_size; i++)
        if (st->cache[i].key) {
            free(st->cache[i].key);
            verdict_free(&st->cache[i].v);
        }
    free(st->cache);
    free(st->buckets);
    free(st);
}

static void *spf_configure(const struct config *cfg, char *err, size_t errlen)
{
    struct spf_state *st = xcalloc(1, sizeof(*st));
    const char *names[SPF_NRESULTS] = {
        "spf_none_action",     "spf_neutral_action",   "spf_pass_action",     "spf_fail_action",
        "spf_softfail_action", "spf_temperror_action", "spf_permerror_action"};
    const char *values[SPF_NRESULTS] = {cfg->spf_none_action,     cfg->spf_neutral_action,
                                        cfg->spf_pass_action,     cfg->spf_fail_action,
                                        cfg->spf_softfail_action, cfg->spf_temperror_action,
                                        cfg->spf_permerror_action};
    for (int i = 0; i < SPF_NRESULTS; i++)
        if (spf_act_parse(names[i], values[i], &st->acts[i], err, errlen) != 0)
            goto fail;
    if (spf_act_parse("spf_helo_fail_action", cfg->spf_helo_fail_action, &st->helo_fail, err,
                      errlen) != 0)
        goto fail;
    st->skip = netlist_new("spf_skip_networks", cfg->spf_skip_networks, err, errlen);
    if (!st->skip)
        goto fail;
    st->skip_helo = domainlist_new("spf_skip_helo_names", cfg->spf_skip_helo_names, 1, err, errlen);
    if (!st->skip_helo)
        goto fail;
    st->skip_sender =
        domainlist_new("spf_skip_sender_domains", cfg->spf_skip_sender_domains, 1, err, errlen);
    if (!st->skip_sender)
        goto fail;
    if (cfg->spf_cache_size > 0) {
        st->cache_size = (size_t)cfg->spf_cache_size;
        st->cache = xcalloc(st->cache_size, sizeof(*st->cache));
        st->nbuckets = 16;
        while (st->nbuckets < st->cache_size)
            st->nbuckets <<= 1;
        st->buckets = xreallocarray(NULL, st->nbuckets, sizeof(*st->buckets));
        for (size_t i = 0; i < st->nbuckets; i++)
            st->buckets[i] = -1;
    }
    return st;
fail:
    spf_unconfigure(st);
    return NULL;
}

/* ---- DNS for the evaluator ----------------------------------------------------------------- */

/* spf_call_free - a call's state, with its lookups and next pass still pending
 * (check_free_fn). */
static void spf_call_free(void *data)
{
    struct spf_call *sc = data;
    if (sc->rerun)
        event_free(sc->rerun);
    for (size_t i = 0; i < sc->nq; i++) {
        dns_cancel(sc->q[i]->q);
        free(sc->q[i]->name);
        free(sc->q[i]);
    }
    for (size_t i = 0; i < sc->nf; i++) {
        free(sc->f[i].name);
        dns_result_unref(sc->f[i].r);
    }
    free(sc->q);
    free(sc->f);
    free(sc);
}

static void spf_keep(struct spf_call *sc, int type, const char *name, const struct dns_result *r)
{
    sc->f = xgrow(sc->f, &sc->capf, sc->nf + 1, sizeof(*sc->f));
    sc->f[sc->nf].type = type;
    sc->f[sc->nf].name = dup_or_null(name);
    sc->f[sc->nf].r = r;
    sc->nf++;
}

static const struct dns_result *spf_dns_get(void *arg, int type, const char *name)
{
    struct spf_call *sc = arg;
    for (size_t i = 0; i < sc->nf; i++)
        if (sc->f[i].type == type && strcasecmp(sc->f[i].name, name) == 0)
            return sc->f[i].r;
    const struct dns_result *r = dns_peek(check_call_dns(sc->call), (enum dns_type)type, name);
    if (r)
        spf_keep(sc, type, name, r);
    return r;
}

static void spf_pass(struct spf_call *sc);

static void spf_rerun_cb(evutil_socket_t fd, short what, void *arg)
{
    struct spf_call *sc = arg;
    (void)fd;
    (void)what;
    sc->rerun_armed = 0;
    spf_pass(sc);
}

static void spf_dns_cb(const struct dns_result *r, void *arg)
{
    struct spf_inflight *fl = arg;
    struct spf_call *sc = fl->sc;
    spf_keep(sc, fl->type, fl->name, dns_result_ref(r));
    for (size_t i = 0; i < sc->nq; i++)
        if (sc->q[i] == fl) {
            sc->q[i] = sc->q[--sc->nq];
            break;
        }
    free(fl->name);
    free(fl);
    /* Answers that arrive together (several MX hosts, say) make one pass, not one each. */
    if (!sc->rerun)
        sc->rerun = event_new(check_call_base(sc->call), -1, 0, spf_rerun_cb, sc);
    if (!sc->rerun)
        xalloc_fail(0); /* libevent's allocation */
    if (!sc->rerun_armed) {
        sc->rerun_armed = 1;
        event_active(sc->rerun, 0, 0);
    }
}

static void spf_dns_want(void *arg, int type, const char *name)
{
    struct spf_call *sc = arg;
    for (size_t i = 0; i < sc->nq; i++)
        if (sc->q[i]->type == type && strcasecmp(sc->q[i]->name, name) == 0)
            return;
    for (size_t i = 0; i < sc->nf; i++)
        if (sc->f[i].type == type && strcasecmp(sc->f[i].name, name) == 0)
            return;
    if (sc->asked >= SPF_MAX_QUERIES)
        return; /* spf_pass turns a want that cannot be asked into a temperror */
    sc->asked++;
    sc->q = xgrow(sc->q, &sc->capq, sc->nq + 1, sizeof(*sc->q));
    struct spf_inflight *fl = xcalloc(1, sizeof(*fl));
    fl->sc = sc;
    fl->type = type;
    fl->name = dup_or_null(name);
    sc->q[sc->nq++] = fl;
    fl->q = dns_lookup(check_call_dns(sc->call), (enum dns_type)type, name, spf_dns_cb, fl);
}

/* ---- the answer ------------------------------------------------------------------------------ */

/* header_value - text made safe for a header field value: printable ASCII, no quotes or
 * semicolons; spaces only inside a quoted string (quoted). */
static void header_value(char *out, size_t outlen, const char *in, int quoted)
{
    size_t n = 0;
    for (; *in && n + 1 < outlen && n < 300; in++) {
        unsigned char c = (unsigned char)*in;
        int ok = c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != ';';
        out[n++] = ok || (quoted && c == ' ') ? (char)c : '?';
    }
    out[n] = '\0';
}

static const char *spf_comment(enum spf_result r)
{
    switch (r) {
    case SPF_PASS:
        return "domain of %s designates %s as permitted sender";
    case SPF_FAIL:
        return "domain of %s does not designate %s as permitted sender";
    case SPF_SOFTFAIL:
        return "domain of transitioning %s does not designate %s as permitted sender";
    case SPF_NEUTRAL:
        return "%s: %s is neither permitted nor denied by the domain's SPF record";
    case SPF_NONE:
        return "domain of %s does not designate permitted sender hosts (%s)";
    case SPF_TEMPERROR:
        return "error in processing during lookup of %s (client %s)";
    default:
        return "permanent error in processing the SPF record of %s (client %s)";
    }
}

/* received_spf - the Received-SPF header field (RFC 7208 9.1) for one identity. */
static void received_spf(const struct spf_call *sc, const struct spf_outcome *o, int helo_identity,
                         char *out, size_t outlen)
{
    const struct request *req = check_call_request(sc->call);
    const struct config *cfg = check_call_config(sc->call);
    char from[320], helo[300], recv[300], ident[320], detail[300], comment[800];
    const char *ip = sc->in_mf.ip;
    header_value(from, sizeof(from), request_get(req, ATTR_SENDER), 1);
    header_value(helo, sizeof(helo), request_get(req, ATTR_HELO_NAME), 1);
    header_value(recv, sizeof(recv), cfg->myhostname, 0);
    header_value(ident, sizeof(ident),
                 helo_identity ? sc->helo_sender : request_get(req, ATTR_SENDER), 0);
    snprintf(comment, sizeof(comment), spf_comment(o->result), ident, ip);
    int err = o->result == SPF_PERMERROR || o->result == SPF_TEMPERROR;
    header_value(detail, sizeof(detail), err ? o->problem : o->mechanism, 1);
    snprintf(out, outlen,
             "Received-SPF: %s (%s: %s) client-ip=%s; envelope-from=\"%s\"; helo=\"%s\"; "
             "receiver=%s; identity=%s%s%s%s",
             spf_result_name(o->result), recv, comment, ip, from[0] ? from : "<>", helo, recv,
             helo_identity ? "helo" : "mailfrom",
             detail[0] ? (err ? "; problem=\"" : "; mechanism=\"") : "", detail,
             detail[0] ? "\"" : "");
}

/* diagnosis - cause and fix sentences for a result. */
static void diagnosis(const struct spf_call *sc, const struct spf_outcome *o, int helo_identity,
                      char *cause, size_t causelen, char *fix, size_t fixlen)
{
    const char *ip = sc->in_mf.ip;
    const char *ident = helo_identity ? "HELO name" : "sender domain";
    char rec[300] = "";
    if (o->record[0])
        snprintf(rec, sizeof(rec), "; record of %s: \"%s\"", o->record_domain, o->record);
    switch (o->result) {
    case SPF_FAIL:
    case SPF_SOFTFAIL:
        snprintf(cause, causelen,
                 "SPF %s: %s %s does not permit client %s (the term '%s' decided%s; %d of %d "
                 "DNS-querying terms used)",
                 spf_result_name(o->result), ident, o->domain, ip, o->mechanism, rec, o->lookups,
                 sc->in_mf.max_lookups);
        snprintf(fix, fixlen,
                 "if %s is a genuine sender for %s, the domain's owner must list it in the SPF "
                 "record (e.g. ip%c:%s or an include: of the provider); if the mail was "
                 "forwarded to us, exempt the forwarder (spf_skip_networks) or have it rewrite "
                 "the sender with SRS",
                 ip, o->domain, strchr(ip, ':') ? '6' : '4', ip);
        break;
    case SPF_PERMERROR:
        snprintf(cause, causelen, "SPF permerror: the SPF record of %s %s is unusable: %s%s", ident,
                 o->domain, o->problem, rec);
        snprintf(fix, fixlen,
                 "the owner of %s must correct the SPF record (RFC 7208: strict syntax, at most "
                 "%d DNS-querying terms across includes, at most %d void lookups)",
                 o->domain, sc->in_mf.max_lookups, sc->in_mf.max_void);
        break;
    case SPF_TEMPERROR:
        snprintf(cause, causelen,
                 "SPF temperror: the SPF record of %s %s could not be evaluated: %s", ident,
                 o->domain, o->problem);
        snprintf(fix, fixlen,
                 "the sender retries; if this persists, check the DNS servers of %s and our "
                 "resolvers (dns_servers)",
                 o->domain);
        break;
    default:
        snprintf(cause, causelen, "SPF %s for %s %s and client %s%s", spf_result_name(o->result),
                 ident, o->domain, ip, rec);
        fix[0] = '\0';
        break;
    }
}

/* spf_code - the cause code of a result. */
static const char *spf_code(enum spf_result r)
{
    switch (r) {
    case SPF_PASS:
        return "spf.pass";
    case SPF_FAIL:
        return "spf.fail";
    case SPF_SOFTFAIL:
        return "spf.softfail";
    case SPF_NEUTRAL:
        return "spf.neutral";
    case SPF_NONE:
        return "spf.none";
    case SPF_TEMPERROR:
        return "spf.temperror";
    default:
        return "spf.permerror";
    }
}

/* decide - the verdict for one identity's outcome, under cause code. */
static void decide(struct spf_call *sc, const struct spf_outcome *o, int helo_identity,
                   const struct spf_act *a, const char *code, struct spf_verdict *v)
{
    char cause[1400], fix[700], header[1800], action[900];
    memset(v, 0, sizeof(*v));
    v->evaluated = 1;
    v->result = o->result;
    v->helo_identity = helo_identity;
    v->domain = dup_or_null(o->domain);
    if (a->kind == ACT_DUNNO)
        return;
    v->code = code;
    v->subject_what = helo_identity ? "HELO name" : "sender domain";
    v->subject = dup_or_null(o->domain);
    /* The diagnosis is written only where it is logged: not for a plain pass or none. */
    int logged = a->kind == ACT_ACTION || o->result == SPF_FAIL || o->result == SPF_SOFTFAIL ||
                 o->result >= SPF_TEMPERROR;
    if (logged)
        diagnosis(sc, o, helo_identity, cause, sizeof(cause), fix, sizeof(fix));
    if (a->kind == ACT_PREPEND) {
        received_spf(sc, o, helo_identity, header, sizeof(header));
        v->kind = V_PREPEND;
        v->header = dup_or_null(header);
        if (logged) {
            v->cause = dup_or_null(cause);
            v->fix = dup_or_null(fix);
        }
        return;
    }
    if (a->append) {
        char expl[600];
        if (o->result == SPF_FAIL && o->explanation[0])
            snprintf(expl, sizeof(expl), "%s", o->explanation);
        else if (o->result == SPF_FAIL || o->result == SPF_SOFTFAIL)
            snprintf(expl, sizeof(expl), "SPF %s: %s does not designate %s as permitted sender",
                     spf_result_name(o->result), o->domain, sc->in_mf.ip);
        else if (o->result == SPF_TEMPERROR)
            /* The reply goes to a stranger: the DNS detail (our resolver, its error) stays in the
             * log line. */
            snprintf(expl, sizeof(expl),
                     "SPF temperror for %s: the DNS lookups failed for now, try again later",
                     o->domain);
        else
            snprintf(expl, sizeof(expl), "SPF %s for %s: %s", spf_result_name(o->result), o->domain,
                     o->problem[0] ? o->problem : "see the postmaster");
        snprintf(action, sizeof(action), "%s %s", a->action, expl);
    } else {
        snprintf(action, sizeof(action), "%s", a->action);
    }
    v->kind = o->result == SPF_TEMPERROR ? V_DEFER : V_REJECT;
    v->action = dup_or_null(action);
    v->cause = dup_or_null(cause);
    v->fix = dup_or_null(fix);
}

/* apply - hand a verdict to the evaluator; the header only once per message. */
static void spf_header_sent(void *state, const char *key)
{
    struct spf_entry *e = cache_find(state, key);
    if (e)
        e->header_sent = 1;
}

/* apply - hand a verdict to the evaluator. The header goes once to a message: with the first
 * reply that carries it (e, the message's cache entry, notes that; NULL: no cache). */
static void apply(struct check_call *call, const struct spf_verdict *v, struct spf_entry *e)
{
    if (v->evaluated) {
        check_call_publish(call, CHECK_FINDING_SPF_RESULT, spf_result_name(v->result));
        check_call_publish(call, CHECK_FINDING_SPF_DOMAIN, v->domain ? v->domain : "");
        check_call_publish(call, CHECK_FINDING_SPF_IDENTITY,
                           v->helo_identity ? "helo" : "mailfrom");
    }
    if (v->subject)
        check_call_subject(call, v->subject_what, v->subject);
    switch (v->kind) {
    case V_REJECT:
        check_call_action(call, v->code, v->action, v->cause, v->fix);
        break;
    case V_DEFER:
        check_call_defer(call, v->code, v->action, v->cause, v->fix);
        break;
    case V_PREPEND:
        if (v->cause && !(e && e->logged))
            check_call_log(call, v->code, v->cause, v->fix);
        if (e)
            e->logged = 1;
        if (request_state(check_call_request(call)) == STATE_END_OF_MESSAGE)
            break;
        if (!e)
            check_call_prepend(call, v->header);
        else if (!e->header_sent)
            check_call_prepend_once(call, v->header, spf_header_sent, e->key);
        break;
    default:
        break;
    }
}

/* conclude - both identities evaluated: decide, remember, answer. */
static void conclude(struct spf_call *sc)
{
    struct spf_verdict v;
    const struct spf_outcome *primary = sc->null_sender ? &sc->o_helo : &sc->o_mf;
    int helo_identity = sc->null_sender;
    const struct spf_act *act = &sc->st->acts[primary->result];
    const char *code = spf_code(primary->result);
    /* A non-null sender: a HELO fail is answered with spf_helo_fail_action (RFC 7208 2.3:
     * refusing on it is allowed); other HELO results are only noted. */
    if (!sc->null_sender && sc->helo_todo == 0 && sc->in_helo.sender &&
        sc->o_helo.result == SPF_FAIL && sc->st->helo_fail.kind == ACT_ACTION) {
        primary = &sc->o_helo;
        helo_identity = 1;
        act = &sc->st->helo_fail;
        code = "spf.helo_fail";
    }
    decide(sc, primary, helo_identity, act, code, &v);
    check_call_note(sc->call, "SPF %s for %s (%s)", spf_result_name(primary->result),
                    primary->domain, primary->problem[0] ? primary->problem : primary->mechanism);
    struct spf_entry *e =
        cache_put(sc->st, sc->key, &v, check_call_config(sc->call)->spf_cache_time);
    apply(sc->call, &v, e);
    verdict_free(&v);
}

/* spf_pass - evaluate what is still open with the answers at hand. */
static void spf_pass(struct spf_call *sc)
{
    struct spf_dns dns = {spf_dns_get, spf_dns_want, sc};
    if (sc->helo_todo) {
        spf_check_host(&sc->in_helo, &dns, &sc->o_helo);
        sc->helo_todo = sc->o_helo.pending;
    }
    if (sc->mf_todo) {
        spf_check_host(&sc->in_mf, &dns, &sc->o_mf);
        sc->mf_todo = sc->o_mf.pending;
    }
    if ((sc->helo_todo || sc->mf_todo) && sc->nq == 0) {
        /* Wanted answers that cannot be asked (the question budget is spent). */
        struct spf_outcome *o = sc->mf_todo ? &sc->o_mf : &sc->o_helo;
        o->pending = 0;
        o->result = SPF_TEMPERROR;
        snprintf(o->problem, sizeof(o->problem), "more than %d DNS questions in one evaluation",
                 SPF_MAX_QUERIES);
        sc->helo_todo = sc->mf_todo = 0;
    }
    if (sc->helo_todo || sc->mf_todo)
        return;
    conclude(sc);
    if (!sc->in_run)
        check_call_done(sc->call); /* frees sc */
}

static enum check_status spf_run(struct check_call *call)
{
    const struct request *req = check_call_request(call);
    const struct config *cfg = check_call_config(call);
    struct spf_state *st = check_call_state(call);
    enum request_state ps = request_state(req);

    if ((ps != STATE_RCPT && ps != STATE_MAIL) || !check_call_dns(call))
        return CHECK_DONE;
    if (!check_call_client_address(call))
        return CHECK_DONE;
    const char *addr = request_get(req, ATTR_CLIENT_ADDRESS);
    const char *sender = request_get(req, ATTR_SENDER);
    const char *helo = request_get(req, ATTR_HELO_NAME);
    if (cfg->spf_skip_authenticated && *request_get(req, ATTR_SASL_USERNAME))
        return CHECK_DONE;
    if (cfg->spf_skip_mynetworks && netlist_match(cfg->net_mynetworks, addr, NULL) == 1)
        return CHECK_DONE;
    if (netlist_match(st->skip, addr, NULL) == 1 ||
        (*helo && domainlist_match(st->skip_helo, helo, NULL) == 1)) {
        check_call_note(call, "SPF not checked: client or HELO name exempted");
        return CHECK_DONE;
    }
    const char *at = strrchr(sender, '@');
    if (*sender && domainlist_match(st->skip_sender, at ? at + 1 : sender, NULL) == 1) {
        check_call_note(call, "SPF not checked: sender domain exempted");
        return CHECK_DONE;
    }

    char key[1024] = "";
    const char *instance = request_get(req, ATTR_INSTANCE);
    if (*instance)
        snprintf(key, sizeof(key), "%s|%s|%s|%s", instance, addr, sender, helo);
    struct spf_entry *e = cache_find(st, key);
    if (e) {
        check_call_note(call, "SPF result of this message from the cache");
        apply(call, &e->v, e);
        return CHECK_DONE;
    }

    struct spf_call *sc = xcalloc(1, sizeof(*sc));
    sc->call = call;
    sc->st = st;
    snprintf(sc->key, sizeof(sc->key), "%s", key);
    sc->null_sender = *sender == '\0';
    snprintf(sc->helo_sender, sizeof(sc->helo_sender), "postmaster@%.300s", helo);
    struct spf_input base = {.ip = addr,
                             .helo = helo,
                             .receiver = cfg->myhostname,
                             .max_lookups = (int)cfg->spf_max_dns_lookups,
                             .max_void = (int)cfg->spf_max_void_lookups};
    sc->in_helo = base;
    sc->in_helo.sender = sc->helo_sender;
    sc->in_mf = base;
    sc->in_mf.sender = sender;
    sc->helo_todo = sc->null_sender || cfg->spf_check_helo;
    sc->mf_todo = !sc->null_sender;
    if (!sc->helo_todo)
        sc->in_helo.sender = NULL;
    check_call_set_data(call, sc, spf_call_free);
    sc->in_run = 1;
    spf_pass(sc);
    sc->in_run = 0;
    return sc->helo_todo || sc->mf_todo ? CHECK_PENDING : CHECK_DONE;
}

static void spf_describe(const struct check_call *call, char *buf, size_t buflen)
{
    const struct spf_call *sc = check_call_data(call);
    if (!sc || sc->nq == 0)
        return;
    snprintf(buf, buflen, "%s lookup of %s%s (SPF of %s)", dns_type_name(sc->q[0]->type),
             sc->q[0]->name, sc->nq > 1 ? " and others" : "",
             sc->mf_todo ? sc->o_mf.domain : sc->o_helo.domain);
}

const struct check_def spf_check = {
    .name = "spf",
    .configure = spf_configure,
    .unconfigure = spf_unconfigure,
    .run = spf_run,
    .describe = spf_describe,
};
