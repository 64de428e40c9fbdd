"""Governance (SPEC §6.3, §6.4): issue references on every change route,
exempt branches, the tracker check, and emergency overrides with their
attacks."""

import http.server
import threading

import harness
from harness import quote

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"
JUSTIFICATION = "Production incident: the billing pipeline is down and needs an urgent schema fix now."


def _h(srv, sub="dev", roles=("developer",), **extra):
    h = srv.auth(sub, roles)
    h.update(extra)
    return h


def _branch(srv, name, frm=ROOT):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": frm})
    assert r.status == 201, r


def _sp(name):
    return {"api_name": name, "type": "string"}


def _post_sp(srv, branch, name, **headers):
    return srv.request("POST", f"/api/v1/schemas/{quote(branch)}/shared-properties", headers=_h(srv, **headers),
                       json_body=_sp(name))


def _assert_issue_required(r, document=True):
    """A single-resource write's body is the document (SPEC §5): its
    problem advertises no body fields; every other change's does."""
    assert r.status == 422, r
    doc = r.json()
    assert doc["code"] == "issue_required", doc
    forms = doc["accepted_forms"]
    assert "X-Issue-ID" in forms["header"] and "X-Issue-IDs" in forms["headers"]
    if document:
        assert "body_list" not in forms and "body" not in forms and "X-Commit-Message" in forms["message"], forms
    else:
        assert "issue_ids" in forms["body_list"], forms


def test_every_change_route_needs_an_issue(ctx):
    srv = ctx.server
    _branch(srv, "gov/routes")
    b = quote("gov/routes")
    ok = {"X-Issue-ID": "OMS-1"}
    r = _post_sp(srv, "gov/routes", "A", **ok)
    etag = r.header("ETag")
    _branch(srv, "gov/other", "gov/routes")
    attempts = [
        ("POST", f"/api/v1/schemas/{b}/shared-properties", _sp("B"), {}),
        ("PUT", f"/api/v1/schemas/{b}/shared-properties/A", {"api_name": "A", "type": "long"}, {"If-Match": etag}),
        ("DELETE", f"/api/v1/schemas/{b}/shared-properties/A", None, {"If-Match": etag}),
        ("POST", f"/api/v1/schemas/{b}/changes", {"operations": [{"op": "create", "kind": "shared-properties",
                                                                    "document": _sp("C")}]}, {}),
        ("POST", f"/api/v1/branches/{b}/merge", {"source": "gov/other"}, {}),
        ("POST", f"/api/v1/branches/{b}/revert", {"commit": "0" * 64}, {}),
        ("DELETE", "/api/v1/branches/gov%2Fother", None, {}),
    ]
    head = srv.get(f"/api/v1/branches/{b}", headers=_h(srv)).json()["head"]
    for method, path, body, extra in attempts:
        r = srv.request(method, path, headers=_h(srv, **extra), json_body=body)
        _assert_issue_required(r, document="/shared-properties" in path)
    # the emergency header grants nothing
    r = srv.request("POST", f"/api/v1/schemas/{b}/shared-properties",
                    headers=_h(srv, **{"X-Emergency-Override": "true"}), json_body=_sp("B"))
    _assert_issue_required(r)
    assert srv.get(f"/api/v1/branches/{b}", headers=_h(srv)).json()["head"] == head  # nothing changed
    # each refusal is audited as a failed change
    assert len(srv.audit_events("outcome = 'failure' AND http_status = 422")) >= len(attempts)


