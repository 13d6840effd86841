/*
 * test_store.c - the state store on a real event loop: LMDB (decisions under a controlled
 * clock, greylisting, the automatic whitelist with the greylist check's parameters (also on
 * Redis: 5 passes counted at most once an hour per client, then every new triplet passes, until
 * the counter expires), notify-once, cancel, bad requests, close and reopen, the expiry sweep in
 * bounded slices, a full map grown, the admin commands) and Redis against a real redis-server
 * started here on a unix socket in a temporary directory: the same random sequence through
 * both back ends gives the same answers field for field; two handles (two MX) enforce one
 * limit together; keys hashed and all with a TTL; NOSCRIPT after SCRIPT FLUSH; AUTH and
 * SELECT; Redis frozen (SIGSTOP) and killed mid-run: failures within the timeout, the breaker
 * open, one log line and one callback each way, recovery. Every answer must come later than
 * the call. `test_store --bench` prints decisions per second instead (100 in flight).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/store/store.h"
#include "policyd/store/store_admin.h"
#include "policyd/lib/log.h"
#include "unit.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct event_base *base;
static char dir[256], sock[300], logfile[300];
static pid_t redis_pid = -1;
static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* wait_for - run the loop until *flag reaches want or ms pass; 1 if it did. */
static int wait_for(const int *flag, int want, int ms)
{
    int64_t end = mono_ms() + ms;
    while (*flag < want && mono_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return *flag >= want;
}

/* spin - run the loop for ms. */
static void spin(int ms)
{
    int never = 0;
    wait_for(&never, 1, ms);
}

/* ---- answers captured ---- */

struct rl_got {
    int calls, in_call, early;
    struct store_rl_result r;
    char detail[256];
    int64_t done_ms;
};

static void rl_cb(const struct store_rl_result *r, void *arg)
{
    struct rl_got *g = arg;
    g->calls++;
    g->early |= g->in_call;
    g->r = *r;
    snprintf(g->detail, sizeof(g->detail), "%s", r->detail ? r->detail : "");
    g->r.detail = g->detail;
    g->done_ms = mono_ms();
}

struct grey_got {
    int calls, in_call, early;
    struct store_grey_result r;
    char detail[256];
};

static void grey_cb(const struct store_grey_result *r, void *arg)
{
    struct grey_got *g = arg;
    g->calls++;
    g->early |= g->in_call;
    g->r = *r;
    snprintf(g->detail, sizeof(g->detail), "%s", r->detail ? r->detail : "");
    g->r.detail = g->detail;
}

struct once_got {
    int calls, in_call, early;
    struct store_once_result r;
};

static void once_cb(const struct store_once_result *r, void *arg)
{
    struct once_got *g = arg;
    g->calls++;
    g->early |= g->in_call;
    g->r = *r;
    g->r.detail = NULL;
}

static int early_answers; /* callbacks that ran inside their call: must stay 0 */

static struct rl_got rl(struct store *s, int adjust, const char *key, const struct store_limit *l,
                        int n, int64_t units, int64_t at)
{
    struct rl_got g = {0};
    g.in_call = 1;
    if (adjust)
        store_rl_adjust(s, key, l, n, units, at, rl_cb, &g);
    else
        store_rl_reserve(s, key, l, n, units, rl_cb, &g);
    g.in_call = 0;
    wait_for(&g.calls, 1, 5000);
    early_answers += g.early || g.calls != 1;
    return g;
}

static struct grey_got grey(struct store *s, const char *triplet, const char *awl,
                            const struct store_grey_params *p0)
{
    struct grey_got g = {0};
    struct store_grey_params p = *p0;
    p.awl_key = awl;
    g.in_call = 1;
    store_grey_check(s, triplet, &p, grey_cb, &g);
    g.in_call = 0;
    wait_for(&g.calls, 1, 5000);
    early_answers += g.early || g.calls != 1;
    return g;
}

static struct once_got once(struct store *s, const char *key, int64_t interval)
{
    struct once_got g = {0};
    g.in_call = 1;
    store_once(s, key, interval, once_cb, &g);
    g.in_call = 0;
    wait_for(&g.calls, 1, 5000);
    early_answers += g.early || g.calls != 1;
    return g;
}

static struct store *open_store(const char *spec, int fake)
{
    struct store_options o;
    char err[512];
    store_options_default(&o);
    o.spec = spec;
    o.timeout_ms = 1000;
    if (fake) {
        o.clock_ms = fake_clock;
        o.clock_arg = NULL;
    }
    struct store *s = store_open(base, &o, err, sizeof(err));
    if (!s)
        fprintf(stderr, "store_open %s: %s\n", spec, err);
    return s;
}

static const struct store_limit five_per_min[] = {{5, 60000}};
static void test_close_inflight(const char *spec);
static const struct store_grey_params gp = {300000, 3600000,        86400000, NULL,
                                            3,      7 * 86400000LL, 3600000};

/* ---- the automatic whitelist (greylist_awl_passes), under a controlled clock ---- */

/*
 * test_awl - the parameters checks/greylist.c passes with the default settings
 * (greylist_awl_passes = 5, greylist_delay = 5m, greylist_retry_window = 2d, greylist_pass_ttl =
 * 35d, one pass counted per client network and hour): the client network's fifth counted pass
 * whitelists it; passes within the hour of a counted one, of any triplet, do not count; a
 * whitelisted client's new triplets are not greylisted, another client's are; the counter
 * lives greylist_pass_ttl after its last use; without awl_passes nothing is ever whitelisted.
 */
static void test_awl(const char *spec, const char *label)
{
    const int64_t min = 60000, hour = 3600000, day = 24 * hour;
    const struct store_grey_params p = {5 * min, 2 * day, 35 * day, NULL, 5, 35 * day, hour};
    const char *awl = "awl:198.51.100.0/24", *other = "awl:203.0.113.0/24";
    char t[64];
    int bad = 0, failed_before = unit_failed;
    struct store *s = open_store(spec, 1);
    CHECK(s != NULL);
    if (!s)
        return;
    fake_now = 1900000000000LL;
    int64_t start = fake_now;
    /* First triplet: new, then passes after the delay: the first counted pass. */
    bad += grey(s, "awl/t0", awl, &p).r.state != STORE_GREY_NEW;
    fake_now += 5 * min;
    struct grey_got g = grey(s, "awl/t0", awl, &p);
    bad += g.r.state != STORE_GREY_PASS || g.r.awl_count != 1;
    /* Within the hour: nine more triplets pass: still one pass. */
    for (int i = 1; i <= 9; i++) {
        snprintf(t, sizeof(t), "awl/t%d", i);
        fake_now += 1 * min;
        bad += grey(s, t, awl, &p).r.state != STORE_GREY_NEW;
        fake_now += 5 * min;
        g = grey(s, t, awl, &p);
        bad += g.r.state != STORE_GREY_PASS || g.r.awl_count != 1;
    }
    CHECK(bad == 0);
    /* One ms short of the hour after the counted pass: not counted; at the hour: counted. */
    fake_now = start + 5 * min + hour - 1;
    CHECK(grey(s, "awl/t0", awl, &p).r.awl_count == 1);
    fake_now += 1;
    CHECK(grey(s, "awl/t0", awl, &p).r.awl_count == 2);
    /* Two more hours, two more passes: four, and a new triplet is still greylisted. */
    for (int k = 3; k <= 4; k++) {
        fake_now += hour;
        g = grey(s, "awl/t1", awl, &p);
        CHECK(g.r.state == STORE_GREY_PASS && g.r.awl_count == k);
    }
    fake_now += 59 * min;
    g = grey(s, "awl/new-before", awl, &p);
    CHECK(g.r.state == STORE_GREY_NEW && g.r.awl_count == 4);
    /* An hour after the last counted pass: a retry that comes too early, or a new triplet, is
     * no pass. */
    fake_now += 1 * min;
    CHECK(grey(s, "awl/new-before", awl, &p).r.state == STORE_GREY_EARLY);
    g = grey(s, "awl/new-2", awl, &p);
    CHECK(g.r.state == STORE_GREY_NEW && g.r.awl_count == 4);
    /* The fifth counted pass whitelists the client network. */
    g = grey(s, "awl/t2", awl, &p);
    CHECK(g.r.state == STORE_GREY_PASS && g.r.awl_count == 5);
    g = grey(s, "awl/new-after", awl, &p);
    CHECK(g.r.state == STORE_GREY_AWL && g.r.awl_count == 5);
    g = grey(s, "awl/new-before", awl, &p); /* pending triplets pass too */
    CHECK(g.r.state == STORE_GREY_AWL);
    /* Another client network is not whitelisted. */
    CHECK(grey(s, "awl/new-after", other, &p).r.state == STORE_GREY_NEW);
    /* Each use refreshes the counter for greylist_pass_ttl: used 34 days apart, it stays. */
    fake_now += 34 * day;
    CHECK(grey(s, "awl/new-3", awl, &p).r.state == STORE_GREY_AWL);
    fake_now += 34 * day;
    CHECK(grey(s, "awl/new-4", awl, &p).r.state == STORE_GREY_AWL);
    /* Unused for longer than that: gone, the client starts over. */
    fake_now += 35 * day + 1;
    g = grey(s, "awl/new-5", awl, &p);
    CHECK(g.r.state == STORE_GREY_NEW && g.r.awl_count == 0);
    /* greylist_awl_passes = 0 (no AWL key): ten passes ten hours apart whitelist nothing. */
    struct store_grey_params none = p;
    none.awl_passes = 0;
    bad = 0;
    for (int i = 0; i < 10; i++) {
        snprintf(t, sizeof(t), "awl0/t%d", i);
        bad += grey(s, t, NULL, &none).r.state != STORE_GREY_NEW;
        fake_now += 5 * min;
        bad += grey(s, t, NULL, &none).r.state != STORE_GREY_PASS;
        fake_now += hour;
    }
    CHECK(bad == 0);
    CHECK(grey(s, "awl0/new", NULL, &none).r.state == STORE_GREY_NEW);
    if (unit_failed > failed_before)
        fprintf(stderr, "  (in test_awl on %s)\n", label);
    store_close(s);
}

/* ---- LMDB ---- */

static void test_lmdb_decisions(void)
{
    char spec[400];
    snprintf(spec, sizeof(spec), "lmdb:%s/state.lmdb", dir);
    fake_now = 1700000000000LL;
    struct store *s = open_store(spec, 1);
    CHECK(s != NULL);
    if (!s)
        return;

    /* Five pass, the sixth is refused with the exact retry time; nothing consumed. */
    for (int i = 0; i < 5; i++) {
        struct rl_got g = rl(s, 0, "user:alice@example.com", five_per_min, 1, 1, 0);
        CHECK(g.r.status == STORE_OK && g.r.allowed && g.r.limits[0].used == i + 1);
        fake_now += 2000;
    }
    struct rl_got g = rl(s, 0, "user:alice@example.com", five_per_min, 1, 1, 0);
    CHECK(g.r.status == STORE_OK && !g.r.allowed && g.r.limits[0].over);
    CHECK(g.r.retry_ms == 1700000000000LL + 60000 && g.r.limits[0].used == 5);
    CHECK(g.r.retry_after_ms == 60000 - 10000);
    CHECK(g.r.limits[0].first_ms == 1700000000000LL && g.r.limits[0].limit == 5);
    fake_now = g.r.retry_ms - 1;
    g = rl(s, 0, "user:alice@example.com", five_per_min, 1, 1, 0);
    CHECK(!g.r.allowed);
    fake_now = g.r.retry_ms;
    g = rl(s, 0, "user:alice@example.com", five_per_min, 1, 1, 0);
    CHECK(g.r.allowed && g.r.at_ms == fake_now);
    /* Release the reservation just made, then a forced add past the limit. */
    int64_t at = g.r.at_ms;
    fake_now += 100;
    g = rl(s, 1, "user:alice@example.com", five_per_min, 1, -1, at);
    CHECK(g.r.status == STORE_OK && g.r.allowed && g.r.limits[0].used == 4);
    g = rl(s, 1, "user:alice@example.com", five_per_min, 1, 3, 0);
    CHECK(g.r.status == STORE_OK && !g.r.allowed && g.r.limits[0].used == 7);
    /* Another key is independent; more than the limit at once never fits. */
    g = rl(s, 0, "user:bob@example.com", five_per_min, 1, 6, 0);
    CHECK(!g.r.allowed && g.r.retry_ms == STORE_NEVER && g.r.retry_after_ms == STORE_NEVER);
    /* A malformed request is a failure answer, later like any other. */
    const struct store_limit dup[] = {{5, 1000}, {6, 1000}};
    g = rl(s, 0, "user:bob@example.com", dup, 2, 1, 0);
    CHECK(g.r.status == STORE_FAIL && strstr(g.detail, "one period"));

    /* Greylisting: new, early, pass, known pass, then the AWL after 3 passes an hour apart. */
    fake_now = 1800000000000LL;
    struct grey_got gg = grey(s, "t1", "client-a", &gp);
    CHECK(gg.r.status == STORE_OK && gg.r.state == STORE_GREY_NEW && gg.r.first_ms == fake_now);
    CHECK(gg.r.retry_ms == fake_now + 300000);
    fake_now += 299999;
    gg = grey(s, "t1", "client-a", &gp);
    CHECK(gg.r.state == STORE_GREY_EARLY && gg.r.retry_ms == 1800000000000LL + 300000);
    fake_now += 1;
    gg = grey(s, "t1", "client-a", &gp);
    CHECK(gg.r.state == STORE_GREY_PASS && gg.r.passed_ms == fake_now && gg.r.awl_count == 1);
    fake_now += 1000;
    gg = grey(s, "t1", "client-a", &gp);
    CHECK(gg.r.state == STORE_GREY_PASS && gg.r.awl_count == 1); /* one pass an hour */
    for (int i = 0; i < 2; i++) {
        fake_now += 3600000;
        gg = grey(s, "t1", "client-a", &gp);
        CHECK(gg.r.state == STORE_GREY_PASS && gg.r.awl_count == i + 2);
    }
    gg = grey(s, "t-other", "client-a", &gp);
    CHECK(gg.r.state == STORE_GREY_AWL && gg.r.awl_count == 3);
    /* Retry after the window: restarted. */
    gg = grey(s, "t2", NULL, &gp);
    CHECK(gg.r.state == STORE_GREY_NEW && gg.r.awl_count == 0);
    fake_now += 300000 + 3600000 + 1;
    gg = grey(s, "t2", NULL, &gp);
    CHECK(gg.r.state == STORE_GREY_RESTART && gg.r.first_ms == fake_now);
    /* A passed triplet unused for longer than its TTL is new again. */
    fake_now += 86400000LL * 3;
    gg = grey(s, "t1", NULL, &gp);
    CHECK(gg.r.state == STORE_GREY_NEW);

    /* Notify-once. */
    CHECK(once(s, "exceeded:alice", 60000).r.first == 1);
    CHECK(once(s, "exceeded:alice", 60000).r.first == 0);
    fake_now += 60000;
    CHECK(once(s, "exceeded:alice", 60000).r.first == 1);

    /* Cancel: the callback never runs. */
    struct rl_got c = {0};
    struct store_op *op = store_rl_reserve(s, "user:carol", five_per_min, 1, 1, rl_cb, &c);
    store_cancel(op);
    spin(50);
    CHECK(c.calls == 0);

    /* Many at once in one batch: exactly five of twenty pass. */
    struct rl_got many[20];
    memset(many, 0, sizeof(many));
    for (int i = 0; i < 20; i++)
        store_rl_reserve(s, "user:dave", five_per_min, 1, 1, rl_cb, &many[i]);
    int done = 0, passed = 0;
    for (int i = 0; i < 20; i++) {
        wait_for(&many[i].calls, 1, 2000);
        done += many[i].calls;
        passed += many[i].r.allowed;
    }
    CHECK(done == 20 && passed == 5);

    struct store_stats st;
    store_stats(s, &st);
    CHECK(strcmp(st.backend, "lmdb") == 0 && st.up && st.inflight == 0 && st.failed == 1);
    store_close(s);

    /* Survives close and reopen. */
    s = open_store(spec, 1);
    CHECK(s != NULL);
    if (!s)
        return;
    g = rl(s, 0, "user:dave", five_per_min, 1, 0, 0);
    CHECK(g.r.allowed && g.r.limits[0].used == 5);
    g = rl(s, 0, "user:dave", five_per_min, 1, 1, 0);
    CHECK(!g.r.allowed);
    store_close(s);
}

static void test_lmdb_sweep_and_growth(void)
{
    char spec[400], err[256];
    struct store_options o;
    snprintf(spec, sizeof(spec), "lmdb:%s/sweep.lmdb", dir);
    store_options_default(&o);
    o.spec = spec;
    o.clock_ms = fake_clock;
    o.sweep_interval_ms = 20;
    o.sweep_batch = 100;
    o.lmdb_map_size = 64 << 10; /* too small for 3,000 records: grown on the way */
    fake_now = 1900000000000LL;
    struct store *s = store_open(base, &o, err, sizeof(err));
    CHECK(s != NULL);
    if (!s)
        return;
    struct once_got gs[3000];
    memset(gs, 0, sizeof(gs));
    char key[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        store_once(s, key, i < 2000 ? 1000 : 3600000, once_cb, &gs[i]);
    }
    int ok = 0;
    for (int i = 0; i < 3000; i++) {
        wait_for(&gs[i].calls, 1, 5000);
        ok += gs[i].r.status == STORE_OK && gs[i].r.first;
    }
    CHECK(ok == 3000);
    struct store_stats st;
    store_stats(s, &st);
    CHECK(st.map_size > (64 << 10));
    /* 2,000 expire; each tick visits at most 100 records. */
    fake_now += 1000;
    unsigned long long before = st.swept;
    int64_t spun = mono_ms();
    spin(30);
    spun = mono_ms() - spun;
    store_stats(s, &st);
    /* At most one tick's worth per 20 ms that passed, and two more: a loaded machine may spin
     * longer than asked (count the ticks that could have come, not the ones asked for), a tick
     * may have been due before the spin began, and libevent keeps a persistent timer's
     * schedule, so a late tick is followed by the next one on time. */
    CHECK(st.swept - before <= (unsigned long long)(spun / 20 + 2) * 100);
    int64_t end = mono_ms() + 5000;
    while (st.swept < 2000 && mono_ms() < end) {
        spin(20);
        store_stats(s, &st);
    }
    CHECK(st.swept == 2000);
    /* What is left is alive. */
    CHECK(once(s, "k2500", 3600000).r.first == 0);
    CHECK(once(s, "k5", 1000).r.first == 1);
    store_close(s);
}

static void test_admin(const char *spec, int fake, const char *label)
{
    char err[512];
    struct store_options o;
    struct store_rl_info info, top[3];
    size_t count = 0;
    store_options_default(&o);
    o.spec = spec;
    if (fake)
        o.clock_ms = fake_clock;
    struct store_admin *a = store_admin_open(&o, err, sizeof(err));
    CHECK(a != NULL);
    if (!a) {
        fprintf(stderr, "%s: %s\n", label, err);
        return;
    }
    CHECK(store_admin_show(a, "admin:x", &info, err, sizeof(err)) == 1);
    CHECK(strcmp(info.key, "admin:x") == 0 && info.nwindows == 2);
    CHECK(info.w[0].used == 3 && info.w[0].limit == 10 && info.w[1].used == 3);
    CHECK(store_admin_show(a, "admin:none", &info, err, sizeof(err)) == 0);
    CHECK(store_admin_top(a, 3, top, &count, err, sizeof(err)) == 0);
    CHECK(count == 3 && strcmp(top[0].key, "admin:y") == 0 && top[0].ratio >= top[1].ratio &&
          top[1].ratio >= top[2].ratio);
    CHECK(store_admin_block(a, "admin:x", 3600000, err, sizeof(err)) == 0);
    CHECK(store_admin_show(a, "admin:x", &info, err, sizeof(err)) == 1 &&
          info.blocked_until > info.now_ms);
    CHECK(store_admin_unblock(a, "admin:x", err, sizeof(err)) == 1);
    CHECK(store_admin_unblock(a, "admin:x", err, sizeof(err)) == 0);
    CHECK(store_admin_reset(a, "admin:y", err, sizeof(err)) == 1);
    CHECK(store_admin_reset(a, "admin:y", err, sizeof(err)) == 0);
    CHECK(store_admin_show(a, "admin:y", &info, err, sizeof(err)) == 0);
    CHECK(store_admin_block(a, "admin:blocked", 3600000, err, sizeof(err)) == 0);
    store_admin_close(a);
}

/* admin_fixture - counters for test_admin: x at 3/10, y at 9/10, z at 1/10 (+ a 1h window). */
static void admin_fixture(struct store *s)
{
    const struct store_limit l[] = {{10, 60000}, {100, 3600000}};
    for (int i = 0; i < 3; i++)
        rl(s, 0, "admin:x", l, 2, 1, 0);
    rl(s, 0, "admin:y", l, 2, 9, 0);
    rl(s, 0, "admin:z", l, 2, 1, 0);
}

static void test_lmdb_admin(void)
{
    char spec[400];
    snprintf(spec, sizeof(spec), "lmdb:%s/admin.lmdb", dir);
    fake_now = 2000000000000LL;
    struct store *s = open_store(spec, 1);
    CHECK(s != NULL);
    if (!s)
        return;
    admin_fixture(s);
    store_close(s); /* LMDB: one environment per process at a time */
    test_admin(spec, 1, "lmdb admin");
    s = open_store(spec, 1);
    if (!s)
        return;
    struct rl_got g = rl(s, 0, "admin:blocked", five_per_min, 1, 1, 0);
    CHECK(!g.r.allowed && g.r.blocked && g.r.retry_ms == fake_now + 3600000);
    store_close(s);
}

static void test_specs(void)
{
    char err[256], spec[400];
    CHECK(store_spec_check("lmdb:/var/lib/policyd/state.lmdb", err, sizeof(err)) == 0);
    CHECK(store_spec_check("redis:unix:/run/redis/redis-server.sock", err, sizeof(err)) == 0);
    CHECK(store_spec_check("redis:inet:10.0.0.5:6379", err, sizeof(err)) == 0);
    CHECK(store_spec_check("redis:inet:[::1]:6379", err, sizeof(err)) == 0);
    CHECK(store_spec_check("redis:inet:localhost", err, sizeof(err)) == 0);
    CHECK(store_spec_check("redis:inet:10.0.0.5:http", err, sizeof(err)) == -1 &&
          strstr(err, "port"));
    CHECK(store_spec_check("redis:tcp:10.0.0.5", err, sizeof(err)) == -1);
    CHECK(store_spec_check("lmdb:", err, sizeof(err)) == -1);
    CHECK(store_spec_check("memcache:x", err, sizeof(err)) == -1 && strstr(err, "lmdb:PATH"));
    /* An LMDB directory that does not exist: refused at open, with the reason. */
    struct store_options o;
    store_options_default(&o);
    o.spec = "lmdb:/nonexistent/dir/state.lmdb";
    CHECK(store_open(base, &o, err, sizeof(err)) == NULL && strstr(err, "/nonexistent/dir"));
    /* A prefix too long for a key name. */
    snprintf(spec, sizeof(spec), "lmdb:%s/prefix.lmdb", dir);
    o.spec = spec;
    o.key_prefix = "0123456789012345678901234567890123456789012345678901234567890123456789";
    CHECK(store_open(base, &o, err, sizeof(err)) == NULL && strstr(err, "prefix"));
    snprintf(spec, sizeof(spec), "lmdb:%s/close.lmdb", dir);
    test_close_inflight(spec);
}

/* ---- Redis ---- */

static int redis_start(void)
{
    unlink(sock);
    redis_pid = fork();
    if (redis_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* no stray server if the test dies */
        int null = open("/dev/null", 0);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock,
               "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", dir,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectUnixWithTimeout(sock, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        usleep(20000);
    }
    return -1;
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGCONT);
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
    }
}

