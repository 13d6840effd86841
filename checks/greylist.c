/*
 * greylist.c - greylisting of suspicious clients: the first attempt of a (client network,
 * sender, recipient) triplet is deferred; a retry after greylist_delay and within
 * greylist_retry_window passes, and the pass is remembered (greylist_pass_ttl, refreshed on
 * use). A client network with greylist_awl_passes passes is whitelisted. State lives in the
 * shared store (checks/state.h), one atomic step per attempt (store_grey_check).
 *
 * Key design: the network, not the address, so provider pools that retry from another address
 * of the same /24 (/64) pass; after an SPF pass the SPF domain instead of the network, so a
 * provider retrying from another network passes too; the sender normalised (lower case,
 * extension removed with recipient_delimiter, SRS and BATV unwrapped, numbers in the local
 * part replaced by '#' as postgrey does for VERP and per-message tags), so a retry with a new
 * bounce tag is the same triplet. greylist_policy = suspicious greylists a client without a
 * forward-confirmed PTR (Postfix's client_name "unknown"), with a generic name, a DNSBL score
 * above 0 or SPF other than pass: the last three are what the rdns, dnsbl and spf checks
 * found for this request (check_call_finding; this check runs after them, check_def.after),
 * so there are no DNS lookups of our own, and a criterion whose check is not configured is
 * unknown, not held against the client. Ownership: the state owns the skip lists (the
 * greylist_skip_clients_file list too, read once per configuration) and a holder of the store.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/check.h"

#include "checks/state.h"
#include "policyd/config.h"
#include "policyd/lib/addr.h"
#include "policyd/lib/units.h"
#include "policyd/lib/xalloc.h"
#include "policyd/maps/clientlist.h"
#include "policyd/maps/domainlist.h"
#include "policyd/maps/netlist.h"
#include "policyd/store/store.h"
#include "protocol/action.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct grey_state {
    struct netlist *skip;
    struct domainlist *skip_names;
    struct clientlist *skip_clients; /* greylist_skip_clients_file, or NULL */
    int all;                         /* greylist_policy = all */
    int failure_defer;
    struct store *store;
};

struct grey_call {
    struct check_call *call;
    struct store_op *op;
    char network[64];
    char spf_domain[256]; /* the triplet names this SPF-passing domain ("": the network) */
    char sender[320];
    char triplet[1024];
    char why[1024]; /* why the client is greylisted: the criteria, or greylist_policy = all */
    char fix[1024]; /* what a sender who complains can do about each criterion */
};

static void grey_unconfigure(void *state)
{
    struct grey_state *st = state;
    if (!st)
        return;
    netlist_free(st->skip);
    domainlist_free(st->skip_names);
    clientlist_free(st->skip_clients);
    state_release(st->store);
    free(st);
}

static void *grey_configure(const struct config *cfg, char *err, size_t errlen)
{
    if (state_check_spec(cfg, err, errlen) != 0)
        return NULL;
    struct grey_state *st = xcalloc(1, sizeof(*st));
    if (strcmp(cfg->greylist_policy, "all") == 0)
        st->all = 1;
    else if (strcmp(cfg->greylist_policy, "suspicious") != 0) {
        snprintf(err, errlen, "%s:%d: greylist_policy: suspicious or all", cfg->path,
                 config_source_line(cfg, "greylist_policy"));
        free(st);
        return NULL;
    }
    if (strcmp(cfg->greylist_store_failure, "defer") == 0)
        st->failure_defer = 1;
    else if (strcmp(cfg->greylist_store_failure, "dunno") != 0) {
        snprintf(err, errlen, "%s:%d: greylist_store_failure: dunno or defer", cfg->path,
                 config_source_line(cfg, "greylist_store_failure"));
        free(st);
        return NULL;
    }
    st->skip = netlist_new("greylist_skip_networks", cfg->greylist_skip_networks, err, errlen);
    if (!st->skip) {
        free(st);
        return NULL;
    }
    st->skip_names = domainlist_new("greylist_skip_client_names", cfg->greylist_skip_client_names,
                                    1, err, errlen);
    if (!st->skip_names) {
        grey_unconfigure(st);
        return NULL;
    }
    if (*cfg->greylist_skip_clients_file) {
        char reason[1024];
        st->skip_clients = clientlist_load(cfg->greylist_skip_clients_file, reason, sizeof(reason));
        if (!st->skip_clients) {
            /* "greylist_skip_clients_file: PATH:LINE: reason": config adds where it was set. */
            snprintf(err, errlen, "greylist_skip_clients_file: %s", reason);
            grey_unconfigure(st);
            return NULL;
        }
    }
    return st;
}

