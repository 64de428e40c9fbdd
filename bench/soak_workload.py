"""The mixed workload of the soak (issue #21): one implementation, driven for
20 minutes per backend by bench/soak.py (`make soak`) and for 30 seconds by
tests/api/test_soak_short.py (`make test`). Standard library only.

Closed loop with a fixed number of clients: each client is its own process
(multiprocessing, fork) with one keep-alive HTTP/1.1 connection
(http.client), and sends its next request as soon as the last one answered,
with no think time. What the clients do:

- writers (SOAK_WRITERS, default 4), role developer, each with its own issue
  key: on the shared branch `develop`, read-then-replace a seeded object type
  or shared property (GET for the ETag, PUT with If-Match), create object
  types and delete some they created; on their own feature branch
  (`feature/wN-K`, from `main`), create object types and replace them; after
  FEATURE_WRITES writes there, open a proposal into `main` and start the
  next feature branch. History grows by one commit per acknowledged write.
  The ontology does not (SOAK_STEADY=1, the default): past OWN_TARGET types
  of its own on `develop`, a writer deletes as often as it creates there,
  and past OWN_TARGET types of its own merged into `main`, its feature
  branches delete its oldest merged types as often as they create new
  ones, so `main` and `develop` stay near their seeded size plus
  writers x OWN_TARGET x 2 and the soak measures time, not ontology growth
  (which bench/commit_scale.sh measures apart, at 100 and 10,000 types).
  Nor does the review backlog: a writer with MAX_OPEN proposals waiting
  works on `develop` until one of them is merged (one reviewer merged
  about half of what four writers opened, and a backlog of hundreds of
  stale feature branches made every diff and merge against `main` larger
  by the minute). SOAK_STEADY=0 gives the growing workload of the first
  soaks.
- one reviewer (roles reviewer and developer): lists the open proposals into
  `main`, reads each (with its diff), approves it as a second user, merges
  it, and deletes the merged feature branch.
- readers (SOAK_READERS, default 3), role viewer: GET of a resource on
  `develop` and `main`, a list page, the branch, a history page; diffs (the
  last ten commits of `develop`, and `main` against a live feature branch).
- one locker (developer): acquire and release pairs of resource locks on
  `develop` (on resources no writer touches).
- one auditor (auditor): audit queries, newest first, unfiltered and by
  actor, action and branch.

Every request is timed and counted under one class: read, write, diff,
proposal (proposal create/read/approve/merge, feature branch create and
delete, the open-proposal list), lock, audit. A status other than the one
the step expects is an error, kept with its body; the only tolerated
others are 412 on the shared branch (two writers replaced the same resource
at once: optimistic concurrency doing its job, counted as a conflict) and
404 of a diff against a feature branch the reviewer deleted meanwhile.

Each writer keeps its acknowledged writes (branch, resource, commit, ETag)
and, after the run, reads them back as of their commit (`?at=`): every
acknowledged write must be readable exactly as acknowledged.
"""

import http.client
import json
import multiprocessing
import os
import random
import time
import urllib.parse

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"  # the empty root commit
CLASSES = ("read", "write", "diff", "proposal", "lock", "audit")
PROPOSAL_STEPS = ("branch", "create", "list", "read", "approve", "merge", "delete")  # timed apart too
WRITE_STEPS = ("develop", "feature")  # writes timed apart by branch too: the shared one, a writer's own
SHARED = "develop"
TRUNK = "main"
FEATURE_WRITES = 20  # writes on a feature branch before its proposal
OWN_TARGET = 50  # a writer's own object types on each of develop and main, past which it deletes as it creates
MAX_OPEN = 2  # a writer's proposals waiting for review, past which it works on develop until one merges
FLUSH_S = 1.0  # how often a client sends its samples to the parent
SEED_PROPERTIES = 50


def _q(s):
    return urllib.parse.quote(s, safe="")


