"""dial.py - connect to the daemon's unix socket as a flooding client would: a full listen
queue answers EAGAIN at once on a unix socket (listen_backlog, 128 by default; the daemon
takes 64 a turn), so try again for up to patience seconds before giving up."""
# SPDX-License-Identifier: MIT
import socket
import time


def unix_connect(path, timeout, patience=5.0, pause=0.001):
    """A connected socket to path with timeout set; BlockingIOError after patience seconds of
    a full queue."""
    end = time.time() + patience
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.time() > end:
                raise
            time.sleep(pause)
