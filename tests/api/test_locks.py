"""Locks (SPEC §7, docs/locks.md) as isolation-style scenarios with explicit
interleavings: session A locks, session B's write meets 423 with progress,
A's heartbeats move what B sees, A writes under its lock (X-Lock-ID), A goes
silent, the lock expires, A's late write is refused (fencing), B's passes.
Then each scope-conflict rule, the fencing sequence, release rules (holder,
lock:admin with an issue, alert), extend, list filters and input checks.
Cross-instance behaviour on PostgreSQL is in test_locks_cluster.py.

Time passes by the test's clock, never by sleeping: srv.advance_lock_clock
moves a lock's times into the past, which is what the database clock that
judges locks moving forward does to it (harness.py, docs/locks.md)."""

import json
import time

from harness import quote

DEV = ("developer",)
ADMIN = ("admin",)


def _h(srv, sub="dev", roles=DEV, issue=True, **extra):
    """Auth headers; changes carry an issue reference (SPEC §6.3) unless
    a test is about its absence."""
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = "LOCK-7"
    h.update(extra)
    return h


def _branch(srv, name):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": "main"})
    assert r.status == 201, r


def _url(branch, kind, name=None):
    u = f"/api/v1/schemas/{quote(branch)}/{kind}"
    return u + (f"/{name}" if name else "")


def _acquire(srv, sub="alice", expect=201, roles=DEV, **body):
    body.setdefault("reason", "reindex")
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, sub, roles), json_body=body)
    assert r.status == expect, r
    return r.json()


def _release(srv, lock_id, sub="alice", roles=DEV, expect=200, **headers):
    r = srv.request("DELETE", f"/api/v1/locks/{lock_id}", headers=_h(srv, sub, roles, issue=False, **headers))
    assert r.status == expect, r
    return r


def _heartbeat(srv, lock_id, sub="alice", expect=200, **progress):
    body = {"progress": progress} if progress else None
    r = srv.request("POST", f"/api/v1/locks/{lock_id}/heartbeat", headers=_h(srv, sub), json_body=body)
    assert r.status == expect, r
    return r.json()


def _create(srv, branch, kind, doc, sub="dev", **headers):
    return srv.request("POST", _url(branch, kind), headers=_h(srv, sub, **headers), json_body=doc)


def _put(srv, branch, kind, name, doc, sub="dev", **headers):
    cur = srv.get(_url(branch, kind, name), headers=_h(srv))
    assert cur.status == 200, cur
    return srv.request("PUT", _url(branch, kind, name), headers=_h(srv, sub, **{"If-Match": cur.header("ETag")}, **headers),
                       json_body=doc)


def _ot(api_name):
    return {"api_name": api_name, "properties": [{"api_name": "id", "type": "string", "required": True}],
            "primary_key": "id"}


def _prop(api_name, desc=""):
    return {"api_name": api_name, "type": "string", "description": desc}


