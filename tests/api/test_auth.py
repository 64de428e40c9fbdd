"""Authentication and authorization attacks (SPEC §6.1, §6.2), each performed
against the real server, each asserting the refusal and its audit event."""

import time

from harness import make_token


def _assert_401(r, code="token_invalid"):
    assert r.status == 401, r
    assert r.header("WWW-Authenticate") == 'Bearer error="invalid_token"', r.headers
    assert r.header("Content-Type") == "application/problem+json"
    doc = r.json()
    assert doc["code"] == code, doc
    assert doc["status"] == 401 and doc["request_id"] == r.header("X-Request-ID")


def _one_event(srv, request_id, action, status):
    ev = srv.audit_events(f"request_id = '{request_id}'")
    assert len(ev) == 1, ev
    assert ev[0]["action"] == action and ev[0]["outcome"] == "denied", ev
    assert int(ev[0]["http_status"]) == status, ev
    assert ev[0]["client_addr"] == "127.0.0.1", ev
    return ev[0]


def _me(srv, token, rid):
    return srv.get("/api/v1/me", headers={"Authorization": f"Bearer {token}", "X-Request-ID": rid})


def _claims(**over):
    now = int(time.time())
    c = {"sub": "mallory", "roles": ["admin"], "iat": now, "exp": now + 600}
    c.update(over)
    return c


def test_valid_token_reaches_me(ctx):
    srv = ctx.server
    r = srv.get("/api/v1/me", headers=srv.auth("alice", ["developer"]))
    assert r.status == 200, r
    doc = r.json()
    assert doc["subject"] == "alice" and doc["roles"] == ["developer"]
    assert "schema:write" in doc["permissions"] and "acl:write" not in doc["permissions"]


def test_forged_with_wrong_secret(ctx):
    srv = ctx.server
    tok = make_token("x" * 48 + "not-the-server-secret", _claims())
    _assert_401(_me(srv, tok, "forged-1"))
    _one_event(srv, "forged-1", "auth.failed", 401)


def test_alg_none(ctx):
    srv = ctx.server
    for i, alg in enumerate(["none", "None", "NONE"]):
        tok = make_token(None, _claims(), header={"alg": alg, "typ": "JWT"}, sign=False)
        _assert_401(_me(srv, tok, f"algnone-{i}"))
        _one_event(srv, f"algnone-{i}", "auth.failed", 401)


def test_algorithm_switched(ctx):
    srv = ctx.server
    for i, alg in enumerate(["HS384", "HS512"]):
        tok = make_token(srv.secret, _claims(), alg=alg)  # right secret, wrong algorithm
        _assert_401(_me(srv, tok, f"algswitch-{i}"))
        _one_event(srv, f"algswitch-{i}", "auth.failed", 401)
    # header claims HS256 but the signature is HS512 of the right secret
    good = make_token(srv.secret, _claims(), alg="HS512")
    h, p, s = good.split(".")
    hs256_header = make_token(srv.secret, _claims()).split(".")[0]
    _assert_401(_me(srv, f"{hs256_header}.{p}.{s}", "algswitch-mix"))


def test_expired(ctx):
    srv = ctx.server
    now = int(time.time())
    tok = make_token(srv.secret, _claims(iat=now - 7200, exp=now - 3600))
    _assert_401(_me(srv, tok, "expired-1"), code="token_expired")
    _one_event(srv, "expired-1", "auth.failed", 401)
    # within the 60 s leeway it is still accepted
    tok = make_token(srv.secret, _claims(exp=now - 30))
    assert _me(srv, tok, "leeway-ok").status == 200


def test_nbf_in_future(ctx):
    srv = ctx.server
    now = int(time.time())
    _assert_401(_me(srv, make_token(srv.secret, _claims(nbf=now + 3600)), "nbf-1"))
    _one_event(srv, "nbf-1", "auth.failed", 401)
    _assert_401(_me(srv, make_token(srv.secret, _claims(iat=now + 3600)), "iat-future"))


def test_missing_sub_and_exp(ctx):
    srv = ctx.server
    c = _claims()
    del c["sub"]
    _assert_401(_me(srv, make_token(srv.secret, c), "nosub-1"))
    _one_event(srv, "nosub-1", "auth.failed", 401)
    c = _claims()
    del c["exp"]
    _assert_401(_me(srv, make_token(srv.secret, c), "noexp-1"))
    _assert_401(_me(srv, make_token(srv.secret, _claims(sub="")), "emptysub-1"))
    _assert_401(_me(srv, make_token(srv.secret, _claims(roles="admin")), "rolesstr-1"))


