/*
 * ratelimit_admin.c - the `policyd ratelimit` command (see ratelimit_admin.h). A KEY is either
 * the store's readable key (RULE:KEYNAME:VALUE, as the diagnosis prints it) or a bare value
 * (alice@example.com): a bare value stands for RULE:KEYNAME:VALUE of every configured rule whose
 * key can take such a value (an address, a network, an IP address, a name).
 */
/* SPDX-License-Identifier: MIT */
#include "checks/ratelimit_admin.h"

#include "checks/state.h"
#include "policyd/config.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/units.h"
#include "policyd/lib/xalloc.h"
#include "policyd/store/store.h"
#include "policyd/store/store_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RA_MAX_KEYS 16

static void ra_usage(void)
{
    fprintf(stderr, "usage: policyd -c FILE ratelimit show KEY | top [N] | reset KEY | block KEY "
                    "[DURATION] | unblock KEY\n"
                    "       KEY: RULE:KEYNAME:VALUE (as logged) or a bare VALUE (every rule)\n");
}

/* ra_fits - whether a bare value can be a value of key kind kname: an address for the
 * address keys, an address with a prefix for client_network, an IP address for client_address,
 * a name otherwise. */
static int ra_fits(const char *kname, const char *value)
{
    int has_at = strchr(value, '@') != NULL, has_slash = strchr(value, '/') != NULL;
    int ip = !has_at && !has_slash && strspn(value, "0123456789abcdefABCDEF.:") == strlen(value) &&
             strpbrk(value, ".:") != NULL;
    if (strcmp(kname, "sasl_username") == 0)
        return !has_slash && !ip;
    if (strcmp(kname, "sender") == 0)
        return has_at;
    if (strcmp(kname, "client_network") == 0)
        return has_slash;
    if (strcmp(kname, "client_address") == 0)
        return ip;
    if (strcmp(kname, "policy_context") == 0)
        return 1;
    return !has_at && !has_slash && !ip; /* domains, global */
}

/* ra_keys - the store keys KEY stands for, into keys[] (allocated); their number. */
static size_t ra_keys(const struct config *cfg, const char *key, char **keys)
{
    size_t n = 0;
    char **items = plist_split(cfg->ratelimit_rules);
    for (size_t i = 0; items[i] && n < RA_MAX_KEYS; i++) {
        char name[64] = "", kname[64] = "";
        char *copy = xstrdup(items[i]);
        for (char *save = NULL, *tok = strtok_r(copy, "{} \t", &save); tok;
             tok = strtok_r(NULL, "{} \t", &save)) {
            if (strncmp(tok, "name=", 5) == 0)
                snprintf(name, sizeof(name), "%s", tok + 5);
            else if (strncmp(tok, "key=", 4) == 0)
                snprintf(kname, sizeof(kname), "%s", tok + 4);
        }
        free(copy);
        if (!name[0] || !kname[0])
            continue;
        size_t nl = strlen(name);
        if (strncmp(key, name, nl) == 0 && key[nl] == ':') { /* a readable key of this rule */
            plist_free(items);
            for (size_t k = 0; k < n; k++)
                free(keys[k]);
            keys[0] = xstrdup(key);
            return 1;
        }
        if (ra_fits(kname, key))
            keys[n++] = xasprintf("%s:%s:%s", name, kname, key);
    }
    plist_free(items);
    if (!n)
        keys[n++] = xstrdup(key);
    return n;
}

static void ra_print(const struct store_rl_info *info, const char *key)
{
    printf("%s\n", info->key[0] ? info->key : key);
    if (info->blocked_until > info->now_ms) {
        char until[32];
        units_format_clock(info->blocked_until, until, sizeof(until));
        printf("  blocked until %s\n", until);
    }
    for (int i = 0; i < info->nwindows; i++) {
        const struct store_rl_window *w = &info->w[i];
        char period[32], since[32] = "-";
        units_format_time(w->period_ms, period, sizeof(period));
        if (w->first_ms)
            units_format_clock(w->first_ms, since, sizeof(since));
        printf("  %lld/%lld in %s (since %s)\n", (long long)w->used, (long long)w->limit, period,
               since);
    }
}

int ratelimit_admin_main(const struct config *cfg, int argc, char **argv)
{
    if (argc < 2) {
        ra_usage();
        return 2;
    }
    const char *cmd = argv[1];
    int needs_key = strcmp(cmd, "top") != 0;
    if ((needs_key && argc < 3) || (strcmp(cmd, "block") == 0 ? argc > 4 : argc > 3)) {
        ra_usage();
        return 2;
    }
    struct store_options o;
    state_options(cfg, &o);
    char err[512];
    struct store_admin *a = store_admin_open(&o, err, sizeof(err));
    if (!a) {
        fprintf(stderr, "policyd ratelimit: %s: %s\n", cfg->state_store, err);
        return 1;
    }
    int rc = 0;
    if (strcmp(cmd, "top") == 0) {
        size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 10, count = 0;
        if (!n || n > 10000)
            n = 10;
        struct store_rl_info *out = xcalloc(n, sizeof(*out));
        if (store_admin_top(a, n, out, &count, err, sizeof(err)) != 0) {
            fprintf(stderr, "policyd ratelimit top: %s\n", err);
            rc = 1;
        }
        for (size_t i = 0; i < count; i++)
            ra_print(&out[i], "");
        if (!rc && !count)
            printf("no counters\n");
        free(out);
        store_admin_close(a);
        return rc;
    }
    char *keys[RA_MAX_KEYS];
    size_t nkeys = ra_keys(cfg, argv[2], keys), found = 0;
    long block_ms = 86400000;
    if (strcmp(cmd, "block") == 0 && argc == 4 &&
        (units_parse_time(argv[3], &block_ms) != 0 || block_ms <= 0)) {
        fprintf(stderr, "policyd ratelimit block: '%s' is not a duration (1h, 1d, ...)\n", argv[3]);
        rc = 2;
        goto out;
    }
    for (size_t i = 0; i < nkeys && rc != 2; i++) {
        int r;
        if (strcmp(cmd, "show") == 0) {
            struct store_rl_info info;
            r = store_admin_show(a, keys[i], &info, err, sizeof(err));
            if (r == 1)
                ra_print(&info, keys[i]);
        } else if (strcmp(cmd, "reset") == 0) {
            r = store_admin_reset(a, keys[i], err, sizeof(err));
            if (r == 1)
                printf("%s: reset\n", keys[i]);
        } else if (strcmp(cmd, "block") == 0) {
            r = store_admin_block(a, keys[i], block_ms, err, sizeof(err));
            if (r == 0) {
                r = 1;
                printf("%s: blocked for %lds\n", keys[i], block_ms / 1000);
            }
        } else if (strcmp(cmd, "unblock") == 0) {
            r = store_admin_unblock(a, keys[i], err, sizeof(err));
            if (r == 1)
                printf("%s: unblocked\n", keys[i]);
        } else {
            ra_usage();
            rc = 2;
            break;
        }
        if (r < 0) {
            fprintf(stderr, "policyd ratelimit %s %s: %s\n", cmd, keys[i], err);
            rc = 1;
        } else
            found += (size_t)r;
    }
    if (!rc && !found) {
        fprintf(stderr, "policyd ratelimit %s: no counter for %s\n", cmd, argv[2]);
        rc = 1;
    }
out:
    for (size_t i = 0; i < nkeys; i++)
        free(keys[i]);
    store_admin_close(a);
    return rc;
}
