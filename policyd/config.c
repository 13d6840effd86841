/*
 * config.c - load policyd.conf: Postfix main.cf syntax, Postfix import, typed validation.
 *
 * Loading goes in stages, each able to refuse with "FILE:LINE: reason": read logical lines
 * (continuations, comments), import Postfix's values with `postconf -c DIR -h -x` (one process,
 * at start and reload only, never per request), expand $name, convert every setting to its
 * type, then compile lists and let each configured check build its state. A configuration is
 * immutable once loaded and reference counted; the settings table comes from settings.def.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/config.h"

#include "policyd/config_stage.h"

#include "checks/check.h"
#include "policyd/maps/domainlist.h"
#include "policyd/lib/log.h"
#include "policyd/maps/netlist.h"
#include "protocol/action.h"
#include "policyd/lib/endpoint.h"
#include "policyd/lib/file.h"
#include "policyd/lib/xalloc.h"
#include "policyd/mail/dkim_keys.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/units.h"
#include "policyd/lib/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A loaded configuration keeps its sources for -n and for late error messages. */
struct config_private {
    struct config pub;
    enum setting_source source[NSETTINGS];
    int line[NSETTINGS];
    char *expanded[NSETTINGS]; /* final text of every setting */
    char *path_copy;
    char postfix_note[512];
};

static struct config_private *config_priv(const struct config *cfg)
{
    return (struct config_private *)(void *)cfg;
}

/* The checks `checks = ...` may name: main.c hands over the registry (config_use_checks), so
 * the core never links the checks it runs. */
static const struct check_def *(*config_checks_lookup)(const char *name);
static const char *(*config_checks_names)(void);

void config_use_checks(const struct check_def *(*find)(const char *name),
                       const char *(*names)(void))
{
    config_checks_lookup = find;
    config_checks_names = names;
}

/* config_checks_find - the check called name, or NULL (none known before config_use_checks). */
static const struct check_def *config_checks_find(const char *name)
{
    return config_checks_lookup ? config_checks_lookup(name) : NULL;
}

/* config_ratio - "0.8" or "80%" -> 0.8. 0 / -1 (not a number, negative, trailing junk). */
static int config_ratio(const char *text, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(text, &end);
    if (end == text || errno || d < 0 || !isfinite(d))
        return -1;
    if (*end == '%') {
        d /= 100;
        end++;
    }
    if (*end)
        return -1;
    *out = d;
    return 0;
}

/* config_bound - the value of bound text (a bound of setting i, in its units). 0 / -1. */
static int config_bound(size_t i, const char *text, double *out)
{
    long l;
    size_t z;
    char *end;
    switch (config_settings[i].type) {
    case T_INT:
        l = strtol(text, &end, 10);
        *out = (double)l;
        return *text && !*end ? 0 : -1;
    case T_TIME:
        if (units_parse_time(text, &l) != 0)
            return -1;
        *out = (double)l;
        return 0;
    case T_SIZE:
        if (units_parse_size(text, &z) != 0)
            return -1;
        *out = (double)z;
        return 0;
    case T_RATIO:
        return config_ratio(text, out);
    default:
        return -1;
    }
}

/* config_check_bounds - refuse a numeric value outside its setting's bounds, saying which. */
static int config_check_bounds(size_t i, double value, const char *where, const char *text,
                               char *err, size_t errlen)
{
    const struct setting *st = &config_settings[i];
    double lo, hi;
    if (!st->lo || config_bound(i, st->lo, &lo) != 0 || config_bound(i, st->hi, &hi) != 0)
        log_panic("settings.def: %s has unreadable bounds", st->name);
    if (value < lo || value > hi) {
        snprintf(err, errlen, "%s: %s: '%s' is out of range (%s to %s)", where, st->name, text,
                 st->lo, st->hi);
        return -1;
    }
    return 0;
}

