"""Packaging (docs/operations.md "Packaging"): `make deb` builds a Debian
package that installs the binary, the sandboxed systemd unit and a default
configuration; installed with `dpkg -i`, `systemd-analyze verify` accepts
the unit, and `oms migrate` and `oms serve` run from the installed binary.
Needs root and dpkg (CI runs as root): SKIP otherwise. The package is
purged afterwards."""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
import harness  # noqa: E402
from harness import Skip  # noqa: E402

BACKENDS = ("sqlite",)  # the package is the same for both; one pass is enough
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=kw.pop("timeout", 300), **kw)


def test_deb_installs_and_serves(ctx):
    if os.geteuid() != 0:
        raise Skip("installing a package needs root")
    if not shutil.which("dpkg") or not shutil.which("dpkg-deb"):
        raise Skip("dpkg is not installed")
    if _run("dpkg-query", "-W", "-f=${Status}", "oms").stdout.startswith("install ok"):
        raise Skip("an oms package is already installed here; not replacing it")
    r = _run("packaging/build-deb.sh", os.environ.get("OMS_BIN", "build/rel/oms"), "build/deb-test", cwd=REPO)
    assert r.returncode == 0, r.stderr
    deb = os.path.join(REPO, r.stdout.strip())
    assert os.path.exists(deb)
    try:
        r = _run("dpkg", "-i", deb)
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.access("/usr/bin/oms", os.X_OK)
        assert os.path.exists("/lib/systemd/system/oms.service")
        assert os.path.exists("/etc/oms/oms.conf")
        st = os.stat("/etc/oms/jwt_secret")
        assert st.st_mode & 0o077 == 0, oct(st.st_mode)
        assert os.access("/usr/lib/oms/oms-backup", os.X_OK)
        if shutil.which("systemd-analyze"):
            for u in ("oms.service", "oms-backup.service", "oms-backup.timer"):
                r = _run("systemd-analyze", "verify", f"/lib/systemd/system/{u}")
                assert r.returncode == 0, (u, r.stdout + r.stderr)
        # the installed binary, with the installed configuration but a
        # temporary database (the state directory is the service's)
        tmp = tempfile.mkdtemp(prefix="oms-deb-")
        port = harness.free_port()
        env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:{tmp}/oms.db",
               "JWT_SECRET_FILE": "/etc/oms/jwt_secret", "OMS_LISTEN": f"127.0.0.1:{port}"}
        r = _run("/usr/bin/oms", "--config", "/etc/oms/oms.conf", "migrate", env=env)
        assert r.returncode == 0 and "schema version" in r.stdout, r.stdout + r.stderr
        log = open(os.path.join(tmp, "serve.log"), "wb")
        proc = subprocess.Popen(["/usr/bin/oms", "--config", "/etc/oms/oms.conf", "serve"], env=env,
                                stdout=log, stderr=log)
        try:
            srv = harness.Server.__new__(harness.Server)
            srv.port = port
            ok = False
            for _ in range(100):
                try:
                    if srv.request("GET", "/health").status == 200:
                        ok = True
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            assert ok, open(os.path.join(tmp, "serve.log")).read()[-2000:]
            # the backup job's script, against the live server
            r = _run("/usr/lib/oms/oms-backup", env=dict(env, OMS_BACKUP_DIR=tmp))
            assert r.returncode == 0 and ": OK:" in r.stdout, r.stdout + r.stderr
            made = [f for f in os.listdir(tmp) if f.endswith(".omsbak.zst")]
            assert len(made) == 1 and os.stat(os.path.join(tmp, made[0])).st_mode & 0o077 == 0, made
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        r = _run("dpkg", "--purge", "oms")
        assert r.returncode == 0, r.stdout + r.stderr
        for f in glob.glob(os.path.join(REPO, "build/deb-test/*")):
            shutil.rmtree(f, ignore_errors=True) if os.path.isdir(f) else os.remove(f)
    assert not os.path.exists("/usr/bin/oms")
