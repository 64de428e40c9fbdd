"""/metrics (SPEC §10, docs/operations.md): the whole exposition is parsed
with the Prometheus client library's own parser and checked line by line
against the text format (HELP and TYPE once per family, before its samples;
histograms cumulative with +Inf equal to _count). Scripted scenarios then
move each series by an exact amount: commits by kind and outcome, lock waits
(423 writes, 409 acquisitions), audit write latency, unmatched routes labelled
with their method, request histograms, the database pool."""

import math
import re
import sys
import time

from harness import Skip, quote

DEV = ("developer",)
SVC = ("service_account",)

# name (as TYPE declares it) -> type
REQUIRED = {
    "oms_http_requests_total": "counter",
    "oms_http_request_duration_seconds": "histogram",
    "oms_auth_failures_total": "counter",
    "oms_authz_denials_total": "counter",
    "oms_audit_writes_total": "counter",
    "oms_audit_write_duration_seconds": "histogram",
    "oms_commits_total": "counter",
    "oms_lock_waits_total": "counter",
    "oms_locks_active": "gauge",
    "oms_search_duration_seconds": "histogram",
    "oms_index_rebuild_progress_percent": "gauge",
    "oms_index_rebuild_resources": "gauge",
    "oms_db_pool_connections_open": "gauge",
    "oms_db_pool_connections_in_use": "gauge",
    "oms_db_roundtrips_total": "counter",
    "oms_db_statement_cache_total": "counter",
    "oms_db_freshness_requests_total": "counter",
    "oms_db_freshness_reads_total": "counter",
    "oms_db_freshness_flights_recycled_total": "counter",
    "oms_sqlite_cache_truncations_total": "counter",
    "oms_sqlite_wal_writes_total": "counter",
    "oms_inflight_requests": "gauge",
    "oms_events_outbox_depth": "gauge",
    "oms_webhook_deliveries_total": "counter",
}

_SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def _parser():
    """prometheus_client's text parser (Debian: python3-prometheus-client,
    installed by scripts/install-deps.sh). A python3 outside Debian's (pyenv)
    does not search Debian's module folder: add it. Missing: the test fails."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        from prometheus_client.parser import text_string_to_metric_families
    return text_string_to_metric_families


def _h(srv, sub="dev", roles=DEV, issue=True, **extra):
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = "OPS-8"
    h.update(extra)
    return h


def _check_lines(text):
    """The text format, line by line, beyond what the parser insists on."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    declared = {}  # family -> {"help": n, "type": t}
    current = None
    seen_samples = set()
    for line in text.split("\n")[:-1]:
        assert line.strip() == line and line, f"blank or padded line: {line!r}"
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert _NAME.match(name), line
            assert name not in declared, f"family {name} declared twice"
            declared[name] = {"help": True}
            current = name
        elif line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert name == current and "type" not in declared[name], f"TYPE without its HELP just before: {line}"
            assert typ in _SUFFIXES, line
            declared[name]["type"] = typ
        elif line.startswith("#"):
            raise AssertionError(f"unexpected comment: {line}")
        else:
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            assert current and "type" in declared[current], f"sample before any HELP/TYPE: {line}"
            typ = declared[current]["type"]
            assert name in [current + s for s in _SUFFIXES[typ]], f"{name} outside its family {current}: {line}"
            key = line.rsplit(" ", 1)[0]
            assert key not in seen_samples, f"duplicate sample {key}"
            seen_samples.add(key)
            value = line.rsplit(" ", 1)[1]
            float(value)  # a number, +Inf, -Inf or NaN
    return {n: d["type"] for n, d in declared.items()}


