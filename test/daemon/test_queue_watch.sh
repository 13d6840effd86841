#!/usr/bin/env bash
# test_queue_watch.sh - the daemon's queue watch (issue 10, section 5) against a stand-in
# postqueue first in PATH (canned `postqueue -j` lines; the real Postfix is in
# test/lab/test_queue_watch.sh): one diagnosis line per kind of reason and destination, keyed
# by the oldest message's queue id, with the reply, the cause and the fix; not repeated before
# queue_watch_repeat, repeated after; a new reason logged at the next round; the counts in the
# metrics; a failing postqueue logged once (and its recovery); a missing one turns the watch
# off; a postqueue that hangs does not hold up policy requests; interval 0 is off.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
mkdir -p "$WORK/bin"
cat >"$WORK/bin/postqueue" <<EOF
#!/bin/sh
[ "\$*" = "-j" ] || { echo "fake postqueue: unexpected arguments: \$*" >&2; exit 64; }
echo run >>"$WORK/queue.runs"
[ -f "$WORK/queue.sleep" ] && sleep "\$(cat "$WORK/queue.sleep")"
[ -f "$WORK/queue.err" ] && cat "$WORK/queue.err" >&2
cat "$WORK/queue.out"
exit \$(cat "$WORK/queue.rc")
EOF
chmod +x "$WORK/bin/postqueue"
echo 0 >"$WORK/queue.rc"
MSOCK=$WORK/metrics.sock

