#!/bin/sh
# Long variants of tests/faults and tests/security on SQLite and a throwaway
# PostgreSQL (OMS_FAULTS_LONG=1 set by `make faults`). Ends "N passed, N failed".
set -u
log=$(mktemp /tmp/oms-faults.XXXXXX)
status=0
for m in faults security; do
  for f in tests/$m/test_*.py; do
    python3 tests/api/run.py sqlite "$(basename "$f" .py)" 2>&1 | tee -a "$log" || status=1
  done
done
pgenv=$(scripts/pg-throwaway.sh start) || { echo "cannot start PostgreSQL"; exit 1; }
eval "$pgenv"
export OMS_PG_URL
for m in faults security; do
  for f in tests/$m/test_*.py; do
    python3 tests/api/run.py pg "$(basename "$f" .py)" 2>&1 | tee -a "$log" || status=1
  done
done
scripts/pg-throwaway.sh stop "$OMS_PG_DIR"
grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed' "$log" | awk '
  { p += $2; f += $4 } END { printf "\n%d passed, %d failed\n", p, f; if (f > 0) exit 1 }' || status=1
rm -f "$log"
exit $status
