#!/usr/bin/env bash
# test_badinput.sh - hostile input closes only the offending connection (badinput.py). The
# driver's exit status counts, and so does the number of checks it ran: a driver that dies part
# way (an exception, a hang killed by its own timeouts) fails here instead of passing quietly.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
ulimit -n 4096 2>/dev/null || true
EXPECTED_CHECKS=36 # every check badinput.py makes when it runs to the end
write_conf "$WORK/policyd.conf" "mynetworks = 127.0.0.0/8" "relay_domains = example.com"
if start_daemon "$WORK/policyd.conf"; then
    $PY "$TESTDIR/badinput.py" "$WORK/policyd.sock" "$WORK/policyd.log" >"$WORK/badinput.out" 2>&1
    rc=$?
    cat "$WORK/badinput.out"
    ran=$(grep -cE '^(ok|not ok) ' "$WORK/badinput.out")
    check "bad-input driver exits 0" test "$rc" -eq 0
    check "bad-input driver ran to the end ($ran of $EXPECTED_CHECKS checks)" \
        grep -qx "badinput: done, $EXPECTED_CHECKS checks" "$WORK/badinput.out"
    check "daemon still running after hostile input" alive
    check "daemon exits 0 on SIGTERM" stop_daemon
else
    not_ok "daemon starts"
fi
finish
