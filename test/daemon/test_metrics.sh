#!/usr/bin/env bash
# test_metrics.sh - Prometheus metrics and the health check (issue 10, section 3): a scrape
# after known traffic passes `promtool check metrics` and shows exactly that traffic
# (decisions by check and action, requests by reply, the latency histogram, open connections,
# the deadline fallback, DNS queries, SERVFAILs and timeouts by server, reloads by result);
# /health is 200, then 503 with the reason when every DNS server is set aside and while
# stopping; 100 concurrent scrapes and a stalled HTTP client do not hold up policy requests;
# metrics_listen: the default address on loopback, a taken default only warns, a taken
# address written in the file stops the start, empty is off.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
PROMTOOL=$(command -v promtool || true)
DNSPORT=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$PY - "$WORK/zone.json" <<'PYEOF'
import json, sys
names = {
    "8.113.0.203.in-addr.arpa.": [{"type": "PTR", "data": "mail.good.example."}],
    "mail.good.example.": [{"type": "A", "data": "203.0.113.8"}],
    "11.113.0.203.in-addr.arpa.": [{"behaviour": "timeout"}],
    "12.113.0.203.in-addr.arpa.": [{"behaviour": "servfail"}],
}
json.dump({"negative_ttl": 60, "names": names}, open(sys.argv[1], "w"))
PYEOF
$PY "$TESTDIR/../dns/testdns.py" --zone "$WORK/zone.json" --port "$DNSPORT" >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done
MSOCK=$WORK/metrics.sock

# scrape [PATH] - GET PATH (default /metrics) on the test's metrics socket; the body.
scrape() { curl -sS --max-time 10 --unix-socket "$MSOCK" "http://localhost${1:-/metrics}"; }
# status PATH - the HTTP status of GET PATH.
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$MSOCK" "http://localhost$1"; }
# value NAME_WITH_LABELS - the value of one sample in $WORK/m.txt ("" if absent).
value() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/m.txt"; }
# is NAME_WITH_LABELS WANT - the sample has that value.
is() {
    local got
    got=$(value "$1")
    if [ "$got" = "$2" ]; then ok "$1 = $2"; else not_ok "$1 = $2 (got '$got')"; fi
}
# at_least NAME_WITH_LABELS MIN
at_least() {
    local got
    got=$(value "$1")
    if [ -n "$got" ] && awk -v g="$got" -v m="$2" 'BEGIN { exit !(g >= m) }'; then
        ok "$1 >= $2 ($got)"
    else
        not_ok "$1 >= $2 (got '$got')"
    fi
}
# promtool_ok FILE - promtool check metrics finds nothing to say about FILE.
promtool_ok() {
    local out
    out=$("$PROMTOOL" check metrics <"$1" 2>&1) || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "$out"; return 1; }
}

write_conf "$WORK/m.conf" "metrics_listen = unix:$MSOCK" "checks = relay, rdns" \
    "mynetworks = 127.0.0.0/8" "relay_domains = example.com" \
    "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 1s" "dns_tries = 1" "request_deadline = 300ms" \
    "rdns_tempfail_action = DUNNO"
