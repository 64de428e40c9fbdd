#!/bin/sh
# Lock acquire + release over HTTP (SPEC §12: p50 <= 1 ms, p99 <= 5 ms),
# beside the raw round trip of `SELECT pg_try_advisory_xact_lock(...)`
# measured by pgbench against the same PostgreSQL in the same run.
#
# Run by `make bench` (scripts/run-bench.sh exports OMS_BIN, OMS_PG_URL,
# OMS_PG_PORT). Alone:
#   eval "$(scripts/pg-throwaway.sh start)"; export OMS_PG_URL OMS_PG_PORT
#   OMS_BIN=build/rel/oms bench/locks_bench.sh
#
# One client: sequential pairs on one keep-alive connection (latency).
# 16 clients: one connection and one resource each, same branch (load).
# Servers log at warn (no access-log line per request), like the other benches.
set -eu
OMS_BIN=${OMS_BIN:-build/rel/oms}
ITER=${LOCKS_BENCH_ITERATIONS:-2000}
WARM=${LOCKS_BENCH_WARMUP:-200}
PGB_SECONDS=${LOCKS_BENCH_PGBENCH_SECONDS:-5}
: "${OMS_PG_URL:?OMS_PG_URL must point at a PostgreSQL server (scripts/pg-throwaway.sh)}"

tmp=$(mktemp -d /tmp/oms-locks-bench.XXXXXX)
server_pid=""
dbname="oms_lockbench_$$"
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  psql "$OMS_PG_URL" -q -X -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cc -O2 -Wall -Wextra -o "$tmp/locks_client" bench/locks_client.c -lpthread

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# percentile P (0-100) of the numbers in file $1
pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'; }

psql "$OMS_PG_URL" -q -X -c "CREATE DATABASE $dbname" >/dev/null
dburl="${OMS_PG_URL%/*}/$dbname"

# ---- baselines: pgbench, one client, same server, same run ----
# (1) the raw round trip of the advisory lock the acquisition protocol takes;
# (2) the floor of any durable change: a write transaction that takes the
#     same advisory lock and inserts one row (BEGIN, lock, INSERT, COMMIT).
#     Acquire and release are one durable audited transaction each.
pgb() { # name script-file [protocol] -> "p50 p99 tps" in us
  (cd "$tmp" && pgbench -n -M "${3:-extended}" -f "$2" -c 1 -j 1 -T "$PGB_SECONDS" -l --log-prefix="$1" "$dburl" \
    >"$1.out" 2>&1) || { cat "$tmp/$1.out" >&2; exit 1; }
  cat "$tmp/$1".[0-9]* | awk '{ print $3 }' >"$tmp/$1_us"
  echo "$(pct "$tmp/$1_us" 50) $(pct "$tmp/$1_us" 99) $(awk '/^tps/ { print int($3) }' "$tmp/$1.out")"
}
echo "SELECT pg_try_advisory_xact_lock(5714314956222124115);" >"$tmp/adv.sql"
psql "$dburl" -q -X -c "CREATE TABLE lock_bench_floor (id BIGSERIAL PRIMARY KEY, v TEXT)" >/dev/null
printf 'BEGIN;\nSELECT pg_advisory_xact_lock(5714314956222124115);\nINSERT INTO lock_bench_floor (v) VALUES (%s);\nCOMMIT;\n' \
  "'x'" >"$tmp/floor.sql"
