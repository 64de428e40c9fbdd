"""Builds a 10,000-type ontology through the batch API and measures the
server's resident memory after the load, after a full export, and after a
restart followed by a cold export (SPEC §12: RSS <= 100 MB).

    python3 bench/ontology_memory.py [sqlite|pg] [types]
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "api"))
import harness  # noqa: E402


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def object_type(i):
    """A realistic object type: 12 properties, an interface, a shared property."""
    props = [{"api_name": "id", "type": "string", "required": True, "display_name": "Identifier"},
             {"api_name": "name", "type": "string", "description": f"Name of entity {i}"},
             {"api_name": "email", "type": "string", "shared_property": "Email"}]
    types = ["integer", "long", "double", "boolean", "date", "timestamp", "string", "decimal", "json"]
    for k, t in enumerate(types):
        props.append({"api_name": f"attr_{k}", "type": t, "description": f"Attribute {k} of type {t}"})
    return {"api_name": f"Entity{i:05d}", "display_name": f"Entity {i}", "status": "active",
            "description": f"Generated object type number {i} for the memory benchmark.",
            "properties": props, "primary_key": "id", "implements": ["Named"]}


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    srv = harness.Server(backend, env={"OMS_LOG_LEVEL": "warn"})
    try:
        h = srv.auth("bench", ["admin"])
        h["X-Issue-ID"] = "OMS-1"
        r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": "bench"})
        assert r.status == 201, r
        base = [{"op": "create", "kind": "interfaces", "document": {"api_name": "Named", "properties": [
                    {"api_name": "name", "type": "string"}]}},
                {"op": "create", "kind": "shared-properties", "document": {"api_name": "Email", "type": "string"}}]
        r = srv.request("POST", "/api/v1/schemas/bench/changes", headers=h, json_body={"operations": base})
        assert r.status == 200, r
        rss0 = rss_mb(srv.proc.pid)
        t0 = time.time()
        batch = 500
        for start in range(0, n, batch):
            ops = [{"op": "create", "kind": "object-types", "document": object_type(i)}
                   for i in range(start, min(n, start + batch))]
            r = srv.request("POST", "/api/v1/schemas/bench/changes", headers=h, json_body={"operations": ops},
                            timeout=300)
            assert r.status == 200, r
        load_s = time.time() - t0
        rss_load = rss_mb(srv.proc.pid)
        t0 = time.time()
        r = srv.get("/api/v1/schemas/bench", headers=h, timeout=300)
        export_s = time.time() - t0
        assert r.status == 200 and len(r.json()["object-types"]) == n
        export_bytes = len(r.body)
        rss_export = rss_mb(srv.proc.pid)
        srv.stop()
        srv.start()
        t0 = time.time()
        r = srv.get("/api/v1/schemas/bench", headers=h, timeout=300)
        cold_s = time.time() - t0
        assert r.status == 200
        r = srv.get("/api/v1/schemas/bench/object-types/Entity00042", headers=h)
        assert r.status == 200
        rss_cold = rss_mb(srv.proc.pid)
        print(f"backend={backend} types={n} load={load_s:.1f}s ({n / load_s:.0f} types/s in batches of {batch})")
        print(f"export: {export_bytes / 1e6:.1f} MB in {export_s * 1000:.0f} ms warm, {cold_s * 1000:.0f} ms cold")
        print(f"RSS MB: idle {rss0:.1f}, after load {rss_load:.1f}, after export {rss_export:.1f}, "
              f"after restart + cold export {rss_cold:.1f} (target <= 100)")
        ok = max(rss_load, rss_export, rss_cold) <= 100
        print("ontology_memory: %d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    finally:
        srv.destroy()


if __name__ == "__main__":
    main()
