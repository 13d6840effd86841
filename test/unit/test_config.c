/*
 * test_config.c - configuration values, lists, and the shipped etc/policyd.conf: every
 * setting in policyd/settings.def is documented there with its default.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/config.h"
#include "unit.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/units.h"
#include "checks/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void test_values(void)
{
    long ms;
    size_t bytes;
    CHECK(units_parse_time("10s", &ms) == 0 && ms == 10000);
    CHECK(units_parse_time("10", &ms) == 0 && ms == 10000);
    CHECK(units_parse_time("250ms", &ms) == 0 && ms == 250);
    CHECK(units_parse_time("1.5s", &ms) == 0 && ms == 1500);
    CHECK(units_parse_time("5m", &ms) == 0 && ms == 300000);
    CHECK(units_parse_time("1d", &ms) == 0 && ms == 86400000);
    CHECK(units_parse_time("1w", &ms) == 0 && ms == 604800000);
    CHECK(units_parse_time("-1s", &ms) == -1);
    CHECK(units_parse_time("s", &ms) == -1);
    CHECK(units_parse_time("10 s", &ms) == -1);
    CHECK(units_parse_time("10x", &ms) == -1);
    CHECK(units_parse_size("4096", &bytes) == 0 && bytes == 4096);
    CHECK(units_parse_size("64k", &bytes) == 0 && bytes == 65536);
    CHECK(units_parse_size("10M", &bytes) == 0 && bytes == 10485760);
    CHECK(units_parse_size("1g", &bytes) == 0 && bytes == 1073741824);
    CHECK(units_parse_size("1kb", &bytes) == 0 && bytes == 1024);
    CHECK(units_parse_size("1x", &bytes) == -1);
    CHECK(units_parse_size("k", &bytes) == -1);
    CHECK(units_parse_size("99999999999999999999", &bytes) == -1);
    char text[64];
    CHECK(strcmp(units_format_time(86400000, text, sizeof(text)), "1d") == 0);
    CHECK(strcmp(units_format_time(7200000, text, sizeof(text)), "2h") == 0);
    CHECK(strcmp(units_format_time(600000, text, sizeof(text)), "10m") == 0);
    CHECK(strcmp(units_format_time(90000, text, sizeof(text)), "90s") == 0);
    CHECK(strcmp(units_format_time(250, text, sizeof(text)), "250ms") == 0);
    CHECK(strcmp(units_format_time(0, text, sizeof(text)), "0s") == 0);
    CHECK(units_parse_time(units_format_time(5400000, text, sizeof(text)), &ms) == 0 &&
          ms == 5400000); /* 90m reads back */
    setenv("TZ", "UTC", 1);
    tzset();
    CHECK(strcmp(units_format_clock(1765125538000LL, text, sizeof(text)), "2025-12-07 16:38:58") ==
          0);
    static const struct {
        unsigned long long n;
        const char *want;
    } uints[] = {{0, "0"},
                 {7, "7"},
                 {255, "255"},
                 {1000, "1000"},
                 {18446744073709551615ULL, "18446744073709551615"}};
    for (size_t i = 0; i < sizeof(uints) / sizeof(uints[0]); i++) {
        *units_put_uint(text, uints[i].n) = 0;
        CHECK_STR(text, uints[i].want);
    }

    CHECK(plist_contains("relay, rdns ratelimit", "ratelimit") == 1);
    CHECK(plist_contains("relay, RDNS", "rdns") == 1);
    CHECK(plist_contains("relay, ratelimit2", "ratelimit") == 0);
    CHECK(plist_contains("", "relay") == 0);
    char **v = plist_split(" a, b  c,,d inline:{ x=1, y=2 } ,");
    CHECK(v[0] && strcmp(v[0], "a") == 0);
    CHECK(v[1] && strcmp(v[1], "b") == 0);
    CHECK(v[2] && strcmp(v[2], "c") == 0);
    CHECK(v[3] && strcmp(v[3], "d") == 0);
    CHECK(v[4] && strcmp(v[4], "inline:{ x=1, y=2 }") == 0);
    CHECK(v[4] && v[5] == NULL);
    plist_free(v);
}

static void test_defaults(void)
{
    char err[1024];
    struct config *cfg = config_load(NULL, err, sizeof(err));
    /* No file: built-in defaults (and /etc/postfix if present on this machine). */
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    CHECK(cfg->request_deadline == 10000);
    CHECK(cfg->max_line_length == 8192);
    CHECK_STR(cfg->fallback_action, "DUNNO");
    CHECK_STR(cfg->relay_action, "554 5.7.1 Relay access denied");
    CHECK(cfg->relay_mode == MODE_ENFORCE);
    CHECK(cfg->check_count == 1);
    CHECK(cfg->listen_mode == 0666);
    config_unref(cfg);
}

