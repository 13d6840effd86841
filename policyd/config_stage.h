/*
 * config_stage.h - what the stages of loading a configuration share: the settings table (from
 * settings.def) and the raw text of one load. Private to config.c (convert, compile, life
 * cycle), config_settings.c (the table), config_read.c (policyd.conf and $name expansion) and
 * config_postfix.c (the Postfix import); nothing else includes it.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_CONFIG_STAGE_H
#define POLICYD_CONFIG_STAGE_H

#include "policyd/config.h"

#include <limits.h>
#include <stddef.h>

enum setting_type { T_STR, T_LIST, T_ACT, T_BOOL, T_INT, T_TIME, T_SIZE, T_RATIO, T_OCT, T_MODE };
enum setting_source { SRC_DEFAULT, SRC_POSTFIX, SRC_FILE };

/* One row of the table. lo / hi: bounds of S_INT, S_TIME, S_SIZE and S_RATIO in the setting's own
 * units
 * ("100ms", "1m"; NULL for other types). */
struct setting {
    const char *name;
    enum setting_type type;
    const char *def;
    const char *lo, *hi;
    enum config_reload_class reload;
    const char *doc;
    int from_postfix;
    size_t offset;
};

/* The index of every setting, SETTING_name, and their count. */
enum {
#define S_STR(n, ...) SETTING_##n,
#define S_LIST S_STR
#define S_ACT S_STR
#define S_BOOL S_STR
#define S_INT S_STR
#define S_TIME S_STR
#define S_SIZE S_STR
#define S_RATIO S_STR
#define S_OCT S_STR
#define S_MODE S_STR
#define P_STR S_STR
#define P_LIST S_STR
#include "policyd/settings.def"
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
    NSETTINGS
};

extern const struct setting config_settings[NSETTINGS];

/* The raw text of each setting while loading, and where it came from. */
struct raw {
    char *value[NSETTINGS];
    enum setting_source source[NSETTINGS];
    int line[NSETTINGS];
    const char *file;
    char postfix_dir[PATH_MAX];
};

/* config_settings_index - index of the setting called name (len bytes), or -1. */
int config_settings_index(const char *name, size_t len);

/* config_settings_suggest - the known setting closest to name, or NULL when nothing is close. */
const char *config_settings_suggest(const char *name);

/* config_settings_where - "FILE:LINE" of setting i for messages, or where its value came from. */
void config_settings_where(const struct raw *raw, size_t i, char *out, size_t outlen);

/* config_read_file - fill raw from the policyd.conf at path; 0, or -1 with "FILE:LINE: reason". */
int config_read_file(const char *path, struct raw *raw, char *err, size_t errlen);

/* config_read_expand - $name, ${name}, $(name) expansion of text, the value of setting idx
 * (recursive, bounded). 0 with a new string in *out, or -1 with "FILE:LINE: reason". */
int config_read_expand(struct raw *raw, size_t idx, const char *text, int depth, char **out,
                       char *err, size_t errlen);

/* config_postfix_import - run postconf for the P_ settings not set in policyd.conf. 0 (with
 * what happened in note), or -1 with a reason. Runs a process: start and reload only. */
int config_postfix_import(struct raw *raw, char *note, size_t notelen, char *err, size_t errlen);

/* config_postfix_hostnames - fill empty myhostname / mydomain as Postfix does. */
void config_postfix_hostnames(struct raw *raw);

#endif
