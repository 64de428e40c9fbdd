"""Three-way merge, proposals with reviews, the protected-branch flow and
revert (SPEC §4)."""

from harness import quote

DEV = ("developer",)
ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"  # the empty root commit


def _h(srv, sub="dev", roles=DEV, issue="OMS-100", **extra):
    """Auth headers; changes carry an issue reference unless issue=None."""
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = issue
    h.update(extra)
    return h


def _branch(srv, name, frm=ROOT):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": frm})
    assert r.status == 201, r
    return r.json()["head"]


def _url(branch, kind, name=None):
    u = f"/api/v1/schemas/{quote(branch)}/{kind}"
    return u + (f"/{name}" if name else "")


def _create(srv, branch, kind, doc, sub="dev"):
    r = srv.request("POST", _url(branch, kind), headers=_h(srv, sub=sub), json_body=doc)
    assert r.status == 201, (doc.get("api_name"), r)
    return r


def _put(srv, branch, kind, name, doc, sub="dev"):
    cur = srv.get(_url(branch, kind, name), headers=_h(srv))
    assert cur.status == 200, cur
    r = srv.request("PUT", _url(branch, kind, name), headers=_h(srv, sub=sub, **{"If-Match": cur.header("ETag")}),
                    json_body=doc)
    assert r.status == 200, r
    return r


def _delete(srv, branch, kind, name):
    cur = srv.get(_url(branch, kind, name), headers=_h(srv))
    r = srv.request("DELETE", _url(branch, kind, name), headers=_h(srv, **{"If-Match": cur.header("ETag")}))
    assert r.status == 204, r


def _merge(srv, target, source, expect=200, **body):
    r = srv.request("POST", f"/api/v1/branches/{quote(target)}/merge", headers=_h(srv),
                    json_body={"source": source, **body})
    assert r.status == expect, r
    return r.json()


def _head(srv, branch):
    return srv.get(f"/api/v1/branches/{quote(branch)}", headers=_h(srv)).json()["head"]


PERSON = {"api_name": "Person", "status": "active",
          "properties": [{"api_name": "id", "type": "string", "required": True},
                         {"api_name": "name", "type": "string"},
                         {"api_name": "age", "type": "integer"}], "primary_key": "id"}


def _with_props(**changes):
    doc = {k: v for k, v in PERSON.items()}
    props = []
    for p in PERSON["properties"]:
        q = dict(p)
        q.update(changes.get(p["api_name"], {}))
        props.append(q)
    doc["properties"] = props
    return doc


def test_fast_forward_and_up_to_date(ctx):
    srv = ctx.server
    _branch(srv, "ff/target")
    _branch(srv, "ff/source", "ff/target")
    c = _create(srv, "ff/source", "object-types", PERSON).header("X-Commit")
    out = _merge(srv, "ff/target", "ff/source")
    assert out["status"] == "fast_forward" and out["commit"] == c
    assert _head(srv, "ff/target") == c
    assert srv.get(_url("ff/target", "object-types", "Person"), headers=_h(srv)).status == 200
    out = _merge(srv, "ff/target", "ff/source")
    assert out["status"] == "up_to_date"
    ev = srv.query(f"SELECT action FROM audit_events WHERE action = 'branch.merge' AND commit_id = '{c}'")
    assert len(ev) == 1


