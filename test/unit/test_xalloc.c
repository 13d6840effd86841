/*
 * test_xalloc.c - the one allocation path and the two ways to die: the x* functions return
 * usable memory, and when memory runs out (or a size overflows) the process writes
 * "panic: out of memory allocating N bytes" to its log and aborts; log_fatal logs "fatal: ...",
 * copies it to standard error and exits 1; log_panic logs and aborts.
 * Each dying case runs in a forked child whose log file and standard error the parent reads.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "unit.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under AddressSanitizer a huge malloc would stop in ASan's own report; let it return NULL so
 * the path under test is ours. (Ignored by the release build.) */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static char dir[] = "/tmp/test_xalloc.XXXXXX";
static char log_path[256], err_path[256];

/* die_by - run fn(arg) in a child logging to log_path (also_stderr as given) with standard
 * error in err_path; returns the wait status. */
static int die_by(void (*fn)(int), int arg, int also_stderr)
{
    unlink(log_path);
    unlink(err_path);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* an expected abort leaves no core file */
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
            _exit(100);
        char err[256];
        if (log_open("test_xalloc", "mail", log_path, also_stderr, err, sizeof(err)) != 0)
            _exit(101);
        fn(arg);
        _exit(102); /* fn returned: none of them may */
    }
    int status = -1;
    waitpid(pid, &status, 0);
    return status;
}

/* slurp - a file's text ("" if missing), in a static buffer. */
static const char *slurp(const char *path)
{
    static char buf[2][8192];
    static int which;
    char *b = buf[which ^= 1];
    b[0] = 0;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, b, sizeof(buf[0]) - 1);
        b[n > 0 ? n : 0] = 0;
        close(fd);
    }
    return b;
}

/* count - occurrences of needle in hay. */
static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static int aborted(int status)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

/* The dying cases; arg selects a variant. */
static void oom_malloc(int arg)
{
    (void)arg;
    volatile size_t huge = SIZE_MAX / 2; /* no address space holds it */
    free(xmalloc(huge));
}

static void oom_overflow(int arg)
{
    if (arg == 0)
        free(xcalloc(SIZE_MAX / 4, 8));
    else if (arg == 1)
        free(xreallocarray(NULL, SIZE_MAX / 4, 8));
    else {
        size_t cap = 0;
        free(xgrow(NULL, &cap, SIZE_MAX / 2 + 2, 1));
    }
}

static void oom_library(int arg)
{
    xalloc_fail((size_t)arg);
}

static void fatal(int arg)
{
    (void)arg;
    log_fatal("cannot bind %s: %s", "inet:127.0.0.1:10031", "Address already in use");
}

static void panic(int arg)
{
    log_panic("broken invariant %d", arg);
}

static void test_success(void)
{
    char *p = xmalloc(0);
    CHECK(p != NULL);
    free(p);
    int *z = xcalloc(16, sizeof(int));
    int zero = 1;
    for (int i = 0; i < 16; i++)
        zero &= z[i] == 0;
    CHECK(zero);
    z[15] = 42;
    z = xreallocarray(z, 1000, sizeof(int));
    CHECK(z[15] == 42);
    free(z);
    char *s = xstrdup("hello");
    CHECK_STR(s, "hello");
    free(s);
    s = xstrndup("hello", 3);
    CHECK_STR(s, "hel");
    free(s);
    s = xstrndup("hi", 10);
    CHECK_STR(s, "hi");
    free(s);
    s = xasprintf("%s=%d", "n", 7);
    CHECK_STR(s, "n=7");
    free(s);

    size_t cap = 0, n = 0;
    long *v = NULL;
    for (long i = 0; i < 1000; i++) {
        v = xgrow(v, &cap, n + 1, sizeof(*v));
        v[n++] = i;
    }
    CHECK(cap >= 1000 && cap < 2048 && v[0] == 0 && v[999] == 999);
    long *same = xgrow(v, &cap, 10, sizeof(*v)); /* room enough: unchanged */
    CHECK(same == v);
    free(v);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(log_path, sizeof(log_path), "%s/log", dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr", dir);

    test_success();

    /* Memory exhausted: one log line with the size, then SIGABRT. */
    char want[128];
    int st = die_by(oom_malloc, 0, 0);
    CHECK(aborted(st));
    snprintf(want, sizeof(want), "panic: out of memory allocating %zu bytes\n", SIZE_MAX / 2);
    CHECK(count(slurp(log_path), want) == 1);
    CHECK(count(slurp(log_path), "test_xalloc[") == 1); /* a whole log line, with the pid */

    /* A size that overflows never reaches malloc, and is reported the same way. */
    snprintf(want, sizeof(want), "panic: out of memory allocating %zu bytes\n", SIZE_MAX);
    for (int variant = 0; variant < 3; variant++) {
        st = die_by(oom_overflow, variant, 0);
        CHECK(aborted(st));
        CHECK(count(slurp(log_path), want) == 1);
    }

    /* A library allocator's NULL (event_new, evbuffer_new) goes the same way. */
    st = die_by(oom_library, 0, 0);
    CHECK(aborted(st));
    CHECK(count(slurp(log_path), "panic: out of memory allocating 0 bytes\n") == 1);

    /* log_fatal: logged, on standard error, exit status 1. */
    const char *fatal_text = "fatal: cannot bind inet:127.0.0.1:10031: Address already in use\n";
    st = die_by(fatal, 0, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    CHECK(count(slurp(log_path), fatal_text) == 1);
    CHECK_STR(slurp(err_path),
              "test_xalloc: fatal: cannot bind inet:127.0.0.1:10031: Address already in use\n");
    /* Logging to standard error already (foreground): there once, not twice. */
    st = die_by(fatal, 0, 1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    CHECK(count(slurp(log_path), fatal_text) == 1);
    CHECK(count(slurp(err_path), fatal_text) == 1);

    /* log_panic: logged, then SIGABRT. */
    st = die_by(panic, 7, 0);
    CHECK(aborted(st));
    CHECK(count(slurp(log_path), "panic: broken invariant 7\n") == 1);

    unlink(log_path);
    unlink(err_path);
    rmdir(dir);
    return UNIT_END();
}
