"""Commits and diffs against ontology size (SPEC §12, issue #21), driven by
bench/commit_scale.sh (which builds the HTTP client and passes it in
$BENCH_CLIENT). For each round, backend, size (types) and binary, on a fresh
server and database:

  - one-client commit latency (p50) on a branch of SIZE object types;
  - 16 clients committing on that one branch: commits/s and p99;
  - a diff of 100 changed types between two commits, asked 10 times after
    24 later commits: the first answer and the median of the rest;
  - on PostgreSQL, pgbench running a commit-shaped transaction (branch row
    FOR UPDATE on the same one branch, three object inserts, commit, change
    and audit rows, head update) from 16 clients, measured in the same round:
    the ratio oms/pgbench is what to compare between machines.

Binaries are interleaved inside each round so a shared machine's drift hits
every variant alike; medians over rounds are printed at the end.

    python3 bench/diff_commit_scale.py "BIN1 BIN2" "sqlite pg" "100 10000" ROUNDS SECONDS
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "api"))
import harness  # noqa: E402

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"
CLIENT = os.environ.get("BENCH_CLIENT")


def doc(i, note="v1"):
    return {"api_name": f"Type{i:05d}", "status": "active", "description": f"type {i} {note}",
            "properties": [{"api_name": "id", "type": "string", "required": True},
                           {"api_name": "name", "type": "string"},
                           {"api_name": "score", "type": "double"}],
            "primary_key": "id"}


def batch(srv, h, branch, ops):
    for start in range(0, len(ops), 1000):
        r = srv.request("POST", f"/api/v1/schemas/{branch}/changes", headers=h,
                        json_body={"operations": ops[start:start + 1000]}, timeout=600)
        assert r.status == 200, r


def head(srv, h, branch):
    r = srv.get(f"/api/v1/branches/{branch}", headers=h)
    assert r.status == 200, r
    return r.json()["head"]


def client(port, token, secs, clients, branch):
    out = subprocess.run([CLIENT, "write", str(port), token, str(secs), str(clients), branch],
                         capture_output=True, text=True, timeout=secs * 10 + 60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


PGBENCH = """BEGIN;
SELECT head FROM branches WHERE name = 'one' FOR UPDATE;
INSERT INTO objects VALUES (md5(random()::text) || 'r', repeat('x', 300)) ON CONFLICT DO NOTHING;
INSERT INTO objects VALUES (md5(random()::text) || 't', repeat('y', 200)) ON CONFLICT DO NOTHING;
INSERT INTO objects VALUES (md5(random()::text) || 'k', repeat('z', 100)) ON CONFLICT DO NOTHING;
\\set c random(1, 1000000000)
INSERT INTO commits VALUES (md5(:c::text || random()::text), 't', 'm', 1);
INSERT INTO changes VALUES (md5(:c::text || random()::text), 'shared-properties/X', 'h');
WITH e AS (INSERT INTO ev (event_id, time_ms, actor_sub, action, outcome, http_status, request_id, route, detail) VALUES (md5(random()::text), 1, 'dev', 'shared_property.create', 'success', 201, md5(random()::text), '/api/v1/schemas/{branch}/{kind}', '{"operations":1}') RETURNING seq) INSERT INTO unchained (seq) SELECT seq FROM e;
UPDATE branches SET head = md5(random()::text) WHERE name = 'one';
COMMIT;
"""

PGBENCH_SCHEMA = """
CREATE TABLE ev (seq BIGSERIAL PRIMARY KEY, event_id TEXT, time_ms BIGINT, actor_sub TEXT, action TEXT,
                 outcome TEXT, http_status INT, request_id TEXT, route TEXT, detail TEXT);
