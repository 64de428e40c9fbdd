"""Search (SPEC §8, docs/search.md): ranking on a fixture ontology, terms
split from names, highlights, the kinds filter, keyset paging; an index
kept current by every kind of commit (create, replace, delete, batch,
fast-forward and true merges, revert, branch creation) and fresh through
a second instance; refusals (?at=, unknown parameters); audit and metrics;
rebuild jobs through the API and `oms index rebuild --wait`. The zero-
downtime rebuild under load and its faults are tests/faults/test_index_rebuild.py."""

import json
import os
import pty
import select
import subprocess
import time

from harness import OMS_BIN, branch_rows, quote
from test_metrics import Scrape

DEV = ("developer",)
ADMIN = ("admin",)


def _h(srv, sub="dev", roles=DEV, **extra):
    h = srv.auth(sub, roles)
    h["X-Issue-ID"] = "OMS-13"
    h.update(extra)
    return h


def _ok(r, status=200):
    assert r.status == status, r
    return r


def _branch(srv, name, frm="main"):
    return _ok(srv.request("POST", "/api/v1/branches", headers=_h(srv), json_body={"name": name, "from": frm}),
               201).json()["head"]


def _url(branch, kind, name=None):
    return f"/api/v1/schemas/{quote(branch)}/{kind}" + (f"/{name}" if name else "")


def _create(srv, branch, kind, doc):
    return _ok(srv.request("POST", _url(branch, kind), headers=_h(srv), json_body=doc), 201)


def _put(srv, branch, kind, name, doc):
    cur = _ok(srv.get(_url(branch, kind, name), headers=_h(srv)))
    return _ok(srv.request("PUT", _url(branch, kind, name), headers=_h(srv, **{"If-Match": cur.header("ETag")}),
                           json_body=doc))


def _delete(srv, branch, kind, name):
    cur = _ok(srv.get(_url(branch, kind, name), headers=_h(srv)))
    _ok(srv.request("DELETE", _url(branch, kind, name), headers=_h(srv, **{"If-Match": cur.header("ETag")})), 204)


def _search(srv, branch, q, status=200, **params):
    qs = "&".join([f"q={quote(q)}"] + [f"{k}={quote(str(v))}" for k, v in params.items()])
    return _ok(srv.get(f"/api/v1/search/{quote(branch)}?{qs}", headers=_h(srv)), status)


def _names(srv, branch, q, **params):
    return [i["resource"] for i in _search(srv, branch, q, **params).json()["items"]]


def _pk(*props):
    """An object type body part: an id primary key and more properties."""
    return {"properties": [{"api_name": "id", "type": "string", "required": True}, *props], "primary_key": "id"}


# The fixture ontology: names chosen so that each tier of the ranking has
# members, and so that splitting (placed_at, PlacedAt, HTTP2Server) matters.
FIXTURE = [
    ("object-types", {"api_name": "Order", "display_name": "Customer Order",
                      "description": "A purchase placed by a customer", **_pk(
                          {"api_name": "placed_at", "type": "timestamp", "description": "When the order was placed"},
                          {"api_name": "state", "type": "string", "enum": ["NEW", "IN_TRANSIT", "DELIVERED"]},
                          {"api_name": "total_amount", "type": "double"})}),
    ("object-types", {"api_name": "OrderLine", **_pk({"api_name": "quantity", "type": "integer"})}),
    ("object-types", {"api_name": "OrderArchive", "description": "Orders older than seven years", **_pk()}),
    ("object-types", {"api_name": "Customer", **_pk({"api_name": "email", "type": "string"})}),
    ("object-types", {"api_name": "Shipment", "description": "Goods sent for an order", **_pk(
        {"api_name": "carrier_name", "display_name": "Carrier", "type": "string"},
        {"api_name": "tracking_code", "type": "string"})}),
    ("object-types", {"api_name": "Invoice", "description": "The bill for an order", **_pk()}),
    ("object-types", {"api_name": "HTTP2Server", "description": "Serves the API", **_pk()}),
    ("object-types", {"api_name": "Warehouse", "display_name": "Stock Location", **_pk()}),
    ("shared-properties", {"api_name": "OrderNumber", "type": "string"}),
    ("shared-properties", {"api_name": "TrackingCode", "type": "string"}),
    ("interfaces", {"api_name": "Trackable", "properties": [{"api_name": "tracking_code", "type": "string"}]}),
    ("link-types", {"api_name": "CustomerOrders", "from": "Customer", "to": "Order", "cardinality": "one_to_many"}),
    ("link-types", {"api_name": "Ships", "from": "Shipment", "to": "Order", "cardinality": "many_to_one"}),
    ("action-types", {"api_name": "PlaceOrder", "description": "Creates an order",
                      "parameters": [{"api_name": "note", "type": "string"}]}),
]

