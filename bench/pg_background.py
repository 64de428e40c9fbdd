"""What PostgreSQL itself did beside a soak (bench/soak.py, issue #21): its
processes' CPU, the WAL it wrote, its checkpoints and what its autovacuum
workers were vacuuming, each interval. A slow minute of the PostgreSQL soak
could not be told apart from the machine's or the server's before
(docs/BENCHMARKS.md round 43): these say whether the database was busy with
its own upkeep in it.

Everything is asked from the throwaway server's maintenance database and
/proc, never from a session on the server's own database: such a session
makes the instance give its sole-writer lease back (docs/storage.md "The
sole-writer lease") and would change what the soak measures."""

import os
import subprocess
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid):
    """(ppid, own CPU s, reaped children's CPU s) of a process, or None when
    it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is the state (field 3 of proc(5)): ppid is field 4, utime to cstime 14-17
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def _title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# the columns of the CPU split, in order
KINDS = ("backends", "autovacuum", "checkpointer + bgwriter", "walwriter", "other")


class PgBackground:
    """Per tick: PostgreSQL's CPU seconds so far (the postmaster and its live
    children), its WAL position in bytes and its checkpoint counters; beside
    them, a thread that asks every second which tables autovacuum works on in
    the database DBNAME."""

    def __init__(self, admin_url, dbname, psql_query):
        self._url, self._db, self._query = admin_url, dbname, psql_query
        data = psql_query("SHOW data_directory").strip()
        try:
            with open(os.path.join(data, "postmaster.pid")) as f:
                self._postmaster = int(f.readline())
        except (OSError, ValueError):
            self._postmaster = None  # not readable by this user: CPU not reported
        self.samples = []  # (monotonic, [what each autovacuum worker of DBNAME ran])
        self._stop = threading.Event()
        self._psql = None
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def cpu_s(self):
        """PostgreSQL's CPU seconds so far by kind of process (KINDS), from
        the process titles: the soak database's backends; autovacuum, whose
        workers come and go (an exited worker's time is in its postmaster's
        reaped children, with the few short sessions that also ended, the
        probes' included); the checkpointer and background writer; the WAL
        writer; the rest (the postmaster, launchers, other sessions)."""
        if self._postmaster is None:
            return None
        pm = _proc_stat(self._postmaster)
        if pm is None:
            return None
        cpu = dict.fromkeys(KINDS, 0.0)
        cpu["other"] += pm[1]
        cpu["autovacuum"] += pm[2]
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            st = _proc_stat(int(name))
            if st is None or st[0] != self._postmaster:
                continue
            title = _title(int(name))
            if "autovacuum worker" in title:
                kind = "autovacuum"
            elif "checkpointer" in title or "background writer" in title:
                kind = "checkpointer + bgwriter"
            elif "walwriter" in title:
                kind = "walwriter"
            elif f" {self._db} " in title:
                kind = "backends"
            else:
                kind = "other"
            cpu[kind] += st[1] + st[2]
        return cpu

    def tick(self):
        """(CPU s by kind, WAL bytes, checkpoints, buffers written by
        checkpoints, buffers written by backends themselves)."""
        row = self._query("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, checkpoints_timed + checkpoints_req,"
                          " buffers_checkpoint, buffers_backend FROM pg_stat_bgwriter").strip().split("\x1f")
        return (self.cpu_s(),) + tuple(int(float(v)) for v in row)

    def _watch(self):
        # one psql for the whole run (\watch): a process a second would cost
        # the machine more than what it watches
        sql = ("SELECT coalesce(string_agg(regexp_replace(query, '^autovacuum: ', ''), ';'), '') || '#'"
               " FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
               f" AND datname = '{self._db}'")
        self._psql = subprocess.Popen(["psql", self._url, "-XAtq"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._psql.stdin.write(sql + "\n\\watch 1\n")
        self._psql.stdin.flush()
        for line in self._psql.stdout:
            if self._stop.is_set():
                break
            line = line.rstrip("\n")
            if line.endswith("#"):
                line = line[:-1]
                self.samples.append((time.monotonic(), [w for w in line.split(";") if w]))

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._psql:
            self._psql.terminate()
            self._psql.wait(timeout=10)
        self._thread.join(timeout=10)

    def vacuum_between(self, t0, t1, top=3):
        """(seconds in which a worker ran, 'table seconds, ...' for the top
        tables) in [t0, t1)."""
        busy, by = 0, {}
        for t, running in self.samples:
            if t0 <= t < t1 and running:
                busy += 1
                for what in running:
                    by[what] = by.get(what, 0) + 1
        names = sorted(by.items(), key=lambda kv: -kv[1])[:top]
        return busy, ", ".join(f"{w.replace('public.', '')} {s} s" for w, s in names)


def report(backend, ticks, pg, pg_ticks, unit):
    """The table: per interval PostgreSQL's CPU (% of one core, ms per
    commit, and that split by kind of process), WAL written, checkpoints and
    their buffers, buffers the backends wrote themselves, and the
    autovacuum workers' seconds in the soak's database with their tables."""
    print(f"\n{backend}: per {unit}: PostgreSQL beside the server (bench/pg_background.py)")
    print(f"| {unit} | PostgreSQL CPU % | its CPU ms per commit | of which " + " / ".join(KINDS) +
          " | WAL MB | checkpoints | buffers written by checkpoints / by backends | autovacuum s | autovacuum, by table |")
    print("|---|---|---|---|---|---|---|---|---|")
    for b in range(1, min(len(ticks), len(pg_ticks))):
        w0, c0 = ticks[b - 1][0], ticks[b - 1][3]
        w1, c1 = ticks[b][0], ticks[b][3]
        cpu0, wal0, ck0, bc0, bb0 = pg_ticks[b - 1]
        cpu1, wal1, ck1, bc1, bb1 = pg_ticks[b]
        dt, dc = max(w1 - w0, 1e-9), c1 - c0
        split = {k: cpu1[k] - cpu0[k] for k in KINDS} if cpu0 and cpu1 else None
        cpu = sum(split.values()) if split else None
        busy, tables = pg.vacuum_between(w0, w1)
        print(f"| {b} | {'-' if cpu is None else f'{100 * cpu / dt:.0f}'} | "
              f"{'-' if cpu is None or not dc else f'{1000 * cpu / dc:.2f}'} | "
              + ("-" if not split or not dc else " / ".join(f"{1000 * split[k] / dc:.2f}" for k in KINDS)) +
              f" | {(wal1 - wal0) / 1e6:.0f} | {ck1 - ck0} | {bc1 - bc0} / {bb1 - bb0} | {busy} | {tables or '-'} |")
