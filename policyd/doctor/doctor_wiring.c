/*
 * doctor_wiring.c - the doctor's Postfix wiring section, read from the imported main.cf
 * settings: check_policy_service towards our listen address, its place in
 * smtpd_relay_restrictions / smtpd_recipient_restrictions, open relay, mynetworks, the policy
 * client's default action and timeout.
 * The restriction lists are read as Postfix evaluates them: smtpd_relay_restrictions first, then
 * smtpd_recipient_restrictions; a permit ends only its own list. Restriction classes and
 * access tables are opaque here (an access table may answer OK: we cannot tell). Nothing is
 * run and nothing is read but the configuration.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/config.h"
#include "policyd/doctor/doctor_section.h"
#include "policyd/lib/xalloc.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/units.h"
#include "policyd/lib/addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TIMEOUT_MARGIN_MS 1000 /* Postfix must wait this much past our deadline */

/* One restriction of a list: its name, its argument (check_*_access TABLE, ...), and whether
 * warn_if_reject makes it a mere warning. */
struct pf_entry {
    const char *name, *arg;
    int warn_only;
};

struct pf_list {
    const char *setting;
    char **words;
    struct pf_entry *v;
    size_t n;
};

/* pf_takes_arg - 1 if the restriction name is followed by an argument. */
static int pf_takes_arg(const char *name)
{
    size_t len = strlen(name);
    static const char *const with_arg[] = {
        "check_policy_service", "reject_rbl_client",      "permit_dnswl_client",
        "permit_rhswl_client",  "reject_rhsbl_client",    "reject_rhsbl_sender",
        "reject_rhsbl_helo",    "reject_rhsbl_recipient", "reject_rhsbl_reverse_client"};
    for (size_t i = 0; i < sizeof(with_arg) / sizeof(with_arg[0]); i++)
        if (strcasecmp(name, with_arg[i]) == 0)
            return 1;
    return strncasecmp(name, "check_", 6) == 0 && len > 7 &&
           strcasecmp(name + len - 7, "_access") == 0;
}

static void pf_list_parse(struct pf_list *l, const char *setting, const char *value)
{
    l->setting = setting;
    l->words = plist_split(value);
    size_t nw = 0;
    while (l->words[nw])
        nw++;
    l->v = xcalloc(nw + 1, sizeof(*l->v));
    l->n = 0;
    int warn_next = 0;
    for (size_t i = 0; i < nw; i++) {
        if (strcasecmp(l->words[i], "warn_if_reject") == 0) {
            warn_next = 1;
            continue;
        }
        struct pf_entry *e = &l->v[l->n++];
        e->name = l->words[i];
        e->arg = pf_takes_arg(e->name) && i + 1 < nw ? l->words[++i] : NULL;
        e->warn_only = warn_next;
        warn_next = 0;
    }
}

static void pf_list_free(struct pf_list *l)
{
    plist_free(l->words);
    free(l->v);
}

/* pf_refuses_relay - 1 if the entry refuses mail for foreign destinations from strangers. */
static int pf_refuses_relay(const struct pf_entry *e)
{
    static const char *const names[] = {
        "reject_unauth_destination", "defer_unauth_destination", "reject", "defer",
        "defer_if_permit",           "check_relay_domains"};
    if (e->warn_only)
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcasecmp(e->name, names[i]) == 0)
            return 1;
    return 0;
}

/* pf_relay_gate - the index of the first relay-refusing entry of l, or -1; *permit_at is the
 * index of a plain "permit" before it (-1: none). */
static long pf_relay_gate(const struct pf_list *l, long *permit_at)
{
    *permit_at = -1;
    for (size_t i = 0; i < l->n; i++) {
        if (pf_refuses_relay(&l->v[i]))
            return (long)i;
        if (strcasecmp(l->v[i].name, "permit") == 0) {
            *permit_at = (long)i;
            return -1;
        }
    }
    return -1;
}

/* A policy service address, split: unix path or inet host and port. */
struct pf_addr {
    int is_unix;
    char path[512];
    char host[256];
    char port[32];
};

