#!/usr/bin/env bash
# test_systemd.sh - the daemon under systemd, without systemd (issue 10, section 4):
#   notify    a stand-in NOTIFY_SOCKET (notify_listener.py) hears READY=1 once the socket is
#             bound, RELOADING=1 then READY=1 with STATUS= on SIGHUP (a good and a bad file),
#             STOPPING=1 on SIGTERM, WATCHDOG=1 at half of WATCHDOG_USEC (and none while the
#             process is stopped: the pings come from the event loop)
#   sockets   systemd-socket-activate passes a unix socket: it is served, `listen` left at its
#             default binds nothing more, the connection that started the daemon is answered,
#             the socket file stays when the daemon exits; with `listen` written, the entry
#             with the passed address takes it and the others are bound; the metrics socket is
#             matched by address; sockholder.py keeps the socket across a restart and a
#             connection made while no daemon runs is answered by the next one.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
if ! command -v systemd-socket-activate >/dev/null; then
    echo "ok systemd tests skipped: systemd-socket-activate missing (apt-get install systemd) # SKIP"
    finish
    exit 0
fi
NOTIFY=$WORK/notify.sock
MPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
NLOG=$WORK/notify.log
$PY "$TESTDIR/notify_listener.py" "$NOTIFY" "$NLOG" >"$WORK/listener.out" 2>&1 &
LISTENER=$!
for _ in $(seq 1 100); do grep -q ready "$WORK/listener.out" 2>/dev/null && break; sleep 0.05; done
: >"$NLOG"

# wait_notify PATTERN - until the listener logged a message matching PATTERN (bounded).
wait_notify() {
    for _ in $(seq 1 100); do
        grep -qE -- "$1" "$NLOG" && return 0
        sleep 0.05
    done
    return 1
}
# messages - the messages so far, without times.
messages() { cut -f2- "$NLOG"; }

# -- notify --
write_conf "$WORK/n.conf" "metrics_listen ="
NOTIFY_SOCKET=$NOTIFY start_daemon "$WORK/n.conf"
check "READY=1 with a status once serving" wait_notify $'\tREADY=1\\|STATUS=serving; configuration '"$WORK/n.conf"
check "READY=1 comes after the socket is bound (the daemon answers)" \
    grep -qx "action=DUNNO" < <(req client_address=127.0.0.1 | ask -)
check "no watchdog pings without WATCHDOG_USEC" bash -c "! grep -q WATCHDOG '$NLOG'"
: >"$NLOG"
kill -HUP "$DAEMON_PID"
check "SIGHUP: RELOADING=1 first" wait_notify $'\tRELOADING=1\\|MONOTONIC_USEC=[0-9]+\\|STATUS=reloading'
check "then READY=1 with the outcome" wait_notify $'\tREADY=1\\|STATUS=reloaded '"$WORK/n.conf"
check "in that order" test "$(messages | grep -oE '^(RELOADING|READY)' | tr '\n' ' ')" = "RELOADING READY "
: >"$NLOG"
echo "relay_domains = \$nosuch" >>"$WORK/n.conf"
kill -HUP "$DAEMON_PID"
check "bad file: RELOADING=1, then READY=1 saying the reload was refused, with FILE:LINE" \
    wait_notify $'\tREADY=1\\|STATUS=reload refused: '"$WORK/n.conf"':[0-9]+: .*the running configuration stays in use'
check "bad file: the daemon still answers" grep -qx "action=DUNNO" < <(req client_address=127.0.0.1 | ask -)
: >"$NLOG"
stop_daemon
check "SIGTERM: STOPPING=1" wait_notify $'\tSTOPPING=1\\|STATUS=stopping on signal 15'