int config_bounds_valid(char *err, size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *st = &config_settings[i];
        double lo, hi, def;
        if (st->type != T_INT && st->type != T_TIME && st->type != T_SIZE && st->type != T_RATIO)
            continue;
        if (config_bound(i, st->lo, &lo) != 0 || config_bound(i, st->hi, &hi) != 0 ||
            config_bound(i, st->def, &def) != 0 || lo > hi || def < lo || def > hi) {
            snprintf(err, errlen, "%s: default '%s' or bounds '%s'..'%s' unreadable or crossed",
                     st->name, st->def, st->lo, st->hi);
            return -1;
        }
    }
    return 0;
}

/* config_convert - one expanded value into its typed field. */
static int config_convert(struct config *cfg, const struct raw *raw, size_t i, const char *v,
                          char *err, size_t errlen)
{
    char where[PATH_MAX + 64];
    char *field = (char *)cfg + config_settings[i].offset;
    const char *name = config_settings[i].name;
    char reason[512];

    config_settings_where(raw, i, where, sizeof(where));
    switch (config_settings[i].type) {
    case T_STR:
    case T_LIST:
        *(char **)(void *)field = xstrdup(v);
        return 0;
    case T_ACT: {
        enum action_kind kind;
        if (action_parse(v, &kind, reason, sizeof(reason)) != 0) {
            snprintf(err, errlen, "%s: %s: %s", where, name, reason);
            return -1;
        }
        *(char **)(void *)field = xstrdup(v);
        return 0;
    }
    case T_BOOL:
        if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0)
            *(int *)(void *)field = 1;
        else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0)
            *(int *)(void *)field = 0;
        else {
            snprintf(err, errlen, "%s: %s: '%s' is not yes or no", where, name, v);
            return -1;
        }
        return 0;
    case T_INT: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (!*v || *end || errno || n < 0) {
            snprintf(err, errlen, "%s: %s: '%s' is not a non-negative integer", where, name, v);
            return -1;
        }
        *(long *)(void *)field = n;
        return config_check_bounds(i, (double)n, where, v, err, errlen);
    }
    case T_TIME:
        if (units_parse_time(v, (long *)(void *)field) != 0) {
            snprintf(err, errlen,
                     "%s: %s: '%s' is not a duration (a number with unit ms, s, m, h, d or w)",
                     where, name, v);
            return -1;
        }
        return config_check_bounds(i, (double)*(long *)(void *)field, where, v, err, errlen);
    case T_SIZE:
        if (units_parse_size(v, (size_t *)(void *)field) != 0) {
            snprintf(err, errlen, "%s: %s: '%s' is not a size (bytes, or with k, m, g)", where,
                     name, v);
            return -1;
        }
        return config_check_bounds(i, (double)*(size_t *)(void *)field, where, v, err, errlen);
    case T_RATIO:
        if (config_ratio(v, (double *)(void *)field) != 0) {
            snprintf(err, errlen, "%s: %s: '%s' is not a ratio (0.8, or 80%%)", where, name, v);
            return -1;
        }
        return config_check_bounds(i, *(double *)(void *)field, where, v, err, errlen);
    case T_OCT: {
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 8);
        if (!*v || *end || errno || n > 07777) {
            snprintf(err, errlen, "%s: %s: '%s' is not an octal file mode like 0660", where, name,
                     v);
            return -1;
        }
        *(unsigned *)(void *)field = (unsigned)n;
        return 0;
    }
    case T_MODE:
        if (strcmp(v, "enforce") == 0)
            *(enum check_mode *)(void *)field = MODE_ENFORCE;
        else if (strcmp(v, "warn") == 0 || strcmp(v, "learn") == 0) /* learn: greylist's word */
            *(enum check_mode *)(void *)field = MODE_WARN;
        else {
            snprintf(err, errlen, "%s: %s: '%s' is not enforce or warn (learn)", where, name, v);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* config_local_addresses - this host's addresses and proxy_interfaces, for [addr] literals. */
static int config_local_addresses(struct config *cfg, char *err, size_t errlen)
{
    cfg->net_local = netlist_new("proxy_interfaces", "", err, errlen);
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) == 0) {
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
            char text[INET6_ADDRSTRLEN];
            if (!i->ifa_addr)
                continue;
            if (i->ifa_addr->sa_family == AF_INET)
                inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, text,
                          sizeof(text));
            else if (i->ifa_addr->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, text,
                          sizeof(text));
            else
                continue;
            netlist_add_address(cfg->net_local, text);
        }
        freeifaddrs(ifa);
    }
    char **v = plist_split(cfg->proxy_interfaces);
    for (size_t i = 0; v[i]; i++) {
        if (netlist_add_address(cfg->net_local, v[i]) != 0) {
            /* Postfix allows host names here; resolving them would block: say so. */
            snprintf(err, errlen,
                     "proxy_interfaces: '%s' is not an IP address (policyd does not resolve "
                     "host names here: write the address)",
                     v[i]);
            plist_free(v);
            return -1;
        }
    }
    plist_free(v);
    return 0;
}

