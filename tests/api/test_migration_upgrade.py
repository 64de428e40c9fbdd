"""Upgrade safety (SPEC §7 last point): from every earlier schema version,
with live branches, commits, locks and audit events, `oms migrate` loses
nothing.

How: a source server at the latest version is given representative live data
through the API (branches, resources, a merge, a proposal, active and ended
locks with progress, audit events including refusals), then stopped. For each
earlier version v, a fresh database is built with `oms migrate --to v` and
every table that exists at v receives the source's rows, projected onto the
columns that exist at v (the rows a server of version v would have held;
audit events before the chain migration carry no hash, as such servers wrote
them, and counters/chain heads take the source's values). Then `oms migrate`
runs, a server starts, and every row of every table is still there, unchanged,
and served: branches, resources with their ETags, commits, history, locks
(still blocking writes, and the fencing sequence continues above them)."""

import glob
import os
import re

import harness
import tree_format
from harness import quote

DEV = ("developer",)
AUDIT_KEY = "upgrade-test-audit-key-0123456789abcdef0123456789"
# Tables whose one row is created by a migration and then moves: take the
# source's values instead of inserting.
COUNTERS = {"audit_chain_head", "lock_fencing"}
MAIN_CREATED_VERSION = 10  # 0010 dates main (created_at 0 before)
TREE_NODES_VERSION = 14  # trees stored as trie nodes; legacy JSON tree objects before
AUDIT_CHAIN_VERSION = 4  # events get prev_hash/hash from this version on


def _versions(backend):
    tag = "pg" if backend == "pg" else "sqlite"
    out = set()
    for f in glob.glob(os.path.join("src", "store", "migrations", f"*.{tag}.sql")):
        m = re.match(r"0*(\d+)_", os.path.basename(f))
        out.add(int(m.group(1)))
    return sorted(out)


def _h(srv, sub="dev", roles=DEV, issue=True, **extra):
    """Auth headers; changes carry an issue reference (SPEC §6.3) unless
    a test is about its absence."""
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = "LOCK-7"
    h.update(extra)
    return h


def _ok(r, status):
    assert r.status == status, r
    return r


