/*
 * session.c - the life of one policy connection.
 *
 * Input is parsed straight from the bufferevent's input buffer (pulled up, then drained by what
 * the parser consumed); each complete request starts an evaluation, queued in arrival order.
 * Replies are written from the head of the queue as soon as it is finished, so answers always
 * come back in request order even when a later request finishes first. End of input (Postfix
 * closing, or EOF on stdin in -S mode) lets the queued requests finish before the close.
 * Each request uses the configuration active when it was read; a reload never changes it.
 */
#include "policyd/session.h"

#include "policyd/config.h"
#include "policyd/evaluate.h"
#include "policyd/log.h"
#include "policyd/stats.h"
#include "protocol/reply.h"
#include "protocol/request.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pending {
    struct evaluation *ev;
    struct pending *next;
};

struct session {
    struct event_base *base;
    struct bufferevent *in;
    struct bufferevent *out; /* == in for sockets */
    struct request_parser *parser;
    struct pending *head, *tail;
    size_t npending;
    int reading_paused;
    int eof;      /* no more input: close when the queue drains */
    int closing;  /* closing after the output drains */
    int in_read;  /* inside session_read: do not free under our feet */
    int dead;     /* freed at the end of session_read */
    char peer[128];
    session_closed_fn closed;
    void *arg;
};

static void session_read_cb(struct bufferevent *bev, void *arg);

/* session_free - cancel pending evaluations, close descriptors, tell the owner. */
static void session_free(struct session *s)
{
    if (s->in_read) {
        s->dead = 1;
        return;
    }
    while (s->head) {
        struct pending *p = s->head;
        s->head = p->next;
        evaluate_free(p->ev);
        free(p);
    }
    if (s->out && s->out != s->in)
        bufferevent_free(s->out);
    if (s->in)
        bufferevent_free(s->in);
    request_parser_free(s->parser);
    session_closed_fn closed = s->closed;
    void *arg = s->arg;
    free(s);
    if (closed)
        closed(arg);
}

/* session_maybe_close - close once nothing is left to answer or to write. */
static void session_maybe_close(struct session *s)
{
    if ((s->eof || s->closing) && s->npending == 0 &&
        evbuffer_get_length(bufferevent_get_output(s->out)) == 0)
        session_free(s);
}

/* session_write_replies - write every finished reply at the head of the queue. */
static void session_write_replies(struct session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->out);
    while (s->head && evaluate_finished(s->head->ev)) {
        struct pending *p = s->head;
        reply_write(out, evaluate_action(p->ev));
        s->head = p->next;
        if (!s->head)
            s->tail = NULL;
        s->npending--;
        evaluate_free(p->ev);
        free(p);
    }
}

/* session_flush - write finished replies; resume reading if it was paused for them. */
static void session_flush(struct session *s)
{
    session_write_replies(s);
    if (s->reading_paused && !s->in_read && !s->eof && !s->closing &&
        s->npending < (size_t)config_active()->max_pending_per_connection) {
        s->reading_paused = 0;
        bufferevent_enable(s->in, EV_READ);
        /* Requests may already sit in the input buffer. */
        if (evbuffer_get_length(bufferevent_get_input(s->in)) > 0)
            session_read_cb(s->in, s);
    }
}

/* session_eval_done - an evaluation that pended has finished. */
static void session_eval_done(struct evaluation *ev, void *arg)
{
    struct session *s = arg;
    (void)ev;
    session_flush(s);
    session_maybe_close(s);
}

