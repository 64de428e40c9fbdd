"""A read denial on a branch covers every way its content can leave (SPEC
§6.2, issue #10 items 2 and 3). A developer denied schema:read on team-a/**
must not get that content through routes without a {branch} parameter:
diffs, commit detail, copies (branch from it), merges from it, proposals,
issue links, reverts, search, index jobs, or the branch list. Deny policies on permissions of
routes without {branch} apply to the branch the operation changes (the
proposal's target), and a policy that can never match is refused.

test_every_content_route_has_a_probe walks the route table (`oms routes`):
every route needing schema:read must have a probe here proving the denial
holds, so a new content route fails this suite until it is covered."""

import json
import subprocess
import time

from harness import OMS_BIN, quote

ISSUE = {"X-Issue-ID": "SEC-2"}
SECRET = "team-a/secret"
DENIED = "u_dev"


def _h(srv, sub="admin1", roles=("admin",), **extra):
    h = srv.auth(sub, roles)
    h.update(ISSUE)
    h.update(extra)
    return h


def _dev(srv, **extra):
    return _h(srv, DENIED, ("developer",), **extra)


def _ok(r, status):
    assert r.status == status, r
    return r


def _setup(srv):
    """team-a/secret holds a resource only there; u_dev may not read it."""
    _ok(srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": SECRET, "from": "main"}), 201)
    _ok(srv.request("POST", f"/api/v1/schemas/{quote(SECRET)}/shared-properties", headers=_h(srv),
                    json_body={"api_name": "SecretThing", "type": "string", "description": "classified"}), 201)
    _ok(srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": "dev/own", "from": "main"}), 201)
    _ok(srv.request("POST", "/api/v1/acl/policies", headers=_h(srv),
                    json_body={"subject": f"user:{DENIED}", "effect": "deny", "permissions": ["schema:read"],
                               "branches": ["team-a/**"]}), 201)
    head = srv.get(f"/api/v1/branches/{quote(SECRET)}", headers=_h(srv)).json()["head"]
    pid = _ok(srv.request("POST", "/api/v1/proposals", headers=_h(srv),
                          json_body={"source": SECRET, "target": "main", "title": "secret"}), 201).json()["id"]
    return head, pid


def _denied(r):
    assert r.status == 403, r
    body = r.json()
    assert body["code"] == "forbidden" and body["missing_permission"] == "schema:read", body
    assert "SecretThing" not in r.body and "classified" not in r.body, r
    return r


def _probes(srv, head, pid):
    """Route pattern -> a request by the denied developer that must not leak."""
    main_head = srv.get("/api/v1/branches/main", headers=_h(srv)).json()["head"]
    d = _dev(srv)
    job = _ok(srv.request("POST", f"/api/v1/branches/{quote(SECRET)}/index/rebuild", headers=_h(srv)), 202).json()["id"]

    def schemas_export():
        _denied(srv.get(f"/api/v1/schemas/{quote(SECRET)}", headers=d))

    def schemas_list():
        _denied(srv.get(f"/api/v1/schemas/{quote(SECRET)}/shared-properties", headers=d))

    def schemas_get():
        _denied(srv.get(f"/api/v1/schemas/{quote(SECRET)}/shared-properties/SecretThing", headers=d))

    def validate():
        _denied(srv.request("POST", f"/api/v1/schemas/{quote(SECRET)}/validate", headers=d,
                            json_body={"operations": []}))

    def branch_list():
        r = _ok(srv.get("/api/v1/branches", headers=d), 200)
        names = [b["name"] for b in r.json()["items"]]
        assert SECRET not in names and "main" in names and "dev/own" in names, names
        assert head not in r.body

    def branch_get():
        _denied(srv.get(f"/api/v1/branches/{quote(SECRET)}", headers=d))

    def branch_history():
        _denied(srv.get(f"/api/v1/branches/{quote(SECRET)}/commits", headers=d))

    def commit_get():
        _denied(srv.get(f"/api/v1/commits/{head}", headers=d))
        _ok(srv.get(f"/api/v1/commits/{main_head}", headers=d), 200)  # on a branch it may read

    def diff():
        _denied(srv.get(f"/api/v1/diff?from=main&to={quote(SECRET)}", headers=d))
        _denied(srv.get(f"/api/v1/diff?from={quote(SECRET)}&to=main", headers=d))
        _denied(srv.get(f"/api/v1/diff?from=main&to={head}", headers=d))

    def issue_commits():
        r = _ok(srv.get("/api/v1/issues/SEC-2/commits", headers=d), 200)
        assert head not in r.body, r
        assert r.json()["items"] == [] or all(c["id"] != head for c in r.json()["items"])
        # the same list for someone who may read it does hold the commit
        assert head in srv.get("/api/v1/issues/SEC-2/commits", headers=_h(srv)).body

    def proposal_list():
        r = _ok(srv.get("/api/v1/proposals", headers=d), 200)
        assert pid not in r.body, r
        assert pid in srv.get("/api/v1/proposals", headers=_h(srv)).body

    def proposal_get():
        _denied(srv.get(f"/api/v1/proposals/{pid}", headers=d))

    def proposal_comments():
        # a review's comments quote the resources of both branches
        _denied(srv.get(f"/api/v1/proposals/{pid}/comments", headers=d))
        _denied(srv.request("POST", f"/api/v1/proposals/{pid}/comments", headers=d, json_body={"body": "hello"}))
        _ok(srv.get(f"/api/v1/proposals/{pid}/comments", headers=_h(srv)), 200)

    def search():
        _denied(srv.get(f"/api/v1/search/{quote(SECRET)}?q=secret", headers=d))
        # the same words on a branch the developer may read find nothing of it
        r = _ok(srv.get("/api/v1/search/main?q=secret+classified", headers=d), 200)
        assert r.json()["items"] == [] and "SecretThing" not in r.body, r
        # someone allowed finds it there (the probe is not vacuous)
        assert "SecretThing" in _ok(srv.get(f"/api/v1/search/{quote(SECRET)}?q=secret", headers=_h(srv)), 200).body

    _ok(srv.request("POST", "/api/v1/tags", headers=_h(srv), json_body={"name": "sec-v1", "commit": head}), 201)

    def tag_list():
        r = _ok(srv.get("/api/v1/tags?limit=1000", headers=d), 200)
        assert "sec-v1" not in r.body and head not in r.body, r
        assert "sec-v1" in srv.get("/api/v1/tags?limit=1000", headers=_h(srv)).body

    def tag_get():
        _denied(srv.get("/api/v1/tags/sec-v1", headers=d))
        # nor through ?at= on a branch the developer may read (SPEC §4)
        _denied(srv.get("/api/v1/schemas/main/shared-properties/SecretThing?at=sec-v1", headers=d))
        _denied(srv.get(f"/api/v1/schemas/main?at={head}", headers=d))
        _denied(srv.get("/api/v1/diff?from=main&to=sec-v1", headers=d))
        _ok(srv.get("/api/v1/tags/sec-v1", headers=_h(srv)), 200)

    def index_job_get():
        # a rebuild's progress names its branch's commit and size
        _denied(srv.get(f"/api/v1/index-jobs/{job}", headers=d))
        _ok(srv.get(f"/api/v1/index-jobs/{job}", headers=_h(srv)), 200)

    def events():
        # the pull feed (SPEC §13): none of the branch's events, nor a
        # proposal's from it into a branch the developer may read
        deadline = time.time() + 10
        while srv.events_unpositioned() and time.time() < deadline:
            time.sleep(0.02)
        def whole_feed(headers):
            # every page: the shared server holds the events of every
            # module run before this one, more than one page of them
            body, after = "", "0"
            while True:
                r = _ok(srv.get(f"/api/v1/events?limit=1000&after={after}", headers=headers), 200)
                if r.json()["next_cursor"] is None:  # nothing after `after`: the end
                    return body
                body, after = body + r.body, r.json()["next_cursor"]

        feed = whole_feed(d)
        assert SECRET not in feed and "SecretThing" not in feed and pid not in feed, feed[-500:]
        r = _ok(srv.get(f"/api/v1/events?limit=1000&branch={quote(SECRET)}", headers=d), 200)
        assert r.json()["items"] == [], r
        feed = whole_feed(_h(srv))
        assert SECRET in feed and pid in feed

    return {
        "/api/v1/events": events,
        "/api/v1/schemas/{branch}": schemas_export,
        "/api/v1/schemas/{branch}/{kind}": schemas_list,
        "/api/v1/schemas/{branch}/{kind}/{api_name}": schemas_get,
        "/api/v1/schemas/{branch}/validate": validate,
        "/api/v1/branches": branch_list,
        "/api/v1/branches/{branch}": branch_get,
        "/api/v1/branches/{branch}/commits": branch_history,
        "/api/v1/commits/{id}": commit_get,
        "/api/v1/diff": diff,
        "/api/v1/issues/{key}/commits": issue_commits,
        "/api/v1/proposals": proposal_list,
        "/api/v1/proposals/{id}": proposal_get,
        "/api/v1/proposals/{id}/comments": proposal_comments,
        "/api/v1/search/{branch}": search,
        "/api/v1/index-jobs/{id}": index_job_get,
        "/api/v1/tags": tag_list,
        "/api/v1/tags/{name}": tag_get,
    }


def test_every_content_route_has_a_probe(ctx):
    srv = ctx.server
    head, pid = _setup(srv)
    routes = [json.loads(line) for line in
              subprocess.run([OMS_BIN, "routes"], capture_output=True, text=True, check=True).stdout.splitlines()]
    content = sorted({r["pattern"] for r in routes if r["method"] == "GET" and r["permission"] == "schema:read"}
                     | {r["pattern"] for r in routes if r["permission"] == "schema:read"})
    probes = _probes(srv, head, pid)
    missing = [p for p in content if p not in probes]
    assert not missing, f"content routes without a read-denial probe: {missing}"
    for pattern in content:
        try:
            probes[pattern]()
        except AssertionError as e:
            raise AssertionError(f"{pattern}: {e}") from e
    # every refusal above is an audited denial
    denials = srv.audit_events(f"action = 'authz.denied' AND actor_sub = '{DENIED}'")
    assert len(denials) == 19, [(e["route"], e["http_status"]) for e in denials]


def test_copies_merges_proposals_and_reverts_from_a_denied_branch(ctx):
    srv = ctx.new_server()
    head, _ = _setup(srv)
    d = _dev(srv)
    # a copy of the branch, by name or by its head commit
    _denied(srv.request("POST", "/api/v1/branches", headers=d, json_body={"name": "dev/copy", "from": SECRET}))
    _denied(srv.request("POST", "/api/v1/branches", headers=d, json_body={"name": "dev/copy2", "from": head}))
    names = [b["name"] for b in srv.get("/api/v1/branches", headers=_h(srv)).json()["items"]]
    assert "dev/copy" not in names and "dev/copy2" not in names
    # merging it into a branch the developer may write
    _denied(srv.request("POST", "/api/v1/branches/dev%2Fown/merge", headers=d, json_body={"source": SECRET}))
    _denied(srv.request("POST", "/api/v1/branches/dev%2Fown/merge", headers=d, json_body={"source": head}))
    assert srv.get("/api/v1/schemas/dev%2Fown/shared-properties/SecretThing", headers=d).status == 404
    # a proposal from it
    _denied(srv.request("POST", "/api/v1/proposals", headers=d,
                        json_body={"source": SECRET, "target": "dev/own", "title": "leak"}))
    # reverting its commit shows the commit's documents
    _denied(srv.request("POST", "/api/v1/branches/dev%2Fown/revert", headers=d, json_body={"commit": head}))
    # the same operations by someone allowed work (the probes are not vacuous)
    _ok(srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": "ops/copy", "from": head}), 201)
    assert srv.get("/api/v1/schemas/ops%2Fcopy/shared-properties/SecretThing", headers=_h(srv)).status == 200
    # once the copy exists on a branch the developer may read, its commit is readable there
    assert srv.get(f"/api/v1/commits/{head}", headers=d).status == 200


def test_deny_on_a_permission_without_branch_applies_to_the_target(ctx):
    srv = ctx.new_server()
    _ok(srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": "feature/x", "from": "main"}), 201)
    _ok(srv.request("POST", "/api/v1/schemas/feature%2Fx/shared-properties", headers=_h(srv, "author", ("developer",)),
                    json_body={"api_name": "Thing", "type": "string"}), 201)
    pid = _ok(srv.request("POST", "/api/v1/proposals", headers=_h(srv, "author", ("developer",)),
                          json_body={"source": "feature/x", "target": "main", "title": "t"}), 201).json()["id"]
    for perm in ("proposal:merge", "proposal:review"):
        _ok(srv.request("POST", "/api/v1/acl/policies", headers=_h(srv),
                        json_body={"subject": "user:rita", "effect": "deny", "permissions": [perm],
                                   "branches": ["main"]}), 201)
    rita = _h(srv, "rita", ("reviewer",))
    r = srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=rita)
    assert r.status == 403 and r.json()["missing_permission"] == "proposal:review" and r.json().get("denied_by"), r
    _ok(srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=_h(srv, "ron", ("reviewer",))), 200)
    r = srv.request("POST", f"/api/v1/proposals/{pid}/merge", headers=rita, json_body={})
    assert r.status == 403 and r.json()["missing_permission"] == "proposal:merge", r
    main_before = srv.get("/api/v1/branches/main", headers=_h(srv)).json()["head"]
    assert srv.get(f"/api/v1/proposals/{pid}", headers=_h(srv)).json()["state"] == "approved"
    # a reviewer without the deny merges it
    _ok(srv.request("POST", f"/api/v1/proposals/{pid}/merge", headers=_h(srv, "ron", ("reviewer",)), json_body={}), 200)
    assert srv.get("/api/v1/branches/main", headers=_h(srv)).json()["head"] != main_before
    # proposal:create denied on a target: creating a proposal into it is refused
    _ok(srv.request("POST", "/api/v1/acl/policies", headers=_h(srv),
                    json_body={"subject": "user:author", "effect": "deny", "permissions": ["proposal:create"],
                               "branches": ["main"]}), 201)
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv, "author", ("developer",)),
                    json_body={"source": "feature/x", "target": "main", "title": "t2"})
    assert r.status == 403 and r.json()["missing_permission"] == "proposal:create", r
    # branch:create denied on a name pattern: creating such a branch is refused
    _ok(srv.request("POST", "/api/v1/acl/policies", headers=_h(srv),
                    json_body={"subject": "user:author", "effect": "deny", "permissions": ["branch:create"],
                               "branches": ["release/**"]}), 201)
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv, "author", ("developer",)),
                    json_body={"name": "release/1", "from": "main"})
    assert r.status == 403 and r.json()["missing_permission"] == "branch:create", r
    _ok(srv.request("POST", "/api/v1/branches", headers=_h(srv, "author", ("developer",)),
                    json_body={"name": "feature/y", "from": "main"}), 201)


