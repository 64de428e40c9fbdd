#!/bin/sh
# Installs the Debian packages OMS needs to build, test and benchmark, when
# any is missing. Safe to run repeatedly: it does nothing when all are there.
set -eu
PKGS="build-essential pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libssl-dev
libcurl4-openssl-dev libyaml-dev postgresql-15 postgresql-client-15 python3 python3-prometheus-client sqlite3 curl python3-cryptography faketime
chromium tesseract-ocr tesseract-ocr-eng fonts-dejavu-core slowhttptest tmux"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
