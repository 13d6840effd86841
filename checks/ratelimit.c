/*
 * ratelimit.c - "at most N in any period T" per sasl user, sender, client network, ...: rules
 * in { } groups (ratelimit_rules), counted in the shared state store (checks/state.h) with the
 * store's exact sliding window, so several servers sharing Redis enforce one limit.
 *
 * Counting: recipients and messages are reserved at RCPT, all windows of a rule at once and
 * atomically in the store, so parallel sessions of one account cannot pass a limit together;
 * a refused attempt records nothing. A message counts once: at the first RCPT of its Postfix
 * `instance`. When Postfix also calls us at END-OF-MESSAGE, recipients reserved but not
 * accepted in the end (recipient_count smaller) are given back there, and a message that never
 * gets there (RSET, QUIT, a lost client, DATA refused) gives back all it reserved when the
 * next request of its policy connection is about another instance or the connection closes
 * (checks/ratelimit_track.h: the messages in progress, the ground in Postfix, why only once
 * the connection has shown END-OF-MESSAGE requests). Without that wiring nothing is given back:
 * an aborted message cannot be told from a sent one. Bytes are looked at
 * at RCPT (an account already over its byte limit is deferred) and recorded at END-OF-MESSAGE
 * from `size` (smtpd_end_of_data_restrictions must call us). Per-key overrides come from a
 * Postfix table (ratelimit_overrides): "rule=N/T,..", "0" (unlimited), "block".
 * Failure policy (ratelimit_store_failure): local counts in this process with the same window
 * arithmetic (policyd/store/window.h), dunno accepts, defer answers 451 4.3.0.
 * The diagnosis names rule, key, window, used/limit, since when, retry-after, the distinct
 * recipient domains seen for the key recently (a small bounded set per key, in process), and
 * "likely compromised account" when a sasl user writes to many domains. Ownership: the
 * check's state owns the rules, the tables and a holder of the shared store.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/check.h"

#include "checks/ratelimit_track.h"
#include "checks/state.h"
#include "policyd/config.h"
#include "policyd/lib/addr.h"
#include "policyd/lib/hash.h"
#include "policyd/lib/log.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/runtool.h"
#include "policyd/lib/units.h"
#include "policyd/lib/xalloc.h"
#include "policyd/maps/table.h"
#include "policyd/store/store.h"
#include "policyd/store/window.h"
#include "protocol/action.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <pthread.h>
#include <sys/time.h>
#include <time.h>

#define RL_MAX_RULES RATELIMIT_TRACK_RULES
#define RL_DOMAIN_KEYS 1024 /* keys whose recipient domains are remembered */
#define RL_DOMAINS 32       /* distinct recipient domains remembered per key */
#define RL_LOCAL_KEYS 4096  /* keys counted in process while the store fails */
#define RL_COMPROMISED 10   /* distinct recipient domains that make a sasl user suspicious */
#define RL_NETS 4           /* client networks remembered per key */
#define RL_NOTIFY_ARGS 16   /* words of ratelimit_notify_command */
#define RL_NOTIFY_RUNNING 8 /* notify commands at once; more are logged and dropped */

enum rl_key {
    K_SASL_USERNAME,
    K_SASL_DOMAIN,
    K_SENDER,
    K_SENDER_DOMAIN,
    K_CLIENT_ADDRESS,
    K_CLIENT_NETWORK,
    K_RECIPIENT_DOMAIN,
    K_POLICY_CONTEXT,
    K_GLOBAL
};
static const char *const rl_key_names[] = {"sasl_username",    "sasl_domain",    "sender",
                                           "sender_domain",    "client_address", "client_network",
                                           "recipient_domain", "policy_context", "global"};

enum rl_count { C_RECIPIENTS, C_MESSAGES, C_BYTES };
static const char *const rl_count_names[] = {"recipients", "messages", "bytes"};

enum rl_when { W_ALWAYS, W_AUTH, W_UNAUTH };

struct rl_rule {
    char name[64];
    enum rl_key key;
    enum rl_count count;
    enum rl_when when;
    int nlimits;
    struct store_limit limits[STORE_MAX_LIMITS];
};

enum rl_failure { F_LOCAL, F_DUNNO, F_DEFER };

struct rl_domains {
    uint64_t key_hash;
    int64_t last_ms;
    int n;
    uint64_t dom[RL_DOMAINS];
    int64_t seen[RL_DOMAINS];
    int nnets;
    uint64_t nets[RL_NETS];     /* client networks the key was used from (a ring) */
    int64_t net_first[RL_NETS]; /* when each was first seen */
};

struct rl_local {
    uint64_t key_hash;
    struct window_set set;
};

struct rl_notify;

struct rl_state {
    int nrules;
    struct rl_rule rules[RL_MAX_RULES];
    struct table *overrides;
    enum rl_failure failure;
    struct store *store;
    struct ratelimit_track *track; /* messages in progress; shared across reloads, same store */
    struct rl_domains doms[RL_DOMAIN_KEYS];
    struct rl_local *local;      /* RL_LOCAL_KEYS, allocated at first use */
    char **notify_argv;          /* ratelimit_notify_command split at blanks; NULL: none */
    struct rl_notify *notifying; /* store_once claims waiting for their answer */
};

/* ---- configuration ---- */

static int rl_parse_limits(struct rl_rule *r, const char *text, char *err, size_t errlen)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", text);
    r->nlimits = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *slash = strchr(tok, '/');
        if (!slash || r->nlimits == STORE_MAX_LIMITS) {
            snprintf(err, errlen, "limit '%s': want N/PERIOD (at most %d)", tok, STORE_MAX_LIMITS);
            return -1;
        }
        *slash = 0;
        size_t n;
        long ms;
        if (units_parse_size(tok, &n) != 0 || units_parse_time(slash + 1, &ms) != 0 || ms <= 0 ||
            (int64_t)n > WINDOW_MAX_VALUE) {
            snprintf(err, errlen, "limit '%s/%s': want N/PERIOD, e.g. 100/10m", tok, slash + 1);
            return -1;
        }
        for (int i = 0; i < r->nlimits; i++)
            if (r->limits[i].period_ms == ms) {
                snprintf(err, errlen, "limit '%s/%s': two limits with one period", tok, slash + 1);
                return -1;
            }
        r->limits[r->nlimits].limit = (int64_t)n;
        r->limits[r->nlimits].period_ms = ms;
        r->nlimits++;
    }
    if (!r->nlimits) {
        snprintf(err, errlen, "no limits");
        return -1;
    }
    return 0;
}

