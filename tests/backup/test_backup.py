"""Backup and restore (SPEC §10, docs/backup.md): a live system under
concurrent writes, proposals and denials is backed up and restored into the
other backend (SQLite -> PostgreSQL and back), where it serves through two
instances with the same heads, commits, proposals, ACL policies and a
verifying audit chain; damaged files (a flipped byte in each section,
truncation, reordered records, a forged commit, a removed audit event, a
wrong key) are refused with a message naming what is wrong, and nothing is
written."""

import hashlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import harness  # noqa: E402
from harness import Skip, quote  # noqa: E402

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"
DEV = ("developer",)


def _h(srv, sub="dev", roles=DEV, issue="OMS-7", **extra):
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = issue
    h.update(extra)
    return h


def _branch(srv, name, frm=ROOT):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": frm})
    assert r.status == 201, r


def _create(srv, branch, name, kind="shared-properties", sub="dev"):
    doc = {"api_name": name, "type": "string"} if kind == "shared-properties" else {
        "api_name": name, "properties": [{"api_name": "id", "type": "string", "required": True}], "primary_key": "id"}
    return srv.request("POST", f"/api/v1/schemas/{quote(branch)}/{kind}", headers=_h(srv, sub=sub), json_body=doc)


def audit_key(srv):
    """The key that signs srv's checkpoints (SQLite: the generated audit.key)."""
    if "OMS_AUDIT_KEY" in srv.env:
        return srv.env["OMS_AUDIT_KEY"]
    with open(os.path.join(os.path.dirname(srv.db_path), "audit.key")) as f:
        return f.read().strip()


def populate(srv):
    """Branches, resources, a merged proposal (with approval), an open one,
    a closed one, ACL policies, denials and authentication failures."""
    _branch(srv, "feature/a", "main")
    _branch(srv, "team/b")
    for i in range(6):
        assert _create(srv, "feature/a", f"Prop{i}").status == 201
        assert _create(srv, "team/b", f"Thing{i}", kind="object-types").status == 201
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv, sub="author"),
                    json_body={"source": "feature/a", "target": "main", "title": "Props", "issue_ids": ["OMS-8"]})
    assert r.status == 201, r
    pid = r.json()["id"]
    rv = _h(srv, sub="rita", roles=("reviewer",))
    assert srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=rv).status == 200
    assert srv.request("POST", f"/api/v1/proposals/{pid}/merge", headers=rv, json_body={}).status == 200
    r = srv.request("POST", "/api/v1/tags", headers=_h(srv, sub="author"),
                    json_body={"name": "rel-1", "commit": "main", "message": "first release"})
    assert r.status == 201, r
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv, sub="author"),
                    json_body={"source": "team/b", "target": "main", "title": "Things"})
    assert r.status == 201, r
    r = srv.request("POST", "/api/v1/acl/policies", headers=_h(srv, sub="sec", roles=("admin",)),
                    json_body={"subject": "role:developer", "effect": "deny", "permissions": ["schema:write"],
                               "branches": ["frozen/**"], "description": "freeze"})
    assert r.status == 201, r
    # denials and authentication failures are audited too
    assert _create(srv, "feature/a", "Denied", sub="viewer-x").status == 201
    r = srv.request("POST", "/api/v1/schemas/feature%2Fa/shared-properties", headers=_h(srv, roles=("viewer",)),
                    json_body={"api_name": "No", "type": "string"})
    assert r.status == 403, r
    assert srv.get("/api/v1/branches", headers={"Authorization": "Bearer nope"}).status == 401


def seal(srv):
    r = srv.run_cli("audit", "seal")
    assert r.returncode == 0, r.stderr


def other_backend(backend):
    if backend == "sqlite":
        return "pg" if harness.PG_URL else "sqlite"
    return "sqlite"


def target_server(ctx, backend, key, start=False):
    t = harness.Server(backend, start=False, env={"OMS_AUDIT_KEY": key})
    ctx.owned.append(t)
    return t


def run_oms(srv, *args, env=None, timeout=300):
    return srv.run_cli(*args, env=env, timeout=timeout)


def tables(srv):
    if srv.backend == "sqlite":
        if not os.path.exists(srv.db_path):
            return 0
        return len(srv.query("SELECT name FROM sqlite_master WHERE type = 'table'"))
    return int(srv.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0][0])


