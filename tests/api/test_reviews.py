"""Reviews (SPEC §4, issue #20): verdicts with comments, request-changes that
blocks merging until the same reviewer approves or withdraws, comments on a
proposal, a resource or a field, requested reviewers and the "needs my
review" filter, issue keys inherited from the source commits, and audit
records with the status the client received."""

from harness import quote

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


def _h(srv, sub="dev", roles=("developer",), issue="OMS-100"):
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = issue
    return h


def _rv(srv, sub):
    return _h(srv, sub=sub, roles=("reviewer",))


def _branch(srv, name, frm=ROOT):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": frm})
    assert r.status == 201, r


def _create(srv, branch, api_name, issue="OMS-100"):
    r = srv.request("POST", f"/api/v1/schemas/{quote(branch)}/shared-properties", headers=_h(srv, issue=issue),
                    json_body={"api_name": api_name, "type": "string"})
    assert r.status == 201, r
    return r.header("X-Commit")


def _proposal(srv, source, target, **extra):
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv, sub="author", issue=None),
                    json_body={"source": source, "target": target, "title": "t", **extra})
    assert r.status == 201, r
    return r.json()


def _post(srv, pid, action, headers, body=None):
    return srv.request("POST", f"/api/v1/proposals/{pid}/{action}", headers=headers, json_body=body)


def test_request_changes_blocks_merge_until_approved(ctx):
    srv = ctx.server
    _branch(srv, "rvw/t1")
    _branch(srv, "rvw/s1")
    _create(srv, "rvw/s1", "A1")
    pid = _proposal(srv, "rvw/s1", "rvw/t1")["id"]
    r = _post(srv, pid, "request-changes", _rv(srv, "rita"), {"comment": "name the key"})
    assert r.status == 200, r
    p = r.json()
    assert [c["reviewer"] for c in p["changes_requested"]] == ["rita"], p
    assert p["changes_requested"][0]["comment"] == "name the key" and p["mergeable"] is False
    # another reviewer's approval is enough by count, but the request blocks
    assert _post(srv, pid, "approve", _rv(srv, "rob"), {"comment": "fine by me"}).status == 200
    r = _post(srv, pid, "merge", _rv(srv, "rob"), {})
    assert r.status == 409 and r.json()["code"] == "changes_requested", r
    assert r.json()["changes_requested"][0]["reviewer"] == "rita", r
    # the author cannot ask for changes on their own proposal
    r = _post(srv, pid, "request-changes", _h(srv, sub="author", roles=("developer", "reviewer")))
    assert r.status == 403 and r.json()["code"] == "self_approval", r
    # the same reviewer approves a later head: the block lifts
    _create(srv, "rvw/s1", "A2")
    assert _post(srv, pid, "approve", _rv(srv, "rita")).status == 200
    r = _post(srv, pid, "merge", _rv(srv, "rob"), {})
    assert r.status == 200 and r.json()["state"] == "merged", r


def test_request_changes_withdrawn(ctx):
    srv = ctx.server
    _branch(srv, "rvw/t2")
    _branch(srv, "rvw/s2")
    _create(srv, "rvw/s2", "B1")
    pid = _proposal(srv, "rvw/s2", "rvw/t2")["id"]
    assert _post(srv, pid, "request-changes", _rv(srv, "rita")).status == 200
    assert _post(srv, pid, "approve", _rv(srv, "rob")).status == 200
    assert _post(srv, pid, "merge", _rv(srv, "rob"), {}).json()["code"] == "changes_requested"
    r = _post(srv, pid, "dismiss", _rv(srv, "rita"), {"comment": "withdrawn"})
    assert r.status == 200 and r.json()["changes_requested"] == [] and r.json()["state"] == "approved", r
    assert _post(srv, pid, "merge", _rv(srv, "rob"), {}).status == 200


