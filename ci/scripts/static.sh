#!/usr/bin/env bash
# Builds portrange fully static for each ARCH given (x86_64 and arm64 when
# none is): a release build for the musl target (build.sh ARCH), at
# bin/portrange-ARCH, with no ELF interpreter and no shared library, so it
# runs from any root file system (a busybox initramfs, a LAVA device's
# rootfs, a kselftest install, Android's userspace). Checks that each is
# static and prints its size. Honours CARGO_TARGET_DIR and PORTRANGE_BIN_DIR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
arches=("$@")
((${#arches[@]})) || arches=(x86_64 arm64)
for arch in "${arches[@]}"; do
  "$(dirname "${BASH_SOURCE[0]}")/build.sh" "$arch"
  out=$(guest_bin "$arch")
  if ! command -v readelf >/dev/null; then
    echo "readelf not found: apt-get install binutils (ci/scripts/deps.sh build installs it)" >&2
    exit 2
  fi
  if readelf -lW "$out" | grep -q 'INTERP' || readelf -dW "$out" | grep -q '(NEEDED)'; then
    echo "$out is not static: $(readelf -lW "$out" | grep -A1 INTERP | tail -1) $(readelf -dW "$out" | grep '(NEEDED)')" >&2
    exit 1
  fi
  echo "static: $out ($(stat -c %s "$out") bytes)"
done
