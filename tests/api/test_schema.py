"""Ontology resources on branches (SPEC §3, §4): validation, integrity,
content-addressed commits, history, diff and optimistic concurrency."""

import json
import random
import threading

from harness import b64url, quote

DEV = ("developer",)
# Branches start from the empty root commit: other modules share the server
# and may have merged things into main.
ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


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
    return r.json()


def _url(branch, kind, name=None):
    u = f"/api/v1/schemas/{quote(branch)}/{kind}"
    return u + (f"/{name}" if name else "")


def _create(srv, branch, kind, doc, expect=201):
    r = srv.request("POST", _url(branch, kind), headers=_h(srv), json_body=doc)
    assert r.status == expect, (doc.get("api_name"), r)
    return r


PERSON = {"api_name": "Person", "display_name": "Person", "description": "A human",
          "properties": [{"api_name": "id", "type": "string", "required": True},
                         {"api_name": "name", "type": "string"},
                         {"api_name": "email", "type": "string", "shared_property": "Email"}],
          "primary_key": "id", "implements": ["Named"]}
COMPANY = {"api_name": "Company", "properties": [{"api_name": "id", "type": "long", "required": True},
                                                 {"api_name": "name", "type": "string"}],
           "primary_key": "id", "implements": ["Named"]}


def _ontology(srv, branch):
    """A small linked ontology built resource by resource."""
    _create(srv, branch, "shared-properties", {"api_name": "Email", "type": "string"})
    _create(srv, branch, "interfaces", {"api_name": "Named", "properties": [{"api_name": "name", "type": "string"}]})
    _create(srv, branch, "object-types", PERSON)
    _create(srv, branch, "object-types", COMPANY)
    _create(srv, branch, "link-types", {"api_name": "WorksAt", "from": "Person", "to": "Company",
                                        "cardinality": "many_to_one"})
    _create(srv, branch, "action-types", {"api_name": "Hire", "parameters": [
        {"api_name": "person", "type": "object_reference", "object_type": "Person", "required": True},
        {"api_name": "company", "type": "object_reference", "object_type": "Company", "required": True}],
        "rules": [{"type": "create_link", "link_type": "WorksAt"}, {"type": "modify_object", "object_type": "Person"}]})
    _create(srv, branch, "function-types", {"api_name": "Headcount", "inputs": [
        {"api_name": "company", "type": "object_reference", "object_type": "Company", "required": True}],
        "output": {"type": "integer"}, "deterministic": True})


def test_build_linked_ontology(ctx):
    srv = ctx.server
    _branch(srv, "feature/build")
    _ontology(srv, "feature/build")
    r = srv.get("/api/v1/schemas/" + quote("feature/build"), headers=_h(srv, roles=("viewer",)))
    assert r.status == 200
    doc = r.json()
    assert [o["api_name"] for o in doc["object-types"]] == ["Company", "Person"]
    assert len(doc["link-types"]) == 1 and len(doc["action-types"]) == 1 and len(doc["function-types"]) == 1
    assert doc["interfaces"][0]["api_name"] == "Named" and doc["shared-properties"][0]["api_name"] == "Email"
    # defaults were filled and meta is served, not stored
    p = srv.get(_url("feature/build", "object-types", "Person"), headers=_h(srv)).json()
    assert p["status"] == "experimental" and p["properties"][1]["required"] is False
    assert p["meta"]["branch"] == "feature/build" and p["meta"]["author"] == "dev"
    lst = srv.get(_url("feature/build", "object-types") + "?limit=1", headers=_h(srv)).json()
    assert [i["api_name"] for i in lst["items"]] == ["Company"] and lst["next_cursor"]
    lst2 = srv.get(_url("feature/build", "object-types") + "?limit=1&cursor=" + lst["next_cursor"], headers=_h(srv)).json()
    assert [i["api_name"] for i in lst2["items"]] == ["Person"] and lst2["next_cursor"] is None
    q = srv.get(_url("feature/build", "object-types") + "?q=human", headers=_h(srv)).json()
    assert [i["api_name"] for i in q["items"]] == ["Person"]


