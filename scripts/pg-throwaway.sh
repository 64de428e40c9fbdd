#!/bin/sh
# A throwaway PostgreSQL 15 server for tests and benchmarks: temporary data
# directory, free port, loopback only, run as the postgres user.
#   scripts/pg-throwaway.sh start      prints OMS_PG_DIR=... OMS_PG_PORT=... OMS_PG_URL=...
#   scripts/pg-throwaway.sh stop DIR   stops it and removes the directory
set -eu
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Checkpoints as docs/operations.md "PostgreSQL's checkpoints" advises for a
# server that takes writes: with the defaults (1 GB of WAL, 5 min) a steady
# write load checkpoints every minute or less, and the full-page images
# after each checkpoint bring the next one sooner (docs/BENCHMARKS.md
# round 35). OMS_PG_CHECKPOINTS="" starts one with PostgreSQL's defaults.
CHECKPOINTS=${OMS_PG_CHECKPOINTS-"-c max_wal_size=8GB -c checkpoint_timeout=15min -c wal_compression=lz4"}

# Shared buffers large enough for the soak's working set (docs/operations.md
# "PostgreSQL's memory"): 128 MB, PostgreSQL's default, left the hot
# indexes to the kernel's page cache, which a host's proactive reclaim of
# unmapped file pages empties (docs/BENCHMARKS.md round 37). Shared buffers
# are mapped memory, taken only as pages are used.
SHARED_BUFFERS=${OMS_PG_SHARED_BUFFERS:-2GB}

case "${1:-}" in
start)
  dir=$(mktemp -d /tmp/oms-pg.XXXXXX)
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
  as_pg "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2; exit 1; }
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=600 -c shared_buffers=$SHARED_BUFFERS $CHECKPOINTS" \
        start >/dev/null 2>&1; then
      echo "OMS_PG_DIR=$dir"
      echo "OMS_PG_PORT=$port"
      echo "OMS_PG_URL=postgresql://postgres@127.0.0.1:$port/postgres"
      exit 0
    fi
  done
  cat "$dir/server.log" >&2
  exit 1
  ;;
stop)
  dir=${2:?usage: pg-throwaway.sh stop DIR}
  case "$dir" in /tmp/oms-pg.*) ;; *) echo "refusing to remove $dir" >&2; exit 2 ;; esac
  as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start | stop DIR" >&2
  exit 2
  ;;
esac