def test_true_merge_has_two_parents(ctx):
    srv = ctx.server
    _branch(srv, "tm/target")
    _create(srv, "tm/target", "object-types", PERSON)
    _branch(srv, "tm/source", "tm/target")
    _create(srv, "tm/source", "shared-properties", {"api_name": "FromSource", "type": "string"})
    t = _create(srv, "tm/target", "shared-properties", {"api_name": "FromTarget", "type": "string"}).header("X-Commit")
    s = _head(srv, "tm/source")
    # a proposal's preview of a three-way merge lists what the merge commit
    # changes on the target: the source's addition, not the removal of the
    # target's own (which is how the two heads differ)
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv),
                    json_body={"source": "tm/source", "target": "tm/target", "title": "Preview"})
    assert r.status == 201, r
    preview = r.json()
    assert [c["resource"] for c in preview["changes"]] == ["shared-properties/FromSource"], preview
    assert [c["change"] for c in preview["changes"]] == ["added"], preview
    assert preview["merge_base"] not in (t, s) and preview["conflicts"] == [], preview
    out = _merge(srv, "tm/target", "tm/source", message="Merge it OMS-1")
    assert out["status"] == "merged"
    commit = srv.get(f"/api/v1/commits/{out['commit']}", headers=_h(srv)).json()
    assert commit["parents"] == [t, s] and commit["message"] == "Merge it OMS-1"
    names = [x["api_name"] for x in srv.get(_url("tm/target", "shared-properties"), headers=_h(srv)).json()["items"]]
    assert names == ["FromSource", "FromTarget"]
    ev = srv.query(f"SELECT action, outcome FROM audit_events WHERE commit_id = '{out['commit']}'")
    assert [tuple(e) for e in ev] == [("branch.merge", "success")]


def test_different_properties_merge_same_property_conflicts(ctx):
    srv = ctx.server
    _branch(srv, "dp/base")
    _create(srv, "dp/base", "object-types", PERSON)
    _branch(srv, "dp/alice", "dp/base")
    _branch(srv, "dp/bob", "dp/base")
    _put(srv, "dp/alice", "object-types", "Person", _with_props(name={"description": "Full name"}), sub="alice")
    _put(srv, "dp/bob", "object-types", "Person", _with_props(age={"type": "long"}), sub="bob")
    _merge(srv, "dp/base", "dp/alice")
    out = _merge(srv, "dp/base", "dp/bob")
    assert out["status"] == "merged", out
    person = srv.get(_url("dp/base", "object-types", "Person"), headers=_h(srv)).json()
    props = {p["api_name"]: p for p in person["properties"]}
    assert props["name"]["description"] == "Full name" and props["age"]["type"] == "long"
    # now both change the same property differently
    _branch(srv, "dp/carol", "dp/base")
    _branch(srv, "dp/dave", "dp/base")
    _put(srv, "dp/carol", "object-types", "Person", dict(person, **{"properties": [
        dict(p, description="Carol's words") if p["api_name"] == "name" else p for p in person["properties"]]}), sub="carol")
    _put(srv, "dp/dave", "object-types", "Person", dict(person, **{"properties": [
        dict(p, description="Dave's words") if p["api_name"] == "name" else p for p in person["properties"]]}), sub="dave")
    _merge(srv, "dp/base", "dp/carol")
    body = _merge(srv, "dp/base", "dp/dave", expect=409)
    assert body["code"] == "merge_conflict"
    (conflict,) = body["conflicts"]
    assert conflict["resource"] == "object-types/Person" and conflict["type"] == "modify/modify"
    (field,) = conflict["fields"]
    assert field == {"path": "/properties/name/description", "base": "Full name", "source": "Dave's words",
                     "target": "Carol's words"}, field


