#!/usr/bin/env bash
# test_ratelimit.sh - the ratelimit check (issue 11) on LMDB and on a real Redis: the sixth
# recipient of a 5/1m user deferred with the limit and the retry time, the diagnosis line;
# parallel sessions cannot pass a limit together; state survives a restart; the CLI shows and
# resets a counter; warn mode; two daemons sharing one Redis enforce one limit; Redis stopped
# mid-run gives the configured failure answer in time, one log line each way, and recovery.
# A message that ends without END-OF-MESSAGE (a new instance on its connection, the connection
# closed) gives its reservations back once the connection is known to be asked at
# END-OF-MESSAGE, on LMDB and on Redis; without that wiring they stay.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

RULES='ratelimit_rules = { name=user-rcpt key=sasl_username count=recipients limits=5/1m when=authenticated }, { name=anon-net key=client_network count=messages limits=3/1m when=unauthenticated }'
printf '#!/bin/sh\necho "$@" >>"%s/notify.out"\n' "$WORK" >"$WORK/notify.sh"
chmod +x "$WORK/notify.sh"
write_conf "$WORK/l.conf" "checks = ratelimit" "$RULES" "state_store = lmdb:$WORK/state.lmdb" \
    "ratelimit_notify_command = $WORK/notify.sh --limit"

# rcpt USER [RCPT] [INSTANCE] - one RCPT request of an authenticated user
rcpt() { req sasl_username="$1" recipient="${2:-bob@example.com}" instance="${3:-i-$RANDOM$RANDOM}" client_address=192.0.2.10 client_name=mail.example.net; }
answers() { ask - | grep '^action=' ; }
quiet() { "$@" >/dev/null; }
count_of() { grep -c -- "$1" || true; }

# interleave USER N - two connections, alternating one RCPT each, N in all; the answers
interleave() {
    $PY - "$WORK/policyd.sock" "$1" "$2" <<'PYEOF'
import socket, subprocess, sys, os
path, user, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
here = os.environ["TESTDIR"]
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(10); s.connect(path); socks.append(s)
def one(s, i):
    r = subprocess.run([sys.executable, here + "/req.py", "sasl_username=" + user,
                        "recipient=r%d@example.com" % i, "instance=par-%d" % i], capture_output=True).stdout
    s.sendall(r)
# send all first (both connections in flight at once), then read
for i in range(n):
    one(socks[i % 2], i)
out = []
for k, s in enumerate(socks):
    want = (n + 1 - k) // 2
    buf = b""
    while buf.count(b"\n\n") < want:
        c = s.recv(65536)
        if not c: break
        buf += c
    out += [l for l in buf.decode().split("\n") if l.startswith("action=")]
print("\n".join(out))
PYEOF
}
export TESTDIR

