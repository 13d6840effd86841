/*
 * dkim.c - the "dkim" check: warns that outbound mail will fail DKIM. Never decides.
 *
 * For a RCPT from a client that sends outbound mail through us (in mynetworks, or
 * authenticated), the sender's domain is looked up in the daemon's latest DKIM key check
 * (policyd/mail/dkim_keys.c: at start and every dkim_check_interval). When a key of that domain has
 * no record, a revoked one or one that does not match, the diagnosis line says so and how to
 * fix it. The check answers from that cached result only: no DNS, no waiting, no verdict.
 */
#include "checks/check.h"

#include "policyd/config.h"
#include "policyd/mail/dkim_keys.h"
#include "policyd/lib/hash.h"
#include "policyd/maps/netlist.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The messages warned about lately (Postfix's instance): one warning per message, not one per
 * recipient. */
#define DKIM_SEEN 256
struct dkim_state {
    uint64_t seen[DKIM_SEEN];
    size_t next;
};

static void *dkim_configure(const struct config *cfg, char *err, size_t errlen)
{
    (void)cfg;
    (void)err;
    (void)errlen;
    struct dkim_state *st = calloc(1, sizeof(*st));
    if (!st)
        abort();
    return st;
}

static void dkim_unconfigure(void *st)
{
    free(st);
}

/* dkim_first_time - 1 the first time this message (instance) is seen lately. */
static int dkim_first_time(struct dkim_state *st, const char *instance)
{
    if (!*instance)
        return 1;
    uint64_t h = hash_str(instance);
    for (size_t i = 0; i < DKIM_SEEN; i++)
        if (st->seen[i] == h)
            return 0;
    st->seen[st->next] = h;
    st->next = (st->next + 1) % DKIM_SEEN;
    return 1;
}

static enum check_status dkim_check_run(struct check_call *call)
{
    const struct request *req = check_call_request(call);
    const struct config *cfg = check_call_config(call);
    if (request_state(req) != STATE_RCPT)
        return CHECK_DONE;
    const char *sasl = request_get(req, ATTR_SASL_USERNAME);
    const char *addr = request_get(req, ATTR_CLIENT_ADDRESS);
    const char *entry = NULL;
    int trusted = netlist_match(cfg->net_mynetworks, addr, &entry) == 1;
    if (!*sasl && !trusted)
        return CHECK_DONE; /* inbound mail: someone else's DKIM */
    const char *sender = request_get(req, ATTR_SENDER);
    const char *at = strrchr(sender, '@');
    if (!at || !at[1])
        return CHECK_DONE;
    const char *domain = at + 1;
    const char *problem = dkim_keys_problem(domain);
    if (!problem) {
        check_call_note(call, "no known DKIM key problem for %s", domain);
        return CHECK_DONE;
    }
    if (!dkim_first_time(check_call_state(call), request_get(req, ATTR_INSTANCE))) {
        check_call_note(call, "DKIM key problem of %s already reported for this message", domain);
        return CHECK_DONE;
    }
    char action[512], cause[1536];
    snprintf(action, sizeof(action), "WARN outbound mail from %s will fail DKIM", domain);
    if (*sasl)
        snprintf(cause, sizeof(cause),
                 "client authenticated as %s sends from %s, whose signing %s; receivers will "
                 "find the signature invalid",
                 sasl, domain, problem);
    else
        snprintf(cause, sizeof(cause),
                 "client %s (mynetworks %s) sends from %s, whose signing %s; receivers will find "
                 "the signature invalid",
                 addr, entry ? entry : "", domain, problem);
    const char *fix = dkim_keys_problem_fix(domain);
    check_call_reject(call, action, cause, fix ? fix : "");
    return CHECK_DONE;
}

const struct check_def dkim_check = {
    .name = "dkim",
    .configure = dkim_configure,
    .unconfigure = dkim_unconfigure,
    .run = dkim_check_run,
    .cancel = NULL,
};
