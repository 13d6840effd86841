#!/usr/bin/env bash
# test_greylist_dns.sh - greylist_policy = suspicious with what the spf, dnsbl and rdns checks
# found for the same request (checks = spf, dnsbl, rdns, greylist), against the suite's DNS
# server: a forward-confirmed, non-generic client is greylisted for SPF softfail or none and the
# diagnosis says why; a generic name and a DNSBL score under the threshold make a client
# suspicious; a clean client (FCrDNS, SPF pass, not listed) is not greylisted; without spf in
# checks its criterion is not used; after an SPF pass the triplet is the SPF domain, so the
# retry from another /24 passes. Then greylist_skip_clients_file with Debian's postgrey
# whitelist_clients: skips by name and by regex (the verified name only) and by address; a
# line that cannot be read is refused with FILE:LINE at start, by -t and on reload.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
ZONE=$WORK/zone.json
$PY - "$ZONE" <<'PYEOF'
import json, sys
n = {}
def fcrdns(addr, name):
    o = addr.split(".")
    n["%s.%s.%s.%s.in-addr.arpa" % (o[3], o[2], o[1], o[0])] = [{"type": "PTR", "data": name}]
    n.setdefault(name, []).append({"type": "A", "data": addr})
def txt(name, text):
    n.setdefault(name, []).append({"type": "TXT", "data": text})
for last in (20, 40, 50):
    fcrdns("203.0.113.%d" % last, "mx%d.good.example" % last)
fcrdns("203.0.113.60", "203-0-113-60.dsl.isp.example")
fcrdns("203.0.113.80", "smtp.debian.org")
fcrdns("203.0.113.81", "sv12pub.verizon.net")
fcrdns("203.0.113.83", "svxpub.verizon.net")
txt("soft.example", "v=spf1 ~all")
txt("pool.example", "v=spf1 ip4:203.0.113.0/24 ip4:198.51.100.0/24 -all")
n["nospf.example"] = [{"type": "MX", "data": [10, "mx20.good.example"]}]
# bl.test weighs 1: a listing stays under dnsbl_threshold 3.
n["40.113.0.203.bl.test"] = [{"type": "A", "data": "127.0.0.2"}]
json.dump({"negative_ttl": 60, "names": n}, open(sys.argv[1], "w"), indent=1)
PYEOF
$PY "$TESTDIR/../dns/testdns.py" --zone "$ZONE" --port 0 --log "$WORK/queries.log" >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done
DNSPORT=$(sed -nE 's/.*ready port=([0-9]+).*/\1/p' "$WORK/dns.out")
trap 'kill $DNS_PID 2>/dev/null' EXIT

# The rdns and spf checks only inform greylisting here: their own answers do not refuse.
COMMON=("dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 700ms" "dns_tries = 1"
    "diagnosis_repeat_interval = 0" "myhostname = mx.test.example" "recipient_delimiter = +"
    "dnsbl_sites = bl.test=127.0.0.2*1" "dnsbl_threshold = 3"
    "rdns_no_ptr_action = DUNNO" "rdns_generic_action = DUNNO"
    "greylist_delay = 2s" "greylist_awl_passes = 0")
write_conf "$WORK/g.conf" "checks = spf, dnsbl, rdns, greylist" "state_store = lmdb:$WORK/state.lmdb" \
    "${COMMON[@]}"

# try ADDR CLIENT_NAME SENDER [RCPT] - one RCPT attempt (Postfix's client_name as given, the
# reverse name the same), the action
try() {
    req client_address="$1" client_name="$2" reverse_client_name="$2" helo_name="$2" sender="$3" \
        recipient="${4:-bob@mx.test.example}" instance="i$RANDOM$RANDOM" | ask - | grep '^action='
}
expect() {
    local name=$1 want=$2 got=$3
    if [[ "$got" == $want ]]; then ok "$name"; else not_ok "$name (got: $got; want: $want)"; fi
}
# logged NAME PATTERN - the log has a line matching the extended regex
logged() { check "$1" grep -qE -- "$2" "$WORK/policyd.log"; }