/* session_fail - bad input: log why, stop reading, close when what was read is answered. */
static void session_fail(struct session *s, const char *why)
{
    log_warn("closing policy connection from %s: %s", s->peer, why);
    s->closing = 1;
    bufferevent_disable(s->in, EV_READ);
    evbuffer_drain(bufferevent_get_input(s->in), evbuffer_get_length(bufferevent_get_input(s->in)));
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

static void session_read_cb(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct config *cfg = config_active();

    s->in_read = 1;
    while (!s->closing && !s->dead) {
        session_write_replies(s);
        if (s->npending >= (size_t)cfg->max_pending_per_connection) {
            s->reading_paused = 1;
            bufferevent_disable(s->in, EV_READ);
            break;
        }
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        const char *data = (const char *)evbuffer_pullup(in, -1);
        size_t consumed = 0;
        struct request *req = NULL;
        enum request_parse_status st =
            request_parser_feed(s->parser, data, len, &consumed, &req);
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
            break;
        }
        evbuffer_drain(in, consumed);
        if (strcmp(request_get(req, ATTR_REQUEST), "smtpd_access_policy") != 0) {
            char why[256];
            stats.protocol_errors++;
            snprintf(why, sizeof(why),
                     request_has(req, ATTR_REQUEST)
                         ? "request=%.64s is not a policy request (expected smtpd_access_policy)"
                         : "request without the request=smtpd_access_policy attribute%.0s",
                     request_get(req, ATTR_REQUEST));
            request_free(req);
            session_fail(s, why);
            break;
        }
        struct pending *p = calloc(1, sizeof(*p));
        if (!p)
            abort();
        if (s->tail)
            s->tail->next = p;
        else
            s->head = p;
        s->tail = p;
        s->npending++;
        p->ev = evaluate_start(s->base, cfg, req, session_eval_done, s);
    }
    session_write_replies(s);
    s->in_read = 0;
    if (s->dead) {
        session_free(s);
        return;
    }
    session_maybe_close(s);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    (void)bev;
    session_maybe_close(s);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;

    if (what & BEV_EVENT_EOF) {
        if (bev != s->in) {
            session_free(s); /* the output side is gone: nothing can be answered */
            return;
        }
        s->eof = 1;
        bufferevent_disable(s->in, EV_READ);
        session_maybe_close(s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (s->npending == 0) {
            log_debug("closing idle policy connection from %s", s->peer);
            session_free(s);
            return;
        }
        /* Still answering: not idle. */
        bufferevent_enable(bev, (what & BEV_EVENT_READING) ? EV_READ : EV_WRITE);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        log_debug("policy connection from %s: %s", s->peer,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        session_free(s);
    }
}

struct session *session_new(struct event_base *base, int in_fd, int out_fd, const char *peer,
                            session_closed_fn closed, void *arg)
{
    struct config *cfg = config_active();
    struct session *s = calloc(1, sizeof(*s));
    if (!s) {
        close(in_fd);
        if (out_fd != in_fd)
            close(out_fd);
        return NULL;
    }
    struct request_limits limits = {
        .max_line = cfg->max_line_length,
        .max_attrs = (size_t)cfg->max_attributes,
        .max_size = cfg->max_request_size,
    };
    s->base = base;
    s->closed = closed;
    s->arg = arg;
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    s->parser = request_parser_new(&limits);
    evutil_make_socket_nonblocking(in_fd);
    s->in = bufferevent_socket_new(base, in_fd, BEV_OPT_CLOSE_ON_FREE);
    if (out_fd != in_fd) {
        evutil_make_socket_nonblocking(out_fd);
        s->out = bufferevent_socket_new(base, out_fd, BEV_OPT_CLOSE_ON_FREE);
    } else {
        s->out = s->in;
    }
    if (!s->in || !s->out) {
        session_free(s);
        return NULL;
    }
    struct timeval idle = {cfg->idle_timeout / 1000, (cfg->idle_timeout % 1000) * 1000};
    bufferevent_setcb(s->in, session_read_cb, s->in == s->out ? session_write_cb : NULL,
                      session_event_cb, s);
    if (s->out != s->in)
        bufferevent_setcb(s->out, NULL, session_write_cb, session_event_cb, s);
    bufferevent_set_timeouts(s->in, &idle, &idle);
    if (s->out != s->in)
        bufferevent_set_timeouts(s->out, NULL, &idle);
    bufferevent_enable(s->in, EV_READ);
    if (s->out != s->in)
        bufferevent_enable(s->out, EV_WRITE);
    return s;
}

void session_shutdown(struct session *s)
{
    s->closing = 1;
    bufferevent_disable(s->in, EV_READ);
    session_maybe_close(s);
}
