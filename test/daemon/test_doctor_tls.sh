#!/usr/bin/env bash
# test_doctor_tls.sh - "policyd doctor --json": the TLS section (certificates made by
# test/data/doctor/mkcerts.py: healthy, expired, expiring, not yet valid, wrong key, wrong name,
# wildcard, missing intermediate, weak key, encrypted key, chain files), the Postfix wiring
# section (policy service, its place before reject_unauth_destination, open relay, default
# action, timeout) and the queue section (a fake postqueue first in PATH printing canned
# postqueue -j lines). Only the tls / postfix / queue findings are asserted: the DNS sections
# run against the suite's DNS server with an empty zone and may say what they like.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
DATA=$TESTDIR/../data/doctor
C=$WORK/certs
mkdir -p "$C" "$WORK/bin"
if ! $PY -c 'import cryptography' 2>/dev/null; then
    echo "ok # SKIP python3-cryptography is not installed"
    finish
    exit $?
fi
$PY "$DATA/mkcerts.py" "$C"
export SSL_CERT_FILE=$C/ca.pem SSL_CERT_DIR=$WORK/nonexistent

# The DNS sections ask the suite's server (nothing answers positively), never the internet.
$PY "$TESTDIR/../dns/testdns.py" --zone "$DATA/empty-zone.json" --port 0 >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done
DNSPORT=$(sed -n 's/.*ready port=\([0-9]*\).*/\1/p' "$WORK/dns.out")

# The fake postqueue prints $WORK/queue.out and exits with $WORK/queue.rc.
cat >"$WORK/bin/postqueue" <<EOF
#!/bin/sh
[ "\$*" = "-j" ] || { echo "fake postqueue: unexpected arguments: \$*" >&2; exit 64; }
cat "$WORK/queue.out"
exit \$(cat "$WORK/queue.rc")
EOF
chmod +x "$WORK/bin/postqueue"
: >"$WORK/queue.out"
echo 0 >"$WORK/queue.rc"

HEALTHY=("smtpd_tls_cert_file = $C/fullchain.pem" "smtpd_tls_key_file = $C/good.key"
    "smtpd_relay_restrictions ="
    "smtpd_recipient_restrictions = check_policy_service { unix:private/policyd, timeout=15s },"
    "    permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination")
# doctor NAME [settings...] - run the doctor on the healthy setup with these settings added
# (later lines win); the report in $WORK/NAME.json, the exit status in $WORK/NAME.rc.
doctor() {
    local name=$1
    shift
    {
        echo "postfix_config_directory ="
        echo "listen = unix:/var/spool/postfix/private/policyd"
        echo "myhostname = mail.example.test"
        echo "dns_servers = 127.0.0.1:$DNSPORT"
        echo "dns_timeout = 200ms"
        echo "dns_tries = 1"
        for line in "${HEALTHY[@]}" "$@"; do echo "$line"; done
    } >"$WORK/$name.conf"
    local rc=0
    PATH="$WORK/bin:$PATH" "$POLICYD" -c "$WORK/$name.conf" doctor --json \
        >"$WORK/$name.json" 2>>"$WORK/stderr" || rc=$?
    echo "$rc" >"$WORK/$name.rc"
}
# has NAME STATUS CHECK SUBJECT-RE OBSERVED-RE [FIX-RE] - a finding like that is in the report.
has() { $PY - "$WORK/$1.json" "${@:2}" <<'PYEOF'
import json, re, sys
path, status, check, subject, observed = sys.argv[1:6]
fix = sys.argv[6] if len(sys.argv) > 6 else ""
items = json.load(open(path))["results"]
for it in items:
    if (it["status"] == status and it["check"] == check and re.search(subject, it["subject"])
            and re.search(observed, it["observed"]) and re.search(fix, it["fix"])):
        sys.exit(0)
for it in items:
    if it["check"] == check:
        print("#   %(status)s %(check)s %(subject)s: %(observed)s | fix: %(fix)s" % it)
sys.exit(1)
PYEOF
}
# only_ok NAME CHECK... - every finding of these checks is ok.
only_ok() { $PY - "$WORK/$1.json" "${@:2}" <<'PYEOF'
import json, sys
bad = [it for it in json.load(open(sys.argv[1]))["results"]
       if it["check"] in sys.argv[2:] and it["status"] != "ok"]
for it in bad:
    print("#   %(status)s %(check)s %(subject)s: %(observed)s" % it)
sys.exit(1 if bad else 0)
PYEOF
}
# rc_consistent NAME - the exit status is 2 with an error, else 1 with a failure, else 0.
rc_consistent() { $PY - "$WORK/$1.json" "$(cat "$WORK/$1.rc")" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
want = 2 if s["error"] else 1 if s["fail"] else 0
if int(sys.argv[2]) != want:
    print("#   exit %s, want %d for %s" % (sys.argv[2], want, s))
    sys.exit(1)
PYEOF
}
# exits_1 NAME - exit status 1 (a failure), unless another section could not run (then 2).
exits_1() {
    local errors
    errors=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["summary"]["error"])' "$WORK/$1.json")
    [ "$(cat "$WORK/$1.rc")" = "$([ "$errors" = 0 ] && echo 1 || echo 2)" ]
}