def test_each_reference_form_is_accepted(ctx):
    srv = ctx.server
    _branch(srv, "gov/forms")
    b = "gov/forms"
    assert _post_sp(srv, b, "H1", **{"X-Issue-ID": "OMS-11"}).status == 201
    assert _post_sp(srv, b, "H2", **{"X-Issue-IDs": "OMS-12, GH-7,#99"}).status == 201
    assert _post_sp(srv, b, "H3", **{"X-Commit-Message": "Add%20H3%20for%20OMS-13"}).status == 201
    for i, extra in enumerate([{"issue_id": "OMS-14"}, {"issue_ids": ["OMS-15", "#16"]}, {"message": "Fixes GH-17"}]):
        body = {"operations": [{"op": "create", "kind": "shared-properties", "document": _sp(f"B{i}")}], **extra}
        r = srv.request("POST", f"/api/v1/schemas/{quote(b)}/changes", headers=_h(srv), json_body=body)
        assert r.status == 200, (extra, r)
    # keys are stored with the commit and the audit event, queryable both ways
    hist = srv.get(f"/api/v1/branches/{quote(b)}/commits", headers=_h(srv)).json()["items"]
    keys = [h["issue_keys"] for h in hist]
    assert ["OMS-12", "GH-7", "#99"] in keys and ["OMS-13"] in keys and ["OMS-15", "#16"] in keys and ["GH-17"] in keys
    linked = srv.get("/api/v1/issues/GH-7/commits", headers=_h(srv)).json()["items"]
    assert len(linked) == 1
    linked = srv.get("/api/v1/issues/%2399/commits", headers=_h(srv)).json()["items"]
    assert len(linked) == 1
    ev = srv.query("SELECT issue_keys FROM audit_events WHERE issue_keys LIKE '%OMS-11%'")
    assert ev
    # malformed references are refused, not ignored
    r = _post_sp(srv, b, "Bad", **{"X-Issue-ID": "not a key"})
    assert r.status == 422 and r.json()["invalid"] == ["not a key"]


def test_exempt_branches_and_branch_setting(ctx):
    srv = ctx.server
    for name in ("sandbox/try", "personal/dev/x"):
        _branch(srv, name)
        assert _post_sp(srv, name, "Free").status == 201, name
    _branch(srv, "gov/relaxed")
    _assert_issue_required(_post_sp(srv, "gov/relaxed", "X"))
    admin = _h(srv, sub="boss", roles=("admin",))
    assert srv.request("PUT", "/api/v1/branches/gov%2Frelaxed/settings", headers=admin,
                       json_body={"issue_required": False}).json()["issue_required"] is False
    assert _post_sp(srv, "gov/relaxed", "X").status == 201
    # and the other way: a sandbox branch that opts in
    assert srv.request("PUT", "/api/v1/branches/sandbox%2Ftry/settings", headers=admin,
                       json_body={"issue_required": True}).status == 200
    _assert_issue_required(_post_sp(srv, "sandbox/try", "Y"))
    assert srv.request("PUT", "/api/v1/branches/sandbox%2Ftry/settings", headers=admin,
                       json_body={"issue_required": None}).json()["issue_required"] is None
    assert _post_sp(srv, "sandbox/try", "Y").status == 201


class _Tracker(http.server.BaseHTTPRequestHandler):
    known = {"/issues/OMS-1", "/issues/%23500"}
    calls = []

    def do_GET(self):  # noqa: N802
        _Tracker.calls.append(self.path)
        self.send_response(200 if self.path in self.known else 404)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_tracker_check(ctx):
    tracker = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Tracker)
    threading.Thread(target=tracker.serve_forever, daemon=True).start()
    port = tracker.server_address[1]
    srv = ctx.new_server(env={"OMS_ISSUE_TRACKER_URL": f"http://127.0.0.1:{port}/issues/{{key}}",
                              "OMS_ISSUE_TRACKER_TIMEOUT_MS": "500"})
    try:
        _branch(srv, "gov/tracked")
        assert _post_sp(srv, "gov/tracked", "Known", **{"X-Issue-ID": "OMS-1"}).status == 201
        assert _post_sp(srv, "gov/tracked", "Hash", **{"X-Issue-ID": "#500"}).status == 201
        r = _post_sp(srv, "gov/tracked", "Missing", **{"X-Issue-ID": "OMS-404"})
        assert r.status == 422 and r.json()["code"] == "issue_required" and "OMS-404" in r.json()["detail"], r
        # a confirmed key is cached: the tracker is not asked again
        n = len(_Tracker.calls)
        assert _post_sp(srv, "gov/tracked", "Known2", **{"X-Issue-ID": "OMS-1"}).status == 201
        assert len(_Tracker.calls) == n
    finally:
        tracker.shutdown()
        tracker.server_close()
    # the tracker is down: fail closed
    r = _post_sp(srv, "gov/tracked", "Down", **{"X-Issue-ID": "OMS-77"})
    assert r.status == 503 and r.json()["code"] == "issue_tracker_unavailable", r
    assert srv.get("/api/v1/schemas/gov%2Ftracked/shared-properties/Down", headers=_h(srv)).status == 404