class Scrape:
    def __init__(self, srv):
        r = srv.get("/metrics", headers=srv.auth("svc", SVC))
        assert r.status == 200, r
        assert r.header("Content-Type").startswith("text/plain; version=0.0.4"), r.header("Content-Type")
        self.text = r.body
        self.types = _check_lines(r.body)
        self.families = {}
        for fam in _parser()(r.body):  # raises on anything it cannot parse
            assert fam.name not in self.families, f"family {fam.name} split in two"
            assert fam.type != "unknown", f"untyped family {fam.name}"
            self.families[fam.name] = fam
        self.samples = [s for f in self.families.values() for s in f.samples]
        for f in self.families.values():
            if f.type == "histogram":
                _check_histogram(f)

    def value(self, name, **labels):
        """The sample's value; 0 when the series is absent."""
        for s in self.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()) and \
                    len(s.labels) == len(labels):
                return s.value
        return 0.0

    def sum(self, name, **labels):
        return sum(s.value for s in self.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    def has(self, name, **labels):
        return any(s.name == name and all(s.labels.get(k) == v for k, v in labels.items()) for s in self.samples)


def _check_histogram(fam):
    """Every series: buckets sorted by le, cumulative, ending in +Inf equal to
    _count, with a _sum."""
    series = {}
    for s in fam.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if s.name.endswith("_bucket"):
            series[key]["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_sum"):
            series[key]["sum"] = s.value
        elif s.name.endswith("_count"):
            series[key]["count"] = s.value
    for key, d in series.items():
        b = d["buckets"]
        assert b and b[-1][0] == math.inf, f"{fam.name}{key}: no +Inf bucket"
        assert [le for le, _ in b] == sorted(le for le, _ in b) and len({le for le, _ in b}) == len(b), \
            f"{fam.name}{key}: buckets out of order"
        assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), f"{fam.name}{key}: not cumulative: {b}"
        assert d["count"] is not None and d["sum"] is not None, f"{fam.name}{key}: _count or _sum missing"
        assert b[-1][1] == d["count"], f"{fam.name}{key}: +Inf {b[-1][1]} != _count {d['count']}"
        assert d["sum"] >= 0


def _until(srv, pred, timeout=3.0):
    """Scrapes until pred(scrape) holds (request series are recorded when
    the connection completes, a moment after the client has its answer)."""
    deadline = time.time() + timeout
    while True:
        s = Scrape(srv)
        if pred(s) or time.time() > deadline:
            return s
        time.sleep(0.05)


def _branch(srv, name, frm="main"):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": frm})
    assert r.status == 201, r


def _url(branch, kind, name=None):
    u = f"/api/v1/schemas/{quote(branch)}/{kind}"
    return u + (f"/{name}" if name else "")


def _post_prop(srv, branch, name, sub="dev"):
    return srv.request("POST", _url(branch, "shared-properties"), headers=_h(srv, sub),
                       json_body={"api_name": name, "type": "string"})


def _prop(srv, name, branch="mx/a", expect=201):
    r = _post_prop(srv, branch, name)
    assert r.status == expect, r
    return r


def _commits(s, kind, outcome="ok"):
    return s.value("oms_commits_total", kind=kind, outcome=outcome)


# ---- the exposition ----

def test_metrics_every_family_parses_with_its_type(ctx):
    srv = ctx.server
    srv.get("/health")
    s = Scrape(srv)
    for name, typ in REQUIRED.items():
        assert s.types.get(name) == typ, f"{name}: declared {s.types.get(name)!r}, want {typ}"
        fam = s.families.get(name[:-len("_total")] if typ == "counter" else name)
        assert fam is not None and fam.type == typ, f"{name} not parsed as a {typ}"
    # every series of the commit and lock-wait counters is there from the start
    for kind in ("change", "merge", "revert", "fast_forward"):
        for outcome in ("ok", "conflict", "error"):
            assert s.has("oms_commits_total", kind=kind, outcome=outcome), (kind, outcome)
    for op in ("write", "acquire"):
        assert s.has("oms_lock_waits_total", operation=op), op
    assert s.has("oms_audit_write_duration_seconds_bucket", le="+Inf")
    # the old counter-sum stand-in for a histogram is gone
    assert "oms_audit_write_seconds_total" not in s.types
    # no sample has an empty method
    assert not [x for x in s.samples if x.labels.get("method") == ""], "a sample with method=\"\""


# ---- commits ----

