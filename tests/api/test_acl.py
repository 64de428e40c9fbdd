"""ACL policies (SPEC §6.2): CRUD with strict validation and optimistic
concurrency, decisions that refine RBAC per branch (deny wins; a role-scoped
allow grants on its globs only), freshness across two instances on one
database, and the audit + alert events of every change."""

import json

from harness import quote

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"
ISSUE = {"X-Issue-ID": "OMS-1"}
BASE = "/api/v1/acl/policies"


def _h(srv, sub="secadmin", roles=("admin",), **extra):
    h = srv.auth(sub, roles)
    h.update(extra)
    return h


def _create(srv, doc, expect=201, **extra):
    r = srv.request("POST", BASE, headers=_h(srv, **ISSUE, **extra), json_body=doc)
    assert r.status == expect, (doc, r)
    return r


def _delete(srv, pid, etag):
    r = srv.request("DELETE", f"{BASE}/{pid}", headers=_h(srv, **ISSUE, **{"If-Match": etag}))
    assert r.status == 204, r


def _branch(srv, name):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv, "dev", ("developer",)),
                    json_body={"name": name, "from": ROOT})
    assert r.status == 201, r


def _write(srv, branch, name, sub="dev", roles=("developer",)):
    """A schema write (schema:write on {branch}) as the given principal."""
    return srv.request("POST", f"/api/v1/schemas/{quote(branch)}/shared-properties",
                       headers=_h(srv, sub, roles, **ISSUE), json_body={"api_name": name, "type": "string"})


def _policy(subject="role:developer", effect="deny", permissions=("schema:write",), branches=("main",), **kw):
    d = {"subject": subject, "effect": effect, "permissions": list(permissions), "branches": list(branches)}
    d.update(kw)
    return d


def test_crud_round_trip(ctx):
    srv = ctx.server
    doc = _policy(description="freeze main for developers")
    r = _create(srv, doc)
    p = r.json()
    pid, etag = p["id"], r.header("ETag").strip('"')
    assert pid.startswith("acl_") and len(pid) == 36 and all(c in "0123456789abcdef" for c in pid[4:])
    assert r.header("Location") == f"{BASE}/{pid}"
    for k, v in doc.items():
        assert p[k] == v, (k, p)
    assert p["revision"] == 1 and p["created_by"] == "secadmin" and p["updated_by"] == "secadmin"
    assert p["created_at"].endswith("Z")

    # read: one, conditional, list (acl:read is enough: auditors have it)
    r = srv.get(f"{BASE}/{pid}", headers=_h(srv, "aud", ("auditor",)))
    assert r.status == 200 and r.json() == p and r.header("ETag") == f'"{etag}"'
    r = srv.get(f"{BASE}/{pid}", headers=_h(srv, "aud", ("auditor",), **{"If-None-Match": f'"{etag}"'}))
    assert r.status == 304
    r = srv.get(BASE, headers=_h(srv, "aud", ("auditor",)))
    assert r.status == 200 and pid in [i["id"] for i in r.json()["items"]]
    r = srv.get(f"{BASE}?subject=role%3Adeveloper", headers=_h(srv))
    assert r.status == 200 and all(i["subject"] == "role:developer" for i in r.json()["items"])

    # replace: If-Match required (428), stale (412), right (200, new ETag)
    new = _policy(branches=["main", "release/**"], description="also releases")
    r = srv.request("PUT", f"{BASE}/{pid}", headers=_h(srv, **ISSUE), json_body=new)
    assert r.status == 428 and r.json()["code"] == "precondition_required", r
    r = srv.request("PUT", f"{BASE}/{pid}", headers=_h(srv, **ISSUE, **{"If-Match": '"' + "0" * 64 + '"'}),
                    json_body=new)
    assert r.status == 412 and r.json()["current_etag"] == etag, r
    r = srv.request("PUT", f"{BASE}/{pid}", headers=_h(srv, **ISSUE, **{"If-Match": f'"{etag}"'}), json_body=new)
    assert r.status == 200, r
    etag2 = r.header("ETag").strip('"')
    assert etag2 != etag and r.json()["revision"] == 2 and r.json()["branches"] == ["main", "release/**"]
    # the old ETag is stale now, for PUT and DELETE alike
    r = srv.request("PUT", f"{BASE}/{pid}", headers=_h(srv, **ISSUE, **{"If-Match": etag}), json_body=new)
    assert r.status == 412, r
    r = srv.request("DELETE", f"{BASE}/{pid}", headers=_h(srv, **ISSUE, **{"If-Match": etag}))
    assert r.status == 412, r
    r = srv.request("DELETE", f"{BASE}/{pid}", headers=_h(srv, **ISSUE))
    assert r.status == 428, r
    _delete(srv, pid, etag2)
    assert srv.get(f"{BASE}/{pid}", headers=_h(srv)).status == 404
    r = srv.request("DELETE", f"{BASE}/{pid}", headers=_h(srv, **ISSUE, **{"If-Match": etag2}))
    assert r.status == 404, r
    assert srv.get(f"{BASE}/acl_nothing", headers=_h(srv)).status == 404


