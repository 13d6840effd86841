/*
 * dns.c - c-ares on the libevent loop: the engine's interface, its servers and its flights.
 *
 * Each server gets its own c-ares channel (one server, one try), its sockets watched by
 * persistent libevent events (ARES_OPT_SOCK_STATE_CB) and a timer re-armed from ares_timeout(),
 * readiness handed to ares_process_fd(). We walk the servers ourselves: `tries` rounds, live
 * servers first, a server that keeps timing out set aside for a while, the SERVFAIL or REFUSED
 * of each server seen (c-ares 1.18 hides the rcode behind "could not contact") and the time
 * bound exact (c-ares 1.18 doubles the timeout every round); tries go out at most 256 per turn
 * of the loop, so a burst never outruns the socket buffers. Every (type, name) has one cache
 * entry (dns_cache.c); while its query (a flight) is in flight the flight collects waiters, so
 * identical lookups cost one query. The answer is read once (dns_wire.c) into an immutable,
 * reference-counted result, kept for its TTL, and handed to every waiter through the ready
 * list, which a zero-delay timer flushes: no callback ever runs inside a call. The engine owns
 * flights, lookups and server sets; the cache owns entries; a result belongs to whoever holds
 * a reference to it.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/dns/dns.h"

#include "policyd/dns/dns_cache.h"
#include "policyd/dns/dns_wire.h"
#include "policyd/lib/log.h"
#include "policyd/lib/units.h"
#include "policyd/lib/xalloc.h"

#include <ares.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DNS_MAX_SERVERS 16    /* bits of flight.skip */
#define DNS_EDNS_SIZE 1232    /* DNS flag day 2020 */
#define DNS_RCVBUF (1 << 20)  /* a burst of answers must not overflow the UDP socket */
#define DNS_DOWN_MIN_MS 1000  /* a server that timed out twice in a row is set aside ... */
#define DNS_DOWN_MAX_MS 60000 /* ... for 1 s, doubling while it stays silent, up to 60 s */
#define DNS_SEND_BATCH 256    /* queries sent per turn of the loop: answers are read in between */

struct qlist {
    struct dns_query *first, *last;
    size_t n;
};

struct dns_query {
    struct dns *dns;
    struct dns_flight *flight;    /* waiting for this flight; NULL once ready */
    const struct dns_result *res; /* ready: the result to deliver (a reference) */
    dns_callback cb;
    void *arg;
    struct dns_query *prev, *next;
};

struct sockev {
    ares_socket_t fd;
    struct event *ev;
};

struct server {
    struct dns_set *set;
    ares_channel ch;
    struct event *timer;
    struct sockev *socks;
    size_t nsocks;
    char label[64];       /* "127.0.0.1", "127.0.0.1:5353", "[::1]:5353" */
    int streak;           /* timeouts in a row */
    long long down_until; /* set aside until then (monotonic ms) */
    long long answered;   /* when it last answered anything (monotonic ms) */
    long down_for;
    unsigned long long queries, timeouts, servfails, refused; /* tries, for the metrics */
};

/* A server list with its channels; flights started on it keep it alive (refs). */
struct dns_set {
    struct dns *dns;
    int refs;
    long timeout_ms;
    int tries;
    struct dns_set *prev, *next;
    size_t n;
    struct server srv[DNS_MAX_SERVERS];
};

/* One query on its way through the servers, for one cache entry, and those waiting for it. */
struct dns_flight {
    struct dns_cache_entry *entry;
    struct dns_set *set;
    struct qlist waiters;
    unsigned char *qbuf;
    int qlen;
    int attempt, nattempts, sends, cur;
    unsigned skip; /* servers not to ask again: they answered SERVFAIL, REFUSED... */
    unsigned char order[DNS_MAX_SERVERS];
    struct {
        unsigned short timeouts;
        unsigned char rcode, refused;
        int error;
    } out[DNS_MAX_SERVERS];
    unsigned char *raw; /* the last SERVFAIL/REFUSED answer, for the result */
    size_t rawlen;
    struct dns_flight *qnext;         /* in the send queue */
    struct dns_flight *fprev, *fnext; /* every flight of the engine */
};