def _wait_for(pred, timeout=6.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def _lock(lock_id):
    return f"id = '{lock_id}'"


def _reaper_ran_again(srv, branch):
    """Returns once the reaper has run again, with no sleep: a sentinel
    lock, expired by the test's clock, is recorded by its next run."""
    s = _acquire(srv, "sentinel", branch=branch, scope="branch", kind="maintenance", reason="sentinel", ttl_seconds=60)
    srv.advance_lock_clock(61, _lock(s["id"]))
    assert _wait_for(lambda: len(srv.audit_events(f"action = 'lock.expired' AND resource_id = '{s['id']}'")) == 1)


def test_isolation_423_progress_heartbeat_fencing(ctx):
    """The interleaving of SPEC §7, step by step."""
    srv = ctx.server
    _branch(srv, "iso/a")
    assert _create(srv, "iso/a", "shared-properties", _prop("Person")).status == 201
    assert _create(srv, "iso/a", "shared-properties", _prop("Other")).status == 201

    # A: lock shared-properties/Person; three missed 1 s heartbeats release it.
    lock = _acquire(srv, "alice", branch="iso/a", resource_type="shared-properties", resource_id="Person",
                    kind="indexing", reason="rebuilding the Person index", ttl_seconds=60, heartbeat_seconds=1)
    lid = lock["id"]
    assert lock["state"] == "active" and lock["holder"] == "alice" and lock["scope"] == "resource"
    srv.advance_lock_clock(0.2, _lock(lid))  # progress needs elapsed time to have a rate
    _heartbeat(srv, lid, percent=25, phase="build", message="a quarter")

    # B: the write meets 423 with the lock, its progress, an ETA and Retry-After.
    r = _put(srv, "iso/a", "shared-properties", "Person", _prop("Person", "by bob"), sub="bob")
    assert r.status == 423, r
    body = r.json()
    assert body["code"] == "locked"
    assert body["locks"][0]["id"] == lid and body["locks"][0]["holder"] == "alice" and body["locks"][0]["kind"] == "indexing"
    assert body["locks"][0]["reason"] == "rebuilding the Person index"
    assert body["locks"][0]["progress"]["percent"] == 25 and body["locks"][0]["progress"]["phase"] == "build"
    assert body["locks"][0]["acquired_at"] and body["locks"][0]["expires_at"]
    assert isinstance(body["eta_seconds"], int) and body["eta_seconds"] >= 0
    assert "shared-properties/Person" in body["writable"] and "iso/a" in body["writable"]
    assert body["blocked_resources"] == ["shared-properties/Person"] and body["locked"] == ["shared-properties/Person"]
    # the lock once, under locks (SPEC §7), and how its holder writes
    assert "lock" not in body and len(body["locks"]) == 1, body
    assert f"X-Lock-ID: {lid}" in body["holder_writes_with"] and f"X-Lock-ID: {lid}" in body["detail"], body
    assert int(r.header("Retry-After")) >= 1
    # ... the rest of the branch stays writable, and reads are never blocked
    assert _put(srv, "iso/a", "shared-properties", "Other", _prop("Other", "by bob"), sub="bob").status == 200
    assert srv.get(_url("iso/a", "shared-properties", "Person"), headers=_h(srv, "bob")).status == 200

    # A's heartbeat moves the progress B sees.
    srv.advance_lock_clock(0.3, _lock(lid))
    _heartbeat(srv, lid, percent=50, phase="build", message="half")
    r = _put(srv, "iso/a", "shared-properties", "Person", _prop("Person", "by bob"), sub="bob")
    assert r.status == 423 and r.json()["locks"][0]["progress"]["percent"] == 50
    assert r.json()["locks"][0]["progress"]["message"] == "half"

    # A writes under its lock; without X-Lock-ID even A is held off.
    r = _put(srv, "iso/a", "shared-properties", "Person", _prop("Person", "by alice"), sub="alice", **{"X-Lock-ID": lid})
    assert r.status == 200, r
    assert _put(srv, "iso/a", "shared-properties", "Person", _prop("Person", "x"), sub="alice").status == 423

    # A goes silent: three missed heartbeats (3 s) end the lock, judged
    # exactly: 1.5 s after its last heartbeat it still holds (the margin is
    # for the requests in between, which take real time) ...
    srv.advance_lock_clock(1.5, _lock(lid))
    assert srv.get(f"/api/v1/locks/{lid}", headers=_h(srv, "bob", ("viewer",))).json()["state"] == "active"
    assert _put(srv, "iso/a", "shared-properties", "Person", _prop("Person", "by bob"), sub="bob").status == 423
    # ... and 3.1 s after it, it has ended.
    srv.advance_lock_clock(1.6, _lock(lid))
    assert srv.get(f"/api/v1/locks/{lid}", headers=_h(srv, "bob", ("viewer",))).json()["state"] == "expired"
    # A's late write is refused (fencing), and its heartbeat cannot revive the lock.
    r = _put(srv, "iso/a", "shared-properties", "Person", _prop("Person", "late"), sub="alice", **{"X-Lock-ID": lid})
    assert r.status == 409 and r.json()["code"] == "lock_expired" and r.json()["lock_state"] == "expired", r
    r = srv.request("POST", f"/api/v1/locks/{lid}/heartbeat", headers=_h(srv, "alice"), json_body={})
    assert r.status == 409 and r.json()["code"] == "lock_not_active", r
    # B's write passes.
    r = _put(srv, "iso/a", "shared-properties", "Person", _prop("Person", "by bob"), sub="bob")
    assert r.status == 200, r
    assert srv.get(_url("iso/a", "shared-properties", "Person"), headers=_h(srv)).json()["description"] == "by bob"

    # The reaper records the expiry once, and the lock reads expired for good.
    where = f"action = 'lock.expired' AND resource_id = '{lid}'"
    assert _wait_for(lambda: len(srv.audit_events(where)) == 1)
    ev = srv.audit_events(where)[0]
    assert json.loads(ev["detail"])["cause"] == "missed_heartbeats" and ev["actor_sub"] == "oms"
    got = srv.get(f"/api/v1/locks/{lid}", headers=_h(srv)).json()
    assert got["state"] == "expired" and got["ended_by"] == "oms"
    assert len(srv.audit_events(f"action = 'lock.acquire' AND resource_id = '{lid}'")) == 1
    # the refused writes were audited as failures with their status
    assert any(int(e["http_status"]) == 423 for e in
               srv.audit_events("action = 'shared_property.update' AND outcome = 'failure'"))


def test_ttl_expiry_without_heartbeats(ctx):
    srv = ctx.server
    _branch(srv, "iso/ttl")
    lock = _acquire(srv, "alice", branch="iso/ttl", scope="branch", kind="maintenance", ttl_seconds=1)
    r = _create(srv, "iso/ttl", "shared-properties", _prop("T"), sub="bob")
    assert r.status == 423 and r.json()["writable"].startswith("nothing on branch iso/ttl"), r
    assert 1 <= int(r.header("Retry-After")) <= 1
    srv.advance_lock_clock(1.2, _lock(lock["id"]))
    assert _create(srv, "iso/ttl", "shared-properties", _prop("T"), sub="bob").status == 201
    where = f"action = 'lock.expired' AND resource_id = '{lock['id']}'"
    assert _wait_for(lambda: len(srv.audit_events(where)) == 1)
    assert json.loads(srv.audit_events(where)[0]["detail"])["cause"] == "ttl"
    for _ in range(2):  # later reaper runs never audit it again
        _reaper_ran_again(srv, "iso/ttl")
    assert len(srv.audit_events(where)) == 1


# (first lock, second lock, conflict?) on one branch; "R" resource, "T" type, "B" branch.
SCOPE_RULES = [
    ({"scope": "branch"}, {"scope": "branch"}, True),
    ({"scope": "branch"}, {"resource_type": "object-types", "scope": "resource_type"}, True),
    ({"scope": "branch"}, {"resource_type": "object-types", "resource_id": "A"}, True),
    ({"resource_type": "object-types", "resource_id": "A"}, {"scope": "branch"}, True),
    ({"resource_type": "object-types", "scope": "resource_type"}, {"resource_type": "object-types", "scope": "resource_type"}, True),
    ({"resource_type": "object-types", "scope": "resource_type"}, {"resource_type": "object-types", "resource_id": "A"}, True),
    ({"resource_type": "object-types", "resource_id": "A"}, {"resource_type": "object-types", "scope": "resource_type"}, True),
    ({"resource_type": "object-types", "scope": "resource_type"}, {"resource_type": "link-types", "scope": "resource_type"}, False),
    ({"resource_type": "object-types", "scope": "resource_type"}, {"resource_type": "link-types", "resource_id": "A"}, False),
    ({"resource_type": "object-types", "resource_id": "A"}, {"resource_type": "object-types", "resource_id": "A"}, True),
    ({"resource_type": "object-types", "resource_id": "A"}, {"resource_type": "object-types", "resource_id": "B"}, False),
    ({"resource_type": "object-types", "resource_id": "A"}, {"resource_type": "link-types", "resource_id": "A"}, False),
]


def test_scope_conflict_rules(ctx):
    srv = ctx.server
    _branch(srv, "scope/one")
    _branch(srv, "scope/two")
    for i, (first, second, conflict) in enumerate(SCOPE_RULES):
        a = _acquire(srv, "alice", branch="scope/one", **first)
        # the same holder gets no exemption: locks conflict by region, not by who holds them
        for sub in ("bob", "alice"):
            r = srv.request("POST", "/api/v1/locks", headers=_h(srv, sub),
                            json_body={"branch": "scope/one", "reason": "second", **second})
            if conflict:
                assert r.status == 409, (i, first, second, r)
                assert r.json()["code"] == "lock_conflict" and [c["id"] for c in r.json()["conflicts"]] == [a["id"]]
            else:
                assert r.status == 201, (i, first, second, r)
                _release(srv, r.json()["id"], sub=sub)
        # another branch never conflicts
        b = _acquire(srv, "bob", branch="scope/two", **second)
        _release(srv, b["id"], sub="bob")
        _release(srv, a["id"])
        # released locks conflict with nothing
        c = _acquire(srv, "bob", branch="scope/one", **second)
        _release(srv, c["id"], sub="bob")


def test_scope_coverage_of_writes(ctx):
    """What each scope refuses on the write path, batches and reverts included."""
    srv = ctx.server
    _branch(srv, "cover/x")
    _branch(srv, "cover/y")
    for n in ("P1", "P2"):
        assert _create(srv, "cover/x", "object-types", _ot(n)).status == 201
    assert _create(srv, "cover/x", "shared-properties", _prop("S1")).status == 201
    batch = {"message": "two", "operations": [
        {"op": "create", "kind": "shared-properties", "api_name": "S2", "document": _prop("S2")},
        {"op": "create", "kind": "object-types", "api_name": "P3", "document": _ot("P3")}]}

    t = _acquire(srv, "alice", branch="cover/x", scope="resource_type", resource_type="object-types")
    # a new object type is inside object-types/*
    r = _create(srv, "cover/x", "object-types", _ot("P9"), sub="bob")
    assert r.status == 423 and r.json()["locked"] == ["object-types/*"], r
    # a link type only refers to the locked object types: it touches only link-types/L1
    assert _create(srv, "cover/x", "link-types", {"api_name": "L1", "from": "P1", "to": "P2",
                                                  "cardinality": "one_to_one"}, sub="bob").status == 201
    assert _create(srv, "cover/x", "shared-properties", _prop("S3"), sub="bob").status == 201
    # a batch touching one locked resource is refused whole
    r = srv.request("POST", _url("cover/x", "changes"), headers=_h(srv, "bob"), json_body=batch)
    assert r.status == 423 and r.json()["blocked_resources"] == ["object-types/P3"], r
    # validation is a read: never blocked
    r = srv.request("POST", _url("cover/x", "validate"), headers=_h(srv, "bob"), json_body=batch)
    assert r.status == 200 and r.json()["valid"] is True, r
    # the holder's batch passes with its lock
    r = srv.request("POST", _url("cover/x", "changes"), headers=_h(srv, "alice", **{"X-Lock-ID": t["id"]}), json_body=batch)
    assert r.status == 200, r
    _release(srv, t["id"])

    b = _acquire(srv, "alice", branch="cover/x", scope="branch", kind="backup")
    assert _create(srv, "cover/x", "shared-properties", _prop("S4"), sub="bob").status == 423
    assert _create(srv, "cover/y", "shared-properties", _prop("S4"), sub="bob").status == 201
    head = srv.get("/api/v1/branches/cover%2Fx", headers=_h(srv)).json()["head"]
    r = srv.request("POST", "/api/v1/branches/cover%2Fx/revert", headers=_h(srv, "bob"), json_body={"commit": head})
    assert r.status == 423, r
    r = srv.request("POST", "/api/v1/branches/cover%2Fx/merge", headers=_h(srv, "bob"), json_body={"source": "cover/y"})
    assert r.status == 423, r
    _release(srv, b["id"])
    r = srv.request("POST", "/api/v1/branches/cover%2Fx/revert", headers=_h(srv, "bob"), json_body={"commit": head})
    assert r.status == 201, r


def test_fencing_token_only_increases(ctx):
    srv = ctx.server
    _branch(srv, "fence/a")
    _branch(srv, "fence/b")
    tokens = []
    for i in range(6):
        lock = _acquire(srv, "alice", branch="fence/a" if i % 2 else "fence/b", scope="branch", ttl_seconds=30)
        tokens.append(lock["fencing_token"])
        assert srv.get(f"/api/v1/locks/{lock['id']}", headers=_h(srv)).json()["fencing_token"] == tokens[-1]
        _release(srv, lock["id"])
    assert all(b > a for a, b in zip(tokens, tokens[1:])), tokens
    # two locks held by one writer: X-Lock-ID names both for a batch touching both
    assert _create(srv, "fence/a", "shared-properties", _prop("S")).status == 201
    l1 = _acquire(srv, "alice", branch="fence/a", resource_type="shared-properties", resource_id="S")
    l2 = _acquire(srv, "alice", branch="fence/a", scope="resource_type", resource_type="object-types")
    assert l2["fencing_token"] > l1["fencing_token"] > tokens[-1]
    batch = {"operations": [
        {"op": "replace", "kind": "shared-properties", "api_name": "S", "document": _prop("S", "v2")},
        {"op": "create", "kind": "object-types", "api_name": "O", "document": _ot("O")}]}
    r = srv.request("POST", _url("fence/a", "changes"), headers=_h(srv, "alice", **{"X-Lock-ID": l1["id"]}), json_body=batch)
    assert r.status == 423 and r.json()["locks"][0]["id"] == l2["id"], r
    r = srv.request("POST", _url("fence/a", "changes"),
                    headers=_h(srv, "alice", **{"X-Lock-ID": f"{l1['id']}, {l2['id']}"}), json_body=batch)
    assert r.status == 200, r
    _release(srv, l1["id"])
    # after release, writing under it is refused even where nothing else is locked
    r = _put(srv, "fence/a", "shared-properties", "S", _prop("S", "v3"), sub="alice", **{"X-Lock-ID": l1["id"]})
    assert r.status == 409 and r.json()["lock_state"] == "released", r
    _release(srv, l2["id"])


def test_x_lock_id_checks(ctx):
    srv = ctx.server
    _branch(srv, "xl/a")
    assert _create(srv, "xl/a", "shared-properties", _prop("S")).status == 201
    for bad in ("nope", "lck_" + "g" * 32, "lck_" + "0" * 31, ",", "lck_" + "0" * 32 + ",x"):
        r = _put(srv, "xl/a", "shared-properties", "S", _prop("S", "x"), **{"X-Lock-ID": bad})
        assert r.status == 400, (bad, r)
    r = _put(srv, "xl/a", "shared-properties", "S", _prop("S", "x"), **{"X-Lock-ID": "lck_" + "0" * 32})
    assert r.status == 409 and r.json()["lock_state"] == "unknown", r
    # naming somebody else's live lock gives no right to write through it
    lock = _acquire(srv, "alice", branch="xl/a", resource_type="shared-properties", resource_id="S")
    r = _put(srv, "xl/a", "shared-properties", "S", _prop("S", "x"), sub="bob", **{"X-Lock-ID": lock["id"]})
    assert r.status == 403 and r.json()["code"] == "not_lock_holder" and r.json()["lock_state"] == "not_holder", r
    _release(srv, lock["id"])


def test_release_rules_forced_release_and_alert(ctx):
    srv = ctx.server
    _branch(srv, "rel/a")
    lock = _acquire(srv, "alice", branch="rel/a", scope="branch", kind="migration")
    lid = lock["id"]
    # another developer cannot release it
    r = _release(srv, lid, sub="bob", expect=403)
    assert r.json()["missing_permission"] == "lock:admin"
    # lock:admin needs an issue reference
    r = _release(srv, lid, sub="root", roles=ADMIN, expect=422)
    assert r.json()["code"] == "issue_required" and r.json()["examples"]
    r = _release(srv, lid, sub="root", roles=ADMIN, expect=422, **{"X-Issue-ID": "not an issue"})
    assert r.json()["invalid"] == ["not an issue"]
    # heartbeats and extends belong to the holder alone
    r = srv.request("POST", f"/api/v1/locks/{lid}/heartbeat", headers=_h(srv, "root", ADMIN), json_body={})
    assert r.status == 403 and r.json()["code"] == "not_lock_holder", r
    r = srv.request("DELETE", f"/api/v1/locks/{lid}", headers=_h(srv, "root", ADMIN, issue=False, **{"X-Issue-ID": "OPS-7"}),
                    json_body={"reason": "the migration host died"})
    assert r.status == 200 and r.json()["state"] == "force_released" and r.json()["ended_by"] == "root", r
    ev = srv.audit_events(f"action = 'lock.force_release' AND outcome = 'success' AND resource_id = '{lid}'")
    assert len(ev) == 1 and ev[0]["actor_sub"] == "root"
    assert srv.query(f"SELECT issue_keys FROM audit_events WHERE action = 'lock.force_release' AND resource_id = '{lid}'"
                     " AND outcome = 'success'")[0][0] == '["OPS-7"]'
    alerts = srv.audit_events(f"action = 'alert.raised' AND resource_id = '{lid}'")
    assert len(alerts) == 1
    d = json.loads(alerts[0]["detail"])
    assert d["rule"] == "forced_lock_release" and d["holder"] == "alice" and d["released_by"] == "root"
    stored = srv.get("/api/v1/alerts?rule=forced_lock_release", headers=_h(srv, "aud", ("auditor",))).json()["items"]
    mine = [a for a in stored if a["detail"].get("lock_id") == lid]
    assert len(mine) == 1 and mine[0]["subject"] == "root" and mine[0]["severity"] == "warning", stored
    # refusals were audited too: the 403 as denied, the 422s as failures
    assert len(srv.audit_events("action = 'lock.force_release' AND outcome = 'denied' AND http_status = 403")) >= 1
    assert len(srv.audit_events("action = 'lock.force_release' AND outcome = 'failure'")) >= 2
    # a second release finds nothing to release
    r = _release(srv, lid, expect=409)
    assert r.json()["code"] == "lock_not_active"
    # the holder's own release is plain, needs no issue, and raises no alert
    l2 = _acquire(srv, "root", roles=ADMIN, branch="rel/a", scope="branch")
    r = _release(srv, l2["id"], sub="root", roles=ADMIN)
    assert r.json()["state"] == "released"
    assert len(srv.audit_events(f"action = 'lock.release' AND resource_id = '{l2['id']}'")) == 1
    assert not srv.audit_events(f"action = 'alert.raised' AND resource_id = '{l2['id']}'")
    assert _create(srv, "rel/a", "shared-properties", _prop("After"), sub="bob").status == 201


def test_extend_and_heartbeat_rules(ctx):
    srv = ctx.server
    _branch(srv, "ext/a")
    lock = _acquire(srv, "alice", branch="ext/a", scope="branch", kind="backup", ttl_seconds=2)
    lid = lock["id"]
    r = srv.request("POST", f"/api/v1/locks/{lid}/extend", headers=_h(srv, "alice"), json_body={"ttl_seconds": 600})
    assert r.status == 200 and r.json()["expires_at"] > lock["expires_at"], r
    longer = r.json()["expires_at"]
    # extend never shortens
    r = srv.request("POST", f"/api/v1/locks/{lid}/extend", headers=_h(srv, "alice"), json_body={"ttl_seconds": 5})
    assert r.status == 200 and r.json()["expires_at"] == longer
    assert len(srv.audit_events(f"action = 'lock.extend' AND outcome = 'success' AND resource_id = '{lid}'")) == 2
    srv.advance_lock_clock(2.2, _lock(lid))  # past the original TTL: still held
    assert srv.get(f"/api/v1/locks/{lid}", headers=_h(srv)).json()["state"] == "active"
    for bad in ({"ttl_seconds": 0}, {"ttl_seconds": 7 * 86400 + 1}, {"ttl_seconds": "60"}, {"ttl": 60}, []):
        r = srv.request("POST", f"/api/v1/locks/{lid}/extend", headers=_h(srv, "alice"), json_body=bad)
        assert r.status == 400, (bad, r)
    assert srv.request("POST", f"/api/v1/locks/{lid}/extend", headers=_h(srv, "bob"), json_body={}).status == 403
    for bad in ({"progress": {"percent": 101}}, {"progress": {"percent": -1}}, {"progress": {"percent": "5"}},
                {"progress": {"pct": 5}}, {"progres": {}}, {"progress": {"phase": "x" * 65}}, {"progress": []}):
        r = srv.request("POST", f"/api/v1/locks/{lid}/heartbeat", headers=_h(srv, "alice"), json_body=bad)
        assert r.status == 400, (bad, r)
    # an empty heartbeat is fine and keeps the progress
    hb = _heartbeat(srv, lid, percent=10.5, phase="copy")
    assert hb["progress"]["percent"] == 10.5 and hb["progress"]["updated_at"]
    hb = srv.request("POST", f"/api/v1/locks/{lid}/heartbeat", headers=_h(srv, "alice")).json()
    assert hb["progress"]["percent"] == 10.5 and hb["progress"]["phase"] == "copy"
    hb = _heartbeat(srv, lid, percent=100)
    assert hb["eta_seconds"] == 0
    _release(srv, lid)


def test_acquire_validation_and_defaults(ctx):
    srv = ctx.server
    _branch(srv, "val/a")
    lock = _acquire(srv, "alice", branch="val/a", resource_type="object-types", resource_id="Person")
    assert lock["kind"] == "manual" and lock["scope"] == "resource" and lock["heartbeat_seconds"] == 0
    assert lock["id"].startswith("lck_") and len(lock["id"]) == 36
    assert lock["progress"] == {"percent": None, "phase": None, "message": None, "updated_at": None}
    assert lock["eta_seconds"] is None and lock["ended_at"] is None
    r = srv.get(f"/api/v1/locks/{lock['id']}", headers=_h(srv, "v", ("viewer",)))
    assert r.status == 200 and r.json()["fencing_token"] == lock["fencing_token"]
    _release(srv, lock["id"])
    # default TTL by kind
    ttl = {"indexing": 4 * 3600, "migration": 6 * 3600, "backup": 2 * 3600, "maintenance": 3600, "manual": 86400}
    for kind, seconds in ttl.items():
        l = _acquire(srv, "alice", branch="val/a", scope="branch", kind=kind)
        assert l["kind"] == kind
        assert srv.query(f"SELECT expires_at - acquired_at FROM locks WHERE id = '{l['id']}'")[0][0] in (seconds * 1000, str(seconds * 1000))
        _release(srv, l["id"])
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv), json_body={"branch": "val/a", "scope": "branch",
                                                                         "reason": "x"})
    assert r.status == 201 and r.header("Location") == f"/api/v1/locks/{r.json()['id']}"
    _release(srv, r.json()["id"], sub="dev")
    bad_bodies = [
        {"branch": "val/a", "scope": "branch", "reason": "x", "kind": "coffee"},
        {"branch": "val/a", "scope": "galaxy", "reason": "x"},
        {"branch": "val/a", "scope": "branch"},
        {"branch": "val/a", "scope": "branch", "reason": ""},
        {"branch": "val/a", "scope": "branch", "reason": "x" * 1001},
        {"branch": "val/a", "scope": "branch", "reason": "x", "resource_type": "object-types"},
        {"branch": "val/a", "scope": "resource_type", "reason": "x"},
        {"branch": "val/a", "scope": "resource_type", "reason": "x", "resource_type": "objects"},
        {"branch": "val/a", "scope": "resource_type", "reason": "x", "resource_type": "object-types", "resource_id": "A"},
        {"branch": "val/a", "reason": "x", "resource_type": "object-types"},
        {"branch": "val/a", "reason": "x", "resource_type": "object-types", "resource_id": "1bad"},
        {"branch": "val/a", "reason": "x", "resource_type": "object-types", "resource_id": "A", "extra": 1},
        {"branch": "Bad..Name", "scope": "branch", "reason": "x"},
        {"scope": "branch", "reason": "x"},
        {"branch": "val/a", "scope": "branch", "reason": "x", "ttl_seconds": 0},
        {"branch": "val/a", "scope": "branch", "reason": "x", "ttl_seconds": 7 * 86400 + 1},
        {"branch": "val/a", "scope": "branch", "reason": "x", "ttl_seconds": 1.5},
        {"branch": "val/a", "scope": "branch", "reason": "x", "ttl_seconds": True},
        {"branch": "val/a", "scope": "branch", "reason": "x", "heartbeat_seconds": -1},
        {"branch": "val/a", "scope": "branch", "reason": 5},
        ["not", "an", "object"],
    ]
    for body in bad_bodies:
        r = srv.request("POST", "/api/v1/locks", headers=_h(srv), json_body=body)
        assert r.status == 400, (body, r)
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv), json_body={"branch": "val/none", "scope": "branch", "reason": "x"})
    assert r.status == 404, r
    # lock:write is needed to acquire; lock:read to look
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "v", ("viewer",)),
                    json_body={"branch": "val/a", "scope": "branch", "reason": "x"})
    assert r.status == 403 and r.json()["missing_permission"] == "lock:write"
    assert srv.get("/api/v1/locks", headers=_h(srv, "n", ("nobody",))).status == 403
    assert srv.get("/api/v1/locks/lck_" + "0" * 32, headers=_h(srv)).status == 404
    assert srv.get("/api/v1/locks/not-a-lock-id", headers=_h(srv)).status == 404
    assert srv.request("DELETE", "/api/v1/locks/lck_" + "0" * 32, headers=_h(srv)).status == 404
    assert len(srv.audit_events("action = 'lock.acquire' AND outcome = 'failure'")) >= len(bad_bodies)


