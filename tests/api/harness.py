"""Test harness for the API suite: starts the real `oms serve` on a free port
with a temporary database (SQLite file or a fresh database on the throwaway
PostgreSQL server), speaks raw HTTP/1.1 to it, mints tokens and reads the
audit table. Standard library only."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse

OMS_BIN = os.environ.get("OMS_BIN", "build/rel/oms")
PG_URL = os.environ.get("OMS_PG_URL")  # throwaway server's admin URL, when testing PostgreSQL


class Skip(Exception):
    """Raised by a test that does not apply here: run.py reports SKIP, never a pass."""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(secret, payload=None, header=None, alg="HS256", sign=True):
    """A JWT built by hand, so tests can forge every malformed variant."""
    header = header if header is not None else {"alg": alg, "typ": "JWT"}
    h = b64url(json.dumps(header, separators=(",", ":")))
    p = b64url(json.dumps(payload, separators=(",", ":")))
    signing_input = f"{h}.{p}".encode()
    if not sign:
        return f"{h}.{p}."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    if isinstance(secret, str):
        secret = secret.encode()
    sig = hmac.new(secret, signing_input, digest).digest()
    return f"{h}.{p}.{b64url(sig)}"


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-cased names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


def _read_response(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before the response headers: {buf[:200]!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        parts, got = [rest], len(rest)
        while got < n:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        body = b"".join(parts)[:n]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, rest = rest.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body += rest[:size]
            rest = rest[size + 2:]
            if size == 0:
                break
    else:
        body = rest
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return Response(status, reason, headers, body.decode("utf-8", "replace"))


class Server:
    """One `oms serve` process on a fresh database."""

    def __init__(self, backend, env=None, secret=None, start=True, binary=None):
        self.binary = binary or OMS_BIN  # the oms executable this server runs
        self.backend = backend
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="oms-api-")
        self.secret = secret or secrets.token_urlsafe(48)
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")
        if backend == "sqlite":
            self.db_path = os.path.join(self.tmp, "data", "oms.db")
            self.database_url = f"sqlite:{self.db_path}"
        else:
            self.dbname = "oms_" + secrets.token_hex(6)
            _psql(PG_URL, f"CREATE DATABASE {self.dbname}")
            self.database_url = PG_URL.rsplit("/", 1)[0] + "/" + self.dbname
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": self.database_url,
            "JWT_SECRET": self.secret,
            "OMS_LISTEN": f"127.0.0.1:{self.port}",
            "OMS_LOG_LEVEL": "info",
        }
        # The suite fires requests from 127.0.0.1 far faster than a client
        # would, bad tokens included: limits that never bite unless a test
        # asks for its own (tests/security/test_ratelimit.py; None removes one
        # and leaves the server's default).
        self.env.update({
            "OMS_RATE_LIMIT_READ": "1000000/s:1000000",
            "OMS_RATE_LIMIT_WRITE": "1000000/s:1000000",
            "OMS_RATE_LIMIT_AUTH_FAILURE": "1000000/s:1000000",
            # and burst alerts that never fire unless a test sets its own
            # thresholds (tests/api/test_monitoring.py)
            "OMS_ALERT_AUTH_FAILURES": "1000000/1",
            "OMS_ALERT_DENIALS": "1000000/1",
        })
        if backend == "pg":  # required there (SQLite generates audit.key beside the database)
            self.env["OMS_AUDIT_KEY"] = secrets.token_hex(32)
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in os.environ:
                self.env[k] = os.environ[k]
        if env:
            for k, v in env.items():
                if v is None:
                    self.env.pop(k, None)
                else:
                    self.env[k] = v
        if start:
            self.start()

    def share_database_of(self, other):
        """Makes this (not yet started) server a second instance of `other`:
        same database, token secret and audit key (a different key would be
        refused at start-up: the database's checkpoints were signed with it)."""
        self.env["DATABASE_URL"] = self.database_url = other.database_url
        if other.backend == "sqlite":
            self.db_path = other.db_path
        self.secret = self.env["JWT_SECRET"] = other.secret
        if "OMS_AUDIT_KEY" in other.env:
            self.env["OMS_AUDIT_KEY"] = other.env["OMS_AUDIT_KEY"]

    def run_cli(self, *args, env=None, timeout=30):
        e = dict(self.env)
        if env:
            for k, v in env.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = v
        return subprocess.run([self.binary, *args], env=e, capture_output=True, text=True, timeout=timeout)

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=self.log, stderr=self.log)
        if not wait:
            return
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oms exited with {self.proc.returncode}: {self.read_log()[-2000:]}")
            try:
                if self.request("GET", "/health").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("oms did not become healthy: " + self.read_log()[-2000:])

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=None):
        if self.proc and self.proc.poll() is None:
            if sig is None:
                self.proc.terminate()
            else:
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code

    def sanitizer_report(self):
        """A sanitizer's report in the server log, if any (ASan, UBSan, LSan)."""
        log = self.read_log() if os.path.exists(self.log_path) else ""
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            i = log.find(marker)
            if i >= 0:
                return log[max(0, i - 200):i + 3000]
        return None

    def destroy(self):
        self.stop()
        if self.backend == "pg":
            _psql(PG_URL, f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
        subprocess.run(["rm", "-rf", self.tmp])

    # ---- tokens ----
    def token(self, sub="alice", roles=("viewer",), ttl=3600, **extra):
        now = int(time.time())
        payload = {"sub": sub, "roles": list(roles), "iat": now, "exp": now + ttl}
        payload.update(extra)
        return make_token(self.secret, payload)

    def auth(self, sub="alice", roles=("viewer",)):
        return {"Authorization": "Bearer " + self.token(sub, roles)}

    # ---- HTTP ----
    def raw(self, data, timeout=10, source=None):
        """Sends raw bytes and reads one response. `source`: the local
        address to send from (any 127.x.y.z on Linux: distinct clients)."""
        src = (source, 0) if source else None
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout, source_address=src) as s:
            s.sendall(data)
            return _read_response(s)

    def request(self, method, path, headers=None, body=None, json_body=None, timeout=10, source=None):
        h = {"Host": f"127.0.0.1:{self.port}", "Connection": "close"}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            h["Content-Type"] = "application/json"
        if isinstance(body, str):
            body = body.encode()
        if body is not None:
            h["Content-Length"] = str(len(body))
        if headers:
            h.update(headers)
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        resp = self.raw(head.encode("latin-1") + (body or b""), timeout=timeout, source=source)
        _record(method, path, resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def metric(self, name):
        """The value of an unlabelled metric from /metrics."""
        r = self.get("/metrics", headers=self.auth("svc", ("service_account",)))
        assert r.status == 200, r
        for line in r.body.split("\n"):
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} missing from /metrics")

    # ---- the database ----
    def query(self, sql):
        """Rows of a read-only query against the server's database."""
        if self.backend == "sqlite":
            con = sqlite3.connect(self.db_path, timeout=10)
            try:
                return [tuple(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        out = _psql(self.database_url, sql, tuples=True)
        return [tuple(None if c == "\\N" else c for c in line.split("\x1f")) for line in out.splitlines() if line]

    def query_many(self, sqls):
        """Rows of each read-only query, in order: on PostgreSQL one psql
        run for them all (a psql run costs tens of milliseconds here)."""
        if self.backend == "sqlite":
            return [self.query(q) for q in sqls]
        mark = "--oms-query-boundary-" + secrets.token_hex(8)
        script = "".join(f"\\echo {mark}\n{q.rstrip().rstrip(';')};\n" for q in sqls)
        out = _psql(self.database_url, None, tuples=True, script=script)
        parts = out.split(mark + "\n")[1:]
        assert len(parts) == len(sqls), (len(parts), len(sqls))
        return [[tuple(None if c == "\\N" else c for c in line.split("\x1f")) for line in part.splitlines() if line]
                for part in parts]

    def execute(self, sql):
        """Statements that write, against the server's database (query()
        is read-only)."""
        if self.backend == "sqlite":
            con = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
            try:
                con.executescript(sql)
            finally:
                con.close()
        else:
            _psql(self.database_url, sql)

    def events_unpositioned(self):
        """Committed events without a position yet: on PostgreSQL those in
        the sequencer's queue and any left in `events` with an empty one
        (docs/events.md "Order"); on SQLite none ever (given at insert)."""
        if self.backend == "sqlite":
            sql = "SELECT COUNT(*) FROM events WHERE pos IS NULL"
        else:
            sql = ("SELECT (SELECT COUNT(*) FROM events WHERE pos IS NULL)"
                   " + (SELECT COUNT(*) FROM events_pending)")
        return int(self.query(sql)[0][0])

    # Every time a lock row keeps, epoch milliseconds (docs/locks.md).
    LOCK_TIMES = ("acquired_at", "expires_at", "last_heartbeat_at", "deadline_at", "progress_updated_at", "ended_at")

    def advance_lock_clock(self, seconds, where="1=1"):
        """The lock tests' clock: what `seconds` passing does to the locks
        matching `where`, at once. A lock is live while the database clock
        is before its deadline_at, and every lock time is judged against
        that clock (docs/locks.md), so moving each of a lock's times
        `seconds` into the past is the clock moving `seconds` forward for
        it: its TTL, heartbeat window, ETA and progress rate see the time
        gone by; the next request, heartbeat or reaper run judges it at the
        new instant. No sleep, on either backend."""
        self._advance("locks", self.LOCK_TIMES, seconds, where)

    OVERRIDE_TIMES = ("created_at", "expires_at", "decided_at", "used_at")

    def advance_override_clock(self, seconds, where="1=1"):
        """The same for emergency overrides, whose expiry is judged by the
        database clock too (src/governance/overrides.c)."""
        self._advance("overrides", self.OVERRIDE_TIMES, seconds, where)

    def _advance(self, table, columns, seconds, where):
        ms = int(round(seconds * 1000))
        sets = ", ".join(f"{c} = {c} - {ms}" for c in columns)
        self.execute(f"UPDATE {table} SET {sets} WHERE {where};")

    def audit_events(self, where="1=1"):
        cols = "seq, action, outcome, http_status, actor_sub, client_addr, route, request_id, detail"
        rows = self.query(f"SELECT {cols} FROM audit_events WHERE {where} ORDER BY seq")
        names = [c.strip() for c in cols.split(",")]
        return [dict(zip(names, r)) for r in rows]


RECORD = os.environ.get("OMS_RECORD_RESPONSES")


def _record(method, path, resp):
    """With OMS_RECORD_RESPONSES=FILE, every JSON response body goes to FILE
    (JSON lines) for tests/browser/check-openapi.mjs to validate against
    openapi.json after the run."""
    if not RECORD:
        return
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip()
    if ctype not in ("application/json", "application/problem+json") or not resp.body:
        return
    try:
        body = json.loads(resp.body)
    except ValueError:
        body = None  # a non-JSON body under a JSON type: fails the check
    with open(RECORD, "a") as f:
        f.write(json.dumps({"method": method, "path": path, "status": resp.status, "type": ctype,
                            "body": body}) + "\n")


def _psql(url, sql, tuples=False, script=None):
    """psql's output of one statement (`sql`), or of a script on its input."""
    args = ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-X"]
    if tuples:
        args += ["-A", "-t", "-F", "\x1f", "-P", "null=\\N"]
    r = subprocess.run(args + (["-c", sql] if script is None else []), input=script, capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr}")
    return r.stdout


class PgHeldTransaction:
    """A psql session that runs `statement` (a row or table lock) in a
    transaction and holds it open until release(): the database as another
    session leaves it while a test watches what the server does."""

    def __init__(self, url, statement, expect=None):
        """`expect`: a text the statement's output must show (the row it
        locked), else the lock is not what the test thinks it is."""
        self.p = subprocess.Popen(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.p.stdin.write(f"BEGIN;\n{statement};\n\\echo held\n")
        self.p.stdin.flush()
        out = []
        line = self.p.stdout.readline()
        while line and line.strip() != "held":
            out.append(line.strip())
            line = self.p.stdout.readline()
        assert line.strip() == "held", f"psql did not take the lock: {out}"
        assert expect is None or expect in out, f"the statement showed {out}, not {expect!r}"

    def commit(self):
        """Ends the transaction with COMMIT (release() rolls it back)."""
        self._end("COMMIT")

    def release(self):
        self._end("ROLLBACK")

    def _end(self, how):
        if self.p.poll() is None:
            try:
                self.p.stdin.write(f"{how};\n\\q\n")
                self.p.stdin.close()
                self.p.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()


# What each branch holds (docs/storage.md "Forks share their base's rows"):
# its own rows but tombstones (an empty hash), and for a fork the rows of its
# base it has no row of its own for. Columns: branch, resource, hash,
# commit_id, author, time_ms.
BRANCH_VIEW = ("SELECT branch, resource, hash, commit_id, author, time_ms FROM branch_resources WHERE hash <> ''"
               " UNION ALL SELECT f.branch, r.resource, r.hash, r.commit_id, r.author, r.time_ms FROM branch_forks f"
               " JOIN branch_resources r ON r.branch = f.base WHERE r.hash <> '' AND NOT EXISTS"
               " (SELECT 1 FROM branch_resources m WHERE m.branch = f.branch AND m.resource = r.resource)")


def branch_rows(srv, branch, cols="resource, hash, commit_id"):
    """The rows `branch` holds (BRANCH_VIEW), sorted."""
    b = branch.replace("'", "''")
    return sorted(srv.query(f"SELECT {cols} FROM ({BRANCH_VIEW}) v WHERE v.branch = '{b}'"))


def quote(s):
    return urllib.parse.quote(s, safe="")
