"""The everyday client commands (SPEC §14, issue #19): branches, reads,
diff, proposals and reviews, merges, tags, locks, search, audit tail,
credentials, exit codes, and what a terminal shows against what a pipe gets."""

import json
import os
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cliharness import (scratch, ISSUE, ROOT, as_json, branch, cli, cli_env, commit, create_all, export, h, head,  # noqa: E402
                        sample, write)
from harness import OMS_BIN, Skip, free_port  # noqa: E402


def _routes(srv):
    r = srv.run_cli("routes")
    assert r.returncode == 0, r
    return {(x["method"], x["pattern"]) for x in map(json.loads, r.stdout.splitlines())}


def test_branch_get_search_diff(ctx):
    srv = ctx.server
    r = cli(srv, "branch", "create", "cli/cmds", "--from", ROOT)
    assert r.returncode == 0 and "created branch cli/cmds" in r.stdout, r
    r = cli(srv, "branch", "create", "cli/cmds", "--from", ROOT)
    assert r.returncode == 3 and "409" in r.stderr, r  # exists: a conflict
    create_all(srv, "cli/cmds", sample())
    r = cli(srv, "branch", "list")
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "HEAD", "PROTECTED", "CREATED", "BY", "UPDATED"], lines[0]
    row = next(x for x in lines if x.startswith("cli/cmds "))
    assert row.split()[1] == head(srv, "cli/cmds")[:12] and row.split()[2] == "no"
    assert lines[0].index("HEAD") == row.index(row.split()[1])  # aligned columns
    names = [b["name"] for b in as_json(cli(srv, "branch", "list", "--json"))]
    assert "cli/cmds" in names and "main" in names
    r = cli(srv, "get", "object-types/Person", "--branch", "cli/cmds")
    assert r.returncode == 0 and r.stdout.startswith("api_name: Person\n") and "meta" not in r.stdout, r
    doc = as_json(cli(srv, "get", "object-types/Person", "--branch", "cli/cmds", "--json"))
    assert doc["api_name"] == "Person" and doc["meta"]["branch"] == "cli/cmds"
    r = cli(srv, "get", "object-types/Nobody", "--branch", "cli/cmds")
    assert r.returncode == 6 and "404 not_found" in r.stderr and "request id:" in r.stderr, r
    r = cli(srv, "get", "widgets/Person")
    assert r.returncode == 2 and "unknown kind" in r.stderr, r
    r = cli(srv, "search", "pers", "--branch", "cli/cmds")
    assert r.returncode == 0 and r.stdout.splitlines()[0].split()[0] == "RESOURCE", r
    assert "object-types/Person" in r.stdout
    found = as_json(cli(srv, "search", "pers", "--branch", "cli/cmds", "--json"))
    assert found["items"][0]["resource"] == "object-types/Person"
    r = cli(srv, "diff", ROOT, "cli/cmds")
    assert r.returncode == 0 and "+ added     object-types/Person" in r.stdout and "7 changed resources" in r.stdout, r
    d = as_json(cli(srv, "diff", ROOT, "cli/cmds", "--json"))
    assert len(d["changes"]) == 7 and d["to"] == head(srv, "cli/cmds")
    r = cli(srv, "branch", "delete", "cli/cmds", "--issue", ISSUE)
    assert r.returncode == 0, r
    assert cli(srv, "get", "object-types/Person", "--branch", "cli/cmds").returncode == 6


def test_get_at_a_commit(ctx):
    srv = ctx.server
    branch(srv, "cli/at")
    c1 = create_all(srv, "cli/at", [("shared-properties", {"api_name": "Old", "type": "string"})])
    create_all(srv, "cli/at", [("shared-properties", {"api_name": "New", "type": "string"})])
    probe = srv.get("/api/v1/schemas/cli%2Fat?at=" + c1, headers=h(srv))
    if probe.status != 200 or probe.json().get("commit") != c1:
        raise Skip("the server does not answer ?at= reads yet (SPEC §4 time travel); the client sends ?at=")
    r = cli(srv, "get", "shared-properties/New", "--branch", "cli/at", "--at", c1)
    assert r.returncode == 6, r
    d = scratch()
    r = cli(srv, "export", "--branch", "cli/at", "--at", c1, "-o", d)
    assert r.returncode == 0 and os.listdir(os.path.join(d, "shared-properties")) == ["Old.yaml"], r


