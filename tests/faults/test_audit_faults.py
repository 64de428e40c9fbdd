"""Audit under faults (docs/audit.md "Durability", docs/operations.md
"Audit"): the event of a request always says what its client received,
when the audit writer stalls past its wait limit and when the database goes
away; reads during an outage name the database, not the audit store.

Quick by default; OMS_FAULTS_LONG=1 adds a stall past the default wait
limit (10 s) with nothing configured."""

import json
import os
import sqlite3
import subprocess
import threading
import time
from collections import Counter

import harness
from test_audit_util import verify, wait_sealed

LONG = os.environ.get("OMS_FAULTS_LONG") == "1"
DENIED_WRITE = "/api/v1/schemas/main/object-types"


class _Stall:
    """Holds what the audit writer needs, from outside the server, until
    release(): on SQLite the database's write lock (another process's write
    transaction: BEGIN IMMEDIATE), on PostgreSQL an EXCLUSIVE lock on
    audit_events (what a long maintenance statement holds: inserts wait,
    reads go on) in a psql session of its own."""

    def __init__(self, srv):
        self.srv = srv
        if srv.backend == "sqlite":
            self.con = sqlite3.connect(srv.db_path, timeout=10, isolation_level=None)
            self.con.execute("BEGIN IMMEDIATE")
            return
        self.proc = subprocess.Popen(["psql", srv.database_url, "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.proc.stdin.write("BEGIN; LOCK TABLE audit_events IN EXCLUSIVE MODE;\n")
        self.proc.stdin.flush()
        deadline = time.time() + 10
        while int(srv.query("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                            " WHERE c.relname = 'audit_events' AND l.mode = 'ExclusiveLock' AND l.granted")[0][0]) == 0:
            assert time.time() < deadline and self.proc.poll() is None, "the lock was not taken"
            time.sleep(0.05)

    def release(self):
        if self.srv.backend == "sqlite":
            self.con.execute("ROLLBACK")
            self.con.close()
            return
        self.proc.stdin.write("ROLLBACK;\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0, self.proc.stderr.read()


def _deny(srv, rid, results, lock):
    """A viewer's write: 403 when its refusal is recorded, else 503."""
    h = srv.auth("stall-vic", ("viewer",))
    h["X-Request-ID"] = rid
    r = srv.request("POST", DENIED_WRITE, headers=h, json_body={"api_name": "Nope"}, timeout=60)
    with lock:
        results[rid] = (r.status, r.json().get("code"), r.header("Retry-After"))


def _events_by_request(srv, rids, timeout=10):
    """Every request's events, once each has one (late events are written
    when the store can write again, within about a second)."""
    deadline = time.time() + timeout
    while True:
        got = {}
        for e in srv.audit_events("request_id IN (%s)" % ", ".join(f"'{r}'" for r in rids)):
            got.setdefault(e["request_id"], []).append(e)
        if len(got) == len(rids) or time.time() > deadline:
            return got
        time.sleep(0.1)


def _assert_events_match_responses(srv, results):
    got = _events_by_request(srv, list(results))
    for rid, (status, code, retry_after) in sorted(results.items()):
        evs = got.get(rid, [])
        assert len(evs) == 1, f"{rid}: one event per response, got {evs}"
        ev = evs[0]
        assert int(ev["http_status"]) == status, f"{rid}: the client got {status} {code}, the event says {ev}"
        if status == 503:
            detail = json.loads(ev["detail"])
            assert ev["outcome"] == "failure" and detail["reason"] == code and detail["late"] is True, ev
            assert detail["intended"]["status"] == 403 and detail["intended"]["outcome"] == "denied", ev
            assert retry_after, f"{rid}: a 503 says when to come back"
        else:
            assert status == 403 and ev["outcome"] == "denied" and ev["action"] == "authz.denied", ev


def test_group_commit_timeout_records_what_the_client_got(ctx):
    """The writer is stalled longer than the wait limit while viewers' writes
    are refused: those clients get 503 audit_unavailable, and the event of
    each request, once the store writes again, is that 503, never the 403
    that was meant (the entry is withdrawn before it is written)."""
    env = {"OMS_WORKERS": "8", "OMS_DB_BUSY_TIMEOUT_MS": "60000"}  # the writer waits through the stall
    if LONG:
        wait_s, hold = 10.0, 13.0  # the default limit, nothing configured
    else:
        wait_s, hold = 0.6, 2.5
        env["OMS_AUDIT_WAIT_MS"] = str(int(wait_s * 1000))
    srv = ctx.new_server(env=env)
    results, lock, threads = {}, threading.Lock(), []
    _deny(srv, "stall-before", results, lock)
    stall = _Stall(srv)
    t0 = time.time()
    try:
        # waves of refusals, each arriving while the writer is stuck: the
        # first batch is in the writer's hands, later ones still queued
        i = 0
        while time.time() - t0 < min(1.2, hold - wait_s - 1.0):
            for _ in range(4):
                t = threading.Thread(target=_deny, args=(srv, f"stall-{i}", results, lock))
                t.start()
                threads.append(t)
                i += 1
            time.sleep(0.25)
        time.sleep(max(0.0, hold - (time.time() - t0)))
    finally:
        stall.release()
    for t in threads:
        t.join(timeout=60)
    _deny(srv, "stall-after", results, lock)
    statuses = Counter(s for s, _, _ in results.values())
    assert statuses[503] >= 1, f"the stall outlasted the wait limit, so some clients got 503: {results}"
    assert results["stall-before"][0] == 403 and results["stall-after"][0] == 403, results
    assert all(code == "audit_unavailable" for s, code, _ in results.values() if s == 503), results
    _assert_events_match_responses(srv, results)
    # both ways out: entries the stalled writer held, and entries still queued behind it
    log = srv.read_log()
    assert "withdrawn from the writer's batch" in log and "withdrawn from the queue" in log, log[-3000:]
    wait_sealed(srv)
    code, v = verify(srv)
    assert code == 0 and v["ok"], v


def test_reads_during_a_database_outage_name_the_database(ctx):
    """PostgreSQL goes away under a running server (its connections are
    killed and new ones refused): a read answers 503 database_unavailable
    with Retry-After, not audit_unavailable, and so does a refusal that
    cannot read the ACL; once the database is back the service is, and the
    outage's answers are in the audit log as 503s. (SQLite has no such
    outage to stage: in WAL mode every open connection holds a shared lock,
    so no other process can lock readers out, and I/O errors need a faulty
    device.)"""
    if ctx.backend != "pg":
        raise harness.Skip("PostgreSQL only: SQLite has no database outage to stage")
    srv = ctx.new_server()
    viewer = srv.auth("outage-reader", ("viewer",))
    assert srv.get("/api/v1/schemas/main/object-types", headers=viewer).status == 200
    harness._psql(harness.PG_URL, f"ALTER DATABASE {srv.dbname} ALLOW_CONNECTIONS false")
    results = {}
    try:
        harness._psql(harness.PG_URL, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                      f" WHERE datname = '{srv.dbname}'")
        for i, (method, path, roles) in enumerate([("GET", "/api/v1/schemas/main/object-types", ("viewer",)),
                                                   ("GET", "/api/v1/schemas/main/object-types", ("viewer",)),
                                                   ("POST", DENIED_WRITE, ("viewer",)),
                                                   ("GET", "/api/v1/audit", ("auditor",))]):
            rid = f"outage-{i}"
            h = srv.auth("outage-reader", roles)
            h["X-Request-ID"] = rid
            r = srv.request(method, path, headers=h, json_body={"api_name": "X"} if method == "POST" else None)
            assert r.status == 503 and r.json()["code"] == "database_unavailable", (method, path, r)
            assert r.header("Retry-After"), r.headers
            results[rid] = r.status
    finally:
        harness._psql(harness.PG_URL, f"ALTER DATABASE {srv.dbname} ALLOW_CONNECTIONS true")
    deadline = time.time() + 10
    while srv.get("/api/v1/schemas/main/object-types", headers=viewer).status != 200:
        assert time.time() < deadline, "the service did not come back with its database"
        time.sleep(0.2)
    got = _events_by_request(srv, list(results))
    for rid, status in results.items():
        evs = got.get(rid, [])
        assert len(evs) == 1 and int(evs[0]["http_status"]) == status, (rid, evs)
        assert evs[0]["action"] == "authz.unavailable", evs
        assert json.loads(evs[0]["detail"])["reason"] == "database_unavailable", evs
