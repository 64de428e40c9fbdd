"""Helpers shared by the audit tests (no tests here): an independent
implementation of the event hash of docs/audit.md, direct database access
for fixtures and tampering, and the CLI verifier."""

import hashlib
import json
import os
import secrets
import sqlite3
import time

import harness

COLS = ["seq", "event_id", "time_ms", "actor_sub", "actor_roles", "client_addr", "user_agent", "action",
        "outcome", "http_status", "request_id", "method", "route", "resource_kind", "resource_branch",
        "resource_id", "issue_keys", "override_id", "commit_id", "before_hash", "after_hash", "changed_paths",
        "detail", "prev_hash", "hash"]
GENESIS = "0" * 64


def event_hash(row):
    """SHA-256 of "oms-audit-event/1" + "|<len>:<bytes>" (or "|~" for NULL)
    for every column from seq to prev_hash."""
    h = hashlib.sha256(b"oms-audit-event/1")
    for c in COLS[:-1]:
        v = row.get(c)
        if v is None:
            h.update(b"|~")
        else:
            b = str(v).encode()
            h.update(b"|%d:" % len(b) + b)
    return h.hexdigest()


def sql_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


def rows(srv, where="1=1"):
    out = srv.query(f"SELECT {', '.join(COLS)} FROM audit_events WHERE {where} ORDER BY seq")
    res = []
    for r in out:
        d = dict(zip(COLS, r))
        for k in ("seq", "time_ms", "http_status"):
            if d[k] is not None:
                d[k] = int(d[k])
        res.append(d)
    return res


def execute(srv, sql, url=None, path=None):
    """Runs statements that write (the harness's query() is read-only)."""
    if srv.backend == "sqlite":
        con = sqlite3.connect(path or srv.db_path, timeout=10, isolation_level=None)
        try:
            con.executescript(sql)
        finally:
            con.close()
    else:
        harness._psql(url or srv.database_url, sql)


def append_fixture_events(srv, events):
    """TEST FIXTURE: appends correctly chained events straight into the
    database, for actions no public route produces yet. The server must be
    stopped (the chain head is read and moved here, as the service does)."""
    assert srv.proc is None, "stop the server first"
    head = srv.query("SELECT seq, hash FROM audit_chain_head WHERE id = 1")[0]
    seq, prev = int(head[0]), head[1]
    stmts = []
    now = int(time.time() * 1000)
    for e in events:
        seq += 1
        row = {c: None for c in COLS}
        row.update({"seq": seq, "event_id": "evt_" + secrets.token_hex(16), "time_ms": now, "outcome": "success"})
        row.update(e)
        row["prev_hash"] = prev
        row["hash"] = event_hash(row)
        prev = row["hash"]
        stmts.append(f"INSERT INTO audit_events ({', '.join(COLS)}) VALUES "
                     f"({', '.join(sql_literal(row[c]) for c in COLS)});")
    stmts.append(f"UPDATE audit_chain_head SET seq = {seq}, hash = '{prev}' WHERE id = 1;")
    execute(srv, "BEGIN;\n" + "\n".join(stmts) + "\nCOMMIT;")


def drop_protection(srv, url=None, path=None):
    """What an attacker with database access does first."""
    if srv.backend == "sqlite":
        execute(srv, "DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;"
                     " DROP TRIGGER IF EXISTS audit_checkpoints_no_update;"
                     " DROP TRIGGER IF EXISTS audit_checkpoints_no_delete;", path=path)
    else:
        execute(srv, "ALTER TABLE audit_events DISABLE TRIGGER USER;"
                     " ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;", url=url)


class Clone:
    """A copy of a stopped server's database (file copy on SQLite, CREATE
    DATABASE ... TEMPLATE on PostgreSQL) with the environment to reach it."""

    def __init__(self, srv):
        assert srv.proc is None
        self.srv = srv
        self.env = {}
        if srv.backend == "sqlite":
            self.path = os.path.join(os.path.dirname(srv.db_path), "clone-" + secrets.token_hex(4) + ".db")
            src = sqlite3.connect(srv.db_path)
            dst = sqlite3.connect(self.path)
            src.backup(dst)
            src.close()
            dst.close()
            self.url = None
            self.env["DATABASE_URL"] = "sqlite:" + self.path
        else:
            self.path = None
            self.name = "clone_" + secrets.token_hex(5)
            harness._psql(harness.PG_URL, f"CREATE DATABASE {self.name} TEMPLATE {srv.dbname}")
            self.url = harness.PG_URL.rsplit("/", 1)[0] + "/" + self.name
            self.env["DATABASE_URL"] = self.url

    def exec(self, sql):
        execute(self.srv, sql, url=self.url, path=self.path)

    def query(self, sql):
        if self.srv.backend == "sqlite":
            con = sqlite3.connect(self.path)
            try:
                return [tuple(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        out = harness._psql(self.url, sql, tuples=True)
        return [tuple(None if c == "\\N" else c for c in line.split("\x1f")) for line in out.splitlines() if line]

    def verify(self):
        return verify(self.srv, env=self.env)

    def drop(self):
        if self.srv.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.remove(self.path + suffix)
        else:
            harness._psql(harness.PG_URL, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def verify(srv, env=None):
    """`oms audit verify --json`: (exit code, result)."""
    r = srv.run_cli("audit", "verify", "--json", env=env)
    assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    return r.returncode, json.loads(r.stdout)


def wait_sealed(srv, timeout=5):
    """Until every event is sealed (the sealer runs every 250 ms)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        mx = srv.query("SELECT COALESCE(MAX(seq), 0) FROM audit_events")[0][0]
        sealed = srv.query("SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints")[0][0]
        if int(sealed) >= int(mx):
            return int(mx)
        time.sleep(0.05)
    raise AssertionError("events were not sealed within the time limit")