/* test_shipped_conf - every setting documented in etc/policyd.conf with its default. */
static void test_shipped_conf(void)
{
    FILE *def = fopen("policyd/settings.def", "r");
    FILE *conf = fopen("etc/policyd.conf", "r");
    CHECK(def && conf);
    if (!def || !conf)
        return;
    static char text[200000];
    size_t n = fread(text, 1, sizeof(text) - 1, conf);
    text[n] = 0;
    char line[1024];
    int settings = 0;
    while (fgets(line, sizeof(line), def)) {
        char name[128], value[512];
        if (sscanf(line, "%*1[SP]_%*[A-Z](%127[a-z0-9_], \"%511[^\"]\"", name, value) == 2 ||
            (sscanf(line, "%*1[SP]_%*[A-Z](%127[a-z0-9_], \"\"", name) == 1 && !(value[0] = 0))) {
            char want[800];
            snprintf(want, sizeof(want), "\n#%s =%s%s\n", name, value[0] ? " " : "", value);
            settings++;
            if (!strstr(text, want)) {
                fprintf(stderr, "etc/policyd.conf lacks: %s", want + 1);
                CHECK(!"setting documented in etc/policyd.conf");
            } else {
                CHECK(1);
            }
        }
    }
    CHECK(settings > 30);
    fclose(def);
    fclose(conf);
    char err[1024];
    struct config *cfg = config_load("etc/policyd.conf", err, sizeof(err));
    CHECK(cfg != NULL);
    if (!cfg)
        fprintf(stderr, "etc/policyd.conf: %s\n", err);
    config_unref(cfg);
}

/* load_text - config_load on a temporary file holding text; err gets the refusal. */
static struct config *load_text(const char *text, char *path, size_t pathlen, char *err,
                                size_t errlen)
{
    snprintf(path, pathlen, "/tmp/test_config.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "postfix_config_directory =\n%s", text);
    fclose(fp);
    struct config *cfg = config_load(path, err, errlen);
    unlink(path);
    return cfg;
}

/* test_bounds - one table holds the bounds: every default inside, values outside refused with
 * FILE:LINE and the range; and the reload classes tell what a reload changes. */
static void test_bounds(void)
{
    char err[1024], path[64], want[256];
    CHECK(config_bounds_valid(err, sizeof(err)) == 0);
    struct config *cfg =
        load_text("request_deadline = 95s\n", path, sizeof(path), err, sizeof(err));
    CHECK(cfg == NULL);
    snprintf(want, sizeof(want), "%s:2: request_deadline: '95s' is out of range (100ms to 90s)",
             path);
    CHECK_STR(err, want);
    cfg = load_text("\nmax_pending_per_connection = 0\n", path, sizeof(path), err, sizeof(err));
    CHECK(cfg == NULL);
    snprintf(want, sizeof(want),
             "%s:3: max_pending_per_connection: '0' is out of range (1 to 10000)", path);
    CHECK_STR(err, want);
    cfg = load_text("max_line_length = 32\n", path, sizeof(path), err, sizeof(err));
    CHECK(cfg == NULL && strstr(err, ":2: max_line_length: '32' is out of range (64 to 1m)"));
    cfg =
        load_text("dns_tries = 10\nmax_request_size = 16m\n", path, sizeof(path), err, sizeof(err));
    CHECK(cfg != NULL); /* the bounds themselves are allowed */
    struct config *b =
        load_text("dns_tries = 3\nlisten = inet:127.0.0.1:10099\nidle_timeout = 9s\n", path,
                  sizeof(path), err, sizeof(err));
    CHECK(b != NULL);
    if (cfg && b) {
        char changed[256];
        CHECK(config_changed(cfg, b, R_DNS, changed, sizeof(changed)) == 1);
        CHECK_STR(changed, "dns_tries");
        CHECK(config_changed(cfg, b, R_RESTART, changed, sizeof(changed)) == 1);
        CHECK_STR(changed, "listen");
        CHECK(config_changed(cfg, b, R_LIVE, changed, sizeof(changed)) == 1);
        CHECK_STR(changed, "idle_timeout, max_request_size");
        CHECK(config_changed(cfg, cfg, R_LIVE, changed, sizeof(changed)) == 0);
        CHECK_STR(changed, "");
    }
    config_unref(cfg);
    config_unref(b);
}

int main(void)
{
    config_use_checks(registry_find, registry_names);
    test_bounds();
    test_values();
    test_defaults();
    test_shipped_conf();
    return UNIT_END();
}
