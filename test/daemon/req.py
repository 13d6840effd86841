#!/usr/bin/python3
"""req.py [NAME=VALUE ...] : print one policy request: the RCPT request captured from Postfix
3.7 (test/data/requests/01-rcpt-unix-smtp-source.txt) with the given attributes replaced
(or added when the capture has no such attribute)."""
# SPDX-License-Identifier: MIT
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
template = os.path.join(here, "..", "data", "requests", "01-rcpt-unix-smtp-source.txt")
lines = open(template, "rb").read().split(b"\n")
attrs = [l.split(b"=", 1) for l in lines if l]
for arg in sys.argv[1:]:
    name, value = arg.encode().split(b"=", 1)
    for a in attrs:
        if a[0] == name:
            a[1] = value
            break
    else:
        attrs.append([name, value])
sys.stdout.buffer.write(b"".join(n + b"=" + v + b"\n" for n, v in attrs) + b"\n")
