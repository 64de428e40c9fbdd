"""Slow clients (SPEC §6.5; docs/security.md "Slow clients (SPEC §6.5)").

"Connection limits and timeouts defeat slow-header and slow-body attacks; a
request has a deadline: with default settings, 1,000 slow connections from
one address, or spread over 100 addresses, do not stop other clients from
being answered within a second."

Every attack runs against a server with default settings, started with the
soft descriptor limit most systems give a process (1,024: the server must
raise it itself), while a probe from another address (127.0.0.200) opens a
new connection every 100 ms and sends an authenticated GET: every answer
must be a 200 within one second of the connection attempt, for the whole
attack. Each attack also checks the mechanism that stops it:

- one address, the real `slowhttptest` in header (-H), body (-B) and read
  (-X) mode with 1,000 connections: the per-address limit admits no more than
  OMS_MAX_CONNECTIONS_PER_CLIENT of them at any moment (counted on the
  server's side of the sockets), and the server closes slow ones itself;
- spread over 127.0.0.2-127.0.0.101, 1,000 connections of a small client
  that behaves like slowhttptest's modes and, like a determined attacker,
  reconnects when the server drops it: every slow connection is closed by the
  server, never by the client, within its deadline (header deadline, minimum
  body rate, minimum response rate) plus a sweep's slack.

slowhttptest sends no Authorization header of its own; its cookie value is
the one string it copies into the request head, so the body and read modes
carry a viewer token by ending the cookie with CRLF and an Authorization
line: they get past authentication, as the report's 1,100 slow bodies with a
viewer token did.

Other tests here: a client that aborts mid-request is logged as aborted and
counted with status "none" (never 5xx); the server raises its soft
descriptor limit; each deadline and limit closes what it should with short
settings (header deadline, body rate, request deadline, per-address limit,
connection cap with eviction, idle kept-alive connections closed sooner near
the cap).

OMS_FAULTS_LONG=1 runs each attack for 60 s, the one-address ones with 1,100
connections (the report's `slowhttptest -H -c 1100 -i 10 -x 8 -l 60`)."""

import json
import os
import re
import resource
import selectors
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import harness

LONG = os.environ.get("OMS_FAULTS_LONG") == "1"
ATTACK_S = 60 if LONG else 11
ONE_ADDRESS_CONNS = 1100 if LONG else 1000
SPREAD_CONNS = 1000
SPREAD_ADDRS = [f"127.0.0.{i}" for i in range(2, 102)]
PROBE_ADDR = "127.0.0.200"
PROBE_EVERY = 0.1
PROBE_LIMIT = 1.0
VIEWER = ("viewer",)

# defaults the attacks are measured against (src/infra/config.c)
PER_CLIENT = 64
HEADER_TIMEOUT = 10.0
RATE_GRACE = 5.0
SWEEP_SLACK = 1.5  # a sweep's period, the event loop's reaction, the test's own polling


def _raise_own_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 16
    want = min(want, 1 << 16)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


class _LowServerLimit:
    """Starts servers with a soft descriptor limit of 1,024, as most systems
    give a process: the server must raise it itself (src/http/conn_guard.c)."""

    def __enter__(self):
        self.saved = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, self.saved[1]), self.saved[1]))

    def __exit__(self, *a):
        resource.setrlimit(resource.RLIMIT_NOFILE, self.saved)


def _server(ctx, env=None):
    _raise_own_nofile()
    with _LowServerLimit():
        return ctx.new_server(env=env)


# ---------------------------------------------------------------- probe


# The probe runs in a process of its own: in this process the attacker's
# threads hold the interpreter lock, and a probe sharing it would measure the
# test's own scheduling rather than the server's answer.
_PROBE_CODE = r"""
import select, socket, sys, time
port, addr, every = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
req = sys.stdin.buffer.readline().rstrip(b"\n").replace(b"\\n", b"\n").replace(b"\\r", b"\r")
def status_of(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed before the head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed before the body's end")
        body += chunk
    return status
nxt = time.monotonic()
while True:
    t0 = time.monotonic()
    try:
        s = socket.socket()
        try:
            s.settimeout(5)
            s.bind((addr, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(req)
            st = status_of(s)
        finally:
            s.close()
    except OSError as e:
        st = repr(e).replace(" ", "_")
    print(t0, time.monotonic() - t0, st, flush=True)
    nxt += every
    # stdin closing is the signal to stop
    if select.select([sys.stdin], [], [], max(0.0, nxt - time.monotonic()))[0]:
        break
"""