static int rl_parse_rule(struct rl_rule *r, const char *item, char *err, size_t errlen)
{
    char buf[1024];
    size_t len = strlen(item);
    if (len < 2 || item[0] != '{' || item[len - 1] != '}' || len >= sizeof(buf)) {
        snprintf(err, errlen, "'%s': a rule is { name=... key=... count=... limits=... }", item);
        return -1;
    }
    memcpy(buf, item + 1, len - 2);
    buf[len - 2] = 0;
    memset(r, 0, sizeof(*r));
    r->key = K_GLOBAL + 1;
    r->count = C_RECIPIENTS;
    r->when = W_ALWAYS;
    int have_limits = 0;
    for (char *save = NULL, *tok = strtok_r(buf, " \t\r\n", &save); tok;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(err, errlen, "'%s': want name=value", tok);
            return -1;
        }
        *eq = 0;
        const char *v = eq + 1;
        if (strcmp(tok, "name") == 0) {
            if (!*v || strlen(v) >= sizeof(r->name) || strpbrk(v, ":=/")) {
                snprintf(err, errlen, "name '%s': 1 to 63 characters, no ':', '=' or '/'", v);
                return -1;
            }
            snprintf(r->name, sizeof(r->name), "%s", v);
        } else if (strcmp(tok, "key") == 0) {
            size_t k = 0;
            while (k <= K_GLOBAL && strcmp(rl_key_names[k], v) != 0)
                k++;
            if (k > K_GLOBAL) {
                snprintf(err, errlen,
                         "key '%s': one of sasl_username, sasl_domain, sender, sender_domain, "
                         "client_address, client_network, recipient_domain, policy_context, "
                         "global",
                         v);
                return -1;
            }
            r->key = (enum rl_key)k;
        } else if (strcmp(tok, "count") == 0) {
            size_t k = 0;
            while (k <= C_BYTES && strcmp(rl_count_names[k], v) != 0)
                k++;
            if (k > C_BYTES) {
                snprintf(err, errlen, "count '%s': recipients, messages or bytes", v);
                return -1;
            }
            r->count = (enum rl_count)k;
        } else if (strcmp(tok, "when") == 0) {
            if (strcmp(v, "always") == 0)
                r->when = W_ALWAYS;
            else if (strcmp(v, "authenticated") == 0)
                r->when = W_AUTH;
            else if (strcmp(v, "unauthenticated") == 0)
                r->when = W_UNAUTH;
            else {
                snprintf(err, errlen, "when '%s': authenticated, unauthenticated or always", v);
                return -1;
            }
        } else if (strcmp(tok, "limits") == 0) {
            if (rl_parse_limits(r, v, err, errlen) != 0)
                return -1;
            have_limits = 1;
        } else {
            snprintf(err, errlen, "'%s': unknown (name, key, count, limits, when)", tok);
            return -1;
        }
    }
    if (!r->name[0] || r->key > K_GLOBAL || !have_limits) {
        snprintf(err, errlen, "'%s': name, key and limits are required", item);
        return -1;
    }
    return 0;
}

/* ---- notification: once per key and interval across the servers sharing the store ---- */

struct rl_notify {
    struct rl_notify *next, **prev;
    struct rl_state *st;
    struct store_op *op;
    char *argv[RL_NOTIFY_ARGS + 6];
    size_t argc, keyi; /* keyi: where the key is in argv, for log lines */
};

static pthread_mutex_t rl_notify_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned rl_notify_running;

static void rl_notify_free(struct rl_notify *n)
{
    for (size_t i = 0; i < n->argc; i++)
        free(n->argv[i]);
    free(n);
}

static void rl_notify_unlink(struct rl_notify *n)
{
    if (n->prev)
        *n->prev = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->prev = NULL;
    n->next = NULL;
}

static void rl_notify_cancel_all(struct rl_state *st)
{
    while (st->notifying) {
        struct rl_notify *n = st->notifying;
        rl_notify_unlink(n);
        store_cancel(n->op);
        rl_notify_free(n);
    }
}

/* rl_notify_thread - runs the command off the loop; owns n. */
static void *rl_notify_thread(void *arg)
{
    struct rl_notify *n = arg;
    struct runtool_options o = {
        .out_max = 4096, .err_mode = RUNTOOL_STDERR_MERGE, .timeout_ms = 30000};
    struct runtool_result res;
    int rc = runtool_run((const char *const *)n->argv, &o, &res);
    char how[128];
    runtool_describe(&res, how, sizeof(how));
    if (rc == 0)
        log_info("ratelimit: notified: %s %s (%s)", n->argv[0], n->argv[n->keyi], how);
    else
        log_warn("ratelimit: ratelimit_notify_command %s for %s failed: %s%s%.200s", n->argv[0],
                 n->argv[n->keyi], how, res.outlen ? "; output: " : "", res.out);
    runtool_result_free(&res);
    rl_notify_free(n);
    pthread_mutex_lock(&rl_notify_lock);
    rl_notify_running--;
    pthread_mutex_unlock(&rl_notify_lock);
    return NULL;
}

