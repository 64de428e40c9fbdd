"""Start-up refusals (SPEC §2): exit code 2 and one clear line on stderr,
never echoing the secret; migrations and readiness."""

import os
import signal
import subprocess
import time

import harness


def _refused(ctx, env, expect):
    srv = ctx.new_server(env=env, start=False)
    r = subprocess.run([harness.OMS_BIN, "serve"], env=srv.env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, (env, r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert expect in lines[0], (expect, lines[0])
    for v in env.values():
        if v and len(v) >= 6 and "FILE" not in v and "/" not in v:
            assert v not in r.stderr, "secret echoed"
    return lines[0]


def test_no_secret(ctx):
    _refused(ctx, {"JWT_SECRET": None}, "no JWT secret")


def test_both_secret_forms(ctx):
    srv = ctx.new_server(start=False)
    path = os.path.join(srv.tmp, "secret")
    with open(path, "w") as f:
        f.write("Zq8Lw3Nx7Vb2Mc5Kd9Jf4Hg6Ts1Ry0Pe-file-form\n")
    _refused(ctx, {"JWT_SECRET_FILE": path}, "both JWT_SECRET and JWT_SECRET_FILE")


def test_short_secret(ctx):
    _refused(ctx, {"JWT_SECRET": "Xy7#kP2!qL9"}, "shorter than 32 bytes")


def test_placeholder_secrets(ctx):
    for s in ("your-secret-key-your-secret-key-123", "changeme-changeme-changeme-changeme",
              "dev-secret-dev-secret-dev-secret-1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
              "password1234567890password1234567890", "secret"):
        line = _refused(ctx, {"JWT_SECRET": s}, "JWT_SECRET")
        assert "placeholder" in line or "shorter" in line, line


def test_secret_file_form_works(ctx):
    srv = ctx.new_server(start=False)
    path = os.path.join(srv.tmp, "secret")
    with open(path, "w") as f:
        f.write(srv.secret + "\n")
    os.chmod(path, 0o600)
    srv.env.pop("JWT_SECRET")
    srv.env["JWT_SECRET_FILE"] = path
    srv.start()
    assert srv.get("/api/v1/me", headers=srv.auth()).status == 200


def test_database_url_file_form(ctx):
    srv = ctx.new_server(start=False)
    path = os.path.join(srv.tmp, "dburl")
    with open(path, "w") as f:
        f.write(srv.env.pop("DATABASE_URL") + "\n")
    srv.env["DATABASE_URL_FILE"] = path
    srv.start()
    assert srv.get("/ready").status == 200


def test_database_unreachable(ctx):
    env = {"DATABASE_URL": "postgresql://nobody:hunter2-db-password@127.0.0.1:1/none?connect_timeout=2"}
    line = _refused(ctx, env, "database unreachable")
    assert "hunter2" not in line


def test_migration_newer_than_binary(ctx):
    srv = ctx.new_server()
    srv.stop()
    if srv.backend == "sqlite":
        import sqlite3
        con = sqlite3.connect(srv.db_path)
        con.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)")
        con.commit()
        con.close()
    else:
        harness._psql(srv.database_url,
                      "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)")
    r = subprocess.run([harness.OMS_BIN, "serve"], env=srv.env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "newer than this binary" in r.stderr, r.stderr


def test_migrate_command_is_idempotent(ctx):
    srv = ctx.new_server(start=False)
    r1 = srv.run_cli("migrate")
    assert r1.returncode == 0 and "applied 0" not in r1.stdout, r1
    r2 = srv.run_cli("migrate")
    assert r2.returncode == 0 and "applied 0" in r2.stdout, r2.stdout


def test_concurrent_starts_migrate_once(ctx):
    srv = ctx.new_server(start=False)
    procs = [subprocess.Popen([harness.OMS_BIN, "migrate"], env=srv.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    applied = sum(int(o[0].split()[1]) for o in outs)
    rows = srv.query("SELECT version FROM schema_migrations")
    assert applied == len(rows) >= 2, (applied, rows, outs)
    # the root commit and main were created exactly once
    assert len(srv.query("SELECT name FROM branches")) == 1


def test_config_check_redacts(ctx):
    srv = ctx.new_server(start=False)
    r = srv.run_cli("config", "check")
    assert r.returncode == 0, r.stderr
    assert srv.secret not in r.stdout
    assert "JWT_SECRET=(set, redacted)" in r.stdout
    r = srv.run_cli("config", "check", env={"DATABASE_URL": "postgresql://u:topsecretpw@h:5432/d"})
    assert "topsecretpw" not in r.stdout and "u:***@h:5432/d" in r.stdout


def test_drain_on_sigterm(ctx):
    srv = ctx.new_server()
    code = srv.stop()
    assert code == 0, code
    actions = [e["action"] for e in srv.audit_events()]
    assert "server.start" in actions and actions[-1] == "server.stop", actions


def _blocks_sigterm(pid):
    """Whether the process's main thread blocks SIGTERM (/proc: SigBlk)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)) != 0
    return False


def test_sigterm_during_start_up_stops_the_server_the_usual_way(ctx):
    """A SIGTERM sent while `oms serve` is still starting (as soon as it
    blocks the signal, before it opens the database) waits for the server,
    which then drains and stops: exit 0, server.start then server.stop.
    Before, threads started during set-up did not block it, and a SIGTERM
    in the moment between the listener coming up and the main thread
    waiting for signals ended the process on the spot (a CI run caught a
    server with server.start and no server.stop)."""
    for attempt in range(3):
        srv = ctx.new_server(start=False)
        srv.start(wait=False)
        deadline = time.time() + 10
        while time.time() < deadline and srv.proc.poll() is None and not _blocks_sigterm(srv.proc.pid):
            time.sleep(0.0005)
        assert srv.proc.poll() is None, srv.read_log()[-2000:]
        srv.proc.send_signal(signal.SIGTERM)
        try:
            code = srv.proc.wait(timeout=30)
        finally:
            srv.stop()
        assert code == 0, (attempt, code, srv.read_log()[-2000:])
        actions = [e["action"] for e in srv.audit_events()]
        assert "server.start" in actions and actions[-1] == "server.stop", (attempt, actions)


def test_postgresql_without_prepared_statements(ctx):
    """Behind a transaction-pooling proxy that cannot keep prepared
    statements, every statement goes unnamed; everything still works."""
    if ctx.backend != "pg":
        raise harness.Skip("PostgreSQL only: prepared statements are a PostgreSQL connection setting")
    srv = ctx.new_server(env={"OMS_PG_PREPARED_STATEMENTS": "0"})
    h = srv.auth("dev", ["developer"])
    h["X-Issue-ID"] = "OMS-1"
    assert srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": "unnamed"}).status == 201
    r = srv.request("POST", "/api/v1/schemas/unnamed/shared-properties", headers=h,
                    json_body={"api_name": "Plain", "type": "string"})
    assert r.status == 201, r
    assert srv.get("/api/v1/schemas/unnamed/shared-properties/Plain", headers=h).status == 200
    assert srv.get("/api/v1/audit/verify", headers=srv.auth("aud", ["auditor"])).status == 200


def test_configuration_doc_matches_the_table(ctx):
    srv = ctx.new_server(start=False)
    r = srv.run_cli("config", "docs")
    assert r.returncode == 0
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "configuration.md")) as f:
        assert f.read() == r.stdout, "docs/configuration.md is stale: run `oms config docs > docs/configuration.md`"


def _gauge(srv, name):
    return int(srv.metric(name))


def test_snapshot_cache_size_is_a_checked_setting(ctx):
    """OMS_SNAPSHOT_CACHE_MB is in the configuration table: a bad value
    refuses the start with a clear line (it was read with getenv and a bad
    value silently ignored); the default, 256, is documented and printed by
    `oms config check`, and the configured bound reaches the cache."""
    _refused(ctx, {"OMS_SNAPSHOT_CACHE_MB": "abc"}, "configuration: OMS_SNAPSHOT_CACHE_MB must be an integer")
    _refused(ctx, {"OMS_SNAPSHOT_CACHE_MB": "0"}, "OMS_SNAPSHOT_CACHE_MB must be between 1 and 65536")
    _refused(ctx, {"OMS_SNAPSHOT_CACHE_MB": "65537"}, "OMS_SNAPSHOT_CACHE_MB must be between 1 and 65536")
    srv = ctx.new_server(start=False)
    r = srv.run_cli("config", "check")
    assert r.returncode == 0, r.stderr
    assert "OMS_SNAPSHOT_CACHE_MB=256  # default" in r.stdout, r.stdout
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "configuration.md")) as f:
        assert "| `OMS_SNAPSHOT_CACHE_MB` | integer | `256` | 1..65536 |" in f.read()
    srv.start()
    assert _gauge(srv, "oms_snapshot_cache_limit_bytes") == 256 << 20
    small = ctx.new_server(env={"OMS_SNAPSHOT_CACHE_MB": "3"})
    assert _gauge(small, "oms_snapshot_cache_limit_bytes") == 3 << 20


def test_release_server_allocates_with_jemalloc(ctx):
    """The release build's allocator is jemalloc (docs/memory.md "The
    allocator"): a link that dropped it would bring back glibc's
    fragmentation under load without any other test noticing."""
    srv = ctx.new_server()
    with open(f"/proc/{srv.proc.pid}/maps") as f:
        maps = f.read()
    if "libasan" in maps:
        raise harness.Skip("a sanitizer build keeps the C library's allocator, which the sanitizer replaces")
    assert "libjemalloc" in maps, "the server does not map libjemalloc"
    # and knows it (src/util/heap.c): said in the "serving" line, which is
    # written a moment after the listener answers /health
    deadline = time.time() + 5
    while "; jemalloc allocator)" not in srv.read_log() and time.time() < deadline:
        time.sleep(0.02)
    assert "; jemalloc allocator)" in srv.read_log(), srv.read_log()[-2000:]
    # and it serves on it
    r = srv.get("/api/v1/branches", headers=srv.auth("dev", ("developer",)))
    assert r.status == 200, r
    # with jemalloc's background purging threads (src/util/heap.c
    # oms_heap_serve), which the operator can turn off
    assert _threads_named(srv.proc.pid, "jemalloc_bg_thd") >= 1
    off = ctx.new_server(env={"MALLOC_CONF": "background_thread:false"})
    assert off.get("/api/v1/branches", headers=off.auth("dev", ("developer",))).status == 200
    assert _threads_named(off.proc.pid, "jemalloc_bg_thd") == 0


def _threads_named(pid, name):
    n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                n += f.read().strip() == name
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return n
