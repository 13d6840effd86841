/*
 * server.c - bind listeners, accept connections, share the slots fairly, shut down cleanly.
 *
 * We create and bind the sockets ourselves (libevent's evconnlistener takes them already
 * listening) so that unix sockets can be checked for staleness, given owner/group/mode before
 * privileges are dropped, and refused when another daemon is alive on them. The server owns
 * one record per connection, kept in two lists: all of them, and the idle ones in the order
 * they became idle (sessions report the changes). At max_connections a new connection is
 * admitted by closing the one idle the longest, so idle connections, however many a client
 * opens, can never lock new ones out; only when every connection is busy do the listeners
 * pause. Clients (a peer address, or a uid on a unix socket) are counted for
 * max_connections_per_client. Limits hit and timeouts are logged without flooding the log: the
 * first at once, then counts. At shutdown the listen queues are emptied once, the listeners
 * closed and every session drained. Sockets passed by systemd (policyd/activation.c) are used
 * as they are, never bound nor unlinked: for an entry of `listen` with the same address, and the
 * rest beside; with `listen` left at its default, the passed sockets alone.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/server.h"

#include "policyd/activation.h"
#include "policyd/config.h"
#include "policyd/lib/log.h"
#include "policyd/session.h"
#include "policyd/stats.h"
#include "policyd/lib/plist.h"
#include "policyd/lib/endpoint.h"
#include "policyd/lib/hash.h"
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
#include <sys/queue.h>
#include <sys/un.h>
#include <unistd.h>

#define SERVER_CLIENT_BUCKETS 1024
#define SERVER_LIMIT_LOG_INTERVAL 60   /* seconds between the counts at the connection limits */
#define SERVER_DRAIN_ACCEPT_MAX 100000 /* connections taken from a listen queue at shutdown */
#define SERVER_ACCEPT_BATCH 64         /* connections accepted in one turn of the loop */

/* The connections of one client (peer address, or uid on a unix socket). */
struct client {
    struct client *next; /* hash chain */
    unsigned count;
    char key[64];
};

struct conn {
    struct server *srv;
    struct session *session;
    struct client *client;
    TAILQ_ENTRY(conn) all;
    TAILQ_ENTRY(conn) idle_link; /* while idle: least recently idle first */
    int idle;
};

struct listener {
    struct server *srv;
    struct evconnlistener *evl;
    char name[160];  /* "unix:/path" or "inet:127.0.0.1:10031" */
    char *unix_path; /* set for unix sockets we created */
    ino_t unix_ino;
};

/* Connections closed by a timeout: the first of a second is logged with its peer, the others
 * counted and logged as one line when the second is over. */
enum { CLOSE_IDLE, CLOSE_READ, CLOSE_WRITE, CLOSE_KINDS };

struct server {
    struct event_base *base;
    struct dns *dns;
    struct listener *listeners;
    size_t nlisteners;
    TAILQ_HEAD(, conn) conns;
    TAILQ_HEAD(, conn) idle;
    size_t nconns, nidle;
    struct client *clients[SERVER_CLIENT_BUCKETS];
    int paused;
    int shutting_down;
    struct event *resume_timer;
    struct event *done_event;
    struct event *turn_event; /* after a turn of accepts: see server_accept_cb */
    unsigned turn_accepts;
    int batch_paused;
    void (*done)(void *arg);
    void *done_arg;
    /* at max_connections / max_connections_per_client: counts since the last line */
    struct event *limit_timer;
    int limit_active; /* a warning went out this interval: the next ones are counted */
    int said_evict, said_wait, said_refuse;
    unsigned long evicted, waited, refused;
    char refused_last[64];
    /* timeouts, aggregated per second */
    struct event *close_timer;
    unsigned long close_seen[CLOSE_KINDS];
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
        if (!srv->listeners[i].evl)
            continue;
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

/* server_limit_arm - a limit was hit: start the interval after which the counts are logged. */
static void server_limit_arm(struct server *srv)
{
    if (!srv->limit_active) {
        struct timeval tv = {SERVER_LIMIT_LOG_INTERVAL, 0};
        srv->limit_active = 1;
        evtimer_add(srv->limit_timer, &tv);
    }
}

/* server_limit_cb - once per interval while a limit is being hit: what happened, counted. */
static void server_limit_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    const struct config *cfg = config_active();
    (void)fd;
    (void)what;
    if (!srv->evicted && !srv->waited && !srv->refused) {
        srv->limit_active = srv->said_evict = srv->said_wait = srv->said_refuse = 0;
        return; /* quiet for a whole interval: the next hit is logged at once again */
    }
    if (srv->evicted || srv->waited)
        log_warn("max_connections (%ld): in the last %d s, %lu idle connections closed to admit "
                 "new ones, %lu times every connection was busy and new ones waited in the "
                 "listen queue; %zu connections open",
                 cfg->max_connections, SERVER_LIMIT_LOG_INTERVAL, srv->evicted, srv->waited,
                 srv->nconns);
    if (srv->refused)
        log_warn("max_connections_per_client (%ld): in the last %d s, %lu connections refused "
                 "(the last from %s)",
                 cfg->max_connections_per_client, SERVER_LIMIT_LOG_INTERVAL, srv->refused,
                 srv->refused_last);
    srv->evicted = srv->waited = srv->refused = 0;
    struct timeval tv = {SERVER_LIMIT_LOG_INTERVAL, 0};
    evtimer_add(srv->limit_timer, &tv);
}

