"""One clock (issue #11 item 7): commits and audit events are timed by the
database clock, as locks are, so an instance whose own clock is wrong
never writes the future. An instance runs under libfaketime two hours
ahead; what it writes must carry the database's time. PostgreSQL only:
SQLite runs inside the instance, so its clock is the instance's clock."""

import os
import time

import harness

BACKENDS = ("pg",)
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


# libfaketime cannot start a process that links jemalloc (its start-up and
# jemalloc's each call the other's first function): this instance runs the
# same server linked with the C library's allocator, which `make test`
# builds beside it (docs/memory.md "The allocator").
GLIBC_BIN = harness.OMS_BIN + "-glibc"


def test_a_fast_instance_writes_database_time(ctx):
    assert os.path.exists(FAKETIME), "faketime is installed by scripts/install-deps.sh"
    assert os.path.exists(GLIBC_BIN), f"{GLIBC_BIN} is built by make test"
    # under the sanitizer build ASan must accept a library preloaded before it
    asan = (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    srv = ctx.new_server(env={"LD_PRELOAD": FAKETIME, "FAKETIME": "+2h", "DONT_FAKE_MONOTONIC": "1",
                              "ASAN_OPTIONS": asan}, binary=GLIBC_BIN)
    # the token is judged by the instance's (fast) clock: give it room
    tok = srv.token("dev", ("developer",), ttl=4 * 3600)
    h = {"Authorization": "Bearer " + tok, "X-Issue-ID": "CLK-1"}
    r = srv.request("POST", "/api/v1/branches", headers=h, json_body={"name": "clock/x", "from": "main"})
    assert r.status == 201, r
    before = time.time() * 1000
    r = srv.request("POST", "/api/v1/schemas/clock%2Fx/shared-properties", headers=h,
                    json_body={"api_name": "Timed", "type": "string"})
    assert r.status == 201, r
    after = time.time() * 1000
    commit = r.header("X-Commit")
    (t,), = srv.query(f"SELECT time_ms FROM commits WHERE id = '{commit}'")
    assert before - 2000 <= int(t) <= after + 2000, (before, t, after)
    events = srv.query(f"SELECT time_ms FROM audit_events WHERE commit_id = '{commit}'")
    assert events and all(before - 2000 <= int(e[0]) <= after + 2000 for e in events), (before, events, after)
