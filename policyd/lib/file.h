/*
 * file.h - the files a configuration names: opening them, remembering which were opened,
 * asking whether another user could read them, and bounded reads of small files.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_LIB_FILE_H
#define POLICYD_LIB_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

/* file_open_regular - open path for reading: NULL with "PATH: reason" in err if it cannot be
 * opened or is not a regular file (a device or a FIFO named by mistake would be read forever).
 * While this thread records (file_record_begin), the path is added to its record. */
FILE *file_open_regular(const char *path, char *err, size_t errlen);

/* file_record_begin - start recording, on this thread only, the paths of the files opened for
 * a configuration (file_open_regular and file_note_opened); a recording already under way is
 * dropped. file_record_end - stop and hand over the paths, each once, in the order first
 * opened: a NULL-terminated array (never NULL) with *n set, freed by file_record_free. */
void file_record_begin(void);
char **file_record_end(size_t *n);
void file_record_free(char **paths);

/* file_note_opened - add path to this thread's record (a file opened by a library, such as an
 * lmdb or Berkeley DB table). Nothing happens when the thread is not recording. */
void file_note_opened(const char *path);

/*
 * file_readable_as - may user open each of paths[0..n) for reading, with its own groups?
 * A child process takes the user's identity (initgroups, setgid, setuid) and tries each open
 * (O_NONBLOCK: no wait on a FIFO), so permission bits, ACLs and every directory on the way
 * count exactly as they will for the daemon. Only root can ask. errnos[i] gets 0 or the errno
 * of the open. Returns 0, or -1 with a reason in err (not root, no such user, the child failed).
 */
int file_readable_as(const char *user, const char *const *paths, size_t n, int *errnos, char *err,
                     size_t errlen);

/* file_read_bounded - read at most cap bytes from the start of path into buf (not
 * NUL-terminated); st, when not NULL, gets the file's status. Returns the bytes read, or -1
 * with errno set (ENOENT and ENOTDIR when it does not exist; EINVAL if not a regular file).
 * One open (O_NONBLOCK), one fstat, reads until cap or end of file: no shared state, callable
 * from any thread; the caller's cap bounds the work. */
ssize_t file_read_bounded(const char *path, char *buf, size_t cap, struct stat *st);

/* file_mount_of - the mount that holds path, as "DIR (TYPE SOURCE)" ("/var/mail (nfs4
 * nfs1:/export/mail)") in out, from the kernel's mount table by the path's text alone: the
 * path itself is never looked at, so this answers even while its storage hangs. Returns 0, or
 * -1 (out empty) when the table cannot be read or path is not absolute. */
int file_mount_of(const char *path, char *out, size_t outlen);

#endif
