"""Compatibility policy per branch (SPEC §4, issue #20): warn, block, none,
transitive; every breaking flag with its rule code and a readable reason in
diff, validate and proposals."""

from harness import quote

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"

PERSON = {"api_name": "Person", "status": "active",
          "properties": [{"api_name": "id", "type": "string", "required": True},
                         {"api_name": "name", "type": "string"},
                         {"api_name": "age", "type": "integer"}], "primary_key": "id"}


def _h(srv, sub="dev", roles=("developer",), issue="OMS-200", **extra):
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = issue
    h.update(extra)
    return h


def _branch(srv, name, frm=ROOT):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": frm})
    assert r.status == 201, r
    return r.json()["head"]


def _settings(srv, branch, **body):
    r = srv.request("PUT", f"/api/v1/branches/{quote(branch)}/settings", headers=_h(srv, roles=("admin",)),
                    json_body=body)
    assert r.status == 200, r
    return r.json()


def _url(branch, name=None, kind="object-types"):
    return f"/api/v1/schemas/{quote(branch)}/{kind}" + (f"/{name}" if name else "")


def _person(**changes):
    props = []
    for p in PERSON["properties"]:
        q = dict(p)
        q.update(changes.get(p["api_name"], {}))
        props.append(q)
    return dict(PERSON, properties=props)


def _put(srv, branch, doc, expect=200):
    cur = srv.get(_url(branch, doc["api_name"]), headers=_h(srv))
    assert cur.status == 200, cur
    r = srv.request("PUT", _url(branch, doc["api_name"]), headers=_h(srv, **{"If-Match": cur.header("ETag")}),
                    json_body=doc)
    assert r.status == expect, r
    return r


def _create(srv, branch, doc):
    r = srv.request("POST", _url(branch), headers=_h(srv), json_body=doc)
    assert r.status == 201, r
    return r.header("X-Commit")


def test_block_refuses_breaking_and_lets_non_breaking_through(ctx):
    srv = ctx.server
    _branch(srv, "cp/b1")
    _create(srv, "cp/b1", PERSON)
    br = _settings(srv, "cp/b1", compatibility="block")
    assert br["compatibility"] == "block" and br["transitive"] is False, br
    head = srv.get("/api/v1/branches/cp%2Fb1", headers=_h(srv)).json()["head"]
    # breaking: a narrowing type change
    r = _put(srv, "cp/b1", _person(age={"type": "string"}), expect=422)
    body = r.json()
    assert body["code"] == "breaking_change_blocked" and body["compatibility"] == "block", body
    (e,) = body["breaking"]
    assert e["resource"] == "object-types/Person" and e["path"] == "/properties/age/type", e
    assert e["rule"] == "type_changed" and "/properties/age/type" in e["reason"] and "integer" in e["reason"], e
    assert srv.get("/api/v1/branches/cp%2Fb1", headers=_h(srv)).json()["head"] == head  # nothing written
    # deleting the resource is breaking too
    cur = srv.get(_url("cp/b1", "Person"), headers=_h(srv))
    r = srv.request("DELETE", _url("cp/b1", "Person"), headers=_h(srv, **{"If-Match": cur.header("ETag")}))
    assert r.status == 422 and r.json()["breaking"][0]["rule"] == "resource_removed", r
    # non-breaking: a widening and a new optional property
    _put(srv, "cp/b1", _person(age={"type": "long"}))
    doc = _person(age={"type": "long"})
    doc["properties"].append({"api_name": "nick", "type": "string"})
    _put(srv, "cp/b1", doc)
    # the refusal is audited as a failure with the status the client received
    ev = srv.audit_events("action = 'object_type.update' AND http_status = 422")
    assert ev and ev[-1]["outcome"] == "failure", ev
    # warn (the default) lets the breaking change through, flagged
    _settings(srv, "cp/b1", compatibility="warn")
    _put(srv, "cp/b1", _person(age={"type": "string"}))
    assert srv.request("PUT", "/api/v1/branches/cp%2Fb1/settings", headers=_h(srv, roles=("admin",)),
                       json_body={"compatibility": "strict"}).status == 400
    assert srv.request("PUT", "/api/v1/branches/cp%2Fb1/settings", headers=_h(srv, roles=("admin",)),
                       json_body={"transitive": "yes"}).status == 400


