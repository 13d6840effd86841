#!/usr/bin/env bash
# test_deadlines.sh - read deadlines (issue 12): a request that arrives one byte per second is
# closed at request_read_timeout however often bytes come (idle_timeout runs only between
# requests), logged at info with the peer and the reason; a client that is slow but within the
# deadline is served; many connections closed in the same second give one line and a count.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

write_conf "$WORK/deadline.conf" "request_read_timeout = 3s" "idle_timeout = 2s" \
    "mynetworks = 127.0.0.0/8"
if start_daemon "$WORK/deadline.conf"; then
    out=$($PY - "$WORK/policyd.sock" <<'PYEOF'
import socket, sys, threading, time
path = sys.argv[1]
req = b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\nrecipient=a@b.example\n\n"
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s
results = {}
def slowloris(name, interval, count):
    """One byte every interval seconds (count bytes at most); when was the connection closed?"""
    s = conn()
    t0 = time.time()
    sent = 0
    s.settimeout(interval)
    while sent < count and time.time() - t0 < 9:
        try:
            s.send(req[sent:sent + 1])
            sent += 1
        except OSError:
            break
        try:
            if s.recv(100) == b"":
                break
        except socket.timeout:
            pass
        except OSError:
            break
    results[name] = (time.time() - t0, sent)
    s.close()
# One byte per second: closed at the 3 s request_read_timeout, though each byte comes well
# within idle_timeout (2 s).
t = threading.Thread(target=slowloris, args=("slow", 1.0, len(req)))
t.start()
# A client that sends a whole request in pieces over 1.5 s is served.
s = conn()
for i in range(0, len(req), 20):
    s.send(req[i:i + 20])
    time.sleep(0.1)
s.settimeout(5)
patient = s.recv(100)
# Between requests only idle_timeout counts: this one asks again after 1.5 s idle.
time.sleep(1.5)
s.sendall(req)
second = s.recv(100)
s.close()
t.join()
slow_s, slow_sent = results["slow"]
print("slow_closed_after=%.1f bytes=%d patient=%r second=%r" % (slow_s, slow_sent, patient, second))
PYEOF
)
    echo "# $out"
    after=$(sed -n 's/.*slow_closed_after=\([0-9.]*\).*/\1/p' <<<"$out")
    check "one byte per second: closed at request_read_timeout (after ${after:-?} s, bound 2.9-5 s)" \
        awk -v a="${after:-0}" 'BEGIN { exit !(a >= 2.9 && a <= 5) }'
    check "a request sent in pieces within the deadline is answered" grep -q "patient=b'action=DUNNO" <<<"$out"
    check "idle time between requests does not count against the next request" grep -q "second=b'action=DUNNO" <<<"$out"
    check "the close is logged at info with the peer and the reason" \
        grep -qE "policyd\[[0-9]+\]: closing policy connection from unix:$WORK/policyd.sock \(pid=[0-9]+ uid=0\): request not complete after 3 s \(request_read_timeout\); [0-9]+ bytes of it received" "$WORK/policyd.log"

    # 40 idle connections and 40 slow ones, closed in the same second: one line each kind, then a count.
    : >"$WORK/policyd.log"
    out=$($PY - "$WORK/policyd.sock" <<'PYEOF'
import socket, sys, time
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(8)
    s.connect(path)
    return s
idle = [conn() for _ in range(40)]
slow = [conn() for _ in range(40)]
for s in slow:
    s.sendall(b"request=smtpd_access_policy\n")
closed = 0
for s in idle + slow:
    try:
        if s.recv(10) == b"":
            closed += 1
    except OSError:
        pass
print("closed=%d" % closed)
PYEOF
)
    echo "# $out"
    check "80 connections closed by the timeouts" grep -q "closed=80" <<<"$out"
    sleep 1.5 # the per-second summary
    idle_lines=$(grep -c "no request for 2 s (idle_timeout)" "$WORK/policyd.log")
    slow_lines=$(grep -c "request not complete after 3 s (request_read_timeout)" "$WORK/policyd.log")
    idle_more=$(sed -n 's/.*closed \([0-9]*\) more policy connections idle for 2 s (idle_timeout) in the last second/\1/p' "$WORK/policyd.log" | awk '{s+=$1} END {print s+0}')
    slow_more=$(sed -n 's/.*closed \([0-9]*\) more policy connections whose request was not complete after 3 s (request_read_timeout) in the last second/\1/p' "$WORK/policyd.log" | awk '{s+=$1} END {print s+0}')
    check "40 idle closes: $idle_lines lines with the peer, $idle_more more counted" \
        test "$idle_lines" -ge 1 -a "$idle_lines" -le 3 -a $((idle_lines + idle_more)) -eq 40
    check "40 read timeouts: $slow_lines lines with the peer, $slow_more more counted" \
        test "$slow_lines" -ge 1 -a "$slow_lines" -le 3 -a $((slow_lines + slow_more)) -eq 40
    kill -USR1 "$DAEMON_PID"
    check "the counters show them" wait_log "idle_closes=40 read_timeouts=41 "
    check "daemon exits 0 on SIGTERM" stop_daemon
else
    not_ok "daemon starts"
fi
finish
