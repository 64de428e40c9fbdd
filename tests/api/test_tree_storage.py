"""Tree storage in proportion to the change (issue #21, docs/storage.md
"Tree storage"): a single-resource commit at 10,000 types stores at most
2 KB of tree; commit and tree ids survive a restart and reads at old
commits still work; migration 0014 converts legacy JSON trees without
changing a commit id, and a conversion killed midway resumes."""

import signal

import tree_format
import large_ontology
from harness import quote

DEV = ("developer",)
ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"
KILL_ENV = "OMS_TEST_TREE_CONVERT_KILL_AFTER"


def _h(srv, sub="dev", roles=DEV, **extra):
    h = srv.auth(sub, roles)
    h["X-Issue-ID"] = "OMS-21"
    h.update(extra)
    return h


def _branch(srv, name, start=ROOT):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": start})
    assert r.status == 201, r


def _url(branch, kind, name=None):
    u = f"/api/v1/schemas/{quote(branch)}/{kind}"
    return u + (f"/{name}" if name else "")


def _type(i, extra=None):
    return large_ontology.type_doc(i, description=extra)


def _batch(srv, branch, ops):
    large_ontology.apply_batches(srv, branch, ops, _h(srv))


def _put(srv, branch, i, extra):
    r = srv.request("PUT", _url(branch, "object-types", f"T{i:05d}"), headers=_h(srv, **{"If-Match": "*"}),
                    json_body=_type(i, extra))
    assert r.status == 200, r
    return r.header("X-Commit")


def test_single_resource_commit_stores_at_most_2kb_of_tree(ctx):
    srv = ctx.server
    b = "tree/big"
    _branch(srv, b)
    _batch(srv, b, [{"op": "create", "kind": "object-types", "document": _type(i)} for i in range(10000)])
    nodes = int(srv.query("SELECT count(*) FROM tree_nodes")[0][0])
    tree0, db0 = tree_format.tree_bytes(srv), tree_format.database_bytes(srv)
    n = 40
    for k in range(n):
        _put(srv, b, (k * 997) % 10000, f"change {k}")
    tree1, db1 = tree_format.tree_bytes(srv), tree_format.database_bytes(srv)
    per_commit = (tree1 - tree0) / n
    print(f"  [{srv.backend}] 10,000 types: {nodes} tree nodes after the bulk commits;"
          f" per single-resource commit: {per_commit:.0f} bytes of tree, database growth"
          f" {(db1 - db0) / n:.0f} bytes")
    assert per_commit <= 2048, per_commit
    # no legacy tree object is written any more
    assert int(srv.query("SELECT count(*) FROM objects WHERE type = 'tree'")[0][0]) == 0


def test_ids_survive_a_restart_and_old_commits_read(ctx):
    srv = ctx.new_server()
    b = "tree/restart"
    _branch(srv, b)
    commits = []
    for i in range(5):
        r = srv.request("POST", _url(b, "shared-properties"), headers=_h(srv),
                        json_body={"api_name": f"P{i}", "type": "string"})
        assert r.status == 201, r
        commits.append(r.header("X-Commit"))
    first = {c: srv.get(f"/api/v1/commits/{c}", headers=_h(srv)).json() for c in commits}
    srv.stop()
    srv.start()
    for c in commits:
        r = srv.get(f"/api/v1/commits/{c}", headers=_h(srv))
        assert r.status == 200, r
        assert r.json()["id"] == c and r.json()["tree"] == first[c]["tree"], (r.json(), first[c])
    # cold loads of old commits: a diff, and reads as of an old commit
    d = srv.get(f"/api/v1/diff?from={commits[1]}&to={commits[3]}", headers=_h(srv))
    assert d.status == 200, d
    assert sorted(c["resource"] for c in d.json()["changes"]) == ["shared-properties/P2", "shared-properties/P3"]
    r = srv.get(_url(b, "shared-properties", "P1") + f"?at={commits[1]}", headers=_h(srv))
    assert r.status == 200, r
    r = srv.get(_url(b, "shared-properties", "P3") + f"?at={commits[1]}", headers=_h(srv))
    assert r.status == 404, r


def _diff(srv, a, b):
    r = srv.get(f"/api/v1/diff?from={a}&to={b}", headers=_h(srv))
    assert r.status == 200, r
    return r.json()


