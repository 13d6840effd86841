/*
 * fuzz_table.c - libFuzzer target for the table readers that parse text: texthash: (postmap's
 * source format, continuation lines, comments) and cidr: (patterns, first match wins), and
 * inline:{...}. The first byte picks the reader; the rest is the file (written to a private
 * temporary file, as the readers take a path) or the inline text. Every lookup must answer
 * 1, 0 or -1 with a string.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/maps/table.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    if (!path[0]) {
        snprintf(path, sizeof(path), "/tmp/fuzz_table.%ld", (long)getpid());
        atexit(remove_file);
    }
    char spec[4200], err[512];
    int kind = data[0] % 3;
    if (kind == 2) {
        if (size - 1 > 4000 || memchr(data + 1, '\0', size - 1))
            return 0;
        snprintf(spec, sizeof(spec), "inline:{%.*s}", (int)(size - 1), (const char *)data + 1);
    } else {
        FILE *f = fopen(path, "wb");
        if (!f)
            abort();
        fwrite(data + 1, 1, size - 1, f);
        fclose(f);
        snprintf(spec, sizeof(spec), "%s:%s", kind == 0 ? "texthash" : "cidr", path);
    }
    struct table *t = table_open(spec, err, sizeof(err));
    if (!t) {
        if (!err[0])
            abort();
        return 0;
    }
    static const char *const keys[] = {"user@example.com",
                                       "@example.com",
                                       "example.com",
                                       "192.0.2.1",
                                       "2001:db8::1",
                                       "::ffff:10.0.0.1",
                                       "",
                                       "a"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *value = NULL;
        int rc = table_lookup(t, keys[i], &value);
        if (rc < -1 || rc > 1 || (rc == 1 && !value))
            abort();
        if (rc == 1)
            (void)strlen(value);
    }
    table_free(t);
    return 0;
}