static void rl_notify_cb(const struct store_once_result *r, void *arg)
{
    struct rl_notify *n = arg;
    n->op = NULL;
    rl_notify_unlink(n);
    if (r->status != STORE_OK || !r->first) {
        rl_notify_free(n); /* another server notified, or the store cannot say: no command */
        return;
    }
    pthread_mutex_lock(&rl_notify_lock);
    int room = rl_notify_running < RL_NOTIFY_RUNNING;
    if (room)
        rl_notify_running++;
    pthread_mutex_unlock(&rl_notify_lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!room || pthread_create(&t, &attr, rl_notify_thread, n) != 0) {
        log_warn("ratelimit: ratelimit_notify_command for %s not run: %s", n->argv[n->keyi],
                 room ? "cannot start a thread" : "too many commands running");
        if (room) {
            pthread_mutex_lock(&rl_notify_lock);
            rl_notify_running--;
            pthread_mutex_unlock(&rl_notify_lock);
        }
        rl_notify_free(n);
    }
    pthread_attr_destroy(&attr);
}

/* rl_notify - a key exceeded a limit: claim the notification in the store; the first server
 * to claim it runs ratelimit_notify_command RULE KEY WINDOW USED LIMIT. */
static void rl_notify(struct rl_state *st, const struct config *cfg, const char *rule,
                      const char *key, const char *window, long long used, long long limit)
{
    if (!st->notify_argv || !st->store)
        return;
    struct rl_notify *n = xcalloc(1, sizeof(*n));
    n->st = st;
    for (size_t i = 0; st->notify_argv[i]; i++)
        n->argv[n->argc++] = xstrdup(st->notify_argv[i]);
    n->argv[n->argc++] = xstrdup(rule);
    n->keyi = n->argc;
    n->argv[n->argc++] = xstrdup(key);
    n->argv[n->argc++] = xstrdup(window);
    n->argv[n->argc++] = xasprintf("%lld", used);
    n->argv[n->argc++] = xasprintf("%lld", limit);
    n->next = st->notifying;
    if (n->next)
        n->next->prev = &n->next;
    n->prev = &st->notifying;
    st->notifying = n;
    char claim[700];
    snprintf(claim, sizeof(claim), "notify:%s", key);
    n->op = store_once(st->store, claim, cfg->ratelimit_notify_interval, rl_notify_cb, n);
}

static void rl_unconfigure(void *state)
{
    struct rl_state *st = state;
    if (!st)
        return;
    table_free(st->overrides);
    rl_notify_cancel_all(st);
    plist_free(st->notify_argv);
    ratelimit_track_free(st->track);
    state_release(st->store);
    free(st->local);
    free(st);
}

static void *rl_configure(const struct config *cfg, char *err, size_t errlen)
{
    char why[512];
    if (state_check_spec(cfg, err, errlen) != 0)
        return NULL;
    struct rl_state *st = xcalloc(1, sizeof(*st));
    if (strcmp(cfg->ratelimit_store_failure, "local") == 0)
        st->failure = F_LOCAL;
    else if (strcmp(cfg->ratelimit_store_failure, "dunno") == 0)
        st->failure = F_DUNNO;
    else if (strcmp(cfg->ratelimit_store_failure, "defer") == 0)
        st->failure = F_DEFER;
    else {
        snprintf(err, errlen, "%s:%d: ratelimit_store_failure: local, dunno or defer", cfg->path,
                 config_source_line(cfg, "ratelimit_store_failure"));
        free(st);
        return NULL;
    }
    char **items = plist_split(cfg->ratelimit_rules);
    for (size_t i = 0; items[i]; i++) {
        if (st->nrules == RL_MAX_RULES) {
            snprintf(err, errlen, "%s:%d: ratelimit_rules: more than %d rules", cfg->path,
                     config_source_line(cfg, "ratelimit_rules"), RL_MAX_RULES);
            goto fail;
        }
        if (rl_parse_rule(&st->rules[st->nrules], items[i], why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s:%d: ratelimit_rules: %s", cfg->path,
                     config_source_line(cfg, "ratelimit_rules"), why);
            goto fail;
        }
        for (int k = 0; k < st->nrules; k++)
            if (strcmp(st->rules[k].name, st->rules[st->nrules].name) == 0) {
                snprintf(err, errlen, "%s:%d: ratelimit_rules: two rules named %s", cfg->path,
                         config_source_line(cfg, "ratelimit_rules"), st->rules[k].name);
                goto fail;
            }
        st->nrules++;
    }
    plist_free(items);
    items = NULL;
    if (!st->nrules) {
        snprintf(err, errlen, "%s: the ratelimit check needs ratelimit_rules",
                 cfg->path ? cfg->path : "(defaults)");
        goto fail;
    }
    if (cfg->ratelimit_notify_command[0]) {
        size_t n = 0;
        char *copy = xstrdup(cfg->ratelimit_notify_command);
        st->notify_argv = xcalloc(RL_NOTIFY_ARGS + 1, sizeof(char *));
        for (char *save = NULL, *tok = strtok_r(copy, " \t", &save); tok && n < RL_NOTIFY_ARGS;
             tok = strtok_r(NULL, " \t", &save))
            st->notify_argv[n++] = xstrdup(tok);
        free(copy);
    }
    if (cfg->ratelimit_overrides[0]) {
        st->overrides = table_open(cfg->ratelimit_overrides, why, sizeof(why));
        if (!st->overrides) {
            snprintf(err, errlen, "%s:%d: ratelimit_overrides: %s", cfg->path,
                     config_source_line(cfg, "ratelimit_overrides"), why);
            goto fail;
        }
    }
    return st;
fail:
    plist_free(items);
    rl_unconfigure(st);
    return NULL;
}

static void rl_released_cb(const struct store_rl_result *r, void *arg)
{
    (void)r;
    (void)arg;
}

/* rl_give_back - a message ended without END-OF-MESSAGE (ratelimit_track): its reservation of
 * key goes back to the store (arg). Nobody waits for the answer. */
static void rl_give_back(void *arg, int rule, const char *key, const struct store_limit *limits,
                         int nlimits, int64_t units, int64_t at_ms)
{
    (void)rule;
    store_rl_adjust(arg, key, limits, nlimits, -units, at_ms, rl_released_cb, NULL);
}

