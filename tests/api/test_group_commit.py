"""Group commit (issue #21, docs/storage.md "Group commit"): writers of one
branch that queue behind a transaction of that branch commit together in the
next one, each in its own savepoint. Each write still gets its own commit
(parent: the write before it), its own audit event and its own answer, only
after the group's COMMIT; a write refused inside a group (412, 409, 423, a
422 of validation) leaves nothing and costs the others nothing; with
OMS_GROUP_COMMIT=0 every write has its own transaction. A kill -9 in the
middle of groups is test_audit_crash.py (four writers on one branch)."""

import threading

from harness import quote

DEV = ("developer",)
ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


def _h(srv, sub="dev", **extra):
    h = srv.auth(sub, DEV)
    h["X-Issue-ID"] = "OMS-21"
    h.update(extra)
    return h


def _url(branch, kind="shared-properties", name=None):
    u = f"/api/v1/schemas/{quote(branch)}/{kind}"
    return u + (f"/{name}" if name else "")


def _branch(srv, name):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": ROOT})
    assert r.status == 201, r
    return r.json()["head"]


def _metric(srv, name):
    return srv.metric(name)


def _concurrently(fns):
    threads = [threading.Thread(target=f) for f in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _create_concurrently(srv, branch, prefix, writers, each):
    """`writers` threads, each creating `each` shared properties on branch:
    their statuses."""
    statuses, lock = [], threading.Lock()

    def writer(w):
        for i in range(each):
            r = srv.request("POST", _url(branch), headers=_h(srv, sub=f"{prefix.lower()}{w}"),
                            json_body={"api_name": f"{prefix}{w}x{i}", "type": "string"})
            with lock:
                statuses.append(r.status)

    _concurrently([lambda w=w: writer(w) for w in range(writers)])
    return statuses


def _history(srv, head, stop):
    """Commit ids from head back to stop (excluded), following first parents."""
    out, c = [], head
    while c != stop:
        r = srv.get(f"/api/v1/commits/{c}", headers=_h(srv))
        assert r.status == 200, r
        out.append(c)
        c = r.json()["parents"][0]
    return out


def test_sixteen_writers_share_transactions_each_with_its_own_commit(ctx):
    srv = ctx.server
    b = "group/sixteen"
    start = _branch(srv, b)
    batches0 = _metric(srv, "oms_group_commits_total")
    writes0 = _metric(srv, "oms_group_commit_writes_total")
    got, lock = [], threading.Lock()

    def writer(w):
        for i in range(10):
            name = f"G{w}x{i}"
            r = srv.request("POST", _url(b), headers=_h(srv, sub=f"w{w}", **{"X-Request-ID": f"grp-{name}"}),
                            json_body={"api_name": name, "type": "string"})
            with lock:
                got.append((name, r.status, r.header("X-Commit")))

    _concurrently([lambda w=w: writer(w) for w in range(16)])
    assert [s for _, s, _ in got] == [201] * 160, sorted({s for _, s, _ in got})
    commits = {c for _, _, c in got}
    assert len(commits) == 160  # one commit per write, grouped or not
    batches = _metric(srv, "oms_group_commits_total") - batches0
    grouped = _metric(srv, "oms_group_commit_writes_total") - writes0
    assert batches >= 1 and grouped >= 2 * batches, (batches, grouped)  # 16 writers queue: groups form
    # the branch's history is exactly these 160 commits, each on the one before
    head = srv.get(f"/api/v1/branches/{quote(b)}", headers=_h(srv)).json()["head"]
    assert set(_history(srv, head, start)) == commits
    # each write's own audit event names its own commit; each reads back at it
    events = srv.audit_events("request_id LIKE 'grp-G%'")
    assert len(events) == 160
    by_rid = {e["request_id"]: e for e in events}
    rows = dict(srv.query("SELECT request_id, commit_id FROM audit_events WHERE request_id LIKE 'grp-G%'"))
    for name, _, commit in got:
        assert by_rid[f"grp-{name}"]["action"] == "shared_property.create"
        assert rows[f"grp-{name}"] == commit
    for name, _, commit in got[::16]:
        r = srv.get(_url(b, name=name) + f"?at={commit}", headers=_h(srv))
        assert r.status == 200, r


def test_refused_writes_in_a_group_leave_nothing_and_cost_the_others_nothing(ctx):
    srv = ctx.server
    b = "group/mixed"
    start = _branch(srv, b)
    for name in ("Taken", "Locked", "Stale"):
        r = srv.request("POST", _url(b), headers=_h(srv), json_body={"api_name": name, "type": "string"})
        assert r.status == 201, r
    stale_etag = r.header("ETag")
    r = srv.request("PUT", _url(b, name="Stale"), headers=_h(srv, **{"If-Match": stale_etag}),
                    json_body={"api_name": "Stale", "type": "string", "description": "moved on"})
    assert r.status == 200, r
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, sub="holder"),
                    json_body={"branch": b, "resource_type": "shared-properties", "resource_id": "Locked",
                               "reason": "migration", "ttl_seconds": 600})
    assert r.status == 201, r
    before = srv.get(f"/api/v1/branches/{quote(b)}", headers=_h(srv)).json()["head"]
    batches0 = _metric(srv, "oms_group_commits_total")
    got, lock = [], threading.Lock()

    def call(tag, method, url, body, **headers):
        r = srv.request(method, url, headers=_h(srv, sub=f"u-{tag}", **headers), json_body=body)
        with lock:
            got.append((tag, r.status, r.header("X-Commit")))

    fns = []
    for i in range(12):
        fns.append(lambda i=i: call(f"ok{i}", "POST", _url(b), {"api_name": f"Fine{i}", "type": "string"}))
    for i in range(3):
        fns.append(lambda i=i: call(f"dup{i}", "POST", _url(b), {"api_name": "Taken", "type": "string"}))
        fns.append(lambda i=i: call(f"stale{i}", "PUT", _url(b, name="Stale"),
                                    {"api_name": "Stale", "type": "string", "description": f"lost {i}"},
                                    **{"If-Match": stale_etag}))
        fns.append(lambda i=i: call(f"locked{i}", "PUT", _url(b, name="Locked"),
                                    {"api_name": "Locked", "type": "string", "description": "blocked"},
                                    **{"If-Match": "*"}))
        fns.append(lambda i=i: call(f"bad{i}", "POST", _url(b, "object-types"),  # a dangling reference
                                    {"api_name": f"Bad{i}", "primary_key": "id",
                                     "properties": [{"api_name": "id", "type": "string", "required": True},
                                                    {"api_name": "x", "type": "string", "shared_property": "NoSuch"}]}))
    _concurrently(fns)
    assert _metric(srv, "oms_group_commits_total") > batches0  # some ran grouped
    want = {"ok": 201, "dup": 409, "stale": 412, "locked": 423, "bad": 409}
    for tag, status, _ in got:
        assert status == want[tag.rstrip("0123456789")], (tag, status)
    ok_commits = {c for tag, _, c in got if tag.startswith("ok")}
    head = srv.get(f"/api/v1/branches/{quote(b)}", headers=_h(srv)).json()["head"]
    assert set(_history(srv, head, before)) == ok_commits  # the refused wrote no commit
    for i in range(3):
        assert srv.get(_url(b, "object-types", f"Bad{i}"), headers=_h(srv)).status == 404
    assert srv.get(_url(b, name="Stale"), headers=_h(srv)).json()["description"] == "moved on"
    assert srv.get(_url(b, name="Locked"), headers=_h(srv)).json().get("description") != "blocked"
    assert len(_history(srv, head, start)) == 4 + 12


