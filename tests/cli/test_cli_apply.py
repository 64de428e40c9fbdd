"""Ontology as code through the command-line client (SPEC §14, issue #19):
`oms export` and `oms apply` against a real server on each backend."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cliharness import (scratch, ISSUE, ROOT, as_json, batch, branch, check_sanitizer, cli, cli_env, commit, commits,  # noqa: E402
                        create_all, export, h, head, read, sample, tree_files, write)
from harness import OMS_BIN, quote  # noqa: E402


def _export(srv, b, d, *extra):
    r = cli(srv, "export", "--branch", b, "-o", d, *extra)
    assert r.returncode == 0, r
    return r


def test_export_edit_apply_gives_the_expected_commit(ctx):
    srv = ctx.server
    b = "cli/edit"
    branch(srv, b)
    create_all(srv, b, sample() + [("shared-properties", {"api_name": "Fax", "type": "string"})])
    before = head(srv, b)
    d = scratch()
    _export(srv, b, d)
    assert sorted(tree_files(d)) == sorted([
        "action-types/Hire.yaml", "function-types/Headcount.yaml", "interfaces/Named.yaml",
        "link-types/WorksAt.yaml", "object-types/Company.yaml", "object-types/Person.yaml",
        "shared-properties/Email.yaml", "shared-properties/Fax.yaml"])
    # edit: a property added to Company, a new shared property, Fax removed
    p = os.path.join(d, "object-types", "Company.yaml")
    text = read(p)
    assert "  - api_name: name\n" in text, text
    write(p, text.replace("status: experimental\n", "status: experimental\n").replace(
        "properties:\n", "properties:\n  - api_name: founded\n    type: date\n", 1))
    write(os.path.join(d, "shared-properties", "Phone.yaml"), "api_name: Phone\ntype: string\ndescription: 'E.164'\n")
    os.unlink(os.path.join(d, "shared-properties", "Fax.yaml"))
    r = cli(srv, "apply", "-f", d, "--branch", b, "-m", "Company founding date, phone", "--issue", ISSUE, "--prune")
    assert r.returncode == 0, r
    assert "~ replace  object-types/Company" in r.stdout and "+ create   shared-properties/Phone" in r.stdout, r.stdout
    assert "- delete   shared-properties/Fax" in r.stdout, r.stdout
    assert "3 changes: 1 to create, 1 to replace, 1 to delete" in r.stdout, r.stdout
    after = head(srv, b)
    assert after != before
    c = commit(srv, after)
    assert c["parents"] == [before]  # exactly one new commit
    assert c["message"] == "Company founding date, phone" and c["issue_keys"] == [ISSUE]
    assert sorted((x["resource"], x["change"]) for x in c["changes"]) == [
        ("object-types/Company", "modified"), ("shared-properties/Fax", "removed"),
        ("shared-properties/Phone", "added")], c["changes"]
    fields = [f["path"] for f in c["changes"][[x["resource"] for x in c["changes"]].index("object-types/Company")]["fields"]]
    assert fields == ["/properties/founded"], fields
    phone = export(srv, b)["shared-properties"]
    assert [x["description"] for x in phone if x["api_name"] == "Phone"] == ["E.164"]
    # the commit is audited as one batch
    ev = srv.query(f"SELECT action, outcome FROM audit_events WHERE commit_id = '{after}'")
    assert [tuple(e) for e in ev] == [("schema.changes", "success")], ev


def test_apply_of_an_unchanged_directory_makes_no_commit(ctx):
    srv = ctx.server
    b = "cli/unchanged"
    branch(srv, b)
    create_all(srv, b, sample())
    d = scratch()
    _export(srv, b, d)
    n, before = len(commits(srv, b)), head(srv, b)
    for extra in ((), ("--prune",), ("--dry-run",)):
        r = cli(srv, "apply", "-f", d, "--branch", b, "-m", "nothing", "--issue", ISSUE, *extra)
        assert r.returncode == 0, r
        assert r.stdout.startswith("no changes:"), r.stdout
    out = as_json(cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE, "--json"))
    assert out["plan"] == [] and out["commit"] is None and out["head"] == before
    # a file that only spells out fewer defaults is no change either
    write(os.path.join(d, "shared-properties", "Email.yaml"),
          "api_name: Email\ntype: string\ndescription: Adresse \u00e9lectronique\n")
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE)
    assert r.returncode == 0 and "no changes" in r.stdout, r
    assert len(commits(srv, b)) == n and head(srv, b) == before


def test_concurrent_write_between_plan_and_apply_is_refused(ctx):
    """Session A plans (and waits for confirmation); session B commits; A's
    batch, guarded by If-Match on the planned head, gets 412: nothing of A's
    is applied, and the client says why with exit code 3."""
    srv = ctx.server
    b = "cli/race"
    branch(srv, b)
    create_all(srv, b, sample())
    d = scratch()
    _export(srv, b, d)
    write(os.path.join(d, "shared-properties", "Phone.yaml"), "api_name: Phone\ntype: string\n")
    planned = head(srv, b)
    p = subprocess.Popen([OMS_BIN, "apply", "-f", d, "--branch", b, "-m", "A", "--issue", ISSUE, "--confirm"],
                         env=cli_env(srv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    lines = []
    while True:  # A has shown its plan: it is waiting for "yes"
        line = p.stdout.readline()
        assert line, (lines, p.stderr.read())
        lines.append(line)
        if line.startswith("1 changes:"):
            break
    assert any("+ create   shared-properties/Phone" in x for x in lines), lines
    other = batch(srv, b, [{"op": "create", "kind": "shared-properties", "document": {"api_name": "Fax", "type": "string"}}],
                  message="B")
    out, err = p.communicate("yes\n", timeout=60)
    check_sanitizer(err)
    assert p.returncode == 3, (p.returncode, out, err)
    assert "412" in err and "moved" in err and planned in err, err
    assert head(srv, b) == other  # B's commit stands, A's is not there
    names = [x["api_name"] for x in export(srv, b)["shared-properties"]]
    assert "Phone" not in names and "Fax" in names
    # --if-match pins the head a reviewed plan was made against
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE, "--if-match", planned)
    assert r.returncode == 3 and "412" in r.stderr, r
    assert head(srv, b) == other
    # planning again against the new head applies
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE, "-m", "A again")
    assert r.returncode == 0, r
    assert commit(srv, head(srv, b))["parents"] == [other]


def test_invalid_files_name_the_file_and_line(ctx):
    srv = ctx.server
    b = "cli/invalid"
    branch(srv, b)
    create_all(srv, b, sample())
    before = head(srv, b)
    d = scratch()
    _export(srv, b, d)
    good = read(os.path.join(d, "object-types", "Company.yaml"))
    cases = [
        # (file, text, expected location, expected words)
        ("object-types/Bad.yaml", "api_name: Bad\nproperties:\n  - api_name: x\n   type: string\n",
         "object-types/Bad.yaml:4:", "expected"),
        ("object-types/Dup.yaml", "api_name: Dup\ndescription: a\ndescription: b\n", "object-types/Dup.yaml:3:",
         "duplicate key"),
        ("shared-properties/Wrong.yaml", "api_name: Right\ntype: string\n", "shared-properties/Wrong.yaml:1:",
         "does not match the file name"),
        ("shared-properties/Tel.json", '{"api_name": "Tel",\n "type": "string",,\n}\n', "shared-properties/Tel.json:2:",
         ""),
        ("shared-properties/Alias.yaml", "api_name: &a Alias\ndescription: *a\n", "shared-properties/Alias.yaml:2:",
         "aliases"),
    ]
    for rel, text, where, words in cases:
        path = os.path.join(d, rel)
        write(path, text)
        r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE)
        assert r.returncode == 1, (rel, r)
        assert where in r.stderr and words in r.stderr and "nothing applied" in r.stderr, (rel, r.stderr)
        os.unlink(path)
    # documents the service refuses: the field's line in the file
    write(os.path.join(d, "object-types", "Company.yaml"), good.replace("type: long", "type: lnog"))
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE)
    assert r.returncode == 1, r
    line = good.split("\n").index("    type: long") + 1
    assert f"object-types/Company.yaml:{line}:" in r.stderr and "/properties/0/type" in r.stderr, (line, r.stderr)
    write(os.path.join(d, "object-types", "Company.yaml"), good.replace("api_name: Company\n",
                                                                          "api_name: Company\ncolour: red\n"))
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE)
    assert r.returncode == 1 and "object-types/Company.yaml:" in r.stderr and "colour" in r.stderr, r
    # an integrity failure (a link to a type that does not exist)
    write(os.path.join(d, "object-types", "Company.yaml"), good)
    write(os.path.join(d, "link-types", "Owns.yaml"), "api_name: Owns\nfrom: Person\nto: Nope\ncardinality: one_to_many\n")
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE)
    assert r.returncode == 1 and "not valid" in r.stderr and "Nope" in r.stderr, r
    assert head(srv, b) == before


def test_round_trip_into_an_empty_branch_reproduces_the_hashes(ctx):
    srv = ctx.server
    src, dst = "cli/rt-src", "cli/rt-dst"
    branch(srv, src)
    create_all(srv, src, sample(extra=20))
    d = scratch()
    _export(srv, src, d)
    branch(srv, dst)
    r = cli(srv, "apply", "-f", d, "--branch", dst, "-m", "round trip", "--issue", ISSUE)
    assert r.returncode == 0, r
    a, z = export(srv, src), export(srv, dst)
    assert a["tree"] == z["tree"]  # content-addressed: identical resources, identical tree
    for kind in ("object-types", "link-types", "action-types", "function-types", "interfaces", "shared-properties"):
        assert a[kind] == z[kind], kind
        for doc in a[kind]:
            u = f"/api/v1/schemas/{quote(src)}/{kind}/{doc['api_name']}"
            v = f"/api/v1/schemas/{quote(dst)}/{kind}/{doc['api_name']}"
            assert srv.get(u, headers=h(srv)).header("ETag") == srv.get(v, headers=h(srv)).header("ETag")
    # and the files of the two exports are byte for byte the same (JSON too)
    d2 = scratch()
    _export(srv, dst, d2)
    assert tree_files(d) == tree_files(d2)
    j1, j2 = scratch(), scratch()
    _export(srv, src, j1, "--format", "json")
    _export(srv, dst, j2, "--format", "json")
    assert tree_files(j1) == tree_files(j2) and "object-types/Person.json" in tree_files(j1)
    # `oms get --json` output (with the served `meta`) is a valid file too
    got = cli(srv, "get", "object-types/Person", "--branch", dst, "--json")
    assert got.returncode == 0 and '"meta"' in got.stdout, got
    with open(os.path.join(d, "object-types", "Person.yaml"), "w") as f:
        f.write(got.stdout)
    r = cli(srv, "apply", "-f", d, "--branch", dst, "--issue", ISSUE)
    assert r.returncode == 0 and "no changes" in r.stdout, r
    # JSON files apply as well (nothing to change)
    r = cli(srv, "apply", "-f", j1, "--branch", dst, "--issue", ISSUE)
    assert r.returncode == 0 and "no changes" in r.stdout, r


def test_dry_run_validates_only_and_flags_breaking_changes(ctx):
    srv = ctx.server
    b = "cli/dry"
    branch(srv, b)
    create_all(srv, b, sample())
    d = scratch()
    _export(srv, b, d)
    before, n = head(srv, b), len(commits(srv, b))
    p = os.path.join(d, "object-types", "Person.yaml")
    text = read(p)
    # Person is active: making `name` required is breaking
    i = text.index("  - api_name: name")
    j = text.index("required: false", i)
    write(p, text[:j] + "required: true" + text[j + len("required: false"):])
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE, "--dry-run")
    assert r.returncode == 0, r
    assert "~ replace  object-types/Person  BREAKING" in r.stdout and "/properties/name/required" in r.stdout, r.stdout
    assert "dry run: nothing applied" in r.stdout
    out = as_json(cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE, "--dry-run", "--json"))
    assert out["breaking"] is True and out["plan"] == [
        {"op": "replace", "resource": "object-types/Person", "breaking": True, "file": p}], out
    assert head(srv, b) == before and len(commits(srv, b)) == n
    # the export directory was not touched by export's pruning of other formats
    assert os.path.exists(os.path.join(d, "object-types", "Person.yaml"))
    # deleting a file without --prune changes nothing; with it, the plan deletes
    os.unlink(os.path.join(d, "function-types", "Headcount.yaml"))
    write(p, text)
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE, "--dry-run")
    assert "no changes" in r.stdout, r
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE, "--dry-run", "--prune")
    assert "- delete   function-types/Headcount" in r.stdout, r


def test_apply_refusals_map_to_exit_codes(ctx):
    srv = ctx.server
    b = "cli/refused"
    branch(srv, b)
    create_all(srv, b, sample())
    d = scratch()
    _export(srv, b, d)
    write(os.path.join(d, "shared-properties", "Phone.yaml"), "api_name: Phone\ntype: string\n")
    # a viewer may validate but not write: 403, exit 4, the missing permission named
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE, token=srv.token("val", ("viewer",)))
    assert r.returncode == 4 and "403" in r.stderr and "schema:write" in r.stderr, r
    # no issue reference on a governed branch: 422 issue_required, exit 1
    r = cli(srv, "apply", "-f", d, "--branch", b, "-m", "no issue")
    assert r.returncode == 1 and "issue_required" in r.stderr, r
    # a lock held by someone else: 423, exit 5
    lk = srv.request("POST", "/api/v1/locks", headers=h(srv, sub="ops"), json_body={
        "branch": b, "scope": "resource_type", "resource_type": "shared-properties", "kind": "maintenance",
        "reason": "re-keying", "ttl_seconds": 600})
    assert lk.status == 201, lk
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE)
    assert r.returncode == 5 and "423" in r.stderr and "ops" in r.stderr, r
    assert srv.request("DELETE", f"/api/v1/locks/{lk.json()['id']}", headers=h(srv, sub="ops")).status == 200
    r = cli(srv, "apply", "-f", d, "--branch", b, "--issue", ISSUE)
    assert r.returncode == 0, r
    # a directory without resource folders is refused before anything is asked
    r = cli(srv, "apply", "-f", scratch(), "--branch", b, "--prune", "--issue", ISSUE)
    assert r.returncode == 2 and "none of the folders" in r.stderr, r
