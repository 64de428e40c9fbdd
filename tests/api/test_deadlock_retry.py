"""A write that PostgreSQL picks as a deadlock's victim runs again
(src/txn/change.c, docs/storage.md "Group commit").

The server's own transactions take their locks in one order (docs/locks.md),
so the cycle is closed by a second client of the database, a psql session:
it takes the branch's advisory lock (the one a commit's lock check takes
shared, right after the branch row), the server's commit takes the branch
row and waits for that lock, then psql asks for the branch row. psql waits
with a long deadlock_timeout, so the server's backends (3 s, set on the
database: the check runs once, that long after a wait begins, and must find
the cycle closed) find it and the commit's transaction is the one rolled
back (40P01). Before, the request was answered 503; now it runs again, waits for
the branch row until psql commits, and is answered 201 with its commit.
pg_stat_database counts the deadlock, so the test knows the cycle happened
(a lock timeout instead would also free psql, and answer 503).

SQLite's writers take its one write lock up front (BEGIN IMMEDIATE): no
deadlock to close there, SKIP."""

import hashlib
import subprocess
import threading
import time

from harness import Skip

BACKENDS = ("pg",)


def _branch_key(branch):
    """oms_lock_branch_key (src/store/locks_sql.c): the first 8 bytes of
    SHA-256("oms.lock.branch:" + name), big-endian, signed."""
    h = hashlib.sha256(("oms.lock.branch:" + branch).encode()).digest()
    return int.from_bytes(h[:8], "big", signed=True)