def test_write_headers_and_conditional_requests(ctx):
    srv = ctx.server
    _branch(srv, "feature/etag")
    r = _create(srv, "feature/etag", "shared-properties", {"api_name": "Code", "type": "string"})
    etag, commit = r.header("ETag"), r.header("X-Commit")
    assert etag.startswith('"') and len(etag) == 66 and len(commit) == 64
    assert r.header("Location") == "/api/v1/schemas/feature%2Fetag/shared-properties/Code"
    url = _url("feature/etag", "shared-properties", "Code")
    assert srv.get(url, headers=_h(srv, **{"If-None-Match": etag})).status == 304
    # PUT and DELETE need If-Match
    doc = {"api_name": "Code", "type": "string", "description": "v2"}
    r = srv.request("PUT", url, headers=_h(srv), json_body=doc)
    assert r.status == 428 and r.json()["code"] == "precondition_required"
    r = srv.request("DELETE", url, headers=_h(srv))
    assert r.status == 428
    r = srv.request("PUT", url, headers=_h(srv, **{"If-Match": etag}), json_body=doc)
    assert r.status == 200, r
    new_etag = r.header("ETag")
    assert new_etag != etag and r.json()["description"] == "v2"
    r = srv.request("PUT", url, headers=_h(srv, **{"If-Match": etag}), json_body=doc)
    assert r.status == 412 and r.json()["code"] == "precondition_failed"
    r = srv.request("DELETE", url, headers=_h(srv, **{"If-Match": etag}))
    assert r.status == 412
    r = srv.request("DELETE", url, headers=_h(srv, **{"If-Match": new_etag}))
    assert r.status == 204 and len(r.header("X-Commit")) == 64
    assert srv.get(url, headers=_h(srv)).status == 404
    # POST with a stale branch If-Match
    r = srv.request("POST", _url("feature/etag", "shared-properties"), headers=_h(srv, **{"If-Match": commit}),
                    json_body={"api_name": "Other", "type": "string"})
    assert r.status == 412


def test_protected_main_refuses_direct_writes(ctx):
    srv = ctx.server
    r = srv.request("POST", _url("main", "shared-properties"), headers=_h(srv, roles=("admin",)),
                    json_body={"api_name": "X", "type": "string"})
    assert r.status == 403 and r.json()["code"] == "protected_branch", r
    r = srv.request("DELETE", "/api/v1/branches/main", headers=_h(srv, roles=("admin",)))
    assert r.status == 403 and r.json()["code"] == "protected_branch"
    # the refusal is audited as denied (a 403), with the status the client received
    ev = srv.audit_events("action = 'shared_property.create' AND outcome = 'denied'")
    assert ev and int(ev[-1]["http_status"]) == 403