if start_daemon "$WORK/g.conf"; then
    expect "FCrDNS, not generic, SPF softfail: greylisted" "action=450 4.2.0 Greylisted*" \
        "$(try 203.0.113.20 mx20.good.example news@soft.example)"
    logged "... and the diagnosis names SPF softfail as the reason, with the fix" \
        "greylist: defer: 450 4\.2\.0 .*cause_code=greylist\.deferred; cause=first attempt greylisted: client mx20\.good\.example\[203\.0\.113\.20\] \(network 203\.0\.113\.0/24, suspicious: SPF softfail for sender domain soft\.example\), sender <news@soft\.example>.*fix=.*the owner of soft\.example should publish an SPF record that passes"
    expect "FCrDNS, not generic, no SPF record (none): greylisted" "action=450 4.2.0 Greylisted*" \
        "$(try 203.0.113.20 mx20.good.example a@nospf.example)"
    logged "... the diagnosis says SPF none" "suspicious: SPF none for sender domain nospf\.example\)"
    expect "FCrDNS, SPF pass, DNSBL score 1 under the threshold 3: greylisted" \
        "action=450 4.2.0 Greylisted*" "$(try 203.0.113.40 mx40.good.example a@pool.example)"
    logged "... the diagnosis names the score, the threshold and the list" \
        "client mx40\.good\.example\[203\.0\.113\.40\] \(triplet by SPF-passing domain pool\.example, suspicious: DNSBL score 1 under dnsbl_threshold 3 \(listed by bl\.test\)\)"
    expect "FCrDNS but a generic name, SPF pass: greylisted" "action=450 4.2.0 Greylisted*" \
        "$(try 203.0.113.60 203-0-113-60.dsl.isp.example b@pool.example)"
    logged "... the diagnosis names the generic name and why" \
        "suspicious: generic reverse name 203-0-113-60\.dsl\.isp\.example \(it embeds the address \(203-0-113-60\)\)"
    expect "clean client (FCrDNS, SPF pass, not listed): not greylisted" "action=PREPEND Received-SPF: pass*" \
        "$(try 203.0.113.50 mx50.good.example a@pool.example)"
    check "... and no greylist line about it" test -z "$(grep 'greylist:.*203\.0\.113\.50' "$WORK/policyd.log")"
    # After an SPF pass the triplet is the SPF domain: the retry from another /24 passes.
    expect "no PTR, SPF pass: greylisted, the triplet by the SPF domain" "action=450 4.2.0 Greylisted*" \
        "$(try 203.0.113.31 unknown list@pool.example carol@mx.test.example)"
    logged "... the diagnosis names the SPF domain instead of the network" \
        "client unknown\[203\.0\.113\.31\] \(triplet by SPF-passing domain pool\.example, suspicious: no forward-confirmed reverse name\)"
    expect "no PTR, SPF softfail: greylisted by network" "action=450 4.2.0 Greylisted*" \
        "$(try 203.0.113.32 unknown list@soft.example carol@mx.test.example)"
    sleep 2.2
    expect "after the delay, the SPF-pass sender retried from another /24 passes" "action=PREPEND Received-SPF: pass*" \
        "$(try 198.51.100.31 unknown list@pool.example carol@mx.test.example)"
    expect "after the delay, the softfail sender retried from another /24 is greylisted anew" \
        "action=450 4.2.0 Greylisted*" "$(try 198.51.100.32 unknown list@soft.example carol@mx.test.example)"
    stop_daemon
fi

# Without spf in checks, its criterion is unknown and not held against anyone.
write_conf "$WORK/nospf.conf" "checks = dnsbl, rdns, greylist" "state_store = lmdb:$WORK/state2.lmdb" \
    "${COMMON[@]}"
if start_daemon "$WORK/nospf.conf"; then
    expect "spf not configured: an FCrDNS client of a softfail domain is not greylisted" "action=DUNNO" \
        "$(try 203.0.113.20 mx20.good.example news@soft.example)"
    expect "spf not configured: the DNSBL criterion still counts" "action=450 4.2.0 Greylisted*" \
        "$(try 203.0.113.40 mx40.good.example a@pool.example)"
    stop_daemon
fi

# Debian's whitelist_clients (postgrey 1.37-2) and local lines, as greylist_skip_clients_file.
WL=$WORK/whitelist_clients
cp "$TESTDIR/../data/postgrey/whitelist_clients" "$WL"
write_conf "$WORK/wl.conf" "checks = spf, dnsbl, rdns, greylist" "state_store = lmdb:$WORK/state3.lmdb" \
    "${COMMON[@]}" "greylist_skip_clients_file = $WL"
