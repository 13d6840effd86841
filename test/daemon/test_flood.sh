#!/usr/bin/env bash
# test_flood.sh - fair connection slots (issue 12): 5,000 idle connections against
# max_connections = 1000 cannot lock a new client out (it is answered at once, the connections
# idle the longest make room), a connection with a request in progress is never the one
# closed, the daemon holds no more than its limit, and the warning comes once with counts; then
# max_connections_per_client refuses a client's connection over its limit (per uid on a unix
# socket, per address on an inet one) with a log line, and serves the next one when a slot frees;
# the listen queue is listen_backlog long.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
ulimit -n 20000 2>/dev/null || ulimit -n 12000 2>/dev/null || true

write_conf "$WORK/flood.conf" "max_connections = 1000" "mynetworks = 127.0.0.0/8"
if start_daemon "$WORK/flood.conf"; then
    out=$($PY - "$WORK/policyd.sock" "$DAEMON_PID" "$TESTDIR" <<'PYEOF'
import os, socket, sys, time
path, pid = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, sys.argv[3])
import dial
req = b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\nrecipient=a@b.example\n\n"
def conn():
    # A full listen queue (the daemon descheduled on a busy machine) answers EAGAIN: try again
    # for up to 5 s, as a flooding client would. The old daemon never emptied its queue.
    return dial.unix_connect(path, 5, pause=0.01)
# A connection with half a request: busy, so never the one closed to make room.
busy = conn()
busy.sendall(req[:40])
time.sleep(0.2)
flood, failed = [], 0
t0 = time.time()
for i in range(5000):
    try:
        flood.append(conn())
    except OSError:
        failed += 1
flood_s = time.time() - t0
time.sleep(0.5)
fds = len(os.listdir("/proc/%d/fd" % pid))
# A fresh client during the flood: answered at once.
t0 = time.time()
fresh = conn()
fresh.sendall(req)
answer = fresh.recv(100)
fresh_ms = (time.time() - t0) * 1000
# The busy one finishes its request: still there, answered.
busy.sendall(req[40:])
busy_answer = busy.recv(100)
# How many of the flood the daemon closed (EOF waiting on their side).
closed = 0
for s in flood:
    s.setblocking(False)
    try:
        if s.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except OSError:
        closed += 1
print("opened=%d failed=%d flood_s=%.1f fds=%d answer=%r fresh_ms=%.1f busy=%r closed=%d" % (
    len(flood), failed, flood_s, fds, answer, fresh_ms, busy_answer, closed))
PYEOF
)
    echo "# $out"
    check "5,000 connections against max_connections 1000: every connect succeeds" grep -q "opened=5000 failed=0" <<<"$out"
    fresh_ms=$(sed -n 's/.*fresh_ms=\([0-9]*\).*/\1/p' <<<"$out")
    check "a fresh client during the flood is answered (${fresh_ms:-?} ms, bound 1000 ms)" \
        test -n "$fresh_ms" -a "${fresh_ms:-99999}" -lt 1000 -a -n "$(grep -o "answer=b'action=DUNNO" <<<"$out")"
    check "a connection with a request in progress is not closed to make room" grep -q "busy=b'action=DUNNO" <<<"$out"
    closed=$(sed -n 's/.* closed=\([0-9]*\).*/\1/p' <<<"$out")
    check "the flood's idle connections were closed to make room (${closed:-?} of 5000)" test "${closed:-0}" -ge 3990
    fds=$(sed -n 's/.* fds=\([0-9]*\).*/\1/p' <<<"$out")
    check "the daemon holds no more connections than max_connections (${fds:-?} descriptors)" test "${fds:-99999}" -le 1030
    check "the limit is logged once, as a warning" test "$(grep -c "warning: max_connections (1000) reached: closing the connection idle the longest" "$WORK/policyd.log")" -eq 1
    check "never 'every connection is busy' (idle ones were there to close)" test "$(grep -c "every connection is busy" "$WORK/policyd.log")" -eq 0
    kill -USR1 "$DAEMON_PID"
    check "the counters show the evictions" wait_log "connections_evicted=(399[0-9]|4[0-9]{3})"
    check "daemon exits 0 on SIGTERM" stop_daemon
else
    not_ok "daemon starts"
fi

# max_connections_per_client: unix socket, per uid.
write_conf "$WORK/perclient.conf" "max_connections_per_client = 3" "mynetworks = 127.0.0.0/8" \
    "listen = unix:$WORK/policyd.sock, inet:127.0.0.1:10931"
: >"$WORK/policyd.log"
if start_daemon "$WORK/perclient.conf"; then
    out=$($PY - "$WORK/policyd.sock" <<'PYEOF'
import socket, sys, time
path = sys.argv[1]
req = b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\nrecipient=a@b.example\n\n"
def conn(inet=False):
    if inet:
        s = socket.create_connection(("127.0.0.1", 10931), timeout=3)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(path)
    return s
def ask(s):
    try:
        s.sendall(req)
        return s.recv(100)
    except OSError as e:
        return b"error"
result = []
for inet in (False, True):
    held = [conn(inet) for _ in range(3)]
    answers = [ask(s) for s in held]
    fourth = conn(inet)
    over = ask(fourth)           # refused: closed without an answer
    held[0].close()
    time.sleep(0.2)
    fifth = conn(inet)
    again = ask(fifth)
    result.append("%s: held=%d over=%r again=%r" % ("inet" if inet else "unix",
                  sum(a.startswith(b"action=") for a in answers), over, again))
    for s in held[1:] + [fourth, fifth]:
        s.close()
    time.sleep(0.2)
print("; ".join(result))
PYEOF
)
    echo "# $out"
    check "unix: a client's first 3 connections are served" grep -q "unix: held=3" <<<"$out"
    check "unix: its 4th is closed unanswered" grep -qE "unix: held=3 over=b'(error)?'" <<<"$out"
    check "unix: a connection is served again once one of its own closed" grep -q "unix: .*again=b'action=DUNNO" <<<"$out"
    check "inet: the same per address" grep -qE "inet: held=3 over=b'(error)?' again=b'action=DUNNO" <<<"$out"
    check "the refusal is logged with the client" grep -q "warning: max_connections_per_client (3): refusing a connection from unix:.*(client uid 0)" "$WORK/policyd.log"
    check "daemon exits 0 on SIGTERM" stop_daemon
else
    not_ok "daemon starts (per client)"
fi

# The listen queue is listen_backlog long (128 by default): a fresh client waits behind at most
# that many queued connections of a flood (ss shows a listening socket's backlog as Send-Q).
backlog() { ss -xlnH | awk -v p="$WORK/policyd.sock" '$5 == p { print $4 }'; }
write_conf "$WORK/bl.conf" "mynetworks = 127.0.0.0/8"
if start_daemon "$WORK/bl.conf"; then
    check "the listen queue is 128 long by default" test "$(backlog)" = 128
    stop_daemon
fi
write_conf "$WORK/bl.conf" "mynetworks = 127.0.0.0/8" "listen_backlog = 50"
if start_daemon "$WORK/bl.conf"; then
    check "listen_backlog = 50: the queue is 50 long" test "$(backlog)" = 50
    stop_daemon
fi
finish
