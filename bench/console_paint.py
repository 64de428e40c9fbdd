"""Console page-load benchmark (issue #18: first paint <= 1 s on the
10,000-type ontology). Builds a branch of N object types (default 10,000,
the documents of bench/search_bench.py) and N/10 link types, then
tests/browser/bench-paint.mjs loads the console in headless Chromium several
times, signed in, and reports first paint, first contentful paint and the
time until the first page of object types is shown, for the browse, graph
and search views.

    python3 bench/console_paint.py [types] [loads]
"""

import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "api"))
import harness  # noqa: E402
from search_bench import Client, doc  # noqa: E402

BROWSER = os.path.join(HERE, "..", "tests", "browser")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    loads = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    if not os.path.isdir(os.path.join(BROWSER, "node_modules")) or not os.path.exists("/usr/bin/chromium"):
        print("SKIP console_paint: node_modules or /usr/bin/chromium missing")
        return 0
    rng = random.Random(18)
    srv = harness.Server("sqlite", env={"OMS_LOG_LEVEL": "warn"})
    try:
        h = srv.auth("bench", ["admin"])
        h["X-Issue-ID"] = "OMS-18"
        c = Client(srv.port, h)
        assert c.request("POST", "/api/v1/branches", {"name": "bench", "from": "main"})[0] == 201
        docs = [doc(rng, i) for i in range(n)]
        for start in range(0, n, 500):
            ops = [{"op": "create", "kind": "object-types", "document": d} for d in docs[start:start + 500]]
            st, body, _ = c.request("POST", "/api/v1/schemas/bench/changes", {"operations": ops})
            assert st == 200, body[:300]
        links = [{"op": "create", "kind": "link-types", "document": {
            "api_name": f"link{i}", "from": docs[rng.randrange(n)]["api_name"], "to": docs[rng.randrange(n)]["api_name"],
            "cardinality": "many_to_one"}} for i in range(n // 10)]
        for start in range(0, len(links), 500):
            st, body, _ = c.request("POST", "/api/v1/schemas/bench/changes", {"operations": links[start:start + 500]})
            assert st == 200, body[:300]
        env = {**os.environ, "OMS_URL": f"http://127.0.0.1:{srv.port}", "OMS_TOKEN": srv.token("bench", ["viewer"]),
               "LOADS": str(loads), "TYPES": str(n)}
        p = subprocess.run(["node", "bench-paint.mjs"], cwd=BROWSER, env=env, capture_output=True, text=True,
                           timeout=600)
        print(p.stdout + p.stderr, end="")
        return p.returncode
    finally:
        srv.stop()
        srv.destroy()


if __name__ == "__main__":
    sys.exit(main())
