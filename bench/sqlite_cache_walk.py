"""The cost of a large SQLite page cache to write transactions, below and
above a database of 1 GiB (docs/BENCHMARKS.md round 21).

When a B-tree page splits, SQLite's balance_nonroot() puts the new sibling
pages in page-number order by renumbering one of them, for a moment, to the
page just past the lock byte (PENDING_BYTE / page size + 1: page 262,145 at
4 KiB pages). The page cache keeps the largest page number it ever held, so
at the end of that transaction, when the pager truncates the cache to the
database's size, a database smaller than 1 GiB leaves that number past the
end, and the cache walks every bucket of its hash table: a cost per split
transaction in proportion to the cache's size. A database over 1 GiB has the
renumbered page inside it, and no walk happens.

This measures it with the system's SQLite and nothing of OMS: per cache
size, microseconds per transaction of ten random-key inserts into a WITHOUT
ROWID table (most transactions split a leaf), the cache filled first, with
synchronous=OFF so that only CPU is timed; once with the database under
1 GiB, once after a filler table takes it over.

    python3 bench/sqlite_cache_walk.py [DIR] [TRANSACTIONS]
"""
import os
import shutil
import sqlite3
import sys
import tempfile
import time

CACHES_MIB = (16, 64, 256)
ROW = 200  # value bytes: about 15 rows a leaf, so one insert in 15 splits a leaf


def connect(path, cache_mib):
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
    return con


def fill(con, rows):
    con.execute("CREATE TABLE IF NOT EXISTS t (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
    con.execute("BEGIN")
    for _ in range(rows):
        con.execute("INSERT INTO t VALUES (?, ?)", (os.urandom(32), os.urandom(ROW)))
    con.execute("COMMIT")


def per_txn_us(path, cache_mib, txns):
    con = connect(path, cache_mib)
    try:
        con.execute("SELECT count(*), sum(length(v)) FROM t").fetchone()  # fill the cache
        t0 = time.perf_counter()
        for _ in range(txns):
            con.execute("BEGIN IMMEDIATE")
            for _ in range(10):
                con.execute("INSERT INTO t VALUES (?, ?)", (os.urandom(32), os.urandom(ROW)))
            con.execute("COMMIT")
        return 1e6 * (time.perf_counter() - t0) / txns
    finally:
        con.close()


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else None
    txns = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    d = tempfile.mkdtemp(prefix="oms-cache-walk-", dir=base)
    try:
        path = os.path.join(d, "walk.db")
        con = connect(path, 16)
        fill(con, 1_000_000)  # about 280 MB
        size_mb = os.path.getsize(path) / 1e6
        print(f"SQLite {sqlite3.sqlite_version}; {txns} transactions of 10 random-key inserts per cache size")
        print("| database | " + " | ".join(f"cache {c} MiB, us/txn" for c in CACHES_MIB) + " |")
        print("|---|" + "---|" * len(CACHES_MIB))
        print(f"| {size_mb:.0f} MB (under 1 GiB) | "
              + " | ".join(f"{per_txn_us(path, c, txns):.0f}" for c in CACHES_MIB) + " |", flush=True)
        # a filler table takes the file past page 262,145; the random-key table is unchanged
        con.execute("CREATE TABLE filler (b BLOB)")
        con.execute("BEGIN")
        for _ in range(900):
            con.execute("INSERT INTO filler VALUES (zeroblob(1000000))")
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        size_mb = os.path.getsize(path) / 1e6
        print(f"| {size_mb:.0f} MB (over 1 GiB) | "
              + " | ".join(f"{per_txn_us(path, c, txns):.0f}" for c in CACHES_MIB) + " |")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
