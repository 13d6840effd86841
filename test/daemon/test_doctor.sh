#!/usr/bin/env bash
# test_doctor.sh - "policyd doctor", DNS sections (reverse DNS and HELO name, SPF, DMARC, MX,
# blocklists) against the suite's DNS server: a healthy setup reports ok for each, a setup
# broken in every way names each problem and its fix; --json parses; exit codes 0 / 1 / 2;
# --section runs only the sections named, and an unknown name is an error listing them.
# (DKIM, TLS and Postfix wiring have their own tests: test_doctor_dkim.sh, test_doctor_tls.sh.)
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
ZONE=$WORK/zone.json
$PY - "$ZONE" <<'PYEOF'
import json, sys
n = {}
def add(name, t, data):
    n.setdefault(name, []).append({"type": t, "data": data})
# Healthy: 203.0.113.10 is mail.good.example both ways; SPF, DMARC, MX in order; not listed.
add("10.113.0.203.in-addr.arpa", "PTR", "mail.good.example")
add("mail.good.example", "A", "203.0.113.10")
add("good.example", "TXT", "v=spf1 mx ip4:198.51.100.0/24 -all")
add("good.example", "MX", [10, "mail.good.example"])
add("_dmarc.good.example", "TXT", "v=DMARC1; p=reject; rua=mailto:dmarc@good.example")
# Broken: no PTR for .66; .67's PTR does not resolve back; .68's name is not the HELO name.
add("67.113.0.203.in-addr.arpa", "PTR", "liar.bad.example")
add("liar.bad.example", "A", "192.0.2.99")
add("68.113.0.203.in-addr.arpa", "PTR", "other.bad.example")
add("other.bad.example", "A", "203.0.113.68")
add("bad.example", "TXT", "v=spf1 ip4:192.0.2.1 -all")
add("bad.example", "MX", [10, "mx.bad.example"])
add("mx.bad.example", "TXT", "no address here")
add("twospf.example", "TXT", "v=spf1 -all")
add("twospf.example", "TXT", "v=spf1 +all")
add("syntax.example", "TXT", "v=spf1 ip4:192.0.2.1 frob -all")
add("syntax.example", "MX", [10, "mail.good.example"])
add("_dmarc.syntax.example", "TXT", "v=DMARC1; p=maybe")
add("_dmarc.bad.example", "TXT", "some other text")
# Blocklists: .66 is listed with a reason; the error list answers 127.255.255.254 for all.
add("66.113.0.203.bl.test", "A", "127.0.0.2")
add("66.113.0.203.bl.test", "TXT", "Listed: spam trap hits, see http://bl.test/q")
add("67.113.0.203.bl.test", "A", "127.0.0.99")
add("*.err.test", "A", "127.255.255.254")
json.dump({"negative_ttl": 60, "names": n}, open(sys.argv[1], "w"), indent=1)
PYEOF
$PY "$TESTDIR/../dns/testdns.py" --zone "$ZONE" --port 0 >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done
DNSPORT=$(sed -nE 's/.*ready port=([0-9]+).*/\1/p' "$WORK/dns.out")

write_conf "$WORK/ok.conf" "myhostname = mail.good.example" "dns_servers = 127.0.0.1:$DNSPORT" \
    "dns_timeout = 500ms" "dns_tries = 1" "dnsbl_sites = bl.test=127.0.0.[2..11]*3, allow.test*-5" \
    "dnsbl_delist_urls = bl.test=http://bl.test/delist"
write_conf "$WORK/bad.conf" "myhostname = mail.good.example" "dns_servers = 127.0.0.1:$DNSPORT" \
    "dns_timeout = 500ms" "dns_tries = 1" "dnsbl_sites = bl.test=127.0.0.[2..11]*3, err.test" \
    "dnsbl_delist_urls = bl.test=http://bl.test/delist"

# finding FILE CHECK SUBJECT-PREFIX - "status|observed|fix" of the first matching finding.
finding() {
    $PY - "$@" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for r in doc["results"]:
    if r["check"] == sys.argv[2] and r["subject"].startswith(sys.argv[3]):
        print("%s|%s|%s" % (r["status"], r["observed"], r["fix"]))
        break
else:
    print("missing")
PYEOF
}
expect() { # expect NAME FILE CHECK SUBJECT GLOB
    local got
    got=$(finding "$2" "$3" "$4")
    if [[ "$got" == $5 ]]; then ok "$1"; else not_ok "$1 (got: $got; want: $5)"; fi
}

