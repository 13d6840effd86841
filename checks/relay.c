/*
 * relay.c - the relay decision, placed before Postfix's reject_unauth_destination.
 *
 * Mail to a domain this server hosts or relays for is not relaying: DUNNO. Otherwise the client
 * must be in mynetworks, authenticated (sasl_username), or present a listed TLS client
 * certificate; if not, the answer is relay_action (554 5.7.1 by default) and the diagnosis
 * names every reason and the fix. Allowed relaying answers DUNNO, never OK: an OK before
 * reject_unauth_destination would make an open relay out of any later mistake.
 * The check is synchronous: everything it needs was compiled when the configuration loaded.
 */
/* SPDX-License-Identifier: MIT */
#include "checks/check.h"

#include "policyd/config.h"
#include "policyd/maps/domainlist.h"
#include "policyd/maps/netlist.h"
#include "policyd/lib/addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum relay_target { TARGET_LOCAL, TARGET_FOREIGN, TARGET_ERROR };

/* relay_domain_of - the domain part of an address ("" when unqualified). */
static const char *relay_domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

/* relay_show - a list value for a diagnosis: "(empty)" or the value, shortened. */
static void relay_show(char *out, size_t outlen, const char *value)
{
    if (!value || !*value)
        snprintf(out, outlen, "empty");
    else if (strlen(value) > 120)
        snprintf(out, outlen, "%.117s...", value);
    else
        snprintf(out, outlen, "%s", value);
}

/* relay_literal_is_local - [192.0.2.1] / [IPv6:2001:db8::1] naming this host. */
static int relay_literal_is_local(const struct config *cfg, const char *domain)
{
    char addr[INET6_ADDRSTRLEN + 8];
    size_t len = strlen(domain);
    if (len < 3 || domain[0] != '[' || domain[len - 1] != ']' || len - 2 >= sizeof(addr))
        return 0;
    memcpy(addr, domain + 1, len - 2);
    addr[len - 2] = 0;
    const char *a = addr;
    if (strncasecmp(a, "IPv6:", 5) == 0)
        a += 5;
    return netlist_match(cfg->net_local, a, NULL) == 1;
}

/*
 * relay_classify - is domain one this server receives mail for? Sets *list to the setting that
 * matched. TARGET_ERROR when a table could not be read.
 */
static enum relay_target relay_classify(const struct config *cfg, const char *domain,
                                        const char **list, const char **entry)
{
    const struct domainlist *lists[] = {
        cfg->dom_mydestination,
        cfg->dom_virtual_alias_domains,
        cfg->dom_virtual_mailbox_domains,
        cfg->dom_relay_domains,
    };
    *list = NULL;
    *entry = NULL;
    if (*domain == 0) {
        *list = "unqualified address (local)";
        return TARGET_LOCAL;
    }
    if (domain[0] == '[') {
        if (relay_literal_is_local(cfg, domain)) {
            *list = "address literal of this host";
            return TARGET_LOCAL;
        }
        return TARGET_FOREIGN;
    }
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
        int rc = domainlist_match(lists[i], domain, entry);
        if (rc < 0) {
            *list = domainlist_name(lists[i]);
            return TARGET_ERROR;
        }
        if (rc == 1) {
            *list = domainlist_name(lists[i]);
            return TARGET_LOCAL;
        }
    }
    return TARGET_FOREIGN;
}

/* relay_cert_listed - the client certificate's fingerprint is in relay_clientcerts. */
static const char *relay_cert_listed(const struct config *cfg, const struct request *req)
{
    const char *prints[2] = {request_get(req, ATTR_CCERT_FINGERPRINT),
                             request_get(req, ATTR_CCERT_PUBKEY_FINGERPRINT)};
    for (size_t k = 0; k < 2; k++) {
        if (!*prints[k])
            continue;
        for (size_t i = 0; cfg->relay_clientcerts_v[i]; i++)
            if (strcasecmp(cfg->relay_clientcerts_v[i], prints[k]) == 0)
                return prints[k];
    }
    return NULL;
}

static enum check_status relay_run(struct check_call *call)
{
    const struct request *req = check_call_request(call);
    const struct config *cfg = check_call_config(call);
    const char *entry, *list;

    if (request_state(req) != STATE_RCPT)
        return CHECK_DONE; /* relaying is decided per recipient */
    const char *rcpt = request_get(req, ATTR_RECIPIENT);
    if (!*rcpt)
        return CHECK_DONE;
    const char *rdomain = relay_domain_of(rcpt);

    enum relay_target target = relay_classify(cfg, rdomain, &list, &entry);
    if (target == TARGET_LOCAL) {
        check_call_note(call, "recipient domain %s is local: %s%s%s", *rdomain ? rdomain : "(none)",
                        list, entry ? " entry " : "", entry ? entry : "");
        return CHECK_DONE;
    }
    if (target == TARGET_ERROR) {
        char cause[512];
        snprintf(cause, sizeof(cause), "the %s table could not be read while checking %s", list,
                 rdomain);
        check_call_subject(call, "table", list);
        check_call_defer(call, "relay.table_error", NULL, cause,
                         "see the warning above about the table and fix it");
        return CHECK_DONE;
    }

    /* The recipient is foreign: relaying. Who is asking? */
    const char *addr = request_get(req, ATTR_CLIENT_ADDRESS);
    int in_mynetworks = netlist_match(cfg->net_mynetworks, addr, &entry);
    if (in_mynetworks == 1) {
        check_call_note(call, "relay to %s allowed: client %s is in mynetworks (%s)", rdomain, addr,
                        entry);
        return CHECK_DONE;
    }
    const char *sasl = request_get(req, ATTR_SASL_USERNAME);
    if (*sasl) {
        check_call_note(call, "relay to %s allowed: client authenticated as %s", rdomain, sasl);
        return CHECK_DONE;
    }
    const char *cert = relay_cert_listed(cfg, req);
    if (cert) {
        check_call_note(call, "relay to %s allowed: client certificate %s is in relay_clientcerts",
                        rdomain, cert);
        return CHECK_DONE;
    }