def test_validation_errors(ctx):
    srv = ctx.server
    good = _policy()
    cases = [
        ({**good, "extra": 1}, "unknown field"),
        ({**good, "id": "acl_" + "0" * 32}, "unknown field"),
        ({**good, "permissions": ["schema:fly"]}, "permission"),
        ({**good, "permissions": ["public"]}, "permission"),
        ({**good, "permissions": []}, "permissions"),
        ({**good, "permissions": ["schema:write", "schema:write"]}, "repeats"),
        ({**good, "permissions": "schema:write"}, "permissions"),
        ({**good, "subject": "developer"}, "subject"),
        ({**good, "subject": "group:x"}, "subject"),
        ({**good, "subject": "role:"}, "subject"),
        ({**good, "subject": "role:a b"}, "subject"),
        ({**good, "subject": "user:a b"}, "subject"),
        ({**good, "subject": 5}, "subject"),
        ({**good, "effect": "maybe"}, "effect"),
        ({**good, "branches": ["Main"]}, "glob"),
        ({**good, "branches": ["/main"]}, "glob"),
        ({**good, "branches": ["a//b"]}, "glob"),
        ({**good, "branches": ["a/***"]}, "glob"),
        ({**good, "branches": ["a/../b"]}, "glob"),
        ({**good, "branches": ["a?"]}, "glob"),
        ({**good, "branches": "main"}, "branches"),
        ({**good, "branches": [f"b{i}" for i in range(65)]}, "branches"),
        ({**good, "description": 7}, "description"),
        ({**good, "description": "x" * 1025}, "description"),
        ({k: v for k, v in good.items() if k != "branches"}, "branches is required"),
        ({k: v for k, v in good.items() if k != "subject"}, "subject"),
        ([good], "body"),
    ]
    for doc, words in cases:
        r = srv.request("POST", BASE, headers=_h(srv, **ISSUE), json_body=doc)
        assert r.status == 400, (doc, r)
        assert r.json()["code"] == "invalid_request" and words in r.json()["detail"], (doc, r.body)
    # 64 globs is the limit, not an error
    ok = _create(srv, {**good, "branches": [f"b{i}/**" for i in range(64)]})
    _delete(srv, ok.json()["id"], ok.header("ETag"))
    # issue references in the body are accepted (they satisfy SPEC §6.3 on
    # their own) and are not part of the stored policy
    r = srv.request("POST", BASE, headers=_h(srv), json_body={**good, "issue_id": "OMS-7", "issue_ids": ["OMS-8"]})
    assert r.status == 201, r
    assert "issue_id" not in r.json() and "issue_ids" not in r.json()
    _delete(srv, r.json()["id"], r.header("ETag"))
    # a PUT with an invalid body is refused before anything changes
    p = _create(srv, good)
    r = srv.request("PUT", f"{BASE}/{p.json()['id']}", headers=_h(srv, **ISSUE, **{"If-Match": p.header("ETag")}),
                    json_body={**good, "effect": "perhaps"})
    assert r.status == 400, r
    assert srv.get(f"{BASE}/{p.json()['id']}", headers=_h(srv)).header("ETag") == p.header("ETag")
    _delete(srv, p.json()["id"], p.header("ETag"))


