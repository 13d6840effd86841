#!/usr/bin/env bash
# test_report.sh - `policyd report` (issue 13) on what a real Postfix 3.7 and policyd logged:
# relay attempts and unknown users refused by policyd, a non-FQDN sender refused by Postfix
# itself before policyd is asked, and relay attempts that policyd only logs (relay_mode = warn)
# and Postfix's reject_unauth_destination refuses. Postfix's maillog and policyd's own log file
# are separate inputs. The counts are checked against what was sent.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lab.sh"
lab_enter "$@"
lab_setup
# Postfix's own refusal before the policy service is asked (smtpd_delay_reject: at RCPT).
echo "smtpd_sender_restrictions = reject_non_fqdn_sender" >>"$LAB/etc/main.cf"
lab_start_dns || not_ok "test DNS starts"
printf 'room@example.com example.com/room/\n' >"$LAB/vmailbox"
lab_start_postfix || { not_ok "Postfix starts"; exit 1; }
lab_start_sink || not_ok "smtp-sink starts"
PDLOG=$LAB/log/policyd.log
conf=("checks = relay, recipient" "virtual_mailbox_domains = example.com"
    "recipient_maps = texthash:$LAB/vmailbox" "log_file = $PDLOG")
lab_start_policyd "${conf[@]}" || { not_ok "policyd starts"; exit 1; }
ok "lab is up"

x() { printf -- "--xclient-addr %s --xclient-name [UNAVAILABLE]" "$1"; }
# shellcheck disable=SC2046 # x prints separate arguments
{
    # 3 relay attempts in one session from .7, 2 sessions from .8: policyd refuses 5.
    lab_send "$LAB/r1.out" --from a@example.org --to v1@foreign.example,v2@foreign.example,v3@foreign.example $(x 203.0.113.7)
    lab_send "$LAB/r2.out" --from b@spam.example --to w1@foreign.example $(x 203.0.113.8)
    lab_send "$LAB/r3.out" --from b@spam.example --to w2@foreign.example $(x 203.0.113.8)
    # 2 unknown users: policyd refuses.
    lab_send "$LAB/u1.out" --from c@example.net --to nobody1@example.com $(x 203.0.113.30)
    lab_send "$LAB/u2.out" --from c@example.net --to nobody2@example.com $(x 203.0.113.30)
    # accepted
    lab_send "$LAB/ok.out" --from c@example.net --to room@example.com $(x 203.0.113.30)
    # 2 non-FQDN senders: Postfix refuses by itself.
    lab_send "$LAB/f1.out" --from a@localhost --to room@example.com $(x 203.0.113.9)
    lab_send "$LAB/f2.out" --from b@localhost --to room@example.com $(x 203.0.113.9)
}
check "policyd refused the 5 relay attempts" test "$(cat "$LAB"/r?.out | grep -cE '<\*\* 554 5\.7\.1 <[vw][0-9]@foreign\.example>: Recipient address rejected: Relay access denied')" = 5
check "policyd refused the 2 unknown users" test "$(cat "$LAB"/u?.out | grep -cE '<\*\* 550 5\.1\.1 ')" = 2
check "the known user was accepted" grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/ok.out"
check "Postfix refused the 2 non-FQDN senders" test "$(cat "$LAB"/f?.out | grep -cE '<\*\* 504 5\.5\.2 <[ab]@localhost>: Sender address rejected')" = 2

# Warn mode: policyd logs "would reject" and answers DUNNO; Postfix refuses by itself.
lab_stop_policyd
lab_start_policyd "${conf[@]}" "relay_mode = warn" || { not_ok "policyd restarts in warn mode"; exit 1; }
# shellcheck disable=SC2046
{
    lab_send "$LAB/w1.out" --from a@example.org --to late1@foreign.example $(x 203.0.113.7)
    lab_send "$LAB/w2.out" --from a@example.org --to late2@foreign.example $(x 203.0.113.7)
}
check "warn mode: Postfix's own relay denials" test "$(cat "$LAB"/w?.out | grep -cE '<\*\* 554 5\.7\.1 <late[12]@foreign\.example>: Relay access denied$')" = 2
lab_wait_grep 'NOQUEUE: reject: RCPT from unknown\[203\.0\.113\.7\]: 554 5\.7\.1 <late2@foreign\.example>' "$MAILLOG" ||
    not_ok "Postfix logged the last reject"
