#!/usr/bin/env bash
# One cell of the pipeline's matrix: the cases of shard SHARD (I/N) on
# KERNEL (running, a prebuilt name such as debian-6.12, or a bzImage path),
# with <kernel>.ktap, junit.xml and summary.json written to OUTDIR. Exits
# with portrange's kselftest status: 0 pass, 1 fail, 4 all skipped.
set -euo pipefail
if (($# != 3)); then
  echo "usage: $0 KERNEL SHARD OUTDIR   (e.g. $0 debian-6.12 1/2 out/debian-6.12-1)" >&2
  exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_portrange
exec "$bin" matrix --kernel "$1" --shard "$2" --out-dir "$3"
