/*
 * fuzz_report.c - libFuzzer target for the report's log line parser and what consumes it.
 * The input is one line for logline_parse (every span must lie inside it), then the same bytes
 * cut at newlines into a tally with rendering to /dev/null (bounded memory, no crash).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/report/logline.h"
#include "policyd/report/render.h"
#include "policyd/report/tally.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* inside - the span lies within [line, line + len). */
static void inside(struct logline_span s, const char *line, size_t len)
{
    if (s.n && (s.p < line || s.p + s.n > line + len))
        abort();
    if (s.n) {
        char out[128];
        size_t n = logline_normalise(s.p, s.n, s.n & 1, s.n & 2, out, sizeof(out));
        if (n >= sizeof(out) || strlen(out) != n)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes: ASan catches a read one past the end. */
    char *line = malloc(size ? size : 1);
    memcpy(line, data, size);
    struct logline_clock clock;
    struct logline l;
    logline_clock_init(&clock, 1796659200); /* 2026-12-07 */
    enum logline_kind k = logline_parse(line, size, &clock, &l);
    const struct logline_span *spans[] = {
        &l.host,      &l.program, &l.queue_id, &l.client_name, &l.client_addr, &l.sender,
        &l.recipient, &l.helo,    &l.check,    &l.action,      &l.cause_code,  &l.cause,
        &l.fix,       &l.repeat,  &l.stage,    &l.code,        &l.dsn,         &l.reason};
    for (size_t i = 0; i < sizeof(spans) / sizeof(spans[0]); i++)
        inside(*spans[i], line, size);
    if (k != l.kind || l.verdict >= LOGV_COUNT)
        abort();
    if (k == LOGLINE_DIAGNOSIS && !l.check.n)
        abort();
    logline_refuses(l.action);

    struct tally *t = tally_new(size & 4 ? 1796600000 : 0);
    for (size_t off = 0; off < size;) {
        const char *nl = memchr(line + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (line + off)) : size - off;
        logline_parse(line + off, n, &clock, &l);
        tally_add(t, &l, n + 1);
        off += n + 1;
    }
    tally_finish(t);
    static FILE *devnull;
    if (!devnull)
        devnull = fopen("/dev/null", "w");
    if (devnull) {
        const char *files[] = {"fuzz"};
        struct render_options o = {files, 1, 0, 5};
        render_text(devnull, t, &o);
        render_json(devnull, t, &o);
    }
    tally_free(t);
    free(line);
    return 0;
}