/* pf_addr_parse - "unix:PATH", "inet:HOST:PORT", "HOST:PORT" ([v6] allowed). 0 / -1. */
static int pf_addr_parse(const char *s, struct pf_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (strncasecmp(s, "unix:", 5) == 0) {
        a->is_unix = 1;
        snprintf(a->path, sizeof(a->path), "%s", s + 5);
        return a->path[0] ? 0 : -1;
    }
    if (strncasecmp(s, "inet:", 5) == 0)
        s += 5;
    const char *colon = strrchr(s, ':');
    if (!colon || !colon[1])
        return -1;
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    snprintf(a->host, sizeof(a->host), "%.*s", (int)hlen, h);
    snprintf(a->port, sizeof(a->port), "%s", colon + 1);
    return 0;
}

static int pf_loopback(const char *h)
{
    return strcasecmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0;
}

static int pf_wildcard(const char *h)
{
    return !*h || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "*") == 0;
}

/* pf_addr_match - 1 if Postfix's service address reaches our listener. A relative unix path is
 * relative to Postfix's queue_directory, which we do not know: its tail must match. */
static int pf_addr_match(const struct pf_addr *svc, const struct pf_addr *ours)
{
    if (svc->is_unix != ours->is_unix)
        return 0;
    if (svc->is_unix) {
        if (svc->path[0] == '/')
            return strcmp(svc->path, ours->path) == 0;
        size_t sl = strlen(svc->path), ol = strlen(ours->path);
        return ol > sl && strcmp(ours->path + ol - sl, svc->path) == 0 &&
               ours->path[ol - sl - 1] == '/';
    }
    if (strcmp(svc->port, ours->port) != 0)
        return 0;
    return strcasecmp(svc->host, ours->host) == 0 || pf_wildcard(ours->host) ||
           (pf_loopback(svc->host) && pf_loopback(ours->host));
}

/* A check_policy_service entry: where, its address and its own settings ({ ... } form). */
struct pf_service {
    const struct pf_list *list;
    size_t index;
    char addr[512];
    char timeout[64];
    char default_action[256];
};

/* pf_trim - strip blanks and one pair of braces around s, in place. */
static char *pf_trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n'))
        s[--len] = '\0';
    if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
        s[len - 1] = '\0';
        return pf_trim(s + 1);
    }
    return s;
}

/* pf_service_parse - "ADDR" or "{ ADDR, timeout=10s, default_action=DUNNO, ... }". */
static void pf_service_parse(const char *arg, struct pf_service *svc)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", arg ? arg : "");
    char *s = pf_trim(buf);
    int first = 1, depth = 0;
    char *item = s;
    for (char *p = s;; p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}' && depth > 0)
            depth--;
        if (*p && (*p != ',' || depth > 0))
            continue;
        int last = !*p;
        *p = '\0';
        char *it = pf_trim(item);
        if (first) {
            snprintf(svc->addr, sizeof(svc->addr), "%s", it);
            first = 0;
        } else {
            char *eq = strchr(it, '=');
            if (eq) {
                *eq = '\0';
                char *name = pf_trim(it), *value = pf_trim(eq + 1);
                if (strcasecmp(name, "timeout") == 0)
                    snprintf(svc->timeout, sizeof(svc->timeout), "%s", value);
                else if (strcasecmp(name, "default_action") == 0)
                    snprintf(svc->default_action, sizeof(svc->default_action), "%s", value);
            }
        }
        if (last)
            break;
        item = p + 1;
    }
}

/* pf_suggested_service - the check_policy_service argument Postfix needs for our listener. */
static void pf_suggested_service(const struct pf_addr *ours, char *buf, size_t size)
{
    if (ours->is_unix) {
        const char *priv = strstr(ours->path, "/private/");
        if (priv && strncmp(ours->path, "/var/spool/postfix/", 19) == 0)
            snprintf(buf, size, "unix:%s", priv + 1);
        else
            snprintf(buf, size, "unix:%s", ours->path);
    } else {
        const char *h = pf_wildcard(ours->host) ? "127.0.0.1" : ours->host;
        snprintf(buf, size, strchr(h, ':') ? "inet:[%s]:%s" : "inet:%s:%s", h, ours->port);
    }
}