/* config_compile - lists, checks and cross-setting rules. */
static int config_compile(struct config_private *cp, const struct raw *raw, char *err,
                          size_t errlen)
{
    struct config *cfg = &cp->pub;
    char where[PATH_MAX + 64];
    char reason[1024];
    int i_of;

#define WHERE(name)                                                                                \
    (i_of = config_settings_index(name, strlen(name)),                                             \
     config_settings_where(raw, (size_t)i_of, where, sizeof(where)), where)

    if (endpoint_check_list(cfg->listen, reason, sizeof(reason)) != 0) {
        snprintf(err, errlen, "%s: listen: %s", WHERE("listen"), reason);
        return -1;
    }
    if (*cfg->metrics_listen) {
        struct sockaddr_storage ss;
        socklen_t sslen;
        if (endpoint_parse(cfg->metrics_listen, &ss, &sslen, reason, sizeof(reason)) != 0) {
            snprintf(err, errlen, "%s: metrics_listen: %s", WHERE("metrics_listen"), reason);
            return -1;
        }
    }
    if (!action_is_temporary_safe(cfg->fallback_action)) {
        snprintf(err, errlen,
                 "%s: fallback_action: '%s' rejects permanently; the fallback answers temporary "
                 "trouble and must be DUNNO, DEFER_IF_PERMIT or a 4xx code",
                 WHERE("fallback_action"), cfg->fallback_action);
        return -1;
    }
    if (action_kind_of(cfg->relay_action) == ACTION_OK) {
        snprintf(err, errlen,
                 "%s: relay_action: OK would accept the relay attempt (an open relay); use a "
                 "reject or defer action",
                 WHERE("relay_action"));
        return -1;
    }
    if (!log_facility_valid(cfg->syslog_facility)) {
        snprintf(err, errlen, "%s: syslog_facility: unknown facility '%s'",
                 WHERE("syslog_facility"), cfg->syslog_facility);
        return -1;
    }
    if (cfg->max_request_size < cfg->max_line_length) {
        snprintf(err, errlen, "%s: max_request_size: %zu is smaller than max_line_length (%zu)",
                 WHERE("max_request_size"), cfg->max_request_size, cfg->max_line_length);
        return -1;
    }

    const char *pdms = cfg->parent_domain_matches_subdomains;
    if (!(cfg->net_mynetworks =
              netlist_new("mynetworks", cfg->mynetworks, reason, sizeof(reason)))) {
        snprintf(err, errlen, "%s: %s", WHERE("mynetworks"), reason);
        return -1;
    }
    struct {
        const char *name;
        const char *value;
        struct domainlist **out;
    } lists[] = {
        {"mydestination", cfg->mydestination, &cfg->dom_mydestination},
        {"relay_domains", cfg->relay_domains, &cfg->dom_relay_domains},
        {"virtual_alias_domains", cfg->virtual_alias_domains, &cfg->dom_virtual_alias_domains},
        {"virtual_mailbox_domains", cfg->virtual_mailbox_domains,
         &cfg->dom_virtual_mailbox_domains},
    };
    for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++) {
        *lists[k].out = domainlist_new(lists[k].name, lists[k].value,
                                       plist_contains(pdms, lists[k].name), reason, sizeof(reason));
        if (!*lists[k].out) {
            snprintf(err, errlen, "%s: %s", WHERE(lists[k].name), reason);
            return -1;
        }
    }
    if (config_local_addresses(cfg, reason, sizeof(reason)) != 0) {
        snprintf(err, errlen, "%s: %s", WHERE("proxy_interfaces"), reason);
        return -1;
    }
    cfg->relay_clientcerts_v = plist_split(cfg->relay_clientcerts);
    for (size_t k = 0; cfg->relay_clientcerts_v[k]; k++) {
        char *f = cfg->relay_clientcerts_v[k];
        if (strchr(f, ':') && strchr(f, '/')) {
            snprintf(err, errlen,
                     "%s: relay_clientcerts: tables ('%s') are not supported: list the "
                     "fingerprints",
                     WHERE("relay_clientcerts"), f);
            return -1;
        }
        for (char *q = f; *q; q++)
            *q = (char)tolower((unsigned char)*q);
    }

    /* checks = a, b, c */
    char **names = plist_split(cfg->checks);
    for (size_t k = 0; names[k]; k++) {
        const struct check_def *def = config_checks_find(names[k]);
        if (!def) {
            snprintf(err, errlen, "%s: checks: unknown check '%s' (known: %s)", WHERE("checks"),
                     names[k], config_checks_names ? config_checks_names() : "none");
            plist_free(names);
            return -1;
        }
        for (size_t j = 0; j < cfg->check_count; j++) {
            if (cfg->check_defs[j] == def) {
                snprintf(err, errlen, "%s: checks: '%s' is listed twice", WHERE("checks"),
                         names[k]);
                plist_free(names);
                return -1;
            }
        }
        if (cfg->check_count == CONFIG_MAX_CHECKS) {
            snprintf(err, errlen, "%s: checks: more than %d checks", WHERE("checks"),
                     CONFIG_MAX_CHECKS);
            plist_free(names);
            return -1;
        }
        size_t slot = cfg->check_count++;
        cfg->check_defs[slot] = def;
        char mode_name[96];
        snprintf(mode_name, sizeof(mode_name), "%s_mode", def->name);
        int mi = config_settings_index(mode_name, strlen(mode_name));
        cfg->check_modes[slot] =
            mi >= 0 ? *(enum check_mode *)(void *)((char *)cfg + config_settings[mi].offset)
                    : MODE_ENFORCE;
        if (def->configure) {
            reason[0] = 0;
            cfg->check_states[slot] = def->configure(cfg, reason, sizeof(reason));
            if (!cfg->check_states[slot]) {
                /* A reason that starts with a setting's name ("spf_fail_action: ...") gets the
                 * line that setting was written on. */
                const char *colon = strchr(reason, ':');
                int line = 0;
                if (colon && config_settings_index(reason, (size_t)(colon - reason)) >= 0) {
                    char setting[96];
                    snprintf(setting, sizeof(setting), "%.*s", (int)(colon - reason), reason);
                    line = config_source_line(cfg, setting);
                }
                if (line > 0)
                    snprintf(err, errlen, "%s:%d: %s check: %s", raw->file ? raw->file : "built-in",
                             line, def->name, reason);
                else
                    snprintf(err, errlen, "%s: %s check: %s", raw->file ? raw->file : "built-in",
                             def->name, reason[0] ? reason : "cannot be configured");
                plist_free(names);
                return -1;
            }
        }
    }
    plist_free(names);
    /* A check that waits for others (check_def.after) must not be waited for: no chains, so
     * no cycle can leave a request waiting for itself. */
    for (size_t i = 0; i < cfg->check_count; i++) {
        const char *const *after = cfg->check_defs[i]->after;
        for (size_t k = 0; after && after[k]; k++) {
            for (size_t j = 0; j < cfg->check_count; j++) {
                const struct check_def *dep = cfg->check_defs[j];
                if (strcmp(dep->name, after[k]) != 0)
                    continue;
                if (j == i || (dep->after && dep->after[0])) {
                    snprintf(err, errlen,
                             "%s: checks: '%s' runs after '%s', which %s: a check that others "
                             "wait for may not wait itself (remove one of them from checks)",
                             WHERE("checks"), cfg->check_defs[i]->name, dep->name,
                             j == i ? "is itself" : "waits for other checks too");
                    return -1;
                }
            }
        }
    }
