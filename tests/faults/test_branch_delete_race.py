"""Deleting a branch while writes to it are in flight (issue #11, item 1).

Several writer threads post distinct resources to a branch; the branch is
deleted in the middle of the stream; the name is re-created from main in
the next round. The delete must take the branch row first, so that:

- every write acknowledged with 201 committed before the delete: its commit
  is on the first-parent line of the head the delete audited, and its rows
  went with the branch;
- every later write fails cleanly with 404 (never a 201 whose rows survive);
- no `branch_resources` row outlives its branch, and a re-created branch
  holds exactly main's rows and serves exactly main's resources (checked
  again after a restart, so from the database and not from a cache);
- re-creating the name never answers 409, nor do writes to the new branch
  (no resource of the old branch is still visible);
- the audit chain verifies.

Short by default (a few seconds per backend); OMS_FAULTS_LONG=1 runs more
rounds with a later delete."""

import os
import threading
import time

from harness import branch_rows, quote
from test_audit_util import verify

LONG = os.environ.get("OMS_FAULTS_LONG") == "1"
ROUNDS = 30 if LONG else 6
NAMES = ("race/del0", "race/del1", "race/del2")
WRITERS = 6
DELETE_AFTER = 0.3 if LONG else 0.2
MAX_WRITES = 400  # per writer and round: a delete that never lands ends the round anyway
MAIN_RESOURCES = ("Base0", "Base1", "Base2")


def _h(srv, sub="dev", roles=("developer",)):
    h = srv.auth(sub, roles)
    h["X-Issue-ID"] = "OMS-11"
    return h


def _sp(branch):
    return f"/api/v1/schemas/{quote(branch)}/shared-properties"


def _seed_main(srv):
    """main with a few resources (it is protected: lift, write, restore)."""
    admin = _h(srv, "root", ("admin",))
    r = srv.request("PUT", "/api/v1/branches/main/settings", headers=admin, json_body={"protected": False})
    assert r.status == 200, r
    for name in MAIN_RESOURCES:
        r = srv.request("POST", _sp("main"), headers=admin, json_body={"api_name": name, "type": "string"})
        assert r.status == 201, r
    r = srv.request("PUT", "/api/v1/branches/main/settings", headers=admin, json_body={"protected": True})
    assert r.status == 200, r


def _writer(srv, branch, w, headers, out):
    """Posts W{w}N0, W{w}N1, ... until the branch is gone. The names are the
    same in every round: a resource of a deleted branch still visible on
    its successor would answer 409 already_exists."""
    for k in range(MAX_WRITES):
        try:
            r = srv.request("POST", _sp(branch), headers=headers,
                            json_body={"api_name": f"W{w}N{k}", "type": "string"}, timeout=30)
        except OSError as e:
            out.append((f"W{w}N{k}", "error", repr(e)))
            return
        code = r.json().get("code") if r.status >= 400 and r.body else None
        out.append((f"W{w}N{k}", r.status, r.header("X-Commit") if r.status == 201 else code))
        if r.status != 201:
            return


def _first_parent_line(srv, head):
    parent = dict(srv.query("SELECT id, first_parent FROM commits"))
    line = set()
    while head:
        line.add(head)
        head = parent.get(head)
    return line


def _rows(srv, branch):
    return branch_rows(srv, branch)


def _orphans(srv):
    return srv.query("SELECT branch, resource FROM branch_resources br"
                     " WHERE NOT EXISTS (SELECT 1 FROM branches b WHERE b.name = br.branch)"
                     " UNION ALL SELECT branch, base FROM branch_forks f"
                     " WHERE NOT EXISTS (SELECT 1 FROM branches b WHERE b.name = f.branch)")


def _served(srv, branch):
    """The exported ontology (commit, tree and every resource) without the
    branch's name."""
    r = srv.get("/api/v1/schemas/" + quote(branch), headers=_h(srv, roles=("viewer",)))
    assert r.status == 200, r
    doc = r.json()
    doc.pop("branch", None)
    return doc


def _create_branch(srv, name, problems):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": "main"})
    if r.status != 201:
        problems.append(f"re-creating {name}: {r.status} {r.body[:200]}")
    return r.status == 201


def test_delete_during_writes_leaves_nothing_behind(ctx):
    srv = ctx.new_server()
    _seed_main(srv)
    main_rows = _rows(srv, "main")
    assert [r[0] for r in main_rows] == [f"shared-properties/{n}" for n in MAIN_RESOURCES]
    problems = []
    acked = deleted_late = 0
    live = set()
    for rnd in range(ROUNDS):
        name = NAMES[rnd % len(NAMES)]
        if name not in live:
            if not _create_branch(srv, name, problems):
                continue
            live.add(name)
        rows = _rows(srv, name)
        if [r[:2] for r in rows] != [r[:2] for r in main_rows]:
            problems.append(f"round {rnd}: {name} re-created from main holds {len(rows)} rows, main {len(main_rows)}")
        results = [[] for _ in range(WRITERS)]
        threads = [threading.Thread(target=_writer, args=(srv, name, w, _h(srv, f"w{w}"), results[w]))
                   for w in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(DELETE_AFTER)
        r = srv.request("DELETE", "/api/v1/branches/" + quote(name), headers=_h(srv), timeout=30)
        for t in threads:
            t.join(60)
        assert r.status == 204, (rnd, r)
        live.discard(name)
        ev = srv.query("SELECT commit_id FROM audit_events WHERE action = 'branch.delete'"
                       f" AND resource_id = '{name}' ORDER BY seq DESC LIMIT 1")
        line = _first_parent_line(srv, ev[0][0])
        for w, res in enumerate(results):
            for resource, status, detail in res:
                if status == 201:
                    acked += 1
                    if detail not in line:
                        deleted_late += 1
                        problems.append(f"round {rnd}: {resource} on {name} acknowledged 201 in commit "
                                        f"{detail[:12]}, not in the history of the deleted head")
                elif status != 404:
                    problems.append(f"round {rnd}: {resource} on {name}: {status} {detail}")
            if not res or res[-1][1] != 404:
                problems.append(f"round {rnd}: writer {w} on {name} did not end with 404: {res[-1:]}")
        left = _rows(srv, name)
        if left:
            problems.append(f"round {rnd}: {len(left)} branch_resources rows of {name} survive its deletion: "
                            f"{[r[0] for r in left[:6]]}")
    for name in NAMES:
        if name not in live and _create_branch(srv, name, problems):
            live.add(name)
    orphans = _orphans(srv)
    assert not orphans, ("branch_resources rows of no branch", orphans[:10], problems)
    for name in sorted(live):
        rows = _rows(srv, name)
        if rows != main_rows:
            problems.append(f"{name} re-created from main: rows {[r[0] for r in rows]} != {[r[0] for r in main_rows]}")
    # From the database, not from a warm cache.
    srv.stop()
    srv.start()
    want = _served(srv, "main")
    for name in sorted(live):
        got = _served(srv, name)
        if got != want:
            problems.append(f"{name} serves {got}, main serves {want}")
        r = srv.request("POST", _sp(name), headers=_h(srv), json_body={"api_name": "W0N0", "type": "string"})
        if r.status != 201:
            problems.append(f"{name}: creating W0N0 on the re-created branch answers {r.status} {r.body[:200]}")
    assert acked > 0, "no write was acknowledged before a delete: the race was not exercised"
    assert not problems, f"{len(problems)} problems ({deleted_late} of {acked} acknowledged writes outlived the delete):\n" + \
        "\n".join(problems[:30])
    code, v = verify(srv)
    assert code == 0 and v["ok"], v
