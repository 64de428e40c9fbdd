"""What PostgreSQL writes for one lock pair and for one single-resource
commit (issue #21, docs/BENCHMARKS.md round 42): the WAL records and bytes
per operation, by record type and by the relation (table or index) they
change, read with pg_waldump over the log range of the run. The counts
are a property of the write path, not of the machine's speed: a change
that adds an index entry or a row shows here as a whole record per
operation whatever the noise of the timed benches. The range includes the
background work the operations cause (the audit chainer, the event
sequencer), which is their cost too.

On a fresh server and database: N lock pairs from one client
(bench/locks_client.c), then single-resource commits from one client for
SECS seconds on a branch of 100 object types (bench/audit_client.c).

    eval "$(scripts/pg-throwaway.sh start)"; export OMS_PG_URL OMS_PG_DIR
    OMS_BIN=build/rel/oms python3 bench/pg_wal_records.py [N] [SECS]

Needs OMS_PG_DIR (the throwaway server's directory: pg_waldump reads its
pg_wal) and pg_waldump from PostgreSQL's binaries.
"""

import collections
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diff_commit_scale as dcs  # noqa: E402
import harness  # noqa: E402

RECORD = re.compile(r"rmgr: (\S+).*?len \(rec/tot\):\s*\d+/\s*(\d+).*?desc: (\S+)(.*)")
RELATION = re.compile(r"rel \d+/\d+/(\d+)")


def waldump_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_waldump"))
    return found[-1] if found else "pg_waldump"


def lsn(srv):
    return harness._psql(srv.database_url, "SELECT pg_current_wal_insert_lsn()", tuples=True).strip()


def relations(srv):
    out = harness._psql(srv.database_url, "SELECT relfilenode, relname FROM pg_class WHERE relfilenode <> 0",
                        tuples=True)
    return dict(line.split("\x1f", 1) for line in out.splitlines() if "\x1f" in line)


def account(srv, start, end, ops, what):
    """Prints the records between two LSNs, per operation."""
    names = relations(srv)
    run = subprocess.run([waldump_bin(), "-p", os.path.join(os.environ["OMS_PG_DIR"], "data", "pg_wal"),
                          "-s", start, "-e", end], capture_output=True, text=True)
    dump = run.stdout
    kinds, by_rel = collections.Counter(), collections.Counter()
    total_bytes = total = 0
    for line in dump.splitlines():
        m = RECORD.search(line)
        if not m:
            continue
        rel = RELATION.search(m.group(4))
        name = names.get(rel.group(1), "(relation " + rel.group(1) + ")") if rel else "-"
        size = int(m.group(2))
        kinds[(m.group(1) + "/" + m.group(3), name)] += 1
        by_rel[name] += size
        total += 1
        total_bytes += size
    if run.returncode != 0:
        # a wrong OMS_PG_DIR or an unreadable range: say so rather than print zeros
        problem = run.stderr.strip() or f"exit status {run.returncode}"
        if total == 0:
            raise SystemExit(f"pg_waldump read no records: {problem}")
        print(f"pg_waldump stopped early ({problem}); the counts cover what it read", file=sys.stderr)
    print(f"\n{what}: {ops} operations; {total / ops:.1f} WAL records and {total_bytes / ops:.0f} bytes per operation")
    print("| records per operation | record | relation |\n|---|---|---|")
    for (kind, name), n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        if n / ops >= 0.05:
            print(f"| {n / ops:.2f} | {kind} | {name} |")
    print("| bytes per operation | relation |\n|---|---|")
    for name, size in by_rel.most_common(12):
        print(f"| {size / ops:.0f} | {name} |")


def commit_rows(srv):
    return int(harness._psql(srv.database_url, "SELECT count(*) FROM commits", tuples=True))


def settle():
    time.sleep(2)  # the chainer and the sequencer catch up: their writes are the operations' too


def main():
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    secs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    tmp = tempfile.mkdtemp(prefix="oms-pg-wal-")
    here = os.path.dirname(os.path.abspath(__file__))
    for src, out in (("locks_client.c", "locks_client"), ("audit_client.c", "client")):
        subprocess.run(["cc", "-O2", "-o", os.path.join(tmp, out), os.path.join(here, src), "-lpthread"], check=True)
    dcs.CLIENT = os.path.join(tmp, "client")
    env = {"OMS_LOG_LEVEL": "warn",
           "OMS_RATE_LIMIT_OVERRIDES": "bench=read:1000000000/s:1000000000,write:1000000000/s:1000000000"}
    srv = harness.Server("pg", env=env)
    try:
        h = srv.auth("bench", ["admin"])
        h["X-Issue-ID"] = "OMS-21"
        for name in ("bench", "one"):
            r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": name, "from": dcs.ROOT})
            assert r.status == 201, r.body
        token = h["Authorization"].split()[1]
        lock_client = [os.path.join(tmp, "locks_client"), str(srv.port), token, "bench"]
        subprocess.run(lock_client + ["200", "0", "1"], check=True, capture_output=True)  # warm-up
        settle()
        a = lsn(srv)
        run = subprocess.run(lock_client + [str(pairs), "0", "1"], check=True, capture_output=True, text=True)
        settle()
        account(srv, a, lsn(srv), pairs, "lock pair (acquire + release), one client")
        print("timing (noisy, for context):", json.loads(run.stdout)["pair"])

        dcs.batch(srv, h, "one", [{"op": "create", "kind": "object-types", "document": dcs.doc(i)} for i in range(100)])
        dcs.client(srv.port, token, 2, 1, "one")  # warm-up
        settle()
        c0 = commit_rows(srv)
        a = lsn(srv)
        dcs.client(srv.port, token, secs, 1, "one")
        settle()
        commits = commit_rows(srv) - c0
        account(srv, a, lsn(srv), commits, "single-resource commit at 100 types, one client")
    finally:
        srv.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