def test_validation_errors_are_400(ctx):
    srv = ctx.server
    _branch(srv, "feature/val")
    cases = [
        ({"api_name": "1Bad", "type": "string"}, "/api_name"),
        ({"api_name": "Ok", "type": "strng"}, "/type"),
        ({"api_name": "Ok", "type": "string", "colour": "red"}, "/colour"),
        ({"api_name": "Ok", "type": "string", "display_name": "x" * 201}, "/display_name"),
        ({"api_name": "Ok", "type": "string", "description": "x" * 4097}, "/description"),
        ({"api_name": "Ok", "type": "string", "status": "retired"}, "/status"),
    ]
    for doc, path in cases:
        r = srv.request("POST", _url("feature/val", "shared-properties"), headers=_h(srv), json_body=doc)
        assert r.status == 400, (doc, r)
        body = r.json()
        assert body["code"] == "invalid_document", body
        assert any(e["path"] == path for e in body["errors"]), (path, body)
    r = srv.request("POST", _url("feature/val", "object-types"), headers=_h(srv), json_body={
        "api_name": "T", "properties": [{"api_name": "id", "type": "string", "required": True, "extra": 1}],
        "primary_key": "id"})
    assert r.status == 400 and any(e["path"] == "/properties/0/extra" for e in r.json()["errors"]), r
    # URL and body api_name must agree
    r = srv.request("POST", _url("feature/val", "shared-properties"), headers=_h(srv),
                    json_body={"api_name": "A", "type": "string"})
    assert r.status == 201
    r = srv.request("PUT", _url("feature/val", "shared-properties", "A"),
                    headers=_h(srv, **{"If-Match": r.header("ETag")}), json_body={"api_name": "B", "type": "string"})
    assert r.status == 400
    # not JSON, wrong content type, bad UTF-8, too deep
    base = _h(srv)
    r = srv.request("POST", _url("feature/val", "shared-properties"), headers={**base, "Content-Type": "application/json"}, body="{")
    assert r.status == 400 and r.json()["code"] == "invalid_request"
    r = srv.request("POST", _url("feature/val", "shared-properties"), headers={**base, "Content-Type": "text/plain"}, body="{}")
    assert r.status == 415
    r = srv.request("POST", _url("feature/val", "shared-properties"), headers={**base, "Content-Type": "application/json"},
                    body=b'{"api_name":"\xff\xfe","type":"string"}')
    assert r.status == 400
    r = srv.request("POST", _url("feature/val", "shared-properties"), headers={**base, "Content-Type": "application/json"},
                    body="[" * 65 + "]" * 65)
    assert r.status == 400 and "64" in r.json()["detail"]
    r = srv.request("POST", _url("feature/val", "shared-properties"), headers={**base, "Content-Type": "application/json"},
                    body='{"api_name":"D","api_name":"E","type":"string"}')
    assert r.status == 400
    # the route's kind segment is exact
    assert srv.request("POST", "/api/v1/schemas/feature%2Fval/widgets", headers=base, json_body={}).status == 404
    # invalid branch name in the path
    assert srv.get("/api/v1/schemas/Feature%2FVal/object-types", headers=base).status == 400


def test_integrity_rules_refused(ctx):
    srv = ctx.server
    _branch(srv, "feature/int")
    b = "feature/int"
    _ontology(srv, b)

    def refused(kind, doc, code, status=409):
        r = srv.request("POST", _url(b, kind), headers=_h(srv), json_body=doc)
        assert r.status == status, (doc, r)
        body = r.json()
        assert body["code"] == "integrity_violation", body
        assert any(e["code"] == code for e in body["errors"]), (code, body)
        return body

    body = refused("link-types", {"api_name": "L1", "from": "Person", "to": "Ghost", "cardinality": "one_to_one"},
                   "unresolved_reference")
    assert any("object-types/Ghost" in e["message"] for e in body["errors"]), body
    refused("object-types", {"api_name": "P2", "properties": [{"api_name": "id", "type": "string", "required": True}],
                             "primary_key": "id", "implements": ["Named"]}, "interface_not_satisfied")
    refused("object-types", {"api_name": "P3", "properties": [{"api_name": "id", "type": "string", "required": True},
                                                              {"api_name": "name", "type": "long"}],
                             "primary_key": "id", "implements": ["Named"]}, "interface_not_satisfied")
    refused("object-types", {"api_name": "P4", "properties": [{"api_name": "id", "type": "string", "required": True},
                                                              {"api_name": "mail", "type": "long", "shared_property": "Email"}],
                             "primary_key": "id"}, "shared_property_mismatch")
    refused("action-types", {"api_name": "A1", "rules": [{"type": "delete_object", "object_type": "Ghost"}]},
            "unresolved_reference")
    # extends cycle: B extends A is fine, then A extends B closes the cycle
    _create(srv, b, "interfaces", {"api_name": "IA", "properties": []})
    _create(srv, b, "interfaces", {"api_name": "IB", "properties": [], "extends": ["IA"]})
    ia = srv.get(_url(b, "interfaces", "IA"), headers=_h(srv))
    r = srv.request("PUT", _url(b, "interfaces", "IA"), headers=_h(srv, **{"If-Match": ia.header("ETag")}),
                    json_body={"api_name": "IA", "properties": [], "extends": ["IB"]})
    assert r.status == 409 and any(e["code"] == "extends_cycle" for e in r.json()["errors"]), r
    # primary key rules (SPEC §3 names no status): checked within the one
    # document, so refused as an invalid document, always with the precise rule
    for props, pk in [([{"api_name": "id", "type": "string"}], "id"),
                      ([{"api_name": "id", "type": "double", "required": True}], "id"),
                      ([{"api_name": "id", "type": "string", "required": True, "array": True}], "id"),
                      ([{"api_name": "id", "type": "string", "required": True}], "nope")]:
        r = srv.request("POST", _url(b, "object-types"), headers=_h(srv),
                        json_body={"api_name": "PK", "properties": props, "primary_key": pk})
        assert r.status == 400 and r.json()["code"] == "invalid_document", (props, pk, r)
        assert any("primary" in json.dumps(e).lower() for e in r.json()["errors"]), r.json()
    # an interface change that breaks an implementor is refused too
    named = srv.get(_url(b, "interfaces", "Named"), headers=_h(srv))
    r = srv.request("PUT", _url(b, "interfaces", "Named"), headers=_h(srv, **{"If-Match": named.header("ETag")}),
                    json_body={"api_name": "Named", "properties": [{"api_name": "name", "type": "string"},
                                                                  {"api_name": "nickname", "type": "string"}]})
    assert r.status == 409 and any(e["resource"] == "object-types/Person" for e in r.json()["errors"]), r
    # deleting a referenced resource lists its dependents
    company = srv.get(_url(b, "object-types", "Company"), headers=_h(srv))
    r = srv.request("DELETE", _url(b, "object-types", "Company"), headers=_h(srv, **{"If-Match": company.header("ETag")}))
    assert r.status == 409, r
    body = r.json()
    assert body["code"] == "has_dependents"
    deps = body["dependents"][0]
    assert deps["resource"] == "object-types/Company"
    assert set(deps["dependents"]) == {"link-types/WorksAt", "action-types/Hire", "function-types/Headcount"}, deps
    # duplicates
    r = srv.request("POST", _url(b, "object-types"), headers=_h(srv), json_body=COMPANY)
    assert r.status == 409 and r.json()["code"] == "already_exists"


