/*
 * loadgen.c - load generator for policy servers: N persistent connections, each sending a
 * realistic RCPT request (the attribute set Postfix 3.7 sends) and waiting for the reply before
 * the next, as Postfix's smtpd does. One epoll thread, requests pre-formatted, latencies kept
 * in a preallocated array: the generator stays cheap on a 2-core machine it shares.
 *
 *   loadgen -s unix:/path|inet:127.0.0.1:PORT [-c CONNS] [-d SECONDS] [-w WARMUP] [-p PID]
 *           [-m relay|hosted|mixed|refused] [-F N [-R]] [-M RCPTS]
 *           [-A pool|fresh] [-x STUCK-ADDRESS] [-S warm|cold] [-D DEAD-PERCENT]
 *   loadgen -s ... -i IDLE -p PID     hold IDLE idle connections, print the server's RSS delta
 *   loadgen -s unix:... -F FLOOD [-R] -d SECONDS [-p PID]   idle flood: a thread opens FLOOD
 *           idle connections as fast as the listen queue takes them (-R: and reopens each one
 *           the server closes, for the whole run); meanwhile a fresh client connects every
 *           10 ms, sends one request and times the answer (connect to reply)
 *
 * -A pool: clients 198.51.100.1-64 to a hosted domain (for DNS checks with a warm cache);
 * -A fresh: every request from a new client address (10.x.y.z), so each needs fresh DNS;
 * -A users: clients as in -A pool, recipients user0..user999999@example.com, drawn at random
 * (a 1,000,000-entry recipient table is exercised all over);
 * -x ADDR: connection 0 always sends from ADDR (e.g. one whose DNS never answers) and is left
 * out of the latency figures: they then show whether other requests wait behind it.
 * -S warm: SPF load: clients 192.0.2.1-250, senders from 8 domains w0..w7.warm.example, a new
 * instance (message) per request, so every request is evaluated (DNS answers from the cache);
 * -S cold: the same, every sender from a new domain dN-PID.cold.example (nothing cached);
 * -D PCT: (with -S) PCT% of the requests have a sender at a new nN.dead.example (DNS never
 * answers): left out of the latency figures, counted and timed on a line of their own.
 * With -S, a line "actions: ..." counts the replies by their first word (others / dead).
 * -m refused: every request a relay probe that policyd refuses: 4 clients (203.0.113.1-4, a
 * quarter of the connections each, like a few bots with many sessions) to foreign recipients,
 * each connection sending messages of RCPTS recipients (-M, default 1), a new instance
 * (message) each; the requests are formatted as they go, for the reference server too.
 *
 * -F: last line RESULT flood=... probes=... probe_p50_us=... probe_p99_us=... probe_max_us=...
 * probe_failed=... reopened=... server_fds=...
 *
 * Last line: RESULT rps=... p50_us=... p99_us=... p999_us=... max_us=... errors=... rss_kb=...
 */
/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NREQ 64
#define MAX_SAMPLES (20 * 1000 * 1000)

struct conn {
    int fd;
    int req;
    size_t sent, got_len;
    char tail[2]; /* last bytes seen, to find "\n\n" across reads */
    double started;
    int dead;                 /* the request in flight is a dead-domain one (-D) */
    unsigned long msg, rcpts; /* -m refused: this connection's message, recipients sent in it */
    char act[16];             /* the first bytes after "action=" */
};

static char *requests[NREQ];
static size_t request_len[NREQ];
static const char *target;
static const char *addr_mode = "";
static const char *stuck_addr;
static unsigned long fresh_counter;
static const char *spf_mode;
static int dead_pct;
static unsigned long spf_counter;
static int refused_mode;
static unsigned long rcpts_per_msg = 1;

/* Reply classes by the action's first word: [0] the measured requests, [1] the dead ones. */
#define NCLASS 8
static char class_name[NCLASS][16];
static unsigned long class_count[2][NCLASS];

static void count_action(int dead, const char *act)
{
    char word[16];
    size_t n = strcspn(act, " \n");
    snprintf(word, sizeof(word), "%.*s", (int)(n < 15 ? n : 15), act);
    for (int i = 0; i < NCLASS; i++) {
        if (!class_name[i][0])
            snprintf(class_name[i], sizeof(class_name[i]), "%s", word);
        if (strcmp(class_name[i], word) == 0) {
            class_count[dead][i]++;
            return;
        }
    }
}

