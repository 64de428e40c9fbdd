"""Identity in production (SPEC §6.1, issue #17), against the real server on
both backends: keys from an identity provider (JWKS URL, OpenID Connect
discovery, JWKS file) for RS256, ES256 and EdDSA; key rotation without a
restart; the unknown-`kid` refetch limit; the provider down at start and
during a refresh; algorithm and key-type confusion; `jku`/`x5u`/`jwk` never
fetched; issuer and audience; provider groups mapped to roles; HMAC secret
rotation under load with SIGHUP; file-change reloads and bad files;
fingerprints in `oms config check`; `oms token` and unknown roles.

The identity provider is a small http.server in a thread on a free
127.0.0.1 port; the tests change its answers and count what it was asked.
Tokens are signed with python3-cryptography (a Debian package)."""

import base64
import hashlib
import json
import os
import secrets
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import harness
from harness import b64url, make_token

AUD = "oms-api"


# ---- keys and tokens ----

def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(i, n=None):
    n = n or (i.bit_length() + 7) // 8
    return i.to_bytes(n, "big")


class Key:
    """A private key with the JWK of its public half."""

    def __init__(self, kind, kid):
        self.kind, self.kid = kind, kid
        if kind == "RSA":
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
        elif kind == "EC":
            self.priv = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
        else:
            self.priv = ed25519.Ed25519PrivateKey.generate()
            self.alg = "EdDSA"
        self.pub = self.priv.public_key()

    def jwk(self, **extra):
        if self.kind == "RSA":
            n = self.pub.public_numbers()
            j = {"kty": "RSA", "n": _b64(_int_bytes(n.n)), "e": _b64(_int_bytes(n.e))}
        elif self.kind == "EC":
            n = self.pub.public_numbers()
            j = {"kty": "EC", "crv": "P-256", "x": _b64(_int_bytes(n.x, 32)), "y": _b64(_int_bytes(n.y, 32))}
        else:
            raw = self.pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            j = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}
        j["kid"] = self.kid
        j.update(extra)
        return j

    def sign(self, data):
        if self.kind == "RSA":
            return self.priv.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if self.kind == "EC":
            r, s = decode_dss_signature(self.priv.sign(data, ec.ECDSA(hashes.SHA256())))
            return _int_bytes(r, 32) + _int_bytes(s, 32)
        return self.priv.sign(data)

    def spki_der(self):
        return self.pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def pem(self):
        return self.pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


_KEYS = {}


def key(kind, kid):
    """Keys are slow to make (RSA): one per (kind, kid) for the module."""
    if (kind, kid) not in _KEYS:
        _KEYS[(kind, kid)] = Key(kind, kid)
    return _KEYS[(kind, kid)]


def jws(k, claims, alg=None, kid="default", extra_header=None):
    header = {"alg": alg or k.alg, "typ": "JWT"}
    if kid:
        header["kid"] = k.kid if kid == "default" else kid
    header.update(extra_header or {})
    signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(claims))}"
    return f"{signing_input}.{_b64(k.sign(signing_input.encode()))}"


def claims(idp, sub="alice", roles=("viewer",), **over):
    now = int(time.time())
    c = {"sub": sub, "iss": idp.issuer, "aud": AUD, "iat": now, "exp": now + 600, "roles": list(roles)}
    c.update(over)
    return c


def bearer(tok):
    return {"Authorization": f"Bearer {tok}"}


# ---- the identity provider ----