struct dns {
    struct event_base *base;
    struct dns_options opts;
    char *servers; /* opts.servers, owned */
    struct dns_set *set;
    struct dns_set *sets; /* all sets: the current one and those still draining */
    struct event *deliver, *reap, *sender;
    struct dns_flight *sendq, *sendq_last; /* flights waiting for their next try to be sent */
    struct dns_flight *flights;            /* all flights in flight */
    size_t ninflight;
    struct dns_cache *cache;
    struct qlist ready;
    struct dns_stats st;
};

static long long dns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* dns_event_new - event_new that never fails (its NULL means no memory). */
static struct event *dns_event_new(struct event_base *base, evutil_socket_t fd, short what,
                                   event_callback_fn cb, void *arg)
{
    struct event *ev = event_new(base, fd, what, cb, arg);
    if (!ev)
        xalloc_fail(sizeof(void *));
    return ev;
}

/* --- lists of lookups --- */

static void qlist_append(struct qlist *l, struct dns_query *q)
{
    q->next = NULL;
    q->prev = l->last;
    if (l->last)
        l->last->next = q;
    else
        l->first = q;
    l->last = q;
    l->n++;
}

static void qlist_remove(struct qlist *l, struct dns_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        l->first = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        l->last = q->prev;
    q->prev = q->next = NULL;
    l->n--;
}

/* --- delivery: never inside a call, always from the loop --- */

static void dns_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    (void)fd;
    (void)what;
    /* Only those ready now; lookups made by these callbacks wait for the next turn. */
    for (size_t n = dns->ready.n; n > 0 && dns->ready.first; n--) {
        struct dns_query *q = dns->ready.first;
        qlist_remove(&dns->ready, q);
        const struct dns_result *r = q->res;
        dns_callback cb = q->cb;
        void *cbarg = q->arg;
        free(q);
        cb(r, cbarg);
        dns_wire_unref(r);
    }
    if (dns->ready.first) {
        struct timeval zero = {0, 0};
        evtimer_add(dns->deliver, &zero);
    }
}

/* dns_make_ready - hand q a reference to r, for delivery at the next turn of the loop. */
static void dns_make_ready(struct dns *dns, struct dns_query *q, const struct dns_result *r)
{
    q->res = dns_wire_ref(r);
    q->flight = NULL;
    qlist_append(&dns->ready, q);
    if (!evtimer_pending(dns->deliver, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(dns->deliver, &zero);
    }
}

/* --- servers: one c-ares channel each, driven by the loop --- */

static void server_reschedule(struct server *srv)
{
    struct timeval tv, *t = ares_timeout(srv->ch, NULL, &tv);
    if (t)
        evtimer_add(srv->timer, t);
    else
        evtimer_del(srv->timer);
}

static void server_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    ares_process_fd(srv->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    server_reschedule(srv);
}

static void server_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    ares_process_fd(srv->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    server_reschedule(srv);
}

/* server_sock_state - c-ares opened, changed or closed a socket: watch it accordingly. */
static void server_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct server *srv = data;
    size_t i;
    for (i = 0; i < srv->nsocks && srv->socks[i].fd != fd; i++)
        ;
    if (!readable && !writable) {
        if (i < srv->nsocks) {
            event_free(srv->socks[i].ev);
            srv->socks[i] = srv->socks[--srv->nsocks];
        }
        return;
    }
    short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    if (i == srv->nsocks) {
        srv->socks = xreallocarray(srv->socks, srv->nsocks + 1, sizeof(*srv->socks));
        srv->socks[i].fd = fd;
        srv->socks[i].ev = NULL;
        srv->nsocks++;
    } else if (event_get_events(srv->socks[i].ev) == what) {
        return;
    }
    if (srv->socks[i].ev)
        event_free(srv->socks[i].ev);
    srv->socks[i].ev = dns_event_new(srv->set->dns->base, fd, what, server_io_cb, srv);
    if (event_add(srv->socks[i].ev, NULL) != 0)
        log_panic("DNS: server %s: cannot watch socket %d", srv->label, (int)fd);
}

static void server_alive(struct server *srv)
{
    srv->answered = dns_now();
    srv->streak = 0;
    srv->down_until = 0;
    srv->down_for = 0;
}

/* server_silent - srv timed out (or refused us, at_once): set it aside for a while. */
static void server_silent(struct server *srv, long long now, int at_once)
{
    srv->streak++;
    if ((srv->streak >= 2 || at_once) && now >= srv->down_until) {
        srv->down_for = srv->down_for ? srv->down_for * 2 : DNS_DOWN_MIN_MS;
        if (srv->down_for > DNS_DOWN_MAX_MS)
            srv->down_for = DNS_DOWN_MAX_MS;
        srv->down_until = now + srv->down_for;
    }
}

