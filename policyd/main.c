/*
 * main.c - command line, start-up, privileges, signals and the event loop.
 *
 *   policyd [-c FILE] [-f] [-v]   run (-f: foreground, as systemd wants; -v: log every decision)
 *   policyd -c FILE -t            check the configuration: "FILE:LINE: reason", exit 1
 *   policyd -c FILE -n            print the settings that differ from the defaults
 *   policyd -c FILE -S            serve one connection on stdin/stdout (Postfix spawn(8), tests)
 *   policyd -V                    print the version
 *
 * Order matters: load and validate the configuration (which checks that `user` can read every
 * file it names), open the log (a new file is given to `user`), take the sockets systemd passed
 * (socket activation), bind the others and the metrics socket, write the pid file, drop
 * privileges (and say which files the user cannot remove at the stop), then serve and tell
 * systemd READY=1. SIGHUP reloads (a bad file keeps the running configuration) and reopens the
 * log file; SIGTERM stops accepting and answers every request already sent, within the drain
 * deadline (request_deadline + 2 s); SIGUSR1 logs the counters; systemd hears of each
 * (policyd/notify.c).
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/activation.h"
#include "policyd/config.h"
#include "checks/ratelimit_admin.h"
#include "checks/state.h"
#include "policyd/doctor/doctor.h"
#include "policyd/report/report.h"
#include "policyd/dns/dns.h"
#include "policyd/evaluate.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/metrics.h"
#include "policyd/notify.h"
#include "policyd/queue_watch.h"
#include "policyd/reload.h"
#include "policyd/server.h"
#include "policyd/stats.h"
#include "policyd/version.h"
#include "checks/registry.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef POLICYD_CONFIG
#define POLICYD_CONFIG "/etc/policyd/policyd.conf"
#endif

struct daemon {
    struct event_base *base;
    struct reload *reload; /* SIGHUP */
    struct dns *dns;
    struct server *server;
    struct metrics *metrics;   /* NULL: metrics_listen empty, or its default address taken */
    struct queue_watch *queue; /* Postfix's deferred queue, watched */
    struct notify *notify;     /* systemd's watchdog */
    const char *config_path;
    char *pid_file; /* written by us: removed at exit where we may */
    int foreground;
    struct event *stop_timer;
};

static void main_usage(void)
{
    fprintf(stderr, "usage: policyd [-c FILE] [-f] [-v]   run the daemon\n"
                    "       policyd -c FILE -t            check the configuration\n"
                    "       policyd -c FILE -n            print settings that differ from "
                    "defaults\n"
                    "       policyd -c FILE -S            serve one connection on stdin/stdout\n"
                    "       policyd -V                    print the version\n"
                    "       policyd -c FILE doctor [--ip ADDR]... [--domain DOMAIN]... [--section "
                    "NAME]... [--json]\n"
                    "                                     check this server's deliverability\n"
                    "       policyd -c FILE ratelimit show KEY | top [N] | reset KEY | block KEY "
                    "[DURATION] | unblock KEY\n"
                    "                                     see and change rate-limit counters\n"
                    "       policyd report [--since DURATION] [--json] [FILE...]\n"
                    "                                     summarise refusals from the mail log\n");
    exit(2);
}

/* main_drop_privileges - become cfg->user; root only when written explicitly. 0 / -1. */
static int main_drop_privileges(const struct config *cfg, char *err, size_t errlen)
{
    if (geteuid() != 0) {
        struct passwd *me = getpwuid(geteuid());
        if (me && strcmp(me->pw_name, cfg->user) != 0)
            log_info("not started as root: running as %s, not switching to user %s", me->pw_name,
                     cfg->user);
        return 0;
    }
    if (strcmp(cfg->user, "root") == 0) {
        if (!cfg->set_explicitly_user) {
            snprintf(err, errlen, "%s: refusing to run as root unless 'user = root' is written",
                     cfg->path);
            return -1;
        }
        log_warn("running as root (user = root in %s)", cfg->path);
        return 0;
    }
    struct passwd *pw = getpwnam(cfg->user);
    if (!pw) {
        snprintf(err, errlen,
                 "%s: user '%s' does not exist: create it (useradd --system --no-create-home "
                 "--shell /usr/sbin/nologin %s) or write 'user = root' to run as root",
                 cfg->path, cfg->user, cfg->user);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || initgroups(pw->pw_name, pw->pw_gid) != 0 ||
        setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "cannot switch to user %s: %s", cfg->user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        snprintf(err, errlen, "still able to become root after switching to %s", cfg->user);
        return -1;
    }
    return 0;
}