# query -> the results in order (the whole list: nothing more may match)
RANKING = [
    # exact api name, then api-name prefixes (shorter first), then api-name
    # terms, then property terms (a link's ends), then descriptions
    ("order", ["object-types/Order", "object-types/OrderLine", "shared-properties/OrderNumber",
               "object-types/OrderArchive", "action-types/PlaceOrder", "link-types/CustomerOrders",
               "link-types/Ships", "object-types/Invoice", "object-types/Shipment"]),
    # several words run together are the api name
    ("order line", ["object-types/OrderLine"]),
    ("OrderLine", ["object-types/OrderLine"]),
    # names are split on case changes, digits and '_'
    ("placed", ["object-types/Order"]),
    ("PlacedAt", ["object-types/Order"]),
    ("placed_at", ["object-types/Order"]),
    ("http 2", ["object-types/HTTP2Server"]),
    ("server", ["object-types/HTTP2Server"]),
    ("HTTP2Server", ["object-types/HTTP2Server"]),
    # prefix matching of terms; the exact name before its prefixes
    ("cust", ["object-types/Customer", "link-types/CustomerOrders", "object-types/Order"]),
    ("customer", ["object-types/Customer", "link-types/CustomerOrders", "object-types/Order"]),
    # enum values, property names and display names of properties
    ("transit", ["object-types/Order"]),
    ("delivered", ["object-types/Order"]),
    ("carrier", ["object-types/Shipment"]),
    ("track", ["interfaces/Trackable", "shared-properties/TrackingCode", "object-types/Shipment"]),
    # display names rank above properties and descriptions
    ("stock", ["object-types/Warehouse"]),
    # description-only matches
    ("goods", ["object-types/Shipment"]),
    ("bill", ["object-types/Invoice"]),
    # every term must match somewhere
    ("order goods", ["object-types/Shipment"]),
    ("zebra", []),
]


ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"  # the empty root commit


def _fixture(srv, branch):
    # from the empty root: the shared server's main holds other tests' resources
    _branch(srv, branch, ROOT)
    for kind, doc in FIXTURE:
        _create(srv, branch, kind, doc)


def test_search_ranking_on_a_fixture_ontology(ctx):
    srv = ctx.server
    _fixture(srv, "search/fx")
    for q, want in RANKING:
        got = _names(srv, "search/fx", q)
        assert got == want, f"q={q!r}: {got} != {want}"
    # what each match was, in the tiers of docs/search.md
    items = {i["resource"]: i for i in _search(srv, "search/fx", "order").json()["items"]}
    assert items["object-types/Order"]["match"] == "exact_api_name"
    assert items["object-types/OrderLine"]["match"] == "api_name_prefix"
    assert items["action-types/PlaceOrder"]["match"] == "api_name_terms"
    assert items["link-types/Ships"]["match"] == "property_terms"
    assert items["object-types/Shipment"]["match"] == "description"
    assert _search(srv, "search/fx", "customer").json()["items"][2]["match"] == "name_terms"
    # case does not matter
    assert _names(srv, "search/fx", "ORDER") == _names(srv, "search/fx", "order")


