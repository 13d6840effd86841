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
#include "policyd/mail/dkim_keys.h"
#include "policyd/doctor/doctor.h"
#include "policyd/report/report.h"
#include "policyd/dns/dns.h"
#include "policyd/lib/log.h"
#include "policyd/server.h"
#include "policyd/stats.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
    /* SIGHUP: the new configuration (Postfix import, tables) is loaded in a thread, then handed
     * to the loop through a pipe, so a large table never stalls the requests being served. */
    int reload_pipe[2];
    struct event *reload_ev;
    pthread_t reload_thread;
    int reloading;
    struct config *reload_cfg;
    struct dkim_keys_list *reload_keys; /* the new configuration's DKIM keys, read off the loop */
    char reload_err[2048];
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
                    "       policyd -c FILE doctor [--ip ADDR]... [--domain DOMAIN]... [--json]\n"
                    "                                     check this server's deliverability\n"
                    "       policyd report [--since DURATION] [--json] [FILE...]\n"
                    "                                     summarise refusals from the mail log\n");
    exit(2);
}

/* main_open_log - log as the configuration says; copy to stderr in the foreground on a tty. */
static int main_open_log(const struct config *cfg, int to_stderr, char *err, size_t errlen)
{
    log_set_hostname(cfg->myhostname);
    return log_open(cfg->syslog_name, cfg->syslog_facility, cfg->log_file, to_stderr, err,
                    (unsigned long)errlen);
}

/* main_dns_options - the DNS engine's options from the configuration. */
static struct dns_options main_dns_options(const struct config *cfg)
{
    struct dns_options o = {
        .servers = cfg->dns_servers,
        .timeout_ms = cfg->dns_timeout,
        .tries = (int)cfg->dns_tries,
        .cache_size = (size_t)cfg->dns_cache_size,
        .ttl_min_ms = cfg->dns_ttl_min,
        .ttl_max_ms = cfg->dns_ttl_max,
        .error_ttl_ms = cfg->dns_error_ttl,
    };
    return o;
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

/* main_reload_thread - load and validate the new configuration off the loop. */
static void *main_reload_thread(void *arg)
{
    struct daemon *d = arg;
    d->reload_cfg = config_load(d->config_path, d->reload_err, sizeof(d->reload_err));
    d->reload_keys = d->reload_cfg ? dkim_keys_list_load(d->reload_cfg->dkim_keys,
                                                         d->reload_cfg->opendkim_config)
                                   : NULL;
    if (write(d->reload_pipe[1], "x", 1) != 1) {
        /* the loop would never hear of it: nothing else to do from here */
    }
    return NULL;
}

/* main_reload - SIGHUP: start loading the new file in a thread (one reload at a time). */
static void main_reload(struct daemon *d)
{
    if (d->reloading) {
        log_info("reload already in progress: this SIGHUP is merged into it");
        return;
    }
    d->reloading = 1;
    if (pthread_create(&d->reload_thread, NULL, main_reload_thread, d) != 0) {
        d->reloading = 0;
        stats.reload_failures++;
        log_error("reload refused: cannot start the loader thread; the running configuration "
                  "stays in use");
    }
}

/* main_reload_done - the loader finished: validate the outcome, then swap on the loop. */
static void main_reload_done(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    char byte, err[2048];
    (void)what;
    if (read(fd, &byte, 1) != 1 || !d->reloading)
        return;
    pthread_join(d->reload_thread, NULL);
    d->reloading = 0;
    struct config *old = config_active();
    struct config *cfg = d->reload_cfg;
    d->reload_cfg = NULL;
    if (!cfg) {
        stats.reload_failures++;
        log_error("reload refused: %s; the running configuration stays in use", d->reload_err);
        return; /* (no key list is loaded for a refused configuration) */
    }
    if (strcmp(cfg->listen, old->listen) != 0 || strcmp(cfg->user, old->user) != 0 ||
        strcmp(cfg->listen_owner, old->listen_owner) != 0 ||
        strcmp(cfg->listen_group, old->listen_group) != 0 || cfg->listen_mode != old->listen_mode)
        log_warn("listen, listen_owner/group/mode and user changes take effect only after a "
                 "restart (sockets are bound before privileges are dropped)");
    if (main_open_log(cfg, d->foreground && isatty(2), err, sizeof(err)) != 0)
        log_warn("reload: %s; logging stays where it was", err);
    if (strcmp(cfg->dns_servers, old->dns_servers) != 0 || cfg->dns_timeout != old->dns_timeout ||
        cfg->dns_tries != old->dns_tries || cfg->dns_cache_size != old->dns_cache_size ||
        cfg->dns_ttl_min != old->dns_ttl_min || cfg->dns_ttl_max != old->dns_ttl_max ||
        cfg->dns_error_ttl != old->dns_error_ttl) {
        /* Queries in flight finish on the old settings; new ones use the new at once. */
        struct dns_options dopts = main_dns_options(cfg);
        if (dns_reconfigure(d->dns, &dopts, err, sizeof(err)) != 0)
            log_warn("reload: %s; the DNS settings stay as they were", err);
    }
    config_activate(cfg);
    dkim_keys_reload(d->reload_keys, cfg); /* DKIM key check: the new keys, checked at once */
    d->reload_keys = NULL;
    stats.reloads++;
    log_info("reloaded %s (%s)", d->config_path, cfg->postfix_note);
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
        main_reload(d);
        break;
    case SIGUSR1:
        stats_log();
        main_log_dns_stats(d);
        break;
    case SIGTERM:
    case SIGINT:
        if (d->stop_timer)
            break;
        log_info("stopping on signal %d: no new connections, answering requests in flight",
                 (int)sig);
        long grace = config_active()->request_deadline + 2000;
        struct timeval tv = {grace / 1000, (grace % 1000) * 1000};
        d->stop_timer = evtimer_new(d->base, main_stop_timer_cb, d);
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
    if (d->reloading) {
        pthread_join(d->reload_thread, NULL);
        config_unref(d->reload_cfg);
        dkim_keys_list_free(d->reload_keys);
    }
    if (d->reload_ev)
        event_free(d->reload_ev);
    if (d->reload_pipe[0] > 0) {
        close(d->reload_pipe[0]);
        close(d->reload_pipe[1]);
    }
    log_attach(NULL);
    server_free(d->server);
    dkim_keys_stop(); /* DKIM key check: its lookups go before the DNS engine */
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
    event_config_avoid_method(ec, "epoll");
    d->base = event_base_new_with_config(ec);
    event_config_free(ec);
    struct dns_options dopts = main_dns_options(cfg);
    int rc = 1;
    if (!d->base)
        fprintf(stderr, "policyd: cannot create the event loop\n");
    else if (!(d->dns = dns_new(d->base, &dopts, err, sizeof(err))))
        fprintf(stderr, "policyd: %s\n", err);
    else if (server_stdio(d->base, d->dns, main_stopped, d) != 0)
        fprintf(stderr, "policyd: cannot serve stdin/stdout\n");
    else {
        event_base_dispatch(d->base);
        rc = 0;
    }
    main_cleanup(d);
    return rc;
}

/* main_serve - the daemon: bind, detach, drop privileges, serve until SIGTERM. */
static int main_serve(struct daemon *d, struct config *cfg)
{
    char err[2048];
    struct event *sigev[4] = {NULL, NULL, NULL, NULL};
    int sigs[] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};
    int rc = 1;

