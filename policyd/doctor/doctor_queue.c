/*
 * doctor_queue.c - the doctor's queue section: the deferred mail (postqueue -j, run through
 * lib/runtool without a shell) grouped by reason, each kind matched to a diagnosis and a fix.
 * Reading the queue is bounded: QUEUE_MAX_BYTES of output (the rest drained and dropped, the
 * counts then marked partial), lines of at most QUEUE_MAX_LINE (a longer one is skipped),
 * QUEUE_MAX_REASONS distinct reasons, and QUEUE_TIMEOUT_MS for postqueue to finish.
 */
#include "policyd/config.h"
#include "policyd/doctor/doctor_section.h"
#include "policyd/lib/runtool.h"
#include "policyd/lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define QUEUE_MAX_BYTES (64L * 1024 * 1024) /* postqueue output read at most */
#define QUEUE_MAX_LINE (1024 * 1024)        /* a longer line (message) is skipped */
#define QUEUE_MAX_REASONS 5000              /* distinct delay reasons kept */
#define QUEUE_TIMEOUT_MS 120000             /* postqueue killed after this */
#define QUEUE_MAX_STDERR 4096               /* its complaints kept */

enum q_cat {
    Q_RELAY,
    Q_GREY, /* before Q_DNSBL: "Greylisted" contains "listed" */
    Q_PTR,
    Q_DNSBL,
    Q_SPF,
    Q_DMARC,
    Q_TLS,
    Q_FULL,
    Q_DNS,
    Q_CONNECT,
    Q_OTHER,
    Q_NCAT
};

/* What a delay reason means, by words it contains (case-insensitive, first match wins). */
static const struct q_diagnosis {
    const char *name;
    const char *words[8];
    enum doctor_status status;
    const char *why, *fix;
} q_diagnoses[Q_NCAT] = {
    [Q_RELAY] = {"relay refused",
                 {"relay access denied", "relaying denied", "not permitted to relay",
                  "relay not permitted", "unable to relay", NULL},
                 DOCTOR_FAIL,
                 "the next hop does not relay for this server",
                 "check relayhost, and authenticate to it (smtp_sasl_auth_enable = yes, "
                 "smtp_sasl_password_maps); direct delivery never meets this answer"},
    [Q_PTR] = {"reverse DNS",
               {"reverse hostname", "reverse dns", "ptr", "cannot find your hostname",
                "reverse lookup", "rdns", NULL},
               DOCTOR_FAIL,
               "receivers refuse an address without a PTR record that resolves back",
               "ask the owner of the sending address (ISP, hosting provider) to set its PTR "
               "to myhostname, and make that name resolve to the address (see the address "
               "section)"},
    [Q_DNSBL] = {"blocklisted",
                 {"blocked using", "listed", "spamhaus", "blocklist", "blacklist", "dnsbl", "rbl",
                  NULL},
                 DOCTOR_FAIL,
                 "the sending address (or domain) is on a DNS blocklist the receivers use",
                 "find the cause (compromised account, open relay, bulk mail), fix it, then "
                 "ask the list for delisting (https://check.spamhaus.org/); see the dnsbl "
                 "section"},
    [Q_SPF] = {"SPF",
               {"spf", " 5.7.23", "sender policy", NULL},
               DOCTOR_FAIL,
               "receivers find this server's address not permitted by the sender domain's SPF",
               "add this server's addresses to the domain's SPF record (see the spf section)"},
    [Q_DMARC] = {"DKIM/DMARC",
                 {"dmarc", "dkim", " 5.7.26", "unauthenticated", NULL},
                 DOCTOR_FAIL,
                 "receivers want authenticated mail (SPF or DKIM aligned with the From domain)",
                 "sign outgoing mail with DKIM and publish SPF and DMARC (see those sections)"},
    [Q_TLS] = {"TLS",
               {"tls", "certificate", "starttls", "ssl", NULL},
               DOCTOR_WARN,
               "TLS with the destination failed or is required and missing",
               "'TLS is required, but was not offered': the destination has no STARTTLS; "
               "certificate failures: check smtp_tls_security_level and smtp_tls_policy_maps "
               "(verify/secure levels need a matching certificate)"},
    [Q_FULL] = {"mailbox full",
                {"mailbox full", "over quota", "quota exceeded", " 4.2.2", "mailbox is full",
                 "insufficient storage", NULL},
                DOCTOR_WARN,
                "the recipient's mailbox at the destination is full; nothing wrong here",
                "nothing to fix on this server: tell the recipient another way; the message "
                "bounces after maximal_queue_lifetime"},
    [Q_GREY] = {"greylisted",
                {"greylist", "graylist", "grey-list", "gray-list", NULL},
                DOCTOR_WARN,
                "greylisting delays mail from new senders; the retry is normally accepted",
                "nothing, unless it persists: retries must come from the same address "
                "(smtp_bind_address; several outbound addresses look like new senders)"},
    [Q_DNS] = {"destination DNS",
               {"host or domain name not found", "name service error", "host not found", "type=mx",
                NULL},
               DOCTOR_WARN,
               "the destination's DNS lookup failed",
               "for one domain: its DNS is broken; for many: check this server's resolver "
               "(/etc/resolv.conf, and the chroot copy under /var/spool/postfix/etc)"},
    [Q_CONNECT] = {"connection failures",
                   {"timed out", "connection refused", "network is unreachable", "no route to host",
                    "lost connection", "connection reset", NULL},
                   DOCTOR_WARN,
                   "the destinations cannot be reached on port 25",
                   "if every destination times out, the provider blocks outbound port 25 (test: "
                   "nc -vz -w5 gmail-smtp-in.l.google.com 25): ask them to open it or relay "
                   "through their server (relayhost); otherwise the destination is down"},
    [Q_OTHER] = {"other",
                 {NULL},
                 DOCTOR_WARN,
                 "the receiving server's own words",
                 "read the reason: it is the receiver's answer (its postmaster page explains "
                 "its codes)"},
};