def test_search_results_carry_highlights_and_the_document_summary(ctx):
    srv = ctx.server
    _fixture(srv, "search/hl")
    body = _search(srv, "search/hl", "placed").json()
    assert body["terms"] == ["placed"] and body["total"] == 1 and body["branch"] == "search/hl"
    assert body["commit"] == srv.get("/api/v1/branches/search%2Fhl", headers=_h(srv)).json()["head"]
    (order,) = body["items"]
    doc = _ok(srv.get(_url("search/hl", "object-types", "Order"), headers=_h(srv)))
    assert order["etag"] == doc.header("ETag").strip('"')
    assert order["display_name"] == "Customer Order" and order["status"] == "experimental"
    assert order["description"] == "A purchase placed by a customer"
    hl = {h["field"]: h for h in order["highlights"]}
    assert hl["/properties/placed_at/api_name"]["ranges"] == [[0, 6]]
    assert hl["/properties/placed_at/api_name"]["fragment"] == "<mark>placed</mark>_at"
    assert hl["/description"]["fragment"] == "A purchase <mark>placed</mark> by a customer"
    assert hl["/properties/placed_at/description"]["ranges"] == [[19, 25]]
    # a name run together is highlighted whole; several terms each
    hl = {h["field"]: h for h in _search(srv, "search/hl", "placedat").json()["items"][0]["highlights"]}
    assert hl["/properties/placed_at/api_name"]["fragment"] == "<mark>placed_at</mark>"
    hl = {h["field"]: h for h in _search(srv, "search/hl", "http 2 serv").json()["items"][0]["highlights"]}
    assert hl["/api_name"]["fragment"] == "<mark>HTTP</mark><mark>2</mark><mark>Serv</mark>er" or \
        hl["/api_name"]["fragment"] == "<mark>HTTP2Serv</mark>er", hl
    # enum values; text is escaped for HTML around the marks
    hl = {h["field"]: h for h in _search(srv, "search/hl", "transit").json()["items"][0]["highlights"]}
    assert hl["/properties/state/enum/1"]["fragment"] == "IN_<mark>TRANSIT</mark>"
    _create(srv, "search/hl", "shared-properties",
            {"api_name": "Markup", "type": "string", "description": "<b>bold</b> & markup"})
    hl = _search(srv, "search/hl", "bold").json()["items"][0]["highlights"]
    assert hl == [{"field": "/description", "text": "<b>bold</b> & markup", "ranges": [[3, 7]],
                   "fragment": "&lt;b&gt;<mark>bold</mark>&lt;/b&gt; &amp; markup"}], hl


