#!/usr/bin/env bash
# test_dnschecks.sh - the rdns and dnsbl checks through the daemon, against the suite's own
# DNS server (test/dns/testdns.py on a loopback port): every rDNS outcome, listed / not listed /
# allow-listed / outside the filter / error-code answers, the diagnosis lines; then faults:
# DNS dead, slow or SERVFAIL - every request answered before the deadline, never a 5xx.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
DNSPORT=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ZONE=$WORK/zone.json
$PY - "$ZONE" <<'PYEOF'
import json, sys
names = {}
def ptr(addr, name):
    o = addr.split(".")
    names["%s.%s.%s.%s.in-addr.arpa." % (o[3], o[2], o[1], o[0])] = [{"type": "PTR", "data": name}]
def a(name, addr, t="A"):
    names.setdefault(name, []).append({"type": t, "data": addr})
ptr("203.0.113.8", "mail.good.example."); a("mail.good.example.", "203.0.113.8")
ptr("203.0.113.9", "mismatch.example."); a("mismatch.example.", "198.51.100.1")
ptr("203.0.113.10", "203-0-113-10.dsl.isp.example."); a("203-0-113-10.dsl.isp.example.", "203.0.113.10")
names["11.113.0.203.in-addr.arpa."] = [{"behaviour": "timeout"}]
names["12.113.0.203.in-addr.arpa."] = [{"behaviour": "servfail"}]
names["5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."] = [{"type": "PTR", "data": "v6.good.example."}]
a("v6.good.example.", "2001:db8::25", "AAAA")
for last in (13, 14, 15):
    ptr("203.0.113.%d" % last, "mx%d.good.example." % last); a("mx%d.good.example." % last, "203.0.113.%d" % last)
names["8.113.0.203.bl.test."] = [{"type": "A", "data": "127.0.0.2"}, {"type": "TXT", "data": "Listed for spam, see http://bl.test/q?203.0.113.8"}]
names["13.113.0.203.bl.test."] = [{"type": "A", "data": "127.0.0.4"}]
names["13.113.0.203.al.test."] = [{"type": "A", "data": "127.0.10.2"}]
names["14.113.0.203.bl.test."] = [{"type": "A", "data": "127.0.0.99"}]
names["15.113.0.203.err.test."] = [{"type": "A", "data": "127.255.255.254"}]
names["slow.example."] = []
names["spammy.example.dbl.test."] = [{"type": "A", "data": "127.0.1.2"}, {"type": "TXT", "data": "spamvertised domain"}]
names["bad-helo.example.dbl.test."] = [{"type": "A", "data": "127.0.1.3"}]
names["odd.example.dbl.test."] = [{"type": "A", "data": "127.0.0.2"}]
json.dump({"negative_ttl": 60, "names": names}, open(sys.argv[1], "w"), indent=1)
PYEOF
$PY "$TESTDIR/../dns/testdns.py" --zone "$ZONE" --port "$DNSPORT" --log "$WORK/queries.log" >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done

COMMON=("mynetworks = 127.0.0.0/8" "relay_domains = example.com" "checks = relay, dnsbl, rdns"
    "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 500ms" "dns_tries = 1"
    "dnsbl_sites = bl.test=127.0.0.[2..11]*3, al.test=127.0.[0..255].[1..3]*-5, err.test"
    "dnsbl_threshold = 3" "dnsbl_delist_urls = bl.test=http://bl.test/delist"
    "rdns_mismatch_action = 450 4.7.1 Client host rejected: cannot find your hostname"
    "rdns_generic_action = DEFER_IF_PERMIT generic reverse DNS")
