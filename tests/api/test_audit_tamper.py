"""Tampering with the audit log directly in the database (SPEC §9): an
attacker with database access drops the protective triggers, then edits,
deletes, reorders or inserts events, edits, removes or reorders chain rows,
rewrites the chain consistently, forges, edits or removes checkpoints, or
edits the facets filtered reads find events by.
`oms audit verify` (and the API) names the first bad sequence number, or the
bad checkpoint, each time. Events the chainer has not reached yet are
pending, not tampering. Each case runs on its own copy of one sealed log."""

import hashlib
import hmac
import json
import secrets
import subprocess
import threading
import time

from test_audit_util import (EVENT_COLS, Clone, chain, drop_protection, event_hash, held_seal_lock, rows, sql_literal,
                             verify, wait_sealed)

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
    assert code == 0 and v["ok"] and v["unsealed"] == 0 and v["pending"] == 0 and v["checkpoints_checked"] >= 2, v
    evs = rows(srv)
    assert evs[K - 1]["action"] == "authz.denied" and all(e["pos"] for e in evs)
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
    sets = ", ".join(f"{c} = {sql_literal(row[c])}" for c in EVENT_COLS if c not in skip)
    return f"UPDATE audit_events SET {sets} WHERE seq = {seq};"


def _insert(row):
    return (f"INSERT INTO audit_events ({', '.join(EVENT_COLS)}) VALUES"
            f" ({', '.join(sql_literal(row[c]) for c in EVENT_COLS)});")


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
    _bad(_case(srv, lambda c: f"UPDATE audit_events SET seq = -seq WHERE seq >= {K};"
                              f" UPDATE audit_events SET seq = 1 - seq WHERE seq < 0; " + _insert(forged)), K)
    # a well-formed event appended behind the service's back (not queued for
    # the chainer, as the service's own transaction would have): found at
    # once, however young
    tail = dict(evs[-1], seq=n + 1, event_id="evt_" + secrets.token_hex(16), time_ms=int(time.time() * 1000))
    v = _bad(_case(srv, lambda c: _insert(tail)), n + 1)
    assert "inserted" in v["reason"]
    # the newest (sealed) event removed
    _bad(_case(srv, lambda c: f"DELETE FROM audit_events WHERE seq = {n};"), n)


def test_tampered_chain_rows_are_found(ctx):
    srv, evs = _log(ctx)
    links = chain(srv)
    at = {l["event_seq"]: l["pos"] for l in links}
    pk, last = at[K], links[-1]
    # a link's hash or prev_hash edited: the event no longer matches it
    v = _bad(_case(srv, lambda c: f"UPDATE audit_chain SET hash = '{'0' * 64}' WHERE pos = {pk};"), K)
    assert "modified" in v["reason"]
    _bad(_case(srv, lambda c: f"UPDATE audit_chain SET prev_hash = '{'1' * 64}' WHERE pos = {pk};"), K)
    # a link removed: a gap in the positions, and the event it held is in no
    # chain and no queue
    v = _bad(_case(srv, lambda c: f"DELETE FROM audit_chain WHERE pos = {pk};"), K)
    assert "missing" in v["reason"], v
    # two links exchanged: position pk now names event K + 1
    _bad(_case(srv, lambda c: f"UPDATE audit_chain SET event_seq = -1 WHERE pos = {pk};"
                              f" UPDATE audit_chain SET event_seq = {K} WHERE pos = {at[K + 1]};"
                              f" UPDATE audit_chain SET event_seq = {K + 1} WHERE pos = {pk};"), K + 1)
    # the sealed tail cut, links and events together: the checkpoint says so
    code, v = _case(srv, lambda c: f"DELETE FROM audit_events WHERE seq = {last['event_seq']};"
                                   f" DELETE FROM audit_chain WHERE pos = {last['pos']};")
    assert code == 1 and v["bad_checkpoint"] and "missing" in v["reason"], v


