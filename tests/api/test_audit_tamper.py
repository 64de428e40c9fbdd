"""Tampering with the audit log directly in the database (SPEC §9): an
attacker with database access drops the protective triggers, then edits,
deletes, reorders or inserts events, rewrites the chain consistently, or
forges, edits or removes checkpoints. `oms audit verify` (and the API)
names the first bad sequence number, or the bad checkpoint, each time.
Each case runs on its own copy of one sealed log."""

import hashlib
import hmac
import secrets

from test_audit_util import COLS, Clone, drop_protection, event_hash, rows, sql_literal, verify, wait_sealed

K = 6  # the event tampered with: a denial in the middle of the log


def _log(ctx):
    """A log of two sealed bursts of denials (so two checkpoints at least)."""
    srv = ctx.new_server()
    for burst in range(2):
        for i in range(4):
            r = srv.request("POST", "/api/v1/schemas/main/object-types",
                            headers={**srv.auth(f"tvic{burst}", ("viewer",)), "X-Request-ID": f"t{burst}-{i}"},
                            json_body={"api_name": "X"})
            assert r.status == 403, r
        wait_sealed(srv)
    srv.stop()
    code, v = verify(srv)  # records (and seals) an audit.verify event of its own
    assert code == 0 and v["ok"] and v["unsealed"] == 0 and v["checkpoints_checked"] >= 2, v
    evs = rows(srv)
    assert evs[K - 1]["action"] == "authz.denied"
    return srv, evs


def _case(srv, sql_fn):
    c = Clone(srv)
    try:
        drop_protection(srv, url=c.url, path=c.path)
        sql = sql_fn(c)
        if sql:
            c.exec(sql)
        return c.verify()
    finally:
        c.drop()


def _set_row(seq, row, skip=("seq",)):
    sets = ", ".join(f"{c} = {sql_literal(row[c])}" for c in COLS if c not in skip)
    return f"UPDATE audit_events SET {sets} WHERE seq = {seq};"


def _bad(result, seq):
    code, v = result
    assert code == 1 and v["ok"] is False, v
    assert v["first_bad_seq"] == seq, (seq, v)
    return v


def test_tampered_events_are_found(ctx):
    srv, evs = _log(ctx)
    n = evs[-1]["seq"]
    a, b = evs[K - 1], evs[K]

    # an edited field
    v = _bad(_case(srv, lambda c: f"UPDATE audit_events SET actor_sub = 'mallory' WHERE seq = {K};"), K)
    assert "modified" in v["reason"]
    _bad(_case(srv, lambda c: f"UPDATE audit_events SET http_status = 200, outcome = 'success' WHERE seq = {K};"), K)
    # a deleted event
    v = _bad(_case(srv, lambda c: f"DELETE FROM audit_events WHERE seq = {K};"), K)
    assert "missing" in v["reason"]
    # two events swapped (their contents exchange sequence numbers)
    _bad(_case(srv, lambda c: f"UPDATE audit_events SET event_id = 'tmp' WHERE seq = {K};"
                              + _set_row(K + 1, a) + _set_row(K, b)), K)
    # a forged event inserted at K, the rest shifted up by one
    forged = dict(a, event_id="evt_" + secrets.token_hex(16), actor_sub="ghost")
    forged["prev_hash"] = evs[K - 2]["hash"]
    ins = f"INSERT INTO audit_events ({', '.join(COLS)}) VALUES ({', '.join(sql_literal(forged[c]) for c in COLS)});"
    _bad(_case(srv, lambda c: f"UPDATE audit_events SET seq = -seq WHERE seq >= {K};"
                              f" UPDATE audit_events SET seq = 1 - seq WHERE seq < 0; " + ins), K)
    # a well-formed event appended behind the service's back
    tail = dict(evs[-1], seq=n + 1, event_id="evt_" + secrets.token_hex(16), prev_hash=evs[-1]["hash"])
    tail["hash"] = event_hash(tail)
    ins = f"INSERT INTO audit_events ({', '.join(COLS)}) VALUES ({', '.join(sql_literal(tail[c]) for c in COLS)});"
    v = _bad(_case(srv, lambda c: ins), n + 1)
    assert "inserted" in v["reason"]
    # the newest (sealed) event removed
    _bad(_case(srv, lambda c: f"DELETE FROM audit_events WHERE seq = {n};"), n)


