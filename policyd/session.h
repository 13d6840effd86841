/*
 * session.h - one policy connection: read requests, evaluate them, reply in request order.
 *
 * A session owns its descriptor(s), its parser and the evaluations of the requests it has
 * read; closing it cancels their pending checks. Bad input closes this session only, with a log
 * line naming the peer and the limit or syntax rule. Every wait is bounded: idle_timeout
 * between requests, request_read_timeout from a request's first byte to its empty line,
 * write_timeout for a peer that takes no replies. Reading pauses while
 * max_pending_per_connection requests are unanswered or max_output_buffer bytes of replies are
 * unsent, so a client that sends and never reads holds a bounded amount of memory.
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_SESSION_H
#define POLICYD_SESSION_H

struct event_base;
struct session;
struct dns;

/* Why a session ended. */
enum session_end {
    SESSION_END_EOF,           /* the peer closed, or the connection broke (logged at debug) */
    SESSION_END_BAD_INPUT,     /* a protocol or limit violation (the session logged it) */
    SESSION_END_IDLE,          /* idle_timeout passed between requests */
    SESSION_END_READ_TIMEOUT,  /* a request was not complete within request_read_timeout */
    SESSION_END_WRITE_TIMEOUT, /* the peer took no reply for write_timeout */
    SESSION_END_EVICTED,       /* session_evict: the owner needed the slot */
    SESSION_END_DRAINED        /* session_drain: everything the peer had sent is answered */
};

/* What the owner hears. Neither hook is ever called from inside session_new, session_evict's
 * caller excepted (ended runs before session_evict returns). */
struct session_hooks {
    /* ended - the session has closed and is freed; why, the peer's name and, for the timeouts,
     * a sentence for the log line ("no request for 600 s (idle_timeout)"). Called once. */
    void (*ended)(void *arg, enum session_end why, const char *peer, const char *detail);
    /* idle - the session became idle (1: no request in progress, no reply unsent) or busy (0).
     * A new session starts as session_is_idle says; only changes are reported. May be NULL. */
    void (*idle)(void *arg, int idle);
};

/*
 * session_new - serve the policy protocol on in_fd (replies to out_fd; the same descriptor for
 * sockets, 0 and 1 for -S mode), already non-blocking (accept4 makes them so). peer names the
 * client socket in log lines. The session takes ownership of the descriptor(s) and frees itself
 * when the connection ends, then calls hooks->ended (hooks is kept, not copied). Never NULL (a
 * memory shortage aborts, xalloc.h).
 */
struct session *session_new(struct event_base *base, struct dns *dns, int in_fd, int out_fd,
                            const char *peer, const struct session_hooks *hooks, void *arg);

/* session_is_idle - 1 if the session is idle as last reported: a new one is, unless the first
 * bytes of its first request are already waiting to be read. */
int session_is_idle(const struct session *s);

/* session_evict - close an idle session now, to make room (ended is called with
 * SESSION_END_EVICTED before this returns). A busy session is left alone. */
void session_evict(struct session *s);

/* session_drain - shutting down: go on reading only what the peer has sent already, answer
 * every complete request, and close at the first moment nothing is left to answer and a read
 * finds nothing more (SESSION_END_DRAINED). A request still arriving is bounded by
 * request_read_timeout. */
void session_drain(struct session *s);

#endif