static int grey_start(void *state, void *previous, struct event_base *base, struct dns *dns,
                      const struct config *cfg, char *err, size_t errlen)
{
    (void)previous;
    (void)dns;
    struct grey_state *st = state;
    if (!st->store)
        st->store = state_acquire(cfg, base, err, errlen);
    return st->store ? 0 : -1;
}

/* grey_unwrap - SRS and BATV: the original address inside a rewritten one (in place). */
static void grey_unwrap(char *s)
{
    char *at = strrchr(s, '@');
    if (!at)
        return;
    /* BATV: prvs=TAG=local@domain, msprvs1=TAG=local@domain */
    if (strncmp(s, "prvs=", 5) == 0 || strncmp(s, "msprvs1=", 8) == 0) {
        char *eq = strchr(strchr(s, '=') + 1, '=');
        if (eq && eq < at)
            memmove(s, eq + 1, strlen(eq + 1) + 1);
        return;
    }
    /* SRS0=HASH=TT=domain=local@forwarder; SRS1=HASH=fwd==HASH=TT=domain=local@forwarder */
    if (strncmp(s, "srs0=", 5) == 0 || strncmp(s, "srs1=", 5) == 0) {
        char *p = s + 5;
        if (s[3] == '1') {
            char *dbl = strstr(p, "==");
            if (!dbl || dbl > at)
                return;
            p = dbl + 2;
        }
        /* p: HASH=TT=domain=local@... */
        char *f[3];
        for (int i = 0; i < 3; i++) {
            p = strchr(p, '=');
            if (!p || p > at)
                return;
            f[i] = ++p;
        }
        /* f[1]: domain=..., f[2]: local@forwarder */
        size_t dlen = (size_t)(f[2] - 1 - f[1]);
        size_t llen = (size_t)(at - f[2]);
        char out[320];
        if (llen + dlen + 2 > sizeof(out))
            return;
        memcpy(out, f[2], llen);
        out[llen] = '@';
        memcpy(out + llen + 1, f[1], dlen);
        out[llen + 1 + dlen] = 0;
        strcpy(s, out);
    }
}

/* grey_sender - the normalised sender (see the header) into buf. */
static void grey_sender(const struct config *cfg, const char *sender, char *buf, size_t len)
{
    char s[320];
    size_t n = 0;
    for (; sender[n] && n + 1 < sizeof(s); n++)
        s[n] = (char)tolower((unsigned char)sender[n]);
    s[n] = 0;
    grey_unwrap(s);
    char *at = strrchr(s, '@');
    char *local_end = at ? at : s + strlen(s);
    if (cfg->recipient_delimiter[0]) {
        for (char *p = s; p < local_end; p++)
            if (strchr(cfg->recipient_delimiter, *p)) {
                memmove(p, local_end, strlen(local_end) + 1);
                local_end = p;
                break;
            }
    }
    /* Numbers standing alone in the local part (VERP, per-message tags) become '#'. */
    size_t o = 0;
    for (char *p = s; *p && o + 1 < len;) {
        if (p < local_end && isdigit((unsigned char)*p) &&
            (p == s || !isalnum((unsigned char)p[-1]))) {
            char *q = p;
            while (q < local_end && isdigit((unsigned char)*q))
                q++;
            if (q == local_end || !isalnum((unsigned char)*q)) {
                buf[o++] = '#';
                p = q;
                continue;
            }
        }
        buf[o++] = *p++;
    }
    buf[o] = 0;
}

