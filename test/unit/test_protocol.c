/*
 * test_protocol.c - the request parser (captured Postfix requests, pieces, pipelining, every
 * limit and error, also on incomplete input), the reply writer and action validation.
 */
/* SPDX-License-Identifier: MIT */
#include "protocol/action.h"
#include "protocol/reply.h"
#include "protocol/request.h"
#include "unit.h"

#include <event2/buffer.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct request_limits limits = {8192, 256, 65536};

/* parse_one - feed data whole; the request or NULL, status in *st. */
static struct request *parse_one(const char *data, size_t len, enum request_parse_status *st,
                                 size_t *consumed, struct request_parser **keep)
{
    struct request_parser *p = request_parser_new(&limits);
    struct request *req = NULL;
    *st = request_parser_feed(p, data, len, consumed, &req);
    if (keep)
        *keep = p;
    else
        request_parser_free(p);
    return req;
}

/* parse_bytewise - the same data one byte more per call, as a slow client sends it. */
static struct request *parse_bytewise(const char *data, size_t len, enum request_parse_status *st,
                                      enum request_error *err)
{
    struct request_parser *p = request_parser_new(&limits);
    struct request *req = NULL;
    size_t consumed;
    *st = REQUEST_NEED_MORE;
    for (size_t n = 1; n <= len && *st == REQUEST_NEED_MORE; n++)
        *st = request_parser_feed(p, data, n, &consumed, &req);
    *err = request_parser_error_code(p);
    request_parser_free(p);
    return req;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    static char buf[65536];
    *len = fread(buf, 1, sizeof(buf), fp);
    fclose(fp);
    return buf;
}

static void test_captures(void)
{
    const char *files[] = {"01-rcpt-unix-smtp-source.txt", "02-rcpt-inet-relay-context.txt",
                           "03-data.txt", "04-end-of-message.txt", "05-rcpt-xclient-login.txt"};
    enum request_state states[] = {STATE_RCPT, STATE_RCPT, STATE_DATA, STATE_END_OF_MESSAGE,
                                   STATE_RCPT};
    for (size_t i = 0; i < 5; i++) {
        char path[256];
        size_t len;
        snprintf(path, sizeof(path), "test/data/requests/%s", files[i]);
        const char *data = read_file(path, &len);
        CHECK(data != NULL);
        if (!data)
            continue;
        enum request_parse_status st, st2;
        enum request_error err;
        size_t consumed;
        struct request *a = parse_one(data, len, &st, &consumed, NULL);
        struct request *b = parse_bytewise(data, len, &st2, &err);
        CHECK(st == REQUEST_COMPLETE && st2 == REQUEST_COMPLETE && consumed == len);
        CHECK(a && b);
        if (!a || !b)
            continue;
        CHECK_STR(request_get(a, ATTR_REQUEST), "smtpd_access_policy");
        CHECK(request_state(a) == states[i]);
        CHECK(request_attr_count(a) == 29 && request_unknown_count(a) == 0);
        for (int k = 0; k < ATTR_COUNT; k++)
            CHECK(strcmp(request_get(a, (enum request_attr)k),
                         request_get(b, (enum request_attr)k)) == 0);
        CHECK(request_has(a, ATTR_QUEUE_ID) && !request_has(a, ATTR_MAIL_VERSION));
        request_free(a);
        request_free(b);
    }
    size_t len = 0;
    const char *data = read_file("test/data/requests/05-rcpt-xclient-login.txt", &len);
    enum request_parse_status st;
    size_t consumed;
    struct request *r = parse_one(data, len, &st, &consumed, NULL);
    CHECK_STR(request_get(r, ATTR_CLIENT_ADDRESS), "203.0.113.7");
    CHECK_STR(request_get(r, ATTR_SASL_USERNAME), "sasluser");
    CHECK_STR(request_get(r, ATTR_REVERSE_CLIENT_NAME), "mail.example.org");
    CHECK_STR(request_get(r, ATTR_QUEUE_ID), "");
    request_free(r);
}