/* pf_describe - "LIST entry N (name)" for messages. */
static void pf_describe(const struct pf_list *l, size_t i, char *buf, size_t size)
{
    snprintf(buf, size, "%s entry %zu (%s%s%s)", l->setting, i + 1, l->v[i].name,
             l->v[i].arg ? " " : "", l->v[i].arg ? l->v[i].arg : "");
}

/* pf_check_open_relay - neither list refuses strangers' mail to foreign domains. */
static void pf_check_open_relay(struct doctor *d, const struct pf_list lists[2])
{
    char obs[1200] = "";
    int refused = 0;
    for (int k = 0; k < 2; k++) {
        long permit_at;
        long gate = pf_relay_gate(&lists[k], &permit_at);
        char what[400];
        if (gate >= 0) {
            pf_describe(&lists[k], (size_t)gate, what, sizeof(what));
            snprintf(obs, sizeof(obs), "relay attempts refused at %s", what);
            refused = 1;
            break;
        }
        size_t len = strlen(obs);
        if (permit_at >= 0) {
            pf_describe(&lists[k], (size_t)permit_at, what, sizeof(what));
            snprintf(obs + len, sizeof(obs) - len,
                     "%s%s accepts everything before any "
                     "reject_unauth_destination",
                     len ? "; " : "", what);
        } else {
            snprintf(obs + len, sizeof(obs) - len, "%s%s has no reject_unauth_destination%s",
                     len ? "; " : "", lists[k].setting, lists[k].n ? "" : " (it is empty)");
        }
    }
    if (refused)
        doctor_report_add(d->report, DOCTOR_OK, "postfix", "open relay", obs, NULL, NULL);
    else
        doctor_report_add(
            d->report, DOCTOR_FAIL, "postfix", "open relay", obs,
            "an open relay: anyone can send mail through this server; it is found and "
            "abused within hours, then blocklisted everywhere",
            "in main.cf: smtpd_relay_restrictions = permit_mynetworks, "
            "permit_sasl_authenticated, reject_unauth_destination (no plain 'permit' "
            "before it)");
}

/* pf_check_mynetworks - a network so wide that permit_mynetworks lets the world relay. */
static void pf_check_mynetworks(struct doctor *d, const struct pf_list lists[2])
{
    int used = 0;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < lists[k].n; i++)
            if (strcasecmp(lists[k].v[i].name, "permit_mynetworks") == 0)
                used = 1;
    if (!used)
        return;
    char **nets = plist_split(d->cfg->mynetworks);
    for (size_t i = 0; nets[i]; i++) {
        const char *slash = strrchr(nets[i], '/');
        if (nets[i][0] == '!' || nets[i][0] == '/' || !slash || strchr(nets[i], ':') == nets[i])
            continue;
        long bits = strtol(slash + 1, NULL, 10);
        int v6 = memchr(nets[i], ':', (size_t)(slash - nets[i])) != NULL;
        if (bits < (v6 ? 16 : 8)) {
            char obs[400];
            snprintf(obs, sizeof(obs), "mynetworks contains %s, and permit_mynetworks trusts it",
                     nets[i]);
            doctor_report_add(
                d->report, DOCTOR_FAIL, "postfix", "mynetworks", obs,
                "every client in that network may relay: an open relay in practice",
                "list only your own networks in mynetworks (127.0.0.0/8 [::1]/128 and "
                "your LAN)");
        }
    }
    plist_free(nets);
}

