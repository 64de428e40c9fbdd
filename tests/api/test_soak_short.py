"""The soak's short version (issue #21): the workload of `make soak`
(bench/soak_workload.py, the same code) for 30 seconds on a fresh server.
It asserts only what does not depend on timing: no errors, every
acknowledged write reads back as acknowledged at its commit, proposals were
merged, the commit count grew, the audit chain verifies. The throughput per
10 seconds is printed for information; the timed verdict is `make soak`'s."""

import contextlib
import io
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import db_residency  # noqa: E402
import soak_workload as sw  # noqa: E402
from harness import Skip  # noqa: E402

SECONDS, INTERVAL = 30, 10


def test_short_soak(ctx):
    srv = ctx.new_server(env={"OMS_LOG_LEVEL": "warn"})
    cfg = sw.Config(seed_types=200, writers=3, readers=2)
    sw.seed(srv, cfg)
    before = sw.commit_count(srv)
    res = sw.run(srv, cfg, SECONDS, INTERVAL)
    for b in range(res.n):
        cells = []
        for cls in sw.CLASSES:
            tp, p50, p99, err = res.stats(b, cls)
            cells.append(f"{cls} {tp:.0f}/s" + (f" p99 {p99:.0f} ms" if p99 is not None else ""))
        print(f"  soak {b * INTERVAL}-{(b + 1) * INTERVAL} s: " + ", ".join(cells))
    assert res.total_errors() == 0, res.errors
    assert res.acked > 0 and res.checked == res.acked, (res.acked, res.checked)
    assert res.nunreadable == 0, res.unreadable
    assert res.merged > 0, "no proposal was approved and merged"
    after = sw.commit_count(srv)
    assert after >= before + res.acked, (before, after, res.acked)
    verify = sw.audit_verify(srv)
    assert verify.get("ok") is True, verify
    assert srv.proc.poll() is None, srv.read_log()[-2000:]


def test_soak_residency_maps_pages_to_btrees(ctx):
    """The soak's page-cache instrument (bench/db_residency.py) on a real
    server's database: one entry per OS page of the file, every database
    page owned by a named B-tree, and a report with the tables OMS writes."""
    if ctx.backend != "sqlite":
        raise Skip("the instrument reads the SQLite file; PostgreSQL's files are the server's")
    srv = ctx.new_server(env={"OMS_LOG_LEVEL": "warn"})
    cfg = sw.Config(seed_types=50, writers=1, readers=1)
    sw.seed(srv, cfg)
    first = db_residency.snapshot(srv.db_path)
    sw.run(srv, cfg, 4, 2)
    # the checkpointer may still be growing the file: its size before and after bound the snapshot's
    before = os.path.getsize(srv.db_path)
    second = db_residency.snapshot(srv.db_path)
    size = os.path.getsize(srv.db_path)
    assert first is not None and second is not None

    def pages(n):
        return (n + db_residency.OS_PAGE - 1) // db_residency.OS_PAGE
    assert pages(before) <= len(second) <= pages(size), (len(second), before, size)
    assert sum(b & 1 for b in second) > 0, "mincore reported no page of a file the server is using"
    page_size, owner = db_residency.btree_of_pages(srv.db_path)
    assert owner.get(1) == "sqlite_schema", owner.get(1)
    names = set(owner.values())
    for table in ("objects", "commits", "audit_events", "tree_nodes"):
        assert table in names, (table, sorted(names)[:20])
    # pages past the file's end are in the write-ahead log only, not yet checkpointed
    file_pages = size // page_size
    assert min(owner) == 1 and sum(1 for p in owner if p <= file_pages) >= len(owner) // 2, (len(owner), file_pages)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        db_residency.report(srv.db_path, [first, second], "interval")
    text = out.getvalue()
    assert "| B-tree | MB | resident % | interval 1 |" in text, text[:500]
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| B-tree")]
    assert len(rows) == min(12, len(names)), (len(rows), len(names), text[:2000])
