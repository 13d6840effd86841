/*
 * notify.h - telling systemd how the daemon is doing (sd_notify(3), for Type=notify units):
 * READY=1 once the sockets are bound and the configuration is loaded, RELOADING=1 then READY=1
 * around each reload with a STATUS= line saying how it went, STOPPING=1 on SIGTERM, and
 * WATCHDOG=1 from a timer on the event loop at half of WATCHDOG_USEC (WatchdogSec=), so a loop
 * that stops turning stops the pings and systemd restarts the daemon. Without NOTIFY_SOCKET in
 * the environment (not started by systemd, or another Type=) every call does nothing.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_NOTIFY_H
#define POLICYD_NOTIFY_H

struct event_base;
struct notify;

/* notify_new - start the watchdog pings on base when systemd asks for them (WATCHDOG_USEC for
 * this process); never NULL. notify_free (NULL ok) stops them. */
struct notify *notify_new(struct event_base *base);
void notify_free(struct notify *n);

/* notify_ready - READY=1 with STATUS=the formatted text. */
void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* notify_reloading - RELOADING=1 (with MONOTONIC_USEC=, as systemd 253's Type=notify-reload
 * wants), STATUS=reloading. */
void notify_reloading(void);

/* notify_stopping - STOPPING=1 with STATUS=the formatted text. */
void notify_stopping(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* notify_status - STATUS=the formatted text alone. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