if start_daemon "$WORK/l.conf"; then
    got=$(for i in 1 2 3 4 5 6; do rcpt alice@example.com "r$i@d$i.example"; done | answers)
    check "LMDB: five recipients pass" test "$(echo "$got" | head -5 | count_of '^action=DUNNO$')" = 5
    sixth=$(echo "$got" | sed -n 6p)
    if [[ "$sixth" =~ ^action=450\ 4\.7\.1\ Rate\ limit\ of\ 5\ recipients\ per\ 1m\ reached,\ retry\ in\ [0-9]+s$ ]]; then
        ok "LMDB: the sixth is deferred 450 4.7.1 with the limit and the retry time"
    else
        not_ok "LMDB: the sixth deferred (got: $sixth)"
    fi
    check "the reply names no address" sh -c "! echo '$sixth' | grep -q '@'"
    check "diagnosis: rule, key, used/limit, window, retry, client, domains, fix" \
        grep -qE "ratelimit: defer: 450 4\.7\.1 .*cause=rule user-rcpt, key sasl_username=alice@example\.com: 5/5 recipients in 1m \(since [-0-9: ]+\), retry after [0-9]+s; client mail\.example\.net\[192\.0\.2\.10\]; 6 distinct recipient domains in the last hour; fix=if alice@example\.com did not send this, check the account and reset its password" "$WORK/policyd.log"
    check "early warning at 80%: one line" test "$(grep -c 'reached 80% of its limit (warning at 80%): 4/5 recipients in 1m' "$WORK/policyd.log")" = 1
    got=$(rcpt alice@example.com | answers)
    check "over-limit attempts keep being deferred" grep -q "^action=450 4.7.1" <<<"$got"
    for _ in $(seq 1 40); do [ -s "$WORK/notify.out" ] && break; sleep 0.05; done
    sleep 0.2
    check "notify command: run once for two refusals, with rule, key, window, used, limit" \
        test "$(cat "$WORK/notify.out" 2>/dev/null)" = "--limit user-rcpt user-rcpt:sasl_username:alice@example.com 1m 5 5"
    check "notify command: logged" grep -q "ratelimit: notified: $WORK/notify.sh user-rcpt:sasl_username:alice@example.com (exit status 0)" "$WORK/policyd.log"
    # The shape of a stolen account: a new client network, many recipient domains.
    got=$( (rcpt zoe@example.com r0@home.example
            for i in 1 2 3 4 5; do req sasl_username=zoe@example.com recipient="x@d$i.example" client_address=198.18.0.5 instance=z$i; done) | answers | tail -1)
    check "new network + many domains: deferred" grep -q "^action=450 4.7.1" <<<"$got"
    check "new network + many domains: 'likely compromised account' in the diagnosis" \
        grep -q "key sasl_username=zoe@example.com: 5/5 .*client localhost\[198.18.0.5\]; 6 distinct recipient domains in the last hour; first use from this client network; likely compromised account" "$WORK/policyd.log"
    check "alice (one network, 6 domains) is not called compromised" sh -c "! grep -q 'alice@example.com.*likely compromised' '$WORK/policyd.log'"
    got=$(rcpt carol@example.com | answers)
    check "another user is not affected" test "$got" = "action=DUNNO"
    # Unauthenticated: messages per client network, counted once per instance.
    got=$(for i in 1 2 3; do req client_address=198.51.100.$i recipient="x$i@example.com" instance=m1; done | answers)
    check "messages: three recipients of one message count once" test "$(echo "$got" | count_of DUNNO)" = 3
    got=$(for m in m2 m3 m4; do req client_address=198.51.100.77 instance=$m; done | answers)
    check "messages: the fourth message from the /24 is deferred" \
        test "$(echo "$got" | tr '\n' ' ')" = "action=DUNNO action=DUNNO action=450 4.7.1 Rate limit of 3 messages per 1m reached, retry in $(echo "$got" | sed -n 3p | sed -E 's/.*retry in ([0-9]+s)$/\1/') "
    # Parallel sessions of one account: 8 RCPTs over two connections, 5 pass.
    got=$(interleave dave@example.com 8)
    check "parallel sessions: 5 of 8 pass, together" test "$(echo "$got" | count_of '^action=DUNNO$')" = 5
    check "parallel sessions: 3 of 8 deferred" test "$(echo "$got" | count_of '^action=450 4.7.1')" = 3
    stop_daemon
    check "LMDB: state file written" test -s "$WORK/state.lmdb/data.mdb" -o -s "$WORK/state.lmdb"
fi

# The counters survive a restart.
if start_daemon "$WORK/l.conf"; then
    got=$(rcpt alice@example.com | answers)
    check "LMDB: after a restart alice is still over her limit" grep -q "^action=450 4.7.1 Rate limit of 5 recipients per 1m" <<<"$got"
    # A reload with the same state_* settings keeps the open store (opened once in the log).
    opened=$(grep -c "state store lmdb:$WORK/state.lmdb open" "$WORK/policyd.log")
    kill -HUP "$DAEMON_PID"
    wait_log "reloaded $WORK/l.conf"
    got=$(rcpt alice@example.com | answers)
    check "reload: still enforced" grep -q "^action=450 4.7.1 Rate limit of 5 recipients per 1m" <<<"$got"
    check "reload: the store was kept, not opened again" test "$(grep -c "state store lmdb:$WORK/state.lmdb open" "$WORK/policyd.log")" = "$opened"
    stop_daemon
fi

