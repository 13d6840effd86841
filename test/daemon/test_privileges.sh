#!/usr/bin/env bash
# test_privileges.sh - privileges checked, not discovered later (issue 12). Run as root with
# user = policyd (etc/install-deps.sh creates it): -t refuses every kind of file the
# configuration names that only root can read (texthash and lmdb tables, a /file list, DKIM key
# files, OpenDKIM's KeyTable, greylist_skip_clients_file, a file behind a directory the user
# cannot enter) with FILE:LINE
# and the fix; with user = root the same files pass. Then the daemon runs: its log file is
# created owned by policyd, SIGHUP re-reads a table as policyd and reopens the log after a
# rotation; a socket and pid file it may not remove are announced at start and stay; in a
# directory of its own they are removed at the stop.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ] || ! id policyd >/dev/null 2>&1; then
    echo "# skipped: needs root and the user policyd (etc/install-deps.sh)"
    ok "skipped: needs root and the user policyd"
    finish
    exit
fi
export PATH=$PATH:/usr/sbin
chmod 755 "$WORK"
mkdir -p "$WORK/etc" "$WORK/run" "$WORK/log" "$WORK/secret" "$WORK/pf"
chmod 700 "$WORK/secret"
chown policyd "$WORK/log"
echo "compatibility_level = 3.6" >"$WORK/pf/main.cf"
printf 'example.com OK\n' >"$WORK/etc/relay"
printf '127.0.0.0/8\n' >"$WORK/etc/mynets"
printf 'u@example.net x\n' >"$WORK/etc/rcpt"
postmap -c "$WORK/pf" "lmdb:$WORK/etc/rcpt"
echo "not a real key" >"$WORK/etc/key.pem"
echo "not a real key either" >"$WORK/etc/kt-key.pem"
printf 'k1 example.org:sel:%s\n' "$WORK/etc/kt-key.pem" >"$WORK/etc/KeyTable"
printf 'KeyTable %s\n' "$WORK/etc/KeyTable" >"$WORK/etc/opendkim.conf"
printf 'hidden.example OK\n' >"$WORK/secret/relay"
printf 'mail.example.org\n/^mx\\d+\\.example\\.net$/\n192.0.2\n' >"$WORK/etc/whitelist_clients"
chmod 644 "$WORK"/etc/* "$WORK/secret/relay"

CONF=$WORK/policyd.conf
# conf LINES... - the configuration for user = policyd (line 4 onwards: the arguments).
conf() {
    {
        echo "postfix_config_directory ="
        echo "listen = unix:$WORK/run/policyd.sock"
        echo "log_file = $WORK/log/policyd.log"
        for line in "$@"; do echo "$line"; done
    } >"$CONF"
}
# refused NAME FILE WANT LINES... - with user = policyd (line 4) and LINES (line 5 on), -t must
# refuse FILE (made root-only) with WANT in the message; with user = root it must not.
refused() {
    local name=$1 file=$2 want=$3 out rc=0
    shift 3
    conf "user = policyd" "$@"
    chmod 600 "$file"
    out=$("$POLICYD" -c "$CONF" -t 2>&1) || rc=$?
    if [ "$rc" -eq 1 ] && [[ "$out" == *"$want"* ]] &&
        [[ "$out" == *"fix: chgrp policyd $file; chmod 640 $file"* ]]; then
        ok "-t refuses a root-only $name, with FILE:LINE and the fix"
    else
        not_ok "-t refuses a root-only $name (exit $rc, got: $out; want: $want)"
    fi
    conf "user = root" "$@"
    rc=0
    out=$("$POLICYD" -c "$CONF" -t 2>&1) || rc=$?
    check "... and with user = root the same file passes" test "$rc" -eq 0
    chgrp policyd "$file"
    chmod 640 "$file"
    conf "user = policyd" "$@"
    rc=0
    out=$("$POLICYD" -c "$CONF" -t 2>&1) || rc=$?
    check "... and passes after the fix (chgrp policyd; chmod 640)" test "$rc" -eq 0 -a -z "$out"
    chgrp root "$file"
    chmod 644 "$file"
}
refused "texthash table" "$WORK/etc/relay" "$CONF:5: relay_domains: $WORK/etc/relay is readable by root but not by user policyd" \
    "relay_domains = texthash:$WORK/etc/relay"
refused "/file list" "$WORK/etc/mynets" "$CONF:5: mynetworks: $WORK/etc/mynets is readable by root but not by user policyd" \
    "mynetworks = $WORK/etc/mynets"
refused "lmdb table" "$WORK/etc/rcpt.lmdb" "$CONF:7: recipient_maps: $WORK/etc/rcpt.lmdb is readable by root" \
    "checks = relay, recipient" "virtual_mailbox_domains = example.net" \
    "recipient_maps = lmdb:$WORK/etc/rcpt"
refused "DKIM key file" "$WORK/etc/key.pem" "$CONF:5: dkim_keys: $WORK/etc/key.pem is readable by root" \
    "dkim_keys = sel:example.test:$WORK/etc/key.pem"
refused "greylist_skip_clients_file" "$WORK/etc/whitelist_clients" \
    "$CONF:6: greylist_skip_clients_file: $WORK/etc/whitelist_clients is readable by root but not by user policyd" \
    "checks = greylist" "greylist_skip_clients_file = $WORK/etc/whitelist_clients"
refused "KeyTable" "$WORK/etc/KeyTable" "$CONF:5: opendkim_config ($WORK/etc/opendkim.conf): $WORK/etc/KeyTable is readable by root" \
    "opendkim_config = $WORK/etc/opendkim.conf"
refused "key file named in a KeyTable" "$WORK/etc/kt-key.pem" "$WORK/etc/KeyTable:1: DKIM key: $WORK/etc/kt-key.pem is readable by root" \
    "opendkim_config = $WORK/etc/opendkim.conf"
conf "user = policyd" "relay_domains = texthash:$WORK/secret/relay"
rc=0
out=$("$POLICYD" -c "$CONF" -t 2>&1) || rc=$?
check "-t refuses a table behind a directory the user cannot enter" \
    test "$rc" -eq 1 -a -n "$(grep -F "$CONF:5: relay_domains: $WORK/secret/relay is readable by root but not by user policyd" <<<"$out")"

# The daemon, started as root, running as policyd.
conf "user = policyd" "relay_domains = texthash:$WORK/etc/relay" "pid_file = $WORK/run/policyd.pid"
rm -f "$WORK/run/policyd.sock"
"$POLICYD" -c "$CONF" -f 2>>"$WORK/stderr" &
DAEMON_PID=$!
for _ in $(seq 1 100); do [ -S "$WORK/run/policyd.sock" ] && break; sleep 0.05; done
ask_run() { $PY "$TESTDIR/client.py" "$WORK/run/policyd.sock" -; }
LOG=$WORK/log/policyd.log
check "the daemon runs as policyd" test "$(ps -o user= -p "$DAEMON_PID" 2>/dev/null | tr -d ' ')" = policyd
check "its log file was created owned by policyd" test "$(stat -c %U "$LOG" 2>/dev/null)" = policyd
check "the socket and pid file that will stay are announced at start, with the way out" \
    grep -q "$WORK/run/policyd.sock, $WORK/run/policyd.pid will stay behind when policyd stops: user policyd may not remove files in their directory; to have them removed, put them in a directory owned by policyd" "$LOG"
got=$(req client_address=203.0.113.7 recipient=x@new.example | ask_run | head -1)
check "a domain not in the table is refused" test "$got" = "action=554 5.7.1 Relay access denied"
# A SIGHUP reopens the log file as policyd: the file it created must be its own.
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 100); do grep -q "reloaded" "$LOG" 2>/dev/null && break; sleep 0.05; done
check "SIGHUP as policyd reopens the log file it created at start" \
    test -n "$(grep "reloaded $CONF" "$LOG")" -a -z "$(grep "cannot open log file" "$LOG")"
echo "new.example OK" >>"$WORK/etc/relay"
mv "$LOG" "$LOG.1"
kill -HUP "$DAEMON_PID"
for _ in $(seq 1 100); do grep -q "reloaded" "$LOG" 2>/dev/null && break; sleep 0.05; done
check "SIGHUP as policyd: reloaded, the table re-read" grep -q "reloaded $CONF" "$LOG"
check "... into a new log file after the rotation (owned by policyd)" test "$(stat -c %U "$LOG" 2>/dev/null)" = policyd
check "no 'cannot open log file'" test "$(cat "$LOG" "$LOG.1" | grep -c "cannot open log file")" -eq 0
got=$(req client_address=203.0.113.7 recipient=x@new.example | ask_run | head -1)
check "the domain added to the table is known after the reload" test "$got" = "action=DUNNO"
lines=$(wc -l <"$LOG.1")
req client_address=203.0.113.7 recipient=x@other.example | ask_run >/dev/null
sleep 0.2
check "the rotated file gets no more lines" test "$(wc -l <"$LOG.1")" -eq "$lines"
check "the new one does" grep -q "to=<x@other.example>" "$LOG"
stop_daemon
check "the announced socket stays behind" test -S "$WORK/run/policyd.sock"

# In a directory owned by policyd: nothing announced, both removed at the stop.
mkdir -p "$WORK/prun"
chown policyd "$WORK/prun"
: >"$LOG"
conf "user = policyd" "listen = unix:$WORK/prun/policyd.sock" "pid_file = $WORK/prun/policyd.pid"
"$POLICYD" -c "$CONF" -f 2>>"$WORK/stderr" &
DAEMON_PID=$!
for _ in $(seq 1 100); do [ -S "$WORK/prun/policyd.sock" ] && break; sleep 0.05; done
for _ in $(seq 1 100); do grep -q "listening on" "$LOG" && break; sleep 0.05; done
check "in a directory of its own: nothing announced" test "$(grep -c "will stay behind" "$LOG")" -eq 0
stop_daemon
check "... and socket and pid file removed at the stop" test ! -e "$WORK/prun/policyd.sock" -a ! -e "$WORK/prun/policyd.pid"
chmod 700 "$WORK"
finish
