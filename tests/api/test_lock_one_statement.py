"""A holder's lock acquisition and release in one statement (docs/locks.md
"One round trip"): on PostgreSQL the lock row, its audit event and its
outbox event are written by one statement sent with BEGIN and COMMIT, only
when every condition of the change holds; otherwise the change runs the
usual way. Both backends must record the same thing: SQLite always takes
the usual way, so every assertion on what was recorded is also a
comparison with it.

  - the audit event and the outbox event carry the fencing token the
    response gives (written by the database into the predicted text), in
    the canonical form every other event has;
  - a release's events name the lock's branch, target and token;
  - refusals are the usual ones (a conflict with its conflicts, a
    protected branch's lock:admin, a policy written since the instance
    read its ACL set), and nothing of a refused change is kept;
  - sixteen clients racing for one resource: exactly one lock;
  - a lock granted by another instance is released the usual way, with the
    same events;
  - /metrics counts what was made in one statement (PostgreSQL)."""

import json
import subprocess
import threading
import time

from harness import Skip

DEV = ("developer",)
ADMIN = ("admin",)


def _h(srv, sub="dev", roles=DEV, **extra):
    h = srv.auth(sub, roles)
    h["X-Issue-ID"] = "LOCK-21"
    h.update(extra)
    return h


def _branch(srv, name, protected=False):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv, "root", ADMIN), json_body={"name": name, "from": "main"})
    assert r.status == 201, r
    if protected:
        r = srv.request("PUT", "/api/v1/branches/%s/settings" % name.replace("/", "%2F"),
                        headers=_h(srv, "root", ADMIN), json_body={"protected": True})
        assert r.status == 200, r


def _acquire(srv, branch, sub="dev", roles=DEV, **body):
    body = {"branch": branch, "reason": "one statement", "ttl_seconds": 60, **body}
    if body.get("scope", "resource") == "resource":
        body.setdefault("resource_type", "shared-properties")
        body.setdefault("resource_id", "Prop")
    return srv.request("POST", "/api/v1/locks", headers=_h(srv, sub, roles), json_body=body)


def _audit(srv, action, lock_id):
    rows = srv.query(f"SELECT detail, resource_branch, resource_kind, actor_sub FROM audit_events"
                     f" WHERE action = '{action}' AND resource_id = '{lock_id}' ORDER BY seq")
    assert len(rows) == 1, rows
    detail, branch, kind, actor = rows[0]
    # canonical: compact, keys sorted, as every event's detail
    assert detail == json.dumps(json.loads(detail), sort_keys=True, separators=(",", ":")), detail
    return json.loads(detail), branch, kind, actor


def _outbox(srv, lock_id, type_):
    # one statement, one snapshot: the sequencer moves an event from the
    # queue into `events` in one transaction (PostgreSQL), so two reads
    # could each miss it
    sql = f"SELECT body FROM events WHERE body LIKE '%{lock_id}%'"
    if srv.backend == "pg":
        sql += f" UNION ALL SELECT body FROM events_pending WHERE body LIKE '%{lock_id}%'"
    rows = srv.query(sql)
    bodies = [json.loads(b) for (b,) in rows]
    mine = [b for b in bodies if b["type"] == type_]
    assert len(mine) == 1, bodies
    return mine[0]


def _made(srv):
    """oms_one_statement_changes_total by outcome (PostgreSQL)."""
    r = srv.get("/metrics", headers=srv.auth("svc", ("service_account",)))
    assert r.status == 200, r
    out = {}
    for line in r.body.splitlines():
        if line.startswith("oms_one_statement_changes_total{"):
            out[line.split('"')[1]] = int(float(line.split()[1]))
    return out


def _lock_rows(srv, where):
    return int(srv.query(f"SELECT COUNT(*) FROM locks WHERE {where}")[0][0])