static redisContext *redis_sync(void)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectUnixWithTimeout(sock, tv);
    return c && !c->err ? c : NULL;
}

/* test_agreement - one random sequence through LMDB and Redis: the same answers. */
static void test_agreement(void)
{
    char lspec[400], rspec[400];
    snprintf(lspec, sizeof(lspec), "lmdb:%s/agree.lmdb", dir);
    snprintf(rspec, sizeof(rspec), "redis:unix:%s", sock);
    struct store *l = open_store(lspec, 1), *r = open_store(rspec, 1);
    CHECK(l && r);
    if (!l || !r) {
        store_close(l);
        store_close(r);
        return;
    }
    static const struct store_limit sets[3][3] = {
        {{3, 60000}}, {{2, 1000}, {6, 10000}}, {{10, 600000}, {25, 3600000}, {40, 86400000}}};
    static const int nset[3] = {1, 2, 3};
    static const struct store_grey_params gq = {5000, 20000, 60000, NULL, 2, 300000, 10000};
    int64_t offset = 2100000000000LL, start = mono_ms();
    int64_t ats[5][8] = {{0}};
    uint64_t rng = 12345;
    int ops = 0, same = 0, allowed = 0, refused = 0, grey_states[5] = {0}, firsts = 0;
    int most_windows = 0, nedges = 0, edge_next = 0;
    struct edge {
        int64_t t;
        int k, kind, set;
    } edges[64];
#define EDGE(time)                                                                                 \
    do {                                                                                           \
        if ((time) > 0) {                                                                          \
            edges[edge_next] = (struct edge){(time), k, kind, set};                                \
            edge_next = (edge_next + 1) % 64;                                                      \
            nedges += nedges < 64;                                                                 \
        }                                                                                          \
    } while (0)
    struct store_options ro;
    char rerr[256];
    store_options_default(&ro);
    ro.spec = rspec;
    ro.clock_ms = fake_clock;
    struct store_admin *ra = store_admin_open(&ro, rerr, sizeof(rerr)); /* to look inside */
    char key[32], awl[32];

    for (int step = 0; step < 3000; step++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        uint64_t x = rng;
        /* Logical time never runs slower than real time, so a key Redis expires by its TTL is
         * expired for the LMDB side too. */
        offset += x % 61 == 0 ? (int64_t)((x >> 8) % 90000) : (int64_t)((x >> 8) % 150);
        if (x % 97 == 0)
            offset += 2 * 3600000;
        fake_now = offset + (mono_ms() - start);
        /* Every third step lands exactly on an edge an earlier answer named (a retry time,
         * an expiry, a grouping step), or one ms before it. */
        int k = (int)((x >> 20) % 5), kind = (int)((x >> 24) % 10), set = (int)((x >> 28) % 4);
        if (x % 3 == 0 && nedges > 0) {
            const struct edge *e = &edges[(x >> 12) % (uint64_t)nedges];
            int64_t t = e->t - (int64_t)((x >> 16) % 2);
            if (t > fake_now) { /* the same key and operation as the answer that named it */
                offset += t - fake_now;
                fake_now = t;
                k = e->k;
                kind = e->kind;
                set = e->set;
            }
        }
        snprintf(key, sizeof(key), "key%d", k);
        int same_now;
        /* Set 3: eight limits out of twenty periods, so a key collects more than the
         * WINDOW_MAX_SET windows it may keep and the oldest unnamed ones are dropped. */
        struct store_limit many[8];
        for (int j = 0; j < 8; j++)
            many[j] = (struct store_limit){6, 1000 * (1 + (int64_t)(((x >> 50) + 7 * j) % 20))};
        const struct store_limit *lims = set < 3 ? sets[set] : many;
        int nl = set < 3 ? nset[set] : 8;
        if (kind < 6) {
            int adjust = kind == 5;
            int64_t units = adjust ? ((x >> 32) % 2 ? -1 : 2) : (int64_t)(x >> 32) % 4;
            int64_t at = ats[k][(x >> 40) % 8];
            struct rl_got a = rl(l, adjust, key, lims, nl, units, at);
            struct rl_got b = rl(r, adjust, key, lims, nl, units, at);
            same_now = a.r.status == STORE_OK && b.r.status == STORE_OK &&
                       a.r.allowed == b.r.allowed && a.r.blocked == b.r.blocked &&
                       a.r.now_ms == b.r.now_ms && a.r.retry_ms == b.r.retry_ms &&
                       a.r.nlimits == b.r.nlimits;
            for (int i = 0; same_now && i < a.r.nlimits; i++)
                same_now = memcmp(&a.r.limits[i], &b.r.limits[i], sizeof(a.r.limits[i])) == 0;
            if (!same_now)
                fprintf(stderr,
                        "step %d %s %s units %lld: lmdb allowed %d retry %lld used %lld "
                        "first %lld | redis allowed %d retry %lld used %lld first %lld (%s)\n",
                        step, adjust ? "adjust" : "reserve", key, (long long)units, a.r.allowed,
                        (long long)a.r.retry_ms, (long long)a.r.limits[0].used,
                        (long long)a.r.limits[0].first_ms, b.r.allowed, (long long)b.r.retry_ms,
                        (long long)b.r.limits[0].used, (long long)b.r.limits[0].first_ms, b.detail);
            if (!adjust && a.r.allowed && units > 0)
                ats[k][(x >> 44) % 8] = a.r.at_ms;
            if (a.r.status == STORE_OK) {
                EDGE(a.r.retry_ms);
                for (int i = 0; i < a.r.nlimits; i++) {
                    EDGE(a.r.limits[i].first_ms + a.r.limits[i].period_ms);
                    EDGE(a.r.at_ms + (a.r.limits[i].period_ms + 31) / 32);
                }
            }
            allowed += !adjust && a.r.allowed && units > 0;
            if (set == 3 && ra) {
                struct store_rl_info info;
                char err[256];
                if (store_admin_show(ra, key, &info, err, sizeof(err)) == 1 &&
                    info.nwindows > most_windows)
                    most_windows = info.nwindows;
            }
            refused += !adjust && !a.r.allowed;
        } else if (kind < 9) {
            snprintf(awl, sizeof(awl), "client%d", k % 2);
            struct grey_got a = grey(l, key, kind == 8 ? NULL : awl, &gq);
            struct grey_got b = grey(r, key, kind == 8 ? NULL : awl, &gq);
            same_now = a.r.status == STORE_OK && b.r.status == STORE_OK && a.r.state == b.r.state &&
                       a.r.now_ms == b.r.now_ms && a.r.first_ms == b.r.first_ms &&
                       a.r.retry_ms == b.r.retry_ms && a.r.passed_ms == b.r.passed_ms &&
                       a.r.awl_count == b.r.awl_count;
            if (!same_now)
                fprintf(stderr,
                        "step %d grey %s: lmdb %d first %lld awl %lld | redis %d %lld %lld (%s)\n",
                        step, key, a.r.state, (long long)a.r.first_ms, (long long)a.r.awl_count,
                        b.r.state, (long long)b.r.first_ms, (long long)b.r.awl_count, b.detail);
            grey_states[a.r.state]++;
            EDGE(a.r.retry_ms);
            EDGE(a.r.first_ms + gq.delay_ms + gq.retry_window_ms);
            EDGE(a.r.first_ms + gq.delay_ms + 2 * gq.retry_window_ms);
            EDGE(a.r.now_ms + gq.pass_ttl_ms);
            if (a.r.state == STORE_GREY_PASS)
                EDGE(a.r.now_ms + gq.awl_interval_ms);
        } else {
            struct once_got a = once(l, key, 30000), b = once(r, key, 30000);
            same_now = a.r.status == STORE_OK && b.r.status == STORE_OK && a.r.first == b.r.first &&
                       a.r.now_ms == b.r.now_ms;
            firsts += a.r.first;
            EDGE(a.r.now_ms + 30000);
        }
        ops++;
        same += same_now;
    }
    printf("# agreement: %d operations (%d admitted, %d refused; greylist new %d early %d pass %d "
           "restart %d awl %d; %d first claims), %d identical\n",
           ops, allowed, refused, grey_states[0], grey_states[1], grey_states[2], grey_states[3],
           grey_states[4], firsts, same);
    CHECK(same == ops);
    CHECK(allowed > 100 && refused > 100 && grey_states[0] && grey_states[1] && grey_states[2] &&
          grey_states[3] && grey_states[4] && firsts > 10);
    store_close(l);
    store_close(r);
    store_admin_close(ra);
    CHECK(most_windows == 16); /* the eviction path ran */
#undef EDGE
}

