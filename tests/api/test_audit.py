"""The audit log (SPEC §9, docs/audit.md): the hash chain and its signed
checkpoints, query and export through the API and the CLI, audit of audit
reads, fail-closed writes, the audit key, archiving, upgrades from
unchained events, and one chain across two instances."""

import hashlib
import hmac
import json
import os
import secrets
import stat
import subprocess
import threading
import time

import harness
from harness import quote
from test_audit_util import (COLS, GENESIS, Clone, chain, drop_protection, event_hash, execute, held_seal_lock, rows,
                             sql_literal, verify, wait_sealed)

AUD = ("auditor",)


def _h(srv, sub, roles, **extra):
    h = srv.auth(sub, roles)
    h.update(extra)
    return h


def _deny(srv, sub, rid):
    """A viewer tries a write: 403, one authz.denied event."""
    r = srv.request("POST", "/api/v1/schemas/main/object-types", headers=_h(srv, sub, ("viewer",), **{"X-Request-ID": rid}),
                    json_body={"api_name": "Nope"})
    assert r.status == 403, r
    return r


def _audit(srv, sub="aud", query="", roles=AUD):
    r = srv.get("/api/v1/audit" + query, headers=_h(srv, sub, roles))
    assert r.status == 200, r
    return r.json()


def _key(srv):
    if srv.backend == "pg":
        return srv.env["OMS_AUDIT_KEY"].encode()
    with open(os.path.join(os.path.dirname(srv.db_path), "audit.key"), "rb") as f:
        return f.read().strip()


def _checkpoint_hmac(key, cp):
    """HMAC-SHA256 over "oms-audit-checkpoint/1" and the length-prefixed
    fields, as docs/audit.md describes."""
    msg = b"oms-audit-checkpoint/1"
    for k in ("id", "kind", "from_seq", "upto_seq", "chain_hash", "event_count", "time_ms", "sealed_by", "detail",
              "prev_hmac"):
        v = cp[k]
        if v is None:
            msg += b"|~"
        else:
            b = str(v).encode()
            msg += b"|%d:" % len(b) + b
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def test_chain_and_checkpoints_recomputed_independently(ctx):
    srv = ctx.server
    for i in range(3):
        _deny(srv, "chainvic", f"chain-{i}")
    wait_sealed(srv)
    links = chain(srv)
    prev = GENESIS
    for i, e in enumerate(links):
        assert e["pos"] == i + 1, "chain positions have no gaps"
        assert e["seq"] == e["event_seq"], "every chain row's event is there"
        assert e["prev_hash"] == prev and e["hash"] == event_hash(e), e["pos"]
        prev = e["hash"]
    evs = rows(srv, f"e.seq <= {max(l['event_seq'] for l in links)}")
    assert sorted(l["event_seq"] for l in links) == [e["seq"] for e in evs], "every event is chained, once"
    names = ["id", "kind", "from_seq", "upto_seq", "chain_hash", "event_count", "time_ms", "sealed_by", "detail",
             "prev_hmac", "hmac"]
    cps = [dict(zip(names, r)) for r in srv.query(f"SELECT {', '.join(names)} FROM audit_checkpoints ORDER BY id")]
    key, prev_hmac, by_pos = _key(srv), GENESIS, {e["pos"]: e["hash"] for e in links}
    assert cps
    for i, cp in enumerate(cps):
        assert int(cp["id"]) == i + 1 and cp["prev_hmac"] == prev_hmac
        assert cp["hmac"] == _checkpoint_hmac(key, cp)
        assert cp["chain_hash"] == by_pos[int(cp["upto_seq"])], "checkpoints seal chain positions"
        prev_hmac = cp["hmac"]
    r = srv.get("/api/v1/audit/verify", headers=_h(srv, "aud", AUD))
    assert r.status == 200 and r.json()["ok"] is True and r.json()["first_bad_seq"] is None, r
    assert r.json()["sealed_upto"] >= 3


