/*
 * deferral.c - the kinds of deferred mail and the `postqueue -j` line reader (see deferral.h).
 *
 * The table is the one place where a delay reason's words map to a cause and a fix; its order
 * is the matching order. The reader owns nothing past a call but the message it fills.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/mail/deferral.h"

#include "policyd/lib/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What a delay reason means, by words it contains (case-insensitive, first match wins). */
static const struct deferral_entry {
    const char *words[8];
    struct deferral_diagnosis d;
} deferral_table[DEFERRAL_NKINDS] = {
    [DEFERRAL_RELAY] = {{"relay access denied", "relaying denied", "not permitted to relay",
                         "relay not permitted", "unable to relay", NULL},
                        {"relay refused", "relay", 1, "the next hop does not relay for this server",
                         "check relayhost, and authenticate to it (smtp_sasl_auth_enable = yes, "
                         "smtp_sasl_password_maps); direct delivery never meets this answer"}},
    [DEFERRAL_GREYLIST] = {{"greylist", "graylist", "grey-list", "gray-list", NULL},
                           {"greylisted", "greylist", 0,
                            "greylisting delays mail from new senders; the retry is normally "
                            "accepted",
                            "nothing, unless it persists: retries must come from the same address "
                            "(smtp_bind_address; several outbound addresses look like new "
                            "senders)"}},
    [DEFERRAL_PTR] = {{"reverse hostname", "reverse dns", "ptr", "cannot find your hostname",
                       "reverse lookup", "rdns", NULL},
                      {"reverse DNS", "ptr", 1,
                       "receivers refuse an address without a PTR record that resolves back",
                       "ask the owner of the sending address (ISP, hosting provider) to set its "
                       "PTR to myhostname, and make that name resolve to the address (see the "
                       "address section of policyd doctor)"}},
    [DEFERRAL_DNSBL] = {{"blocked using", "listed", "spamhaus", "blocklist", "blacklist", "dnsbl",
                         "rbl", NULL},
                        {"blocklisted", "dnsbl", 1,
                         "the sending address (or domain) is on a DNS blocklist the receivers use",
                         "find the cause (compromised account, open relay, bulk mail), fix it, "
                         "then ask the list for delisting (https://check.spamhaus.org/); see the "
                         "dnsbl section of policyd doctor"}},
    [DEFERRAL_SPF] = {{"spf", " 5.7.23", "sender policy", NULL},
                      {"SPF", "spf", 1,
                       "receivers find this server's address not permitted by the sender domain's "
                       "SPF",
                       "add this server's addresses to the domain's SPF record (see the spf "
                       "section of policyd doctor)"}},
    [DEFERRAL_DMARC] = {{"dmarc", "dkim", " 5.7.26", "unauthenticated", NULL},
                        {"DKIM/DMARC", "dmarc", 1,
                         "receivers want authenticated mail (SPF or DKIM aligned with the From "
                         "domain)",
                         "sign outgoing mail with DKIM and publish SPF and DMARC (see those "
                         "sections of policyd doctor)"}},
    [DEFERRAL_TLS] = {{"tls", "certificate", "starttls", "ssl", NULL},
                      {"TLS", "tls", 0,
                       "TLS with the destination failed or is required and missing",
                       "'TLS is required, but was not offered': the destination has no STARTTLS; "
                       "certificate failures: check smtp_tls_security_level and "
                       "smtp_tls_policy_maps (verify/secure levels need a matching "
                       "certificate)"}},
    [DEFERRAL_MAILBOX_FULL] = {{"mailbox full", "over quota", "quota exceeded", " 4.2.2",
                                "mailbox is full", "insufficient storage", NULL},
                               {"mailbox full", "mailbox_full", 0,
                                "the recipient's mailbox at the destination is full; nothing "
                                "wrong here",
                                "nothing to fix on this server: tell the recipient another way; "
                                "the message bounces after maximal_queue_lifetime"}},
    [DEFERRAL_DNS] = {{"host or domain name not found", "name service error", "host not found",
                       "type=mx", NULL},
                      {"destination DNS", "dns", 0, "the destination's DNS lookup failed",
                       "for one domain: its DNS is broken; for many: check this server's resolver "
                       "(/etc/resolv.conf, and the chroot copy under /var/spool/postfix/etc)"}},
    [DEFERRAL_CONNECT] = {{"timed out", "connection refused", "network is unreachable",
                           "no route to host", "lost connection", "connection reset", NULL},
                          {"connection failures", "connect", 0,
                           "the destinations cannot be reached on port 25",
                           "if every destination times out, the provider blocks outbound port "
                           "25 (test: nc -vz -w5 gmail-smtp-in.l.google.com 25): ask them to "
                           "open it or relay through their server (relayhost); otherwise the "
                           "destination is down"}},
    [DEFERRAL_OTHER] = {{NULL},
                        {"other", "other", 0, "the receiving server's own words",
                         "read the reason: it is the receiver's answer (its postmaster page "
                         "explains its codes)"}},
};

enum deferral_kind deferral_classify(const char *reason)
{
    for (int k = 0; k < DEFERRAL_OTHER; k++)
        for (int w = 0; deferral_table[k].words[w]; w++)
            if (strcasestr(reason, deferral_table[k].words[w]))
                return (enum deferral_kind)k;
    return DEFERRAL_OTHER;
}

const struct deferral_diagnosis *deferral_diagnosis(enum deferral_kind kind)
{
    if ((int)kind < 0 || kind >= DEFERRAL_NKINDS)
        kind = DEFERRAL_OTHER;
    return &deferral_table[kind].d;
}

