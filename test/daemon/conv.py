#!/usr/bin/python3
"""conv.py SOCKET : talk to the daemon as one Postfix smtpd does, one request at a time over a
connection it keeps, each answer awaited before the next question.

Reads steps from standard input, one per line:
  NAME=VALUE ...   one request: the RCPT request of req.py with these attributes replaced
  reconnect        close the connection and open a new one (a new smtpd, or Postfix's reconnect),
                   after a pause that lets the daemon see the close first
and prints each answer's action line. Every wait is bounded (a missing answer exits 1).
"""
# SPDX-License-Identifier: MIT
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from req import request  # noqa: E402


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def main():
    path = sys.argv[1]
    s = connect(path)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words == ["reconnect"]:
            s.close()
            time.sleep(0.2)
            s = connect(path)
            continue
        s.sendall(request(words))
        buf = b""
        while not buf.endswith(b"\n\n"):
            chunk = s.recv(4096)
            if not chunk:
                sys.stderr.write("conv.py: connection closed before the answer\n")
                sys.exit(1)
            buf += chunk
        for l in buf.decode().split("\n"):
            if l.startswith("action="):
                print(l, flush=True)
    s.close()


main()