def test_query_filters_paging_and_audited_reads(ctx):
    srv = ctx.server
    for i in range(3):
        _deny(srv, "qvic", f"q-deny-{i}")
        time.sleep(0.003)  # distinct milliseconds, for the time filters below
    srv.get("/api/v1/me", headers={"Authorization": "Bearer garbage", "X-Request-ID": "q-authfail"})
    wait_sealed(srv)  # an event's hash is its chain link, there once the chainer has run
    got = _audit(srv, query="?actor=qvic")
    assert [e["request_id"] for e in got["items"]] == ["q-deny-2", "q-deny-1", "q-deny-0"], got
    ev = got["items"][0]
    assert ev["action"] == "authz.denied" and ev["outcome"] == "denied" and ev["status"] == 403
    assert ev["actor"] == {"sub": "qvic", "roles": ["viewer"], "client_addr": "127.0.0.1", "user_agent": None}
    assert ev["resource"] == {"kind": "object-types", "branch": "main", "id": None}, ev["resource"]
    assert ev["route"] == "/api/v1/schemas/{branch}/{kind}" and ev["method"] == "POST"
    assert ev["id"].startswith("evt_") and len(ev["hash"]) == 64
    # paging, oldest first
    p1 = _audit(srv, query="?actor=qvic&limit=2&order=asc")
    assert [e["request_id"] for e in p1["items"]] == ["q-deny-0", "q-deny-1"] and p1["next_cursor"]
    p2 = _audit(srv, query="?actor=qvic&limit=2&order=asc&cursor=" + p1["next_cursor"])
    assert [e["request_id"] for e in p2["items"]] == ["q-deny-2"] and p2["next_cursor"] is None
    # ids are time-ordered (docs/storage.md "Time-ordered ids"): made in later milliseconds, they sort later
    asc = p1["items"] + p2["items"]
    assert [e["id"] for e in asc] == sorted(e["id"] for e in asc), asc
    # filters
    assert [e["request_id"] for e in _audit(srv, query="?request_id=q-authfail")["items"]] == ["q-authfail"]
    assert all(e["action"].startswith("auth.") for e in _audit(srv, query="?action=auth.*")["items"])
    assert len(_audit(srv, query="?actor=qvic&outcome=success")["items"]) == 0
    assert len(_audit(srv, query="?actor=qvic&resource=object-types&branch=main")["items"]) == 3
    assert len(_audit(srv, query="?actor=qvic&resource=object-types/Nope")["items"]) == 0
    t0 = ev["time"]
    assert [e["request_id"] for e in _audit(srv, query=f"?actor=qvic&from={quote(t0)}")["items"]] == ["q-deny-2"]
    assert len(_audit(srv, query=f"?actor=qvic&to={quote(t0)}")["items"]) == 2
    for bad in ("?outcome=maybe", "?from=yesterday", "?action=a*b", "?resource=a/b/c", "?limit=0",
                "?cursor=%21", "?from=2026-02-01&to=2026-01-01"):
        r = srv.get("/api/v1/audit" + bad, headers=_h(srv, "aud", AUD))
        assert r.status == 400, (bad, r)
    # one event by id; the literal routes are not ids
    one = srv.get(f"/api/v1/audit/{ev['id']}", headers=_h(srv, "aud", AUD))
    assert one.status == 200 and one.json()["hash"] == ev["hash"]
    assert srv.get("/api/v1/audit/evt_nope", headers=_h(srv, "aud", AUD)).status == 404
    # who may read
    assert srv.get("/api/v1/audit", headers=_h(srv, "q-dev", ("developer",))).status == 403
    assert srv.get("/api/v1/compliance/report", headers=_h(srv, "q-sec", ("security_officer",))).status == 403
    # every read above was itself audited, durably, with its filter
    reads = _audit(srv, query="?actor=aud&action=audit.read&limit=1000")["items"]
    filters = [e["detail"]["filter"] for e in reads if e["detail"]]
    assert {"actor": "qvic", "outcome": "success"} in filters, filters
    assert any(e["resource"]["id"] == ev["id"] for e in reads)


