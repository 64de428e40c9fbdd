"""The lock routes decide their permissions in the change's transaction
(docs/security.md "Decided in the change's transaction"): a check that the
worker thread's ACL set allows is recorded, the ACL version is read by the
transaction's first statement, and every recorded check is decided again at
that version before anything the change did counts. The guarantee is the
one of every route (SPEC §11): a request sent after an ACL change was
acknowledged is decided by it. These tests change the policies while the
worker threads still hold the set of before, so the first request of each
thread after the change goes through that path."""

import threading
import time

DEV = ("developer",)
BRANCH = "authz/locks"


def _h(srv, sub, roles=DEV, **extra):
    h = srv.auth(sub, roles)
    h["X-Issue-ID"] = "LOCK-21"
    h.update(extra)
    return h


def _setup(srv):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv, "setup"), json_body={"name": BRANCH, "from": "main"})
    assert r.status == 201, r


def _policy(srv, doc):
    r = srv.request("POST", "/api/v1/acl/policies", headers=_h(srv, "sec", ("admin",)), json_body=doc)
    assert r.status == 201, r
    return r.json()["id"]


def _acquire_body(name):
    return {"branch": BRANCH, "resource_type": "object-types", "resource_id": name, "reason": "authz",
            "ttl_seconds": 120}


def _holder_locks(srv, holder):
    return {lock_id: state for lock_id, state in srv.query(f"SELECT id, state FROM locks WHERE holder = '{holder}'")}


def test_a_deny_acknowledged_during_lock_traffic_refuses_every_later_request(ctx):
    """Four threads of one principal acquire, heartbeat and release while a
    deny policy on lock:write (every branch) is created. Every request sent
    after the policy's 201 is refused as the route's own check refuses
    (403, the policy named, one authz.denied event), and none of them leaves
    anything: the locks in the database are exactly the ones whose
    acquisition was answered 201, and a release refused leaves its lock
    active."""
    srv = ctx.new_server()
    _setup(srv)
    stop = threading.Event()
    log = []  # (sent, kind, request id, response)
    mu = threading.Lock()

    def send(kind, rid, method, path, body=None):
        sent = time.monotonic()
        r = srv.request(method, path, headers=_h(srv, "racer", **{"X-Request-ID": rid}), json_body=body)
        with mu:
            log.append((sent, time.monotonic(), kind, rid, r))
        return r

    def worker(i):
        n = 0
        while not stop.is_set():
            n += 1
            r = send("acquire", f"authz-{i}-{n}-a", "POST", "/api/v1/locks", _acquire_body(f"R{i}_{n}"))
            if r.status != 201:
                continue
            lock_id = r.json()["id"]
            send("heartbeat", f"authz-{i}-{n}-h", "POST", f"/api/v1/locks/{lock_id}/heartbeat", {})
            send("release", f"authz-{i}-{n}-r", "DELETE", f"/api/v1/locks/{lock_id}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    posted = time.monotonic()
    pid = _policy(srv, {"subject": "user:racer", "effect": "deny", "permissions": ["lock:write"], "branches": []})
    acknowledged = time.monotonic()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()

    ordinary = {"acquire": 201, "heartbeat": 200, "release": 200}
    before = [e for e in log if e[1] < posted]
    after = [e for e in log if e[0] > acknowledged]
    assert len(before) >= 8 and len(after) >= 8, (len(before), len(after))
    # answered before the policy was sent: the ordinary answers
    for sent, done, kind, rid, r in before:
        assert r.status == ordinary[kind], (kind, rid, r)
    # sent after its acknowledgement: the route's refusal, recorded once as such
    events = {}
    for e in srv.audit_events("request_id LIKE 'authz-%'"):
        events.setdefault(e["request_id"], []).append((e["action"], e["outcome"], str(e["http_status"])))
    for sent, done, kind, rid, r in after:
        assert r.status == 403, (kind, rid, r)
        doc = r.json()
        assert doc["code"] == "forbidden" and doc["missing_permission"] == "lock:write", doc
        assert doc["denied_by"] == pid and pid in doc["detail"], doc
        assert events.get(rid) == [("authz.denied", "denied", "403")], (rid, events.get(rid))
    # nothing refused was kept: the held locks are the acquisitions answered
    # 201, and each is released exactly when its release was answered 200
    granted = {e[4].json()["id"] for e in log if e[2] == "acquire" and e[4].status == 201}
    stored = _holder_locks(srv, "racer")
    assert set(stored) == granted, (set(stored) ^ granted)
    released = {e[4].json()["id"] for e in log if e[2] == "release" and e[4].status == 200}
    assert {i for i, state in stored.items() if state == "released"} == released
    srv.stop()


def test_a_branch_deny_is_decided_at_the_version_the_transaction_read(ctx):
    """One worker thread that holds the set of before the policy: the
    acquisition's own check on the body's branch is refused as the handler
    refuses it (the branch named, audited as lock.acquire, denied) and no
    lock is stored. A forced release
    needs lock:admin on the lock's branch: an allow policy created after the
    thread loaded its set is applied at once."""
    srv = ctx.new_server(env={"OMS_WORKERS": "1"})
    _setup(srv)
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv, "setup"), json_body={"name": "authz/open", "from": "main"})
    assert r.status == 201, r
    # the thread's set, loaded and used
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "alice"), json_body=_acquire_body("Warm"))
    assert r.status == 201, r
    held = r.json()
    pid = _policy(srv, {"subject": "user:bob", "effect": "deny", "permissions": ["lock:write"], "branches": ["authz/locks"]})
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "bob", **{"X-Request-ID": "authz-branch-deny"}),
                    json_body=_acquire_body("Denied"))
    assert r.status == 403, r
    doc = r.json()
    assert doc["missing_permission"] == "lock:write" and doc["denied_by"] == pid, doc
    assert f"on branch {BRANCH}" in doc["detail"], doc
    ev = srv.audit_events("request_id = 'authz-branch-deny'")
    assert [(e["action"], e["outcome"], str(e["http_status"])) for e in ev] == [("lock.acquire", "denied", "403")], ev
    assert _holder_locks(srv, "bob") == {}
    # bob may still lock another branch: the deny names this one only
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "bob"),
                    json_body=dict(_acquire_body("Elsewhere"), branch="authz/open"))
    assert r.status == 201, r
    assert r.json()["fencing_token"] > held["fencing_token"], (held, r.json())
    # carol (a developer) cannot force-release alice's lock ... until an allow
    # policy grants her lock:admin, created after the thread's last decision
    r = srv.request("DELETE", f"/api/v1/locks/{held['id']}", headers=_h(srv, "carol"))
    assert r.status == 403 and r.json()["missing_permission"] == "lock:admin", r
    _policy(srv, {"subject": "user:carol", "effect": "allow", "permissions": ["lock:admin"], "branches": [BRANCH]})
    r = srv.request("DELETE", f"/api/v1/locks/{held['id']}", headers=_h(srv, "carol"))
    assert r.status == 200 and r.json()["state"] == "force_released", r
    srv.stop()


