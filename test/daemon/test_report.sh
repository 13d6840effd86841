#!/usr/bin/env bash
# test_report.sh - `policyd report` (issue 13) on a log written by the real daemon: relay
# attempts from three clients and unknown recipients, with Postfix's reject lines for them
# (and some of Postfix's own), foreign lines, binary garbage, a 100 KB line and a cut line
# appended; the older half gzipped as a rotation. Counts checked against what was sent, in the
# table and in --json; --since; standard input; exit statuses; 1,000,000 lines timed.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
printf 'alice@example.com x\nbob@example.com x\n' >"$WORK/vmailbox"
write_conf "$WORK/r.conf" "checks = relay, recipient" "virtual_mailbox_domains = example.com" \
    "recipient_maps = texthash:$WORK/vmailbox" "mynetworks = 127.0.0.0/8"

# What is sent: relay attempts 5 from .7, 3 from .8, 2 from 198.51.100.9; 4 unknown users from
# .20; 3 accepted.
{
    for i in 1 2 3 4 5; do req client_address=203.0.113.7 client_name=unknown sender=a@example.org recipient="v$i@foreign.example"; done
    for i in 1 2 3; do req client_address=203.0.113.8 client_name=unknown sender=b@spam.example recipient="w$i@foreign.example"; done
    for i in 1 2; do req client_address=198.51.100.9 client_name=mail.example.net sender= recipient="x$i@other.example"; done
    for i in 1 2 3 4; do req client_address=203.0.113.20 client_name=unknown sender=c@example.net recipient="nobody$i@example.com"; done
    for i in 1 2 3; do req client_address=203.0.113.30 client_name=unknown sender=d@example.net recipient=alice@example.com; done
} >"$WORK/requests"
if ! start_daemon "$WORK/r.conf"; then
    not_ok "daemon starts"
    finish
    exit 1
fi
ask "$WORK/requests" >"$WORK/replies"
stop_daemon
check "the daemon answered 10 relay refusals" test "$(grep -c '^action=554 5.7.1 Relay access denied' "$WORK/replies")" = 10
check "and 4 unknown users" test "$(grep -c '^action=550 5.1.1 User unknown' "$WORK/replies")" = 4
check "its log has 14 diagnosis lines" test "$(grep -cE ': (relay|recipient): reject: ' "$WORK/policyd.log")" = 14

# Postfix's lines for the same refusals, as smtpd writes them (same second, another format of
# the day), then three of Postfix's own: two relay denials while policyd was away, one
# CONNECT-stage reject, and a reject_warning.
$PY - "$WORK/policyd.log" >"$WORK/postfix.log" <<'EOF'
import re, sys
pat = re.compile(r"^(\w{3}) +(\d+) ([\d:]+) (\S+) \S+: NOQUEUE: client=([^\[]*)\[([^\]]*)\], "
                 r"from=<([^>]*)>, to=<([^>]*)>, helo=<([^>]*)>: \w+: reject: (\d{3}) ([\d.]+)(?: (.*?))?; cause(?:_code)?=")
last = {}  # a short repeat carries the code only: Postfix's line has the whole reply
for line in open(sys.argv[1]):
    m = pat.match(line)
    if m:
        mon, day, hms, host, name, addr, frm, to, helo, code, dsn, text = m.groups()
        text = last.setdefault(code, text) if text is None else last.__setitem__(code, text) or text
        print(f"{mon} {int(day):02d} {hms} {host} postfix/smtpd[4711]: NOQUEUE: reject: RCPT from "
              f"{name}[{addr}]: {code} {dsn} <{to}>: Recipient address rejected: {text}; "
              f"from=<{frm}> to=<{to}> proto=ESMTP helo=<{helo}>")
