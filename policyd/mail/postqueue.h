/*
 * postqueue.h - list Postfix's queue: `postqueue -j` run without a shell (lib/runtool), found
 * also where Postfix installs it when PATH is short (a cron job's). The doctor's queue section
 * and the daemon's queue watcher both list the queue this way; deferral.h reads the lines.
 * Blocking: call it off the event loop (a thread, or a command run to completion).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_MAIL_POSTQUEUE_H
#define POLICYD_MAIL_POSTQUEUE_H

#include "policyd/lib/runtool.h"

#include <stddef.h>

/*
 * postqueue_list - run `postqueue [-c config_dir] -j`, keeping out_max bytes of its output and
 * err_max of its errors, killed after timeout_ms; fills res (runtool_result_free it). -c is
 * passed only for another instance than /etc/postfix (an unprivileged user may name no other
 * directory; config_dir NULL or "" means the default). Returns runtool_run's value.
 */
int postqueue_list(const char *config_dir, size_t out_max, size_t err_max, long timeout_ms,
                   struct runtool_result *res);

#endif