write_conf "$WORK/dns.conf" "${COMMON[@]}"
# reply_for ADDR - the answer for a RCPT to a relay domain from ADDR
reply_for() { req client_address="$1" client_name=unknown recipient=someone@example.com | ask - | head -1; }
expect() {
    local name=$1 addr=$2 want=$3 got
    got=$(reply_for "$addr")
    if [[ "$got" == $want ]]; then ok "$name"; else not_ok "$name (got: $got; want: $want)"; fi
}
if start_daemon "$WORK/dns.conf"; then
    expect "no PTR: 450 4.7.1" 203.0.113.7 "action=450 4.7.1 Client host rejected: cannot find your reverse hostname"
    check "no PTR: the diagnosis names the query, the answer and the fix" \
        grep -q "client=unknown\[203.0.113.7\].*rdns: defer: 450 4.7.1[^;]*; cause_code=rdns.no_ptr; cause=client 203.0.113.7 has no PTR record (PTR lookup of 7.113.0.203.in-addr.arpa: NXDOMAIN).*fix=the owner of the address (the ISP or hosting provider of 203.0.113.7) must set a PTR record to a name that resolves back to 203.0.113.7" "$WORK/policyd.log"
    expect "listed client refused, lists and TXT reason in the reply" 203.0.113.8 "action=554 5.7.1 Service unavailable; client \[203.0.113.8\] blocked using bl.test; Listed for spam, see http://bl.test/q?203.0.113.8"
    check "listing diagnosis: each list's answer, the score, the delisting page" \
        grep -q "dnsbl: reject: .*; cause_code=dnsbl.listed; cause=client 203.0.113.8 is listed: score 3 reaches dnsbl_threshold 3 (bl.test: 127.0.0.2 (listed, weight 3); al.test: not listed; err.test: not listed).*fix=.*bl.test: http://bl.test/delist" "$WORK/policyd.log"
    expect "PTR does not resolve back: rdns_mismatch_action" 203.0.113.9 "action=450 4.7.1 Client host rejected: cannot find your hostname"
    check "mismatch diagnosis shows what the name resolves to" \
        grep -q "cause_code=rdns.mismatch; cause=client 203.0.113.9 has PTR record mismatch.example (A: 198.51.100.1) but no name resolves back to 203.0.113.9" "$WORK/policyd.log"
    expect "generic PTR name: rdns_generic_action" 203.0.113.10 "action=DEFER_IF_PERMIT generic reverse DNS"
    check "generic diagnosis says why" grep -q "looks generic (it embeds the address (203-0-113-10))" "$WORK/policyd.log"
    expect "PTR lookup times out: temporary, DUNNO" 203.0.113.11 "action=DUNNO"
    expect "PTR SERVFAIL: temporary, DUNNO" 203.0.113.12 "action=DUNNO"
    expect "IPv6 client, forward-confirmed" 2001:db8::25 "action=DUNNO"
    expect "listed but allow-listed: score -2, accepted" 203.0.113.13 "action=DUNNO"
    expect "answer outside the filter is not a listing" 203.0.113.14 "action=DUNNO"
    expect "error-code answer 127.255.255.254 is not a listing" 203.0.113.15 "action=DUNNO"
    check "error-code answer logged loudly as a configuration problem" \
        grep -q "error: dnsbl: err.test answered 127.255.255.254, an error code, not a listing: .*; cause_code=dnsbl.error_answer; fix: query it" "$WORK/policyd.log"
    expect "error-code answer a second time" 203.0.113.15 "action=DUNNO"
    check "error-code answer logged once per interval" test "$(grep -c 'err.test answered 127.255.255.254' "$WORK/policyd.log")" -eq 1
    n_before=$(wc -l <"$WORK/queries.log")
    expect "mynetworks client skipped" 127.0.0.1 "action=DUNNO"
    expect "cached: the same client again" 203.0.113.7 "action=450 4.7.1 Client host rejected: cannot find your reverse hostname"
    check "no DNS query for a skipped client nor for a cached answer" test "$(wc -l <"$WORK/queries.log")" -eq "$n_before"
    check "the relay check still comes first" grep -qx "action=554 5.7.1 Relay access denied" < <(req client_address=203.0.113.8 recipient=x@foreign.example | ask -)
    kill -USR1 "$DAEMON_PID"
    check "SIGUSR1 logs the DNS counters" wait_log "dns statistics: lookups=[0-9]+ sent=[0-9]+ cache_hits=[1-9]"
    check "daemon exits 0" stop_daemon
fi

# Domain lists (RHSBL) for the sender domain and the HELO name.
write_conf "$WORK/rhs.conf" "mynetworks = 127.0.0.0/8" "relay_domains = example.com" \
    "checks = relay, dnsbl" "dns_servers = 127.0.0.1:$DNSPORT" "dnsbl_sites = bl.test" \
    "rhsbl_sites = dbl.test=127.0.1.[2..99]"
