"""Copy-on-write branches (docs/storage.md "Forks share their base's rows").

A branch made from a branch stores no copy of its base's rows: it records
its base in branch_forks and keeps only the resources it changed (a
tombstone for one it removed). Whatever happens to the base afterwards (a
write, a fast-forward, its deletion), the fork serves exactly the state of
its own head. Each view is checked against the stored tree of the fork's
head (`?at=`), through the server that wrote and through a second instance
whose cache has never seen the branch (so from the database)."""

import threading

from harness import quote

DEV = ("developer",)
ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"  # the empty root commit


def _h(srv, sub="dev", roles=DEV, **extra):
    h = srv.auth(sub, roles)
    h["X-Issue-ID"] = "OMS-21"
    h.update(extra)
    return h


def _ok(r, status=200):
    assert r.status == status, r
    return r


def _branch(srv, name, frm):
    return _ok(srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": frm}),
               201).json()["head"]


def _sp(branch, name=None):
    return f"/api/v1/schemas/{quote(branch)}/shared-properties" + (f"/{name}" if name else "")


def _create(srv, branch, name, desc="v1"):
    return _ok(srv.request("POST", _sp(branch), headers=_h(srv),
                           json_body={"api_name": name, "type": "string", "description": desc}), 201)


def _seed(srv, branch, names, forks=()):
    """A branch made from the root commit holding `names`, and its forks."""
    _branch(srv, branch, ROOT)
    for n in names:
        _create(srv, branch, n)
    for f in forks:
        _branch(srv, f, branch)


def _update(srv, branch, name, desc):
    cur = _ok(srv.get(_sp(branch, name), headers=_h(srv)))
    return _ok(srv.request("PUT", _sp(branch, name), headers=_h(srv, **{"If-Match": cur.header("ETag")}),
                           json_body={"api_name": name, "type": "string", "description": desc}))


def _remove(srv, branch, name):
    cur = _ok(srv.get(_sp(branch, name), headers=_h(srv)))
    _ok(srv.request("DELETE", _sp(branch, name), headers=_h(srv, **{"If-Match": cur.header("ETag")})), 204)


def _head(srv, branch):
    return _ok(srv.get(f"/api/v1/branches/{quote(branch)}", headers=_h(srv))).json()["head"]


def _export(srv, branch, at=None):
    r = _ok(srv.get("/api/v1/schemas/" + quote(branch) + (f"?at={at}" if at else ""), headers=_h(srv)))
    doc = r.json()
    doc.pop("branch", None)
    return doc


def _names(doc):
    return sorted((p["api_name"], p.get("description")) for p in doc["shared-properties"])


def _own_rows(srv, branch):
    return srv.query(f"SELECT count(*) FROM branch_resources WHERE branch = '{branch}'")[0][0]


def _base(srv, branch):
    rows = srv.query(f"SELECT base FROM branch_forks WHERE branch = '{branch}'")
    return rows[0][0] if rows else None


def _second(ctx, srv):
    b = ctx.new_server(start=False)
    b.share_database_of(srv)
    b.start()
    return b


def _same_as_its_head(servers, branch):
    """The branch serves exactly the stored tree of its head, on every server."""
    head = _head(servers[0], branch)
    want = _export(servers[0], ROOT_BRANCH, at=head)
    want["commit"] = head
    for s in servers:
        got = _export(s, branch)
        assert got["commit"] == head, (branch, got["commit"], head)
        assert got == want, (branch, _names(got), _names(want))
    return want


ROOT_BRANCH = "main"  # any branch serves ?at= of any commit


def test_a_fork_stores_nothing_and_keeps_its_view(ctx):
    srv = ctx.new_server()
    _seed(srv, "cow/base", ("Keep", "Change", "Gone", "Mine"), ["cow/fork"])
    # no copy of the base's four rows: the fork is one row in branch_forks
    assert int(_own_rows(srv, "cow/fork")) == 0 and _base(srv, "cow/fork") == "cow/base"
    before = _same_as_its_head([srv], "cow/fork")
    # the base moves on: a change, a removal, an addition
    _update(srv, "cow/base", "Change", "v2")
    _remove(srv, "cow/base", "Gone")
    _create(srv, "cow/base", "Later")
    b = _second(ctx, srv)
    assert _same_as_its_head([srv, b], "cow/fork") == before
    assert _names(_export(b, "cow/base")) == [("Change", "v2"), ("Keep", "v1"), ("Later", "v1"), ("Mine", "v1")]
    # the fork's own changes, a removal among them, leave the base alone
    _remove(srv, "cow/fork", "Mine")
    _update(srv, "cow/fork", "Keep", "fork")
    _create(srv, "cow/fork", "ForkOnly")
    assert _names(_export(srv, "cow/fork")) == [("Change", "v1"), ("ForkOnly", "v1"), ("Gone", "v1"),
                                                ("Keep", "fork")]
    # and the base's later change of what the fork removed does not revive it
    _update(srv, "cow/base", "Mine", "v2")
    c = _second(ctx, srv)
    _same_as_its_head([srv, c], "cow/fork")
    assert ("Mine", "v2") in _names(_export(c, "cow/base"))