def test_comments_in_order_with_pointer(ctx):
    srv = ctx.server
    _branch(srv, "rvw/t3")
    _branch(srv, "rvw/s3")
    _create(srv, "rvw/s3", "C1")
    pid = _proposal(srv, "rvw/s3", "rvw/t3")["id"]
    viewer = _h(srv, sub="vera", roles=("viewer",), issue=None)
    r = _post(srv, pid, "comments", viewer, {"body": "first"})
    assert r.status == 201 and r.json()["seq"] == 1 and r.json()["resource"] is None, r
    r = _post(srv, pid, "comments", viewer,
              {"body": "why string?", "resource": "shared-properties/C1", "field": "/type"})
    assert r.status == 201 and r.json()["pointer"] == "/type", r
    assert _post(srv, pid, "approve", _rv(srv, "rita"), {"comment": "ok now"}).status == 200
    r = _post(srv, pid, "comments", viewer, {"body": "on a resource", "resource": "shared-properties/C1"})
    assert r.status == 201, r
    # malformed comments are refused
    assert _post(srv, pid, "comments", viewer, {"body": ""}).status == 400
    assert _post(srv, pid, "comments", viewer, {"body": "x", "field": "/type"}).status == 400
    assert _post(srv, pid, "comments", viewer, {"body": "x", "resource": "nope/C1"}).status == 400
    assert _post(srv, pid, "comments", viewer, {"body": "x", "pointer": "/type"}).status == 400
    assert _post(srv, pid, "approve", _rv(srv, "rita"), {"note": "x"}).status == 400
    items = srv.get(f"/api/v1/proposals/{pid}/comments", headers=viewer).json()["items"]
    assert [(c["seq"], c["body"], c["resource"], c["pointer"], c["verdict"]) for c in items] == [
        (1, "first", None, None, None),
        (2, "why string?", "shared-properties/C1", "/type", None),
        (3, "ok now", None, None, "approved"),
        (4, "on a resource", "shared-properties/C1", None, None)], items
    assert items[0]["author"] == "vera" and items[2]["author"] == "rita"
    page = srv.get(f"/api/v1/proposals/{pid}/comments?limit=2", headers=viewer).json()
    assert [c["seq"] for c in page["items"]] == [1, 2] and page["next_cursor"]
    rest = srv.get(f"/api/v1/proposals/{pid}/comments?limit=2&cursor={page['next_cursor']}", headers=viewer).json()
    assert [c["seq"] for c in rest["items"]] == [3, 4], rest
    assert len(srv.audit_events("action = 'proposal.comment' AND outcome = 'success' AND http_status = 201")) >= 3


def test_requested_reviewers_and_needs_my_review(ctx):
    srv = ctx.server
    _branch(srv, "rvw/t4")
    _branch(srv, "rvw/s4")
    _create(srv, "rvw/s4", "D1")
    p = _proposal(srv, "rvw/s4", "rvw/t4", reviewers=["nina"])
    pid = p["id"]
    assert p["requested_reviewers"] == ["nina"], p
    r = _post(srv, pid, "reviewers", _h(srv, sub="author", issue=None), {"reviewers": ["omar", "nina"]})
    assert r.status == 200 and r.json()["requested_reviewers"] == ["nina", "omar"], r
    assert _post(srv, pid, "reviewers", _h(srv, sub="author"), {"reviewers": [1]}).status == 400

    def mine(sub):
        r = srv.get("/api/v1/proposals?needs_review=true", headers=_rv(srv, sub))
        assert r.status == 200, r
        return [x["id"] for x in r.json()["items"]]
    assert pid in mine("nina") and pid in mine("omar") and pid not in mine("paul")
    assert _post(srv, pid, "approve", _rv(srv, "nina")).status == 200
    assert pid not in mine("nina") and pid in mine("omar")
    # a new commit on the source asks for the review again
    _create(srv, "rvw/s4", "D2")
    assert pid in mine("nina")
    assert srv.get("/api/v1/proposals?needs_review=maybe", headers=_rv(srv, "nina")).status == 400