def test_conflict_types_and_resolutions(ctx):
    srv = ctx.server
    _branch(srv, "cr/base")
    _create(srv, "cr/base", "shared-properties", {"api_name": "Gone", "type": "string"})
    _create(srv, "cr/base", "shared-properties", {"api_name": "Both", "type": "string"})
    _branch(srv, "cr/src", "cr/base")
    _branch(srv, "cr/tgt", "cr/base")
    # add/add with different content
    _create(srv, "cr/src", "shared-properties", {"api_name": "New", "type": "string"})
    _create(srv, "cr/tgt", "shared-properties", {"api_name": "New", "type": "long"})
    # delete/modify
    _delete(srv, "cr/src", "shared-properties", "Gone")
    _put(srv, "cr/tgt", "shared-properties", "Gone", {"api_name": "Gone", "type": "string", "description": "kept"})
    # modify/modify on the same field
    _put(srv, "cr/src", "shared-properties", "Both", {"api_name": "Both", "type": "string", "description": "src"})
    _put(srv, "cr/tgt", "shared-properties", "Both", {"api_name": "Both", "type": "string", "description": "tgt"})
    head_before = _head(srv, "cr/tgt")
    body = _merge(srv, "cr/tgt", "cr/src", expect=409)
    kinds = {c["resource"]: c["type"] for c in body["conflicts"]}
    assert kinds == {"shared-properties/New": "add/add", "shared-properties/Gone": "delete/modify",
                     "shared-properties/Both": "modify/modify"}, kinds
    new = [c for c in body["conflicts"] if c["resource"] == "shared-properties/New"][0]
    assert new["base"] is None and new["source"]["type"] == "string" and new["target"]["type"] == "long"
    assert _head(srv, "cr/tgt") == head_before  # nothing written
    # partially resolved: still 409 for what is left
    body = _merge(srv, "cr/tgt", "cr/src", expect=409, resolutions={"shared-properties/New": "source"})
    assert {c["resource"] for c in body["conflicts"]} == {"shared-properties/Gone", "shared-properties/Both"}
    # an invalid resolution document is refused
    bad = {"shared-properties/New": "source", "shared-properties/Gone": "target",
           "shared-properties/Both": {"api_name": "Both", "type": "nope"}}
    _merge(srv, "cr/tgt", "cr/src", expect=400, resolutions=bad)
    _merge(srv, "cr/tgt", "cr/src", expect=400, resolutions={"shared-properties/New": "mine"})
    good = {"shared-properties/New": "source", "shared-properties/Gone": "source",
            "shared-properties/Both": {"api_name": "Both", "type": "string", "description": "agreed"}}
    out = _merge(srv, "cr/tgt", "cr/src", resolutions=good)
    assert out["status"] == "merged"
    g = lambda n: srv.get(_url("cr/tgt", "shared-properties", n), headers=_h(srv))  # noqa: E731
    assert g("New").json()["type"] == "string"
    assert g("Gone").status == 404
    assert g("Both").json()["description"] == "agreed"
    # and "target" keeps the target's side
    _branch(srv, "cr/src2", "cr/base")
    _put(srv, "cr/src2", "shared-properties", "Both", {"api_name": "Both", "type": "string", "description": "again"})
    out = _merge(srv, "cr/tgt", "cr/src2", resolutions={"shared-properties/Both": "target"})
    assert g("Both").json()["description"] == "agreed"


def test_merge_result_violating_integrity(ctx):
    srv = ctx.server
    _branch(srv, "iv/base")
    _create(srv, "iv/base", "object-types", PERSON)
    _create(srv, "iv/base", "object-types", {"api_name": "Team", "properties": [
        {"api_name": "id", "type": "string", "required": True}], "primary_key": "id"})
    _branch(srv, "iv/a", "iv/base")
    _branch(srv, "iv/b", "iv/base")
    _delete(srv, "iv/a", "object-types", "Team")  # valid on its own
    _create(srv, "iv/b", "link-types", {"api_name": "MemberOf", "from": "Person", "to": "Team",
                                        "cardinality": "many_to_one"})  # valid on its own
    _merge(srv, "iv/base", "iv/a")
    body = _merge(srv, "iv/base", "iv/b", expect=409)
    assert body["code"] == "integrity_violation", body
    assert any(e["resource"] == "link-types/MemberOf" and e["code"] == "unresolved_reference" for e in body["errors"])