/* rl_closed - a policy connection closed: its last message is over. */
static void rl_closed(void *state, unsigned long long connection)
{
    struct rl_state *st = state;
    if (st->track)
        ratelimit_track_closed(st->track, connection);
}

static int rl_start(void *state, void *previous, struct event_base *base, struct dns *dns,
                    const struct config *cfg, char *err, size_t errlen)
{
    (void)dns;
    struct rl_state *st = state;
    const struct rl_state *prev = previous;
    if (st->store)
        return 0;
    st->store = state_acquire(cfg, base, err, errlen);
    if (!st->store)
        return -1;
    if (prev && prev->track && prev->store == st->store) {
        /* The messages in progress stay known across a reload that keeps the store (their
         * reservations are in it); with another store they are the old one's business. */
        st->track = prev->track;
        ratelimit_track_hold(st->track);
    } else {
        st->track = ratelimit_track_new(rl_give_back, st->store);
    }
    if (prev)
        memcpy(st->doms, prev->doms, sizeof(st->doms)); /* the domains seen stay known */
    return 0;
}

/* ---- keys ---- */

static int64_t rl_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *rl_domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

/* rl_key_value - the value of key for req into buf (lower case where case does not matter);
 * 0, or -1 when the request has none (the rule does not apply). */
static int rl_key_value(const struct config *cfg, enum rl_key key, const struct request *req,
                        char *buf, size_t buflen)
{
    const char *v = "";
    switch (key) {
    case K_SASL_USERNAME:
        v = request_get(req, ATTR_SASL_USERNAME);
        break;
    case K_SASL_DOMAIN:
        v = rl_domain_of(request_get(req, ATTR_SASL_USERNAME));
        break;
    case K_SENDER:
        v = request_get(req, ATTR_SENDER);
        break;
    case K_SENDER_DOMAIN:
        v = rl_domain_of(request_get(req, ATTR_SENDER));
        break;
    case K_CLIENT_ADDRESS:
        v = request_get(req, ATTR_CLIENT_ADDRESS);
        break;
    case K_RECIPIENT_DOMAIN:
        v = rl_domain_of(request_get(req, ATTR_RECIPIENT));
        break;
    case K_POLICY_CONTEXT:
        v = request_get(req, ATTR_POLICY_CONTEXT);
        break;
    case K_GLOBAL:
        v = "*";
        break;
    case K_CLIENT_NETWORK:
        return addr_network(request_get(req, ATTR_CLIENT_ADDRESS),
                            (unsigned)cfg->ratelimit_ipv4_prefix,
                            (unsigned)cfg->ratelimit_ipv6_prefix, buf, buflen);
    }
    if (!v || !*v)
        return -1;
    size_t i = 0;
    for (; v[i] && i + 1 < buflen; i++)
        buf[i] = key == K_SENDER || key == K_SASL_USERNAME || key == K_POLICY_CONTEXT
                     ? v[i]
                     : (char)tolower((unsigned char)v[i]);
    buf[i] = 0;
    return 0;
}

/* ---- overrides ---- */

enum rl_override { O_NONE, O_LIMITS, O_UNLIMITED, O_BLOCK };

/* rl_override - the override of rule r for the key value (the value itself, then @domain for
 * addresses): the limits replaced in *out. */
static enum rl_override rl_override(const struct rl_state *st, const struct rl_rule *r,
                                    const char *value, struct rl_rule *out)
{
    if (!st->overrides)
        return O_NONE;
    const char *found = NULL;
    if (table_lookup(st->overrides, value, &found) != 1) {
        const char *at = strrchr(value, '@');
        if (!at || table_lookup(st->overrides, at, &found) != 1)
            return O_NONE;
    }
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", found);
    enum rl_override o = O_NONE;
    for (char *save = NULL, *tok = strtok_r(buf, " \t", &save); tok;
         tok = strtok_r(NULL, " \t", &save)) {
        if (strcasecmp(tok, "block") == 0)
            return O_BLOCK;
        if (strcmp(tok, "0") == 0)
            return O_UNLIMITED;
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        if (strcmp(tok, r->name) != 0)
            continue;
        if (strcmp(eq + 1, "0") == 0)
            return O_UNLIMITED;
        if (strcasecmp(eq + 1, "block") == 0)
            return O_BLOCK;
        char err[256];
        *out = *r;
        if (rl_parse_limits(out, eq + 1, err, sizeof(err)) == 0)
            o = O_LIMITS;
        else
            log_warn("%s: override for %s, rule %s: %s (the rule's own limits apply)",
                     table_spec(st->overrides), value, r->name, err);
    }
    return o;
}

/* ---- in-process memory: messages counted, recipient domains, local windows ---- */

/* rl_domains_note - remember dom and the client network net for key; returns the distinct
 * domains of the last hour, and in *new_net 1 when the key has a history and net is not in it. */
static int rl_domains_note(struct rl_state *st, const char *key, const char *dom, const char *net,
                           int64_t now, int *new_net)
{
    uint64_t kh = hash_str(key) | 1;
    struct rl_domains *d = &st->doms[kh % RL_DOMAIN_KEYS];
    if (d->key_hash != kh) {
        memset(d, 0, sizeof(*d));
        d->key_hash = kh;
    }
    int64_t horizon = now - 3600 * 1000;
    int live = 0, oldest = 0;
    uint64_t dh = *dom ? hash_str(dom) : 0;
    int found = 0;
    for (int i = 0; i < d->n; i++) {
        if (d->dom[i] == dh && dh) {
            d->seen[i] = now;
            found = 1;
        }
        if (d->seen[i] > horizon)
            live++;
        if (d->seen[i] < d->seen[oldest])
            oldest = i;
    }
    if (!found && dh) {
        int slot = d->n < RL_DOMAINS ? d->n++ : oldest;
        d->dom[slot] = dh;
        d->seen[slot] = now;
        live++;
    }
    *new_net = 0;
    if (*net) {
        uint64_t nh = hash_str(net);
        int known = -1;
        for (int i = 0; i < d->nnets && i < RL_NETS; i++)
            if (d->nets[i] == nh)
                known = i;
        if (known < 0) {
            known = d->nnets++ % RL_NETS;
            d->nets[known] = nh;
            d->net_first[known] = now;
        }
        int64_t others_first = INT64_MAX; /* the earliest first use from another network */
        for (int i = 0; i < d->nnets && i < RL_NETS; i++)
            if (i != known && d->net_first[i] < others_first)
                others_first = d->net_first[i];
        /* New: first seen in the last hour, while the key was used from elsewhere before. */
        *new_net = d->net_first[known] > horizon && others_first <= d->net_first[known];
    }
    return live;
}

