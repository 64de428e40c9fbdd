#!/bin/sh
# Audit costs (SPEC §9, §12; docs/audit.md "Performance"):
#  1. durable denial events over HTTP with many clients (16 and 64
#     keep-alive connections), each 403 sent only after its event is
#     committed by the group-commit writer; beside pgbench inserting single
#     rows from 64 clients (PostgreSQL's own group commit) in the same run;
#  2. what the audit adds to a commit: pgbench runs a commit-shaped write
#     transaction without and with the audit part as OMS writes it since
#     schema version 8 (one statement: the event insert and its chainer
#     queue row; chaining happens after commit), and, for reference, with the
#     audit part chained at insert as versions 4-7 did (chain head FOR
#     UPDATE, event insert, head update), 1 and 16 clients; then
#     one-resource commits over HTTP, 1 client and 16 (one branch each, so
#     nothing but the audit tables is shared);
#  3. both again for several OMS_WORKERS values (AUDIT_BENCH_WORKERS, default
#     "0 8 16 32"; 0 is the default, one per core): HTTP workers block on
#     database I/O, so on PostgreSQL more workers than cores can help.
#
# Run by `make bench` (scripts/run-bench.sh exports OMS_BIN, OMS_PG_URL,
# OMS_PG_PORT). Alone:
#   eval "$(scripts/pg-throwaway.sh start)"; export OMS_PG_URL OMS_PG_PORT
#   OMS_BIN=build/rel/oms bench/audit_bench.sh
set -eu
OMS_BIN=${OMS_BIN:-build/rel/oms}
SECS=${AUDIT_BENCH_SECONDS:-3}
PGB_SECS=${AUDIT_BENCH_PGBENCH_SECONDS:-4}
: "${OMS_PG_URL:?OMS_PG_URL must point at a PostgreSQL server (scripts/pg-throwaway.sh)}"

tmp=$(mktemp -d /tmp/oms-audit-bench.XXXXXX)
server_pid=""
db1="oms_auditbench_$$"
db2="oms_auditbase_$$"
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  for d in "$db1" "$db2"; do psql "$OMS_PG_URL" -q -X -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cc -O2 -Wall -Wextra -o "$tmp/audit_client" bench/audit_client.c -lpthread
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
ratio() { python3 -c "print(round($1 / max($2, 1), 2))"; }

# ---- baselines: pgbench on the same PostgreSQL, same run ----
psql "$OMS_PG_URL" -q -X -c "CREATE DATABASE $db2" >/dev/null
base="${OMS_PG_URL%/*}/$db2"
psql "$base" -q -X >/dev/null <<'SQL'
CREATE TABLE ev (seq BIGSERIAL PRIMARY KEY, event_id TEXT, time_ms BIGINT, actor_sub TEXT, action TEXT,
                 outcome TEXT, http_status INT, request_id TEXT, route TEXT, detail TEXT, prev_hash TEXT, hash TEXT);