def test_criss_cross_merge_base_is_deterministic(ctx):
    srv = ctx.server
    _branch(srv, "cc/t")
    _create(srv, "cc/t", "shared-properties", {"api_name": "Root", "type": "string"})
    _branch(srv, "cc/s", "cc/t")
    _create(srv, "cc/t", "shared-properties", {"api_name": "T1", "type": "string"})
    _create(srv, "cc/s", "shared-properties", {"api_name": "S1", "type": "string"})
    t_before, s_before = _head(srv, "cc/t"), _head(srv, "cc/s")
    # criss-cross: each side merges the other's pre-merge head (by commit id)
    m1 = _merge(srv, "cc/t", s_before)["commit"]
    m2 = _merge(srv, "cc/s", t_before)["commit"]
    _create(srv, "cc/t", "shared-properties", {"api_name": "T2", "type": "string"})
    _create(srv, "cc/s", "shared-properties", {"api_name": "S2", "type": "string"})
    # both pre-merge heads are now lowest common ancestors of the two heads
    # (neither descends from the other); the rule picks the highest
    # generation, then the smallest id
    assert srv.get(f"/api/v1/commits/{m1}", headers=_h(srv)).json()["parents"] == [t_before, s_before]
    assert srv.get(f"/api/v1/commits/{m2}", headers=_h(srv)).json()["parents"] == [s_before, t_before]
    gt = srv.get(f"/api/v1/commits/{t_before}", headers=_h(srv)).json()["generation"]
    gs = srv.get(f"/api/v1/commits/{s_before}", headers=_h(srv)).json()["generation"]
    expected = sorted([(-gt, t_before), (-gs, s_before)])[0][1]
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv),
                    json_body={"source": "cc/s", "target": "cc/t", "title": "criss-cross"})
    assert r.status == 201, r
    view1 = r.json()
    view2 = srv.get(f"/api/v1/proposals/{view1['id']}", headers=_h(srv)).json()
    assert view1["merge_base"] == view2["merge_base"] == expected
    out = _merge(srv, "cc/t", "cc/s")
    assert out["status"] == "merged" and out["merge_base"] == expected
    names = [x["api_name"] for x in srv.get(_url("cc/t", "shared-properties"), headers=_h(srv)).json()["items"]]
    assert names == ["Root", "S1", "S2", "T1", "T2"]


def test_merge_base_far_below_both_heads(ctx):
    """Both lines diverged further than the merge-base walk's first
    generation window (64): the walk widens until it finds the fork point,
    and the merge takes both sides' changes."""
    srv = ctx.server
    _branch(srv, "far/target")
    fork = _create(srv, "far/target", "object-types", PERSON).header("X-Commit")
    _branch(srv, "far/source", "far/target")
    for i in range(150):
        _create(srv, "far/target", "shared-properties", {"api_name": f"T{i}", "type": "string"})
    for i in range(70):
        _create(srv, "far/source", "shared-properties", {"api_name": f"S{i}", "type": "string"})
    out = _merge(srv, "far/target", "far/source")
    assert out["status"] == "merged" and out["merge_base"] == fork, (out.get("merge_base"), fork)
    r = srv.get(_url("far/target", "shared-properties") + "?limit=500", headers=_h(srv))
    assert r.status == 200 and len(r.json()["items"]) == 220, len(r.json()["items"])
    # and from the other side: the merge commit has the source's head as a
    # parent, so the base of a merge back is the source's head itself
    out = _merge(srv, "far/source", "far/target")
    assert out["status"] == "fast_forward", out


