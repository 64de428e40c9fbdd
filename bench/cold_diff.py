"""A cold diff (the snapshot cache empty: the server restarted before each)
of 100 changed types in 10,000 (issue #21, docs/BENCHMARKS.md "Diffs of
commits outside the snapshot cache"): per binary and backend, the median of
5. PostgreSQL needs OMS_PG_URL (a throwaway server: scripts/pg-throwaway.sh).

    python3 bench/cold_diff.py "BIN1 BIN2" "sqlite pg"
"""
import os, sys, time, statistics
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "api"))
import harness, large_ontology
ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"
bins, backends = sys.argv[1].split(), sys.argv[2].split()
for be in backends:
    for b in bins:
        os.environ["OMS_BIN"] = b
        harness.OMS_BIN = b
        srv = harness.Server(be)
        h = srv.auth("dev", ("developer",)); h["X-Issue-ID"] = "OMS-1"
        r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": "d", "from": ROOT}); assert r.status == 201, r
        large_ontology.apply_batches(srv, "d", [{"op": "create", "kind": "object-types", "document": large_ontology.type_doc(i)} for i in range(10000)], h)
        head = lambda: srv.get("/api/v1/branches/d", headers=h).json()["head"]
        a = head()
        large_ontology.apply_batches(srv, "d", [{"op": "replace", "kind": "object-types", "api_name": f"T{i:05d}", "document": large_ontology.type_doc(i, description="x")} for i in range(0, 10000, 100)], h)
        bb = head()
        times = []
        for k in range(5):
            srv.stop(); srv.start()
            t = time.perf_counter()
            d = srv.request("GET", f"/api/v1/diff?from={a}&to={bb}", headers=h, timeout=120)
            times.append((time.perf_counter() - t) * 1000)
            assert d.status == 200 and len(d.json()["changes"]) == 100, d
        print(f"{be} {b}: cold diff of 100 changes in 10,000 types: median {statistics.median(times):.1f} ms (runs {', '.join(f'{x:.0f}' for x in times)})", flush=True)
        srv.destroy()