#undef WHERE
    return 0;
}

static void raw_free(struct raw *raw)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        free(raw->value[i]);
}

/* config_load_settings - read, import, expand, validate and compile (config_load without the
 * file permission check). */
static struct config *config_load_settings(const char *path, char *err, size_t errlen)
{
    struct raw raw;
    memset(&raw, 0, sizeof(raw));
    raw.file = path;
    for (size_t i = 0; i < NSETTINGS; i++)
        raw.value[i] = xstrdup(config_settings[i].def);

    struct config_private *cp = xcalloc(1, sizeof(*cp));
    cp->pub.refs = 1;
    if (path && config_read_file(path, &raw, err, errlen) != 0)
        goto fail;
    if (config_postfix_import(&raw, cp->postfix_note, sizeof(cp->postfix_note), err, errlen) != 0)
        goto fail;
    config_postfix_hostnames(&raw);
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (raw.source[i] == SRC_POSTFIX) {
            /* postconf -x already expanded it; keep '$' literal. */
            cp->expanded[i] = xstrdup(raw.value[i]);
        } else if (config_read_expand(&raw, i, raw.value[i], 0, &cp->expanded[i], err, errlen) !=
                   0) {
            goto fail;
        }
        cp->source[i] = raw.source[i];
        cp->line[i] = raw.line[i];
        if (config_convert(&cp->pub, &raw, i, cp->expanded[i], err, errlen) != 0)
            goto fail;
    }
    cp->path_copy = path ? xstrdup(path) : NULL;
    cp->pub.path = cp->path_copy ? cp->path_copy : "built-in defaults";
    cp->pub.postfix_note = cp->postfix_note;
    cp->pub.set_explicitly_user = raw.source[config_settings_index("user", 4)] == SRC_FILE;
    if (config_compile(cp, &raw, err, errlen) != 0)
        goto fail;
    raw_free(&raw);
    return &cp->pub;