static struct window_set *rl_local_set(struct rl_state *st, const char *key)
{
    if (!st->local)
        st->local = xcalloc(RL_LOCAL_KEYS, sizeof(*st->local));
    uint64_t kh = hash_str(key) | 1;
    struct rl_local *l = &st->local[kh % RL_LOCAL_KEYS];
    if (l->key_hash != kh) {
        memset(l, 0, sizeof(*l));
        l->key_hash = kh;
    }
    return &l->set;
}

/* ---- one request ---- */

struct rl_call;

/* Zeroed up to res when its slot is taken; res, detail and key are written before they are
 * read (the store's answer, a failure's reason, the key at once), so a request does not clear
 * kilobytes it never uses. */
struct rl_op {
    struct rl_call *rc;
    int rule;           /* index in the state's rules */
    struct rl_rule eff; /* the rule with overrides applied */
    const char *value;  /* the key's value part (in key) */
    int64_t units;
    int64_t at_ms; /* adjust < 0: the reservation's store time */
    int adjust;    /* END-OF-MESSAGE true-up, or a restore */
    int restore;   /* records again what a message gave back before it came back */
    int local;     /* decided on this process's windows (ratelimit_store_failure = local) */
    struct store_op *op;
    int ndomains; /* distinct recipient domains of the key in the last hour */
    int new_net;  /* the key (a sasl user) is used from a client network new to it */
    int failed;
    struct store_rl_result res;
    char detail[128];
    char key[600]; /* the readable store key: rule:keyname:value */
};

struct rl_call {
    struct check_call *call;
    int nops, pending;
    struct rl_op ops[]; /* one per rule at most, then the restores */
};

/* rl_op_take - the next free op of rc, cleared (see struct rl_op). */
static struct rl_op *rl_op_take(struct rl_call *rc)
{
    struct rl_op *o = &rc->ops[rc->nops];
    memset(o, 0, offsetof(struct rl_op, res));
    o->rc = rc;
    o->detail[0] = 0;
    o->key[0] = 0;
    return o;
}

static void rl_free(void *data)
{
    struct rl_call *rc = data;
    for (int i = 0; i < rc->nops; i++)
        store_cancel(rc->ops[i].op);
    free(rc);
}

/* rl_refuse - the verdict for op, refused by its store answer r. */
static void rl_refuse(struct rl_call *rc, const struct rl_op *o, const struct store_rl_result *r)
{
    const struct config *cfg = check_call_config(rc->call);
    const struct request *req = check_call_request(rc->call);
    const struct store_usage *u = &r->limits[0];
    for (int i = 0; i < r->nlimits; i++)
        if (r->limits[i].over) {
            u = &r->limits[i];
            break;
        }
    char period[32], since[32] = "-", retry[64];
    units_format_time(u->period_ms, period, sizeof(period));
    if (u->first_ms)
        units_format_clock(u->first_ms, since, sizeof(since));
    long long retry_s = r->retry_after_ms == STORE_NEVER ? -1 : (r->retry_after_ms + 999) / 1000;
    if (retry_s < 0)
        snprintf(retry, sizeof(retry), "never (the request is larger than the limit)");
    else
        snprintf(retry, sizeof(retry), "%llds", retry_s);
    const char *unit = rl_count_names[o->eff.count];
    char action[512];
    if (r->blocked)
        snprintf(action, sizeof(action), "%s%s", cfg->ratelimit_action,
                 action_is_bare_code(cfg->ratelimit_action) ? " Sending suspended, try again later"
                                                            : "");
    else if (action_is_bare_code(cfg->ratelimit_action))
        snprintf(action, sizeof(action), "%s Rate limit of %lld %s per %s reached, retry in %s",
                 cfg->ratelimit_action, (long long)u->limit, unit, period,
                 retry_s < 0 ? "a smaller message" : retry);
    else
        snprintf(action, sizeof(action), "%s", cfg->ratelimit_action);
    /* The shape of a stolen account: many recipient domains, more so from a new network. */
    int suspicious =
        o->eff.key == K_SASL_USERNAME &&
        (o->ndomains >= RL_COMPROMISED || (o->new_net && o->ndomains >= RL_COMPROMISED / 2));
    char cause[1536], fix[1024];
    if (r->blocked)
        snprintf(cause, sizeof(cause), "rule %s, key %s=%s: blocked by the administrator",
                 o->eff.name, rl_key_names[o->eff.key], o->value);
    else
        snprintf(cause, sizeof(cause),
                 "rule %s, key %s=%s: %lld/%lld %s in %s (since %s), retry after %s; client "
                 "%s[%s]; %d distinct recipient domains in the last hour%s%s",
                 o->eff.name, rl_key_names[o->eff.key], o->value, (long long)u->used,
                 (long long)u->limit, unit, period, since, retry,
                 request_get(req, ATTR_CLIENT_NAME), request_get(req, ATTR_CLIENT_ADDRESS),
                 o->ndomains, o->new_net ? "; first use from this client network" : "",
                 suspicious ? "; likely compromised account" : "");
    if (o->eff.key == K_SASL_USERNAME || o->eff.key == K_SENDER)
        snprintf(fix, sizeof(fix),
                 "if %s did not send this, check the account and reset its password; if the "
                 "volume is legitimate, raise its limit in ratelimit_overrides (%s=N/T); "
                 "'policyd ratelimit reset %s' clears the counter",
                 o->value, o->eff.name, o->key);
    else
        snprintf(fix, sizeof(fix),
                 "find who sends from %s; if the volume is legitimate, raise the limit in "
                 "ratelimit_overrides (%s=N/T); 'policyd ratelimit reset %s' clears the counter",
                 o->value, o->eff.name, o->key);
    struct rl_state *st = check_call_state(rc->call);
    if (!r->blocked && st->track &&
        !ratelimit_track_wired(st->track, check_call_connection(rc->call))) {
        size_t len = strlen(fix);
        snprintf(fix + len, sizeof(fix) - len,
                 "; Postfix has not asked policyd at END-OF-MESSAGE on this connection yet: "
                 "without smtpd_end_of_data_restrictions = check_policy_service, aborted "
                 "messages stay counted until their window passes");
    }
    check_call_subject(rc->call, "rate-limit key", o->key);
    check_call_action(rc->call, r->blocked ? "ratelimit.blocked" : "ratelimit.exceeded", action,
                      cause, fix);
    if (!r->blocked)
        rl_notify(st, cfg, o->eff.name, o->key, period, (long long)u->used, (long long)u->limit);
}