def seed_type(i, note="seed"):
    """A seeded object type: six properties, a primary key, a shared property."""
    return {"api_name": f"Type{i:05d}", "display_name": f"Type {i}", "status": "active",
            "description": f"Seeded object type {i} ({note})",
            "properties": [{"api_name": "id", "type": "string", "required": True, "display_name": "Identifier"},
                           {"api_name": "name", "type": "string", "description": "Display name"},
                           {"api_name": "email", "type": "string", "shared_property": f"Prop{i % SEED_PROPERTIES:03d}"},
                           {"api_name": "created", "type": "timestamp"},
                           {"api_name": "score", "type": "double"},
                           {"api_name": "tags", "type": "string", "array": True}],
            "primary_key": "id"}


def seed_property(j, note="seed"):
    return {"api_name": f"Prop{j:03d}", "type": "string", "description": f"Shared property {j} ({note})"}


def new_type(name, note):
    return {"api_name": name, "display_name": name, "description": f"Created by the soak ({note})",
            "properties": [{"api_name": "id", "type": "string", "required": True},
                           {"api_name": "label", "type": "string", "description": note},
                           {"api_name": "amount", "type": "decimal"}],
            "primary_key": "id"}


class Config:
    def __init__(self, seed_types=1000, writers=None, readers=None, verify_max=None):
        self.seed_types = seed_types
        # 0: proposals are opened but never reviewed (to tell the proposal flow's share of a slowdown)
        self.reviewers = int(os.environ.get("SOAK_REVIEWERS", "1"))
        self.writers = writers if writers is not None else int(os.environ.get("SOAK_WRITERS", "4"))
        self.readers = readers if readers is not None else int(os.environ.get("SOAK_READERS", "3"))
        self.verify_max = verify_max  # acknowledged writes read back per writer (None: all)
        self.steady = os.environ.get("SOAK_STEADY", "1") != "0"  # hold the ontology's size (module doc)


# ---------------------------------------------------------------- seeding

def seed(srv, cfg):
    """`main` with cfg.seed_types object types and SEED_PROPERTIES shared
    properties (written while it is briefly unprotected, then protected
    again with one approval required), and `develop` from it."""
    h = admin_headers(srv)

    def call(method, path, body, expect):
        r = srv.request(method, path, headers=h, json_body=body, timeout=600)
        if r.status != expect:
            raise RuntimeError(f"seeding: {method} {path} answered {r.status}: {r.body[:500]}")
        return r

    call("PUT", f"/api/v1/branches/{TRUNK}/settings", {"protected": False}, 200)
    ops = [{"op": "create", "kind": "shared-properties", "document": seed_property(j)} for j in range(SEED_PROPERTIES)]
    call("POST", f"/api/v1/schemas/{TRUNK}/changes", {"message": "Seed properties SOAK-1", "operations": ops}, 200)
    for start in range(0, cfg.seed_types, 500):
        ops = [{"op": "create", "kind": "object-types", "document": seed_type(i)}
               for i in range(start, min(cfg.seed_types, start + 500))]
        call("POST", f"/api/v1/schemas/{TRUNK}/changes", {"message": "Seed types SOAK-1", "operations": ops}, 200)
    call("PUT", f"/api/v1/branches/{TRUNK}/settings", {"protected": True, "required_approvals": 1}, 200)
    call("POST", "/api/v1/branches", {"name": SHARED, "from": TRUNK}, 201)


def admin_headers(srv):
    h = srv.auth("soak-admin", ["admin"])
    h["X-Issue-ID"] = "SOAK-1"
    return h


# ---------------------------------------------------------------- one client