static void set_destroy(struct dns_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        struct server *srv = &set->srv[i];
        if (srv->ch)
            ares_destroy(srv->ch); /* closes its sockets through server_sock_state */
        for (size_t k = 0; k < srv->nsocks; k++)
            event_free(srv->socks[k].ev);
        free(srv->socks);
        if (srv->timer)
            event_free(srv->timer);
    }
    free(set);
}

/* dns_servers_csv - our list ("a, b c") as c-ares wants it ("a,b,c"). 0, or -1 if too long. */
static int dns_servers_csv(const char *servers, char *csv, size_t csvlen)
{
    size_t n = 0;
    for (const char *p = servers; *p; p++) {
        if (n + 2 >= csvlen)
            return -1;
        if (*p == ' ' || *p == '\t' || *p == ',') {
            if (n > 0 && csv[n - 1] != ',')
                csv[n++] = ',';
        } else {
            csv[n++] = *p;
        }
    }
    while (n > 0 && csv[n - 1] == ',')
        n--;
    csv[n] = 0;
    return 0;
}

/* set_new - a channel per server of servers (empty: /etc/resolv.conf's). NULL with err. */
static struct dns_set *set_new(struct dns *dns, const char *servers, long timeout_ms, int tries,
                               char *err, size_t errlen)
{
    ares_channel probe;
    struct ares_addr_port_node *nodes = NULL;
    char csv[2048];
    int rc;

    if (dns_servers_csv(servers, csv, sizeof(csv)) != 0) {
        snprintf(err, errlen, "dns_servers: list too long");
        return NULL;
    }
    /* The probe reads resolv.conf, or parses our list: c-ares knows the syntax. */
    if ((rc = ares_init(&probe)) != ARES_SUCCESS) {
        snprintf(err, errlen, "DNS: %s", ares_strerror(rc));
        return NULL;
    }
    if (*csv && (rc = ares_set_servers_ports_csv(probe, csv)) != ARES_SUCCESS) {
        snprintf(err, errlen, "dns_servers: '%s': %s", servers, ares_strerror(rc));
        ares_destroy(probe);
        return NULL;
    }
    rc = ares_get_servers_ports(probe, &nodes);
    ares_destroy(probe);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "DNS: %s", ares_strerror(rc));
        return NULL;
    }
    size_t n = 0;
    for (struct ares_addr_port_node *p = nodes; p; p = p->next)
        n++;
    if (n == 0 || n > DNS_MAX_SERVERS) {
        snprintf(err, errlen, "dns_servers: %zu servers (1 to %d)", n, DNS_MAX_SERVERS);
        ares_free_data(nodes);
        return NULL;
    }
    struct dns_set *set = xcalloc(1, sizeof(*set));
    set->dns = dns;
    set->refs = 1;
    set->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    set->tries = tries > 0 ? tries : 1;
    for (struct ares_addr_port_node *p = nodes; p; p = p->next) {
        struct server *srv = &set->srv[set->n++];
        struct ares_addr_port_node one = *p;
        struct ares_options ao;
        char a[INET6_ADDRSTRLEN];
        int port = p->udp_port ? p->udp_port : 53;

        srv->set = set;
        one.next = NULL;
        inet_ntop(p->family, &p->addr, a, sizeof(a));
        if (port == 53)
            snprintf(srv->label, sizeof(srv->label), "%s", a);
        else
            snprintf(srv->label, sizeof(srv->label), p->family == AF_INET6 ? "[%s]:%d" : "%s:%d", a,
                     port);
        memset(&ao, 0, sizeof(ao));
        ao.sock_state_cb = server_sock_state;
        ao.sock_state_cb_data = srv;
        ao.timeout = (int)set->timeout_ms;
        ao.tries = 1; /* our rounds, not c-ares', which double the timeout each time */
        /* NOCHECKRESP: SERVFAIL and REFUSED come to us (we try the next server ourselves). */
        ao.flags = ARES_FLAG_EDNS | ARES_FLAG_NOCHECKRESP | ARES_FLAG_NOSEARCH;
        ao.ednspsz = DNS_EDNS_SIZE;
        ao.socket_receive_buffer_size = DNS_RCVBUF;
        int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
                   ARES_OPT_EDNSPSZ | ARES_OPT_SOCK_RCVBUF;
        srv->timer = dns_event_new(dns->base, -1, 0, server_timer_cb, srv);
        if ((rc = ares_init_options(&srv->ch, &ao, mask)) != ARES_SUCCESS ||
            (rc = ares_set_servers_ports(srv->ch, &one)) != ARES_SUCCESS) {
            snprintf(err, errlen, "DNS: server %s: %s", srv->label, ares_strerror(rc));
            ares_free_data(nodes);
            set_destroy(set);
            return NULL;
        }
    }
    ares_free_data(nodes);
    return set;
}