/* main_log_dns_stats - the DNS engine's counters in one line. */
static void main_log_dns_stats(const struct daemon *d)
{
    char line[1024];
    if (!d->dns)
        return;
    log_info("dns statistics: %s", dns_stats_format(d->dns, line, sizeof(line)));
}

/* main_log_more_stats - the DNS engine's and the state stores' counters. */
static void main_log_more_stats(const struct daemon *d)
{
    main_log_dns_stats(d);
    state_log_stats();
}

static void main_stopped(void *arg)
{
    struct daemon *d = arg;
    event_base_loopexit(d->base, NULL);
}

static void main_stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    log_warn("connections still open after the grace period: exiting");
    event_base_loopexit(d->base, NULL);
}

static void main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    (void)what;

    switch (sig) {
    case SIGHUP:
        reload_request(d->reload);
        break;
    case SIGUSR1:
        stats_log();
        main_log_more_stats(d);
        break;
    case SIGTERM:
    case SIGINT:
        if (d->stop_timer)
            break;
        log_info("stopping on signal %d: no new connections; answering every request already "
                 "sent, those waiting in the listen queue included",
                 (int)sig);
        notify_stopping("stopping on signal %d: answering the requests in flight", (int)sig);
        metrics_stopping(d->metrics);
        long grace = config_active()->request_deadline + 2000;
        struct timeval tv = {grace / 1000, (grace % 1000) * 1000};
        if (!(d->stop_timer = evtimer_new(d->base, main_stop_timer_cb, d)))
            xalloc_fail(0);
        evtimer_add(d->stop_timer, &tv);
        server_shutdown(d->server, main_stopped, d);
        break;
    }
}

/* main_daemonize - detach from the terminal (without -f). 0 / -1. */
static int main_daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0)
        _exit(0);
    setsid();
    if (chdir("/") != 0)
        return -1;
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    return 0;
}

static int main_write_pidfile(const char *path)
{
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    fprintf(fp, "%ld\n", (long)getpid());
    return fclose(fp);
}

/* main_remove_pidfile - remove the pid file at exit if it still names this process. */
static void main_remove_pidfile(const char *path)
{
    char buf[32];
    FILE *fp = path && *path ? fopen(path, "r") : NULL;
    if (!fp)
        return;
    int ours = fgets(buf, sizeof(buf), fp) && atol(buf) == (long)getpid();
    fclose(fp);
    if (ours)
        unlink(path);
}

/* main_removable - 1 if this process (after the privilege drop) may remove path: the
 * directory is writable and searchable, and not sticky unless we own the file or directory. */
static int main_removable(const char *path)
{
    char dir[4096];
    struct stat dst, fst;
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (access(dir, W_OK | X_OK) != 0 || stat(dir, &dst) != 0)
        return 0;
    if (!(dst.st_mode & S_ISVTX) || dst.st_uid == geteuid())
        return 1;
    return lstat(path, &fst) == 0 && fst.st_uid == geteuid();
}

/* main_say_leftovers - after the privilege drop: say once which of the socket files and the
 * pid file will stay behind when the daemon stops, and how to avoid it. */
static void main_say_leftovers(const struct daemon *d, const struct config *cfg)
{
    const char *paths[16];
    char list[2048] = "";
    size_t n = server_socket_files(d->server, paths, 15), used = 0;
    if (*cfg->pid_file)
        paths[n++] = cfg->pid_file;
    for (size_t i = 0; i < n; i++) {
        if (main_removable(paths[i]))
            continue;
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", paths[i]);
        if (w > 0 && (size_t)w < sizeof(list) - used)
            used += (size_t)w;
    }
    if (!used)
        return;
    struct passwd *me = getpwuid(geteuid());
    log_info("%s will stay behind when policyd stops: user %s may not remove files in their "
             "directory; to have them removed, put them in a directory owned by %s (with "
             "systemd: RuntimeDirectory=policyd, then listen = unix:/run/policyd/policyd.sock, "
             "pid_file = /run/policyd/policyd.pid); a leftover socket is replaced at the next "
             "start",
             list, me ? me->pw_name : cfg->user, me ? me->pw_name : cfg->user);
}

