/*
 * session.c - the life of one policy connection.
 *
 * I/O is built for the common case of Postfix's request/reply rhythm: one persistent read
 * event (its timeout is the idle timeout), input read straight into the session's own
 * contiguous buffer (the parser wants contiguous bytes, and this avoids the FIONREAD ioctl and
 * the pull-up an evbuffer read costs), replies appended to an evbuffer and written at once;
 * only when the peer does not take them all is a write event armed. No epoll change per
 * request. Each complete request starts an evaluation, queued in arrival order; replies leave
 * from the head of the queue, so answers come back in request order even when a later request
 * finishes first. End of input lets the queued requests finish before the close. Each request
 * uses the configuration active when it was read; a reload never changes it.
 */
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
#include <unistd.h>

#define SESSION_READ_CHUNK 16384

struct pending {
    struct evaluation *ev;
    struct pending *next;
};

struct session {
    struct event_base *base;
    struct dns *dns;
    int in_fd, out_fd;
    struct event *rev; /* persistent read, with the idle timeout */
    struct event *wev; /* armed only while replies wait for the peer */
    char *in;          /* unconsumed input */
    size_t in_len, in_cap;
    struct evbuffer *out;
    struct request_parser *parser;
    struct pending *head, *tail;
    size_t npending;
    size_t max_pending;
    int reading;  /* the read event is added */
    int eof;      /* no more input: close when the queue drains */
    int closing;  /* bad input or shutdown: close when the queue drains */
    int in_parse; /* inside session_parse: do not free under our feet */
    int dead;     /* free at the end of session_parse */
    struct timeval idle;
    char peer[160];
    session_closed_fn closed;
    void *arg;
};

/* session_free - cancel pending evaluations, close descriptors, tell the owner. */
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
    if (s->rev)
        event_free(s->rev);
    if (s->wev)
        event_free(s->wev);
    if (s->out)
        evbuffer_free(s->out);
    close(s->in_fd);
    if (s->out_fd != s->in_fd)
        close(s->out_fd);
    request_parser_free(s->parser);
    free(s->in);
    session_closed_fn closed = s->closed;
    void *arg = s->arg;
    free(s);
    if (closed)
        closed(arg);
}

/* session_set_reading - add or remove the read event. */
static void session_set_reading(struct session *s, int on)
{
    if (on && !s->reading)
        event_add(s->rev, &s->idle);
    else if (!on && s->reading)
        event_del(s->rev);
    s->reading = on;
}

/* session_write - push buffered replies; arm the write event for what the peer did not take.
 * Returns -1 if the connection is broken (the caller frees the session). */
static int session_write(struct session *s)
{
    size_t len;
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
            if (errno == EAGAIN || errno == EINTR) {
                struct timeval tv = s->idle;
                event_add(s->wev, &tv);
                return 0;
            }
            log_debug("policy connection from %s: write: %s", s->peer, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* session_done_if_finished - close once nothing is left to answer or to write. 1 if freed. */
static int session_done_if_finished(struct session *s)
{
    if ((s->eof || s->closing) && s->npending == 0 && evbuffer_get_length(s->out) == 0) {
        session_free(s);
        return 1;
    }
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

/* session_parse - start evaluations for the complete requests in the input buffer. */
static void session_parse(struct session *s)
{
    struct config *cfg = config_active();
    size_t off = 0;

    s->in_parse = 1;
    while (!s->closing && off < s->in_len) {
        if (s->npending >= s->max_pending) {
            session_take_replies(s);
            if (s->npending >= s->max_pending)
                break; /* read ahead enough: wait for answers */
        }
        size_t consumed = 0;
        struct request *req = NULL;
        enum request_parse_status st =
            request_parser_feed(s->parser, s->in + off, s->in_len - off, &consumed, &req);
        if (st == REQUEST_NEED_MORE)
            break;
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
            off = 0;
            break;
        }
        off += consumed;
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
            off = 0;
            break;
        }
        struct pending *p = xmalloc(sizeof(*p));
        p->next = NULL;
        if (s->tail)
            s->tail->next = p;
        else
            s->head = p;
        s->tail = p;
        s->npending++;
        p->ev = evaluate_start(s->base, s->dns, cfg, req, session_eval_done, s);
    }
    if (off > 0) {
        memmove(s->in, s->in + off, s->in_len - off);
        s->in_len -= off;
    }
    s->in_parse = 0;
    if (s->dead) {
        session_free(s);
        return;
    }
    session_take_replies(s);
    if (session_write(s) != 0) {
        session_free(s);
        return;
    }
    if (session_done_if_finished(s))
        return;
    /* Read more only while the read-ahead allows it and input may still come. */
    session_set_reading(s, !s->eof && !s->closing && s->npending < s->max_pending);
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

    if (what & EV_TIMEOUT) {
        if (s->npending == 0) {
            log_debug("closing idle policy connection from %s", s->peer);
            session_free(s);
        }
        return;
    }
    if (s->in_cap - s->in_len < SESSION_READ_CHUNK) {
        s->in_cap = s->in_len + SESSION_READ_CHUNK;
        s->in = xrealloc(s->in, s->in_cap);
    }
    ssize_t n = read(fd, s->in + s->in_len, s->in_cap - s->in_len);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return;
        log_debug("policy connection from %s: read: %s", s->peer, strerror(errno));
        session_free(s);
        return;
    }
    if (n == 0) {
        s->eof = 1;
        session_set_reading(s, 0);
    }
    s->in_len += (size_t)n;
    session_parse(s);
}

static void session_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    (void)fd;
    if (what & EV_TIMEOUT) {
        log_warn("policy connection from %s does not read its replies: closing", s->peer);
        session_free(s);
        return;
    }
    if (session_write(s) != 0) {
        session_free(s);
        return;
    }
    session_done_if_finished(s);
}

struct session *session_new(struct event_base *base, struct dns *dns, int in_fd, int out_fd,
                            const char *peer, session_closed_fn closed, void *arg)
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
    s->closed = closed;
    s->arg = arg;
    s->max_pending = (size_t)cfg->max_pending_per_connection;
    s->idle.tv_sec = cfg->idle_timeout / 1000;
    s->idle.tv_usec = (cfg->idle_timeout % 1000) * 1000;
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    s->parser = request_parser_new(&limits);
    evutil_make_socket_nonblocking(in_fd);
    if (out_fd != in_fd)
        evutil_make_socket_nonblocking(out_fd);
    /* libevent's allocators fail only for want of memory (the descriptors are ours and valid):
     * the same answer as any other allocation. */
    if (!(s->out = evbuffer_new()))
        xalloc_fail(0);
    if (!(s->rev = event_new(base, in_fd, EV_READ | EV_PERSIST, session_read_cb, s)))
        xalloc_fail(0);
    if (!(s->wev = event_new(base, out_fd, EV_WRITE, session_write_cb, s)))
        xalloc_fail(0);
    session_set_reading(s, 1);
    return s;
}

void session_shutdown(struct session *s)
{
    s->closing = 1;
    session_set_reading(s, 0);
    session_done_if_finished(s);
}