# queue SPEC... - write the canned listing: each SPEC is QID:QUEUE:AGE_DAYS:RCPT=REASON_KEY,...
queue() {
    $PY - "$WORK/queue.out" "$@" <<'PYEOF'
import json, sys, time
now = int(time.time())
reasons = {
    "ptr": "host mx.dest.example[192.0.2.1] said: 450 4.7.1 Client host rejected: cannot find your reverse hostname, [203.0.113.5] (in reply to RCPT TO command)",
    "bl": "host mx.other.example[192.0.2.9] said: 554 5.7.1 Service unavailable; client [203.0.113.5] blocked using zen.spamhaus.org (in reply to RCPT TO command)",
    "grey": "host mx.grey.example[192.0.2.7] said: 450 4.2.0 <x@grey.example>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/ (in reply to RCPT TO command)",
    "full": "host mx.dest.example[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)",
    "": "",
}
lines = []
for spec in sys.argv[2:]:
    qid, q, age, rcpts = spec.split(":", 3)
    lines.append(json.dumps({"queue_name": q, "queue_id": qid, "arrival_time": now - int(age) * 86400,
                             "message_size": 1000, "forced_expire": False, "sender": "a@example.test",
                             "recipients": [{"address": r.split("=")[0], "delay_reason": reasons[r.split("=")[1]]}
                                            for r in rcpts.split(",")]}))
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PYEOF
}
# lines PATTERN - how many log lines match
lines() { grep -cE -- "$1" "$WORK/policyd.log"; }
# rounds_after N - wait until postqueue has run N more times than now, plus the loop's turn
runs() { wc -l <"$WORK/queue.runs" 2>/dev/null || echo 0; }
wait_runs() {
    local want=$(($(runs) + $1))
    for _ in $(seq 1 100); do [ "$(runs)" -ge "$want" ] && break; sleep 0.05; done
    sleep 0.2
}
scrape() { curl -sS --max-time 10 --unix-socket "$MSOCK" http://localhost/metrics; }
metric() { scrape | awk -v k="$1" '$1 == k { print $2 }'; }

queue "A2:deferred:1:r1@dest.example=ptr" \
    "A1:deferred:3:r0@dest.example=ptr,r2@dest.example=ptr" \
    "B1:deferred:0:x@other.example=bl,y@dest.example=full" \
    "C1:deferred:0:x@grey.example=grey" \
    "D1:active:0:z@dest.example=" "E1:hold:0:h@dest.example="
write_conf "$WORK/q.conf" "metrics_listen = unix:$MSOCK" "queue_watch_interval = 1s"
PATH="$WORK/bin:$PATH" start_daemon "$WORK/q.conf" || exit 1
check "the watch is announced" wait_log "queue watch: Postfix's queue read every 1 s"
check "PTR: one line keyed by the oldest message's queue id, with count, reply, cause and fix" wait_log \
    '^.*warning: A1: to=<r0@dest\.example>: queue watch: 2 deferred messages \(3 recipients\) to dest\.example: reverse DNS: reply=host mx\.dest\.example\[192\.0\.2\.1\] said: 450 4\.7\.1 Client host rejected: cannot find your reverse hostname, \[203\.0\.113\.5\] \(in reply to RCPT TO command\); cause=receivers refuse an address without a PTR record that resolves back; fix=ask the owner of the sending address .*PTR'
check "blocklist: its own line, its own destination" \
    grep -qE 'warning: B1: to=<x@other\.example>: queue watch: 1 deferred message \(1 recipient\) to other\.example: blocklisted: reply=.*zen\.spamhaus\.org.*; cause=.*blocklist.*; fix=.*delisting' "$WORK/policyd.log"
check "mailbox full at the destination: a line at info level (nothing to fix here)" \
    grep -qE '\]: B1: to=<y@dest\.example>: queue watch: 1 deferred message \(1 recipient\) to dest\.example: mailbox full: reply=.*4\.2\.2 Mailbox full.*fix=nothing to fix on this server' "$WORK/policyd.log"
check "greylisting: info level" grep -qE '\]: C1: to=<x@grey\.example>: queue watch: .* greylisted: ' "$WORK/policyd.log"
check "active and held mail are no deferral" test "$(lines 'queue watch: .*(D1|E1)')" -eq 0
check "grep for the queue id finds the line" test "$(grep -c '^.*: A1: ' "$WORK/policyd.log")" -eq 1
wait_runs 2
check "not logged again before queue_watch_repeat (1h)" test "$(lines 'A1: to=<r0@dest.example>: queue watch')" -eq 1
if [ -n "$(command -v promtool)" ]; then
    check "promtool check metrics passes with the queue families" bash -c "curl -sS --unix-socket '$MSOCK' http://localhost/metrics | promtool check metrics"
fi
check "policyd_deferred_messages{reason=\"ptr\"} 2" test "$(metric 'policyd_deferred_messages{reason="ptr"}')" = 2
check "policyd_deferred_recipients{reason=\"ptr\"} 3" test "$(metric 'policyd_deferred_recipients{reason="ptr"}')" = 3
check "policyd_deferred_messages{reason=\"dnsbl\"} 1" test "$(metric 'policyd_deferred_messages{reason="dnsbl"}')" = 1
check "policyd_deferred_messages{reason=\"greylist\"} 1" test "$(metric 'policyd_deferred_messages{reason="greylist"}')" = 1
check "policyd_deferred_messages{reason=\"tls\"} 0" test "$(metric 'policyd_deferred_messages{reason="tls"}')" = 0
check "queue watch rounds counted" test "$(metric 'policyd_queue_watch_runs_total{result="success"}')" -ge 2
check "the last round's time" test "$(metric policyd_queue_watch_last_success_timestamp_seconds)" -ge "$(($(date +%s) - 10))"

# A new reason: logged at the next round; the old ones still not.
queue "A1:deferred:3:r0@dest.example=ptr" "F1:deferred:0:q@far.example=full"
wait_runs 2
check "a new reason is logged at the next round" grep -qE 'F1: to=<q@far\.example>: queue watch: 1 deferred message \(1 recipient\) to far\.example: mailbox full' "$WORK/policyd.log"
check "the known one is not" test "$(lines 'A1: to=<r0@dest.example>: queue watch')" -eq 1
check "the counts follow the queue" test "$(metric 'policyd_deferred_messages{reason="ptr"}')" = 1

# queue_watch_repeat: a reason still there is logged again after it.
write_conf "$WORK/q.conf" "metrics_listen = unix:$MSOCK" "queue_watch_interval = 1s" "queue_watch_repeat = 2s"
kill -HUP "$DAEMON_PID"
wait_log "reloaded"
for _ in $(seq 1 80); do [ "$(lines 'A1: to=<r0@dest.example>: queue watch')" -ge 2 ] && break; sleep 0.1; done
check "queue_watch_repeat 2s: logged again" test "$(lines 'A1: to=<r0@dest.example>: queue watch')" -ge 2

# A failing postqueue: one warning, not one per round; its recovery said once.
echo "postqueue: fatal: Queue report unavailable - mail system is down" >"$WORK/queue.err"
: >"$WORK/queue.out"
echo 69 >"$WORK/queue.rc"
wait_runs 3
check "postqueue failing: one warning with its words and what to check" \
    test "$(lines 'warning: queue watch: postqueue -j failed: postqueue: fatal: Queue report unavailable - mail system is down; trying again every 1 s .*fix=is Postfix running')" -eq 1
check "failures counted" test "$(metric 'policyd_queue_watch_runs_total{result="failure"}')" -ge 2
rm -f "$WORK/queue.err"
echo 0 >"$WORK/queue.rc"
check "recovery logged" wait_log "queue watch: postqueue works again"
check "an empty queue: zero deferred" bash -c "sleep 0.3; test \"\$(curl -sS --unix-socket '$MSOCK' http://localhost/metrics | awk '\$1 == \"policyd_deferred_messages{reason=\\\"ptr\\\"}\" {print \$2}')\" = 0"

# A postqueue that hangs runs off the loop: requests are answered meanwhile.
echo 3 >"$WORK/queue.sleep"
wait_runs 1
check "while postqueue hangs, policy requests are answered at once" $PY - "$WORK/policyd.sock" <<'PYEOF'
import socket, sys, time
req = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\n"
       b"sender=a@example.org\nrecipient=b@example.com\n\n")