/* q_classify - the category of a delay reason. */
static enum q_cat q_classify(const char *reason)
{
    for (int c = 0; c < Q_OTHER; c++)
        for (int w = 0; q_diagnoses[c].words[w]; w++)
            if (strcasestr(reason, q_diagnoses[c].words[w]))
                return (enum q_cat)c;
    return Q_OTHER;
}

struct q_reason {
    char *text;
    enum q_cat cat;
    size_t count;
};

struct q_state {
    size_t messages, deferred, active, hold, other_queue, recipients_deferred;
    size_t skipped_lines;
    long oldest; /* arrival_time of the oldest deferred message, 0: none */
    size_t cat_recipients[Q_NCAT], cat_messages[Q_NCAT];
    struct q_reason *reasons;
    size_t nreasons, capreasons, reasons_dropped;
};

static void q_add_reason(struct q_state *q, const char *text, enum q_cat cat)
{
    for (size_t i = 0; i < q->nreasons; i++)
        if (strcmp(q->reasons[i].text, text) == 0) {
            q->reasons[i].count++;
            return;
        }
    if (q->nreasons == QUEUE_MAX_REASONS) {
        q->reasons_dropped++;
        return;
    }
    q->reasons = xgrow(q->reasons, &q->capreasons, q->nreasons + 1, sizeof(*q->reasons));
    struct q_reason *r = &q->reasons[q->nreasons++];
    r->text = xstrdup(text);
    r->cat = cat;
    r->count = 1;
}

/* q_string - decode the JSON string starting after the opening quote at *pp into out (bounded,
 * truncated); *pp moves past the closing quote. \u escapes become UTF-8. */
static void q_string(const char **pp, char *out, size_t size)
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
                int k;
                for (k = 0; k < 4 && *p; k++, p++) {
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
        }
        if (n + tl < size) {
            memcpy(out + n, tmp, tl);
            n += tl;
        }
    }
    out[n] = '\0';
    *pp = *p ? p + 1 : p;
}

/* q_line - one postqueue -j object: its queue, arrival time and the recipients' delay reasons.
 * A flat scan, enough for this format: a string followed by ':' is a key, anything else is the
 * value of the last key. */
