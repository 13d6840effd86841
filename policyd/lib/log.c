/*
 * log.c - syslog or file logging with Postfix's severity prefixes.
 *
 * A log file is written with one write(2) per line on an O_APPEND descriptor, so lines from
 * concurrent writers never interleave, and rotation works by renaming (the path is opened anew
 * on every log_open, which SIGHUP calls; the renamed file is closed and left alone). A file
 * created as root is given to the unprivileged user, who must reopen it after the privilege
 * drop. Syslog uses the C library's syslog(3), as Postfix does. Log lines keep UTF-8; control
 * characters become '?' and bytes that are not UTF-8 are written \xNN.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/log.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;
static int log_to_stderr;
static int log_is_verbose;
static char log_name[64] = "policyd";
static char log_host[64] = "localhost";
static long log_owner_uid = -1, log_owner_gid = -1;

/* Lines for the log file are gathered during one turn of the event loop and written with one
 * write(2) at its end (or at once when no loop is attached, or the batch is large), so a burst
 * of rejects costs one system call, not one per line. */
#define LOG_BATCH 65536
static char log_batch[LOG_BATCH];
static size_t log_batch_len;
static struct event *log_flush_ev;

void log_flush(void)
{
    size_t off = 0;
    while (log_fd >= 0 && off < log_batch_len) {
        ssize_t n = write(log_fd, log_batch + off, log_batch_len - off);
        if (n <= 0)
            break; /* nowhere left to report it: drop rather than block or abort */
        off += (size_t)n;
    }
    log_batch_len = 0;
}

static void log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    log_flush();
}

void log_attach(struct event_base *base)
{
    if (log_flush_ev) {
        log_flush();
        event_free(log_flush_ev);
        log_flush_ev = NULL;
    }
    /* Without the event (no memory for it) each line is written at once: slower, never lost.
     * xalloc is not used here, since it reports through this file. */
    if (base)
        log_flush_ev = event_new(base, -1, 0, log_flush_cb, NULL);
}

