#!/usr/bin/python3
"""testdns.py - the test suite's programmable DNS server: UDP and TCP on one address and port.

Run it with Debian's /usr/bin/python3 (python3-dnslib, python3-yaml):

    testdns.py --zone ZONE [--listen 127.0.0.1] [--port 5353] [--log QUERIES.log]
               [--control PORT] [--udp-max BYTES] [--document N]
    testdns.py --ctl [HOST:]PORT COMMAND [ARG...]       (a client for the control channel)

Once every socket is bound it prints "ready port=P control=C" on stdout (--port 0 and
--control 0 pick free ports; C is 0 without a control channel). One asyncio loop serves
everything: a delayed or never-answered query holds nothing but a timer, so other queries,
over UDP or TCP, are answered at once. Every query received is logged as one line,
"TYPE name. udp|tcp", before anything else happens to it (a timeout is logged too).

ZONE is JSON or YAML (--document N: the Nth document of a YAML stream, such as one scenario
of the OpenSPF test suite, whose "zonedata" is read as "names"). The zone is re-read when the file changes (checked at each query),
on SIGHUP, and on the control command "reload":

    negative_ttl: 60            # MINIMUM of the SOA sent with NXDOMAIN / NODATA answers
    soa_ttl: 60                 # TTL of that SOA record (default: negative_ttl)
    default: [...]              # behaviours applied to every name, listed or not
    names:                      # (or "zonedata", as in the OpenSPF test suite)
      a.example: [{type: A, data: 192.0.2.1, ttl: 300}, {AAAA: "2001:db8::1"}]
      t.example: [{type: TXT, data: ["v=spf1 ", "-all"]}]     # one record, two strings
      m.example: [{MX: [10, mx.example]}]
      p.example: [{type: TYPE65280, hex: "0001ff"}]          # any type, raw RDATA
      alias.example: [{CNAME: a.example}]                     # chased inside the zone
      "*.wild.example": [{A: 192.0.2.9}]
      dead.example: [TIMEOUT]                                 # = {behaviour: timeout}
      slow.example: [{behaviour: delay, ms: 800}, {A: 192.0.2.4}]
      empty.example: []                                       # exists: NODATA for all types

Record data: A/AAAA address; PTR/CNAME/NS name; MX [preference, name] (or a name: 10);
TXT/SPF a string or a list of strings, each one string of the record (longer than 255 bytes:
split); text is encoded UTF-8 (latin-1 with "encoding: latin-1", which reaches every byte
value), {hex: ...} gives bytes; SRV [priority, weight, port, target]; SOA [mname, rname,
serial, refresh, retry, expire, minimum]; any type: {hex: RDATA}. "ttl" defaults to 300.
Names are matched without case and without the trailing dot. A name not listed (nor an
ancestor of one, nor matched by a wildcard) is NXDOMAIN; a listed name without records of
the asked type is NODATA.

Behaviours: {behaviour: NAME, ...}, optionally limited with type: TXT, transport: udp|tcp
and times: N (only the first N matching queries):
    timeout     never answer               delay       wait ms, then go on (default 1000)
    servfail    SERVFAIL                   refused     REFUSED
    notimp      NOTIMP                     formerr     FORMERR
    rcode       the rcode given (rcode: N) nxdomain    NXDOMAIN (with the SOA)
    nodata      NOERROR without records    truncate    UDP: TC set, no records; TCP: answer
    garbage     the query id, then random bytes (bytes: N, default 40)
    badrr       a well-formed header and question, then an answer record cut short
    raw         the query id, then the bytes given (hex: everything after the id)
    soa         the SOA of negative answers for this name: ttl, minimum
    nosoa       negative answers without an SOA
UDP answers larger than the client's EDNS size (512 without EDNS; --udp-max caps it) are
sent truncated, so the client retries over TCP, where answers may be up to 64 KB.

Control channel (--control PORT, TCP on the listen address; one command per line, one reply
line "ok ..." or "error ..."; the same with --ctl from a shell):
    ping                      ok pong
    set NAME JSON-LIST        replace what NAME holds      add NAME JSON   append one entry
    del NAME                  remove NAME                  default JSON-LIST
    reload                    re-read the zone file (run-time changes are lost)
    count [TYPE NAME]         queries received (all, or of that type and name)
    log                       ok JSON list of the logged lines
    reset                     forget counts and "times", empty the log file
"""
# SPDX-License-Identifier: MIT
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import struct
import sys