def test_filters_merge_chained_and_queued_events(ctx):
    """A filtered read finds the chained events through audit_facets and the
    newer ones, still queued for the chainer, through its queue (docs/audit.md
    "Queries"): each listed once, newest first, paged across the two; once
    chained, the same list with their links."""
    srv = ctx.new_server()
    made = []
    for i in range(3):
        _deny(srv, "arms", f"arms-old-{i}")
        made.append(f"arms-old-{i}")
    wait_sealed(srv)
    hold = held_seal_lock(srv) if srv.backend == "pg" else None
    try:
        # SQLite's chainer cannot be held off without holding every writer:
        # a round whose events were chained during the reads is made again
        for attempt in range(20):
            new = [f"arms-new-{attempt}-{i}" for i in range(3)]
            for rid in new:
                _deny(srv, "arms", rid)
            made += new
            queued_sql = ("SELECT count(*) FROM audit_unchained q JOIN audit_events e ON e.seq = q.seq"
                          " WHERE e.request_id IN (%s)" % ", ".join(sql_literal(r) for r in new))
            before = int(srv.query(queued_sql)[0][0])
            whole = _audit(srv, query="?actor=arms&limit=1000")["items"]
            paged, cursor = [], ""
            while True:
                page = _audit(srv, query="?actor=arms&limit=2" + ("&cursor=" + cursor if cursor else ""))
                paged += page["items"]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            oldest_first = _audit(srv, query="?actor=arms&limit=1000&order=asc")["items"]
            after = int(srv.query(queued_sql)[0][0])
            assert before == 3 or hold is None, before
            want = list(reversed(made))
            assert [e["request_id"] for e in whole] == want, (attempt, [e["request_id"] for e in whole])
            assert [e["request_id"] for e in paged] == want
            assert [e["request_id"] for e in oldest_first] == made
            chained = {e["request_id"]: e["hash"] is not None for e in whole}
            assert all(chained[r] for r in made[:3])  # sealed before
            if after == 3:
                assert not any(chained[r] for r in new)  # read from the queue
                break
        else:
            raise AssertionError("the chainer chained every round's events during its reads")
    finally:
        if hold:
            hold.stdin.close()
            hold.wait(timeout=10)
    wait_sealed(srv)
    whole = _audit(srv, query="?actor=arms&limit=1000")["items"]
    assert [e["request_id"] for e in whole] == list(reversed(made))
    assert all(len(e["hash"]) == 64 for e in whole)
    # the facets hold what was chained: one row an event, the queue none of them
    n_facets, n_queued = srv.query(
        "SELECT (SELECT count(*) FROM audit_facets f JOIN audit_events e ON e.seq = f.seq"
        " WHERE e.actor_sub = 'arms'), (SELECT count(*) FROM audit_unchained q JOIN audit_events e"
        " ON e.seq = q.seq WHERE e.actor_sub = 'arms')")[0]
    assert (int(n_facets), int(n_queued)) == (len(made), 0)


def test_export_streams_jsonl_and_csv(ctx):
    srv = ctx.server
    for i in range(2):
        _deny(srv, "xvic", f"x-deny-{i}")
    r = srv.get("/api/v1/audit/export?format=jsonl&actor=xvic", headers=_h(srv, "aud", AUD))
    assert r.status == 200 and r.header("Content-Type") == "application/x-ndjson", r
    assert r.header("Transfer-Encoding") == "chunked"
    lines = [json.loads(l) for l in r.body.splitlines()]
    assert [e["request_id"] for e in lines] == ["x-deny-0", "x-deny-1"]
    # the whole log, in order, ends at the newest event when the export began
    total = int(srv.query("SELECT count(*) FROM audit_events")[0][0])
    full = srv.get("/api/v1/audit/export", headers=_h(srv, "aud", AUD)).body.splitlines()
    seqs = [json.loads(l)["seq"] for l in full]
    assert seqs == sorted(seqs) and len(seqs) >= total
    c = srv.get("/api/v1/audit/export?format=csv&actor=xvic", headers=_h(srv, "aud", AUD))
    assert c.status == 200 and c.header("Content-Type").startswith("text/csv")
    import csv
    import io
    table = list(csv.reader(io.StringIO(c.body)))
    assert table[0] == COLS and [t[COLS.index("request_id")] for t in table[1:]] == ["x-deny-0", "x-deny-1"]
    assert srv.get("/api/v1/audit/export?format=xml", headers=_h(srv, "aud", AUD)).status == 400
    exports = _audit(srv, query="?action=audit.export&actor=aud")["items"]
    assert any(e["detail"]["format"] == "csv" and e["detail"]["filter"] == {"actor": "xvic"} for e in exports)
    # the CLI exports the same and records its own event
    cli = srv.run_cli("audit", "export", "--format", "jsonl", "--actor", "xvic")
    assert cli.returncode == 0, cli.stderr
    assert [json.loads(l)["request_id"] for l in cli.stdout.splitlines()] == ["x-deny-0", "x-deny-1"]
    cli = srv.run_cli("audit", "export", "--format", "csv", "--actor", "xvic", "--action", "authz.*")
    assert cli.returncode == 0 and cli.stdout.splitlines()[0].startswith("seq,event_id,"), cli
    assert any(json.loads(d[0]).get("os_user") for d in
               srv.query("SELECT detail FROM audit_events WHERE action = 'audit.export' AND actor_sub = 'oms-cli'"))