# -- TLS --
doctor healthy
check "healthy: certificate valid, days left, CN and names shown" \
    has healthy ok tls "fullchain.pem$" "^valid until [0-9-]{10} \((89|90) days\), CN=mail.example.test, names mail.example.test, www.example.test$"
check "healthy: the key matches" has healthy ok tls "good.key$" "^matches .*fullchain.pem \(RSA, 2048 bits\)"
check "healthy: myhostname among the names" has healthy ok tls "fullchain.pem$" "myhostname mail.example.test is among its names"
check "healthy: the chain verifies" has healthy ok tls "fullchain.pem$" "the chain \(1 intermediate\) verifies"
check "healthy: policy service found, before reject_unauth_destination" \
    has healthy ok postfix "check_policy_service" "^smtpd_recipient_restrictions entry 1 \(check_policy_service \{ unix:private/policyd, timeout=15s \}\)$"
check "healthy: relay check sees relay attempts" has healthy ok postfix "relay check" "asked before"
check "healthy: no open relay" has healthy ok postfix "open relay" "refused at smtpd_recipient_restrictions entry 4 \(reject_unauth_destination\)"
check "healthy: default action 451" has healthy ok postfix "smtpd_policy_service_default_action" "^451 4.3.5"
check "healthy: the service's own timeout=15s against the 10s deadline" \
    has healthy ok postfix "check_policy_service timeout" "^15s \(15000 ms\) against request_deadline 10000 ms"
check "healthy: empty queue" has healthy ok queue deferred "no deferred mail \(0 messages"
check "healthy: every tls, postfix and queue finding is ok" only_ok healthy tls postfix queue
check "healthy: exit status follows the findings" rc_consistent healthy

doctor chainfiles "smtpd_tls_chain_files = $C/chain.pem" "smtpd_tls_cert_file = $C/expired.pem"
check "chain files: used instead of smtpd_tls_cert_file" only_ok chainfiles tls
check "chain files: key, leaf and intermediate from one file" has chainfiles ok tls "chain.pem$" "the chain \(1 intermediate\) verifies"
doctor twofiles "smtpd_tls_chain_files = $C/good.key, $C/fullchain.pem"
check "chain files: key and chain in two files" only_ok twofiles tls
doctor badorder "smtpd_tls_chain_files = $C/badorder.pem"
check "chain files: a key after its certificate" has badorder fail tls "badorder.pem$" "no private key for this certificate" "before the certificate"

doctor expired "smtpd_tls_cert_file = $C/expired.pem" "smtpd_tls_key_file = $C/expired.key"
check "expired: fail, with the date and days" has expired fail tls "expired.pem$" "^expired on [0-9-]{10} \(1[01] days ago\), CN=mail.example.test" "renew"
check "expired: exit status 1" exits_1 expired
check "expired: exit status follows the findings" rc_consistent expired
doctor soon "smtpd_tls_cert_file = $C/soon.pem" "smtpd_tls_key_file = $C/soon.key"
check "expires in 5 days: warn" has soon warn tls "soon.pem$" "^valid until [0-9-]{10} \(5 days\)" "renew it now"
doctor future "smtpd_tls_cert_file = $C/future.pem" "smtpd_tls_key_file = $C/future.key"
check "not yet valid: fail" has future fail tls "future.pem$" "^not valid before [0-9-]{10}" "clock"
doctor mismatch "smtpd_tls_cert_file = $C/good.pem" "smtpd_tls_key_file = $C/other.key"
check "key of another certificate: fail on the key file" has mismatch fail tls "other.key$" "does not match the certificate in .*good.pem"
doctor wrongname "smtpd_tls_cert_file = $C/wrongname.pem" "smtpd_tls_key_file = $C/wrongname.key"
check "wrong name: warn with the names found" has wrongname warn tls "wrongname.pem$" \
    "myhostname mail.example.test is not among its names \(CN=other.example.test, names other.example.test\)" "certbot certonly -d mail.example.test"