def state(srv):
    """What a restore must carry over, read through the API and the tables."""
    h = _h(srv, sub="auditor", roles=("admin",), issue=None)
    heads = {b["name"]: b["head"] for b in srv.get("/api/v1/branches?limit=1000", headers=h).json()["items"]}
    props = sorted((p["id"], p["state"], p.get("merged_commit")) for p in
                   srv.get("/api/v1/proposals?limit=1000", headers=h).json()["items"])
    acl = sorted(json.dumps(p, sort_keys=True) for p in
                 srv.get("/api/v1/acl/policies?limit=1000", headers=h).json()["items"])
    commits = sorted(r[0] for r in srv.query("SELECT id FROM commits"))
    return {"heads": heads, "proposals": props, "acl": acl, "commits": commits}


def events(srv, upto=None):
    rows = srv.query("SELECT seq, event_id FROM audit_events ORDER BY seq")
    return [(int(s), e) for s, e in rows if upto is None or int(s) <= upto]


def verify_ok(srv):
    r = srv.run_cli("audit", "verify")
    assert r.returncode == 0, (r.stdout, r.stderr)


# ---- the round trips ----

def _round_trip(ctx, src_backend, dst_backend):
    src = harness.Server(src_backend)
    ctx.owned.append(src)
    populate(src)
    key = audit_key(src)
    # concurrent writers and denials while the backup runs
    stop = threading.Event()
    errors = []

    def writer(n):
        i = 0
        while not stop.is_set():
            r = _create(src, "feature/a" if n else "team/b", f"Live{n}_{i}")
            if r.status != 201:
                errors.append(r.status)
            src.request("POST", "/api/v1/schemas/main/shared-properties", headers=_h(src, roles=("viewer",)),
                        json_body={"api_name": "X", "type": "string"})
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    tmp = tempfile.mkdtemp(prefix="oms-bk-")
    live = os.path.join(tmp, "live.omsbak")
    try:
        count = lambda: int(src.query("SELECT count(*) FROM commits")[0][0])  # noqa: E731
        start = count()
        while count() < start + 5:  # the writers are under way
            time.sleep(0.05)
        r = run_oms(src, "backup", "-o", live)
        during = count()
        while count() < during + 5:  # and went on after the snapshot
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert r.returncode == 0, r.stderr
    assert not errors, errors
    assert stat.S_IMODE(os.stat(live).st_mode) == 0o600
    # the live snapshot restores and verifies, and is a state the source went through
    dst = target_server(ctx, dst_backend, key)
    r = run_oms(dst, "restore", live)
    assert r.returncode == 0, r.stderr
    verify_ok(dst)
    src_commits = set(x[0] for x in src.query("SELECT id FROM commits"))
    assert set(x[0] for x in dst.query("SELECT id FROM commits")) <= src_commits
    restored = dst.query("SELECT seq, event_id FROM audit_events WHERE action NOT IN ('backup.restore', 'audit.verify')")
    extra = set((int(a), b) for a, b in restored) - set(events(src))
    assert not extra, (sorted(extra)[:5], dst.query("SELECT seq, action, time_ms FROM audit_events ORDER BY seq DESC LIMIT 3"))
    assert len(dst.query("SELECT seq FROM audit_events WHERE action = 'backup.restore'")) == 1
    dst.destroy()
    # quiescent: the restored system is the same system, and serves through two instances
    seal(src)
    want = state(src)
    src_events = events(src)
    quiet = os.path.join(tmp, "quiet.omsbak.zst")
    r = run_oms(src, "backup", "-o", quiet)
    assert r.returncode == 0, r.stderr
    r = run_oms(src, "backup", "--verify", quiet)
    assert r.returncode == 0 and "signatures verified" in r.stdout, (r.stdout, r.stderr)
    dst = target_server(ctx, dst_backend, key)
    r = run_oms(dst, "restore", quiet)
    assert r.returncode == 0, r.stderr
    assert events(dst, upto=src_events[-1][0]) == src_events
    dst.start()
    second = harness.Server(dst_backend, start=False)
    ctx.owned.append(second)
    second.share_database_of(dst)
    second.env["OMS_AUDIT_KEY"] = key
    second.start()
    for s in (dst, second):
        assert state(s) == want, (state(s), want)
        r = s.get("/api/v1/audit/verify", headers=_h(s, sub="aud", roles=("auditor",), issue=None))
        assert r.status == 200 and r.json()["ok"] is True, r
        r = s.get("/api/v1/schemas/team%2Fb/object-types/Thing3", headers=_h(s, issue=None))
        assert r.status == 200, r
        # a commit's stored tree (tree_nodes, trees) came through: read at a commit
        r = s.get("/api/v1/schemas/team%2Fb/object-types/Thing3?at=" + want["heads"]["team/b"],
                  headers=_h(s, issue=None))
        assert r.status == 200 and r.json()["api_name"] == "Thing3", r
    # the audit log's filters find the restored events: their facets are not
    # in the file, the restore builds them again (migration 0021)
    aud = _h(dst, sub="aud", roles=("auditor",), issue=None)
    by_actor = {}
    for actor, eid in dst.query("SELECT actor_sub, event_id FROM audit_events WHERE actor_sub IS NOT NULL"):
        by_actor.setdefault(actor, set()).add(eid)
    assert by_actor
    for actor, ids in by_actor.items():
        # the live phase's writers can leave more than one page for an actor
        found, cursor = set(), ""
        while True:
            r = dst.get("/api/v1/audit?limit=1000&actor=" + quote(actor) + "&cursor=" + cursor, headers=aud)
            assert r.status == 200, (actor, r)
            found |= {e["id"] for e in r.json()["items"]}
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        assert ids <= found, (actor, len(ids), len(found), sorted(ids - found)[:5])
    # the search index is not in the file: built again on the first search
    r = dst.get("/api/v1/search/team%2Fb?q=Thing3", headers=_h(dst, issue=None))
    assert r.status == 200 and any(x.get("api_name") == "Thing3" for x in r.json()["items"]), r
    # and keeps working: a new commit on top of the restored history
    assert _create(dst, "feature/a", "AfterRestore").status == 201
    subprocess.run(["rm", "-rf", tmp])


