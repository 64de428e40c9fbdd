"""The soak (issue #21): the mixed workload of bench/soak_workload.py for
MINUTES minutes against a fresh server on one backend, seeded with 1,000
object types. Prints per minute and per class the throughput, p50, p99 and
errors; per minute the server's RSS (/proc), the database's size and its
growth per commit, the server's and the clients' CPU, the load average, the
machine's speed (MachineProbe: the CPU cost of a fixed unit of work) and
the disks' reads and writes, the share of the SQLite file in the page
cache, the disk's sync latency (SyncProbe) and the memory's speed
(MemoryProbe); on PostgreSQL, what the database did beside the server
(bench/pg_background.py: its CPU, WAL, checkpoints, autovacuum); then the verdict. Exits 1
when the verdict fails, on any error, when an acknowledged write does not
read back as acknowledged, or when GET /api/v1/audit/verify is not clean at
the end.

    python3 bench/soak.py sqlite|pg [MINUTES] [INTERVAL_SECONDS]

The verdict (issue #21: "throughput and p99 within 20 % of its first
minute"): for each class of VERDICT_CLASSES and each measured minute after
the first, throughput >= 0.8 x the first measured minute's and p99 <= 1.2 x
its. Before the MINUTES measured minutes the same workload runs for
SOAK_WARMUP_MINUTES (default 1; 0 judges against the very first minute):
a first minute on an idle machine and a database of a few megabytes runs
faster than any minute after it, and the rest of the run would be judged
against a state the service leaves for good within a minute
(docs/BENCHMARKS.md, round 20). The warm-up's figures are printed, and
each class's ratios against it are reported beside the verdict. `proposal` is reported, not judged: a few dozen flows a minute
whose pace is set by the writers make a p99 of noise. Beside it, reported
and not judged, each class's lowest throughput ratio at the first minute's
machine speed (the ratio times the probe's cost in that minute over its
cost in the first): a minute that fails the verdict while this stays
within it was slow because the machine was.

SOAK_KEEP_DB=PATH (SQLite): after the verdict the server is stopped and its
database is copied to PATH, with its log (PATH-wal) and audit key
(PATH.audit.key), for offline study of a grown database: a server started
on the copy with that key carries on its audit chain (docs/BENCHMARKS.md
round 25).
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import db_residency  # noqa: E402
import harness  # noqa: E402
import pg_background  # noqa: E402
import soak_workload as sw  # noqa: E402

VERDICT_CLASSES = ("write", "read", "diff", "lock", "audit")
MIN_TPUT, MAX_P99 = 0.8, 1.2


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def cpu_s(pid):
    """The server's user + system CPU seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """The server's CPU seconds by thread role: /proc/PID/task/*/comm names
    (oms-handler, oms-audit, oms-checkpoint, ...; "oms" is the event loop
    and the main thread) summed over the threads of that name."""
    out, tick = {}, os.sysconf("SC_CLK_TCK")
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def handler_cpu(srv):
    """By 'METHOD route' (/metrics): (oms_http_handler_cpu_seconds_total,
    oms_http_requests_total over all statuses)."""
    r = srv.get("/metrics", headers=srv.auth("soak-metrics", ("service_account",)))
    cpu, count = {}, {}
    if r.status != 200:
        return cpu, count
    for line in r.body.split("\n"):
        for prefix, into in (("oms_http_handler_cpu_seconds_total{", cpu), ("oms_http_requests_total{", count)):
            if not line.startswith(prefix):
                continue
            labels, value = line.rsplit(" ", 1)
            kv = dict(part.split("=", 1) for part in labels[labels.index("{") + 1:-1].split('",'))
            key = f"{kv.get('method', '?').strip(chr(34))} {kv.get('route', '?').strip(chr(34))}"
            into[key] = into.get(key, 0.0) + float(value)
    return cpu, count


def page_cache_events():
    """(cache drops, file pages refaulted, major faults) since boot
    (/proc/vmstat): a drop is someone writing /proc/sys/vm/drop_caches
    (not this project: the machine's own agents do), after which the
    database's pages come from the disk again."""
    v = {}
    with open("/proc/vmstat") as f:
        for line in f:
            k, _, val = line.partition(" ")
            v[k] = int(val)
    return v.get("drop_pagecache", 0), v.get("workingset_refault_file", 0), v.get("pgmajfault", 0)


def proactive_reclaim():
    """The machine's DAMON schemes that page memory out (a VM's own agent
    sets them up to hand idle memory back to its host): one line each,
    or None. Under one, database pages no request touched for the
    scheme's minimum age leave the page cache while memory is free, and
    the next read of them goes to the disk."""
    base = "/sys/kernel/mm/damon/admin/kdamonds"
    lines = []
    try:
        for k in sorted(os.listdir(base)):
            if not k.isdigit() or open(f"{base}/{k}/state").read().strip() != "on":
                continue
            for ctx in sorted(os.listdir(f"{base}/{k}/contexts")):
                c = f"{base}/{k}/contexts/{ctx}"
                if not ctx.isdigit():
                    continue
                aggr_us = int(open(f"{c}/monitoring_attrs/intervals/aggr_us").read())
                for sc in sorted(os.listdir(f"{c}/schemes")):
                    if not sc.isdigit():
                        continue
                    d = f"{c}/schemes/{sc}"
                    action = open(f"{d}/action").read().strip()
                    if action != "pageout":
                        continue
                    age = int(open(f"{d}/access_pattern/age/min").read()) * aggr_us / 1e6
                    quota = int(open(f"{d}/quotas/bytes").read()) / 2**20
                    every = int(open(f"{d}/quotas/reset_interval_ms").read())
                    lines.append(f"DAMON {open(f'{c}/operations').read().strip()} pageout of memory idle >= "
                                 f"{age:g} s, at most {quota:g} MiB per {every} ms")
    except (OSError, ValueError):
        pass
    return "; ".join(lines) or None


def machine_cpu():
    """(steal, total) jiffies of all CPUs (/proc/stat): time the host gave
    this machine's virtual CPUs to someone else, against all of it."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    return vals[7] if len(vals) > 7 else 0, sum(vals[:8])


class BackgroundSampler:
    """A thread that appends (monotonic time, value) to `samples` until
    stopped: the probes beside the soak."""

    def __init__(self):
        import threading
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        raise NotImplementedError

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def between(self, t0, t1):
        return sorted(v for t, v in self.samples if t0 <= t < t1)


class MachineProbe(BackgroundSampler):
    """The machine's speed, measured beside the soak: every PROBE_EVERY
    seconds a fixed unit of work (SHA-256 of 2 MiB, a JSON round trip of a
    resource-sized document 40 times, a pure-Python loop) and the CPU time
    this thread spent on it (time.thread_time: its own execution, not its
    share of the cores). The work never changes, so a unit that costs more
    CPU means a slower machine (another tenant on the host, the clock
    speed), not a slower service: the baseline the soak's minutes are read
    against (docs/BENCHMARKS.md)."""
    PROBE_EVERY = 2.0

    def __init__(self):
        import hashlib
        import json
        super().__init__()
        self._hash, self._json = hashlib.sha256, json
        self._buf = bytes(range(256)) * 256  # 64 KiB
        self._doc = {"api_name": "Probe", "properties": [{"api_name": f"p{i}", "type": "string", "required": i % 2 == 0}
                                                          for i in range(20)], "primary_key": "p0"}
        # samples: (monotonic, CPU ms of one unit)

    def unit(self):
        t0 = time.thread_time()
        for _ in range(32):
            self._hash(self._buf).digest()
        for _ in range(40):
            self._json.loads(self._json.dumps(self._doc))
        acc = 0
        for i in range(20000):
            acc = (acc * 31 + i) & 0xFFFFFFFF
        return 1000 * (time.thread_time() - t0)

    def _loop(self):
        while not self._stop.wait(self.PROBE_EVERY):
            self.samples.append((time.monotonic(), self.unit()))

    def median_between(self, t0, t1):
        vals = self.between(t0, t1)
        return vals[len(vals) // 2] if vals else None


class MemoryProbe(BackgroundSampler):
    """The memory's speed, beside the soak: every EVERY seconds the CPU
    time of a copy of 64 MiB (bandwidth) and of a gather of one byte in
    every 4,099 over 256 MiB (each a cache and TLB miss: latency). Its data
    is far larger than the last-level cache, unlike MachineProbe's: a host
    whose other tenants take the shared cache or the memory's bandwidth
    makes this cost more and leaves that one flat."""
    EVERY = 4.0

    def __init__(self):
        super().__init__()
        self._big = bytearray(os.urandom(1 << 20)) * 256  # 256 MiB, every page touched

    def unit(self):
        t0 = time.thread_time()
        bytes(self._big[: 64 << 20])
        self._big[::4099]
        return 1000 * (time.thread_time() - t0)

    def _loop(self):
        while not self._stop.wait(self.EVERY):
            self.samples.append((time.monotonic(), self.unit()))

    def median_between(self, t0, t1):
        vals = self.between(t0, t1)
        return vals[len(vals) // 2] if vals else None


class SyncProbe(BackgroundSampler):
    """The disk's durable-write latency beside the soak: every half second,
    one 4 KiB write and fdatasync to a file of its own on the database's
    filesystem, timed by the wall clock. A minute whose commits slow while
    this slows too was paced by the disk (every commit waits for one such
    sync); one where this stays flat was not."""
    EVERY = 0.5

    def __init__(self, directory):
        super().__init__()
        self._path = os.path.join(directory, "sync-probe")  # samples: (monotonic, ms of one write + fdatasync)

    def _loop(self):
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT, 0o600)
        block = os.urandom(4096)
        try:
            while not self._stop.wait(self.EVERY):
                t0 = time.monotonic()
                os.pwrite(fd, block, 0)
                os.fdatasync(fd)
                self.samples.append((t0, 1000 * (time.monotonic() - t0)))
        finally:
            os.close(fd)

    def quantiles_between(self, t0, t1):
        vals = self.between(t0, t1)
        if not vals:
            return None, None
        return vals[len(vals) // 2], vals[min(len(vals) - 1, int(len(vals) * 0.9))]


def disk_sectors():
    """(read, written) 512-byte sectors of the machine's disks
    (/proc/diskstats, whole devices only): a minute that reads from the
    disk is one whose database no longer fits the page cache."""
    rd = wr = 0
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            name = p[2]
            if name.startswith(("loop", "ram", "zram", "dm-")) or (name[-1].isdigit() and not name.startswith("nvme")):
                continue
            rd, wr = rd + int(p[5]), wr + int(p[9])
    return rd, wr


def db_bytes(srv):
    if srv.backend == "sqlite":
        return sum(os.path.getsize(srv.db_path + ext) for ext in ("", "-wal", "-shm")
                   if os.path.exists(srv.db_path + ext))
    # asked from the maintenance database: a session on the server's own
    # database would take its sole-writer lease away (commit_count)
    return int(harness._psql(harness.PG_URL, f"SELECT pg_database_size('{srv.dbname}')", tuples=True).strip())


def wal_mb(srv):
    """SQLite: the write-ahead log's size (a log that never resets slows every read)."""
    if srv.backend != "sqlite" or not os.path.exists(srv.db_path + "-wal"):
        return None
    return os.path.getsize(srv.db_path + "-wal") / 1e6


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    minutes = float(sys.argv[2]) if len(sys.argv) > 2 else float(os.environ.get("SOAK_MINUTES", "20"))
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    # intervals run before the measured ones (docs/BENCHMARKS.md round 20)
    warm = int(round(float(os.environ.get("SOAK_WARMUP_MINUTES", "1")) * 60 / interval))
    cfg = sw.Config(seed_types=int(os.environ.get("SOAK_SEED_TYPES", "1000")), verify_max=500)
    env = {"OMS_LOG_LEVEL": "warn"}
    # cache sizes, for A/B runs of one setting (docs/BENCHMARKS.md)
    for name in ("OMS_SNAPSHOT_CACHE_MB", "OMS_SQLITE_WRITER_CACHE_MB", "OMS_SQLITE_MMAP_MB"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    srv = harness.Server(backend, env=env)
    failures = []
    try:
        t = time.time()
        sw.seed(srv, cfg)
        print(f"soak[{backend}]: seeded {cfg.seed_types} object types and {sw.SEED_PROPERTIES} shared properties "
              f"in {time.time() - t:.1f} s; {cfg.writers} writers, {cfg.readers} readers, {min(cfg.reviewers, 1)} reviewer, 1 locker, "
              f"1 auditor (closed loop, one keep-alive connection each); {minutes:g} min in {interval:g} s intervals",
              flush=True)
        split = []  # per boundary: (server CPU s by thread role, handler CPU s by route)
        resident = []  # per boundary: the SQLite file's pages in the page cache (db_residency)
        print(f"soak[{backend}]: proactive reclaim on this machine: {proactive_reclaim() or 'none'}", flush=True)
        ticks = []  # per boundary: (wall, rss MB, db bytes, commits, server CPU s, load average, WAL MB, machine CPU,
        #               disk sectors read and written, % of the SQLite file cached)

        # PostgreSQL's own upkeep beside the server (bench/pg_background.py)
        pg = pg_background.PgBackground(harness.PG_URL, srv.dbname, lambda sql: harness._psql(
            harness.PG_URL, sql, tuples=True)) if srv.backend == "pg" else None
        pg_ticks = []

        def on_tick(k):
            snap = db_residency.snapshot(srv.db_path) if srv.backend == "sqlite" else None
            ticks.append((time.monotonic(), rss_mb(srv.proc.pid), db_bytes(srv), sw.commit_count(srv),
                          cpu_s(srv.proc.pid), os.getloadavg()[0], wal_mb(srv), machine_cpu(), disk_sectors(),
                          db_residency.resident_pct(snap)))
            split.append((thread_cpu(srv.proc.pid),) + handler_cpu(srv) + (page_cache_events(),))
            if pg:
                pg_ticks.append(pg.tick())
            if srv.backend == "sqlite":
                resident.append(snap)
            if k:
                lease = ""
                if srv.backend == "pg":  # whether the instance answered repeat reads from memory
                    lease = (f", sole-writer lease {'held' if srv.metric('oms_db_sole_writer') else 'not held'}"
                             f" ({srv.metric('oms_db_sole_writer_yields_total'):.0f} given back so far)")
                print(f"  interval {k} done: {ticks[-1][3] - ticks[-2][3]} commits, RSS {ticks[-1][1]:.1f} MB{lease}",
                      flush=True)

        probe, mem, sync = MachineProbe(), MemoryProbe(), SyncProbe(srv.tmp)
        probes = [probe, mem, sync]
        if pg:
            probes.append(pg)
        for p in probes:
            p.start()
        try:
            res = sw.run(srv, cfg, minutes * 60 + warm * interval, interval, on_tick)
        finally:
            for p in probes:
                p.stop()
        verify = sw.audit_verify(srv)
        failures += report(backend, res, ticks, verify, probe, sync, mem, warm)
        report_cpu_split(res, ticks, split)
        if pg:
            pg_background.report(backend, ticks, pg, pg_ticks, "min" if interval == 60 else "interval")
        if resident:
            db_residency.report(srv.db_path, resident, "min" if interval == 60 else "interval")
        if srv.proc.poll() is not None:
            failures.append(f"the server exited ({srv.proc.returncode})")
    finally:
        try:
            keep_database(srv, os.environ.get("SOAK_KEEP_DB"))
        finally:
            srv.destroy()
    print(f"soak[{backend}]: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    print(f"soak: {0 if failures else 1} passed, {1 if failures else 0} failed")
    sys.exit(1 if failures else 0)


def keep_database(srv, path):
    """SOAK_KEEP_DB: the stopped server's SQLite file, log and audit key."""
    if not path or srv.backend != "sqlite":
        return
    srv.stop()
    key = os.path.join(os.path.dirname(srv.db_path), "audit.key")
    # a log or index left at PATH by an earlier copy would be replayed onto this one
    for stale in (path + "-wal", path + "-shm"):
        if os.path.exists(stale):
            os.remove(stale)
    for src, dst in ((srv.db_path, path), (srv.db_path + "-wal", path + "-wal"), (key, path + ".audit.key")):
        if os.path.exists(src):
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o600)
    print(f"soak[sqlite]: database kept as {path}", flush=True)


ALWAYS_PER_REQUEST = ("POST /api/v1/proposals", "POST /api/v1/proposals/{id}/merge", "GET /api/v1/proposals/{id}")


def report_cpu_split(res, ticks, split, top=10):
    """Where the server's CPU went, per interval: by thread role (all of
    it) and, of the handler threads' share, by route (the `top` routes of
    the run), in ms of CPU per second of wall time (1000 = one core)."""
    if len(split) < 2:
        return
    unit = "min" if res.interval == 60 else "interval"
    n = len(split) - 1
    walls = [max(ticks[b][0] - ticks[b - 1][0], 1e-9) for b in range(1, len(ticks))]

    def table(title, index):
        keys = set()
        for sp in split:
            keys |= set(sp[index])
        total = {k: split[-1][index].get(k, 0.0) - split[0][index].get(k, 0.0) for k in keys}
        rows = sorted((k for k in keys if total[k] > 0), key=lambda k: -total[k])[:top]
        print(f"\n{title}: CPU ms per second of wall time, per {unit} (1000 = one core)")
        print(f"| | " + " | ".join(f"{unit} {b + 1}" for b in range(n)) + " | run total s |")
        print("|---|" + "---|" * (n + 1))
        for k in rows:
            cells = [1000 * (split[b][index].get(k, 0.0) - split[b - 1][index].get(k, 0.0)) / walls[b - 1]
                     for b in range(1, n + 1)]
            print(f"| {k} | " + " | ".join(f"{c:.0f}" for c in cells) + f" | {total[k]:.1f} |")

    print(f"\npage cache per {unit}: drops of the whole cache (drop_caches writes), pages refaulted MB, major faults")
    print(f"| | " + " | ".join(f"{unit} {b + 1}" for b in range(n)) + " |")
    print("|---|" + "---|" * n)
    pc = [sp[3] for sp in split]
    print("| cache drops | " + " | ".join(str(pc[b][0] - pc[b - 1][0]) for b in range(1, n + 1)) + " |")
    print("| refaulted MB | " + " | ".join(f"{(pc[b][1] - pc[b - 1][1]) * 4096 / 1e6:.0f}" for b in range(1, n + 1)) + " |")
    print("| major faults | " + " | ".join(str(pc[b][2] - pc[b - 1][2]) for b in range(1, n + 1)) + " |")
    table("server CPU by thread", 0)
    table("handler threads' CPU by route (inline answers excluded)", 1)

    # the same routes' CPU per request: a cost that grows with the data shows
    # here; the proposal flow's routes always (a merge base walks history)
    keys = set(split[-1][1])
    total = {k: split[-1][1].get(k, 0.0) - split[0][1].get(k, 0.0) for k in keys}
    rows = sorted((k for k in keys if total[k] > 0), key=lambda k: -total[k])[:top]
    rows += sorted(k for k in keys if k in ALWAYS_PER_REQUEST and k not in rows and total[k] > 0)
    print(f"\nhandler CPU per request, us, per {unit} (requests answered inline count in the denominator)")
    print(f"| | " + " | ".join(f"{unit} {b + 1}" for b in range(n)) + " |")
    print("|---|" + "---|" * n)
    for k in rows:
        cells = []
        for b in range(1, n + 1):
            dc = split[b][2].get(k, 0.0) - split[b - 1][2].get(k, 0.0)
            du = split[b][1].get(k, 0.0) - split[b - 1][1].get(k, 0.0)
            cells.append(f"{1e6 * du / dc:.0f}" if dc else "-")
        print(f"| {k} | " + " | ".join(cells) + " |")


def report(backend, res, ticks, verify, probe, sync, mem, warm=0):
    """Prints the tables; returns the failures."""
    n, unit = res.n, ("min" if res.interval == 60 else "interval")
    print(f"\n{backend}: per {unit} and class: ops/s, p50 ms, p99 ms, errors")
    print("| class | " + " | ".join(f"{unit} {b + 1}" for b in range(n)) + " |")
    print("|---|" + "---|" * n)
    for cls in sw.CLASSES:
        cells = []
        for b in range(n):
            tp, p50, p99, err = res.stats(b, cls)
            cells.append(f"{tp:.1f}/s {fmt(p50)}/{fmt(p99)}" + (f" E{err}" if err else ""))
        print(f"| {cls} | " + " | ".join(cells) + " |")
    for step in sw.WRITE_STEPS:  # the writes by branch: the shared develop, the writers' feature branches
        cells = []
        for b in range(n):
            tp, p50, p99, _ = res.stats(b, f"write:{step}")
            cells.append(f"{tp:.1f}/s {fmt(p50)}/{fmt(p99)}")
        print(f"| write: {step} | " + " | ".join(cells) + " |")
    for step in sw.PROPOSAL_STEPS:  # the proposal flow step by step (feature branch create and delete included)
        cells = []
        for b in range(n):
            tp, p50, p99, _ = res.stats(b, f"proposal:{step}")
            cells.append(f"{tp:.1f}/s {fmt(p50)}/{fmt(p99)}")
        print(f"| proposal: {step} | " + " | ".join(cells) + " |")

    print(f"\n{backend}: per {unit}: commits, database, server")
    print("| " + unit + " | commits | DB MB (WAL) | DB growth MB | bytes per commit | RSS MB | server CPU % | clients CPU % "
          "| server CPU ms per commit | steal % | load avg | machine probe ms (x first) | disk read / written MB "
          "| DB cached % | sync ms p50 / p90 | memory probe ms (x first) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    probe_ms = [probe.median_between(ticks[b - 1][0], ticks[b][0]) for b in range(1, len(ticks))]
    mem_ms = [mem.median_between(ticks[b - 1][0], ticks[b][0]) for b in range(1, len(ticks))]
    for b in range(1, len(ticks)):
        w0, _, d0, c0, s0, _, _, m0, k0, _ = ticks[b - 1]
        w1, rss, d1, c1, s1, load, wal, m1, k1, cached = ticks[b]
        steal = 100 * (m1[0] - m0[0]) / max(m1[1] - m0[1], 1)
        dt = max(w1 - w0, 1e-9)
        dc = c1 - c0
        cc = (res.client_cpu_at[b] - res.client_cpu_at[b - 1]) if b < len(res.client_cpu_at) else None
        print(f"| {b} | {dc} (total {c1}) | {d1 / 1e6:.1f}" + (f" ({wal:.1f})" if wal is not None else "") +
              f" | {(d1 - d0) / 1e6:+.1f} | "
              f"{(d1 - d0) / dc if dc else 0:.0f} | {rss:.1f} | {100 * (s1 - s0) / dt:.0f} | "
              f"{fmt(100 * cc / dt if cc is not None else None, '.0f')} | "
              f"{fmt(1000 * (s1 - s0) / dc if dc else None, '.2f')} | {steal:.1f} | {load:.2f} | "
              f"{fmt(probe_ms[b - 1], '.2f')}" + (f" ({probe_ms[b - 1] / probe_ms[0]:.2f})"
                                                   if probe_ms[b - 1] and probe_ms[0] else "") +
              f" | {(k1[0] - k0[0]) * 512 / 1e6:.0f} / {(k1[1] - k0[1]) * 512 / 1e6:.0f} | {fmt(cached, '.1f')} | "
              f"{fmt(sync.quantiles_between(w0, w1)[0], '.2f')} / {fmt(sync.quantiles_between(w0, w1)[1], '.2f')} | "
              f"{fmt(mem_ms[b - 1], '.1f')}" + (f" ({mem_ms[b - 1] / mem_ms[0]:.2f})" if mem_ms[b - 1] and mem_ms[0] else "")
              + " |")
    if len(ticks) > 1:
        d_all, c_all = ticks[-1][2] - ticks[0][2], ticks[-1][3] - ticks[0][3]
        print(f"whole run: {c_all} commits, database {ticks[0][2] / 1e6:.1f} -> {ticks[-1][2] / 1e6:.1f} MB "
              f"({d_all / c_all if c_all else 0:.0f} bytes per commit), RSS {ticks[0][1]:.1f} -> {ticks[-1][1]:.1f} MB")

    failures = []
    first = min(warm, n - 1)  # the first measured interval: the verdict's baseline
    name = lambda b: f"{unit} {b + 1}"  # noqa: E731
    print(f"\n{backend}: verdict (each {unit} after {name(first)} against {name(first)}: throughput >= {MIN_TPUT} x, "
          f"p99 <= {MAX_P99} x" + (f"; {name(0)}" + (f"-{name(first - 1)}" if first > 1 else "") +
                                   " ran as warm-up, judged against only in the last column" if first else "") + ")")
    print(f"| class | {name(first)}: ops/s | {name(first)}: p99 ms | lowest throughput ratio | highest p99 ratio "
          f"| verdict | lowest throughput ratio at {name(first)}'s machine speed (reported only) "
          f"| against {name(0)}: lowest throughput / highest p99 ratio (reported only) |")
    print("|---|---|---|---|---|---|---|---|")
    for cls in VERDICT_CLASSES:
        tp0, _, p990, _ = res.stats(first, cls)
        tpw, _, p99w, _ = res.stats(0, cls)
        worst_tp, worst_p99, ok = None, None, tp0 > 0 and p990 is not None
        worst_adj, vs_warm = None, [None, None]
        for b in range(first + 1, n):
            tp, _, p99, _ = res.stats(b, cls)
            r_tp = tp / tp0 if tp0 else 0.0
            if b < len(probe_ms) and probe_ms[b] and probe_ms[first]:
                adj = r_tp * probe_ms[b] / probe_ms[first]  # throughput scaled by the probe's cost against the baseline
                if worst_adj is None or adj < worst_adj[0]:
                    worst_adj = (adj, b + 1)
            r_p99 = (p99 / p990) if (p99 is not None and p990) else float("inf")
            if worst_tp is None or r_tp < worst_tp[0]:
                worst_tp = (r_tp, b + 1)
            if worst_p99 is None or r_p99 > worst_p99[0]:
                worst_p99 = (r_p99, b + 1)
            ok = ok and r_tp >= MIN_TPUT and r_p99 <= MAX_P99
            if tpw:
                vs_warm[0] = min(vs_warm[0] if vs_warm[0] is not None else 1e9, tp / tpw)
            if p99 is not None and p99w:
                vs_warm[1] = max(vs_warm[1] or 0.0, p99 / p99w)
        wt = f"{worst_tp[0]:.2f} ({unit} {worst_tp[1]})" if worst_tp else "-"
        wp = f"{worst_p99[0]:.2f} ({unit} {worst_p99[1]})" if worst_p99 else "-"
        wa = f"{worst_adj[0]:.2f} ({unit} {worst_adj[1]})" if worst_adj else "-"
        ww = f"{fmt(vs_warm[0], '.2f')} / {fmt(vs_warm[1], '.2f')}" if first else "-"
        print(f"| {cls} | {tp0:.1f} | {fmt(p990, '.2f')} | {wt} | {wp} | {'pass' if ok else 'FAIL'} | {wa} | {ww} |")
        if not ok:
            failures.append(f"{cls} outside the bounds")
    tp0, _, p990, _ = res.stats(first, "proposal")
    print(f"(proposal, reported only: {name(first)} {tp0:.1f}/s, p99 {fmt(p990, '.1f')} ms)")

    nerr = res.total_errors()
    print(f"\nerrors: {nerr}; 412 conflicts on the shared branch (expected, not errors): {res.conflicts}; "
          f"proposals opened: {res.proposals}, approved and merged: {res.merged}")
    by = {}
    for (b, cls), k in res.nerrors.items():
        by[cls] = by.get(cls, 0) + k
    if by:
        print("errors by class: " + ", ".join(f"{c} {k}" for c, k in sorted(by.items())))
    for e in res.errors[:20]:
        print(f"  {e['client']} {e['class']} {e['method']} {e['path']} -> {e['status']} "
              f"(expected {e['expected']}): {e['body'][:300]}")
    if nerr:
        failures.append(f"{nerr} errors")
    print(f"acknowledged writes: {res.acked}, read back as of their commit: {res.checked}, "
          f"not as acknowledged: {res.nunreadable}")
    for u in res.unreadable[:10]:
        print(f"  {u}")
    if res.nunreadable:
        failures.append(f"{res.nunreadable} acknowledged writes not readable as acknowledged")
    total_cpu = sum(res.client_cpu.values())
    print(f"client CPU: {total_cpu:.1f} s in all ({100 * total_cpu / (res.n * res.interval):.0f} % of one core "
          f"over the run)")
    print(f"audit verify: {verify}")
    if not verify.get("ok"):
        failures.append("the audit chain does not verify")
    return failures


if __name__ == "__main__":
    main()