from dnslib import (AAAA, CNAME, EDNS0, MX, NS, PTR, QTYPE, RCODE, RD, RR, SOA, SRV, TXT, A,
                    DNSRecord)

BEHAVIOURS = {"timeout", "delay", "servfail", "refused", "notimp", "formerr", "rcode",
              "nxdomain", "nodata", "truncate", "garbage", "badrr", "raw", "soa", "nosoa"}


def type_num(t):
    """A record type as a number: 16, "TXT", "txt", "TYPE65280"."""
    if isinstance(t, int):
        return t
    t = str(t).upper()
    if t.isdigit():
        return int(t)
    if t.startswith("TYPE") and t[4:].isdigit():
        return int(t[4:])
    return getattr(QTYPE, t)


def type_text(n):
    return QTYPE.forward.get(n) or "TYPE%d" % n


ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def norm_name(name):
    """A zone name as a key: ASCII lower case (as DNS compares), no trailing dot."""
    name = str(name).strip().translate(ASCII_LOWER)
    return name[:-1] if name.endswith(".") and name != "." else name


def qname_key(qname):
    """The key of a name from the wire: its labels as they are (spaces, UTF-8 and all)."""
    return b".".join(qname.label).decode("utf-8", "surrogateescape").translate(ASCII_LOWER)


def to_bytes(s, encoding):
    if isinstance(s, (bytes, bytearray)):
        return bytes(s)
    if isinstance(s, dict) and "hex" in s:
        return bytes.fromhex(s["hex"])
    return str(s).encode(encoding)


def dname(s):
    s = str(s)
    return s if s.endswith(".") else s + "."


def normalize_entry(e):
    """An entry as {"behaviour": ...} or {"type": N, "data": ..., "ttl": ...}."""
    if isinstance(e, str):
        if e.upper() == "TIMEOUT":
            return {"behaviour": "timeout"}
        raise ValueError("unknown entry %r" % e)
    e = dict(e)
    if "behavior" in e:
        e["behaviour"] = e.pop("behavior")
    if "behaviour" in e:
        if e["behaviour"] not in BEHAVIOURS:
            raise ValueError("unknown behaviour %r" % e["behaviour"])
        if e.get("type") is not None:
            e["type"] = type_num(e["type"])
        return e
    if "type" not in e:
        keys = [k for k in e if k not in ("ttl", "encoding", "hex")]
        if len(keys) != 1:
            raise ValueError("entry without a type: %r" % e)
        e["type"] = keys[0]
        e["data"] = e.pop(keys[0])
    e["type"] = type_num(e["type"])
    return e


def rdata(e):
    t = e["type"]
    data = e.get("data")
    enc = e.get("encoding", "utf-8")
    if "hex" in e and t not in (QTYPE.TXT, QTYPE.SPF):
        return RD(bytes.fromhex(e["hex"]))
    if t == QTYPE.A:
        return A(data)
    if t == QTYPE.AAAA:
        return AAAA(data)
    if t == QTYPE.PTR:
        return PTR(dname(data))
    if t == QTYPE.CNAME:
        return CNAME(dname(data))
    if t == QTYPE.NS:
        return NS(dname(data))
    if t == QTYPE.MX:
        pref, host = data if isinstance(data, (list, tuple)) else (10, data)
        return MX(dname(host), int(pref))
    if t == QTYPE.SRV:
        prio, weight, port, target = data
        return SRV(int(prio), int(weight), int(port), dname(target))
    if t == QTYPE.SOA:
        mname, rname, *times = data
        return SOA(dname(mname), dname(rname), tuple(int(x) for x in times))
    if t in (QTYPE.TXT, QTYPE.SPF):
        if "hex" in e:
            parts = [{"hex": e["hex"]}]
        else:
            parts = data if isinstance(data, list) else [data]
        out = []
        for p in parts:
            b = to_bytes(p, enc)
            out.extend(b[i:i + 255] for i in range(0, max(len(b), 1), 255))
        return TXT(out)
    raise ValueError("no data format for type %s: give hex" % type_text(t))


