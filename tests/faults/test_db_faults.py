"""The database misbehaving (issue #11; docs/operations.md "Timeouts and
deadlines", "Readiness"): every request gets an answer within its deadline,
503s carry Retry-After, failures are audited, and the service recovers by
itself.

- PostgreSQL restarted under a warm server (fast, then immediate): the next
  requests on every worker succeed (each worker's pooled connection is dead
  and must be replaced before its statement is sent).
- A branch row locked from psql: writes to it answer 503 database_timeout
  with Retry-After within the lock timeout, and each is audited with 503.
- PostgreSQL stopped dead (SIGSTOP): requests answer 503 within the
  statement deadline, /ready says 503 within its own deadline.
- SQLite's write lock held by another process: writes answer 503 within the
  busy timeout; their audit events land once the lock is released.
- A full disk under SQLite: /ready says 503 "disk full", writes fail with
  507 storage_full and leave nothing behind, reads keep working, and the
  error log stays short (rate-limited).

Tests that need a backend report SKIP on the other. The private PostgreSQL
servers (restart, SIGSTOP) are started by the test itself; the shared
OMS_PG_URL server is never restarted or stopped. OMS_FAULTS_LONG=1 runs
longer variants."""

import concurrent.futures as cf
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import threading
import time

from harness import PgHeldTransaction, Skip, quote, _psql

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
LONG = os.environ.get("OMS_FAULTS_LONG") == "1"
DEV = ("developer",)
# Branches start from the empty root commit.
EMPTY_ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


def _only(ctx, backend):
    if ctx.backend != backend:
        raise Skip(f"{backend} only")


def _h(srv, sub="dev", roles=DEV, issue="OPS-11", **extra):
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = issue
    h.update(extra)
    return h


def _branch(srv, name):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": EMPTY_ROOT})
    assert r.status == 201, r
    return r.json()


def _ot_url(branch, name=None):
    u = f"/api/v1/schemas/{quote(branch)}/object-types"
    return u + (f"/{name}" if name else "")


def _ot(name, extra_props=0):
    props = [{"api_name": "id", "type": "string", "required": True}]
    props += [{"api_name": f"p{i}", "type": "string", "description": "x" * 4000} for i in range(extra_props)]
    return {"api_name": name, "properties": props, "primary_key": "id"}


def _timed(fn, *a, **kw):
    t0 = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t0


def _assert_503(r, code=None):
    assert r.status == 503, r
    ra = r.header("Retry-After")
    assert ra is not None and ra.isdigit() and int(ra) >= 1, f"503 without a usable Retry-After: {r.headers}"
    if code:
        assert r.header("Content-Type") == "application/problem+json", r.headers
        assert r.json()["code"] == code, r


def _served_ms(srv):
    """Request id -> how long the server took, from its request log."""
    out = {}
    for line in srv.read_log().splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("msg") == "request" and "request_id" in j:
            out[j["request_id"]] = j.get("duration_ms")
    return out


def _wait_for(pred, timeout=8.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


# ---- a private PostgreSQL server, started and stopped by the test ----

class PrivatePG:
    def __init__(self):
        out = subprocess.run([os.path.join(ROOT, "scripts/pg-throwaway.sh"), "start"], capture_output=True,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("cannot start a private PostgreSQL: " + out.stderr[-500:])
        env = dict(line.split("=", 1) for line in out.stdout.split())
        self.dir, self.url = env["OMS_PG_DIR"], env["OMS_PG_URL"]

    def ctl(self, *args):
        # the server's output goes to its log file: a pipe left open by the
        # new postmaster would keep us waiting for its end
        r = subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", f"{self.dir}/data",
                            "-l", f"{self.dir}/server.log", *args],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr

    def restart(self, mode):
        self.ctl("-m", mode, "-w", "-t", "60", "restart")
        assert _wait_for(lambda: subprocess.run(["psql", self.url, "-X", "-q", "-c", "SELECT 1"],
                                                capture_output=True).returncode == 0, timeout=30)

    def pids(self):
        """The postmaster and every child of it (backends, checkpointer, ...)."""
        with open(f"{self.dir}/data/postmaster.pid") as f:
            pm = int(f.readline())
        pids = [pm]
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == pm:
                            pids.append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        return pids

    def stop(self):
        subprocess.run([os.path.join(ROOT, "scripts/pg-throwaway.sh"), "stop", self.dir], capture_output=True,
                       timeout=120)


def _server_on(ctx, pg, **env):
    e = {"DATABASE_URL": pg.url, "OMS_AUDIT_KEY": secrets.token_hex(32)}
    e.update(env)
    srv = ctx.new_server(env=e, start=False)
    srv.database_url = pg.url  # srv.query() reads the private server
    srv.start()
    return srv


def _backends(srv):
    return int(srv.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                         " AND pid <> pg_backend_pid()")[0][0])