static void dns_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    (void)fd;
    (void)what;
    for (struct dns_set *s = dns->sets, *next; s; s = next) {
        next = s->next;
        if (s->refs == 0) {
            if (s->prev)
                s->prev->next = s->next;
            else
                dns->sets = s->next;
            if (s->next)
                s->next->prev = s->prev;
            set_destroy(s);
        }
    }
}

/* set_unref - a set nobody uses is destroyed at the next turn, never inside c-ares. */
static void set_unref(struct dns_set *set)
{
    if (--set->refs == 0)
        event_active(set->dns->reap, EV_TIMEOUT, 0);
}

/* --- flights: one query through the servers --- */

static void flight_next(struct dns_flight *f);

/*
 * flight_queue - send f's next try at the next turn of the loop. Sends go out in batches with
 * the loop turning in between, so a burst of thousands of lookups (or of retries after a mass
 * timeout) never has more answers coming back at once than a socket buffer holds.
 */
static void flight_queue(struct dns_flight *f)
{
    struct dns *dns = f->set->dns;
    f->qnext = NULL;
    if (dns->sendq_last)
        dns->sendq_last->qnext = f;
    else
        dns->sendq = f;
    dns->sendq_last = f;
    if (!evtimer_pending(dns->sender, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(dns->sender, &zero);
    }
}

static void dns_sender_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *dns = arg;
    (void)fd;
    (void)what;
    for (int n = 0; n < DNS_SEND_BATCH && dns->sendq; n++) {
        struct dns_flight *f = dns->sendq;
        dns->sendq = f->qnext;
        if (!dns->sendq)
            dns->sendq_last = NULL;
        flight_next(f);
    }
    if (dns->sendq) {
        struct timeval zero = {0, 0};
        evtimer_add(dns->sender, &zero);
    }
}

/* flight_free - forget f (its waiters are the caller's). */
static void flight_free(struct dns *dns, struct dns_flight *f)
{
    if (f->fprev)
        f->fprev->fnext = f->fnext;
    else
        dns->flights = f->fnext;
    if (f->fnext)
        f->fnext->fprev = f->fprev;
    dns->ninflight--;
    if (f->qbuf)
        ares_free_string(f->qbuf);
    free(f->raw);
    free(f);
}

/* flight_finish - the entry's answer is r (reference taken over): cache it, wake waiters. */
static void flight_finish(struct dns_flight *f, struct dns_result *r)
{
    struct dns_cache_entry *e = f->entry;
    struct dns *dns = f->set->dns;
    struct qlist waiters = f->waiters;

    e->flight = NULL;
    set_unref(f->set);
    flight_free(dns, f);

    if (r->status == DNS_NXDOMAIN)
        dns->st.nxdomain++;
    else if (r->status == DNS_NODATA)
        dns->st.nodata++;
    else if (r->status == DNS_BADRESP)
        dns->st.other_errors++;
    dns_cache_answer(dns->cache, e, r, dns_now() + r->ttl_ms);
    while (waiters.first) {
        struct dns_query *q = waiters.first;
        qlist_remove(&waiters, q);
        dns_make_ready(dns, q, r);
    }
    dns->st.evicted += dns_cache_evict(dns->cache, dns->opts.cache_size);
}

static long dns_clamp(const struct dns *dns, long ttl_s)
{
    long long ms = ttl_s < 0 ? dns->opts.ttl_min_ms : (long long)ttl_s * 1000;
    if (ms < dns->opts.ttl_min_ms)
        ms = dns->opts.ttl_min_ms;
    if (ms > dns->opts.ttl_max_ms)
        ms = dns->opts.ttl_max_ms;
    return (long)ms;
}