static void test_values(void)
{
    const char text[] = "request=smtpd_access_policy\nsender= a b \nrecipient=x=y\r\n"
                        "helo_name=\nnew_attribute=1\nclient_address=1.1.1.1\n"
                        "client_address=2.2.2.2\nsize=\xff\xfe\n\n";
    enum request_parse_status st;
    size_t consumed;
    struct request *r = parse_one(text, sizeof(text) - 1, &st, &consumed, NULL);
    CHECK(st == REQUEST_COMPLETE && r);
    CHECK_STR(request_get(r, ATTR_SENDER), " a b ");    /* whitespace kept */
    CHECK_STR(request_get(r, ATTR_RECIPIENT), "x=y\r"); /* first '=', CR is data */
    CHECK_STR(request_get(r, ATTR_HELO_NAME), "");      /* empty value */
    CHECK(request_has(r, ATTR_HELO_NAME));
    CHECK_STR(request_get(r, ATTR_CLIENT_ADDRESS), "2.2.2.2"); /* last wins */
    CHECK_STR(request_get(r, ATTR_SIZE), "\xff\xfe");          /* non-UTF-8 */
    CHECK(request_unknown_count(r) == 1 && request_attr_count(r) == 8);
    CHECK(request_state(r) == STATE_UNKNOWN);
    request_free(r);

    const char *states[] = {"CONNECT", "EHLO",           "HELO", "MAIL", "RCPT",
                            "DATA",    "END-OF-MESSAGE", "VRFY", "ETRN"};
    for (int i = 0; i < 9; i++) {
        const char *pairs[] = {"protocol_state", states[i], NULL};
        r = request_new_from_pairs(pairs);
        CHECK(request_state(r) == (enum request_state)(STATE_CONNECT + i));
        CHECK_STR(request_state_name(request_state(r)), states[i]);
        request_free(r);
    }
    /* The connection number is the receiver's, not an attribute: none until it is set. */
    const char *one[] = {"instance", "1a2b.5f3e.1c.0", NULL};
    r = request_new_from_pairs(one);
    CHECK(request_connection(r) == 0);
    request_set_connection(r, 42);
    CHECK(request_connection(r) == 42 && request_attr_count(r) == 1);
    request_free(r);
    CHECK(request_attr_lookup("tls_sni", 7) == ATTR_TLS_SNI);
    CHECK(request_attr_lookup("server_address", 14) == ATTR_SERVER_ADDRESS);
    CHECK(request_attr_lookup("client_addres", 13) == ATTR_COUNT);
    for (int k = 0; k < ATTR_COUNT; k++) {
        const char *n = request_attr_name((enum request_attr)k);
        CHECK(request_attr_lookup(n, strlen(n)) == (enum request_attr)k);
    }
}

static void test_pipelined(void)
{
    const char text[] = "request=smtpd_access_policy\nrecipient=a\n\n"
                        "request=smtpd_access_policy\nrecipient=b\n\nrequest=smtpd_acc";
    struct request_parser *p = request_parser_new(&limits);
    size_t off = 0, consumed, len = sizeof(text) - 1;
    struct request *r;
    CHECK(request_parser_feed(p, text, len, &consumed, &r) == REQUEST_COMPLETE);
    CHECK_STR(request_get(r, ATTR_RECIPIENT), "a");
    request_free(r);
    off += consumed;
    CHECK(request_parser_feed(p, text + off, len - off, &consumed, &r) == REQUEST_COMPLETE);
    CHECK_STR(request_get(r, ATTR_RECIPIENT), "b");
    request_free(r);
    off += consumed;
    CHECK(request_parser_feed(p, text + off, len - off, &consumed, &r) == REQUEST_NEED_MORE);
    request_parser_free(p);

    /* An empty line alone is an empty request: the server refuses it, not the parser. */
    enum request_parse_status st;
    r = parse_one("\n", 1, &st, &consumed, NULL);
    CHECK(st == REQUEST_COMPLETE && r && request_attr_count(r) == 0 && consumed == 1);
    request_free(r);
}

