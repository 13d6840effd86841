#!/usr/bin/env bash
# test_greylist.sh - the greylist check (issue 11) on LMDB: the first attempt of a client
# without a forward-confirmed name is deferred 450 4.2.0 with first seen and earliest retry; a
# retry before the delay too; after the (shortened) delay it passes, from another address of the
# same /24 too, with a new bounce tag; forward-confirmed clients, skip networks and
# authenticated clients are not greylisted; greylist_policy = all; warn (learn) mode records
# without deferring; the automatic whitelist (greylist_awl_passes) through the check; the
# store-failure policy.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

write_conf "$WORK/g.conf" "checks = greylist" "diagnosis_repeat_interval = 0" "state_store = lmdb:$WORK/state.lmdb" \
    "greylist_delay = 2s" "greylist_skip_networks = 192.0.2.0/24" "recipient_delimiter = +"

# try ADDR SENDER [RCPT] [CLIENT_NAME] - one RCPT attempt, the answer
try() { req client_address="$1" client_name="${4:-unknown}" reverse_client_name=unknown sender="$2" recipient="${3:-bob@example.com}" | ask - | grep '^action='; }
expect() {
    local name=$1 want=$2 got=$3
    if [[ "$got" == $want ]]; then ok "$name"; else not_ok "$name (got: $got; want: $want)"; fi
}
if start_daemon "$WORK/g.conf"; then
    expect "first attempt: 450 4.2.0 with the wait" "action=450 4.2.0 Greylisted, please try again in [12] seconds" \
        "$(try 203.0.113.7 'news+123@sender.example')"
    check "diagnosis: first seen, earliest retry, network, normalised sender, fix" \
        grep -qE "greylist: defer: 450 4\.2\.0 .*cause=first attempt greylisted: client unknown\[203\.0\.113\.7\] \(network 203\.0\.113\.0/24, suspicious: no forward-confirmed reverse name\), sender <news\+123@sender\.example> \(as news@sender\.example\), recipient <bob@example\.com>: first seen [-0-9: ]+, earliest retry [-0-9: ]+ \(in [12]s\).*fix=none needed for a real mail server" "$WORK/policyd.log"
    expect "retry before the delay: still 450" "action=450 4.2.0 Greylisted, please try again in [12] seconds" \
        "$(try 203.0.113.7 'news+456@sender.example')"
    expect "a forward-confirmed client is not greylisted" "action=DUNNO" "$(try 198.51.100.9 a@b.example bob@example.com mx.b.example)"
    expect "a skip network is not greylisted" "action=DUNNO" "$(try 192.0.2.55 a@b.example)"
    got=$(req client_address=203.0.113.99 client_name=unknown sasl_username=u@example.com sender=x@y.example | ask - | grep '^action=')
    expect "an authenticated client is not greylisted" "action=DUNNO" "$got"
    expect "SRS: first attempt greylisted" "action=450 4.2.0*" "$(try 203.0.113.7 'SRS0=HHH=TT=orig.example=jane@fwd.example')"
    sleep 2.2
    expect "after the delay: from another address of the /24, with another tag: DUNNO" "action=DUNNO" \
        "$(try 203.0.113.200 'news+789@sender.example')"
    expect "SRS: the retry with another hash passes (same original sender)" "action=DUNNO" \
        "$(try 203.0.113.7 'SRS0=XYZ=UU=orig.example=jane@fwd.example')"
    expect "a passed triplet keeps passing" "action=DUNNO" "$(try 203.0.113.7 'news@sender.example')"
    expect "BATV: the tagged sender is the passed triplet" "action=DUNNO" "$(try 203.0.113.7 'prvs=0123abcd=news@sender.example')"
    expect "SRS1 (forwarded twice): the original sender's passed triplet" "action=DUNNO" \
        "$(try 203.0.113.7 'SRS1=HHH=fwd.example==HHH=TT=orig.example=jane@fwd2.example')"
    try 203.0.113.7 'news-4711@sender.example' >/dev/null
    expect "VERP-style numbers: the next message deferred too" "action=450 4.2.0*" "$(try 203.0.113.7 'news-4712@sender.example')"
    check "VERP-style numbers: ... as a retry of the same triplet" \
        grep -q "retried too early: .*sender <news-4712@sender.example> (as news-#@sender.example)" "$WORK/policyd.log"
    expect "another recipient is a new triplet" "action=450 4.2.0*" "$(try 203.0.113.7 news@sender.example carol@example.com)"
    stop_daemon
fi
# The passes survive a restart (LMDB).
if start_daemon "$WORK/g.conf"; then
    expect "after a restart the passed triplet still passes" "action=DUNNO" "$(try 203.0.113.7 'news@sender.example')"
    stop_daemon
fi