/* flight_fail - every try failed: a temporary failure saying what each server did. */
static void flight_fail(struct dns_flight *f)
{
    struct dns_set *set = f->set;
    struct dns *dns = set->dns;
    char detail[512];
    size_t n = 0;
    int servfail = 0, timeouts = 0;

    detail[0] = 0;
    for (size_t i = 0; i < set->n && n < sizeof(detail); i++) {
        const char *label = set->srv[i].label, *sep = n ? "; " : "";
        size_t room = sizeof(detail) - n;
        if (f->out[i].rcode) {
            servfail |= f->out[i].rcode == DNS_WIRE_SERVFAIL;
            n += (size_t)snprintf(detail + n, room, "%s%s from %s", sep,
                                  dns_wire_rcode_name(f->out[i].rcode), label);
        } else if (f->out[i].timeouts) {
            timeouts = 1;
            n += (size_t)snprintf(detail + n, room, "%stimeout after %d tr%s of %ld ms (%s)", sep,
                                  f->out[i].timeouts, f->out[i].timeouts == 1 ? "y" : "ies",
                                  set->timeout_ms, label);
        } else if (f->out[i].refused) {
            n += (size_t)snprintf(detail + n, room, "%sconnection refused by %s", sep, label);
        } else if (f->out[i].error) {
            n += (size_t)snprintf(detail + n, room, "%s%s: %s", sep, label,
                                  ares_strerror(f->out[i].error));
        }
    }
    if (!detail[0])
        snprintf(detail, sizeof(detail), "no DNS server could be asked");
    if (servfail)
        dns->st.servfail++;
    else if (timeouts)
        dns->st.timeouts++;
    else
        dns->st.other_errors++;
    struct dns_cache_entry *e = f->entry;
    struct dns_result *r =
        dns_wire_result(e->type, e->name, DNS_TEMPFAIL, detail, f->raw, f->rawlen);
    r->ttl_ms = dns->opts.error_ttl_ms;
    flight_finish(f, r);
}

/* flight_cb - c-ares finished one try of f against server f->cur. */
static void flight_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_flight *f = arg;
    (void)timeouts;
    if (status == ARES_EDESTRUCTION)
        return; /* dns_free: it frees the flight itself */
    struct dns *dns = f->set->dns;
    struct server *srv = &f->set->srv[f->cur];
    unsigned bit = 1u << f->cur;

    int rcode = status == ARES_SUCCESS && abuf ? dns_wire_rcode(abuf, (size_t)alen) : -1;
    if (rcode >= 0) {
        server_alive(srv);
        srv->servfails += rcode == DNS_WIRE_SERVFAIL;
        srv->refused += rcode == DNS_WIRE_REFUSED;
        if (rcode == DNS_WIRE_SERVFAIL || rcode == DNS_WIRE_REFUSED || rcode == DNS_WIRE_NOTIMP) {
            /* Asking it again will not help; another server may know. */
            f->out[f->cur].rcode = (unsigned char)rcode;
            f->skip |= bit;
            free(f->raw);
            f->raw = xmalloc((size_t)alen);
            memcpy(f->raw, abuf, (size_t)alen);
            f->rawlen = (size_t)alen;
            flight_queue(f);
            return;
        }
        struct dns_cache_entry *e = f->entry;
        long ttl_s;
        struct dns_result *r =
            dns_wire_parse(e->type, e->name, abuf, (size_t)alen, srv->label, &ttl_s);
        if (r->status == DNS_TEMPFAIL) {
            dns->st.other_errors++; /* FORMERR, or an rcode from the future */
            r->ttl_ms = dns->opts.error_ttl_ms;
        } else if (r->status == DNS_BADRESP) {
            r->ttl_ms = dns->opts.error_ttl_ms;
        } else {
            r->ttl_ms = dns_clamp(dns, ttl_s);
        }
        flight_finish(f, r);
        return;
    }
    if (status == ARES_ETIMEOUT) {
        f->out[f->cur].timeouts++;
        srv->timeouts++;
        /* A server that answers other questions meanwhile is alive: this name is what is dead
         * (its own servers unreachable), and must not get the resolver set aside. */
        long long now = dns_now();
        if (now - srv->answered > srv->set->timeout_ms)
            server_silent(srv, now, 0);
    } else if (status == ARES_ECONNREFUSED) {
        f->out[f->cur].refused = 1;
        srv->refused++;
        f->skip |= bit;
        server_silent(srv, dns_now(), 1);
    } else {
        f->out[f->cur].error = status == ARES_SUCCESS ? ARES_EBADRESP : status;
        f->skip |= bit;
    }
    flight_queue(f);
}