def test_list_filters_and_paging(ctx):
    srv = ctx.server
    _branch(srv, "list/a")
    _branch(srv, "list/b")
    ids = []
    for i in range(5):
        ids.append(_acquire(srv, "carol" if i % 2 else "dave", branch="list/a",
                            resource_type="object-types", resource_id=f"R{i}", ttl_seconds=120)["id"])
    other = _acquire(srv, "carol", branch="list/b", scope="branch")["id"]
    v = _h(srv, "v", ("viewer",))
    items = srv.get("/api/v1/locks?branch=list%2Fa", headers=v).json()["items"]
    assert [x["id"] for x in items] == ids
    carol = srv.get("/api/v1/locks?holder=carol", headers=v).json()["items"]
    assert [x["id"] for x in carol] == [ids[1], ids[3], other]
    page = srv.get("/api/v1/locks?branch=list%2Fa&limit=2", headers=v).json()
    assert [x["id"] for x in page["items"]] == ids[:2] and page["next_cursor"]
    page2 = srv.get(f"/api/v1/locks?branch=list%2Fa&limit=2&cursor={page['next_cursor']}", headers=v).json()
    assert [x["id"] for x in page2["items"]] == ids[2:4]
    _release(srv, ids[0], sub="dave")
    assert ids[0] not in [x["id"] for x in srv.get("/api/v1/locks?branch=list%2Fa", headers=v).json()["items"]]
    rel = srv.get("/api/v1/locks?branch=list%2Fa&state=released", headers=v).json()["items"]
    assert [x["id"] for x in rel] == [ids[0]]
    assert len(srv.get("/api/v1/locks?branch=list%2Fa&state=all", headers=v).json()["items"]) == 5
    for q in ("state=gone", "branch=Bad..x", "limit=0", "cursor=zzz"):
        assert srv.get(f"/api/v1/locks?{q}", headers=v).status == 400, q
    for i, lid in enumerate(ids[1:], 1):
        _release(srv, lid, sub="carol" if i % 2 else "dave")
    _release(srv, other, sub="carol")


