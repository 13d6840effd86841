/*
 * test_dns.c - the DNS engine against the suite's own DNS server (test/dns/testdns.py, started
 * here on a free loopback port with a zone written here): answers and TTLs, negative caching by
 * the SOA minimum, errors, timeouts and their bound, truncation to TCP, cache hits delivered
 * asynchronously, merging, cancelling, eviction, expiry, failover past a dead server,
 * head-of-line isolation, reconfiguration with queries in flight, 1,000 lookups at once; and
 * the answer parser alone on hand-made and damaged answers. Query counts come from the
 * server's log. Run from the repository root.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/dns/dns.h"
#include "unit.h"

#include <event2/event.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct event_base *base;
static char zone_path[256], log_path[256];
static pid_t server_pid;
static int port;
static int done; /* callbacks run, all lookups together */

struct got {
    int calls;
    int in_call; /* set while dns_lookup runs: the callback must never see it */
    int early;   /* the callback ran inside dns_lookup */
    enum dns_status status;
    char first[4096], second[256];
    size_t count, len0;
    long ttl_ms;
    int pref0, pref1;
    unsigned char addr0[16];
    int has_addrs, rcode;
    size_t rawlen;
    char detail[512];
    double asked, at;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_result(const struct dns_result *r, void *arg)
{
    struct got *g = arg;
    g->calls++;
    g->early |= g->in_call;
    done++;
    g->status = r->status;
    g->count = r->count;
    g->ttl_ms = r->ttl_ms;
    g->at = now();
    snprintf(g->detail, sizeof(g->detail), "%s", r->detail);
    snprintf(g->first, sizeof(g->first), "%s", r->count ? r->items[0] : "");
    snprintf(g->second, sizeof(g->second), "%s", r->count > 1 ? r->items[1] : "");
    g->len0 = r->count ? r->lens[0] : 0;
    if (r->count && r->lens[0] < sizeof(g->first))
        memcpy(g->first, r->items[0], r->lens[0] + 1); /* binary TXT / RDATA too */
    g->pref0 = r->prefs && r->count ? r->prefs[0] : -1;
    g->pref1 = r->prefs && r->count > 1 ? r->prefs[1] : -1;
    g->has_addrs = r->addrs != NULL;
    if (r->addrs && r->count)
        memcpy(g->addr0, r->addrs, r->type == DNS_A ? 4 : 16);
    g->rawlen = r->rawlen;
    g->rcode = r->raw && r->rawlen >= 4 ? r->raw[3] & 15 : -1;
}

/* ask - dns_lookup, noting whether the callback ran before the call returned. */
static struct dns_query *ask(struct dns *d, enum dns_type t, const char *name, struct got *g)
{
    g->in_call = 1;
    g->asked = now();
    struct dns_query *q = dns_lookup(d, t, name, on_result, g);
    g->in_call = 0;
    return q;
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* run_until - turn the loop until *counter reaches want or seconds pass. */
static void run_until(int *counter, int want, double seconds)
{
    struct event *guard = event_new(base, -1, EV_PERSIST, guard_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(guard, &tv);
    double end = now() + seconds;
    while (*counter < want && now() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(guard);
}

/* wait_one - run until g's callback ran (or seconds pass). */
static void wait_one(struct got *g, double seconds)
{
    run_until(&g->calls, 1, seconds);
}

/* idle - turn the loop for a while, whatever happens. */
static void idle(double seconds)
{
    int never = 0;
    run_until(&never, 1, seconds);
}

/* queries_logged - queries the server received for "TYPE name." (any transport if tr NULL). */
static int queries_logged(const char *what, const char *tr)
{
    FILE *fp = fopen(log_path, "r");
    char buf[512], want[300];
    int n = 0;
    snprintf(want, sizeof(want), "%s ", what);
    while (fp && fgets(buf, sizeof(buf), fp)) {
        buf[strcspn(buf, "\n")] = 0;
        if (strncmp(buf, want, strlen(want)) == 0 && (!tr || strcmp(buf + strlen(want), tr) == 0))
            n++;
    }
    if (fp)
        fclose(fp);
    return n;
}

/* --- hand-made answers, for the parser and for the server's "raw" behaviour --- */

struct msgb {
    unsigned char b[1024];
    size_t n;
};

static void mb_bytes(struct msgb *m, const void *p, size_t n)
{
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void mb_16(struct msgb *m, unsigned v)
{
    m->b[m->n++] = (unsigned char)(v >> 8);
    m->b[m->n++] = (unsigned char)v;
}

static void mb_32(struct msgb *m, unsigned long v)
{
    mb_16(m, (unsigned)(v >> 16));
    mb_16(m, (unsigned)(v & 0xffff));
}

/* mb_name - "a.example" as labels, the root last (no compression). */
static void mb_name(struct msgb *m, const char *name)
{
    while (*name) {
        size_t l = strcspn(name, ".");
        m->b[m->n++] = (unsigned char)l;
        mb_bytes(m, name, l);
        name += l + (name[l] == '.');
    }
    m->b[m->n++] = 0;
}

/* mb_start - header (id 0x1234, QR RD RA, rcode) and the question; the answer follows. */
static void mb_start(struct msgb *m, int rcode, int an, int ns, const char *qname, unsigned qtype)
{
    m->n = 0;
    mb_16(m, 0x1234);
    mb_16(m, 0x8180 | (unsigned)rcode);
    mb_16(m, 1);
    mb_16(m, (unsigned)an);
    mb_16(m, (unsigned)ns);
    mb_16(m, 0);
    mb_name(m, qname);
    mb_16(m, qtype);
    mb_16(m, 1);
}

/* mb_rr - a record owned by the question's name (pointer 0xc00c) unless owner is given. */
static void mb_rr(struct msgb *m, const char *owner, unsigned type, unsigned cls, unsigned long ttl,
                  const void *rdata, size_t rdlen)
{
    if (owner)
        mb_name(m, owner);
    else
        mb_16(m, 0xc00c);
    mb_16(m, type);
    mb_16(m, cls);
    mb_32(m, ttl);
    mb_16(m, (unsigned)rdlen);
    mb_bytes(m, rdata, rdlen);
}

static const struct dns_result *parse(const struct msgb *m, int type)
{
    return dns_parse_answer(type, "q.example", m->b, m->n);
}

/* Hand-made and broken answers: nothing read out of bounds, nothing trusted. */
static void test_parser(void)
{
    struct msgb m, tmp, keep[4];
    const struct dns_result *r;
    size_t nkeep = 0;

    mb_start(&m, 0, 2, 0, "q.example", DNS_A);
    mb_rr(&m, NULL, DNS_A, 1, 300, "\xc0\x00\x02\x01", 4);
    mb_rr(&m, NULL, DNS_A, 1, 100, "\xc0\x00\x02\x02", 4);
    keep[nkeep++] = m;
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_OK && r->count == 2 && r->ttl_ms == 100000);
    CHECK(r->addrs && memcmp(r->addrs + 4, "\xc0\x00\x02\x02", 4) == 0);
    CHECK(r->raw && r->rawlen == m.n && memcmp(r->raw, m.b, m.n) == 0);
    CHECK_STR(r->name, "q.example");
    dns_result_unref(r);

    /* an owner name that points at itself */
    mb_start(&m, 0, 1, 0, "q.example", DNS_A);
    mb_16(&m, 0xc000 | (unsigned)m.n);
    mb_16(&m, 1);
    mb_16(&m, 1);
    mb_32(&m, 60);
    mb_16(&m, 4);
    mb_bytes(&m, "\1\2\3\4", 4);
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_BADRESP);
    dns_result_unref(r);

    /* RDATA longer than the message */
    mb_start(&m, 0, 1, 0, "q.example", DNS_A);
    mb_rr(&m, NULL, DNS_A, 1, 60, "\1\2\3\4", 4);
    m.n -= 2;
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_BADRESP && strstr(r->detail, "out of bounds"));
    dns_result_unref(r);

    /* a TXT string longer than its record; an A record of 3 bytes */
    mb_start(&m, 0, 1, 0, "q.example", DNS_TXT);
    mb_rr(&m, NULL, DNS_TXT, 1, 60, "\5AB", 3);
    r = parse(&m, DNS_TXT);
    CHECK(r->status == DNS_BADRESP && strstr(r->detail, "bad TXT record"));
    dns_result_unref(r);
    mb_start(&m, 0, 1, 0, "q.example", DNS_A);
    mb_rr(&m, NULL, DNS_A, 1, 60, "\1\2\3", 3);
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_BADRESP);
    dns_result_unref(r);