CREATE TABLE unchained (seq BIGINT PRIMARY KEY);
CREATE TABLE objects (hash TEXT PRIMARY KEY, content TEXT);
CREATE TABLE commits (id TEXT PRIMARY KEY, tree TEXT, message TEXT, time_ms BIGINT);
CREATE TABLE changes (commit_id TEXT, resource TEXT, new_hash TEXT, PRIMARY KEY (commit_id, resource));
CREATE TABLE branches (name TEXT PRIMARY KEY, head TEXT);
INSERT INTO branches VALUES ('one', 'root');
"""


def pgbench(secs):
    db = f"oms_pgb_{os.getpid()}"
    url = harness.PG_URL.rsplit("/", 1)[0] + "/" + db
    harness._psql(harness.PG_URL, f"DROP DATABASE IF EXISTS {db}")
    harness._psql(harness.PG_URL, f"CREATE DATABASE {db}")
    try:
        subprocess.run(["psql", url, "-q", "-X", "-c", PGBENCH_SCHEMA], check=True, capture_output=True)
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(PGBENCH)
        pgb = os.environ.get("PGBENCH", "/usr/lib/postgresql/15/bin/pgbench")
        out = subprocess.run([pgb, "-n", "-M", "extended", "-f", f.name, "-c", "16", "-j", "2", "-T", str(max(1, int(secs))), url],
                             capture_output=True, text=True)
        os.unlink(f.name)
        for line in out.stdout.splitlines():
            if line.startswith("tps"):
                return float(line.split()[2])
        raise RuntimeError(out.stdout + out.stderr)
    finally:
        harness._psql(harness.PG_URL, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def one_run(binary, backend, n, secs):
    harness.OMS_BIN = binary
    # 16 writers queue on one branch row: on a loaded shared machine the
    # default lock timeout (3 s) would answer some of them 503
    srv = harness.Server(backend, env={"OMS_LOG_LEVEL": "warn", "OMS_DB_LOCK_TIMEOUT_MS": "30000",
                                       "OMS_DB_STATEMENT_TIMEOUT_MS": "30000", "OMS_DB_BUSY_TIMEOUT_MS": "30000"})
    try:
        h = srv.auth("bench", ["admin"])
        h["X-Issue-ID"] = "OMS-21"
        r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": "one", "from": ROOT})
        assert r.status == 201, r
        batch(srv, h, "one", [{"op": "create", "kind": "object-types", "document": doc(i)} for i in range(n)])
        token = h["Authorization"].split()[1]
        client(srv.port, token, 1, 1, "one")  # warm: the branch's state is cached
        one = client(srv.port, token, secs, 1, "one")
        # warm: the connections of the threads that only 16 writers use
        # opened, their backends' caches filled, their statements prepared
        # (a fresh server's first second, not its steady state)
        client(srv.port, token, 1, 16, "one")
        many = client(srv.port, token, secs, 16, "one")
        a = head(srv, h, "one")
        batch(srv, h, "one", [{"op": "replace", "kind": "object-types", "api_name": f"Type{i:05d}",
                               "document": doc(i, "changed")} for i in range(100)])
        b = head(srv, h, "one")
        # later commits push both states out of a small cache, as on a
        # team's server where a diff is asked for long after the commits
        for i in range(24):
            r = srv.request("POST", "/api/v1/schemas/one/shared-properties", headers=h,
                            json_body={"api_name": f"Later{i}", "type": "string"})
            assert r.status == 201, r
        times = []
        for _ in range(10):
            t0 = time.perf_counter()
            r = srv.get(f"/api/v1/diff?from={a}&to={b}", headers=h, timeout=60)
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status == 200 and len(r.json()["changes"]) == 100, r
        return {"p50_1_ms": one["p50_us"] / 1000, "per_s_16": many["per_s"], "p99_16_ms": many["p99_us"] / 1000,
                "diff_first_ms": times[0], "diff_repeat_ms": statistics.median(times[1:])}
    finally:
        srv.destroy()


def main():
    bins = sys.argv[1].split()
    backends = sys.argv[2].split() if len(sys.argv) > 2 else ["sqlite", "pg"]
    sizes = [int(x) for x in (sys.argv[3].split() if len(sys.argv) > 3 else ["100", "10000"])]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    secs = float(sys.argv[5]) if len(sys.argv) > 5 else 4
    results = {}
    for rnd in range(rounds):
        for backend in backends:
            base = pgbench(secs) if backend == "pg" else None
            for n in sizes:
                for binary in bins:
                    m = one_run(binary, backend, n, secs)
                    if base:
                        m["pgbench_tps"] = base
                        m["ratio"] = m["per_s_16"] / base
                    results.setdefault((backend, n, binary), []).append(m)
                    print(f"round {rnd + 1} {backend} {n} types {binary}: " +
                          ", ".join(f"{k} {v:.2f}" for k, v in m.items()), flush=True)
    print("\nmedians over rounds:")
    for (backend, n, binary), runs in sorted(results.items()):
        keys = runs[0].keys()
        med = {k: statistics.median(r[k] for r in runs) for k in keys}
        print(f"{backend} {n:>5} types {binary}: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    for backend in backends:
        for binary in bins:
            small, big = results.get((backend, min(sizes), binary)), results.get((backend, max(sizes), binary))
            if small and big and small is not big:
                ratio = statistics.median(r["p50_1_ms"] for r in big) / statistics.median(r["p50_1_ms"] for r in small)
                print(f"{backend} {binary}: one-client p50 at {max(sizes)} / at {min(sizes)} types = {ratio:.2f}")


if __name__ == "__main__":
    main()
