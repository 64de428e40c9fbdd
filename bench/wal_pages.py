"""Which of SQLite's b-trees the soak's transactions write, and how often
(docs/storage.md "Time-ordered ids"): runs the soak's mixed workload
(bench/soak_workload.py) for SECS seconds against a fresh SQLite server
whose checkpoints are held off, so that every page a transaction wrote is
still a frame of the write-ahead log; then reads the log's frame headers
and names each frame's page by the b-tree (table or index) that owns it
(SQLite's dbstat table, on a copy of the files). Prints frames per OMS
commit by b-tree, and how many distinct pages per commit each b-tree
wrote over the run (what checkpoints copy into the database: a page an
append point or an upper level writes again and again counts once, a
random key's leaf counts for every insert that lands on a new one).

    OMS_BIN=build/rel/oms python3 bench/wal_pages.py [SECS]

With `locks [PAIRS]` it runs PAIRS lock pairs (acquire + release, one
client, bench/locks_client.c) instead, and counts per lock operation: each
is one SQLite transaction of its own, plus what the audit chainer and the
checkpointer's rounds wrote meanwhile, shared by all.

    OMS_BIN=build/rel/oms python3 bench/wal_pages.py locks [PAIRS]
"""
import collections
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import soak_workload as sw  # noqa: E402


def wal_frames(path):
    """[(page number, commit flag)] of the log's valid frames, in order."""
    with open(path, "rb") as f:
        hdr = f.read(32)
        page_size = struct.unpack(">I", hdr[8:12])[0]
        salt = hdr[16:24]
        out = []
        while True:
            fh = f.read(24)
            if len(fh) < 24 or fh[8:16] != salt:
                break
            f.seek(page_size, 1)
            out.append(struct.unpack(">II", fh[:8]))
    return page_size, out


def soak_commits(srv, secs):
    """The soak's workload for secs seconds: (frames before it, OMS commits)."""
    cfg = sw.Config(seed_types=1000, verify_max=10)
    sw.seed(srv, cfg)
    time.sleep(1)
    first = len(wal_frames(srv.db_path + "-wal")[1])
    c0 = sw.commit_count(srv)
    sw.run(srv, cfg, secs, secs, lambda k: None)
    time.sleep(1)
    return first, sw.commit_count(srv) - c0


def lock_operations(srv, pairs, tmp):
    """pairs lock pairs from one client: (frames before them, lock operations)."""
    client = os.path.join(tmp, "locks_client")
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run(["cc", "-O2", "-o", client, os.path.join(here, "locks_client.c"), "-lpthread"], check=True)
    h = srv.auth("bench", ["admin"])
    h["X-Issue-ID"] = "OMS-21"
    r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": "bench", "from": "main"})
    assert r.status == 201, r.body
    cmd = [client, str(srv.port), h["Authorization"].split()[1], "bench"]
    subprocess.run(cmd + ["200", "0", "1"], check=True, capture_output=True)  # warm-up
    time.sleep(1)  # the chainer's round for the warm-up
    first = len(wal_frames(srv.db_path + "-wal")[1])
    subprocess.run(cmd + [str(pairs), "0", "1"], check=True, capture_output=True)
    time.sleep(1)
    return first, 2 * pairs


def main():
    locks = len(sys.argv) > 1 and sys.argv[1] == "locks"
    arg = sys.argv[2 if locks else 1] if len(sys.argv) > (2 if locks else 1) else None
    secs = float(arg) if arg and not locks else 30.0
    pairs = int(arg) if arg and locks else 1000
    env = {"OMS_LOG_LEVEL": "warn", "OMS_SQLITE_CHECKPOINT_PAGES": "1000000", "OMS_SQLITE_WAL_RESET_MB": "65536",
           "OMS_RATE_LIMIT_OVERRIDES": "bench=read:1000000000/s:1000000000,write:1000000000/s:1000000000"}
    srv = harness.Server("sqlite", env=env)
    snap = tempfile.mkdtemp(prefix="oms-walpages-")
    try:
        first, commits = lock_operations(srv, pairs, snap) if locks else soak_commits(srv, secs)
        shutil.copy(srv.db_path + "-wal", os.path.join(snap, "oms.db-wal"))
        shutil.copy(srv.db_path, os.path.join(snap, "oms.db"))
    finally:
        srv.destroy()
    try:
        page_size, frames = wal_frames(os.path.join(snap, "oms.db-wal"))
        seen = {pg for pg, _ in frames[:first]}
        frames = frames[first:]
        con = sqlite3.connect(os.path.join(snap, "oms.db"))
        owner = {pg: name for name, pg in con.execute("SELECT name, pageno FROM dbstat")}
        con.close()
    finally:
        shutil.rmtree(snap, ignore_errors=True)
    per, fresh = collections.Counter(), collections.Counter()
    txns = 0
    for pg, commit in frames:
        name = owner.get(pg, "(freed or new)")
        per[name] += 1
        if pg not in seen:
            fresh[name] += 1
            seen.add(pg)
        txns += commit != 0
    n = max(commits, 1)
    what = "lock operations" if locks else "OMS commits"
    unit = "lock operation" if locks else "commit"
    print(f"{pairs if locks else secs:g} {'pairs' if locks else 's'}: {commits} {what}, {txns} SQLite transactions,"
          f" {len(frames)} log frames ({len(frames) * (page_size + 24) / 1e6:.1f} MB, page {page_size} bytes):"
          f" {len(frames) / n:.1f} frames per {unit}, {sum(fresh.values()) / n:.2f} distinct pages")
    print(f"| b-tree | frames per {unit} | distinct pages per {unit} |")
    print("|---|---|---|")
    for name, k in per.most_common():
        if k / n >= 0.05:
            print(f"| {name} | {k / n:.2f} | {fresh[name] / n:.2f} |")


if __name__ == "__main__":
    main()