/* test_two_mx - two handles on one Redis (real clock: TIME) share one limit. */
static void test_two_mx(void)
{
    char spec[400];
    snprintf(spec, sizeof(spec), "redis:unix:%s", sock);
    struct store *a = open_store(spec, 0), *b = open_store(spec, 0);
    CHECK(a && b);
    if (!a || !b) {
        store_close(a);
        store_close(b);
        return;
    }
    /* Sequential, alternating: the 6th is refused whichever handle asks. */
    int passed = 0;
    for (int i = 0; i < 5; i++)
        passed += rl(i % 2 ? b : a, 0, "mx:user1", five_per_min, 1, 1, 0).r.allowed;
    struct rl_got sixth_a = rl(a, 0, "mx:user1", five_per_min, 1, 1, 0);
    struct rl_got sixth_b = rl(b, 0, "mx:user1", five_per_min, 1, 1, 0);
    CHECK(passed == 5 && !sixth_a.r.allowed && !sixth_b.r.allowed);
    CHECK(sixth_b.r.retry_after_ms > 59000 && sixth_b.r.retry_after_ms <= 60000);
    /* Parallel: 20 at once through both handles, exactly 5 admitted. */
    struct rl_got g[20];
    memset(g, 0, sizeof(g));
    for (int i = 0; i < 20; i++)
        store_rl_reserve(i % 2 ? b : a, "mx:user2", five_per_min, 1, 1, rl_cb, &g[i]);
    passed = 0;
    int done = 0;
    for (int i = 0; i < 20; i++) {
        wait_for(&g[i].calls, 1, 3000);
        done += g[i].calls;
        passed += g[i].r.allowed;
    }
    CHECK(done == 20 && passed == 5);
    /* Notify-once across both. */
    CHECK(once(a, "notice:user2", 60000).r.first + once(b, "notice:user2", 60000).r.first == 1);
    store_close(a);
    store_close(b);

    /* Key hygiene: no readable key in KEYS, every key with a TTL. */
    redisContext *c = redis_sync();
    CHECK(c != NULL);
    if (!c)
        return;
    redisReply *keys = redisCommand(c, "KEYS *");
    int readable = 0, no_ttl = 0, n = 0;
    for (size_t i = 0; keys && i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        n++;
        readable += strstr(k, "user") != NULL || strstr(k, "mx") != NULL;
        readable += strncmp(k, "pd:", 3) != 0;
        redisReply *ttl = redisCommand(c, "PTTL %s", k);
        no_ttl += !ttl || ttl->integer <= 0;
        freeReplyObject(ttl);
    }
    freeReplyObject(keys);
    CHECK(n >= 3 && readable == 0 && no_ttl == 0);
    redisFree(c);
}

