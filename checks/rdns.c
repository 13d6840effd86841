/*
 * rdns.c - reverse DNS of the client: PTR present, forward-confirmed, not generic.
 *
 * The PTR of client_address (IPv4, or IPv6 nibbles) is asked through the shared DNS engine;
 * then the A (or AAAA) records of up to rdns_max_names PTR names, all at once. Outcomes:
 * forward-confirmed / no PTR (NXDOMAIN or empty) / no name resolves back / temporary failure,
 * plus a warning when the confirmed name looks generic (embeds the address, or has words like
 * dsl, dynamic, pool). Each outcome has its action; a temporary failure never answers 5xx.
 * The diagnosis says what was asked, what came back, what receivers do, and the fix, and
 * notes where Postfix's own client_name / reverse_client_name disagree with what we found.
 * The outcome is published as findings (rdns.ptr, rdns.name, rdns.generic; check.h) for the
 * checks that run after this one (greylist: a generic name is suspicious).
 */
/* SPDX-License-Identifier: MIT */
#include "checks/check.h"

#include "policyd/config.h"
#include "policyd/dns/dns.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/maps/netlist.h"
#include "protocol/action.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RDNS_MAX_NAMES 32

struct rdns_state {
    struct netlist *skip;
    char **generic; /* lower-case words */
    size_t max_names;
};

struct rdns_call;

/* The callback argument of one forward lookup: which call, which name. */
struct rdns_fwd_arg {
    struct rdns_call *rc;
    size_t index;
};

struct rdns_call {
    struct check_call *call;
    int family;
    unsigned char bin[16];
    struct dns_query *ptr_q;
    size_t nnames, outstanding;
    int confirmed;    /* index + 1 of the name that resolves back */
    int fwd_tempfail; /* some forward lookup failed temporarily */
    /* Below: written before being read; not cleared per request (rdns_new). */
    char addr[64];
    char ptr_name[128];
    struct rdns_fwd_arg fwd_arg[RDNS_MAX_NAMES];
    struct dns_query *fwd_q[RDNS_MAX_NAMES]; /* [0, nnames) */
    char *names[RDNS_MAX_NAMES];             /* [0, nnames) */
    char fwd_seen[RDNS_MAX_NAMES][96];       /* what each name resolved to, for the diagnosis */
    char tempfail_detail[160];
};

/* rdns_new - a call's state; only the header is cleared (the arrays are written first). */
static struct rdns_call *rdns_new(void)
{
    struct rdns_call *rc = xmalloc(sizeof(*rc));
    memset(rc, 0, offsetof(struct rdns_call, addr));
    return rc;
}

