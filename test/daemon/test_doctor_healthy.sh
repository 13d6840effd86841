#!/usr/bin/env bash
# test_doctor_healthy.sh - "policyd doctor" on a setup that is right in every respect: PTR and
# HELO name, SPF, a DKIM key (opendkim-genkey) whose record is published, DMARC, MX, not
# listed, a valid certificate for myhostname (made with openssl, as is an expired one),
# Postfix wired as etc/main.cf.snippet says, an empty queue. Every finding is ok and the exit
# status is 0; then one thing at a time is broken and the status turns to 1 with that finding.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
C=$WORK/certs
KEYS=$WORK/keys
mkdir -p "$C/db/new" "$KEYS" "$WORK/bin"
# Certificates made with openssl here: a valid self-signed one for myhostname (trusted as its
# own CA below), and an expired one ("openssl ca" can set past dates).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$C/good.key" -out "$C/good.pem" -days 60 \
    -subj "/CN=mail.example.test" -addext "subjectAltName=DNS:mail.example.test" 2>>"$WORK/openssl.err"
: >"$C/db/index.txt"
echo 01 >"$C/db/serial"
printf '[ca]\ndefault_ca = d\n[d]\ndir = %s\ndatabase = %s/db/index.txt\nnew_certs_dir = %s/db/new\nserial = %s/db/serial\ndefault_md = sha256\npolicy = p\ncopy_extensions = copy\n[p]\ncommonName = supplied\n' \
    "$C" "$C" "$C" "$C" >"$C/ca.cnf"
openssl req -new -newkey rsa:2048 -nodes -keyout "$C/expired.key" -out "$C/expired.csr" \
    -subj "/CN=mail.example.test" -addext "subjectAltName=DNS:mail.example.test" 2>>"$WORK/openssl.err"
openssl ca -batch -config "$C/ca.cnf" -selfsign -keyfile "$C/expired.key" -in "$C/expired.csr" \
    -out "$C/expired.pem" -startdate 20250101000000Z -enddate 20250201000000Z >>"$WORK/openssl.err" 2>&1
check "openssl made a valid and an expired certificate" test -s "$C/good.pem" -a -s "$C/expired.pem"
export SSL_CERT_FILE=$C/good.pem SSL_CERT_DIR=$WORK/nonexistent
PATH=$PATH:/usr/sbin opendkim-genkey -b 2048 -d example.test -s sel -D "$KEYS" 2>"$WORK/genkey.err"
check "opendkim-genkey made a key" test -s "$KEYS/sel.private"
record() { $PY -c 'import re,sys; print("".join(re.findall(r"\"([^\"]*)\"", open(sys.argv[1]).read())))' "$1"; }

ZONE=$WORK/zone.json
$PY - "$ZONE" "$(record "$KEYS/sel.txt")" <<'PYEOF'
import json, sys
n = {}
def add(name, t, data):
    n.setdefault(name, []).append({"type": t, "data": data})
add("10.113.0.203.in-addr.arpa", "PTR", "mail.example.test")
add("mail.example.test", "A", "203.0.113.10")
add("example.test", "TXT", "v=spf1 ip4:203.0.113.10 -all")
add("example.test", "MX", [10, "mail.example.test"])
add("_dmarc.example.test", "TXT", "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.test")
add("sel._domainkey.example.test", "TXT", sys.argv[2])
json.dump({"negative_ttl": 60, "names": n}, open(sys.argv[1], "w"), indent=1)
PYEOF
$PY "$TESTDIR/../dns/testdns.py" --zone "$ZONE" --port 0 >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done
DNSPORT=$(sed -nE 's/.*ready port=([0-9]+).*/\1/p' "$WORK/dns.out")

# An empty queue from a stand-in postqueue (no Postfix runs here).
printf '#!/bin/sh\nexit 0\n' >"$WORK/bin/postqueue"
chmod +x "$WORK/bin/postqueue"

HEALTHY=("postfix_config_directory =" "listen = unix:/var/spool/postfix/private/policyd"
    "myhostname = mail.example.test" "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 500ms"
    "dns_tries = 1" "checks = relay, spf" "dnsbl_sites = bl.test=127.0.0.[2..11]*3"
    "dkim_keys = sel:example.test:$KEYS/sel.private"
    "smtpd_tls_cert_file = $C/good.pem" "smtpd_tls_key_file = $C/good.key"
    "smtpd_relay_restrictions ="
    "smtpd_recipient_restrictions = check_policy_service { unix:private/policyd, default_action=DUNNO, timeout=15s },"
    "    permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination")
# doctor NAME [settings...] - the healthy setup plus these lines (later lines win).
doctor() {
    local name=$1
    shift
    printf '%s\n' "${HEALTHY[@]}" "$@" >"$WORK/$name.conf"
    local rc=0
    PATH="$WORK/bin:$PATH" "$POLICYD" -c "$WORK/$name.conf" doctor --ip 203.0.113.10 \
        --domain example.test --json >"$WORK/$name.json" 2>>"$WORK/stderr" || rc=$?
    echo "$rc" >"$WORK/$name.rc"
}

doctor healthy
check "healthy: exit status 0" test "$(cat "$WORK/healthy.rc")" = 0
check "healthy: every finding ok, each check present" $PY - "$WORK/healthy.json" <<'PYEOF'
import json, sys
doc = json.load(open(sys.argv[1]))
bad = [r for r in doc["results"] if r["status"] != "ok"]
for r in bad:
    print("#   %(status)s %(check)s %(subject)s: %(observed)s" % r)
seen = {r["check"] for r in doc["results"]}
want = {"ptr", "helo", "spf", "dkim", "dmarc", "mx", "dnsbl", "tls", "postfix", "queue"}
if want - seen:
    print("#   missing:", sorted(want - seen))
sys.exit(1 if bad or want - seen else 0)
PYEOF

# One fault at a time.
doctor nospf "spf_skip_networks =" "doctor_domains =" "dkim_keys = other:example.test:$KEYS/sel.private"
check "a key without a published record: exit status 1" test "$(cat "$WORK/nospf.rc")" = 1
check "... and only the DKIM finding fails" $PY -c '
import json, sys
doc = json.load(open(sys.argv[1]))
bad = [(r["check"], r["status"]) for r in doc["results"] if r["status"] != "ok"]
sys.exit(0 if bad == [("dkim", "fail")] else 1)' "$WORK/nospf.json"
doctor expired "smtpd_tls_cert_file = $C/expired.pem" "smtpd_tls_key_file = $C/expired.key"
check "an expired certificate: exit status 1, the tls finding fails" $PY -c '
import json, sys
doc = json.load(open(sys.argv[1]))
bad = {(r["check"], r["status"]) for r in doc["results"] if r["status"] != "ok"}
sys.exit(0 if ("tls", "fail") in bad and open(sys.argv[2]).read().strip() == "1" else 1)' \
    "$WORK/expired.json" "$WORK/expired.rc"

kill "$DNS_PID" 2>/dev/null
wait "$DNS_PID" 2>/dev/null
finish
