/*
 * config.c - load policyd.conf: Postfix main.cf syntax, Postfix import, typed validation.
 *
 * Loading goes in stages, each able to refuse with "FILE:LINE: reason": read logical lines
 * (continuations, comments), import Postfix's values with `postconf -c DIR -h -x` (one process,
 * at start and reload only, never per request), expand $name, convert every setting to its
 * type, then compile lists and let each configured check build its state. A configuration is
 * immutable once loaded and reference counted; the settings table comes from settings.def.
 */
#include "policyd/config.h"

#include "checks/check.h"
#include "policyd/maps/domainlist.h"
#include "policyd/lib/log.h"
#include "policyd/maps/netlist.h"
#include "protocol/action.h"
#include "policyd/lib/endpoint.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/units.h"

#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
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

enum setting_type { T_STR, T_LIST, T_ACT, T_BOOL, T_INT, T_TIME, T_SIZE, T_OCT, T_MODE };
enum setting_source { SRC_DEFAULT, SRC_POSTFIX, SRC_FILE };

struct setting {
    const char *name;
    enum setting_type type;
    const char *def;
    const char *doc;
    int from_postfix;
    size_t offset;
};

static const struct setting settings[] = {
#define S_STR(n, d, doc) {#n, T_STR, d, doc, 0, offsetof(struct config, n)},
#define S_LIST(n, d, doc) {#n, T_LIST, d, doc, 0, offsetof(struct config, n)},
#define S_ACT(n, d, doc) {#n, T_ACT, d, doc, 0, offsetof(struct config, n)},
#define S_BOOL(n, d, doc) {#n, T_BOOL, d, doc, 0, offsetof(struct config, n)},
#define S_INT(n, d, doc) {#n, T_INT, d, doc, 0, offsetof(struct config, n)},
#define S_TIME(n, d, doc) {#n, T_TIME, d, doc, 0, offsetof(struct config, n)},
#define S_SIZE(n, d, doc) {#n, T_SIZE, d, doc, 0, offsetof(struct config, n)},
#define S_OCT(n, d, doc) {#n, T_OCT, d, doc, 0, offsetof(struct config, n)},
#define S_MODE(n, d, doc) {#n, T_MODE, d, doc, 0, offsetof(struct config, n)},
#define P_STR(n, d, doc) {#n, T_STR, d, doc, 1, offsetof(struct config, n)},
#define P_LIST(n, d, doc) {#n, T_LIST, d, doc, 1, offsetof(struct config, n)},
#include "policyd/settings.def"
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* The raw text of each setting while loading, and where it came from. */
struct raw {
    char *value[NSETTINGS];
    enum setting_source source[NSETTINGS];
    int line[NSETTINGS];
    const char *file;
    char postfix_dir[PATH_MAX];
};

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

/* setting_index - index of a setting by name, or -1. */
static int setting_index(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, name, len) == 0)
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

/* config_suggest - the known setting closest to name, or NULL when nothing is close. */
static const char *config_suggest(const char *name)
{
    const char *best = NULL;
    size_t bestd = 3;
    for (size_t i = 0; i < NSETTINGS; i++) {
        size_t d = config_edit_distance(name, settings[i].name);
        if (d < bestd) {
            bestd = d;
            best = settings[i].name;
        }
    }
    return best;
}

/* config_store_line - one logical "name = value" line into raw. */
static int config_store_line(const char *path, int lineno, char *text, struct raw *raw, char *err,
                             size_t errlen);