EOF
check "14 Postfix reject lines made from them" test "$(wc -l <"$WORK/postfix.log")" = 14
stamp=$(date '+%b %d %H:%M:%S')
cat >>"$WORK/postfix.log" <<EOF
$stamp mx postfix/smtpd[4711]: NOQUEUE: reject: RCPT from unknown[203.0.113.7]: 554 5.7.1 <late1@foreign.example>: Relay access denied; from=<a@example.org> to=<late1@foreign.example> proto=ESMTP helo=<h>
$stamp mx postfix/smtpd[4711]: NOQUEUE: reject: RCPT from unknown[192.0.2.99]: 554 5.7.1 <late2@foreign.example>: Relay access denied; from=<z@example.org> to=<late2@foreign.example> proto=ESMTP helo=<h>
$stamp mx postfix/smtpd[4711]: NOQUEUE: reject: CONNECT from unknown[192.0.2.98]: 554 5.7.1 <unknown[192.0.2.98]>: Client host rejected: Access denied; proto=SMTP
$stamp mx postfix/smtpd[4711]: NOQUEUE: reject_warning: RCPT from unknown[192.0.2.97]: 450 4.7.1 <x@example.com>: Recipient address rejected: would be refused; from=<> to=<x@example.com> proto=ESMTP helo=<h>
$stamp mx postfix/smtpd[4711]: connect from unknown[192.0.2.99]
$stamp mx postfix/qmgr[4712]: 0ABC123: removed
$stamp mx kernel: [12345.678] something else entirely
EOF
# The rotation: policyd's first 6 diagnoses and the Postfix lines in mail.log.1.gz; the rest,
# foreign lines and garbage in mail.log.
mkdir -p "$WORK/logs"
{
    grep -E ': (relay|recipient): reject: ' "$WORK/policyd.log" | head -6
    head -8 "$WORK/postfix.log"
} | gzip -c >"$WORK/logs/mail.log.1.gz"
{
    grep -E ': (relay|recipient): reject: ' "$WORK/policyd.log" | tail -n +7
    tail -n +9 "$WORK/postfix.log"
    head -c 4096 /dev/urandom
    echo
    printf '%s mx policyd[1]: NOQUEUE: client=unknown[203.0.113.7], from=<a@exa\n' "$stamp"
    head -c 100000 /dev/zero | tr '\0' 'x'
    echo
    echo "-- Journal begins at Mon 2026-12-07 00:00:00 UTC. --"
} >"$WORK/logs/mail.log"

"$POLICYD" report "$WORK/logs/mail.log.1.gz" "$WORK/logs/mail.log" >"$WORK/table" 2>"$WORK/err"
rc=$?
check "report exits 0 on garbage input" test "$rc" = 0
check "nothing on standard error" test ! -s "$WORK/err"
check "table: 14 diagnoses, 14 refusals" grep -q '^  policyd: 14 diagnoses (14 refusals)' "$WORK/table"
check "table: 18 Postfix rejects, 14 carrying policyd's answer" grep -q "^  Postfix: 18 rejects, 14 of them carrying policyd's answer" "$WORK/table"
check "table: the cut line not understood, the long line counted" grep -qE '^  other lines: [0-9]+ of other programs or kinds, 1 not understood, 1 too long' "$WORK/table"
check "table: relay group of 10 with its clients" \
    grep -qE '^relay.not_mynetworks +10$' "$WORK/table"
check "table: top clients of the relay group" grep -q '^  clients    203.0.113.7 5, 203.0.113.8 3, 198.51.100.9 2$' "$WORK/table"
check "table: sender domains, the null sender as <>" grep -q '^  senders    example.org 5, spam.example 3, <> 2$' "$WORK/table"
check "table: recipient domains" grep -q '^  recipients foreign.example 8, other.example 2$' "$WORK/table"
check "table: recipient group of 4" grep -qE '^recipient.unknown +4$' "$WORK/table"
check "table: the fix is shown" grep -q '^  fix        if 203.0.113.7 is your client, add it to mynetworks' "$WORK/table"
check "table: Postfix's own relay denials (2), one client also refused by policyd" \
    grep -qE '^554 5.7.1 Relay access denied \(RCPT\) +2$' "$WORK/table"
check "table: the client policyd refused too is starred" grep -qE '^  clients    (192.0.2.99 1, 203.0.113.7\* 1|203.0.113.7\* 1, 192.0.2.99 1)$' "$WORK/table"
check "table: the CONNECT reject" grep -qE '^554 5.7.1 Client host rejected: Access denied \(CONNECT\) +1$' "$WORK/table"
check "table: the reject_warning apart" grep -qE '^450 4.7.1 Recipient address rejected: would be refused \(RCPT, warning only\) +1$' "$WORK/table"
check "table: policyd's answers seen in Postfix's lines" \
    grep -qE '^554 5.7.1 Recipient address rejected: Relay access denied \(RCPT\) +10$' "$WORK/table"
check "table: every refusal matched" grep -q '^  policyd refusals with no Postfix reject line found: 0$' "$WORK/table"
check "table: 80 columns at most" test "$(awk '{ if (length($0) > m) m = length($0) } END { print m }' "$WORK/table")" -le 80