# -- watchdog --
: >"$NLOG"
write_conf "$WORK/w.conf" "metrics_listen ="
NOTIFY_SOCKET=$NOTIFY WATCHDOG_USEC=200000 start_daemon "$WORK/w.conf"
sleep 1
n=$(grep -c $'\tWATCHDOG=1$' "$NLOG")
check "WATCHDOG_USEC=200000: a ping every 100 ms ($n in 1 s)" test "$n" -ge 4 -a "$n" -le 14
check "the watchdog interval is logged" wait_log "systemd watchdog: pinging every 100 ms \(WatchdogSec=200 ms\)"
kill -STOP "$DAEMON_PID"
sleep 0.2
before=$(grep -c WATCHDOG "$NLOG")
sleep 0.6
after=$(grep -c WATCHDOG "$NLOG")
kill -CONT "$DAEMON_PID"
check "a stopped loop sends no ping (systemd would restart it)" test "$before" -eq "$after"
sleep 0.3
check "pings again once the loop runs" test "$(grep -c WATCHDOG "$NLOG")" -gt "$after"
stop_daemon
: >"$NLOG"
NOTIFY_SOCKET=$NOTIFY WATCHDOG_USEC=200000 WATCHDOG_PID=1 start_daemon "$WORK/w.conf"
sleep 0.5
check "WATCHDOG_PID naming another process: no pings" bash -c "! grep -q WATCHDOG '$NLOG'"
stop_daemon

