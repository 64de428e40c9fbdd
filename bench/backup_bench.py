"""Backup and restore of a 10,000-type ontology with 100,000 audit events
(SPEC §12: RSS <= 100 MB): time and peak RSS of `oms backup` (plain and
zstd), `oms backup --verify`, and `oms restore` into an empty database of
the same and of the other backend.

    python3 bench/backup_bench.py [sqlite|pg] [types] [events]

The types go in through the batch API (as bench/ontology_memory.py); the
events are denial events written straight into the tables and chained and
sealed by `oms audit seal` (the HTTP path of an event is
bench/audit_bench.sh's subject, not this one's).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "api"))
sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from ontology_memory import object_type  # noqa: E402

EVENT_SQL = """INSERT INTO audit_events (event_id, time_ms, actor_sub, actor_roles, client_addr, user_agent,
 action, outcome, http_status, request_id, method, route, resource_kind, resource_branch, detail)
SELECT 'evt_bench_' || {i}, 1796000000000 + {i}, 'user' || ({i} % 50), '["viewer"]', '10.0.0.' || ({i} % 200),
 'bench/1.0', 'authz.denied', 'denied', 403, 'req-' || {i}, 'POST', '/api/v1/schemas/{{branch}}/object-types',
 'object-types', 'bench', '{{"missing_permission":"schema:write","reason":"rbac"}}'"""
QUEUE_SQL = ("INSERT INTO audit_unchained (seq) SELECT seq FROM audit_events e WHERE NOT EXISTS"
             " (SELECT 1 FROM audit_chain c WHERE c.event_seq = e.seq) AND NOT EXISTS"
             " (SELECT 1 FROM audit_unchained q WHERE q.seq = e.seq)")


def timed(args, env, label):
    """(seconds, peak RSS MB, stdout) of one oms command. /usr/bin/time
    measures the peak: a child forked from Python would start its count
    at Python's own size."""
    rss_file = tempfile.mktemp(prefix="oms-rss-")
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + args, env=env, capture_output=True, text=True)
    secs = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{label}: exit {p.returncode}: {p.stderr[-2000:]}")
    with open(rss_file) as f:
        kb = int(f.read().strip().splitlines()[-1])
    os.remove(rss_file)
    return secs, kb / 1024.0, p.stdout


def add_events(srv, n):
    chunk = 20000
    for start in range(0, n, chunk):
        if srv.backend == "sqlite":
            import sqlite3
            con = sqlite3.connect(srv.db_path, timeout=30)
            con.execute("WITH RECURSIVE g(x) AS (SELECT %d UNION ALL SELECT x + 1 FROM g WHERE x < %d) "
                        % (start + 1, min(n, start + chunk)) + EVENT_SQL.format(i="x") + " FROM g")
            con.execute(QUEUE_SQL)
            con.commit()
            con.close()
        else:
            harness._psql(srv.database_url, EVENT_SQL.format(i="x") + " FROM generate_series(%d, %d) AS x"
                          % (start + 1, min(n, start + chunk)) + "; " + QUEUE_SQL)
    while True:  # chain and seal them, 10,000 per round
        r = srv.run_cli("audit", "seal", timeout=600)
        assert r.returncode == 0, r.stderr
        left = srv.query("SELECT count(*) FROM audit_unchained")[0][0]
        if int(left) == 0:
            break


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    types = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    events = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    other = "pg" if backend == "sqlite" else "sqlite"
    if not harness.PG_URL:
        other = backend if backend == "sqlite" else None
    tmp = tempfile.mkdtemp(prefix="oms-bkbench-")
    srv = harness.Server(backend, env={"OMS_LOG_LEVEL": "warn"})
    targets = []
    failed = 0
    try:
        h = srv.auth("bench", ["admin"])
        h["X-Issue-ID"] = "OMS-1"
        r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": "bench"})
        assert r.status == 201, r
        base = [{"op": "create", "kind": "interfaces", "document": {"api_name": "Named", "properties": [
                    {"api_name": "name", "type": "string"}]}},
                {"op": "create", "kind": "shared-properties", "document": {"api_name": "Email", "type": "string"}}]
        assert srv.request("POST", "/api/v1/schemas/bench/changes", headers=h,
                           json_body={"operations": base}).status == 200
        for start in range(0, types, 500):
            ops = [{"op": "create", "kind": "object-types", "document": object_type(i)}
                   for i in range(start, min(types, start + 500))]
            r = srv.request("POST", "/api/v1/schemas/bench/changes", headers=h, json_body={"operations": ops},
                            timeout=300)
            assert r.status == 200, r
        srv.stop()
        add_events(srv, events)
        key = srv.env.get("OMS_AUDIT_KEY") or open(os.path.join(os.path.dirname(srv.db_path), "audit.key")).read().strip()
        env = dict(srv.env, OMS_AUDIT_KEY=key)
        nev = srv.query("SELECT count(*) FROM audit_events")[0][0]
        print(f"backend={backend} types={types} audit_events={nev}")
        rows = []
        plain, zst = os.path.join(tmp, "b.omsbak"), os.path.join(tmp, "b.omsbak.zst")
        s, m, _ = timed([harness.OMS_BIN, "backup", "-o", plain, "--quiet"], env, "backup")
        rows.append(("backup (plain)", s, m, os.path.getsize(plain)))
        s, m, _ = timed([harness.OMS_BIN, "backup", "-o", zst, "--quiet"], env, "backup zstd")
        rows.append(("backup (zstd -3)", s, m, os.path.getsize(zst)))
        s, m, _ = timed([harness.OMS_BIN, "backup", "--verify", zst], env, "verify")
        rows.append(("verify (zstd file, no database)", s, m, None))
        for tb in [backend] + ([other] if other and other != backend else []):
            t = harness.Server(tb, start=False, env={"OMS_AUDIT_KEY": key})
            targets.append(t)
            s, m, _ = timed([harness.OMS_BIN, "restore", zst, "--quiet"], dict(t.env), f"restore into {tb}")
            rows.append((f"restore into {tb} (both passes)", s, m, None))
            r = t.run_cli("audit", "verify", timeout=600)
            assert r.returncode == 0, r.stdout + r.stderr
        for label, s, m, size in rows:
            ok = m <= 100
            failed += 0 if ok else 1
            extra = f", file {size / 1e6:.1f} MB" if size else ""
            print(f"{label}: {s:.2f} s, peak RSS {m:.1f} MB{extra}{'' if ok else '  (over 100 MB)'}")
        print("backup_bench: %d passed, %d failed" % (1 if not failed else 0, 1 if failed else 0))
    finally:
        srv.destroy()
        for t in targets:
            t.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
