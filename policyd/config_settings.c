/*
 * config_settings.c - the settings table, built from settings.def, and name look-ups on it.
 *
 * The table is the one description of every setting: its type, default, bounds, reload class
 * and documentation. The loader, `policyd -n`, the manual page and the tests all read it.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/config_stage.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

const struct setting config_settings[NSETTINGS] = {
#define S_STR(n, d, r, doc) {#n, T_STR, d, NULL, NULL, r, doc, 0, offsetof(struct config, n)},
#define S_LIST(n, d, r, doc) {#n, T_LIST, d, NULL, NULL, r, doc, 0, offsetof(struct config, n)},
#define S_ACT(n, d, r, doc) {#n, T_ACT, d, NULL, NULL, r, doc, 0, offsetof(struct config, n)},
#define S_BOOL(n, d, r, doc) {#n, T_BOOL, d, NULL, NULL, r, doc, 0, offsetof(struct config, n)},
#define S_INT(n, d, lo, hi, r, doc) {#n, T_INT, d, lo, hi, r, doc, 0, offsetof(struct config, n)},
#define S_TIME(n, d, lo, hi, r, doc) {#n, T_TIME, d, lo, hi, r, doc, 0, offsetof(struct config, n)},
#define S_SIZE(n, d, lo, hi, r, doc) {#n, T_SIZE, d, lo, hi, r, doc, 0, offsetof(struct config, n)},
#define S_RATIO(n, d, lo, hi, r, doc)                                                              \
    {#n, T_RATIO, d, lo, hi, r, doc, 0, offsetof(struct config, n)},
#define S_OCT(n, d, r, doc) {#n, T_OCT, d, NULL, NULL, r, doc, 0, offsetof(struct config, n)},
#define S_MODE(n, d, r, doc) {#n, T_MODE, d, NULL, NULL, r, doc, 0, offsetof(struct config, n)},
#define P_STR(n, d, r, doc) {#n, T_STR, d, NULL, NULL, r, doc, 1, offsetof(struct config, n)},
#define P_LIST(n, d, r, doc) {#n, T_LIST, d, NULL, NULL, r, doc, 1, offsetof(struct config, n)},
#include "policyd/settings.def"
};
#undef S_STR
#undef S_LIST
#undef S_ACT
#undef S_BOOL
#undef S_INT
#undef S_TIME
#undef S_SIZE
#undef S_RATIO
#undef S_OCT
#undef S_MODE
#undef P_STR
#undef P_LIST

int config_settings_index(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(config_settings[i].name) == len &&
            memcmp(config_settings[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* config_edit_distance - Levenshtein distance, for "did you mean" hints (short names only). */
static size_t config_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

const char *config_settings_suggest(const char *name)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < NSETTINGS; i++) {
        size_t d = config_edit_distance(name, config_settings[i].name);
        if (d < bestd) {
            bestd = d;
            best = config_settings[i].name;
        }
    }
    return best;
}

void config_settings_where(const struct raw *raw, size_t i, char *out, size_t outlen)
{
    if (raw->source[i] == SRC_FILE)
        snprintf(out, outlen, "%s:%d", raw->file, raw->line[i]);
    else if (raw->source[i] == SRC_POSTFIX)
        snprintf(out, outlen, "%s/main.cf (imported %s)", raw->postfix_dir,
                 config_settings[i].name);
    else
        snprintf(out, outlen, "%s (default of %s)", raw->file ? raw->file : "built-in",
                 config_settings[i].name);
}