def _fail_audit_inserts(srv, on):
    if srv.backend == "sqlite":
        execute(srv, "CREATE TRIGGER audit_broken BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
                if on else "DROP TRIGGER audit_broken;")
    else:
        execute(srv, "CREATE FUNCTION audit_broken() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION"
                     " 'disk full'; END; $$; CREATE TRIGGER audit_broken BEFORE INSERT ON audit_events FOR EACH ROW"
                     " EXECUTE FUNCTION audit_broken();"
                if on else "DROP TRIGGER audit_broken ON audit_events; DROP FUNCTION audit_broken();")


def test_fail_closed_when_the_audit_store_cannot_write(ctx):
    srv = ctx.new_server()
    dev = _h(srv, "fc-dev", ("developer",), **{"X-Issue-ID": "OMS-1"})
    r = srv.request("POST", "/api/v1/branches", headers=dev, json_body={"name": "feature/fc", "from": "main"})
    assert r.status == 201, r
    url = "/api/v1/schemas/" + quote("feature/fc") + "/shared-properties"
    commits = srv.query("SELECT count(*) FROM commits")[0][0]
    _fail_audit_inserts(srv, True)
    try:
        r = srv.request("POST", url, headers=dev, json_body={"api_name": "Lost", "type": "string"})
        assert r.status == 503 and r.json()["code"] == "audit_unavailable", r
        r = srv.request("POST", "/api/v1/schemas/main/object-types", headers=_h(srv, "fc-vic", ("viewer",)),
                        json_body={"api_name": "X"})
        assert r.status == 503 and r.json()["code"] == "audit_unavailable", r
        r = srv.request("POST", "/api/v1/branches", headers=dev, json_body={"name": "feature/fc2", "from": "main"})
        assert r.status == 503, r
    finally:
        _fail_audit_inserts(srv, False)
    # nothing of the refused changes is visible
    assert srv.get(url + "/Lost", headers=dev).status == 404
    assert srv.get("/api/v1/branches/" + quote("feature/fc2"), headers=dev).status == 404
    assert srv.query("SELECT count(*) FROM commits")[0][0] == commits
    # and the service recovers with the store
    assert srv.request("POST", url, headers=dev, json_body={"api_name": "Kept", "type": "string"}).status == 201
    wait_sealed(srv)
    code, v = verify(srv)
    assert code == 0 and v["ok"], v