/* flight_next - send the next try, or end when none is left. f may be gone on return. */
static void flight_next(struct dns_flight *f)
{
    struct dns_set *set = f->set;
    while (f->attempt < f->nattempts) {
        int i = f->order[(size_t)f->attempt % set->n];
        f->attempt++;
        if (f->skip & (1u << i))
            continue;
        struct server *srv = &set->srv[i];
        f->cur = i;
        set->dns->st.sent++;
        srv->queries++;
        if (f->sends++ > 0)
            set->dns->st.retries++;
        ares_send(srv->ch, f->qbuf, f->qlen, flight_cb, f); /* may call flight_cb at once */
        server_reschedule(srv); /* srv outlives f: sets are destroyed at the next turn */
        return;
    }
    flight_fail(f);
}

/* flight_start - send the query of entry e, with q its first waiter. e may be gone on
 * return (answered at once, then evicted). */
static void flight_start(struct dns *dns, struct dns_cache_entry *e, struct dns_query *q)
{
    struct dns_flight *f = xcalloc(1, sizeof(*f));
    struct dns_set *set = dns->set;
    long long now = dns_now();
    size_t k = 0;

    f->entry = e;
    f->set = set;
    set->refs++;
    e->flight = f;
    f->fnext = dns->flights;
    if (dns->flights)
        dns->flights->fprev = f;
    dns->flights = f;
    dns->ninflight++;
    q->flight = f;
    qlist_append(&f->waiters, q);
    if (ares_create_query(e->name, DNS_WIRE_CLASS_IN, e->type, 0, 1, &f->qbuf, &f->qlen,
                          DNS_EDNS_SIZE) != ARES_SUCCESS) {
        f->qbuf = NULL;
        struct dns_result *r =
            dns_wire_result(e->type, e->name, DNS_NXDOMAIN, "not a valid domain name", NULL, 0);
        r->ttl_ms = dns->opts.error_ttl_ms;
        flight_finish(f, r);
        return;
    }
    /* Live servers first, in their order; those set aside last, as a last resort. */
    for (size_t i = 0; i < set->n; i++)
        if (set->srv[i].down_until <= now)
            f->order[k++] = (unsigned char)i;
    for (size_t i = 0; i < set->n; i++)
        if (set->srv[i].down_until > now)
            f->order[k++] = (unsigned char)i;
    f->nattempts = set->tries * (int)set->n;
    flight_queue(f);
}

/* --- the interface --- */

struct dns_query *dns_lookup(struct dns *dns, enum dns_type type, const char *name, dns_callback cb,
                             void *arg)
{
    char key[256];
    struct dns_query *q = xcalloc(1, sizeof(*q));
    q->dns = dns;
    q->cb = cb;
    q->arg = arg;
    dns->st.lookups++;
    if (dns_cache_key(name, key) < 0) {
        char shown[80];
        snprintf(shown, sizeof(shown), "%.64s", name);
        struct dns_result *r =
            dns_wire_result((int)type, shown, DNS_NXDOMAIN, "not a valid domain name", NULL, 0);
        dns_make_ready(dns, q, r);
        dns_wire_unref(r);
        return q;
    }
    struct dns_cache_entry *e = dns_cache_find(dns->cache, (int)type, key);
    if (e && e->flight) {
        dns->st.merged++;
        q->flight = e->flight;
        qlist_append(&e->flight->waiters, q);
        return q;
    }
    if (e && e->expires > dns_now()) {
        dns->st.cache_hits++;
        dns_cache_touch(dns->cache, e);
        dns_make_ready(dns, q, e->res);
        return q;
    }
    if (e)
        dns_cache_reopen(dns->cache, e); /* expired: asked again, out of the LRU meanwhile */
    else
        e = dns_cache_add(dns->cache, (int)type, key);
    flight_start(dns, e, q); /* may finish at once (e then maybe evicted): e is not used after */
    return q;
}