def _populate(srv):
    """Representative live data, made by the real code paths."""
    def post(path, body, status=201, **hdr):
        return _ok(srv.request("POST", path, headers=_h(srv, **hdr), json_body=body), status)

    def url(branch, kind, name=None):
        return f"/api/v1/schemas/{quote(branch)}/{kind}" + (f"/{name}" if name else "")

    post("/api/v1/branches", {"name": "feature/up", "from": "main"})
    post(url("feature/up", "shared-properties"), {"api_name": "Email", "type": "string"}, **{"X-Issue-ID": "UP-1"})
    post(url("feature/up", "interfaces"), {"api_name": "Named", "properties": [{"api_name": "name", "type": "string"}]})
    person = {"api_name": "Person", "properties": [
        {"api_name": "id", "type": "string", "required": True}, {"api_name": "name", "type": "string"},
        {"api_name": "email", "type": "string", "shared_property": "Email"}], "primary_key": "id", "implements": ["Named"]}
    post(url("feature/up", "object-types"), person)
    post(url("feature/up", "changes"), {"message": "UP-2 companies", "operations": [
        {"op": "create", "kind": "object-types", "api_name": "Company", "document": {
            "api_name": "Company", "properties": [{"api_name": "id", "type": "long", "required": True},
                                                  {"api_name": "name", "type": "string"}],
            "primary_key": "id", "implements": ["Named"]}},
        {"op": "create", "kind": "link-types", "api_name": "WorksAt", "document": {
            "api_name": "WorksAt", "from": "Person", "to": "Company", "cardinality": "many_to_one"}},
        {"op": "create", "kind": "shared-properties", "api_name": "Tmp", "document": {"api_name": "Tmp", "type": "string"}}]}, 200)
    cur = srv.get(url("feature/up", "shared-properties", "Tmp"), headers=_h(srv))
    _ok(srv.request("DELETE", url("feature/up", "shared-properties", "Tmp"),
                    headers=_h(srv, **{"If-Match": cur.header("ETag")})), 204)
    post("/api/v1/branches", {"name": "feature/up2", "from": "feature/up"})
    cur = srv.get(url("feature/up2", "object-types", "Person"), headers=_h(srv))
    doc = cur.json()
    doc.pop("meta", None)
    doc["description"] = "changed on up2"
    _ok(srv.request("PUT", url("feature/up2", "object-types", "Person"),
                    headers=_h(srv, **{"If-Match": cur.header("ETag")}), json_body=doc), 200)
    post(url("feature/up", "shared-properties"), {"api_name": "Phone", "type": "string"})
    post("/api/v1/branches/feature%2Fup/merge", {"source": "feature/up2", "message": "UP-3 merge up2"}, 200)
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv),
                    json_body={"source": "feature/up", "target": "main", "title": "Upgrade me"})
    assert r.status == 201, r
    # locks: active with progress, active on another region, released, force-released
    def lock(body, sub="ops"):
        return _ok(srv.request("POST", "/api/v1/locks", headers=_h(srv, sub, ("service_account",)),
                               json_body={"reason": "upgrade test", "ttl_seconds": 3600, **body}), 201).json()["id"]
    held = lock({"branch": "feature/up2", "scope": "branch", "kind": "indexing"})
    _ok(srv.request("POST", f"/api/v1/locks/{held}/heartbeat", headers=_h(srv, "ops", ("service_account",)),
                    json_body={"progress": {"percent": 40, "phase": "build", "message": "4 of 10"}}), 200)
    lock({"branch": "feature/up", "resource_type": "object-types", "resource_id": "Company", "kind": "manual"}, sub="ann")
    gone = lock({"branch": "feature/up", "scope": "resource_type", "resource_type": "interfaces"})
    _ok(srv.request("DELETE", f"/api/v1/locks/{gone}", headers=_h(srv, "ops", ("service_account",))), 200)
    forced = lock({"branch": "feature/up", "scope": "resource_type", "resource_type": "link-types"})
    _ok(srv.request("DELETE", f"/api/v1/locks/{forced}", headers=_h(srv, "root", ("admin",), **{"X-Issue-ID": "UP-4"})), 200)
    # refusals are audit events too
    assert srv.get("/api/v1/branches", headers={"Authorization": "Bearer nope"}).status == 401
    assert srv.request("POST", "/api/v1/branches", headers=_h(srv, "v", ("viewer",)),
                       json_body={"name": "x", "from": "main"}).status == 403
    return held


# ---- database access, per backend ----

def _schema(srv):
    """{table: [columns in order]} of every table but schema_migrations."""
    if srv.backend == "sqlite":
        names = [r[0] for r in srv.query("SELECT name FROM sqlite_master WHERE type = 'table'"
                                         " AND name NOT LIKE 'sqlite_%'")]
        out = {t: [r[1] for r in srv.query(f"PRAGMA table_info({t})")] for t in names}
    else:
        out = {}
        for t, c in srv.query("SELECT c.table_name, c.column_name FROM information_schema.columns c"
                              " JOIN information_schema.tables t ON t.table_name = c.table_name"
                              " AND t.table_schema = c.table_schema AND t.table_type = 'BASE TABLE'"
                              " WHERE c.table_schema = 'public' ORDER BY c.table_name, c.ordinal_position"):
            out.setdefault(t, []).append(c)
    out.pop("schema_migrations", None)
    return out


def _indexes(srv):
    """{index name: its definition} of every index made by a migration (not
    the ones SQLite makes for a table's keys)."""
    if srv.backend == "sqlite":
        rows = srv.query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    else:
        rows = srv.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    return {name: " ".join(sql.split()) for name, sql in rows}


