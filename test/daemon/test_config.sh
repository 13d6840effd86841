#!/usr/bin/env bash
# test_config.sh - configuration: -t errors with FILE:LINE, -n, Postfix import, SIGHUP reload
# (a bad file keeps the running configuration), -S mode, sockets (stale, live, mode), SIGUSR1.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

# expect_error NAME 'config lines' 'expected stderr text'
expect_error() {
    local name=$1 body=$2 want=$3 f=$WORK/bad.conf out rc=0
    printf '%b\n' "$body" >"$f"
    out=$("$POLICYD" -c "$f" -t 2>&1) || rc=$?
    if [ "$rc" -eq 1 ] && [[ "$out" == *"$want"* ]]; then
        ok "-t refuses $name"
    else
        not_ok "-t refuses $name (exit $rc, got: $out; want: $want)"
    fi
}
B="postfix_config_directory ="
expect_error "unknown setting, with a hint" "$B\n# comment\nmynetwork = 10.0.0.0/8" "$WORK/bad.conf:3: unknown setting 'mynetwork' (did you mean 'mynetworks'?)"
expect_error "bad duration" "$B\nrequest_deadline = 10 seconds" "$WORK/bad.conf:2: request_deadline: '10 seconds' is not a duration"
expect_error "bad size" "$B\nmax_line_length = 8q" "$WORK/bad.conf:2: max_line_length: '8q' is not a size"
expect_error "CIDR with host bits" "$B\nmynetworks = 127.0.0.0/8,\n  192.168.1.1/24" "$WORK/bad.conf:2: mynetworks: '192.168.1.1/24' has host bits set: use 192.168.1.0/24"
expect_error "bad CIDR prefix" "$B\nmynetworks = 10.0.0.0/33" "bad prefix length"
expect_error "not an address" "$B\nmynetworks = 10.0.0.0/8 example.com" "'example.com' is not an address"
expect_error "enhanced code of the wrong class" "$B\nrelay_action = 550 4.7.1 no" "$WORK/bad.conf:2: relay_action:"
expect_error "unknown action" "$B\nrelay_action = BOUNCE now" "$WORK/bad.conf:2: relay_action:"
expect_error "relay_action OK (open relay)" "$B\nrelay_action = OK" "open relay"
expect_error "permanent fallback" "$B\nfallback_action = 554 5.7.1 no" "$WORK/bad.conf:2: fallback_action:"
expect_error "bad mode" "$B\nrelay_mode = maybe" "$WORK/bad.conf:2: relay_mode: 'maybe' is not enforce or warn"
expect_error "continuation without a setting" "  indented = 1\n$B" "$WORK/bad.conf:1: indented line"
expect_error "missing =" "$B\nmynetworks 10.0.0.0/8" "$WORK/bad.conf:2: missing '='"
expect_error "unknown \$name" "$B\nrelay_domains = \$nosuch" "$WORK/bad.conf:2: relay_domains: unknown setting \$nosuch"
expect_error "unknown check" "$B\nchecks = relay, magic" "$WORK/bad.conf:2: checks: unknown check 'magic'"
expect_error "bad listen" "$B\nlisten = tcp:1.2.3.4:5" "$WORK/bad.conf:2: listen:"
expect_error "listen on a host name" "$B\nlisten = inet:localhost:10031" "host names are not resolved"
expect_error "missing table" "$B\nrelay_domains = texthash:$WORK/nosuch" "$WORK/nosuch"
expect_error "missing file" "$B\nmydestination = /nonexistent/list" "/nonexistent/list"
mkfifo "$WORK/fifo"
expect_error "a table that is a device, not read forever" "$B\nrelay_domains = texthash:/dev/zero" "$WORK/bad.conf:2: relay_domains: /dev/zero: not a regular file"
expect_error "a /file list that is a device" "$B\nmynetworks = /dev/zero" "$WORK/bad.conf:2: mynetworks: /dev/zero: not a regular file"
expect_error "a /file list that is a FIFO, not waited for" "$B\nmydestination = $WORK/fifo" "$WORK/bad.conf:2: mydestination: $WORK/fifo: not a regular file"
expect_error "a check's setting, with its line" "$B\nchecks = relay, spf\n# the SPF answers\nspf_fail_action = bogus words" "$WORK/bad.conf:4: spf check: spf_fail_action: 'bogus' is not an action"
expect_error "a check's network list, with its line" "$B\nchecks = spf\nspf_skip_networks = 300.1.1.1" "$WORK/bad.conf:3: spf check: spf_skip_networks: '300.1.1.1' is not an address"
out=$("$POLICYD" -c "$WORK/does-not-exist.conf" -t 2>&1); rc=$?
check "-t on a missing file says so" test "$rc" -eq 1 -a -n "$(echo "$out" | grep -F "$WORK/does-not-exist.conf: No such file")"