def test_group_commit_can_be_switched_off(ctx):
    srv = ctx.new_server(env={"OMS_GROUP_COMMIT": "0"})
    b = "group/off"
    _branch(srv, b)
    assert _create_concurrently(srv, b, "Off", writers=8, each=5) == [201] * 40
    assert _metric(srv, "oms_group_commits_total") == 0


def test_writes_after_the_first_of_a_group_reuse_its_reads(ctx):
    """A write that follows a written write of its branch in the same
    transaction reuses what that one read (the branch row it holds, no live
    lock) instead of reading them again: one round trip fewer. With one
    branch and no lock, that is every write of a group but its first."""
    srv = ctx.server
    b = "group/carry"
    _branch(srv, b)
    batches0 = _metric(srv, "oms_group_commits_total")
    writes0 = _metric(srv, "oms_group_commit_writes_total")
    carried0 = _metric(srv, "oms_group_commit_carried_total")
    assert _create_concurrently(srv, b, "C", writers=16, each=8) == [201] * 128
    batches = _metric(srv, "oms_group_commits_total") - batches0
    grouped = _metric(srv, "oms_group_commit_writes_total") - writes0
    carried = _metric(srv, "oms_group_commit_carried_total") - carried0
    assert grouped > batches >= 1, (batches, grouped)
    assert carried == grouped - batches, (batches, grouped, carried)


