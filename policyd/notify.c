/*
 * notify.c - sd_notify(3) through libsystemd, and the watchdog timer (see notify.h).
 *
 * libsystemd does the protocol (the datagram to NOTIFY_SOCKET, abstract or path); we only
 * format the lines. Every message goes out at once from the loop thread: a datagram to a local
 * socket never blocks. The environment is left in place (unset_environment 0), so a reload
 * can still notify; the watchdog interval is read once, at start.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/notify.h"

#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct notify {
    struct event *watchdog;
};

/* notify_send - one message; a failure is logged once (systemd would not hear us anyway). */
static void notify_send(const char *state)
{
    static int warned;
    int rc = sd_notify(0, state);
    if (rc < 0 && !warned) {
        warned = 1;
        log_warn("cannot notify systemd (NOTIFY_SOCKET=%s): %s", getenv("NOTIFY_SOCKET"),
                 strerror(-rc));
    }
}

/* notify_line - "PREFIXSTATUS=text" from a format, status text kept to one line. */
static void notify_line(const char *prefix, const char *fmt, va_list ap)
{
    char status[512], msg[600];
    vsnprintf(status, sizeof(status), fmt, ap);
    status[strcspn(status, "\n")] = '\0';
    snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix, status);
    notify_send(msg);
}

void notify_ready(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    notify_line("READY=1\n", fmt, ap);
    va_end(ap);
}

void notify_stopping(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    notify_line("STOPPING=1\n", fmt, ap);
    va_end(ap);
}

void notify_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    notify_line("", fmt, ap);
    va_end(ap);
}

void notify_reloading(void)
{
    struct timespec ts;
    char msg[128];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    notify_send(msg);
}

static void notify_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    notify_send("WATCHDOG=1");
}

struct notify *notify_new(struct event_base *base)
{
    struct notify *n = xcalloc(1, sizeof(*n));
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return n;
    /* Half the interval, as sd_watchdog_enabled(3) advises: one late turn is not a restart. */
    uint64_t half = usec / 2;
    struct timeval tv = {(time_t)(half / 1000000), (suseconds_t)(half % 1000000)};
    if (!(n->watchdog = event_new(base, -1, EV_PERSIST, notify_watchdog_cb, n)))
        xalloc_fail(0);
    event_add(n->watchdog, &tv);
    notify_send("WATCHDOG=1");
    log_info("systemd watchdog: pinging every %llu ms (WatchdogSec=%llu ms)",
             (unsigned long long)(half / 1000), (unsigned long long)(usec / 1000));
    return n;
}

void notify_free(struct notify *n)
{
    if (!n)
        return;
    if (n->watchdog)
        event_free(n->watchdog);
    free(n);
}
