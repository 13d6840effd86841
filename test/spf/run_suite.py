#!/usr/bin/python3
"""run_suite.py - run an OpenSPF test suite (YAML) through the daemon's SPF check.

    run_suite.py SUITE.yml POLICYD WORKDIR [--only [SCENARIO/]TEST]... [--expected-failures FILE]
                 [--jobs N]

For each YAML document (a scenario) it serves the scenario's zonedata with test/dns/testdns.py
(127.0.0.1, port 0), starts "POLICYD -c CONF -f" on a unix socket in WORKDIR with "checks = spf"
and that DNS server, sends every test of the scenario as one policy request over one
connection, then stops both (bounded waits). Scenarios run a few at a time (--jobs, default 4),
each with its own files: WORKDIR/zone-N.json, dns-N.log (the queries), policyd-N.conf, .log,
.stderr, .sock.

The zone is the scenario's zonedata as the suite's drivers read it: a name's SPF (type 99)
records are also served as TXT records unless the name lists a TXT entry of its own
("TXT: NONE" lists none and stops that copy); a name that lists TIMEOUT answers the types
that have records before it and never answers any other (only TIMEOUT: never); record text
is sent as bytes (each character below 256 one byte, so "\\xEF\\xBB\\xBF" is a UTF-8 BOM).

Replies: "550 5.7.23 TEXT" is fail (TEXT must equal the test's explanation, if it has one and it
is not "DEFAULT", the suite's word for the implementation's own default text),
"451 4.4.3 ..." temperror, "PREPEND Received-SPF: RESULT ..." that RESULT; anything else is
an unexpected reply. Output: one "ok N - SUITE/scenario/test" or "not ok N - ... expected X
got Y (reply: ...)" line per test (a listed expected failure ends in "# TODO expected
failure"), then "SPF suite SUITE: P of T passed ...". Exit status 1 when a test fails that
is not listed in the expected-failures file, when a listed test passes or is not in the
suite, or when a daemon did not start, exited non-zero or reported a sanitizer error.

Expected-failures file: one test per line, its name first (the names are unique in a suite),
then the reason; blank lines and lines starting with "#" are ignored.
"""
# SPDX-License-Identifier: MIT
import argparse
import concurrent.futures
import json
import os
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDNS = os.path.join(HERE, "..", "dns", "testdns.py")
PY = "/usr/bin/python3"
START_WAIT = 20.0    # the ASan build starts slowly on a busy machine
REPLY_WAIT = 25.0    # request_deadline is 10s
TIMEOUT_TYPES = ("A", "AAAA", "MX", "TXT", "SPF", "PTR", "CNAME", "NS", "SOA", "SRV", "ANY")
SANITIZER = re.compile(r"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error")


def text_entry(t, v):
    """A TXT/SPF record for testdns: bytes as the suite means them."""
    parts = v if isinstance(v, list) else [v]
    parts = [str(p) for p in parts]
    try:
        for p in parts:
            p.encode("latin-1")
        enc = "latin-1"
    except UnicodeEncodeError:
        enc = "utf-8"
    return {"type": t, "data": parts, "encoding": enc}


def zone_for(doc):
    """The scenario's zonedata as a testdns zone (see the docstring)."""
    names = {}
    for name, entries in (doc.get("zonedata") or {}).items():
        out, spf, has_txt = [], [], False
        for e in entries or []:
            if isinstance(e, str):          # TIMEOUT
                out.append(e)
                continue
            for t, v in e.items():
                t = str(t).upper()
                if t == "TXT":
                    has_txt = True
                if v == "NONE":
                    continue
                if t in ("TXT", "SPF"):
                    out.append(text_entry(t, v))
                    if t == "SPF":
                        spf.append(v)
                else:
                    out.append({"type": t, "data": v})
        if not has_txt:
            out.extend(text_entry("TXT", v) for v in spf)
        if "TIMEOUT" in out and out != ["TIMEOUT"]:
            # as the suite's drivers read it: the records before TIMEOUT are answered, a
            # query for any other type (or for one listed only after it) times out
            out = out[:out.index("TIMEOUT")]
            have = {e["type"] for e in out}
            out += [{"behaviour": "timeout", "type": t} for t in TIMEOUT_TYPES if t not in have]
        names[str(name)] = out
    return {"negative_ttl": 60, "names": names}