class _Session:
    """An interactive psql session: each line runs when written."""

    def __init__(self, url):
        self.p = subprocess.Popen(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, bufsize=1)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.strip())

    def send(self, sql):
        self.p.stdin.write(sql + "\n")
        self.p.stdin.flush()

    def wait_for(self, marker, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if marker in self.lines:
                return True
            time.sleep(0.02)
        return False

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except Exception:
            self.p.kill()


def _scalar(srv, sql):
    return srv.query(sql)[0][0]


def _warm_branch(srv, branch, issue):
    """A developer's headers and a branch with one commit: its state
    cached, so the next commit goes straight to its transaction."""
    h = srv.auth("dl", ("developer",))
    h["X-Issue-ID"] = issue
    r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": branch, "from": "main"})
    assert r.status == 201, r
    r = srv.request("POST", f"/api/v1/schemas/{branch}/shared-properties", headers=h,
                    json_body={"api_name": "Warm", "type": "string"})
    assert r.status == 201, r
    return h


def test_deadlock_victim_write_runs_again(ctx):
    if ctx.backend != "pg":
        raise Skip("SQLite takes its write lock up front: no deadlock")
    # waits for a lock end with a timeout well after the deadlock check;
    # without the sole-writer lease: the test's own session would make a
    # holder give it back, and the give-back's wait for the blocked commit
    # holds other writers on the write guard, another advisory lock not
    # granted beside the one counted below
    srv = ctx.new_server(env={"OMS_DB_LOCK_TIMEOUT_MS": "30000", "OMS_PG_SOLE_WRITER": "0"})
    srv.execute(f"ALTER DATABASE {srv.dbname} SET deadlock_timeout = '3s'")
    srv.stop()
    srv.start()  # its connections take the setting
    h = _warm_branch(srv, "dl", "DL-1")
    before = int(_scalar(srv, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))

    s = _Session(srv.database_url)
    try:
        s.send("SET deadlock_timeout = '60s';")
        s.send("BEGIN;")
        s.send(f"SELECT pg_advisory_xact_lock({_branch_key('dl')});")
        s.send("\\echo HELD")
        assert s.wait_for("HELD", 10), s.lines

        answer = {}

        def write():
            answer["r"] = srv.request("POST", "/api/v1/schemas/dl/shared-properties", headers=h,
                                      json_body={"api_name": "Victim", "type": "string"}, timeout=60)

        t = threading.Thread(target=write)
        t.start()
        # the commit holds the branch row and waits for the advisory lock
        end = time.monotonic() + 10
        while time.monotonic() < end and _scalar(
                srv, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") != "1":
            time.sleep(0.02)
        assert _scalar(srv, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == "1"
        # the cycle: psql now waits for the row the commit holds
        s.send("SELECT 1 FROM branches WHERE name = 'dl' FOR UPDATE;")
        s.send("\\echo ROW")
        # granted only once the server's transaction is rolled back
        assert s.wait_for("ROW", 10), s.lines
        time.sleep(0.3)  # the retry now waits for the branch row psql holds
        assert t.is_alive(), answer
        s.send("COMMIT;")
        s.send("\\echo DONE")
        assert s.wait_for("DONE", 10), s.lines
        t.join(30)
    finally:
        s.close()
    r = answer["r"]
    assert r.status == 201, r
    got = srv.get("/api/v1/schemas/dl/shared-properties/Victim", headers=h)
    assert got.status == 200, got
    # one commit and one audit event: nothing of the rolled-back attempt
    events = srv.query("SELECT outcome, commit_id FROM audit_events WHERE resource_id = 'Victim'")
    assert len(events) == 1 and events[0][0] == "success" and events[0][1], events
    changes = srv.query("SELECT commit_id FROM commit_changes WHERE resource = 'shared-properties/Victim'")
    assert [c for (c,) in changes] == [events[0][1]], (changes, events)
    # the stats of the rolled-back backend reach the view when it goes idle
    end = time.monotonic() + 5
    after = before
    while time.monotonic() < end and after == before:
        time.sleep(0.1)
        after = int(_scalar(srv, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))
    # One deadlock, or two: when the victim's transaction ends, psql's
    # waiting FOR UPDATE and the victim's retry race for the row (a locker
    # that sees the aborted transaction's mark takes the row without
    # queueing behind psql); a retry that wins it then waits for psql's
    # advisory lock while psql waits for the row, and is the victim again.
    # Its second retry is the write answered above, so the outcome is the
    # same (a write runs again up to twice, src/txn/change.c).
    assert before + 1 <= after <= before + 2, (before, after)


def test_a_write_rolled_back_every_time_is_tried_three_times(ctx):
    """A write the database rolls back for another transaction every time
    (a serialization failure, 40001, raised by a trigger) is tried three
    times in all (src/txn/change.c, MAX_RETRIES), then answered 503. On a
    quiet branch the group runs it alone with those retries; running it
    alone once more after them tried it six times."""
    if ctx.backend != "pg":
        raise Skip("SQLite takes its write lock up front: nothing rolls a write back for another")
    srv = ctx.new_server()
    h = _warm_branch(srv, "doomed", "DL-2")
    # nextval is not rolled back with the transaction: it counts attempts
    srv.execute("CREATE SEQUENCE doomed_attempts;"
                "CREATE FUNCTION doomed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " PERFORM nextval('doomed_attempts');"
                " RAISE EXCEPTION 'rolled back for another' USING ERRCODE = '40001'; END $$;"
                "CREATE TRIGGER doomed BEFORE INSERT ON commit_changes FOR EACH ROW"
                " WHEN (NEW.resource = 'shared-properties/Doomed') EXECUTE FUNCTION doomed()")
    r = srv.request("POST", "/api/v1/schemas/doomed/shared-properties", headers=h,
                    json_body={"api_name": "Doomed", "type": "string"}, timeout=30)
    assert r.status == 503, r
    attempts = int(_scalar(srv, "SELECT last_value FROM doomed_attempts"))
    assert attempts == 3, attempts
    assert srv.get("/api/v1/schemas/doomed/shared-properties/Doomed", headers=h).status == 404
    # the branch writes on: only that write was refused
    r = srv.request("POST", "/api/v1/schemas/doomed/shared-properties", headers=h,
                    json_body={"api_name": "After", "type": "string"})
    assert r.status == 201, r
