/*
 * session.c - the life of one policy connection.
 *
 * I/O is built for the common case of Postfix's request/reply rhythm: one persistent read
 * event, input read straight into the session's own contiguous buffer (the parser wants
 * contiguous bytes, and this avoids the FIONREAD ioctl and the pull-up an evbuffer read costs),
 * replies appended to an evbuffer and written at once; only when the peer does not take them
 * all is a write event armed. No epoll change and no timer operation per request: the idle
 * timer is re-armed lazily (when it fires it compares with the time of the last activity), the
 * request read timer runs only while a request is incomplete, the write timer only while the
 * peer is not taking replies (armed when writing first blocks, extended only when the peer
 * takes bytes). Each complete request starts an evaluation, queued in arrival order; replies
 * leave from the head of the queue, so answers come back in request order even when a later
 * request finishes first. Reading pauses while max_pending requests are unanswered or the
 * unsent replies pass max_output; end of input lets the queued requests finish before the
 * close. Each request uses the configuration active when it was read; a reload never changes it.
 * session_settle is the one place that turns the events on and off after anything happened.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/session.h"

#include "policyd/config.h"
#include "policyd/evaluate.h"
#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"
#include "policyd/stats.h"
#include "protocol/reply.h"
#include "protocol/request.h"

#include <event2/buffer.h>
#include <event2/event.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SESSION_READ_CHUNK 16384

static unsigned long long session_serial; /* connections numbered from 1, never reused */

struct pending {
    struct evaluation *ev;
    struct pending *next;
};

struct session {
    struct event_base *base;
    struct dns *dns;
    int in_fd, out_fd;
    struct event *rev;     /* persistent read, no timeout of its own */
    struct event *wev;     /* armed only while replies wait for the peer: write_timeout */
    struct event *idle_ev; /* idle_timeout, re-armed lazily */
    struct event *read_ev; /* request_read_timeout, armed while a request is incomplete */
    char *in;              /* unconsumed input */
    size_t in_len, in_cap;
    struct evbuffer *out;
    struct request_parser *parser;
    struct pending *head, *tail;
    size_t npending;
    size_t max_pending; /* read-ahead: unanswered requests */
    size_t max_output;  /* unsent reply bytes before reading pauses */
    long idle_ms, read_ms, write_ms;
    struct timeval last_active; /* last byte read or last reply flushed */
    int reading;                /* the read event is added */
    int eof;                    /* no more input: close when the queue drains */
    int closing;                /* bad input or a timeout: close when the queue drains */
    int draining;               /* shutdown: close once nothing more is waiting */
    int idle;                   /* as last reported to the owner */
    int in_parse;               /* inside session_parse: do not free under our feet */
    int dead;                   /* free at the end of session_parse */
    enum session_end why;       /* for the owner, when the session ends */
    char detail[200];
    char peer[160];
    unsigned long long serial; /* names the connection to the checks (request_connection) */
    const struct session_hooks *hooks;
    void *arg;
};

