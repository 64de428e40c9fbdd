#!/bin/sh
# Authenticated GET of one object type (SPEC §12), on SQLite and PostgreSQL,
# beside nginx serving a static file of the same size, measured with wrk in
# the same run. Prints req/s, p50/p99 and the ratio to nginx. The bench
# principal has a rate-limit override far above what wrk can send (limits
# on, never refusing: every request pays for the decision and the fields);
# a second SQLite server runs with OMS_RATE_LIMIT_ENABLED=0, and wrk runs
# alternate between the two (ROUNDS, default 3) for the cost of the limits
# (docs/BENCHMARKS.md).
#   bench/http_bench.sh            (OMS_BIN, OMS_PG_URL from scripts/run-bench.sh)
set -eu
OMS_BIN=${OMS_BIN:-build/rel/oms}
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
work=$(mktemp -d /tmp/oms-httpbench.XXXXXX)
chmod 755 "$work"
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  for p in ${oms_pids:-}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
oms_pids=""

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_wrk() { # url, header
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "$2" "$1" > "$work/wrk.out" 2>&1
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  p50=$(awk '$1=="50%" {print $2}' "$work/wrk.out")
  p99=$(awk '$1=="99%" {print $2}' "$work/wrk.out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
  echo "$rps $p50 $p99 ${non2xx:-0}"
}

export JWT_SECRET
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
export OMS_AUDIT_KEY
OMS_AUDIT_KEY=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')

# Starts `oms serve` on a fresh database holding one object type; sets
# started_pid, started_url and auth. Not in a command substitution: the
# server would hold its output open.
start_oms() { # database url, settings (NAME=VALUE ...)
  db=$1
  shift
  port=$(free_port)
  env OMS_LISTEN=127.0.0.1:$port DATABASE_URL="$db" OMS_LOG_LEVEL=warn \
    OMS_RATE_LIMIT_OVERRIDES="bench=read:1000000000/s:1000000000,write:1000/s:1000" "$@" \
    "$OMS_BIN" serve >/dev/null 2>>"$work/oms.log" &
  started_pid=$!
  oms_pids="$oms_pids $started_pid"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  token=$("$OMS_BIN" token --sub bench --roles admin --ttl 1h)
  auth="Authorization: Bearer $token"
  curl -sf -X POST -H "$auth" -H 'Content-Type: application/json' -H 'X-Issue-ID: OMS-1' \
    -d '{"name":"bench"}' "http://127.0.0.1:$port/api/v1/branches" >"$work/setup.log" || { cat "$work/setup.log" "$work/oms.log" >&2; exit 1; }
  curl -sf -X POST -H "$auth" -H 'Content-Type: application/json' -H 'X-Issue-ID: OMS-1' \
    -d '{"api_name":"Customer","display_name":"Customer","description":"A customer of the company.","status":"active","properties":[{"api_name":"id","type":"string","required":true},{"api_name":"name","type":"string"},{"api_name":"email","type":"string"},{"api_name":"created","type":"timestamp"},{"api_name":"score","type":"double"}],"primary_key":"id"}' \
    "http://127.0.0.1:$port/api/v1/schemas/bench/object-types" >/dev/null
  started_url="http://127.0.0.1:$port/api/v1/schemas/bench/object-types/Customer"
  curl -sf -H "$auth" "$started_url" > "$work/body.json"
}

stop_oms() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }

# CPU time (user + system, clock ticks) a process has used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run_wrk, plus the server's CPU time per answered request in microseconds:
# on a machine shared with other work, throughput moves with the others'
# load, the server's own CPU per request much less.
run_wrk_cpu() { # url, header, server pid
  c0=$(cpu_ticks "$3")
  r=$(run_wrk "$1" "$2")
  c1=$(cpu_ticks "$3")
  n=$(awk '/requests in/ { print $1 }' "$work/wrk.out")
  echo "$r $(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN { printf "%.2f", c / hz * 1e6 / n }')"
}

