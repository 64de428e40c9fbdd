"""Helpers for the command-line client tests: run `oms` as a client of a
harness server (OMS_URL, OMS_TOKEN), build ontologies through the API, and
read branch heads and commits. Standard library only."""

import atexit
import json
import os
import shutil
import subprocess
import tempfile

from harness import OMS_BIN, quote

DEV = ("developer", "reviewer")
# Branches start from the empty root commit: other modules share the server.
ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"
ISSUE = "OMS-19"


# Every scratch folder of these tests (homes, resource files, journals) is
# made under one folder of the run, removed when the run ends.
_SCRATCH = tempfile.mkdtemp(prefix="oms-cli-run-")
atexit.register(shutil.rmtree, _SCRATCH, True)


def scratch(prefix="oms-cli-"):
    """A new empty folder, removed with the run's scratch folder."""
    return tempfile.mkdtemp(prefix=prefix, dir=_SCRATCH)


def h(srv, sub="dev", roles=DEV, issue=ISSUE):
    hd = srv.auth(sub, roles)
    if issue:
        hd["X-Issue-ID"] = issue
    return hd


def cli_env(srv, token=None, home=None, extra=None):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OMS_URL": f"http://127.0.0.1:{srv.port}",
        "OMS_TOKEN": token if token is not None else srv.token("dev", DEV),
        "HOME": home or scratch("home-"),
    }
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def check_sanitizer(text):
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in text, text


def cli(srv, *args, token=None, env=None, input=None, timeout=120):
    """Runs `oms ARGS` as a client; returns the CompletedProcess."""
    r = subprocess.run([OMS_BIN, *args], env=cli_env(srv, token, extra=env), capture_output=True, text=True,
                       timeout=timeout, input=input)
    check_sanitizer(r.stderr)
    return r


def branch(srv, name, frm=ROOT):
    r = srv.request("POST", "/api/v1/branches", headers=h(srv), json_body={"name": name, "from": frm})
    assert r.status == 201, r
    return r.json()["head"]


def head(srv, name):
    r = srv.get(f"/api/v1/branches/{quote(name)}", headers=h(srv))
    assert r.status == 200, r
    return r.json()["head"]


def commits(srv, name):
    r = srv.get(f"/api/v1/branches/{quote(name)}/commits?limit=1000", headers=h(srv))
    assert r.status == 200, r
    return r.json()["items"]


def commit(srv, cid):
    r = srv.get(f"/api/v1/commits/{cid}", headers=h(srv))
    assert r.status == 200, r
    return r.json()


def export(srv, name):
    r = srv.get(f"/api/v1/schemas/{quote(name)}", headers=h(srv))
    assert r.status == 200, r
    return r.json()


def batch(srv, name, operations, message="setup"):
    r = srv.request("POST", f"/api/v1/schemas/{quote(name)}/changes", headers=h(srv),
                    json_body={"message": message, "operations": operations})
    assert r.status == 200, r
    return r.json()["commit"]


def create_all(srv, name, docs):
    """docs: [(kind, document)] in one commit."""
    return batch(srv, name, [{"op": "create", "kind": k, "document": d} for k, d in docs])


PERSON = {"api_name": "Person", "display_name": "Person", "description": "A human being.\nSecond line: with colon",
          "status": "active",
          "properties": [{"api_name": "id", "type": "string", "required": True},
                         {"api_name": "name", "type": "string", "enum": ["yes", "no", "123", "true", "null", ""]},
                         {"api_name": "email", "type": "string", "shared_property": "Email"}],
          "primary_key": "id", "implements": ["Named"]}


def sample(extra=0):
    """A small linked ontology of every kind (plus `extra` shared properties)."""
    docs = [
        ("shared-properties", {"api_name": "Email", "type": "string", "description": "Adresse \u00e9lectronique"}),
        ("interfaces", {"api_name": "Named", "properties": [{"api_name": "name", "type": "string"}]}),
        ("object-types", PERSON),
        ("object-types", {"api_name": "Company", "properties": [
            {"api_name": "id", "type": "long", "required": True}, {"api_name": "name", "type": "string"}],
            "primary_key": "id", "implements": ["Named"]}),
        ("link-types", {"api_name": "WorksAt", "from": "Person", "to": "Company", "cardinality": "many_to_one"}),
        ("action-types", {"api_name": "Hire", "parameters": [
            {"api_name": "person", "type": "object_reference", "object_type": "Person", "required": True}],
            "rules": [{"type": "modify_object", "object_type": "Person"}]}),
        ("function-types", {"api_name": "Headcount", "inputs": [
            {"api_name": "company", "type": "object_reference", "object_type": "Company", "required": True}],
            "output": {"type": "integer"}, "deterministic": True}),
    ]
    docs += [("shared-properties", {"api_name": f"P{i:05d}", "type": "string"}) for i in range(extra)]
    return docs


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def tree_files(d):
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, d)] = read(p)
    return out


def as_json(r):
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)