/* session_tv - milliseconds as a timeval. */
static struct timeval session_tv(long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* session_duration - "600 s", "1.5 s" or "250 ms" for log lines. Returns out. */
static const char *session_duration(long ms, char *out, size_t outlen)
{
    if (ms % 1000 == 0)
        snprintf(out, outlen, "%ld s", ms / 1000);
    else if (ms >= 1000)
        snprintf(out, outlen, "%.1f s", (double)ms / 1000.0);
    else
        snprintf(out, outlen, "%ld ms", ms);
    return out;
}

/* session_now - the loop's cached time. */
static struct timeval session_now(const struct session *s)
{
    struct timeval tv;
    event_base_gettimeofday_cached(s->base, &tv);
    return tv;
}

/* session_free - cancel pending evaluations, close descriptors, tell the owner why. */
static void session_free(struct session *s)
{
    if (s->in_parse) {
        s->dead = 1;
        return;
    }
    while (s->head) {
        struct pending *p = s->head;
        s->head = p->next;
        evaluate_free(p->ev);
        free(p);
    }
    event_free(s->rev);
    event_free(s->wev);
    event_free(s->idle_ev);
    event_free(s->read_ev);
    evbuffer_free(s->out);
    close(s->in_fd);
    if (s->out_fd != s->in_fd)
        close(s->out_fd);
    request_parser_free(s->parser);
    free(s->in);
    /* The checks hear that the peer's connection is over (not at shutdown: the peer goes on,
     * with the next daemon). */
    if (s->why != SESSION_END_DRAINED)
        evaluate_connection_closed(s->serial);
    const struct session_hooks *hooks = s->hooks;
    void *arg = s->arg;
    enum session_end why = s->why;
    char peer[sizeof(s->peer)], detail[sizeof(s->detail)];
    memcpy(peer, s->peer, sizeof(peer));
    memcpy(detail, s->detail, sizeof(detail));
    free(s);
    if (hooks && hooks->ended)
        hooks->ended(arg, why, peer, detail);
}

/* session_end - close now, for this reason. */
static void session_end(struct session *s, enum session_end why)
{
    s->why = why;
    session_free(s);
}

/* session_set_reading - add or remove the read event. */
static void session_set_reading(struct session *s, int on)
{
    if (on && !s->reading)
        event_add(s->rev, NULL);
    else if (!on && s->reading)
        event_del(s->rev);
    s->reading = on;
}

/* session_write - push buffered replies; arm the write event for what the peer did not take.
 * The write deadline starts when writing first blocks and moves only when the peer takes
 * bytes, so a stream of new replies cannot keep a non-reading peer alive. Returns -1 if the
 * connection is broken (the caller frees the session). */
static int session_write(struct session *s)
{
    size_t len;
    int progress = 0;
    while ((len = evbuffer_get_length(s->out)) > 0) {
        ssize_t n;
        if (evbuffer_get_contiguous_space(s->out) == len) {
            /* The usual case, one reply in one chunk: write(2), cheaper than writev(2). */
            n = write(s->out_fd, evbuffer_pullup(s->out, (ssize_t)len), len);
            if (n > 0)
                evbuffer_drain(s->out, (size_t)n);
        } else {
            n = evbuffer_write(s->out, s->out_fd);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (progress || !event_pending(s->wev, EV_WRITE, NULL)) {
                    struct timeval tv = session_tv(s->write_ms);
                    event_add(s->wev, &tv);
                }
                return 0;
            }
            log_debug("policy connection from %s: write: %s", s->peer, strerror(errno));
            return -1;
        }
        progress = 1;
    }
    if (event_pending(s->wev, EV_WRITE, NULL))
        event_del(s->wev);
    if (progress)
        s->last_active = session_now(s);
    return 0;
}

/* session_idle_now - no request in progress and nothing to write. */
static int session_idle_now(const struct session *s)
{
    return !s->closing && !s->eof && s->npending == 0 && s->in_len == 0 &&
           evbuffer_get_length(s->out) == 0;
}

/* session_settle - after anything happened: close when finished, else set reading, the
 * request read timer and the idle state to what the session's state calls for. 1 if freed. */
static int session_settle(struct session *s)
{
    size_t outlen = evbuffer_get_length(s->out);
    if ((s->eof || s->closing) && s->npending == 0 && outlen == 0) {
        session_free(s);
        return 1;
    }
    int can_read = !s->eof && !s->closing && s->npending < s->max_pending && outlen < s->max_output;
    session_set_reading(s, can_read);
    /* The request read deadline runs while the peer owes us the rest of a request. */
    if (can_read && s->in_len > 0) {
        if (!evtimer_pending(s->read_ev, NULL)) {
            struct timeval tv = session_tv(s->read_ms);
            evtimer_add(s->read_ev, &tv);
        }
    } else if (evtimer_pending(s->read_ev, NULL)) {
        evtimer_del(s->read_ev);
    }
    int idle = session_idle_now(s);
    if (idle != s->idle) {
        s->idle = idle;
        if (s->hooks && s->hooks->idle)
            s->hooks->idle(s->arg, idle);
    }
    /* Draining: one more read tells whether the peer sent anything else (EAGAIN closes). */
    if (s->draining && idle)
        event_active(s->rev, EV_READ, 0);
    return 0;
}

/* session_take_replies - move every finished reply at the head of the queue to the output. */
static void session_take_replies(struct session *s)
{
    while (s->head && evaluate_finished(s->head->ev)) {
        struct pending *p = s->head;
        reply_write(s->out, evaluate_action(p->ev));
        s->head = p->next;
        if (!s->head)
            s->tail = NULL;
        s->npending--;
        evaluate_free(p->ev);
        free(p);
    }
}

/* session_fail - bad input: log why, stop reading, close when what was read is answered. */
static void session_fail(struct session *s, const char *why)
{
    log_warn("closing policy connection from %s: %s", s->peer, why);
    s->closing = 1;
    s->why = SESSION_END_BAD_INPUT;
    s->in_len = 0;
    session_set_reading(s, 0);
}

/* session_limit_name - which configuration setting a parser error corresponds to. */
static const char *session_limit_name(enum request_error e)
{
    switch (e) {
    case REQUEST_ERR_LINE_TOO_LONG:
        return " (limit max_line_length)";
    case REQUEST_ERR_TOO_MANY_ATTRS:
        return " (limit max_attributes)";
    case REQUEST_ERR_TOO_LARGE:
        return " (limit max_request_size)";
    default:
        return "";
    }
}

