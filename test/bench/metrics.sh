#!/usr/bin/env bash
# metrics.sh BUILD_DIR - the cost of Prometheus scrapes under load (issue 10, section 3): the
# relay load of run.sh (100 connections, every recipient accepted) alone, then while 100
# scrapers fetch /metrics in bursts of 100 at once every second (a hundred Prometheus servers
# scraping at the same moment), then while 100 scrapers fetch it back to back. Prints the
# policy requests' p50 / p99 / p99.9 for each and what the scrapers saw. Run by run.sh.
# SPDX-License-Identifier: MIT
set -u
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
LOADGEN=$BUILD/bench/loadgen
SCRAPER=$BUILD/bench/scraper
POLICYD=${POLICYD:-policyd/policyd}
SECONDS_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-100}
TMP=$(mktemp -d /tmp/policyd-bench-metrics.XXXXXX)
ulimit -n 65536 2>/dev/null || ulimit -n 4096
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
field() { sed -n "s/.* $1=\([0-9.-]*\).*/\1/p" <<<"$2" | tail -1; }
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$TMP/p.conf" <<CONF
listen = unix:$TMP/p.sock
user = root
log_file = $TMP/p.log
postfix_config_directory =
mynetworks = 127.0.0.0/8
relay_domains = example.com
checks = relay
metrics_listen = inet:127.0.0.1:$PORT
queue_watch_interval = 0
CONF
"$POLICYD" -c "$TMP/p.conf" -f &
PID=$!
for _ in $(seq 1 100); do [ -S "$TMP/p.sock" ] && break; sleep 0.05; done
size=$(curl -s "http://127.0.0.1:$PORT/metrics" | wc -c)
one=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/metrics")

run_load() { "$LOADGEN" -s "unix:$TMP/p.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -m hosted -p "$PID"; }
echo "== policyd, relay, all accepted, $CONNS connections, no scrapes"
base=$(run_load)
echo "$base" | head -1
echo "== the same while 100 scrapes run at once every second"
"$SCRAPER" -s "inet:127.0.0.1:$PORT" -c 100 -i 1 -d $((SECONDS_RUN + 3)) >"$TMP/burst.out" 2>&1 &
SPID=$!
burst=$(run_load)
wait "$SPID"
echo "$burst" | head -1
burst_s=$(tail -1 "$TMP/burst.out")
echo "$burst_s"
echo "== the same while 100 scrapers scrape back to back"
"$SCRAPER" -s "inet:127.0.0.1:$PORT" -c 100 -d $((SECONDS_RUN + 3)) >"$TMP/flood.out" 2>&1 &
SPID=$!
flood=$(run_load)
wait "$SPID"
echo "$flood" | head -1
flood_s=$(tail -1 "$TMP/flood.out")
echo "$flood_s"

lat() { echo "$(field p50_us "$1") / $(field p99_us "$1") / $(field p999_us "$1")"; }
echo
echo "| load | requests/s | p50 / p99 / p99.9 (us) | scrapes (errors); scrape p50 / p99 / max (ms) |"
echo "| --- | --- | --- | --- |"
echo "| no scrapes | $(field rps "$base") | $(lat "$base") | one scrape: $size bytes, $(awk -v t="$one" 'BEGIN { printf "%.2f", t * 1000 }') ms |"
echo "| 100 scrapes at once every second | $(field rps "$burst") | $(lat "$burst") | $(field scrapes "$burst_s") ($(field errors "$burst_s")); $(field p50_ms "$burst_s") / $(field p99_ms "$burst_s") / $(field max_ms "$burst_s") |"
echo "| 100 scrapers back to back | $(field rps "$flood") | $(lat "$flood") | $(field scrapes "$flood_s") ($(field errors "$flood_s")), $(field per_second "$flood_s")/s; $(field p50_ms "$flood_s") / $(field p99_ms "$flood_s") / $(field max_ms "$flood_s") |"
