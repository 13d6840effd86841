#!/usr/bin/env bash
# test_recipient.sh - unknown users and full mailboxes (issue 5): tables built by the real
# postmap (texthash source and lmdb), Postfix's lookup order, recipient_delimiter, case, catch-
# all, close matches in the diagnosis, Maildir++ quota files (room, full by bytes and by count,
# missing, garbled), a table changed on disk picked up, a broken one keeping the last good copy.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
export PATH="$PATH:/usr/sbin:/sbin"
mkdir -p "$WORK/pf" "$WORK/mail"
echo "compatibility_level = 3.6" >"$WORK/pf/main.cf"
cat >"$WORK/vmailbox" <<'EOF2'
# virtual mailboxes
alice@example.com   example.com/alice/
bob@example.com     example.com/bob/
carol@example.com   example.com/carol/
dave@example.com    example.com/dave/
erin@example.com    example.com/erin/ 5000
EOF2
printf '@catch.example catchall/\n' >"$WORK/virtual"
postmap -c "$WORK/pf" "lmdb:$WORK/vmailbox" || not_ok "postmap lmdb"
mkd() { mkdir -p "$WORK/mail/example.com/$1"; printf '%b' "$2" >"$WORK/mail/example.com/$1/maildirsize"; }
mkd alice '1000000S,1000C\n1200 2\n'
mkd bob '1000S,10C\n900 3\n'
mkdir -p "$WORK/mail/example.com/carol"
mkd dave 'this is not a quota file\n'
mkd erin '0S\n4900 2\n'
write_conf "$WORK/r.conf" "checks = recipient" "virtual_mailbox_domains = example.com, catch.example" \
    "recipient_maps = lmdb:$WORK/vmailbox, texthash:$WORK/virtual" "recipient_delimiter = +" \
    "virtual_mailbox_base = $WORK/mail" "recipient_table_check_interval = 1s" "recipient_quota_cache = 1s"
answer() { req client_address=203.0.113.7 recipient="$1" size="${2:-0}" | ask - | head -1; }
expect() {
    local name=$1 rcpt=$2 size=$3 want=$4 got
    got=$(answer "$rcpt" "$size")
    if [[ "$got" == $want ]]; then ok "$name"; else not_ok "$name (got: $got; want: $want)"; fi
}
if start_daemon "$WORK/r.conf"; then
    expect "known user" alice@example.com 0 "action=DUNNO"
    expect "known user, other case" Alice@EXAMPLE.com 0 "action=DUNNO"
    expect "known user with an extension (recipient_delimiter)" alice+lists@example.com 0 "action=DUNNO"
    expect "catch-all @domain in a second table" anyone@catch.example 0 "action=DUNNO"
    expect "other domains are not ours to judge" nobody@foreign.example 0 "action=DUNNO"
    expect "unknown user refused 550 5.1.1" alicee@example.com 0 "action=550 5.1.1 User unknown"
    check "unknown: the diagnosis names tables, keys and the close match" \
        grep -q "recipient: reject: 550 5.1.1 User unknown; cause_code=recipient.unknown; cause=example.com is in virtual_mailbox_domains (a domain this server hosts), but no table knows alicee@example.com: looked up alicee@example.com, @example.com in lmdb:$WORK/vmailbox, texthash:$WORK/virtual; close matches: alice@example.com; fix=if alicee@example.com should receive mail, add it to lmdb:$WORK/vmailbox (for a hash: or lmdb: table, then run postmap" "$WORK/policyd.log"
    expect "unknown user with an extension" zed+x@example.com 0 "action=550 5.1.1 User unknown"
    check "extension: both keys tried" grep -q "looked up zed+x@example.com, zed@example.com, @example.com" "$WORK/policyd.log"
    expect "user with room" alice@example.com 5000 "action=DUNNO"
    expect "full mailbox by bytes: 452 4.2.2" bob@example.com 200 "action=452 4.2.2 Mailbox full"
    check "full: usage and quota in the diagnosis" \
        grep -q "cause_code=recipient.full; cause=mailbox of bob@example.com ($WORK/mail/example.com/bob/) is full: 900 bytes in 3 messages used, quota 1000 bytes / 10 messages; this message announces 200 bytes" "$WORK/policyd.log"
    expect "the same mailbox fits a small message" bob@example.com 50 "action=DUNNO"
    expect "quota from the table field is not used unless configured" erin@example.com 200 "action=DUNNO"
    expect "no maildirsize: no decision" carol@example.com 100 "action=DUNNO"
    check "no maildirsize: silent (no quota is not full; issue 12)" \
        test -z "$(grep 'no quota decision for carol@example.com' "$WORK/policyd.log")"
    expect "garbled maildirsize: no decision" dave@example.com 100 "action=DUNNO"
    check "garbled maildirsize: a warning says why" grep -q "warning: recipient: no quota decision for dave@example.com: $WORK/mail/example.com/dave/maildirsize: quota line is not like 1000000S,1000C" "$WORK/policyd.log"
    # A table changed on disk is picked up without a restart.
    printf '@catch.example catchall/\nnewbie@example.com example.com/newbie/\n' >"$WORK/virtual"
    touch -d '+2 seconds' "$WORK/virtual"
    sleep 1.2
    answer newbie@example.com >/dev/null # the first lookup after the interval starts the reload
    got=
    for _ in $(seq 1 40); do
        got=$(answer newbie@example.com)
        [ "$got" = "action=DUNNO" ] && break
        sleep 0.1
    done
    check "a table changed on disk is reloaded (newbie known now)" test "$got" = "action=DUNNO"
    check "the reload is logged" wait_log "recipient: texthash:$WORK/virtual: reloaded \(2 entries\)"
    # A table that cannot be read any more keeps the last good copy.
    printf '  broken continuation\n' >"$WORK/virtual"
    touch -d '+4 seconds' "$WORK/virtual"
    sleep 1.2
    answer newbie@example.com >/dev/null
    sleep 0.5
    expect "a broken table keeps the last good copy" newbie@example.com 0 "action=DUNNO"
    # The refresh is the check's own timer (a tick a second): wait for it, bounded.
    check "the failed reload is logged" wait_log "warning: recipient: texthash:$WORK/virtual: cannot be reloaded"
    check "daemon exits 0" stop_daemon