if start_daemon "$WORK/m.conf"; then
    check "metrics socket logged" wait_log "metrics on unix:$MSOCK \(GET /metrics, GET /health\)"
    check "/health: 200 while configured with a working DNS server" test "$(status /health)" = 200
    check "/health says ok" test "$(scrape /health)" = "ok"
    # Known traffic: 2 DUNNO (mynetworks), 1 relay reject, 1 rdns defer (no PTR), 1 SERVFAIL
    # (DUNNO by rdns_tempfail_action), 1 PTR that never answers (the 300 ms deadline: DUNNO).
    req client_address=127.0.0.1 | ask - >/dev/null
    req client_address=127.0.0.1 recipient=x@foreign.example | ask - >/dev/null
    got=$(req client_address=203.0.113.7 client_name=unknown recipient=x@foreign.example | ask - | head -1)
    check "relay attempt refused" grep -q "^action=554" <<<"$got"
    got=$(req client_address=203.0.113.9 client_name=unknown recipient=x@example.com | ask - | head -1)
    check "no PTR: deferred by rdns" grep -q "^action=450" <<<"$got"
    got=$(req client_address=203.0.113.12 client_name=unknown recipient=x@example.com | ask - | head -1)
    check "SERVFAIL: DUNNO" test "$got" = "action=DUNNO"
    got=$(req client_address=203.0.113.11 client_name=unknown recipient=x@example.com | ask - | head -1)
    check "a PTR that never answers: the deadline's DUNNO" test "$got" = "action=DUNNO"
    sleep 1.2 # the timed-out query ends after dns_timeout
    # one connection held open while scraping
    exec 8< <($PY -c "import socket, time; s = socket.socket(socket.AF_UNIX); s.connect('$WORK/policyd.sock'); print('up', flush=True); time.sleep(3)")
    read -r _ <&8
    scrape >"$WORK/m.txt"
    if [ -n "$PROMTOOL" ]; then
        check "promtool check metrics passes on a scrape" promtool_ok "$WORK/m.txt"
    else
        echo "ok promtool check skipped: promtool missing (apt-get install prometheus) # SKIP"
    fi
    check "Content-Type is the text exposition format 0.0.4" \
        bash -c "curl -sS -D - -o /dev/null --unix-socket '$MSOCK' http://localhost/metrics | grep -qi '^Content-Type: text/plain; version=0.0.4'"
    is "policyd_build_info{version=\"$("$POLICYD" -V | cut -d" " -f2)\"}" 1
    is 'policyd_decisions_total{check="relay",action="reject"}' 1
    is 'policyd_diagnoses_total{cause_code="relay.not_mynetworks"}' 1
    is 'policyd_decisions_total{check="rdns",action="defer"}' 1
    is 'policyd_decisions_total{check="relay",action="defer"}' 0
    is 'policyd_requests_total{reply="dunno"}' 4
    is 'policyd_requests_total{reply="reject"}' 1
    is 'policyd_requests_total{reply="defer"}' 1
    is 'policyd_deadline_fallbacks_total' 1
    is 'policyd_request_duration_seconds_count' 6
    is 'policyd_request_duration_seconds_bucket{le="+Inf"}' 6
    at_least 'policyd_request_duration_seconds_bucket{le="0.5"}' 6
    is 'policyd_request_duration_seconds_bucket{le="0.25"}' 5
    at_least 'policyd_request_duration_seconds_sum' 0.29
    is 'policyd_connections_open' 1
    is 'policyd_connections_total' 7
    is 'policyd_connections_max' 4096
    at_least "policyd_dns_queries_total{server=\"127.0.0.1:$DNSPORT\"}" 3
    is "policyd_dns_servfails_total{server=\"127.0.0.1:$DNSPORT\"}" 1
    is "policyd_dns_timeouts_total{server=\"127.0.0.1:$DNSPORT\"}" 1
    is 'policyd_dns_lookup_failures_total{reason="timeout"}' 1
    is 'policyd_dns_lookup_failures_total{reason="servfail"}' 1
    is "policyd_dns_server_set_aside{server=\"127.0.0.1:$DNSPORT\"}" 0
    at_least 'policyd_dns_lookups_total' 4
    is 'policyd_config_reloads_total{result="success"}' 0
    is 'policyd_config_last_reload_successful' 1
    at_least 'process_resident_memory_bytes' 100000
    check "every family has HELP and TYPE, counters end in _total" $PY - "$WORK/m.txt" <<'PYEOF'
import sys
types, helps, bad = {}, set(), []
for line in open(sys.argv[1]):
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
    elif line.startswith("# TYPE "):
        _, _, name, t = line.split()
        types[name] = t
    elif line.strip():
        name = line.split("{")[0].split()[0]
        base = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[: -len(suffix)] in types:
                base = name[: -len(suffix)]
        if base not in types or base not in helps:
            bad.append(name)
for name, t in types.items():
    if (t == "counter") != name.endswith("_total"):
        bad.append(name)
print(bad) if bad else None
sys.exit(1 if bad else 0)
PYEOF
    exec 8<&-
    # The example dashboard queries only what the daemon exports, in valid PromQL.
    check "etc/grafana-policyd.json: JSON, unique panel ids, inside the grid, every metric exported" \
        $PY - "$TESTDIR/../../etc/grafana-policyd.json" "$WORK/m.txt" "$WORK/rules.yml" <<'PYEOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
exported = set()
for line in open(sys.argv[2]):
    if line.startswith("# TYPE "):
        _, _, name, t = line.split()
        exported.update([name + s for s in ("_bucket", "_sum", "_count")] if t == "histogram" else [name])
exported.update(["policyd_deferred_messages", "policyd_deferred_recipients", "policyd_dkim_keys"])  # their own tests
bad, ids, rules = [], set(), []
for p in d["panels"]:
    bad += ["duplicate id %s" % p["id"]] if p["id"] in ids else []
    ids.add(p["id"])
    g = p["gridPos"]
    bad += ["outside the grid: %s" % p["title"]] if g["x"] + g["w"] > 24 or g["w"] < 1 or g["h"] < 1 else []
    for t in p.get("targets", []):
        for name in re.findall(r"\b(policyd_[a-z_]+|process_[a-z_]+)\b", t["expr"]):
            bad += ["not exported: %s" % name] if name not in exported else []
        expr = t["expr"].replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$job", "policyd").replace("$instance", ".*")
        rules.append("      - record: dashboard:%s:%s\n        expr: %s" % (p["id"], t["refId"], json.dumps(expr)))
