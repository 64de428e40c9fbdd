#!/bin/sh
# Issue #21: database round trips per operation, and GET / lock pair /
# commit latency, between oms binaries, interleaved round by round (a
# shared machine's drift hits every binary alike); medians per binary.
#
#   bench/pg_roundtrips.sh                      (make bench: OMS_BIN only, 1 round)
#   OMS_BINS="old/oms build/rel/oms" ROUNDS=5 bench/pg_roundtrips.sh
#
# Per round and binary, on a fresh PostgreSQL database (and SQLite for the
# locks): round trips per GET, per one-resource commit, per lock acquire and
# release, read from oms_db_roundtrips_total{source="requests"} in /metrics (one
# client; the audit chainer's and reapers' trips are counted apart); wrk GET of one
# object type (-c32, DURATION s) with req/s and p99; the lock pair over HTTP
# (bench/locks_client.c, one client) p50/p99 on both backends; commits/s of
# 16 clients on their own branches (bench/audit_client.c). Baselines in the
# same run: nginx serving a file of the same size, pgbench's
# pg_advisory_xact_lock round trip.
set -eu
OMS_BINS=${OMS_BINS:-${OMS_BIN:-build/rel/oms}}
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-5}
PAIRS=${PAIRS:-500}
: "${OMS_PG_URL:?OMS_PG_URL must point at a PostgreSQL server (scripts/pg-throwaway.sh)}"
tmp=$(mktemp -d /tmp/oms-pg-rt.XXXXXX)
chmod 755 "$tmp"
pid="" db="" 
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  [ -n "$db" ] && psql "$OMS_PG_URL" -q -X -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
cc -O2 -Wall -Wextra -o "$tmp/locks_client" bench/locks_client.c -lpthread
cc -O2 -Wall -Wextra -o "$tmp/audit_client" bench/audit_client.c -lpthread
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
akey=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')

start() { # binary database-url
  port=$(free_port)
  DATABASE_URL=$2 JWT_SECRET=$secret OMS_AUDIT_KEY=$akey OMS_LISTEN=127.0.0.1:$port OMS_LOG_LEVEL=warn \
    OMS_RATE_LIMIT_ENABLED=0 "$1" serve >"$tmp/server.log" 2>&1 &
  pid=$!
  i=0
  until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 200 ] && { cat "$tmp/server.log" >&2; exit 1; }
    sleep 0.05
  done
  token=$(DATABASE_URL=$2 JWT_SECRET=$secret "$1" token --sub bench --roles admin --ttl 1h)
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

# round trips per operation (python: one keep-alive connection)
count_trips() { # -> "get commit acquire release"
  python3 - "$port" "$token" <<'PY'
import http.client, json, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", port)
H = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "X-Issue-ID": "BENCH-21"}
def req(m, p, body=None):
    c.request(m, p, body=json.dumps(body) if body is not None else None, headers=H)
    r = c.getresponse(); d = r.read(); return r.status, d
def trips():
    s, d = req("GET", "/metrics")
    for line in d.decode().splitlines():
        if line.startswith('oms_db_roundtrips_total{source="requests"} '):
            return float(line.split()[1])
    return None  # a build before the counter
assert req("POST", "/api/v1/branches", {"name": "rt", "from": "main"})[0] == 201
sp = "/api/v1/schemas/rt/shared-properties"
assert req("POST", sp, {"api_name": "Seed", "type": "string"})[0] == 201
if trips() is None:
    print("nan nan nan nan"); raise SystemExit(0)
idle_per_s = 0  # background threads are counted apart
m0 = trips(); mcost = trips() - m0  # what reading /metrics itself costs
def per(n, fn):
    t0, w0 = trips(), time.time()
    for i in range(n): fn(i)
    d = trips() - t0 - mcost - idle_per_s * (time.time() - w0)
    return d / n
N = 100
g = per(N, lambda i: req("GET", sp + "/Seed"))
cm = per(N, lambda i: req("POST", sp, {"api_name": f"P{i}", "type": "string"}))
ids = []
def acq(i):
    s, d = req("POST", "/api/v1/locks", {"branch": "rt", "resource_type": "object-types", "resource_id": f"R{i}", "reason": "rt", "ttl_seconds": 60})
    assert s == 201, (s, d); ids.append(json.loads(d)["id"])
a = per(N, acq)
r = per(N, lambda i: req("DELETE", "/api/v1/locks/" + ids[i]))
print(f"{g:.2f} {cm:.2f} {a:.2f} {r:.2f}")
PY
}

wrk_get() { # -> "req/s p99"
  wrk -t2 -c32 -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "$1" >"$tmp/wrk.out" 2>&1
  echo "$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.out") $(awk '$1=="99%" {print $2}' "$tmp/wrk.out")"
}

# One round of one binary; a step that fails (a refusal under load, a
# server that did not start) drops the round with a message, not the run.
one_round() { # round binary
  r=$1 bin=$2
  db="oms_rt_$$"
  psql "$OMS_PG_URL" -q -X -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null 2>&1 || return 1
  url="${OMS_PG_URL%/*}/$db"
  start "$bin" "$url"
  trips=$(count_trips) || return 1
  get=$(wrk_get "http://127.0.0.1:$port/api/v1/schemas/rt/shared-properties/Seed") || return 1
  curl -fs -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/schemas/rt/shared-properties/Seed" >"$tmp/body.json" || return 1
  lk=$("$tmp/locks_client" "$port" "$token" rt "$PAIRS" 50 1) || return 1
  for b in $(seq 0 15); do
    curl -fs -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'X-Issue-ID: BENCH-1' \
      -H 'Content-Type: application/json' -d "{\"name\":\"ab-$b\",\"from\":\"main\"}" "http://127.0.0.1:$port/api/v1/branches" || return 1
  done
  cm=$("$tmp/audit_client" write "$port" "$token" 4 16 ab-) || return 1
  stop
  psql "$OMS_PG_URL" -q -X -c "DROP DATABASE $db WITH (FORCE)" >/dev/null; db=""
  n_sqlite=$((n_sqlite + 1))
  start "$bin" "sqlite:$tmp/oms-$n_sqlite.db"
  curl -fs -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name":"rt","from":"main"}' "http://127.0.0.1:$port/api/v1/branches" || return 1
  lks=$("$tmp/locks_client" "$port" "$token" rt "$PAIRS" 50 1) || return 1
  stop
  echo "$bin|$trips|$get|$lk|$cm|$lks" >>"$tmp/results"
}