    /* records for another name, or of another class, are no answer */
    mb_start(&m, 0, 2, 0, "q.example", DNS_A);
    mb_rr(&m, "evil.example", DNS_A, 1, 60, "\1\2\3\4", 4);
    mb_rr(&m, NULL, DNS_A, 3, 60, "\1\2\3\4", 4);
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_NODATA && r->count == 0);
    dns_result_unref(r);

    /* a CNAME chain in any order (names in any case); a CNAME loop is a broken answer (temporary),
     * not NODATA (issue 12) */
    mb_start(&m, 0, 3, 0, "q.example", DNS_A);
    mb_rr(&m, "t.example", DNS_A, 1, 500, "\xc0\x00\x02\x09", 4);
    tmp.n = 0;
    mb_name(&tmp, "T.Example");
    mb_rr(&m, "m.example", DNS_CNAME, 1, 40, tmp.b, tmp.n);
    tmp.n = 0;
    mb_name(&tmp, "m.example");
    mb_rr(&m, NULL, DNS_CNAME, 1, 400, tmp.b, tmp.n);
    keep[nkeep++] = m;
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_OK && r->count == 1 && strcmp(r->items[0], "192.0.2.9") == 0);
    CHECK(r->ttl_ms == 40000);
    dns_result_unref(r);
    mb_start(&m, 0, 1, 0, "q.example", DNS_A);
    mb_rr(&m, NULL, DNS_CNAME, 1, 60, "\xc0\x0c", 2);
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_BADRESP && strstr(r->detail, "CNAME loop"));
    dns_result_unref(r);
    r = parse(&m, DNS_CNAME); /* asked for the CNAME itself */
    CHECK(r->status == DNS_OK && r->count == 1 && strcmp(r->items[0], "q.example") == 0);
    dns_result_unref(r);

    /* a TTL with the top bit set counts as 0 (RFC 2181) */
    mb_start(&m, 0, 1, 0, "q.example", DNS_A);
    mb_rr(&m, NULL, DNS_A, 1, 0x80000001UL, "\1\2\3\4", 4);
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_OK && r->ttl_ms == 0);
    dns_result_unref(r);

    /* NXDOMAIN: min(SOA TTL, MINIMUM); a broken authority section is ignored */
    mb_start(&m, 3, 0, 1, "q.example", DNS_A);
    tmp.n = 0;
    mb_name(&tmp, "ns.example");
    mb_name(&tmp, "host.example");
    mb_32(&tmp, 1);
    mb_32(&tmp, 3600);
    mb_32(&tmp, 600);
    mb_32(&tmp, 86400);
    mb_32(&tmp, 10);
    mb_rr(&m, "example", 6, 1, 30, tmp.b, tmp.n);
    keep[nkeep++] = m;
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_NXDOMAIN && r->ttl_ms == 10000);
    dns_result_unref(r);
    m.n -= 5;
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_NXDOMAIN && r->ttl_ms == -1);
    dns_result_unref(r);

    /* MX with a compressed name; PTR with bytes that need escaping */
    mb_start(&m, 0, 1, 0, "q.example", DNS_MX);
    mb_rr(&m, NULL, DNS_MX, 1, 60, "\0\x0a\2mx\xc0\x0c", 7);
    keep[nkeep++] = m;
    r = parse(&m, DNS_MX);
    CHECK(r->status == DNS_OK && r->count == 1 && r->prefs && r->prefs[0] == 10);
    CHECK_STR(r->count ? r->items[0] : "", "mx.q.example");
    dns_result_unref(r);
    mb_start(&m, 0, 1, 0, "q.example", DNS_PTR);
    mb_rr(&m, NULL, DNS_PTR, 1, 60, "\5a.b c\7example\0", 15);
    r = parse(&m, DNS_PTR);
    CHECK_STR(r->count ? r->items[0] : "", "a\\.b\\032c.example");
    dns_result_unref(r);

    /* too short; SERVFAIL */
    r = dns_parse_answer(DNS_A, "q.example", m.b, 11);
    CHECK(r->status == DNS_BADRESP);
    dns_result_unref(r);
    mb_start(&m, 2, 0, 0, "q.example", DNS_A);
    r = parse(&m, DNS_A);
    CHECK(r->status == DNS_TEMPFAIL && strstr(r->detail, "SERVFAIL"));
    dns_result_unref(r);

    /* Random damage to good answers: any status, but nothing read out of place (ASan). */
    unsigned seed = 12345;
    int sane = 1;
    for (size_t k = 0; k < nkeep; k++) {
        for (int i = 0; i < 20000; i++) {
            struct msgb f = keep[k];
            seed = seed * 1103515245u + 12345u;
            int flips = 1 + (int)(seed >> 16) % 4;
            for (int j = 0; j < flips; j++) {
                seed = seed * 1103515245u + 12345u;
                f.b[(seed >> 8) % f.n] = (unsigned char)(seed >> 24);
            }
            if (i % 7 == 0)
                f.n = (seed >> 4) % (f.n + 1);
            r = dns_parse_answer(k == 3 ? DNS_MX : DNS_A, "q.example", f.b, f.n);
            sane &= r->status <= DNS_BADRESP && (r->status != DNS_OK || r->count > 0);
            for (size_t n = 0; n < r->count; n++)
                sane &= r->items[n][r->lens[n]] == 0;
            dns_result_unref(r);
        }
    }
    CHECK(sane);
}