fail:
    raw_free(&raw);
    config_unref(&cp->pub);
    return NULL;
}

/* config_where - "FILE:LINE" of setting i of a loaded configuration, or where it came from. */
static void config_where(const struct config *cfg, size_t i, char *out, size_t outlen)
{
    const struct config_private *cp = config_priv(cfg);
    if (cp->source[i] == SRC_FILE)
        snprintf(out, outlen, "%s:%d", cfg->path, cp->line[i]);
    else if (cp->source[i] == SRC_POSTFIX)
        snprintf(out, outlen, "%s/main.cf (imported %s)", cfg->postfix_config_directory,
                 config_settings[i].name);
    else
        snprintf(out, outlen, "%s (default of %s)", cfg->path, config_settings[i].name);
}

/* config_names_word - 1 if text holds word as a whole element of a list or a table's name:
 * "/etc/postfix/virtual" is in "hash:/etc/postfix/virtual, x" but not in
 * "hash:/etc/postfix/virtual_alias". */
static int config_names_word(const char *text, const char *word, size_t len)
{
    for (const char *p = text; (p = strstr(p, word)) != NULL; p++) {
        char before = p == text ? ' ' : p[-1], after = p[len];
        if (strchr(" \t\n,:={", before) && (!after || strchr(" \t\n,}", after)))
            return 1;
    }
    return 0;
}

/* config_names_file - 1 if the text of a setting names path: as it is, or without the suffix
 * a table type adds ("lmdb:/etc/postfix/virtual" opens /etc/postfix/virtual.lmdb). */
static int config_names_file(const char *text, const char *path)
{
    size_t pl = strlen(path);
    if (config_names_word(text, path, pl))
        return 1;
    static const char *const suffixes[] = {".lmdb", ".db"};
    for (size_t k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++) {
        size_t sl = strlen(suffixes[k]);
        if (pl > sl && strcmp(path + pl - sl, suffixes[k]) == 0) {
            char stem[PATH_MAX];
            snprintf(stem, sizeof(stem), "%.*s", (int)(pl - sl), path);
            if (config_names_word(text, stem, pl - sl))
                return 1;
        }
    }
    return 0;
}

/* config_file_origin - where path was named: "FILE:LINE: setting" of the setting whose value
 * names it, a KeyTable line for a DKIM key, else the file that names files indirectly. */
