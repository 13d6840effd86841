#!/usr/bin/python3
"""timed.py SOCKET [--drop] : send the one request read from stdin to a unix socket and print
"MS FIRST-REPLY-LINE": the milliseconds from sending the request to its whole reply (a missing
reply within 15 s prints "15000 no-reply"). --drop: send, then close at once without reading
(a client that goes away while its request is being checked)."""
# SPDX-License-Identifier: MIT
import socket
import sys
import time

def main():
    data = sys.stdin.buffer.read()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(sys.argv[1])
    start = time.monotonic()
    s.sendall(data)
    if "--drop" in sys.argv[2:]:
        s.close()
        print("0 dropped")
        return
    buf = b""
    try:
        while not buf.endswith(b"\n\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        pass
    ms = (time.monotonic() - start) * 1000
    s.close()
    if not buf.endswith(b"\n\n"):
        print("%d no-reply" % ms)
        return
    print("%d %s" % (ms, buf.decode("utf-8", "replace").split("\n", 1)[0]))

main()