def test_at_reads_are_checked_against_the_served_commit(ctx):
    """`--at` must never quietly give the head: the client compares the commit
    the service answered with to the one asked for."""
    srv = ctx.server
    branch(srv, "cli/at-check")
    c1 = create_all(srv, "cli/at-check", [("shared-properties", {"api_name": "Old", "type": "string"})])
    c2 = create_all(srv, "cli/at-check", [("shared-properties", {"api_name": "New", "type": "string"})])
    probe = srv.get("/api/v1/schemas/cli%2Fat-check?at=" + c1, headers=h(srv))
    if probe.status == 200 and probe.json().get("commit") == c1:
        raise Skip("the server answers ?at= reads: test_get_at_a_commit covers them")
    d = scratch()
    r = cli(srv, "export", "--branch", "cli/at-check", "--at", c1, "-o", d)
    assert r.returncode == 1 and f"asked for {c1}" in r.stderr and c2 in r.stderr, r
    assert os.listdir(d) == []  # nothing written
    r = cli(srv, "get", "shared-properties/Old", "--branch", "cli/at-check", "--at", "v1")
    assert r.returncode == 1 and "asked for v1" in r.stderr and r.stdout == "", r
    # at the head itself the answer is right, and the read goes through
    r = cli(srv, "get", "shared-properties/Old", "--branch", "cli/at-check", "--at", c2)
    assert r.returncode == 0 and r.stdout.startswith("api_name: Old"), r


def test_propose_review_merge(ctx):
    srv = ctx.server
    branch(srv, "cli/prop-target")
    branch(srv, "cli/prop-src")
    create_all(srv, "cli/prop-src", sample())
    out = as_json(cli(srv, "propose", "--source", "cli/prop-src", "--target", "cli/prop-target", "--title",
                      "Add the people model", "--json"))
    pid = out["id"]
    assert out["state"] == "open" and out["source"] == "cli/prop-src"
    # the author cannot approve their own proposal
    r = cli(srv, "review", "approve", pid)
    assert r.returncode in (3, 4) and r.stderr.startswith("oms: review:"), r
    rev = srv.token("rev", ("reviewer",))
    r = cli(srv, "review", "approve", pid, "-m", "looks right", token=rev)
    assert r.returncode == 0, r
    r = cli(srv, "merge", "--proposal", pid, "--issue", ISSUE, token=rev)
    assert r.returncode == 0 and "merged" in r.stdout, r
    assert head(srv, "cli/prop-target") == head(srv, "cli/prop-src") or \
        sorted(x["api_name"] for x in export(srv, "cli/prop-target")["object-types"]) == ["Company", "Person"]
    # a direct branch merge, and a conflict (exit 3)
    branch(srv, "cli/m-a")
    branch(srv, "cli/m-b")
    create_all(srv, "cli/m-a", [("shared-properties", {"api_name": "X", "type": "string"})])
    create_all(srv, "cli/m-b", [("shared-properties", {"api_name": "X", "type": "long"})])
    r = cli(srv, "merge", "cli/m-a", "--into", "cli/m-b", "-m", "merge a", "--issue", ISSUE)
    assert r.returncode == 3 and "409" in r.stderr and "shared-properties/X" in r.stderr, r
    branch(srv, "cli/m-c")
    r = cli(srv, "merge", "cli/m-a", "--into", "cli/m-c", "-m", "merge a", "--issue", ISSUE)
    assert r.returncode == 0 and "merged" in r.stdout, r
    assert [x["api_name"] for x in export(srv, "cli/m-c")["shared-properties"]] == ["X"]
    r = cli(srv, "review", "reject", pid, token=rev)
    assert r.returncode == 3 and "409" in r.stderr, r  # merged: no longer open


