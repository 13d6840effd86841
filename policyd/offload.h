/*
 * offload.h - blocking work (a file read on storage that may hang, such as NFS) done by a few
 * worker threads, its result handed back to the event loop.
 *
 * A pool starts its threads with it (never one per job) and keeps a bounded queue. A job's
 * work() runs in a thread and touches only its own argument; its done() runs later on the
 * loop, never from inside offload_submit. A cancelled job's result is dropped: done() never
 * runs, only free_arg(). A thread stuck in a read keeps its job however long the read takes:
 * offload_stuck() tells when every thread has been busy too long, so a caller can answer
 * without waiting, and the last offload_unref() does not wait for a stuck thread either (it is
 * detached; when its read returns it frees its job and, being the last, the pool).
 * Ownership: the pool is shared by reference (offload_ref / offload_unref) among its owners on
 * the loop; a job belongs to the pool from offload_submit on.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_OFFLOAD_H
#define POLICYD_OFFLOAD_H

#include <stddef.h>

struct event_base;
struct offload;
struct offload_job;

/* work(arg) runs in a worker thread: no shared state, no log, no events. done(arg) runs on the
 * loop after it, unless the job was cancelled. free_arg(arg) runs once in every case, after
 * done: on the loop, or in the worker thread when the pool was already gone (so it may only
 * free memory). */
typedef void offload_work_fn(void *arg);
typedef void offload_done_fn(void *arg);
typedef void offload_free_fn(void *arg);

/* offload_new - a pool of threads (at least 1) on base with at most queue_max jobs waiting
 * for a thread; one reference held by the caller. NULL with a reason in err when a thread or
 * the pipe to the loop cannot be made. The threads block every signal. */
struct offload *offload_new(struct event_base *base, int threads, size_t queue_max, char *err,
                            size_t errlen);

/* offload_ref - one more owner; returns p. offload_unref - drop one; the last one (on the loop)
 * drops every job not yet done (no done(), only free_arg), waits at most 1 s for the idle
 * threads to leave and leaves stuck ones detached. NULL ok. */
struct offload *offload_ref(struct offload *p);
void offload_unref(struct offload *p);

/* offload_threads - the number of threads of the pool. */
int offload_threads(const struct offload *p);

/* offload_submit - queue work(arg) with a label for the logs (the file it reads). The handle
 * is valid until done() has returned or offload_cancel; NULL when the queue is full (arg is
 * then not taken: the caller still owns it). */
struct offload_job *offload_submit(struct offload *p, const char *label, offload_work_fn *work,
                                   offload_done_fn *done, offload_free_fn *free_arg, void *arg);

/* offload_cancel - on the loop: done() will not run for job; a job still queued is dropped at
 * once, a running one when its work returns. The handle is invalid afterwards. */
void offload_cancel(struct offload_job *job);

/* offload_stuck - 1 when every thread of the pool has been busy with one job for at least
 * min_ms (a new job would wait behind them for who knows how long): *age_ms and label get the
 * job busy longest. 0 otherwise. */
int offload_stuck(struct offload *p, long min_ms, char *label, size_t labellen, long *age_ms);

#endif
