"""The request pipeline: public routes, limits, raw-path rules, 404/405,
request ids, problem documents (SPEC §5)."""


def test_health_and_ready_are_public(ctx):
    srv = ctx.server
    r = srv.get("/health")
    assert r.status == 200 and r.json() == {"status": "ok"}
    r = srv.get("/ready")
    assert r.status == 200 and r.json()["status"] == "ready", r
    # with a garbage token they are still public (nothing is checked)
    assert srv.get("/health", headers={"Authorization": "Bearer junk"}).status == 200


def test_request_id_echoed_or_made(ctx):
    srv = ctx.server
    r = srv.get("/health", headers={"X-Request-ID": "client-id.123_abc"})
    assert r.header("X-Request-ID") == "client-id.123_abc"
    r = srv.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    rid = r.header("X-Request-ID")
    assert rid and rid != "bad id with spaces" and len(rid) == 32
    r = srv.get("/health", headers={"X-Request-ID": "x" * 65})
    assert len(r.header("X-Request-ID")) == 32
    r = srv.get("/api/v1/me")
    assert r.json()["request_id"] == r.header("X-Request-ID")


def test_problem_document_shape(ctx):
    srv = ctx.server
    r = srv.get("/api/v1/me")
    assert r.header("Content-Type") == "application/problem+json"
    doc = r.json()
    for k in ("type", "title", "status", "detail", "code", "request_id"):
        assert k in doc, doc


def test_wrong_method_is_405_with_allow(ctx):
    srv = ctx.server
    h = srv.auth("alice", ["admin"])
    for m in ("POST", "PUT", "DELETE", "PATCH"):
        r = srv.request(m, "/api/v1/me", headers=h)
        assert r.status == 405, (m, r)
        assert r.header("Allow") == "GET", r.headers
    r = srv.request("DELETE", "/health")
    assert r.status == 405 and r.header("Allow") == "GET"
    # without credentials a protected route answers 401 first
    assert srv.request("DELETE", "/api/v1/me").status == 401


def test_method_override_headers_ignored(ctx):
    srv = ctx.server
    h = srv.auth("alice", ["admin"])
    for name in ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"):
        r = srv.request("POST", "/api/v1/me", headers={**h, name: "GET"})
        assert r.status == 405, (name, r)
    r = srv.request("GET", "/api/v1/me", headers={**h, "X-HTTP-Method-Override": "DELETE"})
    assert r.status == 200


def test_head_on_get_route(ctx):
    srv = ctx.server
    r = srv.request("HEAD", "/health")
    assert r.status == 200 and r.body == ""


def test_uri_too_long(ctx):
    srv = ctx.server
    r = srv.get("/api/v1/" + "a" * 9000, headers={"X-Request-ID": "uri-long"})
    assert r.status == 414, r
    assert r.json()["code"] == "uri_too_long"
    assert len(srv.audit_events("request_id = 'uri-long'")) == 1


def test_headers_too_large(ctx):
    srv = ctx.server
    r = srv.get("/health", headers={"X-Filler": "f" * (20 * 1024), "X-Request-ID": "hdr-big"})
    assert r.status == 431, r
    assert r.json()["code"] == "headers_too_large"
    assert len(srv.audit_events("request_id = 'hdr-big'")) == 1


def test_body_too_large_by_content_length(ctx):
    srv = ctx.server
    h = {**srv.auth("alice", ["admin"]), "Content-Type": "application/json",
         "Content-Length": str(2 * 1024 * 1024), "X-Request-ID": "body-big"}
    head = "POST /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    r = srv.raw(head.encode() + b"{" * 100)
    assert r.status == 413, r
    assert r.json()["code"] == "payload_too_large"


def test_raw_nul_and_control_bytes(ctx):
    srv = ctx.server
    for i, target in enumerate([b"/health%00", b"/api/v1/me%00x", b"/api/v1/\x01me"]):
        r = srv.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert r.status == 400, (target, r)


def test_double_encoding_is_not_decoded_twice(ctx):
    srv = ctx.server
    h = srv.auth("alice", ["admin"])
    # %252e%252e decodes once to "%2e%2e": not a dot segment, and no such route
    r = srv.get("/health/%252e%252e/api/v1/me", headers=h)
    assert r.status == 404, r
    # an encoded letter is a different spelling of the route: not the route
    assert srv.get("/api/v1/%6De", headers=h).status == 404


def test_metrics_prometheus_text(ctx):
    srv = ctx.server
    srv.get("/health")
    r = srv.get("/metrics", headers=srv.auth("svc", ["service_account"]))
    assert r.status == 200
    assert r.header("Content-Type").startswith("text/plain")
    assert 'oms_http_requests_total{method="GET",route="/health",status="2xx"}' in r.body
    assert "oms_auth_failures_total" in r.body and "oms_http_request_duration_seconds_bucket" in r.body


def test_secret_never_logged(ctx):
    srv = ctx.server
    srv.get("/api/v1/me", headers=srv.auth("alice", ["viewer"]))
    log = srv.read_log()
    assert srv.secret not in log
    assert "eyJ" not in log  # no token either
    rows = srv.query("SELECT * FROM audit_events")
    assert not any(srv.secret in str(r) or "eyJ" in str(r) for r in rows)