class Zone:
    """What the server knows: names, their entries, defaults; reloaded whole."""

    def __init__(self, path, document=None):
        self.path = path
        self.document = document
        self.stamp = None
        self.names = {}
        self.default = []
        self.negative_ttl = 60
        self.soa_ttl = None
        self.exists = set()
        self.used = {}

    def load(self):
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            with open(self.path, "rb") as f:
                text = f.read()
            if self.document is not None:  # one scenario of a multi-document YAML file
                import yaml
                data = list(yaml.safe_load_all(text))[self.document]
            else:
                try:
                    data = json.loads(text)
                except ValueError:
                    import yaml
                    data = yaml.safe_load(text)
            data = data or {}
            names = data.get("names", data.get("zonedata", {})) or {}
            new = {norm_name(k): [normalize_entry(e) for e in (v or [])]
                   for k, v in names.items()}
            default = [normalize_entry(e) for e in data.get("default", []) or []]
            for v in new.values():
                for e in v:
                    if "behaviour" not in e:
                        rdata(e)  # refuse data we could not send
        except Exception as exc:  # keep serving the previous zone
            sys.stderr.write("testdns: zone %s: %s\n" % (self.path, exc))
            return False
        self.stamp = stamp
        self.names = new
        self.default = default
        self.negative_ttl = int(data.get("negative_ttl", 60))
        self.soa_ttl = data.get("soa_ttl")
        self.used = {}
        self.rebuild()
        return True

    def rebuild(self):
        self.exists = set()
        for name in self.names:
            labels = name.split(".")
            for i in range(len(labels)):
                self.exists.add(".".join(labels[i:]))

    def check(self):
        """Re-read the zone file if it changed."""
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if (st.st_mtime_ns, st.st_size, st.st_ino) != self.stamp:
            self.load()

    def lookup(self, name):
        """(entries or None, exists): exact name, else the closest wildcard."""
        if name in self.names:
            return self.names[name], True
        if name in self.exists:
            return [], True
        labels = name.split(".")
        for i in range(1, len(labels)):
            w = "*." + ".".join(labels[i:])
            if w in self.names:
                return self.names[w], True
            if ".".join(labels[i:]) in self.exists:
                break
        return None, False