/* test_noscript_auth_select - EVALSHA after SCRIPT FLUSH; AUTH and SELECT; a wrong password. */
static void test_noscript_auth_select(void)
{
    char spec[400], pwfile[400], err[512];
    snprintf(spec, sizeof(spec), "redis:unix:%s", sock);
    struct store *s = open_store(spec, 0);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(rl(s, 0, "ns:a", five_per_min, 1, 1, 0).r.allowed);
    redisContext *c = redis_sync();
    CHECK(c != NULL);
    if (!c) {
        store_close(s);
        return;
    }
    freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
    struct rl_got g = rl(s, 0, "ns:a", five_per_min, 1, 1, 0);
    CHECK(g.r.status == STORE_OK && g.r.allowed && g.r.limits[0].used == 2);
    store_close(s);

    /* A password and database 2. */
    snprintf(pwfile, sizeof(pwfile), "%s/redis.pw", dir);
    FILE *f = fopen(pwfile, "w");
    fputs("s3cret pass\n", f);
    fclose(f);
    freeReplyObject(redisCommand(c, "CONFIG SET requirepass %s", "s3cret pass"));
    freeReplyObject(redisCommand(c, "AUTH %s", "s3cret pass"));
    struct store_options o;
    store_options_default(&o);
    o.spec = spec;
    o.timeout_ms = 1000;
    o.redis_db = 2;
    o.redis_password_file = pwfile;
    s = store_open(base, &o, err, sizeof(err));
    CHECK(s != NULL);
    if (s) {
        g = rl(s, 0, "db2:a", five_per_min, 1, 1, 0);
        CHECK(g.r.status == STORE_OK && g.r.allowed);
        store_close(s);
    }
    freeReplyObject(redisCommand(c, "SELECT 2"));
    redisReply *n = redisCommand(c, "DBSIZE");
    CHECK(n && n->integer == 1);
    freeReplyObject(n);
    freeReplyObject(redisCommand(c, "SELECT 0"));
    /* The wrong password: a failure answer that says why. */
    f = fopen(pwfile, "w");
    fputs("wrong\n", f);
    fclose(f);
    s = store_open(base, &o, err, sizeof(err));
    CHECK(s != NULL);
    if (s) {
        g = rl(s, 0, "db2:a", five_per_min, 1, 1, 0);
        CHECK(g.r.status == STORE_FAIL && strstr(g.detail, "AUTH"));
        store_close(s);
    }
    freeReplyObject(redisCommand(c, "CONFIG SET requirepass %s", ""));
    redisFree(c);
    /* A missing password file is refused at open. */
    o.redis_password_file = "/nonexistent/pw";
    CHECK(store_open(base, &o, err, sizeof(err)) == NULL && strstr(err, "/nonexistent/pw"));
}

