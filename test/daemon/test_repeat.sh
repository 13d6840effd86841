#!/usr/bin/env bash
# test_repeat.sh - one full explanation per cause, short repeats (diagnosis_repeat_interval),
# through the daemon with the relay check: repeats inside the interval are short (key, verdict,
# cause code, where the full text is) and under 300 bytes, the interval's end brings the full
# text back, the first recipient of a new message (instance) gets it, so does another client,
# interval 0 writes every line in full, a reload changes the interval, and SIGUSR1 logs the
# counts by cause code.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

# probe N CLIENT INSTANCE - a relay probe to rN@foreign.example; prints the reply's action.
probe() {
    req client_address="$2" client_name=unknown recipient="r$1@foreign.example" \
        sender=spam@foreign.example helo_name=bot.example instance="$3" queue_id= | ask - | head -1
}
# line_for N - the log line of the probe to rN@foreign.example.
line_for() { grep "to=<r$1@foreign.example>" "$WORK/policyd.log" | tail -1; }
full() { line_for "$1" | grep -q "relay: reject: 554 5.7.1 Relay access denied; cause_code=relay.not_mynetworks; cause=relay denied: client $2 (unknown) is not in mynetworks.*; fix=if $2 is your client"; }
short() { line_for "$1" | grep -qE "^[A-Z][a-z]{2} [ 0-9]{2} [0-9:]{8} [^ ]+ [^ ]+\[[0-9]+\]: NOQUEUE: client=unknown\[$2\], from=<spam@foreign.example>, to=<r$1@foreign.example>, helo=<bot.example>: relay: reject: 554 5.7.1; cause_code=relay.not_mynetworks; as explained at [0-9]{2}:[0-9]{2}:[0-9]{2} for client $2, $3 since$"; }

write_conf "$WORK/policyd.conf" "checks = relay" "mynetworks = 127.0.0.0/8" \
    "relay_domains = example.com" "diagnosis_repeat_interval = 2s"
if start_daemon "$WORK/policyd.conf"; then
    check "a refused probe is answered" test "$(probe 1 203.0.113.50 m1)" = "action=554 5.7.1 Relay access denied"
    probe 2 203.0.113.50 m1 >/dev/null
    probe 3 203.0.113.50 m1 >/dev/null
    check "first time: the full explanation" full 1 203.0.113.50
    check "repeat inside the interval: short, pointing at the full line" short 2 203.0.113.50 "1 time"
    check "the next repeat counts on" short 3 203.0.113.50 "2 times"
    explained=$(line_for 1 | cut -c8-15)
    check "the short line names the time of the full one ($explained)" \
        grep -q "to=<r3@foreign.example>.*as explained at $explained for" "$WORK/policyd.log"
    len=$(line_for 3 | wc -c)
    check "a short line is under 300 bytes ($len, the syslog prefix included)" test "$len" -lt 300
    check "grep to=<x> finds the short line" grep -q "to=<r3@foreign.example>" "$WORK/policyd.log"

    probe 4 203.0.113.51 m9 >/dev/null
    check "another client: its own full explanation" full 4 203.0.113.51
    probe 5 203.0.113.50 m2 >/dev/null
    probe 6 203.0.113.50 m2 >/dev/null
    check "the first recipient of a new message: full" full 5 203.0.113.50
    check "the second recipient of that message: short" short 6 203.0.113.50 "1 time"

    sleep 2.3
    probe 7 203.0.113.50 m2 >/dev/null
    probe 8 203.0.113.50 m2 >/dev/null
    check "after the interval: full again, even inside the same message" full 7 203.0.113.50
    check "and short again after it" short 8 203.0.113.50 "1 time"

    # A reload to diagnosis_repeat_interval = 0 takes effect at once: every line in full.
    write_conf "$WORK/policyd.conf" "checks = relay" "mynetworks = 127.0.0.0/8" \
        "relay_domains = example.com" "diagnosis_repeat_interval = 0"
    kill -HUP "$DAEMON_PID"
    wait_log "reload" >/dev/null
    sleep 0.3
    for n in 9 10 11; do probe $n 203.0.113.50 m2 >/dev/null; done
    check "after a reload to 0: every line in full (1)" full 9 203.0.113.50
    check "after a reload to 0: every line in full (2)" full 10 203.0.113.50
    check "after a reload to 0: every line in full (3)" full 11 203.0.113.50

    kill -USR1 "$DAEMON_PID"
    check "SIGUSR1 logs the counts by cause code" wait_log "statistics: causes: relay.not_mynetworks=11$"
    check "and the full and short lines" wait_log "diagnoses_full=7 diagnoses_short=4"
    stop_daemon
fi

# diagnosis_repeat_interval = 0 from the start: today's behaviour, whatever repeats.
: >"$WORK/policyd.log"
write_conf "$WORK/policyd.conf" "checks = relay" "mynetworks = 127.0.0.0/8" \
    "relay_domains = example.com" "diagnosis_repeat_interval = 0"
if start_daemon "$WORK/policyd.conf"; then
    for n in 20 21 22; do probe $n 203.0.113.60 m1 >/dev/null; done
    check "interval 0: every repeat in full" \
        test "$(grep -c 'cause_code=relay.not_mynetworks; cause=relay denied: client 203.0.113.60 ' "$WORK/policyd.log")" -eq 3
    check "interval 0: no short line" test "$(grep -c 'as explained at' "$WORK/policyd.log")" -eq 0
    stop_daemon
fi
finish