def test_audit_key_handling(ctx):
    srv = ctx.new_server(start=False)
    if srv.backend == "pg":
        env = dict(srv.env)
        env.pop("OMS_AUDIT_KEY")
        r = subprocess.run([harness.OMS_BIN, "serve"], env=env, capture_output=True, text=True, timeout=30)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert r.returncode == 2 and len(lines) == 1 and "OMS_AUDIT_KEY" in lines[0], r.stderr
        env["OMS_AUDIT_KEY"] = "short"
        r = subprocess.run([harness.OMS_BIN, "serve"], env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "OMS_AUDIT_KEY" in r.stderr, r.stderr
        return
    srv.start()
    path = os.path.join(os.path.dirname(srv.db_path), "audit.key")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    key = open(path).read().strip()
    assert len(key) == 64
    log = srv.read_log()
    assert "generated a random audit key" in log and key not in log
    srv.stop()
    srv.start()
    assert open(path).read().strip() == key, "the key is reused"
    assert srv.read_log().count("generated a random audit key") == 1
    code, v = verify(srv)
    assert code == 0 and v["ok"]
    # a checkpoint signed with another key does not verify
    srv.stop()
    r = srv.run_cli("audit", "verify", env={"OMS_AUDIT_KEY": "another-key-" + "k7Q2xZ9pL4mN8vB3cR6tY1wE5uI0oP"})
    assert r.returncode == 1 and "checkpoint" in r.stdout, r.stdout


def test_migrations_and_lifecycle_are_audited(ctx):
    srv = ctx.new_server()
    srv.stop()
    evs = rows(srv)
    assert evs[0]["action"] == "schema.migrate" and json.loads(evs[0]["detail"])["from_version"] == 0
    actions = [e["action"] for e in evs]
    assert actions[1] == "server.start" and actions[-1] == "server.stop", actions
    # the tail was chained and sealed at shutdown
    assert all(e["pos"] for e in evs), evs
    assert int(srv.query("SELECT MAX(upto_seq) FROM audit_checkpoints")[0][0]) == max(e["pos"] for e in evs)


def test_archive_moves_a_sealed_range_to_a_file(ctx):
    srv = ctx.new_server()
    for i in range(5):
        _deny(srv, "arvic", f"ar-{i}")
    srv.stop()
    # taken once the server has stopped (its last event, server.stop, is
    # older): a cut taken before the stop missed that event on a slow machine
    cut = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1)) + "Z"
    before = sorted(rows(srv), key=lambda e: e["pos"])  # chain order
    out = os.path.join(srv.tmp, "audit-archive.jsonl")
    r = srv.run_cli("audit", "archive", "--before", cut, "--out", out)
    assert r.returncode == 0 and "archived" in r.stdout, (r.stdout, r.stderr)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    lines = open(out).read().splitlines()
    hdr = json.loads(lines[0])
    assert hdr["from_pos"] == 1 and hdr["to_pos"] == before[-1]["pos"] and len(lines) - 1 == len(before)
    assert [json.loads(l)["hash"] for l in lines[1:]] == [e["hash"] for e in before]
    assert [json.loads(l)["pos"] for l in lines[1:]] == [e["pos"] for e in before]
    left = rows(srv)
    assert [e["action"] for e in left] == ["audit.archive"], left
    rec = srv.query("SELECT from_seq, upto_seq, chain_hash, event_count, detail FROM audit_checkpoints"
                    " WHERE kind = 'archive'")
    assert len(rec) == 1 and int(rec[0][1]) == before[-1]["pos"] and rec[0][2] == before[-1]["hash"]
    assert int(srv.query("SELECT count(*) FROM audit_chain")[0][0]) == 0 or \
        int(srv.query("SELECT MIN(pos) FROM audit_chain")[0][0]) > before[-1]["pos"], "archived links left too"
    assert json.loads(rec[0][4])["sha256"] == hashlib.sha256(open(out, "rb").read()).hexdigest()
    code, v = verify(srv)
    assert code == 0 and v["ok"] and v["archived_upto"] == before[-1]["pos"], v
    r = srv.run_cli("audit", "verify", "--archive", out)
    assert r.returncode == 0 and "archive ok" in r.stdout, r.stdout
    # nothing older is left; the file is refused when touched
    r = srv.run_cli("audit", "archive", "--before", "2001-01-01", "--out", out + ".2")
    assert r.returncode == 0 and "nothing to archive" in r.stdout and not os.path.exists(out + ".2")
    with open(out, "r+") as f:
        text = f.read().replace("arvic", "mallory", 1)
        f.seek(0)
        f.write(text)
    r = srv.run_cli("audit", "verify", "--archive", out)
    assert r.returncode == 1 and "TAMPERED" in r.stdout, r.stdout
    # the database refuses to delete events no archive record covers
    srv.start()
    _deny(srv, "arvic", "ar-after")
    seq = rows(srv, "request_id = 'ar-after'")[0]["seq"]
    try:
        execute(srv, f"DELETE FROM audit_events WHERE seq = {seq};")
        raise AssertionError("the delete went through")
    except (RuntimeError, Exception) as e:
        assert "append-only" in str(e), e
    assert srv.get("/api/v1/audit/verify", headers=_h(srv, "aud", AUD)).json()["ok"]