static void grey_free(void *data)
{
    struct grey_call *gc = data;
    store_cancel(gc->op);
    free(gc);
}

static void grey_cb(const struct store_grey_result *r, void *arg)
{
    struct grey_call *gc = arg;
    struct check_call *call = gc->call;
    const struct config *cfg = check_call_config(call);
    const struct grey_state *st = check_call_state(call);
    const struct request *req = check_call_request(call);
    gc->op = NULL;
    if (r->status != STORE_OK) {
        char cause[512];
        snprintf(cause, sizeof(cause), "the state store %s failed: %s", store_name(st->store),
                 r->detail ? r->detail : "failed");
        if (st->failure_defer)
            check_call_defer(call, "greylist.store_failure",
                             "451 4.3.0 Temporary greylisting problem, try again later", cause,
                             "bring the state store back (see the store's log lines)");
        else
            check_call_note(call, "%s; greylist_store_failure = dunno", cause);
        check_call_done(call);
        return;
    }
    char first[32], retry[32];
    units_format_clock(r->first_ms, first, sizeof(first));
    units_format_clock(r->retry_ms, retry, sizeof(retry));
    switch (r->state) {
    case STORE_GREY_PASS:
        check_call_note(call, "triplet passed (first seen %s)", first);
        break;
    case STORE_GREY_AWL:
        check_call_note(call, "client network %s is whitelisted (%lld passes)", gc->network,
                        (long long)r->awl_count);
        break;
    case STORE_GREY_NEW:
    case STORE_GREY_EARLY:
    case STORE_GREY_RESTART: {
        long long wait_s = (r->retry_ms - r->now_ms + 999) / 1000;
        if (wait_s < 0)
            wait_s = 0;
        char action[512], cause[3072], fix[1536], key[320];
        if (gc->spf_domain[0])
            snprintf(key, sizeof(key), "triplet by SPF-passing domain %s", gc->spf_domain);
        else
            snprintf(key, sizeof(key), "network %s", gc->network);
        if (action_is_bare_code(cfg->greylist_action))
            snprintf(action, sizeof(action), "%s Greylisted, please try again in %lld seconds",
                     cfg->greylist_action, wait_s);
        else
            snprintf(action, sizeof(action), "%s", cfg->greylist_action);
        snprintf(cause, sizeof(cause),
                 "%s: client %s[%s] (%s, %s), sender <%s> (as %s), recipient <%s>: first "
                 "seen %s, earliest retry %s (in %llds), passes until %lld s after that",
                 r->state == STORE_GREY_NEW     ? "first attempt greylisted"
                 : r->state == STORE_GREY_EARLY ? "retried too early"
                                                : "came back after the retry window, greylisted "
                                                  "anew",
                 request_get(req, ATTR_CLIENT_NAME), request_get(req, ATTR_CLIENT_ADDRESS), key,
                 gc->why, request_get(req, ATTR_SENDER), gc->sender[0] ? gc->sender : "<>",
                 request_get(req, ATTR_RECIPIENT), first, retry, wait_s,
                 (long long)(cfg->greylist_retry_window / 1000));
        snprintf(fix, sizeof(fix),
                 "none needed for a real mail server: it retries and the mail arrives after the "
                 "delay; if a sender complains of the delay, %s, or add its network to "
                 "greylist_skip_networks (its name to greylist_skip_client_names)",
                 gc->fix);
        check_call_action(call, "greylist.deferred", action, cause, fix);
        break;
    }
    }
    check_call_done(call);
}

/* grey_add - append "; text" (or text) to buf. */
static void grey_add(char *buf, size_t len, const char *text)
{
    size_t n = strlen(buf);
    if (n + 1 < len)
        snprintf(buf + n, len - n, "%s%s", n ? "; " : "", text);
}

/*
 * grey_suspicious - greylist_policy = suspicious: what makes this client suspicious, from
 * Postfix's client_name and the findings of the rdns, dnsbl and spf checks (each criterion
 * only when its check is configured and published it). The criteria go into gc->why
 * ("suspicious: ...") and what fixes each into gc->fix. Returns their number.
 */
