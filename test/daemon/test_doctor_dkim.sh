#!/usr/bin/env bash
# test_doctor_dkim.sh - DKIM signing keys against DNS, in the doctor and in the daemon.
# Keys are made here with opendkim-genkey; the suite's DNS server (test/dns/testdns.py) serves
# one key's own record, one key's record holding another key, a revoked record (p=), and
# nothing for a fourth key; keys come from dkim_keys and from an OpenDKIM KeyTable. The doctor
# must report each key's status and text (JSON); the daemon must log the broken keys at start,
# warn when an authenticated or mynetworks client sends from a broken domain (and only then),
# see a repaired record at the next dkim_check_interval, and take a new key list on reload.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
if ! command -v opendkim-genkey >/dev/null 2>&1 && [ ! -x /usr/sbin/opendkim-genkey ]; then
    not_ok "opendkim-genkey is installed (package opendkim-tools, etc/install-deps.sh)"
    finish
    exit 1
fi
export PATH="$PATH:/usr/sbin:/sbin"
KEYS=$WORK/keys
mkdir -p "$KEYS"
genkey() { opendkim-genkey -b "$1" -d "$2" -s "$3" -D "$KEYS" 2>>"$WORK/genkey.err"; }
genkey 2048 good.example good
genkey 1024 good.example s1024
genkey 2048 mismatch.example sel
genkey 2048 revoked.example old
genkey 2048 missing.example none
for k in good s1024 sel old none; do
    check "opendkim-genkey made $k.private" test -s "$KEYS/$k.private"
done

DNSPORT=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ZONE=$WORK/zone.json
# record FILE - the TXT record opendkim-genkey wrote, its quoted strings joined.
record() { $PY -c 'import re,sys; print("".join(re.findall(r"\"([^\"]*)\"", open(sys.argv[1]).read())))' "$1"; }
$PY - "$ZONE" "$(record "$KEYS/good.txt")" "$(record "$KEYS/s1024.txt")" <<'PYEOF'
import json, sys
good, small = sys.argv[2], sys.argv[3]
names = {
    "good._domainkey.good.example": [{"type": "TXT", "data": good}],
    "s1024._domainkey.good.example": [{"type": "TXT", "data": small}],
    "sel._domainkey.mismatch.example": [{"type": "TXT", "data": good}],  # another key's record
    "old._domainkey.revoked.example": [{"type": "TXT", "data": "v=DKIM1; k=rsa; p="}],
    "mismatch.example": [], "revoked.example": [], "good.example": [],
}
json.dump({"negative_ttl": 1, "names": names}, open(sys.argv[1], "w"), indent=1)
PYEOF
$PY "$TESTDIR/../dns/testdns.py" --zone "$ZONE" --port "$DNSPORT" --control 0 \
    --log "$WORK/queries.log" >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done
CTL=$(sed -n 's/.*control=\([0-9]*\).*/\1/p' "$WORK/dns.out")

# The revoked and the missing key come from OpenDKIM's configuration.
cat >"$WORK/KeyTable" <<EOF
# name            domain:selector:keyfile
old._domainkey    revoked.example:old:$KEYS/old.private
none._domainkey   missing.example:none:$KEYS/none.private
EOF
printf 'Syslog yes\nKeyTable file:%s\nSigningTable refile:/etc/opendkim/SigningTable\n' \
    "$WORK/KeyTable" >"$WORK/opendkim.conf"
COMMON=("mynetworks = 127.0.0.0/8" "relay_domains = example.com" "checks = relay, dkim"
    "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 1s" "dns_tries = 1"
    "dns_ttl_min = 0" "dns_ttl_max = 1s" "dns_error_ttl = 1s"
    "dkim_keys = good:good.example:$KEYS/good.private, s1024:good.example:$KEYS/s1024.private, sel:mismatch.example:$KEYS/sel.private"
    "opendkim_config = $WORK/opendkim.conf")
write_conf "$WORK/doctor.conf" "${COMMON[@]}"

# --- the doctor ---
"$POLICYD" -c "$WORK/doctor.conf" doctor --domain good.example --json >"$WORK/doctor.json" 2>"$WORK/doctor.err"
rc=$?
check "doctor exits 1: some keys fail" test "$rc" -eq 1
# finding SUBJECT - "status|observed|why|fix" of the dkim finding about SUBJECT
finding() {
    $PY - "$WORK/doctor.json" "$1" <<'PYEOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    if r["check"] == "dkim" and r["subject"] == sys.argv[2]:
        print("|".join([r["status"], r["observed"], r["why"], r["fix"]]))
PYEOF
}
expect_finding() {
    local name=$1 subject=$2 want=$3 got
    got=$(finding "$subject")
    if [[ "$got" == $want ]]; then ok "$name"; else not_ok "$name (got: $got)"; fi
}
expect_finding "doctor: own record matches, 2048 bits" good._domainkey.good.example \
    "ok|record matches the 2048-bit key $KEYS/good.private|*"