/* expect_error - whole and byte by byte, data must fail with code (and message part). */
static void expect_error(const char *data, size_t len, enum request_error code, const char *msg)
{
    enum request_parse_status st;
    enum request_error err;
    size_t consumed;
    struct request_parser *p;
    struct request *r = parse_one(data, len, &st, &consumed, &p);
    CHECK(st == REQUEST_ERROR && r == NULL);
    CHECK(request_parser_error_code(p) == code);
    if (!strstr(request_parser_error(p), msg)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", request_parser_error(p), msg);
        CHECK(!"error message");
    }
    /* sticky: the connection must be closed */
    CHECK(request_parser_feed(p, "a=b\n\n", 5, &consumed, &r) == REQUEST_ERROR);
    request_parser_free(p);
    if (len < 300000) {
        r = parse_bytewise(data, len, &st, &err);
        CHECK(st == REQUEST_ERROR && err == code && r == NULL);
    }
}

static void test_errors(void)
{
    expect_error("request=x\nno equals here\n\n", 26, REQUEST_ERR_NO_EQUALS, "line 2 has no '='");
    expect_error("=value\n\n", 8, REQUEST_ERR_EMPTY_NAME, "line 1 has an empty attribute name");
    expect_error("a=b\nc=d\0e\n\n", 11, REQUEST_ERR_NUL_BYTE, "NUL byte in line 2");
    /* CR LF line ends: named as such at the end of the request (a value may end in CR). */
    const char crlf[] = "request=smtpd_access_policy\r\nsender=a@b\r\n\r\n";
    expect_error(crlf, sizeof(crlf) - 1, REQUEST_ERR_CRLF,
                 "request line 3 ends with CR LF: Postfix sends LF only; is this client speaking "
                 "the policy protocol?");

    /* 1 MB line without LF: fails once max_line + 1 bytes of it are buffered. */
    size_t big = 1 << 20;
    char *line = malloc(big);
    memset(line, 'x', big);
    memcpy(line, "recipient=", 10);
    expect_error(line, big, REQUEST_ERR_LINE_TOO_LONG, "line 1 is longer than 8192 bytes");
    struct request_parser *p = request_parser_new(&limits);
    size_t consumed;
    struct request *r;
    CHECK(request_parser_feed(p, line, 8192, &consumed, &r) == REQUEST_NEED_MORE);
    CHECK(request_parser_feed(p, line, 8193, &consumed, &r) == REQUEST_ERROR);
    request_parser_free(p);
    free(line);

    /* 100,000 attributes: fails at the 257th, before the request ends. */
    size_t cap = 100000 * 12 + 2, n = 0;
    char *many = malloc(cap);
    for (int i = 0; i < 100000; i++)
        n += (size_t)sprintf(many + n, "a%d=b\n", i);
    expect_error(many, n, REQUEST_ERR_TOO_MANY_ATTRS, "more than 256 attributes");
    p = request_parser_new(&limits);
    size_t at256 = 0;
    for (int i = 0, lines = 0; lines < 256; i++)
        if (many[i] == '\n')
            lines++, at256 = (size_t)i + 1;
    CHECK(request_parser_feed(p, many, at256, &consumed, &r) == REQUEST_NEED_MORE);
    request_parser_free(p);
    free(many);

    /* Larger than max_request_size with every line within limits. */
    char *large = malloc(100 * 720);
    n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)sprintf(large + n, "x%d=%0700d\n", i, 0);
    expect_error(large, n, REQUEST_ERR_TOO_LARGE, "request larger than 65536 bytes");
    free(large);
}