# ---- overrides ----

def _request_override(srv, sub="dev", **over):
    body = {"kind": "protected_branch", "branch": "main", "justification": JUSTIFICATION, "incident": "INC-1",
            "ttl_seconds": 600}
    body.update(over)
    r = srv.request("POST", "/api/v1/overrides", headers=_h(srv, sub=sub), json_body=body)
    assert r.status == 201, r
    return r.json()["id"]


def _approve(srv, oid, sub="sec", roles=("security_officer",)):
    return srv.request("POST", f"/api/v1/overrides/{oid}/approve", headers=_h(srv, sub=sub, roles=roles))


def _write_main(srv, name, sub="dev", oid=None, **extra):
    h = {"X-Issue-ID": "OMS-9"}
    if oid:
        h["X-Override-ID"] = oid
    h.update(extra)
    return srv.request("POST", "/api/v1/schemas/main/shared-properties", headers=_h(srv, sub=sub, **h),
                       json_body=_sp(name))


def test_override_validation(ctx):
    srv = ctx.server
    for bad in [{"justification": "too short"}, {"ttl_seconds": 4 * 3600 + 1}, {"kind": "everything"},
                {"branch": "Bad Name"}, {"resource": "object-types"}, {"incident": ""}, {"extra": 1}]:
        body = {"kind": "protected_branch", "branch": "main", "justification": JUSTIFICATION, "incident": "INC-1",
                "ttl_seconds": 600}
        body.update(bad)
        r = srv.request("POST", "/api/v1/overrides", headers=_h(srv), json_body=body)
        assert r.status == 400, (bad, r)
    # viewers cannot even request one
    r = srv.request("POST", "/api/v1/overrides", headers=_h(srv, roles=("viewer",)), json_body={})
    assert r.status == 403 and r.json()["missing_permission"] == "override:request"