/* config_read_file - fill raw from the file, "FILE:LINE: reason" on error. */
static int config_read_file(const char *path, struct raw *raw, char *err, size_t errlen)
{
    /* Plain fopen: the file named with -c may be a pipe on purpose (policyd -c <(...) -t). */
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, start_line = 0;
    char *logical = NULL;
    size_t llen = 0;
    int rc = 0;

    /* flush the pending logical line into raw */
#define FLUSH()                                                                                    \
    do {                                                                                           \
        if (logical && rc == 0)                                                                    \
            rc = config_store_line(path, start_line, logical, raw, err, errlen);                   \
        free(logical);                                                                             \
        logical = NULL;                                                                            \
        llen = 0;                                                                                  \
    } while (0)

    while (rc == 0 && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if (memchr(line, 0, (size_t)len)) {
            snprintf(err, errlen, "%s:%d: NUL byte in line", path, lineno);
            rc = -1;
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == 0 || *p == '#')
            continue;
        if (p != line) {
            if (!logical) {
                snprintf(err, errlen,
                         "%s:%d: indented line without a setting before it (continuation lines "
                         "start with whitespace)",
                         path, lineno);
                rc = -1;
                break;
            }
            /* As Postfix's readllines: the newline goes, the indentation stays. */
            logical = realloc(logical, llen + (size_t)len + 1);
            if (!logical)
                abort();
            memcpy(logical + llen, line, (size_t)len + 1);
            llen += (size_t)len;
            continue;
        }
        FLUSH();
        logical = strdup(line);
        if (!logical)
            abort();
        llen = strlen(logical);
        start_line = lineno;
    }
    FLUSH();
#undef FLUSH
    free(line);
    fclose(fp);
    return rc;
}

static int config_store_line(const char *path, int lineno, char *text, struct raw *raw, char *err,
                             size_t errlen)
{
    char *eq = strchr(text, '=');
    if (!eq) {
        snprintf(err, errlen, "%s:%d: missing '=' after setting name (expected 'name = value')",
                 path, lineno);
        return -1;
    }
    char *name_end = eq;
    while (name_end > text && isspace((unsigned char)name_end[-1]))
        name_end--;
    size_t nlen = (size_t)(name_end - text);
    for (size_t i = 0; i < nlen; i++) {
        if (!(islower((unsigned char)text[i]) || isdigit((unsigned char)text[i]) ||
              text[i] == '_')) {
            snprintf(err, errlen, "%s:%d: bad setting name '%.*s'", path, lineno, (int)nlen, text);
            return -1;
        }
    }
    if (nlen == 0) {
        snprintf(err, errlen, "%s:%d: missing setting name before '='", path, lineno);
        return -1;
    }
    int idx = setting_index(text, nlen);
    if (idx < 0) {
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)nlen, text);
        const char *hint = config_suggest(name);
        snprintf(err, errlen, "%s:%d: unknown setting '%s'%s%s%s", path, lineno, name,
                 hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        return -1;
    }
    char *v = eq + 1;
    while (isspace((unsigned char)*v))
        v++;
    size_t vlen = strlen(v);
    while (vlen > 0 && isspace((unsigned char)v[vlen - 1]))
        v[--vlen] = 0;
    free(raw->value[idx]);
    raw->value[idx] = strdup(v);
    raw->source[idx] = SRC_FILE;
    raw->line[idx] = lineno;
    return 0;
}

/* config_where - "FILE:LINE" of a setting for messages, or where its value came from. */
static void config_where(const struct raw *raw, size_t i, char *out, size_t outlen)
{
    if (raw->source[i] == SRC_FILE)
        snprintf(out, outlen, "%s:%d", raw->file, raw->line[i]);
    else if (raw->source[i] == SRC_POSTFIX)
        snprintf(out, outlen, "%s/main.cf (imported %s)", raw->postfix_dir, settings[i].name);
    else
        snprintf(out, outlen, "%s (default of %s)", raw->file ? raw->file : "built-in",
                 settings[i].name);
}

