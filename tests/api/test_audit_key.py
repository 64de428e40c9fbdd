"""The audit key against a database that already holds signed checkpoints
(docs/audit.md "The key", docs/operations.md "Audit"): a copy restored
without its audit.key, or started with another OMS_AUDIT_KEY, refuses to
start instead of signing a history that would then verify as forged; no
command generates a key over existing checkpoints; a verification with a
wrong key adds no checkpoint."""

import os
import secrets
import subprocess

import harness
from test_audit_util import verify, wait_sealed


def _serve_refused(srv, env=None):
    """`oms serve` with the server's settings: (exit code, stderr lines), or
    fails when it starts serving instead of refusing."""
    e = dict(srv.env)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    p = subprocess.Popen([harness.OMS_BIN, "serve"], env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    try:
        _, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        raise AssertionError("oms serve started with a key that did not sign the checkpoints: " + err[-1500:])
    return p.returncode, [l for l in err.splitlines() if l.strip()]


def _checkpoints(srv):
    return int(srv.query("SELECT count(*) FROM audit_checkpoints")[0][0])


def _signed_history(srv):
    for i in range(3):
        h = srv.auth("key-vic", ("viewer",))
        h["X-Request-ID"] = f"key-deny-{i}"
        assert srv.request("POST", "/api/v1/schemas/main/object-types", headers=h,
                           json_body={"api_name": "Nope"}).status == 403
    wait_sealed(srv)  # sealed within a second
    srv.stop()
    assert _checkpoints(srv) >= 1


def test_a_copy_restored_without_its_key_refuses_to_start(ctx):
    srv = ctx.new_server()
    _signed_history(srv)
    before = _checkpoints(srv)
    wrong = "wrong-audit-key-" + secrets.token_hex(24)
    if srv.backend == "sqlite":
        path = os.path.join(os.path.dirname(srv.db_path), "audit.key")
        os.rename(path, path + ".backup")  # the copy came back without it
        code, lines = _serve_refused(srv)
        assert code == 2 and len(lines) == 1, (code, lines)
        assert "OMS_AUDIT_KEY" in lines[0] and "audit.key" in lines[0] and "checkpoint" in lines[0], lines
        assert not os.path.exists(path), "no new key over signed checkpoints"
        r = srv.run_cli("audit", "seal")  # another command that signs
        assert r.returncode == 2 and "OMS_AUDIT_KEY" in r.stderr and not os.path.exists(path), r.stderr
        # verify reads with the key it is given and reports what it finds
        assert srv.run_cli("audit", "verify").returncode == 2
        os.rename(path + ".backup", path)
    # another key: refused, whichever backend
    code, lines = _serve_refused(srv, {"OMS_AUDIT_KEY": wrong})
    assert code == 2 and len(lines) == 1 and "OMS_AUDIT_KEY" in lines[0], (code, lines)
    r = srv.run_cli("audit", "seal", env={"OMS_AUDIT_KEY": wrong})
    assert r.returncode == 2 and "OMS_AUDIT_KEY" in r.stderr, r.stderr
    # verification with the wrong key finds the checkpoints unverifiable and
    # signs nothing with it
    code, v = verify(srv, env={"OMS_AUDIT_KEY": wrong})
    assert code == 1 and v["bad_checkpoint"], v
    assert _checkpoints(srv) == before, "a wrong key signed a checkpoint"
    # the right key: the service starts and the history verifies
    srv.start()
    h = srv.auth("key-vic", ("viewer",))
    assert srv.request("POST", "/api/v1/schemas/main/object-types", headers=h,
                       json_body={"api_name": "Nope"}).status == 403
    wait_sealed(srv)
    srv.stop()
    assert _checkpoints(srv) > before
    code, v = verify(srv)
    assert code == 0 and v["ok"], v
