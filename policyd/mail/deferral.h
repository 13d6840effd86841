/*
 * deferral.h - why Postfix defers outbound mail: the lines of `postqueue -j` read, and each
 * recipient's delay reason (the remote server's reply, or Postfix's own words) sorted into a
 * kind with its cause and fix. Pure: no I/O, no event loop; the doctor's queue section and the
 * daemon's queue watcher (policyd/queue_watch.c) both use it, so they always agree.
 *
 * A kind is found by words the reason contains (case-insensitive, first kind in the table
 * order wins: "Greylisted" contains "listed", so greylisting is matched before blocklists).
 */
/* SPDX-License-Identifier: MIT */
#ifndef POLICYD_MAIL_DEFERRAL_H
#define POLICYD_MAIL_DEFERRAL_H

#include <stddef.h>

enum deferral_kind {
    DEFERRAL_RELAY,
    DEFERRAL_GREYLIST,
    DEFERRAL_PTR,
    DEFERRAL_DNSBL,
    DEFERRAL_SPF,
    DEFERRAL_DMARC,
    DEFERRAL_TLS,
    DEFERRAL_MAILBOX_FULL,
    DEFERRAL_DNS,
    DEFERRAL_CONNECT,
    DEFERRAL_OTHER,
    DEFERRAL_NKINDS
};

struct deferral_diagnosis {
    const char *name;  /* "reverse DNS": for people */
    const char *label; /* "ptr": for metrics labels, [a-z_] */
    int ours;          /* 1: something to fix on this server (or its DNS); 0: the destination's
                        * business or a passing state */
    const char *why, *fix;
};

/* deferral_classify - the kind of a delay reason. */
enum deferral_kind deferral_classify(const char *reason);

/* deferral_diagnosis - what a kind means (static storage). kind out of range: DEFERRAL_OTHER's. */
const struct deferral_diagnosis *deferral_diagnosis(enum deferral_kind kind);

struct deferral_recipient {
    char *address; /* "" when the line names none */
    char *reason;  /* delay_reason; "" for a recipient not (yet) deferred */
};

/* One message of the queue listing. */
struct deferral_message {
    char queue_name[32]; /* "deferred", "active", "incoming", "hold", ... */
    char queue_id[32];
    long arrival_time; /* seconds since the epoch; 0: not given */
    struct deferral_recipient *rcpts;
    size_t nrcpts;
};

/* deferral_parse_line - one line of `postqueue -j` (a JSON object per message) into msg: strings
 * decoded (\u escapes to UTF-8, control characters to spaces), each cut to DEFERRAL_MAX_STRING
 * bytes. A flat scan, enough for postqueue's format: a string followed by ':' is a key, anything
 * else the value of the last key. 0, or -1 when line is no JSON object (msg then empty). Free
 * msg with deferral_message_free, whatever the result. */
#define DEFERRAL_MAX_STRING 4096
int deferral_parse_line(const char *line, struct deferral_message *msg);

/* deferral_message_free - the recipients of msg; msg may then be reused. NULL ok. */
void deferral_message_free(struct deferral_message *msg);

/* deferral_domain - the domain of a recipient address ("" when it has none), lower case, into
 * out. Returns out. */
char *deferral_domain(const char *address, char *out, size_t outlen);

#endif
