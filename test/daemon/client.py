#!/usr/bin/python3
"""client.py SOCKET FILE|- : send policy requests to a unix or inet socket, print the replies.

Reads as many replies as the input holds requests (each request ends with an empty line),
with a bounded wait, so a missing reply fails the test instead of hanging it.
SOCKET is a path (unix) or HOST:PORT.
"""
# SPDX-License-Identifier: MIT
import socket
import sys
import time

def main():
    target, src = sys.argv[1], sys.argv[2]
    data = sys.stdin.buffer.read() if src == "-" else open(src, "rb").read()
    expected = data.count(b"\n\n")
    if ":" in target and not target.startswith("/"):
        host, port = target.rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=15)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(target)
    s.sendall(data)
    buf = b""
    deadline = time.time() + 15
    while buf.count(b"\n\n") < expected and time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    s.close()
    sys.stdout.write(buf.decode("utf-8", "replace"))
    if buf.count(b"\n\n") < expected:
        sys.stderr.write("client.py: %d of %d replies\n" % (buf.count(b"\n\n"), expected))
        sys.exit(1)

main()