def test_review_request_changes_and_comments(ctx):
    srv = ctx.server
    routes = _routes(srv)
    if ("POST", "/api/v1/proposals/{id}/request-changes") not in routes or \
            ("POST", "/api/v1/proposals/{id}/comments") not in routes:
        raise Skip("the server has no request-changes / comments routes yet (SPEC §5); the client calls them")
    branch(srv, "cli/rc-target")
    branch(srv, "cli/rc-src")
    create_all(srv, "cli/rc-src", sample())
    pid = as_json(cli(srv, "propose", "--source", "cli/rc-src", "--target", "cli/rc-target", "--title", "t",
                      "--json"))["id"]
    rev = srv.token("rev", ("reviewer",))
    r = cli(srv, "review", "request-changes", pid, "-m", "name the key", token=rev)
    assert r.returncode == 0, r
    r = cli(srv, "review", "comment", pid, "-m", "why long?", "--resource", "object-types/Company", "--field",
            "/properties/0/type", token=rev)
    assert r.returncode == 0, r
    r = cli(srv, "merge", "--proposal", pid, "--issue", ISSUE, token=rev)
    assert r.returncode == 3, r  # changes requested block merging


def test_tags(ctx):
    srv = ctx.server
    if ("POST", "/api/v1/tags") not in _routes(srv):
        r = cli(srv, "tag", "list")
        assert r.returncode == 6 and "does not offer tags" in r.stderr, r
        raise Skip("the server has no tag routes yet (SPEC §4, §5); the client speaks GET/POST/DELETE /api/v1/tags")
    branch(srv, "cli/tags")
    c1 = create_all(srv, "cli/tags", sample())
    r = cli(srv, "tag", "create", "cli-v1", "--ref", "cli/tags", "-m", "first")
    assert r.returncode == 0, r
    tags = as_json(cli(srv, "tag", "list", "--json"))["items"]
    assert any(t["name"] == "cli-v1" and t["commit"] == c1 for t in tags), tags
    r = cli(srv, "tag", "delete", "cli-v1", "--issue", ISSUE, token=srv.token("adm", ("admin",)))
    assert r.returncode == 0, r


def test_locks(ctx):
    srv = ctx.server
    branch(srv, "cli/locks")
    create_all(srv, "cli/locks", sample())
    lk = as_json(cli(srv, "lock", "acquire", "--branch", "cli/locks", "--resource", "object-types/Person",
                     "--kind", "manual", "--reason", "hand edit", "--ttl", "600", "--json"))
    assert lk["holder"] == "dev" and lk["resource_id"] == "Person" and lk["scope"] == "resource"
    r = cli(srv, "lock", "acquire", "--branch", "cli/locks", "--resource-type", "object-types", "--reason", "x",
            token=srv.token("other", ("developer",)))
    assert r.returncode == 3 and "409" in r.stderr, r
    r = cli(srv, "lock", "heartbeat", lk["id"], "--percent", "40", "--phase", "edit", "--message", "halfway")
    assert r.returncode == 0, r
    r = cli(srv, "lock", "list", "--branch", "cli/locks")
    assert r.returncode == 0, r
    head_line, row = r.stdout.splitlines()[0], next(x for x in r.stdout.splitlines() if x.startswith(lk["id"]))
    assert head_line.split()[:3] == ["ID", "BRANCH", "RESOURCE"] and "object-types/Person" in row and "40%" in row
    assert row.index("40%") == head_line.index("PROGRESS")
    # someone else's write meets the lock: exit 5, the holder named
    r = cli(srv, "lock", "release", lk["id"], token=srv.token("other", ("developer",)))
    assert r.returncode == 4, r
    r = cli(srv, "lock", "release", lk["id"])
    assert r.returncode == 0, r
    assert [x for x in as_json(cli(srv, "lock", "list", "--branch", "cli/locks", "--json"))["items"]
            if x["id"] == lk["id"] and x.get("state", "active") == "active" and not x.get("released_at")] == []