/* server_close_kind - the timeout behind a session's end, or -1. */
static int server_close_kind(enum session_end why)
{
    switch (why) {
    case SESSION_END_IDLE:
        return CLOSE_IDLE;
    case SESSION_END_READ_TIMEOUT:
        return CLOSE_READ;
    case SESSION_END_WRITE_TIMEOUT:
        return CLOSE_WRITE;
    default:
        return -1;
    }
}

/* server_ms - "600 s" or "250 ms". */
static const char *server_ms(long ms, char *out, size_t outlen)
{
    if (ms % 1000 == 0)
        snprintf(out, outlen, "%ld s", ms / 1000);
    else
        snprintf(out, outlen, "%ld ms", ms);
    return out;
}

/* server_close_cb - the second is over: one line per kind for the closes not logged. */
static void server_close_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    const struct config *cfg = config_active();
    char d[32];
    (void)fd;
    (void)what;
    for (int k = 0; k < CLOSE_KINDS; k++) {
        unsigned long more = srv->close_seen[k] > 1 ? srv->close_seen[k] - 1 : 0;
        srv->close_seen[k] = 0;
        if (k == CLOSE_IDLE && more)
            log_info("closed %lu more policy connections idle for %s (idle_timeout) in the last "
                     "second",
                     more, server_ms(cfg->idle_timeout, d, sizeof(d)));
        else if (k == CLOSE_READ && more)
            log_info("closed %lu more policy connections whose request was not complete after %s "
                     "(request_read_timeout) in the last second",
                     more, server_ms(cfg->request_read_timeout, d, sizeof(d)));
        else if (k == CLOSE_WRITE && more)
            log_warn("closed %lu more policy connections that took none of their replies for %s "
                     "(write_timeout) in the last second",
                     more, server_ms(cfg->write_timeout, d, sizeof(d)));
    }
}

/* server_log_close - a connection closed by a timeout: logged with its peer when it is the
 * first of its kind this second, else counted for server_close_cb. */
static void server_log_close(struct server *srv, enum session_end why, const char *peer,
                             const char *detail)
{
    int k = server_close_kind(why);
    if (k < 0)
        return;
    if (!evtimer_pending(srv->close_timer, NULL)) {
        struct timeval one = {1, 0};
        evtimer_add(srv->close_timer, &one);
    }
    if (srv->close_seen[k]++ > 0)
        return;
    if (k == CLOSE_WRITE)
        log_warn("closing policy connection from %s: %s", peer, detail);
    else
        log_info("closing policy connection from %s: %s", peer, detail);
}

/* server_client - the client record of key; created (count 0) when create is set, else NULL
 * when it has no connection. */
static struct client *server_client(struct server *srv, const char *key, int create)
{
    struct client **head = &srv->clients[hash_str(key) % SERVER_CLIENT_BUCKETS];
    for (struct client *cl = *head; cl; cl = cl->next)
        if (strcmp(cl->key, key) == 0)
            return cl;
    if (!create)
        return NULL;
    struct client *cl = xcalloc(1, sizeof(*cl));
    snprintf(cl->key, sizeof(cl->key), "%s", key);
    cl->next = *head;
    *head = cl;
    return cl;
}