# A good file: continuation lines, $name expansion, -n.
cat >"$WORK/good.conf" <<CONF
postfix_config_directory =
# comment
myhostname = mx.example.net
relay_domains = example.com,
    \$myhostname
  # an indented comment line inside a continued value
    backup.example
request_deadline = 5s
CONF
check "-t accepts a good file" "$POLICYD" -c "$WORK/good.conf" -t
n=$("$POLICYD" -c "$WORK/good.conf" -n)
check "-n shows the expanded, continued value" grep -qxF "relay_domains = example.com,    mx.example.net    backup.example" <<<"$n"
check "-n shows changed settings" grep -qxF "request_deadline = 5s" <<<"$n"
check "-n hides defaults" test -z "$(grep -E '^(max_line_length|fallback_action) ' <<<"$n")"

# Postfix import: a private Postfix config directory; policyd.conf overrides win.
mkdir -p "$WORK/postfix"
cat >"$WORK/postfix/main.cf" <<CONF
compatibility_level = 3.6
myhostname = mx.imported.example
mynetworks = 10.9.0.0/16
relay_domains = imported.example, \$myhostname
CONF
write_conf "$WORK/import.conf" "postfix_config_directory = $WORK/postfix" "relay_domains = override.example"
n=$("$POLICYD" -c "$WORK/import.conf" -n 2>&1)
check "-n marks imported settings" grep -q "^# imported from Postfix" <<<"$n"
check "mynetworks imported from main.cf" grep -qxF "mynetworks = 10.9.0.0/16" <<<"$n"
check "policyd.conf overrides the imported relay_domains" grep -qxF "relay_domains = override.example" <<<"$n"
check "imported values are expanded by postconf" grep -qxF "myhostname = mx.imported.example" <<<"$n"
if start_daemon "$WORK/import.conf"; then
    check "imported mynetworks decides" grep -qx "action=DUNNO" < <(req client_address=10.9.1.1 recipient=x@foreign.example | ask -)
    check "override decides relay_domains" grep -qx "action=DUNNO" < <(req client_address=203.0.113.7 recipient=x@override.example | ask -)
    check "imported relay_domains replaced by the override" grep -q "^action=554" < <(req client_address=203.0.113.7 recipient=x@imported.example | ask -)
    stop_daemon
fi

