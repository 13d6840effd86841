#!/usr/bin/env bash
# test_queue_watch.sh - the daemon's queue watch with a real Postfix 3.7 (issue 10, section 5):
# the next hop (smtp-sink as relayhost) answers every RCPT with a 450 about our reverse DNS,
# so outbound mail is deferred; within a short queue_watch_interval policyd's diagnosis line
# is in the maillog, keyed by the queue id of one of the messages (a grep for the id finds it
# beside Postfix's status=deferred line), with the destination, the count, the remote reply,
# the cause and the fix, once per destination; the counts are in the metrics.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lab.sh"
lab_enter "$@"
lab_setup
lab_start_dns || not_ok "test DNS starts"
lab_start_postfix || { not_ok "Postfix starts"; exit 1; }
REPLY="450 4.7.1 Client host rejected: cannot find your reverse hostname, [127.0.0.1]"
smtp-sink -u nobody -r RCPT -b "$REPLY" 127.0.0.1:10026 100 &
SINK_PID=$!
lab_wait_port 10026 || not_ok "smtp-sink (answering 450 to RCPT) starts"
lab_start_policyd "queue_watch_interval = 2s" "metrics_listen = unix:$LAB/metrics.sock" ||
    { not_ok "policyd starts"; exit 1; }
ok "lab is up (Postfix $(postconf -d -h mail_version 2>/dev/null))"

# Two messages to far.example, one to near.example, from a mynetworks client: relayed to the
# sink, which defers every recipient.
for to in a@far.example b@far.example c@near.example; do
    lab_send "$LAB/send-$to.out" --from sender@example.org --to "$to"
    grep -qE '<- +250 2\.0\.0 Ok: queued' "$LAB/send-$to.out" || not_ok "Postfix queued the mail to $to"
done
check "Postfix deferred the mail to far.example (the sink's 450)" \
    lab_wait_grep "postfix/smtp\[[0-9]+\]: [0-9A-F]+: to=<a@far\.example>.*status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 450 4\.7\.1 Client host rejected: cannot find your reverse hostname" "$MAILLOG"
lab_wait_grep "to=<b@far\.example>.*status=deferred" "$MAILLOG"
lab_wait_grep "to=<c@near\.example>.*status=deferred" "$MAILLOG"

line_re='policyd\[[0-9]+\]: warning: ([0-9A-F]+): to=<[ab]@far\.example>: queue watch: 2 deferred messages \(2 recipients\) to far\.example: reverse DNS: reply=host 127\.0\.0\.1\[127\.0\.0\.1\] said: 450 4\.7\.1 Client host rejected: cannot find your reverse hostname, \[127\.0\.0\.1\] \(in reply to RCPT TO command\); cause=receivers refuse an address without a PTR record that resolves back; fix=ask the owner of the sending address'
check "policyd logs the diagnosis for far.example within the interval" lab_wait_grep "$line_re" "$MAILLOG"
qid=$(grep -oE "$line_re" "$MAILLOG" | head -1 | sed -E 's/.*warning: ([0-9A-F]+): .*/\1/')
check "keyed by a queue id of one of the deferred messages ($qid)" \
    grep -qE "postfix/smtp\[[0-9]+\]: $qid: to=<[ab]@far\.example>.*status=deferred" "$MAILLOG"
check "grep for that queue id finds Postfix's status=deferred line and policyd's line" \
    test "$(grep -F "$qid: " "$MAILLOG" | grep -cE 'status=deferred|queue watch: ')" -ge 2
check "near.example has its own line" \
    lab_wait_grep 'policyd\[[0-9]+\]: warning: [0-9A-F]+: to=<c@near\.example>: queue watch: 1 deferred message \(1 recipient\) to near\.example: reverse DNS: ' "$MAILLOG"
sleep 5 # two more rounds
check "the same reason is not logged again before queue_watch_repeat" \
    test "$(grep -cE 'queue watch: .* to far\.example: ' "$MAILLOG")" -eq 1
metrics=$(curl -sS --max-time 10 --unix-socket "$LAB/metrics.sock" http://localhost/metrics)
check "metrics: policyd_deferred_messages{reason=\"ptr\"} 3" grep -qx 'policyd_deferred_messages{reason="ptr"} 3' <<<"$metrics"
check "metrics: the rounds succeeded" grep -qE '^policyd_queue_watch_runs_total\{result="success"\} [1-9]' <<<"$metrics"
check "no queue watch failure was logged" test -z "$(grep 'queue watch: postqueue' "$MAILLOG")"
check "policyd exits 0 on SIGTERM" lab_stop_policyd
[ "$failures" -eq 0 ] || { echo "--- maillog"; tail -40 "$MAILLOG"; }
exit $((failures > 0))
