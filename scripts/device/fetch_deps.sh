#!/usr/bin/env bash
# Unpacks the Debian packages of the build's header-only and static dependencies into a git-ignored folder, for a
# machine without them and without a network (the GPU machine), with a copy of the golden files the tests read
# (DIR/golden): name the folder in the device call's `carry` (scripts/device/check.sh uses it).
#   scripts/device/fetch_deps.sh [DIR]     # DIR default build-deps; configure with -DPIDISTILL_DEPS_DIR=$PWD/DIR
# Needs apt-get (Debian's archive) here; nothing is installed, the packages are only unpacked (dpkg -x).
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=${1:-build-deps}
# CLI11, nlohmann-json, stb, Gloo's headers (c10d's ProcessGroupGloo.hpp includes them), GTest (static libraries
# and its CMake config), and zlib and OpenSSL's libcrypto as static libraries with their headers.
pkgs="libcli11-dev nlohmann-json3-dev libstb-dev libgloo-dev libgtest-dev zlib1g-dev libssl-dev"

golden=../shared/golden  # beside the checkout, as CMake's default PIDISTILL_GOLDEN_DIR
[ -f "$golden/README.md" ] || { echo "error: $golden/README.md not found (the golden files)" >&2; exit 1; }
debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
# apt-get warns that it downloads "unsandboxed as root" into a folder its _apt user cannot write: harmless.
(cd "$debs" && apt-get download -q $pkgs)
rm -rf "$dest"
mkdir -p "$dest"
for deb in "$debs"/*.deb; do
  dpkg -x "$deb" "$dest"
  echo "$(basename "$deb")" >>"$dest/PACKAGES"
done
# Why: the development .so links point at runtime packages not unpacked here (libz.so.1, libcrypto.so.3); without
# them CMake finds the static .a files, so the binaries do not depend on that machine's zlib or OpenSSL.
find "$dest" -type l -name '*.so' -delete
rm -rf "$dest/usr/share/doc" "$dest/usr/share/man" "$dest/usr/share/lintian"
# The golden files of the parity tests (not fid/ and edm_pickles/: 62 MB the device check does not read).
mkdir -p "$dest/golden"
cp "$golden"/README.md "$golden"/*.safetensors "$golden"/*.pt "$golden"/*.json "$dest/golden/"
du -sh "$dest" "$dest/golden"