/* rl_early_warning - one log line when a reservation crosses ratelimit_warn_ratio. */
static void rl_early_warning(struct rl_call *rc, const struct rl_op *o,
                             const struct store_rl_result *r)
{
    double ratio = check_call_config(rc->call)->ratelimit_warn_ratio;
    if (ratio <= 0 || o->units <= 0)
        return;
    for (int i = 0; i < r->nlimits; i++) {
        const struct store_usage *u = &r->limits[i];
        int64_t mark = (int64_t)ceil((double)u->limit * ratio - 1e-9); /* 0.8 of 10: 8 */
        if (mark < 1)
            mark = 1;
        if (u->used >= mark && u->used - o->units < mark) {
            char period[32];
            units_format_time(u->period_ms, period, sizeof(period));
            char cause[512];
            snprintf(cause, sizeof(cause),
                     "rule %s, key %s=%s reached %lld%% of its limit (warning at %g%%): "
                     "%lld/%lld %s in %s",
                     o->eff.name, rl_key_names[o->eff.key], o->value,
                     (long long)(u->limit ? u->used * 100 / u->limit : 100), ratio * 100,
                     (long long)u->used, (long long)u->limit, rl_count_names[o->eff.count], period);
            check_call_subject(rc->call, "rate-limit key", o->key);
            check_call_log(rc->call, "ratelimit.warning", cause,
                           "look at who sends under this key; raise its limit in "
                           "ratelimit_overrides if the volume is expected");
            return;
        }
    }
}

/* rl_local - the failure policy "local": the same decision on this process's own windows. */
static void rl_local(struct rl_state *st, struct rl_op *o)
{
    struct window_set *set = rl_local_set(st, o->key);
    struct window_limit wl[STORE_MAX_LIMITS];
    for (int i = 0; i < o->eff.nlimits; i++) {
        wl[i].limit = o->eff.limits[i].limit;
        wl[i].period = o->eff.limits[i].period_ms;
    }
    int64_t now = rl_now_ms();
    struct window_decision d;
    window_set_prune(set, now);
    if (o->adjust)
        window_set_adjust(set, now, wl, o->eff.nlimits, o->units, o->at_ms, &d);
    else
        window_set_reserve(set, now, wl, o->eff.nlimits, o->units, &d);
    struct store_rl_result *r = &o->res;
    memset(r, 0, sizeof(*r));
    r->status = STORE_OK;
    r->allowed = d.allowed;
    r->blocked = d.blocked;
    r->now_ms = now;
    r->at_ms = now;
    r->retry_ms = d.retry;
    r->retry_after_ms = d.retry == WINDOW_NEVER ? STORE_NEVER : d.retry - now;
    r->nlimits = d.n;
    for (int i = 0; i < d.n; i++) {
        r->limits[i].limit = d.lim[i].limit;
        r->limits[i].period_ms = d.lim[i].period;
        r->limits[i].used = d.lim[i].used;
        r->limits[i].first_ms = d.lim[i].first;
        r->limits[i].fit_ms = d.lim[i].fit;
        r->limits[i].over = d.lim[i].over;
    }
}

/* rl_adjust_detached - adjust o's key by delta units (at_ms: the reservation given back, 0
 * for an addition) where o was decided: this process's windows or the store. Nobody waits. */
static void rl_adjust_detached(struct rl_state *st, const struct rl_op *o, int64_t delta,
                               int64_t at_ms)
{
    if (o->local) {
        struct rl_op a = *o;
        a.adjust = 1;
        a.at_ms = at_ms;
        a.units = delta;
        rl_local(st, &a);
        return;
    }
    store_rl_adjust(st->store, o->key, o->eff.limits, o->eff.nlimits, delta, at_ms, rl_released_cb,
                    NULL);
}

/* rl_release_others - the request is refused: give back what the other rules reserved for it
 * (all or nothing across rules too), in the windows it was recorded in. */
static void rl_release_others(struct rl_state *st, struct rl_call *rc, const struct rl_op *by)
{
    for (int i = 0; i < rc->nops; i++) {
        struct rl_op *o = &rc->ops[i];
        if (o == by || o->adjust || !o->units || !o->res.allowed || o->failed)
            continue;
        rl_adjust_detached(st, o, -o->units, o->res.at_ms);
    }
}

/* rl_count_refused - ratelimit_count_rejected = yes: the refused attempt's units recorded
 * anyway in the windows of the rule that refused it (never in the others). */
static void rl_count_refused(struct rl_state *st, const struct rl_op *o)
{
    if (o->units > 0 && !o->res.blocked)
        rl_adjust_detached(st, o, o->units, 0);
}

