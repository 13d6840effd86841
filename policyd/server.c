/*
 * server.c - bind listeners, accept connections, track sessions, shut down gracefully.
 *
 * We create and bind the sockets ourselves (libevent's evconnlistener takes them already
 * listening) so that unix sockets can be checked for staleness, given owner/group/mode before
 * privileges are dropped, and refused when another daemon is alive on them. Connections are
 * counted; at max_connections the listeners are disabled until one closes. Sockets passed by
 * systemd (policyd/activation.c) are used as they are, never bound nor unlinked: for an entry
 * of `listen` with the same address, and the rest beside; with `listen` left at its default,
 * the passed sockets alone.
 */
#include "policyd/server.h"

#include "policyd/activation.h"
#include "policyd/config.h"
#include "policyd/lib/log.h"
#include "policyd/session.h"
#include "policyd/stats.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/endpoint.h"
#include "policyd/lib/xalloc.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct conn {
    struct server *srv;
    struct session *session;
    struct conn *prev, *next;
};

struct listener {
    struct server *srv;
    struct evconnlistener *evl;
    char name[160];  /* "unix:/path" or "inet:127.0.0.1:10031" */
    char *unix_path; /* set for unix sockets we created */
    ino_t unix_ino;
};

struct server {
    struct event_base *base;
    struct dns *dns;
    struct listener *listeners;
    size_t nlisteners;
    struct conn *conns;
    size_t nconns;
    int paused;
    int shutting_down;
    struct event *resume_timer;
    struct event *done_event;
    void (*done)(void *arg);
    void *done_arg;
};

/* server_bind_unix - bind a unix socket, replacing a stale file, refusing a live socket. */
static int server_bind_unix(int fd, const struct sockaddr_un *sun, char *err, size_t errlen)
{
    if (bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0)
        return 0;
    if (errno != EADDRINUSE) {
        snprintf(err, errlen, "unix:%s: bind: %s", sun->sun_path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(sun->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "unix:%s exists and is not a socket: not replacing it",
                 sun->sun_path);
        return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int live = connect(probe, (const struct sockaddr *)sun, sizeof(*sun)) == 0 || errno == EAGAIN;
    int why = errno;
    close(probe);
    if (live) {
        snprintf(err, errlen,
                 "unix:%s: another process is accepting connections on it (is policyd already "
                 "running?)",
                 sun->sun_path);
        return -1;
    }
    if (why != ECONNREFUSED) {
        snprintf(err, errlen, "unix:%s: cannot tell whether it is in use: %s", sun->sun_path,
                 strerror(why));
        return -1;
    }
    log_info("replacing stale socket %s (nobody accepts on it)", sun->sun_path);
    if (unlink(sun->sun_path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "unix:%s: unlink stale socket: %s", sun->sun_path, strerror(errno));
        return -1;
    }
    if (bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) != 0) {
        snprintf(err, errlen, "unix:%s: bind: %s", sun->sun_path, strerror(errno));
        return -1;
    }
    return 0;
}

/* server_unix_perms - owner, group and mode of a new unix socket. */
static int server_unix_perms(const char *path, const struct config *cfg, char *err, size_t errlen)
{
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (*cfg->listen_owner) {
        struct passwd *pw = getpwnam(cfg->listen_owner);
        if (!pw) {
            snprintf(err, errlen, "listen_owner: no such user '%s'", cfg->listen_owner);
            return -1;
        }
        uid = pw->pw_uid;
    }
    if (*cfg->listen_group) {
        struct group *gr = getgrnam(cfg->listen_group);
        if (!gr) {
            snprintf(err, errlen, "listen_group: no such group '%s'", cfg->listen_group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) != 0) {
        snprintf(err, errlen, "unix:%s: chown: %s", path, strerror(errno));
        return -1;
    }
    if (chmod(path, cfg->listen_mode) != 0) {
        snprintf(err, errlen, "unix:%s: chmod: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void server_enable(struct server *srv, int on)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        if (on)
            evconnlistener_enable(srv->listeners[i].evl);
        else
            evconnlistener_disable(srv->listeners[i].evl);
    }
    srv->paused = !on;
}

static void server_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    if (srv->done)
        srv->done(srv->done_arg);
}

/* server_conn_closed - a session ended: count it, resume accepting if we had paused. */
static void server_conn_closed(void *arg)
{
    struct conn *c = arg;
    struct server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    stats.connections_now--;
    free(c);
    if (srv->shutting_down) {
        if (srv->nconns == 0)
            event_active(srv->done_event, EV_TIMEOUT, 0);
        return;
    }
    if (srv->paused && srv->nconns < (size_t)config_active()->max_connections &&
        !evtimer_pending(srv->resume_timer, NULL))
        server_enable(srv, 1);
}

/* server_peer_name - "unix:/path pid=N uid=N" or "ADDR:PORT", for log lines. */
static void server_peer_name(const struct listener *l, int fd, struct sockaddr *sa, int salen,
                             char *out, size_t outlen)
{
    if (sa->sa_family == AF_UNIX || salen <= (int)sizeof(sa_family_t)) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
            snprintf(out, outlen, "%s (pid=%ld uid=%ld)", l->name, (long)cred.pid, (long)cred.uid);
        else
            snprintf(out, outlen, "%s (fd %d)", l->name, fd);
        return;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)(void *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        port = ntohs(sin->sin_port);
        snprintf(out, outlen, "%s:%u", host, port);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        port = ntohs(sin6->sin6_port);
        snprintf(out, outlen, "[%s]:%u", host, port);
    }
}

static void server_accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    struct listener *l = arg;
    struct server *srv = l->srv;
    char peer[256];
    (void)evl;

    if (srv->shutting_down) {
        close(fd);
        return;
    }
    server_peer_name(l, fd, sa, salen, peer, sizeof(peer));
    struct conn *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    stats.connections_total++;
    if (++stats.connections_now > stats.connections_peak)
        stats.connections_peak = stats.connections_now;
    c->session = session_new(srv->base, srv->dns, fd, fd, peer, server_conn_closed, c);
    if (srv->nconns >= (size_t)config_active()->max_connections && !srv->paused) {
        log_warn("max_connections (%ld) reached: new connections wait until one closes",
                 config_active()->max_connections);
        server_enable(srv, 0);
    }
}