def _mixed_requests(srv, n, branch, tag):
    """n concurrent requests of several kinds; returns [(what, response)]."""
    reader, metrics, dev = srv.auth("r", ("viewer",)), srv.auth("m", ("service_account",)), _h(srv)

    def one(i):
        k = i % 4
        if k == 0:
            return "metrics", srv.request("GET", "/metrics", headers=metrics, timeout=20)
        if k == 1:
            return "branches", srv.request("GET", "/api/v1/branches", headers=reader, timeout=20)
        if k == 2:
            return "list", srv.request("GET", _ot_url(branch), headers=reader, timeout=20)
        return "write", srv.request("POST", _ot_url(branch), headers=dev, json_body=_ot(f"{tag}{i}"), timeout=20)

    with cf.ThreadPoolExecutor(max_workers=n) as ex:
        return list(ex.map(one, range(n)))


def _check_all_ok(results):
    bad = [(w, r) for w, r in results if r.status != (201 if w == "write" else 200)]
    assert not bad, f"{len(bad)} of {len(results)} failed: {bad[:4]}"
    for w, r in results:
        if w == "metrics":
            assert "oms_locks_active" in r.body, "/metrics lost oms_locks_active"


def test_pg_restart_every_worker_reconnects(ctx):
    """After a restart of PostgreSQL, the first request on every worker
    succeeds: the dead pooled connection is noticed before the statement is
    sent and replaced."""
    _only(ctx, "pg")
    pg = PrivatePG()
    srv = None
    try:
        workers = 8
        srv = _server_on(ctx, pg, OMS_WORKERS=str(workers))
        _branch(srv, "ft/restart")
        for mode, rounds in (("fast", 3 if LONG else 1), ("immediate", 3 if LONG else 1)):
            for rnd in range(rounds):
                # warm every worker: each holds a pooled connection
                for _ in range(10):
                    _check_all_ok(_mixed_requests(srv, 64, "ft/restart", f"W{mode[0]}{rnd}x{_}x"))
                    if _backends(srv) >= workers:
                        break
                assert _backends(srv) >= workers, "the workers did not all connect"
                pg.restart(mode)
                _check_all_ok(_mixed_requests(srv, 64, "ft/restart", f"R{mode[0]}{rnd}x"))
        # nothing was lost from the audit trail of the writes that succeeded
        r = srv.request("GET", "/ready")
        assert r.status == 200, r
    finally:
        if srv:
            srv.stop()
        pg.stop()


def test_pg_sigstop_requests_answer_within_deadline(ctx):
    """A PostgreSQL that stops answering (SIGSTOP of every server process):
    a request answers 503 with Retry-After within the statement deadline
    instead of hanging; /ready says 503 within its own deadline; after
    SIGCONT the service recovers by itself."""
    _only(ctx, "pg")
    pg = PrivatePG()
    srv = None
    stopped = []
    try:
        srv = _server_on(ctx, pg, OMS_WORKERS="4", OMS_DB_STATEMENT_TIMEOUT_MS="1500",
                         OMS_DB_LOCK_TIMEOUT_MS="1000", OMS_DB_CONNECT_TIMEOUT="2", OMS_READY_TIMEOUT_MS="1000")
        _branch(srv, "ft/stop")
        reader = srv.auth("r", ("viewer",))
        for _ in range(3):
            assert srv.request("GET", "/api/v1/branches", headers=reader).status == 200
        for pid in pg.pids():
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        r, dt = _timed(srv.request, "GET", "/api/v1/branches", headers=reader, timeout=15)
        _assert_503(r)
        assert dt < 1.5 + 1.0 + 1.5, f"answered after {dt:.1f}s"
        r, dt = _timed(srv.request, "GET", "/ready", timeout=15)
        assert r.status == 503 and dt < 2.0, (r, dt)
        assert r.header("Retry-After"), r.headers
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        try:
            if srv and srv.proc:
                assert _wait_for(lambda: srv.request("GET", "/api/v1/branches", headers=reader).status == 200,
                                 timeout=15), "no recovery after SIGCONT"
                assert _wait_for(lambda: srv.request("GET", "/ready").status == 200, timeout=10)
        finally:
            if srv:
                srv.stop()
            pg.stop()


