#!/usr/bin/env bash
# Builds heygem-daemon's .deb from a clean clone of this repository's HEAD with Debian's
# own dpkg-buildpackage (debhelper); committed work only, as a release would be.
#   scripts/build-deb.sh                    # -> build/deb/heygem-daemon_<version>_all.deb
#   HEYGEM_DEB_VERSION=0.1.0-2 scripts/build-deb.sh build/deb-next   # another version (upgrade tests)
# Installs the build tools with apt when they are missing (through sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build/deb}")

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev debhelper >/dev/null
fi

rm -rf "$out"
mkdir -p "$out"
git clone -q --no-local . "$out/src"
cd "$out/src"
if [ -n "${HEYGEM_DEB_VERSION:-}" ]; then
  { printf 'heygem-daemon (%s) unstable; urgency=medium\n\n  * Built by scripts/build-deb.sh with HEYGEM_DEB_VERSION.\n\n' "$HEYGEM_DEB_VERSION"
    printf ' -- heygem-daemon maintainers <heygem-daemon@localhost>  %s\n\n' "$(date -R)"
    cat debian/changelog; } > debian/changelog.new
  mv debian/changelog.new debian/changelog
fi
# the build dependencies (python3-setuptools, -pip, -wheel): installed when missing
if ! dpkg-checkbuilddeps 2>/dev/null; then
  missing=$(dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' | sed 's/([^)]*)//g')
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
cd "$out"
ls -1 "$out"/*.deb