def test_block_applies_to_merges_and_proposals(ctx):
    srv = ctx.server
    _branch(srv, "cp/t2")
    _create(srv, "cp/t2", PERSON)
    _branch(srv, "cp/s2", "cp/t2")
    _put(srv, "cp/s2", _person(name={"required": True}))
    _settings(srv, "cp/t2", compatibility="block")
    # a fast-forward merge of a breaking change is refused
    r = srv.request("POST", "/api/v1/branches/cp%2Ft2/merge", headers=_h(srv), json_body={"source": "cp/s2"})
    assert r.status == 422 and r.json()["code"] == "breaking_change_blocked", r
    assert r.json()["breaking"][0]["rule"] == "made_required", r
    # a proposal shows the policy and its breaking changes with rules, and cannot merge
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv, sub="author", issue=None),
                    json_body={"source": "cp/s2", "target": "cp/t2", "title": "require name"})
    assert r.status == 201, r
    p = r.json()
    assert p["compatibility"] == "block" and p["blocked_by_policy"] is True and p["breaking"] is True, p
    (e,) = p["breaking_changes"]
    assert e["rule"] == "made_required" and e["path"] == "/properties/name/required" and e["reason"], e
    (field,) = [f for c in p["changes"] for f in c["fields"] if f["breaking"]]
    assert field["rule"] == "made_required" and field["reason"] == e["reason"], field
    for sub in ("r1", "r2"):
        assert srv.request("POST", f"/api/v1/proposals/{p['id']}/approve",
                           headers=_h(srv, sub=sub, roles=("reviewer",))).status == 200
    r = srv.request("POST", f"/api/v1/proposals/{p['id']}/merge", headers=_h(srv, sub="r1", roles=("reviewer",)),
                    json_body={})
    assert r.status == 422 and r.json()["code"] == "breaking_change_blocked", r
    # a non-breaking proposal merges
    _branch(srv, "cp/s2b", "cp/t2")
    _create(srv, "cp/s2b", dict(PERSON, api_name="Team"))
    r = srv.request("POST", "/api/v1/branches/cp%2Ft2/merge", headers=_h(srv), json_body={"source": "cp/s2b"})
    assert r.status == 200, r


def test_none_needs_only_ordinary_approvals(ctx):
    srv = ctx.server
    _branch(srv, "cp/t3")
    _create(srv, "cp/t3", PERSON)
    _branch(srv, "cp/s3", "cp/t3")
    _put(srv, "cp/s3", _person(age={"type": "string"}))
    _settings(srv, "cp/t3", compatibility="none", required_approvals=1, breaking_change_approvals=2)
    p = srv.request("POST", "/api/v1/proposals", headers=_h(srv, sub="author", issue=None),
                    json_body={"source": "cp/s3", "target": "cp/t3", "title": "t"}).json()
    assert p["breaking"] is True and p["required_approvals"] == 1 and p["compatibility"] == "none", p
    assert srv.request("POST", f"/api/v1/proposals/{p['id']}/approve",
                       headers=_h(srv, sub="r1", roles=("reviewer",))).status == 200
    r = srv.request("POST", f"/api/v1/proposals/{p['id']}/merge", headers=_h(srv, sub="r1", roles=("reviewer",)),
                    json_body={})
    assert r.status == 200, r


def _tag(srv, name, commit):
    r = srv.request("POST", "/api/v1/tags", headers=_h(srv, issue=None),
                    json_body={"name": name, "commit": commit, "message": "release"})
    assert r.status == 201, r