/* config_import_postfix - run postconf for the P_ settings not set in policyd.conf. */
static int config_import_postfix(struct raw *raw, char *note, size_t notelen, char *err,
                                 size_t errlen)
{
    int idx = setting_index("postfix_config_directory", strlen("postfix_config_directory"));
    const char *dir = raw->value[idx];
    char maincf[PATH_MAX + 16];
    struct stat st;

    if (!dir || !*dir) {
        snprintf(note, notelen, "Postfix import disabled (postfix_config_directory is empty)");
        return 0;
    }
    snprintf(raw->postfix_dir, sizeof(raw->postfix_dir), "%s", dir);
    snprintf(maincf, sizeof(maincf), "%s/main.cf", dir);
    if (stat(maincf, &st) != 0) {
        snprintf(note, notelen,
                 "no Postfix configuration at %s (%s): Postfix settings come from policyd.conf "
                 "and built-in defaults",
                 maincf, strerror(errno));
        return 0;
    }
    const char *argv[NSETTINGS + 8];
    size_t argc = 0, want[NSETTINGS], nwant = 0;
    argv[argc++] = "postconf";
    argv[argc++] = "-c";
    argv[argc++] = dir;
    argv[argc++] = "-h";
    argv[argc++] = "-x";
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].from_postfix && raw->source[i] != SRC_FILE) {
            argv[argc++] = settings[i].name;
            want[nwant++] = i;
        }
    }
    argv[argc] = NULL;
    if (nwant == 0) {
        snprintf(note, notelen, "every Postfix setting is set in policyd.conf");
        return 0;
    }
    int out[2], errp[2];
    if (pipe(out) != 0 || pipe(errp) != 0) {
        snprintf(err, errlen, "%s: pipe: %s", maincf, strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "%s: fork: %s", maincf, strerror(errno));
        close(out[0]), close(out[1]), close(errp[0]), close(errp[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(errp[1], 2);
        close(out[0]), close(out[1]), close(errp[0]), close(errp[1]);
        execvp("postconf", (char *const *)argv);
        execv("/usr/sbin/postconf", (char *const *)argv);
        fprintf(stderr, "cannot run postconf: %s", strerror(errno));
        _exit(127);
    }
    close(out[1]);
    close(errp[1]);
    FILE *fo = fdopen(out[0], "r"), *fe = fdopen(errp[0], "r");
    char *line = NULL, errtext[512] = "";
    size_t cap = 0, got = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fo)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n'))
            line[--len] = 0;
        if (got < nwant) {
            size_t i = want[got++];
            free(raw->value[i]);
            raw->value[i] = strdup(line);
            raw->source[i] = SRC_POSTFIX;
        }
    }
    size_t elen = fread(errtext, 1, sizeof(errtext) - 1, fe);
    errtext[elen] = 0;
    while (elen > 0 && errtext[elen - 1] == '\n')
        errtext[--elen] = 0;
    free(line);
    fclose(fo);
    fclose(fe);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != nwant) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
            snprintf(note, notelen, "postconf is not installed: Postfix settings not imported");
            return 0;
        }
        snprintf(err, errlen, "%s: postconf failed: %s", maincf,
                 *errtext ? errtext : "unexpected output");
        return -1;
    }
    snprintf(note, notelen, "imported %zu Postfix settings from %s", nwant, maincf);
    return 0;
}

/* config_default_hostnames - fill empty myhostname / mydomain as Postfix does. */
static void config_default_hostnames(struct raw *raw)
{
    int h = setting_index("myhostname", 10), d = setting_index("mydomain", 8);
    if (!raw->value[h] || !*raw->value[h]) {
        char host[256] = "localhost";
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = 0;
        if (!strchr(host, '.'))
            strncat(host, ".localdomain", sizeof(host) - strlen(host) - 1);
        free(raw->value[h]);
        raw->value[h] = strdup(host);
    }
    if (!raw->value[d] || !*raw->value[d]) {
        const char *dot = strchr(raw->value[h], '.');
        free(raw->value[d]);
        raw->value[d] = strdup(dot ? dot + 1 : "localdomain");
    }
}

