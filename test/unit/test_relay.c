/*
 * test_relay.c - the relay table through the evaluator: which recipients and clients relay,
 * which are refused, what the diagnosis says, and warn mode.
 */
/* SPDX-License-Identifier: MIT */
#include "policyd/config.h"
#include "policyd/evaluate.h"
#include "policyd/lib/log.h"
#include "policyd/stats.h"
#include "protocol/request.h"
#include "unit.h"
#include "checks/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char logpath[] = "/tmp/test_relay_log.XXXXXX";

static struct config *load(const char *text)
{
    char path[] = "/tmp/test_relay.XXXXXX";
    int fd = mkstemp(path);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "postfix_config_directory =\n%s\n", text);
    fclose(fp);
    char err[1024];
    struct config *cfg = config_load(path, err, sizeof(err));
    if (!cfg)
        fprintf(stderr, "config: %s\n", err);
    unlink(path);
    return cfg;
}

/* decide - the answer for a RCPT request with these overrides (name, value, ..., NULL). */
static const char *decide(struct config *cfg, const char *addr, const char *rcpt,
                          const char *extra_name, const char *extra_value)
{
    static char answer[512];
    const char *pairs[] = {"request",
                           "smtpd_access_policy",
                           "protocol_state",
                           "RCPT",
                           "client_address",
                           addr,
                           "client_name",
                           "unknown",
                           "sender",
                           "a@sender.example",
                           "recipient",
                           rcpt,
                           "helo_name",
                           "h.example",
                           extra_name,
                           extra_value,
                           NULL};
    struct request *req = request_new_from_pairs(pairs);
    struct evaluation *ev = evaluate_start(NULL, NULL, cfg, req, NULL, NULL);
    CHECK(evaluate_finished(ev));
    snprintf(answer, sizeof(answer), "%s", evaluate_action(ev));
    evaluate_free(ev);
    return answer;
}

