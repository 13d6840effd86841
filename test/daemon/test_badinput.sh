#!/usr/bin/env bash
# test_badinput.sh - hostile input closes only the offending connection (badinput.py).
. "$(dirname "$0")/lib.sh"
ulimit -n 4096 2>/dev/null || true
write_conf "$WORK/policyd.conf" "mynetworks = 127.0.0.0/8" "relay_domains = example.com"
if start_daemon "$WORK/policyd.conf"; then
    $PY "$TESTDIR/badinput.py" "$WORK/policyd.sock" "$WORK/policyd.log" || true
    check "daemon still running after hostile input" alive
    check "daemon exits 0 on SIGTERM" stop_daemon
else
    not_ok "daemon starts"
fi
finish