def test_permissions_on_acl_routes(ctx):
    srv = ctx.server
    # developers cannot read or write policies; auditors read but do not write
    r = srv.get(BASE, headers=_h(srv, "dev", ("developer",)))
    assert r.status == 403 and r.json()["missing_permission"] == "acl:read", r
    r = srv.request("POST", BASE, headers=_h(srv, "aud", ("auditor",), **ISSUE), json_body=_policy())
    assert r.status == 403 and r.json()["missing_permission"] == "acl:write", r
    r = srv.request("POST", BASE, headers=_h(srv, "so", ("security_officer",), **ISSUE), json_body=_policy())
    assert r.status == 403 and r.json()["missing_permission"] == "acl:write", r


def test_deny_on_main_blocks_developer_there_only(ctx):
    srv = ctx.new_server()  # main must be untouched by other modules' policies
    _branch(srv, "feature/x")
    # without a policy a developer's write to main is refused as a protected branch ...
    r = _write(srv, "main", "Before")
    assert r.status == 403 and r.json()["code"] == "protected_branch", r
    r = _create(srv, _policy(subject="role:developer", effect="deny", permissions=["schema:write"],
                             branches=["main"]))
    pid, etag = r.json()["id"], r.header("ETag")
    # ... with the deny it is refused by the policy, which the problem names
    r = srv.request("POST", f"/api/v1/schemas/main/shared-properties",
                    headers=_h(srv, "dev", ("developer",), **ISSUE, **{"X-Request-ID": "acl-deny-main"}),
                    json_body={"api_name": "X", "type": "string"})
    assert r.status == 403, r
    doc = r.json()
    assert doc["code"] == "forbidden" and doc["missing_permission"] == "schema:write", doc
    assert doc["denied_by"] == pid and pid in doc["detail"], doc
    ev = srv.audit_events("request_id = 'acl-deny-main'")
    assert len(ev) == 1 and ev[0]["action"] == "authz.denied" and ev[0]["outcome"] == "denied", ev
    # the same write on feature/x succeeds; reads of main still work
    r = _write(srv, "feature/x", "X")
    assert r.status == 201, r
    assert srv.get("/api/v1/schemas/main/shared-properties", headers=_h(srv, "dev", ("developer",))).status == 200
    # other roles are not affected: an admin is refused by branch protection, not the policy
    r = _write(srv, "main", "Y", "root", ("admin",))
    assert r.status == 403 and r.json()["code"] == "protected_branch", r
    # deleting the policy restores the previous behaviour at once
    _delete(srv, pid, etag)
    r = _write(srv, "main", "After")
    assert r.status == 403 and r.json()["code"] == "protected_branch", r


def test_role_scoped_allow_on_one_glob(ctx):
    srv = ctx.server
    for b in ("team-a/x", "team-a/x/y", "team-b/x"):
        _branch(srv, b)
    viewer = ("viewer",)
    assert _write(srv, "team-a/x", "Before", "vic", viewer).status == 403
    r = _create(srv, _policy(subject="role:viewer", effect="allow", permissions=["schema:write"],
                             branches=["team-a/**"]))
    pid, etag = r.json()["id"], r.header("ETag")
    try:
        assert _write(srv, "team-a/x", "A1", "vic", viewer).status == 201
        assert _write(srv, "team-a/x/y", "A2", "vic", viewer).status == 201
        r = _write(srv, "team-b/x", "B1", "vic", viewer)
        assert r.status == 403 and r.json()["missing_permission"] == "schema:write", r
        assert "denied_by" not in r.json()
        # only schema:write is granted: deleting a branch still needs branch:delete
        r = srv.request("DELETE", f"/api/v1/branches/{quote('team-a/x/y')}", headers=_h(srv, "vic", viewer, **ISSUE))
        assert r.status == 403 and r.json()["missing_permission"] == "branch:delete", r
        # a route without a {branch} is outside every policy with globs, even
        # when its body names a matching branch
        r = _create(srv, _policy(subject="role:viewer", effect="allow", permissions=["lock:write"],
                                 branches=["team-a/**"]))
        lock_pid, lock_etag = r.json()["id"], r.header("ETag")
        r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "vic", viewer),
                        json_body={"branch": "team-a/x", "scope": "branch", "kind": "manual", "reason": "r"})
        assert r.status == 403 and r.json()["missing_permission"] == "lock:write", r
        _delete(srv, lock_pid, lock_etag)
    finally:
        _delete(srv, pid, etag)
    assert _write(srv, "team-a/x", "A3", "vic", viewer).status == 403