def test_sqlite_to_postgresql(ctx):
    if not harness.PG_URL:
        raise Skip("needs the throwaway PostgreSQL (OMS_PG_URL): runs in the pg pass")
    _round_trip(ctx, "sqlite", "pg")


def test_postgresql_to_sqlite(ctx):
    if not harness.PG_URL:
        raise Skip("needs the throwaway PostgreSQL (OMS_PG_URL): runs in the pg pass")
    _round_trip(ctx, "pg", "sqlite")


def test_same_backend_round_trip(ctx):
    if ctx.backend == "pg":
        raise Skip("the pg pass restores across backends both ways")
    _round_trip(ctx, "sqlite", "sqlite")


def test_events_waiting_for_their_position_travel(ctx):
    """A PostgreSQL backup taken while an event waits in the sequencer's
    queue (docs/events.md "Order") holds it: restored into SQLite it gets
    the next position at once, restored into PostgreSQL the sequencer gives
    it its own; the feed misses it in neither."""
    if not harness.PG_URL or ctx.backend != "pg":
        raise Skip("needs the throwaway PostgreSQL (OMS_PG_URL): runs in the pg pass")
    src = harness.Server("pg")
    ctx.owned.append(src)
    _branch(src, "feature/w", "main")
    assert _create(src, "feature/w", "Before").status == 201
    assert src.stop() == 0  # a graceful stop positions what has committed
    src.execute("INSERT INTO events_pending (id, type, branch, time_ms, body) SELECT 'evt_waiting', type, branch,"
                " time_ms, replace(body, id, 'evt_waiting') FROM events ORDER BY pos DESC LIMIT 1")
    last = int(src.query("SELECT MAX(pos) FROM events")[0][0])
    tmp = tempfile.mkdtemp(prefix="oms-bk-")
    path = os.path.join(tmp, "waiting.omsbak")
    try:
        r = run_oms(src, "backup", "-o", path)
        assert r.returncode == 0, r.stderr
        for backend in ("sqlite", "pg"):
            dst = target_server(ctx, backend, audit_key(src))
            r = run_oms(dst, "restore", path)
            assert r.returncode == 0, r.stderr
            dst.start()
            deadline = time.time() + 10
            while dst.events_unpositioned() and time.time() < deadline:
                time.sleep(0.05)
            placed = dst.query("SELECT pos FROM events WHERE id = 'evt_waiting'")
            assert placed and placed[0][0] is not None and int(placed[0][0]) == last + 1, (backend, placed, last)
            r = dst.get(f"/api/v1/events?after={last}&limit=10", headers=_h(dst, sub="root", roles=("admin",),
                                                                              issue=None))
            assert r.status == 200 and "evt_waiting" in [e["id"] for e in r.json()["items"]], (backend, r)
            dst.destroy()
    finally:
        subprocess.run(["rm", "-rf", tmp])