static int ups, downs;

static void on_state(void *arg, int up, const char *detail)
{
    (void)arg;
    (void)detail;
    if (up)
        ups++;
    else
        downs++;
}

static int log_lines(const char *what)
{
    char line[2048];
    int n = 0;
    log_flush();
    FILE *f = fopen(logfile, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, what) != NULL;
    fclose(f);
    return n;
}

/* test_outage - Redis frozen, then killed, mid-run. */
static void test_outage(void)
{
    char spec[400], err[512];
    struct store_options o;
    snprintf(spec, sizeof(spec), "redis:unix:%s", sock);
    store_options_default(&o);
    o.spec = spec;
    o.timeout_ms = 100;
    o.failure_threshold = 3;
    o.retry_interval_ms = 300;
    o.on_state = on_state;
    struct store *s = store_open(base, &o, err, sizeof(err));
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(rl(s, 0, "out:late", five_per_min, 1, 1, 0).r.allowed);

    /* A short freeze: one caller times out, Redis wakes up, its late reply is dropped (the
     * reservation itself happened: a timeout is an unknown outcome), the next one passes. */
    kill(redis_pid, SIGSTOP);
    struct rl_got late = rl(s, 0, "out:late", five_per_min, 1, 1, 0);
    kill(redis_pid, SIGCONT);
    CHECK(late.r.status == STORE_FAIL && strstr(late.detail, "timeout after 100 ms"));
    struct rl_got next = rl(s, 0, "out:late", five_per_min, 1, 1, 0);
    CHECK(next.r.status == STORE_OK && next.r.allowed && next.r.limits[0].used == 3);
    struct store_stats st;
    store_stats(s, &st);
    CHECK(st.late_replies == 1 && st.timeouts == 1 && st.up && downs == 0);
    CHECK(rl(s, 0, "out:a", five_per_min, 1, 1, 0).r.allowed);

    /* Frozen: each caller fails within the timeout; the third opens the breaker. */
    kill(redis_pid, SIGSTOP);
    int slow = 0, failed = 0;
    for (int i = 0; i < 3; i++) {
        int64_t t0 = mono_ms();
        struct rl_got g = rl(s, 0, "out:a", five_per_min, 1, 1, 0);
        failed += g.r.status == STORE_FAIL && strstr(g.detail, "timeout") != NULL;
        slow += g.done_ms - t0 > 100 + 60;
    }
    CHECK(failed == 3 && slow == 0);
    store_stats(s, &st);
    CHECK(!st.up && strcmp(st.breaker, "open") == 0 && st.timeouts >= 4 && downs == 1);
    /* Open: at once, no waiting. */
    int64_t t0 = mono_ms();
    struct rl_got g = rl(s, 0, "out:a", five_per_min, 1, 1, 0);
    CHECK(g.r.status == STORE_FAIL && strstr(g.detail, "circuit open") && mono_ms() - t0 < 50);
    /* Trials time out while frozen: still one down line. */
    spin(900);
    CHECK(downs == 1 && ups == 0 && log_lines("is down") == 1);
    kill(redis_pid, SIGCONT);
    wait_for(&ups, 1, 3000);
    CHECK(ups == 1 && log_lines("is up again") == 1);
    /* A timed-out operation has an unknown outcome: Redis ran the three frozen ones (they were
     * in its socket) when it woke up, so 2 to 5 units are counted now. */
    g = rl(s, 0, "out:a", five_per_min, 1, 1, 0);
    CHECK(g.r.status == STORE_OK && g.r.allowed && g.r.limits[0].used >= 2 &&
          g.r.limits[0].used <= 5);
    store_stats(s, &st);
    CHECK(st.up && strcmp(st.breaker, "closed") == 0 && st.state_changes == 2);

    /* Killed: the connection drops, callers fail at once, the breaker opens. */
    redis_stop();
    failed = 0;
    for (int i = 0; i < 4; i++) {
        t0 = mono_ms();
        g = rl(s, 0, "out:a", five_per_min, 1, 1, 0);
        failed += g.r.status == STORE_FAIL && mono_ms() - t0 <= 100 + 60;
    }
    CHECK(failed == 4 && downs == 2 && log_lines("is down") == 2);
    /* Restarted: back after the cool-down and one trial (state lost: --save ''). */
    CHECK(redis_start() == 0);
    wait_for(&ups, 2, 3000);
    CHECK(ups == 2 && downs == 2 && log_lines("is up again") == 2);
    g = rl(s, 0, "out:a", five_per_min, 1, 1, 0);
    CHECK(g.r.status == STORE_OK && g.r.allowed && g.r.limits[0].used == 1);
    store_stats(s, &st);
    CHECK(st.failed >= 8 && st.inflight == 0);
    store_close(s);
}