# --json, read by Python.
"$POLICYD" report --json "$WORK/logs/mail.log.1.gz" "$WORK/logs/mail.log" >"$WORK/json"
jq() { $PY -c "import json,sys; d=json.load(open('$WORK/json')); print($1)"; }
check "--json parses" jq '"ok"'
check "json: totals" test "$(jq 'd["summary"]["diagnoses"], d["summary"]["policyd_refusals"], d["summary"]["postfix_rejects"], d["summary"]["postfix_rejects_by_policyd"], d["summary"]["malformed"], d["summary"]["too_long"]')" = "14 14 18 14 1 1"
check "json: relay group" test "$(jq '[(g["count"], g["verdicts"], g["clients"][0]["value"], g["clients"][0]["count"], g["clients"][0]["exact"], g["clients_distinct"]) for g in d["policyd"] if g["check"] == "relay"]')" = "[(10, {'reject': 10}, '203.0.113.7', 5, True, 3)]"
check "json: recipient group" test "$(jq '[(g["count"], g["recipient_domains"][0]["value"], g["reply"]) for g in d["policyd"] if g["check"] == "recipient"]')" = "[(4, 'example.com', '550 5.1.1 User unknown')]"
check "json: Postfix's own and policyd's rejects apart" test "$(jq 'sorted((g["reason"], g["own"], g["by_policyd"]) for g in d["postfix"])')" = "[('Client host rejected: Access denied', 1, 0), ('Recipient address rejected: Relay access denied', 0, 10), ('Recipient address rejected: User unknown', 0, 4), ('Recipient address rejected: would be refused', 1, 0), ('Relay access denied', 2, 0)]"
check "json: refused_by_policyd marks" test "$(jq 'sorted((c["value"], c["refused_by_policyd"]) for g in d["postfix"] if g["reason"] == "Relay access denied" for c in g["clients"])')" = "[('192.0.2.99', False), ('203.0.113.7', True)]"

# Standard input, gzip on standard input, and several inputs at once.
cat "$WORK/logs/mail.log" | "$POLICYD" report - >"$WORK/stdin" 2>&1
check "standard input: 8 diagnoses from the plain part" grep -q '^  policyd: 8 diagnoses' "$WORK/stdin"
"$POLICYD" report - <"$WORK/logs/mail.log.1.gz" >"$WORK/stdin2" 2>&1
check "standard input, gzip: 6 diagnoses from the rotated part" grep -q '^  policyd: 6 diagnoses' "$WORK/stdin2"

# --since: lines three days old are skipped, today's counted.
old=$(date -d '3 days ago' '+%b %e %H:%M:%S')
for i in 1 2 3; do
    echo "$old mx policyd[1]: NOQUEUE: client=unknown[192.0.2.50], from=<o@old.example>, to=<r$i@foreign.example>, helo=<h>: relay: reject: 554 5.7.1 Relay access denied; cause=relay denied: client 192.0.2.50 (unknown) is not in mynetworks; fix=f"
done >>"$WORK/logs/mail.log"
"$POLICYD" report --json "$WORK/logs/mail.log.1.gz" "$WORK/logs/mail.log" >"$WORK/json"
check "without --since the old lines count" test "$(jq 'd["summary"]["diagnoses"], d["summary"]["before_since"]')" = "17 0"
"$POLICYD" report --json --since 24h "$WORK/logs/mail.log.1.gz" "$WORK/logs/mail.log" >"$WORK/json"
check "--since 24h skips them" test "$(jq 'd["summary"]["diagnoses"], d["summary"]["before_since"]')" = "14 3"
"$POLICYD" report --json --since=4d "$WORK/logs/mail.log" >"$WORK/json"
check "--since=4d keeps them" test "$(jq 'd["summary"]["diagnoses"], d["summary"]["before_since"]')" = "11 0"
touch -d '3 days ago' "$WORK/logs/mail.log.1.gz"
"$POLICYD" report --json --since 24h "$WORK/logs/mail.log.1.gz" >"$WORK/json"
check "--since: a file last written before it is not read" test "$(jq 'd["summary"]["lines"]')" = "0"
"$POLICYD" report --json --since "$(date -d '1 hour ago' '+%Y-%m-%dT%H:%M')" "$WORK/logs/mail.log" >"$WORK/json"
check "--since DATE" test "$(jq 'd["summary"]["diagnoses"]')" = "8"