/* main_cleanup - free what main_serve / main_serve_stdio built (each part may be NULL). */
static void main_cleanup(struct daemon *d)
{
    reload_free(d->reload);
    metrics_free(d->metrics);
    queue_watch_free(d->queue);
    notify_free(d->notify);
    log_attach(NULL);
    server_free(d->server);
    evaluate_stop_checks(config_active()); /* the checks' lookups go before the DNS engine */
    dns_free(d->dns);
    if (d->stop_timer)
        event_free(d->stop_timer);
    config_activate(NULL);
    if (d->base)
        event_base_free(d->base);
    free(d->pid_file);
    d->pid_file = NULL;
}

/* main_serve_stdio - -S: one connection on stdin/stdout, no listeners, no privilege change. */
static int main_serve_stdio(struct daemon *d, struct config *cfg)
{
    char err[1024];
    /* stdin may be a regular file or a pipe: poll handles both, epoll not files. */
    struct event_config *ec = event_config_new();
    if (!ec)
        xalloc_fail(0);
    event_config_avoid_method(ec, "epoll");
    d->base = event_base_new_with_config(ec);
    event_config_free(ec);
    struct dns_options dopts = reload_dns_options(cfg);
    if (!d->base)
        log_fatal("cannot start: cannot create the event loop");
    if (!(d->dns = dns_new(d->base, &dopts, err, sizeof(err))))
        log_fatal("cannot start: %s", err);
    if (evaluate_start_checks(cfg, NULL, d->base, d->dns, err, sizeof(err)) != 0)
        log_fatal("cannot start: %s", err);
    server_stdio(d->base, d->dns, main_stopped, d);
    event_base_dispatch(d->base);
    main_cleanup(d);
    return 0;
}

/* main_reloaded - a reload made cfg active: the parts that follow settings follow it. */
static void main_reloaded(void *arg, const struct config *cfg)
{
    struct daemon *d = arg;
    queue_watch_configure(d->queue, cfg);
}

/* main_metrics - serve metrics_listen (a socket systemd passed for it, or our own). An address
 * written in the file that cannot be served stops the start; the default one only warns (a
 * second instance on the host finds it taken). 0 / -1 with a reason. */
static int main_metrics(struct daemon *d, const struct config *cfg, int fd, char *err,
                        size_t errlen)
{
    if (!*cfg->metrics_listen)
        return 0;
    d->metrics = metrics_new(d->base, cfg->metrics_listen, fd, d->dns, d->queue, err, errlen);
    if (d->metrics) {
        log_info("metrics on %s (GET /metrics, GET /health)", cfg->metrics_listen);
        return 0;
    }
    if (config_source_line(cfg, "metrics_listen") > 0) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (metrics_listen; empty turns metrics off)");
        return -1;
    }
    log_warn("no metrics: %s (the default metrics_listen; write another address, or an empty "
             "one for none)",
             err);
    return 0;
}