def test_a_lock_granted_while_writers_group_stops_every_later_write(ctx):
    """Locks and group commit (docs/locks.md): a lock is granted only
    between the transactions of its branch, never inside one, so a write
    that reused its group's reads cannot slip past a lock granted meanwhile.
    Twelve writers keep groups running on a branch while a resource-type
    lock is taken: no write commits after the grant (every write's audit
    event comes before the grant's), and every write sent after the grant
    was answered is refused with 423."""
    import time
    srv = ctx.server
    b = "group/locked-midway"
    _branch(srv, b)
    carried0 = _metric(srv, "oms_group_commit_carried_total")
    stop = threading.Event()
    got, lock = [], threading.Lock()

    def writer(w):
        i = 0
        while not stop.is_set():
            name = f"L{w}x{i}"
            sent = time.monotonic()
            r = srv.request("POST", _url(b), headers=_h(srv, sub=f"lw{w}", **{"X-Request-ID": f"lmw-{name}"}),
                            json_body={"api_name": name, "type": "string"})
            with lock:
                got.append((name, sent, r.status))
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    time.sleep(0.6)
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, sub="holder", **{"X-Request-ID": "lmw-grant"}),
                    json_body={"branch": b, "scope": "resource_type", "resource_type": "shared-properties",
                               "reason": "migration", "ttl_seconds": 600})
    granted = time.monotonic()
    assert r.status == 201, r
    time.sleep(0.4)
    stop.set()
    for t in threads:
        t.join()
    assert _metric(srv, "oms_group_commit_carried_total") > carried0  # groups ran on carried reads
    assert {s for _, _, s in got} <= {201, 423}, sorted({s for _, _, s in got})
    late = [(n, s) for n, sent, s in got if sent > granted]
    assert late and all(s == 423 for _, s in late), [x for x in late if x[1] != 423][:5]
    grant = srv.query("SELECT seq FROM audit_events WHERE request_id = 'lmw-grant' AND action = 'lock.acquire'")
    assert len(grant) == 1
    last, count = srv.query("SELECT MAX(seq), COUNT(*) FROM audit_events WHERE request_id LIKE 'lmw-L%' "
                            "AND outcome = 'success'")[0]
    assert int(count) == sum(1 for _, _, s in got if s == 201) > 0, count
    assert int(last) < int(grant[0][0]), (last, grant)


_BOOM_PG = """
CREATE FUNCTION test_boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.resource LIKE '%Boom%' THEN RAISE EXCEPTION 'boom'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_boom BEFORE INSERT ON commit_changes FOR EACH ROW EXECUTE FUNCTION test_boom();
"""
_BOOM_SQLITE = """
CREATE TRIGGER test_boom BEFORE INSERT ON commit_changes WHEN NEW.resource LIKE '%Boom%'
BEGIN SELECT RAISE(ABORT, 'boom'); END;
"""


def test_a_statement_that_fails_inside_a_group_fails_its_write_alone(ctx):
    """A write whose statement the database refuses (here a trigger on the
    commit's change rows, standing for any failure the checks before it
    cannot see) fails alone, as in its own transaction: the writes grouped
    with it commit, each with its own commit and event. On PostgreSQL a
    group sends each write's statements ahead without awaiting them; such
    a failure loses the group's transaction, which runs once more with each
    write awaited (oms_group_commit_reruns_total)."""
    srv = ctx.new_server()
    srv.execute(_BOOM_PG if srv.backend == "pg" else _BOOM_SQLITE)
    b = "group/boom"
    start = _branch(srv, b)
    reruns0 = _metric(srv, "oms_group_commit_reruns_total")
    got, lock = [], threading.Lock()

    def writer(w):
        for i in range(8):
            name = f"Boom{w}x{i}" if (w + i) % 7 == 3 else f"Fine{w}x{i}"
            r = srv.request("POST", _url(b), headers=_h(srv, sub=f"b{w}", **{"X-Request-ID": f"boom-{name}"}),
                            json_body={"api_name": name, "type": "string"})
            with lock:
                got.append((name, r.status, r.header("X-Commit")))

    _concurrently([lambda w=w: writer(w) for w in range(16)])
    booms = [(n, s) for n, s, _ in got if n.startswith("Boom")]
    fine = [(n, s, c) for n, s, c in got if n.startswith("Fine")]
    assert booms and all(s == 500 for _, s in booms), booms[:5]
    assert fine and all(s == 201 for _, s, _ in fine), [x for x in fine if x[1] != 201][:5]
    head = srv.get(f"/api/v1/branches/{quote(b)}", headers=_h(srv)).json()["head"]
    assert set(_history(srv, head, start)) == {c for _, _, c in fine}
    for name, _ in booms[:4]:
        assert srv.get(_url(b, name=name), headers=_h(srv)).status == 404
    rows = dict(srv.query("SELECT request_id, commit_id FROM audit_events WHERE request_id LIKE 'boom-Fine%' "
                          "AND outcome = 'success'"))
    assert {rows[f"boom-{n}"] for n, _, _ in fine} == {c for _, _, c in fine}
    failed = srv.query("SELECT COUNT(*) FROM audit_events WHERE request_id LIKE 'boom-Boom%' AND outcome = 'failure'")
    assert int(failed[0][0]) == len(booms)
    if srv.backend == "pg":
        assert _metric(srv, "oms_group_commit_reruns_total") > reruns0


