/*
 * test_offload.c - the offload threads (policyd/offload.c): results come back on the loop and
 * never from inside offload_submit; a cancelled job's result is dropped (queued: at once;
 * running: when its work returns); the queue is bounded; offload_stuck tells when every thread
 * has been busy too long; the last unref does not wait for a stuck thread, which frees its job
 * and the pool when its work returns; a done() may drop the last reference.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/offload.h"
#include "unit.h"

#include <event2/event.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;

static atomic_int worked, freed;
static int done_count, done_off_loop;
static pthread_t loop_thread;
static struct offload *drop_in_done; /* done() unrefs this pool */

struct job {
    int block; /* wait for the gate */
    int in, out;
};

static void gate_set(int open)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void work(void *arg)
{
    struct job *j = arg;
    if (j->block) {
        pthread_mutex_lock(&gate_mu);
        while (!gate_open)
            pthread_cond_wait(&gate_cv, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
    }
    j->out = j->in * 2;
    atomic_fetch_add(&worked, 1);
}

static void done(void *arg)
{
    struct job *j = arg;
    if (!pthread_equal(pthread_self(), loop_thread))
        done_off_loop++;
    if (j->out == j->in * 2)
        done_count++;
    if (drop_in_done) {
        struct offload *p = drop_in_done;
        drop_in_done = NULL;
        offload_unref(p);
    }
}

static void job_free(void *arg)
{
    free(arg);
    atomic_fetch_add(&freed, 1);
}

static struct job *job_new(int in, int block)
{
    struct job *j = calloc(1, sizeof(*j));
    j->in = in;
    j->block = block;
    return j;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* spin - run the loop until *counter reaches want or 5 s pass; 1 if it did. */
static int spin(struct event_base *base, const int *counter, int want)
{
    long long until = now_ms() + 5000;
    while (*counter < want && now_ms() < until) {
        struct timeval tick = {0, 10000};
        event_base_loopexit(base, &tick);
        event_base_dispatch(base);
    }
    return *counter >= want;
}

/* wait_freed - wait (no loop) until freed reaches want or 5 s pass. */
static int wait_freed(int want)
{
    long long until = now_ms() + 5000;
    struct timespec tick = {0, 5000000};
    while (atomic_load(&freed) < want && now_ms() < until)
        nanosleep(&tick, NULL);
    return atomic_load(&freed) >= want;
}

static void reset(void)
{
    atomic_store(&worked, 0);
    atomic_store(&freed, 0);
    done_count = done_off_loop = 0;
    gate_set(0);
}

static void test_results(struct event_base *base)
{
    char err[256];
    reset();
    struct offload *p = offload_new(base, 2, 64, err, sizeof(err));
    CHECK(p != NULL);
    CHECK(offload_threads(p) == 2);
    for (int i = 0; i < 20; i++)
        CHECK(offload_submit(p, "job", work, done, job_free, job_new(i, 0)) != NULL);
    CHECK(done_count == 0); /* never from inside offload_submit */
    CHECK(spin(base, &done_count, 20));
    CHECK(done_off_loop == 0);
    CHECK(atomic_load(&freed) == 20);
    long long t = now_ms();
    offload_unref(p); /* idle threads leave at once */
    CHECK(now_ms() - t < 500);
}

static void test_cancel(struct event_base *base)
{
    char err[256];
    reset();
    struct offload *p = offload_new(base, 1, 64, err, sizeof(err));
    struct offload_job *a = offload_submit(p, "a", work, done, job_free, job_new(1, 1));
    struct offload_job *b = offload_submit(p, "b", work, done, job_free, job_new(2, 0));
    CHECK(a && b);
    offload_cancel(b); /* still queued behind a: dropped at once */
    CHECK(atomic_load(&freed) == 1);
    long long until = now_ms() + 2000;
    char label[32] = "";
    long age = -1;
    while (!offload_stuck(p, 0, label, sizeof(label), &age) && now_ms() < until)
        ;
    offload_cancel(a); /* running: its result is dropped when it returns */
    gate_set(1);
    struct offload_job *c = offload_submit(p, "c", work, done, job_free, job_new(3, 0));
    CHECK(c != NULL);
    CHECK(spin(base, &done_count, 1)); /* c's result comes (after a's, dropped) */
    CHECK(done_count == 1);
    CHECK(atomic_load(&worked) == 2); /* a and c ran; b never */
    CHECK(atomic_load(&freed) == 3);
    offload_unref(p);
}

static void test_bound_and_stuck(struct event_base *base)
{
    char err[256], label[64] = "";
    long age = -1;
    reset();
    struct offload *p = offload_new(base, 1, 2, err, sizeof(err));
    CHECK(offload_submit(p, "/mnt/slow/maildirsize", work, done, job_free, job_new(1, 1)));
    long long until = now_ms() + 2000;
    while (!offload_stuck(p, 0, label, sizeof(label), &age) && now_ms() < until)
        ;
    CHECK_STR(label, "/mnt/slow/maildirsize");
    CHECK(!offload_stuck(p, 60000, label, sizeof(label), &age)); /* not that long yet */
    struct timespec pause = {0, 120 * 1000000};
    nanosleep(&pause, NULL);
    CHECK(offload_stuck(p, 100, label, sizeof(label), &age) && age >= 100);
    CHECK(offload_submit(p, "q1", work, done, job_free, job_new(2, 0)));
    CHECK(offload_submit(p, "q2", work, done, job_free, job_new(3, 0)));
    struct job *refused = job_new(4, 0);
    CHECK(offload_submit(p, "q3", work, done, job_free, refused) == NULL); /* queue full */
    free(refused);                                                         /* still ours */
    /* The last owner leaves while the thread is stuck: no waiting for it. */
    long long t = now_ms();
    offload_unref(p);
    CHECK(now_ms() - t < 1500);
    CHECK(atomic_load(&freed) == 2); /* q1 and q2 dropped, never run */
    gate_set(1);                     /* the read returns: the thread frees its job and the pool */
    CHECK(wait_freed(3));
    CHECK(done_count == 0);
    CHECK(atomic_load(&worked) == 1);
    struct timespec settle = {0, 50 * 1000000};
    nanosleep(&settle, NULL); /* the thread's last steps after the free */
}

static void test_unref_in_done(struct event_base *base)
{
    char err[256];
    reset();
    struct offload *p = offload_new(base, 2, 8, err, sizeof(err));
    drop_in_done = p;
    CHECK(offload_submit(p, "x", work, done, job_free, job_new(1, 0)));
    CHECK(offload_submit(p, "y", work, done, job_free, job_new(2, 0)));
    CHECK(spin(base, &done_count, 1));
    CHECK(drop_in_done == NULL);
    struct timespec settle = {0, 100 * 1000000};
    nanosleep(&settle, NULL);
    /* Whether y finished before the drop or not: freed once, and no done() after the drop. */
    CHECK(wait_freed(2));
    spin(base, &done_count, 2);
    CHECK(done_count == 1);
    CHECK(atomic_load(&freed) == 2);
}

int main(void)
{
    struct event_base *base = event_base_new();
    loop_thread = pthread_self();
    test_results(base);
    test_cancel(base);
    test_bound_and_stuck(base);
    test_unref_in_done(base);
    event_base_free(base);
    return UNIT_END();
}