n_sqlite=0
for r in $(seq 1 "$ROUNDS"); do
  for bin in $OMS_BINS; do
    if ! one_round "$r" "$bin"; then
      echo "round $r of $bin failed: dropped" >&2
      tail -3 "$tmp/server.log" >&2
      [ -n "$pid" ] && stop
    fi
  done
done

# baselines, same run
nginx_rps=""
if command -v nginx >/dev/null; then
  nport=$(free_port)
  mkdir -p "$tmp/www" "$tmp/ntmp"
  cp "$tmp/body.json" "$tmp/www/body.json"; chmod 644 "$tmp/www/body.json"
  cat >"$tmp/nginx.conf" <<CONF
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/ntmp; proxy_temp_path $tmp/ntmp; fastcgi_temp_path $tmp/ntmp;
  uwsgi_temp_path $tmp/ntmp; scgi_temp_path $tmp/ntmp;
  server { listen 127.0.0.1:$nport; root $tmp/www; location / { default_type application/json; } }
}
CONF
  nginx -c "$tmp/nginx.conf" 2>/dev/null
  sleep 0.3
  nginx_rps=$(wrk_get "http://127.0.0.1:$nport/body.json" | awk '{print $1}')
  nginx_p99=$(awk '$1=="99%" {print $2}' "$tmp/wrk.out")
  kill "$(cat "$tmp/nginx.pid")"; rm -f "$tmp/nginx.pid"
fi
db="oms_rt_pgb_$$"
psql "$OMS_PG_URL" -q -X -c "CREATE DATABASE $db" >/dev/null
echo "SELECT pg_advisory_xact_lock(5714314956222124115);" >"$tmp/adv.sql"
(cd "$tmp" && pgbench -n -M extended -f adv.sql -c 1 -j 1 -T 3 -l --log-prefix=adv "${OMS_PG_URL%/*}/$db" >adv.out 2>&1)
adv_p50=$(cat "$tmp"/adv.[0-9]* | awk '{print $3}' | sort -n | awk '{v[NR]=$1} END {print v[int(NR/2)] + 0}')
# no per-transaction log (it happened under load): pgbench's average instead
[ "${adv_p50:-0}" -gt 0 ] 2>/dev/null || adv_p50=$(awk '/latency average/ { print int($4 * 1000) }' "$tmp/adv.out")
psql "$OMS_PG_URL" -q -X -c "DROP DATABASE $db WITH (FORCE)" >/dev/null; db=""

python3 - "$tmp/results" "${nginx_rps:-0}" "${nginx_p99:--}" "$adv_p50" <<'PY'
import collections, json, statistics, sys
res = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    b, trips, get, lk, cm, lks = line.rstrip("\n").split("|")
    if b not in order: order.append(b)
    g, c, a, r = map(float, trips.split())
    rps, p99 = get.split()
    p99ms = float(p99[:-2]) if p99.endswith("ms") else float(p99[:-2]) / 1000 if p99.endswith("us") else float(p99[:-1]) * 1000
    lk, lks, cm = json.loads(lk), json.loads(lks), json.loads(cm)
    res[b].append(dict(g=g, c=c, a=a, r=r, rps=float(rps), p99=p99ms, lp50=lk["pair"]["p50_us"], lp99=lk["pair"]["p99_us"],
                       sp50=lks["pair"]["p50_us"], sp99=lks["pair"]["p99_us"], cps=cm["per_s"]))
nginx = float(sys.argv[2]); adv = float(sys.argv[4] or 0) or float("nan")
print(f"baselines: nginx {nginx:.0f} req/s (p99 {sys.argv[3]}), pgbench pg_advisory_xact_lock p50 {adv:.0f} us")
med = lambda v: statistics.median(v)
for b in order:
    rs = res[b]
    m = {k: med([x[k] for x in rs]) for k in rs[0]}
    ratio = f"{m['rps'] / nginx:.2f} x nginx" if nginx else "no nginx"
    print(f"{b} ({len(rs)} rounds, medians):")
    print(f"  round trips: GET {m['g']:.2f}, commit {m['c']:.2f}, lock acquire {m['a']:.2f}, release {m['r']:.2f}"
          + (" (this build has no oms_db_roundtrips_total)" if m['g'] != m['g'] else ""))
    print(f"  PostgreSQL GET: {m['rps']:.0f} req/s ({ratio}), p99 {m['p99']:.2f} ms (rounds: {[round(x['p99'], 2) for x in rs]})")
    print(f"  lock pair PostgreSQL: p50 {m['lp50']:.0f} us, p99 {m['lp99']:.0f} us ({m['lp50'] / adv:.1f} x pgbench advisory lock);"
          f" SQLite: p50 {m['sp50']:.0f} us, p99 {m['sp99']:.0f} us")
    print(f"  commits/s, 16 clients, PostgreSQL: {m['cps']:.0f} (rounds: {[x['cps'] for x in rs]})")
PY