def test_audit_tail_and_follow(ctx):
    srv = ctx.server
    aud = srv.token("aud", ("auditor",))
    branch(srv, "cli/audit")
    for i in range(5):
        create_all(srv, "cli/audit", [("shared-properties", {"api_name": f"A{i}", "type": "string"})])
    r = cli(srv, "audit", "tail", "-n", "5", "--json", token=aud)
    assert r.returncode == 0, r
    ev = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(ev) == 5 and [e["seq"] for e in ev] == sorted(e["seq"] for e in ev)
    r = cli(srv, "audit", "tail", "-n", "3", "--action", "branch.create", token=aud)
    assert r.returncode == 0 and r.stdout.count("branch.create") == len(r.stdout.splitlines()) >= 1, r
    assert cli(srv, "audit", "tail").returncode == 4  # a developer may not read the audit log
    # --follow shows new events as they come
    p = subprocess.Popen([OMS_BIN, "audit", "tail", "-n", "1", "--follow", "--interval", "1", "--action",
                          "schema.changes", "--json"], env=cli_env(srv, token=aud), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        c = create_all(srv, "cli/audit", [("shared-properties", {"api_name": "Followed", "type": "string"})])
        deadline = time.time() + 20
        seen = []
        while time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            seen.append(json.loads(line))
            if any(e.get("commit_id") == c for e in seen):
                break
        assert any(e.get("commit_id") == c for e in seen), seen
    finally:
        p.kill()
        p.wait()
    # the operator's `oms audit` commands are untouched: `verify` is not the client's
    r = srv.run_cli("audit", "verify")
    assert "usage: oms COMMAND" not in r.stderr


def test_credentials_file_and_token_sources(ctx):
    srv = ctx.server
    home = scratch("home-")
    tok = srv.token("dev", ("developer",))
    tf = os.path.join(home, "token")
    write(tf, tok + "\n")
    env = {"HOME": home, "OMS_TOKEN": None}
    r = cli(srv, "login", "--token-file", tf, "--url", f"http://127.0.0.1:{srv.port}", env=dict(env, OMS_URL=None))
    assert r.returncode == 0, r
    cred = os.path.join(home, ".config", "oms", "credentials")
    assert stat.S_IMODE(os.stat(cred).st_mode) == 0o600
    r = cli(srv, "branch", "list", env=dict(env, OMS_URL=None))
    assert r.returncode == 0 and "main" in r.stdout, r
    os.chmod(cred, 0o644)
    r = cli(srv, "branch", "list", env=env)
    assert r.returncode == 2 and "too open" in r.stderr, r
    os.chmod(cred, 0o600)
    r = cli(srv, "logout", env=env)
    assert r.returncode == 0 and not os.path.exists(cred)
    r = cli(srv, "branch", "list", env=env)
    assert r.returncode == 2 and "no token" in r.stderr, r
    # OMS_TOKEN_FILE, and not both sources at once
    r = cli(srv, "branch", "list", env={"HOME": home, "OMS_TOKEN": None, "OMS_TOKEN_FILE": tf})
    assert r.returncode == 0, r
    r = cli(srv, "branch", "list", env={"HOME": home, "OMS_TOKEN_FILE": tf})
    assert r.returncode == 2 and "not both" in r.stderr, r
    # a refused or unreachable token never shows up in what the client prints
    bad = srv.token("dev", ("developer",), ttl=-3600)
    for args, want in ((("branch", "list"), 4), (("get", "object-types/X"), 4)):
        r = cli(srv, *args, token=bad)
        assert r.returncode == want and bad not in r.stdout + r.stderr and "401" in r.stderr, r
    r = cli(srv, "branch", "list", token=bad, env={"OMS_URL": f"http://127.0.0.1:{free_port()}"})
    assert r.returncode == 7 and "cannot reach" in r.stderr and bad not in r.stderr, r
    # nor in the server's log (the client sends it in the Authorization header only)
    assert tok not in srv.read_log() and bad not in srv.read_log()
    r = cli(srv, "branch", "list", env={"OMS_URL": "ftp://example.invalid"})
    assert r.returncode == 2, r
    assert cli(srv, "branch", "frobnicate").returncode == 2
    assert cli(srv, "apply", "--bogus").returncode == 2


def _tmux(sock, *args):
    return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True, timeout=30)


