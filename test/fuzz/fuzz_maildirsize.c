/*
 * fuzz_maildirsize.c - libFuzzer target for the Maildir++ quota file parser.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/maildirsize.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct maildirsize m;
    char err[128];
    if (maildirsize_parse((const char *)data, size, (long)size, &m, err, sizeof(err)) == 0)
        (void)maildirsize_over(&m, (long long)size);
    else if (!err[0])
        abort();
    return 0;
}