class Client:
    """One keep-alive connection; times every request into its class and
    keeps the errors. Samples are bucketed by interval index since t0."""

    def __init__(self, name, port, token, queue, t0, interval, issue=None):
        self.name, self.port, self.queue = name, port, queue
        self.t0, self.interval = t0, interval
        self.base = {"Authorization": "Bearer " + token, "Host": f"127.0.0.1:{port}"}
        if issue:
            self.base["X-Issue-ID"] = issue
        self.conn = None
        self.samples = {}  # (bucket, class) -> [ms]
        self.errors = []  # dicts, the first 20
        self.nerrors = {}  # (bucket, class) -> count
        self.conflicts = 0
        self.last_flush = time.monotonic()

    def _connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def call(self, cls, method, path, body=None, headers=None, expect=200, tolerate=(), step=None):
        """Returns (status, headers dict lower-cased, parsed JSON or None).
        `step`: also timed under "cls:step" (the steps of the proposal
        flow, reported apart to show which one slows down)."""
        h = dict(self.base)
        if headers:
            h.update(headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if self.conn is None:
            self._connect()
        t = time.monotonic()
        try:
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
            raw = r.read()
            status = r.status
            rh = {k.lower(): v for k, v in r.getheaders()}
            if r.will_close:
                self.conn.close()
                self.conn = None
        except (OSError, http.client.HTTPException) as e:
            # a dropped connection is an error, never retried: the request
            # may or may not have been applied
            self.conn.close()
            self.conn = None
            status, rh, raw = 0, {}, f"{type(e).__name__}: {e}".encode()
        end = time.monotonic()
        timed = self.t0 is not None  # the read-back after the run is not timed (its mismatches are kept apart)
        b = int((end - self.t0) // self.interval) if timed else 0
        if timed:
            self.samples.setdefault((b, cls), []).append((end - t) * 1000.0)
            if step:
                self.samples.setdefault((b, f"{cls}:{step}"), []).append((end - t) * 1000.0)
        if timed and status != expect and status not in tolerate:
            self.nerrors[(b, cls)] = self.nerrors.get((b, cls), 0) + 1
            if len(self.errors) < 20:
                self.errors.append({"client": self.name, "class": cls, "method": method, "path": path,
                                    "status": status, "expected": expect, "body": raw[:400].decode("utf-8", "replace")})
        if status == 412:
            self.conflicts += 1
        if end - self.last_flush >= FLUSH_S:
            self.flush()
        try:
            doc = json.loads(raw) if raw and rh.get("content-type", "").startswith("application/") else None
        except ValueError:
            doc = None
        return status, rh, doc

    def flush(self, final=False, extra=None):
        cpu = os.times()
        msg = {"client": self.name, "samples": self.samples, "nerrors": self.nerrors, "errors": self.errors,
               "conflicts": self.conflicts, "cpu": cpu.user + cpu.system, "final": final}
        if extra:
            msg.update(extra)
        self.queue.put(msg)
        self.samples, self.nerrors, self.errors, self.conflicts = {}, {}, [], 0
        self.last_flush = time.monotonic()


def _url(branch, kind, name=None, at=None):
    u = f"/api/v1/schemas/{_q(branch)}/{kind}" + (f"/{name}" if name else "")
    return u + (f"?at={at}" if at else "")


# ---------------------------------------------------------------- roles

def writer(c, wid, deadline, cfg, rnd):
    acked = []  # (branch, kind, name, commit, etag or None for a delete)
    proposals = 0
    mine_shared = []  # object types this writer created on develop
    landed = []  # object types of its earlier feature branches (in main once their proposal merged), oldest first
    waiting, checked_at = [], 0.0  # its proposals not merged yet (as last seen), and when it looked
    feature, fk, fwrites, ftypes = None, 0, 0, []
    n = 0

    def start_feature():
        nonlocal feature, fk, fwrites, ftypes
        fk += 1
        landed.extend(name for name, _ in ftypes or [])
        feature, fwrites, ftypes = f"feature/w{wid}-{fk}", 0, []
        c.call("proposal", "POST", "/api/v1/branches", {"name": feature, "from": TRUNK}, expect=201, step="branch")

    def ack(branch, kind, name, rh, etag=True):
        if rh.get("x-commit"):
            acked.append((branch, kind, name, rh["x-commit"], rh.get("etag") if etag else None))

    def at_open_limit():
        nonlocal checked_at
        if len(waiting) < MAX_OPEN:
            return False
        if time.monotonic() - checked_at >= 1.0:
            checked_at = time.monotonic()
            still = []
            for pid in waiting:
                s, _, p = c.call("proposal", "GET", f"/api/v1/proposals/{pid}", step="read")
                if s != 200 or (p or {}).get("state") == "open":
                    still.append(pid)
            waiting[:] = still
        return len(waiting) >= MAX_OPEN

    start_feature()
    while time.monotonic() < deadline:
        n += 1
        x = rnd.random()
        if x >= 0.55 and cfg.steady and fwrites >= FEATURE_WRITES and at_open_limit():
            x = rnd.random() * 0.40  # its proposals wait for review: a replace on develop instead
        if x < 0.40:  # replace a seeded resource on the shared branch
            if rnd.random() < 0.85:
                kind, i = "object-types", rnd.randrange(cfg.seed_types)
                name, doc = f"Type{i:05d}", seed_type(i, f"rev {n} by w{wid}")
            else:
                kind, j = "shared-properties", rnd.randrange(SEED_PROPERTIES)
                name, doc = f"Prop{j:03d}", seed_property(j, f"rev {n} by w{wid}")
            s, rh, _ = c.call("read", "GET", _url(SHARED, kind, name))
            if s != 200:
                continue
            s, rh, _ = c.call("write", "PUT", _url(SHARED, kind, name), doc, {"If-Match": rh.get("etag", "")},
                              tolerate=(412,), step="develop")
            if s == 200:
                ack(SHARED, kind, name, rh)
        elif x < 0.50 and not (cfg.steady and len(mine_shared) >= OWN_TARGET):  # create on the shared branch
            name = f"W{wid}N{n}"
            s, rh, _ = c.call("write", "POST", _url(SHARED, "object-types"), new_type(name, f"w{wid} n{n}"),
                              expect=201, step="develop")
            if s == 201:
                ack(SHARED, "object-types", name, rh)
                mine_shared.append((name, rh.get("etag")))
        elif x < 0.55 and len(mine_shared) > 5:  # delete one of its own (past OWN_TARGET: instead of creating)
            name, etag = mine_shared.pop(rnd.randrange(len(mine_shared)))
            s, rh, _ = c.call("write", "DELETE", _url(SHARED, "object-types", name), headers={"If-Match": etag},
                              expect=204, step="develop")
            if s == 204:
                ack(SHARED, "object-types", name, rh, etag=False)
        else:  # the feature branch
            if cfg.steady and len(landed) > OWN_TARGET and rnd.random() < 0.5:
                # delete its oldest type already in main; one whose proposal
                # has not merged yet is not on this branch: try it later
                name = landed[0]
                s, rh, _ = c.call("read", "GET", _url(feature, "object-types", name), tolerate=(404,))
                if s == 200:
                    s, rh, _ = c.call("write", "DELETE", _url(feature, "object-types", name),
                                      headers={"If-Match": rh.get("etag", "")}, expect=204, step="feature")
                    if s == 204:
                        landed.pop(0)
                        ack(feature, "object-types", name, rh, etag=False)
                else:
                    landed.append(landed.pop(0))
            elif ftypes and rnd.random() < 0.5:
                k = rnd.randrange(len(ftypes))
                name, etag = ftypes[k]
                s, rh, _ = c.call("write", "PUT", _url(feature, "object-types", name),
                                  new_type(name, f"{feature} rev {n}"), {"If-Match": etag}, step="feature")
                if s == 200:
                    ftypes[k] = (name, rh.get("etag"))
            else:
                name = f"F{wid}x{fk}T{len(ftypes)}"
                s, rh, _ = c.call("write", "POST", _url(feature, "object-types"), new_type(name, feature),
                                  expect=201, step="feature")
                if s == 201:
                    ftypes.append((name, rh.get("etag")))
            if s in (200, 201):
                ack(feature, "object-types", name, rh)
            fwrites += 1
            if fwrites >= FEATURE_WRITES and not (cfg.steady and at_open_limit()):
                s, _, made = c.call("proposal", "POST", "/api/v1/proposals",
                                    {"source": feature, "target": TRUNK, "title": f"{feature} for SOAK-{wid + 2}",
                                     "description": "Soak feature"}, expect=201, step="create")
                proposals += 1 if s == 201 else 0
                if s == 201 and made:
                    waiting.append(made["id"])
                start_feature()
    return acked, proposals


def verify_acked(c, acked, limit, rnd):
    """Reads acknowledged writes back as of their commit; returns the
    mismatches (the first 20), their count and how many were checked."""
    sample = acked if limit is None or len(acked) <= limit else rnd.sample(acked, limit)
    bad, nbad = [], 0
    for branch, kind, name, commit, etag in sample:
        # the feature branch may be merged and deleted by now: its commits
        # are on main, and ?at= reads them through any branch
        path = _url(TRUNK if branch.startswith("feature/") else branch, kind, name, at=commit)
        s, rh, _ = c.call("verify", "GET", path, expect=404 if etag is None else 200)
        wrong = s != 404 if etag is None else (s != 200 or rh.get("etag") != etag)
        nbad += 1 if wrong else 0
        if wrong and len(bad) < 20:
            bad.append({"branch": branch, "resource": f"{kind}/{name}", "commit": commit, "etag": etag,
                        "status": s, "got_etag": rh.get("etag")})
    return bad, nbad, len(sample)


def reviewer(c, deadline, rnd):
    merged = 0
    while time.monotonic() < deadline:
        s, _, page = c.call("proposal", "GET", f"/api/v1/proposals?state=open&target={TRUNK}&limit=20", step="list")
        items = (page or {}).get("items") or []
        if not items:
            time.sleep(0.1)
            continue
        for p in items:
            if time.monotonic() >= deadline:
                break
            pid = p["id"]
            c.call("proposal", "GET", f"/api/v1/proposals/{pid}", step="read")
            c.call("proposal", "POST", f"/api/v1/proposals/{pid}/approve", {"comment": "soak review"}, step="approve")
            s, _, _ = c.call("proposal", "POST", f"/api/v1/proposals/{pid}/merge", {}, step="merge")
            if s == 200:
                merged += 1
                c.call("proposal", "DELETE", f"/api/v1/branches/{_q(p['source'])}", expect=204, step="delete")
    return merged


def reader(c, deadline, cfg, rnd):
    features, features_at = [], 0.0
    while time.monotonic() < deadline:
        x = rnd.random()
        i = rnd.randrange(cfg.seed_types)
        if x < 0.40:
            c.call("read", "GET", _url(SHARED, "object-types", f"Type{i:05d}"))
        elif x < 0.50:
            c.call("read", "GET", _url(TRUNK, "object-types", f"Type{i:05d}"))
        elif x < 0.62:
            q = rnd.choice(("", "", "&q=Type0", "&status=active"))
            c.call("read", "GET", _url(SHARED, "object-types") + "?limit=50" + q)
        elif x < 0.67:
            c.call("read", "GET", f"/api/v1/branches/{SHARED}")
        elif x < 0.77:
            c.call("read", "GET", f"/api/v1/branches/{SHARED}/commits?limit=20")
        elif x < 0.89:  # the last ten commits of the shared branch
            s, _, page = c.call("read", "GET", f"/api/v1/branches/{SHARED}/commits?limit=10")
            items = (page or {}).get("items") or []
            if len(items) >= 2:
                c.call("diff", "GET", f"/api/v1/diff?from={items[-1]['id']}&to={items[0]['id']}")
        else:  # main against a live feature branch (a review's diff)
            now = time.monotonic()
            if now - features_at > 5 or not features:
                s, _, page = c.call("read", "GET", "/api/v1/branches?limit=1000")
                features = [b["name"] for b in (page or {}).get("items") or [] if b["name"].startswith("feature/")]
                features_at = now
            if features:
                # the reviewer may have merged and deleted it meanwhile
                c.call("diff", "GET", f"/api/v1/diff?from={TRUNK}&to={_q(rnd.choice(features))}", tolerate=(404,))


def locker(c, deadline, rnd):
    j = 0
    while time.monotonic() < deadline:
        j += 1
        s, _, lk = c.call("lock", "POST", "/api/v1/locks",
                          {"branch": SHARED, "scope": "resource", "resource_type": "object-types",
                           "resource_id": f"Maint{j % 200}", "kind": "maintenance", "reason": "soak maintenance",
                           "ttl_seconds": 60}, expect=201)
        if s == 201 and lk:
            c.call("lock", "DELETE", f"/api/v1/locks/{lk['id']}")


def auditor(c, deadline, cfg, rnd):
    while time.monotonic() < deadline:
        q = rnd.choice(("limit=50", f"actor=writer{rnd.randrange(max(cfg.writers, 1))}&limit=20",
                        "action=resource.update&limit=20", f"branch={SHARED}&limit=20", "action=proposal.merge&limit=20"))
        s, _, page = c.call("audit", "GET", f"/api/v1/audit?{q}")
        items = (page or {}).get("items") or []
        if items and isinstance(items[0].get("id"), str) and rnd.random() < 0.2:
            c.call("audit", "GET", f"/api/v1/audit/{_q(items[0]['id'])}")


# ---------------------------------------------------------------- running

def _client_main(role, idx, port, token, queue, t0, interval, deadline, cfg, seed_n):
    rnd = random.Random(seed_n)
    issue = f"SOAK-{idx + 2}" if role == "writer" else ("SOAK-1" if role == "reviewer" else None)
    name = f"{role}{idx}"
    c = Client(name, port, token, queue, t0, interval, issue)
    extra = {}
    try:
        if role == "writer":
            acked, proposals = writer(c, idx, deadline, cfg, rnd)
            c.flush()
            c.t0 = None  # the read-back is not part of the timed run
            bad, nbad, checked = verify_acked(c, acked, cfg.verify_max, rnd)
            extra = {"proposals": proposals, "acked": len(acked), "checked": checked, "nunreadable": nbad, "unreadable": bad}
        elif role == "reviewer":
            extra = {"merged": reviewer(c, deadline, rnd)}
        elif role == "reader":
            reader(c, deadline, cfg, rnd)
        elif role == "locker":
            locker(c, deadline, rnd)
        elif role == "auditor":
            auditor(c, deadline, cfg, rnd)
    except Exception as e:  # a client that dies is an error of the run, with its reason
        c.errors.append({"client": name, "class": "client", "method": "-", "path": "-", "status": -1,
                         "expected": "-", "body": f"{type(e).__name__}: {e}"})
        c.nerrors[(0, "client")] = c.nerrors.get((0, "client"), 0) + 1
    c.flush(final=True, extra=extra)


ROLES = {"writer": ("developer",), "reviewer": ("reviewer", "developer"), "reader": ("viewer",),
         "locker": ("developer",), "auditor": ("auditor",)}


class Result:
    """What a run gathered: per interval and class the latencies (ms) and
    error counts; error examples; per-client totals."""

    def __init__(self, n, interval):
        self.n, self.interval = n, interval
        self.lat = {}  # (bucket, class) -> [ms]
        self.nerrors = {}  # (bucket, class) -> count
        self.errors = []
        self.conflicts = 0
        self.client_cpu = {}  # client -> seconds, latest
        self.client_cpu_at = []  # per bucket boundary: total client CPU seconds
        self.acked = self.checked = self.merged = self.nunreadable = self.proposals = 0
        self.unreadable = []

    def add(self, msg):
        for (b, cls), v in msg["samples"].items():
            if 0 <= b < self.n:
                self.lat.setdefault((b, cls), []).extend(v)
        for (b, cls), k in msg["nerrors"].items():
            b = min(max(b, 0), self.n - 1)  # an error after the end still counts
            self.nerrors[(b, cls)] = self.nerrors.get((b, cls), 0) + k
        self.errors.extend(msg["errors"])
        self.conflicts += msg["conflicts"]
        self.client_cpu[msg["client"]] = msg["cpu"]
        self.acked += msg.get("acked", 0)
        self.checked += msg.get("checked", 0)
        self.merged += msg.get("merged", 0)
        self.proposals += msg.get("proposals", 0)
        self.nunreadable += msg.get("nunreadable", 0)
        self.unreadable.extend(msg.get("unreadable", []))

    def total_errors(self):
        return sum(self.nerrors.values())

    def stats(self, b, cls):
        """(ops per second, p50 ms, p99 ms, errors) of one interval and class."""
        v = sorted(self.lat.get((b, cls), []))
        if not v:
            return 0.0, None, None, self.nerrors.get((b, cls), 0)
        return (len(v) / self.interval, v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.99))],
                self.nerrors.get((b, cls), 0))