fi
# A quota in the table value (second field): erin@example.com has 5000 bytes, uses 4900.
write_conf "$WORK/q.conf" "checks = recipient" "virtual_mailbox_domains = example.com" \
    "recipient_maps = lmdb:$WORK/vmailbox" "virtual_mailbox_base = $WORK/mail" "recipient_quota_field = 2"
if start_daemon "$WORK/q.conf"; then
    expect "quota from the table: full" erin@example.com 200 "action=452 4.2.2 Mailbox full"
    check "the diagnosis says where the quota came from" grep -q "quota 5000 bytes (from the table)" "$WORK/policyd.log"
    expect "quota from the table: room for a small message" erin@example.com 50 "action=DUNNO"
    stop_daemon
fi
# SIGHUP with a large table: the new configuration loads in a thread; requests keep their pace.
awk 'BEGIN { for (i = 0; i < 500000; i++) printf "user%d@example.com example.com/user%d/\n", i, i }' >"$WORK/big"
write_conf "$WORK/big.conf" "checks = recipient" "virtual_mailbox_domains = example.com" \
    "recipient_maps = texthash:$WORK/big"
if start_daemon "$WORK/big.conf"; then
    kill -HUP "$DAEMON_PID"
    slow=$($PY - "$WORK/policyd.sock" <<'PYEOF'
import socket, sys, time
req = b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=203.0.113.7\nrecipient=user7@example.com\n\n"
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1])
worst = 0.0
for _ in range(40):
    t = time.time(); s.sendall(req); buf = b""
    while not buf.endswith(b"\n\n"):
        buf += s.recv(4096)
    worst = max(worst, time.time() - t); time.sleep(0.01)
print("%.0f" % (worst * 1000))
PYEOF
)
    check "requests answered during a SIGHUP reload of a 500,000-entry table (worst ${slow} ms)" test "$slow" -lt 100
    check "the reload completes" wait_log "reloaded $WORK/big.conf"
    stop_daemon
fi
write_conf "$WORK/missing.conf" "checks = recipient" "recipient_maps = lmdb:$WORK/nosuch"
out=$("$POLICYD" -c "$WORK/missing.conf" -t 2>&1); rc=$?
check "a missing table at start is a configuration error with file and reason" \
    test "$rc" -eq 1 -a -n "$(grep -F "recipient check: recipient_maps: $WORK/nosuch.lmdb: No such file or directory (build it with: postmap lmdb:$WORK/nosuch)" <<<"$out")"
finish
