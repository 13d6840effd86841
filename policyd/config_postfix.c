/*
 * config_postfix.c - the Postfix import stage: the P_ settings policyd.conf does not set are
 * read from Postfix's own main.cf with one `postconf -c DIR -h -x NAME...` (start and reload
 * only, never per request), so policyd and Postfix agree on mynetworks and the domains.
 */
#include "policyd/config_stage.h"

#include "policyd/lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
        raw->value[h] = strdup(host);
    }
    if (!raw->value[d] || !*raw->value[d]) {
        const char *dot = strchr(raw->value[h], '.');
        free(raw->value[d]);
        raw->value[d] = strdup(dot ? dot + 1 : "localdomain");
    }
}