/* config_expand - $name, ${name}, $(name) expansion of one value (recursive, bounded). */
static int config_expand(struct raw *raw, size_t idx, const char *text, int depth, char **out,
                         char *err, size_t errlen)
{
    size_t cap = strlen(text) + 64, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    char where[PATH_MAX + 64];
    for (const char *p = text; *p;) {
        if (*p != '$') {
            if (n + 2 > cap)
                buf = realloc(buf, cap *= 2);
            buf[n++] = *p++;
            continue;
        }
        p++;
        const char *name;
        size_t nlen;
        if (*p == '{' || *p == '(') {
            char close = *p == '{' ? '}' : ')';
            const char *end = strchr(p + 1, close);
            if (!end) {
                config_where(raw, idx, where, sizeof(where));
                snprintf(err, errlen, "%s: %s: missing '%c' after '$%c'", where, settings[idx].name,
                         close, *p);
                free(buf);
                return -1;
            }
            name = p + 1;
            nlen = (size_t)(end - name);
            p = end + 1;
        } else {
            name = p;
            while (isalnum((unsigned char)*p) || *p == '_')
                p++;
            nlen = (size_t)(p - name);
        }
        int ref = setting_index(name, nlen);
        if (ref < 0 || depth > 10) {
            config_where(raw, idx, where, sizeof(where));
            if (depth > 10)
                snprintf(err, errlen, "%s: %s: $%.*s expands recursively", where,
                         settings[idx].name, (int)nlen, name);
            else
                snprintf(err, errlen, "%s: %s: unknown setting $%.*s in value", where,
                         settings[idx].name, (int)nlen, name);
            free(buf);
            return -1;
        }
        char *sub;
        if (config_expand(raw, (size_t)ref, raw->value[ref] ? raw->value[ref] : "", depth + 1, &sub,
                          err, errlen) != 0) {
            free(buf);
            return -1;
        }
        size_t slen = strlen(sub);
        while (n + slen + 2 > cap)
            buf = realloc(buf, cap *= 2);
        memcpy(buf + n, sub, slen);
        n += slen;
        free(sub);
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

/* config_convert - one expanded value into its typed field. */
static int config_convert(struct config *cfg, const struct raw *raw, size_t i, const char *v,
                          char *err, size_t errlen)
{
    char where[PATH_MAX + 64];
    char *field = (char *)cfg + settings[i].offset;
    const char *name = settings[i].name;
    char reason[512];

    config_where(raw, i, where, sizeof(where));
    switch (settings[i].type) {
    case T_STR:
    case T_LIST:
        *(char **)(void *)field = strdup(v);
        return 0;
    case T_ACT: {
        enum action_kind kind;
        if (action_parse(v, &kind, reason, sizeof(reason)) != 0) {
            snprintf(err, errlen, "%s: %s: %s", where, name, reason);
            return -1;
        }
        *(char **)(void *)field = strdup(v);
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
        return 0;
    }
    case T_TIME:
        if (units_parse_time(v, (long *)(void *)field) != 0) {
            snprintf(err, errlen,
                     "%s: %s: '%s' is not a duration (a number with unit ms, s, m, h, d or w)",
                     where, name, v);
            return -1;
        }
        return 0;
    case T_SIZE:
        if (units_parse_size(v, (size_t *)(void *)field) != 0) {
            snprintf(err, errlen, "%s: %s: '%s' is not a size (bytes, or with k, m, g)", where,
                     name, v);
            return -1;
        }
        return 0;
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
        else if (strcmp(v, "warn") == 0)
            *(enum check_mode *)(void *)field = MODE_WARN;
        else {
            snprintf(err, errlen, "%s: %s: '%s' is not enforce or warn", where, name, v);
            return -1;
        }
        return 0;
    }
    return -1;
}

/* config_in_list - 1 if word is an element of a Postfix list value. */
static int config_in_list(const char *list, const char *word)
{
    char **v = plist_split(list);
    int hit = 0;
    for (size_t i = 0; v[i] && !hit; i++)
        hit = strcasecmp(v[i], word) == 0;
    plist_free(v);
    return hit;
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
    (i_of = setting_index(name, strlen(name)),                                                     \
     config_where(raw, (size_t)i_of, where, sizeof(where)), where)

    if (endpoint_check_list(cfg->listen, reason, sizeof(reason)) != 0) {
        snprintf(err, errlen, "%s: listen: %s", WHERE("listen"), reason);
        return -1;
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
    if (cfg->request_deadline < 100 || cfg->request_deadline > 90000) {
        snprintf(err, errlen,
                 "%s: request_deadline: must be between 100ms and 90s (Postfix gives up after "
                 "smtpd_policy_service_timeout, 100s by default)",
                 WHERE("request_deadline"));
        return -1;
    }
    if (cfg->max_connections < 1 || cfg->max_line_length < 64 || cfg->max_attributes < 1 ||
        cfg->max_request_size < cfg->max_line_length) {
        snprintf(err, errlen,
                 "%s: limits: max_connections >= 1, max_line_length >= 64, max_attributes >= 1 "
                 "and max_request_size >= max_line_length are required",
                 raw->file ? raw->file : "built-in");
        return -1;
    }
    if (cfg->max_pending_per_connection < 1)
        cfg->max_pending_per_connection = 1;

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
                                       config_in_list(pdms, lists[k].name), reason, sizeof(reason));
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
        int mi = setting_index(mode_name, strlen(mode_name));
        cfg->check_modes[slot] =
            mi >= 0 ? *(enum check_mode *)(void *)((char *)cfg + settings[mi].offset)
                    : MODE_ENFORCE;
        if (def->configure) {
            reason[0] = 0;
            cfg->check_states[slot] = def->configure(cfg, reason, sizeof(reason));
            if (!cfg->check_states[slot]) {
                /* A reason that starts with a setting's name ("spf_fail_action: ...") gets the
                 * line that setting was written on. */
                const char *colon = strchr(reason, ':');
                int line = 0;
                if (colon && setting_index(reason, (size_t)(colon - reason)) >= 0) {
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
#undef WHERE
    return 0;
}

static void raw_free(struct raw *raw)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        free(raw->value[i]);
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
    struct raw raw;
    memset(&raw, 0, sizeof(raw));
    raw.file = path;
    for (size_t i = 0; i < NSETTINGS; i++)
        raw.value[i] = strdup(settings[i].def);

    struct config_private *cp = calloc(1, sizeof(*cp));
    if (!cp)
        abort();
    cp->pub.refs = 1;
    if (path && config_read_file(path, &raw, err, errlen) != 0)
        goto fail;
    if (config_import_postfix(&raw, cp->postfix_note, sizeof(cp->postfix_note), err, errlen) != 0)
        goto fail;
    config_default_hostnames(&raw);
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (raw.source[i] == SRC_POSTFIX) {
            /* postconf -x already expanded it; keep '$' literal. */
            cp->expanded[i] = strdup(raw.value[i]);
        } else if (config_expand(&raw, i, raw.value[i], 0, &cp->expanded[i], err, errlen) != 0) {
            goto fail;
        }
        cp->source[i] = raw.source[i];
        cp->line[i] = raw.line[i];
        if (config_convert(&cp->pub, &raw, i, cp->expanded[i], err, errlen) != 0)
            goto fail;
    }
    cp->path_copy = path ? strdup(path) : NULL;
    cp->pub.path = cp->path_copy ? cp->path_copy : "built-in defaults";
    cp->pub.postfix_note = cp->postfix_note;
    cp->pub.set_explicitly_user = raw.source[setting_index("user", 4)] == SRC_FILE;
    if (config_compile(cp, &raw, err, errlen) != 0)
        goto fail;
    raw_free(&raw);
    return &cp->pub;
fail:
    raw_free(&raw);
    config_unref(&cp->pub);
    return NULL;
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
        enum setting_type t = settings[i].type;
        if (t == T_STR || t == T_LIST || t == T_ACT)
            free(*(char **)(void *)((char *)cfg + settings[i].offset));
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
        if (cp->source[i] == SRC_FILE && strcmp(cp->expanded[i], settings[i].def) != 0)
            fprintf(fp, "%s =%s%s\n", settings[i].name, *cp->expanded[i] ? " " : "",
                    cp->expanded[i]);
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (cp->source[i] == SRC_POSTFIX && strcmp(cp->expanded[i], settings[i].def) != 0) {
            if (!said_postfix++)
                fprintf(fp, "# imported from Postfix (%s)\n", cfg->postfix_note);
            fprintf(fp, "%s = %s\n", settings[i].name, cp->expanded[i]);
        }
    }
}

int config_source_line(const struct config *cfg, const char *name)
{
    int i = setting_index(name, strlen(name));
    return i < 0 ? 0 : config_priv(cfg)->line[i];
}

const char *config_mode_name(enum check_mode mode)
{
    return mode == MODE_WARN ? "warn" : "enforce";
}
