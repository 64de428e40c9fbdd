#!/bin/sh
# Same-session comparison of one-resource commits over HTTP on PostgreSQL
# (16 clients, one branch each) between oms binaries and OMS_WORKERS values,
# interleaved round by round so that a shared machine's drift hits every
# variant alike; prints each variant's runs and median. Not part of
# `make bench` (not executable): run it by hand, e.g. to compare a build
# before and after a change (docs/BENCHMARKS.md, audit section):
#   eval "$(scripts/pg-throwaway.sh start)"; export OMS_PG_URL
#   sh bench/commit_compare.sh "old/oms build/rel/oms" "2 8 16" [ROUNDS] [SECONDS]
set -eu
BINS=$1 WS=$2 ROUNDS=${3:-5} SECS=${4:-4}
: "${OMS_PG_URL:?OMS_PG_URL must point at a PostgreSQL server (scripts/pg-throwaway.sh)}"
tmp=$(mktemp -d /tmp/oms-commit-compare.XXXXXX)
pid="" db=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  [ -n "$db" ] && psql "$OMS_PG_URL" -q -X -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
cc -O2 -Wall -Wextra -o "$tmp/client" bench/audit_client.c -lpthread
for r in $(seq 1 "$ROUNDS"); do
  for w in $WS; do
    for bin in $BINS; do
      db="oms_cmp_$$"
      psql "$OMS_PG_URL" -q -X -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1
      url="${OMS_PG_URL%/*}/$db"
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
      secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
      akey=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
      DATABASE_URL=$url JWT_SECRET=$secret OMS_AUDIT_KEY=$akey OMS_LISTEN=127.0.0.1:$port OMS_LOG_LEVEL=warn \
        OMS_WORKERS=$w "$bin" serve >"$tmp/server.log" 2>&1 &
      pid=$!
      i=0
      until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -gt 200 ] && { cat "$tmp/server.log" >&2; exit 1; }
        sleep 0.05
      done
      dt=$(DATABASE_URL=$url JWT_SECRET=$secret "$bin" token --sub bench --roles developer --ttl 1h)
      for b in $(seq 0 15); do
        curl -fs -o /dev/null -X POST -H "Authorization: Bearer $dt" -H 'X-Issue-ID: BENCH-1' \
          -H 'Content-Type: application/json' -d "{\"name\":\"ab-$b\",\"from\":\"main\"}" \
          "http://127.0.0.1:$port/api/v1/branches"
      done
      out=$("$tmp/client" write "$port" "$dt" "$SECS" 16 ab-)
      echo "$bin|$w|$out" >>"$tmp/results"
      kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
      psql "$OMS_PG_URL" -q -X -c "DROP DATABASE $db WITH (FORCE)" >/dev/null; db=""
    done
  done
done
python3 - "$tmp/results" <<'PY'
import collections, json, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    binary, workers, out = line.rstrip("\n").split("|", 2)
    runs[(binary, int(workers))].append(json.loads(out)["per_s"])
for (binary, workers), v in sorted(runs.items()):
    print(f"{binary}, OMS_WORKERS={workers}: commits/s {sorted(v)}, median {statistics.median(v):g}")
PY