def test_consistent_rewrite_is_caught_by_the_signed_checkpoint(ctx):
    """Rewriting an event and re-hashing everything after it (and the head)
    passes every row check; only the HMAC-signed checkpoint shows it."""
    srv, evs = _log(ctx)

    def rewrite(c):
        out, prev = [], evs[K - 2]["hash"]
        for e in evs[K - 1:]:
            e = dict(e)
            if e["seq"] == K:
                e["actor_sub"] = "mallory"
            e["prev_hash"] = prev
            e["hash"] = prev = event_hash(e)
            out.append(_set_row(e["seq"], e))
        out.append(f"UPDATE audit_chain_head SET hash = '{prev}' WHERE id = 1;")
        return "\n".join(out)

    code, v = _case(srv, rewrite)
    assert code == 1 and not v["ok"] and v["bad_checkpoint"], v
    assert v["first_bad_seq"] <= K and "checkpoint" in v["reason"], v


def test_forged_modified_and_removed_checkpoints_are_found(ctx):
    srv, evs = _log(ctx)
    names = ["id", "kind", "from_seq", "upto_seq", "chain_hash", "event_count", "time_ms", "sealed_by", "detail",
             "prev_hmac", "hmac"]
    cps = [dict(zip(names, r)) for r in srv.query(f"SELECT {', '.join(names)} FROM audit_checkpoints ORDER BY id")]
    last = cps[-1]

    # forged without the key: HMAC with a guessed key
    def forge(c):
        cp = {"id": int(last["id"]) + 1, "kind": "seal", "from_seq": int(last["upto_seq"]) + 1,
              "upto_seq": int(last["upto_seq"]) + 1, "chain_hash": "ab" * 32, "event_count": 1, "time_ms": 1,
              "sealed_by": "attacker", "detail": None, "prev_hmac": last["hmac"]}
        msg = b"oms-audit-checkpoint/1" + b"".join(
            b"|~" if cp[k] is None else b"|%d:" % len(str(cp[k]).encode()) + str(cp[k]).encode() for k in names[:-1])
        cp["hmac"] = hmac.new(b"guessed-key-" + secrets.token_bytes(16), msg, hashlib.sha256).hexdigest()
        return (f"INSERT INTO audit_checkpoints ({', '.join(names)}) VALUES "
                f"({', '.join(sql_literal(cp[k]) for k in names)});")

    code, v = _case(srv, forge)
    assert code == 1 and v["bad_checkpoint"] == int(last["id"]) + 1 and "forged" in v["reason"], v
    # an existing checkpoint edited
    code, v = _case(srv, lambda c: f"UPDATE audit_checkpoints SET upto_seq = upto_seq - 1 WHERE id = {last['id']};")
    assert code == 1 and v["bad_checkpoint"] == int(last["id"]), v
    # one removed
    code, v = _case(srv, lambda c: "DELETE FROM audit_checkpoints WHERE id = 1;")
    assert code == 1 and v["bad_checkpoint"] == 1 and "missing" in v["reason"], v


def test_api_verify_reports_tampering(ctx):
    srv, evs = _log(ctx)
    c = Clone(srv)
    other = ctx.new_server(start=False)
    try:
        drop_protection(srv, url=c.url, path=c.path)
        c.exec(f"UPDATE audit_events SET detail = '{{\"reason\":\"nothing to see\"}}' WHERE seq = {K};")
        other.env.update(c.env)
        other.env["JWT_SECRET"] = other.secret
        if srv.backend == "pg":
            other.env["OMS_AUDIT_KEY"] = srv.env["OMS_AUDIT_KEY"]
        other.start()
        r = other.get("/api/v1/audit/verify", headers=other.auth("aud", ("auditor",)))
        assert r.status == 200, r
        assert r.json()["ok"] is False and r.json()["first_bad_seq"] == K, r.json()
    finally:
        other.stop()
        c.drop()
