/*
 * stall_open.c - an LD_PRELOAD shim for tests: storage that hangs, made real.
 *
 * An open of a path containing $STALL_MARKER blocks, as on a hung NFS mount, until the file
 * $STALL_RELEASE exists (looked for every 10 ms), at most $STALL_SECONDS (default 30) so a
 * test never hangs for good; then the real open runs. Each stall is announced by a line "PATH"
 * appended to $STALL_LOG, so a test knows when a read is stuck. Every other open passes
 * straight through. Built without sanitizers for both flavours (with the ASan build, run with
 * ASAN_OPTIONS=verify_asan_link_order=0).
 */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* stall_maybe - block while path names a stalled file (see above). */
static void stall_maybe(const char *path)
{
    const char *marker = getenv("STALL_MARKER");
    if (!path || !marker || !*marker || !strstr(path, marker))
        return;
    const char *release = getenv("STALL_RELEASE");
    const char *log = getenv("STALL_LOG");
    const char *secs = getenv("STALL_SECONDS");
    long limit_ms = (secs ? atol(secs) : 30) * 1000;
    if (log) {
        FILE *fp = fopen(log, "a");
        if (fp) {
            fprintf(fp, "%s\n", path);
            fclose(fp);
        }
    }
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (long waited = 0; waited < limit_ms; waited += 10) {
        struct stat st;
        if (release && stat(release, &st) == 0)
            return;
        nanosleep(&tick, NULL);
    }
}

/* stall_mode - the mode argument of an open that creates a file. */
#define STALL_MODE(flags, mode)                                                                    \
    do {                                                                                           \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                                                     \
            va_list ap;                                                                            \
            va_start(ap, flags);                                                                   \
            mode = (mode_t)va_arg(ap, int);                                                        \
            va_end(ap);                                                                            \
        }                                                                                          \
    } while (0)

typedef int open_fn(const char *, int, ...);
typedef int openat_fn(int, const char *, int, ...);

int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);
int openat(int dirfd, const char *path, int flags, ...);
int openat64(int dirfd, const char *path, int flags, ...);
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

static int stall_open(const char *name, const char *path, int flags, mode_t mode)
{
    stall_maybe(path);
    open_fn *real = (open_fn *)dlsym(RTLD_NEXT, name);
    return real(path, flags, mode);
}

static int stall_openat(const char *name, int dirfd, const char *path, int flags, mode_t mode)
{
    stall_maybe(path);
    openat_fn *real = (openat_fn *)dlsym(RTLD_NEXT, name);
    return real(dirfd, path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    STALL_MODE(flags, mode);
    return stall_open("open", path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    STALL_MODE(flags, mode);
    return stall_open("open64", path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    STALL_MODE(flags, mode);
    return stall_openat("openat", dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    STALL_MODE(flags, mode);
    return stall_openat("openat64", dirfd, path, flags, mode);
}

/* The fortified entry points (_FORTIFY_SOURCE, as dpkg-buildflags sets it). */
int __open_2(const char *path, int flags)
{
    return stall_open("open", path, flags, 0);
}

int __open64_2(const char *path, int flags)
{
    return stall_open("open64", path, flags, 0);
}

int __openat_2(int dirfd, const char *path, int flags)
{
    return stall_openat("openat", dirfd, path, flags, 0);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
    return stall_openat("openat64", dirfd, path, flags, 0);
}
