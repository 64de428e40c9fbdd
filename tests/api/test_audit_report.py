"""The compliance report (SPEC §9) on a scripted scenario: changes with and
without issues (on exempt and non-exempt branches), denials, authentication
failures, a proposal merged into protected main, an emergency override
requested, approved and used, and a forced lock release. The JSON and CSV
forms hold exactly the expected numbers; the HTML page renders in headless
Chromium and the screenshot, read back by OCR, shows its headings."""

import csv
import io
import os
import re
import shutil
import subprocess
import tempfile
import time
import zlib

import harness
from harness import quote

JUSTIFICATION = "Production incident: the billing model must be hot-fixed on main before the nightly run."


def _h(srv, sub, roles, issue=None, **extra):
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = issue
    h.update(extra)
    return h


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def _scenario(srv):
    dev = ("developer",)
    expect_violations = 0
    sp = lambda b: "/api/v1/schemas/" + quote(b) + "/shared-properties"  # noqa: E731
    for b in ("feature/rep", "sandbox/rep"):
        r = srv.request("POST", "/api/v1/branches", headers=_h(srv, "rdev", dev, "REP-1"), json_body={"name": b})
        assert r.status == 201, r
    for i in range(3):
        r = srv.request("POST", sp("feature/rep"), headers=_h(srv, "rdev", dev, "REP-1"),
                        json_body={"api_name": f"Tracked{i}", "type": "string"})
        assert r.status == 201, r
    for i in range(2):  # exempt branch: no issue needed, and none counted
        r = srv.request("POST", sp("sandbox/rep"), headers=_h(srv, "rdev", dev), json_body={"api_name": f"Play{i}", "type": "string"})
        assert r.status == 201, r
    r = srv.request("POST", sp("feature/rep"), headers=_h(srv, "rdev", dev), json_body={"api_name": "Untracked", "type": "string"})
    # a non-exempt branch needs an issue (SPEC §6.3): refused, so no violation
    assert r.status == 422 and r.json()["code"] == "issue_required", r
    for i in range(2):
        r = srv.request("POST", sp("feature/rep"), headers=_h(srv, "rvic", ("viewer",)), json_body={"api_name": "V", "type": "string"})
        assert r.status == 403, r
    for i in range(3):
        assert srv.get("/api/v1/me", headers={"Authorization": f"Bearer not-a-token-{i}"}).status == 401
    # a proposal merged into protected main with one approval
    r = srv.request("POST", "/api/v1/proposals", headers=_h(srv, "rdev", dev),
                    json_body={"source": "feature/rep", "target": "main", "title": "Tracked", "description": "d",
                               "issue_ids": ["REP-2"]})
    assert r.status == 201, r
    pid = r.json()["id"]
    assert srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=_h(srv, "rrev", ("reviewer",))).status == 200
    r = srv.request("POST", f"/api/v1/proposals/{pid}/merge", headers=_h(srv, "rrev", ("reviewer",), "REP-2"), json_body={})
    assert r.status == 200, r
    # an emergency override: requested, approved by another person, used once
    r = srv.request("POST", "/api/v1/overrides", headers=_h(srv, "rdev", dev),
                    json_body={"kind": "protected_branch", "branch": "main", "justification": JUSTIFICATION,
                               "incident": "INC-7", "ttl_seconds": 600})
    assert r.status == 201, r
    oid = r.json()["id"]
    r = srv.request("POST", f"/api/v1/overrides/{oid}/approve", headers=_h(srv, "rsec", ("security_officer",)))
    assert r.status == 200, r
    r = srv.request("POST", sp("main"), headers=_h(srv, "rdev", dev, "REP-3", **{"X-Override-ID": oid}),
                    json_body={"api_name": "Hotfix", "type": "string"})
    assert r.status == 201, r
    # a lock released by force
    r = srv.request("POST", "/api/v1/locks", headers=_h(srv, "rdev", dev),
                    json_body={"branch": "feature/rep", "scope": "branch", "kind": "maintenance", "reason": "r"})
    assert r.status == 201, r
    lid = r.json()["id"]
    r = srv.request("DELETE", f"/api/v1/locks/{lid}", headers=_h(srv, "radmin", ("admin",), "OPS-1"))
    assert r.status == 200 and r.json()["state"] == "force_released", r
    return {"violations": expect_violations, "proposal": pid, "override": oid, "lock": lid}