static void write_zone(void)
{
    FILE *fp = fopen(zone_path, "w");
    fprintf(fp,
            "{\"negative_ttl\": 60, \"soa_ttl\": 600, \"names\": {\n"
            "\"a.example\": [{\"type\": \"A\", \"data\": \"192.0.2.1\", \"ttl\": 300},"
            " {\"type\": \"A\", \"data\": \"192.0.2.11\", \"ttl\": 100}],\n"
            "\"six.example\": [{\"AAAA\": \"2001:db8::7\", \"ttl\": 200}],\n"
            "\"zero.example\": [{\"type\": \"A\", \"data\": \"192.0.2.2\", \"ttl\": 0}],\n"
            "\"long.example\": [{\"type\": \"A\", \"data\": \"192.0.2.3\", \"ttl\": 999999}],\n"
            "\"t.example\": [{\"type\": \"TXT\", \"data\": [\"v=spf1 \", \"-all\"], \"ttl\": "
            "120}, {\"TXT\": \"second\", \"ttl\": 100}],\n"
            "\"bin.example\": [{\"type\": \"TXT\", \"hex\": \"00ff41\"}],\n"
            "\"huge.example\": [{\"TXT\": \"%0*d\"}],\n"
            "\"7.113.0.203.in-addr.arpa\": [{\"PTR\": \"Mail.Example.\", \"ttl\": 250}],\n"
            "\"m.example\": [{\"MX\": [5, \"mx1.example\"]}, {\"MX\": [10, \"mx2.example\"], "
            "\"ttl\": 400}],\n"
            "\"alias.example\": [{\"CNAME\": \"a.example\", \"ttl\": 50}],\n"
            "\"raw.example\": [{\"type\": \"TYPE65280\", \"hex\": \"0001ff\"}],\n"
            "\"empty.example\": [],\n"
            "\"neg.example\": [{\"behaviour\": \"soa\", \"ttl\": 5, \"minimum\": 100}],\n"
            "\"dead.example\": [\"TIMEOUT\"],\n"
            "\"sf.example\": [{\"behaviour\": \"servfail\"}],\n"
            "\"ref.example\": [{\"behaviour\": \"refused\"}],\n"
            "\"fe.example\": [{\"behaviour\": \"formerr\"}],\n"
            "\"junk.example\": [{\"behaviour\": \"garbage\"}],\n"
            "\"badrr.example\": [{\"behaviour\": \"badrr\"}],\n"
            "\"slow.example\": [{\"behaviour\": \"delay\", \"ms\": 300}, {\"A\": \"192.0.2.4\"}],\n"
            "\"big.example\": [{\"behaviour\": \"truncate\"}, {\"TXT\": \"over tcp\"}],\n"
            "\"*.bulk.example\": [{\"A\": \"192.0.2.200\"}],\n"
            "\"sp ace.example\": [{\"A\": \"192.0.2.77\"}]",
            3000, 7);
    for (int i = 0; i < 40; i++)
        fprintf(fp, ",\n\"n%d.example\": [{\"type\": \"A\", \"data\": \"192.0.2.%d\"}]", i, i + 10);
    /* A hand-made answer through the whole engine: a record for another name is no answer. */
    struct msgb m;
    char hex[2 * sizeof(m.b) + 1];
    mb_start(&m, 0, 1, 0, "evil.example", DNS_A);
    mb_rr(&m, "victim.example", DNS_A, 1, 60, "\1\2\3\4", 4);
    for (size_t i = 2; i < m.n; i++) /* after the id, which the server fills in */
        snprintf(hex + 2 * (i - 2), 3, "%02x", m.b[i]);
    fprintf(fp, ",\n\"evil.example\": [{\"behaviour\": \"raw\", \"hex\": \"%s\"}]", hex);
    fprintf(fp, "}}\n");
    fclose(fp);
}

