/*
 * fuzz_request.c - libFuzzer target for the request parser and action validation.
 * The input is parsed whole and again in pieces whose sizes come from the input itself; both
 * must agree on every outcome, consume within bounds, and give valid strings.
 */
/* SPDX-License-Identifier: MIT */
#include "protocol/action.h"
#include "protocol/request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* run - parse everything in data with pieces of the given step (0: whole). Returns a digest. */
static unsigned long run(const char *data, size_t size, size_t step)
{
    struct request_limits lim = {512, 32, 4096};
    struct request_parser *p = request_parser_new(&lim);
    unsigned long digest = 0;
    size_t off = 0, avail = step ? 0 : size;
    for (;;) {
        size_t consumed = 0;
        struct request *r = NULL;
        if (step && avail < size - off)
            avail = avail + step < size - off ? avail + step : size - off;
        enum request_parse_status st = request_parser_feed(p, data + off, avail, &consumed, &r);
        if (st == REQUEST_COMPLETE) {
            if (consumed == 0 || consumed > avail)
                abort();
            for (int k = 0; k < ATTR_COUNT; k++)
                digest = digest * 31 + strlen(request_get(r, (enum request_attr)k));
            digest += request_attr_count(r) + (unsigned long)request_state(r);
            request_free(r);
            off += consumed;
            avail -= consumed;
            continue;
        }
        if (st == REQUEST_ERROR) {
            digest = digest * 7 + (unsigned long)request_parser_error_code(p);
            break;
        }
        if (avail == size - off)
            break; /* NEED_MORE with everything given */
    }
    request_parser_free(p);
    return digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t step = size ? (size_t)data[0] % 17 + 1 : 1;
    if (run(text, size, 0) != run(text, size, step))
        abort();
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    enum action_kind kind;
    char err[256];
    if (action_parse(s, &kind, err, sizeof(err)) == 0 && strpbrk(s, "\r\n"))
        abort(); /* an accepted action never carries a line break */
    free(s);
    return 0;
}