def test_concurrent_puts_same_if_match(ctx):
    srv = ctx.server
    _branch(srv, "feature/race")
    r = _create(srv, "feature/race", "shared-properties", {"api_name": "Counter", "type": "integer"})
    etag = r.header("ETag")
    url = _url("feature/race", "shared-properties", "Counter")
    results = []

    def put(i):
        rr = srv.request("PUT", url, headers=_h(srv, sub=f"w{i}", **{"If-Match": etag}),
                         json_body={"api_name": "Counter", "type": "integer", "description": f"writer {i}"})
        results.append((i, rr.status, rr.json().get("description") if rr.status == 200 else None))

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [x for x in results if x[1] == 200]
    assert len(wins) == 1, results
    assert all(x[1] == 412 for x in results if x[1] != 200), results
    final = srv.get(url, headers=_h(srv)).json()
    assert final["description"] == wins[0][2]
    hist = srv.get("/api/v1/branches/feature%2Frace/commits", headers=_h(srv)).json()["items"]
    assert len(hist) == 3  # root, create, the one winning update: nothing lost, nothing extra


def test_batch_all_or_nothing(ctx):
    srv = ctx.server
    _branch(srv, "feature/batch")
    b = "feature/batch"
    head0 = srv.get("/api/v1/branches/feature%2Fbatch", headers=_h(srv)).json()["head"]
    bad = {"message": "Add things", "operations": [
        {"op": "create", "kind": "shared-properties", "document": {"api_name": "S1", "type": "string"}},
        {"op": "create", "kind": "link-types", "document": {"api_name": "L", "from": "Nope", "to": "Nope",
                                                             "cardinality": "one_to_one"}}]}
    r = srv.request("POST", f"/api/v1/schemas/{quote(b)}/changes", headers=_h(srv), json_body=bad)
    assert r.status == 409, r
    assert srv.get(_url(b, "shared-properties", "S1"), headers=_h(srv)).status == 404
    bad2 = {"operations": [{"op": "create", "kind": "shared-properties", "document": {"api_name": "S1", "type": "string"}},
                           {"op": "create", "kind": "shared-properties", "document": {"api_name": "S2", "type": "nope"}}]}
    r = srv.request("POST", f"/api/v1/schemas/{quote(b)}/changes", headers=_h(srv), json_body=bad2)
    assert r.status == 400 and any(e["path"].startswith("/operations/1/document") for e in r.json()["errors"]), r
    assert srv.get("/api/v1/branches/feature%2Fbatch", headers=_h(srv)).json()["head"] == head0
    good = {"message": "Add a person model", "issue_ids": ["OMS-7"], "operations": [
        {"op": "create", "kind": "interfaces", "document": {"api_name": "Named", "properties": [{"api_name": "name", "type": "string"}]}},
        {"op": "create", "kind": "shared-properties", "document": {"api_name": "Email", "type": "string"}},
        {"op": "create", "kind": "object-types", "document": PERSON}]}
    r = srv.request("POST", f"/api/v1/schemas/{quote(b)}/changes", headers=_h(srv, issue=None), json_body=good)
    assert r.status == 200, r
    out = r.json()
    assert out["changed"] and len(out["changes"]) == 3
    commit = srv.get(f"/api/v1/commits/{out['commit']}", headers=_h(srv)).json()
    assert commit["parents"] == [head0] and commit["issue_keys"] == ["OMS-7"]
    assert commit["message"] == "Add a person model"
    assert sorted(c["resource"] for c in commit["changes"]) == ["interfaces/Named", "object-types/Person",
                                                               "shared-properties/Email"]
    linked = srv.get("/api/v1/issues/OMS-7/commits", headers=_h(srv)).json()["items"]
    assert [c["id"] for c in linked] == [out["commit"]]
    # one commit, one audit event, in the same transaction
    ev = srv.query(f"SELECT action, outcome FROM audit_events WHERE commit_id = '{out['commit']}'")
    assert [tuple(e) for e in ev] == [("schema.changes", "success")], ev


