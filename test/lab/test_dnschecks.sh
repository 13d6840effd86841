#!/usr/bin/env bash
# test_dnschecks.sh - rdns and dnsbl through a real Postfix 3.7 (issue 3, section 4): a client
# without PTR and a listed client are refused at RCPT, each diagnosis in the maillog beside
# Postfix's line; a clean client's mail reaches smtp-sink. policyd asks the suite's own DNS
# server (test/dns/testdns.py) on 127.0.0.1:5353 inside the lab's network namespace.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lab.sh"
lab_enter "$@"
lab_setup
lab_start_dns || not_ok "Postfix's test DNS starts"
/usr/bin/python3 - "$LAB/zone.json" <<'PYEOF'
import json, sys
n = {}
n["20.113.0.203.in-addr.arpa."] = [{"type": "PTR", "data": "mail.clean.example."}]
n["mail.clean.example."] = [{"type": "A", "data": "203.0.113.20"}]
n["8.113.0.203.in-addr.arpa."] = [{"type": "PTR", "data": "mail.listed.example."}]
n["mail.listed.example."] = [{"type": "A", "data": "203.0.113.8"}]
n["8.113.0.203.bl.test."] = [{"type": "A", "data": "127.0.0.2"}, {"type": "TXT", "data": "spam source"}]
json.dump({"negative_ttl": 60, "names": n}, open(sys.argv[1], "w"))
PYEOF
/usr/bin/python3 "$LABDIR_SRC/../dns/testdns.py" --zone "$LAB/zone.json" --port 5353 >"$LAB/log/testdns.out" 2>&1 &
TESTDNS_PID=$!
trap 'kill $TESTDNS_PID 2>/dev/null; lab_stop' EXIT
lab_wait_grep ready "$LAB/log/testdns.out" || not_ok "test DNS for policyd starts"
lab_start_postfix || { not_ok "Postfix starts"; exit 1; }
lab_start_sink || not_ok "smtp-sink starts"
lab_start_policyd "checks = relay, dnsbl, rdns" "dns_servers = 127.0.0.1:5353" \
    "dnsbl_sites = bl.test=127.0.0.[2..11]" || { not_ok "policyd starts"; exit 1; }

lab_send "$LAB/noptr.out" --from a@example.org --to noptr@example.com \
    --xclient-addr 203.0.113.7 --xclient-name '[UNAVAILABLE]'
check "client without PTR deferred at RCPT with 450 4.7.1" \
    grep -qE '<\*\* 450 4\.7\.1 <noptr@example\.com>: Recipient address rejected: Client host rejected: cannot find your reverse hostname' "$LAB/noptr.out"
check "Postfix's NOQUEUE line for it" \
    lab_wait_grep 'postfix/smtpd\[[0-9]+\]: NOQUEUE: reject: RCPT from unknown\[203\.0\.113\.7\]: 450 4\.7\.1 <noptr@example\.com>' "$MAILLOG"
check "policyd's diagnosis beside it" \
    lab_wait_grep 'policyd\[[0-9]+\]: NOQUEUE: client=unknown\[203\.0\.113\.7\], from=<a@example\.org>, to=<noptr@example\.com>.*rdns: defer: 450 4\.7\.1.*; cause_code=rdns\.no_ptr; cause=client 203\.0\.113\.7 has no PTR record \(PTR lookup of 7\.113\.0\.203\.in-addr\.arpa: NXDOMAIN\)' "$MAILLOG"

lab_send "$LAB/listed.out" --from a@example.org --to listed@example.com \
    --xclient-addr 203.0.113.8 --xclient-name mail.listed.example
check "listed client refused at RCPT with 554 5.7.1 naming the list" \
    grep -qE '<\*\* 554 5\.7\.1 <listed@example\.com>: Recipient address rejected: Service unavailable; client \[203\.0\.113\.8\] blocked using bl\.test; spam source' "$LAB/listed.out"
check "policyd's listing diagnosis in the maillog" \
    lab_wait_grep 'policyd\[[0-9]+\]: NOQUEUE: client=mail\.listed\.example\[203\.0\.113\.8\], from=<a@example\.org>, to=<listed@example\.com>.*dnsbl: reject: .*score 1 reaches dnsbl_threshold 1 \(bl\.test: 127\.0\.0\.2 \(listed, weight 1\)\)' "$MAILLOG"

lab_send "$LAB/clean.out" --from a@example.org --to clean@example.com \
    --xclient-addr 203.0.113.20 --xclient-name mail.clean.example
check "clean client accepted" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/clean.out"
check "clean client's mail reached the sink" lab_sink_has clean@example.com
check "policyd exits 0" lab_stop_policyd
[ "$failures" -eq 0 ] || { echo "--- maillog"; tail -30 "$MAILLOG"; }
exit $((failures > 0))
