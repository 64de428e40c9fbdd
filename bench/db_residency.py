"""Which of a SQLite database's tables and indexes the page cache holds, and
which of their pages come back into it (docs/BENCHMARKS.md round 21).

`snapshot(path)` asks the kernel (mincore) which pages of the database file
are resident; it reads nothing, so the server under test is not disturbed.
`report(path, snapshots)` maps page numbers to B-trees with SQLite's dbstat
table once, at the end (dbstat reads every page, so it runs after the last
snapshot), and prints per B-tree: its size, the share resident at the end,
and per interval the pages that were out of the cache at one snapshot and in
it at the next. Such a page was read back, or written by a checkpoint; for a
table keyed at random either means the server touched a cold page.
"""
import ctypes
import ctypes.util
import os
import sqlite3

PROT_READ, MAP_SHARED = 1, 1
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
OS_PAGE = os.sysconf("SC_PAGE_SIZE")


def snapshot(path):
    """bytes: one per OS page of the file, bit 0 set where it is resident; None when unavailable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return b""
        addr = _libc.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            return None
        try:
            n = (size + OS_PAGE - 1) // OS_PAGE
            vec = (ctypes.c_ubyte * n)()
            if _libc.mincore(addr, size, vec) != 0:
                return None
            return bytes(vec)
        finally:
            _libc.munmap(addr, size)
    finally:
        os.close(fd)


def resident_pct(snap):
    """The share of the file in the page cache, % (None without a snapshot)."""
    if not snap:
        return None
    return 100.0 * sum(b & 1 for b in snap) / len(snap)


def btree_of_pages(path):
    """(page size, {database page number: B-tree name}), read through dbstat."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        owner = {pageno: name for name, pageno in con.execute("SELECT name, pageno FROM dbstat")}
        return page_size, owner
    finally:
        con.close()


def report(path, snapshots, unit="min", top=12):
    """Prints the table described in the module's comment; `snapshots` is a
    list of snapshot() results, one per interval boundary."""
    snaps = [s for s in snapshots if s is not None]
    if len(snaps) < 2:
        return
    try:
        page_size, owner = btree_of_pages(path)
    except sqlite3.Error as e:
        print(f"\nresidency by table: dbstat unavailable ({e})")
        return
    per = max(page_size // OS_PAGE, 1)  # OS pages per database page

    def resident(snap, pgno):  # database pages are numbered from 1
        i = (pgno - 1) * per
        return i < len(snap) and all(snap[j] & 1 for j in range(i, min(i + per, len(snap))))

    pages, inside, last_in, back = {}, {}, {}, {}
    n = len(snaps) - 1
    for pgno, name in owner.items():
        pages[name] = pages.get(name, 0) + 1
        # a page past the file's end is in the write-ahead log only: not counted in the share
        if (pgno - 1) * per < len(snaps[-1]):
            inside[name] = inside.get(name, 0) + 1
            last_in[name] = last_in.get(name, 0) + resident(snaps[-1], pgno)
        row = back.setdefault(name, [0] * n)
        for b in range(1, n + 1):
            # only pages the file already had: a page the file grew into was written, not read back
            if (pgno - 1) * per < len(snaps[b - 1]) and not resident(snaps[b - 1], pgno) and resident(snaps[b], pgno):
                row[b - 1] += 1
    rows = sorted(pages, key=lambda k: -sum(back[k]))[:top]
    print(f"\nSQLite file by B-tree: size, resident at the end (of its pages in the file, not only in the log), "
          f"and database pages back in the cache per {unit} (out at one boundary, in at the next; page size {page_size})")
    print(f"| B-tree | MB | resident % | " + " | ".join(f"{unit} {b}" for b in range(1, n + 1)) + " |")
    print("|---|---|---|" + "---|" * n)
    for k in rows:
        share = f"{100 * last_in[k] / inside[k]:.1f}" if inside.get(k) else "-"
        print(f"| {k} | {pages[k] * page_size / 1e6:.1f} | {share} | "
              + " | ".join(str(c) for c in back[k]) + " |")