def test_sixteen_clients_race_for_one_lock(ctx):
    """Concurrent acquisitions on one instance (SQLite: one process; the
    two-instance PostgreSQL race is in test_locks_cluster.py)."""
    import threading
    srv = ctx.server
    _branch(srv, "race/one")
    barrier = threading.Barrier(16)
    results = [None] * 16

    def worker(i):
        hdr = _h(srv, f"client{i}")
        barrier.wait()
        results[i] = srv.request("POST", "/api/v1/locks", headers=hdr, json_body={
            "branch": "race/one", "resource_type": "object-types", "resource_id": "Hot", "reason": "race"})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == [201] + [409] * 15, [r.status for r in results]
    winner = next(r for r in results if r.status == 201).json()
    _release(srv, winner["id"], sub=winner["holder"])


def test_acl_policies_refine_lock_permissions_per_branch(ctx):
    """The branch of a lock is in the body (acquire) or the row (forced
    release): ACL policies (SPEC §6.2) are applied to it there."""
    srv = ctx.new_server()
    _branch(srv, "frozen/a")
    _branch(srv, "open/a")
    admin = _h(srv, "sec", ("admin",))
    ids = []
    for doc in ({"subject": "role:developer", "effect": "deny", "permissions": ["lock:write"], "branches": ["frozen/**"]},
                {"subject": "user:ops", "effect": "allow", "permissions": ["lock:admin"], "branches": ["open/**"]}):
        r = srv.request("POST", "/api/v1/acl/policies", headers=admin, json_body=doc)
        assert r.status == 201, r
        ids.append(r.json()["id"])
    deny_id = ids[0]
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "alice"),
                    json_body={"branch": "frozen/a", "scope": "branch", "reason": "x"})
    assert r.status == 403 and r.json()["missing_permission"] == "lock:write" and r.json()["denied_by"] == deny_id, r
    held = _acquire(srv, "alice", branch="open/a", scope="branch")
    # ops (a developer) may force-release on open/** only by the allow policy
    r = _release(srv, held["id"], sub="bob", expect=403)
    assert r.json()["missing_permission"] == "lock:admin" and r.json()["holder"] == "alice"
    r = _release(srv, held["id"], sub="ops", expect=200, **{"X-Issue-ID": "OPS-9"})
    assert r.json()["state"] == "force_released" and r.json()["ended_by"] == "ops"
    srv.stop()


