/*
 * offload.c - a few worker threads for blocking work, results back on the loop (offload.h).
 *
 * One mutex guards the three job lists (queued, running, done) and the counters; the threads
 * never touch the loop: a finished job goes on the done list and, if the loop has not been
 * told yet, one byte into a pipe the loop watches (as the reload thread does), so a burst of
 * results costs one wake-up. done() and cancellation both happen on the loop, so a job
 * cancelled after its work finished is still caught before done() runs. The threads are
 * detached: the last owner never joins a thread that may be stuck in a read; it waits (at
 * most a second) for the idle ones to leave, and the last thread to leave frees what remains.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/offload.h"

#include "policyd/lib/xalloc.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

/* How long the last owner waits for the idle threads to leave. */
#define OFFLOAD_STOP_WAIT_MS 1000

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct offload_job {
    TAILQ_ENTRY(offload_job) link; /* in the queue, running or done list of its pool */
    struct offload *pool;
    enum job_state state;
    int cancelled; /* set on the loop: drop the result */
    char *label;
    long long started_ms; /* when a thread took it (monotonic) */
    offload_work_fn *work;
    offload_done_fn *done;
    offload_free_fn *free_arg;
    void *arg;
};

TAILQ_HEAD(job_list, offload_job);

struct offload {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a job was queued, or the pool stops */
    pthread_cond_t exit_cv; /* a thread left */
    struct job_list queue, running, done;
    size_t queued, queue_max;
    int threads;   /* as started */
    int live;      /* threads not yet gone */
    int busy;      /* threads inside a job's work */
    int stopping;  /* the last owner left: threads leave after their job */
    int orphaned;  /* ... without waiting for all of them: the last thread frees the pool */
    int signalled; /* a byte is in the pipe that the loop has not drained yet */
    int refs;      /* owners; loop only */
    int pipe[2];
    struct event *ev;
};

/* offload_now_ms - the monotonic clock in milliseconds. */
static long long offload_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* offload_job_free - the end of a job, whichever way it went. */
static void offload_job_free(struct offload_job *job)
{
    if (job->free_arg)
        job->free_arg(job->arg);
    free(job->label);
    free(job);
}

/* offload_destroy - free the pool itself (no thread left, no owner left). */
static void offload_destroy(struct offload *p)
{
    if (p->pipe[0] >= 0) {
        close(p->pipe[0]);
        close(p->pipe[1]);
    }
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->exit_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* offload_worker - a thread: take queued jobs until the pool stops. */
static void *offload_worker(void *arg)
{
    struct offload *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && TAILQ_EMPTY(&p->queue))
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stopping)
            break;
        struct offload_job *job = TAILQ_FIRST(&p->queue);
        TAILQ_REMOVE(&p->queue, job, link);
        p->queued--;
        job->state = JOB_RUNNING;
        job->started_ms = offload_now_ms();
        TAILQ_INSERT_TAIL(&p->running, job, link);
        p->busy++;
        pthread_mutex_unlock(&p->mu);

        job->work(job->arg); /* may block for as long as the storage does */

        pthread_mutex_lock(&p->mu);
        TAILQ_REMOVE(&p->running, job, link);
        p->busy--;
        if (p->stopping) {
            /* Every owner is gone: nobody waits for this result. */
            pthread_mutex_unlock(&p->mu);
            offload_job_free(job);
            pthread_mutex_lock(&p->mu);
            break;
        }
        job->state = JOB_DONE;
        TAILQ_INSERT_TAIL(&p->done, job, link);
        if (!p->signalled) {
            p->signalled = 1;
            if (write(p->pipe[1], "x", 1) != 1) {
                /* cannot happen: one byte at most is ever in the pipe */
            }
        }
    }
    p->live--;
    int last = p->orphaned && p->live == 0;
    pthread_cond_broadcast(&p->exit_cv);
    pthread_mutex_unlock(&p->mu);
    if (last)
        offload_destroy(p);
    return NULL;
}

/* offload_drain - on the loop: run done() of the finished jobs, drop the cancelled ones. */
static void offload_drain(evutil_socket_t fd, short what, void *arg)
{
    struct offload *p = arg;
    struct job_list ready;
    char buf[64];
    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    TAILQ_INIT(&ready);
    pthread_mutex_lock(&p->mu);
    TAILQ_CONCAT(&ready, &p->done, link);
    p->signalled = 0;
    pthread_mutex_unlock(&p->mu);
    p->refs++; /* a done() may drop the last owner: the pool stays until the list is through */
    struct offload_job *job;
    while ((job = TAILQ_FIRST(&ready))) {
        TAILQ_REMOVE(&ready, job, link);
        /* A done() may cancel jobs further down this list, or drop the pool's last owner
         * (then only this drain holds it, and the rest is dropped as offload_unref says). */
        if (!job->cancelled && p->refs > 1)
            job->done(job->arg);
        offload_job_free(job);
    }
    offload_unref(p);
}