static void session_eval_done(struct evaluation *ev, void *arg);

/* session_start_requests - start evaluations for the complete requests in the input buffer,
 * from *off, while the read-ahead and the output bound allow. Returns 1 if it stopped because
 * the unsent replies passed max_output. */
static int session_start_requests(struct session *s, struct config *cfg, size_t *off)
{
    while (!s->closing && *off < s->in_len) {
        if (s->npending >= s->max_pending) {
            session_take_replies(s);
            if (s->npending >= s->max_pending)
                return 0; /* read ahead enough: wait for answers */
        }
        if (evbuffer_get_length(s->out) >= s->max_output)
            return 1; /* the peer is behind: wait until it takes replies */
        size_t consumed = 0;
        struct request *req = NULL;
        enum request_parse_status st =
            request_parser_feed(s->parser, s->in + *off, s->in_len - *off, &consumed, &req);
        if (st == REQUEST_NEED_MORE)
            return 0;
        if (st == REQUEST_ERROR) {
            char why[512];
            enum request_error code = request_parser_error_code(s->parser);
            if (code == REQUEST_ERR_LINE_TOO_LONG || code == REQUEST_ERR_TOO_MANY_ATTRS ||
                code == REQUEST_ERR_TOO_LARGE)
                stats.limit_errors++;
            else
                stats.protocol_errors++;
            snprintf(why, sizeof(why), "%s%s", request_parser_error(s->parser),
                     session_limit_name(code));
            session_fail(s, why);
            *off = 0;
            return 0;
        }
        *off += consumed;
        /* The next request's deadline starts with its own first byte. */
        if (evtimer_pending(s->read_ev, NULL))
            evtimer_del(s->read_ev);
        if (strcmp(request_get(req, ATTR_REQUEST), "smtpd_access_policy") != 0) {
            char why[256];
            stats.protocol_errors++;
            if (request_has(req, ATTR_REQUEST))
                snprintf(why, sizeof(why),
                         "request=%.64s is not a policy request (expected smtpd_access_policy)",
                         request_get(req, ATTR_REQUEST));
            else
                snprintf(why, sizeof(why),
                         "request without the request=smtpd_access_policy attribute");
            request_free(req);
            session_fail(s, why);
            *off = 0;
            return 0;
        }
        struct pending *p = xmalloc(sizeof(*p));
        p->next = NULL;
        if (s->tail)
            s->tail->next = p;
        else
            s->head = p;
        s->tail = p;
        s->npending++;
        request_set_connection(req, s->serial);
        p->ev = evaluate_start(s->base, s->dns, cfg, req, session_eval_done, s);
    }
    return 0;
}

/* session_parse - start what the input holds, send what is answered, settle the events. */
static void session_parse(struct session *s)
{
    struct config *cfg = config_active();
    size_t off = 0;
    int broken = 0;

    s->in_parse = 1;
    for (;;) {
        int out_full = session_start_requests(s, cfg, &off);
        session_take_replies(s);
        if (session_write(s) != 0) {
            broken = 1;
            break;
        }
        /* The write made room: go on with the requests still waiting in the input. */
        if (!out_full || s->closing || evbuffer_get_length(s->out) >= s->max_output)
            break;
    }
    if (off > 0) {
        memmove(s->in, s->in + off, s->in_len - off);
        s->in_len -= off;
    }
    s->in_parse = 0;
    if (s->dead || broken) {
        if (broken)
            s->why = SESSION_END_EOF;
        session_free(s);
        return;
    }
    session_settle(s);
}

/* session_eval_done - an evaluation that pended has finished. */
static void session_eval_done(struct evaluation *ev, void *arg)
{
    struct session *s = arg;
    (void)ev;
    if (s->in_parse)
        return; /* session_parse takes the replies when it is done */
    /* Answers may unblock requests that waited in the input buffer. */
    session_parse(s);
}

static void session_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    (void)what;

    if (s->in_cap - s->in_len < SESSION_READ_CHUNK) {
        s->in_cap = s->in_len + SESSION_READ_CHUNK;
        s->in = xrealloc(s->in, s->in_cap);
    }
    ssize_t n = read(fd, s->in + s->in_len, s->in_cap - s->in_len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            if (s->draining && s->idle)
                session_end(s, SESSION_END_DRAINED);
            return;
        }
        log_debug("policy connection from %s: read: %s", s->peer, strerror(errno));
        session_end(s, SESSION_END_EOF);
        return;
    }
    if (n == 0) {
        s->eof = 1;
    } else {
        s->in_len += (size_t)n;
        s->last_active = session_now(s);
    }
    session_parse(s);
}

