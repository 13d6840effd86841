/*
 * config_postfix.c - the Postfix import stage: the P_ settings policyd.conf does not set are
 * read from Postfix's own main.cf with one `postconf -c DIR -h -x NAME...` (start and reload
 * only, never per request), so policyd and Postfix agree on mynetworks and the domains.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/config_stage.h"

#include "policyd/lib/runtool.h"
#include "policyd/lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int config_postfix_import(struct raw *raw, char *note, size_t notelen, char *err, size_t errlen)
{
    int idx = config_settings_index("postfix_config_directory", strlen("postfix_config_directory"));
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
        if (config_settings[i].from_postfix && raw->source[i] != SRC_FILE) {
            argv[argc++] = config_settings[i].name;
            want[nwant++] = i;
        }
    }
    argv[argc] = NULL;
    if (nwant == 0) {
        snprintf(note, notelen, "every Postfix setting is set in policyd.conf");
        return 0;
    }
    /* One process at start and reload (a thread on reload), bounded in time and output:
     * a hung postconf cannot hold a reload forever. */
    struct runtool_options ro = {.path = getenv("PATH") ? NULL : "/usr/sbin:/usr/bin:/sbin:/bin",
                                 .out_max = 1024 * 1024,
                                 .err_mode = RUNTOOL_STDERR_CAPTURE,
                                 .err_max = 511,
                                 .timeout_ms = 30000};
    struct runtool_result res;
    int status = runtool_run(argv, &ro, &res);
    if (status < 0 && res.end == RUNTOOL_NOT_FOUND) {
        /* PATH may lack /usr/sbin (cron, systemd user units): Postfix puts postconf there. */
        ro.path = "/usr/sbin:/usr/local/sbin";
        runtool_result_free(&res);
        status = runtool_run(argv, &ro, &res);
    }
    if (status < 0 && res.end == RUNTOOL_NOT_FOUND) {
        runtool_result_free(&res);
        snprintf(note, notelen, "postconf is not installed: Postfix settings not imported");
        return 0;
    }
    size_t got = 0;
    /* postconf -h prints one line per name, in order; empty values are empty lines. */
    for (char *p = res.out, *nl; got < nwant && p < res.out + res.outlen; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(res.out + res.outlen - p));
        if (!nl)
            break;
        *nl = 0;
        size_t i = want[got++];
        free(raw->value[i]);
        raw->value[i] = xstrdup(p);
        raw->source[i] = SRC_POSTFIX;
    }
    if (status != 0 || got != nwant || res.out_truncated) {
        char how[128], *e = res.err;
        size_t elen = res.errlen;
        while (elen > 0 && e[elen - 1] == '\n')
            e[--elen] = 0;
        snprintf(err, errlen, "%s: postconf failed: %s", maincf,
                 *e            ? e
                 : status != 0 ? runtool_describe(&res, how, sizeof(how))
                               : "unexpected output");
        runtool_result_free(&res);
        return -1;
    }
    runtool_result_free(&res);
    snprintf(note, notelen, "imported %zu Postfix settings from %s", nwant, maincf);
    return 0;
}

void config_postfix_hostnames(struct raw *raw)
{
    int h = config_settings_index("myhostname", 10), d = config_settings_index("mydomain", 8);
    if (!raw->value[h] || !*raw->value[h]) {
        char host[256] = "localhost";
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = 0;
        if (!strchr(host, '.'))
            strncat(host, ".localdomain", sizeof(host) - strlen(host) - 1);
        free(raw->value[h]);
        raw->value[h] = xstrdup(host);
    }
    if (!raw->value[d] || !*raw->value[d]) {
        const char *dot = strchr(raw->value[h], '.');
        free(raw->value[d]);
        raw->value[d] = xstrdup(dot ? dot + 1 : "localdomain");
    }
}
