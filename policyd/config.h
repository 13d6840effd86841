/*
 * config.h - policyd.conf: Postfix main.cf syntax, typed settings, Postfix import, reload.
 *
 * A configuration is loaded whole (file, Postfix import, $name expansion, validation, compiled
 * lists and per-check state) or refused with "FILE:LINE: reason". The active one is swapped
 * whole on reload; requests keep a reference to the one they started with, so a reload never
 * changes a decision half way. The settings themselves are listed in policyd/settings.def.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_CONFIG_H
#define POLICYD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct netlist;
struct domainlist;

enum check_mode { MODE_ENFORCE, MODE_WARN };

/* What a SIGHUP does with a changed setting (settings.def's reload class). */
enum config_reload_class { R_LIVE, R_DNS, R_RESTART };

#define CONFIG_MAX_CHECKS 16

struct config {
#define S_STR(n, d, r, doc) char *n;
#define S_LIST(n, d, r, doc) char *n;
#define S_ACT(n, d, r, doc) char *n;
#define S_BOOL(n, d, r, doc) int n;
#define S_INT(n, d, lo, hi, r, doc) long n;
#define S_TIME(n, d, lo, hi, r, doc) long n; /* milliseconds */
#define S_SIZE(n, d, lo, hi, r, doc) size_t n;
#define S_RATIO(n, d, lo, hi, r, doc) double n; /* 0.8; written 0.8 or 80% */
#define S_OCT(n, d, r, doc) unsigned n;
#define S_MODE(n, d, r, doc) enum check_mode n;
#define P_STR S_STR
#define P_LIST S_LIST
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

    /* Derived at load time. */
    const char *path;               /* the file this was loaded from */
    const char *postfix_note;       /* how the Postfix import went, for the start-up log */
    struct netlist *net_mynetworks; /* mynetworks, compiled */
    struct netlist *net_local;      /* this host's addresses + proxy_interfaces */
    struct domainlist *dom_mydestination;
    struct domainlist *dom_relay_domains;
    struct domainlist *dom_virtual_alias_domains;
    struct domainlist *dom_virtual_mailbox_domains;
    char **relay_clientcerts_v; /* NULL-terminated, lower case */

    /* The configured checks, in order, with their state. */
    size_t check_count;
    const struct check_def *check_defs[CONFIG_MAX_CHECKS];
    void *check_states[CONFIG_MAX_CHECKS];
    enum check_mode check_modes[CONFIG_MAX_CHECKS];

    int refs;
    int set_explicitly_user; /* `user` was written in policyd.conf */
};

struct check_def;

/* config_use_checks - the checks a configuration may name: find(name) gives one or NULL,
 * names() lists them for messages. main.c passes the registry's (checks/registry.h); without
 * it only a configuration whose `checks` is empty loads. */
void config_use_checks(const struct check_def *(*find)(const char *name),
                       const char *(*names)(void));

/*
 * config_load - read, import, expand, validate and compile. path NULL: defaults only. Run as
 * root for another `user`, every file it opened (tables, /file lists, DKIM keys and KeyTable)
 * must also open for that user, who reads them again later (see config_set_file_check).
 * Returns a configuration with one reference, or NULL with "FILE:LINE: reason" in err.
 */
struct config *config_load(const char *path, char *err, size_t errlen);

/* config_set_file_check - whether config_load, run as root for a configuration whose `user`
 * is another, refuses it when that user could not read a file it names (default on: start and
 * -t; `policyd doctor` reports rather than refuses, and turns it off). */
void config_set_file_check(int on);

/* config_active - the configuration new requests use (process-wide; swapped whole on reload). */
struct config *config_active(void);

/* config_activate - make cfg (its reference passes to us) the active one; the previous one is
 * released when the last request using it finishes. */
void config_activate(struct config *cfg);

/* config_ref / config_unref - reference counting; the last unref frees. Both accept NULL. */
struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* config_print_nondefault - write "name = value" lines for settings that differ from the
 * defaults (policyd -n), imported Postfix values marked by a comment line. */
void config_print_nondefault(const struct config *cfg, void *stdio_file);

/* config_source_line - the line a setting was set on, for errors found after loading; 0 when it
 * has its default. */
int config_source_line(const struct config *cfg, const char *name);

/* config_changed - the names of the settings of reload class cls whose values differ between
 * old and new, as "a, b, c" in out (empty when none). Returns 1 if any differ, else 0. */
int config_changed(const struct config *old, const struct config *new_cfg,
                   enum config_reload_class cls, char *out, size_t outlen);

/* config_bounds_valid - every bound and default in the settings table is readable and every
 * default lies inside its bounds (a test asks; a broken table is a build defect). 0 / -1. */
int config_bounds_valid(char *err, size_t errlen);

/* config_mode_name - "enforce" / "warn". */
const char *config_mode_name(enum check_mode mode);

#endif
