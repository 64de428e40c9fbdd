"""The soak's short version (issue #21): the workload of `make soak`
(bench/soak_workload.py, the same code) for 30 seconds on a fresh server.
It asserts only what does not depend on timing: no errors, every
acknowledged write reads back as acknowledged at its commit, proposals were
merged, the commit count grew, the audit chain verifies. The throughput per
10 seconds is printed for information; the timed verdict is `make soak`'s."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import soak_workload as sw  # noqa: E402

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