static void config_file_origin(const struct config *cfg, const char *path, const char *key_origin,
                               char *out, size_t outlen)
{
    const struct config_private *cp = config_priv(cfg);
    char where[PATH_MAX + 64];
    if (key_origin && strcmp(key_origin, "dkim_keys") != 0) {
        snprintf(out, outlen, "%s: DKIM key", key_origin);
        return;
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        enum setting_type t = config_settings[i].type;
        if ((t == T_STR || t == T_LIST) && config_names_file(cp->expanded[i], path)) {
            config_where(cfg, i, where, sizeof(where));
            snprintf(out, outlen, "%s: %s", where, config_settings[i].name);
            return;
        }
    }
    /* Named inside another file: OpenDKIM's KeyTable is the one case. */
    int i = config_settings_index("opendkim_config", 15);
    if (*cfg->opendkim_config) {
        config_where(cfg, (size_t)i, where, sizeof(where));
        snprintf(out, outlen, "%s: opendkim_config (%s)", where, cfg->opendkim_config);
    } else {
        snprintf(out, outlen, "%s", cfg->path);
    }
}

static int config_file_check = 1;

void config_set_file_check(int on)
{
    config_file_check = on;
}

/* config_drops_privileges - 1 if the daemon started now would switch to another user, whose
 * access to the files must then be checked: running as root, `user` not root, and existing
 * (a missing user is refused at start, with its own message). */
static int config_drops_privileges(const struct config *cfg)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    return geteuid() == 0 && strcmp(cfg->user, "root") != 0 &&
           getpwnam_r(cfg->user, &pw, buf, sizeof(buf), &res) == 0 && res;
}

/*
 * config_check_readable - every file the configuration opened (files[0..n), recorded while it
 * loaded) and every DKIM key file must stay readable for `user`: the daemon reads them again
 * after dropping privileges (SIGHUP, table changes on disk). A file only root can read would
 * work at start and break at the first reload, or worse, keep an old table in use. 0, or -1
 * with "FILE:LINE: setting: ... fix" in err.
 */
static int config_check_readable(const struct config *cfg, char **files, size_t n,
                                 const struct dkim_keys_list *keys, char *err, size_t errlen)
{
    size_t nkeys = keys ? keys->nkeys : 0, total = 0;
    const char **paths = xcalloc(n + nkeys + 1, sizeof(*paths));
    const char **origins = xcalloc(n + nkeys + 1, sizeof(*origins));
    for (size_t i = 0; i < n; i++)
        paths[total++] = files[i];
    for (size_t k = 0; k < nkeys; k++) {
        if (!keys->keys[k].pem)
            continue; /* not readable even as root: the DKIM check reports it */
        origins[total] = keys->keys[k].origin;
        paths[total++] = keys->keys[k].path;
    }
    int rc = 0;
    if (total > 0) {
        int *errnos = xcalloc(total, sizeof(int));
        char why[512];
        if (file_readable_as(cfg->user, paths, total, errnos, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s: cannot check which files user %s may read: %s", cfg->path,
                     cfg->user, why);
            rc = -1;
        }
        size_t bad = 0, first = 0;
        for (size_t i = 0; rc == 0 && i < total; i++)
            if (errnos[i] != 0 && bad++ == 0)
                first = i;
        if (rc == 0 && bad > 0) {
            char origin[PATH_MAX + 200], more[64] = "";
            const char *p = paths[first];
            config_file_origin(cfg, p, origins[first], origin, sizeof(origin));
            if (bad > 1)
                snprintf(more, sizeof(more), " (and %zu more files)", bad - 1);
            if (errnos[first] == EACCES || errnos[first] == EPERM)
                snprintf(err, errlen,
                         "%s: %s is readable by root but not by user %s, who reads it again on "
                         "reload (SIGHUP) and when it changes%s; fix: chgrp %s %s; chmod 640 %s "
                         "(and make every directory above it searchable by %s)",
                         origin, p, cfg->user, more, cfg->user, p, p, cfg->user);
            else
                snprintf(err, errlen, "%s: user %s cannot open %s: %s%s", origin, cfg->user, p,
                         strerror(errnos[first]), more);
            rc = -1;
        }
        free(errnos);
    }
    free(paths);
    free(origins);
    return rc;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    /* Record the files the load opens, to ask afterwards whether `user` can open them too. */
    file_record_begin();
    struct config *cfg = config_load_settings(path, err, errlen);
    struct dkim_keys_list *keys = NULL;
    int check = cfg && config_file_check && config_drops_privileges(cfg);
    if (check && (*cfg->dkim_keys || *cfg->opendkim_config))
        keys = dkim_keys_list_load(cfg->dkim_keys, cfg->opendkim_config);
    size_t n;
    char **files = file_record_end(&n);
    if (check && config_check_readable(cfg, files, n, keys, err, errlen) != 0) {
        config_unref(cfg);
        cfg = NULL;
    }
    dkim_keys_list_free(keys);
    file_record_free(files);
    return cfg;
}