def test_report_numbers_csv_and_html(ctx):
    srv = ctx.new_server()
    time.sleep(0.02)
    t0 = time.time()
    s = _scenario(srv)
    t1 = time.time() + 0.01
    time.sleep(0.02)
    aud = srv.auth("raud", ("auditor",))
    q = f"?from={quote(_iso(t0))}&to={quote(_iso(t1))}"
    r = srv.get("/api/v1/compliance/report" + q, headers=aud)
    assert r.status == 200, r
    rep = r.json()
    v = s["violations"]
    assert rep["summary"]["changes"] == 3 + 2 + v + 1 + 1 + 1, rep["summary"]
    assert rep["summary"]["changes_without_issue"] == v
    assert len(rep["changes_without_issue"]) == v
    assert rep["summary"]["denials"] == 2 and rep["denials_by_principal"] == [{"principal": "rvic", "count": 2}]
    assert rep["summary"]["auth_failures"] == 3
    assert rep["auth_failures_by_address"] == [{"address": "127.0.0.1", "count": 3}]
    assert rep["summary"]["overrides"] == 1 and rep["summary"]["override_uses"] == 1
    o = rep["overrides"][0]
    assert (o["override_id"], o["requested_by"], o["approved_by"], o["used_by"], o["state"], o["kind"], o["branch"]) == (
        s["override"], "rdev", ["rsec"], "rdev", "used", "protected_branch", "main"), o
    assert rep["summary"]["protected_merges"] == 1
    m = rep["protected_merges"][0]
    assert (m["proposal"], m["branch"], m["actor"], m["approved_by"], m["approvals"]) == (s["proposal"], "main", "rrev",
                                                                                         ["rrev"], 1), m
    assert rep["summary"]["forced_lock_releases"] == 1
    f = rep["forced_lock_releases"][0]
    assert (f["lock_id"], f["actor"], f["holder"], f["issue_keys"]) == (s["lock"], "radmin", "rdev", ["OPS-1"]), f
    totals = {(t["action"], t["outcome"]): t["count"] for t in rep["totals"]}
    assert totals[("shared_property.create", "success")] == 3 + 2 + v + 1
    assert totals[("authz.denied", "denied")] == 2 and totals[("auth.failed", "denied")] == 3
    assert totals[("proposal.merge", "success")] == 1 and totals[("override.approve", "success")] == 1
    # the refused untracked write is an audited failure under its kind's action
    assert totals.get(("shared_property.create", "failure")) == 1 and ("resource.create", "failure") not in totals, totals
    assert rep["top_actors"][0]["actor"] == "rdev"
    assert sum(t["count"] for t in rep["totals"]) == rep["summary"]["events"]
    assert rep["integrity"]["ok"] is True

    # CSV: the same numbers in one table
    c = srv.get("/api/v1/compliance/report" + q + "&format=csv", headers=aud)
    assert c.status == 200 and c.header("Content-Type").startswith("text/csv")
    table = list(csv.reader(io.StringIO(c.body)))
    assert table[0] == ["section", "item", "status", "count", "time", "actor", "branch", "reference"]
    cells = {(t[0], t[1]): t for t in table[1:]}
    assert cells[("summary", "changes_without_issue")][3] == str(v)
    assert cells[("summary", "forced_lock_releases")][3] == "1"
    assert cells[("denials_by_principal", "rvic")][3] == "2"
    assert cells[("auth_failures_by_address", "127.0.0.1")][3] == "3"
    assert cells[("override", s["override"])][2] == "used" and "approved_by=rsec" in cells[("override", s["override"])][7]
    assert cells[("forced_lock_release", s["lock"])][5] == "radmin"

    # HTML: one self-contained page
    h = srv.get("/api/v1/compliance/report" + q + "&format=html", headers=aud)
    assert h.status == 200 and h.header("Content-Type") == "text/html; charset=utf-8"
    assert "default-src 'none'" in h.header("Content-Security-Policy")
    page = h.body
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<style>" in page
    assert not re.search(r"<script|<link|src=|url\(|https?://", page, re.I), "external assets or scripts"
    for heading in ("Compliance report", "Changes without an issue", "Emergency overrides",
                    "Merges into protected branches", "Denials by principal", "Forced lock releases", "Top actors"):
        assert heading in page, heading
    # the report reads are audited
    assert len(srv.audit_events("action = 'compliance.report' AND actor_sub = 'raud'")) == 3


def test_report_page_renders_in_a_browser(ctx):
    """Headless Chromium renders the HTML report and OCR reads its headings."""
    if ctx.backend != "sqlite":
        raise harness.Skip("the page is the same on both backends: rendered once, on SQLite")
    srv = ctx.new_server()
    _scenario(srv)
    h = srv.get("/api/v1/compliance/report?format=html", headers=srv.auth("raud", ("auditor",)))
    assert h.status == 200, h
    _render_and_read(srv, h.body)


def _png_is_not_blank(png):
    """Decompresses the image data and counts distinct bytes: a blank page
    is a handful of values, a rendered report hundreds."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data = 8, b""
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        kind = png[pos + 4:pos + 8]
        if kind == b"IDAT":
            data += png[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(data)
    return len(set(raw[::7])) > 64


def _render_and_read(srv, page):
    html = os.path.join(srv.tmp, "report.html")
    png = os.path.join(srv.tmp, "report.png")
    with open(html, "w") as f:
        f.write(page)
    profile = tempfile.mkdtemp(prefix="oms-chromium-")
    try:
        r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
                            "--window-size=1280,2000", "file://" + html],
                           capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert os.path.exists(png), r.stderr[-2000:]
    shot = open(png, "rb").read()
    assert _png_is_not_blank(shot), "the screenshot is blank"
    ocr = subprocess.run(["tesseract", png, "stdout"], capture_output=True, text=True, timeout=120)
    assert ocr.returncode == 0, ocr.stderr
    text = " ".join(ocr.stdout.split())
    for heading in ("Compliance report", "Summary", "Activity by action", "Changes without an issue",
                    "Emergency overrides", "Merges into protected branches"):
        assert heading.lower() in text.lower(), (heading, text[:3000])