static int grey_suspicious(struct check_call *call, struct grey_call *gc, const char *name)
{
    char text[640];
    int n = 0;
    gc->why[0] = gc->fix[0] = 0;
    if (!*name || strcmp(name, "unknown") == 0) {
        grey_add(gc->why, sizeof(gc->why), "no forward-confirmed reverse name");
        grey_add(gc->fix, sizeof(gc->fix),
                 "give its server a reverse name (PTR) that resolves back to its address");
        n++;
    }
    const char *generic = check_call_finding(call, CHECK_FINDING_RDNS_GENERIC);
    if (generic) {
        const char *ptr = check_call_finding(call, CHECK_FINDING_RDNS_NAME);
        snprintf(text, sizeof(text), "generic reverse name %s (%s)", ptr ? ptr : "", generic);
        grey_add(gc->why, sizeof(gc->why), text);
        grey_add(gc->fix, sizeof(gc->fix),
                 "give its server a reverse name that names the mail service, not the access "
                 "line");
        n++;
    }
    const char *score = check_call_finding(call, CHECK_FINDING_DNSBL_SCORE);
    if (score && atol(score) > 0) {
        const char *threshold = check_call_finding(call, CHECK_FINDING_DNSBL_THRESHOLD);
        const char *zones = check_call_finding(call, CHECK_FINDING_DNSBL_LISTED);
        long t = threshold ? atol(threshold) : 0;
        snprintf(text, sizeof(text), "DNSBL score %s %s dnsbl_threshold %ld (listed by %s)", score,
                 atol(score) < t ? "under" : "reaching", t, zones && *zones ? zones : "?");
        grey_add(gc->why, sizeof(gc->why), text);
        snprintf(text, sizeof(text), "have its operator get it delisted (%s)",
                 zones && *zones ? zones : "see the dnsbl check's lists");
        grey_add(gc->fix, sizeof(gc->fix), text);
        n++;
    }
    const char *spf = check_call_finding(call, CHECK_FINDING_SPF_RESULT);
    if (spf && strcmp(spf, "pass") != 0) {
        const char *domain = check_call_finding(call, CHECK_FINDING_SPF_DOMAIN);
        const char *identity = check_call_finding(call, CHECK_FINDING_SPF_IDENTITY);
        snprintf(text, sizeof(text), "SPF %s for %s %s", spf,
                 identity && strcmp(identity, "helo") == 0 ? "HELO name" : "sender domain",
                 domain && *domain ? domain : "(none)");
        grey_add(gc->why, sizeof(gc->why), text);
        snprintf(text, sizeof(text),
                 "the owner of %s should publish an SPF record that passes "
                 "for its servers",
                 domain && *domain ? domain : "the sender domain");
        grey_add(gc->fix, sizeof(gc->fix), text);
        n++;
    }
    if (n) {
        char why[sizeof(gc->why)];
        snprintf(why, sizeof(why), "suspicious: %s", gc->why);
        memcpy(gc->why, why, sizeof(why));
    }
    return n;
}

/* grey_lower - s in lower case into buf. */
static void grey_lower(const char *s, char *buf, size_t len)
{
    size_t n = 0;
    for (; *s && n + 1 < len; s++)
        buf[n++] = (char)tolower((unsigned char)*s);
    buf[n] = 0;
}