def test_transitive_checks_against_an_older_tag(ctx):
    srv = ctx.server
    _branch(srv, "cp/t4")
    _tag(srv, "cp-v1", _create(srv, "cp/t4", PERSON))
    # a tag on another line (not an ancestor of cp/t4's head) is no release of it:
    # the same Person with one more property, which cp/t4 never has
    _branch(srv, "cp/t4-side", "cp/t4")
    side = _person()
    side["properties"].append({"api_name": "extra", "type": "string"})
    _tag(srv, "cp-side", _put(srv, "cp/t4-side", side).header("X-Commit"))
    _settings(srv, "cp/t4", compatibility="block", transitive=True)
    # a compatible step (status only), tagged v2
    _tag(srv, "cp-v2", _put(srv, "cp/t4", dict(PERSON, status="experimental")).header("X-Commit"))
    head = srv.get("/api/v1/branches/cp%2Ft4", headers=_h(srv)).json()["head"]
    # compatible with v2 and the head (an experimental resource), breaking against v1
    r = _put(srv, "cp/t4", dict(_person(age={"type": "string"}), status="experimental"), expect=422)
    body = r.json()
    assert body["code"] == "breaking_change_blocked", body
    (e,) = body["breaking"]
    assert e["rule"] == "type_changed" and e["path"] == "/properties/age/type", e
    assert e["against"] == "cp-v1" and "cp-v1" in e["reason"] and "/properties/age/type" in e["reason"], e
    assert "cp-v1" in body["detail"], body
    assert srv.get("/api/v1/branches/cp%2Ft4", headers=_h(srv)).json()["head"] == head  # nothing written
    # the same change arriving by a merge is refused the same way
    _branch(srv, "cp/t4-src", "cp/t4")
    _put(srv, "cp/t4-src", dict(_person(age={"type": "string"}), status="experimental"))
    r = srv.request("POST", "/api/v1/branches/cp%2Ft4/merge", headers=_h(srv), json_body={"source": "cp/t4-src"})
    assert r.status == 422 and r.json()["code"] == "breaking_change_blocked", r
    (e,) = r.json()["breaking"]
    assert e["against"] == "cp-v1" and e["rule"] == "type_changed", e
    # a change fine against the head and every tag passes; the side tag is not consulted
    doc = dict(_person(), status="experimental")
    doc["properties"].append({"api_name": "nick", "type": "string"})
    _put(srv, "cp/t4", doc)
    # a resource no tag has is compared with the head only
    _create(srv, "cp/t4", dict(PERSON, api_name="Team", status="experimental"))
    _put(srv, "cp/t4", dict(_person(age={"type": "string"}), api_name="Team", status="experimental"))
    # without transitive the change refused above passes
    _settings(srv, "cp/t4", transitive=False)
    doc = dict(_person(age={"type": "string"}), status="experimental")
    doc["properties"].append({"api_name": "nick", "type": "string"})
    _put(srv, "cp/t4", doc)


def test_transitive_compares_with_tags_not_the_branch_start(ctx):
    srv = ctx.server
    _branch(srv, "cp/rel6")
    _create(srv, "cp/rel6", PERSON)
    _branch(srv, "cp/t6", "cp/rel6")  # its start is a release nobody tagged
    _settings(srv, "cp/t6", compatibility="block", transitive=True)
    _put(srv, "cp/t6", dict(PERSON, status="experimental"))
    # breaking against the untagged start, not against the head: no tag pins it
    _put(srv, "cp/t6", dict(_person(age={"type": "string"}), status="experimental"))
    # against the head the ordinary block rule still holds
    _settings(srv, "cp/rel6", compatibility="block", transitive=True)
    r = _put(srv, "cp/rel6", _person(age={"type": "string"}), expect=422)
    (e,) = r.json()["breaking"]
    assert "against" not in e and e["rule"] == "type_changed", e


def test_breaking_entries_carry_rule_and_reason(ctx):
    srv = ctx.server
    _branch(srv, "cp/d5")
    c1 = _create(srv, "cp/d5", PERSON)
    doc = _person(age={"type": "string"}, name={"required": True})
    doc["properties"] = [p for p in doc["properties"] if p["api_name"] != "id"] + \
        [{"api_name": "id", "type": "string", "required": True}, {"api_name": "ssn", "type": "string",
                                                                   "required": True}]
    # validate (dry run)
    r = srv.request("POST", "/api/v1/schemas/cp%2Fd5/validate", headers=_h(srv),
                    json_body={"operations": [{"op": "replace", "kind": "object-types", "api_name": "Person",
                                               "document": doc}]})
    assert r.status == 200 and r.json()["breaking"] is True, r
    fields = {f["path"]: f for c in r.json()["changes"] for f in c["fields"]}
    assert fields["/properties/age/type"]["rule"] == "type_changed"
    assert fields["/properties/name/required"]["rule"] == "made_required"
    assert fields["/properties/ssn"]["rule"] == "required_item_added"
    for f in fields.values():
        if f["breaking"]:
            assert isinstance(f["reason"], str) and f["reason"].startswith(f["path"]), f
        else:
            assert "rule" not in f and "reason" not in f, f
    # diff between commits
    c2 = _put(srv, "cp/d5", doc).header("X-Commit")
    d = srv.get(f"/api/v1/diff?from={c1}&to={c2}", headers=_h(srv)).json()
    breaking = [f for c in d["changes"] for f in c["fields"] if f["breaking"]]
    assert {f["rule"] for f in breaking} == {"type_changed", "made_required", "required_item_added"}, breaking
    assert all(f["reason"] for f in breaking)
    # removal of a property
    doc2 = dict(doc, properties=[p for p in doc["properties"] if p["api_name"] != "ssn"])
    c3 = _put(srv, "cp/d5", doc2).header("X-Commit")
    d = srv.get(f"/api/v1/diff?from={c2}&to={c3}", headers=_h(srv)).json()
    (f,) = [f for c in d["changes"] for f in c["fields"]]
    assert f["rule"] == "item_removed" and "/properties/ssn" in f["reason"], f