/* rl_decide - every answer is in: the first refused rule decides; failures by policy. */
static void rl_decide(struct rl_call *rc)
{
    struct rl_state *st = check_call_state(rc->call);
    for (int i = 0; i < rc->nops; i++) {
        struct rl_op *o = &rc->ops[i];
        if (!o->failed || o->restore)
            continue; /* a failed restore: that part of the message is not counted again */
        if (st->failure == F_LOCAL) {
            rl_local(st, o);
            o->failed = 0;
            o->local = 1;
        } else if (st->failure == F_DEFER) {
            char cause[256];
            snprintf(cause, sizeof(cause), "rule %s: the state store %s failed: %s", o->eff.name,
                     store_name(st->store), o->detail);
            check_call_defer(rc->call, "ratelimit.store_failure",
                             "451 4.3.0 Temporary rate limit problem, try again later", cause,
                             "bring the state store back (see the store's log lines)");
            return;
        }
    }
    for (int i = 0; i < rc->nops; i++) {
        struct rl_op *o = &rc->ops[i];
        if (o->failed || o->adjust)
            continue;
        if (!o->res.allowed) {
            rl_refuse(rc, o, &o->res);
            rl_release_others(st, rc, o);
            if (check_call_config(rc->call)->ratelimit_count_rejected)
                rl_count_refused(st, o);
            return;
        }
    }
    /* Every rule admitted the request: the message's reservations remembered (recipients per
     * rule for the END-OF-MESSAGE true-up, each one for giving back if the message ends
     * without it), early warnings. */
    const struct request *req = check_call_request(rc->call);
    struct ratelimit_msg *m = ratelimit_track_find(st->track, request_get(req, ATTR_INSTANCE));
    for (int i = 0; i < rc->nops; i++) {
        struct rl_op *o = &rc->ops[i];
        if (o->failed)
            continue;
        if (o->restore) {
            if (m) {
                ratelimit_track_restored(st->track, m, o->rule, o->key, o->res.at_ms);
                if (o->res.at_ms > m->at_ms[o->rule] && m->units[o->rule])
                    m->at_ms[o->rule] = o->res.at_ms;
            }
            continue;
        }
        if (!o->adjust && o->units > 0 && m) {
            if (o->eff.count == C_RECIPIENTS) {
                m->units[o->rule] += (int)o->units;
                m->at_ms[o->rule] = o->res.at_ms;
            }
            if (!o->local)
                ratelimit_track_reserved(st->track, m, o->rule, o->key, o->eff.limits,
                                         o->eff.nlimits, o->units, o->res.at_ms);
        }
        rl_early_warning(rc, o, &o->res);
    }
}

/* rl_unmark - a message counted at run() for rules whose reservation did not stand: the next
 * RCPT of the message tries again. */
static void rl_unmark(struct rl_state *st, struct rl_call *rc)
{
    const struct request *req = check_call_request(rc->call);
    int refused = 0;
    for (int i = 0; i < rc->nops; i++)
        if (!rc->ops[i].adjust && !rc->ops[i].failed && !rc->ops[i].res.allowed)
            refused = 1;
    for (int i = 0; i < rc->nops; i++) {
        struct rl_op *o = &rc->ops[i];
        if (o->adjust || o->eff.count != C_MESSAGES || !o->units)
            continue;
        struct ratelimit_msg *m = ratelimit_track_find(st->track, request_get(req, ATTR_INSTANCE));
        if ((refused || o->failed) && m)
            m->counted &= ~(1u << o->rule);
    }
}

static void rl_store_cb(const struct store_rl_result *r, void *arg)
{
    struct rl_op *o = arg;
    struct rl_call *rc = o->rc;
    o->op = NULL;
    o->res = *r;
    if (r->status != STORE_OK) {
        o->failed = 1;
        snprintf(o->detail, sizeof(o->detail), "%s", r->detail ? r->detail : "failed");
    }
    if (--rc->pending == 0) {
        struct rl_state *st = check_call_state(rc->call);
        rl_decide(rc);
        rl_unmark(st, rc);
        check_call_done(rc->call);
    }
}

/* A message that comes back after its reservations were given back (ratelimit_track): one
 * restore op per reservation, recorded again unconditionally (Postfix accepted those
 * recipients); at END-OF-MESSAGE less the recipients not accepted in the end (give). */
struct rl_restore {
    struct rl_state *st;
    struct rl_call *rc;
    int n;
    int64_t give[RL_MAX_RULES];
};

static void rl_restore_count(void *arg, int rule, const char *key, const struct store_limit *limits,
                             int nlimits, int64_t units, int64_t at_ms)
{
    (void)rule, (void)key, (void)limits, (void)nlimits, (void)units, (void)at_ms;
    ((struct rl_restore *)arg)->n++;
}

static void rl_restore_op(void *arg, int rule, const char *key, const struct store_limit *limits,
                          int nlimits, int64_t units, int64_t at_ms)
{
    struct rl_restore *x = arg;
    (void)at_ms;
    int64_t take = units < x->give[rule] ? units : x->give[rule];
    x->give[rule] -= take;
    units -= take;
    if (units <= 0 || strlen(key) >= sizeof(x->rc->ops[0].key) || rule >= x->st->nrules)
        return;
    struct rl_op *o = rl_op_take(x->rc);
    o->rule = rule;
    o->eff = x->st->rules[rule];
    o->eff.nlimits = nlimits;
    memcpy(o->eff.limits, limits, (size_t)nlimits * sizeof(*limits));
    snprintf(o->key, sizeof(o->key), "%s", key);
    const char *c = strchr(o->key, ':');
    c = c ? strchr(c + 1, ':') : NULL;
    o->value = c ? c + 1 : o->key; /* rule:keyname:value */
    o->units = units;
    o->adjust = 1;
    o->restore = 1;
    x->rc->nops++;
}