def test_a_fork_of_a_fork_shares_the_base(ctx):
    srv = ctx.new_server()
    _seed(srv, "cow2/base", ("A", "B", "C"), ["cow2/f1"])
    _update(srv, "cow2/f1", "A", "f1")
    _remove(srv, "cow2/f1", "B")
    _branch(srv, "cow2/f2", "cow2/f1")
    # f2 takes f1's base and a copy of f1's own rows (the change, the tombstone)
    assert _base(srv, "cow2/f2") == "cow2/base" and int(_own_rows(srv, "cow2/f2")) == 2
    _update(srv, "cow2/base", "C", "base")
    _update(srv, "cow2/base", "B", "base")
    _update(srv, "cow2/f1", "C", "f1")
    b = _second(ctx, srv)
    v2 = _same_as_its_head([srv, b], "cow2/f2")
    assert _names(v2) == [("A", "f1"), ("C", "v1")]
    assert _names(_same_as_its_head([srv, b], "cow2/f1")) == [("A", "f1"), ("C", "f1")]


def test_deleting_a_base_hands_its_rows_to_its_forks(ctx):
    srv = ctx.new_server()
    _seed(srv, "cow3/base", ("A", "B", "C"), ["cow3/f1", "cow3/f2"])
    _remove(srv, "cow3/f1", "A")
    _update(srv, "cow3/f2", "B", "f2")
    _update(srv, "cow3/base", "C", "base")
    views = {f: _export(srv, f) for f in ("cow3/f1", "cow3/f2")}
    _ok(srv.request("DELETE", "/api/v1/branches/" + quote("cow3/base"), headers=_h(srv)), 204)
    for f in ("cow3/f1", "cow3/f2"):
        assert _base(srv, f) is None, f
        # every row its own now, and no tombstone left behind
        assert srv.query(f"SELECT count(*) FROM branch_resources WHERE branch = '{f}' AND hash = ''")[0][0] in (0, "0")
    assert int(_own_rows(srv, "cow3/f1")) == 2 and int(_own_rows(srv, "cow3/f2")) == 3
    assert not srv.query("SELECT branch FROM branch_resources WHERE branch = 'cow3/base'")
    b = _second(ctx, srv)
    for f, view in views.items():
        assert _same_as_its_head([srv, b], f) == view, f
    # the name comes back as a new, empty branch; the old forks do not follow it
    _branch(srv, "cow3/base", ROOT)
    _create(srv, "cow3/base", "A", "new")
    assert _same_as_its_head([srv], "cow3/f1") == views["cow3/f1"]


def test_fast_forward_of_a_base_keeps_its_other_forks(ctx):
    srv = ctx.new_server()
    _seed(srv, "cow4/base", ("A", "B", "C"), ["cow4/feature", "cow4/other"])
    other = _export(srv, "cow4/other")
    _update(srv, "cow4/feature", "A", "feature")
    _remove(srv, "cow4/feature", "B")
    _create(srv, "cow4/feature", "D")
    # through a second instance, which has never loaded the target: its
    # state before the merge comes from the database, inside the merge
    b = _second(ctx, srv)
    r = _ok(b.request("POST", "/api/v1/branches/" + quote("cow4/base") + "/merge", headers=_h(b),
                      json_body={"source": "cow4/feature"})).json()
    assert r["status"] == "fast_forward", r
    assert _head(srv, "cow4/base") == _head(srv, "cow4/feature")
    c = _second(ctx, srv)
    assert _same_as_its_head([srv, b, c], "cow4/other") == other
    _same_as_its_head([b, srv, c], "cow4/base")
    # the base's rows are the feature's, provenance included
    view = ("SELECT r.resource, r.hash, r.commit_id FROM branch_resources r WHERE r.branch = '{0}' AND r.hash <> ''"
            " UNION ALL SELECT r.resource, r.hash, r.commit_id FROM branch_forks f JOIN branch_resources r"
            " ON r.branch = f.base WHERE f.branch = '{0}' AND NOT EXISTS (SELECT 1 FROM branch_resources m"
            " WHERE m.branch = '{0}' AND m.resource = r.resource)")
    assert sorted(srv.query(view.format("cow4/base"))) == sorted(x for x in srv.query(view.format("cow4/feature"))
                                                                  if x[1])