def test_cold_diff_reads_only_what_differs_and_matches_the_whole_snapshots(ctx):
    """A diff of commits outside the snapshot cache walks the two stored
    tries where they differ (docs/storage.md "Diffs of two commits"). At
    3,000 types (tries several levels deep under each bucket), after
    creates, replaces, deletes and a rename-like delete+create across
    commits: each cold diff names exactly the resources the test changed,
    and equals the diff of the same commits once both snapshots are
    loaded whole (the comparison of in-memory snapshots)."""
    srv = ctx.new_server()
    b = "tree/colddiff"
    _branch(srv, b)
    n = 3000
    _batch(srv, b, [{"op": "create", "kind": "object-types", "document": _type(i)} for i in range(n)])
    head = lambda: srv.get(f"/api/v1/branches/{quote(b)}", headers=_h(srv)).json()["head"]
    c0 = head()
    _batch(srv, b, [{"op": "replace", "kind": "object-types", "api_name": f"T{i:05d}", "document": _type(i, f"edit {i}")}
                    for i in range(0, n, 97)])
    c1 = head()
    _batch(srv, b, [{"op": "delete", "kind": "object-types", "api_name": f"T{i:05d}"} for i in range(5, n, 301)]
           + [{"op": "create", "kind": "object-types", "document": _type(n + i)} for i in range(7)])
    c2 = head()
    c3 = _put(srv, b, 1, "one more")
    edited = {f"object-types/T{i:05d}" for i in range(0, n, 97)}
    deleted = {f"object-types/T{i:05d}" for i in range(5, n, 301)}
    added = {f"object-types/T{n + i:05d}" for i in range(7)}
    want = {
        (c0, c1): {r: "modified" for r in edited},
        (c1, c2): {**{r: "removed" for r in deleted}, **{r: "added" for r in added}},
        (c2, c3): {"object-types/T00001": "modified"},
        (c0, c3): {**{r: "modified" for r in edited | {"object-types/T00001"}},
                   **{r: "removed" for r in deleted}, **{r: "added" for r in added}},
        (c3, c0): {**{r: "modified" for r in edited | {"object-types/T00001"}},
                   **{r: "added" for r in deleted}, **{r: "removed" for r in added}},
        (c2, c2): {},
    }
    srv.stop()
    srv.start()  # an empty snapshot cache: every diff below starts cold
    cold = {}
    for (x, y), expect in want.items():
        d = _diff(srv, x, y)
        assert {c["resource"]: c["change"] for c in d["changes"]} == expect, (x[:8], y[:8])
        cold[(x, y)] = d
    # none of them loaded a commit's snapshot whole
    m = srv.get("/metrics", headers=srv.auth("svc", ("service_account",))).body
    assert 'oms_snapshot_cache_misses_total{path="commit_id"} 0' in m, [l for l in m.splitlines() if "commit_id" in l]
    srv.stop()
    srv.start()  # both snapshots loaded whole first (reads at each commit), then the same diffs
    for c in (c0, c1, c2, c3):
        r = srv.get(_url(b, "object-types", "T00002") + f"?at={c}", headers=_h(srv))
        assert r.status == 200, r
    for key, d in cold.items():
        assert _diff(srv, *key) == d, key


# ---- migration 0014 ----

COPY = ("commits", "commit_parents", "commit_changes", "commit_issues", "branches", "branch_resources")


def _cols(srv, table):
    if srv.backend == "sqlite":
        return [r[1] for r in srv.query(f"PRAGMA table_info({table})")]
    return [r[0] for r in srv.query("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                    f"'{table}' AND table_schema = current_schema() ORDER BY ordinal_position")]


def _lit(v):
    return "NULL" if v is None else "'" + str(v).replace("'", "''") + "'"


def _legacy_copy(src, dst):
    """What a server of schema version 13 held for src's history: its
    commits, branches and documents, and every tree as legacy JSON objects."""
    sql = []
    resources = src.query("SELECT hash, type, content FROM objects")
    for row in resources + tree_format.all_legacy_objects(src):
        sql.append("INSERT INTO objects (hash, type, content) VALUES (%s) ON CONFLICT DO NOTHING"
                   % ", ".join(_lit(v) for v in row))
    for t in COPY:
        cols = _cols(dst, t)
        for row in src.query(f"SELECT {', '.join(cols)} FROM {t}"):
            sql.append(f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join(_lit(v) for v in row)})"
                       " ON CONFLICT DO NOTHING")
    dst.execute("BEGIN;\n" + ";\n".join(sql) + ";\nCOMMIT;")


def _history(srv, n_branches=3, per_branch=4):
    """Branches with commits (and a revert to an earlier content: two
    commits with one tree)."""
    out = []
    for k in range(n_branches):
        b = f"legacy/b{k}"
        _branch(srv, b)
        for i in range(per_branch):
            r = srv.request("POST", _url(b, "shared-properties"), headers=_h(srv),
                            json_body={"api_name": f"P{k}x{i}", "type": "string"})
            assert r.status == 201, r
            out.append((b, f"P{k}x{i}", r.header("X-Commit")))
    r = srv.request("DELETE", _url(b, "shared-properties", f"P{k}x{per_branch - 1}"),
                    headers=_h(srv, **{"If-Match": "*"}))
    assert r.status == 204, r
    return out


