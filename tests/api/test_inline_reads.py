"""Reads answered on the event loop (docs/architecture.md "Answers on the
event loop"): a GET of a resource whose answer is in memory is answered
without a handler thread (on PostgreSQL after its branch's freshness read,
which the request waits for parked, sharing it); everything else, and
every refusal, goes to a handler as before. These tests hold the seams: a
read answered while every handler is busy, a read right after a commit
(never the old state), a denied read (refused and audited by a handler), a
rate-limited read (each admitted read takes exactly one unit), an expired
token, a server stopped while a read is parked."""

import json
import re
import sqlite3
import threading
import time

from harness import PgHeldTransaction, Skip, quote

ISSUE = {"X-Issue-ID": "OMS-1"}
INLINE = "oms_http_inline_answers_total"


def _h(srv, sub="dev", roles=("developer",), **extra):
    h = srv.auth(sub, roles)
    h.update(extra)
    return h


def _branch(srv, name):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv, **ISSUE), json_body={"name": name, "from": "main"})
    assert r.status == 201, r


def _url(branch, name):
    return f"/api/v1/schemas/{quote(branch)}/shared-properties/{name}"


def _create(srv, branch, name, description="v1"):
    r = srv.request("POST", f"/api/v1/schemas/{quote(branch)}/shared-properties", headers=_h(srv, **ISSUE),
                    json_body={"api_name": name, "type": "string", "description": description})
    assert r.status == 201, r
    return r


def _sqlite_only(srv):
    if srv.backend != "sqlite":
        raise Skip("reads are answered on the event loop only on SQLite")


def _pg_only(srv):
    if srv.backend != "pg":
        raise Skip("reads park for a shared freshness read only on PostgreSQL")


def test_a_read_is_answered_on_the_event_loop(ctx):
    srv = ctx.server
    _branch(srv, "inl/one")
    _create(srv, "inl/one", "InlOne")
    h = _h(srv, "reader", ("viewer",))
    assert srv.get(_url("inl/one", "InlOne"), headers=h).status == 200  # may warm the caches
    before = srv.metric(INLINE)
    for _ in range(5):
        r = srv.get(_url("inl/one", "InlOne"), headers=h)
        assert r.status == 200 and r.json()["api_name"] == "InlOne", r
    assert srv.metric(INLINE) == before + 5


def _read_while_the_one_handler_waits(srv, branch, name, release):
    """With OMS_WORKERS=1 and the database held by the caller: a write takes
    the one handler and waits; a read of `name` is answered at once all the
    same; `release()` lets the write finish (201)."""
    h = _h(srv, "reader", ("viewer",))
    done = {}

    def write():
        done["r"] = srv.request("POST", f"/api/v1/schemas/{quote(branch)}/shared-properties",
                                headers=_h(srv, **ISSUE), json_body={"api_name": name + "Waits", "type": "string"},
                                timeout=30)

    t = threading.Thread(target=write)
    try:
        t.start()
        time.sleep(0.5)  # the write holds the one handler, waiting for the database
        assert "r" not in done
        t0 = time.monotonic()
        r = srv.get(_url(branch, name), headers=h, timeout=10)
        dt = time.monotonic() - t0
        assert r.status == 200 and dt < 1.0, (r, dt)
        assert "r" not in done, "the write should still be waiting"
    finally:
        release()
        t.join(30)
    assert done["r"].status == 201, done["r"]