def test_metrics_commits_by_kind(ctx):
    srv = ctx.server
    _branch(srv, "mx/a")
    s0 = Scrape(srv)
    commits = [_prop(srv, f"Mx{i}").header("X-Commit") for i in range(3)]
    s1 = Scrape(srv)
    assert _commits(s1, "change") - _commits(s0, "change") == 3
    for kind in ("merge", "revert", "fast_forward"):
        assert _commits(s1, kind) == _commits(s0, kind), kind

    # a fast-forward moves the target to an existing commit
    _branch(srv, "mx/src", "mx/a")
    _prop(srv, "FromSrc", branch="mx/src")
    r = srv.request("POST", "/api/v1/branches/mx%2Fa/merge", headers=_h(srv), json_body={"source": "mx/src"})
    assert r.status == 200 and r.json()["status"] == "fast_forward", r
    s2 = Scrape(srv)
    assert _commits(s2, "change") - _commits(s1, "change") == 1
    assert _commits(s2, "fast_forward") - _commits(s1, "fast_forward") == 1

    # a revert is one commit of its own kind
    r = srv.request("POST", "/api/v1/branches/mx%2Fa/revert", headers=_h(srv), json_body={"commit": commits[0]})
    assert r.status == 201, r
    s3 = Scrape(srv)
    assert _commits(s3, "revert") - _commits(s2, "revert") == 1
    assert _commits(s3, "change") == _commits(s2, "change")

    # a true merge: two changes, then one merge commit
    _branch(srv, "mx/side", "mx/a")
    _prop(srv, "OnSide", branch="mx/side")
    _prop(srv, "OnTarget", branch="mx/a")
    r = srv.request("POST", "/api/v1/branches/mx%2Fa/merge", headers=_h(srv), json_body={"source": "mx/side"})
    assert r.status == 200 and r.json()["status"] == "merged", r
    s4 = Scrape(srv)
    assert _commits(s4, "change") - _commits(s3, "change") == 2
    assert _commits(s4, "merge") - _commits(s3, "merge") == 1
    assert _commits(s4, "fast_forward") == _commits(s3, "fast_forward")

    # a refusal before the write (a duplicate) is no commit at all
    _prop(srv, "Mx1", branch="mx/side", expect=409)
    s5 = Scrape(srv)
    for kind in ("change", "merge", "revert", "fast_forward"):
        for outcome in ("ok", "conflict", "error"):
            assert _commits(s5, kind, outcome) == _commits(s4, kind, outcome), (kind, outcome)


# ---- locks ----

def test_metrics_lock_waits(ctx):
    srv = ctx.server
    _branch(srv, "mx/locked")
    s0 = Scrape(srv)
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "alice"),
                    json_body={"branch": "mx/locked", "scope": "branch", "kind": "maintenance", "reason": "metrics"})
    assert r.status == 201, r
    lock = r.json()["id"]
    # bob's write meets 423: one write wait, no commit
    r = _post_prop(srv, "mx/locked", "Blocked", "bob")
    assert r.status == 423, r
    s1 = Scrape(srv)
    assert s1.value("oms_lock_waits_total", operation="write") - s0.value("oms_lock_waits_total", operation="write") == 1
    assert s1.value("oms_lock_waits_total", operation="acquire") == s0.value("oms_lock_waits_total", operation="acquire")
    assert s1.sum("oms_commits_total") == s0.sum("oms_commits_total")
    assert s1.value("oms_locks_active", kind="maintenance") >= 1
    # bob's acquisition meets 409: one acquire wait
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "bob"),
                    json_body={"branch": "mx/locked", "scope": "branch", "reason": "me too"})
    assert r.status == 409 and r.json()["code"] == "lock_conflict", r
    s2 = Scrape(srv)
    assert s2.value("oms_lock_waits_total", operation="acquire") - s1.value("oms_lock_waits_total", operation="acquire") == 1
    assert s2.value("oms_lock_waits_total", operation="write") == s1.value("oms_lock_waits_total", operation="write")
    r = srv.request("DELETE", f"/api/v1/locks/{lock}", headers=_h(srv, "alice", issue=False))
    assert r.status == 200, r
    # once released, bob's write passes and counts no wait
    assert _post_prop(srv, "mx/locked", "Free", "bob").status == 201
    s3 = Scrape(srv)
    assert s3.value("oms_lock_waits_total", operation="write") == s2.value("oms_lock_waits_total", operation="write")


# ---- routes ----

