"""The proposal flow's branch steps (issue #21, docs/BENCHMARKS.md round 32):
on `main` with N object types, FLOWS times: make a feature branch from
main, write one type on it, fast-forward main to it, delete the feature. Reports per step the p50 latency in ms and, per round, the
bytes the database wrote: on SQLite the server's write() bytes
(/proc/PID/io wchar: its database and log), on PostgreSQL the WAL it
generated (pg_current_wal_lsn). Before copy-on-write branches a feature
branch copied all N rows of the base and deleted them again, and a
fast-forward rewrote all N.

    BRANCH_BENCH_BINS="A B" python3 bench/branch_bench.py sqlite|pg [N ...]

With two binaries (BRANCH_BENCH_BINS, default OMS_BIN) the rounds
alternate between them, a fresh server each, ROUNDS (default 3) each.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
import harness  # noqa: E402

FLOWS = int(os.environ.get("BRANCH_BENCH_FLOWS", "40"))
STEPS = ("create", "write", "merge", "delete")


def doc(i, note="v1"):
    return {"api_name": f"Type{i:05d}", "status": "active", "description": f"type {i} {note}",
            "properties": [{"api_name": "id", "type": "string", "required": True},
                           {"api_name": "name", "type": "string"}], "primary_key": "id"}


def ok(r, status=200):
    assert r.status == status, r
    return r


def written(srv):
    if srv.backend == "pg":
        return int(srv.query("SELECT pg_current_wal_lsn() - '0/0'")[0][0])
    with open(f"/proc/{srv.proc.pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))


def one_run(binary, backend, n):
    srv = harness.Server(backend, env={"OMS_LOG_LEVEL": "warn"}, binary=binary)
    try:
        h = srv.auth("bench", ["admin"])
        h["X-Issue-ID"] = "OMS-21"
        # main as the base, as in the soak: it has no search index until its
        # first search (a base with one gives each new branch a copy of it)
        ok(srv.request("PUT", "/api/v1/branches/main/settings", headers=h, json_body={"protected": False}))
        ops = [{"op": "create", "kind": "object-types", "document": doc(i)} for i in range(n)]
        for start in range(0, n, 1000):
            ok(srv.request("POST", "/api/v1/schemas/main/changes", headers=h,
                           json_body={"operations": ops[start:start + 1000]}, timeout=600))
        times = {s: [] for s in STEPS}
        w0 = written(srv)
        for k in range(FLOWS):
            f = f"feature{k}"
            t = [time.perf_counter()]
            ok(srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": f, "from": "main"}), 201)
            t.append(time.perf_counter())
            name = f"Type{(k * 7919) % n:05d}"
            cur = ok(srv.get(f"/api/v1/schemas/{f}/object-types/{name}", headers=h))
            t.append(time.perf_counter())
            ok(srv.request("PUT", f"/api/v1/schemas/{f}/object-types/{name}",
                           headers=dict(h, **{"If-Match": cur.header("ETag")}), json_body=doc(0, f"flow {k}") | {"api_name": name}))
            t.append(time.perf_counter())
            r = ok(srv.request("POST", "/api/v1/branches/main/merge", headers=h, json_body={"source": f}, timeout=600))
            t.append(time.perf_counter())
            ok(srv.request("DELETE", f"/api/v1/branches/{f}", headers=h), 204)
            t.append(time.perf_counter())
            assert r.json()["status"] == "fast_forward", r.json()
            times["create"].append(t[1] - t[0])
            times["write"].append(t[3] - t[2])
            times["merge"].append(t[4] - t[3])
            times["delete"].append(t[5] - t[4])
        per_flow = (written(srv) - w0) / FLOWS
        return {s: statistics.median(v) * 1000 for s, v in times.items()}, per_flow
    finally:
        srv.destroy()


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    sizes = [int(x) for x in sys.argv[2:]] or [1000, 10000]
    bins = os.environ.get("BRANCH_BENCH_BINS", os.environ.get("OMS_BIN", "build/rel/oms")).split()
    rounds = int(os.environ.get("ROUNDS", "3"))
    print(f"branch_bench[{backend}]: {FLOWS} flows (create, write, fast-forward, delete) per round, {rounds} rounds"
          f" alternating {len(bins)} binaries")
    print("| binary | types | create p50 ms | write p50 ms | merge p50 ms | delete p50 ms | bytes written per flow |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        res = {b: [] for b in bins}
        for _ in range(rounds):
            for b in bins:
                res[b].append(one_run(b, backend, n))
        for b in bins:
            med = {s: statistics.median(r[0][s] for r in res[b]) for s in STEPS}
            wb = statistics.median(r[1] for r in res[b])
            print(f"| {os.path.basename(b)} | {n} | " + " | ".join(f"{med[s]:.2f}" for s in STEPS) + f" | {wb:,.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