def _row_lock_case(ctx, **env):
    _only(ctx, "pg")
    # Writers queued behind one another on the row wait for each other's
    # tuple lock first: each wait is bounded by the lock timeout, the whole
    # statement by the statement timeout.
    e = {"OMS_DB_LOCK_TIMEOUT_MS": "2000", "OMS_DB_STATEMENT_TIMEOUT_MS": "2500", "OMS_WORKERS": "8"}
    e.update(env)
    srv = ctx.new_server(env=e)
    _branch(srv, "ft/held")
    lock = PgHeldTransaction(srv.database_url, "SELECT 'locked:' || name FROM branches WHERE name = 'ft/held' FOR UPDATE",
                             expect="locked:ft/held")
    try:
        ids = [f"rowlock-{secrets.token_hex(6)}-{i}" for i in range(3)]

        def write(i):
            return _timed(srv.request, "POST", _ot_url("ft/held"), headers=_h(srv, **{"X-Request-ID": ids[i]}),
                          json_body=_ot(f"Held{i}"), timeout=10)

        with cf.ThreadPoolExecutor(max_workers=3) as ex:
            futs = [ex.submit(write, i) for i in range(3)]
            time.sleep(0.3)  # the writes are waiting on the row lock now
            h, dth = _timed(srv.request, "GET", "/health", timeout=10)
            rd, dtr = _timed(srv.request, "GET", "/ready", timeout=10)
            results = [f.result() for f in futs]
        assert h.status == 200 and dth < 1.0, (h, dth)
        assert rd.status == 200 and dtr < 1.5, (rd, dtr)  # one locked row does not make the service unready
        served = _served_ms(srv)
        for rid, (r, dt) in zip(ids, results):
            _assert_503(r, "database_timeout")
            # the deadline holds for the work: the server answered within it
            assert served[rid] < (2.5 + 1.0) * 1000, (rid, served[rid])
            # Connections sent at once may be accepted by one HTTP worker
            # thread and wait there for each other (the HTTP layer's own
            # queue, not database work): the client's wait is bounded by
            # the deadlines of those ahead of it.
            assert dt < 3 * (2.5 + 1.0), f"answered after {dt:.1f}s"
        for rid in ids:
            evs = srv.audit_events(f"request_id = '{rid}'")
            assert len(evs) == 1 and int(evs[0]["http_status"]) == 503 and evs[0]["outcome"] == "failure", evs
            assert evs[0]["action"] == "object_type.create", evs
            assert json.loads(evs[0]["detail"])["reason"] == "database_timeout", evs
    finally:
        lock.release()
    r = srv.request("POST", _ot_url("ft/held"), headers=_h(srv), json_body=_ot("Free"))
    assert r.status == 201, r


def test_pg_row_lock_writes_time_out_with_retry_after_and_audit(ctx):
    """A transaction elsewhere holds the branch row: each write answers
    503 database_timeout with Retry-After within the lock timeout, and is
    audited with http_status 503; /health and /ready stay fast."""
    _row_lock_case(ctx)


def test_pg_row_lock_times_out_without_session_settings(ctx):
    """The same behind a transaction-pooling proxy's settings: no session
    state at all (timeouts by SET LOCAL in each transaction, no prepared
    statements)."""
    _row_lock_case(ctx, OMS_DB_SESSION_SETTINGS="0", OMS_PG_PREPARED_STATEMENTS="0")