# The CLI reads and changes the counters without the daemon.
out=$("$POLICYD" -c "$WORK/l.conf" ratelimit show alice@example.com 2>&1)
check "CLI show: the key and its window" grep -qE "^user-rcpt:sasl_username:alice@example.com$" <<<"$out"
check "CLI show: used/limit in the window" grep -qE "^  5/5 in 1m \(since [-0-9: ]+\)$" <<<"$out"
out=$("$POLICYD" -c "$WORK/l.conf" ratelimit top 5 2>&1)
check "CLI top: the full counters listed" grep -qx "user-rcpt:sasl_username:alice@example.com" <<<"$out"
check "CLI top: the network key too" grep -qx "anon-net:client_network:198.51.100.0/24" <<<"$out"
"$POLICYD" -c "$WORK/l.conf" ratelimit block carol@example.com 1h >/dev/null 2>&1
check "CLI reset" quiet "$POLICYD" -c "$WORK/l.conf" ratelimit reset user-rcpt:sasl_username:alice@example.com
out=$("$POLICYD" -c "$WORK/l.conf" ratelimit show nobody@example.com 2>&1)
check "CLI show of an unknown key says so" grep -q "no counter for nobody@example.com" <<<"$out"
if start_daemon "$WORK/l.conf"; then
    got=$(rcpt alice@example.com | answers)
    check "after the CLI reset alice passes again" test "$got" = "action=DUNNO"
    got=$(rcpt carol@example.com | answers)
    check "CLI block: carol is deferred" grep -q "^action=450 4.7.1 Sending suspended" <<<"$got"
    check "CLI block: the diagnosis says so" grep -q "key sasl_username=carol@example.com: blocked" "$WORK/policyd.log"
    stop_daemon
fi
check "CLI unblock" quiet "$POLICYD" -c "$WORK/l.conf" ratelimit unblock carol@example.com

# Overrides from a table, and bytes counted at END-OF-MESSAGE.
printf 'ovr@example.com user-rcpt=2/1m\n@vip.example 0\nmallory@example.com block\n' >"$WORK/overrides"
write_conf "$WORK/o.conf" "checks = ratelimit" \
    'ratelimit_rules = { name=user-rcpt key=sasl_username count=recipients limits=5/1m }, { name=user-bytes key=sasl_username count=bytes limits=10k/1h }' \
    "state_store = lmdb:$WORK/state2.lmdb" "ratelimit_overrides = texthash:$WORK/overrides"
eom() { req protocol_state=END-OF-MESSAGE sasl_username="$1" size="$2" instance="e-$RANDOM" recipient_count=1; }
if start_daemon "$WORK/o.conf"; then
    got=$(for i in 1 2 3; do rcpt ovr@example.com; done | answers | tr '\n' ' ')
    check "override: ovr@example.com limited to 2/1m" grep -q "^action=DUNNO action=DUNNO action=450 4.7.1 Rate limit of 2 recipients per 1m" <<<"$got"
    got=$(for i in 1 2 3 4 5 6 7; do rcpt boss@vip.example; done | answers | count_of '^action=DUNNO$')
    check "override: @vip.example 0 is unlimited" test "$got" = 7
    got=$(rcpt mallory@example.com | answers)
    check "override: block suspends" grep -q "^action=450 4.7.1 Sending suspended" <<<"$got"
    # Four recipients reserved, one accepted in the end: three given back at END-OF-MESSAGE.
    # (one request at a time, as Postfix asks: each answer before the next question)
    got=$( (for i in 1 2 3 4; do rcpt ivan@example.com "r$i@x.example" msg-ivan | answers; done
            req protocol_state=END-OF-MESSAGE sasl_username=ivan@example.com instance=msg-ivan recipient_count=1 size=10 | answers) | count_of '^action=DUNNO$')
    check "true-up: four RCPTs and END-OF-MESSAGE answered DUNNO" test "$got" = 5
    got=$(for i in 1 2 3 4 5; do rcpt ivan@example.com; done | answers | tr '\n' ' ')
    check "true-up: the three unaccepted recipients were given back (4 more pass, the 5th not: $got)" \
        grep -q "^action=DUNNO action=DUNNO action=DUNNO action=DUNNO action=450 4.7.1 Rate limit of 5 recipients per 1m" <<<"$got"
    got=$( (eom henry@example.com 8000; eom henry@example.com 8000) | answers | tr '\n' ' ')
    check "bytes: END-OF-MESSAGE is counted, not refused (the message is in)" test "$got" = "action=DUNNO action=DUNNO "
    got=$(rcpt henry@example.com | answers)
    check "bytes: over 10k in the hour, the next RCPT is deferred" grep -q "^action=450 4.7.1 Rate limit of 10240 bytes per 1h" <<<"$got"
    stop_daemon
