"""Locks across instances (SPEC §7, §11; docs/locks.md): two `oms serve`
processes on one PostgreSQL database behave as one lock service. A lock
taken through one blocks writes through the other; concurrent acquisitions
through both are atomic (exactly one wins); killing the instance that granted
a lock neither releases nor corrupts it, and heartbeats/TTL still end it;
expiry is audited exactly once however many instances reap.

Time passes by the test's clock, never by sleeping: advance_lock_clock moves
a lock's times into the past, which is what the database clock that judges
locks moving forward does to it (harness.py, docs/locks.md)."""

import json
import re
import threading
import time

BACKENDS = ("pg",)
DEV = ("developer",)


def _h(srv, sub="dev", roles=DEV, issue=True, **extra):
    """Auth headers; changes carry an issue reference (SPEC §6.3) unless
    a test is about its absence."""
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = "LOCK-7"
    h.update(extra)
    return h


def _pair(ctx):
    a = ctx.new_server()
    b = ctx.new_server(start=False)
    b.env["DATABASE_URL"] = a.database_url
    b.database_url = a.database_url
    b.secret = a.secret
    b.env["JWT_SECRET"] = a.secret
    for k in ("OMS_AUDIT_KEY",):
        if k in a.env:
            b.env[k] = a.env[k]
    b.start()
    return a, b


def _branch(srv, name):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": "main"})
    assert r.status == 201, r


def _sp_url(branch, name=None):
    u = f"/api/v1/schemas/{branch.replace('/', '%2F')}/shared-properties"
    return u + (f"/{name}" if name else "")


def _create_sp(srv, branch, name, sub="dev", **hdr):
    return srv.request("POST", _sp_url(branch), headers=_h(srv, sub, **hdr), json_body={"api_name": name, "type": "string"})


def _acquire(srv, sub, **body):
    body.setdefault("reason", "cluster test")
    return srv.request("POST", "/api/v1/locks", headers=_h(srv, sub), json_body=body)


