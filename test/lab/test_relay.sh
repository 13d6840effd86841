#!/usr/bin/env bash
# test_relay.sh - the relay decision through a real Postfix 3.7 (issue 2, section 8):
# a relay attempt from a foreign client is refused by policyd with its own 5.7.1 text and the
# diagnosis sits in the maillog beside Postfix's NOQUEUE line; mynetworks, authenticated and
# relay-domain mail reaches smtp-sink; with policyd stopped, mail still flows.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lab.sh"
lab_enter "$@"
lab_setup
lab_start_dns || not_ok "test DNS starts"
lab_start_postfix || { not_ok "Postfix starts"; exit 1; }
lab_start_sink || not_ok "smtp-sink starts"
lab_start_policyd "relay_action = 554 5.7.1 Relay access denied by policyd" ||
    { not_ok "policyd starts"; exit 1; }
ok "lab is up (Postfix $(postconf -d -h mail_version 2>/dev/null))"

# 1. A relay attempt: XCLIENT makes Postfix believe the client is 203.0.113.7.
lab_send "$LAB/1.out" --from a@example.org --to victim@foreign.example \
    --xclient-addr 203.0.113.7 --xclient-name '[UNAVAILABLE]' --xclient-helo h.example.org
check "relay attempt refused at RCPT with policyd's 5.7.1" \
    grep -qE '<\*\* 554 5\.7\.1 <victim@foreign\.example>: Recipient address rejected: Relay access denied by policyd' "$LAB/1.out"
check "Postfix logged its NOQUEUE reject" \
    lab_wait_grep 'postfix/smtpd\[[0-9]+\]: NOQUEUE: reject: RCPT from unknown\[203\.0\.113\.7\]: 554 5\.7\.1 <victim@foreign\.example>.*from=<a@example\.org> to=<victim@foreign\.example>' "$MAILLOG"
check "policyd's diagnosis is in the same maillog, keyed like Postfix's line" \
    lab_wait_grep 'policyd\[[0-9]+\]: NOQUEUE: client=unknown\[203\.0\.113\.7\], from=<a@example\.org>, to=<victim@foreign\.example>, helo=<h\.example\.org>: relay: reject: 554 5\.7\.1 Relay access denied by policyd; cause_code=relay\.not_mynetworks; cause=.*not in mynetworks \(127\.0\.0\.0/8\).*relay_domains \(example\.com\).*; fix=' "$MAILLOG"
check "grep on the recipient finds both lines" \
    test "$(grep -c 'to=<victim@foreign.example>' "$MAILLOG")" -ge 2
check "policyd's line for the refusal is keyed NOQUEUE" \
    grep -qE 'policyd\[[0-9]+\]: NOQUEUE: .*to=<victim@foreign\.example>' "$MAILLOG"
# keys FILTER - "ADDR FROM TO" of the first maillog line from FILTER that names the recipient.
keys() {
    grep -F 'to=<victim@foreign.example>' "$MAILLOG" | grep -E "$1" | head -1 |
        sed -E 's/.*\[([0-9.]+)\].*from=<([^>]*)>,? to=<([^>]*)>.*/\1 \2 \3/'
}
pf_keys=$(keys 'postfix/smtpd\[[0-9]+\]: NOQUEUE: reject: RCPT')
pd_keys=$(keys 'policyd\[[0-9]+\]: ')
check "policyd's line names the client address, from and to of Postfix's line ($pf_keys)" \
    test -n "$pf_keys" -a "$pf_keys" = "$pd_keys"
check "nothing reached the sink for the refused recipient" \
    test -z "$(grep -lF 'X-Rcpt-Args: <victim@foreign.example>' "$LAB"/sink/* 2>/dev/null)"

# 2. A mynetworks client (127.0.0.1, no XCLIENT) relays.
lab_send "$LAB/2.out" --from a@example.org --to friend@foreign.example
check "mynetworks client accepted" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/2.out"
check "mynetworks mail reached the sink" lab_sink_has friend@foreign.example

# 3. An authenticated client (XCLIENT LOGIN) from outside relays.
lab_send "$LAB/3.out" --from a@example.org --to authed@foreign.example \
    --xclient-addr 203.0.113.8 --xclient-name '[UNAVAILABLE]' --xclient-login sasluser
check "authenticated client accepted" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/3.out"
check "authenticated mail reached the sink" lab_sink_has authed@foreign.example
check "Postfix saw the XCLIENT login" \
    grep -qE 'client=unknown\[203\.0\.113\.8\], sasl_method=XCLIENT, sasl_username=sasluser' "$MAILLOG"
# ... and only the login made the difference: the same client without it is refused by policyd.
lab_send "$LAB/3b.out" --from a@example.org --to unauthed@foreign.example \
    --xclient-addr 203.0.113.8 --xclient-name '[UNAVAILABLE]'
check "the same client without login refused by policyd" \
    grep -qE '<\*\* 554 5\.7\.1 <unauthed@foreign\.example>: Recipient address rejected: Relay access denied by policyd' "$LAB/3b.out"

# 4. Mail to a relay domain from anywhere is accepted.
lab_send "$LAB/4.out" --from a@elsewhere.example --to b@example.com \
    --xclient-addr 203.0.113.7 --xclient-name '[UNAVAILABLE]'
check "mail to the relay domain accepted from a foreign client" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/4.out"
check "relay-domain mail reached the sink" lab_sink_has b@example.com

# 5. policyd stopped: default_action=DUNNO keeps mail flowing; Postfix still refuses relaying.
check "policyd exits 0 on SIGTERM" lab_stop_policyd
lab_send "$LAB/5.out" --from a@example.org --to later@foreign.example
check "policyd stopped: mynetworks mail still accepted" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/5.out"
check "policyd stopped: mail reached the sink" lab_sink_has later@foreign.example
check "policyd stopped: Postfix found no policy service (default_action=DUNNO applied)" \
    grep -qE 'postfix/smtpd\[[0-9]+\]: warning: (connect to|problem talking to server) private/policyd' "$MAILLOG"
lab_send "$LAB/6.out" --from a@example.org --to victim2@foreign.example \
    --xclient-addr 203.0.113.7 --xclient-name '[UNAVAILABLE]'
check "policyd stopped: Postfix's own reject_unauth_destination still refuses relaying" \
    grep -qE '<\*\* 554 5\.7\.1 <victim2@foreign\.example>: Relay access denied$' "$LAB/6.out"
[ "$failures" -eq 0 ] || { echo "--- maillog"; tail -40 "$MAILLOG"; }
exit $((failures > 0))