def test_history_commit_detail_and_diff(ctx):
    srv = ctx.server
    _branch(srv, "feature/hist")
    b = "feature/hist"
    r = _create(srv, b, "object-types", {"api_name": "Item", "status": "active", "properties": [
        {"api_name": "id", "type": "integer", "required": True}, {"api_name": "label", "type": "string"}],
        "primary_key": "id"})
    c1 = r.header("X-Commit")
    doc = {"api_name": "Item", "status": "active", "properties": [
        {"api_name": "id", "type": "long", "required": True}, {"api_name": "label", "type": "string", "required": True},
        {"api_name": "price", "type": "double"}], "primary_key": "id"}
    r = srv.request("PUT", _url(b, "object-types", "Item"), headers=_h(srv, **{"If-Match": r.header("ETag"),
                    "X-Commit-Message": "Widen%20id%20and%20require%20label%20%E2%9C%93"}), json_body=doc)
    assert r.status == 200, r
    c2 = r.header("X-Commit")
    hist = srv.get(f"/api/v1/branches/{quote(b)}/commits", headers=_h(srv)).json()["items"]
    assert [h["id"] for h in hist[:2]] == [c2, c1]
    assert hist[0]["message"] == "Widen id and require label \u2713"
    page = srv.get(f"/api/v1/branches/{quote(b)}/commits?limit=1", headers=_h(srv)).json()
    assert [h["id"] for h in page["items"]] == [c2]
    page2 = srv.get(f"/api/v1/branches/{quote(b)}/commits?limit=1&cursor={page['next_cursor']}", headers=_h(srv)).json()
    assert [h["id"] for h in page2["items"]] == [c1]
    detail = srv.get(f"/api/v1/commits/{c2}", headers=_h(srv)).json()
    assert detail["parents"] == [c1] and detail["breaking"] is True
    fields = {f["path"]: f for f in detail["changes"][0]["fields"]}
    assert set(fields) == {"/properties/id/type", "/properties/label/required", "/properties/price"}, fields
    assert fields["/properties/id/type"]["breaking"] is False  # integer -> long widens
    assert fields["/properties/label/required"]["breaking"] is True
    assert fields["/properties/price"]["op"] == "add" and not fields["/properties/price"]["breaking"]
    first = srv.get(f"/api/v1/diff?from={c1}&to={quote(b)}", headers=_h(srv))
    d = first.json()
    assert d["from"] == c1 and d["to"] == c2 and d["breaking"] is True
    assert [c["resource"] for c in d["changes"]] == ["object-types/Item"]
    # the second answer comes from the diff cache, spliced in as text: the same bytes
    again = srv.get(f"/api/v1/diff?from={c1}&to={c2}", headers=_h(srv))
    assert again.status == 200 and again.body == first.body, (first.body, again.body)
    assert again.header("Content-Type").startswith("application/json")
    d0 = srv.get(f"/api/v1/diff?from={ROOT}&to={quote(b)}", headers=_h(srv)).json()
    assert [(c["resource"], c["change"]) for c in d0["changes"]] == [("object-types/Item", "added")]
    assert srv.get("/api/v1/diff?from=main", headers=_h(srv)).status == 400
    assert srv.get("/api/v1/diff?from=main&to=nope", headers=_h(srv)).status == 404
    assert srv.get("/api/v1/commits/" + "0" * 64, headers=_h(srv)).status == 404
    # the audit event of the update carries the hashes and changed paths
    ev = srv.query(f"SELECT action, before_hash, after_hash, changed_paths FROM audit_events WHERE commit_id = '{c2}'")
    assert ev[0][0] == "object_type.update" and ev[0][1] and ev[0][2] and ev[0][1] != ev[0][2]
    assert "object-types/Item#/properties/id/type" in json.loads(ev[0][3])