def test_upgrade_adopts_events_written_before_the_chain(ctx):
    """Events written by a version-3 database have no hash: the upgrade
    queues them, the chainer chains them first, the same round seals them,
    and a change to one afterwards is found."""
    srv = ctx.new_server(start=False)
    r = srv.run_cli("migrate", "--to", "3")
    assert r.returncode == 0, r.stderr
    legacy = "INSERT INTO audit_events (event_id, time_ms, actor_sub, action, outcome, http_status, detail) VALUES "
    execute(srv, "".join(f"{legacy}('evt_legacy{i}', {1700000000000 + i}, 'old{i}', 'authz.denied', 'denied', 403,"
                         f" '{{}}');\n" for i in range(3)))
    srv.start()
    wait_sealed(srv)
    evs = rows(srv)
    assert [e["actor_sub"] for e in evs[:3]] == ["old0", "old1", "old2"] and [e["pos"] for e in evs[:3]] == [1, 2, 3]
    assert evs[3]["action"] == "schema.migrate" and evs[3]["prev_hash"] == evs[2]["hash"]
    srv.stop()
    code, v = verify(srv)
    assert code == 0 and v["ok"], v
    c = Clone(srv)
    try:
        drop_protection(srv, url=c.url, path=c.path)
        c.exec("UPDATE audit_events SET actor_sub = 'someone' WHERE event_id = 'evt_legacy1';")
        code, v = c.verify()
        assert code == 1 and not v["ok"] and v["first_bad_seq"] == 2 and "modified" in v["reason"], v
    finally:
        c.drop()


