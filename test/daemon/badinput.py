#!/usr/bin/python3
"""badinput.py SOCKET LOGFILE : hostile input against a running policyd (issue 2 section 8).

Each attack runs on its own connection; after each one a well-formed request on a fresh
connection must still get its answer, and an idle connection opened before the attacks must
still work at the end. Prints "ok NAME" / "not ok NAME" lines.
"""
# SPDX-License-Identifier: MIT
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dial  # noqa: E402

SOCK, LOG = sys.argv[1], sys.argv[2]
failures = 0
checks = 0

def report(name, good):
    global failures, checks
    checks += 1
    print(("ok " if good else "not ok ") + name, flush=True)
    if not good:
        failures += 1

def connect():
    return dial.unix_connect(SOCK, 10)

def request(**over):
    attrs = {"request": "smtpd_access_policy", "protocol_state": "RCPT",
             "client_address": "203.0.113.7", "client_name": "unknown",
             "sender": "a@example.org", "recipient": "b@foreign.example", "helo_name": "h"}
    attrs.update(over)
    return "".join("%s=%s\n" % kv for kv in attrs.items()).encode() + b"\n"

def read_replies(s, n):
    buf = b""
    while buf.count(b"\n\n") < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf

def good_request_works(tag):
    try:
        s = connect()
        s.sendall(request())
        r = read_replies(s, 1)
        s.close()
        report("%s: a fresh connection still gets its answer" % tag,
               r.startswith(b"action=554 5.7.1") and r.endswith(b"\n\n"))
    except OSError as e:
        report("%s: a fresh connection still gets its answer (%s)" % (tag, e), False)

def closed_by_server(s, timeout=10):
    """True if the server closes the connection (EOF or reset) within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except (socket.timeout, BrokenPipeError):
        return False

def send_all_tolerant(s, data):
    """Send; the server may close before everything is sent (that is the point)."""
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass

def log_has(text, wait=5):
    end = time.time() + wait
    while time.time() < end:
        with open(LOG, "rb") as f:
            if text.encode() in f.read():
                return True
        time.sleep(0.05)
    return False

# An idle connection opened before everything else must survive all of it.
idle = connect()

def attack(name, payload, log_text):
    s = connect()
    send_all_tolerant(s, payload)
    report(name + ": connection closed", closed_by_server(s))
    s.close()
    if log_text:
        report(name + ": log says why (%s)" % log_text, log_has(log_text))
    good_request_works(name)

attack("1 MB line", b"recipient=" + b"x" * (1 << 20) + b"\n\n", "max_line_length")
attack("1 MB line without LF", b"recipient=" + b"x" * (1 << 20), "max_line_length")
attack("line without =", b"request=smtpd_access_policy\nthis line has no equals sign\n\n",
       "has no '='")
attack("NUL byte", b"request=smtpd_access_policy\nrecipient=a\0b\n\n", "NUL")
attack("100,000 attributes", b"".join(b"a%d=b\n" % i for i in range(100000)) + b"\n",
       "max_attributes")
attack("request larger than max_request_size",
       b"request=smtpd_access_policy\n" + b"".join(b"x%d=%s\n" % (i, b"y" * 1000) for i in range(200)) + b"\n",
       "max_request_size")
attack("CRLF line ends", b"request=smtpd_access_policy\r\nprotocol_state=RCPT\r\n"
       b"client_address=203.0.113.7\r\n\r\n",
       "request line 4 ends with CR LF: Postfix sends LF only; is this client speaking the policy protocol?")
attack("not a policy request", b"request=junk\n\n", "not a policy request")
attack("missing request attribute", b"protocol_state=RCPT\n\n", "request=smtpd_access_policy")
random.seed(7)
junk = bytes(random.getrandbits(8) for _ in range(200000))
attack("binary junk", junk + b"\n\n", None)

# Half a request, then close: nothing to answer, nothing breaks.
s = connect()
s.sendall(request()[:40])
s.close()
good_request_works("half a request then close")

# Non-UTF-8 bytes, CR in values, empty values, unknown and duplicate attributes: accepted.
s = connect()
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=203.0.113.7\n"
          b"sender=\xff\xfe@example.org\nrecipient=b@foreign.example\r\nfuture_attribute=1\n"
          b"helo_name=\nclient_address=127.0.0.1\n\n")
r = read_replies(s, 1)
s.close()
# duplicate client_address: the last (127.0.0.1, in mynetworks) wins, so DUNNO
report("odd but valid request answered (duplicate: last value wins)", r == b"action=DUNNO\n\n")

# 1,000 connections opened and abandoned (some with half a request); others keep answers.
conns = []
try:
    for i in range(1000):
        c = connect()
        if i % 3 == 0:
            c.sendall(request()[:50])
        conns.append(c)
    report("1,000 connections opened", True)
except OSError as e:
    report("1,000 connections opened (%s)" % e, False)
good_request_works("while 1,000 connections hang")
for c in conns:
    c.close()
good_request_works("after 1,000 connections abandoned")

# Pipelining: 1,000 requests on one connection, answers in request order.
s = connect()
payload = b"".join(request(client_address="127.0.0.1" if i % 2 else "203.0.113.7",
                           recipient="r%d@foreign.example" % i) for i in range(1000))
s.sendall(payload)
r = read_replies(s, 1000)
s.close()
replies = r.split(b"\n\n")[:1000]
expected = [b"action=DUNNO" if i % 2 else b"action=554 5.7.1 Relay access denied"
            for i in range(1000)]
report("1,000 pipelined requests answered in order", replies == expected)

# The idle connection from the start still works.
idle.sendall(request(client_address="127.0.0.1"))
report("connection opened before the attacks still answers", read_replies(idle, 1) == b"action=DUNNO\n\n")
idle.close()
print("badinput: done, %d checks" % checks, flush=True)
sys.exit(1 if failures else 0)