def test_user_subject_and_everywhere(ctx):
    srv = ctx.server
    _branch(srv, "feature/user-subject")
    # a deny with no branches applies everywhere, routes without a branch included
    r = _create(srv, _policy(subject="user:mallory", effect="deny", permissions=["schema:read"], branches=[]))
    pid, etag = r.json()["id"], r.header("ETag")
    r2 = _create(srv, _policy(subject="user:carol", effect="allow", permissions=["acl:read"], branches=[]))
    try:
        dev = ("developer",)
        r = srv.get("/api/v1/branches", headers=_h(srv, "mallory", dev))
        assert r.status == 403 and r.json()["denied_by"] == pid, r
        r = srv.get(f"/api/v1/schemas/{quote('feature/user-subject')}", headers=_h(srv, "mallory", dev))
        assert r.status == 403 and r.json()["denied_by"] == pid, r
        assert srv.get("/api/v1/branches", headers=_h(srv, "alice", dev)).status == 200
        # an allow for one user: carol (viewer) may read policies, dave (viewer) may not
        assert srv.get(BASE, headers=_h(srv, "carol", ("viewer",))).status == 200
        assert srv.get(BASE, headers=_h(srv, "dave", ("viewer",))).status == 403
        # /api/v1/me needs no permission and is never refused by a policy
        assert srv.get("/api/v1/me", headers=_h(srv, "mallory", dev)).status == 200
    finally:
        _delete(srv, pid, etag)
        _delete(srv, r2.json()["id"], r2.header("ETag"))
    assert srv.get("/api/v1/branches", headers=_h(srv, "mallory", ("developer",))).status == 200


def test_change_effective_on_second_instance(ctx):
    """Two servers on one database: a policy written through one decides the
    very next request served by the other, and so does its removal."""
    a = ctx.new_server()
    b = ctx.new_server(start=False)
    b.share_database_of(a)
    b.start()
    _branch(a, "feature/multi")
    # b has compiled its (empty) policy set before the change
    assert _write(b, "feature/multi", "Before").status == 201
    r = _create(a, _policy(branches=["feature/**"]))
    pid, etag = r.json()["id"], r.header("ETag")
    r = _write(b, "feature/multi", "During")
    assert r.status == 403 and r.json()["denied_by"] == pid, r
    r = a.request("PUT", f"{BASE}/{pid}", headers=_h(a, **ISSUE, **{"If-Match": etag}),
                  json_body=_policy(branches=["release/**"]))
    assert r.status == 200, r
    assert _write(b, "feature/multi", "AfterUpdate").status == 201
    r = b.request("PUT", f"{BASE}/{pid}", headers=_h(b, **ISSUE, **{"If-Match": r.header("ETag")}),
                  json_body=_policy(branches=["feature/*"]))
    assert r.status == 200, r
    r2 = _write(a, "feature/multi", "ViaA")
    assert r2.status == 403 and r2.json()["denied_by"] == pid, r2
    _delete(b, pid, r.header("ETag"))
    assert _write(a, "feature/multi", "AfterDelete").status == 201


