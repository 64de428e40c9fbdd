"""A revert whose commit cannot be read whole fails whole (issue #12).

A commit replaces two resources; the earlier version of one of them is then
made unreadable in the database (its stored object no longer parses). The
revert of that commit must answer the error (500 internal, naming the
resource) and commit nothing: the head, both resources and the history stay
as they were, and the only branch.revert event is the failure. Before the
fix the unreadable operation was skipped and the revert of the other
resource committed as a success (201)."""

import sqlite3

import harness
from harness import quote

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"  # the empty root commit
BRANCH = "rv/partial"


def _h(srv, **extra):
    h = srv.auth("dev", ("developer",))
    h["X-Issue-ID"] = "OMS-12"
    h.update(extra)
    return h


def _url(name=None):
    u = f"/api/v1/schemas/{quote(BRANCH)}/shared-properties"
    return u + (f"/{name}" if name else "")


def _tamper(srv, sql):
    """A write behind the server's back (the fault)."""
    if srv.backend == "sqlite":
        con = sqlite3.connect(srv.db_path, timeout=10, isolation_level=None)
        try:
            con.execute(sql)
        finally:
            con.close()
    else:
        harness._psql(srv.database_url, sql)


def _doc(srv, name):
    r = srv.get(_url(name), headers=_h(srv))
    assert r.status == 200, r
    return r.json()


def test_revert_with_an_unreadable_object_commits_nothing(ctx):
    srv = ctx.new_server()
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": BRANCH, "from": ROOT})
    assert r.status == 201, r
    for name in ("Alpha", "Beta"):
        r = srv.request("POST", _url(), headers=_h(srv), json_body={"api_name": name, "type": "string",
                                                                     "description": "v1"})
        assert r.status == 201, r
    old = {name: _doc(srv, name)["meta"]["etag"] for name in ("Alpha", "Beta")}
    ops = [{"op": "replace", "kind": "shared-properties", "api_name": name, "if_match": old[name],
            "document": {"api_name": name, "type": "string", "description": "v2"}} for name in ("Alpha", "Beta")]
    r = srv.request("POST", f"/api/v1/schemas/{quote(BRANCH)}/changes", headers=_h(srv),
                    json_body={"message": "both to v2", "operations": ops})
    assert r.status == 200 and r.json()["changed"], r
    commit = r.json()["commit"]
    # the fault: Beta's v1 (what the revert must restore) no longer parses
    _tamper(srv, f"UPDATE objects SET content = '{{\"api_name\": \"Beta\", ' WHERE hash = '{old['Beta']}'")

    r = srv.request("POST", f"/api/v1/branches/{quote(BRANCH)}/revert", headers=_h(srv), json_body={"commit": commit})
    assert r.status == 500, r
    body = r.json()
    assert body["code"] == "internal", body
    assert "shared-properties/Beta" in body["detail"] and "nothing was reverted" in body["detail"], body

    # nothing was committed: same head, both resources still at v2, no revert commit
    branch = srv.get(f"/api/v1/branches/{quote(BRANCH)}", headers=_h(srv)).json()
    assert branch["head"] == commit, branch
    for name in ("Alpha", "Beta"):
        assert _doc(srv, name)["description"] == "v2", name
    history = srv.get(f"/api/v1/branches/{quote(BRANCH)}/commits?limit=10", headers=_h(srv)).json()["items"]
    assert history[0]["id"] == commit and not any(c["message"].startswith("Revert") for c in history), history
    # the audit records the failure, and no success
    assert srv.audit_events("action = 'branch.revert' AND outcome = 'success'") == []
    fails = srv.audit_events("action = 'branch.revert' AND outcome = 'failure'")
    assert len(fails) == 1 and str(fails[0]["http_status"]) == "500", fails
