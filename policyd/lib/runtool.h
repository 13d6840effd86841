/*
 * runtool.h - run a program and take its output, bounded in bytes and in time.
 *
 * No shell: the program gets argv as given, standard input from /dev/null, default signal
 * dispositions and an empty signal mask, and a process group of its own, which is killed
 * (SIGKILL) when the time limit passes. Output beyond the bound is read and dropped, so the
 * program never blocks on a full pipe. Synchronous: the call waits for the program's end (or
 * the limit), so it is for start-up, one-shot commands and worker threads, never the event
 * loop. Thread-safe (posix_spawn); the caller must not ignore or reap SIGCHLD itself.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_LIB_RUNTOOL_H
#define POLICYD_LIB_RUNTOOL_H

#include <stddef.h>

enum runtool_stderr {
    RUNTOOL_STDERR_DROP,    /* to /dev/null */
    RUNTOOL_STDERR_CAPTURE, /* into result.err, bounded by err_max */
    RUNTOOL_STDERR_MERGE    /* into result.out, as 2>&1 */
};

struct runtool_options {
    const char *path; /* directories searched for an argv[0] without '/', "DIR:DIR"; NULL:
                       * $PATH (or /usr/bin:/bin when unset) */
    size_t out_max;   /* bytes of standard output kept */
    enum runtool_stderr err_mode;
    size_t err_max;  /* bytes of standard error kept (RUNTOOL_STDERR_CAPTURE) */
    long timeout_ms; /* from start to exit; then the process group is killed. <= 0: none */
};

enum runtool_end {
    RUNTOOL_EXITED,    /* code: the exit status */
    RUNTOOL_SIGNALED,  /* code: the signal that ended it */
    RUNTOOL_TIMEOUT,   /* killed at the time limit; code: timeout_ms */
    RUNTOOL_NOT_FOUND, /* no such program (in path); code: errno */
    RUNTOOL_FAILED     /* could not be started (pipe, spawn, not executable); code: errno */
};

struct runtool_result {
    enum runtool_end end;
    int code;
    char *out; /* NUL-terminated after outlen bytes (which may hold NULs); never NULL */
    size_t outlen;
    int out_truncated; /* 1 if output beyond out_max was dropped */
    char *err;         /* as out, for standard error; "" unless captured */
    size_t errlen;
    int err_truncated;
};

/*
 * runtool_run - run argv[0] with argv (NULL-terminated) and wait for its end. Fills res
 * (release it with runtool_result_free, whatever the outcome). Returns the exit status
 * (0 to 255) if the program exited, else -1 (res->end says why).
 */
int runtool_run(const char *const argv[], const struct runtool_options *opts,
                struct runtool_result *res);

/* runtool_result_free - the buffers of res; res may then be reused. NULL ok. */
void runtool_result_free(struct runtool_result *res);

/* runtool_describe - how it ended, for messages: "exit status 3", "killed by signal 9",
 * "still running after 5000 ms: killed", "not found", "cannot run: Permission denied". Returns buf.
 */
const char *runtool_describe(const struct runtool_result *res, char *buf, size_t buflen);

#endif
