/*
 * file.c - opening the files a configuration names (tables, pattern files, key lists).
 *
 * Only regular files are read: a device or a FIFO named by mistake would be read forever or
 * wait for a writer, and policyd -t must finish.
 */
#include "policyd/lib/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    }
    return fp;
}
