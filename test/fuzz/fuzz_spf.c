/*
 * fuzz_spf.c - libFuzzer target for the SPF evaluator's parser, macro expander and limits:
 * the input is the TXT record of the sender's domain and of every name it may include,
 * redirect to or take an explanation from, so hostile records meet every code path that
 * reads DNS data. Invariants: a result is always given, within the lookup limits, and the
 * explanation is printable ASCII.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/spf_eval.h"
#include "../unit/spf_fakedns.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fake_zone zone;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    char err[256];
    (void)spf_record_check(text, size, err, sizeof(err));

    memset(&zone, 0, sizeof(zone));
    zone.fetch_all = 1;
    static const char *const names[] = {"fuzz.example", "inc.example", "exp.example",
                                        "a.b-c.fuzz.example", "1.0.0.10.in-addr.arpa"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        fake_item(&zone, DNS_TXT, names[i], text, size);
    fake_item(&zone, DNS_A, "inc.example", "10.0.0.1", 0);
    fake_item(&zone, DNS_MX, "fuzz.example", "inc.example", 0);
    fake_item(&zone, DNS_PTR, "1.0.0.10.in-addr.arpa", "inc.example", 0);

    struct spf_outcome o;
    const char *ips[] = {"10.0.0.1", "2001:db8::1"};
    for (int k = 0; k < 2; k++) {
        enum spf_result r = fake_eval(&zone, ips[k], "a.b-c@fuzz.example", "h.example", &o, 400);
        if (o.pending || (unsigned)r > SPF_PERMERROR || o.lookups > 11 || o.voids > 3)
            abort();
        for (const char *p = o.explanation; *p; p++)
            if (*p < 0x20 || *p > 0x7e)
                abort();
    }
    free(text);
    return 0;
}