static void server_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    if (!srv->shutting_down && srv->nconns < (size_t)config_active()->max_connections)
        server_enable(srv, 1);
}

/* server_accept_error_cb - accept failed (out of descriptors): pause a second, don't spin. */
static void server_accept_error_cb(struct evconnlistener *evl, void *arg)
{
    struct listener *l = arg;
    struct server *srv = l->srv;
    int err = EVUTIL_SOCKET_ERROR();
    (void)evl;
    log_warn("accept on %s: %s; pausing new connections for 1s (raise the descriptor limit or "
             "lower max_connections)",
             l->name, evutil_socket_error_to_string(err));
    server_enable(srv, 0);
    struct timeval one = {1, 0};
    evtimer_add(srv->resume_timer, &one);
}

/* server_raise_nofile - allow as many descriptors as the hard limit permits. */
static void server_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

struct server *server_new(struct event_base *base, struct dns *dns, const struct config *cfg,
                          char *err, size_t errlen)
{
    char **v = plist_split(cfg->listen);
    size_t n = 0;
    while (v[n])
        n++;
    if (activation_count() > 0 && config_source_line(cfg, "listen") == 0)
        n = 0; /* socket activation and no `listen` written: the socket unit says where */
    struct server *srv = xcalloc(1, sizeof(*srv));
    srv->base = base;
    srv->dns = dns;
    srv->listeners = xcalloc(n + activation_count() + 1, sizeof(*srv->listeners));
    if (!(srv->resume_timer = evtimer_new(base, server_resume_cb, srv)))
        xalloc_fail(0);
    if (!(srv->done_event = event_new(base, -1, 0, server_done_cb, srv)))
        xalloc_fail(0);
    server_raise_nofile();
    for (size_t i = 0; i < n; i++) {
        struct listener *l = &srv->listeners[i];
        struct sockaddr_storage ss;
        socklen_t sslen;
        l->srv = srv;
        snprintf(l->name, sizeof(l->name), "%s", v[i]);
        int fd = activation_claim(v[i]); /* passed by systemd: already listening */
        if (fd >= 0)
            goto watch;
        if (endpoint_parse(v[i], &ss, &sslen, err, errlen) != 0)
            goto fail;
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            snprintf(err, errlen, "%s: socket: %s", v[i], strerror(errno));
            goto fail;
        }
        if (ss.ss_family == AF_UNIX) {
            struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
            struct stat st;
            if (server_bind_unix(fd, sun, err, errlen) != 0 ||
                server_unix_perms(sun->sun_path, cfg, err, errlen) != 0) {
                close(fd);
                goto fail;
            }
            l->unix_path = xstrdup(sun->sun_path);
            if (stat(sun->sun_path, &st) == 0)
                l->unix_ino = st.st_ino;
        } else {
            int on = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
            if (ss.ss_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
            if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
                snprintf(err, errlen, "%s: bind: %s", v[i], strerror(errno));
                close(fd);
                goto fail;
            }
        }
        if (listen(fd, SOMAXCONN) != 0) {
            snprintf(err, errlen, "%s: listen: %s", v[i], strerror(errno));
            close(fd);
            goto fail;
        }
    watch:
        /* backlog 0: the socket is already listening. Created disabled: see server_start. */
        l->evl = evconnlistener_new(base, server_accept_cb, l,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED, 0, fd);
        if (!l->evl) {
            snprintf(err, errlen, "%s: cannot watch the socket", v[i]);
            close(fd);
            goto fail;
        }
        evconnlistener_set_error_cb(l->evl, server_accept_error_cb);
        srv->nlisteners++;
    }
    /* Passed sockets no entry claimed (metrics_listen's was claimed before): served too. */
    for (int fd; (fd = activation_next(srv->listeners[srv->nlisteners].name,
                                       sizeof(srv->listeners[0].name))) >= 0;) {
        struct listener *l = &srv->listeners[srv->nlisteners];
        l->srv = srv;
        if (!(l->evl = evconnlistener_new(base, server_accept_cb, l,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_DISABLED, 0, fd)))
            xalloc_fail(0); /* the socket is valid and listening: only memory can fail */
        evconnlistener_set_error_cb(l->evl, server_accept_error_cb);
        srv->nlisteners++;
    }
    if (srv->nlisteners == 0) {
        snprintf(err, errlen,
                 "no policy socket: systemd passed only the metrics socket and "
                 "listen is not set");
        goto fail;
    }
    plist_free(v);
    srv->paused = 1;
    return srv;