def test_identical_content_identical_hashes(ctx):
    srv = ctx.server
    _branch(srv, "team-a/one")
    _branch(srv, "team-b/two")
    doc = {"api_name": "Same", "type": "string", "description": "same everywhere"}
    h1 = _create(srv, "team-a/one", "shared-properties", doc).header("ETag")
    # key order and defaults do not matter: the canonical form is hashed
    doc2 = {"description": "same everywhere", "type": "string", "api_name": "Same", "array": False,
            "status": "experimental"}
    h2 = _create(srv, "team-b/two", "shared-properties", doc2).header("ETag")
    assert h1 == h2
    rows = srv.query("SELECT count(*) FROM objects WHERE hash = '%s'" % h1.strip('"'))
    assert int(rows[0][0]) == 1  # stored once
    t1 = srv.get("/api/v1/schemas/team-a%2Fone", headers=_h(srv)).json()["tree"]
    t2 = srv.get("/api/v1/schemas/team-b%2Ftwo", headers=_h(srv)).json()["tree"]
    assert t1 == t2  # trees are content-addressed too


def test_validate_is_a_dry_run(ctx):
    srv = ctx.server
    _branch(srv, "feature/dry")
    b = "feature/dry"
    r = _create(srv, b, "shared-properties", {"api_name": "Age", "type": "integer", "status": "active"})
    head = srv.get("/api/v1/branches/feature%2Fdry", headers=_h(srv)).json()["head"]
    body = {"operations": [{"op": "replace", "kind": "shared-properties", "api_name": "Age",
                            "document": {"api_name": "Age", "type": "string", "status": "active"}}]}
    r = srv.request("POST", f"/api/v1/schemas/{quote(b)}/validate", headers=_h(srv, roles=("viewer",)), json_body=body)
    assert r.status == 200, r
    out = r.json()
    assert out["valid"] is True and out["breaking"] is True and out["changes"][0]["resource"] == "shared-properties/Age"
    bad = {"operations": [{"op": "delete", "kind": "shared-properties", "api_name": "Nope"}]}
    out = srv.request("POST", f"/api/v1/schemas/{quote(b)}/validate", headers=_h(srv), json_body=bad).json()
    assert out["valid"] is False and out["errors"]
    assert srv.get("/api/v1/branches/feature%2Fdry", headers=_h(srv)).json()["head"] == head


