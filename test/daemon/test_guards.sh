#!/usr/bin/env bash
# test_guards.sh - promises that planted bugs once slipped past (issue 12): each case fails when
# the behaviour it guards breaks. An unfinished request at EOF gets no answer; a TLS client
# listed by its public-key fingerprint relays; the first PREPEND in `checks` order wins; a PTR
# name whose address lookup times out never gets the 5xx mismatch action; a DNSBL error code
# with a heavy weight is not a listing; a CNAME loop on a PTR is a temporary failure.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

# --- relay: relay_clientcerts by ccert_pubkey_fingerprint, and two PREPENDs in checks order ---
write_conf "$WORK/relay.conf" "mynetworks = 127.0.0.0/8" "relay_domains = example.com" \
    "relay_clientcerts = AA:BB:CC:DD"
if start_daemon "$WORK/relay.conf"; then
    got=$(req client_address=203.0.113.7 recipient=x@foreign.example ccert_fingerprint= \
        ccert_pubkey_fingerprint=AA:BB:CC:DD | ask - | head -1)
    check "client listed by its public-key fingerprint relays (DUNNO)" test "$got" = "action=DUNNO"
    got=$(req client_address=203.0.113.7 recipient=x@foreign.example ccert_fingerprint= \
        ccert_pubkey_fingerprint=AA:BB:CC:EE | ask - | head -1)
    check "unlisted public-key fingerprint is refused" test "$got" = "action=554 5.7.1 Relay access denied"

    # Postfix sends the request, then shuts its side down before the empty line: no answer.
    out=$($PY - "$WORK/policyd.sock" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=203.0.113.7\n"
          b"recipient=x@foreign.example\nsender=a@example.org\n")
s.shutdown(socket.SHUT_WR)
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
print(repr(data))
PYEOF
)
    check "request without its empty line, then EOF: no answer at all" test "$out" = "b''"
    check "daemon alive after the unfinished request" alive
    stop_daemon
fi

# --- two checks that both answer PREPEND: the first in `checks` order wins ---
DNSPORT=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ZONE=$WORK/zone.json
$PY - "$ZONE" <<'PYEOF'
import json, sys
names = {}
def ptr(addr, name):
    o = addr.split(".")
    names["%s.%s.%s.%s.in-addr.arpa." % (o[3], o[2], o[1], o[0])] = [{"type": "PTR", "data": name}]
# 198.51.100.20: listed on a warn-level list, and no SPF record for its sender domain
names["20.100.51.198.warn.test."] = [{"type": "A", "data": "127.0.0.2"}]
names["nospf.example."] = [{"type": "A", "data": "192.0.2.1"}]
# 198.51.100.21: PTR to a name whose A lookup times out
ptr("198.51.100.21", "slowfwd.example.")
names["slowfwd.example."] = [{"behaviour": "timeout"}]
# 198.51.100.23: its PTR name is a CNAME loop
names["23.100.51.198.in-addr.arpa."] = [{"CNAME": "loop1.example."}]
names["loop1.example."] = [{"CNAME": "23.100.51.198.in-addr.arpa."}]
# 198.51.100.22: a DNSBL error code
names["22.100.51.198.err.test."] = [{"type": "A", "data": "127.255.255.254"}]
json.dump({"negative_ttl": 60, "names": names}, open(sys.argv[1], "w"), indent=1)
PYEOF
$PY "$TESTDIR/../dns/testdns.py" --zone "$ZONE" --port "$DNSPORT" >"$WORK/dns.out" 2>&1 &
DNS_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/dns.out" 2>/dev/null && break; sleep 0.1; done

PRE=("mynetworks = 127.0.0.0/8" "relay_domains = example.com" "dns_servers = 127.0.0.1:$DNSPORT"
    "dns_timeout = 500ms" "dns_tries = 1" "dnsbl_sites = warn.test=127.0.0.2*1"
    "dnsbl_threshold = 5" "dnsbl_warn_threshold = 1" "dnsbl_warn_header = X-Policyd-DNSBL"
    "spf_skip_mynetworks = yes")
prepend_of() { req client_address=198.51.100.20 client_name=unknown sender=a@nospf.example recipient=x@example.com | ask - | head -1; }
write_conf "$WORK/p1.conf" "${PRE[@]}" "checks = relay, dnsbl, spf"
if start_daemon "$WORK/p1.conf"; then
    got=$(prepend_of)
    check "dnsbl before spf: dnsbl's header is the PREPEND" grep -q "^action=PREPEND X-Policyd-DNSBL" <<<"$got"
    stop_daemon
fi
write_conf "$WORK/bad.conf" "${PRE[@]}" "checks = relay, rdns, dnsbl, spf"
if start_daemon "$WORK/bad.conf"; then
    got=$(req client_address=not-an-address client_name=unknown sender=a@nospf.example recipient=x@example.com | ask - | head -1)
    check "malformed client_address: the checks that need it give no verdict (DUNNO)" test "$got" = "action=DUNNO"
    check "malformed client_address: its own diagnosis" \
        grep -q "cause_code=request.bad_client_address; cause=client_address 'not-an-address' is not an IP address" "$WORK/policyd.log"
    check "malformed client_address: no SPF permerror blaming a domain owner" \
        test -z "$(grep -i 'permerror' "$WORK/policyd.log")"
    stop_daemon
fi
write_conf "$WORK/p2.conf" "${PRE[@]}" "checks = relay, spf, dnsbl"
if start_daemon "$WORK/p2.conf"; then
    got=$(prepend_of)
    check "spf before dnsbl: the Received-SPF header is the PREPEND" grep -q "^action=PREPEND Received-SPF: none" <<<"$got"
    stop_daemon
fi

# --- rdns: the forward lookup of the PTR name times out; a 5xx mismatch action never applies ---
write_conf "$WORK/rdns.conf" "mynetworks = 127.0.0.0/8" "relay_domains = example.com" \
    "checks = relay, rdns" "dns_servers = 127.0.0.1:$DNSPORT" "dns_timeout = 300ms" "dns_tries = 1" \
    "rdns_mismatch_action = 550 5.7.25 Client host rejected: reverse DNS does not match" \
    "rdns_tempfail_action = 450 4.7.25 try again later"
if start_daemon "$WORK/rdns.conf"; then
    got=$(req client_address=198.51.100.21 client_name=unknown recipient=x@example.com | ask - | head -1)
    check "PTR name's address lookup times out: the temporary answer, never the 5xx" \
        test "$got" = "action=450 4.7.25 try again later"
    got=$(req client_address=198.51.100.23 client_name=unknown recipient=x@example.com | ask - | head -1)
    check "a CNAME loop on the PTR is a temporary DNS failure, not 'no PTR'" \
        test "$got" = "action=450 4.7.25 try again later"
    stop_daemon
fi

# --- dnsbl: an error-code answer with a weight at the threshold is not a listing ---
write_conf "$WORK/err.conf" "mynetworks = 127.0.0.0/8" "relay_domains = example.com" \
    "checks = relay, dnsbl" "dns_servers = 127.0.0.1:$DNSPORT" \
    "dnsbl_sites = err.test*5" "dnsbl_threshold = 5"
if start_daemon "$WORK/err.conf"; then
    got=$(req client_address=198.51.100.22 client_name=unknown recipient=x@example.com | ask - | head -1)
    check "DNSBL error code (127.255.255.254) with weight >= threshold: not a listing, DUNNO" \
        test "$got" = "action=DUNNO"
    stop_daemon
fi
kill "$DNS_PID" 2>/dev/null
wait "$DNS_PID" 2>/dev/null
finish
