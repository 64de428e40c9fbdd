#!/bin/sh
# `make bench`: every benchmark, on both backends where it applies. Results
# are printed as ratios against baselines measured in the same run where the
# benchmark has one; docs/BENCHMARKS.md records them with this command.
# Among bench/*.sh: http_bench.sh (GET beside nginx, when nginx is installed:
# scripts/install-deps.sh), locks_bench.sh (lock pairs beside pgbench) and
# pg_roundtrips.sh (issue #21: round trips per GET, commit, lock acquire and
# release from /metrics; GET beside nginx, lock pairs on both backends beside
# pgbench's advisory lock; OMS_BINS="before/oms build/rel/oms" ROUNDS=5 to
# compare builds round by round).
set -u
OMS_BIN=${OMS_BIN:-build/rel/oms}
BUILD=${BUILD:-build/rel}
export OMS_BIN
status=0
pgenv=$(scripts/pg-throwaway.sh start) || { echo "cannot start PostgreSQL" >&2; exit 1; }
eval "$pgenv"
export OMS_PG_URL OMS_PG_PORT OMS_PG_DIR
for b in bench/*.sh; do
  [ -x "$b" ] || continue
  echo "== $b"
  "$b" || status=1
done
echo "== bench/ontology_memory.py (SQLite)"
python3 bench/ontology_memory.py sqlite 10000 || status=1
echo "== bench/ontology_memory.py (PostgreSQL)"
python3 bench/ontology_memory.py pg 10000 || status=1
echo "== bench/merge_bench.py (SQLite)"
python3 bench/merge_bench.py sqlite 10000 1000 || status=1
echo "== bench/merge_bench.py (PostgreSQL)"
python3 bench/merge_bench.py pg 10000 1000 || status=1
echo "== bench/search_bench.py (SQLite)"
python3 bench/search_bench.py sqlite 10000 || status=1
echo "== bench/search_bench.py (PostgreSQL)"
python3 bench/search_bench.py pg 10000 || status=1
echo "== bench/console_paint.py (SQLite, headless Chromium)"
python3 bench/console_paint.py 10000 || status=1
echo "== bench/backup_bench.py (SQLite source)"
python3 bench/backup_bench.py sqlite 10000 100000 || status=1
echo "== bench/backup_bench.py (PostgreSQL source)"
python3 bench/backup_bench.py pg 10000 100000 || status=1
echo "== bench/tree_storage_bench.py (tree bytes and database growth per commit at 10,000 types)"
python3 bench/tree_storage_bench.py "$OMS_BIN" "sqlite pg" 40 || status=1
echo "== bench/cold_diff.py (a diff of 100 changes in 10,000 types, snapshot cache empty)"
python3 bench/cold_diff.py "$OMS_BIN" "sqlite pg" || status=1
echo "== bench/branch_bench.py (the proposal flow's branch steps at 1,000 and 10,000 types)"
python3 bench/branch_bench.py sqlite 1000 10000 || status=1
python3 bench/branch_bench.py pg 1000 10000 || status=1
echo "== bench/cli_apply_bench.py (SQLite)"
python3 bench/cli_apply_bench.py sqlite 10000 || status=1
echo "== bench/cli_apply_bench.py (PostgreSQL)"
python3 bench/cli_apply_bench.py pg 10000 || status=1
scripts/pg-throwaway.sh stop "$OMS_PG_DIR"
exit $status