if out=$("$POLICYD" -c "$WORK/wl.conf" -t 2>&1); then
    ok "Debian's whitelist_clients loads cleanly (-t)"
else
    not_ok "Debian's whitelist_clients loads cleanly (-t): $out"
fi
if start_daemon "$WORK/wl.conf" -v; then
    expect "whitelisted by name (debian.org, verified smtp.debian.org), though SPF softfail" \
        "action=PREPEND Received-SPF: softfail*" "$(try 203.0.113.80 smtp.debian.org a@soft.example)"
    logged "... the log names the file's line" "greylist: .*whitelisted by $WL:12: debian\.org"
    expect "whitelisted by regex (/^s[cv]\\d+pub\\.verizon\\.net\$/, verified)" \
        "action=PREPEND Received-SPF: softfail*" "$(try 203.0.113.81 sv12pub.verizon.net a@soft.example)"
    expect "the regex's \\d is a digit: svxpub.verizon.net is greylisted" "action=450 4.2.0 Greylisted*" \
        "$(try 203.0.113.83 svxpub.verizon.net a@soft.example)"
    got=$(req client_address=203.0.113.82 client_name=unknown reverse_client_name=sv12pub.verizon.net \
        sender=a@soft.example recipient=bob@mx.test.example instance=i$RANDOM | ask - | grep '^action=')
    expect "an unverified PTR name matching the regex does not count" "action=450 4.2.0 Greylisted*" "$got"
    got=$(req client_address=203.0.113.84 client_name=unknown reverse_client_name=smtp.debian.org \
        sender=a@soft.example recipient=bob@mx.test.example instance=i$RANDOM | ask - | grep '^action=')
    expect "an unverified PTR name under a listed domain does not count" "action=450 4.2.0 Greylisted*" "$got"
    expect "whitelisted by address (195.235.39, a /24)" "action=PREPEND Received-SPF: softfail*" \
        "$(try 195.235.39.7 unknown a@soft.example)"
    expect "whitelisted by network (51.4.80.0/27)" "action=PREPEND Received-SPF: softfail*" \
        "$(try 51.4.80.30 unknown a@soft.example)"
    expect "just outside that network: greylisted" "action=450 4.2.0 Greylisted*" \
        "$(try 51.4.80.32 unknown a@soft.example)"
    # Reload with a bad line: refused with FILE:LINE, the running list stays.
    printf '# local\nmail.example.org\n/^mx(\\d+\\.bad\\.example$/\n' >>"$WL"
    badline=$(wc -l <"$WL")
    kill -HUP "$DAEMON_PID"
    if wait_log "$WL:$badline: .*bad regular expression"; then
        ok "reload with a bad regex line: refused with FILE:LINE"
    else
        not_ok "reload with a bad regex line: refused with FILE:LINE ($(tail -3 "$WORK/policyd.log"))"
    fi
    expect "... and the running list stays" "action=PREPEND Received-SPF: softfail*" \
        "$(try 203.0.113.80 smtp.debian.org a@soft.example)"
    stop_daemon
fi
rc=0
out=$("$POLICYD" -c "$WORK/wl.conf" -t 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && [[ "$out" == *"$WORK/wl.conf:"*": greylist check: greylist_skip_clients_file: $WL:$badline: '/^mx(\\d+\\.bad\\.example\$/': bad regular expression: "* ]]; then
    ok "-t refuses the bad regex line with FILE:LINE: reason"
else
    not_ok "-t refuses the bad regex line with FILE:LINE: reason (exit $rc: $out)"
fi
rm -f "$WORK/policyd.sock"
rc=0
out=$(timeout 10 "$POLICYD" -c "$WORK/wl.conf" -f 2>&1) || rc=$?
if [ "$rc" -ne 0 ] && [[ "$out" == *"$WL:$badline: "*"bad regular expression"* ]]; then
    ok "the daemon does not start with the bad line, and says where it is"
else
    not_ok "the daemon does not start with the bad line (exit $rc: $out)"
fi
kill "$DNS_PID" 2>/dev/null
finish