def _fk_order(srv, schema):
    """Tables with referenced tables first (PostgreSQL checks foreign keys
    on insert)."""
    deps = {t: set() for t in schema}
    if srv.backend == "pg":
        for child, parent in srv.query(
                "SELECT tc.table_name, ccu.table_name FROM information_schema.table_constraints tc"
                " JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name"
                " WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public'"):
            if child in deps and parent in deps and parent != child:
                deps[child].add(parent)
    order = []
    while deps:
        ready = sorted(t for t, d in deps.items() if not d - set(order))
        assert ready, deps
        order += ready
        for t in ready:
            del deps[t]
    return order


def _rows(srv, table, cols):
    return srv.query(f"SELECT {', '.join(cols)} FROM {table}")


def _lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def _execute(srv, statements):
    if not statements:
        return
    if srv.backend == "sqlite":
        import sqlite3
        con = sqlite3.connect(srv.db_path, timeout=10)
        try:
            for sql, params in statements:
                con.execute(sql, params)
            con.commit()
        finally:
            con.close()
        return
    script = "BEGIN;\n"
    for sql, params in statements:
        for i in range(len(params), 0, -1):  # $10 before $1
            sql = sql.replace(f"${i}", _lit(params[i - 1]))
        script += sql + ";\n"
    script += "COMMIT;\n"
    harness._psql(srv.database_url, script)


def _wipe_own_audit(dst, schema):
    """`oms migrate --to v` audited itself into the new database; the
    database being built holds the source's history instead, so those events
    (and any checkpoint) go, with the append-only triggers set aside for the
    moment. Fixture work only: the service never deletes events."""
    tables = [t for t in ("audit_checkpoints", "audit_events") if t in schema]
    if dst.backend == "pg":
        harness._psql(dst.database_url, "BEGIN; SET LOCAL session_replication_role = replica; "
                      + " ".join(f"DELETE FROM {t};" for t in tables) + " COMMIT;")
        return
    import sqlite3
    con = sqlite3.connect(dst.db_path, timeout=10)
    try:
        trig = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s)"
                           % ", ".join("?" for _ in tables), tables).fetchall()
        for name, _ in trig:
            con.execute(f"DROP TRIGGER {name}")
        for t in tables:
            con.execute(f"DELETE FROM {t}")
        for _, sql in trig:
            con.execute(sql)
        con.commit()
    finally:
        con.close()


