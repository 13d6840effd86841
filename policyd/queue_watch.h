/*
 * queue_watch.h - the daemon watches Postfix's deferred queue: every queue_watch_interval a
 * thread runs `postqueue -j` (policyd/lib/runtool: no shell, output bounded, a time limit),
 * groups the deferred recipients by the kind of their delay reason and their destination
 * domain (policyd/mail/deferral.c, the doctor's table), and hands the groups to the loop, which
 * logs one diagnosis line per new group - keyed by the queue id of one of its messages, so a
 * grep for that id finds it beside Postfix's status=deferred line - and keeps the counts for
 * the metrics. A group is logged again only after queue_watch_repeat. Where postqueue does not
 * exist the watch turns itself off; a postqueue that fails is logged when that starts and when
 * it ends, not at every round.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_QUEUE_WATCH_H
#define POLICYD_QUEUE_WATCH_H

#include "policyd/mail/deferral.h"

#include <stddef.h>

struct config;
struct event_base;
struct queue_watch;

/* queue_watch_new - a watcher on base, idle until queue_watch_configure. Never NULL. */
struct queue_watch *queue_watch_new(struct event_base *base);

/* queue_watch_configure - follow cfg's queue_watch_* settings and postfix_config_directory:
 * the next round one interval from now (0: off). At start and after each reload. */
void queue_watch_configure(struct queue_watch *qw, const struct config *cfg);

/* queue_watch_free - stop; a postqueue still running is left to finish on its own (its thread
 * frees what it holds), so stopping never waits. NULL ok. */
void queue_watch_free(struct queue_watch *qw);

/* What the last successful round saw, for the metrics. */
struct queue_watch_counts {
    int enabled;       /* a round is scheduled */
    int scanned;       /* a round succeeded since start */
    long long last_ok; /* its time (Unix seconds) */
    unsigned long long runs_ok, runs_failed;
    size_t messages[DEFERRAL_NKINDS];   /* deferred messages with a recipient of each kind */
    size_t recipients[DEFERRAL_NKINDS]; /* deferred recipients of each kind */
};

/* queue_watch_get_counts - the counts into out. */
void queue_watch_get_counts(const struct queue_watch *qw, struct queue_watch_counts *out);

#endif