def test_metrics_unmatched_routes_have_their_method(ctx):
    srv = ctx.server
    t = srv.auth("dev", DEV)
    s0 = Scrape(srv)
    for _ in range(2):
        assert srv.get("/api/v1/no-such-thing", headers=t).status == 404
    assert srv.request("POST", "/no/such/route", headers=t, body="{}").status == 404

    def grew(s):
        return s.sum("oms_http_requests_total", method="POST", route="(none)") >= \
            s0.sum("oms_http_requests_total", method="POST", route="(none)") + 1 and \
            s.value("oms_http_request_duration_seconds_count", method="GET", route="(none)") >= \
            s0.value("oms_http_request_duration_seconds_count", method="GET", route="(none)") + 2
    s1 = _until(srv, grew)
    assert s1.value("oms_http_requests_total", method="GET", route="(none)", status="4xx") - \
        s0.value("oms_http_requests_total", method="GET", route="(none)", status="4xx") == 2
    assert s1.value("oms_http_requests_total", method="POST", route="(none)", status="4xx") - \
        s0.value("oms_http_requests_total", method="POST", route="(none)", status="4xx") == 1
    assert s1.value("oms_http_request_duration_seconds_count", method="GET", route="(none)") - \
        s0.value("oms_http_request_duration_seconds_count", method="GET", route="(none)") == 2
    assert not [x for x in s1.samples if x.labels.get("method") == ""]
    # a method no route knows is one bounded label value, not the raw token
    srv.request("BREW", "/coffee", headers=t)
    s2 = _until(srv, lambda s: s.has("oms_http_requests_total", method="OTHER", route="(none)"))
    assert s2.has("oms_http_requests_total", method="OTHER", route="(none)")
    assert "BREW" not in s2.text


def test_metrics_request_histogram_counts_every_request(ctx):
    srv = ctx.server
    s0 = Scrape(srv)
    n = 7
    for _ in range(n):
        assert srv.get("/health").status == 200
    key = dict(method="GET", route="/health")
    s1 = _until(srv, lambda s: s.value("oms_http_request_duration_seconds_count", **key) >=
                s0.value("oms_http_request_duration_seconds_count", **key) + n)
    assert s1.value("oms_http_request_duration_seconds_count", **key) - \
        s0.value("oms_http_request_duration_seconds_count", **key) == n
    assert s1.value("oms_http_requests_total", status="2xx", **key) - \
        s0.value("oms_http_requests_total", status="2xx", **key) == n
    assert s1.value("oms_http_request_duration_seconds_bucket", le="+Inf", **key) == \
        s1.value("oms_http_request_duration_seconds_count", **key)
    assert s1.value("oms_http_request_duration_seconds_sum", **key) > s0.value("oms_http_request_duration_seconds_sum", **key)
    # at rest, each route's histogram counts exactly its requests
    s2 = _until(srv, lambda s: True)
    for x in s2.samples:
        if x.name == "oms_http_request_duration_seconds_count" and x.labels["route"] != "/metrics":
            total = s2.sum("oms_http_requests_total", method=x.labels["method"], route=x.labels["route"])
            assert total == x.value, (x.labels, total, x.value)


def test_metrics_handler_cpu_by_route(ctx):
    """A write runs on a handler thread: its route's CPU counter grows, by
    less than the wall time the writes took (a thread cannot use more CPU
    than the time it ran)."""
    srv = ctx.server
    _branch(srv, "mx/cpu")
    route = dict(method="POST", route="/api/v1/schemas/{branch}/{kind}")
    s0 = Scrape(srv)
    t0 = time.monotonic()
    for i in range(20):
        _prop(srv, f"Cpu{i}", branch="mx/cpu")
    wall = time.monotonic() - t0
    s1 = _until(srv, lambda s: s.value("oms_http_handler_cpu_seconds_total", **route) >
                s0.value("oms_http_handler_cpu_seconds_total", **route))
    used = s1.value("oms_http_handler_cpu_seconds_total", **route) - \
        s0.value("oms_http_handler_cpu_seconds_total", **route)
    assert 0 < used < wall, (used, wall)
    assert s1.types.get("oms_http_handler_cpu_seconds_total") == "counter"


# ---- audit ----

def test_metrics_audit_write_histogram(ctx):
    srv = ctx.server
    s0 = Scrape(srv)
    k = 3
    for _ in range(k):  # each denial is audited durably before the 403
        assert srv.get("/metrics", headers=srv.auth("vic", ("viewer",))).status == 403
    s1 = Scrape(srv)
    assert s1.value("oms_audit_write_duration_seconds_count") - s0.value("oms_audit_write_duration_seconds_count") == k
    assert s1.value("oms_audit_writes_total", outcome="ok") - s0.value("oms_audit_writes_total", outcome="ok") == k
    assert s1.value("oms_audit_writes_total", outcome="failed") == s0.value("oms_audit_writes_total", outcome="failed")
    assert s1.value("oms_authz_denials_total") - s0.value("oms_authz_denials_total") == k
    assert s1.value("oms_audit_write_duration_seconds_sum") > s0.value("oms_audit_write_duration_seconds_sum")
    buckets = [x for x in s1.samples if x.name == "oms_audit_write_duration_seconds_bucket"]
    assert len(buckets) >= 10 and buckets[-1].labels["le"] == "+Inf"
    # one authentication failure: one more audit write, by reason
    assert srv.get("/api/v1/me").status == 401
    s2 = Scrape(srv)
    assert s2.value("oms_audit_write_duration_seconds_count") - s1.value("oms_audit_write_duration_seconds_count") == 1
    assert s2.value("oms_auth_failures_total", reason="token_missing") - \
        s1.value("oms_auth_failures_total", reason="token_missing") == 1