static void q_line(struct q_state *q, const char *line)
{
    char key[64] = "", queue[32] = "", *val = xmalloc(4096);
    long arrival = 0;
    size_t nreasons = 0, cap = 0;
    char **reasons = NULL;
    const char *p = line;
    while (*p) {
        if (*p == '"') {
            p++;
            q_string(&p, val, 4096);
            const char *s = p;
            while (*s == ' ' || *s == '\t')
                s++;
            if (*s == ':') {
                snprintf(key, sizeof(key), "%s", val);
                p = s + 1;
            } else if (strcmp(key, "queue_name") == 0) {
                snprintf(queue, sizeof(queue), "%s", val);
            } else if (strcmp(key, "delay_reason") == 0 && val[0]) {
                reasons = xgrow(reasons, &cap, nreasons + 1, sizeof(*reasons));
                reasons[nreasons++] = xstrdup(val);
            }
        } else if (*p >= '0' && *p <= '9' && strcmp(key, "arrival_time") == 0) {
            char *end;
            arrival = strtol(p, &end, 10);
            p = end;
            key[0] = '\0';
        } else {
            p++;
        }
    }
    q->messages++;
    if (strcmp(queue, "deferred") == 0) {
        q->deferred++;
        if (arrival > 0 && (!q->oldest || arrival < q->oldest))
            q->oldest = arrival;
        int seen[Q_NCAT] = {0};
        for (size_t i = 0; i < nreasons; i++) {
            enum q_cat c = q_classify(reasons[i]);
            q->recipients_deferred++;
            q->cat_recipients[c]++;
            if (!seen[c]++)
                q->cat_messages[c]++;
            q_add_reason(q, reasons[i], c);
        }
    } else if (strcmp(queue, "active") == 0 || strcmp(queue, "incoming") == 0) {
        q->active++;
    } else if (strcmp(queue, "hold") == 0) {
        q->hold++;
    } else {
        q->other_queue++;
    }
    for (size_t i = 0; i < nreasons; i++)
        free(reasons[i]);
    free(reasons);
    free(val);
}

/* q_report - the summary and one finding per kind of reason, most recipients first. */
static void q_report(struct doctor *d, struct q_state *q, int truncated)
{
    char obs[1500];
    if (!q->deferred) {
        snprintf(obs, sizeof(obs), "no deferred mail (%zu messages in the queue, %zu on hold)%s",
                 q->messages, q->hold, truncated ? "; the listing was cut short" : "");
        doctor_report_add(d->report, DOCTOR_OK, "queue", "deferred", obs, NULL, NULL);
        return;
    }
    long days = q->oldest ? (long)(time(NULL) - q->oldest) / 86400 : 0;
    snprintf(obs, sizeof(obs),
             "%zu deferred messages (%zu recipients), the oldest %ld days old; %zu active, "
             "%zu on hold%s",
             q->deferred, q->recipients_deferred, days, q->active, q->hold,
             truncated ? "; the listing was cut short, counts are partial" : "");
    doctor_report_add(
        d->report, DOCTOR_WARN, "queue", "deferred", obs,
        "deferred mail is retried until maximal_queue_lifetime (5 days), then bounced",
        "the reasons below say why; after fixing, postqueue -f retries at once");

    /* Categories by recipients, most first; "other" shows its top texts on their own. */
    int order[Q_NCAT];
    for (int c = 0; c < Q_NCAT; c++)
        order[c] = c;
    for (int i = 1; i < Q_NCAT; i++)
        for (int j = i; j > 0 && q->cat_recipients[order[j]] > q->cat_recipients[order[j - 1]];
             j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int i = 0; i < Q_NCAT; i++) {
        int c = order[i];
        if (!q->cat_recipients[c])
            continue;
        const struct q_diagnosis *dg = &q_diagnoses[c];
        int shown = 0;
        for (;;) { /* the most frequent texts of the category: one, or three for "other" */
            struct q_reason *best = NULL;
            size_t variants = 0;
            for (size_t r = 0; r < q->nreasons; r++) {
                if ((int)q->reasons[r].cat != c || !q->reasons[r].count)
                    continue;
                variants++;
                if (!best || q->reasons[r].count > best->count)
                    best = &q->reasons[r];
            }
            if (!best)
                break;
            if (c != Q_OTHER)
                snprintf(obs, sizeof(obs),
                         "%zu recipients in %zu messages; most common (%zu of %zu different "
                         "texts): %.400s",
                         q->cat_recipients[c], q->cat_messages[c], best->count, variants,
                         best->text);
            else
                snprintf(obs, sizeof(obs), "%zu recipients: %.400s", best->count, best->text);
            doctor_report_add(d->report, dg->status, "queue", dg->name, obs, dg->why, dg->fix);
            best->count = 0; /* shown */
            if (c != Q_OTHER || ++shown == 3)
                break;
        }
    }
}