worst = 0
for _ in range(20):
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
    t0 = time.monotonic(); s.sendall(req); buf = b""
    while not buf.endswith(b"\n\n"): buf += s.recv(4096)
    worst = max(worst, time.monotonic() - t0); s.close(); time.sleep(0.05)
sys.exit(0 if worst < 0.1 else 1)
PYEOF
check "SIGTERM while postqueue runs: the daemon does not wait for it" bash -c "
    t0=\$(date +%s%N); kill -TERM $DAEMON_PID; while kill -0 $DAEMON_PID 2>/dev/null; do sleep 0.05; done
    test \$(( (\$(date +%s%N) - t0) / 1000000 )) -lt 1500"
stop_daemon
rm -f "$WORK/queue.sleep"

# postqueue missing (the shell's 127): the watch turns itself off.
: >"$WORK/policyd.log"
echo 127 >"$WORK/queue.rc"
write_conf "$WORK/nf.conf" "metrics_listen = unix:$MSOCK" "queue_watch_interval = 1s"
PATH="$WORK/bin:$PATH" start_daemon "$WORK/nf.conf"
check "no postqueue: one line, the watch is off" wait_log "queue watch: postqueue not found: Postfix is not installed here; the queue watch is off"
before=$(runs)
sleep 2.2
check "no more rounds" test "$(runs)" -eq "$before"
stop_daemon

# queue_watch_interval = 0: off.
: >"$WORK/policyd.log"
echo 0 >"$WORK/queue.rc"
write_conf "$WORK/off.conf" "metrics_listen = unix:$MSOCK" "queue_watch_interval = 0"
before=$(runs)
PATH="$WORK/bin:$PATH" start_daemon "$WORK/off.conf"
sleep 1.5
check "interval 0: postqueue never runs" test "$(runs)" -eq "$before"
check "interval 0: no queue families in the metrics" bash -c "! curl -sS --unix-socket '$MSOCK' http://localhost/metrics | grep -q queue_watch"
stop_daemon
finish
