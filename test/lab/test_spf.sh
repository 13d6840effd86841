#!/usr/bin/env bash
# test_spf.sh - the spf check through a real Postfix 3.7: a forged sender (its domain's record
# lists another address, -all) is refused at RCPT with 550 5.7.23 and policyd's diagnosis sits in
# the maillog; a passing message for two recipients reaches smtp-sink with exactly one
# Received-SPF: pass header; a domain whose TXT lookup never answers gets 451 4.4.3 (never a 5xx)
# within the request deadline. The clients are XCLIENT addresses outside mynetworks; policyd asks
# the suite's own DNS server (test/dns/testdns.py) on 127.0.0.1:5353.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lab.sh"
lab_enter "$@"
lab_setup
lab_start_dns || not_ok "Postfix's test DNS starts"
cat >"$LAB/zone.yml" <<'ZONE'
negative_ttl: 60
names:
  forged.example: [{TXT: "v=spf1 ip4:192.0.2.1 -all"}]
  good.example: [{TXT: "v=spf1 ip4:203.0.113.0/24 -all"}]
  dead.example: [TIMEOUT]
ZONE
/usr/bin/python3 "$LABDIR_SRC/../dns/testdns.py" --zone "$LAB/zone.yml" --port 5353 >"$LAB/log/testdns.out" 2>&1 &
TESTDNS_PID=$!
trap 'kill $TESTDNS_PID 2>/dev/null; lab_stop' EXIT
lab_wait_grep ready "$LAB/log/testdns.out" || not_ok "test DNS for policyd starts"
lab_start_postfix || { not_ok "Postfix starts"; exit 1; }
lab_start_sink || not_ok "smtp-sink starts"
# One try of 1 s per query: the dead domain's temperror comes well inside request_deadline (5 s,
# Postfix waits 5 s too).
lab_start_policyd "checks = relay, spf" "dns_servers = 127.0.0.1:5353" "dns_timeout = 1s" \
    "dns_tries = 1" "request_deadline = 5s" "myhostname = mx.test.example" \
    "spf_check_helo = no" || { not_ok "policyd starts"; exit 1; }

# 1. forged sender: fail -> 550 5.7.23 at RCPT.
lab_send "$LAB/forged.out" --from boss@forged.example --to victim@example.com \
    --xclient-addr 203.0.113.7 --xclient-name '[UNAVAILABLE]'
check "forged sender refused at RCPT with 550 5.7.23" \
    grep -qE '<\*\* 550 5\.7\.23 <victim@example\.com>: Recipient address rejected: ' "$LAB/forged.out"
check "Postfix's NOQUEUE reject line for it" \
    lab_wait_grep 'postfix/smtpd\[[0-9]+\]: NOQUEUE: reject: RCPT from unknown\[203\.0\.113\.7\]: 550 5\.7\.23 <victim@example\.com>: Recipient address rejected: .*from=<boss@forged\.example> to=<victim@example\.com>' "$MAILLOG"
check "policyd's SPF fail diagnosis beside it" \
    lab_wait_grep 'policyd\[[0-9]+\]: NOQUEUE: client=unknown\[203\.0\.113\.7\], from=<boss@forged\.example>, to=<victim@example\.com>, helo=<[^>]*>: spf: reject: .*; cause_code=spf\.fail; cause=SPF fail: .*; fix=' "$MAILLOG"
check "forged message did not reach the sink" bash -c "! grep -lF 'victim@example.com' '$LAB'/sink/* >/dev/null 2>&1"

# 2. passing sender, two recipients -> one Received-SPF: pass header.
lab_send "$LAB/good.out" --from alice@good.example --to one@example.com,two@example.com \
    --xclient-addr 203.0.113.20 --xclient-name '[UNAVAILABLE]'
check "passing message accepted" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/good.out"
check "passing message reached the sink" lab_sink_has two@example.com
good=$(grep -lF "X-Rcpt-Args: <two@example.com>" "$LAB"/sink/* 2>/dev/null | head -1)
check "the sink got both recipients in that message" grep -qF "X-Rcpt-Args: <one@example.com>" "${good:-/dev/null}"
check "exactly one Received-SPF header, and it says pass" \
    test "$(grep -ciE '^Received-SPF:' "${good:-/dev/null}")" = 1 -a \
    "$(grep -cE '^Received-SPF: pass ' "${good:-/dev/null}")" = 1
check "the header names identity=mailfrom and the envelope sender" \
    grep -qE '^Received-SPF: pass .*envelope-from="alice@good\.example".*identity=mailfrom' "${good:-/dev/null}"

# 3. sender domain whose TXT lookup never answers -> 451 4.4.3, never a 5xx.
start=$(date +%s%N)
lab_send "$LAB/dead.out" --from bob@dead.example --to temp@example.com \
    --xclient-addr 203.0.113.30 --xclient-name '[UNAVAILABLE]'
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
check "dead domain deferred at RCPT with 451 4.4.3" \
    grep -qE '<\*\* 451 4\.4\.3 <temp@example\.com>: Recipient address rejected: ' "$LAB/dead.out"
check "dead domain never gets a 5xx" bash -c "! grep -qE '<\\*\\* 5[0-9][0-9] ' '$LAB/dead.out'"
check "its answer came within the request deadline (${elapsed_ms} ms < 5000)" test "$elapsed_ms" -lt 5000
check "Postfix's NOQUEUE line is the 451, not a policy-server failure" \
    lab_wait_grep 'NOQUEUE: reject: RCPT from unknown\[203\.0\.113\.30\]: 451 4\.4\.3 <temp@example\.com>' "$MAILLOG"
check "policyd exits 0" lab_stop_policyd
[ "$failures" -eq 0 ] || {
    echo "--- maillog"
    tail -30 "$MAILLOG"
    for f in forged good dead; do echo "--- $f.out"; cat "$LAB/$f.out"; done
    [ -n "${good:-}" ] && { echo "--- sink $good"; cat "$good"; }
}
exit $((failures > 0))
