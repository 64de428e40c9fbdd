"""Tags and time travel (SPEC §4, §5): a tag names a commit forever; reads
of ontology content take ?at= a commit id or a tag and answer exactly the
content of that commit."""

import hashlib

from harness import quote

DEV = ("developer",)
ADMIN = ("admin",)
ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


def _h(srv, sub="dev", roles=DEV, issue="OMS-200"):
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = issue
    return h


def _branch(srv, name):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": ROOT})
    assert r.status == 201, r


def _url(branch, kind=None, name=None):
    u = f"/api/v1/schemas/{quote(branch)}"
    if kind:
        u += f"/{kind}"
    return u + (f"/{name}" if name else "")


def _put_email(srv, branch, desc, etag=None):
    doc = {"api_name": "Email", "type": "string", "description": desc}
    if etag is None:
        r = srv.request("POST", _url(branch, "shared-properties"), headers=_h(srv), json_body=doc)
        assert r.status == 201, r
    else:
        h = _h(srv)
        h["If-Match"] = etag
        r = srv.request("PUT", _url(branch, "shared-properties", "Email"), headers=h, json_body=doc)
        assert r.status == 200, r
    return r


def _tag(srv, name, commit, roles=DEV, expect=201):
    r = srv.request("POST", "/api/v1/tags", headers=_h(srv, roles=roles, issue=None),
                    json_body={"name": name, "commit": commit, "message": "release"})
    assert r.status == expect, r
    return r


def test_tag_create_list_get_and_never_moves(ctx):
    srv = ctx.server
    _branch(srv, "tags/a")
    c1 = _put_email(srv, "tags/a", "first").header("X-Commit")
    r = _tag(srv, "ta-v1", "tags/a")
    t = r.json()
    assert t["name"] == "ta-v1" and t["commit"] == c1 and t["created_by"] == "dev" and t["message"] == "release"
    assert r.header("Location") == "/api/v1/tags/ta-v1"
    # re-creating a name is 409, even for the same commit: a tag never moves
    r = _tag(srv, "ta-v1", c1, expect=409)
    assert r.json()["code"] == "tag_exists"
    r = srv.get("/api/v1/tags/ta-v1", headers=_h(srv, roles=("viewer",)))
    assert r.status == 200 and r.json()["commit"] == c1
    items = srv.get("/api/v1/tags?limit=1000", headers=_h(srv, roles=("viewer",))).json()["items"]
    assert any(i["name"] == "ta-v1" and i["commit"] == c1 for i in items)
    # audited as tag.create with the commit
    ev = srv.query("SELECT commit_id, outcome FROM audit_events WHERE action = 'tag.create' AND resource_id = 'ta-v1'")
    assert [tuple(e) for e in ev] == [(c1, "success")], ev
    # grammar; a viewer cannot tag; an unknown commit is 404
    assert _tag(srv, "Bad Name", c1, expect=400)
    assert _tag(srv, "ta-v2", c1, roles=("viewer",), expect=403)
    assert _tag(srv, "ta-v3", "0" * 64, expect=404)
    assert srv.get("/api/v1/tags/ta-nope", headers=_h(srv)).status == 404


def test_tag_delete_needs_branch_admin_and_an_issue(ctx):
    srv = ctx.server
    _branch(srv, "tags/d")
    c1 = _put_email(srv, "tags/d", "first").header("X-Commit")
    _tag(srv, "td-v1", c1)
    r = srv.request("DELETE", "/api/v1/tags/td-v1", headers=_h(srv, roles=DEV))
    assert r.status == 403, r
    r = srv.request("DELETE", "/api/v1/tags/td-v1", headers=_h(srv, sub="adm", roles=ADMIN, issue=None))
    assert r.status == 422 and r.json()["code"] == "issue_required", r
    r = srv.request("DELETE", "/api/v1/tags/td-v1", headers=_h(srv, sub="adm", roles=ADMIN))
    assert r.status == 204, r
    assert srv.get("/api/v1/tags/td-v1", headers=_h(srv)).status == 404
    ev = srv.query("SELECT commit_id, issue_keys FROM audit_events WHERE action = 'tag.delete'"
                   " AND resource_id = 'td-v1' AND outcome = 'success'")
    assert len(ev) == 1 and ev[0][0] == c1 and "OMS-200" in ev[0][1], ev


def _strip_meta(doc):
    return {k: v for k, v in doc.items() if k != "meta"}