    /* Denied. Which explanation fits: a gateway address, one of our users, or a stranger. */
    const char *private_kind = addr_private_kind(addr);
    const char *sender = request_get(req, ATTR_SENDER);
    const char *sdomain = relay_domain_of(sender);
    const char *slist = NULL, *sentry = NULL;
    enum relay_target starget =
        *sender && *sdomain ? relay_classify(cfg, sdomain, &slist, &sentry) : TARGET_ERROR;
    const char *code = private_kind              ? "relay.container_gateway"
                       : starget == TARGET_LOCAL ? "relay.local_sender"
                                                 : "relay.not_mynetworks";
    if (check_call_explained(call, code)) {
        /* Explained lately for this client: a short line, nothing to compose (a flood of
         * probes costs little more than the answer). */
        check_call_action(call, code, cfg->relay_action, NULL, NULL);
        return CHECK_DONE;
    }

    /* Say every reason, and the fix for the case that looks most likely. */
    char cause[2048], fix[1024], shown[5][160];
    relay_show(shown[0], sizeof(shown[0]), netlist_text(cfg->net_mynetworks));
    relay_show(shown[1], sizeof(shown[1]), domainlist_text(cfg->dom_mydestination));
    relay_show(shown[2], sizeof(shown[2]), domainlist_text(cfg->dom_virtual_alias_domains));
    relay_show(shown[3], sizeof(shown[3]), domainlist_text(cfg->dom_virtual_mailbox_domains));
    relay_show(shown[4], sizeof(shown[4]), domainlist_text(cfg->dom_relay_domains));

    const char *client_name = request_get(req, ATTR_CLIENT_NAME);
    size_t n = (size_t)snprintf(
        cause, sizeof(cause),
        "relay denied: client %s%s%s%s is not in mynetworks (%s)%s%s and did not authenticate",
        addr, *client_name ? " (" : "", client_name, *client_name ? ")" : "", shown[0],
        in_mynetworks == 0 && entry ? ", excluded by " : "",
        in_mynetworks == 0 && entry ? entry : "");
    const char *ccert = request_get(req, ATTR_CCERT_FINGERPRINT);
    if (*ccert && n < sizeof(cause))
        n += (size_t)snprintf(cause + n, sizeof(cause) - n,
                              "; its TLS client certificate %s is not in relay_clientcerts", ccert);
    if (n < sizeof(cause))
        n += (size_t)snprintf(cause + n, sizeof(cause) - n,
                              "; recipient domain %s is in none of mydestination (%s), "
                              "virtual_alias_domains (%s), virtual_mailbox_domains (%s), "
                              "relay_domains (%s)",
                              rdomain, shown[1], shown[2], shown[3], shown[4]);

    const char *port = request_get(req, ATTR_SERVER_PORT);

    if (private_kind && n < sizeof(cause)) {
        n += (size_t)snprintf(cause + n, sizeof(cause) - n,
                              "; note: %s is a %s address: when clients reach Postfix through a "
                              "container network, NAT or a proxy, Postfix sees the gateway, not "
                              "the real client",
                              addr, private_kind);
    }
    if (starget == TARGET_LOCAL && n < sizeof(cause)) {
        n += (size_t)snprintf(cause + n, sizeof(cause) - n,
                              "; the sender %s is in a domain this server hosts (%s): looks like "
                              "one of your users sending without logging in (or a forgery)",
                              sender, slist);
    } else if (starget == TARGET_FOREIGN && n < sizeof(cause)) {
        n += (size_t)snprintf(cause + n, sizeof(cause) - n,
                              "; sender domain %s and recipient domain %s are both foreign to "
                              "this server: the classic shape of an open-relay probe",
                              sdomain, rdomain);
    }
    if (strcmp(port, "25") == 0 && n < sizeof(cause)) {
        n += (size_t)snprintf(cause + n, sizeof(cause) - n,
                              "; the client connected to port 25, where mail from other servers "
                              "arrives; authenticated submission belongs on port 587 with SASL");
    }

    if (private_kind) {
        snprintf(fix, sizeof(fix),
                 "if the clients behind %s are yours, add that network to mynetworks (%s) - or "
                 "better, have them authenticate with SASL on port 587; if %s is a domain you "
                 "receive mail for, add it to relay_domains or virtual_mailbox_domains",
                 addr, private_kind, rdomain);
    } else if (starget == TARGET_LOCAL) {
        snprintf(fix, sizeof(fix),
                 "configure the mail client of %s to send through port 587 with authentication "
                 "(SASL); if %s is a server of yours, add it to mynetworks",
                 sender, addr);
    } else {
        snprintf(fix, sizeof(fix),
                 "if %s is your client, add it to mynetworks or have it authenticate with SASL on "
                 "port 587; if %s is a domain you receive mail for, add it to relay_domains "
                 "(backup MX, gateway) or virtual_mailbox_domains; otherwise nothing to fix: "
                 "this server refused to be an open relay",
                 addr, rdomain);
    }
    check_call_action(call, code, cfg->relay_action, cause, fix);
    return CHECK_DONE;
}

const struct check_def relay_check = {
    .name = "relay",
    .configure = NULL,
    .unconfigure = NULL,
    .run = relay_run,
    .cancel = NULL,
};