static enum check_status grey_run(struct check_call *call)
{
    struct grey_state *st = check_call_state(call);
    const struct config *cfg = check_call_config(call);
    const struct request *req = check_call_request(call);
    if (!st->store || request_state(req) != STATE_RCPT)
        return CHECK_DONE;
    const char *addr = request_get(req, ATTR_CLIENT_ADDRESS);
    if (cfg->greylist_skip_authenticated && *request_get(req, ATTR_SASL_USERNAME))
        return CHECK_DONE;
    if (cfg->greylist_skip_mynetworks && netlist_match(cfg->net_mynetworks, addr, NULL) == 1)
        return CHECK_DONE;
    if (netlist_match(st->skip, addr, NULL) == 1)
        return CHECK_DONE;
    const char *name = request_get(req, ATTR_CLIENT_NAME);
    /* Postfix's client_name is the verified name ("unknown" otherwise): a forged PTR never
     * matches the skip list. */
    if (*name && strcmp(name, "unknown") != 0 && domainlist_match(st->skip_names, name, NULL) == 1)
        return CHECK_DONE;
    const char *entry;
    if (st->skip_clients && clientlist_match(st->skip_clients, name, addr, &entry) == 1) {
        check_call_note(call, "client %s[%s] whitelisted by %s", name, addr, entry);
        return CHECK_DONE;
    }
    struct grey_call *gc = xcalloc(1, sizeof(*gc));
    gc->call = call;
    if (st->all) {
        snprintf(gc->why, sizeof(gc->why), "greylist_policy = all");
        snprintf(gc->fix, sizeof(gc->fix), "give its server a forward-confirmed reverse name");
    } else if (grey_suspicious(call, gc, name) == 0) {
        check_call_note(call,
                        "client %s[%s] is not suspicious (forward-confirmed name, and no generic "
                        "name, DNSBL listing or SPF result other than pass found): not greylisted",
                        name, addr);
        free(gc);
        return CHECK_DONE;
    }
    if (addr_network(addr, (unsigned)cfg->greylist_ipv4_prefix, (unsigned)cfg->greylist_ipv6_prefix,
                     gc->network, sizeof(gc->network)) != 0) {
        free(gc);
        return CHECK_DONE;
    }
    const char *spf = check_call_finding(call, CHECK_FINDING_SPF_RESULT);
    const char *domain = check_call_finding(call, CHECK_FINDING_SPF_DOMAIN);
    if (spf && strcmp(spf, "pass") == 0 && domain && *domain)
        grey_lower(domain, gc->spf_domain, sizeof(gc->spf_domain));
    grey_sender(cfg, request_get(req, ATTR_SENDER), gc->sender, sizeof(gc->sender));
    char rcpt[320];
    grey_lower(request_get(req, ATTR_RECIPIENT), rcpt, sizeof(rcpt));
    /* After an SPF pass the domain stands for the client: a provider's other servers pass. */
    if (gc->spf_domain[0])
        snprintf(gc->triplet, sizeof(gc->triplet), "spf:%s/%s/%s", gc->spf_domain, gc->sender,
                 rcpt);
    else
        snprintf(gc->triplet, sizeof(gc->triplet), "%s/%s/%s", gc->network, gc->sender, rcpt);
    char awl[96];
    snprintf(awl, sizeof(awl), "awl:%s", gc->network);
    struct store_grey_params p = {
        .delay_ms = cfg->greylist_delay,
        .retry_window_ms = cfg->greylist_retry_window,
        .pass_ttl_ms = cfg->greylist_pass_ttl,
        .awl_key = cfg->greylist_awl_passes ? awl : NULL,
        .awl_passes = (int)cfg->greylist_awl_passes,
        .awl_ttl_ms = cfg->greylist_pass_ttl,
        .awl_interval_ms = 3600 * 1000,
    };
    check_call_set_data(call, gc, grey_free);
    gc->op = store_grey_check(st->store, gc->triplet, &p, grey_cb, gc);
    return CHECK_PENDING;
}

static void grey_describe(const struct check_call *call, char *buf, size_t buflen)
{
    const struct grey_call *gc = check_call_data(call);
    if (gc)
        snprintf(buf, buflen, "greylist state of %s",
                 store_name(((const struct grey_state *)check_call_state(call))->store));
}

/* The checks whose findings decide whether a client is suspicious (grey_suspicious). */
static const char *const grey_after[] = {"spf", "dnsbl", "rdns", NULL};

const struct check_def greylist_check = {
    .name = "greylist",
    .after = grey_after,
    .configure = grey_configure,
    .unconfigure = grey_unconfigure,
    .start = grey_start,
    .run = grey_run,
    .describe = grey_describe,
};