/* start_server - testdns.py on a free port; 0 once it said "ready port=N". */
static int start_server(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    server_pid = fork();
    if (server_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl("/usr/bin/python3", "python3", "test/dns/testdns.py", "--zone", zone_path, "--port",
              "0", "--log", log_path, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[128] = "";
    size_t n = 0;
    struct pollfd pfd = {fds[0], POLLIN, 0};
    while (n + 1 < sizeof(buf) && !memchr(buf, '\n', n) && poll(&pfd, 1, 10000) == 1) {
        ssize_t k = read(fds[0], buf + n, sizeof(buf) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        buf[n] = 0;
    }
    close(fds[0]);
    return sscanf(buf, "ready port=%d", &port) == 1 ? 0 : -1;
}

/* free_udp_port - a port nobody listens on (ICMP port unreachable). */
static int free_udp_port(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    bind(s, (struct sockaddr *)&sin, sizeof(sin));
    getsockname(s, (struct sockaddr *)&sin, &len);
    close(s);
    return ntohs(sin.sin_port);
}

static struct dns *engine_with(const char *servers, size_t cache, long timeout_ms, int tries,
                               long ttl_min)
{
    char err[256];
    struct dns_options o = {servers, timeout_ms, tries, cache, ttl_min, 86400000, 2000};
    struct dns *d = dns_new(base, &o, err, sizeof(err));
    if (!d)
        fprintf(stderr, "dns_new: %s\n", err);
    return d;
}

static struct dns *engine(size_t cache, long timeout_ms, int tries)
{
    char servers[64];
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
    return engine_with(servers, cache, timeout_ms, tries, 1000);
}

/* Answers, TTLs, records of every type. */
static void test_answers(struct dns *d)
{
    struct dns_stats st;
    struct got a = {0};
    ask(d, DNS_A, "A.Example.", &a);
    CHECK(a.calls == 0);
    wait_one(&a, 3);
    CHECK(a.calls == 1 && !a.early && a.status == DNS_OK && a.count == 2);
    CHECK_STR(a.first, "192.0.2.1");
    CHECK_STR(a.second, "192.0.2.11");
    CHECK(a.has_addrs && memcmp(a.addr0, "\xc0\x00\x02\x01", 4) == 0);
    CHECK(a.ttl_ms == 100000); /* the smaller TTL of the two records */
    CHECK(a.rcode == 0 && a.rawlen > 12);

    /* The cache: no new query, still asynchronous, counted. */
    struct got a2 = {0};
    ask(d, DNS_A, "a.example", &a2);
    CHECK(a2.calls == 0);
    wait_one(&a2, 1);
    CHECK(a2.calls == 1 && !a2.early && strcmp(a2.first, "192.0.2.1") == 0);
    printf("cache hit delivered %.0f us after dns_lookup\n", (a2.at - a2.asked) * 1e6);
    CHECK(a2.at - a2.asked < 0.01);
    dns_get_stats(d, &st);
    CHECK(st.cache_hits == 1 && st.sent == 1);
    CHECK(queries_logged("A a.example.", NULL) == 1);
    const struct dns_result *peek = dns_peek(d, DNS_A, "A.EXAMPLE");
    CHECK(peek && peek->count == 2 && peek->status == DNS_OK);
    dns_result_unref(peek);
    CHECK(dns_peek(d, DNS_A, "n30.example") == NULL);

    struct got six = {0}, t = {0}, bin = {0}, p = {0}, mx = {0}, cn = {0}, raw = {0}, huge = {0};
    ask(d, DNS_AAAA, "six.example", &six);
    ask(d, DNS_TXT, "t.example", &t);
    ask(d, DNS_TXT, "bin.example", &bin);
    ask(d, DNS_PTR, "7.113.0.203.in-addr.arpa", &p);
    ask(d, DNS_MX, "m.example", &mx);
    ask(d, DNS_A, "alias.example", &cn);
    ask(d, (enum dns_type)65280, "raw.example", &raw);
    ask(d, DNS_TXT, "huge.example", &huge);
    done = 0;
    run_until(&done, 8, 5);
    CHECK(six.status == DNS_OK && strcmp(six.first, "2001:db8::7") == 0 && six.ttl_ms == 200000);
    CHECK(six.has_addrs && six.addr0[0] == 0x20 && six.addr0[15] == 7);
    /* TXT: the strings of a record joined, each record one item, the smallest TTL */
    CHECK(t.status == DNS_OK && t.count == 2);
    CHECK_STR(t.first, "v=spf1 -all");
    CHECK_STR(t.second, "second");
    CHECK(t.ttl_ms == 100000);
    CHECK(bin.len0 == 3 && memcmp(bin.first, "\x00\xff\x41", 3) == 0);
    CHECK_STR(p.first, "Mail.Example");
    CHECK(p.ttl_ms == 250000);
    CHECK(mx.count == 2 && mx.pref0 == 5 && mx.pref1 == 10 &&
          strcmp(mx.second, "mx2.example") == 0);
    CHECK_STR(mx.first, "mx1.example");
    CHECK(mx.ttl_ms == 300000);
    /* a CNAME chain: the records at its end; the chain's TTL counts */
    CHECK(cn.status == DNS_OK && cn.count == 2 && strcmp(cn.first, "192.0.2.1") == 0);
    CHECK(cn.ttl_ms == 50000);
    CHECK(raw.status == DNS_OK && raw.len0 == 3 && memcmp(raw.first, "\x00\x01\xff", 3) == 0);
    /* 3000 bytes do not fit in 1232: truncated over UDP, the whole record over TCP */
    CHECK(huge.status == DNS_OK && huge.len0 == 3000 && huge.first[2999] == '7');
    CHECK(queries_logged("TXT huge.example.", "udp") == 1 &&
          queries_logged("TXT huge.example.", "tcp") == 1);

    /* TTL floor and cap. */
    struct got z = {0}, lg = {0};
    ask(d, DNS_A, "zero.example", &z);
    ask(d, DNS_A, "long.example", &lg);
    done = 0;
    run_until(&done, 2, 3);
    CHECK(z.status == DNS_OK && z.ttl_ms == 1000);       /* floor: dns_ttl_min */
    CHECK(lg.status == DNS_OK && lg.ttl_ms == 86400000); /* cap: dns_ttl_max */

    /* The server sets TC over UDP: c-ares asks again over TCP and gets the answer. */
    struct got big = {0};
    ask(d, DNS_TXT, "big.example", &big);
    wait_one(&big, 5);
    CHECK(big.status == DNS_OK && strcmp(big.first, "over tcp") == 0);
    CHECK(queries_logged("TXT big.example.", "tcp") == 1);
}

/* NXDOMAIN and NODATA, cached by min(SOA TTL, SOA MINIMUM). */
static void test_negative(struct dns *d)
{
    struct got nx = {0}, nd = {0}, em = {0}, ng = {0};
    ask(d, DNS_A, "nosuch.example", &nx);
    ask(d, DNS_AAAA, "a.example", &nd);
    ask(d, DNS_MX, "empty.example", &em);
    ask(d, DNS_A, "neg.example", &ng);
    done = 0;
    run_until(&done, 4, 3);
    CHECK(nx.status == DNS_NXDOMAIN && nx.ttl_ms == 60000 && strcmp(nx.detail, "NXDOMAIN") == 0);
    CHECK(nd.status == DNS_NODATA && nd.ttl_ms == 60000 && nd.count == 0);
    CHECK(em.status == DNS_NODATA && em.ttl_ms == 60000);
    CHECK(ng.status == DNS_NODATA && ng.ttl_ms == 5000); /* SOA TTL 5 < MINIMUM 100 */
    struct got evil = {0};
    ask(d, DNS_A, "evil.example", &evil);
    wait_one(&evil, 2);
    CHECK(evil.status == DNS_NODATA); /* its answer names victim.example */
    const struct dns_result *victim = dns_peek(d, DNS_A, "victim.example");
    CHECK(victim == NULL);
    struct got space = {0}; /* SPF macros can make names like this */
    ask(d, DNS_A, "Sp ace.example", &space);
    wait_one(&space, 2);
    CHECK(space.status == DNS_OK && strcmp(space.first, "192.0.2.77") == 0);
    struct got nx2 = {0};
    ask(d, DNS_A, "NoSuch.Example.", &nx2);
    wait_one(&nx2, 1);
    CHECK(nx2.status == DNS_NXDOMAIN && queries_logged("A nosuch.example.", NULL) == 1);
}

/* SERVFAIL, REFUSED, FORMERR, garbage, a broken record; errors cached for dns_error_ttl. */
static void test_errors(struct dns *d)
{
    char want[128];
    struct got sf = {0}, sf2 = {0}, ref = {0}, fe = {0}, junk = {0}, bad = {0};
    ask(d, DNS_A, "sf.example", &sf);
    wait_one(&sf, 2);
    snprintf(want, sizeof(want), "SERVFAIL from 127.0.0.1:%d", port);
    CHECK_STR(sf.detail, want);
    CHECK(sf.status == DNS_TEMPFAIL && sf.ttl_ms == 2000 && sf.rcode == 2);
    /* The only server said SERVFAIL: not asked again (tries = 2 here); the failure is cached. */
    CHECK(queries_logged("A sf.example.", NULL) == 1);
    ask(d, DNS_A, "sf.example", &sf2);
    wait_one(&sf2, 1);
    CHECK(sf2.status == DNS_TEMPFAIL && queries_logged("A sf.example.", NULL) == 1);

    ask(d, DNS_A, "ref.example", &ref);
    ask(d, DNS_A, "fe.example", &fe);
    ask(d, DNS_A, "junk.example", &junk);
    ask(d, DNS_A, "badrr.example", &bad);
    done = 0;
    run_until(&done, 4, 5);
    snprintf(want, sizeof(want), "REFUSED from 127.0.0.1:%d", port);
    CHECK_STR(ref.detail, want);
    CHECK(ref.status == DNS_TEMPFAIL);
    CHECK(fe.status == DNS_TEMPFAIL && strstr(fe.detail, "FORMERR"));
    /* c-ares drops an answer whose question does not match: a timeout */
    CHECK(junk.calls == 1 && (junk.status == DNS_TEMPFAIL || junk.status == DNS_BADRESP));
    CHECK(bad.status == DNS_BADRESP && strstr(bad.detail, "bad answer"));
    CHECK(bad.ttl_ms == 2000);
    struct dns_stats st;
    dns_get_stats(d, &st);
    CHECK(st.servfail == 1 && st.other_errors >= 3 && st.nxdomain == 1);
}

/* Three lookups of one name in one turn: one query. Cancelling one waiter leaves the others;
 * a query whose waiters all left still fills the cache. */
static void test_merge_cancel(struct dns *d)
{
    struct got m[3];
    memset(m, 0, sizeof(m));
    struct dns_stats before, st;
    dns_get_stats(d, &before);
    for (int i = 0; i < 3; i++)
        ask(d, DNS_A, "n0.example", &m[i]);
    done = 0;
    run_until(&done, 3, 3);
    CHECK(m[0].calls == 1 && m[1].calls == 1 && m[2].calls == 1);
    CHECK_STR(m[2].first, "192.0.2.10");
    CHECK(queries_logged("A n0.example.", NULL) == 1);
    dns_get_stats(d, &st);
    CHECK(st.merged - before.merged == 2 && st.sent - before.sent == 1);

    struct got c1 = {0}, c2 = {0};
    struct dns_query *q1 = ask(d, DNS_A, "n1.example", &c1);
    ask(d, DNS_A, "n1.example", &c2);
    dns_cancel(q1);
    wait_one(&c2, 3);
    idle(0.05);
    CHECK(c1.calls == 0 && c2.calls == 1 && c2.status == DNS_OK);
    /* Cancel a cache hit before its delivery. */
    struct got c3 = {0};
    dns_cancel(ask(d, DNS_A, "n1.example", &c3));
    idle(0.05);
    CHECK(c3.calls == 0);
    /* Everyone leaves: the query still completes and fills the cache. */
    struct got c4 = {0}, c5 = {0}, c6 = {0};
    struct dns_query *q4 = ask(d, DNS_A, "slow.example", &c4);
    struct dns_query *q5 = ask(d, DNS_A, "slow.example", &c5);
    dns_cancel(q4);
    dns_cancel(q5);
    idle(0.5);
    CHECK(c4.calls == 0 && c5.calls == 0);
    ask(d, DNS_A, "slow.example", &c6);
    wait_one(&c6, 1);
    CHECK(c6.status == DNS_OK && c6.at - c6.asked < 0.05);
    CHECK(queries_logged("A slow.example.", NULL) == 1);
    dns_get_stats(d, &st);
    CHECK(st.cancelled - before.cancelled == 4);
}

/* A callback that looks up again: the new callback waits for a later turn. */
static struct got nested_inner;
static struct dns *nested_dns;
static void nested_cb(const struct dns_result *r, void *arg)
{
    on_result(r, arg);
    ask(nested_dns, DNS_A, "a.example", &nested_inner); /* a cache hit */
    CHECK(nested_inner.calls == 0);
}

static void test_nested(struct dns *d)
{
    struct got outer = {0};
    nested_dns = d;
    dns_lookup(d, DNS_A, "a.example", nested_cb, &outer);
    wait_one(&nested_inner, 1);
    CHECK(outer.calls == 1 && nested_inner.calls == 1 && !nested_inner.early);
}

/* Head of line: a name whose server never answers does not delay another one; invalid names
 * are answered without a query. */
static void test_head_of_line(struct dns *d)
{
    struct got dead = {0}, fast = {0}, fast2 = {0}, bad = {0}, lg = {0};
    ask(d, DNS_A, "dead.example", &dead);
    ask(d, DNS_A, "n2.example", &fast);
    wait_one(&fast, 3);
    printf("answer while another query is stuck: %.1f ms\n", (fast.at - fast.asked) * 1e3);
    CHECK(fast.calls == 1 && fast.at - fast.asked < 0.05);
    CHECK(dead.calls == 0);
    ask(d, DNS_A, "n3.example", &fast2); /* still fast while dead.example waits */
    wait_one(&fast2, 3);
    CHECK(fast2.calls == 1 && fast2.at - fast2.asked < 0.05 && dead.calls == 0);
    ask(d, DNS_A, "a..example", &bad);
    CHECK(bad.calls == 0);
    wait_one(&bad, 1);
    CHECK(bad.status == DNS_NXDOMAIN && !bad.early);
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    ask(d, DNS_A, longname, &lg);
    wait_one(&lg, 1);
    CHECK(lg.status == DNS_NXDOMAIN);
    wait_one(&dead, 3);
    CHECK(dead.status == DNS_TEMPFAIL && strstr(dead.detail, "timeout"));
}

/* The timeout bound: tries * timeout (c-ares 1.18 alone would double it each round). */
static void test_timeout(void)
{
    struct dns *d = engine(100, 300, 2);
    struct got dead = {0};
    char want[128];
    int before = queries_logged("A dead.example.", NULL);
    ask(d, DNS_A, "dead.example", &dead);
    wait_one(&dead, 3);
    double took = dead.at - dead.asked;
    printf("timeout with dns_timeout=300ms, dns_tries=2: %.0f ms\n", took * 1e3);
    CHECK(dead.status == DNS_TEMPFAIL && took >= 0.55 && took < 0.8);
    snprintf(want, sizeof(want), "timeout after 2 tries of 300 ms (127.0.0.1:%d)", port);
    CHECK_STR(dead.detail, want);
    CHECK(queries_logged("A dead.example.", NULL) - before == 2);
    CHECK(dead.ttl_ms == 2000);
    struct dns_stats st;
    dns_get_stats(d, &st);
    CHECK(st.timeouts == 1 && st.sent == 2 && st.retries == 1);
    dns_free(d);
}

/* A closed port refuses at once; a black hole is set aside after two timeouts, so the next
 * queries go straight to the live server. */
static void test_failover(void)
{
    char servers[128];
    struct dns *d;

    snprintf(servers, sizeof(servers), "127.0.0.1:%d", free_udp_port());
    d = engine_with(servers, 100, 2000, 1, 1000);
    struct got refused = {0};
    ask(d, DNS_A, "n4.example", &refused);
    wait_one(&refused, 3);
    printf("closed port: \"%s\" after %.1f ms\n", refused.detail,
           (refused.at - refused.asked) * 1e3);
    CHECK(refused.status == DNS_TEMPFAIL && refused.at - refused.asked < 0.5);
    dns_free(d);

    int hole = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t len = sizeof(sin);
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    bind(hole, (struct sockaddr *)&sin, sizeof(sin));
    getsockname(hole, (struct sockaddr *)&sin, &len);
    snprintf(servers, sizeof(servers), "127.0.0.1:%d, 127.0.0.1:%d", ntohs(sin.sin_port), port);
    d = engine_with(servers, 100, 200, 1, 1000);
    struct got f[4];
    memset(f, 0, sizeof(f));
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "n%d.example", 5 + i);
        ask(d, DNS_A, name, &f[i]);
        wait_one(&f[i], 3);
        CHECK(f[i].status == DNS_OK);
    }
    printf("dead first server: %.0f, %.0f ms, then set aside: %.1f, %.1f ms\n",
           (f[0].at - f[0].asked) * 1e3, (f[1].at - f[1].asked) * 1e3, (f[2].at - f[2].asked) * 1e3,
           (f[3].at - f[3].asked) * 1e3);
    CHECK(f[0].at - f[0].asked >= 0.18 && f[1].at - f[1].asked >= 0.18);
    CHECK(f[2].at - f[2].asked < 0.05 && f[3].at - f[3].asked < 0.05);
    struct dns_stats st;
    dns_get_stats(d, &st);
    CHECK(st.servers == 2 && st.servers_down == 1);
    char line[512];
    dns_stats_format(d, line, sizeof(line));
    CHECK(strstr(line, "lookups=4 sent=6 cache_hits=0") && strstr(line, "servers_down=1"));
    dns_free(d);
    close(hole);
}

/* A name whose own servers are dead times out at a resolver that goes on answering other
 * names: the resolver is alive and must not be set aside for it. */
static void test_dead_name_live_server(void)
{
    char servers[64];
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
    struct dns *d = engine_with(servers, 100, 200, 1, 1000);
    struct got dead[3];
    memset(dead, 0, sizeof(dead));
    ask(d, DNS_A, "dead.example", &dead[0]);
    ask(d, DNS_AAAA, "dead.example", &dead[1]);
    ask(d, DNS_MX, "dead.example", &dead[2]);
    for (int i = 0; i < 6; i++) { /* other names answered every 80 ms meanwhile */
        struct got live = {0};
        char name[32];
        snprintf(name, sizeof(name), "n%d.example", 1 + i % 3);
        ask(d, DNS_TXT, name, &live);
        wait_one(&live, 1);
        idle(0.08);
    }
    CHECK(dead[0].status == DNS_TEMPFAIL && dead[2].status == DNS_TEMPFAIL);
    struct dns_stats st;
    dns_get_stats(d, &st);
    CHECK(st.timeouts == 3 && st.servers_down == 0);
    dns_free(d);
}

/* Reconfiguring with a query in flight: it still ends well; new lookups use the new list. */
static void test_reconfigure(void)
{
    struct dns *d = engine(100, 1000, 1);
    char err[256], servers[64];
    struct got slow = {0}, after = {0}, cached = {0};
    ask(d, DNS_A, "n9.example", &cached);
    wait_one(&cached, 2);
    ask(d, DNS_A, "slow.example", &slow);
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", free_udp_port());
    CHECK(dns_set_servers(d, "not-an-address", err, sizeof(err)) == -1 && err[0]);
    struct dns_options o = {servers, 500, 1, 100, 1000, 86400000, 2000};
    CHECK(dns_reconfigure(d, &o, err, sizeof(err)) == 0);
    ask(d, DNS_A, "n10.example", &after);
    wait_one(&slow, 2);
    wait_one(&after, 2);
    CHECK(slow.status == DNS_OK && strcmp(slow.first, "192.0.2.4") == 0);
    CHECK(after.status == DNS_TEMPFAIL); /* the new server is a closed port */
    struct dns_stats st;
    dns_get_stats(d, &st);
    /* n9 went with the old list; slow.example (in flight then) and n10 came after */
    CHECK(st.cached == 2);
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
    CHECK(dns_set_servers(d, servers, err, sizeof(err)) == 0);
    struct got back = {0};
    ask(d, DNS_A, "n11.example", &back);
    wait_one(&back, 2);
    CHECK(back.status == DNS_OK);
    /* Free with lookups pending: no callback runs (and nothing leaks under ASan). */
    struct got pending = {0}, hit = {0};
    ask(d, DNS_A, "dead.example", &pending);
    ask(d, DNS_A, "n11.example", &hit);
    dns_free(d);
    idle(0.05);
    CHECK(pending.calls == 0 && hit.calls == 0);
}

/* A small cache evicts the least recently used answers; answers expire. */
static void test_eviction_expiry(void)
{
    struct dns *d = engine(16, 1000, 1);
    struct got many[40];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 40; i++) {
        char name[64];
        snprintf(name, sizeof(name), "n%d.example", i);
        ask(d, DNS_A, name, &many[i]);
    }
    done = 0;
    run_until(&done, 40, 5);
    struct dns_stats st;
    dns_get_stats(d, &st);
    CHECK(st.evicted == 24 && st.cached == 16);
    int before = queries_logged("A n0.example.", NULL);
    struct got recent = {0}, old = {0};
    ask(d, DNS_A, "n39.example", &recent); /* recent: still cached */
    ask(d, DNS_A, "n0.example", &old);     /* evicted: asked again */
    done = 0;
    run_until(&done, 2, 2);
    dns_get_stats(d, &st);
    CHECK(recent.status == DNS_OK && old.status == DNS_OK && st.cache_hits == 1);
    CHECK(queries_logged("A n0.example.", NULL) == before + 1);
    dns_free(d);

    d = engine_with(NULL, 100, 1000, 1, 200);
    CHECK(d != NULL); /* resolv.conf's servers: only that it starts */
    dns_free(d);
    d = engine_with("127.0.0.1:5353, [::1]:53, 127.0.0.1", 100, 1000, 1, 200);
    CHECK(d != NULL);
    if (d) {
        dns_get_stats(d, &st);
        CHECK(st.servers == 3 && st.servers_down == 0);
    }
    dns_free(d);
    char servers[64];
    snprintf(servers, sizeof(servers), "127.0.0.1:%d", port);
    d = engine_with(servers, 100, 1000, 1, 200);
    struct got z1 = {0}, z2 = {0}, z3 = {0};
    before = queries_logged("A zero.example.", NULL);
    ask(d, DNS_A, "zero.example", &z1);
    wait_one(&z1, 2);
    ask(d, DNS_A, "zero.example", &z2);
    wait_one(&z2, 2);
    CHECK(z1.ttl_ms == 200 && queries_logged("A zero.example.", NULL) == before + 1);
    usleep(250000);
    ask(d, DNS_A, "zero.example", &z3);
    wait_one(&z3, 2);
    CHECK(z3.status == DNS_OK && queries_logged("A zero.example.", NULL) == before + 2);
    dns_free(d);
}

