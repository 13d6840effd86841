#!/usr/bin/env bash
# test_quota_stall.sh - quota files are read off the event loop (issue 12, item 8). Storage that
# hangs is made real by an LD_PRELOAD shim (stall_open.so: an open of a path containing
# "/stalled-" blocks until a release file appears, as on a dead NFS server). While one mailbox's
# maildirsize read hangs, other clients - recipients with and without quota, unknown ones - are
# answered at normal speed (each < 100 ms); the stalled one gets no quota decision (DUNNO, never
# a 5xx) after recipient_quota_timeout, within request_deadline; when every reader thread is
# stuck, the check answers at once without a quota decision; the stall is logged once with the
# file and its mount; a client that leaves while its read hangs, a call cancelled while its read
# hangs, a reload while reads hang, and reads that return late break nothing; the stop does not
# wait for a stuck thread; and another check's answer still counts for the stalled request.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
SHIM=${BUILD:-$(cd "$TESTDIR/../.." && pwd)/build/release}/test/stall_open.so
if [ ! -f "$SHIM" ]; then
    not_ok "the stall shim is built ($SHIM; make unit-bins builds it)"
    finish
    exit 1
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export STALL_MARKER=/stalled- STALL_RELEASE=$WORK/release STALL_LOG=$WORK/stalls STALL_SECONDS=8

mkdir -p "$WORK/mail/example.com"
{
    for u in alice bob carol; do echo "$u@example.com example.com/$u/"; done
    for n in 1 2 3 4 5 6; do echo "s$n@example.com example.com/stalled-$n/"; done
} >"$WORK/vmailbox"
mkd() { mkdir -p "$WORK/mail/example.com/$1" && printf '%b' "$2" >"$WORK/mail/example.com/$1/maildirsize"; }
mkd alice '1000000S,1000C\n1200 2\n' # room
mkd bob '1000S,10C\n900 3\n'         # full for 200 bytes
mkdir -p "$WORK/mail/example.com/carol"
# The stalled mailboxes would be full too: a 452 from them would mean the read was waited for.
for n in 1 2 3 4 5 6; do mkd "stalled-$n" '1000S,10C\n900 3\n'; done
MOUNT=$(df --output=target "$WORK/mail" | tail -1)

common=("virtual_mailbox_domains = example.com" "recipient_maps = texthash:$WORK/vmailbox"
    "virtual_mailbox_base = $WORK/mail" "recipient_quota_cache = 0" "request_deadline = 3s"
    "recipient_quota_timeout = 1s" "offload_threads = 2")
write_conf "$WORK/q.conf" "checks = recipient" "${common[@]}"

for r in alice bob carol nobody s1 s2 s3 s4 s5 s6; do
    req client_address=203.0.113.7 recipient="$r@example.com" size=200 >"$WORK/$r.req"