def run(srv, cfg, seconds, interval, on_tick=None):
    """Drives the workload against a seeded server for `seconds`, split in
    intervals of `interval` s; on_tick(k) is called at each interval's end
    (k = 1..n; and with 0 at the start) for the caller's own samples.
    Returns a Result."""
    n = max(1, int(round(seconds / interval)))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    roles = ([("writer", i) for i in range(cfg.writers)] + [("reviewer", i) for i in range(min(cfg.reviewers, 1))] +
             [("reader", i) for i in range(cfg.readers)] + [("locker", 0), ("auditor", 0)])
    t0 = time.monotonic() + 0.5  # every client forked before the clock starts
    deadline = t0 + n * interval
    procs = []
    for k, (role, idx) in enumerate(roles):
        token = srv.token(f"{role}{idx}", ROLES[role], ttl=n * interval + 3600)
        p = ctx.Process(target=_client_main, args=(role, idx, srv.port, token, queue, t0, interval, deadline, cfg,
                                                   1000 + k), daemon=True)
        p.start()
        procs.append(p)
    res = Result(n, interval)
    if on_tick:
        on_tick(0)
    cpu_now = lambda: sum(res.client_cpu.values())  # noqa: E731
    res.client_cpu_at.append(0.0)
    tick, finals = 1, 0
    while finals < len(procs):
        wait = t0 + tick * interval - time.monotonic() if tick <= n else 1.0
        try:
            msg = queue.get(timeout=max(0.05, min(wait, 1.0)))
            res.add(msg)
            finals += 1 if msg["final"] else 0
        except Exception:  # queue.Empty
            if not any(p.is_alive() for p in procs) and queue.empty():
                break
        if tick <= n and time.monotonic() >= t0 + tick * interval:
            res.client_cpu_at.append(cpu_now())
            if on_tick:
                on_tick(tick)
            tick += 1
    for p in procs:
        p.join(timeout=30)
    while tick <= n:  # a run whose clients all died early
        res.client_cpu_at.append(cpu_now())
        if on_tick:
            on_tick(tick)
        tick += 1
    if finals < len(procs):
        res.errors.append({"client": "-", "class": "client", "method": "-", "path": "-", "status": -1,
                           "expected": "-", "body": f"{len(procs) - finals} clients never reported their end"})
        res.nerrors[(n - 1, "client")] = res.nerrors.get((n - 1, "client"), 0) + len(procs) - finals
    return res


def audit_verify(srv):
    """The audit chain and checkpoints, verified through the API: the
    parsed answer, or a dict with ok False and the reason."""
    r = srv.request("GET", "/api/v1/audit/verify", headers=srv.auth("soak-auditor", ["auditor"]), timeout=600)
    if r.status != 200:
        return {"ok": False, "status": r.status, "body": r.body[:400]}
    return r.json()


def commit_count(srv):
    """Commits stored so far. PostgreSQL: the server's own count of the
    commits it wrote (/metrics), not a session on its database: a session
    there makes the instance give its sole-writer lease back (docs/storage.md
    "The sole-writer lease"), and the probe would change what it measures."""
    if srv.backend == "sqlite":
        return int(srv.query("SELECT count(*) FROM commits")[0][0])
    r = srv.get("/metrics", headers=srv.auth("soak-metrics", ("service_account",)))
    total = 0
    for line in r.body.split("\n"):
        if line.startswith("oms_commits_total{") and 'outcome="ok"' in line and 'kind="fast_forward"' not in line:
            total += int(float(line.split()[-1]))
    return total