class Server:
    def __init__(self, zone, logpath, udp_max):
        self.zone = zone
        self.logpath = logpath
        self.udp_max = udp_max
        self.logfile = open(logpath, "a", buffering=1) if logpath else None
        self.lines = []
        self.loop = None

    def log(self, line):
        self.lines.append(line)
        if self.logfile:
            self.logfile.write(line + "\n")

    def reset(self):
        self.lines = []
        self.zone.used = {}
        if self.logfile:
            self.logfile.close()
            self.logfile = open(self.logpath, "w", buffering=1)

    def soa_rr(self, ttl, minimum):
        return RR(".", QTYPE.SOA, ttl=ttl,
                  rdata=SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, minimum)))

    def behaviours(self, name, entries, qtype, transport):
        """The behaviour entries that apply to this query, counting 'times'."""
        out = []
        tagged = [("<default>", i, e) for i, e in enumerate(self.zone.default)]
        tagged += [(name, i, e) for i, e in enumerate(entries or [])]
        for owner, i, e in tagged:
            if "behaviour" not in e:
                continue
            if e.get("type") is not None and e["type"] != qtype:
                continue
            if e.get("transport") and e["transport"] != transport:
                continue
            if "times" in e:
                key = (owner, i)
                n = self.zone.used.get(key, 0)
                if n >= int(e["times"]):
                    continue
                self.zone.used[key] = n + 1
            out.append(e)
        return out

    def answer(self, query, transport):
        """(reply bytes or None for no answer, delay in seconds)."""
        self.zone.check()
        q = query.q
        qtype = q.qtype
        name = qname_key(q.qname)
        entries, exists = self.zone.lookup(name)
        reply = query.reply()
        reply.header.ra = 1
        reply.header.aa = 1
        edns = [r for r in query.ar if r.rtype == QTYPE.OPT]
        if edns:
            reply.add_ar(EDNS0(udp_len=1232))
        neg_min = self.zone.negative_ttl
        soa_ttl = self.zone.soa_ttl if self.zone.soa_ttl is not None else neg_min
        use_soa = True
        delay = 0.0
        for e in self.behaviours(name, entries, qtype, transport):
            b = e["behaviour"]
            if b == "timeout":
                return None, 0
            if b == "delay":
                delay += float(e.get("ms", 1000)) / 1000.0
            elif b == "soa":
                soa_ttl = int(e.get("ttl", soa_ttl))
                neg_min = int(e.get("minimum", neg_min))
            elif b == "nosoa":
                use_soa = False
            elif b in ("servfail", "refused", "notimp", "formerr", "rcode"):
                codes = {"servfail": RCODE.SERVFAIL, "refused": RCODE.REFUSED,
                         "notimp": RCODE.NOTIMP, "formerr": RCODE.FORMERR}
                reply.header.rcode = codes.get(b, int(e.get("rcode", 2)))
                reply.header.aa = 0
                return reply.pack(), delay
            elif b in ("nxdomain", "nodata"):
                if b == "nxdomain":
                    reply.header.rcode = RCODE.NXDOMAIN
                if use_soa:
                    reply.add_auth(self.soa_rr(soa_ttl, neg_min))
                return reply.pack(), delay
            elif b == "garbage":
                n = int(e.get("bytes", 40))
                junk = bytes(random.getrandbits(8) for _ in range(n))
                return struct.pack("!H", query.header.id) + junk, delay
            elif b == "raw":
                return struct.pack("!H", query.header.id) + bytes.fromhex(e.get("hex", "")), delay
            elif b == "badrr":
                # header and question well formed, the answer record stops after its class
                head = struct.pack("!HHHHHH", query.header.id, 0x8180, 1, 1, 0, 0)
                question = DNSRecord(q=q).pack()[12:]
                cut = b"\xc0\x0c" + struct.pack("!HH", qtype, 1) + b"\x00\x00"
                return head + question + cut, delay
            elif b == "truncate" and transport == "udp":
                reply.header.tc = 1
                return reply.pack(), delay

        if entries is None:
            reply.header.rcode = RCODE.NXDOMAIN
            if use_soa:
                reply.add_auth(self.soa_rr(soa_ttl, neg_min))
            return reply.pack(), delay
        owner, found, seen = name, False, set()
        while entries is not None and owner not in seen and len(seen) < 8:
            seen.add(owner)
            cname = None
            for e in entries:
                if "behaviour" in e:
                    continue
                t = e["type"]
                if t == qtype or qtype == QTYPE.ANY:
                    reply.add_answer(RR(q.qname if owner == name else dname(owner), t,
                                        ttl=int(e.get("ttl", 300)), rdata=rdata(e)))
                    found = True
                elif t == QTYPE.CNAME and cname is None:
                    cname = e
            if found or cname is None:
                break
            reply.add_answer(RR(q.qname if owner == name else dname(owner), QTYPE.CNAME,
                                ttl=int(cname.get("ttl", 300)), rdata=rdata(cname)))
            owner = norm_name(cname["data"])
            entries, exists = self.zone.lookup(owner)
        if not found:
            if entries is None and not exists:
                reply.header.rcode = RCODE.NXDOMAIN
            if use_soa:
                reply.add_auth(self.soa_rr(soa_ttl, neg_min))
        out = reply.pack()
        if transport == "udp":
            limit = 512
            if edns:
                limit = max(512, min(edns[0].rclass, 65535))
            if self.udp_max:
                limit = min(limit, self.udp_max)
            if len(out) > limit:
                reply.rr, reply.auth = [], []
                reply.header.tc = 1
                out = reply.pack()
        return out, delay

    def handle(self, packet, transport, send):
        """Log the query, then answer through send(bytes), now or after its delay."""
        try:
            query = DNSRecord.parse(packet)
            q = query.q
            self.log("%s %s. %s" % (type_text(q.qtype), qname_key(q.qname), transport))
        except Exception:
            self.log("BAD - %s" % transport)
            return
        try:
            out, delay = self.answer(query, transport)
        except Exception as exc:
            sys.stderr.write("testdns: %s\n" % exc)
            query.header.rcode = RCODE.SERVFAIL
            out, delay = query.reply().pack(), 0
        if out is None:
            return
        if delay > 0:
            self.loop.call_later(delay, send, out)
        else:
            send(out)


class UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server):
        self.server = server
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.server.handle(data, "udp", lambda out: self.transport.sendto(out, addr))

    def error_received(self, exc):
        pass


async def tcp_client(server, reader, writer):
    def send(out):
        if not writer.is_closing():
            writer.write(struct.pack("!H", len(out)) + out)
    try:
        while True:
            head = await reader.readexactly(2)
            (n,) = struct.unpack("!H", head)
            packet = await reader.readexactly(n)
            server.handle(packet, "tcp", send)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    # answers still delayed are dropped with the connection


async def control_client(server, reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            reply = "ok " + control(server, line.decode("utf-8").strip())
        except Exception as exc:
            reply = "error %s" % exc
        writer.write((reply.rstrip() + "\n").encode())
        await writer.drain()
    writer.close()


def control(server, line):
    zone = server.zone
    words = line.split(None, 2)
    cmd = words[0] if words else ""
    if cmd == "ping":
        return "pong"
    if cmd == "reload":
        zone.stamp = None
        return "reloaded" if zone.load() else "kept the previous zone"
    if cmd == "set" and len(words) == 3:
        zone.names[norm_name(words[1])] = [normalize_entry(e) for e in json.loads(words[2])]
        zone.rebuild()
        return ""
    if cmd == "add" and len(words) == 3:
        zone.names.setdefault(norm_name(words[1]), []).append(
            normalize_entry(json.loads(words[2])))
        zone.rebuild()
        return ""
    if cmd == "del" and len(words) == 2:
        zone.names.pop(norm_name(words[1]), None)
        zone.rebuild()
        return ""
    if cmd == "default":
        zone.default = [normalize_entry(e) for e in json.loads(line.split(None, 1)[1])]
        return ""
    if cmd == "count" and len(words) == 1:
        return str(len(server.lines))
    if cmd == "count" and len(words) == 3:
        want = "%s %s." % (type_text(type_num(words[1])), norm_name(words[2]))
        return str(sum(1 for l in server.lines if l.rsplit(" ", 1)[0] == want))
    if cmd == "log":
        return json.dumps(server.lines)
    if cmd == "reset":
        server.reset()
        return ""
    raise ValueError("unknown command: %s" % line)


def ctl_main(target, words):
    host, _, port = target.rpartition(":")
    with socket.create_connection((host or "127.0.0.1", int(port)), timeout=10) as s:
        s.sendall((" ".join(words) + "\n").encode())
        f = s.makefile("r")
        reply = f.readline().rstrip("\n")
    print(reply)
    return 0 if reply.startswith("ok") else 1


def bind_pair(family, host, port):
    """A UDP socket and a TCP listening socket on the same port (port 0: a free one)."""
    for _ in range(50):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError:
            pass
        udp.bind((host, port))
        got = udp.getsockname()[1]
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, got))
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
            continue
        tcp.listen(128)
        return udp, tcp
    raise OSError("no free port for UDP and TCP")


async def serve(args):
    loop = asyncio.get_running_loop()
    zone = Zone(args.zone, args.document)
    zone.load()
    server = Server(zone, args.log, args.udp_max)
    server.loop = loop
    family = socket.AF_INET6 if ":" in args.listen else socket.AF_INET
    udp, tcp = bind_pair(family, args.listen, args.port)
    await loop.create_datagram_endpoint(lambda: UDPProtocol(server), sock=udp)
    await asyncio.start_server(lambda r, w: tcp_client(server, r, w), sock=tcp)
    control_port = 0
    if args.control is not None:
        csrv = await asyncio.start_server(lambda r, w: control_client(server, r, w),
                                          args.listen, args.control, family=family)
        control_port = csrv.sockets[0].getsockname()[1]
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGHUP, lambda: (setattr(zone, "stamp", None), zone.load()))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print("ready port=%d control=%d" % (udp.getsockname()[1], control_port), flush=True)
    await stop


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--ctl":
        return ctl_main(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description="the test suite's programmable DNS server")
    ap.add_argument("--zone", required=True)
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5353)
    ap.add_argument("--log")
    ap.add_argument("--control", type=int)
    ap.add_argument("--udp-max", type=int, default=0)
    ap.add_argument("--document", type=int, help="use document N (from 0) of a YAML stream")
    args = ap.parse_args()
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