def test_pending_events_are_not_tampering(ctx):
    """An event committed but not chained yet (its queue row written by the
    same transaction, as the service does) is pending; overdue once older
    than the grace period, which says no chainer runs. A queue row whose
    event is gone is an event deleted before it was chained."""
    srv, evs = _log(ctx)
    n = evs[-1]["seq"]

    def late(age_ms):
        ev = dict(evs[-1], seq=n + 1, event_id="evt_" + secrets.token_hex(16),
                  time_ms=int(time.time() * 1000) - age_ms)
        return _insert(ev) + f" INSERT INTO audit_unchained (seq) VALUES ({n + 1});"

    code, v = _case(srv, lambda c: late(0))
    assert code == 0 and v["ok"] and v["pending"] == 1 and v["pending_overdue"] == 0, v
    code, v = _case(srv, lambda c: late(60000))
    assert code == 0 and v["ok"] and v["pending"] == 1 and v["pending_overdue"] == 1, v
    v = _bad(_case(srv, lambda c: late(0) + f" DELETE FROM audit_events WHERE seq = {n + 1};"), n + 1)
    assert "deleted before it was chained" in v["reason"], v


def test_tampered_facets_are_found(ctx):
    """audit_facets, what filtered reads find chained events by (docs/audit.md
    "Queries"), is derived from the chain: a row removed, edited or added
    behind the service's back would hide an event from every filtered read,
    or list one under a false actor, while the chain itself verified."""
    srv, evs = _log(ctx)
    n = evs[-1]["seq"]
    # an event hidden from filtered reads
    v = _bad(_case(srv, lambda c: f"DELETE FROM audit_facets WHERE seq = {K};"), K)
    assert "audit_facets" in v["reason"], v
    # listed under another actor, or at another time
    _bad(_case(srv, lambda c: f"UPDATE audit_facets SET actor_sub = 'mallory' WHERE seq = {K};"), K)
    _bad(_case(srv, lambda c: f"UPDATE audit_facets SET time_ms = time_ms - 86400000 WHERE seq = {K};"), K)
    _bad(_case(srv, lambda c: f"UPDATE audit_facets SET request_id = NULL WHERE seq = {K};"), K)
    # a row for an event that is not there, or not chained yet
    row = evs[K - 1]
    v = _bad(_case(srv, lambda c: "INSERT INTO audit_facets (seq, time_ms, actor_sub, action, resource_branch,"
                                  f" request_id) VALUES ({n + 5}, {row['time_ms']}, 'ghost', 'authz.denied',"
                                  " 'main', NULL);"), n + 5)
    assert "gone or not chained" in v["reason"], v


def test_rebuild_facets_repairs_what_verify_found(ctx):
    """`oms audit rebuild-facets` writes audit_facets again from the events
    (docs/audit.md "Queries"): after a row removed, one edited and one added,
    verification passes again, and the command's own event says what step 5
    would have found before."""
    srv, evs = _log(ctx)
    n, row = evs[-1]["seq"], evs[K - 1]
    c = Clone(srv)
    try:
        drop_protection(srv, url=c.url, path=c.path)
        c.exec(f"DELETE FROM audit_facets WHERE seq = {K};"
               f" UPDATE audit_facets SET actor_sub = 'mallory' WHERE seq = {K + 1};"
               " INSERT INTO audit_facets (seq, time_ms, actor_sub, action, resource_branch, request_id) VALUES"
               f" ({n + 5}, {row['time_ms']}, 'ghost', 'authz.denied', 'main', NULL);")
        _bad(c.verify(), K)
        r = srv.run_cli("audit", "rebuild-facets", env=c.env)
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert f"first event with a missing or altered row was seq {K}" in r.stdout, r.stdout
        assert f"first row without its event seq {n + 5}" in r.stdout, r.stdout
        code, v = c.verify()
        assert code == 0 and v["ok"], v
        # one row an event chained, each with its event's own values
        assert c.query("SELECT count(*) FROM audit_facets f JOIN audit_events e ON e.seq = f.seq"
                       " WHERE f.actor_sub = e.actor_sub AND f.time_ms = e.time_ms")[0][0] == \
            c.query("SELECT count(*) FROM audit_chain")[0][0]
        detail = json.loads(c.query("SELECT detail FROM audit_events WHERE action = 'audit.facets_rebuild'")[0][0])
        assert detail["first_differing_seq"] == K and detail["first_orphan_seq"] == n + 5, detail
        assert detail["rows"] >= n and detail["os_user"], detail
        # an intact table: rebuilt all the same, reported intact
        r = srv.run_cli("audit", "rebuild-facets", env=c.env)
        assert r.returncode == 0 and "they were intact" in r.stdout, (r.stdout, r.stderr)
        assert srv.run_cli("audit", "rebuild-facets", "--now", env=c.env).returncode == 2
    finally:
        c.drop()