def _writers_until(srv, branch, prefix, stop, rid):
    """16 writers creating shared properties on branch until `stop` is set,
    each request with the id rid + its name: the started threads and the
    list they fill with (name, status, commit)."""
    got, lock = [], threading.Lock()

    def writer(w):
        i = 0
        while not stop.is_set():
            name = f"{prefix}{w}x{i}"
            r = srv.request("POST", _url(branch),
                            headers=_h(srv, sub=f"{prefix.lower()}{w}", **{"X-Request-ID": f"{rid}{name}"}),
                            json_body={"api_name": name, "type": "string"})
            with lock:
                got.append((name, r.status, r.header("X-Commit")))
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    return threads, got


def test_connections_killed_under_groups_lose_no_acknowledged_write(ctx):
    """PostgreSQL ends the service's sessions (pg_terminate_backend) three
    times while 16 writers keep groups running on one branch, some of them
    with statements sent ahead and unanswered: every write is answered 201
    or 503, every 201 is in the branch's history with its audit event, and
    the service writes again afterwards."""
    import time
    import harness
    if ctx.backend != "pg":
        raise harness.Skip("PostgreSQL sessions")
    srv = ctx.new_server()
    b = "group/killed"
    start = _branch(srv, b)
    stop = threading.Event()
    threads, got = _writers_until(srv, b, "K", stop, "kill-")
    for _ in range(3):
        time.sleep(0.4)
        harness._psql(harness.PG_URL, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      f"WHERE datname = '{srv.dbname}' AND pid <> pg_backend_pid()")
    time.sleep(0.4)
    stop.set()
    for t in threads:
        t.join()
    assert {s for _, s, _ in got} <= {201, 503}, sorted({s for _, s, _ in got})
    acked = {c for _, s, c in got if s == 201}
    assert len(acked) > 50 and any(s == 503 for _, s, _ in got), (len(acked), len(got))
    r = srv.request("POST", _url(b), headers=_h(srv), json_body={"api_name": "After", "type": "string"})
    assert r.status == 201, r
    head = srv.get(f"/api/v1/branches/{quote(b)}", headers=_h(srv)).json()["head"]
    history = set(_history(srv, head, start))
    assert acked <= history, len(acked - history)
    rows = dict(srv.query("SELECT request_id, commit_id FROM audit_events WHERE request_id LIKE 'kill-K%' "
                          "AND outcome = 'success'"))
    for name, s, c in got:
        if s == 201:
            assert rows.get(f"kill-{name}") == c, name


