/*
 * json.c - JSON string literals (see json.h): UTF-8 kept, control bytes escaped, invalid
 * bytes replaced by U+FFFD. Writes straight to a stdio stream; allocates nothing.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/lib/json.h"

/* json_utf8_len - length of the valid UTF-8 sequence at s (1-4 bytes, at most avail), 0 if
 * there is none. Overlong forms and surrogates are refused, as RFC 3629 asks. */
static size_t json_utf8_len(const unsigned char *s, size_t avail)
{
    size_t n;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

void json_strn(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    fputc('"', f);
    while (p < end) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc(c, f);
            p++;
        } else {
            size_t len = json_utf8_len(p, (size_t)(end - p));
            if (len) {
                fwrite(p, 1, len, f);
                p += len;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

void json_str(FILE *f, const char *s)
{
    size_t n = 0;
    if (s)
        while (s[n])
            n++;
    json_strn(f, s ? s : "", n);
}