def test_branches_lifecycle(ctx):
    srv = ctx.server
    b = _branch(srv, "feature/life")
    assert b["head"] and b["protected"] is False and b["created_by"] == "dev"
    r = _create(srv, "feature/life", "shared-properties", {"api_name": "Life", "type": "string"})
    c = r.header("X-Commit")
    # a branch from a commit
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": "from-commit", "from": c})
    assert r.status == 201 and r.json()["head"] == c
    assert srv.get(_url("from-commit", "shared-properties", "Life"), headers=_h(srv)).status == 200
    # a bad name or an unknown field: 400 (SPEC §4 names, §3/§5 unknown
    # fields); an unknown source: 404; a taken name: 409
    for bad, status in [({"name": "Bad"}, 400), ({"name": "a..b"}, 400), ({"name": "x.lock"}, 400),
                        ({"name": "ok", "from": "nope"}, 404), ({"name": "ok", "colour": 1}, 400),
                        ({"name": "feature/life"}, 409)]:
        r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body=bad)
        assert r.status == status, (bad, r)
    names = [x["name"] for x in srv.get("/api/v1/branches?limit=1000", headers=_h(srv)).json()["items"]]
    assert "feature/life" in names and "main" in names
    assert srv.request("DELETE", "/api/v1/branches/from-commit", headers=_h(srv)).status == 204
    assert srv.get("/api/v1/branches/from-commit", headers=_h(srv)).status == 404
    # viewers cannot create branches
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv, roles=("viewer",)), json_body={"name": "v"})
    assert r.status == 403 and r.json()["missing_permission"] == "branch:create"


def test_head_never_stale_across_instances(ctx):
    """Two servers on one database: a write through one is read through the other."""
    a = ctx.new_server()
    b = ctx.new_server(start=False)
    b.share_database_of(a)
    b.start()
    _branch(a, "feature/multi")
    url = _url("feature/multi", "shared-properties", "Multi")
    _create(a, "feature/multi", "shared-properties", {"api_name": "Multi", "type": "string"})
    r = b.get(url, headers=_h(b))
    assert r.status == 200
    etag = r.header("ETag")  # b has now cached this head
    r = a.request("PUT", url, headers=_h(a, **{"If-Match": etag}),
                  json_body={"api_name": "Multi", "type": "string", "description": "changed via a"})
    assert r.status == 200
    assert b.get(url, headers=_h(b)).json()["description"] == "changed via a"


def test_list_filters_status_and_q(ctx):
    """GET .../{kind}?status=&q= (the filters decide most documents from
    their canonical text without parsing them): status is the top-level
    member only, q a case-insensitive part of the api name, display name,
    description, or a property's api or display name."""
    srv = ctx.server
    _branch(srv, "feature/filters")
    b = "feature/filters"

    def ot(name, status, **extra):
        doc = {"api_name": name, "status": status, "primary_key": "id",
               "properties": [{"api_name": "id", "type": "string", "required": True}]}
        doc.update(extra)
        _create(srv, b, "object-types", doc)

    ot("Alpha", "active", description='says "status":"active" inside')
    ot("Beta", "deprecated", display_name="Quoted \"Name\"")
    ot("Gamma", "experimental", properties=[{"api_name": "id", "type": "string", "required": True},
                                            {"api_name": "placed_at", "type": "timestamp", "display_name": "Placed At"}])
    ot("Delta", "active")

    def names(query):
        r = srv.get(_url(b, "object-types") + "?" + query, headers=_h(srv))
        assert r.status == 200, r
        return [i["api_name"] for i in r.json()["items"]]

    assert names("status=active") == ["Alpha", "Delta"]
    assert names("status=deprecated") == ["Beta"]
    assert names("status=experimental") == ["Gamma"]
    assert names("q=ALPH") == ["Alpha"]                      # api name, any case
    assert names("q=placed") == ["Gamma"]                    # a property's api name
    assert names("q=placed%20at") == ["Gamma"]               # a property's display name
    assert names("q=%22Name%22") == ["Beta"]                 # a quote: found after parsing
    assert names("q=inside") == ["Alpha"]                    # the description
    assert names("q=status") == ["Alpha"]                    # only where a field says it
    assert names("q=nowhere-at-all") == []
    assert names("status=active&q=inside") == ["Alpha"]
    assert names("status=deprecated&q=inside") == []


