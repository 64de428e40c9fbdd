"""Helpers shared by the audit tests (no tests here): an independent
implementation of the event hash of docs/audit.md, direct database access
for fixtures and tampering, and the CLI verifier."""

import hashlib
import json
import os
import secrets
import sqlite3
import subprocess
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


EVENT_COLS = COLS[:-2]  # the event row's own columns; prev_hash/hash live in audit_chain (version 8)


def _typed(d):
    for k in ("seq", "time_ms", "http_status", "pos"):
        if d.get(k) is not None:
            d[k] = int(d[k])
    return d


def rows(srv, where="1=1"):
    """Events in seq order, each with its chain link (prev_hash and hash are
    None until the chainer has reached it) and its chain position."""
    cols = ", ".join(f"e.{c}" for c in EVENT_COLS) + ", c.prev_hash, c.hash, c.pos"
    out = srv.query(f"SELECT {cols} FROM audit_events e LEFT JOIN audit_chain c ON c.event_seq = e.seq"
                    f" WHERE {where} ORDER BY e.seq")
    return [_typed(dict(zip(COLS + ["pos"], r))) for r in out]


def chain(srv):
    """Chain rows in position order, each with its event's columns (None
    when the event row is gone)."""
    cols = "c.pos, c.event_seq, " + ", ".join(f"e.{c}" for c in EVENT_COLS) + ", c.prev_hash, c.hash"
    out = srv.query(f"SELECT {cols} FROM audit_chain c LEFT JOIN audit_events e ON e.seq = c.event_seq"
                    " ORDER BY c.pos")
    res = []
    for r in out:
        d = _typed(dict(zip(["pos", "event_seq"] + COLS, r)))
        d["event_seq"] = int(d["event_seq"])
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
    """TEST FIXTURE: inserts events straight into the database, for actions
    no public route produces yet, as the service does: the event row and its
    queue row in one transaction (the chainer links them)."""
    stmts = []
    now = int(time.time() * 1000)
    for e in events:
        row = {c: None for c in EVENT_COLS if c != "seq"}
        row.update({"event_id": "evt_" + secrets.token_hex(16), "time_ms": now, "outcome": "success"})
        row.update(e)
        names = list(row)
        stmts.append(f"INSERT INTO audit_events ({', '.join(names)}) VALUES "
                     f"({', '.join(sql_literal(row[c]) for c in names)});")
        stmts.append(f"INSERT INTO audit_unchained (seq) SELECT seq FROM audit_events WHERE event_id = '{row['event_id']}';")
    execute(srv, "BEGIN;\n" + "\n".join(stmts) + "\nCOMMIT;")


def drop_protection(srv, url=None, path=None):
    """What an attacker with database access does first."""
    if srv.backend == "sqlite":
        execute(srv, "DROP TRIGGER IF EXISTS audit_events_no_update; DROP TRIGGER IF EXISTS audit_events_no_delete;"
                     " DROP TRIGGER IF EXISTS audit_checkpoints_no_update;"
                     " DROP TRIGGER IF EXISTS audit_checkpoints_no_delete;"
                     " DROP TRIGGER IF EXISTS audit_chain_no_update; DROP TRIGGER IF EXISTS audit_chain_no_delete;",
                path=path)
    else:
        execute(srv, "ALTER TABLE audit_events DISABLE TRIGGER USER;"
                     " ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;"
                     " ALTER TABLE audit_chain DISABLE TRIGGER USER;", url=url)


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
    """Until every event is chained and the chain sealed (one round every
    250 ms); returns the last chain position."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        unchained, last, sealed = srv.query(
            "SELECT (SELECT count(*) FROM audit_events e WHERE NOT EXISTS (SELECT 1 FROM audit_chain c"
            " WHERE c.event_seq = e.seq) AND e.seq > (SELECT legacy_upto FROM audit_chain_head)),"
            " (SELECT COALESCE(MAX(pos), 0) FROM audit_chain), (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_checkpoints)")[0]
        if int(unchained) == 0 and int(sealed) >= int(last):
            return int(last)
        time.sleep(0.05)
    raise AssertionError("events were not chained and sealed within the time limit")


SEAL_LOCK_KEY = 5714731494797968716  # OMS_AUDIT_SEAL_LOCK_KEY (src/store/audit_sql.h)


def held_seal_lock(srv):
    """PostgreSQL: a psql session holding the sealer's advisory lock, so the
    chainer's rounds skip (their try-lock fails) and whatever takes the lock
    waits, until it is closed (stdin.close())."""
    p = subprocess.Popen(["psql", srv.database_url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    p.stdin.write(f"SELECT pg_advisory_lock({SEAL_LOCK_KEY});\n\\echo HELD\n")
    p.stdin.flush()
    for line in p.stdout:
        if line.strip() == "HELD":
            return p
    raise AssertionError("psql could not take the sealer's lock")
