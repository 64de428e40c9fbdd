"""What a new user stumbled on (issue #20): the problem documents and
defaults must say what is true."""


from harness import quote

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


def _h(srv, sub="dev", roles=("developer",), issue="OMS-300"):
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = issue
    return h


def test_issue_required_advertises_only_forms_the_write_accepts(ctx):
    srv = ctx.server
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": "fu/issues", "from": ROOT})
    assert r.status == 201, r
    url = "/api/v1/schemas/" + quote("fu/issues") + "/shared-properties"
    doc = {"api_name": "Email", "type": "string"}
    r = srv.request("POST", url, headers=_h(srv, issue=None), json_body=doc)
    assert r.status == 422 and r.json()["code"] == "issue_required", r
    forms = r.json()["accepted_forms"]
    # the body of a single-resource write is the document: no body forms
    assert "body" not in forms and "body_list" not in forms, forms
    assert forms["header"].startswith("X-Issue-ID:") and "X-Commit-Message" in forms["message"], forms
    # each advertised form works
    r = srv.request("POST", url, headers=_h(srv, issue=None) | {"X-Issue-ID": "OMS-301"}, json_body=doc)
    assert r.status == 201, r
    r = srv.request("POST", url, headers=_h(srv, issue=None) | {"X-Issue-IDs": "OMS-302,GH-3"},
                    json_body={"api_name": "Phone", "type": "string"})
    assert r.status == 201, r
    r = srv.request("POST", url, headers=_h(srv, issue=None) | {"X-Commit-Message": "Add Fax OMS-303"},
                    json_body={"api_name": "Fax", "type": "string"})
    assert r.status == 201, r
    # a batch takes body fields, and says so
    batch = "/api/v1/schemas/" + quote("fu/issues") + "/changes"
    op = {"op": "create", "kind": "shared-properties", "api_name": "Pager", "document": {"api_name": "Pager",
                                                                                          "type": "string"}}
    r = srv.request("POST", batch, headers=_h(srv, issue=None), json_body={"operations": [op]})
    assert r.status == 422 and "body" in r.json()["accepted_forms"], r
    r = srv.request("POST", batch, headers=_h(srv, issue=None), json_body={"issue_id": "OMS-304", "operations": [op]})
    assert r.status == 200, r


def test_main_created_at_is_not_1970(ctx):
    srv = ctx.server
    b = srv.get("/api/v1/branches/main", headers=_h(srv, roles=("viewer",))).json()
    assert not b["created_at"].startswith("1970"), b
    assert int(b["created_at"][:4]) >= 2024, b


def test_diff_entries_are_sorted_by_resource(ctx):
    srv = ctx.server
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": "fu/sorted", "from": ROOT})
    assert r.status == 201, r
    names = ["Zeta", "alpha", "Mid", "beta", "Alpha2", "omega", "Kappa", "delta"]
    ops = [{"op": "create", "kind": "shared-properties", "api_name": n, "document": {"api_name": n, "type": "string"}}
           for n in names]
    ops.append({"op": "create", "kind": "interfaces", "api_name": "Named",
                "document": {"api_name": "Named", "properties": [{"api_name": "name", "type": "string"}]}})
    r = srv.request("POST", "/api/v1/schemas/" + quote("fu/sorted") + "/changes", headers=_h(srv),
                    json_body={"message": "many", "operations": ops})
    assert r.status == 200, r
    d = srv.get(f"/api/v1/diff?from={ROOT}&to=" + quote("fu/sorted"), headers=_h(srv, roles=("viewer",)))
    assert d.status == 200, d
    keys = [c["resource"] for c in d.json()["changes"]]
    assert len(keys) == len(names) + 1 and keys == sorted(keys), keys
