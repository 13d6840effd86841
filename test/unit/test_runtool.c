/*
 * test_runtool.c - running programs through lib/runtool: exit statuses, output kept within its
 * bound (the rest drained, so the program still ends well), standard error dropped, captured
 * or merged, stdin at end of file, the time limit (the program and its children killed),
 * programs that are missing or not executable, and signal dispositions reset for the child.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/runtool.h"
#include "unit.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* run - runtool_run with these limits; res filled (the caller frees it). */
static int run(struct runtool_result *res, enum runtool_stderr mode, size_t max, long timeout_ms,
               const char *const argv[])
{
    struct runtool_options o = {NULL, max, mode, max, timeout_ms};
    return runtool_run(argv, &o, res);
}

static void test_status(void)
{
    struct runtool_result r;
    const char *const t[] = {"true", NULL}, *const f[] = {"false", NULL};
    const char *const three[] = {"sh", "-c", "exit 3", NULL};
    char why[128];

    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 5000, t) == 0);
    CHECK(r.end == RUNTOOL_EXITED && r.code == 0 && r.outlen == 0 && r.out[0] == '\0');
    CHECK_STR(runtool_describe(&r, why, sizeof(why)), "exit status 0");
    runtool_result_free(&r);
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 5000, f) == 1);
    CHECK(r.end == RUNTOOL_EXITED && r.code == 1);
    runtool_result_free(&r);
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 5000, three) == 3);
    CHECK_STR(runtool_describe(&r, why, sizeof(why)), "exit status 3");
    runtool_result_free(&r);

    /* argv reaches the program as given: no shell splits or expands it. */
    const char *const echo[] = {"printf", "%s|%s", "a b", "$HOME *", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 5000, echo) == 0);
    CHECK_STR(r.out, "a b|$HOME *");
    runtool_result_free(&r);

    const char *const term[] = {"sh", "-c", "kill -TERM $$", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 5000, term) == -1);
    CHECK(r.end == RUNTOOL_SIGNALED && r.code == SIGTERM);
    CHECK_STR(runtool_describe(&r, why, sizeof(why)), "killed by signal 15");
    runtool_result_free(&r);
}

static void test_bound(void)
{
    struct runtool_result r;
    /* 1 MB: far more than a pipe holds, so the program blocks unless we drain it. */
    const char *const big[] = {"head", "-c", "1000000", "/dev/zero", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 1000, 5000, big) == 0);
    CHECK(r.end == RUNTOOL_EXITED && r.outlen == 1000 && r.out_truncated == 1);
    CHECK(r.out[1000] == '\0' && r.out[0] == '\0' && r.out[999] == '\0');
    runtool_result_free(&r);

    const char *const exact[] = {"printf", "0123456789", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 10, 5000, exact) == 0);
    CHECK(r.outlen == 10 && r.out_truncated == 0);
    CHECK_STR(r.out, "0123456789");
    runtool_result_free(&r);
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 4, 5000, exact) == 0);
    CHECK(r.outlen == 4 && r.out_truncated == 1);
    CHECK_STR(r.out, "0123");
    runtool_result_free(&r);
}

static void test_stderr(void)
{
    struct runtool_result r;
    const char *const both[] = {"sh", "-c", "echo out; echo err >&2; echo out2", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 5000, both) == 0);
    CHECK_STR(r.out, "out\nout2\n");
    CHECK_STR(r.err, "");
    runtool_result_free(&r);
    CHECK(run(&r, RUNTOOL_STDERR_CAPTURE, 100, 5000, both) == 0);
    CHECK_STR(r.out, "out\nout2\n");
    CHECK_STR(r.err, "err\n");
    runtool_result_free(&r);
    CHECK(run(&r, RUNTOOL_STDERR_MERGE, 100, 5000, both) == 0);
    CHECK_STR(r.out, "out\nerr\nout2\n");
    CHECK_STR(r.err, "");
    runtool_result_free(&r);

    /* A flood on stderr is drained too, and bounded on its own. */
    const char *const flood[] = {"sh", "-c", "head -c 300000 /dev/zero >&2; echo done", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_CAPTURE, 100, 5000, flood) == 0);
    CHECK_STR(r.out, "done\n");
    CHECK(r.errlen == 100 && r.err_truncated == 1 && r.out_truncated == 0);
    runtool_result_free(&r);
}