lab_stop_policyd
check "policyd's log is its own file" test "$(grep -c 'policyd\[' "$MAILLOG")" = 0

"$POLICYD" report "$MAILLOG" "$PDLOG" >"$LAB/table" 2>"$LAB/report.err"
check "report exits 0" test $? = 0
"$POLICYD" report --json "$MAILLOG" "$PDLOG" >"$LAB/report.json" 2>>"$LAB/report.err"
check "--json exits 0" test $? = 0
check "nothing on standard error" test ! -s "$LAB/report.err"
jq() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$LAB/report.json')); print($1)"; }
check "totals: 9 diagnoses (7 refusals), 11 Postfix rejects, 7 of them policyd's" \
    test "$(jq 'd["summary"]["diagnoses"], d["summary"]["policyd_refusals"], d["summary"]["postfix_rejects"], d["summary"]["postfix_rejects_by_policyd"], d["summary"]["policyd_refusals_unmatched"], d["summary"]["malformed"]')" = "9 7 11 7 0 0"
check "policyd: relay refusals by client" \
    test "$(jq '[(g["count"], [(c["value"], c["count"]) for c in g["clients"]], [s["value"] for s in g["sender_domains"]]) for g in d["policyd"] if g["check"] == "relay" and g["refusals"]]')" = "[(5, [('203.0.113.7', 3), ('203.0.113.8', 2)], ['example.org', 'spam.example'])]"
check "policyd: unknown users" \
    test "$(jq '[(g["count"], g["reply"], g["recipient_domains"][0]["value"]) for g in d["policyd"] if g["check"] == "recipient"]')" = "[(2, '550 5.1.1 User unknown', 'example.com')]"
check "policyd: warn mode apart, nothing refused" \
    test "$(jq '[(g["count"], g["verdicts"], g["refusals"]) for g in d["policyd"] if g["check"] == "relay" and not g["refusals"]]')" = "[(2, {'would reject (warn mode)': 2}, 0)]"
check "Postfix: its rejects grouped, policyd's answers and its own apart" \
    test "$(jq 'sorted((g["code"], g["dsn"], g["reason"], g["by_policyd"], g["own"]) for g in d["postfix"])')" = "[('504', '5.5.2', 'Sender address rejected: need fully-qualified address', 0, 2), ('550', '5.1.1', 'Recipient address rejected: User unknown', 2, 0), ('554', '5.7.1', 'Recipient address rejected: Relay access denied', 5, 0), ('554', '5.7.1', 'Relay access denied', 0, 2)]"
check "Postfix's own relay denials: from a client policyd would have refused" \
    test "$(jq '[(c["value"], c["count"], c["refused_by_policyd"]) for g in d["postfix"] if g["reason"] == "Relay access denied" for c in g["clients"]]')" = "[('203.0.113.7', 2, True)]"
check "table: Postfix's own refusals listed" grep -qE '^504 5\.5\.2 Sender address rejected: need fully-qualified address \(RCPT\) +2$' "$LAB/table"
check "table: the fix for the relay refusals" grep -q '^  fix        if 203.0.113.7 is your client' "$LAB/table"
# The same through standard input, the two files concatenated (order does not matter).
cat "$PDLOG" "$MAILLOG" | "$POLICYD" report --json - >"$LAB/report.json"
check "standard input: the same totals" \
    test "$(jq 'd["summary"]["diagnoses"], d["summary"]["postfix_rejects_by_policyd"]')" = "9 7"
if [ "$failures" -ne 0 ]; then
    echo "--- report"
    cat "$LAB/table" "$LAB/report.err"
    echo "--- maillog"
    tail -40 "$MAILLOG"
fi
exit $((failures > 0))