/* server_client_release - one connection of cl has gone; forget a client that has none. */
static void server_client_release(struct server *srv, struct client *cl)
{
    if (--cl->count > 0)
        return;
    struct client **pp = &srv->clients[hash_str(cl->key) % SERVER_CLIENT_BUCKETS];
    while (*pp != cl)
        pp = &(*pp)->next;
    *pp = cl->next;
    free(cl);
}

/* server_update_accepting - accept while a slot is free or an idle connection can make room;
 * otherwise let new connections wait in the listen queue. */
static void server_update_accepting(struct server *srv)
{
    if (srv->shutting_down || evtimer_pending(srv->resume_timer, NULL))
        return;
    const struct config *cfg = config_active();
    int want = srv->nconns < (size_t)cfg->max_connections || srv->nidle > 0;
    if (want && srv->paused) {
        server_enable(srv, 1);
    } else if (!want && !srv->paused) {
        server_enable(srv, 0);
        if (srv->said_wait) {
            srv->waited++;
        } else {
            srv->said_wait = 1;
            log_warn("max_connections (%ld) reached and every connection is busy with a "
                     "request: new connections wait in the listen queue until one is done",
                     cfg->max_connections);
        }
        server_limit_arm(srv);
    }
}

/* server_idle_unlink - take c off the idle list. */
static void server_idle_unlink(struct server *srv, struct conn *c)
{
    if (c->idle) {
        TAILQ_REMOVE(&srv->idle, c, idle_link);
        srv->nidle--;
        c->idle = 0;
    }
}

/* server_conn_idle - a session's idle state changed: keep the idle list in order. */
static void server_conn_idle(void *arg, int idle)
{
    struct conn *c = arg;
    struct server *srv = c->srv;
    if (idle && !c->idle) {
        TAILQ_INSERT_TAIL(&srv->idle, c, idle_link);
        srv->nidle++;
        c->idle = 1;
        if (srv->paused)
            server_update_accepting(srv);
    } else if (!idle && c->idle) {
        server_idle_unlink(srv, c);
        if (srv->nidle == 0 && !srv->paused)
            server_update_accepting(srv); /* at the limit with nothing idle: stop accepting */
    }
}

/* server_conn_ended - a session ended: log a timeout, count it, resume accepting. */
static void server_conn_ended(void *arg, enum session_end why, const char *peer, const char *detail)
{
    struct conn *c = arg;
    struct server *srv = c->srv;
    server_idle_unlink(srv, c); /* no accepting decision yet: the counts are about to change */
    TAILQ_REMOVE(&srv->conns, c, all);
    server_client_release(srv, c->client);
    srv->nconns--;
    stats.connections_now--;
    free(c);
    server_log_close(srv, why, peer, detail);
    if (srv->shutting_down) {
        if (srv->nconns == 0)
            event_active(srv->done_event, EV_TIMEOUT, 0);
        return;
    }
    if (srv->paused)
        server_update_accepting(srv);
}

static const struct session_hooks server_hooks = {server_conn_ended, server_conn_idle};

/* server_peer_name - "unix:/path (pid=N uid=N)" or "ADDR:PORT" for log lines, and the client
 * key for max_connections_per_client: "uid N" or the address. */
static void server_peer_name(const struct listener *l, int fd, const struct sockaddr *sa,
                             socklen_t salen, char *out, size_t outlen, char *key, size_t keylen)
{
    if (sa->sa_family == AF_UNIX || salen <= (socklen_t)sizeof(sa_family_t)) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            snprintf(out, outlen, "%s (pid=%ld uid=%ld)", l->name, (long)cred.pid, (long)cred.uid);
            snprintf(key, keylen, "uid %ld", (long)cred.uid);
        } else {
            snprintf(out, outlen, "%s (fd %d)", l->name, fd);
            snprintf(key, keylen, "%s", l->name);
        }
        return;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, ntohs(sin->sin_port));
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, ntohs(sin6->sin6_port));
    }
    snprintf(key, keylen, "%s", host);
}

/* server_admit - a new connection: refuse it over max_connections_per_client, make room at
 * max_connections by closing the connection idle the longest, then serve it (draining: the
 * stop is under way, answer what it sent already). */
