"""SQLite reads the database file through a memory map
(OMS_SQLITE_MMAP_MB, docs/storage.md "Reading the file through a memory
map"): with a size set, the server's connections map the file; by default
(0) nothing is mapped; and what is read through the map is what was committed, across
checkpoints that copy the log into the mapped file and past the end of a
map smaller than the file. PostgreSQL has no such file: SKIP there."""

import os

from harness import Skip

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


def _server(ctx, env):
    if ctx.backend != "sqlite":
        raise Skip("the memory map is SQLite's")
    srv = ctx.new_server(env=env)
    h = srv.auth("dev", ("developer",))
    h["X-Issue-ID"] = "OMS-21"
    r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": "mm", "from": ROOT})
    assert r.status == 201, r
    return srv, h


def _maps(srv):
    """The sizes of the server's maps of the database file."""
    sizes = []
    real = os.path.realpath(srv.db_path)
    with open(f"/proc/{srv.proc.pid}/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].strip() == real:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                sizes.append(hi - lo)
    return sizes


def _doc(i):
    return {"api_name": f"Mm{i:04d}", "status": "active", "description": f"mapped {i} " + "y" * 3000,
            "properties": [{"api_name": "id", "type": "string", "required": True}], "primary_key": "id"}


def _write_and_read_back(srv, h, n):
    for lo in range(0, n, 40):  # a commit each: many checkpoints between them
        ops = [{"op": "create", "kind": "object-types", "document": _doc(i)} for i in range(lo, min(n, lo + 40))]
        r = srv.request("POST", "/api/v1/schemas/mm/changes", headers=h, json_body={"operations": ops}, timeout=60)
        assert r.status == 200, r
    for i in range(n):
        _read(srv, h, i)


def _read(srv, h, i):
    r = srv.get(f"/api/v1/schemas/mm/object-types/Mm{i:04d}", headers=h)
    assert r.status == 200 and r.json()["description"] == _doc(i)["description"], (i, r)


def test_connections_read_the_file_through_a_map(ctx):
    # checkpoints every 50 pages: the reads below find pages the log's
    # copies wrote into the mapped file
    srv, h = _server(ctx, {"OMS_SQLITE_MMAP_MB": "256", "OMS_SQLITE_CHECKPOINT_PAGES": "50"})
    _write_and_read_back(srv, h, 120)
    assert _maps(srv), "the database file is not mapped"
    # a new server on the same file reads what the first committed
    srv.stop()
    srv.start()
    for i in range(0, 120, 7):
        _read(srv, h, i)


def test_a_map_smaller_than_the_file_reads_the_rest(ctx):
    srv, h = _server(ctx, {"OMS_SQLITE_MMAP_MB": "1", "OMS_SQLITE_CHECKPOINT_PAGES": "50"})
    _write_and_read_back(srv, h, 400)
    assert os.path.getsize(srv.db_path) > 1 << 20, os.path.getsize(srv.db_path)
    maps = _maps(srv)
    assert maps and max(maps) <= 1 << 20, maps


def test_by_default_nothing_is_mapped(ctx):
    srv, h = _server(ctx, {})
    _write_and_read_back(srv, h, 20)
    assert _maps(srv) == []
