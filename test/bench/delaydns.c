/*
 * delaydns.c - a minimal UDP DNS responder for make bench's cold-cache SPF scenario, where the
 * suite's asyncio test server (test/dns/testdns.py) tops out at ~2,500-3,000 queries/s on a
 * small machine and would be the bottleneck. Every answer leaves after a fixed delay (a FIFO
 * of due times: one delay for all, so the queue stays ordered), so thousands of queries can
 * be outstanding at once at a cost of microseconds each.
 *
 *   delaydns [-l 127.0.0.1] [-p PORT] [-m DELAY-MS] [-t SUFFIX=TEXT]... [-n SUFFIX]...
 *
 * -t: a TXT query for a name ending in SUFFIX gets one TXT record TEXT (TTL 300); other types
 * of such names get NODATA. -n: queries for names ending in SUFFIX are never answered. Any
 * other name: NXDOMAIN. Prints "ready port=P" once bound; on SIGTERM prints its counts.
 */
/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QCAP 65536 /* replies waiting for their time */
#define MAXRULES 16

struct reply {
    double due;
    struct sockaddr_in to;
    unsigned short len;
    unsigned char buf[512];
};

static struct reply *queue;
static size_t qhead, qlen;
static const char *txt_suffix[MAXRULES], *txt_text[MAXRULES], *silent_suffix[MAXRULES];
static int ntxt, nsilent;
static volatile sig_atomic_t stop;
static unsigned long n_queries, n_answered, n_silent, n_dropped;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n >= s && strcasecmp(name + n - s, suffix) == 0 &&
           (n == s || name[n - s - 1] == '.' || suffix[0] == '.');
}

/* build - the reply to query q (len bytes) into r; 0: no reply (silent or malformed). */
static int build(const unsigned char *q, size_t len, struct reply *r)
{
    char name[256];
    size_t off = 12, nl = 0;
    if (len < 12 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
        return 0;
    while (off < len && q[off]) {
        size_t l = q[off];
        if (l > 63 || off + 1 + l >= len || nl + l + 1 >= sizeof(name))
            return 0;
        for (size_t i = 0; i < l; i++)
            name[nl++] = (char)tolower(q[off + 1 + i]);
        name[nl++] = '.';
        off += 1 + l;
    }
    if (off + 5 > len)
        return 0;
    name[nl ? nl - 1 : 0] = 0;
    size_t qend = off + 5;
    unsigned qtype = (unsigned)(q[off + 1] << 8 | q[off + 2]);
    for (int i = 0; i < nsilent; i++)
        if (ends_with(name, silent_suffix[i])) {
            n_silent++;
            return 0;
        }
    const char *text = NULL;
    int known = 0;
    for (int i = 0; i < ntxt; i++)
        if (ends_with(name, txt_suffix[i])) {
            known = 1;
            if (qtype == 16)
                text = txt_text[i];
            break;
        }
    size_t tl = text ? strlen(text) : 0;
    if (qend + 12 + 1 + tl > sizeof(r->buf))
        return 0;
    memcpy(r->buf, q, qend);
    r->buf[2] = (unsigned char)(0x80 | (q[2] & 0x79) | 0x04); /* QR, opcode, AA, RD */
    r->buf[3] = (unsigned char)(0x80 | (known ? 0 : 3));      /* RA, NOERROR or NXDOMAIN */
    memset(r->buf + 6, 0, 6);
    size_t n = qend;
    if (text) {
        r->buf[7] = 1;
        static const unsigned char rr[] = {0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 1, 44};
        memcpy(r->buf + n, rr, sizeof(rr));
        n += sizeof(rr);
        r->buf[n++] = (unsigned char)((tl + 1) >> 8);
        r->buf[n++] = (unsigned char)((tl + 1) & 255);
        r->buf[n++] = (unsigned char)tl;
        memcpy(r->buf + n, text, tl);
        n += tl;
    }
    r->len = (unsigned short)n;
    return 1;
}

int main(int argc, char **argv)
{
    const char *listen_addr = "127.0.0.1";
    int port = 0, opt;
    double delay = 0.020;
    while ((opt = getopt(argc, argv, "l:p:m:t:n:")) != -1) {
        switch (opt) {
        case 'l':
            listen_addr = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'm':
            delay = atof(optarg) / 1000.0;
            break;
        case 't': {
            char *eq = strchr(optarg, '=');
            if (!eq || ntxt == MAXRULES || strlen(eq + 1) > 255)
                return 2;
            *eq = 0;
            txt_suffix[ntxt] = optarg;
            txt_text[ntxt++] = eq + 1;
            break;
        }
        case 'n':
            if (nsilent == MAXRULES)
                return 2;
            silent_suffix[nsilent++] = optarg;
            break;
        default:
            fprintf(stderr, "usage: delaydns [-l ADDR] [-p PORT] [-m MS] [-t SUFFIX=TEXT]... "
                            "[-n SUFFIX]...\n");
            return 2;
        }
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, listen_addr, &sin.sin_addr);
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    socklen_t sl = sizeof(sin);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
        perror("delaydns: bind");
        return 1;
    }
    queue = malloc(sizeof(*queue) * QCAP);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    printf("ready port=%d\n", ntohs(sin.sin_port));
    fflush(stdout);
    while (!stop) {
        double t = now();
        while (qlen && queue[qhead].due <= t) {
            struct reply *r = &queue[qhead];
            sendto(fd, r->buf, r->len, 0, (struct sockaddr *)&r->to, sizeof(r->to));
            n_answered++;
            qhead = (qhead + 1) % QCAP;
            qlen--;
        }
        double wait = qlen ? queue[qhead].due - t : 1.0;
        if (wait < 0)
            wait = 0;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (ppoll(&pfd, 1, &ts, NULL) <= 0)
            continue;
        for (int k = 0; k < 256; k++) {
            unsigned char q[1500];
            struct sockaddr_in from;
            socklen_t fl = sizeof(from);
            ssize_t got = recvfrom(fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
            if (got < 0)
                break;
            n_queries++;
            if (qlen == QCAP) {
                n_dropped++;
                continue;
            }
            struct reply *r = &queue[(qhead + qlen) % QCAP];
            if (!build(q, (size_t)got, r))
                continue;
            r->to = from;
            r->due = now() + delay;
            qlen++;
        }
    }
    printf("delaydns: %lu queries, %lu answered, %lu never answered, %lu dropped (queue full)\n",
           n_queries, n_answered, n_silent, n_dropped);
    return 0;
}