static void server_admit(struct server *srv, struct listener *l, int fd, const struct sockaddr *sa,
                         socklen_t salen, int draining)
{
    const struct config *cfg = config_active();
    char peer[256], key[64];
    server_peer_name(l, fd, sa, salen, peer, sizeof(peer), key, sizeof(key));
    struct client *cl = server_client(srv, key, 0);
    if (!draining && cfg->max_connections_per_client > 0 && cl &&
        cl->count >= (unsigned long)cfg->max_connections_per_client) {
        close(fd);
        stats.connections_refused++;
        snprintf(srv->refused_last, sizeof(srv->refused_last), "%s", key);
        if (!srv->said_refuse) {
            srv->said_refuse = 1;
            log_warn("max_connections_per_client (%ld): refusing a connection from %s, which "
                     "holds %u already (client %s)",
                     cfg->max_connections_per_client, peer, cl->count, key);
        } else {
            srv->refused++;
        }
        server_limit_arm(srv);
        return;
    }
    /* Slots are fair: the connection idle the longest makes room (smtpd reconnects). */
    while (!draining && srv->nconns >= (size_t)cfg->max_connections && srv->nidle > 0) {
        stats.connections_evicted++;
        if (!srv->said_evict) {
            srv->said_evict = 1;
            log_warn("max_connections (%ld) reached: closing the connection idle the longest "
                     "for each new one (Postfix's smtpd reconnects when it needs to); counts "
                     "follow at most every %d s while this lasts",
                     cfg->max_connections, SERVER_LIMIT_LOG_INTERVAL);
        } else {
            srv->evicted++;
        }
        server_limit_arm(srv);
        session_evict(TAILQ_FIRST(&srv->idle)->session); /* its conn is gone after this */
    }
    struct conn *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->client = cl ? cl : server_client(srv, key, 1);
    c->client->count++;
    TAILQ_INSERT_TAIL(&srv->conns, c, all);
    srv->nconns++;
    stats.connections_total++;
    if (++stats.connections_now > stats.connections_peak)
        stats.connections_peak = stats.connections_now;
    c->session = session_new(srv->base, srv->dns, fd, fd, peer, &server_hooks, c);
    if (session_is_idle(c->session)) { /* it has asked nothing yet */
        c->idle = 1;
        TAILQ_INSERT_TAIL(&srv->idle, c, idle_link);
        srv->nidle++;
    }
    if (draining)
        session_drain(c->session);
}

static void server_accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    struct listener *l = arg;
    struct server *srv = l->srv;
    (void)evl;

    if (srv->shutting_down) {
        close(fd);
        return;
    }
    /* libevent accepts until the queue is empty: under a connection storm that would be
     * forever, and the connections already open (fresh ones with a request waiting among them)
     * would not be read meanwhile. So a turn of the loop takes SERVER_ACCEPT_BATCH at most. */
    if (srv->turn_accepts++ == 0)
        event_active(srv->turn_event, EV_TIMEOUT, 0);
    server_admit(srv, l, fd, sa, (socklen_t)salen, 0);
    server_update_accepting(srv);
    if (srv->turn_accepts >= SERVER_ACCEPT_BATCH && !srv->paused) {
        server_enable(srv, 0);
        srv->batch_paused = 1;
    }
}

/* server_turn_cb - the end of a turn in which connections were accepted: accept again. */
static void server_turn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    srv->turn_accepts = 0;
    if (srv->batch_paused) {
        srv->batch_paused = 0;
        server_update_accepting(srv);
    }
}

static void server_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    (void)fd;
    (void)what;
    server_update_accepting(srv);
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
    if (!(srv->turn_event = event_new(base, -1, 0, server_turn_cb, srv)))
        xalloc_fail(0);
    if (!(srv->limit_timer = evtimer_new(base, server_limit_cb, srv)))
        xalloc_fail(0);
    if (!(srv->close_timer = evtimer_new(base, server_close_cb, srv)))
        xalloc_fail(0);
    TAILQ_INIT(&srv->conns);
    TAILQ_INIT(&srv->idle);
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
        if (listen(fd, (int)cfg->listen_backlog) != 0) {
            snprintf(err, errlen, "%s: listen: %s", v[i], strerror(errno));
            close(fd);
            goto fail;
        }
    watch:
        /* backlog 0: the socket is already listening. Created disabled: see server_start. */
        l->evl = evconnlistener_new(
            base, server_accept_cb, l,
            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, 0, fd);
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