def test_reads_are_answered_while_every_handler_waits(ctx):
    """One handler thread, held by a write waiting for SQLite's write lock
    (held by another process): a read of a resource is still answered at
    once, and the write is answered after the lock is released."""
    srv = ctx.new_server(env={"OMS_WORKERS": "1", "OMS_DB_BUSY_TIMEOUT_MS": "4000"})
    _sqlite_only(srv)
    _branch(srv, "inl/busy")
    _create(srv, "inl/busy", "InlBusy")
    h = _h(srv, "reader", ("viewer",))
    assert srv.get(_url("inl/busy", "InlBusy"), headers=h).status == 200
    con = sqlite3.connect(srv.db_path, timeout=10, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")

    def release():
        con.execute("ROLLBACK")
        con.close()

    _read_while_the_one_handler_waits(srv, "inl/busy", "InlBusy", release)


def test_a_read_after_a_commit_sees_it(ctx):
    """Each update's very next read, on the same kept-alive path, returns
    the new document and the new head: the event loop's memo of the head
    never answers for a state older than the read's arrival."""
    srv = ctx.server
    _branch(srv, "inl/fresh")
    _create(srv, "inl/fresh", "InlFresh", "v0")
    h = _h(srv, "reader", ("viewer",))
    for i in range(1, 30):
        r = srv.get(_url("inl/fresh", "InlFresh"), headers=h)
        assert r.status == 200, r
        doc = r.json()
        doc.pop("meta", None)
        doc["description"] = f"v{i}"
        w = srv.request("PUT", _url("inl/fresh", "InlFresh"),
                        headers=_h(srv, **ISSUE, **{"If-Match": r.header("ETag")}), json_body=doc)
        assert w.status == 200, w
        r = srv.get(_url("inl/fresh", "InlFresh"), headers=h)
        assert r.status == 200 and r.json()["description"] == f"v{i}", (i, r)
        assert r.header("X-Commit") == w.header("X-Commit"), (r.header("X-Commit"), w.header("X-Commit"))


def test_a_denied_read_is_refused_and_audited(ctx):
    """An ACL policy denies the read: 403 with the policy named, and the
    refusal is in the audit log (a handler answered it), also after reads
    the loop answered."""
    srv = ctx.server
    _branch(srv, "inl/secret")
    _create(srv, "inl/secret", "InlSecret")
    h = _h(srv, "nosy", ("viewer",), **{"X-Request-ID": "inl-denied-1"})
    assert srv.get(_url("inl/secret", "InlSecret"), headers=h).status == 200
    r = srv.request("POST", "/api/v1/acl/policies", headers=_h(srv, "secadmin", ("admin",), **ISSUE),
                    json_body={"subject": "user:nosy", "effect": "deny", "permissions": ["schema:read"],
                               "branches": ["inl/secret"]})
    assert r.status == 201, r
    pid = r.json()["id"]
    r = srv.get(_url("inl/secret", "InlSecret"), headers=h)
    assert r.status == 403 and r.json()["denied_by"] == pid, r
    evs = srv.audit_events("request_id = 'inl-denied-1' AND action = 'authz.denied'")
    assert len(evs) == 1 and int(evs[0]["http_status"]) == 403, evs
    # others still read it
    assert srv.get(_url("inl/secret", "InlSecret"), headers=_h(srv, "other", ("viewer",))).status == 200


def test_each_admitted_read_takes_one_unit_of_the_limit(ctx):
    """A read limit with a burst of 6: exactly 6 reads are answered, the
    next ones get 429 with the RateLimit fields and are recorded."""
    srv = ctx.new_server(env={"OMS_RATE_LIMIT_READ": "1/m:6"})
    # setup as a writer: writes have their own class
    _branch(srv, "inl/rl")
    _create(srv, "inl/rl", "InlLimited")
    h = _h(srv, "limited", ("viewer",))
    got, remaining = [], []
    for i in range(9):
        r = srv.get(_url("inl/rl", "InlLimited"), headers={**h, "X-Request-ID": f"inl-rl-{i}"})
        got.append(r.status)
        m = re.fullmatch(r'"([a-z_]+)";r=(\d+);t=(\d+)', r.header("ratelimit") or "")
        assert m and m.group(1) == "read", r.headers
        remaining.append(int(m.group(2)))
    assert got == [200] * 6 + [429] * 3, got
    assert remaining == [5, 4, 3, 2, 1, 0, 0, 0, 0], remaining
    evs = srv.audit_events("request_id = 'inl-rl-6'")
    assert len(evs) == 1 and int(evs[0]["http_status"]) == 429, evs


def test_an_expired_token_on_a_read_is_refused(ctx):
    srv = ctx.server
    _branch(srv, "inl/exp")
    _create(srv, "inl/exp", "InlExp")
    good = srv.auth("temp", ("viewer",))
    assert srv.get(_url("inl/exp", "InlExp"), headers=good).status == 200
    expired = {"Authorization": "Bearer " + srv.token("temp", ("viewer",), ttl=-120),
               "X-Request-ID": "inl-expired-1"}
    r = srv.get(_url("inl/exp", "InlExp"), headers=expired)
    assert r.status == 401 and r.json()["code"] == "token_expired", r
    evs = srv.audit_events("request_id = 'inl-expired-1'")
    assert len(evs) == 1 and evs[0]["action"] == "auth.failed", evs
    assert json.loads(evs[0]["detail"])  # the reason is recorded


# The parked reads below wait for a freshness read from the database: the
# path of an instance among several. A lone instance that holds its
# sole-writer lease answers the freshness from memory and parks nothing,
# and it takes the lease within its first second or two
# (tests/api/test_sole_writer.py), so these servers run without it.
SHARED = {"OMS_PG_SOLE_WRITER": "0"}


def test_a_parked_read_is_answered_while_every_handler_waits(ctx):
    """PostgreSQL: one handler thread, held by a write waiting for the
    branch row (locked by another session): a read of a resource parks for
    its branch's freshness read, which the store's reader makes, and is
    answered at once; the write is answered once the row is released."""
    srv = ctx.new_server(env={"OMS_WORKERS": "1", **SHARED})
    _pg_only(srv)
    _branch(srv, "inl/pbusy")
    _create(srv, "inl/pbusy", "InlPBusy")
    h = _h(srv, "reader", ("viewer",))
    assert srv.get(_url("inl/pbusy", "InlPBusy"), headers=h).status == 200
    before = srv.metric(INLINE)
    lock = PgHeldTransaction(srv.database_url, "SELECT 1 FROM branches WHERE name = 'inl/pbusy' FOR UPDATE")
    _read_while_the_one_handler_waits(srv, "inl/pbusy", "InlPBusy", lock.release)
    assert srv.metric(INLINE) == before + 1  # (/metrics needs the handler: after the write)


def test_parked_reads_share_one_freshness_read(ctx):
    """PostgreSQL: reads that park while the branch's freshness read is held
    up all wait for the next read, and far fewer reads than requests are
    made; each is answered with the head committed before it was sent."""
    srv = ctx.new_server(env=SHARED)
    _pg_only(srv)
    _branch(srv, "inl/pshare")
    _create(srv, "inl/pshare", "InlPShare")
    h = _h(srv, "reader", ("viewer",))
    first = srv.get(_url("inl/pshare", "InlPShare"), headers=h)
    assert first.status == 200
    reads0 = srv.metric("oms_db_freshness_reads_total")
    inline0 = srv.metric(INLINE)
    # the next freshness read blocks behind this lock: every read that
    # arrives meanwhile parks
    lock = PgHeldTransaction(srv.database_url, "LOCK TABLE acl_version IN ACCESS EXCLUSIVE MODE")
    results = []

    def read():
        results.append(srv.get(_url("inl/pshare", "InlPShare"), headers=h, timeout=30))

    threads = [threading.Thread(target=read) for _ in range(12)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        assert not results, "nothing is answered before the freshness read"
    finally:
        lock.release()
        for t in threads:
            t.join(30)
    assert [r.status for r in results] == [200] * 12, results
    assert all(r.header("X-Commit") == first.header("X-Commit") for r in results)
    reads = srv.metric("oms_db_freshness_reads_total") - reads0
    assert reads <= 3, reads  # the blocked read, at most one after it, and the metric reads' own
    assert srv.metric(INLINE) - inline0 == 12


def test_stopping_with_a_parked_read(ctx):
    """PostgreSQL: SIGTERM while a read is parked behind a freshness read
    that does not return before the drain ends (a table lock; the statement
    and lock timeouts are longer than the drain and its final grace): once no handler
    runs, the parked read is let go (its connection closes) without waiting
    for that read, and the server stops cleanly — the HTTP library panics
    when stopped with a suspended connection."""
    srv = ctx.new_server(env={"OMS_DRAIN_TIMEOUT_MS": "500", "OMS_DB_STATEMENT_TIMEOUT_MS": "10000",
                              "OMS_DB_LOCK_TIMEOUT_MS": "10000", **SHARED})
    _pg_only(srv)
    _branch(srv, "inl/pstop")
    _create(srv, "inl/pstop", "InlPStop")
    h = _h(srv, "reader", ("viewer",))
    assert srv.get(_url("inl/pstop", "InlPStop"), headers=h).status == 200
    lock = PgHeldTransaction(srv.database_url, "LOCK TABLE acl_version IN ACCESS EXCLUSIVE MODE")
    got, stopped = {}, {}

    def read():
        try:
            got["r"] = srv.get(_url("inl/pstop", "InlPStop"), headers=h, timeout=30)
        except (OSError, ConnectionError) as e:  # closed unanswered
            got["e"] = e
        got["t"] = time.monotonic()

    def stop():
        stopped["code"] = srv.stop()

    reader, stopper = threading.Thread(target=read), threading.Thread(target=stop)
    try:
        reader.start()
        time.sleep(0.5)
        assert not got, "the read should be parked"
        t0 = time.monotonic()
        stopper.start()
        reader.join(15)  # let go after the drain (0.5 s), long before the read could end
        assert got and got["t"] - t0 < 2.0, (got, time.monotonic() - t0)
    finally:
        lock.release()  # the read in flight returns; the store closes
        reader.join(30)
        stopper.join(30)
    assert stopped.get("code") == 0, stopped
    log = srv.read_log()
    assert "PANIC" not in log and "suspended connections" not in log, log[-2000:]
    assert srv.sanitizer_report() is None, srv.sanitizer_report()
    # the handlers had stopped when it was let go: closed unanswered, as any
    # request the stopped pool cannot take
    assert "e" in got and "r" not in got, got