# ---- damaged files ----

_FIXTURE = {}


def fixture(ctx):
    """One small system and its backup per backend: (server, path, key)."""
    if ctx.backend in _FIXTURE:
        return _FIXTURE[ctx.backend]
    srv = harness.Server(ctx.backend)
    populate(srv)
    seal(srv)
    tmp = tempfile.mkdtemp(prefix="oms-bkf-")
    path = os.path.join(tmp, "good.omsbak")
    r = run_oms(srv, "backup", "-o", path)
    assert r.returncode == 0, r.stderr
    srv.stop()  # kept for the module (not in ctx.owned): removed by test_zz_cleanup
    _FIXTURE[ctx.backend] = (srv, path, audit_key(srv), tmp)
    return _FIXTURE[ctx.backend]


def read_lines(path):
    with open(path, "rb") as f:
        return f.read().split(b"\n")[:-1]


def rehash(lines):
    """Recomputes every section's and the whole file's SHA-256 after an
    edit, as a forger would."""
    out, sections, cur, h = [], [], None, None
    for ln in lines:
        if ln.startswith(b'{"section"'):
            cur = json.loads(ln)["section"]
            h = hashlib.sha256(ln + b"\n")
            n = 0
            out.append(ln)
        elif ln.startswith(b"[") and cur:
            h.update(ln + b"\n")
            n += 1
            out.append(ln)
        elif ln.startswith(b'{"end"'):
            d = h.hexdigest()
            sections.append({"name": cur, "rows": n, "sha256": d})
            out.append(json.dumps({"end": cur, "rows": n, "sha256": d}, separators=(",", ":")).encode())
            cur = None
        elif ln.startswith(b'{"manifest"'):
            m = json.loads(ln)["manifest"]
            m["sections"] = sections
            m["rows"] = sum(s["rows"] for s in sections)
            whole = hashlib.sha256(b"".join(x + b"\n" for x in out)).hexdigest()
            out.append(json.dumps({"manifest": m, "sha256": whole}, separators=(",", ":")).encode())
        else:
            out.append(ln)
    return out


def write(tmp, name, lines):
    p = os.path.join(tmp, name)
    with open(p, "wb") as f:
        f.write(b"".join(x + b"\n" for x in lines))
    return p


def section_rows(lines, name):
    """Indexes of the records of a section."""
    idx, inside = [], False
    for i, ln in enumerate(lines):
        if ln.startswith(b'{"section":"%s"' % name.encode()):
            inside = True
        elif ln.startswith(b'{"end"'):
            inside = False
        elif inside:
            idx.append(i)
    return idx


def without_forks(lines):
    """The file as a version before 19 wrote it: no branch_forks section,
    and each fork's rows in branch_resources in full, as every branch held
    them (docs/storage.md "Forks share their base's rows")."""
    cells = lambda i: json.loads(lines[i])  # noqa: E731
    rows = [cells(i) for i in section_rows(lines, "branch_resources")]
    forks = dict(cells(i) for i in section_rows(lines, "branch_forks"))
    own = {(r[0], r[1]) for r in rows}
    full = [r for r in rows if r[2] != ""]
    full += [[f] + r[1:] for f, base in forks.items() for r in rows
             if r[0] == base and r[2] != "" and (f, r[1]) not in own]
    full.sort(key=lambda r: (r[0], r[1]))
    out, skip, old_rows = [], False, set(section_rows(lines, "branch_resources"))
    for i, ln in enumerate(lines):
        if ln.startswith(b'{"section":"branch_forks"'):
            skip = True
        if skip:
            skip = not ln.startswith(b'{"end"')
            continue
        if i in old_rows:
            continue
        out.append(ln)
        if ln.startswith(b'{"section":"branch_resources"'):
            out += [json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() for r in full]
    return out