def test_two_instances_write_one_chain(ctx):
    if ctx.backend != "pg":
        raise harness.Skip("PostgreSQL only: several instances share a PostgreSQL database; SQLite runs one alone (SPEC §1)")
    a = ctx.new_server()
    b = ctx.new_server(start=False)
    for k in ("DATABASE_URL", "OMS_AUDIT_KEY"):
        b.env[k] = a.env[k]
    b.env["JWT_SECRET"] = b.secret = a.secret
    b.database_url = a.database_url
    b.start()
    dev = lambda s: _h(s, "two-dev", ("developer",), **{"X-Issue-ID": "OMS-2"})
    assert a.request("POST", "/api/v1/branches", headers=dev(a), json_body={"name": "feature/two", "from": "main"}).status == 201
    url = "/api/v1/schemas/" + quote("feature/two") + "/shared-properties"
    stop = time.time() + 1.5
    errors = []

    def work(srv, tag):
        i = 0
        while time.time() < stop:
            i += 1
            try:
                if i % 2:
                    r = srv.request("POST", url, headers=dev(srv), json_body={"api_name": f"P{tag}_{i}", "type": "string"})
                    ok = r.status == 201  # no If-Match: the head moves by CAS, never refused
                else:
                    ok = _deny(srv, f"two-vic-{tag}", f"two-{tag}-{i}").status == 403
                if not ok:
                    errors.append(r)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=work, args=(s, f"{n}{k}")) for n, s in (("a", a), ("b", b)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    a.stop()
    b.stop()
    evs = rows(a)
    links = chain(a)
    assert [l["pos"] for l in links] == list(range(1, len(links) + 1)), "one chain, no gaps"
    assert sorted(l["event_seq"] for l in links) == [e["seq"] for e in evs], "every event chained exactly once"
    code, v = verify(a)
    assert code == 0 and v["ok"] and v["unsealed"] == 0 and v["pending"] == 0, v
    sealers = {r[0] for r in a.query("SELECT sealed_by FROM audit_checkpoints")}
    assert len(sealers) >= 1
    # both instances' events are in the one chain
    routes = {e["request_id"].split("-")[1][0] for e in evs if (e["request_id"] or "").startswith("two-")}
    assert routes == {"a", "b"}, routes


def test_upgrade_keeps_the_inline_chain_of_versions_4_to_7(ctx):
    """A database chained inline by versions 4-7 (each event hashed at
    insert under the chain head; the events from before version 4 adopted in
    memory; a checkpoint over part of it) upgrades: its links move to
    audit_chain at positions equal to their seq, the older events stay
    positions of their own, new events continue the same chain, and all of
    it verifies. A change to an old event is still found."""
    key = "inline-upgrade-key-" + secrets.token_hex(16)
    srv = ctx.new_server(start=False, env={"OMS_AUDIT_KEY": key})
    assert srv.run_cli("migrate", "--to", "3").returncode == 0
    base = {c: None for c in COLS}
    legacy = [dict(base, seq=s, event_id=f"evt_old{s}", time_ms=1700000000000 + s, actor_sub=f"old{s}",
                   action="authz.denied", outcome="denied", http_status=403, detail="{}") for s in (1, 3)]
    execute(srv, "\n".join(f"INSERT INTO audit_events ({', '.join(COLS[:-2])}) VALUES"
                           f" ({', '.join(sql_literal(e[c]) for c in COLS[:-2])});" for e in legacy))
    assert srv.run_cli("migrate", "--to", "7").returncode == 0
    legacy_upto, head_hash = srv.query("SELECT legacy_upto, hash FROM audit_chain_head")[0]
    assert int(legacy_upto) == 3 and head_hash is None
    # What versions 4-7 did: the first append hashed the legacy events in
    # memory, then each event was hashed at insert and the head moved.
    prev = GENESIS
    for e in legacy:
        prev = event_hash(dict(e, prev_hash=prev))
    now = int(time.time() * 1000)
    stmts, hashes = [], {}
    for s in (4, 5, 6):
        e = dict(base, seq=s, event_id=f"evt_inline{s}", time_ms=now, actor_sub=f"v7user{s}", action="authz.denied",
                 outcome="denied", http_status=403, detail="{}", prev_hash=prev)
        e["hash"] = prev = hashes[s] = event_hash(e)
        stmts.append(f"INSERT INTO audit_events ({', '.join(COLS)}) VALUES ({', '.join(sql_literal(e[c]) for c in COLS)});")
    stmts.append(f"UPDATE audit_chain_head SET seq = 6, hash = '{prev}' WHERE id = 1;")
    cp = {"id": 1, "kind": "seal", "from_seq": 1, "upto_seq": 5, "chain_hash": hashes[5], "event_count": 4,
          "time_ms": now, "sealed_by": "v7:1", "detail": None, "prev_hmac": GENESIS}
    cp["hmac"] = _checkpoint_hmac(key.encode(), cp)
    stmts.append(f"INSERT INTO audit_checkpoints ({', '.join(cp)}) VALUES ({', '.join(sql_literal(v) for v in cp.values())});")
    execute(srv, "BEGIN;\n" + "\n".join(stmts) + "\nCOMMIT;")

    srv.start()  # migrates to the latest version
    _deny(srv, "after-upgrade", "v8-deny")
    wait_sealed(srv)
    srv.stop()
    links = chain(srv)
    code, v = verify(srv)
    assert code == 0 and v["ok"] and v["pending"] == 0 and v["unsealed"] == 0, v
    assert [(l["pos"], l["event_seq"], l["hash"]) for l in links[:3]] == [(s, s, hashes[s]) for s in (4, 5, 6)]
    assert [l["pos"] for l in links] == list(range(4, 4 + len(links))) and links[3]["prev_hash"] == hashes[6]
    assert v["events_checked"] == 2 + len(links), v
    assert rows(srv, "request_id = 'v8-deny'")[0]["seq"] > 6, "the sequence continues after the inline events"
    for where, lo, hi in (("seq = 5", 5, 5), ("seq = 1", 1, 4)):
        c = Clone(srv)
        try:
            drop_protection(srv, url=c.url, path=c.path)
            c.exec(f"UPDATE audit_events SET actor_sub = 'someone' WHERE {where};")
            code, v = c.verify()
            # a legacy event has no hash of its own: its change shows where
            # the chain resumes after the legacy positions
            assert code == 1 and not v["ok"] and lo <= v["first_bad_seq"] <= hi, (where, v)
        finally:
            c.drop()
