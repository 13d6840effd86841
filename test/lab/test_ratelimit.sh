#!/usr/bin/env bash
# test_ratelimit.sh - rate-limit reservations through a real Postfix 3.7 (issue 11): with
# check_policy_service also in smtpd_end_of_data_restrictions, a transaction abandoned after
# its RCPTs (RSET, or QUIT before DATA) or whose DATA another restriction refused gives its
# recipients back, so the next transaction of the same client can use them; a limit of 4
# recipients a minute still holds.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lab.sh"
lab_enter "$@"
lab_setup
# END-OF-MESSAGE asks the same service (same text: one policy connection per smtpd process);
# one smtpd process, so the two SMTP sessions below share it and its policy connection.
POLICY='check_policy_service { unix:private/policyd, default_action=DUNNO, timeout=5s, try_limit=1 }'
echo "smtpd_end_of_data_restrictions = $POLICY" >>"$LAB/etc/main.cf"
echo "smtpd_data_restrictions = check_sender_access inline:{ refused@example.org=REJECT }" >>"$LAB/etc/main.cf"
sed -i 's/^127\.0\.0\.1:10025 inet n - n - - smtpd$/127.0.0.1:10025 inet n - n - 1 smtpd/' "$LAB/etc/master.cf"
touch -d '-5 seconds' "$LAB/etc/main.cf" "$LAB/etc/master.cf"
lab_start_dns || not_ok "test DNS starts"
lab_start_postfix || { not_ok "Postfix starts"; exit 1; }
lab_start_sink || not_ok "smtp-sink starts"
lab_start_policyd "checks = ratelimit" "state_store = lmdb:$LAB/state.lmdb" \
    'ratelimit_rules = { name=net-rcpt key=client_address count=recipients limits=4/1m }' ||
    { not_ok "policyd starts"; exit 1; }
ok "lab is up (Postfix $(postconf -d -h mail_version 2>/dev/null))"

# The SMTP client: prints one line per step, "NAME CODE".
/usr/bin/python3 - >"$LAB/smtp.out" 2>&1 <<'PYEOF'
import smtplib
def rcpts(s, tag, n):
    for i in range(n):
        print("%s-%d %d" % (tag, i + 1, s.rcpt("%s-%d@example.com" % (tag, i + 1))[0]), flush=True)
s = smtplib.SMTP("127.0.0.1", 10025, timeout=30)
s.ehlo("h.example.org")
# 1: a whole message, 1 recipient: the policy connection shows END-OF-MESSAGE requests
s.sendmail("a@example.org", ["m1@example.com"], "Subject: 1\r\n\r\none\r\n")
print("m1 sent", flush=True)
# 2: two recipients, then RSET
s.mail("a@example.org"); rcpts(s, "m2", 2); s.rset()
# 3: three recipients (1 + 3 = 4 only if message 2's are back), then QUIT before DATA
s.mail("a@example.org"); rcpts(s, "m3", 3); s.quit()
# a new SMTP session, same smtpd: 3 recipients fit only if message 3's are back; a 4th not
s = smtplib.SMTP("127.0.0.1", 10025, timeout=30)
s.ehlo("h.example.org")
s.mail("a@example.org"); rcpts(s, "m4", 4); s.quit()
# another client (XCLIENT; its own counter), same smtpd: 3 recipients, DATA refused by
# smtpd_data_restrictions, RSET; then 4 recipients fit only if those 3 are back
s = smtplib.SMTP("127.0.0.1", 10025, timeout=30)
s.ehlo("h.example.org")
s.docmd("XCLIENT", "ADDR=192.0.2.9 NAME=[UNAVAILABLE] HELO=h.example.org")
s.ehlo("h.example.org")
s.mail("refused@example.org"); rcpts(s, "m5", 3)
print("m5 data %d" % s.docmd("DATA")[0], flush=True)
s.rset()
s.mail("a@example.org"); rcpts(s, "m6", 5); s.quit()
PYEOF
check "a whole message sent" grep -qx "m1 sent" "$LAB/smtp.out"
check "RSET after two RCPTs: the next transaction's three recipients accepted (1 + 3 = 4)" \
    test "$(grep -c '^m3-[123] 250$' "$LAB/smtp.out")" = 3
check "QUIT before DATA: the next session's three recipients accepted" \
    test "$(grep -c '^m4-[123] 250$' "$LAB/smtp.out")" = 3
check "the limit still holds: the fourth deferred 450" grep -qx "m4-4 450" "$LAB/smtp.out"
check "DATA refused by smtpd_data_restrictions after three accepted RCPTs" \
    test "$(grep -c '^m5-[123] 250$' "$LAB/smtp.out") $(grep '^m5 data' "$LAB/smtp.out")" = "3 m5 data 554"
check "DATA refused: the next transaction's four recipients accepted, the fifth deferred" \
    test "$(grep -c '^m6-[1234] 250$' "$LAB/smtp.out") $(grep '^m6-5 ' "$LAB/smtp.out")" = "4 m6-5 450"
check "Postfix logged policyd's 450 4.7.1 for it" \
    lab_wait_grep 'reject: RCPT from [^ ]+: 450 4\.7\.1 <m4-4@example\.com>: Recipient address rejected: Rate limit of 4 recipients per 1m reached' "$MAILLOG"
check "the whole message reached smtp-sink" lab_sink_has m1@example.com
check "policyd exits 0 on SIGTERM" lab_stop_policyd
[ "$failures" -eq 0 ] || { cat "$LAB/smtp.out"; echo "--- maillog"; tail -40 "$MAILLOG"; }
exit $((failures > 0))
