"""Three-way merge benchmark (SPEC §12): a 10,000-resource ontology, 1,000
resources changed on each side, merged into the target with a merge commit
(two parents, no conflicts). Reports the merge request's latency.

    python3 bench/merge_bench.py [sqlite|pg] [resources] [changed]
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "api"))
import harness  # noqa: E402

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


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


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    srv = harness.Server(backend, env={"OMS_LOG_LEVEL": "warn"})
    try:
        h = srv.auth("bench", ["admin"])
        h["X-Issue-ID"] = "OMS-1"
        for b in ("base",):
            assert srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": b, "from": ROOT}).status == 201
        batch(srv, h, "base", [{"op": "create", "kind": "object-types", "document": doc(i)} for i in range(n)])
        for b in ("left", "right"):
            assert srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": b, "from": "base"}).status == 201
        batch(srv, h, "left", [{"op": "replace", "kind": "object-types", "api_name": f"Type{i:05d}",
                                "document": doc(i, "left")} for i in range(k)])
        batch(srv, h, "right", [{"op": "replace", "kind": "object-types", "api_name": f"Type{i:05d}",
                                 "document": doc(i, "right")} for i in range(n - k, n)])
        times = []
        for attempt in range(3):
            target = f"t{attempt}"
            assert srv.request("POST", "/api/v1/branches", headers=h,
                               json_body={"name": target, "from": "right"}).status == 201
            t0 = time.perf_counter()
            r = srv.request("POST", f"/api/v1/branches/{target}/merge", headers=h, json_body={"source": "left"},
                            timeout=600)
            times.append((time.perf_counter() - t0) * 1000)
            assert r.status == 200 and r.json()["status"] == "merged", r
            assert len(r.json()["changes"]) == k
        best, worst = min(times), max(times)
        print(f"backend={backend} resources={n} changed per side={k}: merge {best:.0f} ms best, "
              f"{worst:.0f} ms worst of {len(times)} (target <= 500 ms)")
        ok = best <= 500
        print("merge_bench: %d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    finally:
        srv.destroy()


if __name__ == "__main__":
    main()
