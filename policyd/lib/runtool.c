/*
 * runtool.c - run a program, its output bounded in bytes and time (see runtool.h).
 *
 * The program is found here (the search path is the caller's choice, not the environment's
 * alone), then started with posix_spawn: stdin /dev/null, stdout (and stderr) into pipes
 * opened close-on-exec, a new process group, signals reset. One poll loop reads both pipes
 * until they close or the deadline passes; what exceeds a bound is read into a scratch buffer
 * and dropped. Then the child is reaped, still within the deadline: a program that closed
 * its output but goes on is killed too. The caller owns the result's buffers.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/runtool.h"

#include "policyd/lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RUNTOOL_CHUNK 16384
#define RUNTOOL_DEFAULT_PATH "/usr/bin:/bin"

/* A pipe being read: where its bytes go and how many may be kept. */
struct sink {
    int fd;
    char **buf;
    size_t *len, cap, max;
    int *truncated;
};

static long long runtool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* runtool_find - the file to run for name: name itself if it has a '/', else the first
 * executable regular file DIR/name along path. NULL with *err set (ENOENT, EACCES). */
static char *runtool_find(const char *name, const char *path, int *err)
{
    if (strchr(name, '/'))
        return xstrdup(name);
    *err = ENOENT;
    if (!*name)
        return NULL;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        if (n > 0) {
            char *file = xasprintf("%.*s/%s", (int)n, p, name);
            struct stat st;
            if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
                if (access(file, X_OK) == 0)
                    return file;
                *err = EACCES;
            }
            free(file);
        }
        p += n;
        if (*p == ':')
            p++;
    }
    return NULL;
}

/* sink_read - read what fd has; 0 while it stays open, 1 at its end (or on an error). */
static int sink_read(struct sink *s)
{
    char chunk[RUNTOOL_CHUNK];
    ssize_t n = read(s->fd, chunk, sizeof(chunk));
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : 1;
    if (n == 0)
        return 1;
    size_t keep = (size_t)n;
    if (*s->len + keep > s->max) {
        keep = s->max - *s->len;
        *s->truncated = 1;
    }
    if (keep) {
        *s->buf = xgrow(*s->buf, &s->cap, *s->len + keep + 1, 1);
        memcpy(*s->buf + *s->len, chunk, keep);
        *s->len += keep;
        (*s->buf)[*s->len] = '\0';
    }
    return 0;
}

/* runtool_spawn - start file with argv, its stdout into outfd, stderr per mode into errfd.
 * 0 with *pid, or an errno. */
static int runtool_spawn(const char *file, const char *const argv[], int outfd, int errfd,
                         enum runtool_stderr mode, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int rc;

    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return rc;
    if ((rc = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, outfd, 1);
    if (!rc && mode == RUNTOOL_STDERR_DROP)
        rc = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    else if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, mode == RUNTOOL_STDERR_MERGE ? outfd : errfd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (!rc) /* descriptors someone opened without close-on-exec stay ours */
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    if (!rc)
        rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                               POSIX_SPAWN_SETSIGDEF);
    if (!rc)
        rc = posix_spawnattr_setpgroup(&at, 0);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&at, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&at, &all);
    if (!rc)
        rc = posix_spawn(pid, file, &fa, &at, (char *const *)argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* runtool_reap - wait for pid until deadline (-1: none), then kill its group and wait. 1 if
 * it had to be killed. *status as from waitpid; -1 if it could not be reaped (ECHILD). */
static int runtool_reap(pid_t pid, long long deadline, int *status)
{
    long pause_ms = 1;
    for (;;) {
        pid_t w = waitpid(pid, status, deadline < 0 ? 0 : WNOHANG);
        if (w == pid)
            return 0;
        if (w < 0 && errno != EINTR) {
            *status = -1;
            return 0;
        }
        if (w == 0) {
            long long left = deadline - runtool_now();
            if (left <= 0)
                break;
            struct timespec ts = {0, (pause_ms < left ? pause_ms : left) * 1000000L};
            nanosleep(&ts, NULL);
            if (pause_ms < 50)
                pause_ms *= 2;
        }
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR) {
            *status = -1;
            break;
        }
    }
    return 1;
}

int runtool_run(const char *const argv[], const struct runtool_options *opts,
                struct runtool_result *res)
{
    const char *path = opts->path ? opts->path : getenv("PATH");
    long long deadline = opts->timeout_ms > 0 ? runtool_now() + opts->timeout_ms : -1;
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, err = 0;
    int capture_err = opts->err_mode == RUNTOOL_STDERR_CAPTURE;