def test_list_pages_walk_every_match_in_order(ctx):
    """A list page holds the first `limit` matches by api name after the
    cursor, and next_cursor is set exactly when one more exists: walking
    the pages, with and without a filter and at several page sizes, yields
    every match once, in order (the server keeps only a page's worth of
    candidates while it scans)."""
    srv = ctx.server
    b = "feature/pages"
    _branch(srv, b)
    rnd = random.Random(21)
    names = [f"T{i:02d}{c}" for i, c in zip(range(31), "qwertyuiopasdfghjklzxcvbnmqwert")]
    rnd.shuffle(names)  # created in no particular order
    statuses = {}
    for i, name in enumerate(names):
        statuses[name] = ("active", "deprecated", "experimental")[i % 3]
        _create(srv, b, "object-types", {"api_name": name, "status": statuses[name], "primary_key": "id",
                                         "properties": [{"api_name": "id", "type": "string", "required": True}]})

    def walk(limit, query=""):
        seen, cursor, pages = [], None, 0
        while True:
            url = _url(b, "object-types") + f"?limit={limit}" + query + (f"&cursor={cursor}" if cursor else "")
            r = srv.get(url, headers=_h(srv))
            assert r.status == 200, r
            page = r.json()
            items = [i["api_name"] for i in page["items"]]
            assert len(items) <= limit
            seen += items
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                return seen, pages
            assert len(items) == limit  # a page before the last is full

    everything = sorted(names)
    active = sorted(n for n in names if statuses[n] == "active")
    for limit in (1, 2, 7, 31, 1000):
        seen, pages = walk(limit)
        assert seen == everything, limit
        assert pages == -(-len(everything) // limit), limit  # no empty last page
        seen, _ = walk(limit, "&status=active")
        assert seen == active, limit
    seen, _ = walk(4, "&q=T1")
    assert seen == sorted(n for n in names if n.startswith("T1"))


def test_history_pages_from_memory_match_the_database(ctx):
    """History pages walk first parents; rows once read are answered from
    memory (commit ids hash their content, so a row never changes): the
    second walk of a history is the first one exactly, a branch that moved
    shows its new commits on top, and a cursor anywhere in the walk starts
    there."""
    srv = ctx.server
    b = "feature/pages-hist"
    _branch(srv, b)
    ids = []
    for i in range(9):
        r = _create(srv, b, "object-types", {"api_name": f"Hist{i}", "primary_key": "id",
                                             "properties": [{"api_name": "id", "type": "string", "required": True}]})
        ids.append(r.header("X-Commit"))

    def walk(limit):
        items, cursor = [], None
        while True:
            url = f"/api/v1/branches/{quote(b)}/commits?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            r = srv.get(url, headers=_h(srv))
            assert r.status == 200, r
            page = r.json()
            assert len(page["items"]) <= limit
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    expected = list(reversed(ids)) + [ROOT]
    first = walk(4)                     # from the database
    assert [c["id"] for c in first] == expected
    assert [c["parents"] for c in first[:-1]] == [[p] for p in expected[1:]] and first[-1]["parents"] == []
    assert walk(4) == first             # from memory: the same items, field for field
    assert walk(1) == first and walk(100) == first
    for i in range(9, 11):              # the branch moves: new commits on top
        r = _create(srv, b, "object-types", {"api_name": f"Hist{i}", "primary_key": "id",
                                             "properties": [{"api_name": "id", "type": "string", "required": True}]})
        expected.insert(0, r.header("X-Commit"))
    assert [c["id"] for c in walk(3)] == expected
    page = srv.get(f"/api/v1/branches/{quote(b)}/commits?limit=2&cursor={b64url(expected[5].encode())}",
                   headers=_h(srv)).json()
    assert [c["id"] for c in page["items"]] == expected[5:7] and page["next_cursor"] == b64url(expected[7].encode())
    nothing = srv.get(f"/api/v1/branches/{quote(b)}/commits?cursor={b64url(b'0' * 64)}", headers=_h(srv))
    assert nothing.status == 200 and nothing.json() == {"items": [], "next_cursor": None}