check "wrong name: the rest is fine" has wrongname ok tls "wrongname.key$" "^matches"
doctor wildcard "smtpd_tls_cert_file = $C/wildcard.pem" "smtpd_tls_key_file = $C/wildcard.key"
check "wildcard *.example.test covers mail.example.test" has wildcard ok tls "wildcard.pem$" "is among its names"
doctor nointer "smtpd_tls_cert_file = $C/good.pem" "smtpd_tls_key_file = $C/good.key"
check "intermediate missing: warn, fix names fullchain.pem" has nointer warn tls "good.pem$" "does not verify: unable to get local issuer certificate \(0 intermediates" "fullchain.pem"
doctor weak "smtpd_tls_cert_file = $C/weak.pem" "smtpd_tls_key_file = $C/weak.key"
check "RSA 1024: warn" has weak warn tls "weak.key$" "RSA 1024 bits"
doctor encrypted "smtpd_tls_cert_file = $C/good.pem" "smtpd_tls_key_file = $C/encrypted.key"
check "encrypted key: fail, no passphrase prompt" has encrypted fail tls "encrypted.key$" "cannot be read \(encrypted"
doctor keyincert "smtpd_tls_cert_file = $C/chain.pem" "smtpd_tls_key_file ="
check "key in the certificate file (smtpd_tls_key_file empty)" has keyincert ok tls "chain.pem$" "^matches"
doctor missing "smtpd_tls_cert_file = $WORK/nonexistent.pem"
check "unreadable file: fail with the path and errno text" has missing fail tls "nonexistent.pem$" "cannot read .*/nonexistent.pem: No such file or directory"
printf 'not a certificate\n' >"$WORK/garbage.pem"
doctor garbage "smtpd_tls_cert_file = $WORK/garbage.pem"
check "not PEM: fail" has garbage fail tls "garbage.pem$" "no PEM certificate or private key"
doctor notls "smtpd_tls_cert_file =" "smtpd_tls_key_file ="
check "no certificate: one warn line with the main.cf fix" has notls warn tls "\(none\)" "no server certificate" "smtpd_tls_chain_files = "
check "no certificate: nothing else from tls" test "$($PY -c 'import json,sys; print(sum(1 for i in json.load(open(sys.argv[1]))["results"] if i["check"] == "tls"))' "$WORK/notls.json")" = 1

# -- Postfix wiring --
doctor nopolicy "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination, check_policy_service inet:127.0.0.1:10023"
check "no policy service for us: fail, others listed, fix with our socket" has nopolicy fail postfix check_policy_service \
    "no check_policy_service for unix:/var/spool/postfix/private/policyd .*found: inet:127.0.0.1:10023" "check_policy_service unix:private/policyd"
check "no policy service: exit status 1" exits_1 nopolicy
doctor postfixdefault "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination" \
    "smtpd_recipient_restrictions = permit_mynetworks, check_policy_service unix:private/policyd"
check "after Postfix's defer_unauth_destination: the relay check never sees relay attempts" \
    has postfixdefault warn postfix "relay check" "comes after smtpd_relay_restrictions entry 3 \(defer_unauth_destination\)" "add check_policy_service unix:private/policyd to smtpd_relay_restrictions before defer_unauth_destination"
