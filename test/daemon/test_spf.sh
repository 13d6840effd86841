#!/usr/bin/env bash
# test_spf.sh - the SPF check through the daemon and its DNS engine, against the suite's DNS
# server: the answers and headers (RFC 7208 9.1, RFC 7372 codes), one header and one
# evaluation per message, HELO identity, exemptions, the diagnosis lines; then hostile DNS
# data (CVE-2023-42118 shapes, a 4 KB record over TCP, TTL-0 chains, an include bomb) and a
# dead domain that must not delay anyone else. Run with the release and the ASan build.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
ZONE=$WORK/zone.json
$PY - "$ZONE" <<'PYEOF'
import json, sys
n = {}
def txt(name, text, ttl=300):
    n.setdefault(name, []).append({"type": "TXT", "data": text, "ttl": ttl})
txt("pass.example", "v=spf1 ip4:203.0.113.0/24 -all")
txt("zero.example", "v=spf1 include:inc1.zero.example -all", 0)
txt("inc1.zero.example", "v=spf1 include:inc2.zero.example -all", 0)
txt("inc2.zero.example", "v=spf1 a:host.zero.example -all", 0)
n["host.zero.example"] = [{"type": "A", "data": "203.0.113.7", "ttl": 0}]
# CVE-2023-42118: 127 %{l} macros in an explanation smash libspf2's stack on a fail.
txt("cve.example", "v=spf1 -all exp=x.cve.example")
txt("x.cve.example", "%{l}" * 127)
# The same macros in exists:, in a 4 KB record: more than a UDP answer holds -> TCP.
big = "v=spf1 " + " ".join("exists:%{l}.%{l}.%{l}.%{l}.x" + str(i) + ".example" for i in range(2)) + " ip4:192.0.2.1" * 300 + " -all"
txt("big.example", big)
# An include bomb: 9 includes per record, 6 levels.
for level in range(6):
    for i in range(1 if level == 0 else 9):
        name = "bomb.example" if level == 0 else "l%d-%d.bomb.example" % (level, i)
        if level < 5:
            txt(name, "v=spf1 " + " ".join("include:l%d-%d.bomb.example" % (level + 1, k) for k in range(9)) + " -all")
        else:
            txt(name, "v=spf1 ?all")
txt("broken.example", "v=spf1 ip4:203.0.113.0/24 foo -all")
txt("helo.example", "v=spf1 ip4:203.0.113.0/24 -all")
txt("soft.example", "v=spf1 ~all")
n["dead.example"] = [{"behaviour": "timeout"}]
json.dump({"negative_ttl": 60, "names": n}, open(sys.argv[1], "w"), indent=1)
PYEOF
$PY "$TESTDIR/../dns/testdns.py" --zone "$ZONE" --port 0 --control 0 --log "$WORK/queries.log" >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done
DNSPORT=$(sed -nE 's/.*ready port=([0-9]+).*/\1/p' "$WORK/dns.out")
CTL=$(sed -nE 's/.*control=([0-9]+).*/\1/p' "$WORK/dns.out")
dnsctl() { $PY "$TESTDIR/../dns/testdns.py" --ctl "127.0.0.1:$CTL" "$@"; }

write_conf "$WORK/spf.conf" "mynetworks = 127.0.0.0/8" "checks = relay, spf" "myhostname = mx.test.example" \
    "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 700ms" "dns_tries = 1" \
    "spf_skip_networks = 192.0.2.0/24" "request_deadline = 5s"
# rq ADDR SENDER [HELO] [INSTANCE] [RECIPIENT] - one RCPT request
rq() {
    req client_address="$1" client_name=unknown sender="$2" helo_name="${3:-mail.sender.example}" \
        instance="${4:-i$RANDOM$RANDOM}" recipient="${5:-bob@mx.test.example}"
}
one() { rq "$@" | ask - | head -1; }
expect() {
    local name=$1 want=$2 got
    shift 2
    got=$(one "$@")
    if [[ "$got" == $want ]]; then ok "$name"; else not_ok "$name (got: $got; want: $want)"; fi
}

