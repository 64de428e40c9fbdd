"""Abuse protection (SPEC §6.5, docs/security.md "Abuse protection"): GCRA
rate limits per principal and per client address, the RateLimit fields,
the authentication-failure throttle, trusted proxies, the bounded audit
record of refusals, alerts and the metric.

Limits are small and slow (a refill interval of seconds or minutes), so a
test that sends a few dozen requests sees exactly `burst` admissions and
then refusals, however slow the machine: GCRA is deterministic given the
burst. Distinct clients are distinct loopback source addresses
(127.0.0.x); the harness's own servers get limits that never bite, so each
test states the limits it exercises (None: the server's default)."""

import json
import re
import time

import harness

ROLES = ("viewer",)


def _srv(ctx, **env):
    e = {"OMS_RATE_LIMIT_READ": None, "OMS_RATE_LIMIT_WRITE": None, "OMS_RATE_LIMIT_AUTH_FAILURE": None}
    e.update(env)
    return ctx.new_server(env=e)


def _detail(ev):
    return json.loads(ev["detail"]) if ev["detail"] else {}


def _int(v):
    return None if v is None else int(v)


def _problem_429(r, cls):
    assert r.status == 429, r
    assert r.header("content-type") == "application/problem+json", r.headers
    doc = r.json()
    assert doc["status"] == 429 and doc["code"] == "rate_limited", doc
    assert doc["class"] == cls and doc["violated-policies"] == [cls], doc
    assert doc["retry_after"] == int(r.header("retry-after")), (doc, r.headers)
    return doc


def _limit(r):
    """(policy name, r, t) of the RateLimit field."""
    m = re.fullmatch(r'"([a-z_]+)";r=(\d+);t=(\d+)', r.header("ratelimit") or "")
    assert m, r.headers
    return m.group(1), int(m.group(2)), int(m.group(3))


def test_flood_from_one_principal_is_refused_while_another_is_served(ctx):
    # 1 read a minute, burst 10: ten pass at once, then one per 60 s
    srv = _srv(ctx, OMS_RATE_LIMIT_READ="1/m:10")
    alice, bob = srv.auth("alice", ROLES), srv.auth("bob", ROLES)
    statuses = []
    for i in range(16):
        r = srv.get("/api/v1/me", headers=alice)
        statuses.append(r.status)
        assert r.header("ratelimit-policy") == '"read";q=10;w=600', r.headers
        name, remaining, reset = _limit(r)
        assert name == "read"
        if i < 10:
            assert r.status == 200, r
            assert remaining == 9 - i and reset in (59, 60), r.headers
            assert r.header("retry-after") is None
        else:
            _problem_429(r, "read")
            assert remaining == 0, r.headers
            assert int(r.header("retry-after")) in (59, 60) and reset == int(r.header("retry-after")), r.headers
        if i % 3 == 0:  # another principal, all along
            rb = srv.get("/api/v1/me", headers=bob)
            assert rb.status == 200, rb
            assert rb.header("ratelimit-policy") == '"read";q=10;w=600'
    assert statuses == [200] * 10 + [429] * 6, statuses
    # writes are another class: alice's write passes the limit and meets
    # the next step, authorization (a viewer has no lock:write: 403)
    r = srv.request("POST", "/api/v1/locks", headers=alice, json_body={})
    assert r.status == 403 and r.json()["missing_permission"] == "lock:write", r
    assert r.header("ratelimit-policy") == '"write";q=40;w=2', r
    # the counter, from a principal of its own
    m = srv.get("/metrics", headers=srv.auth("prom", ("service_account",)))
    assert m.status == 200, m
    assert 'oms_ratelimited_total{class="read"} 6\n' in m.body, m.body
    assert 'oms_ratelimited_total{class="write"} 0\n' in m.body


def test_failed_authentication_throttles_the_address(ctx):
    # the default auth-failure class: 10 a minute, burst 10; the security
    # monitor's burst rule set to the same 10 failures
    srv = _srv(ctx, OMS_ALERT_AUTH_FAILURES="10/60")
    good = srv.auth("carol", ROLES)
    for i in range(10):
        r = srv.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"}, source="127.0.0.2")
        assert r.status == 401, r
        assert r.header("ratelimit-policy") == '"auth_failure";q=10;w=60', r.headers
        assert _limit(r)[:2] == ("auth_failure", 9 - i), r.headers
    # a valid token from that address: refused, connection closed, and so is
    # every other request from it, public ones included
    r = srv.get("/api/v1/me", headers=good, source="127.0.0.2")
    _problem_429(r, "auth_failure")
    assert int(r.header("retry-after")) in (5, 6), r.headers
    assert r.header("connection") == "close"
    assert srv.get("/health", source="127.0.0.2").status == 429
    assert srv.get("/api/v1/me", headers={"Authorization": "Bearer x"}, source="127.0.0.2").status == 429
    # another address is not affected, with the same token or none
    assert srv.get("/api/v1/me", headers=good, source="127.0.0.3").status == 200
    assert srv.get("/api/v1/me", source="127.0.0.3").status == 401
    srv.stop()  # flushes the record of refusals and pending alerts
    failed = srv.audit_events("action = 'auth.failed' AND client_addr = '127.0.0.2'")
    assert len(failed) == 10, failed
    refused = srv.audit_events("action = 'ratelimit.refused' AND client_addr = '127.0.0.2'")
    assert len(refused) == 3 and all(_int(e["http_status"]) == 429 for e in refused), refused
    assert {_detail(e)["key"] for e in refused} == {"address:127.0.0.2"}
    alerts = srv.query("SELECT rule, detail FROM alerts WHERE rule = 'auth_failure_burst'")
    assert len(alerts) == 1, alerts
    assert json.loads(alerts[0][1])["key"] == "address:127.0.0.2", alerts