def test_sqlite_write_lock_held_elsewhere(ctx):
    """Another process holds SQLite's write lock: writes answer 503
    database_timeout with Retry-After within the busy timeout, /ready says
    503 within its deadline, and the writes' audit events are recorded once
    the lock is released."""
    _only(ctx, "sqlite")
    srv = ctx.new_server(env={"OMS_DB_BUSY_TIMEOUT_MS": "1500", "OMS_READY_TIMEOUT_MS": "1000"})
    _branch(srv, "ft/busy")
    con = sqlite3.connect(srv.db_path, timeout=10, isolation_level=None)
    released = False
    try:
        con.execute("BEGIN IMMEDIATE")
        ids = [f"busy-{secrets.token_hex(6)}-{i}" for i in range(2)]
        for i, rid in enumerate(ids):
            r, dt = _timed(srv.request, "POST", _ot_url("ft/busy"), headers=_h(srv, **{"X-Request-ID": rid}),
                           json_body=_ot(f"Busy{i}"), timeout=15)
            _assert_503(r, "database_timeout")
            assert dt < 1.5 + 1.0, f"answered after {dt:.1f}s"
        r, dt = _timed(srv.request, "GET", "/ready", timeout=10)
        assert r.status == 503 and dt < 1.5, (r, dt)
        assert "busy" in r.json()["reason"], r
        # reads never wait for the writer
        r, dt = _timed(srv.request, "GET", "/api/v1/branches", headers=srv.auth("r"), timeout=10)
        assert r.status == 200 and dt < 1.0, (r, dt)
        con.execute("ROLLBACK")
        released = True

        def audited():
            evs = [srv.audit_events(f"request_id = '{rid}'") for rid in ids]
            return evs if all(len(e) == 1 for e in evs) else None

        evs = _wait_for(audited, timeout=5)
        assert evs, "the timed-out writes were not audited after the lock was released"
        for e in evs:
            assert int(e[0]["http_status"]) == 503 and e[0]["outcome"] == "failure", e
            assert json.loads(e[0]["detail"])["reason"] == "database_timeout", e
    finally:
        if not released:
            con.execute("ROLLBACK")
        con.close()
    r = srv.request("POST", _ot_url("ft/busy"), headers=_h(srv), json_body=_ot("Free"))
    assert r.status == 201, r
    assert _wait_for(lambda: srv.request("GET", "/ready").status == 200, timeout=5)


def test_every_503_carries_retry_after(ctx):
    """A 503 that has nothing to do with the database (the issue tracker is
    unreachable) carries Retry-After too."""
    port = __import__("harness").free_port()  # nothing listens there
    srv = ctx.new_server(env={"OMS_ISSUE_TRACKER_URL": f"http://127.0.0.1:{port}/issues/{{key}}",
                              "OMS_ISSUE_TRACKER_TIMEOUT_MS": "500"})
    _branch(srv, "ft/tracker")
    r = srv.request("POST", _ot_url("ft/tracker"), headers=_h(srv), json_body=_ot("T"))
    _assert_503(r, "issue_tracker_unavailable")