/* 1,000 distinct names at once. */
static void test_bulk(void)
{
    enum { N = 1000 };
    struct dns *d = engine(2 * N, 2000, 2);
    static struct got g[N];
    memset(g, 0, sizeof(g));
    double t0 = now();
    for (int i = 0; i < N; i++) {
        char name[64];
        snprintf(name, sizeof(name), "q%d.bulk.example", i);
        ask(d, DNS_A, name, &g[i]);
    }
    done = 0;
    run_until(&done, N, 20);
    double took = now() - t0;
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += g[i].calls == 1 && g[i].status == DNS_OK && strcmp(g[i].first, "192.0.2.200") == 0;
    struct dns_stats st;
    dns_get_stats(d, &st);
    printf("%d distinct lookups at once: %d answered in %.0f ms (%llu sent, %llu retries)\n", N, ok,
           took * 1e3, st.sent, st.retries);
    CHECK(ok == N);
    dns_free(d);
}

static void test_names(void)
{
    char out[128], longlabel[80];
    memset(longlabel, 'a', 64);
    strcpy(longlabel + 64, ".example");
    CHECK(dns_name_ok("mail.example.com") && dns_name_ok("mail.example.com.") && dns_name_ok("a"));
    CHECK(!dns_name_ok("") && !dns_name_ok(".") && !dns_name_ok("a..b") && !dns_name_ok("a.."));
    CHECK(!dns_name_ok(longlabel) && dns_name_ok(longlabel + 1));
    CHECK(dns_reverse_name("203.0.113.7", NULL, out, sizeof(out)) == 0);
    CHECK_STR(out, "7.113.0.203.in-addr.arpa");
    CHECK(dns_reverse_name("::ffff:203.0.113.7", NULL, out, sizeof(out)) == 0);
    CHECK_STR(out, "7.113.0.203.in-addr.arpa");
    CHECK(dns_list_name("::ffff:203.0.113.7", "zen.example", out, sizeof(out)) == 0);
    CHECK_STR(out, "7.113.0.203.zen.example");
    CHECK(dns_list_name("10.0.0.1", "zen.example", out, sizeof(out)) == 0);
    CHECK_STR(out, "1.0.0.10.zen.example");
    CHECK(dns_reverse_name("2001:db8::1", NULL, out, sizeof(out)) == 0);
    CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    CHECK(dns_list_name("2001:db8::1", "bl.example", out, sizeof(out)) == 0);
    CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example");
    CHECK(dns_reverse_name("nonsense", NULL, out, sizeof(out)) == -1);
    CHECK(dns_reverse_name("203.0.113.7", NULL, out, 10) == -1);
    CHECK_STR(dns_type_name(DNS_TXT), "TXT");
    CHECK_STR(dns_type_name(65280), "TYPE65280");
}

int main(void)
{
    snprintf(zone_path, sizeof(zone_path), "/tmp/test_dns_zone.%d.json", (int)getpid());
    snprintf(log_path, sizeof(log_path), "/tmp/test_dns_queries.%d.log", (int)getpid());
    signal(SIGPIPE, SIG_IGN);
    test_names();
    test_parser();
    write_zone();
    if (start_server() != 0) {
        CHECK(!"test DNS server started");
        return UNIT_END();
    }
    base = event_base_new();
    struct dns *d = engine(1000, 1000, 2);
    CHECK(d != NULL);
    if (d) {
        test_answers(d);
        test_negative(d);
        test_errors(d);
        test_merge_cancel(d);
        test_nested(d);
        test_head_of_line(d);
        dns_free(d);
        test_timeout();
        test_failover();
        test_dead_name_live_server();
        test_reconfigure();
        test_eviction_expiry();
        test_bulk();
    }
    event_base_free(base);
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
    unlink(zone_path);
    unlink(log_path);
    return UNIT_END();
}