const struct dns_result *dns_peek(struct dns *dns, enum dns_type type, const char *name)
{
    char key[256];
    if (dns_cache_key(name, key) < 0)
        return NULL;
    struct dns_cache_entry *e = dns_cache_find(dns->cache, (int)type, key);
    if (!e || e->flight || !e->res || e->expires <= dns_now())
        return NULL;
    dns->st.lookups++;
    dns->st.cache_hits++;
    dns_cache_touch(dns->cache, e);
    return dns_wire_ref(e->res);
}

void dns_cancel(struct dns_query *q)
{
    if (!q)
        return;
    q->dns->st.cancelled++;
    if (q->flight) {
        qlist_remove(&q->flight->waiters, q); /* the flight goes on and fills the cache */
    } else {
        qlist_remove(&q->dns->ready, q);
        dns_wire_unref(q->res);
    }
    free(q);
}

int dns_reconfigure(struct dns *dns, const struct dns_options *opts, char *err, size_t errlen)
{
    const char *servers = opts->servers ? opts->servers : "";
    struct dns_set *set = set_new(dns, servers, opts->timeout_ms, opts->tries, err, errlen);
    if (!set)
        return -1;
    int changed = strcmp(servers, dns->servers) != 0;
    /* A server still listed keeps its counters (the metrics' counters must not go back). */
    for (size_t i = 0; i < set->n; i++)
        for (size_t k = 0; k < dns->set->n; k++)
            if (strcmp(set->srv[i].label, dns->set->srv[k].label) == 0) {
                set->srv[i].queries = dns->set->srv[k].queries;
                set->srv[i].timeouts = dns->set->srv[k].timeouts;
                set->srv[i].servfails = dns->set->srv[k].servfails;
                set->srv[i].refused = dns->set->srv[k].refused;
            }
    char *copy = xstrdup(servers);
    free(dns->servers);
    dns->servers = copy;
    dns->opts = *opts;
    dns->opts.servers = dns->servers;
    /* The old set lives on while flights use it; the reaper destroys it. */
    set->next = dns->sets;
    if (dns->sets)
        dns->sets->prev = set;
    dns->sets = set;
    set_unref(dns->set);
    dns->set = set;
    if (changed)
        dns_cache_evict(dns->cache, 0); /* forget every answer (those in flight stay) */
    dns->st.evicted += dns_cache_evict(dns->cache, dns->opts.cache_size);
    return 0;
}

int dns_set_servers(struct dns *dns, const char *servers, char *err, size_t errlen)
{
    struct dns_options o = dns->opts;
    o.servers = servers;
    return dns_reconfigure(dns, &o, err, errlen);
}

struct dns *dns_new(struct event_base *base, const struct dns_options *opts, char *err,
                    size_t errlen)
{
    static int library_ready;
    if (!library_ready) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
            snprintf(err, errlen, "c-ares library initialisation failed");
            return NULL;
        }
        library_ready = 1;
    }
    struct dns *dns = xcalloc(1, sizeof(*dns));
    const char *servers = opts->servers ? opts->servers : "";
    dns->base = base;
    dns->cache = dns_cache_new();
    dns->deliver = dns_event_new(base, -1, 0, dns_deliver_cb, dns);
    dns->reap = dns_event_new(base, -1, 0, dns_reap_cb, dns);
    dns->sender = dns_event_new(base, -1, 0, dns_sender_cb, dns);
    dns->servers = xstrdup(servers);
    dns->opts = *opts;
    dns->opts.servers = dns->servers;
    dns->set = set_new(dns, servers, opts->timeout_ms, opts->tries, err, errlen);
    if (!dns->set) {
        dns_free(dns);
        return NULL;
    }
    dns->sets = dns->set;
    return dns;
}

void dns_free(struct dns *dns)
{
    if (!dns)
        return;
    /* Channels first: their pending queries end with ARES_EDESTRUCTION, which we ignore. */
    while (dns->sets) {
        struct dns_set *s = dns->sets;
        dns->sets = s->next;
        set_destroy(s);
    }
    while (dns->ready.first) {
        struct dns_query *q = dns->ready.first;
        qlist_remove(&dns->ready, q);
        dns_wire_unref(q->res);
        free(q);
    }
    while (dns->flights) {
        struct dns_flight *f = dns->flights;
        while (f->waiters.first) {
            struct dns_query *q = f->waiters.first;
            qlist_remove(&f->waiters, q);
            free(q);
        }
        f->entry->flight = NULL;
        flight_free(dns, f);
    }
    dns_cache_free(dns->cache);
    event_free(dns->deliver);
    event_free(dns->reap);
    event_free(dns->sender);
    free(dns->servers);
    free(dns);
}