static void *rdns_configure(const struct config *cfg, char *err, size_t errlen)
{
    struct rdns_state *st = xcalloc(1, sizeof(*st));
    st->skip = netlist_new("rdns_skip_networks", cfg->rdns_skip_networks, err, errlen);
    if (!st->skip) {
        free(st);
        return NULL;
    }
    st->generic = plist_split(cfg->rdns_generic_patterns);
    for (size_t i = 0; st->generic[i]; i++)
        for (char *p = st->generic[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    st->max_names = (size_t)cfg->rdns_max_names; /* settings.def bounds it to RDNS_MAX_NAMES */
    return st;
}

static void rdns_unconfigure(void *state)
{
    struct rdns_state *st = state;
    netlist_free(st->skip);
    plist_free(st->generic);
    free(st);
}

/* rdns_free - a call's state, with its lookups still pending (check_free_fn). */
static void rdns_free(void *data)
{
    struct rdns_call *rc = data;
    dns_cancel(rc->ptr_q);
    for (size_t i = 0; i < rc->nnames; i++) {
        dns_cancel(rc->fwd_q[i]);
        free(rc->names[i]);
    }
    free(rc);
}

/* rdns_generic_reason - why name looks generic, or NULL. */
static const char *rdns_generic_reason(const struct rdns_state *st, const struct rdns_call *rc,
                                       const char *name, char *buf, size_t buflen)
{
    /* The address embedded: 203-0-113-7, 203.0.113.7, 7.113.0.203, 203000113007, cb007107 */
    size_t digits = 0, hexrun = 0, maxhex = 0;
    for (const char *p = name; *p; p++) {
        digits += isdigit((unsigned char)*p) != 0;
        hexrun = isxdigit((unsigned char)*p) ? hexrun + 1 : 0;
        if (hexrun > maxhex)
            maxhex = hexrun;
    }
    /* Every embedded form has at least 4 digits or 8 hex digits: skip the work otherwise. */
    if (rc->family == AF_INET && (digits >= 4 || maxhex >= 8)) {
        const unsigned char *a = rc->bin;
        char forms[5][32];
        snprintf(forms[0], 32, "%u-%u-%u-%u", a[0], a[1], a[2], a[3]);
        snprintf(forms[1], 32, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        snprintf(forms[2], 32, "%u-%u-%u-%u", a[3], a[2], a[1], a[0]);
        snprintf(forms[3], 32, "%03u%03u%03u%03u", a[0], a[1], a[2], a[3]);
        snprintf(forms[4], 32, "%02x%02x%02x%02x", a[0], a[1], a[2], a[3]);
        for (int i = 0; i < 5; i++) {
            if (strstr(name, forms[i])) {
                snprintf(buf, buflen, "it embeds the address (%s)", forms[i]);
                return buf;
            }
        }
    }
    /* Generic words as a label or a label part split at '-' or digits. */
    char lower[256];
    size_t ln = 0;
    for (; name[ln] && ln + 1 < sizeof(lower); ln++)
        lower[ln] = (char)tolower((unsigned char)name[ln]);
    lower[ln] = 0;
    for (char *tok = strtok(lower, ".-0123456789"); tok; tok = strtok(NULL, ".-0123456789")) {
        for (size_t i = 0; st->generic[i]; i++) {
            if (strcmp(tok, st->generic[i]) == 0) {
                snprintf(buf, buflen, "it contains '%s'", st->generic[i]);
                return buf;
            }
        }
    }
    return NULL;
}

/* rdns_postfix_view - what Postfix itself saw, when it disagrees with our finding. */
static void rdns_postfix_view(const struct rdns_call *rc, char *out, size_t outlen)
{
    const struct request *req = check_call_request(rc->call);
    const char *cname = request_get(req, ATTR_CLIENT_NAME);
    const char *rname = request_get(req, ATTR_REVERSE_CLIENT_NAME);
    const char *found = rc->confirmed ? rc->names[rc->confirmed - 1] : NULL;
    out[0] = 0;
    if (!*cname && !*rname)
        return;
    int postfix_has_ptr = *rname && strcmp(rname, "unknown") != 0;
    int postfix_confirmed = *cname && strcmp(cname, "unknown") != 0;
    if (postfix_has_ptr != (rc->nnames > 0) || postfix_confirmed != (found != NULL))
        snprintf(out, outlen,
                 "; note: Postfix saw client_name=%s reverse_client_name=%s when the client "
                 "connected (a lookup that failed or timed out then, or DNS that changed since; "
                 "Postfix's own reject_unknown_* rules use its view)",
                 *cname ? cname : "(none)", *rname ? rname : "(none)");
}

/* rdns_decide - all lookups are in: give the verdict. */
static void rdns_decide(struct rdns_call *rc, const char *ptr_status, enum dns_status ptr_st)
{
    struct check_call *call = rc->call;
    const struct config *cfg = check_call_config(call);
    const struct rdns_state *st = check_call_state(call);
    char cause[2048], fix[1024], pf[512], why[160];

    if (ptr_st == DNS_TEMPFAIL || ptr_st == DNS_BADRESP) {
        check_call_publish(call, CHECK_FINDING_RDNS_PTR, "tempfail");
        snprintf(cause, sizeof(cause),
                 "PTR lookup of %s for client %s failed temporarily (%s); no decision on its "
                 "reverse DNS",
                 rc->ptr_name, rc->addr, ptr_status);
        snprintf(fix, sizeof(fix),
                 "if this repeats for many clients, check the DNS servers policyd uses "
                 "(dns_servers, or /etc/resolv.conf)");
        check_call_defer(call, "rdns.tempfail", cfg->rdns_tempfail_action, cause, fix);
        return;
    }
    const char *name = rc->confirmed ? rc->names[rc->confirmed - 1] : NULL;
    const char *generic = name ? rdns_generic_reason(st, rc, name, why, sizeof(why)) : NULL;
    check_call_publish(call, CHECK_FINDING_RDNS_PTR,
                       name               ? "confirmed"
                       : rc->nnames == 0  ? "none"
                       : rc->fwd_tempfail ? "tempfail"
                                          : "unconfirmed");
    if (name)
        check_call_publish(call, CHECK_FINDING_RDNS_NAME, name);
    if (generic)
        check_call_publish(call, CHECK_FINDING_RDNS_GENERIC, generic);
    if (name && !generic) {
        /* The common case: forward-confirmed and not generic. */
        if (log_verbose()) {
            rdns_postfix_view(rc, pf, sizeof(pf));
            check_call_note(call, "client %s has forward-confirmed PTR %s%s", rc->addr, name, pf);
        }
        return;
    }
    rdns_postfix_view(rc, pf, sizeof(pf));
    if (rc->nnames == 0) {
        snprintf(cause, sizeof(cause),
                 "client %s has no PTR record (PTR lookup of %s: %s); large receivers (Gmail, "
                 "Microsoft, Yahoo) reject or junk mail from addresses without reverse DNS%s",
                 rc->addr, rc->ptr_name, ptr_status, pf);
        snprintf(fix, sizeof(fix),
                 "the owner of the address (the ISP or hosting provider of %s) must set a PTR "
                 "record to a name that resolves back to %s, e.g. mail.example.org with an %s "
                 "record %s; only they can, not the domain's DNS",
                 rc->addr, rc->addr, rc->family == AF_INET ? "A" : "AAAA", rc->addr);
        check_call_action(call, "rdns.no_ptr", cfg->rdns_no_ptr_action, cause, fix);
        return;
    }
    if (!rc->confirmed) {
        if (rc->fwd_tempfail) {
            snprintf(cause, sizeof(cause),
                     "client %s has PTR %s, but looking it up forward failed temporarily (%s)",
                     rc->addr, rc->names[0], rc->tempfail_detail);
            snprintf(fix, sizeof(fix),
                     "none on the client's side yet; if this repeats, check "
                     "the DNS servers policyd uses");
            check_call_defer(call, "rdns.tempfail", cfg->rdns_tempfail_action, cause, fix);
            return;
        }
        size_t n = (size_t)snprintf(cause, sizeof(cause), "client %s has PTR record%s ", rc->addr,
                                    rc->nnames > 1 ? "s" : "");
        for (size_t i = 0; i < rc->nnames && n < sizeof(cause); i++)
            n += (size_t)snprintf(cause + n, sizeof(cause) - n, "%s%s (%s %s)", i ? ", " : "",
                                  rc->names[i],
                                  rc->family == AF_INET ? "A:" : "AAAA:", rc->fwd_seen[i]);
        if (n < sizeof(cause))
            snprintf(cause + n, sizeof(cause) - n,
                     " but no name resolves back to %s (not forward-confirmed); receivers that "
                     "require matching reverse and forward DNS (Gmail among them) reject or junk "
                     "such mail%s",
                     rc->addr, pf);
        snprintf(fix, sizeof(fix),
                 "make them agree: add an %s record %s for %s in that domain's DNS, or have the "
                 "address owner point the PTR to a name that already resolves to %s",
                 rc->family == AF_INET ? "A" : "AAAA", rc->addr, rc->names[0], rc->addr);
        check_call_action(call, "rdns.mismatch", cfg->rdns_mismatch_action, cause, fix);
        return;
    }
    {
        snprintf(cause, sizeof(cause),
                 "client %s has forward-confirmed PTR %s, but the name looks generic (%s): the "
                 "mark of dynamic or residential access addresses, which many receivers refuse "
                 "to take mail from directly%s",
                 rc->addr, name, why, pf);
        snprintf(fix, sizeof(fix),
                 "a mail server should have a PTR naming the mail service (e.g. mail.example.org), "
                 "set by the address owner; a client on an access line should send through its "
                 "provider's submission server (port 587) instead");
        check_call_action(call, "rdns.generic", cfg->rdns_generic_action, cause, fix);
    }
}

/* rdns_finish - decide a call that pended, and tell the evaluator (which frees rc). */
static void rdns_finish(struct rdns_call *rc, const char *ptr_status, enum dns_status ptr_st)
{
    struct check_call *call = rc->call;
    rdns_decide(rc, ptr_status, ptr_st);
    check_call_done(call);
}

/* rdns_forward_record - record what the forward lookup of name i found. */
static void rdns_forward_record(struct rdns_call *rc, size_t i, const struct dns_result *r)
{
    if (r->status == DNS_OK) {
        size_t n = 0;
        rc->fwd_seen[i][0] = 0;
        for (size_t k = 0; k < r->count; k++) {
            unsigned char b[16];
            if (inet_pton(rc->family, r->items[k], b) == 1 &&
                memcmp(b, rc->bin, rc->family == AF_INET ? 4 : 16) == 0) {
                if (!rc->confirmed)
                    rc->confirmed = (int)i + 1;
                return; /* what it resolves to matters only for a mismatch */
            }
        }
        for (size_t k = 0; k < r->count && n < sizeof(rc->fwd_seen[i]); k++)
            n += (size_t)snprintf(rc->fwd_seen[i] + n, sizeof(rc->fwd_seen[i]) - n, "%s%s",
                                  k ? " " : "", r->items[k]);
    } else {
        snprintf(rc->fwd_seen[i], sizeof(rc->fwd_seen[i]), "%s", r->detail);
        if (r->status == DNS_TEMPFAIL || r->status == DNS_BADRESP) {
            rc->fwd_tempfail = 1;
            snprintf(rc->tempfail_detail, sizeof(rc->tempfail_detail), "%s %s: %s",
                     dns_type_name(r->type), r->name, r->detail);
        }
    }
}

static void rdns_forward_cb(const struct dns_result *r, void *arg)
{
    struct rdns_fwd_arg *fa = arg;
    struct rdns_call *rc = fa->rc;
    rc->fwd_q[fa->index] = NULL;
    rc->outstanding--;
    rdns_forward_record(rc, fa->index, r);
    if (rc->outstanding == 0)
        rdns_finish(rc, "answer", DNS_OK);
}

/* rdns_after_ptr - the PTR names are known: use cached forward answers, ask for the rest.
 * Returns 1 when every answer is in. */
static int rdns_after_ptr(struct rdns_call *rc, const struct dns_result *r)
{
    const struct rdns_state *st = check_call_state(rc->call);
    struct dns *dns = check_call_dns(rc->call);
    enum dns_type t = rc->family == AF_INET ? DNS_A : DNS_AAAA;
    for (size_t i = 0; i < r->count && rc->nnames < st->max_names; i++)
        rc->names[rc->nnames++] = xstrdup(r->items[i]);
    rc->outstanding = 0;
    for (size_t i = 0; i < rc->nnames; i++) {
        const struct dns_result *cached = dns_peek(dns, t, rc->names[i]);
        rc->fwd_q[i] = NULL;
        if (cached) {
            rdns_forward_record(rc, i, cached);
            dns_result_unref(cached);
            continue;
        }
        struct rdns_fwd_arg *fa = &rc->fwd_arg[i];
        fa->rc = rc;
        fa->index = i;
        rc->outstanding++;
        rc->fwd_q[i] = dns_lookup(dns, t, rc->names[i], rdns_forward_cb, fa);
    }
    return rc->outstanding == 0;
}

static void rdns_ptr_cb(const struct dns_result *r, void *arg)
{
    struct rdns_call *rc = arg;
    rc->ptr_q = NULL;
    if (r->status != DNS_OK)
        rdns_finish(rc, r->detail, r->status == DNS_NODATA ? DNS_NXDOMAIN : r->status);
    else if (rdns_after_ptr(rc, r))
        rdns_finish(rc, "answer", DNS_OK);
}

static enum check_status rdns_run(struct check_call *call)
{
    const struct request *req = check_call_request(call);
    const struct config *cfg = check_call_config(call);
    const struct rdns_state *st = check_call_state(call);

    if (request_state(req) != STATE_RCPT || !check_call_dns(call))
        return CHECK_DONE;
    if (!check_call_client_address(call))
        return CHECK_DONE;
    const char *addr = request_get(req, ATTR_CLIENT_ADDRESS);
    if (cfg->rdns_skip_authenticated && *request_get(req, ATTR_SASL_USERNAME))
        return CHECK_DONE;
    if (cfg->rdns_skip_mynetworks && netlist_match(cfg->net_mynetworks, addr, NULL) == 1)
        return CHECK_DONE;
    if (netlist_match(st->skip, addr, NULL) == 1)
        return CHECK_DONE;

    struct rdns_call *rc = rdns_new();
    rc->call = call;
    size_t alen = strlen(addr);
    if (alen >= sizeof(rc->addr)) {
        free(rc);
        return CHECK_DONE;
    }
    memcpy(rc->addr, addr, alen + 1);
    /* Compare addresses in binary; IPv4-mapped IPv6 is IPv4. */
    if (addr_parse(addr, &rc->family, rc->bin) == 0) {
        if (rc->family == AF_INET)
            inet_ntop(AF_INET, rc->bin, rc->addr, sizeof(rc->addr)); /* ::ffff:a.b.c.d too */
    } else {
        free(rc);
        check_call_note(call, "client_address '%s' is not an address", addr);
        return CHECK_DONE;
    }
    dns_reverse_name(rc->addr, NULL, rc->ptr_name, sizeof(rc->ptr_name));
    check_call_set_data(call, rc, rdns_free);
    /* Everything cached: decide now, without a turn of the loop. */
    const struct dns_result *ptr = dns_peek(check_call_dns(call), DNS_PTR, rc->ptr_name);
    if (ptr) {
        enum check_status status = CHECK_DONE;
        if (ptr->status != DNS_OK)
            rdns_decide(rc, ptr->detail, ptr->status == DNS_NODATA ? DNS_NXDOMAIN : ptr->status);
        else if (rdns_after_ptr(rc, ptr))
            rdns_decide(rc, "answer", DNS_OK);
        else
            status = CHECK_PENDING;
        dns_result_unref(ptr);
        return status;
    }
    rc->ptr_q = dns_lookup(check_call_dns(call), DNS_PTR, rc->ptr_name, rdns_ptr_cb, rc);
    return CHECK_PENDING;
}

static void rdns_describe(const struct check_call *call, char *buf, size_t buflen)
{
    const struct rdns_call *rc = check_call_data(call);
    if (!rc)
        return;
    if (rc->ptr_q)
        snprintf(buf, buflen, "PTR lookup of %s", rc->ptr_name);
    else
        snprintf(buf, buflen, "forward lookups of the PTR names of %s (%s%s)", rc->addr,
                 rc->nnames ? rc->names[0] : "", rc->nnames > 1 ? ", ..." : "");
}

const struct check_def rdns_check = {
    .name = "rdns",
    .configure = rdns_configure,
    .unconfigure = rdns_unconfigure,
    .run = rdns_run,
    .describe = rdns_describe,
};
