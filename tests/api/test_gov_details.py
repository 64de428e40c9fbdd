"""Audit and alert details are JSON built with jansson, never by printf
(issue #12): a principal whose name holds a quote or a backslash still
yields valid JSON details naming it exactly (forced lock release and its
alert, override decisions)."""

import json

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"
JUSTIFICATION = "Production incident: the billing pipeline is down and needs an urgent schema fix now."
ODD = 'o"dd\\name'


def _h(srv, sub, roles, **extra):
    h = srv.auth(sub, roles)
    h.update(extra)
    return h


def test_forced_release_detail_escapes_the_principal(ctx):
    srv = ctx.server
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv, "dev", ("developer",), **{"X-Issue-ID": "GOV-1"}),
                    json_body={"name": "gd/a", "from": ROOT})
    assert r.status == 201, r
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "alice", ("developer",)),
                    json_body={"branch": "gd/a", "scope": "branch", "reason": 'a "quoted" \\ reason'})
    assert r.status == 201, r
    lid = r.json()["id"]
    r = srv.request("DELETE", f"/api/v1/locks/{lid}", headers=_h(srv, ODD, ("admin",), **{"X-Issue-ID": "OPS-7"}),
                    json_body={"reason": 'host "died" \\ badly'})
    assert r.status == 200 and r.json()["ended_by"] == ODD, r
    ev = srv.audit_events(f"action = 'lock.force_release' AND outcome = 'success' AND resource_id = '{lid}'")
    assert len(ev) == 1
    assert json.loads(ev[0]["detail"])["reason"] == 'host "died" \\ badly'
    alert = srv.audit_events(f"action = 'alert.raised' AND resource_id = '{lid}'")
    assert len(alert) == 1
    d = json.loads(alert[0]["detail"])
    assert d["released_by"] == ODD and d["reason"] == 'host "died" \\ badly', d
    stored = srv.get("/api/v1/alerts?rule=forced_lock_release", headers=_h(srv, "aud", ("auditor",))).json()["items"]
    mine = [a for a in stored if a["detail"].get("lock_id") == lid]
    assert len(mine) == 1 and mine[0]["detail"]["released_by"] == ODD and mine[0]["subject"] == ODD, stored


def test_override_decision_detail_escapes_the_requester(ctx):
    srv = ctx.server
    body = {"kind": "protected_branch", "branch": "main", "justification": JUSTIFICATION, "incident": 'INC "1" \\',
            "ttl_seconds": 600}
    r = srv.request("POST", "/api/v1/overrides", headers=_h(srv, ODD, ("developer",)), json_body=body)
    assert r.status == 201, r
    oid = r.json()["id"]
    r = srv.request("POST", f"/api/v1/overrides/{oid}/approve", headers=_h(srv, "sec", ("security_officer",)))
    assert r.status == 200, r
    ev = srv.audit_events(f"resource_id = '{oid}' AND outcome = 'success'")
    details = {e["action"]: json.loads(e["detail"]) for e in ev}
    assert details["override.request"]["incident"] == 'INC "1" \\', details
    assert details["override.approve"] == {"from": "pending", "to": "approved", "requester": ODD}, details