expect_finding "doctor: 1024-bit key passes with a recommendation" s1024._domainkey.good.example \
    "ok|record matches the 1024-bit key $KEYS/s1024.private (2048 bits recommended)|*2048 bits is the recommended length*|*opendkim-genkey -b 2048*"
expect_finding "doctor: another key's record is a mismatch" sel._domainkey.mismatch.example \
    "fail|record does not match the private key $KEYS/sel.private|*cannot verify signatures*|publish the public key from \`opendkim-genkey\`/the .txt file written with $KEYS/sel.private at sel._domainkey.mismatch.example*"
expect_finding "doctor: p= empty is revoked (key from the KeyTable)" old._domainkey.revoked.example \
    "fail|revoked (empty p=)|*withdrawn*|*$KEYS/old.private*"
expect_finding "doctor: no record is NXDOMAIN (key from the KeyTable)" none._domainkey.missing.example \
    "fail|no record (NXDOMAIN)|*every message signed with $KEYS/none.private fails DKIM*|publish the public key as a TXT record at none._domainkey.missing.example*none.txt*"
check "doctor: five keys, five dkim findings" test "$($PY -c 'import json,sys; print(sum(r["check"]=="dkim" for r in json.load(open(sys.argv[1]))["results"]))' "$WORK/doctor.json")" -eq 5
check "doctor: libopendkim asked our DNS server (the records came through our engine)" \
    grep -q "TXT sel._domainkey.mismatch.example" "$WORK/queries.log"

write_conf "$WORK/nokeys.conf" "dns_servers = 127.0.0.1:$DNSPORT"
"$POLICYD" -c "$WORK/nokeys.conf" doctor --domain good.example --json >"$WORK/nokeys.json" 2>&1
got=$($PY - "$WORK/nokeys.json" <<'PYEOF'
import json, sys
print(["%s|%s" % (r["status"], r["observed"]) for r in json.load(open(sys.argv[1]))["results"] if r["check"] == "dkim"])
PYEOF
)
check "doctor: no key configured is one warning" test "$got" = "['warn|no DKIM signing key configured']"

printf 'KeyTable %s/nothere\n' "$WORK" >"$WORK/badkt.conf"
write_conf "$WORK/badkt-policyd.conf" "dns_servers = 127.0.0.1:$DNSPORT" "opendkim_config = $WORK/badkt.conf"
"$POLICYD" -c "$WORK/badkt-policyd.conf" doctor --domain good.example --json >"$WORK/badkt.json" 2>&1
check "doctor: an unreadable KeyTable is reported as not checked" \
    grep -q "\"status\": \"error\", \"check\": \"dkim\", \"subject\": \"(configuration)\", \"observed\": \"KeyTable $WORK/nothere: cannot read: No such file or directory\"" "$WORK/badkt.json"