check "trusted permits before it are mentioned, not warned" has postfixdefault ok postfix check_policy_service "not asked for clients accepted earlier by permit_mynetworks"
doctor norelaycheck "checks = rdns" "smtpd_relay_restrictions = defer_unauth_destination" "smtpd_recipient_restrictions = check_policy_service unix:private/policyd"
check "without the relay check the order does not matter" only_ok norelaycheck postfix
doctor authdest "smtpd_recipient_restrictions = permit_auth_destination, check_policy_service unix:private/policyd, reject_unauth_destination"
check "permit_auth_destination before it: warn" has authdest warn postfix check_policy_service "before it in smtpd_recipient_restrictions: permit_auth_destination"
doctor openrelay "smtpd_relay_restrictions = permit" \
    "smtpd_recipient_restrictions = check_policy_service unix:private/policyd, permit, reject_unauth_destination"
check "plain permit before reject_unauth_destination: open relay, fail" has openrelay fail postfix "open relay" \
    "smtpd_relay_restrictions entry 1 \(permit\) accepts everything.*smtpd_recipient_restrictions entry 2 \(permit\)" "reject_unauth_destination"
doctor warnonly "smtpd_recipient_restrictions = check_policy_service unix:private/policyd, warn_if_reject reject_unauth_destination"
check "warn_if_reject reject_unauth_destination refuses nothing: open relay" has warnonly fail postfix "open relay" "has no reject_unauth_destination"
doctor mynet "mynetworks = 127.0.0.0/8, 0.0.0.0/0" \
    "smtpd_recipient_restrictions = check_policy_service unix:private/policyd, permit_mynetworks, reject_unauth_destination"
check "mynetworks 0.0.0.0/0 with permit_mynetworks: fail" has mynet fail postfix mynetworks "contains 0.0.0.0/0"
doctor twice "smtpd_relay_restrictions = check_policy_service unix:private/policyd, reject_unauth_destination" \
    "smtpd_recipient_restrictions = check_policy_service unix:private/policyd"
check "listed in both lists: warn" has twice warn postfix check_policy_service "listed 2 times"
doctor inet "listen = inet:0.0.0.0:10031" "smtpd_recipient_restrictions = check_policy_service inet:localhost:10031, reject_unauth_destination"
check "inet listener on 0.0.0.0 matches inet:localhost:10031" has inet ok postfix check_policy_service "entry 1"
doctor absolute "listen = unix:/run/policyd.sock" "smtpd_recipient_restrictions = reject_unauth_destination"
check "absolute socket outside the queue: fix warns about the chroot" has absolute fail postfix check_policy_service "" "chrooted"
doctor dunno "smtpd_policy_service_default_action = DUNNO"
check "default action DUNNO (etc/main.cf.snippet's choice): ok, Postfix's own rules decide" has dunno ok postfix smtpd_policy_service_default_action "^DUNNO: when policyd is down, mail flows on Postfix's own rules"
doctor permit "smtpd_policy_service_default_action = OK"
check "default action OK: fail (an open relay whenever policyd is down)" has permit fail postfix smtpd_policy_service_default_action "^OK$" "DUNNO"
doctor bounce "smtpd_policy_service_default_action = 554 5.7.1 go away"
check "default action 5xx: fail (mail lost)" has bounce fail postfix smtpd_policy_service_default_action "^554" "451 4.3.5"
doctor svcaction "smtpd_recipient_restrictions = check_policy_service { unix:private/policyd, default_action=REJECT }, reject_unauth_destination"
check "the service's own default_action counts" has svcaction fail postfix "check_policy_service default_action" "^REJECT$"
doctor slow "smtpd_policy_service_timeout = 5s" "smtpd_recipient_restrictions = check_policy_service unix:private/policyd, reject_unauth_destination"
check "timeout 5s under the 10s deadline: fail" has slow fail postfix smtpd_policy_service_timeout "5s \(5000 ms\) against request_deadline 10000 ms" "smtpd_policy_service_timeout = 12s"
doctor tight "request_deadline = 15s"
check "timeout=15s equal to the deadline: fail" has tight fail postfix "check_policy_service timeout" "\(15000 ms\) against request_deadline 15000 ms"
doctor minutes "smtpd_policy_service_timeout = 2m" "smtpd_recipient_restrictions = check_policy_service unix:private/policyd, reject_unauth_destination"
check "Postfix time syntax 2m" has minutes ok postfix smtpd_policy_service_timeout "2m \(120000 ms\)"

