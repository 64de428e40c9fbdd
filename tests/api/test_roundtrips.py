"""Database round trips per operation on PostgreSQL (issue #21,
docs/storage.md "Round trips"), read from /metrics
(oms_db_roundtrips_total{source="requests"}) around one request at a time.
One handler thread (OMS_WORKERS=1), so the count is the request's own and
none of another thread's first-use work (its first connection, its ACL set);
every operation runs once before it is counted. The reads of /metrics itself
are measured and taken off.

  - a one-resource commit: the ACL version (authorization, before the
    transaction); BEGIN with the branch row FOR UPDATE (head, protection,
    compatibility policy, clock) and the lock check's reads (the shared
    advisory lock, the X-Lock-ID rows, the live locks); the writes, the
    head's compare-and-swap and the audit event with COMMIT: 3;
  - the same with X-Lock-ID under the writer's own lock: still 3 (the
    lock's row is read with the branch row);
  - a change without issue keys on an exempt branch: still 3 (the branch's
    issue_required comes with the ACL version);
  - a lock acquisition and a holder's release: BEGIN, the one statement
    that writes the lock with its audit event and outbox row (pinned to the
    ACL version the route's permission was decided at, docs/locks.md "One
    round trip") and COMMIT: 1 each, for a `resource_type` lock too; a
    release of a lock another instance granted: the usual way, BEGIN with
    the ACL version and the statement, then the audit event with COMMIT: 2;
    a heartbeat: BEGIN with the ACL version and the lock row, then the
    liveness update with COMMIT: 2.

The server runs without the sole-writer lease (OMS_PG_SOLE_WRITER=0), as
an instance of several does: a lone instance holding it answers the ACL
version from memory while nothing was committed since its last read, one
round trip fewer whenever no background commit (the audit chainer's) came
in between (tests/api/test_sole_writer.py).

SQLite has no round trips to save (a statement is a library call): SKIP."""

from harness import Skip

BACKENDS = ("pg",)
DEV = ("developer",)


def _h(srv, **extra):
    h = srv.auth("rt", DEV)
    h["X-Issue-ID"] = "RT-21"
    h.update(extra)
    return h


def _trips(srv):
    r = srv.get("/metrics", headers=srv.auth("svc", ("service_account",)))
    assert r.status == 200, r
    for line in r.body.splitlines():
        if line.startswith('oms_db_roundtrips_total{source="requests"} '):
            return int(float(line.split()[1]))
    raise AssertionError("oms_db_roundtrips_total{source=\"requests\"} missing from /metrics")


class _Counter:
    def __init__(self, srv):
        self.srv = srv
        t0 = _trips(srv)
        self.metrics_cost = _trips(srv) - t0  # what reading /metrics costs

    def count(self, fn):
        t0 = _trips(self.srv)
        fn()
        return _trips(self.srv) - t0 - self.metrics_cost


def _server(ctx):
    if ctx.backend != "pg":
        raise Skip("round trips are a PostgreSQL cost")
    srv = ctx.new_server(env={"OMS_WORKERS": "1", "OMS_PG_SOLE_WRITER": "0"})
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": "rt", "from": "main"})
    assert r.status == 201, r
    return srv


SP = "/api/v1/schemas/rt/shared-properties"


def _create(srv, name, **headers):
    r = srv.request("POST", SP, headers=_h(srv, **headers), json_body={"api_name": name, "type": "string"})
    assert r.status == 201, r


def _acquire(srv, name):
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv), json_body={
        "branch": "rt", "resource_type": "shared-properties", "resource_id": name, "reason": "rt", "ttl_seconds": 60})
    assert r.status == 201, r
    return r.json()["id"]


def _release(srv, lock_id):
    r = srv.request("DELETE", "/api/v1/locks/" + lock_id, headers=_h(srv))
    assert r.status == 200, r


def test_one_resource_commit_takes_three_round_trips(ctx):
    srv = _server(ctx)
    _create(srv, "Warm")  # the branch's snapshot, the thread's connection and ACL set
    c = _Counter(srv)
    counts = [c.count(lambda i=i: _create(srv, f"P{i}")) for i in range(5)]
    assert counts == [3] * 5, counts


