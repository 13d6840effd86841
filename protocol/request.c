/*
 * request.c - incremental parser for Postfix policy requests, and the request object.
 *
 * The parser scans bytes with memchr and remembers where it stopped, so a request arriving in
 * any number of pieces is scanned once; limits are checked on every piece, complete or not.
 * A complete request is copied once into its own buffer, where LF and the first '=' of each
 * line become NULs; known attributes are indexed by enum (O(1) lookup), unknown ones counted.
 * The parser owns nothing but its state; each request owns its buffer.
 */
/* SPDX-License-Identifier: MIT */
#include "protocol/request.h"

#include "policyd/lib/log.h"
#include "policyd/lib/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct request {
    const char *value[ATTR_COUNT];
    size_t nattrs;
    size_t nunknown;
    unsigned long long connection; /* request_set_connection; 0: none */
    char buf[];                    /* the request's bytes, one allocation with the struct */
};

struct request_parser {
    struct request_limits limits;
    size_t scanned;    /* bytes of the current request already checked */
    size_t line_start; /* offset of the line being scanned */
    size_t nattrs;     /* complete attribute lines so far */
    enum request_error error;
    char message[200];
    size_t *eol; /* per complete line: offset of its LF (max_attrs entries) */
};

static const char *const attr_names[ATTR_COUNT] = {
    [ATTR_REQUEST] = "request",
    [ATTR_PROTOCOL_STATE] = "protocol_state",
    [ATTR_PROTOCOL_NAME] = "protocol_name",
    [ATTR_HELO_NAME] = "helo_name",
    [ATTR_QUEUE_ID] = "queue_id",
    [ATTR_SENDER] = "sender",
    [ATTR_RECIPIENT] = "recipient",
    [ATTR_RECIPIENT_COUNT] = "recipient_count",
    [ATTR_CLIENT_ADDRESS] = "client_address",
    [ATTR_CLIENT_NAME] = "client_name",
    [ATTR_CLIENT_PORT] = "client_port",
    [ATTR_REVERSE_CLIENT_NAME] = "reverse_client_name",
    [ATTR_SERVER_ADDRESS] = "server_address",
    [ATTR_SERVER_PORT] = "server_port",
    [ATTR_INSTANCE] = "instance",
    [ATTR_SASL_METHOD] = "sasl_method",
    [ATTR_SASL_USERNAME] = "sasl_username",
    [ATTR_SASL_SENDER] = "sasl_sender",
    [ATTR_SIZE] = "size",
    [ATTR_CCERT_SUBJECT] = "ccert_subject",
    [ATTR_CCERT_ISSUER] = "ccert_issuer",
    [ATTR_CCERT_FINGERPRINT] = "ccert_fingerprint",
    [ATTR_CCERT_PUBKEY_FINGERPRINT] = "ccert_pubkey_fingerprint",
    [ATTR_ENCRYPTION_PROTOCOL] = "encryption_protocol",
    [ATTR_ENCRYPTION_CIPHER] = "encryption_cipher",
    [ATTR_ENCRYPTION_KEYSIZE] = "encryption_keysize",
    [ATTR_ETRN_DOMAIN] = "etrn_domain",
    [ATTR_STRESS] = "stress",
    [ATTR_POLICY_CONTEXT] = "policy_context",
    [ATTR_COMPATIBILITY_LEVEL] = "compatibility_level",
    [ATTR_MAIL_VERSION] = "mail_version",
    [ATTR_TLS_SNI] = "tls_sni",
};

static const char *const state_names[] = {
    [STATE_UNKNOWN] = "unknown", [STATE_CONNECT] = "CONNECT",
    [STATE_EHLO] = "EHLO",       [STATE_HELO] = "HELO",
    [STATE_MAIL] = "MAIL",       [STATE_RCPT] = "RCPT",
    [STATE_DATA] = "DATA",       [STATE_END_OF_MESSAGE] = "END-OF-MESSAGE",
    [STATE_VRFY] = "VRFY",       [STATE_ETRN] = "ETRN",
};

/* attr_hash - a cheap hash of (length, first, last byte); the table maps it to candidates. */
static unsigned attr_hash(const char *name, size_t len)
{
    return ((unsigned)len * 31u + (unsigned char)name[0] * 7u + (unsigned char)name[len - 1]) &
           255u;
}

static signed char attr_table[256][2]; /* up to two attributes per slot, -1 = none */
static size_t attr_lens[ATTR_COUNT];
static int attr_table_ready;