def test_search_kinds_filter_and_paging(ctx):
    srv = ctx.server
    _fixture(srv, "search/pg")
    full = _names(srv, "search/pg", "order")
    assert _names(srv, "search/pg", "order", kinds="object-types") == [n for n in full if n.startswith("object-types/")]
    assert _names(srv, "search/pg", "order", kinds="link-types,action-types") == [
        "action-types/PlaceOrder", "link-types/CustomerOrders", "link-types/Ships"]
    # keyset paging: the pages concatenate to the whole, total on every page
    seen, cursor, totals = [], None, []
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = _search(srv, "search/pg", "order", **params).json()
        totals.append(body["total"])
        seen += [i["resource"] for i in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
        # a commit between pages: a new match that sorts before the cursor is
        # not shown, and nothing after it repeats or goes missing
        if len(totals) == 2:
            _create(srv, "search/pg", "object-types", {"api_name": "OrderA", **_pk()})
    assert seen == full and totals == [9, 9, 10, 10, 10], (seen, totals)
    assert _names(srv, "search/pg", "order")[:3] == ["object-types/Order", "object-types/OrderA",
                                                     "object-types/OrderLine"]
    # refusals
    for qs, code in (("q=order&kinds=widgets", "invalid_request"), ("q=order&kinds=", "invalid_request"),
                     ("q=order&limit=0", "invalid_request"), ("q=order&limit=1001", "invalid_request"),
                     ("q=", "invalid_request"), ("q=%20-%20", "invalid_request"), ("kinds=object-types", "invalid_request"),
                     ("q=order&q=line", "invalid_request"), ("q=order&sort=name", "invalid_request"),
                     ("q=" + "a" * 257, "invalid_request")):
        r = srv.get(f"/api/v1/search/search%2Fpg?{qs}", headers=_h(srv))
        assert r.status == 400 and r.json()["code"] == code, (qs, r)
    r = srv.get("/api/v1/search/search%2Fpg?q=order&sort=name", headers=_h(srv))
    assert r.json()["parameter"] == "sort" and "unknown query parameter" in r.json()["detail"], r
    assert _ok(srv.get("/api/v1/search/no%2Fsuch?q=order", headers=_h(srv)), 404).json()["code"] == "not_found"


def test_search_refuses_time_travel_clearly(ctx):
    srv = ctx.server
    _fixture(srv, "search/at")
    head = srv.get("/api/v1/branches/search%2Fat", headers=_h(srv)).json()["head"]
    for at in (head, "v1", ""):
        r = srv.get(f"/api/v1/search/search%2Fat?q=order&at={at}", headers=_h(srv))
        assert r.status == 400, r
        body = r.json()
        assert body["code"] == "time_travel_unavailable" and body["parameter"] == "at", body
        assert "time travel is not available yet" in body["detail"], body
    # routes without time travel of their own know no `at`
    r = srv.request("POST", "/api/v1/branches/search%2Fat/index/rebuild?at=x", headers=_h(srv, "root", ADMIN))
    assert r.status == 400 and r.json()["detail"] == "unknown query parameter at", r


def test_list_filter_q_finds_property_names(ctx):
    """GET /schemas/{b}/{kind}?q= matches names of properties too (issue #13):
    q=placed lists the type with a placed_at property."""
    srv = ctx.server
    _fixture(srv, "search/list")
    r = _ok(srv.get(_url("search/list", "object-types") + "?q=placed", headers=_h(srv)))
    assert [i["api_name"] for i in r.json()["items"]] == ["Order"], r
    r = _ok(srv.get(_url("search/list", "object-types") + "?q=carrier", headers=_h(srv)))
    assert [i["api_name"] for i in r.json()["items"]] == ["Shipment"], r
    r = _ok(srv.get(_url("search/list", "action-types") + "?q=note", headers=_h(srv)))
    assert [i["api_name"] for i in r.json()["items"]] == ["PlaceOrder"], r


# ---- freshness: every kind of commit ----

def test_search_follows_every_kind_of_commit(ctx):
    srv = ctx.server
    b = "search/live"
    _branch(srv, b)
    # create
    _create(srv, b, "object-types", {"api_name": "Parcel", "description": "a box in transit", **_pk()})
    assert _names(srv, b, "parcel") == ["object-types/Parcel"]
    # replace: the old words go, the new ones come
    _put(srv, b, "object-types", "Parcel", {"api_name": "Parcel", "description": "a crate", **_pk(
        {"api_name": "weight_grams", "type": "integer"})})
    assert _names(srv, b, "transit") == [] and _names(srv, b, "crate") == ["object-types/Parcel"]
    assert _names(srv, b, "weight") == ["object-types/Parcel"]
    # delete
    _delete(srv, b, "object-types", "Parcel")
    assert _names(srv, b, "parcel") == [] and _names(srv, b, "crate") == []
    # batch: three creates and a delete in one commit
    _create(srv, b, "shared-properties", {"api_name": "DoomedProp", "type": "string"})
    ops = [{"op": "create", "kind": "shared-properties", "api_name": f"Batch{i}",
            "document": {"api_name": f"Batch{i}", "type": "string", "description": "made in a batch"}}
           for i in range(3)]
    ops.append({"op": "delete", "kind": "shared-properties", "api_name": "DoomedProp"})
    _ok(srv.request("POST", f"/api/v1/schemas/{quote(b)}/changes", headers=_h(srv),
                    json_body={"message": "OMS-13 batch", "operations": ops}))
    assert _names(srv, b, "batch") == [f"shared-properties/Batch{i}" for i in range(3)]
    assert _names(srv, b, "doomed") == []
    # a new branch starts with the source's index, then goes its own way
    _branch(srv, "search/ff", b)
    assert _names(srv, "search/ff", "batch") == [f"shared-properties/Batch{i}" for i in range(3)]
    _create(srv, "search/ff", "shared-properties", {"api_name": "FastForwarded", "type": "string"})
    _delete(srv, "search/ff", "shared-properties", "Batch0")
    assert _names(srv, b, "fast") == [] and _names(srv, "search/ff", "fast") == ["shared-properties/FastForwarded"]
    # fast-forward merge: the target's index moves with its head
    r = _ok(srv.request("POST", f"/api/v1/branches/{quote(b)}/merge", headers=_h(srv), json_body={"source": "search/ff"}))
    assert r.json()["status"] == "fast_forward", r
    assert _names(srv, b, "fast") == ["shared-properties/FastForwarded"]
    assert _names(srv, b, "batch") == ["shared-properties/Batch1", "shared-properties/Batch2"]
    # a true merge (a merge commit with two parents)
    _branch(srv, "search/side", b)
    _create(srv, "search/side", "shared-properties", {"api_name": "FromSide", "type": "string"})
    _create(srv, b, "shared-properties", {"api_name": "FromTarget", "type": "string"})
    r = _ok(srv.request("POST", f"/api/v1/branches/{quote(b)}/merge", headers=_h(srv),
                        json_body={"source": "search/side"}))
    assert r.json()["status"] == "merged", r
    assert _names(srv, b, "from") == ["shared-properties/FromSide", "shared-properties/FromTarget"]
    assert _names(srv, "search/side", "from") == ["shared-properties/FromSide"]
    # revert: the reverted commit's resource leaves the index
    added = _create(srv, b, "shared-properties", {"api_name": "Regret", "type": "string"}).header("X-Commit")
    assert _names(srv, b, "regret") == ["shared-properties/Regret"]
    _ok(srv.request("POST", f"/api/v1/branches/{quote(b)}/revert", headers=_h(srv), json_body={"commit": added}), 201)
    assert _names(srv, b, "regret") == []
    # a branch from a commit id is indexed as of that commit
    _branch(srv, "search/at-commit", added)
    assert _names(srv, "search/at-commit", "regret") == ["shared-properties/Regret"]
    # deleting a branch retires its generations; the name comes back empty
    _ok(srv.request("DELETE", "/api/v1/branches/search%2Fat-commit", headers=_h(srv)), 204)
    _branch(srv, "search/at-commit")
    assert _names(srv, "search/at-commit", "regret") == []
    # every search answered from the branch's one active generation, which
    # holds exactly the head's resources
    for name in (b, "search/ff", "search/side"):
        gens = srv.query("SELECT id, commit_id FROM search_generations WHERE branch = '%s' AND state = 'active'" % name)
        head = srv.get(f"/api/v1/branches/{quote(name)}", headers=_h(srv)).json()["head"]
        assert len(gens) == 1 and gens[0][1] == head, (name, gens, head)
        docs = sorted(r[0] for r in srv.query(f"SELECT resource FROM search_docs WHERE generation = {gens[0][0]}"))
        rows = [r[0] for r in branch_rows(srv, name, "resource")]
        assert docs == rows, (name, docs, rows)


def test_search_is_fresh_across_two_instances(ctx):
    a = ctx.new_server()
    b = ctx.new_server(start=False)
    b.share_database_of(a)
    b.start()
    _branch(a, "search/two")
    for i in range(5):
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        _create(writer, "search/two", "shared-properties", {"api_name": f"Fresh{i}", "type": "string"})
        # the very next search, through the other instance, finds it
        assert _names(reader, "search/two", f"fresh{i}") == [f"shared-properties/Fresh{i}"]
    _delete(a, "search/two", "shared-properties", "Fresh0")
    assert _names(b, "search/two", "fresh") == [f"shared-properties/Fresh{i}" for i in range(1, 5)]


def test_search_builds_an_index_for_a_branch_that_has_none(ctx):
    """A branch made before search existed (here: from main, which no search
    has indexed yet) gets its first generation from its head on its first
    search."""
    srv = ctx.new_server()
    _branch(srv, "search/legacy")
    _create(srv, "search/legacy", "shared-properties", {"api_name": "Legacy", "type": "string"})
    assert srv.query("SELECT count(*) FROM search_generations WHERE branch = 'search/legacy'")[0][0] in (0, "0")
    assert _names(srv, "search/legacy", "legacy") == ["shared-properties/Legacy"]
    gens = srv.query("SELECT state, commit_id FROM search_generations WHERE branch = 'search/legacy'")
    head = srv.get("/api/v1/branches/search%2Flegacy", headers=_h(srv)).json()["head"]
    assert gens == [("active", head)], gens
    # from then on commits keep it current
    _create(srv, "search/legacy", "shared-properties", {"api_name": "LegacyTwo", "type": "string"})
    assert _names(srv, "search/legacy", "legacy") == ["shared-properties/Legacy", "shared-properties/LegacyTwo"]


# ---- audit and metrics ----

def test_search_and_rebuilds_are_audited_and_measured(ctx):
    srv = ctx.new_server(env={"OMS_SEARCH_BATCH": "10", "OMS_SEARCH_THROTTLE_MS": "150"})
    _fixture(srv, "search/obs")
    for i in range(40):
        _create(srv, "search/obs", "shared-properties", {"api_name": f"Filler{i}", "type": "string"})
    s0 = Scrape(srv)
    _search(srv, "search/obs", "order", kinds="object-types")
    # recorded with the audit writer's next batch (a read: not waited for)
    deadline = time.time() + 5
    while not srv.audit_events("action = 'search.query'") and time.time() < deadline:
        time.sleep(0.05)
    ev = srv.audit_events("action = 'search.query'")
    assert len(ev) == 1 and ev[0]["actor_sub"] == "dev" and ev[0]["outcome"] == "success", ev
    detail = json.loads(ev[0]["detail"])
    assert detail["q"] == "order" and detail["kinds"] == ",object-types," and detail["results"] == 5, detail
    s1 = Scrape(srv)
    assert s1.value("oms_search_duration_seconds_count") - s0.value("oms_search_duration_seconds_count") == 1
    assert s1.types["oms_search_duration_seconds"] == "histogram"
    assert s1.types["oms_index_rebuild_progress_percent"] == "gauge"

    # a rebuild: 202 with the job, Location, a heartbeating lock of kind
    # indexing carrying the progress; a second one meanwhile is 409
    r = _ok(srv.request("POST", "/api/v1/branches/search%2Fobs/index/rebuild", headers=_h(srv, "ops", ("service_account",)),
                        json_body={"reason": "nightly"}), 202)
    job = r.json()
    assert r.header("Location") == f"/api/v1/index-jobs/{job['id']}"
    assert job["state"] == "running" and job["branch"] == "search/obs" and job["requested_by"] == "ops", job
    r = srv.request("POST", "/api/v1/branches/search%2Fobs/index/rebuild", headers=_h(srv, "root", ADMIN))
    assert r.status == 409 and r.json()["code"] == "rebuild_running" and r.json()["job"]["id"] == job["id"], r
    lock = _ok(srv.get(f"/api/v1/locks/{job['lock_id']}", headers=_h(srv))).json()
    assert lock["kind"] == "indexing" and lock["heartbeat_seconds"] == 10 and lock["holder"] == "ops", lock
    assert lock["resource_type"] == "search-index" and lock["resource_id"] == job["id"] and "nightly" in lock["reason"]
    # while it runs: progress in the job, in its lock and in /metrics; writes go on
    seen_gauge = False
    for k in range(200):
        cur = _ok(srv.get(f"/api/v1/index-jobs/{job['id']}", headers=_h(srv))).json()
        if cur["state"] != "running":
            break
        s = Scrape(srv)
        if s.has("oms_index_rebuild_progress_percent", branch="search/obs", job=job["id"]):
            seen_gauge = True
            assert s.has("oms_index_rebuild_resources", branch="search/obs", job=job["id"], state="total")
        r = srv.request("POST", _url("search/obs", "shared-properties"), headers=_h(srv),
                        json_body={"api_name": f"During{k}", "type": "string"})
        # a write meeting the switch is answered 423 with the job's progress
        assert r.status == 201 or (r.status == 423 and r.json()["locks"][0]["kind"] == "indexing" and
                                   r.json()["locks"][0]["progress"]["phase"] == "switch"), r
        time.sleep(0.05)
    assert seen_gauge
    assert cur["state"] == "succeeded" and cur["phase"] == "done" and cur["percent"] == 100, cur
    assert cur["generation"] > cur["previous_generation"] and cur["eta_seconds"] == 0, cur
    assert cur["done"] == cur["total"] >= 54 and cur["switch"]["blocked_ms"] is not None, cur
    lock = _ok(srv.get(f"/api/v1/locks/{job['lock_id']}", headers=_h(srv))).json()
    assert lock["state"] == "released", lock
    # the search after the switch holds every write made during the build
    during = [n for n in _names(srv, "search/obs", "during", limit=1000)]
    made = len([r for r in branch_rows(srv, "search/obs", "resource") if r[0].startswith("shared-properties/During")])
    assert len(during) == int(made) > 0, (len(during), made)
    assert _search(srv, "search/obs", "order").json()["generation"] == cur["generation"]
    actions = [(e["action"], e["outcome"], json.loads(e["detail"] or "{}").get("event"))
               for e in srv.audit_events("action = 'index.rebuild'")]
    assert actions == [("index.rebuild", "success", "start"), ("index.rebuild", "failure", None),
                       ("index.rebuild", "success", "finish")], actions
    s2 = Scrape(srv)
    assert not s2.has("oms_index_rebuild_progress_percent", job=job["id"])  # only running jobs


def test_rebuild_refusals(ctx):
    srv = ctx.server
    _branch(srv, "search/refuse")
    r = srv.request("POST", "/api/v1/branches/search%2Frefuse/index/rebuild", headers=_h(srv))  # a developer
    assert r.status == 403 and r.json()["missing_permission"] == "index:rebuild", r
    r = srv.request("POST", "/api/v1/branches/no%2Fsuch/index/rebuild", headers=_h(srv, "root", ADMIN))
    assert r.status == 404, r
    r = srv.request("POST", "/api/v1/branches/search%2Frefuse/index/rebuild", headers=_h(srv, "root", ADMIN),
                    json_body={"reson": "typo"})
    assert r.status == 400 and "reson" in r.json()["detail"], r
    # a branch lock held by someone else: the switch could not happen
    lk = _ok(srv.request("POST", "/api/v1/locks", headers=_h(srv, "ann"),
                         json_body={"branch": "search/refuse", "scope": "branch", "reason": "maintenance"}), 201).json()
    r = srv.request("POST", "/api/v1/branches/search%2Frefuse/index/rebuild", headers=_h(srv, "root", ADMIN))
    assert r.status == 409 and r.json()["code"] == "lock_conflict" and r.json()["conflicts"][0]["id"] == lk["id"], r
    for bad in ("idx_nope", "idx_" + "0" * 32):
        assert srv.get(f"/api/v1/index-jobs/{bad}", headers=_h(srv)).status == 404
    # the refusals are audited as failures of index.rebuild
    ev = srv.audit_events("action = 'index.rebuild' AND outcome = 'failure'")
    assert len(ev) >= 3 and {int(e["http_status"]) for e in ev} >= {404, 400, 409}, ev


# ---- the client ----

def _cli_env(srv, token):
    return {"OMS_URL": f"http://127.0.0.1:{srv.port}", "OMS_TOKEN": token, "OMS_TOKEN_FILE": None}


def test_cli_index_rebuild_waits_and_reports(ctx):
    srv = ctx.new_server(env={"OMS_SEARCH_BATCH": "10", "OMS_SEARCH_THROTTLE_MS": "50"})
    _fixture(srv, "search/cli")
    for i in range(30):
        _create(srv, "search/cli", "shared-properties", {"api_name": f"Cli{i}", "type": "string"})
    token = srv.token("ops", ("service_account",))
    out = srv.run_cli("index", "rebuild", "--branch", "search/cli", "--wait", "--interval-ms", "100",
                      env=_cli_env(srv, token), timeout=60)
    assert out.returncode == 0, (out.stdout, out.stderr)
    lines = out.stdout.splitlines()
    # not a terminal: plain lines, one per change, no control characters
    assert "\r" not in out.stdout and "\x1b" not in out.stdout
    progress = [ln for ln in lines if ln.startswith("job=idx_")]
    assert len(progress) >= 2 and "phase=build" in out.stdout, lines
    assert all("percent=" in ln and "eta_seconds=" in ln for ln in progress)
    assert lines[-1].startswith("succeeded: branch search/cli now searches generation"), lines
    # --json: the finished job
    out = srv.run_cli("index", "rebuild", "--branch", "search/cli", "--wait", "--json", env=_cli_env(srv, token),
                      timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["state"] == "succeeded", (out.stdout, out.stderr)
    # refused (a viewer may not rebuild): exit 3 and the problem on stderr
    out = srv.run_cli("index", "rebuild", "--branch", "search/cli", env=_cli_env(srv, srv.token("v", ("viewer",))))
    assert out.returncode == 3 and "403" in out.stderr and "index:rebuild" in out.stderr, (out.stdout, out.stderr)
    # usage and configuration
    assert srv.run_cli("index", "rebuild", env=_cli_env(srv, token)).returncode == 2
    out = srv.run_cli("index", "rebuild", "--branch", "x", env={"OMS_URL": None, "OMS_TOKEN": token})
    assert out.returncode == 2 and "OMS_URL" in out.stderr, out.stderr


def test_cli_index_rebuild_draws_a_progress_bar_on_a_terminal(ctx):
    srv = ctx.new_server(env={"OMS_SEARCH_BATCH": "10", "OMS_SEARCH_THROTTLE_MS": "100"})
    _fixture(srv, "search/tty")
    for i in range(20):
        _create(srv, "search/tty", "shared-properties", {"api_name": f"Tty{i}", "type": "string"})
    env = dict(srv.env)
    env.update({"OMS_URL": f"http://127.0.0.1:{srv.port}", "OMS_TOKEN": srv.token("ops", ("service_account",))})
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(OMS_BIN, [OMS_BIN, "index", "rebuild", "--branch", "search/tty", "--wait", "--interval-ms", "100"], env)
    out = b""
    deadline = time.time() + 60
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace")
    assert os.WEXITSTATUS(status) == 0, text
    frames = [f for f in text.split("\r") if f.startswith("[")]
    assert len(frames) >= 2 and all("%" in f for f in frames), text
    assert frames[-1].startswith("[" + "#" * 30 + "] 100.0%"), frames[-1]
    assert "succeeded: branch search/tty" in text and "job=" not in text, text
