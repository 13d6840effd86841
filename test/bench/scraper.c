/*
 * scraper.c - many Prometheus scrapes at once against policyd's metrics endpoint, for the
 * benchmark (test/bench/run.sh): -c threads, each scraping GET /metrics back to back (a new
 * connection each time, as Prometheus does) for -d seconds, over TCP or a unix socket; with
 * -i, in bursts: every thread scrapes once every -i seconds, all at the same moment.
 *
 *   scraper -s inet:127.0.0.1:9131|unix:/path [-c 100] [-d 10] [-i 1]
 *
 * Last line: RESULT scrapes=N errors=N bytes=N per_second=N p50_ms=N p99_ms=N max_ms=N
 */
/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 2000000

static struct sockaddr_storage target;
static socklen_t target_len;
static double until, start, interval;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long scrapes, errors, bytes;
static double *samples;
static size_t nsamples;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* scrape_once - one GET /metrics; the bytes read, or -1. */
static long scrape_once(void)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    char buf[65536];
    int fd = socket(target.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    long total = 0;
    if (connect(fd, (struct sockaddr *)&target, target_len) != 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        if (total == 0 && (n < 12 || memcmp(buf + 9, "200", 3) != 0)) {
            close(fd);
            return -1;
        }
        total += n;
    }
    close(fd);
    return total;
}

static void *worker(void *arg)
{
    (void)arg;
    for (long round = 1; now() < until; round++) {
        if (interval > 0) { /* the next burst */
            double at = start + (double)round * interval, wait = at - now();
            if (at >= until)
                break;
            if (wait > 0) {
                struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        double t0 = now();
        long n = scrape_once();
        double ms = (now() - t0) * 1000;
        pthread_mutex_lock(&lock);
        if (n < 0) {
            errors++;
        } else {
            scrapes++;
            bytes += (unsigned long)n;
            if (nsamples < MAX_SAMPLES)
                samples[nsamples++] = ms;
        }
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *spec = NULL;
    int conns = 100, opt;
    double secs = 10;
    while ((opt = getopt(argc, argv, "s:c:d:i:")) != -1) {
        if (opt == 's')
            spec = optarg;
        else if (opt == 'c')
            conns = atoi(optarg);
        else if (opt == 'd')
            secs = atof(optarg);
        else if (opt == 'i')
            interval = atof(optarg);
        else
            spec = NULL;
    }
    if (!spec || conns < 1) {
        fprintf(stderr,
                "usage: scraper -s inet:ADDR:PORT|unix:/path [-c N] [-d SECONDS] [-i SECONDS]\n");
        return 2;
    }
    memset(&target, 0, sizeof(target));
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&target;
        sun->sun_family = AF_UNIX;
        snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", spec + 5);
        target_len = sizeof(*sun);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&target;
        char host[64];
        const char *colon = strrchr(spec + 5, ':');
        if (strncmp(spec, "inet:", 5) != 0 || !colon) {
            fprintf(stderr, "scraper: bad target %s\n", spec);
            return 2;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(colon - spec - 5), spec + 5);
        sin->sin_family = AF_INET;
        sin->sin_port = htons((unsigned short)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            fprintf(stderr, "scraper: bad address %s\n", host);
            return 2;
        }
        target_len = sizeof(*sin);
    }
    samples = malloc(MAX_SAMPLES * sizeof(*samples));
    pthread_t *th = calloc((size_t)conns, sizeof(*th));
    if (!samples || !th)
        return 1;
    start = now();
    until = start + secs;
    for (int i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < conns; i++)
        pthread_join(th[i], NULL);
    qsort(samples, nsamples, sizeof(*samples), cmp);
    double p50 = nsamples ? samples[nsamples / 2] : 0;
    double p99 = nsamples ? samples[(size_t)((double)nsamples * 0.99)] : 0;
    double max = nsamples ? samples[nsamples - 1] : 0;
    printf("RESULT scrapes=%lu errors=%lu bytes=%lu per_second=%.0f p50_ms=%.2f p99_ms=%.2f "
           "max_ms=%.2f\n",
           scrapes, errors, bytes, (double)scrapes / secs, p50, p99, max);
    free(samples);
    free(th);
    return errors ? 1 : 0;
}