def _wait_for(pred, timeout=8.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def _reaped(srv):
    """Locks this instance's reaper has recorded as expired (its log)."""
    return sum(int(m.group(1)) for m in re.finditer(r'"msg":"reaped (\d+) expired lock', srv.read_log()))


def test_lock_through_one_instance_blocks_writes_through_the_other(ctx):
    a, b = _pair(ctx)
    _branch(a, "cl/one")
    r = _acquire(a, "alice", branch="cl/one", scope="resource_type", resource_type="shared-properties",
                 kind="maintenance", ttl_seconds=60)
    assert r.status == 201, r
    lid = r.json()["id"]
    r = _create_sp(b, "cl/one", "Blocked", sub="bob")
    assert r.status == 423 and r.json()["locks"][0]["id"] == lid and int(r.header("Retry-After")) >= 1, r
    # any instance serves the lock: heartbeat through b, progress seen through a
    r = b.request("POST", f"/api/v1/locks/{lid}/heartbeat", headers=_h(b, "alice"),
                  json_body={"progress": {"percent": 30, "phase": "vacuum"}})
    assert r.status == 200, r
    r = _create_sp(a, "cl/one", "Blocked", sub="bob")
    assert r.status == 423 and r.json()["locks"][0]["progress"]["percent"] == 30
    # the holder writes through b with its lock, then releases through a
    assert _create_sp(b, "cl/one", "Mine", sub="alice", **{"X-Lock-ID": lid}).status == 201
    assert a.request("DELETE", f"/api/v1/locks/{lid}", headers=_h(a, "alice")).status == 200
    assert _create_sp(b, "cl/one", "Blocked", sub="bob").status == 201
    # a released lock fences through either instance
    r = _create_sp(b, "cl/one", "Late", sub="alice", **{"X-Lock-ID": lid})
    assert r.status == 409 and r.json()["code"] == "lock_expired", r


def test_sixteen_clients_race_through_two_instances(ctx):
    a, b = _pair(ctx)
    _branch(a, "cl/race")
    for rnd, body in enumerate([
            {"resource_type": "object-types", "resource_id": "Hot"},
            {"scope": "branch"},
            {"scope": "resource_type", "resource_type": "link-types"},
            {"resource_type": "interfaces", "resource_id": "Hot"}]):
        barrier = threading.Barrier(16)
        results = [None] * 16

        def worker(i):
            srv = a if i % 2 else b
            hdr = _h(srv, f"client{i}")
            barrier.wait()
            results[i] = srv.request("POST", "/api/v1/locks", headers=hdr,
                                     json_body={"branch": "cl/race", "reason": f"race {rnd}", "ttl_seconds": 30, **body})

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [r for r in results if r.status == 201]
        losers = [r for r in results if r.status == 409]
        assert len(winners) == 1 and len(losers) == 15, (rnd, [r.status for r in results])
        wid = winners[0].json()["id"]
        assert all(r.json()["code"] == "lock_conflict" and r.json()["conflicts"][0]["id"] == wid for r in losers)
        active = a.get("/api/v1/locks?branch=cl%2Frace", headers=_h(a)).json()["items"]
        assert [x["id"] for x in active] == [wid]
        holder = winners[0].json()["holder"]
        assert b.request("DELETE", f"/api/v1/locks/{wid}", headers=_h(b, holder)).status == 200
    # one acquire audited per round, and every loser's refusal too
    assert len(a.audit_events("action = 'lock.acquire' AND outcome = 'success'")) == 4
    assert len(a.audit_events("action = 'lock.acquire' AND outcome = 'failure'")) == 60


def test_killing_the_granting_instance_keeps_the_lock(ctx):
    a, b = _pair(ctx)
    _branch(a, "cl/kill")
    r = _acquire(a, "alice", branch="cl/kill", scope="branch", kind="migration", ttl_seconds=60, heartbeat_seconds=1)
    assert r.status == 201, r
    lock = r.json()
    a.proc.kill()  # SIGKILL: no drain, no cleanup
    a.proc.wait()
    # the lock lives in the database: intact, and still enforced through b
    got = b.get(f"/api/v1/locks/{lock['id']}", headers=_h(b)).json()
    assert got["state"] == "active" and got["fencing_token"] == lock["fencing_token"] and got["holder"] == "alice"
    assert _create_sp(b, "cl/kill", "X", sub="bob").status == 423
    # the holder keeps it alive through the surviving instance, 0.8 s
    # apart, for longer than three heartbeat periods ...
    where = f"id = '{lock['id']}'"
    for _ in range(4):
        b.advance_lock_clock(0.8, where)
        assert b.request("POST", f"/api/v1/locks/{lock['id']}/heartbeat", headers=_h(b, "alice"),
                         json_body={"progress": {"percent": 50}}).status == 200
    assert _create_sp(b, "cl/kill", "X", sub="bob").status == 423
    # ... and when its heartbeats stop, three missed beats end it
    b.advance_lock_clock(3.2, where)
    assert b.get(f"/api/v1/locks/{lock['id']}", headers=_h(b)).json()["state"] == "expired"
    assert _create_sp(b, "cl/kill", "X", sub="bob").status == 201
    where = f"action = 'lock.expired' AND resource_id = '{lock['id']}'"
    assert _wait_for(lambda: len(b.audit_events(where)) == 1)
    assert json.loads(b.audit_events(where)[0]["detail"])["cause"] == "missed_heartbeats"


def test_expiry_is_audited_once_with_two_reapers(ctx):
    a, b = _pair(ctx)
    ids = []
    for i in range(6):
        _branch(a, f"cl/reap{i}")
        r = _acquire(a if i % 2 else b, "alice", branch=f"cl/reap{i}", scope="branch", ttl_seconds=1)
        assert r.status == 201, r
        ids.append(r.json()["id"])
    in_list = ", ".join(f"'{i}'" for i in ids)
    a.advance_lock_clock(1.2, f"id IN ({in_list})")
    assert _wait_for(lambda: len(a.audit_events(f"action = 'lock.expired' AND resource_id IN ({in_list})")) == 6)
    # Both reapers have run again since. Each instance's reaper runs every
    # second (src/app/tasks.c): which of the two reaps a given expiry depends
    # on their phases, so a sentinel proves only that one of them ran. What
    # the test needs is that both had their turns after the six expiries:
    # two periods of the reapers' own schedule (real time: it is not the
    # lock clock, which the test controls) give each instance at least two
    # rounds, and every round finds nothing more to expire.
    seen = time.monotonic()
    assert _wait_for(lambda: _reaped(a) + _reaped(b) == 6), (_reaped(a), _reaped(b))
    while time.monotonic() - seen < 2.5:
        time.sleep(0.1)
    assert _reaped(a) + _reaped(b) == 6, (_reaped(a), _reaped(b))
    events = a.audit_events(f"action = 'lock.expired' AND resource_id IN ({in_list})")
    assert len(events) == 6
    states = a.query(f"SELECT state, ended_by FROM locks WHERE id IN ({in_list})")
    assert all(s == ("expired", "oms") for s in states), states
