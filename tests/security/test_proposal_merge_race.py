"""A proposal merges exactly the source commit its approvals were given for
(SPEC §4, issue #10 item 1). The attack: a reviewer merges an approved
proposal while its author pushes a new commit to the source at the same
moment. Before the fix the merge re-read the source branch by name, outside
the approval check, and `main` fast-forwarded to the unreviewed commit in a
few percent of rounds. Now the approval check and the merge share one
transaction and the merge takes the approved commit id: `main` only ever
gains reviewed commits, and a source that moved answers 409 source_moved."""

import random
import threading
import time

from harness import quote

ROUNDS = 150
WRITERS = 4


def _h(srv, sub, roles, **extra):
    h = srv.auth(sub, roles)
    h["X-Issue-ID"] = "SEC-1"
    h.update(extra)
    return h


def _round(srv, i):
    """One race; returns (merge status, merge code, names on main that no reviewer saw)."""
    src = f"race/r{i}"
    dev = _h(srv, "author", ("developer",))
    assert srv.request("POST", "/api/v1/branches", headers=dev, json_body={"name": src, "from": "main"}).status == 201
    reviewed = f"Reviewed{i}"
    assert srv.request("POST", f"/api/v1/schemas/{quote(src)}/shared-properties", headers=dev,
                       json_body={"api_name": reviewed, "type": "string"}).status == 201
    pid = srv.request("POST", "/api/v1/proposals", headers=dev,
                      json_body={"source": src, "target": "main", "title": f"round {i}"}).json()["id"]
    r = srv.request("POST", f"/api/v1/proposals/{pid}/approve", headers=_h(srv, "rita", ("reviewer",)))
    assert r.status == 200 and r.json()["state"] == "approved", r
    approved_head = r.json()["source_head"]

    start = threading.Event()
    out = {}

    def merge():
        start.wait()
        out["merge"] = srv.request("POST", f"/api/v1/proposals/{pid}/merge",
                                   headers=_h(srv, "rita", ("reviewer",)), json_body={})

    def sneak(k):
        start.wait()
        time.sleep(random.random() * 0.004)  # spread the writes across the merge's window
        srv.request("POST", f"/api/v1/schemas/{quote(src)}/shared-properties", headers=dev,
                    json_body={"api_name": f"Unreviewed{i}x{k}", "type": "string"})

    threads = [threading.Thread(target=merge)] + [threading.Thread(target=sneak, args=(k,)) for k in range(WRITERS)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join()
    m = out["merge"]
    names = {x["api_name"] for x in srv.get("/api/v1/schemas/main/shared-properties?limit=1000",
                                            headers=_h(srv, "v", ("viewer",))).json()["items"]}
    leaked = {n for n in names if n.startswith("Unreviewed")}
    code = m.json().get("code") if m.status != 200 else None
    if m.status == 200:
        main_head = srv.get("/api/v1/branches/main", headers=_h(srv, "v", ("viewer",))).json()["head"]
        commit = srv.get(f"/api/v1/commits/{main_head}", headers=_h(srv, "v", ("viewer",))).json()
        # a fast-forward to the approved commit, or a merge commit whose second parent it is
        assert main_head == approved_head or approved_head in commit["parents"], (approved_head, commit)
        assert reviewed in names
    return m.status, code, leaked


def test_merge_never_takes_an_unreviewed_commit(ctx):
    srv = ctx.new_server()
    outcomes = {}
    for i in range(ROUNDS):
        status, code, leaked = _round(srv, i)
        assert not leaked, f"round {i}: unreviewed resources reached main: {sorted(leaked)}"
        assert (status, code) in {(200, None), (409, "source_moved"), (409, "approvals_required")}, (i, status, code)
        outcomes[(status, code)] = outcomes.get((status, code), 0) + 1
    print(f"  outcomes over {ROUNDS} rounds: {outcomes}")
    # main's history holds only proposal merges: every commit that reached it was reviewed
    merges = srv.audit_events("action = 'proposal.merge' AND outcome = 'success'")
    assert len(merges) == outcomes.get((200, None), 0)


def test_concurrent_merges_of_one_proposal(ctx):
    """Eight reviewers merge one approved proposal at once: exactly one
    merges, the others get 409 invalid_state on both backends (issue #11
    item 7: PostgreSQL answered `conflict`, SQLite `invalid_state`)."""
    srv = ctx.server
    dev = _h(srv, "author", ("developer",))
    for i in range(5):
        src = f"twice/r{i}"
        assert srv.request("POST", "/api/v1/branches", headers=dev, json_body={"name": src, "from": "main"}).status == 201
        assert srv.request("POST", f"/api/v1/schemas/{quote(src)}/shared-properties", headers=dev,
                           json_body={"api_name": f"Twice{i}", "type": "string"}).status == 201
        pid = srv.request("POST", "/api/v1/proposals", headers=dev,
                          json_body={"source": src, "target": "main", "title": "twice"}).json()["id"]
        assert srv.request("POST", f"/api/v1/proposals/{pid}/approve",
                           headers=_h(srv, "rita", ("reviewer",))).status == 200
        start = threading.Event()
        results = []

        def merge(k):
            start.wait()
            results.append(srv.request("POST", f"/api/v1/proposals/{pid}/merge",
                                       headers=_h(srv, f"rev{k}", ("reviewer",)), json_body={}))

        threads = [threading.Thread(target=merge, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        start.set()
        for t in threads:
            t.join()
        assert sorted(r.status for r in results) == [200] + [409] * 7, results
        assert {r.json()["code"] for r in results if r.status == 409} == {"invalid_state"}, results