static struct config *config_current;

struct config *config_active(void)
{
    return config_current;
}

void config_activate(struct config *cfg)
{
    struct config *old = config_current;
    config_current = cfg;
    config_unref(old);
}

struct config *config_ref(struct config *cfg)
{
    if (cfg)
        cfg->refs++;
    return cfg;
}

void config_unref(struct config *cfg)
{
    if (!cfg || --cfg->refs > 0)
        return;
    struct config_private *cp = config_priv(cfg);
    for (size_t k = 0; k < cfg->check_count; k++)
        if (cfg->check_defs[k]->unconfigure && cfg->check_states[k])
            cfg->check_defs[k]->unconfigure(cfg->check_states[k]);
    for (size_t i = 0; i < NSETTINGS; i++) {
        enum setting_type t = config_settings[i].type;
        if (t == T_STR || t == T_LIST || t == T_ACT)
            free(*(char **)(void *)((char *)cfg + config_settings[i].offset));
        free(cp->expanded[i]);
    }
    netlist_free(cfg->net_mynetworks);
    netlist_free(cfg->net_local);
    domainlist_free(cfg->dom_mydestination);
    domainlist_free(cfg->dom_relay_domains);
    domainlist_free(cfg->dom_virtual_alias_domains);
    domainlist_free(cfg->dom_virtual_mailbox_domains);
    plist_free(cfg->relay_clientcerts_v);
    free(cp->path_copy);
    free(cp);
}

void config_print_nondefault(const struct config *cfg, void *stdio_file)
{
    FILE *fp = stdio_file;
    const struct config_private *cp = config_priv(cfg);
    int said_postfix = 0;

    for (size_t i = 0; i < NSETTINGS; i++) {
        if (cp->source[i] == SRC_FILE && strcmp(cp->expanded[i], config_settings[i].def) != 0)
            fprintf(fp, "%s =%s%s\n", config_settings[i].name, *cp->expanded[i] ? " " : "",
                    cp->expanded[i]);
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (cp->source[i] == SRC_POSTFIX && strcmp(cp->expanded[i], config_settings[i].def) != 0) {
            if (!said_postfix++)
                fprintf(fp, "# imported from Postfix (%s)\n", cfg->postfix_note);
            fprintf(fp, "%s = %s\n", config_settings[i].name, cp->expanded[i]);
        }
    }
}

int config_source_line(const struct config *cfg, const char *name)
{
    int i = config_settings_index(name, strlen(name));
    return i < 0 ? 0 : config_priv(cfg)->line[i];
}

int config_changed(const struct config *old, const struct config *new_cfg,
                   enum config_reload_class cls, char *out, size_t outlen)
{
    const struct config_private *a = config_priv(old), *b = config_priv(new_cfg);
    size_t used = 0;
    int any = 0;
    if (outlen)
        out[0] = 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (config_settings[i].reload != cls || strcmp(a->expanded[i], b->expanded[i]) == 0)
            continue;
        if (used < outlen) {
            int n = snprintf(out + used, outlen - used, "%s%s", any ? ", " : "",
                             config_settings[i].name);
            used += n > 0 ? (size_t)n : 0;
        }
        any = 1;
    }
    return any;
}

const char *config_mode_name(enum check_mode mode)
{
    return mode == MODE_WARN ? "warn" : "enforce";
}