fail:
    plist_free(v);
    server_free(srv);
    return NULL;
}

void server_start(struct server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++)
        log_info("listening on %s", srv->listeners[i].name);
    server_enable(srv, 1);
}

void server_shutdown(struct server *srv, void (*done)(void *arg), void *arg)
{
    srv->done = done;
    srv->done_arg = arg;
    srv->shutting_down = 1;
    server_enable(srv, 0);
    evtimer_del(srv->resume_timer);
    if (srv->nconns == 0) {
        event_active(srv->done_event, EV_TIMEOUT, 0);
        return;
    }
    /* session_shutdown may close (and unlink) a session right away: walk a saved next. */
    for (struct conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        session_shutdown(c->session);
    }
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        struct listener *l = &srv->listeners[i];
        evconnlistener_free(l->evl);
        if (l->unix_path) {
            struct stat st;
            /* Remove the socket only if it is still the one we created. */
            if (stat(l->unix_path, &st) == 0 && st.st_ino == l->unix_ino)
                unlink(l->unix_path);
            free(l->unix_path);
        }
    }
    free(srv->listeners);
    if (srv->resume_timer)
        event_free(srv->resume_timer);
    if (srv->done_event)
        event_free(srv->done_event);
    free(srv);
}

struct stdio_ctx {
    void (*done)(void *arg);
    void *arg;
};

static void server_stdio_closed(void *arg)
{
    struct stdio_ctx *ctx = arg;
    ctx->done(ctx->arg);
    free(ctx);
}

void server_stdio(struct event_base *base, struct dns *dns, void (*done)(void *arg), void *arg)
{
    struct stdio_ctx *ctx = xmalloc(sizeof(*ctx));
    ctx->done = done;
    ctx->arg = arg;
    session_new(base, dns, 0, 1, "stdin", server_stdio_closed, ctx);
    stats.connections_total++;
}
