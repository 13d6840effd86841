/*
 * file.h - open a file the configuration names, for reading.
 */
#ifndef POLICYD_LIB_FILE_H
#define POLICYD_LIB_FILE_H

#include <stddef.h>
#include <stdio.h>

/* file_open_regular - open path for reading: NULL with "PATH: reason" in err if it cannot be
 * opened or is not a regular file (a device or a FIFO named by mistake would be read forever). */
FILE *file_open_regular(const char *path, char *err, size_t errlen);

#endif
