"""A crash at any moment loses no event for any response that was sent
(SPEC §9). Client threads write (schema creates on a feature branch) and get
denied (a viewer calling a write route) while the server is killed with
SIGKILL at a random moment; after a restart on the same database every
change whose 201 the client received exists, every response's request id
has its audit event, and the chain verifies."""

import random
import threading
import time

from harness import quote
from test_audit_util import rows, verify, wait_sealed

WRITERS = 4
DENIERS = 4


def test_kill_9_loses_no_acknowledged_event(ctx):
    srv = ctx.new_server()
    dev = {**srv.auth("crash-dev", ("developer",)), "X-Issue-ID": "OMS-9"}
    r = srv.request("POST", "/api/v1/branches", headers=dev, json_body={"name": "feature/crash", "from": "main"})
    assert r.status == 201, r
    url = "/api/v1/schemas/" + quote("feature/crash") + "/shared-properties"
    viewer = srv.auth("crash-vic", ("viewer",))
    got = []  # (kind, request id, status, name, commit) for every response received
    lock = threading.Lock()
    dead = threading.Event()

    def client(kind, n):
        i = 0
        while not dead.is_set():
            i += 1
            rid = f"crash-{kind}{n}-{i}"
            name = f"C{kind}{n}_{i}"
            try:
                if kind == "w":
                    resp = srv.request("POST", url, headers={**dev, "X-Request-ID": rid},
                                       json_body={"api_name": name, "type": "string"}, timeout=5)
                else:
                    resp = srv.request("POST", url, headers={**viewer, "X-Request-ID": rid},
                                       json_body={"api_name": name, "type": "string"}, timeout=5)
            except Exception:  # noqa: BLE001 - the server died under this request: no response
                continue
            with lock:
                got.append((kind, rid, resp.status, name, resp.header("X-Commit")))

    threads = [threading.Thread(target=client, args=(k, n)) for k, cnt in (("w", WRITERS), ("d", DENIERS))
               for n in range(cnt)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(0.5, 2.0))
    srv.proc.kill()  # SIGKILL: no drain, no flush, no final seal
    srv.proc.wait()
    dead.set()
    for t in threads:
        t.join()
    srv.stop()
    writes = [g for g in got if g[0] == "w" and g[2] == 201]
    denials = [g for g in got if g[0] == "d" and g[2] == 403]
    assert writes and denials, (len(writes), len(denials))
    # every answered write committed, every answered denial was refused
    wrong = [g for g in got if g[2] != {"w": 201, "d": 403}[g[0]]]
    assert not wrong, wrong[:5]

    srv.start()
    events = {e["request_id"]: e for e in rows(srv, "request_id LIKE 'crash-%'")}
    for kind, rid, status, name, commit in got:
        e = events.get(rid)
        assert e is not None, f"no audit event for acknowledged request {rid} ({status})"
        assert e["http_status"] == status, (rid, e)
        if status == 201:
            assert e["action"] == "shared_property.create" and e["commit_id"] == commit, (rid, e)
        else:
            assert e["action"] == "authz.denied" and e["outcome"] == "denied", (rid, e)
    listed = set()
    cursor = ""
    while True:
        page = srv.get(url + "?limit=1000" + (f"&cursor={cursor}" if cursor else ""), headers=dev).json()
        listed |= {i["api_name"] for i in page["items"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    missing = [g[3] for g in writes if g[3] not in listed]
    assert not missing, f"acknowledged changes lost: {missing[:5]}"
    for g in random.sample(writes, min(5, len(writes))):
        assert srv.get(f"/api/v1/commits/{g[4]}", headers=dev).status == 200, g
    wait_sealed(srv)
    srv.stop()
    code, v = verify(srv)
    assert code == 0 and v["ok"], v