def _legacy_database(ctx):
    src = ctx.new_server()
    made = _history(src)
    src.stop()
    dst = ctx.new_server(secret=src.secret, start=False)
    out = dst.run_cli("migrate", "--to", "13")
    assert out.returncode == 0 and "schema version 13" in out.stdout, (out.stdout, out.stderr)
    _legacy_copy(src, dst)
    want = {r[0]: r[1] for r in src.query("SELECT id, tree FROM commits")}
    return dst, made, want


def _check_converted(dst, made, want):
    assert int(dst.query("SELECT count(*) FROM objects WHERE type = 'tree'")[0][0]) == 0
    assert {r[0]: r[1] for r in dst.query("SELECT id, tree FROM commits")} == want
    assert set(tree_format.roots(dst)) == set(want.values())
    all_nodes = tree_format.nodes(dst)
    for tree_id, root in tree_format.roots(dst).items():
        tid, _ = tree_format.legacy_objects(tree_format.mapping(all_nodes, root))
        assert tid == tree_id, (tid, tree_id)
    for branch, name, commit in made:
        r = dst.get(f"/api/v1/commits/{commit}", headers=_h(dst))
        assert r.status == 200 and r.json()["tree"] == want[commit], r
        r = dst.get(_url(branch, "shared-properties", name) + f"?at={commit}", headers=_h(dst))
        assert r.status == 200 and r.json()["api_name"] == name, r


def test_migration_converts_legacy_trees_keeping_every_commit_id(ctx):
    dst, made, want = _legacy_database(ctx)
    assert int(dst.query("SELECT count(*) FROM objects WHERE type = 'tree'")[0][0]) > len(set(want.values()))
    dst.start()  # serve migrates first
    _check_converted(dst, made, want)
    # and new commits go on top
    r = dst.request("POST", _url(made[0][0], "shared-properties"), headers=_h(dst),
                    json_body={"api_name": "After", "type": "string"})
    assert r.status == 201, r


def test_migration_killed_midway_resumes(ctx):
    dst, made, want = _legacy_database(ctx)
    out = dst.run_cli("migrate", env={KILL_ENV: "3"})
    assert out.returncode == -signal.SIGKILL, (out.returncode, out.stderr)
    assert int(dst.query("SELECT count(*) FROM trees")[0][0]) == 3
    assert int(dst.query("SELECT count(*) FROM schema_migrations WHERE version = 14")[0][0]) == 0
    assert int(dst.query("SELECT count(*) FROM objects WHERE type = 'tree'")[0][0]) > 0
    out = dst.run_cli("migrate")
    # resumed to the latest version (14, and whatever came after it)
    assert out.returncode == 0 and "schema version" in out.stdout, (out.stdout, out.stderr)
    assert int(dst.query("SELECT count(*) FROM schema_migrations WHERE version = 14")[0][0]) == 1
    dst.start()
    _check_converted(dst, made, want)


def test_altered_tree_node_is_an_error_never_a_wrong_answer(ctx):
    """A stored leaf whose entry is made to name another document (its
    body changed under the same key): a cold read at that commit fails
    (500, the problem names the commit) instead of serving the other
    document."""
    srv = ctx.new_server()
    b = "tree/tamper"
    _branch(srv, b)
    for name in ("P1", "P2"):
        r = srv.request("POST", _url(b, "shared-properties"), headers=_h(srv),
                        json_body={"api_name": name, "type": "string", "description": name})
        assert r.status == 201, r
    commit = r.header("X-Commit")
    tree = srv.get(f"/api/v1/commits/{commit}", headers=_h(srv)).json()["tree"]
    all_nodes = tree_format.nodes(srv)
    m = tree_format.mapping(all_nodes, tree_format.roots(srv)[tree])
    p1, p2 = m["shared-properties/P1"], m["shared-properties/P2"]
    (leaf,) = [h for h, body in all_nodes.items() if body[1] == 0 and bytes.fromhex(p1) in body]
    forged = all_nodes[leaf].replace(bytes.fromhex(p1), bytes.fromhex(p2))
    srv.stop()
    if srv.backend == "sqlite":
        srv.execute(f"UPDATE tree_nodes SET body = X'{forged.hex()}' WHERE hash = X'{leaf}'")
    else:
        srv.execute(f"UPDATE tree_nodes SET body = decode('{forged.hex()}', 'hex') WHERE hash = decode('{leaf}', 'hex')")
    srv.start()
    # a cold diff that reads the altered node: the node's hash check
    r = srv.get(f"/api/v1/diff?from={ROOT}&to={commit}", headers=_h(srv))
    assert r.status == 500 and "does not match its content" in r.json()["detail"], r
    r = srv.get(_url(b, "shared-properties", "P1") + f"?at={commit}", headers=_h(srv))
    assert r.status == 500, r
    assert f"commit {commit[:12]}" in r.json()["detail"] and "does not match" in r.json()["detail"], r.json()