set -- $(pgb adv adv.sql); pg_p50=$1 pg_p99=$2 pg_tps=$3
echo "pgbench SELECT pg_try_advisory_xact_lock (1 client, ${PGB_SECONDS}s): p50 ${pg_p50} us, p99 ${pg_p99} us, ${pg_tps} tps"
set -- $(pgb floor floor.sql); fl_p50=$1 fl_p99=$2 fl_tps=$3
echo "pgbench BEGIN; advisory lock; INSERT; COMMIT (1 client, ${PGB_SECONDS}s): p50 ${fl_p50} us, p99 ${fl_p99} us, ${fl_tps} tps"
# The machine's own hand-off cost: every lock change crosses processes and
# threads several times (client, event loop, handler, database and back),
# and machines differ most here (docs/BENCHMARKS.md round 21). `perf bench
# sched pipe`: two processes passing a byte back and forth, microseconds per
# round trip, on whichever cores the scheduler picks and on one core.
if command -v perf >/dev/null 2>&1; then
  wake_any=$(perf bench sched pipe -l 50000 2>/dev/null | awk '/usecs\/op/ { print $1 }')
  wake_one=$(taskset -c 0 perf bench sched pipe -l 50000 2>/dev/null | awk '/usecs\/op/ { print $1 }')
  echo "process hand-off round trip (perf bench sched pipe): ${wake_any:-?} us across cores, ${wake_one:-?} us on one core"
fi

run_backend() { # name database-url
  name=$1 url=$2 port=$(free_port)
  secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
  akey=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
  # the bench principal's write limit far above what the clients send:
  # every pair pays for the limiter's decision, none is refused (429)
  DATABASE_URL=$url JWT_SECRET=$secret OMS_AUDIT_KEY=$akey OMS_LISTEN=127.0.0.1:$port OMS_LOG_LEVEL=warn \
    OMS_RATE_LIMIT_OVERRIDES="bench=read:1000000000/s:1000000000,write:1000000000/s:1000000000" \
    "$OMS_BIN" serve >"$tmp/server-$name.log" 2>&1 &
  server_pid=$!
  i=0
  until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 200 ] && { cat "$tmp/server-$name.log" >&2; exit 1; }
    sleep 0.05
  done
  token=$(DATABASE_URL=$url JWT_SECRET=$secret "$OMS_BIN" token --sub bench --roles developer --ttl 1h)
  curl -fs -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"bench","from":"main"}' "http://127.0.0.1:$port/api/v1/branches"
  case $url in postgres*)
    # a lone instance runs under its sole-writer lease (docs/storage.md):
    # measured once it holds it, as bench/http_bench.sh does
    ops=$(DATABASE_URL=$url JWT_SECRET=$secret "$OMS_BIN" token --sub ops --roles service_account --ttl 1h)
    lease=0
    for _ in $(seq 100); do
      curl -fs -H "Authorization: Bearer $ops" "http://127.0.0.1:$port/metrics" | grep -q '^oms_db_sole_writer 1' &&
        { lease=1; break; }
      sleep 0.1
    done
    echo "$name: sole-writer lease held before the run: $lease" ;;
  esac
  one=$("$tmp/locks_client" "$port" "$token" bench "$ITER" "$WARM" 1)
  many=$("$tmp/locks_client" "$port" "$token" bench $((ITER / 8)) $((WARM / 8)) 16)
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  p50=$(echo "$one" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pair"]["p50_us"])')
  p99=$(echo "$one" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pair"]["p99_us"])')
  echo "$name 1 client:   $one"
  echo "$name 16 clients: $many"
  echo "$name acquire+release over HTTP: p50 ${p50} us (target 1000), p99 ${p99} us (target 5000);" \
       "p50 = $(python3 -c "print(round($p50 / $pg_p50, 1))") x the raw advisory-lock round trip," \
       "$(python3 -c "print(round($p50 / $fl_p50, 1))") x one durable write transaction"
}

run_backend PostgreSQL "$dburl"
# The pair's own PostgreSQL statements, as the server sends them (prepared,
# two pipelines, one round trip and one durable commit each), replayed by pgbench on the database
# the server just used: the part of the pair no HTTP work can remove.
set -- $(pgb replay "$(cd "$(dirname "$0")" && pwd)/locks_pair_replay.sql" prepared)
echo "PostgreSQL: the pair's own statements replayed by pgbench (bench/locks_pair_replay.sql, no server): p50 $1 us," \
     "p99 $2 us; over HTTP the pair is $(python3 -c "print(round($p50 / $1, 2))") x its own SQL"
run_backend SQLite "sqlite:$tmp/oms.db"