def test_override_attacks_refused(ctx):
    srv = ctx.server
    # the bare header grants nothing
    r = _write_main(srv, "Bare", **{"X-Emergency-Override": "1"})
    assert r.status == 403 and r.json()["code"] == "protected_branch", r
    oid = _request_override(srv)
    # an unapproved override is not usable
    r = _write_main(srv, "Pending", oid=oid)
    assert r.status == 403 and r.json()["code"] == "override_invalid", r
    # self-approval, even by a requester who holds override:approve
    r = _approve(srv, oid, sub="dev", roles=("developer", "security_officer"))
    assert r.status == 403 and r.json()["code"] == "self_approval", r
    # a role without override:approve
    r = _approve(srv, oid, sub="rev", roles=("reviewer",))
    assert r.status == 403 and r.json()["missing_permission"] == "override:approve"
    assert _approve(srv, oid).json()["state"] == "approved"
    # someone other than the requester
    r = _write_main(srv, "Thief", sub="mallory", oid=oid)
    assert r.status == 403 and r.json()["code"] == "override_invalid", r
    # outside its branch: the override names main, the write goes elsewhere
    srv.request("PUT", "/api/v1/branches/gov%2Fprot/settings", headers=_h(srv, roles=("admin",)), json_body={})
    _branch(srv, "gov/prot")
    srv.request("PUT", "/api/v1/branches/gov%2Fprot/settings", headers=_h(srv, roles=("admin",)),
                json_body={"protected": True})
    r = srv.request("POST", "/api/v1/schemas/gov%2Fprot/shared-properties",
                    headers=_h(srv, **{"X-Issue-ID": "OMS-9", "X-Override-ID": oid}), json_body=_sp("Elsewhere"))
    assert r.status == 403 and r.json()["code"] == "protected_branch", r
    # outside its resource
    roid = _request_override(srv, resource="shared-properties/Allowed")
    _approve(srv, roid)
    r = _write_main(srv, "NotAllowed", oid=roid)
    assert r.status == 403 and r.json()["code"] == "protected_branch", r
    assert _write_main(srv, "Allowed", oid=roid).status == 201
    # legitimate use: exactly one write goes through
    r = _write_main(srv, "Hotfix", oid=oid)
    assert r.status == 201, r
    r = _write_main(srv, "Again", oid=oid)
    assert r.status == 403 and r.json()["code"] == "override_invalid", r  # reuse after use
    got = srv.get(f"/api/v1/overrides/{oid}", headers=_h(srv)).json()
    assert got["state"] == "used" and got["approvals"][0]["approver"] == "sec"
    # rejected and cancelled overrides are not usable
    rid = _request_override(srv)
    assert srv.request("POST", f"/api/v1/overrides/{rid}/reject", headers=_h(srv, sub="sec", roles=("security_officer",))).status == 200
    assert _write_main(srv, "Rejected", oid=rid).status == 403
    cid = _request_override(srv)
    _approve(srv, cid)
    assert srv.request("POST", f"/api/v1/overrides/{cid}/cancel", headers=_h(srv, sub="someone")).status == 403
    assert srv.request("POST", f"/api/v1/overrides/{cid}/cancel", headers=_h(srv)).json()["state"] == "cancelled"
    assert _write_main(srv, "Cancelled", oid=cid).status == 403
    # use after expiry
    eid = _request_override(srv, ttl_seconds=1)
    _approve(srv, eid)
    srv.advance_override_clock(1.2, f"id = '{eid}'")  # the test's clock: no sleep
    r = _write_main(srv, "Expired", oid=eid)
    assert r.status == 403 and "expired" in r.json()["detail"], r
    assert srv.get(f"/api/v1/overrides/{eid}", headers=_h(srv)).json()["state"] == "expired"
    # main got exactly the two legitimate writes
    names = [x["api_name"] for x in srv.get("/api/v1/schemas/main/shared-properties", headers=_h(srv)).json()["items"]]
    assert "Hotfix" in names and "Allowed" in names
    for n in ("Bare", "Pending", "Thief", "NotAllowed", "Again", "Rejected", "Cancelled", "Expired"):
        assert n not in names, n


def test_override_audit_trail_and_alert(ctx):
    srv = ctx.server
    oid = _request_override(srv, sub="ann")
    _approve(srv, oid, sub="sofia")
    r = _write_main(srv, "Audited", sub="ann", oid=oid)
    assert r.status == 201, r
    commit = r.header("X-Commit")
    assert srv.get(f"/api/v1/commits/{commit}", headers=_h(srv)).json()["override_id"] == oid
    ev = srv.query(f"SELECT action, actor_sub FROM audit_events WHERE resource_id = '{oid}' ORDER BY seq")
    assert [tuple(e) for e in ev] == [("override.request", "ann"), ("override.approve", "sofia"), ("override.used", "ann")], ev
    change = srv.query(f"SELECT action, override_id FROM audit_events WHERE commit_id = '{commit}'")
    assert [tuple(e) for e in change] == [("shared_property.create", oid)]
    alerts = srv.get("/api/v1/alerts?rule=override_used", headers=_h(srv, roles=("auditor",))).json()["items"]
    assert any(a["detail"]["override_id"] == oid and a["subject"] == "ann" for a in alerts), alerts
    assert srv.get("/api/v1/alerts", headers=_h(srv)).status == 403