/* test_close_inflight - closing with operations queued or in flight: no callback, no leak. */
static void test_close_inflight(const char *spec)
{
    struct rl_got g[10];
    memset(g, 0, sizeof(g));
    struct store *s = open_store(spec, 0);
    CHECK(s != NULL);
    if (!s)
        return;
    for (int i = 0; i < 10; i++)
        store_rl_reserve(s, "close:a", five_per_min, 1, 1, rl_cb, &g[i]);
    store_close(s); /* Redis: their commands sit in hiredis's buffer, their replies pending */
    spin(50);
    int calls = 0;
    for (int i = 0; i < 10; i++)
        calls += g[i].calls;
    CHECK(calls == 0);
}

/* script_calls - EVALSHA and EVAL calls Redis has run so far. */
static long script_calls(void)
{
    redisContext *c = redis_sync();
    long n = 0;
    if (!c)
        return -1;
    redisReply *r = redisCommand(c, "INFO commandstats");
    for (const char *name = "cmdstat_evalsha:calls="; r && r->type == REDIS_REPLY_STRING;
         name = "cmdstat_eval:calls=") {
        const char *at = strstr(r->str, name);
        if (at)
            n += atol(at + strlen(name));
        if (name[12] == ':')
            break;
    }
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* test_batches - operations asked in one turn of the loop: Redis runs them as a few script
 * calls (64 at most each), in order, each decision atomic; LMDB runs its queue in order in one
 * transaction: the same answers op for op, keys repeated within a batch, reserves and
 * adjustments mixed. */
static void test_batches(void)
{
    char lspec[400], rspec[400];
    snprintf(lspec, sizeof(lspec), "lmdb:%s/batch.lmdb", dir);
    snprintf(rspec, sizeof(rspec), "redis:unix:%s", sock);
    struct store *l = open_store(lspec, 1), *r = open_store(rspec, 1);
    CHECK(l && r);
    if (!l || !r) {
        store_close(l);
        store_close(r);
        return;
    }
    enum { N = 150 };
    static struct rl_got a[N], b[N];
    static const struct store_limit lims[] = {{30, 60000}, {150, 3600000}},
                                    hundred[] = {{100, 60000}};
    uint64_t rng = 4242;
    int same = 0, total = 0, admitted = 0, refused = 0;
    int64_t at[4] = {0};
    char key[32];

    /* One key, 150 reserves at once: exactly the first 100 pass, in order, in 3 calls. */
    fake_now = 2200000000000LL;
    long calls = script_calls();
    memset(b, 0, sizeof(b));
    for (int i = 0; i < N; i++)
        store_rl_reserve(r, "batch:one", hundred, 1, 1, rl_cb, &b[i]);
    int ordered = 1, done = 0;
    for (int i = 0; i < N; i++) {
        wait_for(&b[i].calls, 1, 5000);
        done += b[i].calls == 1;
        ordered &= b[i].r.status == STORE_OK && b[i].r.allowed == (i < 100) &&
                   b[i].r.limits[0].used == (i < 100 ? i + 1 : 100);
    }
    calls = script_calls() - calls;
    CHECK(done == N && ordered);
    CHECK(calls >= 3 && calls <= 4); /* 64 + 64 + 22 (one more if the script was reloaded) */

    /* Random rounds through both back ends, time moving between rounds. */
    for (int round = 0; round < 8; round++) {
        fake_now += round % 3 == 0 ? 61000 : 1500;
        memset(a, 0, sizeof(a));
        memset(b, 0, sizeof(b));
        for (int i = 0; i < N; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            int k = (int)(rng % 4), adjust = rng % 9 == 0;
            int64_t units = adjust ? ((rng >> 8) % 2 ? -1 : 2) : (int64_t)((rng >> 8) % 3);
            snprintf(key, sizeof(key), "batch:key%d", k);
            if (adjust) {
                store_rl_adjust(l, key, lims, 2, units, at[k], rl_cb, &a[i]);
                store_rl_adjust(r, key, lims, 2, units, at[k], rl_cb, &b[i]);
            } else {
                store_rl_reserve(l, key, lims, 2, units, rl_cb, &a[i]);
                store_rl_reserve(r, key, lims, 2, units, rl_cb, &b[i]);
            }
            if (!adjust && units > 0 && round % 2)
                at[k] = fake_now; /* later adjustments release from this round's entry */
        }
        for (int i = 0; i < N; i++) {
            wait_for(&a[i].calls, 1, 5000);
            wait_for(&b[i].calls, 1, 5000);
            int eq = a[i].calls == 1 && b[i].calls == 1 && a[i].r.status == STORE_OK &&
                     b[i].r.status == STORE_OK && a[i].r.allowed == b[i].r.allowed &&
                     a[i].r.blocked == b[i].r.blocked && a[i].r.now_ms == b[i].r.now_ms &&
                     a[i].r.retry_ms == b[i].r.retry_ms && a[i].r.nlimits == b[i].r.nlimits;
            for (int j = 0; eq && j < a[i].r.nlimits; j++)
                eq = memcmp(&a[i].r.limits[j], &b[i].r.limits[j], sizeof(a[i].r.limits[j])) == 0;
            if (!eq)
                fprintf(stderr,
                        "batch round %d op %d: lmdb allowed %d used %lld/%lld | redis allowed %d "
                        "used %lld/%lld (%s)\n",
                        round, i, a[i].r.allowed, (long long)a[i].r.limits[0].used,
                        (long long)a[i].r.limits[1].used, b[i].r.allowed,
                        (long long)b[i].r.limits[0].used, (long long)b[i].r.limits[1].used,
                        b[i].detail);
            same += eq;
            total++;
            admitted += a[i].r.allowed;
            refused += !a[i].r.allowed;
        }
    }
    printf("# batches: %d operations (%d allowed, %d refused), %d identical\n", total, admitted,
           refused, same);
    CHECK(same == total && admitted > 100 && refused > 100);
    store_close(l);
    store_close(r);
}

/* test_record_format - a record in the MessagePack format of before is read (and rewritten);
 * the TTL covers the record's expiry, a write that needs no more keeps it, one that does moves
 * it. */
static void test_record_format(void)
{
    char spec[400];
    snprintf(spec, sizeof(spec), "redis:unix:%s", sock);
    redisContext *c = redis_sync();
    struct store *s = open_store(spec, 1);
    CHECK(c && s);
    if (!c || !s) {
        if (c)
            redisFree(c);
        store_close(s);
        return;
    }
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    fake_now = 2300000000000LL;
    CHECK(rl(s, 0, "fmt:old", five_per_min, 1, 1, 0).r.allowed);
    redisReply *keys = redisCommand(c, "KEYS pd:rl:*");
    CHECK(keys && keys->type == REDIS_REPLY_ARRAY && keys->elements == 1);
    if (keys && keys->type == REDIS_REPLY_ARRAY && keys->elements == 1) {
        char kname[200], now[32];
        snprintf(kname, sizeof(kname), "%s", keys->element[0]->str);
        snprintf(now, sizeof(now), "%lld", (long long)fake_now);
        /* {1, name, blocked_until, nwin, period, limit, n, first, last, units}: 3 units */
        freeReplyObject(
            redisCommand(c, "EVAL %s 1 %s %s %s",
                         "redis.call('SET', KEYS[1], cmsgpack.pack({1, ARGV[1], 0, 1, 60000, 5, 1, "
                         "tonumber(ARGV[2]), tonumber(ARGV[2]), 3}), 'PX', 60000)",
                         kname, "fmt:old", now));
        struct rl_got g = rl(s, 0, "fmt:old", five_per_min, 1, 1, 0);
        CHECK(g.r.status == STORE_OK && g.r.allowed && g.r.limits[0].used == 4 &&
              g.r.limits[0].first_ms == fake_now);
        struct store_options o;
        char err[256];
        store_options_default(&o);
        o.spec = spec;
        o.clock_ms = fake_clock;
        struct store_admin *a = store_admin_open(&o, err, sizeof(err));
        struct store_rl_info info;
        CHECK(a && store_admin_show(a, "fmt:old", &info, err, sizeof(err)) == 1 &&
              strcmp(info.key, "fmt:old") == 0 && info.nwindows == 1 && info.w[0].used == 4);
        store_admin_close(a);

        /* TTL: 60 s + 1/32 from the first unit of the record rewritten now */
        redisReply *t1 = redisCommand(c, "PTTL %s", kname);
        CHECK(t1 && t1->integer > 60000 && t1->integer <= 60000 + 1875);
        usleep(20000);
        rl(s, 0, "fmt:old", five_per_min, 1, 0, 0);             /* looks only: nothing written */
        g = rl(s, 1, "fmt:old", five_per_min, 1, -1, fake_now); /* released: written */
        CHECK(g.r.status == STORE_OK && g.r.limits[0].used == 3);
        redisReply *t2 = redisCommand(c, "PTTL %s", kname);
        CHECK(t1 && t2 && t2->integer < t1->integer); /* kept */
        fake_now += 1000;
        CHECK(rl(s, 0, "fmt:old", five_per_min, 1, 1, 0).r.allowed);
        redisReply *t3 = redisCommand(c, "PTTL %s", kname);
        CHECK(t3 && t3->integer > 60000); /* still enough: kept */
        fake_now += 2000;                 /* past the 1/32 margin */
        CHECK(rl(s, 0, "fmt:old", five_per_min, 1, 1, 0).r.allowed);
        redisReply *t4 = redisCommand(c, "PTTL %s", kname);
        CHECK(t4 && t4->integer > 61000 && t4->integer <= 60000 + 1875); /* moved */
        freeReplyObject(t1);
        freeReplyObject(t2);
        freeReplyObject(t3);
        freeReplyObject(t4);
    }
    freeReplyObject(keys);
    redisFree(c);
    store_close(s);
}

/* test_batch_timeout - Redis frozen with a batch in flight: every operation of it fails at the
 * timeout, each counted; the late reply is dropped (and counted per operation). */
static void test_batch_timeout(void)
{
    char spec[400], err[512];
    struct store_options o;
    snprintf(spec, sizeof(spec), "redis:unix:%s", sock);
    store_options_default(&o);
    o.spec = spec;
    o.timeout_ms = 100;
    o.failure_threshold = 1000; /* the breaker stays closed here: test_outage tries it */
    struct store *s = store_open(base, &o, err, sizeof(err));
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(rl(s, 0, "bt:a", five_per_min, 1, 1, 0).r.allowed);
    struct rl_got g[10];
    memset(g, 0, sizeof(g));
    kill(redis_pid, SIGSTOP);
    int64_t t0 = mono_ms();
    for (int i = 0; i < 10; i++)
        store_rl_reserve(s, i < 5 ? "bt:a" : "bt:b", five_per_min, 1, 1, rl_cb, &g[i]);
    int timed_out = 0, slow = 0;
    for (int i = 0; i < 10; i++) {
        wait_for(&g[i].calls, 1, 2000);
        timed_out += g[i].calls == 1 && g[i].r.status == STORE_FAIL &&
                     strstr(g[i].detail, "timeout after 100 ms") != NULL;
        slow += g[i].done_ms - t0 > 100 + 60;
    }
    kill(redis_pid, SIGCONT);
    CHECK(timed_out == 10 && slow == 0);
    struct rl_got next = rl(s, 0, "bt:a", five_per_min, 1, 1, 0);
    struct store_stats st;
    store_stats(s, &st);
    /* Redis ran the frozen batch when it woke up: 1 + 4 admitted of 5 on bt:a, then this one */
    CHECK(next.r.status == STORE_OK && !next.r.allowed && next.r.limits[0].used == 5);
    CHECK(st.timeouts == 10 && st.late_replies == 10 && st.inflight == 0 && st.up);

    /* Cancelled while queued (before the batch is sent) and while in flight: the others are
     * answered, the cancelled never; a reply for a cancelled one counts as late. */
    struct store_op *ops[10];
    memset(g, 0, sizeof(g));
    for (int i = 0; i < 10; i++)
        ops[i] = store_rl_reserve(s, "bt:c", five_per_min, 1, 0, rl_cb, &g[i]);
    store_cancel(ops[0]);
    store_cancel(ops[9]);
    kill(redis_pid, SIGSTOP);
    spin(20); /* sent: in flight */
    store_cancel(ops[3]);
    store_cancel(ops[4]);
    kill(redis_pid, SIGCONT);
    int answered = 0, stray = 0;
    for (int i = 0; i < 10; i++) {
        int gone = i == 0 || i == 9 || i == 3 || i == 4;
        if (!gone)
            wait_for(&g[i].calls, 1, 2000);
        answered += !gone && g[i].calls == 1 && g[i].r.status == STORE_OK;
    }
    spin(50);
    for (int i = 0; i < 10; i++)
        stray += (i == 0 || i == 9 || i == 3 || i == 4) && g[i].calls != 0;
    store_stats(s, &st);
    CHECK(answered == 6 && stray == 0 && st.late_replies == 12 && st.inflight == 0);
    store_close(s);
}

static void test_redis(void)
{
    char spec[400];
    if (redis_start() < 0) {
        fprintf(stderr, "cannot start redis-server (apt-get install redis-server)\n");
        CHECK(0);
        return;
    }
    test_agreement();
    test_batches();
    test_record_format();
    test_batch_timeout();
    snprintf(spec, sizeof(spec), "redis:unix:%s", sock);
    test_awl(spec, "redis");
    test_two_mx();
    test_noscript_auth_select();
    snprintf(spec, sizeof(spec), "redis:unix:%s", sock);
    test_close_inflight(spec);
    /* Admin on Redis: the same commands, the same answers. */
    snprintf(spec, sizeof(spec), "redis:unix:%s", sock);
    redisContext *c = redis_sync();
    if (c) { /* top must see only the fixture */
        freeReplyObject(redisCommand(c, "FLUSHALL"));
        redisFree(c);
    }
    struct store *s = open_store(spec, 0);
    if (s) {
        admin_fixture(s);
        test_admin(spec, 0, "redis admin");
        struct rl_got g = rl(s, 0, "admin:blocked", five_per_min, 1, 1, 0);
        CHECK(!g.r.allowed && g.r.blocked && g.r.retry_after_ms > 3590000);
        store_close(s);
    }
    test_outage();
    redis_stop();
}

/* ---- bench ---- */

struct bench {
    struct store *s;
    int inflight, done, total, sent;
    int64_t *lat;
    int allowed;
};

static int64_t usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void bench_send(struct bench *b);

struct slot {
    struct bench *b;
    int64_t t;
};

static void slot_cb(const struct store_rl_result *r, void *arg)
{
    struct slot *sl = arg;
    struct bench *b = sl->b;
    b->lat[b->done] = usec() - sl->t;
    b->allowed += r->status == STORE_OK && r->allowed;
    b->done++;
    b->inflight--;
    free(sl);
    bench_send(b);
}

static void bench_send(struct bench *b)
{
    static const struct store_limit l[] = {{100, 600000}, {500, 3600000}, {2000, 86400000}};
    char key[32];
    while (b->inflight < 100 && b->sent < b->total) {
        struct slot *sl = malloc(sizeof(*sl));
        sl->b = b;
        sl->t = usec();
        snprintf(key, sizeof(key), "bench:user%d", b->sent % 10000);
        b->sent++;
        b->inflight++;
        store_rl_reserve(b->s, key, l, 3, 1, slot_cb, sl);
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void bench_one(const char *spec, int total)
{
    struct store *s = open_store(spec, 0);
    if (!s)
        return;
    struct bench b = {s, 0, 0, total, 0, calloc((size_t)total, sizeof(int64_t)), 0};
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t t0 = usec();
    bench_send(&b);
    wait_for(&b.done, total, 120000);
    double secs = (double)(usec() - t0) / 1e6;
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                          ru0.ru_stime.tv_sec) *
                     1e6 +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                          ru0.ru_stime.tv_usec);
    qsort(b.lat, (size_t)b.done, sizeof(int64_t), cmp64);
    printf("%-40s %d reserves (3 limits, 10,000 keys), 100 in flight: %.0f/s, p50 %.2f ms, "
           "p99 %.2f ms, %d admitted; this process %.1f us CPU per reserve\n",
           spec, b.done, b.done / secs, b.lat[b.done / 2] / 1000.0,
           b.lat[b.done * 99 / 100] / 1000.0, b.allowed, cpu / b.done);
    free(b.lat);
    store_close(s);
}

static void bench(void)
{
    char spec[400];
    snprintf(spec, sizeof(spec), "lmdb:%s/bench.lmdb", dir);
    bench_one(spec, 200000);
    if (redis_start() == 0) {
        snprintf(spec, sizeof(spec), "redis:unix:%s", sock);
        bench_one(spec, 200000);
        /* Redis's own CPU time per script call: what bounds one Redis, whatever the client. */
        redisContext *c = redis_sync();
        redisReply *r = c ? redisCommand(c, "INFO commandstats") : NULL;
        const char *line =
            r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "cmdstat_evalsha:") : NULL;
        if (line)
            printf("redis-server %.*s\n", (int)strcspn(line, "\r\n"), line);
        freeReplyObject(r);
        if (c)
            redisFree(c);
        redis_stop();
    }
}

static void cleanup(void)
{
    char cmd[400];
    redis_stop();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

int main(int argc, char **argv)
{
    char err[256];
    snprintf(dir, sizeof(dir), "/tmp/policyd-store.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(sock, sizeof(sock), "%s/redis.sock", dir);
    snprintf(logfile, sizeof(logfile), "%s/log", dir);
    signal(SIGPIPE, SIG_IGN);
    if (log_open("test_store", "mail", logfile, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    base = event_base_new();
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);

    if (getenv("STORE_KEEP"))
        printf("# %s\n", dir);
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        bench();
    } else {
        test_lmdb_decisions();
        test_lmdb_sweep_and_growth();
        char awlspec[400];
        snprintf(awlspec, sizeof(awlspec), "lmdb:%s/awl.lmdb", dir);
        test_awl(awlspec, "lmdb");
        test_lmdb_admin();
        test_specs();
        test_redis();
        CHECK(early_answers == 0);
    }
    event_free(tick);
    event_base_free(base);
    if (!getenv("STORE_KEEP"))
        cleanup();
    else
        redis_stop();
    return argc > 1 ? 0 : UNIT_END();
}