CREATE TABLE unchained (seq BIGINT PRIMARY KEY);
CREATE TABLE head (id INT PRIMARY KEY, seq BIGINT, hash TEXT);
INSERT INTO head VALUES (1, 0, repeat('0', 64));
CREATE TABLE objects (hash TEXT PRIMARY KEY, content TEXT);
CREATE TABLE commits (id TEXT PRIMARY KEY, tree TEXT, message TEXT, time_ms BIGINT);
CREATE TABLE changes (commit_id TEXT, resource TEXT, new_hash TEXT, PRIMARY KEY (commit_id, resource));
CREATE TABLE branches (name TEXT PRIMARY KEY, head TEXT);
INSERT INTO branches SELECT 'b' || i, 'root' FROM generate_series(1, 64) i;
SQL
cat >"$tmp/event.sql" <<'SQL'
INSERT INTO ev (event_id, time_ms, actor_sub, action, outcome, http_status, request_id, route, detail, prev_hash, hash) VALUES (md5(random()::text), 1, 'vic', 'authz.denied', 'denied', 403, md5(random()::text), '/api/v1/schemas/{branch}/{kind}', '{"reason":"forbidden"}', repeat('a', 64), repeat('b', 64));
SQL
# A one-resource commit's statements, on the client's own branch.
commit_sql() {
  cat <<'SQL'
BEGIN;
SELECT head FROM branches WHERE name = 'b' || :client_id FOR UPDATE;
INSERT INTO objects VALUES (md5(random()::text) || 'r', repeat('x', 300)) ON CONFLICT DO NOTHING;
INSERT INTO objects VALUES (md5(random()::text) || 't', repeat('y', 200)) ON CONFLICT DO NOTHING;
INSERT INTO objects VALUES (md5(random()::text) || 'k', repeat('z', 100)) ON CONFLICT DO NOTHING;
\set c random(1, 1000000000)
INSERT INTO commits VALUES (md5(:c::text || random()::text), 't', 'm', 1);
INSERT INTO changes VALUES (md5(:c::text || random()::text), 'shared-properties/X', 'h');
UPDATE branches SET head = md5(random()::text) WHERE name = 'b' || :client_id;
SQL
  if [ "$1" = audit ]; then
    cat <<'SQL'
WITH e AS (INSERT INTO ev (event_id, time_ms, actor_sub, action, outcome, http_status, request_id, route, detail) VALUES (md5(random()::text), 1, 'dev', 'shared_property.create', 'success', 201, md5(random()::text), '/api/v1/schemas/{branch}/{kind}', '{"operations":1}') RETURNING seq) INSERT INTO unchained (seq) SELECT seq FROM e;
SQL
  elif [ "$1" = head ]; then
    cat <<'SQL'
SELECT seq, hash FROM head WHERE id = 1 FOR UPDATE;
INSERT INTO ev (event_id, time_ms, actor_sub, action, outcome, http_status, request_id, route, detail, prev_hash, hash) VALUES (md5(random()::text), 1, 'dev', 'shared_property.create', 'success', 201, md5(random()::text), '/api/v1/schemas/{branch}/{kind}', '{"operations":1}', repeat('a', 64), repeat('b', 64));
UPDATE head SET seq = seq + 1, hash = md5(random()::text) WHERE id = 1;
SQL
  fi
  echo "COMMIT;"
}
commit_sql plain >"$tmp/commit_plain.sql"
commit_sql audit >"$tmp/commit_audit.sql"
commit_sql head >"$tmp/commit_head.sql"
pgb() { # script clients -> tps
  pgbench -n -M extended -f "$tmp/$1" -c "$2" -j 2 -T "$PGB_SECS" "$base" 2>&1 | awk '/^tps/ { print int($3) }'
}
ev64=$(pgb event.sql 64)
echo "pgbench single-row INSERT, autocommit, 64 clients: $ev64 tps"
cp1=$(pgb commit_plain.sql 1); ca1=$(pgb commit_audit.sql 1); ch1=$(pgb commit_head.sql 1)
cp16=$(pgb commit_plain.sql 16); ca16=$(pgb commit_audit.sql 16); ch16=$(pgb commit_head.sql 16)
echo "pgbench commit-shaped transaction, 1 client:   without audit $cp1 tps, with audit $ca1 tps ($(ratio "$ca1" "$cp1") x);" \
     "chained at insert (versions 4-7) $ch1 tps ($(ratio "$ch1" "$cp1") x)"
echo "pgbench commit-shaped transaction, 16 clients: without audit $cp16 tps, with audit $ca16 tps ($(ratio "$ca16" "$cp16") x);" \
     "chained at insert (versions 4-7) $ch16 tps ($(ratio "$ch16" "$cp16") x)"

