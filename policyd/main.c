/*
 * main.c - command line, start-up, privileges, signals and the event loop.
 *
 *   policyd [-c FILE] [-f] [-v]   run (-f: foreground, as systemd wants; -v: log every decision)
 *   policyd -c FILE -t            check the configuration: "FILE:LINE: reason", exit 1
 *   policyd -c FILE -n            print the settings that differ from the defaults
 *   policyd -c FILE -S            serve one connection on stdin/stdout (Postfix spawn(8), tests)
 *
 * Order matters: load and validate the configuration, bind the sockets, write the pid file,
 * drop privileges, then serve. SIGHUP reloads (a bad file keeps the running configuration),
 * SIGTERM stops accepting and lets in-flight requests finish, SIGUSR1 logs the counters.
 */
#include "policyd/config.h"
#include "checks/ratelimit_admin.h"
#include "checks/state.h"
#include "policyd/doctor/doctor.h"
#include "policyd/report/report.h"
#include "policyd/dns/dns.h"
#include "policyd/evaluate.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/reload.h"
#include "policyd/server.h"
#include "policyd/stats.h"
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
#include <unistd.h>

#ifndef POLICYD_CONFIG
#define POLICYD_CONFIG "/etc/policyd/policyd.conf"
#endif

struct daemon {
    struct event_base *base;
    struct reload *reload; /* SIGHUP */
    struct dns *dns;
    struct server *server;
    const char *config_path;
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
        log_info("stopping on signal %d: no new connections, answering requests in flight",
                 (int)sig);
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

/* main_cleanup - free what main_serve / main_serve_stdio built (each part may be NULL). */
static void main_cleanup(struct daemon *d)
{
    reload_free(d->reload);
    log_attach(NULL);
    server_free(d->server);
    evaluate_stop_checks(config_active()); /* the checks' lookups go before the DNS engine */
    dns_free(d->dns);
    if (d->stop_timer)
        event_free(d->stop_timer);
    config_activate(NULL);
    if (d->base)
        event_base_free(d->base);
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

/* main_serve - the daemon: bind, detach, drop privileges, serve until SIGTERM. */
static int main_serve(struct daemon *d, struct config *cfg)
{
    char err[2048];
    struct event *sigev[4] = {NULL, NULL, NULL, NULL};
    int sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};

    struct dns_options dopts = reload_dns_options(cfg);
    if (!(d->base = event_base_new())) {
        snprintf(err, sizeof(err), "cannot create the event loop");
        goto fail;
    }
    if (!(d->dns = dns_new(d->base, &dopts, err, sizeof(err))))
        goto fail;
    if (!(d->server = server_new(d->base, d->dns, cfg, err, sizeof(err))))
        goto fail;
    if (!d->foreground && (main_daemonize() != 0 || event_reinit(d->base) != 0)) {
        snprintf(err, sizeof(err), "cannot detach from the terminal: %s", strerror(errno));
        goto fail;
    }
    if (*cfg->pid_file && main_write_pidfile(cfg->pid_file) != 0)
        log_warn("cannot write pid file %s: %s", cfg->pid_file, strerror(errno));
    if (evaluate_start_checks(cfg, NULL, d->base, d->dns, err, sizeof(err)) != 0)
        goto fail;
    if (main_drop_privileges(cfg, err, sizeof(err)) != 0)
        goto fail;
    if (!(d->reload = reload_new(d->base, d->dns, d->config_path, d->foreground && isatty(2), err,
                                 sizeof(err))))
        goto fail;
    for (size_t i = 0; i < 4; i++) {
        if (!(sigev[i] = evsignal_new(d->base, sigs[i], main_signal_cb, d)))
            xalloc_fail(0);
        evsignal_add(sigev[i], NULL);
    }
    log_attach(d->base);
    log_info("starting: configuration %s; %s; checks: %s", d->config_path, cfg->postfix_note,
             cfg->checks);
    server_start(d->server);
    event_base_dispatch(d->base);
    stats_log();
    main_log_more_stats(d);
    log_info("stopped");
    for (size_t i = 0; i < 4; i++)
        event_free(sigev[i]);
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
    while ((opt = getopt(argc, argv, "+c:fvtnSh")) != -1) {
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