/* attr_table_build - fill the lookup table once (checked: no slot holds more than two). */
static void attr_table_build(void)
{
    memset(attr_table, -1, sizeof(attr_table));
    for (int i = 0; i < ATTR_COUNT; i++) {
        attr_lens[i] = strlen(attr_names[i]);
        signed char *slot = attr_table[attr_hash(attr_names[i], attr_lens[i])];
        if (slot[0] < 0)
            slot[0] = (signed char)i;
        else if (slot[1] < 0)
            slot[1] = (signed char)i;
        else
            log_panic("request: three attribute names share hash slot %u: change attr_hash",
                      (unsigned)attr_hash(attr_names[i], attr_lens[i]));
    }
    attr_table_ready = 1;
}

enum request_attr request_attr_lookup(const char *name, size_t len)
{
    if (!attr_table_ready)
        attr_table_build();
    if (len == 0)
        return ATTR_COUNT;
    const signed char *slot = attr_table[attr_hash(name, len)];
    for (int k = 0; k < 2 && slot[k] >= 0; k++)
        if (attr_lens[slot[k]] == len && memcmp(attr_names[slot[k]], name, len) == 0)
            return (enum request_attr)slot[k];
    return ATTR_COUNT;
}

const char *request_attr_name(enum request_attr attr)
{
    return attr < ATTR_COUNT ? attr_names[attr] : "unknown";
}

const char *request_state_name(enum request_state state)
{
    return state <= STATE_ETRN ? state_names[state] : "unknown";
}

struct request_parser *request_parser_new(const struct request_limits *limits)
{
    struct request_parser *p = xcalloc(1, sizeof(*p));
    p->limits = *limits;
    p->eol = xreallocarray(NULL, limits->max_attrs + 1, sizeof(*p->eol));
    return p;
}

void request_parser_free(struct request_parser *parser)
{
    if (parser)
        free(parser->eol);
    free(parser);
}

const char *request_parser_error(const struct request_parser *parser)
{
    return parser->message;
}

enum request_error request_parser_error_code(const struct request_parser *parser)
{
    return parser->error;
}

