#!/usr/bin/python3
"""testdns.py - the test suite's programmable DNS server (UDP and TCP, one port).

    testdns.py --zone ZONE.json [--listen 127.0.0.1] [--port 5353] [--log QUERIES.log]

ZONE.json maps names to what the server does for them (re-read whenever the file changes,
so a test can reprogram the server by rewriting it):

    {"negative_ttl": 60,
     "names": {
       "mx.example.":  [{"type": "A", "data": "192.0.2.1", "ttl": 300}],
       "7.113.0.203.in-addr.arpa.": [{"type": "PTR", "data": "mail.example."}],
       "txt.example.": [{"type": "TXT", "data": ["v=spf1 ", "-all"]}],
       "slow.example.": [{"behaviour": "delay", "ms": 800}, {"type": "A", "data": "192.0.2.9"}],
       "dead.example.": [{"behaviour": "timeout"}],
       "broken.example.": [{"behaviour": "servfail"}],
       "big.example.": [{"behaviour": "truncate"}, {"type": "TXT", "data": ["..."]}],
       "junk.example.": [{"behaviour": "garbage"}]}}

"default" (beside "names") holds behaviours applied to every name, listed or not.
A behaviour may name a type ({"behaviour": "servfail", "type": "TXT"}) to apply to that type
only. Behaviours: timeout (never answer), servfail, refused, nxdomain, delay (then answer as
usual), truncate (UDP: empty answer with TC set, so the client retries over TCP, which gets the
full answer), garbage (random bytes after the query id). A name that is absent is NXDOMAIN; a
name without records of the asked type is NODATA; both carry an SOA whose MINIMUM is
negative_ttl. Every query is logged as "TYPE name" (one line) to --log.
"""
import argparse
import json
import os
import random
import socket
import socketserver
import struct
import sys
import threading
import time

from dnslib import A, AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TXT, DNSRecord

class Zone:
    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.data = {"names": {}}
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size)
                if stamp != self.mtime:
                    with open(self.path) as f:
                        self.data = json.load(f)
                    self.mtime = stamp
            except (OSError, ValueError) as e:
                sys.stderr.write("testdns: zone %s: %s\n" % (self.path, e))
            return self.data

def rdata(rtype, data):
    if rtype == "A":
        return A(data)
    if rtype == "AAAA":
        return AAAA(data)
    if rtype == "PTR":
        return PTR(data)
    if rtype == "CNAME":
        return CNAME(data)
    if rtype == "MX":
        pref, host = data if isinstance(data, list) else (10, data)
        return MX(host, pref)
    if rtype == "TXT":
        parts = data if isinstance(data, list) else [data]
        out = []
        for p in parts:
            b = p.encode("latin-1") if isinstance(p, str) else bytes(p)
            out.extend(b[i:i + 255] for i in range(0, max(len(b), 1), 255))
        return TXT(out)
    raise ValueError(rtype)

def answer(zone, query, transport):
    """Return (reply bytes or None for no answer, delay seconds)."""
    data = zone.get()
    names = data.get("names", {})
    neg_ttl = int(data.get("negative_ttl", 60))
    q = query.q
    qname = str(q.qname).lower()
    qtype = QTYPE[q.qtype]
    entries = names.get(qname)
    if entries is None:
        # names are matched case-insensitively
        for k, v in names.items():
            if k.lower() == qname:
                entries = v
                break
    if data.get("default"):
        # behaviours for every name, present or not ({"default": [{"behaviour": "servfail"}]})
        entries = list(data["default"]) + (entries or [])
    reply = query.reply()
    delay = 0.0
    soa = RR(".", QTYPE.SOA, ttl=neg_ttl,
             rdata=SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, neg_ttl)))
    if entries is None:
        reply.header.rcode = RCODE.NXDOMAIN
        reply.add_auth(soa)
        return reply.pack(), delay
    for e in entries:
        b = e.get("behaviour")
        if not b or (e.get("type") and e["type"] != qtype):
            continue
        if b == "timeout":
            return None, 0
        if b == "delay":
            delay = e.get("ms", 1000) / 1000.0
        elif b == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack(), delay
        elif b == "refused":
            reply.header.rcode = RCODE.REFUSED
            return reply.pack(), delay
        elif b == "nxdomain":
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(soa)
            return reply.pack(), delay
        elif b == "garbage":
            junk = bytes(random.getrandbits(8) for _ in range(40))
            return struct.pack("!H", query.header.id) + b"\x81\x80" + junk, delay
        elif b == "truncate" and transport == "udp":
            reply.header.tc = 1
            return reply.pack(), delay
    found = False
    for e in entries:
        if e.get("behaviour"):
            continue
        rtype = e["type"]
        if rtype == qtype or (rtype == "CNAME" and qtype != "CNAME"):
            reply.add_answer(RR(q.qname, getattr(QTYPE, rtype), ttl=int(e.get("ttl", 300)),
                                rdata=rdata(rtype, e["data"])))
            found = True
    if not found:
        reply.add_auth(soa)
    return reply.pack(), delay

class Server:
    def __init__(self, zone, logpath):
        self.zone = zone
        self.logpath = logpath
        self.loglock = threading.Lock()

    def log(self, query):
        if not self.logpath:
            return
        with self.loglock, open(self.logpath, "a") as f:
            f.write("%s %s\n" % (QTYPE[query.q.qtype], str(query.q.qname).lower()))

    def handle(self, packet, transport):
        try:
            query = DNSRecord.parse(packet)
        except Exception:
            return None, 0
        self.log(query)
        return answer(self.zone, query, transport)

def serve_udp(server, sock):
    while True:
        packet, peer = sock.recvfrom(4096)

        def work(packet=packet, peer=peer):
            out, delay = server.handle(packet, "udp")
            if out is None:
                return
            if delay:
                time.sleep(delay)
            sock.sendto(out, peer)
        threading.Thread(target=work, daemon=True).start()

class TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            (n,) = struct.unpack("!H", head)
            packet = b""
            while len(packet) < n:
                chunk = self.request.recv(n - len(packet))
                if not chunk:
                    return
                packet += chunk
            out, delay = self.server.dns.handle(packet, "tcp")
            if out is None:
                time.sleep(3600)
                return
            if delay:
                time.sleep(delay)
            self.request.sendall(struct.pack("!H", len(out)) + out)

class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zone", required=True)
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5353)
    ap.add_argument("--log")
    args = ap.parse_args()
    server = Server(Zone(args.zone), args.log)
    family = socket.AF_INET6 if ":" in args.listen else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    udp.bind((args.listen, args.port))
    TCPServer.address_family = family
    tcp = TCPServer((args.listen, args.port), TCPHandler)
    tcp.dns = server
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    print("ready", flush=True)
    serve_udp(server, udp)

if __name__ == "__main__":
    main()