def test_commit_under_own_lock_takes_three_round_trips(ctx):
    srv = _server(ctx)
    _create(srv, "Warm")
    lock_id = _acquire(srv, "Mine")
    _create(srv, "Mine", **{"X-Lock-ID": lock_id})
    c = _Counter(srv)

    def etag():
        r = srv.get(SP + "/Mine", headers=_h(srv))
        assert r.status == 200, r
        return '"%s"' % r.json()["meta"]["etag"]

    def update(i, tag):
        r = srv.request("PUT", SP + "/Mine", headers=_h(srv, **{"X-Lock-ID": lock_id, "If-Match": tag}),
                        json_body={"api_name": "Mine", "type": "string", "description": f"v{i}"})
        assert r.status == 200, r

    counts = []
    for i in range(3):
        tag = etag()
        counts.append(c.count(lambda: update(i, tag)))
    assert counts == [3] * 3, counts
    # and without it the lock refuses the write (the reads made ahead are judged)
    r = srv.request("PUT", SP + "/Mine", headers=_h(srv, **{"If-Match": etag()}),
                    json_body={"api_name": "Mine", "type": "string", "description": "other"})
    assert r.status == 423, r
    assert r.json()["locks"][0]["id"] == lock_id, r


def test_lock_acquire_and_release_take_one_round_trip_each(ctx):
    srv = _server(ctx)
    _release(srv, _acquire(srv, "Warm"))
    c = _Counter(srv)
    ids = []
    acquires = [c.count(lambda i=i: ids.append(_acquire(srv, f"L{i}"))) for i in range(5)]
    releases = [c.count(lambda i=i: _release(srv, ids[i])) for i in range(5)]
    assert acquires == [1] * 5, acquires
    assert releases == [1] * 5, releases


def test_release_of_a_lock_another_instance_granted_takes_two_round_trips(ctx):
    srv = _server(ctx)
    other = ctx.new_server(start=False, env={"OMS_WORKERS": "1", "OMS_PG_SOLE_WRITER": "0"})
    other.share_database_of(srv)
    other.start()
    _release(srv, _acquire(srv, "Warm"))
    ids = [_acquire(other, f"O{i}") for i in range(3)]
    c = _Counter(srv)
    releases = [c.count(lambda i=i: _release(srv, ids[i])) for i in range(3)]
    assert releases == [2] * 3, releases


def test_heartbeat_takes_two_round_trips(ctx):
    srv = _server(ctx)
    lock_id = _acquire(srv, "Beat")

    def beat():
        r = srv.request("POST", f"/api/v1/locks/{lock_id}/heartbeat", headers=_h(srv), json_body={})
        assert r.status == 200, r

    beat()
    c = _Counter(srv)
    counts = [c.count(beat) for _ in range(3)]
    assert counts == [2] * 3, counts


def test_kind_scope_lock_acquisition_reads_protection_in_its_one_trip(ctx):
    srv = _server(ctx)
    _release(srv, _acquire(srv, "Warm"))
    c = _Counter(srv)

    def acquire_kind(kind):
        r = srv.request("POST", "/api/v1/locks", headers=_h(srv), json_body={
            "branch": "rt", "scope": "resource_type", "resource_type": kind, "reason": "rt", "ttl_seconds": 60})
        assert r.status == 201, r

    counts = [c.count(lambda k=k: acquire_kind(k)) for k in ("object-types", "link-types", "interfaces")]
    assert counts == [1] * 3, counts


def test_commit_without_issue_keys_on_an_exempt_branch_takes_three_round_trips(ctx):
    """The branch's issue_required setting comes with the ACL version: a
    change that names no issue needs no read of its own."""
    srv = _server(ctx)
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": "sandbox/rt", "from": "main"})
    assert r.status == 201, r
    sp = "/api/v1/schemas/sandbox%2Frt/shared-properties"
    h = srv.auth("rt", DEV)

    def create(name):
        r = srv.request("POST", sp, headers=h, json_body={"api_name": name, "type": "string"})
        assert r.status == 201, r

    create("Warm")
    c = _Counter(srv)
    counts = [c.count(lambda i=i: create(f"S{i}")) for i in range(3)]
    assert counts == [3] * 3, counts
    # a branch that requires a reference still refuses a change without one
    r = srv.request("POST", SP, headers=h, json_body={"api_name": "NoIssue", "type": "string"})
    assert r.status == 422, r
    assert r.json()["code"] == "issue_required", r
