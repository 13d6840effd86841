/*
 * doctor_resolve.c - the doctor's one way to ask DNS: a lookup on the shared engine, waited
 * for by running the event loop until its answer comes (the doctor is a command, not the
 * daemon: waiting is fine here). Apart from the driver so sections do not call back into it.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/doctor/doctor_section.h"

#include "policyd/dns/dns.h"

#include <event2/event.h>

#include <stddef.h>

struct doctor_wait {
    const struct dns_result *r;
    int done;
};

static void doctor_resolved(const struct dns_result *r, void *arg)
{
    struct doctor_wait *w = arg;
    w->r = dns_result_ref(r);
    w->done = 1;
}

const struct dns_result *doctor_resolve(struct doctor *d, int type, const char *name)
{
    struct doctor_wait w = {NULL, 0};
    dns_lookup(d->dns, (enum dns_type)type, name, doctor_resolved, &w);
    while (!w.done)
        event_base_loop(d->base, EVLOOP_ONCE);
    return w.r;
}