def test_issue_keys_inherited_from_source_commits(ctx):
    srv = ctx.server
    _branch(srv, "rvw/t5")
    _branch(srv, "rvw/s5")
    r = srv.request("PUT", "/api/v1/branches/rvw%2Ft5/settings", headers=_h(srv, roles=("admin",)),
                    json_body={"issue_required": True})
    assert r.status == 200, r
    _create(srv, "rvw/t5", "E0", issue="OMS-700")  # the target moves: a real merge commit
    _create(srv, "rvw/s5", "E1", issue="OMS-701")
    _create(srv, "rvw/s5", "E2", issue="OMS-702")
    p = _proposal(srv, "rvw/s5", "rvw/t5")
    assert p["own_issue_keys"] == [] and sorted(p["issue_keys"]) == ["OMS-701", "OMS-702"], p
    # the keys follow the source's head: a new commit after a view counts
    # (the heads' pair is a new one), and reading again changes nothing
    _create(srv, "rvw/s5", "E2b", issue="OMS-703")
    for _ in range(2):
        v = srv.get(f"/api/v1/proposals/{p['id']}", headers=_h(srv))
        assert v.status == 200 and sorted(v.json()["issue_keys"]) == ["OMS-701", "OMS-702", "OMS-703"], v
    assert _post(srv, p["id"], "approve", _rv(srv, "rita")).status == 200
    # no key in the merge request: the source commits' keys satisfy the rule
    r = _post(srv, p["id"], "merge", _h(srv, sub="rita", roles=("reviewer",), issue=None), {})
    assert r.status == 200, r
    c = srv.get(f"/api/v1/commits/{r.header('X-Commit')}", headers=_h(srv)).json()
    assert {"OMS-701", "OMS-702", "OMS-703"} <= set(c["issue_keys"]), c
    # a proposal without keys anywhere still needs one
    _branch(srv, "rvw/s5b", r.header("X-Commit"))
    r = srv.request("PUT", "/api/v1/branches/rvw%2Fs5b/settings", headers=_h(srv, roles=("admin",)),
                    json_body={"issue_required": False})
    assert r.status == 200, r
    _create(srv, "rvw/s5b", "E3", issue=None)
    p = _proposal(srv, "rvw/s5b", "rvw/t5")
    assert p["issue_keys"] == [], p
    assert _post(srv, p["id"], "approve", _rv(srv, "rita")).status == 200
    r = _post(srv, p["id"], "merge", _h(srv, sub="rita", roles=("reviewer",), issue=None), {})
    assert r.status == 422 and r.json()["code"] == "issue_required", r


def test_issue_keys_of_an_old_line_merged_into_the_source(ctx):
    """The source merged an old line (commits far below the target's head,
    not on the target): its keys count, the target's own never do. The walk
    is bounded by generation and must widen to reach the old commit."""
    srv = ctx.server
    _branch(srv, "rvw/old7")
    _create(srv, "rvw/old7", "OldLine", issue="OMS-770")
    _branch(srv, "rvw/t7")
    for i in range(100):
        _create(srv, "rvw/t7", f"T7x{i}", issue="OMS-771")
    _branch(srv, "rvw/s7", "rvw/t7")
    _create(srv, "rvw/s7", "S7", issue="OMS-772")
    r = srv.request("POST", "/api/v1/branches/rvw%2Fs7/merge", headers=_h(srv, issue="OMS-773"),
                    json_body={"source": "rvw/old7"})
    assert r.status == 200 and r.json()["status"] == "merged", r
    p = _proposal(srv, "rvw/s7", "rvw/t7")
    assert sorted(p["issue_keys"]) == ["OMS-770", "OMS-772", "OMS-773"], p["issue_keys"]


def test_audit_records_status_received(ctx):
    srv = ctx.server
    _branch(srv, "rvw/t6")
    _branch(srv, "rvw/s6")
    _create(srv, "rvw/s6", "F1")
    pid = _proposal(srv, "rvw/s6", "rvw/t6")["id"]
    ev = srv.audit_events(f"action = 'proposal.create' AND resource_id = '{pid}'")
    assert [(e["outcome"], int(e["http_status"])) for e in ev] == [("success", 201)], ev
    r = _post(srv, pid, "approve", _h(srv, sub="author", roles=("developer", "reviewer")))
    assert r.status == 403 and r.json()["code"] == "self_approval", r
    ev = srv.audit_events("action = 'proposal.approve' AND actor_sub = 'author' AND http_status = 403")
    assert ev and all(e["outcome"] == "denied" for e in ev), ev
    r = _post(srv, pid, "request-changes", _rv(srv, "rita"), {"comment": "x"})
    assert r.status == 200
    ev = srv.audit_events(f"action = 'proposal.request_changes' AND resource_id = '{pid}'")
    assert [(e["outcome"], int(e["http_status"])) for e in ev] == [("success", 200)], ev
    r = _post(srv, pid, "merge", _rv(srv, "rob"), {})
    assert r.status == 409
    ev = srv.audit_events("action = 'proposal.merge' AND http_status = 409 AND actor_sub = 'rob'")
    assert ev and ev[-1]["outcome"] == "failure", ev


