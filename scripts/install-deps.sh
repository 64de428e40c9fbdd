#!/bin/sh
# Installs the Debian packages OMS needs to build, test and benchmark, when
# any is missing. Safe to run repeatedly: it does nothing when all are there.
set -eu
PKGS="build-essential pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libssl-dev
libcurl4-openssl-dev libyaml-dev libjemalloc-dev nodejs postgresql-15 postgresql-client-15 python3 python3-prometheus-client sqlite3 curl python3-cryptography faketime
libzstd-dev dpkg-dev systemd time
chromium tesseract-ocr tesseract-ocr-eng fonts-dejavu-core slowhttptest tmux"
# Benchmark-only packages (`make bench`): nginx is the baseline of the GET
# benchmarks (SPEC §12: ratios against nginx serving a file of the same
# size), wrk the load generator. OMS_DEPS_BENCH=0 leaves them out.
if [ "${OMS_DEPS_BENCH:-1}" != 0 ]; then
  PKGS="$PKGS nginx wrk"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The node packages of the browser tests and the OpenAPI checks
# (tests/browser/package-lock.json, without registry URLs): npm ci when
# node_modules is missing or older than the lock file.
if command -v npm >/dev/null 2>&1; then
  b="$(dirname "$0")/../tests/browser"
  if [ ! -f "$b/node_modules/.package-lock.json" ] || [ "$b/package-lock.json" -nt "$b/node_modules/.package-lock.json" ]; then
    (cd "$b" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
      echo "warning: npm ci failed in tests/browser: the OpenAPI and browser tests will report SKIP" >&2
  fi
fi
