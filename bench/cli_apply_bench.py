"""`oms apply` of a 10,000-resource directory (issue #19): the client's wall
time and peak RSS, and the server's, for

1. apply into an empty branch: read and parse 10,000 YAML files, fetch the
   (empty) branch, plan, validate, and commit one 10,000-operation batch;
2. export of the branch back into 10,000 files;
3. apply of the unchanged export (plan only: no validate, no commit);
4. apply of the export after 100 files changed (plan, validate, commit).

The resources are minimal shared properties so the batch fits the
service's 1 MiB request limit (10,000 operations is also the batch's limit):
an export of 10,000 resources spells out every default and is 1.7 MB as a
batch, so it cannot be applied into an empty branch in one commit.

    python3 bench/cli_apply_bench.py [sqlite|pg] [resources]
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "api"))
import harness  # noqa: E402

ROOT = "f3ab1c4df08af46a9952b5215a76f927995c22be60560bd9441fc9b938e0534d"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def run(env, *args):
    """Runs the client; returns (seconds, peak RSS in MiB, stdout). Output
    goes to files: a pipe nobody reads while we wait would block the client."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.monotonic()
        p = subprocess.Popen([harness.OMS_BIN, *args], env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        dt = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errs = out.read(), err.read()
    if p.returncode != 0:
        raise RuntimeError(f"oms {' '.join(args)}: exit {p.returncode}: {errs[-2000:]}")
    return dt, usage.ru_maxrss / 1024.0, text


def main():
    backend = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    srv = harness.Server(backend)
    tmp = tempfile.mkdtemp(prefix="oms-cli-bench-")
    try:
        tok = srv.token("bench", ("developer",))
        h = {"Authorization": "Bearer " + tok}
        for b in ("bench/a",):
            r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": b, "from": ROOT})
            assert r.status == 201, r
        src = os.path.join(tmp, "src")
        os.makedirs(os.path.join(src, "shared-properties"))
        for i in range(n):
            with open(os.path.join(src, "shared-properties", f"P{i:05d}.yaml"), "w") as f:
                f.write(f"api_name: P{i:05d}\ntype: string\n")
        env = {"PATH": os.environ.get("PATH", ""), "OMS_URL": f"http://127.0.0.1:{srv.port}", "OMS_TOKEN": tok,
               "HOME": tmp}
        base = rss_kb(srv.proc.pid)
        res = []
        dt, rss, out = run(env, "apply", "-f", src, "--branch", "bench/a", "-m", "bulk", "--issue", "OMS-19")
        assert f"applied {n} changes" in out, out
        res.append((f"apply {n} new resources (one commit)", dt, rss))
        exp = os.path.join(tmp, "export")
        dt, rss, out = run(env, "export", "--branch", "bench/a", "-o", exp)
        res.append((f"export {n} resources", dt, rss))
        dt, rss, out = run(env, "apply", "-f", exp, "--branch", "bench/a", "--issue", "OMS-19")
        assert out.startswith("no changes"), out
        res.append(("apply of the unchanged export (no commit)", dt, rss))
        for i in range(0, n, max(1, n // 100)):
            p = os.path.join(exp, "shared-properties", f"P{i:05d}.yaml")
            with open(p) as f:
                text = f.read()
            with open(p, "w") as f:
                f.write(text.replace('description: ""', "description: changed"))
        dt, rss, out = run(env, "apply", "-f", exp, "--branch", "bench/a", "--issue", "OMS-19", "-m", "edit")
        assert "applied 100 changes" in out, out
        res.append(("apply of the export with 100 files changed", dt, rss))
        print(f"cli apply [{backend}], {n} resources (client wall time, client peak RSS):")
        for name, dt, rss in res:
            print(f"  {name:52s} {dt * 1000:8.0f} ms  {rss:6.1f} MiB")
        print(f"  server peak RSS {rss_kb(srv.proc.pid) / 1024:.1f} MiB (before: {base / 1024:.1f} MiB)")
    finally:
        srv.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
