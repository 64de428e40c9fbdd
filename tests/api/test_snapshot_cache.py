"""The snapshot cache and the reverse-reference index (issue #21,
docs/storage.md "In-memory snapshots"): writers queued on one branch find
the previous writer's state in the cache (it is published before COMMIT), so
none reloads the branch while holding its row lock; integrity checks that
use the index refuse exactly what a scan of the whole ontology refused, also
at 10,000 types."""

import threading

import large_ontology
from harness import quote

DEV = ("developer",)
ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


def _h(srv, sub="dev", roles=DEV, **extra):
    h = srv.auth(sub, roles)
    h["X-Issue-ID"] = "OMS-21"
    h.update(extra)
    return h


def _any(srv):
    return _h(srv, **{"If-Match": "*"})


def _branch(srv, name):
    r = srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": ROOT})
    assert r.status == 201, r


def _url(branch, kind, name=None):
    u = f"/api/v1/schemas/{quote(branch)}/{kind}"
    return u + (f"/{name}" if name else "")


def _counter(srv, name, path):
    r = srv.get("/metrics", headers=srv.auth("svc", ("service_account",)))
    assert r.status == 200, r
    want = f'{name}{{path="{path}"}} '
    for line in r.body.split("\n"):
        if line.startswith(want):
            return float(line[len(want):])
    raise AssertionError(f"{want} missing from /metrics")


def test_sixteen_writers_on_one_branch_never_reload(ctx):
    srv = ctx.server
    b = "cache/one"
    _branch(srv, b)
    # the first write may load the new branch's state; the rest must not
    r = srv.request("POST", _url(b, "shared-properties"), headers=_h(srv),
                    json_body={"api_name": "Warm", "type": "string"})
    assert r.status == 201, r
    miss0 = _counter(srv, "oms_snapshot_cache_misses_total", "commit")
    hit0 = _counter(srv, "oms_snapshot_cache_hits_total", "commit")
    statuses = []

    def writer(w):
        for i in range(8):
            rr = srv.request("POST", _url(b, "shared-properties"), headers=_h(srv, sub=f"w{w}"),
                             json_body={"api_name": f"P{w}x{i}", "type": "string"})
            statuses.append(rr.status)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [201] * 128, sorted(set(statuses))
    assert _counter(srv, "oms_snapshot_cache_misses_total", "commit") - miss0 == 0
    assert _counter(srv, "oms_snapshot_cache_hits_total", "commit") - hit0 == 128


def _type(i, implements=None):
    return large_ontology.type_doc(i, implements=implements)


def _batch(srv, branch, ops):
    large_ontology.apply_batches(srv, branch, ops, _h(srv))


def test_integrity_at_ten_thousand_types(ctx):
    srv = ctx.server
    b = "cache/big"
    _branch(srv, b)
    _batch(srv, b, [{"op": "create", "kind": "interfaces", "document":
                     {"api_name": "Named", "properties": [{"api_name": "name", "type": "string"}]}}] +
           [{"op": "create", "kind": "object-types", "document": _type(i, ["Named"] if i == 7777 else None)}
            for i in range(10000)] +
           [{"op": "create", "kind": "link-types", "document":
             {"api_name": "Knows", "from": "T00001", "to": "T09999", "cardinality": "many_to_one"}},
            {"op": "create", "kind": "function-types", "document":
             {"api_name": "Count", "inputs": [{"api_name": "x", "type": "object_reference",
                                               "object_type": "T09999", "required": True}],
              "output": {"type": "integer"}, "deterministic": True}}])
    # deleting a referenced type is refused with all its dependents
    r = srv.request("DELETE", _url(b, "object-types", "T09999"), headers=_any(srv))
    assert r.status == 409, r
    body = r.json()
    assert body["code"] == "has_dependents", body
    assert [d["resource"] for d in body["dependents"]] == ["object-types/T09999"], body
    assert set(body["dependents"][0]["dependents"]) == {"link-types/Knows", "function-types/Count"}, body
    # and so is the other end of the link, alone
    r = srv.request("DELETE", _url(b, "object-types", "T00001"), headers=_any(srv))
    assert r.status == 409 and r.json()["dependents"] == [
        {"resource": "object-types/T00001", "dependents": ["link-types/Knows"]}], r
    # an interface change that breaks its one implementor among 10,000
    r = srv.request("PUT", _url(b, "interfaces", "Named"), headers=_any(srv),
                    json_body={"api_name": "Named", "properties": [{"api_name": "name", "type": "string"},
                                                                  {"api_name": "nick", "type": "string"}]})
    assert r.status == 409, r
    assert r.json()["code"] == "integrity_violation", r.json()
    assert {e["resource"] for e in r.json()["errors"]} == {"object-types/T07777"}, r.json()
    # an unreferenced type goes; once its dependents are gone, so does the referenced one
    r = srv.request("DELETE", _url(b, "object-types", "T05000"), headers=_any(srv))
    assert r.status == 204, r
    for kind, name in (("link-types", "Knows"), ("function-types", "Count")):
        r = srv.request("DELETE", _url(b, kind, name), headers=_any(srv))
        assert r.status == 204, r
    r = srv.request("DELETE", _url(b, "object-types", "T09999"), headers=_any(srv))
    assert r.status == 204, r
    # a new reference is checked against the index's view of the new state
    r = srv.request("POST", _url(b, "link-types"), headers=_h(srv),
                    json_body={"api_name": "Gone", "from": "T00002", "to": "T09999", "cardinality": "many_to_one"})
    assert r.status == 409 and r.json()["code"] == "integrity_violation", r
    r = srv.request("POST", _url(b, "link-types"), headers=_h(srv),
                    json_body={"api_name": "Again", "from": "T00002", "to": "T00003", "cardinality": "many_to_one"})
    assert r.status == 201, r
    r = srv.request("DELETE", _url(b, "object-types", "T00003"), headers=_any(srv))
    assert r.status == 409 and r.json()["dependents"] == [
        {"resource": "object-types/T00003", "dependents": ["link-types/Again"]}], r