# --- the daemon ---
write_conf "$WORK/daemon.conf" "${COMMON[@]}" "dkim_check_interval = 1s" "metrics_listen = unix:$WORK/metrics.sock"
# send NAME=VALUE... - one RCPT request, the reply's first line
send() { req instance="m$RANDOM$RANDOM" "$@" | ask - | head -1; }
warns_for() { grep -c "dkim: warn: WARN outbound mail from $1 will fail DKIM" "$WORK/policyd.log"; }
if start_daemon "$WORK/daemon.conf"; then
    check "start: mismatch logged with its fix" wait_log \
        "warning: dkim: key sel._domainkey.mismatch.example \($KEYS/sel.private\): DNS record does not match the private key.*; fix: publish the public key from \`opendkim-genkey\`/the .txt file"
    check "start: revoked key logged" wait_log \
        "warning: dkim: key old._domainkey.revoked.example \($KEYS/old.private\): DNS record is revoked \(empty p=\)"
    check "start: missing record logged" wait_log \
        "warning: dkim: key none._domainkey.missing.example \($KEYS/none.private\): no DNS record \(NXDOMAIN\)"
    check "start: good key logged as matching" wait_log \
        "dkim: key good._domainkey.good.example \($KEYS/good.private\): DNS record matches the private key \(2048-bit key\)"
    check "start: no warning for a good key" test -z "$(grep 'warning: dkim: key good\.' "$WORK/policyd.log")"
    # the keys by state in the metrics (GET /metrics), once every key has been checked
    for _ in $(seq 1 40); do
        curl -sS --max-time 10 --unix-socket "$WORK/metrics.sock" http://localhost/metrics >"$WORK/metrics.txt"
        grep -q '^policyd_dkim_keys{state="unchecked"} 0$' "$WORK/metrics.txt" && break
        sleep 0.05
    done
    check "metrics: DKIM keys by state (2 ok, 1 mismatch, 1 revoked, 1 no record, none unchecked)" \
        test "$(grep '^policyd_dkim_keys{' "$WORK/metrics.txt" | tr '\n' ' ')" = 'policyd_dkim_keys{state="ok"} 2 policyd_dkim_keys{state="no_record"} 1 policyd_dkim_keys{state="revoked"} 1 policyd_dkim_keys{state="mismatch"} 1 policyd_dkim_keys{state="bad_record"} 0 policyd_dkim_keys{state="dns_trouble"} 0 policyd_dkim_keys{state="unreadable"} 0 policyd_dkim_keys{state="unchecked"} 0 '

    got=$(send client_address=203.0.113.5 client_name=unknown sasl_method=PLAIN sasl_username=alice \
        sender=bob@mismatch.example recipient=someone@foreign.example)
    check "authenticated sender from a broken domain: accepted (the check never rejects)" test "$got" = "action=DUNNO"
    check "authenticated sender from a broken domain: the diagnosis says DKIM will fail and why" \
        grep -q "dkim: warn: WARN outbound mail from mismatch.example will fail DKIM; cause_code=dkim.key_mismatch; cause=client authenticated as alice sends from mismatch.example, whose signing key sel._domainkey.mismatch.example ($KEYS/sel.private): DNS record does not match the private key.*fix=publish the public key" "$WORK/policyd.log"
    got=$(send client_address=127.0.0.1 sender=a@Revoked.Example recipient=someone@foreign.example)
    check "mynetworks sender from a revoked domain: accepted" test "$got" = "action=DUNNO"
    check "mynetworks sender from a revoked domain: diagnosis" \
        grep -q "dkim: warn: WARN outbound mail from Revoked.Example will fail DKIM; cause_code=dkim.key_revoked; cause=client 127.0.0.1 (mynetworks 127.0.0.0/8) sends from Revoked.Example, whose signing key old._domainkey.revoked.example .*revoked" "$WORK/policyd.log"
    send client_address=127.0.0.1 sender=a@Revoked.Example recipient=second@foreign.example instance=msg-2rcpt >/dev/null
    send client_address=127.0.0.1 sender=a@Revoked.Example recipient=third@foreign.example instance=msg-2rcpt >/dev/null
    check "one warning per message, not per recipient" test "$(warns_for Revoked.Example)" -eq 2
    send client_address=203.0.113.5 sasl_username=alice sender=bob@good.example recipient=x@foreign.example >/dev/null
    check "good domain: no dkim warning" test "$(warns_for good.example)" -eq 0
    got=$(send client_address=203.0.113.9 client_name=unknown sasl_username= sender=bob@mismatch.example recipient=x@example.com)
    check "inbound mail claiming a broken domain: no dkim warning" test "$got" = "action=DUNNO" -a "$(warns_for mismatch.example)" -eq 1

    # The record's server stops answering: a failed lookup says nothing new about the record,
    # so the key stays reported as broken until an answer shows otherwise.
    $PY "$TESTDIR/../dns/testdns.py" --ctl "127.0.0.1:$CTL" set sel._domainkey.mismatch.example \
        '[{"behaviour": "timeout"}]' >/dev/null
    check "periodic check: a failed lookup keeps the last result" wait_log \
        "warning: dkim: key sel._domainkey.mismatch.example \($KEYS/sel.private\): DNS lookup failed \(.*\); keeping the last result: DNS record does not match the private key"
    send client_address=203.0.113.5 sasl_username=alice sender=bob@mismatch.example recipient=x@foreign.example >/dev/null
    check "periodic check: still warned about while the lookups fail" test "$(warns_for mismatch.example)" -eq 2

    # Repair the record: the next periodic check sees it, the warning stops.
    $PY "$TESTDIR/../dns/testdns.py" --ctl "127.0.0.1:$CTL" set sel._domainkey.mismatch.example \
        "[{\"type\": \"TXT\", \"data\": \"$(record "$KEYS/sel.txt")\"}]" >/dev/null
    check "periodic check: the repaired record is seen" wait_log \
        "dkim: key sel._domainkey.mismatch.example \($KEYS/sel.private\): DNS record matches the private key"
    send client_address=203.0.113.5 sasl_username=alice sender=bob@mismatch.example recipient=x@foreign.example >/dev/null
    check "periodic check: no warning once repaired" test "$(warns_for mismatch.example)" -eq 2

    # Reload without the KeyTable: the revoked key is no longer checked nor reported.
    write_conf "$WORK/daemon.conf" "${COMMON[@]/opendkim_config*/opendkim_config =}" "dkim_check_interval = 0"
    n=$(grep -c "reloaded" "$WORK/policyd.log")
    kill -HUP "$DAEMON_PID"
    check "reload: done" wait_log "reloaded $WORK/daemon.conf"
    sleep 0.3
    send client_address=127.0.0.1 sender=a@revoked.example recipient=x@foreign.example >/dev/null
    check "reload: a key no longer configured gives no warning" test "$(warns_for '[Rr]evoked.[Ee]xample')" -eq 2
    check "daemon still alive" alive
    check "daemon exits 0" stop_daemon
fi
kill "$DNS_PID" 2>/dev/null
wait "$DNS_PID" 2>/dev/null
finish
