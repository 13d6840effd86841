#!/usr/bin/env bash
# test_backpressure.sh - bounded buffers (issue 12): a client that pipelines requests as fast as
# it can (up to 1 GB, for at most 10 s) and never reads its replies costs the daemon a bounded
# amount of memory (VmRSS from /proc, sampled all along: < +10 MB), is closed at write_timeout
# with a log line, and other clients are answered at once meanwhile.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

# Under AddressSanitizer freed memory is held in a quarantine (256 MB by default) and RSS grows
# with every request served: keep it small, so that RSS measures what the daemon holds.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
write_conf "$WORK/bp.conf" "write_timeout = 2s" "mynetworks = 127.0.0.0/8" \
    "relay_domains = example.com"
if start_daemon "$WORK/bp.conf"; then
    out=$($PY - "$WORK/policyd.sock" "$DAEMON_PID" <<'PYEOF'
import socket, sys, time
path, pid = sys.argv[1], int(sys.argv[2])
def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s
req = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=203.0.113.7\n"
       b"sender=a@example.org\nrecipient=b@foreign.example\n\n")   # a reject: a long reply
chunk = req * (65536 // len(req))
# Warm up: the daemon's steady memory once it has served a few requests.
w = conn()
for _ in range(200):
    w.sendall(req)
    w.recv(200)
w.close()
before = peak = rss_kb()
s = conn()
s.setblocking(False)
sent, t0, stalled_at, closed_at, other_ms = 0, time.time(), None, None, None
while sent < (1 << 30) and time.time() - t0 < 10:
    try:
        n = s.send(chunk)
        sent += n
        stalled_at = None
    except BlockingIOError:
        if stalled_at is None:
            stalled_at = time.time()
        time.sleep(0.01)
    except OSError:          # closed by the daemon (EPIPE / ECONNRESET)
        closed_at = time.time()
        break
    peak = max(peak, rss_kb())
    if other_ms is None and sent > (1 << 18):
        # Meanwhile another client is answered at once.
        o = conn(); t1 = time.time(); o.sendall(req); o.recv(200); o.close()
        other_ms = (time.time() - t1) * 1000
if closed_at is None:
    # Sending stalled: wait (bounded) for the daemon to give up on the non-reader.
    while time.time() - t0 < 12:
        try:
            s.send(b"x")
        except BlockingIOError:
            pass
        except OSError:
            closed_at = time.time()
            break
        peak = max(peak, rss_kb())
        time.sleep(0.05)
stall_to_close = (closed_at - stalled_at) if closed_at and stalled_at else -1
print("sent_mb=%.1f before_kb=%d peak_kb=%d growth_kb=%d closed=%s stall_to_close=%.1f other_ms=%s" % (
    sent / 1048576.0, before, peak, peak - before, closed_at is not None, stall_to_close,
    "%.1f" % other_ms if other_ms is not None else "none"))
PYEOF
)
    echo "# $out"
    growth=$(sed -n 's/.*growth_kb=\([0-9-]*\).*/\1/p' <<<"$out")
    check "a client that never reads: daemon RSS grows ${growth:-?} kB (bound 10240 kB)" test "${growth:-999999}" -lt 10240
    check "it is closed once it has taken no reply for write_timeout" grep -q "closed=True" <<<"$out"
    stc=$(sed -n 's/.*stall_to_close=\([0-9.-]*\).*/\1/p' <<<"$out")
    check "closed ${stc:-?} s after its sending stalled (write_timeout 2 s; bound 1.5-5 s)" \
        awk -v a="${stc:--1}" 'BEGIN { exit !(a >= 1.5 && a <= 5) }'
    check "the close is logged with the peer and the reason" \
        grep -qE "warning: closing policy connection from unix:.*: it took none of its replies for 2 s \(write_timeout\); [0-9]+ bytes unsent" "$WORK/policyd.log"
    other=$(sed -n 's/.*other_ms=\([0-9]*\).*/\1/p' <<<"$out")
    check "another client meanwhile is answered at once (${other:-?} ms, bound 500 ms)" test "${other:-99999}" -lt 500
    check "daemon still running" alive
    check "daemon exits 0 on SIGTERM" stop_daemon
else
    not_ok "daemon starts"
fi
finish