def test_refusals_past_the_sample_aggregate_with_exact_counts(ctx):
    # sample 5 (the default); 3 reads admitted, then M refused
    M = 23
    srv = _srv(ctx, OMS_RATE_LIMIT_READ="1/m:3")
    h = srv.auth("dave", ROLES)
    got = [srv.get("/api/v1/me", headers=h).status for _ in range(3 + M)]
    assert got == [200] * 3 + [429] * M, got
    # anonymous: 10 failures, then N more from a throttled address
    N = 17
    anon = [srv.get("/api/v1/me", source="127.0.0.4").status for _ in range(10 + N)]
    assert anon == [401] * 10 + [429] * N, anon
    srv.stop()
    for who, key, refused, sql in (
        ("principal", "principal:dave", M, "actor_sub = 'dave'"),
        ("address", "address:127.0.0.4", N, "client_addr = '127.0.0.4'"),
    ):
        single = srv.audit_events(f"action = 'ratelimit.refused' AND {sql}")
        agg = srv.audit_events(f"action = 'ratelimit.refused_aggregate' AND {sql}")
        assert len(single) == 5, (who, single)
        assert len(agg) == 1, (who, agg)
        d = _detail(agg[0])
        assert d["key"] == key and d["recorded_individually"] == 5, d
        assert len(single) + sum(_detail(e)["count"] for e in agg) == refused, (who, d)
        assert d["window_start"] <= d["first_refused"] <= d["last_refused"] <= d["window_end"], d
        assert _int(agg[0]["http_status"]) == 429 and agg[0]["outcome"] == "denied"
    # the address's whole footprint: 10 failures, 5 refusals, 1 aggregate
    assert len(srv.audit_events("client_addr = '127.0.0.4' AND action <> 'alert.raised'")) == 16


def test_ended_windows_are_flushed_while_serving(ctx):
    srv = _srv(ctx, OMS_RATE_LIMIT_READ="1/m:1", OMS_RATE_LIMIT_AUDIT_WINDOW="1", OMS_RATE_LIMIT_AUDIT_SAMPLE="0")
    h = srv.auth("erin", ROLES)
    got = [srv.get("/api/v1/me", headers=h).status for _ in range(8)]
    assert got == [200] + [429] * 7, got
    # the background task writes the window once it has ended (about a
    # second later); bounded wait for it, the server keeps running
    deadline = time.time() + 15
    agg = []
    while time.time() < deadline and not agg:
        agg = srv.audit_events("action = 'ratelimit.refused_aggregate' AND actor_sub = 'erin'")
        time.sleep(0.2)
    assert len(agg) == 1 and _detail(agg[0])["count"] == 7, agg
    assert srv.audit_events("action = 'ratelimit.refused' AND actor_sub = 'erin'") == []


def test_storm_raises_one_alert_per_key_and_window(ctx):
    srv = _srv(ctx, OMS_RATE_LIMIT_READ="1/m:2", OMS_RATE_LIMIT_STORM_KEY="8", OMS_RATE_LIMIT_STORM_TOTAL="12")
    h = srv.auth("frank", ROLES)
    got = [srv.get("/api/v1/me", headers=h).status for _ in range(2 + 20)]
    assert got.count(429) == 20
    srv.stop()
    storms = [json.loads(d) for (d,) in srv.query("SELECT detail FROM alerts WHERE rule = 'rate_limit_storm'")]
    per_key = [s for s in storms if s["key"] == "principal:frank"]
    overall = [s for s in storms if s["key"] == "*"]
    assert len(per_key) == 1 and per_key[0]["threshold"] == 8 and per_key[0]["class"] == "read", storms
    assert len(overall) == 1 and overall[0]["threshold"] == 12, storms
    raised = srv.audit_events("action = 'alert.raised'")
    assert sum(1 for e in raised if _detail(e).get("rule") == "rate_limit_storm") == 2, raised