if start_daemon "$WORK/spf.conf"; then
    expect "pass: the Received-SPF header of RFC 7208 9.1" \
        'action=PREPEND Received-SPF: pass (mx.test.example: domain of a@pass.example designates 203.0.113.7 as permitted sender) client-ip=203.0.113.7; envelope-from="a@pass.example"; helo="mail.sender.example"; receiver=mx.test.example; identity=mailfrom; mechanism="ip4:203.0.113.0/24"' \
        203.0.113.7 a@pass.example

    # One message, 50 recipients: one evaluation, one header.
    dnsctl reset >/dev/null
    for i in $(seq 1 50); do rq 203.0.113.8 b@pass.example "" msg-50 "r$i@mx.test.example"; done >"$WORK/fifty.req"
    ask "$WORK/fifty.req" >"$WORK/fifty.out"
    check "50 recipients of one message: one Received-SPF header" test "$(grep -c '^action=PREPEND Received-SPF: pass' "$WORK/fifty.out")" = 1
    check "50 recipients of one message: the others DUNNO" test "$(grep -c '^action=DUNNO' "$WORK/fifty.out")" = 49
    check "50 recipients of one message: evaluated once (at most one TXT query)" \
        test "$(dnsctl count TXT pass.example | grep -oE '[0-9]+$')" -le 1

    # The header goes with the first reply that carries it: not lost to another check's reject.
    expect "first recipient refused by the relay check" 'action=554 5.7.1 Relay access denied' \
        203.0.113.7 c@pass.example "" msg-relay x@elsewhere.example
    expect "second recipient of that message: the header now" 'action=PREPEND Received-SPF: pass *' \
        203.0.113.7 c@pass.example "" msg-relay bob@mx.test.example
    expect "third recipient: no second header" 'action=DUNNO' \
        203.0.113.7 c@pass.example "" msg-relay carol@mx.test.example

    expect "fail: 550 5.7.23 with the explanation" \
        'action=550 5.7.23 SPF fail: pass.example does not designate 198.51.100.1 as permitted sender' \
        198.51.100.1 forged@pass.example "" msg-forged
    expect "fail: every recipient of the message is refused" 'action=550 5.7.23 *' \
        198.51.100.1 forged@pass.example "" msg-forged second@mx.test.example
    check "fail: the diagnosis line, keyed like Postfix, with the record, the term and the fix" \
        grep -q 'NOQUEUE: client=unknown\[198.51.100.1\], from=<forged@pass.example>, to=<bob@mx.test.example>.*spf: reject: 550 5.7.23 .*; cause_code=spf.fail; cause=SPF fail: sender domain pass.example does not permit client 198.51.100.1 (the term .-all. decided; record of pass.example: "v=spf1 ip4:203.0.113.0/24 -all".*fix=.*must list it in the SPF record.*SRS' "$WORK/policyd.log"

    expect "softfail: header, and the diagnosis is logged" 'action=PREPEND Received-SPF: softfail *identity=mailfrom; mechanism="~all"' \
        198.51.100.2 x@soft.example
    check "softfail: diagnosis line" grep -q 'from=<x@soft.example>.*spf: note; cause_code=spf.softfail; cause=SPF softfail: sender domain soft.example does not permit client 198.51.100.2' "$WORK/policyd.log"

    expect "null sender: the HELO identity, envelope-from <>" \
        'action=PREPEND Received-SPF: pass (mx.test.example: domain of postmaster@helo.example designates 203.0.113.9 as permitted sender) client-ip=203.0.113.9; envelope-from="<>"; helo="helo.example"; receiver=mx.test.example; identity=helo; mechanism="ip4:203.0.113.0/24"' \
        203.0.113.9 "" helo.example
    expect "a HELO fail refuses a non-null sender too (RFC 7208 2.3)" 'action=550 5.7.23 *' \
        198.51.100.3 someone@nospf.example helo.example
    check "HELO fail: the diagnosis says it was the HELO name" grep -q 'from=<someone@nospf.example>.*; cause_code=spf.helo_fail; cause=SPF fail: HELO name helo.example does not permit client 198.51.100.3' "$WORK/policyd.log"
    expect "none: a header saying so" 'action=PREPEND Received-SPF: none (mx.test.example: domain of a@nospf.example does not designate permitted sender hosts *' \
        203.0.113.7 a@nospf.example
    expect "exempted network: no check" 'action=DUNNO' 192.0.2.5 forged@pass.example
    expect "mynetworks: no check" 'action=DUNNO' 127.0.0.1 forged@pass.example
    got=$(req client_address=198.51.100.1 sender=forged@pass.example sasl_username=alice sasl_method=PLAIN instance=auth1 | ask - | head -1)
    check "authenticated client: no check (got: $got)" test "$got" = "action=DUNNO"

    expect "permerror: header with the problem (PREPEND by default)" \
        'action=PREPEND Received-SPF: permerror *identity=mailfrom; problem="syntax error in the record of broken.example: unknown mechanism ?foo?"' \
        203.0.113.7 a@broken.example
    check "permerror: diagnosis line with the fix" grep -q 'from=<a@broken.example>.*spf: note; cause_code=spf.permerror; cause=SPF permerror: the SPF record of sender domain broken.example is unusable: syntax error.*fix=the owner of broken.example must correct the SPF record' "$WORK/policyd.log"

    # TTL-0 records down an include chain: answers held by the evaluation, no livelock.
    expect "TTL-0 include chain: pass" 'action=PREPEND Received-SPF: pass *mechanism="include:inc1.zero.example"' 203.0.113.7 a@zero.example
    # Hostile records.
    got=$(one 198.51.100.1 "$(printf 'l%.0s' $(seq 1 64))@cve.example")
    check "CVE-2023-42118 explanation shape: refused, bounded explanation, daemon alive" \
        bash -c '[[ "$1" == "action=550 5.7.23 lll"* ]] && [ ${#1} -lt 600 ]' _ "$got"
    expect "4 KB record over TCP with the same macros in exists:: a result" 'action=550 5.7.23 *' 198.51.100.1 abc@big.example
    check "the 4 KB record came over TCP" grep -q 'TXT big.example. tcp' "$WORK/queries.log"
    expect "include bomb: permerror at the 11th DNS-querying term" \
        'action=PREPEND Received-SPF: permerror *problem="more than 10 DNS-querying terms*' 198.51.100.1 a@bomb.example
    check "include bomb: bounded DNS work (at most 100 TXT queries)" \
        test "$(grep -c '^TXT .*bomb.example' "$WORK/queries.log")" -le 100

    # A dead domain: 451 4.4.3 after the DNS timeout, and nobody else waits for it.
    $PY - "$WORK/policyd.sock" "$(rq 198.51.100.1 x@dead.example)" "$(rq 203.0.113.7 y@pass.example)" >"$WORK/dead.out" <<'PYEOF'