run_backend() { # name database-url workers
  name=$1 url=$2 workers=$3 port=$(free_port)
  secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
  akey=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
  DATABASE_URL=$url JWT_SECRET=$secret OMS_AUDIT_KEY=$akey OMS_LISTEN=127.0.0.1:$port OMS_LOG_LEVEL=warn \
    OMS_WORKERS=$workers "$OMS_BIN" serve >"$tmp/server-$name.log" 2>&1 &
  server_pid=$!
  i=0
  until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 200 ] && { cat "$tmp/server-$name.log" >&2; exit 1; }
    sleep 0.05
  done
  vt=$(DATABASE_URL=$url JWT_SECRET=$secret "$OMS_BIN" token --sub vic --roles viewer --ttl 1h)
  dt=$(DATABASE_URL=$url JWT_SECRET=$secret "$OMS_BIN" token --sub bench --roles developer --ttl 1h)
  for b in $(seq 0 15); do
    curl -fs -o /dev/null -X POST -H "Authorization: Bearer $dt" -H 'X-Issue-ID: BENCH-1' \
      -H 'Content-Type: application/json' -d "{\"name\":\"ab-$b\",\"from\":\"main\"}" "http://127.0.0.1:$port/api/v1/branches"
  done
  label="$name, OMS_WORKERS=$workers"
  for c in 16 64; do
    out=$("$tmp/audit_client" deny "$port" "$vt" "$SECS" "$c")
    echo "$label: durable denials, $c clients: $out"
    [ "$c" = 64 ] && [ "$name" = PostgreSQL ] &&
      echo "$label: denials/s = $(ratio "$(field "$out" per_s)" "$ev64") x pgbench single-row inserts (64 clients)"
  done
  one=$("$tmp/audit_client" write "$port" "$dt" "$SECS" 1 ab-0)
  many=$("$tmp/audit_client" write "$port" "$dt" "$SECS" 16 ab-)
  echo "$label: one-resource commits, 1 client:  $one"
  echo "$label: one-resource commits, 16 clients (own branch each): $many"
  if [ "$name" = PostgreSQL ]; then
    echo "$label: commits/s (16 clients) = $(ratio "$(field "$many" per_s)" "$ca16") x the pgbench commit-shaped" \
         "transaction with audit, $(ratio "$(field "$many" per_s)" "$cp16") x without"
  fi
  # the log stays verifiable under load
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  DATABASE_URL=$url OMS_AUDIT_KEY=$akey "$OMS_BIN" audit verify | sed "s/^/$label: /"
  chain_stats "$url" | sed "s/^/$label: /"
}

# How the chain came out: positions where the chain order differs from seq
# order (events whose transactions committed late), and how long events
# waited between their insert and the checkpoint that sealed them (the
# window in which an event is durable but not yet chained).
CHAIN_STATS_SQL="SELECT (SELECT count(*) FROM audit_chain a JOIN audit_chain b ON b.pos = a.pos + 1
  WHERE b.event_seq < a.event_seq), count(*), avg(lag), max(lag) FROM (SELECT (SELECT time_ms FROM
  audit_checkpoints k WHERE k.upto_seq >= c.pos ORDER BY k.upto_seq LIMIT 1) - e.time_ms AS lag
  FROM audit_chain c JOIN audit_events e ON e.seq = c.event_seq) x"
chain_stats() { # database-url
  case "$1" in
  sqlite:*) python3 -c 'import sqlite3,sys; print("|".join(str(v) for v in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()))' \
              "${1#sqlite:}" "$CHAIN_STATS_SQL" ;;
  *) psql "$1" -q -X -A -t -c "$CHAIN_STATS_SQL" ;;
  esac | awk -F'|' '{ printf "chain: %d of %d positions hold an event with a lower seq than the one before;" \
                      " insert to sealed: mean %.0f ms, max %d ms\n", $1, $2, $3, $4 }'
}

for w in ${AUDIT_BENCH_WORKERS:-0 8 16 32}; do
  psql "$OMS_PG_URL" -q -X -c "DROP DATABASE IF EXISTS $db1 WITH (FORCE)" -c "CREATE DATABASE $db1" >/dev/null
  run_backend PostgreSQL "${OMS_PG_URL%/*}/$db1" "$w"
  rm -f "$tmp"/oms.db*
  run_backend SQLite "sqlite:$tmp/oms.db" "$w"
done
