#!/usr/bin/env bash
# One cell of the pipeline's matrix: the cases of shard SHARD (I/N) on
# KERNEL (running, a prebuilt name such as debian-6.12, or a bzImage path),
# with <kernel>.ktap, junit.xml and summary.json written to OUTDIR. With
# ARCH (arm64), KERNEL is booted for that architecture (`matrix --arch`,
# the column named <kernel>-<arch>) with build.sh ARCH's bin/portrange-ARCH
# as /init. Exits with portrange's kselftest status: 0 pass, 1 fail, 4 all
# skipped.
set -euo pipefail
if (($# != 3 && $# != 4)); then
  echo "usage: $0 KERNEL SHARD OUTDIR [ARCH]   (e.g. $0 debian-6.12 1/2 out/debian-6.12-1)" >&2
  exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_portrange
arch=()
if (($# == 4)); then
  guest=$(guest_bin "$4")
  if [[ ! -f $guest ]]; then
    echo "$guest not found: run ci/scripts/build.sh $4 first (or fetch its job's artifact)" >&2
    exit 2
  fi
  arch=(--arch "$(guest_arch "$4")" --guest-binary "$guest")
fi
exec "$bin" matrix --kernel "$1" --shard "$2" --out-dir "$3" "${arch[@]}"
