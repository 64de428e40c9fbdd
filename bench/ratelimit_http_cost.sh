#!/bin/sh
# What the rate limits cost an authenticated GET, counted in instructions
# rather than time: on a shared 2-core machine throughput and CPU time per
# request move 10-20 % between two identical servers, instruction counts
# do not. The server runs under callgrind (one worker, limits on, then
# off), collecting only inside libmicrohttpd's request callbacks (our
# pipeline, handler, response; not the kernel or the library's own
# parsing), over N requests on one kept-alive connection.
#
#   bench/ratelimit_http_cost.sh [N]        (part of `make bench`; needs valgrind)
set -eu
OMS_BIN=${OMS_BIN:-build/rel/oms}
N=${1:-5000}
command -v valgrind >/dev/null || { echo "valgrind is not installed: skipped"; exit 0; }
work=$(mktemp -d /tmp/oms-rlcost.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
export JWT_SECRET
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cat > "$work/drive.py" <<'PY'
import http.client, sys
port, n, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
ok = 0
for _ in range(n):
    c.request("GET", "/api/v1/schemas/bench/object-types/Customer", headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    r.read()
    ok += r.status == 200
sys.exit(0 if ok == n else 1)
PY
for mode in on off; do
  port=$(free_port)
  OMS_LISTEN=127.0.0.1:$port DATABASE_URL="sqlite:$work/$mode.db" OMS_LOG_LEVEL=warn OMS_WORKERS=1 \
    OMS_RATE_LIMIT_ENABLED=$([ $mode = on ] && echo 1 || echo 0) \
    OMS_RATE_LIMIT_OVERRIDES="bench=read:1000000000/s:1000000000,write:1000/s:1000" \
    valgrind --tool=callgrind --toggle-collect=on_uri --toggle-collect=on_request --toggle-collect=on_completed \
    --callgrind-out-file="$work/cg.$mode" "$OMS_BIN" serve >/dev/null 2>"$work/log.$mode" &
  pid=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.2; done
  token=$("$OMS_BIN" token --sub bench --roles admin --ttl 1h)
  auth="Authorization: Bearer $token"
  curl -sf -X POST -H "$auth" -H 'Content-Type: application/json' -H 'X-Issue-ID: OMS-1' \
    -d '{"name":"bench"}' "http://127.0.0.1:$port/api/v1/branches" >/dev/null
  curl -sf -X POST -H "$auth" -H 'Content-Type: application/json' -H 'X-Issue-ID: OMS-1' \
    -d '{"api_name":"Customer","display_name":"Customer","description":"A customer of the company.","status":"active","properties":[{"api_name":"id","type":"string","required":true},{"api_name":"name","type":"string"},{"api_name":"email","type":"string"},{"api_name":"created","type":"timestamp"},{"api_name":"score","type":"double"}],"primary_key":"id"}' \
    "http://127.0.0.1:$port/api/v1/schemas/bench/object-types" >/dev/null
  python3 "$work/drive.py" "$port" 20 "$token"     # warm up
  callgrind_control -z "$pid" >/dev/null 2>&1
  python3 "$work/drive.py" "$port" "$N" "$token"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
on=$(awk '/^summary:/ { print $2 }' "$work"/cg.on.*)
off=$(awk '/^summary:/ { print $2 }' "$work"/cg.off.*)
awk -v a="$on" -v b="$off" -v n="$N" 'BEGIN {
  printf "authenticated GET, instructions per request in the request callbacks (callgrind, %d requests):\n", n
  printf "  rate limits on  %8.0f\n  rate limits off %8.0f\n  on / off %.3f (+%.0f instructions)\n", a / n, b / n, a / b, (a - b) / n }'
