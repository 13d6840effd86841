# lab.sh - a private, real Postfix for tests (recipe: shared POSTFIX-LAB.md), sourced by
# test_*.sh. The test script runs itself inside `unshare --mount --net` (lab_enter), so Postfix,
# the test DNS, smtp-sink and policyd see only a fresh loopback and our own /etc/resolv.conf and
# /etc/hosts. Every wait is bounded; everything is stopped on exit.
#
# Environment: POLICYD (the daemon binary, default policyd/policyd), POLICYD_CMD (a command run
# instead of it with the same arguments, "-c CONF -f"; POLICYD_CMD=stub runs stub_policy.py, the
# stand-in relay check), LAB_DNS_START (the function lab_start_dns calls; default
# lab_start_dnsmasq), LAB_TIMEOUT (seconds for the whole script, default 120), LAB_KEEP=1 (keep
# the lab directory for a post-mortem).
# SPDX-License-Identifier: MIT
set -u
LABDIR_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$LABDIR_SRC/../.." && pwd)
POLICYD=${POLICYD:-$TOP/policyd/policyd}
POLICYD_CMD=${POLICYD_CMD:-}
[ "$POLICYD_CMD" = stub ] && POLICYD_CMD="/usr/bin/python3 $LABDIR_SRC/stub_policy.py"
. "$LABDIR_SRC/../tap.sh"

# lab_enter "$@" - re-run the calling script inside its own mount and network namespace,
# killed (SIGTERM, which still runs lab_stop) after LAB_TIMEOUT seconds.
lab_enter() {
    if [ "${LAB_INSIDE:-}" != 1 ]; then
        if [ "$(id -u)" != 0 ] || ! command -v postfix >/dev/null; then
            echo "ok lab skipped: needs root and Postfix (run etc/install-deps.sh) # SKIP"
            exit 0
        fi
        LAB_INSIDE=1 exec timeout -k 10 "${LAB_TIMEOUT:-120}" unshare --mount --net bash "$0" "$@"
    fi
}

# lab_setup - directories, resolver files, main.cf and master.cf for the private instance.
lab_setup() {
    LAB=$(mktemp -d /tmp/policyd-lab.XXXXXX)
    chmod 755 "$LAB"
    mkdir -p "$LAB/etc" "$LAB/spool" "$LAB/data" "$LAB/log" "$LAB/sink"
    chmod 777 "$LAB/sink"
    chown postfix "$LAB/data"
    ip link set lo up
    echo "nameserver 127.0.0.1" >"$LAB/resolv.conf"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$LAB/hosts"
    mount --bind "$LAB/resolv.conf" /etc/resolv.conf
    mount --bind "$LAB/hosts" /etc/hosts
    MAILLOG=$LAB/log/maillog
    : >"$MAILLOG"
    cat >"$LAB/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $LAB/spool
data_directory = $LAB/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.example
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery disabled in test instance
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.com
relayhost = [127.0.0.1]:10026
maillog_file = $MAILLOG
maillog_file_prefixes = $LAB/log
service_throttle_time = 2s
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_relay_restrictions =
smtpd_recipient_restrictions =
    check_policy_service { unix:private/policyd, default_action=DUNNO, timeout=5s, try_limit=1 },
    permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_policy_service_timeout = 5s
queue_run_delay = 5s
smtp_connect_timeout = 5s
CONF
    {
        for svc in "pickup unix n - n 60 1 pickup" "cleanup unix n - n - 0 cleanup" \
            "qmgr unix n - n 300 1 qmgr" "tlsmgr unix - - n 1000? 1 tlsmgr" \
            "rewrite unix - - n - - trivial-rewrite" "bounce unix - - n - 0 bounce" \
            "defer unix - - n - 0 bounce" "trace unix - - n - 0 bounce" \
            "verify unix - - n - 1 verify" "flush unix n - n 1000? 0 flush" \
            "proxymap unix - - n - - proxymap" "proxywrite unix - - n - 1 proxymap" \
            "smtp unix - - n - - smtp" "relay unix - - n - - smtp" \
            "showq unix n - n - - showq" "error unix - - n - - error" \
            "retry unix - - n - - error" "discard unix - - n - - discard" \
            "local unix - n n - - local" "virtual unix - n n - - virtual" \
            "lmtp unix - - n - - lmtp" "anvil unix - - n - 1 anvil" \
            "scache unix - - n - 1 scache" "postlog unix-dgram n - n - 1 postlogd"; do
            echo "$svc"
        done
        echo "127.0.0.1:10025 inet n - n - - smtpd"
        echo "  -o smtpd_sasl_auth_enable=yes"
    } >"$LAB/etc/master.cf"
    touch -d '-5 seconds' "$LAB/etc/main.cf" "$LAB/etc/master.cf"
    trap lab_stop EXIT
    # A signal (Ctrl-C, the LAB_TIMEOUT) ends the script through its EXIT trap.
    trap 'echo "not ok lab interrupted"; exit 1' INT TERM
}

# lab_start_dns [args] - the DNS Postfix sees (127.0.0.1:53): calls $LAB_DNS_START, by default
# lab_start_dnsmasq. A test may set LAB_DNS_START to its own function, or redefine this one.
lab_start_dns() {
    "${LAB_DNS_START:-lab_start_dnsmasq}" "$@"
}