rhs_reply() { req client_address=2001:db8::25 client_name=v6.good.example recipient=x@example.com "$@" | ask - | head -1; }
if start_daemon "$WORK/rhs.conf"; then
    got=$(rhs_reply sender=a@spammy.example helo_name=mail.good.example)
    check "listed sender domain refused, list and TXT reason in the reply" \
        test "$got" = "action=554 5.7.1 Service unavailable; client [2001:db8::25] blocked using dbl.test; spamvertised domain"
    check "sender-domain listing diagnosis" \
        grep -q "cause_code=dnsbl.domain_listed; cause=sender domain spammy.example is listed: score 1 reaches dnsbl_threshold 1 (bl.test: not listed; dbl.test (sender domain spammy.example): 127.0.1.2 (listed, weight 1); dbl.test (HELO name mail.good.example): not listed)" "$WORK/policyd.log"
    got=$(rhs_reply sender=a@example.org helo_name=bad-helo.example)
    check "listed HELO name refused" test "$got" = "action=554 5.7.1 Service unavailable; client [2001:db8::25] blocked using dbl.test"
    check "HELO listing diagnosis" grep -q "cause_code=dnsbl.domain_listed; cause=HELO name bad-helo.example is listed" "$WORK/policyd.log"
    got=$(rhs_reply sender=a@odd.example helo_name=mail.good.example)
    check "domain-list answer outside the filter is not a listing" test "$got" = "action=DUNNO"
    got=$(rhs_reply sender= helo_name=[192.0.2.1])
    check "null sender and an address-literal HELO: nothing to ask a domain list" test "$got" = "action=DUNNO"
    stop_daemon
fi

# Actions that do not decide: DUNNO (the mismatch default) and WARN.
write_conf "$WORK/soft.conf" "mynetworks = 127.0.0.0/8" "relay_domains = example.com" \
    "checks = relay, rdns" "dns_servers = 127.0.0.1:$DNSPORT" "rdns_generic_action = WARN generic rDNS"
if start_daemon "$WORK/soft.conf"; then
    expect "mismatch with the default DUNNO action: accepted" 203.0.113.9 "action=DUNNO"
    expect "generic with a WARN action: accepted" 203.0.113.10 "action=DUNNO"
    check "DUNNO by configuration logs no reject line" test -z "$(grep 'rdns: reject: DUNNO' "$WORK/policyd.log")"
    check "WARN logs the diagnosis as a warning" grep -q "rdns: warn: WARN generic rDNS; cause_code=rdns.generic; cause=client 203.0.113.10 has forward-confirmed PTR" "$WORK/policyd.log"
    stop_daemon
fi

# Under the threshold but at dnsbl_warn_threshold: a header and a score line keyed like every
# diagnosis line, so that a grep for the recipient finds it.
write_conf "$WORK/warn.conf" "mynetworks = 127.0.0.0/8" "relay_domains = example.com" \
    "checks = relay, dnsbl" "dns_servers = 127.0.0.1:$DNSPORT" "dnsbl_sites = bl.test=127.0.0.[2..11]*3" \
    "dnsbl_threshold = 10" "dnsbl_warn_threshold = 3" "dnsbl_warn_header = X-DNSBL-Warn"
if start_daemon "$WORK/warn.conf"; then
    expect "score at the warn threshold: a header, no refusal" 203.0.113.8 "action=PREPEND X-DNSBL-Warn: client 203.0.113.8 scores 3 *"
    check "the score line carries the request's key" \
        grep -q "NOQUEUE: client=unknown\[203.0.113.8\], from=<[^>]*>, to=<someone@example.com>, helo=<[^>]*>: dnsbl: note; cause_code=dnsbl.warn_score; cause=client 203.0.113.8 scores 3 (warn at 3, reject at 10): bl.test: 127.0.0.2 (listed, weight 3)" "$WORK/policyd.log"
    stop_daemon
fi

# A list that keeps timing out is reported and skipped for a while.
SKIPPORT=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo '{"default": [{"behaviour": "timeout"}], "names": {}}' >"$WORK/skip.json"
$PY "$TESTDIR/../dns/testdns.py" --zone "$WORK/skip.json" --port "$SKIPPORT" --log "$WORK/skip-queries.log" >"$WORK/skip.out" 2>&1 &
SKIP_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/skip.out" 2>/dev/null && break; sleep 0.1; done
write_conf "$WORK/skip.conf" "mynetworks = 127.0.0.0/8" "relay_domains = example.com" \
    "checks = dnsbl" "dns_servers = 127.0.0.1:$SKIPPORT" "dns_timeout = 1s" "dns_tries = 1" \
    "dnsbl_sites = dead.test" "dnsbl_timeout_limit = 2" "dnsbl_skip_time = 1m"