def test_acquire_and_release_record_the_token_the_response_gives(ctx):
    srv = ctx.server
    _branch(srv, "os/a")
    before = _made(srv) if srv.backend == "pg" else {}
    r = _acquire(srv, "os/a", heartbeat_seconds=10)
    assert r.status == 201, r
    lock = r.json()
    detail, branch, kind, actor = _audit(srv, "lock.acquire", lock["id"])
    assert detail == {"fencing_token": lock["fencing_token"], "heartbeat_seconds": 10, "holder": "dev",
                      "kind": "manual", "resource_id": "Prop", "resource_type": "shared-properties",
                      "scope": "resource", "ttl_seconds": 60}, detail
    assert (branch, kind, actor) == ("os/a", "locks", "dev")
    ev = _outbox(srv, lock["id"], "lock.acquired")
    assert ev["subject"] == "locks/" + lock["id"] and ev["branch"] == "os/a", ev
    assert ev["data"]["detail"] == detail and ev["data"]["actor"] == "dev", ev

    r = srv.request("DELETE", f"/api/v1/locks/{lock['id']}", headers=_h(srv), json_body={"reason": "done"})
    assert r.status == 200, r
    assert r.json()["state"] == "released" and r.json()["fencing_token"] == lock["fencing_token"], r
    detail, branch, kind, actor = _audit(srv, "lock.release", lock["id"])
    assert detail == {"fencing_token": lock["fencing_token"], "holder": "dev", "kind": "manual", "reason": "done",
                      "resource_id": "Prop", "resource_type": "shared-properties", "scope": "resource"}, detail
    assert (branch, kind, actor) == ("os/a", "locks", "dev")
    ev = _outbox(srv, lock["id"], "lock.released")
    assert ev["branch"] == "os/a" and ev["data"]["detail"] == detail, ev
    # a branch lock has no target: its events say so the same way
    r = _acquire(srv, "os/a", scope="branch", kind="maintenance")
    assert r.status == 201, r
    b = r.json()
    assert srv.request("DELETE", f"/api/v1/locks/{b['id']}", headers=_h(srv)).status == 200
    detail, _, _, _ = _audit(srv, "lock.release", b["id"])
    assert detail == {"fencing_token": b["fencing_token"], "holder": "dev", "kind": "maintenance",
                      "resource_id": None, "resource_type": None, "scope": "branch"}, detail
    r = srv.get("/api/v1/audit/verify", headers=srv.auth("aud", ("auditor",)))
    assert r.status == 200 and r.json()["ok"] is True, r
    if srv.backend == "pg":
        after = _made(srv)
        assert after.get("made", 0) - before.get("made", 0) == 4, (before, after)


