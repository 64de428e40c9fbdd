"""The web console (SPEC §14) in headless Chromium against the real server
on SQLite: the console's files and headers, then tests/browser/console.test.mjs
(puppeteer-core) signs in, browses, searches, edits and commits, opens a
proposal, resolves its conflict, has a second user review and merge it,
watches a lock's progress, filters and verifies the audit log, and checks
that stored XSS payloads render as text. Screenshots go to
tests/browser/artifacts/. SQLite only: the PostgreSQL pass reports SKIP."""

import json
import os
import subprocess

from harness import Skip, quote

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER = os.path.join(os.path.dirname(HERE), "browser")
XSS = '<img src=x onerror="window.__xss=1">'


def _need_sqlite(ctx):
    if ctx.backend != "sqlite":
        raise Skip("the browser tests run on SQLite only")


def test_console_files_and_headers(ctx):
    srv = ctx.server
    r = srv.get("/ui/")
    assert r.status == 200 and r.header("Content-Type").startswith("text/html"), r
    csp = r.header("Content-Security-Policy")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, csp
    assert r.header("X-Content-Type-Options") == "nosniff" and r.header("Referrer-Policy") == "no-referrer"
    assert r.header("X-Frame-Options") == "DENY" and r.header("Cache-Control") == "no-store"
    assert "<script>" not in r.body and "<script type=\"module\" src=\"/ui/app.js\">" in r.body
    assert srv.get("/ui").status == 308 and srv.get("/ui").header("Location") == "/ui/"
    assert srv.get("/ui/app.js").header("Content-Type").startswith("text/javascript")
    assert srv.get("/ui/index.html").status == 404  # one spelling: /ui/
    assert srv.get("/ui/nope.js").status == 404
    assert srv.get("/ui/app.js?v=1").status == 400
    assert srv.get("/ui/?code=a&state=b").status == 200
    assert srv.get("/ui/?x=1").status == 400
    # other methods are not public: 401 without a token, 405 with one
    assert srv.request("POST", "/ui/app.js", body="{}", headers={"Content-Type": "application/json"}).status == 401
    assert srv.request("POST", "/ui/app.js", body="{}", headers={"Content-Type": "application/json",
                                                                  **srv.auth()}).status == 405
    assert srv.get("/ui/a%2Fb").status == 400
    # data never leaves without a token: the console's API calls carry it
    assert srv.get("/api/v1/schemas/main").status == 401


def _ok(r, *codes):
    assert r.status in (codes or (200, 201)), r
    return r.json() if r.body else None


def _fixture(srv):
    """Branches staging <- feature/console, a conflicting shared property,
    XSS payloads in a description, a display name and a commit message."""
    dev = srv.auth("dev", ("developer",))
    w = lambda issue="PROJ-1", msg=None: {**dev, "X-Issue-ID": issue, **({"X-Commit-Message": msg} if msg else {})}  # noqa: E731
    _ok(srv.request("POST", "/api/v1/branches", headers=dev, json_body={"name": "staging", "from": "main"}))
    st = quote("staging")
    _ok(srv.request("POST", f"/api/v1/schemas/{st}/changes", headers=w(), json_body={
        "message": "Base model PROJ-1 " + XSS, "operations": [
            {"op": "create", "kind": "object-types", "document": {
                "api_name": "Person", "display_name": "Person " + XSS, "description": "A human. " + XSS,
                "properties": [{"api_name": "id", "type": "string", "required": True},
                               {"api_name": "name", "type": "string", "description": XSS}],
                "primary_key": "id", "title_property": "name"}},
            {"op": "create", "kind": "object-types", "document": {
                "api_name": "Company", "properties": [{"api_name": "id", "type": "string", "required": True}],
                "primary_key": "id"}},
            {"op": "create", "kind": "link-types", "document": {
                "api_name": "employs", "from": "Company", "to": "Person", "cardinality": "one_to_many"}},
            {"op": "create", "kind": "shared-properties", "document": {
                "api_name": "Conflicted", "type": "string", "description": "base words"}},
            {"op": "create", "kind": "shared-properties", "document": {
                "api_name": "Score", "type": "integer", "status": "active"}}]}))
    # one reviewer may merge a breaking change into staging
    _ok(srv.request("PUT", f"/api/v1/branches/{st}/settings", headers=srv.auth("adm", ("admin",)),
                    json_body={"breaking_change_approvals": 1}))
    _ok(srv.request("POST", "/api/v1/branches", headers=dev, json_body={"name": "feature/console", "from": "staging"}))
    fc = quote("feature/console")
    for b, words in ((st, "staging words"), (fc, "feature words")):
        cur = _ok(srv.get(f"/api/v1/schemas/{b}/shared-properties/Conflicted", headers=dev))
        doc = {k: v for k, v in cur.items() if k != "meta"}
        doc["description"] = words
        _ok(srv.request("PUT", f"/api/v1/schemas/{b}/shared-properties/Conflicted",
                        headers={**w(), "If-Match": '"%s"' % cur["meta"]["etag"]}, json_body=doc))
    # a breaking change on the feature branch: an active property changes type
    cur = _ok(srv.get(f"/api/v1/schemas/{fc}/shared-properties/Score", headers=dev))
    doc = {k: v for k, v in cur.items() if k != "meta"}
    doc["type"] = "string"
    _ok(srv.request("PUT", f"/api/v1/schemas/{fc}/shared-properties/Score",
                    headers={**w(), "If-Match": '"%s"' % cur["meta"]["etag"]}, json_body=doc))


def test_console_in_chromium(ctx):
    _need_sqlite(ctx)
    if not os.path.isdir(os.path.join(BROWSER, "node_modules")):
        raise Skip("tests/browser/node_modules missing (scripts/install-deps.sh runs npm ci)")
    if not os.path.exists("/usr/bin/chromium"):
        raise Skip("/usr/bin/chromium missing")
    srv = ctx.new_server()
    _fixture(srv)
    tokens = {name: srv.token(name, roles) for name, roles in (
        ("dev", ("developer",)), ("rev", ("reviewer",)), ("aud", ("auditor",)), ("svc", ("service_account",)),
        ("adm", ("admin",)))}
    env = {**os.environ, "OMS_URL": f"http://127.0.0.1:{srv.port}", "OMS_TOKENS": json.dumps(tokens)}
    p = subprocess.run(["node", "console.test.mjs"], cwd=BROWSER, env=env, capture_output=True, text=True, timeout=600)
    print(p.stdout[-6000:])
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-3000:]


def test_console_oidc_sign_in_with_pkce(ctx):
    """web/oidc.js against a fake provider, in node (tests/browser/oidc.test.mjs)."""
    if not os.path.isdir(os.path.join(BROWSER, "node_modules")):
        raise Skip("tests/browser/node_modules missing")
    p = subprocess.run(["node", "oidc.test.mjs"], cwd=BROWSER, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
