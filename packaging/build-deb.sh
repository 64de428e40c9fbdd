#!/bin/sh
# `make deb`: a Debian package of the release build with dpkg-deb:
# /usr/bin/oms, the units (oms.service, oms-backup.service and .timer),
# /usr/lib/oms/oms-backup, /etc/oms/oms.conf (a conffile) and the docs. Prints the package's path.
set -eu
BIN=${1:-build/rel/oms}
OUT=${2:-build/deb}
VERSION=${OMS_VERSION:-0.1.0+git$(git rev-parse --short HEAD 2>/dev/null || echo local)}
ARCH=$(dpkg --print-architecture)
root="$OUT/root"
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/oms" "$root/lib/systemd/system" "$root/etc/oms" \
  "$root/usr/share/doc/oms"
install -m 0755 "$BIN" "$root/usr/bin/oms"
strip --strip-unneeded "$root/usr/bin/oms" 2>/dev/null || true
for u in oms.service oms-backup.service oms-backup.timer; do
  install -m 0644 "packaging/$u" "$root/lib/systemd/system/$u"
done
install -m 0755 packaging/oms-backup "$root/usr/lib/oms/oms-backup"
install -m 0644 packaging/oms.conf "$root/etc/oms/oms.conf"
for d in operations.md backup.md configuration.md security.md; do
  install -m 0644 "docs/$d" "$root/usr/share/doc/oms/$d"
done
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" packaging/debian/control.in > "$root/DEBIAN/control"
install -m 0644 packaging/debian/conffiles "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$root/DEBIAN/$s"; done
deb="$OUT/oms_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