def test_issue_requirement_override(ctx):
    srv = ctx.server
    _branch(srv, "gov/noissue")
    oid = _request_override(srv, kind="issue_requirement", branch="gov/noissue")
    _approve(srv, oid)
    r = srv.request("POST", "/api/v1/schemas/gov%2Fnoissue/shared-properties",
                    headers=_h(srv, **{"X-Override-ID": oid}), json_body=_sp("NoIssue"))
    assert r.status == 201, r
    r = srv.request("POST", "/api/v1/schemas/gov%2Fnoissue/shared-properties",
                    headers=_h(srv, **{"X-Override-ID": oid}), json_body=_sp("NoIssue2"))
    assert r.status == 403, r


def test_breaking_change_override(ctx):
    srv = ctx.server
    admin = _h(srv, sub="boss", roles=("admin",))
    srv.request("POST", "/api/v1/branches", headers=admin, json_body={"name": "gov/target", "from": ROOT})
    srv.request("PUT", "/api/v1/branches/gov%2Ftarget/settings", headers=admin,
                json_body={"protected": True, "required_approvals": 1, "breaking_change_approvals": 2})
    # an active resource on the target, then a breaking change to it on a source branch
    src = "gov/bsrc"
    _branch(srv, src)
    r = srv.request("POST", f"/api/v1/schemas/{quote(src)}/shared-properties", headers=_h(srv, **{"X-Issue-ID": "OMS-5"}),
                    json_body={"api_name": "Amount", "type": "integer", "status": "active"})
    pid = srv.request("POST", "/api/v1/proposals", headers=_h(srv), json_body={"source": src, "target": "gov/target",
                      "title": "add"}).json()["id"]
    srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=_h(srv, sub="r1", roles=("reviewer",)))
    assert srv.request("POST", f"/api/v1/proposals/{pid}/merge", headers=_h(srv, sub="r1", roles=("reviewer",), **{"X-Issue-ID": "OMS-5"}),
                       json_body={}).status == 200
    etag = srv.get(f"/api/v1/schemas/{quote(src)}/shared-properties/Amount", headers=_h(srv)).header("ETag")
    r = srv.request("PUT", f"/api/v1/schemas/{quote(src)}/shared-properties/Amount",
                    headers=_h(srv, **{"X-Issue-ID": "OMS-5", "If-Match": etag}),
                    json_body={"api_name": "Amount", "type": "string", "status": "active"})
    assert r.status == 200, r
    pid = srv.request("POST", "/api/v1/proposals", headers=_h(srv), json_body={"source": src, "target": "gov/target",
                      "title": "breaking"}).json()
    assert pid["breaking"] is True and pid["required_approvals"] == 2
    pid = pid["id"]
    srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=_h(srv, sub="r1", roles=("reviewer",)))
    merge = lambda **h: srv.request("POST", f"/api/v1/proposals/{pid}/merge",  # noqa: E731
                                    headers=_h(srv, sub="rel", roles=("reviewer", "override:request"), **{"X-Issue-ID": "OMS-5", **h}),
                                    json_body={})
    assert merge().status == 409
    oid = srv.request("POST", "/api/v1/overrides", headers=_h(srv, sub="rel", roles=("reviewer",)),
                      json_body={"kind": "breaking_change", "branch": "gov/target", "justification": JUSTIFICATION,
                                 "incident": "INC-2", "ttl_seconds": 600}).json()["id"]
    _approve(srv, oid)
    r = merge(**{"X-Override-ID": oid})
    assert r.status == 200 and r.json()["state"] == "merged", r
    assert srv.get(f"/api/v1/overrides/{oid}", headers=_h(srv, sub="rel", roles=("reviewer",))).json()["state"] == "used"
