#!/usr/bin/env bash
# test_greylist.sh - greylisting through a real Postfix 3.7 (issue 11): a client without a
# forward-confirmed name is deferred 450 4.2.0 at its first attempt (Postfix's reply carries
# policyd's text); the same message retried before the delay is deferred again; retried after
# the (shortened) delay it is queued and delivered to smtp-sink; a client in mynetworks is not
# greylisted.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lab.sh"
lab_enter "$@"
lab_setup
lab_start_dns || not_ok "test DNS starts"
lab_start_postfix || { not_ok "Postfix starts"; exit 1; }
lab_start_sink || not_ok "smtp-sink starts"
lab_start_policyd "checks = relay, greylist" "state_store = lmdb:$LAB/state.lmdb" "greylist_delay = 3s" ||
    { not_ok "policyd starts"; exit 1; }
ok "lab is up (Postfix $(postconf -d -h mail_version 2>/dev/null))"

send() {
    lab_send "$1" --from news+"$2"@sender.example --to grey@example.com \
        --xclient-addr 203.0.113.7 --xclient-name '[UNAVAILABLE]' --xclient-helo h.sender.example
}
send "$LAB/1.out" 1001
send "$LAB/2.out" 1002 # before the delay: the checks below take their time
check "first attempt deferred 450 4.2.0 with policyd's text" \
    grep -qE '<\*\* 450 4\.2\.0 <grey@example\.com>: Recipient address rejected: Greylisted, please try again in [0-9] seconds' "$LAB/1.out"
check "Postfix logged its NOQUEUE reject" \
    lab_wait_grep 'postfix/smtpd\[[0-9]+\]: NOQUEUE: reject: RCPT from unknown\[203\.0\.113\.7\]: 450 4\.2\.0 <grey@example\.com>' "$MAILLOG"
check "policyd's diagnosis in the maillog: first seen, earliest retry" \
    lab_wait_grep 'policyd\[[0-9]+\]: NOQUEUE: client=unknown\[203\.0\.113\.7\], from=<news\+1001@sender\.example>, to=<grey@example\.com>, helo=<[^>]*>: greylist: defer: 450 4\.2\.0 .*cause=first attempt greylisted: .*first seen .*earliest retry' "$MAILLOG"
check "retry before the delay deferred again" grep -qE '<\*\* 450 4\.2\.0 <grey@example\.com>' "$LAB/2.out"
sleep 3.2 # from the second attempt: the delay counts from the first
send "$LAB/3.out" 1003
check "retry after the delay (new bounce tag) queued" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/3.out"
check "the retried message reached smtp-sink" lab_sink_has grey@example.com
lab_send "$LAB/4.out" --from local@example.org --to local-grey@example.com
check "a mynetworks client is not greylisted" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/4.out"
check "policyd exits 0 on SIGTERM" lab_stop_policyd
[ "$failures" -eq 0 ] || { echo "--- maillog"; tail -40 "$MAILLOG"; }
exit $((failures > 0))
