#!/bin/sh
# Authorization decision cost (SPEC §12: RBAC decision <= 1 us), RBAC alone
# and with compiled ACL policy sets, then the server's whole per-request
# authorization (ACL version check + decision) on SQLite and PostgreSQL,
# beside pgbench running the same version query against the same server.
#
# Run by `make bench` (scripts/run-bench.sh exports OMS_PG_URL). Alone:
#   make && bench/rbac_bench.sh        (SQLite only without OMS_PG_URL)
set -eu
BUILD=${BUILD:-build/rel}
LIB=$BUILD/liboms.a
[ -f "$LIB" ] || { echo "build $LIB first (make)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/oms-rbac-bench.XXXXXX)
dbname="oms_rbacbench_$$"
cleanup() {
  [ -n "${OMS_PG_URL:-}" ] && psql "$OMS_PG_URL" -q -X -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Isrc -I"$BUILD/gen" \
  -I/usr/include/postgresql -o "$tmp/rbac_bench" bench/rbac_bench.c "$LIB" \
  -lmicrohttpd -ljansson -lsqlite3 -lpq -lssl -lcrypto -lcurl -lpthread -lm

urls="sqlite:$tmp/data/oms.db"
if [ -n "${OMS_PG_URL:-}" ]; then
  psql "$OMS_PG_URL" -q -X -c "CREATE DATABASE $dbname" >/dev/null
  pgurl="${OMS_PG_URL%/*}/$dbname"
  urls="$urls $pgurl"
fi
"$tmp/rbac_bench" $urls

if [ -n "${OMS_PG_URL:-}" ] && command -v pgbench >/dev/null; then
  echo "SELECT version FROM acl_version WHERE id = 1;" >"$tmp/v.sql"
  tps=$(pgbench -n -M extended -f "$tmp/v.sql" -c 1 -j 1 -T 3 "$pgurl" 2>/dev/null | awk '/^tps/ { print $3 }')
  echo "pgbench baseline, same query, 1 client, extended protocol: $(python3 -c "print(round(1e9 / $tps))") ns per query ($tps tps)"
fi