/* q_parse - the lines of postqueue's output: JSON objects counted, the first other line kept
 * in msg (its complaint, when it has one). A last line cut short by the bound is skipped. */
static void q_parse(struct q_state *q, char *out, size_t len, int truncated, char *msg,
                    size_t msglen)
{
    char *p = out, *end = out + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (n > QUEUE_MAX_LINE || (!nl && truncated)) {
            q->skipped_lines++;
        } else {
            p[n] = '\0';
            if (p[0] == '{')
                q_line(q, p);
            else if (n && !msg[0])
                snprintf(msg, msglen, "%s", p);
        }
        p += n + 1;
    }
}

void doctor_queue(struct doctor *d)
{
    const char *dir = d->cfg->postfix_config_directory, *argv[5];
    size_t argc = 0;
    argv[argc++] = "postqueue";
    if (dir && *dir) {
        argv[argc++] = "-c";
        argv[argc++] = dir;
    }
    argv[argc++] = "-j";
    argv[argc] = NULL;
    /* Where Postfix installs it, also when the doctor runs from a cron job's short PATH. */
    const char *env_path = getenv("PATH");
    char *path = xasprintf("%s:/usr/sbin:/usr/local/sbin", env_path ? env_path : "/usr/bin:/bin");
    struct runtool_options opts = {path, QUEUE_MAX_BYTES, RUNTOOL_STDERR_CAPTURE, QUEUE_MAX_STDERR,
                                   QUEUE_TIMEOUT_MS};
    struct runtool_result res;
    runtool_run(argv, &opts, &res);
    free(path);

    struct q_state q;
    memset(&q, 0, sizeof(q));
    char msg[300] = "", how[120];
    if (res.errlen)
        snprintf(msg, sizeof(msg), "%.*s", (int)strcspn(res.err, "\n"), res.err);
    q_parse(&q, res.out, res.outlen, res.out_truncated, msg, sizeof(msg));
    int exited = res.end == RUNTOOL_EXITED, truncated = res.out_truncated;
    runtool_describe(&res, how, sizeof(how));

    if (res.end == RUNTOOL_NOT_FOUND || (!truncated && exited && res.code == 127)) {
        doctor_report_add(d->report, DOCTOR_OK, "queue", "postqueue",
                          "postqueue not found: Postfix is not installed here, queue not checked",
                          NULL, NULL);
    } else if (res.end == RUNTOOL_FAILED) {
        char obs[300];
        snprintf(obs, sizeof(obs), "cannot run postqueue (%s): queue not checked", how);
        doctor_report_add(d->report, DOCTOR_WARN, "queue", "postqueue", obs, NULL, NULL);
    } else if (!truncated && !q.messages && (!exited || res.code != 0)) {
        char obs[500];
        snprintf(obs, sizeof(obs), "postqueue -j failed: %s%s; queue not checked",
                 msg[0] ? msg : how, msg[0] ? "" : ", no output");
        doctor_report_add(d->report, DOCTOR_WARN, "queue", "postqueue", obs,
                          "postqueue cannot list the queue: Postfix is not running or not "
                          "configured here, or this user may not read its queue",
                          "postfix status; postfix start (or run the doctor as root)");
    } else {
        q_report(d, &q,
                 truncated || res.end == RUNTOOL_TIMEOUT || q.skipped_lines || q.reasons_dropped);
    }
    for (size_t i = 0; i < q.nreasons; i++)
        free(q.reasons[i].text);
    free(q.reasons);
    runtool_result_free(&res);
}