/* deferral_string - decode the JSON string starting after the opening quote at *pp into out
 * (bounded, truncated); *pp moves past the closing quote. \u escapes become UTF-8 (surrogate
 * halves as they come), control characters spaces. */
static void deferral_string(const char **pp, char *out, size_t size)
{
    const char *p = *pp;
    size_t n = 0;
    while (*p && *p != '"') {
        char c = *p++;
        char tmp[4];
        size_t tl = 1;
        tmp[0] = c;
        if (c == '\\' && *p) {
            char e = *p++;
            switch (e) {
            case 'n':
            case 'r':
            case 't':
            case 'b':
            case 'f':
                tmp[0] = ' ';
                break;
            case 'u': {
                unsigned v = 0;
                for (int k = 0; k < 4 && *p; k++, p++) {
                    char h = *p;
                    v = v * 16 + (unsigned)(h >= '0' && h <= '9'   ? h - '0'
                                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                                   : 0);
                }
                if (v < 0x20) {
                    tmp[0] = ' ';
                } else if (v < 0x80) {
                    tmp[0] = (char)v;
                } else if (v < 0x800) {
                    tmp[0] = (char)(0xc0 | (v >> 6));
                    tmp[1] = (char)(0x80 | (v & 0x3f));
                    tl = 2;
                } else {
                    tmp[0] = (char)(0xe0 | (v >> 12));
                    tmp[1] = (char)(0x80 | ((v >> 6) & 0x3f));
                    tmp[2] = (char)(0x80 | (v & 0x3f));
                    tl = 3;
                }
                break;
            }
            default:
                tmp[0] = e;
            }
        } else if ((unsigned char)c < 0x20) {
            tmp[0] = ' ';
        }
        if (n + tl < size) {
            memcpy(out + n, tmp, tl);
            n += tl;
        }
    }
    out[n] = '\0';
    *pp = *p ? p + 1 : p;
}

/* deferral_add_rcpt - a new recipient at the end of msg's list. */
static struct deferral_recipient *deferral_add_rcpt(struct deferral_message *msg, size_t *cap)
{
    msg->rcpts = xgrow(msg->rcpts, cap, msg->nrcpts + 1, sizeof(*msg->rcpts));
    struct deferral_recipient *r = &msg->rcpts[msg->nrcpts++];
    r->address = xstrdup("");
    r->reason = xstrdup("");
    return r;
}

int deferral_parse_line(const char *line, struct deferral_message *msg)
{
    memset(msg, 0, sizeof(*msg));
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '{')
        return -1;
    char key[64] = "", *val = xmalloc(DEFERRAL_MAX_STRING);
    size_t cap = 0;
    int depth = 0, in_rcpts = 0;           /* objects deep; inside the recipients array */
    struct deferral_recipient *cur = NULL; /* the recipient object being read */
    while (*p) {
        if (*p == '"') {
            p++;
            deferral_string(&p, val, DEFERRAL_MAX_STRING);
            const char *s = p;
            while (*s == ' ' || *s == '\t')
                s++;
            if (*s == ':') {
                snprintf(key, sizeof(key), "%s", val);
                p = s + 1;
            } else if (depth == 1 && strcmp(key, "queue_name") == 0) {
                snprintf(msg->queue_name, sizeof(msg->queue_name), "%s", val);
            } else if (depth == 1 && strcmp(key, "queue_id") == 0) {
                snprintf(msg->queue_id, sizeof(msg->queue_id), "%s", val);
            } else if (cur && strcmp(key, "address") == 0) {
                free(cur->address);
                cur->address = xstrdup(val);
            } else if (cur && strcmp(key, "delay_reason") == 0) {
                free(cur->reason);
                cur->reason = xstrdup(val);
            } else if (!cur && depth > 1 && strcmp(key, "delay_reason") == 0 && val[0]) {
                /* a reason outside a recipient object: keep it all the same */
                cur = deferral_add_rcpt(msg, &cap);
                free(cur->reason);
                cur->reason = xstrdup(val);
                cur = NULL;
            }
        } else if (*p == '[' || *p == ']') {
            if (depth == 1)
                in_rcpts = *p == '[' && strcmp(key, "recipients") == 0;
            p++;
        } else if (*p == '{') {
            depth++;
            if (depth == 2 && in_rcpts) /* an object in the recipients array: a recipient */
                cur = deferral_add_rcpt(msg, &cap);
            p++;
        } else if (*p == '}') {
            if (depth == 2)
                cur = NULL;
            depth--;
            p++;
        } else if (*p >= '0' && *p <= '9' && depth == 1 && strcmp(key, "arrival_time") == 0) {
            char *end;
            msg->arrival_time = strtol(p, &end, 10);
            p = end;
            key[0] = '\0';
        } else {
            p++;
        }
    }
    free(val);
    return 0;
}

void deferral_message_free(struct deferral_message *msg)
{
    if (!msg)
        return;
    for (size_t i = 0; i < msg->nrcpts; i++) {
        free(msg->rcpts[i].address);
        free(msg->rcpts[i].reason);
    }
    free(msg->rcpts);
    msg->rcpts = NULL;
    msg->nrcpts = 0;
}

char *deferral_domain(const char *address, char *out, size_t outlen)
{
    const char *at = strrchr(address, '@');
    size_t n = 0;
    if (outlen == 0)
        return out;
    if (at)
        for (const char *p = at + 1; *p && n + 1 < outlen; p++)
            out[n++] = (char)tolower((unsigned char)*p);
    out[n] = '\0';
    return out;
}
