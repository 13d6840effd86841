#!/usr/bin/env bash
# run.sh BUILD_DIR - make bench: the load generator against the reference DUNNO server and
# against policyd (relay check), 100 connections over a unix socket, then 1,000 idle
# connections. Prints a summary with the targets (>= 80% of the reference's requests/s,
# p99 < 1 ms, 1,000 idle connections < 10 MB). Scenarios are functions: add more below.
# Then the SPF check: warm cache, cold cache with a 20 ms DNS round trip, a dead domain.
# Then a flood of refusals from a few clients (issue 13): log bytes per refused request with
# every diagnosis in full and with short repeats, and requests/s against the reference.
# Then ratelimit and greylist on LMDB, and ratelimit on Redis (with each side's CPU per
# decision and Redis's decisions per script call).
# Last, test/bench/metrics.sh: the same relay load with 100 Prometheus scrapes at once.
# BENCH_ONLY=main|slots|flood|state|spf|metrics runs one part alone; BENCH_SPF_CONNS sets the
# cold-cache connections; BENCH_FLOOD_RCPTS the recipients per message of the flood (10).
# SPDX-License-Identifier: MIT
set -u
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
LOADGEN=$BUILD/bench/loadgen
REF=$BUILD/bench/refserver
POLICYD=${POLICYD:-policyd/policyd}
SECONDS_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-100}
TMP=$(mktemp -d /tmp/policyd-bench.XXXXXX)
# Descriptors: 65,536 where root may raise the hard limit, else as many as the hard limit allows
# (the idle flood needs 20,000; "ulimit -n N" alone would lower the hard limit too).
ulimit -n 65536 2>/dev/null || ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || ulimit -n 4096
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

wait_socket() {
    for _ in $(seq 1 100); do [ -S "$1" ] && return 0; sleep 0.05; done
    return 1
}
field() { sed -n "s/.* $1=\([0-9.-]*\).*/\1/p" <<<"$2" | tail -1; }
# part NAME - run this part (all of them unless BENCH_ONLY names one)
part() { [ -z "${BENCH_ONLY:-}" ] || [ "$BENCH_ONLY" = "$1" ]; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }'; }

# start_policyd NAME [config lines] - the daemon on $TMP/NAME.sock; sets PID.
start_policyd() {
    local name=$1
    shift
    {
        echo "listen = unix:$TMP/$name.sock"
        echo "user = root"
        echo "log_file = $TMP/$name.log"
        echo "postfix_config_directory ="
        echo "mynetworks = 127.0.0.0/8"
        echo "relay_domains = example.com"
        for l in "$@"; do echo "$l"; done
    } >"$TMP/$name.conf"
    "$POLICYD" -c "$TMP/$name.conf" -f &
    PID=$!
    pids+=("$PID")
    wait_socket "$TMP/$name.sock"
}

