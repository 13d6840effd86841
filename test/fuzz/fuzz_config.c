/*
 * fuzz_config.c - libFuzzer target for the configuration parser: any file content is either
 * loaded or refused with a message; never a crash, a leak or an empty reason.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/config.h"
#include "checks/registry.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config_use_checks(registry_find, registry_names);
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof(path), "/tmp/fuzz_config.%ld", (long)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return 0;
    /* No Postfix import: keep each run in-process. */
    fputs("postfix_config_directory =\n", fp);
    fwrite(data, 1, size, fp);
    fclose(fp);
    char err[2048] = "";
    struct config *cfg = config_load(path, err, sizeof(err));
    if (!cfg && !err[0])
        abort();
    config_unref(cfg);
    return 0;
}