def test_at_tag_reads_exactly_the_tagged_content(ctx):
    srv = ctx.server
    _branch(srv, "tags/t")
    r1 = _put_email(srv, "tags/t", "first")
    c1, etag1 = r1.header("X-Commit"), r1.header("ETag").strip('"')
    v = ("viewer",)
    then_get = srv.get(_url("tags/t", "shared-properties", "Email"), headers=_h(srv, roles=v))
    then_list = srv.get(_url("tags/t", "shared-properties"), headers=_h(srv, roles=v)).json()
    then_export = srv.get(_url("tags/t"), headers=_h(srv, roles=v))
    _tag(srv, "tt-v1", c1)
    # later commits move the branch, never the tag
    r2 = _put_email(srv, "tags/t", "second", etag=etag1)
    c2 = r2.header("X-Commit")
    r = srv.request("POST", _url("tags/t", "interfaces"), headers=_h(srv),
                    json_body={"api_name": "Named", "properties": [{"api_name": "name", "type": "string"}]})
    assert r.status == 201, r
    assert srv.get("/api/v1/tags/tt-v1", headers=_h(srv, roles=v)).json()["commit"] == c1
    for at in ("tt-v1", c1):
        g = srv.get(_url("tags/t", "shared-properties", "Email") + "?at=" + at, headers=_h(srv, roles=v))
        assert g.status == 200, g
        assert g.header("ETag") == then_get.header("ETag")
        assert _strip_meta(g.json()) == _strip_meta(then_get.json())
        assert hashlib.sha256(g.json()["description"].encode()).digest() == \
            hashlib.sha256(b"first").digest()
        lst = srv.get(_url("tags/t", "shared-properties") + "?at=" + at, headers=_h(srv, roles=v)).json()
        assert [_strip_meta(i) for i in lst["items"]] == [_strip_meta(i) for i in then_list["items"]]
        ex = srv.get(_url("tags/t") + "?at=" + at, headers=_h(srv, roles=v))
        assert ex.status == 200 and ex.body == then_export.body, (ex.body, then_export.body)
    # the head moved on
    head = srv.get(_url("tags/t", "shared-properties", "Email"), headers=_h(srv, roles=v)).json()
    assert head["description"] == "second"
    # not there at v1: 404; an unknown tag: 404; not a tag or commit: 400
    assert srv.get(_url("tags/t", "interfaces", "Named") + "?at=tt-v1", headers=_h(srv, roles=v)).status == 404
    assert srv.get(_url("tags/t", "interfaces", "Named") + "?at=nope-v9", headers=_h(srv, roles=v)).status == 404
    assert srv.get(_url("tags/t") + "?at=Not%20A%20Tag", headers=_h(srv, roles=v)).status == 400
    # the branch in the path must exist, with or without at=
    assert srv.get(_url("tags/none") + "?at=tt-v1", headers=_h(srv, roles=v)).status == 404
    # a diff end can be a tag
    d = srv.get(f"/api/v1/diff?from=tt-v1&to={c2}", headers=_h(srv, roles=v))
    assert d.status == 200 and d.json()["from"] == c1, d
    assert [c["resource"] for c in d.json()["changes"]] == ["shared-properties/Email"]


def test_unknown_query_parameter_is_400_naming_it(ctx):
    srv = ctx.server
    r = srv.get("/api/v1/branches?limit=5&colour=red", headers=_h(srv, roles=("viewer",)))
    assert r.status == 400 and r.json()["code"] == "invalid_request" and r.json()["parameter"] == "colour", r
    assert "colour" in r.json()["detail"]
    r = srv.get("/api/v1/schemas/main/object-types/Person?a=1", headers=_h(srv, roles=("viewer",)))
    assert r.status == 400 and r.json()["parameter"] == "a", r
    assert srv.get("/api/v1/branches?limit=5", headers=_h(srv, roles=("viewer",))).status == 200


def test_branch_location_is_percent_encoded_and_followable(ctx):
    srv = ctx.server
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": "feature/loc", "from": ROOT})
    assert r.status == 201, r
    assert r.header("Location") == "/api/v1/branches/feature%2Floc"
    g = srv.get(r.header("Location"), headers=_h(srv, roles=("viewer",)))
    assert g.status == 200 and g.json()["name"] == "feature/loc", g


def test_history_filters_by_resource_author_and_time(ctx):
    srv = ctx.server
    _branch(srv, "tags/h")
    e1 = _put_email(srv, "tags/h", "first")
    h = _h(srv, sub="carol")
    r = srv.request("POST", _url("tags/h", "interfaces"), headers=h,
                    json_body={"api_name": "Named", "properties": [{"api_name": "name", "type": "string"}]})
    assert r.status == 201, r
    e2 = _put_email(srv, "tags/h", "second", etag=e1.header("ETag").strip('"'))
    base = "/api/v1/branches/" + quote("tags/h") + "/commits"
    v = _h(srv, roles=("viewer",))
    ids = [c["id"] for c in srv.get(base + "?resource=shared-properties/Email", headers=v).json()["items"]]
    assert ids == [e2.header("X-Commit"), e1.header("X-Commit")], ids
    ids = [c["id"] for c in srv.get(base + "?author=carol", headers=v).json()["items"]]
    assert ids == [r.header("X-Commit")], ids
    assert srv.get(base + "?since=2999-01-01T00:00:00Z", headers=v).json()["items"] == []
    ids = [c["id"] for c in srv.get(base + "?until=2999-01-01T00:00:00Z&author=dev&limit=1", headers=v).json()["items"]]
    assert ids == [e2.header("X-Commit")], ids
    assert srv.get(base + "?since=yesterday", headers=v).status == 400
    assert srv.get(base + "?resource=nokind/X", headers=v).status == 400