# The faster of two result lines (name req/s p50 p99 non-2xx).
faster() { echo "$1
$2" | awk 'NF && (best == "" || $2 > b) { best = $0; b = $2 } END { print best }'; }

# SQLite with the limits on (as deployed) and off, side by side: both
# servers run, and ROUNDS wrk runs of each, alternating which goes first,
# keep the best, so the rest of the machine's load falls on both alike.
# Each line also gets the server's CPU time per request (last column).
ROUNDS=${ROUNDS:-3}
start_oms "sqlite:$work/oms.db"
on_pid=$started_pid on_url=$started_url
start_oms "sqlite:$work/oms-off.db" OMS_RATE_LIMIT_ENABLED=0
off_pid=$started_pid off_url=$started_url
sqlite_line="" sqlite_off_line="" on_cpu="" off_cpu=""
for round in $(seq "$ROUNDS"); do
  for which in on off; do
    [ $((round % 2)) -eq 0 ] && which=$([ "$which" = on ] && echo off || echo on)
    if [ "$which" = on ]; then
      l="SQLite $(run_wrk_cpu "$on_url" "$auth" "$on_pid")"
      sqlite_line=$(faster "$sqlite_line" "$l")
      on_cpu="$on_cpu $(echo "$l" | awk '{ print $6 }')"
    else
      l="SQLite-nolim $(run_wrk_cpu "$off_url" "$auth" "$off_pid")"
      sqlite_off_line=$(faster "$sqlite_off_line" "$l")
      off_cpu="$off_cpu $(echo "$l" | awk '{ print $6 }')"
    fi
  done
done
stop_oms "$on_pid"
stop_oms "$off_pid"

# PostgreSQL twice: as the only writer of its database (it holds the
# sole-writer lease and answers repeat reads from memory), and with the
# lease off, as each instance of several is (a freshness read per request,
# shared by the requests that arrive together). docs/storage.md.
pg_line="" pg_shared_line=""
if [ -n "${OMS_PG_URL:-}" ]; then
  for mode in sole shared; do
    dbname="oms_httpbench_$$_$mode"
    psql "$OMS_PG_URL" -qc "CREATE DATABASE $dbname" >/dev/null
    if [ "$mode" = sole ]; then
      start_oms "${OMS_PG_URL%/*}/$dbname"
      for _ in $(seq 50); do
        curl -sf -H "$auth" "${started_url%%/api/*}/metrics" | grep -q '^oms_db_sole_writer 1' && break
        sleep 0.1
      done
      pg_line="PostgreSQL $(run_wrk "$started_url" "$auth")"
    else
      start_oms "${OMS_PG_URL%/*}/$dbname" OMS_PG_SOLE_WRITER=0
      pg_shared_line="PG-shared $(run_wrk "$started_url" "$auth")"
    fi
    stop_oms "$started_pid"
    psql "$OMS_PG_URL" -qc "DROP DATABASE $dbname WITH (FORCE)" >/dev/null
  done
fi

# nginx serving a file of the same size as the OMS response
nginx_port=$(free_port)
mkdir -p "$work/www" "$work/tmp"
cat > "$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  server { listen 127.0.0.1:$nginx_port; root $work/www; location / { default_type application/json; } }
}
CONF

cp "$work/body.json" "$work/www/customer.json"
chmod 644 "$work/www/customer.json"
nginx_line=""
if command -v nginx >/dev/null; then
  nginx -c "$work/nginx.conf" -g 'daemon on;' 2>/dev/null || nginx -c "$work/nginx.conf"
  sleep 0.3
  nginx_line="nginx $(run_wrk "http://127.0.0.1:$nginx_port/customer.json" "X-Bench: 1")"
else
  echo "nginx is not installed: no baseline, ratios to nginx left out" >&2
fi
size=$(wc -c < "$work/body.json")

echo "authenticated GET of one object type ($size bytes), wrk -t2 -c$CONNS -d${DURATION}s, same machine (SQLite: best of $ROUNDS):"
printf '%-12s %10s %9s %9s %9s %8s\n' server req/s p50 p99 non-2xx "x nginx"
nginx_rps=$(echo "$nginx_line" | awk '{print $2}')
for line in "$nginx_line" "$sqlite_line" "$sqlite_off_line" "$pg_line" "$pg_shared_line"; do
  [ -n "$line" ] || continue
  echo "$line" | awk -v n="${nginx_rps:-0}" '{ printf "%-12s %10s %9s %9s %9s %8s\n", $1, $2, $3, $4, $5, (n > 0 ? sprintf("%.2f", $2 / n) : "-") }'
done
echo "$sqlite_line" "$sqlite_off_line" | awk '{ printf "SQLite, rate limits on / off: throughput %.3f (best of each)\n", $2 / $8 }'
# server CPU per request: the median of the rounds
median() { echo "$@" | tr ' ' '\n' | sort -n | awk 'NF { a[n++] = $1 } END { print a[int((n - 1) / 2)] }'; }
on_med=$(median $on_cpu)
off_med=$(median $off_cpu)
awk -v a="$on_med" -v b="$off_med" 'BEGIN { printf "SQLite, server CPU per request: on %s us, off %s us (median of rounds), on / off %.3f\n", a, b, a / b }'