open(sys.argv[3], "w").write("groups:\n  - name: dashboard\n    rules:\n" + "\n".join(rules) + "\n")
print("\n".join(bad)) if bad else None
sys.exit(1 if bad or d.get("schemaVersion", 0) < 30 or not rules else 0)
PYEOF
    if [ -n "$PROMTOOL" ]; then
        check "the dashboard's queries parse (promtool check rules)" \
            bash -c "out=\$('$PROMTOOL' check rules '$WORK/rules.yml' 2>&1) || { echo \"\$out\"; exit 1; }"
    fi

    # reloads by result
    start_s=$(value policyd_config_last_reload_success_timestamp_seconds)
    sleep 1
    kill -HUP "$DAEMON_PID"
    wait_log "reloaded $WORK/m.conf"
    scrape >"$WORK/m.txt"
    is 'policyd_config_reloads_total{result="success"}' 1
    check "the last good reload's time moves on" test "$(value policyd_config_last_reload_success_timestamp_seconds)" -gt "$start_s"
    echo "relay_domains = \$nosuch" >>"$WORK/m.conf"
    kill -HUP "$DAEMON_PID"
    wait_log "reload refused"
    scrape >"$WORK/m.txt"
    is 'policyd_config_reloads_total{result="failure"}' 1
    is 'policyd_config_last_reload_successful' 0

    # HTTP odds and ends
    check "HEAD /metrics: 200" test "$(curl -s -o /dev/null -w '%{http_code}' -I --unix-socket "$MSOCK" http://localhost/metrics)" = 200
    check "an unknown path: 404" test "$(status /nope)" = 404
    check "POST is not served" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST --unix-socket "$MSOCK" http://localhost/metrics)" -ge 400

    # Scrapes never hold up policy requests: a client that stalls half way through its HTTP
    # request, and 100 scrapes at once, while requests are timed.
    check "100 concurrent scrapes all answered, policy requests meanwhile all under 100 ms" $PY - "$MSOCK" "$WORK/policyd.sock" <<'PYEOF'
import socket, sys, threading, time
msock, psock = sys.argv[1], sys.argv[2]
stall = socket.socket(socket.AF_UNIX); stall.connect(msock); stall.sendall(b"GET /metr")
ok, lat = [], []
def scrape():
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(msock)
    s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        c = s.recv(65536)
        if not c: break
        data += c
    ok.append(data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200"))
req = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\n"
       b"sender=a@example.org\nrecipient=b@example.com\n\n")
p = socket.socket(socket.AF_UNIX); p.settimeout(5); p.connect(psock)
threads = [threading.Thread(target=scrape) for _ in range(100)]
for t in threads: t.start()
for _ in range(200):
    t0 = time.monotonic(); p.sendall(req); buf = b""
    while not buf.endswith(b"\n\n"): buf += p.recv(4096)
    lat.append(time.monotonic() - t0)
for t in threads: t.join()
lat.sort()
print("scrapes ok: %d of 100; policy requests: %d, max %.1f ms, p99 %.1f ms" %
      (sum(ok), len(lat), lat[-1] * 1000, lat[int(len(lat) * 0.99) - 1] * 1000), file=sys.stderr)
sys.exit(0 if sum(ok) == 100 and lat[-1] < 0.1 else 1)
PYEOF

    # every DNS server set aside: unhealthy, with the reason
    DEAD=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    $PY -c "import socket, time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', $DEAD)); time.sleep(60)" &
    SILENT=$!
    write_conf "$WORK/m.conf" "metrics_listen = unix:$MSOCK" "checks = relay, rdns" "mynetworks = 127.0.0.0/8" \
        "relay_domains = example.com" "dns_servers = 127.0.0.1:$DEAD" "dns_timeout = 100ms" "dns_tries = 1"
    kill -HUP "$DAEMON_PID"
    wait_log "reloaded $WORK/m.conf"
    for a in 21 22 23; do req client_address=203.0.113.$a client_name=unknown recipient=x@example.com | ask - >/dev/null; done
    check "/health: 503 when every DNS server is set aside" test "$(status /health)" = 503
    check "/health names the server" grep -q "^unhealthy: no usable DNS server: 127.0.0.1:$DEAD set aside after timing out" < <(scrape /health)
    scrape >"$WORK/m.txt"
    is 'policyd_dns_servers_set_aside' 1
    is "policyd_dns_server_set_aside{server=\"127.0.0.1:$DEAD\"}" 1
    at_least "policyd_dns_timeouts_total{server=\"127.0.0.1:$DEAD\"}" 2
    check "the first server's counters are gone with it, not reset" test -z "$(value "policyd_dns_queries_total{server=\"127.0.0.1:$DNSPORT\"}")"
    kill "$SILENT" 2>/dev/null

    # stopping: 503 while requests in flight are answered
    write_conf "$WORK/m.conf" "metrics_listen = unix:$MSOCK" "checks = relay, rdns" "mynetworks = 127.0.0.0/8" \
        "relay_domains = example.com" "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 2s" "request_deadline = 1500ms"
    kill -HUP "$DAEMON_PID"
    sleep 0.5
    req client_address=203.0.113.11 client_name=unknown recipient=x@example.com | ask - >"$WORK/late.out" &
    LATE=$!
    sleep 0.3
    kill -TERM "$DAEMON_PID"
    sleep 0.3
    check "/health: 503 'stopping' while the last requests are answered" grep -qx "unhealthy: stopping" < <(scrape /health)
    wait "$LATE"
    check "and the request in flight was answered" grep -qx "action=DUNNO" "$WORK/late.out"
    rc=0
    wait "$DAEMON_PID" || rc=$? # the first SIGTERM ends it: no second one
    DAEMON_PID=
    check "SIGTERM: exit 0" test "$rc" = 0
    check "the metrics unix socket is removed at exit" test ! -e "$MSOCK"
