/*
 * log.h - log lines for people: syslog (facility mail by default) or a file, Postfix style.
 *
 * Lines carry Postfix's severity prefixes ("warning: ", "fatal: "); diagnosis lines start with
 * the queue id or NOQUEUE so they sit beside Postfix's own lines in the maillog. The module
 * holds the only logging state in the process; log_open may be called again on reload.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_LOG_H
#define POLICYD_LOG_H

/*
 * log_open - log to file (when not empty) or to syslog under name and facility ("mail",
 * "local0", ...). also_stderr copies every line to standard error (foreground on a terminal).
 * Returns 0, or -1 with a reason in err (unknown facility, file cannot be opened); the previous
 * destination then stays in use.
 */
int log_open(const char *name, const char *facility, const char *file, int also_stderr, char *err,
             unsigned long errlen);

/* log_set_owner - the user that must be able to reopen the log file after privileges are
 * dropped: when log_open, running as root, creates the file (or finds it owned by root), it
 * gives it to uid:gid. -1, -1 (the default): leave ownership alone. */
void log_set_owner(long uid, long gid);

struct event_base;

/* log_attach - flush log-file lines once per turn of this event loop (NULL: write each line at
 * once). log_flush - write what is gathered now (before exit, fork or reopen). */
void log_attach(struct event_base *base);
void log_flush(void);

/* log_set_hostname - the host name on log-file lines (Postfix uses myhostname's first label). */
void log_set_hostname(const char *name);

/* log_facility_valid - 1 if name is a syslog facility we accept, 0 if not. */
int log_facility_valid(const char *name);

/* log_set_verbose / log_verbose - -v: log every decision, not only rejects and defers. */
void log_set_verbose(int verbose);
int log_verbose(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* -v only */

/* log_fatal - "fatal: ..." for a start-up failure (bad command line, a socket that cannot be
 * bound): logged, copied to standard error, then exit(1). Never for peer input. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* log_panic - "panic: ..." for a broken invariant or exhausted memory: logged, then abort(). */
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
