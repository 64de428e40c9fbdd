#!/bin/sh
# Commits and diffs against ontology size (SPEC §12, issue #21): 16 writers
# on one branch and one-client commit latency at 100 and 10,000 types, on
# SQLite and PostgreSQL, beside pgbench's commit-shaped transaction on one
# branch measured in the same round; a repeated diff of 100 changes
# (bench/diff_commit_scale.py). Run by `make bench`; alone, or to compare
# builds (interleaved rounds, medians):
#   eval "$(scripts/pg-throwaway.sh start)"; export OMS_PG_URL
#   COMMIT_SCALE_BINS="old/oms build/rel/oms" bench/commit_scale.sh
set -eu
OMS_BIN=${OMS_BIN:-build/rel/oms}
BINS=${COMMIT_SCALE_BINS:-$OMS_BIN}
ROUNDS=${COMMIT_SCALE_ROUNDS:-3}
SECS=${COMMIT_SCALE_SECONDS:-4}
BACKENDS=${COMMIT_SCALE_BACKENDS:-sqlite pg}
SIZES=${COMMIT_SCALE_SIZES:-100 10000}
: "${OMS_PG_URL:?OMS_PG_URL must point at a PostgreSQL server (scripts/pg-throwaway.sh)}"
tmp=$(mktemp -d /tmp/oms-commit-scale.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
cc -O2 -Wall -Wextra -o "$tmp/client" bench/audit_client.c -lpthread
BENCH_CLIENT=$tmp/client python3 bench/diff_commit_scale.py "$BINS" "$BACKENDS" "$SIZES" "$ROUNDS" "$SECS"
