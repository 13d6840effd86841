#!/usr/bin/python3
"""stub_policy.py - a stand-in for policyd's relay check, so the Postfix lab (lab.sh) can be
developed and checked without the daemon: POLICYD_CMD=stub bash test/lab/test_relay.sh

    stub_policy.py -c CONF [-f] [-t]

CONF is the subset of policyd.conf the lab writes (Postfix main.cf syntax): listen (unix:/path
and inet:HOST:PORT, comma separated), listen_mode, log_file, postfix_config_directory (relay
settings imported with `postconf -c DIR -h`), mynetworks, mydestination, relay_domains,
virtual_alias_domains, virtual_mailbox_domains (override the imported ones), relay_action,
checks (only "relay"). Other names are ignored. -t checks the file and exits.

The decision, at RCPT only: DUNNO if the client is in mynetworks, or sasl_username is set, or
the recipient domain is listed (exact match, no case, no trailing dot); otherwise relay_action
and one log line in policyd's format. Every other state gets DUNNO. SIGTERM: exit 0.
"""
# SPDX-License-Identifier: MIT
import asyncio
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time

DOMAIN_LISTS = ("mydestination", "virtual_alias_domains", "virtual_mailbox_domains", "relay_domains")
MAX_LINE = 64 * 1024


def die(msg):
    print("stub_policy: " + msg, file=sys.stderr)
    sys.exit(1)


def read_conf(path):
    """name = value lines, # comments, indented continuation lines (no $name expansion)."""
    conf, last = {}, None
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        die("%s: %s" % (path, e))
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if last is None:
                die("%s:%d: continuation line without a setting" % (path, n))
            conf[last] += " " + line.strip()
            continue
        if "=" not in line:
            die("%s:%d: missing '='" % (path, n))
        name, value = line.split("=", 1)
        last = name.strip()
        conf[last] = value.strip()
    return conf


def split_list(value):
    return [w for w in value.replace(",", " ").split() if w]


def settings(conf):
    """The relay tables: Postfix's values first, the stub's own config on top."""
    s = {}
    pdir = conf.get("postfix_config_directory", "/etc/postfix")
    if pdir:
        for name in ("mynetworks", "myhostname") + DOMAIN_LISTS:
            r = subprocess.run(["postconf", "-c", pdir, "-h", name], capture_output=True, text=True)
            if r.returncode != 0:
                die("postconf -c %s -h %s: %s" % (pdir, name, r.stderr.strip()))
            s[name] = r.stdout.strip()
    for name in ("mynetworks",) + DOMAIN_LISTS:
        if name in conf:
            s[name] = conf[name]
    nets = []
    for w in split_list(s.get("mynetworks", "")):
        try:
            nets.append(ipaddress.ip_network(w.strip("[]").replace("]/", "/"), strict=False))
        except ValueError:
            die("mynetworks: not a network: " + w)
    domains = {}
    for name in DOMAIN_LISTS:
        for w in split_list(s.get(name, "")):
            domains.setdefault(w.lower().rstrip("."), name)
    host = (s.get("myhostname") or socket.gethostname()).split(".")[0]
    return nets, domains, host


class Stub:
    def __init__(self, conf):
        checks = split_list(conf.get("checks", "relay"))
        if checks != ["relay"]:
            die("checks = %s: the stub knows only relay" % conf["checks"])
        self.action = conf.get("relay_action", "554 5.7.1 Relay access denied")
        self.nets, self.domains, self.host = settings(conf)
        self.listen = split_list(conf.get("listen", ""))
        if not self.listen:
            die("listen: not set")
        self.mode = int(conf.get("listen_mode", "0666"), 8)
        path = conf.get("log_file", "")
        self.log_file = open(path, "a", buffering=1) if path else sys.stderr
        self.paths = []

    def log(self, msg):
        stamp = time.strftime("%b %e %H:%M:%S")
        self.log_file.write("%s %s policyd[%d]: %s\n" % (stamp, self.host, os.getpid(), msg))

    def decide(self, req):
        """The action for one request."""
        if req.get("request") != "smtpd_access_policy" or req.get("protocol_state") != "RCPT":
            return "DUNNO"
        addr = req.get("client_address", "")
        try:
            ip = ipaddress.ip_address(addr)
            if any(ip in n for n in self.nets if n.version == ip.version):
                return "DUNNO"
        except ValueError:
            pass
        if req.get("sasl_username"):
            return "DUNNO"
        rcpt = req.get("recipient", "")
        domain = rcpt.rsplit("@", 1)[1].lower().rstrip(".") if "@" in rcpt else ""
        if domain in self.domains:
            return "DUNNO"
        where = ", ".join(
            "%s (%s)" % (l, " ".join(d for d, n in self.domains.items() if n == l) or "empty")
            for l in DOMAIN_LISTS
        )
        self.log(
            "%s: client=%s[%s], from=<%s>, to=<%s>, helo=<%s>: relay: reject: %s; "
            "cause=client %s is not in mynetworks (%s) and did not authenticate; recipient "
            "domain %s is in none of %s; fix=add the client to mynetworks or have it "
            "authenticate, or list the domain (stub)"
            % (
                req.get("queue_id") or "NOQUEUE", req.get("client_name", "unknown"), addr,
                req.get("sender", ""), rcpt, req.get("helo_name", ""), self.action, addr,
                " ".join(str(n) for n in self.nets) or "empty", domain or "(none)", where,
            )
        )
        return self.action

    async def serve(self, reader, writer):
        """Requests in, one reply per request, until the client closes."""
        req = {}
        try:
            while True:
                line = await reader.readuntil(b"\n")
                line = line[:-1].decode("utf-8", "replace")
                if line:
                    name, _, value = line.partition("=")
                    req[name] = value
                    continue
                writer.write(("action=%s\n\n" % self.decide(req)).encode())
                await writer.drain()
                req = {}
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def run(self):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        servers = []
        for l in self.listen:
            kind, _, where = l.partition(":")
            if kind == "unix":
                if os.path.exists(where):
                    os.unlink(where)
                servers.append(await asyncio.start_unix_server(self.serve, where, limit=MAX_LINE))
                os.chmod(where, self.mode)
                self.paths.append(where)
            elif kind == "inet":
                host, _, port = where.rpartition(":")
                servers.append(await asyncio.start_server(self.serve, host.strip("[]"), int(port), limit=MAX_LINE))
            else:
                die("listen: %s: neither unix: nor inet:" % l)
            self.log("listening on %s (stub)" % l)
        await stop.wait()
        for s in servers:
            s.close()
        for p in self.paths:
            os.unlink(p)
        self.log("stopped (stub)")


def main():
    args = sys.argv[1:]
    conf_path, test_only = "/etc/policyd/policyd.conf", False
    while args:
        a = args.pop(0)
        if a == "-c" and args:
            conf_path = args.pop(0)
        elif a == "-t":
            test_only = True
        elif a in ("-f", "-v"):
            pass
        else:
            die("usage: stub_policy.py -c CONF [-f] [-t]")
    stub = Stub(read_conf(conf_path))
    if not test_only:
        asyncio.run(stub.run())


if __name__ == "__main__":
    main()