# -- the queue --
$PY - "$WORK/queue.out" <<'PYEOF'
import json, sys, time
now = int(time.time())
def msg(qid, queue, age_days, reasons):
    return json.dumps({"queue_name": queue, "queue_id": qid, "arrival_time": now - age_days * 86400,
                       "message_size": 1234, "forced_expire": False, "sender": "a@example.test",
                       "recipients": [{"address": "r%d@dest.example" % i, "delay_reason": r}
                                      for i, r in enumerate(reasons)]})
ptr = "host mx.dest.example[192.0.2.1] said: 450 4.7.1 Client host rejected: cannot find your reverse hostname, [203.0.113.5] (in reply to RCPT TO command)"
ptr2 = "host mx.other.example[192.0.2.9] said: 450 4.7.25 Client host rejected: cannot find your hostname, [203.0.113.5] (in reply to RCPT TO command)"
bl = "host mx.dest.example[192.0.2.1] said: 454 4.7.1 Service unavailable; client [203.0.113.5] blocked using zen.spamhaus.org (in reply to RCPT TO command)"
full = "host mx.dest.example[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)"
tmo = "connect to mx%d.far.example[198.51.100.%d]:25: Connection timed out"
lines = [msg("A1", "deferred", 3, [ptr, ptr]), msg("A2", "deferred", 1, [ptr2]),
         msg("A3", "deferred", 0, [bl, full, "host mx.dest.example[192.0.2.1] said: 421 4.3.0 weird \"quoted\" \u00e9 thing"]),
         msg("A4", "deferred", 0, [tmo % (1, 1), tmo % (2, 2)]),
         msg("A5", "active", 0, [""]), msg("A6", "hold", 0, [])]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PYEOF
doctor queue
check "queue: summary of deferred mail" has queue warn queue deferred "^4 deferred messages \(8 recipients\), the oldest 3 days old; 1 active, 1 on hold$"
check "queue: PTR refusals grouped, most first, fix PTR" has queue fail queue "reverse DNS" \
    "^3 recipients in 2 messages; most common \(2 of 2 different texts\): host mx.dest.example\[192.0.2.1\] said: 450 4.7.1 Client host rejected: cannot find your reverse hostname" "PTR"
check "queue: blocklist" has queue fail queue blocklisted "1 recipients in 1 messages.*spamhaus" "delisting"
check "queue: mailbox full at the destination" has queue warn queue "mailbox full" "4.2.2 Mailbox full" "nothing to fix on this server"
check "queue: timeouts point at port 25" has queue warn queue "connection failures" "2 recipients in 1 messages.*Connection timed out" "port 25"
check "queue: other reasons shown as the receiver wrote them (UTF-8 kept in --json)" has queue warn queue other '421 4.3.0 weird "quoted" \u00e9 thing'
check "queue: the order is by recipients" $PY -c '
import json, sys
subj = [i["subject"] for i in json.load(open(sys.argv[1]))["results"] if i["check"] == "queue"]
sys.exit(0 if subj[:2] == ["deferred", "reverse DNS"] and subj.index("connection failures") < subj.index("mailbox full") else 1)' "$WORK/queue.json"
check "queue: exit status follows the findings" rc_consistent queue

echo "postqueue: fatal: Queue report unavailable - mail system is down" >"$WORK/queue.out"
echo 69 >"$WORK/queue.rc"
doctor down
check "Postfix down: one warn, queue not checked" has down warn queue postqueue "mail system is down; queue not checked" "postfix start"
: >"$WORK/queue.out"
echo 127 >"$WORK/queue.rc"
doctor notinstalled
check "postqueue missing: one ok line, not an error" has notinstalled ok queue postqueue "not found.*queue not checked"
head -c 2000000 /dev/zero | tr '\0' 'x' >"$WORK/queue.out"
echo >>"$WORK/queue.out"
$PY -c 'import json; print(json.dumps({"queue_name": "deferred", "arrival_time": 1, "recipients": [{"address": "a@b", "delay_reason": "Greylisted, try again"}]}))' >>"$WORK/queue.out"
echo 0 >"$WORK/queue.rc"
doctor longline
check "a line over the limit is skipped, the rest counted" has longline warn queue deferred "^1 deferred messages .*cut short"
check "greylisting recognised" has longline warn queue greylisted "Greylisted"

kill "$DNS_PID" 2>/dev/null
wait "$DNS_PID" 2>/dev/null
finish
