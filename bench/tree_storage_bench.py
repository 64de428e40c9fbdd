"""Tree storage per commit and cold commit loads at 10,000 types (issue #21,
docs/storage.md "Tree storage"), for one or more binaries (e.g. before and
after): on a fresh server per binary and backend,

  - 10,000 object types in 10 bulk commits, then N single-resource commits:
    tree bytes per commit (trie nodes + keys + trees rows; or, for a binary
    of schema version 13 and before, the legacy JSON tree objects: content
    + 64-byte hex keys) and the database's growth per commit;
  - the stored tree's node count (trie nodes reachable from the head's tree);
  - after a restart (empty snapshot cache), the time of a diff between two
    old commits: two cold commit loads (oms_snapshot_for_commit), median of 5
    restarts.

    python3 bench/tree_storage_bench.py "BIN1 BIN2" "sqlite pg" [N]
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "api"))
import harness  # noqa: E402
import tree_format  # noqa: E402
from harness import quote  # noqa: E402

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


def h(srv, **extra):
    x = srv.auth("bench", ("developer",))
    x["X-Issue-ID"] = "OMS-21"
    x.update(extra)
    return x


def typ(i, note=None):
    d = {"api_name": f"T{i:05d}", "properties": [{"api_name": "id", "type": "string", "required": True},
                                                   {"api_name": "name", "type": "string"}], "primary_key": "id"}
    if note:
        d["description"] = note
    return d


def legacy(srv):
    return srv.query("SELECT count(*) FROM sqlite_master WHERE name = 'tree_nodes'")[0][0] == 0 \
        if srv.backend == "sqlite" else \
        int(srv.query("SELECT count(*) FROM pg_tables WHERE tablename = 'tree_nodes'")[0][0]) == 0


def tree_bytes(srv):
    if legacy(srv):
        return int(srv.query("SELECT COALESCE(SUM(length(content)), 0) + 64 * count(*) FROM objects"
                             " WHERE type = 'tree'")[0][0])
    return tree_format.tree_bytes(srv)


def run(binary, backend, n):
    harness.OMS_BIN = binary
    srv = harness.Server(backend)
    try:
        b = "bench/tree"
        assert srv.request("POST", "/api/v1/branches", headers=h(srv), json_body={"name": b, "from": ROOT}).status == 201
        ops = [{"op": "create", "kind": "object-types", "document": typ(i)} for i in range(10000)]
        for s in range(0, 10000, 1000):
            r = srv.request("POST", f"/api/v1/schemas/{quote(b)}/changes", headers=h(srv),
                            json_body={"operations": ops[s:s + 1000]}, timeout=600)
            assert r.status == 200, r
        t0, d0 = tree_bytes(srv), tree_format.database_bytes(srv)
        commits = []
        for k in range(n):
            r = srv.request("PUT", f"/api/v1/schemas/{quote(b)}/object-types/T{(k * 997) % 10000:05d}",
                            headers=h(srv, **{"If-Match": "*"}), json_body=typ((k * 997) % 10000, f"change {k}"))
            assert r.status == 200, r
            commits.append(r.header("X-Commit"))
        t1, d1 = tree_bytes(srv), tree_format.database_bytes(srv)
        nodes = "-"
        if not legacy(srv):
            tree = srv.get(f"/api/v1/commits/{commits[-1]}", headers=h(srv)).json()["tree"]
            nodes = _count_nodes(tree_format.nodes(srv), tree_format.roots(srv)[tree])
        times = []
        for _ in range(5):
            srv.stop()
            srv.start()
            t = time.perf_counter()
            r = srv.get(f"/api/v1/diff?from={commits[0]}&to={commits[n // 2]}", headers=h(srv), timeout=120)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status == 200, r
        print(f"{binary} {backend}:"
              f" tree {(t1 - t0) / n:.0f} B/commit, database {(d1 - d0) / n:.0f} B/commit,"
              f" nodes of a full tree {nodes}, cold diff (2 commit loads) {statistics.median(times):.0f} ms", flush=True)
    finally:
        srv.stop()
        srv.destroy()


def _count_nodes(all_nodes, root):
    n, todo = 0, [root]
    while todo:
        body = all_nodes[todo.pop()]
        n += 1
        if body[1] == 1:
            todo += [body[3 + 32 * i:3 + 32 * (i + 1)].hex() for i in range((len(body) - 3) // 32)]
    return n


if __name__ == "__main__":
    bins = sys.argv[1].split()
    backends = sys.argv[2].split() if len(sys.argv) > 2 else ["sqlite"]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    for backend in backends:
        for binary in bins:
            run(os.path.abspath(binary), backend, n)