def test_protected_main_only_by_approved_proposal(ctx):
    srv = ctx.server
    _branch(srv, "feature/ppl", "main")
    _create(srv, "feature/ppl", "object-types", dict(PERSON, api_name="Customer"), sub="author")
    # direct merge into main is refused
    r = srv.request("POST", "/api/v1/branches/main/merge", headers=_h(srv, roles=("admin",)),
                    json_body={"source": "feature/ppl"})
    assert r.status == 403 and r.json()["code"] == "protected_branch", r
    # a proposal: created by the author (a developer)
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv, sub="author"),
                    json_body={"source": "feature/ppl", "target": "main", "title": "Add Person",
                               "description": "First model", "issue_ids": ["OMS-42"]})
    assert r.status == 201, r
    p = r.json()
    pid = p["id"]
    assert p["state"] == "open" and p["required_approvals"] == 1 and p["breaking"] is False
    assert [c["resource"] for c in p["changes"]] == ["object-types/Customer"] and p["conflicts"] == []
    rv = lambda sub: _h(srv, sub=sub, roles=("reviewer",))  # noqa: E731
    # merging without approval is refused
    r = srv.request("POST", f"/api/v1/proposals/{pid}/merge", headers=rv("rita"), json_body={})
    assert r.status == 409 and r.json()["code"] == "approvals_required", r
    # self-approval is refused, even for an author who is also a reviewer
    r = srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=_h(srv, sub="author", roles=("developer", "reviewer")))
    assert r.status == 403 and r.json()["code"] == "self_approval", r
    # developers cannot approve at all
    r = srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=_h(srv, sub="other"))
    assert r.status == 403 and r.json()["missing_permission"] == "proposal:review"
    r = srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=rv("rita"))
    assert r.status == 200 and r.json()["state"] == "approved", r
    # a new commit on the source resets approvals
    _create(srv, "feature/ppl", "shared-properties", {"api_name": "Late", "type": "string"}, sub="author")
    p = srv.get(f"/api/v1/proposals/{pid}", headers=_h(srv)).json()
    assert p["state"] == "open" and p["approvals"] == []
    r = srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=rv("rita"))
    assert r.json()["state"] == "approved"
    r = srv.request("POST", f"/api/v1/proposals/{pid}/merge", headers=rv("rita"), json_body={})
    assert r.status == 200, r
    merged = r.json()
    assert merged["state"] == "merged" and merged["merged_commit"] == _head(srv, "main")
    assert srv.get(_url("main", "object-types", "Customer"), headers=_h(srv)).status == 200
    ev = srv.query(f"SELECT action FROM audit_events WHERE commit_id = '{merged['merged_commit']}'")
    assert ("proposal.merge",) in [tuple(e) for e in ev]
    assert len(srv.audit_events("action = 'proposal.approve'")) >= 2
    # a merged proposal is final
    r = srv.request("POST", f"/api/v1/proposals/{pid}/close", headers=_h(srv, sub="author"))
    assert r.status == 409 and r.json()["code"] == "invalid_state"


def test_breaking_change_needs_two_approvals(ctx):
    srv = ctx.server
    r = srv.request("PUT", "/api/v1/branches/main/settings", headers=_h(srv, roles=("admin",)),
                    json_body={"required_approvals": 1, "breaking_change_approvals": 2})
    assert r.status == 200 and r.json()["breaking_change_approvals"] == 2, r
    assert srv.request("PUT", "/api/v1/branches/main/settings", headers=_h(srv),
                       json_body={"protected": False}).status == 403
    # get an active Person onto main first
    _branch(srv, "feature/bc1", "main")
    _create(srv, "feature/bc1", "object-types", PERSON)
    pid = srv.request("POST", "/api/v1/proposals", headers=_h(srv),
                      json_body={"source": "feature/bc1", "target": "main", "title": "base"}).json()["id"]
    srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=_h(srv, sub="r1", roles=("reviewer",)))
    assert srv.request("POST", f"/api/v1/proposals/{pid}/merge", headers=_h(srv, sub="r1", roles=("reviewer",)),
                       json_body={}).status == 200
    # a breaking change: making a property required
    _branch(srv, "feature/bc2", "main")
    _put(srv, "feature/bc2", "object-types", "Person", _with_props(name={"required": True}))
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv),
                    json_body={"source": "feature/bc2", "target": "main", "title": "require name", "draft": True})
    p = r.json()
    assert p["state"] == "draft" and p["breaking"] is True and p["required_approvals"] == 2
    # drafts cannot be approved; only the author opens them
    assert srv.request("POST", f"/api/v1/proposals/{p['id']}/approve", headers=_h(srv, sub="r1", roles=("reviewer",))).status == 409
    assert srv.request("POST", f"/api/v1/proposals/{p['id']}/open", headers=_h(srv, sub="someone")).status == 403
    assert srv.request("POST", f"/api/v1/proposals/{p['id']}/open", headers=_h(srv)).json()["state"] == "open"
    srv.request("POST", f"/api/v1/proposals/{p['id']}/approve", headers=_h(srv, sub="r1", roles=("reviewer",)))
    r = srv.request("POST", f"/api/v1/proposals/{p['id']}/merge", headers=_h(srv, sub="r1", roles=("reviewer",)), json_body={})
    assert r.status == 409 and r.json()["approvals"] == 1 and r.json()["required_approvals"] == 2, r
    srv.request("POST", f"/api/v1/proposals/{p['id']}/approve", headers=_h(srv, sub="r2", roles=("reviewer",)))
    r = srv.request("POST", f"/api/v1/proposals/{p['id']}/merge", headers=_h(srv, sub="r2", roles=("reviewer",)), json_body={})
    assert r.status == 200 and r.json()["state"] == "merged", r
    # reject closes a proposal
    _branch(srv, "feature/bc3", "main")
    _create(srv, "feature/bc3", "shared-properties", {"api_name": "Nope", "type": "string"})
    pid = srv.request("POST", "/api/v1/proposals", headers=_h(srv),
                      json_body={"source": "feature/bc3", "target": "main", "title": "no"}).json()["id"]
    r = srv.request("POST", f"/api/v1/proposals/{pid}/reject", headers=_h(srv, sub="r1", roles=("reviewer",)))
    assert r.json()["state"] == "closed" and r.json()["closed_reason"] == "rejected"
    lst = srv.get("/api/v1/proposals?state=closed", headers=_h(srv)).json()["items"]
    assert pid in [x["id"] for x in lst]


