#!/usr/bin/python3
"""sockholder.py SOCKET CONTROL -- DAEMON ARGS... : what systemd does for a socket unit.

Binds and listens on the unix stream socket SOCKET, then starts DAEMON with it passed as
descriptor 3 (LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES=policyd.socket), and keeps it open
while the daemon stops and is started again: each line "start" read from the fifo CONTROL
starts a new daemon (once the previous one has exited), "quit" ends. Prints "started PID" for
each start and "exited STATUS" when a daemon ends, so a test can follow along.
"""
# SPDX-License-Identifier: MIT
import os
import socket
import sys


def start(sock, argv):
    pid = os.fork()
    if pid == 0:
        os.dup2(sock.fileno(), 3)
        os.set_inheritable(3, True)
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                   LISTEN_FDNAMES="policyd.socket")
        os.execve(argv[0], argv, env)
    print("started %d" % pid, flush=True)
    return pid


def main():
    path, control = sys.argv[1], sys.argv[2]
    argv = sys.argv[4:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    sock.bind(path)
    os.chmod(path, 0o666)
    sock.listen(128)
    pid = start(sock, argv)
    while True:
        with open(control) as f:
            for cmd in f:
                cmd = cmd.strip()
                if cmd == "start":
                    _, status = os.waitpid(pid, 0)
                    print("exited %d" % os.waitstatus_to_exitcode(status), flush=True)
                    pid = start(sock, argv)
                elif cmd == "quit":
                    _, status = os.waitpid(pid, 0)
                    print("exited %d" % os.waitstatus_to_exitcode(status), flush=True)
                    return


if __name__ == "__main__":
    main()
