"""SIGTERM drains (SPEC §10) and a stalled database does not stall the door.

test_sigterm_drains_kept_alive_clients: client threads keep one HTTP/1.1
connection each and write (schema creates) and read in a loop; SIGTERM comes
mid-way. Afterwards: every write whose change committed (its audit event says
success) had its response read by the client; no request sent after the
server began draining was executed; the drain refusals are 503 problem
documents with Retry-After and Connection: close; the process exits within
its drain bound; the audit chain verifies.

test_stalled_database_health_and_deadlines: the database is stalled from the
test (SQLite: the write lock held by BEGIN IMMEDIATE; PostgreSQL: the branch
row held FOR UPDATE), more writes are fired than there are handler threads:
/health still answers 200 within half a second, requests that wait in the
queue past OMS_REQUEST_DEADLINE_MS are answered 503 `overloaded` with
Retry-After, each with its audit event of status 503, and no connection is
closed without a response.

OMS_FAULTS_LONG=1 runs longer and heavier variants."""

import datetime
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import harness
from harness import quote

LONG = os.environ.get("OMS_FAULTS_LONG") == "1"
DEV = ("developer",)


class KeptAlive:
    """One HTTP/1.1 connection used for many requests."""

    def __init__(self, port, timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def request(self, method, path, headers, body=None):
        h = {"Host": "127.0.0.1"}
        if body is not None:
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
            h["Content-Length"] = str(len(body))
        h.update(headers)
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.sock.sendall(head.encode("latin-1") + (body or b""))
        return harness._read_response(self.sock)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _log_time(srv, prefix):
    """Wall-clock time (epoch seconds) of the first server log line whose
    message starts with `prefix`."""
    for line in srv.read_log().splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if str(j.get("msg", "")).startswith(prefix):
            t = datetime.datetime.strptime(j["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
            return t.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None


def _branch(srv, name):
    h = {**srv.auth("drain-dev", DEV), "X-Issue-ID": "OMS-11"}
    r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": name, "from": "main"})
    assert r.status == 201, r


def test_sigterm_drains_kept_alive_clients(ctx):
    drain_ms = 4000
    srv = ctx.new_server(env={"OMS_DRAIN_TIMEOUT_MS": str(drain_ms)})
    clients = 8 if LONG else 4
    load_s = 6.0 if LONG else 1.5
    for i in range(clients + 1):
        _branch(srv, f"feature/drain{i}")
    dev = {**srv.auth("drain-dev", DEV), "X-Issue-ID": "OMS-11"}
    records = []  # one per request sent: dict(rid, kind, t_send, status, headers, body, error)
    lock = threading.Lock()
    give_up = time.time() + 60

    def url(i):
        return "/api/v1/schemas/" + quote(f"feature/drain{i}") + "/shared-properties"

    def send(conn, rid, kind, method, path, body):
        rec = {"rid": rid, "kind": kind, "t_send": time.time()}
        try:
            resp = conn.request(method, path, {**dev, "X-Request-ID": rid}, body)
            rec.update(status=resp.status, headers=resp.headers, body=resp.body)
        except OSError as e:
            rec["error"] = repr(e)
        with lock:
            records.append(rec)
        return rec

    def client(i):
        conn, n = None, 0
        while time.time() < give_up:
            if conn is None:
                try:
                    conn = KeptAlive(srv.port)
                except OSError:
                    return  # the listener is gone: the server is draining or has exited
            n += 1
            name = f"D{i}_{n}"
            for kind, method, path, body in (("write", "POST", url(i), {"api_name": name, "type": "string"}),
                                             ("read", "GET", url(i) + "/" + name, None)):
                rec = send(conn, f"drain-{kind[0]}{i}-{n}", kind, method, path, body)
                if "error" in rec or rec["headers"].get("connection", "").lower() == "close":
                    conn.close()
                    conn = None
                    break
                time.sleep(0.02 * (n % 3))  # some connections sit idle at any moment

    # Two connections kept alive and idle across the signal, and one write
    # whose body is half sent when the signal comes (in flight).
    idle = [KeptAlive(srv.port) for _ in range(2)]
    for k, c in enumerate(idle):
        assert c.request("GET", "/health", {}).status == 200
    slow = KeptAlive(srv.port)
    body = json.dumps({"api_name": "SlowUpload", "type": "string"}).encode()
    head = (f"POST {url(clients)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Request-ID: drain-slow\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in dev.items()) + "\r\n")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(load_s)
    slow.sock.sendall(head.encode() + body[:10])
    time.sleep(0.2)
    t_kill = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    late = [send(c, f"drain-idle{k}", "write", "POST", url(clients),
                 {"api_name": f"Idle{k}", "type": "string"}) for k, c in enumerate(idle)]
    slow.sock.sendall(body[10:])
    slow_resp = harness._read_response(slow.sock)
    try:
        code = srv.proc.wait(timeout=drain_ms / 1000 + 30)
    except subprocess.TimeoutExpired:
        code = None
    t_exit = time.time()
    for t in threads:
        t.join(timeout=20)
    assert code is not None, "oms did not exit after SIGTERM"
    assert code == 0, (code, srv.read_log()[-2000:])
    # The drain is bounded: OMS_DRAIN_TIMEOUT_MS for in-flight requests, a
    # few seconds more for the final audit flush (docs/operations.md).
    assert t_exit - t_kill < drain_ms / 1000 + 3, t_exit - t_kill
    t_drain = _log_time(srv, "draining")
    assert t_drain is not None, srv.read_log()[-2000:]

    events = srv.audit_events("request_id LIKE 'drain-%'")
    committed = {e["request_id"] for e in events if e["outcome"] == "success"}
    writes = [r for r in records if r["kind"] == "write"]
    assert sum(1 for r in writes if r.get("status") == 201) >= clients, "the load never got going"
    for r in writes:
        if r["rid"] in committed:
            assert r.get("status") == 201, ("a committed write without its response", r)
    # Sent after the drain began (2 ms for the log's millisecond truncation):
    # refused, never executed.
    after = [r for r in records if r["t_send"] > t_drain + 0.002]
    assert len(after) >= len(late), (t_drain, late)
    for r in after:
        assert r["rid"] not in committed, ("executed after the drain began", r)
        # refused with 503, or not answered at all (the listener is closed)
        assert r.get("status") in (503, None), ("served after the drain began", r)
    # Requests on kept-alive connections after the drain began: refused.
    for r in late:
        assert r.get("status") == 503, r
    # The write in flight when the signal came finished, and its response
    # closed its connection.
    assert slow_resp.status == 201, slow_resp
    assert "drain-slow" in committed
    assert (slow_resp.header("Connection") or "").lower() == "close", slow_resp.headers
    refused = [r for r in records if r.get("status") == 503]
    for r in refused:
        assert r["headers"].get("content-type") == "application/problem+json", r
        assert json.loads(r["body"])["code"] == "draining", r
        assert r["headers"].get("retry-after"), r
        assert r["headers"].get("connection", "").lower() == "close", r
        assert r["rid"] not in committed, r
    actions = [e["action"] for e in srv.audit_events()]
    assert actions[-1] == "server.stop", actions[-5:]
    v = srv.run_cli("audit", "verify")
    assert v.returncode == 0, v.stdout + v.stderr


class _Stall:
    """Stalls the server's database from outside the server."""

    def __init__(self, srv, branch):
        self.srv = srv
        if srv.backend == "sqlite":
            self.con = sqlite3.connect(srv.db_path, timeout=10, isolation_level=None)
            self.con.execute("BEGIN IMMEDIATE")
            self.proc = None
        else:
            self.proc = subprocess.Popen(["psql", srv.database_url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.proc.stdin.write(f"BEGIN; SELECT name FROM branches WHERE name = '{branch}' FOR UPDATE;\n")
            self.proc.stdin.flush()
            assert self.proc.stdout.readline().strip() == branch  # the row is held

    def release(self):
        if self.proc is None:
            if self.con is not None:
                self.con.execute("ROLLBACK")
                self.con.close()
                self.con = None
        elif self.proc.poll() is None:
            self.proc.stdin.write("ROLLBACK;\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


def test_stalled_database_health_and_deadlines(ctx):
    handlers = 2
    deadline_ms = 300
    # the database waits outlast the stall: the two writes the handlers hold
    # wait for it and succeed (on PostgreSQL they wait for the branch row)
    srv = ctx.new_server(env={"OMS_WORKERS": str(handlers), "OMS_REQUEST_DEADLINE_MS": str(deadline_ms),
                              "OMS_DB_BUSY_TIMEOUT_MS": "20000", "OMS_DB_LOCK_TIMEOUT_MS": "20000",
                              "OMS_DB_STATEMENT_TIMEOUT_MS": "20000"})
    branch = "feature/stall"
    _branch(srv, branch)
    dev = {**srv.auth("stall-dev", DEV), "X-Issue-ID": "OMS-11"}
    url = "/api/v1/schemas/" + quote(branch) + "/shared-properties"
    writers = 16 if LONG else 8
    hold_s = 4.0 if LONG else 2.5
    results = {}

    def write(i):
        rid = f"stall-w{i}"
        try:
            r = srv.request("POST", url, headers={**dev, "X-Request-ID": rid},
                            json_body={"api_name": f"S{i}", "type": "string"}, timeout=30)
            results[rid] = r
        except OSError as e:
            results[rid] = e

    stall = _Stall(srv, branch)
    health = []
    try:
        threads = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(writers)]
        for t in threads:
            t.start()
        t_end = time.time() + hold_s
        time.sleep(0.1)
        while time.time() < t_end:
            t0 = time.time()
            try:
                r = srv.get("/health", timeout=5)
                health.append((r.status, time.time() - t0))
            except OSError as e:
                health.append((repr(e), time.time() - t0))
            time.sleep(0.1)
    finally:
        stall.release()
    for t in threads:
        t.join(timeout=40)
    # /health blocked behind the stall would wait for its release (seconds);
    # a second is room for a slow build's scheduling, not for a wait
    assert health and all(s == 200 and dt < 1.0 for s, dt in health), health
    assert len(results) == writers, results
    for rid, r in results.items():
        assert isinstance(r, harness.Response), ("a connection closed without a response", rid, r)
    overloaded = {rid: r for rid, r in results.items() if r.status == 503}
    # Two handler threads hold two writes at most: the rest waited past
    # their deadline in the queue.
    assert len(overloaded) >= writers - handlers, {k: (v.status, v.body[:120]) for k, v in results.items()}
    for rid, r in overloaded.items():
        assert r.json()["code"] == "overloaded", r
        assert r.header("Retry-After"), r
        ev = srv.audit_events(f"request_id = '{rid}'")
        assert [int(e["http_status"]) for e in ev] == [503], (rid, ev)
        # refused before routing: request.rejected, denied; after (the route
        # known): the route's own action, failure (src/http/pipeline.c)
        assert ev[0]["outcome"] == ("denied" if ev[0]["action"] == "request.rejected" else "failure"), ev
    for rid, r in results.items():
        if rid not in overloaded:
            assert r.status == 201, r
    assert srv.get("/health").status == 200


def test_full_queue_refuses_at_once(ctx):
    """A bounded queue: with the database stalled, one handler thread stuck
    and the queue (OMS_REQUEST_QUEUE=1) taken, further requests are refused
    503 `overloaded` without waiting for their deadline, and recorded."""
    srv = ctx.new_server(env={"OMS_WORKERS": "1", "OMS_REQUEST_QUEUE": "1", "OMS_REQUEST_DEADLINE_MS": "30000",
                              "OMS_DB_BUSY_TIMEOUT_MS": "20000"})
    branch = "feature/full"
    _branch(srv, branch)
    dev = {**srv.auth("full-dev", DEV), "X-Issue-ID": "OMS-11"}
    url = "/api/v1/schemas/" + quote(branch) + "/shared-properties"
    writers = 5
    results = {}

    def write(i):
        rid = f"full-w{i}"
        try:
            results[rid] = srv.request("POST", url, headers={**dev, "X-Request-ID": rid},
                                       json_body={"api_name": f"F{i}", "type": "string"}, timeout=30)
        except OSError as e:
            results[rid] = e

    stall = _Stall(srv, branch)
    try:
        threads = []
        for i in range(writers):  # one at a time: the first holds the handler, the second the queue
            threads.append(threading.Thread(target=write, args=(i,), daemon=True))
            threads[-1].start()
            time.sleep(0.15)
        time.sleep(0.3)
    finally:
        stall.release()
    for t in threads:
        t.join(timeout=40)
    for rid, r in results.items():
        assert isinstance(r, harness.Response), ("a connection closed without a response", rid, r)
    full = {rid: r for rid, r in results.items() if r.status == 503}
    assert len(full) == writers - 2, {k: (v.status, v.body[:120]) for k, v in results.items()}
    for rid, r in full.items():
        assert r.json()["code"] == "overloaded" and "too many" in r.json()["detail"], r
        assert r.header("Retry-After"), r
        ev = srv.audit_events(f"request_id = '{rid}'")
        assert [str(e["http_status"]) for e in ev] == ["503"], (rid, ev)
    assert sorted(r.status for r in results.values() if r.status != 503) == [201, 201]


def test_drain_is_bounded_with_a_stuck_request(ctx):
    """A request stuck in the database at the drain deadline does not hold
    the process: it exits within OMS_DRAIN_TIMEOUT_MS plus the final grace
    (3 s), with status 1, and the stuck change never commits."""
    drain_ms = 1000
    # the database deadlines (which would end the stall first) set far off
    srv = ctx.new_server(env={"OMS_DRAIN_TIMEOUT_MS": str(drain_ms), "OMS_DB_BUSY_TIMEOUT_MS": "60000",
                              "OMS_DB_STATEMENT_TIMEOUT_MS": "60000", "OMS_DB_LOCK_TIMEOUT_MS": "60000"})
    branch = "feature/stuck"
    _branch(srv, branch)
    dev = {**srv.auth("stuck-dev", DEV), "X-Issue-ID": "OMS-11", "X-Request-ID": "stuck-w"}
    url = "/api/v1/schemas/" + quote(branch) + "/shared-properties"
    result = []

    def write():
        try:
            result.append(srv.request("POST", url, headers=dev, json_body={"api_name": "Stuck", "type": "string"},
                                      timeout=30))
        except OSError as e:
            result.append(e)

    stall = _Stall(srv, branch)
    try:
        t = threading.Thread(target=write, daemon=True)
        t.start()
        time.sleep(0.5)
        t_kill = time.time()
        srv.proc.send_signal(signal.SIGTERM)
        try:
            code = srv.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        t_exit = time.time()
    finally:
        stall.release()
    t.join(timeout=10)
    assert code == 1, (code, srv.read_log()[-1500:])
    log = srv.read_log()
    assert "Sanitizer" not in log and "runtime error" not in log, log[-6000:]
    assert t_exit - t_kill < drain_ms / 1000 + 3 + 1.5, (t_exit - t_kill, log[-3000:])
    assert result and not isinstance(result[0], harness.Response), result  # cut, never answered
    assert not [e for e in srv.audit_events("request_id = 'stuck-w'") if e["outcome"] == "success"]
    assert not srv.query("SELECT 1 FROM audit_events WHERE action = 'shared_property.create'")


def _read_n(sock, n, limit=10):
    """n responses from one connection, pipelined: (status, headers, body) each."""
    buf, out, t_end = b"", [], time.time() + limit
    while len(out) < n and time.time() < t_end:
        while b"\r\n\r\n" in buf and len(out) < n:
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
            size = int(headers.get("content-length", "0"))
            if len(rest) < size:
                break
            out.append((int(lines[0].split()[1]), headers, rest[:size].decode()))
            buf = rest[size:]
        if len(out) < n:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    return out


def test_hand_off_keeps_http_semantics(ctx):
    """Requests handed to handler threads keep HTTP/1.1's behaviour:
    pipelined requests answered in order on a kept-alive connection,
    Expect: 100-continue, a chunked body, a refusal before the body (401,
    connection closed, body never read), a small body read with its head
    and refused the same way, and the library's own refusal of a header
    block past its buffer still recorded."""
    srv = ctx.server
    _branch(srv, "feature/handoff")
    dev = {**srv.auth("handoff-dev", DEV), "X-Issue-ID": "OMS-11"}
    auth = "".join(f"{k}: {v}\r\n" for k, v in dev.items())
    url = "/api/v1/schemas/" + quote("feature/handoff") + "/shared-properties"
    body = json.dumps({"api_name": "Piped", "type": "string"})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall((f"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                   f"GET /api/v1/branches HTTP/1.1\r\nHost: x\r\n{auth}\r\n"
                   f"POST {url} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n{body}"
                   f"GET {url}/Piped HTTP/1.1\r\nHost: x\r\n{auth}\r\n").encode())
        got = _read_n(s, 4)
        assert [g[0] for g in got] == [200, 200, 201, 200], got
        assert all(g[1].get("connection", "") != "close" for g in got), got
        assert json.loads(got[3][2])["api_name"] == "Piped"
    body = json.dumps({"api_name": "Continued", "type": "string"})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(f"POST {url} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode())
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body.encode())
        assert harness._read_response(s).status == 201
        chunked = json.dumps({"api_name": "Chunked", "type": "string"}).encode()
        s.sendall(f"POST {url} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
                  f"Transfer-Encoding: chunked\r\n\r\n".encode() + b"%x\r\n" % len(chunked))
        time.sleep(0.1)
        s.sendall(chunked + b"\r\n0\r\n\r\n")
        r = harness._read_response(s)
        assert r.status == 201 and r.json()["api_name"] == "Chunked", r
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: 100000\r\nExpect: 100-continue\r\nX-Request-ID: handoff-401\r\n\r\n".encode())
        r = harness._read_response(s)
        assert r.status == 401 and r.header("Connection") == "close", r
    assert [e["action"] for e in srv.audit_events("request_id = 'handoff-401'")] == ["auth.failed"]
    # a small body (<= 4 KiB, read with its head: one hand-off) without a
    # token is refused the same way and the connection stays usable
    small = json.dumps({"api_name": "Anonymous", "type": "string"})
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall((f"POST {url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(small)}\r\nX-Request-ID: handoff-small-401\r\n\r\n{small}"
                   f"GET /api/v1/branches HTTP/1.1\r\nHost: x\r\n{auth}\r\n").encode())
        got = _read_n(s, 2)
        assert [g[0] for g in got] == [401, 200], got
    assert [e["action"] for e in srv.audit_events("request_id = 'handoff-small-401'")] == ["auth.failed"]
    assert srv.get(url + "/Anonymous", headers=dev).status == 404
    before = len(srv.audit_events("detail LIKE '%refused_by_http_layer%'"))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(("GET /handoff-huge HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 40000 + "\r\n\r\n").encode())
        assert harness._read_response(s).status == 431
    deadline = time.time() + 5  # recorded after the response, on the refusal lane
    while len(srv.audit_events("detail LIKE '%refused_by_http_layer%'")) == before and time.time() < deadline:
        time.sleep(0.05)
    assert [e["route"] for e in srv.audit_events("detail LIKE '%refused_by_http_layer%'")][before:] == ["/handoff-huge"]
