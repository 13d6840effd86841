#!/usr/bin/python3
"""req.py [NAME=VALUE ...] : print one policy request: the RCPT request captured from Postfix
3.7 (test/data/requests/01-rcpt-unix-smtp-source.txt) with the given attributes replaced
(or added when the capture has no such attribute). Imported, request(words) builds one."""
# SPDX-License-Identifier: MIT
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
template = os.path.join(here, "..", "data", "requests", "01-rcpt-unix-smtp-source.txt")
base = [l.split(b"=", 1) for l in open(template, "rb").read().split(b"\n") if l]


def request(words):
    """The captured request with words ("NAME=VALUE") replacing or adding attributes, as bytes."""
    attrs = [list(a) for a in base]
    for w in words:
        name, value = w.encode().split(b"=", 1)
        for a in attrs:
            if a[0] == name:
                a[1] = value
                break
        else:
            attrs.append([name, value])
    return b"".join(n + b"=" + v + b"\n" for n, v in attrs) + b"\n"


if __name__ == "__main__":
    sys.stdout.buffer.write(request(sys.argv[1:]))