# Reload: bad file keeps the running configuration; a good one takes effect; connections stay.
write_conf "$WORK/reload.conf" "relay_domains = example.com" "listen_mode = 0660"
if start_daemon "$WORK/reload.conf"; then
    check "listen_mode applied to the unix socket" test "$(stat -c %a "$WORK/policyd.sock")" = 660
    check "before reload: example.com is relayed" grep -qx "action=DUNNO" < <(req client_address=203.0.113.7 recipient=x@example.com | ask -)
    echo "relay_domains = \$nosuch" >>"$WORK/reload.conf"
    kill -HUP "$DAEMON_PID"
    check "bad reload logged with FILE:LINE" wait_log "reload refused: $WORK/reload.conf:[0-9]+: relay_domains: unknown setting"
    check "bad reload keeps the old configuration" grep -qx "action=DUNNO" < <(req client_address=203.0.113.7 recipient=x@example.com | ask -)
    write_conf "$WORK/reload.conf" "relay_domains = other.example" "listen_mode = 0660"
    kill -HUP "$DAEMON_PID"
    check "good reload logged" wait_log "reloaded $WORK/reload.conf"
    check "after reload: example.com is no longer relayed" grep -q "^action=554" < <(req client_address=203.0.113.7 recipient=x@example.com | ask -)
    kill -USR1 "$DAEMON_PID"
    check "SIGUSR1 logs the counters" wait_log "statistics: requests=[0-9]+ .*reloads=1 reload_failures=1"
    # A live socket is never replaced.
    write_conf "$WORK/second.conf"
    out=$("$POLICYD" -c "$WORK/second.conf" -f 2>&1); rc=$?
    check "a second daemon refuses the live socket" test "$rc" -eq 1 -a -n "$(grep -F 'another process is accepting' <<<"$out")"
    check "the first daemon still answers" grep -qx "action=DUNNO" < <(req client_address=127.0.0.1 | ask -)
    check "SIGTERM: exit status 0" stop_daemon
fi

# A stale socket file (nobody accepting) is replaced.
$PY -c "import socket; s=socket.socket(socket.AF_UNIX); s.bind('$WORK/policyd.sock')"
check "stale socket file exists" test -S "$WORK/policyd.sock"
"$POLICYD" -c "$WORK/reload.conf" -f 2>>"$WORK/stderr" &
DAEMON_PID=$!
check "daemon replaces a stale socket" wait_log "replacing stale socket $WORK/policyd.sock"
sleep 0.2
check "and answers on it" grep -qx "action=DUNNO" < <(req client_address=127.0.0.1 | ask -)
stop_daemon

# user: a missing user is refused; root only when written.
printf 'postfix_config_directory =\nlisten = unix:%s/u.sock\nuser = nosuchuser42\n' "$WORK" >"$WORK/user.conf"
out=$("$POLICYD" -c "$WORK/user.conf" -f 2>&1); rc=$?
check "a missing user is refused at start" test "$rc" -eq 1 -a -n "$(grep -F "user 'nosuchuser42' does not exist" <<<"$out")"

# Privileges: started as root, the daemon serves as `user` (the unprivileged policyd user).
if id policyd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    write_conf "$WORK/priv.conf"
    sed -i 's/^user = root$/user = policyd/' "$WORK/priv.conf"
    chmod 777 "$WORK"
    if start_daemon "$WORK/priv.conf"; then
        check "started as root, serving as user policyd" \
            test "$(awk '/^Uid:/ { print $2 }' /proc/"$DAEMON_PID"/status)" = "$(id -u policyd)"
        check "still answers after dropping privileges" grep -qx "action=DUNNO" < <(req client_address=127.0.0.1 | ask -)
        stop_daemon
    fi
fi

