/*
 * fuzz_dns.c - libFuzzer target for the DNS answer reader (dns_wire_parse), which reads
 * whatever a server or an attacker on the path sends: the first byte picks the question type,
 * the rest is the answer. Invariants: a status is always given; records are counted and
 * NUL-terminated within their lengths; A/AAAA addresses match their text; the TTL is a
 * number of seconds or -1.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/dns/dns_wire.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int types[] = {DNS_A, DNS_AAAA, DNS_TXT, DNS_MX, DNS_PTR, DNS_CNAME, DNS_NS, 99};
    if (size < 1)
        return 0;
    int type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
    long ttl_s;
    const struct dns_result *r =
        dns_wire_parse(type, "q.example", data + 1, size - 1, "the fuzzer", &ttl_s);
    if (!r || (unsigned)r->status > DNS_BADRESP || ttl_s < -1)
        abort();
    if (r->status == DNS_OK) {
        for (size_t i = 0; i < r->count; i++) {
            if (r->items[i][r->lens[i]] != '\0')
                abort();
            if ((type == DNS_A || type == DNS_AAAA) && r->addrs) {
                char text[64];
                size_t bytes = type == DNS_A ? 4 : 16;
                if (!inet_ntop(type == DNS_A ? AF_INET : AF_INET6, r->addrs + i * bytes, text,
                               sizeof(text)) ||
                    strcmp(text, r->items[i]) != 0)
                    abort();
            }
        }
    }
    dns_wire_unref(r);
    return 0;
}
