#!/bin/sh
# `make soak`: the mixed soak of bench/soak.py (issue #21) for SOAK_MINUTES
# minutes (default 20) on each backend of SOAK_BACKENDS (default "sqlite pg"),
# each on a fresh database (SQLite file; a throwaway PostgreSQL server,
# scripts/pg-throwaway.sh). Exits non-zero when a backend fails its verdict,
# has an error, or ends with an audit chain that does not verify.
# `make test` runs its 30-second version (tests/api/test_soak_short.py).
set -u
OMS_BIN=${OMS_BIN:-build/rel/oms}
export OMS_BIN
MINUTES=${SOAK_MINUTES:-20}
BACKENDS=${SOAK_BACKENDS:-sqlite pg}
status=0
pgdir=""
for b in $BACKENDS; do
  case "$b" in
  sqlite) ;;
  pg)
    if [ -z "${OMS_PG_URL:-}" ]; then
      pgenv=$(scripts/pg-throwaway.sh start) || { echo "cannot start PostgreSQL" >&2; exit 1; }
      eval "$pgenv"
      export OMS_PG_URL
      pgdir=$OMS_PG_DIR
    fi
    ;;
  *) echo "SOAK_BACKENDS: unknown backend $b (sqlite, pg)" >&2; exit 2 ;;
  esac
  echo "== soak on $b: $MINUTES min ($(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg))"
  python3 bench/soak.py "$b" "$MINUTES" || status=1
  # the throwaway server stops with its soak: its checkpoints and
  # autovacuum of gigabytes must not run beside the next backend's minutes
  if [ -n "$pgdir" ]; then
    scripts/pg-throwaway.sh stop "$pgdir"
    pgdir=""
    unset OMS_PG_URL
  fi
done
exit $status