class Tmpfs:
    def __init__(self, size):
        self.dir = os.path.join("/tmp", "oms-full-" + secrets.token_hex(4))
        os.makedirs(self.dir)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", self.dir],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.dir)
            raise Skip("cannot mount a tmpfs here: " + r.stderr.strip())

    def fill(self):
        """Fills the filesystem to the last byte; returns the filler's path."""
        path = os.path.join(self.dir, "filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for chunk in (1 << 16, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * chunk)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return path

    def umount(self):
        subprocess.run(["umount", "-l", self.dir], capture_output=True)
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def _log_lines(srv, level):
    n = 0
    for line in srv.read_log().splitlines():
        try:
            if json.loads(line).get("level") == level:
                n += 1
        except ValueError:
            pass
    return n


def test_sqlite_disk_full(ctx):
    """The database's filesystem fills up: /ready says 503 "disk full";
    writes fail with 507 storage_full and leave nothing behind (the head and
    the resources are unchanged); reads keep working; repeated error lines are
    rate-limited; once space is freed, writes succeed again."""
    _only(ctx, "sqlite")
    fs = Tmpfs("6m")
    srv = None
    try:
        srv = ctx.new_server(env={"DATABASE_URL": f"sqlite:{fs.dir}/data/oms.db", "OMS_READY_MIN_FREE_MB": "1",
                                  "OMS_AUDIT_KEY": secrets.token_hex(32)}, start=False)
        srv.db_path = f"{fs.dir}/data/oms.db"
        srv.start()
        _branch(srv, "ft/full")
        assert srv.request("GET", "/ready").status == 200
        filler = fs.fill()
        time.sleep(0.2)  # /ready may answer a check up to 100 ms old
        r, dt = _timed(srv.request, "GET", "/ready", timeout=10)
        assert r.status == 503 and "disk full" in r.json()["reason"] and dt < 1.5, (r, dt)
        errors_before = _log_lines(srv, "error") + _log_lines(srv, "warn")
        # write until the pre-allocated room (WAL) is used up
        head = srv.request("GET", "/api/v1/branches/ft%2Ffull", headers=srv.auth("r")).json()["head"]
        failed = None
        for i in range(60):
            r = srv.request("POST", _ot_url("ft/full"), headers=_h(srv), json_body=_ot(f"Big{i}", 12), timeout=15)
            if r.status == 201:
                head = r.header("X-Commit")
                continue
            failed = (i, r)
            break
        assert failed, "writes never failed on a full disk"
        i, r = failed
        assert r.status == 507 and r.json()["code"] == "storage_full", r
        assert r.header("Content-Type") == "application/problem+json", r.headers
        # the failures keep coming: every later write fails the same way, reads work
        t0 = time.time()
        statuses = {}
        reader = srv.auth("r")
        n = 300 if LONG else 120
        for k in range(n):
            if k % 2:
                s = srv.request("GET", "/api/v1/branches", headers=reader).status
            else:
                s = srv.request("POST", _ot_url("ft/full"), headers=_h(srv), json_body=_ot(f"More{k}"),
                                timeout=15).status
            statuses[s] = statuses.get(s, 0) + 1
        elapsed = time.time() - t0
        assert statuses.get(200, 0) == n // 2, statuses
        assert set(statuses) <= {200, 507, 503}, statuses
        logged = _log_lines(srv, "error") + _log_lines(srv, "warn") - errors_before
        # the failing writes log an error each; past 10 a second per message
        # the rest are counted into one "suppressed" line
        if logged > 10 * (elapsed + 1):
            assert _wait_for(lambda: "suppressed" in srv.read_log(), timeout=2.5), "no repeated line was suppressed"
        # at most 10 lines a second of any one message (its text without
        # numbers), plus the lines reporting what was suppressed
        per = {}
        for line in srv.read_log().splitlines():
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if j.get("level") in ("warn", "error") and not j["msg"].startswith("suppressed"):
                key = (j["time"][:19], re.sub(r"[0-9]+", "N", j["msg"]))
                per[key] = per.get(key, 0) + 1
        worst = max(per.items(), key=lambda kv: kv[1])
        assert worst[1] <= 10, worst
        assert logged <= 10 * 8 * (elapsed + 2), f"{logged} error lines in {elapsed:.1f}s"
        # space comes back: nothing of the failed writes is there, writes work again
        os.unlink(filler)
        cur = srv.request("GET", "/api/v1/branches/ft%2Ffull", headers=reader).json()["head"]
        assert cur == head, (cur, head)
        assert srv.request("GET", _ot_url("ft/full", f"Big{i}"), headers=reader).status == 404
        r = srv.request("POST", _ot_url("ft/full"), headers=_h(srv), json_body=_ot("After"))
        assert r.status == 201, r
        # the failed writes were audited once there was room again
        failures = 1 + statuses.get(507, 0)
        assert _wait_for(lambda: len(srv.audit_events("http_status = 507 AND outcome = 'failure'")) == failures,
                         timeout=5), (failures, len(srv.audit_events("http_status = 507")))
        assert _wait_for(lambda: srv.request("GET", "/ready").status == 200, timeout=5)
    finally:
        if srv:
            srv.stop()
        fs.umount()
