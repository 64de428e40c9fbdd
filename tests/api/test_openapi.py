"""The OpenAPI document (SPEC §14): served to any authenticated caller, valid
OpenAPI 3.1 (checked by a standard validator from the npm registry, run by
node), and its kind schemas agree with the server's own validation: each
kind's example and a set of counter-examples go to the validate route, and
the JSON Schema validator (ajv) must reach the same verdict on every one."""

import json
import os
import subprocess
import tempfile

from harness import Skip, quote

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER = os.path.join(os.path.dirname(HERE), "browser")

NAMES = {"object-types": "ObjectType", "link-types": "LinkType", "action-types": "ActionType",
         "function-types": "FunctionType", "interfaces": "Interface", "shared-properties": "SharedProperty"}


def _node(*args):
    if not os.path.isdir(os.path.join(BROWSER, "node_modules")):
        raise Skip("tests/browser/node_modules missing (scripts/install-deps.sh runs npm ci)")
    return subprocess.run(["node", *args], cwd=BROWSER, capture_output=True, text=True, timeout=120)


def _doc(srv):
    r = srv.get("/api/v1/openapi.json", headers=srv.auth("viewer1", ("viewer",)))
    assert r.status == 200, r
    return r.json()


def test_openapi_needs_authentication(ctx):
    srv = ctx.server
    r = srv.get("/api/v1/openapi.json")
    assert r.status == 401, r
    assert srv.get("/api/v1/openapi.json?x=1", headers=srv.auth()).status == 400


def test_openapi_is_valid_and_covers_every_route(ctx):
    srv = ctx.server
    doc = _doc(srv)
    routes = [json.loads(line) for line in srv.run_cli("routes").stdout.splitlines() if line.strip()]
    assert len(routes) > 50
    ops = {op["x-oms-route"]: op for item in doc["paths"].values() for op in item.values()}
    for r in routes:
        op = ops.get(f"{r['method']} {r['pattern']}")
        assert op, f"route {r['method']} {r['pattern']} missing from openapi.json"
        assert op["x-oms-permission"] == r["permission"] and op["x-oms-change"] == r["change"], (r, op)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
    try:
        p = _node("check-openapi.mjs", f.name)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        os.unlink(f.name)


def _long(n):
    return "x" * n


