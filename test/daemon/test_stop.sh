#!/usr/bin/env bash
# test_stop.sh - clean stops (issue 12): SIGTERM under load answers every request already sent:
# those being evaluated, those read ahead, those still in the connections' socket buffers
# (max_pending_per_connection = 1 keeps them there) and those of connections still waiting in
# the listen queue (max_connections reached, every connection busy). Each request needs a PTR
# lookup the test DNS server answers 300 ms late, so ~160 requests are outstanding when the
# signal comes. Then: 0 unanswered, the daemon exits 0 within the drain deadline, and its socket
# file is gone.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

DNSPORT=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo '{"negative_ttl": 60, "default": [{"behaviour": "delay", "ms": 300}], "names": {}}' >"$WORK/zone.json"
$PY "$TESTDIR/../dns/testdns.py" --zone "$WORK/zone.json" --port "$DNSPORT" >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done

write_conf "$WORK/stop.conf" "checks = relay, rdns" "relay_domains = example.com" \
    "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 3s" "dns_tries = 1" \
    "request_deadline = 5s" "max_connections = 30" "max_pending_per_connection = 1" \
    "pid_file = $WORK/policyd.pid"
if start_daemon "$WORK/stop.conf"; then
    t0=$(date +%s.%N)
    out=$($PY - "$WORK/policyd.sock" "$DAEMON_PID" <<'PYEOF'
import os, signal, socket, sys, time
path, pid = sys.argv[1], int(sys.argv[2])
n = [0]
def req():
    n[0] += 1
    return ("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=10.9.%d.%d\n"
            "sender=a@example.org\nrecipient=u%d@example.com\n\n" % (n[0] // 250, n[0] % 250 + 1, n[0])).encode()
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(path)
    return s
conns = []   # (socket, requests sent)
# 30 connections (max_connections) with 4 requests each: 1 evaluated, 3 waiting in buffers.
for _ in range(30):
    s = conn()
    s.sendall(b"".join(req() for _ in range(4)))
    conns.append([s, 4])
time.sleep(0.15)     # accepted and busy: the listener has paused
# 10 more: they wait in the listen queue, their requests sent into it.
for _ in range(10):
    s = conn()
    s.sendall(b"".join(req() for _ in range(4)))
    conns.append([s, 4])
sent = sum(c[1] for c in conns)
os.kill(pid, signal.SIGTERM)   # every request above was written before the signal
answered = 0
bad = 0
for s, k in conns:
    buf = b""
    try:
        while buf.count(b"\n\n") < k:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except OSError:
        pass
    replies = [r for r in buf.split(b"\n\n") if r]
    answered += len(replies)
    bad += sum(not r.startswith(b"action=") for r in replies)
    s.close()
print("sent=%d answered=%d unanswered=%d malformed=%d" % (sent, answered, sent - answered, bad))
PYEOF
)
    echo "# $out"
    rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    t1=$(date +%s.%N)
    check "SIGTERM with 160 requests outstanding: none unanswered" grep -q "sent=160 answered=160 unanswered=0 malformed=0" <<<"$out"
    check "the daemon exits 0" test "$rc" -eq 0
    check "within the drain deadline (request_deadline + 2 s)" awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 7.5) }'
    check "the stop is logged" grep -q "stopping on signal 15: no new connections; answering every request already sent" "$WORK/policyd.log"
    check "no 'still open after the grace period'" test "$(grep -c "still open after the grace period" "$WORK/policyd.log")" -eq 0
    check "its socket file is removed" test ! -e "$WORK/policyd.sock"
    check "its pid file is removed" test ! -e "$WORK/policyd.pid"
    check "no 'will stay behind' note (it may remove them)" test "$(grep -c "will stay behind" "$WORK/policyd.log")" -eq 0
fi

# While it drains, new connections are refused at once (the listener is closed), not queued.
write_conf "$WORK/stop2.conf" "checks = relay, rdns" "relay_domains = example.com" \
    "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 3s" "dns_tries = 1"
if start_daemon "$WORK/stop2.conf"; then
    out=$($PY - "$WORK/policyd.sock" "$DAEMON_PID" <<'PYEOF'
import os, signal, socket, sys, time
path, pid = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(path)
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=10.8.0.1\nrecipient=a@example.com\n\n")
time.sleep(0.1)
os.kill(pid, signal.SIGTERM)
time.sleep(0.1)
t = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
t.settimeout(2)
try:
    t.connect(path)
    late = "connected"
except OSError as e:
    late = type(e).__name__
answer = s.recv(100)
print("late=%s answer=%r" % (late, answer))
PYEOF
)
    echo "# $out"
    check "a connection attempt during the drain fails at once" grep -qE "late=(FileNotFoundError|ConnectionRefusedError)" <<<"$out"
    check "the request in flight is still answered" grep -q "answer=b'action=" <<<"$out"
    rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    check "daemon exits 0 (status $rc)" test "$rc" -eq 0
fi
kill "$DNS_PID" 2>/dev/null
wait "$DNS_PID" 2>/dev/null
finish