/* server_unlink_socket - remove a listener's socket file if it is still the one we created
 * (a new daemon may have bound the path since). Quiet when not allowed: said at start. */
static void server_unlink_socket(struct listener *l)
{
    struct stat st;
    if (l->unix_path && stat(l->unix_path, &st) == 0 && st.st_ino == l->unix_ino)
        unlink(l->unix_path);
    free(l->unix_path);
    l->unix_path = NULL;
}

/* server_close_listener - stop listening on l, removing its socket file. */
static void server_close_listener(struct listener *l)
{
    if (l->evl)
        evconnlistener_free(l->evl);
    l->evl = NULL;
    server_unlink_socket(l);
}

void server_shutdown(struct server *srv, void (*done)(void *arg), void *arg)
{
    srv->done = done;
    srv->done_arg = arg;
    server_enable(srv, 0);
    srv->shutting_down = 1;
    evtimer_del(srv->resume_timer);
    /* Connections waiting in a listen queue were made, and their requests maybe sent, before
     * the stop: take them (once, until the queue is empty) and answer what they sent. Then
     * close the listeners, so that new attempts fail at once instead of waiting in a queue
     * nobody reads. */
    for (size_t i = 0; i < srv->nlisteners; i++) {
        struct listener *l = &srv->listeners[i];
        if (!l->evl)
            continue;
        int lfd = evconnlistener_get_fd(l->evl);
        for (int k = 0; k < SERVER_DRAIN_ACCEPT_MAX; k++) {
            struct sockaddr_storage ss;
            socklen_t sslen = sizeof(ss);
            int fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0 && errno == EINTR)
                continue;
            if (fd < 0)
                break;
            server_admit(srv, l, fd, (struct sockaddr *)&ss, sslen, 1);
        }
        server_close_listener(l);
    }
    if (srv->nconns == 0) {
        event_active(srv->done_event, EV_TIMEOUT, 0);
        return;
    }
    /* session_drain never closes from inside: the list stays as it is while we walk it. */
    struct conn *c;
    TAILQ_FOREACH(c, &srv->conns, all)
    session_drain(c->session);
}

size_t server_socket_files(const struct server *srv, const char **paths, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < srv->nlisteners && n < max; i++)
        if (srv->listeners[i].unix_path)
            paths[n++] = srv->listeners[i].unix_path;
    return n;
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nlisteners; i++)
        server_close_listener(&srv->listeners[i]);
    free(srv->listeners);
    for (size_t b = 0; b < SERVER_CLIENT_BUCKETS; b++) {
        while (srv->clients[b]) {
            struct client *cl = srv->clients[b];
            srv->clients[b] = cl->next;
            free(cl);
        }
    }
    if (srv->resume_timer)
        event_free(srv->resume_timer);
    if (srv->done_event)
        event_free(srv->done_event);
    if (srv->turn_event)
        event_free(srv->turn_event);
    if (srv->limit_timer)
        event_free(srv->limit_timer);
    if (srv->close_timer)
        event_free(srv->close_timer);
    free(srv);
}

struct stdio_ctx {
    void (*done)(void *arg);
    void *arg;
};

/* server_stdio_ended - the -S connection ended: a timeout is logged, then done. */
static void server_stdio_ended(void *arg, enum session_end why, const char *peer,
                               const char *detail)
{
    struct stdio_ctx *ctx = arg;
    if (server_close_kind(why) >= 0)
        log_info("closing policy connection from %s: %s", peer, detail);
    ctx->done(ctx->arg);
    free(ctx);
}

static const struct session_hooks server_stdio_hooks = {server_stdio_ended, NULL};

void server_stdio(struct event_base *base, struct dns *dns, void (*done)(void *arg), void *arg)
{
    struct stdio_ctx *ctx = xmalloc(sizeof(*ctx));
    ctx->done = done;
    ctx->arg = arg;
    evutil_make_socket_nonblocking(0);
    evutil_make_socket_nonblocking(1);
    session_new(base, dns, 0, 1, "stdin", &server_stdio_hooks, ctx);
    stats.connections_total++;
}