static void test_reply(void)
{
    struct evbuffer *out = evbuffer_new();
    char buf[256];
    reply_write(out, NULL);
    reply_write(out, "554 5.7.1 Relay access denied");
    reply_write(out, "REJECT evil\r\ninjected=1");
    size_t n = evbuffer_remove(out, buf, sizeof(buf) - 1);
    buf[n] = 0;
    CHECK_STR(buf, "action=DUNNO\n\naction=554 5.7.1 Relay access denied\n\n"
                   "action=REJECT evil  injected=1\n\n");
    /* Printable 7-bit ASCII only, whatever the check gives: 8-bit and control bytes are '?'. */
    reply_write(out, "451 4.4.3 SPF temperror for ex\xe9"
                     "ample2.org\tor \xc3\xa9\x01\x7f");
    n = evbuffer_remove(out, buf, sizeof(buf) - 1);
    buf[n] = 0;
    CHECK_STR(buf, "action=451 4.4.3 SPF temperror for ex?ample2.org or ????\n\n");
    evbuffer_free(out);
}

static void test_actions(void)
{
    struct {
        const char *text;
        int ok;
        enum action_kind kind;
    } cases[] = {
        {"DUNNO", 1, ACTION_DUNNO},
        {"dunno", 1, ACTION_DUNNO},
        {"OK", 1, ACTION_OK},
        {"OK please", 0, ACTION_OK},
        {"REJECT", 1, ACTION_REJECT},
        {"REJECT go away", 1, ACTION_REJECT},
        {"DEFER_IF_PERMIT try later", 1, ACTION_DEFER},
        {"DEFER_IF_REJECT", 1, ACTION_DEFER},
        {"DEFER", 1, ACTION_DEFER},
        {"550 5.7.1 no", 1, ACTION_REJECT},
        {"550", 1, ACTION_REJECT},
        {"450 4.7.1 later", 1, ACTION_DEFER},
        {"451 4.4.3", 1, ACTION_DEFER},
        {"550 4.7.1 mismatch", 0, ACTION_REJECT},
        {"450 5.7.1 mismatch", 0, ACTION_DEFER},
        {"250 2.0.0 ok", 0, ACTION_OK},
        {"55 short", 0, ACTION_OK},
        {"5500 long", 0, ACTION_OK},
        {"550 5.7 bad", 0, ACTION_OK},
        {"PREPEND X-Policy: checked", 1, ACTION_PREPEND},
        {"PREPEND no header", 0, ACTION_PREPEND},
        {"PREPEND", 0, ACTION_PREPEND},
        {"WARN look", 1, ACTION_WARN},
        {"INFO note", 1, ACTION_WARN},
        {"HOLD", 1, ACTION_OTHER},
        {"DISCARD", 1, ACTION_OTHER},
        {"FILTER smtp:[127.0.0.1]:10025", 1, ACTION_OTHER},
        {"REDIRECT a@example.org", 1, ACTION_OTHER},
        {"BOUNCE", 0, ACTION_OTHER},
        {"", 0, ACTION_OTHER},
        {"REJECT a\nb", 0, ACTION_OTHER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum action_kind kind;
        char err[256];
        int rc = action_parse(cases[i].text, &kind, err, sizeof(err));
        if ((rc == 0) != cases[i].ok || (rc == 0 && kind != cases[i].kind)) {
            fprintf(stderr, "action '%s': rc %d kind %d (%s)\n", cases[i].text, rc, (int)kind,
                    rc ? err : "");
            CHECK(!"action classified as expected");
        } else {
            CHECK(1);
        }
    }
    CHECK(action_is_temporary_safe("DUNNO") && action_is_temporary_safe("450 4.7.1 x") &&
          action_is_temporary_safe("DEFER_IF_PERMIT x"));
    CHECK(!action_is_temporary_safe("550 5.7.1 x") && !action_is_temporary_safe("REJECT"));
}

static void test_bare_code(void)
{
    CHECK(action_is_bare_code("450"));
    CHECK(action_is_bare_code("450 4.7.1"));
    CHECK(action_is_bare_code("450 4.2.0 "));
    CHECK(!action_is_bare_code("450 4.7.1 Rate limit"));
    CHECK(!action_is_bare_code("DEFER"));
    CHECK(!action_is_bare_code("45"));
    CHECK(!action_is_bare_code(""));
}

int main(void)
{
    test_bare_code();
    test_captures();
    test_values();
    test_pipelined();
    test_errors();
    test_reply();
    test_actions();
    return UNIT_END();
}