import socket, sys, time, threading
path, dead, live = sys.argv[1], sys.argv[2] + "\n\n", sys.argv[3] + "\n\n"
res = {}
def ask(key, text):
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(path)
    t0 = time.monotonic(); s.sendall(text.strip("\n").encode() + b"\n\n")
    data = b""
    while not data.endswith(b"\n\n"):
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
    res[key] = (time.monotonic() - t0, data.decode().split("\n")[0])
t = threading.Thread(target=ask, args=("dead", dead)); t.start()
time.sleep(0.05)
ask("live", live); t.join()
print("dead %.3f %s" % res["dead"]); print("live %.3f %s" % res["live"])
PYEOF
    check "dead domain: 451 4.4.3, never a 5xx" grep -q '^dead [0-9.]* action=451 4.4.3 ' "$WORK/dead.out"
    check "temperror reply: no resolver address nor DNS internals (they stay in the log)" \
        bash -c "grep '^dead ' '$WORK/dead.out' | grep -q 'try again later' &&
                 ! grep '^dead ' '$WORK/dead.out' | grep -qE '127\\.0\\.0\\.1|timeout|lookup of'"
    check "temperror log line keeps the DNS detail" grep -qE "spf.*temperror.*TXT lookup of dead.example" "$WORK/policyd.log"
    check "dead domain: another client meanwhile answered at once (< 0.3 s)" \
        awk '$1=="live" && $2 < 0.3 && $3 ~ /PREPEND/ {f=1} END {exit !f}' "$WORK/dead.out"
    check "daemon alive after all of it" alive

    # Per identity: spf_helo_fail_action = DUNNO leaves the decision to the MAIL FROM result.
    write_conf "$WORK/spf.conf" "mynetworks = 127.0.0.0/8" "checks = relay, spf" "myhostname = mx.test.example" \
        "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 700ms" "dns_tries = 1" \
        "spf_skip_networks = 192.0.2.0/24" "request_deadline = 5s" "spf_helo_fail_action = DUNNO"
    kill -HUP "$DAEMON_PID"
    check "reload with spf_helo_fail_action = DUNNO" wait_log "reloaded $WORK/spf.conf"
    expect "HELO fail no longer refuses; the MAIL FROM result (none) is the header" \
        'action=PREPEND Received-SPF: none *identity=mailfrom*' 198.51.100.3 someone@nospf.example helo.example
fi
kill "$DNS_PID" 2>/dev/null
wait "$DNS_PID" 2>/dev/null
finish
