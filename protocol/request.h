/*
 * request.h - the Postfix policy delegation request: parse it, read its attributes.
 *
 * A request is "name=value" lines ending in LF, ended by an empty line (SMTPD_POLICY_README).
 * The parser is pure code over bytes: the caller hands it the whole unconsumed input each time
 * (the same bytes as last time plus whatever arrived), the parser remembers how far it scanned,
 * so a request that trickles in byte by byte costs linear time. Hard limits (line length,
 * attributes, request size) are checked as bytes arrive, before a request is complete.
 * A finished request owns one copy of its bytes; attribute values point into it.
 */
/* SPDX-License-Identifier: MIT */
#ifndef PROTOCOL_REQUEST_H
#define PROTOCOL_REQUEST_H

#include <stddef.h>

/* Every attribute Postfix 3.x sends, known by name. */
enum request_attr {
    ATTR_REQUEST,
    ATTR_PROTOCOL_STATE,
    ATTR_PROTOCOL_NAME,
    ATTR_HELO_NAME,
    ATTR_QUEUE_ID,
    ATTR_SENDER,
    ATTR_RECIPIENT,
    ATTR_RECIPIENT_COUNT,
    ATTR_CLIENT_ADDRESS,
    ATTR_CLIENT_NAME,
    ATTR_CLIENT_PORT,
    ATTR_REVERSE_CLIENT_NAME,
    ATTR_SERVER_ADDRESS,
    ATTR_SERVER_PORT,
    ATTR_INSTANCE,
    ATTR_SASL_METHOD,
    ATTR_SASL_USERNAME,
    ATTR_SASL_SENDER,
    ATTR_SIZE,
    ATTR_CCERT_SUBJECT,
    ATTR_CCERT_ISSUER,
    ATTR_CCERT_FINGERPRINT,
    ATTR_CCERT_PUBKEY_FINGERPRINT,
    ATTR_ENCRYPTION_PROTOCOL,
    ATTR_ENCRYPTION_CIPHER,
    ATTR_ENCRYPTION_KEYSIZE,
    ATTR_ETRN_DOMAIN,
    ATTR_STRESS,
    ATTR_POLICY_CONTEXT,
    ATTR_COMPATIBILITY_LEVEL,
    ATTR_MAIL_VERSION,
    ATTR_TLS_SNI,
    ATTR_COUNT
};

/* The SMTP stage a request comes from (attribute protocol_state). */
enum request_state {
    STATE_UNKNOWN, /* absent or a value Postfix does not document: accepted, checks answer DUNNO */
    STATE_CONNECT,
    STATE_EHLO,
    STATE_HELO,
    STATE_MAIL,
    STATE_RCPT,
    STATE_DATA,
    STATE_END_OF_MESSAGE,
    STATE_VRFY,
    STATE_ETRN
};

struct request_limits {
    size_t max_line;  /* bytes in one line, LF excluded */
    size_t max_attrs; /* attribute lines in one request */
    size_t max_size;  /* bytes in one request, final empty line included */
};

enum request_parse_status { REQUEST_NEED_MORE, REQUEST_COMPLETE, REQUEST_ERROR };

/* Why parsing failed; request_parser_error() gives the human text. */
enum request_error {
    REQUEST_ERR_NONE,
    REQUEST_ERR_LINE_TOO_LONG,
    REQUEST_ERR_TOO_MANY_ATTRS,
    REQUEST_ERR_TOO_LARGE,
    REQUEST_ERR_NO_EQUALS,  /* a line without '=' */
    REQUEST_ERR_EMPTY_NAME, /* a line starting with '=' */
    REQUEST_ERR_NUL_BYTE,   /* NUL cannot be carried in a C string value: refused */
    REQUEST_ERR_CRLF        /* the empty line is CR LF: not a Postfix policy client */
};

struct request;
struct request_parser;

/* request_parser_new - a parser with these limits (copied). Never NULL (aborts on ENOMEM). */
struct request_parser *request_parser_new(const struct request_limits *limits);

/* request_parser_free - accepts NULL. */
void request_parser_free(struct request_parser *parser);

/*
 * request_parser_feed - look for one complete request at the start of data[0..len).
 * data must start with the bytes not yet consumed, unchanged since the last call.
 * COMPLETE: *out is a new request (caller frees), *consumed bytes belong to it (caller drains
 *   them); the parser is reset for the next request.
 * NEED_MORE: nothing to do until more bytes arrive.
 * ERROR: a limit or the syntax was violated; request_parser_error() says which. The parser
 *   stays in the error state (the connection must be closed).
 */
enum request_parse_status request_parser_feed(struct request_parser *parser, const char *data,
                                              size_t len, size_t *consumed, struct request **out);

/* request_parser_error - human text for the last error, e.g. "line 3 longer than 4096 bytes". */
const char *request_parser_error(const struct request_parser *parser);
enum request_error request_parser_error_code(const struct request_parser *parser);

/* request_free - accepts NULL. */
void request_free(struct request *req);

/* request_get - the value of a known attribute, "" when absent. Never NULL. Owned by req.
 * A duplicated attribute: the last value wins. */
const char *request_get(const struct request *req, enum request_attr attr);

/* request_has - 1 if the attribute was present (even with an empty value), 0 if not. */
int request_has(const struct request *req, enum request_attr attr);

/* request_state - protocol_state as an enum. */
enum request_state request_state(const struct request *req);

/* request_attr_count - attribute lines in the request (known, unknown and duplicates). */
size_t request_attr_count(const struct request *req);

/* request_unknown_count - attribute lines whose name Postfix does not document. */
size_t request_unknown_count(const struct request *req);

/* request_attr_name - the wire name of a known attribute ("client_address"). */
const char *request_attr_name(enum request_attr attr);

/* request_attr_lookup - the attribute with this wire name, or ATTR_COUNT if unknown. */
enum request_attr request_attr_lookup(const char *name, size_t len);

/* request_state_name - "RCPT", "END-OF-MESSAGE", ... ("unknown" for STATE_UNKNOWN). */
const char *request_state_name(enum request_state state);

/* request_set_connection / request_connection - the number of the connection the request
 * arrived on, as its receiver (the daemon's session) numbers them; 0 when it came by none (a
 * test, the doctor). Not a protocol attribute: Postfix's smtpd sends one request at a time over
 * a connection it keeps, so the number tells whose requests follow one another. */
void request_set_connection(struct request *req, unsigned long long connection);
unsigned long long request_connection(const struct request *req);

/* request_new_from_pairs - build a request from NULL-terminated name, value pairs (tests,
 * the doctor command). Never NULL. */
struct request *request_new_from_pairs(const char *const *pairs);

/* request_log_key - the key of a diagnosis line, as Postfix keys its own:
 * "QUEUEID: client=NAME[ADDR], from=<S>, to=<R>, helo=<H>" (NOQUEUE before a queue id). */
void request_log_key(const struct request *req, char *out, unsigned long outlen);

#endif