static enum check_status rl_run(struct check_call *call)
{
    struct rl_state *st = check_call_state(call);
    const struct config *cfg = check_call_config(call);
    const struct request *req = check_call_request(call);
    enum request_state state = request_state(req);
    if (!st->store)
        return CHECK_DONE;
    /* Every request tells whether the message before it on its connection ended. */
    struct ratelimit_msg none = {0}; /* no instance: each request on its own */
    struct ratelimit_msg *inst = ratelimit_track_request(
        st->track, check_call_connection(call), request_get(req, ATTR_INSTANCE),
        state == STATE_END_OF_MESSAGE, state == STATE_RCPT);
    if (state != STATE_RCPT && state != STATE_END_OF_MESSAGE)
        return CHECK_DONE;
    struct ratelimit_msg *msg = inst;
    if (!inst)
        inst = &none;
    struct rl_restore back = {.st = st};
    if (inst->released) {
        ratelimit_track_foreach(inst, rl_restore_count, &back);
        if (state == STATE_END_OF_MESSAGE) {
            long long accepted = strtoll(request_get(req, ATTR_RECIPIENT_COUNT), NULL, 10);
            for (int i = 0; i < st->nrules; i++) {
                if (inst->at_ms[i] && accepted >= 0 && accepted < inst->units[i])
                    back.give[i] = inst->units[i] - accepted;
                inst->at_ms[i] = 0; /* no true-up: the restore records the net */
            }
        }
    }
    int authenticated = *request_get(req, ATTR_SASL_USERNAME) != 0;
    struct rl_call *rc =
        xmalloc(sizeof(*rc) + (size_t)(st->nrules + back.n) * sizeof(struct rl_op));
    rc->call = call;
    rc->nops = rc->pending = 0;
    int64_t now = rl_now_ms();
    char netkey[80] = "";
    if (state == STATE_RCPT && authenticated &&
        rl_key_value(cfg, K_CLIENT_NETWORK, req, netkey, sizeof(netkey)) != 0)
        netkey[0] = 0;
    for (int i = 0; i < st->nrules; i++) {
        const struct rl_rule *r = &st->rules[i];
        if ((r->when == W_AUTH && !authenticated) || (r->when == W_UNAUTH && authenticated))
            continue;
        struct rl_op *o = rl_op_take(rc);
        /* The key is "rule:keyname:value", the value written in place (at most 511 bytes). */
        size_t nl = strlen(r->name), kl = strlen(rl_key_names[r->key]);
        memcpy(o->key, r->name, nl);
        o->key[nl] = ':';
        memcpy(o->key + nl + 1, rl_key_names[r->key], kl);
        o->key[nl + 1 + kl] = ':';
        char *value = o->key + nl + kl + 2;
        if (rl_key_value(cfg, r->key, req, value, 512) != 0)
            continue;
        o->value = value;
        o->eff = *r;
        o->rule = i;
        enum rl_override ov = rl_override(st, r, o->value, &o->eff);
        if (ov == O_UNLIMITED)
            continue;
        if (state == STATE_RCPT) {
            if (r->count == C_RECIPIENTS)
                o->units = 1;
            else if (r->count == C_MESSAGES) {
                /* Marked now: the message's next RCPTs may arrive before the answer. */
                o->units = (inst->counted & (1u << i)) ? 0 : 1;
                inst->counted |= 1u << i;
            } else
                o->units = 0; /* bytes: look now, count at END-OF-MESSAGE */
        } else {
            if (r->count == C_MESSAGES)
                continue; /* counted at the first RCPT */
            o->adjust = 1;
            if (r->count == C_RECIPIENTS) {
                /* True-up: recipients reserved at RCPT but not accepted in the end (refused by
                 * a later restriction) are given back. */
                long long accepted = strtoll(request_get(req, ATTR_RECIPIENT_COUNT), NULL, 10);
                if (!inst->at_ms[i] || accepted < 0 || accepted >= inst->units[i])
                    continue;
                o->units = accepted - inst->units[i];
                o->at_ms = inst->at_ms[i];
                inst->units[i] = 0;
                inst->at_ms[i] = 0;
            } else {
                o->units = strtoll(request_get(req, ATTR_SIZE), NULL, 10);
                if (o->units <= 0)
                    continue;
            }
        }
        if (ov == O_BLOCK) {
            struct store_rl_result blocked = {.status = STORE_OK, .blocked = 1};
            rl_refuse(rc, o, &blocked);
            free(rc);
            if (msg && state == STATE_END_OF_MESSAGE)
                ratelimit_track_finish(st->track, msg);
            return CHECK_DONE;
        }
        if (state == STATE_RCPT && r->key != K_RECIPIENT_DOMAIN)
            o->ndomains =
                rl_domains_note(st, o->key, rl_domain_of(request_get(req, ATTR_RECIPIENT)), netkey,
                                now, &o->new_net);
        rc->nops++;
    }
    if (back.n) {
        back.rc = rc;
        ratelimit_track_foreach(inst, rl_restore_op, &back);
        inst->released = 0;
    }
    if (msg && state == STATE_END_OF_MESSAGE)
        ratelimit_track_finish(st->track, msg); /* the message is in: nothing to give back */
    if (!rc->nops) {
        free(rc);
        return CHECK_DONE;
    }
    check_call_set_data(call, rc, rl_free);
    rc->pending = rc->nops;
    for (int i = 0; i < rc->nops; i++) {
        struct rl_op *o = &rc->ops[i];
        if (o->adjust)
            o->op = store_rl_adjust(st->store, o->key, o->eff.limits, o->eff.nlimits, o->units,
                                    o->at_ms, rl_store_cb, o);
        else
            o->op = store_rl_reserve(st->store, o->key, o->eff.limits, o->eff.nlimits, o->units,
                                     rl_store_cb, o);
    }
    return CHECK_PENDING;
}

static void rl_describe(const struct check_call *call, char *buf, size_t buflen)
{
    const struct rl_call *rc = check_call_data(call);
    if (rc)
        snprintf(buf, buflen, "%d state store answers (%s)", rc->pending,
                 store_name(((const struct rl_state *)check_call_state(call))->store));
}

const struct check_def ratelimit_check = {
    .name = "ratelimit",
    .configure = rl_configure,
    .unconfigure = rl_unconfigure,
    .start = rl_start,
    .run = rl_run,
    .describe = rl_describe,
    .closed = rl_closed,
};