def wait_line(proc, timeout):
    """The first line of proc's stdout, or None after timeout."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace")


def stop(proc, timeout):
    """SIGTERM, a bounded wait, then SIGKILL; the exit status (None if it had to be killed)."""
    if proc is None:
        return 0
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


class Conn:
    """One persistent connection to the daemon's unix socket."""

    def __init__(self, path):
        self.path = path
        self.sock = None
        self.buf = b""

    def connect(self):
        self.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(REPLY_WAIT)
        s.connect(self.path)
        self.sock, self.buf = s, b""

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def ask(self, request):
        """The reply's first line, or raises OSError (the connection is then closed)."""
        if self.sock is None:
            self.connect()
        try:
            self.sock.sendall(request)
            deadline = time.monotonic() + REPLY_WAIT
            while b"\n\n" not in self.buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OSError("no reply within %.0fs" % REPLY_WAIT)
                self.sock.settimeout(left)
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise OSError("connection closed by the daemon")
                self.buf += chunk
        except (OSError, socket.timeout) as exc:
            self.close()
            raise OSError(str(exc) or exc.__class__.__name__)
        reply, self.buf = self.buf.split(b"\n\n", 1)
        return reply.split(b"\n", 1)[0].decode("utf-8", "replace")


def request(test, instance):
    fields = [
        ("request", "smtpd_access_policy"), ("protocol_state", "RCPT"),
        ("protocol_name", "ESMTP"), ("client_address", str(test["host"])),
        ("client_name", "unknown"), ("reverse_client_name", "unknown"),
        ("helo_name", str(test.get("helo", ""))), ("sender", str(test.get("mailfrom", ""))),
        ("recipient", "postmaster@receiver.example"), ("instance", instance), ("queue_id", ""),
    ]
    text = "".join("%s=%s\n" % (k, v.replace("\n", " ")) for k, v in fields) + "\n"
    return text.encode("utf-8", "surrogateescape")


def parse_reply(line):
    """(result or None, explanation or None)."""
    action = line[len("action="):] if line.startswith("action=") else None
    if action is None:
        return None, None
    if action.startswith("550 5.7.23"):
        return "fail", action[len("550 5.7.23 "):]
    if action.startswith("451 4.4.3"):
        return "temperror", None
    m = re.match(r"PREPEND Received-SPF: *([A-Za-z]+)", action)
    if m:
        return m.group(1).lower(), None
    return None, None


def judge(test, line):
    """(passed, detail) for one reply line."""
    want = test["result"]
    want = [str(w).lower() for w in (want if isinstance(want, list) else [want])]
    got, expl = parse_reply(line)
    wants = "|".join(want)
    if got is None:
        return False, "expected %s got unexpected reply (reply: %s)" % (wants, line)
    if got not in want:
        return False, "expected %s got %s (reply: %s)" % (wants, got, line)
    if (got == "fail" and "explanation" in test and str(test["explanation"]) != "DEFAULT"
            and expl != str(test["explanation"])):
        return False, "expected fail with explanation %r got %r (reply: %s)" % (
            str(test["explanation"]), expl, line)
    return True, ""