/* pf_check_action - what Postfix does with the mail when the policy service fails. */
static void pf_check_action(struct doctor *d, const char *subject, const char *action)
{
    char obs[400];
    snprintf(obs, sizeof(obs), "%s", action);
    const char *a = action;
    while (*a == ' ')
        a++;
    if ((a[0] == '4' && a[1] >= '0' && a[1] <= '9') || strncasecmp(a, "DEFER", 5) == 0) {
        doctor_report_add(d->report, DOCTOR_OK, "postfix", subject, obs, NULL, NULL);
    } else if (a[0] == '5' || strncasecmp(a, "REJECT", 6) == 0 ||
               strncasecmp(a, "DISCARD", 7) == 0) {
        doctor_report_add(
            d->report, DOCTOR_FAIL, "postfix", subject, obs,
            "a permanent refusal when policyd is down or slow: senders bounce the mail "
            "and it is lost",
            "smtpd_policy_service_default_action = 451 4.3.5 Server configuration "
            "problem (Postfix's default: the sender retries)");
    } else if (strncasecmp(a, "DUNNO", 5) == 0) {
        /* etc/main.cf.snippet's choice: Postfix's own rules after the service still decide. */
        snprintf(obs, sizeof(obs),
                 "%s: when policyd is down, mail flows on Postfix's own rules "
                 "(reject_unauth_destination after the service)",
                 action);
        doctor_report_add(d->report, DOCTOR_OK, "postfix", subject, obs, NULL, NULL);
    } else if (strncasecmp(a, "OK", 2) == 0 || strncasecmp(a, "PERMIT", 6) == 0) {
        doctor_report_add(
            d->report, DOCTOR_FAIL, "postfix", subject, obs,
            "when policyd is down or slow, Postfix accepts every recipient, skipping "
            "the rules after the service, reject_unauth_destination included: an open "
            "relay",
            "smtpd_policy_service_default_action = DUNNO (Postfix's rules decide) or "
            "451 4.3.5 Server configuration problem (the sender retries)");
    } else if (strncasecmp(a, "PREPEND", 7) == 0) {
        doctor_report_add(d->report, DOCTOR_WARN, "postfix", subject, obs,
                          "when policyd is down, Postfix adds a header and goes on: check that is "
                          "what you want",
                          "smtpd_policy_service_default_action = DUNNO or 451 4.3.5 Server "
                          "configuration problem");
    } else {
        doctor_report_add(d->report, DOCTOR_WARN, "postfix", subject, obs,
                          "not a temporary refusal: what happens to the mail when policyd is down "
                          "is unclear",
                          "smtpd_policy_service_default_action = 451 4.3.5 Server configuration "
                          "problem");
    }
}

/* pf_check_timeout - Postfix must wait longer than our request_deadline. */
static void pf_check_timeout(struct doctor *d, const char *subject, const char *text)
{
    long ms;
    char obs[400];
    long deadline = d->cfg->request_deadline;
    if (units_parse_time(text, &ms) != 0) {
        snprintf(obs, sizeof(obs), "'%s' is not a Postfix time (100s, 2m)", text);
        doctor_report_add(d->report, DOCTOR_WARN, "postfix", subject, obs,
                          "Postfix refuses to start smtpd with it",
                          "smtpd_policy_service_timeout = 100s");
        return;
    }
    snprintf(obs, sizeof(obs), "%s (%ld ms) against request_deadline %ld ms", text, ms, deadline);
    if (ms < deadline + TIMEOUT_MARGIN_MS) {
        char fix[300];
        snprintf(fix, sizeof(fix),
                 "smtpd_policy_service_timeout = %lds in main.cf (or more), or a shorter "
                 "request_deadline in policyd.conf",
                 (deadline + TIMEOUT_MARGIN_MS + 999) / 1000 + 1);
        doctor_report_add(d->report, DOCTOR_FAIL, "postfix", subject, obs,
                          "Postfix gives up before we answer: a slow answer turns into the default "
                          "action and a 'problem talking to server' warning",
                          fix);
    } else {
        doctor_report_add(d->report, DOCTOR_OK, "postfix", subject, obs, NULL, NULL);
    }
}