def test_a_refusal_left_to_the_transaction_still_comes_before_other_answers(ctx):
    """Without deferral the route's 403 comes before the body is read: a
    bad body, an unknown lock or an undeclared query parameter from a
    principal the policies refuse is answered 403, not 400 or 404 (which
    would say something about what it may not see). Each try is made with
    the thread's set from before the deny policy (the policy is created
    again after an allowed request reloaded the set), so the check is left
    to a change transaction that never comes, and the pipeline decides it
    first."""
    srv = ctx.new_server(env={"OMS_WORKERS": "1"})
    _setup(srv)
    admin = _h(srv, "sec", ("admin",))
    deny = {"subject": "user:dan", "effect": "deny", "permissions": ["lock:write"], "branches": []}
    tries = [
        ("authz-late-body", "POST", "/api/v1/locks", {"branch": BRANCH}),  # no reason: 400 without the policy
        ("authz-late-unknown", "DELETE", "/api/v1/locks/lck_" + "0" * 32, None),  # 404 without it
        ("authz-late-query", "DELETE", "/api/v1/locks/lck_" + "1" * 32 + "?force=1", None),  # undeclared: 400
        ("authz-late-extend", "POST", "/api/v1/locks/lck_" + "2" * 32 + "/extend", {"ttl_seconds": "long"}),  # 400
    ]
    policy = None
    for n, (rid, method, path, body) in enumerate(tries):
        if policy:
            r = srv.request("DELETE", f"/api/v1/acl/policies/{policy[0]}", headers=dict(admin, **{"If-Match": policy[1]}))
            assert r.status == 204, r
        # allowed: the thread's set is now one without the deny
        r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "dan"), json_body=_acquire_body(f"Warm{n}"))
        assert r.status == 201, r
        r = srv.request("POST", "/api/v1/acl/policies", headers=admin, json_body=deny)
        assert r.status == 201, r
        policy = (r.json()["id"], r.header("ETag"))
        r = srv.request(method, path, headers=_h(srv, "dan", **{"X-Request-ID": rid}), json_body=body)
        assert r.status == 403, (rid, r)
        assert r.json()["denied_by"] == policy[0] and r.json()["missing_permission"] == "lock:write", (rid, r.json())
        ev = srv.audit_events(f"request_id = '{rid}'")
        assert [(e["action"], e["outcome"]) for e in ev] == [("authz.denied", "denied")], (rid, ev)
    assert sorted(_holder_locks(srv, "dan").values()) == ["active"] * len(tries)
    srv.stop()