if start_daemon "$WORK/skip.conf"; then
    expect "list times out (1): DUNNO" 198.51.100.71 "action=DUNNO"
    expect "list times out (2): DUNNO" 198.51.100.72 "action=DUNNO"
    check "a list that keeps timing out is reported" grep -q "dnsbl: dead.test timed out 2 times in a row: skipped for 60 s; cause_code=dnsbl.list_timeout; fix: " "$WORK/policyd.log"
    t0=$(date +%s%N)
    expect "while skipped: answered without asking the list" 198.51.100.73 "action=DUNNO"
    t1=$(date +%s%N)
    check "while skipped: no wait for the dead list (1 s timeout)" test $(( (t1 - t0) / 1000000 )) -lt 700
    check "while skipped: no query sent" test -z "$(grep 73.100.51.198 "$WORK/skip-queries.log")"
    stop_daemon
fi
kill "$SKIP_PID" 2>/dev/null

# Faults. A DNS server that never answers, with a deadline shorter than the DNS timeout.
DEADPORT=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo '{"default": [{"behaviour": "timeout"}], "names": {}}' >"$WORK/dead.json"
$PY "$TESTDIR/../dns/testdns.py" --zone "$WORK/dead.json" --port "$DEADPORT" >"$WORK/dead.out" 2>&1 &
DEAD_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dead.out" 2>/dev/null && break; sleep 0.1; done
write_conf "$WORK/dead.conf" "${COMMON[@]}" "dns_servers = 127.0.0.1:$DEADPORT" "dns_timeout = 5s" "request_deadline = 1s"
cp "$WORK/policyd.log" "$WORK/policyd-phase1.log"
: >"$WORK/policyd.log"
if start_daemon "$WORK/dead.conf"; then
    t0=$(date +%s.%N)
    out=$( { for i in 1 2 3 4 5; do req client_address=198.51.100.$i recipient=x@example.com; done; } | ask -)
    t1=$(date +%s.%N)
    check "DNS dead: all 5 requests answered" test "$(grep -c '^action=' <<<"$out")" -eq 5
    check "DNS dead: none is a 5xx" test -z "$(grep -E '^action=5' <<<"$out")"
    check "DNS dead: answered within the deadline (1 s, plus slack)" awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 3.5) }'
    check "deadline line names the late checks and what they waited for" \
        grep -q "deadline: no answer after 1000 ms, answered DUNNO; cause_code=deadline.fallback; late: dnsbl (queries to 3 DNS lists), rdns (PTR lookup of 1.100.51.198.in-addr.arpa)" "$WORK/policyd.log"
    check "daemon exits 0" stop_daemon
fi
# A slow DNS server (every answer 2 s late) and a SERVFAIL one: temporary answers only.
$PY - "$ZONE" <<'PYEOF'
import json, sys
z = json.load(open(sys.argv[1]))
for k in list(z["names"]):
    z["names"][k] = [{"behaviour": "delay", "ms": 2000}] + z["names"][k]
json.dump(z, open(sys.argv[1], "w"))
PYEOF
write_conf "$WORK/slow.conf" "${COMMON[@]}" "request_deadline = 1s" "dns_timeout = 5s"
: >"$WORK/policyd.log"
if start_daemon "$WORK/slow.conf"; then
    out=$(req client_address=203.0.113.8 recipient=x@example.com | ask -)
    check "DNS slow: fallback answer at the deadline" test "$out" = "action=DUNNO"
    check "DNS slow: deadline logged" grep -q "deadline: no answer after 1000 ms" "$WORK/policyd.log"
    # SIGTERM while a request waits for DNS: it is still answered, then the daemon exits 0.
    req client_address=203.0.113.9 recipient=x@example.com | ask - >"$WORK/inflight.out" &
    ASK=$!
    sleep 0.3
    stop_daemon
    check "SIGTERM with a request in flight: exit status 0" test $? -eq 0
    wait "$ASK"
    check "SIGTERM: the request in flight still got its answer" grep -qx "action=DUNNO" "$WORK/inflight.out"
fi
$PY - "$ZONE" <<'PYEOF'
import json, sys
z = json.load(open(sys.argv[1]))
z["default"] = [{"behaviour": "servfail"}]
json.dump(z, open(sys.argv[1], "w"))
PYEOF
write_conf "$WORK/sf.conf" "${COMMON[@]}"
if start_daemon "$WORK/sf.conf"; then
    out=$( { for a in 203.0.113.7 203.0.113.8 203.0.113.9; do req client_address=$a recipient=x@example.com; done; } | ask -)
    check "DNS SERVFAIL: every answer is DUNNO, never a 5xx" test "$(grep -c '^action=DUNNO' <<<"$out")" -eq 3
    stop_daemon
fi
kill "$DNS_PID" "$DEAD_PID" 2>/dev/null
wait "$DNS_PID" "$DEAD_PID" 2>/dev/null
finish