    memset(res, 0, sizeof(*res));
    res->out = xcalloc(1, 1);
    res->err = xcalloc(1, 1);
    char *file = runtool_find(argv[0], path ? path : RUNTOOL_DEFAULT_PATH, &err);
    if (!file) {
        res->end = err == ENOENT ? RUNTOOL_NOT_FOUND : RUNTOOL_FAILED;
        res->code = err;
        return -1;
    }
    if (pipe2(outp, O_CLOEXEC) != 0 || (capture_err && pipe2(errp, O_CLOEXEC) != 0)) {
        res->end = RUNTOOL_FAILED;
        res->code = errno;
        free(file);
        for (int i = 0; i < 2; i++) {
            if (outp[i] >= 0)
                close(outp[i]);
        }
        return -1;
    }
    pid_t pid;
    int rc = runtool_spawn(file, argv, outp[1], errp[1], opts->err_mode, &pid);
    free(file);
    close(outp[1]);
    if (capture_err)
        close(errp[1]);
    if (rc != 0) {
        close(outp[0]);
        if (capture_err)
            close(errp[0]);
        res->end = rc == ENOENT ? RUNTOOL_NOT_FOUND : RUNTOOL_FAILED;
        res->code = rc;
        return -1;
    }

    struct sink sinks[2] = {
        {outp[0], &res->out, &res->outlen, 1, opts->out_max, &res->out_truncated},
        {errp[0], &res->err, &res->errlen, 1, opts->err_max, &res->err_truncated}};
    size_t nsinks = capture_err ? 2 : 1;
    int killed = 0, poll_error = 0;
    while (sinks[0].fd >= 0 || (nsinks == 2 && sinks[1].fd >= 0)) {
        struct pollfd pfd[2];
        struct sink *which[2];
        nfds_t n = 0;
        for (size_t i = 0; i < nsinks; i++) {
            if (sinks[i].fd >= 0) {
                pfd[n].fd = sinks[i].fd;
                pfd[n].events = POLLIN;
                which[n++] = &sinks[i];
            }
        }
        int wait_ms = -1;
        if (deadline >= 0) {
            long long left = deadline - runtool_now();
            if (left <= 0) {
                kill(-pid, SIGKILL);
                killed = 1;
                break;
            }
            wait_ms = left > 60000 ? 60000 : (int)left;
        }
        int got = poll(pfd, n, wait_ms);
        if (got < 0 && errno != EINTR) {
            poll_error = errno;
            kill(-pid, SIGKILL);
            break;
        }
        for (nfds_t i = 0; got > 0 && i < n; i++) {
            if (pfd[i].revents && sink_read(which[i])) {
                close(which[i]->fd);
                which[i]->fd = -1;
            }
        }
    }
    for (size_t i = 0; i < nsinks; i++) {
        if (sinks[i].fd >= 0)
            close(sinks[i].fd);
    }

    int status;
    if (killed || poll_error) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    } else {
        killed = runtool_reap(pid, deadline, &status);
    }
    if (killed) {
        res->end = RUNTOOL_TIMEOUT;
        res->code = (int)opts->timeout_ms;
        return -1;
    }
    if (poll_error || status == -1) {
        res->end = RUNTOOL_FAILED;
        res->code = poll_error ? poll_error : ECHILD;
        return -1;
    }
    if (WIFEXITED(status)) {
        res->end = RUNTOOL_EXITED;
        res->code = WEXITSTATUS(status);
        return res->code;
    }
    res->end = RUNTOOL_SIGNALED;
    res->code = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return -1;
}

void runtool_result_free(struct runtool_result *res)
{
    if (!res)
        return;
    free(res->out);
    free(res->err);
    memset(res, 0, sizeof(*res));
}

const char *runtool_describe(const struct runtool_result *res, char *buf, size_t buflen)
{
    switch (res->end) {
    case RUNTOOL_EXITED:
        snprintf(buf, buflen, "exit status %d", res->code);
        break;
    case RUNTOOL_SIGNALED:
        snprintf(buf, buflen, "killed by signal %d", res->code);
        break;
    case RUNTOOL_TIMEOUT:
        snprintf(buf, buflen, "still running after %d ms: killed", res->code);
        break;
    case RUNTOOL_NOT_FOUND:
        snprintf(buf, buflen, "not found");
        break;
    case RUNTOOL_FAILED:
        snprintf(buf, buflen, "cannot run: %s", strerror(res->code));
        break;
    }
    return buf;
}
