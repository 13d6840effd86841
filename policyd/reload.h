/*
 * reload.h - SIGHUP: load the configuration again without stopping the requests being served.
 *
 * The new configuration (Postfix import, tables, per-check state) is loaded in a thread and
 * handed to the loop through a pipe, so a large table never stalls a request; on the loop it
 * is validated against the running one, the log is reopened (logrotate), the DNS engine
 * reconfigured when a DNS setting changed, and it is swapped in whole. A refused file keeps
 * the running configuration. What a changed setting needs is read from the settings table's
 * reload class, not from a list of names here. systemd hears RELOADING=1 when a reload starts
 * and READY=1 with its outcome as STATUS= when it ends (policyd/notify.c).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_RELOAD_H
#define POLICYD_RELOAD_H

#include "policyd/dns/dns.h"

#include <stddef.h>

struct config;
struct event_base;
struct reload;

/* reload_new - get ready to reload path on base; dns is reconfigured on DNS changes. NULL with
 * a reason in err. log_stderr: the daemon logs to standard error too (foreground on a tty). */
struct reload *reload_new(struct event_base *base, struct dns *dns, const char *path,
                          int log_stderr, char *err, size_t errlen);

/* reload_set_hook - hook(arg, cfg) runs on the loop right after each configuration a reload
 * makes active (for the parts of the daemon that follow a setting, e.g. a timer's interval). */
typedef void reload_hook_fn(void *arg, const struct config *cfg);
void reload_set_hook(struct reload *r, reload_hook_fn *hook, void *arg);

/* reload_request - start a reload (merged into one already running). Never waits. */
void reload_request(struct reload *r);

/* reload_free - wait for a loader thread still running, drop what it loaded, free. NULL ok. */
void reload_free(struct reload *r);

/* reload_dns_options - the DNS engine's options from a configuration. */
struct dns_options reload_dns_options(const struct config *cfg);

/* reload_open_log - log where cfg says (the host name on file lines from myhostname);
 * also_stderr copies every line to standard error. 0, or -1 with a reason. */
int reload_open_log(const struct config *cfg, int also_stderr, char *err, size_t errlen);

#endif