def test_terminal_shows_progress_and_tables_a_pipe_plain_lines(ctx):
    if not shutil.which("tmux"):
        raise Skip("tmux is not installed (scripts/install-deps.sh installs it)")
    srv = ctx.server
    branch(srv, "cli/tty")
    create_all(srv, "cli/tty", sample(extra=300))
    branch(srv, "cli/tty-copy")
    tmp = scratch("tty-")
    d, d2 = os.path.join(tmp, "onto"), os.path.join(tmp, "onto2")
    env = cli_env(srv)
    script = os.path.join(tmp, "run.sh")
    with open(script, "w") as f:
        for k in ("OMS_URL", "OMS_TOKEN", "HOME", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if k in env:
                f.write(f"export {k}='{env[k]}'\n")
        f.write("unset NO_COLOR\nexport TERM=xterm-256color\n")
        f.write(f"{OMS_BIN} export --branch cli/tty -o {d}\n")
        f.write(f"{OMS_BIN} apply -f {d} --branch cli/tty-copy --issue {ISSUE} -m copy >/dev/null\n")
        f.write(f"{OMS_BIN} branch list\n")
        f.write("echo CLI-DONE; sleep 120\n")
    os.chmod(script, 0o700)
    sock = os.path.join(tmp, "tmux.sock")
    try:
        r = _tmux(sock, "new-session", "-d", "-s", "cli", "-x", "200", "-y", "60", "sh " + script)
        assert r.returncode == 0, r
        deadline, pane = time.time() + 60, ""
        while time.time() < deadline:
            # the whole history: on the shared server the branch list is
            # longer than the window and scrolls the bars off it
            pane = _tmux(sock, "capture-pane", "-p", "-S", "-", "-t", "cli").stdout
            if "CLI-DONE" in pane:
                break
            time.sleep(0.3)
        assert "CLI-DONE" in pane, pane
        total = 307
        assert f"exporting [{'#' * 30}] 100.0%  {total}/{total}" in pane, pane
        assert f"reading [{'#' * 30}] 100.0%  {total}/{total}" in pane, pane
        lines = pane.splitlines()
        hdr = next(x for x in lines if x.startswith("NAME "))
        row = next(x for x in lines if x.startswith("cli/tty-copy "))
        assert hdr.index("HEAD") == row.index(head(srv, "cli/tty-copy")[:12]), (hdr, row)
        colored = _tmux(sock, "capture-pane", "-p", "-e", "-S", "-", "-t", "cli").stdout
        assert "\x1b[1mNAME" in colored, colored  # bold header on a terminal only
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert marker not in pane, pane
    finally:
        _tmux(sock, "kill-server")
    assert export(srv, "cli/tty")["tree"] == export(srv, "cli/tty-copy")["tree"]
    # the same commands into a pipe: plain lines, no bar, no escapes
    r = cli(srv, "export", "--branch", "cli/tty", "-o", d2)
    assert r.returncode == 0 and r.stderr == "" and "\r" not in r.stdout and "\x1b" not in r.stdout, r
    assert r.stdout == f"exported {total} resources of cli/tty at {head(srv, 'cli/tty')} to {d2}\n", r.stdout
    r = cli(srv, "branch", "list")
    assert r.returncode == 0 and "\x1b" not in r.stdout and r.stdout.startswith("NAME "), r