def test_a_policy_set_another_thread_loaded_serves_every_thread(ctx):
    """After a policy write, the first change that reads the new ACL
    version loads the new set; a handler thread still holding the old one
    pins its statement to the shared new set, instead of a version the
    statement would refuse (the change would then take the usual way)."""
    if ctx.backend != "pg":
        raise Skip("one-statement lock changes are PostgreSQL's")
    srv = ctx.new_server(env={"OMS_WORKERS": "8"})
    _branch(srv, "os/v")
    # every handler thread reads the current set
    pool = [threading.Thread(target=lambda i=i: _acquire(srv, "os/v", sub=f"w{i}", resource_id=f"W{i}"))
            for i in range(32)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    r = srv.request("POST", "/api/v1/acl/policies", headers=_h(srv, "root", ADMIN),
                    json_body={"subject": "user:nobody", "effect": "deny", "permissions": ["lock:write"],
                               "branches": ["os/v"]})
    assert r.status == 201, r
    _branch(srv, "os/v2")  # a change that reads the new version
    before = _made(srv)
    statuses = []

    def pairs(c):
        for i in range(4):
            r = _acquire(srv, "os/v", resource_id=f"P{c}x{i}")
            d = srv.request("DELETE", f"/api/v1/locks/{r.json()['id']}", headers=_h(srv)) if r.status == 201 else r
            statuses.append((r.status, d.status))

    clients = [threading.Thread(target=pairs, args=(c,)) for c in range(4)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    assert statuses == [(201, 200)] * 16, statuses
    after = _made(srv)
    assert after.get("made", 0) - before.get("made", 0) == 32, (before, after)
    assert after.get("usual_way", 0) == before.get("usual_way", 0), (before, after)


def test_refusals_are_the_usual_ones_and_keep_nothing(ctx):
    srv = ctx.server
    _branch(srv, "os/r")
    _branch(srv, "os/p", protected=True)
    held = _acquire(srv, "os/r")
    assert held.status == 201, held
    # a conflict: 409 with the conflicting lock, no row, no event
    r = _acquire(srv, "os/r", sub="other")
    assert r.status == 409 and r.json()["conflicts"][0]["id"] == held.json()["id"], r
    assert _lock_rows(srv, "holder = 'other'") == 0
    # a missing branch
    r = _acquire(srv, "os/none")
    assert r.status == 404, r
    # a protected branch: a branch lock needs lock:admin, a resource lock does not
    r = _acquire(srv, "os/p", scope="branch")
    assert r.status == 403 and r.json()["missing_permission"] == "lock:admin", r
    assert _lock_rows(srv, "branch = 'os/p'") == 0
    assert _acquire(srv, "os/p").status == 201
    r = _acquire(srv, "os/p", sub="root", roles=ADMIN, scope="resource_type", resource_type="object-types")
    assert r.status == 201, r
    # a policy written since, through another instance on PostgreSQL (this
    # one's policy set still allows, so the check is deferred and the
    # statement pinned to the old version): decided at the new version
    assert _acquire(srv, "os/r", resource_id="Warm").status == 201
    writer = srv
    if srv.backend == "pg":
        writer = ctx.new_server(start=False)
        writer.share_database_of(srv)
        writer.start()
    r = writer.request("POST", "/api/v1/acl/policies", headers=_h(writer, "root", ADMIN),
                       json_body={"subject": "user:dev", "effect": "deny", "permissions": ["lock:write"],
                                  "branches": ["os/r"]})
    assert r.status == 201, r
    r = _acquire(srv, "os/r", resource_id="Other")
    assert r.status == 403 and r.json()["missing_permission"] == "lock:write", r
    assert _lock_rows(srv, "resource_id = 'Other'") == 0
    assert int(srv.query("SELECT COUNT(*) FROM audit_events WHERE action = 'lock.acquire'"
                         " AND outcome = 'success' AND actor_sub = 'other'")[0][0]) == 0


def _held_against_inserts(srv, table):
    """PostgreSQL: a session holding `table` against inserts until
    .communicate(\"COMMIT;\")."""
    p = subprocess.Popen(["psql", "-qXAt", srv.database_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdin.write(f"BEGIN; LOCK TABLE {table} IN EXCLUSIVE MODE; SELECT 'held';\n")
    p.stdin.flush()
    assert p.stdout.readline().strip() == "held"
    return p


def test_sixteen_clients_racing_for_one_resource_get_one_lock(ctx):
    """On PostgreSQL every statement is held inside its transaction until
    all sixteen have reached the database (the audit queue's table locked
    against inserts): an acquisition that checked for conflicts without
    the branch's lock would see none of the others' uncommitted rows, and
    all would be granted."""
    pg = ctx.backend == "pg"
    srv = ctx.new_server(env={"OMS_WORKERS": "16"}) if pg else ctx.server
    _branch(srv, "os/race")
    results = [None] * 16

    def go(i):
        results[i] = _acquire(srv, "os/race", sub=f"c{i}", resource_id="Hot").status

    blocker = _held_against_inserts(srv, "audit_unchained") if pg else None
    threads = [threading.Thread(target=go, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    if blocker:
        deadline = time.time() + 20
        while int(srv.query("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")[0][0]) < 16:
            assert time.time() < deadline, "the acquisitions never all reached the database"
            time.sleep(0.02)
        blocker.communicate("COMMIT;\n", timeout=10)
    for t in threads:
        t.join()
    assert sorted(results) == [201] + [409] * 15, results
    assert _lock_rows(srv, "branch = 'os/race' AND state = 'active'") == 1
    assert int(srv.query("SELECT COUNT(*) FROM audit_events WHERE action = 'lock.acquire'"
                         " AND resource_branch = 'os/race' AND outcome = 'success'")[0][0]) == 1


def test_a_lock_another_instance_granted_is_released_the_usual_way(ctx):
    if ctx.backend != "pg":
        raise Skip("two instances on one database: PostgreSQL")
    a = ctx.server
    b = ctx.new_server(start=False)
    b.share_database_of(a)
    b.start()
    _branch(a, "os/two")
    r = _acquire(a, "os/two")
    assert r.status == 201, r
    lock = r.json()
    before = _made(b)
    r = b.request("DELETE", f"/api/v1/locks/{lock['id']}", headers=_h(b), json_body={"reason": "elsewhere"})
    assert r.status == 200 and r.json()["state"] == "released", r
    after = _made(b)
    assert after.get("made", 0) == before.get("made", 0), (before, after)  # b never granted it
    detail, branch, _, _ = _audit(a, "lock.release", lock["id"])
    assert detail["fencing_token"] == lock["fencing_token"] and detail["reason"] == "elsewhere", detail
    assert branch == "os/two"
    # released once: the granting instance's memory of it makes no second release
    r = a.request("DELETE", f"/api/v1/locks/{lock['id']}", headers=_h(a))
    assert r.status == 409 and r.json()["code"] == "lock_not_active", r
    # by the lock's id: a fencing token is a small number that other locks'
    # events on the shared server may contain as a substring
    assert len(a.audit_events(f"action = 'lock.release' AND resource_id = '{lock['id']}'"
                              f" AND outcome = 'success'")) == 1


def test_sessions_ended_under_lock_pairs_lose_nothing(ctx):
    """PostgreSQL ends the service's sessions three times while eight
    clients acquire and release locks, each change one pipeline with its
    COMMIT: every answer is the change's or 503; every acknowledged
    acquisition is a lock row with its one audit event, every acknowledged
    release a released row with its one event; and an acquisition right
    after the sessions ended, on connections found dead, is granted."""
    if ctx.backend != "pg":
        raise Skip("PostgreSQL sessions")
    import harness
    srv = ctx.new_server()
    _branch(srv, "os/kill")
    stop = threading.Event()
    got, mu = [], threading.Lock()

    def client(w):
        i = 0
        while not stop.is_set():
            r = _acquire(srv, "os/kill", sub=f"k{w}", resource_id=f"K{w}x{i}")
            lock_id = r.json().get("id") if r.status == 201 else None
            rel = srv.request("DELETE", f"/api/v1/locks/{lock_id}", headers=_h(srv, f"k{w}")) if lock_id else None
            with mu:
                got.append((r.status, lock_id, rel.status if rel else None))
            i += 1

    threads = [threading.Thread(target=client, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    kill = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{srv.dbname}' AND pid <> pg_backend_pid()")
    for _ in range(3):
        time.sleep(0.4)
        harness._psql(harness.PG_URL, kill)
    time.sleep(0.4)
    stop.set()
    for t in threads:
        t.join()
    assert {a for a, _, _ in got} <= {201, 503}, sorted({a for a, _, _ in got})
    assert {r for _, _, r in got if r is not None} <= {200, 503}, sorted({r for _, _, r in got if r})
    granted = [(lid, rel) for a, lid, rel in got if a == 201]
    assert len(granted) > 50, len(got)
    states = dict(srv.query("SELECT id, state FROM locks WHERE branch = 'os/kill'"))
    events = {}
    for action, rid, n in srv.query("SELECT action, resource_id, COUNT(*) FROM audit_events WHERE outcome = 'success'"
                                    " AND action IN ('lock.acquire', 'lock.release') AND resource_branch = 'os/kill'"
                                    " GROUP BY action, resource_id"):
        events[(action, rid)] = int(n)
    for lid, rel in granted:
        assert lid in states and events.get(("lock.acquire", lid)) == 1, lid
        if rel == 200:
            assert states[lid] == "released" and events.get(("lock.release", lid)) == 1, (lid, states[lid])
    # every pooled connection dead: the next acquisition still goes through
    harness._psql(harness.PG_URL, kill)
    time.sleep(0.2)
    r = _acquire(srv, "os/kill", resource_id="After")
    assert r.status == 201, r