/* pf_is_trusted_permit - permits that accept clients policyd skips anyway. */
static int pf_is_trusted_permit(const char *name)
{
    return strcasecmp(name, "permit_mynetworks") == 0 ||
           strcasecmp(name, "permit_sasl_authenticated") == 0;
}

/* pf_can_permit - 1 if a restriction may accept the message, ending the list before the ones
 * after it run (only the plain rejects and deferrals never do). */
static int pf_can_permit(const char *name)
{
    return strncasecmp(name, "reject", 6) != 0 && strncasecmp(name, "defer", 5) != 0;
}

/* pf_check_end_of_data - the ratelimit check counts bytes, trues up recipients and gives back
 * the reservations of messages that end without END-OF-MESSAGE (RSET, QUIT, a lost client, DATA
 * refused) only when Postfix also asks at END-OF-MESSAGE (smtpd_end_of_data_restrictions), for
 * every message: one permitted before check_policy_service would be taken for an aborted one. */
static void pf_check_end_of_data(struct doctor *d)
{
    const struct config *cfg = d->cfg;
    if (!plist_contains(cfg->checks, "ratelimit"))
        return;
    struct pf_list eod;
    pf_list_parse(&eod, "smtpd_end_of_data_restrictions", cfg->smtpd_end_of_data_restrictions);
    int asked = 0;
    const char *before = NULL; /* a restriction before check_policy_service that may permit */
    char before_name[128] = "";
    for (size_t i = 0; i < eod.n && !asked; i++) {
        if (strcasecmp(eod.v[i].name, "check_policy_service") == 0)
            asked = 1;
        else if (!before && pf_can_permit(eod.v[i].name))
            before = eod.v[i].name;
    }
    if (before)
        snprintf(before_name, sizeof(before_name), "%s", before);
    pf_list_free(&eod);
    int bytes = strstr(cfg->ratelimit_rules, "count=bytes") != NULL;
    char obs[600];
    if (asked && before_name[0]) {
        snprintf(obs, sizeof(obs),
                 "smtpd_end_of_data_restrictions asks a policy service, but after %s", before_name);
        doctor_report_add(d->report, DOCTOR_WARN, "postfix", "ratelimit end of data", obs,
                          "a message accepted by it never reaches policyd at END-OF-MESSAGE: its "
                          "bytes are not counted, and its recipients and message are given back "
                          "as if it had been aborted",
                          "in main.cf: put check_policy_service first in "
                          "smtpd_end_of_data_restrictions");
        return;
    }
    if (asked) {
        doctor_report_add(d->report, DOCTOR_OK, "postfix", "ratelimit end of data",
                          "smtpd_end_of_data_restrictions asks a policy service: bytes are "
                          "counted and recipients trued up; a message that ends without "
                          "END-OF-MESSAGE (RSET, QUIT, lost client, DATA refused) gives its "
                          "reservations back",
                          NULL, NULL);
        return;
    }
    if (!bytes) {
        doctor_report_add(d->report, DOCTOR_OK, "postfix", "ratelimit end of data",
                          "smtpd_end_of_data_restrictions has no check_policy_service: "
                          "recipients refused after policyd's RCPT answer, and the recipients "
                          "and message of one that never ends (RSET, QUIT, lost client, DATA "
                          "refused), stay counted until their window passes (add "
                          "check_policy_service there for exact counting)",
                          NULL, NULL);
        return;
    }
    doctor_report_add(d->report, DOCTOR_WARN, "postfix", "ratelimit end of data",
                      "smtpd_end_of_data_restrictions has no check_policy_service and "
                      "ratelimit_rules count bytes",
                      "rules with count=bytes never count: the size is known only at the end of "
                      "the message; aborted messages keep their reservations until their window "
                      "passes",
                      "in main.cf: smtpd_end_of_data_restrictions = check_policy_service (the "
                      "same service as in smtpd_recipient_restrictions)");
}