PERSON = {"api_name": "Person", "status": "active",
          "properties": [{"api_name": "id", "type": "string", "required": True},
                         {"api_name": "name", "type": "string"},
                         {"api_name": "age", "type": "integer"}], "primary_key": "id"}


def _person(**changes):
    props = []
    for p in PERSON["properties"]:
        q = dict(p)
        q.update(changes.get(p["api_name"], {}))
        props.append(q)
    return dict(PERSON, properties=props)


def _put_person(srv, branch, doc):
    u = f"/api/v1/schemas/{quote(branch)}/object-types/Person"
    cur = srv.get(u, headers=_h(srv))
    h = _h(srv)
    h["If-Match"] = cur.header("ETag")
    r = srv.request("PUT", u, headers=h, json_body=doc)
    assert r.status == 200, r


def _merge(srv, target, source, expect, resolutions=None):
    body = {"source": source}
    if resolutions is not None:
        body["resolutions"] = resolutions
    r = srv.request("POST", f"/api/v1/branches/{quote(target)}/merge", headers=_h(srv), json_body=body)
    assert r.status == expect, r
    return r.json()


def _conflicting_pair(srv, prefix):
    _branch(srv, f"{prefix}/base")
    r = srv.request("POST", f"/api/v1/schemas/{quote(prefix + '/base')}/object-types", headers=_h(srv),
                    json_body=PERSON)
    assert r.status == 201, r
    _branch(srv, f"{prefix}/src", f"{prefix}/base")
    _branch(srv, f"{prefix}/tgt", f"{prefix}/base")
    # source: a clean change (name's description) and a conflicting one (age's type)
    _put_person(srv, f"{prefix}/src", _person(name={"description": "from source"}, age={"type": "long"}))
    # target: a clean change (id's description) and the other side of the conflict
    _put_person(srv, f"{prefix}/tgt", _person(id={"description": "from target"}, age={"type": "double"}))


def _props(srv, branch):
    doc = srv.get(f"/api/v1/schemas/{quote(branch)}/object-types/Person", headers=_h(srv)).json()
    return {p["api_name"]: p for p in doc["properties"]}


def test_field_level_resolution_keeps_both_sides_clean_changes(ctx):
    srv = ctx.server
    _conflicting_pair(srv, "fr1")
    body = _merge(srv, "fr1/tgt", "fr1/src", 409)
    (c,) = body["conflicts"]
    assert [f["path"] for f in c["fields"]] == ["/properties/age/type"], c
    # a pointer naming no conflict leaves the conflict standing
    body = _merge(srv, "fr1/tgt", "fr1/src", 409, {"object-types/Person": {"/properties/1/type": "source"}})
    assert body["conflicts"][0]["resource"] == "object-types/Person"
    _merge(srv, "fr1/tgt", "fr1/src", 400, {"object-types/Person": {"/properties/2/type": "mine"}})
    # keep the target's age type (pointer by index, as in issue #20)
    out = _merge(srv, "fr1/tgt", "fr1/src", 200, {"object-types/Person": {"/properties/2/type": "target"}})
    assert out["status"] == "merged", out
    p = _props(srv, "fr1/tgt")
    assert p["age"]["type"] == "double"                      # the target's side of the conflict
    assert p["name"].get("description") == "from source"     # the source's clean change survives
    assert p["id"].get("description") == "from target"       # the target's clean change survives


def test_field_level_resolution_by_name_and_per_resource_side(ctx):
    srv = ctx.server
    _conflicting_pair(srv, "fr2")
    out = _merge(srv, "fr2/tgt", "fr2/src", 200, {"object-types/Person": {"/properties/age/type": "source"}})
    assert out["status"] == "merged", out
    p = _props(srv, "fr2/tgt")
    assert p["age"]["type"] == "long" and p["name"].get("description") == "from source" and \
        p["id"].get("description") == "from target", p
    # a per-resource side settles only the conflicting fields too
    _conflicting_pair(srv, "fr3")
    _merge(srv, "fr3/tgt", "fr3/src", 200, {"object-types/Person": "target"})
    p = _props(srv, "fr3/tgt")
    assert p["age"]["type"] == "double" and p["name"].get("description") == "from source" and \
        p["id"].get("description") == "from target", p