# Exit statuses and messages.
"$POLICYD" report "$WORK/logs/mail.log" "$WORK/missing.log" >"$WORK/out" 2>"$WORK/err"
rc=$?
check "a missing file: exit 1, the rest reported" test "$rc" = 1 -a -s "$WORK/out"
check "a missing file: named on standard error" grep -q "cannot open $WORK/missing.log: No such file" "$WORK/err"
head -c $(($(stat -c %s "$WORK/logs/mail.log.1.gz") / 2)) "$WORK/logs/mail.log.1.gz" >"$WORK/cut.gz"
"$POLICYD" report "$WORK/cut.gz" >"$WORK/out" 2>"$WORK/err"
rc=$?
check "a cut gzip file: exit 1, said so" test "$rc" = 1 -a -s "$WORK/err"
"$POLICYD" report --since yesterday-ish "$WORK/logs/mail.log" >/dev/null 2>"$WORK/err"
check "a bad --since: exit 2" test $? = 2
"$POLICYD" report --frobnicate >/dev/null 2>&1
check "an unknown option: exit 2" test $? = 2
"$POLICYD" report "$WORK" >/dev/null 2>"$WORK/err"
check "a directory: exit 1" test $? = 1

# Speed and memory: 1,000,000 lines (a realistic mix: one in five a policyd or Postfix reject,
# 50,000 clients, 200,000 recipients) through standard input. Sanitizer builds run fewer.
lines=1000000
case "$POLICYD" in *asan*) lines=200000 ;; esac
gen() {
    awk -v n="$lines" -v s="$stamp" 'BEGIN {
        for (i = 0; i < n; i++) {
            k = i % 10; j = i - k
            c = "198.51." int(j / 200 % 250) "." (j % 200); r = "u" (j % 200000) "@d" (j % 97) ".example"
            if (k == 0)
                printf "%s mx policyd[812]: NOQUEUE: client=unknown[%s], from=<s%d@spam%d.example>, to=<%s>, helo=<h%d.example>: relay: reject: 554 5.7.1 Relay access denied; cause_code=relay.not_mynetworks; cause=relay denied: client %s (unknown) is not in mynetworks (127.0.0.0/8 [::1]/128) and did not authenticate; recipient domain d%d.example is in none of mydestination (mx.example.net, localhost), virtual_alias_domains (empty), virtual_mailbox_domains (empty), relay_domains (example.com); the client connected to port 25; fix=if %s is your client, add it to mynetworks or have it authenticate with SASL on port 587\n", s, c, j, j % 13, r, j, c, j % 97, c
            else if (k == 1)
                printf "%s mx postfix/smtpd[4711]: NOQUEUE: reject: RCPT from unknown[%s]: 554 5.7.1 <%s>: Recipient address rejected: Relay access denied; from=<s%d@spam%d.example> to=<%s> proto=ESMTP helo=<h%d.example>\n", s, c, r, j, j % 13, r, j
            else if (k < 6)
                printf "%s mx postfix/smtpd[4711]: connect from unknown[%s]\n", s, c
            else
                printf "%s mx postfix/smtp[4713]: 4F%05dA: to=<%s>, relay=mx.d.example[192.0.2.1]:25, delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n", s, i % 100000, r
        }
    }'
}
gen >"$WORK/big.log"
# measure - run the report on big.log: exit status, wall and CPU seconds, peak RSS (MB), and
# the diagnoses and matched rejects it found.
measure() {
    $PY - "$POLICYD" "$WORK/big.log" <<'EOF'
import json, os, subprocess, sys, time
t = time.monotonic()
p = subprocess.Popen([sys.argv[1], "report", "--json", sys.argv[2]], stdout=subprocess.PIPE)
out = p.stdout.read()
_, status, ru = os.wait4(p.pid, 0)
el = time.monotonic() - t
d = json.loads(out)
print("%d %.2f %.2f %d %d %d" % (os.waitstatus_to_exitcode(status), el, ru.ru_utime + ru.ru_stime,
      ru.ru_maxrss // 1024, d["summary"]["diagnoses"], d["summary"]["postfix_rejects_by_policyd"]))
EOF
}
read -r rc wall cpu rss ndiag nmatched <<<"$(measure)"
echo "# $lines lines ($(($(stat -c %s "$WORK/big.log") / 1048576)) MB): ${wall}s wall, ${cpu}s CPU, ${rss} MB peak RSS"
check "big log: every diagnosis and every matched reject counted" test "$rc $ndiag $nmatched" = "0 $((lines / 10)) $((lines / 10))"
if [ "$lines" = 1000000 ]; then
    check "1,000,000 lines in under 10 s of CPU (${cpu}s)" $PY -c "import sys; sys.exit(not float('$cpu') < 10)"
fi
check "memory stays bounded (${rss} MB peak for 200,000 recipients)" test "$rss" -lt 120
rm -f "$WORK/big.log"
finish
