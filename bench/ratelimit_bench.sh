#!/bin/sh
# Rate-limit decision cost (SPEC §12: <= 0.2 us per decision; SPEC §6.5:
# workers are not serialized on one lock), single-threaded and with two
# threads at once, against the sharded table of src/http/ratelimit.c.
# The HTTP cost of the limits on and off is in bench/http_bench.sh.
#
# Run by `make bench`. Alone:
#   make && bench/ratelimit_bench.sh
set -eu
BUILD=${BUILD:-build/rel}
LIB=$BUILD/liboms.a
[ -f "$LIB" ] || { echo "build $LIB first (make)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/oms-ratelimit-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Isrc -I"$BUILD/gen" \
  -I/usr/include/postgresql -o "$tmp/ratelimit_bench" bench/ratelimit_bench.c "$LIB" \
  -lmicrohttpd -ljansson -lsqlite3 -lpq -lssl -lcrypto -lcurl -lpthread -lm
"$tmp/ratelimit_bench"
