"""Security monitoring (SPEC §10, docs/security.md "Security monitoring"):
bursts of authentication failures from one address and of denials for one
principal raise one alert per key and window, with thresholds from the
environment; rate-limit storms, override uses, forced lock releases, ACL
changes and audit verification failures raise theirs. Every alert is
stored (GET /api/v1/alerts), logged as one structured line and counted in
/metrics (oms_alerts_total{rule}).

Thresholds are small so a burst is a handful of requests. Distinct clients
are distinct loopback source addresses (127.0.0.x). Burst alerts are written
by a background task: a test stops the server (which flushes it) before it
reads the alerts table, or waits for the alert through the API."""

import json
import re
import subprocess
import time

import harness
from test_audit_util import drop_protection, verify, wait_sealed

BAD = {"Authorization": "Bearer not-a-token"}
JUSTIFICATION = "Production incident: the billing pipeline is down and needs an urgent schema fix now."


def _alerts(srv, rule):
    """The stored alerts of a rule (the server stopped: every queued alert
    is written), details decoded."""
    rows = srv.query(f"SELECT subject, client_addr, detail FROM alerts WHERE rule = '{rule}' ORDER BY time_ms")
    return [{"subject": s, "client_addr": a, "detail": json.loads(d)} for s, a, d in rows]


def _metric(srv, rule):
    text = srv.get("/metrics", headers=srv.auth("ops", ("admin",))).body
    m = re.search(r'^oms_alerts_total\{rule="%s"\} (\d+)$' % re.escape(rule), text, re.M)
    assert m, text[-2000:]
    return int(m.group(1))


def _wait_metric(srv, rule, want, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and _metric(srv, rule) < want:
        time.sleep(0.1)
    return _metric(srv, rule)


def _fail(srv, n, source):
    for _ in range(n):
        r = srv.get("/api/v1/me", headers=BAD, source=source)
        assert r.status == 401, r


def test_auth_failure_burst_raises_one_alert_naming_the_address(ctx):
    srv = ctx.new_server(env={"OMS_ALERT_AUTH_FAILURES": "5/60"})
    _fail(srv, 12, "127.0.0.21")  # past the threshold, more than twice: still one alert
    srv.stop()
    got = _alerts(srv, "auth_failure_burst")
    assert [(a["client_addr"], a["detail"]["key"], a["detail"]["count"], a["detail"]["threshold"],
             a["detail"]["window_seconds"]) for a in got] == [("127.0.0.21", "address:127.0.0.21", 5, 5, 60)], got


def test_auth_failure_burst_never_names_the_token(ctx):
    srv = ctx.new_server(env={"OMS_ALERT_AUTH_FAILURES": "3/60"})
    token = srv.token("eve", ("viewer",), ttl=-3600)  # a real but expired token: 401
    for _ in range(3):
        r = srv.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}, source="127.0.0.28")
        assert r.status == 401, r
    srv.stop()
    stored = json.dumps(srv.query("SELECT * FROM alerts")) + srv.read_log()
    assert token not in stored and token.split(".")[2] not in stored


def test_failures_raise_the_alert_with_rate_limiting_off(ctx):
    # the burst is the monitor's rule, not the rate limiter's: an address
    # that is never throttled still raises it
    srv = ctx.new_server(env={"OMS_RATE_LIMIT_ENABLED": "0", "OMS_ALERT_AUTH_FAILURES": "6/60"})
    _fail(srv, 30, "127.0.0.29")
    srv.stop()
    got = _alerts(srv, "auth_failure_burst")
    assert [a["detail"]["key"] for a in got] == ["address:127.0.0.29"], got


def test_behind_a_trusted_proxy_the_alert_names_the_client(ctx):
    srv = ctx.new_server(env={"OMS_ALERT_AUTH_FAILURES": "3/60", "OMS_TRUSTED_PROXIES": "127.0.0.27/32"})
    for _ in range(3):
        r = srv.get("/api/v1/me", headers={**BAD, "X-Forwarded-For": "203.0.113.9"}, source="127.0.0.27")
        assert r.status == 401, r
    srv.stop()
    got = _alerts(srv, "auth_failure_burst")
    assert [(a["client_addr"], a["detail"]["key"]) for a in got] == [("203.0.113.9", "address:203.0.113.9")], got


def test_failures_below_the_threshold_raise_nothing(ctx):
    srv = ctx.new_server(env={"OMS_ALERT_AUTH_FAILURES": "5/60"})
    _fail(srv, 4, "127.0.0.22")
    _fail(srv, 4, "127.0.0.23")  # another address: its own count
    srv.stop()
    assert _alerts(srv, "auth_failure_burst") == []


def test_threshold_is_read_from_the_environment(ctx):
    srv = ctx.new_server(env={"OMS_ALERT_AUTH_FAILURES": "2/30"})
    _fail(srv, 2, "127.0.0.24")
    srv.stop()
    got = _alerts(srv, "auth_failure_burst")
    assert [(a["detail"]["count"], a["detail"]["threshold"], a["detail"]["window_seconds"]) for a in got] == [
        (2, 2, 30)], got


def test_malformed_threshold_refuses_to_start(ctx):
    srv = ctx.new_server(env={"OMS_ALERT_AUTH_FAILURES": "20 per minute"}, start=False)
    r = subprocess.run([harness.OMS_BIN, "serve"], env=srv.env, capture_output=True, text=True, timeout=30)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert (r.returncode, len(lines), "OMS_ALERT_AUTH_FAILURES must be COUNT/SECONDS" in r.stderr) == (2, 1, True), \
        (r.returncode, r.stderr)


