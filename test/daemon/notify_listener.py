#!/usr/bin/python3
"""notify_listener.py SOCKET LOG : stand in for systemd's NOTIFY_SOCKET (sd_notify(3)).

Binds a unix datagram socket at SOCKET and appends every message it receives to LOG, one line
per message: the time (monotonic seconds), a tab, the message's assignments joined by '|'
("READY=1|STATUS=serving ..."). Prints "ready" once bound. Runs until killed.
"""
# SPDX-License-Identifier: MIT
import os
import socket
import sys
import time


def main():
    path, log = sys.argv[1], sys.argv[2]
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o777)  # the daemon may have dropped privileges
    print("ready", flush=True)
    with open(log, "a", buffering=1) as out:
        while True:
            data = s.recv(65536)
            line = data.decode("utf-8", "replace").strip("\n").replace("\n", "|")
            out.write("%.3f\t%s\n" % (time.monotonic(), line))


if __name__ == "__main__":
    main()