def test_trusted_proxy_names_the_client(ctx):
    srv = _srv(ctx, OMS_TRUSTED_PROXIES="127.0.0.5/32, 10.0.0.0/8")
    bad = {"Authorization": "Bearer not-a-token"}
    # an untrusted peer's X-Forwarded-For is ignored
    r = srv.get("/api/v1/me", headers={**bad, "X-Request-ID": "xff-untrusted", "X-Forwarded-For": "198.51.100.7"},
                source="127.0.0.6")
    assert r.status == 401
    # from the trusted proxy: the rightmost hop that is not trusted; the
    # spoofed leftmost one is never reached
    r = srv.get("/api/v1/me", headers={**bad, "X-Request-ID": "xff-trusted",
                                       "X-Forwarded-For": "1.1.1.1, 203.0.113.9, 10.0.0.3"}, source="127.0.0.5")
    assert r.status == 401
    r = srv.get("/api/v1/me", headers={**bad, "X-Request-ID": "xff-v6", "X-Forwarded-For": "[2001:db8::1]:4711"},
                source="127.0.0.5")
    assert r.status == 401
    ev = {e["request_id"]: e["client_addr"] for e in srv.audit_events("action = 'auth.failed'")}
    assert ev["xff-untrusted"] == "127.0.0.6", ev
    assert ev["xff-trusted"] == "203.0.113.9", ev
    assert ev["xff-v6"] == "2001:db8::1", ev
    # the throttle follows the client behind the proxy, not the proxy
    for _ in range(9):
        assert srv.get("/api/v1/me", headers={**bad, "X-Forwarded-For": "203.0.113.9"},
                       source="127.0.0.5").status == 401
    good = srv.auth("gina", ROLES)
    r = srv.get("/api/v1/me", headers={**good, "X-Forwarded-For": "203.0.113.9"}, source="127.0.0.5")
    _problem_429(r, "auth_failure")
    r = srv.get("/api/v1/me", headers={**good, "X-Forwarded-For": "203.0.113.10"}, source="127.0.0.5")
    assert r.status == 200, r
    # the same claim from an untrusted peer is that peer's own request
    r = srv.get("/api/v1/me", headers={**good, "X-Forwarded-For": "203.0.113.9"}, source="127.0.0.7")
    assert r.status == 200, r
    srv.stop()
    refused = srv.audit_events("action = 'ratelimit.refused'")
    assert [e["client_addr"] for e in refused] == ["203.0.113.9"], refused


def test_override_lets_a_service_account_go_faster(ctx):
    srv = _srv(ctx, OMS_RATE_LIMIT_READ="1/m:3",
               OMS_RATE_LIMIT_OVERRIDES="svc-indexer=read:1/m:20,write:1/m:1; other=write:1/s:1")
    svc, user = srv.auth("svc-indexer", ("service_account",)), srv.auth("hank", ROLES)
    svc_got = [srv.get("/api/v1/me", headers=svc) for _ in range(21)]
    assert [r.status for r in svc_got] == [200] * 20 + [429], [r.status for r in svc_got]
    assert svc_got[0].header("ratelimit-policy") == '"read";q=20;w=1200', svc_got[0].headers
    user_got = [srv.get("/api/v1/me", headers=user).status for _ in range(4)]
    assert user_got == [200] * 3 + [429], user_got


def test_rate_limits_off_still_checks_the_settings(ctx):
    srv = _srv(ctx, OMS_RATE_LIMIT_ENABLED="0", OMS_RATE_LIMIT_READ="1/m:1")
    h = srv.auth("ivan", ROLES)
    for _ in range(5):
        r = srv.get("/api/v1/me", headers=h)
        assert r.status == 200 and r.header("ratelimit") is None and r.header("ratelimit-policy") is None, r
    # off is not a licence for a typo that would bite when turned on
    r = srv.run_cli("config", "check", env={"OMS_RATE_LIMIT_READ": "1/m"})
    assert r.returncode == 2 and "OMS_RATE_LIMIT_READ must read RATE/UNIT:BURST" in r.stderr, (r.returncode, r.stderr)


def test_bad_settings_refuse_to_start(ctx):
    srv = ctx.new_server(start=False)
    for name, value, says in (
        ("OMS_RATE_LIMIT_READ", "100 per second", "OMS_RATE_LIMIT_READ must read RATE/UNIT:BURST"),
        ("OMS_RATE_LIMIT_AUTH_FAILURE", "10/m:0", "rate and burst must be between"),
        ("OMS_RATE_LIMIT_OVERRIDES", "svc-indexer=read:1000/s", "svc-indexer's read limit must read"),
        ("OMS_RATE_LIMIT_OVERRIDES", "svc=delete:1/s:1", "a class is read or write"),
        ("OMS_RATE_LIMIT_OVERRIDES", "svc=read:1/s:1;svc=write:1/s:1", "svc is listed twice"),
        ("OMS_TRUSTED_PROXIES", "10.0.0.0/8, proxy.internal", "proxy.internal is not an IPv4 or IPv6"),
        ("OMS_TRUSTED_PROXIES", "10.1.0.0/8", "bits set below its prefix"),
    ):
        r = srv.run_cli("serve", env={name: value}, timeout=20)
        assert r.returncode == 2, (name, value, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], (name, value, r.stderr)
