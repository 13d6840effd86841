#!/usr/bin/env bash
# test_transcript.sh - the daemon on a unix socket: each transcripts/NAME.in is sent on one
# connection under transcripts/NAME.conf; the replies and the diagnosis log lines must equal
# transcripts/NAME.ref. UPDATE=1 rewrites the .ref files (review the diff before committing).
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

for in in "$TESTDIR"/transcripts/*.in; do
    name=$(basename "$in" .in)
    ref=${in%.in}.ref
    conf=$WORK/$name.conf
    # shellcheck disable=SC2046
    mapfile -t extra <"${in%.in}.conf"
    write_conf "$conf" "${extra[@]}"
    : >"$WORK/policyd.log"
    if ! start_daemon "$conf"; then
        not_ok "transcript $name: daemon starts"
        continue
    fi
    got=$WORK/$name.got
    ask "$in" >"$got" || true
    stop_daemon || not_ok "transcript $name: daemon exits 0 on SIGTERM"
    {
        echo "--- log"
        log_lines | grep -E '^(NOQUEUE|[0-9A-F]{6,}): ' || true
    } >>"$got"
    if [ "${UPDATE:-0}" = 1 ]; then
        cp "$got" "$ref"
    fi
    if diff -u "$ref" "$got"; then
        ok "transcript $name"
    else
        not_ok "transcript $name"
    fi
done
finish