def test_changes_are_audited_with_alerts(ctx):
    srv = ctx.server
    rid = "acl-audit-create"
    r = _create(srv, _policy(subject="role:reviewer", permissions=["proposal:merge"], branches=["main"]),
                **{"X-Request-ID": rid, "X-Issue-IDs": "OMS-2, OMS-3"})
    pid, etag = r.json()["id"], r.header("ETag")
    r = srv.request("PUT", f"{BASE}/{pid}", headers=_h(srv, **ISSUE, **{"If-Match": etag, "X-Request-ID": "acl-audit-update"}),
                    json_body=_policy(subject="role:reviewer", permissions=["proposal:merge"], branches=["release/**"]))
    assert r.status == 200
    etag2 = r.header("ETag").strip('"')
    r = srv.request("DELETE", f"{BASE}/{pid}", headers=_h(srv, **ISSUE, **{"If-Match": etag2, "X-Request-ID": "acl-audit-delete"}))
    assert r.status == 204
    cols = "seq, action, outcome, http_status, actor_sub, resource_kind, resource_id, issue_keys, before_hash, after_hash, detail"
    for rid, action, status, before, after in [("acl-audit-create", "acl.create", 201, None, etag.strip('"')),
                                               ("acl-audit-update", "acl.update", 200, etag.strip('"'), etag2),
                                               ("acl-audit-delete", "acl.delete", 204, etag2, None)]:
        rows = srv.query(f"SELECT {cols} FROM audit_events WHERE request_id = '{rid}' ORDER BY seq")
        ev = [dict(zip([c.strip() for c in cols.split(",")], row)) for row in rows]
        assert [e["action"] for e in ev] == [action, "alert.raised"], ev
        change, alert = ev
        assert change["outcome"] == "success" and int(change["http_status"]) == status, change
        assert change["actor_sub"] == "secadmin" and change["resource_kind"] == "acl-policies"
        assert change["resource_id"] == pid and change["before_hash"] == before and change["after_hash"] == after
        keys = json.loads(change["issue_keys"])
        assert keys == (["OMS-1", "OMS-2", "OMS-3"] if action == "acl.create" else ["OMS-1"]), keys
        d = json.loads(change["detail"])
        assert ("before" in d) == (before is not None) and ("after" in d) == (after is not None), d
        if after:
            assert d["after"]["id"] == pid and d["after"]["subject"] == "role:reviewer"
        a = json.loads(alert["detail"])
        assert a["rule"] == "acl_change" and a["action"] == action and a["policy_id"] == pid, a
        assert a["actor"] == "secadmin" and a["subject"] == "role:reviewer" and a["effect"] == "deny", a
        assert alert["outcome"] == "success" and alert["resource_id"] == pid
    # a refused change leaves a failure event and no alert
    r = srv.request("POST", BASE, headers=_h(srv, **ISSUE, **{"X-Request-ID": "acl-audit-bad"}),
                    json_body=_policy(effect="perhaps"))
    assert r.status == 400
    ev = srv.audit_events("request_id = 'acl-audit-bad'")
    assert [e["action"] for e in ev] == ["acl.create"] and ev[0]["outcome"] == "failure", ev


def test_acl_write_without_issue_reference_is_refused(ctx):
    """SPEC §6.3: ACL changes need an issue reference (enforced by the pipeline
    for every route marked as a change)."""
    srv = ctx.server
    r = srv.request("POST", BASE, headers=_h(srv), json_body=_policy(branches=["nowhere/**"]))
    assert r.status == 422, r
    assert r.json()["code"] == "issue_required", r.body
    r = srv.get(BASE, headers=_h(srv))
    assert all(i["branches"] != ["nowhere/**"] for i in r.json()["items"])


def test_paging(ctx):
    srv = ctx.new_server()
    made = []
    for i in range(5):
        r = _create(srv, _policy(subject=f"user:page{i}", branches=[f"p{i}/**"]))
        made.append(r.json()["id"])
    seen, cursor = [], None
    for _ in range(10):
        url = f"{BASE}?limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = srv.get(url, headers=_h(srv))
        assert r.status == 200, r
        seen += [i["id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and sorted(seen) == sorted(made), (seen, made)
    assert srv.get(f"{BASE}?cursor=bm9wZQ", headers=_h(srv)).status == 400