static const struct {
    const char *name;
    int value;
} log_facilities[] = {
    {"mail", LOG_MAIL},     {"daemon", LOG_DAEMON}, {"user", LOG_USER},     {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3}, {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

/* log_facility_lookup - syslog value of a facility name, -1 if unknown. */
static int log_facility_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
        if (strcmp(log_facilities[i].name, name) == 0)
            return log_facilities[i].value;
    return -1;
}

void log_set_hostname(const char *name)
{
    snprintf(log_host, sizeof(log_host), "%.*s", (int)strcspn(name, "."), name);
}

int log_facility_valid(const char *name)
{
    return log_facility_lookup(name) >= 0;
}

void log_set_owner(long uid, long gid)
{
    log_owner_uid = uid;
    log_owner_gid = gid;
}

/* log_open_file - open (create) the log file; as root, give a file we created, or one root
 * owns, to the owner set by log_set_owner, so the daemon can reopen it after dropping
 * privileges. -1 with a reason in err. */
static int log_open_file(const char *file, char *err, unsigned long errlen)
{
    int created = 0, fd = -1;
    /* Whether we create it decides its owner: O_EXCL tells (twice: it may vanish between). */
    for (int tries = 0; fd < 0 && tries < 2; tries++) {
        fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0640);
        created = fd >= 0;
        if (fd < 0 && errno == EEXIST)
            fd = open(file, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno != ENOENT)
            break;
    }
    if (fd < 0) {
        if (errno == EACCES && geteuid() != 0)
            snprintf(err, errlen,
                     "cannot open log file %s: %s (the daemon runs as uid %ld now: the file, or "
                     "the directory to create it in, must be writable by that user; logrotate: "
                     "'create 0640 USER GROUP')",
                     file, strerror(errno), (long)geteuid());
        else
            snprintf(err, errlen, "cannot open log file %s: %s", file, strerror(errno));
        return -1;
    }
    struct stat st;
    if (log_owner_uid >= 0 && geteuid() == 0 && fstat(fd, &st) == 0 &&
        (created || st.st_uid == 0) && st.st_uid != (uid_t)log_owner_uid &&
        fchown(fd, (uid_t)log_owner_uid, (gid_t)log_owner_gid) != 0) {
        snprintf(err, errlen, "cannot give log file %s to uid %ld: %s", file, log_owner_uid,
                 strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int log_open(const char *name, const char *facility, const char *file, int also_stderr, char *err,
             unsigned long errlen)
{
    int fac = log_facility_lookup(facility);

    if (fac < 0) {
        snprintf(err, errlen, "unknown syslog facility '%s'", facility);
        return -1;
    }
    log_flush();
    if (file && *file) {
        /* Always the path anew: after logrotate renamed the file, lines go to the new one. */
        int fd = log_open_file(file, err, errlen);
        if (fd < 0)
            return -1;
        if (log_fd >= 0)
            close(log_fd);
        log_fd = fd;
    } else {
        if (log_fd >= 0)
            close(log_fd);
        log_fd = -1;
        closelog();
        snprintf(log_name, sizeof(log_name), "%s", name);
        openlog(log_name, LOG_PID | LOG_NDELAY, fac);
    }
    snprintf(log_name, sizeof(log_name), "%s", name);
    log_to_stderr = also_stderr;
    return 0;
}

void log_set_verbose(int verbose)
{
    log_is_verbose = verbose;
}

int log_verbose(void)
{
    return log_is_verbose;
}

static pid_t *log_pid_slot(void)
{
    static pid_t pid;
    return &pid;
}

/* log_forget_pid - in a forked child: the cached pid is the parent's. */
static void log_forget_pid(void)
{
    *log_pid_slot() = 0;
}

/* log_utf8_len - the length of the valid UTF-8 sequence (2 to 4 bytes) at p, 0 if there is
 * none (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t log_utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c >= 0xc2 && c <= 0xdf)
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* log_clean - copy text into out (outlen > 0), fit for a log line: control characters (C0,
 * DEL and the C1 range U+0080..U+009F) become '?', valid UTF-8 stays, any other byte is written
 * \xNN. Cut short, never mid-sequence, when out is full. */
static void log_clean(const char *text, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t o = 0;
    while (*p && o + 1 < outlen) {
        if (*p >= 0x20 && *p < 0x7f) {
            out[o++] = (char)*p++;
            continue;
        }
        if (*p < 0x80) {
            out[o++] = '?';
            p++;
            continue;
        }
        size_t n = log_utf8_len(p); /* stops at the NUL: a continuation byte is never 0 */
        if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
            out[o++] = '?'; /* a C1 control character: terminals act on these */
            p += 2;
        } else if (n > 0) {
            if (o + n >= outlen)
                break;
            memcpy(out + o, p, n);
            o += n;
            p += n;
        } else {
            if (o + 4 >= outlen)
                break;
            snprintf(out + o, 5, "\\x%02x", *p++);
            o += 4;
        }
    }
    out[o] = 0;
}

/* log_emit - format one line and send it to the active destination. */
static void log_emit(int priority, const char *prefix, const char *fmt, va_list ap)
{
    char raw[4096], text[4096];
    int n = snprintf(raw, sizeof(raw), "%s", prefix);
    vsnprintf(raw + n, sizeof(raw) - (size_t)n, fmt, ap);
    /* Peer data (addresses, HELO names, PTR names) lands in these lines: no control character
     * may split a line or drive a terminal, as Postfix's own logging ensures, and what is not
     * UTF-8 is shown byte by byte rather than garbling the reader's terminal or parser. */
    log_clean(raw, text, sizeof(text));

    if (log_fd >= 0 || log_to_stderr) {
        char line[4300];
        /* The stamp changes once a second and the pid only across fork(): neither is worth a
         * system call or a time zone conversion per line at thousands of lines a second. */
        static time_t stamp_time = (time_t)-1;
        static char stamp[32];
        pid_t *pid_cached = log_pid_slot();
        time_t now = time(NULL);
        if (now != stamp_time) {
            struct tm tm;
            localtime_r(&now, &tm);
            strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
            stamp_time = now;
        }
        static int atfork_set;
        if (!atfork_set) {
            pthread_atfork(NULL, NULL, log_forget_pid);
            atfork_set = 1;
        }
        if (!*pid_cached)
            *pid_cached = getpid();
        int len = snprintf(line, sizeof(line), "%s %s %s[%ld]: %s\n", stamp, log_host, log_name,
                           (long)*pid_cached, text);
        if (len >= (int)sizeof(line))
            len = (int)sizeof(line) - 1, line[len - 1] = '\n';
        if (log_fd >= 0) {
            if (log_batch_len + (size_t)len > LOG_BATCH)
                log_flush();
            memcpy(log_batch + log_batch_len, line, (size_t)len);
            log_batch_len += (size_t)len;
            if (!log_flush_ev || priority <= LOG_WARNING)
                log_flush(); /* no loop to flush at its turn's end; warnings go out at once */
            else if (!event_pending(log_flush_ev, EV_TIMEOUT, NULL))
                event_active(log_flush_ev, EV_TIMEOUT, 0);
        }
        if (log_to_stderr && write(STDERR_FILENO, line, (size_t)len) < 0) {
        }
    }
    if (log_fd < 0)
        syslog(priority, "%s", text);
}

#define LOG_FUNCTION(fn, prio, prefix, cond)                                                       \
    void fn(const char *fmt, ...)                                                                  \
    {                                                                                              \
        if (!(cond))                                                                               \
            return;                                                                                \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(prio, prefix, fmt, ap);                                                           \
        va_end(ap);                                                                                \
    }

LOG_FUNCTION(log_info, LOG_INFO, "", 1)
LOG_FUNCTION(log_warn, LOG_WARNING, "warning: ", 1)
LOG_FUNCTION(log_error, LOG_ERR, "error: ", 1)
LOG_FUNCTION(log_debug, LOG_DEBUG, "", log_is_verbose)

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    if (!log_to_stderr) {
        char text[1024];
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        dprintf(STDERR_FILENO, "%s: fatal: %s\n", log_name, text);
    }
    va_start(ap, fmt);
    log_emit(LOG_CRIT, "fatal: ", fmt, ap);
    va_end(ap);
    log_flush();
    exit(1);
}

void log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_CRIT, "panic: ", fmt, ap);
    va_end(ap);
    log_flush();
    abort();
}