/* log_contains - 1 if the log file has text. */
static int log_contains(const char *text)
{
    FILE *fp = fopen(logpath, "r");
    char buf[65536];
    size_t n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;
    if (fp)
        fclose(fp);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

/* log_line_with - the last log line containing text, with its newline, into out. */
static int log_line_with(const char *text, char *out, size_t outlen)
{
    FILE *fp = fopen(logpath, "r");
    char line[8192];
    int found = 0;
    while (fp && fgets(line, sizeof(line), fp))
        if (strstr(line, text)) {
            snprintf(out, outlen, "%s", line);
            found = 1;
        }
    if (fp)
        fclose(fp);
    return found;
}

/* cause_count - the counter of code. */
static unsigned long long cause_count(const char *code)
{
    const char *c;
    unsigned long long n;
    unsigned pos = 0;
    while (stats_cause_next(&pos, &c, &n))
        if (strcmp(c, code) == 0)
            return n;
    return 0;
}

int main(void)
{
    config_use_checks(registry_find, registry_names);
    char err[256];
    int fd = mkstemp(logpath);
    close(fd);
    CHECK(log_open("policyd", "mail", logpath, 0, err, sizeof(err)) == 0);

    /* Every line in full: the same cause is logged again and again below. */
    struct config *cfg = load("diagnosis_repeat_interval = 0\n"
                              "mynetworks = 127.0.0.0/8 [::1]/128 10.0.0.0/8\n"
                              "mydestination = $myhostname, localhost\n"
                              "myhostname = mx.example.net\n"
                              "relay_domains = example.com\n"
                              "virtual_alias_domains = alias.example\n"
                              "virtual_mailbox_domains = mbox.example\n"
                              "relay_clientcerts = 01:02:03\n");
    CHECK(cfg != NULL);
    if (!cfg)
        return UNIT_END();
    const char *deny = "554 5.7.1 Relay access denied";
    CHECK_STR(decide(cfg, "203.0.113.7", "b@foreign.example", NULL, NULL), deny);
    CHECK_STR(decide(cfg, "203.0.113.7", "b@example.com", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@a.example.com", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@MX.Example.NET", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@localhost", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@alias.example", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@mbox.example", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@sub.mbox.example", NULL, NULL), deny);
    CHECK_STR(decide(cfg, "203.0.113.7", "postmaster", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@[127.0.0.1]", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@[192.0.2.1]", NULL, NULL), deny);
    CHECK_STR(decide(cfg, "10.4.4.4", "b@foreign.example", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "::ffff:10.4.4.4", "b@foreign.example", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "::1", "b@foreign.example", NULL, NULL), "DUNNO");
    CHECK_STR(decide(cfg, "2001:db8::1", "b@foreign.example", NULL, NULL), deny);
    CHECK_STR(decide(cfg, "203.0.113.7", "b@foreign.example", "sasl_username", "alice"), "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@foreign.example", "ccert_fingerprint", "01:02:03"),
              "DUNNO");
    CHECK_STR(decide(cfg, "203.0.113.7", "b@foreign.example", "ccert_fingerprint", "01:02:04"),
              deny);
    CHECK_STR(decide(cfg, "203.0.113.7", "b@foreign.example", "protocol_state", "DATA"), "DUNNO");

    /* The diagnosis: key like Postfix, every reason, the fix. */
    decide(cfg, "203.0.113.7", "victim@foreign.example", "server_port", "25");
    CHECK(log_contains("NOQUEUE: client=unknown[203.0.113.7], from=<a@sender.example>, "
                       "to=<victim@foreign.example>, helo=<h.example>: relay: reject: 554 5.7.1 "
                       "Relay access denied; cause_code=relay.not_mynetworks; cause=relay "
                       "denied: client 203.0.113.7 (unknown) is "
                       "not in mynetworks (127.0.0.0/8 [::1]/128 10.0.0.0/8) and did not "
                       "authenticate"));
    CHECK(log_contains("recipient domain foreign.example is in none of mydestination "
                       "(mx.example.net, localhost), virtual_alias_domains (alias.example), "
                       "virtual_mailbox_domains (mbox.example), relay_domains (example.com)"));
    CHECK(log_contains("sender domain sender.example and recipient domain foreign.example are "
                       "both foreign"));
    CHECK(log_contains("authenticated submission belongs on port 587 with SASL"));
    CHECK(log_contains("; fix=if 203.0.113.7 is your client, add it to mynetworks"));
    decide(cfg, "172.17.0.1", "x@foreign.example", NULL, NULL);
    CHECK(log_contains("172.17.0.1 is a Docker bridge gateway (172.17.0.0/16) address"));
    CHECK(log_contains("to=<x@foreign.example>, helo=<h.example>: relay: reject: 554 5.7.1 Relay "
                       "access denied; cause_code=relay.container_gateway; cause=relay denied: "
                       "client 172.17.0.1 "));
    decide(cfg, "203.0.113.8", "x@foreign.example", "sender", "me@mbox.example");
    CHECK(log_contains("the sender me@mbox.example is in a domain this server hosts "
                       "(virtual_mailbox_domains)"));
    CHECK(log_contains("from=<me@mbox.example>, to=<x@foreign.example>, helo=<h.example>: relay: "
                       "reject: 554 5.7.1 Relay access denied; cause_code=relay.local_sender; "
                       "cause=relay denied: client 203.0.113.8 "));
    CHECK(log_contains("fix=configure the mail client of me@mbox.example to send through port "
                       "587 with authentication"));
    config_unref(cfg);

    /* Warn mode: the reject is logged as "would reject", the answer is DUNNO. */
    cfg = load("relay_mode = warn\nmynetworks = 127.0.0.0/8\n");
    CHECK(cfg != NULL);
    if (cfg) {
        CHECK_STR(decide(cfg, "203.0.113.9", "w@foreign.example", NULL, NULL), "DUNNO");
        CHECK(log_contains("to=<w@foreign.example>, helo=<h.example>: relay: would reject (warn "
                           "mode): 554 5.7.1 Relay access denied; "
                           "cause_code=relay.not_mynetworks; cause="));
        config_unref(cfg);
    }
    /* Repeats: the full text once per (cause, client) and message, short lines after it. */
    cfg = load("mynetworks = 127.0.0.0/8\n");
    CHECK(cfg != NULL);
    if (cfg) {
        CHECK(cfg->diagnosis_repeat_interval == 600000); /* the default: 10m */
        unsigned long long full0 = stats.diagnoses_full, short0 = stats.diagnoses_short;
        unsigned long long code0 = cause_count("relay.not_mynetworks");
        decide(cfg, "198.51.100.1", "r1@foreign.example", NULL, NULL);
        CHECK(log_contains("to=<r1@foreign.example>, helo=<h.example>: relay: reject: 554 5.7.1 "
                           "Relay access denied; cause_code=relay.not_mynetworks; cause=relay "
                           "denied: client 198.51.100.1 (unknown) is not in mynetworks"));
        decide(cfg, "198.51.100.1", "r2@foreign.example", NULL, NULL);
        decide(cfg, "198.51.100.1", "r3@foreign.example", NULL, NULL);
        char line[1024];
        CHECK(log_line_with("to=<r3@foreign.example>", line, sizeof(line)));
        CHECK(strstr(line, "NOQUEUE: client=unknown[198.51.100.1], from=<a@sender.example>, "
                           "to=<r3@foreign.example>, helo=<h.example>: relay: reject: 554 5.7.1; "
                           "cause_code=relay.not_mynetworks; as explained at ") != NULL);
        CHECK(strstr(line, " for client 198.51.100.1, 2 times since\n") != NULL);
        CHECK(strstr(line, "cause=") == NULL && strstr(line, "fix=") == NULL);
        CHECK(strlen(line) < 300); /* the syslog prefix included */
        CHECK(log_line_with("to=<r2@foreign.example>", line, sizeof(line)) &&
              strstr(line, ", 1 time since\n") != NULL);
        /* Another client: its own full text. */
        decide(cfg, "198.51.100.2", "r4@foreign.example", NULL, NULL);
        CHECK(log_line_with("to=<r4@foreign.example>", line, sizeof(line)) &&
              strstr(line, "; cause=relay denied: client 198.51.100.2 ") != NULL);
        /* A new message (Postfix's instance): its first recipient gets the full text again,
         * the next ones are short. */
        decide(cfg, "198.51.100.1", "r5@foreign.example", "instance", "A1.B2.C3.0");
        decide(cfg, "198.51.100.1", "r6@foreign.example", "instance", "A1.B2.C3.0");
        CHECK(log_line_with("to=<r5@foreign.example>", line, sizeof(line)) &&
              strstr(line, "; cause=relay denied: client 198.51.100.1 ") != NULL);
        CHECK(log_line_with("to=<r6@foreign.example>", line, sizeof(line)) &&
              strstr(line, " as explained at ") && strstr(line, ", 1 time since\n"));
        /* Another cause of the same client is explained on its own. */
        decide(cfg, "198.51.100.1", "r7@foreign.example", "sender", "me@localhost");
        CHECK(log_line_with("to=<r7@foreign.example>", line, sizeof(line)) &&
              strstr(line, "cause_code=relay.local_sender; cause=relay denied") != NULL);
        /* Counted by cause code, full and short. */
        CHECK(cause_count("relay.not_mynetworks") == code0 + 6);
        CHECK(stats.diagnoses_full == full0 + 4);
        CHECK(stats.diagnoses_short == short0 + 3);
        config_unref(cfg);
    }
    /* A configured action is used as written. */
    cfg = load("relay_action = REJECT Not here\n");
    CHECK(cfg && strcmp(decide(cfg, "203.0.113.9", "w@foreign.example", NULL, NULL),
                        "REJECT Not here") == 0);
    config_unref(cfg);
    unlink(logpath);
    return UNIT_END();
}