/* main_serve - the daemon: bind, detach, drop privileges, serve until SIGTERM. */
static int main_serve(struct daemon *d, struct config *cfg)
{
    char err[2048];
    struct event *sigev[4] = {NULL, NULL, NULL, NULL};
    int sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};

    struct dns_options dopts = reload_dns_options(cfg);
    stats.started = stats.last_reload_ok = (long long)time(NULL);
    if (!(d->base = event_base_new())) {
        snprintf(err, sizeof(err), "cannot create the event loop");
        goto fail;
    }
    if (!(d->dns = dns_new(d->base, &dopts, err, sizeof(err))))
        goto fail;
    if (activation_take(err, sizeof(err)) < 0)
        goto fail;
    /* the metrics socket systemd may pass first: every other passed socket is a policy one */
    int metrics_fd = *cfg->metrics_listen ? activation_claim(cfg->metrics_listen) : -1;
    if (!(d->server = server_new(d->base, d->dns, cfg, err, sizeof(err)))) {
        if (metrics_fd >= 0)
            close(metrics_fd);
        goto fail;
    }
    d->queue = queue_watch_new(d->base);
    if (main_metrics(d, cfg, metrics_fd, err, sizeof(err)) != 0)
        goto fail;
    if (!d->foreground && (main_daemonize() != 0 || event_reinit(d->base) != 0)) {
        snprintf(err, sizeof(err), "cannot detach from the terminal: %s", strerror(errno));
        goto fail;
    }
    if (*cfg->pid_file && main_write_pidfile(cfg->pid_file) != 0)
        log_warn("cannot write pid file %s: %s", cfg->pid_file, strerror(errno));
    else if (*cfg->pid_file)
        d->pid_file = xstrdup(cfg->pid_file); /* cfg goes at the first reload */
    /* The checks' timers and lookups; their files were read before privileges go. */
    if (evaluate_start_checks(cfg, NULL, d->base, d->dns, err, sizeof(err)) != 0)
        goto fail;
    if (main_drop_privileges(cfg, err, sizeof(err)) != 0)
        goto fail;
    main_say_leftovers(d, cfg);
    if (!(d->reload = reload_new(d->base, d->dns, d->config_path, d->foreground && isatty(2), err,
                                 sizeof(err))))
        goto fail;
    for (size_t i = 0; i < 4; i++) {
        if (!(sigev[i] = evsignal_new(d->base, sigs[i], main_signal_cb, d)))
            xalloc_fail(0);
        evsignal_add(sigev[i], NULL);
    }
    reload_set_hook(d->reload, main_reloaded, d);
    queue_watch_configure(d->queue, cfg);
    d->notify = notify_new(d->base);
    log_attach(d->base);
    log_info("starting policyd %s: configuration %s; %s; checks: %s", POLICYD_VERSION,
             d->config_path, cfg->postfix_note, cfg->checks);
    server_start(d->server);
    notify_ready("serving; configuration %s; checks: %s", d->config_path, cfg->checks);
    event_base_dispatch(d->base);
    stats_log();
    main_log_more_stats(d);
    log_info("stopped");
    for (size_t i = 0; i < 4; i++) {
        event_free(sigev[i]);
        signal(sigs[i], SIG_IGN); /* a late signal must not turn a clean exit into a kill */
    }
    main_remove_pidfile(d->pid_file);
    main_cleanup(d);
    return 0;
fail:
    main_cleanup(d); /* the sockets bound so far go; no signal event exists yet */
    log_fatal("cannot start: %s", err);
}

int main(int argc, char **argv)
{
    const char *path = POLICYD_CONFIG;
    int foreground = 0, verbose = 0, test = 0, nondefault = 0, stdio = 0, opt;
    char err[2048];

    config_use_checks(registry_find, registry_names);
    while ((opt = getopt(argc, argv, "+c:fvtnSVh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'f':
            foreground = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 't':
            test = 1;
            break;
        case 'n':
            nondefault = 1;
            break;
        case 'S':
            stdio = 1;
            break;
        case 'V':
            printf("policyd %s\n", POLICYD_VERSION);
            return 0;
        default:
            main_usage();
        }
    }
    if (optind < argc && strcmp(argv[optind], "report") == 0)
        return report_main(argc - optind, argv + optind); /* reads logs: no configuration */
    int doctor = optind < argc && strcmp(argv[optind], "doctor") == 0;
    int ratelimit = optind < argc && strcmp(argv[optind], "ratelimit") == 0;
    if (optind != argc && !doctor && !ratelimit)
        main_usage();
    signal(SIGPIPE, SIG_IGN);

    /* The doctor and -n report; start and -t refuse files `user` could not read. */
    config_set_file_check(!doctor && !nondefault);
    struct config *cfg = config_load(path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (test) {
        config_unref(cfg);
        return 0;
    }
    if (ratelimit) {
        int rrc = ratelimit_admin_main(cfg, argc - optind, argv + optind);
        config_unref(cfg);
        return rrc;
    }
    if (doctor) {
        int drc = doctor_main(cfg, argc - optind, argv + optind);
        config_unref(cfg);
        return drc;
    }
    if (nondefault) {
        config_print_nondefault(cfg, stdout);
        config_unref(cfg);
        return 0;
    }
    log_set_verbose(verbose);
    if (!stdio && geteuid() == 0 && strcmp(cfg->user, "root") != 0) {
        /* The log file must stay writable after the privilege drop (SIGHUP reopens it). */
        struct passwd *pw = getpwnam(cfg->user);
        if (pw)
            log_set_owner((long)pw->pw_uid, (long)pw->pw_gid);
    }
    if (reload_open_log(cfg, !stdio && foreground && isatty(2), err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", path, err);
        config_unref(cfg);
        return 1;
    }
    config_activate(cfg);

    struct daemon d;
    memset(&d, 0, sizeof(d));
    d.config_path = path;
    d.foreground = foreground;
    int rc = stdio ? main_serve_stdio(&d, cfg) : main_serve(&d, cfg);
    log_flush();
    return rc;
}