def test_revert(ctx):
    srv = ctx.server
    _branch(srv, "rv/b")
    c1 = _create(srv, "rv/b", "object-types", PERSON).header("X-Commit")
    c2 = _put(srv, "rv/b", "object-types", "Person", _with_props(name={"description": "v2"})).header("X-Commit")
    r = srv.request("POST", "/api/v1/branches/rv%2Fb/revert", headers=_h(srv), json_body={"commit": c2})
    assert r.status == 201, r
    rc = r.json()["commit"]
    person = srv.get(_url("rv/b", "object-types", "Person"), headers=_h(srv)).json()
    assert "description" not in [k for p in person["properties"] if p["api_name"] == "name" for k, v in p.items() if v == "v2"]
    detail = srv.get(f"/api/v1/commits/{rc}", headers=_h(srv)).json()
    assert detail["message"].startswith("Revert ") and detail["parents"] == [c2]
    # a commit whose resource changed again since no longer applies
    c4 = _put(srv, "rv/b", "object-types", "Person", _with_props(name={"description": "v4"})).header("X-Commit")
    _put(srv, "rv/b", "object-types", "Person", _with_props(name={"description": "v5"}))
    r = srv.request("POST", "/api/v1/branches/rv%2Fb/revert", headers=_h(srv), json_body={"commit": c4})
    assert r.status == 409 and r.json()["code"] == "revert_conflict", r
    assert r.json()["conflicts"][0]["resource"] == "object-types/Person"
    assert c1
    _branch(srv, "rv/c")
    c3 = _create(srv, "rv/c", "shared-properties", {"api_name": "Tmp", "type": "string"}).header("X-Commit")
    assert srv.request("POST", "/api/v1/branches/rv%2Fc/revert", headers=_h(srv), json_body={"commit": c3}).status == 201
    assert srv.get(_url("rv/c", "shared-properties", "Tmp"), headers=_h(srv)).status == 404
    assert srv.request("POST", "/api/v1/branches/rv%2Fc/revert", headers=_h(srv), json_body={"commit": "0" * 64}).status == 404
    assert len(srv.audit_events("action = 'branch.revert' AND outcome = 'success'")) >= 2
    fails = srv.audit_events("action = 'branch.revert' AND outcome = 'failure' AND http_status IN (404, 409)")
    assert len(fails) == 2, fails
