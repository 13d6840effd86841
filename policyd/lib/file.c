/*
 * file.c - opening the files a configuration names (tables, pattern files, key lists).
 *
 * Only regular files are read: a device or a FIFO named by mistake would be read forever or
 * wait for a writer, and policyd -t must finish. While a configuration loads, the paths opened
 * are recorded per thread (a reload loads in its own thread while the loop's table watchers may
 * open files in theirs), so that the loader can ask afterwards whether the unprivileged user
 * will be able to open them again: that question is answered by a child process that becomes
 * the user and tries, since only the kernel knows every rule (modes, ACLs, directories).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/file.h"

#include "policyd/lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <mntent.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* This thread's record: the paths opened since file_record_begin. */
static __thread struct {
    int on;
    char **v;
    size_t n, cap;
} file_rec;

void file_record_begin(void)
{
    file_record_free(file_rec.v);
    file_rec.v = NULL;
    file_rec.n = file_rec.cap = 0;
    file_rec.on = 1;
}

void file_note_opened(const char *path)
{
    if (!file_rec.on || !path || !*path)
        return;
    for (size_t i = 0; i < file_rec.n; i++)
        if (strcmp(file_rec.v[i], path) == 0)
            return;
    if (file_rec.n + 2 > file_rec.cap) {
        file_rec.cap = file_rec.cap ? file_rec.cap * 2 : 16;
        file_rec.v = xreallocarray(file_rec.v, file_rec.cap, sizeof(*file_rec.v));
    }
    file_rec.v[file_rec.n++] = xstrdup(path);
    file_rec.v[file_rec.n] = NULL;
}

char **file_record_end(size_t *n)
{
    char **v = file_rec.v ? file_rec.v : xcalloc(1, sizeof(*v));
    *n = file_rec.n;
    file_rec.v = NULL;
    file_rec.n = file_rec.cap = 0;
    file_rec.on = 0;
    return v;
}

void file_record_free(char **paths)
{
    for (size_t i = 0; paths && paths[i]; i++)
        free(paths[i]);
    free(paths);
}

FILE *file_open_regular(const char *path, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *fp = fdopen(fd, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    file_note_opened(path);
    return fp;
}

/* file_user_groups - the uid, gid and groups of user (getgrouplist: NSS, so in the parent).
 * 0, or -1 with a reason. *groups is allocated. */
static int file_user_groups(const char *user, uid_t *uid, gid_t *gid, gid_t **groups, int *ngroups,
                            char *err, size_t errlen)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || !res) {
        snprintf(err, errlen, "no such user '%s'", user);
        return -1;
    }
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    int n = 64;
    *groups = xreallocarray(NULL, (size_t)n, sizeof(gid_t));
    for (int tries = 0; getgrouplist(user, pw.pw_gid, *groups, &n) < 0; tries++) {
        if (tries == 4 || n <= 0 || n > 65536) {
            snprintf(err, errlen, "cannot list the groups of user '%s'", user);
            free(*groups);
            *groups = NULL;
            return -1;
        }
        *groups = xreallocarray(*groups, (size_t)n, sizeof(gid_t));
    }
    *ngroups = n;
    return 0;
}

int file_readable_as(const char *user, const char *const *paths, size_t n, int *errnos, char *err,
                     size_t errlen)
{
    uid_t uid;
    gid_t gid, *groups = NULL;
    int ngroups = 0, fds[2];
    if (geteuid() != 0) {
        snprintf(err, errlen, "only root can check what another user may read");
        return -1;
    }
    if (file_user_groups(user, &uid, &gid, &groups, &ngroups, err, errlen) != 0)
        return -1;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        free(groups);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        free(groups);
        return -1;
    }
    if (pid == 0) {
        /* The child: system calls only (the parent may have threads). */
        close(fds[0]);
        if (setgroups((size_t)ngroups, groups) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
            _exit(3);
        for (size_t i = 0; i < n; i++) {
            int fd = open(paths[i], O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
            int e = fd < 0 ? errno : 0;
            if (fd >= 0)
                close(fd);
            if (write(fds[1], &e, sizeof(e)) != (ssize_t)sizeof(e))
                _exit(4);
        }
        _exit(0);
    }
    close(fds[1]);
    free(groups);
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fds[0], &errnos[got], sizeof(int));
        if (r < 0 && errno == EINTR)
            continue;
        if (r != (ssize_t)sizeof(int))
            break;
        got++;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got < n || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "could not take the identity of user '%s' to try its access", user);
        return -1;
    }
    return 0;
}

ssize_t file_read_bounded(const char *path, char *buf, size_t cap, struct stat *st)
{
    struct stat own;
    if (!st)
        st = &own;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return (ssize_t)got;
}

int file_mount_of(const char *path, char *out, size_t outlen)
{
    if (outlen)
        out[0] = 0;
    if (path[0] != '/')
        return -1;
    FILE *fp = setmntent("/proc/self/mounts", "r");
    if (!fp)
        return -1;
    struct mntent ent;
    char buf[4096];
    size_t best = 0;
    int found = 0;
    while (getmntent_r(fp, &ent, buf, sizeof(buf))) {
        size_t n = strlen(ent.mnt_dir);
        while (n > 1 && ent.mnt_dir[n - 1] == '/')
            n--;
        int under = n == 1 ? ent.mnt_dir[0] == '/'
                           : strncmp(path, ent.mnt_dir, n) == 0 && (path[n] == '/' || !path[n]);
        /* The longest match wins; of equal ones the last (a mount over another). */
        if (under && (!found || n >= best)) {
            best = n;
            found = 1;
            snprintf(out, outlen, "%.*s (%s %s)", (int)n, ent.mnt_dir, ent.mnt_type,
                     ent.mnt_fsname);
        }
    }
    endmntent(fp);
    return found ? 0 : -1;
}
