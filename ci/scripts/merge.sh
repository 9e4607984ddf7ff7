#!/usr/bin/env bash
# Joins the shards: every summary.json found under SHARDS_DIR (at any depth,
# so GitLab's out/<cell>/ and GitHub's downloaded <artifact>/<cell>/ both
# work) is merged into one table, with junit.xml, the KTAP files and
# summary.json written to OUTDIR. Exits with the merged kselftest status.
set -euo pipefail
if (($# != 2)); then
  echo "usage: $0 SHARDS_DIR OUTDIR   (e.g. $0 out merged)" >&2
  exit 2
fi
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_portrange
if [[ ! -d $1 ]]; then
  echo "$1 is not a directory: the shard jobs' out/ artifacts were not passed on" >&2
  exit 2
fi
mapfile -d '' summaries < <(find "$1" -name summary.json -print0 | sort -z)
if ((${#summaries[@]} == 0)); then
  echo "no summary.json under $1: did the shard jobs run?" >&2
  exit 2
fi
echo "merging ${#summaries[@]} shards: ${summaries[*]}"
exec "$bin" merge "${summaries[@]}" --out-dir "$2"