void dns_get_stats(const struct dns *dns, struct dns_stats *out)
{
    long long now = dns_now();
    *out = dns->st;
    out->cached = dns_cache_count(dns->cache);
    out->inflight = dns->ninflight;
    out->servers = dns->set->n;
    out->servers_down = 0;
    for (size_t i = 0; i < dns->set->n; i++)
        out->servers_down += dns->set->srv[i].down_until > now;
}

size_t dns_get_server_stats(const struct dns *dns, struct dns_server_stats *out, size_t max)
{
    long long now = dns_now();
    for (size_t i = 0; i < dns->set->n && i < max; i++) {
        const struct server *srv = &dns->set->srv[i];
        snprintf(out[i].server, sizeof(out[i].server), "%s", srv->label);
        out[i].queries = srv->queries;
        out[i].timeouts = srv->timeouts;
        out[i].servfails = srv->servfails;
        out[i].refused = srv->refused;
        out[i].set_aside = srv->down_until > now;
    }
    return dns->set->n;
}

char *dns_stats_format(const struct dns *dns, char *out, size_t outlen)
{
    struct dns_stats s;
    dns_get_stats(dns, &s);
    snprintf(out, outlen,
             "lookups=%llu sent=%llu cache_hits=%llu merged=%llu timeouts=%llu servfail=%llu "
             "nxdomain=%llu nodata=%llu other_errors=%llu retries=%llu evicted=%llu "
             "cancelled=%llu cached=%zu inflight=%zu servers=%zu servers_down=%zu",
             s.lookups, s.sent, s.cache_hits, s.merged, s.timeouts, s.servfail, s.nxdomain,
             s.nodata, s.other_errors, s.retries, s.evicted, s.cancelled, s.cached, s.inflight,
             s.servers, s.servers_down);
    return out;
}

int dns_name_ok(const char *name)
{
    char key[256];
    return dns_cache_key(name, key) >= 0;
}

const char *dns_type_name(int type)
{
    return dns_wire_type_name(type);
}

const struct dns_result *dns_parse_answer(int type, const char *name, const unsigned char *answer,
                                          size_t len)
{
    long ttl_s;
    struct dns_result *r = dns_wire_parse(type, name, answer, len, "the server", &ttl_s);
    r->ttl_ms = ttl_s < 0 ? -1 : ttl_s * 1000;
    return r;
}

const struct dns_result *dns_result_ref(const struct dns_result *r)
{
    return dns_wire_ref(r);
}

void dns_result_unref(const struct dns_result *r)
{
    dns_wire_unref(r);
}

int dns_reverse_name(const char *addr, const char *zone, char *out, size_t outlen)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const char hex[] = "0123456789abcdef";
    unsigned char a[16];
    size_t n = 0;
    int v4;

    if (inet_pton(AF_INET, addr, a) == 1) {
        v4 = 1;
    } else if (inet_pton(AF_INET6, addr, a) == 1) {
        v4 = memcmp(a, mapped, 12) == 0;
        if (v4)
            memmove(a, a + 12, 4);
    } else {
        return -1;
    }
    const char *suffix = zone ? zone : v4 ? "in-addr.arpa" : "ip6.arpa";
    size_t slen = strlen(suffix);
    if (outlen < (v4 ? 16 : 64) + slen + 1)
        return -1;
    if (v4) {
        /* Hand-made: this runs for every request of the rdns and dnsbl checks. */
        for (int i = 3; i >= 0; i--) {
            n = (size_t)(units_put_uint(out + n, a[i]) - out);
            out[n++] = '.';
        }
    } else {
        for (int i = 15; i >= 0; i--) {
            out[n++] = hex[a[i] & 15];
            out[n++] = '.';
            out[n++] = hex[a[i] >> 4];
            out[n++] = '.';
        }
    }
    memcpy(out + n, suffix, slen + 1);
    return 0;
}

int dns_list_name(const char *addr, const char *zone, char *out, size_t outlen)
{
    return zone ? dns_reverse_name(addr, zone, out, outlen) : -1;
}