# (kind, document, expected verdict of the server). The documents name no
# other resource, or only Company/Person, created first.
def _cases(examples):
    pk = [{"api_name": "id", "type": "string", "required": True}]
    ot = lambda **kw: {"api_name": "Thing", "properties": pk, "primary_key": "id", **kw}  # noqa: E731
    c = [(k, ex, True) for k, ex in examples.items()]
    c += [
        ("object-types", ot(), True),
        ("object-types", ot(meta={"etag": "x"}), True),
        ("object-types", ot(display_name="é" * 200, description=_long(4096), status="deprecated"), True),
        ("object-types", ot(colour="red"), False),
        ("object-types", ot(properties=[]), False),
        ("object-types", {"api_name": "Thing", "properties": pk}, False),
        ("object-types", ot(api_name="1bad"), False),
        ("object-types", ot(api_name="a" * 101), False),
        ("object-types", ot(display_name=""), False),
        ("object-types", ot(display_name="é" * 201), False),
        ("object-types", ot(description=_long(4097)), False),
        ("object-types", ot(status="retired"), False),
        ("object-types", ot(properties=pk + [{"api_name": "n", "type": "text"}]), False),
        ("object-types", ot(properties=pk + [{"api_name": "n", "type": "integer", "enum": ["a"]}]), False),
        ("object-types", ot(properties=pk + [{"api_name": "n", "type": "string", "enum": ["a", "b"]}]), True),
        ("object-types", ot(properties=pk + [{"api_name": "n", "type": "string", "enum": ["a", "a"]}]), False),
        ("object-types", ot(properties=pk + [{"api_name": "n", "type": "string", "array": "yes"}]), False),
        ("object-types", ot(properties=pk + [{"type": "string"}]), False),
        ("object-types", ot(properties=pk + [{"api_name": "n", "type": "string", "x": 1}]), False),
        ("object-types", ot(implements="Named"), False),
        ("link-types", {"api_name": "owns", "from": "Company", "to": "Person", "cardinality": "many_to_many"}, True),
        ("link-types", {"api_name": "owns", "from": "Company", "to": "Person", "cardinality": "some"}, False),
        ("link-types", {"api_name": "owns", "from": "Company", "cardinality": "one_to_one"}, False),
        ("action-types", {"api_name": "act"}, True),
        ("action-types", {"api_name": "act", "rules": [{"type": "create_link"}]}, False),
        ("action-types", {"api_name": "act", "rules": [{"type": "create_object", "link_type": "x"}]}, False),
        ("action-types", {"api_name": "act", "rules": [{"type": "explode", "object_type": "Person"}]}, False),
        ("action-types", {"api_name": "act", "parameters": [{"api_name": "p", "type": "object_reference"}]}, False),
        ("action-types", {"api_name": "act", "parameters": [{"api_name": "p", "type": "string",
                                                              "object_type": "Person"}]}, False),
        ("action-types", {"api_name": "act", "parameters": [{"api_name": "p", "type": "string"},
                                                             {"api_name": "p", "type": "string"}]}, False, "server"),
        ("object-types", ot(properties=[{"api_name": "id", "type": "string"}]), False, "server"),
        ("object-types", ot(properties=pk, title_property="nope"), False, "server"),
        ("function-types", {"api_name": "f", "output": {"type": "string"}}, True),
        ("function-types", {"api_name": "f"}, False),
        ("function-types", {"api_name": "f", "output": {"type": "string", "required": True}}, False),
        ("function-types", {"api_name": "f", "output": {"type": "string"}, "deterministic": 1}, False),
        ("interfaces", {"api_name": "Iface"}, True),
        ("interfaces", {"api_name": "Iface", "extends": ["Iface"]}, False, "server"),
        ("interfaces", {"api_name": "Iface", "primary_key": "id"}, False),
        ("shared-properties", {"api_name": "sp", "type": "geopoint", "array": True}, True),
        ("shared-properties", {"api_name": "sp"}, False),
        ("shared-properties", {"api_name": "sp", "type": "object_reference"}, False),
    ]
    return c


# Cases marked "server" break a rule JSON Schema cannot state (unique
# api_names in a list, the primary key and title property naming a fitting
# property): the kind schema lists them in x-oms-rules; they are asserted
# against the server and left out of the agreement check.


def test_kind_schemas_agree_with_server_validation(ctx):
    srv = ctx.new_server()  # the shared server's main holds other tests' resources
    h = srv.auth("dev", ("developer",))
    branch = "sandbox/openapi-kinds"
    r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": branch, "from": "main"})
    assert r.status == 201, r
    pre = {"operations": [
        {"op": "create", "kind": "object-types", "document": {"api_name": n, "properties": [
            {"api_name": "id", "type": "string", "required": True}], "primary_key": "id"}}
        for n in ("Company", "Person")]}
    r = srv.request("POST", f"/api/v1/schemas/{quote(branch)}/changes", headers={**h, "X-Issue-ID": "PROJ-1"},
                    json_body={**pre, "message": "fixtures"})
    assert r.status == 200, r
    doc = _doc(srv)
    examples = {}
    for kind, name in NAMES.items():
        ex = doc["components"]["schemas"][name]["examples"][0]
        if kind == "object-types":
            ex = {**ex, "api_name": "Human"}
        examples[kind] = ex
    verdicts = []
    for kind, document, expected, *only in _cases(examples):
        body = {"operations": [{"op": "create", "kind": kind, "document": document}]}
        r = srv.request("POST", f"/api/v1/schemas/{quote(branch)}/validate", headers=h, json_body=body)
        assert r.status == 200, r
        out = r.json()
        assert out["valid"] is expected, (kind, document, out)
        if not only:
            verdicts.append({"schema": NAMES[kind], "document": document, "valid": out["valid"]})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(doc, f)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as g:
        json.dump(verdicts, g)
    try:
        p = _node("check-openapi.mjs", f.name, "--kinds", g.name)
        assert p.returncode == 0, p.stdout + p.stderr
    finally:
        os.unlink(f.name)
        os.unlink(g.name)
