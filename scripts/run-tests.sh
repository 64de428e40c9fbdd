#!/bin/sh
# Runs every test: unit tests, fuzz-corpus replays and the SQL plan audit,
# then the API suite on SQLite and on a throwaway PostgreSQL. Ends with
# "N passed, N failed".
set -u
BUILD=${BUILD:-build/rel}
OMS_BIN=${OMS_BIN:-$BUILD/oms}
export OMS_BIN
log=$(mktemp /tmp/oms-test.XXXXXX)
status=0

run() { # name, command...
  "$@" 2>&1 | tee -a "$log"
  rc=$?
  [ $rc -ne 0 ] && status=1
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  "$t" 2>&1 | tee -a "$log" || status=1
done
for f in "$BUILD"/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f" | sed 's/^fuzz_//')
  "$f" "tests/fuzz/corpus/$name" 2>&1 | tee -a "$log" || status=1
done

# The SQL plan audit (python3 and its sqlite3 only), one test: fails on a
# statement of src/store/ that scans a table growing with history outside
# scripts/sql-plan-allow.txt, or on a stale entry there.
if plan=$(python3 scripts/sql-plan-audit.py --check 2>&1); then r="1 passed, 0 failed"; else r="0 passed, 1 failed"; status=1; fi
printf '%s\nsql-plan-audit: %s\n' "$plan" "$r" | tee -a "$log"

# The SQLite pass records every JSON response body; each must validate
# against openapi.json (tests/api/check_responses.py). The console's
# browser tests are tests/api/test_console.py (SQLite; SKIP on PostgreSQL).
responses=$(mktemp /tmp/oms-responses.XXXXXX)
OMS_RECORD_RESPONSES=$responses python3 tests/api/run.py sqlite 2>&1 | tee -a "$log"
[ "$(tail -n1 "$log" | grep -c ', 0 failed')" -eq 1 ] || status=1
python3 tests/api/check_responses.py "$responses" 2>&1 | tee -a "$log"
tail -n1 "$log" | grep -qE ', 0 failed|^SKIP' || status=1
rm -f "$responses"

pgenv=$(scripts/pg-throwaway.sh start) || { echo "cannot start PostgreSQL"; echo "pg: 0 passed, 1 failed" >>"$log"; status=1; pgenv=""; }
if [ -n "$pgenv" ]; then
  eval "$pgenv"
  export OMS_PG_URL
  # the unit tests with a PostgreSQL part (skipped above, without a server)
  for t in "$BUILD"/tests/test_db_batch "$BUILD"/tests/test_sole_writer "$BUILD"/tests/test_freshness_pg; do
    OMS_UNIT_PG_ONLY=1 "$t" 2>&1 | tee -a "$log" || status=1
  done
  python3 tests/api/run.py pg 2>&1 | tee -a "$log"
  [ "$(tail -n1 "$log" | grep -c ', 0 failed')" -eq 1 ] || status=1
  scripts/pg-throwaway.sh stop "$OMS_PG_DIR"
fi

# Sum every "X: N passed, M failed" line into the closing line.
grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed' "$log" | awk '
  { p += $2; f += $4 } END { printf "\n%d passed, %d failed\n", p, f; if (f > 0) exit 1 }' || status=1
rm -f "$log"
exit $status