# cpu_ticks PID - user + system CPU time of PID so far, in clock ticks (1/100 s).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# --- State store (issue 11): ratelimit and greylist on LMDB against relay-only, all accepted.
# ratelimit: two rules (sender, client network) with limits never reached, so every request is
# two reservations written to LMDB. greylist, known triplets: greylist_policy = all with
# greylist_delay = 0, so after the warm-up every request is a pass (the AWL counter read, the
# triplet read, its pass refreshed: one write); greylist, every request greylisted (warn mode):
# the same step for triplets still in their delay, and each answer's "would defer" diagnosis
# written to the log (the cost of logging every deferral, shown apart). The four run in turns,
# BENCH_STATE_ROUNDS rounds (3) of BENCH_STATE_SECONDS (5) each, and the medians are compared:
# on a shared 2-core machine the speed drifts by 10-20% within a minute, and one run of each
# taken a minute apart measured the drift more than the store. BENCH_ONLY=state runs these
# alone.
st_round() { # st_round NAME [config lines] - one measured run; prints loadgen's output
    local name=$1
    shift
    start_policyd "$name" "$@"
    "$LOADGEN" -s "unix:$TMP/$name.sock" -c "$CONNS" -d "${BENCH_STATE_SECONDS:-5}" -w 2 -m hosted -p "$PID"
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    rm -rf "$TMP/$name.lmdb" "$TMP/$name.log" # a warn-mode log grows by ~30 MB/s
}
# st_median OUTPUTS... - the output whose requests/s is the median
st_median() {
    local o
    for o in "$@"; do printf '%s\t%s\n' "$(field rps "$o")" "$(tr '\n' '\r' <<<"$o")"; done |
        sort -n | awk -F '\t' '{ l[NR] = $2 } END { print l[int((NR + 1) / 2)] }' | tr '\r' '\n'
}
state_bench() {
    local rl_rules="ratelimit_rules = { name=snd key=sender count=recipients limits=1000000000/1h,100000000/10m }, { name=net key=client_network count=recipients limits=1000000000/1h }"
    local relay=() rl=() gp=() gw=() line
    echo "== state store on LMDB against relay-only, $CONNS connections, ${BENCH_STATE_ROUNDS:-3} rounds in turns"
    for round in $(seq 1 "${BENCH_STATE_ROUNDS:-3}"); do
        line=$(st_round strelay "checks = relay")
        relay+=("$line")
        echo "round $round relay-only: $(head -1 <<<"$line")"
        line=$(st_round strl "checks = relay, ratelimit" "state_store = lmdb:$TMP/strl.lmdb" "$rl_rules")
        rl+=("$line")
        echo "round $round ratelimit (2 rules): $(head -1 <<<"$line")"
        line=$(st_round stgp "checks = relay, greylist" "state_store = lmdb:$TMP/stgp.lmdb" \
            "greylist_policy = all" "greylist_delay = 0")
        gp+=("$line")
        echo "round $round greylist, known triplets: $(head -1 <<<"$line")"
        line=$(st_round stgw "checks = relay, greylist" "state_store = lmdb:$TMP/stgw.lmdb" \
            "greylist_policy = all" "greylist_mode = warn")
        gw+=("$line")
        echo "round $round greylist, every request greylisted (warn, logged): $(head -1 <<<"$line")"
    done
    st_relay_out=$(st_median "${relay[@]}")
    st_rl_out=$(st_median "${rl[@]}")
    st_gl_out=$(st_median "${gp[@]}")
    st_gw_out=$(st_median "${gw[@]}")
    echo "medians: relay-only $(field rps "$st_relay_out"), ratelimit $(field rps "$st_rl_out"), greylist known $(field rps "$st_gl_out"), greylist warn $(field rps "$st_gw_out") requests/s"
    st_redis_out=
    if command -v redis-server >/dev/null; then
        echo "== policyd, checks = relay, ratelimit on Redis (unix socket; 1 rule: every request one decision, batched per loop turn), $CONNS connections"
        redis-server --port 0 --unixsocket "$TMP/r.sock" --save '' --appendonly no --daemonize no >"$TMP/redis.log" 2>&1 &
        local rpid=$!
        pids+=("$rpid")
        wait_socket "$TMP/r.sock"
        start_policyd strr "checks = relay, ratelimit" "state_store = redis:unix:$TMP/r.sock" \
            "ratelimit_rules = { name=snd key=sender count=recipients limits=1000000000/1h,100000000/10m }"
        # CPU per decision of each side (utime + stime from /proc, 10 ms ticks) and Redis's
        # own count of script calls (batches) and microseconds in them, over the measured part.
        "$LOADGEN" -s "unix:$TMP/strr.sock" -c "$CONNS" -d 2 -w 0 -m hosted >/dev/null
        redis-cli -s "$TMP/r.sock" config resetstat >/dev/null 2>&1
        local r0 p0 t0 r1 p1 t1
        r0=$(cpu_ticks "$rpid") p0=$(cpu_ticks "$PID") t0=$(date +%s.%N)
        st_redis_out=$("$LOADGEN" -s "unix:$TMP/strr.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 0 -m hosted -p "$PID")
        r1=$(cpu_ticks "$rpid") p1=$(cpu_ticks "$PID") t1=$(date +%s.%N)
        echo "$st_redis_out" | head -1
        st_redis_fail=$(grep -c "state store .* is down" "$TMP/strr.log")
        local cs
        cs=$(redis-cli -s "$TMP/r.sock" info commandstats 2>/dev/null | tr -d '\r' | grep -E '^cmdstat_eval(sha)?:')
        st_redis_cpu=$(awk -v r=$((r1 - r0)) -v p=$((p1 - p0)) -v t0="$t0" -v t1="$t1" \
            -v rps="$(field rps "$st_redis_out")" -v cs="$cs" 'BEGIN {
                n = rps * (t1 - t0); calls = 0; us = 0
                k = split(cs, l, "\n")
                for (i = 1; i <= k; i++) {
                    if (match(l[i], /calls=[0-9]+/)) calls += substr(l[i], RSTART + 6, RLENGTH - 6)
                    if (match(l[i], /usec=[0-9]+/)) us += substr(l[i], RSTART + 5, RLENGTH - 5)
                }
                printf "redis-server %.1f us CPU per decision (%.0f%% of a core), %.1f decisions per script call, %.1f us in the script per decision; policyd %.1f us CPU per decision (%.0f%% of a core)",
                    r * 10000 / n, r / (t1 - t0), (calls ? n / calls : 0), (n ? us / n : 0), p * 10000 / n, p / (t1 - t0) }')
        echo "$st_redis_cpu"
        kill "$PID" "$rpid" 2>/dev/null
    fi
}
state_rows() {
    local b r g w
    b=$(field rps "$st_relay_out")
    r=$(field rps "$st_rl_out")
    g=$(field rps "$st_gl_out")
    w=$(field rps "$st_gw_out")
    rr=$(pct "$r" "$b")
    gr=$(pct "$g" "$b")
    echo "| ratelimit on LMDB, 2 rules, $CONNS connections (median of ${BENCH_STATE_ROUNDS:-3} rounds in turns): requests/s; p99 (us) | $b (relay-only) | $r ($rr%); $(field p99_us "$st_rl_out") | >= 70% of relay-only | $(verdict $((rr >= 70))) |"
    echo "| greylist on LMDB, known triplets (every request a pass), $CONNS connections (median): requests/s; p99 (us) | $b (relay-only) | $g ($gr%); $(field p99_us "$st_gl_out") | >= 70% of relay-only | $(verdict $((gr >= 70))) |"
    echo "| greylist on LMDB, every request greylisted (warn mode: a 'would defer' diagnosis logged each), $CONNS connections (median): requests/s; p99 (us) | $b (relay-only) | $w ($(pct "$w" "$b")%); $(field p99_us "$st_gw_out") | (shown apart: the cost of logging every deferral) | |"
    if [ -n "$st_redis_out" ]; then
        local x p
        x=$(field rps "$st_redis_out")
        p=$(field p99_us "$st_redis_out")
        echo "| ratelimit on Redis (unix socket), $CONNS connections: decisions/s; p99 (us); breaker trips | $b (relay-only) | $x; $p; $st_redis_fail ($st_redis_cpu) | >= 30,000/s, p99 < 3000 us | $(verdict $((x >= 30000 && ${p%.*} < 3000))) |"
    fi
}

if part main; then
echo "== reference server (answers DUNNO), $CONNS connections, ${SECONDS_RUN}s"
"$REF" -s "unix:$TMP/ref.sock" &
REF_PID=$!
pids+=("$REF_PID")
wait_socket "$TMP/ref.sock"
ref_out=$("$LOADGEN" -s "unix:$TMP/ref.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -p "$REF_PID")
echo "$ref_out" | head -1

echo "== policyd, checks = relay, $CONNS connections, ${SECONDS_RUN}s"
start_policyd relay "checks = relay"
RELAY_PID=$PID
relay_out=$("$LOADGEN" -s "unix:$TMP/relay.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -p "$RELAY_PID")
echo "$relay_out" | head -1

echo "== policyd, checks = relay, every recipient accepted (no diagnosis lines), $CONNS connections"
hosted_out=$("$LOADGEN" -s "unix:$TMP/relay.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -m hosted -p "$RELAY_PID")
echo "$hosted_out" | head -1

echo "== policyd, 1,000 idle connections"
idle_out=$("$LOADGEN" -s "unix:$TMP/relay.sock" -i 1000 -p "$RELAY_PID")
echo "$idle_out" | head -1

# --- DNS checks (issue 3): the suite's DNS server on loopback serves the data. ---
DNSPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/bin/python3 - "$TMP/zone.json" <<'PYEOF'
import json, sys
n = {}
for i in range(1, 65):
    n["%d.100.51.198.in-addr.arpa." % i] = [{"type": "PTR", "data": "mail%d.pool.example." % i}]
    n["mail%d.pool.example." % i] = [{"type": "A", "data": "198.51.100.%d" % i}]
n["11.113.0.203.in-addr.arpa."] = [{"behaviour": "timeout"}]
json.dump({"negative_ttl": 3600, "names": n}, open(sys.argv[1], "w"))
PYEOF
/usr/bin/python3 test/dns/testdns.py --zone "$TMP/zone.json" --port "$DNSPORT" >"$TMP/dns.out" 2>&1 &
pids+=("$!")
for _ in $(seq 1 50); do grep -q ready "$TMP/dns.out" && break; sleep 0.1; done
DNSCONF=("checks = relay, dnsbl, rdns" "dns_servers = 127.0.0.1:$DNSPORT" "dnsbl_sites = bl.test"
    "dns_timeout = 5s" "dns_tries = 1" "request_deadline = 1s")

echo "== policyd, checks = relay, dnsbl, rdns, warm cache, $CONNS connections"
start_policyd dnswarm "${DNSCONF[@]}"
"$LOADGEN" -s "unix:$TMP/dnswarm.sock" -c 10 -d 1 -w 0 -A pool >/dev/null # fill the cache
warm_out=$("$LOADGEN" -s "unix:$TMP/dnswarm.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -A pool -m hosted -p "$PID")
echo "$warm_out" | head -1

echo "== head of line: connection 0 asks about a client whose PTR never answers"
hol_out=$("$LOADGEN" -s "unix:$TMP/dnswarm.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -A pool -m hosted -x 203.0.113.11)
echo "$hol_out" | head -2
hol_deadline=$(grep -c "deadline: no answer after 1000 ms" "$TMP/dnswarm.log")

echo "== 1,000 connections, every request from a new address (fresh DNS each time)"
start_policyd dnsfresh "${DNSCONF[@]}"
fresh_out=$("$LOADGEN" -s "unix:$TMP/dnsfresh.sock" -c 1000 -d "$SECONDS_RUN" -w 1 -A fresh -p "$PID")
echo "$fresh_out" | head -1
fresh_fds=$(ls /proc/"$PID"/fd | wc -l)

# --- Recipient decisions (issue 5): a 1,000,000-entry lmdb table built by postmap. ---
echo "== recipient table: 1,000,000 entries (postmap lmdb)"
mkdir -p "$TMP/pf"
echo "compatibility_level = 3.6" >"$TMP/pf/main.cf"
awk 'BEGIN { for (i = 0; i < 1000000; i++) printf "user%d@example.com example.com/user%d/\n", i, i }' >"$TMP/vmailbox"
PATH="$PATH:/usr/sbin" postmap -c "$TMP/pf" "lmdb:$TMP/vmailbox"
start_policyd relayusers "checks = relay"
relayusers_out=$("$LOADGEN" -s "unix:$TMP/relayusers.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -A users -p "$PID")
echo "$relayusers_out" | head -1
start_policyd rcpt "checks = relay, recipient" "virtual_mailbox_domains = example.com" \
    "recipient_maps = lmdb:$TMP/vmailbox"
rcpt_out=$("$LOADGEN" -s "unix:$TMP/rcpt.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -A users -p "$PID")
echo "$rcpt_out" | head -1
fi

# --- A flood of refusals (issue 13): 4 clients (a quarter of the connections each, like a few
# bots with many sessions), every request a relay probe that is refused, messages of
# FLOOD_RCPTS recipients (a spam run), a new instance (message) each. Once with every
# diagnosis in full (diagnosis_repeat_interval = 0: the lines as before issue 13), once with the
# default (a cause explained once per client and interval, and for each message's first
# recipient; the rest short). Log bytes per refused request from the log file's growth during
# the run; the reference server answers the same load. Then every probe its own message (1
# recipient): each is a message's first recipient, so each is explained in full.
FLOOD_RCPTS=${BENCH_FLOOD_RCPTS:-10}
# flood NAME RCPTS [config lines] - sets FLOOD_OUT (the load generator's output) and FLOOD_BPR
# (log bytes per refused request).
flood() {
    local name=$1 rcpts=$2 b0 b1 refused
    shift 2
    start_policyd "$name" "checks = relay" "$@"
    local pid=$PID
    sleep 0.2
    b0=$(stat -c %s "$TMP/$name.log")
    FLOOD_OUT=$("$LOADGEN" -s "unix:$TMP/$name.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -m refused -M "$rcpts" -p "$pid")
    kill "$pid"
    wait "$pid" 2>/dev/null
    b1=$(stat -c %s "$TMP/$name.log")
    refused=$(sed -n 's/.* other \([0-9]*\),.*/\1/p' <<<"$FLOOD_OUT")
    FLOOD_BPR=$(((b1 - b0) / (refused > 0 ? refused : 1)))
    echo "$FLOOD_OUT" | head -1
    echo "log: $((b1 - b0)) bytes for $refused refused requests: $FLOOD_BPR bytes each" \
        "($(grep -c '; cause=' "$TMP/$name.log") full lines, $(grep -c '; as explained at ' "$TMP/$name.log") short)"
    rm -f "$TMP/$name.log"
}
if part slots; then
# --- Fair slots (issue 12): an idle flood of 20,000 connections against max_connections 4096;
# a fresh client every 10 ms times connect-to-answer. Then the same with every connection the
# daemon closes reopened at once (a reconnect storm). loadgen raises its descriptor limit to the
# hard limit; the daemon raises its own.
echo "== policyd, idle flood: 20,000 connections against max_connections 4096 (listen_backlog 128), a fresh client every 10 ms"
start_policyd slots "checks = relay"
FLOOD_PID=$PID
slots_out=$("$LOADGEN" -s "unix:$TMP/slots.sock" -F 20000 -d 5 -p "$FLOOD_PID")
echo "$slots_out" | head -2
echo "== the same, each connection the daemon closes reopened at once (a reconnect storm)"
storm_out=$("$LOADGEN" -s "unix:$TMP/slots.sock" -F 20000 -R -d 5 -p "$FLOOD_PID")
echo "$storm_out" | head -2
kill "$FLOOD_PID" 2>/dev/null
fi

if part flood; then
echo "== reference server, every request a relay probe from 4 clients, $FLOOD_RCPTS recipients per message"
"$REF" -s "unix:$TMP/reffl.sock" &
REFFL_PID=$!
pids+=("$REFFL_PID")
wait_socket "$TMP/reffl.sock"
reffl_out=$("$LOADGEN" -s "unix:$TMP/reffl.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -m refused -M "$FLOOD_RCPTS" -p "$REFFL_PID")
echo "$reffl_out" | head -1
kill "$REFFL_PID"
echo "== policyd, the same flood, every diagnosis in full (diagnosis_repeat_interval = 0)"
flood floodfull "$FLOOD_RCPTS" "diagnosis_repeat_interval = 0"
floodfull_out=$FLOOD_OUT floodfull_bpr=$FLOOD_BPR
echo "== policyd, the same flood, short repeats (diagnosis_repeat_interval = 10m, the default)"
flood floodshort "$FLOOD_RCPTS"
floodshort_out=$FLOOD_OUT floodshort_bpr=$FLOOD_BPR
echo "== policyd, every probe its own message (1 recipient), in full and with short repeats"
flood floodone0 1 "diagnosis_repeat_interval = 0"
floodone0_bpr=$FLOOD_BPR
flood floodone 1
floodone_out=$FLOOD_OUT floodone_bpr=$FLOOD_BPR
fi
if part state; then state_bench; fi

# --- SPF (checks = spf). Scenario 1: testdns.py serves 8 warm domains, each record with an
# include; a new instance (message) per request, so every request is evaluated from the DNS
# cache. Scenarios 2 and 3: every sender a new domain, answered 20 ms later by delaydns (a C
# responder: testdns.py, one asyncio loop, needs most of a core for a few thousand queries/s
# and on a busy 2-core machine caps the rate near 2,500-3,000/s, measuring itself instead of
# the daemon; a short run against it shows its figure). dns.c asks its servers in order (live
# servers first), so several testdns.py instances would not share the load.
if part spf; then
SPF_CONNS=${BENCH_SPF_CONNS:-200}
SPFCONF=("checks = spf" "myhostname = bench.example" "spf_skip_mynetworks = no"
    "spf_check_helo = no" "dns_timeout = 500ms" "dns_tries = 1" "request_deadline = 1s")
/usr/bin/python3 test/dns/testdns.py --zone test/bench/spf-zone.yaml --port 0 --control 0 \
    >"$TMP/spfdns.out" 2>&1 &
pids+=("$!")
for _ in $(seq 1 50); do grep -q ready "$TMP/spfdns.out" && break; sleep 0.1; done
SPFDNS_PORT=$(sed -n 's/ready port=\([0-9]*\).*/\1/p' "$TMP/spfdns.out")
SPFDNS_CTL=$(sed -n 's/.*control=\([0-9]*\).*/\1/p' "$TMP/spfdns.out")
dns_count() { /usr/bin/python3 test/dns/testdns.py --ctl "127.0.0.1:$SPFDNS_CTL" count | sed -n 's/^ok \([0-9]*\).*/\1/p'; }

echo "== policyd, checks = spf, warm cache: 8 sender domains (ip4 + include), a new message per request, $CONNS connections"
start_policyd spfwarm "${SPFCONF[@]}" "dns_servers = 127.0.0.1:$SPFDNS_PORT"
"$LOADGEN" -s "unix:$TMP/spfwarm.sock" -c 10 -d 1 -w 0 -S warm >/dev/null # fill the cache
q0=$(dns_count)
spfwarm_out=$("$LOADGEN" -s "unix:$TMP/spfwarm.sock" -c "$CONNS" -d "$SECONDS_RUN" -w 2 -S warm -p "$PID")
spfwarm_q=$(($(dns_count) - q0))
echo "$spfwarm_out" | head -2
echo "DNS queries during the run: $spfwarm_q (answers from the cache)"

echo "== policyd, checks = spf, cold cache: every sender a new domain, DNS answers 20 ms away, $SPF_CONNS connections"
"$BUILD/bench/delaydns" -p 0 -m 20 -t ".cold.example=v=spf1 ip4:192.0.2.0/24 -all" \
    -n .dead.example >"$TMP/delaydns.out" &
DELAYDNS_PID=$!
pids+=("$DELAYDNS_PID")
for _ in $(seq 1 50); do grep -q ready "$TMP/delaydns.out" && break; sleep 0.1; done
DELAYDNS_PORT=$(sed -n 's/ready port=//p' "$TMP/delaydns.out")
start_policyd spfcold "${SPFCONF[@]}" "dns_servers = 127.0.0.1:$DELAYDNS_PORT"
SPFCOLD_PID=$PID
spfcold_out=$("$LOADGEN" -s "unix:$TMP/spfcold.sock" -c "$SPF_CONNS" -d "$SECONDS_RUN" -w 1 -S cold -p "$PID")
echo "$spfcold_out" | head -2

echo "== the same against testdns.py (3 s): the Python server's capacity, not the daemon's"
start_policyd spfcoldpy "${SPFCONF[@]}" "dns_servers = 127.0.0.1:$SPFDNS_PORT"
spfcoldpy_out=$("$LOADGEN" -s "unix:$TMP/spfcoldpy.sock" -c "$SPF_CONNS" -d 3 -w 1 -S cold)
echo "$spfcoldpy_out" | head -1
kill "$PID" 2>/dev/null

echo "== dead domain: the cold-cache load, 10% of the senders at domains whose DNS never answers"
spfdead_out=$("$LOADGEN" -s "unix:$TMP/spfcold.sock" -c "$SPF_CONNS" -d "$SECONDS_RUN" -w 2 -S cold -D 10 -p "$SPFCOLD_PID")
echo "$spfdead_out" | head -3
spfdead_deadline=$(grep -c "deadline: no answer" "$TMP/spfcold.log")
spfdead_451=$(sed -n 's/^actions:.* 451 [0-9]*\/\([0-9]*\).*/\1/p' <<<"$spfdead_out")
kill "$DELAYDNS_PID" 2>/dev/null
wait "$DELAYDNS_PID" 2>/dev/null
tail -1 "$TMP/delaydns.out"
fi

verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
us_ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
echo
echo "| measure | reference | policyd | target | |"
echo "| --- | --- | --- | --- | --- |"
if part main; then
ref_rps=$(field rps "$ref_out")
rps=$(field rps "$relay_out")
p99=$(field p99_us "$relay_out")
delta=$(field delta_kb "$idle_out")
ratio=$(awk -v a="$rps" -v b="$ref_rps" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }')
echo "| requests/s, $CONNS connections, 25% relay attempts (logged) | $ref_rps | $rps ($ratio%) | >= 80% of reference | $(verdict $((ratio >= 80))) |"
hosted_rps=$(field rps "$hosted_out")
echo "| requests/s, all accepted | $ref_rps | $hosted_rps ($(awk -v a="$hosted_rps" -v b="$ref_rps" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }')%) | >= 80% of reference | |"
echo "| p50 / p99 / p99.9 latency (us) | $(field p50_us "$ref_out") / $(field p99_us "$ref_out") / $(field p999_us "$ref_out") | $(field p50_us "$relay_out") / $p99 / $(field p999_us "$relay_out") | p99 < 1000 us | $(verdict $((${p99%.*} < 1000))) |"
echo "| peak RSS under load (kB) | $(field rss_kb "$ref_out") | $(field rss_kb "$relay_out") | | |"
warm_rps=$(field rps "$warm_out")
warm_ratio=$(awk -v a="$warm_rps" -v b="$(field rps "$hosted_out")" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }')
echo "| rdns + dnsbl, warm cache, requests/s | | $warm_rps ($warm_ratio% of relay-only all-accepted) | >= 50% of relay-only | $(verdict $((warm_ratio >= 50))) |"
hol_p99=$(field p99_us "$hol_out")
echo "| head of line: p99 of the others while one name never answers (us) | | $hol_p99 ($hol_deadline fallback answers at the 1 s deadline) | < 5000 us | $(verdict $((${hol_p99%.*} < 5000))) |"
echo "| 1,000 connections, fresh DNS per request: requests/s, errors | | $(field rps "$fresh_out"), $(field errors "$fresh_out") errors, $fresh_fds descriptors open | all answered | $(verdict $(( $(field errors "$fresh_out") == 0 ))) |"
rcpt_ratio=$(awk -v a="$(field rps "$rcpt_out")" -v b="$(field rps "$relayusers_out")" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }')
echo "| relay + recipient, 1,000,000-entry lmdb, random users, requests/s | | $(field rps "$rcpt_out") ($rcpt_ratio% of relay-only on the same load: $(field rps "$relayusers_out")) | >= 80% of relay-only | $(verdict $((rcpt_ratio >= 80))) |"
echo "| 1,000 idle connections (kB) | | +$delta | < 10240 kB | $(verdict $((delta < 10240))) |"
fi
if part slots; then
fl_max=$(field probe_max_us "$slots_out")
echo "| fresh client during a 20,000-connection idle flood, max_connections 4096: p50 / p99 / max (ms) | | $(us_ms "$(field probe_p50_us "$slots_out")") / $(us_ms "$(field probe_p99_us "$slots_out")") / $(us_ms "$fl_max") once the flood is open ($(field probes "$slots_out") clients, $(field probe_failed "$slots_out") failed, $(field server_fds "$slots_out") descriptors at most); while its $(field opened "$slots_out") connections were being opened ($(field open_s "$slots_out") s): p50 $(us_ms "$(field burst_p50_us "$slots_out")"), max $(us_ms "$(field burst_max_us "$slots_out")") (in the listen queue behind the flood); under a reconnect storm of $(field opened "$storm_out") connections in 5 s: p50 $(us_ms "$(field probe_p50_us "$storm_out")"), max $(us_ms "$(field probe_max_us "$storm_out")"), $(field probe_failed "$storm_out") failed | < 10 ms | $(verdict $((${fl_max%.*} < 10000 && $(field burst_max_us "$slots_out") < 10000 && $(field probe_failed "$slots_out") == 0))) |"
fi
if part flood; then
fl_ref=$(field rps "$reffl_out")
fl_rps=$(field rps "$floodshort_out")
fl_ratio=$(pct "$fl_rps" "$fl_ref")
fl_gain=$(awk -v a="$floodfull_bpr" -v b="$floodshort_bpr" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
echo "| requests/s, every request a refused relay probe (4 clients, $FLOOD_RCPTS recipients per message, short repeats) | $fl_ref | $fl_rps ($fl_ratio%; every line in full: $(field rps "$floodfull_out"), $(pct "$(field rps "$floodfull_out")" "$fl_ref")%) | >= 80% of reference | $(verdict $((fl_ratio >= 80))) |"
echo "| log bytes per refused request, the same flood | | $floodshort_bpr with short repeats, $floodfull_bpr every line in full: ${fl_gain}x smaller | >= 3x smaller | $(verdict "$(awk -v g="$fl_gain" 'BEGIN { print (g >= 3) }')") |"
echo "| log bytes per refused request, every probe its own message | | $floodone_bpr with short repeats, $floodone0_bpr every line in full (each is a message's first recipient: explained in full by design); $(field rps "$floodone_out") requests/s | | |"
fi
if part spf; then
us_ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
sw_rps=$(field rps "$spfwarm_out")
sw_rel=""
[ -n "${hosted_out:-}" ] && sw_rel=", $(awk -v a="$sw_rps" -v b="$(field rps "$hosted_out")" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }')% of relay-only all-accepted"
echo "| SPF, warm cache, $CONNS connections: evaluations/s; p50 / p99 (us) | | $sw_rps$sw_rel; $(field p50_us "$spfwarm_out") / $(field p99_us "$spfwarm_out"); $spfwarm_q DNS queries | >= 50,000/s | $(verdict $((sw_rps >= 50000))) |"
sc_rps=$(field rps "$spfcold_out")
sc_p99=$(field p99_us "$spfcold_out")
echo "| SPF, cold cache, 20 ms DNS, $SPF_CONNS connections: evaluations/s; p50 / p99 (ms) | | $sc_rps; $(us_ms "$(field p50_us "$spfcold_out")") / $(us_ms "$sc_p99") (with testdns.py as the DNS server instead: $(field rps "$spfcoldpy_out")/s, p50 $(us_ms "$(field p50_us "$spfcoldpy_out")") ms) | >= 2,000/s | $(verdict $((sc_rps >= 2000))) |"
sd_p99=$(field p99_us "$spfdead_out")
sd_oldest=$(field dead_oldest_us "$spfdead_out")
sd_ok=$(((${sd_p99%.*} <= 3 * ${sc_p99%.*} / 2) && ${sd_oldest%.*} < 1100000 && $(field errors "$spfdead_out") == 0))
echo "| SPF, 10% dead sender domains: p50 / p99 of the others (ms); the dead ones | | $(us_ms "$(field p50_us "$spfdead_out")") / $(us_ms "$sd_p99") (cold alone: $(us_ms "$sc_p99")); $(field dead "$spfdead_out") dead answered (${spfdead_451:-0} with 451 4.4.3, $spfdead_deadline at the 1 s deadline), max $(us_ms "$(field dead_max_us "$spfdead_out")") ms, none older than $(us_ms "$sd_oldest") ms unanswered | others' p99 <= 1.5x cold; dead answered < 1.1 s | $(verdict $sd_ok) |"
fi
if part state; then state_rows; fi

# Prometheus scrapes under load (test/bench/metrics.sh, its own table).
if part metrics; then
    echo
    bash test/bench/metrics.sh "$BUILD"
fi