void doctor_wiring(struct doctor *d)
{
    const struct config *cfg = d->cfg;
    struct pf_list lists[2];
    pf_list_parse(&lists[0], "smtpd_relay_restrictions", cfg->smtpd_relay_restrictions);
    pf_list_parse(&lists[1], "smtpd_recipient_restrictions", cfg->smtpd_recipient_restrictions);

    /* Our listeners. */
    char **listen = plist_split(cfg->listen);
    size_t nours = 0;
    while (listen[nours])
        nours++;
    struct pf_addr *ours = xcalloc(nours + 1, sizeof(*ours));
    size_t nvalid = 0;
    for (size_t i = 0; i < nours; i++)
        if (pf_addr_parse(listen[i], &ours[nvalid]) == 0)
            nvalid++;

    /* The check_policy_service entries, ours first found in evaluation order. */
    struct pf_service svc, found;
    memset(&found, 0, sizeof(found));
    int have = 0;
    char others[600] = "";
    int matches = 0;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < lists[k].n; i++) {
            if (strcasecmp(lists[k].v[i].name, "check_policy_service") != 0)
                continue;
            memset(&svc, 0, sizeof(svc));
            svc.list = &lists[k];
            svc.index = i;
            pf_service_parse(lists[k].v[i].arg, &svc);
            struct pf_addr a;
            int match = 0;
            if (pf_addr_parse(svc.addr, &a) == 0)
                for (size_t j = 0; j < nvalid && !match; j++)
                    match = pf_addr_match(&a, &ours[j]);
            if (match && !have++)
                found = svc;
            matches += match;
            if (!match) {
                size_t len = strlen(others);
                snprintf(others + len, sizeof(others) - len, "%s%s", len ? ", " : "", svc.addr);
            }
        }
    }

    char obs[1500], fix[800], where[400], suggest[600] = "";
    if (nvalid)
        pf_suggested_service(&ours[0], suggest, sizeof(suggest));
    if (!have) {
        snprintf(obs, sizeof(obs),
                 "no check_policy_service for %s in smtpd_recipient_restrictions or "
                 "smtpd_relay_restrictions%s%s%s",
                 cfg->listen, others[0] ? " (policy services found: " : "", others,
                 others[0] ? ")" : "");
        snprintf(fix, sizeof(fix),
                 "in main.cf: smtpd_recipient_restrictions = permit_mynetworks, "
                 "permit_sasl_authenticated, check_policy_service %s, "
                 "reject_unauth_destination%s",
                 suggest,
                 strncmp(suggest, "unix:/", 6) == 0
                     ? " (smtpd runs chrooted in /var/spool/postfix on many systems: put the "
                       "socket under /var/spool/postfix/private and write unix:private/NAME)"
                     : "");
        doctor_report_add(d->report, DOCTOR_FAIL, "postfix", "check_policy_service", obs,
                          "Postfix does not ask policyd: none of its checks run", fix);
    } else {
        const struct pf_list *l = found.list;
        pf_describe(l, found.index, where, sizeof(where));
        /* Entries before it in its own list that accept mail it then never sees. */
        char trusted[300] = "", skipped[600] = "", tables[600] = "";
        for (size_t i = 0; i < found.index; i++) {
            const struct pf_entry *e = &l->v[i];
            char *buf = pf_is_trusted_permit(e->name)            ? trusted
                        : strncasecmp(e->name, "permit", 6) == 0 ? skipped
                        : strncasecmp(e->name, "check_", 6) == 0 &&
                                strcasecmp(e->name, "check_policy_service") != 0
                            ? tables
                            : NULL;
            if (!buf)
                continue;
            size_t size = buf == skipped  ? sizeof(skipped)
                          : buf == tables ? sizeof(tables)
                                          : sizeof(trusted);
            size_t len = strlen(buf);
            snprintf(buf + len, size - len, "%s%s%s%s", len ? ", " : "", e->name, e->arg ? " " : "",
                     e->arg ? e->arg : "");
        }
        snprintf(obs, sizeof(obs), "%s%s%s%s%s%s%s", where,
                 trusted[0] ? "; not asked for clients accepted earlier by " : "", trusted,
                 trusted[0] ? " (policyd would skip them too)" : "",
                 tables[0] ? "; nor for mail these tables answer OK: " : "", tables,
                 tables[0] ? " (an access table may accept: check its OK entries)" : "");
        doctor_report_add(d->report, DOCTOR_OK, "postfix", "check_policy_service", obs, NULL, NULL);
        if (matches > 1) {
            snprintf(obs, sizeof(obs),
                     "listed %d times in smtpd_relay_restrictions and "
                     "smtpd_recipient_restrictions",
                     matches);
            doctor_report_add(
                d->report, DOCTOR_WARN, "postfix", "check_policy_service", obs,
                "Postfix asks policyd once per listing for every recipient: twice the "
                "work, and the same diagnosis logged twice",
                "keep one check_policy_service (before reject_unauth_destination)");
        }
        if (skipped[0]) {
            snprintf(obs, sizeof(obs), "before it in %s: %s", l->setting, skipped);
            snprintf(fix, sizeof(fix),
                     "move check_policy_service %s before %s in %s, unless skipping that mail "
                     "is intended",
                     found.addr, skipped, l->setting);
            doctor_report_add(d->report, DOCTOR_WARN, "postfix", "check_policy_service", obs,
                              "mail accepted by these entries never reaches policyd: its checks do "
                              "not run for it (permit_auth_destination: all mail to your own "
                              "domains)",
                              fix);
        }

        /* The relay check only sees relay attempts if Postfix has not refused them already. */
        if (plist_contains(cfg->checks, "relay")) {
            const struct pf_list *gl = NULL;
            size_t gi = 0;
            for (int k = 0; k < 2 && !gl; k++)
                for (size_t i = 0; i < lists[k].n && !gl; i++) {
                    const char *n = lists[k].v[i].name;
                    if (strcasecmp(n, "reject_unauth_destination") == 0 ||
                        strcasecmp(n, "defer_unauth_destination") == 0) {
                        gl = &lists[k];
                        gi = i;
                    }
                }
            int before = gl && (gl == l ? gi > found.index : gl > l);
            if (gl && !before) {
                char gate[400];
                pf_describe(gl, gi, gate, sizeof(gate));
                snprintf(obs, sizeof(obs), "%s comes after %s", where, gate);
                if (gl != l)
                    snprintf(fix, sizeof(fix),
                             "add check_policy_service %s to smtpd_relay_restrictions before "
                             "%s (and drop it from %s), or remove 'relay' from checks",
                             found.addr, gl->v[gi].name, l->setting);
                else
                    snprintf(fix, sizeof(fix),
                             "move check_policy_service %s before %s in %s, or remove 'relay' "
                             "from checks",
                             found.addr, gl->v[gi].name, l->setting);
                doctor_report_add(d->report, DOCTOR_WARN, "postfix", "relay check", obs,
                                  "Postfix refuses relay attempts itself before asking policyd: "
                                  "the relay check never sees them and logs no diagnosis",
                                  fix);
            } else {
                snprintf(obs, sizeof(obs), "policyd is asked before Postfix's own relay refusal");
                doctor_report_add(d->report, DOCTOR_OK, "postfix", "relay check", obs, NULL, NULL);
            }
        }
    }

    pf_check_open_relay(d, lists);
    pf_check_mynetworks(d, lists);
    pf_check_end_of_data(d);

    /* What the policy client does when we fail, and how long it waits. */
    if (have && found.default_action[0])
        pf_check_action(d, "check_policy_service default_action", found.default_action);
    else
        pf_check_action(d, "smtpd_policy_service_default_action",
                        cfg->smtpd_policy_service_default_action);
    if (have && found.timeout[0])
        pf_check_timeout(d, "check_policy_service timeout", found.timeout);
    else
        pf_check_timeout(d, "smtpd_policy_service_timeout", cfg->smtpd_policy_service_timeout);

    plist_free(listen);
    free(ours);
    pf_list_free(&lists[0]);
    pf_list_free(&lists[1]);
}