def test_forks_made_while_the_base_is_written_hold_their_head(ctx):
    """Forks made from a base while writers change it: each fork's view is
    exactly its head's tree (a fork the base's write did not see would
    follow the base)."""
    srv = ctx.new_server()
    _seed(srv, "cow5/base", [f"R{i}" for i in range(8)])
    stop = threading.Event()
    errors = []

    def writer(w):
        n = 0
        while not stop.is_set():
            name = f"R{(n * 3 + w) % 8}"
            try:
                cur = srv.get(_sp("cow5/base", name), headers=_h(srv))
                if cur.status == 200:
                    r = srv.request("PUT", _sp("cow5/base", name), headers=_h(srv, **{"If-Match": cur.header("ETag")}),
                                    json_body={"api_name": name, "type": "string", "description": f"w{w}n{n}"})
                    if r.status not in (200, 412):
                        errors.append(r)
                r = srv.request("POST", _sp("cow5/base"), headers=_h(srv),
                                json_body={"api_name": f"W{w}N{n}", "type": "string"})
                if r.status != 201:
                    errors.append(r)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            n += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    forks = []
    try:
        for i in range(12):
            name = f"cow5/f{i}"
            _branch(srv, name, "cow5/base")
            forks.append(name)
            if i % 3 == 2:  # a fork of a fork, made while the base moves too
                _branch(srv, name + "x", name)
                forks.append(name + "x")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    b = _second(ctx, srv)
    for f in forks:
        _same_as_its_head([srv, b], f)


def test_writes_to_forks_while_their_base_is_deleted(ctx):
    """Writers on two forks (creates, updates, removals) while their base is
    deleted: every fork ends as a base holding exactly its head's state, with
    no tombstone left (a removal after the hand-over deletes its row)."""
    srv = ctx.new_server()
    forks = ("cow6/f1", "cow6/f2")
    _seed(srv, "cow6/base", [f"R{i}" for i in range(6)], forks)
    stop = threading.Event()
    errors, done = [], []

    def writer(f, w):
        n = 0
        while not stop.is_set():
            name = f"R{(n + w) % 6}"
            try:
                cur = srv.get(_sp(f, name), headers=_h(srv))
                if cur.status == 200 and n % 3 == 0:
                    r = srv.request("DELETE", _sp(f, name), headers=_h(srv, **{"If-Match": cur.header("ETag")}))
                    ok_status = (204, 412, 404)
                elif cur.status == 200:
                    r = srv.request("PUT", _sp(f, name), headers=_h(srv, **{"If-Match": cur.header("ETag")}),
                                    json_body={"api_name": name, "type": "string", "description": f"w{w}n{n}"})
                    ok_status = (200, 412, 404)
                else:
                    r = srv.request("POST", _sp(f), headers=_h(srv), json_body={"api_name": name, "type": "string"})
                    ok_status = (201, 409)
                if r.status not in ok_status:
                    errors.append(r)
                else:
                    done.append(r.status)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
            n += 1

    threads = [threading.Thread(target=writer, args=(f, w)) for f in forks for w in range(2)]
    for t in threads:
        t.start()
    try:
        while len(done) < 40 and not errors:
            threading.Event().wait(0.01)
        _ok(srv.request("DELETE", "/api/v1/branches/" + quote("cow6/base"), headers=_h(srv)), 204)
        until = len(done) + 40
        while len(done) < until and not errors:
            threading.Event().wait(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    b = _second(ctx, srv)
    for f in forks:
        assert _base(srv, f) is None, f
        assert srv.query(f"SELECT count(*) FROM branch_resources WHERE branch = '{f}' AND hash = ''")[0][0] in (0, "0")
        _same_as_its_head([srv, b], f)