    struct dns_options dopts = main_dns_options(cfg);
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
    /* DKIM key check: keys are read before privileges go (they are often root-only). */
    if (dkim_keys_start(d->base, d->dns, cfg) != 0) {
        snprintf(err, sizeof(err), "cannot start the DKIM key check");
        goto fail;
    }
    if (main_drop_privileges(cfg, err, sizeof(err)) != 0)
        goto fail;
    if (pipe2(d->reload_pipe, O_CLOEXEC) != 0 ||
        !(d->reload_ev =
              event_new(d->base, d->reload_pipe[0], EV_READ | EV_PERSIST, main_reload_done, d)) ||
        event_add(d->reload_ev, NULL) != 0) {
        snprintf(err, sizeof(err), "cannot set up reloading: %s", strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < 4; i++) {
        sigev[i] = evsignal_new(d->base, sigs[i], main_signal_cb, d);
        evsignal_add(sigev[i], NULL);
    }
    log_attach(d->base);
    log_info("starting: configuration %s; %s; checks: %s", d->config_path, cfg->postfix_note,
             cfg->checks);
    server_start(d->server);
    event_base_dispatch(d->base);
    stats_log();
    main_log_dns_stats(d);
    log_info("stopped");
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "policyd: %s\n", err);
    log_error("cannot start: %s", err);
out:
    for (size_t i = 0; i < 4; i++)
        if (sigev[i])
            event_free(sigev[i]);
    main_cleanup(d);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = POLICYD_CONFIG;
    int foreground = 0, verbose = 0, test = 0, nondefault = 0, stdio = 0, opt;
    char err[2048];

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
    if (optind != argc && !doctor)
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
    if (main_open_log(cfg, !stdio && foreground && isatty(2), err, sizeof(err)) != 0) {
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
