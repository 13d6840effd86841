/*
 * session.h - one policy connection: read requests, evaluate them, reply in request order.
 *
 * A session owns its bufferevent(s), its parser and the evaluations of the requests it has
 * read; closing it cancels their pending checks. Bad input closes this session only, with a log
 * line naming the peer and the limit or syntax rule. A session reads ahead at most
 * max_pending_per_connection requests; Postfix itself sends one at a time.
 */
#ifndef POLICYD_SESSION_H
#define POLICYD_SESSION_H

struct event_base;
struct session;
struct dns;

/* Called once when the session has closed and freed itself. */
typedef void (*session_closed_fn)(void *arg);

/*
 * session_new - serve the policy protocol on in_fd (replies to out_fd; the same descriptor for
 * sockets, 0 and 1 for -S mode). peer names the client socket in log lines. The session takes
 * ownership of the descriptor(s) and frees itself when the connection ends; closed (may be
 * NULL) is then called. Never NULL (a memory shortage is logged and aborts, see xalloc.h).
 */
struct session *session_new(struct event_base *base, struct dns *dns, int in_fd, int out_fd,
                            const char *peer, session_closed_fn closed, void *arg);

/* session_shutdown - stop reading: answer the requests already read, then close. */
void session_shutdown(struct session *s);

#endif