def test_denial_burst_names_the_principal(ctx):
    srv = ctx.new_server(env={"OMS_ALERT_DENIALS": "3/60"})
    h = srv.auth("mallory", ("viewer",))
    for _ in range(7):
        r = srv.get("/api/v1/alerts", headers=h)  # alert:read is the auditor's
        assert r.status == 403, r
    srv.stop()
    got = _alerts(srv, "denial_burst")
    assert [(a["subject"], a["detail"]["key"], a["detail"]["count"]) for a in got] == [
        ("mallory", "principal:mallory", 3)], got


def test_burst_alert_is_logged_and_counted(ctx):
    srv = ctx.new_server(env={"OMS_ALERT_AUTH_FAILURES": "3/60"})
    _fail(srv, 4, "127.0.0.25")
    assert _wait_metric(srv, "auth_failure_burst", 1) == 1
    srv.stop()
    lines = [json.loads(l) for l in srv.read_log().splitlines() if '"security alert' in l]
    assert [(l["level"], l["rule"], l["detail"]["key"]) for l in lines] == [
        ("warn", "auth_failure_burst", "address:127.0.0.25")], lines


def test_rate_limit_storm_raises_one_alert_per_address(ctx):
    # a public route is limited by the address's read class
    srv = ctx.new_server(env={"OMS_RATE_LIMIT_READ": "1/m:2", "OMS_RATE_LIMIT_STORM_KEY": "4"})
    got = [srv.get("/health", source="127.0.0.26").status for _ in range(14)]
    assert got == [200, 200] + [429] * 12, got
    srv.stop()
    storms = [a for a in _alerts(srv, "rate_limit_storm") if a["detail"]["key"] != "*"]
    assert [(a["detail"]["key"], a["detail"]["threshold"]) for a in storms] == [("address:127.0.0.26", 4)], storms


def test_override_use_raises_an_alert(ctx):
    srv = ctx.server
    before = _metric(srv, "override_used")
    h = srv.auth("olga", ("developer",))
    r = srv.request("POST", "/api/v1/overrides", headers=h,
                    json_body={"kind": "protected_branch", "branch": "main", "justification": JUSTIFICATION,
                               "incident": "INC-15", "ttl_seconds": 600})
    assert r.status == 201, r
    oid = r.json()["id"]
    r = srv.request("POST", f"/api/v1/overrides/{oid}/approve", headers=srv.auth("sec", ("security_officer",)))
    assert r.status == 200, r
    r = srv.request("POST", "/api/v1/schemas/main/shared-properties",
                    headers={**h, "X-Issue-ID": "OMS-15", "X-Override-ID": oid},
                    json_body={"api_name": "MonitoredHotfix", "type": "string"})
    assert r.status == 201, r
    assert _metric(srv, "override_used") == before + 1


def test_forced_lock_release_raises_an_alert(ctx):
    srv = ctx.server
    before = _metric(srv, "forced_lock_release")
    dev = {**srv.auth("alice", ("developer",)), "X-Issue-ID": "OMS-15"}
    r = srv.request("POST", "/api/v1/branches", headers=dev, json_body={"name": "mon/lock", "from": "main"})
    assert r.status == 201, r
    r = srv.request("POST", "/api/v1/locks", headers=dev,
                    json_body={"branch": "mon/lock", "scope": "branch", "kind": "maintenance", "reason": "x"})
    assert r.status == 201, r
    r = srv.request("DELETE", f"/api/v1/locks/{r.json()['id']}",
                    headers={**srv.auth("root", ("admin",)), "X-Issue-ID": "OPS-15"}, json_body={"reason": "host died"})
    assert r.status == 200 and r.json()["state"] == "force_released", r
    assert _metric(srv, "forced_lock_release") == before + 1


def test_acl_change_raises_an_alert(ctx):
    srv = ctx.server
    before = _metric(srv, "acl_change")
    r = srv.request("POST", "/api/v1/acl/policies", headers={**srv.auth("secadmin", ("admin",)), "X-Issue-ID": "OMS-15"},
                    json_body={"subject": "role:developer", "effect": "deny", "permissions": ["schema:write"],
                               "branches": ["mon/**"], "description": "monitoring test"})
    assert r.status == 201, r
    assert _metric(srv, "acl_change") == before + 1


def _tampered(ctx):
    """A stopped server whose sealed log had one denial edited; its seq."""
    srv = ctx.new_server()
    for i in range(3):
        r = srv.request("POST", "/api/v1/schemas/main/object-types", headers=srv.auth("vic", ("viewer",)),
                        json_body={"api_name": "X"})
        assert r.status == 403, r
    wait_sealed(srv)
    srv.stop()
    drop_protection(srv)
    seq = int(srv.query("SELECT MIN(seq) FROM audit_events WHERE action = 'authz.denied'")[0][0])
    srv.execute(f"UPDATE audit_events SET actor_sub = 'mallory' WHERE seq = {seq}")
    return srv, seq


def test_audit_verification_failure_raises_an_alert(ctx):
    srv, seq = _tampered(ctx)
    code, v = verify(srv)
    assert (code, v["ok"]) == (1, False), v
    got = _alerts(srv, "audit_verification_failed")
    assert [(a["detail"]["first_bad_seq"], a["detail"]["by"]) for a in got] == [(seq, "cli")], got


def test_audit_verification_failure_through_the_api_raises_an_alert(ctx):
    srv, seq = _tampered(ctx)
    srv.start()
    r = srv.get("/api/v1/audit/verify", headers=srv.auth("aud", ("auditor",)))
    assert (r.status, r.json()["ok"]) == (200, False), r
    srv.stop()
    got = _alerts(srv, "audit_verification_failed")
    assert [(a["subject"], a["detail"]["first_bad_seq"], a["detail"]["by"]) for a in got] == [("aud", seq, "api")], got
