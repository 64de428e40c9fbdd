"""Reads answered on the event loop (docs/architecture.md "Answers on the
event loop"): on SQLite a GET of a resource whose answer is in memory is
answered without a handler thread; everything else, and every refusal,
goes to a handler as before. These tests hold the seams: a read answered
while every handler is busy, a read right after a commit (never the old
state), a denied read (refused and audited by a handler), a rate-limited
read (each admitted read takes exactly one unit), an expired token."""

import json
import re
import sqlite3
import threading
import time

from harness import Skip, quote

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


def test_a_read_is_answered_on_the_event_loop(ctx):
    srv = ctx.server
    _sqlite_only(srv)
    _branch(srv, "inl/one")
    _create(srv, "inl/one", "InlOne")
    h = _h(srv, "reader", ("viewer",))
    assert srv.get(_url("inl/one", "InlOne"), headers=h).status == 200  # may warm the caches
    before = srv.metric(INLINE)
    for _ in range(5):
        r = srv.get(_url("inl/one", "InlOne"), headers=h)
        assert r.status == 200 and r.json()["api_name"] == "InlOne", r
    assert srv.metric(INLINE) == before + 5


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
    done = {}

    def write():
        done["r"] = srv.request("POST", "/api/v1/schemas/inl%2Fbusy/shared-properties", headers=_h(srv, **ISSUE),
                                json_body={"api_name": "InlWaits", "type": "string"}, timeout=30)

    t = threading.Thread(target=write)
    try:
        t.start()
        time.sleep(0.5)  # the write holds the one handler, waiting for the lock
        assert "r" not in done
        t0 = time.monotonic()
        r = srv.get(_url("inl/busy", "InlBusy"), headers=h, timeout=10)
        dt = time.monotonic() - t0
        assert r.status == 200 and dt < 1.0, (r, dt)
        assert "r" not in done, "the write should still be waiting"
    finally:
        con.execute("ROLLBACK")
        con.close()
        t.join(30)
    assert done["r"].status == 201, done["r"]


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