/* parser_fail - enter the error state with a message. */
static enum request_parse_status parser_fail(struct request_parser *p, enum request_error e,
                                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum request_parse_status parser_fail(struct request_parser *p, enum request_error e,
                                             const char *fmt, ...)
{
    va_list ap;
    p->error = e;
    va_start(ap, fmt);
    vsnprintf(p->message, sizeof(p->message), fmt, ap);
    va_end(ap);
    return REQUEST_ERROR;
}

/* request_alloc - a request holding a copy of len bytes (NUL-terminated). */
static struct request *request_alloc(const char *data, size_t len)
{
    struct request *req = xmalloc(sizeof(*req) + len + 1);
    memset(req, 0, sizeof(*req));
    memcpy(req->buf, data, len);
    req->buf[len] = 0;
    return req;
}

/* request_index - record one "name=value" line (eq and nl are offsets into req->buf). */
static void request_index(struct request *req, size_t start, size_t eq, size_t nl)
{
    req->buf[eq] = 0;
    req->buf[nl] = 0;
    enum request_attr a = request_attr_lookup(req->buf + start, eq - start);
    if (a < ATTR_COUNT)
        req->value[a] = req->buf + eq + 1; /* a duplicate: the last one wins */
    else
        req->nunknown++;
    req->nattrs++;
}

/* request_build - a complete request whose lines the parser has checked. */
static struct request *request_build(const struct request_parser *p, const char *data, size_t len)
{
    struct request *req = request_alloc(data, len);
    size_t start = 0;
    for (size_t i = 0; i < p->nattrs; i++) {
        /* The name is short: finding its '=' again is cheaper than remembering it. */
        size_t eq = (size_t)((const char *)memchr(data + start, '=', p->eol[i] - start) - data);
        request_index(req, start, eq, p->eol[i]);
        start = p->eol[i] + 1;
    }
    return req;
}

enum request_parse_status request_parser_feed(struct request_parser *p, const char *data,
                                              size_t len, size_t *consumed, struct request **out)
{
    const struct request_limits *lim = &p->limits;

    *consumed = 0;
    *out = NULL;
    if (p->error)
        return REQUEST_ERROR;
    while (p->scanned < len) {
        /* The first violation by position wins, however the input was split: check the
         * bytes up to the nearest limit before looking further. */
        const char *nl = memchr(data + p->scanned, '\n', len - p->scanned);
        size_t end = nl ? (size_t)(nl - data) : len; /* content bytes end here */
        size_t line_cap = p->line_start + lim->max_line;
        size_t size_cap = lim->max_size;
        size_t check_end = end < line_cap ? end : line_cap;
        if (check_end > size_cap)
            check_end = size_cap;
        if (check_end > p->scanned && memchr(data + p->scanned, 0, check_end - p->scanned))
            return parser_fail(p, REQUEST_ERR_NUL_BYTE, "NUL byte in line %zu", p->nattrs + 1);
        if (end > check_end || (nl && end >= size_cap)) {
            if (line_cap < end && line_cap <= size_cap)
                return parser_fail(p, REQUEST_ERR_LINE_TOO_LONG,
                                   "line %zu is longer than %zu bytes", p->nattrs + 1,
                                   lim->max_line);
            return parser_fail(p, REQUEST_ERR_TOO_LARGE, "request larger than %zu bytes",
                               lim->max_size);
        }
        if (!nl) {
            p->scanned = len;
            return REQUEST_NEED_MORE;
        }
        size_t upto = end, line_len = end - p->line_start;
        const char *line = data + p->line_start;
        if (line_len == 0) {
            /* The empty line: the request is complete. */
            size_t total = upto + 1;
            *out = request_build(p, data, total);
            *consumed = total;
            p->scanned = p->line_start = p->nattrs = 0;
            return REQUEST_COMPLETE;
        }
        if (line_len == 1 && line[0] == '\r')
            /* The empty line with a CR: the client ends its lines with CR LF. (A value that
             * ends in CR is data; the request's end shows the line ends for certain.) */
            return parser_fail(p, REQUEST_ERR_CRLF,
                               "request line %zu ends with CR LF: Postfix sends LF only; is this "
                               "client speaking the policy protocol?",
                               p->nattrs + 1);
        const char *eq = memchr(line, '=', line_len);
        if (!eq)
            return parser_fail(p, REQUEST_ERR_NO_EQUALS, "line %zu has no '='", p->nattrs + 1);
        if (eq == line)
            return parser_fail(p, REQUEST_ERR_EMPTY_NAME, "line %zu has an empty attribute name",
                               p->nattrs + 1);
        if (p->nattrs + 1 > lim->max_attrs)
            return parser_fail(p, REQUEST_ERR_TOO_MANY_ATTRS, "more than %zu attributes",
                               lim->max_attrs);
        p->eol[p->nattrs++] = upto;
        p->scanned = p->line_start = upto + 1;
    }
    return REQUEST_NEED_MORE;
}

void request_free(struct request *req)
{
    free(req);
}

const char *request_get(const struct request *req, enum request_attr attr)
{
    const char *v = attr < ATTR_COUNT ? req->value[attr] : NULL;
    return v ? v : "";
}

int request_has(const struct request *req, enum request_attr attr)
{
    return attr < ATTR_COUNT && req->value[attr] != NULL;
}

enum request_state request_state(const struct request *req)
{
    const char *s = request_get(req, ATTR_PROTOCOL_STATE);
    for (int i = STATE_CONNECT; i <= STATE_ETRN; i++)
        if (strcmp(s, state_names[i]) == 0)
            return (enum request_state)i;
    return STATE_UNKNOWN;
}

size_t request_attr_count(const struct request *req)
{
    return req->nattrs;
}

size_t request_unknown_count(const struct request *req)
{
    return req->nunknown;
}

void request_set_connection(struct request *req, unsigned long long connection)
{
    req->connection = connection;
}

unsigned long long request_connection(const struct request *req)
{
    return req->connection;
}

struct request *request_new_from_pairs(const char *const *pairs)
{
    size_t len = 1;
    for (size_t i = 0; pairs[i] && pairs[i + 1]; i += 2)
        len += strlen(pairs[i]) + strlen(pairs[i + 1]) + 2;
    struct request *req = xmalloc(sizeof(*req) + len + 1);
    memset(req, 0, sizeof(*req));
    size_t n = 0;
    for (size_t i = 0; pairs[i] && pairs[i + 1]; i += 2) {
        /* Names must not be empty nor hold '='; values must not hold LF: our own callers. */
        size_t start = n;
        n += (size_t)sprintf(req->buf + n, "%s=%s\n", pairs[i], pairs[i + 1]);
        request_index(req, start, start + strlen(pairs[i]), n - 1);
    }
    req->buf[n] = '\n';
    req->buf[n + 1] = 0;
    return req;
}

void request_log_key(const struct request *req, char *out, unsigned long outlen)
{
    const char *qid = request_get(req, ATTR_QUEUE_ID);
    const char *name = request_get(req, ATTR_CLIENT_NAME);
    snprintf(out, outlen, "%s: client=%s[%s], from=<%s>, to=<%s>, helo=<%s>",
             *qid ? qid : "NOQUEUE", *name ? name : "unknown",
             request_get(req, ATTR_CLIENT_ADDRESS), request_get(req, ATTR_SENDER),
             request_get(req, ATTR_RECIPIENT), request_get(req, ATTR_HELO_NAME));
}
