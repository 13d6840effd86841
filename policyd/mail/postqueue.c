/*
 * postqueue.c - `postqueue -j` through lib/runtool (postqueue.h): the argv and the PATH in one
 * place for the doctor and the queue watcher.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/postqueue.h"

#include "policyd/lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

int postqueue_list(const char *config_dir, size_t out_max, size_t err_max, long timeout_ms,
                   struct runtool_result *res)
{
    const char *argv[5];
    size_t argc = 0;
    argv[argc++] = "postqueue";
    /* -c only for another instance: an unprivileged user may name no other directory than
     * those in alternate_config_directories, and the default needs none. */
    if (config_dir && *config_dir && strcmp(config_dir, "/etc/postfix") != 0) {
        argv[argc++] = "-c";
        argv[argc++] = config_dir;
    }
    argv[argc++] = "-j";
    argv[argc] = NULL;
    /* Where Postfix installs it, also from a cron job's short PATH. */
    const char *env_path = getenv("PATH");
    char *path = xasprintf("%s:/usr/sbin:/usr/local/sbin", env_path ? env_path : "/usr/bin:/bin");
    struct runtool_options opts = {path, out_max, RUNTOOL_STDERR_CAPTURE, err_max, timeout_ms};
    int rc = runtool_run(argv, &opts, res);
    free(path);
    return rc;
}