fi

# metrics_listen: the default, a taken default, a taken written address, empty. Something else
# of this machine's may hold 9131 (another policyd): then the checks that need it free skip.
TAKEN=0
(exec 3<>/dev/tcp/127.0.0.1/9131) 2>/dev/null && TAKEN=1
if [ "$TAKEN" = 0 ]; then
    write_conf "$WORK/d.conf"
    if start_daemon "$WORK/d.conf"; then
        check "default metrics_listen: inet:127.0.0.1:9131" wait_log "metrics on inet:127.0.0.1:9131"
        check "served there" bash -c "curl -sf http://127.0.0.1:9131/metrics | grep -q '^policyd_build_info'"
        # a second daemon on another socket: the default is taken, a warning, no metrics
        write_conf "$WORK/d2.conf"
        sed -i "s|$WORK/policyd.sock|$WORK/second.sock|; s|$WORK/policyd.log|$WORK/second.log|" "$WORK/d2.conf"
        "$POLICYD" -c "$WORK/d2.conf" -f 2>>"$WORK/stderr" &
        SECOND=$!
        for _ in $(seq 1 100); do [ -S "$WORK/second.sock" ] && break; sleep 0.05; done
        check "a second instance finds the default taken: it warns and serves without metrics" \
            grep -q "warning: no metrics: inet:127.0.0.1:9131: bind: Address already in use (the default metrics_listen" "$WORK/second.log"
        check "and answers policy requests" grep -qx "action=DUNNO" < <(req client_address=127.0.0.1 | $PY "$TESTDIR/client.py" "$WORK/second.sock" -)
        kill -TERM "$SECOND"
        wait "$SECOND"
        # the same address written in the file: refused at start
        write_conf "$WORK/d3.conf" "metrics_listen = inet:127.0.0.1:9131"
        sed -i "s|$WORK/policyd.sock|$WORK/third.sock|" "$WORK/d3.conf"
        out=$("$POLICYD" -c "$WORK/d3.conf" -f 2>&1)
        rc=$?
        check "a written metrics_listen that is taken stops the start (exit 1, the reason)" \
            test "$rc" = 1 -a -n "$(grep -F 'cannot start: inet:127.0.0.1:9131: bind: Address already in use (metrics_listen; empty turns metrics off)' <<<"$out")"
        stop_daemon
    fi
else
    echo "ok default metrics_listen checks skipped: 127.0.0.1:9131 is in use here # SKIP"
fi
: >"$WORK/policyd.log"
write_conf "$WORK/off.conf" "metrics_listen ="
if start_daemon "$WORK/off.conf"; then
    check "metrics_listen empty: no metrics line in the log" bash -c "! grep -q 'metrics on' '$WORK/policyd.log'"
    if [ "$TAKEN" = 0 ]; then
        check "metrics_listen empty: nothing on 9131" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/9131) 2>/dev/null"
    else
        echo "ok metrics_listen empty: nothing on 9131 skipped: it was in use before the test # SKIP"
    fi
    stop_daemon
fi
printf 'metrics_listen = inet:localhost:9131\npostfix_config_directory =\n' >"$WORK/bad.conf"
out=$("$POLICYD" -c "$WORK/bad.conf" -t 2>&1)
check "a bad metrics_listen is refused with FILE:LINE" grep -q "^$WORK/bad.conf:1: metrics_listen: 'inet:localhost:9131' is not inet:ADDRESS:PORT" <<<"$out"
kill "$DNS_PID" 2>/dev/null
finish