def test_lock_override_lets_one_write_through(ctx):
    """An approved `lock` override (SPEC §6.4) lets its requester write once
    through another holder's lock, within its scope; it is used up."""
    srv = ctx.server
    _branch(srv, "ovr/a")
    for n in ("S", "T"):
        assert _create(srv, "ovr/a", "shared-properties", _prop(n)).status == 201
    lock = _acquire(srv, "alice", branch="ovr/a", scope="branch", kind="maintenance")
    justification = "Production incident: the billing pipeline is down and needs an urgent schema fix now."
    r = srv.request("POST", "/api/v1/overrides", headers=_h(srv, "bob"), json_body={
        "kind": "lock", "branch": "ovr/a", "resource": "shared-properties/S", "justification": justification,
        "incident": "INC-42", "ttl_seconds": 600})
    assert r.status == 201, r
    oid = r.json()["id"]
    assert srv.request("POST", f"/api/v1/overrides/{oid}/approve", headers=_h(srv, "sec", ("security_officer",))).status == 200
    ovr = {"X-Override-ID": oid}
    # out of its scope: refused, and not used up
    r = _put(srv, "ovr/a", "shared-properties", "T", _prop("T", "bob"), sub="bob", **ovr)
    assert r.status == 423, r
    r = _put(srv, "ovr/a", "shared-properties", "S", _prop("S", "bob"), sub="bob", **ovr)
    assert r.status == 200, r
    assert srv.get(f"/api/v1/overrides/{oid}", headers=_h(srv, "bob")).json()["state"] == "used"
    # once only; the lock still holds for everything else
    r = _put(srv, "ovr/a", "shared-properties", "S", _prop("S", "again"), sub="bob", **ovr)
    assert r.status == 403, r  # the override is used
    assert _put(srv, "ovr/a", "shared-properties", "S", _prop("S", "again"), sub="bob").status == 423
    assert srv.get(f"/api/v1/locks/{lock['id']}", headers=_h(srv)).json()["state"] == "active"
    _release(srv, lock["id"])


def test_locks_block_branch_deletion(ctx):
    srv = ctx.server
    _branch(srv, "lk/doomed")
    for body in ({"scope": "branch", "kind": "maintenance"},
                 {"scope": "resource", "resource_type": "object-types", "resource_id": "NotYetThere"}):
        lock = _acquire(srv, branch="lk/doomed", **body)
        r = srv.request("DELETE", "/api/v1/branches/lk%2Fdoomed", headers=_h(srv, "bob"))
        assert r.status == 423 and r.header("Retry-After"), r
        assert r.json()["code"] == "locked"
        _release(srv, lock["id"])
    assert srv.request("DELETE", "/api/v1/branches/lk%2Fdoomed", headers=_h(srv, "bob")).status == 204



def test_metrics_report_live_locks(ctx):
    srv = ctx.server
    _branch(srv, "lk/metrics")
    lock = _acquire(srv, branch="lk/metrics", scope="branch", kind="backup")
    body = srv.get("/metrics", headers=_h(srv, "svc", ("service_account",))).body
    assert 'oms_locks_active{kind="backup"}' in body, body[-500:]
    _release(srv, lock["id"])