def _copy(dst, src_rows, version, schema, fencing_last):
    """Rows of every table that exists at `version` (`schema`: its tables
    and columns), as a server of that version would have stored them;
    `fencing_last`: the source's lock fencing sequence."""
    stmts = []
    _wipe_own_audit(dst, schema)
    for table in _fk_order(dst, schema):
        cols = schema[table]
        if table not in src_rows:
            continue
        all_cols, rows = src_rows[table]
        idx = [all_cols.index(c) for c in cols]
        for row in rows:
            vals = [row[i] for i in idx]
            if table == "audit_events" and version < AUDIT_CHAIN_VERSION:
                vals = [None if c in ("prev_hash", "hash") else v for c, v in zip(cols, vals)]
            ph = ", ".join(f"${i + 1}" for i in range(len(cols)))
            if dst.backend == "sqlite":
                ph = ", ".join("?" for _ in cols)
            if table in COUNTERS:
                sets = ", ".join(f"{c} = {'?' if dst.backend == 'sqlite' else '$' + str(i + 1)}" for i, c in enumerate(cols))
                stmts.append((f"UPDATE {table} SET {sets}", vals))
            else:
                stmts.append((f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({ph}) ON CONFLICT DO NOTHING", vals))
    if dst.backend == "pg":
        # serial columns and the fencing sequence continue after the copied rows
        serials = dst.query("SELECT table_name, column_name, pg_get_serial_sequence(table_name, column_name)"
                            " FROM information_schema.columns WHERE table_schema = 'public'"
                            " AND column_default LIKE 'nextval%'")
        for table, col, seq in serials:
            if seq and table in src_rows:
                stmts.append((f"SELECT setval('{seq}', GREATEST((SELECT COALESCE(MAX({col}), 0) FROM {table}), 1))", []))
        if "locks" in schema:
            stmts.append((f"SELECT setval('lock_fencing_seq', {int(fencing_last)})", []))
    _execute(dst, stmts)


def _norm(rows):
    return sorted(tuple("" if v is None else str(v) for v in r) for r in rows)


def test_upgrade_from_every_earlier_version(ctx):
    env = {"OMS_AUDIT_KEY": AUDIT_KEY}
    src = ctx.new_server(env=env)
    held = _populate(src)
    src.stop()
    src_rows = {t: (cols, _rows(src, t, cols)) for t, cols in _schema(src).items()}
    fresh_indexes = _indexes(src)
    # the hot paths' indexes that no statement reads are gone (0022)
    assert "commit_parents_parent" not in fresh_indexes and "locks_holder" not in fresh_indexes
    # Before version 19 every branch held all its rows: a fork is copied
    # with the rows it holds (docs/storage.md "Forks share their base's rows")
    bcols = src_rows["branch_resources"][0]
    src_rows["branch_resources"] = (bcols, src.query(f"SELECT {', '.join(bcols)} FROM ({harness.BRANCH_VIEW}) v"))
    src_rows.pop("branch_forks")
    versions = _versions(src.backend)
    latest = versions[-1]
    assert len(versions) >= 3
    max_token = max(int(r[src_rows["locks"][0].index("fencing_token")]) for r in src_rows["locks"][1])
    fencing_last = src.query("SELECT last_value FROM lock_fencing_seq")[0][0] if src.backend == "pg" else None
    for t in ("audit_events", "branches", "branch_resources", "commits", "locks"):
        assert len(src_rows[t][1]) >= 3, t  # the data is representative
    # before version 14 a server stored its trees as JSON objects
    ocols, orows = src_rows["objects"]
    legacy = dict(src_rows)
    legacy["objects"] = (ocols, list(orows) + [tuple({"hash": h, "type": t, "content": c}[k] for k in ocols)
                                               for h, t, c in tree_format.all_legacy_objects(src)])
    for v in versions[:-1]:
        dst = ctx.new_server(env=env, secret=src.secret, start=False)
        out = dst.run_cli("migrate", "--to", str(v))
        assert out.returncode == 0 and f"schema version {v}" in out.stdout, (v, out.stdout, out.stderr)
        cols_at_v = _schema(dst)
        at_v = sorted(cols_at_v)
        _copy(dst, legacy if v < TREE_NODES_VERSION else src_rows, v, cols_at_v, fencing_last)
        out = dst.run_cli("migrate")
        assert out.returncode == 0 and f"schema version {latest}" in out.stdout, (v, out.stdout, out.stderr)
        dst.start()

        # Nothing lost: every row of every table that existed at v, unchanged.
        expected = []  # (table, columns compared, rows wanted)
        for table in at_v:
            if table in COUNTERS or table not in src_rows:
                continue
            cols = cols_at_v[table]
            all_cols, rows = src_rows[table]
            if table == "audit_events" and v < AUDIT_CHAIN_VERSION:
                cols = [c for c in cols if c not in ("prev_hash", "hash")]
            if table == "branches":
                # main, seeded at 1970 by 0002, is dated by the migration
                # that fixes it (issue #20, MAIN_CREATED_VERSION), in the
                # target's own migration run up to v (from that version on,
                # the target's main is its own, made before the copy):
                # every other column is kept
                cols = [c for c in cols if c not in ("created_at", "updated_at")]
            expected.append((table, cols, [tuple(r[all_cols.index(c)] for c in cols) for r in rows]))
        # every table read in one go (one psql run on PostgreSQL)
        main_created = ["SELECT created_at FROM branches WHERE name = 'main'"] if "branches" in at_v else []
        found = dst.query_many([f"SELECT {', '.join(cols)} FROM {table}" for table, cols, _ in expected] + main_created)
        for (table, cols, want), rows in zip(expected, found):
            have = set(_norm(rows))
            missing = [r for r in _norm(want) if r not in have]
            assert not missing, (v, table, len(missing), missing[:2])
        if main_created:
            created = found[-1][0][0]
            assert int(created) > 0, (v, created)
        # ... with the indexes of a fresh database: what a migration drops
        # is gone, what it makes is there, as it makes it
        upgraded = _indexes(dst)
        assert upgraded == fresh_indexes, (v, sorted(set(upgraded.items()) ^ set(fresh_indexes.items())))

        # ... and served.
        auth = _h(dst)
        if "branches" in at_v:
            bc = src_rows["branches"][0]
            heads = {r[bc.index("name")]: r[bc.index("head")] for r in src_rows["branches"][1]}
            listed = {b["name"]: b["head"] for b in dst.get("/api/v1/branches", headers=auth).json()["items"]}
            assert listed == heads, (v, listed, heads)
            bcols = src_rows["branch_resources"][0]
            for row in src_rows["branch_resources"][1]:
                branch, resource, h = (row[bcols.index(c)] for c in ("branch", "resource", "hash"))
                r = dst.get(f"/api/v1/schemas/{quote(branch)}/{resource}", headers=auth)
                assert r.status == 200 and r.header("ETag").strip('"') == h, (v, branch, resource, r)
            for row in src_rows["commits"][1]:
                cid = row[src_rows["commits"][0].index("id")]
                assert dst.get(f"/api/v1/commits/{cid}", headers=auth).status == 200, (v, cid)
            hist = dst.get("/api/v1/branches/feature%2Fup/commits", headers=auth)
            assert hist.status == 200 and hist.json()["items"][0]["id"] == heads["feature/up"], (v, hist)
        if "locks" in at_v:
            got = {x["id"]: x for x in dst.get("/api/v1/locks?state=all", headers=auth).json()["items"]}
            lcols = src_rows["locks"][0]
            assert len(got) == len(src_rows["locks"][1]), v
            for row in src_rows["locks"][1]:
                lk = got[row[lcols.index("id")]]
                assert lk["state"] == row[lcols.index("state")] and lk["holder"] == row[lcols.index("holder")]
                assert lk["fencing_token"] == int(row[lcols.index("fencing_token")])
            assert got[held]["progress"]["percent"] == 40 and got[held]["progress"]["phase"] == "build"
            # the held lock still holds
            r = dst.request("POST", "/api/v1/schemas/feature%2Fup2/shared-properties", headers=auth,
                            json_body={"api_name": "Blocked", "type": "string"})
            assert r.status == 423 and r.json()["locks"][0]["id"] == held, (v, r)
        if "audit_events" in at_v:
            # every copied event is found by the audit log's filters, which read
            # the chained (and pre-chain) events through audit_facets, built by
            # migration 21, and the rest through the chainer's queue
            acols, arows = src_rows["audit_events"]
            by_actor = {}
            for row in arows:
                by_actor.setdefault(row[acols.index("actor_sub")], set()).add(row[acols.index("event_id")])
            aud = dst.auth("up-aud", ("auditor",))
            for actor, ids in by_actor.items():
                if actor is None:
                    continue
                r = _ok(dst.get(f"/api/v1/audit?actor={quote(actor)}&limit=1000", headers=aud), 200)
                found = {e["id"] for e in r.json()["items"]}
                assert ids <= found, (v, actor, sorted(ids - found)[:3])
        # the fencing sequence never goes back, whatever version the data came from
        # (a branch lock on protected main needs lock:admin)
        r = _ok(dst.request("POST", "/api/v1/locks", headers=_h(dst, roles=("admin",)),
                            json_body={"branch": "main", "scope": "branch", "reason": "after upgrade", "ttl_seconds": 5}), 201)
        if "locks" in at_v:
            assert r.json()["fencing_token"] > max_token, (v, r.json()["fencing_token"], max_token)
        dst.stop()
