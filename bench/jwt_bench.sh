#!/bin/sh
# Token verification cost (SPEC §12: HS256 verification <= 5 us) and the
# public-key algorithms for reference. Alone: make && bench/jwt_bench.sh
set -eu
BUILD=${BUILD:-build/rel}
LIB=$BUILD/liboms.a
[ -f "$LIB" ] || { echo "build $LIB first (make)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/oms-jwt-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Isrc -I"$BUILD/gen" \
  -I/usr/include/postgresql -o "$tmp/jwt_bench" bench/jwt_bench.c "$LIB" \
  -lmicrohttpd -ljansson -lsqlite3 -lpq -lssl -lcrypto -lcurl -lpthread -lm
"$tmp/jwt_bench"
