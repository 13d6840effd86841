# lib.sh - start and stop a policyd under test, send requests to it. Sourced by test_*.sh.
# Every wait is bounded. $POLICYD is the binary (release or sanitizer build).
# SPDX-License-Identifier: MIT
set -u
POLICYD=${POLICYD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/policyd/policyd}
TESTDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/policyd-test.XXXXXX)
DAEMON_PID=
. "$TESTDIR/../tap.sh"

# write_conf FILE [extra lines...] - a test configuration on a unix socket in $WORK.
write_conf() {
    local f=$1
    shift
    {
        echo "listen = unix:$WORK/policyd.sock"
        echo "user = root"
        echo "log_file = $WORK/policyd.log"
        echo "postfix_config_directory ="
        for line in "$@"; do echo "$line"; done
    } >"$f"
}

# start_daemon CONF [args] - run policyd in the foreground in the background; wait for its socket.
start_daemon() {
    local conf=$1
    shift
    rm -f "$WORK/policyd.sock"
    "$POLICYD" -c "$conf" -f "$@" 2>>"$WORK/stderr" &
    DAEMON_PID=$!
    for _ in $(seq 1 100); do
        [ -S "$WORK/policyd.sock" ] && return 0
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "policyd did not start:" >&2
    cat "$WORK/stderr" >&2
    return 1
}

# stop_daemon - SIGTERM and wait; returns the daemon's exit status.
stop_daemon() {
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null
    local rc=0
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=
    return $rc
}

alive() { kill -0 "$DAEMON_PID" 2>/dev/null; }

# ask FILE|- - send requests to the daemon's socket, print the replies.
ask() { $PY "$TESTDIR/client.py" "$WORK/policyd.sock" "${1:--}"; }

# log_lines - the daemon's log without timestamp, host and pid.
log_lines() { sed -E 's/^[A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} [^ ]+ [^ ]+\[[0-9]+\]: //' "$WORK/policyd.log"; }

# wait_log PATTERN - wait (bounded) until the log has a line matching PATTERN.
wait_log() {
    for _ in $(seq 1 100); do
        grep -qE -- "$1" "$WORK/policyd.log" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

finish() {
    stop_daemon >/dev/null 2>&1
    if [ -s "$WORK/stderr" ] && grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error' "$WORK/stderr"; then
        not_ok "sanitizer clean"
        cat "$WORK/stderr"
    fi
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
    [ "$failures" -eq 0 ]
}

# req NAME=VALUE... - print a RCPT request like Postfix 3.7 sends one, with these overrides
# (an override with an empty name deletes nothing; NAME= sets an empty value).
req() { $PY "$TESTDIR/req.py" "$@"; }
