/*
 * reload.c - SIGHUP: load in a thread, validate and swap on the loop (see reload.h).
 *
 * The thread owns nothing but the configuration it builds; the pipe's byte tells the loop it
 * is done. Only the loop touches the active configuration, the log and the DNS engine.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/reload.h"

#include "policyd/config.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/evaluate.h"
#include "policyd/notify.h"
#include "policyd/stats.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct reload {
    struct event_base *base;
    struct dns *dns;
    const char *path;
    int log_stderr;
    int pipe[2];
    struct event *ev;
    pthread_t thread;
    int running;
    struct config *cfg;
    char err[2048];
    reload_hook_fn *hook; /* told of each configuration swapped in */
    void *hook_arg;
};

struct dns_options reload_dns_options(const struct config *cfg)
{
    struct dns_options o = {
        .servers = cfg->dns_servers,
        .timeout_ms = cfg->dns_timeout,
        .tries = (int)cfg->dns_tries,
        .cache_size = (size_t)cfg->dns_cache_size,
        .ttl_min_ms = cfg->dns_ttl_min,
        .ttl_max_ms = cfg->dns_ttl_max,
        .error_ttl_ms = cfg->dns_error_ttl,
    };
    return o;
}

int reload_open_log(const struct config *cfg, int also_stderr, char *err, size_t errlen)
{
    log_set_hostname(cfg->myhostname);
    return log_open(cfg->syslog_name, cfg->syslog_facility, cfg->log_file, also_stderr, err,
                    (unsigned long)errlen);
}

/* reload_thread - load and validate the new configuration off the loop. */
static void *reload_thread(void *arg)
{
    struct reload *r = arg;
    r->cfg = config_load(r->path, r->err, sizeof(r->err));
    if (write(r->pipe[1], "x", 1) != 1) {
        /* the loop would never hear of it: nothing else to do from here */
    }
    return NULL;
}

/* reload_refused - count and log a refused reload, and tell systemd (the reason, one line). */
static void reload_refused(const char *why)
{
    stats.reload_failures++;
    stats.last_reload_failed = 1;
    log_error("reload refused: %s; the running configuration stays in use", why);
    notify_ready("reload refused: %s; the running configuration stays in use", why);
}

void reload_request(struct reload *r)
{
    if (r->running) {
        log_info("reload already in progress: this SIGHUP is merged into it");
        return;
    }
    notify_reloading();
    r->running = 1;
    if (pthread_create(&r->thread, NULL, reload_thread, r) != 0) {
        r->running = 0;
        reload_refused("cannot start the loader thread");
    }
}

/* reload_done - the loader finished: validate the outcome, then swap on the loop. */
static void reload_done(evutil_socket_t fd, short what, void *arg)
{
    struct reload *r = arg;
    char byte, err[2048], names[1024];
    (void)what;
    if (read(fd, &byte, 1) != 1 || !r->running)
        return;
    pthread_join(r->thread, NULL);
    r->running = 0;
    struct config *old = config_active();
    struct config *cfg = r->cfg;
    r->cfg = NULL;
    if (!cfg) {
        reload_refused(r->err);
        return;
    }
    /* The checks' timers and lookups: the new configuration's start (which may take over
     * what the old one's state holds), before anything else changes, so a refused start
     * leaves everything as it was; then the old one's stop. */
    if (evaluate_start_checks(cfg, old, r->base, r->dns, err, sizeof(err)) != 0) {
        reload_refused(err);
        config_unref(cfg);
        return;
    }
    if (config_changed(old, cfg, R_RESTART, names, sizeof(names)))
        log_warn("reload: %s changed: that takes effect only after a restart (sockets are bound "
                 "and privileges dropped once, at start)",
                 names);
    if (reload_open_log(cfg, r->log_stderr, err, sizeof(err)) != 0)
        log_warn("reload: %s; logging stays where it was", err);
    if (config_changed(old, cfg, R_DNS, names, sizeof(names))) {
        /* Queries in flight finish on the old settings; new ones use the new at once. */
        struct dns_options dopts = reload_dns_options(cfg);
        if (dns_reconfigure(r->dns, &dopts, err, sizeof(err)) != 0)
            log_warn("reload: %s; the DNS settings stay as they were", err);
    }
    evaluate_stop_checks(old);
    config_activate(cfg);
    stats.reloads++;
    stats.last_reload_ok = (long long)time(NULL);
    stats.last_reload_failed = 0;
    log_info("reloaded %s (%s)", r->path, cfg->postfix_note);
    notify_ready("reloaded %s; checks: %s", r->path, cfg->checks);
    if (r->hook)
        r->hook(r->hook_arg, cfg);
}

void reload_set_hook(struct reload *r, reload_hook_fn *hook, void *arg)
{
    r->hook = hook;
    r->hook_arg = arg;
}

struct reload *reload_new(struct event_base *base, struct dns *dns, const char *path,
                          int log_stderr, char *err, size_t errlen)
{
    struct reload *r = xcalloc(1, sizeof(*r));
    r->base = base;
    r->dns = dns;
    r->path = path;
    r->log_stderr = log_stderr;
    r->pipe[0] = r->pipe[1] = -1;
    if (pipe2(r->pipe, O_CLOEXEC) != 0 ||
        !(r->ev = event_new(base, r->pipe[0], EV_READ | EV_PERSIST, reload_done, r)) ||
        event_add(r->ev, NULL) != 0) {
        snprintf(err, errlen, "cannot set up reloading: %s", strerror(errno));
        reload_free(r);
        return NULL;
    }
    return r;
}

void reload_free(struct reload *r)
{
    if (!r)
        return;
    if (r->running) {
        pthread_join(r->thread, NULL);
        config_unref(r->cfg);
    }
    if (r->ev)
        event_free(r->ev);
    if (r->pipe[0] >= 0) {
        close(r->pipe[0]);
        close(r->pipe[1]);
    }
    free(r);
}