def run_scenario(idx, doc, suite, binary, workdir, only):
    """A list of (test id, passed, detail) and a list of harness problems."""
    scen = str(doc.get("description", "scenario %d" % idx))
    tests = [(name, t) for name, t in (doc.get("tests") or {}).items()
             if not only or name in only or "%s/%s" % (scen, name) in only]
    results, problems = [], []
    if not tests:
        return results, problems
    p = lambda name: os.path.join(workdir, name % idx)
    zonefile = p("zone-%d.json")
    with open(zonefile, "w") as f:
        json.dump(zone_for(doc), f, indent=1)
    dns = daemon = None
    conn = None
    sockpath = p("policyd-%d.sock")
    errpath = p("policyd-%d.stderr")
    try:
        with open(p("dns-%d.stderr"), "wb") as dnserr:
            dns = subprocess.Popen([PY, TESTDNS, "--zone", zonefile, "--listen", "127.0.0.1",
                                    "--port", "0", "--log", p("dns-%d.log")],
                                   stdout=subprocess.PIPE, stderr=dnserr)
        line = wait_line(dns, 15)
        m = re.match(r"ready port=(\d+)", line or "")
        if not m:
            raise RuntimeError("testdns.py did not start (see %s)" % p("dns-%d.stderr"))
        with open(p("policyd-%d.conf"), "w") as f:
            f.write("\n".join([
                "listen = unix:" + sockpath, "user = root", "log_file = " + p("policyd-%d.log"),
                "postfix_config_directory =", "myhostname = receiver.example", "checks = spf",
                "dns_servers = 127.0.0.1:" + m.group(1), "dns_timeout = 300ms", "dns_tries = 1",
                "request_deadline = 10s", "spf_skip_mynetworks = no", "spf_check_helo = no",
            ]) + "\n")
        if os.path.exists(sockpath):
            os.unlink(sockpath)
        with open(errpath, "wb") as err:
            daemon = subprocess.Popen([binary, "-c", p("policyd-%d.conf"), "-f"],
                                      stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        deadline = time.monotonic() + START_WAIT
        conn = Conn(sockpath)
        while True:
            if daemon.poll() is not None:
                raise RuntimeError("policyd exited with status %s at start: %s" % (
                    daemon.returncode, open(errpath, errors="replace").read().strip()[-300:]))
            try:
                if stat.S_ISSOCK(os.stat(sockpath).st_mode):
                    conn.connect()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("policyd did not open its socket within %.0fs" % START_WAIT)
            time.sleep(0.02)
        for n, (name, t) in enumerate(tests):
            tid = "%s/%s/%s" % (suite, scen, name)
            try:
                line = conn.ask(request(t, "spf-%d-%d" % (idx, n)))
            except OSError as exc:
                results.append((name, tid, False, "expected %s got no reply (%s)" % (
                    t["result"], exc)))
                continue
            ok, detail = judge(t, line)
            results.append((name, tid, ok, detail))
    except RuntimeError as exc:
        problems.append("%s/%s: %s" % (suite, scen, exc))
        done = {r[0] for r in results}
        for name, t in tests:
            if name not in done:
                results.append((name, "%s/%s/%s" % (suite, scen, name), False,
                                "not run (harness problem)"))
    finally:
        if conn:
            conn.close()
        rc = stop(daemon, 15)
        stop(dns, 5)
        if daemon is not None and rc != 0 and not problems:
            problems.append("%s/%s: policyd exited with status %s (see %s)" % (
                suite, scen, "killed after 15s" if rc is None else rc, errpath))
        if os.path.exists(errpath):
            err = open(errpath, errors="replace").read()
            if SANITIZER.search(err):
                problems.append("%s/%s: sanitizer report in %s:\n%s" % (
                    suite, scen, errpath, err[:4000]))
    return results, problems


def read_expected(path):
    out = {}
    if not path:
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                out[name.split("/")[-1]] = reason.strip()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("suite")
    ap.add_argument("policyd")
    ap.add_argument("workdir")
    ap.add_argument("--only", action="append", default=[],
                    help="TEST or SCENARIO/TEST (repeatable)")
    ap.add_argument("--expected-failures")
    ap.add_argument("--jobs", type=int, default=4)
    args = ap.parse_args()
    started = time.monotonic()
    suite = os.path.basename(args.suite)
    suite = suite[:-len("-tests.yml")] if suite.endswith("-tests.yml") else suite.rsplit(".", 1)[0]
    os.makedirs(args.workdir, exist_ok=True)
    with open(args.suite, "rb") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    expected = read_expected(args.expected_failures)
    binary = os.path.abspath(args.policyd)
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(run_scenario, i, d, suite, binary, args.workdir, set(args.only))
                   for i, d in enumerate(docs)]
        outcomes = [f.result() for f in futures]
    n = passed = xfail = bad = 0
    seen = set()
    for results, problems in outcomes:
        for name, tid, ok, detail in results:
            n += 1
            seen.add(name)
            if ok and name in expected:
                bad += 1
                passed += 1
                print("ok %d - %s # UNEXPECTED PASS: listed in %s (%s)" % (
                    n, tid, args.expected_failures, expected[name]))
            elif ok:
                passed += 1
                print("ok %d - %s" % (n, tid))
            elif name in expected:
                xfail += 1
                print("not ok %d - %s %s # TODO expected failure (%s)" % (
                    n, tid, detail, expected[name]))
            else:
                bad += 1
                print("not ok %d - %s %s" % (n, tid, detail))
        for prob in problems:
            bad += 1
            print("not ok - %s" % prob)
    if not args.only:
        for name in sorted(set(expected) - seen):
            bad += 1
            print("not ok - %s: expected failure %s is not a test of this suite" % (
                args.expected_failures, name))
    print("SPF suite %s: %d of %d passed (%d expected failures, %d unexpected results) in %.1fs"
          % (suite, passed, n, xfail, bad, time.monotonic() - started))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