# -- socket activation --
# activate CONF SOCKET [more -l] - the daemon under systemd-socket-activate on SOCKET; the
# daemon starts when the first connection comes (ask_wait makes it).
activate() {
    local conf=$1 sock=$2
    shift 2
    rm -f "$sock"
    systemd-socket-activate -l "$sock" "$@" --fdname=policyd.socket -E NOTIFY_SOCKET="$NOTIFY" \
        -E ASAN_OPTIONS -E UBSAN_OPTIONS -E LSAN_OPTIONS \
        "$POLICYD" -c "$conf" -f 2>>"$WORK/stderr" &
    DAEMON_PID=$!
    for _ in $(seq 1 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
    return 1
}
# listening PORT - something accepts on 127.0.0.1:PORT
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

: >"$NLOG"
: >"$WORK/policyd.log"
printf 'postfix_config_directory =\nuser = root\nlog_file = %s\nmetrics_listen = inet:127.0.0.1:%s\n' \
    "$WORK/policyd.log" "$MPORT" >"$WORK/a.conf"
activate "$WORK/a.conf" "$WORK/act.sock"
check "systemd-socket-activate listens on the socket" test -S "$WORK/act.sock"
out=$(req client_address=127.0.0.1 | $PY "$TESTDIR/client.py" "$WORK/act.sock" -)
check "the connection that started the daemon is answered" grep -qx "action=DUNNO" <<<"$out"
check "the passed socket is logged with its name" \
    wait_log "socket activation: unix:$WORK/act.sock passed by systemd \(descriptor 3, policyd.socket\)"
check "it is served" wait_log "listening on unix:$WORK/act.sock"
check "READY=1 under socket activation" wait_notify $'\tREADY=1'
check "listen left at its default: 127.0.0.1:10031 not bound" \
    bash -c "! grep -q 'listening on inet:127.0.0.1:10031' '$WORK/policyd.log' && test \$(grep -c 'listening on' '$WORK/policyd.log') = 1"
check "metrics_listen not passed: bound by the daemon" listening "$MPORT"
check "a second request on a new connection" grep -qx "action=DUNNO" < <(req client_address=127.0.0.1 | $PY "$TESTDIR/client.py" "$WORK/act.sock" -)
stop_daemon
check "the passed socket file is left in place (systemd owns it)" test -S "$WORK/act.sock"
check "no stale-socket handling on a passed socket" bash -c "! grep -qE 'stale|another process' '$WORK/policyd.log'"

# listen written: the entry with the passed address takes it, the others are bound.
: >"$WORK/policyd.log"
printf 'postfix_config_directory =\nuser = root\nlog_file = %s\nlisten = unix:%s, unix:%s\nmetrics_listen = inet:127.0.0.1:%s\n' \
    "$WORK/policyd.log" "$WORK/own.sock" "$WORK/act.sock" "$MPORT" >"$WORK/b.conf"
activate "$WORK/b.conf" "$WORK/act.sock" -l "127.0.0.1:$MPORT"
out=$(req client_address=127.0.0.1 | $PY "$TESTDIR/client.py" "$WORK/act.sock" -)
check "listen written: the passed socket answers" grep -qx "action=DUNNO" <<<"$out"
check "listen written: the other entry is bound by the daemon" \
    grep -qx "action=DUNNO" < <(req client_address=127.0.0.1 | $PY "$TESTDIR/client.py" "$WORK/own.sock" -)
check "the metrics socket passed too is matched to metrics_listen" \
    bash -c "curl -sf http://127.0.0.1:$MPORT/metrics | grep -q '^policyd_build_info'"
check "both passed sockets logged, the metrics one not served as a policy socket" \
    bash -c "grep -q 'socket activation: inet:127.0.0.1:$MPORT passed' '$WORK/policyd.log' && ! grep -q 'listening on inet:127.0.0.1:$MPORT' '$WORK/policyd.log'"
stop_daemon
check "our own socket is removed at exit, the passed one stays" \
    test ! -e "$WORK/own.sock" -a -S "$WORK/act.sock"

# A restart loses no connection: the socket stays open in the holder while no daemon runs.
mkfifo "$WORK/control"
: >"$WORK/policyd.log"
$PY "$TESTDIR/sockholder.py" "$WORK/held.sock" "$WORK/control" -- "$POLICYD" -c "$WORK/a.conf" -f \
    >"$WORK/holder.out" 2>>"$WORK/stderr" &
HOLDER=$!
exec 7>"$WORK/control" # keep the fifo open for writing
check "first daemon up" wait_log "listening on unix:$WORK/held.sock"
check "first daemon answers" grep -qx "action=DUNNO" < <(req client_address=127.0.0.1 | $PY "$TESTDIR/client.py" "$WORK/held.sock" -)
first=$(sed -n 's/^started //p' "$WORK/holder.out" | head -1)
kill -TERM "$first"
check "first daemon stopped" wait_log "^.*\[$first\]: stopped$"
# A client connects and sends while no daemon runs; the next one answers it.
req client_address=127.0.0.1 | $PY "$TESTDIR/client.py" "$WORK/held.sock" - >"$WORK/gap.out" 2>&1 &
CLIENT=$!
sleep 0.5
echo start >&7
wait "$CLIENT"
check "a request sent between two daemons is answered by the second" grep -qx "action=DUNNO" "$WORK/gap.out"
check "the second daemon was another process" test "$(grep -c '^started' "$WORK/holder.out")" -eq 2
echo quit >&7
exec 7>&-
second=$(sed -n 's/^started //p' "$WORK/holder.out" | tail -1)
kill -TERM "$second" 2>/dev/null
wait "$HOLDER"
check "both daemons exited 0" test "$(grep -c '^exited 0$' "$WORK/holder.out")" -eq 2

# A passed descriptor that is no stream socket is refused with the reason.
timeout 20 systemd-socket-activate --datagram -l "$WORK/dgram.sock" "$POLICYD" -c "$WORK/a.conf" -f \
    >"$WORK/dgram.out" 2>&1 &
DGRAM=$!
for _ in $(seq 1 100); do [ -S "$WORK/dgram.sock" ] && break; sleep 0.05; done
$PY -c "import socket; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'x', '$WORK/dgram.sock')"
rc=0
wait "$DGRAM" || rc=$?
check "a datagram socket is refused: exit 1, ListenStream= needed" test "$rc" = 1 -a -n \
    "$(grep 'is not a listening stream socket: the socket unit must use ListenStream=' "$WORK/dgram.out")"

kill "$LISTENER" 2>/dev/null
finish