def test_a_policy_that_can_never_match_is_refused(ctx):
    srv = ctx.server
    for perm in ("audit:read", "acl:write", "metrics:read", "compliance:read", "alert:read", "lock:read"):
        r = srv.request("POST", "/api/v1/acl/policies", headers=_h(srv),
                        json_body={"subject": "role:auditor", "effect": "deny", "permissions": [perm],
                                   "branches": ["main"]})
        assert r.status == 400 and perm in r.json()["detail"] and "never" in r.json()["detail"], r
    # the same permissions everywhere ([]) are fine
    _ok(srv.request("POST", "/api/v1/acl/policies", headers=_h(srv),
                    json_body={"subject": "user:nobody", "effect": "deny", "permissions": ["audit:read"],
                               "branches": []}), 201)


def test_override_permissions_apply_to_the_override_branch(ctx):
    """override:request and override:approve are decided on the branch the
    override is for (routes without {branch}, SPEC §6.2)."""
    srv = ctx.new_server()
    body = {"kind": "protected_branch", "branch": "main", "incident": "INC-77", "ttl_seconds": 600,
            "justification": "Production outage: the payments ontology needs an urgent fix on main today."}
    for perm, subject in (("override:request", "user:dora"), ("override:approve", "user:sam")):
        _ok(srv.request("POST", "/api/v1/acl/policies", headers=_h(srv),
                        json_body={"subject": subject, "effect": "deny", "permissions": [perm],
                                   "branches": ["main"]}), 201)
    r = srv.request("POST", "/api/v1/overrides", headers=_h(srv, "dora", ("developer",)), json_body=body)
    assert r.status == 403 and r.json()["missing_permission"] == "override:request", r
    assert srv.query("SELECT count(*) FROM overrides")[0][0] in (0, "0")
    oid = _ok(srv.request("POST", "/api/v1/overrides", headers=_h(srv, "dev2", ("developer",)), json_body=body),
              201).json()["id"]
    r = srv.request("POST", f"/api/v1/overrides/{oid}/approve", headers=_h(srv, "sam", ("security_officer",)))
    assert r.status == 403 and r.json()["missing_permission"] == "override:approve", r
    r = srv.request("POST", f"/api/v1/overrides/{oid}/reject", headers=_h(srv, "sam", ("security_officer",)))
    assert r.status == 403 and r.json()["missing_permission"] == "override:approve", r
    assert srv.get(f"/api/v1/overrides/{oid}", headers=_h(srv)).json()["state"] == "pending"
    # another security officer decides normally
    r = _ok(srv.request("POST", f"/api/v1/overrides/{oid}/approve", headers=_h(srv, "sue", ("security_officer",))), 200)
    assert r.json()["state"] == "approved", r
