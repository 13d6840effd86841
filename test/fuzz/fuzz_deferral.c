/*
 * fuzz_deferral.c - libFuzzer target for the postqueue -j line reader and the reason kinds.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/deferral.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    struct deferral_message m;
    deferral_parse_line(line, &m);
    for (size_t i = 0; i < m.nrcpts; i++) {
        char domain[256];
        if (strlen(m.rcpts[i].reason) >= DEFERRAL_MAX_STRING)
            abort();
        deferral_domain(m.rcpts[i].address, domain, sizeof(domain));
        (void)deferral_diagnosis(deferral_classify(m.rcpts[i].reason));
    }
    deferral_message_free(&m);
    free(line);
    return 0;
}