# ---- the database pool ----

def test_metrics_db_pool(ctx):
    srv = ctx.server
    _branch(srv, "mx/pool")
    for _ in range(4):
        srv.get("/api/v1/branches", headers=_h(srv, issue=False))
    _prop(srv, "Pooled", branch="mx/pool")
    _prop(srv, "Pooled", branch="mx/pool", expect=409)  # a write transaction rolled back
    s = Scrape(srv)
    opened, in_use = s.value("oms_db_pool_connections_open"), s.value("oms_db_pool_connections_in_use")
    assert opened >= 1 and 0 <= in_use <= opened, (opened, in_use)
    # at rest nothing is in use: every transaction and statement counted in
    # was counted out, the rolled-back one included
    s = _until(srv, lambda x: x.value("oms_db_pool_connections_in_use") == 0)
    assert s.value("oms_db_pool_connections_in_use") == 0, s.value("oms_db_pool_connections_in_use")
    assert s.value("oms_db_pool_connections_open") >= 1


def test_metrics_statement_cache(ctx):
    """Statements run from their connection's cache of prepared statements:
    the same write again and again is found there, and no statement the
    server has run so far (this test runs after most of the suite on the
    shared server) was prepared for one use because a cache was full."""
    srv = ctx.server
    _branch(srv, "mx/stmts")
    _prop(srv, "Stmt0", branch="mx/stmts")
    s0 = Scrape(srv)
    for i in range(1, 21):
        _prop(srv, f"Stmt{i}", branch="mx/stmts")
    s1 = Scrape(srv)
    hits = s1.value("oms_db_statement_cache_total", outcome="hit") - s0.value("oms_db_statement_cache_total", outcome="hit")
    assert hits >= 20 * 3, hits  # every commit runs several statements with parameters
    assert s1.value("oms_db_statement_cache_total", outcome="prepared") >= 1
    assert s1.value("oms_db_statement_cache_total", outcome="uncached") == 0


def test_metrics_sqlite_cache_truncations(ctx):
    """SQLite: the server's page caches are the wrapper's (installed before
    SQLite initialised), and a commit's end-of-transaction truncation, with
    nothing past the database's end, is not passed to SQLite's cache
    (docs/storage.md "SQLite's page cache")."""
    srv = ctx.server
    if srv.backend != "sqlite":
        raise Skip("a SQLite page cache counter; zero on PostgreSQL")
    _branch(srv, "mx/pcache")
    before = Scrape(srv).value("oms_sqlite_cache_truncations_total", outcome="skipped")
    for i in range(40):
        _prop(srv, f"Cached{i}", branch="mx/pcache")
    after = Scrape(srv).value("oms_sqlite_cache_truncations_total", outcome="skipped")
    assert after >= before + 40, (before, after)


def test_metrics_sqlite_wal_writes_gathered(ctx):
    """SQLite: the server's connections write the log through the gathering
    VFS, so a commit's frames (a header and a page each, as SQLite asks)
    reach the file in about one write (docs/storage.md "The log's
    writes")."""
    srv = ctx.server
    if srv.backend != "sqlite":
        raise Skip("a SQLite log counter; zero on PostgreSQL")
    _branch(srv, "mx/walbuf")
    s0 = Scrape(srv)
    for i in range(30):
        _prop(srv, f"Gathered{i}", branch="mx/walbuf")
    s1 = Scrape(srv)
    asked = s1.value("oms_sqlite_wal_writes_total", by="sqlite") - s0.value("oms_sqlite_wal_writes_total", by="sqlite")
    made = s1.value("oms_sqlite_wal_writes_total", by="file") - s0.value("oms_sqlite_wal_writes_total", by="file")
    # every commit (and its audit chaining) writes several frames; the
    # file sees one write per transaction, two when the log starts over
    assert asked >= 30 * 8, (asked, made)
    assert made * 4 <= asked, (asked, made)