done
# timed NAME [--drop] - one request on a fresh connection: "MS REPLY-LINE".
timed() { $PY "$TESTDIR/timed.py" "$WORK/policyd.sock" "${@:2}" <"$WORK/$1.req"; }
# wait_stall N - wait (bounded) until the open of stalled-N hangs in the shim.
wait_stall() {
    for _ in $(seq 1 100); do
        grep -q "/stalled-$1/" "$WORK/stalls" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# others - alice, bob, carol and an unknown user, three rounds, each on a new connection: sets
# worst (the slowest, in ms) and bad (the wrong answers).
want_alice="action=DUNNO" want_bob="action=452 4.2.2 Mailbox full" want_carol="action=DUNNO"
want_nobody="action=550 5.1.1 User unknown"
others() {
    worst=0 bad=
    for _ in 1 2 3; do
        for r in alice bob carol nobody; do
            read -r ms reply < <(timed "$r")
            local want="want_$r"
            [ "$reply" = "${!want}" ] || bad="$bad $r:'$reply'"
            [ "$ms" -gt "$worst" ] && worst=$ms
        done
    done
}

rm -f "$WORK/release" "$WORK/stalls"
if LD_PRELOAD=$SHIM start_daemon "$WORK/q.conf"; then
    # 1. One mailbox hangs: everyone else goes on at normal speed.
    timed s1 >"$WORK/s1.out" &
    s1_pid=$!
    check "the maildirsize read of s1 hangs (the shim holds its open)" wait_stall 1
    others
    check "while s1's quota read hangs, others are answered at once (worst ${worst} ms < 100)" test "$worst" -lt 100
    check "... and rightly: with room, full, without quota, unknown${bad:+ (got$bad)}" test -z "$bad"
    wait "$s1_pid"
    read -r ms reply <"$WORK/s1.out"
    check "the stalled recipient gets no quota decision: DUNNO, no 5xx (got '$reply')" test "$reply" = "action=DUNNO"
    check "... after recipient_quota_timeout, within request_deadline (${ms} ms, 900..3000)" test "$ms" -ge 900 -a "$ms" -le 3000
    check "the stall is logged with the file and its mount" \
        grep -qF "warning: recipient: quota reads are stalled: $WORK/mail/example.com/stalled-1/maildirsize has not answered for" "$WORK/policyd.log"
    check "... the mount named ($MOUNT)" grep -qE "has not answered for [0-9]+ ms \(mount $MOUNT \(" "$WORK/policyd.log"
    check "... with its cause code" grep -q "cause_code=recipient.quota_stalled; fix=check the storage behind that mount" "$WORK/policyd.log"

    # 2. A client leaves while its read hangs (the second thread is stuck with it); then
    # every thread is stuck: the check answers at once, without a quota decision.
    timed s2 --drop >/dev/null
    check "the read of s2 hangs too (its client has gone)" wait_stall 2
    sleep 1.1 # both reads are older than recipient_quota_timeout now
    worst=0 bad=
    for r in s3 bob carol s1; do
        read -r ms reply < <(timed "$r")
        [ "$reply" = "action=DUNNO" ] || bad="$bad $r:'$reply'"
        [ "$ms" -gt "$worst" ] && worst=$ms
    done
    read -r ms reply < <(timed nobody)
    [ "$reply" = "$want_nobody" ] || bad="$bad nobody:'$reply'"
    [ "$ms" -gt "$worst" ] && worst=$ms
    check "every thread stuck: new quota reads are not queued behind them, all answered at once (worst ${worst} ms < 100)" test "$worst" -lt 100
    check "... no quota decision for any (bob would be full), the unknown user still refused${bad:+ (got$bad)}" test -z "$bad"
    check "... s3's file was never opened (no thread took it)" test -z "$(grep /stalled-3/ "$WORK/stalls")"
    check "the stalled line is rate-limited: one for all of these" \
        test "$(grep -c 'quota reads are stalled' "$WORK/policyd.log")" -eq 1

    # 3. A reload while both threads are stuck: the new configuration takes the pool over;
    # then the reads return late - into the old configuration's cache or nowhere.
    kill -HUP "$DAEMON_PID"
    check "a reload while the reads hang completes" wait_log "reloaded $WORK/q.conf"
    # Another thread count: a new pool; the old one, with both threads stuck, is let go
    # without waiting for them.
    write_conf "$WORK/q.conf" "checks = recipient" "${common[@]/offload_threads = 2/offload_threads = 3}"
    kill -HUP "$DAEMON_PID"
    for _ in $(seq 1 100); do
        [ "$(grep -c "reloaded $WORK/q.conf" "$WORK/policyd.log")" -ge 2 ] && break
        sleep 0.02
    done
    read -r ms reply < <(timed bob)
    check "a reload to 3 threads while 2 hang: bob's quota read now ('$reply' in ${ms} ms)" test "$reply" = "$want_bob"
    touch "$WORK/release"
    worst=0
    for _ in $(seq 1 40); do # the stuck threads come back within the shim's poll (10 ms)
        read -r ms reply < <(timed bob)
        [ "$reply" = "$want_bob" ] && break
        sleep 0.05
    done
    check "when the storage answers again, quotas decide again (bob: '$reply')" test "$reply" = "$want_bob"
    read -r ms reply < <(timed s1)
    check "... s1's full mailbox too, now read in ${ms} ms ('$reply')" test "$reply" = "$want_bob"
    check "the daemon is alive after the late results" alive
    others
    check "normal speed again (worst ${worst} ms)${bad:+ (got$bad)}" test "$worst" -lt 100 -a -z "$bad"

    # 4. The stop does not wait for a thread stuck in a read.
    rm -f "$WORK/release"
    read -r ms reply < <(timed s4)
    check "s4 hangs and gets DUNNO ('$reply', ${ms} ms)" test "$reply" = "action=DUNNO"
    check "the read of s4 still hangs" wait_stall 4
    t0=$(now_ms)
    stop_daemon
    rc=$?
    t1=$(now_ms)
    check "SIGTERM with a thread stuck in a read: exit 0 in $((t1 - t0)) ms (< 1500)" test "$rc" -eq 0 -a $((t1 - t0)) -lt 1500
fi

# 5. Another check's answer still counts for a request whose quota read hangs: the recipient
# check gives up before request_deadline, so the answer is greylist's, not fallback_action.
write_conf "$WORK/g.conf" "checks = recipient, greylist" "${common[@]}" "greylist_policy = all" \
    "state_store = lmdb:$WORK/state.lmdb" "fallback_action = 451 4.3.0 fallback"
rm -f "$WORK/release"
if LD_PRELOAD=$SHIM start_daemon "$WORK/g.conf"; then
    read -r ms reply < <(timed s5)
    check "stalled quota read, greylist decides: the answer is greylist's 450 ('$reply', ${ms} ms < 3000)" \
        test "${reply#action=450 }" != "$reply" -a "$ms" -lt 3000
    touch "$WORK/release"
    stop_daemon
fi

# 6. A call cancelled while its read hangs (greylist, first in order, decides at once, so the
# recipient call is not needed): the answer does not wait, and the read's late result touches
# no freed call.
write_conf "$WORK/g2.conf" "checks = greylist, recipient" "${common[@]}" "greylist_policy = all" \
    "state_store = lmdb:$WORK/state.lmdb"
rm -f "$WORK/release"
if LD_PRELOAD=$SHIM start_daemon "$WORK/g2.conf"; then
    read -r ms reply < <(timed s6)
    check "greylist first: answered at once while the quota read hangs ('$reply', ${ms} ms < 100)" \
        test "${reply#action=450 }" != "$reply" -a "$ms" -lt 100
    check "the read of s6 hangs (its call was cancelled)" wait_stall 6
    touch "$WORK/release"
    sleep 0.2 # the late result comes back to the loop
    read -r ms reply < <(timed alice)
    check "after the late result the daemon answers ('$reply')" test "${reply#action=}" != "$reply"
    check "daemon exits 0" stop_daemon
fi
touch "$WORK/release"
finish