static void test_stdin_and_signals(void)
{
    struct runtool_result r;
    /* stdin is /dev/null: cat ends at once instead of waiting for the terminal. */
    const char *const cat[] = {"cat", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 5000, cat) == 0);
    CHECK(r.outlen == 0);
    runtool_result_free(&r);

    /* We ignore SIGPIPE (as the daemon does); the child must not inherit that, or yes would
     * complain of a broken pipe instead of ending quietly. */
    signal(SIGPIPE, SIG_IGN);
    const char *const pipe_sh[] = {"sh", "-c", "yes | head -n 1", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_CAPTURE, 200, 5000, pipe_sh) == 0);
    CHECK_STR(r.out, "y\n");
    CHECK_STR(r.err, "");
    runtool_result_free(&r);
    signal(SIGPIPE, SIG_DFL);
}

static void test_timeout(void)
{
    struct runtool_result r;
    char why[128];
    const char *const sleepy[] = {"sleep", "10", NULL};
    long long t0 = now_ms();
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 300, sleepy) == -1);
    long long took = now_ms() - t0;
    CHECK(r.end == RUNTOOL_TIMEOUT && r.code == 300);
    CHECK(took >= 290 && took < 3000);
    CHECK_STR(runtool_describe(&r, why, sizeof(why)), "still running after 300 ms: killed");
    runtool_result_free(&r);

    /* Output before the limit is kept; a grandchild holding the pipe open dies too. */
    const char *const family[] = {"sh", "-c", "echo started; sleep 10 & sleep 10", NULL};
    t0 = now_ms();
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 300, family) == -1);
    took = now_ms() - t0;
    CHECK(r.end == RUNTOOL_TIMEOUT && took < 3000);
    CHECK_STR(r.out, "started\n");
    runtool_result_free(&r);

    /* A program that closes its output and goes on is killed at the limit as well. */
    const char *const quiet[] = {"sh", "-c", "exec >/dev/null; sleep 10", NULL};
    t0 = now_ms();
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 300, quiet) == -1);
    took = now_ms() - t0;
    CHECK(r.end == RUNTOOL_TIMEOUT && took >= 290 && took < 3000);
    runtool_result_free(&r);

    /* No limit: a quick program just ends. */
    const char *const quick[] = {"sh", "-c", "sleep 0.1; echo ok", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 0, quick) == 0);
    CHECK_STR(r.out, "ok\n");
    runtool_result_free(&r);
}

static void test_missing(void)
{
    struct runtool_result r;
    char why[128], dir[] = "/tmp/test_runtool.XXXXXX", file[64];
    const char *const none[] = {"policyd-no-such-program", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 5000, none) == -1);
    CHECK(r.end == RUNTOOL_NOT_FOUND && r.code == ENOENT);
    CHECK_STR(runtool_describe(&r, why, sizeof(why)), "not found");
    CHECK(r.out != NULL && r.out[0] == '\0');
    runtool_result_free(&r);
    const char *const abs[] = {"/nonexistent/policyd-tool", NULL};
    CHECK(run(&r, RUNTOOL_STDERR_DROP, 100, 5000, abs) == -1);
    CHECK(r.end == RUNTOOL_NOT_FOUND);
    runtool_result_free(&r);

    /* The search path is the caller's: found along it, not found outside it. */
    const char *const t[] = {"true", NULL};
    struct runtool_options o = {"/nonexistent:/usr/bin:/bin", 100, RUNTOOL_STDERR_DROP, 0, 5000};
    CHECK(runtool_run(t, &o, &r) == 0);
    runtool_result_free(&r);
    o.path = "/nonexistent";
    CHECK(runtool_run(t, &o, &r) == -1 && r.end == RUNTOOL_NOT_FOUND);
    runtool_result_free(&r);

    /* A file that is there but not executable cannot be run, and says so. */
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    snprintf(file, sizeof(file), "%s/tool", dir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("#!/bin/sh\necho hi\n", f);
        fclose(f);
    }
    o.path = dir;
    const char *const tool[] = {"tool", NULL};
    chmod(file, 0644); /* no x bit: not even root may run it */
    CHECK(runtool_run(tool, &o, &r) == -1 && r.end == RUNTOOL_FAILED && r.code == EACCES);
    CHECK_STR(runtool_describe(&r, why, sizeof(why)), "cannot run: Permission denied");
    runtool_result_free(&r);
    chmod(file, 0755);
    CHECK(runtool_run(tool, &o, &r) == 0);
    CHECK_STR(r.out, "hi\n");
    runtool_result_free(&r);
    unlink(file);
    rmdir(dir);
}

int main(void)
{
    test_status();
    test_bound();
    test_stderr();
    test_stdin_and_signals();
    test_timeout();
    test_missing();
    runtool_result_free(NULL);
    return UNIT_END();
}