def test_lock_changes_join_the_writes_group_on_sqlite(ctx):
    """SQLite has one writer: a lock change (acquire, heartbeat, release)
    that arrives while a write transaction is in flight runs as a member of
    the next one, in its own savepoint, and shares its COMMIT
    (oms_group_commit_lock_changes_total); on PostgreSQL a lock change keeps
    a transaction of its own and the counter stays 0. Either way each change
    keeps its own answer and audit event, two acquisitions of one resource
    never both hold it (inside one transaction the later member sees the
    earlier one's row), and fencing tokens rise in the order of grant."""
    srv = ctx.server
    b = "group/locks"
    _branch(srv, b)
    locks0 = _metric(srv, "oms_group_commit_lock_changes_total")
    got, held, lock = [], [], threading.Lock()

    def writer(w):
        for i in range(10):
            r = srv.request("POST", _url(b), headers=_h(srv, sub=f"gw{w}"),
                            json_body={"api_name": f"GL{w}x{i}", "type": "string"})
            with lock:
                got.append(("write", r.status, r.body[:300]))

    def locker(k):
        for j in range(6):
            rid = f"glk-{k}-{j}"
            r = srv.request("POST", "/api/v1/locks", headers=_h(srv, sub=f"gk{k}", **{"X-Request-ID": rid}),
                            json_body={"branch": b, "resource_type": "shared-properties",
                                       "resource_id": f"Hot{k % 2}", "reason": "group race", "ttl_seconds": 60})
            with lock:
                got.append(("acquire", r.status, r.body[:300]))
            if r.status != 201:
                continue
            lk = r.json()
            hb = srv.request("POST", f"/api/v1/locks/{lk['id']}/heartbeat", headers=_h(srv, sub=f"gk{k}"),
                             json_body={})
            rel = srv.request("DELETE", f"/api/v1/locks/{lk['id']}",
                              headers=_h(srv, sub=f"gk{k}", **{"X-Request-ID": rid + "-rel"}))
            with lock:
                got.append(("heartbeat", hb.status, hb.body[:300]))
                got.append(("release", rel.status, rel.body[:300]))
                held.append((rid, f"Hot{k % 2}", lk["fencing_token"]))

    _concurrently([lambda w=w: writer(w) for w in range(6)] + [lambda k=k: locker(k) for k in range(8)])
    want = {"write": {201}, "acquire": {201, 409}, "heartbeat": {200}, "release": {200}}
    for kind, status, body in got:
        assert status in want[kind], (kind, status, body)
    assert held, "no acquisition was granted"
    seq = dict(srv.query("SELECT request_id, seq FROM audit_events WHERE request_id LIKE 'glk-%' "
                         "AND outcome = 'success' AND action IN ('lock.acquire', 'lock.release')"))
    for res in ("Hot0", "Hot1"):
        spans = sorted((int(seq[rid]), int(seq[rid + "-rel"]), token) for rid, r, token in held if r == res)
        for (a0, r0, t0), (a1, _, t1) in zip(spans, spans[1:]):
            assert r0 < a1, (res, spans)  # granted only after the one before was released
            assert t0 < t1, (res, spans)  # tokens rise in the order of grant
    grouped = _metric(srv, "oms_group_commit_lock_changes_total") - locks0
    if srv.backend == "sqlite":
        assert grouped > 0, "no lock change ran in a group"
    else:
        assert grouped == 0, grouped


_SLOW_COMMIT_PG = """
CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(2.5); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON commits DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.author = 'slowpoke') EXECUTE FUNCTION test_slow_commit();
"""