# lab_start_dnsmasq [dnsmasq args] - static test DNS on 127.0.0.1:53, NXDOMAIN for everything not
# given (--host-record=NAME,ADDR --ptr-record=ARPA,NAME --txt-record=... --mx-host=...).
lab_start_dnsmasq() {
    dnsmasq --no-resolv --no-hosts --listen-address=127.0.0.1 --bind-interfaces --user=root \
        --local=/#/ --pid-file="$LAB/dnsmasq.pid" "$@" \
        --host-record=mx.test.example,127.0.0.1 2>>"$LAB/log/dnsmasq.err"
}

# lab_start_testdns ZONE [PORT [testdns args]] - the programmable test DNS (test/dns/testdns.py)
# on 127.0.0.1:PORT (default 53, where Postfix asks), waits for its "ready" line.
lab_start_testdns() {
    local zone=$1 port=${2:-53}
    shift $(($# < 2 ? $# : 2))
    /usr/bin/python3 "$LABDIR_SRC/../dns/testdns.py" --zone "$zone" --listen 127.0.0.1 \
        --port "$port" "$@" >>"$LAB/log/testdns.out" 2>&1 &
    TESTDNS_PIDS="${TESTDNS_PIDS:-} $!"
    lab_wait_grep "^ready" "$LAB/log/testdns.out"
}

# lab_wait_port PORT - until something accepts on 127.0.0.1:PORT (bounded).
lab_wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

lab_start_postfix() {
    postfix -c "$LAB/etc" start >>"$LAB/log/postfix.out" 2>&1
    lab_wait_port 10025 || { echo "postfix did not start:"; tail -20 "$MAILLOG"; return 1; }
}

lab_start_sink() {
    smtp-sink -u nobody -d "$LAB/sink/%Y%m%d%H%M%S." 127.0.0.1:10026 100 &
    SINK_PID=$!
    lab_wait_port 10026
}

# lab_start_policyd [extra config lines] - the daemon on Postfix's private/policyd socket,
# importing Postfix's settings from the lab's main.cf and logging into the same maillog (so its
# diagnosis sits beside Postfix's NOQUEUE line). Runs $POLICYD_CMD instead when set.
lab_start_policyd() {
    {
        echo "listen = unix:$LAB/spool/private/policyd"
        echo "listen_mode = 0666"
        echo "user = root"
        echo "log_file = $MAILLOG"
        echo "postfix_config_directory = $LAB/etc"
        for line in "$@"; do echo "$line"; done
    } >"$LAB/policyd.conf"
    # shellcheck disable=SC2086 # POLICYD_CMD is a command line
    ${POLICYD_CMD:-"$POLICYD"} -c "$LAB/policyd.conf" -f 2>>"$LAB/log/policyd.stderr" &
    POLICYD_PID=$!
    for _ in $(seq 1 100); do
        [ -S "$LAB/spool/private/policyd" ] && return 0
        kill -0 "$POLICYD_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "policyd did not start:"
    cat "$LAB/log/policyd.stderr"
    return 1
}

lab_stop_policyd() {
    [ -n "${POLICYD_PID:-}" ] || return 0
    kill -TERM "$POLICYD_PID" 2>/dev/null
    local rc=0
    wait "$POLICYD_PID" || rc=$?
    POLICYD_PID=
    return $rc
}

# lab_stop - everything down (the EXIT trap): policyd, Postfix, the sink, the test DNS.
lab_stop() {
    trap - INT TERM
    [ -n "${LAB:-}" ] || return 0
    lab_stop_policyd >/dev/null 2>&1
    local master
    master=$(tr -d ' ' <"$LAB/spool/pid/master.pid" 2>/dev/null)
    postfix -c "$LAB/etc" stop >/dev/null 2>&1
    [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null
    [ -f "$LAB/dnsmasq.pid" ] && kill "$(cat "$LAB/dnsmasq.pid")" 2>/dev/null
    # shellcheck disable=SC2086
    [ -n "${TESTDNS_PIDS:-}" ] && kill $TESTDNS_PIDS 2>/dev/null
    if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error' "$LAB/log/policyd.stderr" 2>/dev/null; then
        echo "not ok policyd sanitizer report"
        cat "$LAB/log/policyd.stderr"
    fi
    if [ "${LAB_KEEP:-0}" != 1 ]; then
        # Postfix's master takes its children down after "stop": wait for it (bounded).
        for _ in $(seq 1 50); do
            if [ -z "$master" ] || ! kill -0 "$master" 2>/dev/null; then break; fi
            sleep 0.1
        done
        umount /etc/resolv.conf /etc/hosts 2>/dev/null
        rm -rf "$LAB"
    else
        echo "lab kept in $LAB"
    fi
}

# lab_send OUTFILE swaks-args... - one SMTP transaction through Postfix on 127.0.0.1:10025.
lab_send() {
    local out=$1
    shift
    timeout 30 swaks --server 127.0.0.1:10025 --timeout 20 --helo h.example.org "$@" >"$out" 2>&1
    return 0
}

# lab_wait_grep PATTERN FILE... - until a line matches the extended regex (bounded, 20 s).
lab_wait_grep() {
    local pattern=$1
    shift
    for _ in $(seq 1 200); do
        grep -qE -- "$pattern" "$@" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# lab_sink_has RCPT - a message for RCPT arrived at smtp-sink (bounded wait).
lab_sink_has() {
    for _ in $(seq 1 200); do
        grep -lF "X-Rcpt-Args: <$1>" "$LAB"/sink/* >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