class Probe:
    """A client from another address, in its own process: a new connection
    every 100 ms, an authenticated GET, the whole answer read. Records
    (start, seconds, status or error); CLOCK_MONOTONIC is shared by the
    processes, so starts compare with this process's clock."""

    def __init__(self, srv, path="/api/v1/branches"):
        self.srv = srv
        self.req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                    f"{srv.token('slow-probe', VIEWER)}\r\nConnection: close\r\n\r\n")
        self.results = []
        self.proc = None

    def start(self):
        import sys
        self.proc = subprocess.Popen([sys.executable, "-c", _PROBE_CODE, str(self.srv.port), PROBE_ADDR,
                                      str(PROBE_EVERY)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write(self.req.replace("\r", "\\r").replace("\n", "\\n") + "\n")
        self.proc.stdin.flush()

    def stop(self):
        self.proc.stdin.close()
        out = self.proc.stdout.read()
        self.proc.wait(15)
        for line in out.splitlines():
            t0, d, st = line.split(" ", 2)
            self.results.append((float(t0), float(d), int(st) if st.isdigit() else st))

    def check(self, what):
        assert len(self.results) >= 5, f"{what}: the probe ran {len(self.results)} time(s)"
        bad = [(round(t - self.results[0][0], 2), round(d, 3), st) for t, d, st in self.results
               if st != 200 or d > PROBE_LIMIT]
        worst = max(d for _, d, _ in self.results)
        assert not bad, (f"{what}: {len(bad)} of {len(self.results)} probes not answered 200 within "
                         f"{PROBE_LIMIT}s (at s, took s, status): {bad[:12]}")
        return worst


# ---------------------------------------------------------------- server-side view


def _server_sockets(port):
    """The server's established connections by client address, and its
    listener's accept queue, from the kernel's table (/proc/net/tcp): an
    established connection not accepted yet is in the queue, not held.
    Connections are (address, client port) pairs."""
    conns, backlog = set(), 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            local, remote, state = p[1], p[2], p[3]
            if int(local.split(":")[1], 16) != port:
                continue
            if state == "0A":  # LISTEN: rx_queue is the accept queue's length
                backlog += int(p[4].split(":")[1], 16)
            elif state == "01":
                h, rport = remote.split(":")
                a = ".".join(str(int(h[i:i + 2], 16)) for i in (6, 4, 2, 0))
                conns.add((a, int(rport, 16)))
    return conns, backlog


class Watcher(threading.Thread):
    """Samples, every 200 ms, how many connections the server holds per
    client address (established, less the accept queue). Held means seen
    in two samples in a row: a connection over the limit is accepted and
    closed at once, and on a loaded machine a sample can catch a few of
    those between the two; the limit is about what the server keeps."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.max_per_addr = {}
        self.max_total = 0
        self.last = {}
        self.prev = set()
        self.halt = threading.Event()

    def sample(self):
        conns, backlog = _server_sockets(self.port)
        kept = conns & self.prev
        self.prev = conns
        c = {}
        for a, _ in kept:
            c[a] = c.get(a, 0) + 1
        held = {a: max(0, n - backlog) for a, n in c.items()}
        for a, n in held.items():
            self.max_per_addr[a] = max(self.max_per_addr.get(a, 0), n)
        self.max_total = max(self.max_total, sum(held.values()))
        self.last = held

    def run(self):
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(0.2)

    def stop(self):
        self.halt.set()
        self.join(5)


# ---------------------------------------------------------------- slowhttptest


def _slowhttptest(srv, mode, conns, seconds, url_path="/", cookie=None, extra=(), at_end=None):
    """Runs the real tool from 127.0.0.1 for `seconds`, calling `at_end()`
    half a second before its time is up (unless it ended by itself: every
    connection closed). Returns its per-second CSV rows (seconds, closed,
    pending, connected, service available) and its output."""
    if not shutil.which("slowhttptest"):
        raise AssertionError("slowhttptest is not installed (scripts/install-deps.sh installs it)")
    d = tempfile.mkdtemp(prefix="oms-slowhttptest-")
    prefix = os.path.join(d, "stats")
    cmd = ["slowhttptest", mode, "-c", str(conns), "-r", "1000", "-i", "10", "-x", "8", "-l", str(seconds),
           "-p", "3", "-g", "-o", prefix, "-u", f"http://127.0.0.1:{srv.port}{url_path}", *extra]
    if cookie:
        cmd += ["-j", cookie]
    with open(os.path.join(d, "out"), "wb") as out_f:
        p = subprocess.Popen(cmd, stdout=out_f, stderr=subprocess.STDOUT)
        try:
            p.wait(timeout=seconds - 0.5)
        except subprocess.TimeoutExpired:
            if at_end:
                at_end()
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    with open(os.path.join(d, "out"), "rb") as f:
        out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", f.read().decode("utf-8", "replace"))
    rows = []
    try:
        with open(prefix + ".csv") as f:
            next(f)
            for line in f:
                c = line.strip().split(",")
                if len(c) >= 5 and c[0].isdigit():
                    rows.append((int(c[0]), int(c[1]), int(c[2]), int(c[3]), c[4]))
    except OSError:
        pass
    shutil.rmtree(d, ignore_errors=True)
    assert rows, f"slowhttptest wrote no statistics: {out[-2000:]}"
    ended = re.findall(r"Exit status: *(.*)", out)
    assert ended and ended[-1].strip() in ("Hit test time limit", "No open connections left"), out[-1500:]
    return rows, ended[-1].strip()


def _token_cookie(srv, roles=VIEWER):
    return "slow=1\r\nAuthorization: Bearer " + srv.token("slow-attacker", roles)


# ---------------------------------------------------------------- our slow client


class SlowSwarm:
    """`n` slow connections spread over `addrs`, like slowhttptest's modes:

    header: a request line and one more header line every `interval`;
    body:   a complete authenticated head announcing an 8 KiB body, then 8
            bytes every `interval`;
    read:   20 pipelined GET /health with a 256-byte receive buffer, then 32
            bytes read every second.

    A connection the server closes is replaced (at most `reconnect_rate`
    new connections a second). Records, for every connection, when it was
    opened and when the server closed it."""

    def __init__(self, port, mode, n, addrs, token=None, interval=5.0, reconnect_rate=400):
        self.port, self.mode, self.n, self.addrs = port, mode, n, addrs
        self.token, self.interval, self.reconnect_rate = token, interval, reconnect_rate
        self.sel = selectors.DefaultSelector()
        self.conns = {}  # sock -> dict(opened, next, addr)
        self.opened = 0
        self.closed_by_server = []  # (seconds open, mode)
        self.refused = 0  # closed before or right at connect
        self.max_open = 0
        self.max_gap = 0.0  # the longest pass of the loop: how late a close can be seen
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.errors = []

    def head(self):
        if self.mode == "header":
            return b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n"
        if self.mode == "body":
            return (b"POST /api/v1/schemas/main/validate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Authorization: Bearer " + self.token.encode() +
                    b"\r\nContent-Type: application/json\r\nContent-Length: 8192\r\n\r\n{\"a\":\"")
        return b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 20

    def open_one(self, i):
        s = socket.socket()
        s.setblocking(False)
        if self.mode == "read":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256)
        try:
            s.bind((self.addrs[i % len(self.addrs)], 0))
            s.connect_ex(("127.0.0.1", self.port))
        except OSError as e:
            self.errors.append(repr(e))
            s.close()
            return
        now = time.monotonic()
        self.conns[s] = {"opened": now, "next": None, "connected": False}
        self.sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)
        self.opened += 1

    def drop(self, s, by_server):
        c = self.conns.pop(s, None)
        if c is None:
            return
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        if by_server:
            if c["connected"]:
                self.closed_by_server.append(time.monotonic() - c["opened"])
            else:
                self.refused += 1

    def tick(self, s, c, now):
        c["next"] = now + (0.2 if self.mode == "read" else self.interval)
        try:
            if self.mode == "header":
                s.send(b"X-a: %d\r\n" % int(now))
            elif self.mode == "body":
                s.send(b"aaaaaaaa")
            else:
                # the server's close (a reset, or a FIN behind the unread
                # answers) shows in the socket's state, not in what we read;
                # looked at every 200 ms, 32 bytes read every second
                if s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1:  # TCP_ESTABLISHED
                    self.drop(s, True)
                    return
                if now >= c.get("read_at", 0):
                    c["read_at"] = now + 1.0
                    s.recv(32)
        except BlockingIOError:
            pass
        except OSError:
            self.drop(s, True)

    def run(self):
        i = 0
        budget, last = 0.0, time.monotonic()
        while not self.halt.is_set():
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            budget = min(self.reconnect_rate, budget + (now - last) * self.reconnect_rate)
            last = now
            while len(self.conns) < self.n and budget >= 1:
                self.open_one(i)
                i += 1
                budget -= 1
            self.max_open = max(self.max_open, len(self.conns))
            for key, ev in self.sel.select(timeout=0.05):
                s, c = key.fileobj, self.conns.get(key.fileobj)
                if c is None:
                    continue
                if not c["connected"] and ev & selectors.EVENT_WRITE:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        self.drop(s, True)
                        continue
                    c["connected"] = True
                    try:
                        s.send(self.head())
                    except (BlockingIOError, OSError):
                        pass
                    c["next"] = now + (0.2 if self.mode == "read" else self.interval)
                    if self.mode == "read":
                        self.sel.unregister(s)  # its ticks look at it
                    else:
                        self.sel.modify(s, selectors.EVENT_READ)
                    continue
                if ev & selectors.EVENT_READ:
                    try:
                        data = s.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        self.drop(s, True)
                    else:
                        c["answered"] = data[:12]  # an answer (a refusal): the server closes next
            for s, c in list(self.conns.items()):
                if c["connected"] and c["next"] and now >= c["next"]:
                    self.tick(s, c, now)
        for s in list(self.conns):
            self.drop(s, False)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.halt.set()
        self.thread.join(20)


# ---------------------------------------------------------------- attacks


def _closed_counts(srv):
    """oms_http_connections_closed_total by reason."""
    m = {}
    r = srv.get("/metrics", headers=srv.auth("slow-metrics", ("admin",)))
    assert r.status == 200, r
    for line in r.body.splitlines():
        mm = re.match(r'oms_http_connections_closed_total\{reason="(\w+)"\} (\d+)', line)
        if mm:
            m[mm.group(1)] = int(mm.group(2))
    return m


def _attack_one_address(ctx, mode, path="/", roles=None, extra=()):
    srv = _server(ctx)
    probe, watch = Probe(srv), Watcher(srv.port)
    probe.start()
    watch.start()
    at_end = []
    try:
        rows, ended = _slowhttptest(srv, mode, ONE_ADDRESS_CONNS, ATTACK_S, path,
                                    _token_cookie(srv, roles) if roles else None, extra,
                                    at_end=lambda: (watch.sample(), at_end.append(watch.last.get("127.0.0.1", 0))))
    finally:
        probe.stop()
        watch.stop()
    worst = probe.check(f"slowhttptest {mode} from one address")
    # the attack was made: every connection was opened
    assert rows[-1][1] + rows[-1][2] + rows[-1][3] >= ONE_ADDRESS_CONNS * 0.95, rows[-3:]
    held = watch.max_per_addr.get("127.0.0.1", 0)
    # the per-address limit: never more than PER_CLIENT at once (slowhttptest's
    # own probe and the harness's requests come from 127.0.0.1 too)
    assert held <= PER_CLIENT + 4, f"the server held {held} connections from one address at once"
    # and the slow ones it admitted were closed by their deadline before the
    # end (or all of them were, and the tool stopped early)
    assert (at_end or [0])[0] <= 4, f"{at_end[0]} of the attacker's connections were still open at the end"
    closed = _closed_counts(srv)
    print(f"  slowhttptest {mode}: worst probe {worst * 1000:.0f} ms of {len(probe.results)}; held at most {held}; "
          f"open at the end {at_end or 'none (all closed)'}; its last second (s, closed, pending, connected, up): "
          f"{rows[-1]}; {ended}; closed by the server: {closed}")
    assert closed.get("per_client", 0) >= ONE_ADDRESS_CONNS - PER_CLIENT - 50, closed
    return srv, closed


def test_slowhttptest_headers_one_address(ctx):
    """slowhttptest -H (Slowloris), no credentials: a header line every 10 s."""
    srv, closed = _attack_one_address(ctx, "-H")
    assert closed.get("header_timeout", 0) >= PER_CLIENT // 2, closed
    # a slow connection costs no audit write: it never made a request
    assert srv.audit_events("action = 'request.rejected'") == []


def test_slowhttptest_bodies_one_address(ctx):
    """slowhttptest -B (R-U-Dead-Yet) with a viewer token: the head passes
    authentication and authorization, then 8 KiB of body trickle in."""
    srv, closed = _attack_one_address(ctx, "-B", "/api/v1/schemas/main/validate", VIEWER,
                                      ("-s", "8192", "-f", "application/json"))
    assert closed.get("body_rate", 0) >= PER_CLIENT // 2, closed


def test_slowhttptest_reads_one_address(ctx):
    """slowhttptest -X (slow read) as a metrics scraper (a service account):
    10 pipelined GET /metrics (6 KiB each) a connection, a receive window of
    at most 512 bytes, 5 bytes read a second. The answers outgrow the
    kernel's buffers, so the server is left holding them."""
    srv, closed = _attack_one_address(ctx, "-X", "/metrics", ("service_account",),
                                      ("-k", "10", "-n", "1", "-z", "5"))
    assert closed.get("response_rate", 0) + closed.get("request_timeout", 0) >= PER_CLIENT // 2, closed


def _attack_spread(ctx, mode, deadline):
    srv = _server(ctx)
    probe = Probe(srv)
    token = srv.token("slow-swarm", VIEWER)
    probe.start()
    try:
        with SlowSwarm(srv.port, mode, SPREAD_CONNS, SPREAD_ADDRS, token=token) as sw:
            time.sleep(ATTACK_S)
            now = time.monotonic()
            oldest = max((now - c["opened"] for c in sw.conns.values() if c["connected"]), default=0)
    finally:
        probe.stop()
    worst = probe.check(f"{SPREAD_CONNS} slow {mode} connections over {len(SPREAD_ADDRS)} addresses")
    closed = _closed_counts(srv)
    cut = sorted(sw.closed_by_server)
    print(f"  {mode} x{SPREAD_CONNS}/{len(SPREAD_ADDRS)} addresses: worst probe {worst * 1000:.0f} ms of "
          f"{len(probe.results)}; at most {sw.max_open} open; {len(cut)} closed by the server "
          f"(longest {cut[-1] if cut else 0:.2f} s); oldest at the end {oldest:.2f} s; longest pass of the swarm's "
          f"loop {sw.max_gap:.2f} s; closed by reason: {closed}")
    assert not sw.errors, sw.errors[:5]
    assert sw.max_open >= SPREAD_CONNS * 0.95, f"the swarm only ever had {sw.max_open} connections open"
    # the server closes every slow connection by its deadline
    assert len(cut) >= SPREAD_CONNS // 4, f"the server closed only {len(cut)} slow connections"
    # a close is seen by the swarm's loop: on a loaded machine one pass of
    # it over a thousand sockets can take longer than the slack, and a close
    # is then seen that much later than it happened
    seen = deadline + SWEEP_SLACK + max(0.0, sw.max_gap - 0.25)
    assert cut[-1] <= seen, f"a slow connection was closed only after {cut[-1]:.2f} s (loop pass {sw.max_gap:.2f} s)"
    assert oldest <= seen, f"a slow connection was still open after {oldest:.2f} s (loop pass {sw.max_gap:.2f} s)"
    return srv, closed


def test_slow_headers_spread_over_100_addresses(ctx):
    srv, closed = _attack_spread(ctx, "header", HEADER_TIMEOUT)
    assert closed.get("header_timeout", 0) >= SPREAD_CONNS // 4, closed
    assert srv.audit_events("action = 'request.rejected'") == []


def test_slow_bodies_spread_over_100_addresses(ctx):
    srv, closed = _attack_spread(ctx, "body", RATE_GRACE)
    assert closed.get("body_rate", 0) >= SPREAD_CONNS // 4, closed


def test_slow_reads_spread_over_100_addresses(ctx):
    # answers the kernel holds for a reader count once the grace has passed,
    # their pace measured over one more second
    srv, closed = _attack_spread(ctx, "read", RATE_GRACE + 1.0)
    assert closed.get("response_rate", 0) >= SPREAD_CONNS // 4, closed


# ---------------------------------------------------------------- each limit and deadline, with short settings


def _log_requests(srv):
    out = []
    for line in srv.read_log().splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("msg") == "request":
            out.append(j)
    return out


def _closed_within(s, low, high):
    """Waits for the server to close `s` (EOF or reset, nothing else read
    but an answer's bytes); returns the seconds it took, asserting the
    range."""
    t0 = time.monotonic()
    s.settimeout(0.05)
    while time.monotonic() - t0 < high + 2:
        try:
            if s.recv(65536) == b"":
                break
        except socket.timeout:
            if s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1:
                break
            continue
        except OSError:
            break
    took = time.monotonic() - t0
    assert low <= took <= high, f"closed after {took:.2f} s, not within [{low}, {high}] s"
    return took


def _connect(srv, addr="127.0.0.1", rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((addr, 0))
    s.connect(("127.0.0.1", srv.port))
    return s


def _trickle(s, data, every, until_closed=True):
    """Sends `data` piece by piece every `every` seconds in a thread."""
    def run():
        for piece in data:
            try:
                s.send(piece)
            except OSError:
                return
            time.sleep(every)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_each_deadline_closes_its_slow_client(ctx):
    """Header deadline (1 s), minimum body rate (1,024 B/s after a 1 s
    grace), request deadline (2 s), minimum response rate: each closes the
    connection that misses it, on time, with its reason in the metrics and
    the access log; a prompt client is unaffected."""
    srv = _server(ctx, env={"OMS_HEADER_TIMEOUT_MS": "1000", "OMS_DATA_RATE_GRACE_MS": "1000",
                            "OMS_MIN_DATA_RATE": "1024", "OMS_REQUEST_TIMEOUT_MS": "2000"})
    tok = srv.token("slow-one", VIEWER).encode()
    post = (b"POST /api/v1/schemas/main/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
            b"\r\nContent-Type: application/json\r\nX-Request-ID: %s\r\nContent-Length: %d\r\n\r\n")
    # a header line every 200 ms: closed at the header deadline
    s = _connect(srv)
    _trickle(s, [b"GET /health HTTP/1.1\r\n"] + [b"X-a: b\r\n"] * 20, 0.2)
    _closed_within(s, 0.9, 1.6)
    s.close()
    # a kept-alive connection: the deadline runs from its next request line
    s = _connect(srv)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert harness._read_response(s).status == 200
    time.sleep(0.6)
    _trickle(s, [b"GET /health HTTP/1.1\r\n"] + [b"X-a: b\r\n"] * 20, 0.2)
    _closed_within(s, 0.9, 1.6)
    s.close()
    # a body at ~200 bytes a second: closed once the grace has passed
    s = _connect(srv)
    s.sendall(post % (b"slow-body-rate", 100000) + b"{")
    _trickle(s, [b" " * 20] * 100, 0.1)
    _closed_within(s, 0.9, 1.6)
    s.close()
    # a small body (read with its head, one hand-off) at ~200 bytes a
    # second: the same minimum rate cuts it
    s = _connect(srv)
    s.sendall(post % (b"slow-small-body", 4000) + b"{")
    _trickle(s, [b" " * 20] * 100, 0.1)
    _closed_within(s, 0.9, 1.6)
    s.close()
    # a body above the minimum rate (2 KiB/s) but longer than the request deadline
    s = _connect(srv)
    s.sendall(post % (b"slow-body-deadline", 10000) + b"{")
    _trickle(s, [b" " * 205] * 60, 0.1)
    _closed_within(s, 1.8, 2.6)
    s.close()
    # a prompt body of 40 KiB sent in 0.8 s (50 KiB/s) is answered: a valid
    # change set of ten resources with 4,000-byte descriptions
    s = _connect(srv)
    body = json.dumps({"operations": [
        {"op": "create", "kind": "shared-properties", "api_name": f"Prompt{i}",
         "document": {"api_name": f"Prompt{i}", "type": "string", "description": "x" * 4000}}
        for i in range(10)]}).encode()
    s.sendall(post % (b"prompt-body", len(body)))
    for i in range(0, len(body), 4000):
        s.sendall(body[i:i + 4000])
        time.sleep(0.08)
    s.settimeout(5)
    r = harness._read_response(s)
    assert r.status == 200 and r.json()["valid"] is True, r
    s.close()
    # 20 pipelined GET /health, a 256-byte receive buffer, nothing read: the
    # answers wait in the kernel; the reader is cut one second after the grace
    s = _connect(srv, rcvbuf=256)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 5 and s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == 1:
        time.sleep(0.05)
    took = time.monotonic() - t0
    assert 1.9 <= took <= 2.8, f"the slow reader was cut after {took:.2f} s"
    s.close()
    closed = _closed_counts(srv)
    assert closed["header_timeout"] == 2 and closed["body_rate"] == 2 and closed["request_timeout"] == 1, closed
    assert closed["response_rate"] == 1, closed
    logged = {j.get("request_id"): j for j in _log_requests(srv)}
    for rid, cut in (("slow-body-rate", "body_rate"), ("slow-small-body", "body_rate"),
                     ("slow-body-deadline", "request_timeout")):
        j = logged.get(rid)
        assert j and j.get("end") == "timed_out" and j.get("cut") == cut and j.get("status") == 0, j


def test_per_client_limit(ctx):
    """OMS_MAX_CONNECTIONS_PER_CLIENT=5: a sixth connection from the same
    address is closed at once, unanswered; other addresses are served; a
    slot freed is a slot again."""
    srv = _server(ctx, env={"OMS_MAX_CONNECTIONS_PER_CLIENT": "5"})
    held = [_connect(srv, "127.0.0.3") for _ in range(5)]
    time.sleep(0.2)
    sixth = _connect(srv, "127.0.0.3")
    sixth.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    _closed_within(sixth, 0, 0.5)
    other = _connect(srv, "127.0.0.4")
    other.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    other.settimeout(5)
    assert harness._read_response(other).status == 200
    held.pop().close()
    time.sleep(0.3)
    again = _connect(srv, "127.0.0.3")
    again.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    again.settimeout(5)
    assert harness._read_response(again).status == 200
    for s in held + [sixth, other, again]:
        s.close()
    assert _closed_counts(srv)["per_client"] == 1


def test_cap_evicts_the_oldest_waiting_connection(ctx):
    """OMS_MAX_CONNECTIONS=32 and 120 slow-header connections from 100
    addresses: every new connection past the cap closes the oldest one still
    sending its headers, so the probe is answered within a second throughout
    and the server never holds more than the cap and its headroom."""
    cap = 32
    srv = _server(ctx, env={"OMS_MAX_CONNECTIONS": str(cap)})
    probe, watch = Probe(srv), Watcher(srv.port)
    probe.start()
    watch.start()
    try:
        with SlowSwarm(srv.port, "header", 120, SPREAD_ADDRS, reconnect_rate=60) as sw:
            time.sleep(5)
    finally:
        probe.stop()
        watch.stop()
    worst = probe.check(f"120 slow connections against a cap of {cap}")
    closed = _closed_counts(srv)
    print(f"  worst probe {worst * 1000:.0f} ms; held at most {watch.max_total}; closed by reason: {closed}")
    assert closed["evicted"] >= 60, closed
    assert len(sw.closed_by_server) >= 60, len(sw.closed_by_server)
    total = max(1, watch.max_total)
    assert total <= cap + cap // 8 + 16 + 8, f"the server held {total} connections"


def test_idle_connections_closed_sooner_near_the_cap(ctx):
    """OMS_MAX_CONNECTIONS=32: a kept-alive connection stays open while the
    server is far from its cap; with 26 slow connections open (three quarters
    of the cap is 24) an idle kept-alive connection is closed after 1 s."""
    srv = _server(ctx, env={"OMS_MAX_CONNECTIONS": "32"})
    s = _connect(srv)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5)
    assert harness._read_response(s).status == 200
    time.sleep(2.5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert harness._read_response(s).status == 200, "the kept-alive connection was closed far from the cap"
    slow = []
    for i in range(26):
        c = _connect(srv, SPREAD_ADDRS[i])
        c.sendall(b"GET / HTTP/1.1\r\n")
        slow.append(c)
    time.sleep(0.3)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert harness._read_response(s).status == 200
    _closed_within(s, 0.9, 1.6)
    for c in slow + [s]:
        c.close()
    assert _closed_counts(srv)["idle"] == 1


def test_client_abort_is_logged_as_aborted(ctx):
    """A client that closes (FIN) or resets (RST) in the middle of its body
    is logged with "end":"aborted" and status 0, and counted in
    oms_http_requests_total with status "none", never 5xx."""
    srv = _server(ctx)
    tok = srv.token("aborter", VIEWER).encode()
    for rid, reset in ((b"abort-fin", False), (b"abort-rst", True)):
        s = _connect(srv)
        s.sendall(b"POST /api/v1/schemas/main/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok +
                  b"\r\nContent-Type: application/json\r\nX-Request-ID: " + rid +
                  b"\r\nContent-Length: 1000\r\n\r\n{\"a\": \"" + b"x" * 90)
        time.sleep(0.3)
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    time.sleep(0.5)
    r = srv.get("/metrics", headers=srv.auth("abort-metrics", ("admin",)))
    series = {}
    for line in r.body.splitlines():
        m = re.match(r'oms_http_requests_total\{method="POST",route="/api/v1/schemas/\{branch\}/validate",'
                     r'status="(\w+)"\} (\d+)', line)
        if m:
            series[m.group(1)] = int(m.group(2))
    assert series == {"none": 2}, series
    logged = {j.get("request_id"): j for j in _log_requests(srv)}
    for rid in ("abort-fin", "abort-rst"):
        j = logged.get(rid)
        assert j and j.get("end") == "aborted" and j.get("status") == 0 and "cut" not in j, j


def test_server_raises_its_descriptor_limit(ctx):
    """Started with a soft limit of 1,024 descriptors, the server raises it to
    the hard limit; with a hard limit too low for OMS_MAX_CONNECTIONS it
    lowers the cap to fit, says so, and reports the cap in /metrics."""
    srv = _server(ctx)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open(f"/proc/{srv.proc.pid}/limits") as f:
        line = next(ln for ln in f if ln.startswith("Max open files"))
    soft_now = int(line.split()[3])
    assert soft_now == hard or soft_now >= 8192, line
    r = srv.get("/metrics", headers=srv.auth("fd-metrics", ("admin",)))
    assert "oms_http_connections_max 4096" in r.body
    # a hard limit of 1,024, set in a shell that then becomes the server
    wrapper = os.path.join(srv.tmp, "low-limit.sh")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nulimit -n 1024 || exit 97\nexec {os.path.abspath(harness.OMS_BIN)} "$@"\n')
    os.chmod(wrapper, 0o755)
    low = ctx.new_server(start=False, binary=wrapper)
    low.start()
    r = low.get("/metrics", headers=low.auth("fd-metrics", ("admin",)))
    m = re.search(r"oms_http_connections_max (\d+)", r.body)
    assert m and 256 <= int(m.group(1)) < 1024, r.body[-600:]
    print(f"  soft limit raised to {soft_now}; under a hard limit of 1,024 the cap is {m.group(1)}")
    warn = [ln for ln in low.read_log().splitlines() if "does not fit the descriptor limit" in ln]
    assert warn, low.read_log()[-1500:]