/* format_request - one RCPT request from client addr to rcpt domain into buf. */
static size_t format_request3(char *buf, size_t cap, int i, const char *addr, const char *domain,
                              const char *sender, unsigned long instance)
{
    return (size_t)snprintf(
        buf, cap,
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
        "client_address=%s\nclient_name=unknown\nclient_port=%d\n"
        "reverse_client_name=unknown\nserver_address=127.0.0.1\nserver_port=25\n"
        "helo_name=mail%d.example.org\nsender=%s\n"
        "recipient=rcpt%d@%s\nrecipient_count=0\nqueue_id=\ninstance=78e7.6b04bce2.%lx.0\n"
        "size=%d\netrn_domain=\nstress=\nsasl_method=\nsasl_username=\nsasl_sender=\n"
        "ccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n"
        "encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\n"
        "encryption_keysize=256\npolicy_context=\n\n",
        addr, 40000 + i, i, sender, i, domain, instance, 1000 * i);
}

static size_t format_request(char *buf, size_t cap, int i, const char *addr, const char *domain)
{
    char sender[64];
    snprintf(sender, sizeof(sender), "user%d@example.org", i);
    return format_request3(buf, cap, i, addr, domain, sender, 0x1000ul + (unsigned long)i);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(long pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    FILE *fp = fopen(path, "r");
    long kb = -1;
    if (!fp)
        return -1;
    while (fgets(line, sizeof(line), fp))
        if (strncmp(line, field, strlen(field)) == 0)
            kb = atol(line + strlen(field) + 1);
    fclose(fp);
    return kb;
}

static int dial(void)
{
    int fd;
    if (strncmp(target, "unix:", 5) == 0) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", target + 5);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
            return -1;
    } else {
        char host[64];
        const char *colon = strrchr(target + 5, ':');
        if (!colon)
            return -1;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - target - 5), target + 5);
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)atoi(colon + 1))};
        inet_pton(AF_INET, host, &sin.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
            return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* make_requests - the captured Postfix 3.7 RCPT attribute set, varied per request. */
static void make_requests(const char *mode)
{
    for (int i = 0; i < NREQ; i++) {
        int hosted = strcmp(mode, "hosted") == 0 || (strcmp(mode, "mixed") == 0 && i % 2);
        char buf[2048], addr[64];
        if (strcmp(addr_mode, "pool") == 0) {
            snprintf(addr, sizeof(addr), "198.51.100.%d", i + 1);
            hosted = 1;
        } else {
            snprintf(addr, sizeof(addr), "%s", i % 4 == 0 ? "127.0.0.1" : "203.0.113.7");
        }
        size_t n =
            format_request(buf, sizeof(buf), i, addr, hosted ? "example.com" : "foreign.example");
        requests[i] = strdup(buf);
        request_len[i] = n;
    }
}

/* next_request - the request a connection sends next (fresh mode formats a new one). */
static const char *next_request(struct conn *c, int index, size_t *len, char *scratch, size_t cap)
{
    if (spf_mode) {
        char addr[32], sender[96];
        unsigned long n = ++spf_counter;
        c->dead = dead_pct > 0 && (int)(random() % 100) < dead_pct;
        snprintf(addr, sizeof(addr), "192.0.2.%lu", n % 250 + 1);
        if (c->dead)
            snprintf(sender, sizeof(sender), "user%d@n%lu-%ld.dead.example", c->req, n,
                     (long)getpid());
        else if (strcmp(spf_mode, "cold") == 0)
            snprintf(sender, sizeof(sender), "user%d@d%lu-%ld.cold.example", c->req, n,
                     (long)getpid());
        else
            snprintf(sender, sizeof(sender), "user%d@w%lu.warm.example", c->req, n % 8);
        /* a new instance (message) each time: the per-message cache never answers */
        *len = format_request3(scratch, cap, c->req, addr, "example.com", sender,
                               0x100000ul + n + (unsigned long)getpid() * 0x10000000ul);
        return scratch;
    }
    if (refused_mode) {
        char addr[32], sender[64];
        if (c->rcpts++ % rcpts_per_msg == 0)
            c->msg++;
        snprintf(addr, sizeof(addr), "203.0.113.%d", index % 4 + 1);
        snprintf(sender, sizeof(sender), "spam%d@bulk%d.example", c->req, index % 4);
        *len = format_request3(scratch, cap, c->req, addr, "foreign.example", sender,
                               ((unsigned long)index << 28) + c->msg);
        return scratch;
    }
    if (stuck_addr && index == 0) {
        *len = format_request(scratch, cap, c->req, stuck_addr, "example.com");
        return scratch;
    }
    if (strcmp(addr_mode, "users") == 0) {
        char addr[32], domain[64];
        unsigned long n = (unsigned long)random() % 1000000;
        snprintf(addr, sizeof(addr), "198.51.100.%d", c->req % 64 + 1);
        snprintf(domain, sizeof(domain), "example.com");
        *len = format_request(scratch, cap, c->req, addr, domain);
        /* format_request writes rcptN@: make it userN@ */
        char *r = strstr(scratch, "recipient=rcpt");
        if (r) {
            char tail[1400];
            char *at = strchr(r, '@');
            snprintf(tail, sizeof(tail), "%s", at);
            *len = (size_t)(r - scratch) +
                   (size_t)snprintf(r, cap - (size_t)(r - scratch), "recipient=user%lu%s", n, tail);
        }
        return scratch;
    }
    if (strcmp(addr_mode, "fresh") == 0) {
        char addr[32];
        unsigned long n = ++fresh_counter;
        snprintf(addr, sizeof(addr), "10.%lu.%lu.%lu", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        *len = format_request(scratch, cap, c->req, addr, "example.com");
        return scratch;
    }
    *len = request_len[c->req];
    return requests[c->req];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int idle_mode(int count, long pid)
{
    long before = pid > 0 ? rss_kb(pid, "VmRSS:") : -1;
    int *fds = malloc(sizeof(int) * (size_t)count), opened = 0;
    for (int i = 0; i < count; i++) {
        fds[i] = dial();
        if (fds[i] < 0)
            break;
        opened++;
    }
    sleep(1); /* let the server accept them all */
    long after = pid > 0 ? rss_kb(pid, "VmRSS:") : -1;
    printf("idle connections: %d opened; server RSS %ld kB -> %ld kB (+%.2f MB)\n", opened, before,
           after, (double)(after - before) / 1024.0);
    printf("RESULT idle=%d rss_before_kb=%ld rss_after_kb=%ld delta_kb=%ld\n", opened, before,
           after, after - before);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    free(fds);
    return opened == count ? 0 : 1;
}

/* count_fds - descriptors open in process pid. */
static int count_fds(long pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 2; /* . and .. */
}

/* dial_nb - a non-blocking connect to a unix target: the descriptor, -2 when the listen queue
 * is full (EAGAIN: try again), -1 on another error. */
static int dial_nb(void)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", target + 5);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        int e = errno;
        close(fd);
        return e == EAGAIN ? -2 : -1;
    }
    return fd;
}

struct flood {
    int count;
    int reopen; /* -R: keep count connections open, reopening what the server closes */
    double until;
    volatile int held;     /* connections open right now (the server's or in its queue) */
    volatile int finished; /* all count connections were opened once */
    volatile double opened_in;
    volatile unsigned long opened, closed, queue_full;
};

/* flood_thread - open count idle connections as fast as the listen queue takes them; one the
 * server closes is closed here too (and with reopen, opened again), until the end. */
static void *flood_thread(void *arg)
{
    struct flood *f = arg;
    int ep = epoll_create1(0);
    char buf[256];
    struct epoll_event evs[256];
    double t0 = now();
    while (now() < f->until) {
        while ((f->reopen ? f->held < f->count : (int)f->opened < f->count) && now() < f->until) {
            int fd = dial_nb();
            if (fd < 0) {
                f->queue_full += fd == -2;
                break; /* queue full (or out of descriptors): take the closes, then again */
            }
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            f->held++;
            f->opened++;
        }
        if (!f->finished && (int)f->opened >= f->count) {
            f->finished = 1;
            f->opened_in = now() - t0;
        }
        int n = epoll_wait(ep, evs, 256, 1);
        for (int k = 0; k < n; k++) {
            int fd = evs[k].data.fd;
            if (read(fd, buf, sizeof(buf)) > 0)
                continue; /* never: an idle client gets nothing */
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
            f->held--;
            f->closed++;
        }
    }
    close(ep); /* the connections stay open until the process exits */
    return NULL;
}

/* flood_mode - the idle flood and the fresh clients' latency (unix sockets only). */
static int flood_mode(int count, int reopen, double seconds, long pid)
{
    if (strncmp(target, "unix:", 5) != 0) {
        fprintf(stderr, "loadgen: -F needs a unix: target\n");
        return 2;
    }
    make_requests("hosted");
    struct flood f = {.count = count, .reopen = reopen, .until = now() + seconds + 0.5};
    pthread_t t;
    pthread_create(&t, NULL, flood_thread, &f);
    size_t cap = (size_t)(seconds * 100) + 16, nlat = 0, nburst = 0;
    double *lat = malloc(sizeof(double) * cap), *burst = malloc(sizeof(double) * cap);
    unsigned long failed = 0;
    int max_fds = 0;
    double end = now() + seconds;
    char buf[4096];
    usleep(2000); /* the flood is under way */
    while (now() < end && nlat + nburst + failed < cap) {
        double t0 = now();
        int during_burst = !f.finished;
        int fd = dial(); /* blocking: time spent in the listen queue counts */
        int ok = 0;
        if (fd >= 0) {
            fcntl(fd, F_SETFL, 0);
            struct timeval tv = {2, 0};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            size_t got = 0;
            if (write(fd, requests[0], request_len[0]) == (ssize_t)request_len[0]) {
                ssize_t r;
                while (got < sizeof(buf) && (r = read(fd, buf + got, sizeof(buf) - got)) > 0) {
                    got += (size_t)r;
                    if (got >= 2 && buf[got - 2] == '\n' && buf[got - 1] == '\n') {
                        ok = 1;
                        break;
                    }
                }
            }
            close(fd);
        }
        double took = now() - t0;
        if (!ok)
            failed++;
        else if (during_burst)
            burst[nburst++] = took;
        else
            lat[nlat++] = took;
        if (pid > 0 && (nlat + nburst) % 20 == 1) {
            int nfd = count_fds(pid);
            if (nfd > max_fds)
                max_fds = nfd;
        }
        double left = 0.01 - (now() - t0);
        if (left > 0)
            usleep((useconds_t)(left * 1e6));
    }
    int held = f.held;
    pthread_join(t, NULL);
    qsort(lat, nlat, sizeof(double), cmp_double);
    qsort(burst, nburst, sizeof(double), cmp_double);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] : 0;
    double mx = nlat ? lat[nlat - 1] : 0;
    double b50 = nburst ? burst[nburst / 2] : 0, bmx = nburst ? burst[nburst - 1] : 0;
    printf("%s: idle flood of %d connections%s: %lu opened in all, the first %d in %.2f s; %lu "
           "closed by the server; %d held at the end; %lu connects found the listen queue "
           "full; server descriptors peak %d\n",
           target, count, reopen ? ", each closed one reopened at once" : "", f.opened, count,
           f.finished ? f.opened_in : -1.0, f.closed, held, f.queue_full, max_fds);
    printf("fresh clients (one every 10 ms, connect to answer): %s %zu answered, p50 %.2f ms, "
           "p99 %.2f ms, max %.2f ms; while the flood was opening: %zu answered, p50 %.2f ms, "
           "max %.2f ms; %lu failed\n",
           reopen ? "after the opening, under the reconnect storm:"
                  : "once the flood was open (held):",
           nlat, p50 * 1e3, p99 * 1e3, mx * 1e3, nburst, b50 * 1e3, bmx * 1e3, failed);
    printf("RESULT flood=%d opened=%lu closed=%lu open_s=%.2f probes=%zu probe_p50_us=%.0f "
           "probe_p99_us=%.0f probe_max_us=%.0f burst_probes=%zu burst_p50_us=%.0f "
           "burst_max_us=%.0f probe_failed=%lu server_fds=%d\n",
           count, f.opened, f.closed, f.finished ? f.opened_in : -1.0, nlat, p50 * 1e6, p99 * 1e6,
           mx * 1e6, nburst, b50 * 1e6, bmx * 1e6, failed, max_fds);
    free(burst);
    free(lat);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    int nconn = 100, idle = 0, flood = 0, reopen = 0, opt;
    double seconds = 10, warmup = 2;
    long pid = -1;
    const char *mode = "mixed";

    while ((opt = getopt(argc, argv, "s:c:d:w:p:i:m:A:x:S:D:F:RM:")) != -1) {
        switch (opt) {
        case 's':
            target = optarg;
            break;
        case 'c':
            nconn = atoi(optarg);
            break;
        case 'd':
            seconds = atof(optarg);
            break;
        case 'w':
            warmup = atof(optarg);
            break;
        case 'p':
            pid = atol(optarg);
            break;
        case 'i':
            idle = atoi(optarg);
            break;
        case 'm':
            mode = optarg;
            break;
        case 'A':
            addr_mode = optarg;
            break;
        case 'x':
            stuck_addr = optarg;
            break;
        case 'S':
            spf_mode = optarg;
            break;
        case 'D':
            dead_pct = atoi(optarg);
            break;
        case 'F':
            flood = atoi(optarg);
            break;
        case 'R':
            reopen = 1;
            break;
        case 'M':
            rcpts_per_msg = strtoul(optarg, NULL, 10) ? strtoul(optarg, NULL, 10) : 1;
            break;
        default:
            fprintf(stderr,
                    "usage: loadgen -s unix:/path|inet:ADDR:PORT [-c N] [-d S] [-w S] "
                    "[-p PID] [-i IDLE] [-m relay|hosted|mixed|refused] [-F N [-R]] [-M RCPTS]\n");
            return 2;
        }
    }
    if (!target)
        return 2;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (idle)
        return idle_mode(idle, pid);
    if (flood)
        return flood_mode(flood, reopen, seconds, pid);
    make_requests(mode);
    refused_mode = strcmp(mode, "refused") == 0;

    int ep = epoll_create1(0);
    struct conn *c = calloc((size_t)nconn, sizeof(*c));
    for (int i = 0; i < nconn; i++) {
        c[i].fd = dial();
        if (c[i].fd < 0) {
            fprintf(stderr, "loadgen: connect %s: %s\n", target, strerror(errno));
            return 1;
        }
        c[i].req = i % NREQ;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
    }
    double *lat = malloc(sizeof(double) * MAX_SAMPLES);
    size_t nlat = 0;
    unsigned long errors = 0, dunno = 0, other = 0, stuck_replies = 0;
    double *dead_lat = malloc(sizeof(double) * MAX_SAMPLES / 4);
    size_t ndead = 0;
    double t0 = now(), measure_from = t0 + warmup, end = measure_from + seconds;
    char scratch[2048];
    for (int i = 0; i < nconn; i++) {
        size_t len;
        const char *r = next_request(&c[i], i, &len, scratch, sizeof(scratch));
        c[i].started = now();
        if (write(c[i].fd, r, len) < 0)
            errors++;
    }
    struct epoll_event evs[256];
    char buf[65536];
    int open_conns = nconn;
    while (open_conns > 0) {
        double t = now();
        if (t >= end)
            break;
        int n = epoll_wait(ep, evs, 256, (int)((end - t) * 1000) + 1);
        for (int k = 0; k < n; k++) {
            struct conn *cc = &c[evs[k].data.u32];
            ssize_t got = read(cc->fd, buf, sizeof(buf));
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN)
                    continue;
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, cc->fd, NULL);
                close(cc->fd);
                cc->fd = -1;
                open_conns--;
                continue;
            }
            /* Count replies: each ends with "\n\n" (possibly split across reads). */
            for (ssize_t j = 0; j < got; j++) {
                char prev = cc->tail[1];
                cc->tail[0] = prev;
                cc->tail[1] = buf[j];
                if (cc->got_len >= 7 && cc->got_len < 7 + sizeof(cc->act) - 1)
                    cc->act[cc->got_len - 7] = buf[j];
                if (cc->got_len == 7) {
                    /* first byte after "action=" */
                    if (buf[j] == 'D')
                        dunno++;
                    else
                        other++;
                }
                cc->got_len++;
                if (prev == '\n' && buf[j] == '\n') {
                    double done = now();
                    int index = (int)evs[k].data.u32;
                    int measured = done >= measure_from;
                    if (spf_mode && measured) {
                        cc->act[cc->got_len - 7 < sizeof(cc->act) ? cc->got_len - 7
                                                                  : sizeof(cc->act) - 1] = 0;
                        count_action(cc->dead, cc->act);
                    }
                    if (cc->dead) {
                        if (measured && ndead < MAX_SAMPLES / 4)
                            dead_lat[ndead++] = done - cc->started;
                    } else if (measured && nlat < MAX_SAMPLES && !(stuck_addr && index == 0))
                        lat[nlat++] = done - cc->started;
                    memset(cc->act, 0, sizeof(cc->act));
                    if (stuck_addr && index == 0)
                        stuck_replies++;
                    cc->got_len = 0;
                    cc->req = (cc->req + 7) % NREQ;
                    cc->started = done;
                    size_t len;
                    const char *r = next_request(cc, index, &len, scratch, sizeof(scratch));
                    if (write(cc->fd, r, len) < 0)
                        errors++;
                }
            }
        }
    }
    double elapsed = now() - measure_from;
    if (elapsed > seconds)
        elapsed = seconds;
    qsort(lat, nlat, sizeof(double), cmp_double);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] : 0;
    double p999 = nlat ? lat[(size_t)((double)nlat * 0.999)] : 0, max = nlat ? lat[nlat - 1] : 0;
    long rss = pid > 0 ? rss_kb(pid, "VmHWM:") : -1;
    printf("%s: %d connections, %.0f requests/s, latency p50 %.0f us, p99 %.0f us, p99.9 %.0f "
           "us, max %.0f us, errors %lu, replies DUNNO %lu / other %lu, server peak RSS %ld kB\n",
           target, nconn, (double)nlat / elapsed, p50 * 1e6, p99 * 1e6, p999 * 1e6, max * 1e6,
           errors, dunno, other, rss);
    if (stuck_addr)
        printf("connection 0 (client %s) got %lu replies in the run\n", stuck_addr, stuck_replies);
    /* Requests still unanswered at the end: the dead ones among them show a hang. */
    unsigned long pending_dead = 0;
    double oldest_dead = 0, t_end = now();
    for (int i = 0; i < nconn; i++)
        if (c[i].fd >= 0 && c[i].dead) {
            pending_dead++;
            if (t_end - c[i].started > oldest_dead)
                oldest_dead = t_end - c[i].started;
        }
    if (spf_mode) {
        printf("actions:");
        for (int i = 0; i < NCLASS && class_name[i][0]; i++)
            printf(" %s %lu/%lu", class_name[i], class_count[0][i], class_count[1][i]);
        printf(" (measured requests / dead-domain requests)\n");
    }
    qsort(dead_lat, ndead, sizeof(double), cmp_double);
    double dp50 = ndead ? dead_lat[ndead / 2] : 0, dmax = ndead ? dead_lat[ndead - 1] : 0;
    if (dead_pct)
        printf("dead-domain requests: %zu answered, %.0f/s, latency p50 %.0f ms, max %.0f ms; "
               "%lu unanswered at the end, the oldest waiting %.0f ms\n",
               ndead, (double)ndead / elapsed, dp50 * 1e3, dmax * 1e3, pending_dead,
               oldest_dead * 1e3);
    printf("RESULT rps=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f errors=%lu "
           "rss_kb=%ld dead=%zu dead_p50_us=%.0f dead_max_us=%.0f dead_pending=%lu "
           "dead_oldest_us=%.0f\n",
           (double)nlat / elapsed, p50 * 1e6, p99 * 1e6, p999 * 1e6, max * 1e6, errors, rss, ndead,
           dp50 * 1e6, dmax * 1e6, pending_dead, oldest_dead * 1e6);
    return errors ? 1 : 0;
}