fi

# ---- Messages that end without END-OF-MESSAGE (RSET, QUIT, a lost client, DATA refused) ----
# conv - one Postfix smtpd: the steps on stdin over one connection kept open (conv.py); the
# answers as letters: D (DUNNO), R (recipients limit), M (messages limit), ? (anything else).
conv() {
    $PY "$TESTDIR/conv.py" "$WORK/policyd.sock" | sed -E -e 's/^action=DUNNO$/D/' \
        -e 's/^action=450 4\.7\.1 Rate limit of [0-9]+ recipients .*/R/' \
        -e 's/^action=450 4\.7\.1 Rate limit of [0-9]+ messages .*/M/' -e 's/^action=.*/?/' | tr -d '\n'
}
# r USER SENDER INSTANCE - a RCPT step; e USER SENDER INSTANCE COUNT - its END-OF-MESSAGE step
r() { echo "sasl_username=$1 sender=$2 instance=$3 recipient=x$RANDOM@example.com client_address=192.0.2.20"; }
e() { echo "protocol_state=END-OF-MESSAGE sasl_username=$1 sender=$2 instance=$3 recipient_count=$4 recipient= size=100 client_address=192.0.2.20"; }
times() { for _ in $(seq 1 "$1"); do "${@:2}"; done; }
RELRULES='ratelimit_rules = { name=u-rcpt key=sasl_username count=recipients limits=5/1m }, { name=u-msg key=sender count=messages limits=2/1m }'

# release_suite TAG - the scenarios against the running daemon (keys made unique by TAG): at
# most 5 recipients per user and 2 messages per sender a minute.
release_suite() {
    local t=$1 got
    # END-OF-MESSAGE seen on the connection; message 2 (3 recipients) is followed by message 3
    # without its END-OF-MESSAGE: its 3 recipients and its message are free again.
    got=$( (r a$t sa$t A1; e a$t sa$t A1 1; times 3 r a$t sa$t A2; times 5 r a$t sa$t A3) | conv)
    check "$t: new instance after RCPTs, END-OF-MESSAGE wired: reservations given back (DDDDDDDDDR: $got)" \
        test "$got" = DDDDDDDDDR
    # The first message ends before the connection showed END-OF-MESSAGE: given back when it does.
    got=$( (times 3 r b$t sb$t B1; r b$t sb$t B2; e b$t sb$t B2 1; times 5 r b$t sb$t B3) | conv)
    check "$t: a message ended before the wiring was known is given back once it is (DDDDDDDDDR: $got)" \
        test "$got" = DDDDDDDDDR
    # No END-OF-MESSAGE ever on the connection: nothing can tell an aborted message from a sent
    # one; the reservations stay, also after the connection closes.
    got=$( (times 3 r c$t sc$t C1; times 3 r c$t sc$t C2; echo reconnect; r c$t sc$t C3) | conv)
    check "$t: without END-OF-MESSAGE wiring the reservations stay (DDDDDRR: $got)" test "$got" = DDDDDRR
    # The connection closes in the middle of a message: given back.
    got=$( (r d$t sd$t D1; e d$t sd$t D1 1; times 4 r d$t sd$t D2; echo reconnect; times 5 r d$t sd$t D3) | conv)
    check "$t: connection closed mid-message: reservations given back (DDDDDDDDDDR: $got)" \
        test "$got" = DDDDDDDDDDR
    # ... and the message goes on over a new connection (Postfix reconnected): counted again.
    got=$( (r e$t se$t E1; e e$t se$t E1 1; times 2 r e$t se$t E2; echo reconnect
            r e$t se$t E2; e e$t se$t E2 3; echo reconnect
            r e$t se$t E3; times 2 r e$t se2$t E4) | conv)
    check "$t: a message that goes on over a new connection is counted again (DDDDDDMDR: $got)" \
        test "$got" = DDDDDDMDR
    # Requests of two messages interleaved on one connection (not one smtpd: a proxy): once an
    # ended instance comes back, nothing more is given back on it.
    got=$( (r h$t sh0$t H0; e h$t sh0$t H0 1; times 2 r h$t shx$t X; r h$t shy$t Y; r h$t shx$t X
            times 3 r h$t shz$t Z) | conv)
    check "$t: interleaved messages on one connection: no more give-back (DDDDDDDDR: $got)" \
        test "$got" = DDDDDDDDR
    # END-OF-MESSAGE trues up as before, and the next message gives nothing back twice.
    got=$( (times 4 r f$t sf$t F1; e f$t sf$t F1 1; times 5 r f$t sf$t F2) | conv)
    check "$t: END-OF-MESSAGE trues up; the next instance gives nothing back again (DDDDDDDDDR: $got)" \
        test "$got" = DDDDDDDDDR
}