def test_garbage_tokens(ctx):
    srv = ctx.server
    cases = ["garbage", "a.b", "a.b.c.d", "....", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0=.c2ln",
             "!!!.???.***", make_token(srv.secret, _claims()) + "x"]
    for i, tok in enumerate(cases):
        _assert_401(_me(srv, tok, f"garbage-{i}"))
        _one_event(srv, f"garbage-{i}", "auth.failed", 401)
    # a JSON array payload instead of an object
    h = make_token(srv.secret, _claims()).split(".")[0]
    import base64, hmac, hashlib
    p = base64.urlsafe_b64encode(b'["sub","x"]').rstrip(b"=").decode()
    sig = base64.urlsafe_b64encode(hmac.new(srv.secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    _assert_401(_me(srv, f"{h}.{p}.{sig}", "garbage-array"))
    # non-bearer schemes
    r = srv.get("/api/v1/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4=", "X-Request-ID": "basic-1"})
    _assert_401(r)
    _one_event(srv, "basic-1", "auth.failed", 401)


def test_oversize_tokens(ctx):
    srv = ctx.server
    # 10 KiB: over the 8 KiB token limit, under the header limit -> 401
    big = make_token(srv.secret, _claims(pad="A" * 10 * 1024))
    _assert_401(_me(srv, big, "big-10k"))
    _one_event(srv, "big-10k", "auth.failed", 401)
    # 100 KiB: past the connection buffer, the HTTP library refuses it (431)
    # before the pipeline reads the headers; the refusal is still recorded,
    # with the raw path and the client (the request id header was never read)
    before = len(srv.audit_events("action = 'request.rejected' AND route = '/api/v1/me'"))
    huge = "A" * (100 * 1024)
    r = _me(srv, huge, "big-100k")
    assert r.status == 431, r
    deadline = time.time() + 5
    while time.time() < deadline:
        ev = srv.audit_events("action = 'request.rejected' AND route = '/api/v1/me'")
        if len(ev) == before + 1:
            break
        time.sleep(0.05)
    assert len(ev) == before + 1 and "refused_by_http_layer" in ev[-1]["detail"], ev
    # 20 KiB of headers: our own limit, a problem document and the event first
    r = srv.get("/api/v1/me", headers={"Authorization": "Bearer " + "A" * (20 * 1024), "X-Request-ID": "big-20k"})
    assert r.status == 431 and r.json()["code"] == "headers_too_large", r
    _one_event(srv, "big-20k", "request.rejected", 431)


def test_missing_token(ctx):
    srv = ctx.server
    r = srv.get("/api/v1/me", headers={"X-Request-ID": "missing-1"})
    _assert_401(r, code="token_missing")
    _one_event(srv, "missing-1", "auth.failed", 401)


def test_unmapped_route(ctx):
    srv = ctx.server
    h = srv.auth("alice", ["admin"])
    for i, path in enumerate(["/api/v1/nothing", "/", "/api", "/api/v1/me/extra", "/admin", "/HEALTH"]):
        r = srv.get(path, headers={**h, "X-Request-ID": f"unmapped-{i}"})
        assert r.status == 404, (path, r)
        assert r.json()["code"] == "not_found"
        _one_event(srv, f"unmapped-{i}", "request.rejected", 404)
    # without credentials the same routes say 401, never 404
    for i, path in enumerate(["/api/v1/nothing", "/", "/healthz", "/health/x", "/readyz"]):
        r = srv.get(path, headers={"X-Request-ID": f"unmapped-anon-{i}"})
        _assert_401(r, code="token_missing")
        _one_event(srv, f"unmapped-anon-{i}", "auth.failed", 401)


def test_public_path_prefix_tricks(ctx):
    srv = ctx.server
    tricks = ["/health/../api/v1/me", "/health%2f..", "/health%2F..%2Fapi%2Fv1%2Fme", "//api/v1/me",
              "/health/./../api/v1/me", "/health/%2e%2e/api/v1/me", "/health/.%2E/api/v1/me",
              "/./api/v1/me", "/api/v1/me/", "/api//v1/me", "/health%00", "/api/v1/me%5c",
              "/health/..%5capi", "/api/v1/%zzme", "/api/v1/me%"]
    for i, path in enumerate(tricks):
        r = srv.get(path, headers={"X-Request-ID": f"trick-{i}"})
        assert r.status == 400, (path, r)
        assert r.json()["code"] == "invalid_path", (path, r.body)
        _one_event(srv, f"trick-{i}", "request.rejected", 400)
    # the same tricks with a valid token are still 400, never the protected route
    h = srv.auth("alice", ["viewer"])
    for path in tricks:
        assert srv.get(path, headers=h).status == 400, path


def test_viewer_lacks_permission(ctx):
    srv = ctx.server
    r = srv.get("/metrics", headers={**srv.auth("vic", ["viewer"]), "X-Request-ID": "denied-1"})
    assert r.status == 403, r
    doc = r.json()
    assert doc["code"] == "forbidden" and doc["missing_permission"] == "metrics:read", doc
    assert "metrics:read" in doc["detail"]
    ev = _one_event(srv, "denied-1", "authz.denied", 403)
    assert ev["actor_sub"] == "vic"
    # unknown roles grant nothing; a role that has it passes
    assert srv.get("/metrics", headers=srv.auth("x", ["superuser", "root"])).status == 403
    r = srv.get("/metrics", headers=srv.auth("svc", ["service_account"]))
    assert r.status == 200 and "oms_http_requests_total" in r.body


def test_previous_secret_accepted_during_rotation(ctx):
    old = "k9Xw2Lq8Vz4Rt6Yp1Hs3Jd5Fg7Bn0Mc-old-secret-value-0123"
    srv = ctx.new_server(env={"JWT_PREVIOUS_SECRET": old})
    tok = make_token(old, _claims(sub="rotating"))
    assert _me(srv, tok, "rot-1").status == 200
    _assert_401(_me(srv, make_token("q" * 20 + "unrelated-secret-value-zz", _claims()), "rot-2"))


def test_issuer_and_audience(ctx):
    srv = ctx.new_server(env={"JWT_ISSUER": "https-idp-example", "JWT_AUDIENCE": "oms"})
    ok = make_token(srv.secret, _claims(iss="https-idp-example", aud="oms"))
    assert _me(srv, ok, "iss-ok").status == 200
    assert _me(srv, make_token(srv.secret, _claims(iss="https-idp-example", aud=["x", "oms"])), "aud-arr").status == 200
    _assert_401(_me(srv, make_token(srv.secret, _claims(iss="evil", aud="oms")), "iss-bad"))
    _assert_401(_me(srv, make_token(srv.secret, _claims(iss="https-idp-example", aud="other")), "aud-bad"))
    _assert_401(_me(srv, make_token(srv.secret, _claims(aud="oms")), "iss-missing"))


def test_token_cli_mints_usable_token(ctx):
    srv = ctx.server
    r = srv.run_cli("token", "--sub", "bootstrap", "--roles", "admin,auditor", "--ttl", "10m")
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    me = _me(srv, tok, "cli-token")
    assert me.status == 200 and me.json()["roles"] == ["admin", "auditor"]
    assert srv.secret not in r.stdout + r.stderr


def _openssl(*args, data=None):
    import subprocess
    r = subprocess.run(["openssl", *args], input=data, capture_output=True, check=True)
    return r.stdout


def test_rs256_and_key_confusion(ctx):
    """RS256 with JWT_PUBLIC_KEY_FILE: a token signed with the private key
    passes; an HS256 token whose HMAC key is the public key PEM (the classic
    confusion attack) and an alg:none token are refused."""
    import base64
    import json
    import os
    srv = ctx.new_server(start=False, env={"JWT_SECRET": None, "JWT_ALGORITHM": "RS256"})
    key = os.path.join(srv.tmp, "key.pem")
    pub = os.path.join(srv.tmp, "pub.pem")
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
    _openssl("pkey", "-in", key, "-pubout", "-out", pub)
    srv.env["JWT_PUBLIC_KEY_FILE"] = pub
    srv.start()
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    now = int(time.time())
    claims = b64(json.dumps({"sub": "rsa-user", "roles": ["viewer"], "exp": now + 600}).encode())
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{claims}".encode()
    sig = _openssl("dgst", "-sha256", "-sign", key, data=signing_input)
    r = srv.get("/api/v1/me", headers={"Authorization": f"Bearer {header}.{claims}.{b64(sig)}"})
    assert r.status == 200 and r.json()["subject"] == "rsa-user", r
    with open(pub, "rb") as f:
        pem = f.read()
    forged = make_token(pem, {"sub": "mallory", "roles": ["admin"], "exp": now + 600})
    _assert_401(_me(srv, forged, "confusion-1"))
    _one_event(srv, "confusion-1", "auth.failed", 401)
    _assert_401(_me(srv, make_token(None, _claims(), header={"alg": "none"}, sign=False), "rs-none"))
    # an HMAC secret next to a public-key algorithm is refused at start-up
    srv.stop()
    bad = srv.run_cli("serve", env={"JWT_SECRET": "k9Xw2Lq8Vz4Rt6Yp1Hs3Jd5Fg7Bn0Mc-zz"}, timeout=20)
    assert bad.returncode == 2 and "must not be set" in bad.stderr, bad.stderr