def test_rebuild_facets_beside_a_running_server(ctx):
    """The rebuild takes the sealer's lock in one transaction: run again and
    again while a server appends, chains and seals events, it leaves no
    event without its row and none twice, and every filtered read finds
    each event once."""
    srv = ctx.new_server()
    stop, made = threading.Event(), []

    def deny():
        i = 0
        while not stop.is_set():
            rid = f"rb-{i}"
            r = srv.request("POST", "/api/v1/schemas/main/object-types",
                            headers={**srv.auth("rbvic", ("viewer",)), "X-Request-ID": rid}, json_body={"api_name": "X"})
            assert r.status == 403, r
            made.append(rid)
            i += 1

    t = threading.Thread(target=deny)
    t.start()
    try:
        for _ in range(4):
            r = srv.run_cli("audit", "rebuild-facets")
            assert r.returncode == 0, (r.stdout, r.stderr)
            time.sleep(0.1)
    finally:
        stop.set()
        t.join()
    assert len(made) > 20, len(made)
    if srv.backend == "pg":
        # it waits for the sealer's lock (SQLite's write transaction is the
        # same exclusion there): held elsewhere, the rebuild has not run
        hold = held_seal_lock(srv)
        try:
            p = subprocess.Popen([srv.binary, "audit", "rebuild-facets"], env=srv.env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            time.sleep(1.5)
            assert p.poll() is None, p.communicate()
        finally:
            hold.stdin.close()
            hold.wait(timeout=10)
        out, errs = p.communicate(timeout=30)
        assert p.returncode == 0 and "rebuilt" in out, (out, errs)
    wait_sealed(srv)
    r = srv.get("/api/v1/audit/verify", headers=srv.auth("aud", ("auditor",)))
    assert r.status == 200 and r.json()["ok"] is True, r
    found, cursor = [], ""
    while True:
        page = srv.get("/api/v1/audit?actor=rbvic&limit=1000&cursor=" + cursor,
                       headers=srv.auth("aud", ("auditor",))).json()
        found += [e["request_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(found) == sorted(made), (len(found), len(made))


def test_consistent_rewrite_is_caught_by_the_signed_checkpoint(ctx):
    """Rewriting an event and re-hashing every link from it on passes every
    row check; only the HMAC-signed checkpoint shows it."""
    srv, evs = _log(ctx)
    links = chain(srv)

    def rewrite(c):
        i = next(i for i, l in enumerate(links) if l["event_seq"] == K)
        out, prev = [f"UPDATE audit_events SET actor_sub = 'mallory' WHERE seq = {K};"], links[i - 1]["hash"]
        for e in links[i:]:
            e = dict(e)
            if e["seq"] == K:
                e["actor_sub"] = "mallory"
            e["prev_hash"] = prev
            e["hash"] = prev = event_hash(e)
            out.append(f"UPDATE audit_chain SET prev_hash = '{e['prev_hash']}', hash = '{e['hash']}' WHERE pos = {e['pos']};")
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