# greylist_policy = all, and learn (warn) mode, written as the issue names it: recorded, logged,
# not deferred.
write_conf "$WORK/w.conf" "checks = greylist" "state_store = lmdb:$WORK/state.lmdb" \
    "greylist_delay = 2s" "greylist_policy = all" "greylist_mode = learn"
if start_daemon "$WORK/w.conf"; then
    expect "learn mode: first attempt answered DUNNO" "action=DUNNO" "$(try 198.51.100.9 learn@b.example bob@example.com mx.b.example)"
    check "learn mode: 'would defer' logged" grep -qE "would defer.*first attempt greylisted: client mx\.b\.example\[198\.51\.100\.9\] \(network 198\.51\.100\.0/24, greylist_policy = all\)" "$WORK/policyd.log"
    stop_daemon
fi
write_conf "$WORK/a.conf" "checks = greylist" "state_store = lmdb:$WORK/state.lmdb" \
    "greylist_delay = 2s" "greylist_policy = all" "greylist_skip_client_names = bigmail.example"
if start_daemon "$WORK/a.conf"; then
    sleep 2.1
    expect "learn mode recorded the triplet: it passes after the delay in enforce mode" "action=DUNNO" \
        "$(try 198.51.100.9 learn@b.example bob@example.com mx.b.example)"
    expect "greylist_policy = all: a named client's new triplet is greylisted" "action=450 4.2.0*" \
        "$(try 198.51.100.9 other@b.example bob@example.com mx.b.example)"
    expect "greylist_skip_client_names: a verified name in the list (subdomain) is not greylisted" "action=DUNNO" \
        "$(try 198.51.100.20 x@bigmail.example bob@example.com out3.bigmail.example)"
    got=$(req client_address=198.51.100.21 client_name=unknown reverse_client_name=out4.bigmail.example sender=y@bigmail.example | ask - | grep '^action=')
    expect "greylist_skip_client_names: an unverified PTR name does not count" "action=450 4.2.0*" "$got"
    stop_daemon
fi

# The automatic whitelist through the check (the hour is tested under a controlled clock in
# test/unit/test_store.c): two passes of one client network within the hour count once, so
# with greylist_awl_passes = 2 it is not whitelisted; with 1 its pass whitelists the /24.
write_conf "$WORK/awl2.conf" "checks = greylist" "state_store = lmdb:$WORK/awl.lmdb" \
    "greylist_delay = 1s" "greylist_awl_passes = 2"
if start_daemon "$WORK/awl2.conf"; then
    try 198.18.0.7 one@awl.example >/dev/null
    try 198.18.0.7 two@awl.example >/dev/null
    sleep 1.1
    expect "AWL: a first pass" "action=DUNNO" "$(try 198.18.0.7 one@awl.example)"
    expect "AWL: a second pass in the same hour" "action=DUNNO" "$(try 198.18.0.8 two@awl.example)"
    expect "AWL: greylist_awl_passes = 2, two passes within an hour: a new triplet is greylisted" \
        "action=450 4.2.0*" "$(try 198.18.0.7 three@awl.example)"
    stop_daemon
fi
write_conf "$WORK/awl1.conf" "checks = greylist" "state_store = lmdb:$WORK/awl.lmdb" \
    "greylist_delay = 1s" "greylist_awl_passes = 1"
if start_daemon "$WORK/awl1.conf" -v; then
    expect "AWL: greylist_awl_passes = 1: the network's counted pass whitelists a new triplet" \
        "action=DUNNO" "$(try 198.18.0.99 four@awl.example)"
    check "... noted as whitelisted" grep -q "greylist: dunno: client network 198.18.0.0/24 is whitelisted (1 passes)" "$WORK/policyd.log"
    expect "AWL: another network is not whitelisted" "action=450 4.2.0*" "$(try 198.18.1.7 four@awl.example)"
    stop_daemon
fi

# The store fails: greylist_store_failure = defer answers 451, dunno accepts.
write_conf "$WORK/f.conf" "checks = greylist" "state_store = redis:unix:$WORK/nosuch.sock" \
    "greylist_store_failure = defer" "state_timeout = 100ms"
if start_daemon "$WORK/f.conf"; then
    expect "store down, greylist_store_failure = defer: 451 4.3.0" "action=451 4.3.0*" "$(try 203.0.113.7 a@b.example)"
    stop_daemon
fi
write_conf "$WORK/f2.conf" "checks = greylist" "state_store = redis:unix:$WORK/nosuch.sock" "state_timeout = 100ms"
if start_daemon "$WORK/f2.conf"; then
    expect "store down, greylist_store_failure = dunno: DUNNO" "action=DUNNO" "$(try 203.0.113.7 a@b.example)"
    stop_daemon
fi
finish