rc=0
"$POLICYD" -c "$WORK/ok.conf" doctor --ip 203.0.113.10 --domain good.example --json >"$WORK/ok.json" 2>"$WORK/ok.err" || rc=$?
check "--json output parses" $PY -c 'import json,sys; json.load(open(sys.argv[1]))' "$WORK/ok.json"
expect "healthy: PTR forward-confirmed" "$WORK/ok.json" ptr 203.0.113.10 "ok|PTR mail.good.example, forward-confirmed|"
expect "healthy: HELO name is the PTR name" "$WORK/ok.json" helo 203.0.113.10 "ok|HELO name mail.good.example is the PTR name|"
expect "healthy: SPF permits the address" "$WORK/ok.json" spf "good.example for 203.0.113.10" "ok|pass (mx; 1 of 10 DNS-querying terms)|"
expect "healthy: DMARC p=reject, alignment explained" "$WORK/ok.json" dmarc good.example "ok|p=reject, adkim=r, aspf=r|"
expect "healthy: MX with addresses" "$WORK/ok.json" mx good.example "ok|MX 10 mail.good.example, all with addresses|"
expect "healthy: not listed; allow lists not asked" "$WORK/ok.json" dnsbl "203.0.113.10 on bl.test" "ok|not listed|"
check "healthy: no DNS section reports a problem" $PY -c '
import json, sys
bad = [r for r in json.load(open(sys.argv[1]))["results"]
       if r["check"] in ("ptr", "helo", "spf", "dmarc", "mx", "dnsbl") and r["status"] != "ok"]
sys.exit(1 if bad else 0)' "$WORK/ok.json"

rc=0
"$POLICYD" -c "$WORK/bad.conf" doctor --ip 203.0.113.66 --ip 203.0.113.67 --ip 203.0.113.68 \
    --domain bad.example --domain twospf.example --domain syntax.example --domain nowhere.example \
    --json >"$WORK/bad.json" 2>"$WORK/bad.err" || rc=$?
check "broken: exit status 1 (something fails)" test "$rc" = 1
expect "no PTR: fail, the address owner must set it" "$WORK/bad.json" ptr 203.0.113.66 \
    "fail|no PTR record (NXDOMAIN for 66.113.0.203.in-addr.arpa)|ask the owner of 203.0.113.66 (your ISP or hosting provider*"
expect "PTR not forward-confirmed" "$WORK/bad.json" ptr 203.0.113.67 \
    "fail|PTR liar.bad.example does not resolve back to 203.0.113.67 (it resolves to: 192.0.2.99)|*"
expect "HELO name does not resolve to the address" "$WORK/bad.json" helo 203.0.113.68 \
    "fail|HELO name mail.good.example does not resolve to 203.0.113.68 (203.0.113.10)|set smtp_helo_name = other.bad.example*"
expect "SPF without our address: fail, the term to add" "$WORK/bad.json" spf "bad.example for 203.0.113.66" \
    "fail|fail: the record \"v=spf1 ip4:192.0.2.1 -all\" does not permit 203.0.113.66 (-all decided)|add ip4:203.0.113.66 to the SPF record of bad.example*"
expect "two SPF records" "$WORK/bad.json" spf twospf.example "fail|2 SPF records|merge them*"
expect "SPF syntax error" "$WORK/bad.json" spf syntax.example "fail|invalid record*unknown mechanism*"
expect "no SPF record: the record to publish" "$WORK/bad.json" spf nowhere.example \
    "fail|no SPF record|publish a TXT record at nowhere.example: \"v=spf1 ip4:203.0.113.66 ip4:203.0.113.67 ip4:203.0.113.68 -all\"*"
expect "no DMARC record: the record to add" "$WORK/bad.json" dmarc bad.example \
    "fail|no DMARC record|publish a TXT record at _dmarc.bad.example: \"v=DMARC1; p=none; rua=mailto:postmaster@bad.example\"*"
expect "DMARC without a valid p=" "$WORK/bad.json" dmarc syntax.example "fail|invalid record*no valid p=*"
expect "MX host without an address" "$WORK/bad.json" mx bad.example "fail|MX 10 mx.bad.example; without an address: mx.bad.example|*"
expect "domain that does not exist" "$WORK/bad.json" mx nowhere.example "fail|the domain does not exist (NXDOMAIN)|*"
expect "listed: the list, its reason and the delisting page" "$WORK/bad.json" dnsbl "203.0.113.66 on bl.test" \
    "fail|listed (127.0.0.2): Listed: spam trap hits, see http://bl.test/q|*delisting at http://bl.test/delist"