def refused(ctx, path, key, *expect, backend=None):
    """Restores `path` into a fresh target: refused naming `expect`, and
    nothing written."""
    t = harness.Server(backend or ctx.backend, start=False, env={"OMS_AUDIT_KEY": key})
    ctx.owned.append(t)
    r = run_oms(t, "restore", path)
    assert r.returncode != 0, (path, r.stdout)
    for e in expect:
        assert e in r.stderr, (e, r.stderr)
    assert "nothing was written" in r.stderr, r.stderr
    assert tables(t) == 0, "the target was written"
    return r.stderr


def test_schema_13_backup_restores_with_trees_converted(ctx):
    """A file of schema version 13 (before tree storage, docs/storage.md
    "Tree storage"): trees as legacy JSON objects, no tree sections. It
    restores into the current version with its trees converted by the migration's
    own code, every commit id and read at an old commit unchanged."""
    import tree_format
    srv, path, key, tmp = fixture(ctx)
    lines = without_forks(read_lines(path))
    cells = lambda i: json.loads(lines[i])  # noqa: E731
    nodes = {cells(i)[0]: bytes.fromhex(cells(i)[1]) for i in section_rows(lines, "tree_nodes")}
    legacy = {}
    for tid, root in (cells(i) for i in section_rows(lines, "trees")):
        t, objs = tree_format.legacy_objects(tree_format.mapping(nodes, root))
        assert t == tid, (t, tid)
        legacy.update({o[0]: o for o in objs})
    old, skip, section = [], False, None
    for i, ln in enumerate(lines):
        if ln.startswith(b'{"section"'):
            section = json.loads(ln)["section"]
            skip = section in ("tree_nodes", "trees")
        if skip:
            if ln.startswith(b'{"end"'):
                skip = False
            continue
        if i == 1 or ln.startswith(b'{"manifest"'):
            j = json.loads(ln)
            (j.get("manifest") or j)["schema_version"] = 13
            ln = json.dumps(j, separators=(",", ":")).encode()
        if ln.startswith(b'{"end"') and section == "objects":
            old += [json.dumps(list(o), separators=(",", ":"), ensure_ascii=False).encode() for o in legacy.values()]
        old.append(ln)
    p = write(tmp, "schema13", rehash(old))
    r = run_oms(srv, "backup", "--verify", p)
    assert r.returncode == 0 and "schema version 13" in r.stdout, (r.stdout, r.stderr)
    t = target_server(ctx, ctx.backend, key)
    r = run_oms(t, "restore", p)
    assert r.returncode == 0, r.stderr
    want = {c: tr for c, tr in srv.query("SELECT id, tree FROM commits")}
    assert {c: tr for c, tr in t.query("SELECT id, tree FROM commits")} == want
    assert int(t.query("SELECT count(*) FROM objects WHERE type = 'tree'")[0][0]) == 0
    assert set(tree_format.roots(t)) == set(want.values())
    t.start()
    first = t.query("SELECT commit_id FROM commit_changes WHERE resource = 'shared-properties/Prop0'")[0][0]
    r = t.get(f"/api/v1/schemas/feature%2Fa/shared-properties/Prop0?at={first}", headers=_h(t, issue=None))
    assert r.status == 200 and r.json()["api_name"] == "Prop0", r
    assert _create(t, "feature/a", "AfterOldRestore").status == 201


def test_schema_14_backup_restores_as_is(ctx):
    """Schema 15 added indexes only (the audit query indexes): a file of
    version 14 holds the same tables and restores as it is into 15, with
    the same commits and audit events, and a file of a version newer than
    the binary's is still refused."""
    srv, path, key, tmp = fixture(ctx)
    current = read_lines(path)
    lines = without_forks(current)

    def at_version(v, lines=lines):
        out = []
        for i, ln in enumerate(lines):
            if i == 1 or ln.startswith(b'{"manifest"'):
                j = json.loads(ln)
                (j.get("manifest") or j)["schema_version"] = v
                ln = json.dumps(j, separators=(",", ":")).encode()
            out.append(ln)
        return write(tmp, f"schema{v}", rehash(out))

    p = at_version(14)
    t = target_server(ctx, ctx.backend, key)
    r = run_oms(t, "restore", p)
    assert r.returncode == 0, r.stderr
    assert {c for (c,) in t.query("SELECT id FROM commits")} == {c for (c,) in srv.query("SELECT id FROM commits")}
    restored = {e for (e,) in t.query("SELECT event_id FROM audit_events WHERE action <> 'backup.restore'")}
    assert restored and restored <= {e for (e,) in srv.query("SELECT event_id FROM audit_events")}
    r = run_oms(target_server(ctx, ctx.backend, key), "restore", at_version(99, current))
    assert r.returncode == 2 and "schema version 99" in r.stderr, (r.returncode, r.stderr)