class IdP:
    """OpenID Connect discovery and a JWKS, Keycloak-shaped paths. Every
    request is logged (time, path); `status` other than 200 answers every
    request with it (the provider is down)."""

    def __init__(self, keys=(), max_age=3600):
        self.port = harness.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = self.base + "/realms/oms"
        self.certs_path = "/realms/oms/protocol/openid-connect/certs"
        self.certs_url = self.base + self.certs_path
        self.discovery_path = "/realms/oms/.well-known/openid-configuration"
        self.keys = [k.jwk() for k in keys]
        self.max_age = max_age
        self.status = 200
        self.attacker_jwks = None
        self.lock = threading.Lock()
        self.log = []
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with idp.lock:
                    idp.log.append((time.monotonic(), self.path))
                    status, keys, max_age = idp.status, list(idp.keys), idp.max_age
                if status != 200:
                    return self._send(status, {"error": "down"})
                if self.path == idp.discovery_path:
                    return self._send(200, {"issuer": idp.issuer, "jwks_uri": idp.certs_url,
                                            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"]})
                if self.path == idp.certs_path:
                    return self._send(200, {"keys": keys}, {"Cache-Control": f"public, max-age={max_age}"})
                if self.path.startswith("/attacker/") and idp.attacker_jwks:
                    return self._send(200, idp.attacker_jwks)
                return self._send(404, {"error": "not found"})

            def _send(self, status, doc, headers=None):
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set_keys(self, keys):
        with self.lock:
            self.keys = [k.jwk() if isinstance(k, Key) else k for k in keys]

    def fetches(self, path=None, since=0.0):
        path = path or self.certs_path
        with self.lock:
            return [t for t, p in self.log if p == path and t >= since]

    def paths(self):
        with self.lock:
            return [p for _, p in self.log]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _env(idp, mode="oidc", **over):
    env = {"JWT_SECRET": None, "JWT_ALGORITHM": "RS256,ES256,EdDSA", "JWT_ISSUER": idp.issuer,
           "JWT_AUDIENCE": AUD, "JWT_JWKS_TIMEOUT_MS": "1000"}
    if mode == "oidc":
        env["JWT_OIDC_ISSUER"] = idp.issuer
    else:
        env["JWT_JWKS_URL"] = idp.certs_url
    env.update(over)
    return env


def _wait(pred, timeout=15.0, step=0.1, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def _me(srv, tok):
    return srv.get("/api/v1/me", headers=bearer(tok))


def _assert_401(r, code="token_invalid"):
    """Every token refused here is unexpired: the code is token_invalid."""
    assert r.status == 401, r
    assert r.header("WWW-Authenticate") == 'Bearer error="invalid_token"', r.headers
    assert r.json()["code"] == code, r


def _events(srv, action):
    return srv.audit_events(f"action = '{action}'")


def _detail(ev):
    return json.loads(ev["detail"]) if ev["detail"] else {}


def _refused(srv, env, needle):
    """`oms serve` exits 2 with one line naming the problem."""
    r = srv.run_cli("serve", env=env, timeout=30)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and needle in lines[0], r.stderr
    return lines[0]


# ---- key sets from a provider ----

def test_oidc_discovery_and_three_algorithms(ctx):
    """Keys of three types from one provider, each chosen by kid; the
    discovery document is read once, the key set once, at start."""
    ks = [key("RSA", "rsa-1"), key("EC", "ec-1"), key("OKP", "ed-1")]
    idp = IdP(ks)
    try:
        srv = ctx.new_server(env=_env(idp))
        assert len(idp.fetches(idp.discovery_path)) == 1 and len(idp.fetches()) == 1, idp.paths()
        for k in ks:
            r = _me(srv, jws(k, claims(idp, sub=f"user-{k.alg}", roles=["developer"])))
            assert r.status == 200, (k.alg, r)
            assert r.json()["subject"] == f"user-{k.alg}" and r.json()["roles"] == ["developer"], r
        ev = _events(srv, "jwks.refresh")
        assert ev and ev[0]["outcome"] == "success", ev
        d = _detail(ev[0])
        assert sorted(x["kid"] for x in d["keys"]) == ["ec-1", "ed-1", "rsa-1"], d
        assert d["trigger"] == "start" and d["source"] == idp.issuer, d
        # the fingerprint is the SHA-256 of the DER public key
        fp = {x["kid"]: x["sha256"] for x in d["keys"]}
        assert fp["rsa-1"] == hashlib.sha256(ks[0].spki_der()).hexdigest()[:16], fp
    finally:
        idp.stop()


def test_key_rotation_without_restart(ctx):
    """A new kid appears (picked up by the first token naming it), then the
    old key leaves the set (picked up at the set's max-age): no restart."""
    old, new = key("RSA", "rsa-1"), key("RSA", "rsa-2")
    idp = IdP([old], max_age=1)
    try:
        srv = ctx.new_server(env=_env(idp, mode="url", JWT_JWKS_REFETCH_SECONDS="1"))
        t_old = jws(old, claims(idp, sub="old"))
        t_new = jws(new, claims(idp, sub="new"))
        assert _me(srv, t_old).status == 200
        idp.set_keys([old, new])
        r = _me(srv, t_new)  # unknown kid: one refetch, then the key is known
        assert r.status == 200 and r.json()["subject"] == "new", r
        assert _me(srv, t_old).status == 200
        idp.set_keys([new])
        _wait(lambda: _me(srv, t_old).status == 401, timeout=15, what="the old key to leave the set")
        _assert_401(_me(srv, t_old))
        assert _me(srv, t_new).status == 200
        changes = [_detail(e) for e in _events(srv, "jwks.refresh") if e["outcome"] == "success"]
        assert any([a["kid"] for a in d["added"]] == ["rsa-2"] and d["trigger"] == "unknown_kid" for d in changes), changes
        assert any([a["kid"] for a in d["removed"]] == ["rsa-1"] for d in changes), changes
    finally:
        idp.stop()


def _flood(srv, tokens, threads=4):
    statuses = []
    lock = threading.Lock()

    def run(chunk):
        for t in chunk:
            s = _me(srv, t).status
            with lock:
                statuses.append(s)

    ths = [threading.Thread(target=run, args=(tokens[i::threads],)) for i in range(threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return statuses


def test_unknown_kid_refetch_is_limited(ctx):
    """A flood of tokens naming unknown kids: with the default interval, one
    fetch in all (of 30 s); with a 2 s interval, fetches at least 2 s
    apart; every such token is refused."""
    k = key("RSA", "rsa-1")
    idp = IdP([k])
    try:
        srv = ctx.new_server(env=_env(idp, mode="url"))
        assert len(idp.fetches()) == 1
        t0 = time.monotonic()
        tokens = [jws(k, claims(idp), kid=f"unknown-{i}-{secrets.token_hex(4)}") for i in range(120)]
        statuses = _flood(srv, tokens)
        assert time.monotonic() - t0 < 30, "the flood must fit in one interval for this check"
        assert statuses and set(statuses) == {401}, set(statuses)
        during = idp.fetches(since=t0)
        assert len(during) == 1, f"{len(during)} fetches for {len(tokens)} unknown kids"
        assert _me(srv, jws(k, claims(idp))).status == 200

        srv2 = ctx.new_server(env=_env(idp, mode="url", JWT_JWKS_REFETCH_SECONDS="2"))
        t1 = time.monotonic()
        stop = t1 + 5.0
        statuses = []
        while time.monotonic() < stop:
            statuses += _flood(srv2, [jws(k, claims(idp), kid=f"x-{secrets.token_hex(6)}") for _ in range(8)])
        during = idp.fetches(since=t1)
        gaps = [b - a for a, b in zip(during, during[1:])]
        assert set(statuses) == {401}
        assert 2 <= len(during) <= 4, (len(during), gaps)  # 5 s at one per 2 s (+ the one at t1)
        assert all(g >= 1.9 for g in gaps), gaps
    finally:
        idp.stop()


def test_provider_down_at_start_fails_closed(ctx):
    """No key set was ever loaded: the server runs, answers /health, and
    refuses every token; the outage is audited and alerted; when the
    provider comes back, tokens are accepted without a restart."""
    k = key("EC", "ec-1")
    idp = IdP([k])
    idp.status = 503
    try:
        srv = ctx.new_server(env=_env(idp, JWT_JWKS_REFETCH_SECONDS="1"))
        assert srv.get("/health").status == 200
        tok = jws(k, claims(idp, roles=["admin"]))
        for _ in range(3):
            _assert_401(_me(srv, tok))
        ev = _events(srv, "jwks.refresh")
        assert ev and ev[0]["outcome"] == "failure" and "HTTP 503" in _detail(ev[0])["error"], ev
        rules = [r[0] for r in srv.query("SELECT rule FROM alerts")]
        assert rules.count("jwks_unavailable") == 1, rules
        idp.status = 200
        _wait(lambda: _me(srv, tok).status == 200, timeout=20, what="tokens after the provider came back")
        d = [_detail(e) for e in _events(srv, "jwks.refresh") if e["outcome"] == "success"]
        assert d and d[-1]["recovered_after_failures"] >= 1, d
    finally:
        idp.stop()


def test_provider_down_during_refresh_keeps_last_good_set(ctx):
    k = key("OKP", "ed-1")
    idp = IdP([k])
    try:
        srv = ctx.new_server(env=_env(idp))
        tok = jws(k, claims(idp, sub="ann", roles=["auditor"]))
        assert _me(srv, tok).status == 200
        idp.status = 500
        n = len(idp.fetches())
        srv.proc.send_signal(signal.SIGHUP)  # refetch now
        _wait(lambda: any(e["outcome"] == "failure" for e in _events(srv, "jwks.refresh")), what="the failed refresh")
        assert len(idp.fetches()) > n
        assert _me(srv, tok).status == 200  # the last good set stays
        r = srv.get("/api/v1/alerts?rule=jwks_refresh_failed", headers=bearer(tok))
        assert r.status == 200, r
        items = r.json()["items"]
        assert len(items) == 1 and items[0]["severity"] == "warning", items
        assert "HTTP 500" in items[0]["detail"]["error"] and items[0]["detail"]["trigger"] == "sighup", items
        assert "the last good key set stays in use" in srv.read_log()
        # a config.reload event records the SIGHUP and the refetch it asked for
        rel = [_detail(e) for e in _events(srv, "config.reload")]
        assert rel and rel[-1]["trigger"] == "sighup" and rel[-1]["jwks_refetch"] == idp.issuer, rel
    finally:
        idp.stop()


# ---- attacks ----

def test_algorithm_and_key_type_confusion(ctx):
    rsa_k, ec_k, ed_k = key("RSA", "rsa-1"), key("EC", "ec-1"), key("OKP", "ed-1")
    idp = IdP([rsa_k, ec_k, ed_k])
    try:
        srv = ctx.new_server(env=_env(idp, mode="url"))
        c = claims(idp, sub="mallory", roles=["admin"])
        forged = {
            "rs256-with-ec-kid": jws(rsa_k, c, kid="ec-1"),
            "es256-with-rsa-kid": jws(ec_k, c, kid="rsa-1"),
            "eddsa-with-ec-kid": jws(ed_k, c, kid="ec-1"),
            "rs256-header-ec-signature": jws(ec_k, c, alg="RS256", kid="ec-1"),
            "alg-none": make_token(None, c, header={"alg": "none", "kid": "rsa-1"}, sign=False),
            "alg-none-sig": make_token(None, c, header={"alg": "none", "kid": "rsa-1"}, sign=False) + "AAAA",
            "ps256": jws(rsa_k, c, alg="PS256"),
        }
        # HS256 "signed" with the RSA public key in every form a confused
        # verifier might use as an HMAC secret
        n_bytes = _int_bytes(rsa_k.pub.public_numbers().n)
        for name, secret in (("pem", rsa_k.pem()), ("der", rsa_k.spki_der()), ("n", n_bytes),
                             ("jwk", json.dumps(rsa_k.jwk()).encode())):
            forged[f"hs256-{name}"] = make_token(secret, c, header={"alg": "HS256", "kid": "rsa-1"})
        for name, tok in forged.items():
            r = srv.get("/api/v1/me", headers={**bearer(tok), "X-Request-ID": f"conf-{name}"})
            _assert_401(r)
            ev = srv.audit_events(f"request_id = 'conf-{name}'")
            assert len(ev) == 1 and ev[0]["action"] == "auth.failed", (name, ev)
        assert _me(srv, jws(rsa_k, c)).status == 200
    finally:
        idp.stop()


def test_key_locating_headers_are_never_fetched(ctx):
    """jku/x5u point at a server that would gladly serve the attacker's
    key, and jwk embeds it: all ignored; the server asks nothing of those
    URLs; a genuine token carrying them is judged by the configured keys."""
    real, evil = key("RSA", "rsa-1"), key("RSA", "evil")
    idp = IdP([real])
    idp.attacker_jwks = {"keys": [evil.jwk(), dict(evil.jwk(), kid="rsa-1")]}
    try:
        srv = ctx.new_server(env=_env(idp, mode="url", JWT_JWKS_REFETCH_SECONDS="1"))
        c = claims(idp, sub="mallory", roles=["admin"])
        jku = {"jku": idp.base + "/attacker/jwks.json"}
        x5u = {"x5u": idp.base + "/attacker/cert.pem"}
        jwk = {"jwk": evil.jwk()}
        for hdr in (jku, x5u, jwk, {**jku, **x5u, **jwk}):
            for kid in ("evil", "rsa-1"):
                _assert_401(_me(srv, jws(evil, c, kid=kid, extra_header=hdr)))
            time.sleep(1.1)  # let each unknown kid refetch the real set
        _assert_401(_me(srv, jws(evil, c, kid=None, extra_header=jwk)))
        assert not [p for p in idp.paths() if p.startswith("/attacker/")], idp.paths()
        assert set(idp.paths()) == {idp.certs_path}, idp.paths()
        assert _me(srv, jws(real, c, extra_header={**jku, **jwk})).status == 200
    finally:
        idp.stop()


def test_issuer_and_audience_are_required_and_checked(ctx):
    k = key("EC", "ec-1")
    idp = IdP([k])
    try:
        srv = ctx.new_server(env=_env(idp, mode="url"))
        assert _me(srv, jws(k, claims(idp, aud=["other", AUD]))).status == 200
        for over in ({"iss": "https://evil.example.com"}, {"iss": idp.issuer + "/"}, {"aud": "other-app"},
                     {"aud": [AUD + "x"]}):
            _assert_401(_me(srv, jws(k, claims(idp, **over))))
        for missing in ("iss", "aud"):
            c = claims(idp)
            del c[missing]
            _assert_401(_me(srv, jws(k, c)))
        # the settings are required with a key set
        srv.stop()
        for env, needle in (({"JWT_ISSUER": None}, "JWT_JWKS_URL needs JWT_ISSUER"),
                            ({"JWT_AUDIENCE": None}, "JWT_JWKS_URL needs JWT_AUDIENCE")):
            _refused(srv, env, needle)
    finally:
        idp.stop()


def test_start_refusals(ctx):
    srv = ctx.new_server(start=False)
    base = {"JWT_SECRET": None, "JWT_ALGORITHM": "RS256", "JWT_ISSUER": "https://idp", "JWT_AUDIENCE": AUD}
    _refused(srv, {**base, "JWT_JWKS_URL": "http://idp.example.com/jwks"}, "JWT_JWKS_URL must be an https URL")
    _refused(srv, {**base, "JWT_OIDC_ISSUER": "ftp://idp"}, "JWT_OIDC_ISSUER must be an https URL")
    _refused(srv, {**base, "JWT_JWKS_URL": "https://idp/a", "JWT_OIDC_ISSUER": "https://idp"},
             "JWT_JWKS_URL and JWT_OIDC_ISSUER are both set")
    _refused(srv, {"JWT_JWKS_URL": "https://idp/a"}, "JWT_JWKS_URL is set but JWT_ALGORITHM=HS256")
    _refused(srv, {"OMS_ROLE_MAP": "devs=developer;ops=superuser"}, 'unknown role "superuser"')
    _refused(srv, {"JWT_ROLES_CLAIM": "realm_access..roles"}, "JWT_ROLES_CLAIM")
    bad = os.path.join(srv.tmp, "bad.json")
    with open(bad, "w") as f:
        f.write('{"keys":[{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB"}]}')
    line = _refused(srv, {**base, "JWT_JWKS_FILE": bad}, "JWT_JWKS_FILE")
    assert "no usable key" in line, line
    with open(bad, "w") as f:
        json.dump({"keys": [dict(key("EC", "ec-1").jwk(), d="AAAA")]}, f)
    assert "private key material" in _refused(srv, {**base, "JWT_ALGORITHM": "ES256", "JWT_JWKS_FILE": bad},
                                              "JWT_JWKS_FILE")


# ---- groups and roles ----

def test_group_mapping_visible_and_effective(ctx):
    k = key("RSA", "rsa-1")
    idp = IdP([k])
    try:
        srv = ctx.new_server(env=_env(idp, mode="url", JWT_ROLES_CLAIM="realm_access.roles",
                                      OMS_ROLE_MAP="ontology-admins=admin;ontology-devs=developer,reviewer"))

        def tok(groups, top_level_roles):
            c = claims(idp, sub="dana", roles=top_level_roles, realm_access={"roles": groups})
            return jws(k, c)

        dev = tok(["offline_access", "ontology-devs"], ["admin"])
        r = _me(srv, dev)
        assert r.status == 200, r
        me = r.json()
        assert me["groups"] == ["offline_access", "ontology-devs"], me
        assert me["role_mapping"] == [{"group": "ontology-devs", "roles": ["developer", "reviewer"]}], me
        assert me["roles"] == ["developer", "reviewer"] and me["roles_claim"] == "realm_access.roles", me
        assert "schema:write" in me["permissions"] and "acl:write" not in me["permissions"], me
        # effective: the mapped developer creates a branch and writes on it
        h = {**bearer(dev), "X-Issue-ID": "OMS-17"}
        r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": "idp-dev"})
        assert r.status == 201, r
        r = srv.request("POST", "/api/v1/schemas/idp-dev/shared-properties", headers=h,
                        json_body={"api_name": "MappedWrite", "type": "string"})
        assert r.status == 201, r
        # a group called "admin" is not mapped, and top-level "roles" is not the claim
        for groups in (["admin"], ["unrelated"], []):
            t = tok(groups, ["admin"])
            me = _me(srv, t).json()
            assert me["roles"] == [] and me["role_mapping"] == [], me
            r = srv.request("POST", "/api/v1/branches", headers={**bearer(t), "X-Issue-ID": "OMS-17"},
                            json_body={"name": f"nope-{len(groups)}"})
            assert r.status == 403, r
        # the mapping is recorded with the actor's roles in the audit trail
        ev = srv.audit_events("action = 'branch.create' AND outcome = 'success'")
        assert ev and ev[-1]["actor_sub"] == "dana", ev
    finally:
        idp.stop()


# ---- HMAC rotation ----

def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _hmac_token(secret, sub="rot", roles=("viewer",)):
    now = int(time.time())
    return make_token(secret, {"sub": sub, "roles": list(roles), "iat": now, "exp": now + 600})


def _secret_files(srv):
    sec = os.path.join(srv.tmp, "jwt_secret")
    prev = os.path.join(srv.tmp, "jwt_previous_secret")
    return sec, prev


def _reloads(srv, trigger=None):
    ev = _events(srv, "config.reload")
    return [e for e in ev if trigger is None or _detail(e).get("trigger") == trigger]


def test_secret_rotation_under_load_with_sighup(ctx):
    """The runbook under load: threads send requests with old tokens while
    the previous-secret file gets the old secret, the secret file the new
    one, and SIGHUP is sent. No request fails; new tokens work after; old
    tokens work while the previous secret is configured and fail once it
    is removed and SIGHUP is sent again."""
    old, new = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
    srv = ctx.new_server(start=False, env={"OMS_SECRET_FILE_POLL_SECONDS": "0"})
    sec, prev = _secret_files(srv)
    _write_atomic(sec, old + "\n")
    srv.env.pop("JWT_SECRET")
    srv.env.update({"JWT_SECRET_FILE": sec, "JWT_PREVIOUS_SECRET_FILE": prev})  # prev does not exist yet
    srv.start()
    old_toks = [_hmac_token(old, sub=f"user-{i}") for i in range(4)]
    new_tok = _hmac_token(new, sub="fresh")
    _assert_401(_me(srv, new_tok))

    stop = threading.Event()
    results = []
    lock = threading.Lock()

    def load(tok):
        n = 0
        while not stop.is_set():
            s = _me(srv, tok).status
            n += 1
            with lock:
                results.append(s)

    ths = [threading.Thread(target=load, args=(t,)) for t in old_toks]
    for t in ths:
        t.start()
    try:
        time.sleep(0.5)
        _write_atomic(prev, old + "\n")
        _write_atomic(sec, new + "\n")
        srv.proc.send_signal(signal.SIGHUP)
        _wait(lambda: _reloads(srv, "sighup"), what="the reload after SIGHUP")
        time.sleep(1.0)  # keep the load on after the swap
    finally:
        stop.set()
        for t in ths:
            t.join()
    assert len(results) >= 20 and set(results) == {200}, (len(results), {s: results.count(s) for s in set(results)})
    ev = _reloads(srv, "sighup")
    assert len(ev) == 1 and ev[0]["outcome"] == "success", ev
    d = _detail(ev[0])
    assert sorted(d["changed"]) == ["JWT_PREVIOUS_SECRET", "JWT_SECRET"], d
    assert d["fingerprints"]["JWT_SECRET"] == "sha256:" + hashlib.sha256(new.encode()).hexdigest()[:16], d
    assert d["fingerprints"]["JWT_PREVIOUS_SECRET"] == "sha256:" + hashlib.sha256(old.encode()).hexdigest()[:16]
    assert _me(srv, new_tok).status == 200
    assert _me(srv, old_toks[0]).status == 200

    # the rotation window ends: the previous secret goes, SIGHUP again
    os.remove(prev)
    srv.proc.send_signal(signal.SIGHUP)
    _wait(lambda: len(_reloads(srv, "sighup")) == 2, what="the second reload")
    d = _detail(_reloads(srv, "sighup")[1])
    assert d["changed"] == ["JWT_PREVIOUS_SECRET"] and "JWT_PREVIOUS_SECRET" not in d["fingerprints"], d
    _assert_401(_me(srv, old_toks[0]))
    assert _me(srv, new_tok).status == 200
    # no secret in any audit event or in the log
    everything = json.dumps(srv.audit_events()) + srv.read_log()
    assert old not in everything and new not in everything


def test_secret_file_change_and_bad_file(ctx):
    """Without a signal: a changed secret file is picked up by polling. A
    bad new file (too short) changes nothing: error log, alert, failure
    event; the working secret stays."""
    first, second = secrets.token_urlsafe(40), secrets.token_urlsafe(40)
    srv = ctx.new_server(start=False, env={"OMS_SECRET_FILE_POLL_SECONDS": "1"})
    sec, _ = _secret_files(srv)
    _write_atomic(sec, first)
    srv.env.pop("JWT_SECRET")
    srv.env["JWT_SECRET_FILE"] = sec
    srv.start()
    assert _me(srv, _hmac_token(first)).status == 200
    _write_atomic(sec, second)
    _wait(lambda: _reloads(srv, "file_change"), what="the reload of the changed file")
    assert _me(srv, _hmac_token(second)).status == 200
    _assert_401(_me(srv, _hmac_token(first)))  # no previous secret configured

    _write_atomic(sec, "short")
    _wait(lambda: any(e["outcome"] == "failure" for e in _reloads(srv, "file_change")), what="the refused reload")
    bad = [e for e in _reloads(srv, "file_change") if e["outcome"] == "failure"][0]
    assert "JWT_SECRET is shorter than 32 bytes" in _detail(bad)["error"], bad
    assert _me(srv, _hmac_token(second)).status == 200  # the previous configuration stays
    admin = _hmac_token(second, sub="root", roles=("admin",))
    items = srv.get("/api/v1/alerts?rule=config_reload_failed", headers=bearer(admin)).json()["items"]
    assert len(items) == 1 and items[0]["severity"] == "warning", items
    assert "configuration reload refused (file_change)" in srv.read_log()
    # a placeholder is refused like at start-up
    _write_atomic(sec, "changeme-changeme-changeme-changeme-1")
    _wait(lambda: len([e for e in _reloads(srv) if e["outcome"] == "failure"]) == 2, what="the second refusal")
    assert _me(srv, _hmac_token(second)).status == 200


def test_jwks_file_rotation_and_bad_file(ctx):
    a, b = key("EC", "ec-1"), key("OKP", "ed-1")
    srv = ctx.new_server(start=False)
    path = os.path.join(srv.tmp, "jwks.json")
    _write_atomic(path, json.dumps({"keys": [a.jwk()]}))
    idp_iss = "https://idp.example.com/realms/oms"
    srv.env.pop("JWT_SECRET")
    srv.env.update({"JWT_ALGORITHM": "ES256,EdDSA", "JWT_JWKS_FILE": path, "JWT_ISSUER": idp_iss,
                    "JWT_AUDIENCE": AUD, "OMS_SECRET_FILE_POLL_SECONDS": "1"})
    srv.start()

    class Iss:
        issuer = idp_iss

    ta, tb = jws(a, claims(Iss)), jws(b, claims(Iss))
    assert _me(srv, ta).status == 200
    _assert_401(_me(srv, tb))
    _write_atomic(path, json.dumps({"keys": [a.jwk(), b.jwk()]}))
    _wait(lambda: _me(srv, tb).status == 200, what="the new key from the changed file")
    _write_atomic(path, json.dumps({"keys": [b.jwk()]}))
    srv.proc.send_signal(signal.SIGHUP)
    _wait(lambda: _me(srv, ta).status == 401, what="the removed key")
    assert _me(srv, tb).status == 200
    _write_atomic(path, "{not json")
    _wait(lambda: any(e["outcome"] == "failure" for e in _reloads(srv)), what="the refused key file")
    assert _me(srv, tb).status == 200
    assert [r[0] for r in srv.query("SELECT rule FROM alerts")] == ["config_reload_failed"]
    ok = [_detail(e) for e in _reloads(srv) if e["outcome"] == "success"]
    assert any("JWT_JWKS_FILE" in d["changed"] for d in ok), ok


def test_public_key_file_rotation_and_restart_required(ctx):
    """JWT_PUBLIC_KEY_FILE is re-read on SIGHUP; a key of the wrong type
    keeps the old one. A changed _FILE setting that needs a restart
    (OMS_AUDIT_KEY_FILE) is named in the reload event."""
    a, b, wrong = key("RSA", "rsa-1"), key("RSA", "rsa-2"), key("EC", "ec-1")
    srv = ctx.new_server(start=False)
    pem = os.path.join(srv.tmp, "pub.pem")
    audit_key = os.path.join(srv.tmp, "audit.key.txt")
    _write_atomic(pem, a.pem().decode())
    _write_atomic(audit_key, secrets.token_hex(32))
    srv.env.pop("JWT_SECRET")
    srv.env.pop("OMS_AUDIT_KEY", None)
    srv.env.update({"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": pem, "OMS_AUDIT_KEY_FILE": audit_key,
                    "OMS_SECRET_FILE_POLL_SECONDS": "0"})
    srv.start()
    c = {"sub": "pem-user", "exp": int(time.time()) + 600}
    ta, tb = jws(a, c, kid=None), jws(b, c, kid=None)
    assert _me(srv, ta).status == 200
    _write_atomic(pem, b.pem().decode())
    _write_atomic(audit_key, secrets.token_hex(32))
    srv.proc.send_signal(signal.SIGHUP)
    _wait(lambda: _reloads(srv, "sighup"), what="the reload")
    d = _detail(_reloads(srv, "sighup")[0])
    assert d["changed"] == ["JWT_PUBLIC_KEY_FILE"] and d["restart_required"] == ["OMS_AUDIT_KEY"], d
    assert d["fingerprints"]["JWT_PUBLIC_KEY_FILE"] == "sha256:" + hashlib.sha256(b.spki_der()).hexdigest()[:16]
    _assert_401(_me(srv, ta))
    assert _me(srv, tb).status == 200
    _write_atomic(pem, wrong.pem().decode())  # an EC key cannot serve RS256
    srv.proc.send_signal(signal.SIGHUP)
    _wait(lambda: len(_reloads(srv, "sighup")) == 2, what="the refused reload")
    bad = _reloads(srv, "sighup")[1]
    assert bad["outcome"] == "failure" and "RS256 requires an RSA public key" in _detail(bad)["error"], bad
    assert _me(srv, tb).status == 200
    assert "a changed _FILE setting takes effect at the next restart" in srv.read_log()


# ---- config check and oms token ----

def test_config_check_shows_fingerprints_never_keys(ctx):
    srv = ctx.new_server(start=False)
    r = srv.run_cli("config", "check")
    assert r.returncode == 0, r.stderr
    want = hashlib.sha256(srv.secret.encode()).hexdigest()[:16]
    assert f"JWT_SECRET=(set, redacted) sha256:{want}" in r.stdout, r.stdout
    assert srv.secret not in r.stdout

    rk, ek = key("RSA", "rsa-1"), key("EC", "ec-1")
    pem = os.path.join(srv.tmp, "pub.pem")
    with open(pem, "wb") as f:
        f.write(rk.pem())
    r = srv.run_cli("config", "check", env={"JWT_SECRET": None, "JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY_FILE": pem})
    assert r.returncode == 0, r.stderr
    fp = hashlib.sha256(rk.spki_der()).hexdigest()[:16]
    assert f"#   JWT_PUBLIC_KEY_FILE: RSA 2048 sha256:{fp}" in r.stdout, r.stdout
    body = "".join(rk.pem().decode().splitlines()[1:-1])
    assert body[:40] not in r.stdout and rk.jwk()["n"][:40] not in r.stdout

    jwks = os.path.join(srv.tmp, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [rk.jwk(), ek.jwk(), dict(ek.jwk(), kid="enc", use="enc")]}, f)
    r = srv.run_cli("config", "check", env={"JWT_SECRET": None, "JWT_ALGORITHM": "RS256,ES256",
                                            "JWT_JWKS_FILE": jwks, "JWT_ISSUER": "https://i", "JWT_AUDIENCE": AUD})
    assert r.returncode == 0, r.stderr
    assert f"#   JWT_JWKS_FILE: kid rsa-1: RSA 2048 RS256 sha256:{fp}" in r.stdout, r.stdout
    efp = hashlib.sha256(ek.spki_der()).hexdigest()[:16]
    assert f"#   JWT_JWKS_FILE: kid ec-1: EC P-256 ES256 sha256:{efp}" in r.stdout, r.stdout
    assert "#   JWT_JWKS_FILE: key 2 left out: use is not sig" in r.stdout, r.stdout
    assert rk.jwk()["n"][:40] not in r.stdout and ek.jwk()["x"] not in r.stdout


def test_token_cli_refuses_unknown_roles(ctx):
    srv = ctx.new_server()
    r = srv.run_cli("token", "--sub", "svc", "--roles", "developer,develper")
    assert r.returncode == 2 and 'unknown role "develper" grants nothing' in r.stderr \
        and "roles: viewer, developer, reviewer, admin" in r.stderr, r.stderr
    assert r.stdout == ""
    r = srv.run_cli("token", "--sub", "svc", "--roles", "developer,develper", "--allow-unknown-roles")
    assert r.returncode == 0, r.stderr
    me = _me(srv, r.stdout.strip()).json()
    assert me["roles"] == ["developer", "develper"], me
    # with a role map, the values are groups: a mapped group is known, a role name is not
    env = {"OMS_ROLE_MAP": "ontology-devs=developer", "JWT_ROLES_CLAIM": "realm_access.roles"}
    r = srv.run_cli("token", "--sub", "svc", "--roles", "admin", env=env)
    assert r.returncode == 2 and 'unknown group "admin"' in r.stderr, r.stderr
    r = srv.run_cli("token", "--sub", "svc", "--roles", "ontology-devs", env=env)
    assert r.returncode == 0, r.stderr
    payload = json.loads(base64.urlsafe_b64decode(r.stdout.split(".")[1] + "=="))
    assert payload["realm_access"] == {"roles": ["ontology-devs"]} and "roles" not in payload, payload