def test_the_next_batch_waits_for_the_branch_row_while_a_batch_commits(ctx):
    """PostgreSQL (docs/storage.md "Group commit", the hand-off): a batch
    passes its branch's queue on before its COMMIT, so a write that comes
    while the COMMIT runs is already waiting for the branch row inside the
    database, not in the process. Here a deferred trigger makes one write's
    COMMIT take 2.5 s: a batch of two forms behind a row held by another
    session; while its COMMIT sleeps, a later write's session waits on the
    branch row's lock. Every write commits, each on the one before."""
    import time
    import harness
    srv = ctx.new_server()
    if srv.backend != "pg":
        raise harness.Skip("the hand-off is PostgreSQL's: SQLite's file has one writer at a time")
    srv.execute(_SLOW_COMMIT_PG)
    b = "group/handoff"
    start = _branch(srv, b)
    handoffs0 = _metric(srv, "oms_group_commit_handoffs_total")
    got, lock = {}, threading.Lock()

    def write(sub, name):
        r = srv.request("POST", _url(b), headers=_h(srv, sub=sub), json_body={"api_name": name, "type": "string"},
                        timeout=30)
        with lock:
            got[name] = (r.status, r.header("X-Commit"))

    def waits_for_row():
        return srv.query("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                         " AND wait_event_type = 'Lock' AND query LIKE '%FROM branches WHERE name%FOR UPDATE%'")[0][0] != "0"

    def until(cond, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.02)
        return False

    held = harness.PgHeldTransaction(srv.database_url, f"SELECT name FROM branches WHERE name = '{b}' FOR UPDATE",
                                     expect=b)
    threads = [threading.Thread(target=write, args=("first", "HandA"))]
    threads[0].start()
    try:
        assert until(waits_for_row, 10), "the first write never waited for the held row"
        for sub, name in (("slowpoke", "HandB"), ("second", "HandC")):
            threads.append(threading.Thread(target=write, args=(sub, name)))
            threads[-1].start()
        time.sleep(0.5)  # both queue behind the first write's transaction
    finally:
        held.commit()
    assert until(lambda: "HandA" in got, 10), "the first write was not answered"
    assert not until(lambda: "HandB" in got, 0.3)  # the batch of B and C is in its slow COMMIT
    threads.append(threading.Thread(target=write, args=("third", "HandD")))
    threads[-1].start()
    sleeping = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'"
    assert until(lambda: srv.query(sleeping)[0][0] != "0" and waits_for_row(), 1.8), \
        "no write waited for the branch row while the batch committed"
    for t in threads:
        t.join()
    assert {n: s for n, (s, _) in got.items()} == {"HandA": 201, "HandB": 201, "HandC": 201, "HandD": 201}
    assert _metric(srv, "oms_group_commit_handoffs_total") > handoffs0
    head = srv.get(f"/api/v1/branches/{quote(b)}", headers=_h(srv)).json()["head"]
    history = _history(srv, head, start)
    assert set(history) == {c for _, c in got.values()}
    assert history[0] == got["HandD"][1] and history[-1] == got["HandA"][1]


class _HeldWriter:
    """The branch's writer held by another session of the database: on
    PostgreSQL the branch row (`FOR UPDATE`), on SQLite the file's write
    lock (`BEGIN IMMEDIATE`). A write of the server waits for it inside
    its transaction."""

    def __init__(self, srv, branch):
        import harness
        self.srv = srv
        if srv.backend == "pg":
            self.held = harness.PgHeldTransaction(
                srv.database_url, f"SELECT name FROM branches WHERE name = '{branch}' FOR UPDATE", expect=branch)
        else:
            import sqlite3
            self.held = sqlite3.connect(srv.db_path, timeout=10, isolation_level=None)
            self.held.execute("BEGIN IMMEDIATE")

    def waiting(self, secs=10):
        """Until one of the server's sessions waits for the row (PostgreSQL),
        or a second (SQLite, whose busy wait is not visible)."""
        import time
        if self.srv.backend != "pg":
            time.sleep(1.0)
            return True
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if self.srv.query("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
                              " AND wait_event_type = 'Lock'"
                              " AND query LIKE '%FROM branches WHERE name%FOR UPDATE%'")[0][0] != "0":
                return True
            time.sleep(0.02)
        return False

    def release(self):
        if self.srv.backend == "pg":
            self.held.commit()
        else:
            self.held.execute("ROLLBACK")
            self.held.close()


def _queued(srv, n, secs=15):
    """Until n writes wait in the server's group-commit queues."""
    import time
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if _metric(srv, "oms_group_commit_queued") == n:
            return True
        time.sleep(0.02)
    return False


def _burst(srv, branch, first, rest):
    """`first` (a call that writes to branch) waits for the branch's writer,
    held by another session; the calls of `rest` queue behind it one after
    the other, in that order; then the writer is released. Returns when
    every call returned."""
    held = _HeldWriter(srv, branch)
    threads = [threading.Thread(target=first)]
    threads[0].start()
    try:
        assert held.waiting(), "the first write never waited for the held writer"
        for k, fn in enumerate(rest, 1):
            threads.append(threading.Thread(target=fn))
            threads[-1].start()
            assert _queued(srv, k), f"write {k} did not queue behind the first"
    finally:
        held.release()
    for t in threads:
        t.join()


def test_writers_that_queue_while_a_batch_waits_join_it(ctx):
    """docs/storage.md "Writers join the batch that runs": a write that
    finds its branch's group free, after transactions that had company,
    runs as a batch that writers queued meanwhile join after its last write,
    instead of waiting for a transaction of their own behind it. Here the
    branch's writer is held by another session twice: first two writes
    queue behind a third (company), then one write's batch waits for the
    held writer while three more queue; once released, the four commit in
    one transaction (one group transaction of four writes), each on the one
    before, and the metric counts the three that joined."""
    srv = ctx.new_server(env={"OMS_DB_BUSY_TIMEOUT_MS": "20000", "OMS_DB_LOCK_TIMEOUT_MS": "20000"})
    b = "group/join"
    start = _branch(srv, b)
    got, lock = {}, threading.Lock()

    def write(name):
        r = srv.request("POST", _url(b), headers=_h(srv, sub=name.lower()),
                        json_body={"api_name": name, "type": "string"}, timeout=60)
        with lock:
            got[name] = (r.status, r.header("X-Commit"))

    def burst(first, rest):
        _burst(srv, b, lambda: write(first), [lambda n=n: write(n) for n in rest])

    burst("JoinA", ("JoinB", "JoinC"))
    joined0 = _metric(srv, "oms_group_commit_joined_total")
    batches0 = _metric(srv, "oms_group_commits_total")
    writes0 = _metric(srv, "oms_group_commit_writes_total")
    burst("JoinD", ("JoinE", "JoinF", "JoinG"))
    assert {n: s for n, (s, _) in got.items()} == {f"Join{x}": 201 for x in "ABCDEFG"}, got
    assert _metric(srv, "oms_group_commit_joined_total") - joined0 == 3
    assert _metric(srv, "oms_group_commits_total") - batches0 == 1
    assert _metric(srv, "oms_group_commit_writes_total") - writes0 == 4
    assert _metric(srv, "oms_group_commit_queued") == 0
    later = [got[f"Join{x}"][1] for x in "DEFG"]
    head = srv.get(f"/api/v1/branches/{quote(b)}", headers=_h(srv)).json()["head"]
    history = _history(srv, head, start)
    assert set(history) == {c for _, c in got.values()}
    assert history[0] != got["JoinD"][1] and set(history[:4]) == set(later)
    assert history[3] == got["JoinD"][1]  # the batch's first write, the others on it in the order they joined


# ---- content rows beside the batch (PostgreSQL; docs/storage.md "Content rows beside the batch") ----

_CONTENT_GAPS = (
    # a commit whose tree is not stored
    "SELECT count(*) FROM commits c WHERE NOT EXISTS (SELECT 1 FROM trees t WHERE t.id = c.tree)",
    # a tree whose root node is not stored
    "SELECT count(*) FROM trees t WHERE NOT EXISTS (SELECT 1 FROM tree_nodes n WHERE n.hash = t.root)",
    # an interior node naming a child that is not stored
    "SELECT count(*) FROM tree_nodes n CROSS JOIN generate_series(0, 3) AS k(i)"
    " WHERE get_byte(n.body, 1) = 1 AND 3 + 32 * (k.i + 1) <= length(n.body)"
    " AND NOT EXISTS (SELECT 1 FROM tree_nodes x WHERE x.hash = substring(n.body from 4 + 32 * k.i for 32))",
    # a branch's resource whose document is not stored
    "SELECT count(*) FROM branch_resources r WHERE r.hash <> ''"
    " AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.hash = r.hash)",
)


def _content_complete(srv):
    for q in _CONTENT_GAPS:
        assert int(srv.query(q)[0][0]) == 0, q


def _read_back_after_restart(srv, branch, acked):
    """A restarted server (nothing cached) reads each acknowledged write at
    its own commit: its content was stored with it."""
    srv.stop()
    srv.start()
    for name, commit in acked:
        r = srv.get(_url(branch, name=name) + f"?at={commit}", headers=_h(srv))
        assert r.status == 200 and r.json()["api_name"] == name, (name, r)


def _writers_beside(srv, branch, prefix, each):
    """16 writers, `each` shared properties each, on branch: every write
    201, some batch's content beside it and none lost, every commit's
    content stored and read back by a restarted server. Content goes beside
    batches that begin with two writes or more (a batch begun alone keeps
    it, docs/storage.md): the writers' first writes queue behind a held
    branch writer, so that the batch after it begins with all of them."""
    beside0 = _metric(srv, 'oms_group_commit_content_total{outcome="beside"}')
    got, lock = [], threading.Lock()

    def write(w, i):
        name = f"{prefix}{w}x{i}"
        r = srv.request("POST", _url(branch), headers=_h(srv, sub=f"{prefix.lower()}{w}"),
                        json_body={"api_name": name, "type": "string"}, timeout=60)
        with lock:
            got.append((name, r.status, r.header("X-Commit")))

    # five queue: the server's handler threads (eight) also serve /metrics
    _burst(srv, branch, lambda: write(0, 0), [lambda w=w: write(w, 0) for w in range(1, 6)])
    _concurrently([lambda w=w: write(w, 0) for w in range(6, 16)])
    _concurrently([lambda w=w: [write(w, i) for i in range(1, each)] for w in range(16)])
    assert [s for _, s, _ in got] == [201] * (16 * each), sorted({s for _, s, _ in got})
    assert _metric(srv, 'oms_group_commit_content_total{outcome="beside"}') > beside0
    assert _metric(srv, 'oms_group_commit_content_total{outcome="lost"}') == 0
    _content_complete(srv)
    _read_back_after_restart(srv, branch, [(n, c) for n, _, c in got])


def test_a_batch_writes_its_content_beside_it_and_every_commit_names_stored_content(ctx):
    """On PostgreSQL a batch's objects, trees and tree nodes go on a waiting
    member's connection in a transaction of their own, settled before the
    batch's COMMIT: every commit names stored content, which a restarted
    server reads back."""
    import harness
    if ctx.backend != "pg":
        raise harness.Skip("PostgreSQL: SQLite has one writer, whose transaction writes everything")
    srv = ctx.new_server()
    b = "group/content"
    _branch(srv, b)
    _writers_beside(srv, b, "C", 8)


def test_reads_of_content_inside_a_batch_see_what_the_batch_wrote_beside_it(ctx):
    """A branch whose compatibility policy is transitive reads tree nodes and
    documents (its tags' trees) in every write of a batch: each such read
    first commits the content sent beside so far, and the batch goes on
    with a new content transaction. Every write still commits, with its
    content stored, on a database whose default isolation is repeatable
    read (the server's transactions ask for read committed)."""
    import harness
    if ctx.backend != "pg":
        raise harness.Skip("PostgreSQL: SQLite has one writer, whose transaction writes everything")
    srv = ctx.new_server()
    harness._psql(harness.PG_URL, f"ALTER DATABASE {srv.dbname} SET default_transaction_isolation = 'repeatable read'")
    srv.stop()
    srv.start()
    b = "group/content-reads"
    _branch(srv, b)
    r = srv.request("POST", _url(b), headers=_h(srv), json_body={"api_name": "Released", "type": "string"})
    assert r.status == 201, r
    r = srv.request("POST", "/api/v1/tags", headers=_h(srv),
                    json_body={"name": "content-reads-v1", "commit": r.header("X-Commit"), "message": "release"})
    assert r.status == 201, r
    r = srv.request("PUT", f"/api/v1/branches/{quote(b)}/settings", headers=srv.auth("admin", ("admin",)),
                    json_body={"compatibility": "block", "transitive": True})
    assert r.status == 200, r
    _writers_beside(srv, b, "R", 6)



# The content transaction alone (the one that turns synchronous_commit off)
# sleeps in each insert of a tree: its sessions are found sleeping, and no
# other session of the server does.
_SLOW_CONTENT_PG = """
CREATE FUNCTION test_slow_content() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF current_setting('synchronous_commit') = 'off' THEN PERFORM pg_sleep(0.05); END IF; RETURN NULL; END $$;
CREATE TRIGGER test_slow_content AFTER INSERT ON trees FOR EACH STATEMENT EXECUTE FUNCTION test_slow_content();
"""


def test_content_connections_killed_under_groups_lose_no_acknowledged_write(ctx):
    """PostgreSQL ends the sessions that hold a batch's content transaction
    (a trigger makes them sleep, so that they can be told and caught)
    while 16 writers keep groups running: the batch runs again without it,
    every write is answered 201 or 503, every 201 is in the history, and no
    commit names content that is not stored."""
    import time
    import harness
    if ctx.backend != "pg":
        raise harness.Skip("PostgreSQL sessions")
    srv = ctx.new_server()
    srv.execute(_SLOW_CONTENT_PG)
    b = "group/content-killed"
    start = _branch(srv, b)
    stop = threading.Event()
    threads, got = _writers_until(srv, b, "Q", stop, "content-kill-")
    lost, deadline = 0, time.time() + 20
    while lost < 3 and time.time() < deadline:
        harness._psql(harness.PG_URL, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                      f"WHERE datname = '{srv.dbname}' AND wait_event = 'PgSleep'"
                                      " AND query LIKE 'INSERT INTO trees%'")
        time.sleep(0.02)
        lost = _metric(srv, 'oms_group_commit_content_total{outcome="lost"}')
    stop.set()
    for t in threads:
        t.join()
    assert lost >= 3, lost
    assert {s for _, s, _ in got} <= {201, 503}, sorted({s for _, s, _ in got})
    acked = [(n, c) for n, s, c in got if s == 201]
    assert len(acked) > 50, len(got)
    r = srv.request("POST", _url(b), headers=_h(srv), json_body={"api_name": "After", "type": "string"})
    assert r.status == 201, r
    head = srv.get(f"/api/v1/branches/{quote(b)}", headers=_h(srv)).json()["head"]
    # the first-parent history, read in one query: a run whose kills came
    # late made thousands of commits, one GET each took minutes
    history = {row[0] for row in srv.query(
        "WITH RECURSIVE h(id) AS (SELECT '" + head + "'::text UNION ALL SELECT p.parent_id FROM commit_parents p"
        " JOIN h ON p.commit_id = h.id AND p.idx = 0) SELECT id FROM h")}
    assert start in history and {c for _, c in acked} <= history
    _content_complete(srv)
    _read_back_after_restart(srv, b, acked[::max(7, len(acked) // 200)])