def test_flipped_byte_in_each_section(ctx):
    srv, path, key, tmp = fixture(ctx)
    lines = read_lines(path)
    names = [json.loads(ln)["section"] for ln in lines if ln.startswith(b'{"section"')]
    assert len(names) == 30, names
    checked = 0
    for name in names:
        rows = section_rows(lines, name)
        if not rows:  # an empty section: its end line's hash
            bad = list(lines)
            i = next(k for k, ln in enumerate(lines) if ln.startswith(b'{"end":"%s"' % name.encode()))
            bad[i] = bad[i][:-3] + (b"0" if bad[i][-3:-2] != b"0" else b"1") + bad[i][-2:]
            err = refused(ctx, write(tmp, f"flip-{name}", bad), key)
            assert f"section {name}: SHA-256 mismatch" in err, (name, err)
            checked += 1
            continue
        bad = list(lines)
        ln = bytearray(bad[rows[len(rows) // 2]])
        # a byte inside a string value, keeping the record valid JSON
        i = next(k for k in range(len(ln) - 2, 0, -1) if chr(ln[k]).isalnum())
        ln[i] = ord("0") if ln[i] != ord("0") else ord("1")
        bad[rows[len(rows) // 2]] = bytes(ln)
        p = write(tmp, f"flip-{name}", bad)
        err = refused(ctx, p, key)
        # the section's hash, or first the record's own hash where it has one
        named = {"objects": "object ", "commits": "commit ", "tree_nodes": "tree node ", "audit_log": "audit log:",
                 "audit_checkpoints": "checkpoint"}
        assert f"section {name}: SHA-256 mismatch" in err or f"section {name}, record" in err or named.get(name, "-") in err, (name, err)
        checked += 1
    assert checked == 30, checked


def test_truncated(ctx):
    srv, path, key, tmp = fixture(ctx)
    data = open(path, "rb").read()
    for cut in (len(data) // 3, len(data) - 10, len(data) - len(data.split(b"\n")[-2]) - 1):
        p = os.path.join(tmp, f"trunc-{cut}")
        with open(p, "wb") as f:
            f.write(data[:cut])
        refused(ctx, p, key, "truncated")


def test_reordered_records(ctx):
    srv, path, key, tmp = fixture(ctx)
    lines = read_lines(path)
    rows = section_rows(lines, "objects")
    bad = list(lines)
    bad[rows[0]], bad[rows[1]] = bad[rows[1]], bad[rows[0]]
    refused(ctx, write(tmp, "reorder", bad), key, "section objects: SHA-256 mismatch")
    # the same in the audit log, with every hash recomputed: the chain says so
    rows = section_rows(lines, "audit_log")
    bad = list(lines)
    bad[rows[2]], bad[rows[3]] = bad[rows[3]], bad[rows[2]]
    refused(ctx, write(tmp, "reorder-audit", rehash(bad)), key, "audit log:", "removed or reordered")


def test_forged_commit(ctx):
    srv, path, key, tmp = fixture(ctx)
    lines = read_lines(path)
    bad = list(lines)
    i = section_rows(lines, "commits")[-1]
    row = json.loads(bad[i])
    row[5] = row[5] + " (edited)"  # the message
    bad[i] = json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode()
    err = refused(ctx, write(tmp, "forged", rehash(bad)), key, f"commit {row[0]}", "not the hash of its content")
    assert "SHA-256" not in err
    # a changed document is caught by its object hash
    bad = list(lines)
    i = next(k for k in section_rows(lines, "objects") if b'"resource"' in lines[k])
    row = json.loads(bad[i])
    row[2] = row[2].replace('"string"', '"long"', 1)
    bad[i] = json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode()
    refused(ctx, write(tmp, "forged-object", rehash(bad)), key, f"object {row[0]}", "does not hash")


def test_removed_audit_event(ctx):
    srv, path, key, tmp = fixture(ctx)
    lines = read_lines(path)
    rows = section_rows(lines, "audit_log")
    bad = [ln for k, ln in enumerate(lines) if k != rows[len(rows) // 2]]
    refused(ctx, write(tmp, "removed-event", rehash(bad)), key, "audit log:", "missing")
    # the last events, after the last checkpoint... are caught by the seal
    bad = [ln for k, ln in enumerate(lines) if k != rows[-1]]
    refused(ctx, write(tmp, "removed-last", rehash(bad)), key, "audit log:")


def test_wrong_key(ctx):
    srv, path, key, tmp = fixture(ctx)
    err = refused(ctx, path, "f" * 16 + "0123456789abcdef" * 3, "audit key mismatch")
    assert key not in err
    t = harness.Server(ctx.backend, start=False, env={"OMS_AUDIT_KEY": None})
    ctx.owned.append(t)
    if ctx.backend == "pg":
        r = run_oms(t, "restore", path)
        assert r.returncode == 2 and "OMS_AUDIT_KEY" in r.stderr, r.stderr
        assert tables(t) == 0


def test_verify_without_database(ctx):
    srv, path, key, tmp = fixture(ctx)
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "OMS_AUDIT_KEY": key}
    r = run_oms(srv, "backup", "--verify", path, env=env)
    assert r.returncode == 0 and ": OK:" in r.stdout and "signatures verified" in r.stdout, (r.stdout, r.stderr)
    r = run_oms(srv, "backup", "--verify", path, "--json", env={"OMS_AUDIT_KEY": None, "DATABASE_URL": "sqlite:/nonexistent/x.db"})
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"] and out["signatures_checked"] is False and out["sections"] == 30, out
    lines = read_lines(path)
    bad = list(lines)
    i = next(k for k in section_rows(lines, "branches") if b'"main"' in lines[k])
    bad[i] = bad[i].replace(b'"main"', b'"mair"', 1)
    r = run_oms(srv, "backup", "--verify", write(tmp, "bad-verify", bad), env=env)
    assert r.returncode == 1 and "section branches: SHA-256 mismatch" in r.stderr, r.stderr


def test_compressed_damage(ctx):
    srv, path, key, tmp = fixture(ctx)
    src = harness.Server(ctx.backend, start=False)
    ctx.owned.append(src)
    src.share_database_of(srv)
    z = os.path.join(tmp, "c.omsbak.zst")
    r = run_oms(src, "backup", "-o", z, env={"OMS_AUDIT_KEY": key})
    assert r.returncode == 0, r.stderr
    assert open(z, "rb").read(4) == b"\x28\xb5\x2f\xfd"
    data = bytearray(open(z, "rb").read())
    data[len(data) // 2] ^= 0x55
    p = os.path.join(tmp, "c-bad.zst")
    open(p, "wb").write(bytes(data))
    refused(ctx, p, key, "damaged")
    p = os.path.join(tmp, "c-trunc.zst")
    open(p, "wb").write(bytes(open(z, "rb").read()[:-20]))
    refused(ctx, p, key)


def test_non_empty_target_needs_force(ctx):
    srv, path, key, tmp = fixture(ctx)
    t = harness.Server(ctx.backend, env={"OMS_AUDIT_KEY": key})
    ctx.owned.append(t)
    assert _create(t, "main", "Mine", sub="dev").status == 403  # main is protected: changes arrive by proposal
    _branch(t, "mine")
    t.stop()
    before = t.query("SELECT count(*) FROM branches")
    r = run_oms(t, "restore", path)
    assert r.returncode == 1 and "not empty" in r.stderr and "--force" in r.stderr, r.stderr
    assert t.query("SELECT count(*) FROM branches") == before
    r = run_oms(t, "restore", path, "--force")
    assert r.returncode == 0, r.stderr
    assert ("mine",) not in [tuple(x) for x in t.query("SELECT name FROM branches")]
    verify_ok(t)
    # the backup file is never overwritten
    r = run_oms(t, "backup", "-o", path)
    assert r.returncode != 0 and "exists" in r.stderr


def test_zz_cleanup(ctx):
    f = _FIXTURE.pop(ctx.backend, None)
    if f:
        f[0].destroy()
        subprocess.run(["rm", "-rf", f[3]])