expect "answer outside the filter is not a listing" "$WORK/bad.json" dnsbl "203.0.113.67 on bl.test" "ok|answer 127.0.0.99 is outside*"
expect "error answer: the resolver is refused, not a listing" "$WORK/bad.json" dnsbl "203.0.113.66 on err.test" \
    "warn|err.test answered 127.255.255.254: your resolver is refused by the list, this is not a listing|*own recursive resolver*"

"$POLICYD" -c "$WORK/bad.conf" doctor --ip 203.0.113.66 --domain bad.example >"$WORK/bad.txt" 2>&1
check "human output: a table line with the status, then why and fix" \
    grep -qE '^FAIL +ptr +203\.0\.113\.66 +no PTR record' "$WORK/bad.txt"
check "human output: no colour when not on a terminal" bash -c '! grep -q $'"'"'\033'"'"' "$1"' _ "$WORK/bad.txt"
check "human output: the fix line" grep -q '^      fix: ask the owner of 203.0.113.66' "$WORK/bad.txt"

# DNS that cannot be asked: the checks could not run -> exit status 2.
write_conf "$WORK/nodns.conf" "myhostname = mail.good.example" "dns_servers = 127.0.0.1:9" \
    "dns_timeout = 200ms" "dns_tries = 1"
rc=0
"$POLICYD" -c "$WORK/nodns.conf" doctor --ip 203.0.113.10 --domain good.example --json >"$WORK/nodns.json" 2>&1 || rc=$?
check "DNS unreachable: exit status 2" test "$rc" = 2
expect "DNS unreachable: reported as not checked, not as a problem of the setup" "$WORK/nodns.json" ptr 203.0.113.10 "error|PTR lookup of 10.113.0.203.in-addr.arpa failed*"
rc=0
"$POLICYD" -c "$WORK/ok.conf" doctor --ip not-an-ip >/dev/null 2>&1 || rc=$?
check "bad --ip: exit status 2" test "$rc" = 2

# --section NAME: that section's findings only (repeatable, in report order); unknown: an error.
# checks FILE - the check names of the findings, in order, without repeats.
checks() { $PY -c '
import json, sys
seen = []
for r in json.load(open(sys.argv[1]))["results"]:
    if r["check"] not in seen:
        seen.append(r["check"])
print(" ".join(seen))' "$1"; }
rc=0
"$POLICYD" -c "$WORK/bad.conf" doctor --ip 203.0.113.66 --domain bad.example --domain nowhere.example \
    --section mx --json >"$WORK/mx.json" 2>"$WORK/mx.err" || rc=$?
check "--section mx: only mx findings" test "$(checks "$WORK/mx.json")" = mx
expect "--section mx: its findings as in the full report" "$WORK/mx.json" mx bad.example "fail|MX 10 mx.bad.example; without an address: mx.bad.example|*"
expect "--section mx: each domain checked" "$WORK/mx.json" mx nowhere.example "fail|the domain does not exist (NXDOMAIN)|*"
check "--section mx: exit status 1 (it fails)" test "$rc" = 1
rc=0
"$POLICYD" -c "$WORK/ok.conf" doctor --ip 203.0.113.10 --domain good.example --section mx \
    --section dmarc --section mx --json >"$WORK/two.json" 2>"$WORK/two.err" || rc=$?
check "--section twice: both sections, in report order, each once" test "$(checks "$WORK/two.json")" = "dmarc mx"
check "--section twice: healthy, exit status 0" test "$rc" = 0
rc=0
"$POLICYD" -c "$WORK/nodns.conf" doctor --section postfix --json >"$WORK/wiring.json" 2>"$WORK/wiring.err" || rc=$?
check "--section postfix: no address/domain warnings, no DNS asked" test "$(checks "$WORK/wiring.json")" = postfix
check "--section postfix: nothing reported as not checked" test "$rc" != 2
rc=0
"$POLICYD" -c "$WORK/ok.conf" doctor --ip 203.0.113.10 --section frob --json >"$WORK/frob.out" 2>"$WORK/frob.err" || rc=$?
check "unknown --section: exit status 2, no report" test "$rc" = 2 -a ! -s "$WORK/frob.out"
check "unknown --section: the error names it" grep -q '^policyd doctor: --section frob: no such section' "$WORK/frob.err"
check "unknown --section: the error lists every section" bash -c '
for s in address spf dkim dmarc mx dnsbl tls postfix queue; do
    grep -qE "^  $s +[a-zA-Z]" "$1" || exit 1
done' _ "$WORK/frob.err"

kill "$DNS_PID" 2>/dev/null
wait "$DNS_PID" 2>/dev/null
finish