write_conf "$WORK/rel.conf" "checks = ratelimit" "$RELRULES" "state_store = lmdb:$WORK/state-rel.lmdb"
if start_daemon "$WORK/rel.conf" -v; then
    release_suite LMDB
    got=$( (times 6 r gLMDB sgLMDB G1) | conv)
    check "LMDB: a refusal on a connection without END-OF-MESSAGE says so in its fix" \
        grep -q "fix=if gLMDB did not send this.*; Postfix has not asked policyd at END-OF-MESSAGE on this connection yet: without smtpd_end_of_data_restrictions = check_policy_service, aborted messages stay counted until their window passes" "$WORK/policyd.log"
    check "LMDB: interleaved messages on one connection logged once" \
        test "$(grep -c "ratelimit: one policy connection carries the requests of several messages at once (instance X came back" "$WORK/policyd.log")" = 1
    check "LMDB: the give-back is logged (-v)" \
        grep -q "ratelimit: message A2 ended without END-OF-MESSAGE (the next request of its connection is about another): 2 reservations given back" "$WORK/policyd.log"
    stop_daemon
fi

# Warn mode: logged, not deferred.
write_conf "$WORK/w.conf" "checks = ratelimit" "$RULES" "state_store = lmdb:$WORK/state.lmdb" "ratelimit_mode = warn"
if start_daemon "$WORK/w.conf"; then
    got=$(for i in 1 2 3 4 5 6; do rcpt erin@example.com; done | answers)
    check "warn mode: the sixth answered DUNNO" test "$(echo "$got" | count_of '^action=DUNNO$')" = 6
    check "warn mode: 'would defer' logged with the usage" grep -qE "would defer.*5/5 recipients in 1m" "$WORK/policyd.log"
    stop_daemon
fi

# ---- Redis: a real redis-server on a unix socket in $WORK ----
REDIS_PID=
start_redis() {
    redis-server --port 0 --unixsocket "$WORK/r.sock" --save '' --appendonly no --daemonize no \
        >>"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 1 100); do [ -S "$WORK/r.sock" ] && return 0; sleep 0.05; done
    return 1
}
stop_redis() { [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null; REDIS_PID=; rm -f "$WORK/r.sock"; }
# ask_b - like ask, to the second daemon
ask_b() { $PY "$TESTDIR/client.py" "$WORK/b.sock" "${1:--}"; }
msg() { req sasl_username="$1" instance="m-$RANDOM$RANDOM" client_address=192.0.2.10; }

if ! command -v redis-server >/dev/null; then
    echo "ok redis tests # SKIP redis-server not installed"
elif start_redis; then
    RRULES='ratelimit_rules = { name=user-msgs key=sasl_username count=messages limits=5/1m }'
    write_conf "$WORK/ra.conf" "checks = ratelimit" "$RRULES" "state_store = redis:unix:$WORK/r.sock" \
        "ratelimit_store_failure = defer" "state_timeout = 200ms" "state_retry_interval = 1s" "request_deadline = 2s"
    sed -e "s#unix:$WORK/policyd.sock#unix:$WORK/b.sock#" -e "s#$WORK/policyd.log#$WORK/b.log#" "$WORK/ra.conf" >"$WORK/rb.conf"
    "$POLICYD" -c "$WORK/rb.conf" -f 2>>"$WORK/stderr" &
    B_PID=$!
    if start_daemon "$WORK/ra.conf"; then
        for _ in $(seq 1 100); do [ -S "$WORK/b.sock" ] && break; sleep 0.05; done
        # Six messages of one user, alternating between the two daemons: five pass in all.
        got=$( (msg frank@example.com | ask -; msg frank@example.com | ask_b -; msg frank@example.com | ask -
                msg frank@example.com | ask_b -; msg frank@example.com | ask -; msg frank@example.com | ask_b -) | grep '^action=')
        check "Redis: two daemons share one limit: five messages pass" test "$(echo "$got" | head -5 | count_of '^action=DUNNO$')" = 5
        check "Redis: the sixth, on the second daemon, is deferred" grep -q "^action=450 4.7.1 Rate limit of 5 messages per 1m" <<<"$(echo "$got" | sed -n 6p)"
        got=$(msg frank@example.com | ask - | grep '^action=')
        check "Redis: and on the first daemon too" grep -q "^action=450 4.7.1 Rate limit of 5 messages per 1m" <<<"$got"
        # Redis goes away: the configured failure answer, in time, one line.
        stop_redis
        t0=$(date +%s%N)
        got=$(for i in 1 2 3; do msg gina@example.com; done | ask - | grep '^action=')
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        check "Redis down: ratelimit_store_failure = defer answers 451 4.3.0" test "$(echo "$got" | count_of '^action=451 4.3.0')" = 3
        check "Redis down: answered within the deadline (${ms} ms for three)" test "$ms" -lt 2000
        wait_log 'state store redis:unix:.* is down'
        check "Redis down: one log line" test "$(grep -c 'state store redis:unix:.* is down' "$WORK/policyd.log")" = 1
        got=$(msg gina@example.com | ask - | grep '^action=')
        check "Redis down: still the failure answer" test "$got" = "action=451 4.3.0 Temporary rate limit problem, try again later"
        check "Redis down: no second line" test "$(grep -c 'state store redis:unix:.* is down' "$WORK/policyd.log")" = 1
        start_redis
        ok_again=
        for _ in $(seq 1 40); do
            got=$(msg gina@example.com | ask - | grep '^action=')
            [ "$got" = "action=DUNNO" ] && { ok_again=1; break; }
            sleep 0.25
        done
        check "Redis back: decisions again" test -n "$ok_again"
        wait_log 'state store redis:unix:.* is up again'
        check "Redis back: one log line" test "$(grep -c 'state store redis:unix:.* is up again' "$WORK/policyd.log")" = 1
        stop_daemon
        check "the statistics count the store's state changes and failures" \
            grep -qE "state store statistics: store=redis:unix:$WORK/r.sock backend=redis up=1 breaker=closed ops=[0-9]+ ok=[0-9]+ failed=[1-9][0-9]* .*state_changes=2 " "$WORK/policyd.log"
    fi
    write_conf "$WORK/rrel.conf" "checks = ratelimit" "$RELRULES" "state_store = redis:unix:$WORK/r.sock"
    if start_daemon "$WORK/rrel.conf"; then
        release_suite Redis
        stop_daemon
    fi
    kill "$B_PID" 2>/dev/null; wait "$B_PID" 2>/dev/null
    stop_redis
else
    not_ok "redis-server did not start"; cat "$WORK/redis.log"
fi

# policyd doctor says what END-OF-MESSAGE wiring exact counting needs.
write_conf "$WORK/d.conf" "checks = ratelimit" \
    'ratelimit_rules = { name=b key=sasl_username count=bytes limits=1g/1d }' "state_store = lmdb:$WORK/state3.lmdb" \
    "smtpd_recipient_restrictions = check_policy_service unix:$WORK/policyd.sock"
out=$("$POLICYD" -c "$WORK/d.conf" doctor --section postfix 2>&1)
check "doctor: bytes rules without END-OF-MESSAGE wiring warned" \
    grep -q "^WARN  postfix  ratelimit end of data .*no check_policy_service and ratelimit_rules count bytes" <<<"$out"
echo "smtpd_end_of_data_restrictions = check_policy_service unix:$WORK/policyd.sock" >>"$WORK/d.conf"
out=$("$POLICYD" -c "$WORK/d.conf" doctor --section postfix 2>&1)
check "doctor: with the wiring, OK" grep -q "^OK    postfix  ratelimit end of data .*bytes are counted and recipients trued up" <<<"$out"
check "doctor: with the wiring, aborted messages give their reservations back" \
    grep -q "^OK    postfix  ratelimit end of data .*a message that ends without END-OF-MESSAGE (RSET, QUIT, lost client, DATA refused) gives its reservations back" <<<"$out"
sed -i "s#^smtpd_end_of_data_restrictions = .*#smtpd_end_of_data_restrictions = permit_mynetworks, check_policy_service unix:$WORK/policyd.sock#" "$WORK/d.conf"
out=$("$POLICYD" -c "$WORK/d.conf" doctor --section postfix 2>&1)
check "doctor: a permit before check_policy_service at END-OF-MESSAGE warned" \
    grep -q "^WARN  postfix  ratelimit end of data .*asks a policy service, but after permit_mynetworks" <<<"$out"
write_conf "$WORK/d2.conf" "checks = ratelimit" "$RELRULES" "state_store = lmdb:$WORK/state3.lmdb"
out=$("$POLICYD" -c "$WORK/d2.conf" doctor --section postfix 2>&1)
check "doctor: without the wiring, aborted messages stay counted until their window passes" \
    grep -q "^OK    postfix  ratelimit end of data .*no check_policy_service: .*(RSET, QUIT, lost client, DATA refused), stay counted until their window passes" <<<"$out"

# A bad rule is refused with FILE:LINE.
write_conf "$WORK/bad.conf" "checks = ratelimit" 'ratelimit_rules = { name=x key=nosuch limits=5/1m }' "state_store = lmdb:$WORK/state.lmdb"
out=$("$POLICYD" -c "$WORK/bad.conf" -t 2>&1)
check "bad rule refused with FILE:LINE" grep -q "bad.conf:6: ratelimit_rules: key 'nosuch'" <<<"$out"
# ratelimit_count_rejected: refused attempts record nothing (no, the default) or count in the
# refusing rule's window (yes), which the CLI shows as used beyond the limit.
for cr in no yes; do
    write_conf "$WORK/cr.conf" "checks = ratelimit" "state_store = lmdb:$WORK/cr-$cr.lmdb" \
        "ratelimit_rules = { name=cr key=sasl_username count=recipients limits=2/1h }" \
        "ratelimit_count_rejected = $cr"
    if start_daemon "$WORK/cr.conf"; then
        got=$(for i in 1 2 3 4 5; do rcpt eve@example.com "r$i@example.com"; done | answers)
        check "count_rejected = $cr: 2 of 5 pass, 3 deferred" \
            test "$(echo "$got" | count_of '^action=DUNNO$') $(echo "$got" | count_of '^action=450 4.7.1')" = "2 3"
        stop_daemon
    fi
    out=$("$POLICYD" -c "$WORK/cr.conf" ratelimit show eve@example.com 2>&1)
    want=2/2
    [ "$cr" = yes ] && want=5/2
    check "count_rejected = $cr: the window holds $want" grep -qE "^  $want in 1h " <<<"$out"
done
# ratelimit_warn_ratio is a share: 0.8 or 80%; more than 1 is refused.
write_conf "$WORK/ratio.conf" "checks = ratelimit" "ratelimit_warn_ratio = 75%" "state_store = lmdb:$WORK/state.lmdb" \
    "ratelimit_rules = { name=r key=sender count=messages limits=5/1m }"
check "ratelimit_warn_ratio = 75%: accepted" "$POLICYD" -c "$WORK/ratio.conf" -t
write_conf "$WORK/ratio.conf" "checks = ratelimit" "ratelimit_warn_ratio = 1.5" "state_store = lmdb:$WORK/state.lmdb"
out=$("$POLICYD" -c "$WORK/ratio.conf" -t 2>&1)
check "ratelimit_warn_ratio = 1.5: refused with FILE:LINE and the range" grep -q "ratio.conf:6: ratelimit_warn_ratio: '1.5' is out of range (0 to 1)" <<<"$out"
write_conf "$WORK/ratio.conf" "checks = ratelimit" "ratelimit_warn_ratio = most" "state_store = lmdb:$WORK/state.lmdb"
out=$("$POLICYD" -c "$WORK/ratio.conf" -t 2>&1)
check "ratelimit_warn_ratio = most: refused, not a ratio" grep -q "ratio.conf:6: ratelimit_warn_ratio: 'most' is not a ratio (0.8, or 80%)" <<<"$out"

finish