struct offload *offload_new(struct event_base *base, int threads, size_t queue_max, char *err,
                            size_t errlen)
{
    struct offload *p = xcalloc(1, sizeof(*p));
    pthread_condattr_t ca;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->exit_cv, &ca);
    pthread_condattr_destroy(&ca);
    TAILQ_INIT(&p->queue);
    TAILQ_INIT(&p->running);
    TAILQ_INIT(&p->done);
    p->threads = threads < 1 ? 1 : threads;
    p->queue_max = queue_max;
    p->refs = 1;
    p->pipe[0] = p->pipe[1] = -1;
    if (pipe2(p->pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        p->pipe[0] = p->pipe[1] = -1;
        snprintf(err, errlen, "cannot make a pipe for the worker threads: %s", strerror(errno));
        offload_destroy(p);
        return NULL;
    }
    if (!(p->ev = event_new(base, p->pipe[0], EV_READ | EV_PERSIST, offload_drain, p)) ||
        event_add(p->ev, NULL) != 0)
        xalloc_fail(0); /* libevent's allocation */

    /* The threads take no signals (a signal must not cut a read short with EINTR; the loop
     * handles them), and are never joined. */
    sigset_t all, old;
    pthread_attr_t attr;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = 0;
    for (int i = 0; i < p->threads && rc == 0; i++) {
        pthread_t t;
        pthread_mutex_lock(&p->mu);
        if ((rc = pthread_create(&t, &attr, offload_worker, p)) == 0)
            p->live++;
        pthread_mutex_unlock(&p->mu);
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %d worker threads: %s", p->threads, strerror(rc));
        offload_unref(p);
        return NULL;
    }
    return p;
}

struct offload *offload_ref(struct offload *p)
{
    p->refs++;
    return p;
}

void offload_unref(struct offload *p)
{
    if (!p || --p->refs > 0)
        return;
    event_free(p->ev);
    p->ev = NULL;
    struct job_list drop;
    TAILQ_INIT(&drop);
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    TAILQ_CONCAT(&drop, &p->queue, link);
    TAILQ_CONCAT(&drop, &p->done, link);
    p->queued = 0;
    pthread_cond_broadcast(&p->work_cv);
    /* The idle threads leave at once; a stuck one is not waited for. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += OFFLOAD_STOP_WAIT_MS / 1000;
    until.tv_nsec += (OFFLOAD_STOP_WAIT_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (p->live > p->busy)
        if (pthread_cond_timedwait(&p->exit_cv, &p->mu, &until) == ETIMEDOUT)
            break;
    int gone = p->live == 0;
    if (!gone)
        p->orphaned = 1; /* the last thread out frees the pool */
    pthread_mutex_unlock(&p->mu);
    struct offload_job *job;
    while ((job = TAILQ_FIRST(&drop))) {
        TAILQ_REMOVE(&drop, job, link);
        offload_job_free(job);
    }
    if (gone)
        offload_destroy(p);
}

int offload_threads(const struct offload *p)
{
    return p->threads;
}

struct offload_job *offload_submit(struct offload *p, const char *label, offload_work_fn *work,
                                   offload_done_fn *done, offload_free_fn *free_arg, void *arg)
{
    struct offload_job *job = xcalloc(1, sizeof(*job));
    job->pool = p;
    job->state = JOB_QUEUED;
    job->label = xstrdup(label ? label : "");
    job->work = work;
    job->done = done;
    job->free_arg = free_arg;
    job->arg = arg;
    pthread_mutex_lock(&p->mu);
    if (p->queued >= p->queue_max) {
        pthread_mutex_unlock(&p->mu);
        free(job->label);
        free(job);
        return NULL;
    }
    TAILQ_INSERT_TAIL(&p->queue, job, link);
    p->queued++;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    return job;
}

void offload_cancel(struct offload_job *job)
{
    struct offload *p = job->pool;
    pthread_mutex_lock(&p->mu);
    if (job->state == JOB_QUEUED) {
        TAILQ_REMOVE(&p->queue, job, link);
        p->queued--;
        pthread_mutex_unlock(&p->mu);
        offload_job_free(job);
        return;
    }
    job->cancelled = 1; /* running, or done and not yet drained: dropped by offload_drain */
    pthread_mutex_unlock(&p->mu);
}

int offload_stuck(struct offload *p, long min_ms, char *label, size_t labellen, long *age_ms)
{
    long long now = offload_now_ms(), oldest = -1;
    int stuck = 0;
    pthread_mutex_lock(&p->mu);
    if (p->busy > 0 && p->busy >= p->live) {
        stuck = 1;
        const struct offload_job *job;
        TAILQ_FOREACH(job, &p->running, link)
        {
            long long age = now - job->started_ms;
            if (age < min_ms) {
                stuck = 0;
                break;
            }
            if (age > oldest) {
                oldest = age;
                snprintf(label, labellen, "%s", job->label);
            }
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (stuck)
        *age_ms = (long)oldest;
    return stuck;
}