# Connection limit: at max_connections a new connection is admitted by closing the connection
# idle the longest; only while every connection is busy (a request in progress) do new ones wait.
write_conf "$WORK/limit.conf" "max_connections = 2" "idle_timeout = 1s"
if start_daemon "$WORK/limit.conf"; then
    out=$($PY - "$WORK/policyd.sock" "$WORK/policyd.log" <<'PYEOF'
import socket, sys, time
path, log = sys.argv[1], sys.argv[2]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(path); return s
req = b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=127.0.0.1\nrecipient=a@b.example\n\n"
def answer(s, t):
    s.settimeout(t)
    try:
        return s.recv(100)
    except socket.timeout:
        return None
# Two idle connections: a third is admitted at once, the one idle the longest (a) closed.
a = conn(); time.sleep(0.1); b = conn(); time.sleep(0.1)
c = conn(); c.sendall(req)
fair = answer(c, 2)
a_closed = answer(a, 2) == b""
b.close(); c.close(); time.sleep(0.2)
# One busy and one idle connection: a third closes the idle one, and nobody waits.
a, b = conn(), conn()
a.sendall(req[:30]); time.sleep(0.2)
c = conn(); time.sleep(0.2)   # admitted before it asks (else, busy at once, it is right to wait)
c.sendall(req)
one_idle = answer(c, 2)
b_closed = answer(b, 2) == b""
a.sendall(req[30:]); answer(a, 2)
time.sleep(0.2)
spurious = "every connection is busy" in open(log).read()
a.close(); c.close(); time.sleep(0.2)
# Two busy connections (half a request each): a third waits until one is done.
a, b = conn(), conn()
a.sendall(req[:30]); b.sendall(req[:30]); time.sleep(0.2)
c = conn(); c.sendall(req)
early = answer(c, 0.5)
a.sendall(req[30:])             # a is answered, becomes idle: c gets its slot
a_answer = answer(a, 3)
late = answer(c, 3)
b.sendall(req[30:]); b_answer = answer(b, 3)
t0 = time.time()
closed = answer(b, 3) == b""    # idle_timeout = 1s closes b
print("one_idle=%r b_closed=%s spurious_wait=%s" % (one_idle, b_closed, spurious))
print("fair=%r a_closed=%s early=%r late=%r idle_closed=%s after=%.1f" % (fair, a_closed, early, late, closed, time.time() - t0))
PYEOF
)
    check "at max_connections a new connection is answered at once" grep -q "fair=b'action=DUNNO" <<<"$out"
    check "the connection idle the longest made room" grep -q "a_closed=True" <<<"$out"
    check "with one busy and one idle: the idle one makes room, nobody waits" \
        grep -q "one_idle=b'action=DUNNO\\\\n\\\\n' b_closed=True spurious_wait=False" <<<"$out"
    check "while every connection is busy a new one waits (no answer yet)" grep -q "early=None" <<<"$out"
    check "and is served once one is idle" grep -q "late=b'action=DUNNO" <<<"$out"
    check "idle_timeout closes an idle connection" grep -q "idle_closed=True" <<<"$out"
    check "max_connections reached is logged" grep -q "max_connections (2) reached: closing the connection idle the longest" "$WORK/policyd.log"
    check "every connection busy is logged" grep -q "max_connections (2) reached and every connection is busy" "$WORK/policyd.log"
    check "the idle close is logged at info with its peer and reason" grep -qE "[0-9]\]: closing policy connection from unix:.*: no request for 1 s \(idle_timeout\)" "$WORK/policyd.log"
    stop_daemon
fi

# -v: every decision is logged, DUNNO ones too.
write_conf "$WORK/verbose.conf" "relay_domains = example.com"
: >"$WORK/policyd.log"
if start_daemon "$WORK/verbose.conf" -v; then
    req client_address=203.0.113.7 recipient=x@example.com | ask - >/dev/null
    check "-v logs a DUNNO decision with its reason" wait_log "relay: dunno: recipient domain example.com is local: relay_domains entry example.com"
    stop_daemon
fi

# -S: one connection on stdin/stdout, from a pipe and from a file.
write_conf "$WORK/stdio.conf" "relay_domains = example.com"
out=$( { req client_address=203.0.113.7 recipient=x@foreign.example; req client_address=127.0.0.1; } | "$POLICYD" -c "$WORK/stdio.conf" -S)
check "-S from a pipe answers every request in order" test "$out" = "$(printf 'action=554 5.7.1 Relay access denied\n\naction=DUNNO\n')"
req client_address=203.0.113.7 recipient=x@example.com >"$WORK/one.req"
out=$("$POLICYD" -c "$WORK/stdio.conf" -S <"$WORK/one.req")
check "-S from a regular file" test "$out" = "action=DUNNO"
printf 'request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=203.0.113.7\nsender=evil\033[31m@x\r\nrecipient=b@foreign.example\n\n' |
    "$POLICYD" -c "$WORK/stdio.conf" -S >/dev/null
check "control characters from the peer never reach the log" \
    grep -qF 'from=<evil?[31m@x?>' "$WORK/policyd.log"
check "-S logs the diagnosis to the log file, not stdout" grep -q "NOQUEUE: client=localhost\[203.0.113.7\], .*relay: reject" "$WORK/policyd.log"
finish
