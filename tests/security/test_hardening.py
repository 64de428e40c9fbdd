"""Hardening (issue #10 item 6): each test performs one attack against the
real server and asserts the one outcome SPEC §6/§7 or the decision written
in docs/security.md ("Hardening (issue #10 item 6)") names."""

from harness import quote

DEV = ("developer",)
JUSTIFICATION = "Production incident: the billing pipeline is down and needs an urgent schema fix now."


def _h(srv, sub="dev", roles=DEV, issue="HARD-1", **extra):
    h = srv.auth(sub, roles)
    if issue:
        h["X-Issue-ID"] = issue
    h.update(extra)
    return h


def _branch(srv, name, frm="main"):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": frm})
    assert r.status == 201, r


def _sp(name, desc=""):
    return {"api_name": name, "type": "string", "description": desc}


def _override_body(**over):
    body = {"kind": "protected_branch", "branch": "main", "justification": JUSTIFICATION, "incident": "INC-1",
            "ttl_seconds": 600}
    body.update(over)
    return body


# ---- (a) override justification: meaningful characters ----

def test_a_padded_justification_refused(ctx):
    srv = ctx.server
    n_before = len(srv.query("SELECT id FROM overrides"))
    attacks = [
        " " * 60,                                     # the reported attack
        "\t\n " * 30,                                 # any ASCII whitespace
        "fix" + " " * 60,                             # padding after a word
        "   urgent fix   " + " " * 50 + "  now  ",    # padding in the middle
        "urgent fix" + "\u00a0" * 50,                 # no-break spaces
        "urgent fix" + "\u200b" * 50,                 # zero-width spaces
        "." * 60,                                     # no letters at all
        "-_-" * 20,
        "a" * 60,                                     # one character repeated
    ]
    for just in attacks:
        r = srv.request("POST", "/api/v1/overrides", headers=_h(srv), json_body=_override_body(justification=just))
        assert r.status == 400, (just, r)
        assert "justification" in r.json()["detail"], r
    # the incident names one: whitespace is no name
    r = srv.request("POST", "/api/v1/overrides", headers=_h(srv), json_body=_override_body(incident="   "))
    assert r.status == 400 and "incident" in r.json()["detail"], r
    assert len(srv.query("SELECT id FROM overrides")) == n_before
    # a real sentence of 50 meaningful characters still passes, whatever its padding
    real = "  Disk full on the primary: schema fix needed now...  "
    assert len(real.strip()) == 50
    r = srv.request("POST", "/api/v1/overrides", headers=_h(srv), json_body=_override_body(justification=real))
    assert r.status == 201, r
    srv.request("POST", f"/api/v1/overrides/{r.json()['id']}/cancel", headers=_h(srv))
