/*
 * ratelimit_admin.h - `policyd -c FILE ratelimit show KEY | top [N] | reset KEY | block KEY
 * [DURATION] | unblock KEY`: the ratelimit check's counters read and changed in the store
 * directly (policyd/store/store_admin.h), without the daemon.
 */
/* SPDX-License-Identifier: MIT */
#ifndef CHECKS_RATELIMIT_ADMIN_H
#define CHECKS_RATELIMIT_ADMIN_H

struct config;

/* ratelimit_admin_main - argv[0] is "ratelimit". Exit status: 0 done, 1 nothing found or an
 * error (on stderr), 2 usage. */
int ratelimit_admin_main(const struct config *cfg, int argc, char **argv);

#endif