static void session_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    char d[32];
    (void)fd;
    if (what & EV_TIMEOUT) {
        stats.write_timeouts++;
        snprintf(s->detail, sizeof(s->detail),
                 "it took none of its replies for %s (write_timeout); %zu bytes unsent",
                 session_duration(s->write_ms, d, sizeof(d)), evbuffer_get_length(s->out));
        session_end(s, SESSION_END_WRITE_TIMEOUT);
        return;
    }
    /* The peer takes replies again: write, then go on with what waited for room. */
    session_parse(s);
}

/* session_idle_cb - idle_timeout: close if nothing happened for that long, else re-arm for
 * the time that is left (activity does not touch the timer). */
static void session_idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    char d[32];
    (void)fd;
    (void)what;
    struct timeval now = session_now(s);
    long elapsed = (long)(now.tv_sec - s->last_active.tv_sec) * 1000 +
                   (long)(now.tv_usec - s->last_active.tv_usec) / 1000;
    if (s->idle && elapsed >= s->idle_ms) {
        stats.idle_closes++;
        snprintf(s->detail, sizeof(s->detail), "no request for %s (idle_timeout)",
                 session_duration(s->idle_ms, d, sizeof(d)));
        session_end(s, SESSION_END_IDLE);
        return;
    }
    long left = s->idle && elapsed >= 0 ? s->idle_ms - elapsed : s->idle_ms;
    struct timeval tv = session_tv(left > 0 ? left : 1);
    evtimer_add(s->idle_ev, &tv);
}

/* session_read_timeout_cb - a request did not complete within request_read_timeout. */
static void session_read_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    char d[32];
    (void)fd;
    (void)what;
    stats.read_timeouts++;
    snprintf(s->detail, sizeof(s->detail),
             "request not complete after %s (request_read_timeout); %zu bytes of it received",
             session_duration(s->read_ms, d, sizeof(d)), s->in_len);
    s->closing = 1;
    s->why = SESSION_END_READ_TIMEOUT;
    s->in_len = 0;
    session_settle(s); /* closes now, or once the requests before it are answered */
}

struct session *session_new(struct event_base *base, struct dns *dns, int in_fd, int out_fd,
                            const char *peer, const struct session_hooks *hooks, void *arg)
{
    struct config *cfg = config_active();
    struct session *s = xcalloc(1, sizeof(*s));
    struct request_limits limits = {
        .max_line = cfg->max_line_length,
        .max_attrs = (size_t)cfg->max_attributes,
        .max_size = cfg->max_request_size,
    };
    s->base = base;
    s->dns = dns;
    s->in_fd = in_fd;
    s->out_fd = out_fd;
    s->hooks = hooks;
    s->arg = arg;
    s->serial = ++session_serial;
    s->max_pending = (size_t)cfg->max_pending_per_connection;
    s->max_output = cfg->max_output_buffer;
    s->idle_ms = cfg->idle_timeout;
    s->read_ms = cfg->request_read_timeout;
    s->write_ms = cfg->write_timeout;
    s->idle = 1;
    s->last_active = session_now(s);
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    s->parser = request_parser_new(&limits);
    /* libevent's allocators fail only for want of memory (the descriptors are ours and valid):
     * the same answer as any other allocation. */
    if (!(s->out = evbuffer_new()))
        xalloc_fail(0);
    if (!(s->rev = event_new(base, in_fd, EV_READ | EV_PERSIST, session_read_cb, s)))
        xalloc_fail(0);
    if (!(s->wev = event_new(base, out_fd, EV_WRITE, session_write_cb, s)))
        xalloc_fail(0);
    if (!(s->idle_ev = evtimer_new(base, session_idle_cb, s)))
        xalloc_fail(0);
    if (!(s->read_ev = evtimer_new(base, session_read_timeout_cb, s)))
        xalloc_fail(0);
    struct timeval tv = session_tv(s->idle_ms);
    evtimer_add(s->idle_ev, &tv);
    session_set_reading(s, 1);
    /* A client that wrote its request right after connecting (Postfix does) is busy from the
     * start: never taken for an idle one while it waits for its first read. */
    char c;
    if (recv(in_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
        s->idle = 0;
    return s;
}

int session_is_idle(const struct session *s)
{
    return s->idle;
}

void session_evict(struct session *s)
{
    if (s->idle)
        session_end(s, SESSION_END_EVICTED);
}

void session_drain(struct session *s)
{
    s->draining = 1;
    if (s->idle)
        event_active(s->rev, EV_READ, 0);
}
